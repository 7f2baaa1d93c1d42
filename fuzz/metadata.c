/*
 * Fuzz target: signed update metadata as a device reads it from the network: the envelope
 * (rp_md_peek, rp_md_open), a new root (rp_update_accept_root) and targets
 * (rp_update_accept_targets) against a fixed root whose every role is one test key, so that seeds
 * signed with it (fuzz/corpus/metadata, made with RP_FUZZ_WRITE_SEEDS=DIR) reach past the
 * signature. Whatever is accepted must be what the rules say.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "rampart/key.h"
#include "rampart/metadata.h"
#include "update.h"

#define DEVICE "aa00000000000000000000000000000000000000000000000000000000000000"
#define NOW 1800000000

/* A test key, for fuzzing only: it signs nothing anywhere else. */
static const char test_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJnWIe95rSauUsuK4\n"
    "R1os6at26XtR0jUk0Nvi58EhTjahRANCAASM2BJar7TA0K8U48GzokSTPLXD1aZC\n"
    "YXYxJiGUMMUGapZWja8/uby0ibgneWrZkulv4EYlKw6NqSHoT37wm3m7\n"
    "-----END PRIVATE KEY-----\n";

static EVP_PKEY *key;
static json_t *root;

static json_t *key_role(void)
{
    uint8_t spki[RP_PUBKEY_DER_MAX];
    const uint8_t *p = spki;
    size_t len;

    if (rp_key_spki(key, spki, sizeof(spki), &len) != RP_OK)
        abort();
    return rp_md_role_json(&p, &len, 1, 1);
}

static json_t *root_payload(int version)
{
    return json_pack("{s:s, s:s, s:i, s:I, s:{s:o, s:o, s:o}}", "type", "rampart-root", "tenant",
                     "t_1", "version", version, "expires", (json_int_t)NOW + 86400, "roles", "root",
                     key_role(), "online", key_role(), "images", key_role());
}

static void write_seed(const char *dir, const char *name, json_t *payload)
{
    char path[4096], *text = json_dumps(payload, JSON_COMPACT), *env = NULL;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (text == NULL || rp_md_sign(text, strlen(text), &key, 1, &env) != RP_OK ||
        (f = fopen(path, "w")) == NULL)
        abort();
    fputs(env, f);
    fclose(f);
    free(text);
    free(env);
    json_decref(payload);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    BIO *bio = BIO_new_mem_buf(test_key_pem, -1);
    const char *seeds = getenv("RP_FUZZ_WRITE_SEEDS");

    (void)argc;
    (void)argv;
    key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    root = key != NULL ? root_payload(1) : NULL;
    if (root == NULL)
        abort();
    if (seeds != NULL) {
        write_seed(seeds, "root-v2.json", root_payload(2));
        write_seed(seeds, "targets.json",
                   json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:[{s:s, s:s, s:I, s:s, s:I, s:s}]}",
                             "type", "rampart-targets", "tenant", "t_1", "device", DEVICE,
                             "version", 3, "expires", (json_int_t)NOW + 60, "deployment", "d_1",
                             "targets", "component", "app", "image", "00", "size", (json_int_t)10,
                             "version", "1.0.0+0", "security_counter", (json_int_t)1, "image_hash",
                             "00"));
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *env = (const char *)data;
    json_t *p = NULL, *got = NULL;
    char detail[256];
    rp_md_role_t role;

    if (rp_md_peek(env, size, &p) == RP_OK && !json_is_object(p))
        abort();
    json_decref(p);
    if (rp_md_role_parse(json_object_get(json_object_get(root, "roles"), "online"), &role) != RP_OK)
        abort();
    if (rp_md_open(env, size, &role, &p) == RP_OK && !json_is_object(p))
        abort();
    json_decref(p);
    if (rp_update_accept_root(root, env, size, &got, detail, sizeof(detail)) == RP_OK &&
        json_integer_value(json_object_get(got, "version")) != 2)
        abort(); /* only the next version */
    json_decref(got);
    got = NULL;
    if (rp_update_accept_targets(root, DEVICE, 2, NOW, env, size, &got, detail, sizeof(detail)) ==
            RP_OK &&
        (json_integer_value(json_object_get(got, "version")) < 2 ||
         json_integer_value(json_object_get(got, "expires")) <= NOW))
        abort(); /* never older, never expired */
    json_decref(got);
    return 0;
}
