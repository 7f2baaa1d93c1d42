/*
 * Device attestation (RFC 9334's verifier): single-use nonces, then evidence and the device's
 * public key in, a verdict and (on a pass) a 24-hour certificate out. Every attestation is
 * recorded, pass or the exact reason it failed, before the device hears the verdict: the record
 * goes to the recorder thread (group commit) and the answer is sent when it is on disk. A failure
 * that proves nothing about the device (proves_nothing()) is counted for its source address
 * instead of in the device's history.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/x509.h>

#include "attest.h"
#include "context.h"
#include "rampart/attest_binding.h"
#include "rampart/base64.h"
#include "rampart/eat.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "recorder.h"
#include "req.h"
#include "routes.h"
#include "threat.h"

#define EPOCH_LOG_EVERY 60 /* seconds between two log lines of an unusable nonce epoch */

/*
 * The nonce epoch to issue a nonce in: the database's, read now on the worker's own connection (a
 * one-row read), so that every replica issues nonces of the new epoch from the moment `nonces
 * reset-watermark` commits, whether it spends nonces or not. false: a refusal was sent (the
 * database out of reach: 503, or another failure: 500; or an epoch no nonce can carry, which
 * only a restore or a hand edit makes: 503, and the log says how to end it, at most every
 * EPOCH_LOG_EVERY seconds). Fails closed: no nonce is issued in an epoch not read.
 */
static bool nonce_epoch(rp_req_t *r, uint32_t *epoch)
{
    static atomic_llong logged_at; /* when an unusable epoch was last logged */
    int64_t stored = 0;
    rp_err_t err = rp_store_nonces_epoch(r->w->store, &stored);

    if (err != RP_OK) {
        rp_reply_failure(r, err, "cannot read the nonce epoch");
        return false;
    }
    if (rp_nonce_epoch_fits(stored)) {
        *epoch = (uint32_t)stored;
        return true;
    }
    if (rp_log_due(&logged_at, EPOCH_LOG_EVERY))
        rp_log_error("the nonce epoch in the database is %lld, beyond a nonce's 4 bytes (a restore "
                     "or a hand edit): no nonce is issued (503) until `rampart-server nonces "
                     "reset-watermark` sets it right (docs/operations.md \"Clocks\")",
                     (long long)stored);
    rp_reply_error(r, 503, "unavailable",
                   "nonces cannot be issued now: the service's nonce epoch is out of range (its "
                   "log says why)");
    return false;
}

void rp_attest_nonce(rp_req_t *r)
{
    uint8_t nonce[RP_NONCE_SIZE], device[RP_SHA256_LEN];
    char hex[2 * RP_NONCE_SIZE + 1];
    json_t *body = rp_req_json(r);
    const char *device_id;
    int lifetime = r->w->srv->nonce_lifetime;
    uint32_t epoch = 0;

    if (body == NULL)
        return;
    device_id = json_string_value(json_object_get(body, "device_id"));
    if (!rp_device_id_valid(device_id) ||
        rp_hex_decode(device_id, RP_DEVICE_ID_LEN, device, sizeof(device)) != RP_OK) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "\"device_id\" must be 64 lowercase hex digits");
        return;
    }
    json_decref(body);
    if (!nonce_epoch(r, &epoch))
        return;
    /* Nothing is stored: the nonce carries its own proof (nonce.h). */
    if (rp_nonce_issue(r->w->srv->nonce_key, device, epoch, (int64_t)time(NULL) + lifetime,
                       nonce) != RP_OK ||
        rp_hex_encode(nonce, sizeof(nonce), hex, sizeof(hex)) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot issue a nonce");
        return;
    }
    atomic_fetch_add(&r->w->srv->metrics.nonces_issued, 1);
    rp_reply_json(r, 200, json_pack("{s:s, s:i}", "nonce", hex, "expires_in", lifetime));
}

