/*
 * The seccomp filters of an app's compartment, built here and loaded by rampart-launcher
 * (filter.c says which is whose), and the hosts keeper's confinement and loop (main.c,
 * keep_hosts, forks it).
 */
#ifndef RAMPART_LAUNCHER_FILTER_H
#define RAMPART_LAUNCHER_FILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "launch.h"
#include "rampart/seccomp.h"

typedef enum rp_filter_for { RP_FILTER_APP, RP_FILTER_INIT } rp_filter_for_t;

/* Start f (rampart/seccomp.h; rp_seccomp_load ends it) as the app's filter (who RP_FILTER_APP),
 * or the base of its init's (RP_FILTER_INIT: without fallocate; main.c adds the capture's calls):
 * default action def (notify, or EPERM where the kernel cannot notify). debug (development mode,
 * rp_compartment_spec_t.debug) allows ptrace and process_vm_*: a debugger reaches only what the
 * app's pid namespace shows and the kernel's ptrace check lets through (its own uid, its Landlock
 * domain; the init is not dumpable). */
void rp_launcher_filter(rp_seccomp_t *f, uint32_t def, bool debug, rp_filter_for_t who);

/* Start f as the hosts keeper's: its few calls, anything else EPERM. */
void rp_launcher_keeper_filter(rp_seccomp_t *f);

/* The file rights a Landlock ruleset handles on a kernel of Landlock ABI abi (> 0): all it knows */
uint64_t rp_launcher_fs_handled(long abi);

/* The hosts keeper confines itself (a forked child of the init, the app's uid, no capability):
 * not dumpable, its own Landlock domain (replacing files in etc_fd alone; none when landlock_off or
 * the kernel has none) and its filter. 0, or -1. */
int rp_launcher_keeper_confine(int etc_fd, bool landlock_off);

/* The hosts keeper's loop, confined: each packet on net_fd (launch.h, NET: the addresses of m's
 * names) written as etc_fd's hosts, answered with a status byte on net_fd (0, or the errno; why
 * said on stderr); exits 0 once life_fd reads anything (the app is gone) or net_fd closes, 1 on
 * an error of its own. */
void rp_launcher_keeper_serve(int net_fd, int life_fd, int etc_fd, const rp_manifest_t *m,
                              const char *component) __attribute__((noreturn));

#endif /* RAMPART_LAUNCHER_FILTER_H */
