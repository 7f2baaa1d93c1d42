/*
 * The monitor's own seccomp allow-list (libseccomp): installed after start-up, before the first
 * request is read. Any other system call kills the monitor (SECCOMP_RET_KILL_PROCESS).
 */
#ifndef RAMPART_MONITOR_SANDBOX_H
#define RAMPART_MONITOR_SANDBOX_H

#include "rampart/error.h"

/* no_new_privs, then the filter. */
rp_err_t rp_sandbox_enter(void) RP_MUST_CHECK;

/* For the tests: enter the sandbox, then make a call it forbids. Killed (SIGSYS) when the filter
 * works; returns 1 ("survived") when it does not. */
int rp_sandbox_selftest(void);

#endif /* RAMPART_MONITOR_SANDBOX_H */
