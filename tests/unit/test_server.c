/*
 * The security service's parts that stand alone: stateless nonces (each byte matters, the key
 * matters, the device matters, the clock matters) and the store's attestation records against a
 * real SQLite database (a batch records each attestation on its own; a nonce is spent once, even
 * within one batch and across batches; spent nonces are purged only once expired), a staged
 * rollout's choice of devices, and products, groups and deployments in the store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "nonce.h"
#include "server.h"
#include "rampart/log.h"
#include "store.h"

static const uint8_t key[RP_NONCE_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t dev_a[RP_SHA256_LEN] = {0xaa, 1};
static const uint8_t dev_b[RP_SHA256_LEN] = {0xbb, 2};

static void nonce_round_trip(void **state)
{
    uint8_t n[RP_NONCE_SIZE], other[RP_NONCE_SIZE];
    int64_t expires = 0;

    (void)state;
    assert_int_equal(rp_nonce_issue(key, dev_a, 1000, n), RP_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 999, &expires), RP_NONCE_OK);
    assert_int_equal(expires, 1000);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 1000, &expires), RP_NONCE_OK);
    /* Two nonces for one device and one time still differ. */
    assert_int_equal(rp_nonce_issue(key, dev_a, 1000, other), RP_OK);
    assert_memory_not_equal(n, other, sizeof(n));
}

static void nonce_refusals(void **state)
{
    uint8_t n[RP_NONCE_SIZE], k2[RP_NONCE_KEY_LEN];
    int64_t expires = 0;

    (void)state;
    assert_int_equal(rp_nonce_issue(key, dev_a, 1000, n), RP_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 1001, &expires), RP_NONCE_EXPIRED);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_b, 999, &expires),
                     RP_NONCE_OTHER_DEVICE);
    memcpy(k2, key, sizeof(k2));
    k2[31] ^= 1;
    assert_int_equal(rp_nonce_check(k2, n, sizeof(n), dev_a, 999, &expires), RP_NONCE_UNKNOWN);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n) - 1, dev_a, 999, &expires), RP_NONCE_UNKNOWN);
    assert_int_equal(rp_nonce_check(key, NULL, 0, dev_a, 999, &expires), RP_NONCE_UNKNOWN);
    /* Every bit is covered: the time and the random part by both MACs, each MAC by itself. A
     * changed second MAC is a nonce made here for another device. */
    for (size_t i = 0; i < sizeof(n); i++) {
        for (int bit = 0; bit < 8; bit++) {
            rp_nonce_result_t want = i < 24 ? RP_NONCE_UNKNOWN : RP_NONCE_OTHER_DEVICE;
            n[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 999, &expires), want);
            n[i] ^= (uint8_t)(1 << bit);
        }
    }
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 999, &expires), RP_NONCE_OK);
    /* An all-zero or all-ones nonce is not one of ours. */
    memset(n, 0, sizeof(n));
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 0, &expires), RP_NONCE_UNKNOWN);
    memset(n, 0xff, sizeof(n));
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 0, &expires), RP_NONCE_UNKNOWN);
    assert_int_equal(rp_nonce_issue(key, dev_a, -1, n), RP_ERR_INVALID_ARG);
}

/* --- the store ------------------------------------------------------------------------------ */

struct db {
    char dir[64];
    rp_store_t *s;
    rp_tenant_t tenant;
};

static int db_setup(void **state)
{
    struct db *db = calloc(1, sizeof(*db));

    rp_log_init("test_server", RP_LOG_ERROR);
    snprintf(db->dir, sizeof(db->dir), "/tmp/rampart-store-XXXXXX");
    if (mkdtemp(db->dir) == NULL || rp_store_open(db->dir, &db->s) != RP_OK ||
        rp_store_tenant_create(db->s, "acme", &db->tenant) != RP_OK)
        return -1;
    *state = db;
    return 0;
}

