/*
 * The operator API for updates (/api/v1/tenants/T/...): image signing keys, image uploads,
 * products and device groups, group membership, deployments. An image is accepted only when it
 * verifies against one of the tenant's image keys; it is then stored under the SHA-256 of its
 * bytes and never changes.
 *
 * Uploads come in chunks of at most RP_UPLOAD_CHUNK_MAX bytes, so that no request body the
 * service buffers is large and an interrupted upload resumes where the service's copy ends:
 *   POST uploads {"size": N}              -> {"id": U, "received": 0, "chunk_max": ...}
 *   PUT  uploads/U?offset=K  (bytes)      -> {"received": M}    each chunk on disk before 200
 *   GET  uploads/U                        -> {"received": M}
 *   POST images {"upload": U, "component": C}   -> the image, verified and stored
 * An app image whose payload is a tree also has its manifest checked (rp_apptree_read_manifest).
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

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/pem.h>

#include "api.h"
#include "context.h"
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
#include "rampart/update_state.h"
#include "req.h"
#include "routes.h"
#include "updates.h"

#define IMAGE_KEYS_MAX 32        /* image keys a tenant may have */
#define UPLOAD_STALE (24 * 3600) /* an upload not finished in a day is dropped */

/* DATA_DIR/<sub>[/<name>], with sub made (0700) when missing. */
static bool data_path(rp_req_t *r, const char *sub, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", r->w->srv->data_dir, sub);

    if (n < 0 || (size_t)n >= cap || (mkdir(out, 0700) != 0 && errno != EEXIST))
        return false;
    if (name == NULL)
        return true;
    n = snprintf(out, cap, "%s/%s/%s", r->w->srv->data_dir, sub, name);
    return n > 0 && (size_t)n < cap;
}

static bool id_shape(const char *s, char prefix)
{
    size_t n = strlen(s);

    if (n != 26 || s[0] != prefix || s[1] != '_')
        return false;
    for (size_t i = 2; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool image_id_shape(const char *s)
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
    rp_req_t *r;
    char ids[16][RP_ID_SIZE];
    int n;
};

static void collect_stale(void *ctx, const rp_upload_t *u)
{
    struct stale *st = ctx;

    snprintf(st->ids[st->n++], RP_ID_SIZE, "%s", u->id);
}

/* Drop uploads left unfinished for a day: their rows, then their files. */
static void drop_stale_uploads(rp_req_t *r)
{
    struct stale st = {r, {{0}}, 0};
    char path[PATH_MAX];

    if (rp_store_upload_stale(r->w->store, (int64_t)time(NULL) - UPLOAD_STALE, 16, collect_stale,
                              &st) != RP_OK)
        return;
    for (int i = 0; i < st.n; i++) {
        if (rp_store_upload_delete(r->w->store, st.ids[i]) != RP_OK)
            return;
        if (data_path(r, "uploads", st.ids[i], path, sizeof(path)))
            (void)unlink(path);
    }
}

static json_t *upload_json(const rp_upload_t *u, uint64_t received)
{
    return json_pack("{s:s, s:I, s:I, s:i, s:o}", "id", u->id, "size", (json_int_t)u->size,
                     "received", (json_int_t)received, "chunk_max", RP_UPLOAD_CHUNK_MAX, "created",
                     rp_iso_time_json(u->created));
}

static bool query_u64(rp_req_t *r, const char *key, uint64_t *out)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    struct evkeyvalq kv;
    const char *v;
    char *end;
    bool ok = false;

    if (q == NULL || evhttp_parse_query_str(q, &kv) != 0)
        return false;
    v = evhttp_find_header(&kv, key);
    if (v != NULL && v[0] >= '0' && v[0] <= '9') {
        errno = 0;
        *out = strtoull(v, &end, 10);
        ok = errno == 0 && *end == '\0';
    }
    evhttp_clear_headers(&kv);
    return ok;
}

/* Write one chunk at offset: appended when offset is where the copy ends; a chunk the service
 * has already (a retry) is accepted as is. OUT: *received. On failure a reply was sent. */
