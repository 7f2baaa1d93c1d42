/*
 * The HTTPS client on libcurl. One easy handle per request: the programs that use it make few
 * requests, and a fresh handle never carries state from one request to the next.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "rampart/http_client.h"

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

rp_err_t rp_http_request(const char *method, const char *url, const rp_http_opts_t *o,
                         const void *body, size_t len, rp_http_response_t *resp)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    char auth[512], ctype[128];
    struct curl_slist *headers = NULL;
    struct sink sink = {NULL, 0, false};
    struct ssl_cb cb = {o->ssl_ctx_fn, o->ssl_ctx_arg};
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode rc;
    CURL *curl;

    memset(resp, 0, sizeof(*resp));
    pthread_once(&once, global_init);
    curl = curl_easy_init();
    if (curl == NULL)
        return RP_ERR_NO_MEMORY;
    if (o->token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
        headers = curl_slist_append(headers, auth);
    }
    if (o->content_type != NULL) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s", o->content_type);
        headers = curl_slist_append(headers, ctype);
    }
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(curl, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, o->timeout > 0 ? o->timeout : 30L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    if (share != NULL)
        curl_easy_setopt(curl, CURLOPT_SHARE, share);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (o->ssl_ctx_fn != NULL) {
        curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, &cb);
    }
    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
        resp->body = sink.buf != NULL ? sink.buf : strdup("");
        resp->len = sink.len;
    } else {
        snprintf(resp->error, sizeof(resp->error), "%s",
                 sink.too_large ? "the response is too large"
                 : errbuf[0]    ? errbuf
                                : curl_easy_strerror(rc));
        free(sink.buf);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK)
        return RP_ERR_IO;
    return resp->body != NULL ? RP_OK : RP_ERR_NO_MEMORY;
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
