/*
 * The store's failure reports (store.h, "failure reports"): each device's reports once
 * each by (device, seq), the newest RP_REPORTS_KEEP of them with the rest pruned and counted;
 * each tenant's crash buckets with their counts per version, group and day, and their samples,
 * shown one per symbolic key when they have one (SHOWN: the one place a shown ID is made); the
 * debug files each tenant uploaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"

static const char SQL_DEV_GET[] =
    "SELECT kept, pruned, pruned_below FROM report_devices WHERE device_id = ?";
static const char SQL_DEV_PUT[] =
    "INSERT INTO report_devices (device_id, kept, pruned, pruned_below, dropped_device)"
    " VALUES (?1, ?2, ?3, ?4, greatest(?5, 0)) ON CONFLICT (device_id) DO UPDATE SET"
    " kept = excluded.kept, pruned = excluded.pruned, pruned_below = excluded.pruned_below,"
    " dropped_device = greatest(excluded.dropped_device, report_devices.dropped_device)";
static const char SQL_GROUP[] = "SELECT group_id FROM group_members WHERE device_id = ?";
static const char SQL_PUT[] =
    "INSERT INTO reports (device_id, seq, tenant_id, at, received, kind, component, version,"
    " code, reason, bucket, body, device_failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING";
/* failed_count: how many of count a device sent while its last attestation had failed (review
 * r10 L4: counted, as evidence, and told apart). */
static const char SQL_BUCKET_PUT[] =
    "INSERT INTO crash_buckets (tenant_id, id, component, signal, signature, count, first_seen,"
    " last_seen, failed_count) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6, ?7)"
    " ON CONFLICT (tenant_id, id) DO UPDATE SET count = crash_buckets.count + 1,"
    " last_seen = greatest(crash_buckets.last_seen, ?6),"
    " failed_count = crash_buckets.failed_count + ?7";
static const char SQL_COUNT_PUT[] =
    "INSERT INTO crash_bucket_counts (tenant_id, bucket, dim, value, count)"
    " VALUES (?, ?, ?, ?, 1) ON CONFLICT (tenant_id, bucket, dim, value) DO UPDATE"
    " SET count = crash_bucket_counts.count + 1";
