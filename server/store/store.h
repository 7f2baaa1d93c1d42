/*
 * The security service's storage: every record the service keeps, behind domain operations, so
 * that callers never see SQL and a PostgreSQL backend can follow without touching them. One
 * rp_store_t is one connection, used by one thread at a time. The SQLite backend runs in WAL mode
 * with full sync: anything the service acknowledges is on disk first.
 */
#ifndef RAMPART_STORE_H
#define RAMPART_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/crypto.h"
#include "rampart/error.h"
#include "rampart/rot.h"

#define RP_ID_SIZE 40 /* tenant and token IDs: "t_" or "k_" and hex, with a NUL */
#define RP_NAME_MAX 128
#define RP_SERIAL_SIZE 41 /* certificate serials: 20 bytes in hex, with a NUL */
#define RP_REASON_MAX 64
#define RP_QUARANTINE_REASON_MAX 255 /* why a device was quarantined, for people */

/*
 * A page of one of the operator's lists (server/api/paging.c makes it from ?limit&after&prefix):
 * the rows in key order whose key is above `after` ("": from the first) and whose filtered column
 * starts with `prefix` ("": any), at most limit; not paged: the whole list, in its own order. The
 * store reads it in SQL, the prefix as the index range [prefix, upto): bytewise, as SQLite's BINARY
 * collation compares TEXT (no LIKE, whose '%', '_' and case rules are not a prefix's).
 */
#define RP_PAGE_KEY_MAX 128 /* bytes of ?after and ?prefix */
typedef struct rp_page {
    bool paged; /* any paging parameter given: a page, else the whole list as before */
    int limit;
    char after[RP_PAGE_KEY_MAX + 1];
    char prefix[RP_PAGE_KEY_MAX + 1];
    char upto[RP_PAGE_KEY_MAX + 1]; /* the least string above every one that starts with prefix */
    bool no_upto;                   /* prefix is "" or all 0xff bytes: there is none */
    /* not paged: the most rows read of the whole list, in its own order (0: every one); the
     * operator's unpaged lists read one more than they answer (paging.h: RP_PAGE_WHOLE_MAX) */
    int whole_max;
} rp_page_t;

typedef enum rp_role {
    RP_ROLE_NONE = 0,
    RP_ROLE_READER = 1,      /* read the tenant's objects */
    RP_ROLE_CONTRIBUTOR = 2, /* and claim devices (later: upload images, deploy) */
    RP_ROLE_ADMIN = 3,       /* and manage tokens, block devices */
    RP_ROLE_SYSTEM = 4,      /* every tenant, and creating tenants (the bootstrap token) */
} rp_role_t;

const char *rp_role_name(rp_role_t role);
rp_role_t rp_role_parse(const char *name); /* RP_ROLE_NONE if unknown */

typedef struct rp_tenant {
    char id[RP_ID_SIZE];
    char name[RP_NAME_MAX + 1];
    int64_t created;
} rp_tenant_t;

typedef struct rp_token {
    char id[RP_ID_SIZE];
    char tenant_id[RP_ID_SIZE]; /* empty for a system token */
    rp_role_t role;
    int64_t created;
    int64_t expires;   /* 0: never */
    int64_t last_used; /* 0: never; updated at most once a minute (RP_TOKEN_USE_EVERY) */
    /* The token whose login link made this one ("": made otherwise): revoking that token, or
     * the one that made it, and so on, revokes this one with it (rp_store_token_revoke). */
    char made_by[RP_ID_SIZE];
} rp_token_t;

typedef struct rp_device {
    char id[RP_DEVICE_ID_SIZE];
    char tenant_id[RP_ID_SIZE];
    bool blocked;
    int64_t claimed_at;
    int64_t blocked_at;
    uint8_t spki[RP_PUBKEY_DER_MAX]; /* learnt at the first attestation; 0 bytes until then */
    size_t spki_len;
    /* the last attestation, if any */
    int64_t last_attested_at;
    bool last_passed;
    char last_reason[RP_REASON_MAX + 1];
    /* the current certificate, if any */
    char cert_serial[RP_SERIAL_SIZE];
    int64_t cert_not_after;
    /* quarantined by the tenant's policy (threat.c): since when (0: not), and why */
    int64_t quarantined_at;
    char quarantine_reason[RP_QUARANTINE_REASON_MAX + 1];
} rp_device_t;

/* One attestation as recorded: pass, or the exact reason it failed. */
typedef struct rp_attestation {
    int64_t id;
    char device_id[RP_DEVICE_ID_SIZE];
    char tenant_id[RP_ID_SIZE]; /* empty when the device belongs to no tenant */
    int64_t at;
    bool passed;
    char reason[RP_REASON_MAX + 1];
    char claims_json[8192]; /* what the evidence said, for operators (16 components fit) */
    char cert_serial[RP_SERIAL_SIZE];
} rp_attestation_t;

/* Why a certificate was revoked (certificates.revoked_for, schema 28; LIFTED: schema 29). */
typedef enum rp_revoked_for {
    RP_REVOKED_OTHER = 0,  /* blocked, quarantined, or revoked before schema 28 */
    RP_REVOKED_FAILED = 1, /* a proven failed attestation (docs/protocol.md "Verdicts") */
    RP_REVOKED_LIFTED = 2, /* OTHER, and the device has since been left with neither bar: what
                            * revoked it no longer holds (sq_device_write) */
} rp_revoked_for_t;

typedef struct rp_cert_record {
    char serial[RP_SERIAL_SIZE];
    char tenant_id[RP_ID_SIZE];
    char device_id[RP_DEVICE_ID_SIZE];
    int64_t not_before;
    int64_t not_after;
    int64_t revoked_at; /* 0: not revoked */
    int revoked_for;    /* rp_revoked_for_t: why, when revoked */
} rp_cert_record_t;

/* A tenant's CA: its certificate, and its key encrypted under the service's master key. The
 * tenant's first CA is generation 0; each successor (the rollover, server/ca/ca.c) is the next. */
typedef struct rp_ca_record {
    char tenant_id[RP_ID_SIZE];
    int generation;
    char *cert_pem;    /* malloc'd; rp_ca_record_free() */
    char *key_pem_enc; /* malloc'd: PKCS#8, encrypted */
    int64_t not_after;
} rp_ca_record_t;

void rp_ca_record_free(rp_ca_record_t *ca);

typedef struct rp_store rp_store_t;

/* Open (creating and migrating as needed) the database in data_dir (SQLite: rampart.db). */
rp_err_t rp_store_open(const char *data_dir, rp_store_t **store) RP_MUST_CHECK;
/* The same for a database target (db.h: rp_db_driver_for): a SQLite file's path, or a
 * postgresql:// URI (a new database gets the schema's baseline, schema_pg.h). RP_ERR_UNSUPPORTED
 * (logged): a backend this build does not have. */
rp_err_t rp_store_open_target(const char *target, rp_store_t **store) RP_MUST_CHECK;
/* The same, but only where a Rampart database is already (its schema, at any version): where
 * none is (a SQLite file that is not there, or a database without the schema), RP_ERR_NOT_FOUND,
 * and nothing is made. For the commands that work on the service's database and must not make
 * one where they were pointed by mistake (main.c: review r15ops L1). */
rp_err_t rp_store_open_existing(const char *target, rp_store_t **store) RP_MUST_CHECK;
void rp_store_close(rp_store_t *store);
/*
 * A failure its caller should answer apart from "internal": RP_ERR_BUSY when a step since the
 * last rp_store_failure_forget lost a race or the database's connection (the whole request may be
 * retried shortly), else RP_ERR_INVALID_ARG when the database refused a value as data it cannot
 * hold (text that is not UTF-8, for PostgreSQL), else RP_OK. The request path forgets it as each
 * request starts and reads it when one fails (http.c: rp_reply_error).
 */
rp_err_t rp_store_failure(const rp_store_t *store);
void rp_store_failure_forget(rp_store_t *store);
/* The schema version the database is at; the one this build migrates to (migrations.c). */
int rp_store_schema_version(rp_store_t *store);
extern const int rp_store_schema_newest;

rp_err_t rp_store_tenant_create(rp_store_t *s, const char *name, rp_tenant_t *out) RP_MUST_CHECK;
rp_err_t rp_store_tenant_get(rp_store_t *s, const char *id, rp_tenant_t *out) RP_MUST_CHECK;
typedef void (*rp_tenant_fn)(void *ctx, const rp_tenant_t *t);
/* Every tenant (only: just that one, if it exists), oldest first; page: by ID, filtered on the
 * name. */
rp_err_t rp_store_tenant_list(rp_store_t *s, const char *only, const rp_page_t *page,
                              rp_tenant_fn fn, void *ctx) RP_MUST_CHECK;

/* A token is stored by the SHA-256 of its secret; the secret itself never is (rp_store_token_add
 * below makes one). */
rp_err_t rp_store_token_lookup(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN],
                               rp_token_t *out) RP_MUST_CHECK;
typedef void (*rp_token_fn)(void *ctx, const rp_token_t *t);
/* The tenant's tokens (NULL: the system's); page: see rp_page_t (by ID, filtered on the ID). */
rp_err_t rp_store_token_list(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                             rp_token_fn fn, void *ctx) RP_MUST_CHECK;

/*
 * Claim a device for a tenant. Claiming it again for the same tenant is a no-op (RP_OK);
 * a device another tenant holds is RP_ERR_EXISTS.
 */
rp_err_t rp_store_device_claim(rp_store_t *s, const char *tenant_id, const char *device_id,
                               int64_t now) RP_MUST_CHECK;
/* The same, but a device new to the tenant is refused (RP_ERR_DENIED, nothing written) while the
 * tenant holds max devices already (0: no limit: rp_store_device_claim), counted in the claim's
 * transaction (its counter, device_counts), so that claims at once, on any replica, never pass it
 * (review r15web M4: --max-devices-per-tenant). */
rp_err_t rp_store_device_claim_upto(rp_store_t *s, const char *tenant_id, const char *device_id,
                                    int64_t now, int64_t max) RP_MUST_CHECK;
