/*
 * What the device shows of what runs, and tells its service: the security events and the apps'
 * logs the monitor records (read through it, EVENTS and APP_LOG, since the agent's user cannot read
 * root's files; read directly in single-process mode), the one formatter of an event (text and
 * JSON: `rampart-agent events` and the status report use it), and the device's status report
 * (POST /api/v1/device/status: the apps that run and the events not yet reported, after the cursor
 * kept in S/agent/report.json). Linked into rampart-agent only, never into the monitor.
 */
#ifndef RAMPART_AGENT_REPORT_H
#define RAMPART_AGENT_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "agent.h"
#include "events.h"

#define RP_REPORT_EVENTS_MAX 32 /* events one status report carries (the service takes <= 100) */

/* Events numbered from `from` on, at most max, oldest first (rp_events_read_from's contract):
 * through the monitor when a->monitor is set (EVENTS, page after page), otherwise from S/events/.
 */
rp_err_t rp_report_events(const rp_agent_t *a, uint64_t from, rp_event_t *out, size_t max,
                          size_t *n, uint64_t *next, bool *more, uint64_t *dropped) RP_MUST_CHECK;

/* The one formatter of an event: {"seq", "at", "kind", "app", "reason"} (a new reference), and
 * the text line `TIME KIND APP REASON` (UTC, ISO 8601). */
json_t *rp_report_event_json(const rp_event_t *e);
void rp_report_event_print(const rp_event_t *e, FILE *out);

/* The end (at most tail bytes) of an app's log, through the monitor (APP_LOG), to out, opened by
 * "[... N earlier bytes not shown]" when it is cut. Only what was there at the first answer. */
rp_err_t rp_report_app_log(const rp_agent_t *a, const char *component, uint64_t tail,
                           FILE *out) RP_MUST_CHECK;

/* The report an event of the monitor's becomes (docs/failure-reporting.md): exit, oom,
 * restart_loop and health events are an app's abnormal ends, reported through the report queue
 * (rp_report_events_new) and so left out of the status report, which carries the security
 * events: each is counted once by the service's threat detection. The one owner of that split.
 * Its report kind, or RP_REPORT_KIND_END for a security event. */
int rp_report_kind_of_event(rp_event_kind_t kind);

/* The report an event of a report kind becomes (component, version from the reason's
 * "VERSION: ", the code from what it says); NULL for another kind or no memory. */
json_t *rp_report_of_event(const rp_event_t *e);

/* Before each upload, as crashes are (crashes.h): each event past the queue's event cursor
 * (reportq.h) that is of a report kind becomes its report, queued with the cursor moving past it
 * in the same step; the cursor also moves past the security events between (not reported here).
 * Best effort: a failure is logged, and what is left is handed next time. */
void rp_report_events_new(const rp_agent_t *a);

typedef struct rp_report_summary {
    int apps;         /* the apps reported; -1: not known here (single-process mode) */
    size_t events;    /* events the service took (new or already known) */
    uint64_t next;    /* the cursor now */
    char detail[512]; /* why it stopped, on failure */
} rp_report_summary_t;

/*
 * The device's status report to server (mutual TLS with the device certificate): the apps the
 * monitor runs (APP_LIST: component, version, state, restarts) and the security events after the
 * cursor, RP_REPORT_EVENTS_MAX a request, until none is left; the cursor moves only past what the
 * service acknowledged (200), so a lost answer sends those events again and the service keeps
 * one of each (it keys them by the device and the event's number).
 */
rp_err_t rp_report_status(rp_agent_t *a, const char *server, const char *server_ca,
                          rp_report_summary_t *sum) RP_MUST_CHECK;

#endif /* RAMPART_AGENT_REPORT_H */
