/*
 * The remote signing key (remote_key.h) as a small OpenSSL 3 provider built into the program: a
 * key manager for the public half of a P-256 key, and an ECDSA signature whose only private-key
 * operation is the caller's callback, given a SHA-256 digest.
 *
 * Why a provider in a library context of its own: added to the default context, a second "EC"
 * key manager and "ECDSA" signature would take part in every fetch the process makes (image and
 * evidence verification, libcurl's TLS) and could be picked for keys that are not remote. In its
 * own context only keys made by rp_remote_key_new() reach it, and libssl still finds it from any
 * SSL_CTX: when the signature it fetches in its own context cannot take the key (this key refuses
 * to export a private part, having none), OpenSSL falls back to the signature of the provider the
 * key belongs to. The context also holds the default provider, for the SHA-256 the signature
 * computes and the encoders that write the public key into a CSR.
 */
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/proverr.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "rampart/log.h"
#include "rampart/remote_key.h"

#define RK_PROVIDER "rampart-remote-key"
#define RK_PROPS "provider=" RK_PROVIDER
#define RK_DEFAULT "provider=default"
#define RK_GROUP "prime256v1"
#define RK_DIGEST "SHA2-256"
/* The callback travels into the key manager's import as an octet string holding this struct;
 * only rp_remote_key_new() passes it, into a library context no other code can reach. */
#define RK_PARAM_SIGNER "rampart-remote-signer"
#define RK_POINT_MAX 65 /* an uncompressed P-256 point */

typedef struct rk_signer {
    rp_remote_sign_fn sign;             /* the digest mode, or */
    rp_remote_sign_tls13_fn sign_tls13; /* the TLS 1.3 mode (exactly one is set) */
    void *ctx;
} rk_signer_t;

/* The key manager's key data. */
typedef struct rk_key {
    EVP_PKEY *pub;      /* the public key, a default-provider key in rk_libctx */
    rk_signer_t signer; /* sign == NULL: a public key only (imported to compare with another) */
} rk_key_t;

/* The signature's context. */
typedef struct rk_sig {
    rk_key_t *key;
    EVP_MD_CTX *md; /* digest-sign: the running SHA-256 of what is signed */
    /* digest-sign in the TLS 1.3 mode: what is signed, whole (over: it was longer than any
     * CertificateVerify content, so it is not one) */
    uint8_t content[RP_TLS13_CV_CONTENT_MAX];
    size_t content_len;
    int content_over;
} rk_sig_t;

static OSSL_LIB_CTX *rk_libctx;
static CRYPTO_ONCE rk_once = CRYPTO_ONCE_STATIC_INIT;
static int rk_ready;

/* ---- the key manager ------------------------------------------------------------------------ */

static void *rk_key_new(void *provctx)
{
    (void)provctx;
    return OPENSSL_zalloc(sizeof(rk_key_t));
}

static void rk_key_free(void *keydata)
{
    rk_key_t *k = keydata;

    if (k == NULL)
        return;
    EVP_PKEY_free(k->pub);
    OPENSSL_free(k);
}

static void *rk_key_dup(const void *keydata, int selection)
{
    const rk_key_t *from = keydata;
    rk_key_t *k;

    if (from == NULL || from->pub == NULL || (k = OPENSSL_zalloc(sizeof(*k))) == NULL)
        return NULL;
    if (EVP_PKEY_up_ref(from->pub) != 1) {
        OPENSSL_free(k);
        return NULL;
    }
    k->pub = from->pub; /* never changed after import: shared */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        k->signer = from->signer;
    return k;
}

static int rk_key_has(const void *keydata, int selection)
{
    const rk_key_t *k = keydata;
    int ok = k != NULL;

    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0 ||
        (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        ok = ok && k->pub != NULL;
    /* "Has a private key" means: can sign, through the callback. */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        ok = ok && (k->signer.sign != NULL || k->signer.sign_tls13 != NULL);
    return ok;
}

static int rk_key_match(const void *keydata1, const void *keydata2, int selection)
{
    const rk_key_t *a = keydata1, *b = keydata2;

    if (a == NULL || b == NULL || a->pub == NULL || b->pub == NULL)
        return 0;
    /* Both are P-256 (import refuses anything else): the parameters always match. */
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return 1;
    return EVP_PKEY_eq(a->pub, b->pub) == 1;
}

static int is_p256(EVP_PKEY *pub)
{
    char group[32];
    size_t len = 0;

    return EVP_PKEY_is_a(pub, "EC") &&
           EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                          &len) == 1 &&
           strcmp(group, RK_GROUP) == 0;
}

