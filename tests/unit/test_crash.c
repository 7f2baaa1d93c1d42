/*
 * The crash store (device/monitor/crash.c) and the reader of a kept crash (crash_parse.c): what is
 * put is read back and parses to the same fields; the store keeps the newest RP_CRASH_KEEP, counts
 * the dropped ones and never reuses a number; a cut at any point of a put (every failpoint of the
 * atomic write, in a child process) leaves every kept crash whole and loses none kept before;
 * the reader refuses each field out of its bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crash.h"
#include "rampart/failpoint.h"

static rp_crash_capture_t cap;
static uint8_t enc[RP_CRASH_CAPTURE_MAX];
static uint8_t file[RP_CRASH_FILE_MAX + 16];
static rp_crash_t got;
static uint8_t log_bytes[10000];

static int make_dir(void **state)
{
    char *dir = strdup("/tmp/rp-crash-XXXXXX");
    assert_non_null(mkdtemp(dir));
    *state = dir;
    return 0;
}

static int remove_dir(void **state)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", (char *)*state);
    assert_int_equal(system(cmd), 0);
    free(*state);
    return 0;
}

static size_t sample(int signo)
{
    size_t len;
    memset(&cap, 0, sizeof(cap));
    cap.arch = 62;
    cap.signo = signo;
    cap.code = 1;
    cap.addr = 0x10;
    cap.tid = 7;
    cap.regs_len = 216;
    memset(cap.regs, 0xab, cap.regs_len);
    cap.sp = 0x7ffc0000;
    cap.stack_len = RP_CRASH_STACK_MAX;
    for (size_t i = 0; i < cap.stack_len; i++)
        cap.stack[i] = (uint8_t)i;
    cap.nmods = 2;
    cap.mods[0] = (rp_crash_module_t){0x1000, 0x2000, 0, "/app/bin/app"};
    cap.mods[1] = (rp_crash_module_t){0x7f000000, 0x7f100000, 0x1000, "/usr/lib/libc.so.6"};
    assert_int_equal(rp_crash_capture_encode(&cap, enc, sizeof(enc), &len), RP_OK);
    return len;
}

static uint64_t put(const char *dir, int signo)
{
    static const uint8_t digest[32] = {1, 2, 3};
    size_t len = sample(signo);
    rp_crash_meta_t m = {.at = 1700000000,
                         .uptime_ms = 1234,
                         .component = "app",
                         .version = "1.0.0+0",
                         .tree = "tree",
                         .digest = digest,
                         .log = log_bytes,
                         .log_len = sizeof(log_bytes)};
    uint64_t seq = 0;
    assert_int_equal(rp_crash_store_put(dir, &m, enc, len, &seq), RP_OK);
    return seq;
}

/* The whole file of the first crash from `from`. OUT: *seq (0: none). */
static size_t read_whole(const char *dir, uint64_t from, uint64_t *seq, uint64_t *dropped)
{
    size_t off = 0, len;
    uint32_t size;
    do {
        assert_int_equal(rp_crash_store_read(dir, from, (uint32_t)off, file + off, 3000, &len, seq,
                                             &size, dropped),
                         RP_OK);
        if (*seq == 0)
            return 0;
        off += len;
    } while (off < size && len > 0);
    assert_int_equal(off, size);
    return off;
}

/* The operator's switch (rp_crash_capture_set): on with no file; off deletes every kept crash and
 * keeps no new one; on again keeps them, numbered past every one before; a file that says
 * anything else reads as off. */
static void capture_switch(void **state)
{
    const char *dir = *state;
    static const uint8_t digest[32] = {1};
    rp_crash_meta_t m = {
        .at = 1, .component = "app", .version = "1", .tree = "tree", .digest = digest};
    uint64_t seq = 0, dropped;
    char path[512];
    size_t len;
    FILE *f;

    assert_true(rp_crash_capture_on(dir));
    assert_int_equal(put(dir, 11), 1);
    assert_int_equal(put(dir, 6), 2);
    assert_int_equal(rp_crash_capture_set(dir, false), RP_OK);
    assert_false(rp_crash_capture_on(dir));
    read_whole(dir, 0, &seq, &dropped);
    assert_int_equal(seq, 0); /* both gone */
    assert_int_equal(dropped, 0);
    len = sample(11);
    seq = 0;
    assert_int_equal(rp_crash_store_put(dir, &m, enc, len, &seq), RP_ERR_DENIED);
    assert_int_equal(seq, 0);
    read_whole(dir, 0, &seq, &dropped);
    assert_int_equal(seq, 0);
    assert_int_equal(rp_crash_capture_set(dir, true), RP_OK);
    assert_true(rp_crash_capture_on(dir));
    assert_int_equal(put(dir, 11), 3);
    snprintf(path, sizeof(path), "%s/crashes/capture", dir);
    assert_non_null(f = fopen(path, "w"));
    fputs("yes\n", f);
    fclose(f);
    assert_false(rp_crash_capture_on(dir));
}

