/*
 * Signed update metadata (docs/updates.md) and what devices fetch and report over mutual TLS:
 *
 *   operators  GET  /api/v1/tenants/T/update/online-key     the service's online public key
 *              GET  /api/v1/tenants/T/update/roots          the root metadata versions
 *              POST /api/v1/tenants/T/update/roots          a new root version (admin)
 *   devices    GET  /api/v1/device/roots?after=N            newer root metadata
 *              GET  /api/v1/device/targets[?security_counter_max=N]
 *                                                           signed: what this device should run
 *                                                           (N: what its root of trust accepts)
 *              GET  /api/v1/device/images/ID                an image (Range for resuming)
 *              POST /api/v1/device/updates                  how an update went
 *
 * A device proves itself with its current certificate (mutual TLS), as for EST re-enrollment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/pem.h>

#include "api.h"
#include "context.h"
#include "device_api.h"
#include "deltas.h"
#include "rampart/base64.h"
#include "rampart/delta.h"
#include "rampart/file.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "rampart/metadata.h"
#include "rampart/update_state.h"
#include "req.h"
#include "routes.h"

#define TARGETS_LIFETIME (24 * 3600) /* a targets document expires a day after it is signed */

/* ---- the online key ---- */

/* Make the tenant's online key number seq (RP_ERR_EXISTS when another worker made it first). */
static rp_err_t make_online_key(rp_req_t *r, const char *tenant_id, int64_t seq)
{
    uint8_t spki[RP_PUBKEY_DER_MAX];
    size_t spki_len;
    EVP_PKEY *fresh = NULL;
    char *pem = NULL;
    rp_err_t err = rp_key_generate(RP_SIG_ECDSA_P256, &fresh);

    if (err == RP_OK)
        err = rp_key_spki(fresh, spki, sizeof(spki), &spki_len);
    if (err == RP_OK)
        err = rp_key_encrypt_pem(r->w->srv->master_key, fresh, &pem);
    if (err == RP_OK)
        err = rp_store_update_key_put(r->w->store, tenant_id, seq, pem, spki, spki_len);
    if (err == RP_OK)
        rp_log_info("made online update key %lld of tenant %s", (long long)seq, tenant_id);
    EVP_PKEY_free(fresh);
    free(pem);
    return err;
}

/* The tenant's online key number seq (0: the newest; made on first use), decrypted. OUT: *key,
 * its SPKI and number. */
static rp_err_t online_key(rp_req_t *r, const char *tenant_id, int64_t seq, EVP_PKEY **key,
                           uint8_t spki[RP_PUBKEY_DER_MAX], size_t *spki_len, int64_t *got)
{
    char *pem = NULL;
    rp_err_t err = rp_store_update_key_get(r->w->store, tenant_id, seq, got, &pem, spki, spki_len);

    *key = NULL;
    if (err == RP_ERR_NOT_FOUND && seq == 0) {
        err = make_online_key(r, tenant_id, 1);
        if (err == RP_OK || err == RP_ERR_EXISTS)
            err = rp_store_update_key_get(r->w->store, tenant_id, 0, got, &pem, spki, spki_len);
    }
    if (err == RP_OK)
        err = rp_key_decrypt_pem(r->w->srv->master_key, pem, key);
    free(pem);
    return err;
}

struct key_pick {
    const rp_md_role_t *role;
    int64_t seq; /* the newest key the role names, 0 if none */
};

static void pick_named(void *ctx, int64_t seq, const uint8_t *spki, size_t spki_len)
{
    struct key_pick *kp = ctx;

    if (kp->seq == 0 && rp_md_role_has(kp->role, spki, spki_len))
        kp->seq = seq;
}

/* The tenant's newest root, as it was accepted when it was stored (its age does not matter:
 * devices judge that). RP_ERR_NOT_FOUND when it has none. OUT: *root. */
static rp_err_t latest_root(rp_req_t *r, const char *tenant_id, rp_md_root_t *root)
{
    rp_md_root_trust_t trust = {NULL, tenant_id, 0, true};
    char *env = NULL, detail[256];
    int64_t version;
    rp_err_t err = rp_store_root_latest(r->w->store, tenant_id, &version, &env);

    if (err == RP_OK) {
        err = rp_md_root_accept(env, strlen(env), &trust, root, detail, sizeof(detail));
        if (err != RP_OK)
            rp_log_error("tenant %s: stored root version %lld: %s", tenant_id, (long long)version,
                         detail);
    }
    free(env);
    return err;
}

/* The key targets are signed with: the newest online key the tenant's newest root names (a key
 * made since is not used until a root names it), or the newest when there is no root yet. */
