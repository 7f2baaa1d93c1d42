/*
 * Symbolication out of the service's process (server/device/symbols.c, server/device/symbolize_main.c): the real
 * rampart-symbolize on this test's own binary (a real ELF with DWARF), files it refuses, and a
 * child that hangs, crashes or answers garbage (its test build, RAMPART_SYMBOLIZE_TEST): each is
 * "not symbolicated" and the caller goes on. Then the strict parser of the child's answers, and
 * the keyer (server/device/reports.c): buckets' symbolic keys made on its own thread, so that a batch's
 * answer never waits for a child.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <ftw.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "rampart/log.h"
#include "context.h"
#include "reports.h"
#include "store.h"

static char dir[] = "/tmp/rampart-test-symbols.XXXXXX";
static int copies;

__attribute__((noinline)) int symbols_test_named_function(int x);
__attribute__((noinline)) int symbols_test_named_function(int x)
{
    return x * 3 + 1;
}

/* A fresh copy of this test's binary (a new file: nothing cached of it). */
static void copy_self(char *path, size_t cap)
{
    char cmd[PATH_MAX * 2];

    snprintf(path, cap, "%s/self-%d", dir, copies++);
    snprintf(cmd, sizeof(cmd), "cp /proc/%d/exe %s", (int)getpid(), path);
    assert_int_equal(system(cmd), 0);
}

/* The named function's offset in the ELF file's address space (a PIE: from its load base). */
static uint64_t named_offset(void)
{
    Dl_info info;
    assert_int_not_equal(dladdr((void *)symbols_test_named_function, &info), 0);
    return (uint64_t)((uintptr_t)symbols_test_named_function - (uintptr_t)info.dli_fbase);
}

static unsigned long long metric(const char *name)
{
    struct evbuffer *b = evbuffer_new();
    char *text, *at;
    unsigned long long v = 0;
    size_t len;

    rp_symbols_metrics(b);
    len = evbuffer_get_length(b);
    text = calloc(1, len + 1);
    evbuffer_remove(b, text, len);
    at = strstr(text, name);
    assert_non_null(at);
    v = strtoull(at + strlen(name) + 1, NULL, 10);
    free(text);
    evbuffer_free(b);
    return v;
}

#define RUNS_OK "rampart_symbols_runs_total{result=\"ok\"}"
#define RUNS_FAILED "rampart_symbols_runs_total{result=\"failed\"}"
#define RUNS_REFUSED "rampart_symbols_runs_total{result=\"refused\"}"

/* No child is left behind, killed or not. */
static void no_children(void)
{
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_real_file(void **state)
{
    char path[PATH_MAX], id[2 * RP_REPORT_BUILD_ID_MAX + 1];
    uint64_t offs[2] = {named_offset(), 0};
    rp_symbol_t sym[2];
    unsigned long long ok = metric(RUNS_OK);
    int fd;

    (void)state;
    rp_symbols_configure(RP_SYMBOLIZE, 5000);
    copy_self(path, sizeof(path));
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(rp_symbols_build_id_fd(fd, id), RP_OK);
    close(fd);
    assert_int_equal(strlen(id), 40);
    assert_int_equal(rp_symbols_resolve(path, offs, 2, sym), RP_OK);
    assert_string_equal(sym[0].function, "symbols_test_named_function");
#ifndef __clang__ /* elfutils 0.188 finds no line in clang's DWARF 5 here (eu-addr2line neither)   \
                   */
    assert_true(sym[0].line > 0);
    assert_non_null(strstr(sym[0].file, "test_symbols.c"));
#endif
    assert_int_equal(metric(RUNS_OK), ok + 2);
    /* Named again: from the cache, no child. */
    memset(sym, 0, sizeof(sym));
    assert_int_equal(rp_symbols_resolve(path, offs, 1, sym), RP_OK);
    assert_string_equal(sym[0].function, "symbols_test_named_function");
    assert_int_equal(metric(RUNS_OK), ok + 2);
    no_children();
}

static void test_refused_files(void **state)
{
    char id[2 * RP_REPORT_BUILD_ID_MAX + 1];
    uint8_t junk[4096];
    unsigned long long refused = metric(RUNS_REFUSED);
    int fd;

    (void)state;
    rp_symbols_configure(RP_SYMBOLIZE, 5000);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 7 + 3);
    memcpy(junk, "\177ELF", 4); /* an ELF magic, and garbage after it */
    assert_int_equal(rp_symbols_build_id(junk, sizeof(junk), id), RP_ERR_INVALID_ARG);
    assert_string_equal(id, "");
    /* Huge: 300 MiB (sparse), past any bound; never read into the service. */
    fd = memfd_create("huge", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 300ll * 1024 * 1024), 0);
    assert_int_equal(rp_symbols_build_id_fd(fd, id), RP_ERR_INVALID_ARG);
    close(fd);
    assert_int_equal(metric(RUNS_REFUSED), refused + 2);
    no_children();
}

