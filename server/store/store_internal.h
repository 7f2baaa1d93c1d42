/*
 * Inside the store: the connection (a db.h driver's), the statement cache, the write lock's
 * state, and the helpers the store's files share (store.c for the service's identity records,
 * store_updates.c for images and deployments, ...). The db_* wrappers below are the only way the
 * store's files reach the driver: short names for st->drv's operations. Nothing outside the store
 * includes this.
 */
#ifndef RAMPART_STORE_INTERNAL_H
#define RAMPART_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "db.h"
#include "names.h"
#include "store.h"

#define STMT_CACHE_INITIAL 64 /* slots to start with: the cache doubles when they are full */

/* One of the store's statements: the driver's, with the connection it belongs to and the first
 * failure of its bindings since it was taken (a statement whose binding failed is not run). */
typedef struct sq_st {
    rp_db_stmt_t *h;
    rp_store_t *s;
    rp_err_t bind_err;
} sq_st_t;

struct rp_store {
    rp_db_t *db;
    bool in_txn;  /* this connection holds the process's write lock inside BEGIN ... COMMIT */
    int depth;    /* sq_begin()s not yet ended: past the first, each is a savepoint */
    rp_err_t err; /* the class (db.h) of the last failed step, for sq_error */
    /* What rp_store_failure answers: RP_ERR_BUSY or RP_ERR_INVALID_ARG once a step failed so
     * since rp_store_failure_forget (BUSY wins), else RP_OK. */
    rp_err_t noted;
    /* Prepared statements by SQL string. The keys are the backend's static strings, so the cache
     * holds at most as many as the backend has (about 80): it grows to that, never further. */
    struct sq_cached {
        const char *sql;
        sq_st_t *stmt;
    } * cache;
    size_t ncache, cache_cap;
    /* store_reports.c: crash bucket counts deferred to rp_store_buckets_flush (NULL: each
     * counted as its report is stored) */
    struct sq_bucket_queue *buckets;
};

/*
 * The engine a connection speaks. The store's SQL is one text for both wherever it can be; what
 * differs has one owner each: a statement's forms side by side where it is defined (an array
 * indexed by this, taken by sq_stmt_of), the unbounded page (sq_bind_page), the schema's start
 * (sq_migrate) and the write check (rp_store_write_check).
 */
typedef enum { SQ_SQLITE = 0, SQ_PG = 1, SQ_ENGINES = 2 } sq_engine_t;
sq_engine_t sq_engine(const rp_store_t *s);
/* The database's clock (seconds since the epoch, now: not a transaction's start, which may be
 * long before a lock was had): the one clock the replicas share, for the times they compare
 * with each other's (a delta's lease). */
rp_err_t sq_db_now(rp_store_t *s, int64_t *now) RP_MUST_CHECK;
/* No limit, in SQL both engines take (SQLite's LIMIT -1 is an error in PostgreSQL, PostgreSQL's
 * LIMIT NULL one in SQLite): the greatest 64-bit integer. */
#define SQ_NO_LIMIT "9223372036854775807"
/* Whether text can be in the database: PostgreSQL holds valid UTF-8 only (and refuses any other
 * text bound to a statement), so a lookup by other text finds nothing there. */
bool sq_text_storable(const rp_store_t *s, const char *text);

/* ---- the driver's operations on a statement, in the store's words ---- */

/* db_step's answers: a row to read, done, or a failure (logged by the driver; its class is the
 * connection's s->err, which sq_error returns). DB_NOMEM: the store's own, for a copy it failed
 * to make of a row. */
enum { DB_NOMEM = -2, DB_ERROR = -1, DB_DONE = 0, DB_ROW = 1 };

/* Keep in mind a failure a caller answers differently (rp_store_failure): a lost race or
 * connection (RP_ERR_BUSY) before text the engine cannot hold (RP_ERR_INVALID_ARG). */
static inline void sq_note(rp_store_t *s, rp_err_t err)
{
    if (err == RP_ERR_BUSY || (err == RP_ERR_INVALID_ARG && s->noted == RP_OK))
        s->noted = err;
}

static inline void db_bound(sq_st_t *st, rp_err_t err)
{
    if (err != RP_OK && st->bind_err == RP_OK)
        st->bind_err = err;
}
/* Index 0 is db_param's "no parameter of that name": a binding by name to a statement without
 * it binds nothing (bind_deployment, sq_bind_page bind every name their statements may use). */
