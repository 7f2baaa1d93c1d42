/*
 * Threat detection and automatic quarantine (threat.h; docs/failure-reporting.md, "Threat
 * detection" and "Quarantine"). The one owner of the spike rule, of what an alert and a
 * quarantine are, of the webhook's body and signature, and of the routes that set and show them:
 *
 *   GET    /api/v1/tenants/T/alerts                    the tenant's alerts, newest first
 *   GET|PUT /api/v1/tenants/T/threat                   the spike rule's settings
 *   GET|PUT|DELETE /api/v1/tenants/T/webhook           where alerts are POSTed (signed)
 *   GET|PUT /api/v1/tenants/T/quarantine/policy        automatic quarantine (off by default)
 *   GET    /api/v1/tenants/T/quarantine/actions        every quarantine and release, with why
 *   POST   /api/v1/tenants/T/devices/D/release         bring a quarantined device back
 *
 * Everything it decides on is in the store (counts, alerts, policies), so replicas agree; the
 * webhook's deliveries are the one thing in memory: a thread of their own, off the event loops,
 * with libcurl, retries and backoff.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "rampart/hex.h"
#include "rampart/log.h"
#include "threat.h"

#define ALERTS_PAGE_DEFAULT 100
#define ALERTS_PAGE_MAX 1000
#define METRICS_OPEN_MAX 1000  /* open alerts listed on /metrics */
#define WEBHOOK_QUEUE_MAX 1000 /* deliveries waiting; beyond, new ones are dropped and counted */
#define WEBHOOK_ATTEMPTS 6     /* tries of one delivery: at 0, 1, 2, 4, 8, 16 s (with jitter) */
#define WEBHOOK_TIMEOUT 10     /* seconds for one try, connection included */
#define WEBHOOK_BODY_MAX 16384

/* This process's counts, for /metrics (alerts themselves are in the store). */
static atomic_ullong webhook_delivered, webhook_failed, webhook_dropped, webhook_retries;
static atomic_ullong quarantines, threat_errors;

/* ---- the rule ---- */

bool rp_threat_spike(const rp_threat_settings_t *set, const rp_threat_count_t *c, bool open,
                     double *rate, double *baseline, int64_t *devices)
{
    double w = (double)set->window, left = w - (double)c->elapsed, r, b, slots;
    int64_t d = c->devices > c->prev_devices ? c->devices : c->prev_devices;

    if (left < 0)
        left = 0;
    /* The last window: this slot, and the part of the slot before that the window still covers. */
    r = (double)c->count + (double)c->prev_count * left / w;
    slots = (double)set->baseline_days * 86400.0 / w;
    b = slots > 0 ? (double)c->baseline_total / slots : 0;
    if (b < (double)set->floor)
        b = (double)set->floor; /* a subject never seen still needs a storm to spike */
    if (rate != NULL)
        *rate = r;
    if (baseline != NULL)
        *baseline = b;
    if (devices != NULL)
        *devices = d;
    return r >= (double)set->factor * b / (open ? 2.0 : 1.0) && d >= set->min_devices;
}

void rp_threat_subject_split(const char *subject, const char **type, const char **name)
{
    const char *colon = strchr(subject, ':');

    *type = strncmp(subject, "bucket:", 7) == 0 ? "bucket" : "kind";
    *name = colon != NULL ? colon + 1 : subject;
}

static bool in_policy(const rp_quarantine_policy_t *p, const char *kind)
{
    for (size_t i = 0; i < p->nkinds; i++)
        if (strcmp(p->kinds[i], kind) == 0)
            return true;
    return false;
}

/* What a tenant's processing found, kept to be told once committed. */
static rp_err_t news_alert(rp_threat_news_t *news, const rp_threat_alert_t *a)
{
    if (news->nalerts == news->alerts_cap) {
        size_t cap = news->alerts_cap ? 2 * news->alerts_cap : 8;
        rp_threat_alert_t *p = realloc(news->alerts, cap * sizeof(*p));
        if (p == NULL)
            return RP_ERR_NO_MEMORY;
        news->alerts = p;
        news->alerts_cap = cap;
    }
    news->alerts[news->nalerts++] = *a;
    return RP_OK;
}

static rp_err_t news_quarantine(rp_threat_news_t *news, const char *tenant_id,
                                const char *device_id, const char *kind)
{
    struct rp_threat_quarantine_news *q;

    if (news->nquarantined == news->quarantined_cap) {
        size_t cap = news->quarantined_cap ? 2 * news->quarantined_cap : 8;
        q = realloc(news->quarantined, cap * sizeof(*q));
        if (q == NULL)
            return RP_ERR_NO_MEMORY;
        news->quarantined = q;
        news->quarantined_cap = cap;
    }
    q = &news->quarantined[news->nquarantined++];
    snprintf(q->tenant_id, sizeof(q->tenant_id), "%s", tenant_id);
    snprintf(q->device_id, sizeof(q->device_id), "%s", device_id);
    snprintf(q->kind, sizeof(q->kind), "%s", kind);
    return RP_OK;
}

/* Items by subject, then place (so a subject's last signal ends its run). */
static int by_subject(const void *a, const void *b, void *ctx)
{
    const rp_threat_count_t *items = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(items[x].subject, items[y].subject);

    return c != 0 ? c : (x < y ? -1 : x > y);
}

