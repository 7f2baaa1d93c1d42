/*
 * The security event log (device/monitor/events.c): events read back as recorded, oldest first;
 * the log holds RP_EVENTS_MAX and counts the rest as dropped; a record torn by a crash is never
 * shown; a header that lags its last record (a crash between the two writes) never makes the next
 * writer overwrite that record. The test knows the file's layout (events.c): a 512-byte header,
 * then event seq in slot 1 + seq % RP_EVENTS_MAX, 512 bytes each.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "events.h"

#define SLOT 512

static rp_event_t got[RP_EVENTS_MAX + 10];

static int make_dir(void **state)
{
    char *dir = strdup("/tmp/rp-events-XXXXXX");
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

static void record_n(const char *dir, int from, int to)
{
    char reason[64];
    for (int i = from; i < to; i++) {
        snprintf(reason, sizeof(reason), "event %d", i);
        assert_int_equal(rp_event_record(dir, RP_EVENT_SYSCALL, "app", reason), RP_OK);
    }
}

static void log_file(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/events/log", dir);
}

static void empty_reads_empty(void **state)
{
    size_t n = 99;
    uint64_t dropped = 99;
    assert_int_equal(rp_events_read(*state, got, RP_EVENTS_MAX, &n, &dropped), RP_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dropped, 0);
}

static void read_back_in_order(void **state)
{
    size_t n;
    uint64_t dropped;

    assert_int_equal(rp_event_record(*state, RP_EVENT_OOM, "sensor", "memory 1024 KB"), RP_OK);
    record_n(*state, 1, 3);
    assert_int_equal(rp_events_read(*state, got, RP_EVENTS_MAX, &n, &dropped), RP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(dropped, 0);
    assert_int_equal(got[0].kind, RP_EVENT_OOM);
    assert_string_equal(got[0].app, "sensor");
    assert_string_equal(got[0].reason, "memory 1024 KB");
    assert_true(got[0].at > 1700000000);
    assert_string_equal(got[2].reason, "event 2");
    assert_string_equal(rp_event_kind_name(got[0].kind), "oom");
    assert_string_equal(rp_event_kind_name(RP_EVENT_SYSCALL), "syscall");
    assert_string_equal(rp_event_kind_name((rp_event_kind_t)999), "unknown");
    /* max smaller than what is kept: the newest, still oldest first */
    assert_int_equal(rp_events_read(*state, got, 2, &n, &dropped), RP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(got[0].reason, "event 1");
    assert_string_equal(got[1].reason, "event 2");
}

static void bounded_drops_counted(void **state)
{
    size_t n;
    uint64_t dropped;
    char path[256];
    off_t size;
    int fd;

    record_n(*state, 0, RP_EVENTS_MAX + 7);
    assert_int_equal(rp_events_read(*state, got, RP_EVENTS_MAX + 10, &n, &dropped), RP_OK);
    assert_int_equal(n, RP_EVENTS_MAX);
    assert_int_equal(dropped, 7);
    assert_string_equal(got[0].reason, "event 7");
    assert_string_equal(got[RP_EVENTS_MAX - 1].reason, "event 1006");
    /* the file does not grow past its slots */
    log_file(*state, path, sizeof(path));
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    size = lseek(fd, 0, SEEK_END);
    close(fd);
    assert_int_equal(size, (off_t)SLOT * (1 + RP_EVENTS_MAX));
}

static void torn_last_record_ignored(void **state)
{
    size_t n;
    uint64_t dropped;
    char path[256], junk[SLOT / 2];
    int fd;

    record_n(*state, 0, 5);
    /* A crash tore event 4's slot half-way, after the header had been updated (worst case). */
    log_file(*state, path, sizeof(path));
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    memset(junk, 'X', sizeof(junk));
    assert_int_equal(pwrite(fd, junk, sizeof(junk), (off_t)SLOT * (1 + 4) + SLOT / 2),
                     (ssize_t)sizeof(junk));
    close(fd);
    assert_int_equal(rp_events_read(*state, got, RP_EVENTS_MAX, &n, &dropped), RP_OK);
    assert_int_equal(n, 4);
    assert_int_equal(dropped, 0);
    assert_string_equal(got[3].reason, "event 3");
    /* and the log goes on after it */
    record_n(*state, 5, 6);
    assert_int_equal(rp_events_read(*state, got, RP_EVENTS_MAX, &n, &dropped), RP_OK);
    assert_int_equal(n, 5);
    assert_int_equal(dropped, 1); /* event 4: recorded once, lost to the tear, counted */
    assert_string_equal(got[4].reason, "event 5");
}

static void lagging_header_never_overwrites(void **state)
{
    size_t n;
    uint64_t dropped;
    char path[256];
    uint8_t hdr[SLOT];
    uint64_t next;
    int fd;

    record_n(*state, 0, 3);
    /* A crash between event 2's record and its header write: the header still says 2. */
    log_file(*state, path, sizeof(path));
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, hdr, SLOT, 0), SLOT);
    memcpy(&next, hdr + 8, 8);
    assert_int_equal(next, 3);
    next = 2;
    memcpy(hdr + 8, &next, 8);
    assert_int_equal(pwrite(fd, hdr, SLOT, 0), SLOT);
    close(fd);
    record_n(*state, 3, 4);
    assert_int_equal(rp_events_read(*state, got, RP_EVENTS_MAX, &n, &dropped), RP_OK);
    assert_int_equal(n, 4);
    assert_int_equal(dropped, 0);
    assert_string_equal(got[2].reason, "event 2");
    assert_string_equal(got[3].reason, "event 3");
}

