/* The TLS stand-in key below needs EC_KEY_METHOD, deprecated in OpenSSL 3 but the one way to put
 * a custom signer under libssl's default provider. */
#define OPENSSL_SUPPRESS_DEPRECATED

/*
 * The root-of-trust front end: picks the backend, records which one a state directory holds,
 * derives the device ID, and signs through whichever OpenSSL key the backend supplies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/failpoint.h"
#include "rampart/log.h"
#include "rot_impl.h"

rp_err_t rp_rot_kind_parse(const char *name, rp_rot_kind_t *kind)
{
    if (name == NULL || kind == NULL)
        return RP_ERR_INVALID_ARG;
    if (strcmp(name, "soft") == 0)
        *kind = RP_ROT_SOFT;
    else if (strcmp(name, "tpm2") == 0)
        *kind = RP_ROT_TPM2;
    else
        return RP_ERR_UNSUPPORTED;
    return RP_OK;
}

const char *rp_rot_kind_name(rp_rot_kind_t kind)
{
    switch (kind) {
    case RP_ROT_SOFT: return "soft";
    case RP_ROT_TPM2: return "tpm2";
    default: return "none";
    }
}

static const struct rot_ops *ops_of(rp_rot_kind_t kind)
{
    switch (kind) {
    case RP_ROT_SOFT: return &rp_rot_soft_ops;
    case RP_ROT_TPM2: return &rp_rot_tpm2_ops;
    default: return NULL;
    }
}

rp_err_t rp_rot_path(char *path, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(path, cap, "%s/%s", dir, name);

    return n < 0 || (size_t)n >= cap ? RP_ERR_INVALID_ARG : RP_OK;
}

/* The kind recorded in the state directory. */
static rp_err_t recorded_kind(const char *dir, rp_rot_kind_t *kind)
{
    char path[PATH_MAX];
    uint8_t *data;
    size_t len;
    rp_err_t err = rp_rot_path(path, sizeof(path), dir, ROT_KIND_FILE);

    if (err == RP_OK)
        err = rp_read_file(path, 16, &data, &len);
    if (err == RP_OK) {
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' '))
            data[--len] = '\0';
        err = strlen((const char *)data) == len ? rp_rot_kind_parse((const char *)data, kind)
                                                : RP_ERR_UNSUPPORTED;
        free(data);
    }
    if (err == RP_ERR_TOO_LARGE || err == RP_ERR_UNSUPPORTED) {
        /* Which key file is there says which it was. */
        char key[PATH_MAX];
        const char *was = NULL;
        if (rp_rot_path(key, sizeof(key), dir, ROT_TPM2_KEY_FILE) == RP_OK &&
            access(key, F_OK) == 0)
            was = "tpm2";
        else if (rp_rot_path(key, sizeof(key), dir, ROT_SOFT_KEY_FILE) == RP_OK &&
                 access(key, F_OK) == 0)
            was = "soft";
        if (was != NULL)
            rp_log_error("%s is corrupt (%s): it should say which root of trust the device was "
                         "provisioned with, soft or tpm2. Fix: echo %s > %s (%s is there)",
                         path, err == RP_ERR_TOO_LARGE ? "larger than 16 bytes" : "neither word",
                         was, path, key);
        else
            rp_log_error("%s is corrupt (%s): it should say which root of trust the device was "
                         "provisioned with, soft or tpm2, and no identity key is there either",
                         path, err == RP_ERR_TOO_LARGE ? "larger than 16 bytes" : "neither word");
        return RP_ERR_MALFORMED;
    }
    return err;
}

