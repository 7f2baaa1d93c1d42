/*
 * Failure reports (server/device/reports.c, server/store/store_reports.c): the batch decoder's
 * every bound, the crash bucket ID (the same crash on two devices is one bucket; another top frame,
 * another), and the store's once-each and newest-1000 rules against a real SQLite database (and
 * PostgreSQL, as unit.reports_pg: store_target.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "rampart/log.h"
#include "reports.h"
#include "store.h"
#include "store_target.h"

#define BUILD_ID "0123456789abcdef0123456789abcdef01234567"

/* A crash report as JSON (a new reference): seq, the top frame's offset. */
static json_t *crash(int64_t seq, const char *top)
{
    return json_pack("{s:I, s:i, s:s, s:s, s:s, s:s, s:s, s:{s:i, s:s, s:i, s:s, s:i, s:[{s:s, "
                     "s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}], s:s}}",
                     "seq", (json_int_t)seq, "at", 1764300000, "kind", "crash", "component",
                     "sensor", "version", "1.0.0+0", "reason", "killed", "code", "", "crash",
                     "signal", 11, "signal_name", "SIGSEGV", "code", 1, "address", "0x0",
                     "uptime_ms", 10, "frames", "build_id", BUILD_ID, "module", "app", "offset",
                     top, "build_id", BUILD_ID, "module", "app", "offset", "0x2000", "build_id", "",
                     "module", "libc.so.6", "offset", "0x3000", "build_id", BUILD_ID, "module",
                     "app", "offset", "0x4000", "stderr", "");
}

static json_t *event(int64_t seq, const char *kind)
{
    return json_pack("{s:I, s:i, s:s, s:s, s:s, s:s, s:s}", "seq", (json_int_t)seq, "at", 1, "kind",
                     kind, "component", "", "version", "", "reason", "r", "code", "");
}

/* Decode {"reports": [r]} (takes r). OUT: *b; the decoder's answer. */
static rp_err_t decode_one(json_t *r, rp_report_batch_t *b)
{
    json_t *doc = json_pack("{s:[o], s:i}", "reports", r, "dropped", 0);
    char *text = json_dumps(doc, JSON_COMPACT);
    const char *why;
    rp_err_t err = rp_report_batch_decode((const uint8_t *)text, strlen(text), b, &why);

    free(text);
    json_decref(doc);
    return err;
}

/* Whether r, alone in a batch, is refused (the batch itself stands). */
static bool refused(json_t *r)
{
    rp_report_batch_t b;
    bool out;

    assert_int_equal(decode_one(r, &b), RP_OK);
    assert_int_equal(b.n, 1);
    out = b.reports[0].refused != NULL;
    rp_report_batch_free(&b);
    return out;
}

static rp_err_t decode_text(const char *text)
{
    rp_report_batch_t b;
    const char *why;
    rp_err_t err = rp_report_batch_decode((const uint8_t *)text, strlen(text), &b, &why);

    if (err == RP_OK)
        rp_report_batch_free(&b);
    else
        assert_non_null(why);
    return err;
}

static void decode_good(void **state)
{
    rp_report_batch_t b;

    (void)state;
    assert_int_equal(decode_one(crash(7, "0x1139"), &b), RP_OK);
    assert_null(b.reports[0].refused);
    assert_int_equal(b.reports[0].seq, 7);
    assert_string_equal(b.reports[0].kind, "crash");
    assert_true(b.reports[0].has_crash);
    assert_int_equal(b.reports[0].crash.nframes, 4);
    assert_int_equal(b.reports[0].crash.frames[0].offset, 0x1139);
    assert_string_equal(b.reports[0].crash.frames[2].module, "libc.so.6");
    assert_int_equal(strlen(b.reports[0].bucket), RP_BUCKET_ID_LEN);
    assert_non_null(b.reports[0].json);
    rp_report_batch_free(&b);
}

