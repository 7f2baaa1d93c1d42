/*
 * Unit test: the bucket that bounds the writes of an app's log (device/launcher/lograte.c), on a
 * clock the test drives: a start-up's chatter goes through whole; an app that writes without
 * pause gets at most RP_COMPARTMENT_LOG_BURST + t * RP_COMPARTMENT_LOG_RATE bytes into its log over
 * any t (the dropped lines counted), a day's worst case among them, and every byte it wrote is
 * either written or counted in a dropped line; writing resumes, with its line, only after a
 * second's refill (or at the end); a new run starts with what the last one left: its record
 * (its start-up lines whole after a run that wrote little, no fresh burst after a flood, the bound
 * kept over a day of restarts), or without one the refill since its log's last write; a record
 * that is not one, or stale, is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compartment.h"
#include "lograte.h"

#define RATE RP_COMPARTMENT_LOG_RATE
#define BURST RP_COMPARTMENT_LOG_BURST
#define LINE RP_LOGRATE_LINE_MAX
#define T0 1000000         /* any start: the bucket reads no clock of its own */
#define W0 1700000000000LL /* a wall clock's ms, for the records */

/* The count a dropped line says. */
static uint64_t said(const char *line)
{
    char *end;
    unsigned long long n = strtoull(line[0] == '\n' ? line + 1 : line, &end, 10);
    assert_true(strncmp(end, " bytes dropped: the app wrote faster than", 41) == 0);
    return n;
}

static void start_up_chatter_goes_through_whole(void **state)
{
    rp_lograte_t b;
    char line[LINE + 1];
    (void)state;

    rp_lograte_init(&b, T0, -1);
    assert_int_equal(rp_lograte_take(&b, T0, 100 * 1024), 100 * 1024);
    assert_int_equal(rp_lograte_take(&b, T0, 20 * 1024), 20 * 1024);
    assert_int_equal(b.dropped, 0);
    assert_int_equal(rp_lograte_wait_ms(&b, T0), -1);
    assert_int_equal(rp_lograte_line(&b, T0 + 60000, true, false, line, sizeof(line)), 0);
}

static void a_flood_is_held_to_the_bound(void **state)
{
    rp_lograte_t b;
    char line[LINE + 1];
    uint64_t offered = 0, written = 0, app = 0, counted = 0, lines = 0;
    (void)state;

    /* A day of an app writing a pipe's worth (64 KiB) every 10 ms, about 6 MiB a second. */
    rp_lograte_init(&b, T0, -1);
    for (int64_t t = 0; t <= 86400 * 1000; t += 10) {
        size_t n = rp_lograte_line(&b, T0 + t, false, false, line, sizeof(line));
        if (n > 0) {
            assert_true(n <= LINE);
            assert_int_equal(line[n - 1], '\n');
            counted += said(line);
            written += n;
            lines++;
        }
        size_t k = rp_lograte_take(&b, T0 + t, RP_COMPARTMENT_LOG_CHUNK);
        written += k;
        app += k;
        offered += RP_COMPARTMENT_LOG_CHUNK;
        /* the bound, at every moment */
        assert_true(written <= (uint64_t)BURST + (uint64_t)t * RATE / 1000);
    }
    /* the day's worst case docs/compartments.md states, in bytes */
    assert_true(written <= 354025472ULL);
    assert_int_equal((uint64_t)BURST + 86400ULL * RATE, 354025472ULL);
    /* not starved: nearly all of it used (a line and its reserve a second, at most) */
    assert_true(written >= 86400ULL * (RATE - 2 * LINE));
    /* a line a second or so (a second's refill less the reserve), not one a refill */
    assert_true(lines >= 86400 && lines <= 90000);
    /* every byte written or said dropped (the last drop said at the end) */
    size_t n = rp_lograte_line(&b, T0 + 86400 * 1000 + 1, true, false, line, sizeof(line));
    assert_true(n > 0);
    counted += said(line);
    assert_int_equal(offered, app + counted);
    assert_int_equal(b.dropped, 0);
}

