/*
 * The crypto port on Mbed TLS, the library microcontroller builds use: SHA-256 and ECDSA P-256.
 * Mbed TLS 2.28 has no Ed25519, so this backend answers RP_ERR_UNSUPPORTED for it, and says so
 * in rp_crypto_backend().
 */
#include <string.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

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

/* Parse a DER SubjectPublicKeyInfo, refusing trailing bytes. OUT: *pk, initialised; free it. */
static rp_err_t load_pubkey(const uint8_t *spki, size_t spki_len, mbedtls_pk_context *pk)
{
    unsigned char *p = (unsigned char *)spki;
    size_t inner;
    int rc;

    mbedtls_pk_init(pk);
    if (spki == NULL || spki_len == 0)
        return RP_ERR_BAD_KEY;
    if (mbedtls_asn1_get_tag(&p, p + spki_len, &inner,
                             MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0 ||
        (size_t)(p - spki) + inner != spki_len)
        return RP_ERR_BAD_KEY;
    rc = mbedtls_pk_parse_public_key(pk, spki, spki_len);
    if (rc == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG)
        return RP_ERR_UNSUPPORTED; /* Ed25519 among others */
    if (rc != 0)
        return RP_ERR_BAD_KEY;
    return RP_OK;
}

static rp_err_t alg_of(const mbedtls_pk_context *pk, rp_sig_alg_t *alg)
{
    if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY)
        return RP_ERR_UNSUPPORTED;
#if MBEDTLS_VERSION_MAJOR >= 3
    if (mbedtls_pk_ec(*pk)->MBEDTLS_PRIVATE(grp).id != MBEDTLS_ECP_DP_SECP256R1)
#else
    if (mbedtls_pk_ec(*pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1)
#endif
        return RP_ERR_UNSUPPORTED;
    *alg = RP_SIG_ECDSA_P256;
    return RP_OK;
}

rp_err_t rp_pubkey_alg(const uint8_t *spki, size_t spki_len, rp_sig_alg_t *alg)
{
    mbedtls_pk_context pk;
    rp_err_t err;

    if (alg == NULL)
        return RP_ERR_INVALID_ARG;
    err = load_pubkey(spki, spki_len, &pk);
    if (err == RP_OK)
        err = alg_of(&pk, alg);
    mbedtls_pk_free(&pk);
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
static rp_err_t verify_es256(const uint8_t *spki, size_t spki_len, const uint8_t *digest,
                             const uint8_t *sig, size_t sig_len)
{
    mbedtls_pk_context pk;
    mbedtls_mpi r, s;
    rp_sig_alg_t key_alg;
    rp_err_t err;

    if (sig_len != RP_ES256_SIG_LEN)
        return RP_ERR_BAD_SIGNATURE;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    err = load_pubkey(spki, spki_len, &pk);
    if (err == RP_OK)
        err = alg_of(&pk, &key_alg);
    if (err != RP_OK)
        err = RP_ERR_BAD_KEY;
    if (err == RP_OK &&
        (mbedtls_mpi_read_binary(&r, sig, RP_ES256_SIG_LEN / 2) != 0 ||
         mbedtls_mpi_read_binary(&s, sig + RP_ES256_SIG_LEN / 2, RP_ES256_SIG_LEN / 2) != 0))
        err = RP_ERR_CRYPTO;
#if MBEDTLS_VERSION_MAJOR >= 3
    if (err == RP_OK &&
        mbedtls_ecdsa_verify(&mbedtls_pk_ec(pk)->MBEDTLS_PRIVATE(grp), digest, RP_SHA256_LEN,
                             &mbedtls_pk_ec(pk)->MBEDTLS_PRIVATE(Q), &r, &s) != 0)
#else
    if (err == RP_OK && mbedtls_ecdsa_verify(&mbedtls_pk_ec(pk)->grp, digest, RP_SHA256_LEN,
                                             &mbedtls_pk_ec(pk)->Q, &r, &s) != 0)
#endif
        err = RP_ERR_BAD_SIGNATURE;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_pk_free(&pk);
    return err;
}

rp_err_t rp_sig_verify(rp_sig_alg_t alg, const uint8_t *spki, size_t spki_len,
                       const uint8_t digest[RP_SHA256_LEN], const uint8_t *sig, size_t sig_len)
{
    mbedtls_pk_context pk;
    rp_sig_alg_t key_alg;
    rp_err_t err;

    if (digest == NULL || sig == NULL || sig_len == 0)
        return RP_ERR_INVALID_ARG;
    if (alg == RP_SIG_ES256)
        return verify_es256(spki, spki_len, digest, sig, sig_len);
    if (alg != RP_SIG_ECDSA_P256)
        return RP_ERR_UNSUPPORTED;
    err = load_pubkey(spki, spki_len, &pk);
    if (err == RP_OK)
        err = alg_of(&pk, &key_alg);
    if (err == RP_ERR_UNSUPPORTED)
        err = RP_ERR_BAD_KEY; /* asked for ECDSA, given another kind of key */
    if (err == RP_OK && key_alg != alg)
        err = RP_ERR_BAD_KEY;
    if (err == RP_OK)
        err = ecdsa_der_len(sig, sig_len, &sig_len);
    if (err == RP_OK &&
        mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, digest, RP_SHA256_LEN, sig, sig_len) != 0)
        err = RP_ERR_BAD_SIGNATURE;
    mbedtls_pk_free(&pk);
    return err;
}

rp_err_t rp_pubkey_p256_point(const uint8_t *spki, size_t spki_len,
                              uint8_t point[RP_P256_POINT_LEN])
{
    unsigned char der[RP_PUBKEY_DER_MAX];
    mbedtls_pk_context pk;
    size_t olen = 0;
    rp_sig_alg_t alg;
    int n = -1;
    rp_err_t err;

    if (spki == NULL || point == NULL)
        return RP_ERR_INVALID_ARG;
    err = load_pubkey(spki, spki_len, &pk);
    if (err == RP_OK)
        err = alg_of(&pk, &alg);
    /* Canonical only: writing the key back must give exactly the bytes we were given. */
    if (err == RP_OK)
        n = mbedtls_pk_write_pubkey_der(&pk, der, sizeof(der));
    if (err == RP_OK && (n < 0 || (size_t)n != spki_len ||
                         memcmp(der + sizeof(der) - (size_t)n, spki, spki_len) != 0))
        err = RP_ERR_BAD_KEY;
#if MBEDTLS_VERSION_MAJOR >= 3
    if (err == RP_OK && (mbedtls_ecp_point_write_binary(&mbedtls_pk_ec(pk)->MBEDTLS_PRIVATE(grp),
                                                        &mbedtls_pk_ec(pk)->MBEDTLS_PRIVATE(Q),
                                                        MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, point,
                                                        RP_P256_POINT_LEN) != 0 ||
                         olen != RP_P256_POINT_LEN))
#else
    if (err == RP_OK && (mbedtls_ecp_point_write_binary(
                             &mbedtls_pk_ec(pk)->grp, &mbedtls_pk_ec(pk)->Q,
                             MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, point, RP_P256_POINT_LEN) != 0 ||
                         olen != RP_P256_POINT_LEN))
#endif
        err = RP_ERR_BAD_KEY;
    mbedtls_pk_free(&pk);
    return err == RP_ERR_UNSUPPORTED ? RP_ERR_BAD_KEY : err;
}

const char *rp_crypto_backend(void)
{
    return "Mbed TLS " MBEDTLS_VERSION_STRING " (ECDSA P-256 only: no Ed25519)";
}