static void decode_envelope(void **state)
{
    char *big;

    (void)state;
    assert_int_equal(decode_text("{\"reports\": []}"), RP_OK);
    assert_int_equal(decode_text("{\"reports\": [], \"dropped\": 3}"), RP_OK);
    assert_int_equal(decode_text("[]"), RP_ERR_MALFORMED);
    assert_int_equal(decode_text("{\"reports\": ["), RP_ERR_MALFORMED);
    assert_int_equal(decode_text("{}"), RP_ERR_MALFORMED);
    assert_int_equal(decode_text("{\"reports\": {}}"), RP_ERR_MALFORMED);
    assert_int_equal(decode_text("{\"reports\": [], \"x\": 1}"), RP_ERR_MALFORMED);
    assert_int_equal(decode_text("{\"reports\": [], \"tenant\": \"t_1\"}"), RP_ERR_MALFORMED);
    assert_int_equal(decode_text("{\"reports\": [], \"dropped\": -1}"), RP_ERR_MALFORMED);
    assert_int_equal(decode_text("{\"reports\": [], \"reports\": []}"), RP_ERR_MALFORMED);
    /* 64 reports, and one more */
    for (int n = 64; n <= 65; n++) {
        json_t *a = json_array(), *doc;
        char *text;
        for (int i = 0; i < n; i++)
            json_array_append_new(a, event(i, "clock_jump"));
        doc = json_pack("{s:o}", "reports", a);
        text = json_dumps(doc, JSON_COMPACT);
        assert_int_equal(decode_text(text), n == 64 ? RP_OK : RP_ERR_TOO_LARGE);
        free(text);
        json_decref(doc);
    }
    /* the bytes: 256 KiB at most, checked before parsing */
    big = malloc(RP_REPORTS_BATCH_BYTES + 2);
    memset(big, ' ', RP_REPORTS_BATCH_BYTES + 1);
    memcpy(big, "{\"reports\": []}", 15);
    big[RP_REPORTS_BATCH_BYTES] = '\0';
    assert_int_equal(decode_text(big), RP_OK);
    big[RP_REPORTS_BATCH_BYTES] = ' ';
    big[RP_REPORTS_BATCH_BYTES + 1] = '\0';
    assert_int_equal(decode_text(big), RP_ERR_TOO_LARGE);
    free(big);
}

/* A crash report with one change made by a JSON path of objects. */
static json_t *crash_with(const char *key, json_t *v)
{
    json_t *r = crash(1, "0x10");

    json_object_set_new(json_object_get(r, "crash"), key, v);
    return r;
}

static json_t *frames_named(size_t n, const char *build_id, const char *module)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "build_id", build_id, "module",
                                           module, "offset", "0xffffffffffffffff"));
    return a;
}

static json_t *frames_of(size_t n, const char *build_id)
{
    return frames_named(n, build_id, "app");
}

