/*
 * The remote signing key: OpenSSL signs with it only through the callback, given a SHA-256 digest.
 * A software P-256 key in the test stands for the monitor; real TLS 1.3 and 1.2 handshakes with
 * mutual authentication run over a socket pair, CSRs and certificates are signed and verified,
 * and a signer that fails, a wrong signature and requests for another digest are refused. The last
 * group signs through rp_rot_sign() on a tpm2 root of trust in a swtpm the test starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/proverr.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "rampart/log.h"
#include "rampart/remote_key.h"
#include "rampart/rot.h"
#include "swtpm.h"

/* The stand-in for the monitor: a software key, and a record of what it was asked to sign. */
typedef struct signer {
    EVP_PKEY *key;
    EVP_PKEY *other; /* sign with this one instead when wrong_key */
    int calls;
    bool fail, wrong_key, garbage;
    uint8_t last[RP_SHA256_LEN];
    int last_side;        /* the TLS 1.3 mode: the side asked for */
    size_t last_hash_len; /* and the transcript hash's length */
} signer_t;

static rp_err_t soft_sign(void *ctx, const uint8_t digest[RP_SHA256_LEN], uint8_t *sig, size_t cap,
                          size_t *len)
{
    signer_t *s = ctx;
    EVP_PKEY_CTX *c;
    size_t n = cap;
    int ok;

    s->calls++;
    memcpy(s->last, digest, RP_SHA256_LEN);
    if (s->fail)
        return RP_ERR_IO;
    if (s->garbage) {
        memset(sig, 0x30, 8);
        *len = 8;
        return RP_OK;
    }
    c = EVP_PKEY_CTX_new_from_pkey(NULL, s->wrong_key ? s->other : s->key, NULL);
    ok = c != NULL && EVP_PKEY_sign_init(c) == 1 &&
         EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
         EVP_PKEY_sign(c, sig, &n, digest, RP_SHA256_LEN) == 1;
    EVP_PKEY_CTX_free(c);
    if (!ok)
        return RP_ERR_CRYPTO;
    *len = n;
    return RP_OK;
}

/*
 * The monitor's SIGN_TLS13 as a callback: it builds the CertificateVerify content from (side,
 * hash) with the same function the monitor calls, hashes it, and signs that digest.
 */
static rp_err_t tls13_sign(void *ctx, rp_tls13_side_t side, const uint8_t *hash, size_t hash_len,
                           uint8_t *sig, size_t cap, size_t *len)
{
    signer_t *s = ctx;
    uint8_t content[RP_TLS13_CV_CONTENT_MAX], digest[RP_SHA256_LEN];
    size_t n = 0;
    rp_err_t err;

    s->last_side = (int)side;
    s->last_hash_len = hash_len;
    err = rp_tls13_cv_content(side, hash, hash_len, content, sizeof(content), &n);
    if (err == RP_OK)
        err = rp_sha256(content, n, digest);
    return err != RP_OK ? err : soft_sign(ctx, digest, sig, cap, len);
}

static EVP_PKEY *new_key(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(k);
    return k;
}

static size_t spki_of(EVP_PKEY *k, uint8_t *out, size_t cap)
{
    unsigned char *p = out;
    int n = i2d_PUBKEY(k, NULL);

    assert_true(n > 0 && (size_t)n <= cap);
    assert_int_equal(i2d_PUBKEY(k, &p), n);
    return (size_t)n;
}

static EVP_PKEY *remote_for(signer_t *s)
{
    uint8_t spki[RP_PUBKEY_DER_MAX];
    size_t len = spki_of(s->key, spki, sizeof(spki));
    EVP_PKEY *r = rp_remote_key_new(spki, len, soft_sign, s);

    assert_non_null(r);
    return r;
}

static EVP_PKEY *remote_tls13_for(signer_t *s)
{
    uint8_t spki[RP_PUBKEY_DER_MAX];
    size_t len = spki_of(s->key, spki, sizeof(spki));
    EVP_PKEY *r = rp_remote_key_new_tls13(spki, len, tls13_sign, s);

    assert_non_null(r);
    return r;
}

static void signer_init(signer_t *s)
{
    memset(s, 0, sizeof(*s));
    s->key = new_key("P-256");
    s->other = new_key("P-256");
}

static void signer_free(signer_t *s)
{
    EVP_PKEY_free(s->key);
    EVP_PKEY_free(s->other);
}

/* Whether the thread's error queue holds a provider error with this reason. */
static bool queued(int reason)
{
    unsigned long e;
    bool found = false;

    while ((e = ERR_get_error()) != 0)
        if (ERR_GET_LIB(e) == ERR_LIB_PROV && ERR_GET_REASON(e) == reason)
            found = true;
    return found;
}