static void writing_resumes_after_a_seconds_refill(void **state)
{
    rp_lograte_t b;
    char line[LINE + 1];
    (void)state;

    rp_lograte_init(&b, T0, -1);
    assert_int_equal(rp_lograte_take(&b, T0, BURST + 1000), BURST - LINE);
    assert_int_equal(b.dropped, LINE + 1000);
    /* dropping: nothing more goes through, however little, until the line */
    assert_int_equal(rp_lograte_take(&b, T0 + 500, 1), 0);
    assert_int_equal(b.dropped, LINE + 1001);
    /* the bucket held LINE bytes: a second's refill is (RATE - LINE) / RATE s away, rounded up */
    int64_t wait = rp_lograte_wait_ms(&b, T0 + 500);
    assert_int_equal(wait, (int64_t)(1000 * (RATE - LINE) + RATE - 1) / RATE - 500);
    assert_int_equal(rp_lograte_line(&b, T0 + 500 + wait - 1, false, false, line, sizeof(line)), 0);
    size_t n = rp_lograte_line(&b, T0 + 500 + wait, false, false, line, sizeof(line));
    assert_int_equal(n, strlen(line));
    assert_string_equal(line, "1129 bytes dropped: the app wrote faster than its log takes (4096 "
                              "bytes a second, 131072 at once)\n");
    assert_int_equal(said(line), LINE + 1001);
    assert_int_equal(rp_lograte_wait_ms(&b, T0 + 500 + wait), -1);
    /* writing again: what the second left, past the line and the reserve */
    assert_int_equal(rp_lograte_take(&b, T0 + 500 + wait, RATE), (500 + wait) * RATE / 1000 - n);
}

static void the_last_drop_is_said_at_the_end(void **state)
{
    rp_lograte_t b;
    char line[LINE + 1];
    (void)state;

    rp_lograte_init(&b, T0, -1);
    (void)rp_lograte_take(&b, T0, 2 * BURST);
    assert_int_equal(rp_lograte_line(&b, T0 + 10, false, true, line, sizeof(line)), 0);
    size_t n = rp_lograte_line(&b, T0 + 10, true, true, line, sizeof(line));
    assert_true(n > 0 && line[0] == '\n' && line[n - 1] == '\n'); /* its own line */
    assert_int_equal(said(line), BURST + LINE);
}

static void a_new_run_starts_with_what_the_last_left(void **state)
{
    rp_lograte_t b;
    char line[LINE + 1];
    (void)state;

    /* its log written just now: nothing yet, all dropped, said when a second's refill is in */
    rp_lograte_init(&b, T0, 0);
    assert_int_equal(rp_lograte_take(&b, T0, 10), 0);
    assert_int_equal(rp_lograte_line(&b, T0, true, false, line, sizeof(line)), 0);
    assert_int_equal(rp_lograte_wait_ms(&b, T0), 1000);
    assert_true(rp_lograte_line(&b, T0 + 1000, false, false, line, sizeof(line)) > 0);
    assert_int_equal(said(line), 10);
    /* written 2 s ago: two seconds' refill */
    rp_lograte_init(&b, T0, 2000);
    assert_int_equal(rp_lograte_take(&b, T0, BURST), 2 * RATE - LINE);
    /* an hour ago, or not known: full, never more */
    rp_lograte_init(&b, T0, 3600 * 1000);
    assert_int_equal(rp_lograte_take(&b, T0, 2 * BURST), BURST - LINE);
    rp_lograte_init(&b, T0, INT64_MAX);
    assert_int_equal(rp_lograte_take(&b, T0, 2 * BURST), BURST - LINE);
}

static void a_clock_that_goes_back_gains_nothing(void **state)
{
    rp_lograte_t b;
    (void)state;

    rp_lograte_init(&b, T0, 1000);
    assert_int_equal(rp_lograte_take(&b, T0 - 5000, BURST), RATE - LINE);
    assert_int_equal(rp_lograte_take(&b, T0 - 4000, BURST), 0); /* dropping, and no gain */
    assert_int_equal(rp_lograte_wait_ms(&b, T0), (1000 * (RATE - LINE) + RATE - 1) / RATE);
}

/* A run writes a line (an install's trial), exits, and the next starts 1 ms later: its start-up
 * lines go in whole (the log's mtime alone would say the bucket was emptied). */