static rp_err_t signing_key(rp_req_t *r, const char *tenant_id, EVP_PKEY **key)
{
    rp_md_root_t *root = calloc(1, sizeof(*root));
    struct key_pick kp = {root != NULL ? &root->online : NULL, 0};
    uint8_t spki[RP_PUBKEY_DER_MAX];
    size_t spki_len;
    int64_t got;
    rp_err_t err = root != NULL ? latest_root(r, tenant_id, root) : RP_ERR_NO_MEMORY;

    *key = NULL;
    if (err == RP_OK)
        err = rp_store_update_keys(r->w->store, tenant_id, pick_named, &kp);
    if (err == RP_ERR_NOT_FOUND)
        err = RP_OK; /* no root yet */
    if (err == RP_OK)
        err = online_key(r, tenant_id, kp.seq, key, spki, &spki_len, &got);
    free(root);
    return err;
}

/* ---- capabilities ---- */

#define CAPABILITY_LIFETIME_DEFAULT (7 * 24 * 3600)
#define CAPABILITY_LIFETIME_MIN 60

/*
 * POST /api/v1/tenants/T/devices/D/capabilities {"kind": "development", "expires_in": SECONDS}:
 * a capability for that one device, signed by the online key the tenant's newest root names: the
 * key the device already checks its targets with, so it checks the capability offline with the
 * root it holds. A tenant without a root has nothing its devices could check it against: 409.
 */
void rp_h_device_capability_create(rp_req_t *r)
{
    rp_md_capability_t c = {0};
    rp_md_root_t *root = NULL;
    EVP_PKEY *key = NULL;
    rp_device_t d;
    json_t *body, *kind, *exp;
    char *env = NULL, detail[256];
    int64_t lifetime = CAPABILITY_LIFETIME_DEFAULT;
    rp_err_t err;

    if (!rp_tenant_device(r, &d) || (body = rp_req_json(r)) == NULL)
        return;
    kind = json_object_get(body, "kind");
    exp = json_object_get(body, "expires_in");
    if (json_object_size(body) != (exp != NULL ? 2u : 1u) || !json_is_string(kind) ||
        rp_md_capability_kind_parse(json_string_value(kind), &c.kind) != RP_OK) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid",
                       "a capability request is {\"kind\": \"development\", \"expires_in\": "
                       "SECONDS} (expires_in optional)");
        return;
    }
    if (exp != NULL &&
        (!json_is_integer(exp) || json_integer_value(exp) < CAPABILITY_LIFETIME_MIN ||
         json_integer_value(exp) > RP_MD_CAPABILITY_LIFETIME_MAX)) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "expires_in is %d to %d seconds", CAPABILITY_LIFETIME_MIN,
                       RP_MD_CAPABILITY_LIFETIME_MAX);
        return;
    }
    if (exp != NULL)
        lifetime = json_integer_value(exp);
    json_decref(body);
    root = calloc(1, sizeof(*root));
    err = root != NULL ? latest_root(r, d.tenant_id, root) : RP_ERR_NO_MEMORY;
    free(root);
    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 409, "no_update_root",
                       "the tenant has no update root: a device checks a capability with the "
                       "online key its root names (rampart update-root sign, then post it)");
        return;
    }
    snprintf(c.tenant, sizeof(c.tenant), "%s", d.tenant_id);
    snprintf(c.device, sizeof(c.device), "%s", d.id);
    c.issued = (int64_t)time(NULL);
    c.expires = c.issued + lifetime;
    if (err == RP_OK)
        err = signing_key(r, d.tenant_id, &key);
    if (err == RP_OK)
        err = rp_md_capability_sign(&c, key, &env, detail, sizeof(detail));
    EVP_PKEY_free(key);
    if (err != RP_OK) {
        rp_log_error("tenant %s: capability for device %s: %s", d.tenant_id, d.id,
                     err == RP_ERR_INVALID_ARG ? detail : rp_strerror(err));
        rp_reply_error(r, 500, "internal", "cannot sign the capability");
        return;
    }
    rp_log_info("tenant %s: %s capability for device %s until %lld, by token %s", d.tenant_id,
                rp_md_capability_kind_name(c.kind), d.id, (long long)c.expires, r->tok.id);
    rp_reply_bytes(r, 201, "application/json", env, strlen(env));
    free(env);
}

/* ---- root metadata: operators ---- */

/*
 * Check a new root version (rp_md_root_accept): well formed, for this tenant, the next version
 * (version 1 first), not expired, signed by its own root keys and by the previous version's;
 * and, the service's own rule, naming the service's newest online key. OUT: *version, *expires.
 * On failure a reply was sent.
 */
