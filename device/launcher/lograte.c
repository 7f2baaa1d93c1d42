/* The log's bucket (lograte.h). */
#include <stdio.h>

#include "compartment.h"
#include "lograte.h"

#define MILLI_MAX ((uint64_t)RP_COMPARTMENT_LOG_BURST * 1000)
#define MILLI_RESUME ((uint64_t)RP_COMPARTMENT_LOG_RATE * 1000)
#define MILLI_LINE ((uint64_t)RP_LOGRATE_LINE_MAX * 1000)

_Static_assert(RP_COMPARTMENT_LOG_RATE >= RP_LOGRATE_LINE_MAX &&
                   RP_COMPARTMENT_LOG_BURST >= RP_COMPARTMENT_LOG_RATE,
               "the bucket resumes at a second's refill, which holds the dropped line");

static void refill(rp_lograte_t *b, int64_t now_ms)
{
    if (now_ms <= b->at_ms)
        return; /* the same ms (or a clock that went back: nothing gained) */
    uint64_t gain = (uint64_t)(now_ms - b->at_ms) * RP_COMPARTMENT_LOG_RATE;
    b->milli = gain >= MILLI_MAX - b->milli ? MILLI_MAX : b->milli + gain;
    b->at_ms = now_ms;
}

void rp_lograte_init(rp_lograte_t *b, int64_t now_ms, int64_t idle_ms)
{
    b->dropped = 0;
    b->at_ms = now_ms;
    b->milli = MILLI_MAX;
    if (idle_ms >= 0 && (uint64_t)idle_ms < MILLI_MAX / RP_COMPARTMENT_LOG_RATE)
        b->milli = (uint64_t)idle_ms * RP_COMPARTMENT_LOG_RATE;
}

size_t rp_lograte_take(rp_lograte_t *b, int64_t now_ms, size_t n)
{
    uint64_t room = 0;

    refill(b, now_ms);
    if (b->dropped == 0 && b->milli > MILLI_LINE)
        room = (b->milli - MILLI_LINE) / 1000;
    if ((uint64_t)n > room) {
        b->dropped += (uint64_t)n - room;
        n = (size_t)room;
    }
    b->milli -= (uint64_t)n * 1000;
    return n;
}

size_t rp_lograte_line(rp_lograte_t *b, int64_t now_ms, bool last, bool mid_line, char *out,
                       size_t cap)
{
    refill(b, now_ms);
    if (b->dropped == 0 || b->milli < (last ? MILLI_LINE : MILLI_RESUME))
        return 0;
    int n = snprintf(out, cap,
                     "%s%llu bytes dropped: the app wrote faster than its log takes (%d bytes a "
                     "second, %d at once)\n",
                     mid_line ? "\n" : "", (unsigned long long)b->dropped, RP_COMPARTMENT_LOG_RATE,
                     RP_COMPARTMENT_LOG_BURST);
    if (n < 0 || (size_t)n >= cap || n > RP_LOGRATE_LINE_MAX)
        return 0; /* cannot be: a 20-digit count fits */
    b->milli -= (uint64_t)n * 1000;
    b->dropped = 0;
    return (size_t)n;
}

int64_t rp_lograte_wait_ms(const rp_lograte_t *b, int64_t now_ms)
{
    if (b->dropped == 0)
        return -1;
    uint64_t milli = b->milli;
    if (now_ms > b->at_ms)
        milli += (uint64_t)(now_ms - b->at_ms) * RP_COMPARTMENT_LOG_RATE;
    if (milli >= MILLI_RESUME)
        return 0;
    return (int64_t)((MILLI_RESUME - milli + RP_COMPARTMENT_LOG_RATE - 1) /
                     RP_COMPARTMENT_LOG_RATE);
}