/* ---- signatures ----------------------------------------------------------------------------- */

static void test_signs_digest_through_callback(void **state)
{
    static const char msg[] = "handshake transcript";
    uint8_t digest[RP_SHA256_LEN], sig[RP_ECDSA_P256_SIG_MAX];
    unsigned int dlen = 0;
    size_t sig_len = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *c;
    signer_t s;
    EVP_PKEY *r;

    (void)state;
    signer_init(&s);
    r = remote_for(&s);
    assert_true(EVP_PKEY_is_a(r, "EC"));
    assert_int_equal(EVP_PKEY_get_bits(r), 256);
    assert_int_equal(EVP_PKEY_get_size(r), RP_ECDSA_P256_SIG_MAX);
    assert_int_equal(EVP_PKEY_eq(r, s.key), 1);
    assert_int_equal(EVP_PKEY_eq(r, s.other), 0);

    /* Digest-sign: the callback gets SHA-256(message), and the result verifies. */
    assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, r, NULL), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)msg, sizeof(msg)), 1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(EVP_Digest(msg, sizeof(msg), digest, &dlen, EVP_sha256(), NULL), 1);
    assert_memory_equal(s.last, digest, RP_SHA256_LEN);
    EVP_MD_CTX_reset(md);
    assert_int_equal(EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, s.key, NULL), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, sig_len, (const uint8_t *)msg, sizeof(msg)), 1);

    /* The streaming form, as libssl uses for a ServerKeyExchange. */
    EVP_MD_CTX_reset(md);
    sig_len = sizeof(sig);
    assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA2-256", NULL, NULL, r, NULL), 1);
    assert_int_equal(EVP_DigestSignUpdate(md, msg, 5), 1);
    assert_int_equal(EVP_DigestSignUpdate(md, msg + 5, sizeof(msg) - 5), 1);
    assert_int_equal(EVP_DigestSignFinal(md, sig, &sig_len), 1);
    assert_int_equal(s.calls, 2);
    assert_memory_equal(s.last, digest, RP_SHA256_LEN);

    /* Sign a digest: it goes to the callback as it is. */
    c = EVP_PKEY_CTX_new_from_pkey(NULL, r, NULL);
    sig_len = sizeof(sig);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_sign_init(c), 1);
    assert_int_equal(EVP_PKEY_sign(c, sig, &sig_len, digest, sizeof(digest)), 1);
    assert_int_equal(s.calls, 3);
    assert_memory_equal(s.last, digest, RP_SHA256_LEN);
    EVP_PKEY_CTX_free(c);
    c = EVP_PKEY_CTX_new_from_pkey(NULL, s.key, NULL);
    assert_int_equal(EVP_PKEY_verify_init(c), 1);
    assert_int_equal(EVP_PKEY_verify(c, sig, sig_len, digest, sizeof(digest)), 1);
    EVP_PKEY_CTX_free(c);

    /* A copy of the key signs through the same callback. */
    {
        EVP_PKEY *dup = EVP_PKEY_dup(r);
        assert_non_null(dup);
        EVP_MD_CTX_reset(md);
        sig_len = sizeof(sig);
        assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, dup, NULL), 1);
        assert_int_equal(EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)msg, sizeof(msg)), 1);
        assert_int_equal(s.calls, 4);
        EVP_MD_CTX_reset(md);
        EVP_PKEY_free(dup);
    }

    /* There is no private key in the process to export. */
    {
        OSSL_PARAM *params = NULL;
        assert_int_not_equal(EVP_PKEY_todata(r, EVP_PKEY_KEYPAIR, &params), 1);
        assert_true(i2d_PrivateKey(r, NULL) <= 0);
        ERR_clear_error();
    }

    EVP_MD_CTX_free(md);
    EVP_PKEY_free(r);
    signer_free(&s);
}