rp_err_t rp_store_device_get(rp_store_t *s, const char *device_id, rp_device_t *out) RP_MUST_CHECK;
/* Only what attestation needs, fresh from the store: the tenant holding the device (OUT: into
 * tenant_id) and whether it is blocked. RP_ERR_NOT_FOUND when no tenant holds it. */
rp_err_t rp_store_device_standing(rp_store_t *s, const char *device_id, char tenant_id[RP_ID_SIZE],
                                  bool *blocked) RP_MUST_CHECK;
typedef void (*rp_device_fn)(void *ctx, const rp_device_t *d);
/* Block a device and revoke every certificate it holds, in one transaction. */
rp_err_t rp_store_device_block(rp_store_t *s, const char *tenant_id, const char *device_id,
                               int64_t now) RP_MUST_CHECK;
rp_err_t rp_store_device_unblock(rp_store_t *s, const char *tenant_id,
                                 const char *device_id) RP_MUST_CHECK;
/* How many times the tenant's devices have had certificates revoked (each block counts): a CRL
 * made at a lower count is stale. 0 for a tenant without a CA. */
rp_err_t rp_store_crl_version(rp_store_t *s, const char *tenant_id, int64_t *version) RP_MUST_CHECK;

/* How an attestation was recorded (rp_store_attestations_record). */
typedef enum rp_recorded_as {
    RP_RECORDED_AS_GIVEN = 0,
    RP_RECORDED_AS_REPLAY,  /* its nonce was spent already: recorded as spent_reason, no certificate
                             */
    RP_RECORDED_AS_BLOCKED, /* a pass for a device blocked (or no longer the tenant's) meanwhile:
                             * recorded as blocked_reason, no certificate */
    RP_RECORDED_AS_STALE,   /* its nonce is of another nonce epoch than the database's (issued
                             * before a `nonces reset-watermark`, or before a restore): recorded
                             * as stale_reason, unproven, no certificate */
} rp_recorded_as_t;

/* What is recorded of one attestation. */
typedef struct rp_attestation_write {
    rp_attestation_t *a;          /* the verdict; OUT: a->id, and a->passed/reason if changed */
    const rp_cert_record_t *cert; /* the certificate a pass issued, or NULL */
    const uint8_t *spki;          /* the device's key, kept at its first pass (or NULL) */
    size_t spki_len;
    const uint8_t *nonce; /* a nonce the attestation spends, or NULL */
    size_t nonce_len;
    int64_t nonce_expires;      /* until when it must be remembered as spent */
    uint32_t nonce_epoch;       /* the nonce epoch it was issued in (nonce.h) */
    const char *spent_reason;   /* the reason recorded when the nonce was spent already */
    const char *stale_reason;   /* the reason recorded when it is of another nonce epoch */
    const char *blocked_reason; /* the reason recorded when a pass finds the device blocked */
    rp_recorded_as_t as;        /* OUT */
    /* A failure that proves nothing about the device (its evidence is not shown to be the
     * device's and fresh, e.g. a bad signature): counted for its source address
     * (rp_store_unproven_list), not in the device's history nor as its last attestation, so
     * that whoever knows a device's public key cannot spoil its record. A record whose nonce
     * turns out spent (RP_RECORDED_AS_REPLAY) is counted the same way. */
    bool unproven;
    /* A failure of the device's own proven evidence (signed by its key, fresh) on appraisal, e.g.
     * debug enabled or an image its tenant never uploaded: its unrevoked certificates are revoked
     * and its tenant's CRL number moved, in the verdict's transaction (docs/protocol.md). */
    bool revokes;
    const char *source; /* the client's address, for an unproven failure */
} rp_attestation_write_t;

/*
 * Record attestations in one transaction - one disk sync for all of them - each checked against
 * what the transaction sees, not what its request saw: one whose nonce was spent already (two
 * requests raced with one nonce, in this batch or before) is recorded as a refusal, and so is a
 * pass for a device blocked since its request read it; neither keeps its certificate. On failure
 * nothing was recorded.
 */
rp_err_t rp_store_attestations_record(rp_store_t *s, rp_attestation_write_t *w,
                                      size_t n) RP_MUST_CHECK;
/* Unproven failures, one row per source address: at most RP_UNPROVEN_SOURCES_MAX, the least
 * recently seen dropped first. */
#define RP_UNPROVEN_SOURCES_MAX 10000
#define RP_ADDRESS_MAX 64
typedef struct rp_unproven_source {
    char address[RP_ADDRESS_MAX];
    int64_t first_at, last_at;
    int64_t count;
    char last_reason[RP_REASON_MAX + 1];
    char last_device_id[RP_DEVICE_ID_SIZE]; /* the device the last one named */
} rp_unproven_source_t;
typedef void (*rp_unproven_fn)(void *ctx, const rp_unproven_source_t *u);
/* The sources seen most recently first, at most limit. */
rp_err_t rp_store_unproven_list(rp_store_t *s, int limit, rp_unproven_fn fn,
                                void *ctx) RP_MUST_CHECK;
/* Seconds a spent nonce is kept after it expired (on the purger's clock and the database's). */
#define RP_NONCE_PURGE_MARGIN 300
/* Forget the spent nonces that expired before `before` (the caller's clock less
 * RP_NONCE_PURGE_MARGIN) and before the database's clock less RP_NONCE_PURGE_MARGIN, whichever is
 * earlier: a replica whose clock runs ahead deletes no nonce still live on the database's clock.
 * Raises the purge watermark to the largest expiry deleted, plus one: from then on, on every
 * replica whatever its clock, a nonce that expired below the watermark is refused as spent (its
 * row may be gone). One transaction. OUT: *watermark, the watermark after the purge. */
rp_err_t rp_store_nonces_purge(rp_store_t *s, int64_t before, int64_t *watermark) RP_MUST_CHECK;
/* The purge watermark, and how far it stands ahead of the database's clock (*ahead > 0: nonces
 * that expire before it are refused though live; only a clock stepped back, or a watermark left
 * by a version before review r9srv's fix, makes it so: docs/operations.md "Clocks"). */
rp_err_t rp_store_nonces_watermark(rp_store_t *s, int64_t *below, int64_t *ahead) RP_MUST_CHECK;
/* Lower the purge watermark to the database's clock plus one second, if it is above (never raises
 * it): `rampart-server nonces reset-watermark`. In the same transaction, when it lowers it, the
 * nonce epoch (migration 30) is raised to the greater of one above it and the database's clock in
 * seconds (so it rises across a restore of an older backup too, and fits a nonce's 4 bytes until
 * 2106): every nonce issued before is refused from then on, by every replica (the epoch is read
 * in the transaction that spends a nonce), so no nonce whose spent row was purged can pass again
 * (review r10 M1); nonces issued after are judged by the new watermark. An epoch that does not fit
 * a nonce (RP_NONCE_EPOCH_MAX; a restore or a hand edit) is set to the database's clock even when
 * the watermark is not ahead (logged); one at RP_NONCE_EPOCH_MAX, which cannot rise, is set to it
 * when the watermark is ahead (logged: review r12 L2). RP_ERR_UNSUPPORTED (nothing changed,
 * logged) only when the database's clock is past 2106. OUT: *was, the watermark before; *below,
 * after; *epoch_was, the nonce epoch before; *epoch, after. */
rp_err_t rp_store_nonces_watermark_reset(rp_store_t *s, int64_t *was, int64_t *below,
                                         int64_t *epoch_was, int64_t *epoch) RP_MUST_CHECK;
/* The same after a restore (`rampart-server restored`): the nonce epoch raised even when the
 * watermark is not ahead, since the restored one is the backup's, and the nonces issued since
 * (whose spent rows the backup does not hold) must die. */
rp_err_t rp_store_nonces_restored(rp_store_t *s, int64_t *was, int64_t *below, int64_t *epoch_was,
                                  int64_t *epoch) RP_MUST_CHECK;
/* The database's nonce epoch, as stored (nonce.h; it may be out of a nonce's range only after a
 * restore or a hand edit: the caller checks). Read at each nonce issued (attest.c), so that a
 * reset takes effect on every replica at once. */
rp_err_t rp_store_nonces_epoch(rp_store_t *s, int64_t *epoch) RP_MUST_CHECK;
/* The master key's check value (RP_MASTER_CHECK_LEN bytes, derived from the key: ca.c), as the
 * database holds it; *found false when it holds none (a new database, or one made before schema
 * 34). */
#define RP_MASTER_CHECK_LEN 32
rp_err_t rp_store_master_check_get(rp_store_t *s, uint8_t value[RP_MASTER_CHECK_LEN],
                                   bool *found) RP_MUST_CHECK;
/* Stores value unless the database holds one already, in one transaction: of two starts that
 * put theirs at once, the first wins. OUT: stored, the value the database holds after it (value,
 * or the one that was there: the caller compares). */
rp_err_t rp_store_master_check_put(rp_store_t *s, const uint8_t value[RP_MASTER_CHECK_LEN],
                                   uint8_t stored[RP_MASTER_CHECK_LEN]) RP_MUST_CHECK;
/* The database's generation (migration 33; server/restore.h): a number that only rises, raised
 * by rp_store_generation_raise to the greater of one above it and at_least (one transaction), at
 * each start, backup, restore and revocation; a data directory keeps the last it saw, and refuses a
 * database below it (a backup put back by hand). OUT: *n, the generation (after the raise). */
rp_err_t rp_store_generation(rp_store_t *s, int64_t *n) RP_MUST_CHECK;
rp_err_t rp_store_generation_raise(rp_store_t *s, int64_t at_least, int64_t *n) RP_MUST_CHECK;
/* The database's clock (seconds since the epoch): the one the replicas share. */
rp_err_t rp_store_clock(rp_store_t *s, int64_t *now) RP_MUST_CHECK;
typedef void (*rp_attestation_fn)(void *ctx, const rp_attestation_t *a);
rp_err_t rp_store_attestation_list(rp_store_t *s, const char *tenant_id, const char *device_id,
                                   int limit, rp_attestation_fn fn, void *ctx) RP_MUST_CHECK;