/* The test build of the child misbehaves as told: the caller gets RP_ERR_IO and goes on. */
static void misbehaving(const char *how)
{
    char path[PATH_MAX], id[2 * RP_REPORT_BUILD_ID_MAX + 1];
    uint64_t offs[1] = {named_offset()};
    rp_symbol_t sym[1];
    unsigned long long failed = metric(RUNS_FAILED), ok;
    struct timespec t0, t1;
    int fd;

    rp_symbols_configure(RP_SYMBOLIZE_TEST, 400);
    copy_self(path, sizeof(path));
    assert_int_equal(setenv("RAMPART_SYMBOLIZE_TEST", how, 1), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(rp_symbols_build_id_fd(fd, id), RP_ERR_IO);
    close(fd);
    /* Frames stay unnamed; the file is not tried again for a while. */
    assert_int_equal(rp_symbols_resolve(path, offs, 1, sym), RP_OK);
    assert_string_equal(sym[0].function, "");
    assert_int_equal(metric(RUNS_FAILED), failed + 2);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Two runs, each killed at its deadline at worst (0.4 s): well under the CPU limit. */
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    assert_int_equal(unsetenv("RAMPART_SYMBOLIZE_TEST"), 0);
    rp_symbols_configure(RP_SYMBOLIZE, 5000);
    ok = metric(RUNS_OK);
    assert_int_equal(rp_symbols_resolve(path, offs, 1, sym), RP_OK);
    assert_string_equal(sym[0].function, "");
    assert_int_equal(metric(RUNS_OK), ok); /* negative cache: no child */
    assert_int_equal(metric(RUNS_FAILED), failed + 2);
    no_children();
}

static void test_child_hangs(void **state)
{
    (void)state;
    misbehaving("hang");
}

static void test_child_crashes(void **state)
{
    (void)state;
    misbehaving("crash");
}

static void test_child_garbage(void **state)
{
    (void)state;
    misbehaving("garbage");
}

/* Whether bucket id is still unkeyed (symbolic NULL). */
static void found_bucket(void *ctx, const rp_bucket_t *b)
{
    (void)b;
    *(bool *)ctx = true;
}

static bool unkeyed(rp_store_t *s, const char *tenant_id, const char *id)
{
    bool found = false;
    assert_int_equal(
        rp_store_buckets_to_key(s, tenant_id, id, NULL, true, "", 1, found_bucket, &found), RP_OK);
    return found;
}

static void shown_symbolic(void *ctx, const rp_bucket_t *b)
{
    if (b->symbolic)
        (*(int *)ctx)++;
}

/* A crash bucket of build ID id, its one frame at offset. */
static void store_crash(rp_store_t *s, const char *tenant_id, const char *device, int64_t seq,
                        const char *bucket, const char *id, uint64_t offset)
{
    char sig[512];
    rp_report_put_t p = {.seq = seq,
                         .at = 1,
                         .kind = "crash",
                         .component = "sensor",
                         .version = "1.0.0+0",
                         .code = "",
                         .reason = "r",
                         .bucket = bucket,
                         .signal = 11,
                         .signature = sig,
                         .json = "{}"};
    bool stored;
    size_t ns, nd;
    int64_t pruned;

    snprintf(sig, sizeof(sig),
             "{\"component\": \"sensor\", \"signal\": 11, \"signal_name\": \"SIGSEGV\", "
             "\"frames\": [{\"build_id\": \"%s\", \"module\": \"self\", \"offset\": \"0x%llx\"}]}",
             id, (unsigned long long)offset);
    assert_int_equal(
        rp_store_reports_put(s, tenant_id, device, 1, &p, 1, 0, &stored, &ns, &nd, &pruned), RP_OK);
    assert_true(stored);
}

static double since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * The keyer keys a committed batch's buckets on its own thread, with its own store connection:
 * with the tenant's debug file it gives a bucket its symbolic key; with a child that hangs (until
 * its 3 s deadline), handing it buckets still returns at once (a batch's answer, on a worker's
 * loop, never waits for a child); past its bound it drops, and the dropped bucket stays unkeyed
 * for the next listing.
 */
