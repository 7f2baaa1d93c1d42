/*
 * Signed update metadata (lib/src/metadata.c) and its rules, as the service and the device apply
 * them: an envelope verifies only with the threshold of its role's keys (each key counted once,
 * any changed byte refused); a new root must be signed by the old root's keys and its own, be the
 * next version of the same tenant and not be expired; the targets must be signed by the root's
 * online key, be this device's, not be older than what the device has (rollback), not be expired
 * (freeze), and hold every field within its bounds (a security counter may be none); what the
 * build functions make, the accept functions take back unchanged, and what they refuse is never
 * built; a delta rebuilds exactly its target.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/base64.h"
#include "rampart/delta.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "rampart/metadata.h"

#define DEVICE "aa00000000000000000000000000000000000000000000000000000000000000"
#define NOW 1800000000

struct keys {
    EVP_PKEY *root1, *root2, *online, *image, *rogue;
};

static int setup(void **state)
{
    struct keys *k = calloc(1, sizeof(*k));

    rp_log_init("test_update", RP_LOG_ERROR);
    if (k == NULL || rp_key_generate(RP_SIG_ECDSA_P256, &k->root1) != RP_OK ||
        rp_key_generate(RP_SIG_ED25519, &k->root2) != RP_OK ||
        rp_key_generate(RP_SIG_ECDSA_P256, &k->online) != RP_OK ||
        rp_key_generate(RP_SIG_ECDSA_P256, &k->image) != RP_OK ||
        rp_key_generate(RP_SIG_ECDSA_P256, &k->rogue) != RP_OK)
        return -1;
    *state = k;
    return 0;
}

static int teardown(void **state)
{
    struct keys *k = *state;

    EVP_PKEY_free(k->root1);
    EVP_PKEY_free(k->root2);
    EVP_PKEY_free(k->online);
    EVP_PKEY_free(k->image);
    EVP_PKEY_free(k->rogue);
    free(k);
    return 0;
}

static json_t *role(EVP_PKEY *const *keys, size_t n, size_t threshold)
{
    uint8_t spki[4][RP_PUBKEY_DER_MAX];
    const uint8_t *p[4];
    size_t len[4];

    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rp_key_spki(keys[i], spki[i], sizeof(spki[i]), &len[i]), RP_OK);
        p[i] = spki[i];
    }
    return rp_md_role_json(p, len, n, threshold);
}

static char *sign(json_t *payload, EVP_PKEY *const *keys, size_t n)
{
    char *text = json_dumps(payload, JSON_COMPACT), *env = NULL;

    assert_non_null(text);
    assert_int_equal(rp_md_sign(text, strlen(text), keys, n, &env), RP_OK);
    free(text);
    json_decref(payload);
    return env;
}

/* A role of one key. */
static rp_md_role_t one_key(EVP_PKEY *key)
{
    rp_md_role_t r;

    memset(&r, 0, sizeof(r));
    r.nkeys = r.threshold = 1;
    assert_int_equal(rp_key_spki(key, r.spki[0], sizeof(r.spki[0]), &r.spki_len[0]), RP_OK);
    return r;
}

static rp_md_root_t root_struct(const char *tenant, int64_t version, EVP_PKEY *root_key,
                                EVP_PKEY *online, EVP_PKEY *image)
{
    rp_md_root_t r;

    memset(&r, 0, sizeof(r));
    snprintf(r.tenant, sizeof(r.tenant), "%s", tenant);
    r.version = version;
    r.expires = NOW + 86400;
    r.root = one_key(root_key);
    r.online = one_key(online);
    r.images = one_key(image);
    return r;
}

/* A root signed by keys (the one build function). */
static char *root_env(const rp_md_root_t *r, EVP_PKEY *const *keys, size_t n)
{
    char *env = NULL, detail[256];

    assert_int_equal(rp_md_root_sign(r, keys, n, &env, detail, sizeof(detail)), RP_OK);
    return env;
}

/* The JSON form of a root, for editing into what the build function would never make. */
static json_t *root_payload(const char *tenant, int version, EVP_PKEY *root_key, EVP_PKEY *online,
                            EVP_PKEY *image)
{
    return json_pack("{s:s, s:s, s:i, s:I, s:{s:o, s:o, s:o}}", "type", "rampart-root", "tenant",
                     tenant, "version", version, "expires", (json_int_t)NOW + 86400, "roles",
                     "root", role(&root_key, 1, 1), "online", role(&online, 1, 1), "images",
                     role(&image, 1, 1));
}

/* Field by field: struct padding is not part of a document. */
static void assert_same_role(const rp_md_role_t *a, const rp_md_role_t *b)
{
    assert_true(rp_md_role_equal(a, b));
}

static void assert_same_root(const rp_md_root_t *a, const rp_md_root_t *b)
{
    assert_string_equal(a->tenant, b->tenant);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->expires, b->expires);
    assert_same_role(&a->root, &b->root);
    assert_same_role(&a->online, &b->online);
    assert_same_role(&a->images, &b->images);
}

static void assert_same_targets(const rp_md_targets_t *a, const rp_md_targets_t *b)
{
    assert_string_equal(a->tenant, b->tenant);
    assert_string_equal(a->device, b->device);
    assert_string_equal(a->deployment, b->deployment);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->expires, b->expires);
    assert_int_equal(a->ntargets, b->ntargets);
    for (size_t i = 0; i < a->ntargets; i++) {
        const rp_md_target_t *x = &a->targets[i], *y = &b->targets[i];
        assert_string_equal(x->component, y->component);
        assert_string_equal(x->image, y->image);
        assert_string_equal(x->image_hash, y->image_hash);
        assert_int_equal(x->size, y->size);
        assert_int_equal(rp_image_version_cmp(&x->version, &y->version), 0);
        assert_int_equal(x->has_security_counter, y->has_security_counter);
        assert_int_equal(x->security_counter, y->security_counter);
        assert_int_equal(x->has_delta, y->has_delta);
        if (x->has_delta) {
            assert_string_equal(x->delta.from, y->delta.from);
            assert_string_equal(x->delta.sha256, y->delta.sha256);
            assert_int_equal(x->delta.size, y->delta.size);
        }
    }
}