/* What the evidence said, for the record and for operators. */
static json_t *claims_json(const rp_eat_claims_t *c)
{
    static const char *const dbg[] = {"enabled", "disabled", "disabled-since-boot",
                                      "disabled-permanently", "disabled-fully-permanently"};
    char hex[2 * RP_SHA256_LEN + 1];
    json_t *comps = json_array(), *o;

    for (size_t i = 0; i < c->ncomponents; i++) {
        const rp_eat_component_t *m = &c->components[i];
        char digest[2 * RP_SHA256_LEN + 1], signer[2 * RP_SHA256_LEN + 1];
        (void)rp_hex_encode(m->digest, RP_SHA256_LEN, digest, sizeof(digest));
        (void)rp_hex_encode(m->signer, RP_SHA256_LEN, signer, sizeof(signer));
        o = json_pack("{s:s, s:s, s:s, s:s}", "name", m->name, "version", m->version, "digest",
                      digest, "signer", signer);
        if (m->has_security_counter)
            json_object_set_new(o, "security_counter", json_integer(m->security_counter));
        json_array_append_new(comps, o);
    }
    o = json_pack("{s:s, s:I, s:o}", "debug", dbg[c->debug], "boot_count",
                  (json_int_t)c->boot_count, "components", comps);
    if (c->has_register &&
        rp_hex_encode(c->measurement_register, RP_SHA256_LEN, hex, sizeof(hex)) == RP_OK)
        json_object_set_new(o, "measurement_register", json_string(hex));
    if (c->development)
        json_object_set_new(o, "development_until", json_integer(c->development_expires));
    return o;
}

/*
 * Appraisal, against the tenant's policy (rp_policy_t: debug status, components and register
 * required) and its reference values: the claims must be consistent (the register is the chain
 * of the components' digests), and each component an image the tenant uploaded, unless the
 * device's group allows others (a Development group); a component that is one of the tenant's
 * images must claim that image's security counter (or none when it has none), since the counter
 * is part of what was signed. On the service's own failure (the store, a hash) *failed is set:
 * nothing is recorded, since a refusal here revokes the device's certificates.
 */
static rp_attest_reason_t appraise(rp_store_t *store, const rp_device_t *device,
                                   const rp_eat_claims_t *c, bool *failed)
{
    uint8_t chain[2 * RP_SHA256_LEN], reg[RP_SHA256_LEN] = {0};
    char digest[2 * RP_SHA256_LEN + 1];
    rp_image_record_t img;
    rp_policy_t policy;
    rp_group_t group;
    bool allow_unknown = false, looked_up = false;
    rp_err_t err;

    *failed = false;
    if (rp_store_policy_get(store, device->tenant_id, &policy) != RP_OK) {
        *failed = true;
        return RP_REASON_POLICY;
    }
    if (c->development && !policy.allow_development)
        return RP_REASON_DEVELOPMENT;
    if (c->debug == RP_EAT_DEBUG_ENABLED && !policy.allow_debug)
        return RP_REASON_DEBUG_ENABLED;
    if (!c->has_register && policy.require_register)
        return RP_REASON_NO_REGISTER;
    if (c->ncomponents == 0 && policy.require_components)
        return RP_REASON_NO_COMPONENTS;
    if (c->has_register) {
        for (size_t i = 0; i < c->ncomponents; i++) {
            memcpy(chain, reg, RP_SHA256_LEN);
            memcpy(chain + RP_SHA256_LEN, c->components[i].digest, RP_SHA256_LEN);
            if (rp_sha256(chain, sizeof(chain), reg) != RP_OK) {
                *failed = true; /* the service's failure, not the device's */
                return RP_REASON_POLICY;
            }
        }
        if (rp_ct_memcmp(reg, c->measurement_register, RP_SHA256_LEN) != 0)
            return RP_REASON_MEASUREMENTS_INCONSISTENT;
    }
    for (size_t i = 0; i < c->ncomponents; i++) {
        const rp_eat_component_t *m = &c->components[i];
        if (rp_hex_encode(m->digest, RP_SHA256_LEN, digest, sizeof(digest)) != RP_OK) {
            *failed = true;
            return RP_REASON_POLICY;
        }
        err = rp_store_image_by_hash(store, device->tenant_id, digest, &img);
        if (err == RP_OK) {
            if (img.has_security_counter != m->has_security_counter ||
                (img.has_security_counter && img.security_counter != m->security_counter))
                return RP_REASON_SECURITY_COUNTER;
            continue;
        }
        if (err == RP_ERR_NOT_FOUND && !looked_up) {
            looked_up = true;
            err = rp_store_device_group(store, device->id, &group);
            if (err == RP_OK)
                allow_unknown = group.allow_unknown_images;
            else if (err == RP_ERR_NOT_FOUND)
                err = RP_OK; /* in no group: only the tenant's images */
        }
        if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
            *failed = true;
            return RP_REASON_POLICY;
        }
        if (!allow_unknown)
            return RP_REASON_UNKNOWN_IMAGE;
    }
    return RP_REASON_PASS;
}

