/*
 * Image intake, the operator API's side of it (/api/v1/tenants/T/...): image signing keys,
 * uploads, and images made from them. An image is accepted only when it verifies against one of
 * the tenant's image keys; it is then stored under the SHA-256 of its bytes and never changes.
 * What is deployed where is fleet.c's.
 *
 * Uploads come in chunks of at most RP_UPLOAD_CHUNK_MAX bytes, so that no request body the
 * service buffers is large and an interrupted upload resumes where the service's copy ends:
 *   POST uploads {"size": N}              -> {"id": U, "received": 0, "chunk_max": ...}
 *   PUT  uploads/U?offset=K  (bytes)      -> {"received": M}    each chunk on disk before 200
 *   GET  uploads/U                        -> {"received": M}
 *   POST images {"upload": U, "component": C}   -> the image, verified and stored (201); the
 *        upload's row then names it, so that the same POST again answers it (200)
 * An app image whose payload is a tree also has its tree checked (rp_apptree_check_io).
 * A finished upload can serve another route too (debug files: reports.c, rp_upload_finished).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/keyvalq_struct.h>
#include <openssl/pem.h>

#include "context.h"
#include "images.h"
#include "names.h"
#include "paging.h"
#include "rampart/apptree.h"
#include "rampart/base64.h"
#include "rampart/component.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/imgsign.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "req.h"
#include "routes.h"
#include "store/blob.h"

#define IMAGE_KEYS_MAX 32        /* image keys a tenant may have */
#define UPLOAD_STALE (24 * 3600) /* an upload nobody wrote to for a day is dropped */
#define UPLOADS_SWEEP_BATCHES 64 /* of 16 uploads, in one sweep at most */

