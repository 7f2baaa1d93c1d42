/*
 * bench/reports: failure-report ingestion (docs/failure-reporting.md) from a fleet of simulated
 * devices against a real rampart-server (SQLite, one worker per core) over loopback, and the same
 * storage's raw insert rate measured in the same run as the reference.
 *
 * Each device is real to the service: its own P-256 key, claimed by the tenant, attested once
 * through POST /api/v1/attest (evidence signed with its key) for its 24-hour certificate. It then
 * keeps one mutual-TLS connection (its certificate, keep-alive) and POSTs batches of 64 reports to
 * /api/v1/device/reports: about half crashes (frames of a few dozen buckets: component, signal and
 * the top three frames drawn from a fixed set; deeper frames, addresses, uptimes and stderr vary),
 * the rest the contract's other kinds (attestation failures, refused images and metadata, sandbox
 * denials, exits, OOM kills...). Every batch is decoded, bounded and bucketed on a worker, stored
 * by the recorder in one transaction with the batches that arrived with it (group commit) and
 * counted by threat detection in the same transaction, as in production.
 *
 * The service limits each device to 30 batches at once, then one a second (reports.c). The
 * devices keep to it: each holds the same token bucket and waits for a token rather than be
 * answered 429 (any 429 is still counted and retried after its Retry-After). The figure is the
 * service's, not the limit's, when devices x (30 + seconds) batches exceed what the service
 * takes in the run (the defaults do by far: the limit is never what stops it; "waited for the
 * limit" says when it was).
 *
 * The reference: the same reports' rows (decoded beforehand, so no decoding, no bucketing, no
 * HTTP) put by rp_store_reports_put in batches of 64, one device after the other, into a store
 * opened by rp_store_open (the service's own settings: WAL, synchronous=FULL, one transaction per
 * batch). Writes to the store take turns anyway (one writer), so one thread is its rate.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sim.h"
#include "rampart/base64.h"
#include "rampart/evidence.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/http_client.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "reports.h"
#include "store.h"

#define BATCH 64
#define BUCKETS 40
#define LIMIT_BURST 29.0 /* the service's 30, less one for the two clocks' difference */
#define LIMIT_RATE 1.0

static const char *const components[] = {"sensor", "gateway", "ui", "updater", "logger"};
static const char *const modules[] = {"app", "libc.so.6", "libcrypto.so.3", "libjansson.so.4"};
static const struct {
    int signal;
    const char *name;
} signals[] = {
    {11, "SIGSEGV"},
    {6,  "SIGABRT"},
    {7,  "SIGBUS" },
    {8,  "SIGFPE" },
};
/* The other kinds, each with a code and a reason as the agent states them. */
static const struct {
    const char *kind, *code, *reason;
} events[] = {
    {"attestation_failed", "measurements_inconsistent", "the service refused the evidence"     },
    {"image_refused",      "bad_signature",             "the image's signature does not verify"},
    {"metadata_refused",   "expired",                   "the targets metadata has expired"     },
    {"sandbox_denial",     "",                          "the compartment denied a syscall"     },
    {"exit",               "",                          "exited with code 1"                   },
    {"oom",                "",                          "killed at its memory limit"           },
    {"health",             "",                          "its health check failed"              },
    {"restart_loop",       "",                          "restarted 5 times in 60 s"            },
    {"clock_jump",         "forward",                   "the wall clock moved 3600 s forward"  },
    {"rot_error",          "evidence",                  "the root of trust made no evidence"   },
};

/* A bucket: what the service's bucket ID is made of. */
static struct {
    const char *component;
    int sig;
    char build_id[3][41];
    const char *module[3];
    unsigned offset[3];
} buckets[BUCKETS];

struct loop;

struct device {
    EVP_PKEY *key;
    X509 *cert, *ca;
    char id[65];
    char *key_b64;
    int64_t seq; /* the next report's number */
    uint32_t rng;
    double tokens, at; /* the service's limit, as the device keeps to it */
    struct loop *loop;
    struct evhttp_connection *conn;
    struct event *next;
    char *body; /* the batch in flight (sent again after a 429) */
    size_t body_len;
    bool busy, nodelay, dead;
    /* The reference's rows: this device's template batch, decoded beforehand. */
    rp_report_put_t *puts;
};

