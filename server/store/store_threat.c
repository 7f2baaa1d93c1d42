/*
 * The store's records of threat detection and quarantine (store.h, "threat detection
 * and quarantine"): per-tenant settings, counts per subject per slot with the current slots'
 * devices, alerts, webhooks, quarantine policies and the signals they count, each device's
 * quarantine, the actions taken, and the webhook's outbox of deliveries waiting. threat.c decides;
 * this file only keeps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"

/* Run a prepared statement with no rows, or fail with RP_ERR_IO when it could not be prepared. */
#define STEP(s, st, changes) ((st) != NULL ? sq_step_done((s), (st), (changes)) : RP_ERR_IO)

/* ---- settings ---- */

static const char SQL_SETTINGS_GET[] =
    "SELECT factor, baseline_days, window_seconds, min_devices, floor, updated"
    " FROM threat_settings WHERE tenant_id = ?";
static const char SQL_SETTINGS_PUT[] =
    "INSERT INTO threat_settings (tenant_id, factor, baseline_days, window_seconds,"
    " min_devices, floor, updated) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id)"
    " DO UPDATE SET factor = excluded.factor, baseline_days = excluded.baseline_days,"
    " window_seconds = excluded.window_seconds, min_devices = excluded.min_devices,"
    " floor = excluded.floor, updated = excluded.updated";

rp_err_t rp_store_threat_settings_get(rp_store_t *s, const char *tenant_id,
                                      rp_threat_settings_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_SETTINGS_GET);
    int rc;

    *out = RP_THREAT_SETTINGS_DEFAULT;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        out->factor = db_column_int(st, 0);
        out->baseline_days = db_column_int(st, 1);
        out->window = db_column_int64(st, 2);
        out->min_devices = db_column_int(st, 3);
        out->floor = db_column_int(st, 4);
        out->updated = db_column_int64(st, 5);
    }
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "threat settings");
}

rp_err_t rp_store_threat_settings_set(rp_store_t *s, const char *tenant_id,
                                      rp_threat_settings_t *in)
{
    sq_st_t *st = sq_stmt(s, SQL_SETTINGS_PUT);

    in->updated = (int64_t)time(NULL);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_int(st, 2, in->factor);
    db_bind_int(st, 3, in->baseline_days);
    db_bind_int64(st, 4, in->window);
    db_bind_int(st, 5, in->min_devices);
    db_bind_int(st, 6, in->floor);
    db_bind_int64(st, 7, in->updated);
    return sq_step_done(s, st, NULL);
}

/* ---- counts ---- */

/* A device in a slot, marked failed if it sent anything there while its last attestation had
 * failed (review r10 L4: counted, as evidence, and told apart). */
static const char SQL_DEVICE_SEEN[] =
    "INSERT INTO threat_devices (tenant_id, subject, slot, device_id, failed)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
static const char SQL_DEVICE_SEEN_FAILED[] =
    "UPDATE threat_devices SET failed = 1 WHERE tenant_id = ? AND subject = ? AND slot = ?"
    " AND device_id = ? AND failed = 0";
static const char SQL_COUNT_ADD[] =
    "INSERT INTO threat_counts (tenant_id, subject, slot, count, devices, failed_devices)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, subject, slot) DO UPDATE"
    " SET count = threat_counts.count + excluded.count,"
    " devices = threat_counts.devices + excluded.devices,"
    " failed_devices = threat_counts.failed_devices + excluded.failed_devices";
static const char SQL_COUNT_GET[] =
    "SELECT count, devices, failed_devices FROM threat_counts WHERE tenant_id = ? AND subject = ?"
    " AND slot = ?";
static const char SQL_COUNT_SUM[] =
    "SELECT coalesce(sum(count), 0) FROM threat_counts WHERE tenant_id = ? AND subject = ?"
    " AND slot >= ? AND slot < ?";
static const char SQL_COUNTS_PRUNE[] =
    "DELETE FROM threat_counts WHERE tenant_id = ? AND subject = ? AND slot < ?";
static const char SQL_DEVICES_PRUNE[] =
    "DELETE FROM threat_devices WHERE tenant_id = ? AND subject = ? AND slot < ?";

/* A subject's count, devices and failed devices in one slot (zeros when it has no row). */
static rp_err_t slot_get(rp_store_t *s, const char *tenant_id, const char *subject, int64_t slot,
                         int64_t *count, int64_t *devices, int64_t *failed)
{
    sq_st_t *st = sq_stmt(s, SQL_COUNT_GET);
    int rc;

    *count = *devices = *failed = 0;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, subject);
    db_bind_int64(st, 3, slot);
    rc = db_step(st);
    if (rc == DB_ROW) {
        *count = db_column_int64(st, 0);
        *devices = db_column_int64(st, 1);
        *failed = db_column_int64(st, 2);
    }
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "threat counts");
}

/* Delete what a subject keeps before `before` with sql (counts or devices). */
static rp_err_t prune(rp_store_t *s, const char *sql, const char *tenant_id, const char *subject,
                      int64_t before)
{
    sq_st_t *st = sq_stmt(s, sql);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, subject);
    db_bind_int64(st, 3, before);
    return sq_step_done(s, st, NULL);
}

/* sql (a device in a subject's slot: SQL_DEVICE_SEEN*) prepared, its first four bound; NULL when
 * it could not be prepared. */
