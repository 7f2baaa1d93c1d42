/*
 * rp_log_due (lib/src/log.c), "at most every N seconds", on clocks the test drives: this program
 * defines clock_gettime and time, so that log.c's calls reach these (a static library: the
 * executable's definitions are the ones linked), which read the test's wall and monotonic clocks
 * (they stand still but when the test moves them: no second of the real one comes between).
 * The wall clock stepped back a day (one that ran ahead, put right: review r12 L4) must not
 * silence the message for the day, nor a step on repeat it; the first call is due, even in the
 * first second after boot; one caller per period.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "rampart/log.h"

static long long wall = 1795955586; /* the real-time clocks, in seconds */
static long long mono = 1000;       /* every other clock */

static bool wall_clock(clockid_t id)
{
    return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    ts->tv_sec = (time_t)(wall_clock(id) ? wall : mono);
    ts->tv_nsec = 0;
    return 0;
}

time_t time(time_t *t)
{
    if (t != NULL)
        *t = (time_t)wall;
    return (time_t)wall;
}

/* Both clocks on by s seconds: time passing. */
static void pass(long long s)
{
    wall += s;
    mono += s;
}

static void step_back_keeps_saying(void **state)
{
    atomic_llong last = 0;
    (void)state;

    /* said while the wall clock ran a day ahead */
    wall += 86400;
    assert_true(rp_log_due(&last, 60));
    assert_false(rp_log_due(&last, 60));
    pass(59);
    assert_false(rp_log_due(&last, 60));
    pass(1);
    assert_true(rp_log_due(&last, 60));
    /* the wall clock put right: a day back. A minute on, it is due again (it stayed silent for
     * the day and a minute before the fix) */
    wall -= 86400;
    assert_false(rp_log_due(&last, 60));
    pass(60);
    assert_true(rp_log_due(&last, 60));
    assert_false(rp_log_due(&last, 60));
}

static void step_on_does_not_repeat(void **state)
{
    atomic_llong last = 0;
    (void)state;

    assert_true(rp_log_due(&last, 10));
    wall += 3600; /* the wall clock stepped on an hour: still within the 10 s */
    assert_false(rp_log_due(&last, 10));
    pass(10);
    assert_true(rp_log_due(&last, 10));
}

static void first_call_due_after_boot(void **state)
{
    atomic_llong last = 0;
    (void)state;

    /* the monotonic clock at 0 s and then 2 s (a service started with the machine) */
    mono = 0;
    assert_true(rp_log_due(&last, 60));
    assert_false(rp_log_due(&last, 60));
    mono = 2;
    last = 0;
    assert_true(rp_log_due(&last, 60));
    assert_false(rp_log_due(&last, 60));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(step_back_keeps_saying),
        cmocka_unit_test(step_on_does_not_repeat),
        cmocka_unit_test(first_call_due_after_boot),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
