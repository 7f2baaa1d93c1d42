/*
 * Signed update metadata (docs/updates.md) and what devices fetch and report over mutual TLS:
 *
 *   operators  GET  /api/v1/tenants/T/update/online-key     the service's online public key
 *              GET  /api/v1/tenants/T/update/roots          the root metadata versions
 *              POST /api/v1/tenants/T/update/roots          a new root version (admin)
 *   devices    GET  /api/v1/device/roots?after=N            newer root metadata
 *              GET  /api/v1/device/targets                  signed: what this device should run
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

#include "rampart/base64.h"
#include "rampart/delta.h"
#include "rampart/file.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "rampart/metadata.h"
#include "rampart/update_state.h"
#include "server.h"

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

static bool role_has(const rp_md_role_t *role, const uint8_t *spki, size_t len);

static void pick_named(void *ctx, int64_t seq, const uint8_t *spki, size_t spki_len)
{
    struct key_pick *kp = ctx;

    if (kp->seq == 0 && role_has(kp->role, spki, spki_len))
        kp->seq = seq;
}

/* The key targets are signed with: the newest online key the tenant's newest root names (a key
 * made since is not used until a root names it), or the newest when there is no root yet. */
static rp_err_t signing_key(rp_req_t *r, const char *tenant_id, EVP_PKEY **key)
{
    rp_md_role_t *role = calloc(1, sizeof(*role));
    struct key_pick kp = {role, 0};
    uint8_t spki[RP_PUBKEY_DER_MAX];
    size_t spki_len;
    int64_t version, got;
    char *env = NULL;
    json_t *root = NULL;
    rp_err_t err = role != NULL ? rp_store_root_latest(r->w->store, tenant_id, &version, &env)
                                : RP_ERR_NO_MEMORY;

    *key = NULL;
    if (err == RP_OK && rp_md_peek(env, strlen(env), &root) == RP_OK &&
        rp_md_role_parse(json_object_get(json_object_get(root, "roles"), "online"), role) == RP_OK)
        err = rp_store_update_keys(r->w->store, tenant_id, pick_named, &kp);
    if (err == RP_ERR_NOT_FOUND)
        err = RP_OK; /* no root yet */
    if (err == RP_OK)
        err = online_key(r, tenant_id, kp.seq, key, spki, &spki_len, &got);
    json_decref(root);
    free(env);
    free(role);
    return err;
}

/* ---- root metadata: operators ---- */

/* Whether role lists the key. */
static bool role_has(const rp_md_role_t *role, const uint8_t *spki, size_t len)
{
    for (size_t i = 0; i < role->nkeys; i++)
        if (role->spki_len[i] == len && memcmp(role->spki[i], spki, len) == 0)
            return true;
    return false;
}

/*
 * Check a new root version: well formed, for this tenant, the next version, not expired, signed
 * by its own root keys and (after the first) by the previous version's, and naming the service's
 * online key. OUT: *version, *expires. On failure a reply was sent.
 */