static void a_restart_soon_after_a_little_keeps_its_start_up(void **state)
{
    rp_lograte_t b;
    uint8_t rec[RP_LOGRATE_RECORD_LEN];
    (void)state;

    rp_lograte_init(&b, T0, -1);
    assert_int_equal(rp_lograte_take(&b, T0, 43), 43);
    rp_lograte_save(&b, T0 + 2, W0 + 2, rec);
    memset(&b, 0x55, sizeof(b));
    /* its log written at W0 (before the record), the next run at W0 + 3 on another monotonic */
    assert_true(rp_lograte_restore(&b, 5 * T0, W0 + 3, W0, rec, sizeof(rec)));
    assert_int_equal(b.dropped, 0);
    assert_int_equal(rp_lograte_take(&b, 5 * T0, 4 * 1024), 4 * 1024);
    assert_int_equal(rp_lograte_take(&b, 5 * T0, 100 * 1024), 100 * 1024);
    /* what is left: the one bucket less the 43 and the 104 KiB, plus the 3 ms of refill (12.288
     * bytes, of which the record kept 12.096: it keeps whole bytes), less the reserve */
    assert_int_equal(rp_lograte_take(&b, 5 * T0, BURST), BURST - LINE - 43 - 104 * 1024 + 12);
}

/* A run floods, exits, and is started again at once: nothing new to write with, the refill since
 * alone; and restarted every second through a day of flooding, its log keeps the one bound. */
static void a_restart_after_a_flood_gets_no_fresh_burst(void **state)
{
    rp_lograte_t b;
    uint8_t rec[RP_LOGRATE_RECORD_LEN];
    char line[LINE + 1];
    uint64_t written = 0;
    (void)state;

    rp_lograte_init(&b, T0, -1);
    assert_int_equal(rp_lograte_take(&b, T0, 2 * BURST), BURST - LINE);
    size_t n = rp_lograte_line(&b, T0 + 1, true, false, line, sizeof(line));
    assert_true(n > 0);
    rp_lograte_save(&b, T0 + 1, W0 + 1, rec);
    assert_true(rp_lograte_restore(&b, T0 + 2, W0 + 2, W0 + 1, rec, sizeof(rec)));
    /* it held LINE - n + 4 bytes (1 ms of refill), 4 more now: below the reserve, nothing goes */
    assert_int_equal(rp_lograte_take(&b, T0 + 2, 1000), 0);
    int64_t milli = (int64_t)(LINE - n + 4) * 1000 + RATE;
    assert_int_equal(rp_lograte_wait_ms(&b, T0 + 2), (1000 * RATE - milli + RATE - 1) / RATE);

    /* a day of runs of a second each, each flooding (64 KiB every 10 ms) and started again at once
     * (no backoff at all), the wall clock where the monotonic one is */
    rp_lograte_init(&b, T0, -1);
    for (int64_t t = 0; t <= 86400 * 1000; t += 10) {
        if (t % 1000 == 0 && t > 0) {
            written += rp_lograte_line(&b, T0 + t, true, false, line, sizeof(line));
            rp_lograte_save(&b, T0 + t, W0 + t, rec);
            memset(&b, 0, sizeof(b));
            assert_true(rp_lograte_restore(&b, T0 + t, W0 + t, W0 + t, rec, sizeof(rec)));
        }
        n = rp_lograte_line(&b, T0 + t, false, false, line, sizeof(line));
        written += n + rp_lograte_take(&b, T0 + t, RP_COMPARTMENT_LOG_CHUNK);
        assert_true(written <= (uint64_t)BURST + (uint64_t)t * RATE / 1000);
    }
    assert_true(written <= 354025472ULL);
}

/* A step of the wall clock gives a restarted app one burst, no more (review r9dev L2; the bound's
 * stated exception, docs/compartments.md): six runs a second apart on the real clock, each
 * flooding to empty, while the wall clock steps a day forward between two of them (the record's
 * refill then says a day), and an hour back during another after its last write (its record then
 * predates the log's mtime, stale, and the mtime is ahead of the clock: full). Only the first run
 * and the run after each step start full; the others have the second's refill. */
