/*
 * The agent's own seccomp allow-list, entered by `run` through the monitor once it has started
 * (device/agent/confine.c): what a network client of the monitor needs, and nothing that starts a
 * program, changes privilege, mounts or traces.
 */
#ifndef RAMPART_AGENT_CONFINE_H
#define RAMPART_AGENT_CONFINE_H

#include <sys/types.h>

#include "rampart/error.h"

/* no_new_privs, then the filter: any other system call kills the agent (SIGSYS). It may signal
 * one process, with SIGTERM only: runner, its MCU's relay runner (rp_mcu_runner_pid; 0: none),
 * told of the agent's stop (rp_mcu_runner_stop). */
rp_err_t rp_agent_confine(pid_t runner) RP_MUST_CHECK;

/* Enter the filter, then make a call it forbids: returns only if the filter failed (1), or could
 * not be entered (2). */
int rp_agent_confine_selftest(void);

#endif /* RAMPART_AGENT_CONFINE_H */
