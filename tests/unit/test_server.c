/*
 * The security service's parts that stand alone: stateless nonces (each byte matters, the key
 * matters, the device matters, the clock matters) and the store's attestation records against a
 * real SQLite database, and PostgreSQL as unit.server_pg (store_target.h) (a batch records each
 * attestation on its own; a nonce is spent once, even within one batch and across batches; spent
 * nonces are purged only once expired), a staged rollout's choice of devices, products, groups and
 * deployments in the store, and what each device's root of trust accepts.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <sqlite3.h>

#include "console.h"
#include "db_sqlite.h"
#include "names.h"
#include "nonce.h"
#include "paging.h"
#include "context.h"
#include "recorder.h"
#include "req.h"
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "rampart/failpoint.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "rampart/text.h"
#include "store.h"
#include "store_internal.h"
#include "store_target.h"

static const uint8_t key[RP_NONCE_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t dev_a[RP_SHA256_LEN] = {0xaa, 1};
static const uint8_t dev_b[RP_SHA256_LEN] = {0xbb, 2};
#define LIFE 60 /* --nonce-lifetime's default */

static void nonce_round_trip(void **state)
{
    uint8_t n[RP_NONCE_SIZE], other[RP_NONCE_SIZE];
    int64_t expires = 0;
    uint32_t epoch = 0;

    (void)state;
    assert_int_equal(rp_nonce_issue(key, dev_a, 0, 1000, n), RP_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 999, LIFE, &expires, &epoch),
                     RP_NONCE_OK);
    assert_int_equal(expires, 1000);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 1000, LIFE, &expires, &epoch),
                     RP_NONCE_OK);
    /* Two nonces for one device and one time still differ. */
    assert_int_equal(rp_nonce_issue(key, dev_a, 0, 1000, other), RP_OK);
    assert_memory_not_equal(n, other, sizeof(n));
    /* The nonce epoch it was issued in comes back, whatever its value (nonce.h). */
    assert_int_equal(rp_nonce_issue(key, dev_a, 7, 1000, n), RP_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 999, LIFE, &expires, &epoch),
                     RP_NONCE_OK);
    assert_int_equal(epoch, 7);
    assert_int_equal(expires, 1000);
    assert_int_equal(rp_nonce_issue(key, dev_a, RP_NONCE_EPOCH_MAX, 1000, n), RP_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 999, LIFE, &expires, &epoch),
                     RP_NONCE_OK);
    assert_int_equal(epoch, RP_NONCE_EPOCH_MAX);
}

static void nonce_refusals(void **state)
{
    uint8_t n[RP_NONCE_SIZE], k2[RP_NONCE_KEY_LEN];
    int64_t expires = 0;
    uint32_t epoch = 0;

    (void)state;
    assert_int_equal(rp_nonce_issue(key, dev_a, 0, 1000, n), RP_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 1001, LIFE, &expires, &epoch),
                     RP_NONCE_EXPIRED);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_b, 999, LIFE, &expires, &epoch),
                     RP_NONCE_OTHER_DEVICE);
    memcpy(k2, key, sizeof(k2));
    k2[31] ^= 1;
    assert_int_equal(rp_nonce_check(k2, n, sizeof(n), dev_a, 999, LIFE, &expires, &epoch),
                     RP_NONCE_UNKNOWN);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n) - 1, dev_a, 999, LIFE, &expires, &epoch),
                     RP_NONCE_UNKNOWN);
    assert_int_equal(rp_nonce_check(key, NULL, 0, dev_a, 999, LIFE, &expires, &epoch),
                     RP_NONCE_UNKNOWN);
    /* Every bit is covered: the epoch, the time and the random part by both MACs, each MAC by
     * itself (so a device cannot move its nonce to another epoch). A changed second MAC is a
     * nonce made here for another device. */
    for (size_t i = 0; i < sizeof(n); i++) {
        for (int bit = 0; bit < 8; bit++) {
            rp_nonce_result_t want = i < 24 ? RP_NONCE_UNKNOWN : RP_NONCE_OTHER_DEVICE;
            n[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 999, LIFE, &expires, &epoch),
                             want);
            n[i] ^= (uint8_t)(1 << bit);
        }
    }
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 999, LIFE, &expires, &epoch),
                     RP_NONCE_OK);
    /* An all-zero or all-ones nonce is not one of ours. */
    memset(n, 0, sizeof(n));
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 0, LIFE, &expires, &epoch),
                     RP_NONCE_UNKNOWN);
    memset(n, 0xff, sizeof(n));
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 0, LIFE, &expires, &epoch),
                     RP_NONCE_UNKNOWN);
    assert_int_equal(rp_nonce_issue(key, dev_a, 0, -1, n), RP_ERR_INVALID_ARG);
}

/* A nonce of the format before the nonce epoch (expires 8 | random 8 | MACs with the tags
 * "rampart nonce: ..."), in flight at an upgrade, is not one of ours: refused (nonce_unknown,
 * the device asks again), never read as an epoch and an expiry. */
static void nonce_format_1_refused(void **state)
{
    static const char tags[2][22] = {"rampart nonce: issued", "rampart nonce: device"};
    uint8_t n[RP_NONCE_SIZE] = {0}, msg[21 + 16 + RP_SHA256_LEN], mac[32];
    unsigned int mac_len = 0;
    int64_t expires = 0;
    uint32_t epoch = 0;

    (void)state;
    n[7] = 100; /* expires 100, random 0 */
    for (int i = 0; i < 2; i++) {
        memcpy(msg, tags[i], 21);
        memcpy(msg + 21, n, 16);
        memcpy(msg + 37, dev_a, RP_SHA256_LEN);
        assert_non_null(HMAC(EVP_sha256(), key, RP_NONCE_KEY_LEN, msg, i == 0 ? 37 : sizeof(msg),
                             mac, &mac_len));
        memcpy(n + 16 + 8 * i, mac, 8);
    }
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, 99, LIFE, &expires, &epoch),
                     RP_NONCE_UNKNOWN);
}

/* A nonce issued by a clock that ran a day ahead is refused at the real clock, and stays
 * refused for the whole day (review r10 M1): no replica with a right clock issues one whose
 * expiry lies further ahead than the lifetime plus RP_NONCE_AHEAD_SLACK. */
static void nonce_from_clock_ahead(void **state)
{
    const int64_t real = 1800000000, day = 86400;
    uint8_t n[RP_NONCE_SIZE];
    int64_t expires = 0;
    uint32_t epoch = 0;

    (void)state;
    assert_int_equal(rp_nonce_issue(key, dev_a, 0, real + day + LIFE, n), RP_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, real, LIFE, &expires, &epoch),
                     RP_NONCE_AHEAD);
    assert_int_equal(expires, real + day + LIFE);
    assert_int_equal(
        rp_nonce_check(key, n, sizeof(n), dev_a, real + day / 2, LIFE, &expires, &epoch),
        RP_NONCE_AHEAD);
    /* Its own clock (a day ahead) takes it, until it expires there. */
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, real + day, LIFE, &expires, &epoch),
                     RP_NONCE_OK);
    assert_int_equal(
        rp_nonce_check(key, n, sizeof(n), dev_a, real + day + LIFE + 1, LIFE, &expires, &epoch),
        RP_NONCE_EXPIRED);
    /* The edge: a clock RP_NONCE_AHEAD_SLACK ahead is still taken, one second more is not. */
    assert_int_equal(rp_nonce_issue(key, dev_a, 0, real + LIFE + RP_NONCE_AHEAD_SLACK, n), RP_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, real, LIFE, &expires, &epoch),
                     RP_NONCE_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, real - 1, LIFE, &expires, &epoch),
                     RP_NONCE_AHEAD);
    /* A lifetime shortened (SIGHUP) bounds the nonces issued under the longer one too. */
    assert_int_equal(rp_nonce_issue(key, dev_a, 0, real + 3600, n), RP_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, real, 3600, &expires, &epoch),
                     RP_NONCE_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, real, LIFE, &expires, &epoch),
                     RP_NONCE_AHEAD);
    /* Far times and a bad lifetime do not overflow: refused. */
    assert_int_equal(rp_nonce_issue(key, dev_a, 0, INT64_MAX, n), RP_OK);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, -real, LIFE, &expires, &epoch),
                     RP_NONCE_AHEAD);
    assert_int_equal(
        rp_nonce_check(key, n, sizeof(n), dev_a, INT64_MAX, INT64_MAX, &expires, &epoch),
        RP_NONCE_AHEAD);
    assert_int_equal(rp_nonce_check(key, n, sizeof(n), dev_a, INT64_MAX, -1, &expires, &epoch),
                     RP_NONCE_AHEAD);
}

/* --- the store ------------------------------------------------------------------------------ */

struct db {
    struct rt_target t;
    rp_store_t *s;
    rp_tenant_t tenant;
};

static int db_setup(void **state)
{
    struct db *db = calloc(1, sizeof(*db));

    rp_log_init("test_server", RP_LOG_ERROR);
    if (rt_target_make(&db->t) != 0 || rt_store_open(&db->t, &db->s) != RP_OK ||
        rp_store_tenant_create(db->s, "acme", &db->tenant) != RP_OK)
        return -1;
    *state = db;
    return 0;
}

static int db_teardown(void **state)
{
    struct db *db = *state;
    int rc;

    rp_store_close(db->s);
    rc = rt_target_remove(&db->t);
    free(db);
    return rc;
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

struct sources {
    int n;
    rp_unproven_source_t last; /* the last one listed */
    rp_unproven_source_t first;
};

static void collect_source(void *ctx, const rp_unproven_source_t *u)
{
    struct sources *s = ctx;

    if (s->n == 0)
        s->first = *u;
    s->last = *u;
    s->n++;
}

static void store_schema(void **state)
{
    struct db *db = *state;

    assert_int_equal(rp_store_schema_version(db->s), 35);
}

static void collect_upload(void *ctx, const rp_upload_t *u)
{
    *(rp_upload_t *)ctx = *u;
}

/* Migration 22: an upload remembers the image it became (POST images is idempotent on it), on
 * both engines; only that tenant sees it. */
static void store_upload_became(void **state)
{
    struct db *db = *state;
    const char *image = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    rp_upload_t u, got, stale, other;

    assert_int_equal(rp_store_upload_create(db->s, db->tenant.id, 1000, 16, 1u << 30, &u), RP_OK);
    assert_int_equal(rp_store_upload_get(db->s, db->tenant.id, u.id, &got), RP_OK);
    assert_string_equal(got.image_id, "");
    assert_int_equal(rp_store_upload_became(db->s, u.id, image), RP_OK);
    assert_int_equal(rp_store_upload_became(db->s, u.id, image), RP_OK); /* again: the same */
    assert_int_equal(rp_store_upload_get(db->s, db->tenant.id, u.id, &got), RP_OK);
    assert_string_equal(got.image_id, image);
    assert_int_equal(got.size, 1000);
    assert_int_equal(rp_store_upload_get(db->s, "t_other", u.id, &got), RP_ERR_NOT_FOUND);
    /* an upload that became an image is open no more: it counts for no limit, takes no chunk */
    assert_int_equal(rp_store_upload_create(db->s, db->tenant.id, 1000, 1, 1000, &other), RP_OK);
    assert_int_equal(rp_store_upload_touch(db->s, db->tenant.id, u.id, u.active), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_upload_delete(db->s, other.id), RP_OK);
    memset(&stale, 0, sizeof(stale));
    assert_int_equal(rp_store_upload_stale(db->s, u.active + 1, 16, collect_upload, &stale), RP_OK);
    assert_string_equal(stale.image_id, image);
    assert_int_equal(rp_store_upload_delete(db->s, u.id), RP_OK);
    assert_int_equal(rp_store_upload_became(db->s, u.id, image), RP_ERR_NOT_FOUND);
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
    int64_t wm = 0;

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
    w[1].source = "192.0.2.7";
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
    assert_true(a[0].id > 0 && a[2].id > a[0].id);
    /* The loser's certificate was never recorded. */
    assert_int_equal(rp_store_cert_get(db->s, "0a0b", &got), RP_OK);
    assert_int_equal(rp_store_cert_get(db->s, "0c0d", &got), RP_ERR_NOT_FOUND);

    /* What the tenant sees, newest first: the refusal and the pass. The replay shows nothing
     * about the device (anyone holding its evidence could send it again): it is counted for its
     * source instead. */
    assert_int_equal(rp_store_attestation_list(db->s, db->tenant.id, dev1, 10, collect, &seen),
                     RP_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.reasons[0], "blocked");
    assert_string_equal(seen.reasons[1], "pass");
    {
        struct sources src = {0};
        assert_int_equal(rp_store_unproven_list(db->s, 10, collect_source, &src), RP_OK);
        assert_int_equal(src.n, 1);
        assert_string_equal(src.last.address, "192.0.2.7");
        assert_string_equal(src.last.last_reason, "nonce_replayed");
        assert_int_equal(src.last.count, 1);
    }

    /* A later batch cannot spend n2 again, nor after a purge of nonces expired before 2000
     * (n2 expires at 2000: its row stays), nor once n2 has expired and been purged (its row is
     * gone, the purge watermark refuses it). */
    fill(&a[0], dev1, db->tenant.id, false);
    w[0] = write_of(&a[0], NULL, n2);
    assert_int_equal(rp_store_attestations_record(db->s, w, 1), RP_OK);
    assert_int_equal(w[0].as, RP_RECORDED_AS_REPLAY);
    assert_int_equal(rp_store_nonces_purge(db->s, 2000, &wm), RP_OK);
    assert_int_equal(wm, 0); /* nothing deleted: the watermark is the latest expiry deleted */
    fill(&a[0], dev1, db->tenant.id, false);
    assert_int_equal(rp_store_attestations_record(db->s, w, 1), RP_OK);
    assert_int_equal(w[0].as, RP_RECORDED_AS_REPLAY);
    assert_int_equal(rp_store_nonces_purge(db->s, 2001, &wm), RP_OK);
    assert_int_equal(wm, 2001);
    fill(&a[0], dev1, db->tenant.id, false);
    assert_int_equal(rp_store_attestations_record(db->s, w, 1), RP_OK);
    assert_int_equal(w[0].as, RP_RECORDED_AS_REPLAY);
    /* the watermark never moves back (a replica whose clock runs behind purges less) */
    assert_int_equal(rp_store_nonces_purge(db->s, 1500, &wm), RP_OK);
    assert_int_equal(wm, 2001);
}

/* Review r8 M2: "usable once" whatever the replicas' clocks. Replica B (clock right, 1700)
 * spends n1, which expires at 2000; replica A, whose clock runs 400 s ahead, purges with its
 * margin (before 2100) and deletes n1's row while n1 is live at B. B must still refuse n1 again:
 * on both engines, two handles on one database. */
static void store_nonce_once_across_clocks(void **state)
{
    struct db *db = *state;
    uint8_t n1[RP_NONCE_SIZE] = {1}, n3[RP_NONCE_SIZE] = {3}, n4[RP_NONCE_SIZE] = {4};
    rp_cert_record_t c1 = cert_for(db, dev1, "0e01"), c2 = cert_for(db, dev1, "0e02"),
                     c3 = cert_for(db, dev1, "0e03");
    rp_attestation_t a;
    rp_attestation_write_t w;
    rp_store_t *ahead;
    int64_t wm = 0;

    assert_int_equal(rt_store_open(&db->t, &ahead), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &c1, n1);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(w.as, RP_RECORDED_AS_GIVEN);
    /* B purges on its own clock: n1 stays, nothing is deleted, the watermark stays */
    assert_int_equal(rp_store_nonces_purge(db->s, 1700 - 300, &wm), RP_OK);
    assert_int_equal(wm, 0);
    /* A, 400 s ahead, purges n1's row: the watermark is n1's expiry (the latest deleted), + 1 */
    assert_int_equal(rp_store_nonces_purge(ahead, 2100, &wm), RP_OK);
    assert_int_equal(wm, 2001);
    /* B, n1 live on its clock: the same evidence again is a replay, not a second pass */
    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &c2, n1);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(w.as, RP_RECORDED_AS_REPLAY);
    assert_false(a.passed);
    {
        rp_cert_record_t got;
        assert_int_equal(rp_store_cert_get(db->s, "0e02", &got), RP_ERR_NOT_FOUND);
    }
    /* The cost of A's clock, on B: a nonce expiring no later than n1 is refused though never
     * spent; one expiring after it (as 2099: A purged up to 2100, but deleted nothing later than
     * 2000) is spent once. B's next purge leaves the watermark. */
    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &c2, n4);
    w.nonce_expires = 2000;
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(w.as, RP_RECORDED_AS_REPLAY);
    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &c3, n3);
    w.nonce_expires = 2099;
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(w.as, RP_RECORDED_AS_GIVEN);
    assert_int_equal(rp_store_nonces_purge(db->s, 1760 - 300, &wm), RP_OK);
    assert_int_equal(wm, 2001);
    rp_store_close(ahead);
}

/* A pass of dev1 with a certificate and a nonce of that nonce epoch that expires then, recorded
 * through s. */
static rp_recorded_as_t pass_in(struct db *db, rp_store_t *s, const char *serial,
                                const uint8_t *nonce, int64_t expires, uint32_t epoch)
{
    rp_cert_record_t cert = cert_for(db, dev1, serial), got;
    rp_attestation_t a;
    rp_attestation_write_t w;

    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &cert, nonce);
    w.nonce_expires = expires;
    w.nonce_epoch = epoch;
    w.stale_reason = "nonce_unknown";
    assert_int_equal(rp_store_attestations_record(s, &w, 1), RP_OK);
    assert_true(a.passed == (w.as == RP_RECORDED_AS_GIVEN));
    /* the certificate is recorded with a pass only */
    assert_int_equal(rp_store_cert_get(s, serial, &got),
                     w.as == RP_RECORDED_AS_GIVEN ? RP_OK : RP_ERR_NOT_FOUND);
    if (w.as == RP_RECORDED_AS_STALE)
        assert_string_equal(a.reason, "nonce_unknown");
    return w.as;
}

static rp_recorded_as_t pass_with(struct db *db, rp_store_t *s, const char *serial,
                                  const uint8_t *nonce, int64_t expires)
{
    return pass_in(db, s, serial, nonce, expires, 0);
}

/* Review r9srv M1: one forward step of one replica's clock must not stop every nonce-flow
 * attestation. Replica A's clock runs a day ahead and purges: it deletes nothing live on the
 * database's clock and raises no watermark, so B's (right clock) nonce-flow evidence passes, and
 * a nonce spent before still cannot pass twice. A watermark left ahead of the database's clock
 * (by a version before the fix) is seen, and `nonces reset-watermark` lowers it (never raises). */
static void store_nonce_purge_ahead_keeps_live(void **state)
{
    struct db *db = *state;
    uint8_t n5[RP_NONCE_SIZE] = {5}, n6[RP_NONCE_SIZE] = {6}, n7[RP_NONCE_SIZE] = {7},
            n8[RP_NONCE_SIZE] = {8};
    int64_t now = (int64_t)time(NULL), wm = -1, below = 0, ahead = 0, was = 0, epoch = -1,
            epoch_was = -1;
    rp_store_t *fwd;
    char sql[96];

    assert_int_equal(rt_store_open(&db->t, &fwd), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    assert_int_equal(pass_with(db, db->s, "0e11", n5, now + 60), RP_RECORDED_AS_GIVEN);
    /* A, a day ahead */
    assert_int_equal(rp_store_nonces_purge(fwd, now + 86400 - RP_NONCE_PURGE_MARGIN, &wm), RP_OK);
    assert_int_equal(wm, 0);
    /* B, right clock: a new nonce passes; n5 again is a replay */
    assert_int_equal(pass_with(db, db->s, "0e12", n6, now + 60), RP_RECORDED_AS_GIVEN);
    assert_int_equal(pass_with(db, db->s, "0e13", n5, now + 60), RP_RECORDED_AS_REPLAY);
    assert_int_equal(rp_store_nonces_watermark(db->s, &below, &ahead), RP_OK);
    assert_int_equal(below, 0);
    assert_true(ahead < 0);
    /* Nothing to reset: the command changes nothing (not the nonce epoch either) */
    assert_int_equal(rp_store_nonces_watermark_reset(db->s, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(was, 0);
    assert_int_equal(below, 0);
    assert_int_equal(epoch_was, 0);
    assert_int_equal(epoch, 0);

    /* A watermark a day ahead (an older version's purge on a clock a day ahead): M1's outage */
    snprintf(sql, sizeof(sql), "UPDATE spent_nonces_purged SET below = %lld",
             (long long)(now + 86400));
    assert_int_equal(db->s->db->drv->exec(db->s->db, sql), RP_OK);
    assert_int_equal(rp_store_nonces_watermark(fwd, &below, &ahead), RP_OK);
    assert_true(ahead > 86000 && ahead <= 86400);
    assert_int_equal(pass_with(db, db->s, "0e14", n7, now + 60), RP_RECORDED_AS_REPLAY);
    /* The purge keeps it (it only rises); the reset lowers it to the database's clock + 1 */
    assert_int_equal(rp_store_nonces_purge(db->s, now - RP_NONCE_PURGE_MARGIN, &wm), RP_OK);
    assert_int_equal(wm, now + 86400);
    assert_int_equal(rp_store_nonces_watermark_reset(fwd, &was, &below, &epoch_was, &epoch), RP_OK);
    assert_int_equal(was, now + 86400);
    assert_true(below > now && below <= (int64_t)time(NULL) + 1);
    assert_int_equal(epoch_was, 0);
    assert_int_equal(epoch, below - 1); /* the database's clock: above 0 + 1 */
    /* A nonce of the new epoch passes once */
    assert_int_equal(pass_in(db, db->s, "0e15", n8, now + 60, (uint32_t)epoch),
                     RP_RECORDED_AS_GIVEN);
    assert_int_equal(pass_in(db, db->s, "0e16", n8, now + 60, (uint32_t)epoch),
                     RP_RECORDED_AS_REPLAY);
    /* every one of the old epoch is refused, spent (n6) or not */
    assert_int_equal(pass_with(db, db->s, "0e17", n6, now + 60), RP_RECORDED_AS_STALE);
    rp_store_close(fwd);
}

/* Review r10 M1: after a clock ran a day ahead, `nonces reset-watermark` lowers the watermark the
 * stepped clock's purge raised; a nonce that clock issued, spent, and purged (its row deleted)
 * must not pass again, though its expiry now lies above the watermark: the reset raised the nonce
 * epoch, and the spending transaction refuses every nonce of an older one, whichever replica
 * (store handle) spends it, whatever epoch that replica last read. Nonces issued after the reset
 * are judged by the new watermark. */
static void store_nonce_reset_kills_older_epoch(void **state)
{
    struct db *db = *state;
    uint8_t n9[RP_NONCE_SIZE] = {9}, n10[RP_NONCE_SIZE] = {10}, n11[RP_NONCE_SIZE] = {11};
    int64_t now = (int64_t)time(NULL), day_on = now + 86400 + 60, was = 0, below = 0, epoch = -1,
            epoch_was = -1, e1;
    rp_store_t *other;
    char sql[160];

    assert_int_equal(rt_store_open(&db->t, &other), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    assert_int_equal(rp_store_nonces_epoch(other, &epoch), RP_OK);
    assert_int_equal(epoch, 0);
    /* Under the step: n9 (issued by the clock a day ahead) passes once; n10 is issued, unspent */
    assert_int_equal(pass_with(db, db->s, "0e21", n9, day_on), RP_RECORDED_AS_GIVEN);
    assert_int_equal(pass_with(db, db->s, "0e22", n9, day_on), RP_RECORDED_AS_REPLAY);
    /* The stepped clock's purge (on SQLite the database's clock is the stepped host's): n9's row
     * deleted, the watermark at its expiry + 1. (n9 sent again now would be refused by the
     * watermark, and spent again by that refusal: its row back, the replay below refused anyway.
     * The probe of r10 M1 sent nothing between the purge and the reset, nor does this.) */
    snprintf(sql, sizeof(sql),
             "DELETE FROM spent_nonces; UPDATE spent_nonces_purged SET below = %lld",
             (long long)(day_on + 1));
    assert_int_equal(db->s->db->drv->exec(db->s->db, sql), RP_OK);
    /* The clock put right, the reset: watermark to the database's clock + 1, epoch to the clock */
    assert_int_equal(rp_store_nonces_watermark_reset(other, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(was, day_on + 1);
    assert_true(below > now && below <= (int64_t)time(NULL) + 1);
    assert_int_equal(epoch, below - 1);
    e1 = epoch;
    /* n9 captured and replayed, at either replica: refused (it passed before the fix), and not
     * spent (still refused after); n10, issued before the reset and never spent, too */
    assert_int_equal(pass_with(db, db->s, "0e24", n9, day_on), RP_RECORDED_AS_STALE);
    assert_int_equal(pass_with(db, other, "0e25", n9, day_on), RP_RECORDED_AS_STALE);
    assert_int_equal(pass_with(db, db->s, "0e26", n10, now + 60), RP_RECORDED_AS_STALE);
    /* a nonce of the new epoch passes once, at either */
    assert_int_equal(pass_in(db, other, "0e27", n11, now + 60, (uint32_t)e1), RP_RECORDED_AS_GIVEN);
    assert_int_equal(pass_in(db, db->s, "0e28", n11, now + 60, (uint32_t)e1),
                     RP_RECORDED_AS_REPLAY);
    assert_int_equal(rp_store_nonces_epoch(db->s, &epoch), RP_OK);
    assert_int_equal(epoch, e1);
    /* A second reset has nothing to lower: the epoch stays (nonces of it still pass) */
    assert_int_equal(rp_store_nonces_watermark_reset(db->s, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(was, below);
    assert_int_equal(epoch_was, e1);
    assert_int_equal(epoch, e1);
    assert_int_equal(pass_in(db, db->s, "0e29", n10, now + 60, (uint32_t)e1), RP_RECORDED_AS_GIVEN);
    /* A nonce of a later epoch than the database's (one issued before the database was restored
     * from an older backup) is refused too */
    assert_int_equal(pass_in(db, db->s, "0e2a", n9, now + 60, (uint32_t)e1 + 1),
                     RP_RECORDED_AS_STALE);
    rp_store_close(other);
}

/* Set the nonce epoch and the purge watermark (ahead: a day ahead of now; else 0) by hand, as a
 * restore of an older backup or a hand edit would. */
static void nonce_state_set(struct db *db, int64_t epoch, bool ahead)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "UPDATE spent_nonces_purged SET epoch = %lld, below = %lld",
             (long long)epoch, ahead ? (long long)time(NULL) + 86400 : 0LL);
    assert_int_equal(db->s->db->drv->exec(db->s->db, sql), RP_OK);
}

/* Review r11 L2: the nonce epoch never goes back to a value a reset gave out before. The reset
 * sets it to one above it or the database's clock, whichever is greater: after a restore took it
 * back (here to 3), the next reset gives the clock, not 4; an epoch ahead of the clock (a clock
 * stepped back) still rises by one. One beyond a nonce's 4 bytes is set to the clock by the reset
 * even with the watermark not ahead (until then no nonce of any epoch is spent); one at its
 * largest cannot rise: the reset sets it to the clock too (review r12 L2). */
static void store_nonce_epoch_rises_across_restore(void **state)
{
    struct db *db = *state;
    uint8_t n12[RP_NONCE_SIZE] = {12}, n13[RP_NONCE_SIZE] = {13}, n14[RP_NONCE_SIZE] = {14};
    int64_t now = (int64_t)time(NULL), was = 0, below = 0, epoch = -1, epoch_was = -1;

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    /* restored from a backup taken after 3 resets of the version before (epochs 1, 2, 3) */
    nonce_state_set(db, 3, true);
    assert_int_equal(rp_store_nonces_watermark_reset(db->s, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(epoch_was, 3);
    assert_true(epoch >= now && epoch <= (int64_t)time(NULL));
    assert_int_equal(pass_in(db, db->s, "0e31", n12, now + 60, 4), RP_RECORDED_AS_STALE);
    /* an epoch ahead of the database's clock: one above it */
    nonce_state_set(db, now + 1000, true);
    assert_int_equal(rp_store_nonces_watermark_reset(db->s, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(epoch, now + 1001);
    /* beyond 4 bytes, the watermark not ahead: no nonce passes; the reset sets it to the clock,
     * the watermark left as it was */
    nonce_state_set(db, (int64_t)RP_NONCE_EPOCH_MAX + 1, false);
    assert_int_equal(pass_in(db, db->s, "0e32", n12, now + 60, 0), RP_RECORDED_AS_STALE);
    assert_int_equal(rp_store_nonces_watermark_reset(db->s, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(epoch_was, (int64_t)RP_NONCE_EPOCH_MAX + 1);
    assert_true(epoch >= now && epoch <= (int64_t)time(NULL));
    assert_int_equal(was, 0);
    assert_int_equal(below, 0);
    assert_int_equal(pass_in(db, db->s, "0e33", n12, now + 60, (uint32_t)epoch),
                     RP_RECORDED_AS_GIVEN);
    /* negative (a hand edit): the same */
    nonce_state_set(db, -1, false);
    assert_int_equal(rp_store_nonces_watermark_reset(db->s, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(epoch_was, -1);
    assert_true(epoch >= now && epoch <= (int64_t)time(NULL));
    /* Review r12 L2: near its largest, the watermark ahead: it rises to the largest; there it
     * cannot rise, so the next reset sets it to the clock (it failed, leaving the watermark a day
     * ahead: every nonce refused until then); at its largest with the watermark not ahead, it is
     * an epoch nonces carry: nothing changes */
    nonce_state_set(db, (int64_t)RP_NONCE_EPOCH_MAX - 1, true);
    assert_int_equal(rp_store_nonces_watermark_reset(db->s, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(epoch, RP_NONCE_EPOCH_MAX);
    nonce_state_set(db, RP_NONCE_EPOCH_MAX, false);
    assert_int_equal(rp_store_nonces_watermark_reset(db->s, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(epoch, RP_NONCE_EPOCH_MAX);
    assert_int_equal(pass_in(db, db->s, "0e34", n13, now + 60, RP_NONCE_EPOCH_MAX),
                     RP_RECORDED_AS_GIVEN);
    nonce_state_set(db, RP_NONCE_EPOCH_MAX, true);
    assert_int_equal(rp_store_nonces_watermark_reset(db->s, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(epoch_was, RP_NONCE_EPOCH_MAX);
    assert_true(epoch >= now && epoch <= (int64_t)time(NULL));
    assert_true(below > now && below <= (int64_t)time(NULL) + 1);
    assert_int_equal(rp_store_nonces_epoch(db->s, &was), RP_OK);
    assert_int_equal(was, epoch);
    assert_int_equal(pass_in(db, db->s, "0e35", n13, now + 60, RP_NONCE_EPOCH_MAX),
                     RP_RECORDED_AS_STALE);
    assert_int_equal(pass_in(db, db->s, "0e36", n14, now + 60, (uint32_t)epoch),
                     RP_RECORDED_AS_GIVEN);
    /* Review r15ops H1: after a restore (`rampart-server restored`), the epoch rises though the
     * watermark is not ahead and the epoch fits (where the reset changes nothing): a nonce of the
     * epoch before is stale */
    nonce_state_set(db, now, false);
    assert_int_equal(rp_store_nonces_watermark_reset(db->s, &was, &below, &epoch_was, &epoch),
                     RP_OK);
    assert_int_equal(epoch, now);
    assert_int_equal(rp_store_nonces_restored(db->s, &was, &below, &epoch_was, &epoch), RP_OK);
    assert_int_equal(epoch_was, now);
    assert_true(epoch > now && epoch <= (int64_t)time(NULL) + 1);
    assert_int_equal(pass_in(db, db->s, "0e37", n12, now + 60, (uint32_t)now),
                     RP_RECORDED_AS_STALE);
}

/* Review r8 M3: a proven failure of a claimed device revokes its certificates and moves its
 * tenant's CRL number in the verdict's transaction; a failure that does not revoke (unproven,
 * or a refusal that is an operator's action) leaves them; the next pass issues one again. */
static void store_proven_failure_revokes(void **state)
{
    struct db *db = *state;
    rp_cert_record_t c1 = cert_for(db, dev1, "0f01"), c2 = cert_for(db, dev1, "0f02"),
                     c3 = cert_for(db, dev2, "0f03"), got;
    rp_attestation_t a;
    rp_attestation_write_t w;
    rp_device_t d;
    int64_t v0 = 0, v1 = 0;
    rp_ca_record_t ca = {.cert_pem = "", .key_pem_enc = "", .not_after = 0};

    snprintf(ca.tenant_id, sizeof(ca.tenant_id), "%s", db->tenant.id);
    assert_int_equal(rp_store_ca_put(db->s, &ca), RP_OK); /* its CRL's number */
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev2, 1000), RP_OK);
    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &c1, NULL);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    fill(&a, dev2, db->tenant.id, true);
    w = write_of(&a, &c3, NULL);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(rp_store_crl_version(db->s, db->tenant.id, &v0), RP_OK);
    /* a failure that does not revoke */
    fill(&a, dev1, db->tenant.id, false);
    w = write_of(&a, NULL, NULL);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(rp_store_cert_get(db->s, "0f01", &got), RP_OK);
    assert_int_equal(got.revoked_at, 0);
    /* a proven one */
    fill(&a, dev1, db->tenant.id, false);
    snprintf(a.reason, sizeof(a.reason), "debug_enabled");
    a.at = 1200;
    w = write_of(&a, NULL, NULL);
    w.revokes = true;
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(rp_store_cert_get(db->s, "0f01", &got), RP_OK);
    assert_int_equal(got.revoked_at, 1200);
    assert_int_equal(got.revoked_for, RP_REVOKED_FAILED); /* its recovery routes stay open */
    assert_int_equal(rp_store_cert_get(db->s, "0f03", &got), RP_OK); /* another device's */
    assert_int_equal(got.revoked_at, 0);
    assert_int_equal(rp_store_crl_version(db->s, db->tenant.id, &v1), RP_OK);
    assert_int_equal(v1, v0 + 1);
    assert_int_equal(rp_store_device_get(db->s, dev1, &d), RP_OK);
    assert_false(d.last_passed);
    assert_string_equal(d.last_reason, "debug_enabled");
    assert_string_equal(d.cert_serial, "");
    /* again: nothing more to revoke, the CRL stays as it is */
    a.at = 1300;
    w = write_of(&a, NULL, NULL);
    w.revokes = true;
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(rp_store_crl_version(db->s, db->tenant.id, &v1), RP_OK);
    assert_int_equal(v1, v0 + 1);
    /* the next pass: a certificate again */
    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &c2, NULL);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(rp_store_device_get(db->s, dev1, &d), RP_OK);
    assert_true(d.last_passed);
    assert_string_equal(d.cert_serial, "0f02");
    assert_int_equal(rp_store_cert_get(db->s, "0f02", &got), RP_OK);
    assert_int_equal(got.revoked_at, 0);
    /* a block's revocation is not a failure's (the recovery routes refuse it); the one revoked
     * before keeps its cause */
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, dev1, 1400), RP_OK);
    assert_int_equal(rp_store_cert_get(db->s, "0f02", &got), RP_OK);
    assert_int_equal(got.revoked_at, 1400);
    assert_int_equal(got.revoked_for, RP_REVOKED_OTHER);
    assert_int_equal(rp_store_cert_get(db->s, "0f01", &got), RP_OK);
    assert_int_equal(got.revoked_at, 1200);
    assert_int_equal(got.revoked_for, RP_REVOKED_FAILED);
}

/* A claimed device of the tenant whose attestation passed, with certificate c. */
static void claimed_passed(struct db *db, const char *device, rp_cert_record_t *c)
{
    rp_attestation_t a;
    rp_attestation_write_t w;

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, device, 1000), RP_OK);
    fill(&a, device, db->tenant.id, true);
    w = write_of(&a, c, NULL);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
}

/* Review r10 L3: what a block's or a quarantine's revocation says changes when the device is
 * left with neither bar (LIFTED: a later proven failure is then its only bar, as if it had come
 * first); not while the other bar still holds; a failure's keeps its cause; nothing is unrevoked
 * and the CRL stays as it is. */
static void store_bars_lifted_relabel(void **state)
{
    struct db *db = *state;
    rp_cert_record_t c1 = cert_for(db, dev1, "0f11"), c2 = cert_for(db, dev1, "0f12"), got;
    rp_quarantine_policy_t qp = {.enabled = true, .threshold = 1, .window = 3600, .nkinds = 1};
    rp_attestation_t a;
    rp_attestation_write_t w;
    int64_t v0 = 0, v1 = 0;
    bool quarantined = false;
    rp_ca_record_t ca = {.cert_pem = "", .key_pem_enc = "", .not_after = 0};

    snprintf(ca.tenant_id, sizeof(ca.tenant_id), "%s", db->tenant.id);
    assert_int_equal(rp_store_ca_put(db->s, &ca), RP_OK);
    claimed_passed(db, dev1, &c1);
    /* blocked, then quarantined too: unblocked, the quarantine still holds */
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, dev1, 1100), RP_OK);
    snprintf(qp.kinds[0], sizeof(qp.kinds[0]), "app_crash");
    assert_int_equal(rp_store_quarantine_signal(db->s, db->tenant.id, dev1, "app_crash", "x", &qp,
                                                1150, &quarantined),
                     RP_OK);
    assert_true(quarantined);
    assert_int_equal(rp_store_device_unblock(db->s, db->tenant.id, dev1), RP_OK);
    assert_int_equal(rp_store_cert_get(db->s, "0f11", &got), RP_OK);
    assert_int_equal(got.revoked_at, 1100);
    assert_int_equal(got.revoked_for, RP_REVOKED_OTHER);
    assert_int_equal(rp_store_crl_version(db->s, db->tenant.id, &v0), RP_OK);
    /* released: neither bar is left */
    assert_int_equal(rp_store_device_release(db->s, db->tenant.id, dev1, "test", "ok", 1200),
                     RP_OK);
    assert_int_equal(rp_store_cert_get(db->s, "0f11", &got), RP_OK);
    assert_int_equal(got.revoked_at, 1100);
    assert_int_equal(got.revoked_for, RP_REVOKED_LIFTED);
    assert_int_equal(rp_store_crl_version(db->s, db->tenant.id, &v1), RP_OK);
    assert_int_equal(v1, v0);
    /* passed again, then a proven failure, then blocked and unblocked: the failure's cause stays */
    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &c2, NULL);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    fill(&a, dev1, db->tenant.id, false);
    a.at = 1300;
    w = write_of(&a, NULL, NULL);
    w.revokes = true;
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, dev1, 1400), RP_OK);
    assert_int_equal(rp_store_device_unblock(db->s, db->tenant.id, dev1), RP_OK);
    assert_int_equal(rp_store_cert_get(db->s, "0f12", &got), RP_OK);
    assert_int_equal(got.revoked_at, 1300);
    assert_int_equal(got.revoked_for, RP_REVOKED_FAILED);
}

/* Schema 35 undone, then 34, 33 (and 32, a no-op), then 31, then 30, then 29 (test_server's
 * migration tests take a file back further: UNDO_28). 35's made_by is a foreign key, which SQLite
 * drops only with its table: tokens are made again as they were (in both engines' SQL). */
#define UNDO_35                                                                                    \
    "CREATE TABLE tokens_undo (id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"                    \
    " tenant_id TEXT REFERENCES tenants(id), role INTEGER NOT NULL, created INTEGER NOT NULL,"     \
    " expires INTEGER, last_used INTEGER);"                                                        \
    "INSERT INTO tokens_undo SELECT id, hash, tenant_id, role, created, expires, last_used"        \
    " FROM tokens;"                                                                                \
    "DROP TABLE tokens; ALTER TABLE tokens_undo RENAME TO tokens;"                                 \
    "DELETE FROM schema_version WHERE version = 35;"
#define UNDO_34 UNDO_35 "DROP TABLE master_check; DELETE FROM schema_version WHERE version = 34;"
#define UNDO_33                                                                                    \
    UNDO_34 "DROP TABLE backups_taken; DROP TABLE restore_generation;"                             \
            "DELETE FROM schema_version WHERE version = 33;"
#define UNDO_32 UNDO_33 "DELETE FROM schema_version WHERE version = 32;"
#define UNDO_31                                                                                    \
    UNDO_32 "ALTER TABLE certificates DROP COLUMN reissued;"                                       \
            "DELETE FROM schema_version WHERE version = 31;"
#define UNDO_30                                                                                    \
    UNDO_31 "ALTER TABLE spent_nonces_purged DROP COLUMN epoch;"                                   \
            "DELETE FROM schema_version WHERE version = 30;"
#define UNDO_29                                                                                    \
    UNDO_30 "ALTER TABLE threat_devices DROP COLUMN failed;"                                       \
            "ALTER TABLE threat_counts DROP COLUMN failed_devices;"                                \
            "ALTER TABLE threat_alerts DROP COLUMN failed_devices;"                                \
            "ALTER TABLE crash_buckets DROP COLUMN failed_count;"                                  \
            "DELETE FROM schema_version WHERE version = 29;"

/* Migration 29 marks what was revoked for a bar already lifted when it runs (a device released
 * before it), and only that. */
static void store_migration_29_lifts(void **state)
{
    struct db *db = *state;
    rp_cert_record_t c1 = cert_for(db, dev1, "0f21"), c2 = cert_for(db, dev2, "0f22"), got;
    rp_store_t *again;

    claimed_passed(db, dev1, &c1);
    claimed_passed(db, dev2, &c2);
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, dev1, 1100), RP_OK);
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, dev2, 1100), RP_OK);
    assert_int_equal(rp_store_device_unblock(db->s, db->tenant.id, dev1), RP_OK);
    /* as a version before 29 left it: dev1 unblocked, its certificate still OTHER */
    assert_int_equal(
        db->s->db->drv->exec(db->s->db, "UPDATE certificates SET revoked_for = 0;" UNDO_29), RP_OK);
    assert_int_equal(rt_store_open(&db->t, &again), RP_OK);
    assert_int_equal(rp_store_schema_version(again), 35);
    assert_int_equal(rp_store_cert_get(again, "0f21", &got), RP_OK);
    assert_int_equal(got.revoked_for, RP_REVOKED_LIFTED);
    assert_int_equal(rp_store_cert_get(again, "0f22", &got), RP_OK); /* still blocked */
    assert_int_equal(got.revoked_at, 1100);
    assert_int_equal(got.revoked_for, RP_REVOKED_OTHER);
    rp_store_close(again);
}

static void count_revoked(void *ctx, const rp_cert_record_t *c)
{
    struct seen *s = ctx;

    if (s->n < 8)
        snprintf(s->reasons[s->n], sizeof(s->reasons[0]), "%s", c->serial);
    s->n++;
}

/* The fleet's counts by state (the console's fleet page) and a CRL's input, on both engines: one
 * device passed then blocked (its certificate revoked), one failed, one never seen, one passed. */
static void store_fleet_counts_and_revoked(void **state)
{
    static const char dev3[] = "3333333333333333333333333333333333333333333333333333333333333333";
    static const char dev4[] = "4444444444444444444444444444444444444444444444444444444444444444";
    struct db *db = *state;
    int64_t now = (int64_t)time(NULL);
    rp_cert_record_t c1 = cert_for(db, dev1, "c1"), c4 = cert_for(db, dev4, "c4");
    rp_attestation_t a[3];
    rp_attestation_write_t w[3];
    rp_fleet_counts_t n;
    struct seen revoked = {0};

    c1.not_before = c4.not_before = now;
    c1.not_after = c4.not_after = now + 86400;
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, now), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev2, now), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev3, now), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev4, now), RP_OK);
    fill(&a[0], dev1, db->tenant.id, true);
    w[0] = write_of(&a[0], &c1, NULL);
    fill(&a[1], dev2, db->tenant.id, false);
    w[1] = write_of(&a[1], NULL, NULL);
    fill(&a[2], dev4, db->tenant.id, true);
    w[2] = write_of(&a[2], &c4, NULL);
    assert_int_equal(rp_store_attestations_record(db->s, w, 3), RP_OK);
    assert_int_equal(rp_store_revoked_list(db->s, db->tenant.id, count_revoked, &revoked), RP_OK);
    assert_int_equal(revoked.n, 0);
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, dev1, now), RP_OK);

    assert_int_equal(rp_store_fleet_counts(db->s, db->tenant.id, now, &n), RP_OK);
    assert_int_equal(n.total, 4);
    assert_int_equal(n.attested, 1); /* dev4: dev1 passed but is blocked */
    assert_int_equal(n.failed, 1);
    assert_int_equal(n.blocked, 1);
    assert_int_equal(n.quarantined, 0);
    assert_int_equal(n.never_seen, 1);
    assert_int_equal(n.cert_expiring, 0);
    assert_int_equal(rp_store_revoked_list(db->s, db->tenant.id, count_revoked, &revoked), RP_OK);
    assert_int_equal(revoked.n, 1);
    assert_string_equal(revoked.reasons[0], "c1");
}