#define IMAGE_ID "1111111111111111111111111111111111111111111111111111111111111111"
#define IMAGE_HASH "2222222222222222222222222222222222222222222222222222222222222222"

static json_t *targets_payload(const char *tenant, const char *device, int version, int64_t expires)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:[{s:s, s:s, s:I, s:s, s:I, s:s}]}", "type",
                     "rampart-targets", "tenant", tenant, "device", device, "version", version,
                     "expires", (json_int_t)expires, "deployment", "d_1", "targets", "component",
                     "app", "image", IMAGE_ID, "size", (json_int_t)10, "version", "1.0.0+0",
                     "security_counter", (json_int_t)1, "image_hash", IMAGE_HASH);
}

static rp_md_targets_t targets_struct(void)
{
    rp_md_targets_t t;

    memset(&t, 0, sizeof(t));
    strcpy(t.tenant, "t_1");
    strcpy(t.device, DEVICE);
    strcpy(t.deployment, "d_1");
    t.version = 5;
    t.expires = NOW + 60;
    t.ntargets = 1;
    strcpy(t.targets[0].component, "app");
    strcpy(t.targets[0].image, IMAGE_ID);
    strcpy(t.targets[0].image_hash, IMAGE_HASH);
    t.targets[0].size = 10;
    t.targets[0].version = (rp_image_version_t){1, 0, 0, 0};
    t.targets[0].has_security_counter = true;
    t.targets[0].security_counter = 1;
    return t;
}

/* The threshold counts distinct keys of the role; changed bytes fail. */
static void envelope_threshold_and_tampering(void **state)
{
    struct keys *k = *state;
    EVP_PKEY *both[2] = {k->root1, k->root2}, *twice[2] = {k->root1, k->root1};
    rp_md_role_t r;
    json_t *two = role(both, 2, 2), *payload;
    char *env;

    assert_int_equal(rp_md_role_parse(two, &r), RP_OK);
    json_decref(two);
    env = sign(json_pack("{s:i}", "x", 1), both, 2);
    assert_int_equal(rp_md_open(env, strlen(env), &r, &payload), RP_OK);
    assert_int_equal(json_integer_value(json_object_get(payload, "x")), 1);
    json_decref(payload);
    free(env);
    env = sign(json_pack("{s:i}", "x", 1), twice, 2); /* one key twice is one signature */
    assert_int_equal(rp_md_open(env, strlen(env), &r, &payload), RP_ERR_BAD_SIGNATURE);
    free(env);
    env = sign(json_pack("{s:i}", "x", 1), &k->rogue, 1);
    assert_int_equal(rp_md_open(env, strlen(env), &r, &payload), RP_ERR_BAD_SIGNATURE);
    free(env);
    /* every byte of the signed payload matters */
    env = sign(json_pack("{s:i}", "x", 1), both, 2);
    {
        char *p = strstr(env, "\"signed\": \"");
        assert_non_null(p);
        p += strlen("\"signed\": \"");
        for (size_t i = 0; p[i] != '"'; i++) {
            char saved = p[i];
            p[i] = p[i] == 'A' ? 'B' : 'A';
            assert_int_not_equal(rp_md_open(env, strlen(env), &r, &payload), RP_OK);
            p[i] = saved;
        }
    }
    assert_int_equal(rp_md_open(env, strlen(env), &r, &payload), RP_OK);
    json_decref(payload);
    free(env);
    assert_int_equal(rp_md_open("{", 1, &r, &payload), RP_ERR_MALFORMED);
    assert_int_equal(rp_md_open("{\"signed\": 1}", 13, &r, &payload), RP_ERR_MALFORMED);
    /* a role that lists one key twice is refused: one signature would count twice */
    two = role(twice, 2, 2);
    assert_int_equal(rp_md_role_parse(two, &r), RP_ERR_MALFORMED);
    json_decref(two);
}

/* The binary form the monitor takes (rp_md_signed_decode) and the signature rule's one owner
 * (rp_md_verify): every bound holds, each refusal says why, a key signing twice is refused
 * outright, and signatures are checked before a byte of the payload is parsed. */
