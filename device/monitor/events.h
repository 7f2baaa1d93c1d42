/*
 * The device's security events: every denial the kernel or the monitor can see (a system call
 * refused by seccomp, a connection refused by the network policy, a device refused, storage quota
 * hit, OOM kill, an app-to-app channel refused...), kept in a bounded local log in the monitor's
 * state (S/events/), newest last. `rampart-agent events` reads it; failure reporting (issue 11)
 * uploads it. Only the monitor writes it. When full, the oldest events are dropped and the drop
 * is counted (the count is part of the log, so it is reported too).
 */
#ifndef RAMPART_MONITOR_EVENTS_H
#define RAMPART_MONITOR_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/component.h"
#include "rampart/error.h"

#define RP_EVENTS_MAX 1000     /* events kept; older ones are dropped and counted */
#define RP_EVENT_REASON_MAX 255

/* What was refused. The names (rp_event_kind_name) are persisted and shown: never renamed. */
typedef enum rp_event_kind {
    RP_EVENT_SYSCALL = 1,        /* seccomp refused a system call ("syscall") */
    RP_EVENT_CONNECTION,         /* the network policy refused a connection ("connection") */
    RP_EVENT_LISTEN,             /* a listen/bind on an unlisted port ("listen") */
    RP_EVENT_DEVICE,             /* a device the manifest does not list ("device") */
    RP_EVENT_QUOTA,              /* mutable storage full, or the app's log dropped bytes past
                                  * its bound (compartment.h, once a run) ("quota") */
    RP_EVENT_OOM,                /* killed at its memory limit ("oom") */
    RP_EVENT_PIDS,               /* refused a process at its pids limit ("pids") */
    RP_EVENT_APP_CONNECTION,     /* an app-to-app channel not allowed by both ("app_connection") */
    RP_EVENT_FILE,               /* Landlock or the mount layout refused a file ("file") */
    RP_EVENT_IMAGE,              /* an app image or tree refused at install ("image") */
    RP_EVENT_CAPABILITY,         /* development mode: refused without it, or an app started debuggable ("capability") */
    RP_EVENT_IDENTITY,           /* the device identity refused to an app ("identity") */
    /* An app's abnormal ends: the agent turns each into a report of the same name
     * (docs/failure-reporting.md); the reason starts "VERSION: " (RP_EVENT_VERSION_SEP). */
    RP_EVENT_EXIT,               /* exited non-zero, or killed by a signal and neither a captured
                                  * crash nor the OOM killer's ("exit") */
    RP_EVENT_RESTART_LOOP,       /* RP_EVENT_LOOP_EXITS exits within RP_EVENT_LOOP_SECONDS, once
                                  * per loop ("restart_loop") */
    RP_EVENT_HEALTH,             /* an install's trial failed: it exited or could not start;
                                  * or it missed its watchdog (RP_EVENT_WATCHDOG) ("health") */
    RP_EVENT_REMOVED,            /* an app removed: its files, storage and slots deleted
                                  * (APP_REMOVE: docs/monitor.md) ("removed") */
    RP_EVENT_LANDLOCK,           /* Landlock refused a file or a TCP port, as the kernel's audit
                                  * records tell (audit.h) ("landlock") */
    RP_EVENT_KIND_END            /* one past the last kind: new kinds go before it */
} rp_event_kind_t;

typedef struct rp_event {
    uint64_t seq;                               /* its number, counted from 0 over the log's life */
    int64_t at;                                 /* unix seconds */
    rp_event_kind_t kind;
    char app[RP_COMPONENT_NAME_MAX + 1];        /* "" when not about one app */
    char reason[RP_EVENT_REASON_MAX + 1];       /* e.g. "ptrace (101)", "10.0.0.9:80" */
} rp_event_t;

const char *rp_event_kind_name(rp_event_kind_t kind);

/* An exit, restart_loop or health event's reason is "VERSION: what happened" (the version of the
 * app that ran): the separator the agent reads the version up to. */
#define RP_EVENT_VERSION_SEP ": "

/* A health event's what when the app missed its watchdog (manifest WatchdogSeconds): "VERSION:
 * missed its watchdog (N s)". The agent tells it from a failed trial by this start. */
#define RP_EVENT_WATCHDOG "missed its watchdog"

/*
 * The restart-loop rule, its one owner: an app is in a restart loop when its last
 * RP_EVENT_LOOP_EXITS exits fall within RP_EVENT_LOOP_SECONDS; a loop is recorded once, when it
 * starts, and is over at the first exit that finds the last RP_EVENT_LOOP_EXITS spread wider
 * (or when its version changes: a new rp_event_loop_t). The supervisor restarts with a backoff of
 * 1 s doubling to a minute, so an app that dies at once is in a loop at its 5th exit, 15 s in.
 */
#define RP_EVENT_LOOP_EXITS 5
#define RP_EVENT_LOOP_SECONDS 600

typedef struct rp_event_loop {
    int64_t at[RP_EVENT_LOOP_EXITS]; /* the newest exits' times, a ring */
    unsigned n;                      /* exits seen (the ring holds the last RP_EVENT_LOOP_EXITS) */
    bool in_loop;
} rp_event_loop_t;

/* Note an exit at time now. true when it starts a loop (record it: once per loop). */
bool rp_event_loop_note(rp_event_loop_t *l, int64_t now);

/* Append an event to S/events/ (crash-safe: an event recorded is never half-written). */
rp_err_t rp_event_record(const char *state_dir, rp_event_kind_t kind, const char *app,
                         const char *reason) RP_MUST_CHECK;

/*
 * Read the log (events.c documents its format). OUT: out[0..*n), the newest min(max, kept)
 * events, oldest first; *dropped, how many events were recorded but are no longer in the log
 * (pushed out when it was full, or lost to a crash that tore their slot). A state directory with
 * no log yet reads as empty.
 */
rp_err_t rp_events_read(const char *state_dir, rp_event_t *out, size_t max, size_t *n,
                        uint64_t *dropped) RP_MUST_CHECK;

/*
 * Read the events numbered from `from` on, oldest first, at most max of them (the monitor's EVENTS
 * and `rampart-agent events` page through the log with it). OUT: out[0..*n); *next, the number to
 * ask from next time (one past the last returned; when none is returned, from, or the log's next
 * number if from is past it: a log made anew rewinds the cursor); *more, whether events from
 * *next on are kept; *dropped as rp_events_read. Events older than the log keeps are skipped
 * (counted in *dropped).
 */
rp_err_t rp_events_read_from(const char *state_dir, uint64_t from, rp_event_t *out, size_t max,
                             size_t *n, uint64_t *next, bool *more,
                             uint64_t *dropped) RP_MUST_CHECK;

#endif /* RAMPART_MONITOR_EVENTS_H */