static bool root_check(rp_req_t *r, const char *tenant_id, const char *env, size_t len,
                       int64_t *version, int64_t *expires)
{
    rp_md_root_t *prev = calloc(1, sizeof(*prev)), *root = calloc(1, sizeof(*root));
    rp_md_root_trust_t trust = {NULL, tenant_id, (int64_t)time(NULL), false};
    uint8_t spki[RP_PUBKEY_DER_MAX];
    size_t spki_len;
    int64_t newest;
    char detail[256];
    EVP_PKEY *key = NULL;
    bool ok = false;
    rp_err_t err;

    if (prev == NULL || root == NULL) {
        rp_reply_error(r, 500, "internal", "out of memory");
        goto out;
    }
    err = latest_root(r, tenant_id, prev);
    if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 500, "internal", "cannot read the current root");
        goto out;
    }
    trust.current = err == RP_OK ? prev : NULL;
    err = rp_md_root_accept(env, len, &trust, root, detail, sizeof(detail));
    if (err == RP_OK && trust.current == NULL && root->version != 1)
        err = RP_ERR_ROLLBACK;
    switch (err) {
    case RP_OK: break;
    case RP_ERR_BAD_SIGNATURE: rp_reply_error(r, 400, "bad_signature", "%s", detail); goto out;
    case RP_ERR_ROLLBACK:
        rp_reply_error(r, 409, "conflict", "the next root is version %lld",
                       (long long)(trust.current != NULL ? trust.current->version + 1 : 1));
        goto out;
    case RP_ERR_TOO_LARGE: rp_reply_error(r, 413, "too_large", "%s", detail); goto out;
    default: rp_reply_error(r, 400, "invalid_root", "%s", detail); goto out;
    }
    if (online_key(r, tenant_id, 0, &key, spki, &spki_len, &newest) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the online key");
        goto out;
    }
    if (!rp_md_role_has(&root->online, spki, spki_len)) {
        rp_reply_error(r, 400, "invalid_root",
                       "its online role does not name this service's newest online key (GET "
                       ".../update/online-key)");
        goto out;
    }
    *version = root->version;
    *expires = root->expires;
    ok = true;
out:
    EVP_PKEY_free(key);
    free(prev);
    free(root);
    return ok;
}

static void collect_root(void *ctx, int64_t version, const char *envelope, int64_t expires)
{
    char iso[32];

    (void)envelope;
    rp_iso_time(expires, iso);
    json_array_append_new(ctx,
                          json_pack("{s:I, s:s}", "version", (json_int_t)version, "expires", iso));
}

/* The online key as PEM, its number in Rampart-Key-Number. */
static void reply_online_key(rp_req_t *r, int status)
{
    BIO *bio = BIO_new(BIO_s_mem());
    uint8_t spki[RP_PUBKEY_DER_MAX];
    size_t spki_len;
    EVP_PKEY *key = NULL;
    int64_t seq = 0;
    char *pem, number[32];
    long n;

    if (bio == NULL || online_key(r, r->tenant.id, 0, &key, spki, &spki_len, &seq) != RP_OK ||
        PEM_write_bio_PUBKEY(bio, key) != 1) {
        rp_reply_error(r, 500, "internal", "cannot read the online key");
    } else {
        n = BIO_get_mem_data(bio, &pem);
        snprintf(number, sizeof(number), "%lld", (long long)seq);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Rampart-Key-Number", number);
        rp_reply_bytes(r, status, "application/x-pem-file", pem, (size_t)n);
    }
    BIO_free(bio);
    EVP_PKEY_free(key);
}

void rp_h_online_key_get(rp_req_t *r)
{
    reply_online_key(r, 200);
}

/* A new online key, used once a root names it (rampart update-root sign). */
void rp_h_online_key_rotate(rp_req_t *r)
{
    uint8_t spki[RP_PUBKEY_DER_MAX];
    size_t spki_len;
    EVP_PKEY *key = NULL;
    int64_t seq = 0;
    rp_err_t err = online_key(r, r->tenant.id, 0, &key, spki, &spki_len, &seq);

    EVP_PKEY_free(key);
    if (err == RP_OK)
        err = make_online_key(r, r->tenant.id, seq + 1);
    if (err != RP_OK) {
        rp_reply_error(r, err == RP_ERR_EXISTS ? 409 : 500,
                       err == RP_ERR_EXISTS ? "conflict" : "internal",
                       "cannot make a new online key");
        return;
    }
    reply_online_key(r, 201);
}