static bool upload_put(rp_req_t *r, const rp_upload_t *u, uint64_t *received)
{
    char path[PATH_MAX];
    const uint8_t *body;
    uint64_t off;
    struct stat sb;
    size_t len;
    int fd;
    bool ok = false;

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
    if (!data_path(r, "uploads", u->id, path, sizeof(path)) ||
        (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        rp_reply_error(r, 500, "internal", "cannot open the upload");
        return false;
    }
    /* Two requests for one upload (a client's retry racing its original) take turns. */
    if (flock(fd, LOCK_EX) != 0 || fstat(fd, &sb) != 0) {
        rp_reply_error(r, 500, "internal", "cannot lock the upload");
    } else if (off > (uint64_t)sb.st_size) {
        json_t *e = json_pack("{s:s, s:s, s:I}", "error", "gap", "message",
                              "the chunk starts past what the service has: resume at received",
                              "received", (json_int_t)sb.st_size);
        rp_reply_json(r, 409, e);
    } else if (off + len <= (uint64_t)sb.st_size) {
        *received = (uint64_t)sb.st_size; /* had it already */
        ok = true;
    } else if (ftruncate(fd, (off_t)off) != 0 || lseek(fd, (off_t)off, SEEK_SET) < 0 ||
               rp_write_all(fd, body, len) != RP_OK || fdatasync(fd) != 0) {
        rp_reply_error(r, 500, "internal", "cannot write the chunk");
    } else {
        *received = off + len; /* on disk before it is acknowledged */
        ok = true;
    }
    close(fd);
    return ok;
}

static uint64_t upload_received(rp_req_t *r, const rp_upload_t *u)
{
    char path[PATH_MAX];
    struct stat sb;

    if (!data_path(r, "uploads", u->id, path, sizeof(path)) || stat(path, &sb) != 0)
        return 0;
    return (uint64_t)sb.st_size;
}

void rp_h_upload_create(rp_req_t *r)
{
    json_t *body = rp_req_json(r), *what;
    json_int_t size;
    uint64_t max = RP_IMAGE_MAX;
    rp_upload_t u;

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
    drop_stale_uploads(r);
    if (rp_store_upload_create(r->w->store, r->tenant.id, (uint64_t)size, &u) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot start the upload");
        return;
    }
    rp_reply_json(r, 201, upload_json(&u, 0));
}

/* The path's upload, if the tenant has it; false: 404 or 500 sent. */
static bool find_upload(rp_req_t *r, rp_upload_t *u)
{
    const char *id = rp_req_param(r, "upload");
    rp_err_t err = id_shape(id, 'u') ? rp_store_upload_get(r->w->store, r->tenant.id, id, u)
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

    if (find_upload(r, &u))
        rp_reply_json(r, 200, upload_json(&u, upload_received(r, &u)));
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

/*
 * An app image whose payload is a tree (apptree.h) carries a manifest: it must be valid and name
 * the upload's component. Only the manifest is read; the tree is never extracted here. A legacy
 * single-file app passes. On failure a reply was sent, and *discard says whether for good.
 */
static bool check_app_manifest(rp_req_t *r, const rp_file_image_t *img,
                               const rp_image_layout_t *layout, const char *component,
                               bool *discard)
{
    rp_manifest_t *m = malloc(sizeof(*m));
    rp_apptree_kind_t kind;
    char why[400];
    bool ok = false;
    rp_err_t err;

    if (m == NULL ||
        rp_apptree_kind(img->fd, layout->hdr.hdr_size, layout->hdr.img_size, &kind) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the image's payload");
        goto out;
    }
    if (kind == RP_APPTREE_LEGACY) {
        ok = true;
        goto out;
    }
    err = rp_apptree_read_manifest(img->fd, layout->hdr.hdr_size, layout->hdr.img_size, m, why,
                                   sizeof(why));
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

/*
 * Verify a finished upload against the tenant's image keys and describe it. OUT: *m (all but
 * tenant, component and time). On failure a reply was sent, and *discard says whether the upload
 * is refused for good (its bytes are all there, and are not an image the tenant may upload).
 */
static bool verify_upload(rp_req_t *r, const char *path, const rp_upload_t *u, rp_image_record_t *m,
                          bool *discard)
{
    struct keyring *kr = calloc(1, sizeof(*kr));
    rp_image_key_t keys[IMAGE_KEYS_MAX];
    uint8_t *scratch = malloc(RP_FILE_IMAGE_SCRATCH);
    rp_file_image_t img = {.fd = -1};
    rp_image_info_t info;
    rp_image_version_t ver;
    bool ok = false;
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
    if (rp_file_image_open(&img, path) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot open the upload");
        goto out;
    }
    if (img.io.size != u->size) {
        rp_reply_error(r, 409, "incomplete", "the upload has %llu of its %llu bytes",
                       (unsigned long long)img.io.size, (unsigned long long)u->size);
        goto out;
    }
    for (size_t i = 0; i < kr->n; i++)
        keys[i] = (rp_image_key_t){kr->keys[i].spki, kr->keys[i].spki_len};
    err = rp_image_verify(&img.io, keys, kr->n, scratch, RP_FILE_IMAGE_SCRATCH, &info);
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
        !check_app_manifest(r, &img, &info.layout, m->component, discard))
        goto out;
    ver = info.layout.hdr.version;
    if (rp_image_version_format(&ver, m->version, sizeof(m->version)) != RP_OK ||
        rp_hex_encode(info.digest, sizeof(info.digest), m->image_hash, sizeof(m->image_hash)) !=
            RP_OK ||
        rp_fd_sha256_hex(img.fd, m->id) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot describe the image");
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
    ok = true;
out:
    if (img.fd >= 0)
        rp_file_image_close(&img);
    free(scratch);
    free(kr);
    return ok;
}

/* Move a verified upload to DATA_DIR/images/<id>, durably (the file, then the directory). */
static bool store_image_file(rp_req_t *r, const char *upload_path, const char *id)
{
    char path[PATH_MAX], dir[PATH_MAX];
    int fd;
    bool ok;

    if (!data_path(r, "images", id, path, sizeof(path)) ||
        !data_path(r, "images", NULL, dir, sizeof(dir)))
        return false;
    fd = open(upload_path, O_RDONLY | O_CLOEXEC);
    ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok || rename(upload_path, path) != 0)
        return false;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* An upload that became an image (or was one already): its row, and its file when path is given.
 * What fails here is dropped with the stale uploads a day later. */
static void forget_upload(rp_req_t *r, const char *id, const char *path)
{
    if (path != NULL && unlink(path) != 0)
        rp_log_warn("upload %s: cannot remove %s", id, path);
    if (rp_store_upload_delete(r->w->store, id) != RP_OK)
        rp_log_warn("upload %s: cannot forget it", id);
}

void rp_upload_forget(rp_req_t *r, const char *id, const char *path)
{
    forget_upload(r, id, path);
}

bool rp_upload_finished(rp_req_t *r, const char *id, rp_upload_t *u, char *path, size_t cap)
{
    rp_err_t err = id != NULL && id_shape(id, 'u')
                       ? rp_store_upload_get(r->w->store, r->tenant.id, id, u)
                       : RP_ERR_NOT_FOUND;
    uint64_t received;

    if (err != RP_OK) {
        rp_reply_error(r, err == RP_ERR_NOT_FOUND ? 404 : 500,
                       err == RP_ERR_NOT_FOUND ? "not_found" : "internal", "no such upload");
        return false;
    }
    if (!data_path(r, "uploads", u->id, path, cap)) {
        rp_reply_error(r, 500, "internal", "cannot reach the upload");
        return false;
    }
    if ((received = upload_received(r, u)) != u->size) {
        rp_reply_error(r, 409, "incomplete", "the upload has %llu of its %llu bytes",
                       (unsigned long long)received, (unsigned long long)u->size);
        return false;
    }
    return true;
}

void rp_h_image_create(rp_req_t *r)
{
    const rp_tenant_t *tenant = &r->tenant;
    json_t *body = rp_req_json(r);
    const char *upload_id, *component;
    char path[PATH_MAX];
    rp_image_record_t m, existing;
    rp_upload_t u;
    bool discard;
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
    err = id_shape(upload_id, 'u') ? rp_store_upload_get(r->w->store, tenant->id, upload_id, &u)
                                   : RP_ERR_NOT_FOUND;
    json_decref(body);
    if (err != RP_OK) {
        rp_reply_error(r, err == RP_ERR_NOT_FOUND ? 404 : 500,
                       err == RP_ERR_NOT_FOUND ? "not_found" : "internal", "no such upload");
        return;
    }
    if (!data_path(r, "uploads", u.id, path, sizeof(path))) {
        rp_reply_error(r, 500, "internal", "cannot reach the upload");
        return;
    }
    if (u.size > RP_IMAGE_MAX) { /* an upload may be larger, for a debug file */
        forget_upload(r, u.id, path);
        rp_reply_error(r, 413, "too_large", "an image is at most %llu bytes",
                       (unsigned long long)RP_IMAGE_MAX);
        return;
    }
    if (!verify_upload(r, path, &u, &m, &discard)) {
        if (discard)
            forget_upload(r, u.id, path);
        return; /* else kept: the client may still send what is missing */
    }
    snprintf(m.tenant_id, sizeof(m.tenant_id), "%s", tenant->id);
    m.uploaded = (int64_t)time(NULL);
    /* Content-addressed: the same bytes again are the same image (if it is the same component). */
    err = rp_store_image_get(r->w->store, tenant->id, m.id, &existing);
    if (err == RP_OK) {
        forget_upload(r, u.id, path);
        if (strcmp(existing.component, m.component) != 0) {
            rp_reply_error(r, 409, "conflict", "this image was uploaded as component %s",
                           existing.component);
            return;
        }
        rp_reply_json(r, 200, uploaded_json(&existing));
        return;
    }
    if (err != RP_ERR_NOT_FOUND || !store_image_file(r, path, m.id)) {
        rp_reply_error(r, 500, "internal", "cannot store the image");
        return;
    }
    /* The file is in place before the row that names it: a crash between them leaves a file no
     * row names, which the next upload of the same bytes takes over. */
    err = rp_store_image_add(r->w->store, &m);
    if (err == RP_OK || err == RP_ERR_EXISTS)
        forget_upload(r, u.id, NULL); /* its file is the image's now */
    if (err == RP_ERR_EXISTS) {       /* the same bytes, uploaded twice at once */
        if (rp_store_image_get(r->w->store, tenant->id, m.id, &existing) == RP_OK)
            rp_reply_json(r, 200, uploaded_json(&existing));
        else
            rp_reply_error(r, 500, "internal", "cannot read the image");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot record the image");
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
    rp_err_t err = image_id_shape(image_id)
                       ? rp_store_image_get(r->w->store, r->tenant.id, image_id, &m)
                       : RP_ERR_NOT_FOUND;

    if (err == RP_OK)
        rp_reply_json(r, 200, image_json(&m));
    else if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such image in this tenant");
    else
        rp_reply_error(r, 500, "internal", "cannot read the image");
}

/* ---- products, device groups, membership ---- */

static json_t *product_json(const rp_product_t *p)
{
    return json_pack("{s:s, s:s, s:o}", "id", p->id, "name", p->name, "created",
                     rp_iso_time_json(p->created));
}

static void collect_product(void *ctx, const rp_product_t *p)
{
    json_array_append_new(ctx, product_json(p));
}

static json_t *group_json(const rp_group_t *g)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:b}", "id", g->id, "product", g->product_id,
                     "name", g->name, "allow_unknown_images", g->allow_unknown_images, "created",
                     rp_iso_time_json(g->created), "crash_capture", g->crash_capture);
}

static void collect_group(void *ctx, const rp_group_t *g, int64_t ndevices)
{
    json_t *o = group_json(g);

    json_object_set_new(o, "devices", json_integer(ndevices));
    json_array_append_new(ctx, o);
}

/* A POST body's "name"; on failure a 400 was sent and NULL returned (body is then freed). */
static const char *body_name(rp_req_t *r, json_t *body)
{
    const char *why, *name = rp_name_json(json_object_get(body, "name"), &why);

    if (name != NULL)
        return name;
    json_decref(body);
    rp_reply_error(r, 400, "invalid", "\"name\" %s", why);
    return NULL;
}

static bool find_product(rp_req_t *r, const rp_tenant_t *tenant, const char *id_or_name,
                         rp_product_t *p)
{
    rp_err_t err = rp_store_product_find(r->w->store, tenant->id, id_or_name, p);

    if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such product in this tenant");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot read the product");
    return err == RP_OK;
}

