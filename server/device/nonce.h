/*
 * Attestation nonces without state. A nonce is 32 bytes the service MACs with a key derived from
 * its master key:
 *
 *   epoch (4) | expires (8, Unix seconds) | random (4) | MAC1 (8) | MAC2 (8)   (big-endian)
 *   MAC1 = HMAC-SHA256(K, "rampart nonce 2: issued" | epoch | expires | random)[0..8]
 *   MAC2 = HMAC-SHA256(K, "rampart nonce 2: device" | epoch | expires | random | device ID)[0..8]
 *
 * Issuing one writes nothing, so an unauthenticated caller asking for nonces costs the service
 * an HMAC, never a row. Checking one needs no read: MAC1 says this service made it, MAC2 that it
 * was made for this device, the time that it is still fresh. That it is used once is the store's
 * part: a nonce is spent in the transaction that records the attestation it led to, and the spent
 * ones are kept until they expire. The epoch is the database's nonce epoch when it was issued
 * (read as each nonce is issued: attest.c); the spending transaction
 * refuses a nonce of another epoch than the database's, so `rampart-server nonces
 * reset-watermark`, which raises the epoch as it lowers the purge watermark, kills every nonce
 * issued before it (store.h: rp_store_nonces_watermark_reset). The tags are those of this format
 * (2): a nonce of the first (expires | random(8), tags "rampart nonce: ...") is not one of ours.
 */
#ifndef RAMPART_NONCE_H
#define RAMPART_NONCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/crypto.h"
#include "rampart/error.h"

#define RP_NONCE_SIZE 32              /* bytes; the hex form is twice that */
#define RP_NONCE_KEY_LEN 32           /* HMAC-SHA256 key */
#define RP_NONCE_EPOCH_MAX UINT32_MAX /* the epoch's 4 bytes */

/* Whether a nonce epoch as stored (a database's: 8 bytes) fits a nonce's 4. Only a restore or a
 * hand edit makes one that does not: no nonce is issued in it (attest.c), and `nonces
 * reset-watermark` sets it right (store.c). */
static inline bool rp_nonce_epoch_fits(int64_t epoch)
{
    return epoch >= 0 && epoch <= (int64_t)RP_NONCE_EPOCH_MAX;
}

/* Seconds a nonce's expiry may lie beyond now + the nonce lifetime and still be taken: a replica
 * whose clock runs up to this far ahead (the skew a device certificate's back-date absorbs, 5
 * minutes) still has its nonces taken by the others. A nonce whose expiry lies further ahead can
 * only come from a clock that ran ahead, and would otherwise live as long as the step (review r10
 * M1): it is refused. */
#define RP_NONCE_AHEAD_SLACK 300

typedef enum rp_nonce_result {
    RP_NONCE_OK = 0,       /* made by this service for this device, not expired */
    RP_NONCE_UNKNOWN,      /* not made by this service (or not a nonce at all) */
    RP_NONCE_EXPIRED,      /* made here, but its time is up */
    RP_NONCE_OTHER_DEVICE, /* made here for another device */
    RP_NONCE_AHEAD,        /* made here, but by a clock ahead: it expires later than
                              now + lifetime + RP_NONCE_AHEAD_SLACK */
} rp_nonce_result_t;

/* A new nonce for a device (its ID as 32 bytes), of the nonce epoch, usable until expires. */
rp_err_t rp_nonce_issue(const uint8_t key[RP_NONCE_KEY_LEN], const uint8_t device[RP_SHA256_LEN],
                        uint32_t epoch, int64_t expires,
                        uint8_t nonce[RP_NONCE_SIZE]) RP_MUST_CHECK;

/* Whether the nonce is usable by the device now, lifetime being the seconds a nonce issued now
 * lives (--nonce-lifetime). Constant time in the MACs. OUT: *expires (when the result is
 * RP_NONCE_OK, RP_NONCE_EXPIRED or RP_NONCE_AHEAD), for how long the store must remember it
 * spent, and *epoch (the same), which the store compares with the database's as it spends it. */
rp_nonce_result_t rp_nonce_check(const uint8_t key[RP_NONCE_KEY_LEN], const uint8_t *nonce,
                                 size_t len, const uint8_t device[RP_SHA256_LEN], int64_t now,
                                 int64_t lifetime, int64_t *expires, uint32_t *epoch);

#endif /* RAMPART_NONCE_H */