bool rp_object_id_valid(const char *s, char prefix)
{
    size_t n = strlen(s);

    if (n != 26 || s[0] != prefix || s[1] != '_')
        return false;
    for (size_t i = 2; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool rp_image_id_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n != 2 * RP_SHA256_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* ---- image keys ---- */

static json_t *image_key_json(const rp_image_key_record_t *k)
{
    char *b64 = NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", k->id, "name", k->name, "type", k->alg,
                          "keyhash", k->keyhash, "created", rp_iso_time_json(k->created));

    /* The key itself (DER SubjectPublicKeyInfo, base64), for the root metadata's images role. */
    if (rp_base64_encode(k->spki, k->spki_len, &b64) == RP_OK)
        json_object_set_new(o, "spki", json_string(b64));
    free(b64);
    return o;
}

static void collect_image_key(void *ctx, const rp_image_key_record_t *k)
{
    json_array_append_new(ctx, image_key_json(k));
}

static void count_key(void *ctx, const rp_image_key_record_t *k)
{
    (void)k;
    (*(size_t *)ctx)++;
}

/* The public key in PEM, as the image key record to store; on failure a 400 was sent. */
static bool parse_image_key(rp_req_t *r, const char *pem, rp_image_key_record_t *k)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    uint8_t hash[RP_SHA256_LEN];
    rp_sig_alg_t alg;
    bool ok = false;

    BIO_free(bio);
    if (key == NULL)
        rp_reply_error(r, 400, "invalid_key", "\"public_key\" must be a PEM public key");
    else if (rp_key_alg(key, &alg) != RP_OK)
        rp_reply_error(r, 400, "invalid_key", "image keys are ECDSA P-256 or Ed25519");
    else if (rp_key_spki(key, k->spki, sizeof(k->spki), &k->spki_len) != RP_OK ||
             rp_sha256(k->spki, k->spki_len, hash) != RP_OK ||
             rp_hex_encode(hash, sizeof(hash), k->keyhash, sizeof(k->keyhash)) != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot encode the key");
    else
        ok = true;
    if (ok)
        snprintf(k->alg, sizeof(k->alg), "%s", alg == RP_SIG_ED25519 ? "ed25519" : "ecdsa-p256");
    EVP_PKEY_free(key);
    return ok;
}

void rp_h_image_keys_list(rp_req_t *r)
{
    json_t *list;
    rp_page_t pg;

    if (!rp_page_request(r, &pg))
        return;
    list = json_array();
    if (rp_store_image_key_list(r->w->store, r->tenant.id, &pg, collect_image_key, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list image keys");
        return;
    }
    rp_page_reply(r, "image_keys", list, &pg, "id");
}

/* Which keys may sign a tenant's images is the tenant's most powerful setting: admin only. */
void rp_h_image_key_add(rp_req_t *r)
{
    const rp_tenant_t *tenant = &r->tenant;
    rp_image_key_record_t k;
    json_t *body;
    const char *name, *pem, *why;
    rp_err_t err;

    if ((body = rp_req_json(r)) == NULL)
        return;
    memset(&k, 0, sizeof(k));
    name = rp_name_json(json_object_get(body, "name"), &why);
    pem = json_string_value(json_object_get(body, "public_key"));
    if (name == NULL || pem == NULL) {
        json_decref(body);
        if (name == NULL)
            rp_reply_error(r, 400, "invalid", "\"name\" %s", why);
        else
            rp_reply_error(r, 400, "invalid", "\"public_key\" (PEM) is required");
        return;
    }
    snprintf(k.name, sizeof(k.name), "%s", name);
    snprintf(k.tenant_id, sizeof(k.tenant_id), "%s", tenant->id);
    {
        size_t n = 0;
        rp_err_t lerr = rp_store_image_key_list(r->w->store, tenant->id, NULL, count_key, &n);
        if (lerr != RP_OK || n >= IMAGE_KEYS_MAX) {
            json_decref(body);
            if (lerr != RP_OK)
                rp_reply_error(r, 500, "internal", "cannot read the image keys");
            else
                rp_reply_error(r, 409, "conflict", "a tenant has at most %d image keys",
                               IMAGE_KEYS_MAX);
            return;
        }
    }
    if (!parse_image_key(r, pem, &k)) {
        json_decref(body);
        return;
    }
    json_decref(body);
    err = rp_store_image_key_add(r->w->store, &k);
    if (err == RP_ERR_EXISTS) {
        rp_reply_error(r, 409, "conflict", "the tenant has this key, or a key of that name");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot add the image key");
        return;
    }
    rp_log_info("tenant %s: image key %s (%s, %s) added", tenant->id, k.id, k.name, k.alg);
    rp_reply_json(r, 201, image_key_json(&k));
}

/* ---- uploads ---- */

struct stale {
    char ids[16][RP_ID_SIZE];
    int n;
};

static void collect_stale(void *ctx, const rp_upload_t *u)
{
    struct stale *st = ctx;

    snprintf(st->ids[st->n++], RP_ID_SIZE, "%s", u->id);
}

void rp_uploads_sweep(rp_store_t *s, rp_blobs_t *b)
{
    int64_t before = (int64_t)time(NULL) - UPLOAD_STALE;
    struct stale st = {{{0}}, 0};
    char name[RP_BLOB_NAME_MAX + 1];
    unsigned swept = 0, dropped = 0;

    /* 16 at a time, at most UPLOADS_SWEEP_BATCHES times a sweep (the rest at the next one) */
    for (int batch = 0; batch < UPLOADS_SWEEP_BATCHES; batch++) {
        st.n = 0;
        if (rp_store_upload_stale(s, before, 16, collect_stale, &st) != RP_OK)
            break;
        for (int i = 0; i < st.n; i++) {
            /* Only if still inactive: a chunk marks its upload active before it is written,
             * and another replica's sweep may have dropped it already. Its row, then its bytes. */
            rp_err_t err = rp_store_upload_drop_stale(s, st.ids[i], before);
            if (err == RP_ERR_NOT_FOUND)
                continue;
            if (err != RP_OK) {
                st.n = 0; /* the database out of reach: the next sweep */
                break;
            }
            dropped++;
            rp_blob_name_upload(st.ids[i], name);
            err = rp_blob_remove(b, name);
            if (err != RP_OK && err != RP_ERR_NOT_FOUND) /* (none: nothing was ever sent) */
                rp_log_warn("upload %s: cannot remove its bytes", st.ids[i]);
        }
        if (st.n < 16)
            break;
    }
    if (dropped > 0)
        rp_log_info("uploads: %u left unwritten for a day dropped", dropped);
    if (rp_blobs_sweep(b, before, &swept) == RP_OK && swept > 0)
        rp_log_info("blob store: %u unfinished blob(s) dropped", swept);
}

/* (with "image": the image it became, once it became one) */
static json_t *upload_json(const rp_upload_t *u, uint64_t received)
{
    json_t *o = json_pack("{s:s, s:I, s:I, s:i, s:o}", "id", u->id, "size", (json_int_t)u->size,
                          "received", (json_int_t)received, "chunk_max", RP_UPLOAD_CHUNK_MAX,
                          "active", rp_iso_time_json(u->active));

    if (o != NULL && u->image_id[0] != '\0')
        json_object_set_new(o, "image", json_string(u->image_id));
    return o;
}

/* The query's one `key`, a decimal number: false when it is missing, repeated (which one would be
 * meant?) or not a number. */
static bool query_u64(rp_req_t *r, const char *key, uint64_t *out)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    struct evkeyvalq kv;
    char *end;
    int seen = 0;
    bool ok = false;

    *out = 0;
    if (q == NULL || evhttp_parse_query_str(q, &kv) != 0)
        return false;
    for (struct evkeyval *e = kv.tqh_first; e != NULL; e = e->next.tqe_next) {
        if (strcmp(e->key, key) != 0)
            continue;
        seen++;
        ok = false;
        if (e->value[0] >= '0' && e->value[0] <= '9') {
            errno = 0;
            *out = strtoull(e->value, &end, 10);
            ok = errno == 0 && *end == '\0';
        }
    }
    evhttp_clear_headers(&kv);
    return ok && seen == 1;
}

/* The bytes the service has of an upload (0: none yet; all of them once it became an image).
 * false, with a reply sent (503 while the blob store cannot be reached: blob.h), when it cannot be
 * told. */
static bool upload_received(rp_req_t *r, const rp_upload_t *u, uint64_t *n)
{
    char name[RP_BLOB_NAME_MAX + 1];
    rp_err_t err;

    *n = u->size;
    if (u->image_id[0] != '\0')
        return true;
    rp_blob_name_upload(u->id, name);
    err = rp_blob_stat(r->w->blobs, name, n);
    if (err == RP_ERR_NOT_FOUND)
        *n = 0;
    else if (err != RP_OK)
        rp_reply_failure(r, err, "cannot read the upload: %s", rp_strerror(err));
    return err == RP_OK || err == RP_ERR_NOT_FOUND;
}

/* Write one chunk at offset: what of it lies past the service's copy is appended (a chunk the
 * service has already, a retry, is accepted as is; its bytes are the same, and the image is
 * verified whole anyway). Durable before it is acknowledged. OUT: *received. On failure a reply
 * was sent. */
static bool upload_put(rp_req_t *r, rp_upload_t *u, uint64_t *received)
{
    char name[RP_BLOB_NAME_MAX + 1];
    const uint8_t *body;
    uint64_t off, have = 0;
    size_t len;
    rp_err_t err = RP_ERR_BUSY;

    if (!query_u64(r, "offset", &off)) {
        rp_reply_error(r, 400, "invalid", "a chunk needs ?offset=N (a decimal byte offset)");
        return false;
    }
    if ((body = rp_req_body_upto(r, RP_UPLOAD_CHUNK_MAX, &len)) == NULL)
        return false;
    if (off > u->size || len > u->size - off) {
        rp_reply_error(r, 400, "too_long", "the chunk ends past the announced size (%llu bytes)",
                       (unsigned long long)u->size);
        return false;
    }
    /* Active now, in the database, before a byte is written: a sweep (of any replica) then
     * leaves it; one that dropped it first makes this chunk a 404, not bytes of no upload. */
    u->active = (int64_t)time(NULL);
    if ((err = rp_store_upload_touch(r->w->store, u->tenant_id, u->id, u->active)) != RP_OK) {
        if (err == RP_ERR_NOT_FOUND)
            rp_reply_error(r, 404, "not_found", "no such upload (unfinished ones last a day)");
        else
            rp_reply_failure(r, err, "cannot write the chunk: %s", rp_strerror(err));
        return false;
    }
    err = RP_ERR_BUSY;
    rp_blob_name_upload(u->id, name);
    /* Two requests for one upload (a client's retry racing its original, maybe at two replicas)
     * take turns: the one that finds the copy longer than it thought looks again, for as long as
     * another writer makes progress (the upload's size bounds that), and three times without. */
    for (int stalls = 0; err == RP_ERR_BUSY && stalls < 3;) {
        uint64_t before = have;

        if (!upload_received(r, u, &have))
            return false;
        stalls = have > before ? 0 : stalls + 1;
        if (off > have) {
            json_t *e = json_pack("{s:s, s:s, s:I}", "error", "gap", "message",
                                  "the chunk starts past what the service has: resume at received",
                                  "received", (json_int_t)have);
            rp_reply_json(r, 409, e);
            return false;
        }
        if (off + len <= have) {
            *received = have; /* had it already */
            return true;
        }
        err = rp_blob_append(r->w->blobs, name, have, body + (have - off),
                             len - (size_t)(have - off));
    }
    if (err != RP_OK) { /* still losing the race, or the database out of reach: 503 */
        rp_reply_failure(r, err, "cannot write the chunk: %s", rp_strerror(err));
        return false;
    }
    *received = off + len;
    return true;
}

void rp_h_upload_create(rp_req_t *r)
{
    json_t *body = rp_req_json(r), *what;
    json_int_t size;
    uint64_t max = RP_IMAGE_MAX;
    unsigned long long max_bytes;
    unsigned max_open;
    rp_upload_t u;
    rp_err_t err;

    if (body == NULL)
        return;
    size = json_integer_value(json_object_get(body, "size"));
    /* What it is for sets its bound: an image (the default) or a debug file (larger). */
    what = json_object_get(body, "for");
    if (what != NULL) {
        const char *v = json_string_value(what);
        if (v == NULL || (strcmp(v, "image") != 0 && strcmp(v, "symbols") != 0)) {
            json_decref(body);
            rp_reply_error(r, 400, "invalid", "\"for\" is \"image\" or \"symbols\"");
            return;
        }
        if (strcmp(v, "symbols") == 0)
            max = RP_UPLOAD_MAX;
    }
    json_decref(body);
    if (size <= 0 || (uint64_t)size > max) {
        rp_reply_error(r, size > 0 ? 413 : 400, size > 0 ? "too_large" : "invalid",
                       "\"size\" must be 1 to %llu bytes", (unsigned long long)max);
        return;
    }
    max_open = atomic_load(&r->w->srv->upload_max_open);
    max_bytes = atomic_load(&r->w->srv->upload_max_bytes);
    err =
        rp_store_upload_create(r->w->store, r->tenant.id, (uint64_t)size, max_open, max_bytes, &u);
    if (err == RP_ERR_DENIED)
        rp_reply_error(r, 429, "too_many_uploads",
                       "the tenant has %u uploads open, its limit (--upload-max-open): finish or "
                       "abandon one (unwritten for a day, it is dropped)",
                       max_open);
    else if (err == RP_ERR_TOO_LARGE)
        rp_reply_error(r, 413, "uploads_too_large",
                       "%lld more bytes would take the tenant's open uploads past %llu bytes, its "
                       "limit (--upload-max-bytes)",
                       (long long)size, max_bytes);
    else if (err != RP_OK)
        rp_reply_failure(r, err, "cannot start the upload");
    else
        rp_reply_json(r, 201, upload_json(&u, 0));
}

/* The path's upload, if the tenant has it; false: 404 or 500 sent. */
static bool find_upload(rp_req_t *r, rp_upload_t *u)
{
    const char *id = rp_req_param(r, "upload");
    rp_err_t err = rp_object_id_valid(id, 'u')
                       ? rp_store_upload_get(r->w->store, r->tenant.id, id, u)
                       : RP_ERR_NOT_FOUND;

    if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such upload (unfinished ones last a day)");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot read the upload");
    return err == RP_OK;
}

