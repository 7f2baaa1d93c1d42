/*
 * The app broker's store of kept ends (broker.c; docs/compartments.md, "The app broker"): a
 * datagram socket pair the app supervisor keeps across brokers, holding a snapshot of the broker's
 * lists of kept ends, one record per list, each record one fixed layout sent whole with its ends
 * as descriptors. What a broker wrote, the next one reads back: checked here (rp_store_rec_check),
 * since a broker taken over could write anything there for the next one to read. What it says
 * is believed for a while only: an end taken back is counted for RP_BROKER_RESTORED_MS at most from
 * the first broker that took it back (its until_ms, never later than that: broker.c, store_restore;
 * review r10 L2), so that a forged snapshot pins no app's budget for longer.
 */
#ifndef RAMPART_BROKER_STORE_H
#define RAMPART_BROKER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appchan.h"
#include "gate.h"

#define RP_STORE_LISTS (RP_GATE_SLOTS + RP_APPCHAN_ORPHAN_LISTS) /* each slot's, the reserve's */

/* One list of kept ends, its ends' descriptors in the message, in order. */
typedef struct rp_store_rec {
    uint32_t epoch; /* its snapshot's (the next one's is one more) */
    uint8_t i, m;   /* its place in the snapshot, and the snapshot's records */
    uint8_t list;   /* a slot, or RP_GATE_SLOTS + a list of the reserve */
    uint8_t n;      /* its ends */
    int64_t until_ms[RP_APPCHAN_FDS_APP_MAX];  /* each one's (rp_appchan_held_end_t): 0, none */
    uint8_t fds[RP_APPCHAN_FDS_APP_MAX];       /* what each holds */
    char component[RP_COMPONENT_NAME_MAX + 1]; /* a slot's: the app they were sent to */
} rp_store_rec_t;

/* Whether r, got bytes read with nfds descriptors, is a whole record: its size, its list, its
 * place in its snapshot, one descriptor an end (at most RP_APPCHAN_FDS_APP_MAX), each end holding
 * 1 to RP_APPCHAN_FDS_APP_MAX (an end counting 0 would be taken as free: review r9dev), its
 * component none or a valid name (ended here: a slot's list is taken back under it). */
bool rp_store_rec_check(rp_store_rec_t *r, size_t got, unsigned nfds);

#endif /* RAMPART_BROKER_STORE_H */