static const char SQL_SAMPLE_PUT[] =
    "INSERT INTO crash_samples (tenant_id, bucket, device_id, seq, at, received, version, body)"
    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE (SELECT count(*) FROM crash_samples"
    " WHERE tenant_id = ?1 AND bucket = ?2) < ?9 ON CONFLICT DO NOTHING";
/* The oldest number kept once the newest RP_REPORTS_KEEP are kept. */
static const char SQL_FLOOR[] = "SELECT seq FROM reports WHERE device_id = ?"
                                " ORDER BY seq DESC LIMIT 1 OFFSET ?";
static const char SQL_PRUNE[] = "DELETE FROM reports WHERE device_id = ? AND seq < ?";
static const char SQL_LIST[] =
    "SELECT device_id, seq, at, received, kind, component, version, code, reason,"
    " coalesce(bucket, ''), body, device_failed FROM reports WHERE tenant_id = ?1"
    " AND (CAST(?2 AS TEXT) IS NULL OR device_id = ?2) AND (CAST(?3 AS TEXT) IS NULL OR kind = ?3)"
    " ORDER BY received DESC, device_id, seq DESC LIMIT ?5 OFFSET ?4";
/* The one place a bucket's shown ID is made of its row: its symbolic key when it has one, else
 * its own ID (docs/failure-reporting.md, "Buckets"). */
#define SHOWN "coalesce(nullif(symbolic, ''), id)"
/* The shown buckets: component and signal are in the symbolic key, so every member has the
 * same; the signature is the newest member's. */
#define SHOWN_COLUMNS                                                                              \
    "SELECT k, min(component), min(signal), sum(count), min(first_seen), max(last_seen), "         \
    "count(*),"                                                                                    \
    " (SELECT signature FROM crash_buckets c WHERE c.tenant_id = ?1 AND"                           \
    " coalesce(nullif(c.symbolic, ''), c.id) = k ORDER BY c.last_seen DESC, c.id LIMIT 1),"        \
    " max(CASE WHEN coalesce(symbolic, '') <> '' THEN 1 ELSE 0 END), sum(failed_count)"            \
    " FROM (SELECT " SHOWN " AS k, * FROM crash_buckets"                                           \
    " WHERE tenant_id = ?1"
static const char SQL_BUCKETS[] =
    SHOWN_COLUMNS ") b GROUP BY k ORDER BY max(last_seen) DESC, k LIMIT ?2 OFFSET ?3";
static const char SQL_BUCKET_GET[] =
    SHOWN_COLUMNS " AND " SHOWN " = (SELECT " SHOWN " FROM crash_buckets WHERE tenant_id = ?1 AND"
                  " (id = ?2 OR symbolic = ?2) LIMIT 1)) b GROUP BY k";
static const char SQL_MEMBERS[] =
    "SELECT id, component, signal, count, first_seen, last_seen, 1, signature, 0, failed_count"
    " FROM crash_buckets WHERE tenant_id = ?1 AND " SHOWN " = ?2 ORDER BY last_seen DESC, id";
#define MEMBERS_OF "(SELECT id FROM crash_buckets WHERE tenant_id = ?1 AND " SHOWN " = ?2)"
static const char SQL_COUNTS[] =
    "SELECT dim, value, sum(count) FROM crash_bucket_counts WHERE tenant_id = ?1 AND bucket "
    "IN " MEMBERS_OF " GROUP BY dim, value ORDER BY dim, value";
/* Each sample marked as its report was (reports.device_failed: the device's last attestation had
 * failed when it sent it), read, not stored twice: from the report while it is kept (the newest
 * RP_REPORTS_KEEP of its device); once pruned, from the device's attestations, which are never
 * pruned: whether the last one recorded by the time the sample was received had failed (none: not
 * failed, as rp_device_failed). docs/failure-reporting.md, "Each crash sample is marked too". */
static const char SQL_SAMPLES[] =
    "SELECT s.device_id, s.seq, s.at, s.received, s.version, s.body, s.bucket,"
    " coalesce((SELECT r.device_failed FROM reports r WHERE r.device_id = s.device_id"
    " AND r.seq = s.seq AND r.tenant_id = s.tenant_id),"
    " (SELECT CASE WHEN a.passed = 0 THEN 1 ELSE 0 END FROM attestations a"
    " WHERE a.device_id = s.device_id AND a.at <= s.received ORDER BY a.id DESC LIMIT 1), 0)"
    " FROM crash_samples s WHERE s.tenant_id = ?1 AND s.bucket IN " MEMBERS_OF
    " ORDER BY s.received, s.device_id, s.seq LIMIT ?3";
/* Whether a bucket's signature has a frame of the build ID p: JSON read by each engine's own
 * functions (SQLite's json1; PostgreSQL's jsonb), the one pair of forms for both statements. */
#define HAS_BUILD_ID_SQLITE(p)                                                                     \
    "EXISTS (SELECT 1 FROM json_each(signature, '$.frames') f"                                     \
    " WHERE json_extract(f.value, '$.build_id') = " p ")"
#define HAS_BUILD_ID_PG(p)                                                                         \
    "EXISTS (SELECT 1 FROM jsonb_array_elements(CAST(signature AS jsonb) -> 'frames') f(value)"    \
    " WHERE f.value ->> 'build_id' = " p ")"
#define TO_KEY(has)                                                                                \
    "SELECT id, component, signal, signature FROM crash_buckets WHERE tenant_id = ?1"              \
    " AND (CAST(?2 AS TEXT) IS NULL OR id = ?2) AND (CAST(?3 AS TEXT) IS NULL OR " has ")"         \
    " AND (?4 = 0 OR symbolic IS NULL) AND id > ?5 ORDER BY id LIMIT ?6"
static const char *const SQL_TO_KEY[SQ_ENGINES] = {
    [SQ_SQLITE] = TO_KEY(HAS_BUILD_ID_SQLITE("?3")),
    [SQ_PG] = TO_KEY(HAS_BUILD_ID_PG("?3")),
};
#define TENANTS_NAMING(has)                                                                        \
    "SELECT DISTINCT tenant_id FROM crash_buckets WHERE symbolic = '' AND " has                    \
    " ORDER BY tenant_id"
static const char *const SQL_TENANTS_NAMING[SQ_ENGINES] = {
    [SQ_SQLITE] = TENANTS_NAMING(HAS_BUILD_ID_SQLITE("?1")),
    [SQ_PG] = TENANTS_NAMING(HAS_BUILD_ID_PG("?1")),
};
static const char SQL_SYMBOLIC_SET[] =
    "UPDATE crash_buckets SET symbolic = ?3 WHERE tenant_id = ?1 AND id = ?2";
static const char SQL_DEV_COUNTS[] =
    "SELECT r.kept, r.pruned, r.dropped_device FROM report_devices r JOIN devices d"
    " ON d.id = r.device_id WHERE r.device_id = ? AND d.tenant_id = ?";
static const char SQL_SYMBOLS_PUT[] =
    "INSERT INTO debug_files (tenant_id, build_id, size, uploaded) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant_id, build_id) DO UPDATE SET size = excluded.size,"
    " uploaded = excluded.uploaded";
static const char SQL_SYMBOLS_GET[] =
    "SELECT uploaded FROM debug_files WHERE tenant_id = ? AND build_id = ?";

/* A statement's single integer row (none: *found false). */
static rp_err_t one_int(rp_store_t *s, sq_st_t *st, int64_t *out, bool *found)
{
    int rc = db_step(st);

    *found = rc == DB_ROW;
    if (*found)
        *out = db_column_int64(st, 0);
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "reports");
}

