/*
 * Signed update metadata (see metadata.h): the envelope, the root and targets documents, and
 * every rule they are held to. Each field's rule lives once, in check_root() and
 * check_targets(): building checks the struct with them before anything is signed, accepting
 * checks what it parsed with them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/base64.h"
#include "rampart/bytes.h"
#include "rampart/hex.h"
#include "rampart/key.h"
#include "rampart/metadata.h"

#include <openssl/err.h>
#include <openssl/x509.h>

static rp_err_t say(char *detail, size_t cap, rp_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void rp_md_signed_free(rp_md_signed_t *s)
{
    if (s == NULL)
        return;
    free(s->payload);
    memset(s, 0, sizeof(*s));
}

rp_err_t rp_md_sign(const char *payload, size_t len, EVP_PKEY *const *keys, size_t nkeys,
                    char **envelope)
{
    uint8_t digest[RP_SHA256_LEN], spki[RP_PUBKEY_DER_MAX];
    rp_md_signed_t *s = calloc(1, sizeof(*s));
    size_t spki_len;
    rp_err_t err = s == NULL ? RP_ERR_NO_MEMORY
                   : nkeys > RP_MD_SIGS_MAX || len == 0 || len > RP_MD_MAX
                       ? RP_ERR_INVALID_ARG
                       : rp_sha256(payload, len, digest);

    *envelope = NULL;
    if (err == RP_OK && (s->payload = malloc(len)) == NULL)
        err = RP_ERR_NO_MEMORY;
    if (err == RP_OK) {
        memcpy(s->payload, payload, len);
        s->len = len;
    }
    for (size_t i = 0; err == RP_OK && i < nkeys; i++) {
        rp_md_sig_t *g = &s->sigs[s->nsigs++];
        err = rp_key_spki(keys[i], spki, sizeof(spki), &spki_len);
        if (err == RP_OK)
            err = rp_sha256(spki, spki_len, g->keyid);
        if (err == RP_OK)
            err = rp_key_sign_digest(keys[i], digest, g->sig, sizeof(g->sig), &g->len);
    }
    if (err == RP_OK)
        err = rp_md_pack(s, envelope);
    rp_md_signed_free(s);
    free(s);
    return err;
}

rp_err_t rp_md_pack(const rp_md_signed_t *s, char **envelope)
{
    char keyid[2 * RP_SHA256_LEN + 1], *b64 = NULL;
    json_t *sigs = json_array(), *env = NULL;
    rp_err_t err = sigs != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    *envelope = NULL;
    for (size_t i = 0; err == RP_OK && i < s->nsigs && i < RP_MD_SIGS_MAX; i++) {
        err = rp_hex_encode(s->sigs[i].keyid, RP_SHA256_LEN, keyid, sizeof(keyid));
        if (err == RP_OK)
            err = rp_base64_encode(s->sigs[i].sig, s->sigs[i].len, &b64);
        if (err == RP_OK &&
            json_array_append_new(sigs, json_pack("{s:s, s:s}", "keyid", keyid, "sig", b64)) != 0)
            err = RP_ERR_NO_MEMORY;
        free(b64);
        b64 = NULL;
    }
    if (err == RP_OK)
        err = rp_base64_encode(s->payload, s->len, &b64);
    if (err == RP_OK) {
        env = json_pack("{s:s, s:O}", "signed", b64, "signatures", sigs);
        *envelope = env != NULL ? json_dumps(env, JSON_INDENT(2)) : NULL;
        if (*envelope == NULL)
            err = RP_ERR_NO_MEMORY;
    }
    free(b64);
    json_decref(env);
    json_decref(sigs);
    return err;
}

rp_err_t rp_md_unpack(const char *envelope, size_t len, rp_md_signed_t *s, char *detail, size_t cap)
{
    json_t *env, *sigs, *e;
    const char *b64;
    size_t i;

    memset(s, 0, sizeof(*s));
    if (len > RP_MD_MAX)
        return say(detail, cap, RP_ERR_TOO_LARGE, "an envelope of more than %d bytes", RP_MD_MAX);
    env = json_loadb(envelope, len, JSON_REJECT_DUPLICATES, NULL);
    b64 = json_string_value(json_object_get(env, "signed"));
    sigs = json_object_get(env, "signatures");
    if (b64 == NULL || !json_is_array(sigs) || json_array_size(sigs) > RP_MD_SIGS_MAX ||
        rp_base64_decode(b64, strlen(b64), &s->payload, &s->len) != RP_OK || s->len == 0 ||
        s->len > RP_MD_MAX) {
        json_decref(env);
        rp_md_signed_free(s);
        return say(detail, cap, RP_ERR_MALFORMED,
                   "not a metadata envelope {signed: BASE64, signatures: [at most %d]}",
                   RP_MD_SIGS_MAX);
    }
    json_array_foreach(sigs, i, e)
    {
        const char *keyid = json_string_value(json_object_get(e, "keyid"));
        const char *sig = json_string_value(json_object_get(e, "sig"));
        rp_md_sig_t *g = &s->sigs[s->nsigs];
        uint8_t *der = NULL;
        size_t n = 0;
        /* What could never verify is left out here, as verifying would ignore it. */
        if (keyid == NULL || sig == NULL || strlen(keyid) != 2 * RP_SHA256_LEN ||
            rp_hex_decode(keyid, strlen(keyid), g->keyid, RP_SHA256_LEN) != RP_OK ||
            rp_base64_decode(sig, strlen(sig), &der, &n) != RP_OK || n == 0 || n > RP_MD_SIG_MAX) {
            free(der);
            memset(g, 0, sizeof(*g));
            continue;
        }
        memcpy(g->sig, der, n);
        g->len = n;
        s->nsigs++;
        free(der);
    }
    json_decref(env);
    return RP_OK;
}

/* ---- the binary form (metadata.h) ---- */

#define SIGNED_MAGIC 0x52505344u /* "RPSD" */
#define SIGNED_FORM 1

rp_err_t rp_md_signed_encode(const rp_md_signed_t *s, uint8_t **out, size_t *len)
{
    size_t n = 4 + 2 + 4 + s->len + 1, at = 0;
    uint8_t *b;

    *out = NULL;
    *len = 0;
    if (s->payload == NULL || s->len == 0 || s->len > RP_MD_MAX || s->nsigs > RP_MD_SIGS_MAX)
        return RP_ERR_INVALID_ARG;
    for (size_t i = 0; i < s->nsigs; i++) {
        if (s->sigs[i].len == 0 || s->sigs[i].len > RP_MD_SIG_MAX)
            return RP_ERR_INVALID_ARG;
        n += RP_SHA256_LEN + 2 + s->sigs[i].len;
    }
    if ((b = malloc(n)) == NULL)
        return RP_ERR_NO_MEMORY;
    rp_be_put(b + at, SIGNED_MAGIC, 4);
    rp_be_put(b + at + 4, SIGNED_FORM, 2);
    rp_be_put(b + at + 6, s->len, 4);
    memcpy(b + (at += 10), s->payload, s->len);
    b[at += s->len] = (uint8_t)s->nsigs;
    at++;
    for (size_t i = 0; i < s->nsigs; i++) {
        memcpy(b + at, s->sigs[i].keyid, RP_SHA256_LEN);
        rp_be_put(b + at + RP_SHA256_LEN, s->sigs[i].len, 2);
        memcpy(b + (at += RP_SHA256_LEN + 2), s->sigs[i].sig, s->sigs[i].len);
        at += s->sigs[i].len;
    }
    *out = b;
    *len = n;
    return RP_OK;
}

