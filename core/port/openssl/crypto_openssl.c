/*
 * The crypto port on OpenSSL 3: SHA-256, ECDSA P-256 and Ed25519 verification. OpenSSL allocates
 * while a call runs; everything it allocates is freed before the call returns.
 */
/* The port's SHA-256 uses the low-level SHA256_CTX on purpose: see rampart/crypto.h. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <limits.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "rampart/crypto.h"

rp_err_t rp_sha256_init(rp_sha256_t *ctx)
{
    if (ctx == NULL)
        return RP_ERR_INVALID_ARG;
    return SHA256_Init(&ctx->ctx) == 1 ? RP_OK : RP_ERR_CRYPTO;
}

rp_err_t rp_sha256_update(rp_sha256_t *ctx, const void *data, size_t len)
{
    if (ctx == NULL || (data == NULL && len > 0))
        return RP_ERR_INVALID_ARG;
    return SHA256_Update(&ctx->ctx, data, len) == 1 ? RP_OK : RP_ERR_CRYPTO;
}

rp_err_t rp_sha256_final(rp_sha256_t *ctx, uint8_t out[RP_SHA256_LEN])
{
    int ok;

    if (ctx == NULL || out == NULL)
        return RP_ERR_INVALID_ARG;
    ok = SHA256_Final(out, &ctx->ctx);
    rp_wipe(ctx, sizeof(*ctx));
    return ok == 1 ? RP_OK : RP_ERR_CRYPTO;
}

/*
 * The DER of a P-256 SubjectPublicKeyInfo is a fixed prefix (algorithm ecPublicKey, curve
 * prime256v1, a 65-bit-string header) and the uncompressed point. OpenSSL 3's general decoder
 * takes about twice as long as the signature check, so the canonical form is recognised against
 * that prefix - which OpenSSL itself encodes, once - and the point goes to EVP_PKEY_fromdata().
 * Anything else takes the general decoder.
 */
#define P256_POINT_LEN 65
static uint8_t p256_prefix[32];
static size_t p256_prefix_len;
static CRYPTO_ONCE p256_once = CRYPTO_ONCE_STATIC_INIT;

static void p256_prefix_init(void)
{
    uint8_t point[P256_POINT_LEN] = {0x04}, der[128], *p = der, *copy;
    X509_PUBKEY *pub = X509_PUBKEY_new();
    int n;

    copy = OPENSSL_memdup(point, sizeof(point));
    if (pub == NULL || copy == NULL ||
        X509_PUBKEY_set0_param(pub, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                               OBJ_nid2obj(NID_X9_62_prime256v1), copy, P256_POINT_LEN) != 1) {
        OPENSSL_free(copy);
        X509_PUBKEY_free(pub);
        return; /* no fast path: the general decoder serves */
    }
    n = i2d_X509_PUBKEY(pub, &p);
    if (n > P256_POINT_LEN && (size_t)(n - P256_POINT_LEN) <= sizeof(p256_prefix)) {
        p256_prefix_len = (size_t)(n - P256_POINT_LEN);
        memcpy(p256_prefix, der, p256_prefix_len);
    }
    X509_PUBKEY_free(pub);
}

rp_err_t rp_pubkey_p256_point(const uint8_t *spki, size_t spki_len,
                              uint8_t point[RP_P256_POINT_LEN])
{
    if (spki == NULL || point == NULL)
        return RP_ERR_INVALID_ARG;
    if (CRYPTO_THREAD_run_once(&p256_once, p256_prefix_init) != 1 || p256_prefix_len == 0)
        return RP_ERR_CRYPTO;
    /* The prefix ends with the BIT STRING's header: the point's form byte is checked apart (OpenSSL
     * takes a hybrid point, 0x06 or 0x07, as the same key: another encoding, another device ID). */
    if (spki_len != p256_prefix_len + P256_POINT_LEN ||
        memcmp(spki, p256_prefix, p256_prefix_len) != 0 || spki[p256_prefix_len] != 0x04)
        return RP_ERR_BAD_KEY;
    memcpy(point, spki + p256_prefix_len, P256_POINT_LEN);
    return RP_OK;
}

/*
 * P-256's parameters as a key, decoded once. A device's key is a copy of them with its point set:
 * OpenSSL 3 builds the group afresh from its name for each EVP_PKEY_fromdata(), which made the
 * import cost 18 us, against 5 us so (bench/attest: once per attestation, on the worker's thread).
 * Only read after it is made, by any thread.
 */
