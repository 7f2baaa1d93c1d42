/*
 * The crypto port: the only cryptography the portable core uses, and the contract a backend must
 * meet. Exactly one backend is compiled in, chosen at build time by defining RP_CRYPTO_OPENSSL or
 * RP_CRYPTO_MBEDTLS; see docs/porting.md.
 *
 * Contract for every backend:
 *  - contexts are plain structs owned by the caller; nothing here allocates from the core's point
 *    of view and there is nothing to free (a backend library may allocate internally while a call
 *    runs, and must release it before returning);
 *  - a verify returns RP_OK only for a signature that is valid for exactly that key and digest;
 *    every other outcome, including internal failure, is an error;
 *  - public keys are DER SubjectPublicKeyInfo, the form MCUboot puts in PUBKEY TLVs and hashes
 *    into KEYHASH TLVs.
 */
#ifndef RAMPART_CRYPTO_H
#define RAMPART_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RP_CRYPTO_OPENSSL) + defined(RP_CRYPTO_MBEDTLS) > 1
#error "Rampart: define exactly one crypto backend (RP_CRYPTO_OPENSSL or RP_CRYPTO_MBEDTLS)"
#endif

#if defined(RP_CRYPTO_OPENSSL)
/*
 * The low-level SHA256_CTX is a plain struct that the caller can own, which EVP_MD_CTX is not;
 * it runs the same assembly (SHA-NI where present) as the EVP interface.
 */
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED
#endif
#include <openssl/sha.h>
typedef struct rp_sha256 {
    SHA256_CTX ctx;
} rp_sha256_t;
#elif defined(RP_CRYPTO_MBEDTLS)
#include <mbedtls/sha256.h>
typedef struct rp_sha256 {
    mbedtls_sha256_context ctx;
} rp_sha256_t;
#else
#error "Rampart: no crypto backend; define RP_CRYPTO_OPENSSL or RP_CRYPTO_MBEDTLS"
#endif

#define RP_SHA256_LEN 32
#define RP_ED25519_SIG_LEN 64
/* A DER ECDSA P-256 signature: SEQUENCE of two INTEGERs of at most 33 bytes each. */
#define RP_ECDSA_P256_SIG_MAX 72
/* The largest SubjectPublicKeyInfo of a supported key (P-256 uncompressed is 91 bytes). */
#define RP_PUBKEY_DER_MAX 128

typedef enum rp_sig_alg {
    RP_SIG_NONE = 0,
    RP_SIG_ECDSA_P256 = 1, /* ECDSA over P-256; signature is DER, message is a SHA-256 digest */
    RP_SIG_ED25519 = 2,    /* Ed25519 (RFC 8032, pure) whose message is the 32-byte digest */
    RP_SIG_ES256 = 3,      /* ECDSA P-256 as COSE writes it (RFC 9053): raw r || s, 64 bytes */
} rp_sig_alg_t;

#define RP_ES256_SIG_LEN 64

/* A name for alg, e.g. "ECDSA P-256"; never NULL. */
const char *rp_sig_alg_name(rp_sig_alg_t alg);

/* Streaming SHA-256. final() wipes the context. */
rp_err_t rp_sha256_init(rp_sha256_t *ctx) RP_MUST_CHECK;
rp_err_t rp_sha256_update(rp_sha256_t *ctx, const void *data, size_t len) RP_MUST_CHECK;
rp_err_t rp_sha256_final(rp_sha256_t *ctx, uint8_t out[RP_SHA256_LEN]) RP_MUST_CHECK;

/* One-shot SHA-256 of a buffer. */
rp_err_t rp_sha256(const void *data, size_t len, uint8_t out[RP_SHA256_LEN]) RP_MUST_CHECK;