static sq_st_t *slot_device_stmt(rp_store_t *s, const char *sql, const char *tenant_id,
                                 const char *subject, int64_t slot, const char *device_id)
{
    sq_st_t *st = sq_stmt(s, sql);

    if (st != NULL) {
        db_bind_text(st, 1, tenant_id);
        db_bind_text(st, 2, subject);
        db_bind_int64(st, 3, slot);
        db_bind_text(st, 4, device_id);
    }
    return st;
}

/* items[idx[0..m)]: the signals of one subject. Each distinct device is noted once, the count
 * moves by m in one statement, and the counts are read back once, into every one of them. */
static rp_err_t count_subject(rp_store_t *s, const char *tenant_id, const rp_threat_settings_t *set,
                              int64_t now, rp_threat_count_t *items, const size_t *idx, size_t m)
{
    int64_t slot = now - now % set->window, prev = slot - set->window, fresh_total = 0;
    int64_t failed_total = 0;
    const char *subject = items[idx[0]].subject;
    rp_threat_count_t *c = &items[idx[0]];
    sq_st_t *st;
    rp_err_t err = RP_OK;

    /* idx is sorted by device within the subject: each device's signals are one run. */
    for (size_t i = 0, e; err == RP_OK && i < m; i = e) {
        int fresh = 0, marked = 0;
        bool failed = false;
        for (e = i; e < m && strcmp(items[idx[e]].device_id, items[idx[i]].device_id) == 0; e++)
            failed = failed || items[idx[e]].device_failed;
        st =
            slot_device_stmt(s, SQL_DEVICE_SEEN, tenant_id, subject, slot, items[idx[i]].device_id);
        if (st == NULL)
            return RP_ERR_IO;
        db_bind_int(st, 5, failed ? 1 : 0);
        err = sq_step_done(s, st, &fresh);
        fresh_total += fresh > 0 ? 1 : 0;
        if (err == RP_OK && failed && fresh == 0) { /* seen in the slot before it failed */
            st = slot_device_stmt(s, SQL_DEVICE_SEEN_FAILED, tenant_id, subject, slot,
                                  items[idx[i]].device_id);
            err = STEP(s, st, &marked);
        }
        failed_total += failed && (fresh > 0 || marked > 0) ? 1 : 0;
    }
    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_COUNT_ADD);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, subject);
    db_bind_int64(st, 3, slot);
    db_bind_int64(st, 4, (int64_t)m);
    db_bind_int64(st, 5, fresh_total);
    db_bind_int64(st, 6, failed_total);
    err = sq_step_done(s, st, NULL);
    c->elapsed = now - slot;
    if (err == RP_OK)
        err = slot_get(s, tenant_id, subject, slot, &c->count, &c->devices, &c->failed_devices);
    if (err == RP_OK)
        err = slot_get(s, tenant_id, subject, prev, &c->prev_count, &c->prev_devices,
                       &c->prev_failed_devices);
    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_COUNT_SUM);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, subject);
    db_bind_int64(st, 3, prev - (int64_t)set->baseline_days * 86400);
    db_bind_int64(st, 4, prev);
    if (db_step(st) != DB_ROW) {
        db_reset(st);
        return sq_error(s, "threat baseline");
    }
    c->baseline_total = db_column_int64(st, 0);
    db_reset(st);
    /* Bounded: counts for RP_THREAT_HISTORY, device sets for the two slots the rule reads. */
    err = prune(s, SQL_COUNTS_PRUNE, tenant_id, subject, now - RP_THREAT_HISTORY);
    if (err == RP_OK)
        err = prune(s, SQL_DEVICES_PRUNE, tenant_id, subject, prev);
    for (size_t i = 1; err == RP_OK && i < m; i++) {
        rp_threat_count_t *o = &items[idx[i]];
        o->count = c->count;
        o->devices = c->devices;
        o->prev_count = c->prev_count;
        o->prev_devices = c->prev_devices;
        o->failed_devices = c->failed_devices;
        o->prev_failed_devices = c->prev_failed_devices;
        o->elapsed = c->elapsed;
        o->baseline_total = c->baseline_total;
    }
    return err;
}

/* By subject, then device, then place: each subject's signals together, one device's in a row. */
static int by_subject_device(const void *a, const void *b, void *ctx)
{
    const rp_threat_count_t *items = ctx;
    const rp_threat_count_t *x = &items[*(const size_t *)a], *y = &items[*(const size_t *)b];
    int c = strcmp(x->subject, y->subject);

    if (c == 0)
        c = strcmp(x->device_id, y->device_id);
    return c != 0 ? c : (x < y ? -1 : x > y);
}