static inline void db_bind_int64(sq_st_t *st, int i, int64_t v)
{
    if (i == 0)
        return;
    db_bound(st, st->h->drv->bind_int64(st->h, i, v));
}
static inline void db_bind_int(sq_st_t *st, int i, int v)
{
    if (i == 0)
        return;
    db_bound(st, st->h->drv->bind_int64(st->h, i, v));
}
static inline void db_bind_double(sq_st_t *st, int i, double v)
{
    if (i == 0)
        return;
    db_bound(st, st->h->drv->bind_double(st->h, i, v));
}
/* A C string (NULL binds NULL). */
static inline void db_bind_text(sq_st_t *st, int i, const char *v)
{
    if (i == 0)
        return;
    db_bound(st, v != NULL ? st->h->drv->bind_text(st->h, i, v, strlen(v))
                           : st->h->drv->bind_null(st->h, i));
}
static inline void db_bind_blob(sq_st_t *st, int i, const void *v, size_t len)
{
    if (i == 0)
        return;
    db_bound(st, st->h->drv->bind_blob(st->h, i, v, len));
}
static inline void db_bind_null(sq_st_t *st, int i)
{
    if (i == 0)
        return;
    db_bound(st, st->h->drv->bind_null(st->h, i));
}
static inline int db_param(sq_st_t *st, const char *name)
{
    return st->h->drv->param_index(st->h, name);
}
static inline int db_step(sq_st_t *st)
{
    bool row = false;
    rp_err_t err = st->bind_err;

    if (err == RP_OK)
        err = st->h->drv->step(st->h, &row);
    st->s->err = err;
    sq_note(st->s, err);
    if (err != RP_OK)
        return DB_ERROR;
    return row ? DB_ROW : DB_DONE;
}
static inline void db_reset(sq_st_t *st)
{
    st->h->drv->reset(st->h);
    st->bind_err = RP_OK;
}
static inline bool db_column_null(sq_st_t *st, int col)
{
    return st->h->drv->column_null(st->h, col);
}
static inline int64_t db_column_int64(sq_st_t *st, int col)
{
    return st->h->drv->column_int64(st->h, col);
}
static inline int db_column_int(sq_st_t *st, int col)
{
    return (int)st->h->drv->column_int64(st->h, col);
}
static inline double db_column_double(sq_st_t *st, int col)
{
    return st->h->drv->column_double(st->h, col);
}
/* "" for NULL. */
static inline const char *db_column_text(sq_st_t *st, int col)
{
    return st->h->drv->column_text(st->h, col);
}
static inline const void *db_column_blob(sq_st_t *st, int col)
{
    size_t len;
    return st->h->drv->column_blob(st->h, col, &len);
}
static inline int db_column_bytes(sq_st_t *st, int col)
{
    size_t len;
    (void)st->h->drv->column_blob(st->h, col, &len);
    return len > INT32_MAX ? INT32_MAX : (int)len;
}

/* A statement of SQL made at run time (not one of the backend's static strings), not cached:
 * NULL on failure (logged); sq_finalize() it. */
sq_st_t *sq_prepare(rp_store_t *s, const char *sql);
void sq_finalize(sq_st_t *st);

/* The schema's migrations in order (migrations.c), and bringing the database to the newest. */
extern const char *const rp_store_migrations[];
rp_err_t sq_migrate(rp_store_t *s) RP_MUST_CHECK;

/* Free the deferred bucket counts (store_reports.c; rp_store_close). */
void sq_buckets_free(rp_store_t *s);

/* Log what failed (the driver has logged why); the failed step's class when it was a lost race
 * (RP_ERR_BUSY) or memory, else RP_ERR_IO. */
rp_err_t sq_error(rp_store_t *s, const char *what);
/* Run SQL that returns no rows. */
rp_err_t sq_exec(rp_store_t *s, const char *sql);
/*
 * A prepared statement for one of the backend's SQL strings (a static array: its address is the
 * cache key), reset and kept for the connection's life; NULL on failure (logged). Every function
 * resets the statements it used before it returns. There is no limit on distinct strings: the
 * cache grows.
 */
sq_st_t *sq_stmt(rp_store_t *s, const char *sql);
/* The same for a statement whose SQL differs per engine: forms[SQ_SQLITE], forms[SQ_PG]. */
#define sq_stmt_of(s, forms) sq_stmt((s), (forms)[sq_engine(s)])
/* Run a statement that returns no rows, under the write lock unless inside sq_begin(). A
 * constraint failure is RP_ERR_EXISTS, a lost race RP_ERR_BUSY (db.h). OUT: *changes (may be
 * NULL). */
