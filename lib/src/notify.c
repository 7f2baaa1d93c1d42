/*
 * The service manager's notifications (rampart/notify.h): what both backends share - the message
 * and the watchdog's pace. notify_systemd.c or notify_socket.c sends.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "rampart/log.h"
#include "rampart/notify.h"

void rp_notify(const char *fmt, ...)
{
    static int warned;
    char state[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(state, sizeof(state), fmt, ap);
    va_end(ap);
    if (rp_notify_send(state) < 0 && !warned++)
        rp_log_debug("cannot tell the service manager (NOTIFY_SOCKET)");
}

bool rp_notify_watchdog(void)
{
    static uint64_t usec, last;
    static int looked;
    struct timespec t;
    uint64_t now;

    if (!looked++)
        usec = rp_notify_watchdog_usec();
    if (usec == 0 || clock_gettime(CLOCK_MONOTONIC, &t) != 0)
        return false;
    now = (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
    if (last != 0 && now - last < usec / 2)
        return false;
    last = now;
    rp_notify("WATCHDOG=1");
    return true;
}
