/*
 * The server's shared context (context.c): the process's configuration and shared state
 * (rp_server_t: keys, limits, metrics, the CRL cache), and each worker thread's (rp_worker_t:
 * its store connection and its cache of decrypted tenant CAs), which a handler reaches through
 * r->w. Also why an attestation failed (the reason codes the metrics count by).
 */
#ifndef RAMPART_SERVER_CONTEXT_H
#define RAMPART_SERVER_CONTEXT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <openssl/types.h>

#include "ca.h"
#include "nonce.h"
#include "peers.h"
#include "ratelimit.h"
#include "store.h"
#include "store/blob.h"

#define RP_NONCE_LIFETIME 60 /* seconds a nonce stays usable */
#define RP_CA_CACHE 32       /* tenant CAs each worker keeps decrypted */
#define RP_CA_CACHE_TTL 600  /* seconds before a cached CA is read again */

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
    RP_REASON_CHANNEL_MISMATCH, /* bound evidence, bound to another TLS connection than its own */
    RP_REASON_CHANNEL_EXPIRED,  /* ...to its own, older than a nonce's lifetime */
    RP_REASON_CHANNEL_REUSED,   /* ...to its own, on which bound evidence attested already */
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
    atomic_ullong limited_reenroll;    /* EST re-enrollments answered 429: the device's limit */
    atomic_ullong connections_refused; /* at the connection limit, refused after the ClientHello */
    atomic_ullong crl_builds;          /* CRLs made and signed (the rest were served cached) */
    atomic_ullong attestations_unproven; /* failures that prove nothing about the device: counted
                                          * per source address, not in its history */
    atomic_ullong connections_refused_address; /* at the per-address cap, closed when accepted */
    atomic_ullong connections_deadline;        /* closed at the request deadline */
    atomic_ullong connections_unread; /* closed with more unread input than a request holds */
    /* rampart_tenant_ca_expires_seconds's figure (the soonest end of a tenant's newest CA; 0:
     * none), read from the database at most every RP_CA_METRIC_EVERY seconds: a public scrape
     * does not scan every tenant's CAs each time. ca_soonest_read: when (0: never). */
    atomic_llong ca_soonest, ca_soonest_read;
} rp_metrics_t;

typedef struct rp_recorder rp_recorder_t;     /* recorder.h */
typedef struct rp_deltas rp_deltas_t;         /* deltas.h */
typedef struct rp_record_job rp_record_job_t; /* recorder.h */
typedef struct rp_worker rp_worker_t;         /* below */

/* A tenant's CRL as made and signed, for the requests that follow (api.c). */
typedef struct rp_crl_cached {
    char tenant_id[RP_ID_SIZE];
    int64_t version; /* the tenant's revocation count it lists (rp_store_crl_version) */
    int64_t made, next_update;
    /* malloc'd, with pem after it (one allocation); NULL: not made yet (a slot with no tenant_id
     * is empty). der: the signing CA's CRL; pem: one CRL per live CA (rp_ca_crls). */
    uint8_t *der;
    size_t len;
    char *pem;
    size_t pem_len;
    int64_t ca_set; /* the CA set it was made from (rp_ca_set_version) */
    char etag[48];
} rp_crl_cached_t;