static bool find_group(rp_req_t *r, const rp_product_t *p, const char *id_or_name, rp_group_t *g)
{
    rp_err_t err = rp_store_group_find(r->w->store, p, id_or_name, g);

    if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such device group in product %s", p->name);
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot read the device group");
    return err == RP_OK;
}

static void collect_member(void *ctx, const char *device_id)
{
    json_array_append_new(ctx, json_string(device_id));
}

/* POST .../groups/G/devices {"device_ids": [...]}: put the tenant's devices in the group. */
static void assign_devices(rp_req_t *r, const rp_group_t *g)
{
    json_t *body, *ids = rp_req_device_ids(r, &body), *v, *assigned, *refused;
    int64_t now = (int64_t)time(NULL);
    rp_err_t err = RP_OK;
    size_t i;

    if (ids == NULL)
        return;
    assigned = json_array();
    refused = json_array();
    json_array_foreach(ids, i, v)
    {
        err = rp_store_device_assign(r->w->store, g, json_string_value(v), now);
        if (err == RP_OK)
            json_array_append(assigned, v);
        else if (err == RP_ERR_NOT_FOUND)
            json_array_append(refused, v);
        else
            break;
    }
    json_decref(body);
    if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        json_decref(assigned);
        json_decref(refused);
        rp_reply_error(r, 500, "internal", "cannot assign devices");
        return;
    }
    if (json_array_size(refused) > 0) {
        rp_reply_json(r, 404,
                      json_pack("{s:s, s:s, s:o, s:o}", "error", "not_found", "message",
                                "some devices are not this tenant's", "assigned", assigned,
                                "refused", refused));
        return;
    }
    json_decref(refused);
    rp_log_info("tenant %s: %zu device(s) assigned to group %s", g->tenant_id,
                json_array_size(assigned), g->id);
    rp_reply_json(r, 200, json_pack("{s:s, s:o}", "group", g->id, "assigned", assigned));
}