static void test_refuses_other_digests_and_curves(void **state)
{
    uint8_t spki[RP_PUBKEY_DER_MAX], sig[RP_ECDSA_P256_SIG_MAX], digest48[48] = {0};
    size_t len, sig_len = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY *r, *p384;
    EVP_PKEY_CTX *c;
    X509_REQ *req;
    signer_t s;

    (void)state;
    signer_init(&s);
    r = remote_for(&s);

    /* Another digest: refused at init with a clear reason; the signer is never asked. */
    ERR_clear_error();
    assert_true(EVP_DigestSignInit_ex(md, NULL, "SHA384", NULL, NULL, r, NULL) <= 0);
    assert_true(queued(PROV_R_INVALID_DIGEST));
    EVP_MD_CTX_reset(md);
    assert_true(EVP_DigestSignInit_ex(md, NULL, "SHA1", NULL, NULL, r, NULL) <= 0);
    EVP_MD_CTX_reset(md);
    assert_true(EVP_DigestSignInit_ex(md, NULL, "SHA3-256", NULL, NULL, r, NULL) <= 0);
    assert_true(queued(PROV_R_INVALID_DIGEST));
    c = EVP_PKEY_CTX_new_from_pkey(NULL, r, NULL);
    assert_int_equal(EVP_PKEY_sign_init(c), 1);
    assert_true(EVP_PKEY_CTX_set_signature_md(c, EVP_sha512()) <= 0);
    /* Only a 32-byte digest is signed. */
    assert_true(EVP_PKEY_sign(c, sig, &sig_len, digest48, sizeof(digest48)) <= 0);
    assert_true(queued(PROV_R_INVALID_DIGEST_LENGTH));
    EVP_PKEY_CTX_free(c);
    req = X509_REQ_new();
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_pubkey(req, s.key), 1);
    assert_true(X509_REQ_sign(req, r, EVP_sha384()) <= 0);
    X509_REQ_free(req);
    assert_int_equal(s.calls, 0);
    ERR_clear_error();

    /* Another curve, or no key: no remote key. */
    p384 = new_key("P-384");
    len = spki_of(p384, spki, sizeof(spki));
    assert_null(rp_remote_key_new(spki, len, soft_sign, &s));
    assert_null(rp_remote_key_new(spki, 0, soft_sign, &s));
    len = spki_of(s.key, spki, sizeof(spki));
    assert_null(rp_remote_key_new(spki, len - 1, soft_sign, &s)); /* truncated */
    assert_null(rp_remote_key_new(spki, len, NULL, &s));
    EVP_PKEY_free(p384);
    {
        EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
        uint8_t big[512];
        assert_non_null(rsa);
        len = spki_of(rsa, big, sizeof(big));
        assert_null(rp_remote_key_new(big, len, soft_sign, &s));
        EVP_PKEY_free(rsa);
    }

    EVP_MD_CTX_free(md);
    EVP_PKEY_free(r);
    signer_free(&s);
}

static void test_bad_signer_fails_closed(void **state)
{
    static const char msg[] = "x";
    uint8_t sig[RP_ECDSA_P256_SIG_MAX];
    size_t sig_len;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    signer_t s;
    EVP_PKEY *r;
    int i;

    (void)state;
    signer_init(&s);
    r = remote_for(&s);
    for (i = 0; i < 3; i++) {
        s.fail = i == 0;
        s.wrong_key = i == 1; /* a valid signature, by another key */
        s.garbage = i == 2;
        sig_len = sizeof(sig);
        EVP_MD_CTX_reset(md);
        ERR_clear_error();
        assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, r, NULL), 1);
        assert_true(EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)msg, 1) <= 0);
        assert_true(queued(PROV_R_FAILED_TO_SIGN));
    }
    assert_int_equal(s.calls, 3);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(r);
    signer_free(&s);
}

/* ---- certificates and CSRs ------------------------------------------------------------------ */

/* A certificate for subject's public key, signed by issuer_key (self-signed when issuer is NULL).
 */
static X509 *make_cert(const char *cn, EVP_PKEY *subject, X509 *issuer, EVP_PKEY *issuer_key,
                       bool ca)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509_EXTENSION *ext;
    X509V3_CTX v3;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2), 1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)cn, -1, -1, 0), 1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name),
                     1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, subject), 1);
    X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                              ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static void test_csr_and_certificate(void **state)
{
    uint8_t *der = NULL;
    const uint8_t *p;
    X509_REQ *req = X509_REQ_new(), *back;
    X509_NAME *name;
    X509 *self;
    signer_t s;
    EVP_PKEY *r;
    int n;

    (void)state;
    signer_init(&s);
    r = remote_for(&s);
    assert_non_null(req);
    name = X509_REQ_get_subject_name(req);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)"dev", -1, -1, 0), 1);
    /* The remote key's public half goes into the request as any key's would. */
    assert_int_equal(X509_REQ_set_pubkey(req, r), 1);
    assert_true(X509_REQ_sign(req, r, EVP_sha256()) > 0);
    assert_int_equal(s.calls, 1);
    n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    p = der;
    back = d2i_X509_REQ(NULL, &p, n);
    assert_non_null(back);
    {
        const X509_ALGOR *alg;
        const ASN1_OBJECT *oid;
        X509_REQ_get0_signature(back, NULL, &alg);
        X509_ALGOR_get0(&oid, NULL, NULL, alg);
        assert_int_equal(OBJ_obj2nid(oid), NID_ecdsa_with_SHA256);
    }
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(back), s.key), 1);
    assert_int_equal(X509_REQ_verify(back, s.key), 1);
    assert_int_equal(X509_REQ_verify(back, s.other), 0);
    ERR_clear_error();

    /* A self-signed certificate, signed through the callback. */
    self = make_cert("dev", r, NULL, r, true);
    assert_int_equal(X509_verify(self, s.key), 1);
    assert_int_equal(s.calls, 2);

    X509_free(self);
    X509_REQ_free(back);
    X509_REQ_free(req);
    OPENSSL_free(der);
    EVP_PKEY_free(r);
    signer_free(&s);
}