static const char *reason_message(rp_attest_reason_t reason)
{
    switch (reason) {
    case RP_REASON_MALFORMED_EVIDENCE: return "the evidence is not a valid EAT";
    case RP_REASON_BAD_SIGNATURE: return "the evidence is not signed by the device's key";
    case RP_REASON_UEID_MISMATCH: return "the evidence names another device";
    case RP_REASON_NONCE_UNKNOWN:
        return "the nonce was not issued by this service (or not since its nonces were reset)";
    case RP_REASON_NONCE_REPLAYED: return "the nonce was already used";
    case RP_REASON_NONCE_EXPIRED: return "the nonce expired";
    case RP_REASON_NONCE_WRONG_DEVICE: return "the nonce was issued to another device";
    case RP_REASON_UNCLAIMED: return "the device is not claimed by any tenant";
    case RP_REASON_BLOCKED: return "the device is blocked";
    case RP_REASON_MEASUREMENTS_INCONSISTENT:
        return "the measurement register does not match the components";
    case RP_REASON_POLICY: return "refused by policy";
    case RP_REASON_UNKNOWN_IMAGE:
        return "the device runs an image its tenant never uploaded (its group does not allow that)";
    case RP_REASON_DEBUG_ENABLED:
        return "the device's debug status is enabled, and its tenant's policy refuses that";
    case RP_REASON_NO_COMPONENTS:
        return "the evidence lists no component, and the tenant's policy requires one";
    case RP_REASON_NO_REGISTER:
        return "the evidence has no measurement register, and the tenant's policy requires it";
    case RP_REASON_SECURITY_COUNTER:
        return "a component is one of the tenant's images but claims another security counter "
               "than that image holds";
    case RP_REASON_DEVELOPMENT:
        return "the device is in development mode (it holds a development capability), and its "
               "tenant's policy refuses that";
    case RP_REASON_QUARANTINED:
        return "the device is quarantined by its tenant's policy (its security events matched "
               "it) until an operator releases it";
    case RP_REASON_CHANNEL_MISMATCH:
        return "the evidence is bound to another TLS connection than the one it came on (or this "
               "one is not TLS 1.3, or a proxy ends TLS in between: use the nonce flow then)";
    case RP_REASON_CHANNEL_EXPIRED:
        return "the connection the evidence is bound to is older than a nonce's lifetime";
    case RP_REASON_CHANNEL_REUSED: return "bound evidence already attested on this connection";
    default: return "passed";
    }
}

/*
 * Whether a failure proves nothing about the device: until the device's key has shown the
 * evidence to be its own and fresh (signature, UEID, a nonce this service issued to it, unexpired),
 * anyone who knows the device's public key could have sent it. Such a failure must not change
 * the device's record: it is counted for the address it came from (unproven_sources).
 */
static bool proves_nothing(rp_attest_reason_t reason)
{
    switch (reason) {
    case RP_REASON_MALFORMED_EVIDENCE:
    case RP_REASON_BAD_SIGNATURE:
    case RP_REASON_UEID_MISMATCH:
    case RP_REASON_NONCE_UNKNOWN:
    case RP_REASON_NONCE_EXPIRED:
    case RP_REASON_NONCE_WRONG_DEVICE:
    case RP_REASON_NONCE_REPLAYED:
    case RP_REASON_CHANNEL_MISMATCH:
    case RP_REASON_CHANNEL_EXPIRED:
    case RP_REASON_CHANNEL_REUSED: return true;
    default: return false;
    }
}

/* What is being recorded about one attestation. */
struct verdict {
    const char *device_id;
    const rp_device_t *device; /* NULL: no tenant holds the device */
    rp_attest_reason_t reason;
    json_t *claims;
    const uint8_t *nonce; /* a usable nonce, spent with the record */
    size_t nonce_len;
    int64_t nonce_expires;
    uint32_t nonce_epoch;
};

/* One attestation between its verdict and its answer: what is recorded and what to say. */
struct pending {
    rp_record_job_t job;
    struct evhttp_request *req;
    rp_attest_reason_t reason;
    rp_attestation_t att;
    rp_cert_record_t cert;
    uint8_t spki[RP_PUBKEY_DER_MAX];
    uint8_t nonce[RP_NONCE_SIZE];
    char source[RP_ADDRESS_MAX]; /* the client's address */
    json_t *answer;              /* a pass: the certificate */
};

