/*
 * The web console's records in the store: sessions and one-time login links (by the
 * SHA-256 of their secret, tied to a token), and the counts its fleet page shows - devices by
 * state, versions running, attestations over time - each one SQL query over indexed rows.
 */
#include <stdlib.h>
#include <string.h>

#include "rampart/log.h"
#include "store_internal.h"

static const char SQL_SESSION_ADD[] =
    "INSERT INTO console_sessions (hash, token_id, created, expires) VALUES (?, ?, ?, ?)";
/* A revoked token's row is gone: the join finds no session for it. */
static const char SQL_SESSION_LOOKUP[] =
    "SELECT t.id, t.tenant_id, t.role, t.created, t.expires, t.last_used, t.made_by, s.expires"
    " FROM console_sessions s JOIN tokens t ON t.id = s.token_id"
    " WHERE s.hash = ? AND s.expires > ?";
static const char SQL_SESSION_DELETE[] = "DELETE FROM console_sessions WHERE hash = ?";
static const char SQL_SESSION_PURGE[] = "DELETE FROM console_sessions WHERE expires <= ?";
static const char SQL_LINK_PURGE[] = "DELETE FROM console_links WHERE expires <= ?";
static const char SQL_LINK_ADD[] =
    "INSERT INTO console_links (hash, token_id, expires) VALUES (?, ?, ?)";
static const char SQL_LINK_GET[] =
    "SELECT t.id, t.tenant_id, t.role, t.created, t.expires, t.last_used, t.made_by"
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
    *expires = db_column_int64(st, 7);
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

/* ---- the fleet's counts, kept as counters (migrations.c: COUNTERS_SEED) ---- */

/* The states counted per tenant (device_counts.state), each the condition SQ_DEV_* names in SQL:
 * a device is in each whose condition is true of it. "Expiring" is a matter of time, not of a
 * write: counted in the background (fleet_summaries). */
enum { DC_TOTAL, DC_ATTESTED, DC_FAILED, DC_BLOCKED, DC_QUARANTINED, DC_NEVER_SEEN, DC_COUNT };
static const char *const dc_names[DC_COUNT] = {
    [DC_TOTAL] = "total",     [DC_ATTESTED] = "attested",       [DC_FAILED] = "failed",
    [DC_BLOCKED] = "blocked", [DC_QUARANTINED] = "quarantined", [DC_NEVER_SEEN] = "never_seen",
};

/* The states a device is counted in (a bit per DC_*): SQ_DEV_ATTESTED, SQ_DEV_FAILED, ... */
static unsigned dc_states(const sq_device_state_t *d)
{
    unsigned m = 0;

    if (!d->exists)
        return 0;
    m |= 1u << DC_TOTAL;
    if (d->passed == 1 && !d->blocked && !d->quarantined)
        m |= 1u << DC_ATTESTED;
    if (d->passed == 0)
        m |= 1u << DC_FAILED;
    if (d->blocked)
        m |= 1u << DC_BLOCKED;
    if (d->quarantined)
        m |= 1u << DC_QUARANTINED;
    if (!d->seen)
        m |= 1u << DC_NEVER_SEEN;
    return m;
}

static const char SQL_DEVICE_STATE[] = "SELECT tenant_id, last_attestation IS NOT NULL,"
                                       " coalesce(last_passed, -1), blocked, quarantined_at"
                                       " FROM devices WHERE id = ?";
static const char SQL_DEVICE_COUNT_ADD[] =
    "INSERT INTO device_counts (tenant_id, state, n) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (tenant_id, state) DO UPDATE SET n = device_counts.n + ?3";

rp_err_t sq_device_state(rp_store_t *s, const char *device_id, sq_device_state_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_STATE);
    int rc;

    memset(out, 0, sizeof(*out));
    out->passed = -1;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        out->exists = true;
        sq_text_col(st, 0, out->tenant_id, sizeof(out->tenant_id));
        out->seen = db_column_int(st, 1) != 0;
        out->passed = db_column_int(st, 2);
        out->blocked = db_column_int(st, 3) != 0;
        out->quarantined = db_column_int64(st, 4) != 0;
    }
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "device state");
}

