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
 * Everything it decides on is in the store (counts, alerts, policies), so replicas agree; so are
 * the webhook's deliveries (the outbox, queued in the transaction that raised them), sent by a
 * thread of their own, off the event loops, with libcurl, retries and backoff, only to addresses
 * outside the service's own network (the one owner of that rule).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "api.h"
#include "context.h"
#include "rampart/bytes.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "rampart/text.h"
#include "req.h"
#include "routes.h"
#include "threat.h"

#define ALERTS_PAGE_DEFAULT 100
#define ALERTS_PAGE_MAX 1000
#define METRICS_OPEN_MAX 1000    /* open alerts listed on /metrics */
#define WEBHOOK_PENDING_MAX 1000 /* deliveries waiting per tenant; beyond, the oldest dropped */
#define WEBHOOK_BACKOFF_MAX_MS (5 * 60 * 1000) /* tries 1 s apart, doubling to 5 min */
#define WEBHOOK_EXPIRE_MS (24 * 3600 * 1000LL) /* given up a day after it was made */
#define WEBHOOK_LEASE_MS 60000 /* a try in flight: another process leaves it alone that long */
#define WEBHOOK_POLL_MS 2000   /* the sender looks at the outbox at least this often */
#define WEBHOOK_TIMEOUT 10     /* seconds for one try, connection included */
#define WEBHOOK_BODY_MAX 16384

/* This process's counts, for /metrics (alerts themselves are in the store). */
static atomic_ullong webhook_delivered, webhook_failed, webhook_dropped, webhook_retries;
static atomic_ullong webhook_refused, quarantines, threat_errors;
static atomic_bool sender_stopping;

static int64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static json_t *alert_json(const rp_threat_alert_t *a, int64_t now);
static rp_err_t outbox_put(rp_store_t *s, const char *tenant_id, json_t *body);
static void sender_wake(void);
static json_t *webhook_alert_body(const rp_threat_alert_t *a);
static json_t *webhook_quarantine_body(rp_store_t *s, const char *tenant_id, const char *device_id,
                                       const char *kind);

/* ---- the rule ---- */

int64_t rp_threat_window_devices(const rp_threat_count_t *c, int64_t *failed)
{
    bool now = c->devices >= c->prev_devices;

    if (failed != NULL)
        *failed = now ? c->failed_devices : c->prev_failed_devices;
    return now ? c->devices : c->prev_devices;
}