static bool root_check(rp_req_t *r, const char *tenant_id, const char *env, size_t len,
                       int64_t *version, int64_t *expires)
{
    json_t *p = NULL, *verified = NULL, *roles;
    rp_md_role_t *root = calloc(1, sizeof(*root)), *prev_role = calloc(1, sizeof(*prev_role)),
                 *online = calloc(1, sizeof(*online)), *images = calloc(1, sizeof(*images));
    uint8_t spki[RP_PUBKEY_DER_MAX];
    size_t spki_len;
    int64_t latest = 0, newest;
    char *prev = NULL;
    EVP_PKEY *key = NULL;
    const char *why = NULL;
    bool ok = false;
    rp_err_t err;

    if (root == NULL || prev_role == NULL || online == NULL || images == NULL) {
        rp_reply_error(r, 500, "internal", "out of memory");
        goto out;
    }
    if (rp_md_peek(env, len, &p) != RP_OK) {
        rp_reply_error(r, 400, "malformed_metadata", "not a metadata envelope with a JSON payload");
        goto out;
    }
    roles = json_object_get(p, "roles");
    *version = json_integer_value(json_object_get(p, "version"));
    *expires = json_integer_value(json_object_get(p, "expires"));
    if (strcmp(json_string_value(json_object_get(p, "type")) ?: "", "rampart-root") != 0 ||
        strcmp(json_string_value(json_object_get(p, "tenant")) ?: "", tenant_id) != 0 ||
        *version < 1 || rp_md_role_parse(json_object_get(roles, "root"), root) != RP_OK ||
        rp_md_role_parse(json_object_get(roles, "online"), online) != RP_OK ||
        online->threshold != 1 ||
        rp_md_role_parse(json_object_get(roles, "images"), images) != RP_OK ||
        images->threshold != 1)
        why = "a root is {type: rampart-root, tenant, version >= 1, expires, roles: {root, "
              "online and images (threshold 1)}}, each role's keys listed once";
    else if (*expires <= (int64_t)time(NULL))
        why = "it has expired";
    if (why != NULL) {
        rp_reply_error(r, 400, "invalid_root", "%s", why);
        goto out;
    }
    err = rp_store_root_latest(r->w->store, tenant_id, &latest, &prev);
    if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 500, "internal", "cannot read the current root");
        goto out;
    }
    if (*version != latest + 1) {
        rp_reply_error(r, 409, "conflict", "the next root is version %lld",
                       (long long)(latest + 1));
        goto out;
    }
    /* Signed by its own root keys, and by the keys of the root it replaces. */
    if (rp_md_open(env, len, root, &verified) != RP_OK) {
        rp_reply_error(r, 400, "bad_signature", "not signed by its own root keys (threshold %zu)",
                       root->threshold);
        goto out;
    }
    if (prev != NULL) {
        json_t *pp = NULL, *pv = NULL;
        bool signed_by_prev =
            rp_md_peek(prev, strlen(prev), &pp) == RP_OK &&
            rp_md_role_parse(json_object_get(json_object_get(pp, "roles"), "root"), prev_role) ==
                RP_OK &&
            rp_md_open(env, len, prev_role, &pv) == RP_OK;
        json_decref(pp);
        json_decref(pv);
        if (!signed_by_prev) {
            rp_reply_error(r, 400, "bad_signature",
                           "a new root must also be signed by the root keys of version %lld",
                           (long long)latest);
            goto out;
        }
    }
    if (online_key(r, tenant_id, 0, &key, spki, &spki_len, &newest) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the online key");
        goto out;
    }
    if (!role_has(online, spki, spki_len)) {
        rp_reply_error(r, 400, "invalid_root",
                       "its online role does not name this service's newest online key (GET "
                       ".../update/online-key)");
        goto out;
    }
    ok = true;
out:
    EVP_PKEY_free(key);
    json_decref(p);
    json_decref(verified);
    free(prev);
    free(root);
    free(prev_role);
    free(online);
    free(images);
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

/* The device of the request's client certificate: current, of its tenant's CA, not revoked,
 * not blocked. On failure a reply was sent. */
