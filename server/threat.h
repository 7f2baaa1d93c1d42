/*
 * Threat detection and automatic quarantine (docs/failure-reporting.md, "Threat detection"): every
 * ingestion path hands what it stored to rp_threat_observe, after the store has committed it, and
 * threat.c alone decides what follows (per-tenant baselines per event kind and per crash bucket,
 * spikes raised as alerts on /metrics and to the tenant's webhook, and, with the tenant's policy
 * on, quarantine of the devices whose events match it).
 */
#ifndef RAMPART_SERVER_THREAT_H
#define RAMPART_SERVER_THREAT_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

/* One thing a device reported or the service saw of it. Borrowed for the call only. */
typedef struct rp_threat_signal {
    const char *tenant_id;
    const char *device_id;
    const char *kind;   /* as stored: an event kind ("syscall", "connection"...) or a report kind
                           ("crash", "attestation_failed", "image_refused"...) */
    const char *bucket; /* a crash's bucket ID; NULL for anything else */
    const char *reason; /* its reason as the device or the service stated it; "" if none */
    int64_t at;         /* unix seconds, as the device said; rates count the service's own time */
} rp_threat_signal_t;

/*
 * Count n signals that have just been stored, and act on them. Never fails the caller's request:
 * what goes wrong here is logged and counted in the metrics, and the data stays stored.
 */
void rp_threat_observe(rp_worker_t *w, const rp_threat_signal_t *sig, size_t n);

#endif /* RAMPART_SERVER_THREAT_H */