/* The signals of one tenant: count them, raise or close alerts, apply the quarantine policy. */
static rp_err_t process_tenant(rp_store_t *s, const char *tenant_id, const rp_threat_signal_t *sig,
                               size_t n, int64_t now, rp_threat_news_t *news)
{
    rp_threat_settings_t set;
    rp_quarantine_policy_t policy;
    rp_threat_count_t *items = calloc(2 * n + 1, sizeof(*items));
    size_t *from = calloc(2 * n + 1, sizeof(*from)), k = 0, nopened = 0, nquarantined = 0;
    size_t *from_sorted = calloc(2 * n + 1, sizeof(*from_sorted));
    bool *done = calloc(2 * n + 1, sizeof(*done));
    /* What to tell once it is committed: alerts opened, devices quarantined (their first signal,
     * and the kind of the one that reached the threshold). */
    rp_threat_alert_t *opened_alerts = calloc(2 * n + 1, sizeof(*opened_alerts));
    size_t *quarantined_at = calloc(n + 1, sizeof(*quarantined_at));
    const char **quarantined_kind = calloc(n + 1, sizeof(*quarantined_kind));
    /* One device's signals of a listed kind, counted at once */
    const char **qkind = calloc(n + 1, sizeof(*qkind)), **qdetail = calloc(n + 1, sizeof(*qdetail));
    rp_err_t err = items != NULL && from != NULL && from_sorted != NULL && done != NULL &&
                           opened_alerts != NULL && quarantined_at != NULL &&
                           quarantined_kind != NULL && qkind != NULL && qdetail != NULL
                       ? RP_OK
                       : RP_ERR_NO_MEMORY;

    /* All of it one transaction: one sync per batch of signals rather than one per subject
     * (a storm of a few dozen subjects made ingestion wait on dozens of syncs per batch). */
    if (err != RP_OK || (err = rp_store_group_begin(s)) != RP_OK) {
        free(items);
        free(from);
        free(from_sorted);
        free(done);
        free(opened_alerts);
        free(quarantined_at);
        free(quarantined_kind);
        free(qkind);
        free(qdetail);
        return err;
    }
    if (err == RP_OK)
        err = rp_store_threat_settings_get(s, tenant_id, &set);
    if (err == RP_OK)
        err = rp_store_quarantine_policy_get(s, tenant_id, &policy);
    for (size_t i = 0; err == RP_OK && i < n; i++) {
        const char *kind = sig[i].kind, *bucket = sig[i].bucket;
        int len;
        if (kind == NULL || kind[0] == '\0' || sig[i].device_id == NULL)
            continue;
        len = snprintf(items[k].subject, sizeof(items[k].subject), "kind:%s", kind);
        if (len > 0 && (size_t)len < sizeof(items[k].subject)) {
            items[k].device_id = sig[i].device_id;
            from[k++] = i;
        }
        if (bucket == NULL || bucket[0] == '\0')
            continue;
        len = snprintf(items[k].subject, sizeof(items[k].subject), "bucket:%s", bucket);
        if (len > 0 && (size_t)len < sizeof(items[k].subject)) {
            items[k].device_id = sig[i].device_id;
            from[k++] = i;
        } else {
            rp_log_warn("threat: a bucket ID of %d bytes is too long to count",
                        (int)strlen(bucket));
        }
    }
    if (err == RP_OK && k > 0)
        err = rp_store_threat_count(s, tenant_id, &set, now, items, k);
    /* Each subject is judged once, on its counts after the batch's last signal of it (a
     * recorder's round can hold thousands of signals: sorted, not compared pairwise). */
    for (size_t i = 0; i < k; i++)
        from_sorted[i] = i;
    qsort_r(from_sorted, k, sizeof(*from_sorted), by_subject, items);
    for (size_t r = 0, e; err == RP_OK && r < k; r = e) {
        rp_threat_alert_t al;
        int64_t nsig;
        double rate, base;
        bool opened, open = false;
        size_t a;
        for (e = r + 1;
             e < k && strcmp(items[from_sorted[e]].subject, items[from_sorted[r]].subject) == 0;
             e++)
            ;
        a = from_sorted[e - 1]; /* the subject's last signal */
        nsig = (int64_t)(e - r);
        memset(&al, 0, sizeof(al));
        err = rp_store_threat_alert_is_open(s, tenant_id, items[a].subject, now, &open);
        if (err != RP_OK)
            break;
        if (!rp_threat_spike(&set, &items[a], open, &rate, &base, &al.devices)) {
            err = rp_store_threat_alert_close(s, tenant_id, items[a].subject, now);
            continue;
        }
        snprintf(al.tenant_id, sizeof(al.tenant_id), "%s", tenant_id);
        snprintf(al.subject, sizeof(al.subject), "%s", items[a].subject);
        snprintf(al.reason, sizeof(al.reason), "%s",
                 sig[from[a]].reason != NULL ? sig[from[a]].reason : "");
        al.last_at = now;
        al.expires_at = now + set.window; /* open while the spike lasts: a window without one */
        al.count = (int64_t)(rate + 0.5);
        al.baseline = base;
        al.signals = nsig;
        err = rp_store_threat_alert_raise(s, &al, &opened);
        if (err == RP_OK && opened)
            opened_alerts[nopened++] = al;
    }
    /* Quarantine: each signal of a listed kind counts against its own device only. Once a
     * device is quarantined, the rest of its batch counts nothing (done[] marks them). */
    for (size_t i = 0; err == RP_OK && i < n; i++)
        done[i] = false;
    for (size_t i = 0; err == RP_OK && policy.enabled && i < n; i++) {
        size_t m = 0, at;
        if (done[i] || sig[i].kind == NULL || sig[i].device_id == NULL ||
            !in_policy(&policy, sig[i].kind))
            continue;
        /* All of this device's signals of the batch at once: one call, not one each (a
         * device's batch of 64 would otherwise be 64 steps under the store's write lock). */
        for (size_t j = i; j < n; j++) {
            if (done[j] || sig[j].kind == NULL || sig[j].device_id == NULL ||
                strcmp(sig[j].device_id, sig[i].device_id) != 0 || !in_policy(&policy, sig[j].kind))
                continue;
            done[j] = true;
            qkind[m] = sig[j].kind;
            qdetail[m++] = sig[j].reason;
        }
        err = rp_store_quarantine_signals(s, tenant_id, sig[i].device_id, qkind, qdetail, m,
                                          &policy, now, &at);
        if (err == RP_OK && at < m) {
            quarantined_kind[nquarantined] = qkind[at];
            quarantined_at[nquarantined++] = i;
        }
    }
    err = rp_store_group_end(s, err);
    /* Held, not told: inside a caller's group (the recorder's round) this was a savepoint, and
     * only the caller knows when the outermost commit has made it true. */
    for (size_t a = 0; err == RP_OK && a < nopened; a++)
        err = news_alert(news, &opened_alerts[a]);
    for (size_t q = 0; err == RP_OK && q < nquarantined; q++)
        err =
            news_quarantine(news, tenant_id, sig[quarantined_at[q]].device_id, quarantined_kind[q]);
    free(opened_alerts);
    free(quarantined_at);
    free(quarantined_kind);
    free(qkind);
    free(qdetail);
    free(items);
    free(from);
    free(from_sorted);
    free(done);
    return err;
}

