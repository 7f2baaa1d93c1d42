/*
 * The security service's process: shared configuration, worker threads (each with its own event
 * loop, HTTP server and database connection), request helpers, metrics. Handlers live in api.c
 * (operators), attest.c (devices) and est.c (RFC 7030).
 */
#ifndef RAMPART_SERVER_H
#define RAMPART_SERVER_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "ca.h"
#include "nonce.h"
#include "peers.h"
#include "ratelimit.h"
#include "routes.h"
#include "rampart/base64.h"
#include "store.h"

#define RP_MAX_BODY (64 * 1024)             /* no request body is larger, but for: */
#define RP_UPLOAD_CHUNK_MAX (1024 * 1024)   /* one chunk of an image upload */
#define RP_MAX_BODY_ANY RP_UPLOAD_CHUNK_MAX /* what evhttp reads at most (413 beyond) */
#define RP_IMAGE_MAX (128ull * 1024 * 1024) /* an uploaded image */
#define RP_MAX_HEADERS (16 * 1024)
#define RP_NONCE_LIFETIME 60 /* seconds a nonce stays usable */
#define RP_CA_CACHE 32       /* tenant CAs each worker keeps decrypted */
#define RP_CA_CACHE_TTL 600  /* seconds before a cached CA is read again */

/* An upload at most: an image (RP_IMAGE_MAX) or a debug file (reports.h, RP_SYMBOLS_MAX). */
#define RP_UPLOAD_MAX (256ull * 1024 * 1024)

/* Why an attestation failed: fixed codes, recorded and exported as metric labels. */
typedef enum rp_attest_reason {
    RP_REASON_PASS = 0,
    RP_REASON_MALFORMED_EVIDENCE,
    RP_REASON_BAD_SIGNATURE,
    RP_REASON_UEID_MISMATCH,
    RP_REASON_NONCE_UNKNOWN,
    RP_REASON_NONCE_REPLAYED,
    RP_REASON_NONCE_EXPIRED,
    RP_REASON_NONCE_WRONG_DEVICE,
    RP_REASON_UNCLAIMED,
    RP_REASON_BLOCKED,
    RP_REASON_MEASUREMENTS_INCONSISTENT,
    RP_REASON_POLICY,
    RP_REASON_UNKNOWN_IMAGE,    /* runs an image its tenant never uploaded */
    RP_REASON_DEBUG_ENABLED,    /* debug status "enabled", and the tenant's policy refuses it */
    RP_REASON_NO_COMPONENTS,    /* no component measured, and the policy requires one */
    RP_REASON_NO_REGISTER,      /* no measurement register, and the policy requires it */
    RP_REASON_SECURITY_COUNTER, /* a known image with another security counter than it holds */
    RP_REASON_DEVELOPMENT,      /* in development mode, and the tenant's policy refuses it */
    RP_REASON_QUARANTINED,      /* quarantined by the tenant's policy (threat.c) until released */
    RP_REASON_COUNT,
} rp_attest_reason_t;

const char *rp_attest_reason_code(rp_attest_reason_t r);

typedef struct rp_metrics {
    atomic_ullong requests[6];      /* by status class: 1xx..5xx, [0] other */
    atomic_ullong requests_resumed; /* of them, over a resumed TLS session */
    atomic_ullong attestations[RP_REASON_COUNT];
    atomic_ullong certificates_issued;
    atomic_ullong nonces_issued;
    atomic_ullong image_bytes_sent;  /* image bytes devices were sent (ranges count their part) */
    atomic_ullong limited_address;   /* attestation requests answered 429: their address's limit */
    atomic_ullong limited_unclaimed; /* ...: the limit shared by every unclaimed device */
    atomic_ullong limited_login; /* console logins answered 429: failed logins from the address */
    atomic_ullong limited_token; /* token requests answered 429: wrong tokens from the address */
    atomic_ullong connections_refused; /* at the connection limit, refused after the ClientHello */
    atomic_ullong crl_builds;          /* CRLs made and signed (the rest were served cached) */
    atomic_ullong attestations_unproven; /* failures that prove nothing about the device: counted
                                          * per source address, not in its history */
    atomic_ullong connections_refused_address; /* at the per-address cap, closed when accepted */
    atomic_ullong connections_deadline;        /* closed at the request deadline */
} rp_metrics_t;