rp_err_t rp_store_cert_get(rp_store_t *s, const char *serial, rp_cert_record_t *out) RP_MUST_CHECK;
typedef void (*rp_cert_fn)(void *ctx, const rp_cert_record_t *c);
rp_err_t rp_store_revoked_list(rp_store_t *s, const char *tenant_id, rp_cert_fn fn,
                               void *ctx) RP_MUST_CHECK;

/* A tenant's CA of ca->generation. RP_ERR_EXISTS if the tenant has that generation already
 * (another replica made it first: the database decides which one is the tenant's). */
rp_err_t rp_store_ca_put(rp_store_t *s, const rp_ca_record_t *ca) RP_MUST_CHECK;
/* The tenant's first CA (generation 0). */
rp_err_t rp_store_ca_get(rp_store_t *s, const char *tenant_id, rp_ca_record_t *out) RP_MUST_CHECK;
/* The tenant's newest CAs, newest (highest generation) first, at most max: OUT out[0..*n), each
 * freed with rp_ca_record_free(). *n is 0 for a tenant with no CA yet. */
rp_err_t rp_store_ca_list(rp_store_t *s, const char *tenant_id, rp_ca_record_t *out, int max,
                          int *n) RP_MUST_CHECK;
/* Over the tenants that have a CA, the soonest end of a tenant's newest CA (when that tenant
 * would have none left): OUT *soonest; RP_ERR_NOT_FOUND when no tenant has a CA. */
rp_err_t rp_store_ca_soonest_end(rp_store_t *s, int64_t *soonest) RP_MUST_CHECK;
/* Up to max tenants whose newest CA ends by `by` (the soonest first): OUT ids[0..*n). */
rp_err_t rp_store_ca_ending(rp_store_t *s, int64_t by, char (*ids)[RP_ID_SIZE], int max,
                            int *n) RP_MUST_CHECK;

/* ---- Updates: image signing keys, images, products, device groups, deployments ---- */

#define RP_IMAGE_ID_SIZE 65      /* an image's ID: the SHA-256 of its file, in hex, with a NUL */
#define RP_VERSION_MAX 48        /* "major.minor.revision+build" */
#define RP_DEPLOY_IMAGES_MAX 16  /* images in one deployment (one a component) */
#define RP_UPDATE_DETAIL_MAX 256 /* what a device says of its update */

/* A public key the tenant signs images with (the private half stays with the operator). */
typedef struct rp_image_key_record {
    char id[RP_ID_SIZE];
    char tenant_id[RP_ID_SIZE];
    char name[RP_NAME_MAX + 1];
    char alg[16]; /* "ecdsa-p256" or "ed25519" */
    uint8_t spki[RP_PUBKEY_DER_MAX];
    size_t spki_len;
    char keyhash[2 * RP_SHA256_LEN + 1]; /* SHA-256 of the SPKI, as in MCUboot's KEYHASH TLV */
    int64_t created;
} rp_image_key_record_t;

/* An upload in progress: its bytes are in the blob uploads/<id> until it becomes an image; then
 * the row stays, naming the image, until the sweep drops it (a day after its last write). */
typedef struct rp_upload {
    char id[RP_ID_SIZE];
    char tenant_id[RP_ID_SIZE];
    uint64_t size;  /* announced */
    int64_t active; /* made, or last written to (Unix seconds): the sweep's clock. The column is
                     * uploads.created (schema 3): no migration renames it */
    char image_id[2 * 32 + 1]; /* the image it became ("": none yet) */
} rp_upload_t;

/* An uploaded image, verified against one of the tenant's image keys. Immutable. */
typedef struct rp_image_record {
    char id[RP_IMAGE_ID_SIZE]; /* SHA-256 of the whole file: the content's address */
    char tenant_id[RP_ID_SIZE];
    char component[RP_NAME_MAX + 1];
    char version[RP_VERSION_MAX];
    bool has_security_counter;
    uint32_t security_counter;
    char type[16]; /* firmware, app, system, or "": no type TLV (JSON null) */
    uint64_t size;
    char image_hash[2 * RP_SHA256_LEN + 1]; /* MCUboot's digest: what a device measures */
    char key_id[RP_ID_SIZE];                /* the image key that signed it */
    int64_t uploaded;
} rp_image_record_t;

typedef struct rp_product {
    char id[RP_ID_SIZE];
    char tenant_id[RP_ID_SIZE];
    char name[RP_NAME_MAX + 1];
    int64_t created;
} rp_product_t;

typedef struct rp_group {
    char id[RP_ID_SIZE];
    char tenant_id[RP_ID_SIZE];
    char product_id[RP_ID_SIZE];
    char name[RP_NAME_MAX + 1];
    bool allow_unknown_images; /* attestation lets its devices run images never uploaded */
    int64_t created;
    bool crash_capture; /* its devices capture and send crashes (the operator's switch; on) */
} rp_group_t;

/* A deployment's status: active ones are offered to the devices they select; paused and stopped
 * ones only to the devices they reached already (fetched targets naming them). Resume makes a
 * paused one active again; stopped is final. */
typedef enum rp_deploy_status {
    RP_DEPLOY_ACTIVE,
    RP_DEPLOY_PAUSED,
    RP_DEPLOY_STOPPED,
} rp_deploy_status_t;
const char *rp_deploy_status_name(rp_deploy_status_t st);

/* A set of images (one per component) for a group's devices; the newest deployment of a group is
 * what its devices should run. rollout: the percentage of the group's devices it reaches, a
 * stable choice (rp_deployment_selects). */
typedef struct rp_deployment {
    char id[RP_ID_SIZE];
    char tenant_id[RP_ID_SIZE];
    char group_id[RP_ID_SIZE];
    int rollout;
    int64_t created;
    int64_t seq; /* grows with each deployment: the version of the metadata that names it */
    rp_deploy_status_t status;
    size_t nimages;
    char image_ids[RP_DEPLOY_IMAGES_MAX][RP_IMAGE_ID_SIZE];
} rp_deployment_t;

/* A device's update state for one deployment, as it reported it. */
typedef struct rp_device_update {
    char device_id[RP_DEVICE_ID_SIZE];
    char deployment_id[RP_ID_SIZE];
    char state[24]; /* rp_update_state_name() of a reported state (rampart/update_state.h) */
    char detail[RP_UPDATE_DETAIL_MAX + 1];
    int64_t at;
    bool left; /* rp_store_deployment_devices: no longer targeted by the deployment */
} rp_device_update_t;

/* RP_ERR_EXISTS when the tenant has a key with that name or that key already. */
rp_err_t rp_store_image_key_add(rp_store_t *s, rp_image_key_record_t *key) RP_MUST_CHECK;
typedef void (*rp_image_key_fn)(void *ctx, const rp_image_key_record_t *k);
/* page (NULL: every key, oldest first): by ID, filtered on the name. */
rp_err_t rp_store_image_key_list(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                                 rp_image_key_fn fn, void *ctx) RP_MUST_CHECK;

/*
 * A new upload of size bytes, within the tenant's limits (counted in the write transaction, so
 * that replicas creating at once cannot pass them): RP_ERR_DENIED when the tenant has max_open
 * uploads open, RP_ERR_TOO_LARGE when their announced sizes and this one would pass max_bytes.
 */
rp_err_t rp_store_upload_create(rp_store_t *s, const char *tenant_id, uint64_t size,
                                unsigned max_open, uint64_t max_bytes,
                                rp_upload_t *out) RP_MUST_CHECK;
rp_err_t rp_store_upload_get(rp_store_t *s, const char *tenant_id, const char *id,
                             rp_upload_t *out) RP_MUST_CHECK;
rp_err_t rp_store_upload_delete(rp_store_t *s, const char *id) RP_MUST_CHECK;
/* A chunk is about to be written: the upload is active at now (the sweep leaves it another
 * day). RP_ERR_NOT_FOUND when it is gone (swept meanwhile: nothing may be written to it). */
rp_err_t rp_store_upload_touch(rp_store_t *s, const char *tenant_id, const char *id,
                               int64_t now) RP_MUST_CHECK;
/* Forget the upload if it is still inactive since before: RP_OK (its bytes are then the caller's
 * to remove), RP_ERR_NOT_FOUND when it is gone or was written to since (another replica's sweep,
 * or a chunk: it stays). */
rp_err_t rp_store_upload_drop_stale(rp_store_t *s, const char *id, int64_t before) RP_MUST_CHECK;
/* The upload became image_id (its bytes are that image's): kept on its row. RP_ERR_NOT_FOUND. */
rp_err_t rp_store_upload_became(rp_store_t *s, const char *id, const char *image_id) RP_MUST_CHECK;
/* Uploads inactive since before `before`, oldest first, at most max of them. */
typedef void (*rp_upload_fn)(void *ctx, const rp_upload_t *u);
rp_err_t rp_store_upload_stale(rp_store_t *s, int64_t before, int max, rp_upload_fn fn,
                               void *ctx) RP_MUST_CHECK;

/*
 * The deltas made between images (its bytes: the blob deltas/FROM-TO.zst, store/blob.h), so that
 * one is made once, by one maker, whichever replica is asked. A lease's times are the database's
 * clock's (the replicas' may disagree). get: RP_ERR_NOT_FOUND until it is made (OUT: its SHA-256
 * in hex and size). claim: the caller makes it, for lease_seconds (RP_OK; OUT: holder, the
 * claim's random token); RP_ERR_EXISTS when it is made or another maker's lease runs (an expired
 * lease is taken over, and its holder holds it no longer). renew, made and release act only for
 * the holder of a lease that runs or lapsed untaken, the delta not made; else RP_ERR_NOT_FOUND
 * (made, gone, or taken over: the maker gives up, and commits nothing). renew: lease_seconds
 * more. made: its SHA-256 and size, the lease ended. release: a maker that failed gives it up.
 * forget: the row of a delta made whose blob is gone (the sha256 read), to be made again.
 */
