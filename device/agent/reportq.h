/*
 * The device's report queue (docs/failure-reporting.md, "The queue on the device"): reports
 * (crashes, abnormal exits, the agent's own security events) kept in S/agent/reports/ until the
 * service acknowledged them, power-cut safe and bounded, uploaded in batches to
 * POST /api/v1/device/reports with backoff, jitter and the service's Retry-After. The one owner,
 * on the device, of the report's bounds, its kinds' names and its reason codes. Linked into
 * rampart-agent only, never into the monitor.
 */
#ifndef RAMPART_AGENT_REPORTQ_H
#define RAMPART_AGENT_REPORTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent.h"

/* The contract's bounds (docs/failure-reporting.md). */
#define RP_REPORT_MAX_BYTES (16 * 1024) /* one report, compact JSON */
#define RP_REPORT_VERSION_MAX 47
#define RP_REPORTQ_BATCH_REPORTS 64 /* reports a batch carries */
#define RP_REPORTQ_BATCH_BYTES (256 * 1024)
/* The queue's own bounds: past either, the oldest reports are dropped and counted. */
#define RP_REPORTQ_MAX_REPORTS 256
#define RP_REPORTQ_MAX_BYTES (1024 * 1024)
/* The queue's directory in S/agent/ (rp_agent_file owns the paths). */
#define RP_REPORTQ_DIR "reports"

/* What a report is about. The names (rp_report_kind_name) travel to the service: never renamed. */
typedef enum rp_report_kind {
    RP_REPORT_CRASH,              /* "crash": an app died by a signal */
    RP_REPORT_EXIT,               /* "exit": an app exited with a non-zero code */
    RP_REPORT_OOM,                /* "oom": killed at its memory limit */
    RP_REPORT_HEALTH,             /* "health": its health check failed (a trial, a watchdog) */
    RP_REPORT_RESTART_LOOP,       /* "restart_loop": restarted too often */
    RP_REPORT_ATTESTATION_FAILED, /* "attestation_failed": the service refused the evidence */
    RP_REPORT_IMAGE_REFUSED,      /* "image_refused": an image refused at an update check */
    RP_REPORT_METADATA_REFUSED,   /* "metadata_refused": signed update metadata refused */
    RP_REPORT_SANDBOX_DENIAL,     /* "sandbox_denial" */
    RP_REPORT_ROT_ERROR,          /* "rot_error": the root of trust failed an operation */
    RP_REPORT_CERT_EXPIRING,      /* "cert_expiring": < 20% of the certificate's life left, and
                                   * renewal fails */
    RP_REPORT_CLOCK_JUMP,         /* "clock_jump": the wall clock moved against the monotonic one */
    RP_REPORT_KIND_END            /* one past the last: new kinds go before it */
} rp_report_kind_t;

const char *rp_report_kind_name(rp_report_kind_t kind);

/* Reason codes (a report's "code"): the agent's own, named here once. */
#define RP_REPORT_CODE_BAD_SIGNATURE "bad_signature"
#define RP_REPORT_CODE_UNKNOWN_KEY "unknown_key"
#define RP_REPORT_CODE_ROLLBACK "rollback"
#define RP_REPORT_CODE_EXPIRED "expired"
#define RP_REPORT_CODE_MALFORMED "malformed"
#define RP_REPORT_CODE_TOO_LARGE "too_large"
#define RP_REPORT_CODE_HASH_MISMATCH "hash_mismatch"
#define RP_REPORT_CODE_MISMATCH "metadata_mismatch"
#define RP_REPORT_CODE_NO_ROOT "no_root"
#define RP_REPORT_CODE_EVIDENCE "evidence"
#define RP_REPORT_CODE_RENEWAL_FAILS "renewal_fails"
#define RP_REPORT_CODE_FORWARD "forward"
#define RP_REPORT_CODE_BACKWARD "backward"
#define RP_REPORT_CODE_REFUSED "refused" /* no finer reason known */
/* An app's abnormal ends (the monitor's events, report.c): */
#define RP_REPORT_CODE_NONZERO_STATUS "nonzero_status" /* exit: exited with a status not 0 */
#define RP_REPORT_CODE_SIGNAL "signal"                 /* exit: killed by a signal, no crash */
#define RP_REPORT_CODE_MEMORY_LIMIT "memory_limit"     /* oom */
#define RP_REPORT_CODE_TRIAL_FAILED "trial_failed"     /* health: an install's trial */
#define RP_REPORT_CODE_WATCHDOG "watchdog"             /* health: a running app went silent */
#define RP_REPORT_CODE_TOO_MANY_EXITS "too_many_exits" /* restart_loop */