rp_err_t rp_store_threat_count(rp_store_t *s, const char *tenant_id,
                               const rp_threat_settings_t *set, int64_t now,
                               rp_threat_count_t *items, size_t n)
{
    size_t *idx;
    rp_err_t err;

    if (set->window <= 0 || now < 0)
        return RP_ERR_INVALID_ARG;
    if (n == 0)
        return RP_OK;
    idx = calloc(n, sizeof(*idx));
    if (idx == NULL)
        return RP_ERR_NO_MEMORY;
    err = sq_begin(s);
    if (err != RP_OK) {
        free(idx);
        return err;
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    qsort_r(idx, n, sizeof(*idx), by_subject_device, items);
    for (size_t i = 0, j; err == RP_OK && i < n; i = j) {
        for (j = i + 1; j < n && strcmp(items[idx[j]].subject, items[idx[i]].subject) == 0; j++)
            ;
        err = count_subject(s, tenant_id, set, now, items, idx + i, j - i);
    }
    free(idx);
    return sq_end(s, err);
}

/* ---- alerts ---- */

#define ALERT_COLUMNS                                                                              \
    "SELECT id, tenant_id, subject, opened_at, last_at, expires_at, closed_at, count, devices,"    \
    " baseline, signals, reason, failed_devices FROM threat_alerts"
static const char SQL_ALERT_OPEN[] =
    "SELECT id, opened_at FROM threat_alerts WHERE tenant_id = ? AND subject = ? AND closed_at = 0"
    " AND expires_at > ? ORDER BY id DESC LIMIT 1";
static const char SQL_ALERT_EXPIRE[] =
    "UPDATE threat_alerts SET closed_at = expires_at WHERE tenant_id = ? AND subject = ?"
    " AND closed_at = 0 AND expires_at <= ?";
static const char SQL_ALERT_EXTEND[] =
    "UPDATE threat_alerts SET last_at = ?, expires_at = ?, count = ?, devices = ?, baseline = ?,"
    " signals = signals + ?, reason = ?, failed_devices = ? WHERE id = ?";
static const char SQL_ALERT_INSERT[] =
    "INSERT INTO threat_alerts (tenant_id, subject, opened_at, last_at, expires_at, closed_at,"
    " count, devices, baseline, signals, reason, failed_devices)"
    " VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)"
    " RETURNING id";
static const char SQL_ALERT_CLOSE[] =
    "UPDATE threat_alerts SET closed_at = ? WHERE tenant_id = ? AND subject = ? AND closed_at = 0";
static const char SQL_ALERTS_TENANT[] =
    ALERT_COLUMNS " WHERE tenant_id = ? ORDER BY id DESC LIMIT ?";
static const char SQL_ALERTS_OPEN[] =
    ALERT_COLUMNS " WHERE closed_at = 0 AND expires_at > ? ORDER BY id DESC LIMIT ?";
static const char SQL_ALERT_TOTALS[] =
    "SELECT tenant_id, count(*) FROM threat_alerts GROUP BY tenant_id ORDER BY tenant_id";

rp_err_t rp_store_threat_alert_raise(rp_store_t *s, rp_threat_alert_t *a, bool *opened)
{
    sq_st_t *st;
    int rc;
    rp_err_t err;

    *opened = false;
    err = sq_begin(s);
    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_ALERT_EXPIRE);
    if (st != NULL) {
        db_bind_text(st, 1, a->tenant_id);
        db_bind_text(st, 2, a->subject);
        db_bind_int64(st, 3, a->last_at);
    }
    err = STEP(s, st, NULL);
    st = err == RP_OK ? sq_stmt(s, SQL_ALERT_OPEN) : NULL;
    if (err == RP_OK && st == NULL)
        err = RP_ERR_IO;
    if (err == RP_OK) {
        db_bind_text(st, 1, a->tenant_id);
        db_bind_text(st, 2, a->subject);
        db_bind_int64(st, 3, a->last_at);
        rc = db_step(st);
        if (rc == DB_ROW) {
            a->id = db_column_int64(st, 0);
            a->opened_at = db_column_int64(st, 1);
        } else if (rc == DB_DONE) {
            a->id = 0;
        } else {
            err = sq_error(s, "threat alert");
        }
        db_reset(st);
    }
    if (err == RP_OK && a->id != 0) {
        st = sq_stmt(s, SQL_ALERT_EXTEND);
        if (st != NULL) {
            db_bind_int64(st, 1, a->last_at);
            db_bind_int64(st, 2, a->expires_at);
            db_bind_int64(st, 3, a->count);
            db_bind_int64(st, 4, a->devices);
            db_bind_double(st, 5, a->baseline);
            db_bind_int64(st, 6, a->signals);
            db_bind_text(st, 7, a->reason);
            db_bind_int64(st, 8, a->failed_devices);
            db_bind_int64(st, 9, a->id);
        }
        err = STEP(s, st, NULL);
    } else if (err == RP_OK) {
        st = sq_stmt(s, SQL_ALERT_INSERT);
        a->opened_at = a->last_at;
        if (st != NULL) {
            db_bind_text(st, 1, a->tenant_id);
            db_bind_text(st, 2, a->subject);
            db_bind_int64(st, 3, a->opened_at);
            db_bind_int64(st, 4, a->last_at);
            db_bind_int64(st, 5, a->expires_at);
            db_bind_int64(st, 6, a->count);
            db_bind_int64(st, 7, a->devices);
            db_bind_double(st, 8, a->baseline);
            db_bind_int64(st, 9, a->signals);
            db_bind_text(st, 10, a->reason);
            db_bind_int64(st, 11, a->failed_devices);
        }
        err = st != NULL ? sq_step_id(s, st, &a->id) : RP_ERR_IO;
        if (err == RP_OK)
            *opened = true;
    }
    err = sq_end(s, err);
    if (err != RP_OK)
        *opened = false;
    return err;
}

rp_err_t rp_store_threat_alert_is_open(rp_store_t *s, const char *tenant_id, const char *subject,
                                       int64_t now, bool *open)
{
    sq_st_t *st = sq_stmt(s, SQL_ALERT_OPEN);
    int rc;

    *open = false;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, subject);
    db_bind_int64(st, 3, now);
    rc = db_step(st);
    *open = rc == DB_ROW;
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "threat alert");
}

