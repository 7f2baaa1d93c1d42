/*
 * The request/reply interface: all a handler sees of the transport (http.c implements it). A
 * handler gets an rp_req_t, reads the request with these accessors (the body, bounded; its JSON;
 * the client certificate; the path's parameters through routes.h) and answers with one rp_reply_*
 * call. Which handler runs is the route table's business (routes.c); the transport's own state
 * (listeners, TLS, connections, the worker loops) is in http.h, which no handler includes.
 */
#ifndef RAMPART_SERVER_REQ_H
#define RAMPART_SERVER_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/http.h>
#include <jansson.h>
#include <openssl/x509.h>

#include "ratelimit.h"
#include "store.h"

#define RP_MAX_BODY (64 * 1024)             /* no request body is larger, but for: */
#define RP_UPLOAD_CHUNK_MAX (1024 * 1024)   /* one chunk of an image upload */
#define RP_MAX_BODY_ANY RP_UPLOAD_CHUNK_MAX /* what evhttp reads at most (413 beyond) */
#define RP_MAX_HEADERS (16 * 1024)

typedef struct rp_worker rp_worker_t; /* the worker serving the request (context.h) */
struct rp_route;

/* What a handler needs: the worker, the request, and its parsed path. */
typedef struct rp_req {
    rp_worker_t *w;
    struct evhttp_request *req;
    enum evhttp_cmd_type method;
    const char *path;
    char *parts[10]; /* path segments, decoded */
    int nparts;
    /* Set by rp_route_dispatch() (routes.h) before the handler runs: */
    const struct rp_route *route; /* the route matched */
    rp_token_t tok;               /* RP_AUTH_TOKEN: the caller's token */
    rp_tenant_t tenant;           /* a path naming {tenant}: that tenant */
    rp_device_t device;           /* RP_AUTH_DEVICE: the caller */
    bool by_session;              /* authenticated by the console's session cookie */
    int64_t session_expires;      /* then: when the session ends */
} rp_req_t;

/* Seconds a client is asked to wait (Retry-After) when the database was busy or out of reach. */
#define RP_RETRY_AFTER_BUSY "2"

/*
 * Responses. Every error is JSON: {"error": code, "message": text}. A 500 sent after the worker's
 * store met a busy or unreachable database in this request (rp_store_failure) goes out as that
 * failure's status instead (rp_reply_failure's), so that no handler decides it.
 */