static void decode_report_bounds(void **state)
{
    char s[RP_REPORT_STDERR_MAX + 2], id[2 * RP_REPORT_BUILD_ID_MAX + 3];
    json_t *r;

    (void)state;
    /* seq and at */
    r = event(0, "exit");
    assert_false(refused(r));
    assert_false(refused(event(RP_REPORT_SEQ_LIMIT - 1, "exit")));
    assert_true(refused(event(RP_REPORT_SEQ_LIMIT, "exit")));
    assert_true(refused(event(-1, "exit")));
    r = event(1, "exit");
    json_object_set_new(r, "at", json_string("now"));
    assert_true(refused(r));
    /* kinds: the contract's, no other */
    assert_false(refused(event(1, "attestation_failed")));
    assert_true(refused(event(1, "no_such_kind")));
    assert_true(refused(event(1, "Crash")));
    /* a crash without its object, an object on another kind */
    assert_true(refused(event(1, "crash")));
    {
        json_t *c = crash(1, "0x1");
        r = event(1, "exit");
        json_object_set(r, "crash", json_object_get(c, "crash"));
        json_decref(c);
        assert_true(refused(r));
    }
    /* unknown keys: a device or tenant of its own above all */
    r = event(1, "exit");
    json_object_set_new(r, "device", json_string("d"));
    assert_true(refused(r));
    r = event(1, "exit");
    json_object_del(r, "code");
    assert_true(refused(r));
    r = crash(1, "0x1");
    json_object_set_new(json_object_get(r, "crash"), "tenant", json_string("t"));
    assert_true(refused(r));
    /* strings */
    r = event(1, "exit");
    json_object_set_new(r, "component", json_string("../x"));
    assert_true(refused(r));
    r = event(1, "exit");
    memset(s, 'a', 256);
    s[256] = '\0';
    json_object_set_new(r, "reason", json_string(s));
    assert_true(refused(r));
    s[255] = '\0';
    r = event(1, "exit");
    json_object_set_new(r, "reason", json_string(s));
    assert_false(refused(r));
    r = event(1, "exit");
    json_object_set_new(r, "version",
                        json_string("123456789012345678901234567890123456789012345678"));
    assert_true(refused(r));
    r = event(1, "exit");
    json_object_set_new(r, "code", json_string("Bad"));
    assert_true(refused(r));
    /* a NUL in a string: that report refused, not the batch */
    r = event(1, "exit");
    json_object_set_new(r, "reason", json_stringn("a\0b", 3));
    assert_true(refused(r));
    r = event(1, "exit");
    json_object_set_new(r, "version", json_stringn("1\0", 2));
    assert_true(refused(r));
    /* a reason holds no control character: it reaches operators' terminals (an escape
     * sequence would act there, a newline forge a line); UTF-8 text is fine */
    {
        static const char *const bad[] = {"a\x1b]0;pwned\x07", "line\nforged", "tab\there",
                                          "del\x7f", "csi \xc2\x9b[2J"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            r = event(1, "exit");
            json_object_set_new(r, "reason", json_string(bad[i]));
            assert_true(refused(r));
        }
        r = event(1, "exit");
        json_object_set_new(r, "reason", json_string("caf\xc3\xa9 \xc2\xa0ok"));
        assert_false(refused(r));
    }
    /* the crash's fields */
    assert_true(refused(crash_with("signal", json_integer(0))));
    assert_true(refused(crash_with("signal", json_integer(65))));
    assert_false(refused(crash_with("signal", json_integer(64))));
    assert_true(refused(crash_with("address", json_string("0x"))));
    assert_true(refused(crash_with("address", json_string("0x12345678901234567"))));
    assert_false(refused(crash_with("address", json_string("0xffffffffffffffff"))));
    assert_true(refused(crash_with("address", json_string("12"))));
    assert_true(refused(crash_with("uptime_ms", json_integer(-1))));
    memset(s, 'e', RP_REPORT_STDERR_MAX + 1);
    s[RP_REPORT_STDERR_MAX + 1] = '\0';
    assert_true(refused(crash_with("stderr", json_string(s))));
    s[RP_REPORT_STDERR_MAX] = '\0';
    assert_false(refused(crash_with("stderr", json_string(s))));
    /* frames: at most 64; a build ID of lowercase hex, at most 40 bytes */
    assert_false(refused(crash_with("frames", frames_of(64, BUILD_ID))));
    assert_true(refused(crash_with("frames", frames_of(65, BUILD_ID))));
    assert_false(refused(crash_with("frames", frames_of(0, BUILD_ID))));
    memset(id, 'a', sizeof(id));
    id[2 * RP_REPORT_BUILD_ID_MAX] = '\0';
    assert_false(refused(crash_with("frames", frames_of(1, id))));
    id[2 * RP_REPORT_BUILD_ID_MAX] = 'a';
    id[2 * RP_REPORT_BUILD_ID_MAX + 2] = '\0';
    assert_true(refused(crash_with("frames", frames_of(1, id))));
    assert_true(refused(crash_with("frames", frames_of(1, "abc"))));
    assert_true(refused(crash_with("frames", frames_of(1, "ABCD"))));
    r = crash(1, "0x1");
    json_object_set_new(json_array_get(json_object_get(json_object_get(r, "crash"), "frames"), 0),
                        "module", json_string("a/b"));
    assert_true(refused(r));
    /* every bound at once is more than a report may be: 16 KiB as JSON */
    {
        char mod[RP_REPORT_MODULE_MAX + 1], *text;
        memset(mod, 'm', RP_REPORT_MODULE_MAX);
        mod[RP_REPORT_MODULE_MAX] = '\0';
        memset(id, 'b', sizeof(id));
        id[2 * RP_REPORT_BUILD_ID_MAX] = '\0';
        r = crash_with("frames", frames_named(64, id, mod));
        json_object_set_new(json_object_get(r, "crash"), "stderr", json_string(s));
        text = json_dumps(r, JSON_COMPACT);
        assert_true(strlen(text) > RP_REPORT_BYTES);
        free(text);
        assert_true(refused(r));
        r = crash_with("frames", frames_named(64, id, mod)); /* without the stderr: it fits */
        assert_false(refused(r));
    }
}

/* A bad report beside good ones: refused by itself, named by its seq. */
static void decode_mixed(void **state)
{
    json_t *doc =
        json_pack("{s:[o, o, o]}", "reports", event(1, "exit"), event(2, "bogus"), crash(3, "0x1"));
    char *text = json_dumps(doc, JSON_COMPACT);
    rp_report_batch_t b;
    const char *why;

    (void)state;
    assert_int_equal(rp_report_batch_decode((const uint8_t *)text, strlen(text), &b, &why), RP_OK);
    assert_int_equal(b.n, 3);
    assert_null(b.reports[0].refused);
    assert_non_null(b.reports[1].refused);
    assert_int_equal(b.reports[1].seq, 2);
    assert_null(b.reports[1].json);
    assert_null(b.reports[2].refused);
    rp_report_batch_free(&b);
    free(text);
    json_decref(doc);
    /* A report that is no object has no number: its refusal names none (seq -1, answered
     * null), never seq 0, which is another report's (found by the attack review). */
    text = "{\"reports\": [[], 7, \"x\"]}";
    assert_int_equal(rp_report_batch_decode((const uint8_t *)text, strlen(text), &b, &why), RP_OK);
    assert_int_equal(b.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_non_null(b.reports[i].refused);
        assert_int_equal(b.reports[i].seq, -1);
    }
    rp_report_batch_free(&b);
}