struct loop {
    struct event_base *base;
    struct event *tick;
    pthread_t thread;
    size_t first, n; /* its devices */
};

static struct device *devices;
static size_t ndevices = 200, nloops = 1;
static double seconds = 5;
static int port;
static SSL_CTX *client_ctx;
static _Atomic size_t nbatches, nreports, nrefused, nlimited, nfailed, nwaits;
static _Atomic bool stop, one_each; /* one_each: a single batch per device, then wait */
static char url[256], ca_file[4200];

static void die(const char *what)
{
    fprintf(stderr, "reports bench: %s\n", what);
    exit(1);
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void buckets_init(void)
{
    uint32_t s = 0x9e3779b9;

    for (size_t b = 0; b < BUCKETS; b++) {
        buckets[b].component = components[b % 5];
        buckets[b].sig = (int)(rnd(&s) % 4);
        for (int f = 0; f < 3; f++) {
            buckets[b].module[f] = f == 0 && b % 3 == 0 ? modules[1 + rnd(&s) % 3] : modules[0];
            for (int i = 0; i < 40; i++)
                buckets[b].build_id[f][i] = "0123456789abcdef"[rnd(&s) % 16];
            buckets[b].build_id[f][40] = '\0';
            buckets[b].offset[f] = 0x1000 + rnd(&s) % 0x40000;
        }
    }
}

/* One report, as a device's queue holds it. */
static json_t *make_report(struct device *d, int64_t seq)
{
    char offs[24], addr[24], ver[16];
    uint32_t r = rnd(&d->rng);
    json_t *o;

    snprintf(ver, sizeof(ver), "1.%u.%u", r % 3, r / 3 % 4);
    if (r % 2 == 0) {
        size_t b = rnd(&d->rng) % BUCKETS, deeper = 2 + rnd(&d->rng) % 5;
        json_t *frames = json_array();
        for (int f = 0; f < 3; f++) {
            snprintf(offs, sizeof(offs), "0x%x", buckets[b].offset[f]);
            json_array_append_new(frames,
                                  json_pack("{s:s, s:s, s:s}", "build_id", buckets[b].build_id[f],
                                            "module", buckets[b].module[f], "offset", offs));
        }
        for (size_t f = 0; f < deeper; f++) {
            snprintf(offs, sizeof(offs), "0x%x", 0x20000 + rnd(&d->rng) % 0x100000);
            json_array_append_new(frames, json_pack("{s:s, s:s, s:s}", "build_id",
                                                    "5d1f0b8e4c3a2917f6e5d4c3b2a1908172635445",
                                                    "module", "libc.so.6", "offset", offs));
        }
        snprintf(addr, sizeof(addr), "0x%x", rnd(&d->rng) % 0x10000);
        o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:{s:i, s:s, s:i, s:s, s:I, s:o, "
                      "s:s}}",
                      "seq", (json_int_t)seq, "at", (json_int_t)time(NULL), "kind", "crash",
                      "component", buckets[b].component, "version", ver, "reason",
                      "killed by a signal", "code", "", "crash", "signal",
                      signals[buckets[b].sig].signal, "signal_name", signals[buckets[b].sig].name,
                      "code", 1, "address", addr, "uptime_ms",
                      (json_int_t)(rnd(&d->rng) % 86400000), "frames", frames, "stderr",
                      "starting\nconnected to the broker\nreading sensor 3\nvalue out of range: "
                      "-1\nretrying\n");
    } else {
        size_t e = rnd(&d->rng) % (sizeof(events) / sizeof(events[0]));
        o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "seq", (json_int_t)seq, "at",
                      (json_int_t)time(NULL), "kind", events[e].kind, "component",
                      e < 3 ? "" : components[r % 5], "version", e < 3 ? "" : ver, "reason",
                      events[e].reason, "code", events[e].code);
    }
    if (o == NULL)
        die("json");
    return o;
}

/* The device's next batch of BATCH reports, as its queue sends it. */
static char *make_batch(struct device *d, size_t *len)
{
    json_t *reports = json_array(), *body;
    char *text;

    for (int i = 0; i < BATCH; i++)
        json_array_append_new(reports, make_report(d, d->seq++));
    body = json_pack("{s:o, s:i}", "reports", reports, "dropped", 0);
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        die("json");
    *len = strlen(text);
    return text;
}