rp_err_t rp_threat_process_held(rp_store_t *s, const rp_threat_signal_t *sig, size_t n, int64_t now,
                                rp_threat_news_t *news)
{
    rp_err_t err = RP_OK;

    for (size_t i = 0, j; err == RP_OK && i < n; i = j) {
        for (j = i + 1; j < n && sig[i].tenant_id != NULL && sig[j].tenant_id != NULL &&
                        strcmp(sig[j].tenant_id, sig[i].tenant_id) == 0;
             j++)
            ;
        if (sig[i].tenant_id != NULL && sig[i].tenant_id[0] != '\0')
            err = process_tenant(s, sig[i].tenant_id, sig + i, j - i, now, news);
    }
    return err;
}

void rp_threat_news_tell(rp_threat_news_t *news, const rp_threat_hooks_t *hooks)
{
    for (size_t a = 0; a < news->nalerts; a++) {
        const rp_threat_alert_t *al = &news->alerts[a];
        rp_log_warn("tenant %s: alert %lld: %s spikes: %lld in the last window from %lld "
                    "device(s), baseline %.2f",
                    al->tenant_id, (long long)al->id, al->subject, (long long)al->count,
                    (long long)al->devices, al->baseline);
        if (hooks != NULL && hooks->alert_opened != NULL)
            hooks->alert_opened(hooks->ctx, al);
    }
    for (size_t q = 0; q < news->nquarantined; q++) {
        const struct rp_threat_quarantine_news *qn = &news->quarantined[q];
        atomic_fetch_add(&quarantines, 1);
        rp_log_warn("tenant %s: device %s quarantined by the policy (%s)", qn->tenant_id,
                    qn->device_id, qn->kind);
        if (hooks != NULL && hooks->quarantined != NULL)
            hooks->quarantined(hooks->ctx, qn->tenant_id, qn->device_id, qn->kind);
    }
    rp_threat_news_free(news);
}

void rp_threat_news_free(rp_threat_news_t *news)
{
    free(news->alerts);
    free(news->quarantined);
    memset(news, 0, sizeof(*news));
}

rp_err_t rp_threat_process(rp_store_t *s, const rp_threat_signal_t *sig, size_t n, int64_t now,
                           const rp_threat_hooks_t *hooks)
{
    rp_threat_news_t news = {0};
    rp_err_t err;

    if (n > RP_THREAT_BATCH_MAX) {
        rp_log_warn("threat: %zu signals at once; counting the first %d", n, RP_THREAT_BATCH_MAX);
        n = RP_THREAT_BATCH_MAX;
    }
    err = rp_threat_process_held(s, sig, n, now, &news);

    /* Outside a caller's group each tenant's part committed by itself: what it holds is true
     * even when a later tenant's part failed. */
    rp_threat_news_tell(&news, hooks);
    return err;
}

/* ---- the webhook: its secret, its signature, its deliveries ---- */

rp_err_t rp_webhook_secret(const uint8_t master[RP_MASTER_KEY_LEN], const char *tenant_id,
                           const uint8_t salt[RP_WEBHOOK_SALT_LEN], char out[65])
{
    uint8_t key[32], mac[EVP_MAX_MD_SIZE], msg[RP_ID_SIZE + RP_WEBHOOK_SALT_LEN];
    unsigned mac_len = 0;
    size_t tlen = strlen(tenant_id);
    rp_err_t err = tlen < RP_ID_SIZE
                       ? rp_master_derive(master, "rampart webhook secrets", key, sizeof(key))
                       : RP_ERR_INVALID_ARG;

    if (err == RP_OK) {
        /* The tenant's ID is NUL-terminated in the message, so no ID and salt run together. */
        memcpy(msg, tenant_id, tlen + 1);
        memcpy(msg + tlen + 1, salt, RP_WEBHOOK_SALT_LEN);
        if (HMAC(EVP_sha256(), key, sizeof(key), msg, tlen + 1 + RP_WEBHOOK_SALT_LEN, mac,
                 &mac_len) == NULL ||
            mac_len != 32)
            err = RP_ERR_CRYPTO;
    }
    if (err == RP_OK)
        err = rp_hex_encode(mac, 32, out, 65);
    rp_wipe(key, sizeof(key));
    rp_wipe(mac, sizeof(mac));
    return err;
}