/* A public P-256 key in rk_libctx from a group name and an encoded point, or NULL. */
static EVP_PKEY *public_key(const char *group, const uint8_t *point, size_t len)
{
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx;
    EVP_PKEY *pub = NULL;

    if (strcmp(group, RK_GROUP) != 0) {
        ERR_raise_data(ERR_LIB_PROV, PROV_R_INVALID_CURVE, "a remote key is a P-256 key, not %s",
                       group);
        return NULL;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(rk_libctx, "EC", RK_DEFAULT);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pub);
        pub = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pub;
}

static int rk_key_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    rk_key_t *k = keydata;
    const OSSL_PARAM *p;
    const char *group = NULL;
    const void *point = NULL, *signer = NULL;
    size_t point_len = 0, signer_len = 0;

    if (k == NULL || k->pub != NULL || (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0)
        return 0;
    /* It never holds a private key: one offered is refused, not dropped. */
    if (OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) != NULL) {
        ERR_raise_data(ERR_LIB_PROV, PROV_R_NOT_SUPPORTED, "a remote key holds no private key");
        return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    if (p == NULL || OSSL_PARAM_get_utf8_string_ptr(p, &group) != 1)
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY);
    if (p == NULL || OSSL_PARAM_get_octet_string_ptr(p, &point, &point_len) != 1)
        return 0;
    p = OSSL_PARAM_locate_const(params, RK_PARAM_SIGNER);
    if (p != NULL && (OSSL_PARAM_get_octet_string_ptr(p, &signer, &signer_len) != 1 ||
                      signer_len != sizeof(rk_signer_t)))
        return 0;
    k->pub = public_key(group, point, point_len);
    if (k->pub == NULL)
        return 0;
    if (signer != NULL)
        memcpy(&k->signer, signer, sizeof(k->signer));
    return 1;
}

static const OSSL_PARAM rk_key_import_params[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_octet_string(RK_PARAM_SIGNER, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rk_key_import_types(int selection)
{
    (void)selection;
    return rk_key_import_params;
}

static int rk_key_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    rk_key_t *k = keydata;
    OSSL_PARAM *params = NULL;
    int ok;

    /*
     * Quietly, with no error queued: OpenSSL asks for the private part when it tries a signature
     * of another provider first, and the answer "none" is what sends it on to ours.
     */
    if (k == NULL || k->pub == NULL || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return 0;
    if (EVP_PKEY_todata(k->pub,
                        (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0 ? EVP_PKEY_PUBLIC_KEY
                                                                          : EVP_PKEY_KEY_PARAMETERS,
                        &params) != 1)
        return 0;
    ok = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

static const OSSL_PARAM rk_key_export_params[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rk_key_export_types(int selection)
{
    (void)selection;
    return rk_key_export_params;
}

/* The public key's own answer to one parameter (its point, in either encoding). */
static int pub_param(const rk_key_t *k, OSSL_PARAM *p)
{
    OSSL_PARAM one[2] = {*p, OSSL_PARAM_END};

    if (EVP_PKEY_get_params(k->pub, one) != 1)
        return 0;
    p->return_size = one[0].return_size;
    return 1;
}

/* What the public key answers for itself; libssl asks the point format of a TLS 1.2 key. */
static const char *const rk_pub_params[] = {
    OSSL_PKEY_PARAM_PUB_KEY,
    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
    OSSL_PKEY_PARAM_EC_ENCODING,
};

static int rk_key_get_params(void *keydata, OSSL_PARAM params[])
{
    rk_key_t *k = keydata;
    OSSL_PARAM *p;
    size_t i;

    if (k == NULL || k->pub == NULL)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_BITS)) != NULL &&
        OSSL_PARAM_set_int(p, 256) != 1)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_SECURITY_BITS)) != NULL &&
        OSSL_PARAM_set_int(p, 128) != 1)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MAX_SIZE)) != NULL &&
        OSSL_PARAM_set_int(p, RP_ECDSA_P256_SIG_MAX) != 1)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_GROUP_NAME)) != NULL &&
        OSSL_PARAM_set_utf8_string(p, RK_GROUP) != 1)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST)) != NULL &&
        OSSL_PARAM_set_utf8_string(p, RK_DIGEST) != 1)
        return 0;
    for (i = 0; i < sizeof(rk_pub_params) / sizeof(rk_pub_params[0]); i++)
        if ((p = OSSL_PARAM_locate(params, rk_pub_params[i])) != NULL && !pub_param(k, p))
            return 0;
    return 1;
}

