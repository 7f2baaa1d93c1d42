/*
 * The kept crashes, as the agent reads, unwinds, shows and reports them (crashes.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crashes.h"
#include "reportq.h"
#include "settings.h"
#include "rampart/file.h"
#include "rampart/log.h"
#include "unwind.h"

#define LEGACY_CURSOR_FILE "crashes.json"

rp_err_t rp_crashes_get(const rp_agent_t *a, uint64_t from, rp_crash_t *c, bool *found,
                        uint64_t *dropped)
{
    static uint8_t file[RP_MON_CRASH_MAX];
    static rp_mon_reply_t r;
    uint64_t seq = 0;
    uint32_t size = 0, off = 0;
    rp_err_t err;

    *found = false;
    *dropped = 0;
    do {
        size_t len = 0;
        if (a->monitor[0] == '\0') {
            err = rp_crash_store_read(a->state_dir, off == 0 ? from : seq, off, file + off,
                                      sizeof(file) - off, &len, &r.u.crashes.seq, &size, dropped);
            if (err != RP_OK)
                return err;
            r.u.crashes.size = size;
        } else {
            rp_mon_request_t q = {.type = RP_MON_CRASHES};
            q.u.crashes.from = off == 0 ? from : seq;
            q.u.crashes.offset = off;
            if ((err = rp_agent_monitor_call(a, &q, -1, &r)) != RP_OK)
                return err;
            len = r.u.crashes.len;
            if (r.u.crashes.offset != off || len > sizeof(file) - off)
                return RP_ERR_MALFORMED;
            memcpy(file + off, r.u.crashes.data, len);
            *dropped = r.u.crashes.dropped;
        }
        if (r.u.crashes.seq == 0)
            return RP_OK; /* none from there */
        if (off == 0) {
            seq = r.u.crashes.seq;
            size = r.u.crashes.size;
        } else if (r.u.crashes.seq != seq || r.u.crashes.size != size) {
            return RP_ERR_NOT_FOUND; /* dropped meanwhile: the caller asks again */
        }
        if (len == 0 && off < size)
            return RP_ERR_TRUNCATED;
        off += (uint32_t)len;
    } while (off < size);
    if ((err = rp_crash_parse(file, size, c)) != RP_OK)
        return err;
    if (c->seq != seq)
        return RP_ERR_MALFORMED;
    *found = true;
    return RP_OK;
}

/* The log's last bytes as a JSON string: valid UTF-8 kept, anything else shown as '?'. */
static json_t *log_string(const rp_crash_t *c)
{
    char text[RP_CRASH_LOG_MAX + 1];
    json_t *s = json_stringn((const char *)c->log, c->log_len);

    if (s != NULL)
        return s;
    for (size_t i = 0; i < c->log_len; i++)
        text[i] = c->log[i] >= 0x80 || c->log[i] == 0 ? '?' : (char)c->log[i];
    return json_stringn(text, c->log_len);
}

json_t *rp_crash_object(const char *state_dir, const rp_crash_t *c)
{
    static rp_frame_t frames[RP_UNWIND_FRAMES_MAX];
    size_t n = 0;
    char addr[24];
    json_t *list = json_array(), *o;

    if (rp_unwind(state_dir, c, frames, &n) != RP_OK)
        n = 0;
    for (size_t i = 0; list != NULL && i < n; i++) {
        char off[24];
        snprintf(off, sizeof(off), "0x%" PRIx64, frames[i].offset);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "build_id", frames[i].build_id,
                                              "module", frames[i].module, "offset", off));
    }
    snprintf(addr, sizeof(addr), "0x%" PRIx64, c->cap.addr);
    o = json_pack("{s:i, s:s, s:i, s:s, s:I, s:o, s:o}", "signal", c->cap.signo, "signal_name",
                  rp_crash_signal_name(c->cap.signo), "code", c->cap.code, "address", addr,
                  "uptime_ms", (json_int_t)c->uptime_ms, "frames", list, "stderr", log_string(c));
    return o;
}

/* The reason, for people: "SIGSEGV (code 1) at 0x10 in app+0x1139". */
static void reason(const rp_crash_t *c, json_t *crash, char *out, size_t cap)
{
    json_t *top = json_array_get(json_object_get(crash, "frames"), 0);
    const char *mod = json_string_value(json_object_get(top, "module"));

    snprintf(out, cap, "%s (code %d) at 0x%" PRIx64 "%s%s%s%s", rp_crash_signal_name(c->cap.signo),
             c->cap.code, c->cap.addr, mod != NULL ? " in " : "", mod != NULL ? mod : "",
             mod != NULL ? "+" : "",
             mod != NULL ? json_string_value(json_object_get(top, "offset")) : "");
}

