/*
 * The root of trust: one interface over the device's identity key, its monotonic counters and its
 * measurement register, with two backends chosen at run time:
 *   tpm2  the key is created inside a TPM 2.0 under a primary key and never leaves it; signing
 *         happens in the TPM; counters are TPM NV counters; measurements extend a PCR;
 *   soft  a key file (0600) and counter files in the state directory: for development only, and
 *         it says so.
 * The device ID is the lowercase hex SHA-256 of the identity key's DER SubjectPublicKeyInfo.
 */
#ifndef RAMPART_ROT_H
#define RAMPART_ROT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "rampart/crypto.h"
#include "rampart/error.h"

typedef enum rp_rot_kind {
    RP_ROT_SOFT = 1,
    RP_ROT_TPM2 = 2,
} rp_rot_kind_t;

/* "deadbeef...": 64 hex digits and a NUL. */
#define RP_DEVICE_ID_LEN 64
#define RP_DEVICE_ID_SIZE (RP_DEVICE_ID_LEN + 1)

/* Counters the runtime uses; each backend maps them to its own storage. */
typedef enum rp_rot_counter {
    RP_ROT_COUNTER_BOOT = 0, /* incremented once per boot of the device */
    RP_ROT_COUNTER_COUNT = 1,
} rp_rot_counter_t;

typedef struct rp_rot_config {
    rp_rot_kind_t kind;
    const char *state_dir; /* where the backend keeps its files (key blob, counters) */
    const char *tcti;      /* tpm2 only: e.g. "swtpm:host=127.0.0.1,port=2321"; NULL: default */
    /* tpm2: the caller is the TPM's one user (the monitor, whose lock every process of its own
     * holds, so that none of them lives when the next one starts): rp_rot_open() first flushes
     * every transient object the TPM holds, which only processes that died with them loaded can
     * have left there (see rp_rot_reclaim). */
    bool sole_user;
} rp_rot_config_t;

typedef struct rp_rot rp_rot_t;

/* Parse "soft" or "tpm2". */
rp_err_t rp_rot_kind_parse(const char *name, rp_rot_kind_t *kind) RP_MUST_CHECK;
const char *rp_rot_kind_name(rp_rot_kind_t kind);

/*
 * Create the identity key if the state directory has none; keep the existing one otherwise.
 * OUT: *created tells which. The backend and key are recorded in the state directory, so that
 * rp_rot_open() later needs only the directory (and the TCTI for tpm2).
 */
rp_err_t rp_rot_provision(const rp_rot_config_t *cfg, bool *created) RP_MUST_CHECK;

/* Open a provisioned root of trust. cfg->kind may be 0: whatever was provisioned. OUT: *rot.
 * tpm2: RP_ERR_NO_MEMORY when the TPM has no room left to load the key (objects that dead
 * processes left loaded: said as such, not as a bad key file; cfg->sole_user frees them). */
rp_err_t rp_rot_open(const rp_rot_config_t *cfg, rp_rot_t **rot) RP_MUST_CHECK;
void rp_rot_close(rp_rot_t *rot);

rp_rot_kind_t rp_rot_kind(const rp_rot_t *rot);

/* The identity key's DER SubjectPublicKeyInfo. OUT: spki[0..*len). */
rp_err_t rp_rot_public_key(rp_rot_t *rot, uint8_t *spki, size_t cap, size_t *len) RP_MUST_CHECK;

/* The device ID. OUT: id, RP_DEVICE_ID_SIZE bytes. */
rp_err_t rp_rot_device_id(rp_rot_t *rot, char id[RP_DEVICE_ID_SIZE]) RP_MUST_CHECK;

/* ECDSA P-256 signature over a SHA-256 digest, DER-encoded, made inside the root of trust. */
rp_err_t rp_rot_sign(rp_rot_t *rot, const uint8_t digest[RP_SHA256_LEN], uint8_t *sig, size_t cap,
                     size_t *sig_len) RP_MUST_CHECK;

/*
 * The identity key as an OpenSSL key, for a CSR or a TLS connection. For tpm2 it is a handle into
 * the TPM through the tpm2-openssl provider: the private key stays inside. Owned by rot.
 */
EVP_PKEY *rp_rot_pkey(rp_rot_t *rot);

/*
 * An SSL_CTX with the identity key and certificate chain (PEM file) loaded, created where the key
 * lives (the TPM provider's library context for tpm2). For device-to-cloud and device-to-device
 * TLS. Caller frees; valid only until the next counter or measurement call on rot (tpm2).
 */
/* The same on an SSL_CTX made elsewhere (libcurl's): 1 on success, 0 on failure. */
int rp_rot_ssl_ctx_use(rp_rot_t *rot, SSL_CTX *ctx, const char *cert_chain_file);
SSL_CTX *rp_rot_ssl_ctx(rp_rot_t *rot, const SSL_METHOD *method, const char *cert_chain_file);

