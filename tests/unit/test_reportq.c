/*
 * The device's report queue (device/agent/reportq.c): the contract's bounds, the queue's bounds
 * (the oldest dropped and counted), numbers never given twice (after a restart, a corrupt state
 * file, the directory removed), a link refused, and a power cut at every step of rp_reportq_add
 * (the failpoints: this program runs itself as the child that is cut) leaving the report either
 * fully queued or not at all, the drop count matching what is gone. Also the agent's rules for
 * its clock and certificate events, and its renewal plan's bounds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "rampart/failpoint.h"
#include "rampart/file.h"
#include "rampart/text.h"
#include "report.h"
#include "reportq.h"
#include "settings.h"

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

static void agent_in(rp_agent_t *a, const char *dir)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->state_dir, sizeof(a->state_dir), "%s", dir);
}

static int make_dir(void **state)
{
    /* On a tmpfs where there is one: the queue's fsyncs (a thousand here) cost nothing there, and
     * the cuts below are the process's, which fsync does not change. */
    char *dir = strdup(access("/dev/shm", W_OK) == 0 ? "/dev/shm/rp-reportq-XXXXXX"
                                                     : "/tmp/rp-reportq-XXXXXX"),
         agent[256];
    assert_non_null(mkdtemp(dir));
    snprintf(agent, sizeof(agent), "%s/agent", dir);
    assert_int_equal(mkdir(agent, 0700), 0);
    *state = dir;
    fake_now = 1000;
    rp_reportq_set_clock(fake_clock);
    return 0;
}

static int remove_dir(void **state)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", (char *)*state);
    assert_int_equal(system(cmd), 0);
    free(*state);
    rp_reportq_set_clock(NULL);
    return 0;
}

static json_t *event(const char *reason)
{
    json_t *r = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "at", (json_int_t)1764300000, "kind",
                          "attestation_failed", "component", "", "version", "", "reason", reason,
                          "code", "blocked");
    assert_non_null(r);
    return r;
}

static void add(const rp_agent_t *a, const char *reason)
{
    json_t *r = event(reason);
    assert_int_equal(rp_reportq_add(a, r), RP_OK);
    assert_null(json_object_get(r, "seq")); /* the caller's object is left as it was */
    json_decref(r);
}

/* The queue's reports, oldest first. OUT: seqs and reasons (up to max). */
static size_t queued(const rp_agent_t *a, uint64_t *seqs, char reasons[][64], size_t max)
{
    json_t *list, *r;
    uint64_t last;
    size_t i;

    assert_int_equal(rp_reportq_peek(a, 1000, SIZE_MAX, &list, &last), RP_OK);
    json_array_foreach(list, i, r)
    {
        if (i >= max)
            break;
        seqs[i] = (uint64_t)json_integer_value(json_object_get(r, "seq"));
        snprintf(reasons[i], 64, "%s", json_string_value(json_object_get(r, "reason")));
    }
    i = json_array_size(list);
    json_decref(list);
    return i;
}

/* ---- the contract ---- */

static void check_refuses(const char *json, const char *why_has)
{
    char why[160] = "";
    json_t *r = json_loads(json, 0, NULL);
    assert_non_null(r);
    assert_int_equal(rp_report_check(r, false, why, sizeof(why)), RP_ERR_MALFORMED);
    if (strstr(why, why_has) == NULL)
        fail_msg("%s: '%s' lacks '%s'", json, why, why_has);
    json_decref(r);
}

static void contract_bounds(void **state)
{
    char why[160], big[300];
    json_t *r = event("fine");
    rp_agent_t a;

    agent_in(&a, *state);
    assert_int_equal(rp_report_check(r, false, why, sizeof(why)), RP_OK);
    json_decref(r);
    r = json_loads("{\"at\":1,\"kind\":\"crash\",\"crash\":{\"signal\":11,\"signal_name\":"
                   "\"SIGSEGV\",\"address\":\"0x10\",\"frames\":[{\"build_id\":\"ab12\","
                   "\"module\":\"app\",\"offset\":\"0x1f\"}],\"stderr\":\"x\"}}",
                   0, NULL);
    assert_int_equal(rp_report_check(r, false, why, sizeof(why)), RP_OK);
    json_decref(r);
    check_refuses("[]", "JSON object");
    check_refuses("{\"at\":1,\"kind\":\"nonsense\"}", "kind");
    check_refuses("{\"at\":-1,\"kind\":\"exit\"}", "at");
    check_refuses("{\"at\":1,\"kind\":\"exit\",\"seq\":4}", "seq is the queue's");
    check_refuses("{\"at\":1,\"kind\":\"exit\",\"extra\":4}", "unknown key");
    check_refuses("{\"at\":1,\"kind\":\"exit\",\"code\":\"Bad-Code\"}", "code");
    check_refuses("{\"at\":1,\"kind\":\"exit\",\"component\":\"../etc\"}", "component");
    check_refuses("{\"at\":1,\"kind\":\"exit\",\"crash\":{\"signal\":11}}", "kind crash only");
    check_refuses("{\"at\":1,\"kind\":\"crash\"}", "lacks its crash");
    check_refuses("{\"at\":1,\"kind\":\"crash\",\"crash\":{\"signal\":65}}", "signal");
    check_refuses("{\"at\":1,\"kind\":\"crash\",\"crash\":{\"signal\":6,\"address\":\"0x\"}}",
                  "address");
    check_refuses(
        "{\"at\":1,\"kind\":\"crash\",\"crash\":{\"signal\":6,\"frames\":[{\"offset\":1}]}}",
        "offset");
    memset(big, 'a', 256);
    big[256] = '\0';
    r = event(big);
    assert_int_equal(rp_report_check(r, false, why, sizeof(why)), RP_ERR_MALFORMED);
    assert_non_null(strstr(why, "reason"));
    /* Refused by the queue too, which then holds nothing. */
    assert_int_equal(rp_reportq_add(&a, r), RP_ERR_MALFORMED);
    json_decref(r);
    {
        rp_reportq_stat_t st;
        assert_int_equal(rp_reportq_stat(&a, &st), RP_OK);
        assert_int_equal(st.reports, 0);
    }
    /* No control character in a reason: the service's rule (rampart/text.h), held here too, so
     * that the queue never keeps a report the service would refuse. */
    {
        static const char *const bad[] = {"esc \x1b[2J", "new\nline",   "del \x7f",
                                          "c1 \xc2\x9b", "c1 \xc2\x80", "tab\t"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            r = event(bad[i]);
            assert_int_equal(rp_report_check(r, false, why, sizeof(why)), RP_ERR_MALFORMED);
            assert_non_null(strstr(why, "control"));
            assert_int_equal(rp_reportq_add(&a, r), RP_ERR_MALFORMED);
            json_decref(r);
        }
        /* Printable UTF-8 beside them stays: U+00A0 (\xc2\xa0), U+00E9, U+20AC. */
        r = event("ok \xc2\xa0 \xc3\xa9 \xe2\x82\xac");
        assert_int_equal(rp_report_check(r, false, why, sizeof(why)), RP_OK);
        json_decref(r);
        assert_true(rp_text_no_controls("plain"));
        assert_int_equal(rp_text_control_at("\xc2\x85"), 2);
        assert_int_equal(rp_text_control_at("\x7f"), 1);
        assert_int_equal(rp_text_control_at(""), 0);
    }
    /* 16 KiB as JSON at most: a crash's stderr of 4096 escaped bytes (\u0001: 6 each) breaks it. */
    {
        char *err = malloc(4097);
        memset(err, 1, 4096);
        err[4096] = '\0';
        r = json_pack("{s:i, s:s, s:{s:i, s:s}}", "at", 1, "kind", "crash", "crash", "signal", 11,
                      "stderr", err);
        assert_int_equal(rp_report_check(r, false, why, sizeof(why)), RP_ERR_MALFORMED);
        assert_non_null(strstr(why, "at most 16384"));
        json_decref(r);
        free(err);
    }
}