static void a_step_of_the_wall_clock_gives_one_burst(void **state)
{
    rp_lograte_t b;
    uint8_t rec[RP_LOGRATE_RECORD_LEN];
    char line[LINE + 1];
    int64_t wall = W0, mtime = -1, step[] = {0, 86400 * 1000, 0, -3600 * 1000, 0, 0};
    uint64_t written = 0;
    ssize_t n = -1;
    (void)state;

    for (int64_t run = 0; run < 6; run++) {
        int64_t t = T0 + run * 1000; /* each run a second after the last began */
        uint64_t took;
        if (step[run] > 0)
            wall += step[run]; /* between the runs */
        rp_lograte_start(&b, t, wall, mtime, rec, n);
        took = rp_lograte_take(&b, t, 2 * BURST);
        took += rp_lograte_line(&b, t + 1, true, false, line, sizeof(line));
        written += took;
        if (run == 0 || step[run] > 0 || step[run - 1] < 0)
            assert_true(took >= BURST - LINE && took <= BURST);
        else
            assert_true(took <= RATE + LINE);
        mtime = wall;
        if (step[run] < 0)
            wall += step[run]; /* during the run, after its last write */
        rp_lograte_save(&b, t + 1, wall + 1, rec);
        n = sizeof(rec);
        wall += 1000;
    }
    assert_true(written <= 3 * (uint64_t)BURST + 3 * (uint64_t)(RATE + LINE));
}

static void a_record_not_one_or_stale_is_refused(void **state)
{
    rp_lograte_t b, was;
    uint8_t rec[RP_LOGRATE_RECORD_LEN], bad[RP_LOGRATE_RECORD_LEN + 1];
    (void)state;

    rp_lograte_init(&b, T0, 1000); /* holds a second's refill */
    rp_lograte_save(&b, T0, W0, rec);
    memcpy(&was, &b, sizeof(b));
    /* none, short, long, another magic, past the burst */
    assert_false(rp_lograte_restore(&b, T0, W0, -1, rec, 0));
    assert_false(rp_lograte_restore(&b, T0, W0, -1, rec, sizeof(rec) - 1));
    memcpy(bad, rec, sizeof(rec));
    bad[sizeof(rec)] = 0;
    assert_false(rp_lograte_restore(&b, T0, W0, -1, bad, sizeof(bad)));
    bad[0] = 'X';
    assert_false(rp_lograte_restore(&b, T0, W0, -1, bad, sizeof(rec)));
    memcpy(bad, rec, sizeof(rec));
    bad[4] = 1, bad[5] = 0, bad[6] = 2, bad[7] = 0; /* 131,073 */
    assert_false(rp_lograte_restore(&b, T0, W0, -1, bad, sizeof(rec)));
    /* stale: the log was written after it (a run killed before it saved one) */
    assert_false(rp_lograte_restore(&b, T0, W0 + 10, W0 + 1, rec, sizeof(rec)));
    assert_memory_equal(&b, &was, sizeof(b));
    /* the wall clock set back since: what it held, no refill; an hour on: full, never more */
    assert_true(rp_lograte_restore(&b, T0, W0 - 60000, -1, rec, sizeof(rec)));
    assert_int_equal(rp_lograte_take(&b, T0, BURST), RATE - LINE);
    assert_true(rp_lograte_restore(&b, T0, W0 + 3600 * 1000, W0, rec, sizeof(rec)));
    assert_int_equal(rp_lograte_take(&b, T0, 2 * BURST), BURST - LINE);
    /* a full bucket's record says the burst, and is taken */
    rp_lograte_save(&b, T0 + 3600 * 1000, W0, rec);
    assert_int_equal(rec[4] | rec[5] << 8 | rec[6] << 16, BURST);
    assert_true(rp_lograte_restore(&b, T0, W0, W0, rec, sizeof(rec)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_up_chatter_goes_through_whole),
        cmocka_unit_test(a_flood_is_held_to_the_bound),
        cmocka_unit_test(writing_resumes_after_a_seconds_refill),
        cmocka_unit_test(the_last_drop_is_said_at_the_end),
        cmocka_unit_test(a_new_run_starts_with_what_the_last_left),
        cmocka_unit_test(a_clock_that_goes_back_gains_nothing),
        cmocka_unit_test(a_restart_soon_after_a_little_keeps_its_start_up),
        cmocka_unit_test(a_restart_after_a_flood_gets_no_fresh_burst),
        cmocka_unit_test(a_step_of_the_wall_clock_gives_one_burst),
        cmocka_unit_test(a_record_not_one_or_stale_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
