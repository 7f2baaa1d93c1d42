/*
 * HTTPS for the security service on libevent's evhttp (chosen by measurement: docs/server.md):
 * the TLS context, a worker per core with its own event loop and SO_REUSEPORT listener, the
 * connections' limits (how many, how many from one address, how long a request may take to
 * arrive), request routing, response helpers, and the per-worker cache of decrypted tenant CAs.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/http_struct.h> /* a request's flags: EVHTTP_PROXY_REQUEST (origin_form) */
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "context.h"
#include "http.h"
#include "rampart/attest_binding.h"
#include "rampart/bytes.h"
#include "rampart/log.h"
#include "rampart/text.h"
#include "recorder.h"
#include "req.h"
#include "routes.h"

/* Strict-Transport-Security on every answer over TLS: a year. No includeSubDomains: the
 * service's name may share its domain with sites it knows nothing of. */
#define RP_HSTS "max-age=31536000"

void rp_iso_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%lld", (long long)t);
}

json_t *rp_iso_time_json(int64_t t)
{
    char iso[32];

    if (t == 0)
        return json_null();
    rp_iso_time(t, iso);
    return json_string(iso);
}

const char *rp_json_text(json_t *v, size_t max)
{
    const char *s = json_string_value(v);

    if (s == NULL || json_string_length(v) > max || strlen(s) != json_string_length(v))
        return NULL;
    return s;
}

bool rp_word_valid(const char *s, size_t max, bool empty_ok)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (s == NULL || n > max)
        return false;
    if (n == 0)
        return empty_ok;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return false;
    return true;
}

bool rp_json_has_exactly(json_t *o, const char *const *keys, size_t n)
{
    if (!json_is_object(o) || json_object_size(o) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (json_object_get(o, keys[i]) == NULL)
            return false;
    return true;
}

static void count_status(rp_req_t *r, int status)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    int cls = status / 100;

    if (r->w == NULL) /* libevent's own answer on a connection without TLS */
        return;
    if (ssl != NULL && SSL_session_reused(ssl))
        atomic_fetch_add(&r->w->srv->metrics.requests_resumed, 1);
    atomic_fetch_add(&r->w->srv->metrics.requests[cls >= 1 && cls <= 5 ? cls : 0], 1);
}

static bool is_tls(struct evhttp_request *req);

/*
 * The headers every answer of the service carries, set here and nowhere else: no browser guesses
 * a type other than the Content-Type given (an error's JSON, a device's image or a debug file is
 * never run as a script or a page), and a browser that has once reached the service over HTTPS
 * never tries it over plain HTTP (the one answer without TLS, tls_required, goes over no TLS and
 * carries no HSTS: browsers ignore it there anyway).
 */
static void transport_headers(rp_req_t *r)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

    evhttp_remove_header(h, "X-Content-Type-Options");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (is_tls(r->req)) {
        evhttp_remove_header(h, "Strict-Transport-Security");
        evhttp_add_header(h, "Strict-Transport-Security", RP_HSTS);
    }
}

/*
 * An answer that fits in one TLS record goes out as one. bufferevent_openssl hands OpenSSL each
 * piece of its output buffer apart, one SSL_write() each: evhttp's headers and the body were two
 * records, two write() calls and two TCP segments (and two records for the client to read and
 * decrypt). The answer is queued, not yet written, when evhttp_send_reply() returns (the write
 * waits for the loop): its pieces are joined into one then.
 */
#define RP_ONE_RECORD (16 * 1024) /* TLS's largest record's plaintext */

static void coalesce_output(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct evbuffer *out = bev != NULL ? bufferevent_get_output(bev) : NULL;
    size_t n = out != NULL ? evbuffer_get_length(out) : 0;

    if (n > 0 && n <= RP_ONE_RECORD)
        (void)evbuffer_pullup(out, -1); /* a copy of at most 16 KiB; on failure, as it was */
}

/*
 * Send the reply. For HEAD: the headers a GET gets, its Content-Length included, and no body
 * (evhttp would send the body anyway and leave out only its length, and a keep-alive client would
 * read the body as the next response).
 */
static void send_reply(rp_req_t *r, int status, struct evbuffer *body, uint64_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    /* Taken first: a reply to a client that has gone frees the request at once (it then has no
     * connection); a connection is never freed before the loop turns again. */
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);

    /* Counted first, for the same reason. */
    count_status(r, status);
    transport_headers(r);
    if (r->method == EVHTTP_REQ_HEAD) {
        char n[24];
        snprintf(n, sizeof(n), "%llu", (unsigned long long)len);
        evhttp_remove_header(h, "Content-Length");
        evhttp_add_header(h, "Content-Length", n);
        body = NULL;
    }
    evhttp_send_reply(r->req, status, NULL, body);
    coalesce_output(evcon);
}

void rp_reply_bytes(rp_req_t *r, int status, const char *type, const void *data, size_t len)
{
    struct evbuffer *buf = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

    evhttp_add_header(h, "Content-Type", type);
    if (evhttp_find_header(h, "Cache-Control") == NULL) /* the CRL says otherwise */
        evhttp_add_header(h, "Cache-Control", "no-store");
    if (buf != NULL && r->method != EVHTTP_REQ_HEAD)
        evbuffer_add(buf, data, len);
    send_reply(r, status, buf, len);
    if (buf != NULL)
        evbuffer_free(buf);
}

/*
 * A file sent as the client reads it: a chunk of RP_SEND_CHUNK bytes read (pread) into the answer
 * each time the previous one has gone out, so a download holds one chunk of memory whatever the
 * file's size. Never mapped: libevent 2.1's evbuffer_add_file() maps the file (or, told not to,
 * reads all of it into memory at once), and a mapped file cut short while it is sent (an image
 * replaced in place in the data directory) faults the whole service with SIGBUS on the next byte
 * read past its new end. A file that ends before the length announced ends the connection
 * instead: the client sees an answer shorter than its Content-Length, and no byte that is not
 * the file's.
 *
 * A chunk at a time also keeps a slow download going past evhttp's timeout (--idle-timeout):
 * evhttp reads while it writes (to see the client go), with its read timeout running, and a
 * client sends nothing while it downloads; each chunk handed to evhttp enables reading again,
 * which restarts that timeout, where a file handed over whole was cut that many seconds in.
 *
 * Its state lives until the answer is sent, or until evhttp closes the connection first (the
 * client went, a timeout, the cut above): evhttp then lets go of a request the handler has not
 * finished, which is this state's to free (file_send_closed).
 */
#define RP_SEND_CHUNK (256 * 1024)

typedef struct file_send {
    struct evhttp_request *req;
    struct evbuffer *chunk;
    rp_reply_source_t src;
    uint64_t off, left;
} file_send_t;

/* End the request's connection from under evhttp, as the request deadline does (conn_shut):
 * evhttp reads the end of it and frees the connection itself. */
static void conn_shut_req(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;

    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

static void file_send_free(file_send_t *s)
{
    s->src.close(s->src.ctx);
    evbuffer_free(s->chunk);
    free(s);
}

static void file_send_closed(struct evhttp_connection *evcon, void *arg)
{
    file_send_t *s = arg;

    (void)evcon;
    /* (On a connection evhttp frees with the request still on it - the service stopping - the
     * request is evhttp's to free.) */
    if (evhttp_request_get_connection(s->req) == NULL)
        evhttp_request_free(s->req);
    file_send_free(s);
}

/* The last chunk has gone out: the next one, or the end. */
static void file_send_next(struct evhttp_connection *evcon, void *arg)
{
    file_send_t *s = arg;
    size_t want = s->left < RP_SEND_CHUNK ? (size_t)s->left : RP_SEND_CHUNK;
    struct evbuffer_iovec v;
    ssize_t n = -1;

    if (s->left == 0) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        evhttp_send_reply_end(s->req);
        file_send_free(s);
        return;
    }
    if (evbuffer_reserve_space(s->chunk, (ev_ssize_t)want, &v, 1) == 1)
        n = s->src.read(s->src.ctx, s->off, v.iov_base, want < v.iov_len ? want : v.iov_len);
    if (n <= 0) {
        /* Cut short (0), or unreadable: what was sent cannot be taken back, and nothing else
         * may follow it. evhttp sees the connection end and calls file_send_closed(). */
        rp_log_warn("a file being sent %s at byte %llu, %llu before its end when it was asked "
                    "for: the connection is closed",
                    n == 0 ? "ended" : "could not be read", (unsigned long long)s->off,
                    (unsigned long long)s->left);
        conn_shut_req(s->req);
        return;
    }
    v.iov_len = (size_t)n;
    evbuffer_commit_space(s->chunk, &v, 1);
    s->off += (uint64_t)n;
    s->left -= (uint64_t)n;
    evhttp_send_reply_chunk_with_cb(s->req, s->chunk, file_send_next, s);
}