static void binary_form_and_verify(void **state)
{
    struct keys *k = *state;
    EVP_PKEY *both[2] = {k->root1, k->root2}, *twice[2] = {k->root1, k->root1};
    static rp_md_signed_t s, back;
    rp_md_role_t r, lax;
    json_t *two = role(both, 2, 2), *one_of_two = role(both, 2, 1), *payload;
    char *env = sign(json_pack("{s:i}", "x", 1), both, 2), *again = NULL, detail[256];
    uint8_t *bin = NULL, *bin2 = NULL, *buf;
    size_t n, n2, head;

    assert_int_equal(rp_md_role_parse(two, &r), RP_OK);
    assert_int_equal(rp_md_role_parse(one_of_two, &lax), RP_OK);
    json_decref(two);
    json_decref(one_of_two);
    /* JSON -> binary -> back: the same signatures over the same bytes, and the same JSON text
     * (a device's kept files read as they did before) */
    assert_int_equal(rp_md_unpack(env, strlen(env), &s, detail, sizeof(detail)), RP_OK);
    assert_int_equal(s.nsigs, 2);
    assert_int_equal(rp_md_pack(&s, &again), RP_OK);
    assert_string_equal(again, env);
    free(again);
    assert_int_equal(rp_md_signed_encode(&s, &bin, &n), RP_OK);
    assert_int_equal(rp_md_signed_decode(bin, n, &back, detail, sizeof(detail)), RP_OK);
    assert_int_equal(rp_md_verify(&back, &r, detail, sizeof(detail)), RP_OK);
    assert_int_equal(rp_md_signed_encode(&back, &bin2, &n2), RP_OK);
    assert_int_equal(n2, n);
    assert_memory_equal(bin2, bin, n);
    free(bin2);
    rp_md_signed_free(&back);
    /* truncated anywhere: refused */
    for (size_t cut = 0; cut < n; cut++)
        assert_int_not_equal(rp_md_signed_decode(bin, cut, &back, detail, sizeof(detail)), RP_OK);
    assert_int_equal(rp_md_signed_decode(bin, n - 1, &back, detail, sizeof(detail)),
                     RP_ERR_TRUNCATED);
    assert_non_null(strstr(detail, "ends in signature 2"));
    assert_null(back.payload); /* nothing is kept on refusal */
    /* a byte left over; another magic (a JSON envelope) */
    buf = malloc(n + 1);
    assert_non_null(buf);
    memcpy(buf, bin, n);
    buf[n] = 0;
    assert_int_equal(rp_md_signed_decode(buf, n + 1, &back, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    assert_int_equal(
        rp_md_signed_decode((const uint8_t *)env, strlen(env), &back, detail, sizeof(detail)),
        RP_ERR_BAD_MAGIC);
    assert_non_null(strstr(detail, "not a signed document in its binary form"));
    /* a payload past RP_MD_MAX, or empty: its length field alone is refused */
    head = 10 + s.len; /* where the count of signatures is */
    memcpy(buf, bin, n);
    buf[6] = (uint8_t)((RP_MD_MAX + 1) >> 24), buf[7] = (uint8_t)((RP_MD_MAX + 1) >> 16);
    buf[8] = (uint8_t)((RP_MD_MAX + 1) >> 8), buf[9] = (uint8_t)(RP_MD_MAX + 1);
    assert_int_equal(rp_md_signed_decode(buf, n, &back, detail, sizeof(detail)), RP_ERR_TOO_LARGE);
    buf[6] = buf[7] = buf[8] = buf[9] = 0;
    assert_int_equal(rp_md_signed_decode(buf, n, &back, detail, sizeof(detail)), RP_ERR_MALFORMED);
    /* more signatures than RP_MD_SIGS_MAX */
    memcpy(buf, bin, n);
    buf[head] = RP_MD_SIGS_MAX + 1;
    assert_int_equal(rp_md_signed_decode(buf, n, &back, detail, sizeof(detail)), RP_ERR_TOO_LARGE);
    assert_non_null(strstr(detail, "17 signatures (at most 16)"));
    /* a signature longer than RP_MD_SIG_MAX, or empty */
    memcpy(buf, bin, n);
    buf[head + 1 + RP_SHA256_LEN] = 0, buf[head + 1 + RP_SHA256_LEN + 1] = RP_MD_SIG_MAX + 1;
    assert_int_equal(rp_md_signed_decode(buf, n, &back, detail, sizeof(detail)), RP_ERR_TOO_LARGE);
    buf[head + 1 + RP_SHA256_LEN + 1] = 0;
    assert_int_equal(rp_md_signed_decode(buf, n, &back, detail, sizeof(detail)), RP_ERR_MALFORMED);
    free(buf);
    free(bin);
    /* a signature over other bytes */
    s.payload[0] ^= 1;
    assert_int_equal(rp_md_verify(&s, &r, detail, sizeof(detail)), RP_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(detail, "0 of the 2 signatures needed verify"));
    s.payload[0] ^= 1;
    /* more than RP_MD_SIGS_MAX signatures, made by hand, are refused by verify too */
    s.nsigs = RP_MD_SIGS_MAX + 1;
    assert_int_equal(rp_md_verify(&s, &r, detail, sizeof(detail)), RP_ERR_BAD_SIGNATURE);
    s.nsigs = 2;
    /* the same key twice: refused outright, even where one of its signatures would do */
    s.sigs[1] = s.sigs[0];
    assert_int_equal(rp_md_verify(&s, &lax, detail, sizeof(detail)), RP_ERR_BAD_SIGNATURE);
    assert_non_null(strstr(detail, "signs twice"));
    rp_md_signed_free(&s);
    free(env);
    env = sign(json_pack("{s:i}", "x", 1), twice, 2);
    assert_int_equal(rp_md_open(env, strlen(env), &lax, &payload), RP_ERR_BAD_SIGNATURE);
    free(env);
    /* signatures before the payload: bytes that are no JSON, signed by a key the role does not
     * list, are a bad signature, not a malformed payload (the parser never saw them) */
    {
        rp_md_role_t online = one_key(k->online);
        rp_md_root_t v1 = root_struct("t_1", 1, k->root1, k->online, k->image);
        rp_md_targets_trust_t tt = {&v1, DEVICE, 0, NOW, false};
        rp_md_root_trust_t rt = {&v1, NULL, NOW, false};
        rp_md_targets_t got_t;
        rp_md_root_t got_r;
        assert_int_equal(rp_md_sign("not json", 8, &k->rogue, 1, &env), RP_OK);
        assert_int_equal(
            rp_md_targets_accept(env, strlen(env), &tt, &got_t, detail, sizeof(detail)),
            RP_ERR_BAD_SIGNATURE);
        assert_int_equal(rp_md_root_accept(env, strlen(env), &rt, &got_r, detail, sizeof(detail)),
                         RP_ERR_BAD_SIGNATURE);
        assert_non_null(strstr(detail, "not signed by the keys of version 1"));
        free(env);
        assert_int_equal(rp_md_sign("not json", 8, &k->online, 1, &env), RP_OK);
        assert_int_equal(
            rp_md_targets_accept(env, strlen(env), &tt, &got_t, detail, sizeof(detail)),
            RP_ERR_MALFORMED);
        assert_int_equal(rp_md_open(env, strlen(env), &online, &payload), RP_ERR_MALFORMED);
        free(env);
    }
    /* a JSON envelope with more than RP_MD_SIGS_MAX signatures is not unpacked */
    {
        EVP_PKEY *many[RP_MD_SIGS_MAX + 1];
        for (size_t i = 0; i < RP_MD_SIGS_MAX + 1; i++)
            many[i] = k->rogue;
        assert_int_equal(rp_md_sign("{}", 2, many, RP_MD_SIGS_MAX + 1, &env), RP_ERR_INVALID_ARG);
        env = sign(json_pack("{s:i}", "x", 1), many, RP_MD_SIGS_MAX);
        {
            json_t *j = json_loads(env, 0, NULL), *sigs = json_object_get(j, "signatures");
            json_array_append(sigs, json_array_get(sigs, 0));
            free(env);
            env = json_dumps(j, 0);
            json_decref(j);
        }
        assert_int_equal(rp_md_unpack(env, strlen(env), &s, detail, sizeof(detail)),
                         RP_ERR_MALFORMED);
        free(env);
    }
}

/* A parser that goes through the binary form, as the monitor's confined child does: Jansson's
 * answer encoded, then decoded. */
static rp_err_t via_binary(void *ctx, rp_md_kind_t kind, const uint8_t *payload, size_t len,
                           void *out, uint8_t *bin, size_t *bin_len, char *detail, size_t cap)
{
    static uint8_t mine[RP_MD_DOC_BIN_MAX];
    static union {
        rp_md_root_t r;
        rp_md_targets_t t;
        rp_md_capability_t c;
    } doc;
    size_t n;
    rp_err_t err = rp_md_parse(ctx, kind, payload, len, &doc, mine, &n, detail, cap);

    if (err == RP_OK && bin != NULL) {
        memcpy(bin, mine, n);
        *bin_len = n;
    }
    return err == RP_OK ? rp_md_doc_decode(kind, mine, n, out, detail, cap) : err;
}

/* One document's binary form: back as it was; refused when cut anywhere, with a byte left over,
 * as another kind, or with a field the rules refuse. */
static void doc_round_trip(rp_md_kind_t kind, const void *doc, size_t size, size_t field_at)
{
    static uint8_t bin[RP_MD_DOC_BIN_MAX + 1], back[sizeof(rp_md_targets_t) + sizeof(rp_md_root_t)];
    char detail[256];
    size_t n;

    assert_int_equal(rp_md_doc_encode(kind, doc, bin, RP_MD_DOC_BIN_MAX, &n), RP_OK);
    assert_int_equal(rp_md_doc_decode(kind, bin, n, back, detail, sizeof(detail)), RP_OK);
    assert_memory_equal(back, doc, size);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_not_equal(rp_md_doc_decode(kind, bin, cut, back, detail, sizeof(detail)), RP_OK);
    bin[n] = 0;
    assert_int_equal(rp_md_doc_decode(kind, bin, n + 1, back, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    assert_int_equal(rp_md_doc_decode(kind == RP_MD_ROOT ? RP_MD_TARGETS : RP_MD_ROOT, bin, n, back,
                                      detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    assert_int_equal(rp_md_doc_decode(kind, bin + 1, n - 1, back, detail, sizeof(detail)),
                     RP_ERR_BAD_MAGIC);
    bin[field_at] = '!'; /* the first string's first byte: no tenant has one */
    assert_int_equal(rp_md_doc_decode(kind, bin, n, back, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    for (size_t i = 0; i < size; i++)
        assert_int_equal(back[i], 0); /* nothing is released on refusal */
    bin[field_at] = 0;                /* a NUL inside a string */
    assert_int_equal(rp_md_doc_decode(kind, bin, n, back, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    assert_non_null(strstr(detail, "out of its bounds"));
}

static void documents_binary_form(void **state)
{
    struct keys *k = *state;
    EVP_PKEY *both[2] = {k->root1, k->root2};
    rp_md_root_t v1 = root_struct("t_1", 1, k->root1, k->online, k->image), v2, got, kept;
    rp_md_root_trust_t rt = {&v1, NULL, NOW, false};
    rp_md_targets_t t = targets_struct(), got_t;
    rp_md_targets_trust_t tt = {&v1, DEVICE, 0, NOW, false};
    rp_md_capability_t c = {"t_1", DEVICE, RP_MD_CAP_DEVELOPMENT, NOW - 10, NOW + 3600}, got_c;
    rp_md_capability_trust_t ct = {&v1, DEVICE, NOW};
    static rp_md_signed_t s, back;
    static uint8_t junk[16], kept_bin[RP_MD_DOC_BIN_MAX];
    size_t kept_n = 0;
    char detail[256], *env;
    uint8_t *kb = NULL;
    size_t kn;

    doc_round_trip(RP_MD_ROOT, &v1, sizeof(v1), 8);
    doc_round_trip(RP_MD_TARGETS, &t, sizeof(t), 8);
    doc_round_trip(RP_MD_CAPABILITY, &c, sizeof(c), 8);
    /* what the rules refuse is never encoded */
    v2 = v1;
    v2.online.threshold = 2;
    assert_int_equal(rp_md_doc_encode(RP_MD_ROOT, &v2, junk, sizeof(junk), &kn),
                     RP_ERR_INVALID_ARG);
    assert_int_equal(rp_md_doc_encode(RP_MD_ROOT, &v1, junk, sizeof(junk), &kn), RP_ERR_TOO_LARGE);
    /* accepting through the binary form (the monitor's child) takes what Jansson takes */
    v2 = root_struct("t_1", 2, k->root2, k->online, k->image);
    env = root_env(&v2, both, 2);
    assert_int_equal(rp_md_unpack(env, strlen(env), &s, detail, sizeof(detail)), RP_OK);
    free(env);
    assert_int_equal(rp_md_root_accept_with(&s, &rt, via_binary, NULL, &got, kept_bin, &kept_n,
                                            detail, sizeof(detail)),
                     RP_OK);
    assert_same_root(&got, &v2);
    /* kept: the signed form and the document; checked again by the kept root's own keys */
    assert_int_equal(rp_md_kept_encode(kept_bin, kept_n, &s, &kb, &kn), RP_OK);
    assert_int_equal(rp_md_kept_decode(RP_MD_ROOT, kb, kn, &back, &kept, detail, sizeof(detail)),
                     RP_OK);
    rt.current = NULL;
    rt.expired_ok = true;
    assert_int_equal(rp_md_root_accept_with(&back, &rt, rp_md_kept_parse, &kept, &got, NULL, NULL,
                                            detail, sizeof(detail)),
                     RP_OK);
    assert_same_root(&got, &v2);
    rp_md_signed_free(&back);
    for (size_t cut = 0; cut < kn; cut++)
        assert_int_not_equal(
            rp_md_kept_decode(RP_MD_ROOT, kb, cut, &back, &kept, detail, sizeof(detail)), RP_OK);
    assert_int_equal(
        rp_md_kept_decode(RP_MD_TARGETS, kb, kn, &back, &got_t, detail, sizeof(detail)),
        RP_ERR_MALFORMED);
    free(kb);
    /* a kept document that names keys that did not sign it: refused */
    v2 = root_struct("t_1", 2, k->rogue, k->online, k->image);
    assert_int_equal(rp_md_doc_encode(RP_MD_ROOT, &v2, kept_bin, sizeof(kept_bin), &kept_n), RP_OK);
    assert_int_equal(rp_md_kept_encode(kept_bin, kept_n, &s, &kb, &kn), RP_OK);
    assert_int_equal(rp_md_kept_decode(RP_MD_ROOT, kb, kn, &back, &kept, detail, sizeof(detail)),
                     RP_OK);
    assert_int_equal(rp_md_root_accept_with(&back, &rt, rp_md_kept_parse, &kept, &got, NULL, NULL,
                                            detail, sizeof(detail)),
                     RP_ERR_BAD_SIGNATURE);
    rp_md_signed_free(&back);
    rp_md_signed_free(&s);
    free(kb);
    /* targets and a capability through the binary form */
    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)), RP_OK);
    assert_int_equal(rp_md_unpack(env, strlen(env), &s, detail, sizeof(detail)), RP_OK);
    free(env);
    assert_int_equal(rp_md_targets_accept_with(&s, &tt, via_binary, NULL, &got_t, NULL, NULL,
                                               detail, sizeof(detail)),
                     RP_OK);
    assert_same_targets(&got_t, &t);
    rp_md_signed_free(&s);
    assert_int_equal(rp_md_capability_sign(&c, k->online, &env, detail, sizeof(detail)), RP_OK);
    assert_int_equal(rp_md_unpack(env, strlen(env), &s, detail, sizeof(detail)), RP_OK);
    free(env);
    assert_int_equal(rp_md_capability_accept_with(&s, &ct, via_binary, NULL, &got_c, NULL, NULL,
                                                  detail, sizeof(detail)),
                     RP_OK);
    assert_memory_equal(&got_c, &c, sizeof(c));
    ct.device = DEVICE "0";
    assert_int_equal(rp_md_capability_accept_with(&s, &ct, via_binary, NULL, &got_c, NULL, NULL,
                                                  detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    rp_md_signed_free(&s);
}

static void root_rotation(void **state)
{
    struct keys *k = *state;
    EVP_PKEY *both[2] = {k->root1, k->root2};
    rp_md_root_t v1 = root_struct("t_1", 1, k->root1, k->online, k->image), got, next;
    rp_md_root_trust_t trust = {&v1, NULL, NOW, false};
    char detail[256], *env;

    /* v2 with a new root key: signed by the old and the new */
    next = root_struct("t_1", 2, k->root2, k->online, k->image);
    env = root_env(&next, both, 2);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_OK);
    assert_same_root(&got, &next); /* what was built is what is accepted */
    free(env);
    /* only by the new key (the service, or whoever stole it, cannot rotate alone) */
    env = root_env(&next, &k->root2, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_BAD_SIGNATURE);
    assert_int_equal(got.version, 0); /* nothing is released on refusal */
    free(env);
    /* only by the old key, naming a new one that did not sign */
    env = root_env(&next, &k->root1, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_BAD_SIGNATURE);
    free(env);
    /* a skipped version, an old version, another tenant's */
    next = root_struct("t_1", 3, k->root1, k->online, k->image);
    env = root_env(&next, &k->root1, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_ROLLBACK);
    free(env);
    env = root_env(&v1, &k->root1, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_ROLLBACK);
    free(env);
    next = root_struct("t_2", 2, k->root1, k->online, k->image);
    env = root_env(&next, &k->root1, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_ROLLBACK);
    free(env);
    /* an online role needing two signatures would freeze every device: targets carry one. It is
     * never built, and refused when someone else builds it. */
    {
        EVP_PKEY *two[2] = {k->online, k->rogue};
        json_t *p = root_payload("t_1", 2, k->root1, k->online, k->image);
        next = root_struct("t_1", 2, k->root1, k->online, k->image);
        next.online.nkeys = 2;
        next.online.threshold = 2;
        assert_int_equal(
            rp_key_spki(k->rogue, next.online.spki[1], RP_PUBKEY_DER_MAX, &next.online.spki_len[1]),
            RP_OK);
        assert_int_equal(rp_md_root_sign(&next, &k->root1, 1, &env, detail, sizeof(detail)),
                         RP_ERR_INVALID_ARG);
        assert_null(env);
        json_object_set_new(json_object_get(p, "roles"), "online", role(two, 2, 2));
        env = sign(p, &k->root1, 1);
        assert_int_equal(rp_md_root_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                         RP_ERR_MALFORMED);
        assert_non_null(strstr(detail, "threshold"));
        free(env);
    }
}

/* A first root, the tenant it must be for, expiry, and what is not a root at all. */
static void root_rules(void **state)
{
    struct keys *k = *state;
    rp_md_root_t v1 = root_struct("t_1", 1, k->root1, k->online, k->image), got;
    rp_md_root_trust_t first = {NULL, NULL, NOW, false};
    char detail[256], *env, *big;
    json_t *p;

    /* A first root needs only its own keys... */
    env = root_env(&v1, &k->root1, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &first, &got, detail, sizeof(detail)),
                     RP_OK);
    assert_same_root(&got, &v1);
    /* ...for the tenant asked for... */
    first.tenant = "t_2";
    assert_int_equal(rp_md_root_accept(env, strlen(env), &first, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    first.tenant = "t_1";
    /* ...not expired (freeze), unless a newer one follows or it is what was kept */
    first.now = v1.expires;
    assert_int_equal(rp_md_root_accept(env, strlen(env), &first, &got, detail, sizeof(detail)),
                     RP_ERR_EXPIRED);
    first.expired_ok = true;
    assert_int_equal(rp_md_root_accept(env, strlen(env), &first, &got, detail, sizeof(detail)),
                     RP_OK);
    free(env);
    /* but they must be its own */
    env = root_env(&v1, &k->rogue, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &first, &got, detail, sizeof(detail)),
                     RP_ERR_BAD_SIGNATURE);
    free(env);
    /* not a root: another type, version 0, no roles, a role without keys, a tenant that is no ID */
    p = root_payload("t_1", 1, k->root1, k->online, k->image);
    json_object_set_new(p, "type", json_string("rampart-targets"));
    env = sign(p, &k->root1, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &first, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    free(env);
    p = root_payload("t_1", 0, k->root1, k->online, k->image);
    env = sign(p, &k->root1, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &first, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    free(env);
    p = root_payload("t_1", 1, k->root1, k->online, k->image);
    json_object_del(json_object_get(p, "roles"), "images");
    env = sign(p, &k->root1, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &first, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    free(env);
    p = root_payload("t_1", 1, k->root1, k->online, k->image);
    json_object_set_new(json_object_get(p, "roles"), "images",
                        json_pack("{s:i, s:[]}", "threshold", 1, "keys"));
    env = sign(p, &k->root1, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &first, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    free(env);
    p = root_payload("t/../1", 1, k->root1, k->online, k->image);
    env = sign(p, &k->root1, 1);
    assert_int_equal(rp_md_root_accept(env, strlen(env), &first, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    free(env);
    strcpy(v1.tenant, "t/../1");
    assert_int_equal(rp_md_root_sign(&v1, &k->root1, 1, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    /* an envelope past the bound is not read */
    big = calloc(1, RP_MD_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', RP_MD_MAX + 1);
    assert_int_equal(rp_md_root_accept(big, RP_MD_MAX + 1, &first, &got, detail, sizeof(detail)),
                     RP_ERR_TOO_LARGE);
    free(big);
    assert_int_equal(rp_md_root_accept("{", 1, &first, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
}

static void targets_rules(void **state)
{
    struct keys *k = *state;
    rp_md_root_t root = root_struct("t_1", 1, k->root1, k->online, k->image);
    rp_md_targets_trust_t trust = {&root, DEVICE, 5, NOW, false};
    rp_md_targets_t got, t = targets_struct();
    char detail[256], *env;
    json_t *p;

    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)), RP_OK);
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_OK); /* the same version again: a refreshed expiry */
    assert_same_targets(&got, &t);
    trust.min_version = 6;
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_ROLLBACK);
    assert_non_null(strstr(detail, "rollback"));
    assert_int_equal(got.ntargets, 0); /* nothing is released on refusal */
    trust.min_version = 0;
    trust.now = NOW + 60;
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_EXPIRED);
    assert_non_null(strstr(detail, "freeze"));
    trust.expired_ok = true; /* what the device kept still counts for its version */
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_OK);
    trust.expired_ok = false;
    trust.now = NOW;
    trust.device = DEVICE "0";
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED); /* another device's */
    trust.device = DEVICE;
    free(env);
    /* signed by another key than the root's online key (a root key is not an online key) */
    assert_int_equal(rp_md_targets_sign(&t, k->root1, &env, detail, sizeof(detail)), RP_OK);
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_BAD_SIGNATURE);
    free(env);
    strcpy(t.tenant, "t_2");
    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)), RP_OK);
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED); /* another tenant's */
    free(env);
    p = targets_payload("t_1", DEVICE, 5, NOW + 60);
    json_object_del(json_array_get(json_object_get(p, "targets"), 0), "size");
    env = sign(p, &k->online, 1);
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    free(env);
}

/* Capabilities: one device's, signed by the online key, for a while; every rule refused alone. */
static void capability_rules(void **state)
{
    struct keys *k = *state;
    rp_md_root_t root = root_struct("t_1", 1, k->root1, k->online, k->image);
    rp_md_capability_trust_t trust = {&root, DEVICE, NOW};
    rp_md_capability_t got, c = {"t_1", DEVICE, RP_MD_CAP_DEVELOPMENT, NOW - 10, NOW + 3600};
    char detail[256], *env;
    json_t *p;

    assert_int_equal(rp_md_capability_sign(&c, k->online, &env, detail, sizeof(detail)), RP_OK);
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)), RP_OK);
    assert_memory_equal(&got, &c, sizeof(c));
    trust.device = DEVICE "0";
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
        RP_ERR_MALFORMED);
    assert_non_null(strstr(detail, "another device"));
    assert_int_equal(got.kind, 0); /* nothing is released on refusal */
    trust.device = DEVICE;
    trust.now = NOW + 3600;
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
        RP_ERR_EXPIRED);
    trust.now = NOW - 10 - 301; /* issued further in the future than clocks disagree */
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
        RP_ERR_EXPIRED);
    trust.now = NOW;
    free(env);
    /* signed by a key the root does not name as its online key */
    assert_int_equal(rp_md_capability_sign(&c, k->image, &env, detail, sizeof(detail)), RP_OK);
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
        RP_ERR_BAD_SIGNATURE);
    free(env);
    /* another tenant's */
    strcpy(c.tenant, "t_2");
    assert_int_equal(rp_md_capability_sign(&c, k->online, &env, detail, sizeof(detail)), RP_OK);
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
        RP_ERR_MALFORMED);
    free(env);
    strcpy(c.tenant, "t_1");
    /* never built: longer than the longest lifetime, expiring before issue, an unknown kind */
    c.expires = c.issued + RP_MD_CAPABILITY_LIFETIME_MAX + 1;
    assert_int_equal(rp_md_capability_sign(&c, k->online, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    c.expires = c.issued;
    assert_int_equal(rp_md_capability_sign(&c, k->online, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    c.expires = NOW + 3600;
    c.kind = (rp_md_capability_kind_t)7;
    assert_int_equal(rp_md_capability_sign(&c, k->online, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    /* ...nor accepted when signed anyway: too long, an unknown kind, an extra or a missing key,
     * targets passed off as a capability */
    p = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "type", "rampart-capability", "tenant", "t_1",
                  "device", DEVICE, "kind", "development", "issued", (json_int_t)NOW - 10,
                  "expires", (json_int_t)NOW + RP_MD_CAPABILITY_LIFETIME_MAX);
    env = sign(p, &k->online, 1);
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
        RP_ERR_MALFORMED);
    free(env);
    p = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "type", "rampart-capability", "tenant", "t_1",
                  "device", DEVICE, "kind", "root", "issued", (json_int_t)NOW - 10, "expires",
                  (json_int_t)NOW + 60);
    env = sign(p, &k->online, 1);
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
        RP_ERR_MALFORMED);
    assert_non_null(strstr(detail, "not one Rampart knows"));
    free(env);
    p = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b}", "type", "rampart-capability", "tenant",
                  "t_1", "device", DEVICE, "kind", "development", "issued", (json_int_t)NOW - 10,
                  "expires", (json_int_t)NOW + 60, "everything", 1);
    env = sign(p, &k->online, 1);
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
        RP_ERR_MALFORMED);
    free(env);
    p = json_pack("{s:s, s:s, s:s, s:I, s:I}", "type", "rampart-capability", "tenant", "t_1",
                  "device", DEVICE, "issued", (json_int_t)NOW - 10, "expires",
                  (json_int_t)NOW + 60);
    env = sign(p, &k->online, 1);
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
        RP_ERR_MALFORMED);
    free(env);
    env = sign(targets_payload("t_1", DEVICE, 5, NOW + 60), &k->online, 1);
    assert_int_equal(
        rp_md_capability_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
        RP_ERR_MALFORMED);
    free(env);
}

