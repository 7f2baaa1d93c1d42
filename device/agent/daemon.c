/*
 * The agent's daemon (`rampart-agent run`): the loop that keeps the device attested, updated and
 * reported on, and the steps it schedules, which the one-shot commands (attest, check-now) run
 * too: an attestation, an update check under the slots' lock, the status report and the report
 * queue's upload. Its schedule: re-attestation at two thirds of the certificate's life (with
 * jitter; backoff and the service's Retry-After on failure; the first one after start, with the
 * first update check, at a random second of --start-jitter), update checks every interval and on
 * SIGUSR1 (inside the update window, if one is set), the monitor's kept crashes polled, the
 * watchdog told at each turn. The command line is main.c's.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "agent.h"
#include "confine.h"
#include "mcu_runner.h"
#include "crashes.h"
#include "daemon.h"
#include "report.h"
#include "reportq.h"
#include "supervise.h"
#include "update.h"
#include "rampart/http_client.h"
#include "rampart/log.h"
#include "rampart/notify.h"

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
    rp_agent_monitor_stop(); /* an install's answer, which waits out its trial, is not awaited */
    rp_mcu_runner_stop();    /* the MCU's relay under way is finished first (mcu.h) */
}

bool rp_daemon_attest(rp_agent_t *agent, const char *server, const char *ca, rp_agent_result_t *res)
{
    char when[32];
    time_t t;
    rp_err_t err = rp_agent_attest(agent, server, ca, res);

    if (err != RP_OK) {
        rp_log_error("attestation failed: %s", res->reason[0] ? res->reason : rp_strerror(err));
        return false;
    }
    if (!res->passed) {
        /* A verdict (403), not a busy service: a security event, with the service's code. */
        if (res->http_status == 403)
            rp_reportq_event(agent, RP_REPORT_ATTESTATION_FAILED, NULL,
                             rp_report_code_valid(res->reason) ? res->reason
                                                               : RP_REPORT_CODE_REFUSED,
                             "the service refused the attestation: %s", res->reason);
        if (res->retry_after > 0)
            rp_log_error("attestation refused (HTTP %ld): %s (the service asks to wait %ld s)",
                         res->http_status, res->reason, res->retry_after);
        else
            rp_log_error("attestation refused (HTTP %ld): %s", res->http_status, res->reason);
        return false;
    }
    t = (time_t)res->not_after;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    {
        char cert[PATH_MAX + 64];
        if (rp_agent_file(agent, "device.crt", cert, sizeof(cert)) != RP_OK)
            snprintf(cert, sizeof(cert), "device.crt");
        printf("attested: device %s, certificate %s valid until %s (%s)\n", agent->device_id,
               res->serial, when, cert);
    }
    fflush(stdout);
    return true;
}