/* Count a stored crash in its bucket: the bucket, its counts, perhaps a sample. */
static rp_err_t bucket_count(rp_store_t *s, const char *tenant_id, const char *device_id,
                             const char *group, int64_t now, const rp_report_put_t *r)
{
    const char *dims[3][2] = {
        {"version", r->version},
        {"group",   group     },
        {"day",     NULL      }
    };
    char day[16];
    time_t t = (time_t)now;
    struct tm tm;
    sq_st_t *st = sq_stmt(s, SQL_BUCKET_PUT);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, r->bucket);
    db_bind_text(st, 3, r->component);
    db_bind_int(st, 4, r->signal);
    db_bind_text(st, 5, r->signature != NULL ? r->signature : "{}");
    db_bind_int64(st, 6, now);
    db_bind_int(st, 7, r->device_failed ? 1 : 0);
    err = sq_step_done(s, st, NULL);
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    dims[2][1] = day;
    for (int i = 0; err == RP_OK && i < 3; i++) {
        st = sq_stmt(s, SQL_COUNT_PUT);
        if (st == NULL)
            return RP_ERR_IO;
        db_bind_text(st, 1, tenant_id);
        db_bind_text(st, 2, r->bucket);
        db_bind_text(st, 3, dims[i][0]);
        db_bind_text(st, 4, dims[i][1]);
        err = sq_step_done(s, st, NULL);
    }
    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_SAMPLE_PUT);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, r->bucket);
    db_bind_text(st, 3, device_id);
    db_bind_int64(st, 4, r->seq);
    db_bind_int64(st, 5, r->at);
    db_bind_int64(st, 6, now);
    db_bind_text(st, 7, r->version);
    db_bind_text(st, 8, r->json);
    db_bind_int(st, 9, RP_BUCKET_SAMPLES);
    return sq_step_done(s, st, NULL);
}