#define RP_DELTA_HOLDER_SIZE 28
rp_err_t rp_store_delta_get(rp_store_t *s, const char *from, const char *to, char sha256[65],
                            uint64_t *size) RP_MUST_CHECK;
rp_err_t rp_store_delta_claim(rp_store_t *s, const char *from, const char *to, int lease_seconds,
                              char holder[RP_DELTA_HOLDER_SIZE]) RP_MUST_CHECK;
rp_err_t rp_store_delta_renew(rp_store_t *s, const char *from, const char *to, int lease_seconds,
                              const char *holder) RP_MUST_CHECK;
rp_err_t rp_store_delta_made(rp_store_t *s, const char *from, const char *to, const char *holder,
                             const char *sha256, uint64_t size) RP_MUST_CHECK;
rp_err_t rp_store_delta_release(rp_store_t *s, const char *from, const char *to,
                                const char *holder) RP_MUST_CHECK;
rp_err_t rp_store_delta_forget(rp_store_t *s, const char *from, const char *to,
                               const char *sha256) RP_MUST_CHECK;

/* RP_ERR_EXISTS when the tenant has that image already (same bytes, same ID). */
rp_err_t rp_store_image_add(rp_store_t *s, const rp_image_record_t *img) RP_MUST_CHECK;
rp_err_t rp_store_image_get(rp_store_t *s, const char *tenant_id, const char *id,
                            rp_image_record_t *out) RP_MUST_CHECK;
/* The tenant's image with this MCUboot digest (RP_ERR_NOT_FOUND if none). */
rp_err_t rp_store_image_by_hash(rp_store_t *s, const char *tenant_id, const char *image_hash,
                                rp_image_record_t *out) RP_MUST_CHECK;
typedef void (*rp_image_fn)(void *ctx, const rp_image_record_t *img);
/* page (NULL: every image, by component): by ID, filtered on the component. */
rp_err_t rp_store_image_list(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                             rp_image_fn fn, void *ctx) RP_MUST_CHECK;

/* A product and its default groups (Development, which allows unknown images, Field Test and
 * Production), in one transaction. RP_ERR_EXISTS when the tenant has a product of that name. */
rp_err_t rp_store_product_create(rp_store_t *s, const char *tenant_id, const char *name,
                                 rp_product_t *out) RP_MUST_CHECK;
/* By ID, or else by name, within the tenant. */
rp_err_t rp_store_product_find(rp_store_t *s, const char *tenant_id, const char *id_or_name,
                               rp_product_t *out) RP_MUST_CHECK;
typedef void (*rp_product_fn)(void *ctx, const rp_product_t *p);
/* page (NULL: every product, by name): by ID, filtered on the name. */
rp_err_t rp_store_product_list(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                               rp_product_fn fn, void *ctx) RP_MUST_CHECK;

rp_err_t rp_store_group_create(rp_store_t *s, const rp_product_t *product, const char *name,
                               bool allow_unknown_images, rp_group_t *out) RP_MUST_CHECK;
/* Turn the group's crash capture on or off (g->crash_capture is set too). */
rp_err_t rp_store_group_set_crash_capture(rp_store_t *s, rp_group_t *g, bool on) RP_MUST_CHECK;
/* Whether a device's crashes are captured: its group's switch; on for a device in no group. */
rp_err_t rp_store_device_crash_capture(rp_store_t *s, const char *device_id,
                                       bool *on) RP_MUST_CHECK;
/* By ID, or else by name, within the product. */
rp_err_t rp_store_group_find(rp_store_t *s, const rp_product_t *product, const char *id_or_name,
                             rp_group_t *out) RP_MUST_CHECK;
/* By ID within the tenant. */
rp_err_t rp_store_group_get(rp_store_t *s, const char *tenant_id, const char *id,
                            rp_group_t *out) RP_MUST_CHECK;
typedef void (*rp_group_fn)(void *ctx, const rp_group_t *g, int64_t ndevices);
/* page (NULL: every group, oldest first): by ID, filtered on the name. */
rp_err_t rp_store_group_list(rp_store_t *s, const rp_product_t *product, const rp_page_t *page,
                             rp_group_fn fn, void *ctx) RP_MUST_CHECK;
/* Put a device of the group's tenant in the group (out of any other): RP_ERR_NOT_FOUND when the
 * tenant does not hold the device. */
rp_err_t rp_store_device_assign(rp_store_t *s, const rp_group_t *group, const char *device_id,
                                int64_t now) RP_MUST_CHECK;
/* The group a device is in: RP_ERR_NOT_FOUND when it is in none. */
rp_err_t rp_store_device_group(rp_store_t *s, const char *device_id, rp_group_t *out) RP_MUST_CHECK;
typedef void (*rp_member_fn)(void *ctx, const char *device_id);
/* In device ID order; page (NULL: all): filtered on the device ID, an index range. */
rp_err_t rp_store_group_members(rp_store_t *s, const char *group_id, const rp_page_t *page,
                                rp_member_fn fn, void *ctx) RP_MUST_CHECK;

/* d->id and d->created are set here; every image must be the tenant's (else RP_ERR_NOT_FOUND). */
rp_err_t rp_store_deployment_create(rp_store_t *s, rp_deployment_t *d) RP_MUST_CHECK;
rp_err_t rp_store_deployment_get(rp_store_t *s, const char *tenant_id, const char *id,
                                 rp_deployment_t *out) RP_MUST_CHECK;
/* The group's newest deployment: RP_ERR_NOT_FOUND when it has none. */
rp_err_t rp_store_deployment_current(rp_store_t *s, const char *group_id,
                                     rp_deployment_t *out) RP_MUST_CHECK;
typedef void (*rp_deployment_fn)(void *ctx, const rp_deployment_t *d);
/* page (NULL: every deployment, oldest first): by ID, filtered on the ID. */
rp_err_t rp_store_deployment_list(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                                  rp_deployment_fn fn, void *ctx) RP_MUST_CHECK;

/* The newest deployment of the group that selects the device (rp_deployment_selects) and is
 * active or reached it already: RP_ERR_NOT_FOUND when none does. So a paused deployment leaves
 * the devices it has not reached on the one before, and a device's targets version never goes
 * back (what it was served stays offered to it). */
rp_err_t rp_store_deployment_for_device(rp_store_t *s, const char *group_id, const char *device_id,
                                        rp_deployment_t *out) RP_MUST_CHECK;
/* That the device was served targets naming the deployment (kept once). */
rp_err_t rp_store_deployment_reached(rp_store_t *s, const char *deployment_id,
                                     const char *device_id, int64_t at) RP_MUST_CHECK;
/* The version of the targets the device is served now, naming deployment_id ("" for none) whose
 * seq is seq (0 for none), for a device that says it holds version held (0: none, or not said):
 * the one served before while the deployment is the same and it is not below held; otherwise the
 * largest of seq, one more than before (the first time: seq) and one more than held. Kept per
 * device, so that moving it to a group whose deployment is older (seq is global) never lowers
 * it, and a restored database (its rows gone back) never serves a device less than it holds: the
 * device would refuse that as a rollback and be stuck (the one owner of that rule). OUT:
 * *version. */
rp_err_t rp_store_device_targets_version(rp_store_t *s, const char *device_id,
                                         const char *deployment_id, int64_t seq, int64_t held,
                                         int64_t *version) RP_MUST_CHECK;
typedef void (*rp_reached_fn)(void *ctx, const char *device_id);
rp_err_t rp_store_deployment_reached_list(rp_store_t *s, const char *deployment_id,
                                          rp_reached_fn fn, void *ctx) RP_MUST_CHECK;
/* A deployment's devices in device ID order (page: see rp_page_t, filtered on the device ID;
 * NULL: all): the devices of its group it selects, and those that left it (u->left: moved out of
 * the group since it reached them or they reported it), each with its report; u->state is
 * "pending" (and at 0) for one that has none. */
typedef void (*rp_device_update_fn)(void *ctx, const rp_device_update_t *u);
rp_err_t rp_store_deployment_devices(rp_store_t *s, const rp_deployment_t *d, const rp_page_t *page,
                                     rp_device_update_fn fn, void *ctx) RP_MUST_CHECK;
/* A deployment's progress over the devices it targets now (the members of its group its rollout
 * selects), read from its counters: fn gets each reported state's count among them; those without
 * a report are `unreported`. Devices it reached or that reported it and are no longer targeted
 * (moved to another group) count in `left` only; so reached <= selected, and so is any state. */
typedef struct rp_deploy_progress {
    int64_t in_group;   /* devices in its group now */
    int64_t selected;   /* of those, the ones its rollout selects (targeted) */
    int64_t unreported; /* selected devices without a report (pending) */
    int64_t reached; /* selected devices served targets naming it, or that reported past pending */
    int64_t left;    /* devices no longer targeted that it reached or that reported it */
} rp_deploy_progress_t;
typedef void (*rp_state_count_fn)(void *ctx, const char *state, int64_t n);
rp_err_t rp_store_deployment_progress(rp_store_t *s, const rp_deployment_t *d,
                                      rp_deploy_progress_t *out, rp_state_count_fn fn,
                                      void *ctx) RP_MUST_CHECK;
/* Pause (from active), resume (to active, from paused) or stop (final): *out is the deployment
 * after. RP_ERR_NOT_FOUND: no such deployment in the tenant; RP_ERR_DENIED: it is stopped (only
 * stopping again is allowed). */
rp_err_t rp_store_deployment_set_status(rp_store_t *s, const char *tenant_id, const char *id,
                                        rp_deploy_status_t to, rp_deployment_t *out) RP_MUST_CHECK;

/* The service's online keys for a tenant's update metadata, numbered from 1: PKCS#8 PEM
 * encrypted under the master key. put: RP_ERR_EXISTS when that number exists (another worker
 * made it first). get: seq 0 is the newest; OUT: *seq_out, *key_pem (malloc'd);
 * RP_ERR_NOT_FOUND when there is none. list: newest first, without the keys. */
rp_err_t rp_store_update_key_put(rp_store_t *s, const char *tenant_id, int64_t seq,
                                 const char *key_pem, const uint8_t *spki,
                                 size_t spki_len) RP_MUST_CHECK;