static void bucket_of(json_t *r, char out[RP_BUCKET_ID_LEN + 1])
{
    rp_report_batch_t b;

    assert_int_equal(decode_one(r, &b), RP_OK);
    assert_null(b.reports[0].refused);
    memcpy(out, b.reports[0].bucket, RP_BUCKET_ID_LEN + 1);
    rp_report_batch_free(&b);
}

static void bucket_id(void **state)
{
    char a[RP_BUCKET_ID_LEN + 1], b[RP_BUCKET_ID_LEN + 1];
    json_t *r;

    (void)state;
    /* the same crash from two devices (other numbers, times, versions, stderr): one bucket */
    bucket_of(crash(1, "0x1139"), a);
    r = crash(99, "0x1139");
    json_object_set_new(r, "version", json_string("1.1.0+0"));
    json_object_set_new(r, "at", json_integer(5));
    json_object_set_new(json_object_get(r, "crash"), "stderr", json_string("other"));
    json_object_set_new(json_object_get(r, "crash"), "address", json_string("0x8"));
    bucket_of(r, b);
    assert_string_equal(a, b);
    /* below the top three frames: still the same bucket */
    r = crash(2, "0x1139");
    json_object_set_new(json_array_get(json_object_get(json_object_get(r, "crash"), "frames"), 3),
                        "offset", json_string("0x9999"));
    bucket_of(r, b);
    assert_string_equal(a, b);
    /* another top frame: another bucket */
    bucket_of(crash(1, "0x1145"), b);
    assert_string_not_equal(a, b);
    /* another signal, component, build ID of a top frame, module of a frame without one */
    r = crash(1, "0x1139");
    json_object_set_new(json_object_get(r, "crash"), "signal", json_integer(6));
    bucket_of(r, b);
    assert_string_not_equal(a, b);
    r = crash(1, "0x1139");
    json_object_set_new(r, "component", json_string("relay"));
    bucket_of(r, b);
    assert_string_not_equal(a, b);
    r = crash(1, "0x1139");
    json_object_set_new(json_array_get(json_object_get(json_object_get(r, "crash"), "frames"), 1),
                        "build_id", json_string("ff"));
    bucket_of(r, b);
    assert_string_not_equal(a, b);
    r = crash(1, "0x1139");
    json_object_set_new(json_array_get(json_object_get(json_object_get(r, "crash"), "frames"), 2),
                        "module", json_string("libm.so.6"));
    bucket_of(r, b);
    assert_string_not_equal(a, b);
}

/* The symbolic key: the same functions and lines from two builds (other build IDs, offsets,
 * versions) are one key; another line, function, module, component or signal another; a frame
 * not named to its line gives none (the bucket keeps its build-level key). */
static void symbolic_id(void **state)
{
    rp_symbolic_frame_t f[3] = {
        {"app", "crash_here", "crasher.c", 12},
        {"app", "middle",     "crasher.c", 20},
        {"app", "main",       "crasher.c", 30},
    };
    rp_symbolic_frame_t g[3];
    char a[RP_BUCKET_ID_LEN + 1], b[RP_BUCKET_ID_LEN + 1], c[RP_BUCKET_ID_LEN + 1];
    rp_report_crash_t crash = {.signal = 11, .nframes = 1};

    (void)state;
    assert_true(rp_report_symbolic_id("sensor", 11, f, 3, a));
    assert_int_equal(strlen(a), RP_BUCKET_ID_LEN);
    memcpy(g, f, sizeof(f));
    assert_true(rp_report_symbolic_id("sensor", 11, g, 3, b));
    assert_string_equal(a, b);
    g[1].line = 21;
    assert_true(rp_report_symbolic_id("sensor", 11, g, 3, b));
    assert_string_not_equal(a, b);
    memcpy(g, f, sizeof(f));
    g[0].function = "crash_there";
    assert_true(rp_report_symbolic_id("sensor", 11, g, 3, b));
    assert_string_not_equal(a, b);
    memcpy(g, f, sizeof(f));
    g[2].module = "libapp.so";
    assert_true(rp_report_symbolic_id("sensor", 11, g, 3, b));
    assert_string_not_equal(a, b);
    assert_true(rp_report_symbolic_id("other", 11, f, 3, b));
    assert_string_not_equal(a, b);
    assert_true(rp_report_symbolic_id("sensor", 6, f, 3, b));
    assert_string_not_equal(a, b);
    /* the same text cut elsewhere between function and file: length-prefixed, another key */
    memcpy(g, f, sizeof(f));
    g[0].function = "crash_herecrasher";
    g[0].file = ".c";
    assert_true(rp_report_symbolic_id("sensor", 11, g, 3, b));
    assert_string_not_equal(a, b);
    /* a frame without a line, without a function, or none at all: no key */
    memcpy(g, f, sizeof(f));
    g[2].line = 0;
    assert_false(rp_report_symbolic_id("sensor", 11, g, 3, b));
    assert_string_equal(b, "");
    memcpy(g, f, sizeof(f));
    g[1].function = "";
    assert_false(rp_report_symbolic_id("sensor", 11, g, 3, b));
    g[1].function = NULL;
    assert_false(rp_report_symbolic_id("sensor", 11, g, 3, b));
    assert_false(rp_report_symbolic_id("sensor", 11, f, 0, b));
    assert_false(rp_report_symbolic_id("sensor", 11, f, 4, b));
    /* never a build-level bucket's ID (its own tag) */
    snprintf(crash.frames[0].module, sizeof(crash.frames[0].module), "app");
    rp_report_bucket_id("sensor", &crash, c);
    assert_true(rp_report_symbolic_id("sensor", 11, f, 1, b));
    assert_string_not_equal(b, c);
}