rp_err_t rp_store_threat_alert_close(rp_store_t *s, const char *tenant_id, const char *subject,
                                     int64_t now)
{
    sq_st_t *st = sq_stmt(s, SQL_ALERT_CLOSE);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, now);
    db_bind_text(st, 2, tenant_id);
    db_bind_text(st, 3, subject);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_threat_alerts(rp_store_t *s, const char *tenant_id, int64_t now, int limit,
                                rp_threat_alert_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, tenant_id != NULL ? SQL_ALERTS_TENANT : SQL_ALERTS_OPEN);
    rp_threat_alert_t a;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    if (tenant_id != NULL)
        db_bind_text(st, 1, tenant_id);
    else
        db_bind_int64(st, 1, now);
    db_bind_int(st, 2, limit);
    while ((rc = db_step(st)) == DB_ROW) {
        memset(&a, 0, sizeof(a));
        a.id = db_column_int64(st, 0);
        sq_text_col(st, 1, a.tenant_id, sizeof(a.tenant_id));
        sq_text_col(st, 2, a.subject, sizeof(a.subject));
        a.opened_at = db_column_int64(st, 3);
        a.last_at = db_column_int64(st, 4);
        a.expires_at = db_column_int64(st, 5);
        a.closed_at = db_column_int64(st, 6);
        a.count = db_column_int64(st, 7);
        a.devices = db_column_int64(st, 8);
        a.baseline = db_column_double(st, 9);
        a.signals = db_column_int64(st, 10);
        sq_text_col(st, 11, a.reason, sizeof(a.reason));
        a.failed_devices = db_column_int64(st, 12);
        fn(ctx, &a);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "threat alerts");
}

rp_err_t rp_store_threat_alert_totals(rp_store_t *s, rp_threat_tally_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_ALERT_TOTALS);
    char tenant_id[RP_ID_SIZE];
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    while ((rc = db_step(st)) == DB_ROW) {
        sq_text_col(st, 0, tenant_id, sizeof(tenant_id));
        fn(ctx, tenant_id, db_column_int64(st, 1));
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "threat alert totals");
}

/* ---- webhooks ---- */

static const char SQL_WEBHOOK_GET[] = "SELECT url, salt, updated FROM webhooks WHERE tenant_id = ?";
static const char SQL_WEBHOOK_PUT[] =
    "INSERT INTO webhooks (tenant_id, url, salt, updated) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, salt = excluded.salt,"
    " updated = excluded.updated";
static const char SQL_WEBHOOK_DELETE[] = "DELETE FROM webhooks WHERE tenant_id = ?";

rp_err_t rp_store_webhook_get(rp_store_t *s, const char *tenant_id, rp_webhook_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_WEBHOOK_GET);
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        sq_text_col(st, 0, out->url, sizeof(out->url));
        if (db_column_bytes(st, 1) == RP_WEBHOOK_SALT_LEN)
            memcpy(out->salt, db_column_blob(st, 1), RP_WEBHOOK_SALT_LEN);
        else
            rc = DB_ERROR;
        out->updated = db_column_int64(st, 2);
    }
    db_reset(st);
    if (rc == DB_DONE)
        return RP_ERR_NOT_FOUND;
    return rc == DB_ROW ? RP_OK : sq_error(s, "webhook");
}

rp_err_t rp_store_webhook_set(rp_store_t *s, const char *tenant_id, const rp_webhook_t *in)
{
    sq_st_t *st = sq_stmt(s, SQL_WEBHOOK_PUT);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, in->url);
    db_bind_blob(st, 3, in->salt, RP_WEBHOOK_SALT_LEN);
    db_bind_int64(st, 4, in->updated);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_webhook_delete(rp_store_t *s, const char *tenant_id)
{
    sq_st_t *st = sq_stmt(s, SQL_WEBHOOK_DELETE);
    int changes = 0;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    err = sq_step_done(s, st, &changes);
    return err == RP_OK && changes == 0 ? RP_ERR_NOT_FOUND : err;
}

/* ---- quarantine ---- */

static const char SQL_QPOLICY_GET[] =
    "SELECT enabled, kinds, threshold, window_seconds, updated FROM quarantine_policies"
    " WHERE tenant_id = ?";
static const char SQL_QPOLICY_PUT[] =
    "INSERT INTO quarantine_policies (tenant_id, enabled, kinds, threshold, window_seconds,"
    " updated) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET"
    " enabled = excluded.enabled, kinds = excluded.kinds, threshold = excluded.threshold,"
    " window_seconds = excluded.window_seconds, updated = excluded.updated";
/* A new policy counts afresh: what the old one counted meant something else. */
static const char SQL_QSIGNALS_FORGET_TENANT[] = "DELETE FROM quarantine_signals WHERE device_id "
                                                 "IN (SELECT id FROM devices WHERE tenant_id = ?)";
static const char SQL_QDEVICE[] = "SELECT tenant_id, quarantined_at, quarantine_reason FROM devices"
                                  " WHERE id = ?";
static const char SQL_QSIGNAL_ADD[] =
    "INSERT INTO quarantine_signals (device_id, kind, at) VALUES (?, ?, ?)";
static const char SQL_QSIGNALS_PRUNE[] =
    "DELETE FROM quarantine_signals WHERE device_id = ? AND at <= ?";
static const char SQL_QSIGNALS_COUNT[] =
    "SELECT count(*) FROM quarantine_signals WHERE device_id = ? AND at > ?";
static const char SQL_QSIGNALS_FORGET[] = "DELETE FROM quarantine_signals WHERE device_id = ?";
static const char SQL_QUARANTINE[] =
    "UPDATE devices SET quarantined_at = ?, quarantine_reason = ? WHERE id = ? AND tenant_id = ?";
