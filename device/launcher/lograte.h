/*
 * The bound on the writes of an app's log (compartment.h: RP_COMPARTMENT_LOG_RATE and
 * RP_COMPARTMENT_LOG_BURST; docs/compartments.md, "The app's log"): a token bucket the
 * compartment's init (device/launcher/main.c) asks before it writes what the app wrote. It holds at
 * most RP_COMPARTMENT_LOG_BURST bytes and gains RP_COMPARTMENT_LOG_RATE a second, so over any t
 * seconds the log takes at most BURST + t * RATE bytes, the lines saying what was dropped
 * included. Bytes that find it empty are dropped and counted; writing resumes once it holds a
 * second's refill again (RESUME), with one line saying how many were dropped. The last
 * RP_LOGRATE_LINE_MAX bytes are kept for that line: the app's bytes never take them.
 *
 * The clock is the caller's (ms, monotonic): nothing here reads one, so that a test drives it.
 */
#ifndef RAMPART_LAUNCHER_LOGRATE_H
#define RAMPART_LAUNCHER_LOGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_LOGRATE_LINE_MAX 128 /* the dropped line (rp_lograte_line), its newline included */

typedef struct rp_lograte {
    uint64_t milli;   /* the bytes it holds, times 1000 (a refill's fraction of a byte kept) */
    int64_t at_ms;    /* when it was last refilled */
    uint64_t dropped; /* dropped since writing stopped; 0: writing */
} rp_lograte_t;

/* A full bucket at now_ms, less what the app's earlier runs used: idle_ms is how long ago its log
 * was last written (its mtime: the bucket as it would be had one bucket served every run, or
 * less); idle_ms < 0, not known (an empty log, or a clock set back since): full. */
void rp_lograte_init(rp_lograte_t *b, int64_t now_ms, int64_t idle_ms);

/* Of n bytes the app wrote, how many go to the log now (the first ones); the rest are dropped and
 * counted. None while it is dropping (until rp_lograte_resume). */
size_t rp_lograte_take(rp_lograte_t *b, int64_t now_ms, size_t n);

/* The line that says what was dropped, in out (cap >= RP_LOGRATE_LINE_MAX), and its bytes taken
 * from the bucket: once it holds a second's refill (or last: the app is gone, its log is to be
 * closed), if anything was dropped. mid_line: the log's last byte is not a newline (the line
 * starts on one of its own). Its length (writing resumes), or 0: nothing to say yet, or nothing
 * dropped. */
size_t rp_lograte_line(rp_lograte_t *b, int64_t now_ms, bool last, bool mid_line, char *out,
                       size_t cap);

/* ms until rp_lograte_line has a line to give; -1: nothing was dropped. */
int64_t rp_lograte_wait_ms(const rp_lograte_t *b, int64_t now_ms);

#endif /* RAMPART_LAUNCHER_LOGRATE_H */