rp_err_t rp_rot_provision(const rp_rot_config_t *cfg, bool *created)
{
    const struct rot_ops *ops;
    rp_atomic_file_t f;
    rp_rot_kind_t have;
    char path[PATH_MAX];
    const char *name;
    rp_err_t err;

    if (cfg == NULL || cfg->state_dir == NULL || created == NULL)
        return RP_ERR_INVALID_ARG;
    *created = false;
    ops = ops_of(cfg->kind);
    if (ops == NULL)
        return RP_ERR_INVALID_ARG;
    if (mkdir(cfg->state_dir, 0700) != 0 && errno != EEXIST)
        return RP_ERR_IO;

    err = recorded_kind(cfg->state_dir, &have);
    if (err == RP_OK) {
        /* Provisioned already: never replace an identity (that would be a new device). */
        if (have != cfg->kind) {
            rp_log_error("%s holds a %s root of trust, not %s", cfg->state_dir,
                         rp_rot_kind_name(have), rp_rot_kind_name(cfg->kind));
            return RP_ERR_EXISTS;
        }
        return RP_OK;
    }
    if (err != RP_ERR_NOT_FOUND)
        return err;

    err = ops->create(cfg);
    if (err != RP_OK)
        return err;
    /* The kind is written last: a provisioning cut short leaves no half identity behind it. */
    name = rp_rot_kind_name(cfg->kind);
    err = rp_rot_path(path, sizeof(path), cfg->state_dir, ROT_KIND_FILE);
    if (err == RP_OK)
        err = rp_atomic_begin(&f, path, 0600, 1);
    if (err == RP_OK) {
        err = rp_atomic_write(&f, name, strlen(name));
        if (err == RP_OK)
            err = rp_atomic_write(&f, "\n", 1);
        if (err == RP_OK)
            err = rp_atomic_commit(&f, 1);
        else
            rp_atomic_abort(&f);
    }
    if (err == RP_OK)
        *created = true;
    return err;
}

rp_err_t rp_rot_open(const rp_rot_config_t *cfg, rp_rot_t **out)
{
    rp_rot_kind_t kind;
    rp_rot_t *rot;
    unsigned char *p;
    int n;
    rp_err_t err;

    if (cfg == NULL || cfg->state_dir == NULL || out == NULL)
        return RP_ERR_INVALID_ARG;
    *out = NULL;
    err = recorded_kind(cfg->state_dir, &kind);
    if (err == RP_ERR_NOT_FOUND) {
        rp_log_error("%s is not provisioned: run 'rampart-agent provision' first", cfg->state_dir);
        return err;
    }
    if (err != RP_OK)
        return err;
    if (cfg->kind != 0 && cfg->kind != kind) {
        rp_log_error("%s holds a %s root of trust, not %s", cfg->state_dir, rp_rot_kind_name(kind),
                     rp_rot_kind_name(cfg->kind));
        return RP_ERR_INVALID_ARG;
    }
    rot = calloc(1, sizeof(*rot));
    if (rot == NULL)
        return RP_ERR_NO_MEMORY;
    rot->kind = kind;
    rot->ops = ops_of(kind);
    if (strlen(cfg->state_dir) >= sizeof(rot->dir)) {
        free(rot);
        return RP_ERR_INVALID_ARG;
    }
    strcpy(rot->dir, cfg->state_dir);
    err = rot->ops->open(rot, cfg);
    if (err == RP_OK) {
        n = i2d_PUBKEY(rot->pkey, NULL);
        p = rot->spki;
        if (n <= 0 || (size_t)n > sizeof(rot->spki) || i2d_PUBKEY(rot->pkey, &p) != n)
            err = RP_ERR_BAD_KEY;
        else
            rot->spki_len = (size_t)n;
        ERR_clear_error();
    }
    if (err != RP_OK) {
        rp_rot_close(rot);
        return err;
    }
    *out = rot;
    return RP_OK;
}

void rp_rot_close(rp_rot_t *rot)
{
    if (rot == NULL)
        return;
    if (rot->ops != NULL)
        rot->ops->close(rot);
    EVP_PKEY_free(rot->pkey);
    OSSL_LIB_CTX_free(rot->libctx);
    free(rot);
}

rp_rot_kind_t rp_rot_kind(const rp_rot_t *rot)
{
    return rot->kind;
}

rp_err_t rp_rot_public_key(rp_rot_t *rot, uint8_t *spki, size_t cap, size_t *len)
{
    if (rot == NULL || spki == NULL || len == NULL)
        return RP_ERR_INVALID_ARG;
    if (cap < rot->spki_len)
        return RP_ERR_BUFFER_TOO_SMALL;
    memcpy(spki, rot->spki, rot->spki_len);
    *len = rot->spki_len;
    return RP_OK;
}

rp_err_t rp_device_id_of_spki(const uint8_t *spki, size_t len, char id[RP_DEVICE_ID_SIZE])
{
    uint8_t h[RP_SHA256_LEN];
    rp_err_t err = rp_sha256(spki, len, h);

    if (err != RP_OK)
        return err;
    return rp_hex_encode(h, sizeof(h), id, RP_DEVICE_ID_SIZE);
}