static const char SQL_RELEASE[] =
    "UPDATE devices SET quarantined_at = 0, quarantine_reason = '' WHERE id = ? AND tenant_id = ?";
static const char SQL_ACTION_ADD[] =
    "INSERT INTO threat_actions (tenant_id, device_id, at, action, actor, reason)"
    " VALUES (?, ?, ?, ?, ?, ?)";
static const char SQL_ACTIONS[] =
    "SELECT id, at, device_id, action, actor, reason FROM threat_actions WHERE tenant_id = ?"
    " ORDER BY id DESC LIMIT ?";
static const char SQL_ACTIONS_DEVICE[] =
    "SELECT id, at, device_id, action, actor, reason FROM threat_actions WHERE tenant_id = ?"
    " AND device_id = ? ORDER BY id DESC LIMIT ?";

rp_err_t rp_store_quarantine_policy_get(rp_store_t *s, const char *tenant_id,
                                        rp_quarantine_policy_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_QPOLICY_GET);
    char kinds[RP_THREAT_KINDS_MAX * (RP_DEVICE_EVENT_KIND_MAX + 1) + 1];
    int rc;

    memset(out, 0, sizeof(*out));
    out->threshold = 5;
    out->window = 3600;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        out->enabled = db_column_int(st, 0) != 0;
        sq_text_col(st, 1, kinds, sizeof(kinds));
        out->threshold = db_column_int(st, 2);
        out->window = db_column_int64(st, 3);
        out->updated = db_column_int64(st, 4);
        /* Written by rp_store_quarantine_policy_set: names of [a-z_] joined by ','. */
        for (char *save = NULL, *k = strtok_r(kinds, ",", &save);
             k != NULL && out->nkinds < RP_THREAT_KINDS_MAX; k = strtok_r(NULL, ",", &save))
            snprintf(out->kinds[out->nkinds++], sizeof(out->kinds[0]), "%s", k);
    }
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "quarantine policy");
}

rp_err_t rp_store_quarantine_policy_set(rp_store_t *s, const char *tenant_id,
                                        rp_quarantine_policy_t *in)
{
    char kinds[RP_THREAT_KINDS_MAX * (RP_DEVICE_EVENT_KIND_MAX + 1) + 1] = "";
    sq_st_t *st;
    rp_err_t err;

    if (in->nkinds > RP_THREAT_KINDS_MAX)
        return RP_ERR_INVALID_ARG;
    for (size_t i = 0; i < in->nkinds; i++)
        snprintf(kinds + strlen(kinds), sizeof(kinds) - strlen(kinds), "%s%s", i ? "," : "",
                 in->kinds[i]);
    in->updated = (int64_t)time(NULL);
    err = sq_begin(s);
    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_QPOLICY_PUT);
    if (st != NULL) {
        db_bind_text(st, 1, tenant_id);
        db_bind_int(st, 2, in->enabled ? 1 : 0);
        db_bind_text(st, 3, kinds);
        db_bind_int(st, 4, in->threshold);
        db_bind_int64(st, 5, in->window);
        db_bind_int64(st, 6, in->updated);
    }
    err = STEP(s, st, NULL);
    if (err == RP_OK) {
        st = sq_stmt(s, SQL_QSIGNALS_FORGET_TENANT);
        if (st != NULL)
            db_bind_text(st, 1, tenant_id);
        err = STEP(s, st, NULL);
    }
    return sq_end(s, err);
}

rp_err_t rp_store_settings_edit(rp_store_t *s, const char *tenant_id, rp_settings_kind_t kind,
                                rp_settings_edit_fn edit, void *ctx, rp_settings_t *out)
{
    rp_err_t err;

    memset(out, 0, sizeof(*out));
    if (kind != RP_SETTINGS_POLICY && kind != RP_SETTINGS_THREAT && kind != RP_SETTINGS_QUARANTINE)
        return RP_ERR_INVALID_ARG;
    if ((err = sq_begin(s)) != RP_OK)
        return err;
    /* read after the lock is had: on PostgreSQL each statement of a transaction at READ
     * COMMITTED sees what committed before it, the last writer's change too */
    err = kind == RP_SETTINGS_POLICY ? rp_store_policy_get(s, tenant_id, &out->policy)
          : kind == RP_SETTINGS_THREAT
              ? rp_store_threat_settings_get(s, tenant_id, &out->threat)
              : rp_store_quarantine_policy_get(s, tenant_id, &out->quarantine);
    if (err == RP_OK)
        err = edit(ctx, out);
    if (err == RP_OK)
        err = kind == RP_SETTINGS_POLICY ? rp_store_policy_set(s, tenant_id, &out->policy)
              : kind == RP_SETTINGS_THREAT
                  ? rp_store_threat_settings_set(s, tenant_id, &out->threat)
                  : rp_store_quarantine_policy_set(s, tenant_id, &out->quarantine);
    return sq_end(s, err);
}

/* The device's tenant and quarantine (RP_ERR_NOT_FOUND: no tenant holds it). */
static rp_err_t qdevice(rp_store_t *s, const char *device_id, char tenant_id[RP_ID_SIZE],
                        int64_t *since, char *reason, size_t reason_cap)
{
    sq_st_t *st = sq_stmt(s, SQL_QDEVICE);
    int rc;

    *since = 0;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        sq_text_col(st, 0, tenant_id, RP_ID_SIZE);
        *since = db_column_int64(st, 1);
        if (reason != NULL)
            sq_text_col(st, 2, reason, reason_cap);
    }
    db_reset(st);
    if (rc == DB_DONE)
        return RP_ERR_NOT_FOUND;
    return rc == DB_ROW ? RP_OK : sq_error(s, "device quarantine");
}

