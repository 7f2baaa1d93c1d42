/*
 * The delta makers (deltas.h): a queue of (from, to) image pairs and the threads that make them,
 * each on its own store connection and blob store handle. Making one holds both images and the
 * delta in memory (zstd's patch-from needs the base whole: at most RP_DELTA_MAX_IMAGE each), off
 * the loops; the delta is then written to the blob store a chunk at a time. A heartbeat thread,
 * on a store connection of its own, renews the leases of the deltas being made while their
 * makers work.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deltas.h"
#include "rampart/crypto.h"
#include "rampart/delta.h"
#include "rampart/hex.h"
#include "rampart/log.h"

struct job {
    char from[RP_IMAGE_ID_SIZE], to[RP_IMAGE_ID_SIZE];
};

struct rp_deltas {
    const rp_server_t *srv;
    pthread_mutex_t lock;
    pthread_cond_t more, idle;
    struct job queue[RP_DELTAS_QUEUE_MAX];
    size_t head, n;
    struct job making[RP_DELTAS_THREADS];
    bool busy[RP_DELTAS_THREADS];
    bool leased[RP_DELTAS_THREADS]; /* making[i]'s lease is this process's: the heartbeat's */
    char holder[RP_DELTAS_THREADS][RP_DELTA_HOLDER_SIZE]; /* its claim's token */
    bool lost[RP_DELTAS_THREADS]; /* the heartbeat found it taken over: its maker gives up */
    bool stopping;
    pthread_t threads[RP_DELTAS_THREADS];
    int started;
    pthread_cond_t beat_wake; /* (monotonic clock) the heartbeat's sleep, cut short to stop */
    pthread_t beat;
    bool beat_started;
    atomic_ullong made, duplicates, failed;
};

struct maker {
    rp_deltas_t *d;
    int slot;
};

static bool same(const struct job *a, const char *from, const char *to)
{
    return strcmp(a->from, from) == 0 && strcmp(a->to, to) == 0;
}

bool rp_deltas_request(rp_deltas_t *d, const char *from, const char *to)
{
    bool queued = false, dup = false;

    if (d == NULL || strlen(from) >= RP_IMAGE_ID_SIZE || strlen(to) >= RP_IMAGE_ID_SIZE)
        return false;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->n && !dup; i++)
        dup = same(&d->queue[(d->head + i) % RP_DELTAS_QUEUE_MAX], from, to);
    for (int i = 0; i < RP_DELTAS_THREADS && !dup; i++)
        dup = d->busy[i] && same(&d->making[i], from, to);
    if (!dup && !d->stopping && d->n < RP_DELTAS_QUEUE_MAX) {
        struct job *j = &d->queue[(d->head + d->n++) % RP_DELTAS_QUEUE_MAX];
        snprintf(j->from, sizeof(j->from), "%s", from);
        snprintf(j->to, sizeof(j->to), "%s", to);
        queued = true;
        pthread_cond_signal(&d->more);
    }
    pthread_mutex_unlock(&d->lock);
    if (dup)
        atomic_fetch_add(&d->duplicates, 1);
    return queued;
}

/* A whole image blob into memory (at most RP_DELTA_MAX_IMAGE). OUT: *buf (malloc'd), *len. */
static rp_err_t read_image(rp_blobs_t *b, const char *id, uint8_t **buf, size_t *len)
{
    char name[RP_BLOB_NAME_MAX + 1];
    rp_blob_reader_t *r = NULL;
    uint64_t size = 0;
    rp_err_t err;

    *buf = NULL;
    rp_blob_name_image(id, name);
    err = rp_blob_open(b, name, &r, &size);
    if (err == RP_OK && size > RP_DELTA_MAX_IMAGE)
        err = RP_ERR_TOO_LARGE;
    if (err == RP_OK && (*buf = malloc(size > 0 ? (size_t)size : 1)) == NULL)
        err = RP_ERR_NO_MEMORY;
    if (err == RP_OK)
        err = rp_blob_read_all(r, 0, *buf, (size_t)size);
    rp_blob_close(r);
    if (err != RP_OK) {
        free(*buf);
        *buf = NULL;
        return err;
    }
    *len = (size_t)size;
    return RP_OK;
}

/* Whether slot's maker holds its job's lease, under holder's token (the heartbeat renews it while
 * it does); NULL: no more. */
