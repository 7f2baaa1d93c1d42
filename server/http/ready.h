/*
 * Liveness and readiness (ready.c): GET /healthz and GET /readyz, the worker loops' heartbeat,
 * and what main.c tells the service manager (READY=1, the watchdog).
 */
#ifndef RAMPART_SERVER_READY_H
#define RAMPART_SERVER_READY_H

#include <stdbool.h>
#include <stddef.h>

#include "context.h"

typedef struct rp_req rp_req_t;

/* GET /healthz: 200 while the process serves (once started). */
void rp_h_healthz(rp_req_t *r);
/* GET /readyz: 200 when the service can write now - a database transaction and a file in the
 * data directory, both synced - else 503 with the reason. Checked at most once a second;
 * requests in between get the last answer. */
void rp_ready_handle(rp_req_t *r);
/* A worker's loop has turned (its beat_timer, every srv->beat_ms): stamp w->beat; until the
 * service is ready, the first worker also runs the write check /readyz runs. */
void rp_ready_beat(rp_worker_t *w);
/* Whether the service is ready, as the last write check found (why: the reason, when not), and
 * whether every one of n workers' loops turned within the last stale_ms. For READY=1 and the
 * watchdog (main.c). */
bool rp_ready_state(char *why, size_t cap);
bool rp_ready_loops_turn(const rp_worker_t *workers, int n, long long stale_ms);

#endif /* RAMPART_SERVER_READY_H */