static void recorded(rp_record_job_t *job);

/* A device the store refuses (rp_store_device_standing): quarantined, or blocked by an operator.
 * On a store failure *failed is set. */
static rp_attest_reason_t blocked_reason(rp_store_t *store, const char *device_id, bool *failed)
{
    int64_t since = 0;

    if (rp_store_device_quarantine(store, device_id, &since, NULL) != RP_OK)
        *failed = true;
    return since != 0 ? RP_REASON_QUARANTINED : RP_REASON_BLOCKED;
}

/*
 * Whether a refusal is the device's own evidence failing appraisal (debug enabled, an image its
 * tenant never uploaded, measurements inconsistent, a security counter mismatch, development mode
 * or another policy refusal): proven (a failure that proves nothing could come from anyone who
 * knows its public key), of a device a tenant holds, and not the refusal of a device already
 * blocked or quarantined (that is the action's effect, not news). Such a verdict revokes the
 * device's certificates in its own transaction (rp_attestation_write_t.revokes: docs/protocol.md
 * "Verdicts") and is a signal for threat detection (threat.h).
 */
static bool proven_failure(rp_attest_reason_t reason, const char *tenant_id)
{
    return !proves_nothing(reason) && tenant_id[0] != '\0' && reason != RP_REASON_PASS &&
           reason != RP_REASON_UNCLAIMED && reason != RP_REASON_BLOCKED &&
           reason != RP_REASON_QUARANTINED;
}

/* Whether a refusal, as recorded, is a signal for threat detection: a proven failure, not turned
 * into a replay by the store. */
static bool is_signal(const struct pending *p, bool unproven)
{
    return !unproven && proven_failure(p->reason, p->att.tenant_id);
}

/*
 * Hand the verdict to the recorder; the answer goes out when it is written. On a pass, cert is
 * the certificate's record, spki the device's key and answer the body to send (taken).
 */
static void submit(rp_req_t *r, const struct verdict *v, const rp_cert_record_t *cert,
                   const uint8_t *spki, size_t spki_len, json_t *answer)
{
    struct pending *p = calloc(1, sizeof(*p));
    char *text = v->claims != NULL ? json_dumps(v->claims, JSON_COMPACT) : NULL;
    rp_attestation_t *a;

    if (p == NULL || spki_len > sizeof(p->spki) || v->nonce_len > sizeof(p->nonce)) {
        free(p);
        free(text);
        json_decref(answer);
        rp_reply_error(r, 500, "internal", "cannot record the attestation");
        return;
    }
    p->req = r->req;
    p->reason = v->reason;
    p->answer = answer;
    a = &p->att;
    snprintf(a->device_id, sizeof(a->device_id), "%s", v->device_id);
    if (v->device != NULL)
        snprintf(a->tenant_id, sizeof(a->tenant_id), "%s", v->device->tenant_id);
    a->at = (int64_t)time(NULL);
    a->passed = v->reason == RP_REASON_PASS;
    snprintf(a->reason, sizeof(a->reason), "%s", rp_attest_reason_code(v->reason));
    snprintf(a->claims_json, sizeof(a->claims_json), "%s", text != NULL ? text : "{}");
    free(text);
    p->job.write.a = a;
    if (cert != NULL) {
        p->cert = *cert;
        p->job.write.cert = &p->cert;
        memcpy(p->spki, spki, spki_len);
        p->job.write.spki = p->spki;
        p->job.write.spki_len = spki_len;
    }
    if (v->nonce != NULL) {
        memcpy(p->nonce, v->nonce, v->nonce_len);
        p->job.write.nonce = p->nonce;
        p->job.write.nonce_len = v->nonce_len;
        p->job.write.nonce_expires = v->nonce_expires;
        p->job.write.nonce_epoch = v->nonce_epoch;
    }
    {
        struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
        char *host = NULL;
        ev_uint16_t port = 0;
        if (conn != NULL)
            evhttp_connection_get_peer(conn, &host, &port);
        snprintf(p->source, sizeof(p->source), "%s", host != NULL ? host : "unknown");
    }
    p->job.write.source = p->source;
    p->job.write.unproven = proves_nothing(v->reason);
    p->job.write.revokes = proven_failure(v->reason, a->tenant_id);
    p->job.write.spent_reason = rp_attest_reason_code(RP_REASON_NONCE_REPLAYED);
    p->job.write.stale_reason = rp_attest_reason_code(RP_REASON_NONCE_UNKNOWN);
    p->job.write.blocked_reason = rp_attest_reason_code(RP_REASON_BLOCKED);
    p->job.worker = r->w;
    p->job.done = recorded;
    if (!rp_recorder_submit(r->w->srv->recorder, &p->job)) {
        json_decref(p->answer);
        free(p);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "5");
        rp_reply_error(r, 503, "busy", "too many attestations are waiting to be recorded; retry");
    }
}

