/*
 * What runs, as the device shows and reports it (report.h): events and app logs through the
 * monitor or from the files, the one formatter of an event, and the status report to the service.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rampart/file.h"
#include "rampart/http_client.h"
#include "rampart/log.h"
#include "report.h"
#include "reportq.h"
#include "settings.h"

#define CURSOR_FILE "report.json"

/* ---- events ---- */

rp_err_t rp_report_events(const rp_agent_t *a, uint64_t from, rp_event_t *out, size_t max,
                          size_t *n, uint64_t *next, bool *more, uint64_t *dropped)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q;
    rp_err_t err;

    if (a->monitor[0] == '\0')
        return rp_events_read_from(a->state_dir, from, out, max, n, next, more, dropped);
    *n = 0;
    *next = from;
    *more = true;
    *dropped = 0;
    while (*more && *n < max) {
        memset(&q, 0, sizeof(q));
        q.type = RP_MON_EVENTS;
        q.u.events.from = *next;
        err = rp_agent_monitor_call(a, &q, -1, &r);
        if (err != RP_OK)
            return err;
        *dropped = r.u.events.dropped;
        *more = r.u.events.more != 0;
        *next = r.u.events.next;
        for (size_t i = 0; i < r.u.events.n; i++) {
            const rp_mon_event_t *m = &r.u.events.e[i];
            rp_event_t *e = &out[*n];
            if (*n == max) { /* the rest of this page: asked again next time */
                *next = m->seq;
                *more = true;
                break;
            }
            memset(e, 0, sizeof(*e));
            e->seq = m->seq;
            e->at = m->at;
            e->kind = (rp_event_kind_t)m->kind;
            memcpy(e->app, m->app, sizeof(e->app));
            memcpy(e->reason, m->reason, sizeof(e->reason));
            (*n)++;
        }
    }
    return RP_OK;
}

json_t *rp_report_event_json(const rp_event_t *e)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:s}", "seq", (json_int_t)e->seq, "at",
                     (json_int_t)e->at, "kind", rp_event_kind_name(e->kind), "app", e->app,
                     "reason", e->reason);
}

void rp_report_event_print(const rp_event_t *e, FILE *out)
{
    char when[32];
    time_t t = (time_t)e->at;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(when, sizeof(when), "%lld", (long long)e->at);
    fprintf(out, "%s %-14s %-16s %s\n", when, rp_event_kind_name(e->kind),
            e->app[0] != '\0' ? e->app : "-", e->reason);
}

/* ---- an app's abnormal ends, as reports ---- */

int rp_report_kind_of_event(rp_event_kind_t kind)
{
    switch (kind) {
    case RP_EVENT_EXIT: return RP_REPORT_EXIT;
    case RP_EVENT_OOM: return RP_REPORT_OOM;
    case RP_EVENT_RESTART_LOOP: return RP_REPORT_RESTART_LOOP;
    case RP_EVENT_HEALTH: return RP_REPORT_HEALTH;
    default: return RP_REPORT_KIND_END;
    }
}

json_t *rp_report_of_event(const rp_event_t *e)
{
    int kind = rp_report_kind_of_event(e->kind);
    char version[RP_REPORT_VERSION_MAX + 1] = "", reason[RP_EVENT_REASON_MAX + 80];
    const char *what = e->reason, *sep = strstr(e->reason, RP_EVENT_VERSION_SEP), *code;

    if (kind == RP_REPORT_KIND_END)
        return NULL;
    /* "VERSION: what" (events.h; a monitor before this one named no version in an oom event,
     * "killed at its memory limit (1 process)": no separator, no version). */
    if (sep != NULL && (size_t)(sep - e->reason) <= RP_REPORT_VERSION_MAX) {
        snprintf(version, sizeof(version), "%.*s", (int)(sep - e->reason), e->reason);
        what = sep + strlen(RP_EVENT_VERSION_SEP);
    }
    switch (e->kind) {
    case RP_EVENT_EXIT:
        code =
            strncmp(what, "exited", 6) == 0 ? RP_REPORT_CODE_NONZERO_STATUS : RP_REPORT_CODE_SIGNAL;
        break;
    case RP_EVENT_OOM: code = RP_REPORT_CODE_MEMORY_LIMIT; break;
    case RP_EVENT_HEALTH:
        code = strncmp(what, RP_EVENT_WATCHDOG, strlen(RP_EVENT_WATCHDOG)) == 0
                   ? RP_REPORT_CODE_WATCHDOG
                   : RP_REPORT_CODE_TRIAL_FAILED;
        break;
    default: code = RP_REPORT_CODE_TOO_MANY_EXITS; break;
    }
    snprintf(reason, sizeof(reason), "%s%s%s%s%s", e->app, e->app[0] ? " " : "", version,
             version[0] ? ": " : "", what);
    return rp_report_new((rp_report_kind_t)kind, e->at, e->app, version, code, reason);
}