bool rp_device_auth(rp_req_t *r, rp_device_t *device)
{
    X509 *peer = rp_req_peer_cert(r);
    char id[RP_DEVICE_ID_SIZE] = "", serial[RP_SERIAL_SIZE];
    rp_cert_record_t rec;
    const rp_ca_t *ca;

    if (peer == NULL) {
        rp_reply_error(r, 401, "unauthorized", "a device certificate is required (mutual TLS)");
        return false;
    }
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, id, sizeof(id)) !=
            RP_DEVICE_ID_LEN ||
        !rp_device_id_valid(id) || rp_store_device_get(r->w->store, id, device) != RP_OK ||
        rp_worker_ca_by_id(r->w, device->tenant_id, &ca) != RP_OK ||
        !rp_cert_chains_to(peer, ca->cert)) {
        rp_reply_error(r, 401, "unauthorized", "not a device certificate of a tenant here");
        return false;
    }
    rp_cert_serial_hex(peer, serial);
    if (rp_store_cert_get(r->w->store, serial, &rec) != RP_OK || rec.revoked_at != 0 ||
        strcmp(rec.device_id, id) != 0) {
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

static bool delta_path(rp_req_t *r, const char *from, const char *to, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/deltas", r->w->srv->data_dir);

    if (n < 0 || (size_t)n >= cap || (mkdir(out, 0700) != 0 && errno != EEXIST))
        return false;
    n = snprintf(out, cap, "%s/deltas/%s-%s.zst", r->w->srv->data_dir, from, to);
    return n > 0 && (size_t)n < cap;
}

/*
 * A delta from the image the device runs to the target, made on first use and kept: {"from": the
 * base image's ID, "image": the delta's SHA-256, "size"}. NULL when the service does not know
 * what the device runs, or a delta would not save most of the download.
 */
static json_t *delta_for(rp_req_t *r, const rp_device_t *d, const rp_image_record_t *target)
{
    char running[2 * RP_SHA256_LEN + 1], path[PATH_MAX], base[PATH_MAX], to[PATH_MAX];
    char sha[2 * RP_SHA256_LEN + 1];
    rp_image_record_t from;
    struct stat sb;
    int fd;
    rp_err_t err;

    if (target->size > RP_DELTA_MAX_IMAGE || !running_digest(r, d, target->component, running) ||
        strcmp(running, target->image_hash) == 0 ||
        rp_store_image_by_hash(r->w->store, d->tenant_id, running, &from) != RP_OK ||
        from.size > RP_DELTA_MAX_IMAGE || !delta_path(r, from.id, target->id, path, sizeof(path)))
        return NULL;
    if (access(path, R_OK) != 0) {
        char lock[PATH_MAX + 8];
        struct stat ls;
        if (snprintf(base, sizeof(base), "%s/images/%s", r->w->srv->data_dir, from.id) >=
                (int)sizeof(base) ||
            snprintf(to, sizeof(to), "%s/images/%s", r->w->srv->data_dir, target->id) >=
                (int)sizeof(to) ||
            snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock))
            return NULL;
        /* One maker per delta: while it works, the fleet's other requests get no delta (and
         * download the whole image) rather than all making the same one at once. A lock left by
         * a crash is taken over after ten minutes. */
        fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST && stat(lock, &ls) == 0 && ls.st_mtime < time(NULL) - 600)
                (void)unlink(lock);
            return NULL;
        }
        close(fd);
        err = rp_delta_make(base, to, path);
        (void)unlink(lock);
        if (err != RP_OK) {
            rp_log_warn("delta %s -> %s: %s", from.id, target->id, rp_strerror(err));
            return NULL;
        }
        rp_log_info("made the delta %.12s -> %.12s", from.id, target->id);
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    err = fstat(fd, &sb) == 0 ? rp_fd_sha256_hex(fd, sha) : RP_ERR_IO;
    close(fd);
    if (err != RP_OK || (uint64_t)sb.st_size * 2 > target->size)
        return NULL;
    return json_pack("{s:s, s:s, s:I}", "from", from.id, "image", sha, "size",
                     (json_int_t)sb.st_size);
}

/* The targets a device should run, signed with the online key now. */
void rp_h_device_targets(rp_req_t *r)
{
    const rp_device_t *d = &r->device;
    rp_deployment_t dep;
    rp_group_t group;
    json_t *targets = json_array(), *payload;
    char *text = NULL, *env = NULL;
    EVP_PKEY *key = NULL;
    int64_t now = (int64_t)time(NULL);
    bool have = false;
    rp_err_t err = rp_store_device_group(r->w->store, d->id, &group);

    if (err == RP_OK) {
        err = rp_store_deployment_for_device(r->w->store, group.id, d->id, &dep);
        have = err == RP_OK;
    }
    if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        json_decref(targets);
        rp_reply_error(r, 500, "internal", "cannot read the deployment");
        return;
    }
    for (size_t i = 0; have && i < dep.nimages; i++) {
        rp_image_record_t m;
        json_t *t, *delta;
        if (rp_store_image_get(r->w->store, d->tenant_id, dep.image_ids[i], &m) != RP_OK) {
            json_decref(targets);
            rp_reply_error(r, 500, "internal", "cannot read an image");
            return;
        }
        t = json_pack("{s:s, s:s, s:I, s:s, s:I, s:s}", "component", m.component, "image", m.id,
                      "size", (json_int_t)m.size, "version", m.version, "security_counter",
                      (json_int_t)m.security_counter, "image_hash", m.image_hash);
        if ((delta = delta_for(r, d, &m)) != NULL)
            json_object_set_new(t, "delta", delta);
        json_array_append_new(targets, t);
    }
    payload = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:o}", "type", "rampart-targets", "tenant",
                        d->tenant_id, "device", d->id, "version", (json_int_t)(have ? dep.seq : 0),
                        "expires", (json_int_t)(now + TARGETS_LIFETIME), "deployment",
                        have ? dep.id : "", "targets", targets);
    text = payload != NULL ? json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(payload);
    err = text != NULL ? signing_key(r, d->tenant_id, &key) : RP_ERR_NO_MEMORY;
    if (err == RP_OK)
        err = rp_md_sign(text, strlen(text), &key, 1, &env);
    if (err == RP_OK)
        rp_reply_bytes(r, 200, "application/json", env, strlen(env));
    else
        rp_reply_error(r, 500, "internal", "cannot sign the targets");
    EVP_PKEY_free(key);
    free(text);
    free(env);
}

