/*
 * rampart-agent's commands that say what the device knows of itself (commands.h): status, the
 * apps (list, logs, stop, start, restart, remove), events, crashes, reports, and report (the
 * report queue's upload now: the daemon's step, daemon.c).
 */
#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "commands.h"
#include "confine.h"
#include "crashes.h"
#include "events.h"
#include "proto.h"
#include "report.h"
#include "reportq.h"
#include "slots.h"
#include "supervise.h"
#include "update.h"
#include "rampart/component.h"
#include "rampart/hex.h"
#include "rampart/log.h"

/* A trial handed to the agent for an MCU, waiting for the board's verdict: its image's digest and
 * the monitor's deadline (null when it is not known); null when none is. */
static json_t *handed_json(const rp_mon_component_t *c)
{
    char hex[2 * RP_SHA256_LEN + 1];

    if (c->trial > 1 || c->trial_until == 0 ||
        rp_hex_encode(c->trial_digest, RP_SHA256_LEN, hex, sizeof(hex)) != RP_OK)
        return json_null();
    return json_pack("{s:s, s:I}", "digest", hex, "deadline", (json_int_t)c->trial_until);
}

/*
 * The components as the monitor's STATUS gives them, in the JSON form of `status`: what it does
 * not say (the running image's own security counter) is null, and the apps are the monitor's to
 * list.
 */
static rp_err_t status_by_monitor(rp_agent_t *agent, json_t *list)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_STATUS};
    rp_err_t err = rp_agent_monitor_call(agent, &q, -1, &r);

    for (size_t i = 0; err == RP_OK && i < r.u.status.n; i++) {
        const rp_mon_component_t *c = &r.u.status.c[i];
        const char *result = rp_update_state_name((rp_update_state_t)c->last_result);
        json_array_append_new(
            list,
            json_pack("{s:s, s:o, s:o, s:b, s:o, s:o, s:n, s:I, s:{s:s, s:s, s:s, s:I}, s:n}",
                      "name", c->name, "version",
                      c->version[0] ? json_string(c->version) : json_null(), "active_slot",
                      c->active <= 1 ? json_sprintf("%c", "ab"[c->active]) : json_null(),
                      "verified", c->version[0] != '\0', "trial_slot",
                      c->trial <= 1 ? json_sprintf("%c", "ab"[c->trial]) : json_null(), "handed",
                      handed_json(c), "security_counter", "security_counter_floor",
                      (json_int_t)c->security_counter, "last_update", "result",
                      result != NULL ? result : "?", "version", c->last_version, "detail",
                      c->last_detail, "at", (json_int_t)c->last_at, "app"));
    }
    return err;
}

