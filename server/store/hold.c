/* The servers' hold on their database (hold.h), on the drivers' holds (db.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "hold.h"
#include "rampart/log.h"

/* The locks' numbers: every replica, move and restore of one database must use the same ones.
 * LOCK_RESTORE: shared by servers and moves, exclusive by a restore, so that each refused says
 * which it met. */
enum { LOCK_SERVING = 0, LOCK_BLOBS_DIR = 1, LOCK_BLOBS_DATABASE = 2, LOCK_RESTORE = 3 };

#define RESTORE_RUNS "`rampart-server restore` runs on this database (it replaces the database)"

struct rp_hold {
    const rp_db_driver_t *drv;
    rp_db_hold_t *dh; /* NULL while lost and not taken again */
    char *target;
    rp_blobs_kind_t kind;
    bool serving; /* a serving replica's (kept at its heartbeat), not blobs move's */
    bool lost;
    unsigned taken;  /* times taken again once lost (rp_hold_stands) */
    time_t next_try; /* monotonic: once lost, when it is tried again */
};

static int kind_lock(rp_blobs_kind_t kind)
{
    return kind == RP_BLOBS_DATABASE ? LOCK_BLOBS_DATABASE : LOCK_BLOBS_DIR;
}

static rp_blobs_kind_t other_kind(rp_blobs_kind_t kind)
{
    return kind == RP_BLOBS_DATABASE ? RP_BLOBS_DIR : RP_BLOBS_DATABASE;
}

static void hold_free(rp_hold_t *h)
{
    if (h == NULL)
        return;
    if (h->dh != NULL)
        h->drv->hold_close(h->dh);
    free(h->target);
    free(h);
}

static rp_err_t hold_new(const char *target, rp_blobs_kind_t kind, rp_hold_t **out)
{
    rp_hold_t *h;

    *out = NULL;
    if (target == NULL || rp_db_driver_for(target) == NULL)
        return RP_ERR_INVALID_ARG;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return RP_ERR_NO_MEMORY;
    h->drv = rp_db_driver_for(target);
    h->kind = kind;
    h->target = strdup(target);
    if (h->target == NULL) {
        free(h);
        return RP_ERR_NO_MEMORY;
    }
    *out = h;
    return RP_OK;
}

/* A serving replica's locks, in a new driver hold. */
static rp_err_t take_serving(rp_hold_t *h, char *why, size_t cap)
{
    const char *mine = rp_blobs_kind_name(h->kind),
               *other = rp_blobs_kind_name(other_kind(h->kind));
    rp_err_t err = h->drv->hold_open(h->target, &h->dh);

    if (err == RP_OK && (err = h->drv->hold_take(h->dh, LOCK_RESTORE, false)) == RP_ERR_EXISTS)
        snprintf(why, cap, RESTORE_RUNS ": start the replicas once it has ended");
    if (err == RP_OK && (err = h->drv->hold_take(h->dh, LOCK_SERVING, false)) == RP_ERR_EXISTS)
        snprintf(why, cap,
                 "`rampart-server blobs move` runs on this database: start the replicas once it "
                 "has ended");
    if (err == RP_OK &&
        (err = h->drv->hold_take(h->dh, kind_lock(h->kind), false)) == RP_ERR_EXISTS)
        snprintf(why, cap,
                 "a replica of this database started with --blobs %s is starting too, and this one "
                 "with --blobs %s: every replica needs the same --blobs",
                 other, mine);
    /* The other kind's lock, tried exclusive: refused while a replica of that kind holds it. */
    if (err == RP_OK) {
        err = h->drv->hold_take(h->dh, kind_lock(other_kind(h->kind)), true);
        if (err == RP_OK)
            h->drv->hold_drop(h->dh, kind_lock(other_kind(h->kind)));
        else if (err == RP_ERR_EXISTS)
            snprintf(why, cap,
                     "a replica of this database serves with --blobs %s, and this one was started "
                     "with --blobs %s: they would keep uploads and images in two stores, each "
                     "unreadable to the other. Start every replica with the same --blobs "
                     "(docs/operations.md, \"Moving blobs between stores\")",
                     other, mine);
    }
    if (err != RP_OK && h->dh != NULL) {
        h->drv->hold_close(h->dh);
        h->dh = NULL;
    }
    return err;
}