int rp_crashes_list(const rp_agent_t *a, bool as_json, FILE *out)
{
    static rp_crash_t c;
    json_t *list = json_array();
    uint64_t from = 0, dropped = 0;
    bool found = true;
    int tries = 0;

    while (found) {
        rp_err_t err = rp_crashes_get(a, from, &c, &found, &dropped);
        if (err == RP_ERR_NOT_FOUND && ++tries < 5)
            continue; /* dropped while it was read: the next one */
        if (err != RP_OK) {
            rp_log_error("%s: cannot read the kept crashes: %s", a->state_dir, rp_strerror(err));
            json_decref(list);
            return 1;
        }
        if (!found)
            break;
        from = c.seq + 1;
        json_t *crash = rp_crash_object(a->state_dir, &c);
        if (crash == NULL)
            continue;
        if (as_json) {
            json_object_set_new(crash, "seq", json_integer((json_int_t)c.seq));
            json_object_set_new(crash, "at", json_integer((json_int_t)c.at));
            json_object_set_new(crash, "component", json_string(c.component));
            json_object_set_new(crash, "version", json_string(c.version));
            /* what the device kept of its stack (not reported: the frames are) */
            json_object_set_new(crash, "stack_bytes", json_integer((json_int_t)c.cap.stack_len));
            json_array_append_new(list, crash);
            continue;
        }
        char when[32], why[256];
        time_t t = (time_t)c.at;
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL ||
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
            snprintf(when, sizeof(when), "%lld", (long long)c.at);
        reason(&c, crash, why, sizeof(why));
        fprintf(out, "crash %" PRIu64 " %s %s %s: %s, after %" PRIu64 " ms\n", c.seq, when,
                c.component, c.version, why, c.uptime_ms);
        json_t *f;
        size_t i;
        json_array_foreach(json_object_get(crash, "frames"), i, f)
            fprintf(out, "  #%-2zu %s+%s %s\n", i, json_string_value(json_object_get(f, "module")),
                    json_string_value(json_object_get(f, "offset")),
                    json_string_value(json_object_get(f, "build_id")));
        json_decref(crash);
    }
    if (as_json) {
        json_t *o = json_pack("{s:o, s:I}", "crashes", list, "dropped", (json_int_t)dropped);
        json_dumpf(o, out, JSON_INDENT(2));
        fputc('\n', out);
        json_decref(o);
    } else {
        json_decref(list);
        if (dropped > 0)
            fprintf(out, "(%" PRIu64 " older crashes dropped: the device keeps the newest %d)\n",
                    dropped, RP_CRASH_KEEP);
    }
    return 0;
}

/* Where an older agent's cursor was (S/agent/crashes.json): read once, when the queue has no
 * crash cursor yet. */
static uint64_t legacy_cursor(const rp_agent_t *a)
{
    char path[4096];
    uint8_t *data;
    size_t len;
    uint64_t next = 0;

    if (rp_agent_file(a, LEGACY_CURSOR_FILE, path, sizeof(path)) != RP_OK ||
        rp_read_file(path, 4096, &data, &len) != RP_OK)
        return 0;
    json_t *j = json_loadb((const char *)data, len, 0, NULL);
    json_int_t v = json_integer_value(json_object_get(j, "next"));
    next = v > 0 ? (uint64_t)v : 0;
    json_decref(j);
    free(data);
    return next;
}

void rp_crashes_report_new(const rp_agent_t *a)
{
    static rp_crash_t c;
    uint64_t next, dropped;
    bool found = true, known, capture = rp_settings_load(a).crash_capture;

    /* The cursor is the queue's: it moves with the crash's report, in one atomic step. */
    if (rp_reportq_cursor(a, RP_REPORTQ_CRASHES, &next, &known) != RP_OK)
        return;
    if (!known)
        next = legacy_cursor(a);
    for (int i = 0; i < RP_CRASH_KEEP && found; i++) {
        if (rp_crashes_get(a, next, &c, &found, &dropped) != RP_OK || !found)
            return;
        if (!capture) { /* the operator said no: passed over for good, never sent later */
            rp_log_info("crash %" PRIu64 " of %s %s not queued: crash capture is off for this "
                        "device's group",
                        c.seq, c.component, c.version);
            if (rp_reportq_cursor_set(a, RP_REPORTQ_CRASHES, c.seq + 1) != RP_OK)
                return;
            next = c.seq + 1;
            continue;
        }
        json_t *crash = rp_crash_object(a->state_dir, &c), *report;
        char why[256];
        if (crash == NULL)
            return;
        reason(&c, crash, why, sizeof(why));
        report = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o}", "at", (json_int_t)c.at, "kind",
                           "crash", "component", c.component, "version", c.version, "reason", why,
                           "code", "", "crash", crash);
        rp_err_t err = report != NULL ? rp_reportq_add_from(a, report, RP_REPORTQ_CRASHES, c.seq)
                                      : RP_ERR_NO_MEMORY;
        json_decref(report);
        if (err == RP_ERR_MALFORMED) { /* never queueable: passed over, or it would stop the rest */
            rp_log_warn("crash %" PRIu64 " of %s %s is not a report the queue takes; not sent",
                        c.seq, c.component, c.version);
            if (rp_reportq_cursor_set(a, RP_REPORTQ_CRASHES, c.seq + 1) != RP_OK)
                return;
        } else if (err != RP_OK) {
            return; /* kept: handed again next time */
        } else {
            rp_log_info("crash %" PRIu64 " of %s %s queued for the service: %s", c.seq, c.component,
                        c.version, why);
        }
        next = c.seq + 1;
    }
}
