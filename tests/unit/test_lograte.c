/*
 * Unit test: the bucket that bounds the writes of an app's log (device/launcher/lograte.c), on a
 * clock the test drives: a start-up's chatter goes through whole; an app that writes without
 * pause gets at most RP_COMPARTMENT_LOG_BURST + t * RP_COMPARTMENT_LOG_RATE bytes into its log over
 * any t (the dropped lines counted), a day's worst case among them, and every byte it wrote is
 * either written or counted in a dropped line; writing resumes, with its line, only after a
 * second's refill (or at the end); a new run starts with what the last one's writes left.
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
#define T0 1000000 /* any start: the bucket reads no clock of its own */

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_up_chatter_goes_through_whole),
        cmocka_unit_test(a_flood_is_held_to_the_bound),
        cmocka_unit_test(writing_resumes_after_a_seconds_refill),
        cmocka_unit_test(the_last_drop_is_said_at_the_end),
        cmocka_unit_test(a_new_run_starts_with_what_the_last_left),
        cmocka_unit_test(a_clock_that_goes_back_gains_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
