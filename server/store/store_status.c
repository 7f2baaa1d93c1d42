/*
 * The store's records of what devices report of what runs (store.h, "what devices
 * report"): each device's newest app list, its security events once each by (device, seq), the
 * newest RP_DEVICE_EVENTS_KEEP of them, and the counts of what was dropped on either side.
 */
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

static const char SQL_REPORT_GET[] =
    "SELECT reported_at, apps_at, dropped_device, dropped_service, next_seq, pruned_below"
    " FROM device_reports WHERE device_id = ?";
static const char SQL_REPORT_PUT[] =
    "INSERT INTO device_reports (device_id, reported_at, apps_at, dropped_device,"
    " dropped_service, next_seq, pruned_below) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (device_id) DO UPDATE SET reported_at = excluded.reported_at,"
    " apps_at = excluded.apps_at, dropped_device = excluded.dropped_device,"
    " dropped_service = excluded.dropped_service, next_seq = excluded.next_seq,"
    " pruned_below = excluded.pruned_below";
static const char SQL_APPS_CLEAR[] = "DELETE FROM device_apps WHERE device_id = ?";
static const char SQL_APP_PUT[] =
    "INSERT INTO device_apps (device_id, component, version, state, restarts)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id, component) DO UPDATE SET"
    " version = excluded.version, state = excluded.state, restarts = excluded.restarts";
static const char SQL_APPS[] = "SELECT component, version, state, restarts FROM device_apps"
                               " WHERE device_id = ? ORDER BY component";
static const char SQL_EVENT_PUT[] =
    "INSERT INTO device_events (device_id, seq, at, kind, app, reason, received)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
static const char SQL_EVENTS_COUNT[] = "SELECT count(*) FROM device_events WHERE device_id = ?";
/* The oldest number kept once the newest RP_DEVICE_EVENTS_KEEP are kept. */
static const char SQL_EVENTS_FLOOR[] = "SELECT seq FROM device_events WHERE device_id = ?"
                                       " ORDER BY seq DESC LIMIT 1 OFFSET ?";
static const char SQL_EVENTS_PRUNE[] = "DELETE FROM device_events WHERE device_id = ? AND seq < ?";
static const char SQL_EVENTS[] = "SELECT seq, at, kind, app, reason, received FROM device_events"
                                 " WHERE device_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?";

/* The device's report row, or zeros when it has none. OUT: *r, *pruned_below. */
static rp_err_t report_get(rp_store_t *s, const char *device_id, rp_device_report_t *r,
                           int64_t *pruned_below)
{
    sq_st_t *st = sq_stmt(s, SQL_REPORT_GET);
    int rc;

    memset(r, 0, sizeof(*r));
    *pruned_below = 0;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        r->reported_at = db_column_int64(st, 0);
        r->apps_at = db_column_int64(st, 1);
        r->dropped_device = db_column_int64(st, 2);
        r->dropped_service = db_column_int64(st, 3);
        r->next_seq = db_column_int64(st, 4);
        *pruned_below = db_column_int64(st, 5);
    }
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return sq_error(s, "device report");
    return rc == DB_ROW ? RP_OK : RP_ERR_NOT_FOUND;
}

/* One integer a query yields (its first row's first column). */
static rp_err_t one_int(rp_store_t *s, sq_st_t *st, int64_t *out, bool *found)
{
    int rc = db_step(st);

    *found = rc == DB_ROW;
    if (*found)
        *out = db_column_int64(st, 0);
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "device events");
}

static rp_err_t apps_replace(rp_store_t *s, const char *device_id, const rp_device_app_t *apps,
                             size_t napps)
{
    sq_st_t *st = sq_stmt(s, SQL_APPS_CLEAR);
    rp_err_t err = st != NULL ? RP_OK : RP_ERR_IO;

    if (err == RP_OK) {
        db_bind_text(st, 1, device_id);
        err = sq_step_done(s, st, NULL);
    }
    for (size_t i = 0; err == RP_OK && i < napps; i++) {
        st = sq_stmt(s, SQL_APP_PUT);
        if (st == NULL)
            return RP_ERR_IO;
        db_bind_text(st, 1, device_id);
        db_bind_text(st, 2, apps[i].component);
        db_bind_text(st, 3, apps[i].version);
        db_bind_text(st, 4, apps[i].state);
        db_bind_int64(st, 5, apps[i].restarts);
        err = sq_step_done(s, st, NULL);
    }
    return err;
}

/* Keep the newest RP_DEVICE_EVENTS_KEEP events; count the rest as dropped. */
static rp_err_t prune(rp_store_t *s, const char *device_id, rp_device_report_t *r,
                      int64_t *pruned_below)
{
    sq_st_t *st = sq_stmt(s, SQL_EVENTS_COUNT);
    int64_t count = 0, floor = 0;
    bool found;
    int gone = 0;
    rp_err_t err = st != NULL ? RP_OK : RP_ERR_IO;

    if (err == RP_OK) {
        db_bind_text(st, 1, device_id);
        err = one_int(s, st, &count, &found);
    }
    if (err != RP_OK || count <= RP_DEVICE_EVENTS_KEEP)
        return err;
    st = sq_stmt(s, SQL_EVENTS_FLOOR);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    db_bind_int(st, 2, RP_DEVICE_EVENTS_KEEP - 1);
    err = one_int(s, st, &floor, &found);
    if (err != RP_OK || !found)
        return err;
    st = sq_stmt(s, SQL_EVENTS_PRUNE);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    db_bind_int64(st, 2, floor);
    err = sq_step_done(s, st, &gone);
    if (err == RP_OK) {
        r->dropped_service += gone;
        if (floor > *pruned_below)
            *pruned_below = floor; /* an event below it, sent again, is not taken again */
    }
    return err;
}

