/* Connections counted per client address (see peers.h): open addressing with linear probing,
 * the address hashed with a per-process secret so that no one can aim at long probe runs. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "peers.h"

struct slot {
    uint8_t key[RP_PEER_KEY_LEN];
    uint32_t count; /* 0: empty */
    uint32_t hash;
};

struct rp_peers {
    pthread_mutex_t lock;
    uint8_t secret[16];
    size_t mask, used;
    struct slot *slots;
};

rp_err_t rp_peers_new(size_t max_open, rp_peers_t **out)
{
    rp_peers_t *p;
    size_t cap = 64;

    *out = NULL;
    /* At most half full while every connection the service may hold is open: probe runs stay
     * short. */
    while (cap < 2 * max_open + 64) {
        if (cap > SIZE_MAX / 4 / sizeof(struct slot))
            return RP_ERR_INVALID_ARG;
        cap *= 2;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return RP_ERR_NO_MEMORY;
    p->slots = calloc(cap, sizeof(struct slot));
    if (p->slots == NULL) {
        free(p);
        return RP_ERR_NO_MEMORY;
    }
    if (RAND_bytes(p->secret, sizeof(p->secret)) != 1) {
        free(p->slots);
        free(p);
        return RP_ERR_CRYPTO;
    }
    p->mask = cap - 1;
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return RP_OK;
}

void rp_peers_free(rp_peers_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_destroy(&p->lock);
    free(p->slots);
    free(p);
}

bool rp_peer_key(const struct sockaddr *sa, socklen_t len, uint8_t key[RP_PEER_KEY_LEN])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(key, 0, RP_PEER_KEY_LEN);
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        /* As its IPv4-mapped IPv6 form: the same client over either socket family is one. */
        memcpy(key, mapped, sizeof(mapped));
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, mapped, sizeof(mapped)) == 0)
            memcpy(key, a, RP_PEER_KEY_LEN);
        else
            memcpy(key, a, 8); /* the /64; the rest stays zero, unlike any mapped address */
        return true;
    }
    return false;
}

static uint32_t hash_of(const rp_peers_t *p, const uint8_t key[RP_PEER_KEY_LEN])
{
    uint8_t in[sizeof(p->secret) + RP_PEER_KEY_LEN], d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    uint32_t h = 0;

    memcpy(in, p->secret, sizeof(p->secret));
    memcpy(in + sizeof(p->secret), key, RP_PEER_KEY_LEN);
    /* Should the digest fail, every address hashes alike: slower, never wrong. */
    if (EVP_Digest(in, sizeof(in), d, &n, EVP_sha256(), NULL) == 1 && n >= 4)
        memcpy(&h, d, sizeof(h));
    return h;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const rp_peers_t *p, const uint8_t key[RP_PEER_KEY_LEN], uint32_t h)
{
    size_t i = h & p->mask;

    while (p->slots[i].count != 0 && memcmp(p->slots[i].key, key, RP_PEER_KEY_LEN) != 0)
        i = (i + 1) & p->mask;
    return i;
}

/* Empty slot i, moving back the entries after it that would no longer be found (backward-shift
 * deletion: no tombstones, so probe runs never grow with churn). */
static void remove_at(rp_peers_t *p, size_t i)
{
    size_t j = i;

    for (;;) {
        size_t home;
        j = (j + 1) & p->mask;
        if (p->slots[j].count == 0)
            break;
        home = p->slots[j].hash & p->mask;
        /* j's entry may move to i unless its home lies cyclically in (i, j]. */
        if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
            p->slots[i] = p->slots[j];
            i = j;
        }
    }
    memset(&p->slots[i], 0, sizeof(p->slots[i]));
    p->used--;
}

bool rp_peers_take(rp_peers_t *p, const uint8_t key[RP_PEER_KEY_LEN], unsigned limit)
{
    uint32_t h = hash_of(p, key);
    struct slot *s;
    bool ok = false;

    pthread_mutex_lock(&p->lock);
    s = &p->slots[find(p, key, h)];
    if (s->count != 0) {
        ok = s->count < limit;
        if (ok)
            s->count++;
    } else if (limit > 0 && p->used < p->mask) { /* one slot always stays empty: probes end */
        memcpy(s->key, key, RP_PEER_KEY_LEN);
        s->hash = h;
        s->count = 1;
        p->used++;
        ok = true;
    }
    pthread_mutex_unlock(&p->lock);
    return ok;
}

void rp_peers_release(rp_peers_t *p, const uint8_t key[RP_PEER_KEY_LEN])
{
    uint32_t h = hash_of(p, key);
    size_t i;

    pthread_mutex_lock(&p->lock);
    i = find(p, key, h);
    if (p->slots[i].count > 0 && --p->slots[i].count == 0)
        remove_at(p, i);
    pthread_mutex_unlock(&p->lock);
}

unsigned rp_peers_open(rp_peers_t *p, const uint8_t key[RP_PEER_KEY_LEN])
{
    uint32_t h = hash_of(p, key);
    unsigned n;

    pthread_mutex_lock(&p->lock);
    n = p->slots[find(p, key, h)].count;
    pthread_mutex_unlock(&p->lock);
    return n;
}