rp_err_t rp_store_update_key_get(rp_store_t *s, const char *tenant_id, int64_t seq,
                                 int64_t *seq_out, char **key_pem, uint8_t spki[RP_PUBKEY_DER_MAX],
                                 size_t *spki_len) RP_MUST_CHECK;
typedef void (*rp_update_key_fn)(void *ctx, int64_t seq, const uint8_t *spki, size_t spki_len);
rp_err_t rp_store_update_keys(rp_store_t *s, const char *tenant_id, rp_update_key_fn fn,
                              void *ctx) RP_MUST_CHECK;

/* Root metadata, as the operator signed it. add: RP_ERR_EXISTS when that version exists. latest:
 * RP_ERR_NOT_FOUND when the tenant has none; *envelope malloc'd (may be NULL: not wanted). */
rp_err_t rp_store_root_add(rp_store_t *s, const char *tenant_id, int64_t version,
                           const char *envelope, int64_t expires) RP_MUST_CHECK;
rp_err_t rp_store_root_latest(rp_store_t *s, const char *tenant_id, int64_t *version,
                              char **envelope) RP_MUST_CHECK;
typedef void (*rp_root_fn)(void *ctx, int64_t version, const char *envelope, int64_t expires);
rp_err_t rp_store_roots_after(rp_store_t *s, const char *tenant_id, int64_t after, rp_root_fn fn,
                              void *ctx) RP_MUST_CHECK;

/* Whether a deployment reaches a device: SHA-256(deployment ID, device ID) below its rollout
 * percentage, so the choice is stable and a larger percentage reaches a superset. */
bool rp_deployment_selects(const rp_deployment_t *d, const char *device_id);

/* What a device reports its root of trust accepts: the largest security counter (a TPM's is
 * RP_ROT_TPM2_SECCNT_MAX). Written only when it changed. */
rp_err_t rp_store_device_counter_max_set(rp_store_t *s, const char *device_id, uint32_t max,
                                         int64_t now) RP_MUST_CHECK;
/* The group's devices that reported a largest security counter below counter (devices that never
 * reported one are not listed), in ID order. */
typedef void (*rp_counter_max_fn)(void *ctx, const char *device_id, uint32_t max);
rp_err_t rp_store_group_counter_max_below(rp_store_t *s, const char *group_id, uint32_t counter,
                                          rp_counter_max_fn fn, void *ctx) RP_MUST_CHECK;

/* The device's report about a deployment, kept only while the deployment targets it (a member
 * of its group that its rollout selects), judged in the transaction that records it: otherwise
 * RP_ERR_NOT_FOUND and nothing written. */
rp_err_t rp_store_device_update_set(rp_store_t *s, const rp_device_update_t *u) RP_MUST_CHECK;
rp_err_t rp_store_device_updates(rp_store_t *s, const char *deployment_id, rp_device_update_fn fn,
                                 void *ctx) RP_MUST_CHECK;

/* ---- Certificates re-issued without an attestation (EST simplereenroll) ---- */

typedef enum rp_reissue {
    RP_REISSUE_DONE = 0,
    RP_REISSUE_NOT_CURRENT,          /* the renewed certificate is not a current one of the device
                                      * and tenant (revoked, or another's) */
    RP_REISSUE_BLOCKED,              /* the device is blocked, or no longer the tenant's */
    RP_REISSUE_ATTESTATION_REQUIRED, /* its last attestation failed, or is too old */
    RP_REISSUE_LIMITED,              /* the device's re-enrollments of the last hour are many */
} rp_reissue_t;

#define RP_REISSUE_WINDOW 3600 /* seconds: the window a device's re-enrollments are counted in */

/*
 * Record a certificate issued to renew another (old_serial) - only if, in the transaction that
 * records it, the device is still held by the certificate's tenant and not blocked, the renewed
 * certificate is that device's and not revoked, the device's last attestation passed at or
 * after attested_since, and (per_hour > 0, --reenroll-per-hour) fewer than per_hour certificates
 * recorded by this for the device started in the RP_REISSUE_WINDOW before cert's not_before.
 * So a block that commits while a renewal is being made either comes first (nothing is recorded)
 * or revokes the new certificate too, and the limit holds across every replica sharing the
 * database: the count and the insert are under the write lock, so two renewals racing for the
 * last slot (on two replicas) take turns, and the second is RP_REISSUE_LIMITED. OUT: *outcome;
 * *retry_after, when RP_REISSUE_LIMITED, the seconds (1 to RP_REISSUE_WINDOW) until the oldest
 * of them leaves the window. RP_OK with any other outcome than RP_REISSUE_DONE has recorded
 * nothing. Every certificate the service records goes through this or
 * rp_store_attestations_record(), which check the same way (the latter's are not counted here).
 */
rp_err_t rp_store_cert_reissue(rp_store_t *s, const rp_cert_record_t *cert, const char *old_serial,
                               int64_t attested_since, long per_hour, rp_reissue_t *outcome,
                               int64_t *retry_after) RP_MUST_CHECK;

/* ---- Tokens: expiry, revocation, the system token's rotation ---- */

#define RP_TOKEN_USE_EVERY 60 /* seconds: how stale a token's last_used may get */

/* A token of the tenant (NULL: a system token) with a role, stored by the SHA-256 of its secret,
 * with an expiry (0: never); made_by: the token whose login link makes it (NULL: none), which
 * must exist (else RP_ERR_EXISTS, the foreign key's). */
rp_err_t rp_store_token_add(rp_store_t *s, const char *tenant_id, rp_role_t role,
                            const uint8_t hash[RP_SHA256_LEN], int64_t expires, const char *made_by,
                            rp_token_t *out) RP_MUST_CHECK;
/* Forget a token: tenant_id NULL for a system token. RP_ERR_NOT_FOUND when there is no such
 * token there. The tokens its login links made go with it in the same statement, and theirs,
 * whatever their tenant (made_by; so do those of the system tokens a rotation revokes). */
rp_err_t rp_store_token_revoke(rp_store_t *s, const char *tenant_id, const char *id) RP_MUST_CHECK;
/* Note a token's use at `now`. */
rp_err_t rp_store_token_used(rp_store_t *s, const char *id, int64_t now) RP_MUST_CHECK;
/* Make the first system token, in a transaction that finds none (a start racing with another
 * on the same database makes none). OUT: *out, *made. */
rp_err_t rp_store_system_token_first(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN],
                                     rp_token_t *out, bool *made) RP_MUST_CHECK;
/* Make a new system token and revoke every other, in one transaction. OUT: *out, *revoked (how
 * many were). */
rp_err_t rp_store_system_token_rotate(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN],
                                      rp_token_t *out, int *revoked) RP_MUST_CHECK;

/* ---- Appraisal policy, per tenant ---- */

/* What a tenant's devices' evidence must show, beyond being consistent and running the tenant's
 * images (always required). A tenant that never set one has RP_POLICY_DEFAULT: strict. */
typedef struct rp_policy {
    bool require_components; /* at least one measured component */
    bool require_register;   /* the measurement register, which binds the list to what the root
                              * of trust measured */
    bool allow_debug;        /* debug status "enabled" may pass */
    bool allow_development;  /* a device in development mode (a development capability) may pass */
    int64_t updated;         /* when it was last set; 0: never (the default) */
} rp_policy_t;

#define RP_POLICY_DEFAULT ((rp_policy_t){true, true, false, false, 0})

/* The tenant's policy (RP_POLICY_DEFAULT when it never set one). */
rp_err_t rp_store_policy_get(rp_store_t *s, const char *tenant_id, rp_policy_t *out) RP_MUST_CHECK;
/* Set it; p->updated is set to now. */
rp_err_t rp_store_policy_set(rp_store_t *s, const char *tenant_id, rp_policy_t *p) RP_MUST_CHECK;
/* Readiness (GET /readyz): a write transaction that changes a page and commits, synced, so that a
 * database that cannot be written now (read-only, full, broken) is seen now. RP_OK: it can;
 * RP_ERR_DENIED: PostgreSQL says its transactions are read-only. */
rp_err_t rp_store_write_check(rp_store_t *s) RP_MUST_CHECK;

/* ---- what devices report of what runs (status.c, store_status.c) ----
 * The device's status report (POST /api/v1/device/status): its newest app list, replaced whole
 * by each report that carries one, and its security events, kept once each by (device, the
 * event's number in the device's log), the newest RP_DEVICE_EVENTS_KEEP per device; the rest are
 * dropped and counted. Failure reporting (issue 11) adds its reports beside these tables. */
#define RP_DEVICE_EVENTS_KEEP 1000
#define RP_DEVICE_APPS_MAX 64
#define RP_DEVICE_EVENT_KIND_MAX 32
#define RP_DEVICE_EVENT_REASON_MAX 255
#define RP_DEVICE_APP_VERSION_MAX 47
#define RP_DEVICE_APP_STATE_MAX 16

typedef struct rp_device_app {
    char component[33];
    char version[RP_DEVICE_APP_VERSION_MAX + 1];
    char state[RP_DEVICE_APP_STATE_MAX + 1];
    int64_t restarts;
} rp_device_app_t;

typedef struct rp_device_event {
    int64_t seq; /* its number in the device's log */
    int64_t at;  /* when the device recorded it (its clock) */
    char kind[RP_DEVICE_EVENT_KIND_MAX + 1];
    char app[33]; /* "" when about no app */
    char reason[RP_DEVICE_EVENT_REASON_MAX + 1];
    int64_t received; /* when the service first took it */
} rp_device_event_t;

/* What the service knows of a device's reports. */
typedef struct rp_device_report {
    int64_t reported_at;     /* the last report */
    int64_t apps_at;         /* the last report carrying the apps (0: none yet) */
    int64_t events_kept;     /* events kept now */
    int64_t dropped_device;  /* events the device's log dropped before they were reported */
    int64_t dropped_service; /* events the service dropped (past RP_DEVICE_EVENTS_KEEP) */
    int64_t next_seq;        /* one past the newest event number received */
} rp_device_report_t;

