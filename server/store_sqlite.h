/*
 * Inside the SQLite backend: the connection and the helpers its files share (store_sqlite.c for
 * the service's identity records, store_updates.c for images and deployments). Nothing outside
 * the backend includes this.
 */
#ifndef RAMPART_STORE_SQLITE_H
#define RAMPART_STORE_SQLITE_H

#include <stdbool.h>

#include <sqlite3.h>

#include "names.h"
#include "store.h"

#define STMT_CACHE_INITIAL 64 /* slots to start with: the cache doubles when they are full */

struct rp_store {
    sqlite3 *db;
    bool in_txn; /* this connection holds the process's write lock inside BEGIN ... COMMIT */
    int depth;   /* sq_begin()s not yet ended: past the first, each is a savepoint */
    /* Prepared statements by SQL string. The keys are the backend's static strings, so the cache
     * holds at most as many as the backend has (about 80): it grows to that, never further. */
    struct sq_cached {
        const char *sql;
        sqlite3_stmt *stmt;
    } * cache;
    size_t ncache, cache_cap;
    /* store_reports.c: crash bucket counts deferred to rp_store_buckets_flush (NULL: each
     * counted as its report is stored) */
    struct sq_bucket_queue *buckets;
};

/* Free the deferred bucket counts (store_reports.c; rp_store_close). */
void sq_buckets_free(rp_store_t *s);

/* Log the connection's last error; RP_ERR_IO. */
rp_err_t sq_error(rp_store_t *s, const char *what);
/* Run SQL that returns no rows. */
rp_err_t sq_exec(rp_store_t *s, const char *sql);
/*
 * A prepared statement for one of the backend's SQL strings (a static array: its address is the
 * cache key), reset and kept for the connection's life; NULL on failure (logged). Every function
 * resets the statements it used before it returns. There is no limit on distinct strings: the
 * cache grows.
 */
sqlite3_stmt *sq_stmt(rp_store_t *s, const char *sql);
/* Run a statement that returns no rows, under the write lock unless inside sq_begin(). A
 * constraint failure is RP_ERR_EXISTS. OUT: *changes (may be NULL). */
rp_err_t sq_step_done(rp_store_t *s, sqlite3_stmt *st, int *changes) RP_MUST_CHECK;
/* A transaction: sq_begin() takes the write lock and BEGIN IMMEDIATE; sq_end() commits when err
 * is RP_OK, rolls back otherwise, and returns the outcome. Inside a transaction (a caller's
 * rp_store_group_begin), they nest as a savepoint: sq_end() keeps or undoes only its own part,
 * and the outermost end commits (one sync for the lot). */
rp_err_t sq_begin(rp_store_t *s) RP_MUST_CHECK;
rp_err_t sq_end(rp_store_t *s, rp_err_t err) RP_MUST_CHECK;
/* A text column into a bounded buffer ("" for NULL). */
void sq_text_col(sqlite3_stmt *st, int col, char *out, size_t cap);
/* A new row's name: its canonical form and its keys (names.h); RP_ERR_INVALID_ARG when the name
 * breaks the rule. */
rp_err_t sq_name(const char *name, char canonical[RP_NAME_MAX + 1],
                 rp_name_keys_t *keys) RP_MUST_CHECK;
/* A token from a row whose first columns are TOKEN_COLUMNS' (store_sqlite.c): id, tenant_id,
 * role, created, expires, last_used. */
void sq_token_row(sqlite3_stmt *st, rp_token_t *t);
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
void sq_device_row(sqlite3_stmt *st, rp_device_t *d);

/* A page's condition and order (store.h's rp_page_t), after a WHERE clause: the rows whose key is
 * above :after and whose col is in the prefix's range [:lo, :hi), in key order, at most :limit.
 * SQ_PAGE_ON(key): the prefix is the key's own, and the page one index range, from the greater
 * of the cursor and the prefix (one bound: SQLite seeks on one lower bound only, and the cursor's
 * alone would read every row between it and the prefix) to the prefix's end. */
#define SQ_PAGE(key, col)                                                                          \
    " AND " key " > :after AND " col " >= :lo AND " col " < :hi ORDER BY " key " LIMIT :limit"
#define SQ_KEY_RANGE(key) key " >= max(:after, :lo) AND " key " != :after AND " key " < :hi"
#define SQ_PAGE_ON(key) " AND " SQ_KEY_RANGE(key) " ORDER BY " key " LIMIT :limit"
/* Bind SQ_PAGE's (or SQ_PAGE_ON's) parameters (by name) from p; NULL or not paged: every row. */
void sq_bind_page(sqlite3_stmt *st, const rp_page_t *p);
/* The statements of the pages that must stay index ranges, for the test of their query plans. */
extern const char *const sq_sql_device_page,
    *const sq_sql_members_page, *const sq_sql_deploy_devices, *const sq_sql_deploy_counts,
                                                                  *const sq_sql_deploy_states;

/* The device states the console counts and filters by (store.h: rp_fleet_counts_t), over
 * "devices d LEFT JOIN attestations a ON a.id = d.last_attestation"; :now and :window (seconds)
 * bound an expiring certificate. */
#define SQ_DEV_ATTESTED "(a.passed = 1 AND d.blocked = 0 AND d.quarantined_at = 0)"
#define SQ_DEV_FAILED "(a.passed = 0)"
#define SQ_DEV_BLOCKED "(d.blocked != 0)"
#define SQ_DEV_QUARANTINED "(d.quarantined_at != 0)"
#define SQ_DEV_NEVER_SEEN "(d.last_attestation IS NULL)"
#define SQ_DEV_CERT_EXPIRING                                                                       \
    "((SELECT max(not_after) FROM certificates c WHERE c.device_id = d.id AND c.revoked_at = 0)"   \
    " BETWEEN :now + 1 AND :now + :window)"
/* A new random ID, "<prefix>_" and 24 hex digits. */
rp_err_t sq_random_id(char prefix, char *out, size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_STORE_SQLITE_H */
