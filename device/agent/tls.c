/*
 * TLS with the device certificate: device-to-device mutual TLS. Peers are trusted when their
 * certificate chains to the tenant CA the device got with its own certificate (ca-chain.pem); the
 * CN is the peer's device ID.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "rampart/log.h"
#include "tls.h"

#define PEER_WAIT_MS 30000

static int verify_log(int ok, X509_STORE_CTX *x)
{
    if (!ok)
        rp_log_debug("TLS: peer certificate (depth %d): %s", X509_STORE_CTX_get_error_depth(x),
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)));
    return ok;
}

static SSL_CTX *device_ctx(rp_agent_t *a, const SSL_METHOD *method, const char *trust)
{
    char cert[PATH_MAX + 64], ca[PATH_MAX + 64];
    SSL_CTX *ctx;

    if (rp_agent_file(a, "device.crt", cert, sizeof(cert)) != RP_OK ||
        rp_agent_file(a, "ca-chain.pem", ca, sizeof(ca)) != RP_OK)
        return NULL;
    switch (rp_agent_check_certificate(a)) {
    case RP_OK: break;
    case RP_ERR_NOT_FOUND: rp_log_error("%s: no certificate yet: attest first", cert); return NULL;
    default: return NULL; /* said what is wrong with which file */
    }
    /* Through the monitor the key signs TLS 1.3 only (rp_agent_ssl_ctx_use). */
    if (a->rot != NULL) {
        ctx = rp_rot_ssl_ctx(a->rot, method, cert);
    } else {
        ctx = SSL_CTX_new(method);
        if (ctx != NULL && rp_agent_ssl_ctx_use(a, ctx, cert) != 1) {
            SSL_CTX_free(ctx);
            ctx = NULL;
        }
    }
    if (ctx == NULL)
        return NULL;
    if (SSL_CTX_load_verify_locations(ctx, trust != NULL ? trust : ca, NULL) != 1) {
        rp_log_error("%s: cannot load: %s", trust != NULL ? trust : ca,
                     ERR_error_string(ERR_peek_last_error(), NULL));
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_log);
    return ctx;
}

/* The peer's device ID from its (verified) certificate, or "" if it has none. */
static void peer_id(SSL *ssl, char id[RP_DEVICE_ID_SIZE])
{
    X509 *peer = SSL_get0_peer_certificate(ssl);

    id[0] = '\0';
    if (peer == NULL ||
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, id,
                                  RP_DEVICE_ID_SIZE) != RP_DEVICE_ID_LEN ||
        !rp_device_id_valid(id))
        id[0] = '\0';
}

static rp_err_t handshake_done(SSL *ssl, int rc, const char *what)
{
    char id[RP_DEVICE_ID_SIZE];

    if (rc != 1 || SSL_get_verify_result(ssl) != X509_V_OK) {
        long v = SSL_get_verify_result(ssl);
        rp_log_error("%s: refused: %s", what,
                     v != X509_V_OK ? X509_verify_cert_error_string(v)
                                    : ERR_error_string(ERR_peek_last_error(), NULL));
        ERR_clear_error();
        return RP_ERR_BAD_SIGNATURE;
    }
    peer_id(ssl, id);
    if (id[0] == '\0') {
        rp_log_error("%s: the peer's certificate names no device", what);
        return RP_ERR_BAD_KEY;
    }
    printf("peer device %s authenticated\n", id);
    fflush(stdout);
    return RP_OK;
}

static int tcp_socket(const char *host, int port, bool listening, int *bound)
{
    struct addrinfo hints = {0}, *res = NULL;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    char p[16];
    int fd, one = 1;

    snprintf(p, sizeof(p), "%d", port);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, p, &hints, &res) != 0)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && listening &&
        (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
         bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4) != 0 ||
         getsockname(fd, (struct sockaddr *)&sa, &len) != 0)) {
        close(fd);
        fd = -1;
    } else if (fd >= 0 && !listening && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0 && listening)
        *bound = ntohs(sa.sin_port);
    freeaddrinfo(res);
    return fd;
}

rp_err_t rp_agent_peer_serve(rp_agent_t *a, const char *host, int port)
{
    SSL_CTX *ctx = device_ctx(a, TLS_server_method(), NULL);
    struct pollfd pfd;
    int lfd, fd, bound = 0;
    rp_err_t err;
    SSL *ssl;

    if (ctx == NULL)
        return RP_ERR_BAD_KEY;
    lfd = tcp_socket(host, port, true, &bound);
    if (lfd < 0) {
        SSL_CTX_free(ctx);
        return RP_ERR_IO;
    }
    printf("listening on %s:%d\n", host, bound);
    fflush(stdout);
    /* One peer, and not forever: a peer that never comes is an error. */
    pfd.fd = lfd;
    pfd.events = POLLIN;
    fd = poll(&pfd, 1, PEER_WAIT_MS) == 1 ? accept(lfd, NULL, NULL) : -1;
    if (fd < 0)
        rp_log_error("no peer connected within %d s", PEER_WAIT_MS / 1000);
    close(lfd);
    ssl = fd >= 0 ? SSL_new(ctx) : NULL;
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        err = RP_ERR_IO;
    } else {
        err = handshake_done(ssl, SSL_accept(ssl), "peer");
        if (err == RP_OK)
            SSL_write(ssl, a->device_id, (int)strlen(a->device_id));
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    return err;
}

rp_err_t rp_agent_peer_connect(rp_agent_t *a, const char *host, int port)
{
    SSL_CTX *ctx = device_ctx(a, TLS_client_method(), NULL);
    char buf[RP_DEVICE_ID_SIZE];
    int fd, n, unused;
    rp_err_t err;
    SSL *ssl;

    if (ctx == NULL)
        return RP_ERR_BAD_KEY;
    fd = tcp_socket(host, port, false, &unused);
    ssl = fd >= 0 ? SSL_new(ctx) : NULL;
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        rp_log_error("cannot connect to %s:%d", host, port);
        err = RP_ERR_IO;
    } else {
        err = handshake_done(ssl, SSL_connect(ssl), "peer");
        /* In TLS 1.3 the server judges the client's certificate after the client's handshake
         * ends: reading its first message is what tells whether it accepted us. */
        if (err == RP_OK) {
            n = SSL_read(ssl, buf, sizeof(buf) - 1);
            if (n <= 0) {
                rp_log_error("peer: it did not accept this device");
                err = RP_ERR_BAD_SIGNATURE;
            }
        }
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return err;
}