void rp_reply_stream(rp_req_t *r, int status, const char *type, rp_reply_source_t src, uint64_t off,
                     uint64_t len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    file_send_t *s = NULL;
    char n[24];

    if (r->method != EVHTTP_REQ_HEAD && evcon != NULL && (s = calloc(1, sizeof(*s))) != NULL &&
        (s->chunk = evbuffer_new()) == NULL) {
        free(s);
        s = NULL;
    }
    if (r->method != EVHTTP_REQ_HEAD && s == NULL) {
        src.close(src.ctx);
        rp_reply_error(r, 500, "internal", "cannot send the file");
        return;
    }
    evhttp_add_header(h, "Content-Type", type);
    if (evhttp_find_header(h, "Cache-Control") == NULL) /* the console's files say otherwise */
        evhttp_add_header(h, "Cache-Control", "no-store");
    if (s == NULL) { /* HEAD: the headers only */
        src.close(src.ctx);
        send_reply(r, status, NULL, len);
        return;
    }
    s->req = r->req;
    s->src = src;
    s->off = off;
    s->left = len;
    /* Its length given: evhttp sends the chunks as they are, not chunked. */
    snprintf(n, sizeof(n), "%llu", (unsigned long long)len);
    evhttp_remove_header(h, "Content-Length");
    evhttp_add_header(h, "Content-Length", n);
    count_status(r, status);
    transport_headers(r);
    evhttp_connection_set_closecb(evcon, file_send_closed, s);
    evhttp_send_reply_start(r->req, status, NULL);
    file_send_next(evcon, s);
}

/* Decimal digits at *p (at least one), saturating at UINT64_MAX: a position past any size is
 * still a position (RFC 9110's first-pos, last-pos and suffix-length have no upper bound). */
static bool range_number(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

/* One range-spec at *p (RFC 9110 14.1.2: int-range "A-[B]" or suffix-range "-N"). OUT: *sat
 * whether it is satisfiable against size, and then *start, *len. false: not a range-spec. */
static bool range_spec(const char **p, uint64_t size, bool *sat, uint64_t *start, uint64_t *len)
{
    uint64_t a, b;

    if (**p == '-') { /* the last a bytes: none is unsatisfiable, more than size is all */
        (*p)++;
        if (!range_number(p, &a))
            return false;
        *sat = a > 0 && size > 0;
        *start = a >= size ? 0 : size - a;
        *len = size - *start;
        return true;
    }
    if (!range_number(p, &a) || **p != '-')
        return false;
    (*p)++;
    b = UINT64_MAX;
    if (**p >= '0' && **p <= '9' && (!range_number(p, &b) || b < a))
        return false; /* last before first: invalid, not unsatisfiable */
    *sat = a < size;
    if (*sat) {
        *start = a;
        *len = (b >= size ? size - 1 : b) - a + 1;
    }
    return true;
}

bool rp_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len,
                    bool *unsatisfiable)
{
    const char *p;
    unsigned specs = 0, sat = 0;

    *unsatisfiable = false;
    if (h == NULL || strncasecmp(h, "bytes=", 6) != 0) /* range units: case-insensitive */
        return false;
    p = h + 6;
    for (;;) { /* 1#range-spec: elements separated by OWS "," OWS; empty ones allowed */
        bool ok;
        uint64_t s = 0, l = 0;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        if (!range_spec(&p, size, &ok, &s, &l))
            return false; /* not a range-set: ignored, the whole body is sent */
        if (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
            return false;
        specs++;
        if (ok && sat++ == 0) {
            *start = s;
            *len = l;
        }
    }
    if (specs == 0)
        return false;
    if (sat == 0) { /* not one range lies in the body: 416 */
        *unsatisfiable = true;
        return false;
    }
    return specs == 1; /* several ranges: the whole body (no multipart answers) */
}

void rp_reply_json(rp_req_t *r, int status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

    if (text == NULL) {
        static const char oom[] = "{\"error\":\"internal\",\"message\":\"out of memory\"}";
        rp_reply_bytes(r, 500, "application/json", oom, sizeof(oom) - 1);
    } else {
        rp_reply_bytes(r, status, "application/json", text, strlen(text));
    }
    free(text);
    json_decref(body);
}

/*
 * The one mapping of a failure to its status: a lost race or database connection is 503 with a
 * Retry-After (the request may be sent again as it is, shortly), a value the database cannot hold
 * the request's 400, the rest 500. On a replica whose blobs were moved (context.h), what would be
 * retried is a 503 without Retry-After: clients stop (review r17 M2); it is out of /readyz.
 */
static void reply_failure(rp_req_t *r, rp_err_t err, const char *msg)
{
    char text[640];

    if (err == RP_ERR_BUSY && r->w != NULL && atomic_load(&r->w->srv->blobs_moved)) {
        snprintf(text, sizeof(text),
                 "%s: this replica's blobs were moved to the other store (rampart-server blobs "
                 "move): it serves none until it is restarted with the other --blobs; send the "
                 "request to another replica",
                 msg);
        rp_reply_json(r, 503, json_pack("{s:s, s:s}", "error", "blobs_moved", "message", text));
    } else if (err == RP_ERR_BUSY) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After",
                          RP_RETRY_AFTER_BUSY);
        snprintf(text, sizeof(text),
                 "%s: the database is busy or out of reach; retry in " RP_RETRY_AFTER_BUSY
                 " seconds",
                 msg);
        rp_reply_json(r, 503, json_pack("{s:s, s:s}", "error", "unavailable", "message", text));
    } else if (err == RP_ERR_INVALID_ARG) {
        snprintf(text, sizeof(text), "%s: the request holds a value the database cannot keep", msg);
        rp_reply_json(r, 400, json_pack("{s:s, s:s}", "error", "bad_request", "message", text));
    } else {
        rp_reply_json(r, 500, json_pack("{s:s, s:s}", "error", "internal", "message", msg));
    }
}

void rp_reply_failure(rp_req_t *r, rp_err_t err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_failure(r, err, msg);
}

void rp_reply_error(rp_req_t *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    rp_err_t noted = status == 500 && r->w != NULL ? rp_store_failure(r->w->store) : RP_OK;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A handler's 500 after its store met a busy or lost database: what the store met says. */
    if (noted != RP_OK)
        reply_failure(r, noted, msg);
    else
        rp_reply_json(r, status, json_pack("{s:s, s:s}", "error", code, "message", msg));
}

const uint8_t *rp_req_body_upto(rp_req_t *r, size_t max, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    const uint8_t *p;

    *len = evbuffer_get_length(in);
    if (*len > max) {
        rp_reply_error(r, 413, "too_large", "the body is larger than %zu bytes", max);
        return NULL;
    }
    p = *len > 0 ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    if (p == NULL)
        rp_reply_error(r, 500, "internal", "out of memory");
    return p;
}

const uint8_t *rp_req_body(rp_req_t *r, size_t *len)
{
    return rp_req_body_upto(r, RP_MAX_BODY, len);
}