void rp_h_products_list(rp_req_t *r)
{
    json_t *list;
    rp_page_t pg;

    if (!rp_page_request(r, &pg))
        return;
    list = json_array();
    if (rp_store_product_list(r->w->store, r->tenant.id, &pg, collect_product, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list products");
        return;
    }
    rp_page_reply(r, "products", list, &pg, "id");
}

void rp_h_product_create(rp_req_t *r)
{
    json_t *body = rp_req_json(r);
    const char *name;
    rp_product_t p;
    rp_err_t err;

    if (body == NULL || (name = body_name(r, body)) == NULL)
        return;
    err = rp_store_product_create(r->w->store, r->tenant.id, name, &p);
    json_decref(body);
    if (err == RP_ERR_EXISTS) {
        rp_reply_error(r, 409, "conflict", "the tenant has a product of that name");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot create the product");
        return;
    }
    rp_log_info("tenant %s: product %s (%s) created", r->tenant.id, p.id, p.name);
    rp_reply_json(r, 201, product_json(&p));
}

/* The product's groups, in out (taken) as "groups" (pg paged: a page of them, and "next_after");
 * on failure a 500 was sent. */
static void reply_groups(rp_req_t *r, const rp_product_t *p, json_t *out, const rp_page_t *pg)
{
    json_t *list = json_array();

    if (rp_store_group_list(r->w->store, p, pg, collect_group, list) != RP_OK) {
        json_decref(list);
        json_decref(out);
        rp_reply_error(r, 500, "internal", "cannot list groups");
        return;
    }
    if (pg != NULL && pg->paged)
        json_object_set_new(out, "next_after", rp_page_next(list, pg, "id"));
    json_object_set_new(out, "groups", list);
    rp_reply_json(r, 200, out);
}

void rp_h_product_get(rp_req_t *r)
{
    rp_product_t p;

    if (find_product(r, &r->tenant, rp_req_param(r, "product"), &p))
        reply_groups(r, &p, product_json(&p), NULL);
}

void rp_h_groups_list(rp_req_t *r)
{
    rp_product_t p;
    rp_page_t pg;

    if (rp_page_request(r, &pg) && find_product(r, &r->tenant, rp_req_param(r, "product"), &p))
        reply_groups(r, &p, json_object(), &pg);
}

/* A body's optional boolean key: its value into *out (unchanged when absent); false: 400 sent and
 * body freed. */
static bool body_bool(rp_req_t *r, json_t *body, const char *key, bool *out)
{
    json_t *v = json_object_get(body, key);

    if (v == NULL)
        return true;
    if (!json_is_boolean(v)) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "\"%s\" is true or false", key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

void rp_h_group_create(rp_req_t *r)
{
    json_t *body;
    const char *name;
    rp_product_t p;
    rp_group_t g;
    bool allow = false, capture = true;
    rp_err_t err;

    if (!find_product(r, &r->tenant, rp_req_param(r, "product"), &p) ||
        (body = rp_req_json(r)) == NULL || (name = body_name(r, body)) == NULL ||
        !body_bool(r, body, "allow_unknown_images", &allow) ||
        !body_bool(r, body, "crash_capture", &capture))
        return;
    /* Such a group lets its devices pass attestation with images the tenant never uploaded: as
     * much an admin's decision as which keys sign images. */
    if (allow && !rp_route_require(r, RP_ROLE_ADMIN, "a group that allows unknown images")) {
        json_decref(body);
        return;
    }
    /* A group made with capture off never has it on, even for a moment. */
    err = rp_store_group_begin(r->w->store);
    if (err == RP_OK) {
        err = rp_store_group_create(r->w->store, &p, name, allow, &g);
        if (err == RP_OK && !capture)
            err = rp_store_group_set_crash_capture(r->w->store, &g, false);
        err = rp_store_group_end(r->w->store, err);
    }
    json_decref(body);
    if (err == RP_ERR_EXISTS)
        rp_reply_error(r, 409, "conflict", "the product has a group of that name");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot create the group");
    else
        rp_reply_json(r, 201, group_json(&g));
}

/* The path's product and group; false: 404 or 500 sent. */
static bool path_group(rp_req_t *r, rp_group_t *g)
{
    rp_product_t p;

    return find_product(r, &r->tenant, rp_req_param(r, "product"), &p) &&
           find_group(r, &p, rp_req_param(r, "group"), g);
}

void rp_h_group_get(rp_req_t *r)
{
    rp_group_t g;

    if (path_group(r, &g))
        rp_reply_json(r, 200, group_json(&g));
}

/* PUT .../groups/G/settings {"crash_capture": bool}: the operator's switches for the group's
 * devices; they learn them in their next status report's answer (docs/failure-reporting.md). */
void rp_h_group_settings_set(rp_req_t *r)
{
    static const char *const keys[] = {"crash_capture"};
    json_t *body;
    rp_group_t g;
    bool capture = true;
    rp_err_t err;

    if (!path_group(r, &g) || (body = rp_req_json(r)) == NULL)
        return;
    if (!rp_json_has_exactly(body, keys, 1)) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "the settings are {\"crash_capture\": true|false}");
        return;
    }
    if (!body_bool(r, body, "crash_capture", &capture))
        return;
    json_decref(body);
    err = rp_store_group_set_crash_capture(r->w->store, &g, capture);
    if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such device group");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot change the group's settings");
    else {
        rp_log_info("tenant %s: crash capture %s for device group %s (%s)", r->tenant.id,
                    capture ? "on" : "off", g.name, g.id);
        rp_reply_json(r, 200, group_json(&g));
    }
}