/* seconds (since the epoch, a JSON integer) as UTC text in when ("?" when it cannot be). */
static void utc_text(const json_t *seconds, char when[32])
{
    time_t t = (time_t)json_integer_value(seconds);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(when, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(when, 32, "?");
}

int cmd_status(const struct args *a)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1], path[PATH_MAX];
    json_t *list = json_array(), *cas;
    rp_agent_t agent;
    size_t n = 0;
    rp_err_t err;

    if (a->output != NULL && strcmp(a->output, "json") != 0 && strcmp(a->output, "text") != 0) {
        json_decref(list);
        return cmd_usage("--output must be text or json");
    }
    if (cmd_open_agent(a, &agent) != OK) {
        json_decref(list);
        return FAIL;
    }
    if (!cmd_direct(&agent))
        err = status_by_monitor(&agent, list);
    else
        err = rp_component_names(a->state_dir, names, RP_COMPONENTS_MAX, &n);
    for (size_t i = 0; err == RP_OK && i < n; i++) {
        rp_component_t c;
        rp_slot_image_t img = {0};
        uint32_t counter = 0;
        json_t *run;
        err = rp_component_load(a->state_dir, names[i], &c);
        if (err == RP_OK)
            err = rp_rot_seccnt_read(agent.rot, c.seccnt_index, &counter);
        if (err == RP_OK && c.active >= 0 &&
            rp_slot_path(a->state_dir, c.name, c.active, path, sizeof(path)) == RP_OK)
            err = rp_slot_check(&agent, &c, path, &img);
        if (err != RP_OK)
            break;
        if (rp_app_status_load(a->state_dir, c.name, &run) != RP_OK)
            run = json_null(); /* never run by the daemon (or its record is corrupt: said so) */
        /* security_counter: the running image's, null when it has none (or nothing verified
         * runs); security_counter_floor: the root of trust's, below which nothing installs. */
        json_array_append_new(
            list,
            json_pack(
                "{s:s, s:o, s:o, s:b, s:o, s:n, s:o, s:I, s:{s:s, s:s, s:s, s:I}, s:o}", "name",
                c.name, "version", img.valid ? json_string(img.version) : json_null(),
                "active_slot", c.active >= 0 ? json_sprintf("%c", "ab"[c.active]) : json_null(),
                "verified", img.valid, "trial_slot",
                c.trial >= 0 ? json_sprintf("%c", "ab"[c.trial]) : json_null(), "handed",
                "security_counter",
                img.valid && img.has_security_counter ? json_integer(img.security_counter)
                                                      : json_null(),
                "security_counter_floor", (json_int_t)counter, "last_update", "result",
                rp_update_state_name(c.last_result), "version", c.last_version, "detail",
                c.last_detail, "at", (json_int_t)c.last_at, "app", run));
    }
    cas = rp_agent_service_ca_list(&agent);
    rp_agent_close(&agent);
    if (err != RP_OK || cas == NULL) {
        json_decref(list);
        json_decref(cas);
        rp_log_error("cannot read the components: %s", rp_strerror(err));
        return FAIL;
    }
    if (a->output != NULL && strcmp(a->output, "json") == 0) {
        json_t *out = json_pack("{s:o, s:o}", "components", list, "service_cas", cas);
        json_dumpf(out, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(out);
        return OK;
    }
    printf("%-16s %-14s %-5s %-10s %-6s %s\n", "COMPONENT", "VERSION", "SLOT", "COUNTER", "FLOOR",
           "LAST UPDATE");
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *c = json_array_get(list, i), *l = json_object_get(c, "last_update");
        json_t *run = json_object_get(c, "app");
        const char *v = json_string_value(json_object_get(c, "version"));
        const char *slot = json_string_value(json_object_get(c, "active_slot"));
        json_t *cnt = json_object_get(c, "security_counter");
        char counter_text[16];
        if (json_is_integer(cnt))
            snprintf(counter_text, sizeof(counter_text), "%lld",
                     (long long)json_integer_value(cnt));
        else
            snprintf(counter_text, sizeof(counter_text), "none");
        printf("%-16s %-14s %-5s %-10s %-6lld %s %s%s%s\n",
               json_string_value(json_object_get(c, "name")), v != NULL ? v : "(none)",
               slot != NULL ? slot : "-", counter_text,
               (long long)json_integer_value(json_object_get(c, "security_counter_floor")),
               json_string_value(json_object_get(l, "result")),
               json_string_value(json_object_get(l, "version")),
               *json_string_value(json_object_get(l, "detail")) ? ": " : "",
               json_string_value(json_object_get(l, "detail")));
        if (json_is_object(json_object_get(c, "handed"))) {
            json_t *h = json_object_get(c, "handed");
            char when[32];
            utc_text(json_object_get(h, "deadline"), when);
            printf("%-16s on trial in slot %s, handed to the MCU's relay: %s, its verdict due by %s\n",
                   "", json_string_value(json_object_get(c, "trial_slot")) ?: "?",
                   json_string_value(json_object_get(h, "digest")), when);
        }
        if (json_is_object(run)) {
            json_int_t pid = json_integer_value(json_object_get(run, "pid"));
            const char *exit = json_string_value(json_object_get(run, "last_exit"));
            printf("%-16s app %s: %s", "", json_string_value(json_object_get(run, "version")) ?: "",
                   json_string_value(json_object_get(run, "status")));
            if (pid > 0)
                printf(", pid %lld%s", (long long)pid,
                       json_is_true(json_object_get(run, "alive")) ? "" : " (gone)");
            printf(", %lld restart(s)%s%s\n",
                   (long long)json_integer_value(json_object_get(run, "restarts")),
                   exit != NULL ? ", last " : "", exit != NULL ? exit : "");
        }
    }
    /* The service CAs trusted for the service: the given one first, then those it published. */
    for (size_t i = 0; i < json_array_size(cas); i++) {
        json_t *ca = json_array_get(cas, i), *until = json_object_get(ca, "not_after");
        char when[32];
        utc_text(until, when);
        printf("service CA %s, SHA-256 %s, until %s%s\n",
               json_string_value(json_object_get(ca, "subject")),
               json_string_value(json_object_get(ca, "sha256")), when,
               json_integer_value(until) <= (json_int_t)time(NULL) ? " (ended)" : "");
    }
    json_decref(cas);
    json_decref(list);
    return OK;
}