void rp_h_upload_get(rp_req_t *r)
{
    rp_upload_t u;
    uint64_t n;

    if (find_upload(r, &u) && upload_received(r, &u, &n))
        rp_reply_json(r, 200, upload_json(&u, n));
}

void rp_h_upload_put(rp_req_t *r)
{
    uint64_t received;
    rp_upload_t u;

    if (find_upload(r, &u) && upload_put(r, &u, &received))
        rp_reply_json(r, 200, upload_json(&u, received));
}

/* ---- images ---- */

static json_t *image_json(const rp_image_record_t *m)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:I, s:s, s:s, s:o}", "id", m->id, "component",
                     m->component, "version", m->version, "security_counter",
                     m->has_security_counter ? json_integer(m->security_counter) : json_null(),
                     "type", m->type[0] != '\0' ? json_string(m->type) : json_null(), "size",
                     (json_int_t)m->size, "image_hash", m->image_hash, "key_id", m->key_id,
                     "uploaded", rp_iso_time_json(m->uploaded));
}

/* The image as an upload's answer: with what the operator should know of it ("warnings"). */
static json_t *uploaded_json(const rp_image_record_t *m)
{
    json_t *o = image_json(m), *warnings = json_array();
    char text[256];

    if (rp_image_seccnt_warning(m->has_security_counter, m->security_counter,
                                RP_ROT_TPM2_SECCNT_MAX, text, sizeof(text)))
        json_array_append_new(warnings, json_string(text));
    json_object_set_new(o, "warnings", warnings);
    return o;
}