static EVP_PKEY *p256_params;
static CRYPTO_ONCE p256_params_once = CRYPTO_ONCE_STATIC_INIT;

static void p256_params_init(void)
{
    OSSL_PARAM params[2];
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &p256_params, EVP_PKEY_KEY_PARAMETERS, params) != 1)
        p256_params = NULL; /* every P-256 key is then refused: fail closed */
    EVP_PKEY_CTX_free(ctx);
}

/* A P-256 key from its uncompressed point; the point is checked to be on the curve (OpenSSL's
 * decoding of it refuses one that is not). */
static EVP_PKEY *p256_from_point(const uint8_t point[P256_POINT_LEN])
{
    EVP_PKEY *k;

    if (point[0] != 0x04 || CRYPTO_THREAD_run_once(&p256_params_once, p256_params_init) != 1 ||
        p256_params == NULL)
        return NULL;
    k = EVP_PKEY_new();
    if (k == NULL || EVP_PKEY_copy_parameters(k, p256_params) != 1 ||
        EVP_PKEY_set1_encoded_public_key(k, point, P256_POINT_LEN) != 1) {
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

/* Parse a DER SubjectPublicKeyInfo, refusing trailing bytes. OUT: *key, to be freed. */
static rp_err_t load_pubkey(const uint8_t *spki, size_t spki_len, EVP_PKEY **key)
{
    uint8_t point[P256_POINT_LEN];
    const unsigned char *p = spki;
    EVP_PKEY *k;

    if (spki == NULL || spki_len == 0 || spki_len > LONG_MAX)
        return RP_ERR_BAD_KEY;
    if (rp_pubkey_p256_point(spki, spki_len, point) == RP_OK) {
        k = p256_from_point(point);
    } else {
        k = d2i_PUBKEY(NULL, &p, (long)spki_len);
        if (k != NULL && p != spki + spki_len) {
            EVP_PKEY_free(k);
            k = NULL;
        }
    }
    ERR_clear_error();
    if (k == NULL)
        return RP_ERR_BAD_KEY;
    *key = k;
    return RP_OK;
}

static rp_err_t alg_of(EVP_PKEY *k, rp_sig_alg_t *alg)
{
    char group[32];
    size_t group_len = 0;

    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_ED25519: *alg = RP_SIG_ED25519; return RP_OK;
    case EVP_PKEY_EC:
        if (EVP_PKEY_get_group_name(k, group, sizeof(group), &group_len) != 1) {
            ERR_clear_error();
            return RP_ERR_BAD_KEY;
        }
        if (strcmp(group, "prime256v1") != 0)
            return RP_ERR_UNSUPPORTED;
        *alg = RP_SIG_ECDSA_P256;
        return RP_OK;
    default: return RP_ERR_UNSUPPORTED;
    }
}

rp_err_t rp_pubkey_alg(const uint8_t *spki, size_t spki_len, rp_sig_alg_t *alg)
{
    EVP_PKEY *k = NULL;
    rp_err_t err;

    if (alg == NULL)
        return RP_ERR_INVALID_ARG;
    err = load_pubkey(spki, spki_len, &k);
    if (err != RP_OK)
        return err;
    err = alg_of(k, alg);
    EVP_PKEY_free(k);
    return err;
}

/*
 * The length of the DER signature at the start of sig, allowing only zero bytes after it: imgtool's
 * --pad-sig pads ECDSA signatures to 72 bytes so, and MCUboot accepts them.
 */
static rp_err_t ecdsa_der_len(const uint8_t *sig, size_t sig_len, size_t *der_len)
{
    const unsigned char *p = sig;
    ECDSA_SIG *s;

    if (sig_len > LONG_MAX)
        return RP_ERR_BAD_SIGNATURE;
    s = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
    if (s == NULL) {
        ERR_clear_error();
        return RP_ERR_BAD_SIGNATURE;
    }
    ECDSA_SIG_free(s);
    *der_len = (size_t)(p - sig);
    for (size_t i = *der_len; i < sig_len; i++)
        if (sig[i] != 0)
            return RP_ERR_BAD_SIGNATURE;
    return RP_OK;
}

static rp_err_t verify_ecdsa(EVP_PKEY *k, const uint8_t *digest, const uint8_t *sig, size_t sig_len)
{
    EVP_PKEY_CTX *ctx;
    rp_err_t err = ecdsa_der_len(sig, sig_len, &sig_len);

    /* EVP_PKEY_verify() then insists that the DER part is canonical. */
    if (err != RP_OK)
        return err;
    ctx = EVP_PKEY_CTX_new(k, NULL);
    err = RP_ERR_CRYPTO;
    if (ctx == NULL)
        return RP_ERR_CRYPTO;
    if (EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1)
        err = EVP_PKEY_verify(ctx, sig, sig_len, digest, RP_SHA256_LEN) == 1 ? RP_OK
                                                                             : RP_ERR_BAD_SIGNATURE;
    EVP_PKEY_CTX_free(ctx);
    return err;
}

static rp_err_t verify_ed25519(EVP_PKEY *k, const uint8_t *digest, const uint8_t *sig,
                               size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    rp_err_t err = RP_ERR_CRYPTO;

    if (ctx == NULL)
        return RP_ERR_CRYPTO;
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1)
        err = sig_len == RP_ED25519_SIG_LEN &&
                      EVP_DigestVerify(ctx, sig, sig_len, digest, RP_SHA256_LEN) == 1
                  ? RP_OK
                  : RP_ERR_BAD_SIGNATURE;
    EVP_MD_CTX_free(ctx);
    return err;
}

