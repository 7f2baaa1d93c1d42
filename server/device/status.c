/*
 * What devices report of what runs (docs/api.md, "Device status"):
 *
 *   devices    POST /api/v1/device/status                  the apps that run and the security
 *                                                           events not yet reported
 *   operators  GET  /api/v1/tenants/T/devices/D            carries the newest report ("report")
 *              GET  /api/v1/tenants/T/devices/D/events     the kept events, newest first, paged
 *
 * The one owner of the report's body: its keys, each field's bound, and the JSON the service
 * shows back. The device owns the names of app states and event kinds; the service stores them as
 * the device said, checked for form only.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "api.h"
#include "context.h"
#include "device_api.h"
#include "rampart/component.h"
#include "req.h"
#include "routes.h"
#include "status.h"
#include "threat.h"

#define REPORT_EVENTS_MAX 100 /* events one report may carry */
#define RECENT_EVENTS 10      /* shown with the device */
#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

static bool component_valid(const char *s)
{
    return s != NULL && rp_component_name_valid(s, strlen(s));
}

static bool app_parse(json_t *o, rp_device_app_t *a)
{
    static const char *const keys[] = {"component", "version", "state", "restarts"};
    const char *c, *v, *st;
    json_t *n = json_object_get(o, "restarts");

    if (!rp_json_has_exactly(o, keys, 4))
        return false;
    c = rp_json_text(json_object_get(o, "component"), RP_COMPONENT_NAME_MAX);
    v = rp_json_text(json_object_get(o, "version"), RP_DEVICE_APP_VERSION_MAX);
    st = rp_json_text(json_object_get(o, "state"), RP_DEVICE_APP_STATE_MAX);
    if (!component_valid(c) || v == NULL || !rp_word_valid(st, RP_DEVICE_APP_STATE_MAX, false) ||
        !json_is_integer(n) || json_integer_value(n) < 0 || json_integer_value(n) > UINT32_MAX)
        return false;
    snprintf(a->component, sizeof(a->component), "%s", c);
    snprintf(a->version, sizeof(a->version), "%s", v);
    snprintf(a->state, sizeof(a->state), "%s", st);
    a->restarts = json_integer_value(n);
    return true;
}

static bool event_parse(json_t *o, rp_device_event_t *e)
{
    static const char *const keys[] = {"seq", "at", "kind", "app", "reason"};
    json_t *seq = json_object_get(o, "seq"), *at = json_object_get(o, "at");
    const char *kind, *app, *reason;

    if (!rp_json_has_exactly(o, keys, 5))
        return false;
    kind = rp_json_text(json_object_get(o, "kind"), RP_DEVICE_EVENT_KIND_MAX);
    app = rp_json_text(json_object_get(o, "app"), RP_COMPONENT_NAME_MAX);
    reason = rp_json_text(json_object_get(o, "reason"), RP_DEVICE_EVENT_REASON_MAX);
    if (!json_is_integer(seq) || json_integer_value(seq) < 0 ||
        json_integer_value(seq) >= INT64_MAX || !json_is_integer(at) ||
        !rp_word_valid(kind, RP_DEVICE_EVENT_KIND_MAX, false) || app == NULL ||
        (app[0] != '\0' && !component_valid(app)) || reason == NULL)
        return false;
    e->seq = json_integer_value(seq);
    e->at = json_integer_value(at);
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    snprintf(e->app, sizeof(e->app), "%s", app);
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
    return true;
}

static const char REPORT_FORM[] =
    "a status report is {\"apps\": [{\"component\", \"version\", \"state\", \"restarts\"}] "
    "(at most 64; optional), \"events\": [{\"seq\", \"at\", \"kind\", \"app\", \"reason\"}] "
    "(at most 100; optional), \"events_dropped\": N (optional)}";

/* Threat detection counts each event new to the service once (a report sent again adds none):
 * one signal per event the store just took (its received set). */
