/*
 * Host-side key handling on OpenSSL 3.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "rampart/file.h"
#include "rampart/key.h"

rp_err_t rp_key_type_parse(const char *name, rp_sig_alg_t *alg)
{
    if (name == NULL || alg == NULL)
        return RP_ERR_INVALID_ARG;
    if (strcmp(name, "ecdsa-p256") == 0)
        *alg = RP_SIG_ECDSA_P256;
    else if (strcmp(name, "ed25519") == 0)
        *alg = RP_SIG_ED25519;
    else
        return RP_ERR_UNSUPPORTED;
    return RP_OK;
}

const char *rp_key_type_name(rp_sig_alg_t alg)
{
    switch (alg) {
    case RP_SIG_ECDSA_P256: return "ecdsa-p256";
    case RP_SIG_ED25519: return "ed25519";
    default: return "unknown";
    }
}

rp_err_t rp_key_generate(rp_sig_alg_t alg, EVP_PKEY **key)
{
    EVP_PKEY *k = NULL;

    switch (alg) {
    case RP_SIG_ECDSA_P256: k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
    case RP_SIG_ED25519: k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
    default: return RP_ERR_UNSUPPORTED;
    }
    if (k == NULL) {
        ERR_clear_error();
        return RP_ERR_CRYPTO;
    }
    *key = k;
    return RP_OK;
}

rp_err_t rp_key_alg(EVP_PKEY *key, rp_sig_alg_t *alg)
{
    char group[32];
    size_t len;

    if (key == NULL || alg == NULL)
        return RP_ERR_INVALID_ARG;
    if (EVP_PKEY_is_a(key, "ED25519")) {
        *alg = RP_SIG_ED25519;
        return RP_OK;
    }
    if (EVP_PKEY_is_a(key, "EC") &&
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) == 1 &&
        strcmp(group, "prime256v1") == 0) {
        *alg = RP_SIG_ECDSA_P256;
        return RP_OK;
    }
    ERR_clear_error();
    return RP_ERR_UNSUPPORTED;
}

int rp_pem_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

rp_err_t rp_key_load(const char *path, EVP_PKEY **key, bool *is_private)
{
    uint8_t *pem = NULL;
    size_t len;
    EVP_PKEY *k;
    rp_sig_alg_t alg;
    BIO *bio;
    rp_err_t err;

    err = rp_read_file(path, RP_KEY_FILE_MAX, &pem, &len);
    if (err != RP_OK)
        return err == RP_ERR_TOO_LARGE ? RP_ERR_BAD_KEY : err;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        OPENSSL_cleanse(pem, len);
        free(pem);
        return RP_ERR_NO_MEMORY;
    }
    *is_private = true;
    k = PEM_read_bio_PrivateKey(bio, NULL, rp_pem_no_passphrase, NULL);
    if (k == NULL) {
        *is_private = false;
        (void)BIO_reset(bio);
        k = PEM_read_bio_PUBKEY(bio, NULL, rp_pem_no_passphrase, NULL);
    }
    BIO_free(bio);
    OPENSSL_cleanse(pem, len); /* it may have held a private key */
    free(pem);
    ERR_clear_error();
    if (k == NULL)
        return RP_ERR_BAD_KEY;
    err = rp_key_alg(k, &alg);
    if (err != RP_OK) {
        EVP_PKEY_free(k);
        return err;
    }
    *key = k;
    return RP_OK;
}

/* Write what write_fn puts in a memory BIO to path, atomically. */
static rp_err_t save_pem(EVP_PKEY *key, const char *path, mode_t mode, bool exclusive,
                         int (*write_fn)(BIO *, EVP_PKEY *))
{
    rp_atomic_file_t f;
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data;
    long len;
    rp_err_t err;

    if (bio == NULL)
        return RP_ERR_NO_MEMORY;
    if (write_fn(bio, key) != 1) {
        BIO_free(bio);
        ERR_clear_error();
        return RP_ERR_CRYPTO;
    }
    len = BIO_get_mem_data(bio, &data);
    err = rp_atomic_begin(&f, path, mode, exclusive);
    if (err == RP_OK)
        err = rp_atomic_write(&f, data, (size_t)len);
    if (err == RP_OK)
        err = rp_atomic_commit(&f, exclusive);
    else
        rp_atomic_abort(&f);
    BIO_free(bio); /* a secure-heap BIO: cleansed on free */
    return err;
}

static int write_private(BIO *bio, EVP_PKEY *key)
{
    return PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
}

static int write_public(BIO *bio, EVP_PKEY *key)
{
    return PEM_write_bio_PUBKEY(bio, key);
}

rp_err_t rp_key_save_private(EVP_PKEY *key, const char *path, bool force)
{
    return save_pem(key, path, 0600, !force, write_private);
}

rp_err_t rp_key_save_public(EVP_PKEY *key, const char *path, bool exclusive)
{
    return save_pem(key, path, 0644, exclusive, write_public);
}

rp_err_t rp_key_spki(EVP_PKEY *key, uint8_t *out, size_t cap, size_t *len)
{
    unsigned char *p = out;
    int n = i2d_PUBKEY(key, NULL);

    if (n <= 0) {
        ERR_clear_error();
        return RP_ERR_BAD_KEY;
    }
    if ((size_t)n > cap)
        return RP_ERR_BUFFER_TOO_SMALL;
    if (i2d_PUBKEY(key, &p) != n) {
        ERR_clear_error();
        return RP_ERR_CRYPTO;
    }
    *len = (size_t)n;
    return RP_OK;
}

rp_err_t rp_key_sign_digest(EVP_PKEY *key, const uint8_t digest[RP_SHA256_LEN], uint8_t *sig,
                            size_t cap, size_t *sig_len)
{
    rp_sig_alg_t alg;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *mctx = NULL;
    size_t n = cap;
    int ok = 0;
    rp_err_t err = rp_key_alg(key, &alg);

    if (err != RP_OK)
        return err;
    if (alg == RP_SIG_ECDSA_P256) {
        pctx = EVP_PKEY_CTX_new(key, NULL);
        ok = pctx != NULL && EVP_PKEY_sign_init(pctx) == 1 &&
             EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) == 1 &&
             EVP_PKEY_sign(pctx, NULL, &n, digest, RP_SHA256_LEN) == 1 && n <= cap &&
             EVP_PKEY_sign(pctx, sig, &n, digest, RP_SHA256_LEN) == 1;
        EVP_PKEY_CTX_free(pctx);
    } else {
        mctx = EVP_MD_CTX_new();
        ok = mctx != NULL && cap >= RP_ED25519_SIG_LEN &&
             EVP_DigestSignInit(mctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(mctx, sig, &n, digest, RP_SHA256_LEN) == 1;
        EVP_MD_CTX_free(mctx);
    }
    ERR_clear_error();
    if (!ok)
        return n > cap ? RP_ERR_BUFFER_TOO_SMALL : RP_ERR_CRYPTO;
    *sig_len = n;
    return RP_OK;
}