static void collect_image(void *ctx, const rp_image_record_t *m)
{
    json_array_append_new(ctx, image_json(m));
}

struct keyring {
    rp_image_key_record_t keys[IMAGE_KEYS_MAX];
    size_t n;
};

static void collect_key(void *ctx, const rp_image_key_record_t *k)
{
    struct keyring *kr = ctx;

    if (kr->n < IMAGE_KEYS_MAX)
        kr->keys[kr->n++] = *k;
}

/* An image source over a blob (the core's verifier reads through it). */
static int blob_io_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    return rp_blob_read_all(ctx, off, buf, len) == RP_OK ? 0 : -1;
}

/*
 * An app image whose payload is a tree (apptree.h) carries a manifest: it must be valid and name
 * the upload's component, and the whole tree must pass the rules the device's extractor applies
 * (rp_apptree_check: read, never extracted here), so that no device refuses what the service
 * took. A legacy single-file app passes. On failure a reply was sent, and *discard says whether for
 * good.
 */
static bool check_app_manifest(rp_req_t *r, const rp_image_io_t *io,
                               const rp_image_layout_t *layout, const char *component,
                               bool *discard)
{
    rp_manifest_t *m = malloc(sizeof(*m));
    rp_apptree_kind_t kind;
    char why[400];
    bool ok = false;
    rp_err_t err;

    if (m == NULL ||
        rp_apptree_kind_io(io, layout->hdr.hdr_size, layout->hdr.img_size, &kind) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the image's payload");
        goto out;
    }
    if (kind == RP_APPTREE_LEGACY) {
        ok = true;
        goto out;
    }
    err = rp_apptree_check_io(io, layout->hdr.hdr_size, layout->hdr.img_size, m, why, sizeof(why));
    if (err == RP_ERR_IO || err == RP_ERR_NO_MEMORY) {
        rp_reply_error(r, 500, "internal", "cannot read the image's manifest");
        goto out;
    }
    *discard = true;
    if (err != RP_OK)
        rp_reply_error(r, 422, "invalid_manifest", "%s", why);
    else if (strcmp(m->component_id, component) != 0)
        rp_reply_error(r, 422, "component_mismatch",
                       "the app's manifest says ComponentId %s, the upload is for component %s",
                       m->component_id, component);
    else
        ok = true;
out:
    free(m);
    return ok;
}