static int db_teardown(void **state)
{
    struct db *db = *state;
    char cmd[128];

    rp_store_close(db->s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", db->dir);
    free(db);
    return system(cmd) == 0 ? 0 : -1;
}

static void fill(rp_attestation_t *a, const char *device, const char *tenant, bool passed)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->device_id, sizeof(a->device_id), "%s", device);
    snprintf(a->tenant_id, sizeof(a->tenant_id), "%s", tenant);
    a->at = 1000;
    a->passed = passed;
    snprintf(a->reason, sizeof(a->reason), "%s", passed ? "pass" : "blocked");
    snprintf(a->claims_json, sizeof(a->claims_json), "{}");
}

struct seen {
    int n;
    char reasons[8][RP_REASON_MAX + 1];
};

static void collect(void *ctx, const rp_attestation_t *a)
{
    struct seen *s = ctx;

    if (s->n < 8)
        snprintf(s->reasons[s->n], sizeof(s->reasons[0]), "%s", a->reason);
    s->n++;
}

static void store_schema(void **state)
{
    struct db *db = *state;

    assert_int_equal(rp_store_schema_version(db->s), 5);
}

/* One write: a verdict, maybe a certificate, maybe a nonce to spend. */
static rp_attestation_write_t write_of(rp_attestation_t *a, const rp_cert_record_t *cert,
                                       const uint8_t *nonce)
{
    rp_attestation_write_t w;

    memset(&w, 0, sizeof(w));
    w.a = a;
    w.cert = cert;
    w.nonce = nonce;
    w.nonce_len = nonce != NULL ? RP_NONCE_SIZE : 0;
    w.nonce_expires = 2000;
    w.spent_reason = "nonce_replayed";
    w.blocked_reason = "blocked";
    return w;
}

static rp_cert_record_t cert_for(const struct db *db, const char *device, const char *serial)
{
    rp_cert_record_t cert;

    memset(&cert, 0, sizeof(cert));
    snprintf(cert.serial, sizeof(cert.serial), "%s", serial);
    snprintf(cert.tenant_id, sizeof(cert.tenant_id), "%s", db->tenant.id);
    snprintf(cert.device_id, sizeof(cert.device_id), "%s", device);
    cert.not_before = 1000;
    cert.not_after = 1000 + 86400;
    return cert;
}

static const char dev1[] = "1111111111111111111111111111111111111111111111111111111111111111";
static const char dev2[] = "2222222222222222222222222222222222222222222222222222222222222222";

static void store_batch_spends_each_nonce_once(void **state)
{
    struct db *db = *state;
    uint8_t n1[RP_NONCE_SIZE] = {1}, n2[RP_NONCE_SIZE] = {2};
    rp_cert_record_t cert = cert_for(db, dev1, "0a0b"), cert2 = cert_for(db, dev1, "0c0d");
    rp_attestation_t a[4];
    rp_attestation_write_t w[4];
    rp_cert_record_t got;
    char tenant_id[RP_ID_SIZE];
    struct seen seen = {0};
    bool blocked = true;

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    assert_int_equal(rp_store_device_standing(db->s, dev1, tenant_id, &blocked), RP_OK);
    assert_string_equal(tenant_id, db->tenant.id);
    assert_false(blocked);
    assert_int_equal(rp_store_device_standing(db->s, "22", tenant_id, &blocked), RP_ERR_NOT_FOUND);

    /* A pass with n1; a second pass racing with n1 in the same transaction; a refusal spending
     * n2; a failure of an unclaimed device that spends no nonce. */
    fill(&a[0], dev1, db->tenant.id, true);
    w[0] = write_of(&a[0], &cert, n1);
    fill(&a[1], dev1, db->tenant.id, true);
    w[1] = write_of(&a[1], &cert2, n1);
    fill(&a[2], dev1, db->tenant.id, false);
    w[2] = write_of(&a[2], NULL, n2);
    fill(&a[3], dev1, "", false);
    w[3] = write_of(&a[3], NULL, NULL);
    assert_int_equal(rp_store_attestations_record(db->s, w, 4), RP_OK);
    assert_int_equal(w[0].as, RP_RECORDED_AS_GIVEN);
    assert_int_equal(w[1].as, RP_RECORDED_AS_REPLAY);
    assert_false(a[1].passed);
    assert_string_equal(a[1].reason, "nonce_replayed");
    assert_int_equal(w[2].as, RP_RECORDED_AS_GIVEN);
    assert_int_equal(w[3].as, RP_RECORDED_AS_GIVEN);
    assert_true(a[0].id > 0 && a[1].id > a[0].id && a[2].id > a[1].id);
    /* The loser's certificate was never recorded. */
    assert_int_equal(rp_store_cert_get(db->s, "0a0b", &got), RP_OK);
    assert_int_equal(rp_store_cert_get(db->s, "0c0d", &got), RP_ERR_NOT_FOUND);

    /* What the tenant sees, newest first: the refusal, the replay, the pass. */
    assert_int_equal(rp_store_attestation_list(db->s, db->tenant.id, dev1, 10, collect, &seen),
                     RP_OK);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.reasons[0], "blocked");
    assert_string_equal(seen.reasons[1], "nonce_replayed");
    assert_string_equal(seen.reasons[2], "pass");

    /* A later batch cannot spend n2 again, nor after a purge of nonces expired before 2000;
     * once n2 itself has expired and been purged it could be stored again, but by then the
     * nonce is refused as expired before it reaches the store. */
    fill(&a[0], dev1, db->tenant.id, false);
    w[0] = write_of(&a[0], NULL, n2);
    assert_int_equal(rp_store_attestations_record(db->s, w, 1), RP_OK);
    assert_int_equal(w[0].as, RP_RECORDED_AS_REPLAY);
    assert_int_equal(rp_store_nonces_purge(db->s, 2000), RP_OK);
    fill(&a[0], dev1, db->tenant.id, false);
    assert_int_equal(rp_store_attestations_record(db->s, w, 1), RP_OK);
    assert_int_equal(w[0].as, RP_RECORDED_AS_REPLAY);
    assert_int_equal(rp_store_nonces_purge(db->s, 2001), RP_OK);
    fill(&a[0], dev1, db->tenant.id, false);
    assert_int_equal(rp_store_attestations_record(db->s, w, 1), RP_OK);
    assert_int_equal(w[0].as, RP_RECORDED_AS_GIVEN);
}