static void long_fields_bounded(void **state)
{
    char big[1000];
    size_t n;
    uint64_t dropped;

    memset(big, 'r', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(rp_event_record(*state, RP_EVENT_FILE, big, big), RP_OK);
    assert_int_equal(rp_events_read(*state, got, 1, &n, &dropped), RP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(got[0].app), RP_COMPONENT_NAME_MAX);
    assert_int_equal(strlen(got[0].reason), RP_EVENT_REASON_MAX);
}

/* Paging by number (the monitor's EVENTS, the status report's cursor): each event once, in order,
 * the cursor carried across pages; events pushed out before they were read are skipped. */
static void read_from_cursor(void **state)
{
    uint64_t next = 99, dropped = 99, from = 0, seen = 0;
    bool more = true;
    size_t n = 99;

    assert_int_equal(rp_events_read_from(*state, 5, got, 16, &n, &next, &more, &dropped), RP_OK);
    assert_true(n == 0 && next == 0 && !more && dropped == 0); /* no log: from the start */
    record_n(*state, 0, 40);
    do {
        assert_int_equal(rp_events_read_from(*state, from, got, 16, &n, &next, &more, &dropped),
                         RP_OK);
        for (size_t i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof(want), "event %llu", (unsigned long long)seen);
            assert_true(got[i].seq == seen);
            assert_string_equal(got[i].reason, want);
            seen++;
        }
        assert_true(next == seen);
        from = next;
    } while (more);
    assert_true(seen == 40 && dropped == 0);
    /* Nothing new: an empty page, the cursor kept. */
    assert_int_equal(rp_events_read_from(*state, 40, got, 16, &n, &next, &more, &dropped), RP_OK);
    assert_true(n == 0 && next == 40 && !more);
    /* A cursor past the log (a log made anew): rewound to its next number. */
    assert_int_equal(rp_events_read_from(*state, 500, got, 16, &n, &next, &more, &dropped), RP_OK);
    assert_true(n == 0 && next == 40 && !more);
    /* A full page exactly at the end says no more. */
    assert_int_equal(rp_events_read_from(*state, 24, got, 16, &n, &next, &more, &dropped), RP_OK);
    assert_true(n == 16 && next == 40 && !more);
    /* Past the log's bound: the oldest kept comes first, the rest counted as dropped. */
    record_n(*state, 40, RP_EVENTS_MAX + 10);
    assert_int_equal(rp_events_read_from(*state, 3, got, 16, &n, &next, &more, &dropped), RP_OK);
    assert_true(n == 16 && more && dropped == 10);
    assert_true(got[0].seq == 10 && next == 26);
    assert_string_equal(got[0].reason, "event 10");
}

/* The restart-loop rule (events.h): the 5th exit within 10 minutes starts a loop, said once;
 * exits spread wider end it; the next loop is said again. */
static void restart_loop_rule(void **state)
{
    rp_event_loop_t l = {0};
    int64_t t = 1000000;

    (void)state;
    /* 4 quick exits: no loop yet; the 5th, 15 s in (the supervisor's backoff): a loop. */
    for (int i = 0; i < RP_EVENT_LOOP_EXITS - 1; i++)
        assert_false(rp_event_loop_note(&l, t + (1 << i) - 1));
    assert_true(rp_event_loop_note(&l, t + 15));
    /* It goes on, a minute apart: the same loop, not said again. */
    for (int i = 1; i <= 20; i++)
        assert_false(rp_event_loop_note(&l, t + 15 + 60 * i));
    /* Exits more than 10 minutes apart for the last 5: over. */
    t += 15 + 60 * 20;
    for (int i = 1; i <= RP_EVENT_LOOP_EXITS; i++)
        assert_false(rp_event_loop_note(&l, t + 200 * i));
    assert_false(l.in_loop);
    /* A new storm: the 5th exit within the window is a new loop, said. */
    t += 200 * RP_EVENT_LOOP_EXITS + 1000;
    for (int i = 0; i < RP_EVENT_LOOP_EXITS - 1; i++)
        assert_false(rp_event_loop_note(&l, t + i));
    assert_true(rp_event_loop_note(&l, t + 10));
    /* Just at the bound: 5 exits spanning exactly 600 s are a loop; 601 s are not. */
    rp_event_loop_t m = {0}, o = {0};
    for (int i = 0; i < RP_EVENT_LOOP_EXITS - 1; i++) {
        assert_false(rp_event_loop_note(&m, t + 150 * i));
        assert_false(rp_event_loop_note(&o, t + 150 * i));
    }
    assert_true(rp_event_loop_note(&m, t + RP_EVENT_LOOP_SECONDS));
    assert_false(rp_event_loop_note(&o, t + RP_EVENT_LOOP_SECONDS + 1));
    /* The kinds' names travel (the agent reports them by these names). */
    assert_string_equal(rp_event_kind_name(RP_EVENT_EXIT), "exit");
    assert_string_equal(rp_event_kind_name(RP_EVENT_RESTART_LOOP), "restart_loop");
    assert_string_equal(rp_event_kind_name(RP_EVENT_HEALTH), "health");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(empty_reads_empty, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(read_back_in_order, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(bounded_drops_counted, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(torn_last_record_ignored, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(lagging_header_never_overwrites, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(long_fields_bounded, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(read_from_cursor, make_dir, remove_dir),
        cmocka_unit_test(restart_loop_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
