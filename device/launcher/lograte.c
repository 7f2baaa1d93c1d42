/* The log's bucket (lograte.h). */
#include <stdio.h>
#include <string.h>

#include "compartment.h"
#include "lograte.h"
#include "rampart/bytes.h"

#define MILLI_MAX ((uint64_t)RP_COMPARTMENT_LOG_BURST * 1000)
#define MILLI_RESUME ((uint64_t)RP_COMPARTMENT_LOG_RATE * 1000)
#define MILLI_LINE ((uint64_t)RP_LOGRATE_LINE_MAX * 1000)

_Static_assert(RP_COMPARTMENT_LOG_RATE >= RP_LOGRATE_LINE_MAX &&
                   RP_COMPARTMENT_LOG_BURST >= RP_COMPARTMENT_LOG_RATE,
               "the bucket resumes at a second's refill, which holds the dropped line");

#define RECORD_MAGIC "RPLB"

/* milli (<= MILLI_MAX) after ms of refill (ms <= 0: none), at most full. */
static uint64_t refilled(uint64_t milli, int64_t ms)
{
    if (ms <= 0)
        return milli;
    if ((uint64_t)ms >= MILLI_MAX / RP_COMPARTMENT_LOG_RATE)
        return MILLI_MAX;
    uint64_t gain = (uint64_t)ms * RP_COMPARTMENT_LOG_RATE;
    return gain >= MILLI_MAX - milli ? MILLI_MAX : milli + gain;
}

static void refill(rp_lograte_t *b, int64_t now_ms)
{
    if (now_ms <= b->at_ms)
        return; /* the same ms (or a clock that went back: nothing gained) */
    b->milli = refilled(b->milli, now_ms - b->at_ms);
    b->at_ms = now_ms;
}

void rp_lograte_init(rp_lograte_t *b, int64_t now_ms, int64_t idle_ms)
{
    b->dropped = 0;
    b->at_ms = now_ms;
    b->milli = idle_ms < 0 ? MILLI_MAX : refilled(0, idle_ms);
}

void rp_lograte_save(const rp_lograte_t *b, int64_t now_ms, int64_t wall_ms,
                     uint8_t out[RP_LOGRATE_RECORD_LEN])
{
    memcpy(out, RECORD_MAGIC, 4);
    rp_le_put(out + 4, refilled(b->milli, now_ms - b->at_ms) / 1000, 4);
    rp_le_put(out + 8, (uint64_t)(wall_ms > 0 ? wall_ms : 0), 8);
}

bool rp_lograte_restore(rp_lograte_t *b, int64_t now_ms, int64_t wall_ms, int64_t written_ms,
                        const uint8_t *p, size_t n)
{
    if (n != RP_LOGRATE_RECORD_LEN || memcmp(p, RECORD_MAGIC, 4) != 0)
        return false;
    uint64_t held = rp_le_get(p + 4, 4), at = rp_le_get(p + 8, 8);
    if (held > RP_COMPARTMENT_LOG_BURST || at > INT64_MAX || (int64_t)at < written_ms)
        return false;
    b->dropped = 0;
    b->at_ms = now_ms;
    b->milli = refilled(held * 1000, wall_ms - (int64_t)at);
    return true;
}

void rp_lograte_start(rp_lograte_t *b, int64_t now_ms, int64_t wall_ms, int64_t written_ms,
                      const uint8_t *p, ssize_t n)
{
    int64_t idle = wall_ms - written_ms - 10; /* (less a jiffy: a file's times are coarse) */

    if (n >= 0 && rp_lograte_restore(b, now_ms, wall_ms, written_ms, p, (size_t)n))
        return;
    rp_lograte_init(b, now_ms, written_ms < 0 || wall_ms < written_ms ? -1 : idle < 0 ? 0 : idle);
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
