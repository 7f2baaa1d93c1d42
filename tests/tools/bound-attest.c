/*
 * bound-attest: drives channel-bound attestation (rampart/attest_binding.h) against a real
 * rampart-server the way no well-behaved device would, for e2e.attest_binding: evidence bound to
 * one connection and sent on another, bound to a connection that has closed, sent twice on one
 * connection, sent on a TLS 1.2 connection, sent on a connection that resumed the session of the
 * one it was bound to. The device is a P-256 key in a PEM file (made on first use). libevent's
 * HTTP client over OpenSSL, as bench/sim.c's devices.
 *
 *   bound-attest --key FILE id
 *   bound-attest --key FILE --port P --ca FILE STEP...
 *     open NAME        a TLS 1.3 connection (a GET /healthz brings it up; its binding is kept),
 *                      offering the session of the connection closed last, if any
 *     open12 NAME      the same over TLS 1.2 (its exporter, with the same label, is kept), no
 *                      session offered
 *     post ON BOUND    POST /api/v1/attest on connection ON, evidence bound to BOUND's binding;
 *                      prints the status and the answer's reason (or result), one line
 *     close NAME       closes the connection (close_notify first), keeping its session for the
 *                      next open; its binding is still known
 *     session NAME     prints "reused OTHER" when NAME resumed the session of connection OTHER,
 *                      "full" when its handshake was a full one
 *     same X Y         prints "same" when X and Y have the same binding, "differs" otherwise
 *     age NAME S       waits until NAME is at least S seconds old (for the service's age limit)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "rampart/attest_binding.h"
#include "rampart/base64.h"
#include "rampart/evidence.h"
#include "rampart/hex.h"
#include "rampart/key.h"

#define MAX_CONNS 8

struct conn {
    char name[32];
    struct evhttp_connection *evcon; /* NULL once closed */
    uint8_t binding[RP_ATTEST_BINDING_LEN];
    struct timespec opened;
    const struct conn *resumed; /* whose session it resumed; NULL: a full handshake */
};

static struct event_base *base;
static SSL_CTX *ctx;
static EVP_PKEY *key;
static char device_id[65], *key_b64;
static int port;
static struct conn conns[MAX_CONNS];
static size_t nconns;
static SSL_SESSION *last_session; /* the session of the connection closed last, and that one */
static const struct conn *last_session_of;