/*
 * Record one status report of device_id at now: apps (napps of them, at most RP_DEVICE_APPS_MAX,
 * else RP_ERR_INVALID_ARG; apps NULL: the report had no app list, the kept one stays), events (each
 * kept once: one already kept, or older than the newest RP_DEVICE_EVENTS_KEEP, is not taken again),
 * and the device's dropped count. One transaction. OUT: *fresh, the events new to the service, and
 * each event's received: now when it was new, 0 when it was not (threat detection counts the new
 * ones only).
 */
rp_err_t rp_store_device_status_put(rp_store_t *s, const char *device_id, int64_t now,
                                    const rp_device_app_t *apps, size_t napps,
                                    rp_device_event_t *events, size_t nevents,
                                    int64_t dropped_device, size_t *fresh) RP_MUST_CHECK;
/* RP_ERR_NOT_FOUND when the device never reported. */
rp_err_t rp_store_device_status_get(rp_store_t *s, const char *device_id,
                                    rp_device_report_t *out) RP_MUST_CHECK;
typedef void (*rp_device_app_fn)(void *ctx, const rp_device_app_t *a);
rp_err_t rp_store_device_apps(rp_store_t *s, const char *device_id, rp_device_app_fn fn,
                              void *ctx) RP_MUST_CHECK;
/* The device's events numbered below `before` (INT64_MAX: all), newest first, at most limit. */
typedef void (*rp_device_event_fn)(void *ctx, const rp_device_event_t *e);
rp_err_t rp_store_device_events(rp_store_t *s, const char *device_id, int64_t before, int limit,
                                rp_device_event_fn fn, void *ctx) RP_MUST_CHECK;

/* ---- failure reports (reports.c, store_reports.c; docs/failure-reporting.md) ----
 * Each device's reports, once each by (device, seq), the newest RP_REPORTS_KEEP per device (the
 * rest pruned and counted); each tenant's crash buckets, with counts per version, per device
 * group and per day (the service's day, UTC), first and last seen, and the first
 * RP_BUCKET_SAMPLES reports as samples; and which debug files a tenant uploaded, by build ID. */
#define RP_REPORTS_KEEP 1000
#define RP_BUCKET_SAMPLES 5

/* One decoded report to store; every pointer borrowed for the call. */
typedef struct rp_report_put {
    int64_t seq, at;
    const char *kind, *component, *version, *code, *reason;
    const char *bucket; /* a crash's bucket ID; NULL for anything else */
    int signal;
    const char *signature; /* a crash: its bucket's signature (JSON), kept with a new bucket */
    const char *json;      /* the report as the device sent it (compact JSON) */
    bool device_failed;    /* sent while the device's last attestation had failed */
} rp_report_put_t;

/*
 * Store a batch of device_id (of tenant_id) at now, in one transaction: each report once (one
 * already stored, or older than the newest RP_REPORTS_KEEP, is a duplicate), crashes counted in
 * their buckets; then the device's oldest past RP_REPORTS_KEEP pruned. OUT: stored[i] (report i
 * new), *nstored, *ndup, *pruned.
 */
rp_err_t rp_store_reports_put(rp_store_t *s, const char *tenant_id, const char *device_id,
                              int64_t now, const rp_report_put_t *r, size_t n, int64_t dropped,
                              bool *stored, size_t *nstored, size_t *ndup,
                              int64_t *pruned) RP_MUST_CHECK;

/*
 * Bucket counting for many batches at once (the recorder's round): after rp_store_buckets_defer,
 * each rp_store_reports_put that succeeds leaves its crashes' bucket counts (the bucket, its counts
 * per version, group and day, its samples) waiting instead of counting them one statement at a
 * time; rp_store_buckets_flush counts them all, each bucket once with its whole count, in the
 * caller's transaction, and ends the deferral. The puts' strings must stay valid until then.
 */
rp_err_t rp_store_buckets_defer(rp_store_t *s) RP_MUST_CHECK;
rp_err_t rp_store_buckets_flush(rp_store_t *s) RP_MUST_CHECK;

typedef struct rp_report_row {
    char device_id[RP_DEVICE_ID_SIZE];
    int64_t seq, at, received;
    char kind[33], component[33], version[48], code[33], reason[256];
    char bucket[33];    /* "" when not a crash */
    const char *json;   /* borrowed for the callback */
    bool device_failed; /* sent while the device's last attestation had failed */
} rp_report_row_t;
typedef void (*rp_report_row_fn)(void *ctx, const rp_report_row_t *row);
/* The tenant's reports, newest received first, skipping offset, at most limit; device_id and
 * kind narrow it (NULL: any). */
rp_err_t rp_store_reports_list(rp_store_t *s, const char *tenant_id, const char *device_id,
                               const char *kind, int64_t offset, int limit, rp_report_row_fn fn,
                               void *ctx) RP_MUST_CHECK;

/*
 * A bucket as shown: the build-level buckets (one per crash key, rp_report_bucket_id) that share
 * a symbolic key (rp_report_symbolic_id: their top frames name the same functions and lines) are
 * shown as one, under that key; a bucket without one is shown under its own ID. count, first and
 * last seen are over its members; signature is its newest member's.
 */
typedef struct rp_bucket {
    char id[33];
    char component[33];
    int signal;
    int64_t count, first_seen, last_seen;
    int64_t device_failed; /* of count, sent while the device's last attestation had failed */
    const char *signature; /* borrowed for the callback (JSON) */
    int members;           /* build-level buckets shown as this one */
    bool symbolic;         /* id is a symbolic key */
} rp_bucket_t;
typedef void (*rp_bucket_fn)(void *ctx, const rp_bucket_t *b);
/* The tenant's buckets as shown, last seen newest first, skipping offset, at most limit. */
rp_err_t rp_store_buckets_list(rp_store_t *s, const char *tenant_id, int64_t offset, int limit,
                               rp_bucket_fn fn, void *ctx) RP_MUST_CHECK;
/* One bucket as shown, by its shown ID or the ID of any of its members: RP_ERR_NOT_FOUND when
 * the tenant has none. */
rp_err_t rp_store_bucket_get(rp_store_t *s, const char *tenant_id, const char *id, rp_bucket_fn fn,
                             void *ctx) RP_MUST_CHECK;
/* The build-level buckets shown under id (a shown ID), last seen newest first (members 1,
 * symbolic false). */
rp_err_t rp_store_bucket_members(rp_store_t *s, const char *tenant_id, const char *id,
                                 rp_bucket_fn fn, void *ctx) RP_MUST_CHECK;
/* A shown bucket's counts, summed over its members: dim is "version", "group" (a group ID, ""
 * for none) or "day". */
typedef void (*rp_bucket_count_fn)(void *ctx, const char *dim, const char *value, int64_t count);
rp_err_t rp_store_bucket_counts(rp_store_t *s, const char *tenant_id, const char *id,
                                rp_bucket_count_fn fn, void *ctx) RP_MUST_CHECK;
/* A shown bucket's samples (each member keeps its first RP_BUCKET_SAMPLES), oldest first, at
 * most RP_BUCKET_SAMPLES_SHOWN; row->bucket is the member's ID, row->device_failed its report's
 * mark (its report's while kept, else read from the device's attestations then). */
#define RP_BUCKET_SAMPLES_SHOWN 20
rp_err_t rp_store_bucket_samples(rp_store_t *s, const char *tenant_id, const char *id,
                                 rp_report_row_fn fn, void *ctx) RP_MUST_CHECK;
/*
 * Build-level buckets whose symbolic key is to be (re)computed, ordered by ID, after after (""
 * from the start), at most limit: id (non-NULL) that one; build_id (non-NULL) those whose top
 * frames name it; unkeyed those never looked at (symbolic NULL). fn gets id, component, signal
 * and signature.
 */
rp_err_t rp_store_buckets_to_key(rp_store_t *s, const char *tenant_id, const char *id,
                                 const char *build_id, bool unkeyed, const char *after, int limit,
                                 rp_bucket_fn fn, void *ctx) RP_MUST_CHECK;
/* Set a build-level bucket's symbolic key ("": its top frames do not all name a line). */
rp_err_t rp_store_bucket_symbolic_set(rp_store_t *s, const char *tenant_id, const char *id,
                                      const char *key) RP_MUST_CHECK;
/* The tenants holding a build-level bucket keyed "" (not every top frame named) whose top
 * frames name build_id: those a debug file of it, fetched for every tenant, may key now. */
rp_err_t rp_store_buckets_tenants_naming(rp_store_t *s, const char *build_id,
                                         void (*fn)(void *ctx, const char *tenant_id),
                                         void *ctx) RP_MUST_CHECK;

/* What the service counts of a device's reports: kept now, pruned past RP_REPORTS_KEEP, and the
 * largest "dropped" the device's queue said it dropped. RP_ERR_NOT_FOUND when the tenant holds no
 * such device or it never sent a batch. */
rp_err_t rp_store_report_device_get(rp_store_t *s, const char *tenant_id, const char *device_id,
                                    int64_t *kept, int64_t *pruned, int64_t *dropped) RP_MUST_CHECK;

/* A debug file the tenant uploaded (kept in the data directory by build ID). */
rp_err_t rp_store_symbols_put(rp_store_t *s, const char *tenant_id, const char *build_id,
                              int64_t size, int64_t now) RP_MUST_CHECK;
/* RP_ERR_NOT_FOUND when the tenant has no debug file of that build ID. */
rp_err_t rp_store_symbols_get(rp_store_t *s, const char *tenant_id, const char *build_id,
                              int64_t *uploaded) RP_MUST_CHECK;
/* ---- threat detection and quarantine (threat.c, store_threat.c) ----
 * Per tenant: counts of signals per subject (an event kind, "kind:K", or a crash bucket,
 * "bucket:B") per time slot (one slot is the tenant's window), kept RP_THREAT_HISTORY; the
 * distinct devices of the current slot; alerts (one open per subject while its spike lasts); the
 * webhook; the quarantine policy, the signals it counts per device, and every automatic action. */