/* On the worker's loop, once the record is on disk (or could not be written). */
static void recorded(rp_record_job_t *job)
{
    struct pending *p = (struct pending *)job; /* job is the first member */
    rp_req_t r = {.w = job->worker, .req = p->req};
    rp_metrics_t *m = &job->worker->srv->metrics;
    bool unproven = job->write.unproven || job->write.as == RP_RECORDED_AS_REPLAY ||
                    job->write.as == RP_RECORDED_AS_STALE;
    char iso[32];

    /* What the transaction found may have turned a pass into a refusal: the nonce was spent by a
     * racing request, or is of an older nonce epoch (issued before `nonces reset-watermark`: not
     * one the service now takes), or the device was blocked meanwhile. The certificate made for
     * it is then neither recorded nor sent. */
    if (job->write.as == RP_RECORDED_AS_REPLAY)
        p->reason = RP_REASON_NONCE_REPLAYED;
    else if (job->write.as == RP_RECORDED_AS_STALE)
        p->reason = RP_REASON_NONCE_UNKNOWN;
    else if (job->write.as == RP_RECORDED_AS_BLOCKED)
        p->reason = RP_REASON_BLOCKED;
    if (job->err == RP_OK && unproven)
        atomic_fetch_add(&m->attestations_unproven, 1);
    if (job->err != RP_OK) {
        rp_reply_failure(&r, job->err, "cannot record the attestation");
    } else if (p->reason == RP_REASON_PASS) {
        atomic_fetch_add(&m->attestations[p->reason], 1);
        atomic_fetch_add(&m->certificates_issued, 1);
        rp_iso_time(p->cert.not_after, iso);
        rp_log_debug("attestation of %.16s… passed: certificate %s until %s", p->att.device_id,
                     p->cert.serial, iso);
        rp_reply_json(&r, 200, p->answer);
        p->answer = NULL;
    } else {
        atomic_fetch_add(&m->attestations[p->reason], 1);
        rp_log_info("attestation of %.16s… refused: %s%s%s", p->att.device_id,
                    rp_attest_reason_code(p->reason), unproven ? ", unproven, from " : "",
                    unproven ? p->source : "");
        rp_reply_json(&r, 403,
                      json_pack("{s:s, s:s, s:s}", "error", "attestation_failed", "reason",
                                rp_attest_reason_code(p->reason), "message",
                                reason_message(p->reason)));
        if (is_signal(p, unproven)) {
            char why[RP_DEVICE_EVENT_REASON_MAX + 1];
            /* the service's own finding, not the failed device's word: not device_failed */
            rp_threat_signal_t sig = {p->att.tenant_id,
                                      p->att.device_id,
                                      "attestation_failed",
                                      NULL,
                                      why,
                                      p->att.at,
                                      false};
            snprintf(why, sizeof(why), "%s: %s", rp_attest_reason_code(p->reason),
                     reason_message(p->reason));
            rp_threat_observe(job->worker, &sig, 1); /* after the record is on disk */
        }
    }
    json_decref(p->answer);
    free(p);
}

static void refuse(rp_req_t *r, struct verdict *v)
{
    submit(r, v, NULL, NULL, 0, NULL);
}