rp_err_t sq_step_done(rp_store_t *s, sq_st_t *st, int *changes) RP_MUST_CHECK;
/* The same for an INSERT ... RETURNING id: OUT: *id, the new row's. */
rp_err_t sq_step_id(rp_store_t *s, sq_st_t *st, int64_t *id) RP_MUST_CHECK;
/* A transaction: sq_begin() takes the process's write lock and the driver's begin() (the
 * database's write lock; SQLite: BEGIN IMMEDIATE); sq_end() commits when err is RP_OK, rolls
 * back otherwise, and returns the outcome. Inside a transaction (a caller's
 * rp_store_group_begin), they nest as a savepoint: sq_end() keeps or undoes only its own part,
 * and the outermost end commits (one sync for the lot). */
rp_err_t sq_begin(rp_store_t *s) RP_MUST_CHECK;
rp_err_t sq_end(rp_store_t *s, rp_err_t err) RP_MUST_CHECK;
/* A text column into a bounded buffer ("" for NULL). */
void sq_text_col(sq_st_t *st, int col, char *out, size_t cap);
/* A new row's name: its canonical form and its keys (names.h); RP_ERR_INVALID_ARG when the name
 * breaks the rule. */
rp_err_t sq_name(const char *name, char canonical[RP_NAME_MAX + 1],
                 rp_name_keys_t *keys) RP_MUST_CHECK;
/* A token from a row whose first columns are TOKEN_COLUMNS' (store.c): id, tenant_id,
 * role, created, expires, last_used, made_by. */
void sq_token_row(sq_st_t *st, rp_token_t *t);
/* A device's columns (rp_device_t), read by sq_device_row: FROM devices d LEFT JOIN attestations a
 * ON a.id = d.last_attestation. */
#define SQ_DEVICE_COLUMNS                                                                          \
    "SELECT d.id, d.tenant_id, d.blocked, d.claimed_at, d.blocked_at, d.spki,"                     \
    " a.at, a.passed, a.reason,"                                                                   \
    " (SELECT serial FROM certificates c WHERE c.device_id = d.id AND c.revoked_at = 0"            \
    "   ORDER BY c.not_after DESC LIMIT 1),"                                                       \
    " (SELECT max(not_after) FROM certificates c WHERE c.device_id = d.id AND c.revoked_at = 0),"  \
    " d.quarantined_at, d.quarantine_reason"                                                       \
    " FROM devices d LEFT JOIN attestations a ON a.id = d.last_attestation"
void sq_device_row(sq_st_t *st, rp_device_t *d);

/* A page's condition and order (store.h's rp_page_t), after a WHERE clause: the rows whose key is
 * above :after and whose col is in the prefix's range [:lo, :hi), in key order, at most :limit.
 * SQ_PAGE_ON(key): the prefix is the key's own, and the page one index range, from the greater
 * of the cursor and the prefix (one bound: SQLite seeks on one lower bound only, and the cursor's
 * alone would read every row between it and the prefix) to the prefix's end. */
#define SQ_PAGE(key, col)                                                                          \
    " AND " key " > :after AND " col " >= :lo AND " col " < :hi ORDER BY " key " LIMIT :limit"
#define SQ_KEY_RANGE(key) key " >= greatest(:after, :lo) AND " key " != :after AND " key " < :hi"
#define SQ_PAGE_ON(key) " AND " SQ_KEY_RANGE(key) " ORDER BY " key " LIMIT :limit"
/* Bind SQ_PAGE's (or SQ_PAGE_ON's) parameters (by name) from p; NULL or not paged: every row. */
void sq_bind_page(sq_st_t *st, const rp_page_t *p);
/* The statements of the pages that must stay index ranges, for the test of their query plans. */
extern const char *const sq_sql_device_page[RP_DEVICE_STATE_COUNT],
    *const sq_sql_members_page, *const sq_sql_deploy_devices;
/* The read of the fleet's versions (rp_store_fleet_versions; its parameters the tenant and the
 * limit), for bench/fleet's count of what it reads. */
extern const char sq_sql_fleet_versions[];
/* The count of a device's re-enrollments in a window (store.c: rp_store_cert_reissue); bench/fleet
 * measures its reads. */
extern const char sq_sql_reissued_recent[];

/* The device states the console counts and filters by (store.h: rp_fleet_counts_t), over
 * "devices d" (its row holds its last verdict: no join); :now and :window (seconds) bound an
 * expiring certificate. */