bool rp_threat_spike(const rp_threat_settings_t *set, const rp_threat_count_t *c, bool open,
                     double *rate, double *baseline, int64_t *devices)
{
    double w = (double)set->window, left = w - (double)c->elapsed, r, b, slots;
    int64_t d = rp_threat_window_devices(c, NULL);

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
            items[k].device_failed = sig[i].device_failed;
            from[k++] = i;
        }
        if (bucket == NULL || bucket[0] == '\0')
            continue;
        len = snprintf(items[k].subject, sizeof(items[k].subject), "bucket:%s", bucket);
        if (len > 0 && (size_t)len < sizeof(items[k].subject)) {
            items[k].device_id = sig[i].device_id;
            items[k].device_failed = sig[i].device_failed;
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
        (void)rp_threat_window_devices(&items[a], &al.failed_devices);
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
    /* The webhook's deliveries in the same transaction: committed with what they tell (a
     * restart after the commit still delivers them), undone with it (never an alert or a
     * quarantine the store does not hold). */
    for (size_t a = 0; err == RP_OK && a < nopened; a++)
        err = outbox_put(s, tenant_id, webhook_alert_body(&opened_alerts[a]));
    for (size_t q = 0; err == RP_OK && q < nquarantined; q++)
        err = outbox_put(s, tenant_id,
                         webhook_quarantine_body(s, tenant_id, sig[quarantined_at[q]].device_id,
                                                 quarantined_kind[q]));
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
    /* Committed: the webhook's deliveries, queued in the same transaction, are in the outbox. */
    if (news->nalerts + news->nquarantined > 0)
        sender_wake();
    for (size_t a = 0; a < news->nalerts; a++) {
        const rp_threat_alert_t *al = &news->alerts[a];
        rp_log_warn("tenant %s: alert %lld: %s spikes: %lld in the last window from %lld "
                    "device(s) (%lld of them failed), baseline %.2f",
                    al->tenant_id, (long long)al->id, al->subject, (long long)al->count,
                    (long long)al->devices, (long long)al->failed_devices, al->baseline);
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

/* ---- the webhook's target: where a delivery may connect (no SSRF) ---- */

/* An IPv4 address (host order) a webhook may reach: a public one. */
static bool v4_allowed(uint32_t a)
{
    static const struct {
        uint32_t net, mask;
    } refused[] = {
        {0x00000000, 0xff000000}, /* 0.0.0.0/8: "this network", unspecified */
        {0x0a000000, 0xff000000}, /* 10/8 private */
        {0x64400000, 0xffc00000}, /* 100.64/10 carrier-grade NAT */
        {0x7f000000, 0xff000000}, /* 127/8 loopback */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16 link-local, the cloud metadata address */
        {0xac100000, 0xfff00000}, /* 172.16/12 private */
        {0xc0000000, 0xffffff00}, /* 192.0.0/24 IETF protocol assignments */
        {0xc0a80000, 0xffff0000}, /* 192.168/16 private */
        {0xc6120000, 0xfffe0000}, /* 198.18/15 benchmarking */
        {0xe0000000, 0xf0000000}, /* 224/4 multicast */
        {0xf0000000, 0xf0000000}, /* 240/4 reserved, and the broadcast address */
    };

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if ((a & refused[i].mask) == refused[i].net)
            return false;
    return true;
}

bool rp_webhook_addr_allowed(const struct sockaddr *sa)
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET)
        return v4_allowed(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6) {
        const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
        static const uint8_t zero[12] = {0};
        uint32_t v4 = (uint32_t)rp_be_get(b + 12, 4);
        /* An IPv4 address inside IPv6 (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, which
         * includes :: and ::1, NAT64 64:ff9b::a.b.c.d, 6to4 2002:AABB:CCDD::) is judged as
         * IPv4: ::ffff:127.0.0.1 is loopback. */
        if (memcmp(b, mapped, 12) == 0 || memcmp(b, zero, 12) == 0 || memcmp(b, nat64, 12) == 0)
            return v4_allowed(v4);
        if (b[0] == 0x20 && b[1] == 0x02)
            return v4_allowed((uint32_t)rp_be_get(b + 2, 4));
        if ((b[0] & 0xfe) == 0xfc) /* fc00::/7 unique local (private) */
            return false;
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 link-local */
            return false;
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) /* fec0::/10 site-local (deprecated) */
            return false;
        if (b[0] == 0xff) /* multicast */
            return false;
        return true;
    }
    return false;
}

rp_err_t rp_webhook_target(const char *url, bool allow_private, char *resolve, size_t cap,
                           char *why, size_t why_cap)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *scheme = NULL, name[256], addr[INET6_ADDRSTRLEN];
    struct addrinfo hints, *res = NULL;
    rp_err_t err = RP_ERR_INVALID_ARG;
    size_t hl;
    int rc, n;

    resolve[0] = '\0';
    snprintf(why, why_cap, "the webhook's URL has no host");
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || (hl = strlen(host)) == 0 ||
        hl >= sizeof(name))
        goto out;
    /* An IPv6 literal comes bracketed; the resolver takes it bare. */
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
        snprintf(name, sizeof(name), "%.*s", (int)(hl - 2), host + 1);
    else
        snprintf(name, sizeof(name), "%s", host);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(name, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(why, why_cap, "the webhook's host %s does not resolve (%s)", name,
                 rc != 0 ? gai_strerror(rc) : "no address");
        err = RP_ERR_NOT_FOUND;
        goto out;
    }
    /* Every address the name has must be allowed (a name that also resolves to an inside address
     * is refused, not filtered), and the delivery connects to the first: resolved once, here. */
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        const void *a = ai->ai_family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                            : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            inet_ntop(ai->ai_family, a, addr, sizeof(addr)) == NULL) {
            snprintf(why, why_cap, "the webhook's host %s resolves to an unknown address", name);
            err = RP_ERR_DENIED;
            goto out;
        }
        if (!allow_private && !rp_webhook_addr_allowed(ai->ai_addr)) {
            snprintf(why, why_cap,
                     "the webhook's host %s is %s, a loopback, link-local, private or unspecified "
                     "address: refused (rampart-server --webhook-allow-private allows it, for "
                     "tests and labs only)",
                     name, addr);
            err = RP_ERR_DENIED;
            goto out;
        }
    }
    /* Plain http carries the tenant's threat data in clear, and its signed bodies can be replayed
     * by anyone on the path: https only, but for the same tests and labs (found by review). */
    if (strcmp(scheme, "https") != 0 && !allow_private) {
        snprintf(why, why_cap,
                 "the webhook's URL is plain %s: refused, use https (rampart-server "
                 "--webhook-allow-private allows http, for tests and labs only)",
                 scheme);
        err = RP_ERR_DENIED;
        goto out;
    }
    {
        const void *a = res->ai_family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                            : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
        inet_ntop(res->ai_family, a, addr, sizeof(addr));
        /* libcurl's "HOST:PORT:ADDRESS", the URL's host as written, an IPv6 address bracketed */
        n = snprintf(resolve, cap, res->ai_family == AF_INET6 ? "%s:%s:[%s]" : "%s:%s:%s", name,
                     port, addr);
    }
    if (n <= 0 || (size_t)n >= cap) {
        resolve[0] = '\0';
        snprintf(why, why_cap, "the webhook's host is too long");
        goto out;
    }
    why[0] = '\0';
    err = RP_OK;