#define APP_LOG_TAIL (64 * 1024) /* what `app logs` shows of an app's log, at most: its end */

/* app logs NAME: the end of the app's stdout and stderr (S/components/NAME/app.log). */
int cmd_app_logs(const struct args *a)
{
    char path[PATH_MAX], buf[8192];
    struct stat st;
    off_t from;
    ssize_t got;
    int fd;

    if (a->nrest != 1)
        return cmd_usage("app logs needs one NAME");
    if (!rp_component_name_valid(a->rest[0], strlen(a->rest[0])))
        return cmd_usage("a component name is 1 to 32 of A-Z a-z 0-9 . _ - (no leading dot)");
    /* Through the monitor when it serves S: the logs are root's (APP_LOG). */
    {
        rp_agent_t agent;
        if (rp_agent_attach_records(&agent, a->state_dir) != RP_OK)
            return FAIL;
        if (agent.monitor[0] != '\0') {
            rp_err_t err = rp_report_app_log(&agent, a->rest[0], APP_LOG_TAIL, stdout);
            fflush(stdout);
            return err == RP_OK ? OK : FAIL; /* a refusal is said */
        }
    }
    /* The monitor's (S/apps/NAME/log: the app in its compartment) or, from an agent that ran it
     * itself, S/components/NAME/app.log: whichever was written last. */
    {
        char mon[PATH_MAX];
        struct stat ms, as;
        if (snprintf(path, sizeof(path), "%s/components/%s/app.log", a->state_dir, a->rest[0]) >=
                (int)sizeof(path) ||
            snprintf(mon, sizeof(mon), "%s/apps/%s/log", a->state_dir, a->rest[0]) >=
                (int)sizeof(mon))
            return cmd_usage("the state directory's path is too long");
        if (lstat(mon, &ms) == 0 &&
            (lstat(path, &as) != 0 || ms.st_mtim.tv_sec > as.st_mtim.tv_sec ||
             (ms.st_mtim.tv_sec == as.st_mtim.tv_sec && ms.st_mtim.tv_nsec >= as.st_mtim.tv_nsec)))
            memcpy(path, mon, sizeof(mon));
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        rp_log_error("%s: %s", path,
                     errno == ENOENT ? "no log: the app never ran on this device"
                                     : strerror(errno));
        return FAIL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rp_log_error("%s: not a regular file", path);
        close(fd);
        return FAIL;
    }
    from = st.st_size > APP_LOG_TAIL ? st.st_size - APP_LOG_TAIL : 0;
    if (from > 0)
        printf("[... %lld earlier bytes not shown]\n", (long long)from);
    fflush(stdout);
    if (lseek(fd, from, SEEK_SET) < 0) {
        close(fd);
        return FAIL;
    }
    /* Only what was there when it was opened: a chatty app cannot keep this going. */
    for (off_t left = st.st_size - from; left > 0; left -= got) {
        got = read(fd, buf, (size_t)left < sizeof(buf) ? (size_t)left : sizeof(buf));
        if (got <= 0 || fwrite(buf, 1, (size_t)got, stdout) != (size_t)got)
            break;
    }
    close(fd);
    return OK;
}