static const OSSL_PARAM rk_key_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rk_key_gettable_params(void *provctx)
{
    (void)provctx;
    return rk_key_gettable;
}

static const char *rk_key_query_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static const OSSL_DISPATCH rk_keymgmt_functions[] = {
    {OSSL_FUNC_KEYMGMT_NEW,                  (void (*)(void))rk_key_new                 },
    {OSSL_FUNC_KEYMGMT_FREE,                 (void (*)(void))rk_key_free                },
    {OSSL_FUNC_KEYMGMT_DUP,                  (void (*)(void))rk_key_dup                 },
    {OSSL_FUNC_KEYMGMT_HAS,                  (void (*)(void))rk_key_has                 },
    {OSSL_FUNC_KEYMGMT_MATCH,                (void (*)(void))rk_key_match               },
    {OSSL_FUNC_KEYMGMT_IMPORT,               (void (*)(void))rk_key_import              },
    {OSSL_FUNC_KEYMGMT_IMPORT_TYPES,         (void (*)(void))rk_key_import_types        },
    {OSSL_FUNC_KEYMGMT_EXPORT,               (void (*)(void))rk_key_export              },
    {OSSL_FUNC_KEYMGMT_EXPORT_TYPES,         (void (*)(void))rk_key_export_types        },
    {OSSL_FUNC_KEYMGMT_GET_PARAMS,           (void (*)(void))rk_key_get_params          },
    {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,      (void (*)(void))rk_key_gettable_params     },
    {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))rk_key_query_operation_name},
    {0,                                      NULL                                       },
};

/* ---- the signature -------------------------------------------------------------------------- */

static void *rk_sig_newctx(void *provctx, const char *propq)
{
    (void)provctx;
    (void)propq;
    return OPENSSL_zalloc(sizeof(rk_sig_t));
}

static void rk_sig_freectx(void *ctx)
{
    rk_sig_t *s = ctx;

    if (s == NULL)
        return;
    EVP_MD_CTX_free(s->md);
    OPENSSL_free(s);
}

static void *rk_sig_dupctx(void *ctx)
{
    rk_sig_t *s = ctx, *d = OPENSSL_zalloc(sizeof(rk_sig_t));

    if (d == NULL)
        return NULL;
    d->key = s->key;
    memcpy(d->content, s->content, s->content_len);
    d->content_len = s->content_len;
    d->content_over = s->content_over;
    if (s->md != NULL &&
        ((d->md = EVP_MD_CTX_new()) == NULL || EVP_MD_CTX_copy_ex(d->md, s->md) != 1)) {
        rk_sig_freectx(d);
        return NULL;
    }
    return d;
}

/* Whether mdname names SHA-256 (by any of its names); raises the refusal when not. */
static int digest_is_sha256(const char *mdname)
{
    EVP_MD *md;
    int ok;

    if (mdname == NULL)
        return 1;   /* the key's default: SHA-256 */
    ERR_set_mark(); /* a name no provider knows is refused below like any other */
    md = EVP_MD_fetch(rk_libctx, mdname, RK_DEFAULT);
    ok = md != NULL && EVP_MD_is_a(md, RK_DIGEST);
    EVP_MD_free(md);
    ERR_pop_to_mark();
    if (!ok) {
        ERR_raise_data(ERR_LIB_PROV, PROV_R_INVALID_DIGEST,
                       "a remote key signs SHA-256 digests only, not %s", mdname);
        rp_log_debug("remote key: refused a %s signature: SHA-256 only", mdname);
    }
    return ok;
}