rp_err_t rp_webhook_sign(const char *secret, const void *body, size_t len, char out[72])
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    rp_err_t err = RP_ERR_CRYPTO;

    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &mac_len) != NULL &&
        mac_len == 32) {
        memcpy(out, "sha256=", 7);
        err = rp_hex_encode(mac, 32, out + 7, 65);
    }
    rp_wipe(mac, sizeof(mac));
    return err;
}

struct delivery {
    struct delivery *next;
    char url[RP_WEBHOOK_URL_MAX + 1];
    char tenant[64]; /* what the logs name: the URL may hold a credential (a path token) */
    char signature[72];
    char *body;
    size_t len;
    int attempts;
    struct timespec due; /* CLOCK_MONOTONIC */
};

static struct {
    pthread_once_t once;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct delivery *head; /* unordered: the thread takes the earliest due */
    size_t n;
    bool running;
} dq = {PTHREAD_ONCE_INIT, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, false};

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* One try: true when the receiver answered 2xx. */
static bool post_once(const struct delivery *d)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL, *h2;
    char sig[96];
    long status = 0;
    CURLcode rc = CURLE_FAILED_INIT;

    snprintf(sig, sizeof(sig), "X-Rampart-Signature: %s", d->signature);
    h2 = curl_slist_append(h, "Content-Type: application/json");
    h = h2 != NULL ? curl_slist_append(h2, sig) : NULL;
    if (h == NULL)
        curl_slist_free_all(h2);
    if (c != NULL && h != NULL) {
        curl_easy_setopt(c, CURLOPT_URL, d->url);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* the configured URL, nowhere else */
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)WEBHOOK_TIMEOUT);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "rampart-server webhook");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)d->len);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        rc = curl_easy_perform(c);
        if (rc == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || status < 200 || status > 299)
        rp_log_info("tenant %s: webhook try %d failed: %s", d->tenant, d->attempts + 1,
                    rc != CURLE_OK ? curl_easy_strerror(rc) : "an answer other than 2xx");
    return rc == CURLE_OK && status >= 200 && status <= 299;
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *deliver_loop(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&dq.lock);
    for (;;) {
        struct delivery **pick = NULL, *d;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        for (struct delivery **p = &dq.head; *p != NULL; p = &(*p)->next)
            if (pick == NULL || ts_before(&(*p)->due, &(*pick)->due))
                pick = p;
        if (pick == NULL) {
            pthread_cond_wait(&dq.cond, &dq.lock);
            continue;
        }
        if (ts_before(&now, &(*pick)->due)) {
            pthread_cond_timedwait(&dq.cond, &dq.lock, &(*pick)->due);
            continue;
        }
        d = *pick;
        *pick = d->next;
        dq.n--;
        pthread_mutex_unlock(&dq.lock);
        if (post_once(d)) {
            atomic_fetch_add(&webhook_delivered, 1);
            free(d->body);
            free(d);
            d = NULL;
        } else if (++d->attempts >= WEBHOOK_ATTEMPTS) {
            atomic_fetch_add(&webhook_failed, 1);
            rp_log_warn("tenant %s: webhook given up after %d tries", d->tenant, d->attempts);
            free(d->body);
            free(d);
            d = NULL;
        } else {
            /* Exponential backoff with jitter: 1, 2, 4, 8, 16 s, each 50-100%. */
            uint32_t r = 0;
            int64_t ms = 1000LL << (d->attempts - 1);
            (void)RAND_bytes((unsigned char *)&r, sizeof(r));
            ms = ms / 2 + (int64_t)(r % (uint32_t)(ms / 2 + 1));
            clock_gettime(CLOCK_MONOTONIC, &d->due);
            d->due.tv_sec += ms / 1000;
            d->due.tv_nsec += (ms % 1000) * 1000000L;
            if (d->due.tv_nsec >= 1000000000L) {
                d->due.tv_sec++;
                d->due.tv_nsec -= 1000000000L;
            }
            atomic_fetch_add(&webhook_retries, 1);
        }
        pthread_mutex_lock(&dq.lock);
        if (d != NULL) {
            d->next = dq.head;
            dq.head = d;
            dq.n++;
        }
    }
    return NULL;
}

static void deliver_start(void)
{
    pthread_condattr_t ca;
    pthread_t t;

    /* Waits are on the monotonic clock: a clock step must not stall or rush retries. */
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&dq.cond, &ca) != 0)
        return;
    pthread_condattr_destroy(&ca);
    if (pthread_create(&t, NULL, deliver_loop, NULL) != 0)
        return;
    pthread_detach(t);
    dq.running = true;
}

/* Queue body for the tenant's webhook, if it has one (signed here, on the worker, where the master
 * key is; the delivery thread never sees a secret). Takes body. */
static void webhook_queue(rp_worker_t *w, const char *tenant_id, json_t *body)
{
    rp_webhook_t hook;
    struct delivery *d = NULL;
    char secret[65] = "", *text = NULL;
    rp_err_t err = rp_store_webhook_get(w->store, tenant_id, &hook);

    if (err == RP_ERR_NOT_FOUND) {
        json_decref(body);
        return;
    }
    text = err == RP_OK ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(body);
    d = text != NULL && strlen(text) <= WEBHOOK_BODY_MAX ? calloc(1, sizeof(*d)) : NULL;
    if (d != NULL &&
        (rp_webhook_secret(w->srv->master_key, tenant_id, hook.salt, secret) != RP_OK ||
         rp_webhook_sign(secret, text, strlen(text), d->signature) != RP_OK)) {
        free(d);
        d = NULL;
    }
    rp_wipe(secret, sizeof(secret));
    if (d == NULL) {
        atomic_fetch_add(&threat_errors, 1);
        rp_log_error("tenant %s: cannot make the webhook's delivery", tenant_id);
        free(text);
        return;
    }
    snprintf(d->url, sizeof(d->url), "%s", hook.url);
    snprintf(d->tenant, sizeof(d->tenant), "%s", tenant_id);
    d->body = text;
    d->len = strlen(text);
    clock_gettime(CLOCK_MONOTONIC, &d->due);
    pthread_once(&dq.once, deliver_start);
    pthread_mutex_lock(&dq.lock);
    if (!dq.running || dq.n >= WEBHOOK_QUEUE_MAX) {
        pthread_mutex_unlock(&dq.lock);
        atomic_fetch_add(&webhook_dropped, 1);
        rp_log_warn("tenant %s: webhook delivery dropped (%s)", tenant_id,
                    dq.running ? "too many waiting" : "no delivery thread");
        free(d->body);
        free(d);
        return;
    }
    d->next = dq.head;
    dq.head = d;
    dq.n++;
    pthread_cond_signal(&dq.cond);
    pthread_mutex_unlock(&dq.lock);
}