/* Failures that prove nothing about a device (a bad signature, a bad nonce) leave its record as it
 * was: its last attestation and its history. They are counted per source address, in a table
 * that keeps RP_UNPROVEN_SOURCES_MAX addresses, the least recently seen dropped first. */
static void store_unproven_failures_apart(void **state)
{
    struct db *db = *state;
    uint8_t n[RP_NONCE_SIZE] = {5};
    rp_cert_record_t cert = cert_for(db, dev1, "5a");
    rp_attestation_t a;
    rp_attestation_write_t w, *many;
    struct seen seen = {0};
    struct sources got = {0};
    char(*addr)[RP_ADDRESS_MAX];
    rp_device_t d;
    int64_t passed_id;
    enum { EXTRA = 7 };

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &cert, n);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    passed_id = a.id;
    for (int i = 0; i < 3; i++) {
        fill(&a, dev1, db->tenant.id, false);
        snprintf(a.reason, sizeof(a.reason), "%s", i < 2 ? "bad_signature" : "nonce_unknown");
        a.at = 1100 + i;
        w = write_of(&a, NULL, NULL);
        w.unproven = true;
        w.source = "198.51.100.1";
        assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    }
    assert_int_equal(rp_store_device_get(db->s, dev1, &d), RP_OK);
    assert_true(d.last_passed);
    assert_string_equal(d.last_reason, "pass");
    assert_string_equal(d.cert_serial, "5a");
    assert_int_equal(rp_store_attestation_list(db->s, db->tenant.id, dev1, 10, collect, &seen),
                     RP_OK);
    assert_int_equal(seen.n, 1);
    (void)passed_id;
    assert_int_equal(rp_store_unproven_list(db->s, 10, collect_source, &got), RP_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.first.address, "198.51.100.1");
    assert_int_equal(got.first.count, 3);
    assert_int_equal(got.first.first_at, 1100);
    assert_int_equal(got.first.last_at, 1102);
    assert_string_equal(got.first.last_reason, "nonce_unknown");
    assert_string_equal(got.first.last_device_id, dev1);

    /* The table is bounded: past the cap, the least recently seen sources go. */
    many = calloc(RP_UNPROVEN_SOURCES_MAX + EXTRA, sizeof(*many));
    addr = calloc(RP_UNPROVEN_SOURCES_MAX + EXTRA, sizeof(*addr));
    assert_non_null(many);
    assert_non_null(addr);
    fill(&a, dev2, "", false);
    snprintf(a.reason, sizeof(a.reason), "bad_signature");
    a.at = 2000;
    for (int i = 0; i < RP_UNPROVEN_SOURCES_MAX + EXTRA; i++) {
        snprintf(addr[i], sizeof(addr[i]), "2001:db8::%x", i);
        many[i] = write_of(&a, NULL, NULL);
        many[i].unproven = true;
        many[i].source = addr[i];
    }
    for (size_t i = 0; i < RP_UNPROVEN_SOURCES_MAX + EXTRA; i += RP_RECORDER_BATCH_MAX) {
        size_t k = RP_UNPROVEN_SOURCES_MAX + EXTRA - i;
        assert_int_equal(
            rp_store_attestations_record(db->s, many + i,
                                         k < RP_RECORDER_BATCH_MAX ? k : RP_RECORDER_BATCH_MAX),
            RP_OK);
    }
    memset(&got, 0, sizeof(got));
    assert_int_equal(
        rp_store_unproven_list(db->s, 2 * RP_UNPROVEN_SOURCES_MAX, collect_source, &got), RP_OK);
    assert_int_equal(got.n, RP_UNPROVEN_SOURCES_MAX);
    assert_int_equal(got.last.last_at, 2000); /* the oldest, 198.51.100.1, went first */
    free(many);
    free(addr);
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

/* EST's renewal records a certificate only for a device that, in that transaction, is claimed by
 * the tenant, not blocked, holds the renewed certificate unrevoked and passed an attestation
 * recently; each refusal records nothing. */
static void store_reissue_checks(void **state)
{
    struct db *db = *state;
    uint8_t n[RP_NONCE_SIZE] = {9};
    rp_cert_record_t old = cert_for(db, dev1, "01"), c, got;
    rp_attestation_t a;
    rp_attestation_write_t w;
    rp_reissue_t out;
    int64_t retry;
    rp_tenant_t other;

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    c = cert_for(db, dev1, "02");
    /* never attested, and the renewed certificate does not exist */
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "01", 0, 0, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_NOT_CURRENT);
    fill(&a, dev1, db->tenant.id, true);
    w = write_of(&a, &old, n);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    /* an attestation older than asked for */
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "01", a.at + 1, 0, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_ATTESTATION_REQUIRED);
    /* another tenant's certificate, another device's */
    assert_int_equal(rp_store_tenant_create(db->s, "other", &other), RP_OK);
    snprintf(c.tenant_id, sizeof(c.tenant_id), "%s", other.id);
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "01", a.at, 0, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_BLOCKED);
    c = cert_for(db, dev2, "02");
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev2, 1000), RP_OK);
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "01", 0, 0, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_NOT_CURRENT);
    assert_int_equal(rp_store_cert_get(db->s, "02", &got), RP_ERR_NOT_FOUND);
    /* and the one that may */
    c = cert_for(db, dev1, "02");
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "01", a.at, 0, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_DONE);
    assert_int_equal(rp_store_cert_get(db->s, "02", &got), RP_OK);
    /* blocked: refused, and the old certificate is revoked anyway */
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, dev1, 2000), RP_OK);
    c = cert_for(db, dev1, "03");
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "02", a.at, 0, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_BLOCKED);
    assert_int_equal(rp_store_cert_get(db->s, "03", &got), RP_ERR_NOT_FOUND);
}

/* Racers: n threads, each on a connection of its own (a replica's), let go together once every
 * connection is open (a state, not a time), each running fn(s, its number, arg); fn answers false
 * when it failed. The scaffold of the races below. */
#define RACERS_MAX 8
typedef bool (*racer_fn)(rp_store_t *s, int id, void *arg);
struct racers {
    const struct db *db;
    racer_fn fn;
    void *arg;
    int n;
    atomic_int ready;
    atomic_bool failed;
};
struct racer {
    struct racers *rs;
    int id;
};

static void *racer_main(void *p)
{
    struct racer *me = p;
    struct racers *rs = me->rs;
    rp_store_t *s = NULL;

    if (rt_store_open(&rs->db->t, &s) != RP_OK)
        atomic_store(&rs->failed, true);
    atomic_fetch_add(&rs->ready, 1);
    while (atomic_load(&rs->ready) < rs->n)
        sched_yield();
    if (s != NULL && !rs->fn(s, me->id, rs->arg))
        atomic_store(&rs->failed, true);
    if (s != NULL)
        rp_store_close(s);
    return NULL;
}

/* Run n racers to their end: true when none failed. */
static bool race_run(const struct db *db, int n, racer_fn fn, void *arg)
{
    struct racers rs = {.db = db, .fn = fn, .arg = arg, .n = n};
    struct racer me[RACERS_MAX];
    pthread_t t[RACERS_MAX];

    assert_true(n > 0 && n <= RACERS_MAX);
    for (int i = 0; i < n; i++) {
        me[i] = (struct racer){&rs, i};
        assert_int_equal(pthread_create(&t[i], NULL, racer_main, &me[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return !atomic_load(&rs.failed);
}

/* The race of finding 1: renewals on several connections while another blocks the device (racer
 * number `renewers`). */
struct race {
    const struct db *db;
    char device[RP_DEVICE_ID_SIZE];
    char first[RP_SERIAL_SIZE]; /* the certificate every renewal renews */
    int round, renewers;
    int64_t attested_at;
    atomic_int issued;
    atomic_bool blocked;
};

static bool renew_loop(rp_store_t *s, int id, struct race *r)
{
    /* Renew until refused: the block has landed. */
    for (int i = 0; i < 100000; i++) {
        rp_cert_record_t c = cert_for(r->db, r->device, "");
        rp_reissue_t out;
        int64_t retry;
        snprintf(c.serial, sizeof(c.serial), "%04x%02x%06x", r->round, id + 1, i);
        if (rp_store_cert_reissue(s, &c, r->first, r->attested_at, 0, &out, &retry) != RP_OK)
            return false;
        if (out != RP_REISSUE_DONE)
            break;
        atomic_fetch_add(&r->issued, 1);
    }
    return true;
}

static bool block_when_renewing(rp_store_t *s, struct race *r)
{
    struct timespec start, now;
    bool ok;

    /* Block once renewals are under way (waiting for that state, bounded). */
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (atomic_load(&r->issued) < 2 && now.tv_sec - start.tv_sec < 30);
    ok = rp_store_device_block(s, r->db->tenant.id, r->device, 5000) == RP_OK;
    atomic_store(&r->blocked, true);
    return ok;
}

static bool renew_or_block(rp_store_t *s, int id, void *arg)
{
    struct race *r = arg;

    return id == r->renewers ? block_when_renewing(s, r) : renew_loop(s, id, r);
}

static void store_reissue_races_with_block(void **state)
{
    enum { ROUNDS = 12, RENEWERS = 4 };
    struct db *db = *state;

    for (int round = 0; round < ROUNDS; round++) {
        struct race r = {.db = db, .round = round, .renewers = RENEWERS};
        uint8_t n[RP_NONCE_SIZE] = {0x40, (uint8_t)round};
        rp_attestation_t a;
        rp_attestation_write_t w;
        rp_cert_record_t first;
        rp_device_t d;

        snprintf(r.device, sizeof(r.device), "%064x", 0xd000 + round);
        assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, r.device, 1000), RP_OK);
        snprintf(r.first, sizeof(r.first), "%04x00", round);
        first = cert_for(db, r.device, r.first);
        fill(&a, r.device, db->tenant.id, true);
        w = write_of(&a, &first, n);
        assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
        assert_int_equal(w.as, RP_RECORDED_AS_GIVEN);
        r.attested_at = a.at;

        assert_true(race_run(db, RENEWERS + 1, renew_or_block, &r));
        assert_true(atomic_load(&r.blocked));
        assert_true(atomic_load(&r.issued) >= 2);
        /* Blocked: no certificate of the device is left unrevoked. */
        assert_int_equal(rp_store_device_get(db->s, r.device, &d), RP_OK);
        assert_true(d.blocked);
        assert_string_equal(d.cert_serial, "");
    }
}

/* A device's first certificate, by attestation, for the limit's tests: OUT *attested_at. */
static void attested_device(struct db *db, const char *device, const char *serial,
                            uint8_t nonce_byte, int64_t *attested_at)
{
    uint8_t n[RP_NONCE_SIZE] = {0x50, nonce_byte};
    rp_cert_record_t first = cert_for(db, device, serial);
    rp_attestation_t a;
    rp_attestation_write_t w;

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, device, 1000), RP_OK);
    fill(&a, device, db->tenant.id, true);
    w = write_of(&a, &first, n);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(w.as, RP_RECORDED_AS_GIVEN);
    *attested_at = a.at;
}

/* --reenroll-per-hour counted in the transaction that records a re-enrollment: per_hour of them
 * started within an hour before the next are refused (RP_REISSUE_LIMITED, nothing recorded,
 * Retry-After until the oldest leaves the hour); certificates issued by attestation are not
 * counted; 0 lifts it; another device has its own. */
static void store_reissue_limit(void **state)
{
    struct db *db = *state;
    rp_cert_record_t c, got;
    rp_reissue_t out;
    int64_t at, at2, retry;
    char serial[RP_SERIAL_SIZE];

    attested_device(db, dev1, "a0", 1, &at);
    for (int i = 0; i < 3; i++) { /* the attestation's certificate "a0" is not one of them */
        snprintf(serial, sizeof(serial), "a%d", i + 1);
        c = cert_for(db, dev1, serial);
        c.not_before = 10000 + 100 * i;
        assert_int_equal(rp_store_cert_reissue(db->s, &c, "a0", at, 3, &out, &retry), RP_OK);
        assert_int_equal(out, RP_REISSUE_DONE);
    }
    c = cert_for(db, dev1, "a4");
    c.not_before = 10300;
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "a0", at, 3, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_LIMITED);
    assert_int_equal(retry, 10000 + RP_REISSUE_WINDOW - 10300); /* when "a1" leaves the hour */
    assert_int_equal(rp_store_cert_get(db->s, "a4", &got), RP_ERR_NOT_FOUND);
    /* a larger limit, or none, lets it pass */
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "a0", at, 4, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_DONE);
    c = cert_for(db, dev1, "a5");
    c.not_before = 10300;
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "a0", at, 0, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_DONE);
    /* an hour after the first: "a1" left the window, four are in it (a2, a3, a4, a5) */
    c = cert_for(db, dev1, "a6");
    c.not_before = 10000 + RP_REISSUE_WINDOW;
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "a0", at, 5, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_DONE);
    c = cert_for(db, dev1, "a7");
    c.not_before = 10000 + RP_REISSUE_WINDOW;
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "a0", at, 5, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_LIMITED);
    assert_int_equal(retry, 100); /* "a2" leaves it in 100 s */
    /* another device: its own count */
    attested_device(db, dev2, "b0", 2, &at2);
    c = cert_for(db, dev2, "b1");
    c.not_before = 10300;
    assert_int_equal(rp_store_cert_reissue(db->s, &c, "b0", at2, 1, &out, &retry), RP_OK);
    assert_int_equal(out, RP_REISSUE_DONE);
}

/* Two replicas re-enrolling one device at once for its last slot: each renewer below is its own
 * connection (a replica's), all racing; the count and the insert take turns under the write
 * lock, so exactly the limit passes, never more. */
struct limit_race {
    const struct db *db;
    const char *device;
    int64_t attested_at;
    int round;
    atomic_int done, limited;
};

static bool limit_renew(rp_store_t *s, int id, void *arg)
{
    enum { TRIES = 3 };
    struct limit_race *r = arg;

    for (int i = 0; i < TRIES; i++) {
        rp_cert_record_t c = cert_for(r->db, r->device, "");
        rp_reissue_t out;
        int64_t retry;

        snprintf(c.serial, sizeof(c.serial), "c%02x%02x%02x", r->round, id, i);
        c.not_before = 20000 + 3600 * r->round;
        if (rp_store_cert_reissue(s, &c, "c0", r->attested_at, 2, &out, &retry) != RP_OK)
            return false;
        if (out == RP_REISSUE_DONE)
            atomic_fetch_add(&r->done, 1);
        else if (out == RP_REISSUE_LIMITED)
            atomic_fetch_add(&r->limited, 1);
        else
            return false;
    }
    return true;
}

static void store_reissue_limit_races(void **state)
{
    enum { ROUNDS = 4, RENEWERS = 4 };
    struct db *db = *state;
    int64_t at;

    attested_device(db, dev1, "c0", 3, &at);
    for (int round = 0; round < ROUNDS; round++) { /* each an hour after the last */
        struct limit_race r = {.db = db, .device = dev1, .attested_at = at, .round = round};

        assert_true(race_run(db, RENEWERS, limit_renew, &r));
        assert_int_equal(atomic_load(&r.done), 2);
        assert_int_equal(atomic_load(&r.limited), RENEWERS * 3 - 2);
    }
}

/* Review r15web M5: two admins change two fields of one tenant's settings at once, each on a
 * connection of its own (a replica's): the later reads the earlier's change, none is lost. The
 * first edit to start waits (at most 100 ms) for the other to start its own: read outside the
 * write lock, both would edit the same settings and the later write undo the earlier's change
 * (13 of 100 were lost so over HTTP); inside it, the other waits for this one to commit. */
struct settings_race {
    const struct db *db;
    rp_settings_kind_t kind;
    atomic_int editing; /* edits started */
};
struct settings_racer {
    struct settings_race *r;
    int id;
};

static rp_err_t settings_race_edit(void *ctx, rp_settings_t *v)
{
    struct settings_racer *me = ctx;
    struct timespec start, now;

    atomic_fetch_add(&me->r->editing, 1);
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (atomic_load(&me->r->editing) < 2 &&
             (now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) <
                 100000000L);
    switch (me->r->kind) {
    case RP_SETTINGS_POLICY:
        if (me->id == 0)
            v->policy.allow_debug = false;
        else
            v->policy.require_components = true;
        break;
    case RP_SETTINGS_THREAT:
        if (me->id == 0)
            v->threat.factor = 7;
        else
            v->threat.floor = 9;
        break;
    default:
        if (me->id == 0)
            v->quarantine.threshold = 11;
        else
            v->quarantine.window = 120;
        break;
    }
    return RP_OK;
}

static bool settings_racer(rp_store_t *s, int id, void *arg)
{
    struct settings_racer me = {arg, id};
    rp_settings_t out;

    return rp_store_settings_edit(s, me.r->db->tenant.id, me.r->kind, settings_race_edit, &me,
                                  &out) == RP_OK;
}

static void store_settings_edits_race(void **state)
{
    enum { ROUNDS = 2 };
    struct db *db = *state;
    rp_policy_t p;
    rp_threat_settings_t t;
    rp_quarantine_policy_t q;

    for (int round = 0; round < ROUNDS; round++) {
        struct settings_race r = {.db = db};

        p = RP_POLICY_DEFAULT;
        p.allow_debug = true, p.require_components = false;
        assert_int_equal(rp_store_policy_set(db->s, db->tenant.id, &p), RP_OK);
        r.kind = RP_SETTINGS_POLICY;
        assert_true(race_run(db, 2, settings_racer, &r));
        assert_int_equal(rp_store_policy_get(db->s, db->tenant.id, &p), RP_OK);
        assert_false(p.allow_debug);
        assert_true(p.require_components);

        t = RP_THREAT_SETTINGS_DEFAULT;
        assert_int_equal(rp_store_threat_settings_set(db->s, db->tenant.id, &t), RP_OK);
        r.kind = RP_SETTINGS_THREAT;
        atomic_store(&r.editing, 0);
        assert_true(race_run(db, 2, settings_racer, &r));
        assert_int_equal(rp_store_threat_settings_get(db->s, db->tenant.id, &t), RP_OK);
        assert_int_equal(t.factor, 7);
        assert_int_equal(t.floor, 9);

        assert_int_equal(rp_store_quarantine_policy_get(db->s, db->tenant.id, &q), RP_OK);
        q.threshold = 5, q.window = 3600;
        assert_int_equal(rp_store_quarantine_policy_set(db->s, db->tenant.id, &q), RP_OK);
        r.kind = RP_SETTINGS_QUARANTINE;
        atomic_store(&r.editing, 0);
        assert_true(race_run(db, 2, settings_racer, &r));
        assert_int_equal(rp_store_quarantine_policy_get(db->s, db->tenant.id, &q), RP_OK);
        assert_int_equal(q.threshold, 11);
        assert_int_equal(q.window, 120);
    }
}

/* An edit that answers anything but RP_OK writes nothing. */
static rp_err_t settings_edit_refused(void *ctx, rp_settings_t *v)
{
    (void)ctx;
    v->policy.allow_debug = true;
    return RP_ERR_INVALID_ARG;
}

static void store_settings_edit_refused(void **state)
{
    struct db *db = *state;
    rp_settings_t out;
    rp_policy_t p;

    assert_int_equal(rp_store_settings_edit(db->s, db->tenant.id, RP_SETTINGS_POLICY,
                                            settings_edit_refused, NULL, &out),
                     RP_ERR_INVALID_ARG);
    assert_int_equal(rp_store_policy_get(db->s, db->tenant.id, &p), RP_OK);
    assert_false(p.allow_debug);
    assert_int_equal(p.updated, 0);
}

static void count_tokens(void *ctx, const rp_token_t *t)
{
    (void)t;
    (*(int *)ctx)++;
}

/* Tokens: expiry and last use kept, revocation within its scope only, one first system token
 * however often it is asked for, and rotation leaving exactly one. */
static void store_tokens(void **state)
{
    struct db *db = *state;
    uint8_t h1[RP_SHA256_LEN] = {1}, h2[RP_SHA256_LEN] = {2}, h3[RP_SHA256_LEN] = {3},
            h4[RP_SHA256_LEN] = {4};
    rp_token_t t, sys, got;
    bool made = true;
    int n = 0, revoked = -1;

    assert_int_equal(rp_store_token_add(db->s, db->tenant.id, RP_ROLE_READER, h1, 5000, NULL, &t),
                     RP_OK);
    assert_int_equal(rp_store_token_used(db->s, t.id, 4000), RP_OK);
    assert_int_equal(rp_store_token_lookup(db->s, h1, &got), RP_OK);
    assert_string_equal(got.id, t.id);
    assert_int_equal(got.expires, 5000);
    assert_int_equal(got.last_used, 4000);
    /* not a system token, so not revoked as one */
    assert_int_equal(rp_store_token_revoke(db->s, NULL, t.id), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_token_revoke(db->s, "t_other", t.id), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_token_revoke(db->s, db->tenant.id, t.id), RP_OK);
    assert_int_equal(rp_store_token_lookup(db->s, h1, &got), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_token_revoke(db->s, db->tenant.id, t.id), RP_ERR_NOT_FOUND);

    assert_int_equal(rp_store_system_token_first(db->s, h2, &sys, &made), RP_OK);
    assert_true(made);
    assert_int_equal(rp_store_system_token_first(db->s, h3, &t, &made), RP_OK);
    assert_false(made);
    assert_int_equal(rp_store_token_lookup(db->s, h3, &got), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_token_lookup(db->s, h2, &got), RP_OK);
    assert_int_equal(got.role, RP_ROLE_SYSTEM);
    assert_int_equal(got.expires, 0);
    assert_int_equal(rp_store_system_token_rotate(db->s, h4, &t, &revoked), RP_OK);
    assert_int_equal(revoked, 1);
    assert_int_equal(rp_store_token_lookup(db->s, h2, &got), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_token_lookup(db->s, h4, &got), RP_OK);
    assert_int_equal(rp_store_token_list(db->s, NULL, NULL, count_tokens, &n), RP_OK);
    assert_int_equal(n, 1);
}

/* Console sessions and login links (store_console.c): a session ends at its expiry and with its
 * token; a link serves once, and never once expired. */