static void set_leased(rp_deltas_t *d, int slot, const char *holder)
{
    pthread_mutex_lock(&d->lock);
    d->leased[slot] = holder != NULL;
    d->lost[slot] = false;
    if (holder != NULL)
        snprintf(d->holder[slot], sizeof(d->holder[slot]), "%s", holder);
    pthread_mutex_unlock(&d->lock);
}

/* Whether slot's maker still holds its lease, before it writes: not if the heartbeat found it
 * taken over (it was stopped or stalled past it, and another replica makes the delta), nor if
 * renewing it now finds so. RP_ERR_NOT_FOUND: the maker gives up and writes nothing. */
static rp_err_t still_held(rp_deltas_t *d, int slot, rp_store_t *s, const struct job *j,
                           const char *holder, bool *taken)
{
    rp_err_t err;

    pthread_mutex_lock(&d->lock);
    *taken = d->lost[slot];
    pthread_mutex_unlock(&d->lock);
    err = *taken ? RP_ERR_NOT_FOUND
                 : rp_store_delta_renew(s, j->from, j->to, RP_DELTAS_LEASE, holder);
    *taken = err == RP_ERR_NOT_FOUND;
    return err;
}

/* A blob of the name already is one a maker cut dead before its row left (none is served before
 * its row says made): removed, since a name kept keeps its bytes (blob.h) and these (of another
 * zstd, maybe) are the ones hashed here. Only while this maker holds the lease, checked in one
 * transaction with the removal (the writers' lock: no other replica takes the lease over and
 * commits its delta between the two): one that lost it would remove the new holder's, which a
 * device may be downloading. */
static rp_err_t remove_held(rp_deltas_t *d, int slot, rp_store_t *s, rp_blobs_t *b,
                            const struct job *j, const char *holder, const char *name, bool *taken)
{
    rp_err_t err = rp_store_group_begin(s);

    if (err != RP_OK)
        return err;
    err = still_held(d, slot, s, j, holder, taken);
    if (err == RP_OK && (err = rp_blob_remove(b, name)) == RP_ERR_NOT_FOUND)
        err = RP_OK;
    return rp_store_group_end(s, err);
}

/* Make one delta, if this maker wins its lease. */
static void make(rp_deltas_t *d, int slot, rp_store_t *s, rp_blobs_t *b, const struct job *j)
{
    char name[RP_BLOB_NAME_MAX + 1], hex[2 * RP_SHA256_LEN + 1];
    uint8_t *base = NULL, *target = NULL, *delta = NULL, digest[RP_SHA256_LEN];
    size_t blen = 0, tlen = 0, dlen = 0;
    char holder[RP_DELTA_HOLDER_SIZE];
    bool taken = false; /* the lease found taken over: nothing written, nothing to give back */
    rp_blob_writer_t *w = NULL;
    rp_err_t err = rp_store_delta_claim(s, j->from, j->to, RP_DELTAS_LEASE, holder);

    if (err == RP_ERR_EXISTS) { /* made, or being made by another replica */
        atomic_fetch_add(&d->duplicates, 1);
        return;
    }
    if (err != RP_OK) { /* no lease taken: nothing to give back; the next request tries again */
        atomic_fetch_add(&d->failed, 1);
        rp_log_warn("delta %.12s -> %.12s: %s", j->from, j->to, rp_strerror(err));
        return;
    }
    set_leased(d, slot, holder);
    rp_blob_name_delta(j->from, j->to, name);
    err = read_image(b, j->from, &base, &blen);
    if (err == RP_OK)
        err = read_image(b, j->to, &target, &tlen);
    if (err == RP_OK)
        err = rp_delta_make_buf(base, blen, target, tlen, &delta, &dlen);
    free(base);
    free(target);
    if (err == RP_OK)
        err = rp_sha256(delta, dlen, digest);
    if (err == RP_OK)
        err = rp_hex_encode(digest, sizeof(digest), hex, sizeof(hex));
    if (err == RP_OK)
        err = remove_held(d, slot, s, b, j, holder, name, &taken);
    if (err == RP_OK)
        err = rp_blob_put_begin(b, name, &w);
    if (err == RP_OK) {
        err = rp_blob_put_write(w, delta, dlen);
        if (err == RP_OK) /* (a commit keeps a blob the name holds: this saves a vain one) */
            err = still_held(d, slot, s, j, holder, &taken);
        if (err == RP_OK)
            err = rp_blob_put_commit(w);
        else
            rp_blob_put_abort(w);
    }
    free(delta);
    /* The blob before the row that says it is made. */
    if (err == RP_OK)
        taken =
            (err = rp_store_delta_made(s, j->from, j->to, holder, hex, dlen)) == RP_ERR_NOT_FOUND;
    set_leased(d, slot, NULL);
    if (taken) { /* taken over: the delta is the new holder's to make */
        atomic_fetch_add(&d->failed, 1);
        rp_log_warn("delta %.12s -> %.12s: its lease was taken over (this maker was stopped or"
                    " stalled past it): abandoned",
                    j->from, j->to);
        return;
    }
    if (err != RP_OK) {
        atomic_fetch_add(&d->failed, 1);
        rp_log_warn("delta %.12s -> %.12s: %s", j->from, j->to, rp_strerror(err));
        if (rp_store_delta_release(s, j->from, j->to, holder) != RP_OK)
            rp_log_warn("delta %.12s -> %.12s: its lease stays until it expires", j->from, j->to);
        return;
    }
    atomic_fetch_add(&d->made, 1);
    rp_log_info("made the delta %.12s -> %.12s (%zu bytes)", j->from, j->to, dlen);
}