/* --- the store ------------------------------------------------------------------------------ */

struct db {
    struct rt_target t;
    rp_store_t *s;
    rp_tenant_t tenant, other;
};

static int db_setup(void **state)
{
    struct db *db = calloc(1, sizeof(*db));

    rp_log_init("test_reports", RP_LOG_ERROR);
    if (rt_target_make(&db->t) != 0 || rt_store_open(&db->t, &db->s) != RP_OK ||
        rp_store_tenant_create(db->s, "acme", &db->tenant) != RP_OK ||
        rp_store_tenant_create(db->s, "globex", &db->other) != RP_OK)
        return -1;
    *state = db;
    return 0;
}

static int db_teardown(void **state)
{
    struct db *db = *state;
    int rc;

    rp_store_close(db->s);
    rc = rt_target_remove(&db->t);
    free(db);
    return rc;
}

static void count_bucket(void *ctx, const rp_bucket_t *b)
{
    *(int64_t *)ctx += b->count;
}

static void count_failed(void *ctx, const rp_bucket_t *b)
{
    *(int64_t *)ctx += b->device_failed;
}

static void count_row(void *ctx, const rp_report_row_t *row)
{
    (void)row;
    (*(int64_t *)ctx)++;
}

static rp_report_put_t put(int64_t seq, const char *bucket)
{
    return (rp_report_put_t){seq,    1,  bucket ? "crash" : "exit", "sensor", "1.0.0+0", "", "r",
                             bucket, 11, bucket ? "{}" : NULL,      "{}",     false};
}

/* count exit reports of acme's device, numbered from seq on, stored at now (64 a batch). */
static void put_exits(struct db *db, const char *device, int64_t seq, int64_t count, int64_t now)
{
    rp_report_put_t r[64];
    bool stored[64];
    size_t ns, nd;
    int64_t pruned;

    for (int64_t left = count; left > 0;) {
        size_t n = left > 64 ? 64 : (size_t)left;
        for (size_t i = 0; i < n; i++)
            r[i] = put(seq++, NULL);
        assert_int_equal(rp_store_reports_put(db->s, db->tenant.id, device, now, r, n, 0, stored,
                                              &ns, &nd, &pruned),
                         RP_OK);
        assert_int_equal(ns, n);
        left -= (int64_t)n;
    }
}