void rp_h_roots_list(rp_req_t *r)
{
    json_t *list = json_array();

    if (rp_store_roots_after(r->w->store, r->tenant.id, 0, collect_root, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list roots");
        return;
    }
    rp_reply_json(r, 200, json_pack("{s:o}", "roots", list));
}

void rp_h_root_add(rp_req_t *r)
{
    const rp_tenant_t *tenant = &r->tenant;
    int64_t version, expires;
    const uint8_t *body;
    size_t len;

    if ((body = rp_req_body(r, &len)) == NULL ||
        !root_check(r, tenant->id, (const char *)body, len, &version, &expires))
        return;
    {
        char *copy = strndup((const char *)body, len);
        rp_err_t err = copy != NULL
                           ? rp_store_root_add(r->w->store, tenant->id, version, copy, expires)
                           : RP_ERR_NO_MEMORY;
        free(copy);
        if (err == RP_ERR_EXISTS) {
            rp_reply_error(r, 409, "conflict", "root version %lld exists", (long long)version);
            return;
        }
        if (err != RP_OK) {
            rp_reply_error(r, 500, "internal", "cannot store the root");
            return;
        }
    }
    rp_log_info("tenant %s: update root version %lld", tenant->id, (long long)version);
    rp_reply_json(r, 201, json_pack("{s:I}", "version", (json_int_t)version));
}

/* ---- devices ---- */

bool rp_device_failed(const rp_device_t *device)
{
    return device->last_attested_at != 0 && !device->last_passed;
}

/* The device of the request's client certificate: current, of its tenant's CA, not revoked,
 * not blocked, not quarantined, its last attestation passed. On a recovery route, a device whose
 * only bar is a proven failed attestation is served too, with that certificate or one the failure
 * revoked (docs/protocol.md "Verdicts"). On failure a reply was sent. */
bool rp_device_auth(rp_req_t *r, rp_device_t *device, bool recovery)
{
    X509 *peer = rp_req_peer_cert(r);
    char id[RP_DEVICE_ID_SIZE] = "", serial[RP_SERIAL_SIZE];
    rp_cert_record_t rec;
    const rp_ca_t *ca = NULL;
    X509 *issuer;
    bool known, ended = false;
    rp_err_t err;

    if (peer == NULL) {
        rp_reply_error(r, 401, "unauthorized", "a device certificate is required (mutual TLS)");
        return false;
    }
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, id, sizeof(id)) !=
            RP_DEVICE_ID_LEN ||
        !rp_device_id_valid(id)) {
        rp_reply_error(r, 401, "unauthorized", "not a device certificate of a tenant here");
        return false;
    }
    /* Only "not found" is the caller's fault: a database out of reach must not tell a valid
     * device that its certificate is unknown (rp_reply_failure answers 503 for that). */
    err = rp_store_device_get(r->w->store, id, device);
    if (err == RP_OK)
        err = rp_worker_ca_by_id(r->w, device->tenant_id, &ca);
    if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        rp_reply_failure(r, err, "cannot look up the device: %s", rp_strerror(err));
        return false;
    }
    /* Any of the tenant's valid CAs: during a rollover, certificates of both are in use. On a
     * recovery route, for a device whose only bar is a proven failure, a certificate of that CA
     * that ended at most RP_RECOVERY_ENDED_MAX ago too (review r10 M2: a device offline for a day
     * is not locked out); what else it must be is checked below, as for a current one. */
    issuer = err == RP_OK ? rp_ca_issuer_of(ca, peer) : NULL;
    if (issuer != NULL && !rp_req_peer_chains_to(r, peer, issuer)) {
        ended = recovery && rp_device_failed(device) && !device->blocked &&
                rp_cert_chains_to_ended(peer, issuer, (int64_t)time(NULL), RP_RECOVERY_ENDED_MAX);
        if (!ended)
            issuer = NULL;
    }
    if (issuer == NULL) {
        rp_reply_error(r, 401, "unauthorized", "not a device certificate of a tenant here");
        return false;
    }
    /* Before the revocation (a quarantine revokes): the device hears why it is refused. */
    if (device->quarantined_at != 0 && !device->blocked) {
        rp_reply_error(r, 403, "quarantined",
                       "the device is quarantined by its tenant's policy until an operator "
                       "releases it");
        return false;
    }
    rp_cert_serial_hex(peer, serial);
    err = rp_store_cert_get(r->w->store, serial, &rec);
    if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        rp_reply_failure(r, err, "cannot look up the certificate: %s", rp_strerror(err));
        return false;
    }
    known = err == RP_OK && strcmp(rec.device_id, id) == 0;
    /* Before the revocation too (a proven failed attestation revokes: docs/protocol.md
     * "Verdicts"): the device hears why, and what brings it back. Its recovery routes stay open
     * to a certificate of its own that nothing but such a failure revoked, or a bar since
     * lifted, whichever came first (RP_REVOKED_OTHER, never taken: a revocation by a block or a
     * quarantine that still holds, or an older one of a device barred when schema 29 came; the
     * device's state refuses a quarantine above and a block here, whatever its certificate). */
    if (rp_device_failed(device) && !device->blocked) {
        if (recovery && known &&
            (rec.revoked_at == 0 || rec.revoked_for == RP_REVOKED_FAILED ||
             rec.revoked_for == RP_REVOKED_LIFTED))
            return true;
        if (ended) { /* an ended certificate opens nothing else */
            rp_reply_error(r, 401, "unauthorized", "the certificate has ended");
            return false;
        }
        rp_reply_error(r, 403, "attestation_failed",
                       "the device's last attestation failed (%s): it has a certificate again "
                       "when it next passes (until then it may send its reports and status and "
                       "fetch its update)",
                       device->last_reason);
        return false;
    }
    if (ended) { /* (unreachable: ended needs a failed device; fail closed all the same) */
        rp_reply_error(r, 401, "unauthorized", "the certificate has ended");
        return false;
    }
    if (!known || rec.revoked_at != 0) {
        rp_reply_error(r, 403, "forbidden", "the certificate is revoked or unknown");
        return false;
    }
    if (device->blocked) {
        rp_reply_error(r, 403, "blocked", "the device is blocked");
        return false;
    }
    return true;
}

