/*
 * The agent's daemon (daemon.c): the loop of `rampart-agent run`, and the steps it schedules that
 * the one-shot commands run too.
 */
#ifndef RAMPART_AGENT_DAEMON_H
#define RAMPART_AGENT_DAEMON_H

#include <stdbool.h>

#include "agent.h"
#include "update.h"

/* What the daemon takes from the command line. */
typedef struct rp_daemon_opts {
    const char *state_dir, *server, *server_ca;
    const char *update_window; /* "HH:MM-HH:MM" local time, or NULL: any time */
    long renew_after;          /* seconds; 0: two thirds of the certificate's life */
    long update_interval;      /* seconds between update checks; 0: an hour */
    int health_seconds;        /* a trial's health check (rp_install_opts_t) */
    long start_jitter;         /* the first attestation and check: 1 to this many s after start */
} rp_daemon_opts_t;

/* --start-jitter's default: after a regional power cut a fleet's devices start within seconds of
 * each other; each waits up to this long before its first request, so that they do not arrive
 * at the service in the same second (docs/scale.md). 0: at once. */
#define RP_DAEMON_START_JITTER 30
#define RP_DAEMON_START_JITTER_MAX 3600

/* SIGTERM and SIGINT stop the loop, SIGUSR1 asks for an update check now: set before the agent is
 * opened, so that a stop asked meanwhile is kept. */
void rp_daemon_signals(void);
/* Run until stopped: recovery first, the apps supervised (single-process mode) or the agent
 * confined (under the monitor), then attestation, updates and reports on their schedule. Takes
 * agent (closed on return); false when it could not start. */
bool rp_daemon_run(rp_agent_t *agent, const rp_daemon_opts_t *o);

/* "HH:MM-HH:MM" (local time; may wrap past midnight) into minutes of the day. */
bool rp_daemon_window_parse(const char *s, int *from, int *to);

/* One attestation with the service, said on stdout (a pass) or logged; a refusal (403) queued as
 * a security event. true: passed. */
bool rp_daemon_attest(rp_agent_t *agent, const char *server, const char *ca,
                      rp_agent_result_t *res);
/* One update check, holding the slots' lock (after recovery); said in sum, logged. true: nothing
 * refused, rolled back or failed. */
bool rp_daemon_update_check(rp_agent_t *agent, const char *server, const char *ca,
                            int health_seconds, rp_update_summary_t *sum);
/* The status report (report.h), after each update check and attestation: best effort, logged. */
void rp_daemon_status_report(rp_agent_t *agent, const char *server, const char *ca);
/* The report queue's upload (reportq.h), the crashes and app events kept since the last one
 * queued first: best effort, logged. */
void rp_daemon_reports_upload(rp_agent_t *agent, const char *server, const char *ca);

#endif /* RAMPART_AGENT_DAEMON_H */