/* A pass whose device was blocked after its request read it is recorded as blocked. */
static void store_pass_for_a_device_blocked_meanwhile(void **state)
{
    struct db *db = *state;
    uint8_t n[RP_NONCE_SIZE] = {3};
    rp_cert_record_t cert = cert_for(db, dev1, "0e0f"), got;
    rp_attestation_t a;
    rp_attestation_write_t w;
    rp_device_t d;

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, dev1, 1500), RP_OK);
    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &cert, n);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(w.as, RP_RECORDED_AS_BLOCKED);
    assert_false(a.passed);
    assert_string_equal(a.reason, "blocked");
    assert_int_equal(rp_store_cert_get(db->s, "0e0f", &got), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_device_get(db->s, dev1, &d), RP_OK);
    assert_false(d.last_passed);
    assert_string_equal(d.last_reason, "blocked");
    assert_string_equal(d.cert_serial, "");
}

/* A staged rollout's choice: stable, proportional, none at 0%, all at 100%, and a larger
 * percentage of the same deployment reaches a superset of a smaller one. */
static void rollout_choice(void **state)
{
    rp_deployment_t d;
    char id[RP_DEVICE_ID_SIZE];
    int at10 = 0, at50 = 0;

    (void)state;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "d_0123456789abcdef01234567");
    for (int i = 0; i < 2000; i++) {
        bool s10, s50;
        snprintf(id, sizeof(id), "%064x", i);
        d.rollout = 0;
        assert_false(rp_deployment_selects(&d, id));
        d.rollout = 100;
        assert_true(rp_deployment_selects(&d, id));
        d.rollout = 10;
        s10 = rp_deployment_selects(&d, id);
        assert_int_equal(s10, rp_deployment_selects(&d, id));
        d.rollout = 50;
        s50 = rp_deployment_selects(&d, id);
        if (s10)
            assert_true(s50);
        at10 += s10;
        at50 += s50;
    }
    /* 2000 devices: 200 and 1000 expected; far outside these bounds means a biased choice */
    assert_in_range(at10, 140, 260);
    assert_in_range(at50, 900, 1100);
}

