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

typedef struct rp_cert_record {
    char serial[RP_SERIAL_SIZE];
    char tenant_id[RP_ID_SIZE];
    char device_id[RP_DEVICE_ID_SIZE];
    int64_t not_before;
    int64_t not_after;
    int64_t revoked_at; /* 0: not revoked */
} rp_cert_record_t;

/* A tenant's CA: its certificate, and its key encrypted under the service's master key. */
typedef struct rp_ca_record {
    char tenant_id[RP_ID_SIZE];
    char *cert_pem;    /* malloc'd; rp_ca_record_free() */
    char *key_pem_enc; /* malloc'd: PKCS#8, encrypted */
    int64_t not_after;
} rp_ca_record_t;

void rp_ca_record_free(rp_ca_record_t *ca);

typedef struct rp_store rp_store_t;

/* Open (creating and migrating as needed) the database in data_dir. */
rp_err_t rp_store_open(const char *data_dir, rp_store_t **store) RP_MUST_CHECK;
void rp_store_close(rp_store_t *store);
/* The schema version the database is at. */
int rp_store_schema_version(rp_store_t *store);

rp_err_t rp_store_tenant_create(rp_store_t *s, const char *name, rp_tenant_t *out) RP_MUST_CHECK;
rp_err_t rp_store_tenant_get(rp_store_t *s, const char *id, rp_tenant_t *out) RP_MUST_CHECK;
typedef void (*rp_tenant_fn)(void *ctx, const rp_tenant_t *t);
rp_err_t rp_store_tenant_list(rp_store_t *s, rp_tenant_fn fn, void *ctx) RP_MUST_CHECK;

/* A token is stored by the SHA-256 of its secret; the secret itself never is. */
rp_err_t rp_store_token_create(rp_store_t *s, const char *tenant_id, rp_role_t role,
                               const uint8_t hash[RP_SHA256_LEN], rp_token_t *out) RP_MUST_CHECK;
rp_err_t rp_store_token_lookup(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN],
                               rp_token_t *out) RP_MUST_CHECK;
typedef void (*rp_token_fn)(void *ctx, const rp_token_t *t);
rp_err_t rp_store_token_list(rp_store_t *s, const char *tenant_id, rp_token_fn fn,
                             void *ctx) RP_MUST_CHECK;

/*
 * Claim a device for a tenant. Claiming it again for the same tenant is a no-op (RP_OK);
 * a device another tenant holds is RP_ERR_EXISTS.
 */
rp_err_t rp_store_device_claim(rp_store_t *s, const char *tenant_id, const char *device_id,
                               int64_t now) RP_MUST_CHECK;
rp_err_t rp_store_device_get(rp_store_t *s, const char *device_id, rp_device_t *out) RP_MUST_CHECK;
/* Only what attestation needs, fresh from the store: the tenant holding the device (OUT: into
 * tenant_id) and whether it is blocked. RP_ERR_NOT_FOUND when no tenant holds it. */
rp_err_t rp_store_device_standing(rp_store_t *s, const char *device_id, char tenant_id[RP_ID_SIZE],
                                  bool *blocked) RP_MUST_CHECK;
typedef void (*rp_device_fn)(void *ctx, const rp_device_t *d);
rp_err_t rp_store_device_list(rp_store_t *s, const char *tenant_id, rp_device_fn fn,
                              void *ctx) RP_MUST_CHECK;
/* Block a device and revoke every certificate it holds, in one transaction. */
rp_err_t rp_store_device_block(rp_store_t *s, const char *tenant_id, const char *device_id,
                               int64_t now) RP_MUST_CHECK;
rp_err_t rp_store_device_unblock(rp_store_t *s, const char *tenant_id,
                                 const char *device_id) RP_MUST_CHECK;

/* How an attestation was recorded (rp_store_attestations_record). */
typedef enum rp_recorded_as {
    RP_RECORDED_AS_GIVEN = 0,
    RP_RECORDED_AS_REPLAY,  /* its nonce was spent already: recorded as spent_reason, no certificate
                             */
    RP_RECORDED_AS_BLOCKED, /* a pass for a device blocked (or no longer the tenant's) meanwhile:
                             * recorded as blocked_reason, no certificate */
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
    const char *spent_reason;   /* the reason recorded when the nonce was spent already */
    const char *blocked_reason; /* the reason recorded when a pass finds the device blocked */
    rp_recorded_as_t as;        /* OUT */
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
/* Forget the spent nonces that expired before `before` (they are refused as expired anyway). */
rp_err_t rp_store_nonces_purge(rp_store_t *s, int64_t before) RP_MUST_CHECK;
typedef void (*rp_attestation_fn)(void *ctx, const rp_attestation_t *a);
rp_err_t rp_store_attestation_list(rp_store_t *s, const char *tenant_id, const char *device_id,
                                   int limit, rp_attestation_fn fn, void *ctx) RP_MUST_CHECK;

rp_err_t rp_store_cert_add(rp_store_t *s, const rp_cert_record_t *cert) RP_MUST_CHECK;
rp_err_t rp_store_cert_get(rp_store_t *s, const char *serial, rp_cert_record_t *out) RP_MUST_CHECK;
typedef void (*rp_cert_fn)(void *ctx, const rp_cert_record_t *c);
rp_err_t rp_store_revoked_list(rp_store_t *s, const char *tenant_id, rp_cert_fn fn,
                               void *ctx) RP_MUST_CHECK;

/* RP_ERR_EXISTS if the tenant has a CA already (another replica made it first). */
rp_err_t rp_store_ca_put(rp_store_t *s, const rp_ca_record_t *ca) RP_MUST_CHECK;
rp_err_t rp_store_ca_get(rp_store_t *s, const char *tenant_id, rp_ca_record_t *out) RP_MUST_CHECK;

#endif /* RAMPART_STORE_H */