static void store_console_sessions(void **state)
{
    struct db *db = *state;
    uint8_t tok_hash[RP_SHA256_LEN] = {7}, s1[RP_SHA256_LEN] = {8}, l1[RP_SHA256_LEN] = {9},
            l2[RP_SHA256_LEN] = {10};
    rp_token_t t, got;
    int64_t exp = 0;

    assert_int_equal(rp_store_token_add(db->s, db->tenant.id, RP_ROLE_ADMIN, tok_hash, 0, NULL, &t),
                     RP_OK);
    assert_int_equal(rp_store_session_add(db->s, s1, t.id, 1000, 2000), RP_OK);
    assert_int_equal(rp_store_session_lookup(db->s, s1, 1999, &got, &exp), RP_OK);
    assert_string_equal(got.id, t.id);
    assert_string_equal(got.tenant_id, db->tenant.id);
    assert_int_equal(got.role, RP_ROLE_ADMIN);
    assert_int_equal(exp, 2000);
    assert_int_equal(rp_store_session_lookup(db->s, s1, 2000, &got, &exp), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_session_lookup(db->s, l1, 1500, &got, &exp), RP_ERR_NOT_FOUND);

    /* a link: once */
    assert_int_equal(rp_store_link_add(db->s, l1, t.id, 1600), RP_OK);
    assert_int_equal(rp_store_link_take(db->s, l1, 1500, &got), RP_OK);
    assert_string_equal(got.id, t.id);
    assert_int_equal(rp_store_link_take(db->s, l1, 1500, &got), RP_ERR_NOT_FOUND);
    /* expired: refused, and forgotten */
    assert_int_equal(rp_store_link_add(db->s, l2, t.id, 1600), RP_OK);
    assert_int_equal(rp_store_link_take(db->s, l2, 1600, &got), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_link_take(db->s, l2, 1500, &got), RP_ERR_NOT_FOUND);

    /* the token revoked: its session ends, and so does a link made for it */
    assert_int_equal(rp_store_link_add(db->s, l1, t.id, 1600), RP_OK);
    assert_int_equal(rp_store_session_lookup(db->s, s1, 1500, &got, &exp), RP_OK);
    assert_int_equal(rp_store_token_revoke(db->s, db->tenant.id, t.id), RP_OK);
    assert_int_equal(rp_store_session_lookup(db->s, s1, 1500, &got, &exp), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_link_take(db->s, l1, 1500, &got), RP_ERR_NOT_FOUND);
    /* ended sessions are forgotten */
    assert_int_equal(rp_store_console_purge(db->s, 3000), RP_OK);
    assert_int_equal(rp_store_session_delete(db->s, s1), RP_OK);
}

/* Review r15web M2: revoking a token revokes the tokens its login links made (made_by), theirs in
 * turn, whatever their tenant, with their sessions, in the same statement; a rotation of the system
 * token does the same for the system tokens it revokes; a token made otherwise stays. */
static void store_token_revokes_its_links(void **state)
{
    struct db *db = *state;
    uint8_t hm[RP_SHA256_LEN] = {20}, hl[RP_SHA256_LEN] = {21}, hl2[RP_SHA256_LEN] = {22},
            ho[RP_SHA256_LEN] = {23}, hs[RP_SHA256_LEN] = {24}, hs2[RP_SHA256_LEN] = {25},
            hsl[RP_SHA256_LEN] = {26}, s1[RP_SHA256_LEN] = {27}, s2[RP_SHA256_LEN] = {28};
    rp_token_t maker, link, link2, other, sys, sys2, syslink, got;
    rp_tenant_t globex;
    bool made = false;
    int revoked = 0;
    int64_t exp;

    assert_int_equal(rp_store_tenant_create(db->s, "globex", &globex), RP_OK);
    assert_int_equal(rp_store_token_add(db->s, db->tenant.id, RP_ROLE_ADMIN, hm, 0, NULL, &maker),
                     RP_OK);
    assert_string_equal(maker.made_by, "");
    assert_int_equal(
        rp_store_token_add(db->s, db->tenant.id, RP_ROLE_ADMIN, hl, 9000, maker.id, &link), RP_OK);
    assert_int_equal(rp_store_token_lookup(db->s, hl, &got), RP_OK);
    assert_string_equal(got.made_by, maker.id);
    /* the link's token made a link in turn, and the maker a token of its own */
    assert_int_equal(
        rp_store_token_add(db->s, db->tenant.id, RP_ROLE_ADMIN, hl2, 9000, link.id, &link2), RP_OK);
    assert_int_equal(rp_store_token_add(db->s, db->tenant.id, RP_ROLE_READER, ho, 0, NULL, &other),
                     RP_OK);
    assert_int_equal(rp_store_session_add(db->s, s1, link2.id, 1000, 5000), RP_OK);
    assert_int_equal(rp_store_session_lookup(db->s, s1, 1500, &got, &exp), RP_OK);
    assert_string_equal(got.made_by, link.id);
    /* a maker that is not there makes nothing */
    assert_int_equal(
        rp_store_token_add(db->s, db->tenant.id, RP_ROLE_ADMIN, hs2, 9000, "k_gone", &got),
        RP_ERR_EXISTS);

    assert_int_equal(rp_store_token_revoke(db->s, db->tenant.id, maker.id), RP_OK);
    assert_int_equal(rp_store_token_lookup(db->s, hl, &got), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_token_lookup(db->s, hl2, &got), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_session_lookup(db->s, s1, 1500, &got, &exp), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_token_lookup(db->s, ho, &got), RP_OK);

    /* a system token's link for another tenant, ended by the rotation that revokes it */
    assert_int_equal(rp_store_system_token_first(db->s, hs, &sys, &made), RP_OK);
    assert_true(made);
    assert_int_equal(
        rp_store_token_add(db->s, globex.id, RP_ROLE_ADMIN, hsl, 9000, sys.id, &syslink), RP_OK);
    assert_int_equal(rp_store_session_add(db->s, s2, syslink.id, 1000, 5000), RP_OK);
    assert_int_equal(rp_store_system_token_rotate(db->s, hs2, &sys2, &revoked), RP_OK);
    assert_int_equal(rp_store_token_lookup(db->s, hsl, &got), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_session_lookup(db->s, s2, 1500, &got, &exp), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_token_lookup(db->s, hs2, &got), RP_OK);
    assert_int_equal(rp_store_token_lookup(db->s, ho, &got), RP_OK);
}

/* Review r15web M4: --max-devices-per-tenant, counted in the claim's transaction: a device new to
 * the tenant is refused once it holds max (nothing written), one it holds already may be claimed
 * again, another tenant's is still RP_ERR_EXISTS, 0 is no limit; another tenant has its own. */
static void store_device_claim_limit(void **state)
{
    struct db *db = *state;
    char ids[4][RP_DEVICE_ID_SIZE];
    rp_tenant_t globex;
    rp_fleet_counts_t c;
    rp_device_t d;

    for (int i = 0; i < 4; i++)
        snprintf(ids[i], sizeof(ids[i]), "%064x", 0xe000 + i);
    assert_int_equal(rp_store_tenant_create(db->s, "globex", &globex), RP_OK);
    assert_int_equal(rp_store_device_claim_upto(db->s, globex.id, ids[3], 1000, 1), RP_OK);
    assert_int_equal(rp_store_device_claim_upto(db->s, db->tenant.id, ids[0], 1000, 2), RP_OK);
    assert_int_equal(rp_store_device_claim_upto(db->s, db->tenant.id, ids[1], 1000, 2), RP_OK);
    assert_int_equal(rp_store_device_claim_upto(db->s, db->tenant.id, ids[2], 1000, 2),
                     RP_ERR_DENIED);
    assert_int_equal(rp_store_device_get(db->s, ids[2], &d), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_device_claim_upto(db->s, db->tenant.id, ids[1], 1000, 2), RP_OK);
    assert_int_equal(rp_store_device_claim_upto(db->s, db->tenant.id, ids[3], 1000, 2),
                     RP_ERR_EXISTS);
    assert_int_equal(rp_store_fleet_counts(db->s, db->tenant.id, 1000, &c), RP_OK);
    assert_int_equal(c.total, 2);
    assert_int_equal(rp_store_device_claim_upto(db->s, db->tenant.id, ids[2], 1000, 3), RP_OK);
    assert_int_equal(rp_store_device_claim_upto(db->s, globex.id, ids[0], 1000, 0), RP_ERR_EXISTS);
}

/* Which console paths are served: plain names below the directory, nothing else. */
static void console_paths(void **state)
{
    static const char *const ok[][3] = {
        {"index.html"   },
        {"app.js"       },
        {"vendor",        "uplot", "uPlot.min.js"},
        {"a-b_c.1.css"}
    };
    static const char *const bad[][3] = {
        {".."     },
        {"."      },
        {"vendor",  ".."},
        {"..",         "etc"},
        {".hidden"},
        {"a/b"},
        {"a\\b"    },
        {"%2e%2e"   },
        {"" },
        {"a b"       },
        {"x",     "", "y"},
        {"ü.js"      },
        {"a;b"     },
        {"vendor",   "."},
        {"a?b"    }
    };
    char longseg[200];
    const char *segs[20];

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int n = 0;
        while (n < 3 && ok[i][n] != NULL)
            n++;
        if (!rp_console_path_ok(ok[i], n))
            fail_msg("refused: %s", ok[i][0]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int n = 0;
        while (n < 3 && bad[i][n] != NULL)
            n++;
        if (rp_console_path_ok(bad[i], n))
            fail_msg("allowed: %s", bad[i][0]);
    }
    assert_false(rp_console_path_ok(NULL, 0));
    memset(longseg, 'a', sizeof(longseg) - 1);
    longseg[sizeof(longseg) - 1] = '\0';
    segs[0] = longseg;
    assert_false(rp_console_path_ok(segs, 1));
    for (int i = 0; i < 20; i++)
        segs[i] = "d";
    assert_true(rp_console_path_ok(segs, 16));
    assert_false(rp_console_path_ok(segs, 17));

    assert_string_equal(rp_console_type("app.js"), "text/javascript; charset=utf-8");
    assert_string_equal(rp_console_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(rp_console_type("f.woff2"), "font/woff2");
    assert_null(rp_console_type("app.js.bak"));
    assert_null(rp_console_type("Makefile"));
    assert_null(rp_console_type(".js"));
    assert_null(rp_console_type("x.exe"));
}

/* The session cookie in a Cookie header. */
static void console_cookie(void **state)
{
    char v[80], big[RP_COOKIE_HEADER_MAX + 20];

    (void)state;
    assert_int_equal(rp_cookie_get("rampart_session=abc", "rampart_session", v, sizeof(v)), RP_OK);
    assert_string_equal(v, "abc");
    assert_int_equal(
        rp_cookie_get("a=1; rampart_session=xyz ;b=2", "rampart_session", v, sizeof(v)), RP_OK);
    assert_string_equal(v, "xyz");
    /* a longer or shorter name is another cookie */
    assert_int_equal(
        rp_cookie_get("xrampart_session=1; rampart_sessio=2", "rampart_session", v, sizeof(v)),
        RP_ERR_NOT_FOUND);
    assert_int_equal(rp_cookie_get(NULL, "rampart_session", v, sizeof(v)), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_cookie_get("", "rampart_session", v, sizeof(v)), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_cookie_get("rampart_session", "rampart_session", v, sizeof(v)),
                     RP_ERR_NOT_FOUND);
    /* twice: refused, whichever is first */
    assert_int_equal(
        rp_cookie_get("rampart_session=a; rampart_session=b", "rampart_session", v, sizeof(v)),
        RP_ERR_MALFORMED);
    assert_string_equal(v, "");
    /* empty, too long, bytes a cookie never holds */
    assert_int_equal(rp_cookie_get("rampart_session=", "rampart_session", v, sizeof(v)),
                     RP_ERR_MALFORMED);
    assert_int_equal(rp_cookie_get("rampart_session=abc", "rampart_session", v, 3),
                     RP_ERR_MALFORMED);
    assert_int_equal(rp_cookie_get("rampart_session=\"a\"", "rampart_session", v, sizeof(v)),
                     RP_ERR_MALFORMED);
    assert_int_equal(rp_cookie_get("rampart_session=a b", "rampart_session", v, sizeof(v)),
                     RP_ERR_MALFORMED);
    assert_int_equal(rp_cookie_get("rampart_session=a\\b", "rampart_session", v, sizeof(v)),
                     RP_ERR_MALFORMED);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "rampart_session=", 16);
    assert_int_equal(rp_cookie_get(big, "rampart_session", v, sizeof(v)), RP_ERR_MALFORMED);

    assert_true(
        rp_console_secret_ok("rps_0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                             "abcdef",
                             RP_SESSION_PREFIX));
    assert_false(
        rp_console_secret_ok("rps_0123456789ABCDEF0123456789abcdef0123456789abcdef012345678"
                             "9abcdef",
                             RP_SESSION_PREFIX));
    assert_false(rp_console_secret_ok("rpl_0123456789abcdef0123456789abcdef0123456789abcdef01234567"
                                      "89abcdef",
                                      RP_SESSION_PREFIX));
    assert_false(rp_console_secret_ok("rps_00", RP_SESSION_PREFIX));
}

/* --- names ------------------------------------------------------------------------------------ */

static void name_ok(const char *in, const char *want)
{
    char out[RP_NAME_MAX + 1];
    const char *why = "unset";
    rp_err_t err = rp_name_check(in, strlen(in), out, sizeof(out), &why);

    if (err != RP_OK)
        fail_msg("'%s' refused: %s", in, why);
    assert_null(why);
    assert_string_equal(out, want != NULL ? want : in);
}

static void name_refused(const char *in, size_t len, const char *why_has)
{
    char out[RP_NAME_MAX + 1];
    const char *why = NULL;

    if (rp_name_check(in, len, out, sizeof(out), &why) != RP_ERR_INVALID_ARG)
        fail_msg("'%.*s' accepted", (int)len, in);
    assert_non_null(why);
    if (strstr(why, why_has) == NULL)
        fail_msg("'%.*s': '%s' does not say '%s'", (int)len, in, why, why_has);
    assert_string_equal(out, "");
}

#define REFUSED(lit, why) name_refused((lit), sizeof(lit) - 1, (why))

/* What goes where a name must fit: a well-formed start, cut on a character boundary. */
static void names_prefix(void **state)
{
    char out[RP_NAME_MAX + 1], name[200];

    (void)state;
    memset(name, 'a', 100);
    name[100] = '\0';
    assert_non_null(rp_name_prefix(name, RP_NAME_CHARS_MAX, out, sizeof(out)));
    assert_int_equal(strlen(out), RP_NAME_CHARS_MAX);
    /* two-byte characters: cut after 64 of them, never inside one */
    for (int k = 0; k < 70; k++)
        memcpy(name + 2 * k, "\xc3\xa9", 2);
    name[140] = '\0';
    assert_non_null(rp_name_prefix(name, RP_NAME_CHARS_MAX, out, sizeof(out)));
    assert_int_equal(strlen(out), 2 * RP_NAME_CHARS_MAX);
    /* an overlong '/', a surrogate, a sequence cut short: the start before them */
    assert_string_equal(rp_name_prefix("ab\xc0\xaf"
                                       "cd",
                                       64, out, sizeof(out)),
                        "ab");
    assert_string_equal(rp_name_prefix("ab\xed\xa0\x80"
                                       "cd",
                                       64, out, sizeof(out)),
                        "ab");
    assert_string_equal(rp_name_prefix("ab\xe2\x82", 64, out, sizeof(out)), "ab");
    assert_null(rp_name_prefix("\xff", 64, out, sizeof(out)));
    /* the output's room bounds it too */
    assert_string_equal(rp_name_prefix("abcdef", 64, out, 4), "abc");
}

static void names_rule(void **state)
{
    char s[640];

    (void)state;
    name_ok("acme", NULL);
    name_ok("Field Test", NULL);
    name_ok("Acme & Co. (EU) #2", NULL);
    name_ok("Caf\u00e9 Z\u00fcrich", NULL);
    name_ok("Cafe\u0301", "Caf\u00e9");  /* NFD in, NFC kept */
    name_ok("\u6771\u4eac Acme", NULL);  /* Han with Latin */
    name_ok("\u0391\u0392\u0393", NULL); /* Greek alone */
    name_ok("\u0430\u0441\u0435", NULL); /* Cyrillic alone (its key is Latin "ace"'s) */
    name_ok("Acme \U0001F680", NULL);    /* an emoji: no script of its own */
    memset(s, 'a', 64);
    s[64] = '\0';
    name_ok(s, NULL); /* 64 characters */
    s[64] = 'a';
    s[65] = '\0';
    name_refused(s, strlen(s), "at most 64 characters");
    s[0] = '\0';
    for (int i = 0; i < 64; i++)
        strcat(s, "\u00e9"); /* 64 characters, 128 bytes */
    name_ok(s, NULL);
    s[0] = '\0';
    for (int i = 0; i < 43; i++)
        strcat(s, "\u6771"); /* 43 characters, 129 bytes */
    name_refused(s, strlen(s), "128 bytes");
    memset(s, 'a', 600);
    name_refused(s, 600, "at most 64 characters"); /* refused before any conversion */

    REFUSED("", "empty");
    REFUSED("acme ", "end with a space");
    REFUSED(" acme", "start with a space");
    REFUSED("ac  me", "two spaces");
    REFUSED("acme\t", "control");
    REFUSED("ac\nme", "control");
    REFUSED("ac\x7fme", "control");
    REFUSED("ac\xc2\x85me", "control"); /* NEL, U+0085 */
    REFUSED("ac\u202eme", "format");    /* right-to-left override */
    REFUSED("ac\u200bme", "format");    /* zero-width space */
    REFUSED("ac\u200dme", "format");    /* zero-width joiner */
    REFUSED("\ufeffacme", "format");    /* byte order mark */
    REFUSED("acme\ufe0f", "invisible"); /* a variation selector (a mark) */
    REFUSED("\ufe02", "invisible");
    REFUSED("a\u3164b", "invisible"); /* the Hangul filler (a letter) */
    REFUSED("\u0301acme", "combining mark");
    REFUSED("a\u2028b", "separator");
    REFUSED("a\u2029b", "separator");
    REFUSED("a\u00a0b", "plain space"); /* no-break space */
    REFUSED("a\u3000b", "plain space"); /* ideographic space */
    REFUSED("\ue000", "private-use");
    REFUSED("a\U000F0000", "private-use");
    REFUSED("a\u0378", "unassigned");
    REFUSED("ac\0me", "NUL");
    REFUSED("\xff", "UTF-8");
    REFUSED("ac\xc3", "UTF-8");           /* truncated */
    REFUSED("\xc0\xaf", "UTF-8");         /* overlong '/' */
    REFUSED("\xed\xa0\x80", "UTF-8");     /* an encoded surrogate */
    REFUSED("\xf4\x90\x80\x80", "UTF-8"); /* past U+10FFFF */
    REFUSED("a/b", "'/'");
    REFUSED(".", "\".\"");
    REFUSED("..", "\".\"");
    REFUSED("p_0123456789abcdef01234567", "ID");
    name_ok("p_0123456789abcdef0123456", NULL); /* one digit short: not an ID */
    REFUSED("\u0430cme", "scripts");            /* Cyrillic a, Latin cme */
    REFUSED("\u03a9mega", "scripts");           /* Greek with Latin */
    REFUSED("pay\u0440al", "scripts");          /* Cyrillic r inside Latin */
    REFUSED("a\u0663b1", "digits");             /* Arabic-Indic and ASCII digits */
    s[0] = '\0';
    for (int i = 0; i < 42; i++)
        strcat(s, "\ufdfa"); /* 42 characters, 126 bytes, 756 letters in NFKC: no key fits */
    name_refused(s, strlen(s), "spelt out");
}

/* Whether two names collide: either of their keys is the same (names.h). */
static bool collide(const char *a, const char *b)
{
    static rp_name_keys_t ka, kb;

    if (rp_name_keys(a, &ka) != RP_OK || rp_name_keys(b, &kb) != RP_OK)
        fail_msg("no keys for '%s' or '%s'", a, b);
    return strcmp(ka.folded, kb.folded) == 0 || strcmp(ka.as_written, kb.as_written) == 0;
}

static void same_key(const char *a, const char *b)
{
    if (!collide(a, b))
        fail_msg("'%s' and '%s' do not collide", a, b);
}

static void distinct(const char *a, const char *b)
{
    if (collide(a, b))
        fail_msg("'%s' and '%s' collide", a, b);
}

static void names_keys(void **state)
{
    rp_name_keys_t k;

    (void)state;
    /* letter case, compatibility forms, NFD */
    same_key("acme", "ACME");
    same_key("acme", "AcMe");
    same_key("acme", "\uff41\uff43\uff4d\uff45"); /* fullwidth */
    same_key("acme", "\uff21\uff23\uff2d\uff25"); /* fullwidth capitals */
    same_key("HOME", "\u210c\u2134\u2133\u212f"); /* script and Fraktur letters */
    same_key("Stra\u00dfe", "STRASSE");
    same_key("Caf\u00e9", "Cafe\u0301");
    same_key("ilya", "Ilya"); /* I and i differ only in case */
    /* Latin look-alikes */
    same_key("modern", "rnodern");
    same_key("MODERN", "rnodern");
    same_key("Alice", "AIice"); /* capital I for l */
    same_key("login", "Iogin");
    same_key("Ilya", "llya");
    same_key("\uff21\uff29\uff49\uff43\uff45", "Alice"); /* fullwidth, and I for l */
    /* digits: 0 and O, 1 and l and I */
    same_key("l0gin", "lOgin");
    same_key("l0gin", "login");
    same_key("1ogin", "login");
    same_key("1ogin", "Iogin");
    same_key("v1", "vl");
    same_key("ACME1", "ACMEl");
    same_key("ACME1", "ACMEI");
    same_key("O0", "oo");
    /* whole-script Cyrillic: lowercase, and capitals whose lowercase look like nothing Latin */
    same_key("acme", "\u0430cme");                /* (mixed: the rule refuses it) */
    same_key("ace", "\u0430\u0441\u0435");        /* асе */
    same_key("acme", "\u0410\u0421\u041c\u0415"); /* АСМЕ */
    same_key("ACME", "\u0410\u0421\u041c\u0415");
    same_key("BETA", "\u0412\u0415\u0422\u0410"); /* ВЕТА */
    same_key("beta", "\u0412\u0415\u0422\u0410");
    same_key("HOME", "\u041d\u041e\u041c\u0415");                     /* НОМЕ */
    same_key("MAX", "\u041c\u0410\u0425");                            /* МАХ */
    same_key("CCCP", "\u0421\u0421\u0421\u0420");                     /* СССР */
    same_key("\u0410\u0421\u041c\u0415", "\u0430\u0441\u043c\u0435"); /* АСМЕ, асме */
    /* whole-script Greek */
    same_key("KEY", "\u039a\u0395\u03a5"); /* ΚΕΥ */
    same_key("key", "\u039a\u0395\u03a5");
    same_key("\u039a\u0395\u03a5", "\u03ba\u03b5\u03c5"); /* ΚΕΥ, κευ */
    same_key("NET", "\u039d\u0395\u03a4");                /* ΝΕΤ */
    same_key("HTTP", "\u0397\u03a4\u03a4\u03a1");         /* ΗΤΤΡ */
    same_key("TAXI", "\u03a4\u0391\u03a7\u0399");         /* ΤΑΧΙ */
    same_key("POP", "\u03a1\u039f\u03a1");                /* ΡΟΡ */
    /* and names that only resemble each other stay apart */
    distinct("acme", "acne");
    distinct("beta", "delta");
    distinct("BETA", "DELTA");
    distinct("Field Test", "Production");
    distinct("Group 1", "Group 2");
    distinct("v1", "v2");
    distinct("rev A", "rev B");
    distinct("cat", "cot");
    distinct("east", "west");
    distinct("alpha", "aloha");
    distinct("ilya", "llya");                     /* lowercase i is not l */
    distinct("\u0391\u0392\u0393", "ABC");        /* ΑΒΓ */
    distinct("\u041c\u041e\u041d\u041e", "MONO"); /* МОНО (Н is H) */
    assert_int_equal(rp_name_keys("\xff", &k), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_name_keys("", &k), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_name_keys("\u200b", &k), RP_ERR_INVALID_ARG); /* only ignorable */
}

/* Names given to find something are looked up in NFC, as they are kept. */
static void names_lookup_form(void **state)
{
    char out[RP_NAME_MAX + 1];

    (void)state;
    assert_int_equal(rp_name_lookup_form("e\u0301", out, sizeof(out)), RP_OK);
    assert_string_equal(out, "\u00e9");
    assert_int_equal(rp_name_lookup_form("Cafe\u0301 Z\u00fcrich", out, sizeof(out)), RP_OK);
    assert_string_equal(out, "Caf\u00e9 Z\u00fcrich");
    assert_int_equal(rp_name_lookup_form("p_0123456789abcdef01234567", out, sizeof(out)), RP_OK);
    assert_string_equal(out, "p_0123456789abcdef01234567"); /* IDs are as they are */
    assert_int_equal(rp_name_lookup_form("ACME", out, sizeof(out)), RP_OK);
    assert_string_equal(out, "ACME"); /* not folded: names are found as they are */
    assert_int_equal(rp_name_lookup_form("\xff", out, sizeof(out)), RP_ERR_INVALID_ARG);
    assert_string_equal(out, "");
    assert_int_equal(rp_name_lookup_form("abc", out, 3), RP_ERR_INVALID_ARG); /* no room */
}

/* The store keeps names in NFC and refuses a second name with the same key in its scope. */
static void store_names_unique(void **state)
{
    struct db *db = *state;
    rp_tenant_t t, refused;
    rp_product_t p, q, other_p;
    rp_group_t g, found_g;

    assert_int_equal(rp_store_tenant_create(db->s, "ACME", &t), RP_ERR_EXISTS);
    assert_int_equal(rp_store_tenant_create(db->s, "\u0430cme", &t), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_store_tenant_create(db->s, "acme ", &t), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_store_tenant_create(db->s, "Cafe\u0301", &t), RP_OK);
    assert_string_equal(t.name, "Caf\u00e9");
    assert_int_equal(rp_store_tenant_create(db->s, "CAF\u00c9", &refused), RP_ERR_EXISTS);
    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "Thermostat", &p), RP_OK);
    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "THERMOSTAT", &q),
                     RP_ERR_EXISTS);
    assert_int_equal(rp_store_product_create(db->s, t.id, "thermostat", &other_p), RP_OK);
    assert_int_equal(rp_store_group_create(db->s, &p, "field test", false, &g), RP_ERR_EXISTS);
    assert_int_equal(rp_store_group_create(db->s, &p, "Beta", false, &g), RP_OK);
    assert_int_equal(rp_store_group_create(db->s, &other_p, "beta", false, &g), RP_OK);
    /* found by name in other bytes (NFD), as in NFC, by ID; not by a look-alike */
    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "Caf\u00e9", &p), RP_OK);
    assert_int_equal(rp_store_group_create(db->s, &p, "\u00e9t\u00e9", false, &g), RP_OK);
    assert_int_equal(rp_store_product_find(db->s, db->tenant.id, "Cafe\u0301", &q), RP_OK);
    assert_string_equal(q.id, p.id);
    assert_int_equal(rp_store_product_find(db->s, db->tenant.id, "Caf\u00e9", &q), RP_OK);
    assert_string_equal(q.id, p.id);
    assert_int_equal(rp_store_product_find(db->s, db->tenant.id, p.id, &q), RP_OK);
    assert_int_equal(rp_store_product_find(db->s, db->tenant.id, "CAFE\u0301", &q),
                     RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_product_find(db->s, db->tenant.id, "\xff", &q), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_group_find(db->s, &p, "e\u0301te\u0301", &found_g), RP_OK);
    assert_string_equal(found_g.id, g.id);
}

/* The one UTF-8 check (core text.h), which the request path asks of every path segment. */
static void text_utf8_valid(void **state)
{
    (void)state;
    assert_true(rp_text_utf8_valid(""));
    assert_true(rp_text_utf8_valid("acme \xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"));
    assert_false(rp_text_utf8_valid("\xff"));
    assert_false(rp_text_utf8_valid("\xc0\xaf"));         /* overlong "/" */
    assert_false(rp_text_utf8_valid("\xe0\x80\xaf"));     /* overlong */
    assert_false(rp_text_utf8_valid("\xed\xa0\x80"));     /* a surrogate */
    assert_false(rp_text_utf8_valid("\xf4\x90\x80\x80")); /* above U+10FFFF */
    assert_false(rp_text_utf8_valid("a\xc3"));            /* cut short */
    assert_false(rp_text_utf8_valid("\x80"));             /* a continuation alone */
}

/* Lookups by an ID that is not UTF-8 (which PostgreSQL cannot hold, nor even compare): nothing
 * found, the same on both engines, and no failure noted for the request (rp_store_failure). */
static void store_lookup_not_utf8(void **state)
{
    struct db *db = *state;
    rp_tenant_t t;
    rp_device_t d;
    rp_cert_record_t c;

    rp_store_failure_forget(db->s);
    assert_int_equal(rp_store_tenant_get(db->s, "t_\xff\xfe", &t), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_device_get(db->s, "\xc0\xaf", &d), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_cert_get(db->s, "\xed\xa0\x80", &c), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_failure(db->s), RP_OK);
    /* the store still answers what is there */
    assert_int_equal(rp_store_tenant_get(db->s, db->tenant.id, &t), RP_OK);
}

/* Whole-script look-alikes in capitals, and I for l, collide in every scope (each pair: the
 * first is made, the second refused, in that order and the other). */
static void store_lookalikes_collide(void **state)
{
    static const char *const pairs[][2] = {
        {"acme",  "\u0410\u0421\u041c\u0415"}, /* АСМЕ; "acme" is the fixture's tenant */
        {"BETA",  "\u0412\u0415\u0422\u0410"}, /* ВЕТА */
        {"HOME",  "\u041d\u041e\u041c\u0415"}, /* НОМЕ */
        {"KEY",   "\u039a\u0395\u03a5"      }, /* Greek ΚΕΥ */
        {"MAX",   "\u041c\u0410\u0425"      }, /* МАХ */
        {"Alice", "AIice"                   },
        {"login", "Iogin"                   },
        {"P0RT",  "PORT"                    },
        {"ca11",  "caII"                    },
    };
    struct db *db = *state;
    rp_tenant_t t;
    rp_product_t p;
    rp_group_t g;
    rp_image_key_record_t k;

    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "Thermostat", &p), RP_OK);
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        for (int first = 0; first < 2; first++) {
            const char *a = pairs[i][first], *b = pairs[i][1 - first];
            char product[64];
            rp_product_t q;

            /* tenants: one scope for all, so each pair is tried once, in its order */
            if (first == 0 && i > 0) {
                assert_int_equal(rp_store_tenant_create(db->s, a, &t), RP_OK);
                assert_int_equal(rp_store_tenant_create(db->s, b, &t), RP_ERR_EXISTS);
            }
            if (i == 0)
                assert_int_equal(rp_store_tenant_create(db->s, b, &t), RP_ERR_EXISTS);
            /* products and image keys of a tenant, groups of a product: a fresh scope each */
            snprintf(product, sizeof(product), "Product %zu%c", i, first ? 'b' : 'a');
            assert_int_equal(rp_store_product_create(db->s, db->tenant.id, product, &q), RP_OK);
            assert_int_equal(rp_store_group_create(db->s, &q, a, false, &g), RP_OK);
            assert_int_equal(rp_store_group_create(db->s, &q, b, false, &g), RP_ERR_EXISTS);
            assert_int_equal(rp_store_tenant_create(db->s, product, &t), RP_OK);
            assert_int_equal(rp_store_product_create(db->s, t.id, a, &q), RP_OK);
            assert_int_equal(rp_store_product_create(db->s, t.id, b, &q), RP_ERR_EXISTS);
            memset(&k, 0, sizeof(k));
            snprintf(k.tenant_id, sizeof(k.tenant_id), "%s", t.id);
            snprintf(k.alg, sizeof(k.alg), "ed25519");
            k.spki_len = 4;
            snprintf(k.keyhash, sizeof(k.keyhash), "%064d", 1);
            snprintf(k.name, sizeof(k.name), "%s", a);
            assert_int_equal(rp_store_image_key_add(db->s, &k), RP_OK);
            /* another key: only the name clashes, and another name is taken */
            snprintf(k.keyhash, sizeof(k.keyhash), "%064d", 2);
            snprintf(k.name, sizeof(k.name), "%s", b);
            assert_int_equal(rp_store_image_key_add(db->s, &k), RP_ERR_EXISTS);
            snprintf(k.name, sizeof(k.name), "%s 2", b);
            assert_int_equal(rp_store_image_key_add(db->s, &k), RP_OK);
        }
    }
    /* and distinct names stay distinct */
    assert_int_equal(rp_store_tenant_create(db->s, "acne", &t), RP_OK);
    assert_int_equal(rp_store_tenant_create(db->s, "beta", &t), RP_ERR_EXISTS);
    assert_int_equal(rp_store_tenant_create(db->s, "delta", &t), RP_OK);
    assert_int_equal(rp_store_group_create(db->s, &p, "beta", false, &g), RP_OK);
    assert_int_equal(rp_store_group_create(db->s, &p, "delta", false, &g), RP_OK);
}