json_t *rp_req_json(rp_req_t *r)
{
    json_error_t jerr;
    size_t len;
    const uint8_t *body = rp_req_body(r, &len);
    json_t *j;

    if (body == NULL)
        return NULL;
    j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        rp_reply_error(r, 400, "malformed_json", "the body is not valid JSON: %s (line %d)",
                       jerr.text, jerr.line);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        rp_reply_error(r, 400, "malformed_json", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

static SSL *req_ssl(rp_req_t *r)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;

    return bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
}

X509 *rp_req_peer_cert(rp_req_t *r)
{
    SSL *ssl = req_ssl(r);

    return ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
}

/* What a connection's client certificate was verified against, kept on its SSL. TLS fixes the
 * certificate for the connection's life (renegotiation is off), so a kept-alive device's chain is
 * verified once, not on every request (6% of the service's CPU under the reports benchmark). Both
 * certificates are referenced, so that neither address can be reused by another while kept. */
struct peer_verified {
    X509 *peer;
    X509 *ca;
};

static int peer_verified_index = -1;
static pthread_once_t peer_verified_once = PTHREAD_ONCE_INIT;

static void peer_verified_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                               void *argp)
{
    struct peer_verified *pv = ptr;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (pv == NULL)
        return;
    X509_free(pv->peer);
    X509_free(pv->ca);
    free(pv);
}

static void peer_verified_init(void)
{
    peer_verified_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, peer_verified_free);
}

bool rp_req_peer_chains_to(rp_req_t *r, X509 *peer, X509 *ca)
{
    SSL *ssl = req_ssl(r);
    struct peer_verified *pv;

    if (ssl == NULL || peer == NULL || peer != SSL_get0_peer_certificate(ssl))
        return rp_cert_chains_to(peer, ca);
    if (pthread_once(&peer_verified_once, peer_verified_init) != 0 || peer_verified_index < 0)
        return rp_cert_chains_to(peer, ca);
    pv = SSL_get_ex_data(ssl, peer_verified_index);
    /* Verified on this connection against this CA: only time can have changed the answer. */
    if (pv != NULL && pv->peer == peer && pv->ca == ca)
        return X509_cmp_current_time(X509_get0_notAfter(peer)) > 0 &&
               X509_cmp_current_time(X509_get0_notAfter(ca)) > 0;
    if (!rp_cert_chains_to(peer, ca))
        return false;
    if (pv == NULL) {
        pv = calloc(1, sizeof(*pv));
        if (pv == NULL || SSL_set_ex_data(ssl, peer_verified_index, pv) != 1) {
            free(pv);
            return true; /* verified now; only not kept */
        }
    }
    X509_free(pv->peer);
    X509_free(pv->ca);
    pv->peer = X509_up_ref(peer) == 1 ? peer : NULL;
    pv->ca = X509_up_ref(ca) == 1 ? ca : NULL;
    return true;
}

/*
 * Split the path into decoded segments, bounded. false: the path cannot name a resource (too many
 * segments, an empty or overlong one), or *bad: a segment hides a NUL ("%00"), which would cut it
 * short and make it another name.
 */
static bool split_path(rp_req_t *r, char *copy, bool *bad)
{
    *bad = false;
    r->nparts = 0;
    for (char *save = NULL, *seg = strtok_r(copy, "/", &save); seg != NULL;
         seg = strtok_r(NULL, "/", &save)) {
        size_t len = 0;
        char *dec;
        if (r->nparts == (int)(sizeof(r->parts) / sizeof(r->parts[0])))
            return false;
        dec = evhttp_uridecode(seg, 0, &len);
        /* Nothing is named by a NUL or by text that is not UTF-8 (which PostgreSQL cannot even
         * compare): refused here, the same for every engine. */
        if (dec != NULL && (strlen(dec) != len || !rp_text_utf8_valid(dec)))
            *bad = true;
        if (dec == NULL || *bad || dec[0] == '\0' || len > 256) {
            free(dec);
            return false;
        }
        r->parts[r->nparts++] = dec;
    }
    return true;
}

static double monotonic_now(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void too_many(rp_req_t *r, const char *retry_after, const char *message)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", retry_after);
    rp_reply_error(r, 429, "rate_limited", "%s", message);
}

static bool limit_key(rp_req_t *r, uint8_t key[RP_PEER_KEY_LEN]);

bool rp_rate_allowed(rp_req_t *r)
{
    uint8_t key[RP_PEER_KEY_LEN];

    if (r->w->srv->ratelimit == NULL || !limit_key(r, key) ||
        rp_ratelimit_allow(r->w->srv->ratelimit, key, sizeof(key), monotonic_now()))
        return true;
    atomic_fetch_add(&r->w->srv->metrics.limited_address, 1);
    too_many(r, "1", "too many requests from this address: retry later, with backoff");
    return false;
}

bool rp_login_allowed(rp_req_t *r)
{
    uint8_t key[RP_PEER_KEY_LEN];
    char retry[16];

    if (r->w->srv->login_limit == NULL || !limit_key(r, key) ||
        rp_ratelimit_peek(r->w->srv->login_limit, key, sizeof(key), monotonic_now()))
        return true;
    atomic_fetch_add(&r->w->srv->metrics.limited_login, 1);
    snprintf(retry, sizeof(retry), "%d", atomic_load(&r->w->srv->login_retry));
    too_many(r, retry, "too many failed logins from this address: retry later");
    return false;
}

void rp_login_failed(rp_req_t *r)
{
    uint8_t key[RP_PEER_KEY_LEN];

    if (r->w->srv->login_limit != NULL && limit_key(r, key))
        (void)rp_ratelimit_allow(r->w->srv->login_limit, key, sizeof(key), monotonic_now());
}

bool rp_auth_allowed(rp_req_t *r)
{
    uint8_t key[RP_PEER_KEY_LEN];
    char retry[16];

    if (r->w->srv->auth_limit == NULL || !limit_key(r, key) ||
        rp_ratelimit_peek(r->w->srv->auth_limit, key, sizeof(key), monotonic_now()))
        return true;
    atomic_fetch_add(&r->w->srv->metrics.limited_token, 1);
    snprintf(retry, sizeof(retry), "%d", atomic_load(&r->w->srv->auth_retry));
    too_many(r, retry, "too many wrong tokens from this address: retry later");
    return false;
}

void rp_auth_failed(rp_req_t *r)
{
    uint8_t key[RP_PEER_KEY_LEN];

    if (r->w->srv->auth_limit != NULL && limit_key(r, key))
        (void)rp_ratelimit_allow(r->w->srv->auth_limit, key, sizeof(key), monotonic_now());
}

void rp_reply_rate_limited(rp_req_t *r, int retry_after, const char *message)
{
    char retry[16];

    snprintf(retry, sizeof(retry), "%d", retry_after);
    too_many(r, retry, message);
}

bool rp_device_rate_allowed(rp_req_t *r, rp_ratelimit_t *rl, int retry_after, const char *message)
{
    if (rl != NULL && rp_ratelimit_allow(rl, r->device.id, strlen(r->device.id), monotonic_now()))
        return true;
    rp_reply_rate_limited(r, retry_after, message);
    return false;
}

bool rp_unclaimed_allowed(rp_req_t *r)
{
    static const char key[] = "unclaimed";
    char retry[16];

    if (r->w->srv->unclaimed == NULL ||
        rp_ratelimit_allow(r->w->srv->unclaimed, key, sizeof(key) - 1, monotonic_now()))
        return true;
    atomic_fetch_add(&r->w->srv->metrics.limited_unclaimed, 1);
    snprintf(retry, sizeof(retry), "%d", atomic_load(&r->w->srv->unclaimed_retry));
    too_many(r, retry,
             "too many attestations from devices no tenant has claimed: claim the device, or "
             "retry later, with backoff");
    return false;
}

/* A connection without TLS: only when make_bev() could not make its TLS state (evhttp then falls
 * back to plain HTTP). Nothing is served over it. */
static bool is_tls(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);

    return conn != NULL && bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(conn));
}

/*
 * Two Content-Length headers, or one beside Transfer-Encoding, are how a request is smuggled
 * past a proxy that reads them differently (RFC 9112, 6.3): refused, and the connection closed.
 */
static bool headers_sane(struct evhttp_request *req)
{
    const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    int lengths = 0, encodings = 0;

    for (const struct evkeyval *h = in->tqh_first; h != NULL; h = h->next.tqe_next) {
        lengths += strcasecmp(h->key, "Content-Length") == 0;
        encodings += strcasecmp(h->key, "Transfer-Encoding") == 0;
    }
    return lengths <= 1 && (lengths == 0 || encodings == 0);
}

