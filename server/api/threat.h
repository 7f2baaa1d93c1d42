/*
 * Threat detection and automatic quarantine (docs/failure-reporting.md, "Threat detection"): every
 * ingestion path hands what it stored to rp_threat_observe, after the store has committed it, and
 * threat.c alone decides what follows (per-tenant baselines per event kind and per crash bucket,
 * spikes raised as alerts on /metrics and to the tenant's webhook, and, with the tenant's policy
 * on, quarantine of the devices whose events match it).
 */
#ifndef RAMPART_SERVER_THREAT_H
#define RAMPART_SERVER_THREAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "context.h"

/* One thing a device reported or the service saw of it. Borrowed for the call only. */
typedef struct rp_threat_signal {
    const char *tenant_id;
    const char *device_id;
    const char *kind;   /* as stored: an event kind ("syscall", "connection"...) or a report kind
                           ("crash", "attestation_failed", "image_refused"...) */
    const char *bucket; /* a crash's bucket ID; NULL for anything else */
    const char *reason; /* its reason as the device or the service stated it; "" if none */
    int64_t at;         /* unix seconds, as the device said; rates count the service's own time */
    bool device_failed; /* the device sent it while its last attestation had failed (a recovery
                           route): counted as any device's, and told apart (review r10 L4) */
} rp_threat_signal_t;

/*
 * Count n signals that have just been stored, and act on them. Never fails the caller's request:
 * what goes wrong here is logged and counted in the metrics, and the data stays stored.
 */
void rp_threat_observe(rp_worker_t *w, const rp_threat_signal_t *sig, size_t n);

/* ---- inside threat.c, for its callers and its tests ---- */

#define RP_THREAT_BATCH_MAX                                                                        \
    256 /* signals one rp_threat_process call counts (the rest are logged                          \
         * and dropped); rp_threat_process_held takes any number */

/*
 * The spike rule, pure: the subject's rate over the last window (the current slot, and the slot
 * before weighted by how much of it the window still covers) against its baseline (the mean per
 * window over the baseline days, never below set->floor), and its distinct devices (the larger of
 * the two slots': a lower bound; rp_threat_window_devices). A spike: rate >= factor x baseline and
 * devices >= min_devices. While an alert is open (open), half the rate keeps it: a storm hovering
 * about the threshold stays one alert instead of many. OUT (each may be NULL): *rate, *baseline,
 * *devices.
 */
bool rp_threat_spike(const rp_threat_settings_t *set, const rp_threat_count_t *c, bool open,
                     double *rate, double *baseline, int64_t *devices);
/* The window's distinct devices: the larger of the two slots' (a lower bound); OUT *failed (may
 * be NULL): how many of that slot's sent while their last attestation had failed. */
int64_t rp_threat_window_devices(const rp_threat_count_t *c, int64_t *failed);

/* What processing signals did, for the caller to act on (webhook, logs). */
typedef struct rp_threat_hooks {
    void (*alert_opened)(void *ctx, const rp_threat_alert_t *a);
    void (*quarantined)(void *ctx, const char *tenant_id, const char *device_id, const char *kind);
    void *ctx;
} rp_threat_hooks_t;

/* rp_threat_observe's work at a given time, on a store: count, raise or close alerts, apply the
 * tenant's quarantine policy. Tests drive time through now. hooks may be NULL. */
rp_err_t rp_threat_process(rp_store_t *s, const rp_threat_signal_t *sig, size_t n, int64_t now,
                           const rp_threat_hooks_t *hooks) RP_MUST_CHECK;

/*
 * What processing found that the world is to hear of (alerts opened, devices quarantined), held
 * until the transaction that holds it has committed: inside a caller's group
 * (rp_store_group_begin, as the recorder's round is) a failed outer commit undoes it all, and
 * nothing undone may be announced. Zeroed to start; rp_threat_news_tell or _free ends it.
 */
struct rp_threat_quarantine_news {
    char tenant_id[RP_ID_SIZE];
    char device_id[RP_DEVICE_ID_SIZE];
    char kind[RP_DEVICE_EVENT_KIND_MAX + 1];
};
typedef struct rp_threat_news {
    rp_threat_alert_t *alerts;
    size_t nalerts, alerts_cap;
    struct rp_threat_quarantine_news *quarantined;
    size_t nquarantined, quarantined_cap;
} rp_threat_news_t;