rp_err_t rp_attest_request_parse(const uint8_t *body, size_t len, uint8_t **evidence,
                                 size_t *evidence_len, uint8_t spki[RP_PUBKEY_DER_MAX],
                                 size_t *spki_len, const char **error, const char **message)
{
    uint8_t point[RP_P256_POINT_LEN], *key = NULL;
    size_t key_len = 0;
    json_error_t jerr;
    json_t *j;
    const char *ev, *pk;
    rp_err_t err = RP_ERR_MALFORMED;

    *evidence = NULL;
    *error = "invalid";
    *message = "the body must be a JSON object with \"evidence\" and \"public_key\" (base64)";
    j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    ev = json_string_value(json_object_get(j, "evidence"));
    pk = json_string_value(json_object_get(j, "public_key"));
    if (j == NULL) {
        *error = "malformed_json";
        *message = "the body is not valid JSON";
    } else if (ev != NULL && pk != NULL) {
        if (rp_base64_decode(ev, strlen(ev), evidence, evidence_len) != RP_OK ||
            *evidence_len == 0 || *evidence_len > RP_EAT_MAX_SIZE) {
            *error = "malformed_evidence";
            *message = "\"evidence\" must be base64 of a COSE_Sign1 of at most 8192 bytes";
        } else if (rp_base64_decode(pk, strlen(pk), &key, &key_len) != RP_OK ||
                   key_len > RP_PUBKEY_DER_MAX ||
                   rp_pubkey_p256_point(key, key_len, point) != RP_OK) {
            /* One encoding per key: a device's ID must not change with how it writes its key. */
            *error = "malformed_public_key";
            *message = "\"public_key\" must be base64 of the DER SubjectPublicKeyInfo of an "
                       "ECDSA P-256 key (named curve, uncompressed point)";
        } else {
            memcpy(spki, key, key_len);
            *spki_len = key_len;
            err = RP_OK;
        }
    }
    json_decref(j);
    free(key);
    if (err != RP_OK) {
        free(*evidence);
        *evidence = NULL;
    }
    return err;
}

static rp_attest_reason_t nonce_reason(rp_nonce_result_t n)
{
    switch (n) {
    case RP_NONCE_OK: return RP_REASON_PASS;
    case RP_NONCE_EXPIRED: return RP_REASON_NONCE_EXPIRED;
    case RP_NONCE_OTHER_DEVICE: return RP_REASON_NONCE_WRONG_DEVICE;
    /* A nonce from a clock that ran ahead: not one a replica with a right clock issues. */
    case RP_NONCE_AHEAD: return RP_REASON_NONCE_UNKNOWN;
    default: return RP_REASON_NONCE_UNKNOWN;
    }
}

static rp_attest_reason_t binding_reason(rp_binding_result_t b)
{
    switch (b) {
    case RP_BINDING_OK: return RP_REASON_PASS;
    case RP_BINDING_EXPIRED: return RP_REASON_CHANNEL_EXPIRED;
    case RP_BINDING_REUSED: return RP_REASON_CHANNEL_REUSED;
    default: return RP_REASON_CHANNEL_MISMATCH;
    }
}

/* A binding is never mistaken for a nonce, nor a nonce for a binding: their lengths differ. */
_Static_assert(RP_ATTEST_BINDING_LEN != RP_NONCE_SIZE, "a binding must not look like a nonce");

/*
 * Whether the evidence is fresh, by the one of the two ways its eat_nonce's length says
 * (docs/protocol.md): bound to the request's own TLS connection (rampart/attest_binding.h), or a
 * nonce this service issued to the device. A usable nonce is put in v, to be spent with the
 * verdict; a binding is spent on the connection, and nothing is written for it.
 */
static rp_attest_reason_t freshness(rp_req_t *r, const rp_eat_claims_t *claims,
                                    const uint8_t device[RP_SHA256_LEN], struct verdict *v)
{
    rp_attest_reason_t reason;

    if (claims->nonce_len == RP_ATTEST_BINDING_LEN)
        return binding_reason(
            rp_req_binding_spend(r, claims->nonce, claims->nonce_len, r->w->srv->nonce_lifetime));
    reason = nonce_reason(rp_nonce_check(r->w->srv->nonce_key, claims->nonce, claims->nonce_len,
                                         device, (int64_t)time(NULL), r->w->srv->nonce_lifetime,
                                         &v->nonce_expires, &v->nonce_epoch));
    if (reason == RP_REASON_PASS) {
        /* From here on the nonce is spent with whatever verdict follows. */
        v->nonce = claims->nonce;
        v->nonce_len = claims->nonce_len;
    }
    return reason;
}

