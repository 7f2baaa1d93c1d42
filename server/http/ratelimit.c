/* Per-address token buckets (see ratelimit.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ratelimit.h"

struct bucket {
    uint64_t key; /* 0: empty */
    double tokens, last;
};

struct rp_ratelimit {
    double rate, burst;
    atomic_bool off; /* rate 0 (rp_ratelimit_set): every request allowed */
    uint8_t secret[16];
    pthread_mutex_t lock;
    struct bucket b[RP_RATELIMIT_SLOTS];
};

rp_err_t rp_ratelimit_new(double rate, double burst, rp_ratelimit_t **out)
{
    rp_ratelimit_t *rl;

    *out = NULL;
    if (!(rate > 0) || burst < 1)
        return RP_ERR_INVALID_ARG;
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return RP_ERR_NO_MEMORY;
    if (RAND_bytes(rl->secret, sizeof(rl->secret)) != 1) {
        free(rl);
        return RP_ERR_CRYPTO;
    }
    rl->rate = rate;
    rl->burst = burst;
    pthread_mutex_init(&rl->lock, NULL);
    *out = rl;
    return RP_OK;
}

void rp_ratelimit_free(rp_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

/* SHA-256(secret || addr), first 8 bytes; never 0. */
static uint64_t key_of(const rp_ratelimit_t *rl, const void *addr, size_t len)
{
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint64_t k = 0;

    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, rl->secret, sizeof(rl->secret)) == 1 &&
        EVP_DigestUpdate(ctx, addr, len) == 1 && EVP_DigestFinal_ex(ctx, d, &n) == 1 && n >= 8)
        memcpy(&k, d, sizeof(k));
    EVP_MD_CTX_free(ctx);
    return k != 0 ? k : 1;
}

void rp_ratelimit_set(rp_ratelimit_t *rl, double rate, double burst)
{
    pthread_mutex_lock(&rl->lock);
    if (rate > 0) {
        rl->rate = rate;
        rl->burst = burst < 1 ? 1 : burst;
    }
    atomic_store(&rl->off, !(rate > 0));
    pthread_mutex_unlock(&rl->lock);
}

bool rp_ratelimit_allow(rp_ratelimit_t *rl, const void *addr, size_t len, double now)
{
    uint64_t k;
    struct bucket *b;
    bool ok;

    if (atomic_load(&rl->off))
        return true;
    k = key_of(rl, addr, len);
    b = &rl->b[k % RP_RATELIMIT_SLOTS];

    pthread_mutex_lock(&rl->lock);
    if (b->key != k) { /* a new address (or another's slot, reused): a full bucket */
        b->key = k;
        b->tokens = rl->burst;
        b->last = now;
    }
    if (now > b->last) {
        b->tokens += (now - b->last) * rl->rate;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
        b->last = now;
    }
    ok = b->tokens >= 1;
    if (ok)
        b->tokens -= 1;
    pthread_mutex_unlock(&rl->lock);
    return ok;
}

bool rp_ratelimit_peek(rp_ratelimit_t *rl, const void *addr, size_t len, double now)
{
    uint64_t k;
    const struct bucket *b;
    double tokens;

    if (atomic_load(&rl->off))
        return true;
    k = key_of(rl, addr, len);
    b = &rl->b[k % RP_RATELIMIT_SLOTS];
    pthread_mutex_lock(&rl->lock);
    tokens = b->key != k ? rl->burst : b->tokens + (now > b->last ? (now - b->last) * rl->rate : 0);
    pthread_mutex_unlock(&rl->lock);
    return tokens >= 1;
}
