/*
 * The monitor's request handlers: a decoded request (proto.h) in, its reply out.
 */
#ifndef RAMPART_MONITOR_SERVE_H
#define RAMPART_MONITOR_SERVE_H

#include <stdbool.h>
#include <sys/types.h>

#include "agent.h"
#include "proto.h"
#include "rampart/metadata.h"
#include "slots.h"

/* Answer q (fd: the descriptor that came with it, or -1; the caller closes it; peer: the client's
 * uid, SO_PEERCRED). OUT: *p, always a reply to send (an error reply when the monitor could not do
 * it); *reply_fd, a descriptor to send beside it (INSTALL's handed trial slot; close it), or -1. */
void rp_monitor_serve(rp_agent_t *a, const rp_mon_request_t *q, int fd, uid_t peer,
                      rp_mon_reply_t *p, int *reply_fd);

/* For --agent-user: S and S/update made passable (0711), the public documents in them (the update
 * root, the capability) readable, and S/agent/ made the agent's (rp_agent_dir_make). */
rp_err_t rp_monitor_agent_dir(const char *state_dir, uid_t uid, gid_t gid) RP_MUST_CHECK;

/* How an INSTALL's app trial runs (rp_install_opts_t): the monitor sets its app supervisor's at
 * start. NULL: a plain process. */
void rp_monitor_set_trial(rp_trial_fn fn, void *ctx);
/* What reads the payload of a new root or targets (TRUST_ROOT, TARGETS) once the keys the monitor
 * holds verify it: the monitor sets its app supervisor's, which asks rampart-unpack (apps.h:
 * rp_apps_md_parse), so that no JSON is parsed with privilege. Unset: every document refused. */
void rp_monitor_set_parser(rp_md_parse_fn fn, void *ctx);
/* SIGN_TLS13 and APP_SIGN_TLS13 (q->u.sign_tls13): the CertificateVerify content built here
 * around the caller's (side, hash), its SHA-256 signed with the identity key. OUT:
 * p->u.sign_tls13. */
rp_err_t rp_monitor_sign_tls13(rp_agent_t *a, const rp_mon_request_t *q,
                               rp_mon_reply_t *p) RP_MUST_CHECK;

/* S/update.lock, which whatever changes the slots holds (the agent's install, recover and update
 * checks take it too). wait false: -1 at once when it is held. The descriptor, or -1. */
int rp_monitor_slots_lock(const char *state_dir, bool wait);
/* APP_REMOVE's authorisation, install's own: the targets the monitor keeps (verifying, in force)
 * do not name the component, or the device allows a sideload (rp_capability_sideload). OUT: why,
 * why not, or what allowed it. */
bool rp_monitor_remove_allowed(rp_agent_t *a, const char *component, char *why, size_t cap);

#endif /* RAMPART_MONITOR_SERVE_H */
