/*
 * Per-address rate limits for the requests anyone may make (an attestation and its nonce): a
 * token bucket per client address, in a fixed table (the address hashed with a per-process
 * secret, so that no one can aim at another's slot), shared by the workers under one mutex. A
 * fleet behind one NAT address shares a bucket: the burst absorbs a restart storm, and devices
 * answered 429 retry with backoff and jitter. Pure but for the clock it is given: unit-tested.
 */
#ifndef RAMPART_RATELIMIT_H
#define RAMPART_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "rampart/error.h"

#define RP_RATELIMIT_SLOTS 4096

typedef struct rp_ratelimit rp_ratelimit_t;

/* rate requests a second on average, burst at once. OUT: *rl. */
rp_err_t rp_ratelimit_new(double rate, double burst, rp_ratelimit_t **rl) RP_MUST_CHECK;
void rp_ratelimit_free(rp_ratelimit_t *rl);
/* A new rate and burst for every address from now on (a reload); rate 0 lifts the limit, and a
 * later rate above 0 puts one back. Buckets already full keep at most the new burst. */
void rp_ratelimit_set(rp_ratelimit_t *rl, double rate, double burst);
/* Whether a request from addr (len bytes, any form: the server's is rp_peer_key()'s) may go ahead
 * at time now (seconds, monotonic); it takes a token when it may. */
bool rp_ratelimit_allow(rp_ratelimit_t *rl, const void *addr, size_t len, double now);
/* Whether a request from addr would be allowed at time now, taking nothing: for a budget spent
 * only by what fails (a wrong token), checked before and charged with rp_ratelimit_allow() after.
 */
bool rp_ratelimit_peek(rp_ratelimit_t *rl, const void *addr, size_t len, double now);

#endif /* RAMPART_RATELIMIT_H */