static void kinds_and_codes(void **state)
{
    (void)state;
    assert_string_equal(rp_report_kind_name(RP_REPORT_CRASH), "crash");
    assert_string_equal(rp_report_kind_name(RP_REPORT_CLOCK_JUMP), "clock_jump");
    assert_string_equal(rp_report_kind_name(RP_REPORT_KIND_END), "unknown");
    for (int k = 0; k < RP_REPORT_KIND_END; k++)
        assert_true(rp_report_code_valid(rp_report_kind_name((rp_report_kind_t)k)));
    assert_string_equal(rp_report_code_of(RP_ERR_WRONG_KEY), "unknown_key");
    assert_string_equal(rp_report_code_of(RP_ERR_BAD_SIGNATURE), "bad_signature");
    assert_string_equal(rp_report_code_of(RP_ERR_ROLLBACK), "rollback");
    assert_string_equal(rp_report_code_of_detail(rp_strerror(RP_ERR_WRONG_KEY)), "unknown_key");
    assert_string_equal(rp_report_code_of_detail("version 1.0.0 is older than the running 2.0.0 "
                                                 "(rollback refused)"),
                        "rollback");
    assert_true(rp_report_code_valid(""));
    assert_false(rp_report_code_valid("a_very_long_code_of_more_than_32_b"));
    /* The certificate: less than a fifth of its life left. */
    assert_false(rp_report_cert_expiring(1000, 2000, 1700));
    assert_true(rp_report_cert_expiring(1000, 2000, 1801));
    assert_false(rp_report_cert_expiring(0, 0, 1801)); /* none */
    /* The clock: more than 5 minutes against the monotonic clock, either way. */
    assert_int_equal(rp_report_clock_jump(60, 60), 0);
    assert_int_equal(rp_report_clock_jump(360, 60), 0);
    assert_int_equal(rp_report_clock_jump(361 + 60, 60), 361);
    assert_int_equal(rp_report_clock_jump(-3600, 10), -3610);
}

/* ---- the queue ---- */

/* The agent's own events quote text from elsewhere (the service's refusals): control characters
 * become spaces, since the service refuses a reason holding one. */
static void event_reason_no_controls(void **state)
{
    rp_agent_t a;
    uint64_t seqs[2];
    char reasons[2][64];

    agent_in(&a, *state);
    rp_reportq_event(&a, RP_REPORT_ATTESTATION_FAILED, NULL, "blocked",
                     "said \x1b[2J\nx\x7fy\xc2\x9bz");
    assert_int_equal(queued(&a, seqs, reasons, 2), 1);
    assert_string_equal(reasons[0], "said  [2J x y  z");
}