/* ---- what operators see of an alert ---- */

static json_t *alert_json(const rp_threat_alert_t *a, int64_t now)
{
    const char *type, *name;
    bool open = a->closed_at == 0 && a->expires_at > now;
    int64_t closed = a->closed_at != 0 ? a->closed_at : (open ? 0 : a->expires_at);

    rp_threat_subject_split(a->subject, &type, &name);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:I, s:f, s:I, s:s}", "id",
                     (json_int_t)a->id, "subject", a->subject, "type", type, type, name, "state",
                     open ? "open" : "closed", "opened_at", rp_iso_time_json(a->opened_at),
                     "last_at", rp_iso_time_json(a->last_at), "closed_at", rp_iso_time_json(closed),
                     "count", (json_int_t)a->count, "devices", (json_int_t)a->devices, "baseline",
                     a->baseline, "signals", (json_int_t)a->signals, "reason", a->reason);
}

/* ---- rp_threat_observe: the callers' entry ---- */

static void hook_alert(void *ctx, const rp_threat_alert_t *a)
{
    rp_worker_t *w = ctx;
    json_t *body =
        json_pack("{s:s, s:s, s:o, s:o}", "type", "alert", "tenant", a->tenant_id, "alert",
                  alert_json(a, a->last_at), "sent_at", rp_iso_time_json((int64_t)time(NULL)));

    if (body != NULL)
        webhook_queue(w, a->tenant_id, body);
}

static void hook_quarantined(void *ctx, const char *tenant_id, const char *device_id,
                             const char *kind)
{
    rp_worker_t *w = ctx;
    int64_t since = 0;
    char reason[RP_QUARANTINE_REASON_MAX + 1] = "";
    json_t *body;

    if (rp_store_device_quarantine(w->store, device_id, &since, reason) != RP_OK)
        reason[0] = '\0';
    body = json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:s}, s:o}", "type", "quarantine", "tenant",
                     tenant_id, "quarantine", "device_id", device_id, "kind", kind, "since",
                     rp_iso_time_json(since), "reason", reason, "sent_at",
                     rp_iso_time_json((int64_t)time(NULL)));
    if (body != NULL)
        webhook_queue(w, tenant_id, body);
}

void rp_threat_tell(rp_worker_t *w, rp_threat_news_t *news)
{
    rp_threat_hooks_t hooks = {hook_alert, hook_quarantined, w};

    rp_threat_news_tell(news, &hooks);
}

void rp_threat_observe(rp_worker_t *w, const rp_threat_signal_t *sig, size_t n)
{
    rp_threat_hooks_t hooks = {hook_alert, hook_quarantined, w};

    if (n == 0)
        return;
    if (rp_threat_process(w->store, sig, n, (int64_t)time(NULL), &hooks) != RP_OK) {
        atomic_fetch_add(&threat_errors, 1);
        rp_log_error("threat detection: cannot count %zu signal(s) (they stay stored)", n);
    }
}

/* ---- /metrics ---- */

/* A label value in the exposition format: \, " and newline escaped. */
static void label(struct evbuffer *buf, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            evbuffer_add_printf(buf, "\\%c", *v);
        else if (*v == '\n')
            evbuffer_add(buf, "\\n", 2);
        else
            evbuffer_add(buf, v, 1);
    }
}

static void metric_open(void *ctx, const rp_threat_alert_t *a)
{
    struct evbuffer *buf = ctx;
    const char *type, *name;

    rp_threat_subject_split(a->subject, &type, &name);
    evbuffer_add_printf(buf, "rampart_threat_alert_open{tenant=\"");
    label(buf, a->tenant_id);
    evbuffer_add_printf(buf, "\",%s=\"", type);
    label(buf, name);
    evbuffer_add_printf(buf, "\",alert=\"%lld\"} %lld\n", (long long)a->id, (long long)a->count);
}

static void metric_total(void *ctx, const char *tenant_id, int64_t alerts)
{
    struct evbuffer *buf = ctx;

    evbuffer_add_printf(buf, "rampart_threat_alerts_total{tenant=\"");
    label(buf, tenant_id);
    evbuffer_add_printf(buf, "\"} %lld\n", (long long)alerts);
}