typedef struct rp_recorder rp_recorder_t;

/* A tenant's CRL as made and signed, for the requests that follow (api.c). */
typedef struct rp_crl_cached {
    char tenant_id[RP_ID_SIZE];
    int64_t version; /* the tenant's revocation count it lists (rp_store_crl_version) */
    int64_t made, next_update;
    uint8_t *der; /* malloc'd; NULL: not made yet (a slot with no tenant_id is empty) */
    size_t len;
    char etag[48];
} rp_crl_cached_t;

typedef struct rp_server {
    char data_dir[PATH_MAX];
    uint8_t master_key[RP_MASTER_KEY_LEN];
    uint8_t nonce_key[RP_NONCE_KEY_LEN]; /* derived from the master key */
    SSL_CTX *ssl_ctx; /* the TLS identity the workers take at start (each keeps its own: reload) */
    atomic_int nonce_lifetime; /* atomic: changed at SIGHUP (main.c), as are those marked so */
    rp_recorder_t *recorder;
    rp_ratelimit_t *ratelimit; /* for the requests anyone may make; NULL: none */
    /* one bucket for all attestations of unclaimed devices (NULL: none), and the Retry-After of
     * its 429: the seconds a token takes to come back, at least 10 */
    rp_ratelimit_t *unclaimed;
    atomic_int unclaimed_retry; /* seconds (reload) */
    int max_connections;        /* open at once, over all workers */
    atomic_int connections;     /* open now (TLS state allocated) */
    rp_metrics_t metrics;
    atomic_bool ready;
    /* Each tenant's CRL as made and signed, shared by the workers (so every worker answers with
     * the same bytes and ETag): api.c, under crl_lock. */
    pthread_mutex_t crl_lock;
    rp_crl_cached_t *crls; /* open addressing by tenant ID, grown with the tenants (never a
                            * fixed number a flood over more tenants could churn) */
    size_t crls_cap, crls_used;
    /* connections open from one address at most (--max-connections-per-address; 0: no cap),
     * counted in peers (NULL: no cap) */
    unsigned max_per_address;
    rp_peers_t *peers;
    atomic_int request_deadline;       /* seconds for a whole request to arrive (reload) */
    atomic_bool webhook_allow_private; /* webhooks to inside addresses (tests; reload) */
    int beat_ms;                /* how often each worker's loop says it turns (ready.c), in ms */
    char console_dir[PATH_MAX]; /* the console's files (--console-dir), resolved; "": none */
    /* Failed console logins per address (--login-rate; NULL: none), and the Retry-After of its
     * 429 in seconds (reload). */
    rp_ratelimit_t *login_limit;
    atomic_int login_retry;
    /* Wrong bearer tokens per address (--auth-fail-rate), and its 429's Retry-After (reload). */
    rp_ratelimit_t *auth_limit;
    atomic_int auth_retry;
} rp_server_t;

typedef struct rp_record_job rp_record_job_t;

typedef struct rp_worker {
    rp_server_t *srv;
    struct event_base *base;
    struct evhttp *http;
    rp_store_t *store;
    rp_ca_t cas[RP_CA_CACHE];
    pthread_t thread;
    /* records the recorder has written, for this worker's loop to answer */
    struct event *recorded;
    /* accepting stops while the connection limit is reached, and resumes on this timer */
    struct evconnlistener *listener;
    struct event *accept_timer;
    pthread_mutex_t recorded_lock;
    rp_record_job_t *recorded_head;
    /* The TLS identity new connections take; a reload swaps it under ctx_lock (a connection
     * keeps the one it was made with). */
    pthread_mutex_t ctx_lock;
    SSL_CTX *ssl_ctx;
    /* The loop's heartbeat (ready.c): the monotonic ms it last ran at, every srv->beat_ms. */
    struct event *beat_timer;
    atomic_llong beat;
} rp_worker_t;

/*
 * An attestation record on its way to the disk. The handler fills write (its pointers must stay
 * valid until done), sets worker and done, and submits it; done(job) then runs on the worker's
 * loop, once err (the transaction's result) and write.as say how it went. Handlers embed it in
 * their own state.
 */