static void serve_file(rp_req_t *r, const char *path);

void rp_h_device_image(rp_req_t *r)
{
    const rp_device_t *d = &r->device;
    const char *id = rp_req_param(r, "image");
    char path[PATH_MAX];
    rp_image_record_t m;

    if (rp_store_image_get(r->w->store, d->tenant_id, id, &m) != RP_OK ||
        snprintf(path, sizeof(path), "%s/images/%s", r->w->srv->data_dir, m.id) >=
            (int)sizeof(path)) {
        rp_reply_error(r, 404, "not_found", "no such image");
        return;
    }
    serve_file(r, path);
}

/* A delta between two of the tenant's images, once the service has made it. */
void rp_h_device_delta(rp_req_t *r)
{
    const rp_device_t *d = &r->device;
    const char *from = rp_req_param(r, "from"), *to = rp_req_param(r, "to");
    char path[PATH_MAX];
    rp_image_record_t a, b;

    if (rp_store_image_get(r->w->store, d->tenant_id, from, &a) != RP_OK ||
        rp_store_image_get(r->w->store, d->tenant_id, to, &b) != RP_OK ||
        !delta_path(r, a.id, b.id, path, sizeof(path)) || access(path, R_OK) != 0) {
        rp_reply_error(r, 404, "not_found", "no such delta");
        return;
    }
    serve_file(r, path);
}

/* A file, whole or the range asked for; its bytes counted as image bytes sent. */
static void serve_file(rp_req_t *r, const char *path)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    const char *range = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Range");
    char cr[96];
    uint64_t start = 0, len;
    bool unsat;
    struct stat sb;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        rp_reply_error(r, 500, "internal", "cannot read the image");
        return;
    }
    len = (uint64_t)sb.st_size;
    evhttp_add_header(out, "Accept-Ranges", "bytes");
    if (rp_range_parse(range, (uint64_t)sb.st_size, &start, &len, &unsat)) {
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)start,
                 (unsigned long long)(start + len - 1), (unsigned long long)sb.st_size);
        evhttp_add_header(out, "Content-Range", cr);
        atomic_fetch_add(&r->w->srv->metrics.image_bytes_sent, len);
        rp_reply_file(r, 206, "application/octet-stream", fd, start, len);
        return;
    }
    if (unsat) {
        close(fd);
        snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)sb.st_size);
        evhttp_add_header(out, "Content-Range", cr);
        rp_reply_error(r, 416, "range_not_satisfiable", "the image has %llu bytes",
                       (unsigned long long)sb.st_size);
        return;
    }
    atomic_fetch_add(&r->w->srv->metrics.image_bytes_sent, (uint64_t)sb.st_size);
    rp_reply_file(r, 200, "application/octet-stream", fd, 0, (uint64_t)sb.st_size);
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
    rp_group_t group;
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
    /* Only about a deployment of the device's own group: its counts are the group's. */
    if (rp_store_deployment_get(r->w->store, d->tenant_id, dep, &deployment) != RP_OK ||
        rp_store_device_group(r->w->store, d->id, &group) != RP_OK ||
        strcmp(group.id, deployment.group_id) != 0) {
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
    if (rp_store_device_update_set(r->w->store, &u) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot record the report");
        return;
    }
    rp_reply_json(r, 200, json_pack("{s:s}", "state", u.state));
}