void rp_threat_metrics(rp_worker_t *w, struct evbuffer *buf)
{
    evbuffer_add_printf(buf, "# HELP rampart_threat_alert_open Alerts open now (a spike that "
                             "lasts), by tenant and event kind or crash bucket: the value is the "
                             "signals in the last window.\n"
                             "# TYPE rampart_threat_alert_open gauge\n");
    if (rp_store_threat_alerts(w->store, NULL, (int64_t)time(NULL), METRICS_OPEN_MAX, metric_open,
                               buf) != RP_OK)
        atomic_fetch_add(&threat_errors, 1);
    evbuffer_add_printf(buf, "# HELP rampart_threat_alerts_total Alerts raised, by tenant.\n"
                             "# TYPE rampart_threat_alerts_total counter\n");
    if (rp_store_threat_alert_totals(w->store, metric_total, buf) != RP_OK)
        atomic_fetch_add(&threat_errors, 1);
    evbuffer_add_printf(
        buf,
        "# HELP rampart_threat_webhook_deliveries_total Webhook deliveries by this process, by "
        "outcome (retried counts each retry).\n"
        "# TYPE rampart_threat_webhook_deliveries_total counter\n"
        "rampart_threat_webhook_deliveries_total{result=\"delivered\"} %llu\n"
        "rampart_threat_webhook_deliveries_total{result=\"failed\"} %llu\n"
        "rampart_threat_webhook_deliveries_total{result=\"dropped\"} %llu\n"
        "rampart_threat_webhook_deliveries_total{result=\"retried\"} %llu\n"
        "# HELP rampart_threat_quarantines_total Devices quarantined by a policy (this "
        "process).\n# TYPE rampart_threat_quarantines_total counter\n"
        "rampart_threat_quarantines_total %llu\n"
        "# HELP rampart_threat_errors_total Signals or metrics threat detection could not "
        "handle (the signals stay stored).\n# TYPE rampart_threat_errors_total counter\n"
        "rampart_threat_errors_total %llu\n",
        (unsigned long long)atomic_load(&webhook_delivered),
        (unsigned long long)atomic_load(&webhook_failed),
        (unsigned long long)atomic_load(&webhook_dropped),
        (unsigned long long)atomic_load(&webhook_retries),
        (unsigned long long)atomic_load(&quarantines),
        (unsigned long long)atomic_load(&threat_errors));
}

/* ---- the operator's routes ---- */

/* A query integer in [lo, hi]. */
static bool query_limit(rp_req_t *r, int64_t *limit)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    struct evkeyvalq q;
    bool ok = true;

    if (query == NULL)
        return true;
    if (evhttp_parse_query_str(query, &q) != 0)
        return false;
    for (struct evkeyval *kv = q.tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        char *end;
        long long v = strtoll(kv->value, &end, 10);
        if (strcmp(kv->key, "limit") != 0 || kv->value[0] == '\0' || *end != '\0' || v < 1 ||
            v > ALERTS_PAGE_MAX)
            ok = false;
        else
            *limit = v;
    }
    evhttp_clear_headers(&q);
    return ok;
}

struct alert_list {
    json_t *list;
    int64_t now;
};

static void collect_alert(void *ctx, const rp_threat_alert_t *a)
{
    struct alert_list *l = ctx;

    json_array_append_new(l->list, alert_json(a, l->now));
}

/* GET /api/v1/tenants/T/alerts[?limit=N] */
void rp_h_alerts_list(rp_req_t *r)
{
    struct alert_list l = {NULL, (int64_t)time(NULL)};
    int64_t limit = ALERTS_PAGE_DEFAULT;

    if (!query_limit(r, &limit)) {
        rp_reply_error(r, 400, "invalid", "the alerts take ?limit=N (1 to %d)", ALERTS_PAGE_MAX);
        return;
    }
    l.list = json_array();
    if (rp_store_threat_alerts(r->w->store, r->tenant.id, l.now, (int)limit, collect_alert, &l) !=
        RP_OK) {
        json_decref(l.list);
        rp_reply_error(r, 500, "internal", "cannot list the alerts");
        return;
    }
    rp_reply_json(r, 200, json_pack("{s:o}", "alerts", l.list));
}

static json_t *settings_json(const rp_threat_settings_t *s)
{
    return json_pack("{s:i, s:i, s:I, s:i, s:i, s:o}", "factor", s->factor, "baseline_days",
                     s->baseline_days, "window", (json_int_t)s->window, "min_devices",
                     s->min_devices, "floor", s->floor, "updated", rp_iso_time_json(s->updated));
}

/* An integer member in [lo, hi] into *out (absent: unchanged); false when it is out of form. */
static bool int_member(json_t *body, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(body, key);

    if (v == NULL)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return false;
    *out = json_integer_value(v);
    return true;
}

/* GET|PUT /api/v1/tenants/T/threat: the spike rule's settings. */
void rp_h_threat_get(rp_req_t *r)
{
    rp_threat_settings_t s;

    if (rp_store_threat_settings_get(r->w->store, r->tenant.id, &s) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the threat settings");
        return;
    }
    rp_reply_json(r, 200, settings_json(&s));
}

void rp_h_threat_set(rp_req_t *r)
{
    static const char *const keys[] = {"factor", "baseline_days", "window", "min_devices", "floor"};
    json_t *body = rp_req_json(r);
    rp_threat_settings_t s;
    int64_t f, b, win, d, fl;
    size_t known = 0;

    if (body == NULL)
        return;
    if (rp_store_threat_settings_get(r->w->store, r->tenant.id, &s) != RP_OK) {
        json_decref(body);
        rp_reply_error(r, 500, "internal", "cannot read the threat settings");
        return;
    }
    f = s.factor, b = s.baseline_days, win = s.window, d = s.min_devices, fl = s.floor;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        known += json_object_get(body, keys[i]) != NULL;
    if (known != json_object_size(body) || !int_member(body, "factor", 2, 1000, &f) ||
        !int_member(body, "baseline_days", 1, 7, &b) ||
        !int_member(body, "window", 10, 86400, &win) ||
        !int_member(body, "min_devices", 1, 100000, &d) ||
        !int_member(body, "floor", 1, 1000000, &fl)) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid",
                       "the threat settings are {\"factor\": 2-1000, \"baseline_days\": 1-7, "
                       "\"window\": 10-86400 seconds, \"min_devices\": 1-100000, \"floor\": "
                       "1-1000000}, any of them");
        return;
    }
    json_decref(body);
    s.factor = (int)f, s.baseline_days = (int)b, s.window = win, s.min_devices = (int)d;
    s.floor = (int)fl;
    if (rp_store_threat_settings_set(r->w->store, r->tenant.id, &s) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot set the threat settings");
        return;
    }
    rp_log_info("tenant %s: threat settings set by token %s", r->tenant.id, r->tok.id);
    rp_reply_json(r, 200, settings_json(&s));
}