/* Keep the device's newest RP_REPORTS_KEEP; *kept and *pruned_below follow, *gone counts. */
static rp_err_t prune(rp_store_t *s, const char *device_id, int64_t *kept, int64_t *pruned_below,
                      int64_t *gone)
{
    sq_st_t *st;
    int64_t floor = 0;
    bool found;
    int n = 0;
    rp_err_t err;

    *gone = 0;
    if (*kept <= RP_REPORTS_KEEP)
        return RP_OK;
    st = sq_stmt(s, SQL_FLOOR);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    db_bind_int(st, 2, RP_REPORTS_KEEP - 1);
    err = one_int(s, st, &floor, &found);
    if (err != RP_OK || !found)
        return err;
    st = sq_stmt(s, SQL_PRUNE);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    db_bind_int64(st, 2, floor);
    err = sq_step_done(s, st, &n);
    if (err == RP_OK) {
        *gone = n;
        *kept -= n;
        if (floor > *pruned_below)
            *pruned_below = floor; /* a report below it, sent again, is not taken again */
    }
    return err;
}

/* ---- bucket counts deferred to the end of a round ---- */

struct sq_bucket_wait {
    char tenant_id[RP_ID_SIZE], device_id[RP_DEVICE_ID_SIZE], group[RP_ID_SIZE];
    int64_t now;
    size_t order;
    rp_report_put_t put; /* its strings borrowed until the flush */
};

struct sq_bucket_queue {
    struct sq_bucket_wait *w;
    size_t n, cap;
};

void sq_buckets_free(rp_store_t *s)
{
    if (s->buckets != NULL)
        free(s->buckets->w);
    free(s->buckets);
    s->buckets = NULL;
}

rp_err_t rp_store_buckets_defer(rp_store_t *s)
{
    if (s->buckets == NULL && (s->buckets = calloc(1, sizeof(*s->buckets))) == NULL)
        return RP_ERR_NO_MEMORY;
    return RP_OK;
}

/* The stored crashes of a batch that has committed (or is kept by the caller's group). */
static rp_err_t bucket_defer(rp_store_t *s, const char *tenant_id, const char *device_id,
                             const char *group, int64_t now, const rp_report_put_t *r, size_t n,
                             const bool *stored)
{
    struct sq_bucket_queue *q = s->buckets;

    for (size_t i = 0; i < n; i++) {
        struct sq_bucket_wait *w;
        if (!stored[i] || r[i].bucket == NULL)
            continue;
        if (q->n == q->cap) {
            size_t cap = q->cap ? 2 * q->cap : 256;
            struct sq_bucket_wait *p = realloc(q->w, cap * sizeof(*p));
            if (p == NULL)
                return RP_ERR_NO_MEMORY;
            q->w = p;
            q->cap = cap;
        }
        w = &q->w[q->n];
        snprintf(w->tenant_id, sizeof(w->tenant_id), "%s", tenant_id);
        snprintf(w->device_id, sizeof(w->device_id), "%s", device_id);
        snprintf(w->group, sizeof(w->group), "%s", group);
        w->now = now;
        w->order = q->n++;
        w->put = r[i];
    }
    return RP_OK;
}

static int by_bucket(const void *a, const void *b)
{
    const struct sq_bucket_wait *x = a, *y = b;
    int c = strcmp(x->tenant_id, y->tenant_id);

    if (c == 0)
        c = strcmp(x->put.bucket, y->put.bucket);
    return c != 0 ? c : (x->order < y->order ? -1 : x->order > y->order);
}

static const char SQL_BUCKET_ADD[] =
    "INSERT INTO crash_buckets (tenant_id, id, component, signal, signature, count, first_seen,"
    " last_seen, failed_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT (tenant_id, id) DO UPDATE SET count = crash_buckets.count + excluded.count,"
    " last_seen = greatest(crash_buckets.last_seen, excluded.last_seen),"
    " failed_count = crash_buckets.failed_count + excluded.failed_count";
static const char SQL_COUNT_ADD[] =
    "INSERT INTO crash_bucket_counts (tenant_id, bucket, dim, value, count)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, bucket, dim, value) DO UPDATE"
    " SET count = crash_bucket_counts.count + excluded.count";

/* One bucket's waiting crashes w[0..m) (in the order they were stored): the bucket, its counts
 * per dimension and value, its samples while it has room. */