struct rp_record_job {
    rp_attestation_write_t write;
    rp_err_t err;
    rp_worker_t *worker;
    void (*done)(rp_record_job_t *job);
    rp_record_job_t *next;
    /* Another write than an attestation's (a batch of failure reports: reports.c). When set, the
     * recorder calls it on its thread with its connection, inside the round's one transaction
     * and in a savepoint of its own (its failure undoes only its part), instead of recording
     * write; err is then what it returned, or the commit's failure. What it must tell once
     * committed (threat.h's news) it keeps in its own state, for done to tell when err is RP_OK. */
    rp_err_t (*store)(rp_record_job_t *job, rp_store_t *s);
    /* Optional, with store: once every job of the round has stored, settle is called once with
     * the round's jobs that share it and stored (a list through settle_next), in the same
     * transaction and a savepoint of its own, for what is cheaper done once for all (threat
     * detection's counts). Its failure is its own to log: their err stays RP_OK. */
    void (*settle)(rp_record_job_t *jobs, rp_store_t *s);
    rp_record_job_t *settle_next;
    size_t bytes; /* memory it holds while it waits, against RP_RECORDER_QUEUE_BYTES */
};

#define RP_RECORDER_QUEUE_MAX 20000 /* records waiting; beyond it, new attestations get 503 */
#define RP_RECORDER_BATCH_MAX 1024  /* records in one transaction */
#define RP_RECORDER_QUEUE_BYTES (64u * 1024 * 1024) /* jobs' bytes waiting; beyond, 503 */

/* The recorder thread (recorder.c): group commit of attestation records. */
rp_err_t rp_recorder_start(const char *data_dir, rp_recorder_t **rec) RP_MUST_CHECK;
/* Queue a job; false (nothing queued) when RP_RECORDER_QUEUE_MAX are waiting already. */
bool rp_recorder_submit(rp_recorder_t *rec, rp_record_job_t *job);
/* Write everything submitted, hand it back to the workers, and stop. */
void rp_recorder_stop(rp_recorder_t *rec);
/* Rounds written (each one transaction, whatever it held) and jobs in them, for /metrics. */
void rp_recorder_counts(rp_recorder_t *rec, unsigned long long *rounds, unsigned long long *jobs);
void rp_recorder_metrics(rp_recorder_t *rec, struct evbuffer *buf);
/* Tests only: make the next n rounds' commits fail (rolled back, every job answered RP_ERR_IO). */
void rp_recorder_fail_commits(rp_recorder_t *rec, int n);
/* From the recorder: queue a written job for its worker's loop (thread-safe). */
void rp_worker_complete(rp_worker_t *w, rp_record_job_t *job);

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