/* GET .../groups/G/devices: the group's device IDs in ID order (paged: ?limit&after&prefix, a
 * prefix of the ID, read as an index range; "next_after"). */
void rp_h_group_devices(rp_req_t *r)
{
    json_t *list, *out;
    rp_group_t g;
    rp_page_t pg;

    if (!rp_page_request(r, &pg) || !path_group(r, &g))
        return;
    list = json_array();
    if (rp_store_group_members(r->w->store, g.id, &pg, collect_member, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list the group's devices");
        return;
    }
    out = json_pack("{s:s, s:o}", "group", g.id, "devices", list);
    if (pg.paged)
        json_object_set_new(out, "next_after", rp_page_next(list, &pg, NULL));
    rp_reply_json(r, 200, out);
}

void rp_h_group_assign(rp_req_t *r)
{
    rp_group_t g;

    /* Into a group that allows unknown images (Development): an admin's decision. */
    if (path_group(r, &g) && (!g.allow_unknown_images ||
                              rp_route_require(r, RP_ROLE_ADMIN,
                                               "moving devices into a group that allows unknown "
                                               "images")))
        assign_devices(r, &g);
}

/* ---- deployments ---- */

static void show_update(void *ctx, const rp_device_update_t *u)
{
    json_array_append_new(ctx,
                          json_pack("{s:s, s:s, s:o, s:s}", "state", u->state, "detail", u->detail,
                                    "at", u->at != 0 ? rp_iso_time_json(u->at) : json_null(),
                                    "device_id", u->device_id));
}

static void show_state(void *ctx, const char *state, int64_t n)
{
    json_t *counts = ctx;

    if (state != NULL)
        json_object_set_new(counts, state,
                            json_integer(json_integer_value(json_object_get(counts, state)) + n));
}

/* The deployment as the API shows it; with its progress and devices (a page of them, or all when
 * devices is not paged) unless devices is NULL. NULL on failure. */
static json_t *deployment_json(rp_req_t *r, const rp_deployment_t *d, const rp_page_t *devices)
{
    json_t *imgs = json_array(), *o;
    rp_image_record_t m;
    rp_group_t g;
    rp_product_t p;

    for (size_t i = 0; i < d->nimages; i++) {
        if (rp_store_image_get(r->w->store, d->tenant_id, d->image_ids[i], &m) == RP_OK)
            json_array_append_new(imgs, json_pack("{s:s, s:s, s:s}", "id", m.id, "component",
                                                  m.component, "version", m.version));
    }
    o = json_pack("{s:s, s:s, s:i, s:s, s:o, s:o}", "id", d->id, "group", d->group_id, "rollout",
                  d->rollout, "status", rp_deploy_status_name(d->status), "images", imgs, "created",
                  rp_iso_time_json(d->created));
    if (rp_store_group_get(r->w->store, d->tenant_id, d->group_id, &g) == RP_OK) {
        json_object_set_new(o, "group_name", json_string(g.name));
        if (rp_store_product_find(r->w->store, d->tenant_id, g.product_id, &p) == RP_OK)
            json_object_set_new(o, "product", json_string(p.name));
    }

    if (devices != NULL) {
        json_t *counts = json_object(), *list = json_array();
        rp_deploy_progress_t pr;

        /* Every state a device can be in, counted or not: scripts rely on the keys. */
        for (int i = 0; i < RP_UPDATE_STATE_COUNT; i++)
            if (rp_update_state_reported((rp_update_state_t)i))
                json_object_set_new(counts, rp_update_state_name((rp_update_state_t)i),
                                    json_integer(0));
        /* The counts cover every device, counted in SQL; the devices listed are the page's. */
        if (rp_store_deployment_progress(r->w->store, d, &pr, show_state, counts) != RP_OK ||
            rp_store_deployment_devices(r->w->store, d, devices, show_update, list) != RP_OK) {
            json_decref(counts);
            json_decref(list);
            json_decref(o);
            return NULL;
        }
        show_state(counts, rp_update_state_name(RP_UPDATE_PENDING), pr.unreported);
        /* What the console's live view shows: reached is every device that was served targets
         * naming this deployment or reported anything of it (a pause keeps these on it). */
        json_object_set_new(
            o, "progress",
            json_pack(
                "{s:I, s:I, s:I, s:I, s:I}", "selected", (json_int_t)pr.selected, "reached",
                (json_int_t)pr.reached, "installed",
                json_integer_value(
                    json_object_get(counts, rp_update_state_name(RP_UPDATE_INSTALLED))),
                "failed",
                json_integer_value(json_object_get(counts, rp_update_state_name(RP_UPDATE_FAILED))),
                "rolled_back",
                json_integer_value(
                    json_object_get(counts, rp_update_state_name(RP_UPDATE_ROLLED_BACK)))));
        json_object_set_new(o, "devices_in_group", json_integer(pr.in_group));
        json_object_set_new(o, "devices_selected", json_integer(pr.selected));
        json_object_set_new(o, "states", counts);
        json_object_set_new(o, "devices", list);
        if (devices->paged)
            json_object_set_new(o, "next_after", rp_page_next(list, devices, "device_id"));
    }
    return o;
}

struct deploy_list {
    rp_req_t *r;
    json_t *list;
};

static void collect_deployment(void *ctx, const rp_deployment_t *d)
{
    struct deploy_list *dl = ctx;

    json_array_append_new(dl->list, deployment_json(dl->r, d, NULL));
}

struct counter_refusal {
    json_t *devices; /* [{"device_id", "security_counter_max"}] */
    uint32_t lowest;
    char names[400]; /* the first device IDs, for the message */
};

static void collect_low_device(void *ctx, const char *device_id, uint32_t max)
{
    struct counter_refusal *cr = ctx;
    size_t len = strlen(cr->names);

    if (json_array_size(cr->devices) == 0 || max < cr->lowest)
        cr->lowest = max;
    json_array_append_new(cr->devices, json_pack("{s:s, s:I}", "device_id", device_id,
                                                 "security_counter_max", (json_int_t)max));
    if (len + strlen(device_id) + 8 < sizeof(cr->names))
        snprintf(cr->names + len, sizeof(cr->names) - len, "%s%s", len > 0 ? ", " : "", device_id);
    else if (strstr(cr->names, "...") == NULL)
        snprintf(cr->names + len, sizeof(cr->names) - len, ", ...");
}

/*
 * Whether every device of the group can hold the image's security counter, by what each reported
 * its root of trust accepts (devices that never said are not known to refuse; blocked devices get
 * no updates, and do not count). A deployment some
 * of them could never install is refused: 409 counter_too_high, naming them. On refusal or
 * failure a reply was sent.
 */
static bool counters_fit(rp_req_t *r, const rp_group_t *g, const rp_image_record_t *m)
{
    struct counter_refusal *cr;
    char message[800];
    size_t n;

    if (!m->has_security_counter)
        return true;
    cr = calloc(1, sizeof(*cr));
    if (cr != NULL)
        cr->devices = json_array();
    if (cr == NULL || cr->devices == NULL ||
        rp_store_group_counter_max_below(r->w->store, g->id, m->security_counter,
                                         collect_low_device, cr) != RP_OK) {
        if (cr != NULL)
            json_decref(cr->devices);
        free(cr);
        rp_reply_error(r, 500, "internal", "cannot read what the group's devices accept");
        return false;
    }
    n = json_array_size(cr->devices);
    if (n > 0) {
        snprintf(message, sizeof(message),
                 "%s %s has security counter %lu, more than %zu device(s) of the group can ever "
                 "install (their root of trust accepts at most %lu): %s",
                 m->component, m->version, (unsigned long)m->security_counter, n,
                 (unsigned long)cr->lowest, cr->names);
        rp_reply_json(r, 409,
                      json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "error", "counter_too_high",
                                "message", message, "image", m->id, "component", m->component,
                                "security_counter", (json_int_t)m->security_counter, "devices",
                                cr->devices));
    } else {
        json_decref(cr->devices);
    }
    free(cr);
    return n == 0;
}