out:
    if (res != NULL)
        freeaddrinfo(res);
    curl_free(host);
    curl_free(port);
    curl_free(scheme);
    curl_url_cleanup(u);
    return err;
}

/* ---- the webhook's outbox and its sender ---- */

/* A delivery's body in the outbox, in the transaction that raised what it tells: the outbox is
 * committed or undone with it. A tenant without a webhook gets nothing queued. */
static rp_err_t outbox_put(rp_store_t *s, const char *tenant_id, json_t *body)
{
    uint8_t raw[16];
    char id[33], *text;
    bool queued = false;
    int dropped = 0;
    rp_err_t err;

    if (body == NULL)
        return RP_ERR_NO_MEMORY;
    text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(body);
    if (text == NULL)
        return RP_ERR_NO_MEMORY;
    if (strlen(text) > WEBHOOK_BODY_MAX) {
        free(text);
        rp_log_error("tenant %s: a webhook body over %d bytes, not queued", tenant_id,
                     WEBHOOK_BODY_MAX);
        return RP_OK; /* never: alerts and quarantines are bounded far below */
    }
    /* The delivery's ID, sent with every try (X-Rampart-Delivery): the receiver's to
     * de-duplicate by. Random, so that replicas and restarts never reuse one. */
    err = RAND_bytes(raw, sizeof(raw)) == 1 ? rp_hex_encode(raw, sizeof(raw), id, sizeof(id))
                                            : RP_ERR_CRYPTO;
    if (err == RP_OK)
        err = rp_store_webhook_outbox_put(s, tenant_id, id, text, now_ms(), WEBHOOK_PENDING_MAX,
                                          &queued, &dropped);
    free(text);
    if (err == RP_OK && dropped > 0) {
        atomic_fetch_add(&webhook_dropped, (unsigned long long)dropped);
        rp_log_warn("tenant %s: %d webhook delivery(ies) dropped: %d were waiting", tenant_id,
                    dropped, WEBHOOK_PENDING_MAX);
    }
    return err;
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool running, stopping, woken;
    pthread_t thread;
    rp_server_t *srv;
    rp_store_t *store;
} sender = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false, 0, NULL, NULL};

/* Something was queued: the sender looks now rather than at its next poll. */
static void sender_wake(void)
{
    pthread_mutex_lock(&sender.lock);
    sender.woken = true;
    pthread_cond_signal(&sender.cond);
    pthread_mutex_unlock(&sender.lock);
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* A try gives up at once when the service stops. */
static int abort_on_stop(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)ctx, (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&sender_stopping) ? 1 : 0;
}

/* The connection goes only where the target resolved to: curl is handed that address
 * (CURLOPT_RESOLVE); this checks, as the socket is made, that it is an allowed one. */
