/*
 * The HTTPS client on libcurl. One easy handle per request: the programs that use it make few
 * requests, and a fresh handle never carries state from one request to the next.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>

#include "rampart/attest_binding.h"
#include "rampart/http_client.h"
#include "rampart/log.h"

struct sink {
    char *buf;
    size_t len;
    bool too_large;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t add = size * n;
    char *grown;

    if (add > RP_HTTP_MAX_RESPONSE - s->len) {
        s->too_large = true;
        return 0; /* aborts the transfer */
    }
    grown = realloc(s->buf, s->len + add + 1);
    if (grown == NULL)
        return 0;
    s->buf = grown;
    memcpy(s->buf + s->len, data, add);
    s->len += add;
    s->buf[s->len] = '\0';
    return add;
}

struct ssl_cb {
    int (*fn)(SSL_CTX *, void *);
    void *arg;
};

static CURLcode on_ssl_ctx(CURL *curl, void *ctx, void *arg)
{
    struct ssl_cb *cb = arg;

    (void)curl;
    return cb->fn(ctx, cb->arg) == 1 ? CURLE_OK : CURLE_SSL_CERTPROBLEM;
}

/* TLS sessions are shared by every request of the process: a daemon that talks to the service
 * again resumes its session instead of a full handshake. */
static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *arg)
{
    (void)c;
    (void)access;
    (void)arg;
    pthread_mutex_lock(&share_locks[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *arg)
{
    (void)c;
    (void)arg;
    pthread_mutex_unlock(&share_locks[data]);
}

static pthread_once_t once = PTHREAD_ONCE_INIT; /* global_init, once per process */

static void global_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_locks[i], NULL);
    share = curl_share_init();
    if (share != NULL &&
        (curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
         curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
         curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)) {
        curl_share_cleanup(share);
        share = NULL;
    }
}

/* What every request has: HTTPS only, TLS 1.2 at least, the server checked against ca_file. */
static void setup(CURL *curl, const char *url, const rp_http_opts_t *o, long default_timeout,
                  char *errbuf)
{
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(curl, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, o->timeout > 0 ? o->timeout : default_timeout);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
}

struct request_progress {
    const rp_http_opts_t *o;
    bool sending; /* a request with a body reports it going out; one without, the answer */
};

static int on_request_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                               curl_off_t ulnow)
{
    const struct request_progress *p = arg;
    curl_off_t now = p->sending ? ulnow : dlnow, total = p->sending ? ultotal : dltotal;

    if (now >= 0 && total >= 0)
        p->o->progress(p->o->progress_arg, (uint64_t)now, (uint64_t)total);
    return 0;
}

/* A body made from the connection's binding (rp_http_post_bound's make), as curl first asks for it:
 * by then the connection is up and its handshake done. */
struct bound {
    CURL *curl;
    rp_http_bound_body_fn make; /* NULL: the request has no bound body */
    void *arg;
    char *body;
    size_t len, off;
    bool made;
    bool unbound;     /* the connection has no binding: not TLS 1.3, or curl not on OpenSSL */
    char version[16]; /* then the connection's TLS version, as OpenSSL names it, if known */
    rp_err_t err;
};

/* This connection's binding. RP_ERR_UNSUPPORTED: it has none (b->unbound), which the caller may
 * meet with another flow; any other failure is an error. */
static rp_err_t bound_binding(struct bound *b, uint8_t binding[RP_ATTEST_BINDING_LEN])
{
    struct curl_tlssessioninfo *tls = NULL;
    rp_err_t err;

    if (curl_easy_getinfo(b->curl, CURLINFO_TLS_SSL_PTR, &tls) != CURLE_OK || tls == NULL)
        return RP_ERR_INVALID_ARG;
    if (tls->backend != CURLSSLBACKEND_OPENSSL) { /* no exporter to ask for */
        b->unbound = true;
        snprintf(b->version, sizeof(b->version), "not OpenSSL");
        return RP_ERR_UNSUPPORTED;
    }
    if (tls->internals == NULL)
        return RP_ERR_INVALID_ARG;
    err = rp_attest_binding(tls->internals, binding);
    if (err == RP_ERR_UNSUPPORTED) {
        b->unbound = true;
        snprintf(b->version, sizeof(b->version), "%s", SSL_get_version(tls->internals));
    }
    return err;
}

static size_t on_bound_read(char *buf, size_t size, size_t n, void *arg)
{
    struct bound *b = arg;
    uint8_t binding[RP_ATTEST_BINDING_LEN];
    size_t take;

    if (!b->made) {
        b->made = true;
        b->err = bound_binding(b, binding);
        if (b->err == RP_OK)
            b->err = b->make(b->arg, binding, sizeof(binding), &b->body, &b->len);
        OPENSSL_cleanse(binding, sizeof(binding));
    }
    if (b->err != RP_OK)
        return CURL_READFUNC_ABORT; /* before any byte of the body */
    take = b->len - b->off < size * n ? b->len - b->off : size * n;
    memcpy(buf, b->body + b->off, take);
    b->off += take;
    return take;
}