#define RP_THREAT_HISTORY (8 * 86400) /* seconds of counts kept: the longest baseline and a day */
#define RP_THREAT_SUBJECT_MAX 80      /* "kind:" or "bucket:" and the name */
#define RP_THREAT_KINDS_MAX 16        /* kinds a quarantine policy may list */
#define RP_WEBHOOK_URL_MAX 512
#define RP_WEBHOOK_SALT_LEN 16

/* When a subject spikes: its count in the current window is at least factor times its baseline
 * (the mean count per window over the baseline_days before it, never below floor), from at least
 * min_devices distinct devices. */
typedef struct rp_threat_settings {
    int factor;        /* 2..1000 */
    int baseline_days; /* 1..7 */
    int64_t window;    /* seconds, 10..86400 */
    int min_devices;   /* 1..100000 */
    int floor;         /* the baseline a subject never seen has, per window: 1..1000000 */
    int64_t updated;   /* 0: never set (the default) */
} rp_threat_settings_t;

#define RP_THREAT_SETTINGS_DEFAULT ((rp_threat_settings_t){5, 7, 3600, 3, 1, 0})

rp_err_t rp_store_threat_settings_get(rp_store_t *s, const char *tenant_id,
                                      rp_threat_settings_t *out) RP_MUST_CHECK;
rp_err_t rp_store_threat_settings_set(rp_store_t *s, const char *tenant_id,
                                      rp_threat_settings_t *in) RP_MUST_CHECK;

/* One signal to count: its device and subject; OUT what the subject's counts are now. The
 * current slot is the window that holds now (slots start at multiples of the window). */
typedef struct rp_threat_count {
    const char *device_id;
    bool device_failed; /* its last attestation had failed when it sent this (review r10 L4) */
    char subject[RP_THREAT_SUBJECT_MAX + 1];
    int64_t count;               /* OUT: signals in the current slot, this one included */
    int64_t devices;             /* OUT: distinct devices among them */
    int64_t prev_count;          /* OUT: signals in the slot before */
    int64_t prev_devices;        /* OUT: distinct devices among them */
    int64_t failed_devices;      /* OUT: how many of the current slot's devices sent while failed */
    int64_t prev_failed_devices; /* OUT: the same in the slot before */
    int64_t elapsed;             /* OUT: seconds of the current slot gone by */
    int64_t baseline_total;      /* OUT: signals in the baseline_days before the slot before */
} rp_threat_count_t;

/* Count n signals of one tenant at now, in one transaction; each item's OUT fields say its
 * subject's counts after all n (each subject is counted and read once, however many of its
 * signals there are). Counts older than RP_THREAT_HISTORY are dropped on the way. */
rp_err_t rp_store_threat_count(rp_store_t *s, const char *tenant_id,
                               const rp_threat_settings_t *set, int64_t now,
                               rp_threat_count_t *items, size_t n) RP_MUST_CHECK;

typedef struct rp_threat_alert {
    int64_t id;
    char tenant_id[RP_ID_SIZE];
    char subject[RP_THREAT_SUBJECT_MAX + 1];
    int64_t opened_at, last_at;
    int64_t expires_at;     /* open while closed_at is 0 and expires_at is later than now */
    int64_t closed_at;      /* 0: not closed (it may still have expired) */
    int64_t count;          /* signals in the window, at the last one */
    int64_t devices;        /* distinct devices in the window, at the last one */
    int64_t failed_devices; /* how many of them sent while their last attestation had failed */
    double baseline;        /* the mean per window it was compared with (the floor included) */
    int64_t signals;        /* signals counted while it was open */
    char reason[RP_DEVICE_EVENT_REASON_MAX + 1]; /* the last signal's reason, as a sample */
} rp_threat_alert_t;

/* The subject spikes at a->last_at: extend its open alert, or open one (OUT *opened; a->id and
 * a->opened_at are set either way). a->signals is how many signals this adds. */
rp_err_t rp_store_threat_alert_raise(rp_store_t *s, rp_threat_alert_t *a,
                                     bool *opened) RP_MUST_CHECK;
/* Whether the subject has an alert open at now. */
rp_err_t rp_store_threat_alert_is_open(rp_store_t *s, const char *tenant_id, const char *subject,
                                       int64_t now, bool *open) RP_MUST_CHECK;
/* The subject no longer spikes: close its open alert, if any. */
rp_err_t rp_store_threat_alert_close(rp_store_t *s, const char *tenant_id, const char *subject,
                                     int64_t now) RP_MUST_CHECK;
typedef void (*rp_threat_alert_fn)(void *ctx, const rp_threat_alert_t *a);
/* The tenant's alerts (tenant_id NULL: every tenant's open ones at now), newest first, at most
 * limit. */
rp_err_t rp_store_threat_alerts(rp_store_t *s, const char *tenant_id, int64_t now, int limit,
                                rp_threat_alert_fn fn, void *ctx) RP_MUST_CHECK;
/* How many alerts each tenant has had (for /metrics). */
typedef void (*rp_threat_tally_fn)(void *ctx, const char *tenant_id, int64_t alerts);
rp_err_t rp_store_threat_alert_totals(rp_store_t *s, rp_threat_tally_fn fn,
                                      void *ctx) RP_MUST_CHECK;

/* The tenant's webhook: where alerts are POSTed, and the salt its secret is derived with (the
 * secret itself is never stored: threat.c derives it from the master key). get:
 * RP_ERR_NOT_FOUND when none is set. */
typedef struct rp_webhook {
    char url[RP_WEBHOOK_URL_MAX + 1];
    uint8_t salt[RP_WEBHOOK_SALT_LEN];
    int64_t updated;
} rp_webhook_t;
rp_err_t rp_store_webhook_get(rp_store_t *s, const char *tenant_id,
                              rp_webhook_t *out) RP_MUST_CHECK;
rp_err_t rp_store_webhook_set(rp_store_t *s, const char *tenant_id,
                              const rp_webhook_t *in) RP_MUST_CHECK;
rp_err_t rp_store_webhook_delete(rp_store_t *s, const char *tenant_id) RP_MUST_CHECK;

/*
 * The webhook's outbox (threat.c): each delivery durable from the transaction that made it until
 * the receiver answers 2xx. put: queue body (JSON) under delivery id for the tenant's webhook, if
 * it has one (*queued false when not), due at now_ms; past max waiting for the tenant, the oldest
 * are dropped and counted (*dropped: how many now). Times in milliseconds since the epoch.
 */
typedef struct rp_webhook_delivery {
    int64_t n; /* its place in the outbox */
    char id[33];
    char tenant_id[RP_ID_SIZE];
    char *body; /* malloc'd (next), free it */
    int64_t created, next_at;
    int attempts;
} rp_webhook_delivery_t;
rp_err_t rp_store_webhook_outbox_put(rp_store_t *s, const char *tenant_id, const char *id,
                                     const char *body, int64_t now_ms, int max, bool *queued,
                                     int *dropped) RP_MUST_CHECK;
/* The delivery due first (RP_ERR_NOT_FOUND: none waits). */
rp_err_t rp_store_webhook_outbox_next(rp_store_t *s, rp_webhook_delivery_t *out) RP_MUST_CHECK;
/* Take delivery n for a try: its next_at moves from was to until (a lease: another process of the
 * same store leaves it alone meanwhile). *taken false when another took it first. */
rp_err_t rp_store_webhook_outbox_take(rp_store_t *s, int64_t n, int64_t was, int64_t until,
                                      bool *taken) RP_MUST_CHECK;
/* Delivered or given up: gone. */
rp_err_t rp_store_webhook_outbox_remove(rp_store_t *s, int64_t n) RP_MUST_CHECK;
/* A failed try: attempts and the next one's time. */
rp_err_t rp_store_webhook_outbox_retry(rp_store_t *s, int64_t n, int attempts,
                                       int64_t next_at) RP_MUST_CHECK;
/* Every waiting delivery due at now_ms at the latest (a process starting tries them all). */
rp_err_t rp_store_webhook_outbox_due(rp_store_t *s, int64_t now_ms) RP_MUST_CHECK;
/* The tenant's waiting deliveries (the oldest first, at most limit to fn) and drops. */
typedef void (*rp_webhook_delivery_fn)(void *ctx, const rp_webhook_delivery_t *d);
rp_err_t rp_store_webhook_outbox_list(rp_store_t *s, const char *tenant_id, int limit,
                                      rp_webhook_delivery_fn fn, void *ctx, int64_t *pending,
                                      int64_t *dropped) RP_MUST_CHECK;

/* Automatic quarantine, off unless the tenant turns it on: a device with threshold signals of the
 * listed kinds within window seconds is quarantined. */
typedef struct rp_quarantine_policy {
    bool enabled;
    size_t nkinds;
    char kinds[RP_THREAT_KINDS_MAX][RP_DEVICE_EVENT_KIND_MAX + 1];
    int threshold;   /* 1..10000 */
    int64_t window;  /* seconds, 1..30 days */
    int64_t updated; /* 0: never set */
} rp_quarantine_policy_t;

rp_err_t rp_store_quarantine_policy_get(rp_store_t *s, const char *tenant_id,
                                        rp_quarantine_policy_t *out) RP_MUST_CHECK;
rp_err_t rp_store_quarantine_policy_set(rp_store_t *s, const char *tenant_id,
                                        rp_quarantine_policy_t *in) RP_MUST_CHECK;

/* ---- A tenant's settings, changed in one transaction ----
 * What a partial PUT changes (the appraisal policy, the spike rule, the quarantine policy) is read,
 * edited and written back in one transaction, under the write lock, so that of two changes at once
 * the later sees the earlier's and neither is lost (review r15web M5). */