static rp_err_t action_add(rp_store_t *s, const char *tenant_id, const char *device_id, int64_t now,
                           const char *action, const char *actor, const char *reason)
{
    sq_st_t *st = sq_stmt(s, SQL_ACTION_ADD);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, device_id);
    db_bind_int64(st, 3, now);
    db_bind_text(st, 4, action);
    db_bind_text(st, 5, actor);
    db_bind_text(st, 6, reason);
    return sq_step_done(s, st, NULL);
}

/* Statements of one device ID (and maybe a time): forget, prune, count. */
static sq_st_t *device_stmt(rp_store_t *s, const char *sql, const char *device_id)
{
    sq_st_t *st = sq_stmt(s, sql);

    if (st != NULL)
        db_bind_text(st, 1, device_id);
    return st;
}

/* A device's quarantine set (now != 0, with its reason) or lifted (now 0): sq_device_write's
 * write, so that the fleet's counters move with it. */
typedef struct qset {
    const char *tenant_id, *device_id, *reason;
    int64_t now;
} qset_t;

static rp_err_t qset_write(rp_store_t *s, void *ctx)
{
    const qset_t *q = ctx;
    sq_st_t *st =
        q->now != 0 ? sq_stmt(s, SQL_QUARANTINE) : device_stmt(s, SQL_RELEASE, q->device_id);
    int changes = 0;
    rp_err_t err;

    if (st != NULL && q->now != 0) {
        db_bind_int64(st, 1, q->now);
        db_bind_text(st, 2, q->reason);
        db_bind_text(st, 3, q->device_id);
        db_bind_text(st, 4, q->tenant_id);
    } else if (st != NULL) {
        db_bind_text(st, 2, q->tenant_id);
    }
    err = STEP(s, st, &changes);
    return err == RP_OK && changes == 0 ? RP_ERR_NOT_FOUND : err;
}

/* Inside the transaction: mark the device quarantined, revoke its certificates, record it. */
static rp_err_t quarantine(rp_store_t *s, const char *tenant_id, const char *device_id,
                           const char *reason, int64_t now)
{
    qset_t q = {tenant_id, device_id, reason, now};
    rp_err_t err = sq_device_write(s, device_id, qset_write, &q);

    if (err == RP_OK)
        err = sq_device_revoke(s, tenant_id, device_id, now, RP_REVOKED_OTHER);
    if (err == RP_OK)
        err = STEP(s, device_stmt(s, SQL_QSIGNALS_FORGET, device_id), NULL);
    if (err == RP_OK)
        err = action_add(s, tenant_id, device_id, now, "quarantine", "policy", reason);
    return err;
}

rp_err_t rp_store_quarantine_signals(rp_store_t *s, const char *tenant_id, const char *device_id,
                                     const char *const *kind, const char *const *detail, size_t n,
                                     const rp_quarantine_policy_t *p, int64_t now, size_t *at)
{
    char owner[RP_ID_SIZE] = "", reason[RP_QUARANTINE_REASON_MAX + 1], kinds[256] = "";
    int64_t since = 0, count = 0;
    sq_st_t *st;
    rp_err_t err;

    *at = n;
    if (n == 0)
        return RP_OK;
    err = sq_begin(s);
    if (err != RP_OK)
        return err;
    err = qdevice(s, device_id, owner, &since, NULL, 0);
    if (err == RP_ERR_NOT_FOUND || (err == RP_OK && (since != 0 || strcmp(owner, tenant_id) != 0)))
        return sq_end(s, RP_OK) == RP_OK ? RP_OK : RP_ERR_IO; /* nothing to count */
    if (err == RP_OK) {
        st = device_stmt(s, SQL_QSIGNALS_PRUNE, device_id);
        if (st != NULL)
            db_bind_int64(st, 2, now - p->window);
        err = STEP(s, st, NULL);
    }
    /* Each signal in turn, as if alone, but one transaction (one commit, one fsync) for all. */
    for (size_t k = 0; err == RP_OK && k < n && *at == n; k++) {
        st = device_stmt(s, SQL_QSIGNAL_ADD, device_id);
        if (st != NULL) {
            db_bind_text(st, 2, kind[k]);
            db_bind_int64(st, 3, now);
        }
        err = STEP(s, st, NULL);
        if (err == RP_OK) {
            st = device_stmt(s, SQL_QSIGNALS_COUNT, device_id);
            if (st == NULL) {
                err = RP_ERR_IO;
            } else {
                db_bind_int64(st, 2, now - p->window);
                if (db_step(st) == DB_ROW)
                    count = db_column_int64(st, 0);
                else
                    err = sq_error(s, "quarantine signals");
                db_reset(st);
            }
        }
        if (err == RP_OK && count >= p->threshold) {
            for (size_t i = 0; i < p->nkinds; i++)
                snprintf(kinds + strlen(kinds), sizeof(kinds) - strlen(kinds), "%s%s", i ? "," : "",
                         p->kinds[i]);
            /* For people: a long one is cut at its end (what the signals were is in their rows). */
            if (snprintf(reason, sizeof(reason),
                         "%lld signals of %s within %llds (the policy's threshold %d); the last: "
                         "%s: %.120s",
                         (long long)count, kinds, (long long)p->window, p->threshold, kind[k],
                         detail[k] != NULL && detail[k][0] != '\0' ? detail[k]
                                                                   : "(no reason given)") < 0)
                reason[0] = '\0';
            err = quarantine(s, tenant_id, device_id, reason, now);
            if (err == RP_OK)
                *at = k;
        }
    }
    err = sq_end(s, err);
    if (err != RP_OK)
        *at = n;
    return err;
}