void rp_h_deployment_create(rp_req_t *r)
{
    const rp_tenant_t *tenant = &r->tenant;
    json_t *body = rp_req_json(r), *ids, *v, *out, *ignore;
    const char *product, *group;
    rp_deployment_t d;
    rp_product_t p;
    rp_group_t g;
    json_int_t rollout = 100;
    char components[RP_DEPLOY_IMAGES_MAX][RP_NAME_MAX + 1];
    rp_image_record_t m;
    rp_err_t err;
    size_t i;

    if (body == NULL)
        return;
    memset(&d, 0, sizeof(d));
    product = json_string_value(json_object_get(body, "product"));
    group = json_string_value(json_object_get(body, "group"));
    ids = json_object_get(body, "images");
    if (json_object_get(body, "rollout") != NULL)
        rollout = json_is_integer(json_object_get(body, "rollout"))
                      ? json_integer_value(json_object_get(body, "rollout"))
                      : -1;
    ignore = json_object_get(body, "ignore_counter_limits");
    if (product == NULL || group == NULL || !json_is_array(ids) || json_array_size(ids) == 0 ||
        json_array_size(ids) > RP_DEPLOY_IMAGES_MAX || rollout < 0 || rollout > 100 ||
        (ignore != NULL && !json_is_boolean(ignore))) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid",
                       "\"product\", \"group\", \"images\" (1 to %d image IDs) are required; "
                       "\"rollout\" is a percentage, 0 to 100; \"ignore_counter_limits\" is true "
                       "or false",
                       RP_DEPLOY_IMAGES_MAX);
        return;
    }
    /* Past what some devices said their root of trust accepts (they will refuse the image, or one
     * device's report is wrong): an admin's decision. */
    if (json_is_true(ignore) &&
        !rp_route_require(r, RP_ROLE_ADMIN, "deploying past devices' security counter limits")) {
        json_decref(body);
        return;
    }
    if (!find_product(r, tenant, product, &p) || !find_group(r, &p, group, &g)) {
        json_decref(body);
        return;
    }
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        err = image_id_shape(id) ? rp_store_image_get(r->w->store, tenant->id, id, &m)
                                 : RP_ERR_NOT_FOUND;
        if (err != RP_OK) {
            rp_reply_error(r, err == RP_ERR_NOT_FOUND ? 404 : 500,
                           err == RP_ERR_NOT_FOUND ? "not_found" : "internal",
                           "no image %s in this tenant", id != NULL ? id : "(not a string)");
            json_decref(body);
            return;
        }
        /* One image per component: a device runs one version of each. */
        for (size_t j = 0; j < i; j++) {
            if (strcmp(components[j], m.component) == 0) {
                rp_reply_error(r, 400, "invalid", "two images for component %s", m.component);
                json_decref(body);
                return;
            }
        }
        snprintf(components[i], sizeof(components[i]), "%s", m.component);
        snprintf(d.image_ids[d.nimages++], RP_IMAGE_ID_SIZE, "%s", id);
        /* No device of the group is given what its root of trust can never accept. */
        if (!json_is_true(ignore) && !counters_fit(r, &g, &m)) {
            json_decref(body);
            return;
        }
    }
    json_decref(body);
    snprintf(d.tenant_id, sizeof(d.tenant_id), "%s", tenant->id);
    snprintf(d.group_id, sizeof(d.group_id), "%s", g.id);
    d.rollout = (int)rollout;
    if (rp_store_deployment_create(r->w->store, &d) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot create the deployment");
        return;
    }
    rp_log_info("tenant %s: deployment %s of %zu image(s) to group %s (%d%%)", tenant->id, d.id,
                d.nimages, g.id, d.rollout);
    out = deployment_json(r, &d, NULL);
    rp_reply_json(r, 201, out);
}