/* The sources' cursors move with their reports (reportq.h), and alone when told. */
static void cursors(void **state)
{
    rp_agent_t a;
    uint64_t next, seqs[4];
    char reasons[4][64];
    bool known;
    json_t *r = event("from a crash");

    agent_in(&a, *state);
    assert_int_equal(rp_reportq_cursor(&a, RP_REPORTQ_CRASHES, &next, &known), RP_OK);
    assert_false(known);
    assert_int_equal(rp_reportq_add_from(&a, r, RP_REPORTQ_CRASHES, 7), RP_OK);
    assert_int_equal(rp_reportq_cursor(&a, RP_REPORTQ_CRASHES, &next, &known), RP_OK);
    assert_true(known);
    assert_int_equal(next, 8);
    assert_int_equal(rp_reportq_cursor(&a, RP_REPORTQ_EVENTS, &next, &known), RP_OK);
    assert_false(known); /* each source its own */
    /* A report the queue refuses moves nothing. */
    json_object_set_new(r, "reason", json_string("bad \x1b"));
    assert_int_equal(rp_reportq_add_from(&a, r, RP_REPORTQ_CRASHES, 8), RP_ERR_MALFORMED);
    assert_int_equal(rp_reportq_cursor(&a, RP_REPORTQ_CRASHES, &next, &known), RP_OK);
    assert_int_equal(next, 8);
    /* Passed over by its caller; the events' cursor set alone. */
    assert_int_equal(rp_reportq_cursor_set(&a, RP_REPORTQ_CRASHES, 9), RP_OK);
    assert_int_equal(rp_reportq_cursor_set(&a, RP_REPORTQ_EVENTS, 30), RP_OK);
    assert_int_equal(rp_reportq_cursor(&a, RP_REPORTQ_CRASHES, &next, &known), RP_OK);
    assert_int_equal(next, 9);
    assert_int_equal(rp_reportq_cursor(&a, RP_REPORTQ_EVENTS, &next, &known), RP_OK);
    assert_int_equal(next, 30);
    /* They survive the upload removing the report (the floor passes it). */
    {
        size_t removed;
        json_t *list;
        uint64_t last;
        assert_int_equal(rp_reportq_peek(&a, 64, SIZE_MAX, &list, &last), RP_OK);
        json_decref(list);
        assert_int_equal(rp_reportq_remove_through(&a, last, false, &removed), RP_OK);
        assert_int_equal(removed, 1);
    }
    assert_int_equal(rp_reportq_cursor(&a, RP_REPORTQ_CRASHES, &next, &known), RP_OK);
    assert_int_equal(next, 9);
    assert_int_equal(queued(&a, seqs, reasons, 4), 0);
    json_decref(r);
}

/* An app's abnormal ends, as the monitor records them (events.h), become reports (report.h):
 * kind, component, version from the reason, the code from what it says; the security events do
 * not (the status report carries them: the service counts each once). */
static void events_become_reports(void **state)
{
    static const struct {
        rp_event_kind_t kind;
        const char *reason, *rkind, *version, *code, *text;
    } cases[] = {
        {RP_EVENT_EXIT,         "1.2.0+0: exited with status 3",                     "exit",         "1.2.0+0", "nonzero_status",
         "app 1.2.0+0: exited with status 3"                                                                                                                                             },
        {RP_EVENT_EXIT,         "1.2.0+0: killed by signal 9",                       "exit",         "1.2.0+0", "signal",
         "app 1.2.0+0: killed by signal 9"                                                                                                                                               },
        {RP_EVENT_OOM,          "killed at its memory limit (1 process)",            "oom",          "",        "memory_limit",
         "app killed at its memory limit (1 process)"                                                                                                                                    },
 /* an oom event names its version now (an older monitor's, above, named none) */
        {RP_EVENT_OOM,          "1.2.0+0: killed at its memory limit (2 processes)", "oom",          "1.2.0+0",
         "memory_limit",                                                                                                          "app 1.2.0+0: killed at its memory limit (2 processes)"},
        {RP_EVENT_HEALTH,       "1.2.0+0: missed its watchdog (2 s)",                "health",       "1.2.0+0", "watchdog",
         "app 1.2.0+0: missed its watchdog (2 s)"                                                                                                                                        },
        {RP_EVENT_RESTART_LOOP, "1.2.0+0: 5 exits within 600 s",                     "restart_loop", "1.2.0+0",
         "too_many_exits",                                                                                                        "app 1.2.0+0: 5 exits within 600 s"                    },
        {RP_EVENT_HEALTH,       "2.0.0+0: exited with status 7 at start",            "health",       "2.0.0+0",
         "trial_failed",                                                                                                          "app 2.0.0+0: exited with status 7 at start"           },
    };
    char why[160];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rp_event_t e = {.seq = i, .at = 1764300000, .kind = cases[i].kind};
        json_t *r;
        snprintf(e.app, sizeof(e.app), "app");
        snprintf(e.reason, sizeof(e.reason), "%s", cases[i].reason);
        assert_int_not_equal(rp_report_kind_of_event(e.kind), RP_REPORT_KIND_END);
        r = rp_report_of_event(&e);
        assert_non_null(r);
        assert_int_equal(rp_report_check(r, false, why, sizeof(why)), RP_OK);
        assert_string_equal(json_string_value(json_object_get(r, "kind")), cases[i].rkind);
        assert_string_equal(json_string_value(json_object_get(r, "component")), "app");
        assert_string_equal(json_string_value(json_object_get(r, "version")), cases[i].version);
        assert_string_equal(json_string_value(json_object_get(r, "code")), cases[i].code);
        assert_string_equal(json_string_value(json_object_get(r, "reason")), cases[i].text);
        assert_int_equal(json_integer_value(json_object_get(r, "at")), 1764300000);
        json_decref(r);
    }
    for (int k = 1; k < RP_EVENT_KIND_END; k++) {
        bool report = k == RP_EVENT_EXIT || k == RP_EVENT_OOM || k == RP_EVENT_RESTART_LOOP ||
                      k == RP_EVENT_HEALTH;
        rp_event_t e = {.kind = (rp_event_kind_t)k};
        assert_int_equal(rp_report_kind_of_event(e.kind) != RP_REPORT_KIND_END, report);
        if (!report)
            assert_null(rp_report_of_event(&e));
    }
}