#define SQ_DEV_ATTESTED "(d.last_passed = 1 AND d.blocked = 0 AND d.quarantined_at = 0)"
#define SQ_DEV_FAILED "(d.last_passed = 0)"          /* the index devices_failed's condition */
#define SQ_DEV_BLOCKED "(d.blocked != 0)"            /* devices_blocked's */
#define SQ_DEV_QUARANTINED "(d.quarantined_at != 0)" /* devices_quarantined's */
#define SQ_DEV_NEVER_SEEN "(d.last_attestation IS NULL)"
#define SQ_DEV_CERT_EXPIRING                                                                       \
    "((SELECT max(not_after) FROM certificates c WHERE c.device_id = d.id AND c.revoked_at = 0)"   \
    " BETWEEN :now + 1 AND :now + :window)"
/* A device's state as the fleet's counts see it (device_counts). */
typedef struct sq_device_state {
    bool exists;
    char tenant_id[RP_ID_SIZE];
    bool seen;  /* an attestation recorded (last_attestation) */
    int passed; /* its verdict (last_passed): -1 none, 0 failed, 1 passed */
    bool blocked;
    bool quarantined;
} sq_device_state_t;
/* The device's state now (exists false: no such device). Inside the write transaction, which
 * holds the store's write lock on either engine: what it reads stays true until the commit. */
rp_err_t sq_device_state(rp_store_t *s, const char *device_id,
                         sq_device_state_t *out) RP_MUST_CHECK;
/* The rule of the counters: the tenant's device_counts moved from what `before` counts to what
 * `after` counts (SQ_DEV_*'s conditions), writing only the states that differ (none when they
 * agree: a verdict repeated writes nothing). Every writer of a device's state calls it, in the
 * transaction of its write. */
rp_err_t sq_device_counts_move(rp_store_t *s, const sq_device_state_t *before,
                               const sq_device_state_t *after) RP_MUST_CHECK;
/* The one way a device loses its certificates, inside the caller's transaction (a block, a
 * quarantine, a proven failed attestation): every unrevoked certificate of the device revoked at
 * `now` for `why` (rp_revoked_for_t), and its tenant's CRL number moved when one was (a cached CRL
 * is then stale). */
rp_err_t sq_device_revoke(rp_store_t *s, const char *tenant_id, const char *device_id, int64_t now,
                          rp_revoked_for_t why) RP_MUST_CHECK;
/* The device's bars lifted (sq_device_write: it was blocked or quarantined and is now neither):
 * its certificates revoked for a bar (RP_REVOKED_OTHER) marked RP_REVOKED_LIFTED, inside the
 * caller's transaction, so that a proven failure, before or after, is the only bar they show
 * (review r10 L3: recovery must not depend on the order of the bars). */
rp_err_t sq_device_bars_lifted(rp_store_t *s, const char *device_id) RP_MUST_CHECK;
/* A write of a device's state in one transaction with its counters: `write` (ctx) inside it,
 * then the counters moved from the state before to the state after. */
rp_err_t sq_device_write(rp_store_t *s, const char *device_id,
                         rp_err_t (*write)(rp_store_t *s, void *ctx), void *ctx) RP_MUST_CHECK;

/* What a device adds to the versions the fleet page counts (version_counts: migration 24): its
 * tenant, its group's product ("" in none), and the component and version of each app it last
 * reported. Only two writes change it: a status report's app list (rp_store_device_status_put)
 * and a move to another group (rp_store_device_assign); a claim never moves a device to another
 * tenant, and no device is ever deleted. */
typedef struct sq_device_versions {
    bool exists;
    char tenant_id[RP_ID_SIZE];
    char product_id[RP_ID_SIZE];
    size_t napps;
    struct sq_app_version {
        char component[sizeof(((rp_device_app_t *)0)->component)];
        char version[sizeof(((rp_device_app_t *)0)->version)];
    } apps[RP_DEVICE_APPS_MAX];
} sq_device_versions_t;
/* The device's now, inside the write transaction (as sq_device_state). */
rp_err_t sq_device_versions(rp_store_t *s, const char *device_id,
                            sq_device_versions_t *out) RP_MUST_CHECK;
/* The rule of the versions' counters: -1 for each (tenant, product, component, version) `before`
 * counts and `after` does not, +1 for each `after` counts and `before` does not (a row whose
 * count reaches 0 goes); nothing written when they agree (a report of the same versions, a move
 * within a product). Every writer of what sq_device_versions reads calls it, in its transaction. */
rp_err_t sq_versions_move(rp_store_t *s, const sq_device_versions_t *before,
                          const sq_device_versions_t *after) RP_MUST_CHECK;

/* A new random ID, "<prefix>_" and 24 hex digits. */
rp_err_t sq_random_id(char prefix, char *out, size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_STORE_INTERNAL_H */
