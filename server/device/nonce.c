/*
 * Stateless attestation nonces: see nonce.h for the format and what each part proves.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "nonce.h"
#include "rampart/bytes.h"

#define MAC_LEN 8
#define EPOCH_LEN 4
#define EXPIRES_LEN 8
#define BODY_LEN 16 /* epoch | expires | random */
#define RANDOM_LEN (BODY_LEN - EPOCH_LEN - EXPIRES_LEN)

/* (format 2: the epoch's; nonce.h) */
static const char tag_issued[] = "rampart nonce 2: issued";
static const char tag_device[] = "rampart nonce 2: device";
_Static_assert(sizeof(tag_issued) == sizeof(tag_device), "mac() sizes its buffer by one tag");
_Static_assert(BODY_LEN + 2 * MAC_LEN == RP_NONCE_SIZE, "a nonce is its body and two MACs");

/* HMAC-SHA256(key, tag | body | extra)[0..MAC_LEN]. */
static rp_err_t mac(const uint8_t key[RP_NONCE_KEY_LEN], const char *tag,
                    const uint8_t body[BODY_LEN], const uint8_t *extra, size_t extra_len,
                    uint8_t out[MAC_LEN])
{
    uint8_t msg[sizeof(tag_issued) + BODY_LEN + RP_SHA256_LEN], full[32];
    size_t tag_len = strlen(tag), n = 0;
    unsigned int full_len = 0;
    rp_err_t err = RP_ERR_CRYPTO;

    if (tag_len + BODY_LEN + extra_len > sizeof(msg))
        return RP_ERR_INVALID_ARG;
    memcpy(msg, tag, tag_len);
    n += tag_len;
    memcpy(msg + n, body, BODY_LEN);
    n += BODY_LEN;
    if (extra_len > 0) {
        memcpy(msg + n, extra, extra_len);
        n += extra_len;
    }
    if (HMAC(EVP_sha256(), key, RP_NONCE_KEY_LEN, msg, n, full, &full_len) != NULL &&
        full_len == sizeof(full)) {
        memcpy(out, full, MAC_LEN);
        err = RP_OK;
    }
    rp_wipe(full, sizeof(full));
    return err;
}

rp_err_t rp_nonce_issue(const uint8_t key[RP_NONCE_KEY_LEN], const uint8_t device[RP_SHA256_LEN],
                        uint32_t epoch, int64_t expires, uint8_t nonce[RP_NONCE_SIZE])
{
    rp_err_t err;

    if (key == NULL || device == NULL || nonce == NULL || expires < 0)
        return RP_ERR_INVALID_ARG;
    rp_be_put(nonce, epoch, EPOCH_LEN);
    rp_be_put(nonce + EPOCH_LEN, (uint64_t)expires, EXPIRES_LEN);
    if (RAND_bytes(nonce + EPOCH_LEN + EXPIRES_LEN, RANDOM_LEN) != 1)
        return RP_ERR_CRYPTO;
    err = mac(key, tag_issued, nonce, NULL, 0, nonce + BODY_LEN);
    if (err == RP_OK)
        err = mac(key, tag_device, nonce, device, RP_SHA256_LEN, nonce + BODY_LEN + MAC_LEN);
    return err;
}

rp_nonce_result_t rp_nonce_check(const uint8_t key[RP_NONCE_KEY_LEN], const uint8_t *nonce,
                                 size_t len, const uint8_t device[RP_SHA256_LEN], int64_t now,
                                 int64_t lifetime, int64_t *expires, uint32_t *epoch)
{
    uint8_t want[MAC_LEN];
    uint64_t e;

    if (nonce == NULL || len != RP_NONCE_SIZE ||
        mac(key, tag_issued, nonce, NULL, 0, want) != RP_OK ||
        rp_ct_memcmp(want, nonce + BODY_LEN, MAC_LEN) != 0)
        return RP_NONCE_UNKNOWN;
    e = rp_be_get(nonce + EPOCH_LEN, EXPIRES_LEN);
    if (e > (uint64_t)INT64_MAX)
        return RP_NONCE_UNKNOWN;
    *expires = (int64_t)e;
    *epoch = (uint32_t)rp_be_get(nonce, EPOCH_LEN);
    if (mac(key, tag_device, nonce, device, RP_SHA256_LEN, want) != RP_OK ||
        rp_ct_memcmp(want, nonce + BODY_LEN + MAC_LEN, MAC_LEN) != 0)
        return RP_NONCE_OTHER_DEVICE;
    if (now > *expires)
        return RP_NONCE_EXPIRED;
    /* expires >= now: the difference is exact in uint64_t whatever the signs. */
    if (lifetime < 0 || lifetime > INT64_MAX - RP_NONCE_AHEAD_SLACK ||
        (uint64_t)*expires - (uint64_t)now > (uint64_t)(lifetime + RP_NONCE_AHEAD_SLACK))
        return RP_NONCE_AHEAD;
    return RP_NONCE_OK;
}