/* Whether url is an http(s) URL with a host, parsed by libcurl (the URL the deliveries use). */
static bool webhook_url_valid(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = u != NULL && strlen(url) <= RP_WEBHOOK_URL_MAX &&
              curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0' &&
              (strcmp(scheme, "https") == 0 || strcmp(scheme, "http") == 0);

    for (const char *p = url; ok && *p != '\0'; p++)
        ok = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f;
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* GET|PUT|DELETE /api/v1/tenants/T/webhook */
void rp_h_webhook_get(rp_req_t *r)
{
    rp_webhook_t hook;
    rp_err_t err = rp_store_webhook_get(r->w->store, r->tenant.id, &hook);

    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 404, "not_found", "the tenant has no webhook");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the webhook");
        return;
    }
    rp_reply_json(
        r, 200,
        json_pack("{s:s, s:o}", "url", hook.url, "updated", rp_iso_time_json(hook.updated)));
}

void rp_h_webhook_set(rp_req_t *r)
{
    json_t *body = rp_req_json(r), *rot;
    const char *url;
    char secret[65] = "";
    rp_webhook_t hook, old;
    bool fresh;
    rp_err_t err;

    if (body == NULL)
        return;
    url = json_string_value(json_object_get(body, "url"));
    rot = json_object_get(body, "rotate_secret");
    if (url == NULL || !webhook_url_valid(url) || (rot != NULL && !json_is_boolean(rot)) ||
        json_object_size(body) != 1 + (rot != NULL)) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid",
                       "the webhook is {\"url\": an http or https URL of at most %d bytes, "
                       "\"rotate_secret\": true|false (optional)}",
                       RP_WEBHOOK_URL_MAX);
        return;
    }
    memset(&hook, 0, sizeof(hook));
    snprintf(hook.url, sizeof(hook.url), "%s", url);
    err = rp_store_webhook_get(r->w->store, r->tenant.id, &old);
    fresh = err == RP_ERR_NOT_FOUND || json_is_true(rot);
    json_decref(body);
    if (err == RP_OK && !fresh)
        memcpy(hook.salt, old.salt, sizeof(hook.salt));
    else if (err == RP_ERR_NOT_FOUND || err == RP_OK)
        err = RAND_bytes(hook.salt, sizeof(hook.salt)) == 1 ? RP_OK : RP_ERR_CRYPTO;
    hook.updated = (int64_t)time(NULL);
    if (err == RP_OK && fresh)
        err = rp_webhook_secret(r->w->srv->master_key, r->tenant.id, hook.salt, secret);
    if (err == RP_OK)
        err = rp_store_webhook_set(r->w->store, r->tenant.id, &hook);
    if (err != RP_OK) {
        rp_wipe(secret, sizeof(secret));
        rp_reply_error(r, 500, "internal", "cannot set the webhook");
        return;
    }
    rp_log_info("tenant %s: webhook set by token %s%s", r->tenant.id, r->tok.id,
                fresh ? ", with a new secret" : "");
    /* The secret is shown this once; the service keeps only the salt it derives it from. */
    rp_reply_json(r, 200,
                  json_pack("{s:s, s:o, s:o}", "url", hook.url, "updated",
                            rp_iso_time_json(hook.updated), "secret",
                            fresh ? json_string(secret) : json_null()));
    rp_wipe(secret, sizeof(secret));
}

void rp_h_webhook_delete(rp_req_t *r)
{
    rp_err_t err = rp_store_webhook_delete(r->w->store, r->tenant.id);

    if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "the tenant has no webhook");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot delete the webhook");
    else
        rp_reply_json(r, 200, json_pack("{s:b}", "deleted", 1));
}

static json_t *qpolicy_json(const rp_quarantine_policy_t *p)
{
    json_t *kinds = json_array();

    for (size_t i = 0; i < p->nkinds; i++)
        json_array_append_new(kinds, json_string(p->kinds[i]));
    return json_pack("{s:b, s:o, s:i, s:I, s:o}", "enabled", p->enabled, "kinds", kinds,
                     "threshold", p->threshold, "window", (json_int_t)p->window, "updated",
                     rp_iso_time_json(p->updated));
}

/* 1 to max of [a-z_]: a kind as devices and the service name them. */
static bool kind_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > RP_DEVICE_EVENT_KIND_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return false;
    return true;
}

/* GET|PUT /api/v1/tenants/T/quarantine/policy */
void rp_h_quarantine_policy_get(rp_req_t *r)
{
    rp_quarantine_policy_t p;

    if (rp_store_quarantine_policy_get(r->w->store, r->tenant.id, &p) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the quarantine policy");
        return;
    }
    rp_reply_json(r, 200, qpolicy_json(&p));
}