/* What verify_upload found. GONE: its blob could not be opened or read through (no reply sent):
 * a POST racing this one for the same upload may have made it an image meanwhile. */
typedef enum verdict { VERIFIED, REPLIED, GONE } verdict_t;

/*
 * Verify a finished upload (its bytes: blob name) against the tenant's image keys and describe
 * it. OUT: *m (all but tenant, component and time). On REPLIED, *discard says whether the upload
 * is refused for good (its bytes are all there, and are not an image the tenant may upload).
 */
static verdict_t verify_upload(rp_req_t *r, const char *name, const rp_upload_t *u,
                               rp_image_record_t *m, bool *discard)
{
    struct keyring *kr = calloc(1, sizeof(*kr));
    rp_image_key_t keys[IMAGE_KEYS_MAX];
    uint8_t *scratch = malloc(RP_FILE_IMAGE_SCRATCH);
    rp_blob_reader_t *blob = NULL;
    rp_image_io_t io = {blob_io_read, NULL, NULL, 0};
    rp_image_info_t info;
    rp_image_version_t ver;
    verdict_t v = REPLIED;
    rp_err_t err;

    *discard = false;
    if (kr == NULL || scratch == NULL ||
        rp_store_image_key_list(r->w->store, u->tenant_id, NULL, collect_key, kr) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the tenant's image keys");
        goto out;
    }
    if (kr->n == 0) {
        rp_reply_error(r, 400, "no_image_keys",
                       "the tenant has no image keys: add one with `rampart image-key add`");
        *discard = true;
        goto out;
    }
    err = rp_blob_open(r->w->blobs, name, &blob, &io.size);
    if (err == RP_ERR_BUSY) { /* (the replica's hold lost: blob.h; kept, for a try again) */
        rp_reply_failure(r, err, "cannot read the upload: %s", rp_strerror(err));
        v = REPLIED;
        goto out;
    }
    if (err != RP_OK) {
        v = GONE;
        goto out;
    }
    io.ctx = blob;
    if (io.size != u->size) {
        rp_reply_error(r, 409, "incomplete", "the upload has %llu of its %llu bytes",
                       (unsigned long long)io.size, (unsigned long long)u->size);
        goto out;
    }
    for (size_t i = 0; i < kr->n; i++)
        keys[i] = (rp_image_key_t){kr->keys[i].spki, kr->keys[i].spki_len};
    err = rp_image_verify(&io, keys, kr->n, scratch, RP_FILE_IMAGE_SCRATCH, &info);
    if (err == RP_ERR_IO) {
        v = GONE;
        goto out;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 422, "invalid_image",
                       "the image does not verify against the tenant's image keys: %s",
                       rp_strerror(err));
        *discard = true;
        goto out;
    }
    /* The whole file must be the image: bytes past its TLVs would be stored unsigned. */
    if (info.layout.total_size != u->size) {
        rp_reply_error(r, 422, "invalid_image", "%llu bytes follow the image's TLVs",
                       (unsigned long long)(u->size - info.layout.total_size));
        *discard = true;
        goto out;
    }
    if (info.type == RP_IMAGE_TYPE_APP &&
        !check_app_manifest(r, &io, &info.layout, m->component, discard))
        goto out;
    ver = info.layout.hdr.version;
    if (rp_image_version_format(&ver, m->version, sizeof(m->version)) != RP_OK ||
        rp_hex_encode(info.digest, sizeof(info.digest), m->image_hash, sizeof(m->image_hash)) !=
            RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot describe the image");
        goto out;
    }
    if (rp_blob_sha256_hex(r->w->blobs, name, m->id) != RP_OK) {
        v = GONE;
        goto out;
    }
    m->has_security_counter = info.has_security_counter;
    m->security_counter = info.security_counter;
    /* No type TLV: no type, kept as "" (rp_image_type_name has no name for it, and "%s" of NULL
     * once stored "(null)"). */
    snprintf(m->type, sizeof(m->type), "%s",
             rp_image_type_name(info.type) != NULL ? rp_image_type_name(info.type) : "");
    m->size = u->size;
    snprintf(m->key_id, sizeof(m->key_id), "%s", kr->keys[info.signer].id);
    v = VERIFIED;