bool rp_device_id_valid(const char *s)
{
    size_t i;

    if (s == NULL)
        return false;
    for (i = 0; i < RP_DEVICE_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[i] == '\0';
}

rp_err_t rp_rot_device_id(rp_rot_t *rot, char id[RP_DEVICE_ID_SIZE])
{
    if (rot == NULL || id == NULL)
        return RP_ERR_INVALID_ARG;
    return rp_device_id_of_spki(rot->spki, rot->spki_len, id);
}

EVP_PKEY *rp_rot_pkey(rp_rot_t *rot)
{
    if (rot == NULL || rot->ops->ensure_key(rot) != RP_OK)
        return NULL;
    return rot->pkey;
}

rp_err_t rp_rot_sign(rp_rot_t *rot, const uint8_t digest[RP_SHA256_LEN], uint8_t *sig, size_t cap,
                     size_t *sig_len)
{
    EVP_PKEY_CTX *ctx;
    size_t n = cap;
    int ok;
    rp_err_t err;

    if (rot == NULL || digest == NULL || sig == NULL || sig_len == NULL)
        return RP_ERR_INVALID_ARG;
    err = rot->ops->ensure_key(rot);
    if (err != RP_OK)
        return err;
    ctx = EVP_PKEY_CTX_new_from_pkey(rot->libctx, rot->pkey, rot->propq);
    ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
         EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
         EVP_PKEY_sign(ctx, sig, &n, digest, RP_SHA256_LEN) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        unsigned long e = ERR_peek_last_error();
        rp_log_debug("root of trust signing failed: %s", ERR_error_string(e, NULL));
        ERR_clear_error();
        return RP_ERR_CRYPTO;
    }
    *sig_len = n;
    return RP_OK;
}

/*
 * TLS with a TPM key: the handshake hashes many times over (a TPM has a few object slots and
 * would run out), so TLS runs in OpenSSL's default provider with a stand-in EC key whose only
 * signing operation is rp_rot_sign(): each CertificateVerify is signed inside the TPM, through the
 * tpm2 provider, and everything else runs in software. The stand-in holds only the public key.
 */
static int rot_ex_index = -1;

static ECDSA_SIG *proxy_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
                                 const BIGNUM *r, EC_KEY *eckey)
{
    rp_rot_t *rot = EC_KEY_get_ex_data(eckey, rot_ex_index);
    uint8_t der[RP_ECDSA_P256_SIG_MAX];
    const unsigned char *p = der;
    size_t len;

    (void)kinv;
    (void)r;
    if (rot == NULL || dlen != RP_SHA256_LEN ||
        rp_rot_sign(rot, dgst, der, sizeof(der), &len) != RP_OK)
        return NULL;
    return d2i_ECDSA_SIG(NULL, &p, (long)len);
}

static EVP_PKEY *proxy_key(rp_rot_t *rot)
{
    static EC_KEY_METHOD *method;
    const unsigned char *p = rot->spki;
    EVP_PKEY *pub = NULL, *proxy = NULL;
    EC_KEY *ec = NULL;
    int (*sign)(int, const unsigned char *, int, unsigned char *, unsigned int *, const BIGNUM *,
                const BIGNUM *, EC_KEY *);
    int (*sign_setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **);

    if (method == NULL) {
        rot_ex_index = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        method = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
        if (method == NULL || rot_ex_index < 0)
            return NULL;
        EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), &sign, &sign_setup, NULL);
        EC_KEY_METHOD_set_sign(method, sign, sign_setup, proxy_sign_sig);
    }
    pub = d2i_PUBKEY(NULL, &p, (long)rot->spki_len);
    ec = pub != NULL ? EVP_PKEY_get1_EC_KEY(pub) : NULL;
    if (ec != NULL && EC_KEY_set_method(ec, method) == 1 &&
        EC_KEY_set_ex_data(ec, rot_ex_index, rot) == 1 && (proxy = EVP_PKEY_new()) != NULL &&
        EVP_PKEY_assign_EC_KEY(proxy, ec) == 1)
        ec = NULL; /* now owned by proxy */
    else {
        EVP_PKEY_free(proxy);
        proxy = NULL;
    }
    EC_KEY_free(ec);
    EVP_PKEY_free(pub);
    return proxy;
}