rp_err_t rp_hold_serving(const char *target, rp_blobs_kind_t kind, rp_hold_t **out, char *why,
                         size_t cap)
{
    rp_err_t err = hold_new(target, kind, out);

    if (err == RP_OK && (err = take_serving(*out, why, cap)) != RP_OK) {
        hold_free(*out);
        *out = NULL;
    }
    if (err == RP_OK)
        (*out)->serving = true;
    return err;
}

/* What runs alone on the database (blobs move, restore): LOCK_RESTORE (shared for a move,
 * exclusive for a restore), then LOCK_SERVING exclusive. */
static rp_err_t take_alone(const char *target, bool restore, rp_hold_t **out, char *why, size_t cap)
{
    rp_err_t err = hold_new(target, RP_BLOBS_DIR, out);
    rp_hold_t *h = *out;

    if (err == RP_OK)
        err = h->drv->hold_open(h->target, &h->dh);
    if (err == RP_OK && (err = h->drv->hold_take(h->dh, LOCK_RESTORE, restore)) == RP_ERR_EXISTS &&
        !restore) {
        snprintf(why, cap, RESTORE_RUNS ": move once it has ended");
    } else {
        if (err == RP_OK)
            err = h->drv->hold_take(h->dh, LOCK_SERVING, true);
        if (err == RP_ERR_EXISTS)
            snprintf(why, cap, "%s",
                     restore ? "a rampart-server serves this data directory (its database, on "
                               "this machine or another), or a blobs move or another restore "
                               "runs on it: stop every replica of it first"
                             : "a rampart-server serves this database (on this machine or "
                               "another), or another blobs move runs on it: stop every replica "
                               "first, and move once");
    }
    if (err != RP_OK) {
        hold_free(h);
        *out = NULL;
    }
    return err;
}

rp_err_t rp_hold_alone(const char *target, rp_hold_t **out, char *why, size_t cap)
{
    return take_alone(target, false, out, why, cap);
}

rp_err_t rp_hold_restore(const char *target, rp_hold_t **out, char *why, size_t cap)
{
    return take_alone(target, true, out, why, cap);
}

static time_t monotonic_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec;
}

void rp_hold_keep(rp_hold_t *h)
{
    char why[400];
    rp_err_t err;

    if (h == NULL || !h->serving)
        return;
    if (!h->lost) {
        if (!h->drv->hold_lost(h->dh))
            return;
        h->lost = true;
        h->next_try = 0;
        rp_log_warn("this replica's hold on the database ended with its connection (the database "
                    "restarted?): taking it again");
    }
    if (monotonic_now() < h->next_try)
        return;
    h->next_try = monotonic_now() + RP_HOLD_RETRY;
    if (h->dh != NULL)
        h->drv->hold_close(h->dh);
    h->dh = NULL;
    err = take_serving(h, why, sizeof(why));
    if (err == RP_OK) {
        h->lost = false;
        h->taken++;
        rp_log_info("this replica's hold on the database is taken again");
    } else if (err == RP_ERR_EXISTS) {
        rp_log_error("this replica's hold on the database cannot be taken again: %s. It serves on "
                     "without it, but no blob (503 to uploads and image downloads): stop it "
                     "(tried again every %d s)",
                     why, RP_HOLD_RETRY);
    } else {
        rp_log_warn("this replica's hold on the database cannot be taken again yet (%s): tried "
                    "again in %d s",
                    rp_strerror(err), RP_HOLD_RETRY);
    }
}

bool rp_hold_stands(const rp_hold_t *h, unsigned *taken)
{
    *taken = h != NULL ? h->taken : 0;
    return h == NULL || !h->lost;
}

void rp_hold_release(rp_hold_t *h)
{
    hold_free(h);
}