/* ---- TLS ------------------------------------------------------------------------------------ */

typedef struct pki {
    EVP_PKEY *ca_key;
    X509 *ca;
} pki_t;

static void pki_init(pki_t *k)
{
    k->ca_key = new_key("P-256");
    k->ca = make_cert("test CA", k->ca_key, NULL, k->ca_key, true);
}

static void pki_free(pki_t *k)
{
    X509_free(k->ca);
    EVP_PKEY_free(k->ca_key);
}

/* An SSL_CTX that presents a certificate for key (signed by the CA) and requires the peer's. */
static SSL_CTX *tls_ctx(pki_t *k, bool server, EVP_PKEY *key, const char *cn, int version)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    X509 *cert;

    assert_non_null(ctx);
    cert = make_cert(cn, key, k->ca, k->ca_key, false);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, version), 1);
    assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    assert_int_equal(SSL_CTX_check_private_key(ctx), 1);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), k->ca), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    X509_free(cert);
    return ctx;
}

typedef struct conn {
    SSL *client, *server;
    int fds[2];
    bool client_ok, server_ok;
    unsigned long client_err, server_err;
} conn_t;

/* One step of a handshake: 1 done, 0 in progress, -1 failed. */
static int step(SSL *ssl, unsigned long *err)
{
    int rc = SSL_do_handshake(ssl), e;

    if (rc == 1)
        return 1;
    e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    *err = ERR_peek_last_error();
    /* The remote key's own reason, if it is the cause (libssl queues its own after it). */
    while ((e = (int)ERR_get_error()) != 0)
        if (ERR_GET_LIB((unsigned long)e) == ERR_LIB_PROV)
            *err = (unsigned long)e;
    return -1;
}

/*
 * Run a handshake between the two contexts over a non-blocking socket pair, then (when both
 * ends finished) one message each way, which is where a TLS 1.3 client learns whether the server
 * accepted its certificate. Bounded by a step count, not by time.
 */
static void handshake(SSL_CTX *cctx, SSL_CTX *sctx, conn_t *c)
{
    int cs = 0, ss = 0, i, n;
    char buf[8];

    memset(c, 0, sizeof(*c));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, c->fds), 0);
    c->client = SSL_new(cctx);
    c->server = SSL_new(sctx);
    assert_non_null(c->client);
    assert_non_null(c->server);
    assert_int_equal(SSL_set_fd(c->client, c->fds[0]), 1);
    assert_int_equal(SSL_set_fd(c->server, c->fds[1]), 1);
    SSL_set_connect_state(c->client);
    SSL_set_accept_state(c->server);
    for (i = 0; i < 1000 && !((cs != 0) && (ss != 0)); i++) {
        if (cs == 0)
            cs = step(c->client, &c->client_err);
        if (ss == 0)
            ss = step(c->server, &c->server_err);
        if ((cs < 0 && ss == 0) || (ss < 0 && cs == 0)) {
            /* One end gave up: the other reads its alert (or the closed socket) and fails too. */
            shutdown(c->fds[cs < 0 ? 0 : 1], SHUT_RDWR);
        }
    }
    assert_true(cs != 0 && ss != 0); /* neither end is left waiting */
    if (cs == 1 && ss == 1) {
        n = SSL_write(c->server, "srv", 3);
        c->client_ok = n == 3 && SSL_read(c->client, buf, sizeof(buf)) == 3;
        n = SSL_write(c->client, "cli", 3);
        for (i = 0; i < 1000 && n == 3; i++) {
            int m = SSL_read(c->server, buf, sizeof(buf));
            if (m == 3) {
                c->server_ok = true;
                break;
            }
            if (SSL_get_error(c->server, m) != SSL_ERROR_WANT_READ)
                break;
        }
        c->client_ok = c->client_ok && SSL_get_verify_result(c->client) == X509_V_OK;
        c->server_ok = c->server_ok && SSL_get_verify_result(c->server) == X509_V_OK;
        /* A handshake that worked leaves no stray error behind (callers report the last one). */
        assert_int_equal(ERR_peek_error(), 0);
    }
    ERR_clear_error();
}