/* COSE's raw r || s as the DER OpenSSL verifies. OUT: der[0..*der_len). */
static rp_err_t es256_to_der(const uint8_t *sig, size_t sig_len, uint8_t *der, size_t cap,
                             size_t *der_len)
{
    ECDSA_SIG *s;
    BIGNUM *r, *sv;
    unsigned char *p = der;
    int n;

    if (sig_len != RP_ES256_SIG_LEN)
        return RP_ERR_BAD_SIGNATURE;
    s = ECDSA_SIG_new();
    r = BN_bin2bn(sig, RP_ES256_SIG_LEN / 2, NULL);
    sv = BN_bin2bn(sig + RP_ES256_SIG_LEN / 2, RP_ES256_SIG_LEN / 2, NULL);
    if (s == NULL || r == NULL || sv == NULL || ECDSA_SIG_set0(s, r, sv) != 1) {
        ECDSA_SIG_free(s);
        BN_free(r);
        BN_free(sv);
        return RP_ERR_CRYPTO;
    }
    n = i2d_ECDSA_SIG(s, NULL);
    if (n > 0 && (size_t)n <= cap)
        n = i2d_ECDSA_SIG(s, &p);
    ECDSA_SIG_free(s);
    if (n <= 0 || (size_t)n > cap)
        return RP_ERR_CRYPTO;
    *der_len = (size_t)n;
    return RP_OK;
}

rp_err_t rp_sig_verify(rp_sig_alg_t alg, const uint8_t *spki, size_t spki_len,
                       const uint8_t digest[RP_SHA256_LEN], const uint8_t *sig, size_t sig_len)
{
    uint8_t der[RP_ECDSA_P256_SIG_MAX];
    rp_sig_alg_t key_alg;
    EVP_PKEY *k = NULL;
    rp_err_t err;

    if (digest == NULL || sig == NULL || sig_len == 0)
        return RP_ERR_INVALID_ARG;
    if (alg == RP_SIG_ES256) {
        err = es256_to_der(sig, sig_len, der, sizeof(der), &sig_len);
        if (err != RP_OK)
            return err;
        sig = der;
        alg = RP_SIG_ECDSA_P256;
    }
    if (alg != RP_SIG_ECDSA_P256 && alg != RP_SIG_ED25519)
        return RP_ERR_UNSUPPORTED;
    err = load_pubkey(spki, spki_len, &k);
    if (err != RP_OK)
        return err;
    err = alg_of(k, &key_alg);
    if (err == RP_OK && key_alg != alg)
        err = RP_ERR_BAD_KEY;
    if (err == RP_OK)
        err = alg == RP_SIG_ECDSA_P256 ? verify_ecdsa(k, digest, sig, sig_len)
                                       : verify_ed25519(k, digest, sig, sig_len);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return err;
}

const char *rp_crypto_backend(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}
