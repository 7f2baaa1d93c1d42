/*
 * The replicas' hold on their database (review r15ops M1, L3): what keeps `rampart-server blobs
 * move` from taking blobs away from replicas that serve them, and replicas started with another
 * --blobs from splitting uploads and images between two stores.
 *
 * Every serving replica holds, from before its start's blob check to its exit, the "serving" lock
 * shared and the lock of its --blobs kind shared; `blobs move` holds "serving" exclusive for its
 * run. So a move is refused while any replica of the database serves, on any machine, and a
 * replica refuses to start while a move runs; and a replica refuses to start while one of the
 * other kind serves (it tries that kind's lock exclusive: refused means held). Two of different
 * kinds starting at the same moment may both refuse; never both serve.
 *
 * Locks that end with their holder, not rows with a freshness window: a replica or a move killed
 * (kill -9, a crash, a power cut) leaves nothing to expire or to force, and the next start or
 * move goes on at once (db.h: SQLite's are locks on a file beside the database; PostgreSQL's,
 * session advisory locks, gone with the session; about a minute after a machine vanished).
 */
#ifndef RAMPART_STORE_HOLD_H
#define RAMPART_STORE_HOLD_H

#include <stddef.h>

#include "rampart/error.h"
#include "store/blob.h"

typedef struct rp_hold rp_hold_t;

/* A serving replica's hold on the database target, for its life. RP_ERR_EXISTS with why (a
 * sentence) when refused: a blobs move runs, or a replica with the other --blobs serves; other
 * errors (the database out of reach: RP_ERR_BUSY) are logged. */
rp_err_t rp_hold_serving(const char *target, rp_blobs_kind_t kind, rp_hold_t **out, char *why,
                         size_t cap) RP_MUST_CHECK;
/* blobs move's hold: RP_ERR_EXISTS with why while any replica serves target (or another move
 * runs). */
rp_err_t rp_hold_alone(const char *target, rp_hold_t **out, char *why, size_t cap) RP_MUST_CHECK;
/* A serving hold (not blobs move's) lost with its connection (PostgreSQL restarted, the backend
 * ended) taken again: called at each heartbeat; a look without a round trip while it stands, a try
 * every RP_HOLD_RETRY seconds once lost. Logs what it finds. */
void rp_hold_keep(rp_hold_t *h);
#define RP_HOLD_RETRY 10
void rp_hold_release(rp_hold_t *h);

#endif /* RAMPART_STORE_HOLD_H */