static void *maker_main(void *arg)
{
    struct maker *m = arg;
    rp_deltas_t *d = m->d;
    int slot = m->slot;
    rp_store_t *s = NULL;
    rp_blobs_t *b = NULL;
    rp_err_t err = rp_server_store_open(d->srv, &s);

    free(m);
    if (err == RP_OK)
        err = rp_server_blobs_open(d->srv, s, &b);
    if (err != RP_OK)
        rp_log_error("delta maker: cannot open the store (%s): no deltas are made",
                     rp_strerror(err));
    pthread_mutex_lock(&d->lock);
    for (;;) {
        struct job j;
        while (d->n == 0 && !d->stopping)
            pthread_cond_wait(&d->more, &d->lock);
        if (d->stopping)
            break;
        j = d->queue[d->head];
        d->head = (d->head + 1) % RP_DELTAS_QUEUE_MAX;
        d->n--;
        d->making[slot] = j;
        d->busy[slot] = true;
        pthread_mutex_unlock(&d->lock);
        if (err == RP_OK)
            make(d, slot, s, b, &j);
        pthread_mutex_lock(&d->lock);
        d->busy[slot] = false;
        pthread_cond_broadcast(&d->idle);
    }
    pthread_mutex_unlock(&d->lock);
    rp_blobs_close(b);
    rp_store_close(s);
    return NULL;
}

/* The lease under holder's token found taken over: its maker's no more, and lost to it. */
static void mark_lost(rp_deltas_t *d, const char *holder)
{
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < RP_DELTAS_THREADS; i++)
        if (d->busy[i] && d->leased[i] && strcmp(d->holder[i], holder) == 0) {
            d->leased[i] = false;
            d->lost[i] = true;
        }
    pthread_mutex_unlock(&d->lock);
}

/* Renew, every RP_DELTAS_BEAT seconds, the leases this process's makers hold. A renewal that
 * fails (the database out of reach) is logged: the lease may then lapse and be taken over. One
 * that finds the lease no longer its maker's (taken over while this process was stopped) marks
 * it lost: the maker gives up before it writes (still_held). */
static void *beat_main(void *arg)
{
    rp_deltas_t *d = arg;
    rp_store_t *s = NULL;
    rp_err_t err = rp_server_store_open(d->srv, &s);

    if (err != RP_OK)
        rp_log_error("delta heartbeat: cannot open the store (%s): a lease lasts %d s",
                     rp_strerror(err), RP_DELTAS_LEASE);
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        struct job held[RP_DELTAS_THREADS];
        char holder[RP_DELTAS_THREADS][RP_DELTA_HOLDER_SIZE];
        struct timespec until;
        int n = 0;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += RP_DELTAS_BEAT;
        while (!d->stopping && pthread_cond_timedwait(&d->beat_wake, &d->lock, &until) == 0)
            ;
        for (int i = 0; i < RP_DELTAS_THREADS && !d->stopping; i++)
            if (d->busy[i] && d->leased[i]) {
                memcpy(holder[n], d->holder[i], sizeof(holder[n]));
                held[n++] = d->making[i];
            }
        pthread_mutex_unlock(&d->lock);
        for (int i = 0; i < n && err == RP_OK; i++) {
            rp_err_t e =
                rp_store_delta_renew(s, held[i].from, held[i].to, RP_DELTAS_LEASE, holder[i]);
            if (e == RP_ERR_NOT_FOUND)
                mark_lost(d, holder[i]);
            else if (e != RP_OK)
                rp_log_warn("delta %.12s -> %.12s: cannot renew its lease: %s", held[i].from,
                            held[i].to, rp_strerror(e));
        }
        pthread_mutex_lock(&d->lock);
    }
    pthread_mutex_unlock(&d->lock);
    rp_store_close(s);
    return NULL;
}