/* Uniform in [lo, hi): spreads a fleet's requests so they do not arrive together. */
static long jitter(long lo, long hi)
{
    uint32_t r;

    if (hi <= lo || RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return lo;
    return lo + (long)(r % (uint32_t)(hi - lo));
}

static volatile sig_atomic_t check_requested;

static void on_check(int sig)
{
    (void)sig;
    check_requested = 1;
}

static rp_supervisor_t *supervisor; /* the daemon's, while it runs */

/* While a request waits out the service's 503 (rp_http_set_wait_hook): the watchdog still hears
 * the daemon, and a stop ends the wait. */
static bool request_wait_tick(void)
{
    rp_notify_watchdog();
    return !stopping;
}

/* While run waits (rp_agent_set_wait_hook: an MCU's relay, the monitor's answer, a trial): the
 * watchdog still hears the daemon. What ends each wait is unchanged. */
static void wait_tick(void)
{
    (void)rp_notify_watchdog();
}

static void sleep_until_stopped(long seconds)
{
    for (long s = 0; s < seconds && !stopping && !check_requested; s++) {
        rp_notify_watchdog(); /* the daemon's loop turns (rampart/notify.h) */
        sleep(1);
        if (supervisor != NULL)
            rp_supervisor_tick(supervisor);
    }
}

/* "HH:MM-HH:MM" (local time; may wrap past midnight) into minutes of the day. */
bool rp_daemon_window_parse(const char *s, int *from, int *to)
{
    int h1, m1, h2, m2;
    char tail;

    if (s == NULL || sscanf(s, "%d:%d-%d:%d%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 < 0 ||
        h1 > 23 || h2 < 0 || h2 > 23 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59)
        return false;
    *from = h1 * 60 + m1;
    *to = h2 * 60 + m2;
    return *from != *to;
}

/* How long the update window is open, in minutes (1440 without one). */
static long window_minutes(const rp_daemon_opts_t *o)
{
    int from, to;

    if (o->update_window == NULL || !rp_daemon_window_parse(o->update_window, &from, &to))
        return 1440;
    return (to - from + 1440) % 1440;
}

/* Seconds until the update window opens: 0 inside it (or when there is none). */
static long until_window(const rp_daemon_opts_t *o, time_t now)
{
    struct tm tm;
    int from, to, minute;

    if (o->update_window == NULL || !rp_daemon_window_parse(o->update_window, &from, &to) ||
        localtime_r(&now, &tm) == NULL)
        return 0;
    minute = tm.tm_hour * 60 + tm.tm_min;
    if (from < to ? minute >= from && minute < to : minute >= from || minute < to)
        return 0;
    return (long)(((from - minute + 1440) % 1440) * 60 - tm.tm_sec);
}

/* One update check, holding the slots' lock. */
bool rp_daemon_update_check(rp_agent_t *agent, const char *server, const char *ca,
                            int health_seconds, rp_update_summary_t *sum)
{
    rp_install_opts_t opts = {
        .health_seconds = health_seconds, .trial = rp_supervise_trial, .trial_ctx = agent};
    rp_err_t err;
    int fd = rp_agent_lock_slots(agent);

    if (fd < 0) {
        snprintf(sum->detail, sizeof(sum->detail), "cannot lock the slots");
        return false;
    }
    err = rp_agent_recover(agent, NULL);
    if (err == RP_OK)
        err = rp_update_check(agent, server, ca, &opts, sum);
    close(fd);
    if (err != RP_OK && stopping) {
        rp_log_info("update check: ended by the stop");
        return false;
    }
    if (err != RP_OK) {
        rp_log_error("update check: %s", sum->detail[0] ? sum->detail : rp_strerror(err));
        return false;
    }
    rp_log_info("update check: %d installed, %d up to date, %d refused, %d rolled back, %d failed",
                sum->installed, sum->unchanged, sum->refused, sum->rolled_back, sum->failed);
    return sum->refused + sum->rolled_back + sum->failed == 0;
}

/* Whether a refusal is the service's bar on the device (blocked, quarantined: docs/protocol.md
 * "Verdicts"), which refuses its status too, rather than a verdict on its evidence. */
static bool barred(const rp_agent_result_t *res)
{
    return strcmp(res->reason, "blocked") == 0 || strcmp(res->reason, "quarantined") == 0;
}

/* The status report (report.h), after each update check, each pass and each verdict refusing the
 * evidence: best effort, logged. */
void rp_daemon_status_report(rp_agent_t *agent, const char *server, const char *ca)
{
    rp_report_summary_t sum;

    if (rp_report_status(agent, server, ca, &sum) != RP_OK) {
        rp_log_warn("status report: %s", sum.detail);
        return;
    }
    if (sum.apps >= 0)
        rp_log_info("status report: %d app(s), %zu event(s) taken by the service", sum.apps,
                    sum.events);
    else
        rp_log_info("status report: %zu event(s) taken by the service", sum.events);
}

/* The report queue's upload (reportq.h), beside the status report: best effort, logged. The
 * crashes kept since the last one are queued first, so each upload carries them. */
void rp_daemon_reports_upload(rp_agent_t *agent, const char *server, const char *ca)
{
    rp_reportq_upload_t up;
    rp_err_t err;

    rp_crashes_report_new(agent);
    rp_report_events_new(agent); /* exits, OOM kills, restart loops, failed trials */
    err = rp_reportq_upload(agent, server, ca, &up);

    if (up.sent + up.dropped > 0)
        rp_log_info("reports: %zu sent (%zu stored, %zu known already, %zu refused), %zu dropped, "
                    "%zu left",
                    up.sent, up.stored, up.duplicates, up.refused, up.dropped, up.left);
    if (err != RP_OK && up.waiting)
        rp_log_debug("reports: %s", up.detail);
    else if (err != RP_OK)
        rp_log_warn("reports: %s", up.detail);
}

/* Two of the agent's own security events, looked for at each turn of its loop: the certificate
 * near its end while renewal fails, and the wall clock jumping against the monotonic clock. */
struct watch {
    int64_t wall, mono;    /* at the last turn (0: none yet) */
    int64_t cert_reported; /* the not_after of the certificate reported as expiring */
};

/* Seconds on the boot clock (CLOCK_BOOTTIME: it runs through a suspend and is never stepped),
 * which the daemon's waits are planned on: NTP stepping the wall clock (a device without a
 * battery-backed clock, after a power cut) then neither fires a fleet's --start-jitter at the
 * step, all at once, nor delays an attestation by a step back. 0 if it cannot be read. */
static int64_t boot_seconds(void)
{
    struct timespec ts;

    return clock_gettime(CLOCK_BOOTTIME, &ts) == 0 ? (int64_t)ts.tv_sec : 0;
}

/* OUT: the jump seen (0: none). */
static int64_t watch_clock(const rp_agent_t *agent, struct watch *w)
{
    int64_t wall = (int64_t)time(NULL), mono = boot_seconds(), jump = 0;

    if (mono == 0)
        return 0;
    if (w->mono != 0 && (jump = rp_report_clock_jump(wall - w->wall, mono - w->mono)) != 0) {
        rp_log_warn("the wall clock jumped %lld s %s", (long long)(jump > 0 ? jump : -jump),
                    jump > 0 ? "forward" : "backward");
        rp_reportq_event(agent, RP_REPORT_CLOCK_JUMP, NULL,
                         jump > 0 ? RP_REPORT_CODE_FORWARD : RP_REPORT_CODE_BACKWARD,
                         "the wall clock moved %lld s %s against the monotonic clock",
                         (long long)(jump > 0 ? jump : -jump), jump > 0 ? "forward" : "backward");
    }
    w->wall = wall;
    w->mono = mono;
    return jump;
}

/* After a failed renewal: the certificate near its end is reported once. */
static void watch_cert(const rp_agent_t *agent, struct watch *w, const rp_agent_result_t *res)
{
    int64_t nb = rp_agent_cert_not_before(agent), na = rp_agent_cert_not_after(agent),
            now = (int64_t)time(NULL);

    if (!rp_report_cert_expiring(nb, na, now) || w->cert_reported == na)
        return;
    w->cert_reported = na;
    rp_reportq_event(agent, RP_REPORT_CERT_EXPIRING, NULL, RP_REPORT_CODE_RENEWAL_FAILS,
                     "the device certificate ends in %lld s and renewal fails: %s",
                     (long long)(na - now), res->reason[0] != '\0' ? res->reason : "no answer");
}

#define CRASH_POLL_SECONDS 60 /* how soon `run` hands a kept crash to the report queue */

void rp_daemon_signals(void)
{
    struct sigaction sa = {0}, sc = {0};

    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sc.sa_handler = on_check; /* SIGUSR1: check for updates now */
    sc.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sc, NULL);
}

/* The service CAs to trust now (rp_agent_service_ca: the given file and what the last
 * attestation kept beside it), into trust. */
static const char *trusted(const rp_agent_t *agent, const rp_daemon_opts_t *o,
                           char trust[PATH_MAX + 64])
{
    rp_agent_service_ca(agent, o->server_ca, trust, PATH_MAX + 64);
    return trust;
}

bool rp_daemon_run(rp_agent_t *agent, const rp_daemon_opts_t *o)
{
    long backoff = 5, wait, interval = o->update_interval > 0 ? o->update_interval : 3600;
    int64_t next_attest = 0, next_update = 0, now; /* on the boot clock */
    rp_agent_result_t res;
    rp_update_summary_t sum;
    char root[PATH_MAX + 32], trust[PATH_MAX + 64];
    struct watch watch = {0, 0, 0};
    bool lost = false;      /* the MCU's relay runner died: exit non-zero */
    bool is_barred = false; /* the last verdict was a bar (barred()): its routes are all refused */

    snprintf(root, sizeof(root), "%s/" RP_UPDATE_ROOT_FILE, o->state_dir);
    rp_log_info("running for device %s%s", agent->device_id,
                agent->rot != NULL ? "" : ", through rampart-monitor");
    /* First put right whatever a cut left: the evidence then measures what really runs. */
    {
        int unbootable = 0, lock = rp_agent_lock_slots(agent);
        rp_err_t err;

        /* Single-process mode (no monitor: the agent is the one process, so it reads the JSON
         * itself): what an older version kept as JSON migrated once, as the monitor does at its
         * start (docs/operations.md, "Upgrading devices"). A refusal is said; the file stays. */
        if (lock >= 0 && agent->rot != NULL) {
            (void)rp_update_migrate_all(agent->state_dir, agent->device_id,
                                        &rp_update_migrate_here);
            rp_components_sweep(agent->state_dir); /* the monitor's part, which it does here */
        }
        err = lock >= 0 ? rp_agent_recover(agent, &unbootable) : RP_ERR_IO;
        /* What a cut left that no check can resume (a delta's rebuild, the kept targets' write):
         * the partial images stay until the next targets say which are still wanted. */
        if (lock >= 0) {
            rp_update_sweep(agent, NULL);
            close(lock);
        }
        if (err != RP_OK || unbootable > 0)
            rp_log_error("recovery: %s; %d component(s) without a verified image", rp_strerror(err),
                         unbootable);
    }
    /* The apps: supervised here in single-process mode; the monitor's otherwise. */
    if (agent->rot != NULL) {
        supervisor = calloc(1, sizeof(*supervisor));
        if (supervisor == NULL) {
            rp_agent_close(agent);
            return false;
        }
        supervisor->a = agent;
        supervisor->health_seconds = o->health_seconds;
        rp_supervisor_sync(supervisor); /* the apps, their confirmed versions */
    } else {
        rp_log_info("rampart-monitor serves %s: it runs the apps, each in its compartment",
                    o->state_dir);
        rp_mcu_runner_start(o->state_dir); /* the relay to an MCU runs outside the filter */
        if (rp_agent_confine(rp_mcu_runner_pid()) != RP_OK) { /* its own allow-list from here on */
            rp_agent_close(agent);
            return false;
        }
    }
    rp_http_set_wait_hook(request_wait_tick);
    /* After the relay runner's fork: run's alone. */
    rp_agent_set_wait_hook(wait_tick);
    (void)watch_clock(agent, &watch); /* from here on, a step of the wall clock is seen */
    if (o->start_jitter > 0) {        /* not all of a fleet at once after a power cut */
        next_attest = next_update = boot_seconds() + jitter(1, o->start_jitter + 1);
        rp_log_info("first attestation in %ld s (--start-jitter %ld)",
                    (long)(next_attest - boot_seconds()), o->start_jitter);
    }
    rp_notify("READY=1\nSTATUS=running for device %s", agent->device_id);
    while (!stopping) {
        rp_notify_watchdog();
        now = boot_seconds();
        if (watch_clock(agent, &watch) != 0 && next_attest > now)
            rp_log_info("the next attestation stays in %ld s (planned on the boot clock)",
                        (long)(next_attest - now));
        if (now >= next_attest) {
            bool passed = rp_daemon_attest(agent, o->server, o->server_ca, &res);

            if (passed) {
                /* Renew at two thirds of the certificate's life (the service's, from its answer,
                 * not our clock's; at most a day), +-10%, counted on the boot clock from it. */
                wait = o->renew_after > 0 ? o->renew_after : rp_agent_renew_wait(res.life);
                if (wait > 24 * 3600)
                    wait = 24 * 3600;
                if (wait < 1)
                    wait = 1;
                wait = jitter(wait - wait / 10, wait + 1);
                backoff = 5;
            } else {
                watch_cert(agent, &watch, &res);
                /* Exponential backoff with full jitter, capped at an hour; never sooner than
                 * the service asked (Retry-After, when it is busy or limiting). */
                wait = jitter(1, backoff + 1);
                backoff = backoff < 1800 ? backoff * 2 : 3600;
                if (res.retry_after > 0 && wait < res.retry_after)
                    wait = jitter(res.retry_after, res.retry_after + res.retry_after / 2 + 1);
            }
            if (passed || res.http_status == 403) /* a verdict (else the last one holds) */
                is_barred = !passed && barred(&res);
            next_attest = boot_seconds() + wait;
            rp_log_info("next attestation in %ld s", wait);
            /* The status after a pass, and after a verdict (403) too: a device whose own evidence
             * failed keeps its status routes (recovery routes, docs/protocol.md "Verdicts") with
             * the certificate the failure revoked, so the operator sees what runs beside the
             * failure rather than the status of before. A failure stays one: no certificate
             * came, the next attempt is on the backoff's schedule. (Not when the service was not
             * reached or asked to wait: nothing new to say, or no load to add; nor when it
             * refused a blocked or quarantined device, whose every route it refuses.) */
            if (passed || (res.http_status == 403 && !is_barred))
                rp_daemon_status_report(agent, o->server, trusted(agent, o, trust));
            /* Pass or fail: a refusal is itself a report (with a certificate still valid, or
             * revoked by that refusal: reports are a recovery route too). */
            rp_daemon_reports_upload(agent, o->server, trusted(agent, o, trust));
        }
        /* Updates: at start, then every interval (+-10%), or at once on SIGUSR1; installed only
         * inside the update window, if there is one. Only with an update root. */
        now = boot_seconds();
        if (access(root, R_OK) == 0 && (check_requested || now >= next_update)) {
            long closed = until_window(o, time(NULL)); /* the window is the wall clock's */
            check_requested = 0; /* one that arrives during the check makes another */
            if (closed > 0) {
                /* Not all at the opening second: spread over the window's first half hour. */
                closed += jitter(0, 1800 < window_minutes(o) * 30 ? 1800 : window_minutes(o) * 30);
                rp_log_info("outside the update window: next check in %ld s", closed);
                next_update = now + closed;
            } else {
                memset(&sum, 0, sizeof(sum));
                (void)rp_daemon_update_check(agent, o->server, trusted(agent, o, trust),
                                             o->health_seconds, &sum);
                if (stopping)
                    break; /* (a stop may have ended it: nothing more to report from it) */
                if (supervisor != NULL)
                    rp_supervisor_sync(supervisor); /* a new confirmed version replaces the old */
                /* Not while the last verdict bars the device (review r12 L3): the service refuses
                 * its status and its reports as it refused the check; its reports still go after
                 * each attestation, and both again after the first verdict that does not bar. */
                if (!is_barred) {
                    rp_daemon_status_report(agent, o->server, trusted(agent, o, trust));
                    rp_daemon_reports_upload(agent, o->server, trusted(agent, o, trust));
                }
                if (rp_mcu_runner_lost()) { /* confined: it cannot fork another (mcu_runner.h) */
                    rp_log_error("the MCU's relay runner died: exiting, for the service manager "
                                 "to restart the agent with a new one");
                    lost = true;
                    break;
                }
                next_update =
                    boot_seconds() + jitter(interval - interval / 10, interval + interval / 10 + 1);
            }
        } else if (access(root, R_OK) != 0) {
            next_update = next_attest; /* nothing to check against until the device has a root */
            check_requested = 0;       /* (else each sleep would end at once, until then) */
        }
        /* The monitor's kept crashes, each a report for the queue (crashes.h). */
        if (agent->rot == NULL) {
            rp_crashes_report_new(agent);
            rp_report_events_new(agent);
        }
        now = boot_seconds();
        wait = (long)((next_attest < next_update ? next_attest : next_update) - now);
        if (agent->rot == NULL && wait > CRASH_POLL_SECONDS)
            wait = CRASH_POLL_SECONDS; /* a new crash is reported within this */
        sleep_until_stopped(wait > 0 ? wait : 1);
    }
    rp_notify("STOPPING=1");
    if (supervisor != NULL)
        rp_supervisor_stop(supervisor);
    free(supervisor);
    supervisor = NULL;
    rp_agent_close(agent);
    rp_log_info("stopped");
    return !lost;
}
