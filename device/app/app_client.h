/*
 * The app side of an app's channel to the monitor (device/monitor/appchan.h): a small library
 * linked into apps, never into the monitor. An app started by the monitor with a channel finds it
 * at descriptor RAMPART_MONITOR_FD (4); with it, an app whose manifest has DeviceAuthentication
 * gets the device certificate chain and signs TLS 1.3 handshakes with the device's identity key —
 * through the monitor, which builds what it signs; the app never holds the key — and any app may
 * open a socket to another app when both manifests list each other.
 *
 * Typical use (examples/mqtt-publisher):
 *   rp_app_client_t c;            rp_app_client_open(&c);
 *   SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
 *   rp_app_ssl_ctx_use_identity(&c, ctx);   the chain, the remote key, TLS 1.3 only
 *   ... any TLS library on OpenSSL (libmosquitto: MOSQ_OPT_SSL_CTX) ...
 *   SSL_CTX_free(ctx); rp_app_client_close(&c);
 *
 * One thread at a time: the handshake's signature is a call on the channel, made from inside
 * OpenSSL on the thread that runs the handshake. The client struct is the caller's (no allocation
 * inside); it must outlive every key and SSL_CTX made from it.
 */
#ifndef RAMPART_APP_CLIENT_H
#define RAMPART_APP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "proto.h"
#include "rampart/crypto.h"
#include "rampart/error.h"

#define RP_APP_CLIENT_ENV "RAMPART_MONITOR_FD"
#define RP_APP_CLIENT_INCOMING_MAX 8   /* peers' sockets kept while waiting for a reply */
#define RP_APP_CLIENT_TIMEOUT_MS 30000 /* a reply slower than this: the monitor is gone */

typedef struct rp_app_client {
    int fd; /* the channel; -1 when closed */
    uint32_t next_id;
    char message[RP_MON_MESSAGE_MAX + 1]; /* the monitor's reason for the last refusal */
    struct {
        int fd;
        char component[RP_COMPONENT_NAME_MAX + 1];
    } incoming[RP_APP_CLIENT_INCOMING_MAX]; /* arrived while a reply was awaited, oldest first */
    size_t nincoming;
    uint8_t buf[RP_MON_PACKET_MAX];
    rp_mon_request_t q;
    rp_mon_reply_t p;
} rp_app_client_t;

/* The channel named by RAMPART_MONITOR_FD. RP_ERR_NOT_FOUND: the app was started without one. */
rp_err_t rp_app_client_open(rp_app_client_t *c) RP_MUST_CHECK;
/* The channel at fd (taken over: closed by rp_app_client_close). */
rp_err_t rp_app_client_open_fd(rp_app_client_t *c, int fd) RP_MUST_CHECK;
/* Close the channel and every peer socket not taken. Idempotent. */
void rp_app_client_close(rp_app_client_t *c);

/*
 * The device certificate chain (PEM: the device's certificate first, then its CAs).
 * RP_ERR_DENIED: the manifest has no DeviceAuthentication, or over the identity rate (10 at once,
 * 60 a minute: keep the chain rather than ask for it per connection); RP_ERR_NOT_FOUND: the
 * device has no certificate yet; RP_ERR_BUSY: the monitor is busy (an install): try again;
 * c->message says why. OUT: pem[0..*len), NUL-terminated (cap > *len).
 */
rp_err_t rp_app_identity(rp_app_client_t *c, char *pem, size_t cap, size_t *len) RP_MUST_CHECK;

/* One TLS 1.3 CertificateVerify signature (rp_remote_sign_tls13_fn's contract). RP_ERR_DENIED:
 * no DeviceAuthentication, or over the monitor's signing rate (c->message says which). */
rp_err_t rp_app_sign_tls13(rp_app_client_t *c, rp_tls13_side_t side, const uint8_t *hash,
                           size_t hash_len, uint8_t *sig_der, size_t cap,
                           size_t *sig_len) RP_MUST_CHECK;

/*
 * Make ctx present the device identity: the chain from rp_app_identity() (leaf and CAs), a key
 * whose signatures are rp_app_sign_tls13(), and TLS 1.3 only (the monitor signs nothing else).
 * The caller sets what it trusts (SSL_CTX_load_verify_locations) and verification itself.
 */
rp_err_t rp_app_ssl_ctx_use_identity(rp_app_client_t *c, SSL_CTX *ctx) RP_MUST_CHECK;

/*
 * A socket (SOCK_STREAM) to the app component, when both manifests list each other and it runs.
 * RP_ERR_DENIED (refused, and recorded as a security event), RP_ERR_NOT_FOUND (it does not run),
 * RP_ERR_BUSY (it has not taken the sockets it was given yet: try later), RP_ERR_IO (it does not
 * read its channel). OUT: *fd, the caller's to close.
 */
rp_err_t rp_app_connect(rp_app_client_t *c, const char *component, int *fd) RP_MUST_CHECK;

/*
 * The next socket another app opened to this one, waiting up to timeout_ms (-1: forever).
 * RP_ERR_NOT_FOUND: none came in time; RP_ERR_IO: the channel closed. OUT: component, who (at
 * least RP_COMPONENT_NAME_MAX + 1 bytes), and *fd, the caller's to close.
 */
rp_err_t rp_app_accept(rp_app_client_t *c, int timeout_ms, char *component, int *fd) RP_MUST_CHECK;

#endif /* RAMPART_APP_CLIENT_H */