static int rk_sig_set_ctx_params(void *ctx, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    const char *mdname = NULL;

    (void)ctx;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && (OSSL_PARAM_get_utf8_string_ptr(p, &mdname) != 1 || !digest_is_sha256(mdname)))
        return 0;
    return 1;
}

static const OSSL_PARAM rk_sig_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rk_sig_settable_ctx_params(void *ctx, void *provctx)
{
    (void)ctx;
    (void)provctx;
    return rk_sig_settable;
}

static int rk_sig_get_ctx_params(void *ctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;
    X509_ALGOR *alg;
    unsigned char *der = NULL;
    int len, ok = 1;

    (void)ctx;
    /* The AlgorithmIdentifier a CSR or certificate signed with this key names: ecdsa-with-SHA256.
     */
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID)) != NULL) {
        alg = X509_ALGOR_new();
        ok = alg != NULL &&
             X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL) == 1 &&
             (len = i2d_X509_ALGOR(alg, &der)) > 0 &&
             OSSL_PARAM_set_octet_string(p, der, (size_t)len) == 1;
        OPENSSL_free(der);
        X509_ALGOR_free(alg);
    }
    if (ok && (p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL)
        ok = OSSL_PARAM_set_utf8_string(p, RK_DIGEST) == 1;
    return ok;
}

static const OSSL_PARAM rk_sig_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *rk_sig_gettable_ctx_params(void *ctx, void *provctx)
{
    (void)ctx;
    (void)provctx;
    return rk_sig_gettable;
}

static int use_key(rk_sig_t *s, void *keydata)
{
    rk_key_t *k = keydata;

    if (k == NULL || k->pub == NULL || (k->signer.sign == NULL && k->signer.sign_tls13 == NULL)) {
        ERR_raise_data(ERR_LIB_PROV, PROV_R_NOT_A_PRIVATE_KEY,
                       "this remote key has no signer (a public key only)");
        return 0;
    }
    s->key = k;
    return 1;
}

static int rk_sig_sign_init(void *ctx, void *keydata, const OSSL_PARAM params[])
{
    return use_key(ctx, keydata) && rk_sig_set_ctx_params(ctx, params);
}

/*
 * One signature by the callback, checked: a DER ECDSA signature that verifies over digest with
 * the public key, so a confused or hostile signer cannot slip anything else into a handshake.
 * In the TLS 1.3 mode content[0..content_len) is what digest hashes (NULL: a bare digest, which
 * that mode refuses), and the callback gets its side and transcript hash.
 */
static int sign_digest(rk_sig_t *s, const uint8_t digest[RP_SHA256_LEN], const uint8_t *content,
                       size_t content_len, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    uint8_t der[RP_ECDSA_P256_SIG_MAX], hash[RP_TLS13_HASH_MAX];
    size_t len = 0, hash_len = 0;
    rp_tls13_side_t side;
    EVP_PKEY_CTX *vctx;
    rp_err_t err;
    int ok;

    if (s->key->signer.sign_tls13 != NULL) {
        if (content == NULL ||
            rp_tls13_cv_parse(content, content_len, &side, hash, &hash_len) != RP_OK) {
            rp_log_warn("remote key: refused to sign: a TLS 1.3 key signs TLS 1.3 "
                        "CertificateVerify messages only");
            ERR_raise_data(ERR_LIB_PROV, PROV_R_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE,
                           "a TLS 1.3 remote key signs only a TLS 1.3 CertificateVerify (not "
                           "TLS 1.2, a CSR, a certificate or a bare digest)");
            return 0;
        }
        err = s->key->signer.sign_tls13(s->key->signer.ctx, side, hash, hash_len, der, sizeof(der),
                                        &len);
    } else {
        err = s->key->signer.sign(s->key->signer.ctx, digest, der, sizeof(der), &len);
    }
    if (err != RP_OK) {
        rp_log_error("remote key: the signer refused: %s", rp_strerror(err));
        ERR_raise_data(ERR_LIB_PROV, PROV_R_FAILED_TO_SIGN, "the remote signer failed: %s",
                       rp_strerror(err));
        return 0;
    }
    ERR_set_mark();
    vctx =
        len <= sizeof(der) ? EVP_PKEY_CTX_new_from_pkey(rk_libctx, s->key->pub, RK_DEFAULT) : NULL;
    ok = vctx != NULL && EVP_PKEY_verify_init(vctx) == 1 &&
         EVP_PKEY_verify(vctx, der, len, digest, RP_SHA256_LEN) == 1;
    EVP_PKEY_CTX_free(vctx);
    ERR_pop_to_mark();
    if (!ok) {
        rp_log_error("remote key: the signer's signature does not verify with the key");
        ERR_raise_data(ERR_LIB_PROV, PROV_R_FAILED_TO_SIGN,
                       "the remote signer's signature does not verify with the public key");
        return 0;
    }
    if (len > sigsize) {
        ERR_raise(ERR_LIB_PROV, PROV_R_WRONG_OUTPUT_BUFFER_SIZE);
        return 0;
    }
    memcpy(sig, der, len);
    *siglen = len;
    return 1;
}