int rp_rot_ssl_ctx_use(rp_rot_t *rot, SSL_CTX *ctx, const char *cert_chain_file)
{
    EVP_PKEY *key;
    int ok;

    if (rot == NULL || ctx == NULL || rot->ops->ensure_key(rot) != RP_OK)
        return 0;
    key = rot->libctx != NULL ? proxy_key(rot) : rot->pkey;
    ok = key != NULL && SSL_CTX_use_certificate_chain_file(ctx, cert_chain_file) == 1 &&
         SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    if (!ok) {
        rp_log_error("TLS with the device key: %s", ERR_error_string(ERR_peek_last_error(), NULL));
        ERR_clear_error();
    }
    if (key != rot->pkey)
        EVP_PKEY_free(key); /* the SSL_CTX keeps its own reference */
    return ok ? 1 : 0;
}

SSL_CTX *rp_rot_ssl_ctx(rp_rot_t *rot, const SSL_METHOD *method, const char *cert_chain_file)
{
    SSL_CTX *ctx = SSL_CTX_new(method);

    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        rp_rot_ssl_ctx_use(rot, ctx, cert_chain_file) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

rp_err_t rp_rot_counter_read(rp_rot_t *rot, rp_rot_counter_t c, uint64_t *value)
{
    if (rot == NULL || value == NULL || c >= RP_ROT_COUNTER_COUNT)
        return RP_ERR_INVALID_ARG;
    return rot->ops->counter_read(rot, c, value);
}

rp_err_t rp_rot_counter_increment(rp_rot_t *rot, rp_rot_counter_t c, uint64_t *value)
{
    uint64_t ignored;

    if (rot == NULL || c >= RP_ROT_COUNTER_COUNT)
        return RP_ERR_INVALID_ARG;
    return rot->ops->counter_increment(rot, c, value != NULL ? value : &ignored);
}

uint32_t rp_rot_seccnt_max(rp_rot_t *rot)
{
    return rp_rot_kind(rot) == RP_ROT_TPM2 ? RP_ROT_TPM2_SECCNT_MAX : UINT32_MAX;
}

rp_err_t rp_rot_seccnt_read(rp_rot_t *rot, unsigned i, uint32_t *value)
{
    if (rot == NULL || value == NULL || i >= RP_ROT_SECCNT_COUNT)
        return RP_ERR_INVALID_ARG;
    return rot->ops->seccnt_read(rot, i, value);
}

rp_err_t rp_rot_seccnt_advance(rp_rot_t *rot, unsigned i, uint32_t value)
{
    uint32_t cur;
    rp_err_t err;

    if (rot == NULL || i >= RP_ROT_SECCNT_COUNT)
        return RP_ERR_INVALID_ARG;
    err = rot->ops->seccnt_read(rot, i, &cur);
    if (err != RP_OK || cur >= value)
        return err;
    rp_failpoint("root of trust security counter");
    return rot->ops->seccnt_advance(rot, i, value);
}

rp_err_t rp_rot_measure(rp_rot_t *rot, const uint8_t digest[RP_SHA256_LEN],
                        uint8_t reg[RP_SHA256_LEN])
{
    uint8_t ignored[RP_SHA256_LEN];

    if (rot == NULL || digest == NULL)
        return RP_ERR_INVALID_ARG;
    return rot->ops->extend(rot, digest, reg != NULL ? reg : ignored);
}

rp_err_t rp_rot_measurements(rp_rot_t *rot, uint8_t reg[RP_SHA256_LEN])
{
    if (rot == NULL || reg == NULL)
        return RP_ERR_INVALID_ARG;
    return rot->ops->read_register(rot, reg);
}

rp_err_t rp_rot_reclaim(rp_rot_t *rot)
{
    if (rot == NULL)
        return RP_ERR_INVALID_ARG;
    return rot->ops->reclaim != NULL ? rot->ops->reclaim(rot) : RP_OK;
}

void rp_rot_idle(rp_rot_t *rot)
{
    if (rot != NULL && rot->ops->idle != NULL)
        rot->ops->idle(rot);
}

rp_err_t rp_rot_mac(rp_rot_t *rot, const void *data, size_t len, uint8_t mac[RP_SHA256_LEN])
{
    if (rot == NULL || (data == NULL && len > 0) || mac == NULL || len > RP_ROT_MAC_DATA_MAX)
        return RP_ERR_INVALID_ARG;
    return rot->ops->mac(rot, data, len, mac);
}