/*
 * The content a TLS 1.3 CertificateVerify signs (RFC 8446, 4.4.3): 64 bytes of 0x20, the context
 * string "TLS 1.3, client CertificateVerify" or "TLS 1.3, server CertificateVerify", a 0 byte,
 * then the transcript hash (32 bytes for a SHA-256 cipher suite, 48 for SHA-384). The one owner
 * of that layout: the monitor builds it from (side, hash) and signs only that, so its identity key
 * never signs caller-chosen bytes (an EAT's Sig_structure, a CSR); a remote key in TLS 1.3 mode
 * takes it apart to hand (side, hash) on.
 */
typedef enum rp_tls13_side {
    RP_TLS13_CLIENT = 1,
    RP_TLS13_SERVER = 2,
} rp_tls13_side_t;

#define RP_TLS13_HASH_MAX 48
#define RP_TLS13_CV_CONTENT_MAX (64 + 33 + 1 + RP_TLS13_HASH_MAX)

/* Whether n is the length of a transcript hash (32 or 48). */
int rp_tls13_hash_len_valid(size_t n);
/* OUT: out[0..*len). RP_ERR_INVALID_ARG for another side or hash length, RP_ERR_BUFFER_TOO_SMALL.
 */
rp_err_t rp_tls13_cv_content(rp_tls13_side_t side, const uint8_t *hash, size_t hash_len,
                             uint8_t *out, size_t cap, size_t *len) RP_MUST_CHECK;
/* The reverse: RP_OK only for exactly such a content. OUT: *side, hash[0..*hash_len). Anything
 * else (another prefix or context, no 0 byte, a hash of another length) is RP_ERR_MALFORMED. */
rp_err_t rp_tls13_cv_parse(const uint8_t *content, size_t len, rp_tls13_side_t *side,
                           uint8_t hash[RP_TLS13_HASH_MAX], size_t *hash_len) RP_MUST_CHECK;

/*
 * The algorithm of a public key.
 * OUT: *alg. Returns RP_ERR_BAD_KEY for a key that is not a well-formed SubjectPublicKeyInfo of a
 * supported type, RP_ERR_UNSUPPORTED for a well-formed key this backend cannot use.
 */
rp_err_t rp_pubkey_alg(const uint8_t *spki, size_t spki_len, rp_sig_alg_t *alg) RP_MUST_CHECK;

/*
 * Verify sig over a SHA-256 digest with the public key spki, which must be of type alg (an
 * ECDSA P-256 key for RP_SIG_ES256).
 * Returns RP_OK only when the signature is valid; RP_ERR_BAD_SIGNATURE when it is not (or is
 * malformed), RP_ERR_BAD_KEY when the key is unusable or of another type, RP_ERR_UNSUPPORTED when
 * this backend lacks alg.
 */
rp_err_t rp_sig_verify(rp_sig_alg_t alg, const uint8_t *spki, size_t spki_len,
                       const uint8_t digest[RP_SHA256_LEN], const uint8_t *sig,
                       size_t sig_len) RP_MUST_CHECK;

#define RP_P256_POINT_LEN 65 /* an uncompressed P-256 point: 0x04, x, y */

/*
 * The public point of a P-256 key given as the canonical DER SubjectPublicKeyInfo (named curve,
 * uncompressed point). RP_ERR_BAD_KEY for anything else, including other encodings of the same
 * key: one key, one encoding, one device ID. The point is not checked to be on the curve here.
 */
rp_err_t rp_pubkey_p256_point(const uint8_t *spki, size_t spki_len,
                              uint8_t point[RP_P256_POINT_LEN]) RP_MUST_CHECK;

/* Constant-time comparison; 0 when equal. */
int rp_ct_memcmp(const void *a, const void *b, size_t len);

/* Zero len bytes at p in a way the compiler cannot drop. */
void rp_wipe(void *p, size_t len);

/* The backend's name, e.g. "OpenSSL 3.0.19". */
const char *rp_crypto_backend(void);

#ifdef __cplusplus
}
#endif

#endif /* RAMPART_CRYPTO_H */