void rp_report_events_new(const rp_agent_t *a)
{
    static rp_event_t ev[RP_REPORT_EVENTS_MAX];
    uint64_t from, next, dropped, moved;
    bool known, more = true;

    if (rp_reportq_cursor(a, RP_REPORTQ_EVENTS, &from, &known) != RP_OK)
        return;
    moved = from;
    /* A bounded turn: RP_EVENTS_MAX events at most (the whole log); the rest next time. */
    for (size_t seen = 0; more && seen < RP_EVENTS_MAX;) {
        size_t n = 0;
        if (rp_report_events(a, from, ev, RP_REPORT_EVENTS_MAX, &n, &next, &more, &dropped) !=
            RP_OK)
            break;
        for (size_t i = 0; i < n; i++) {
            json_t *r = rp_report_of_event(&ev[i]);
            rp_err_t err;
            if (r == NULL)
                continue;
            err = rp_reportq_add_from(a, r, RP_REPORTQ_EVENTS, ev[i].seq);
            json_decref(r);
            if (err != RP_OK && err != RP_ERR_MALFORMED)
                return; /* kept: handed again next time */
            if (err == RP_OK)
                moved = ev[i].seq + 1; /* the cursor moved with it */
            else
                rp_log_warn("event %llu (%s of %s) is not a report the queue takes; not sent",
                            (unsigned long long)ev[i].seq, rp_event_kind_name(ev[i].kind),
                            ev[i].app);
        }
        seen += n;
        if (next == from)
            break;
        from = next;
    }
    /* Past what this turn read and did not queue (security events, a report refused). */
    if (from != moved && rp_reportq_cursor_set(a, RP_REPORTQ_EVENTS, from) != RP_OK)
        rp_log_warn("cannot move the event cursor of the report queue");
}

/* ---- app logs ---- */

/* One APP_LOG question. OUT: the reply in *r. */
static rp_err_t ask_log(const rp_agent_t *a, const char *component, uint64_t offset,
                        rp_mon_reply_t *r)
{
    rp_mon_request_t q;

    memset(&q, 0, sizeof(q));
    q.type = RP_MON_APP_LOG;
    snprintf(q.u.app_log.component, sizeof(q.u.app_log.component), "%s", component);
    q.u.app_log.offset = offset;
    return rp_agent_monitor_call(a, &q, -1, r);
}

rp_err_t rp_report_app_log(const rp_agent_t *a, const char *component, uint64_t tail, FILE *out)
{
    static rp_mon_reply_t r;
    uint64_t size, off;
    rp_err_t err;

    if (strlen(component) > RP_COMPONENT_NAME_MAX)
        return RP_ERR_INVALID_ARG;
    err = ask_log(a, component, UINT64_MAX, &r); /* past any end: the size alone */
    if (err != RP_OK)
        return err;
    size = r.u.app_log.size;
    off = size > tail ? size - tail : 0;
    if (off > 0)
        fprintf(out, "[... %llu earlier bytes not shown]\n", (unsigned long long)off);
    /* Only what was there at the first answer: a chatty app cannot keep this going. */
    while (off < size) {
        err = ask_log(a, component, off, &r);
        if (err != RP_OK)
            return err;
        if (r.u.app_log.offset != off || r.u.app_log.len == 0)
            break; /* cut back meanwhile: what was shown stands */
        if (r.u.app_log.len > size - off)
            r.u.app_log.len = (size_t)(size - off);
        if (fwrite(r.u.app_log.data, 1, r.u.app_log.len, out) != r.u.app_log.len)
            return RP_ERR_IO;
        off += r.u.app_log.len;
    }
    return RP_OK;
}

/* ---- the status report ---- */

/* The cursor: the next event number to report (0 when none was kept, or it is unreadable: the
 * service keeps one of each event, so sending some again is harmless). */
static uint64_t cursor_load(const rp_agent_t *a)
{
    char path[PATH_MAX + 64];
    uint8_t *data = NULL;
    size_t len;
    json_t *j;
    uint64_t next = 0;

    if (rp_agent_file(a, CURSOR_FILE, path, sizeof(path)) != RP_OK ||
        rp_read_file(path, 4096, &data, &len) != RP_OK)
        return 0;
    j = json_loadb((const char *)data, len, 0, NULL);
    free(data);
    if (json_is_integer(json_object_get(j, "next_event")) &&
        json_integer_value(json_object_get(j, "next_event")) >= 0)
        next = (uint64_t)json_integer_value(json_object_get(j, "next_event"));
    else
        rp_log_warn("%s is corrupt: the status report starts again from the oldest event", path);
    json_decref(j);
    return next;
}

static rp_err_t cursor_save(const rp_agent_t *a, uint64_t next)
{
    return rp_agent_json_keep(a, CURSOR_FILE, json_pack("{s:I}", "next_event", (json_int_t)next));
}

/* The apps the monitor runs (APP_LIST), as the report carries them; NULL on failure (said). */
static json_t *apps_json(const rp_agent_t *a)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_APP_LIST};
    json_t *list;

    if (rp_agent_monitor_call(a, &q, -1, &r) != RP_OK)
        return NULL;
    list = json_array();
    for (size_t i = 0; list != NULL && i < r.u.app_list.n; i++) {
        const rp_mon_app_t *p = &r.u.app_list.a[i];
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I}", "component", p->component,
                                              "version", p->version, "state",
                                              rp_mon_app_state_name(p->state), "restarts",
                                              (json_int_t)p->restarts));
    }
    return list;
}