static void observe_fresh(rp_req_t *r, const rp_device_event_t *events, size_t n)
{
    static _Thread_local rp_threat_signal_t sig[REPORT_EVENTS_MAX];
    size_t k = 0;

    for (size_t i = 0; i < n && k < REPORT_EVENTS_MAX; i++)
        if (events[i].received != 0)
            sig[k++] = (rp_threat_signal_t){.tenant_id = r->device.tenant_id,
                                            .device_id = r->device.id,
                                            .kind = events[i].kind,
                                            .reason = events[i].reason,
                                            .at = events[i].at,
                                            .device_failed = rp_device_failed(&r->device)};
    rp_threat_observe(r->w, sig, k);
}

/* POST /api/v1/device/status: the device (its certificate) says what runs and what was refused. */
void rp_h_device_status(rp_req_t *r)
{
    static _Thread_local rp_device_app_t apps[RP_DEVICE_APPS_MAX];
    static _Thread_local rp_device_event_t events[REPORT_EVENTS_MAX];
    json_t *body = rp_req_json(r), *ja, *je, *jd, *v;
    size_t napps = 0, nevents = 0, fresh = 0, i, known = 0;
    const char *what = NULL;
    bool capture = true;

    if (body == NULL)
        return;
    ja = json_object_get(body, "apps");
    je = json_object_get(body, "events");
    jd = json_object_get(body, "events_dropped");
    known = (ja != NULL) + (je != NULL) + (jd != NULL);
    if (json_object_size(body) != known)
        what = "an unknown key";
    else if (ja != NULL && (!json_is_array(ja) || json_array_size(ja) > RP_DEVICE_APPS_MAX))
        what = "\"apps\" is not a list of at most 64";
    else if (je != NULL && (!json_is_array(je) || json_array_size(je) > REPORT_EVENTS_MAX))
        what = "\"events\" is not a list of at most 100";
    else if (jd != NULL && (!json_is_integer(jd) || json_integer_value(jd) < 0))
        what = "\"events_dropped\" is not a count";
    json_array_foreach(what == NULL ? ja : NULL, i, v)
    {
        if (!app_parse(v, &apps[napps++])) {
            what = "an app is not {\"component\" (a component name), \"version\" (<= 47 bytes), "
                   "\"state\" ([a-z_], <= 16), \"restarts\" (>= 0)}";
            break;
        }
    }
    json_array_foreach(what == NULL ? je : NULL, i, v)
    {
        if (!event_parse(v, &events[nevents++])) {
            what = "an event is not {\"seq\" (>= 0), \"at\", \"kind\" ([a-z_], <= 32), \"app\" "
                   "(\"\" or a component name), \"reason\" (<= 255 bytes)}";
            break;
        }
    }
    if (what != NULL) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "%s: %s", what, REPORT_FORM);
        return;
    }
    if (rp_store_device_status_put(r->w->store, r->device.id, (int64_t)time(NULL),
                                   ja != NULL ? apps : NULL, napps, events, nevents,
                                   jd != NULL ? json_integer_value(jd) : 0, &fresh) != RP_OK) {
        json_decref(body);
        rp_reply_error(r, 500, "internal", "cannot record the status report");
        return;
    }
    json_decref(body);
    observe_fresh(r, events, nevents);
    /* The device's settings from its group (the operator's switches), with every answer: a
     * device learns a change at its next report. */
    if (rp_store_device_crash_capture(r->w->store, r->device.id, &capture) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the device's group");
        return;
    }
    rp_reply_json(r, 200,
                  json_pack("{s:o, s:I, s:I, s:{s:b}}", "apps",
                            ja != NULL ? json_integer((json_int_t)napps) : json_null(), "events",
                            (json_int_t)nevents, "new_events", (json_int_t)fresh, "settings",
                            "crash_capture", capture));
}