/* Products come with their groups; a device is in one group at most, of its own tenant. */
static void store_groups_and_deployments(void **state)
{
    struct db *db = *state;
    rp_tenant_t other;
    rp_product_t p, found;
    rp_group_t field, prod, g;
    rp_deployment_t d1, d2, cur;
    rp_image_key_record_t k;
    rp_image_record_t img;

    assert_int_equal(rp_store_tenant_create(db->s, "other", &other), RP_OK);
    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "Thermostat", &p), RP_OK);
    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "Thermostat", &found),
                     RP_ERR_EXISTS);
    assert_int_equal(rp_store_product_find(db->s, db->tenant.id, "Thermostat", &found), RP_OK);
    assert_string_equal(found.id, p.id);
    assert_int_equal(rp_store_product_find(db->s, db->tenant.id, p.id, &found), RP_OK);
    assert_int_equal(rp_store_product_find(db->s, other.id, p.id, &found), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_group_find(db->s, &p, "Development", &g), RP_OK);
    assert_true(g.allow_unknown_images);
    assert_int_equal(rp_store_group_find(db->s, &p, "Field Test", &field), RP_OK);
    assert_false(field.allow_unknown_images);
    assert_int_equal(rp_store_group_find(db->s, &p, "Production", &prod), RP_OK);

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, other.id, dev2, 1000), RP_OK);
    assert_int_equal(rp_store_device_group(db->s, dev1, &g), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_device_assign(db->s, &field, dev1, 1100), RP_OK);
    assert_int_equal(rp_store_device_assign(db->s, &prod, dev1, 1200), RP_OK);
    assert_int_equal(rp_store_device_group(db->s, dev1, &g), RP_OK);
    assert_string_equal(g.id, prod.id);
    assert_int_equal(rp_store_device_assign(db->s, &prod, dev2, 1200), RP_ERR_NOT_FOUND);

    memset(&k, 0, sizeof(k));
    snprintf(k.tenant_id, sizeof(k.tenant_id), "%s", db->tenant.id);
    snprintf(k.name, sizeof(k.name), "release");
    snprintf(k.alg, sizeof(k.alg), "ecdsa-p256");
    k.spki_len = 4;
    snprintf(k.keyhash, sizeof(k.keyhash), "%064d", 1);
    assert_int_equal(rp_store_image_key_add(db->s, &k), RP_OK);
    memset(&img, 0, sizeof(img));
    snprintf(img.id, sizeof(img.id), "%064d", 7);
    snprintf(img.tenant_id, sizeof(img.tenant_id), "%s", db->tenant.id);
    snprintf(img.component, sizeof(img.component), "app");
    snprintf(img.key_id, sizeof(img.key_id), "%s", k.id);
    assert_int_equal(rp_store_image_add(db->s, &img), RP_OK);
    assert_int_equal(rp_store_image_add(db->s, &img), RP_ERR_EXISTS);

    /* a deployment naming an image the tenant lacks is not made at all */
    memset(&d1, 0, sizeof(d1));
    snprintf(d1.tenant_id, sizeof(d1.tenant_id), "%s", db->tenant.id);
    snprintf(d1.group_id, sizeof(d1.group_id), "%s", prod.id);
    d1.rollout = 100;
    d1.nimages = 1;
    snprintf(d1.image_ids[0], RP_IMAGE_ID_SIZE, "%064d", 8);
    assert_int_equal(rp_store_deployment_create(db->s, &d1), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_deployment_current(db->s, prod.id, &cur), RP_ERR_NOT_FOUND);
    snprintf(d1.image_ids[0], RP_IMAGE_ID_SIZE, "%s", img.id);
    assert_int_equal(rp_store_deployment_create(db->s, &d1), RP_OK);
    d2 = d1;
    d2.rollout = 20;
    assert_int_equal(rp_store_deployment_create(db->s, &d2), RP_OK);
    assert_string_not_equal(d1.id, d2.id);
    /* the newest is current, even made within the same second */
    assert_int_equal(rp_store_deployment_current(db->s, prod.id, &cur), RP_OK);
    assert_string_equal(cur.id, d2.id);
    assert_int_equal(cur.rollout, 20);
    assert_int_equal(cur.nimages, 1);
    assert_string_equal(cur.image_ids[0], img.id);
    assert_int_equal(rp_store_deployment_get(db->s, other.id, d2.id, &cur), RP_ERR_NOT_FOUND);
}