static rp_err_t bucket_flush_one(rp_store_t *s, const struct sq_bucket_wait *w, size_t m,
                                 const char (*day)[16])
{
    sq_st_t *st = sq_stmt(s, SQL_BUCKET_ADD);
    int64_t first = w[0].now, last = w[0].now, failed = 0;
    rp_err_t err;

    for (size_t i = 0; i < m; i++) {
        first = w[i].now < first ? w[i].now : first;
        last = w[i].now > last ? w[i].now : last;
        failed += w[i].put.device_failed ? 1 : 0;
    }
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, w[0].tenant_id);
    db_bind_text(st, 2, w[0].put.bucket);
    db_bind_text(st, 3, w[0].put.component);
    db_bind_int(st, 4, w[0].put.signal);
    db_bind_text(st, 5, w[0].put.signature != NULL ? w[0].put.signature : "{}");
    db_bind_int64(st, 6, (int64_t)m);
    db_bind_int64(st, 7, first);
    db_bind_int64(st, 8, last);
    db_bind_int64(st, 9, failed);
    err = sq_step_done(s, st, NULL);
    /* Each (dimension, value) once, with how many of the m have it. */
    for (int d = 0; err == RP_OK && d < 3; d++) {
        for (size_t i = 0; err == RP_OK && i < m; i++) {
            const char *v = d == 0 ? w[i].put.version : d == 1 ? w[i].group : day[i];
            int64_t count = 0;
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++)
                seen = strcmp(v, d == 0 ? w[k].put.version : d == 1 ? w[k].group : day[k]) == 0;
            if (seen)
                continue;
            for (size_t k = i; k < m; k++)
                count += strcmp(v, d == 0 ? w[k].put.version : d == 1 ? w[k].group : day[k]) == 0;
            st = sq_stmt(s, SQL_COUNT_ADD);
            if (st == NULL)
                return RP_ERR_IO;
            db_bind_text(st, 1, w[0].tenant_id);
            db_bind_text(st, 2, w[0].put.bucket);
            db_bind_text(st, 3, d == 0 ? "version" : d == 1 ? "group" : "day");
            db_bind_text(st, 4, v);
            db_bind_int64(st, 5, count);
            err = sq_step_done(s, st, NULL);
        }
    }
    /* The first samples, in order, until the bucket holds RP_BUCKET_SAMPLES. */
    for (size_t i = 0; err == RP_OK && i < m; i++) {
        int changed = 0;
        st = sq_stmt(s, SQL_SAMPLE_PUT);
        if (st == NULL)
            return RP_ERR_IO;
        db_bind_text(st, 1, w[i].tenant_id);
        db_bind_text(st, 2, w[i].put.bucket);
        db_bind_text(st, 3, w[i].device_id);
        db_bind_int64(st, 4, w[i].put.seq);
        db_bind_int64(st, 5, w[i].put.at);
        db_bind_int64(st, 6, w[i].now);
        db_bind_text(st, 7, w[i].put.version);
        db_bind_text(st, 8, w[i].put.json);
        db_bind_int(st, 9, RP_BUCKET_SAMPLES);
        err = sq_step_done(s, st, &changed);
        if (changed == 0)
            break; /* full */
    }
    return err;
}

rp_err_t rp_store_buckets_flush(rp_store_t *s)
{
    struct sq_bucket_queue *q = s->buckets;
    char(*day)[16];
    bool begun;
    rp_err_t err = RP_OK;

    if (q == NULL || q->n == 0) {
        sq_buckets_free(s);
        return RP_OK;
    }
    day = calloc(q->n, sizeof(*day));
    if (day == NULL) {
        sq_buckets_free(s);
        return RP_ERR_NO_MEMORY;
    }
    qsort(q->w, q->n, sizeof(*q->w), by_bucket);
    for (size_t i = 0; i < q->n; i++) {
        time_t t = (time_t)q->w[i].now;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(day[i], sizeof(day[i]), "%Y-%m-%d", &tm);
    }
    err = sq_begin(s);
    begun = err == RP_OK;
    for (size_t i = 0, j; err == RP_OK && i < q->n; i = j) {
        for (j = i + 1; j < q->n && strcmp(q->w[j].tenant_id, q->w[i].tenant_id) == 0 &&
                        strcmp(q->w[j].put.bucket, q->w[i].put.bucket) == 0;
             j++)
            ;
        err = bucket_flush_one(s, q->w + i, j - i, day + i);
    }
    if (begun)
        err = sq_end(s, err);
    free(day);
    sq_buckets_free(s);
    return err;
}

