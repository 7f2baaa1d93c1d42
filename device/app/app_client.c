/*
 * The app side of the channel to the monitor (app_client.h): requests and their replies over
 * descriptor 4, the peers' sockets that arrive between them, and an SSL_CTX that presents the
 * device identity through the remote key (rampart/remote_key.h).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "app_client.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "rampart/remote_key.h"

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

rp_err_t rp_app_client_open_fd(rp_app_client_t *c, int fd)
{
    int type = 0;
    socklen_t len = sizeof(type);

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET)
        return RP_ERR_NOT_FOUND;
    c->fd = fd;
    return RP_OK;
}

rp_err_t rp_app_client_open(rp_app_client_t *c)
{
    const char *v = getenv(RP_APP_CLIENT_ENV);
    char *end;
    long fd;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (v == NULL || v[0] == '\0')
        return RP_ERR_NOT_FOUND;
    errno = 0;
    fd = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || fd < 0 || fd > INT_MAX)
        return RP_ERR_NOT_FOUND;
    return rp_app_client_open_fd(c, (int)fd);
}

void rp_app_client_close(rp_app_client_t *c)
{
    for (size_t i = 0; i < c->nincoming; i++)
        close(c->incoming[i].fd);
    c->nincoming = 0;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Read one packet from the monitor, within timeout_ms (-1: forever). An APP_INCOMING is queued
 * and *queued set; anything else is left decoded in c->p (and *fd). RP_ERR_NOT_FOUND: nothing
 * came in time; RP_ERR_IO: the channel closed. */
static rp_err_t read_packet(rp_app_client_t *c, int timeout_ms, int *fd, bool *queued)
{
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    size_t len;
    int rc;
    rp_err_t err;

    *fd = -1;
    *queued = false;
    do
        rc = poll(&pf, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return RP_ERR_IO;
    if (rc == 0)
        return RP_ERR_NOT_FOUND;
    err = rp_mon_recv(c->fd, c->buf, sizeof(c->buf), &len, fd);
    if (err == RP_ERR_NOT_FOUND)
        return RP_ERR_IO;
    if (err == RP_OK)
        err = rp_mon_reply_decode(c->buf, len, &c->p);
    if (err == RP_OK && c->p.type == RP_MON_APP_INCOMING) {
        if (*fd < 0 || c->p.status != RP_OK) {
            err = RP_ERR_MALFORMED;
        } else if (c->nincoming == RP_APP_CLIENT_INCOMING_MAX) {
            rp_log_warn("a socket from %s was dropped: %d are waiting already",
                        c->p.u.app_incoming.component, RP_APP_CLIENT_INCOMING_MAX);
            close(*fd);
        } else {
            c->incoming[c->nincoming].fd = *fd;
            snprintf(c->incoming[c->nincoming].component,
                     sizeof(c->incoming[c->nincoming].component), "%s",
                     c->p.u.app_incoming.component);
            c->nincoming++;
        }
        *fd = err == RP_OK ? -1 : *fd;
        *queued = err == RP_OK;
    }
    if (err != RP_OK && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return err;
}

/* Send c->q (its id set here) and wait for its reply in c->p. RP_OK when the monitor answered
 * RP_OK; otherwise its status, and c->message says why. OUT: *fd (-1: none; NULL: none wanted). */
static rp_err_t call(rp_app_client_t *c, int *fd)
{
    long deadline = now_ms() + RP_APP_CLIENT_TIMEOUT_MS;
    size_t len;
    int got = -1;
    bool queued;
    rp_err_t err;

    if (fd != NULL)
        *fd = -1;
    c->message[0] = '\0';
    if (c->fd < 0)
        return RP_ERR_IO;
    c->q.id = ++c->next_id;
    err = rp_mon_request_encode(&c->q, c->buf, sizeof(c->buf), &len);
    if (err == RP_OK)
        err = rp_mon_send(c->fd, c->buf, len, -1);
    for (;;) {
        long left = deadline - now_ms();
        if (err != RP_OK)
            break;
        if (left <= 0) {
            err = RP_ERR_IO;
            snprintf(c->message, sizeof(c->message), "the monitor did not answer");
            break;
        }
        err = read_packet(c, (int)left, &got, &queued);
        if (err == RP_ERR_NOT_FOUND)
            err = RP_OK; /* the deadline says */
        else if (err == RP_OK && !queued)
            break;
    }
    if (err == RP_OK && (c->p.id != c->q.id || c->p.type != c->q.type))
        err = RP_ERR_MALFORMED;
    if (err == RP_OK && c->p.status != RP_OK) {
        snprintf(c->message, sizeof(c->message), "%s", c->p.message);
        err = (rp_err_t)c->p.status;
    }
    if (err == RP_OK && fd != NULL) {
        *fd = got;
        got = -1;
    }
    if (got >= 0) {
        close(got); /* a descriptor where none belongs */
        if (err == RP_OK)
            err = RP_ERR_MALFORMED;
    }
    if (err != RP_OK && c->message[0] == '\0')
        snprintf(c->message, sizeof(c->message), "the channel to the monitor: %s",
                 rp_strerror(err));
    return err;
}

rp_err_t rp_app_identity(rp_app_client_t *c, char *pem, size_t cap, size_t *len)
{
    rp_err_t err;

    *len = 0;
    memset(&c->q, 0, sizeof(c->q));
    c->q.type = RP_MON_APP_IDENTITY;
    err = call(c, NULL);
    if (err != RP_OK)
        return err;
    if (c->p.u.app_identity.len >= cap)
        return RP_ERR_BUFFER_TOO_SMALL;
    memcpy(pem, c->p.u.app_identity.chain, c->p.u.app_identity.len);
    pem[c->p.u.app_identity.len] = '\0';
    *len = c->p.u.app_identity.len;
    return RP_OK;
}

rp_err_t rp_app_sign_tls13(rp_app_client_t *c, rp_tls13_side_t side, const uint8_t *hash,
                           size_t hash_len, uint8_t *sig_der, size_t cap, size_t *sig_len)
{
    rp_err_t err;

    *sig_len = 0;
    if (!rp_tls13_hash_len_valid(hash_len))
        return RP_ERR_INVALID_ARG;
    memset(&c->q, 0, sizeof(c->q));
    c->q.type = RP_MON_APP_SIGN_TLS13;
    c->q.u.sign_tls13.side = (uint8_t)side;
    memcpy(c->q.u.sign_tls13.hash, hash, hash_len);
    c->q.u.sign_tls13.hash_len = hash_len;
    err = call(c, NULL);
    if (err == RP_OK && c->p.u.sign_tls13.len > cap)
        err = RP_ERR_BUFFER_TOO_SMALL;
    if (err == RP_OK) {
        memcpy(sig_der, c->p.u.sign_tls13.sig, c->p.u.sign_tls13.len);
        *sig_len = c->p.u.sign_tls13.len;
    } else {
        rp_log_warn("the monitor did not sign: %s", c->message);
    }
    return err;
}

static rp_err_t sign_cb(void *ctx, rp_tls13_side_t side, const uint8_t *hash, size_t hash_len,
                        uint8_t *sig_der, size_t cap, size_t *sig_len)
{
    return rp_app_sign_tls13(ctx, side, hash, hash_len, sig_der, cap, sig_len);
}

rp_err_t rp_app_ssl_ctx_use_identity(rp_app_client_t *c, SSL_CTX *ctx)
{
    static char pem[RP_MON_CHAIN_MAX + 1];
    uint8_t *spki = NULL;
    size_t len = 0;
    X509 *leaf = NULL, *ca;
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;
    int spki_len;
    rp_err_t err = rp_app_identity(c, pem, sizeof(pem), &len);

    if (err != RP_OK)
        return err;
    err = RP_ERR_MALFORMED;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio != NULL)
        leaf = PEM_read_bio_X509(bio, NULL, rp_pem_no_passphrase, NULL);
    if (leaf == NULL || (spki_len = i2d_PUBKEY(X509_get0_pubkey(leaf), &spki)) <= 0)
        goto out;
    key = rp_remote_key_new_tls13(spki, (size_t)spki_len, sign_cb, c);
    if (key == NULL || SSL_CTX_use_certificate(ctx, leaf) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_clear_chain_certs(ctx) != 1)
        goto out;
    /* The rest of the file: the CAs, sent with the leaf. */
    while ((ca = PEM_read_bio_X509(bio, NULL, rp_pem_no_passphrase, NULL)) != NULL)
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            goto out;
        }
    ERR_clear_error(); /* the end of the file reads as an error */
    /* The monitor signs a TLS 1.3 CertificateVerify and nothing else. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
        goto out;
    err = RP_OK;
out:
    if (err != RP_OK)
        snprintf(c->message, sizeof(c->message),
                 "the device certificate chain could not be used with OpenSSL");
    OPENSSL_free(spki);
    EVP_PKEY_free(key); /* the SSL_CTX holds its own reference */
    X509_free(leaf);
    BIO_free(bio);
    return err;
}