static void add_peek_remove(void **state)
{
    rp_agent_t a;
    uint64_t seqs[8], last;
    char reasons[8][64];
    size_t removed;
    json_t *list;

    agent_in(&a, *state);
    add(&a, "one");
    add(&a, "two");
    add(&a, "three");
    assert_int_equal(queued(&a, seqs, reasons, 8), 3);
    assert_string_equal(reasons[0], "one");
    assert_string_equal(reasons[2], "three");
    assert_true(seqs[0] < seqs[1] && seqs[1] < seqs[2]);
    /* A batch of two, then removed through the second. */
    assert_int_equal(rp_reportq_peek(&a, 2, SIZE_MAX, &list, &last), RP_OK);
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(last, seqs[1]);
    json_decref(list);
    assert_int_equal(rp_reportq_remove_through(&a, last, false, &removed), RP_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(queued(&a, seqs, reasons, 8), 1);
    assert_string_equal(reasons[0], "three");
    {
        rp_reportq_stat_t st;
        assert_int_equal(rp_reportq_stat(&a, &st), RP_OK);
        assert_int_equal(st.dropped, 0); /* acknowledged is not dropped */
    }
    /* A byte bound keeps at least one report. */
    assert_int_equal(rp_reportq_peek(&a, 64, 1, &list, &last), RP_OK);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
}

static void full_drops_oldest_counted(void **state)
{
    rp_agent_t a;
    static uint64_t seqs[RP_REPORTQ_MAX_REPORTS + 20];
    static char reasons[RP_REPORTQ_MAX_REPORTS + 20][64];
    char reason[32];
    rp_reportq_stat_t st;

    agent_in(&a, *state);
    for (int i = 0; i < RP_REPORTQ_MAX_REPORTS + 10; i++) {
        snprintf(reason, sizeof(reason), "r%d", i);
        add(&a, reason);
    }
    assert_int_equal(queued(&a, seqs, reasons, RP_REPORTQ_MAX_REPORTS + 20),
                     RP_REPORTQ_MAX_REPORTS);
    assert_string_equal(reasons[0], "r10"); /* the oldest went */
    assert_int_equal(rp_reportq_stat(&a, &st), RP_OK);
    assert_int_equal(st.dropped, 10);
    assert_int_equal(st.reports, RP_REPORTQ_MAX_REPORTS);
}

static void bytes_bound(void **state)
{
    rp_agent_t a;
    rp_reportq_stat_t st;
    char *err = malloc(4091);
    int n = 0;

    agent_in(&a, *state);
    memset(err, 'x', 4090);
    err[4090] = '\0';
    /* About 4.1 KiB each: 1 MiB holds 252 of them, so the byte bound bites first. */
    for (n = 0; n < 300; n++) {
        json_t *r = json_pack("{s:i, s:s, s:{s:i, s:s}}", "at", n, "kind", "crash", "crash",
                              "signal", 11, "stderr", err);
        assert_int_equal(rp_reportq_add(&a, r), RP_OK);
        json_decref(r);
    }
    free(err);
    assert_int_equal(rp_reportq_stat(&a, &st), RP_OK);
    assert_true(st.bytes <= RP_REPORTQ_MAX_BYTES);
    assert_true(st.bytes > RP_REPORTQ_MAX_BYTES - 5000);
    assert_int_equal(st.dropped, 300 - st.reports);
    assert_true(st.reports < RP_REPORTQ_MAX_REPORTS);
}

static void seq_never_reused(void **state)
{
    rp_agent_t a;
    uint64_t seqs[8], top;
    char reasons[8][64], path[512], cmd[600];
    size_t removed;
    FILE *f;

    agent_in(&a, *state);
    add(&a, "a");
    add(&a, "b");
    assert_int_equal(queued(&a, seqs, reasons, 8), 2);
    top = seqs[1];
    /* All acknowledged: the queue is empty, its counter is not. (The clock stands still here:
     * only the counter can keep the numbers going.) */
    assert_int_equal(rp_reportq_remove_through(&a, top, false, &removed), RP_OK);
    add(&a, "c"); /* a "restart": nothing is kept in memory between calls */
    assert_int_equal(queued(&a, seqs, reasons, 8), 1);
    assert_true(seqs[0] > top);
    top = seqs[0];
    /* A corrupt state file: the numbers go on above every report file left. */
    snprintf(path, sizeof(path), "%s/agent/reports/state.json", (char *)*state);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{not json", f);
    fclose(f);
    add(&a, "d");
    assert_int_equal(queued(&a, seqs, reasons, 8), 2);
    assert_true(seqs[1] > top);
    top = seqs[1];
    /* The directory removed: a queue made anew numbers from the wall clock (in microseconds),
     * past every number given while the clock moved on. */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/agent/reports'", (char *)*state);
    assert_int_equal(system(cmd), 0);
    fake_now = top + 1;
    add(&a, "e");
    assert_int_equal(queued(&a, seqs, reasons, 8), 1);
    assert_true(seqs[0] > top);
}

static void link_refused(void **state)
{
    rp_agent_t a;
    char path[512], target[512];
    json_t *r = event("x");

    agent_in(&a, *state);
    snprintf(target, sizeof(target), "%s/elsewhere", (char *)*state);
    snprintf(path, sizeof(path), "%s/agent/reports", (char *)*state);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink(target, path), 0);
    assert_int_not_equal(rp_reportq_add(&a, r), RP_OK);
    /* Nothing was written through it. */
    {
        DIR *d = opendir(target);
        struct dirent *e;
        int n = 0;
        while ((e = readdir(d)) != NULL)
            n += e->d_name[0] != '.';
        closedir(d);
        assert_int_equal(n, 0);
    }
    /* A directory open to others is refused too. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0777), 0);
    assert_int_equal(chmod(path, 0777), 0);
    assert_int_not_equal(rp_reportq_add(&a, r), RP_OK);
    json_decref(r);
}

/* ---- a power cut at every step of rp_reportq_add ---- */

static const char *self;
#define CUT_ID 41 /* the crash the cut child queues a report of */

/* Run this program as the child that queues one report in dir ("cut" as its reason), with env
 * (NAME=VALUE) set. Its exit status. */
static int child_add(const char *dir, const char *env)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        char name[64], *eq;
        snprintf(name, sizeof(name), "%s", env);
        eq = strchr(name, '=');
        *eq = '\0';
        setenv(name, eq + 1, 1);
        execl(self, self, "--add", dir, (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Every report file in dir/agent/reports/ parses as a whole report: none is torn. */
static void no_torn_file(const char *dir)
{
    char path[700], file[1000], why[160];
    DIR *d;
    struct dirent *e;

    snprintf(path, sizeof(path), "%s/agent/reports", dir);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        json_t *r;
        if (strlen(e->d_name) != 25 || strcmp(e->d_name + 20, ".json") != 0)
            continue;
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        r = json_load_file(file, 0, NULL);
        if (r == NULL || rp_report_check(r, true, why, sizeof(why)) != RP_OK)
            fail_msg("%s is torn", file);
        json_decref(r);
    }
    closedir(d);
}

/* A queue with n reports, then a cut at each step of adding one more: before the cut's step,
 * the queue is as it was; after, it holds the new report and, if it had to drop, the drop is
 * counted exactly when the oldest is gone. Then the next report still goes in, numbered above. */
static void walk(const char *base, int n)
{
    char trace[600], dir[600], cmd[1400], env[700], line[128];
    int steps = 0;
    FILE *f;
    rp_agent_t a;
    char reason[32];
    rp_reportq_stat_t before, st;
    static uint64_t seqs[RP_REPORTQ_MAX_REPORTS + 4];
    static char reasons[RP_REPORTQ_MAX_REPORTS + 4][64];

    snprintf(dir, sizeof(dir), "%s/base", base);
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s/agent' && chmod 700 '%s/agent'", dir, dir);
    assert_int_equal(system(cmd), 0);
    agent_in(&a, dir);
    rp_reportq_set_clock(NULL);
    for (int i = 0; i < n; i++) {
        snprintf(reason, sizeof(reason), "old %d", i);
        add(&a, reason);
    }
    /* The crash source's cursor is at the crash the child reports. */
    assert_int_equal(rp_reportq_cursor_set(&a, RP_REPORTQ_CRASHES, CUT_ID), RP_OK);
    assert_int_equal(rp_reportq_stat(&a, &before), RP_OK);
    /* How many steps: the failpoints one add passes. */
    snprintf(trace, sizeof(trace), "%s/trace", base);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/probe' && cp -a '%s' '%s/probe'", base, dir, base);
    assert_int_equal(system(cmd), 0);
    snprintf(env, sizeof(env), "RAMPART_FAILPOINT_TRACE=%s", trace);
    snprintf(cmd, sizeof(cmd), "%s/probe", base);
    assert_int_equal(child_add(cmd, env), 0);
    f = fopen(trace, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL)
        steps++;
    fclose(f);
    assert_true(steps >= 4); /* the state and the report, each written and synced */
    for (int k = 1; k <= steps; k++) {
        char cut[600];
        bool has_new = false;
        size_t m;
        snprintf(cut, sizeof(cut), "%s/cut%d", base, k);
        snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", dir, cut);
        assert_int_equal(system(cmd), 0);
        snprintf(env, sizeof(env), "RAMPART_FAILPOINT=%d", k);
        assert_int_equal(child_add(cut, env), RP_FAILPOINT_EXIT);
        no_torn_file(cut);
        agent_in(&a, cut);
        m = queued(&a, seqs, reasons, RP_REPORTQ_MAX_REPORTS + 4);
        assert_int_equal(rp_reportq_stat(&a, &st), RP_OK);
        for (size_t i = 0; i < m; i++)
            has_new |= strcmp(reasons[i], "cut") == 0;
        if (has_new) { /* queued whole, and room made for it, counted */
            assert_string_equal(reasons[m - 1], "cut");
            assert_int_equal(m + st.dropped - before.dropped, before.reports + 1);
        } else { /* not queued; a drop made before the cut is counted exactly */
            assert_int_equal(m + st.dropped - before.dropped, before.reports);
        }
        assert_true(m <= RP_REPORTQ_MAX_REPORTS);
        /* Exactly once: the crash cursor is past the crash if and only if its report is queued
         * (a cut between the two would send it again, or never). */
        {
            uint64_t next;
            bool known;
            assert_int_equal(rp_reportq_cursor(&a, RP_REPORTQ_CRASHES, &next, &known), RP_OK);
            assert_true(known);
            if (has_new != (next == CUT_ID + 1))
                fail_msg("cut at step %d of %d: the report is %squeued, the cursor at %llu", k,
                         steps, has_new ? "" : "not ", (unsigned long long)next);
        }
        /* The next report goes in, numbered above everything. */
        add(&a, "after");
        m = queued(&a, seqs, reasons, RP_REPORTQ_MAX_REPORTS + 4);
        assert_string_equal(reasons[m - 1], "after");
        for (size_t i = 0; i + 1 < m; i++)
            assert_true(seqs[i] < seqs[i + 1]);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cut);
        assert_int_equal(system(cmd), 0);
    }
}

static void power_cut_with_room(void **state)
{
    walk(*state, 3);
}

static void power_cut_when_full(void **state)
{
    walk(*state, RP_REPORTQ_MAX_REPORTS);
}

/* The device group's settings (settings.c): the service's object parsed strictly (a boolean,
 * unknown keys ignored); kept across runs; none kept: on; a corrupt file: off. */
static void settings_parse_and_keep(void **state)
{
    rp_settings_t st = RP_SETTINGS_DEFAULT;
    rp_agent_t a;
    char path[512];
    json_t *o;
    FILE *f;

    agent_in(&a, *state);
    assert_true(rp_settings_load(&a).crash_capture);
    o = json_pack("{s:b, s:s}", "crash_capture", 0, "later", "ignored");
    assert_int_equal(rp_settings_parse(o, &st), RP_OK);
    assert_false(st.crash_capture);
    json_decref(o);
    /* Refused, *out untouched: not an object, no key, not a boolean. */
    st.crash_capture = true;
    o = json_pack("[b]", 0);
    assert_int_equal(rp_settings_parse(o, &st), RP_ERR_MALFORMED);
    json_decref(o);
    o = json_object();
    assert_int_equal(rp_settings_parse(o, &st), RP_ERR_MALFORMED);
    json_decref(o);
    o = json_pack("{s:i}", "crash_capture", 0);
    assert_int_equal(rp_settings_parse(o, &st), RP_ERR_MALFORMED);
    assert_int_equal(rp_settings_learn(&a, o), RP_ERR_MALFORMED);
    json_decref(o);
    o = json_pack("{s:s}", "crash_capture", "off");
    assert_int_equal(rp_settings_parse(o, &st), RP_ERR_MALFORMED);
    json_decref(o);
    assert_int_equal(rp_settings_parse(NULL, &st), RP_ERR_MALFORMED);
    assert_true(st.crash_capture);
    assert_true(rp_settings_load(&a).crash_capture); /* nothing kept by a refusal */

    /* Learned (no monitor serves this directory): kept, read back by another run. */
    o = json_pack("{s:b}", "crash_capture", 0);
    assert_int_equal(rp_settings_learn(&a, o), RP_OK);
    json_decref(o);
    assert_false(rp_settings_load(&a).crash_capture);
    o = json_pack("{s:b}", "crash_capture", 1);
    assert_int_equal(rp_settings_learn(&a, o), RP_OK);
    json_decref(o);
    assert_true(rp_settings_load(&a).crash_capture);
    /* A file that does not parse: off until the service says again. */
    snprintf(path, sizeof(path), "%s/agent/settings.json", (char *)*state);
    assert_non_null(f = fopen(path, "w"));
    fputs("{\"crash_capture\": tru", f);
    fclose(f);
    assert_false(rp_settings_load(&a).crash_capture);
}

/* The renewal is planned on the service's expires_in within [a minute, a day and a half]: a
 * service's bug (1 s, 2^62, INT64_MAX) neither overflows the planning nor makes the agent attest
 * every second; a life longer than the certificate's own is not believed. */
/* The service CAs an answer publishes (service_ca), as the agent checks them before it keeps and
 * trusts them: one to four certificates and nothing else (the fuzz target's seeds). */
static void service_ca_bundle_checked(void **state)
{
    static const struct {
        const char *seed;
        bool valid;
    } cases[] = {
        {"one.pem",           true },
        {"two.pem",           true },
        {"five.pem",          false},
        {"with-key.pem",      false},
        {"key.pem",           false},
        {"pubkey.pem",        false},
        {"broken-second.pem", false},
        {"encrypted.pem",     false}, /* (a pass phrase: never asked for) */
    };
    char path[4096];
    uint8_t *pem;
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", RP_SERVICE_CA_SEEDS, cases[i].seed);
        assert_int_equal(rp_read_file(path, 1 << 20, &pem, &len), RP_OK);
        if (rp_agent_service_ca_valid((const char *)pem, len) != cases[i].valid)
            fail_msg("%s: %s, not %s", cases[i].seed, cases[i].valid ? "refused" : "accepted",
                     cases[i].valid ? "accepted" : "refused");
        free(pem);
    }
    assert_false(rp_agent_service_ca_valid("", 0));
}

/* DIR/NAME: a new self-signed certificate (CN NAME, a P-256 key), made born days ago (its
 * notBefore) and valid for days days from then. */
static void ca_file_born(const char *dir, const char *name, int born, int days)
{
    char path[4096];
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_NAME *subject;
    FILE *f;

    assert_non_null(key);
    assert_non_null(cert);
    assert_int_equal(X509_set_version(cert, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)time(NULL) + born), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(cert), -(long)born * 86400));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(cert), (long)(days - born) * 86400));
    assert_non_null(subject = X509_get_subject_name(cert));
    assert_int_equal(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                                (const unsigned char *)name, -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(cert, subject), 1);
    assert_int_equal(X509_set_pubkey(cert, key), 1);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "w"));
    assert_int_equal(PEM_write_X509(f, cert), 1);
    assert_int_equal(fclose(f), 0);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* DIR/NAME: a new self-signed certificate made now, valid for days days. */