void rp_h_deployments_list(rp_req_t *r)
{
    struct deploy_list dl = {r, NULL};
    rp_page_t pg;

    if (!rp_page_request(r, &pg))
        return;
    dl.list = json_array();
    if (rp_store_deployment_list(r->w->store, r->tenant.id, &pg, collect_deployment, &dl) !=
        RP_OK) {
        json_decref(dl.list);
        rp_reply_error(r, 500, "internal", "cannot list deployments");
        return;
    }
    rp_page_reply(r, "deployments", dl.list, &pg, "id");
}

void rp_h_deployment_get(rp_req_t *r)
{
    const char *deployment_id = rp_req_param(r, "deployment");
    rp_deployment_t d;
    rp_page_t pg;
    json_t *out;
    rp_err_t err;

    if (!rp_page_request(r, &pg))
        return;
    err = id_shape(deployment_id, 'd')
              ? rp_store_deployment_get(r->w->store, r->tenant.id, deployment_id, &d)
              : RP_ERR_NOT_FOUND;
    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 404, "not_found", "no such deployment in this tenant");
        return;
    }
    /* Paged: the counts ("progress", "states") stay the whole deployment's; only the devices
     * listed are a page, in device ID order (what the console polls every 2 s). */
    if (err != RP_OK || (out = deployment_json(r, &d, &pg)) == NULL) {
        rp_reply_error(r, 500, "internal", "cannot read the deployment");
        return;
    }
    rp_reply_json(r, 200, out);
}