rp_err_t rp_store_device_status_put(rp_store_t *s, const char *device_id, int64_t now,
                                    const rp_device_app_t *apps, size_t napps,
                                    rp_device_event_t *events, size_t nevents,
                                    int64_t dropped_device, size_t *fresh)
{
    rp_device_report_t r;
    sq_device_versions_t before, after; /* what the app list counted in version_counts */
    int64_t pruned_below;
    sq_st_t *st;
    rp_err_t err;

    *fresh = 0;
    if (apps != NULL && napps > RP_DEVICE_APPS_MAX)
        return RP_ERR_INVALID_ARG;
    err = sq_begin(s);
    if (err != RP_OK)
        return err;
    err = report_get(s, device_id, &r, &pruned_below);
    if (err == RP_ERR_NOT_FOUND)
        err = RP_OK;
    if (err == RP_OK && apps != NULL) { /* the versions' counters with it (sq_versions_move) */
        err = sq_device_versions(s, device_id, &before);
        if (err == RP_OK)
            err = apps_replace(s, device_id, apps, napps);
        if (err == RP_OK)
            err = sq_device_versions(s, device_id, &after);
        if (err == RP_OK)
            err = sq_versions_move(s, &before, &after);
        r.apps_at = now;
    }
    for (size_t i = 0; i < nevents; i++)
        events[i].received = 0;
    for (size_t i = 0; err == RP_OK && i < nevents; i++) {
        rp_device_event_t *e = &events[i];
        int changed = 0;
        if (e->seq < pruned_below)
            continue; /* older than what is kept: taken before, or dropped with its elders */
        st = sq_stmt(s, SQL_EVENT_PUT);
        if (st == NULL) {
            err = RP_ERR_IO;
            break;
        }
        db_bind_text(st, 1, device_id);
        db_bind_int64(st, 2, e->seq);
        db_bind_int64(st, 3, e->at);
        db_bind_text(st, 4, e->kind);
        db_bind_text(st, 5, e->app);
        db_bind_text(st, 6, e->reason);
        db_bind_int64(st, 7, now);
        err = sq_step_done(s, st, &changed);
        *fresh += changed > 0 ? 1 : 0;
        e->received = changed > 0 ? now : 0;
        if (e->seq + 1 > r.next_seq)
            r.next_seq = e->seq + 1;
    }
    if (err == RP_OK)
        err = prune(s, device_id, &r, &pruned_below);
    if (err == RP_OK) {
        st = sq_stmt(s, SQL_REPORT_PUT);
        err = st != NULL ? RP_OK : RP_ERR_IO;
    }
    if (err == RP_OK) {
        db_bind_text(st, 1, device_id);
        db_bind_int64(st, 2, now);
        db_bind_int64(st, 3, r.apps_at);
        db_bind_int64(st, 4, dropped_device > r.dropped_device ? dropped_device : r.dropped_device);
        db_bind_int64(st, 5, r.dropped_service);
        db_bind_int64(st, 6, r.next_seq);
        db_bind_int64(st, 7, pruned_below);
        err = sq_step_done(s, st, NULL);
    }
    err = sq_end(s, err);
    if (err != RP_OK) {
        *fresh = 0;
        for (size_t i = 0; i < nevents; i++)
            events[i].received = 0;
    }
    return err;
}

rp_err_t rp_store_device_status_get(rp_store_t *s, const char *device_id, rp_device_report_t *out)
{
    int64_t pruned_below;
    sq_st_t *st;
    bool found;
    rp_err_t err = report_get(s, device_id, out, &pruned_below);

    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_EVENTS_COUNT);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    return one_int(s, st, &out->events_kept, &found);
}

rp_err_t rp_store_device_apps(rp_store_t *s, const char *device_id, rp_device_app_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_APPS);
    rp_device_app_t a;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    while ((rc = db_step(st)) == DB_ROW) {
        memset(&a, 0, sizeof(a));
        sq_text_col(st, 0, a.component, sizeof(a.component));
        sq_text_col(st, 1, a.version, sizeof(a.version));
        sq_text_col(st, 2, a.state, sizeof(a.state));
        a.restarts = db_column_int64(st, 3);
        fn(ctx, &a);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "device apps");
}

rp_err_t rp_store_device_events(rp_store_t *s, const char *device_id, int64_t before, int limit,
                                rp_device_event_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_EVENTS);
    rp_device_event_t e;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    db_bind_int64(st, 2, before);
    db_bind_int(st, 3, limit);
    while ((rc = db_step(st)) == DB_ROW) {
        memset(&e, 0, sizeof(e));
        e.seq = db_column_int64(st, 0);
        e.at = db_column_int64(st, 1);
        sq_text_col(st, 2, e.kind, sizeof(e.kind));
        sq_text_col(st, 3, e.app, sizeof(e.app));
        sq_text_col(st, 4, e.reason, sizeof(e.reason));
        e.received = db_column_int64(st, 5);
        fn(ctx, &e);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "device events");
}