static void ca_file(const char *dir, const char *name, int days)
{
    ca_file_born(dir, name, 0, days);
}

/* DIR/OUT: the files named (NULL-ended) one after the other. */
static void cat_files(const char *dir, const char *out, ...)
{
    char cmd[2048];
    size_t used = 0;
    va_list ap;

    va_start(ap, out);
    used += (size_t)snprintf(cmd, sizeof(cmd), "cd '%s' && cat", dir);
    for (const char *f; (f = va_arg(ap, const char *)) != NULL;)
        used += (size_t)snprintf(cmd + used, sizeof(cmd) - used, " %s", f);
    va_end(ap);
    snprintf(cmd + used, sizeof(cmd) - used, " > %s", out);
    assert_int_equal(system(cmd), 0);
}

/* DIR/NAME's text (malloc'd). */
static char *text_of(const char *dir, const char *name)
{
    char path[4096];
    uint8_t *data;
    size_t len;
    char *t;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(rp_read_file(path, 1 << 20, &data, &len), RP_OK);
    assert_non_null(t = strndup((const char *)data, len));
    free(data);
    return t;
}

/* How many times DIR/NAME holds the certificate in DIR/CERT. */
static int holds(const char *dir, const char *name, const char *cert)
{
    char *in = text_of(dir, name), *c = text_of(dir, cert);
    int n = 0;

    for (char *p = in; (p = strstr(p, c)) != NULL; p++)
        n++;
    free(in);
    free(c);
    return n;
}