static void test_keyer_never_waits(void **state)
{
    const char *dev = "4444444444444444444444444444444444444444444444444444444444444444";
    const char *b1 = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", *b2 = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
    const char *b3 = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
    char data[PATH_MAX / 4], sub[PATH_MAX / 2], debug[PATH_MAX], path[PATH_MAX];
    char id[2 * RP_REPORT_BUILD_ID_MAX + 1], many[1001][RP_BUCKET_ID_LEN + 1];
    const char *ids[1001];
    rp_store_t *s;
    rp_tenant_t t;
    struct timespec t0;
    int fd, symbolic = 0;

    (void)state;
    snprintf(data, sizeof(data), "%s/keyer", dir);
    assert_int_equal(mkdir(data, 0700), 0);
    assert_int_equal(rp_store_open(data, &s), RP_OK);
    assert_int_equal(rp_store_tenant_create(s, "acme", &t), RP_OK);
    assert_int_equal(rp_store_device_claim(s, t.id, dev, 1000), RP_OK);
    /* The tenant's debug file: this test's binary, where an upload keeps it. */
    copy_self(path, sizeof(path));
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(rp_symbols_build_id_fd(fd, id), RP_OK);
    close(fd);
    snprintf(sub, sizeof(sub), "%s/symbols", data);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/symbols/%s", data, t.id);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(debug, sizeof(debug), "%s/%s.debug", sub, id);
    assert_int_equal(rename(path, debug), 0);
    assert_int_equal(rp_store_symbols_put(s, t.id, id, 1, 1), RP_OK);
    store_crash(s, t.id, dev, 1, b1, id, named_offset());
    store_crash(s, t.id, dev, 2, b2, id, named_offset() + 1);
    store_crash(s, t.id, dev, 3, b3, id, named_offset() + 2);

    /* Keyed on the keyer's thread, with the real child. */
    rp_symbols_configure(RP_SYMBOLIZE, 5000);
    static rp_server_t srv; /* the keyer's database: the SQLite file in data */
    snprintf(srv.data_dir, sizeof(srv.data_dir), "%s", data);
    assert_int_equal(rp_reports_keyer_start(&srv), RP_OK);
    assert_true(rp_reports_key_later(t.id, &b1, 1));
    assert_true(rp_reports_keyer_idle(30000));
    assert_false(unkeyed(s, t.id, b1));
    assert_int_equal(rp_store_buckets_list(s, t.id, 0, 50, shown_symbolic, &symbolic), RP_OK);
#ifndef __clang__ /* elfutils finds no line in clang's DWARF 5 here: no symbolic key then */
    assert_int_equal(symbolic, 1);
#endif

    /* The child hangs: handing the keyer buckets does not wait for it. A new file (nothing
     * cached of it), at the same place. */
    copy_self(path, sizeof(path));
    assert_int_equal(rename(path, debug), 0);
    rp_symbols_configure(RP_SYMBOLIZE_TEST, 3000);
    assert_int_equal(setenv("RAMPART_SYMBOLIZE_TEST", "hang", 1), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(rp_reports_key_later(t.id, &b2, 1));
    /* More than it holds, at once (one call: the keyer takes none of them meanwhile), the last a
     * real bucket: dropped, it stays unkeyed. */
    for (int i = 0; i < 1000; i++) {
        snprintf(many[i], sizeof(many[i]), "%08x%024x", (unsigned)i * 2654435761u, (unsigned)i);
        ids[i] = many[i];
    }
    ids[1000] = b3;
    assert_false(rp_reports_key_later(t.id, ids, 1001));
    assert_true(since(&t0) < 1.0);
    assert_true(rp_reports_keyer_idle(30000));
    assert_true(since(&t0) >= 2.5);     /* the child did hang, on the keyer's thread */
    assert_false(unkeyed(s, t.id, b2)); /* keyed "": not symbolicated */
    assert_true(unkeyed(s, t.id, b3));  /* dropped: the next listing keys it */
    assert_int_equal(unsetenv("RAMPART_SYMBOLIZE_TEST"), 0);
    rp_symbols_configure(RP_SYMBOLIZE, 5000);
    rp_reports_keyer_stop();
    /* Stopped: nothing is taken (and nothing waits). */
    assert_false(rp_reports_key_later(t.id, &b3, 1));
    rp_store_close(s);
    no_children();
}

static rp_err_t lookup(const char *text, size_t n, rp_symbol_t *out)
{
    return rp_symbols_parse_lookup(text, strlen(text), n, out);
}

static void test_parse_lookup(void **state)
{
    rp_symbol_t s[2];
    char big[600];

    (void)state;
    assert_int_equal(
        lookup("{\"frames\": [{\"function\": \"f\", \"file\": \"a.c\", \"line\": 3}, {}]}", 2, s),
        RP_OK);
    assert_string_equal(s[0].function, "f");
    assert_string_equal(s[0].file, "a.c");
    assert_int_equal(s[0].line, 3);
    assert_string_equal(s[1].function, "");
    assert_int_equal(lookup("{\"frames\": [{\"function\": \"g\"}]}", 1, s), RP_OK);
    assert_string_equal(s[0].function, "g");
    assert_int_equal(s[0].line, 0);
    static const char *const bad[] = {
        "",
        "[]",
        "{\"frames\": [{}]} x",
        "{\"frames\": [{}, {}]}",                          /* not one a query */
        "{\"frames\": [{}], \"more\": 1}",                 /* a key too many */
        "{\"frames\": [{\"function\": 7}]}",               /* not a string */
        "{\"frames\": [{\"function\": \"\"}]}",            /* empty */
        "{\"frames\": [{\"function\": \"a\\u0000b\"}]}",   /* a NUL inside */
        "{\"frames\": [{\"function\": \"\\u001b[2Jf\"}]}", /* a terminal's escape */
        "{\"frames\": [{\"function\": \"f\", \"file\": \"a\\u009b.c\", \"line\": 3}]}", /* C1 */
        "{\"frames\": [{\"function\": \"f\", \"line\": 3}]}", /* a line without a file */
        "{\"frames\": [{\"file\": \"a.c\", \"line\": 3, \"x\": 1}]}",
        "{\"frames\": [{\"function\": \"f\", \"file\": \"a.c\", \"line\": 0}]}",
        "{\"frames\": [{\"function\": \"f\", \"file\": \"a.c\", \"line\": 4294967296}]}",
        "{\"frames\": [{\"function\": \"f\", \"file\": \"a.c\", \"line\": \"3\"}]}",
        "{\"frames\": [{\"function\": \"f\", \"function\": \"g\"}]}", /* a duplicate key */
        "{\"frames\": [7]}",
        "{\"error\": \"not a debug file\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s[0].line = 99;
        assert_int_equal(lookup(bad[i], 1, s), RP_ERR_MALFORMED);
        assert_int_equal(s[0].line, 0);
    }
    /* A name past what a frame keeps (255 bytes). */
    snprintf(big, sizeof(big), "{\"frames\": [{\"function\": \"%0256d\"}]}", 0);
    assert_int_equal(lookup(big, 1, s), RP_ERR_MALFORMED);
    snprintf(big, sizeof(big), "{\"frames\": [{\"function\": \"%0255d\"}]}", 0);
    assert_int_equal(lookup(big, 1, s), RP_OK);
}

static void test_parse_check(void **state)
{
    char id[2 * RP_REPORT_BUILD_ID_MAX + 1];
    static const char *const bad[] = {
        "{\"build_id\": \"ABCD\"}",         "{\"build_id\": \"abc\"}", "{\"build_id\": \"\"}",
        "{\"build_id\": \"ab\", \"x\": 1}", "{\"build_id\": 12}",      "{\"error\": \"no\"}",
        "{\"build_id\": \"zz\"}",
    };

    (void)state;
    assert_int_equal(rp_symbols_parse_check("{\"build_id\": \"ab01\"}", 20, id), RP_OK);
    assert_string_equal(id, "ab01");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rp_symbols_parse_check(bad[i], strlen(bad[i]), id), RP_ERR_MALFORMED);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static unsigned long long fetch_metric(const char *result)
{
    struct evbuffer *b = evbuffer_new();
    char *text, *at, name[96];
    unsigned long long v;
    size_t len;

    snprintf(name, sizeof(name), "rampart_debuginfod_fetches_total{result=\"%s\"} ", result);
    rp_symbols_debuginfod_metrics(b);
    len = evbuffer_get_length(b);
    text = calloc(1, len + 1);
    evbuffer_remove(b, text, len);
    at = strstr(text, name);
    assert_non_null(at);
    v = strtoull(at + strlen(name), NULL, 10);
    free(text);
    evbuffer_free(b);
    return v;
}

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

/* A build ID asked for again while its fetch is under way is not queued a second time (it was:
 * fetched twice). The debuginfod server here accepts and never answers, until closed. */
static void test_debuginfod_in_flight(void **state)
{
    static const char *id = "00112233445566778899aabbccddeeff00112233";
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    char ddir[] = "/tmp/rampart-dfd-XXXXXX", url[64], path[PATH_MAX];
    unsigned long long failed = fetch_metric("failed") + fetch_metric("missing");
    int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd;
    struct pollfd p;

    (void)state;
    rp_symbols_configure(RP_SYMBOLIZE, 5000);
    assert_non_null(mkdtemp(ddir));
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    assert_int_equal(rp_symbols_debuginfod_start(url, ddir), RP_OK);
    assert_false(rp_symbols_debuginfod_path(id, path, sizeof(path)));
    /* The fetch is under way once the server has its connection. */
    p = (struct pollfd){.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 30000), 1);
    cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    for (int i = 0; i < 3; i++)
        assert_false(rp_symbols_debuginfod_path(id, path, sizeof(path)));
    assert_int_equal(rp_symbols_debuginfod_waiting(), 0);
    /* Closed: the fetch ends (its child reaped by the fetcher), and is not started again. */
    close(cfd);
    close(lfd);
    for (int i = 0; i < 600 && fetch_metric("failed") + fetch_metric("missing") == failed; i++)
        usleep(50000);
    assert_true(fetch_metric("failed") + fetch_metric("missing") > failed);
    assert_int_equal(rp_symbols_debuginfod_waiting(), 0);
    assert_int_equal(nftw(ddir, remove_one, 8, FTW_DEPTH | FTW_PHYS), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_file),     cmocka_unit_test(test_refused_files),
        cmocka_unit_test(test_child_hangs),   cmocka_unit_test(test_child_crashes),
        cmocka_unit_test(test_child_garbage), cmocka_unit_test(test_parse_lookup),
        cmocka_unit_test(test_parse_check),   cmocka_unit_test(test_debuginfod_in_flight),
        cmocka_unit_test(test_keyer_never_waits),
    };
    rp_log_init("test_symbols", RP_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
