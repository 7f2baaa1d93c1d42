/*
 * The web console's records in the store: sessions and one-time login links (by the
 * SHA-256 of their secret, tied to a token), and the counts its fleet page shows - devices by
 * state, versions running, attestations over time - each one SQL query over indexed rows.
 */
#include <string.h>

#include "store_internal.h"

static const char SQL_SESSION_ADD[] =
    "INSERT INTO console_sessions (hash, token_id, created, expires) VALUES (?, ?, ?, ?)";
/* A revoked token's row is gone: the join finds no session for it. */
static const char SQL_SESSION_LOOKUP[] =
    "SELECT t.id, t.tenant_id, t.role, t.created, t.expires, t.last_used, s.expires"
    " FROM console_sessions s JOIN tokens t ON t.id = s.token_id"
    " WHERE s.hash = ? AND s.expires > ?";
static const char SQL_SESSION_DELETE[] = "DELETE FROM console_sessions WHERE hash = ?";
static const char SQL_SESSION_PURGE[] = "DELETE FROM console_sessions WHERE expires <= ?";
static const char SQL_LINK_PURGE[] = "DELETE FROM console_links WHERE expires <= ?";
static const char SQL_LINK_ADD[] =
    "INSERT INTO console_links (hash, token_id, expires) VALUES (?, ?, ?)";
static const char SQL_LINK_GET[] =
    "SELECT t.id, t.tenant_id, t.role, t.created, t.expires, t.last_used"
    " FROM console_links l JOIN tokens t ON t.id = l.token_id"
    " WHERE l.hash = ? AND l.expires > ?";
static const char SQL_LINK_DELETE[] = "DELETE FROM console_links WHERE hash = ?";

rp_err_t rp_store_session_add(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN],
                              const char *token_id, int64_t now, int64_t expires)
{
    sq_st_t *st = sq_stmt(s, SQL_SESSION_ADD);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_blob(st, 1, hash, RP_SHA256_LEN);
    db_bind_text(st, 2, token_id);
    db_bind_int64(st, 3, now);
    db_bind_int64(st, 4, expires);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_session_lookup(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN], int64_t now,
                                 rp_token_t *tok, int64_t *expires)
{
    sq_st_t *st = sq_stmt(s, SQL_SESSION_LOOKUP);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_blob(st, 1, hash, RP_SHA256_LEN);
    db_bind_int64(st, 2, now);
    rc = db_step(st);
    if (rc == DB_DONE) {
        db_reset(st);
        return RP_ERR_NOT_FOUND;
    }
    if (rc != DB_ROW)
        return sq_error(s, "console session");
    sq_token_row(st, tok);
    *expires = db_column_int64(st, 6);
    db_reset(st);
    return RP_OK;
}

rp_err_t rp_store_session_delete(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN])
{
    sq_st_t *st = sq_stmt(s, SQL_SESSION_DELETE);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_blob(st, 1, hash, RP_SHA256_LEN);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_console_purge(rp_store_t *s, int64_t now)
{
    sq_st_t *st = sq_stmt(s, SQL_SESSION_PURGE);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, now);
    err = sq_step_done(s, st, NULL);
    if (err != RP_OK)
        return err;
    if ((st = sq_stmt(s, SQL_LINK_PURGE)) == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, now);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_link_add(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN], const char *token_id,
                           int64_t expires)
{
    sq_st_t *st = sq_stmt(s, SQL_LINK_ADD);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_blob(st, 1, hash, RP_SHA256_LEN);
    db_bind_text(st, 2, token_id);
    db_bind_int64(st, 3, expires);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_link_take(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN], int64_t now,
                            rp_token_t *tok)
{
    sq_st_t *st;
    rp_err_t err;
    int rc, changes = 0;

    if ((err = sq_begin(s)) != RP_OK)
        return err;
    if ((st = sq_stmt(s, SQL_LINK_GET)) == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_blob(st, 1, hash, RP_SHA256_LEN);
    db_bind_int64(st, 2, now);
    rc = db_step(st);
    if (rc == DB_ROW)
        sq_token_row(st, tok);
    else if (rc == DB_DONE)
        err = RP_ERR_NOT_FOUND;
    else
        err = sq_error(s, "login link");
    db_reset(st);
    /* Forgotten whether it served or had expired; a link whose token is gone goes too. */
    if ((st = sq_stmt(s, SQL_LINK_DELETE)) == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_blob(st, 1, hash, RP_SHA256_LEN);
    if (err == RP_OK || err == RP_ERR_NOT_FOUND) {
        rp_err_t del = sq_step_done(s, st, &changes);
        if (del != RP_OK)
            err = del;
    }
    if (err == RP_ERR_NOT_FOUND)
        return sq_end(s, RP_OK) == RP_OK ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    return sq_end(s, err);
}

/* The newest current certificate per device is what "expiring" looks at: a device that renewed
 * has a later one. The verdict is the device row's own (migration 20): no attestation is read. */
/* The states are conditions: counted as CASE ... THEN 1, since PostgreSQL sums no booleans. */
#define COUNT_IF(pred) ", coalesce(sum(CASE WHEN " pred " THEN 1 ELSE 0 END), 0)"
/* clang-format off */
static const char SQL_FLEET_COUNTS[] =
    "SELECT count(*)"
    COUNT_IF(SQ_DEV_ATTESTED) COUNT_IF(SQ_DEV_CERT_EXPIRING) COUNT_IF(SQ_DEV_FAILED)
    COUNT_IF(SQ_DEV_BLOCKED) COUNT_IF(SQ_DEV_QUARANTINED) COUNT_IF(SQ_DEV_NEVER_SEEN)
    " FROM devices d WHERE d.tenant_id = :tenant";
/* clang-format on */

rp_err_t rp_store_fleet_counts(rp_store_t *s, const char *tenant_id, int64_t now,
                               rp_fleet_counts_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_FLEET_COUNTS);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, db_param(st, ":tenant"), tenant_id);
    db_bind_int64(st, db_param(st, ":now"), now);
    db_bind_int64(st, db_param(st, ":window"), RP_FLEET_EXPIRING);
    rc = db_step(st);
    if (rc != DB_ROW)
        return sq_error(s, "fleet counts");
    out->total = db_column_int64(st, 0);
    out->attested = db_column_int64(st, 1);
    out->cert_expiring = db_column_int64(st, 2);
    out->failed = db_column_int64(st, 3);
    out->blocked = db_column_int64(st, 4);
    out->quarantined = db_column_int64(st, 5);
    out->never_seen = db_column_int64(st, 6);
    db_reset(st);
    return RP_OK;
}