/* Ask the monitor serving state_dir about its apps (it alone knows: the apps are its processes);
 * a refusal, or no monitor, is said. */
static rp_err_t ask_apps_monitor(const char *state_dir, const rp_mon_request_t *q,
                                 rp_mon_reply_t *r)
{
    char sock[PATH_MAX];
    rp_err_t err;

    if (!rp_agent_monitor_serves(state_dir)) {
        rp_log_error("no rampart-monitor serves %s (nothing answers on %s/monitor.sock): the "
                     "monitor runs the apps; start it with `rampart-monitor --state-dir %s`",
                     state_dir, state_dir, state_dir);
        return RP_ERR_NOT_FOUND;
    }
    snprintf(sock, sizeof(sock), "%s/monitor.sock", state_dir);
    err = rp_mon_call(sock, q, -1, r);
    if (err != RP_OK) {
        rp_log_error("%s: the monitor did not answer: %s", sock, rp_strerror(err));
        return RP_ERR_IO;
    }
    if (r->status != RP_OK) {
        rp_log_error("the monitor refused: %s", r->message);
        return (rp_err_t)r->status;
    }
    return RP_OK;
}

/* app stop|start|restart NAME: an operator's word to the monitor; a stop is kept (across the
 * monitor's restarts and new versions) until a start. */
int cmd_app_control(const struct args *a, rp_mon_app_action_t action)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_APP_CONTROL, .id = 1};

    if (a->nrest != 1)
        return cmd_usage("app stop, start and restart take one NAME");
    if (!rp_component_name_valid(a->rest[0], strlen(a->rest[0]))) {
        rp_log_error("%s: not a component name", a->rest[0]);
        return FAIL;
    }
    snprintf(q.u.app_control.component, sizeof(q.u.app_control.component), "%s", a->rest[0]);
    q.u.app_control.action = (uint8_t)action;
    if (ask_apps_monitor(a->state_dir, &q, &r) != RP_OK)
        return FAIL;
    printf("%s: %s\n", a->rest[0],
           action == RP_MON_APP_STOP    ? "stopped (until `app start`)"
           : action == RP_MON_APP_START ? "started"
                                        : "restarted");
    return OK;
}

/* app remove NAME: the monitor removes the app (its tree, storage, log, slots) if the device's
 * signed targets no longer name it or a development capability is in force. */
int cmd_app_remove(const struct args *a)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_APP_REMOVE, .id = 1};

    if (a->nrest != 1)
        return cmd_usage("app remove takes one NAME");
    if (!rp_component_name_valid(a->rest[0], strlen(a->rest[0]))) {
        rp_log_error("%s: not a component name", a->rest[0]);
        return FAIL;
    }
    snprintf(q.u.app_remove.component, sizeof(q.u.app_remove.component), "%s", a->rest[0]);
    if (ask_apps_monitor(a->state_dir, &q, &r) != RP_OK)
        return FAIL;
    printf("%s: removed\n", a->rest[0]);
    return OK;
}