/* The Range header of an image download: the forms a resuming device sends, and the rest. */
static void range_header(void **state)
{
    uint64_t start, len;
    bool unsat;

    (void)state;
    assert_true(rp_range_parse("bytes=100-199", 1000, &start, &len, &unsat));
    assert_int_equal(start, 100);
    assert_int_equal(len, 100);
    assert_true(rp_range_parse("bytes=100-", 1000, &start, &len, &unsat));
    assert_int_equal(len, 900);
    assert_true(rp_range_parse("bytes=900-5000", 1000, &start, &len, &unsat)); /* clipped */
    assert_int_equal(len, 100);
    assert_true(rp_range_parse("bytes=-10", 1000, &start, &len, &unsat));
    assert_int_equal(start, 990);
    assert_int_equal(len, 10);
    assert_true(rp_range_parse("bytes=-5000", 1000, &start, &len, &unsat));
    assert_int_equal(start, 0);
    assert_false(rp_range_parse("bytes=1000-", 1000, &start, &len, &unsat));
    assert_true(unsat); /* 416 */
    assert_false(rp_range_parse(NULL, 1000, &start, &len, &unsat));
    assert_false(unsat);
    assert_false(rp_range_parse("bytes=0-1,5-9", 1000, &start, &len, &unsat)); /* whole body */
    assert_false(rp_range_parse("bytes=5-1", 1000, &start, &len, &unsat));
    assert_false(rp_range_parse("bytes=a-", 1000, &start, &len, &unsat));
    assert_false(rp_range_parse("bytes=1-2x", 1000, &start, &len, &unsat));
    assert_false(rp_range_parse("items=1-2", 1000, &start, &len, &unsat));
    assert_false(rp_range_parse("bytes=-0", 1000, &start, &len, &unsat));
    assert_false(rp_range_parse("bytes=99999999999999999999-", 1000, &start, &len, &unsat));
    assert_false(unsat);
}

/* Per-address token buckets: a burst, then the rate; each address its own. */
static void rate_limit(void **state)
{
    rp_ratelimit_t *rl;

    (void)state;
    assert_int_equal(rp_ratelimit_new(0, 1, &rl), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_ratelimit_new(2, 3, &rl), RP_OK);
    for (int i = 0; i < 3; i++)
        assert_true(rp_ratelimit_allow(rl, "10.0.0.1", 8, 100.0));
    assert_false(rp_ratelimit_allow(rl, "10.0.0.1", 8, 100.0));
    assert_true(rp_ratelimit_allow(rl, "10.0.0.2", 8, 100.0));  /* another address */
    assert_false(rp_ratelimit_allow(rl, "10.0.0.1", 8, 100.2)); /* 0.4 of a token */
    assert_true(rp_ratelimit_allow(rl, "10.0.0.1", 8, 100.5));  /* 1 token back */
    assert_false(rp_ratelimit_allow(rl, "10.0.0.1", 8, 100.5));
    for (int i = 0; i < 3; i++) /* a long pause refills up to the burst, no more */
        assert_true(rp_ratelimit_allow(rl, "10.0.0.1", 8, 1000.0));
    assert_false(rp_ratelimit_allow(rl, "10.0.0.1", 8, 1000.0));
    rp_ratelimit_free(rl);
}

/* An IPv4 or IPv6 address's key. */
static void peer_key_of(const char *text, uint8_t out[RP_PEER_KEY_LEN])
{
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};

    if (inet_pton(AF_INET, text, &a4.sin_addr) == 1)
        assert_true(rp_peer_key((struct sockaddr *)&a4, sizeof(a4), out));
    else if (inet_pton(AF_INET6, text, &a6.sin6_addr) == 1)
        assert_true(rp_peer_key((struct sockaddr *)&a6, sizeof(a6), out));
    else
        fail_msg("not an address: %s", text);
}

/* Connections per address: up to the cap, then none until one closes; IPv6 counted by its /64,
 * an IPv4-mapped address as the IPv4 one. */