void rp_h_quarantine_policy_set(rp_req_t *r)
{
    json_t *body = rp_req_json(r), *en, *kinds, *v;
    rp_quarantine_policy_t p;
    int64_t threshold, window;
    const char *what = NULL;
    size_t known, i;

    if (body == NULL)
        return;
    if (rp_store_quarantine_policy_get(r->w->store, r->tenant.id, &p) != RP_OK) {
        json_decref(body);
        rp_reply_error(r, 500, "internal", "cannot read the quarantine policy");
        return;
    }
    threshold = p.threshold, window = p.window;
    en = json_object_get(body, "enabled");
    kinds = json_object_get(body, "kinds");
    known = (en != NULL) + (kinds != NULL) + (json_object_get(body, "threshold") != NULL) +
            (json_object_get(body, "window") != NULL);
    if (known != json_object_size(body))
        what = "an unknown key";
    else if (en != NULL && !json_is_boolean(en))
        what = "\"enabled\" is not true or false";
    else if (!int_member(body, "threshold", 1, 10000, &threshold))
        what = "\"threshold\" is not 1 to 10000";
    else if (!int_member(body, "window", 1, 30 * 86400, &window))
        what = "\"window\" is not 1 to 2592000 seconds";
    else if (kinds != NULL &&
             (!json_is_array(kinds) || json_array_size(kinds) > RP_THREAT_KINDS_MAX))
        what = "\"kinds\" is not a list of at most 16";
    if (what == NULL && kinds != NULL) {
        p.nkinds = 0;
        json_array_foreach(kinds, i, v)
        {
            const char *k = json_string_value(v);
            bool dup = false;
            for (size_t j = 0; k != NULL && j < p.nkinds; j++)
                dup = dup || strcmp(p.kinds[j], k) == 0;
            if (!kind_valid(k) || dup) {
                what = "a kind is not 1 to 32 of [a-z_], or is listed twice";
                break;
            }
            snprintf(p.kinds[p.nkinds++], sizeof(p.kinds[0]), "%s", k);
        }
    }
    if (en != NULL)
        p.enabled = json_is_true(en);
    json_decref(body);
    if (what == NULL && p.enabled && p.nkinds == 0)
        what = "an enabled policy needs at least one kind";
    if (what != NULL) {
        rp_reply_error(r, 400, "invalid",
                       "%s: the quarantine policy is {\"enabled\": true|false, \"kinds\": "
                       "[KIND...], \"threshold\": N, \"window\": SECONDS}, any of them",
                       what);
        return;
    }
    p.threshold = (int)threshold;
    p.window = window;
    if (rp_store_quarantine_policy_set(r->w->store, r->tenant.id, &p) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot set the quarantine policy");
        return;
    }
    rp_log_info("tenant %s: quarantine policy set by token %s: %s", r->tenant.id, r->tok.id,
                p.enabled ? "on" : "off");
    rp_reply_json(r, 200, qpolicy_json(&p));
}

static void collect_action(void *ctx, const rp_threat_action_t *a)
{
    json_array_append_new(ctx,
                          json_pack("{s:I, s:o, s:s, s:s, s:s, s:s}", "id", (json_int_t)a->id, "at",
                                    rp_iso_time_json(a->at), "device_id", a->device_id, "action",
                                    a->action, "actor", a->actor, "reason", a->reason));
}

/* GET /api/v1/tenants/T/quarantine/actions[?limit=N] */
void rp_h_quarantine_actions(rp_req_t *r)
{
    int64_t limit = ALERTS_PAGE_DEFAULT;
    json_t *list;

    if (!query_limit(r, &limit)) {
        rp_reply_error(r, 400, "invalid", "the actions take ?limit=N (1 to %d)", ALERTS_PAGE_MAX);
        return;
    }
    list = json_array();
    if (rp_store_threat_actions(r->w->store, r->tenant.id, NULL, (int)limit, collect_action,
                                list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list the actions");
        return;
    }
    rp_reply_json(r, 200, json_pack("{s:o}", "actions", list));
}

/* POST /api/v1/tenants/T/devices/D/release [{"reason": TEXT}] */
void rp_h_device_release(rp_req_t *r)
{
    char actor[RP_ID_SIZE + 8];
    const char *reason = "released by an operator";
    json_t *body = NULL, *v;
    size_t len = 0;
    rp_device_t d;
    rp_err_t err;

    if (!rp_tenant_device(r, &d))
        return;
    if (rp_req_body(r, &len) == NULL)
        return; /* answered: too large, or out of memory */
    if (len > 0) {
        body = rp_req_json(r);
        if (body == NULL)
            return;
        v = json_object_get(body, "reason");
        if (json_object_size(body) != (v != NULL) ||
            (v != NULL && (!json_is_string(v) || json_string_length(v) == 0 ||
                           json_string_length(v) > RP_QUARANTINE_REASON_MAX ||
                           strlen(json_string_value(v)) != json_string_length(v)))) {
            json_decref(body);
            rp_reply_error(r, 400, "invalid",
                           "a release takes {\"reason\": 1 to %d bytes} or no body",
                           RP_QUARANTINE_REASON_MAX);
            return;
        }
        if (v != NULL)
            reason = json_string_value(v);
    }
    snprintf(actor, sizeof(actor), "token:%s", r->tok.id);
    err = rp_store_device_release(r->w->store, r->tenant.id, d.id, actor, reason,
                                  (int64_t)time(NULL));
    if (err == RP_ERR_INVALID_ARG)
        rp_reply_error(r, 409, "not_quarantined", "the device is not quarantined");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot release the device");
    else
        rp_reply_json(
            r, 200,
            json_pack("{s:s, s:b, s:s}", "device_id", d.id, "released", 1, "reason", reason));
    if (err == RP_OK)
        rp_log_info("tenant %s: device %s released by token %s", r->tenant.id, d.id, r->tok.id);
    json_decref(body);
}