rp_err_t rp_store_quarantine_signal(rp_store_t *s, const char *tenant_id, const char *device_id,
                                    const char *kind, const char *detail,
                                    const rp_quarantine_policy_t *p, int64_t now, bool *quarantined)
{
    size_t at;
    rp_err_t err =
        rp_store_quarantine_signals(s, tenant_id, device_id, &kind, &detail, 1, p, now, &at);

    *quarantined = err == RP_OK && at == 0;
    return err;
}

rp_err_t rp_store_device_quarantine(rp_store_t *s, const char *device_id, int64_t *since,
                                    char reason[RP_QUARANTINE_REASON_MAX + 1])
{
    char owner[RP_ID_SIZE];

    return qdevice(s, device_id, owner, since, reason, RP_QUARANTINE_REASON_MAX + 1);
}

rp_err_t rp_store_device_release(rp_store_t *s, const char *tenant_id, const char *device_id,
                                 const char *actor, const char *reason, int64_t now)
{
    char owner[RP_ID_SIZE] = "";
    int64_t since = 0;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    err = qdevice(s, device_id, owner, &since, NULL, 0);
    if (err == RP_OK && strcmp(owner, tenant_id) != 0)
        err = RP_ERR_NOT_FOUND;
    if (err == RP_OK && since == 0)
        err = RP_ERR_INVALID_ARG;
    if (err == RP_OK) {
        qset_t q = {tenant_id, device_id, "", 0};
        err = sq_device_write(s, device_id, qset_write, &q);
    }
    if (err == RP_OK)
        err = STEP(s, device_stmt(s, SQL_QSIGNALS_FORGET, device_id), NULL);
    if (err == RP_OK)
        err = action_add(s, tenant_id, device_id, now, "release", actor, reason);
    return sq_end(s, err);
}

rp_err_t rp_store_threat_actions(rp_store_t *s, const char *tenant_id, const char *device_id,
                                 int limit, rp_threat_action_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, device_id != NULL ? SQL_ACTIONS_DEVICE : SQL_ACTIONS);
    rp_threat_action_t a;
    int rc, i = 1;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, i++, tenant_id);
    if (device_id != NULL)
        db_bind_text(st, i++, device_id);
    db_bind_int(st, i, limit);
    while ((rc = db_step(st)) == DB_ROW) {
        memset(&a, 0, sizeof(a));
        a.id = db_column_int64(st, 0);
        a.at = db_column_int64(st, 1);
        sq_text_col(st, 2, a.device_id, sizeof(a.device_id));
        sq_text_col(st, 3, a.action, sizeof(a.action));
        sq_text_col(st, 4, a.actor, sizeof(a.actor));
        sq_text_col(st, 5, a.reason, sizeof(a.reason));
        fn(ctx, &a);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "threat actions");
}

/* ---- the webhook's outbox ---- */

static const char SQL_OUTBOX_PUT[] =
    "INSERT INTO webhook_outbox (id, tenant_id, body, created, attempts, next_at)"
    " SELECT ?1, ?2, ?3, ?4, 0, ?4 WHERE EXISTS (SELECT 1 FROM webhooks WHERE tenant_id = ?2)";
/* The tenant's oldest past the newest max. */
static const char SQL_OUTBOX_TRIM[] =
    "DELETE FROM webhook_outbox WHERE tenant_id = ?1 AND n <= (SELECT n FROM webhook_outbox"
    " WHERE tenant_id = ?1 ORDER BY n DESC LIMIT 1 OFFSET ?2)";
static const char SQL_OUTBOX_DROPPED[] =
    "INSERT INTO webhook_outbox_dropped (tenant_id, dropped) VALUES (?1, ?2)"
    " ON CONFLICT (tenant_id) DO UPDATE SET"
    " dropped = webhook_outbox_dropped.dropped + excluded.dropped";
static const char SQL_OUTBOX_NEXT[] =
    "SELECT n, id, tenant_id, body, created, attempts, next_at FROM webhook_outbox"
    " ORDER BY next_at, n LIMIT 1";
static const char SQL_OUTBOX_TAKE[] =
    "UPDATE webhook_outbox SET next_at = ?3 WHERE n = ?1 AND next_at = ?2";
static const char SQL_OUTBOX_REMOVE[] = "DELETE FROM webhook_outbox WHERE n = ?";
static const char SQL_OUTBOX_RETRY[] =
    "UPDATE webhook_outbox SET attempts = ?2, next_at = ?3 WHERE n = ?1";
static const char SQL_OUTBOX_DUE[] = "UPDATE webhook_outbox SET next_at = ?1 WHERE next_at > ?1";
static const char SQL_OUTBOX_LIST[] =
    "SELECT n, id, tenant_id, '', created, attempts, next_at FROM webhook_outbox"
    " WHERE tenant_id = ? ORDER BY n LIMIT ?";
static const char SQL_OUTBOX_PENDING[] = "SELECT count(*) FROM webhook_outbox WHERE tenant_id = ?";
static const char SQL_OUTBOX_DROPS[] =
    "SELECT dropped FROM webhook_outbox_dropped WHERE tenant_id = ?";

