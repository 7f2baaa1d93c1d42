/*
 * The logger: one line per message on stderr, written with a single write so that lines from
 * concurrent processes do not interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "rampart/log.h"

static const char *log_prog = "rampart";
static rp_log_level_t log_level = RP_LOG_INFO;

void rp_log_init(const char *prog, rp_log_level_t level)
{
    if (prog != NULL)
        log_prog = prog;
    log_level = level;
}

void rp_log_set_level(rp_log_level_t level)
{
    log_level = level;
}

rp_log_level_t rp_log_get_level(void)
{
    return log_level;
}

void rp_log(rp_log_level_t level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char line[1024];
    va_list ap;
    int n, m;

    if (level > log_level)
        return;
    n = snprintf(line, sizeof(line), "%s: %s: ", log_prog, names[level]);
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