static int rk_sig_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                       const unsigned char *tbs, size_t tbslen)
{
    if (sig == NULL) {
        *siglen = RP_ECDSA_P256_SIG_MAX;
        return 1;
    }
    if (tbslen != RP_SHA256_LEN) {
        ERR_raise_data(ERR_LIB_PROV, PROV_R_INVALID_DIGEST_LENGTH,
                       "a remote key signs 32-byte SHA-256 digests only, not %zu bytes", tbslen);
        return 0;
    }
    return sign_digest(ctx, tbs, NULL, 0, sig, siglen, sigsize);
}

static int rk_sig_digest_sign_init(void *ctx, const char *mdname, void *keydata,
                                   const OSSL_PARAM params[])
{
    rk_sig_t *s = ctx;
    EVP_MD *md;
    int ok;

    if (!use_key(s, keydata) || !digest_is_sha256(mdname) || !rk_sig_set_ctx_params(s, params))
        return 0;
    if (s->md == NULL && (s->md = EVP_MD_CTX_new()) == NULL)
        return 0;
    s->content_len = 0;
    s->content_over = 0;
    md = EVP_MD_fetch(rk_libctx, RK_DIGEST, RK_DEFAULT);
    ok = md != NULL && EVP_DigestInit_ex2(s->md, md, NULL) == 1;
    EVP_MD_free(md);
    return ok;
}

static int rk_sig_digest_sign_update(void *ctx, const unsigned char *data, size_t len)
{
    rk_sig_t *s = ctx;

    if (len > sizeof(s->content) - s->content_len) {
        s->content_over = 1;
    } else if (len > 0) {
        memcpy(s->content + s->content_len, data, len);
        s->content_len += len;
    }
    return s->md != NULL && EVP_DigestUpdate(s->md, data, len) == 1;
}

static int rk_sig_digest_sign_final(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    rk_sig_t *s = ctx;
    uint8_t digest[RP_SHA256_LEN];
    unsigned int n = 0;

    if (sig == NULL) {
        *siglen = RP_ECDSA_P256_SIG_MAX;
        return 1;
    }
    if (s->md == NULL || EVP_DigestFinal_ex(s->md, digest, &n) != 1 || n != RP_SHA256_LEN)
        return 0;
    return sign_digest(s, digest, s->content_over ? NULL : s->content, s->content_len, sig, siglen,
                       sigsize);
}

static const OSSL_DISPATCH rk_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX,              (void (*)(void))rk_sig_newctx             },
    {OSSL_FUNC_SIGNATURE_FREECTX,             (void (*)(void))rk_sig_freectx            },
    {OSSL_FUNC_SIGNATURE_DUPCTX,              (void (*)(void))rk_sig_dupctx             },
    {OSSL_FUNC_SIGNATURE_SIGN_INIT,           (void (*)(void))rk_sig_sign_init          },
    {OSSL_FUNC_SIGNATURE_SIGN,                (void (*)(void))rk_sig_sign               },
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,    (void (*)(void))rk_sig_digest_sign_init   },
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,  (void (*)(void))rk_sig_digest_sign_update },
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,   (void (*)(void))rk_sig_digest_sign_final  },
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,      (void (*)(void))rk_sig_get_ctx_params     },
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))rk_sig_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,      (void (*)(void))rk_sig_set_ctx_params     },
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))rk_sig_settable_ctx_params},
    {0,                                       NULL                                      },
};

/* ---- the provider --------------------------------------------------------------------------- */