rp_err_t rp_md_signed_decode(const uint8_t *buf, size_t len, rp_md_signed_t *s, char *detail,
                             size_t cap)
{
    size_t at = 10, n;
    rp_err_t err = RP_OK;

    memset(s, 0, sizeof(*s));
    if (len < 4 || rp_be_get(buf, 4) != SIGNED_MAGIC ||
        (len >= 6 && rp_be_get(buf + 4, 2) != SIGNED_FORM))
        return say(detail, cap, len < 4 ? RP_ERR_TRUNCATED : RP_ERR_BAD_MAGIC,
                   "not a signed document in its binary form (\"RPSD\", form %d)", SIGNED_FORM);
    if (len < at)
        return say(detail, cap, RP_ERR_TRUNCATED, "the document ends in its header");
    n = (size_t)rp_be_get(buf + 6, 4);
    if (n == 0 || n > RP_MD_MAX)
        return say(detail, cap, n == 0 ? RP_ERR_MALFORMED : RP_ERR_TOO_LARGE,
                   "a signed payload of %zu bytes (1 to %d)", n, RP_MD_MAX);
    if (len - at < n + 1)
        return say(detail, cap, RP_ERR_TRUNCATED, "the document ends in its payload");
    s->nsigs = buf[at + n];
    if (s->nsigs > RP_MD_SIGS_MAX) {
        s->nsigs = 0;
        return say(detail, cap, RP_ERR_TOO_LARGE, "%u signatures (at most %d)", buf[at + n],
                   RP_MD_SIGS_MAX);
    }
    at += n + 1;
    for (size_t i = 0; err == RP_OK && i < s->nsigs; i++) {
        rp_md_sig_t *g = &s->sigs[i];
        if (len - at < RP_SHA256_LEN + 2) {
            err = say(detail, cap, RP_ERR_TRUNCATED, "the document ends in signature %zu", i + 1);
            break;
        }
        memcpy(g->keyid, buf + at, RP_SHA256_LEN);
        g->len = (size_t)rp_be_get(buf + at + RP_SHA256_LEN, 2);
        at += RP_SHA256_LEN + 2;
        if (g->len == 0 || g->len > RP_MD_SIG_MAX)
            err = say(detail, cap, g->len == 0 ? RP_ERR_MALFORMED : RP_ERR_TOO_LARGE,
                      "signature %zu is %zu bytes (1 to %d)", i + 1, g->len, RP_MD_SIG_MAX);
        else if (len - at < g->len)
            err = say(detail, cap, RP_ERR_TRUNCATED, "the document ends in signature %zu", i + 1);
        else
            memcpy(g->sig, buf + at, g->len);
        at += g->len;
    }
    if (err == RP_OK && at != len)
        err = say(detail, cap, RP_ERR_MALFORMED, "%zu bytes after the last signature", len - at);
    if (err == RP_OK && (s->payload = malloc(n)) == NULL)
        err = RP_ERR_NO_MEMORY;
    if (err == RP_OK) {
        memcpy(s->payload, buf + 10, n);
        s->len = n;
    } else {
        rp_md_signed_free(s);
    }
    return err;
}

/* ---- the signature rule ---- */

rp_err_t rp_md_verify(const rp_md_signed_t *s, const rp_md_role_t *role, char *detail, size_t cap)
{
    uint8_t digest[RP_SHA256_LEN], want[RP_SHA256_LEN];
    char hex[17];
    size_t good = 0;

    if (role->nkeys > RP_MD_KEYS_MAX || role->threshold == 0)
        return RP_ERR_INVALID_ARG;
    if (s->nsigs > RP_MD_SIGS_MAX || s->payload == NULL || s->len == 0 || s->len > RP_MD_MAX)
        return say(detail, cap, RP_ERR_BAD_SIGNATURE, "more than %d signatures, or no payload",
                   RP_MD_SIGS_MAX);
    /* One key signing twice never counts twice: refused, not merely counted once, so that no
     * list of signatures means two things. */
    for (size_t i = 0; i < s->nsigs; i++)
        for (size_t j = 0; j < i; j++)
            if (memcmp(s->sigs[i].keyid, s->sigs[j].keyid, RP_SHA256_LEN) == 0) {
                if (rp_hex_encode(s->sigs[i].keyid, 8, hex, sizeof(hex)) != RP_OK)
                    hex[0] = '\0';
                return say(detail, cap, RP_ERR_BAD_SIGNATURE, "key %s... signs twice", hex);
            }
    if (rp_sha256(s->payload, s->len, digest) != RP_OK)
        return RP_ERR_CRYPTO;
    for (size_t k = 0; k < role->nkeys; k++) {
        rp_sig_alg_t alg;
        if (role->spki_len[k] > RP_PUBKEY_DER_MAX ||
            rp_sha256(role->spki[k], role->spki_len[k], want) != RP_OK ||
            rp_pubkey_alg(role->spki[k], role->spki_len[k], &alg) != RP_OK)
            continue;
        for (size_t i = 0; i < s->nsigs; i++)
            if (memcmp(s->sigs[i].keyid, want, RP_SHA256_LEN) == 0) {
                if (rp_sig_verify(alg, role->spki[k], role->spki_len[k], digest, s->sigs[i].sig,
                                  s->sigs[i].len) == RP_OK)
                    good++; /* keyids are distinct: each key counts once */
                break;
            }
    }
    if (good < role->threshold)
        return say(detail, cap, RP_ERR_BAD_SIGNATURE, "%zu of the %zu signatures needed verify",
                   good, role->threshold);
    return RP_OK;
}

/* The payload of a verified (or, for a first root, trusted) envelope as JSON: an object, or
 * RP_ERR_MALFORMED. */
static rp_err_t payload_json(const uint8_t *bytes, size_t len, json_t **payload)
{
    *payload = json_loadb((const char *)bytes, len, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(*payload))
        return RP_OK;
    json_decref(*payload);
    *payload = NULL;
    return RP_ERR_MALFORMED;
}

rp_err_t rp_md_open(const char *envelope, size_t len, const rp_md_role_t *role, json_t **payload)
{
    rp_md_signed_t *s = calloc(1, sizeof(*s));
    rp_err_t err = s != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    *payload = NULL;
    if (err == RP_OK && (role->nkeys > RP_MD_KEYS_MAX || role->threshold == 0))
        err = RP_ERR_INVALID_ARG;
    if (err == RP_OK && (err = rp_md_unpack(envelope, len, s, NULL, 0)) == RP_OK &&
        (err = rp_md_verify(s, role, NULL, 0)) == RP_OK)
        err = payload_json(s->payload, s->len, payload);
    rp_md_signed_free(s);
    free(s);
    return err;
}

/* Whether der is the one encoding OpenSSL gives the key (an uncompressed point): one key, one
 * key ID, so that listing a key twice in two encodings cannot count it twice. */
static bool canonical_spki(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)len);
    unsigned char *out = NULL;
    int n = key != NULL && p == der + len ? i2d_PUBKEY(key, &out) : -1;
    bool ok = n > 0 && (size_t)n == len && memcmp(out, der, len) == 0;

    OPENSSL_free(out);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ok;
}