static void collect_envelope(void *ctx, int64_t version, const char *envelope, int64_t expires)
{
    (void)version;
    (void)expires;
    if (json_array_size(ctx) < 64) /* a device far behind catches up in a few requests */
        json_array_append_new(ctx, json_string(envelope));
}

void rp_h_device_roots(rp_req_t *r)
{
    const rp_device_t *d = &r->device;
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    struct evkeyvalq kv;
    const char *after = NULL;
    json_t *list = json_array();
    long long n = 0;

    if (q != NULL && evhttp_parse_query_str(q, &kv) == 0) {
        after = evhttp_find_header(&kv, "after");
        if (after != NULL)
            n = strtoll(after, NULL, 10);
        evhttp_clear_headers(&kv);
    }
    if (rp_store_roots_after(r->w->store, d->tenant_id, n < 0 ? 0 : n, collect_envelope, list) !=
        RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot read roots");
        return;
    }
    rp_reply_json(r, 200, json_pack("{s:o}", "roots", list));
}

/* ---- deltas ---- */

struct last_pass {
    json_t *claims; /* of the newest passed attestation */
};

static void newest_pass(void *ctx, const rp_attestation_t *a)
{
    struct last_pass *lp = ctx;

    if (lp->claims == NULL && a->passed)
        lp->claims = json_loads(a->claims_json, 0, NULL);
}

/* The digest of what the device said it runs as component, at its newest passed attestation
 * (the last one measured, when it lists the component more than once). */
static bool running_digest(rp_req_t *r, const rp_device_t *d, const char *component,
                           char digest[2 * RP_SHA256_LEN + 1])
{
    struct last_pass lp = {NULL};
    json_t *c;
    size_t i;
    bool found = false;

    if (rp_store_attestation_list(r->w->store, d->tenant_id, d->id, 20, newest_pass, &lp) != RP_OK)
        return false;
    json_array_foreach(json_object_get(lp.claims, "components"), i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *dg = json_string_value(json_object_get(c, "digest"));
        if (name != NULL && dg != NULL && strcmp(name, component) == 0 &&
            strlen(dg) == 2 * RP_SHA256_LEN) {
            snprintf(digest, 2 * RP_SHA256_LEN + 1, "%s", dg);
            found = true;
        }
    }
    json_decref(lp.claims);
    return found;
}

/* The tenant's image the device runs as component, by its newest passed attestation. */
static bool running_image(rp_req_t *r, const rp_device_t *d, const char *component,
                          rp_image_record_t *m)
{
    char digest[2 * RP_SHA256_LEN + 1];

    return running_digest(r, d, component, digest) &&
           rp_store_image_by_hash(r->w->store, d->tenant_id, digest, m) == RP_OK;
}

/*
 * A delta from the image the device runs to the target, when it is made: the base image's ID,
 * the delta's SHA-256 and size. One not made yet is asked of the delta makers (deltas.h), off the
 * loop, and this device gets the whole image. False too when the service does not know what the
 * device runs, or a delta would not save most of the download.
 */
static bool delta_for(rp_req_t *r, const rp_device_t *d, const rp_image_record_t *target,
                      rp_md_delta_t *delta)
{
    char sha[2 * RP_SHA256_LEN + 1];
    rp_image_record_t from;
    uint64_t size = 0;
    rp_err_t err;

    if (target->size > RP_DELTA_MAX_IMAGE || !running_image(r, d, target->component, &from) ||
        strcmp(from.image_hash, target->image_hash) == 0 || from.size > RP_DELTA_MAX_IMAGE)
        return false;
    err = rp_store_delta_get(r->w->store, from.id, target->id, sha, &size);
    if (err == RP_OK) {
        /* made, but its blob gone (a data directory restored without it): made again */
        char name[RP_BLOB_NAME_MAX + 1];
        uint64_t blob_size;
        rp_blob_name_delta(from.id, target->id, name);
        if (rp_blob_stat(r->w->blobs, name, &blob_size) == RP_ERR_NOT_FOUND &&
            rp_store_delta_forget(r->w->store, from.id, target->id, sha) == RP_OK)
            err = RP_ERR_NOT_FOUND;
    }
    if (err == RP_ERR_NOT_FOUND)
        (void)rp_deltas_request(r->w->srv->deltas, from.id, target->id);
    if (err != RP_OK || size * 2 > target->size)
        return false;
    snprintf(delta->from, sizeof(delta->from), "%s", from.id);
    snprintf(delta->sha256, sizeof(delta->sha256), "%s", sha);
    delta->size = size;
    return true;
}