static void die(const char *what)
{
    fprintf(stderr, "bound-attest: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static struct conn *conn_named(const char *name)
{
    for (size_t i = 0; i < nconns; i++)
        if (strcmp(conns[i].name, name) == 0)
            return &conns[i];
    die("no connection of that name");
    return NULL;
}

struct answer {
    int status;
    json_t *body;
    bool done;
};

static void on_answer(struct evhttp_request *req, void *arg)
{
    struct answer *a = arg;
    struct evbuffer *in;

    a->done = true;
    if (req == NULL)
        return;
    a->status = evhttp_request_get_response_code(req);
    in = evhttp_request_get_input_buffer(req);
    a->body = json_loadb((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in), 0, NULL);
    event_base_loopbreak(base);
}

/* One request on c, waited for. OUT: a (a->status 0: no answer). */
static void request(struct conn *c, enum evhttp_cmd_type type, const char *path, const char *body,
                    struct answer *a)
{
    struct evhttp_request *req = evhttp_request_new(on_answer, a);

    memset(a, 0, sizeof(*a));
    if (req == NULL)
        die("evhttp_request_new");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
    if (body != NULL) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
    if (evhttp_make_request(c->evcon, req, type, path) != 0)
        die("evhttp_make_request");
    while (!a->done)
        if (event_base_dispatch(base) < 0)
            die("event loop");
}

static void open_conn(const char *name, bool tls12)
{
    struct conn *c;
    struct bufferevent *bev;
    struct answer a;
    SSL *ssl;

    if (nconns == MAX_CONNS || strlen(name) >= sizeof(c->name))
        die("too many connections");
    c = &conns[nconns++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    clock_gettime(CLOCK_MONOTONIC, &c->opened);
    ssl = SSL_new(ctx);
    if (ssl == NULL || X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1") != 1 ||
        (tls12 && SSL_set_max_proto_version(ssl, TLS1_2_VERSION) != 1) ||
        (!tls12 && last_session != NULL && SSL_set_session(ssl, last_session) != 1))
        die("SSL_new");
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    c->evcon = bev != NULL ? evhttp_connection_base_bufferevent_new(base, NULL, bev, "127.0.0.1",
                                                                    (unsigned short)port)
                           : NULL;
    if (c->evcon == NULL)
        die("connection");
    evhttp_connection_set_timeout(c->evcon, 30);
    request(c, EVHTTP_REQ_GET, "/healthz", NULL, &a);
    json_decref(a.body);
    if (a.status != 200)
        die("GET /healthz failed");
    if (SSL_session_reused(ssl))
        c->resumed = last_session_of;
    /* Its exporter: TLS 1.3's through the one function devices use; TLS 1.2's made here with the
     * same label, since that function has none for it (what a device that tried would send). */
    if (!tls12 ? rp_attest_binding(ssl, c->binding) != RP_OK
               : SSL_export_keying_material(ssl, c->binding, sizeof(c->binding),
                                            RP_ATTEST_BINDING_LABEL,
                                            strlen(RP_ATTEST_BINDING_LABEL), NULL, 0, 0) != 1)
        die("no exporter");
}

/* Closes c, keeping its session (a TLS 1.3 ticket the service sent after the handshake, read with
 * the answer to GET /healthz) for the next open. close_notify first: OpenSSL marks the session of
 * a connection freed without it as not resumable. */
static void close_conn(struct conn *c)
{
    SSL *ssl;

    if (c->evcon == NULL)
        return;
    ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(c->evcon));
    if (ssl != NULL) {
        SSL_SESSION_free(last_session);
        last_session = SSL_get1_session(ssl);
        last_session_of = c;
        (void)SSL_shutdown(ssl); /* one close_notify; the peer's is not waited for */
    }
    evhttp_connection_free(c->evcon);
    c->evcon = NULL;
}

static rp_err_t sign(void *k, const uint8_t digest[RP_SHA256_LEN], uint8_t *der, size_t cap,
                     size_t *len)
{
    return rp_key_sign_digest(k, digest, der, cap, len);
}

static void post(const char *on, const char *bound)
{
    struct conn *c = conn_named(on), *b = conn_named(bound);
    uint8_t token[RP_EAT_MAX_SIZE];
    rp_eat_claims_t claims;
    char *ev = NULL, *text;
    struct answer a;
    size_t len;
    json_t *j;
    const char *why;

    if (c->evcon == NULL)
        die("that connection is closed");
    memset(&claims, 0, sizeof(claims));
    memcpy(claims.nonce, b->binding, sizeof(b->binding));
    claims.nonce_len = sizeof(b->binding);
    claims.debug = RP_EAT_DEBUG_DISABLED;
    claims.boot_count = 1;
    claims.has_register = true; /* nothing measured: the register as it starts */
    if (rp_hex_decode(device_id, 64, claims.device_id, 32) != RP_OK ||
        rp_evidence_make(&claims, sign, key, token, sizeof(token), &len) != RP_OK ||
        rp_base64_encode(token, len, &ev) != RP_OK)
        die("evidence");
    j = json_pack("{s:s, s:s}", "evidence", ev, "public_key", key_b64);
    text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text == NULL)
        die("out of memory");
    request(c, EVHTTP_REQ_POST, "/api/v1/attest", text, &a);
    why = json_string_value(json_object_get(a.body, "reason"));
    if (why == NULL)
        why = json_string_value(json_object_get(a.body, "result"));
    printf("%d %s\n", a.status, why != NULL ? why : "-");
    fflush(stdout);
    json_decref(a.body);
    json_decref(j);
    free(text);
    free(ev);
}

static void age(const char *name, const char *seconds)
{
    struct conn *c = conn_named(name);
    struct timespec now;
    double want = strtod(seconds, NULL);

    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - c->opened.tv_sec) +
                (double)(now.tv_nsec - c->opened.tv_nsec) / 1e9 >=
            want)
            return;
        usleep(100000);
    }
}