void rp_attest(rp_req_t *r)
{
    uint8_t spki[RP_PUBKEY_DER_MAX], *evidence = NULL, id_bytes[RP_SHA256_LEN];
    char device_id[RP_DEVICE_ID_SIZE], *cert_pem = NULL, iso[32];
    rp_eat_claims_t *claims = calloc(1, sizeof(*claims));
    struct verdict v = {device_id, NULL, RP_REASON_PASS, NULL, NULL, 0, 0, 0};
    const char *error, *message;
    rp_device_t device;
    rp_cert_record_t rec;
    const rp_ca_t *ca;
    const uint8_t *body;
    X509 *cert = NULL;
    size_t evidence_len, spki_len, len;
    int64_t issued;
    bool failed = false;
    rp_err_t err;

    if (claims == NULL) {
        rp_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    body = rp_req_body(r, &len);
    if (body == NULL)
        goto out;
    if (rp_attest_request_parse(body, len, &evidence, &evidence_len, spki, &spki_len, &error,
                                &message) != RP_OK) {
        rp_reply_error(r, 400, error, "%s", message);
        goto out;
    }
    /* The device is its key: its ID is that key's hash, and the evidence must be signed by it. */
    if (rp_device_id_of_spki(spki, spki_len, device_id) != RP_OK ||
        rp_hex_decode(device_id, RP_DEVICE_ID_LEN, id_bytes, sizeof(id_bytes)) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot compute the device ID");
        goto out;
    }
    memset(&device, 0, sizeof(device));
    snprintf(device.id, sizeof(device.id), "%s", device_id);
    err = rp_store_device_standing(r->w->store, device_id, device.tenant_id, &device.blocked);
    if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 500, "internal", "cannot read the device");
        goto out;
    }
    v.device = err == RP_OK ? &device : NULL;
    /* Before the signature check: keys made up by the million cost neither it nor a record. */
    if (v.device == NULL && !rp_unclaimed_allowed(r))
        goto out;

    err = rp_eat_verify(evidence, evidence_len, spki, spki_len, claims);
    if (err != RP_OK) {
        v.reason =
            err == RP_ERR_BAD_SIGNATURE ? RP_REASON_BAD_SIGNATURE : RP_REASON_MALFORMED_EVIDENCE;
        refuse(r, &v);
        goto out;
    }
    v.claims = claims_json(claims);
    if (rp_ct_memcmp(claims->device_id, id_bytes, RP_SHA256_LEN) != 0) {
        v.reason = RP_REASON_UEID_MISMATCH;
        refuse(r, &v);
        goto out;
    }
    v.reason = freshness(r, claims, id_bytes, &v);
    if (v.reason == RP_REASON_PASS) {
        if (v.device == NULL)
            v.reason = RP_REASON_UNCLAIMED;
        else if (device.blocked)
            v.reason = blocked_reason(r->w->store, device.id, &failed);
        else
            v.reason = appraise(r->w->store, &device, claims, &failed);
        if (failed) {
            rp_reply_error(r, 500, "internal", "cannot appraise the evidence");
            goto out;
        }
    }
    if (v.reason != RP_REASON_PASS) {
        refuse(r, &v);
        goto out;
    }

    /* Passed: a certificate from the tenant's CA, recorded with the verdict in one transaction.
     * No valid CA to sign with: nothing is recorded (ca.c logs and counts it). */
    issued = (int64_t)time(NULL);
    if (rp_worker_ca_by_id(r->w, device.tenant_id, &ca) != RP_OK ||
        (err = rp_ca_issue_device_cert(ca, spki, spki_len, device_id, issued, &cert, &rec)) !=
            RP_OK ||
        rp_cert_pem(cert, &cert_pem) != RP_OK) {
        rp_reply_error(r, 500, "internal",
                       err == RP_ERR_EXPIRED ? "the tenant has no valid CA to issue the certificate"
                                             : "cannot issue the certificate");
        goto out;
    }
    rp_iso_time(rec.not_after, iso);
    /* expires_in: the life left from its issue, in seconds, which a device counts on its own
     * monotonic clock from the answer (device clocks are not trusted to read not_after);
     * service_ca: the service CAs, the current one and its successor (ca.h, the service CA's
     * rollover), which the device trusts beside the one it was given. */
    submit(r, &v, &rec, spki, spki_len,
           json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s*}", "result", "pass", "device_id",
                     device_id, "certificate", cert_pem, "ca_chain", ca->cert_pem, "serial",
                     rec.serial, "not_after", iso, "expires_in",
                     (json_int_t)(rec.not_after - issued), "service_ca",
                     atomic_load(&r->w->srv->service_ca_pem)));
out:
    json_decref(v.claims);
    X509_free(cert);
    free(cert_pem);
    free(evidence);
    free(claims);
}