static void peers_cap(void **state)
{
    uint8_t a[RP_PEER_KEY_LEN], b[RP_PEER_KEY_LEN], k[RP_PEER_KEY_LEN];
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    rp_peers_t *p;

    (void)state;
    assert_int_equal(rp_peers_new(100, &p), RP_OK);
    peer_key_of("10.0.0.1", a);
    peer_key_of("10.0.0.2", b);
    for (int i = 0; i < 3; i++)
        assert_true(rp_peers_take(p, a, 3));
    assert_false(rp_peers_take(p, a, 3));
    assert_int_equal(rp_peers_open(p, a), 3);
    assert_true(rp_peers_take(p, b, 3)); /* another address */
    rp_peers_release(p, a);
    assert_true(rp_peers_take(p, a, 3));
    assert_false(rp_peers_take(p, a, 3));
    assert_false(rp_peers_take(p, k, 0)); /* a cap of 0 admits nothing */

    peer_key_of("::ffff:10.0.0.1", k); /* the same client over an IPv6 socket */
    assert_memory_equal(k, a, RP_PEER_KEY_LEN);
    peer_key_of("2001:db8:1:2::1", a);
    peer_key_of("2001:db8:1:2:ffff:1:2:3", k); /* the same /64 */
    assert_memory_equal(k, a, RP_PEER_KEY_LEN);
    peer_key_of("2001:db8:1:3::1", k); /* the next /64 */
    assert_memory_not_equal(k, a, RP_PEER_KEY_LEN);
    peer_key_of("::1", k);
    peer_key_of("0.0.0.0", b);
    assert_memory_not_equal(k, b, RP_PEER_KEY_LEN);
    assert_false(rp_peer_key((struct sockaddr *)&un, sizeof(un), k));
    rp_peers_free(p);
}

/* Many addresses coming and going, against a plain count per address: removal from the table
 * (which moves entries back) never loses or mixes up an address. */
static void peers_churn(void **state)
{
    enum { ADDRS = 3000, ROUNDS = 100000 };
    static unsigned want[ADDRS];
    uint8_t k[RP_PEER_KEY_LEN];
    rp_peers_t *p;
    unsigned seed = 1;

    (void)state;
    memset(want, 0, sizeof(want));
    assert_int_equal(rp_peers_new(2 * ADDRS, &p), RP_OK);
    for (int r = 0; r < ROUNDS; r++) {
        unsigned i;
        char text[32];
        seed = seed * 1103515245u + 12345u;
        i = (seed >> 8) % ADDRS;
        snprintf(text, sizeof(text), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
        peer_key_of(text, k);
        if ((seed >> 20) & 1) {
            assert_int_equal(rp_peers_take(p, k, 2), want[i] < 2);
            if (want[i] < 2)
                want[i]++;
        } else if (want[i] > 0) {
            rp_peers_release(p, k);
            want[i]--;
        }
        if (r % 5000 == 0)
            for (unsigned j = 0; j < ADDRS; j++) {
                snprintf(text, sizeof(text), "10.%u.%u.%u", j >> 16, (j >> 8) & 255, j & 255);
                peer_key_of(text, k);
                assert_int_equal(rp_peers_open(p, k), want[j]);
            }
    }
    rp_peers_free(p);
}

/* The readiness write: a transaction that commits, every time. */
static void store_write_check(void **state)
{
    struct db *db = *state;

    for (int i = 0; i < 3; i++)
        assert_int_equal(rp_store_write_check(db->s), RP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nonce_round_trip),
        cmocka_unit_test(nonce_refusals),
        cmocka_unit_test_setup_teardown(store_schema, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_batch_spends_each_nonce_once, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_pass_for_a_device_blocked_meanwhile, db_setup,
                                        db_teardown),
        cmocka_unit_test(rollout_choice),
        cmocka_unit_test(range_header),
        cmocka_unit_test(rate_limit),
        cmocka_unit_test_setup_teardown(store_groups_and_deployments, db_setup, db_teardown),
        cmocka_unit_test(peers_cap),
        cmocka_unit_test(peers_churn),
        cmocka_unit_test_setup_teardown(store_write_check, db_setup, db_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