rp_err_t rp_store_reports_put(rp_store_t *s, const char *tenant_id, const char *device_id,
                              int64_t now, const rp_report_put_t *r, size_t n, int64_t dropped,
                              bool *stored, size_t *nstored, size_t *ndup, int64_t *pruned)
{
    int64_t kept = 0, pruned_total = 0, pruned_below = 0, gone = 0;
    char group[RP_ID_SIZE] = "";
    sq_st_t *st;
    int rc;
    rp_err_t err;

    *nstored = *ndup = 0;
    *pruned = 0;
    for (size_t i = 0; i < n; i++)
        stored[i] = false;
    err = sq_begin(s);
    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_DEV_GET);
    if (st == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_text(st, 1, device_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        kept = db_column_int64(st, 0);
        pruned_total = db_column_int64(st, 1);
        pruned_below = db_column_int64(st, 2);
    }
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return sq_end(s, sq_error(s, "report device"));
    st = sq_stmt(s, SQL_GROUP);
    if (st == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_text(st, 1, device_id);
    rc = db_step(st);
    if (rc == DB_ROW)
        sq_text_col(st, 0, group, sizeof(group));
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return sq_end(s, sq_error(s, "device group"));
    for (size_t i = 0; err == RP_OK && i < n; i++) {
        int changed = 0;
        if (r[i].seq < pruned_below) {
            (*ndup)++; /* taken before, and pruned with its elders since */
            continue;
        }
        st = sq_stmt(s, SQL_PUT);
        if (st == NULL) {
            err = RP_ERR_IO;
            break;
        }
        db_bind_text(st, 1, device_id);
        db_bind_int64(st, 2, r[i].seq);
        db_bind_text(st, 3, tenant_id);
        db_bind_int64(st, 4, r[i].at);
        db_bind_int64(st, 5, now);
        db_bind_text(st, 6, r[i].kind);
        db_bind_text(st, 7, r[i].component);
        db_bind_text(st, 8, r[i].version);
        db_bind_text(st, 9, r[i].code);
        db_bind_text(st, 10, r[i].reason);
        if (r[i].bucket != NULL)
            db_bind_text(st, 11, r[i].bucket);
        else
            db_bind_null(st, 11);
        db_bind_text(st, 12, r[i].json);
        db_bind_int(st, 13, r[i].device_failed ? 1 : 0);
        err = sq_step_done(s, st, &changed);
        if (err != RP_OK)
            break;
        if (changed == 0) {
            (*ndup)++;
            continue;
        }
        stored[i] = true;
        (*nstored)++;
        kept++;
        if (r[i].bucket != NULL && s->buckets == NULL)
            err = bucket_count(s, tenant_id, device_id, group, now, &r[i]);
    }
    if (err == RP_OK)
        err = prune(s, device_id, &kept, &pruned_below, &gone);
    if (err == RP_OK) {
        st = sq_stmt(s, SQL_DEV_PUT);
        err = st != NULL ? RP_OK : RP_ERR_IO;
    }
    if (err == RP_OK) {
        db_bind_text(st, 1, device_id);
        db_bind_int64(st, 2, kept);
        db_bind_int64(st, 3, pruned_total + gone);
        db_bind_int64(st, 4, pruned_below);
        db_bind_int64(st, 5, dropped);
        err = sq_step_done(s, st, NULL);
    }
    err = sq_end(s, err);
    if (err != RP_OK) {
        *nstored = *ndup = 0;
        for (size_t i = 0; i < n; i++)
            stored[i] = false;
        return err;
    }
    *pruned = gone;
    if (s->buckets != NULL)
        return bucket_defer(s, tenant_id, device_id, group, now, r, n, stored);
    return RP_OK;
}

static void row_common(sq_st_t *st, rp_report_row_t *row)
{
    memset(row, 0, sizeof(*row));
    sq_text_col(st, 0, row->device_id, sizeof(row->device_id));
    row->seq = db_column_int64(st, 1);
    row->at = db_column_int64(st, 2);
    row->received = db_column_int64(st, 3);
}

rp_err_t rp_store_reports_list(rp_store_t *s, const char *tenant_id, const char *device_id,
                               const char *kind, int64_t offset, int limit, rp_report_row_fn fn,
                               void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_LIST);
    rp_report_row_t row;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    if (device_id != NULL)
        db_bind_text(st, 2, device_id);
    if (kind != NULL)
        db_bind_text(st, 3, kind);
    db_bind_int64(st, 4, offset);
    db_bind_int(st, 5, limit);
    while ((rc = db_step(st)) == DB_ROW) {
        row_common(st, &row);
        sq_text_col(st, 4, row.kind, sizeof(row.kind));
        sq_text_col(st, 5, row.component, sizeof(row.component));
        sq_text_col(st, 6, row.version, sizeof(row.version));
        sq_text_col(st, 7, row.code, sizeof(row.code));
        sq_text_col(st, 8, row.reason, sizeof(row.reason));
        sq_text_col(st, 9, row.bucket, sizeof(row.bucket));
        row.json = (const char *)db_column_text(st, 10);
        row.device_failed = db_column_int(st, 11) != 0;
        fn(ctx, &row);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "reports");
}