static void collect_app(void *ctx, const rp_device_app_t *a)
{
    json_array_append_new(ctx, json_pack("{s:s, s:s, s:s, s:I}", "component", a->component,
                                         "version", a->version, "state", a->state, "restarts",
                                         (json_int_t)a->restarts));
}

struct event_page {
    json_t *list;
    int64_t last;
};

static void collect_event(void *ctx, const rp_device_event_t *e)
{
    struct event_page *p = ctx;
    json_t *at = rp_iso_time_json(e->at);

    json_array_append_new(p->list,
                          json_pack("{s:I, s:o, s:s, s:s, s:s, s:o}", "seq", (json_int_t)e->seq,
                                    "at", at, "kind", e->kind, "app", e->app, "reason", e->reason,
                                    "received", rp_iso_time_json(e->received)));
    p->last = e->seq;
}

json_t *rp_device_report_json(rp_req_t *r, const char *device_id)
{
    struct event_page recent = {json_array(), 0};
    json_t *apps = json_array();
    rp_device_report_t rep;
    rp_err_t err = rp_store_device_status_get(r->w->store, device_id, &rep);

    if (err == RP_OK)
        err = rp_store_device_apps(r->w->store, device_id, collect_app, apps);
    if (err == RP_OK)
        err = rp_store_device_events(r->w->store, device_id, INT64_MAX, RECENT_EVENTS,
                                     collect_event, &recent);
    if (err != RP_OK) {
        json_decref(apps);
        json_decref(recent.list);
        return err == RP_ERR_NOT_FOUND ? json_null() : NULL;
    }
    return json_pack("{s:o, s:o, s:o, s:I, s:{s:I, s:I}, s:o}", "reported_at",
                     rp_iso_time_json(rep.reported_at), "apps_at", rp_iso_time_json(rep.apps_at),
                     "apps", apps, "events_kept", (json_int_t)rep.events_kept, "events_dropped",
                     "device", (json_int_t)rep.dropped_device, "service",
                     (json_int_t)rep.dropped_service, "recent_events", recent.list);
}

/* A query integer in [lo, hi]; false when it is not one. */
static bool query_int(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long n;

    if (v == NULL || *v == '\0')
        return false;
    n = strtoll(v, &end, 10);
    if (*end != '\0' || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

/* GET .../devices/D/events[?before=SEQ][&limit=N]: newest first; "next_before" pages on. */
void rp_h_device_events(rp_req_t *r)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    struct event_page page = {NULL, 0};
    int64_t before = INT64_MAX, limit = PAGE_DEFAULT;
    struct evkeyvalq q;
    rp_device_t d;
    bool ok = true;

    if (!rp_tenant_device(r, &d))
        return;
    if (query != NULL) {
        ok = evhttp_parse_query_str(query, &q) == 0;
        for (struct evkeyval *kv = ok ? q.tqh_first : NULL; kv != NULL; kv = kv->next.tqe_next) {
            if (strcmp(kv->key, "before") == 0)
                ok = ok && query_int(kv->value, 1, INT64_MAX, &before);
            else if (strcmp(kv->key, "limit") == 0)
                ok = ok && query_int(kv->value, 1, PAGE_MAX, &limit);
            else
                ok = false;
        }
        evhttp_clear_headers(&q);
    }
    if (!ok) {
        rp_reply_error(r, 400, "invalid",
                       "the events take ?before=SEQ (>= 1) and ?limit=N (1 to %d)", PAGE_MAX);
        return;
    }
    page.list = json_array();
    if (rp_store_device_events(r->w->store, d.id, before, (int)limit, collect_event, &page) !=
        RP_OK) {
        json_decref(page.list);
        rp_reply_error(r, 500, "internal", "cannot list the device's events");
        return;
    }
    /* A full page may have more before it. */
    rp_reply_json(r, 200,
                  json_pack("{s:o, s:o}", "events", page.list, "next_before",
                            (int64_t)json_array_size(page.list) == limit && page.last > 0
                                ? json_integer((json_int_t)page.last)
                                : json_null()));
}