struct tls {
    rp_agent_t *a;
    char cert[PATH_MAX + 64];
};

/* The device's certificate and key on curl's TLS context (the key stays in the root of trust). */
static int client_cert(SSL_CTX *ctx, void *arg)
{
    struct tls *t = arg;

    return rp_agent_ssl_ctx_use(t->a, ctx, t->cert);
}

/* POST one report. OUT: on 200, *taken (the events the service took). */
static rp_err_t post(rp_agent_t *a, const char *server, const char *ca, json_t *body, size_t *taken,
                     rp_report_summary_t *sum)
{
    static struct tls t;
    rp_http_opts_t h = {ca, NULL, "application/json", 30, client_cert, &t, NULL, NULL, 0};
    rp_http_response_t r;
    char url[2048], *text = json_dumps(body, JSON_COMPACT);
    json_t *resp;
    rp_err_t err;

    if (text == NULL)
        return RP_ERR_NO_MEMORY;
    t.a = a;
    err = rp_agent_file(a, "device.crt", t.cert, sizeof(t.cert));
    snprintf(url, sizeof(url), "%s/api/v1/device/status", server);
    if (err == RP_OK && (err = rp_http_request("POST", url, &h, text, strlen(text), &r)) != RP_OK)
        snprintf(sum->detail, sizeof(sum->detail), "%.200s: %s", server, r.error);
    free(text);
    if (err != RP_OK)
        return err;
    resp = json_loadb(r.body, r.len, 0, NULL);
    if (r.status != 200) {
        const char *why = json_string_value(json_object_get(resp, "message"));
        snprintf(sum->detail, sizeof(sum->detail),
                 "the service refused the status report (HTTP %ld): %s", r.status,
                 why != NULL ? why : "no reason given");
        err = RP_ERR_IO;
    } else if (!json_is_integer(json_object_get(resp, "events"))) {
        snprintf(sum->detail, sizeof(sum->detail), "the service's answer lacks \"events\"");
        err = RP_ERR_MALFORMED;
    } else {
        *taken = (size_t)json_integer_value(json_object_get(resp, "events"));
        /* The group's settings ride on every answer (settings.h); a service without them says
         * nothing, and the device keeps what it knew. */
        rp_err_t serr = json_object_get(resp, "settings") == NULL
                            ? RP_OK
                            : rp_settings_learn(a, json_object_get(resp, "settings"));
        if (serr != RP_OK)
            rp_log_warn("the service's settings (crash capture) are not applied: %s",
                        rp_strerror(serr));
    }
    json_decref(resp);
    rp_http_response_free(&r);
    return err;
}

rp_err_t rp_report_status(rp_agent_t *a, const char *server, const char *server_ca,
                          rp_report_summary_t *sum)
{
    static rp_event_t ev[RP_REPORT_EVENTS_MAX];
    uint64_t from = cursor_load(a), next, dropped;
    json_t *apps = NULL;
    bool more = true, first = true;
    rp_err_t err = RP_OK;

    memset(sum, 0, sizeof(sum[0]));
    sum->apps = -1;
    sum->next = from;
    if (a->monitor[0] != '\0') {
        apps = apps_json(a);
        if (apps == NULL) {
            snprintf(sum->detail, sizeof(sum->detail), "the monitor did not list the apps");
            return RP_ERR_IO;
        }
        sum->apps = (int)json_array_size(apps);
    }
    /* One request at least (the apps), then one per RP_REPORT_EVENTS_MAX events left. */
    while (err == RP_OK && (first || more)) {
        json_t *body, *list = json_array();
        size_t n = 0, taken = 0;
        err = rp_report_events(a, from, ev, RP_REPORT_EVENTS_MAX, &n, &next, &more, &dropped);
        if (err != RP_OK) {
            snprintf(sum->detail, sizeof(sum->detail), "cannot read the security events: %s",
                     rp_strerror(err));
            json_decref(list);
            break;
        }
        for (size_t i = 0; list != NULL && i < n; i++)
            if (rp_report_kind_of_event(ev[i].kind) == RP_REPORT_KIND_END) /* else a report */
                json_array_append_new(list, rp_report_event_json(&ev[i]));
        body = json_pack("{s:o, s:I}", "events", list, "events_dropped", (json_int_t)dropped);
        if (body != NULL && first && apps != NULL)
            json_object_set(body, "apps", apps);
        err = body != NULL ? post(a, server, server_ca, body, &taken, sum) : RP_ERR_NO_MEMORY;
        json_decref(body);
        if (err == RP_OK && next != from)
            err = cursor_save(a, next);
        if (err == RP_OK) {
            sum->events += taken;
            sum->next = from = next;
        }
        first = false;
    }
    json_decref(apps);
    if (err != RP_OK && sum->detail[0] == '\0')
        snprintf(sum->detail, sizeof(sum->detail), "%s", rp_strerror(err));
    return err;
}