static rp_err_t request_once(const char *method, const char *url, const rp_http_opts_t *o,
                             const void *body, size_t len, rp_http_bound_body_fn make, void *arg,
                             rp_http_response_t *resp)
{
    struct request_progress progress = {o, body != NULL};
    char auth[512], ctype[128];
    struct curl_slist *headers = NULL;
    struct sink sink = {NULL, 0, false};
    struct ssl_cb cb = {o->ssl_ctx_fn, o->ssl_ctx_arg};
    char errbuf[CURL_ERROR_SIZE] = "";
    struct bound bound = {0};
    CURLcode rc;
    CURL *curl;

    memset(resp, 0, sizeof(*resp));
    pthread_once(&once, global_init);
    curl = curl_easy_init();
    if (curl == NULL)
        return RP_ERR_NO_MEMORY;
    bound.curl = curl;
    bound.make = make;
    bound.arg = arg;
    if (o->token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
        headers = curl_slist_append(headers, auth);
    }
    if (o->content_type != NULL) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s", o->content_type);
        headers = curl_slist_append(headers, ctype);
    }
    headers = curl_slist_append(headers, "Expect:");
    setup(curl, url, o, 30, errbuf);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    if (share != NULL && o->ssl_ctx_fn == NULL)
        curl_easy_setopt(curl, CURLOPT_SHARE, share);
    if (o->ssl_ctx_fn != NULL) /* a client certificate: never resume a session made without */
        curl_easy_setopt(curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (make != NULL) { /* its length unknown until then: sent chunked */
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_bound_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, &bound);
    }
    if (o->ssl_ctx_fn != NULL) {
        curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, &cb);
    }
    if (o->progress != NULL) {
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_request_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &progress);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    }
    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_off_t retry = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
        if (curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry) == CURLE_OK && retry > 0)
            resp->retry_after = retry < 86400 ? (long)retry : 86400;
        resp->body = sink.buf != NULL ? sink.buf : strdup("");
        resp->len = sink.len;
    } else {
        if (bound.unbound)
            snprintf(resp->error, sizeof(resp->error),
                     "the connection (%s) has no binding: only TLS 1.3 through OpenSSL has one",
                     bound.version);
        else
            snprintf(resp->error, sizeof(resp->error), "%s",
                     sink.too_large ? "the response is too large"
                     : bound.made && bound.err != RP_OK
                         ? "cannot make the request's body from the connection's binding"
                     : errbuf[0] ? errbuf
                                 : curl_easy_strerror(rc));
        free(sink.buf);
    }
    free(bound.body);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK)
        return bound.unbound ? RP_ERR_UNSUPPORTED : RP_ERR_IO;
    return resp->body != NULL ? RP_OK : RP_ERR_NO_MEMORY;
}

static bool (*wait_hook)(void);

void rp_http_set_wait_hook(bool (*hook)(void))
{
    wait_hook = hook;
}

/* Sleep for seconds, telling the hook each second; false when it ends the wait. */
static bool busy_sleep(long seconds)
{
    for (long s = 0; s < seconds; s++) {
        if (wait_hook != NULL && !wait_hook())
            return false;
        sleep(1);
    }
    return wait_hook == NULL || wait_hook();
}

/* One request, and again after each 503 that names its wait, for o->busy_wait seconds at most. */
static rp_err_t request(const char *method, const char *url, const rp_http_opts_t *o,
                        const void *body, size_t len, rp_http_bound_body_fn make, void *arg,
                        rp_http_response_t *resp)
{
    rp_err_t err = request_once(method, url, o, body, len, make, arg, resp);
    long left = o->busy_wait;

    /* A 503 that names its wait is the service asking for the request again (its database
     * busy or restarting: the request was not done, or not acknowledged): sent as it was. */
    while (left > 0 && err == RP_OK && resp->status == 503 && resp->retry_after > 0) {
        long wait = resp->retry_after;
        if (wait > RP_HTTP_BUSY_WAIT_MAX)
            wait = RP_HTTP_BUSY_WAIT_MAX;
        if (wait > left)
            wait = left;
        left -= wait;
        rp_log_info("%s: the service is busy (503): trying again in %ld s", url, wait);
        if (!busy_sleep(wait))
            break;
        rp_http_response_free(resp);
        err = request_once(method, url, o, body, len, make, arg, resp);
    }
    return err;
}

