/*
 * Delta making off the event loops (deltas.c): a small pool of threads, each with its own store
 * connection and blob store handle, that makes the zstd delta between two images (lib's
 * rp_delta_make_buf) and keeps it in the blob store as deltas/FROM-TO.zst, its SHA-256 and size
 * in the database (rp_store_delta_*). A delta is made once: a request for one already queued or
 * being made here is dropped, and the database's lease keeps two replicas from making the same
 * (while its maker's heartbeat renews it: a replica that dies midway lets go of it in seconds;
 * one stopped past it, whose lease another took over, gives up when it wakes and writes nothing).
 * The device whose targets asked first gets the whole image meanwhile; those after, the delta.
 */
#ifndef RAMPART_SERVER_DELTAS_H
#define RAMPART_SERVER_DELTAS_H

#include <stdbool.h>

#include <event2/buffer.h>

#include "context.h"

#define RP_DELTAS_THREADS 1    /* makers: a delta is CPU-bound, and devices can wait */
#define RP_DELTAS_QUEUE_MAX 64 /* deltas waiting to be made; past it a request is dropped */
/* A maker's lease on a delta lasts RP_DELTAS_LEASE seconds and is renewed every RP_DELTAS_BEAT
 * while it works (a thread of its own: making one is a long call), so that a replica killed
 * midway lets another make it within seconds, not minutes. */
#define RP_DELTAS_LEASE 15
#define RP_DELTAS_BEAT 4

typedef struct rp_deltas rp_deltas_t;

rp_err_t rp_deltas_start(const rp_server_t *srv, rp_deltas_t **out) RP_MUST_CHECK;
/* Finish the delta being made, drop the queue, stop. */
void rp_deltas_stop(rp_deltas_t *d);
/* Ask for the delta from image ID from to image ID to (the images' blobs must exist). false when
 * it is queued or being made already, or the queue is full. */
bool rp_deltas_request(rp_deltas_t *d, const char *from, const char *to);
/* Deltas made by this process, and requests dropped as duplicates, for /metrics and tests. */
unsigned long long rp_deltas_made(rp_deltas_t *d);
void rp_deltas_metrics(rp_deltas_t *d, struct evbuffer *buf);
/* Wait until nothing is queued or being made (tests). */
void rp_deltas_drain(rp_deltas_t *d);

#endif /* RAMPART_SERVER_DELTAS_H */