static rp_err_t dc_add(rp_store_t *s, const char *tenant_id, int state, int64_t delta)
{
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_COUNT_ADD);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, dc_names[state]);
    db_bind_int64(st, 3, delta);
    return sq_step_done(s, st, NULL);
}

rp_err_t sq_device_counts_move(rp_store_t *s, const sq_device_state_t *before,
                               const sq_device_state_t *after)
{
    unsigned was = dc_states(before), is = dc_states(after);
    bool same =
        !before->exists || !after->exists || strcmp(before->tenant_id, after->tenant_id) == 0;
    rp_err_t err = RP_OK;

    for (int k = 0; k < DC_COUNT && err == RP_OK; k++) {
        bool in_was = (was >> k) & 1u, in_is = (is >> k) & 1u;
        if (same && in_was == in_is)
            continue; /* unchanged: nothing written */
        if (in_was)
            err = dc_add(s, before->tenant_id, k, -1);
        if (err == RP_OK && in_is)
            err = dc_add(s, after->tenant_id, k, 1);
    }
    return err;
}

rp_err_t sq_device_write(rp_store_t *s, const char *device_id,
                         rp_err_t (*write)(rp_store_t *s, void *ctx), void *ctx)
{
    sq_device_state_t before, after;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    err = sq_device_state(s, device_id, &before);
    if (err == RP_OK)
        err = write(s, ctx);
    if (err == RP_OK)
        err = sq_device_state(s, device_id, &after);
    if (err == RP_OK)
        err = sq_device_counts_move(s, &before, &after);
    if (err == RP_OK && after.exists && (before.blocked || before.quarantined) &&
        !after.blocked && !after.quarantined)
        err = sq_device_bars_lifted(s, device_id);
    return sq_end(s, err);
}

static const char SQL_FLEET_COUNTS[] = "SELECT state, n FROM device_counts WHERE tenant_id = ?";
static const char SQL_FLEET_SUMMARY[] =
    "SELECT cert_expiring, counted_at FROM fleet_summaries WHERE tenant_id = ?";
/* The newest current certificate per device is what "expiring" looks at: a device that renewed
 * has a later one. Every device of the tenant is read: only in the background. */
static const char SQL_FLEET_EXPIRING[] =
    "SELECT count(*) FROM devices d WHERE d.tenant_id = :tenant AND " SQ_DEV_CERT_EXPIRING;
static const char SQL_FLEET_SUMMARY_PUT[] =
    "INSERT INTO fleet_summaries (tenant_id, cert_expiring, counted_at) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (tenant_id) DO UPDATE SET cert_expiring = ?2, counted_at = ?3";
static const char SQL_FLEET_STALE[] =
    "SELECT t.id FROM tenants t LEFT JOIN fleet_summaries f ON f.tenant_id = t.id"
    " WHERE f.counted_at IS NULL OR f.counted_at < ? ORDER BY t.id";

rp_err_t rp_store_fleet_counts(rp_store_t *s, const char *tenant_id, int64_t now,
                               rp_fleet_counts_t *out)
{
    int64_t *field[DC_COUNT] = {
        [DC_TOTAL] = &out->total,
        [DC_ATTESTED] = &out->attested,
        [DC_FAILED] = &out->failed,
        [DC_BLOCKED] = &out->blocked,
        [DC_QUARANTINED] = &out->quarantined,
        [DC_NEVER_SEEN] = &out->never_seen,
    };
    sq_st_t *st = sq_stmt(s, SQL_FLEET_COUNTS);
    int rc;

    (void)now;
    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    while ((rc = db_step(st)) == DB_ROW) {
        const char *name = (const char *)db_column_text(st, 0);
        for (int k = 0; name != NULL && k < DC_COUNT; k++)
            if (strcmp(name, dc_names[k]) == 0)
                *field[k] = db_column_int64(st, 1);
    }
    db_reset(st);
    if (rc != DB_DONE)
        return sq_error(s, "fleet counts");
    if ((st = sq_stmt(s, SQL_FLEET_SUMMARY)) == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        out->cert_expiring = db_column_int64(st, 0);
        out->cert_expiring_at = db_column_int64(st, 1);
    }
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "fleet summary");
}