out:
    rp_blob_close(blob);
    free(scratch);
    free(kr);
    return v;
}

/* An upload refused for good, or whose bytes are another's now: its bytes, then its row. What
 * fails here is dropped with the stale uploads a day later. */
void rp_upload_forget(rp_req_t *r, const char *id)
{
    char name[RP_BLOB_NAME_MAX + 1];
    rp_err_t err;

    rp_blob_name_upload(id, name);
    if ((err = rp_blob_remove(r->w->blobs, name)) != RP_OK && err != RP_ERR_NOT_FOUND)
        rp_log_warn("upload %s: cannot remove its bytes", id);
    if (rp_store_upload_delete(r->w->store, id) != RP_OK)
        rp_log_warn("upload %s: cannot forget it", id);
}

bool rp_upload_finished(rp_req_t *r, const char *id, rp_upload_t *u)
{
    rp_err_t err = id != NULL && rp_object_id_valid(id, 'u')
                       ? rp_store_upload_get(r->w->store, r->tenant.id, id, u)
                       : RP_ERR_NOT_FOUND;
    uint64_t received;

    if (err != RP_OK) {
        rp_reply_error(r, err == RP_ERR_NOT_FOUND ? 404 : 500,
                       err == RP_ERR_NOT_FOUND ? "not_found" : "internal", "no such upload");
        return false;
    }
    if (u->image_id[0] != '\0') {
        rp_reply_error(r, 409, "conflict", "the upload became image %s", u->image_id);
        return false;
    }
    if (!upload_received(r, u, &received))
        return false;
    if (received != u->size) {
        rp_reply_error(r, 409, "incomplete", "the upload has %llu of its %llu bytes",
                       (unsigned long long)received, (unsigned long long)u->size);
        return false;
    }
    return true;
}

