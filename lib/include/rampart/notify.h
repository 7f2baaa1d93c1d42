/*
 * Telling the service manager how a daemon is (systemd's sd_notify protocol: Type=notify units):
 * READY=1, STATUS=, RELOADING=1, STOPPING=1, and the watchdog's WATCHDOG=1. Nothing happens
 * when no manager asked ($NOTIFY_SOCKET unset). Two backends: rampart_notify uses
 * libsystemd's sd_notify (the service and the agent); rampart_notify_small, a few lines of
 * socket code, is the privileged monitor's, which must stay small (`make size`). Called from one
 * thread (the daemon's main loop).
 */
#ifndef RAMPART_NOTIFY_H
#define RAMPART_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Send a state ("READY=1\nSTATUS=serving"), printf-style. Best effort: a manager that cannot be
 * told is logged once at debug level, never an error of the daemon's. */
void rp_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog's timeout the manager set for this process (WATCHDOG_USEC, WATCHDOG_PID), in
 * microseconds; 0 when there is none. */
uint64_t rp_notify_watchdog_usec(void);

/* Called from the place that proves the daemon's loop turns: sends WATCHDOG=1 when half the
 * timeout has passed since the last one (nothing without a watchdog). Returns whether it sent. */
bool rp_notify_watchdog(void);

/* The backend's (notify_systemd.c, notify_socket.c): send one message; 1 sent, 0 no manager,
 * -1 failed. */
int rp_notify_send(const char *state);

#endif /* RAMPART_NOTIFY_H */