/* One statement per state, so that the blocked, quarantined and failed pages name their partial
 * index's condition (migration 20) and are read from it: a statement choosing its state by a
 * parameter could use none of them. */
#define DEVICE_PAGE(pred) SQ_DEVICE_COLUMNS " WHERE d.tenant_id = :tenant" pred SQ_PAGE_ON("d.id")
const char *const sq_sql_device_page[RP_DEVICE_STATE_COUNT] = {
    [RP_DEVICE_STATE_ANY] = DEVICE_PAGE(""),
    [RP_DEVICE_STATE_ATTESTED] = DEVICE_PAGE(" AND " SQ_DEV_ATTESTED),
    [RP_DEVICE_STATE_CERT_EXPIRING] = DEVICE_PAGE(" AND " SQ_DEV_CERT_EXPIRING),
    [RP_DEVICE_STATE_FAILED] = DEVICE_PAGE(" AND " SQ_DEV_FAILED),
    [RP_DEVICE_STATE_BLOCKED] = DEVICE_PAGE(" AND " SQ_DEV_BLOCKED),
    [RP_DEVICE_STATE_QUARANTINED] = DEVICE_PAGE(" AND " SQ_DEV_QUARANTINED),
    [RP_DEVICE_STATE_NEVER_SEEN] = DEVICE_PAGE(" AND " SQ_DEV_NEVER_SEEN),
};

rp_err_t rp_store_device_page(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                              rp_device_state_t state, int64_t now, rp_device_fn fn, void *ctx)
{
    sq_st_t *st;
    rp_device_t d;
    int rc;

    if ((int)state < 0 || state >= RP_DEVICE_STATE_COUNT)
        return RP_ERR_INVALID_ARG;
    if ((st = sq_stmt(s, sq_sql_device_page[state])) == NULL)
        return RP_ERR_IO;
    /* devices_tenant (tenant_id, id) is read in one range: the cursor's, the prefix's (SQ_PAGE_ON).
     */
    sq_bind_page(st, page);
    db_bind_text(st, db_param(st, ":tenant"), tenant_id);
    db_bind_int64(st, db_param(st, ":now"), now);
    db_bind_int64(st, db_param(st, ":window"), RP_FLEET_EXPIRING);
    while ((rc = db_step(st)) == DB_ROW) {
        sq_device_row(st, &d);
        fn(ctx, &d);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "devices");
}

static const char SQL_FLEET_VERSIONS[] =
    "SELECT coalesce(p.name, ''), a.component, a.version, count(*) AS n"
    " FROM devices d JOIN device_apps a ON a.device_id = d.id"
    " LEFT JOIN group_members m ON m.device_id = d.id"
    " LEFT JOIN device_groups g ON g.id = m.group_id"
    " LEFT JOIN products p ON p.id = g.product_id"
    " WHERE d.tenant_id = ? GROUP BY 1, 2, 3 ORDER BY n DESC, 1, 2, 3 LIMIT ?";

rp_err_t rp_store_fleet_versions(rp_store_t *s, const char *tenant_id, int limit,
                                 rp_fleet_version_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_FLEET_VERSIONS);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_int(st, 2, limit);
    while ((rc = db_step(st)) == DB_ROW)
        fn(ctx, (const char *)db_column_text(st, 0), (const char *)db_column_text(st, 1),
           (const char *)db_column_text(st, 2), db_column_int64(st, 3));
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "fleet versions");
}

static const char SQL_HISTOGRAM[] =
    "SELECT (at - ?2) / ?3 AS b, sum(passed != 0), sum(passed = 0) FROM attestations"
    " WHERE tenant_id = ?1 AND at >= ?2 AND at < ?4 GROUP BY b";

rp_err_t rp_store_attest_histogram(rp_store_t *s, const char *tenant_id, int64_t since,
                                   int64_t step, int n, int64_t *pass, int64_t *fail)
{
    sq_st_t *st = sq_stmt(s, SQL_HISTOGRAM);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    if (step < 1 || n < 1)
        return RP_ERR_INVALID_ARG;
    memset(pass, 0, (size_t)n * sizeof(*pass));
    memset(fail, 0, (size_t)n * sizeof(*fail));
    db_bind_text(st, 1, tenant_id);
    db_bind_int64(st, 2, since);
    db_bind_int64(st, 3, step);
    db_bind_int64(st, 4, since + step * n);
    while ((rc = db_step(st)) == DB_ROW) {
        int64_t b = db_column_int64(st, 0);
        if (b >= 0 && b < n) {
            pass[b] = db_column_int64(st, 1);
            fail[b] = db_column_int64(st, 2);
        }
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "attestation histogram");
}