/* A transfer coding evhttp cannot read: libevent 2.1 takes the request as one with no body (or
 * refuses it as a bad header when it has a Content-Length), and what follows would be read as the
 * next request. Refused, and the connection closed, in both cases. */
static const char coding_refused[] = "the service reads no Transfer-Encoding but chunked";

static bool coding_unknown(struct evhttp_request *req)
{
    const char *te = evhttp_find_header(evhttp_request_get_input_headers(req), "Transfer-Encoding");

    return te != NULL && evutil_ascii_strcasecmp(te, "chunked") != 0;
}

/*
 * evhttp reads no body for HEAD and TRACE: a body one announces (a Content-Length but 0, or a
 * Transfer-Encoding) would be read as the next request on the connection (a request smuggled in a
 * body a proxy forwards as one). Refused, and the connection closed (on_answered).
 */
static bool body_unread(struct evhttp_request *req)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *len;

    if (m != EVHTTP_REQ_HEAD && m != EVHTTP_REQ_TRACE)
        return false;
    len = evhttp_find_header(in, "Content-Length");
    return evhttp_find_header(in, "Transfer-Encoding") != NULL ||
           (len != NULL && strcmp(len, "0") != 0);
}

/* A "%00" in the query would cut a value short once decoded, as in a path segment. */
static bool query_hides_nul(const struct evhttp_uri *uri)
{
    const char *q = uri != NULL ? evhttp_uri_get_query(uri) : NULL;

    return q != NULL && strstr(q, "%00") != NULL;
}

typedef struct conn conn_t;
/* What on_headers refused of the request being read (conn_t.refused). */
enum early_refusal { REFUSED_NONE, REFUSED_LENGTH, REFUSED_UNSENT };
static void answer_closes(struct evhttp_request *req);

static void dispatch(struct evhttp_request *req, void *arg)
{
    rp_req_t *r = calloc(1, sizeof(*r));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    char copy[1024];
    bool bad = false;

    if (r == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    r->w = arg;
    r->req = req;
    rp_store_failure_forget(r->w->store); /* what an earlier request met is not this one's */
    r->method = evhttp_request_get_command(req);
    r->path = path != NULL ? path : "/";
    if (strlen(r->path) >= sizeof(copy)) {
        rp_reply_error(r, 414, "uri_too_long", "the path is too long");
    } else if (!is_tls(req)) {
        answer_closes(req);
        rp_reply_error(r, 400, "tls_required", "this service speaks HTTPS only");
    } else if (!headers_sane(req)) {
        answer_closes(req);
        rp_reply_error(r, 400, "bad_request",
                       "a request has one Content-Length and no Transfer-Encoding beside it");
    } else if (coding_unknown(req)) {
        answer_closes(req);
        rp_reply_error(r, 400, "bad_request", "%s", coding_refused);
    } else if (body_unread(req)) {
        answer_closes(req);
        rp_reply_error(r, 400, "bad_request", "a HEAD or TRACE request has no body");
    } else if (query_hides_nul(uri)) {
        rp_reply_error(r, 400, "bad_query", "the query holds a NUL character");
    } else if (!split_path(r, strcpy(copy, r->path), &bad)) {
        if (bad)
            rp_reply_error(r, 400, "bad_path",
                           "a path segment holds a NUL character or is not valid UTF-8");
        else
            rp_reply_error(r, 404, "not_found", "no such resource");
    } else {
        rp_route_dispatch(r);
    }
    for (int i = 0; i < r->nparts; i++)
        free(r->parts[i]);
    free(r);
}

/*
 * Each connection's state lives from make_bev() to the moment its TLS state is freed: it hangs
 * off the SSL object as ex_data, whose free callback, conn_gone(), undoes what make_bev() did.
 *
 * The connection limit: open connections are counted from make_bev() to conn_gone(). The worker
 * whose connection reaches --max-connections stops accepting until the count is below it again
 * (pause_accepting): new connections wait in the kernel's backlog until a slot frees or their
 * client gives up. One that another worker accepted meanwhile is over the limit: it is marked and
 * refused right after its ClientHello (hello_cb). So a flood of connections, silent or not, from
 * however many addresses, holds at most the limit (plus one a worker) of file descriptors.
 *
 * The per-address cap: the first run of the connection's timer, made active by make_bev() so
 * that it runs as soon as the accepting callback returns (evhttp gives the bufferevent its socket
 * after make_bev()), counts the client's address; a connection over --max-connections-per-address
 * is shut down there, before its handshake costs anything. So one address cannot take the
 * connections everyone else needs.
 *
 * The request deadline: a whole request - the TLS handshake, the headers and the body - must
 * arrive within --request-deadline seconds of the connection, or of the end of the previous
 * answer on a kept-alive connection. (evhttp's own timeout is per read: a client sending a byte
 * every few seconds would hold its connection for hours.) The timer stops once the request has
 * arrived (on_request), so neither the time the service takes to answer nor the time the answer
 * takes to send - an image download - counts against it; it starts again when the answer has
 * been sent (on_answered). At the deadline the socket is shut down, not closed: evhttp reads the
 * end of it and frees the connection itself.
 */
struct conn {
    rp_worker_t *w;
    SSL *ssl;
    struct event *timer; /* first the address check, then the deadline */
    bool accepted;       /* the address check has run */
    bool counted;        /* counted in srv->peers, under peer */
    bool refuse;         /* over the connection limit: refused after its ClientHello */
    bool answering;      /* a request has arrived, its answer is not sent yet */
    bool bound_spent;    /* bound evidence attested on it (rp_req_binding_spend) */
    bool closing;        /* shut down: nothing more it sends is read (input_cb) */
    bool close_after;    /* the answer being sent ends the connection (answer_closes) */
    bool headers_read;   /* the request's line and headers were read whole (on_headers) */
    uint8_t refused;     /* why on_headers refused the request being read (early_refusal_t) */
    int64_t born;        /* when it was accepted: seconds on the monotonic clock */
    bool keyed;          /* peer holds the client's key (conn_timer) */
    uint8_t peer[RP_PEER_KEY_LEN];
};

static int conn_index = -1;

static void conn_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    conn_t *c = ptr;

    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (c == NULL)
        return;
    atomic_fetch_sub(&c->w->srv->connections, 1);
    if (c->counted)
        rp_peers_release(c->w->srv->peers, c->peer);
    event_free(c->timer);
    free(c);
}

static conn_t *conn_of(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;

    return ssl != NULL ? SSL_get_ex_data(ssl, conn_index) : NULL;
}

/*
 * The key every per-address limit counts the request's client under (attestation, failed logins,
 * wrong tokens): its connection's, rp_peer_key()'s, as the connection cap counts it, so an IPv6
 * client counts by its /64 and an IPv4 one by its address, over either socket family (found by
 * review: these limits keyed the address's text, each IPv6 address apart). False: the address
 * could not be told (the limits then let the request through, as they always have).
 */
static bool limit_key(rp_req_t *r, uint8_t key[RP_PEER_KEY_LEN])
{
    const conn_t *c = conn_of(r->req);

    if (c == NULL || !c->keyed)
        return false;
    memcpy(key, c->peer, RP_PEER_KEY_LEN);
    return true;
}

/*
 * A target in absolute form (GET https://host/path) is read as one in origin form: the service is
 * no proxy (RFC 9112, 3.2.2: a server accepts the absolute form). libevent 2.1 marks such a
 * request a proxy's and then answers it by Proxy-Connection: it drops the answer's Connection
 * header and ends the connection after every answer. The mark is the request's flag, which only
 * event2/http_struct.h shows; cleared once the request line is read (on_headers) and before a
 * refusal of a request whose headers failed (answer_closes).
 */
static void origin_form(struct evhttp_request *req)
{
    req->flags &= ~EVHTTP_PROXY_REQUEST;
}

/* The answer ends the connection: said (Connection: close), and done (on_answered), whatever the
 * method or target (libevent keeps a CONNECT's connection open). */