/* app list: what the monitor runs. A contract: docs/monitor.md ("Apps"). */
int cmd_app_list(const struct args *a)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_APP_LIST, .id = 1};
    bool json = a->output != NULL && strcmp(a->output, "json") == 0;

    if (a->output != NULL && !json && strcmp(a->output, "text") != 0)
        return cmd_usage("--output must be text or json");
    if (a->nrest != 0)
        return cmd_usage("app list takes no NAME");
    if (ask_apps_monitor(a->state_dir, &q, &r) != RP_OK)
        return FAIL;
    if (json) {
        json_t *list = json_array();
        char *text;
        for (size_t i = 0; list != NULL && i < r.u.app_list.n; i++) {
            const rp_mon_app_t *p = &r.u.app_list.a[i];
            /* A limit not in force (its layer missing here, or no storage asked for) is null. */
#define LIMIT(v) ((v) > 0 ? json_integer(v) : json_null())
            json_array_append_new(
                list,
                json_pack("{s:s, s:s, s:s, s:I, s:o, s:{s:o, s:o, s:o, s:o}, s:s}", "component",
                          p->component, "version", p->version, "state",
                          rp_mon_app_state_name(p->state), "restarts", (json_int_t)p->restarts,
                          "pid", LIMIT(p->pid), "limits", "memory_kb", LIMIT(p->memory_kb), "pids",
                          LIMIT(p->pids), "cpu_percent", LIMIT(p->cpu_percent), "storage_kb",
                          LIMIT(p->storage_kb), "missing", p->missing));
#undef LIMIT
        }
        text = list != NULL ? json_dumps(list, JSON_INDENT(2)) : NULL;
        json_decref(list);
        if (text == NULL)
            return FAIL;
        puts(text);
        free(text);
        return OK;
    }
    if (r.u.app_list.n == 0)
        printf("no apps\n");
    for (size_t i = 0; i < r.u.app_list.n; i++) {
        const rp_mon_app_t *p = &r.u.app_list.a[i];
        printf("%s %s: %s, %u restart(s), pid %u; memory %u KiB, pids %u, cpu %u%%, storage %u "
               "KiB%s%s\n",
               p->component, p->version, rp_mon_app_state_name(p->state), (unsigned)p->restarts,
               (unsigned)p->pid, (unsigned)p->memory_kb, (unsigned)p->pids,
               (unsigned)p->cpu_percent, (unsigned)p->storage_kb,
               p->missing[0] ? "; not in force: " : "", p->missing);
    }
    return OK;
}

/* events: the security events the monitor recorded (device/monitor/events.h), oldest first:
 * through the monitor when it serves S (the agent's user cannot read S/events/), else the file. */