/* rp_threat_process without telling: what it found is added to *news, for the caller to tell
 * after its commit (or free, when the commit failed). */
rp_err_t rp_threat_process_held(rp_store_t *s, const rp_threat_signal_t *sig, size_t n, int64_t now,
                                rp_threat_news_t *news) RP_MUST_CHECK;
/* Log and count what news holds, call the hooks (may be NULL), and free it. */
void rp_threat_news_tell(rp_threat_news_t *news, const rp_threat_hooks_t *hooks);
void rp_threat_news_free(rp_threat_news_t *news);
/* The same with the worker's hooks (the tenant's webhook): on the worker's thread, once the
 * transaction that holds news has committed. */
void rp_threat_tell(rp_worker_t *w, rp_threat_news_t *news);

/* A subject's parts: OUT *type ("kind" or "bucket") and *name (pointers into subject). */
void rp_threat_subject_split(const char *subject, const char **type, const char **name);

/* The tenant's webhook secret: 64 hex digits, HMAC-SHA256 under a key derived from the master
 * key, of the tenant ID and the webhook's salt. Never stored; wiped by the caller. */
rp_err_t rp_webhook_secret(const uint8_t master[RP_MASTER_KEY_LEN], const char *tenant_id,
                           const uint8_t salt[RP_WEBHOOK_SALT_LEN], char out[65]) RP_MUST_CHECK;
/* "sha256=" and the hex HMAC-SHA256 of body under the secret (its 64 hex characters as bytes):
 * the X-Rampart-Signature header. */
rp_err_t rp_webhook_sign(const char *secret, const void *body, size_t len,
                         char out[72]) RP_MUST_CHECK;

/* /metrics: open alerts, alerts per tenant, webhook deliveries, quarantines. */
void rp_threat_metrics(rp_worker_t *w, struct evbuffer *buf);

/*
 * Webhook deliveries (threat.c): queued in the store's outbox in the transaction that raised the
 * alert or the quarantine, sent by one thread per process with its own store connection, retried
 * with backoff until the receiver answers 2xx (or a day has passed), kept across restarts.
 */
rp_err_t rp_webhook_sender_start(rp_server_t *srv) RP_MUST_CHECK;
void rp_webhook_sender_stop(void);

/* Whether a webhook may connect to this address: not loopback, link-local (169.254/16, the cloud
 * metadata address, fe80::/10), private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7),
 * unspecified, multicast or reserved; an IPv4 address inside IPv6 is judged as IPv4. */
struct sockaddr;
bool rp_webhook_addr_allowed(const struct sockaddr *sa);

/* Resolve a webhook URL's host once and check every address it has, and that it is https (unless
 * allow_private: both): RP_OK with resolve, libcurl's CURLOPT_RESOLVE entry pinning the first;
 * RP_ERR_DENIED (an address or plain http refused), RP_ERR_NOT_FOUND (does not resolve) or
 * RP_ERR_INVALID_ARG (no host) with why, a sentence for the operator (the host and address, never
 * the URL's path or query). */
rp_err_t rp_webhook_target(const char *url, bool allow_private, char *resolve, size_t cap,
                           char *why, size_t why_cap) RP_MUST_CHECK;

/* Its routes: alerts, the spike rule, the webhook, the quarantine policy and its actions, a
 * device's release. */
typedef struct rp_req rp_req_t;
void rp_h_alerts_list(rp_req_t *r);
void rp_h_threat_get(rp_req_t *r);
void rp_h_threat_set(rp_req_t *r);
void rp_h_webhook_get(rp_req_t *r);
void rp_h_webhook_set(rp_req_t *r);
void rp_h_webhook_delete(rp_req_t *r);
void rp_h_quarantine_policy_get(rp_req_t *r);
void rp_h_quarantine_policy_set(rp_req_t *r);
void rp_h_quarantine_actions(rp_req_t *r);
void rp_h_device_release(rp_req_t *r);

#endif /* RAMPART_SERVER_THREAT_H */