static void answer_closes(struct evhttp_request *req)
{
    conn_t *c = conn_of(req);

    if (c != NULL)
        c->close_after = true;
    origin_form(req);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
}

/*
 * libevent's own answers. evhttp answers a request it cannot read by itself, before any route sees
 * it, through evhttp_send_error(): a body over RP_MAX_BODY_ANY, or a chunk coding it cannot read
 * (413); a header line it cannot parse, headers over RP_MAX_HEADERS, a Content-Length that is not
 * a number (400); an Expect other than 100-continue (417); a method it does not know (501). Its
 * page is HTML. libevent 2.1 has no hook for them (evhttp_set_errorcb came with 2.2), and it hands
 * the application a server's request only once the request has been read whole; the header
 * callback (on_headers, set on each request by evhttp_request_new below) runs once they are read
 * whole, so never before a failure among them, and cannot answer itself.
 * evhttp_send_error() is therefore defined here: the executable's definition comes first in the
 * dynamic linker's search order and libevent calls its own through the PLT, so its failures answer
 * the service's JSON error (with the transport's headers; Connection: close, as libevent's page,
 * since the connection cannot read on). e2e.http_errors fails if that stops being so (a libevent
 * linked statically, or built to bind its own calls). evhttp_set_max_body_size() bounds the body
 * evhttp keeps; what it has not parsed yet is bounded by input_cb (RP_MAX_UNREAD). An answer marked
 * Connection: close ends its connection (on_answered: libevent 2.1 keeps a CONNECT's open).
 *
 * One case keeps libevent's page: a request line that cannot be parsed (no HTTP version, or one
 * past 1.x, a target that is not a URI) leaves the request without a version, which
 * evhttp_send_reply() would write as "HTTP/0.0" (libevent's page says 1.1, and no accessor can read
 * or set it). Such a request has no header (they are read after the line) and never reached
 * on_headers, and that is how it is told: a request whose headers were read whole (a headerless
 * "BREW / HTTP/1.0" too) or that has one is answered here; a failure at the first header line
 * looks like a failed request line from outside libevent, and keeps the page too.
 */
_Static_assert(RP_MAX_BODY_ANY % (1024 * 1024) == 0 && RP_MAX_HEADERS % 1024 == 0,
               "the messages below give the limits in MiB and KiB");

static bool request_line_read(struct evhttp_request *req)
{
    const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const conn_t *c = conn_of(req);

    return (c != NULL && c->headers_read) || (in != NULL && in->tqh_first != NULL);
}

/*
 * The Content-Length header, when there is one that is not a number the service reads: digits
 * only, at most 2^63-1 (libevent would read "+5" as 5, and one past 2^63-1 as 2^63-1: a body it
 * would wait for forever). The one rule: on_headers refuses by it, evhttp_send_error names it.
 */
static bool length_malformed(struct evhttp_request *req)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Length");
    size_t n = v != NULL ? strlen(v) : 0;

    if (v == NULL)
        return false;
    if (n == 0 || strspn(v, "0123456789") != n)
        return true;
    while (n > 1 && *v == '0') /* leading zeros say nothing */
        v++, n--;
    return n > 19 || (n == 19 && strcmp(v, "9223372036854775807") > 0);
}

static void on_answered(struct evhttp_request *req, void *arg);

void evhttp_send_error(struct evhttp_request *req, int error, const char *reason)
{
    conn_t *c = conn_of(req);
    rp_req_t r = {.w = c != NULL ? c->w : NULL,
                  .req = req,
                  .method = evhttp_request_get_command(req),
                  .path = "/"};
    bool chunked =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Transfer-Encoding") != NULL;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    bool unsent = c != NULL && c->refused == REFUSED_UNSENT;
    void (*libevents)(struct evhttp_request *, int, const char *);

    if (c != NULL) { /* every answer here ends its connection: on_answered holds it */
        c->close_after = true;
        evhttp_request_set_on_complete_cb(req, on_answered, c);
    }
    if (!request_line_read(req)) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(req);
        *(void **)&libevents = dlsym(RTLD_NEXT, "evhttp_send_error");
        if (libevents != NULL && libevents != evhttp_send_error)
            libevents(req, error, reason);
        else if (evcon != NULL) /* what libevent does when it cannot make its page */
            evhttp_connection_free(evcon);
        return;
    }
    evhttp_clear_headers(out); /* nothing a route may have set: this answer is the transport's */
    answer_closes(req);
    if (error == 413 || unsent)
        rp_reply_error(&r, 413, "too_large",
                       "the request%s body is over %d MiB (what the service reads of any "
                       "request)%s; images go through the chunked upload API (chunk_max bytes a "
                       "request)",
                       chunked ? "'s chunked" : "", RP_MAX_BODY_ANY >> 20,
                       chunked  ? " or a chunk-size line is not a bare hexadecimal number (a "
                                  "chunk extension is not read either)"
                       : unsent ? ": refused before it was sent (Expect: 100-continue)"
                                : "");
    else if (error == 400 && coding_unknown(req))
        rp_reply_error(&r, 400, "bad_request", "%s", coding_refused);
    else if (error == 400 && length_malformed(req))
        rp_reply_error(&r, 400, "bad_request", "the request's Content-Length is not a number");
    else if (error == 400)
        rp_reply_error(&r, 400, "bad_request",
                       "the request's headers cannot be read: a malformed header line, or "
                       "headers over %d KiB",
                       RP_MAX_HEADERS >> 10);
    else if (error == 501) /* a method evhttp does not know (the route table takes every other) */
        rp_reply_error(&r, 501, "unknown_method", "the service knows no such method");
    else if (error == 417)
        rp_reply_error(&r, 417, "expectation_failed",
                       "the service takes no Expect header but 100-continue");
    else
        rp_reply_error(&r, error, error >= 500 ? "internal" : "bad_request", "%s",
                       reason != NULL ? reason : "the request cannot be served");
}

/*
 * What the service refuses as soon as a request's headers are read, before libevent reads (or
 * waits for) its body: a Content-Length it does not read (length_malformed: libevent takes "+5"
 * as 5, and one past 2^63-1 as a body it would wait for forever), and a body over RP_MAX_BODY_ANY
 * whose client waits for a 100 Continue (Expect: 100-continue, nothing of the body sent yet):
 * libevent sends none then, and would wait for the body before its 413 (EVHTTP_SERVER_LINGERING_
 * CLOSE), which such a client never sends. A body already on its way is read to its end and
 * dropped before the 413, as libevent does (the client reads the answer instead of a reset).
 *
 * libevent 2.1 calls a request's header callback there (the body not read yet), but creates the
 * requests it reads itself: evhttp_request_new() is defined here, as evhttp_send_error() is, to
 * set it on each. The callback cannot answer itself (libevent would read the body after it), nor
 * refuse with a status (a negative return drops the connection without an answer): it marks the
 * request with a Content-Length libevent cannot read, which libevent refuses at once through
 * evhttp_send_error() (400), and that answers what was refused (conn_t.refused).
 */
static bool waits_for_continue(struct evhttp_request *req)
{
    const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *expect = evhttp_find_header(in, "Expect");
    const char *len = evhttp_find_header(in, "Content-Length");
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    return expect != NULL && evutil_ascii_strcasecmp(expect, "100-continue") == 0 &&
           (req->major > 1 || (req->major == 1 && req->minor >= 1)) && /* as libevent reads it */
           len != NULL && !length_malformed(req) &&                    /* so at most 2^63-1 */
           evhttp_find_header(in, "Transfer-Encoding") == NULL &&
           strtoll(len, NULL, 10) > RP_MAX_BODY_ANY && evcon != NULL &&
           evbuffer_get_length(bufferevent_get_input(evhttp_connection_get_bufferevent(evcon))) ==
               0;
}

static int on_headers(struct evhttp_request *req, void *arg)
{
    conn_t *c = conn_of(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);

    (void)arg;
    if (c == NULL) /* not a request the service reads */
        return 0;
    c->headers_read = true;
    origin_form(req);
    c->refused = length_malformed(req)     ? REFUSED_LENGTH
                 : waits_for_continue(req) ? REFUSED_UNSENT
                                           : REFUSED_NONE;
    if (c->refused != REFUSED_NONE && (evhttp_remove_header(in, "Content-Length") != 0 ||
                                       evhttp_add_header(in, "Content-Length", "refused") != 0))
        return -1; /* the connection dropped unanswered: never a body read past the refusal */
    return 0;
}