int cmd_events(const struct args *a)
{
    static rp_event_t ev[RP_EVENTS_MAX];
    uint64_t dropped = 0, next;
    size_t n = 0;
    bool more;
    rp_agent_t agent;

    if (a->output != NULL && strcmp(a->output, "json") != 0 && strcmp(a->output, "text") != 0)
        return cmd_usage("--output must be text or json");
    if (rp_agent_attach_records(&agent, a->state_dir) != RP_OK ||
        rp_report_events(&agent, 0, ev, RP_EVENTS_MAX, &n, &next, &more, &dropped) != RP_OK) {
        rp_log_error("%s: cannot read the security events", a->state_dir);
        return FAIL;
    }
    if (a->output != NULL && strcmp(a->output, "json") == 0) {
        json_t *list = json_array(), *out;
        for (size_t i = 0; i < n; i++)
            json_array_append_new(list, rp_report_event_json(&ev[i]));
        out = json_pack("{s:o, s:I}", "events", list, "dropped", (json_int_t)dropped);
        json_dumpf(out, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(out);
        return OK;
    }
    for (size_t i = 0; i < n; i++)
        rp_report_event_print(&ev[i], stdout);
    if (dropped > 0)
        printf("(%llu older events dropped: the log keeps the newest %d)\n",
               (unsigned long long)dropped, RP_EVENTS_MAX);
    return OK;
}

/* crashes: the crashes the monitor kept, unwound here (crashes.h). */
int cmd_crashes(const struct args *a)
{
    rp_agent_t agent;

    if (a->output != NULL && strcmp(a->output, "json") != 0 && strcmp(a->output, "text") != 0)
        return cmd_usage("--output must be text or json");
    if (rp_agent_attach_records(&agent, a->state_dir) != RP_OK) {
        rp_log_error("%s: cannot read the kept crashes", a->state_dir);
        return FAIL;
    }
    /* libdw reads what an app's author made (its ELF, its CFI): under the agent's own filter,
     * as in `run`, whenever the monitor serves S. */
    if (agent.monitor[0] != '\0' && rp_agent_confine(0) != RP_OK)
        return FAIL;
    return rp_crashes_list(&agent, a->output != NULL && strcmp(a->output, "json") == 0, stdout)
               ? FAIL
               : OK;
}

/* reports: what the report queue holds. */
int cmd_reports(const struct args *a)
{
    rp_reportq_stat_t st;
    json_t *list = NULL, *r;
    uint64_t last;
    rp_agent_t agent;
    size_t i;

    if (a->output != NULL && strcmp(a->output, "json") != 0 && strcmp(a->output, "text") != 0)
        return cmd_usage("--output must be text or json");
    if (cmd_open_agent(a, &agent) != OK)
        return FAIL;
    if (rp_reportq_peek(&agent, RP_REPORTQ_MAX_REPORTS, SIZE_MAX, &list, &last) != RP_OK ||
        rp_reportq_stat(&agent, &st) != RP_OK) {
        rp_log_error("%s: cannot read the report queue", a->state_dir);
        json_decref(list);
        rp_agent_close(&agent);
        return FAIL;
    }
    rp_agent_close(&agent);
    if (a->output != NULL && strcmp(a->output, "json") == 0) {
        json_t *out =
            json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "reports", list, "bytes",
                      (json_int_t)st.bytes, "dropped", (json_int_t)st.dropped, "refused",
                      (json_int_t)st.refused, "next_seq", (json_int_t)st.next_seq, "retry_at",
                      (json_int_t)st.retry_at, "backoff", (json_int_t)st.backoff);
        json_dumpf(out, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(out);
        return OK;
    }
    json_array_foreach(list, i, r)
    {
        char when[32];
        time_t t = (time_t)json_integer_value(json_object_get(r, "at"));
        struct tm tm;
        const char *code = json_string_value(json_object_get(r, "code")),
                   *comp = json_string_value(json_object_get(r, "component"));
        if (gmtime_r(&t, &tm) == NULL ||
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
            snprintf(when, sizeof(when), "%lld", (long long)t);
        printf("%llu %s %-18s %-16s %-16s %s\n",
               (unsigned long long)json_integer_value(json_object_get(r, "seq")), when,
               json_string_value(json_object_get(r, "kind")),
               code != NULL && code[0] != '\0' ? code : "-",
               comp != NULL && comp[0] != '\0' ? comp : "-",
               json_string_value(json_object_get(r, "reason")) ?: "");
    }
    printf("%zu report(s) queued (%zu bytes); %llu dropped over the queue's life, %llu refused by "
           "the service\n",
           json_array_size(list), st.bytes, (unsigned long long)st.dropped,
           (unsigned long long)st.refused);
    if (st.retry_at > (int64_t)time(NULL))
        printf("next upload in %lld s at the earliest\n",
               (long long)(st.retry_at - (int64_t)time(NULL)));
    json_decref(list);
    return OK;
}

int cmd_report(const struct args *a)
{
    char server[1024], ca[PATH_MAX];
    rp_reportq_upload_t up;
    rp_agent_t agent;
    rp_err_t err;
    int rc;

    rc = cmd_open_online(a, &agent, server, sizeof(server), ca, sizeof(ca));
    if (rc != OK)
        return rc;
    rp_crashes_report_new(&agent);
    rp_report_events_new(&agent);
    err = rp_reportq_upload(&agent, server, ca, &up);
    rp_agent_close(&agent);
    printf("reports: %zu sent in %zu batch(es) (%zu stored, %zu known already, %zu refused), "
           "%zu dropped, %zu left\n",
           up.sent, up.batches, up.stored, up.duplicates, up.refused, up.dropped, up.left);
    if (err != RP_OK) {
        if (up.waiting)
            printf("reports: not sent: %s\n", up.detail);
        else
            printf("reports: stopped: %s%s\n", up.detail,
                   up.retry_at > (int64_t)time(NULL) ? "; the next upload waits" : "");
        if (up.retry_at > (int64_t)time(NULL))
            printf("reports: next upload in %lld s at the earliest\n",
                   (long long)(up.retry_at - (int64_t)time(NULL)));
        return FAIL;
    }
    return OK;
}