/* Responses. Every error is JSON: {"error": code, "message": text}. */
void rp_reply_json(rp_req_t *r, int status, json_t *body); /* takes body */
void rp_reply_error(rp_req_t *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void rp_reply_bytes(rp_req_t *r, int status, const char *type, const void *data, size_t len);

/* The request body, at most max bytes; NULL when it is larger (413 sent) or cannot be read (500
 * sent). rp_req_body() allows RP_MAX_BODY, what every request but an upload's chunk may carry. */
const uint8_t *rp_req_body_upto(rp_req_t *r, size_t max, size_t *len);
const uint8_t *rp_req_body(rp_req_t *r, size_t *len);
/* The body parsed as a JSON object; on failure a 400 has been sent and NULL is returned. */
json_t *rp_req_json(rp_req_t *r);

/* The body's "device_ids": 1 to 1000 valid device IDs (borrowed from *body, which the caller
 * frees); on failure a 400 has been sent and NULL is returned. */
json_t *rp_req_device_ids(rp_req_t *r, json_t **body);

/* The verified tenant CA of a tenant, from the worker's cache or the store. */
rp_err_t rp_worker_ca(rp_worker_t *w, const rp_tenant_t *tenant, const rp_ca_t **ca) RP_MUST_CHECK;
/* The same by tenant ID: the tenant is read only when its CA is not cached. */
rp_err_t rp_worker_ca_by_id(rp_worker_t *w, const char *tenant_id,
                            const rp_ca_t **ca) RP_MUST_CHECK;

/* The client certificate of the request's TLS connection, or NULL. Not verified: callers verify
 * it against the right tenant's CA. */
X509 *rp_req_peer_cert(rp_req_t *r);
/* Whether peer, the request's client certificate, chains to ca and is valid now
 * (rp_cert_chains_to), verified once per TLS connection and CA: later requests on the connection
 * check only the time. Revocation, quarantine and blocking are for the caller, per request. */
bool rp_req_peer_chains_to(rp_req_t *r, X509 *peer, X509 *ca);

/*
 * The attestation request's body: {"evidence": base64 COSE_Sign1, "public_key": base64 DER
 * SubjectPublicKeyInfo of a P-256 key in its canonical form}. OUT: *evidence (malloc'd), spki;
 * on failure *error (a code) and *message say why. Pure: the fuzz target calls it.
 */
rp_err_t rp_attest_request_parse(const uint8_t *body, size_t len, uint8_t **evidence,
                                 size_t *evidence_len, uint8_t spki[RP_PUBKEY_DER_MAX],
                                 size_t *spki_len, const char **error,
                                 const char **message) RP_MUST_CHECK;

/* Whether cert chains to ca and is valid now for client authentication. */
bool rp_cert_chains_to(X509 *cert, X509 *ca);
/* A certificate's serial, lowercase hex. */
void rp_cert_serial_hex(X509 *cert, char out[RP_SERIAL_SIZE]);

/* Reply with len bytes of a file from off (fd is taken and closed). */
void rp_reply_file(rp_req_t *r, int status, const char *type, int fd, uint64_t off, uint64_t len);

/*
 * A Range header's first range against a size: "bytes=A-B", "bytes=A-" or "bytes=-N". OUT: *start,
 * *len. false when the header is absent, not one of these forms, or several ranges (the whole
 * body is sent); *unsatisfiable when it starts past the end (416). Pure: unit-tested.
 */
bool rp_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len,
                    bool *unsatisfiable);

/* Whether a request anyone may make is within its address's limit (--rate-limit); false: 429
 * sent. */
bool rp_rate_allowed(rp_req_t *r);
/* Whether one more attestation of a device no tenant has claimed may be checked now; false: 429
 * sent. All unclaimed devices share one budget (--unclaimed-rate), so that keys made up by the
 * million, from as many addresses, cannot fill the attestation records. */
bool rp_unclaimed_allowed(rp_req_t *r);
/* Whether a console login from the request's address may be tried now (--login-rate: failed
 * logins, in a bucket of their own, apart from attestation's); false: 429 sent. A login that
 * succeeds gives its token back (rp_login_succeeded), so only failures use the budget. */
bool rp_login_allowed(rp_req_t *r);
void rp_login_succeeded(rp_req_t *r);
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

/* Another route's use of a finished upload (updates.c; debug files in reports.c): the tenant's
 * upload id with all its bytes, its file's path in path. false: a reply was sent (404, 409 while
 * bytes are missing, 500). Then rp_upload_forget: its row, and its file unless path is NULL (the
 * caller moved it). */
bool rp_upload_finished(struct rp_req *r, const char *id, rp_upload_t *u, char *path, size_t cap);
void rp_upload_forget(struct rp_req *r, const char *id, const char *path);

/* GET /readyz (ready.c): 200 when the service can write now - a database transaction and a file
 * in the data directory, both synced - else 503 with the reason. Checked at most once a second;
 * requests in between get the last answer. */
void rp_ready_handle(rp_req_t *r);
/* A worker's loop has turned (its beat_timer, every srv->beat_ms): stamp w->beat; until the
 * service is ready, the first worker also runs the write check /readyz runs. */
void rp_ready_beat(rp_worker_t *w);
/* Whether the service is ready, as the last write check found (why: the reason, when not), and
 * whether every one of n workers' loops turned within the last stale_ms. For READY=1 and the
 * watchdog (main.c). */
bool rp_ready_state(char *why, size_t cap);
bool rp_ready_loops_turn(const rp_worker_t *workers, int n, long long stale_ms);
/* New connections of w take ctx from now on (a reference is taken; the old one is let go). */
void rp_worker_set_tls(rp_worker_t *w, SSL_CTX *ctx);
/* Metrics of the per-address cap and the request deadline (http.c), for rp_metrics_handle(). */
void rp_conn_metrics(rp_server_t *srv, struct evbuffer *buf);

#endif /* RAMPART_SERVER_H */
