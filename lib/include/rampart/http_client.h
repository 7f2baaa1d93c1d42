/*
 * The HTTPS client Rampart's programs share (libcurl): TLS 1.2+ with a given CA file, optional
 * bearer token and client certificate, bounded response size, clear errors.
 */
#ifndef RAMPART_HTTP_CLIENT_H
#define RAMPART_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "rampart/error.h"

#define RP_HTTP_MAX_RESPONSE (4 * 1024 * 1024)

typedef struct rp_http_opts {
    const char *ca_file;      /* the CA that signed the server's certificate (required) */
    const char *token;        /* bearer token, or NULL */
    const char *content_type; /* of the request body, or NULL */
    long timeout;             /* seconds; 0: 30 */
    /* Called with curl's SSL_CTX before the handshake: lets a caller put a client key there (a
     * key in a TPM cannot be named by a file). NULL: no client certificate. */
    int (*ssl_ctx_fn)(SSL_CTX *ctx, void *arg);
    void *ssl_ctx_arg;
    /* Told now and then how far it is: rp_http_download, bytes in the file of total;
     * rp_http_request, bytes of its body sent (of len), or with no body, of the answer
     * received (total 0 until known). NULL: not told. */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
    /* rp_http_request: seconds in all that 503s naming their wait (Retry-After: the service's
     * database busy or restarting) are waited out, the request sent again after each; each wait
     * at most RP_HTTP_BUSY_WAIT_MAX seconds. 0: none (the 503 is the answer). */
    long busy_wait;
} rp_http_opts_t;

#define RP_HTTP_BUSY_WAIT_MAX 30 /* seconds: one wait at most, whatever Retry-After says */
#define RP_HTTP_BUSY_WAIT 60     /* seconds in all: what the CLI and the agent's requests allow */

typedef struct rp_http_response {
    long status;
    char *body; /* NUL-terminated; free() */
    size_t len;
    long retry_after; /* seconds the server asked to wait (Retry-After), 0 when it did not */
    char error[256];  /* transport failure, when the request did not complete */
} rp_http_response_t;

/* Called about once a second while rp_http_request waits out a 503 (busy_wait), so that a
 * daemon's loop goes on telling its watchdog; false ends the wait (the 503 is the answer: the
 * daemon is stopping). NULL, the default: the wait only sleeps. Set before any request. */
void rp_http_set_wait_hook(bool (*hook)(void));

/* Perform one request (again after a 503 with Retry-After, for opts->busy_wait seconds at most).
 * RP_OK means an HTTP response arrived (any status); otherwise resp->error says why not. */
rp_err_t rp_http_request(const char *method, const char *url, const rp_http_opts_t *opts,
                         const void *body, size_t len, rp_http_response_t *resp) RP_MUST_CHECK;
void rp_http_response_free(rp_http_response_t *resp);

/* Makes a request's body from its TLS connection's binding (rampart/attest_binding.h). OUT: *out
 * (malloc'd, taken), *out_len. */
typedef rp_err_t (*rp_http_bound_body_fn)(void *arg, const uint8_t *binding, size_t len, char **out,
                                          size_t *out_len);

/*
 * rp_http_request's POST whose body is made once the connection is up, by make from that
 * connection's binding, and sent chunked: what channel-bound attestation sends. A connection
 * that has no binding (not TLS 1.3, or a libcurl not on OpenSSL) ends the request before any
 * byte of its body: RP_ERR_UNSUPPORTED, and only then (the caller may use a flow that needs
 * none). A body that make cannot make ends it too (RP_ERR_IO). resp->error says which. Made
 * again for each connection a 503 leads to.
 */
rp_err_t rp_http_post_bound(const char *url, const rp_http_opts_t *opts, rp_http_bound_body_fn make,
                            void *arg, rp_http_response_t *resp) RP_MUST_CHECK;

/*
 * Download url into fd, resuming where the file ends (an HTTP Range request; a server that
 * answers the whole file instead starts it over). The file never grows past max bytes: a server
 * that sends more is cut off (RP_ERR_TOO_LARGE). OUT: *status (the HTTP status: 200 or 206 mean
 * the bytes are in fd; others wrote nothing); error says why on failure.
 */
rp_err_t rp_http_download(const char *url, const rp_http_opts_t *opts, int fd, uint64_t max,
                          long *status, char *error, size_t error_cap) RP_MUST_CHECK;

/* s percent-encoded for one URL path segment (malloc'd; NULL when out of memory). */
char *rp_http_escape(const char *s);

#endif /* RAMPART_HTTP_CLIENT_H */