/* The rules of a role (see rp_md_role_t). */
static bool role_ok(const rp_md_role_t *role)
{
    if (role->nkeys == 0 || role->nkeys > RP_MD_KEYS_MAX || role->threshold < 1 ||
        role->threshold > role->nkeys)
        return false;
    for (size_t i = 0; i < role->nkeys; i++) {
        rp_sig_alg_t alg;
        if (role->spki_len[i] == 0 || role->spki_len[i] > RP_PUBKEY_DER_MAX ||
            rp_pubkey_alg(role->spki[i], role->spki_len[i], &alg) != RP_OK ||
            !canonical_spki(role->spki[i], role->spki_len[i]))
            return false;
        /* A key listed twice would let one signature count twice toward the threshold. */
        for (size_t seen = 0; seen < i; seen++)
            if (role->spki_len[seen] == role->spki_len[i] &&
                memcmp(role->spki[seen], role->spki[i], role->spki_len[i]) == 0)
                return false;
    }
    return true;
}

rp_err_t rp_md_role_parse(json_t *j, rp_md_role_t *role)
{
    json_t *keys = json_object_get(j, "keys"), *k;
    json_t *threshold = json_object_get(j, "threshold");
    size_t i;

    memset(role, 0, sizeof(*role));
    if (!json_is_array(keys) || json_array_size(keys) > RP_MD_KEYS_MAX ||
        !json_is_integer(threshold) || json_integer_value(threshold) < 1 ||
        json_integer_value(threshold) > RP_MD_KEYS_MAX)
        return RP_ERR_MALFORMED;
    json_array_foreach(keys, i, k)
    {
        const char *b64 = json_string_value(k);
        uint8_t *der = NULL;
        size_t len;
        if (b64 == NULL || rp_base64_decode(b64, strlen(b64), &der, &len) != RP_OK || len == 0 ||
            len > RP_PUBKEY_DER_MAX) {
            free(der);
            memset(role, 0, sizeof(*role));
            return RP_ERR_MALFORMED;
        }
        memcpy(role->spki[i], der, len);
        role->spki_len[i] = len;
        free(der);
    }
    role->nkeys = json_array_size(keys);
    role->threshold = (size_t)json_integer_value(threshold);
    if (!role_ok(role)) {
        memset(role, 0, sizeof(*role));
        return RP_ERR_MALFORMED;
    }
    return RP_OK;
}

bool rp_md_role_has(const rp_md_role_t *role, const uint8_t *spki, size_t len)
{
    for (size_t i = 0; i < role->nkeys && i < RP_MD_KEYS_MAX; i++)
        if (role->spki_len[i] == len && memcmp(role->spki[i], spki, len) == 0)
            return true;
    return false;
}

bool rp_md_role_equal(const rp_md_role_t *a, const rp_md_role_t *b)
{
    if (a->nkeys != b->nkeys || a->threshold != b->threshold || a->nkeys > RP_MD_KEYS_MAX)
        return false;
    for (size_t i = 0; i < a->nkeys; i++)
        if (a->spki_len[i] != b->spki_len[i] || memcmp(a->spki[i], b->spki[i], a->spki_len[i]) != 0)
            return false;
    return true;
}

json_t *rp_md_role_json(const uint8_t *const *spki, const size_t *spki_len, size_t n,
                        size_t threshold)
{
    json_t *keys = json_array();
    char *b64;

    for (size_t i = 0; keys != NULL && i < n; i++) {
        if (rp_base64_encode(spki[i], spki_len[i], &b64) != RP_OK) {
            json_decref(keys);
            return NULL;
        }
        json_array_append_new(keys, json_string(b64));
        free(b64);
    }
    return keys != NULL ? json_pack("{s:I, s:o}", "threshold", (json_int_t)threshold, "keys", keys)
                        : NULL;
}

/* ---- the documents ---- */

#define TYPE_ROOT "rampart-root"
#define TYPE_TARGETS "rampart-targets"