typedef enum rp_settings_kind {
    RP_SETTINGS_POLICY,     /* rp_store_policy_get/set */
    RP_SETTINGS_THREAT,     /* rp_store_threat_settings_get/set */
    RP_SETTINGS_QUARANTINE, /* rp_store_quarantine_policy_get/set */
} rp_settings_kind_t;
typedef union rp_settings {
    rp_policy_t policy;
    rp_threat_settings_t threat;
    rp_quarantine_policy_t quarantine;
} rp_settings_t;
/* Change *v (the stored settings of the kind asked, or their default) as it will: RP_OK to write
 * them, anything else to write nothing (its answer is rp_store_settings_edit's). It runs under the
 * write lock: no network, no other connection. */
typedef rp_err_t (*rp_settings_edit_fn)(void *ctx, rp_settings_t *v);
/* OUT: *out, the settings as written (their `updated` now). */
rp_err_t rp_store_settings_edit(rp_store_t *s, const char *tenant_id, rp_settings_kind_t kind,
                                rp_settings_edit_fn edit, void *ctx,
                                rp_settings_t *out) RP_MUST_CHECK;

/*
 * Count one signal of a listed kind against the device at now (the policy p, already matched),
 * and quarantine the device when it reaches the threshold: in one transaction, mark it (since
 * now, with reason), revoke its certificates (the CRL's count moves) and record the action. OUT:
 * *quarantined, true when this call quarantined it. A device already quarantined, or no longer
 * the tenant's, counts nothing. detail (the signal's reason) goes into the quarantine's reason.
 */
rp_err_t rp_store_quarantine_signal(rp_store_t *s, const char *tenant_id, const char *device_id,
                                    const char *kind, const char *detail,
                                    const rp_quarantine_policy_t *p, int64_t now,
                                    bool *quarantined) RP_MUST_CHECK;
/* The same for n signals of one device (kind[i], detail[i]), in one transaction: counted in turn
 * until one reaches the threshold (the rest count nothing). OUT: *at, the index of the signal
 * that quarantined the device, n when none did. */
rp_err_t rp_store_quarantine_signals(rp_store_t *s, const char *tenant_id, const char *device_id,
                                     const char *const *kind, const char *const *detail, size_t n,
                                     const rp_quarantine_policy_t *p, int64_t now,
                                     size_t *at) RP_MUST_CHECK;
/* How many write transactions the store has committed (tests: what a batch costs). */
unsigned long long rp_store_commits(void);
/* Whether the device is quarantined: OUT *since (0: not) and its reason (may be NULL). */
rp_err_t rp_store_device_quarantine(rp_store_t *s, const char *device_id, int64_t *since,
                                    char reason[RP_QUARANTINE_REASON_MAX + 1]) RP_MUST_CHECK;
/* Release a quarantined device (its counted signals are forgotten) and record who did it:
 * RP_ERR_NOT_FOUND when the tenant does not hold it, RP_ERR_INVALID_ARG when it is not
 * quarantined. */
rp_err_t rp_store_device_release(rp_store_t *s, const char *tenant_id, const char *device_id,
                                 const char *actor, const char *reason, int64_t now) RP_MUST_CHECK;

/* Every quarantine and release, with who (the policy, or a token) and why. */
typedef struct rp_threat_action {
    int64_t id;
    int64_t at;
    char device_id[RP_DEVICE_ID_SIZE];
    char action[16];            /* "quarantine", "release" */
    char actor[RP_ID_SIZE + 8]; /* "policy", or "token:" and the token's ID */
    char reason[RP_QUARANTINE_REASON_MAX + 1];
} rp_threat_action_t;
typedef void (*rp_threat_action_fn)(void *ctx, const rp_threat_action_t *a);
/* The tenant's actions (device_id NULL: every device's), newest first, at most limit. */
rp_err_t rp_store_threat_actions(rp_store_t *s, const char *tenant_id, const char *device_id,
                                 int limit, rp_threat_action_fn fn, void *ctx) RP_MUST_CHECK;

/* ---- The web console (store_console.c) ----
 * Sessions and one-time login links are kept by the SHA-256 of their secret, each tied to a
 * token: a token revoked (its row gone) or expired ends them, whatever their own expiry. */
rp_err_t rp_store_session_add(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN],
                              const char *token_id, int64_t now, int64_t expires) RP_MUST_CHECK;
/* The session's token and expiry, if the session is not past its expiry at now and its token
 * still exists; RP_ERR_NOT_FOUND otherwise. The token's own expiry is the caller's to check. */
rp_err_t rp_store_session_lookup(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN], int64_t now,
                                 rp_token_t *tok, int64_t *expires) RP_MUST_CHECK;
rp_err_t rp_store_session_delete(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN]) RP_MUST_CHECK;
/* Forget sessions and links past their expiry at now. */
rp_err_t rp_store_console_purge(rp_store_t *s, int64_t now) RP_MUST_CHECK;
rp_err_t rp_store_link_add(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN], const char *token_id,
                           int64_t expires) RP_MUST_CHECK;
/* Use a login link: it is forgotten in the same transaction that reads it, so it serves once.
 * OUT: *tok, its token. RP_ERR_NOT_FOUND when there is no such link, it expired, or its token
 * is gone. */
rp_err_t rp_store_link_take(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN], int64_t now,
                            rp_token_t *tok) RP_MUST_CHECK;

/* The device states a page of devices may be filtered by (the counts' below). */
typedef enum rp_device_state {
    RP_DEVICE_STATE_ANY = 0,
    RP_DEVICE_STATE_ATTESTED,
    RP_DEVICE_STATE_CERT_EXPIRING,
    RP_DEVICE_STATE_FAILED,
    RP_DEVICE_STATE_BLOCKED,
    RP_DEVICE_STATE_QUARANTINED,
    RP_DEVICE_STATE_NEVER_SEEN,
    RP_DEVICE_STATE_COUNT /* not a state: how many there are */
} rp_device_state_t;
/* A page of the tenant's devices in ID order (rp_page_t: filtered on the ID), only those in
 * state. Indexed: a page reads the devices from `after` (and the prefix) on, never those before;
 * blocked, quarantined and failed are each an index of their own (a page reads only devices in
 * that state); the other filters read on until the page is full. RP_ERR_INVALID_ARG: no such
 * state. */
rp_err_t rp_store_device_page(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                              rp_device_state_t state, int64_t now, rp_device_fn fn,
                              void *ctx) RP_MUST_CHECK;

/* A tenant's devices by state, for the console's fleet page. The states overlap: a device is
 * counted in each that is true of it. Read from counters kept by the writes (migrations.c:
 * COUNTERS_SEED): one row per state, whatever the fleet's size. */
typedef struct rp_fleet_counts {
    int64_t total;
    int64_t attested;         /* last attestation passed, and neither blocked nor quarantined */
    int64_t cert_expiring;    /* its newest current certificate ends within RP_FLEET_EXPIRING, */
    int64_t cert_expiring_at; /* as counted at this time (0: not counted yet): in the background */
    int64_t failed;           /* last attestation failed */
    int64_t blocked;
    int64_t quarantined;
    int64_t never_seen; /* no attestation recorded */
} rp_fleet_counts_t;
#define RP_FLEET_EXPIRING (4 * 3600) /* seconds: a 24-hour certificate not renewed for 20 hours */
rp_err_t rp_store_fleet_counts(rp_store_t *s, const char *tenant_id, int64_t now,
                               rp_fleet_counts_t *out) RP_MUST_CHECK;
/* The counters the fleet's counts, its versions and a deployment's progress read (COUNTERS_SEED,
 * VERSIONS_SEED, then the deployments' by DEPLOY_COUNTERS_SEED_25), counted again from the rows,
 * in one transaction: for a database written around the store (a bulk load). */
rp_err_t rp_store_counters_recount(rp_store_t *s) RP_MUST_CHECK;
/* "Expiring" is a matter of time, not of a write: counted over every device of the tenant (its
 * newest current certificate's end) and kept with the time it was counted, which the fleet's
 * counts show. OUT: *n. */
rp_err_t rp_store_fleet_expiring_count(rp_store_t *s, const char *tenant_id, int64_t now,
                                       int64_t *n) RP_MUST_CHECK;
/* Count it again for every tenant whose count is older than max_age seconds (or missing): the
 * background's pass. OUT: *counted, the tenants counted. */
rp_err_t rp_store_fleet_summaries_refresh(rp_store_t *s, int64_t now, int64_t max_age,
                                          size_t *counted) RP_MUST_CHECK;
/* How many of the tenant's devices run each (product, component, version), as their status
 * reports say (product "" for devices in no group), most devices first, at most limit rows: read
 * from counters kept by the writes (migration 24), not from the devices. */
typedef void (*rp_fleet_version_fn)(void *ctx, const char *product, const char *component,
                                    const char *version, int64_t devices);
rp_err_t rp_store_fleet_versions(rp_store_t *s, const char *tenant_id, int limit,
                                 rp_fleet_version_fn fn, void *ctx) RP_MUST_CHECK;
/* The tenant's attestations from since, in n buckets of step seconds: pass[i] and fail[i] (the
 * caller's arrays, zeroed here). */
rp_err_t rp_store_attest_histogram(rp_store_t *s, const char *tenant_id, int64_t since,
                                   int64_t step, int n, int64_t *pass, int64_t *fail) RP_MUST_CHECK;

/* ---- groups of calls (issue 11: ingestion's speed) ----
 * Several calls as one transaction: one commit, hence one sync of the log, for all of them. The
 * calls inside that take a transaction of their own nest in it (each keeps or undoes only its own
 * part when it fails); rp_store_group_end commits the lot when err is RP_OK, else undoes it, and
 * returns the outcome. The group holds the process's write lock: keep it short, and call nothing
 * slow (the network, other connections) inside it. */
rp_err_t rp_store_group_begin(rp_store_t *s) RP_MUST_CHECK;
/* The connection that does most of the process's writing (the recorder's): a larger page cache
 * (64 MiB at most), so that what it writes next is read from memory, not from the file; savepoint
 * journals in memory; a checkpoint every 8192 pages of log. */
rp_err_t rp_store_writer_tune(rp_store_t *s) RP_MUST_CHECK;
rp_err_t rp_store_group_end(rp_store_t *s, rp_err_t err) RP_MUST_CHECK;

#endif /* RAMPART_STORE_H */