rp_err_t rp_store_fleet_expiring_count(rp_store_t *s, const char *tenant_id, int64_t now,
                                       int64_t *n)
{
    sq_st_t *st = sq_stmt(s, SQL_FLEET_EXPIRING);
    rp_err_t err;
    int rc;

    *n = 0;
    if (st == NULL)
        return RP_ERR_IO;
    /* the count reads outside the write transaction (it is long); its result is one row */
    db_bind_text(st, db_param(st, ":tenant"), tenant_id);
    db_bind_int64(st, db_param(st, ":now"), now);
    db_bind_int64(st, db_param(st, ":window"), RP_FLEET_EXPIRING);
    rc = db_step(st);
    if (rc == DB_ROW)
        *n = db_column_int64(st, 0);
    db_reset(st);
    if (rc != DB_ROW)
        return sq_error(s, "expiring certificates");
    if ((err = sq_begin(s)) != RP_OK)
        return err;
    if ((st = sq_stmt(s, SQL_FLEET_SUMMARY_PUT)) == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_text(st, 1, tenant_id);
    db_bind_int64(st, 2, *n);
    db_bind_int64(st, 3, now);
    return sq_end(s, sq_step_done(s, st, NULL));
}

typedef struct id_vec {
    char (*ids)[RP_ID_SIZE];
    size_t n, cap;
} id_vec_t;

rp_err_t rp_store_fleet_summaries_refresh(rp_store_t *s, int64_t now, int64_t max_age,
                                          size_t *counted)
{
    sq_st_t *st = sq_stmt(s, SQL_FLEET_STALE);
    id_vec_t v = {0};
    rp_err_t err = RP_OK;
    int64_t n;
    int rc;

    *counted = 0;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, now - max_age);
    while ((rc = db_step(st)) == DB_ROW) {
        if (v.n == v.cap) {
            size_t cap = v.cap != 0 ? v.cap * 2 : 16;
            void *p = realloc(v.ids, cap * sizeof(*v.ids));
            if (p == NULL) {
                err = RP_ERR_NO_MEMORY;
                break;
            }
            v.ids = p;
            v.cap = cap;
        }
        sq_text_col(st, 0, v.ids[v.n], sizeof(v.ids[0]));
        v.n++;
    }
    db_reset(st);
    if (err == RP_OK && rc != DB_DONE)
        err = sq_error(s, "fleet summaries");
    for (size_t i = 0; err == RP_OK && i < v.n; i++) {
        err = rp_store_fleet_expiring_count(s, v.ids[i], now, &n);
        if (err == RP_OK)
            (*counted)++;
    }
    free(v.ids);
    return err;
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

/* ---- the versions devices run, kept as counters (migrations.c: VERSIONS_SEED) ---- */

static const char SQL_DEVICE_VERSIONS[] =
    "SELECT d.tenant_id, coalesce(g.product_id, ''), a.component, a.version FROM devices d"
    " LEFT JOIN group_members m ON m.device_id = d.id"
    " LEFT JOIN device_groups g ON g.id = m.group_id"
    " LEFT JOIN device_apps a ON a.device_id = d.id WHERE d.id = ? ORDER BY a.component";
static const char SQL_VERSION_COUNT_ADD[] =
    "INSERT INTO version_counts (tenant_id, product_id, component, version, n)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant_id, product_id, component, version)"
    " DO UPDATE SET n = version_counts.n + ?5";
static const char SQL_VERSION_COUNT_GONE[] =
    "DELETE FROM version_counts WHERE tenant_id = ?1 AND product_id = ?2 AND component = ?3"
    " AND version = ?4 AND n = 0";

rp_err_t sq_device_versions(rp_store_t *s, const char *device_id, sq_device_versions_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_VERSIONS);
    rp_err_t err = RP_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    while ((rc = db_step(st)) == DB_ROW) {
        struct sq_app_version *a;
        if (!out->exists) {
            out->exists = true;
            sq_text_col(st, 0, out->tenant_id, sizeof(out->tenant_id));
            sq_text_col(st, 1, out->product_id, sizeof(out->product_id));
        }
        /* no apps: one row, its app's columns NULL; more than a report holds: only a write
         * around the store makes them */
        if (db_column_null(st, 2))
            continue;
        if (out->napps == RP_DEVICE_APPS_MAX) {
            rp_log_error("device %s: more than %d apps stored", device_id, RP_DEVICE_APPS_MAX);
            err = RP_ERR_TOO_LARGE;
            break;
        }
        a = &out->apps[out->napps++];
        sq_text_col(st, 2, a->component, sizeof(a->component));
        sq_text_col(st, 3, a->version, sizeof(a->version));
    }
    db_reset(st);
    if (err == RP_OK && rc != DB_DONE)
        err = sq_error(s, "device versions");
    return err;
}