static void store_once_and_bounded(void **state)
{
    struct db *db = *state;
    const char *d1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *d2 = "2222222222222222222222222222222222222222222222222222222222222222";
    const char *bk = "0123456789abcdef0123456789abcdef";
    rp_report_put_t r[64];
    bool stored[64];
    size_t ns, nd;
    int64_t pruned, total = 0, rows = 0;

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, d1, 1000), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->other.id, d2, 1000), RP_OK);
    /* the same crash from two devices of acme... */
    r[0] = put(5, bk);
    assert_int_equal(
        rp_store_reports_put(db->s, db->tenant.id, d1, 100, r, 1, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    assert_true(stored[0]);
    /* ...sent again: a duplicate, not counted twice */
    assert_int_equal(
        rp_store_reports_put(db->s, db->tenant.id, d1, 101, r, 1, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    assert_false(stored[0]);
    assert_int_equal(ns, 0);
    assert_int_equal(nd, 1);
    assert_int_equal(rp_store_bucket_get(db->s, db->tenant.id, bk, count_bucket, &total), RP_OK);
    assert_int_equal(total, 1);
    /* another tenant's device with the same bucket ID: its own bucket */
    assert_int_equal(
        rp_store_reports_put(db->s, db->other.id, d2, 102, r, 1, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    total = 0;
    assert_int_equal(rp_store_bucket_get(db->s, db->tenant.id, bk, count_bucket, &total), RP_OK);
    assert_int_equal(total, 1);
    /* the newest RP_REPORTS_KEEP per device: the rest pruned and counted */
    put_exits(db, d1, 10, RP_REPORTS_KEEP + 100, 103);
    assert_int_equal(
        rp_store_reports_list(db->s, db->tenant.id, d1, NULL, 0, 5000, count_row, &rows), RP_OK);
    assert_int_equal(rows, RP_REPORTS_KEEP);
    /* a pruned report sent again is a duplicate, not taken again */
    r[0] = put(10, NULL);
    assert_int_equal(
        rp_store_reports_put(db->s, db->tenant.id, d1, 104, r, 1, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    assert_int_equal(nd, 1);
    rows = 0;
    assert_int_equal(
        rp_store_reports_list(db->s, db->tenant.id, NULL, "exit", 0, 5000, count_row, &rows),
        RP_OK);
    assert_int_equal(rows, RP_REPORTS_KEEP);
}

struct counts_seen {
    char text[1024];
};

static void collect_dim(void *ctx, const char *dim, const char *value, int64_t count)
{
    struct counts_seen *c = ctx;
    size_t n = strlen(c->text);

    snprintf(c->text + n, sizeof(c->text) - n, "%s=%s:%lld;", dim, value, (long long)count);
}

static void collect_sample_seq(void *ctx, const rp_report_row_t *row)
{
    struct counts_seen *c = ctx;
    size_t n = strlen(c->text);

    snprintf(c->text + n, sizeof(c->text) - n, "%lld%s,", (long long)row->seq,
             row->device_failed ? "!" : "");
}

/* What a tenant's bucket holds: its count, its counts per dimension, its samples' numbers (with
 * "!": sent while the device's last attestation had failed). */
static void bucket_state(struct db *db, const char *tenant_id, const char *bucket,
                         struct counts_seen *out)
{
    int64_t total = 0, failed = 0;

    memset(out, 0, sizeof(*out));
    assert_int_equal(rp_store_bucket_get(db->s, tenant_id, bucket, count_bucket, &total), RP_OK);
    assert_int_equal(rp_store_bucket_get(db->s, tenant_id, bucket, count_failed, &failed), RP_OK);
    snprintf(out->text, sizeof(out->text), "count=%lld;failed=%lld;", (long long)total,
             (long long)failed);
    assert_int_equal(rp_store_bucket_counts(db->s, tenant_id, bucket, collect_dim, out), RP_OK);
    assert_int_equal(rp_store_bucket_samples(db->s, tenant_id, bucket, collect_sample_seq, out),
                     RP_OK);
}

/* Buckets counted at the end of a round (rp_store_buckets_defer/_flush, the recorder's way: each
 * bucket once with its whole count) hold the same as buckets counted report by report: count,
 * how many of it from failed devices (review r10 L4), counts per version, group and day, the
 * first 5 reports as samples; nothing is counted before the flush. */
static void buckets_deferred_count_the_same(void **state)
{
    struct db *db = *state;
    const char *d1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *d2 = "2222222222222222222222222222222222222222222222222222222222222222";
    const char *ba = "0123456789abcdef0123456789abcdef", *bb = "fedcba9876543210fedcba9876543210";
    rp_report_put_t r[10];
    bool stored[10];
    size_t ns, nd;
    int64_t pruned, none = 0;
    struct counts_seen now_a, now_b, later_a, later_b;

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, d1, 1000), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->other.id, d2, 1000), RP_OK);
    for (int i = 0; i < 10; i++) {
        r[i] = put(i, i == 9 ? NULL : i == 8 ? bb : ba);
        r[i].version = i % 3 == 0 ? "2.0" : "1.0";
        r[i].device_failed = i % 4 == 1; /* 1 and 5 of ba's 8 */
    }
    /* Report by report, for acme; two batches. */
    assert_int_equal(
        rp_store_reports_put(db->s, db->tenant.id, d1, 1000, r, 4, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    assert_int_equal(rp_store_reports_put(db->s, db->tenant.id, d1, 1001, r + 4, 6, 0, stored, &ns,
                                          &nd, &pruned),
                     RP_OK);
    /* Deferred to a flush, for globex, in one group. */
    assert_int_equal(rp_store_group_begin(db->s), RP_OK);
    assert_int_equal(rp_store_buckets_defer(db->s), RP_OK);
    assert_int_equal(
        rp_store_reports_put(db->s, db->other.id, d2, 1000, r, 4, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    assert_int_equal(
        rp_store_reports_put(db->s, db->other.id, d2, 1001, r + 4, 6, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    assert_int_equal(rp_store_bucket_get(db->s, db->other.id, ba, count_bucket, &none),
                     RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_buckets_flush(db->s), RP_OK);
    assert_int_equal(rp_store_group_end(db->s, RP_OK), RP_OK);
    bucket_state(db, db->tenant.id, ba, &now_a);
    bucket_state(db, db->tenant.id, bb, &now_b);
    bucket_state(db, db->other.id, ba, &later_a);
    bucket_state(db, db->other.id, bb, &later_b);
    assert_string_equal(now_a.text, later_a.text);
    assert_string_equal(now_b.text, later_b.text);
    assert_non_null(strstr(now_a.text, "count=8;failed=2;"));
    assert_non_null(strstr(now_a.text, "version=1.0:5;version=2.0:3;"));
    assert_non_null(strstr(now_a.text, "0,1!,2,3,4,")); /* the first five, 1 from a failed one */
    /* After the flush, counting is report by report again. */
    r[0] = put(20, ba);
    assert_int_equal(
        rp_store_reports_put(db->s, db->other.id, d2, 1002, r, 1, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    bucket_state(db, db->other.id, ba, &later_a);
    assert_non_null(strstr(later_a.text, "count=9;failed=2;"));
}

/* The device's verdict at at, recorded as the service records one (no certificate, no nonce). */
static void attested(struct db *db, const char *device, int64_t at, bool passed)
{
    rp_attestation_t a;
    rp_attestation_write_t w;

    memset(&a, 0, sizeof(a));
    memset(&w, 0, sizeof(w));
    snprintf(a.device_id, sizeof(a.device_id), "%s", device);
    snprintf(a.tenant_id, sizeof(a.tenant_id), "%s", db->tenant.id);
    a.at = at;
    a.passed = passed;
    snprintf(a.reason, sizeof(a.reason), "%s", passed ? "ok" : "debug_enabled");
    snprintf(a.claims_json, sizeof(a.claims_json), "{}");
    w.a = &a;
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
}

/* Each crash sample is marked as its report was sent (review r10 L4, for samples): from the
 * report while it is kept, even where the attestations say otherwise (the device was read before
 * a verdict landed); once the report is pruned, from the device's attestations at the time it
 * was received. Not as the device is now: it passes now. */
static void samples_marked_as_sent(void **state)
{
    struct db *db = *state;
    const char *d1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *bk = "0123456789abcdef0123456789abcdef";
    rp_report_put_t r[64];
    bool stored[64];
    size_t ns, nd;
    int64_t pruned;
    struct counts_seen seen;

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, d1, 50), RP_OK);
    r[0] = put(1, bk); /* before any attestation: not failed, as its report says */
    assert_int_equal(
        rp_store_reports_put(db->s, db->tenant.id, d1, 60, r, 1, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    attested(db, d1, 100, false);
    r[0] = put(2, bk);
    r[0].device_failed = true;
    assert_int_equal(
        rp_store_reports_put(db->s, db->tenant.id, d1, 150, r, 1, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    attested(db, d1, 200, true);
    r[0] = put(3, bk);
    r[1] = put(4, bk);
    r[1].device_failed = true; /* read failed just before the pass at 200 landed */
    assert_int_equal(
        rp_store_reports_put(db->s, db->tenant.id, d1, 250, r, 2, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    bucket_state(db, db->tenant.id, bk, &seen);
    assert_non_null(strstr(seen.text, "count=4;failed=2;"));
    assert_non_null(strstr(seen.text, ";1,2!,3,4!,"));
    /* Pruned (the device's newest RP_REPORTS_KEEP are others): the attestations say. */
    put_exits(db, d1, 10, RP_REPORTS_KEEP, 300);
    bucket_state(db, db->tenant.id, bk, &seen);
    assert_non_null(strstr(seen.text, "count=4;failed=2;"));
    assert_non_null(strstr(seen.text, ";1,2!,3,4,"));
}

struct shown {
    int n;
    rp_bucket_t b[4];
};

static void take_shown(void *ctx, const rp_bucket_t *b)
{
    struct shown *sh = ctx;

    if (sh->n < 4)
        sh->b[sh->n] = *b, sh->b[sh->n].signature = NULL;
    sh->n++;
}

static void sum_version(void *ctx, const char *dim, const char *value, int64_t count)
{
    if (strcmp(dim, "version") == 0)
        *(int64_t *)ctx += count * (strcmp(value, "1.0.0+0") == 0 ? 1 : 100);
}

/* Build-level buckets sharing a symbolic key are shown as one: under the key, with their counts
 * summed (per version too), found by the key or by any member's ID; a bucket without a key, or
 * with "" (not every frame named), stays apart under its own ID. */
static void store_symbolic_merge(void **state)
{
    struct db *db = *state;
    const char *d1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *b1 = "b1000000000000000000000000000000", *b2 = "b2000000000000000000000000000000";
    const char *b3 = "b3000000000000000000000000000000";
    const char *key = "5e000000000000000000000000000000";
    rp_report_put_t r[3];
    bool stored[3];
    size_t ns, nd;
    int64_t pruned, versions = 0, samples = 0;
    struct shown sh = {0};

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, d1, 1000), RP_OK);
    r[0] = put(1, b1);
    r[1] = put(2, b2);
    r[1].version = "2.0.0+0";
    r[2] = put(3, b3);
    assert_int_equal(
        rp_store_reports_put(db->s, db->tenant.id, d1, 100, r, 3, 0, stored, &ns, &nd, &pruned),
        RP_OK);
    assert_int_equal(rp_store_buckets_list(db->s, db->tenant.id, 0, 50, take_shown, &sh), RP_OK);
    assert_int_equal(sh.n, 3);
    /* never looked at: all three to key; b1 and b2 get the same key, b3 none */
    sh.n = 0;
    assert_int_equal(
        rp_store_buckets_to_key(db->s, db->tenant.id, NULL, NULL, true, "", 10, take_shown, &sh),
        RP_OK);
    assert_int_equal(sh.n, 3);
    assert_int_equal(rp_store_bucket_symbolic_set(db->s, db->tenant.id, b1, key), RP_OK);
    assert_int_equal(rp_store_bucket_symbolic_set(db->s, db->tenant.id, b2, key), RP_OK);
    assert_int_equal(rp_store_bucket_symbolic_set(db->s, db->tenant.id, b3, ""), RP_OK);
    sh.n = 0;
    assert_int_equal(
        rp_store_buckets_to_key(db->s, db->tenant.id, NULL, NULL, true, "", 10, take_shown, &sh),
        RP_OK);
    assert_int_equal(sh.n, 0);
    sh.n = 0;
    assert_int_equal(rp_store_buckets_list(db->s, db->tenant.id, 0, 50, take_shown, &sh), RP_OK);
    assert_int_equal(sh.n, 2);
    for (int i = 0; i < 2; i++) {
        if (strcmp(sh.b[i].id, key) == 0) {
            assert_true(sh.b[i].symbolic);
            assert_int_equal(sh.b[i].count, 2);
            assert_int_equal(sh.b[i].members, 2);
        } else {
            assert_string_equal(sh.b[i].id, b3);
            assert_false(sh.b[i].symbolic);
            assert_int_equal(sh.b[i].members, 1);
        }
    }
    /* by the key, or by a member's ID: the merged bucket */
    for (int i = 0; i < 3; i++) {
        sh.n = 0;
        assert_int_equal(rp_store_bucket_get(db->s, db->tenant.id, (const char *[]){key, b1, b2}[i],
                                             take_shown, &sh),
                         RP_OK);
        assert_int_equal(sh.n, 1);
        assert_string_equal(sh.b[0].id, key);
        assert_int_equal(sh.b[0].count, 2);
    }
    sh.n = 0;
    assert_int_equal(rp_store_bucket_members(db->s, db->tenant.id, key, take_shown, &sh), RP_OK);
    assert_int_equal(sh.n, 2);
    assert_int_equal(rp_store_bucket_counts(db->s, db->tenant.id, key, sum_version, &versions),
                     RP_OK);
    assert_int_equal(versions, 101); /* 1.0.0+0 once, 2.0.0+0 once */
    assert_int_equal(rp_store_bucket_samples(db->s, db->tenant.id, key, count_row, &samples),
                     RP_OK);
    assert_int_equal(samples, 2);
    /* another tenant sees none of it */
    assert_int_equal(rp_store_bucket_get(db->s, db->other.id, key, take_shown, &sh),
                     RP_ERR_NOT_FOUND);
    /* the key taken back (a debug file replaced): apart again */
    assert_int_equal(rp_store_bucket_symbolic_set(db->s, db->tenant.id, b2, ""), RP_OK);
    sh.n = 0;
    assert_int_equal(rp_store_buckets_list(db->s, db->tenant.id, 0, 50, take_shown, &sh), RP_OK);
    assert_int_equal(sh.n, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decode_good),
        cmocka_unit_test(decode_envelope),
        cmocka_unit_test(decode_report_bounds),
        cmocka_unit_test(decode_mixed),
        cmocka_unit_test(bucket_id),
        cmocka_unit_test_setup_teardown(store_once_and_bounded, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(buckets_deferred_count_the_same, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(samples_marked_as_sent, db_setup, db_teardown),
        cmocka_unit_test(symbolic_id),
        cmocka_unit_test_setup_teardown(store_symbolic_merge, db_setup, db_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
