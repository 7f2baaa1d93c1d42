/*
 * "A rampart-server serves this database": the one owner of that rule (review r15ops M1, L3; the
 * restore's guard, r15ops H1). What keeps `rampart-server blobs move` from taking blobs away from
 * replicas that serve them, replicas started with another --blobs from splitting uploads and
 * images between two stores, and `rampart-server restore` from replacing the database under a
 * server (and a server from opening it while a restore replaces it).
 *
 * Every serving process holds, from before its start opens the database (so before the check of
 * DIR/restore.pending and its migrations) to its exit, the "restore" and "serving" locks shared
 * and the lock of its --blobs kind shared; `blobs move` holds "restore" shared and "serving"
 * exclusive for its run; `restore` holds both exclusive. So a move or a restore is refused while
 * any server of the database serves, on any machine, and each refuses while the other runs; a
 * server refuses to start while a move or a restore runs, saying which; and a replica refuses to
 * start while one of the other kind serves (it tries that kind's lock exclusive: refused means
 * held). Two of different kinds starting at the same moment may both refuse; never both serve.
 *
 * Locks on the database, not on the data directory: its servers are the database's (a SQLite
 * --database elsewhere may be shared by several directories; PostgreSQL's by several machines).
 * Never waited for: a start during a restore is refused, naming the restore, and is started again
 * once it has ended (as the service manager does).
 *
 * Locks that end with their holder, not rows with a freshness window: a server, a move or a
 * restore killed (kill -9, a crash, a power cut) leaves nothing to expire or to force, and the
 * next one goes on at once (db.h: SQLite's are locks on a file beside the database,
 * TARGET-hold.lock; PostgreSQL's, session advisory locks, gone with the session; about a minute
 * after a machine vanished). A restore cut short leaves DIR/restore.pending, which the start
 * refuses (restore.h).
 */
#ifndef RAMPART_STORE_HOLD_H
#define RAMPART_STORE_HOLD_H

#include <stdbool.h>
#include <stddef.h>

#include "rampart/error.h"
#include "store/blob.h"

typedef struct rp_hold rp_hold_t;

/* A serving replica's hold on the database target, for its life, taken before the database is
 * opened. RP_ERR_EXISTS with why (a sentence) when refused: a blobs move or a restore runs, or a
 * replica with the other --blobs serves; other errors (the database out of reach: RP_ERR_BUSY)
 * are logged. */
rp_err_t rp_hold_serving(const char *target, rp_blobs_kind_t kind, rp_hold_t **out, char *why,
                         size_t cap) RP_MUST_CHECK;
/* blobs move's hold: RP_ERR_EXISTS with why while any replica serves target, or another move or
 * a restore runs. */
rp_err_t rp_hold_alone(const char *target, rp_hold_t **out, char *why, size_t cap) RP_MUST_CHECK;
/* restore's hold: RP_ERR_EXISTS with why while any server serves target, or a blobs move or
 * another restore runs on it. */
rp_err_t rp_hold_restore(const char *target, rp_hold_t **out, char *why, size_t cap) RP_MUST_CHECK;
/* A serving hold (not blobs move's) lost with its connection (PostgreSQL restarted, the backend
 * ended) taken again: called at each heartbeat; a look without a round trip while it stands, a try
 * every RP_HOLD_RETRY seconds once lost. Logs what it finds. */
void rp_hold_keep(rp_hold_t *h);
#define RP_HOLD_RETRY 10
/*
 * Whether h stands (not lost since rp_hold_keep last looked; a command's hold, or none: true).
 * OUT: *taken, how many times it was taken again since it was first (a change since the last
 * look: it was lost meanwhile, maybe within one rp_hold_keep).
 * A replica whose hold is lost serves no blob (review r16 M4): its heartbeat, right after
 * rp_hold_keep, sets srv->hold_lost from this, and the blob handles its requests use answer
 * RP_ERR_BUSY (503 `unavailable`, Retry-After) to every call that reaches a blob (blob.h:
 * rp_blobs_gate), and /readyz is 503, until the hold is taken again. So a blobs move that takes the locks a restart of
 * PostgreSQL freed finds no blob being written or read under it, within a heartbeat (--beat,
 * one second by default: the hold's loss is seen at the next beat, without a round trip). Chosen
 * over taking the hold again as the store reconnects: a replica with no request to serve does not
 * reconnect, and the move would run beside it all the same.
 */
bool rp_hold_stands(const rp_hold_t *h, unsigned *taken);
void rp_hold_release(rp_hold_t *h);

#endif /* RAMPART_STORE_HOLD_H */