/* What the agent keeps of the service CAs published (service_ca): the given file first, then the
 * union of what was kept and what is published, ended ones dropped, at most four, so that an
 * answer from a replica that lacks the successor does not erase it (review r13 M3). */
static void service_ca_kept_union(void **state)
{
    const char *dir = *state;
    char given[4096], pub[8], trust[4200], kept[4200];
    int64_t now = (int64_t)time(NULL);
    rp_agent_t a;

    agent_in(&a, dir);
    ca_file_born(dir, "A", 10, 3650); /* the given one, and the current one */
    ca_file_born(dir, "S", 1, 100);   /* the successor, newer (ending first here: the drop below) */
    for (int i = 1; i <= 4; i++) {
        snprintf(pub, sizeof(pub), "P%d", i);
        ca_file(dir, pub, 3650);
    }
    snprintf(given, sizeof(given), "%s/A", dir);
    snprintf(kept, sizeof(kept), "%s/agent/service-ca.pem", dir);
    cat_files(dir, "AS", "A", "S", NULL);
    cat_files(dir, "P1234", "P1", "P2", "P3", "P4", NULL);
    char *a_pem = text_of(dir, "A"), *as = text_of(dir, "AS"), *p1234 = text_of(dir, "P1234");
    /* a replica with the successor, then one without it: kept */
    rp_agent_service_ca_keep(&a, given, as, now);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "A"), 2);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "S"), 1);
    rp_agent_service_ca_keep(&a, given, a_pem, now);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "A"), 2);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "S"), 1);
    rp_agent_service_ca(&a, given, trust, sizeof(trust));
    assert_string_equal(trust, kept);
    /* the given file first, whole */
    char *k = text_of(dir, "agent/service-ca.pem");
    assert_int_equal(strncmp(k, a_pem, strlen(a_pem)), 0);
    assert_int_equal(k[strlen(a_pem)], '\n');
    free(k);
    /* once ended, dropped */
    rp_agent_service_ca_keep(&a, given, a_pem, now + 200 * 86400);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "S"), 0);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "A"), 2);
    /* at most four: what is published stays, what was kept alone goes first */
    rp_agent_service_ca_keep(&a, given, as, now);
    rp_agent_service_ca_keep(&a, given, p1234, now);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "A"), 1); /* the given one */
    assert_int_equal(holds(dir, "agent/service-ca.pem", "S"), 0);
    for (int i = 1; i <= 4; i++) {
        snprintf(pub, sizeof(pub), "P%d", i);
        assert_int_equal(holds(dir, "agent/service-ca.pem", pub), 1);
    }
    rp_agent_service_ca(&a, given, trust, sizeof(trust));
    assert_string_equal(trust, kept);
    /* something refused keeps nothing of it */
    rp_agent_service_ca_keep(&a, given, "-----BEGIN CERTIFICATE-----\nAAAA\n", now);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "P4"), 1);
    free(a_pem);
    free(as);
    free(p1234);
}

