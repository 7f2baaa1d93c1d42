/*
 * The one logger of Rampart's programs: leveled messages to stderr, prefixed with the program's
 * name. Nothing secret is ever passed to it.
 */
#ifndef RAMPART_LOG_H
#define RAMPART_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

typedef enum rp_log_level {
    RP_LOG_ERROR = 0,
    RP_LOG_WARN = 1,
    RP_LOG_INFO = 2,
    RP_LOG_DEBUG = 3,
} rp_log_level_t;

/* The name printed before each message ("rampart"); the pointer is kept, not copied. */
void rp_log_init(const char *prog, rp_log_level_t level);
void rp_log_set_level(rp_log_level_t level);
rp_log_level_t rp_log_get_level(void);

void rp_log(rp_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether a message said at most once every `every` seconds is due now: true for one caller per
 * period, whichever thread asks (*last: when it was last said, on the monotonic clock, so that a
 * step of the wall clock neither silences it nor repeats it; 0 at first: due). */
bool rp_log_due(atomic_llong *last, long every);

#define rp_log_error(...) rp_log(RP_LOG_ERROR, __VA_ARGS__)
#define rp_log_warn(...) rp_log(RP_LOG_WARN, __VA_ARGS__)
#define rp_log_info(...) rp_log(RP_LOG_INFO, __VA_ARGS__)
#define rp_log_debug(...) rp_log(RP_LOG_DEBUG, __VA_ARGS__)

#endif /* RAMPART_LOG_H */