static int64_t sql_count(sqlite3 *raw, const char *sql)
{
    sqlite3_stmt *st;
    int64_t n = -1;

    assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A SQLite file taken back from the newest schema to 21 (why a certificate was revoked, the spent
 * nonces' purge watermark, the tenant CAs' successors, the deployments' departed devices, the
 * versions' counters, a delta's holder, the image an upload became) ... */
#define UNDO_28                                                                                    \
    UNDO_29 "ALTER TABLE certificates DROP COLUMN revoked_for;"                                    \
            "ALTER TABLE reports DROP COLUMN device_failed;"                                       \
            "DELETE FROM schema_version WHERE version = 28;"
#define UNDO_27                                                                                    \
    UNDO_28 "DROP TABLE spent_nonces_purged; DELETE FROM schema_version WHERE version = 27;"
#define UNDO_26 UNDO_27 "DROP TABLE ca_successors; DELETE FROM schema_version WHERE version = 26;"
#define UNDO_25                                                                                    \
    UNDO_26 "ALTER TABLE deployments DROP COLUMN departed;"                                        \
            "DELETE FROM schema_version WHERE version = 25;"
#define UNDO_24 UNDO_25 "DROP TABLE version_counts; DELETE FROM schema_version WHERE version = 24;"
#define UNDO_23                                                                                    \
    UNDO_24 "ALTER TABLE deltas DROP COLUMN holder;"                                               \
            "DELETE FROM schema_version WHERE version = 23;"
#define UNDO_22                                                                                    \
    UNDO_23 "ALTER TABLE uploads DROP COLUMN image_id;"                                            \
            "DELETE FROM schema_version WHERE version = 22;"
/* ... to 20 (the counters) ... */
#define UNDO_COUNTERS                                                                              \
    UNDO_22 "DROP TABLE device_counts; DROP TABLE fleet_summaries; DROP TABLE deployment_counts;"  \
            "ALTER TABLE device_groups DROP COLUMN members;"                                       \
            "ALTER TABLE deployments DROP COLUMN selected;"                                        \
            "ALTER TABLE deployments DROP COLUMN reported_selected;"                               \
            "ALTER TABLE deployments DROP COLUMN reached_pending;"                                 \
            "DELETE FROM schema_version WHERE version > 20;"
/* ... and to 19. */
static const char UNDO_20[] =
    UNDO_COUNTERS "DROP INDEX devices_blocked; DROP INDEX devices_quarantined;"
                  "DROP INDEX devices_failed;"
                  "ALTER TABLE devices DROP COLUMN last_passed;"
                  "DELETE FROM schema_version WHERE version = 20;";

/* Rows made before names had keys, or before the keys were what they are (schema 7: one key,
 * of another making), get theirs when the store opens; look-alikes among them both stay, and no
 * new look-alike may join them; names the rule refuses now stay too. */
static void store_name_keys_filled_at_open(void **state)
{
    RT_SQLITE_ONLY(); /* SQLite's own: its file, its query plans */
    struct db *db = *state;
    rp_tenant_t t;
    sqlite3 *raw;
    char path[128];

    snprintf(path, sizeof(path), "%s/rampart.db", db->t.dir);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    /* Back to schema 7 ... */
    assert_int_equal(sqlite3_exec(raw, UNDO_20, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "DROP TABLE blob_chunks; DROP TABLE blobs; DROP TABLE deltas;"
                                  "DELETE FROM schema_version WHERE version = 19;"
                                  "DROP TABLE device_targets;"
                                  "DROP INDEX device_updates_state;"
                                  "DELETE FROM schema_version WHERE version IN (17, 18);"
                                  "DROP TABLE deployment_reached;"
                                  "ALTER TABLE deployments DROP COLUMN status;"
                                  "DELETE FROM schema_version WHERE version = 16;"
                                  "DROP TABLE console_sessions; DROP TABLE console_links;"
                                  "DROP INDEX attestations_tenant_at;"
                                  "DELETE FROM schema_version WHERE version = 15;"
                                  "ALTER TABLE device_groups DROP COLUMN crash_capture;"
                                  "DELETE FROM schema_version WHERE version = 13;"
                                  "DROP TABLE threat_settings; DROP TABLE threat_counts;"
                                  "DROP TABLE threat_devices; DROP TABLE threat_alerts;"
                                  "DROP TABLE webhooks; DROP TABLE quarantine_policies;"
                                  "DROP TABLE quarantine_signals; DROP TABLE threat_actions;"
                                  "ALTER TABLE devices DROP COLUMN quarantined_at;"
                                  "ALTER TABLE devices DROP COLUMN quarantine_reason;"
                                  "DROP TABLE reports; DROP TABLE report_devices;"
                                  "DROP TABLE crash_buckets; DROP TABLE crash_bucket_counts;"
                                  "DROP TABLE crash_samples; DROP TABLE debug_files;"
                                  "DROP TABLE webhook_outbox;"
                                  "DROP TABLE webhook_outbox_dropped;"
                                  "DELETE FROM schema_version WHERE version IN (11, 12, 14);"
                                  "DROP TABLE device_reports; DROP TABLE device_apps;"
                                  "DROP TABLE device_events;"
                                  "DELETE FROM schema_version WHERE version = 10;"
                                  "ALTER TABLE tenant_policies DROP COLUMN allow_development;"
                                  "DELETE FROM schema_version WHERE version = 9;"
                                  "DROP INDEX tenants_name_key_written;"
                                  "DROP INDEX products_name_key_written;"
                                  "DROP INDEX device_groups_name_key_written;"
                                  "DROP INDEX image_keys_name_key_written;"
                                  "ALTER TABLE tenants DROP COLUMN name_key_written;"
                                  "ALTER TABLE products DROP COLUMN name_key_written;"
                                  "ALTER TABLE device_groups DROP COLUMN name_key_written;"
                                  "ALTER TABLE image_keys DROP COLUMN name_key_written;"
                                  "DELETE FROM schema_version WHERE version = 8;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    /* ... with rows made under it: keys of its making (ВЕТА and BETA had different ones), one
     * the keys of today would not make (Initech's), none at all (Globex's), and a name of 100
     * characters (the rule allows 64) */
    assert_int_equal(sqlite3_exec(raw,
                                  "INSERT INTO tenants (id, name, created, name_key) VALUES"
                                  " ('t_old1', 'Globex', 1, NULL), ('t_old2', 'GLOBEX', 2, NULL),"
                                  " ('t_old3', 'BETA', 3, 'beta'),"
                                  " ('t_old4', '\u0412\u0415\u0422\u0410', 4, "
                                  "'\u0299e\u1d1ba'),"
                                  " ('t_old5', 'Initech', 5, 'stale'),"
                                  " ('t_old6', printf('%.100c', 'x'), 6, NULL);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    rp_store_close(db->s);
    assert_int_equal(rt_store_open(&db->t, &db->s), RP_OK);
    assert_int_equal(rp_store_schema_version(db->s), rp_store_schema_newest);
    assert_int_equal(rp_store_tenant_create(db->s, "acme", &t), RP_ERR_EXISTS);
    assert_int_equal(rp_store_tenant_create(db->s, "globex", &t), RP_ERR_EXISTS);
    assert_int_equal(rp_store_tenant_create(db->s, "Beta", &t), RP_ERR_EXISTS);
    assert_int_equal(rp_store_tenant_create(db->s, "initech", &t), RP_ERR_EXISTS);
    assert_int_equal(rp_store_tenant_create(db->s, "acne", &t), RP_OK);
    for (int i = 1; i <= 6; i++) {
        char id[16];
        snprintf(id, sizeof(id), "t_old%d", i);
        assert_int_equal(rp_store_tenant_get(db->s, id, &t), RP_OK);
    }
    assert_int_equal(strlen(t.name), 100);
    /* Of each pair of look-alikes, one holds the key they share; the rest have both keys. */
    assert_int_equal(sql_count(raw, "SELECT count(*) FROM tenants WHERE name_key IS NULL"), 1);
    assert_int_equal(sql_count(raw, "SELECT count(*) FROM tenants WHERE name_key_written IS NULL"),
                     2);
    assert_int_equal(sql_count(raw, "SELECT count(*) FROM tenants WHERE name_key IS NULL AND"
                                    " name_key_written IS NULL"),
                     1); /* GLOBEX and Globex share both */
    assert_int_equal(sql_count(raw, "SELECT count(*) FROM tenants WHERE id = 't_old6' AND"
                                    " name_key IS NOT NULL AND name_key_written IS NOT NULL"),
                     1);
    sqlite3_close(raw);
    /* and opening again changes nothing */
    rp_store_close(db->s);
    assert_int_equal(rt_store_open(&db->t, &db->s), RP_OK);
    assert_int_equal(rp_store_tenant_create(db->s, "\u0432\u0435\u0442\u0430", &t), RP_ERR_EXISTS);
}

/* A tenant's appraisal policy: strict until set, then what was set. */
static void store_policy(void **state)
{
    struct db *db = *state;
    rp_policy_t p;

    assert_int_equal(rp_store_policy_get(db->s, db->tenant.id, &p), RP_OK);
    assert_true(p.require_components && p.require_register && !p.allow_debug);
    assert_int_equal(p.updated, 0);
    p.allow_debug = true;
    p.require_components = false;
    assert_int_equal(rp_store_policy_set(db->s, db->tenant.id, &p), RP_OK);
    assert_true(p.updated > 0);
    memset(&p, 0, sizeof(p));
    assert_int_equal(rp_store_policy_get(db->s, db->tenant.id, &p), RP_OK);
    assert_true(!p.require_components && p.require_register && p.allow_debug && p.updated > 0);
    assert_int_equal(rp_store_policy_get(db->s, "t_other", &p), RP_OK);
    assert_true(p.require_components && p.require_register && !p.allow_debug);
}

/* More distinct statements than the cache starts with: each is prepared once, then reused; none
 * is lost, and nothing aborts (the cache once had a fixed 64 slots and abort()ed past them). */
static void store_statement_cache_grows(void **state)
{
    struct db *db = *state;
    enum { N = 4 * STMT_CACHE_INITIAL + 3 };
    static char sql[N][32];
    sq_st_t *first[N];

    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            sq_st_t *st;
            if (pass == 0)
                snprintf(sql[i], sizeof(sql[i]), "SELECT %d", i);
            st = sq_stmt(db->s, sql[i]);
            assert_non_null(st);
            if (pass == 0)
                first[i] = st;
            else
                assert_ptr_equal(st, first[i]); /* cached, not prepared again */
            assert_int_equal(db_step(st), DB_ROW);
            assert_int_equal(db_column_int(st, 0), i);
            db_reset(st);
        }
    }
    /* the store's own statements still work beside them */
    assert_true(rp_store_schema_version(db->s) > 0);
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

    /* The crash capture switch (schema 13): on by default and for a device in no group; off for
     * the group's devices only; kept; on again. */
    bool on = false;
    assert_true(prod.crash_capture && field.crash_capture);
    assert_int_equal(rp_store_device_crash_capture(db->s, dev1, &on), RP_OK);
    assert_true(on);
    assert_int_equal(rp_store_device_crash_capture(db->s, dev2, &on), RP_OK);
    assert_true(on);
    assert_int_equal(rp_store_group_set_crash_capture(db->s, &prod, false), RP_OK);
    assert_false(prod.crash_capture);
    assert_int_equal(rp_store_device_crash_capture(db->s, dev1, &on), RP_OK);
    assert_false(on);
    assert_int_equal(rp_store_device_crash_capture(db->s, dev2, &on), RP_OK);
    assert_true(on);
    assert_int_equal(rp_store_group_find(db->s, &p, "Production", &g), RP_OK);
    assert_false(g.crash_capture);
    assert_int_equal(rp_store_group_find(db->s, &p, "Field Test", &g), RP_OK);
    assert_true(g.crash_capture);
    assert_int_equal(rp_store_group_set_crash_capture(db->s, &prod, true), RP_OK);
    assert_int_equal(rp_store_device_crash_capture(db->s, dev1, &on), RP_OK);
    assert_true(on);
    memset(&g, 0, sizeof(g));
    snprintf(g.id, sizeof(g.id), "g_none");
    assert_int_equal(rp_store_group_set_crash_capture(db->s, &g, false), RP_ERR_NOT_FOUND);

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
    assert_int_equal(cur.status, RP_DEPLOY_ACTIVE);

    /* Pause and stop (schema 16): a paused or stopped deployment stays offered to the devices it
     * reached (served targets naming it) and to no other, so no device's targets version goes
     * back; resume makes a paused one active; stopped is final. */
    static const char dev3[] = "3333333333333333333333333333333333333333333333333333333333333333";
    rp_deployment_t d3, d4, before, got;
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev3, 1000), RP_OK);
    assert_int_equal(rp_store_device_assign(db->s, &prod, dev3, 1200), RP_OK);
    assert_int_equal(rp_store_deployment_for_device(db->s, prod.id, dev3, &before), RP_OK);
    assert_string_equal(before.id, rp_deployment_selects(&d2, dev3) ? d2.id : d1.id);
    assert_int_equal(rp_store_deployment_reached(db->s, before.id, dev3, 1300), RP_OK);
    d3 = d1;
    assert_int_equal(rp_store_deployment_create(db->s, &d3), RP_OK);
    assert_int_equal(rp_store_deployment_for_device(db->s, prod.id, dev1, &got), RP_OK);
    assert_string_equal(got.id, d3.id);
    assert_int_equal(rp_store_deployment_reached(db->s, d3.id, dev1, 1300), RP_OK);
    assert_int_equal(rp_store_deployment_reached(db->s, d3.id, dev1, 1400), RP_OK); /* kept once */
    assert_int_equal(
        rp_store_deployment_set_status(db->s, db->tenant.id, d3.id, RP_DEPLOY_PAUSED, &got), RP_OK);
    assert_int_equal(got.status, RP_DEPLOY_PAUSED);
    assert_int_equal(rp_store_deployment_get(db->s, db->tenant.id, d3.id, &got), RP_OK);
    assert_int_equal(got.status, RP_DEPLOY_PAUSED);
    assert_string_equal(rp_deploy_status_name(got.status), "paused");
    /* dev1 had it: keeps it (not d2 or d1, a lower version); dev3 did not: keeps what it had */
    assert_int_equal(rp_store_deployment_for_device(db->s, prod.id, dev1, &got), RP_OK);
    assert_string_equal(got.id, d3.id);
    assert_int_equal(rp_store_deployment_for_device(db->s, prod.id, dev3, &got), RP_OK);
    assert_string_equal(got.id, before.id);
    assert_int_equal(rp_store_deployment_get(db->s, db->tenant.id, d3.id, &d3), RP_OK);
    assert_true(got.seq < d3.seq);
    assert_int_equal(
        rp_store_deployment_set_status(db->s, db->tenant.id, d3.id, RP_DEPLOY_ACTIVE, &got), RP_OK);
    assert_int_equal(got.status, RP_DEPLOY_ACTIVE);
    assert_int_equal(rp_store_deployment_for_device(db->s, prod.id, dev3, &got), RP_OK);
    assert_string_equal(got.id, d3.id);
    assert_int_equal(rp_store_deployment_reached(db->s, d3.id, dev3, 1500), RP_OK);
    /* A device's targets version (schema 18): the same while its deployment is; never lower
     * when it changes to an older one (a move to another group); the first one is the seq. */
    int64_t tv = 0, tv2 = 0;
    assert_int_equal(rp_store_device_targets_version(db->s, dev3, "", 0, 0, &tv), RP_OK);
    assert_int_equal(tv, 0);
    assert_int_equal(rp_store_device_targets_version(db->s, dev3, d3.id, d3.seq, 0, &tv), RP_OK);
    assert_int_equal(tv, d3.seq);
    assert_int_equal(rp_store_device_targets_version(db->s, dev3, d3.id, d3.seq, 0, &tv2), RP_OK);
    assert_int_equal(tv2, tv);
    assert_int_equal(rp_store_device_targets_version(db->s, dev3, d1.id, d1.seq, 0, &tv2), RP_OK);
    assert_true(d1.seq < d3.seq && tv2 == tv + 1);
    assert_int_equal(rp_store_device_targets_version(db->s, dev3, d3.id, d3.seq, 0, &tv), RP_OK);
    assert_int_equal(tv, tv2 + 1);
    assert_int_equal(rp_store_device_targets_version(db->s, dev3, "", 0, 0, &tv2), RP_OK);
    assert_int_equal(tv2, tv + 1);
    /* targets_version_heals: the database went back (a backup restored) while the device holds
     * more than its row says: it is served one more than it holds, for the same deployment too,
     * and then the same again while it says so. */
    assert_int_equal(rp_store_device_targets_version(db->s, dev3, "", 0, tv2 + 5, &tv), RP_OK);
    assert_int_equal(tv, tv2 + 6);
    assert_int_equal(rp_store_device_targets_version(db->s, dev3, "", 0, tv2 + 6, &tv), RP_OK);
    assert_int_equal(tv, tv2 + 6);
    assert_int_equal(rp_store_device_targets_version(db->s, dev3, d3.id, d3.seq, tv2 + 6, &tv),
                     RP_OK);
    assert_int_equal(tv, tv2 + 7);
    assert_int_equal(rp_store_device_targets_version(db->s, dev1, d3.id, d3.seq, 1000, &tv2),
                     RP_OK); /* (no row yet: the first time too) */
    assert_int_equal(tv2, 1001);
    /* stopped before reaching anyone: offered to no device, and final */
    d4 = d1;
    assert_int_equal(rp_store_deployment_create(db->s, &d4), RP_OK);
    assert_int_equal(
        rp_store_deployment_set_status(db->s, db->tenant.id, d4.id, RP_DEPLOY_STOPPED, &got),
        RP_OK);
    assert_int_equal(got.status, RP_DEPLOY_STOPPED);
    assert_int_equal(rp_store_deployment_for_device(db->s, prod.id, dev1, &got), RP_OK);
    assert_string_equal(got.id, d3.id);
    assert_int_equal(rp_store_deployment_for_device(db->s, prod.id, dev3, &got), RP_OK);
    assert_string_equal(got.id, d3.id);
    assert_int_equal(
        rp_store_deployment_set_status(db->s, db->tenant.id, d4.id, RP_DEPLOY_ACTIVE, &got),
        RP_ERR_DENIED);
    assert_int_equal(
        rp_store_deployment_set_status(db->s, db->tenant.id, d4.id, RP_DEPLOY_PAUSED, &got),
        RP_ERR_DENIED);
    assert_int_equal(rp_store_deployment_get(db->s, db->tenant.id, d4.id, &got), RP_OK);
    assert_int_equal(got.status, RP_DEPLOY_STOPPED);
    assert_int_equal(
        rp_store_deployment_set_status(db->s, db->tenant.id, d4.id, RP_DEPLOY_STOPPED, &got),
        RP_OK);
    assert_int_equal(rp_store_deployment_set_status(db->s, other.id, d3.id, RP_DEPLOY_PAUSED, &got),
                     RP_ERR_NOT_FOUND);
    /* stopping the one a device has: it keeps it */
    assert_int_equal(
        rp_store_deployment_set_status(db->s, db->tenant.id, d3.id, RP_DEPLOY_STOPPED, &got),
        RP_OK);
    assert_int_equal(rp_store_deployment_for_device(db->s, prod.id, dev3, &got), RP_OK);
    assert_string_equal(got.id, d3.id);
}

/* A tenant's open uploads within its limits; and the sweep's conditional drop, which leaves an
 * upload written to since it was found stale (another replica appending to it). */
static void upload_count(void *ctx, const rp_upload_t *u)
{
    (void)u;
    (*(int *)ctx)++;
}

static void store_uploads_limits_and_sweep(void **state)
{
    struct db *db = *state;
    rp_upload_t a, b, c;
    int seen = 0;
    int64_t now = (int64_t)time(NULL);

    assert_int_equal(rp_store_upload_create(db->s, db->tenant.id, 600, 2, 1000, &a), RP_OK);
    assert_int_equal(rp_store_upload_create(db->s, db->tenant.id, 401, 2, 1000, &b),
                     RP_ERR_TOO_LARGE); /* 600 + 401 > 1000 */
    assert_int_equal(rp_store_upload_create(db->s, db->tenant.id, 400, 2, 1000, &b), RP_OK);
    assert_int_equal(rp_store_upload_create(db->s, db->tenant.id, 1, 2, 1000, &c), RP_ERR_DENIED);
    assert_int_equal(rp_store_upload_create(db->s, db->tenant.id, 1001, 9, 1000, &c),
                     RP_ERR_TOO_LARGE);
    /* both stale as of now + 10; a chunk for a arrives (another replica) after they were found */
    assert_int_equal(rp_store_upload_stale(db->s, now + 10, 16, upload_count, &seen), RP_OK);
    assert_int_equal(seen, 2);
    assert_int_equal(rp_store_upload_touch(db->s, db->tenant.id, a.id, now + 20), RP_OK);
    assert_int_equal(rp_store_upload_drop_stale(db->s, a.id, now + 10), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_upload_get(db->s, db->tenant.id, a.id, &c), RP_OK);
    assert_int_equal(c.active, now + 20);
    assert_int_equal(rp_store_upload_drop_stale(db->s, b.id, now + 10), RP_OK);
    assert_int_equal(rp_store_upload_drop_stale(db->s, b.id, now + 10), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_upload_get(db->s, db->tenant.id, b.id, &c), RP_ERR_NOT_FOUND);
    /* a chunk for an upload swept meanwhile finds none; another tenant's is not its */
    assert_int_equal(rp_store_upload_touch(db->s, db->tenant.id, b.id, now), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_upload_touch(db->s, "t_0000000000000000000000", a.id, now),
                     RP_ERR_NOT_FOUND);
    /* the dropped one's room is free again */
    assert_int_equal(rp_store_upload_create(db->s, db->tenant.id, 400, 2, 1000, &b), RP_OK);
}

/* A delta's lease: renewed by its maker's heartbeat, it keeps another maker out; left to lapse
 * (its maker killed, or stopped), another takes it over, and the first one's renew, made and
 * release are refused from then on (it gives up and writes nothing). Its times are the
 * database's: no caller's clock is asked. */
static void store_delta_lease_renewed(void **state)
{
    struct db *db = *state;
    static const char from[] = "aaaa000000000000000000000000000000000000000000000000000000000001";
    static const char to[] = "aaaa000000000000000000000000000000000000000000000000000000000002";
    char a[RP_DELTA_HOLDER_SIZE], b[RP_DELTA_HOLDER_SIZE], c[RP_DELTA_HOLDER_SIZE], sha[65];
    uint64_t size;

    assert_int_equal(rp_store_delta_claim(db->s, from, to, 15, a), RP_OK);
    assert_int_equal(rp_store_delta_renew(db->s, from, to, 15, a), RP_OK);
    assert_int_equal(rp_store_delta_claim(db->s, from, to, 15, b), RP_ERR_EXISTS);
    /* a's lease lapses (renewed to end a second ago: it was stopped); b takes it over */
    assert_int_equal(rp_store_delta_renew(db->s, from, to, -2, a), RP_OK);
    assert_int_equal(rp_store_delta_claim(db->s, from, to, 15, b), RP_OK);
    assert_string_not_equal(a, b);
    /* a wakes up: its heartbeat renews nothing, its commit and release are refused */
    assert_int_equal(rp_store_delta_renew(db->s, from, to, 15, a), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_delta_made(db->s, from, to, a, "aa", 1), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_delta_release(db->s, from, to, a), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_delta_get(db->s, from, to, sha, &size), RP_ERR_NOT_FOUND);
    /* b's lease runs: c is kept out; b makes it, once */
    assert_int_equal(rp_store_delta_claim(db->s, from, to, 15, c), RP_ERR_EXISTS);
    assert_int_equal(rp_store_delta_made(db->s, from, to, b, "ab", 2), RP_OK);
    assert_int_equal(rp_store_delta_made(db->s, from, to, b, "cd", 3), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_delta_renew(db->s, from, to, 15, b), RP_ERR_NOT_FOUND); /* made */
    assert_int_equal(rp_store_delta_release(db->s, from, to, b), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_delta_claim(db->s, from, to, 15, c), RP_ERR_EXISTS);
    assert_int_equal(rp_store_delta_get(db->s, from, to, sha, &size), RP_OK);
    assert_string_equal(sha, "ab");
    assert_int_equal(size, 2);
    /* its blob gone: forgotten (only the row of the hash read), then claimed again */
    assert_int_equal(rp_store_delta_forget(db->s, from, to, "cd"), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_delta_forget(db->s, from, to, "ab"), RP_OK);
    assert_int_equal(rp_store_delta_claim(db->s, from, to, 15, c), RP_OK);
    /* a failed maker gives its lease back: another claims it at once */
    assert_int_equal(rp_store_delta_release(db->s, from, to, c), RP_OK);
    assert_int_equal(rp_store_delta_claim(db->s, from, to, 15, a), RP_OK);
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
    /* RFC 9110 14.1.2: a zero suffix, or a first position at or past the end, however large,
     * is unsatisfiable (416), not ignored */
    assert_false(rp_range_parse("bytes=-0", 1000, &start, &len, &unsat));
    assert_true(unsat);
    assert_false(rp_range_parse("bytes=99999999999999999999-", 1000, &start, &len, &unsat));
    assert_true(unsat);
    assert_false(rp_range_parse("bytes=0-", 0, &start, &len, &unsat)); /* an empty body */
    assert_true(unsat);
    assert_false(rp_range_parse("bytes=1000-1,-0", 1000, &start, &len, &unsat)); /* invalid */
    assert_false(unsat);
    assert_false(rp_range_parse("bytes=1000-, -0", 1000, &start, &len, &unsat)); /* none fits */
    assert_true(unsat);
    assert_false(rp_range_parse("bytes=1000-,0-1", 1000, &start, &len, &unsat)); /* one fits */
    assert_false(unsat);
    /* overflowing positions saturate: a last one clips, a suffix takes the whole body */
    assert_true(rp_range_parse("bytes=10-99999999999999999999999", 1000, &start, &len, &unsat));
    assert_int_equal(start, 10);
    assert_int_equal(len, 990);
    assert_true(rp_range_parse("bytes=-99999999999999999999999", 1000, &start, &len, &unsat));
    assert_int_equal(start, 0);
    assert_int_equal(len, 1000);
    assert_true(rp_range_parse("BYTES=0-0", 1000, &start, &len, &unsat)); /* unit: any case */
    assert_int_equal(len, 1);
    assert_false(rp_range_parse("bytes=", 1000, &start, &len, &unsat));
    assert_false(unsat);
    assert_false(rp_range_parse("bytes=-", 1000, &start, &len, &unsat));
    assert_false(rp_range_parse("bytes=1--2", 1000, &start, &len, &unsat));
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
    for (int i = 0; i < 3; i++)
        assert_true(rp_ratelimit_allow(rl, "10.0.0.2", 8, 1000.0));
    assert_false(rp_ratelimit_allow(rl, "10.0.0.2", 8, 1000.0));
    /* A peek takes nothing (wrong tokens: checked before, charged after), and sees the refill;
     * an address never seen has its whole burst. */
    for (int i = 0; i < 10; i++)
        assert_true(rp_ratelimit_peek(rl, "10.0.0.3", 8, 1000.0));
    assert_false(rp_ratelimit_peek(rl, "10.0.0.2", 8, 1000.0));
    assert_false(rp_ratelimit_peek(rl, "10.0.0.2", 8, 1000.2));
    assert_true(rp_ratelimit_peek(rl, "10.0.0.2", 8, 1000.5));
    assert_true(rp_ratelimit_allow(rl, "10.0.0.2", 8, 1000.5));
    assert_false(rp_ratelimit_peek(rl, "10.0.0.2", 8, 1000.5));
    rp_ratelimit_set(rl, 0, 0); /* lifted: every peek passes */
    assert_true(rp_ratelimit_peek(rl, "10.0.0.2", 8, 1000.5));
    rp_ratelimit_free(rl);
}

struct below {
    int n;
    char ids[4][RP_DEVICE_ID_SIZE];
    uint32_t max[4];
};

static void collect_below(void *ctx, const char *device_id, uint32_t max)
{
    struct below *b = ctx;

    if (b->n < 4) {
        snprintf(b->ids[b->n], sizeof(b->ids[0]), "%s", device_id);
        b->max[b->n] = max;
    }
    b->n++;
}

/* What each device's root of trust accepts: kept as reported (the latest report wins), and the
 * group's devices below a counter are listed, those of other groups and those that never reported
 * are not. */
static void store_counter_max(void **state)
{
    struct db *db = *state;
    rp_product_t p;
    rp_group_t field, prod;
    struct below b;

    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "Thermostat", &p), RP_OK);
    assert_int_equal(rp_store_group_find(db->s, &p, "Field Test", &field), RP_OK);
    assert_int_equal(rp_store_group_find(db->s, &p, "Production", &prod), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev2, 1000), RP_OK);
    assert_int_equal(rp_store_device_assign(db->s, &field, dev1, 1000), RP_OK);
    assert_int_equal(rp_store_device_assign(db->s, &field, dev2, 1000), RP_OK);
    memset(&b, 0, sizeof(b));
    assert_int_equal(rp_store_group_counter_max_below(db->s, field.id, 65, collect_below, &b),
                     RP_OK);
    assert_int_equal(b.n, 0); /* nothing reported: nothing known to refuse */
    assert_int_equal(rp_store_device_counter_max_set(db->s, dev1, UINT32_MAX, 1100), RP_OK);
    assert_int_equal(rp_store_device_counter_max_set(db->s, dev1, 64, 1200), RP_OK);
    assert_int_equal(rp_store_device_counter_max_set(db->s, dev1, 64, 1300), RP_OK); /* same */
    assert_int_equal(rp_store_device_counter_max_set(db->s, dev2, UINT32_MAX, 1100), RP_OK);
    memset(&b, 0, sizeof(b));
    assert_int_equal(rp_store_group_counter_max_below(db->s, field.id, 65, collect_below, &b),
                     RP_OK);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.ids[0], dev1);
    assert_int_equal(b.max[0], 64);
    memset(&b, 0, sizeof(b));
    assert_int_equal(rp_store_group_counter_max_below(db->s, field.id, 64, collect_below, &b),
                     RP_OK);
    assert_int_equal(b.n, 0); /* 64 is what it holds */
    memset(&b, 0, sizeof(b));
    assert_int_equal(rp_store_group_counter_max_below(db->s, prod.id, 65, collect_below, &b),
                     RP_OK);
    assert_int_equal(b.n, 0); /* another group */
    assert_int_equal(rp_store_device_assign(db->s, &prod, dev1, 1400), RP_OK);
    memset(&b, 0, sizeof(b));
    assert_int_equal(
        rp_store_group_counter_max_below(db->s, prod.id, UINT32_MAX, collect_below, &b), RP_OK);
    assert_int_equal(b.n, 1); /* the report follows the device into its new group */
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

/* PostgreSQL read-only (default_transaction_read_only, which managed services set when storage
 * fills: review r15ops M3): the readiness write says so, and a write is refused as busy (503 with
 * Retry-After), not as a fault. */
static void store_write_check_read_only(void **state)
{
    struct db *db = *state;
    rp_tenant_t t;

    if (rt_pg_uri() == NULL)
        skip(); /* (SQLite's read-only file: /readyz's own test, e2e) */
    assert_int_equal(db->s->db->drv->exec(db->s->db, "SET default_transaction_read_only = on"),
                     RP_OK);
    assert_int_equal(rp_store_write_check(db->s), RP_ERR_DENIED);
    rp_store_failure_forget(db->s);
    assert_int_equal(rp_store_tenant_create(db->s, "frozen", &t), RP_ERR_BUSY);
    assert_int_equal(rp_store_failure(db->s), RP_ERR_BUSY);
    assert_int_equal(db->s->db->drv->exec(db->s->db, "SET default_transaction_read_only = off"),
                     RP_OK);
    assert_int_equal(rp_store_write_check(db->s), RP_OK);
    assert_int_equal(rp_store_tenant_create(db->s, "frozen", &t), RP_OK);
}

/* What devices report of what runs (store_status.c): the newest app list replaces the last, each
 * event is kept once by (device, seq), the newest RP_DEVICE_EVENTS_KEEP are kept and the rest
 * counted, and an event older than those is not taken again. */
struct got_events {
    int n;
    int64_t first, last;
};

static void count_event(void *ctx, const rp_device_event_t *e)
{
    struct got_events *g = ctx;

    if (g->n++ == 0)
        g->first = e->seq;
    g->last = e->seq;
}

static void count_app(void *ctx, const rp_device_app_t *a)
{
    (*(int *)ctx)++;
    assert_string_equal(a->component, "sensor");
}

static void store_device_status(void **state)
{
    struct db *db = *state;
    static rp_device_event_t ev[RP_DEVICE_EVENTS_KEEP + 50];
    rp_device_app_t apps[2] = {
        {"sensor", "1.0.0+0", "running", 0},
        {"relay",  "2.0.0+0", "ready",   3}
    };
    rp_device_report_t rep;
    struct got_events g = {0};
    size_t fresh = 99;
    int napps = 0;

    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev1, 1000), RP_OK);
    assert_int_equal(rp_store_device_status_get(db->s, dev1, &rep), RP_ERR_NOT_FOUND);
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
        ev[i].seq = (int64_t)i;
        ev[i].at = 1700000000 + (int64_t)i;
        snprintf(ev[i].kind, sizeof(ev[i].kind), "syscall");
        snprintf(ev[i].app, sizeof(ev[i].app), "sensor");
        snprintf(ev[i].reason, sizeof(ev[i].reason), "ptrace (%zu)", i);
    }
    /* A first report: two apps, three events. */
    assert_int_equal(rp_store_device_status_put(db->s, dev1, 2000, apps, 2, ev, 3, 4, &fresh),
                     RP_OK);
    assert_int_equal(fresh, 3);
    assert_int_equal(rp_store_device_status_get(db->s, dev1, &rep), RP_OK);
    assert_true(rep.reported_at == 2000 && rep.apps_at == 2000 && rep.events_kept == 3 &&
                rep.dropped_device == 4 && rep.dropped_service == 0 && rep.next_seq == 3);
    /* The same again (an answer lost): nothing new. A report without apps keeps them. */
    assert_int_equal(rp_store_device_status_put(db->s, dev1, 2100, NULL, 0, ev, 3, 4, &fresh),
                     RP_OK);
    assert_int_equal(fresh, 0);
    assert_int_equal(rp_store_device_status_get(db->s, dev1, &rep), RP_OK);
    assert_true(rep.events_kept == 3 && rep.apps_at == 2000 && rep.reported_at == 2100);
    /* A new list replaces the old whole. */
    assert_int_equal(rp_store_device_status_put(db->s, dev1, 2200, apps, 1, NULL, 0, 4, &fresh),
                     RP_OK);
    assert_int_equal(rp_store_device_apps(db->s, dev1, count_app, &napps), RP_OK);
    assert_int_equal(napps, 1);
    /* Past the bound: the newest kept, the rest counted, oldest first. */
    for (size_t at = 3; at < sizeof(ev) / sizeof(ev[0]); at += 100) {
        size_t n = sizeof(ev) / sizeof(ev[0]) - at < 100 ? sizeof(ev) / sizeof(ev[0]) - at : 100;
        assert_int_equal(
            rp_store_device_status_put(db->s, dev1, 2300, NULL, 0, ev + at, n, 4, &fresh), RP_OK);
        assert_int_equal(fresh, n);
    }
    assert_int_equal(rp_store_device_status_get(db->s, dev1, &rep), RP_OK);
    assert_true(rep.events_kept == RP_DEVICE_EVENTS_KEEP && rep.dropped_service == 50);
    assert_int_equal(rp_store_device_events(db->s, dev1, INT64_MAX, 5000, count_event, &g), RP_OK);
    assert_true(g.n == RP_DEVICE_EVENTS_KEEP && g.first == RP_DEVICE_EVENTS_KEEP + 49 &&
                g.last == 50);
    /* An event dropped before, sent again: not taken again, not counted twice. */
    assert_int_equal(rp_store_device_status_put(db->s, dev1, 2400, NULL, 0, ev, 10, 4, &fresh),
                     RP_OK);
    assert_int_equal(fresh, 0);
    assert_int_equal(rp_store_device_status_get(db->s, dev1, &rep), RP_OK);
    assert_true(rep.events_kept == RP_DEVICE_EVENTS_KEEP && rep.dropped_service == 50);
    /* Pages: newest first, below a number. */
    memset(&g, 0, sizeof(g));
    assert_int_equal(rp_store_device_events(db->s, dev1, 100, 10, count_event, &g), RP_OK);
    assert_true(g.n == 10 && g.first == 99 && g.last == 90);
}