typedef struct evhttp_request *(*request_new_fn)(void (*)(struct evhttp_request *, void *), void *);
static request_new_fn libevents_request_new;
static pthread_once_t request_new_once = PTHREAD_ONCE_INIT;

static void request_new_find(void)
{
    *(void **)&libevents_request_new = dlsym(RTLD_NEXT, "evhttp_request_new");
}

struct evhttp_request *evhttp_request_new(void (*cb)(struct evhttp_request *, void *), void *arg)
{
    struct evhttp_request *req;

    if (pthread_once(&request_new_once, request_new_find) != 0 || libevents_request_new == NULL ||
        libevents_request_new == evhttp_request_new)
        return NULL; /* libevent linked otherwise: it fails as when out of memory */
    req = libevents_request_new(cb, arg);
    if (req != NULL)
        evhttp_request_set_header_cb(req, on_headers);
    return req;
}

static int64_t monotonic_seconds(void)
{
    struct timespec ts;

    return clock_gettime(CLOCK_MONOTONIC, &ts) == 0 ? (int64_t)ts.tv_sec : 0;
}

rp_binding_result_t rp_req_binding_spend(rp_req_t *r, const uint8_t *binding, size_t len,
                                         int max_age)
{
    uint8_t mine[RP_ATTEST_BINDING_LEN];
    conn_t *c = conn_of(r->req);
    bool same;

    if (c == NULL || len != sizeof(mine) || rp_attest_binding(c->ssl, mine) != RP_OK)
        return RP_BINDING_MISMATCH;
    same = rp_ct_memcmp(mine, binding, sizeof(mine)) == 0;
    OPENSSL_cleanse(mine, sizeof(mine));
    if (!same)
        return RP_BINDING_MISMATCH;
    if (monotonic_seconds() - c->born > max_age)
        return RP_BINDING_EXPIRED;
    if (c->bound_spent)
        return RP_BINDING_REUSED;
    c->bound_spent = true;
    return RP_BINDING_OK;
}

/* Close from under evhttp: it sees the end of the stream and frees the connection. */
static void conn_shut(conn_t *c)
{
    int fd = SSL_get_fd(c->ssl);

    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

static void deadline_start(conn_t *c)
{
    struct timeval tv = {atomic_load(&c->w->srv->request_deadline), 0};

    if (evtimer_add(c->timer, &tv) != 0)
        conn_shut(c); /* never a connection without its deadline */
}

/* The address check right after accept; every later run is the deadline. */
static void conn_timer(evutil_socket_t unused, short what, void *arg)
{
    conn_t *c = arg;
    rp_server_t *srv = c->w->srv;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = SSL_get_fd(c->ssl);

    (void)unused, (void)what;
    if (c->accepted) {
        if (!c->answering) {
            atomic_fetch_add(&srv->metrics.connections_deadline, 1);
            conn_shut(c);
        }
        return;
    }
    c->accepted = true;
    /* The client's key, for every per-address limit: the cap here, the requests' (limit_key). */
    c->keyed = fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
               rp_peer_key((struct sockaddr *)&ss, len, c->peer);
    if (srv->peers != NULL) {
        /* An address that cannot be told (the client has gone already) is not let in. */
        if (!c->keyed || !rp_peers_take(srv->peers, c->peer, srv->max_per_address)) {
            atomic_fetch_add(&srv->metrics.connections_refused_address, 1);
            conn_shut(c);
            return;
        }
        c->counted = true;
    }
    if (!c->answering)
        deadline_start(c);
}

/*
 * The bound on what a connection holds unparsed: evhttp keeps a chunk whole in the input until its
 * last byte (at most RP_MAX_BODY_ANY), then needs the next line (RP_MAX_HEADERS); a line it reads
 * with no bound of its own (libevent 2.1 reads a chunk-size line until its CRLF) cannot make the
 * input grow past it. Called on every change of the connection's input buffer: past the bound,
 * or once the connection is closing, what arrived is dropped and the connection shut down (evhttp
 * then reads its end and frees it). A comparison on the hot path; no allocation, no system call.
 */
#define RP_MAX_UNREAD (RP_MAX_BODY_ANY + 2 * RP_MAX_HEADERS)

static void input_cb(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    conn_t *c = arg;
    size_t len = evbuffer_get_length(in);

    if (info->n_added == 0 || (!c->closing && len <= RP_MAX_UNREAD))
        return;
    if (!c->closing) {
        atomic_fetch_add(&c->w->srv->metrics.connections_unread, 1);
        c->closing = true;
        conn_shut(c);
    }
    evbuffer_drain(in, len);
}

/* The answer has been sent: the next request's time starts, or, when the answer said
 * Connection: close, nothing more is read (evhttp closes the connection after most such answers
 * itself, but not after a CONNECT's: what follows would be read as the next request). */
static void on_answered(struct evhttp_request *req, void *arg)
{
    conn_t *c = arg;
    const char *conn = evhttp_find_header(evhttp_request_get_output_headers(req), "Connection");
    struct evhttp_connection *evcon;

    c->answering = false;
    c->headers_read = false; /* the next request's are not read yet */
    c->refused = REFUSED_NONE;
    if (!c->close_after && (conn == NULL || evutil_ascii_strcasecmp(conn, "close") != 0)) {
        deadline_start(c);
        return;
    }
    c->closing = true;
    evcon = evhttp_request_get_connection(req);
    if (evcon != NULL) {
        struct evbuffer *in = bufferevent_get_input(evhttp_connection_get_bufferevent(evcon));
        evbuffer_drain(in, evbuffer_get_length(in));
    }
    conn_shut(c);
}

/* A whole request has arrived: it is answered whatever time that takes. */
static void on_request(struct evhttp_request *req, void *arg)
{
    conn_t *c = conn_of(req);

    if (c != NULL) {
        c->answering = true;
        evtimer_del(c->timer);
        evhttp_request_set_on_complete_cb(req, on_answered, c);
    }
    dispatch(req, arg);
}

static int hello_cb(SSL *ssl, int *alert, void *arg)
{
    conn_t *c = SSL_get_ex_data(ssl, conn_index);

    (void)arg;
    if (c == NULL || !c->refuse)
        return SSL_CLIENT_HELLO_SUCCESS;
    atomic_fetch_add(&c->w->srv->metrics.connections_refused, 1);
    *alert = SSL_AD_INTERNAL_ERROR; /* TLS has no "busy": the client retries with backoff */
    return SSL_CLIENT_HELLO_ERROR;
}

static void accept_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    static const struct timeval again = {0, 100000};
    rp_worker_t *w = arg;

    (void)fd, (void)what;
    if (atomic_load(&w->srv->connections) < w->srv->max_connections)
        evconnlistener_enable(w->listener);
    else
        evtimer_add(w->accept_timer, &again);
}

/* Stop accepting on w's listener, and look again in 100 ms. */
static void pause_accepting(rp_worker_t *w)
{
    static const struct timeval again = {0, 100000};
    static atomic_llong warned_at;

    if (rp_log_due(&warned_at, 10))
        rp_log_warn("%d connections open, the limit (--max-connections): not accepting more "
                    "until some close",
                    atomic_load(&w->srv->connections));
    evconnlistener_disable(w->listener);
    if (!evtimer_pending(w->accept_timer, NULL) && evtimer_add(w->accept_timer, &again) != 0)
        evconnlistener_enable(w->listener); /* never left unable to accept */
}