static curl_socket_t open_checked(void *ctx, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    if (!*(const bool *)ctx && !rp_webhook_addr_allowed(&a->addr)) {
        rp_log_warn("webhook: a connection to a refused address stopped");
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

/* One try of d to url: true when the receiver answered 2xx. *refused: the URL's host is not one
 * a webhook may reach. */
static bool post_once(const rp_webhook_delivery_t *d, const char *url, const char *signature,
                      bool *refused)
{
    bool allow_private = sender.srv->webhook_allow_private;
    CURL *c = NULL;
    struct curl_slist *h = NULL, *pin = NULL;
    char sig[96], did[64], resolve[512], why[256];
    long status = 0;
    CURLcode rc = CURLE_FAILED_INIT;

    *refused = false;
    /* Resolved once, checked, and connected to that address: a name that resolves elsewhere at
     * connection time (DNS rebinding) changes nothing. */
    if (rp_webhook_target(url, allow_private, resolve, sizeof(resolve), why, sizeof(why)) !=
        RP_OK) {
        *refused = true;
        rp_log_warn("tenant %s: webhook delivery %s not tried: %s", d->tenant_id, d->id, why);
        return false;
    }
    snprintf(sig, sizeof(sig), "X-Rampart-Signature: %s", signature);
    snprintf(did, sizeof(did), "X-Rampart-Delivery: %s", d->id);
    c = curl_easy_init();
    if ((h = curl_slist_append(NULL, "Content-Type: application/json")) != NULL) {
        struct curl_slist *h2 = curl_slist_append(h, sig);
        h = h2 != NULL ? curl_slist_append(h2, did) : NULL;
        if (h == NULL)
            curl_slist_free_all(h2);
    }
    pin = curl_slist_append(NULL, resolve);
    if (c != NULL && h != NULL && pin != NULL) {
        curl_easy_setopt(c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* the configured URL, nowhere else */
        curl_easy_setopt(c, CURLOPT_PROXY, "");          /* nor through a proxy from the env */
        curl_easy_setopt(c, CURLOPT_RESOLVE, pin);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_checked);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &allow_private);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)WEBHOOK_TIMEOUT);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "rampart-server webhook");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(d->body));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        rc = curl_easy_perform(c);
        if (rc == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(h);
    curl_slist_free_all(pin);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || status < 200 || status > 299)
        rp_log_info("tenant %s: webhook delivery %s try %d failed: %s", d->tenant_id, d->id,
                    d->attempts + 1,
                    rc != CURLE_OK ? curl_easy_strerror(rc) : "an answer other than 2xx");
    return rc == CURLE_OK && status >= 200 && status <= 299;
}

/* The wait before try attempts+1: 1 s doubling to WEBHOOK_BACKOFF_MAX_MS, each 50-100%. */
static int64_t backoff_ms(int attempts)
{
    uint32_t r = 0;
    int64_t ms = attempts >= 20 ? WEBHOOK_BACKOFF_MAX_MS : 1000LL << (attempts - 1);

    if (ms > WEBHOOK_BACKOFF_MAX_MS)
        ms = WEBHOOK_BACKOFF_MAX_MS;
    (void)RAND_bytes((unsigned char *)&r, sizeof(r));
    return ms / 2 + (int64_t)(r % (uint32_t)(ms / 2 + 1));
}

/* Wait up to ms, or until woken or stopping. */
static void sender_wait(int64_t ms)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&sender.lock);
    while (!sender.woken && !sender.stopping &&
           pthread_cond_timedwait(&sender.cond, &sender.lock, &t) == 0)
        ;
    sender.woken = false;
    pthread_mutex_unlock(&sender.lock);
}

/* One delivery due now: sign it with the tenant's secret as it is now, try it, and remove it
 * (2xx, the webhook gone, too old) or put it back for later. */
static void deliver(rp_webhook_delivery_t *d, int64_t now)
{
    rp_store_t *s = sender.store;
    rp_webhook_t hook;
    char secret[65] = "", signature[72] = "";
    bool taken = false, refused = false, ok;
    rp_err_t err;

    if (now - d->created > WEBHOOK_EXPIRE_MS) {
        atomic_fetch_add(&webhook_failed, 1);
        rp_log_warn("tenant %s: webhook delivery %s given up after %d tries over a day",
                    d->tenant_id, d->id, d->attempts);
        if (rp_store_webhook_outbox_remove(s, d->n) != RP_OK)
            rp_log_error("webhook: cannot remove delivery %s", d->id);
        return;
    }
    /* Ours for a while: another process of the same store leaves it alone meanwhile. */
    if (rp_store_webhook_outbox_take(s, d->n, d->next_at, now + WEBHOOK_LEASE_MS, &taken) !=
            RP_OK ||
        !taken)
        return;
    err = rp_store_webhook_get(s, d->tenant_id, &hook);
    if (err == RP_ERR_NOT_FOUND) {
        atomic_fetch_add(&webhook_dropped, 1);
        rp_log_info("tenant %s: webhook delivery %s dropped: the webhook was deleted", d->tenant_id,
                    d->id);
        if (rp_store_webhook_outbox_remove(s, d->n) != RP_OK)
            rp_log_error("webhook: cannot remove delivery %s", d->id);
        return;
    }
    if (err == RP_OK)
        err = rp_webhook_secret(sender.srv->master_key, d->tenant_id, hook.salt, secret);
    if (err == RP_OK)
        err = rp_webhook_sign(secret, d->body, strlen(d->body), signature);
    rp_wipe(secret, sizeof(secret));
    ok = err == RP_OK && post_once(d, hook.url, signature, &refused);
    rp_wipe(&hook, sizeof(hook));
    if (ok) {
        atomic_fetch_add(&webhook_delivered, 1);
        if (rp_store_webhook_outbox_remove(s, d->n) != RP_OK)
            rp_log_error("webhook: cannot remove delivered %s (it may be sent again)", d->id);
        return;
    }
    if (refused)
        atomic_fetch_add(&webhook_refused, 1);
    else
        atomic_fetch_add(&webhook_retries, 1);
    if (rp_store_webhook_outbox_retry(s, d->n, d->attempts + 1,
                                      now_ms() + backoff_ms(d->attempts + 1)) != RP_OK)
        rp_log_error("webhook: cannot reschedule delivery %s", d->id);
}

