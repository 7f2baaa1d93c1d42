/*
 * Fuzz target: signed update metadata as the service and a device read it from the network: the
 * envelope (rp_md_open), a root (rp_md_root_accept, as the next version of a fixed root and as a
 * first root), targets (rp_md_targets_accept) and a capability (rp_md_capability_accept) against
 * that root, whose every role is one test
 * key, so that seeds signed with it (fuzz/corpus/metadata, made with RP_FUZZ_WRITE_SEEDS=DIR)
 * reach past the signature. Whatever is accepted must be what the rules say, and must be what the
 * build functions would make: rebuilding it gives back the same document.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "rampart/key.h"
#include "rampart/metadata.h"

#define DEVICE "aa00000000000000000000000000000000000000000000000000000000000000"
#define IMAGE_ID "1111111111111111111111111111111111111111111111111111111111111111"
#define IMAGE_HASH "2222222222222222222222222222222222222222222222222222222222222222"
#define NOW 1800000000

/* A test key, for fuzzing only: it signs nothing anywhere else. */
static const char test_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJnWIe95rSauUsuK4\n"
    "R1os6at26XtR0jUk0Nvi58EhTjahRANCAASM2BJar7TA0K8U48GzokSTPLXD1aZC\n"
    "YXYxJiGUMMUGapZWja8/uby0ibgneWrZkulv4EYlKw6NqSHoT37wm3m7\n"
    "-----END PRIVATE KEY-----\n";

static EVP_PKEY *key;
static rp_md_root_t root;

static rp_md_root_t root_version(int64_t version)
{
    rp_md_root_t r;
    rp_md_role_t role;

    memset(&r, 0, sizeof(r));
    memset(&role, 0, sizeof(role));
    role.nkeys = role.threshold = 1;
    if (rp_key_spki(key, role.spki[0], sizeof(role.spki[0]), &role.spki_len[0]) != RP_OK)
        abort();
    snprintf(r.tenant, sizeof(r.tenant), "t_1");
    r.version = version;
    r.expires = NOW + 86400;
    r.root = r.online = r.images = role;
    return r;
}

static void write_seed(const char *dir, const char *name, const char *env)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "w")) == NULL)
        abort();
    fputs(env, f);
    fclose(f);
}

static void write_seeds(const char *dir)
{
    rp_md_root_t v2 = root_version(2);
    rp_md_targets_t *t = calloc(1, sizeof(*t));
    char *env = NULL, detail[256];

    if (t == NULL || rp_md_root_sign(&v2, &key, 1, &env, detail, sizeof(detail)) != RP_OK)
        abort();
    write_seed(dir, "root-v2.json", env);
    free(env);
    snprintf(t->tenant, sizeof(t->tenant), "t_1");
    snprintf(t->device, sizeof(t->device), "%s", DEVICE);
    snprintf(t->deployment, sizeof(t->deployment), "d_1");
    t->version = 3;
    t->expires = NOW + 60;
    t->ntargets = 2;
    snprintf(t->targets[0].component, sizeof(t->targets[0].component), "app");
    snprintf(t->targets[0].image, sizeof(t->targets[0].image), "%s", IMAGE_ID);
    snprintf(t->targets[0].image_hash, sizeof(t->targets[0].image_hash), "%s", IMAGE_HASH);
    t->targets[0].size = 10;
    t->targets[0].version = (rp_image_version_t){1, 0, 0, 0};
    t->targets[0].has_security_counter = true;
    t->targets[0].security_counter = 1;
    /* a second target with no security counter ("none") and a delta */
    t->targets[1] = t->targets[0];
    snprintf(t->targets[1].component, sizeof(t->targets[1].component), "system");
    t->targets[1].has_security_counter = false;
    t->targets[1].security_counter = 0;
    t->targets[1].has_delta = true;
    snprintf(t->targets[1].delta.from, sizeof(t->targets[1].delta.from), "%s", IMAGE_HASH);
    snprintf(t->targets[1].delta.sha256, sizeof(t->targets[1].delta.sha256), "%s", IMAGE_ID);
    t->targets[1].delta.size = 4;
    if (rp_md_targets_sign(t, key, &env, detail, sizeof(detail)) != RP_OK)
        abort();
    write_seed(dir, "targets.json", env);
    free(env);
    free(t);
    {
        rp_md_capability_t c = {"t_1", DEVICE, RP_MD_CAP_DEVELOPMENT, NOW - 10, NOW + 3600};
        if (rp_md_capability_sign(&c, key, &env, detail, sizeof(detail)) != RP_OK)
            abort();
        write_seed(dir, "capability.json", env);
        free(env);
    }
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
    if (key == NULL)
        abort();
    root = root_version(1);
    if (seeds != NULL) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}