/* ---- the fleet ---- */

static void send_batch(evutil_socket_t fd, short what, void *arg);

static void schedule(struct device *d)
{
    double t = sim_now(), wait;

    d->tokens += (t - d->at) * LIMIT_RATE;
    if (d->tokens > LIMIT_BURST)
        d->tokens = LIMIT_BURST;
    d->at = t;
    if (d->tokens >= 1) {
        event_active(d->next, EV_TIMEOUT, 0);
        return;
    }
    wait = (1 - d->tokens) / LIMIT_RATE;
    atomic_fetch_add(&nwaits, 1);
    struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (double)(time_t)wait) * 1e6)};
    event_add(d->next, &tv);
}

static void on_answer(struct evhttp_request *req, void *arg)
{
    struct device *d = arg;
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
    json_t *j = NULL;

    d->busy = false;
    if (code == 200) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        j = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
    }
    if (j != NULL && json_is_integer(json_object_get(j, "stored"))) {
        atomic_fetch_add(&nbatches, 1);
        atomic_fetch_add(&nreports, (size_t)json_integer_value(json_object_get(j, "stored")));
        atomic_fetch_add(&nrefused, json_array_size(json_object_get(j, "refused")));
        free(d->body);
        d->body = NULL;
    } else if (code == 429) {
        atomic_fetch_add(&nlimited, 1);
        d->tokens = 0; /* the service says wait: the batch goes again after a token */
    } else {
        atomic_fetch_add(&nfailed, 1);
        free(d->body);
        d->body = NULL;
        if (code == 0) {
            /* No answer: the connection is gone (a device would reconnect; here it is a
             * failure of the run, reported). */
            fprintf(stderr, "reports bench: device %.12s: no answer\n", d->id);
            d->dead = true;
        } else {
            fprintf(stderr, "reports bench: device %.12s: answered %d\n", d->id, code);
        }
    }
    json_decref(j);
    if (!atomic_load(&stop) && !atomic_load(&one_each) && !d->dead)
        schedule(d);
}

static void send_batch(evutil_socket_t fd, short what, void *arg)
{
    struct device *d = arg;
    struct evhttp_request *req;
    struct evkeyvalq *h;

    (void)fd;
    (void)what;
    if (atomic_load(&stop) || d->busy)
        return;
    d->tokens -= 1;
    if (d->body == NULL)
        d->body = make_batch(d, &d->body_len);
    req = evhttp_request_new(on_answer, d);
    if (req == NULL)
        die("request");
    h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    evhttp_add_header(h, "Content-Type", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), d->body, d->body_len);
    d->busy = true;
    if (evhttp_make_request(d->conn, req, EVHTTP_REQ_POST, "/api/v1/device/reports") != 0) {
        d->busy = false;
        d->dead = true;
        atomic_fetch_add(&nfailed, 1);
        return;
    }
    /* No Nagle delays, as a device's HTTP client does: the socket exists once the first request
     * has started connecting. */
    if (!d->nodelay) {
        int one = 1;
        evutil_socket_t s = bufferevent_getfd(evhttp_connection_get_bufferevent(d->conn));
        if (s < 0 || setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
            die("TCP_NODELAY");
        d->nodelay = true;
    }
}

