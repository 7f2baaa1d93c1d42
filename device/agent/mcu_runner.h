/*
 * The agent's relay runner, under rampart-monitor (docs/mcu.md, "Deploying firmware"): firmware
 * for a component attached to an MCU is verified and put on trial by the monitor, which hands the
 * trial slot to the agent (INSTALL answers handed, with its descriptor); the agent runs the relay
 * to the board and gives the monitor the board's verdict (MCU_VERDICT).
 *
 * The agent confines itself (its seccomp allow-list has no fork or exec), so the relay is run by
 * a child forked before it does: the runner, the agent's user and nothing more, unconfined. It
 * takes one job at a time on a socket pair (the component's name, version and the monitor's nonce,
 * fixed-size), runs the relay kept in S/mcu/NAME.json on the agent's copy S/agent/mcu/NAME.img
 * (rp_mcu_install), and answers the outcome with the board's evidence over the nonce (none is
 * run for a board whose attestation key is not pinned: the monitor would confirm nothing). It
 * ends when the agent does, a kill -9 too (its parent-death signal), while a relay it started
 * goes on to the end of its boot (its output's reader gone: SIGPIPE ignored) or its own timeout,
 * holding the board's lock until then (rp_mcu_install). A stop of the agent does not cut a relay:
 * `run` waits for it to finish, as in single-process mode (rp_mcu_stop, mcu.h: the one place
 * that says what a stop does to it), and exits after its verdict. A confined agent so gains one
 * thing: the relay root attached, run on an image of its choosing, which the board's boot stage
 * verifies with its own key and counter.
 */
#ifndef RAMPART_AGENT_MCU_RUNNER_H
#define RAMPART_AGENT_MCU_RUNNER_H

#include "agent.h"
#include "slots.h"

/* Before the agent confines itself: the runner started when a component is attached to an MCU
 * (S/mcu/ lists one); otherwise nothing. */
void rp_mcu_runner_start(const char *state_dir);

/* The runner's process (0: none), the one the confined agent may signal (rp_agent_confine). */
pid_t rp_mcu_runner_pid(void);

/* Whether the runner died in a confined agent, which cannot fork another: its relays fail from
 * then on ("the MCU's relay runner died"), and `run` exits non-zero for its service manager to
 * restart it with a new runner. (An agent that may fork starts another when it next needs one.) */
bool rp_mcu_runner_lost(void);

/* From a signal handler (async-signal-safe; `run` at SIGTERM, beside rp_agent_monitor_stop): the
 * stop told to the relays, this process's and the runner's (rp_mcu_stop, mcu.h): a relay under way
 * is finished within its bound and its outcome awaited, and none is begun from then on. */
void rp_mcu_runner_stop(void);

/* INSTALL answered handed (res: its detail; slot_fd: the trial slot, read-only; closed here):
 * the image copied out of the descriptor into the agent's directory and checked against the
 * monitor's word (its digest, in hex, is the answer's detail), relayed to the board by the runner,
 * and the verdict given to the monitor (MCU_VERDICT), whose answer becomes *res (failed, saying
 * why, when it refuses the verdict or does not answer: the install then ends at the monitor's
 * deadline). A stop (rp_mcu_runner_stop) lets the relay under way finish and its verdict be
 * given; after it none begins (the verdict: failed, nothing handed to the MCU). */
rp_err_t rp_mcu_hand_over(rp_agent_t *a, const char *name, int slot_fd,
                          rp_install_result_t *res) RP_MUST_CHECK;

#endif /* RAMPART_AGENT_MCU_RUNNER_H */