static void *sender_main(void *arg)
{
    (void)arg;
    /* A process starting tries every waiting delivery at once (the restart may be the fix),
     * then backs off again. */
    if (rp_store_webhook_outbox_due(sender.store, now_ms()) != RP_OK)
        rp_log_error("webhook: cannot read the outbox");
    while (!atomic_load(&sender_stopping)) {
        rp_webhook_delivery_t d;
        int64_t now = now_ms();
        rp_err_t err = rp_store_webhook_outbox_next(sender.store, &d);

        if (err == RP_ERR_NOT_FOUND) {
            sender_wait(WEBHOOK_POLL_MS);
            continue;
        }
        if (err != RP_OK) {
            rp_log_error("webhook: cannot read the outbox: %s", rp_strerror(err));
            sender_wait(WEBHOOK_POLL_MS);
            continue;
        }
        if (d.next_at > now) {
            free(d.body);
            /* Other processes of the store may queue sooner ones: look again at least every
             * WEBHOOK_POLL_MS. */
            sender_wait(d.next_at - now < WEBHOOK_POLL_MS ? d.next_at - now : WEBHOOK_POLL_MS);
            continue;
        }
        deliver(&d, now);
        free(d.body);
    }
    return NULL;
}

rp_err_t rp_webhook_sender_start(rp_server_t *srv)
{
    pthread_condattr_t ca;
    rp_err_t err;

    /* Waits are on the monotonic clock: a clock step must not stall or rush retries (the
     * outbox's own times are the wall clock's, kept across restarts). */
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&sender.cond, &ca) != 0)
        return RP_ERR_IO;
    pthread_condattr_destroy(&ca);
    err = rp_server_store_open(srv, &sender.store);
    if (err != RP_OK)
        return err;
    sender.srv = srv;
    if (pthread_create(&sender.thread, NULL, sender_main, NULL) != 0) {
        rp_store_close(sender.store);
        sender.store = NULL;
        return RP_ERR_IO;
    }
    sender.running = true;
    return RP_OK;
}

void rp_webhook_sender_stop(void)
{
    if (!sender.running)
        return;
    atomic_store(&sender_stopping, true);
    pthread_mutex_lock(&sender.lock);
    sender.stopping = true;
    pthread_cond_signal(&sender.cond);
    pthread_mutex_unlock(&sender.lock);
    pthread_join(sender.thread, NULL);
    rp_store_close(sender.store);
    sender.store = NULL;
    sender.running = false;
}

/* ---- what operators see of an alert ---- */

static json_t *alert_json(const rp_threat_alert_t *a, int64_t now)
{
    const char *type, *name;
    bool open = a->closed_at == 0 && a->expires_at > now;
    int64_t closed = a->closed_at != 0 ? a->closed_at : (open ? 0 : a->expires_at);

    rp_threat_subject_split(a->subject, &type, &name);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:I, s:I, s:f, s:I, s:s}", "id",
                     (json_int_t)a->id, "subject", a->subject, "type", type, type, name, "state",
                     open ? "open" : "closed", "opened_at", rp_iso_time_json(a->opened_at),
                     "last_at", rp_iso_time_json(a->last_at), "closed_at", rp_iso_time_json(closed),
                     "count", (json_int_t)a->count, "devices", (json_int_t)a->devices,
                     "failed_devices", (json_int_t)a->failed_devices, "baseline", a->baseline,
                     "signals", (json_int_t)a->signals, "reason", a->reason);
}