/* A page as the API's parameters make it (rp_page_parse: the one parser). */
static rp_page_t *mkpage(rp_page_t *p, const char *after, const char *prefix, int limit)
{
    char q[600];
    int n = snprintf(q, sizeof(q), "limit=%d", limit);

    /* (the test's keys need no percent-encoding but the 0xff bytes, which it spells %FF) */
    if (after[0] != '\0')
        n += snprintf(q + n, sizeof(q) - (size_t)n, "&after=%s", after);
    if (prefix[0] != '\0')
        snprintf(q + n, sizeof(q) - (size_t)n, "&prefix=%s", prefix);
    assert_true(rp_page_parse(q, p));
    return p;
}

/* The paging parameters (paging.h): their bounds; a prefix's range [prefix, upto) bytewise, with
 * its edges (a last byte of 0xff carries, '%' and '_' are bytes like any other); next_after. */
static void page_params_and_range(void **state)
{
    rp_page_t p;
    json_t *page, *next;

    (void)state;
    assert_true(rp_page_parse(NULL, &p));
    assert_false(p.paged);
    assert_int_equal(p.whole_max, RP_PAGE_WHOLE_MAX + 1); /* whole: one more than it answers */
    assert_true(rp_page_parse("", &p));
    assert_false(p.paged);
    assert_true(rp_page_parse("limit=2&after=t_a&prefix=c", &p));
    assert_true(p.paged);
    assert_int_equal(p.limit, 2);
    assert_string_equal(p.after, "t_a");
    assert_string_equal(p.prefix, "c");
    assert_string_equal(p.upto, "d");
    assert_false(p.no_upto);
    assert_true(rp_page_parse("after=x", &p));
    assert_int_equal(p.limit, RP_PAGE_DEFAULT);
    assert_true(p.no_upto); /* no prefix: no end */
    assert_true(rp_page_parse("limit=1000", &p));
    const char *bad[] = {"limit=0",  "limit=1001",      "limit=-1",
                         "limit=1x", "limit=",          "limit=01",
                         "after=",   "prefix=",         "prefix=%01",
                         "bogus=1",  "limit=1&limit=2", "limit=99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(rp_page_parse(bad[i], &p));
    char longkey[RP_PAGE_KEY_MAX + 16] = "after=";
    memset(longkey + 6, 'a', RP_PAGE_KEY_MAX + 1);
    longkey[6 + RP_PAGE_KEY_MAX + 1] = '\0';
    assert_false(rp_page_parse(longkey, &p));
    longkey[6 + RP_PAGE_KEY_MAX] = '\0';
    assert_true(rp_page_parse(longkey, &p));

    /* the prefix's successor */
    assert_true(rp_page_parse("prefix=ab", &p));
    assert_string_equal(p.upto, "ac");
    assert_true(rp_page_parse("prefix=a%FF", &p));
    assert_string_equal(p.prefix, "a\xff");
    assert_string_equal(p.upto, "b");
    assert_false(p.no_upto);
    assert_true(rp_page_parse("prefix=a%FE%FF%FF", &p));
    assert_string_equal(p.upto, "a\xff");
    assert_true(rp_page_parse("prefix=%FF%FF", &p));
    assert_true(p.no_upto);
    assert_true(rp_page_parse("prefix=c%25", &p)); /* "c%" */
    assert_string_equal(p.upto, "c&");
    assert_true(rp_page_parse("prefix=c_", &p));
    assert_string_equal(p.upto, "c`");
    assert_true(rp_page_parse("prefix=%C3%A9", &p)); /* é: the next code point's bytes */
    assert_string_equal(p.upto, "\xc3\xaa");

    /* next_after: the last ID of a full page, null after a short one (or unpaged) */
    page = json_pack("[{s:s}, {s:s}]", "id", "t_a", "id", "t_b");
    assert_true(rp_page_parse("limit=2", &p));
    next = rp_page_next(page, &p, "id");
    assert_string_equal(json_string_value(next), "t_b");
    json_decref(next);
    assert_true(rp_page_parse("limit=3", &p));
    next = rp_page_next(page, &p, "id");
    assert_true(json_is_null(next));
    json_decref(page);
    page = json_pack("[s, s]", "d1", "d2"); /* a list of IDs */
    assert_true(rp_page_parse("limit=2", &p));
    next = rp_page_next(page, &p, NULL);
    assert_string_equal(json_string_value(next), "d2");
    json_decref(next);
    json_decref(page);
}

static void count_product(void *ctx, const rp_product_t *p)
{
    (void)p;
    (*(int *)ctx)++;
}

static void count_id(void *ctx, const char *device_id)
{
    (void)device_id;
    (*(int *)ctx)++;
}

static void count_device(void *ctx, const rp_device_t *d)
{
    (void)d;
    (*(int *)ctx)++;
}

/* Review r15web M4: a list asked for whole reads at most whole_max rows (the API's one more than
 * it answers, paging.h), whichever list: the devices, tokens, products, a group's devices; the
 * store's own callers (no page) read every row. */
static void store_whole_lists_capped(void **state)
{
    struct db *db = *state;
    rp_page_t whole;
    rp_product_t pr;
    rp_group_t g;
    char id[RP_DEVICE_ID_SIZE], name[16];
    uint8_t h[RP_SHA256_LEN] = {0x60};
    rp_token_t t;
    int n;

    assert_true(rp_page_parse(NULL, &whole));
    whole.whole_max = 2;
    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "P0", &pr), RP_OK);
    assert_int_equal(rp_store_group_create(db->s, &pr, "G", false, &g), RP_OK);
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "%064x", 0xf00 + i);
        assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, id, 1000), RP_OK);
        assert_int_equal(rp_store_device_assign(db->s, &g, id, 1100), RP_OK);
        h[1] = (uint8_t)i;
        assert_int_equal(rp_store_token_add(db->s, db->tenant.id, RP_ROLE_READER, h, 0, NULL, &t),
                         RP_OK);
        snprintf(name, sizeof(name), "P%d", i + 1);
        assert_int_equal(rp_store_product_create(db->s, db->tenant.id, name, &pr), RP_OK);
    }
    n = 0;
    assert_int_equal(rp_store_device_page(db->s, db->tenant.id, &whole, RP_DEVICE_STATE_ANY, 2000,
                                          count_device, &n),
                     RP_OK);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(rp_store_token_list(db->s, db->tenant.id, &whole, count_tokens, &n), RP_OK);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(rp_store_token_list(db->s, db->tenant.id, NULL, count_tokens, &n), RP_OK);
    assert_int_equal(n, 3);
    n = 0;
    assert_int_equal(rp_store_product_list(db->s, db->tenant.id, &whole, count_product, &n), RP_OK);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(rp_store_product_list(db->s, db->tenant.id, NULL, count_product, &n), RP_OK);
    assert_int_equal(n, 4);
    n = 0;
    assert_int_equal(rp_store_group_members(db->s, g.id, &whole, count_id, &n), RP_OK);
    assert_int_equal(n, 2);
    whole.whole_max = 0; /* every one */
    n = 0;
    assert_int_equal(rp_store_group_members(db->s, g.id, &whole, count_id, &n), RP_OK);
    assert_int_equal(n, 3);
}

struct id_list {
    char ids[8][RP_DEVICE_ID_SIZE];
    int n;
};

static void page_id(void *ctx, const rp_device_t *d)
{
    struct id_list *l = ctx;

    if (l->n < 8)
        snprintf(l->ids[l->n++], sizeof(l->ids[0]), "%s", d->id);
}

/* rp_store_device_page: ID order, from the cursor, a short page at the end, the prefix filter
 * (an index range: a whole ID as the prefix, and a prefix ending in 0, find theirs). */
static void store_device_page(void **state)
{
    struct db *db = *state;
    char ids[5][RP_DEVICE_ID_SIZE];
    const char lead[5][3] = {"b0", "ab", "a0", "ac", "00"};
    struct id_list l;
    rp_page_t p;

    for (int i = 0; i < 5; i++) {
        memset(ids[i], i == 1 ? 'f' : '0', RP_DEVICE_ID_LEN);
        memcpy(ids[i], lead[i], 2);
        ids[i][RP_DEVICE_ID_LEN] = '\0';
        assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, ids[i], 1000), RP_OK);
    }
    /* order and the cursor: 00.., a0.., ab.., then ac.., b0.. */
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_device_page(db->s, db->tenant.id, mkpage(&p, "", "", 3),
                                          RP_DEVICE_STATE_ANY, 2000, page_id, &l),
                     RP_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.ids[0], ids[4]);
    assert_string_equal(l.ids[1], ids[2]);
    assert_string_equal(l.ids[2], ids[1]);
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_device_page(db->s, db->tenant.id, mkpage(&p, ids[1], "", 3),
                                          RP_DEVICE_STATE_ANY, 2000, page_id, &l),
                     RP_OK);
    assert_int_equal(l.n, 2); /* the end: a short page */
    assert_string_equal(l.ids[0], ids[3]);
    assert_string_equal(l.ids[1], ids[0]);
    /* the prefix: "a" from the cursor, a whole ID, one ending in 0, none; a cursor before the
     * prefix's range */
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_device_page(db->s, db->tenant.id, mkpage(&p, ids[2], "a", 10),
                                          RP_DEVICE_STATE_ANY, 2000, page_id, &l),
                     RP_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ids[0], ids[1]);
    assert_string_equal(l.ids[1], ids[3]);
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_device_page(db->s, db->tenant.id, mkpage(&p, "", ids[3], 10),
                                          RP_DEVICE_STATE_ANY, 2000, page_id, &l),
                     RP_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.ids[0], ids[3]);
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_device_page(db->s, db->tenant.id, mkpage(&p, "", "b0", 10),
                                          RP_DEVICE_STATE_ANY, 2000, page_id, &l),
                     RP_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.ids[0], ids[0]);
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_device_page(db->s, db->tenant.id, mkpage(&p, "", "c", 10),
                                          RP_DEVICE_STATE_ANY, 2000, page_id, &l),
                     RP_OK);
    assert_int_equal(l.n, 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_device_page(db->s, db->tenant.id, mkpage(&p, ids[4], "ab", 10),
                                          RP_DEVICE_STATE_ANY, 2000, page_id, &l),
                     RP_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.ids[0], ids[1]);
}

/* The devices whose row's verdict (last_passed, migration 20) is not the one of the attestation
 * it points at: none, ever (the recorder writes both in one transaction). */
static int64_t verdicts_astray(struct db *db)
{
    sq_st_t *st = sq_prepare(db->s, "SELECT count(*) FROM devices d LEFT JOIN attestations a"
                                    " ON a.id = d.last_attestation"
                                    " WHERE d.last_passed IS DISTINCT FROM a.passed");
    int64_t n;

    assert_non_null(st);
    assert_int_equal(db_step(st), DB_ROW);
    n = db_column_int64(st, 0);
    sq_finalize(st);
    return n;
}

static struct id_list *state_page(struct db *db, rp_device_state_t state, struct id_list *l)
{
    rp_page_t p;

    memset(l, 0, sizeof(*l));
    assert_int_equal(
        rp_store_device_page(db->s, db->tenant.id, mkpage(&p, "", "", 10), state, 2000, page_id, l),
        RP_OK);
    return l;
}

/* The pages of one state, on both engines: failed follows each device's latest verdict (pass,
 * fail, pass again; an unproven failure changes nothing), blocked and quarantined their
 * columns; a state that is none is refused. */
static void store_device_state_pages(void **state)
{
    struct db *db = *state;
    char ids[3][RP_DEVICE_ID_SIZE];
    rp_attestation_t a;
    rp_attestation_write_t w;
    rp_page_t p;
    struct id_list l;
    sq_st_t *st;

    for (int i = 0; i < 3; i++) {
        memset(ids[i], 'a' + i, RP_DEVICE_ID_LEN);
        ids[i][RP_DEVICE_ID_LEN] = '\0';
        assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, ids[i], 1000), RP_OK);
    }
    assert_int_equal(verdicts_astray(db), 0);
    assert_int_equal(state_page(db, RP_DEVICE_STATE_FAILED, &l)->n, 0);
    assert_int_equal(state_page(db, RP_DEVICE_STATE_NEVER_SEEN, &l)->n, 3);
    /* a fails, b passes, then a passes and b fails */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 2; i++) {
            fill(&a, ids[i], db->tenant.id, (i == 1) == (round == 0));
            w = write_of(&a, NULL, NULL);
            assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
        }
        assert_int_equal(verdicts_astray(db), 0);
        state_page(db, RP_DEVICE_STATE_FAILED, &l);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.ids[0], ids[round == 0 ? 0 : 1]);
        state_page(db, RP_DEVICE_STATE_ATTESTED, &l);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.ids[0], ids[round == 0 ? 1 : 0]);
    }
    /* an unproven failure (a bad signature) is not the device's verdict */
    fill(&a, ids[0], db->tenant.id, false);
    w = write_of(&a, NULL, NULL);
    w.unproven = true;
    w.source = "198.51.100.1";
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
    assert_int_equal(verdicts_astray(db), 0);
    assert_string_equal(state_page(db, RP_DEVICE_STATE_FAILED, &l)->ids[0], ids[1]);
    assert_int_equal(l.n, 1);
    assert_int_equal(state_page(db, RP_DEVICE_STATE_NEVER_SEEN, &l)->n, 1);
    assert_string_equal(l.ids[0], ids[2]);

    /* blocked: b; quarantined: c */
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, ids[1], 1500), RP_OK);
    st = sq_prepare(db->s, "UPDATE devices SET quarantined_at = 1500 WHERE id = ?");
    assert_non_null(st);
    db_bind_text(st, 1, ids[2]);
    assert_int_equal(db_step(st), DB_DONE);
    sq_finalize(st);
    assert_int_equal(state_page(db, RP_DEVICE_STATE_BLOCKED, &l)->n, 1);
    assert_string_equal(l.ids[0], ids[1]);
    assert_int_equal(state_page(db, RP_DEVICE_STATE_QUARANTINED, &l)->n, 1);
    assert_string_equal(l.ids[0], ids[2]);
    assert_int_equal(rp_store_device_unblock(db->s, db->tenant.id, ids[1]), RP_OK);
    assert_int_equal(state_page(db, RP_DEVICE_STATE_BLOCKED, &l)->n, 0);
    assert_int_equal(rp_store_device_page(db->s, db->tenant.id, mkpage(&p, "", "", 10),
                                          RP_DEVICE_STATE_COUNT, 2000, page_id, &l),
                     RP_ERR_INVALID_ARG);
}

/* The rare states, each page read from its own partial index (migration 20). */
static const struct {
    rp_device_state_t state;
    const char *index;
} rare_pages[] = {
    {RP_DEVICE_STATE_BLOCKED,     "devices_blocked"    },
    {RP_DEVICE_STATE_QUARANTINED, "devices_quarantined"},
    {RP_DEVICE_STATE_FAILED,      "devices_failed"     },
};

/* On PostgreSQL too, the rare states' pages read their partial index (EXPLAIN; the planner told
 * not to read a table whole, which on a few rows it would rather do). */
static void store_device_state_plans_pg(void **state)
{
    struct db *db = *state;
    rp_page_t p;

    if (rt_pg_uri() == NULL)
        skip(); /* PostgreSQL's plans; SQLite's: store_page_plans */
    assert_int_equal(sq_exec(db->s, "SET enable_seqscan = off"), RP_OK);
    for (size_t i = 0; i < sizeof(rare_pages) / sizeof(rare_pages[0]); i++) {
        char *sql = NULL, plan[4096] = "";
        size_t n = 0;
        sq_st_t *st;

        assert_true(asprintf(&sql, "EXPLAIN %s", sq_sql_device_page[rare_pages[i].state]) > 0);
        st = sq_prepare(db->s, sql);
        assert_non_null(st);
        sq_bind_page(st, mkpage(&p, "", "", 10));
        db_bind_text(st, db_param(st, ":tenant"), db->tenant.id);
        while (db_step(st) == DB_ROW && n < sizeof(plan))
            n += (size_t)snprintf(plan + n, sizeof(plan) - n, "%s; ", db_column_text(st, 0));
        sq_finalize(st);
        free(sql);
        if (strstr(plan, rare_pages[i].index) == NULL)
            fail_msg("state %d: %s", (int)rare_pages[i].state, plan);
    }
    assert_int_equal(sq_exec(db->s, "RESET enable_seqscan"), RP_OK);
}

/* Migration 20 seeds each device's verdict from the attestation its row points at. */
static void store_verdict_seeded(void **state)
{
    RT_SQLITE_ONLY(); /* SQLite's file, taken back to schema 19 */
    struct db *db = *state;
    char ids[3][RP_DEVICE_ID_SIZE];
    rp_attestation_t a;
    rp_attestation_write_t w;
    struct id_list l;
    sqlite3 *raw;
    char path[128];

    for (int i = 0; i < 3; i++) {
        memset(ids[i], 'a' + i, RP_DEVICE_ID_LEN);
        ids[i][RP_DEVICE_ID_LEN] = '\0';
        assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, ids[i], 1000), RP_OK);
        if (i < 2) { /* a fails, b passes, c never attests */
            fill(&a, ids[i], db->tenant.id, i == 1);
            w = write_of(&a, NULL, NULL);
            assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
        }
    }
    snprintf(path, sizeof(path), "%s/rampart.db", db->t.dir);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, UNDO_20, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    rp_store_close(db->s);
    assert_int_equal(rt_store_open(&db->t, &db->s), RP_OK);
    assert_int_equal(rp_store_schema_version(db->s), rp_store_schema_newest);
    assert_int_equal(verdicts_astray(db), 0);
    assert_int_equal(state_page(db, RP_DEVICE_STATE_FAILED, &l)->n, 1);
    assert_string_equal(l.ids[0], ids[0]);
}

/* The query plan of sql (the store's statement) as one string: each step's detail, "; " apart. */
static void query_plan(struct db *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st;
    char explain[4096];
    size_t n = 0;

    snprintf(explain, sizeof(explain), "EXPLAIN QUERY PLAN %s", sql);
    assert_int_equal(sqlite3_prepare_v2(rp_db_sqlite_handle(db->s->db), explain, -1, &st, NULL),
                     SQLITE_OK);
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%s; ", (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
}

/* Whether the plan reads no table whole (a constant row is no table). */
static bool no_scan(const char *plan)
{
    for (const char *p = strstr(plan, "SCAN "); p != NULL; p = strstr(p + 1, "SCAN "))
        if (strncmp(p, "SCAN CONSTANT ROW", 17) != 0)
            return false;
    return true;
}

/* How many virtual machine steps one page of the device list takes (what the read costs). */
static int device_page_steps(struct db *db, const rp_page_t *p)
{
    sq_st_t *st = sq_prepare(db->s, sq_sql_device_page[RP_DEVICE_STATE_ANY]);
    int rows = 0;

    assert_non_null(st);
    sq_bind_page(st, p);
    db_bind_text(st, db_param(st, ":tenant"), db->tenant.id);
    while (db_step(st) == DB_ROW)
        rows++;
    assert_int_equal(rows, p->limit);
    rows = sqlite3_stmt_status(rp_db_sqlite_stmt(st->h), SQLITE_STMTSTATUS_VM_STEP, 0);
    sq_finalize(st);
    return rows;
}

/* The pages that must stay index ranges at 100,000 devices do (EXPLAIN QUERY PLAN: one SEARCH
 * each, no table scan, no sort), and a page's cost does not grow with the rows before it or
 * outside its prefix: the device list's prefix is a range of devices_tenant, not a filter. */
static void store_page_plans(void **state)
{
    RT_SQLITE_ONLY(); /* SQLite's query plans and VM steps */
    struct db *db = *state;
    char plan[2048];
    rp_page_t p;
    int first, far, prefixed;

    query_plan(db, sq_sql_device_page[RP_DEVICE_STATE_ANY], plan, sizeof(plan));
    assert_non_null(strstr(plan, "SEARCH d USING INDEX devices_tenant (tenant_id=? AND id>? AND "
                                 "id<?)"));
    assert_null(strstr(plan, "TEMP B-TREE"));
    /* the rare states' pages read their own partial index (migration 20), not the fleet */
    {
        for (size_t i = 0; i < sizeof(rare_pages) / sizeof(rare_pages[0]); i++) {
            char search[128];
            snprintf(search, sizeof(search),
                     "SEARCH d USING INDEX %s (tenant_id=? AND id>? AND id<?)",
                     rare_pages[i].index);
            query_plan(db, sq_sql_device_page[rare_pages[i].state], plan, sizeof(plan));
            if (strstr(plan, search) == NULL)
                fail_msg("state %d: %s", (int)rare_pages[i].state, plan);
            assert_true(no_scan(plan));
            assert_null(strstr(plan, "TEMP B-TREE"));
        }
    }
    query_plan(db, sq_sql_members_page, plan, sizeof(plan));
    assert_non_null(strstr(plan, "USING COVERING INDEX group_members_group (group_id=? AND "
                                 "device_id>? AND device_id<?)"));
    assert_null(strstr(plan, "TEMP B-TREE"));
    query_plan(db, sq_sql_deploy_devices, plan, sizeof(plan));
    assert_non_null(strstr(plan, "MERGE (UNION ALL)"));
    assert_non_null(strstr(plan, "group_members_group (group_id=? AND device_id>? AND "
                                 "device_id<?)"));
    assert_non_null(strstr(plan, "PRIMARY KEY (deployment_id=? AND device_id>? AND device_id<?)"));
    assert_true(no_scan(plan));
    assert_null(strstr(plan, "TEMP B-TREE"));
    /* a device's re-enrollments of the last hour: a range of its certificates still valid, not
     * every certificate it was ever given */
    query_plan(db, sq_sql_reissued_recent, plan, sizeof(plan));
    assert_non_null(strstr(plan, "SEARCH certificates USING INDEX certificates_device (device_id=? "
                                 "AND not_after>?)"));
    assert_true(no_scan(plan));
    /* a deployment's counts are its rows' (the counters): no statement counts its devices */

    /* 3000 devices, their IDs spread over the key space: a page's steps, first, far on, or under
     * a prefix (in the middle: a cursor's bound alone would read every ID before it), stay those
     * of a page */
    assert_int_equal(sqlite3_exec(rp_db_sqlite_handle(db->s->db),
                                  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                                  " WHERE i < 3000) INSERT INTO devices (id, tenant_id, claimed_at)"
                                  " SELECT printf('%08x%056d', (i * 2654435761) % 4294967296, i),"
                                  " (SELECT id FROM tenants WHERE name = 'acme'), 1 FROM n",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    first = device_page_steps(db, mkpage(&p, "", "", 10));
    far = device_page_steps(db, mkpage(&p, "b", "", 10));
    prefixed = device_page_steps(db, mkpage(&p, "", "b", 10));
    assert_true(far < 2 * first + 100);
    assert_true(prefixed < 2 * first + 100);
    prefixed = device_page_steps(db, mkpage(&p, "a", "b", 10)); /* a cursor before the prefix */
    assert_true(prefixed < 2 * first + 100);
}

struct names {
    int n;
    char v[16][RP_NAME_MAX + 1];
    char ids[16][RP_ID_SIZE];
};

static void page_product(void *ctx, const rp_product_t *p)
{
    struct names *l = ctx;

    if (l->n < 16) {
        snprintf(l->v[l->n], sizeof(l->v[0]), "%s", p->name);
        snprintf(l->ids[l->n++], sizeof(l->ids[0]), "%s", p->id);
    }
}

static void page_tenant(void *ctx, const rp_tenant_t *t)
{
    struct names *l = ctx;

    if (l->n < 16) {
        snprintf(l->v[l->n], sizeof(l->v[0]), "%s", t->name);
        snprintf(l->ids[l->n++], sizeof(l->ids[0]), "%s", t->id);
    }
}

static void page_member(void *ctx, const char *device_id)
{
    struct names *l = ctx;

    if (l->n < 16)
        snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", device_id);
}

/* Every product whose name starts with prefix, by paging with limit through next_after. */
static int walk_products(struct db *db, const char *prefix, int limit, struct names *all)
{
    char after[RP_ID_SIZE] = "";
    rp_page_t p;

    memset(all, 0, sizeof(*all));
    for (int pages = 0; pages < 20; pages++) {
        struct names one = {0};

        assert_int_equal(rp_store_product_list(db->s, db->tenant.id,
                                               mkpage(&p, after, prefix, limit), page_product,
                                               &one),
                         RP_OK);
        for (int i = 0; i < one.n && all->n < 16; i++) {
            if (all->n > 0)
                assert_true(strcmp(all->ids[all->n - 1], one.ids[i]) < 0); /* ID order */
            memcpy(all->v[all->n], one.v[i], sizeof(one.v[i]));
            memcpy(all->ids[all->n++], one.ids[i], sizeof(one.ids[i]));
        }
        if (one.n < limit)
            return pages + 1;
        snprintf(after, sizeof(after), "%s", one.ids[one.n - 1]);
    }
    fail();
    return 0;
}

static bool has_name(const struct names *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i], name) == 0)
            return true;
    return false;
}

/* The lists paged in SQL: across page boundaries in ID order with no row twice or lost; a prefix
 * is bytes (not LIKE: '%' and '_' match themselves only), in byte order (é's range ends before
 * ê), and a last byte 0xff carries; a group's devices page too. */
static void store_lists_paged(void **state)
{
    struct db *db = *state;
    static const char *const names[] = {"cam", "cat",   "c%t",       "c_t",
                                        "ca",  "alpha", "Caf\u00e9", "Caf\u00ea"};
    struct names all, l;
    rp_product_t pr;
    rp_group_t g;
    rp_page_t p;
    char dev[RP_DEVICE_ID_SIZE];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_int_equal(rp_store_product_create(db->s, db->tenant.id, names[i], &pr), RP_OK);
    /* two names the API never takes (no UTF-8), straight into the table: 0xff bytes (SQLite's
     * text may hold them; PostgreSQL's never does) */
    bool raw = rt_pg_uri() == NULL;
    if (raw)
        assert_int_equal(sqlite3_exec(rp_db_sqlite_handle(db->s->db),
                                      "INSERT INTO products (id, tenant_id, name, created) SELECT"
                                      " 'p_ff1', id, CAST(x'7aff' AS TEXT), 1 FROM tenants WHERE"
                                      " name = 'acme';"
                                      "INSERT INTO products (id, tenant_id, name, created) SELECT"
                                      " 'p_ff2', id, CAST(x'7aff31' AS TEXT), 1 FROM tenants WHERE"
                                      " name = 'acme';",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_equal(db->s->db->drv->exec(db->s->db,
                                          "INSERT INTO products (id, tenant_id, name, created)"
                                          " SELECT 'p_ff3', id, '{', 1 FROM tenants WHERE"
                                          " name = 'acme'"),
                     RP_OK);
    int rows = raw ? 11 : 9;
    assert_int_equal(walk_products(db, "", 3, &all), rows / 3 + 1); /* 11 rows: 3 + 3 + 3 + 2 */
    assert_int_equal(all.n, rows);
    assert_int_equal(walk_products(db, "", rows, &all),
                     2); /* a full last page: then an empty one */
    assert_int_equal(all.n, rows);
    walk_products(db, "c%", 1, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "c%t");
    walk_products(db, "c_", 2, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "c_t");
    walk_products(db, "ca", 2, &l);
    assert_int_equal(l.n, 3);
    assert_true(has_name(&l, "ca") && has_name(&l, "cam") && has_name(&l, "cat"));
    walk_products(db, "Caf%C3%A9", 2, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "Caf\u00e9");
    /* a prefix cut inside a character: its range still (PostgreSQL's bounds rounded up to text) */
    walk_products(db, "Caf%C3", 5, &l);
    assert_int_equal(l.n, 2);
    assert_true(has_name(&l, "Caf\u00e9") && has_name(&l, "Caf\u00ea"));
    walk_products(db, "z%FF", 1, &l);
    assert_int_equal(l.n, raw ? 2 : 0);
    if (raw)
        assert_true(has_name(&l, "z\xff") && has_name(&l, "z\xff"
                                                          "1"));
    walk_products(db, "%FF", 5, &l);
    assert_int_equal(l.n, 0);

    /* tenants: all, or only one; a page by name prefix, across pages */
    rp_tenant_t t1, t2;
    assert_int_equal(rp_store_tenant_create(db->s, "bravo", &t1), RP_OK);
    assert_int_equal(rp_store_tenant_create(db->s, "beta", &t2), RP_OK);
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_tenant_list(db->s, NULL, mkpage(&p, "", "b", 1), page_tenant, &l),
                     RP_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.ids[0], strcmp(t1.id, t2.id) < 0 ? t1.id : t2.id);
    assert_int_equal(
        rp_store_tenant_list(db->s, NULL, mkpage(&p, l.ids[0], "b", 1), page_tenant, &l), RP_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ids[1], strcmp(t1.id, t2.id) < 0 ? t2.id : t1.id);
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_tenant_list(db->s, t1.id, NULL, page_tenant, &l), RP_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "bravo");
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_tenant_list(db->s, t1.id, mkpage(&p, "", "be", 10), page_tenant, &l),
                     RP_OK);
    assert_int_equal(l.n, 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_tenant_list(db->s, NULL, NULL, page_tenant, &l), RP_OK);
    assert_int_equal(l.n, 3);

    /* a group's devices: ID order, the cursor, a prefix */
    assert_int_equal(rp_store_group_find(db->s, &pr, "Field Test", &g), RP_OK);
    for (int i = 0; i < 5; i++) {
        snprintf(dev, sizeof(dev), "%c%063d", "ba9ab"[i], i);
        assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, dev, 1000), RP_OK);
        assert_int_equal(rp_store_device_assign(db->s, &g, dev, 1000), RP_OK);
    }
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_group_members(db->s, g.id, mkpage(&p, "", "", 2), page_member, &l),
                     RP_OK);
    assert_int_equal(l.n, 2);
    assert_true(l.v[0][0] == '9' && l.v[1][0] == 'a');
    memset(&l, 0, sizeof(l));
    assert_int_equal(
        rp_store_group_members(db->s, g.id, mkpage(&p, l.v[1], "", 9), page_member, &l), RP_OK);
    assert_int_equal(l.n, 5); /* (the cursor was "": l was cleared first) */
    snprintf(dev, sizeof(dev), "a%063d", 1);
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_group_members(db->s, g.id, mkpage(&p, dev, "", 9), page_member, &l),
                     RP_OK);
    assert_int_equal(l.n, 3);
    assert_true(l.v[0][0] == 'a' && l.v[1][0] == 'b' && l.v[2][0] == 'b');
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_group_members(db->s, g.id, mkpage(&p, "", "b", 9), page_member, &l),
                     RP_OK);
    assert_int_equal(l.n, 2);
    memset(&l, 0, sizeof(l));
    assert_int_equal(rp_store_group_members(db->s, g.id, NULL, page_member, &l), RP_OK);
    assert_int_equal(l.n, 5);
}

/* What the old detail computed in C from every row, as the reference for the SQL counts. */
struct expect {
    const rp_deployment_t *d;
    int selected, in_group;
};

static void count_member(void *ctx, const char *device_id)
{
    struct expect *e = ctx;

    e->in_group++;
    e->selected += rp_deployment_selects(e->d, device_id);
}

struct states {
    int64_t pending, installed, failed, other;
};

static void count_state(void *ctx, const char *state, int64_t n)
{
    struct states *c = ctx;

    if (strcmp(state, "pending") == 0)
        c->pending += n;
    else if (strcmp(state, "installed") == 0)
        c->installed += n;
    else if (strcmp(state, "failed") == 0)
        c->failed += n;
    else
        c->other += n;
}

struct dev_rows {
    int n;
    char last[RP_DEVICE_ID_SIZE];
    char moved[RP_DEVICE_ID_SIZE];
    bool saw_moved, sorted;
    int pending;
};

static void deploy_row(void *ctx, const rp_device_update_t *u)
{
    struct dev_rows *r = ctx;

    if (r->n > 0 && strcmp(r->last, u->device_id) >= 0)
        r->sorted = false;
    snprintf(r->last, sizeof(r->last), "%s", u->device_id);
    r->n++;
    r->saw_moved |= strcmp(u->device_id, r->moved) == 0;
    r->pending += strcmp(u->state, "pending") == 0;
}

/* A deployment's progress counted in SQL equals what counting every row gives, with a partial
 * rollout, reports of each kind, a device reached but not reporting, one reporting "pending", and
 * one that reported and left the group; its devices page through in ID order, all of them. */