rp_err_t rp_app_connect(rp_app_client_t *c, const char *component, int *fd)
{
    *fd = -1;
    if (component == NULL || !rp_component_name_valid(component, strlen(component)))
        return RP_ERR_INVALID_ARG;
    memset(&c->q, 0, sizeof(c->q));
    c->q.type = RP_MON_APP_CONNECT;
    snprintf(c->q.u.app_connect.component, sizeof(c->q.u.app_connect.component), "%s", component);
    return call(c, fd);
}

rp_err_t rp_app_accept(rp_app_client_t *c, int timeout_ms, char *component, int *fd)
{
    long deadline = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;
    int got;
    bool queued;
    rp_err_t err;

    *fd = -1;
    while (c->nincoming == 0) {
        long left = timeout_ms < 0 ? -1 : deadline - now_ms();
        if (timeout_ms >= 0 && left <= 0)
            return RP_ERR_NOT_FOUND;
        if (c->fd < 0)
            return RP_ERR_IO;
        err = read_packet(c, (int)left, &got, &queued);
        if (err == RP_ERR_NOT_FOUND)
            continue;
        if (err != RP_OK)
            return err;
        if (!queued) { /* a reply nobody asked for */
            if (got >= 0)
                close(got);
            return RP_ERR_MALFORMED;
        }
    }
    *fd = c->incoming[0].fd;
    snprintf(component, RP_COMPONENT_NAME_MAX + 1, "%s", c->incoming[0].component);
    c->nincoming--;
    memmove(&c->incoming[0], &c->incoming[1], c->nincoming * sizeof(c->incoming[0]));
    return RP_OK;
}
