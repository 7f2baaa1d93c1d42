/*
 * The seccomp filters of an app's compartment, built here and loaded by rampart-launcher
 * (filter.c says which is whose).
 */
#ifndef RAMPART_LAUNCHER_FILTER_H
#define RAMPART_LAUNCHER_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include <seccomp.h>

typedef enum rp_filter_for { RP_FILTER_APP, RP_FILTER_INIT } rp_filter_for_t;

/* The app's filter (who RP_FILTER_APP), or the base of its init's (RP_FILTER_INIT: without
 * fallocate; main.c adds the capture's calls): default action def (notify, or EPERM where the
 * kernel cannot notify). debug (development mode, rp_compartment_spec_t.debug) allows ptrace and
 * process_vm_*: a debugger reaches only what the app's pid namespace shows and the kernel's ptrace
 * check lets through (its own uid, its Landlock domain; the init is not dumpable). NULL on error.
 */
scmp_filter_ctx rp_launcher_filter(uint32_t def, bool debug, rp_filter_for_t who);

/* The hosts keeper's: its few calls, anything else EPERM. NULL on error. */
scmp_filter_ctx rp_launcher_keeper_filter(void);

#endif /* RAMPART_LAUNCHER_FILTER_H */