/* One edit of a target's JSON, which must be refused. */
static void refused_edit(struct keys *k, const char *key, json_t *value)
{
    rp_md_root_t root = root_struct("t_1", 1, k->root1, k->online, k->image);
    rp_md_targets_trust_t trust = {&root, DEVICE, 0, NOW, false};
    json_t *p = targets_payload("t_1", DEVICE, 5, NOW + 60);
    rp_md_targets_t got;
    char detail[256], *env;

    if (value != NULL)
        json_object_set_new(json_array_get(json_object_get(p, "targets"), 0), key, value);
    else
        json_object_del(json_array_get(json_object_get(p, "targets"), 0), key);
    env = sign(p, &k->online, 1);
    if (rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)) !=
        RP_ERR_MALFORMED)
        fail_msg("target with %s edited was not refused", key);
    free(env);
}

/* Every field of a target within its bounds; none for a security counter; one per component. */
static void targets_fields(void **state)
{
    struct keys *k = *state;
    rp_md_root_t root = root_struct("t_1", 1, k->root1, k->online, k->image);
    rp_md_targets_trust_t trust = {&root, DEVICE, 0, NOW, false};
    rp_md_targets_t got, t = targets_struct();
    char detail[256], *env;
    json_t *p;

    /* No security counter is "none" (JSON null), not 0; a delta comes back as it went. */
    t.targets[0].has_security_counter = false;
    t.targets[0].security_counter = 0;
    t.ntargets = 2;
    t.targets[1] = t.targets[0];
    strcpy(t.targets[1].component, "system");
    t.targets[1].has_security_counter = true;
    t.targets[1].security_counter = UINT32_MAX;
    t.targets[1].size = RP_MD_IMAGE_SIZE_MAX;
    t.targets[1].has_delta = true;
    strcpy(t.targets[1].delta.from, IMAGE_HASH);
    strcpy(t.targets[1].delta.sha256, IMAGE_ID);
    t.targets[1].delta.size = 3;
    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)), RP_OK);
    assert_non_null(env);
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_OK);
    assert_same_targets(&got, &t);
    assert_false(got.targets[0].has_security_counter);
    free(env);
    /* What would be refused is never built: two targets for one component, a bad name, size 0,
     * an image ID that is no SHA-256, more targets than the bound. */
    strcpy(t.targets[1].component, "app");
    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    assert_non_null(strstr(detail, "two targets"));
    t = targets_struct();
    strcpy(t.targets[0].component, ".app");
    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    t = targets_struct();
    t.targets[0].size = 0;
    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    t = targets_struct();
    t.targets[0].image[3] = 'A';
    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    t = targets_struct();
    memset(t.targets[0].component, 'a', sizeof(t.targets[0].component)); /* no NUL */
    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    t = targets_struct();
    memset(t.tenant, 'a', sizeof(t.tenant));
    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    t = targets_struct();
    t.ntargets = RP_MD_TARGETS_MAX + 1;
    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)),
                     RP_ERR_INVALID_ARG);
    assert_null(env);
    /* ...and refused when someone else builds it. */
    refused_edit(k, "security_counter", NULL); /* missing is not none */
    refused_edit(k, "security_counter", json_integer(-1));
    refused_edit(k, "security_counter", json_integer((json_int_t)UINT32_MAX + 1));
    refused_edit(k, "security_counter", json_string("1"));
    refused_edit(k, "component", json_string(".app"));
    refused_edit(k, "component", json_string("a/b"));
    refused_edit(k, "component", json_string("abcdefghijklmnopqrstuvwxyz0123456"));
    refused_edit(k, "image", json_string("00"));
    refused_edit(k, "image_hash", json_string(IMAGE_HASH "0"));
    refused_edit(k, "size", json_integer(0));
    refused_edit(k, "size", json_integer((json_int_t)RP_MD_IMAGE_SIZE_MAX + 1));
    refused_edit(k, "version", json_string("1.x"));
    refused_edit(k, "version", json_integer(1));
    refused_edit(k, "delta", json_string("x"));
    refused_edit(k, "delta",
                 json_pack("{s:s, s:s, s:i}", "from", "00", "image", IMAGE_ID, "size", 3));
    refused_edit(k, "delta",
                 json_pack("{s:s, s:s, s:i}", "from", IMAGE_ID, "image", IMAGE_ID, "size", 0));
    /* two targets for one component; more than the bound; a deployment or device of the wrong
     * shape */
    p = targets_payload("t_1", DEVICE, 5, NOW + 60);
    json_array_append(json_object_get(p, "targets"),
                      json_array_get(json_object_get(p, "targets"), 0));
    env = sign(p, &k->online, 1);
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    free(env);
    p = targets_payload("t_1", DEVICE, 5, NOW + 60);
    for (int i = 1; i <= RP_MD_TARGETS_MAX; i++) {
        json_t *c = json_deep_copy(json_array_get(json_object_get(p, "targets"), 0));
        json_object_set_new(c, "component", json_sprintf("app%d", i));
        json_array_append_new(json_object_get(p, "targets"), c);
    }
    env = sign(p, &k->online, 1);
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    free(env);
    p = targets_payload("t_1", DEVICE, 5, NOW + 60);
    json_object_set_new(p, "deployment", json_string("d 1"));
    env = sign(p, &k->online, 1);
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    free(env);
    p = targets_payload("t_1", DEVICE, -1, NOW + 60);
    env = sign(p, &k->online, 1);
    assert_int_equal(rp_md_targets_accept(env, strlen(env), &trust, &got, detail, sizeof(detail)),
                     RP_ERR_MALFORMED);
    free(env);
}