rp_err_t rp_deltas_start(const rp_server_t *srv, rp_deltas_t **out)
{
    pthread_condattr_t mono;
    rp_deltas_t *d = calloc(1, sizeof(*d));

    *out = NULL;
    if (d == NULL)
        return RP_ERR_NO_MEMORY;
    d->srv = srv;
    if (pthread_condattr_init(&mono) != 0) {
        free(d);
        return RP_ERR_NO_MEMORY;
    }
    if (pthread_condattr_setclock(&mono, CLOCK_MONOTONIC) != 0 ||
        pthread_mutex_init(&d->lock, NULL) != 0 || pthread_cond_init(&d->more, NULL) != 0 ||
        pthread_cond_init(&d->idle, NULL) != 0 || pthread_cond_init(&d->beat_wake, &mono) != 0) {
        pthread_condattr_destroy(&mono);
        free(d);
        return RP_ERR_NO_MEMORY;
    }
    pthread_condattr_destroy(&mono);
    for (int i = 0; i < RP_DELTAS_THREADS; i++) {
        struct maker *m = malloc(sizeof(*m));
        if (m == NULL)
            break;
        *m = (struct maker){d, i};
        if (pthread_create(&d->threads[i], NULL, maker_main, m) != 0) {
            free(m);
            break;
        }
        d->started++;
    }
    d->beat_started = d->started > 0 && pthread_create(&d->beat, NULL, beat_main, d) == 0;
    if (!d->beat_started) { /* no maker, or none whose lease would be kept */
        rp_deltas_stop(d);
        return RP_ERR_NO_MEMORY;
    }
    *out = d;
    return RP_OK;
}

void rp_deltas_drain(rp_deltas_t *d)
{
    bool busy = true;

    pthread_mutex_lock(&d->lock);
    while (busy) {
        busy = d->n > 0;
        for (int i = 0; i < RP_DELTAS_THREADS; i++)
            busy = busy || d->busy[i];
        if (busy)
            pthread_cond_wait(&d->idle, &d->lock);
    }
    pthread_mutex_unlock(&d->lock);
}

void rp_deltas_stop(rp_deltas_t *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_broadcast(&d->more);
    pthread_cond_broadcast(&d->beat_wake);
    pthread_mutex_unlock(&d->lock);
    for (int i = 0; i < d->started; i++)
        pthread_join(d->threads[i], NULL);
    if (d->beat_started)
        pthread_join(d->beat, NULL);
    pthread_cond_destroy(&d->beat_wake);
    pthread_cond_destroy(&d->more);
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

unsigned long long rp_deltas_made(rp_deltas_t *d)
{
    return d != NULL ? atomic_load(&d->made) : 0;
}

void rp_deltas_metrics(rp_deltas_t *d, struct evbuffer *buf)
{
    if (d == NULL)
        return;
    evbuffer_add_printf(buf,
                        "# HELP rampart_deltas_total Deltas between images: made here, asked for "
                        "again while queued or made elsewhere (dropped), failed.\n"
                        "# TYPE rampart_deltas_total counter\n"
                        "rampart_deltas_total{result=\"made\"} %llu\n"
                        "rampart_deltas_total{result=\"dropped\"} %llu\n"
                        "rampart_deltas_total{result=\"failed\"} %llu\n",
                        (unsigned long long)atomic_load(&d->made),
                        (unsigned long long)atomic_load(&d->duplicates),
                        (unsigned long long)atomic_load(&d->failed));
}
