/* The service manager's notifications through libsystemd (rampart/notify.h): the service's and
 * the agent's. */
#include <systemd/sd-daemon.h>

#include "rampart/notify.h"

int rp_notify_send(const char *state)
{
    return sd_notify(0, state);
}

uint64_t rp_notify_watchdog_usec(void)
{
    uint64_t usec = 0;

    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