rp_err_t rp_store_webhook_outbox_put(rp_store_t *s, const char *tenant_id, const char *id,
                                     const char *body, int64_t now_ms, int max, bool *queued,
                                     int *ndropped)
{
    sq_st_t *st;
    int changes = 0, dropped = 0;
    rp_err_t err = sq_begin(s);

    *queued = false;
    *ndropped = 0;
    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_OUTBOX_PUT);
    if (st != NULL) {
        db_bind_text(st, 1, id);
        db_bind_text(st, 2, tenant_id);
        db_bind_text(st, 3, body);
        db_bind_int64(st, 4, now_ms);
    }
    err = STEP(s, st, &changes);
    if (err == RP_OK && changes > 0) {
        st = sq_stmt(s, SQL_OUTBOX_TRIM);
        if (st != NULL) {
            db_bind_text(st, 1, tenant_id);
            db_bind_int(st, 2, max);
        }
        err = STEP(s, st, &dropped);
    }
    if (err == RP_OK && dropped > 0) {
        st = sq_stmt(s, SQL_OUTBOX_DROPPED);
        if (st != NULL) {
            db_bind_text(st, 1, tenant_id);
            db_bind_int(st, 2, dropped);
        }
        err = STEP(s, st, NULL);
    }
    err = sq_end(s, err);
    *queued = err == RP_OK && changes > 0;
    *ndropped = err == RP_OK ? dropped : 0;
    return err;
}

static void delivery_row(sq_st_t *st, rp_webhook_delivery_t *d)
{
    memset(d, 0, sizeof(*d));
    d->n = db_column_int64(st, 0);
    sq_text_col(st, 1, d->id, sizeof(d->id));
    sq_text_col(st, 2, d->tenant_id, sizeof(d->tenant_id));
    d->created = db_column_int64(st, 4);
    d->attempts = db_column_int(st, 5);
    d->next_at = db_column_int64(st, 6);
}

rp_err_t rp_store_webhook_outbox_next(rp_store_t *s, rp_webhook_delivery_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_OUTBOX_NEXT);
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return RP_ERR_IO;
    rc = db_step(st);
    if (rc == DB_ROW) {
        const char *body = (const char *)db_column_text(st, 3);
        delivery_row(st, out);
        out->body = strdup(body != NULL ? body : "");
        if (out->body == NULL)
            rc = DB_NOMEM;
    }
    db_reset(st);
    if (rc == DB_DONE)
        return RP_ERR_NOT_FOUND;
    if (rc == DB_NOMEM)
        return RP_ERR_NO_MEMORY;
    return rc == DB_ROW ? RP_OK : sq_error(s, "webhook outbox");
}

rp_err_t rp_store_webhook_outbox_take(rp_store_t *s, int64_t n, int64_t was, int64_t until,
                                      bool *taken)
{
    sq_st_t *st = sq_stmt(s, SQL_OUTBOX_TAKE);
    int changes = 0;
    rp_err_t err;

    if (st != NULL) {
        db_bind_int64(st, 1, n);
        db_bind_int64(st, 2, was);
        db_bind_int64(st, 3, until);
    }
    err = STEP(s, st, &changes);
    *taken = err == RP_OK && changes > 0;
    return err;
}

rp_err_t rp_store_webhook_outbox_remove(rp_store_t *s, int64_t n)
{
    sq_st_t *st = sq_stmt(s, SQL_OUTBOX_REMOVE);

    if (st != NULL)
        db_bind_int64(st, 1, n);
    return STEP(s, st, NULL);
}

rp_err_t rp_store_webhook_outbox_retry(rp_store_t *s, int64_t n, int attempts, int64_t next_at)
{
    sq_st_t *st = sq_stmt(s, SQL_OUTBOX_RETRY);

    if (st != NULL) {
        db_bind_int64(st, 1, n);
        db_bind_int(st, 2, attempts);
        db_bind_int64(st, 3, next_at);
    }
    return STEP(s, st, NULL);
}

rp_err_t rp_store_webhook_outbox_due(rp_store_t *s, int64_t now_ms)
{
    sq_st_t *st = sq_stmt(s, SQL_OUTBOX_DUE);

    if (st != NULL)
        db_bind_int64(st, 1, now_ms);
    return STEP(s, st, NULL);
}

/* A statement's single integer row (none: *found false, *out untouched). */
static rp_err_t one_int64(rp_store_t *s, sq_st_t *st, int64_t *out, bool *found)
{
    int rc = db_step(st);

    *found = rc == DB_ROW;
    if (*found)
        *out = db_column_int64(st, 0);
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "webhook outbox");
}

rp_err_t rp_store_webhook_outbox_list(rp_store_t *s, const char *tenant_id, int limit,
                                      rp_webhook_delivery_fn fn, void *ctx, int64_t *pending,
                                      int64_t *dropped)
{
    sq_st_t *st = sq_stmt(s, SQL_OUTBOX_LIST);
    rp_webhook_delivery_t d;
    bool found;
    int rc;
    rp_err_t err;

    *pending = *dropped = 0;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_int(st, 2, limit);
    while ((rc = db_step(st)) == DB_ROW) {
        delivery_row(st, &d);
        fn(ctx, &d);
    }
    db_reset(st);
    if (rc != DB_DONE)
        return sq_error(s, "webhook outbox");
    st = sq_stmt(s, SQL_OUTBOX_PENDING);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    err = one_int64(s, st, pending, &found);
    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_OUTBOX_DROPS);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    return one_int64(s, st, dropped, &found);
}