int main(int argc, char **argv)
{
    const char *key_file = NULL, *ca = NULL;
    uint8_t spki[RP_PUBKEY_DER_MAX], id[RP_SHA256_LEN];
    size_t spki_len;
    bool is_private = false;
    int i = 1;

    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--key") == 0)
            key_file = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--ca") == 0)
            ca = argv[i + 1];
        else
            die("unknown option");
    }
    if (key_file == NULL)
        die("usage: bound-attest --key FILE id | --key FILE --port P --ca FILE STEP...");
    if (access(key_file, F_OK) != 0 && (rp_key_generate(RP_SIG_ECDSA_P256, &key) != RP_OK ||
                                        rp_key_save_private(key, key_file, false) != RP_OK))
        die("cannot make the key");
    if (key == NULL && (rp_key_load(key_file, &key, &is_private) != RP_OK || !is_private))
        die("cannot load the key");
    if (rp_key_spki(key, spki, sizeof(spki), &spki_len) != RP_OK ||
        rp_base64_encode(spki, spki_len, &key_b64) != RP_OK ||
        rp_sha256(spki, spki_len, id) != RP_OK ||
        rp_hex_encode(id, sizeof(id), device_id, sizeof(device_id)) != RP_OK)
        die("the device's ID");
    if (i < argc && strcmp(argv[i], "id") == 0) {
        printf("%s\n", device_id);
        return 0;
    }
    if (port <= 0 || ca == NULL)
        die("--port and --ca are needed");
    base = event_base_new();
    ctx = SSL_CTX_new(TLS_client_method());
    if (base == NULL || ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
        die("setup");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    for (; i < argc; i++) {
        if (strcmp(argv[i], "open") == 0 && i + 1 < argc) {
            open_conn(argv[++i], false);
        } else if (strcmp(argv[i], "open12") == 0 && i + 1 < argc) {
            open_conn(argv[++i], true);
        } else if (strcmp(argv[i], "post") == 0 && i + 2 < argc) {
            post(argv[i + 1], argv[i + 2]);
            i += 2;
        } else if (strcmp(argv[i], "close") == 0 && i + 1 < argc) {
            close_conn(conn_named(argv[++i]));
        } else if (strcmp(argv[i], "session") == 0 && i + 1 < argc) {
            struct conn *c = conn_named(argv[++i]);
            if (c->resumed != NULL)
                printf("reused %s\n", c->resumed->name);
            else
                printf("full\n");
            fflush(stdout);
        } else if (strcmp(argv[i], "same") == 0 && i + 2 < argc) {
            printf("%s\n", memcmp(conn_named(argv[i + 1])->binding,
                                  conn_named(argv[i + 2])->binding, RP_ATTEST_BINDING_LEN) == 0
                               ? "same"
                               : "differs");
            fflush(stdout);
            i += 2;
        } else if (strcmp(argv[i], "age") == 0 && i + 2 < argc) {
            age(argv[i + 1], argv[i + 2]);
            i += 2;
        } else {
            die("unknown step");
        }
    }
    for (size_t k = 0; k < nconns; k++)
        if (conns[k].evcon != NULL)
            evhttp_connection_free(conns[k].evcon);
    SSL_SESSION_free(last_session);
    SSL_CTX_free(ctx);
    event_base_free(base);
    EVP_PKEY_free(key);
    free(key_b64);
    return 0;
}