void rp_reply_json(rp_req_t *r, int status, json_t *body); /* takes body */
void rp_reply_error(rp_req_t *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A failure of err's class, with the one status each has: RP_ERR_BUSY 503 "unavailable" with
 * Retry-After: RP_RETRY_AFTER_BUSY; RP_ERR_INVALID_ARG 400 "bad_request"; any other 500. */
void rp_reply_failure(rp_req_t *r, rp_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rp_reply_bytes(rp_req_t *r, int status, const char *type, const void *data, size_t len);

/* The request body, at most max bytes; NULL when it is larger (413 sent) or cannot be read (500
 * sent). rp_req_body() allows RP_MAX_BODY, what every request but an upload's chunk may carry. */
const uint8_t *rp_req_body_upto(rp_req_t *r, size_t max, size_t *len);
const uint8_t *rp_req_body(rp_req_t *r, size_t *len);
/* The body parsed as a JSON object; on failure a 400 has been sent and NULL is returned. */
json_t *rp_req_json(rp_req_t *r);

/* The client certificate of the request's TLS connection, or NULL. Not verified: callers verify
 * it against the right tenant's CA. */
X509 *rp_req_peer_cert(rp_req_t *r);
/* Whether peer, the request's client certificate, chains to ca and is valid now
 * (rp_cert_chains_to), verified once per TLS connection and CA: later requests on the connection
 * check only the time. Revocation, quarantine and blocking are for the caller, per request. */
bool rp_req_peer_chains_to(rp_req_t *r, X509 *peer, X509 *ca);

/*
 * Channel-bound attestation (rampart/attest_binding.h): whether evidence whose eat_nonce is
 * binding (RP_ATTEST_BINDING_LEN bytes) may attest on the request's connection, and if so the
 * connection's use of it, spent. In order: RP_BINDING_MISMATCH unless binding is this
 * connection's exporter (compared in constant time; a connection that is not TLS 1.3 has none),
 * RP_BINDING_EXPIRED when the connection is more than max_age seconds old (counted from its
 * accept: the nonce flow's lifetime, so that bound evidence is as fresh as a nonce's), and
 * RP_BINDING_REUSED when bound evidence already passed this check on it: a connection attests
 * once. Nothing is written: the state is the connection's, and goes with it.
 */
typedef enum rp_binding_result {
    RP_BINDING_OK = 0,
    RP_BINDING_MISMATCH,
    RP_BINDING_EXPIRED,
    RP_BINDING_REUSED,
} rp_binding_result_t;
rp_binding_result_t rp_req_binding_spend(rp_req_t *r, const uint8_t *binding, size_t len,
                                         int max_age);

/*
 * Where a streamed reply's bytes come from (rp_reply_stream), read a chunk (at most 256 KiB) at a
 * time on the worker's loop as the client takes the last one: read copies up to len bytes at off
 * into buf and returns how many (0: the source ended before the length announced), or -1; close
 * frees ctx, once, whatever happens to the reply.
 */
typedef struct rp_reply_source {
    ssize_t (*read)(void *ctx, uint64_t off, void *buf, size_t len);
    void (*close)(void *ctx);
    void *ctx;
} rp_reply_source_t;
/* Reply with len bytes of src from off (src is taken). */
void rp_reply_stream(rp_req_t *r, int status, const char *type, rp_reply_source_t src, uint64_t off,
                     uint64_t len);

/*
 * A Range header (RFC 9110 14.2) against a body of size bytes: "bytes=A-B", "bytes=A-" or
 * "bytes=-N", the unit in any case. OUT: *start, *len of the one range to send (206). false when
 * the whole body is sent instead (200): no header, one that is not a range set, or several ranges
 * of which one at least is satisfiable; or, with *unsatisfiable, when none is (416: each starts at
 * or past the end, or is "-0"). Positions past 2^64 - 1 saturate. Pure: unit-tested and fuzzed.
 */
bool rp_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len,
                    bool *unsatisfiable);

/* Whether a request of the calling device (r->device: a DEVICE route) is within the limit rl, a
 * token bucket per device ID (one limiter per route; in each replica's memory); false: 429
 * `rate_limited` with `Retry-After: retry_after` and message sent. rl NULL refuses (fail closed).
 * The one per-device limit: reports.c (batches) and est.c (re-enrollments) call it. */
bool rp_device_rate_allowed(rp_req_t *r, rp_ratelimit_t *rl, int retry_after, const char *message);
/* Answer 429 `rate_limited` with `Retry-After: retry_after` (seconds) and message: a limit
 * counted elsewhere (the database's, for EST re-enrollments across replicas). */
void rp_reply_rate_limited(rp_req_t *r, int retry_after, const char *message);
/* Whether a request anyone may make is within its address's limit (--rate-limit); false: 429
 * sent. Every per-address limit (this one, the login and the wrong-token ones) counts a client
 * under rp_peer_key()'s key: an IPv6 client by its /64, as the connection cap does. */
bool rp_rate_allowed(rp_req_t *r);
/* Whether one more attestation of a device no tenant has claimed may be checked now; false: 429
 * sent. All unclaimed devices share one budget (--unclaimed-rate), so that keys made up by the
 * million, from as many addresses, cannot fill the attestation records. */
bool rp_unclaimed_allowed(rp_req_t *r);
/* Whether a console login from the request's address may be tried now (--login-rate: failed
 * logins, in a bucket of their own, apart from attestation's); false: 429 sent, nothing checked.
 * It takes nothing: only a credential checked and found wrong spends the budget
 * (rp_login_failed), so a request refused before any check (another site's form, a malformed
 * body) never does, and cannot lock an operator out. */
bool rp_login_allowed(rp_req_t *r);
void rp_login_failed(rp_req_t *r);
/* Whether a bearer token from the request's address may be checked now (--auth-fail-rate: wrong
 * tokens, in a bucket of their own); false: 429 sent, the token unchecked, right or wrong. Only a
 * wrong token spends the budget (rp_auth_failed), so a good token never does, and one address's
 * guesses never slow another's requests. */
bool rp_auth_allowed(rp_req_t *r);
void rp_auth_failed(rp_req_t *r);

/* An ISO 8601 UTC time, "2026-11-25T12:00:00Z". */
void rp_iso_time(int64_t t, char out[32]);
/* The same as a JSON string; 0 (never) is null. */
json_t *rp_iso_time_json(int64_t t);

/* What devices send as JSON, checked one way for every body (status.c, reports.c). A JSON string
 * of at most max bytes holding no NUL, borrowed from v; NULL otherwise. */
const char *rp_json_text(json_t *v, size_t max);
/* Whether s is 1 to max of [a-z_]: a kind, state or code as the device spells it ("" only when
 * empty_ok; NULL never). */
bool rp_word_valid(const char *s, size_t max, bool empty_ok);
/* Whether o is an object with exactly the n keys named. */
bool rp_json_has_exactly(json_t *o, const char *const *keys, size_t n);

#endif /* RAMPART_SERVER_REQ_H */