/* The bytes on the wire are pinned: devices in the field read them. */
static void targets_wire_format(void **state)
{
    struct keys *k = *state;
    rp_md_targets_t t = targets_struct();
    char detail[256], *env;
    uint8_t *payload;
    size_t len;
    json_t *e;
    const char *b64;
    static const char want[] =
        "{\"deployment\":\"d_1\",\"device\":\"" DEVICE "\",\"expires\":1800000060,\"targets\":["
        "{\"component\":\"app\",\"image\":\"" IMAGE_ID "\",\"image_hash\":\"" IMAGE_HASH "\","
        "\"security_counter\":1,\"size\":10,\"version\":\"1.0.0+0\"}],\"tenant\":\"t_1\","
        "\"type\":\"rampart-targets\",\"version\":5}";

    assert_int_equal(rp_md_targets_sign(&t, k->online, &env, detail, sizeof(detail)), RP_OK);
    e = json_loads(env, 0, NULL);
    b64 = json_string_value(json_object_get(e, "signed"));
    assert_non_null(b64);
    assert_int_equal(rp_base64_decode(b64, strlen(b64), &payload, &len), RP_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(payload, want, len);
    free(payload);
    json_decref(e);
    free(env);
}

static void write_bytes(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A delta rebuilds the target from the base, exactly; with another base, a bound too small, or
 * bytes that are not a delta, it fails (and the caller fetches the whole image). */
static void delta_round_trip(void **state)
{
    enum { N = 300000 };
    uint8_t *base = malloc(N), *target = malloc(N), *got = NULL;
    char dir[] = "/tmp/rampart-delta-XXXXXX", b[64], t[64], dl[64], out[64], other[64], cmd[128];
    size_t len;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < N; i++)
        base[i] = (uint8_t)(i * 2654435761u >> 13);
    memcpy(target, base, N);
    for (size_t i = 0; i < N; i += 10000)
        target[i] ^= 0x5a; /* 30 scattered changes */
    snprintf(b, sizeof(b), "%s/base", dir);
    snprintf(t, sizeof(t), "%s/target", dir);
    snprintf(dl, sizeof(dl), "%s/delta", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(other, sizeof(other), "%s/other", dir);
    write_bytes(b, base, N);
    write_bytes(t, target, N);
    assert_int_equal(rp_delta_make(b, t, dl), RP_OK);
    f = fopen(dl, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    assert_true(ftell(f) < N / 20); /* far smaller than the image */
    fclose(f);
    assert_int_equal(rp_delta_apply(b, dl, out, N), RP_OK);
    f = fopen(out, "rb");
    assert_non_null(f);
    got = malloc(N + 1);
    len = fread(got, 1, N + 1, f);
    fclose(f);
    assert_int_equal(len, N);
    assert_memory_equal(got, target, N);
    assert_int_equal(rp_delta_apply(b, dl, out, N - 1), RP_ERR_TOO_LARGE);
    memset(base, 7, N);
    write_bytes(other, base, N);
    assert_int_not_equal(rp_delta_apply(other, dl, out, N), RP_OK); /* another base */
    write_bytes(dl, (const uint8_t *)"not a zstd frame", 16);
    assert_int_equal(rp_delta_apply(b, dl, out, N), RP_ERR_MALFORMED);
    free(base);
    free(target);
    free(got);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(envelope_threshold_and_tampering),
        cmocka_unit_test(binary_form_and_verify),
        cmocka_unit_test(documents_binary_form),
        cmocka_unit_test(root_rotation),
        cmocka_unit_test(root_rules),
        cmocka_unit_test(targets_rules),
        cmocka_unit_test(capability_rules),
        cmocka_unit_test(targets_fields),
        cmocka_unit_test(targets_wire_format),
        cmocka_unit_test(delta_round_trip),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