static const OSSL_ALGORITHM rk_keymgmt[] = {
    {"EC:id-ecPublicKey:1.2.840.10045.2.1", RK_PROPS, rk_keymgmt_functions,
     "P-256 public key of a remote signer"                                      },
    {NULL,                                  NULL,     NULL,                 NULL},
};

static const OSSL_ALGORITHM rk_signature[] = {
    {"ECDSA", RK_PROPS, rk_signature_functions, "ECDSA P-256 with SHA-256 by a remote signer"},
    {NULL,    NULL,     NULL,                   NULL                                         },
};

static const OSSL_ALGORITHM *rk_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT: return rk_keymgmt;
    case OSSL_OP_SIGNATURE: return rk_signature;
    default: return NULL;
    }
}

static const OSSL_DISPATCH rk_provider_functions[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))rk_query},
    {0,                                  NULL                    },
};

static int rk_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                            const OSSL_DISPATCH **out, void **provctx)
{
    (void)handle;
    (void)in;
    *out = rk_provider_functions;
    *provctx = NULL;
    return 1;
}

/* The library context, made once per process and kept for its life (keys refer to it). */
static void rk_init(void)
{
    rk_libctx = OSSL_LIB_CTX_new();
    if (rk_libctx == NULL ||
        OSSL_PROVIDER_add_builtin(rk_libctx, RK_PROVIDER, rk_provider_init) != 1 ||
        OSSL_PROVIDER_load(rk_libctx, RK_PROVIDER) == NULL ||
        OSSL_PROVIDER_load(rk_libctx, "default") == NULL)
        return;
    rk_ready = 1;
}

static EVP_PKEY *key_new(const uint8_t *spki_der, size_t len, rk_signer_t signer)
{
    const unsigned char *p = spki_der;
    uint8_t point[RK_POINT_MAX];
    size_t point_len = 0;
    EVP_PKEY *pub = NULL, *key = NULL;
    EVP_PKEY_CTX *kctx = NULL;
    OSSL_PARAM params[4];

    if (spki_der == NULL || len == 0 || len > RP_PUBKEY_DER_MAX ||
        (signer.sign == NULL) == (signer.sign_tls13 == NULL)) {
        rp_log_error("remote key: no public key or no signer");
        return NULL;
    }
    if (CRYPTO_THREAD_run_once(&rk_once, rk_init) != 1 || !rk_ready) {
        rp_log_error("remote key: cannot set up its OpenSSL provider");
        return NULL;
    }
    ERR_set_mark(); /* what went wrong is logged; the caller's error queue is left as it was */
    pub = d2i_PUBKEY_ex(NULL, &p, (long)len, rk_libctx, RK_DEFAULT);
    if (pub == NULL || p != spki_der + len || !is_p256(pub) ||
        EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                        &point_len) != 1) {
        rp_log_error("remote key: the public key is not a P-256 SubjectPublicKeyInfo");
        goto out;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, RK_GROUP, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, point_len);
    params[2] = OSSL_PARAM_construct_octet_string(RK_PARAM_SIGNER, &signer, sizeof(signer));
    params[3] = OSSL_PARAM_construct_end();
    kctx = EVP_PKEY_CTX_new_from_name(rk_libctx, "EC", RK_PROPS);
    if (kctx == NULL || EVP_PKEY_fromdata_init(kctx) != 1 ||
        EVP_PKEY_fromdata(kctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        rp_log_error("remote key: cannot make the key: %s",
                     ERR_error_string(ERR_peek_last_error(), NULL));
        EVP_PKEY_free(key);
        key = NULL;
    }
out:
    ERR_pop_to_mark();
    EVP_PKEY_CTX_free(kctx);
    EVP_PKEY_free(pub);
    return key;
}

EVP_PKEY *rp_remote_key_new(const uint8_t *spki_der, size_t len, rp_remote_sign_fn sign, void *ctx)
{
    rk_signer_t signer = {sign, NULL, ctx};

    return key_new(spki_der, len, signer);
}

EVP_PKEY *rp_remote_key_new_tls13(const uint8_t *spki_der, size_t len, rp_remote_sign_tls13_fn sign,
                                  void *ctx)
{
    rk_signer_t signer = {NULL, sign, ctx};

    return key_new(spki_der, len, signer);
}
