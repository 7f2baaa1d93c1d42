/*
 * The crypto port on Mbed TLS, the library microcontroller builds use: SHA-256 and ECDSA P-256.
 * Mbed TLS 2.28 has no Ed25519, so this backend answers RP_ERR_UNSUPPORTED for it, and says so
 * in rp_crypto_backend().
 */
#include <string.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "crypto_mbedtls.h"
#include "rampart/crypto.h"

#if MBEDTLS_VERSION_MAJOR >= 3
#define sha256_starts mbedtls_sha256_starts
#define sha256_update mbedtls_sha256_update
#define sha256_finish mbedtls_sha256_finish
#else
#define sha256_starts mbedtls_sha256_starts_ret
#define sha256_update mbedtls_sha256_update_ret
#define sha256_finish mbedtls_sha256_finish_ret
#endif

rp_err_t rp_sha256_init(rp_sha256_t *ctx)
{
    if (ctx == NULL)
        return RP_ERR_INVALID_ARG;
    mbedtls_sha256_init(&ctx->ctx);
    if (sha256_starts(&ctx->ctx, 0) != 0) {
        mbedtls_sha256_free(&ctx->ctx);
        return RP_ERR_CRYPTO;
    }
    return RP_OK;
}

rp_err_t rp_sha256_update(rp_sha256_t *ctx, const void *data, size_t len)
{
    if (ctx == NULL || (data == NULL && len > 0))
        return RP_ERR_INVALID_ARG;
    return sha256_update(&ctx->ctx, data, len) == 0 ? RP_OK : RP_ERR_CRYPTO;
}

rp_err_t rp_sha256_final(rp_sha256_t *ctx, uint8_t out[RP_SHA256_LEN])
{
    int rc;

    if (ctx == NULL || out == NULL)
        return RP_ERR_INVALID_ARG;
    rc = sha256_finish(&ctx->ctx, out);
    mbedtls_sha256_free(&ctx->ctx); /* zeroizes */
    return rc == 0 ? RP_OK : RP_ERR_CRYPTO;
}

#if MBEDTLS_VERSION_MAJOR >= 3
#define KP_GRP(kp) ((kp)->MBEDTLS_PRIVATE(grp))
#define KP_Q(kp) ((kp)->MBEDTLS_PRIVATE(Q))
#else
#define KP_GRP(kp) ((kp)->grp)
#define KP_Q(kp) ((kp)->Q)
#endif

/*
 * A P-256 public key has one DER SubjectPublicKeyInfo (id-ecPublicKey, the named curve
 * prime256v1, the uncompressed point): these 26 bytes, then the 65-byte point. Comparing with
 * them, rather than parsing with Mbed TLS's PK layer, keeps that layer (and its OID tables and
 * ASN.1 writer) out of the microcontroller's boot stage: they were several KiB of its flash.
 */
static const uint8_t p256_spki_prefix[RP_MBEDTLS_P256_SPKI_LEN - RP_P256_POINT_LEN] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};

rp_err_t rp_mbedtls_p256_spki(const uint8_t point[RP_P256_POINT_LEN],
                              uint8_t spki[RP_MBEDTLS_P256_SPKI_LEN])
{
    if (point == NULL || spki == NULL || point[0] != 0x04)
        return RP_ERR_INVALID_ARG;
    memcpy(spki, p256_spki_prefix, sizeof(p256_spki_prefix));
    memcpy(spki + sizeof(p256_spki_prefix), point, RP_P256_POINT_LEN);
    return RP_OK;
}

/*
 * What a key that is not the P-256 SPKI above is: a well-formed SubjectPublicKeyInfo of another
 * algorithm or curve (Ed25519 among others) is RP_ERR_UNSUPPORTED; anything else, a P-256 key in
 * another encoding included, RP_ERR_BAD_KEY. Parsed with Mbed TLS's ASN.1 reader, which the DER
 * signatures need anyway.
 */
static rp_err_t other_key(const uint8_t *spki, size_t spki_len)
{
    static const uint8_t ec_alg[] = MBEDTLS_OID_EC_ALG_UNRESTRICTED;
    static const uint8_t p256[] = MBEDTLS_OID_EC_GRP_SECP256R1;
    unsigned char *p = (unsigned char *)spki;
    const unsigned char *end = spki + spki_len;
    mbedtls_asn1_buf alg, params;
    size_t inner;

    if (mbedtls_asn1_get_tag(&p, end, &inner, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) !=
            0 ||
        inner != (size_t)(end - p) || mbedtls_asn1_get_alg(&p, end, &alg, &params) != 0 ||
        mbedtls_asn1_get_bitstring_null(&p, end, &inner) != 0 || inner != (size_t)(end - p) ||
        inner == 0)
        return RP_ERR_BAD_KEY;
    if (alg.len == sizeof(ec_alg) && memcmp(alg.p, ec_alg, sizeof(ec_alg)) == 0 &&
        (params.tag != MBEDTLS_ASN1_OID ||
         (params.len == sizeof(p256) && memcmp(params.p, p256, sizeof(p256)) == 0)))
        return RP_ERR_BAD_KEY; /* P-256 (or unnamed parameters) not in the one DER form */
    return RP_ERR_UNSUPPORTED;
}

/*
 * The P-256 key an SPKI holds, checked to be on the curve. OUT: *kp, initialised; free it.
 * RP_ERR_UNSUPPORTED for a well-formed key of another kind, RP_ERR_BAD_KEY otherwise.
 */