/*
 * Security counters: one per installed component (by index), MCUboot's anti-rollback floor. An
 * image whose security counter is below its component's is refused forever. They only grow.
 * tpm2: each is an NV bits index used as a thermometer (like OTP fuses), so it holds 0 to
 * RP_ROT_TPM2_SECCNT_MAX; soft: 0 to UINT32_MAX.
 */
#define RP_ROT_SECCNT_COUNT 16
/* The largest security counter a TPM root of trust holds: the bits of one NV bits index. The one
 * owner of this limit: the agent refuses images past it, `rampart image sign` and the service's
 * uploads warn of them, and a tpm2 device reports it as its counter ceiling. */
#define RP_ROT_TPM2_SECCNT_MAX 64
/* The largest security counter the backend can hold. */
uint32_t rp_rot_seccnt_max(rp_rot_t *rot);
/* Read security counter i: 0 until first advanced. */
rp_err_t rp_rot_seccnt_read(rp_rot_t *rot, unsigned i, uint32_t *value) RP_MUST_CHECK;
/* Raise security counter i to value; a no-op when it is there or beyond already (it never goes
 * down). RP_ERR_TOO_LARGE when the backend cannot hold value. */
rp_err_t rp_rot_seccnt_advance(rp_rot_t *rot, unsigned i, uint32_t value) RP_MUST_CHECK;

/* Read a monotonic counter. */
rp_err_t rp_rot_counter_read(rp_rot_t *rot, rp_rot_counter_t c, uint64_t *value) RP_MUST_CHECK;
/* Add one to a monotonic counter. OUT: *value, the new value (may be NULL). */
rp_err_t rp_rot_counter_increment(rp_rot_t *rot, rp_rot_counter_t c, uint64_t *value) RP_MUST_CHECK;

/*
 * Extend the measurement register with a SHA-256 digest: reg = SHA-256(reg || digest).
 * OUT: reg, the register after the extension (may be NULL).
 */
rp_err_t rp_rot_measure(rp_rot_t *rot, const uint8_t digest[RP_SHA256_LEN],
                        uint8_t reg[RP_SHA256_LEN]) RP_MUST_CHECK;
/* Read the measurement register. */
rp_err_t rp_rot_measurements(rp_rot_t *rot, uint8_t reg[RP_SHA256_LEN]) RP_MUST_CHECK;

/*
 * HMAC-SHA256 of data (at most RP_ROT_MAC_DATA_MAX bytes) with a key held by the root of trust:
 * for records the device keeps in files that must not be rewritten by whoever can write them
 * (the security-counter bindings, device/monitor/). tpm2: a keyed-hash primary key of the owner
 * hierarchy, derived inside the TPM from its seed and a fixed label, used by TPM2_HMAC (nothing is
 * stored); soft: a random key file (mac.key, 0600) made on first use.
 */
#define RP_ROT_MAC_DATA_MAX 1024
rp_err_t rp_rot_mac(rp_rot_t *rot, const void *data, size_t len,
                    uint8_t mac[RP_SHA256_LEN]) RP_MUST_CHECK;

/*
 * A process that used the root of trust died mid-way (the monitor's install child, killed): free
 * what it left loaded. tpm2: every transient object the TPM holds is flushed (what this process
 * had loaded itself too: loaded again when next needed). A TPM behind a resource manager
 * (/dev/tpmrm0) held the dead process's objects in its own space, freed as it died, and shows none
 * of them here; a TPM without one (swtpm, /dev/tpm0) keeps them until it is reset and, with a
 * few (two on swtpm), has no room for the key. Only for the TPM's one user (the monitor;
 * rp_rot_config_t's sole_user does the same at open, for a monitor killed with its key loaded).
 * soft: nothing to do.
 */
rp_err_t rp_rot_reclaim(rp_rot_t *rot) RP_MUST_CHECK;

/*
 * Let go of what the root of trust keeps open between calls (tpm2: the provider, its TPM
 * connection and the identity key it has loaded in the TPM, flushed); the next call that needs the
 * key loads it again. EVP_PKEYs from rp_rot_pkey() are invalid after it. Called before a fork
 * whose child uses the root of trust (the monitor's install child): the child would hold a copy of
 * the connection, and a TPM without a resource manager (/dev/tpm0) admits one open connection at a
 * time, so the child could open none of its own. soft: nothing to do.
 */
void rp_rot_idle(rp_rot_t *rot);

/* The device ID of a DER SubjectPublicKeyInfo. */
rp_err_t rp_device_id_of_spki(const uint8_t *spki, size_t len,
                              char id[RP_DEVICE_ID_SIZE]) RP_MUST_CHECK;
/* Whether s is a well-formed device ID (64 lowercase hex digits). */
bool rp_device_id_valid(const char *s);

#endif /* RAMPART_ROT_H */