/* ---- rp_threat_observe: the callers' entry ---- */

/* What the webhook is told: its bodies (their fields are in docs/failure-reporting.md). */
static json_t *webhook_alert_body(const rp_threat_alert_t *a)
{
    return json_pack("{s:s, s:s, s:o, s:o}", "type", "alert", "tenant", a->tenant_id, "alert",
                     alert_json(a, a->last_at), "sent_at", rp_iso_time_json((int64_t)time(NULL)));
}

static json_t *webhook_quarantine_body(rp_store_t *s, const char *tenant_id, const char *device_id,
                                       const char *kind)
{
    int64_t since = 0;
    char reason[RP_QUARANTINE_REASON_MAX + 1] = "";

    if (rp_store_device_quarantine(s, device_id, &since, reason) != RP_OK)
        reason[0] = '\0';
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:s}, s:o}", "type", "quarantine", "tenant",
                     tenant_id, "quarantine", "device_id", device_id, "kind", kind, "since",
                     rp_iso_time_json(since), "reason", reason, "sent_at",
                     rp_iso_time_json((int64_t)time(NULL)));
}

void rp_threat_tell(rp_worker_t *w, rp_threat_news_t *news)
{
    (void)w; /* the webhook's deliveries wait in the outbox, committed with news */
    rp_threat_news_tell(news, NULL);
}