static void round_trip(void **state)
{
    const char *dir = *state;
    uint64_t seq, dropped;
    size_t n;

    for (size_t i = 0; i < sizeof(log_bytes); i++)
        log_bytes[i] = (uint8_t)('a' + i % 26);
    assert_int_equal(put(dir, 11), 1);
    n = read_whole(dir, 0, &seq, &dropped);
    assert_int_equal(seq, 1);
    assert_int_equal(dropped, 0);
    assert_int_equal(rp_crash_parse(file, n, &got), RP_OK);
    assert_int_equal(got.seq, 1);
    assert_string_equal(got.component, "app");
    assert_string_equal(got.version, "1.0.0+0");
    assert_string_equal(got.tree, "tree");
    assert_int_equal(got.uptime_ms, 1234);
    /* the log's newest bytes, cut to the bound */
    assert_int_equal(got.log_len, RP_CRASH_LOG_MAX);
    assert_memory_equal(got.log, log_bytes + sizeof(log_bytes) - RP_CRASH_LOG_MAX,
                        RP_CRASH_LOG_MAX);
    assert_int_equal(got.cap.signo, 11);
    assert_int_equal(got.cap.addr, 0x10);
    assert_int_equal(got.cap.stack_len, RP_CRASH_STACK_MAX);
    assert_memory_equal(got.cap.stack, cap.stack, RP_CRASH_STACK_MAX);
    assert_int_equal(got.cap.nmods, 2);
    assert_string_equal(got.cap.mods[1].path, "/usr/lib/libc.so.6");
    assert_int_equal(got.cap.mods[1].offset, 0x1000);
    /* nothing past it */
    assert_int_equal(read_whole(dir, 2, &seq, &dropped), 0);
    assert_int_equal(seq, 0);
    /* every truncation refused */
    for (size_t cut = 0; cut < n; cut += 997)
        assert_int_not_equal(rp_crash_parse(file, cut, &got), RP_OK);
    assert_int_equal(rp_crash_parse(file, n - 1, &got), RP_ERR_TRUNCATED);
}

static void bounded_and_counted(void **state)
{
    const char *dir = *state;
    uint64_t seq, dropped;
    char path[512];

    for (int i = 0; i < RP_CRASH_KEEP + 5; i++)
        assert_int_equal(put(dir, 6), (uint64_t)i + 1);
    read_whole(dir, 0, &seq, &dropped);
    assert_int_equal(seq, 6); /* the five oldest went */
    assert_int_equal(dropped, 5);
    int kept = 0;
    for (uint64_t from = 0;; from = seq + 1) {
        if (read_whole(dir, from, &seq, &dropped) == 0)
            break;
        kept++;
    }
    assert_int_equal(kept, RP_CRASH_KEEP);
    /* Emptied by hand: numbers still never come back. */
    snprintf(path, sizeof(path), "rm -f %s/crashes/0*", dir);
    assert_int_equal(system(path), 0);
    assert_int_equal(put(dir, 6), RP_CRASH_KEEP + 6);
    /* The init's part is bounded before anything is written. */
    rp_crash_meta_t m = {
        .component = "app", .version = "", .tree = "tree", .digest = (const uint8_t[32]){0}};
    assert_int_equal(rp_crash_store_put(dir, &m, enc, RP_CRASH_CAPTURE_MAX + 1, &seq),
                     RP_ERR_TOO_LARGE);
}

/* A power cut at each point of a put: run it in a child that stops dead at failpoint N. */
static char self[4096];
static void cut_anywhere(void **state)
{
    const char *dir = *state;
    uint64_t seq, dropped, before = 0;

    for (int i = 0; i < 3; i++)
        put(dir, 11);
    for (int n = 1; n < 12; n++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char num[16];
            snprintf(num, sizeof(num), "%d", n);
            setenv("RAMPART_FAILPOINT", num, 1);
            execl(self, self, "put", dir, (char *)NULL);
            _exit(127);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 127);
        /* Every kept crash whole; none kept before is lost; no number reused. */
        uint64_t count = 0, last = 0;
        for (uint64_t from = 0;; from = seq + 1) {
            size_t len = read_whole(dir, from, &seq, &dropped);
            if (seq == 0)
                break; /* none left (an empty file is a kept crash, and must parse) */
            assert_int_equal(rp_crash_parse(file, len, &got), RP_OK);
            assert_true(seq > last);
            last = seq;
            count++;
        }
        assert_true(count >= 3 && count >= before);
        before = count;
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "put") == 0) { /* cut_anywhere's child */
        put(argv[2], 11);
        return 0;
    }
    if (realpath("/proc/self/exe", self) == NULL)
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(capture_switch, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(bounded_and_counted, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(cut_anywhere, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