/* The service withdraws a CA it published by publishing a newer one without it (review r14 M1):
 * a successor S1 believed stolen, replaced by S2, goes at the next answer, while an answer from a
 * lagging replica ({C} alone) still keeps S2, the newer (review r13 M3). Past the bound, the
 * oldest kept goes first: a CA with a far notAfter (X) does not push out the others. */
static void service_ca_withdrawn(void **state)
{
    const char *dir = *state;
    char given[4096];
    rp_agent_t a;
    int64_t now = (int64_t)time(NULL);

    agent_in(&a, dir);
    ca_file_born(dir, "C", 10, 3650);
    ca_file_born(dir, "S1", 3, 3650);
    ca_file_born(dir, "S2", 1, 3650);
    ca_file_born(dir, "X", 6, 36500); /* a hundred years */
    ca_file_born(dir, "N1", 5, 3650);
    ca_file_born(dir, "N2", 4, 3650);
    ca_file_born(dir, "N3", 2, 3650);
    snprintf(given, sizeof(given), "%s/C", dir);
    cat_files(dir, "CS1", "C", "S1", NULL);
    cat_files(dir, "CS2", "C", "S2", NULL);
    cat_files(dir, "XN", "X", "N1", "N2", "N3", NULL);
    char *c = text_of(dir, "C"), *cs1 = text_of(dir, "CS1"), *cs2 = text_of(dir, "CS2"),
         *xn = text_of(dir, "XN");
    rp_agent_service_ca_keep(&a, given, cs1, now);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "S1"), 1);
    rp_agent_service_ca_keep(&a, given, cs2, now);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "S1"), 0); /* withdrawn */
    assert_int_equal(holds(dir, "agent/service-ca.pem", "S2"), 1);
    for (int i = 0; i < 3; i++) { /* (answers from a lagging replica, again and again) */
        rp_agent_service_ca_keep(&a, given, c, now);
        assert_int_equal(holds(dir, "agent/service-ca.pem", "S2"), 1);
        assert_int_equal(holds(dir, "agent/service-ca.pem", "S1"), 0);
        assert_int_equal(holds(dir, "agent/service-ca.pem", "C"), 2);
    }
    /* four kept that the next answer lacks, all newer than it: one goes, the oldest (X) */
    rp_agent_service_ca_keep(&a, given, xn, now);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "X"), 1);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "S2"), 0);
    rp_agent_service_ca_keep(&a, given, c, now);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "X"), 0);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "N1"), 1);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "N2"), 1);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "N3"), 1);
    assert_int_equal(holds(dir, "agent/service-ca.pem", "C"), 2); /* given, and published */
    free(c);
    free(cs1);
    free(cs2);
    free(xn);
}

/* A device re-provisioned with a prefix of the file it was given (A+B, then A alone: B taken out)
 * trusts A alone, not the rest of the kept file (review r13 L1). */