/* Every connection is TLS; a client certificate is asked for, not required (see verify_any). */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    rp_worker_t *w = arg;
    conn_t *c = calloc(1, sizeof(*c));
    struct bufferevent *bev;
    SSL *ssl;
    int n;

    pthread_mutex_lock(&w->ctx_lock);
    ssl = SSL_new(w->ssl_ctx); /* holds its context: a reload does not take it away */
    pthread_mutex_unlock(&w->ctx_lock);
    if (ssl != NULL && c != NULL) {
        c->w = w;
        c->ssl = ssl;
        c->born = monotonic_seconds();
        c->timer = evtimer_new(base, conn_timer, c);
    }
    if (ssl == NULL || c == NULL || c->timer == NULL || SSL_set_ex_data(ssl, conn_index, c) != 1) {
        if (c != NULL && c->timer != NULL)
            event_free(c->timer);
        free(c);
        SSL_free(ssl);
        return NULL; /* evhttp goes on without TLS, and dispatch() refuses everything */
    }
    /* From here on conn_gone() frees c, with ssl. */
    /* evhttp gives the new connection its server's timeout right after this returns (in
     * evhttp_get_request): set here, on the worker's own thread, a reloaded --idle-timeout
     * reaches every connection accepted since. */
    evhttp_set_timeout(w->http, atomic_load(&w->srv->idle_timeout));
    n = atomic_fetch_add(&w->srv->connections, 1) + 1; /* with this one */
    if (n >= w->srv->max_connections)
        pause_accepting(w);
    c->refuse = n > w->srv->max_connections;
    event_active(c->timer, EV_TIMEOUT, 0);
    /* On failure it frees ssl (BEV_OPT_CLOSE_ON_FREE). */
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL && evbuffer_add_cb(bufferevent_get_input(bev), input_cb, c) == NULL) {
        bufferevent_free(bev); /* never a connection without its bound */
        return NULL;
    }
    return bev;
}

/*
 * Client certificates are checked where they are used, against the CA of the tenant the device
 * belongs to, which is not known during the handshake. The handshake still proves the client holds
 * the key of the certificate it presents.
 */
static int verify_any(int preverify, X509_STORE_CTX *ctx)
{
    (void)preverify;
    (void)ctx;
    return 1;
}

/*
 * Session tickets: a device that attests every day resumes its TLS session instead of a full
 * handshake. The ticket keys are derived from the master key and the day, so every replica and
 * every restart accepts the tickets of the others; tickets of the last TICKET_DAYS days are
 * accepted, today's are issued. Resumption is PSK with (EC)DHE: each session still has fresh keys.
 * A resumption renews the ticket (see ticket_decrypted()), within RESUME_MAX_AGE of the last full
 * handshake.
 */
#define TICKET_DAYS 7
static uint8_t ticket_master[RP_MASTER_KEY_LEN];

/* The day's ticket keys: a 16-byte name, an AES-256 key and an HMAC-SHA256 key. Derived once
 * per day and kept (a handshake must not pay for a key derivation). */
struct ticket_day {
    int64_t day; /* 0: empty */
    uint8_t keys[16 + 32 + 32];
};
static struct ticket_day ticket_days[TICKET_DAYS + 1];
static pthread_mutex_t ticket_lock = PTHREAD_MUTEX_INITIALIZER;

static bool ticket_keys(int64_t day, uint8_t name[16], uint8_t aes[32], uint8_t mac[32])
{
    struct ticket_day *t = &ticket_days[day % (TICKET_DAYS + 1)];
    char info[64];
    bool ok = true;

    pthread_mutex_lock(&ticket_lock);
    if (t->day != day) {
        snprintf(info, sizeof(info), "rampart tls ticket keys %lld", (long long)day);
        ok = rp_master_derive(ticket_master, info, t->keys, sizeof(t->keys)) == RP_OK;
        t->day = ok ? day : 0;
    }
    if (ok) {
        memcpy(name, t->keys, 16);
        memcpy(aes, t->keys + 16, 32);
        memcpy(mac, t->keys + 48, 32);
    }
    pthread_mutex_unlock(&ticket_lock);
    return ok;
}

static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cipher,
                     EVP_MAC_CTX *mac, int enc)
{
    uint8_t day_name[16], aes[32], mac_key[32];
    int64_t today = (int64_t)time(NULL) / 86400;
    OSSL_PARAM params[2];
    int rc = 0;

    /* TLS 1.2 resumption reuses the master secret - no forward secrecy, and a ticket key
     * derived from the master key would let its holder decrypt recorded sessions: no tickets
     * below TLS 1.3 (0: none issued, or not ours). */
    if (SSL_version(ssl) < TLS1_3_VERSION)
        return 0;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (enc) {
        if (ticket_keys(today, day_name, aes, mac_key) && RAND_bytes(iv, 16) == 1 &&
            EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, aes, iv) == 1 &&
            EVP_MAC_init(mac, mac_key, sizeof(mac_key), params) == 1) {
            memcpy(name, day_name, 16);
            rc = 1;
        }
    } else {
        for (int64_t d = today; d > today - TICKET_DAYS && rc == 0; d--) {
            if (!ticket_keys(d, day_name, aes, mac_key) || memcmp(name, day_name, 16) != 0)
                continue;
            if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, aes, iv) != 1 ||
                EVP_MAC_init(mac, mac_key, sizeof(mac_key), params) != 1)
                rc = -1;
            else
                rc = 1; /* renewal is decided in ticket_decrypted() */
        }
    }
    rp_wipe(aes, sizeof(aes));
    rp_wipe(mac_key, sizeof(mac_key));
    return rc;
}

void rp_server_tls_forget(void)
{
    pthread_mutex_lock(&ticket_lock);
    rp_wipe(ticket_days, sizeof(ticket_days));
    rp_wipe(ticket_master, sizeof(ticket_master));
    pthread_mutex_unlock(&ticket_lock);
}

/*
 * Each ticket carries when its chain of resumptions began, at a full handshake (the last time the
 * client checked the server's certificate). A resumption gets a fresh ticket - TLS 1.3 tickets
 * are for one use - until the chain is RESUME_MAX_AGE old; then the client makes a full handshake
 * again (RFC 8446, 4.6.1: limit the lifetime of keying material from one handshake).
 */
#define RESUME_MAX_AGE (7 * 86400)

static int ticket_generate(SSL *ssl, void *arg)
{
    SSL_SESSION *session = SSL_get0_session(ssl);
    uint8_t since[8];
    void *data = NULL;
    size_t len = 0;
    uint64_t t = (uint64_t)time(NULL);

    (void)arg;
    if (session == NULL)
        return 0;
    /* A resumed session brings its start in its own app data; a full handshake starts one. */
    if (SSL_session_reused(ssl) && SSL_SESSION_get0_ticket_appdata(session, &data, &len) == 1 &&
        len == sizeof(since))
        return 1;
    rp_be_put(since, t, sizeof(since));
    return SSL_SESSION_set1_ticket_appdata(session, since, sizeof(since));
}

static SSL_TICKET_RETURN ticket_decrypted(SSL *ssl, SSL_SESSION *session,
                                          const unsigned char *keyname, size_t keyname_len,
                                          SSL_TICKET_STATUS status, void *arg)
{
    uint64_t since, now = (uint64_t)time(NULL);
    void *data = NULL;
    size_t len = 0;
    X509 *peer;

    (void)ssl;
    (void)keyname;
    (void)keyname_len;
    (void)arg;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
        if (SSL_SESSION_get0_ticket_appdata(session, &data, &len) != 1 || len != 8)
            return SSL_TICKET_RETURN_IGNORE_RENEW;
        since = rp_be_get(data, 8);
        if (since > now || now - since > RESUME_MAX_AGE)
            return SSL_TICKET_RETURN_IGNORE_RENEW; /* a full handshake, and a new chain */
        /* A client certificate (EST) lives a day: a session must not outlive it. */
        peer = SSL_SESSION_get0_peer(session);
        if (peer != NULL && X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0)
            return SSL_TICKET_RETURN_IGNORE_RENEW;
        return SSL_TICKET_RETURN_USE_RENEW;
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT: return SSL_TICKET_RETURN_IGNORE_RENEW;
    default: /* SSL_TICKET_FATAL_ERR_* */ return SSL_TICKET_RETURN_ABORT;
    }
}