rp_err_t rp_upload_copy_out(rp_req_t *r, const rp_upload_t *u, const char *path)
{
    char name[RP_BLOB_NAME_MAX + 1];

    rp_blob_name_upload(u->id, name);
    return rp_blob_copy_to_file(r->w->blobs, name, path, 0600);
}

/* The tenant's image id as the answer to a POST that did not make it (200), if the tenant has it
 * (else false, nothing sent); 409 when it was uploaded as another component. */
static bool answer_image(rp_req_t *r, const char *id, const char *component)
{
    rp_image_record_t m;
    rp_err_t err = rp_store_image_get(r->w->store, r->tenant.id, id, &m);

    if (err == RP_ERR_NOT_FOUND)
        return false;
    if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot read the image");
    else if (strcmp(m.component, component) != 0)
        rp_reply_error(r, 409, "conflict", "this image was uploaded as component %s", m.component);
    else
        rp_reply_json(r, 200, uploaded_json(&m));
    return true;
}

/*
 * The upload's bytes, verified (OUT: *m): read from the upload's blob, or, once the upload
 * became an image (a POST racing this one got there first), from the image's. A read that finds
 * them gone looks at the upload again: a racing POST that made the image and recorded it is
 * answered here (the image, 200). On false a reply was sent.
 */
static bool verify_became(rp_req_t *r, rp_upload_t *u, rp_image_record_t *m)
{
    char name[RP_BLOB_NAME_MAX + 1];
    uint64_t n;
    bool discard;

    for (int tries = 0;; tries++) {
        rp_err_t err;
        rp_blob_name_upload(u->id, name);
        if (u->image_id[0] != '\0' && rp_blob_stat(r->w->blobs, name, &n) == RP_ERR_NOT_FOUND)
            rp_blob_name_image(u->image_id, name);
        switch (verify_upload(r, name, u, m, &discard)) {
        case VERIFIED: return true;
        case REPLIED:
            if (discard)
                rp_upload_forget(r, u->id);
            return false; /* else kept: the client may still send what is missing */
        case GONE: break;
        }
        /* (the upload's row names its image before its blob is renamed: a blob gone, and no
         * image named, is an upload with nothing sent) */
        err = rp_store_upload_get(r->w->store, r->tenant.id, u->id, u);
        if (err == RP_OK && u->image_id[0] != '\0' && answer_image(r, u->image_id, m->component))
            return false;
        if (err == RP_OK && u->image_id[0] == '\0' &&
            rp_blob_stat(r->w->blobs, name, &n) == RP_ERR_NOT_FOUND) {
            rp_reply_error(r, 409, "incomplete", "the upload has 0 of its %llu bytes",
                           (unsigned long long)u->size);
            return false;
        }
        if (err != RP_OK || tries == 2) {
            if (err == RP_ERR_NOT_FOUND)
                rp_reply_error(r, 404, "not_found", "no such upload");
            else
                rp_reply_failure(r, err != RP_OK ? err : RP_ERR_IO, "cannot read the upload");
            return false;
        }
    }
}

/*
 * POST images: an upload becomes an image, once. The upload's row names the image before the
 * blob is renamed to it and the image's row is added, so a POST of the same upload again - a
 * retry of one whose answer was lost, or one racing it - finds the image and answers it: 201 to
 * the POST that added the image's row, 200 to every other (and to an upload of bytes the tenant
 * had already).
 */
