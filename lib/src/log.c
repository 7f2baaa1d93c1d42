/*
 * The logger: one line per message on stderr, written with a single write so that lines from
 * concurrent processes do not interleave. When stderr is the journal ($JOURNAL_STREAM names it:
 * a systemd unit's default), each line starts with its syslog priority, "<3>" to "<7>", which
 * journald keeps as the message's level (and takes off the text).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rampart/log.h"

static const char *log_prog = "rampart";
static atomic_int log_level = RP_LOG_INFO; /* atomic: a reload may change it (SIGHUP) */
static int journal = -1;                   /* whether stderr is the journal; -1: not looked */

/* Whether $JOURNAL_STREAM ("device:inode") is stderr's. */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char tail;

    return js != NULL && sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) == 2 &&
           fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

void rp_log_init(const char *prog, rp_log_level_t level)
{
    if (prog != NULL)
        log_prog = prog;
    log_level = level;
    journal = stderr_is_journal();
}

void rp_log_set_level(rp_log_level_t level)
{
    log_level = level;
}

rp_log_level_t rp_log_get_level(void)
{
    return (rp_log_level_t)atomic_load(&log_level);
}

void rp_log(rp_log_level_t level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    static const char priority[] = {'3', '4', '6', '7'}; /* syslog's err, warning, info, debug */
    char line[1024];
    va_list ap;
    int n, m;

    if ((int)level > atomic_load(&log_level))
        return;
    if (journal < 0)
        journal = stderr_is_journal(); /* a program that logs before rp_log_init */
    n = snprintf(line, sizeof(line),
                 "%s%s: %s: ", journal ? (const char[]){'<', priority[level], '>', 0} : "",
                 log_prog, names[level]);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2; /* truncated: keep the newline */
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return; /* nowhere left to report it */
}

bool rp_log_due(atomic_llong *last, long every)
{
    struct timespec ts;
    long long now, then = atomic_load(last);

    /* The monotonic clock: a wall clock stepped back (one that ran ahead, put right) would keep
     * the message silent for the step's length (review r12 L4), one stepped on would say it
     * twice. +1: never 0, which is "never said", in the first second after boot. Without a
     * clock (it cannot fail on Linux): due, so that nothing is lost but the bound. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return true;
    now = (long long)ts.tv_sec + 1;
    return (then == 0 || now - then >= every) && atomic_compare_exchange_strong(last, &then, now);
}