static void store_deployment_progress(void **state)
{
    struct db *db = *state;
    rp_product_t pr;
    rp_group_t g, other;
    rp_deployment_t d;
    rp_image_key_record_t k;
    rp_image_record_t img;
    rp_deploy_progress_t got;
    struct expect e = {&d, 0, 0};
    struct states st = {0};
    struct dev_rows rows = {.sorted = true};
    rp_device_update_t u;
    rp_page_t p;
    char ids[300][RP_DEVICE_ID_SIZE];
    int selected_seen = 0, n_updates = 0;

    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "Meter", &pr), RP_OK);
    assert_int_equal(rp_store_group_find(db->s, &pr, "Field Test", &g), RP_OK);
    assert_int_equal(rp_store_group_find(db->s, &pr, "Production", &other), RP_OK);
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
    memset(&d, 0, sizeof(d));
    snprintf(d.tenant_id, sizeof(d.tenant_id), "%s", db->tenant.id);
    snprintf(d.group_id, sizeof(d.group_id), "%s", g.id);
    d.rollout = 40;
    d.nimages = 1;
    snprintf(d.image_ids[0], RP_IMAGE_ID_SIZE, "%s", img.id);
    assert_int_equal(rp_store_deployment_create(db->s, &d), RP_OK);

    assert_int_equal(sq_begin(db->s), RP_OK);
    for (int i = 0; i < 300; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%08x%056d", (unsigned)(i * 2654435761u), i);
        assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, ids[i], 1000), RP_OK);
        assert_int_equal(rp_store_device_assign(db->s, &g, ids[i], 1000), RP_OK);
    }
    assert_int_equal(sq_end(db->s, RP_OK), RP_OK);
    /* reports from the selected devices: installed, failed, pending (reached or not) */
    for (int i = 0; i < 300; i++) {
        if (!rp_deployment_selects(&d, ids[i]))
            continue;
        selected_seen++;
        memset(&u, 0, sizeof(u));
        memcpy(u.device_id, ids[i], sizeof(u.device_id));
        snprintf(u.deployment_id, sizeof(u.deployment_id), "%s", d.id);
        u.at = 2000;
        if (selected_seen % 5 == 0 || selected_seen % 5 == 1)
            snprintf(u.state, sizeof(u.state), "%s", selected_seen % 5 ? "failed" : "installed");
        else if (selected_seen % 5 == 2)
            snprintf(u.state, sizeof(u.state), "pending");
        if (u.state[0] != '\0') {
            assert_int_equal(rp_store_device_update_set(db->s, &u), RP_OK);
            n_updates++;
        }
        if (selected_seen % 5 == 3) /* reached, no report */
            assert_int_equal(rp_store_deployment_reached(db->s, d.id, ids[i], 2000), RP_OK);
        if (selected_seen == 2) /* reported "pending" and reached */
            assert_int_equal(rp_store_deployment_reached(db->s, d.id, ids[i], 2000), RP_OK);
        if (selected_seen == 1) /* reported (failed), then left the group */
            memcpy(rows.moved, ids[i], sizeof(rows.moved));
    }
    assert_true(selected_seen > 60 && selected_seen < 180);
    assert_int_equal(rp_store_device_assign(db->s, &other, rows.moved, 3000), RP_OK);
    /* a device that is not selected reports anyway: refused (the deployment does not target it),
     * and so is the one that left */
    for (int i = 0; i < 300; i++) {
        if (rp_deployment_selects(&d, ids[i]))
            continue;
        memset(&u, 0, sizeof(u));
        memcpy(u.device_id, ids[i], sizeof(u.device_id));
        snprintf(u.deployment_id, sizeof(u.deployment_id), "%s", d.id);
        snprintf(u.state, sizeof(u.state), "installed");
        assert_int_equal(rp_store_device_update_set(db->s, &u), RP_ERR_NOT_FOUND);
        memcpy(u.device_id, rows.moved, sizeof(u.device_id));
        assert_int_equal(rp_store_device_update_set(db->s, &u), RP_ERR_NOT_FOUND);
        break;
    }

    assert_int_equal(rp_store_group_members(db->s, g.id, NULL, count_member, &e), RP_OK);
    assert_int_equal(rp_store_deployment_progress(db->s, &d, &got, count_state, &st), RP_OK);
    assert_int_equal(got.in_group, 299);
    assert_int_equal(got.in_group, e.in_group);
    assert_int_equal(got.selected, e.selected);
    assert_int_equal(got.selected, selected_seen - 1); /* the one that left */
    /* reported by the devices it targets: 1/5 installed, 1/5 failed (less the one that moved
     * away: it counts as left), 1/5 pending; the rest of the selected have no report */
    int n5 = selected_seen / 5, r = selected_seen % 5;
    int64_t installed = n5, failed = n5 + (r >= 1) - 1, pending_rows = n5 + (r >= 2);
    assert_int_equal(st.installed, installed);
    assert_int_equal(st.failed, failed);
    assert_int_equal(st.pending, pending_rows);
    assert_int_equal(st.other, 0);
    assert_int_equal(n_updates, installed + failed + pending_rows + 1);
    assert_int_equal(got.left, 1);
    /* the selected members with no report: all selected but those that reported (the moved one
     * is no longer a member) */
    assert_int_equal(got.unreported, (selected_seen - 1) - (n_updates - 1));
    /* reached: every report past pending, those reached without one, and the one reporting
     * pending that was reached */
    assert_int_equal(got.reached, installed + failed + (n5 + (r >= 3)) + 1);

    /* its devices: every selected member and the one that left, in ID order */
    assert_int_equal(rp_store_deployment_devices(db->s, &d, NULL, deploy_row, &rows), RP_OK);
    assert_true(rows.sorted && rows.saw_moved);
    assert_int_equal(rows.n, got.selected + 1); /* + the moved one */
    assert_int_equal(rows.pending, got.unreported + pending_rows);
    /* paged through with a cursor, 7 at a time: the same rows */
    struct dev_rows paged = {.sorted = true};
    char after[RP_DEVICE_ID_SIZE] = "";
    snprintf(paged.moved, sizeof(paged.moved), "%s", rows.moved);
    for (int pages = 0; pages < 100; pages++) {
        int before = paged.n;
        assert_int_equal(
            rp_store_deployment_devices(db->s, &d, mkpage(&p, after, "", 7), deploy_row, &paged),
            RP_OK);
        if (paged.n - before < 7)
            break;
        snprintf(after, sizeof(after), "%s", paged.last);
    }
    assert_true(paged.sorted && paged.saw_moved);
    assert_int_equal(paged.n, rows.n);
    assert_int_equal(paged.pending, rows.pending);
    /* with a prefix: only those IDs */
    struct dev_rows pre = {.sorted = true};
    assert_int_equal(
        rp_store_deployment_devices(db->s, &d, mkpage(&p, "", "0", 1000), deploy_row, &pre), RP_OK);
    assert_true(pre.n > 0 && pre.n < rows.n && pre.last[0] == '0');
}

/* ---- the counters (COUNTERS_SEED) against a count of the rows ---- */

#define CTR_DEVICES 8

struct page_count {
    int64_t n;
};

static void page_count(void *ctx, const rp_device_t *d)
{
    (void)d;
    ((struct page_count *)ctx)->n++;
}

/* The tenant's devices in the state, counted a page at a time from the rows. */
static int64_t rows_in_state(struct db *db, rp_device_state_t state)
{
    struct page_count c = {0};
    rp_page_t p;

    assert_int_equal(rp_store_device_page(db->s, db->tenant.id, mkpage(&p, "", "", 1000), state,
                                          (int64_t)time(NULL), page_count, &c),
                     RP_OK);
    return c.n;
}

/* Every row of sql (no parameters but the tenant's, if it has "?"), as "a|b|...;" text. */
static void rows_text(struct db *db, const char *sql, char *out, size_t cap)
{
    sq_st_t *st = sq_prepare(db->s, sql);
    size_t n = 0;

    assert_non_null(st);
    if (strchr(sql, '?') != NULL)
        db_bind_text(st, 1, db->tenant.id);
    out[0] = '\0';
    while (db_step(st) == DB_ROW) {
        for (int c = 0; c < 5; c++)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", c ? "|" : "",
                                  (const char *)db_column_text(st, c));
        n += (size_t)snprintf(out + n, cap - n, ";");
        assert_true(n < cap);
    }
    sq_finalize(st);
}

/* The fleet page's versions, as rp_store_fleet_versions gives them, as "product|c|v|n;" text. */
static void versions_line(void *ctx, const char *product, const char *component,
                          const char *version, int64_t devices)
{
    char *out = ctx;
    size_t n = strlen(out);

    snprintf(out + n, 4096 - n, "%s|%s|%s|%lld;", product, component, version, (long long)devices);
}

/* The versions' counters (migration 24) are what the rows say: per (tenant, product ID,
 * component, version), none at 0 left; and the fleet page's answer is what the count of every
 * device's apps gave before them (the query they replaced, here as the reference), in its order. */
static void versions_counters_match(struct db *db)
{
    static const char kept[] = "SELECT tenant_id, product_id, component, version, n"
                               " FROM version_counts ORDER BY 1, 2, 3, 4";
    static const char counted[] =
        "SELECT d.tenant_id, coalesce(g.product_id, ''), a.component, a.version, count(*)"
        " FROM devices d JOIN device_apps a ON a.device_id = d.id"
        " LEFT JOIN group_members m ON m.device_id = d.id"
        " LEFT JOIN device_groups g ON g.id = m.group_id GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";
    static const char fleet_before[] =
        "SELECT coalesce(p.name, ''), a.component, a.version, count(*) AS n, ''"
        " FROM devices d JOIN device_apps a ON a.device_id = d.id"
        " LEFT JOIN group_members m ON m.device_id = d.id"
        " LEFT JOIN device_groups g ON g.id = m.group_id"
        " LEFT JOIN products p ON p.id = g.product_id"
        " WHERE d.tenant_id = ? GROUP BY 1, 2, 3 ORDER BY n DESC, 1, 2, 3 LIMIT 1000";
    char want[4096], got[4096];

    rows_text(db, counted, want, sizeof(want));
    rows_text(db, kept, got, sizeof(got));
    assert_string_equal(got, want);
    rows_text(db, fleet_before, want, sizeof(want));
    for (char *p = want; (p = strstr(p, "|;")) != NULL;) /* (its fifth column, empty) */
        memmove(p, p + 1, strlen(p + 1) + 1);
    got[0] = '\0';
    assert_int_equal(rp_store_fleet_versions(db->s, db->tenant.id, 1000, versions_line, got),
                     RP_OK);
    assert_string_equal(got, want);
}

/* The fleet's counters are what the rows say, state by state. */
static void fleet_counters_match(struct db *db)
{
    rp_fleet_counts_t n;

    assert_int_equal(rp_store_fleet_counts(db->s, db->tenant.id, 0, &n), RP_OK);
    assert_int_equal(n.total, rows_in_state(db, RP_DEVICE_STATE_ANY));
    assert_int_equal(n.attested, rows_in_state(db, RP_DEVICE_STATE_ATTESTED));
    assert_int_equal(n.failed, rows_in_state(db, RP_DEVICE_STATE_FAILED));
    assert_int_equal(n.blocked, rows_in_state(db, RP_DEVICE_STATE_BLOCKED));
    assert_int_equal(n.quarantined, rows_in_state(db, RP_DEVICE_STATE_QUARANTINED));
    assert_int_equal(n.never_seen, rows_in_state(db, RP_DEVICE_STATE_NEVER_SEEN));
    versions_counters_match(db);
}

/* What the rows say of a deployment, each counted in C from the store's lists. */
struct deploy_rows {
    const rp_deployment_t *d;
    char members[CTR_DEVICES][RP_DEVICE_ID_SIZE];
    int nmembers;
    rp_device_update_t reports[CTR_DEVICES];
    int nreports;
    char reached[CTR_DEVICES][RP_DEVICE_ID_SIZE];
    int nreached;
};

static void deploy_rows_member(void *ctx, const char *device_id)
{
    struct deploy_rows *r = ctx;

    assert_true(r->nmembers < CTR_DEVICES);
    snprintf(r->members[r->nmembers++], RP_DEVICE_ID_SIZE, "%s", device_id);
}

static void deploy_rows_report(void *ctx, const rp_device_update_t *u)
{
    struct deploy_rows *r = ctx;

    assert_true(r->nreports < CTR_DEVICES);
    r->reports[r->nreports++] = *u;
}

static void deploy_rows_reached(void *ctx, const char *device_id)
{
    struct deploy_rows *r = ctx;

    assert_true(r->nreached < CTR_DEVICES);
    snprintf(r->reached[r->nreached++], RP_DEVICE_ID_SIZE, "%s", device_id);
}

static const rp_device_update_t *deploy_rows_report_of(struct deploy_rows *r, const char *id)
{
    for (int i = 0; i < r->nreports; i++)
        if (strcmp(r->reports[i].device_id, id) == 0)
            return &r->reports[i];
    return NULL;
}

static bool deploy_rows_was_reached(struct deploy_rows *r, const char *id)
{
    for (int i = 0; i < r->nreached; i++)
        if (strcmp(r->reached[i], id) == 0)
            return true;
    return false;
}

/* Targeted now: a member of its group that its rollout selects. */
static bool deploy_rows_in_scope(struct deploy_rows *r, const char *id)
{
    for (int i = 0; i < r->nmembers; i++)
        if (strcmp(r->members[i], id) == 0)
            return rp_deployment_selects(r->d, id);
    return false;
}

struct listed {
    int n, left;
};

static void deploy_listed(void *ctx, const rp_device_update_t *u)
{
    struct listed *l = ctx;

    l->n++;
    l->left += u->left;
}

/* A deployment's progress (its counters) is what its rows say, over the devices it targets now
 * (in scope); those it reached or that reported it and are out of scope have left, counted apart;
 * its device list is the targeted ones and those that left, flagged. */
static void deploy_counters_match(struct db *db, const rp_deployment_t *d)
{
    struct deploy_rows r = {.d = d};
    struct states got_states = {0}, want_states = {0};
    struct listed listed = {0};
    rp_deploy_progress_t got;
    int64_t selected = 0, reported_selected = 0, reached = 0, left = 0;
    char seen[2 * CTR_DEVICES][RP_DEVICE_ID_SIZE];
    int nseen = 0;

    assert_int_equal(rp_store_group_members(db->s, d->group_id, NULL, deploy_rows_member, &r),
                     RP_OK);
    assert_int_equal(rp_store_device_updates(db->s, d->id, deploy_rows_report, &r), RP_OK);
    assert_int_equal(rp_store_deployment_reached_list(db->s, d->id, deploy_rows_reached, &r),
                     RP_OK);
    for (int i = 0; i < r.nmembers; i++)
        if (rp_deployment_selects(d, r.members[i])) {
            selected++;
            reported_selected += deploy_rows_report_of(&r, r.members[i]) != NULL;
        }
    /* every device it reached or that reported it, once */
    for (int i = 0; i < r.nreports + r.nreached; i++) {
        const char *id = i < r.nreports ? r.reports[i].device_id : r.reached[i - r.nreports];
        const rp_device_update_t *u = deploy_rows_report_of(&r, id);
        bool dup = false;
        for (int k = 0; k < nseen; k++)
            dup |= strcmp(seen[k], id) == 0;
        if (dup)
            continue;
        snprintf(seen[nseen++], RP_DEVICE_ID_SIZE, "%s", id);
        if (!deploy_rows_in_scope(&r, id)) {
            left++;
            continue;
        }
        if (u != NULL)
            count_state(&want_states, u->state, 1);
        /* reported past pending, or reached (its report pending or none) */
        reached +=
            (u != NULL && strcmp(u->state, "pending") != 0) || deploy_rows_was_reached(&r, id);
    }
    assert_int_equal(rp_store_deployment_progress(db->s, d, &got, count_state, &got_states), RP_OK);
    assert_int_equal(got.in_group, r.nmembers);
    assert_int_equal(got.selected, selected);
    assert_int_equal(got.unreported, selected - reported_selected);
    assert_int_equal(got.reached, reached);
    assert_int_equal(got.left, left);
    assert_true(got.reached <= got.selected);
    assert_memory_equal(&got_states, &want_states, sizeof(got_states));
    versions_counters_match(db); /* (a move to another product moves them) */
    assert_int_equal(rp_store_deployment_devices(db->s, d, NULL, deploy_listed, &listed), RP_OK);
    assert_int_equal(listed.n, selected + left);
    assert_int_equal(listed.left, left);
}

static void progress_of(struct db *db, const rp_deployment_t *d, rp_deploy_progress_t *p,
                        struct states *st)
{
    memset(st, 0, sizeof(*st));
    assert_int_equal(rp_store_deployment_progress(db->s, d, p, count_state, st), RP_OK);
}

/* A device's report of a deployment, recorded (want RP_OK) or refused (RP_ERR_NOT_FOUND). */
static rp_err_t report_as(struct db *db, const rp_deployment_t *d, const char *device_id,
                          const char *state)
{
    rp_device_update_t u;

    memset(&u, 0, sizeof(u));
    snprintf(u.device_id, sizeof(u.device_id), "%s", device_id);
    snprintf(u.deployment_id, sizeof(u.deployment_id), "%s", d->id);
    snprintf(u.state, sizeof(u.state), "%s", state);
    u.at = 2000;
    return rp_store_device_update_set(db->s, &u);
}

static void report(struct db *db, const rp_deployment_t *d, const char *device_id,
                   const char *state)
{
    assert_int_equal(report_as(db, d, device_id, state), RP_OK);
}

/* Refused (the deployment does not target the device): no row written. */
static void refused_report(struct db *db, const rp_deployment_t *d, const char *device_id,
                           const char *state)
{
    struct deploy_rows before = {.d = d}, after = {.d = d};

    assert_int_equal(rp_store_device_updates(db->s, d->id, deploy_rows_report, &before), RP_OK);
    assert_int_equal(report_as(db, d, device_id, state), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_store_device_updates(db->s, d->id, deploy_rows_report, &after), RP_OK);
    assert_int_equal(after.nreports, before.nreports);
    assert_memory_equal(after.reports, before.reports, sizeof(before.reports));
}

/* Recorded when the deployment targets the device, refused otherwise. */
static void report_any(struct db *db, const rp_deployment_t *d, const char *device_id,
                       const char *state)
{
    rp_group_t at;
    bool targeted = rp_store_device_group(db->s, device_id, &at) == RP_OK &&
                    strcmp(at.id, d->group_id) == 0 && rp_deployment_selects(d, device_id);

    if (targeted)
        report(db, d, device_id, state);
    else
        refused_report(db, d, device_id, state);
}

/* A status report of the device with the app list "component=version ..." (NULL: a report
 * without one), in one call as the service makes it. */
static void report_apps(struct db *db, const char *device_id, const char *list)
{
    rp_device_app_t apps[RP_DEVICE_APPS_MAX];
    size_t napps = 0, fresh = 0;
    char copy[256], *save = NULL;

    memset(apps, 0, sizeof(apps));
    snprintf(copy, sizeof(copy), "%s", list != NULL ? list : "");
    for (char *w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(w, '=');
        assert_non_null(eq);
        *eq = '\0';
        snprintf(apps[napps].component, sizeof(apps[napps].component), "%s", w);
        snprintf(apps[napps].version, sizeof(apps[napps].version), "%s", eq + 1);
        snprintf(apps[napps++].state, sizeof(apps[0].state), "running");
    }
    assert_int_equal(rp_store_device_status_put(db->s, device_id, 3000, list != NULL ? apps : NULL,
                                                napps, NULL, 0, 0, &fresh),
                     RP_OK);
}

static void record_verdict(struct db *db, const char *device_id, bool passed)
{
    rp_attestation_t a;
    rp_attestation_write_t w;

    fill(&a, device_id, db->tenant.id, passed);
    w = write_of(&a, NULL, NULL);
    assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
}

/* The counters the console reads instead of counting (COUNTERS_SEED; the deployments' over the
 * devices each targets now since migration 25), kept by every write that
 * changes what they count, in its transaction: after each kind of change they are what a count
 * of the rows says, on both engines; a verdict repeated writes none (SQLite: the rows changed);
 * and a database upgraded to them has them right at once (SQLite: its file taken back). */
static void store_counters_match_rows(void **state)
{
    struct db *db = *state;
    char ids[CTR_DEVICES][RP_DEVICE_ID_SIZE];
    rp_quarantine_policy_t qp = {.enabled = true, .threshold = 1, .window = 3600, .nkinds = 1};
    rp_product_t pr;
    rp_group_t g, other;
    rp_deployment_t d, d2;
    bool quarantined = false;

    for (int i = 0; i < CTR_DEVICES; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%08x%056d", (unsigned)(i * 2654435761u), i);
        assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, ids[i], 1000), RP_OK);
    }
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, ids[0], 1000), RP_OK); /* again */
    fleet_counters_match(db);
    /* the versions: app lists reported (in no group yet), the same again, a version changed, an
     * app gone and one added, a report without a list, an empty list */
    report_apps(db, ids[0], "app=1.0 system=2.0");
    report_apps(db, ids[1], "app=1.0 system=2.0");
    report_apps(db, ids[2], "app=1.1");
    fleet_counters_match(db);
    if (rt_pg_uri() == NULL) { /* the same list again: its rows and the report's, no counter */
        sqlite3 *h = rp_db_sqlite_handle(db->s->db);
        int before = sqlite3_total_changes(h);
        report_apps(db, ids[0], "app=1.0 system=2.0");
        assert_int_equal(sqlite3_total_changes(h) - before, 2 + 2 + 1);
    }
    report_apps(db, ids[1], "app=1.1 web=0.1");
    fleet_counters_match(db);
    report_apps(db, ids[2], NULL);
    report_apps(db, ids[3], "");
    fleet_counters_match(db);
    report_apps(db, ids[2], "");
    report_apps(db, ids[3], "web=0.1 app=1.1");
    fleet_counters_match(db);
    record_verdict(db, ids[0], true);
    record_verdict(db, ids[1], false);
    record_verdict(db, ids[2], true);
    fleet_counters_match(db);
    if (rt_pg_uri() == NULL) { /* a pass after a pass: the attestation and the device's row only */
        sqlite3 *h = rp_db_sqlite_handle(db->s->db);
        int before = sqlite3_total_changes(h);
        record_verdict(db, ids[0], true);
        assert_int_equal(sqlite3_total_changes(h) - before, 2);
    }
    record_verdict(db, ids[0], false); /* the verdict changes */
    record_verdict(db, ids[1], true);
    fleet_counters_match(db);
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, ids[2], 1500), RP_OK);
    fleet_counters_match(db);
    assert_int_equal(rp_store_device_block(db->s, db->tenant.id, ids[2], 1600), RP_OK); /* again */
    fleet_counters_match(db);
    snprintf(qp.kinds[0], sizeof(qp.kinds[0]), "app_crash");
    assert_int_equal(rp_store_quarantine_signal(db->s, db->tenant.id, ids[1], "app_crash", "x", &qp,
                                                1700, &quarantined),
                     RP_OK);
    assert_true(quarantined);
    fleet_counters_match(db);
    assert_int_equal(rp_store_device_unblock(db->s, db->tenant.id, ids[2]), RP_OK);
    assert_int_equal(rp_store_device_release(db->s, db->tenant.id, ids[1], "test", "ok", 1800),
                     RP_OK);
    fleet_counters_match(db);
    /* "expiring" is counted in the background, and shown with when */
    {
        int64_t now = (int64_t)time(NULL);
        rp_cert_record_t c = cert_for(db, ids[4], "c-expiring");
        rp_attestation_t a;
        rp_attestation_write_t w;
        rp_fleet_counts_t n;
        size_t counted = 0;

        c.not_before = now;
        c.not_after = now + 3600;
        fill(&a, ids[4], db->tenant.id, true);
        w = write_of(&a, &c, NULL);
        assert_int_equal(rp_store_attestations_record(db->s, &w, 1), RP_OK);
        assert_int_equal(rp_store_fleet_counts(db->s, db->tenant.id, now, &n), RP_OK);
        assert_true(n.cert_expiring == 0 && n.cert_expiring_at == 0); /* not counted yet */
        assert_int_equal(rp_store_fleet_summaries_refresh(db->s, now, 600, &counted), RP_OK);
        assert_int_equal(counted, 1);
        assert_int_equal(rp_store_fleet_counts(db->s, db->tenant.id, now, &n), RP_OK);
        assert_true(n.cert_expiring == 1 && n.cert_expiring_at == now);
        assert_int_equal(rp_store_fleet_summaries_refresh(db->s, now + 600, 600, &counted), RP_OK);
        assert_int_equal(counted, 0); /* not old yet */
        assert_int_equal(rp_store_fleet_summaries_refresh(db->s, now + 601, 600, &counted), RP_OK);
        assert_int_equal(counted, 1);
        fleet_counters_match(db);
    }

    /* deployments: members assigned, reports (refused from a device it does not target),
     * reaches, a member moved away and back, a deployment made once its group has members; on
     * it, a device that reports and then leaves the group, and one that joins late */
    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "Meter", &pr), RP_OK);
    assert_int_equal(rp_store_group_create(db->s, &pr, "Field", false, &g), RP_OK);
    assert_int_equal(rp_store_group_create(db->s, &pr, "Other", false, &other), RP_OK);
    memset(&d, 0, sizeof(d));
    snprintf(d.tenant_id, sizeof(d.tenant_id), "%s", db->tenant.id);
    snprintf(d.group_id, sizeof(d.group_id), "%s", g.id);
    d.rollout = 50;
    assert_int_equal(rp_store_deployment_create(db->s, &d), RP_OK);
    deploy_counters_match(db, &d);
    for (int i = 0; i < CTR_DEVICES - 1; i++)
        assert_int_equal(rp_store_device_assign(db->s, i % 2 ? &other : &g, ids[i], 1900), RP_OK);
    deploy_counters_match(db, &d);
    for (int i = 0; i < CTR_DEVICES - 1; i++) {
        bool targeted = i % 2 == 0 && rp_deployment_selects(&d, ids[i]);
        assert_int_equal(rp_store_deployment_reached(db->s, d.id, ids[i], 2000), RP_OK);
        deploy_counters_match(db, &d);
        if (i % 3 != 2 && targeted)
            report(db, &d, ids[i], i % 3 ? "pending" : "downloading");
        else if (i % 3 != 2) /* not targeted: refused, nothing counted */
            refused_report(db, &d, ids[i], "pending");
        deploy_counters_match(db, &d);
    }
    assert_int_equal(rp_store_deployment_reached(db->s, d.id, ids[0], 2100), RP_OK); /* again */
    report_any(db, &d, ids[0], "installed");
    report_any(db, &d, ids[1], "installed");
    deploy_counters_match(db, &d);
    for (int i = 0; i < CTR_DEVICES; i++) { /* every one moved to the other group, then back */
        assert_int_equal(rp_store_device_assign(db->s, i % 2 ? &g : &other, ids[i], 2200), RP_OK);
        deploy_counters_match(db, &d);
    }
    assert_int_equal(rp_store_device_assign(db->s, &g, ids[0], 2300), RP_OK);
    assert_int_equal(rp_store_device_assign(db->s, &g, ids[0], 2300), RP_OK); /* where it is */
    deploy_counters_match(db, &d);
    { /* to another product and back */
        rp_product_t valve;
        rp_group_t vg;
        assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "Valve", &valve), RP_OK);
        assert_int_equal(rp_store_group_create(db->s, &valve, "Field", false, &vg), RP_OK);
        assert_int_equal(rp_store_device_assign(db->s, &vg, ids[1], 2400), RP_OK);
        assert_int_equal(rp_store_device_assign(db->s, &vg, ids[3], 2400), RP_OK);
        fleet_counters_match(db);
        report_apps(db, ids[3], "web=0.2 app=1.1");
        assert_int_equal(rp_store_device_assign(db->s, &g, ids[1], 2500), RP_OK);
        fleet_counters_match(db);
    }
    d2 = d;
    d2.rollout = 100;
    assert_int_equal(rp_store_deployment_create(db->s, &d2), RP_OK);
    deploy_counters_match(db, &d2);
    report_any(db, &d2, ids[3], "failed");
    deploy_counters_match(db, &d2);
    deploy_counters_match(db, &d);
    /* on d2 (every member targeted): a device that installed, then left the group - out of the
     * progress, counted as left, never above selected - and one that joins late, reached and
     * installs; the one that left comes back: counted again as it was */
    {
        rp_deploy_progress_t p0, p;
        struct states st0, st;
        const char *leaver = NULL, *late = ids[2]; /* in the other group (the moves above) */
        for (int i = 0; i < CTR_DEVICES - 1 && leaver == NULL; i++) {
            rp_group_t at;
            assert_int_equal(rp_store_device_group(db->s, ids[i], &at), RP_OK);
            if (strcmp(at.id, g.id) == 0 && strcmp(ids[i], ids[3]) != 0)
                leaver = ids[i];
        }
        assert_non_null(leaver);
        assert_int_equal(rp_store_deployment_reached(db->s, d2.id, leaver, 2400), RP_OK);
        report(db, &d2, leaver, "installed");
        deploy_counters_match(db, &d2);
        progress_of(db, &d2, &p0, &st0);
        assert_int_equal(rp_store_device_assign(db->s, &other, leaver, 2500), RP_OK);
        deploy_counters_match(db, &d2);
        progress_of(db, &d2, &p, &st);
        assert_int_equal(p.selected, p0.selected - 1);
        assert_int_equal(p.reached, p0.reached - 1);
        assert_int_equal(st.installed, st0.installed - 1);
        assert_int_equal(p.left, p0.left + 1);
        refused_report(db, &d2, leaver, "rolled_back"); /* no longer its to report */
        deploy_counters_match(db, &d2);
        /* the late one (in the other group since before d2): joins, is reached, installs */
        refused_report(db, &d2, late, "installed");
        assert_int_equal(rp_store_device_assign(db->s, &g, late, 2600), RP_OK);
        deploy_counters_match(db, &d2);
        assert_int_equal(rp_store_deployment_reached(db->s, d2.id, late, 2700), RP_OK);
        deploy_counters_match(db, &d2);
        report(db, &d2, late, "installed");
        deploy_counters_match(db, &d2);
        progress_of(db, &d2, &p, &st);
        assert_int_equal(p.selected, p0.selected);
        assert_int_equal(p.reached, p0.reached);
        assert_int_equal(st.installed, st0.installed);
        assert_int_equal(p.left, p0.left + 1);
        assert_int_equal(rp_store_device_assign(db->s, &g, leaver, 2800), RP_OK); /* back */
        deploy_counters_match(db, &d2);
        progress_of(db, &d2, &p, &st);
        assert_int_equal(p.left, p0.left);
        assert_int_equal(st.installed, st0.installed + 1);
        assert_int_equal(rp_store_device_assign(db->s, &other, leaver, 2900), RP_OK); /* and out */
        deploy_counters_match(db, &d2);
        deploy_counters_match(db, &d);
    }

    /* counted again from the rows (as their migration counts them): the same */
    assert_int_equal(rp_store_counters_recount(db->s), RP_OK);
    fleet_counters_match(db);
    deploy_counters_match(db, &d);
    deploy_counters_match(db, &d2);
    if (rt_pg_uri() == NULL) { /* taken back to schema 20 and opened: counted from the rows */
        char path[128];
        sqlite3 *raw;
        snprintf(path, sizeof(path), "%s/rampart.db", db->t.dir);
        assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
        assert_int_equal(sqlite3_exec(raw, UNDO_COUNTERS, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(raw);
        rp_store_close(db->s);
        assert_int_equal(rt_store_open(&db->t, &db->s), RP_OK);
        fleet_counters_match(db);
        deploy_counters_match(db, &d);
        deploy_counters_match(db, &d2);
    }
}

/* A device's report racing its move out of the deployment's group, on two connections (two
 * replicas): the report's handler saw it a member, then the move committed, then the report came
 * to be recorded. The membership is judged where the report is recorded, in its transaction:
 * refused, nothing written, the progress unmoved (it counts the device as left). The other order
 * (recorded, then moved): the report counts as left, not among the states. */
static void store_report_races_move(void **state)
{
    struct db *db = *state;
    char id[RP_DEVICE_ID_SIZE];
    rp_product_t pr;
    rp_group_t g, other, seen;
    rp_deployment_t d;
    rp_deploy_progress_t p;
    struct states st;
    rp_store_t *replica = NULL;

    snprintf(id, sizeof(id), "%064d", 42);
    assert_int_equal(rp_store_device_claim(db->s, db->tenant.id, id, 1000), RP_OK);
    assert_int_equal(rp_store_product_create(db->s, db->tenant.id, "Meter", &pr), RP_OK);
    assert_int_equal(rp_store_group_create(db->s, &pr, "Field", false, &g), RP_OK);
    assert_int_equal(rp_store_group_create(db->s, &pr, "Other", false, &other), RP_OK);
    assert_int_equal(rp_store_device_assign(db->s, &g, id, 1100), RP_OK);
    memset(&d, 0, sizeof(d));
    snprintf(d.tenant_id, sizeof(d.tenant_id), "%s", db->tenant.id);
    snprintf(d.group_id, sizeof(d.group_id), "%s", g.id);
    d.rollout = 100;
    assert_int_equal(rp_store_deployment_create(db->s, &d), RP_OK);
    assert_int_equal(rp_store_deployment_reached(db->s, d.id, id, 1200), RP_OK);
    assert_int_equal(rt_store_open(&db->t, &replica), RP_OK);

    /* what the handler read first: a member of the deployment's group */
    assert_int_equal(rp_store_device_group(db->s, id, &seen), RP_OK);
    assert_string_equal(seen.id, d.group_id);
    /* the move, through the other replica, commits */
    assert_int_equal(rp_store_device_assign(replica, &other, id, 1300), RP_OK);
    /* the report: refused, nothing written */
    refused_report(db, &d, id, "installed");
    deploy_counters_match(db, &d);
    progress_of(db, &d, &p, &st);
    assert_true(p.selected == 0 && p.reached == 0 && p.left == 1 && st.installed == 0);

    /* back, reported, then moved out again: the report is the left one's */
    assert_int_equal(rp_store_device_assign(replica, &g, id, 1400), RP_OK);
    report(db, &d, id, "installed");
    progress_of(db, &d, &p, &st);
    assert_true(p.selected == 1 && p.reached == 1 && p.left == 0 && st.installed == 1);
    assert_int_equal(rp_store_device_assign(replica, &other, id, 1500), RP_OK);
    deploy_counters_match(db, &d);
    progress_of(db, &d, &p, &st);
    assert_true(p.selected == 0 && p.reached == 0 && p.left == 1 && st.installed == 0);
    rp_store_close(replica);
}

/* A replica must hold the database's master key (rp_ca_master_check, at start): the first start
 * writes the key's check value, even while no tenant has a CA (review r15ops M2), and every later
 * one compares; a replica without master.key may make one only for a database that has none
 * (rp_ca_master_absent). */
static void ca_master_check(void **state)
{
    struct db *db = *state;
    uint8_t made_with[RP_MASTER_KEY_LEN], other[RP_MASTER_KEY_LEN];
    uint8_t v[RP_MASTER_CHECK_LEN], w[RP_MASTER_CHECK_LEN];
    bool found = true;
    rp_tenant_t globex;
    rp_ca_t ca;

    memset(made_with, 0x11, sizeof(made_with));
    memset(other, 0x22, sizeof(other));
    assert_int_equal(rp_store_master_check_get(db->s, v, &found), RP_OK);
    assert_false(found);
    assert_int_equal(rp_ca_master_absent(db->s, "master.key"), RP_OK); /* a new database */
    /* No tenant, no CA: the first key is the database's all the same. */
    assert_int_equal(rp_ca_master_check(db->s, made_with), RP_OK);
    assert_int_equal(rp_store_master_check_get(db->s, v, &found), RP_OK);
    assert_true(found);
    assert_int_equal(rp_ca_master_check(db->s, other), RP_ERR_BAD_KEY);
    assert_int_equal(rp_ca_master_absent(db->s, "master.key"), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_ca_master_check(db->s, made_with), RP_OK);
    assert_int_equal(rp_store_tenant_create(db->s, "globex", &globex), RP_OK);
    assert_int_equal(rp_ca_get_or_create(db->s, made_with, &globex, (int64_t)time(NULL), &ca),
                     RP_OK);
    rp_ca_free(&ca);
    assert_int_equal(rp_ca_master_check(db->s, made_with), RP_OK);
    assert_int_equal(rp_ca_master_check(db->s, other), RP_ERR_BAD_KEY);
    /* Of two values put, the first stays: the second start learns it. */
    memset(w, 0x33, sizeof(w));
    assert_int_equal(rp_store_master_check_put(db->s, w, w), RP_OK);
    assert_memory_equal(w, v, sizeof(v));
}

/* A database made before the check value (schema 34) gets one from the key that reads every
 * tenant's CA, not only the first's: with tenant CAs under two keys (two replicas that each made
 * their own) neither key is taken, nothing is written, and a missing key is not made. */
static void ca_master_check_legacy(void **state)
{
    struct db *db = *state;
    uint8_t one[RP_MASTER_KEY_LEN], two[RP_MASTER_KEY_LEN], v[RP_MASTER_CHECK_LEN];
    bool found = true;
    rp_tenant_t t;
    rp_ca_t ca;
    char name[16];

    memset(one, 0x11, sizeof(one));
    memset(two, 0x22, sizeof(two));
    for (int i = 0; i < 70; i++) { /* (past a page of tenants) */
        snprintf(name, sizeof(name), "t%02d", i);
        assert_int_equal(rp_store_tenant_create(db->s, name, &t), RP_OK);
        if (i == 0 || i == 69) {
            assert_int_equal(
                rp_ca_get_or_create(db->s, i == 0 ? one : two, &t, (int64_t)time(NULL), &ca),
                RP_OK);
            rp_ca_free(&ca);
        }
    }
    assert_int_equal(rp_ca_master_absent(db->s, "master.key"), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_ca_master_check(db->s, one), RP_ERR_BAD_KEY);
    assert_int_equal(rp_ca_master_check(db->s, two), RP_ERR_BAD_KEY);
    assert_int_equal(rp_store_master_check_get(db->s, v, &found), RP_OK);
    assert_false(found);
}

/* DIR/NAME.pem and NAME.key: a new P-256 certificate valid from begin to end seconds from now: a
 * CA signed by itself, or (issuer: DIR/ISSUER.pem and .key) a server certificate that CA signed. */
static void cert_files(const char *dir, const char *name, const char *issuer, long begin, long end)
{
    char path[PATH_MAX];
    X509 *cert = X509_new(), *ca = NULL;
    X509_EXTENSION *ext;
    X509V3_CTX ctx;
    EVP_PKEY *own_key, *ca_key = NULL;
    FILE *f;

    assert_non_null(cert);
    if (issuer != NULL) {
        snprintf(path, sizeof(path), "%s/%s.pem", dir, issuer);
        assert_non_null(f = fopen(path, "r"));
        assert_non_null(ca = PEM_read_X509(f, NULL, NULL, NULL));
        fclose(f);
        snprintf(path, sizeof(path), "%s/%s.key", dir, issuer);
        assert_non_null(f = fopen(path, "r"));
        assert_non_null(ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL));
        fclose(f);
    }
    assert_int_equal(rp_key_generate(RP_SIG_ECDSA_P256, &own_key), RP_OK);
    assert_int_equal(X509_set_version(cert, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(cert), end), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                                                (const unsigned char *)name, -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(cert, X509_get_subject_name(ca != NULL ? ca : cert)), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(cert), begin));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(cert), end));
    assert_int_equal(X509_set_pubkey(cert, own_key), 1);
    X509V3_set_ctx(&ctx, ca != NULL ? ca : cert, cert, NULL, NULL, 0);
    for (int i = 0; i < 2; i++) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx,
                                  i == 0 ? NID_basic_constraints : NID_subject_key_identifier,
                                  i == 1       ? "hash"
                                  : ca != NULL ? "CA:FALSE"
                                               : "critical,CA:TRUE");
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(cert, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(cert, ca_key != NULL ? ca_key : own_key, EVP_sha256()) > 0);
    snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
    assert_non_null(f = fopen(path, "w"));
    assert_int_equal(PEM_write_X509(f, cert), 1);
    assert_int_equal(fclose(f), 0);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    assert_non_null(f = fopen(path, "w"));
    assert_int_equal(PEM_write_PrivateKey(f, own_key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(own_key);
    EVP_PKEY_free(ca_key);
}

/* DIR/server-ca.pem and server-ca.key: a service CA of its own, ten years long, that ends in days
 * days. */
static void service_ca_ending(const char *dir, long days)
{
    cert_files(dir, "server-ca", NULL, days * 86400 - RP_SERVICE_CA_LIFETIME, days * 86400);
}

/* The beginning (notBefore) or (end) the end (notAfter) of the certificate in DIR/NAME. */
static int64_t cert_bound(const char *dir, const char *name, bool end)
{
    char path[PATH_MAX];
    int64_t at;
    X509 *cert;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "r"));
    assert_non_null(cert = PEM_read_X509(f, NULL, NULL, NULL));
    fclose(f);
    at = rp_cert_time(end ? X509_get0_notAfter(cert) : X509_get0_notBefore(cert));
    X509_free(cert);
    return at;
}

