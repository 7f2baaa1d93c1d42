/*
 * The app contract: how every run of an app is started and what it is told, the same for the
 * trial an install makes and for each start and restart under `rampart-agent run`
 * (docs/updates.md, "The app contract"). One function starts an app; nothing else does.
 *
 * An app is started from S/components/NAME/{trial,a,b}.run with no arguments, as the leader of a
 * process group of its own, in S/components/NAME/data/ (made 0700, kept across versions), with
 * umask 077, default signal dispositions and an empty signal mask, stdin /dev/null and stdout and
 * stderr appended to S/components/NAME/app.log, descriptor 3 the write end of its ready pipe and
 * no other descriptor, and only this environment:
 *   RAMPART_COMPONENT  its component name
 *   RAMPART_VERSION    the version of its image
 *   RAMPART_READY_FD   3: write "ready" there once it is ready to serve
 *   RAMPART_DATA_DIR   its working directory, as an absolute path
 *   HOME               the same
 *   PATH               /usr/local/bin:/usr/bin:/bin
 * An app the monitor starts in a compartment (device/monitor/compartment.h) may also get its
 * channel to the monitor: descriptor 4, a SOCK_SEQPACKET socket, and in its environment
 *   RAMPART_MONITOR_FD 4: device identity and app-to-app requests (device/app/app_client.h)
 * (only when it has a channel; otherwise descriptor 4 is closed and the variable is absent).
 * "ready" counts only as the first five bytes written there; whatever follows, or anything else,
 * is read and ignored (the agent keeps reading, so writing never blocks the app or kills it),
 * but for its time: once ready, every later write there is a heartbeat (run.heard), which an app
 * whose manifest sets WatchdogSeconds must give at least that often (device/monitor/apps.c).
 */
#ifndef RAMPART_AGENT_APP_H
#define RAMPART_AGENT_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "rampart/error.h"

#define RP_APP_READY_FD 3         /* the descriptor number an app is told */
#define RP_APP_MONITOR_FD 4       /* its channel to the monitor, when it has one */
#define RP_APP_STOP_GRACE_MS 5000 /* SIGTERM, then SIGKILL after this */
#define RP_APP_HEALTH_SECONDS 3   /* the default health window */

/* One run of an app. */
typedef struct rp_app_run {
    pid_t pid;    /* the app, leader of its process group; 0: not running */
    int ready_fd; /* the agent's end of the ready pipe, non-blocking; -1 once closed */
    bool ready;   /* it said "ready" */
    bool refused; /* its first bytes were not "ready": it will never count as having said so */
    char said[8];
    size_t nsaid;
    struct timespec started; /* CLOCK_MONOTONIC */
    struct timespec heard;   /* CLOCK_MONOTONIC: when it last wrote there, once ready */
} rp_app_run_t;

/*
 * Start component name's app exe (version: its image's) under the contract above. OUT: *run;
 * on failure, detail says why (the app's log or working directory could not be made, fork).
 */
rp_err_t rp_app_start(const char *state_dir, const char *name, const char *version, const char *exe,
                      rp_app_run_t *run, char *detail, size_t cap) RP_MUST_CHECK;

/* Read whatever the app wrote to its ready pipe, without blocking. Whether it said "ready". */
bool rp_app_poll_ready(rp_app_run_t *run);

/* How long the run has been up, in milliseconds. */
int64_t rp_app_uptime_ms(const rp_app_run_t *run);

/* How long since it last wrote on its ready pipe, in milliseconds, once it said "ready" (its
 * watchdog's measure); 0 before. */
int64_t rp_app_silent_ms(const rp_app_run_t *run);

/* Stop the run: SIGTERM to its group, SIGKILL after RP_APP_STOP_GRACE_MS, the leader reaped;
 * whatever is left of its group killed. */
void rp_app_stop(rp_app_run_t *run);

/* The leader was reaped (it exited): whatever it left in its group is killed, the pipe closed. */
void rp_app_exited(rp_app_run_t *run);

#endif /* RAMPART_AGENT_APP_H */