rp_err_t rp_http_request(const char *method, const char *url, const rp_http_opts_t *o,
                         const void *body, size_t len, rp_http_response_t *resp)
{
    return request(method, url, o, body, len, NULL, NULL, resp);
}

rp_err_t rp_http_post_bound(const char *url, const rp_http_opts_t *o, rp_http_bound_body_fn make,
                            void *arg, rp_http_response_t *resp)
{
    if (make == NULL) {
        memset(resp, 0, sizeof(*resp));
        return RP_ERR_INVALID_ARG;
    }
    return request("POST", url, o, NULL, 0, make, arg, resp);
}

void rp_http_response_free(rp_http_response_t *resp)
{
    free(resp->body);
    resp->body = NULL;
}

char *rp_http_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *out;

    if (e == NULL)
        return NULL;
    out = strdup(e); /* the caller frees with free(), not curl_free() */
    curl_free(e);
    return out;
}

struct download {
    int fd;
    uint64_t offset;                           /* where the response's first byte goes */
    uint64_t written;                          /* bytes of this response written */
    uint64_t max;                              /* the whole file may not grow past this */
    bool checked, writing, too_long, io_error; /* writing: the response is the file's bytes */
    CURL *curl;
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
};

static size_t on_file_data(char *data, size_t size, size_t n, void *arg)
{
    struct download *d = arg;
    size_t add = size * n;
    long status = 0;

    if (!d->checked) {
        d->checked = true;
        curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
        d->writing = status == 200 || status == 206;
        if (status == 200 && d->offset > 0) { /* the range was ignored: the whole file again */
            if (ftruncate(d->fd, 0) != 0) {
                d->io_error = true;
                return 0;
            }
            d->offset = 0;
        }
    }
    if (!d->writing)
        return add; /* an error body: not written, not counted */
    if (d->offset + d->written + add > d->max) {
        d->too_long = true; /* endless data: stop at the announced size */
        return 0;
    }
    if (pwrite(d->fd, data, add, (off_t)(d->offset + d->written)) != (ssize_t)add) {
        d->io_error = true;
        return 0;
    }
    d->written += add;
    return add;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct download *d = arg;
    (void)dltotal;
    (void)ultotal;
    (void)ulnow;
    if (d->progress != NULL && dlnow >= 0)
        d->progress(d->progress_arg, d->offset + (uint64_t)dlnow, d->max);
    return 0;
}

rp_err_t rp_http_download(const char *url, const rp_http_opts_t *o, int fd, uint64_t max,
                          long *status, char *error, size_t error_cap)
{
    struct ssl_cb cb = {o->ssl_ctx_fn, o->ssl_ctx_arg};
    struct download d = {fd,    0,     0,    max,         false,          false,
                         false, false, NULL, o->progress, o->progress_arg};
    char errbuf[CURL_ERROR_SIZE] = "";
    struct stat sb;
    CURLcode rc;
    CURL *curl;

    *status = 0;
    error[0] = '\0';
    if (fstat(fd, &sb) != 0)
        return RP_ERR_IO;
    d.offset = (uint64_t)sb.st_size; /* resume where the file ends */
    if (d.offset > max) {
        snprintf(error, error_cap, "the partial file is longer than the announced size");
        return RP_ERR_TOO_LARGE;
    }
    if (d.offset == max && max > 0) {
        *status = 206;
        return RP_OK; /* complete already */
    }
    pthread_once(&once, global_init);
    curl = curl_easy_init();
    if (curl == NULL)
        return RP_ERR_NO_MEMORY;
    d.curl = curl;
    setup(curl, url, o, 600, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_file_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    if (d.offset > 0)
        curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)d.offset);
    if (o->progress != NULL) {
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &d);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    }
    if (o->ssl_ctx_fn != NULL) {
        curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, &cb);
    }
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    if (d.offset > 0 && (rc == CURLE_RANGE_ERROR || *status == 416)) {
        /* The server would not resume (it ignored the range, or has less than the partial
         * file): start the file over, once. */
        if (ftruncate(fd, 0) != 0) {
            curl_easy_cleanup(curl);
            snprintf(error, error_cap, "cannot write the download");
            return RP_ERR_IO;
        }
        d.offset = 0;
        d.written = 0;
        d.checked = false;
        curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)0);
        errbuf[0] = '\0';
        rc = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    }
    curl_easy_cleanup(curl);
    if (d.too_long) {
        snprintf(error, error_cap, "the server sent more than the announced %llu bytes",
                 (unsigned long long)max);
        return RP_ERR_TOO_LARGE;
    }
    if (d.io_error) {
        snprintf(error, error_cap, "cannot write the download");
        return RP_ERR_IO;
    }
    if (rc != CURLE_OK) {
        snprintf(error, error_cap, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return RP_ERR_IO;
    }
    return RP_OK;
}