void rp_h_image_create(rp_req_t *r)
{
    const rp_tenant_t *tenant = &r->tenant;
    json_t *body = rp_req_json(r);
    const char *upload_id, *component;
    char upload[RP_BLOB_NAME_MAX + 1], image[RP_BLOB_NAME_MAX + 1];
    rp_image_record_t m;
    rp_upload_t u;
    uint64_t n;
    rp_err_t err;

    if (body == NULL)
        return;
    memset(&m, 0, sizeof(m));
    upload_id = json_string_value(json_object_get(body, "upload"));
    component = json_string_value(json_object_get(body, "component"));
    if (upload_id == NULL || component == NULL ||
        !rp_component_name_valid(component, strlen(component))) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid",
                       "\"upload\" (an upload ID) and \"component\" (1 to %d of A-Z a-z 0-9 . _ -, "
                       "not starting with a dot: the name a device measures it by) are required",
                       RP_COMPONENT_NAME_MAX);
        return;
    }
    snprintf(m.component, sizeof(m.component), "%s", component);
    err = rp_object_id_valid(upload_id, 'u')
              ? rp_store_upload_get(r->w->store, tenant->id, upload_id, &u)
              : RP_ERR_NOT_FOUND;
    json_decref(body);
    if (err != RP_OK) {
        rp_reply_error(r, err == RP_ERR_NOT_FOUND ? 404 : 500,
                       err == RP_ERR_NOT_FOUND ? "not_found" : "internal", "no such upload");
        return;
    }
    if (u.image_id[0] != '\0' && answer_image(r, u.image_id, m.component))
        return;                  /* it became that image already */
    if (u.size > RP_IMAGE_MAX) { /* an upload may be larger, for a debug file */
        rp_upload_forget(r, u.id);
        rp_reply_error(r, 413, "too_large", "an image is at most %llu bytes",
                       (unsigned long long)RP_IMAGE_MAX);
        return;
    }
    if (!verify_became(r, &u, &m))
        return;
    snprintf(m.tenant_id, sizeof(m.tenant_id), "%s", tenant->id);
    m.uploaded = (int64_t)time(NULL);
    rp_blob_name_upload(u.id, upload);
    rp_blob_name_image(m.id, image);
    /* The upload names its image first: from now on a POST of it answers that image. */
    err = rp_store_upload_became(r->w->store, u.id, m.id);
    if (err == RP_ERR_NOT_FOUND) { /* dropped meanwhile (stale) */
        rp_reply_error(r, 404, "not_found", "no such upload");
        return;
    }
    if (err != RP_OK) {
        rp_reply_failure(r, err, "cannot record the upload's image");
        return;
    }
    /* The blob is in place before the row that names it: a crash between them leaves a blob no
     * row names, which the next upload of the same bytes takes over. Content-addressed: a name
     * that holds a blob keeps it, and the upload's bytes are dropped (blob.h; the same bytes
     * uploaded before, by this tenant or another); the same bytes again restore a blob lost. A
     * racing POST may have renamed it first. */
    err = rp_blob_rename(r->w->blobs, upload, image);
    if (err == RP_ERR_NOT_FOUND && rp_blob_stat(r->w->blobs, image, &n) == RP_OK)
        err = RP_OK;
    if (err != RP_OK) {
        rp_reply_failure(r, err, "cannot store the image");
        return;
    }
    err = rp_store_image_add(r->w->store, &m);
    if (err == RP_ERR_EXISTS && answer_image(r, m.id, m.component))
        return; /* the tenant had it (200; 409 as another component), or a racing POST added it */
    if (err != RP_OK) {
        rp_reply_failure(r, err, "cannot record the image");
        return;
    }
    rp_log_info("tenant %s: image %s (%s %s) uploaded", tenant->id, m.id, m.component, m.version);
    rp_reply_json(r, 201, uploaded_json(&m));
}

void rp_h_images_list(rp_req_t *r)
{
    json_t *list;
    rp_page_t pg;

    if (!rp_page_request(r, &pg))
        return;
    list = json_array();
    if (rp_store_image_list(r->w->store, r->tenant.id, &pg, collect_image, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list images");
        return;
    }
    rp_page_reply(r, "images", list, &pg, "id");
}

void rp_h_image_get(rp_req_t *r)
{
    const char *image_id = rp_req_param(r, "image");
    rp_image_record_t m;
    rp_err_t err = rp_image_id_valid(image_id)
                       ? rp_store_image_get(r->w->store, r->tenant.id, image_id, &m)
                       : RP_ERR_NOT_FOUND;

    if (err == RP_OK)
        rp_reply_json(r, 200, image_json(&m));
    else if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such image in this tenant");
    else
        rp_reply_error(r, 500, "internal", "cannot read the image");
}