/* The reason code for an error that refused an image or metadata (bad_signature, unknown_key,
 * rollback, ...; "refused" for the rest). */
const char *rp_report_code_of(rp_err_t err);
/* The same for an install's refusal as its detail says it (rp_install_result_t carries no error:
 * the detail is an error's rp_strerror, or says "rollback"). */
const char *rp_report_code_of_detail(const char *detail);
/* Whether s is a reason code: [a-z_], at most 32 bytes ("" too). */
bool rp_report_code_valid(const char *s);

/* The agent's rules for two of its events, here so that a test can hold them to account:
 * a certificate is near its end when less than a fifth of its life is left; the clock jumped when,
 * between two turns of the agent's loop, the wall clock moved more than RP_REPORT_CLOCK_JUMP_S
 * away from the monotonic clock (CLOCK_BOOTTIME: it counts suspend too). The jump in seconds
 * (> 0 forward, < 0 backward), or 0. */
#define RP_REPORT_CLOCK_JUMP_S 300
bool rp_report_cert_expiring(int64_t not_before, int64_t not_after, int64_t now);
int64_t rp_report_clock_jump(int64_t wall_delta, int64_t mono_delta);

/*
 * Whether report keeps the contract: its keys (no others), their types and bounds, the crash
 * object for kind crash only, at most RP_REPORT_MAX_BYTES as compact JSON; "seq" only
 * with_seq (as queued), otherwise none. why says the first breach.
 */
rp_err_t rp_report_check(const json_t *report, bool with_seq, char *why, size_t cap) RP_MUST_CHECK;

/*
 * Queue report (not changed, still the caller's; without "seq": the queue gives it one,
 * strictly above every number it gave before, across reboots and updates, and also when
 * S/agent/reports/ was removed, unless the wall clock is then behind where it was: see the docs).
 * A report that breaks the contract is refused (RP_ERR_MALFORMED, said). Full (count or bytes),
 * the oldest reports go and are counted. Once it returns RP_OK the report is on disk for good: a
 * kill or a power cut at any point leaves it either fully queued or not at all.
 */
rp_err_t rp_reportq_add(const rp_agent_t *a, json_t *report) RP_MUST_CHECK;

/*
 * Where reports come from that the agent reads with a cursor: the monitor's kept crashes (their
 * numbers) and its event log (the events' numbers). Each source's cursor (the next number to
 * hand) lives in the queue's state.json and moves in the same atomic step as the report it
 * queues (rp_reportq_add_from): a kill or a power cut anywhere leaves the report queued and the
 * cursor past it, or neither; a report is never queued twice, never skipped.
 */
typedef enum rp_reportq_source {
    RP_REPORTQ_CRASHES, /* crashes.c */
    RP_REPORTQ_EVENTS,  /* report.c: exits, OOM kills, restart loops, failed trials */
    RP_REPORTQ_SOURCES
} rp_reportq_source_t;

/* rp_reportq_add of report, which source numbers id: its cursor becomes id + 1 with it. */
rp_err_t rp_reportq_add_from(const rp_agent_t *a, json_t *report, rp_reportq_source_t src,
                             uint64_t id) RP_MUST_CHECK;
/* The source's cursor. OUT: *next; *known false when the queue has none for it yet (a new
 * queue, an older agent's, or a corrupt state.json: the caller says where it starts). */
rp_err_t rp_reportq_cursor(const rp_agent_t *a, rp_reportq_source_t src, uint64_t *next,
                           bool *known) RP_MUST_CHECK;