SSL_CTX *rp_server_tls_context(const char *data_dir, const uint8_t master[RP_MASTER_KEY_LEN])
{
    char cert[PATH_MAX + 16], key[PATH_MAX + 16];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    snprintf(cert, sizeof(cert), "%s/server.pem", data_dir);
    snprintf(key, sizeof(key), "%s/server.key", data_dir);
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        /* TLS 1.2: forward-secret AEAD suites only; TLS 1.3's are all modern. */
        SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        rp_log_error("TLS setup: %s", ERR_error_string(ERR_peek_last_error(), NULL));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_any);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"rampart", 7);
    pthread_mutex_lock(&ticket_lock); /* again at a reload, while workers derive ticket keys */
    memcpy(ticket_master, master, sizeof(ticket_master));
    pthread_mutex_unlock(&ticket_lock);
    SSL_CTX_set_timeout(ctx, TICKET_DAYS * 86400L);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* tickets only: no state */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_client_hello_cb(ctx, hello_cb, NULL);
    if (conn_index < 0)
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_gone);
    if (conn_index < 0 || SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1 ||
        SSL_CTX_set_session_ticket_cb(ctx, ticket_generate, ticket_decrypted, NULL) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void rp_worker_complete(rp_worker_t *w, rp_record_job_t *job)
{
    pthread_mutex_lock(&w->recorded_lock);
    job->next = w->recorded_head;
    w->recorded_head = job;
    pthread_mutex_unlock(&w->recorded_lock);
    event_active(w->recorded, EV_READ, 0);
}

/* Answer the requests whose records are written (in the order they were submitted). */
static void answer_recorded(evutil_socket_t fd, short what, void *arg)
{
    rp_worker_t *w = arg;
    rp_record_job_t *jobs, *in_order = NULL;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->recorded_lock);
    jobs = w->recorded_head;
    w->recorded_head = NULL;
    pthread_mutex_unlock(&w->recorded_lock);
    while (jobs != NULL) {
        rp_record_job_t *next = jobs->next;
        jobs->next = in_order;
        in_order = jobs;
        jobs = next;
    }
    while (in_order != NULL) {
        rp_record_job_t *next = in_order->next;
        in_order->done(in_order);
        in_order = next;
    }
}

static void resume_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    evconnlistener_enable(arg);
}

/*
 * accept() failed for a reason other than a client giving up: out of file descriptors (the
 * connection limit keeps the service below its own, but a machine can run out) or of memory. The
 * listening socket stays readable, so without a pause the loop would spin on it: stop accepting for
 * 100 ms, and say so at most every 10 seconds.
 */
static void accept_error(struct evconnlistener *lev, void *arg)
{
    static atomic_llong warned_at;
    static const struct timeval pause = {0, 100000};
    int err = errno;

    (void)arg;
    if (rp_log_due(&warned_at, 10))
        rp_log_warn("cannot accept connections: %s (pausing 100 ms)", strerror(err));
    if (evconnlistener_disable(lev) == 0 &&
        event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT, resume_accept, lev, &pause) !=
            0)
        evconnlistener_enable(lev);
}

static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
    rp_worker_t *w = arg;

    (void)fd, (void)what;
    if (w->srv->on_beat != NULL)
        w->srv->on_beat(w);
}

void rp_worker_set_tls(rp_worker_t *w, SSL_CTX *ctx)
{
    SSL_CTX *old;

    if (SSL_CTX_up_ref(ctx) != 1)
        return; /* (cannot fail in OpenSSL 3: a counter) */
    pthread_mutex_lock(&w->ctx_lock);
    old = w->ssl_ctx;
    w->ssl_ctx = ctx;
    pthread_mutex_unlock(&w->ctx_lock);
    SSL_CTX_free(old); /* connections made with it keep it until they close */
}

rp_err_t rp_worker_init(rp_worker_t *w, rp_server_t *srv, int listen_fd)
{
    struct evhttp_bound_socket *bound;
    struct event_config *cfg;
    rp_err_t err;

    memset(w, 0, sizeof(*w));
    if (pthread_mutex_init(&w->recorded_lock, NULL) != 0)
        return RP_ERR_NO_MEMORY;
    if (pthread_mutex_init(&w->ctx_lock, NULL) != 0) {
        pthread_mutex_destroy(&w->recorded_lock);
        return RP_ERR_NO_MEMORY;
    }
    w->srv = srv; /* from here on rp_worker_free() undoes what was done */
    if (SSL_CTX_up_ref(srv->ssl_ctx) != 1)
        return RP_ERR_NO_MEMORY;
    w->ssl_ctx = srv->ssl_ctx;
    err = rp_server_store_open(srv, &w->store);
    if (err == RP_OK)
        err = rp_server_blobs_open(srv, w->store, &w->blobs);
    if (err != RP_OK)
        return err;
    /* The changelist folds the many enable/disable calls a TLS bufferevent makes in one loop
     * iteration into one epoll_ctl (syscalls are a good part of a request's cost). */
    cfg = event_config_new();
    if (cfg == NULL || event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) != 0) {
        event_config_free(cfg);
        return RP_ERR_NO_MEMORY;
    }
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    w->http = w->base != NULL ? evhttp_new(w->base) : NULL;
    w->recorded = w->base != NULL ? event_new(w->base, -1, 0, answer_recorded, w) : NULL;
    if (w->http == NULL || w->recorded == NULL)
        return RP_ERR_NO_MEMORY;
    evhttp_set_max_body_size(w->http, RP_MAX_BODY_ANY);
    evhttp_set_max_headers_size(w->http, RP_MAX_HEADERS);
    evhttp_set_timeout(w->http, atomic_load(&srv->idle_timeout)); /* and again at each accept */
    /* A body over the limit is read and discarded before the 413 goes out: closing with unread
     * bytes makes the kernel send RST, and the client would see a reset instead of the answer.
     * Discarding costs no memory; the request deadline bounds how long it can go on. */
    if (evhttp_set_flags(w->http, EVHTTP_SERVER_LINGERING_CLOSE) != 0)
        return RP_ERR_UNSUPPORTED;
    /* Every method evhttp knows reaches the route table, which answers 405 with Allow for one a
     * route does not take (evhttp itself would answer 501 without saying what is allowed). */
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS |
                                            EVHTTP_REQ_PATCH | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT);
    evhttp_set_bevcb(w->http, make_bev, w);
    evhttp_set_gencb(w->http, on_request, w);
    w->accept_timer = evtimer_new(w->base, accept_timer_cb, w);
    w->beat_timer = event_new(w->base, -1, EV_PERSIST, beat_cb, w);
    if (w->accept_timer == NULL || w->beat_timer == NULL ||
        event_add(w->beat_timer,
                  &(struct timeval){srv->beat_ms / 1000, srv->beat_ms % 1000 * 1000}) != 0)
        return RP_ERR_NO_MEMORY;
    event_active(w->beat_timer, EV_TIMEOUT, 0); /* the first beat as soon as the loop runs */
    bound = evhttp_accept_socket_with_handle(w->http, listen_fd);
    if (bound == NULL)
        return RP_ERR_IO;
    w->listener = evhttp_bound_socket_get_listener(bound);
    evconnlistener_set_error_cb(w->listener, accept_error);
    return RP_OK;
}

void rp_worker_free(rp_worker_t *w)
{
    /* Records written after the loop stopped: their handlers answer (into connections that are
     * about to close) and free their state. */
    if (w->recorded != NULL) {
        answer_recorded(-1, 0, w);
        event_free(w->recorded);
    }
    if (w->srv != NULL) {
        pthread_mutex_destroy(&w->recorded_lock);
        pthread_mutex_destroy(&w->ctx_lock);
    }
    if (w->accept_timer != NULL)
        event_free(w->accept_timer);
    if (w->beat_timer != NULL)
        event_free(w->beat_timer);
    for (int i = 0; i < RP_CA_CACHE; i++)
        rp_ca_free(&w->cas[i]);
    if (w->http != NULL)
        evhttp_free(w->http);
    if (w->base != NULL)
        event_base_free(w->base);
    SSL_CTX_free(w->ssl_ctx); /* after the connections, each holding its own reference */
    rp_blobs_close(w->blobs); /* (on the store's connection: closed first) */
    rp_store_close(w->store);
}