static void conn_free(conn_t *c)
{
    SSL_free(c->client);
    SSL_free(c->server);
    close(c->fds[0]);
    close(c->fds[1]);
}

/* Mutual TLS where each end's key is remote (when asked) or a plain software key. */
static void check_mutual(int version, bool client_remote, bool server_remote)
{
    signer_t cs, ss;
    EVP_PKEY *ckey, *skey;
    SSL_CTX *cctx, *sctx;
    conn_t c;
    pki_t k;
    int nid = 0;

    pki_init(&k);
    signer_init(&cs);
    signer_init(&ss);
    ckey = client_remote ? remote_for(&cs) : (EVP_PKEY_up_ref(cs.key), cs.key);
    skey = server_remote ? remote_for(&ss) : (EVP_PKEY_up_ref(ss.key), ss.key);
    cctx = tls_ctx(&k, false, ckey, "client", version);
    sctx = tls_ctx(&k, true, skey, "server", version);

    handshake(cctx, sctx, &c);
    assert_true(c.client_ok);
    assert_true(c.server_ok);
    assert_int_equal(SSL_version(c.client), version);
    /* Each end saw the other's certificate and an ECDSA-SHA256 signature by its key. */
    assert_non_null(SSL_get0_peer_certificate(c.server));
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(SSL_get0_peer_certificate(c.server)), cs.key), 1);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(SSL_get0_peer_certificate(c.client)), ss.key), 1);
    assert_int_equal(SSL_get_peer_signature_nid(c.server, &nid), 1);
    assert_int_equal(nid, NID_sha256);
    assert_int_equal(SSL_get_peer_signature_nid(c.client, &nid), 1);
    assert_int_equal(nid, NID_sha256);
    /* The remote ends signed through their callback, once per handshake. */
    assert_int_equal(cs.calls, client_remote ? 1 : 0);
    assert_int_equal(ss.calls, server_remote ? 1 : 0);

    conn_free(&c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    EVP_PKEY_free(ckey);
    EVP_PKEY_free(skey);
    signer_free(&cs);
    signer_free(&ss);
    pki_free(&k);
}

static void test_tls13_client_remote(void **state)
{
    (void)state;
    check_mutual(TLS1_3_VERSION, true, false);
}

static void test_tls13_server_remote(void **state)
{
    (void)state;
    check_mutual(TLS1_3_VERSION, false, true);
}

static void test_tls13_both_remote(void **state)
{
    (void)state;
    check_mutual(TLS1_3_VERSION, true, true);
}

static void test_tls12_both_remote(void **state)
{
    (void)state;
    check_mutual(TLS1_2_VERSION, true, true);
}