typedef struct rp_server {
    char data_dir[PATH_MAX];
    char database[1024];   /* --database: "" is the SQLite file rampart.db in data_dir */
    rp_blobs_kind_t blobs; /* --blobs: uploads, images and deltas in data_dir or the database */
    uint8_t master_key[RP_MASTER_KEY_LEN];
    uint8_t nonce_key[RP_NONCE_KEY_LEN]; /* derived from the master key */
    SSL_CTX *ssl_ctx; /* the TLS identity the workers take at start (each keeps its own: reload) */
    atomic_llong server_cert_not_after; /* the end of ssl_ctx's certificate (main.c) */
    /* Whether this replica's hold on its database is lost (hold.h: rp_hold_keep, at each
     * heartbeat): its blobs are not served meanwhile (blob.h: rp_blobs_gate). */
    atomic_bool hold_lost;
    /* Set with hold_lost, for good: its blobs were found moved to the other --blobs store as the
     * hold was taken again (main.c): nothing changes until a restart, so a failure is final (no
     * Retry-After: http.c) and /readyz says why (review r17 M2). */
    atomic_bool blobs_moved;
    /* When the successor service CA renews that certificate, while it is within its renewal
     * margin waiting for that (main.c; else 0): /readyz does not call it "not renewed". */
    atomic_llong server_cert_switch_at;
    /* The service CAs published to devices (the attestation answer's service_ca: ca.h, the
     * service CA's rollover), read at start and at each new TLS identity (main.c: a reload, a
     * renewal); the newest one's times (/readyz, the metrics). One replaced stays allocated until
     * the exit (a worker may be copying it). */
    _Atomic(char *) service_ca_pem;
    atomic_llong service_ca_not_before, service_ca_not_after;
    atomic_int nonce_lifetime; /* atomic: changed at SIGHUP (main.c), as are those marked so */
    rp_recorder_t *recorder;
    rp_deltas_t *deltas;       /* the delta makers (deltas.h) */
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
    atomic_int idle_timeout;           /* seconds a connection may be idle (reload: new ones) */
    atomic_bool webhook_allow_private; /* webhooks to inside addresses (tests; reload) */
    /* a tenant's open uploads at most, and their announced bytes together (--upload-max-open,
     * --upload-max-bytes; reload) */
    atomic_uint upload_max_open;
    atomic_ullong upload_max_bytes;
    atomic_llong max_devices_per_tenant; /* --max-devices-per-tenant (reload); 0: no limit */
    int beat_ms; /* how often each worker's loop says it turns (ready.c), in ms */
    /* What a worker's loop runs at each beat, on its thread (main.c: rp_ready_beat). */
    void (*on_beat)(rp_worker_t *w);
    char console_dir[PATH_MAX]; /* the console's files (--console-dir), resolved; "": none */
    /* Failed console logins per address (--login-rate; NULL: none), and the Retry-After of its
     * 429 in seconds (reload). */
    rp_ratelimit_t *login_limit;
    atomic_int login_retry;
    /* Wrong bearer tokens per address (--auth-fail-rate), and its 429's Retry-After (reload). */
    rp_ratelimit_t *auth_limit;
    atomic_int auth_retry;
    /* EST re-enrollments per device (--reenroll-per-hour), and its 429's Retry-After (reload):
     * the bucket is each replica's first gate, the limit counted again in the database (across
     * replicas) when a certificate is recorded. */
    rp_ratelimit_t *reenroll_limit;
    atomic_int reenroll_retry;
    atomic_long reenroll_per_hour;
} rp_server_t;

struct event_base;
struct evhttp;
struct event;
struct evconnlistener;

/*
 * One worker thread. Handlers use srv, store and the CA cache (rp_worker_ca); the rest is the
 * transport's per-worker state, which only http.c (and ready.c: the heartbeat) touches: its
 * types are only named here, their headers are the transport's.
 */
struct rp_worker {
    rp_server_t *srv;
    struct event_base *base;
    struct evhttp *http;
    rp_store_t *store;
    rp_blobs_t *blobs; /* the blob store (--blobs), on store's connection when in the database */
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
};

/* The verified tenant CA of a tenant, from the worker's cache or the store. */
rp_err_t rp_worker_ca(rp_worker_t *w, const rp_tenant_t *tenant, const rp_ca_t **ca) RP_MUST_CHECK;
/* The same by tenant ID: the tenant is read only when its CA is not cached. */
rp_err_t rp_worker_ca_by_id(rp_worker_t *w, const char *tenant_id,
                            const rp_ca_t **ca) RP_MUST_CHECK;

/* A connection to the service's database: srv->database when set (--database), else the SQLite
 * file in srv->data_dir. Every store connection the service opens comes from here, so that no
 * caller decides the engine. */
rp_err_t rp_server_store_open(const rp_server_t *srv, rp_store_t **store) RP_MUST_CHECK;
/* The same, only where the service's database is already (rp_store_open_existing): for the
 * commands that must not make one. */
rp_err_t rp_server_store_open_existing(const rp_server_t *srv, rp_store_t **store) RP_MUST_CHECK;
/* The service's database target: srv->database, or the SQLite file DIR/rampart.db. */
void rp_server_database_target(const rp_server_t *srv, char *out, size_t cap);
/* The blob store (--blobs) for a thread whose store connection is store. */
rp_err_t rp_server_blobs_open(const rp_server_t *srv, rp_store_t *store,
                              rp_blobs_t **blobs) RP_MUST_CHECK;
/* The database for messages, never with its password (db.h: rp_db_target_describe). */
void rp_server_database_describe(const rp_server_t *srv, char *out, size_t cap);

#endif /* RAMPART_SERVER_CONTEXT_H */
