/*
 * The binding of channel-bound attestation (rampart/attest_binding.h), over real TLS handshakes
 * between two OpenSSL endpoints in memory: both ends of a connection compute the same binding;
 * another connection, and one that resumes the first's session, have another; a TLS 1.2
 * connection and one whose handshake is not done have none. The service's use of it (the compare,
 * the age, once per connection) is e2e.attest_binding's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "rampart/attest_binding.h"

static SSL_CTX *server_ctx, *client_ctx;

/* A server context with a fresh self-signed P-256 certificate, and a client that trusts nothing
 * (the handshake's authenticity is not what is tested here). */
static int setup(void **state)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = X509_new();

    (void)state;
    server_ctx = SSL_CTX_new(TLS_server_method());
    client_ctx = SSL_CTX_new(TLS_client_method());
    if (key == NULL || cert == NULL || server_ctx == NULL || client_ctx == NULL ||
        X509_set_version(cert, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600) == NULL ||
        X509_set_pubkey(cert, key) != 1 ||
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"test", -1, -1, 0) != 1 ||
        X509_set_issuer_name(cert, X509_get_subject_name(cert)) != 1 ||
        X509_sign(cert, key, EVP_sha256()) == 0 || SSL_CTX_use_certificate(server_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(server_ctx, key) != 1)
        return -1;
    SSL_CTX_set_session_cache_mode(client_ctx, SSL_SESS_CACHE_CLIENT);
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    return 0;
}

struct pair {
    SSL *client, *server;
};

/* A connection over a BIO pair, its handshake run to the end (max: the highest version, 0 for
 * any), resuming session when not NULL. */
static void connect_pair(struct pair *p, int max, SSL_SESSION *session)
{
    BIO *cb = NULL, *sb = NULL;
    int done_c = 0, done_s = 0;

    p->client = SSL_new(client_ctx);
    p->server = SSL_new(server_ctx);
    assert_non_null(p->client);
    assert_non_null(p->server);
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(p->client, cb, cb);
    SSL_set_bio(p->server, sb, sb);
    if (max != 0)
        assert_int_equal(SSL_set_max_proto_version(p->client, max), 1);
    if (session != NULL)
        assert_int_equal(SSL_set_session(p->client, session), 1);
    SSL_set_connect_state(p->client);
    SSL_set_accept_state(p->server);
    for (int i = 0; i < 100 && !(done_c && done_s); i++) {
        if (!done_c)
            done_c = SSL_do_handshake(p->client) == 1;
        if (!done_s)
            done_s = SSL_do_handshake(p->server) == 1;
    }
    assert_true(done_c && done_s);
}

/* Move the server's session tickets to the client, so that its session can be resumed. */
static SSL_SESSION *ticket_of(struct pair *p)
{
    char buf[16];

    assert_true(SSL_write(p->server, "x", 1) == 1);
    assert_true(SSL_read(p->client, buf, sizeof(buf)) == 1);
    return SSL_get1_session(p->client);
}

static void free_pair(struct pair *p)
{
    /* close_notify: OpenSSL forgets the session of a connection freed without it */
    (void)SSL_shutdown(p->client);
    SSL_free(p->client);
    SSL_free(p->server);
}

static void both_ends_agree_and_connections_differ(void **state)
{
    uint8_t c1[RP_ATTEST_BINDING_LEN], s1[RP_ATTEST_BINDING_LEN], c2[RP_ATTEST_BINDING_LEN],
        s2[RP_ATTEST_BINDING_LEN], c3[RP_ATTEST_BINDING_LEN], s3[RP_ATTEST_BINDING_LEN];
    struct pair a, b, r;
    SSL_SESSION *session;

    (void)state;
    connect_pair(&a, 0, NULL);
    assert_int_equal(SSL_version(a.client), TLS1_3_VERSION);
    assert_int_equal(rp_attest_binding(a.client, c1), RP_OK);
    assert_int_equal(rp_attest_binding(a.server, s1), RP_OK);
    assert_memory_equal(c1, s1, sizeof(c1)); /* the pass: both ends agree */
    /* another connection at the same time: another binding */
    connect_pair(&b, 0, NULL);
    assert_int_equal(rp_attest_binding(b.client, c2), RP_OK);
    assert_int_equal(rp_attest_binding(b.server, s2), RP_OK);
    assert_memory_equal(c2, s2, sizeof(c2));
    assert_memory_not_equal(c1, c2, sizeof(c1));
    /* a later connection resuming the first's session: a fresh one all the same */
    session = ticket_of(&a);
    assert_non_null(session);
    free_pair(&a);
    connect_pair(&r, 0, session);
    assert_true(SSL_session_reused(r.client));
    assert_int_equal(rp_attest_binding(r.client, c3), RP_OK);
    assert_int_equal(rp_attest_binding(r.server, s3), RP_OK);
    assert_memory_equal(c3, s3, sizeof(c3));
    assert_memory_not_equal(c3, c1, sizeof(c1));
    assert_memory_not_equal(c3, c2, sizeof(c1));
    SSL_SESSION_free(session);
    free_pair(&b);
    free_pair(&r);
}

static void tls12_and_unfinished_have_none(void **state)
{
    static const uint8_t zero[RP_ATTEST_BINDING_LEN];
    uint8_t out[RP_ATTEST_BINDING_LEN];
    struct pair p;
    SSL *fresh = SSL_new(client_ctx);

    (void)state;
    connect_pair(&p, TLS1_2_VERSION, NULL);
    assert_int_equal(SSL_version(p.server), TLS1_2_VERSION);
    memset(out, 0xff, sizeof(out));
    assert_int_equal(rp_attest_binding(p.server, out), RP_ERR_UNSUPPORTED);
    assert_memory_equal(out, zero, sizeof(out)); /* nothing left behind */
    assert_int_equal(rp_attest_binding(p.client, out), RP_ERR_UNSUPPORTED);
    free_pair(&p);
    assert_non_null(fresh);
    assert_int_equal(rp_attest_binding(fresh, out), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_attest_binding(NULL, out), RP_ERR_INVALID_ARG);
    SSL_free(fresh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(both_ends_agree_and_connections_differ),
        cmocka_unit_test(tls12_and_unfinished_have_none),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