/* A device's query number: 0 to max in decimal (absent: *n untouched). false on a malformed
 * one, with a reply sent. */
static bool query_number(rp_req_t *r, struct evkeyvalq *kv, const char *name,
                         unsigned long long max, unsigned long long *n)
{
    const char *v = evhttp_find_header(kv, name);
    char *end = NULL;

    if (v == NULL)
        return true;
    errno = 0;
    if (v[0] >= '0' && v[0] <= '9')
        *n = strtoull(v, &end, 10);
    if (end == NULL || *end != '\0' || errno != 0 || *n > max) {
        rp_reply_error(r, 400, "invalid", "%s is 0 to %llu", name, max);
        return false;
    }
    return true;
}

/* The largest targets version a device may say it holds: far above any the service serves (one
 * per deployment or group move), far below where one more could overflow. */
#define HELD_MAX (1ULL << 53)

/*
 * What the device's query says. ?security_counter_max=N: the largest security counter its root of
 * trust accepts (64 for a TPM), kept so that a deployment it could never install is refused.
 * ?targets_version=N: the version of the targets it holds (*held; 0 when it does not say), so
 * that it is never served less (rp_store_device_targets_version). Absent (an agent from before):
 * nothing is known. On a malformed value a reply was sent.
 */
static bool device_query(rp_req_t *r, const rp_device_t *d, int64_t *held)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    struct evkeyvalq kv;
    unsigned long long max = UINT64_MAX, version = 0;
    bool ok;

    *held = 0;
    if (q == NULL)
        return true;
    if (evhttp_parse_query_str(q, &kv) != 0) {
        rp_reply_error(r, 400, "invalid", "a malformed query");
        return false;
    }
    ok = query_number(r, &kv, "security_counter_max", UINT32_MAX, &max) &&
         query_number(r, &kv, "targets_version", HELD_MAX, &version);
    if (ok && max != UINT64_MAX &&
        rp_store_device_counter_max_set(r->w->store, d->id, (uint32_t)max, (int64_t)time(NULL)) !=
            RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot record the device's counter limit");
        ok = false;
    }
    *held = (int64_t)version;
    evhttp_clear_headers(&kv);
    return ok;
}

/* The targets a device should run (rp_md_targets_t), signed with the online key now. */
void rp_h_device_targets(rp_req_t *r)
{
    const rp_device_t *d = &r->device;
    rp_md_targets_t *t = calloc(1, sizeof(*t));
    rp_deployment_t dep;
    rp_group_t group;
    char *env = NULL, detail[256];
    EVP_PKEY *key = NULL;
    bool have = false;
    int64_t held = 0;
    rp_err_t err = t != NULL ? rp_store_device_group(r->w->store, d->id, &group) : RP_ERR_NO_MEMORY;

    if (t != NULL && !device_query(r, d, &held)) {
        free(t);
        return;
    }
    if (err == RP_OK) {
        err = rp_store_deployment_for_device(r->w->store, group.id, d->id, &dep);
        have = err == RP_OK;
    }
    if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        free(t);
        rp_reply_error(r, 500, "internal", "cannot read the deployment");
        return;
    }
    for (size_t i = 0; have && i < dep.nimages && i < RP_MD_TARGETS_MAX; i++) {
        rp_md_target_t *g = &t->targets[t->ntargets++];
        rp_image_record_t m;
        if (rp_store_image_get(r->w->store, d->tenant_id, dep.image_ids[i], &m) != RP_OK ||
            rp_image_version_parse(m.version, strlen(m.version), &g->version) != RP_OK ||
            strlen(m.component) >= sizeof(g->component)) {
            free(t);
            rp_reply_error(r, 500, "internal", "cannot read an image");
            return;
        }
        memcpy(g->component, m.component, strlen(m.component) + 1);
        snprintf(g->image, sizeof(g->image), "%s", m.id);
        snprintf(g->image_hash, sizeof(g->image_hash), "%s", m.image_hash);
        g->size = m.size;
        g->has_security_counter = m.has_security_counter;
        g->security_counter = m.security_counter;
        g->has_delta = delta_for(r, d, &m, &g->delta);
    }
    snprintf(t->tenant, sizeof(t->tenant), "%s", d->tenant_id);
    snprintf(t->device, sizeof(t->device), "%s", d->id);
    snprintf(t->deployment, sizeof(t->deployment), "%s", have ? dep.id : "");
    t->expires = (int64_t)time(NULL) + TARGETS_LIFETIME;
    /* Recorded before it is served: a deployment paused later stays offered to this device, so
     * its targets version never goes back; nor does moving it to a group whose deployment is
     * older (the version is the device's own, not the deployment's global number). */
    err =
        have ? rp_store_deployment_reached(r->w->store, dep.id, d->id, (int64_t)time(NULL)) : RP_OK;
    if (err == RP_OK) {
        int64_t version = 0;
        err = rp_store_device_targets_version(r->w->store, d->id, have ? dep.id : "",
                                              have ? dep.seq : 0, held, &version);
        t->version = version;
    }
    if (err != RP_OK) {
        free(t);
        rp_reply_error(r, 500, "internal", "cannot record the device's targets");
        return;
    }
    err = signing_key(r, d->tenant_id, &key);
    if (err == RP_OK)
        err = rp_md_targets_sign(t, key, &env, detail, sizeof(detail));
    if (err == RP_OK)
        rp_reply_bytes(r, 200, "application/json", env, strlen(env));
    else
        rp_reply_error(r, 500, "internal", "cannot sign the targets");
    if (err == RP_ERR_INVALID_ARG)
        rp_log_error("device %s: targets: %s", d->id, detail);
    EVP_PKEY_free(key);
    free(env);
    free(t);
}