static int64_t cert_end(const char *dir, const char *name)
{
    return cert_bound(dir, name, true);
}

static int64_t cert_begin(const char *dir, const char *name)
{
    return cert_bound(dir, name, false);
}

/* The service's own TLS certificate never outlives the service CA (review r8 M4): made at its
 * end when it is nearer than 397 days; and within the renewal margin at the CA's end, the
 * running service's check does not make it again and again. */
static void service_cert_within_ca(void **state)
{
    static const char *const made[] = {"master.key", "server-ca.pem", "server-ca.key",
                                       "server.pem", "server.key",    "server.lock"};
    char dir[] = "/tmp/rampart-service-cert.XXXXXX", path[PATH_MAX];
    bool renewed = true;

    (void)state;
    assert_non_null(mkdtemp(dir));
    service_ca_ending(dir, 100);
    assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
    assert_int_equal(cert_end(dir, "server.pem"), cert_end(dir, "server-ca.pem"));
    assert_int_equal(rp_service_cert_renew(dir, NULL, &renewed), RP_OK);
    assert_false(renewed); /* 100 days left */
    /* Another CA, 20 days from its end: at start the certificate (the old CA's) is made again,
     * until the CA's end, and then left as it is. */
    service_ca_ending(dir, 20);
    assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
    assert_int_equal(cert_end(dir, "server.pem"), cert_end(dir, "server-ca.pem"));
    renewed = true;
    assert_int_equal(rp_service_cert_renew(dir, NULL, &renewed), RP_OK);
    assert_false(renewed);
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, made[i]);
        assert_int_equal(unlink(path), 0);
    }
    assert_int_equal(rmdir(dir), 0);
}

/* The service CA's rollover on times alone (ca.h): the successor is due at two thirds of the
 * service CA's life, and signs the server certificate from the current one's last
 * RP_SERVICE_CA_SWITCH_BEFORE on (while it is valid), never before. */
static void service_ca_rollover_rules(void **state)
{
    const int64_t t0 = 1800000000, life = RP_SERVICE_CA_LIFETIME, end = t0 + life,
                  made = t0 + life / 3 * 2, switch_at = end - RP_SERVICE_CA_SWITCH_BEFORE;

    (void)state;
    assert_false(rp_ca_rollover_due(t0, end, made - 1));
    assert_true(rp_ca_rollover_due(t0, end, made));
    assert_int_equal(rp_service_ca_signer(end, false, 0, 0, end + 1), 0); /* none: the old one */
    assert_int_equal(rp_service_ca_signer(end, true, made, made + life, made), 0);
    assert_int_equal(rp_service_ca_signer(end, true, made, made + life, switch_at - 1), 0);
    assert_int_equal(rp_service_ca_signer(end, true, made, made + life, switch_at), 1);
    assert_int_equal(rp_service_ca_signer(end, true, made, made + life, end + 1), 1);
    /* a successor not begun yet (made by a clock ahead), or ended: the old one */
    assert_int_equal(rp_service_ca_signer(end, true, end + 10, end + life, end), 0);
    assert_int_equal(rp_service_ca_signer(end, true, made, switch_at, switch_at), 0);
    /* One made late (review r13 M2) signs once published RP_CA_PUBLISH_LEAD, or in the old CA's
     * last day if that is sooner: never at once. */
    const int64_t late = end - 40 * 86400, later = end - 10 * 86400;
    assert_int_equal(rp_service_ca_switch_at(end, made), switch_at);
    assert_int_equal(rp_service_ca_switch_at(end, late), late + RP_CA_PUBLISH_LEAD);
    assert_int_equal(rp_service_ca_switch_at(end, later), end - RP_SERVICE_CA_LAST_DAY);
    assert_int_equal(rp_service_ca_signer(end, true, late, late + life, switch_at), 0);
    assert_int_equal(
        rp_service_ca_signer(end, true, late, late + life, late + RP_CA_PUBLISH_LEAD - 1), 0);
    assert_int_equal(rp_service_ca_signer(end, true, late, late + life, late + RP_CA_PUBLISH_LEAD),
                     1);
    assert_int_equal(rp_service_ca_signer(end, true, later, later + life, later), 0);
    assert_int_equal(
        rp_service_ca_signer(end, true, later, later + life, end - RP_SERVICE_CA_LAST_DAY - 1), 0);
    assert_int_equal(
        rp_service_ca_signer(end, true, later, later + life, end - RP_SERVICE_CA_LAST_DAY), 1);
}

/* Whether DIR/server.pem is signed by the CA in DIR/NAME. */
static bool signed_by(const char *dir, const char *name)
{
    char path[PATH_MAX];
    X509 *server, *ca;
    FILE *f;
    bool yes;

    snprintf(path, sizeof(path), "%s/server.pem", dir);
    assert_non_null(f = fopen(path, "r"));
    server = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "r"));
    ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(server);
    assert_non_null(ca);
    yes = X509_verify(server, X509_get0_pubkey(ca)) == 1;
    X509_free(server);
    X509_free(ca);
    ERR_clear_error();
    return yes;
}

/* What the running service's renewal check in dir says (its stderr, into log), and whether it
 * renewed the certificate. */
static bool renewal_said(const char *dir, char *log, size_t cap)
{
    char path[] = "/tmp/rampart-renewal-log.XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    bool renewed = true;
    ssize_t n;
    rp_log_level_t level = rp_log_get_level();

    assert_true(fd >= 0 && saved >= 0);
    fflush(stderr);
    assert_int_equal(dup2(fd, 2), 2);
    rp_log_set_level(RP_LOG_INFO);
    assert_int_equal(rp_service_cert_renew(dir, NULL, &renewed), RP_OK);
    rp_log_set_level(level);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    n = pread(fd, log, cap - 1, 0);
    close(fd);
    unlink(path);
    log[n > 0 ? n : 0] = '\0';
    return renewed;
}

/* `rampart-server service-ca next`: the successor made once (a second run refuses), published
 * beside the current CA; made in the current CA's last 30 days, it does not sign at once (review
 * r13 M2), but in the current CA's last day it does, and the running service's check then leaves
 * the server certificate as it is. */
static void service_ca_successor(void **state)
{
    static const char *const made[] = {"master.key",         "server-ca.pem",     "server-ca.key",
                                       "server.pem",         "server.key",        "server.lock",
                                       "server-ca-next.pem", "server-ca-next.key"};
    char dir[] = "/tmp/rampart-service-ca.XXXXXX", path[PATH_MAX], *pem = NULL, log[8192];
    int64_t now = (int64_t)time(NULL), nb = 0, na = 0, switch_at;
    bool renewed = true;
    uint8_t *ca_key;
    size_t ca_key_len;

    (void)state;
    assert_non_null(mkdtemp(dir));
    service_ca_ending(dir, 20);
    assert_int_equal(rp_service_ca_published(dir, now, &pem, &nb, &na), RP_OK);
    assert_int_equal(na, cert_end(dir, "server-ca.pem"));
    free(pem);
    assert_int_equal(rp_service_ca_next(dir, now, false), RP_OK);
    assert_int_equal(rp_service_ca_next(dir, now, false), RP_ERR_EXISTS);
    assert_int_equal(rp_service_ca_published(dir, now, &pem, &nb, &na), RP_OK);
    assert_non_null(strstr(strstr(pem, "BEGIN CERTIFICATE") + 1, "BEGIN CERTIFICATE"));
    assert_int_equal(na, cert_end(dir, "server-ca-next.pem"));
    assert_false(rp_ca_rollover_due(nb, na, now));
    free(pem);
    assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
    assert_true(signed_by(dir, "server-ca.pem")); /* (just made: not yet) */
    /* waiting for the switch: said with its day, never "no successor" (review r14 L1) */
    switch_at = rp_service_ca_switch_pending(dir, now);
    assert_true(switch_at > now);
    assert_int_equal(switch_at, rp_service_ca_switch_at(cert_end(dir, "server-ca.pem"),
                                                        cert_begin(dir, "server-ca-next.pem")));
    assert_false(renewal_said(dir, log, sizeof(log)));
    assert_non_null(strstr(log, "its successor signs the next one from"));
    assert_null(strstr(log, "no successor"));
    /* the current CA in its last day (another one: the successor does not hang on it) */
    cert_files(dir, "server-ca", NULL, -60, 12 * 3600);
    assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
    assert_true(signed_by(dir, "server-ca-next.pem"));
    assert_true(cert_end(dir, "server.pem") > cert_end(dir, "server-ca.pem"));
    assert_int_equal(rp_service_cert_renew(dir, NULL, &renewed), RP_OK);
    assert_false(renewed);
    assert_int_equal(rp_service_ca_switch_pending(dir, now), 0); /* (switched) */
    /* a successor whose two files do not go together (a copy done in part) counts for nothing,
     * and is never replaced */
    snprintf(path, sizeof(path), "%s/server-ca.key", dir);
    assert_int_equal(rp_read_file(path, 4096, &ca_key, &ca_key_len), RP_OK);
    snprintf(path, sizeof(path), "%s/server-ca-next.key", dir);
    assert_int_equal(rp_write_file_atomic(path, ca_key, ca_key_len, 0600, 0), RP_OK);
    free(ca_key);
    assert_int_equal(rp_service_ca_next(dir, now, false), RP_ERR_BAD_KEY);
    assert_int_equal(rp_service_ca_published(dir, now, &pem, &nb, &na), RP_OK);
    assert_null(strstr(strstr(pem, "BEGIN CERTIFICATE") + 1, "BEGIN CERTIFICATE"));
    assert_int_equal(na, cert_end(dir, "server-ca.pem"));
    free(pem);
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, made[i]);
        assert_int_equal(unlink(path), 0);
    }
    assert_int_equal(rmdir(dir), 0);
}

/* Whether DIR/NAME holds what DIR/SAME does (NULL: whether it is gone). */
static bool same_file(const char *dir, const char *name, const char *same)
{
    char path[PATH_MAX];
    uint8_t *a = NULL, *b = NULL;
    size_t a_len = 0, b_len = 0;
    bool yes;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (same == NULL)
        return access(path, F_OK) != 0 && errno == ENOENT;
    assert_int_equal(rp_read_file(path, 1 << 16, &a, &a_len), RP_OK);
    snprintf(path, sizeof(path), "%s/%s", dir, same);
    assert_int_equal(rp_read_file(path, 1 << 16, &b, &b_len), RP_OK);
    yes = a_len == b_len && memcmp(a, b, a_len) == 0;
    free(a);
    free(b);
    return yes;
}

/* DIR/TO, a copy of DIR/FROM (NULL: DIR/TO removed), or (cut) its first half. */
static void copy_file(const char *dir, const char *from, const char *to, bool cut)
{
    char path[PATH_MAX];
    uint8_t *data;
    size_t len;

    snprintf(path, sizeof(path), "%s/%s", dir, to);
    if (from == NULL) {
        assert_int_equal(unlink(path), 0);
        return;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, from);
    assert_int_equal(rp_read_file(path, 1 << 16, &data, &len), RP_OK);
    snprintf(path, sizeof(path), "%s/%s", dir, to);
    assert_int_equal(rp_write_file_atomic(path, data, cut ? len / 2 : len, 0600, 0), RP_OK);
    free(data);
}

static void remove_tree(const char *dir)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A service CA whose two files do not make a pair (one alone, one cut short) is refused, and never
 * replaced, the current one (the start refuses) and the successor (service-ca next refuses; it
 * counts for nothing); the successor's key alone, what a cut `service-ca next` leaves, is the only
 * half replaced (review r13 M1). The service's user cannot read: root runs this, so a file cut
 * short stands for it. */
static void service_ca_half_pairs(void **state)
{
    static const struct {
        const char *pem, *key; /* from the kept copies (NULL: none), or cut in half ("cut") */
    } halves[] = {
        {NULL,     "ca.key"}, /* the key alone copied */
        {"ca.pem", NULL    }, /* the certificate alone */
        {"ca.pem", "cut"   }, /* a key cut short (or unreadable) */
        {"cut",    "ca.key"}, /* a certificate cut short */
    };
    char dir[] = "/tmp/rampart-service-half.XXXXXX", *pem = NULL;
    int64_t now = (int64_t)time(NULL), nb, na;

    (void)state;
    assert_non_null(mkdtemp(dir));
    service_ca_ending(dir, 20);
    copy_file(dir, "server-ca.pem", "ca.pem", false);
    copy_file(dir, "server-ca.key", "ca.key", false);
    for (size_t i = 0; i < sizeof(halves) / sizeof(halves[0]); i++) {
        const char *files[2][2] = {
            {halves[i].pem, "server-ca.pem"},
            {halves[i].key, "server-ca.key"}
        };

        for (int f = 0; f < 2; f++)
            if (files[f][0] == NULL)
                copy_file(dir, NULL, files[f][1], false);
            else
                copy_file(dir,
                          strcmp(files[f][0], "cut") == 0 ? (f == 0 ? "ca.pem" : "ca.key")
                                                          : files[f][0],
                          files[f][1], strcmp(files[f][0], "cut") == 0);
        assert_int_equal(rp_service_identity_init(dir, NULL), RP_ERR_BAD_KEY);
        assert_int_equal(rp_service_ca_next(dir, now, true), RP_ERR_BAD_KEY);
        for (int f = 0; f < 2; f++) /* left as they were */
            if (files[f][0] == NULL)
                assert_true(same_file(dir, files[f][1], NULL));
            else if (strcmp(files[f][0], "cut") != 0)
                assert_true(same_file(dir, files[f][1], files[f][0]));
        assert_true(same_file(dir, "server-ca-next.key", NULL));
    }
    /* the key alone with the first start's mark (a first start cut between its two files, whose
     * key signed nothing): made again, the mark removed */
    copy_file(dir, NULL, "server-ca.pem", false);
    copy_file(dir, "ca.key", "server-ca.making", false);
    assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
    assert_false(same_file(dir, "server-ca.key", "ca.key"));
    assert_true(same_file(dir, "server-ca.making", NULL));
    assert_true(signed_by(dir, "server-ca.pem"));
    copy_file(dir, "ca.pem", "server-ca.pem", false);
    copy_file(dir, "ca.key", "server-ca.key", false);
    /* the successor: its key alone (a cut run, or a copy done in part) is refused, left as it
     * is, and made again only with --force (review r14 L3); anything else stays, refused */
    assert_int_equal(rp_service_ca_next(dir, now, false), RP_OK);
    copy_file(dir, "server-ca-next.pem", "next.pem", false);
    copy_file(dir, "server-ca-next.key", "next.key", false);
    copy_file(dir, NULL, "server-ca-next.pem", false);
    assert_int_equal(rp_service_ca_next(dir, now, false), RP_ERR_EXISTS);
    assert_true(same_file(dir, "server-ca-next.key", "next.key"));
    assert_true(same_file(dir, "server-ca-next.pem", NULL));
    assert_int_equal(rp_service_ca_next(dir, now, true), RP_OK);
    assert_false(same_file(dir, "server-ca-next.key", "next.key"));
    for (size_t i = 0; i < sizeof(halves) / sizeof(halves[0]); i++) {
        if (halves[i].pem == NULL)
            continue; /* (above) */
        copy_file(dir, "next.pem", "server-ca-next.pem", strcmp(halves[i].pem, "cut") == 0);
        if (halves[i].key == NULL)
            copy_file(dir, NULL, "server-ca-next.key", false);
        else
            copy_file(dir, "next.key", "server-ca-next.key", strcmp(halves[i].key, "cut") == 0);
        copy_file(dir, "server-ca-next.pem", "held.pem", false);
        assert_int_equal(rp_service_ca_next(dir, now, false), RP_ERR_BAD_KEY);
        assert_true(same_file(dir, "server-ca-next.pem", "held.pem"));
        assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
        assert_true(signed_by(dir, "server-ca.pem"));
        assert_int_equal(rp_service_ca_published(dir, now, &pem, &nb, &na), RP_OK);
        assert_null(strstr(strstr(pem, "BEGIN CERTIFICATE") + 1, "BEGIN CERTIFICATE"));
        free(pem);
        if (halves[i].key == NULL)
            copy_file(dir, "next.key", "server-ca-next.key", false);
    }
    remove_tree(dir);
}

/* Two processes sharing an empty data directory that start at once make one master key and one
 * service CA, under server.lock (review r14 L2): the other reads it. Each round, two children
 * released together (a pipe closed); one of them says it made the CA, and the files pair. */
static void service_ca_first_starts_at_once(void **state)
{
    char dir[] = "/tmp/rampart-service-race.XXXXXX", path[PATH_MAX], log[2][8192];
    int gate[2], status;
    pid_t pid[2];

    (void)state;
    for (int round = 0; round < 12; round++) {
        int made = 0;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(pipe(gate), 0);
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof(path), "%s.%d.log", dir, i);
            fflush(stderr);
            assert_true((pid[i] = fork()) >= 0);
            if (pid[i] == 0) {
                char c;
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

                close(gate[1]);
                if (fd < 0 || dup2(fd, 2) != 2 || read(gate[0], &c, 1) != 0)
                    _exit(2);
                rp_log_set_level(RP_LOG_INFO);
                _exit(rp_service_identity_init(dir, NULL) == RP_OK ? 0 : 1);
            }
        }
        close(gate[0]);
        close(gate[1]); /* (both go) */
        for (int i = 0; i < 2; i++) {
            uint8_t *data;
            size_t len;

            assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
            snprintf(path, sizeof(path), "%s.%d.log", dir, i);
            assert_int_equal(rp_read_file(path, sizeof(log[i]) - 1, &data, &len), RP_OK);
            memcpy(log[i], data, len);
            log[i][len] = '\0';
            free(data);
            assert_int_equal(unlink(path), 0);
            made += strstr(log[i], "made the service CA") != NULL;
        }
        if (made != 1)
            fail_msg("round %d: %d processes made the service CA:\n%s\n%s", round, made, log[0],
                     log[1]);
        assert_true(signed_by(dir, "server-ca.pem"));
        assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK); /* (the pair reads) */
        remove_tree(dir);
        strcpy(dir, "/tmp/rampart-service-race.XXXXXX");
    }
}

/* `service-ca next` before the service CA is due (one made then ends that much early: review r13
 * L4) is refused, unless forced. */
static void service_ca_next_not_due(void **state)
{
    char dir[] = "/tmp/rampart-service-early.XXXXXX";
    int64_t now = (int64_t)time(NULL);

    (void)state;
    assert_non_null(mkdtemp(dir));
    service_ca_ending(dir, 3000); /* (due after 2000 days) */
    assert_int_equal(rp_service_ca_next(dir, now, false), RP_ERR_DENIED);
    assert_true(same_file(dir, "server-ca-next.key", NULL));
    assert_true(same_file(dir, "server-ca-next.pem", NULL));
    assert_int_equal(rp_service_ca_next(dir, now, true), RP_OK);
    assert_false(same_file(dir, "server-ca-next.pem", NULL));
    remove_tree(dir);
}

/* A service CA ending in 20 days, the server certificate, and the successor (made now): what
 * `service-ca promote` moves. Its end. */
static int64_t service_ca_promotable(const char *dir)
{
    service_ca_ending(dir, 20);
    assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
    assert_int_equal(rp_service_ca_next(dir, (int64_t)time(NULL), false), RP_OK);
    copy_file(dir, "server-ca.pem", "was.pem", false);
    copy_file(dir, "server-ca-next.pem", "next.pem", false);
    copy_file(dir, "server-ca-next.key", "next.key", false);
    return cert_end(dir, "server-ca.pem");
}

/* Whether dir holds the successor as the service CA, promoted (the old certificate kept). */
static bool promoted(const char *dir)
{
    return same_file(dir, "server-ca.pem", "next.pem") &&
           same_file(dir, "server-ca.key", "next.key") &&
           same_file(dir, "server-ca-old.pem", "was.pem") &&
           same_file(dir, "server-ca-next.pem", NULL) &&
           same_file(dir, "server-ca-next.key", NULL) &&
           same_file(dir, "server-ca.promoting", NULL);
}

/* `service-ca promote`: refused without a successor, before the old CA's end without --force, and
 * with it before the successor's lead has passed unless the old CA is in its last day; then the
 * successor is the service CA, the old certificate published while it lasts, and `service-ca next`
 * makes the next generation. */
static void service_ca_promote_rules(void **state)
{
    char dir[] = "/tmp/rampart-service-promote.XXXXXX", *pem = NULL;
    int64_t now = (int64_t)time(NULL), end, nb, na;

    (void)state;
    assert_non_null(mkdtemp(dir));
    service_ca_ending(dir, 20);
    assert_int_equal(rp_service_ca_promote(dir, now, true), RP_ERR_NOT_FOUND); /* no successor */
    end = service_ca_promotable(dir);
    assert_int_equal(rp_service_ca_promote(dir, now, false), RP_ERR_DENIED);
    assert_int_equal(rp_service_ca_promote(dir, end - 1, false), RP_ERR_DENIED);
    /* forced: not before the lead (30 days from its making: past the old end, so its last day) */
    assert_int_equal(rp_service_ca_promote(dir, now, true), RP_ERR_DENIED);
    assert_int_equal(rp_service_ca_lead_end(end, cert_begin(dir, "server-ca-next.pem")),
                     end - RP_SERVICE_CA_LAST_DAY);
    assert_int_equal(rp_service_ca_promote(dir, end - RP_SERVICE_CA_LAST_DAY - 1, true),
                     RP_ERR_DENIED);
    assert_true(same_file(dir, "server-ca.pem", "was.pem"));
    assert_true(same_file(dir, "server-ca.promoting", NULL));
    /* what a promotion cut (kill -9) left of its temporaries is removed by the next (r16 L2) */
    static const char *const left[] = {"server-ca-old.pem" RP_ATOMIC_TMP_MARK "aB3xY9",
                                       "server-ca.promoting" RP_ATOMIC_TMP_MARK "Qw12zz"};
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, left[i]);
        assert_int_equal(rp_write_file_atomic(path, "x", 1, 0600, 0), RP_OK);
    }
    assert_int_equal(rp_service_ca_promote(dir, end - RP_SERVICE_CA_LAST_DAY, true), RP_OK);
    assert_true(promoted(dir));
    assert_true(same_file(dir, left[0], NULL));
    assert_true(same_file(dir, left[1], NULL));
    /* (once: there is no successor now) */
    assert_int_equal(rp_service_ca_promote(dir, end + 60, false), RP_ERR_NOT_FOUND);
    assert_true(promoted(dir));
    /* the old one published while it lasts; the start renews nothing of its own */
    assert_int_equal(rp_service_ca_published(dir, now, &pem, &nb, &na), RP_OK);
    assert_non_null(strstr(strstr(pem, "BEGIN CERTIFICATE") + 1, "BEGIN CERTIFICATE"));
    assert_int_equal(na, cert_end(dir, "server-ca.pem"));
    free(pem);
    assert_int_equal(rp_service_ca_published(dir, end + 1, &pem, &nb, &na), RP_OK);
    assert_null(strstr(strstr(pem, "BEGIN CERTIFICATE") + 1, "BEGIN CERTIFICATE"));
    free(pem);
    assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
    assert_true(signed_by(dir, "server-ca.pem"));
    /* the next generation (forced: the promoted CA is not due yet) */
    assert_int_equal(rp_service_ca_next(dir, now, true), RP_OK);
    assert_false(same_file(dir, "server-ca-next.pem", NULL));
    remove_tree(dir);
}

/* A pair that is half or mismatched, the current one or the successor, is refused by promote,
 * and nothing moves. */
static void service_ca_promote_half_pairs(void **state)
{
    char dir[] = "/tmp/rampart-service-promote.XXXXXX";
    int64_t end;

    (void)state;
    assert_non_null(mkdtemp(dir));
    end = service_ca_promotable(dir);
    copy_file(dir, NULL, "server-ca-next.pem", false); /* the key alone */
    assert_int_equal(rp_service_ca_promote(dir, end + 60, true), RP_ERR_BAD_KEY);
    copy_file(dir, "next.pem", "server-ca-next.pem", true); /* cut short */
    assert_int_equal(rp_service_ca_promote(dir, end + 60, true), RP_ERR_BAD_KEY);
    copy_file(dir, "next.pem", "server-ca-next.pem", false);
    copy_file(dir, "server-ca.key", "server-ca-next.key", false); /* not its key */
    assert_int_equal(rp_service_ca_promote(dir, end + 60, true), RP_ERR_BAD_KEY);
    copy_file(dir, "next.key", "server-ca-next.key", false);
    copy_file(dir, "server-ca.key", "was.key", false);
    copy_file(dir, NULL, "server-ca.key", false); /* the current one's certificate alone */
    assert_int_equal(rp_service_ca_promote(dir, end + 60, true), RP_ERR_BAD_KEY);
    assert_true(same_file(dir, "server-ca.pem", "was.pem"));
    assert_true(same_file(dir, "server-ca-next.pem", "next.pem"));
    assert_true(same_file(dir, "server-ca.promoting", NULL));
    copy_file(dir, "was.key", "server-ca.key", false);
    assert_int_equal(rp_service_ca_promote(dir, end + 60, false), RP_OK);
    assert_true(promoted(dir));
    /* a mark beside files no promotion leaves (the successor's key alone): refused by the start
     * and by promote, and nothing is moved */
    copy_file(dir, "was.pem", "server-ca.promoting", false);
    copy_file(dir, "next.key", "server-ca-next.key", false);
    assert_int_equal(rp_service_identity_init(dir, NULL), RP_ERR_BAD_KEY);
    assert_int_equal(rp_service_ca_promote(dir, end + 60, false), RP_ERR_BAD_KEY);
    assert_true(same_file(dir, "server-ca.pem", "next.pem"));
    assert_true(same_file(dir, "server-ca-next.key", "next.key"));
    copy_file(dir, NULL, "server-ca-next.key", false);
    assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK); /* (the mark: done) */
    assert_true(promoted(dir));
    remove_tree(dir);
}

static char self_exe[PATH_MAX];

/* BASE/N (into dir): a copy of BASE/t, which service_ca_promotable made. */
static void promotable_copy(const char *base, int n, char *dir, size_t cap)
{
    char cmd[2 * PATH_MAX + 32];

    snprintf(dir, cap, "%s/%d", base, n);
    snprintf(cmd, sizeof(cmd), "cp -a '%s/t' '%s'", base, dir);
    assert_int_equal(system(cmd), 0);
}