/* Pause, resume or stop: what a paused or stopped deployment means to devices is in
 * rp_store_deployment_for_device. */
static void deployment_status_set(rp_req_t *r, rp_deploy_status_t to, const char *verb)
{
    const char *deployment_id = rp_req_param(r, "deployment");
    rp_deployment_t d;
    json_t *out;
    rp_err_t err =
        id_shape(deployment_id, 'd')
            ? rp_store_deployment_set_status(r->w->store, r->tenant.id, deployment_id, to, &d)
            : RP_ERR_NOT_FOUND;

    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 404, "not_found", "no such deployment in this tenant");
        return;
    }
    if (err == RP_ERR_DENIED) {
        rp_reply_error(r, 409, "stopped",
                       "deployment %s is stopped, which is final: deploy again to continue",
                       deployment_id);
        return;
    }
    if (err != RP_OK || (out = deployment_json(r, &d, NULL)) == NULL) {
        rp_reply_error(r, 500, "internal", "cannot change the deployment");
        return;
    }
    rp_log_info("tenant %s: deployment %s %s", r->tenant.id, d.id, verb);
    rp_reply_json(r, 200, out);
}

void rp_h_deployment_pause(rp_req_t *r)
{
    deployment_status_set(r, RP_DEPLOY_PAUSED, "paused");
}

void rp_h_deployment_resume(rp_req_t *r)
{
    deployment_status_set(r, RP_DEPLOY_ACTIVE, "resumed");
}

void rp_h_deployment_stop(rp_req_t *r)
{
    deployment_status_set(r, RP_DEPLOY_STOPPED, "stopped");
}
