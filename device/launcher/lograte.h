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
 * One bucket serves all of an app's runs: each ends by saving what its bucket holds in a record
 * (rp_lograte_save) that the next run starts from (rp_lograte_restore), so that a restart gains
 * only the refill since, neither a fresh burst nor less than the last run left.
 *
 * The clocks are the caller's (ms; now_ms monotonic, wall_ms the wall clock, which a record needs:
 * the next run may come after a reboot): nothing here reads one, so that a test drives them.
 */
#ifndef RAMPART_LAUNCHER_LOGRATE_H
#define RAMPART_LAUNCHER_LOGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RP_LOGRATE_LINE_MAX 128  /* the dropped line (rp_lograte_line), its newline included */
#define RP_LOGRATE_RECORD_LEN 16 /* "RPLB", bytes held (u32), at wall ms (u64); little-endian */

typedef struct rp_lograte {
    uint64_t milli;   /* the bytes it holds, times 1000 (a refill's fraction of a byte kept) */
    int64_t at_ms;    /* when it was last refilled */
    uint64_t dropped; /* dropped since writing stopped; 0: writing */
} rp_lograte_t;

/* A bucket at now_ms that was empty idle_ms ago: what a run starts with when its last run left no
 * record (rp_lograte_restore), from how long ago its log was last written (its mtime: the bucket
 * had the last write emptied it, so at most what one bucket serving every run would hold);
 * idle_ms < 0, not known (an empty log, or a clock set back since): full. */
void rp_lograte_init(rp_lograte_t *b, int64_t now_ms, int64_t idle_ms);

/* The record of what b holds at now_ms, dated wall_ms, for the next run (rp_lograte_restore). */
void rp_lograte_save(const rp_lograte_t *b, int64_t now_ms, int64_t wall_ms,
                     uint8_t out[RP_LOGRATE_RECORD_LEN]);

/* A new run's bucket at now_ms (wall_ms on the wall clock) from the record its last run left (p,
 * n bytes as read): what it held then and the refill since (none if the wall clock went back), at
 * most full. written_ms: when the log was last written (wall ms, its mtime; -1: empty), which a
 * record must not predate (the log written since, by a run that saved none: stale). false, b
 * untouched: no record (n = 0), or not one (another length, magic, or a level past the burst), or
 * a stale one; the caller starts from rp_lograte_init. */
bool rp_lograte_restore(rp_lograte_t *b, int64_t now_ms, int64_t wall_ms, int64_t written_ms,
                        const uint8_t *p, size_t n);

/* A new run's bucket at now_ms (wall_ms on the wall clock): from the record its last run left (p,
 * n bytes; n < 0: none, or it could not be read or cleared) if it is one (rp_lograte_restore), else
 * from when the log was last written (written_ms, its mtime; -1: empty): empty then, so the refill
 * since less a jiffy, full if the log is empty or its time ahead of the clock (rp_lograte_init).
 * A step of the wall clock gives one burst at most (docs/compartments.md, "The app's log"). */
void rp_lograte_start(rp_lograte_t *b, int64_t now_ms, int64_t wall_ms, int64_t written_ms,
                      const uint8_t *p, ssize_t n);

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