static bool versions_has(const sq_device_versions_t *v, const struct sq_app_version *a)
{
    for (size_t i = 0; i < v->napps; i++)
        if (strcmp(v->apps[i].component, a->component) == 0 &&
            strcmp(v->apps[i].version, a->version) == 0)
            return true;
    return false;
}

static rp_err_t vc_add(rp_store_t *s, const sq_device_versions_t *v, const struct sq_app_version *a,
                       int64_t delta)
{
    /* the count moved; when lowered, its row gone once it counts none */
    for (int pass = 0; pass < (delta < 0 ? 2 : 1); pass++) {
        sq_st_t *st = sq_stmt(s, pass == 0 ? SQL_VERSION_COUNT_ADD : SQL_VERSION_COUNT_GONE);
        if (st == NULL)
            return RP_ERR_IO;
        db_bind_text(st, 1, v->tenant_id);
        db_bind_text(st, 2, v->product_id);
        db_bind_text(st, 3, a->component);
        db_bind_text(st, 4, a->version);
        if (pass == 0)
            db_bind_int64(st, 5, delta);
        rp_err_t err = sq_step_done(s, st, NULL);
        if (err != RP_OK)
            return err;
    }
    return RP_OK;
}

rp_err_t sq_versions_move(rp_store_t *s, const sq_device_versions_t *before,
                          const sq_device_versions_t *after)
{
    bool same = before->exists && after->exists &&
                strcmp(before->tenant_id, after->tenant_id) == 0 &&
                strcmp(before->product_id, after->product_id) == 0;
    rp_err_t err = RP_OK;

    for (size_t i = 0; err == RP_OK && i < before->napps; i++)
        if (!same || !versions_has(after, &before->apps[i]))
            err = vc_add(s, before, &before->apps[i], -1);
    for (size_t i = 0; err == RP_OK && i < after->napps; i++)
        if (!same || !versions_has(before, &after->apps[i]))
            err = vc_add(s, after, &after->apps[i], 1);
    return err;
}

/* The counters per product ID, summed per product name as the rows were when counted (two
 * products of one name are one line), "" for devices in no group. */
const char sq_sql_fleet_versions[] =
    "SELECT coalesce(p.name, ''), v.component, v.version, CAST(sum(v.n) AS BIGINT)"
    " FROM version_counts v LEFT JOIN products p ON p.id = v.product_id"
    " WHERE v.tenant_id = ? GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3 LIMIT ?";

rp_err_t rp_store_fleet_versions(rp_store_t *s, const char *tenant_id, int limit,
                                 rp_fleet_version_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, sq_sql_fleet_versions);
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