/* Move the source's cursor without a report (past what is not reported). */
rp_err_t rp_reportq_cursor_set(const rp_agent_t *a, rp_reportq_source_t src,
                               uint64_t next) RP_MUST_CHECK;

/* Tests: the wall clock in microseconds the queue numbers from (NULL: the real one). */
void rp_reportq_set_clock(uint64_t (*now_us)(void));

/* A report of kind (not queued: the caller's), the one maker of the plain ones: reason cut to the
 * contract's 255 bytes (at a character's edge) and its control characters made spaces; a
 * component that is no component name, a version too long or a code that is none become "" (the
 * code "refused"). NULL: no memory. */
json_t *rp_report_new(rp_report_kind_t kind, int64_t at, const char *component, const char *version,
                      const char *code, const char *reason);

/* One of the agent's own events, queued with rp_reportq_add: best effort, a failure is logged.
 * component and version may be NULL; code one of RP_REPORT_CODE_* (or a service's code). */
void rp_reportq_event(const rp_agent_t *a, rp_report_kind_t kind, const char *component,
                      const char *code, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

typedef struct rp_reportq_stat {
    size_t reports, bytes; /* queued now */
    uint64_t first, last;  /* their seq (when reports > 0) */
    uint64_t next_seq;     /* the least the next report gets */
    uint64_t dropped;      /* reports the queue dropped over its life (full, 400, too large) */
    uint64_t refused;      /* reports the service took but refused for good */
    int64_t retry_at;      /* no upload before (unix seconds); 0: none */
    long backoff;          /* the current backoff's ceiling, seconds; 0 after a success */
} rp_reportq_stat_t;

/* What the queue holds and its counters. OUT: *st. */
rp_err_t rp_reportq_stat(const rp_agent_t *a, rp_reportq_stat_t *st) RP_MUST_CHECK;

/* The oldest reports, at most max_reports and, as the batch's body, max_bytes (at least one
 * report). OUT: *reports (an array, a new reference; empty when the queue is), *last (the
 * seq of the last one). */
rp_err_t rp_reportq_peek(const rp_agent_t *a, size_t max_reports, size_t max_bytes,
                         json_t **reports, uint64_t *last) RP_MUST_CHECK;

/* Remove every report up to seq (the service acknowledged them); with count_dropped, the reports
 * removed are added to the drop count (a batch the service refused as a whole). OUT: *removed. */
rp_err_t rp_reportq_remove_through(const rp_agent_t *a, uint64_t seq, bool count_dropped,
                                   size_t *removed) RP_MUST_CHECK;

typedef struct rp_reportq_upload {
    size_t batches; /* requests the service answered 200 */
    size_t sent;    /* reports it acknowledged (stored, known already, or refused) */
    size_t stored, duplicates, refused;
    size_t dropped;   /* dropped by this upload (400, a single report too large) */
    size_t left;      /* still queued */
    long http_status; /* the last answer; 0: none */
    int64_t retry_at; /* when it is waiting: not before (unix seconds) */
    bool waiting;     /* it did not send: a Retry-After or a backoff is in force */
    char detail[512]; /* why it stopped, when it did not empty the queue */
} rp_reportq_upload_t;

/*
 * Send what is queued to server (mutual TLS with the device certificate), batch after batch,
 * as docs/failure-reporting.md says: 200 removes the batch; 400 drops it (counted); 413 halves
 * the batch, and drops a single report (counted); 429 and 503 keep it and wait Retry-After; any
 * other answer or none keeps it and backs off (exponential, with jitter). The wait is kept in
 * the queue's state: a restart waits it out too (out->waiting, nothing sent). RP_OK when the
 * queue was emptied (or was empty); otherwise out->detail says why it stopped.
 */
rp_err_t rp_reportq_upload(rp_agent_t *a, const char *server, const char *server_ca,
                           rp_reportq_upload_t *out) RP_MUST_CHECK;

#endif /* RAMPART_AGENT_REPORTQ_H */
