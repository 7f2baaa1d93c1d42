/*
 * An app channel's root hooks (appchan.h) in one process, for tests and test tools: each request
 * goes through the gate's codec (gate.h) to the monitor's side (appgate.h), both ends here, as the
 * broker's go to the monitor.
 */
#ifndef RAMPART_TEST_GATE_LOCAL_H
#define RAMPART_TEST_GATE_LOCAL_H

#include "appchan.h"
#include "appgate.h"

typedef struct rp_test_gate {
    int fd[2]; /* [0] the broker's end, [1] the monitor's */
    rp_agent_t *agent;
    rp_appgate_app_t apps[RP_GATE_SLOTS];
    rp_appgate_app_t *slots[RP_GATE_SLOTS];
    uint32_t seq; /* the last request's number */
} rp_test_gate_t;

rp_err_t rp_test_gate_open(rp_test_gate_t *g, rp_agent_t *agent) RP_MUST_CHECK;
void rp_test_gate_close(rp_test_gate_t *g);

/* The app at slot: component, with manifest m (kept by the caller; a channel's c->manifest): a
 * new app there, its first generation. */
void rp_test_gate_add(rp_test_gate_t *g, size_t slot, const char *component,
                      const rp_manifest_t *m);

/* The hooks for rp_appchan_serve (ctx: g). */
rp_appchan_root_t rp_test_gate_root(rp_test_gate_t *g);

/* r through the gate, served by the monitor's side. OUT: *p, the answer (IDENTITY, SIGN; p may be
 * NULL otherwise; RP_ERR_NOT_FOUND: none, or not r's: its slot and seq), *closed (CLOSED's slot,
 * -1 else). */
rp_err_t rp_test_gate_ask(rp_test_gate_t *g, const rp_gate_req_t *r, rp_mon_reply_t *p,
                          int *closed) RP_MUST_CHECK;

#endif /* RAMPART_TEST_GATE_LOCAL_H */