/* A directory BASE (mkdtemp) whose BASE/t service_ca_promotable made: the old CA's end. */
static int64_t promotable_base(char *base)
{
    char dir[PATH_MAX];

    assert_non_null(mkdtemp(base));
    snprintf(dir, sizeof(dir), "%s/t", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    return service_ca_promotable(dir);
}

/*
 * A promotion cut dead at each of its steps (failpoint N: this program runs itself as the child
 * that is cut, `promote DIR AT`) leaves both service CA files there at every cut, and either the
 * old pairs or what the next start (even N) or promote (odd N) completes: never a service that
 * cannot start, never no CA. Past the last step the child promotes whole.
 */
static void service_ca_promote_cut(void **state)
{
    char base[] = "/tmp/rampart-service-cut.XXXXXX", dir[PATH_MAX], at[24], num[16];
    int64_t end = promotable_base(base);
    int n, status = 0;
    bool done;

    (void)state;
    snprintf(at, sizeof(at), "%lld", (long long)(end + 60));
    for (n = 1; n < 40; n++) {
        pid_t pid;

        promotable_copy(base, n, dir, sizeof(dir));
        snprintf(num, sizeof(num), "%d", n);
        assert_true((pid = fork()) >= 0);
        if (pid == 0) {
            setenv("RAMPART_FAILPOINT", num, 1);
            execl(self_exe, self_exe, "promote", dir, at, (char *)NULL);
            _exit(127);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 0)
            break; /* (past the last step) */
        assert_int_equal(WEXITSTATUS(status), RP_FAILPOINT_EXIT);
        assert_false(same_file(dir, "server-ca.pem", NULL));
        assert_false(same_file(dir, "server-ca.key", NULL));
        if (n % 2 == 0) { /* the next start: the old pairs, or the promotion completed */
            assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
            assert_true(promoted(dir) || (same_file(dir, "server-ca.pem", "was.pem") &&
                                          same_file(dir, "server-ca-next.pem", "next.pem") &&
                                          same_file(dir, "server-ca.promoting", NULL)));
        }
        done = promoted(dir); /* (before: the call changes it) */
        assert_int_equal(rp_service_ca_promote(dir, end + 60, false),
                         done ? RP_ERR_NOT_FOUND : RP_OK);
        assert_true(promoted(dir));
        assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
        remove_tree(dir);
    }
    assert_true(n > 4 && n < 40); /* (the mark, the old one kept, two renames at least) */
    assert_true(promoted(dir));
    remove_tree(base);
}

/* A promotion while another process starts again and again on the same data directory (and
 * renews, and reads what it publishes): under server.lock, the other never sees a half-moved pair
 * (each of its starts succeeds), and the promotion succeeds. */
static void service_ca_promote_while_starting(void **state)
{
    char base[] = "/tmp/rampart-service-race.XXXXXX", dir[PATH_MAX];
    int64_t end = promotable_base(base);
    int gate[2], status;
    pid_t pid;

    (void)state;
    for (int round = 0; round < 3; round++) {
        promotable_copy(base, round, dir, sizeof(dir));
        assert_int_equal(pipe(gate), 0);
        fflush(stderr);
        assert_true((pid = fork()) >= 0);
        if (pid == 0) {
            char c, *pem;
            int64_t nb, na;
            bool renewed;

            close(gate[1]);
            if (read(gate[0], &c, 1) != 0)
                _exit(2);
            for (int i = 0; i < 10; i++) {
                if (rp_service_identity_init(dir, NULL) != RP_OK ||
                    rp_service_cert_renew(dir, NULL, &renewed) != RP_OK ||
                    rp_service_ca_published(dir, (int64_t)time(NULL), &pem, &nb, &na) != RP_OK)
                    _exit(1);
                free(pem);
            }
            _exit(0);
        }
        close(gate[0]);
        close(gate[1]); /* (both go) */
        assert_int_equal(rp_service_ca_promote(dir, end + 60, false), RP_OK);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_true(promoted(dir));
        assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
        assert_true(signed_by(dir, "server-ca.pem"));
    }
    remove_tree(base);
}

/* A server certificate that begins further ahead than RP_CA_START_SLACK (made while the clock ran
 * ahead, put right since: clients refuse it) is made again, at start and by the running service's
 * check (review r13 L3). */
static void service_cert_ahead(void **state)
{
    char dir[] = "/tmp/rampart-service-ahead.XXXXXX";
    bool renewed = false;

    (void)state;
    assert_non_null(mkdtemp(dir));
    service_ca_ending(dir, 1000);
    for (int at_start = 0; at_start < 2; at_start++) {
        cert_files(dir, "server", "server-ca", 10 * 86400, 300 * 86400);
        if (at_start)
            assert_int_equal(rp_service_identity_init(dir, NULL), RP_OK);
        else {
            assert_int_equal(rp_service_cert_renew(dir, NULL, &renewed), RP_OK);
            assert_true(renewed);
        }
        assert_true(signed_by(dir, "server-ca.pem"));
        assert_true(cert_end(dir, "server.pem") - (int64_t)time(NULL) > 390 * 86400);
    }
    /* within the slack: the replicas' skew, left as it is */
    cert_files(dir, "server", "server-ca", RP_CA_START_SLACK / 2, 300 * 86400);
    assert_int_equal(rp_service_cert_renew(dir, NULL, &renewed), RP_OK);
    assert_false(renewed);
    remove_tree(dir);
}

/* A device certificate is valid from 5 minutes before its issue (a verifier whose clock is a
 * little behind the issuer's takes it) until 24 hours after it. */
static void ca_device_cert_dates(void **state)
{
    struct db *db = *state;
    int64_t issued = (int64_t)time(NULL);
    uint8_t spki[RP_PUBKEY_DER_MAX], master[RP_MASTER_KEY_LEN] = {0x44};
    EVP_PKEY *device;
    size_t len;
    rp_ca_t ca;
    X509 *cert;
    rp_cert_record_t rec;

    /* the CA made an hour before */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, issued - 3600, &ca), RP_OK);
    assert_int_equal(rp_key_generate(RP_SIG_ECDSA_P256, &device), RP_OK);
    assert_int_equal(rp_key_spki(device, spki, sizeof(spki), &len), RP_OK);
    /* (the device ID as given: the CA does not derive it) */
    assert_int_equal(rp_ca_issue_device_cert(&ca, spki, len, "dates", issued, &cert, &rec), RP_OK);
    assert_int_equal(rp_cert_time(X509_get0_notBefore(cert)), issued - 300);
    assert_int_equal(rp_cert_time(X509_get0_notAfter(cert)), issued + 24 * 3600);
    assert_int_equal(rec.not_after, issued + 24 * 3600);
    X509_free(cert);
    /* the CA back-dated RP_CA_BACKDATE (an hour), a certificate issued as it was made only 5 min */
    assert_int_equal(ca.cert_not_before, issued - 3600 - RP_CA_BACKDATE);
    assert_int_equal(rp_ca_issue_device_cert(&ca, spki, len, "dates", issued - 3600, &cert, &rec),
                     RP_OK);
    assert_int_equal(rp_cert_time(X509_get0_notBefore(cert)), issued - 3600 - 300);
    X509_free(cert);
    /* issued as the CA begins: back-dated no further than the CA's own start */
    assert_int_equal(
        rp_ca_issue_device_cert(&ca, spki, len, "dates", ca.cert_not_before + 100, &cert, &rec),
        RP_OK);
    assert_int_equal(rp_cert_time(X509_get0_notBefore(cert)), ca.cert_not_before);
    X509_free(cert);
    EVP_PKEY_free(device);
    rp_ca_free(&ca);
}

/* A device certificate is signed by its tenant's CA with ECDSA-SHA256, each one with a copy of
 * the CA's signing context made once (rp_ca_t's sign_ctx): every one verifies, in any order. */
static void ca_issues_device_certs(void **state)
{
    struct db *db = *state;
    uint8_t master[RP_MASTER_KEY_LEN], spki[RP_PUBKEY_DER_MAX], id[RP_SHA256_LEN];
    char device_id[RP_DEVICE_ID_SIZE], serials[3][RP_SERIAL_SIZE];
    rp_cert_record_t rec;
    EVP_PKEY *device;
    X509 *certs[3], *read;
    char *pem;
    BIO *bio;
    size_t len;
    rp_ca_t ca;

    memset(master, 0x33, sizeof(master));
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, (int64_t)time(NULL), &ca),
                     RP_OK);
    assert_non_null(ca.sign_ctx);
    assert_int_equal(rp_key_generate(RP_SIG_ECDSA_P256, &device), RP_OK);
    assert_int_equal(rp_key_spki(device, spki, sizeof(spki), &len), RP_OK);
    assert_int_equal(rp_sha256(spki, len, id), RP_OK);
    assert_int_equal(rp_hex_encode(id, sizeof(id), device_id, sizeof(device_id)), RP_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rp_ca_issue_device_cert(&ca, spki, len, device_id, (int64_t)time(NULL),
                                                 &certs[i], &rec),
                         RP_OK);
        snprintf(serials[i], sizeof(serials[i]), "%s", rec.serial);
        assert_int_equal(X509_get_signature_nid(certs[i]), NID_ecdsa_with_SHA256);
    }
    assert_string_not_equal(serials[0], serials[1]);
    for (int i = 2; i >= 0; i--) {
        assert_int_equal(X509_verify(certs[i], X509_get0_pubkey(ca.cert)), 1);
        /* as the device reads it: its PEM */
        assert_int_equal(rp_cert_pem(certs[i], &pem), RP_OK);
        bio = BIO_new_mem_buf(pem, -1);
        read = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        assert_non_null(read);
        assert_true(rp_cert_chains_to(read, ca.cert));
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(read), device), 1); /* its key, as given */
        X509_free(read);
        BIO_free(bio);
        free(pem);
        X509_free(certs[i]);
    }
    EVP_PKEY_free(device);
    rp_ca_free(&ca);
}

/* The rollover's rules on times alone (ca.h): a successor at two thirds of the newest CA's life;
 * the signer is the newest valid CA published RP_CA_PUBLISH_LEAD ago, else the oldest valid one,
 * none when none is valid; a device certificate never outlives its CA. */
static void ca_rollover_rules(void **state)
{
    const int64_t day = 24 * 3600, t0 = 1800000000, life = RP_CA_LIFETIME;
    int64_t nb[2] = {t0 + life / 3 * 2, t0}, na[2] = {t0 + life / 3 * 2 + life, t0 + life};

    (void)state;
    assert_false(rp_ca_rollover_due(t0, t0 + life, t0));
    assert_false(rp_ca_rollover_due(t0, t0 + life, t0 + life / 3 * 2 - 1));
    assert_true(rp_ca_rollover_due(t0, t0 + life, t0 + life / 3 * 2));
    assert_true(rp_ca_rollover_due(t0, t0 + life, t0 + life + 1)); /* ended: due all the more */
    /* only the first: it signs from its start, not before, not from its end */
    assert_int_equal(rp_ca_signer(&nb[1], &na[1], 1, t0), 0);
    assert_int_equal(rp_ca_signer(&nb[1], &na[1], 1, t0 - 1), -1);
    assert_int_equal(rp_ca_signer(&nb[1], &na[1], 1, t0 + life), -1);
    /* with its successor: the old one signs until the successor was published long enough */
    assert_int_equal(rp_ca_signer(nb, na, 2, nb[0]), 1);
    assert_int_equal(rp_ca_signer(nb, na, 2, nb[0] + RP_CA_PUBLISH_LEAD - 1), 1);
    assert_int_equal(rp_ca_signer(nb, na, 2, nb[0] + RP_CA_PUBLISH_LEAD), 0);
    /* a successor made late (the old one near its end): the old one signs to its end, then the
     * successor, young as it is */
    nb[0] = t0 + life - day;
    na[0] = nb[0] + life;
    assert_int_equal(rp_ca_signer(nb, na, 2, t0 + life - 1), 1);
    assert_int_equal(rp_ca_signer(nb, na, 2, t0 + life), 0);
    /* the clamp */
    assert_int_equal(rp_ca_device_not_after(t0 + life, t0), t0 + RP_DEVICE_CERT_LIFETIME);
    assert_int_equal(rp_ca_device_not_after(t0 + life, t0 + life - 3600), t0 + life);
    assert_int_equal(rp_ca_device_not_after(t0 + life, t0 + life - RP_DEVICE_CERT_LIFETIME),
                     t0 + life);
}

/* A device certificate for a new P-256 key, issued by ca at now. */
static rp_err_t issue_at(const rp_ca_t *ca, int64_t now, X509 **cert, rp_cert_record_t *rec)
{
    uint8_t spki[RP_PUBKEY_DER_MAX], id[RP_SHA256_LEN];
    char device_id[RP_DEVICE_ID_SIZE];
    EVP_PKEY *device;
    size_t len;
    rp_err_t err;

    assert_int_equal(rp_key_generate(RP_SIG_ECDSA_P256, &device), RP_OK);
    assert_int_equal(rp_key_spki(device, spki, sizeof(spki), &len), RP_OK);
    assert_int_equal(rp_sha256(spki, len, id), RP_OK);
    assert_int_equal(rp_hex_encode(id, sizeof(id), device_id, sizeof(device_id)), RP_OK);
    err = rp_ca_issue_device_cert(ca, spki, len, device_id, now, cert, rec);
    EVP_PKEY_free(device);
    if (err == RP_OK) { /* as the device reads it: its PEM */
        char *pem;
        BIO *bio;
        assert_int_equal(rp_cert_pem(*cert, &pem), RP_OK);
        X509_free(*cert);
        bio = BIO_new_mem_buf(pem, -1);
        *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        assert_non_null(*cert);
        BIO_free(bio);
        free(pem);
    }
    return err;
}

/* Whether cert verifies against the PEM bundle trust (as a broker given it would) at time at. */
static bool verifies_at(X509 *cert, const char *trust, int64_t at)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    BIO *bio = BIO_new_mem_buf(trust, -1);
    X509 *ca;
    bool ok;

    assert_true(store != NULL && ctx != NULL && bio != NULL);
    while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        assert_int_equal(X509_STORE_add_cert(store, ca), 1);
        X509_free(ca);
    }
    ERR_clear_error();
    ok = X509_STORE_CTX_init(ctx, store, cert, NULL) == 1;
    if (ok)
        X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
    ok = ok && X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    BIO_free(bio);
    ERR_clear_error();
    return ok;
}

static int64_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;

    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

static int pem_count(const char *pem)
{
    int n = 0;

    for (const char *p = pem; (p = strstr(p, "-----BEGIN")) != NULL; p++)
        n++;
    return n;
}

/* The rollover through the store, with the clock given: a successor made once at two thirds of
 * the CA's life (by whichever replica gets there first), published at once, signing a month
 * later; the old one trusted until its end; certificates never past their CA's end; none issued
 * from an ended CA. */
/* A CA made while the clock ran ahead counts for nothing once it is put right: a new generation,
 * valid now, signs at once; a successor made ahead neither stops the rollover nor pushes a live CA
 * out of the list. */
static void ca_clock_ahead(void **state)
{
    struct db *db = *state;
    const int64_t t0 = (int64_t)time(NULL), day = 24 * 3600, life = RP_CA_LIFETIME;
    const int64_t due1 = t0 - RP_CA_BACKDATE + (life + RP_CA_BACKDATE) / 3 * 2;
    uint8_t master[RP_MASTER_KEY_LEN];
    rp_ca_record_t recs[RP_CA_LISTED];
    rp_cert_record_t rec;
    rp_ca_t ca;
    X509 *cert;
    int n;

    memset(master, 0x45, sizeof(master));
    /* the tenant's first CA, made a day ahead */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, t0 + day, &ca), RP_OK);
    assert_int_equal(ca.signer, 0);
    assert_int_equal(ca.generation[0], 0);
    rp_ca_free(&ca);
    /* the clock put right: generation 1, valid now, signs; generation 0 is left out */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, t0, &ca), RP_OK);
    assert_int_equal(ca.n, 1);
    assert_int_equal(ca.signer, 0);
    assert_int_equal(ca.generation[0], 1);
    assert_int_equal(issue_at(&ca, t0, &cert, &rec), RP_OK);
    assert_true(verifies_at(cert, ca.cert_pem, t0 + 1));
    X509_free(cert);
    /* read again when generation 0 begins to count */
    assert_int_equal(ca.changes_at, t0 + day - RP_CA_BACKDATE - RP_CA_START_SLACK);
    rp_ca_free(&ca);
    /* and only once (a replica a little later, or behind by less than the slack) */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, t0 + 1, &ca), RP_OK);
    assert_int_equal(ca.generation[0], 1);
    rp_ca_free(&ca);
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, t0 + day - 1800, &ca), RP_OK);
    assert_int_equal(ca.generation[0], 1); /* generation 0 within the slack: no third */
    rp_ca_free(&ca);

    /* a replica a year and a half ahead makes generation 2 early... */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, due1 + 30 * day, &ca), RP_OK);
    assert_int_equal(ca.generation[0], 2);
    rp_ca_free(&ca);
    /* ...at the real rollover the others still roll over (generation 3), and the live ones stay
     * listed beside the early one: generations 3, 1 and 0, generation 1 signing */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, due1, &ca), RP_OK);
    assert_int_equal(ca.n, 3);
    assert_int_equal(ca.generation[0], 3);
    assert_int_equal(ca.generation[1], 1);
    assert_int_equal(ca.generation[2], 0);
    assert_int_equal(ca.signer, 1);
    assert_int_equal(issue_at(&ca, due1, &cert, &rec), RP_OK);
    X509_free(cert);
    rp_ca_free(&ca);
    assert_int_equal(rp_store_ca_list(db->s, db->tenant.id, recs, RP_CA_LISTED, &n), RP_OK);
    assert_int_equal(n, 4);
    for (int i = 0; i < n; i++)
        rp_ca_record_free(&recs[i]);
}

/* A first CA made while the clock ran ahead by less than RP_CA_START_SLACK counts (no other is
 * made) and signs at once at the right time: it is back-dated that far (review r10 L1). */
static void ca_clock_ahead_within_slack(void **state)
{
    struct db *db = *state;
    const int64_t t0 = (int64_t)time(NULL);
    uint8_t master[RP_MASTER_KEY_LEN];
    rp_cert_record_t rec;
    rp_ca_t ca;
    X509 *cert;

    memset(master, 0x47, sizeof(master));
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, t0 + RP_CA_START_SLACK, &ca),
                     RP_OK);
    rp_ca_free(&ca);
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, t0, &ca), RP_OK);
    assert_int_equal(ca.n, 1);
    assert_int_equal(ca.generation[0], 0);
    assert_int_equal(ca.signer, 0);
    assert_int_equal(issue_at(&ca, t0, &cert, &rec), RP_OK);
    assert_true(verifies_at(cert, ca.cert_pem, t0 + 1));
    X509_free(cert);
    rp_ca_free(&ca);
}

/* An ended certificate for a failed device's recovery routes (review r10 M2): its chain is
 * checked with only its end waived, for at most ended_max after it, its CA valid now. */
static void ca_chains_to_ended(void **state)
{
    struct db *db = *state;
    const int64_t t0 = (int64_t)time(NULL), day = 24 * 3600, week = RP_RECOVERY_ENDED_MAX;
    uint8_t master[RP_MASTER_KEY_LEN], other_master[RP_MASTER_KEY_LEN];
    rp_cert_record_t rec;
    rp_tenant_t globex;
    rp_ca_t ca, other;
    X509 *cert, *issuer;

    memset(master, 0x48, sizeof(master));
    memset(other_master, 0x49, sizeof(other_master));
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, t0, &ca), RP_OK);
    assert_int_equal(issue_at(&ca, t0, &cert, &rec), RP_OK);
    issuer = ca.certs[ca.signer];
    assert_false(rp_cert_chains_to_ended(cert, issuer, t0 + 60, week));  /* not ended */
    assert_false(rp_cert_chains_to_ended(cert, issuer, t0 - 600, week)); /* not begun */
    assert_true(rp_cert_chains_to_ended(cert, issuer, t0 + day + 1, week));
    assert_true(rp_cert_chains_to_ended(cert, issuer, t0 + day + week, week));
    assert_false(rp_cert_chains_to_ended(cert, issuer, t0 + day + week + 1, week));
    assert_false(rp_cert_chains_to_ended(cert, issuer, t0 + day + 1, -1));
    /* its CA ended, however long ended_max */
    assert_true(rp_cert_chains_to_ended(cert, issuer, t0 + RP_CA_LIFETIME - 1, RP_CA_LIFETIME));
    assert_false(rp_cert_chains_to_ended(cert, issuer, t0 + RP_CA_LIFETIME, RP_CA_LIFETIME));
    /* another tenant's CA: no chain */
    assert_int_equal(rp_store_tenant_create(db->s, "globex-ended", &globex), RP_OK);
    assert_int_equal(rp_ca_get_or_create(db->s, other_master, &globex, t0, &other), RP_OK);
    assert_false(rp_cert_chains_to_ended(cert, other.certs[other.signer], t0 + day + 1, week));
    assert_true(rp_cert_chains_to(cert, issuer)); /* (current now: the plain check's) */
    X509_free(cert);
    rp_ca_free(&other);
    rp_ca_free(&ca);
}

/* A tenant not in use rolls over too: the service's sweep makes its successor when it is due,
 * not before; the soonest end then stays a third of a life away. */
static void ca_sweep_dormant(void **state)
{
    struct db *db = *state;
    const int64_t t0 = (int64_t)time(NULL), life = RP_CA_LIFETIME;
    const int64_t due = t0 - RP_CA_BACKDATE + (life + RP_CA_BACKDATE) / 3 * 2;
    uint8_t master[RP_MASTER_KEY_LEN];
    rp_ca_record_t recs[RP_CA_LISTED];
    int64_t soonest;
    rp_ca_t ca;
    int n, rolled;

    memset(master, 0x46, sizeof(master));
    assert_int_equal(rp_ca_roll_ending(db->s, master, t0, &rolled), RP_OK);
    assert_int_equal(rolled, 0); /* no tenant has a CA yet: none is made here */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, t0, &ca), RP_OK);
    rp_ca_free(&ca);
    assert_int_equal(rp_ca_roll_ending(db->s, master, due - 600, &rolled), RP_OK);
    assert_int_equal(rolled, 0);
    assert_int_equal(rp_ca_roll_ending(db->s, master, due - 1, &rolled), RP_OK);
    assert_int_equal(rp_store_ca_list(db->s, db->tenant.id, recs, RP_CA_LISTED, &n), RP_OK);
    assert_int_equal(n, 1); /* looked at, perhaps, but not yet due */
    rp_ca_record_free(&recs[0]);
    assert_int_equal(rp_ca_roll_ending(db->s, master, due, &rolled), RP_OK);
    assert_int_equal(rolled, 1);
    assert_int_equal(rp_store_ca_list(db->s, db->tenant.id, recs, RP_CA_LISTED, &n), RP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(recs[0].generation, 1);
    for (int i = 0; i < n; i++)
        rp_ca_record_free(&recs[i]);
    assert_int_equal(rp_store_ca_soonest_end(db->s, &soonest), RP_OK);
    assert_int_equal(soonest, due + life);
    /* and then nothing until the successor's own rollover */
    assert_int_equal(rp_ca_roll_ending(db->s, master, due + 1, &rolled), RP_OK);
    assert_int_equal(rolled, 0);
}

static void ca_rollover(void **state)
{
    struct db *db = *state;
    const int64_t t0 = (int64_t)time(NULL), life = RP_CA_LIFETIME;
    /* the first CA is back-dated RP_CA_BACKDATE */
    const int64_t due = t0 - RP_CA_BACKDATE + (life + RP_CA_BACKDATE) / 3 * 2;
    uint8_t master[RP_MASTER_KEY_LEN];
    rp_store_t *replica = NULL;
    rp_cert_record_t rec;
    rp_ca_record_t recs[RP_CA_LIVE];
    rp_tenant_t globex;
    rp_ca_t ca, other;
    X509 *cert, *old_cert;
    uint64_t refused;
    int64_t soonest;
    uint8_t *der;
    char *pem;
    size_t len, pem_len;
    int n;

    memset(master, 0x44, sizeof(master));
    assert_int_equal(rp_store_ca_soonest_end(db->s, &soonest), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, t0, &ca), RP_OK);
    assert_int_equal(ca.n, 1);
    assert_int_equal(ca.signer, 0);
    assert_int_equal(ca.cert_not_after, t0 + life);
    assert_int_equal(rp_store_ca_soonest_end(db->s, &soonest), RP_OK);
    assert_int_equal(soonest, t0 + life);
    /* fail closed: a CA loaded earlier, used past its end (or before its start), signs nothing */
    refused = rp_ca_signing_refused();
    assert_int_equal(issue_at(&ca, t0 + life, &cert, &rec), RP_ERR_EXPIRED);
    assert_null(cert);
    assert_int_equal(issue_at(&ca, t0 - RP_CA_BACKDATE - 1, &cert, &rec), RP_ERR_EXPIRED);
    assert_int_equal(rp_ca_signing_refused(), refused + 2);
    rp_ca_free(&ca);

    /* just before the rollover: nothing made */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, due - 1, &ca), RP_OK);
    assert_int_equal(ca.n, 1);
    assert_int_equal(ca.changes_at, due);
    rp_ca_free(&ca);
    /* at it, two replicas: one successor, the same for both */
    assert_int_equal(rt_store_open(&db->t, &replica), RP_OK);
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, due, &ca), RP_OK);
    assert_int_equal(rp_ca_get_or_create(replica, master, &db->tenant, due + 1, &other), RP_OK);
    assert_int_equal(ca.n, 2);
    assert_int_equal(other.n, 2);
    assert_int_equal(ca.generation[0], 1);
    assert_int_equal(X509_cmp(ca.certs[0], other.certs[0]), 0);
    rp_ca_free(&other);
    /* ...also when both decided at once: the database takes one successor */
    assert_int_equal(rp_store_ca_list(replica, db->tenant.id, recs, RP_CA_LIVE, &n), RP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(recs[0].generation, 1);
    assert_int_equal(recs[1].generation, 0);
    assert_int_equal(rp_store_ca_put(replica, &recs[0]), RP_ERR_EXISTS);
    assert_int_equal(rp_store_ca_put(replica, &recs[1]), RP_ERR_EXISTS);
    for (int i = 0; i < n; i++)
        rp_ca_record_free(&recs[i]);
    rp_store_close(replica);
    /* published (both, the signer first) but the first one still signs */
    assert_int_equal(ca.signer, 1);
    assert_int_equal(pem_count(ca.cert_pem), 2);
    assert_int_equal(issue_at(&ca, due, &old_cert, &rec), RP_OK);
    assert_int_equal(X509_check_issued(ca.certs[1], old_cert), X509_V_OK);
    assert_ptr_equal(rp_ca_issuer_of(&ca, old_cert), ca.certs[1]);
    assert_true(verifies_at(old_cert, ca.cert_pem, due + 1));
    assert_int_equal(ca.changes_at, ca.not_before[0] + RP_CA_PUBLISH_LEAD);
    /* one CRL per CA, the signer's the DER one */
    assert_int_equal(rp_ca_crls(db->s, &ca, due, &der, &len, &pem, &pem_len), RP_OK);
    assert_int_equal(pem_count(pem), 2);
    assert_int_equal(strlen(pem), pem_len);
    {
        const unsigned char *p = der;
        X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
        assert_non_null(crl);
        assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca.certs[1])), 1);
        X509_CRL_free(crl);
    }
    free(der);
    /* each CA's own, by its generation (DER, or PEM) */
    for (int g = 0; g < 2; g++) {
        uint8_t *one;
        size_t one_len;
        const unsigned char *p;
        X509_CRL *crl;
        assert_int_equal(rp_ca_crl_of(&ca, pem, g, false, &one, &one_len), RP_OK);
        p = one;
        assert_non_null(crl = d2i_X509_CRL(NULL, &p, (long)one_len));
        assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca.certs[1 - g])), 1);
        X509_CRL_free(crl);
        free(one);
        assert_int_equal(rp_ca_crl_of(&ca, pem, g, true, &one, &one_len), RP_OK);
        assert_int_equal(pem_count((char *)one), 1);
        free(one);
    }
    assert_int_equal(rp_ca_crl_of(&ca, pem, 2, false, &der, &len), RP_ERR_NOT_FOUND);
    free(pem);
    rp_ca_free(&ca);
    assert_int_equal(rp_store_ca_soonest_end(db->s, &soonest), RP_OK);
    assert_int_equal(soonest, due + life); /* the tenant's newest CA's */

    /* a month on: the successor signs; the old one's certificate still verifies and is known */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, due + RP_CA_PUBLISH_LEAD, &ca),
                     RP_OK);
    assert_int_equal(ca.n, 2);
    assert_int_equal(ca.signer, 0);
    assert_int_equal(issue_at(&ca, due + RP_CA_PUBLISH_LEAD, &cert, &rec), RP_OK);
    assert_ptr_equal(rp_ca_issuer_of(&ca, cert), ca.certs[0]);
    assert_ptr_equal(rp_ca_issuer_of(&ca, old_cert), ca.certs[1]);
    assert_true(verifies_at(cert, ca.cert_pem, due + RP_CA_PUBLISH_LEAD + 1));
    assert_true(verifies_at(old_cert, ca.cert_pem, due + 1));
    assert_int_equal(rec.not_after, due + RP_CA_PUBLISH_LEAD + RP_DEVICE_CERT_LIFETIME);
    X509_free(cert);
    X509_free(old_cert);
    rp_ca_free(&ca);
    /* after the first one's end: it is neither trusted nor published */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &db->tenant, t0 + life, &ca), RP_OK);
    assert_int_equal(ca.n, 1);
    assert_int_equal(ca.generation[0], 1);
    assert_int_equal(pem_count(ca.cert_pem), 1);
    rp_ca_free(&ca);

    /* A tenant not seen from its CA's making to a day before its end: the successor made then
     * is young, so the first one signs, for what is left of its life only; after its end the
     * successor signs. */
    assert_int_equal(rp_store_tenant_create(db->s, "globex", &globex), RP_OK);
    assert_int_equal(rp_ca_get_or_create(db->s, master, &globex, t0, &ca), RP_OK);
    rp_ca_free(&ca);
    assert_int_equal(rp_ca_get_or_create(db->s, master, &globex, t0 + life - 3600, &ca), RP_OK);
    assert_int_equal(ca.n, 2);
    assert_int_equal(ca.signer, 1);
    assert_int_equal(issue_at(&ca, t0 + life - 3600, &cert, &rec), RP_OK);
    assert_int_equal(rec.not_after, t0 + life);
    assert_int_equal(asn1_to_time(X509_get0_notAfter(cert)), t0 + life);
    assert_int_equal(ca.changes_at, t0 + life);
    X509_free(cert);
    rp_ca_free(&ca);
    assert_int_equal(rp_ca_get_or_create(db->s, master, &globex, t0 + life, &ca), RP_OK);
    assert_int_equal(ca.n, 1);
    assert_int_equal(ca.signer, 0);
    assert_int_equal(issue_at(&ca, t0 + life, &cert, &rec), RP_OK);
    assert_int_equal(rec.not_after, t0 + life + RP_DEVICE_CERT_LIFETIME);
    X509_free(cert);
    rp_ca_free(&ca);
    /* a tenant whose every CA ended (the service was off): a successor at once */
    assert_int_equal(rp_ca_get_or_create(db->s, master, &globex, t0 + 5 * life, &ca), RP_OK);
    assert_int_equal(ca.n, 1);
    assert_int_equal(ca.generation[0], 2);
    assert_int_equal(ca.signer, 0);
    rp_ca_free(&ca);
}

int main(int argc, char **argv)
{
    /* (the child of service_ca_promote_cut: a promotion at a given time, cut by a failpoint) */
    if (argc == 4 && strcmp(argv[1], "promote") == 0)
        return rp_service_ca_promote(argv[2], strtoll(argv[3], NULL, 10), false) == RP_OK ? 0 : 1;
    if (readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nonce_round_trip),
        cmocka_unit_test(nonce_refusals),
        cmocka_unit_test(nonce_format_1_refused),
        cmocka_unit_test(nonce_from_clock_ahead),
        cmocka_unit_test_setup_teardown(store_schema, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_uploads_limits_and_sweep, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_delta_lease_renewed, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_upload_became, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(ca_issues_device_certs, db_setup, db_teardown),
        cmocka_unit_test(ca_rollover_rules),
        cmocka_unit_test_setup_teardown(ca_rollover, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(ca_clock_ahead, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(ca_clock_ahead_within_slack, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(ca_chains_to_ended, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(ca_sweep_dormant, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(ca_device_cert_dates, db_setup, db_teardown),
        cmocka_unit_test(service_cert_within_ca),
        cmocka_unit_test(service_ca_rollover_rules),
        cmocka_unit_test(service_ca_successor),
        cmocka_unit_test(service_ca_half_pairs),
        cmocka_unit_test(service_ca_first_starts_at_once),
        cmocka_unit_test(service_ca_next_not_due),
        cmocka_unit_test(service_ca_promote_rules),
        cmocka_unit_test(service_ca_promote_half_pairs),
        cmocka_unit_test(service_ca_promote_cut),
        cmocka_unit_test(service_ca_promote_while_starting),
        cmocka_unit_test(service_cert_ahead),
        cmocka_unit_test_setup_teardown(store_device_status, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_batch_spends_each_nonce_once, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_nonce_once_across_clocks, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_nonce_purge_ahead_keeps_live, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_nonce_reset_kills_older_epoch, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_nonce_epoch_rises_across_restore, db_setup,
                                        db_teardown),
        cmocka_unit_test_setup_teardown(store_proven_failure_revokes, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_bars_lifted_relabel, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_migration_29_lifts, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_pass_for_a_device_blocked_meanwhile, db_setup,
                                        db_teardown),
        cmocka_unit_test_setup_teardown(store_unproven_failures_apart, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_fleet_counts_and_revoked, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_reissue_checks, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_reissue_races_with_block, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_reissue_limit, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_reissue_limit_races, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_settings_edits_race, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_settings_edit_refused, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_tokens, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_console_sessions, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_token_revokes_its_links, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_device_claim_limit, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_whole_lists_capped, db_setup, db_teardown),
        cmocka_unit_test(console_paths),
        cmocka_unit_test(console_cookie),
        cmocka_unit_test(names_rule),
        cmocka_unit_test(names_prefix),
        cmocka_unit_test(names_keys),
        cmocka_unit_test(names_lookup_form),
        cmocka_unit_test_setup_teardown(store_names_unique, db_setup, db_teardown),
        cmocka_unit_test(text_utf8_valid),
        cmocka_unit_test_setup_teardown(store_lookup_not_utf8, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_lookalikes_collide, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_name_keys_filled_at_open, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_policy, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_statement_cache_grows, db_setup, db_teardown),
        cmocka_unit_test(rollout_choice),
        cmocka_unit_test(range_header),
        cmocka_unit_test(rate_limit),
        cmocka_unit_test_setup_teardown(store_groups_and_deployments, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_counter_max, db_setup, db_teardown),
        cmocka_unit_test(peers_cap),
        cmocka_unit_test(page_params_and_range),
        cmocka_unit_test_setup_teardown(store_device_page, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_device_state_pages, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_counters_match_rows, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_report_races_move, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_verdict_seeded, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_device_state_plans_pg, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_page_plans, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_lists_paged, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_deployment_progress, db_setup, db_teardown),
        cmocka_unit_test(peers_churn),
        cmocka_unit_test_setup_teardown(store_write_check, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(store_write_check_read_only, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(ca_master_check, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(ca_master_check_legacy, db_setup, db_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