static rp_err_t load_pubkey(const uint8_t *spki, size_t spki_len, mbedtls_ecp_keypair *kp)
{
    const uint8_t *point = spki + sizeof(p256_spki_prefix);

    mbedtls_ecp_keypair_init(kp);
    if (spki == NULL || spki_len == 0)
        return RP_ERR_BAD_KEY;
    if (spki_len != RP_MBEDTLS_P256_SPKI_LEN ||
        memcmp(spki, p256_spki_prefix, sizeof(p256_spki_prefix)) != 0)
        return other_key(spki, spki_len);
    if (mbedtls_ecp_group_load(&KP_GRP(kp), MBEDTLS_ECP_DP_SECP256R1) != 0)
        return RP_ERR_CRYPTO;
    if (mbedtls_ecp_point_read_binary(&KP_GRP(kp), &KP_Q(kp), point, RP_P256_POINT_LEN) != 0 ||
        mbedtls_ecp_check_pubkey(&KP_GRP(kp), &KP_Q(kp)) != 0)
        return RP_ERR_BAD_KEY;
    return RP_OK;
}

rp_err_t rp_pubkey_alg(const uint8_t *spki, size_t spki_len, rp_sig_alg_t *alg)
{
    mbedtls_ecp_keypair kp;
    rp_err_t err;

    if (alg == NULL)
        return RP_ERR_INVALID_ARG;
    err = load_pubkey(spki, spki_len, &kp);
    if (err == RP_OK)
        *alg = RP_SIG_ECDSA_P256;
    mbedtls_ecp_keypair_free(&kp);
    return err;
}

/*
 * The length of the DER signature at the start of sig, allowing only zero bytes after it: imgtool's
 * --pad-sig pads ECDSA signatures to 72 bytes so, and MCUboot accepts them.
 */
static rp_err_t ecdsa_der_len(const uint8_t *sig, size_t sig_len, size_t *der_len)
{
    unsigned char *p = (unsigned char *)sig;
    size_t inner;

    if (mbedtls_asn1_get_tag(&p, p + sig_len, &inner,
                             MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return RP_ERR_BAD_SIGNATURE;
    *der_len = (size_t)(p - sig) + inner;
    for (size_t i = *der_len; i < sig_len; i++)
        if (sig[i] != 0)
            return RP_ERR_BAD_SIGNATURE;
    return RP_OK;
}

/* COSE's raw r || s, verified on the curve directly. */
static rp_err_t verify_es256(mbedtls_ecp_keypair *kp, const uint8_t *digest, const uint8_t *sig,
                             size_t sig_len)
{
    mbedtls_mpi r, s;
    rp_err_t err = RP_OK;

    if (sig_len != RP_ES256_SIG_LEN)
        return RP_ERR_BAD_SIGNATURE;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_mpi_read_binary(&r, sig, RP_ES256_SIG_LEN / 2) != 0 ||
        mbedtls_mpi_read_binary(&s, sig + RP_ES256_SIG_LEN / 2, RP_ES256_SIG_LEN / 2) != 0)
        err = RP_ERR_CRYPTO;
    if (err == RP_OK &&
        mbedtls_ecdsa_verify(&KP_GRP(kp), digest, RP_SHA256_LEN, &KP_Q(kp), &r, &s) != 0)
        err = RP_ERR_BAD_SIGNATURE;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return err;
}

rp_err_t rp_sig_verify(rp_sig_alg_t alg, const uint8_t *spki, size_t spki_len,
                       const uint8_t digest[RP_SHA256_LEN], const uint8_t *sig, size_t sig_len)
{
    mbedtls_ecp_keypair kp;
    rp_err_t err;

    if (digest == NULL || sig == NULL || sig_len == 0)
        return RP_ERR_INVALID_ARG;
    if (alg != RP_SIG_ECDSA_P256 && alg != RP_SIG_ES256)
        return RP_ERR_UNSUPPORTED;
    if (alg == RP_SIG_ES256 && sig_len != RP_ES256_SIG_LEN)
        return RP_ERR_BAD_SIGNATURE;
    err = load_pubkey(spki, spki_len, &kp);
    if (err == RP_ERR_UNSUPPORTED)
        err = RP_ERR_BAD_KEY; /* asked for ECDSA, given another kind of key */
    if (err == RP_OK && alg == RP_SIG_ES256)
        err = verify_es256(&kp, digest, sig, sig_len);
    else if (err == RP_OK)
        err = ecdsa_der_len(sig, sig_len, &sig_len);
    if (err == RP_OK && alg == RP_SIG_ECDSA_P256 &&
        mbedtls_ecdsa_read_signature(&kp, digest, RP_SHA256_LEN, sig, sig_len) != 0)
        err = RP_ERR_BAD_SIGNATURE;
    mbedtls_ecp_keypair_free(&kp);
    return err;
}

rp_err_t rp_pubkey_p256_point(const uint8_t *spki, size_t spki_len,
                              uint8_t point[RP_P256_POINT_LEN])
{
    mbedtls_ecp_keypair kp;
    rp_err_t err;

    if (spki == NULL || point == NULL)
        return RP_ERR_INVALID_ARG;
    /* Canonical only: the one DER form (load_pubkey accepts no other), on the curve. */
    err = load_pubkey(spki, spki_len, &kp);
    if (err == RP_OK)
        memcpy(point, spki + sizeof(p256_spki_prefix), RP_P256_POINT_LEN);
    mbedtls_ecp_keypair_free(&kp);
    return err == RP_ERR_UNSUPPORTED ? RP_ERR_BAD_KEY : err;
}

const char *rp_crypto_backend(void)
{
    return "Mbed TLS " MBEDTLS_VERSION_STRING " (ECDSA P-256 only: no Ed25519)";
}