/* What accept took, build makes again, and accept takes back as it was. */
static void rebuilt_targets(const rp_md_targets_t *t, const rp_md_targets_trust_t *trust)
{
    rp_md_targets_t *again = calloc(1, sizeof(*again));
    char *env = NULL, detail[256];

    if (again == NULL || rp_md_targets_sign(t, key, &env, detail, sizeof(detail)) != RP_OK ||
        rp_md_targets_accept(env, strlen(env), trust, again, detail, sizeof(detail)) != RP_OK ||
        again->ntargets != t->ntargets || again->version != t->version ||
        strcmp(again->device, t->device) != 0)
        abort();
    for (size_t i = 0; i < t->ntargets; i++)
        if (again->targets[i].has_security_counter != t->targets[i].has_security_counter ||
            again->targets[i].security_counter != t->targets[i].security_counter ||
            again->targets[i].size != t->targets[i].size ||
            strcmp(again->targets[i].component, t->targets[i].component) != 0)
            abort();
    free(env);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *env = (const char *)data;
    rp_md_root_trust_t next = {&root, NULL, NOW, false}, first = {NULL, "t_1", NOW, false};
    rp_md_targets_trust_t trust = {&root, DEVICE, 2, NOW, false};
    rp_md_targets_t *t = calloc(1, sizeof(*t));
    rp_md_root_t got;
    char detail[256];
    json_t *p = NULL;

    if (t == NULL)
        abort();
    if (rp_md_open(env, size, &root.online, &p) == RP_OK && !json_is_object(p))
        abort();
    json_decref(p);
    if (rp_md_root_accept(env, size, &next, &got, detail, sizeof(detail)) == RP_OK &&
        (got.version != 2 || strcmp(got.tenant, "t_1") != 0 || got.expires <= NOW ||
         got.online.threshold != 1 || got.images.threshold != 1))
        abort(); /* only the next version of the same tenant, not expired */
    if (rp_md_root_accept(env, size, &first, &got, detail, sizeof(detail)) == RP_OK &&
        (strcmp(got.tenant, "t_1") != 0 || got.version < 1 || got.expires <= NOW))
        abort();
    if (rp_md_targets_accept(env, size, &trust, t, detail, sizeof(detail)) == RP_OK) {
        if (t->version < 2 || t->expires <= NOW || strcmp(t->device, DEVICE) != 0 ||
            t->ntargets > RP_MD_TARGETS_MAX)
            abort(); /* never older, never expired, never another device's */
        rebuilt_targets(t, &trust);
    } else if (t->ntargets != 0 || t->version != 0) {
        abort(); /* nothing is released on refusal */
    }
    free(t);
    {
        rp_md_capability_trust_t ct = {&root, DEVICE, NOW};
        rp_md_capability_t c;
        char *again = NULL;
        if (rp_md_capability_accept(env, size, &ct, &c, detail, sizeof(detail)) == RP_OK) {
            if (strcmp(c.device, DEVICE) != 0 || strcmp(c.tenant, "t_1") != 0 ||
                c.expires <= NOW || c.expires - c.issued > RP_MD_CAPABILITY_LIFETIME_MAX ||
                c.kind != RP_MD_CAP_DEVELOPMENT)
                abort(); /* only this device's, of a known kind, unexpired */
            if (rp_md_capability_sign(&c, key, &again, detail, sizeof(detail)) != RP_OK)
                abort(); /* what was accepted, build makes */
            free(again);
        } else if (c.kind != 0 || c.expires != 0) {
            abort();
        }
    }
    return 0;
}
