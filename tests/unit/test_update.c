/*
 * Signed update metadata and the device's rules for it: an envelope verifies only with the
 * threshold of its role's keys (each key counted once, any changed byte refused); a new root must
 * be signed by the old root's keys and its own and be the next version of the same tenant; the
 * targets must be signed by the root's online key, be this device's, not be older than what the
 * device has (rollback) and not be expired (freeze); a delta rebuilds exactly its target.
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
#include "update.h"

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

static json_t *root_payload(const char *tenant, int version, EVP_PKEY *root_key, EVP_PKEY *online,
                            EVP_PKEY *image)
{
    return json_pack("{s:s, s:s, s:i, s:I, s:{s:o, s:o, s:o}}", "type", "rampart-root", "tenant",
                     tenant, "version", version, "expires", (json_int_t)NOW + 86400, "roles",
                     "root", role(&root_key, 1, 1), "online", role(&online, 1, 1), "images",
                     role(&image, 1, 1));
}

static json_t *targets_payload(const char *tenant, const char *device, int version, int64_t expires)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:[{s:s, s:s, s:I, s:s, s:I, s:s}]}", "type",
                     "rampart-targets", "tenant", tenant, "device", device, "version", version,
                     "expires", (json_int_t)expires, "deployment", "d_1", "targets", "component",
                     "app", "image", "00", "size", (json_int_t)10, "version", "1.0.0+0",
                     "security_counter", (json_int_t)1, "image_hash", "00");
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

static void root_rotation(void **state)
{
    struct keys *k = *state;
    EVP_PKEY *both[2] = {k->root1, k->root2};
    json_t *v1 = root_payload("t_1", 1, k->root1, k->online, k->image), *got = NULL;
    char detail[256], *env;

    /* v2 with a new root key: signed by the old and the new */
    env = sign(root_payload("t_1", 2, k->root2, k->online, k->image), both, 2);
    assert_int_equal(rp_update_accept_root(v1, env, strlen(env), &got, detail, sizeof(detail)),
                     RP_OK);
    assert_int_equal(json_integer_value(json_object_get(got, "version")), 2);
    json_decref(got);
    free(env);
    /* only by the new key (the service, or whoever stole it, cannot rotate alone) */
    env = sign(root_payload("t_1", 2, k->root2, k->online, k->image), &k->root2, 1);
    assert_int_equal(rp_update_accept_root(v1, env, strlen(env), &got, detail, sizeof(detail)),
                     RP_ERR_BAD_SIGNATURE);
    assert_null(got);
    free(env);
    /* only by the old key, naming a new one that did not sign */
    env = sign(root_payload("t_1", 2, k->root2, k->online, k->image), &k->root1, 1);
    assert_int_equal(rp_update_accept_root(v1, env, strlen(env), &got, detail, sizeof(detail)),
                     RP_ERR_BAD_SIGNATURE);
    free(env);
    /* a skipped version, an old version, another tenant's */
    env = sign(root_payload("t_1", 3, k->root1, k->online, k->image), &k->root1, 1);
    assert_int_equal(rp_update_accept_root(v1, env, strlen(env), &got, detail, sizeof(detail)),
                     RP_ERR_ROLLBACK);
    free(env);
    env = sign(root_payload("t_1", 1, k->root1, k->online, k->image), &k->root1, 1);
    assert_int_equal(rp_update_accept_root(v1, env, strlen(env), &got, detail, sizeof(detail)),
                     RP_ERR_ROLLBACK);
    free(env);
    env = sign(root_payload("t_2", 2, k->root1, k->online, k->image), &k->root1, 1);
    assert_int_equal(rp_update_accept_root(v1, env, strlen(env), &got, detail, sizeof(detail)),
                     RP_ERR_ROLLBACK);
    free(env);
    /* an online role needing two signatures would freeze every device: targets carry one */
    {
        EVP_PKEY *two[2] = {k->online, k->rogue};
        json_t *p = root_payload("t_1", 2, k->root1, k->online, k->image);
        json_object_set_new(json_object_get(p, "roles"), "online", role(two, 2, 2));
        env = sign(p, &k->root1, 1);
        assert_int_equal(rp_update_accept_root(v1, env, strlen(env), &got, detail, sizeof(detail)),
                         RP_ERR_MALFORMED);
        free(env);
    }
    json_decref(v1);
}

static void targets_rules(void **state)
{
    struct keys *k = *state;
    json_t *root = root_payload("t_1", 1, k->root1, k->online, k->image), *got = NULL, *p;
    char detail[256], *env;

    env = sign(targets_payload("t_1", DEVICE, 5, NOW + 60), &k->online, 1);
    assert_int_equal(rp_update_accept_targets(root, DEVICE, 5, NOW, env, strlen(env), &got, detail,
                                              sizeof(detail)),
                     RP_OK); /* the same version again: a refreshed expiry */
    json_decref(got);
    assert_int_equal(rp_update_accept_targets(root, DEVICE, 6, NOW, env, strlen(env), &got, detail,
                                              sizeof(detail)),
                     RP_ERR_ROLLBACK);
    assert_non_null(strstr(detail, "rollback"));
    assert_int_equal(rp_update_accept_targets(root, DEVICE, 0, NOW + 60, env, strlen(env), &got,
                                              detail, sizeof(detail)),
                     RP_ERR_EXPIRED);
    assert_non_null(strstr(detail, "freeze"));
    assert_int_equal(rp_update_accept_targets(root, DEVICE "0", 0, NOW, env, strlen(env), &got,
                                              detail, sizeof(detail)),
                     RP_ERR_MALFORMED); /* another device's */
    free(env);
    /* signed by another key than the root's online key (a root key is not an online key) */
    env = sign(targets_payload("t_1", DEVICE, 5, NOW + 60), &k->root1, 1);
    assert_int_equal(rp_update_accept_targets(root, DEVICE, 0, NOW, env, strlen(env), &got, detail,
                                              sizeof(detail)),
                     RP_ERR_BAD_SIGNATURE);
    free(env);
    env = sign(targets_payload("t_2", DEVICE, 5, NOW + 60), &k->online, 1);
    assert_int_equal(rp_update_accept_targets(root, DEVICE, 0, NOW, env, strlen(env), &got, detail,
                                              sizeof(detail)),
                     RP_ERR_MALFORMED); /* another tenant's */
    free(env);
    p = targets_payload("t_1", DEVICE, 5, NOW + 60);
    json_object_del(json_array_get(json_object_get(p, "targets"), 0), "size");
    env = sign(p, &k->online, 1);
    assert_int_equal(rp_update_accept_targets(root, DEVICE, 0, NOW, env, strlen(env), &got, detail,
                                              sizeof(detail)),
                     RP_ERR_MALFORMED);
    assert_null(got);
    free(env);
    json_decref(root);
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
        cmocka_unit_test(root_rotation),
        cmocka_unit_test(targets_rules),
        cmocka_unit_test(delta_round_trip),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