void rp_threat_observe(rp_worker_t *w, const rp_threat_signal_t *sig, size_t n)
{
    if (n == 0)
        return;
    /* The webhook's deliveries are queued in rp_threat_process's own transaction: no hook. */
    if (rp_threat_process(w->store, sig, n, (int64_t)time(NULL), NULL) != RP_OK) {
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

/* An open alert's series, its name and labels (tenant, kind or bucket, alert), left open: the
 * caller adds its own labels, the closing brace and the value. */
static void alert_series(struct evbuffer *buf, const char *metric, const rp_threat_alert_t *a)
{
    const char *type, *name;

    rp_threat_subject_split(a->subject, &type, &name);
    evbuffer_add_printf(buf, "%s{tenant=\"", metric);
    label(buf, a->tenant_id);
    evbuffer_add_printf(buf, "\",%s=\"", type);
    label(buf, name);
    evbuffer_add_printf(buf, "\",alert=\"%lld\"", (long long)a->id);
}

/* Each open alert's two gauges, each family's series together: rampart_threat_alert_open into
 * open, rampart_threat_alert_devices (its devices split by whether they sent while their last
 * attestation had failed: review r10 L4's split, on /metrics) into devices. */
struct metric_alerts {
    struct evbuffer *open, *devices;
};

static void metric_open(void *ctx, const rp_threat_alert_t *a)
{
    struct metric_alerts *m = ctx;

    alert_series(m->open, "rampart_threat_alert_open", a);
    evbuffer_add_printf(m->open, "} %lld\n", (long long)a->count);
    if (m->devices == NULL)
        return;
    alert_series(m->devices, "rampart_threat_alert_devices", a);
    evbuffer_add_printf(m->devices, ",failed=\"false\"} %lld\n",
                        (long long)(a->devices - a->failed_devices));
    alert_series(m->devices, "rampart_threat_alert_devices", a);
    evbuffer_add_printf(m->devices, ",failed=\"true\"} %lld\n", (long long)a->failed_devices);
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
    struct metric_alerts m = {buf, evbuffer_new()};

    evbuffer_add_printf(buf, "# HELP rampart_threat_alert_open Alerts open now (a spike that "
                             "lasts), by tenant and event kind or crash bucket: the value is the "
                             "signals in the last window.\n"
                             "# TYPE rampart_threat_alert_open gauge\n");
    if (rp_store_threat_alerts(w->store, NULL, (int64_t)time(NULL), METRICS_OPEN_MAX, metric_open,
                               &m) != RP_OK ||
        m.devices == NULL)
        atomic_fetch_add(&threat_errors, 1);
    evbuffer_add_printf(buf, "# HELP rampart_threat_alert_devices The devices of each open alert's "
                             "last window, by whether they sent while their last attestation had "
                             "failed.\n"
                             "# TYPE rampart_threat_alert_devices gauge\n");
    if (m.devices != NULL) {
        evbuffer_add_buffer(buf, m.devices);
        evbuffer_free(m.devices);
    }
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
        "rampart_threat_webhook_deliveries_total{result=\"refused\"} %llu\n"
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
        (unsigned long long)atomic_load(&webhook_refused),
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

/* The body of a PUT of the spike rule, applied to the stored one (rp_store_settings_edit):
 * RP_ERR_INVALID_ARG when it is out of form. */
static rp_err_t threat_edit(void *ctx, rp_settings_t *v)
{
    static const char *const keys[] = {"factor", "baseline_days", "window", "min_devices", "floor"};
    json_t *body = ctx;
    rp_threat_settings_t *s = &v->threat;
    int64_t f = s->factor, b = s->baseline_days, win = s->window, d = s->min_devices, fl = s->floor;
    size_t known = 0;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        known += json_object_get(body, keys[i]) != NULL;
    if (known != json_object_size(body) || !int_member(body, "factor", 2, 1000, &f) ||
        !int_member(body, "baseline_days", 1, 7, &b) ||
        !int_member(body, "window", 10, 86400, &win) ||
        !int_member(body, "min_devices", 1, 100000, &d) ||
        !int_member(body, "floor", 1, 1000000, &fl))
        return RP_ERR_INVALID_ARG;
    s->factor = (int)f, s->baseline_days = (int)b, s->window = win, s->min_devices = (int)d;
    s->floor = (int)fl;
    return RP_OK;
}

void rp_h_threat_set(rp_req_t *r)
{
    json_t *body = rp_req_json(r);
    rp_settings_t v;
    rp_err_t err;

    if (body == NULL)
        return;
    err = rp_store_settings_edit(r->w->store, r->tenant.id, RP_SETTINGS_THREAT, threat_edit, body,
                                 &v);
    json_decref(body);
    if (err == RP_ERR_INVALID_ARG) {
        rp_reply_error(r, 400, "invalid",
                       "the threat settings are {\"factor\": 2-1000, \"baseline_days\": 1-7, "
                       "\"window\": 10-86400 seconds, \"min_devices\": 1-100000, \"floor\": "
                       "1-1000000}, any of them");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot set the threat settings");
        return;
    }
    rp_log_info("tenant %s: threat settings set by token %s", r->tenant.id, r->tok.id);
    rp_reply_json(r, 200, settings_json(&v.threat));
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
/* The deliveries GET .../webhook shows, oldest first. */
#define WEBHOOK_SHOWN 20

static void collect_delivery(void *ctx, const rp_webhook_delivery_t *d)
{
    json_array_append_new(ctx,
                          json_pack("{s:s, s:i, s:o, s:o}", "id", d->id, "attempts", d->attempts,
                                    "created", rp_iso_time_json(d->created / 1000), "next_try",
                                    rp_iso_time_json(d->next_at / 1000)));
}

/*
 * The webhook's URL as a token below admin sees it: its scheme, host and port, the rest (a user and
 * password, a path or query carrying a token: the receiver's credentials) replaced by "/...". A
 * reader may see where alerts go, not post forged ones there (found by review). False: out of
 * memory, or a URL libcurl no longer reads (then nothing of it is shown).
 */
static bool webhook_url_redacted(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK;
    int n = 0;

    if (ok && curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
        port = NULL; /* (none written: the scheme's) */
    if (ok)
        n = snprintf(out, cap, "%s://%s%s%s/...", scheme, host, port != NULL ? ":" : "",
                     port != NULL ? port : "");
    ok = ok && n > 0 && (size_t)n < cap;
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

void rp_h_webhook_get(rp_req_t *r)
{
    json_t *deliveries;
    int64_t pending, dropped;
    rp_webhook_t hook;
    char shown[sizeof(hook.url)];
    rp_err_t err = rp_store_webhook_get(r->w->store, r->tenant.id, &hook);

    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 404, "not_found", "the tenant has no webhook");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the webhook");
        return;
    }
    deliveries = json_array();
    if (rp_store_webhook_outbox_list(r->w->store, r->tenant.id, WEBHOOK_SHOWN, collect_delivery,
                                     deliveries, &pending, &dropped) != RP_OK) {
        json_decref(deliveries);
        rp_reply_error(r, 500, "internal", "cannot read the webhook's outbox");
        return;
    }
    if (r->tok.role >= RP_ROLE_ADMIN)
        snprintf(shown, sizeof(shown), "%s", hook.url);
    else if (!webhook_url_redacted(hook.url, shown, sizeof(shown)))
        snprintf(shown, sizeof(shown), "...");
    rp_reply_json(r, 200,
                  json_pack("{s:s, s:o, s:I, s:I, s:o}", "url", shown, "updated",
                            rp_iso_time_json(hook.updated), "pending", (json_int_t)pending,
                            "dropped", (json_int_t)dropped, "deliveries", deliveries));
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
    {
        /* Where it leads, checked now (and again at each delivery): never the service's own
         * network unless the operator said so. */
        char resolve[512], why[256];
        err = rp_webhook_target(url, r->w->srv->webhook_allow_private, resolve, sizeof(resolve),
                                why, sizeof(why));
        if (err != RP_OK) {
            json_decref(body);
            rp_reply_error(r, 400, "invalid", "%s", why);
            return;
        }
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

/* The body of a PUT of the quarantine policy, applied to the stored one (rp_store_settings_edit):
 * what is wrong with it, if anything, into *what (RP_ERR_INVALID_ARG). */
struct qpolicy_edit {
    json_t *body;
    const char *what;
};

static rp_err_t qpolicy_edit(void *ctx, rp_settings_t *v)
{
    struct qpolicy_edit *e = ctx;
    json_t *body = e->body, *en = json_object_get(body, "enabled"),
           *kinds = json_object_get(body, "kinds"), *k;
    rp_quarantine_policy_t *p = &v->quarantine;
    int64_t threshold = p->threshold, window = p->window;
    size_t known, i;

    known = (en != NULL) + (kinds != NULL) + (json_object_get(body, "threshold") != NULL) +
            (json_object_get(body, "window") != NULL);
    if (known != json_object_size(body))
        e->what = "an unknown key";
    else if (en != NULL && !json_is_boolean(en))
        e->what = "\"enabled\" is not true or false";
    else if (!int_member(body, "threshold", 1, 10000, &threshold))
        e->what = "\"threshold\" is not 1 to 10000";
    else if (!int_member(body, "window", 1, 30 * 86400, &window))
        e->what = "\"window\" is not 1 to 2592000 seconds";
    else if (kinds != NULL &&
             (!json_is_array(kinds) || json_array_size(kinds) > RP_THREAT_KINDS_MAX))
        e->what = "\"kinds\" is not a list of at most 16";
    if (e->what == NULL && kinds != NULL) {
        p->nkinds = 0;
        json_array_foreach(kinds, i, k)
        {
            const char *name = json_string_value(k);
            bool dup = false;
            for (size_t j = 0; name != NULL && j < p->nkinds; j++)
                dup = dup || strcmp(p->kinds[j], name) == 0;
            if (!kind_valid(name) || dup) {
                e->what = "a kind is not 1 to 32 of [a-z_], or is listed twice";
                break;
            }
            snprintf(p->kinds[p->nkinds++], sizeof(p->kinds[0]), "%s", name);
        }
    }
    if (en != NULL)
        p->enabled = json_is_true(en);
    if (e->what == NULL && p->enabled && p->nkinds == 0)
        e->what = "an enabled policy needs at least one kind";
    if (e->what != NULL)
        return RP_ERR_INVALID_ARG;
    p->threshold = (int)threshold;
    p->window = window;
    return RP_OK;
}

void rp_h_quarantine_policy_set(rp_req_t *r)
{
    struct qpolicy_edit e = {.body = rp_req_json(r)};
    rp_settings_t v;
    rp_err_t err;

    if (e.body == NULL)
        return;
    err = rp_store_settings_edit(r->w->store, r->tenant.id, RP_SETTINGS_QUARANTINE, qpolicy_edit,
                                 &e, &v);
    json_decref(e.body);
    if (err == RP_ERR_INVALID_ARG && e.what != NULL) {
        rp_reply_error(r, 400, "invalid",
                       "%s: the quarantine policy is {\"enabled\": true|false, \"kinds\": "
                       "[KIND...], \"threshold\": N, \"window\": SECONDS}, any of them",
                       e.what);
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot set the quarantine policy");
        return;
    }
    rp_log_info("tenant %s: quarantine policy set by token %s: %s", r->tenant.id, r->tok.id,
                v.quarantine.enabled ? "on" : "off");
    rp_reply_json(r, 200, qpolicy_json(&v.quarantine));
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
                           strlen(json_string_value(v)) != json_string_length(v) ||
                           /* rampart/text.h: the one rule reasons follow (a device's too) */
                           !rp_text_no_controls(json_string_value(v))))) {
            json_decref(body);
            rp_reply_error(r, 400, "invalid",
                           "a release takes {\"reason\": 1 to %d bytes, no control character} "
                           "or no body",
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