static void service_ca_prefix_given(void **state)
{
    const char *dir = *state;
    char given[4096], trust[4200], kept[4200];
    rp_agent_t a;

    agent_in(&a, dir);
    ca_file(dir, "A", 3650);
    ca_file(dir, "B", 3650);
    ca_file(dir, "P", 3650);
    cat_files(dir, "AB", "A", "B", NULL);
    char *p = text_of(dir, "P");
    snprintf(given, sizeof(given), "%s/AB", dir);
    snprintf(kept, sizeof(kept), "%s/agent/service-ca.pem", dir);
    rp_agent_service_ca_keep(&a, given, p, (int64_t)time(NULL));
    rp_agent_service_ca(&a, given, trust, sizeof(trust));
    assert_string_equal(trust, kept);
    snprintf(given, sizeof(given), "%s/A", dir);
    rp_agent_service_ca(&a, given, trust, sizeof(trust));
    assert_string_equal(trust, given);
    free(p);
}

/* A certificate block encrypted with a pass phrase (Proc-Type: 4,ENCRYPTED) in what the service
 * publishes is refused, and no pass phrase is asked for (review r13 L2): checked in a child with no
 * terminal and the pass phrase on its standard input, where OpenSSL's own prompt would read it. */
static void service_ca_no_passphrase(void **state)
{
    const char *dir = *state;
    char *p, *enc;
    int fds[2], status;
    long len;
    BIO *in, *out;
    X509 *cert;
    pid_t pid;

    ca_file(dir, "P", 3650);
    p = text_of(dir, "P");
    assert_true(rp_agent_service_ca_valid(p, strlen(p)));
    assert_non_null(in = BIO_new_mem_buf(p, -1));
    assert_non_null(cert = PEM_read_bio_X509(in, NULL, NULL, NULL));
    assert_non_null(out = BIO_new(BIO_s_mem()));
    assert_int_equal(PEM_ASN1_write_bio((i2d_of_void *)i2d_X509, PEM_STRING_X509, out, cert,
                                        EVP_aes_128_cbc(), (unsigned char *)"pw", 2, NULL, NULL),
                     1);
    len = BIO_get_mem_data(out, &enc);
    assert_non_null(strstr(enc, "ENCRYPTED"));
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "pw\npw\n", 6), 6);
    assert_int_equal(close(fds[1]), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)setsid(); /* (no controlling terminal: /dev/tty cannot be opened) */
        dup2(fds[0], 0);
        _exit(rp_agent_service_ca_valid(enc, (size_t)len) ? 1 : 0);
    }
    assert_int_equal(close(fds[0]), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    X509_free(cert);
    BIO_free(in);
    BIO_free(out);
    free(p);
}

static void renewal_plan_bounded(void **state)
{
    bool clamped;
    (void)state;
    assert_int_equal(rp_agent_plan_life(86400, 86700, &clamped), 86400);
    assert_false(clamped);
    assert_int_equal(rp_agent_renew_wait(86400), 57600);
    /* None in the answer (an older service): the certificate's span. */
    assert_int_equal(rp_agent_plan_life(0, 86400, &clamped), 86400);
    assert_false(clamped);
    assert_int_equal(rp_agent_plan_life(-5, 3600, &clamped), 3600);
    assert_false(clamped);
    /* Longer than the certificate: the certificate's span. */
    assert_int_equal(rp_agent_plan_life(7200, 3600, &clamped), 3600);
    assert_false(clamped);
    /* Too short: a minute (40 s to the next attestation, not 1 s). */
    assert_int_equal(rp_agent_plan_life(1, 86400, &clamped), RP_AGENT_LIFE_MIN);
    assert_true(clamped);
    assert_int_equal(rp_agent_plan_life(2, 0, &clamped), RP_AGENT_LIFE_MIN);
    assert_true(clamped);
    assert_int_equal(rp_agent_renew_wait(1), 40);
    /* Too long, to the overflow and past: a day and a half, renewed after a day. */
    assert_int_equal(rp_agent_plan_life(INT64_C(4611686018427387904), 0, &clamped),
                     RP_AGENT_LIFE_MAX);
    assert_true(clamped);
    assert_int_equal(rp_agent_plan_life(INT64_MAX, INT64_MAX, &clamped), RP_AGENT_LIFE_MAX);
    assert_true(clamped);
    assert_int_equal(rp_agent_plan_life(0, 0, &clamped), RP_AGENT_LIFE_MIN);
    assert_true(clamped);
    assert_int_equal(rp_agent_renew_wait(INT64_MAX), 24 * 3600);
    assert_int_equal(rp_agent_renew_wait(INT64_MIN), 40);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kinds_and_codes),
        cmocka_unit_test(renewal_plan_bounded),
        cmocka_unit_test(service_ca_bundle_checked),
        cmocka_unit_test_setup_teardown(service_ca_kept_union, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(service_ca_withdrawn, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(service_ca_prefix_given, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(service_ca_no_passphrase, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(contract_bounds, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(add_peek_remove, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(cursors, make_dir, remove_dir),
        cmocka_unit_test(events_become_reports),
        cmocka_unit_test_setup_teardown(event_reason_no_controls, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(full_drops_oldest_counted, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(bytes_bound, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(seq_never_reused, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(link_refused, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(power_cut_with_room, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(power_cut_when_full, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(settings_parse_and_keep, make_dir, remove_dir),
    };

    /* The child of the power-cut walk: one report, cut where RAMPART_FAILPOINT says. */
    if (argc == 3 && strcmp(argv[1], "--add") == 0) {
        rp_agent_t a;
        json_t *r = event("cut");
        rp_err_t err;
        agent_in(&a, argv[2]);
        err = rp_reportq_add_from(&a, r, RP_REPORTQ_CRASHES, CUT_ID);
        json_decref(r);
        return err == RP_OK ? 0 : 1;
    }
    self = argv[0];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