static void serve_blob(rp_req_t *r, const char *name);

/*
 * Whether the device's current targets name the image: it is in the newest deployment of the
 * device's group that reaches the device (what device_targets() offers). A device fetches only
 * what it is offered: not another group's images, not another release, not one its rollout has
 * not reached. OUT: *m, the image, when it is offered.
 */
static rp_err_t offered(rp_req_t *r, const rp_device_t *d, const char *id, rp_image_record_t *m,
                        bool *yes)
{
    rp_deployment_t dep;
    rp_group_t group;
    rp_err_t err = rp_store_device_group(r->w->store, d->id, &group);

    *yes = false;
    if (err == RP_OK)
        err = rp_store_deployment_for_device(r->w->store, group.id, d->id, &dep);
    for (size_t i = 0; err == RP_OK && i < dep.nimages && !*yes; i++)
        *yes = strcmp(dep.image_ids[i], id) == 0;
    if (err == RP_OK && *yes)
        err = rp_store_image_get(r->w->store, d->tenant_id, id, m);
    if (err == RP_ERR_NOT_FOUND) {
        *yes = false;
        err = RP_OK;
    }
    return err;
}

/* An image the device's targets name (else 404, as for an image that does not exist). */
void rp_h_device_image(rp_req_t *r)
{
    const rp_device_t *d = &r->device;
    const char *id = rp_req_param(r, "image");
    char name[RP_BLOB_NAME_MAX + 1];
    rp_image_record_t m;
    bool yes;

    if (offered(r, d, id, &m, &yes) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the device's targets");
        return;
    }
    if (!yes) {
        rp_reply_error(r, 404, "not_found", "no such image in this device's targets");
        return;
    }
    rp_blob_name_image(m.id, name);
    serve_blob(r, name);
}

/* A delta the device's targets offered: to an image they name, from the one the device runs,
 * once made (else 404). */
void rp_h_device_delta(rp_req_t *r)
{
    const rp_device_t *d = &r->device;
    const char *from = rp_req_param(r, "from"), *to = rp_req_param(r, "to");
    char name[RP_BLOB_NAME_MAX + 1], sha[2 * RP_SHA256_LEN + 1];
    rp_image_record_t a, b;
    uint64_t size;
    bool yes;

    if (offered(r, d, to, &b, &yes) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the device's targets");
        return;
    }
    if (!yes || !running_image(r, d, b.component, &a) || strcmp(a.id, from) != 0 ||
        rp_store_delta_get(r->w->store, a.id, b.id, sha, &size) != RP_OK) {
        rp_reply_error(r, 404, "not_found", "no such delta for this device");
        return;
    }
    rp_blob_name_delta(a.id, b.id, name);
    serve_blob(r, name);
}

/* A blob open for a reply (rp_reply_stream's source): read a chunk at a time on the loop (from
 * the database, one query of at most RP_BLOB_CHUNK bytes on the worker's connection). */
static ssize_t blob_source_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    size_t got = 0;

    return rp_blob_read(ctx, off, buf, len, &got) == RP_OK ? (ssize_t)got : -1;
}

static void blob_source_close(void *ctx)
{
    rp_blob_close(ctx);
}