/* Each bucket row of st (SHOWN_COLUMNS' order) to fn. OUT: *any. */
static rp_err_t buckets_each(rp_store_t *s, sq_st_t *st, rp_bucket_fn fn, void *ctx, bool *any)
{
    rp_bucket_t b;
    int rc;

    *any = false;
    while ((rc = db_step(st)) == DB_ROW) {
        memset(&b, 0, sizeof(b));
        sq_text_col(st, 0, b.id, sizeof(b.id));
        sq_text_col(st, 1, b.component, sizeof(b.component));
        b.signal = db_column_int(st, 2);
        b.count = db_column_int64(st, 3);
        b.first_seen = db_column_int64(st, 4);
        b.last_seen = db_column_int64(st, 5);
        b.members = db_column_int(st, 6);
        b.signature = (const char *)db_column_text(st, 7);
        b.symbolic = db_column_int(st, 8) != 0;
        b.device_failed = db_column_int64(st, 9);
        if (b.signature == NULL)
            b.signature = "{}";
        *any = true;
        fn(ctx, &b);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "crash buckets");
}

rp_err_t rp_store_buckets_list(rp_store_t *s, const char *tenant_id, int64_t offset, int limit,
                               rp_bucket_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_BUCKETS);
    bool any;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_int(st, 2, limit);
    db_bind_int64(st, 3, offset);
    return buckets_each(s, st, fn, ctx, &any);
}

rp_err_t rp_store_bucket_get(rp_store_t *s, const char *tenant_id, const char *id, rp_bucket_fn fn,
                             void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_BUCKET_GET);
    bool any;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, id);
    err = buckets_each(s, st, fn, ctx, &any);
    return err == RP_OK && !any ? RP_ERR_NOT_FOUND : err;
}

rp_err_t rp_store_bucket_members(rp_store_t *s, const char *tenant_id, const char *id,
                                 rp_bucket_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_MEMBERS);
    bool any;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, id);
    return buckets_each(s, st, fn, ctx, &any);
}

rp_err_t rp_store_bucket_counts(rp_store_t *s, const char *tenant_id, const char *id,
                                rp_bucket_count_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_COUNTS);
    char dim[16], value[64];
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, id);
    while ((rc = db_step(st)) == DB_ROW) {
        sq_text_col(st, 0, dim, sizeof(dim));
        sq_text_col(st, 1, value, sizeof(value));
        fn(ctx, dim, value, db_column_int64(st, 2));
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "bucket counts");
}