/* A failing signer fails the handshake at both ends, with the reason in the error queue. */
static void check_failing_signer(bool client_side)
{
    signer_t cs, ss;
    EVP_PKEY *ckey, *skey;
    SSL_CTX *cctx, *sctx;
    conn_t c;
    pki_t k;

    pki_init(&k);
    signer_init(&cs);
    signer_init(&ss);
    cs.fail = client_side;
    ss.fail = !client_side;
    ckey = remote_for(&cs);
    skey = remote_for(&ss);
    cctx = tls_ctx(&k, false, ckey, "client", TLS1_3_VERSION);
    sctx = tls_ctx(&k, true, skey, "server", TLS1_3_VERSION);

    handshake(cctx, sctx, &c);
    assert_false(c.client_ok);
    assert_false(c.server_ok);
    if (client_side) {
        assert_int_equal(cs.calls, 1);
        assert_int_equal(ERR_GET_LIB(c.client_err), ERR_LIB_PROV);
        assert_int_equal(ERR_GET_REASON(c.client_err), PROV_R_FAILED_TO_SIGN);
        assert_int_not_equal(c.server_err, 0);
    } else {
        assert_int_equal(ss.calls, 1);
        assert_int_equal(cs.calls, 0); /* the client never got as far as signing */
        assert_int_equal(ERR_GET_LIB(c.server_err), ERR_LIB_PROV);
        assert_int_equal(ERR_GET_REASON(c.server_err), PROV_R_FAILED_TO_SIGN);
        assert_int_not_equal(c.client_err, 0);
    }

    conn_free(&c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    EVP_PKEY_free(ckey);
    EVP_PKEY_free(skey);
    signer_free(&cs);
    signer_free(&ss);
    pki_free(&k);
}

static void test_tls_client_signer_fails(void **state)
{
    (void)state;
    check_failing_signer(true);
}

static void test_tls_server_signer_fails(void **state)
{
    (void)state;
    check_failing_signer(false);
}

/*
 * A peer that accepts only ECDSA with SHA-384 cannot make the remote key sign a SHA-384 digest:
 * no signature algorithm fits, the handshake fails, and the signer is never asked. In TLS 1.3
 * the curve alone rules it out (ecdsa_secp384r1_sha384 is for P-384 keys); in TLS 1.2 any curve
 * may go with any hash, and only the key's refusal stops it.
 */
static void check_other_digest(int version)
{
    signer_t cs, ss;
    EVP_PKEY *ckey, *skey;
    SSL_CTX *cctx, *sctx;
    conn_t c;
    pki_t k;

    pki_init(&k);
    signer_init(&cs);
    signer_init(&ss);
    ckey = remote_for(&cs);
    skey = remote_for(&ss);
    cctx = tls_ctx(&k, false, ckey, "client", version);
    sctx = tls_ctx(&k, true, skey, "server", version);
    /* The client asks the server for SHA-384; the server asks the client for the same. */
    assert_int_equal(SSL_CTX_set1_sigalgs_list(cctx, "ECDSA+SHA384"), 1);
    assert_int_equal(SSL_CTX_set1_client_sigalgs_list(sctx, "ECDSA+SHA384"), 1);
    assert_int_equal(SSL_CTX_set1_sigalgs_list(sctx, "ECDSA+SHA384:ECDSA+SHA256"), 1);

    handshake(cctx, sctx, &c);
    assert_false(c.client_ok || c.server_ok);
    assert_int_equal(cs.calls, 0);
    assert_int_equal(ss.calls, 0);

    conn_free(&c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    EVP_PKEY_free(ckey);
    EVP_PKEY_free(skey);
    signer_free(&cs);
    signer_free(&ss);
    pki_free(&k);
}

static void test_tls12_peer_cannot_choose_another_digest(void **state)
{
    (void)state;
    check_other_digest(TLS1_2_VERSION);
}

static void test_tls13_peer_cannot_choose_another_digest(void **state)
{
    (void)state;
    check_other_digest(TLS1_3_VERSION);
}

/* ---- the TLS 1.3 mode ----------------------------------------------------------------------- */

/*
 * Mutual TLS 1.3 with both keys in the TLS 1.3 mode, over a SHA-256 or a SHA-384 cipher suite:
 * each callback gets its own side and a transcript hash of the suite's length, and the signature
 * it makes over the content it built is one the peer accepts.
 */
static void check_tls13_mode(const char *suite, size_t hash_len)
{
    signer_t cs, ss;
    EVP_PKEY *ckey, *skey;
    SSL_CTX *cctx, *sctx;
    conn_t c;
    pki_t k;

    pki_init(&k);
    signer_init(&cs);
    signer_init(&ss);
    ckey = remote_tls13_for(&cs);
    skey = remote_tls13_for(&ss);
    cctx = tls_ctx(&k, false, ckey, "client", TLS1_3_VERSION);
    sctx = tls_ctx(&k, true, skey, "server", TLS1_3_VERSION);
    assert_int_equal(SSL_CTX_set_ciphersuites(cctx, suite), 1);
    assert_int_equal(SSL_CTX_set_ciphersuites(sctx, suite), 1);

    handshake(cctx, sctx, &c);
    assert_true(c.client_ok);
    assert_true(c.server_ok);
    assert_int_equal(cs.calls, 1);
    assert_int_equal(ss.calls, 1);
    assert_int_equal(cs.last_side, RP_TLS13_CLIENT);
    assert_int_equal(ss.last_side, RP_TLS13_SERVER);
    assert_int_equal(cs.last_hash_len, hash_len);
    assert_int_equal(ss.last_hash_len, hash_len);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(SSL_get0_peer_certificate(c.server)), cs.key), 1);

    conn_free(&c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    EVP_PKEY_free(ckey);
    EVP_PKEY_free(skey);
    signer_free(&cs);
    signer_free(&ss);
    pki_free(&k);
}

static void test_tls13_mode_handshake_sha256(void **state)
{
    (void)state;
    check_tls13_mode("TLS_AES_128_GCM_SHA256", 32);
}

static void test_tls13_mode_handshake_sha384(void **state)
{
    (void)state;
    check_tls13_mode("TLS_AES_256_GCM_SHA384", 48);
}

/* TLS 1.2 signs other content (randoms and the key share): refused, the signer never asked. */
static void test_tls13_mode_refuses_tls12(void **state)
{
    signer_t cs, ss;
    EVP_PKEY *ckey, *skey;
    SSL_CTX *cctx, *sctx;
    conn_t c;
    pki_t k;

    (void)state;
    pki_init(&k);
    signer_init(&cs);
    signer_init(&ss);
    ckey = remote_tls13_for(&cs);
    skey = remote_tls13_for(&ss);
    cctx = tls_ctx(&k, false, ckey, "client", TLS1_2_VERSION);
    sctx = tls_ctx(&k, true, skey, "server", TLS1_2_VERSION);

    handshake(cctx, sctx, &c);
    assert_false(c.client_ok || c.server_ok);
    assert_int_equal(cs.calls, 0);
    assert_int_equal(ss.calls, 0);
    /* The server's ServerKeyExchange is the first signature: its key says why. */
    assert_int_equal(ERR_GET_LIB(c.server_err), ERR_LIB_PROV);
    assert_int_equal(ERR_GET_REASON(c.server_err), PROV_R_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE);

    conn_free(&c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    EVP_PKEY_free(ckey);
    EVP_PKEY_free(skey);
    signer_free(&cs);
    signer_free(&ss);
    pki_free(&k);
}

/* One digest-sign of data[0..len) (in two updates when split), as libssl would. */
static int digest_sign(EVP_PKEY *r, const uint8_t *data, size_t len, bool split)
{
    uint8_t sig[RP_ECDSA_P256_SIG_MAX];
    size_t sig_len = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    assert_non_null(md);
    ok = EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, r, NULL) == 1 &&
         EVP_DigestSignUpdate(md, data, split ? 10 : len) == 1 &&
         (!split || EVP_DigestSignUpdate(md, data + 10, len - 10) == 1) &&
         EVP_DigestSignFinal(md, sig, &sig_len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* A CSR, a certificate, a bare digest, anything that is not exactly a CertificateVerify content:
 * refused before the signer is asked. */
static void test_tls13_mode_refuses_csr_and_digests(void **state)
{
    uint8_t content[RP_TLS13_CV_CONTENT_MAX + 1], hash[32], digest[RP_SHA256_LEN];
    uint8_t sig[RP_ECDSA_P256_SIG_MAX];
    size_t len = 0, sig_len = sizeof(sig);
    X509_REQ *req = X509_REQ_new();
    EVP_PKEY_CTX *c;
    signer_t s;
    EVP_PKEY *r;

    (void)state;
    signer_init(&s);
    r = remote_tls13_for(&s);
    memset(hash, 0xab, sizeof(hash));
    memset(digest, 0xcd, sizeof(digest));

    /* A CSR. */
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_pubkey(req, r), 1);
    assert_true(X509_REQ_sign(req, r, EVP_sha256()) <= 0);
    assert_true(queued(PROV_R_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE));
    /* A certificate. */
    {
        X509 *x = X509_new();
        assert_non_null(x);
        assert_int_equal(X509_set_pubkey(x, r), 1);
        assert_true(X509_sign(x, r, EVP_sha256()) <= 0);
        X509_free(x);
        ERR_clear_error();
    }
    /* A bare digest (what an EAT's or a CSR's signature is made over). */
    c = EVP_PKEY_CTX_new_from_pkey(NULL, r, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_sign_init(c), 1);
    assert_int_not_equal(EVP_PKEY_sign(c, sig, &sig_len, digest, sizeof(digest)), 1);
    assert_true(queued(PROV_R_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE));
    EVP_PKEY_CTX_free(c);
    assert_int_equal(s.calls, 0);

    /* The content itself, whole or in pieces: signed, the callback gets (side, hash). */
    assert_int_equal(rp_tls13_cv_content(RP_TLS13_SERVER, hash, 32, content, sizeof(content), &len),
                     RP_OK);
    assert_true(digest_sign(r, content, len, false));
    assert_true(digest_sign(r, content, len, true));
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.last_side, RP_TLS13_SERVER);
    /* One byte more, one less, a byte of the prefix or context changed, longer than any. */
    content[len] = 0;
    assert_false(digest_sign(r, content, len + 1, false));
    assert_false(digest_sign(r, content, len - 1, true));
    content[3] = 0x21;
    assert_false(digest_sign(r, content, len, false));
    content[3] = 0x20;
    content[70] ^= 1;
    assert_false(digest_sign(r, content, len, false));
    content[70] ^= 1;
    {
        static uint8_t big[4096];
        memcpy(big, content, len);
        assert_false(digest_sign(r, big, sizeof(big), true));
    }
    ERR_clear_error();
    assert_int_equal(s.calls, 2);

    X509_REQ_free(req);
    EVP_PKEY_free(r);
    signer_free(&s);
}

/* ---- the device identity in a TPM ----------------------------------------------------------- */

static tu_swtpm_t tpm;

static int tpm_setup(void **state)
{
    (void)state;
    return tu_swtpm_start(&tpm);
}

static int tpm_teardown(void **state)
{
    (void)state;
    tu_swtpm_stop(&tpm);
    return 0;
}

static rp_err_t rot_sign(void *ctx, const uint8_t digest[RP_SHA256_LEN], uint8_t *sig, size_t cap,
                         size_t *len)
{
    return rp_rot_sign(ctx, digest, sig, cap, len);
}

/* The monitor's own path: the callback is rp_rot_sign() on a tpm2 root of trust. */
static void test_tpm2_identity(void **state)
{
    char dir[64], cmd[128];
    uint8_t spki[RP_PUBKEY_DER_MAX];
    const uint8_t *p = spki;
    size_t spki_len;
    rp_rot_config_t cfg;
    EVP_PKEY *remote, *pub, *skey_soft;
    SSL_CTX *cctx, *sctx;
    X509_REQ *req;
    rp_rot_t *rot;
    bool created;
    conn_t c;
    pki_t k;

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/rampart-remote-key-XXXXXX");
    assert_non_null(mkdtemp(dir));
    cfg = (rp_rot_config_t){.kind = RP_ROT_TPM2, .state_dir = dir, .tcti = tpm.tcti};
    assert_int_equal(rp_rot_provision(&cfg, &created), RP_OK);
    assert_int_equal(rp_rot_open(&cfg, &rot), RP_OK);
    assert_int_equal(rp_rot_public_key(rot, spki, sizeof(spki), &spki_len), RP_OK);
    pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
    assert_non_null(pub);
    remote = rp_remote_key_new(spki, spki_len, rot_sign, rot);
    assert_non_null(remote);

    /* A CSR, as the agent makes to get its certificate. */
    req = X509_REQ_new();
    assert_int_equal(X509_REQ_set_pubkey(req, remote), 1);
    assert_true(X509_REQ_sign(req, remote, EVP_sha256()) > 0);
    assert_int_equal(X509_REQ_verify(req, pub), 1);
    X509_REQ_free(req);

    /* Mutual TLS 1.3 with the device's key in the TPM as the client's key. */
    pki_init(&k);
    skey_soft = new_key("P-256");
    cctx = tls_ctx(&k, false, remote, "device", TLS1_3_VERSION);
    sctx = tls_ctx(&k, true, skey_soft, "server", TLS1_3_VERSION);
    handshake(cctx, sctx, &c);
    assert_true(c.client_ok);
    assert_true(c.server_ok);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(SSL_get0_peer_certificate(c.server)), pub), 1);

    conn_free(&c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    EVP_PKEY_free(skey_soft);
    pki_free(&k);
    EVP_PKEY_free(remote);
    EVP_PKEY_free(pub);
    rp_rot_close(rot);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest soft[] = {
        cmocka_unit_test(test_signs_digest_through_callback),
        cmocka_unit_test(test_refuses_other_digests_and_curves),
        cmocka_unit_test(test_bad_signer_fails_closed),
        cmocka_unit_test(test_csr_and_certificate),
        cmocka_unit_test(test_tls13_client_remote),
        cmocka_unit_test(test_tls13_server_remote),
        cmocka_unit_test(test_tls13_both_remote),
        cmocka_unit_test(test_tls12_both_remote),
        cmocka_unit_test(test_tls_client_signer_fails),
        cmocka_unit_test(test_tls_server_signer_fails),
        cmocka_unit_test(test_tls12_peer_cannot_choose_another_digest),
        cmocka_unit_test(test_tls13_peer_cannot_choose_another_digest),
        cmocka_unit_test(test_tls13_mode_handshake_sha256),
        cmocka_unit_test(test_tls13_mode_handshake_sha384),
        cmocka_unit_test(test_tls13_mode_refuses_tls12),
        cmocka_unit_test(test_tls13_mode_refuses_csr_and_digests),
    };
    const struct CMUnitTest tpm2[] = {
        cmocka_unit_test(test_tpm2_identity),
    };
    int failed;

    rp_log_init("test_remote_key", RP_LOG_ERROR);
    failed = cmocka_run_group_tests_name("remote key", soft, NULL, NULL);
    failed += cmocka_run_group_tests_name("remote key in a TPM", tpm2, tpm_setup, tpm_teardown);
    return failed;
}