/* The device's connection: its certificate and key, the service CA as the only anchor. */
static void connect_device(struct device *d)
{
    SSL *ssl = SSL_new(client_ctx);
    struct bufferevent *bev;

    if (ssl == NULL || SSL_use_certificate(ssl, d->cert) != 1 ||
        SSL_use_PrivateKey(ssl, d->key) != 1 || SSL_add1_chain_cert(ssl, d->ca) != 1 ||
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1") != 1)
        die("device TLS");
    bev = bufferevent_openssl_socket_new(d->loop->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        die("bufferevent");
    d->conn = evhttp_connection_base_bufferevent_new(d->loop->base, NULL, bev, "127.0.0.1",
                                                     (unsigned short)port);
    if (d->conn == NULL)
        die("connection");
    evhttp_connection_set_timeout(d->conn, 60);
    evhttp_connection_set_retries(d->conn, 0);
    d->next = event_new(d->loop->base, -1, 0, send_batch, d);
    if (d->next == NULL)
        die("event");
}

static void check_stop(evutil_socket_t fd, short what, void *arg)
{
    struct loop *l = arg;
    bool busy = false;

    (void)fd;
    (void)what;
    for (size_t i = l->first; i < l->first + l->n; i++)
        busy = busy || devices[i].busy;
    if (atomic_load(&stop) && !busy)
        event_base_loopbreak(l->base);
}

static void *run_loop(void *arg)
{
    struct loop *l = arg;

    for (size_t i = l->first; i < l->first + l->n; i++)
        if (!devices[i].dead)
            schedule(&devices[i]);
    event_base_dispatch(l->base);
    return NULL;
}

/* Run every device until the time is up (or, with one_each set, until each has sent one). */
static double run_fleet(struct loop *loops, double duration, size_t batches)
{
    double t0 = sim_now();

    atomic_store(&stop, false);
    atomic_store(&one_each, batches > 0);
    for (size_t i = 0; i < nloops; i++)
        pthread_create(&loops[i].thread, NULL, run_loop, &loops[i]);
    while (sim_now() - t0 < duration &&
           (batches == 0 || atomic_load(&nbatches) + atomic_load(&nfailed) < batches))
        usleep(10000);
    atomic_store(&stop, true);
    for (size_t i = 0; i < nloops; i++)
        pthread_join(loops[i].thread, NULL);
    return sim_now() - t0;
}

/* ---- setup: the service, its tenant, the devices' certificates ---- */

static json_t *call(const char *method, const char *path, json_t *body, const char *token)
{
    char u[512], *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    rp_http_opts_t o = {ca_file, token, "application/json", 60, NULL, NULL, NULL, NULL, 0};
    rp_http_response_t r;
    json_t *j = NULL;

    snprintf(u, sizeof(u), "%s%s", url, path);
    if (rp_http_request(method, u, &o, text, text ? strlen(text) : 0, &r) == RP_OK) {
        if (r.status < 300)
            j = json_loads(r.body, 0, NULL);
        else
            fprintf(stderr, "reports bench: %s %s: %ld %s\n", method, path, r.status, r.body);
        rp_http_response_free(&r);
    }
    free(text);
    json_decref(body);
    return j;
}

static rp_err_t sign_key(void *ctx, const uint8_t digest[RP_SHA256_LEN], uint8_t *der, size_t cap,
                         size_t *len)
{
    return rp_key_sign_digest(ctx, digest, der, cap, len);
}

static X509 *pem_cert(const char *pem)
{
    BIO *b = pem != NULL ? BIO_new_mem_buf(pem, -1) : NULL;
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return x;
}

/* The device's certificate, the way a device gets it: a nonce, evidence, the verdict. */
static void attest(struct device *d)
{
    json_t *j = call("POST", "/api/v1/attest/nonce", json_pack("{s:s}", "device_id", d->id), NULL);
    const char *nonce = json_string_value(json_object_get(j, "nonce"));
    uint8_t token[RP_EAT_MAX_SIZE];
    rp_eat_claims_t claims;
    char *b64 = NULL;
    size_t len;

    memset(&claims, 0, sizeof(claims));
    claims.nonce_len = 32;
    claims.debug = RP_EAT_DEBUG_DISABLED;
    claims.boot_count = 1;
    claims.has_register = true;
    if (nonce == NULL || strlen(nonce) != 64 ||
        rp_hex_decode(nonce, 64, claims.nonce, 32) != RP_OK ||
        rp_hex_decode(d->id, 64, claims.device_id, 32) != RP_OK ||
        rp_evidence_make(&claims, sign_key, d->key, token, sizeof(token), &len) != RP_OK ||
        rp_base64_encode(token, len, &b64) != RP_OK)
        die("evidence");
    json_decref(j);
    j = call("POST", "/api/v1/attest",
             json_pack("{s:s, s:s}", "evidence", b64, "public_key", d->key_b64), NULL);
    free(b64);
    d->cert = pem_cert(json_string_value(json_object_get(j, "certificate")));
    d->ca = pem_cert(json_string_value(json_object_get(j, "ca_chain")));
    if (d->cert == NULL || d->ca == NULL)
        die("attestation gave no certificate");
    json_decref(j);
}

/* ---- the reference: the same rows, straight into the store ---- */

/* The device's template batch, decoded now (not timed): its rows as rp_store_reports_put takes
 * them, without their buckets. */
static void decode_template(struct device *d)
{
    size_t len;
    char *text = make_batch(d, &len);
    rp_report_batch_t b;
    const char *why;

    if (rp_report_batch_decode((const uint8_t *)text, len, &b, &why) != RP_OK || b.n != BATCH)
        die("the reference's batch does not decode");
    d->puts = calloc(BATCH, sizeof(*d->puts));
    if (d->puts == NULL)
        die("out of memory");
    for (size_t i = 0; i < BATCH; i++) {
        rp_report_t *r = &b.reports[i];
        if (r->refused != NULL)
            die(r->refused);
        d->puts[i] = (rp_report_put_t){r->seq,
                                       r->at,
                                       strdup(r->kind),
                                       strdup(r->component),
                                       strdup(r->version),
                                       strdup(r->code),
                                       strdup(r->reason),
                                       NULL,
                                       0,
                                       NULL,
                                       r->json,
                                       false};
        r->json = NULL; /* kept by the put */
    }
    rp_report_batch_free(&b);
    free(text);
}

static double raw_inserts(const char *dir, double duration, size_t *rows)
{
    rp_store_t *s;
    rp_tenant_t t;
    bool stored[BATCH];
    size_t ns, nd, round = 0;
    int64_t pruned, clock = (int64_t)time(NULL);
    double t0, el;

    if (rp_store_open(dir, &s) != RP_OK || rp_store_tenant_create(s, "bench", &t) != RP_OK)
        die("cannot open the reference's store");
    for (size_t i = 0; i < ndevices; i++)
        if (rp_store_device_claim(s, t.id, devices[i].id, clock) != RP_OK)
            die("cannot claim in the reference's store");
    *rows = 0;
    t0 = sim_now();
    do {
        for (size_t i = 0; i < ndevices; i++) {
            struct device *d = &devices[i];
            for (size_t k = 0; k < BATCH; k++)
                d->puts[k].seq = (int64_t)(round * BATCH + k);
            if (rp_store_reports_put(s, t.id, d->id, (int64_t)time(NULL), d->puts, BATCH, 0, stored,
                                     &ns, &nd, &pruned) != RP_OK)
                die("the reference's insert failed");
            *rows += ns;
            if (sim_now() - t0 >= duration)
                break;
        }
        round++;
    } while (sim_now() - t0 < duration);
    el = sim_now() - t0;
    rp_store_close(s);
    return (double)*rows / el;
}

int main(int argc, char **argv)
{
    char server_bin[4096], port_file[160], tok[256], tenant[64], path[4200], data_dir[64],
        raw_dir[64];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct loop *loops;
    uint8_t *data;
    size_t data_len, raw_rows, batches_total, warm;
    double elapsed, rate, raw_rate, s0, c0, server_cpu, client_cpu;
    pid_t server;
    json_t *j, *ids;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--devices") == 0)
            ndevices = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--client-threads") == 0)
            nloops = strtoul(argv[i + 1], NULL, 10);
        else
            die("usage: bench-reports [--devices N] [--seconds S] [--client-threads N]");
    }
    if (argc % 2 == 0 || ndevices == 0 || seconds <= 0 || nloops == 0)
        die("usage: bench-reports [--devices N] [--seconds S] [--client-threads N]");
    if (nloops > ndevices)
        nloops = ndevices;
    signal(SIGPIPE, SIG_IGN);
    rp_log_init("bench-reports", RP_LOG_WARN); /* the reference's store: no migration chatter */
    buckets_init();

    /* The server: this build's, beside this program, one worker per core. --rate-limit 0 lifts
     * the per-address limit on attestation (every device is on 127.0.0.1); the per-device limit
     * on report batches stays as it is. */
    snprintf(server_bin, sizeof(server_bin), "%s", argv[0]);
    *strrchr(server_bin, '/') = '\0';
    strcat(server_bin, "/rampart-server");
    snprintf(data_dir, sizeof(data_dir), "/tmp/rampart-bench-reports-XXXXXX");
    snprintf(raw_dir, sizeof(raw_dir), "/tmp/rampart-bench-raw-XXXXXX");
    if (mkdtemp(data_dir) == NULL || mkdtemp(raw_dir) == NULL)
        die("mkdtemp");
    snprintf(port_file, sizeof(port_file), "%s.port", data_dir);
    server = fork();
    if (server == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl(server_bin, server_bin, "--data-dir", data_dir, "--listen", "127.0.0.1:0",
              "--port-file", port_file, "--rate-limit", "0", "--max-connections-per-address",
              "1000000", (char *)NULL);
        _exit(127);
    }
    /* A bound for a loaded machine, not an expected time. */
    for (int i = 0; i < 1200 && access(port_file, F_OK) != 0; i++)
        usleep(50000);
    if (rp_read_file(port_file, 16, &data, &data_len) != RP_OK)
        die("the server did not start");
    port = atoi((char *)data);
    free(data);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
    snprintf(ca_file, sizeof(ca_file), "%s/server-ca.pem", data_dir);
    snprintf(path, sizeof(path), "%s/admin.token", data_dir);
    if (rp_read_file(path, sizeof(tok) - 1, &data, &data_len) != RP_OK)
        die("no admin token");
    snprintf(tok, sizeof(tok), "%.*s", (int)strcspn((char *)data, "\n"), data);
    free(data);

    /* A tenant, its devices claimed and attested. */
    j = call("POST", "/api/v1/tenants", json_pack("{s:s}", "name", "bench"), tok);
    if (j == NULL)
        die("cannot create the tenant");
    snprintf(tenant, sizeof(tenant), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/policy", tenant);
    j = call("PUT", path, json_pack("{s:b}", "require_components", 0), tok);
    if (j == NULL)
        die("cannot set the tenant's policy");
    json_decref(j);
    devices = calloc(ndevices, sizeof(*devices));
    if (devices == NULL)
        die("out of memory");
    ids = json_array();
    for (size_t i = 0; i < ndevices; i++) {
        uint8_t spki[RP_PUBKEY_DER_MAX], id[32];
        size_t len;

        if (rp_key_generate(RP_SIG_ECDSA_P256, &devices[i].key) != RP_OK ||
            rp_key_spki(devices[i].key, spki, sizeof(spki), &len) != RP_OK ||
            rp_base64_encode(spki, len, &devices[i].key_b64) != RP_OK ||
            rp_sha256(spki, len, id) != RP_OK ||
            rp_hex_encode(id, 32, devices[i].id, sizeof(devices[i].id)) != RP_OK)
            die("device key");
        devices[i].rng = (uint32_t)(i * 2654435761u) | 1;
        devices[i].seq = 1;
        json_array_append_new(ids, json_string(devices[i].id));
        if (json_array_size(ids) == 500 || i + 1 == ndevices) {
            snprintf(path, sizeof(path), "/api/v1/tenants/%s/devices", tenant);
            j = call("POST", path, json_pack("{s:o}", "device_ids", ids), tok);
            if (j == NULL)
                die("cannot claim");
            json_decref(j);
            ids = json_array();
        }
    }
    json_decref(ids);
    for (size_t i = 0; i < ndevices; i++)
        attest(&devices[i]);

    /* The reference first, on the same disk, while the service waits idle. */
    for (size_t i = 0; i < ndevices; i++)
        decode_template(&devices[i]);
    raw_rate = raw_inserts(raw_dir, seconds < 2 ? seconds : 2, &raw_rows);

    /* The fleet: each device its connection; one batch each to open them (TLS handshakes are
     * not what this measures), then the timed run. */
    client_ctx = SSL_CTX_new(TLS_client_method());
    if (client_ctx == NULL || SSL_CTX_load_verify_locations(client_ctx, ca_file, NULL) != 1)
        die("client TLS context");
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
    loops = calloc(nloops, sizeof(*loops));
    if (loops == NULL)
        die("out of memory");
    for (size_t i = 0, first = 0; i < nloops; i++) {
        static const struct timeval tick = {0, 20000};
        struct loop *l = &loops[i];

        l->base = event_base_new();
        l->first = first;
        l->n = ndevices / nloops + (i < ndevices % nloops);
        first += l->n;
        l->tick = event_new(l->base, -1, EV_PERSIST, check_stop, l);
        if (l->base == NULL || l->tick == NULL || event_add(l->tick, &tick) != 0)
            die("event loop");
        for (size_t k = l->first; k < l->first + l->n; k++) {
            devices[k].loop = l;
            devices[k].tokens = LIMIT_BURST;
            devices[k].at = sim_now();
            connect_device(&devices[k]);
        }
    }
    run_fleet(loops, 600, ndevices);
    warm = atomic_load(&nbatches);
    if (warm != ndevices || atomic_load(&nfailed) != 0)
        die("the devices' first batches were not all taken");
    atomic_store(&nbatches, 0);
    atomic_store(&nreports, 0);
    atomic_store(&nrefused, 0);
    atomic_store(&nwaits, 0);
    s0 = sim_cpu_of(server);
    c0 = sim_cpu_self();
    elapsed = run_fleet(loops, seconds, 0);
    server_cpu = sim_cpu_of(server) - s0;
    client_cpu = sim_cpu_self() - c0;
    batches_total = atomic_load(&nbatches);
    rate = (double)atomic_load(&nreports) / elapsed;

    kill(server, SIGTERM);
    waitpid(server, NULL, 0);

    printf("reports: %zu devices, each its own certificate and one mutual-TLS connection "
           "(keep-alive); batches of %d (half crashes over %d buckets, half security events); "
           "SQLite; %ld cores\n",
           ndevices, BATCH, BUCKETS, cores);
    printf("  ingested:        %zu reports in %zu batches in %.1f s; %zu refused, %zu answered "
           "429, %zu failed; waited for the per-device limit %zu times\n",
           atomic_load(&nreports), batches_total, elapsed, atomic_load(&nrefused),
           atomic_load(&nlimited), atomic_load(&nfailed), atomic_load(&nwaits));
    printf("  throughput:      %.0f reports/s with bucketing (decoded, bucketed, stored, "
           "counted by threat detection)\n",
           rate);
    printf("  CPU per report:  service %.1f us, simulated devices %.1f us\n",
           batches_total ? server_cpu / (double)atomic_load(&nreports) * 1e6 : 0,
           batches_total ? client_cpu / (double)atomic_load(&nreports) * 1e6 : 0);
    printf("  raw inserts:     %.0f inserts/s (the same rows, rp_store_reports_put in batches of "
           "%d without buckets: WAL, synchronous=FULL; %zu rows)\n",
           raw_rate, BATCH, raw_rows);
    printf("  ratio:           %.3f of raw\n", raw_rate > 0 ? rate / raw_rate : 0);
    printf("  goal: >= 20000 reports/s; >= 0.5 of raw\n");
    printf("reports: %.0f reports/s, raw %.0f inserts/s, ratio %.3f\n", rate, raw_rate,
           raw_rate > 0 ? rate / raw_rate : 0);

    if (system(NULL)) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'", data_dir, raw_dir, port_file);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", data_dir);
    }
    for (size_t i = 0; i < nloops; i++) {
        event_free(loops[i].tick);
    }
    for (size_t i = 0; i < ndevices; i++) {
        struct device *d = &devices[i];
        if (d->conn != NULL)
            evhttp_connection_free(d->conn);
        event_free(d->next);
        for (size_t k = 0; d->puts != NULL && k < BATCH; k++) {
            free((char *)d->puts[k].kind);
            free((char *)d->puts[k].component);
            free((char *)d->puts[k].version);
            free((char *)d->puts[k].code);
            free((char *)d->puts[k].reason);
            free((char *)d->puts[k].json);
        }
        free(d->puts);
        free(d->body);
        free(d->key_b64);
        EVP_PKEY_free(d->key);
        X509_free(d->cert);
        X509_free(d->ca);
    }
    for (size_t i = 0; i < nloops; i++)
        event_base_free(loops[i].base);
    free(loops);
    free(devices);
    SSL_CTX_free(client_ctx);
    return batches_total == 0 || atomic_load(&nfailed) > 0 || atomic_load(&nrefused) > 0 ? 1 : 0;
}