rp_err_t rp_store_bucket_samples(rp_store_t *s, const char *tenant_id, const char *id,
                                 rp_report_row_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_SAMPLES);
    rp_report_row_t row;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, id);
    db_bind_int(st, 3, RP_BUCKET_SAMPLES_SHOWN);
    while ((rc = db_step(st)) == DB_ROW) {
        row_common(st, &row);
        sq_text_col(st, 4, row.version, sizeof(row.version));
        snprintf(row.kind, sizeof(row.kind), "crash");
        sq_text_col(st, 6, row.bucket, sizeof(row.bucket));
        row.json = (const char *)db_column_text(st, 5);
        row.device_failed = db_column_int(st, 7) != 0;
        fn(ctx, &row);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "bucket samples");
}

rp_err_t rp_store_buckets_to_key(rp_store_t *s, const char *tenant_id, const char *id,
                                 const char *build_id, bool unkeyed, const char *after, int limit,
                                 rp_bucket_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt_of(s, SQL_TO_KEY);
    rp_bucket_t b;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    if (id != NULL)
        db_bind_text(st, 2, id);
    if (build_id != NULL)
        db_bind_text(st, 3, build_id);
    db_bind_int(st, 4, unkeyed ? 1 : 0);
    db_bind_text(st, 5, after != NULL ? after : "");
    db_bind_int(st, 6, limit);
    while ((rc = db_step(st)) == DB_ROW) {
        memset(&b, 0, sizeof(b));
        sq_text_col(st, 0, b.id, sizeof(b.id));
        sq_text_col(st, 1, b.component, sizeof(b.component));
        b.signal = db_column_int(st, 2);
        b.signature = (const char *)db_column_text(st, 3);
        b.members = 1;
        if (b.signature == NULL)
            b.signature = "{}";
        fn(ctx, &b);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "crash buckets");
}

rp_err_t rp_store_bucket_symbolic_set(rp_store_t *s, const char *tenant_id, const char *id,
                                      const char *key)
{
    sq_st_t *st = sq_stmt(s, SQL_SYMBOLIC_SET);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, id);
    db_bind_text(st, 3, key);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_buckets_tenants_naming(rp_store_t *s, const char *build_id,
                                         void (*fn)(void *ctx, const char *tenant_id), void *ctx)
{
    sq_st_t *st = sq_stmt_of(s, SQL_TENANTS_NAMING);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, build_id);
    while ((rc = db_step(st)) == DB_ROW)
        fn(ctx, (const char *)db_column_text(st, 0));
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "crash buckets");
}

rp_err_t rp_store_symbols_put(rp_store_t *s, const char *tenant_id, const char *build_id,
                              int64_t size, int64_t now)
{
    sq_st_t *st = sq_stmt(s, SQL_SYMBOLS_PUT);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, build_id);
    db_bind_int64(st, 3, size);
    db_bind_int64(st, 4, now);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_symbols_get(rp_store_t *s, const char *tenant_id, const char *build_id,
                              int64_t *uploaded)
{
    sq_st_t *st = sq_stmt(s, SQL_SYMBOLS_GET);
    bool found;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, build_id);
    err = one_int(s, st, uploaded, &found);
    return err == RP_OK && !found ? RP_ERR_NOT_FOUND : err;
}

rp_err_t rp_store_report_device_get(rp_store_t *s, const char *tenant_id, const char *device_id,
                                    int64_t *kept, int64_t *pruned, int64_t *dropped)
{
    sq_st_t *st = sq_stmt(s, SQL_DEV_COUNTS);
    int rc;

    *kept = *pruned = *dropped = 0;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    db_bind_text(st, 2, tenant_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        *kept = db_column_int64(st, 0);
        *pruned = db_column_int64(st, 1);
        *dropped = db_column_int64(st, 2);
    }
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return sq_error(s, "report device");
    return rc == DB_ROW ? RP_OK : RP_ERR_NOT_FOUND;
}