/* A blob, whole or the range asked for; its bytes counted as image bytes sent. */
static void serve_blob(rp_req_t *r, const char *name)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    const char *range = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Range");
    rp_blob_reader_t *blob = NULL;
    rp_reply_source_t src = {blob_source_read, blob_source_close, NULL};
    char cr[96];
    uint64_t start = 0, len, size = 0;
    bool unsat;
    rp_err_t err = rp_blob_open(r->w->blobs, name, &blob, &size);

    if (err == RP_ERR_NOT_FOUND) { /* (the server checks at start that none is elsewhere) */
        rp_log_error("%s: in the database but not in the blob store (--blobs %s)", name,
                     rp_blobs_kind_name(r->w->srv->blobs));
        rp_reply_error(r, 500, "blob_missing",
                       "the service has lost this image's bytes (%s): its operator must restore "
                       "them (docs/operations.md, \"Moving blobs between stores\")",
                       name);
        return;
    }
    if (err != RP_OK) {
        rp_reply_failure(r, err, "cannot read the image: %s", rp_strerror(err));
        return;
    }
    src.ctx = blob;
    len = size;
    evhttp_add_header(out, "Accept-Ranges", "bytes");
    if (rp_range_parse(range, size, &start, &len, &unsat)) {
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)start,
                 (unsigned long long)(start + len - 1), (unsigned long long)size);
        evhttp_add_header(out, "Content-Range", cr);
        if (r->method != EVHTTP_REQ_HEAD)
            atomic_fetch_add(&r->w->srv->metrics.image_bytes_sent, len);
        rp_reply_stream(r, 206, "application/octet-stream", src, start, len);
        return;
    }
    if (unsat) {
        rp_blob_close(blob);
        snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
        evhttp_add_header(out, "Content-Range", cr);
        rp_reply_error(r, 416, "range_not_satisfiable", "the image has %llu bytes",
                       (unsigned long long)size);
        return;
    }
    if (r->method != EVHTTP_REQ_HEAD) /* a HEAD is sent the headers only */
        atomic_fetch_add(&r->w->srv->metrics.image_bytes_sent, size);
    rp_reply_stream(r, 200, "application/octet-stream", src, 0, size);
}

/* "pending|downloading|...": the states a device may report, for the refusal's message. */
static void reported_states(char *out, size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    for (int i = 0; i < RP_UPDATE_STATE_COUNT; i++)
        if (rp_update_state_reported((rp_update_state_t)i) && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n > 0 ? "|" : "",
                                  rp_update_state_name((rp_update_state_t)i));
}

void rp_h_device_report(rp_req_t *r)
{
    const rp_device_t *d = &r->device;
    json_t *body = rp_req_json(r);
    const char *dep, *detail;
    char allowed[128];
    rp_update_state_t state;
    rp_deployment_t deployment;
    rp_device_update_t u;
    rp_err_t err;
    bool known;

    if (body == NULL)
        return;
    dep = json_string_value(json_object_get(body, "deployment"));
    detail = json_string_value(json_object_get(body, "detail"));
    known =
        rp_update_state_parse(json_string_value(json_object_get(body, "state")), &state) == RP_OK &&
        rp_update_state_reported(state);
    if (dep == NULL || !known || (detail != NULL && strlen(detail) > RP_UPDATE_DETAIL_MAX)) {
        json_decref(body);
        reported_states(allowed, sizeof(allowed));
        rp_reply_error(r, 400, "invalid",
                       "{\"deployment\", \"state\": %s, \"detail\" (at most %d bytes)}", allowed,
                       RP_UPDATE_DETAIL_MAX);
        return;
    }
    /* Only about a deployment of the device's tenant that targets it: the tenant here, the
     * targeting where the report is recorded (rp_store_device_update_set), in one transaction
     * with it, so that a move of the device out of the group is either before both or after */
    if (rp_store_deployment_get(r->w->store, d->tenant_id, dep, &deployment) != RP_OK) {
        json_decref(body);
        rp_reply_error(r, 404, "not_found", "no such deployment for this device");
        return;
    }
    memset(&u, 0, sizeof(u));
    snprintf(u.device_id, sizeof(u.device_id), "%s", d->id);
    snprintf(u.deployment_id, sizeof(u.deployment_id), "%s", deployment.id);
    snprintf(u.state, sizeof(u.state), "%s", rp_update_state_name(state));
    snprintf(u.detail, sizeof(u.detail), "%s", detail != NULL ? detail : "");
    u.at = (int64_t)time(NULL);
    json_decref(body);
    err = rp_store_device_update_set(r->w->store, &u);
    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 404, "not_found", "no such deployment for this device");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot record the report");
        return;
    }
    rp_reply_json(r, 200, json_pack("{s:s}", "state", u.state));
}