static rp_err_t say(char *detail, size_t cap, rp_err_t err, const char *fmt, ...)
{
    va_list ap;

    if (detail != NULL && cap > 0) {
        va_start(ap, fmt);
        vsnprintf(detail, cap, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* The length of a string field of cap bytes; cap when it holds no NUL (a struct filled in by
 * hand past its end), which no rule accepts. */
#define FIELD_LEN(f) strnlen((f), sizeof(f))

/* A tenant or deployment ID: 1 to RP_MD_ID_MAX of [A-Za-z0-9._-]. n: FIELD_LEN of it. */
static bool id_ok(const char *s, size_t n)
{
    if (n == 0 || n > RP_MD_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* A SHA-256 (or a device ID, which is one) in lowercase hex. n: FIELD_LEN of it. */
static bool hex_ok(const char *s, size_t n)
{
    _Static_assert(RP_MD_DEVICE_ID_LEN == RP_MD_HASH_HEX_LEN, "both are SHA-256s in hex");
    return n == RP_MD_HASH_HEX_LEN && strspn(s, "0123456789abcdef") == n;
}

static bool size_ok(uint64_t size)
{
    return size >= 1 && size <= RP_MD_IMAGE_SIZE_MAX;
}

/* Every rule of a root's fields (its signatures and its place in the chain are the accept
 * function's). */
static rp_err_t check_root(const rp_md_root_t *r, char *detail, size_t cap)
{
    if (!id_ok(r->tenant, FIELD_LEN(r->tenant)))
        return say(detail, cap, RP_ERR_MALFORMED, "a root's tenant is 1 to %d of A-Z a-z 0-9 . _ -",
                   RP_MD_ID_MAX);
    if (r->version < 1)
        return say(detail, cap, RP_ERR_MALFORMED, "a root's version is 1 or more");
    if (r->expires <= 0)
        return say(detail, cap, RP_ERR_MALFORMED, "a root's expiry is a Unix time");
    if (!role_ok(&r->root) || !role_ok(&r->online) || !role_ok(&r->images))
        return say(detail, cap, RP_ERR_MALFORMED,
                   "a root's roles (root, online, images) list 1 to %d keys each, each once, "
                   "with a threshold of 1 to their number",
                   RP_MD_KEYS_MAX);
    if (r->online.threshold != 1 || r->images.threshold != 1)
        return say(detail, cap, RP_ERR_MALFORMED,
                   "the online and images roles' thresholds are 1: targets and images carry one "
                   "trusted signature");
    return RP_OK;
}

static rp_err_t check_target(const rp_md_target_t *t, size_t i, char *detail, size_t cap)
{
    if (FIELD_LEN(t->component) == sizeof(t->component) ||
        !rp_component_name_valid(t->component, FIELD_LEN(t->component)))
        return say(detail, cap, RP_ERR_MALFORMED, "target %zu: a bad component name", i);
    if (!hex_ok(t->image, FIELD_LEN(t->image)) || !hex_ok(t->image_hash, FIELD_LEN(t->image_hash)))
        return say(detail, cap, RP_ERR_MALFORMED,
                   "target %zu: image and image_hash are SHA-256s in lowercase hex", i);
    if (!size_ok(t->size))
        return say(detail, cap, RP_ERR_MALFORMED, "target %zu: size is 1 to %llu", i,
                   (unsigned long long)RP_MD_IMAGE_SIZE_MAX);
    if (t->has_delta &&
        (!hex_ok(t->delta.from, FIELD_LEN(t->delta.from)) ||
         !hex_ok(t->delta.sha256, FIELD_LEN(t->delta.sha256)) || !size_ok(t->delta.size)))
        return say(detail, cap, RP_ERR_MALFORMED,
                   "target %zu: a delta is {from: an image ID, image: its SHA-256, size}", i);
    return RP_OK;
}

/* Every rule of the targets' fields (signature, device, rollback and freeze are the accept
 * function's). */
static rp_err_t check_targets(const rp_md_targets_t *t, char *detail, size_t cap)
{
    rp_err_t err;

    if (!id_ok(t->tenant, FIELD_LEN(t->tenant)) || !hex_ok(t->device, FIELD_LEN(t->device)) ||
        (t->deployment[0] != '\0' && !id_ok(t->deployment, FIELD_LEN(t->deployment))))
        return say(detail, cap, RP_ERR_MALFORMED,
                   "the targets' tenant, device or deployment is malformed");
    if (t->version < 0 || t->expires <= 0)
        return say(detail, cap, RP_ERR_MALFORMED,
                   "the targets' version is 0 or more and their expiry a Unix time");
    if (t->ntargets > RP_MD_TARGETS_MAX)
        return say(detail, cap, RP_ERR_MALFORMED, "more than %d targets", RP_MD_TARGETS_MAX);
    for (size_t i = 0; i < t->ntargets; i++) {
        err = check_target(&t->targets[i], i, detail, cap);
        if (err != RP_OK)
            return err;
        /* A device runs one image of each component: two would leave it to pick one. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->targets[j].component, t->targets[i].component) == 0)
                return say(detail, cap, RP_ERR_MALFORMED, "two targets for component %s",
                           t->targets[i].component);
    }
    return RP_OK;
}

/* ---- JSON <-> struct ---- */

/* A string member into a buffer of cap bytes; false when absent, not a string, or too long. */
static bool get_str(json_t *o, const char *key, char *out, size_t cap)
{
    json_t *v = json_object_get(o, key);
    size_t n = json_string_length(v);

    if (!json_is_string(v) || n >= cap || strlen(json_string_value(v)) != n)
        return false;
    memcpy(out, json_string_value(v), n + 1);
    return true;
}

/* An integer member within [min, max]. */
static bool get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return false;
    *out = json_integer_value(v);
    return true;
}

static json_t *role_to_json(const rp_md_role_t *role)
{
    const uint8_t *p[RP_MD_KEYS_MAX];

    for (size_t i = 0; i < role->nkeys && i < RP_MD_KEYS_MAX; i++)
        p[i] = role->spki[i];
    return rp_md_role_json(p, role->spki_len, role->nkeys, role->threshold);
}

static rp_err_t root_from_json(json_t *p, rp_md_root_t *r, char *detail, size_t cap)
{
    char type[16];
    json_t *roles = json_object_get(p, "roles");

    memset(r, 0, sizeof(*r));
    if (!get_str(p, "type", type, sizeof(type)) || strcmp(type, TYPE_ROOT) != 0)
        return say(detail, cap, RP_ERR_MALFORMED, "not a root (type %s)", TYPE_ROOT);
    if (!get_str(p, "tenant", r->tenant, sizeof(r->tenant)) ||
        !get_int(p, "version", 1, INT64_MAX, &r->version) ||
        !get_int(p, "expires", 1, INT64_MAX, &r->expires) || !json_is_object(roles) ||
        rp_md_role_parse(json_object_get(roles, "root"), &r->root) != RP_OK ||
        rp_md_role_parse(json_object_get(roles, "online"), &r->online) != RP_OK ||
        rp_md_role_parse(json_object_get(roles, "images"), &r->images) != RP_OK)
        return say(detail, cap, RP_ERR_MALFORMED,
                   "a root is {type: %s, tenant, version >= 1, expires, roles: {root, online, "
                   "images}}, each role {threshold, keys} listing each key once",
                   TYPE_ROOT);
    return check_root(r, detail, cap);
}

static json_t *root_to_json(const rp_md_root_t *r)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:{s:o, s:o, s:o}}", "type", TYPE_ROOT, "tenant",
                     r->tenant, "version", (json_int_t)r->version, "expires",
                     (json_int_t)r->expires, "roles", "root", role_to_json(&r->root), "online",
                     role_to_json(&r->online), "images", role_to_json(&r->images));
}

static rp_err_t target_from_json(json_t *j, size_t i, rp_md_target_t *t, char *detail, size_t cap)
{
    char version[RP_IMAGE_VERSION_STR_MAX];
    json_t *counter = json_object_get(j, "security_counter"), *delta = json_object_get(j, "delta");
    int64_t size, n = 0;

    if (!json_is_object(j) || !get_str(j, "component", t->component, sizeof(t->component)) ||
        !get_str(j, "image", t->image, sizeof(t->image)) ||
        !get_str(j, "image_hash", t->image_hash, sizeof(t->image_hash)) ||
        !get_int(j, "size", 1, INT64_MAX, &size) ||
        !get_str(j, "version", version, sizeof(version)) ||
        rp_image_version_parse(version, strlen(version), &t->version) != RP_OK ||
        !(json_is_null(counter) || get_int(j, "security_counter", 0, UINT32_MAX, &n)))
        return say(detail, cap, RP_ERR_MALFORMED,
                   "target %zu is malformed: {component, image, size, version, security_counter "
                   "(or null: none), image_hash[, delta]}",
                   i);
    t->size = (uint64_t)size;
    t->has_security_counter = !json_is_null(counter);
    t->security_counter = t->has_security_counter ? (uint32_t)n : 0;
    if (delta != NULL) {
        if (!json_is_object(delta) ||
            !get_str(delta, "from", t->delta.from, sizeof(t->delta.from)) ||
            !get_str(delta, "image", t->delta.sha256, sizeof(t->delta.sha256)) ||
            !get_int(delta, "size", 1, INT64_MAX, &size))
            return say(detail, cap, RP_ERR_MALFORMED, "target %zu: a malformed delta", i);
        t->has_delta = true;
        t->delta.size = (uint64_t)size;
    }
    return RP_OK;
}

static rp_err_t targets_from_json(json_t *p, rp_md_targets_t *t, char *detail, size_t cap)
{
    char type[16];
    json_t *list = json_object_get(p, "targets"), *e;
    size_t i;
    rp_err_t err;

    memset(t, 0, sizeof(*t));
    if (!get_str(p, "type", type, sizeof(type)) || strcmp(type, TYPE_TARGETS) != 0)
        return say(detail, cap, RP_ERR_MALFORMED, "not targets (type %s)", TYPE_TARGETS);
    if (!get_str(p, "tenant", t->tenant, sizeof(t->tenant)) ||
        !get_str(p, "device", t->device, sizeof(t->device)) ||
        !get_str(p, "deployment", t->deployment, sizeof(t->deployment)) ||
        !get_int(p, "version", 0, INT64_MAX, &t->version) ||
        !get_int(p, "expires", 1, INT64_MAX, &t->expires) || !json_is_array(list) ||
        json_array_size(list) > RP_MD_TARGETS_MAX)
        return say(detail, cap, RP_ERR_MALFORMED,
                   "targets are {type: %s, tenant, device, deployment, version, expires, "
                   "targets: [at most %d]}",
                   TYPE_TARGETS, RP_MD_TARGETS_MAX);
    json_array_foreach(list, i, e)
    {
        err = target_from_json(e, i, &t->targets[i], detail, cap);
        if (err != RP_OK)
            return err;
        t->ntargets++;
    }
    return check_targets(t, detail, cap);
}

static json_t *targets_to_json(const rp_md_targets_t *t)
{
    json_t *list = json_array(), *e;
    char version[RP_IMAGE_VERSION_STR_MAX];

    for (size_t i = 0; list != NULL && i < t->ntargets; i++) {
        const rp_md_target_t *g = &t->targets[i];
        if (rp_image_version_format(&g->version, version, sizeof(version)) != RP_OK) {
            json_decref(list);
            return NULL;
        }
        e = json_pack("{s:s, s:s, s:I, s:s, s:o, s:s}", "component", g->component, "image",
                      g->image, "size", (json_int_t)g->size, "version", version, "security_counter",
                      g->has_security_counter ? json_integer(g->security_counter) : json_null(),
                      "image_hash", g->image_hash);
        if (e != NULL && g->has_delta)
            json_object_set_new(e, "delta",
                                json_pack("{s:s, s:s, s:I}", "from", g->delta.from, "image",
                                          g->delta.sha256, "size", (json_int_t)g->delta.size));
        if (e == NULL || json_array_append_new(list, e) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list != NULL ? json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:o}", "type", TYPE_TARGETS,
                                    "tenant", t->tenant, "device", t->device, "version",
                                    (json_int_t)t->version, "expires", (json_int_t)t->expires,
                                    "deployment", t->deployment, "targets", list)
                        : NULL;
}

/* Serialize a payload as it is signed: compact, keys sorted. */
static rp_err_t sign_payload(json_t *payload, EVP_PKEY *const *keys, size_t nkeys, char **env)
{
    char *text = payload != NULL ? json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    rp_err_t err =
        text != NULL ? rp_md_sign(text, strlen(text), keys, nkeys, env) : RP_ERR_NO_MEMORY;

    free(text);
    json_decref(payload);
    return err;
}

rp_err_t rp_md_root_sign(const rp_md_root_t *root, EVP_PKEY *const *keys, size_t nkeys,
                         char **envelope, char *detail, size_t cap)
{
    *envelope = NULL;
    if (root == NULL || keys == NULL || nkeys == 0)
        return RP_ERR_INVALID_ARG;
    if (check_root(root, detail, cap) != RP_OK)
        return RP_ERR_INVALID_ARG;
    return sign_payload(root_to_json(root), keys, nkeys, envelope);
}

rp_err_t rp_md_targets_sign(const rp_md_targets_t *targets, EVP_PKEY *key, char **envelope,
                            char *detail, size_t cap)
{
    *envelope = NULL;
    if (targets == NULL || key == NULL)
        return RP_ERR_INVALID_ARG;
    if (check_targets(targets, detail, cap) != RP_OK)
        return RP_ERR_INVALID_ARG;
    return sign_payload(targets_to_json(targets), &key, 1, envelope);
}

/* ---- accepting ---- */

rp_err_t rp_md_root_accept_signed(const rp_md_signed_t *s, const rp_md_root_trust_t *trust,
                                  rp_md_root_t *out, char *detail, size_t cap)
{
    return rp_md_root_accept_with(s, trust, rp_md_parse, NULL, out, NULL, NULL, detail, cap);
}

rp_err_t rp_md_root_accept_with(const rp_md_signed_t *s, const rp_md_root_trust_t *trust,
                                rp_md_parse_fn parse, void *ctx, rp_md_root_t *out, uint8_t *bin,
                                size_t *bin_len, char *detail, size_t cap)
{
    rp_md_root_t *r = calloc(1, sizeof(*r));
    char why[96] = "";
    rp_err_t err = r != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (s == NULL || trust == NULL || parse == NULL || out == NULL)
        err = RP_ERR_INVALID_ARG;
    /* The next root: signed by the kept root's keys before a byte of it is parsed. */
    if (err == RP_OK && trust->current != NULL &&
        rp_md_verify(s, &trust->current->root, why, sizeof(why)) != RP_OK)
        err = say(detail, cap, RP_ERR_BAD_SIGNATURE,
                  "the root is not signed by the keys of version %lld (%s)",
                  (long long)trust->current->version, why);
    /* A first root (the operator's) is parsed before it is verified, only to learn which keys
     * must have signed it; nothing it says is used unless they did. */
    if (err == RP_OK)
        err = parse(ctx, RP_MD_ROOT, s->payload, s->len, r, bin, bin_len, detail, cap);
    if (err == RP_OK && rp_md_verify(s, &r->root, why, sizeof(why)) != RP_OK)
        err = say(detail, cap, RP_ERR_BAD_SIGNATURE,
                  "root version %lld is not signed by its own root keys (threshold %zu: %s)",
                  (long long)r->version, r->root.threshold, why);
    if (err == RP_OK && trust->current != NULL &&
        (r->version != trust->current->version + 1 ||
         strcmp(r->tenant, trust->current->tenant) != 0))
        err = say(detail, cap, RP_ERR_ROLLBACK,
                  "root version %lld of %s is not the next version of %s's root (%lld)",
                  (long long)r->version, r->tenant, trust->current->tenant,
                  (long long)trust->current->version);
    if (err == RP_OK && trust->tenant != NULL && strcmp(r->tenant, trust->tenant) != 0)
        err = say(detail, cap, RP_ERR_MALFORMED, "the root is for tenant %s, not %s", r->tenant,
                  trust->tenant);
    if (err == RP_OK && !trust->expired_ok && r->expires <= trust->now)
        err = say(detail, cap, RP_ERR_EXPIRED, "root version %lld has expired (freeze)",
                  (long long)r->version);
    if (err == RP_OK)
        *out = *r;
    free(r);
    return err;
}

/* The JSON envelope's side of an accept: bounded, unpacked into a new *s (the caller frees it
 * with rp_md_signed_free and free, whatever this returns). what: "a root", "targets". */
static rp_err_t envelope_unpack(const char *envelope, size_t len, const void *trust, void *out,
                                const char *what, rp_md_signed_t **s, char *detail, size_t cap)
{
    *s = calloc(1, sizeof(**s));
    if (*s == NULL)
        return RP_ERR_NO_MEMORY;
    if (envelope == NULL || trust == NULL || out == NULL)
        return RP_ERR_INVALID_ARG;
    if (len > RP_MD_MAX)
        return say(detail, cap, RP_ERR_TOO_LARGE, "%s of more than %d bytes", what, RP_MD_MAX);
    if (rp_md_unpack(envelope, len, *s, NULL, 0) != RP_OK)
        return say(detail, cap, RP_ERR_MALFORMED, "not a metadata envelope with a JSON payload");
    return RP_OK;
}

rp_err_t rp_md_root_accept(const char *envelope, size_t len, const rp_md_root_trust_t *trust,
                           rp_md_root_t *out, char *detail, size_t cap)
{
    rp_md_signed_t *s = NULL;
    rp_err_t err;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    err = envelope_unpack(envelope, len, trust, out, "a root", &s, detail, cap);
    if (err == RP_OK)
        err = rp_md_root_accept_signed(s, trust, out, detail, cap);
    rp_md_signed_free(s);
    free(s);
    return err;
}

rp_err_t rp_md_targets_accept_signed(const rp_md_signed_t *s, const rp_md_targets_trust_t *trust,
                                     rp_md_targets_t *out, char *detail, size_t cap)
{
    return rp_md_targets_accept_with(s, trust, rp_md_parse, NULL, out, NULL, NULL, detail, cap);
}

rp_err_t rp_md_targets_accept_with(const rp_md_signed_t *s, const rp_md_targets_trust_t *trust,
                                   rp_md_parse_fn parse, void *ctx, rp_md_targets_t *out,
                                   uint8_t *bin, size_t *bin_len, char *detail, size_t cap)
{
    rp_md_targets_t *t = calloc(1, sizeof(*t));
    char why[96] = "";
    rp_err_t err = t != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (s == NULL || trust == NULL || trust->root == NULL || trust->device == NULL ||
        parse == NULL || out == NULL)
        err = RP_ERR_INVALID_ARG;
    else if (err == RP_OK && rp_md_verify(s, &trust->root->online, why, sizeof(why)) != RP_OK)
        err = say(detail, cap, RP_ERR_BAD_SIGNATURE,
                  "the targets are not signed by the root's online key (%s)", why);
    else if (err == RP_OK)
        err = parse(ctx, RP_MD_TARGETS, s->payload, s->len, t, bin, bin_len, detail, cap);
    if (err == RP_OK &&
        (strcmp(t->tenant, trust->root->tenant) != 0 || strcmp(t->device, trust->device) != 0))
        err = say(detail, cap, RP_ERR_MALFORMED, "the targets are not this device's");
    else if (err == RP_OK && t->version < trust->min_version)
        err = say(detail, cap, RP_ERR_ROLLBACK,
                  "targets version %lld is older than the %lld the device has (rollback)",
                  (long long)t->version, (long long)trust->min_version);
    else if (err == RP_OK && !trust->expired_ok && t->expires <= trust->now)
        err = say(detail, cap, RP_ERR_EXPIRED, "the targets have expired (freeze)");
    if (err == RP_OK)
        *out = *t;
    free(t);
    return err;
}

rp_err_t rp_md_targets_accept(const char *envelope, size_t len, const rp_md_targets_trust_t *trust,
                              rp_md_targets_t *out, char *detail, size_t cap)
{
    rp_md_signed_t *s = NULL;
    rp_err_t err;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    err = envelope_unpack(envelope, len, trust, out, "targets", &s, detail, cap);
    if (err == RP_OK)
        err = rp_md_targets_accept_signed(s, trust, out, detail, cap);
    rp_md_signed_free(s);
    free(s);
    return err;
}

/* ---- capabilities ---- */

#define TYPE_CAPABILITY "rampart-capability"
#define CLOCK_SKEW 300 /* a capability issued this far in the device's future is still taken */

const char *rp_md_capability_kind_name(rp_md_capability_kind_t kind)
{
    return kind == RP_MD_CAP_DEVELOPMENT ? "development" : NULL;
}

rp_err_t rp_md_capability_kind_parse(const char *name, rp_md_capability_kind_t *kind)
{
    if (name == NULL || strcmp(name, "development") != 0)
        return RP_ERR_INVALID_ARG;
    *kind = RP_MD_CAP_DEVELOPMENT;
    return RP_OK;
}

static rp_err_t check_capability(const rp_md_capability_t *c, char *detail, size_t cap)
{
    if (!id_ok(c->tenant, FIELD_LEN(c->tenant)) || !hex_ok(c->device, FIELD_LEN(c->device)))
        return say(detail, cap, RP_ERR_MALFORMED, "the capability's tenant or device is malformed");
    if (rp_md_capability_kind_name(c->kind) == NULL)
        return say(detail, cap, RP_ERR_MALFORMED, "the capability's kind is not one Rampart knows");
    if (c->issued <= 0 || c->expires <= c->issued ||
        c->expires - c->issued > RP_MD_CAPABILITY_LIFETIME_MAX)
        return say(detail, cap, RP_ERR_MALFORMED,
                   "a capability expires after it is issued, at most %d days later",
                   RP_MD_CAPABILITY_LIFETIME_MAX / 86400);
    return RP_OK;
}

rp_err_t rp_md_capability_sign(const rp_md_capability_t *c, EVP_PKEY *key, char **envelope,
                               char *detail, size_t cap)
{
    *envelope = NULL;
    if (c == NULL || key == NULL)
        return RP_ERR_INVALID_ARG;
    if (check_capability(c, detail, cap) != RP_OK)
        return RP_ERR_INVALID_ARG;
    return sign_payload(json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "type", TYPE_CAPABILITY,
                                  "tenant", c->tenant, "device", c->device, "kind",
                                  rp_md_capability_kind_name(c->kind), "issued",
                                  (json_int_t)c->issued, "expires", (json_int_t)c->expires),
                        &key, 1, envelope);
}

static rp_err_t capability_from_json(json_t *p, rp_md_capability_t *c, char *detail, size_t cap)
{
    char type[24], kind[24];

    memset(c, 0, sizeof(*c));
    if (!get_str(p, "type", type, sizeof(type)) || strcmp(type, TYPE_CAPABILITY) != 0)
        return say(detail, cap, RP_ERR_MALFORMED, "not a capability (type %s)", TYPE_CAPABILITY);
    if (json_object_size(p) != 6 || !get_str(p, "tenant", c->tenant, sizeof(c->tenant)) ||
        !get_str(p, "device", c->device, sizeof(c->device)) ||
        !get_str(p, "kind", kind, sizeof(kind)) ||
        !get_int(p, "issued", 1, INT64_MAX, &c->issued) ||
        !get_int(p, "expires", 1, INT64_MAX, &c->expires))
        return say(detail, cap, RP_ERR_MALFORMED,
                   "a capability is {type: %s, tenant, device, kind, issued, expires}",
                   TYPE_CAPABILITY);
    if (rp_md_capability_kind_parse(kind, &c->kind) != RP_OK)
        return say(detail, cap, RP_ERR_MALFORMED,
                   "capability kind \"%.24s\" is not one Rampart knows", kind);
    return check_capability(c, detail, cap);
}

rp_err_t rp_md_capability_accept(const char *envelope, size_t len,
                                 const rp_md_capability_trust_t *trust, rp_md_capability_t *out,
                                 char *detail, size_t cap)
{
    rp_md_signed_t *s = NULL;
    rp_err_t err;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (trust == NULL || trust->root == NULL || trust->device == NULL)
        return RP_ERR_INVALID_ARG;
    err = envelope_unpack(envelope, len, trust, out, "a capability", &s, detail, cap);
    if (err == RP_OK)
        err =
            rp_md_capability_accept_with(s, trust, rp_md_parse, NULL, out, NULL, NULL, detail, cap);
    rp_md_signed_free(s);
    free(s);
    return err;
}

rp_err_t rp_md_capability_accept_with(const rp_md_signed_t *s,
                                      const rp_md_capability_trust_t *trust, rp_md_parse_fn parse,
                                      void *ctx, rp_md_capability_t *out, uint8_t *bin,
                                      size_t *bin_len, char *detail, size_t cap)
{
    rp_md_capability_t c;
    rp_err_t err;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (s == NULL || trust == NULL || trust->root == NULL || trust->device == NULL ||
        parse == NULL || out == NULL)
        return RP_ERR_INVALID_ARG;
    if (rp_md_verify(s, &trust->root->online, NULL, 0) != RP_OK)
        return say(detail, cap, RP_ERR_BAD_SIGNATURE,
                   "the capability is not signed by the service's online key that the device's "
                   "update root names");
    err = parse(ctx, RP_MD_CAPABILITY, s->payload, s->len, &c, bin, bin_len, detail, cap);
    if (err == RP_OK &&
        (strcmp(c.tenant, trust->root->tenant) != 0 || strcmp(c.device, trust->device) != 0))
        err = say(detail, cap, RP_ERR_MALFORMED, "the capability is for another device");
    else if (err == RP_OK && c.expires <= trust->now)
        err = say(detail, cap, RP_ERR_EXPIRED, "the capability has expired");
    else if (err == RP_OK && c.issued > trust->now + CLOCK_SKEW)
        err = say(detail, cap, RP_ERR_EXPIRED,
                  "the capability is issued in the future (is the device's clock right?)");
    if (err == RP_OK)
        *out = c;
    return err;
}

/* ---- parsing (rp_md_parse_fn) ---- */

rp_err_t rp_md_parse(void *ctx, rp_md_kind_t kind, const uint8_t *payload, size_t len, void *out,
                     uint8_t *bin, size_t *bin_len, char *detail, size_t cap)
{
    json_t *p = NULL;
    rp_err_t err;

    (void)ctx;
    if (payload == NULL || len == 0 || len > RP_MD_MAX || out == NULL ||
        payload_json(payload, len, &p) != RP_OK)
        return say(detail, cap, RP_ERR_MALFORMED, "not a metadata envelope with a JSON payload");
    switch (kind) {
    case RP_MD_ROOT: err = root_from_json(p, out, detail, cap); break;
    case RP_MD_TARGETS: err = targets_from_json(p, out, detail, cap); break;
    case RP_MD_CAPABILITY: err = capability_from_json(p, out, detail, cap); break;
    default: err = RP_ERR_INVALID_ARG;
    }
    json_decref(p);
    if (err == RP_OK && bin != NULL)
        err = rp_md_doc_encode(kind, out, bin, RP_MD_DOC_BIN_MAX, bin_len);
    return err;
}

/* ---- the documents' binary form (metadata.h) ---- */

#define DOC_MAGIC 0x52504d44u  /* "RPMD" */
#define KEPT_MAGIC 0x52504b50u /* "RPKP" */
#define DOC_FORM 1

struct wr {
    uint8_t *b;
    size_t cap, at;
    bool ok;
};

static void put(struct wr *w, uint64_t v, size_t n)
{
    if (!w->ok || w->cap - w->at < n) {
        w->ok = false;
        return;
    }
    rp_be_put(w->b + w->at, v, n);
    w->at += n;
}

static void put_bytes(struct wr *w, const void *p, size_t n, size_t width)
{
    put(w, n, width);
    if (!w->ok || w->cap - w->at < n) {
        w->ok = false;
        return;
    }
    memcpy(w->b + w->at, p, n);
    w->at += n;
}

/* A string field of cap bytes (FIELD_LEN's rule). */
static void put_str(struct wr *w, const char *f, size_t cap)
{
    put_bytes(w, f, strnlen(f, cap), 1);
}

static void put_role(struct wr *w, const rp_md_role_t *r)
{
    put(w, r->threshold, 1);
    put(w, r->nkeys, 1);
    for (size_t i = 0; i < r->nkeys && i < RP_MD_KEYS_MAX; i++)
        put_bytes(w, r->spki[i], r->spki_len[i], 2);
}

static void put_version(struct wr *w, const rp_image_version_t *v)
{
    put(w, v->major, 1);
    put(w, v->minor, 1);
    put(w, v->revision, 2);
    put(w, v->build, 4);
}

rp_err_t rp_md_doc_encode(rp_md_kind_t kind, const void *doc, uint8_t *out, size_t cap, size_t *len)
{
    struct wr w = {out, cap, 0, true};
    rp_err_t err;

    *len = 0;
    /* Only what the rules accept is written: what is read back is held to them again. */
    switch (kind) {
    case RP_MD_ROOT: err = check_root(doc, NULL, 0); break;
    case RP_MD_TARGETS: err = check_targets(doc, NULL, 0); break;
    case RP_MD_CAPABILITY: err = check_capability(doc, NULL, 0); break;
    default: err = RP_ERR_INVALID_ARG;
    }
    if (err != RP_OK)
        return RP_ERR_INVALID_ARG;
    put(&w, DOC_MAGIC, 4);
    put(&w, DOC_FORM, 2);
    put(&w, kind, 1);
    if (kind == RP_MD_ROOT) {
        const rp_md_root_t *r = doc;
        put_str(&w, r->tenant, sizeof(r->tenant));
        put(&w, (uint64_t)r->version, 8);
        put(&w, (uint64_t)r->expires, 8);
        put_role(&w, &r->root);
        put_role(&w, &r->online);
        put_role(&w, &r->images);
    } else if (kind == RP_MD_TARGETS) {
        const rp_md_targets_t *t = doc;
        put_str(&w, t->tenant, sizeof(t->tenant));
        put_str(&w, t->device, sizeof(t->device));
        put_str(&w, t->deployment, sizeof(t->deployment));
        put(&w, (uint64_t)t->version, 8);
        put(&w, (uint64_t)t->expires, 8);
        put(&w, t->ntargets, 1);
        for (size_t i = 0; i < t->ntargets; i++) {
            const rp_md_target_t *g = &t->targets[i];
            put_str(&w, g->component, sizeof(g->component));
            put_str(&w, g->image, sizeof(g->image));
            put(&w, g->size, 8);
            put_version(&w, &g->version);
            put(&w, g->has_security_counter, 1);
            put(&w, g->security_counter, 4);
            put_str(&w, g->image_hash, sizeof(g->image_hash));
            put(&w, g->has_delta, 1);
            if (g->has_delta) {
                put_str(&w, g->delta.from, sizeof(g->delta.from));
                put_str(&w, g->delta.sha256, sizeof(g->delta.sha256));
                put(&w, g->delta.size, 8);
            }
        }
    } else {
        const rp_md_capability_t *c = doc;
        put_str(&w, c->tenant, sizeof(c->tenant));
        put_str(&w, c->device, sizeof(c->device));
        put(&w, c->kind, 1);
        put(&w, (uint64_t)c->issued, 8);
        put(&w, (uint64_t)c->expires, 8);
    }
    if (!w.ok)
        return RP_ERR_TOO_LARGE;
    *len = w.at;
    return RP_OK;
}

struct rd {
    const uint8_t *b;
    size_t len, at;
    bool ok, bad; /* bad: a field out of its bounds (ok is false then too) */
};

static uint64_t get(struct rd *r, size_t n)
{
    uint64_t v;

    if (!r->ok || r->len - r->at < n) {
        r->ok = false;
        return 0;
    }
    v = rp_be_get(r->b + r->at, n);
    r->at += n;
    return v;
}

/* n bytes (n read first, width bytes wide) into out[0..cap): at most cap, and for a string
 * (str) no NUL inside and one after. */
static size_t get_bytes(struct rd *r, void *out, size_t cap, size_t width, bool str)
{
    size_t n = (size_t)get(r, width);

    if (!r->ok || r->len - r->at < n) {
        r->ok = false;
        return 0;
    }
    if (n > cap - (str ? 1 : 0) || (str && memchr(r->b + r->at, '\0', n) != NULL)) {
        r->ok = false;
        r->bad = true;
        return 0;
    }
    memcpy(out, r->b + r->at, n);
    if (str)
        ((char *)out)[n] = '\0';
    r->at += n;
    return n;
}

#define GET_STR(r, f) get_bytes((r), (f), sizeof(f), 1, true)

static bool get_bool(struct rd *r)
{
    uint64_t v = get(r, 1);

    if (v > 1)
        r->ok = false, r->bad = true;
    return v == 1;
}

static void get_role(struct rd *r, rp_md_role_t *role)
{
    role->threshold = (size_t)get(r, 1);
    role->nkeys = (size_t)get(r, 1);
    if (role->nkeys > RP_MD_KEYS_MAX) {
        r->ok = false;
        r->bad = true;
        role->nkeys = 0;
    }
    for (size_t i = 0; i < role->nkeys; i++)
        role->spki_len[i] = get_bytes(r, role->spki[i], RP_PUBKEY_DER_MAX, 2, false);
}

static void get_version(struct rd *r, rp_image_version_t *v)
{
    v->major = (uint8_t)get(r, 1);
    v->minor = (uint8_t)get(r, 1);
    v->revision = (uint16_t)get(r, 2);
    v->build = (uint32_t)get(r, 4);
}

static size_t doc_size(rp_md_kind_t kind)
{
    return kind == RP_MD_ROOT      ? sizeof(rp_md_root_t)
           : kind == RP_MD_TARGETS ? sizeof(rp_md_targets_t)
                                   : sizeof(rp_md_capability_t);
}

rp_err_t rp_md_doc_decode(rp_md_kind_t kind, const uint8_t *buf, size_t len, void *out,
                          char *detail, size_t cap)
{
    struct rd r = {buf, len, 0, true, false};
    rp_err_t err = RP_OK;

    if (kind != RP_MD_ROOT && kind != RP_MD_TARGETS && kind != RP_MD_CAPABILITY)
        return RP_ERR_INVALID_ARG;
    memset(out, 0, doc_size(kind));
    if (len < 7 || get(&r, 4) != DOC_MAGIC || get(&r, 2) != DOC_FORM)
        return say(detail, cap, len < 7 ? RP_ERR_TRUNCATED : RP_ERR_BAD_MAGIC,
                   "not a metadata document in its binary form (\"RPMD\", form %d)", DOC_FORM);
    if (get(&r, 1) != kind)
        return say(detail, cap, RP_ERR_MALFORMED, "a document of another kind than %d", kind);
    if (kind == RP_MD_ROOT) {
        rp_md_root_t *o = out;
        GET_STR(&r, o->tenant);
        o->version = (int64_t)get(&r, 8);
        o->expires = (int64_t)get(&r, 8);
        get_role(&r, &o->root);
        get_role(&r, &o->online);
        get_role(&r, &o->images);
    } else if (kind == RP_MD_TARGETS) {
        rp_md_targets_t *t = out;
        GET_STR(&r, t->tenant);
        GET_STR(&r, t->device);
        GET_STR(&r, t->deployment);
        t->version = (int64_t)get(&r, 8);
        t->expires = (int64_t)get(&r, 8);
        t->ntargets = (size_t)get(&r, 1);
        if (t->ntargets > RP_MD_TARGETS_MAX) {
            r.ok = false;
            r.bad = true;
            t->ntargets = 0;
        }
        for (size_t i = 0; r.ok && i < t->ntargets; i++) {
            rp_md_target_t *g = &t->targets[i];
            GET_STR(&r, g->component);
            GET_STR(&r, g->image);
            g->size = get(&r, 8);
            get_version(&r, &g->version);
            g->has_security_counter = get_bool(&r);
            g->security_counter = (uint32_t)get(&r, 4);
            GET_STR(&r, g->image_hash);
            g->has_delta = get_bool(&r);
            if (g->has_delta) {
                GET_STR(&r, g->delta.from);
                GET_STR(&r, g->delta.sha256);
                g->delta.size = get(&r, 8);
            }
        }
    } else {
        rp_md_capability_t *c = out;
        GET_STR(&r, c->tenant);
        GET_STR(&r, c->device);
        c->kind = (rp_md_capability_kind_t)get(&r, 1);
        c->issued = (int64_t)get(&r, 8);
        c->expires = (int64_t)get(&r, 8);
    }
    if (r.bad)
        err = say(detail, cap, RP_ERR_MALFORMED, "a field out of its bounds");
    else if (!r.ok)
        err = say(detail, cap, RP_ERR_TRUNCATED, "the document ends in a field");
    else if (r.at != len)
        err = say(detail, cap, RP_ERR_MALFORMED, "%zu bytes after the document", len - r.at);
    else if (kind == RP_MD_ROOT)
        err = check_root(out, detail, cap);
    else if (kind == RP_MD_TARGETS)
        err = check_targets(out, detail, cap);
    else
        err = check_capability(out, detail, cap);
    /* What the JSON parser holds apart from the field rules: a counter is 0 without one. */
    if (err == RP_OK && kind == RP_MD_TARGETS)
        for (size_t i = 0; i < ((rp_md_targets_t *)out)->ntargets; i++) {
            const rp_md_target_t *g = &((rp_md_targets_t *)out)->targets[i];
            if (!g->has_security_counter && g->security_counter != 0)
                err =
                    say(detail, cap, RP_ERR_MALFORMED, "target %zu: a counter said to be none", i);
        }
    if (err != RP_OK)
        memset(out, 0, doc_size(kind));
    return err;
}

rp_err_t rp_md_kept_encode(const uint8_t *doc, size_t n, const rp_md_signed_t *s, uint8_t **out,
                           size_t *len)
{
    uint8_t *sig = NULL, *b = NULL;
    size_t slen = 0;
    rp_err_t err = doc != NULL && n >= 7 && n <= RP_MD_DOC_BIN_MAX ? RP_OK : RP_ERR_INVALID_ARG;

    *out = NULL;
    *len = 0;
    if (err == RP_OK)
        err = rp_md_signed_encode(s, &sig, &slen);
    if (err == RP_OK && (b = malloc(8 + n + slen)) == NULL)
        err = RP_ERR_NO_MEMORY;
    if (err == RP_OK) {
        rp_be_put(b, KEPT_MAGIC, 4);
        rp_be_put(b + 4, n, 4);
        memcpy(b + 8, doc, n);
        memcpy(b + 8 + n, sig, slen);
        *out = b;
        *len = 8 + n + slen;
    }
    free(sig);
    return err;
}

rp_err_t rp_md_kept_decode(rp_md_kind_t kind, const uint8_t *buf, size_t len, rp_md_signed_t *s,
                           void *doc, char *detail, size_t cap)
{
    size_t n;
    rp_err_t err;

    memset(s, 0, sizeof(*s));
    if (len < 8 || rp_be_get(buf, 4) != KEPT_MAGIC)
        return say(detail, cap, len < 8 ? RP_ERR_TRUNCATED : RP_ERR_BAD_MAGIC,
                   "not a kept document (\"RPKP\")");
    n = (size_t)rp_be_get(buf + 4, 4);
    if (n > len - 8)
        return say(detail, cap, RP_ERR_TRUNCATED, "the kept document ends in its first part");
    err = rp_md_doc_decode(kind, buf + 8, n, doc, detail, cap);
    if (err == RP_OK)
        err = rp_md_signed_decode(buf + 8 + n, len - 8 - n, s, detail, cap);
    if (err != RP_OK)
        memset(doc, 0, doc_size(kind));
    return err;
}

rp_err_t rp_md_kept_parse(void *ctx, rp_md_kind_t kind, const uint8_t *payload, size_t len,
                          void *out, uint8_t *bin, size_t *bin_len, char *detail, size_t cap)
{
    (void)payload;
    (void)len;
    (void)bin_len;
    if (ctx == NULL || out == NULL || bin != NULL ||
        (kind != RP_MD_ROOT && kind != RP_MD_TARGETS && kind != RP_MD_CAPABILITY))
        return say(detail, cap, RP_ERR_INVALID_ARG, "no kept document of kind %d", kind);
    memcpy(out, ctx, doc_size(kind));
    return RP_OK;
}
