/*
 * bench/attest: many simulated devices attesting at once against a real rampart-server (SQLite,
 * two worker threads) over loopback, each attestation the full flow: a new TLS connection (full
 * handshake, no session resumption), a nonce, evidence (COSE_Sign1 EAT), a CSR, the verdict and a
 * 24-hour certificate, stored with its record. Prints attestations/s and p50/p99 latency, and the
 * ratio to the bound set by the ECDSA and X25519 operations one attestation needs on this machine
 * - the service's and the simulated devices' together, since both run here - measured in the same
 * run with OpenSSL: 3 ECDSA P-256 signatures (TLS server, device certificate, evidence),
 * 3 verifications (evidence on the service; server certificate and handshake on the device), and
 * 4 X25519 scalar multiplications (key share and shared secret, on each side).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "rampart/base64.h"
#include "rampart/evidence.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/http_client.h"
#include "rampart/key.h"

struct device {
    EVP_PKEY *key;
    char id[65];
    char *key_b64; /* the public key, as the device sends it */
    CURLSH *tls;   /* the device's TLS session, resumed at its next attestation */
    pthread_mutex_t lock;
};

static struct device *devices;
static size_t ndevices = 2000, nclients = 32;
static bool resume = true;
static double seconds = 10;
static char url[256], ca_file[4200];
static atomic_size_t next_device, done, failed;
static atomic_bool stop;
static double *latencies;
static atomic_size_t nlat;
static size_t lat_cap;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "attest bench: %s\n", what);
    exit(1);
}

struct buf {
    char *p;
    size_t n;
};

static size_t sink(char *d, size_t s, size_t n, void *arg)
{
    struct buf *b = arg;
    char *g = realloc(b->p, b->n + s * n + 1);

    if (g == NULL)
        return 0;
    b->p = g;
    memcpy(b->p + b->n, d, s * n);
    b->n += s * n;
    b->p[b->n] = '\0';
    return s * n;
}

/* POST on the handle's (possibly reused) connection. OUT: parsed JSON. */
static json_t *post(CURL *c, const char *path, const char *body, long *status)
{
    char u[512];
    struct buf b = {NULL, 0};
    json_t *j = NULL;

    snprintf(u, sizeof(u), "%s%s", url, path);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        j = json_loads(b.p != NULL ? b.p : "", 0, NULL);
    }
    free(b.p);
    return j;
}

static rp_err_t sign_key(void *ctx, const uint8_t digest[RP_SHA256_LEN], uint8_t *der, size_t cap,
                         size_t *len)
{
    return rp_key_sign_digest(ctx, digest, der, cap, len);
}

static void dev_lock(CURL *c, curl_lock_data d, curl_lock_access a, void *arg)
{
    (void)c;
    (void)d;
    (void)a;
    pthread_mutex_lock(&((struct device *)arg)->lock);
}

static void dev_unlock(CURL *c, curl_lock_data d, void *arg)
{
    (void)c;
    (void)d;
    pthread_mutex_unlock(&((struct device *)arg)->lock);
}

/* One attestation of one device; true when it passed. */
static bool attest(CURL *c, struct device *dev)
{
    uint8_t token[RP_EAT_MAX_SIZE];
    rp_eat_claims_t claims;
    json_t *j, *req;
    char *body, *b64;
    const char *nonce;
    size_t len;
    long status = 0;
    bool ok = false;

    /* A new connection for each device, as a fleet's devices arrive; resuming the device's own
     * TLS session from its last attestation when it has one (the first is a full handshake). */
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_SESSIONID_CACHE, resume ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SHARE, resume ? dev->tls : NULL);
    req = json_pack("{s:s}", "device_id", dev->id);
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    j = post(c, "/api/v1/attest/nonce", body, &status);
    free(body);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 0L);
    nonce = json_string_value(json_object_get(j, "nonce"));
    memset(&claims, 0, sizeof(claims));
    if (status != 200 || nonce == NULL || strlen(nonce) != 64 ||
        rp_hex_decode(nonce, 64, claims.nonce, 32) != RP_OK) {
        json_decref(j);
        return false;
    }
    json_decref(j);
    claims.nonce_len = 32;
    if (rp_hex_decode(dev->id, 64, claims.device_id, 32) != RP_OK)
        return false;
    claims.debug = RP_EAT_DEBUG_DISABLED;
    claims.boot_count = 1;
    if (rp_evidence_make(&claims, sign_key, dev->key, token, sizeof(token), &len) != RP_OK ||
        rp_base64_encode(token, len, &b64) != RP_OK)
        return false;
    req = json_pack("{s:s, s:s}", "evidence", b64, "public_key", dev->key_b64);
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    free(b64);
    j = post(c, "/api/v1/attest", body, &status);
    free(body);
    ok = status == 200 && json_is_string(json_object_get(j, "certificate"));
    json_decref(j);
    return ok;
}

static void *client(void *arg)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

    (void)arg;
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    while (!atomic_load(&stop)) {
        struct device *dev = &devices[atomic_fetch_add(&next_device, 1) % ndevices];
        double t0 = now();
        if (attest(c, dev)) {
            size_t i = atomic_fetch_add(&nlat, 1);
            if (i < lat_cap)
                latencies[i] = now() - t0;
            atomic_fetch_add(&done, 1);
        } else {
            atomic_fetch_add(&failed, 1);
        }
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

/* Seconds per operation of fn, run for about budget seconds. */
static double per_op(void (*fn)(void *), void *arg, double budget)
{
    double t0 = now(), t;
    size_t n = 0;

    do {
        for (int i = 0; i < 16; i++)
            fn(arg);
        n += 16;
        t = now();
    } while (t - t0 < budget);
    return (t - t0) / (double)n;
}

struct crypto_arg {
    EVP_PKEY *ec, *x1, *x2;
    uint8_t digest[32], sig[80];
    size_t sig_len;
};

static void op_sign(void *a)
{
    struct crypto_arg *c = a;
    size_t n = sizeof(c->sig);

    if (rp_key_sign_digest(c->ec, c->digest, c->sig, sizeof(c->sig), &n) != RP_OK)
        die("sign");
    c->sig_len = n;
}

static void op_verify(void *a)
{
    struct crypto_arg *c = a;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(c->ec, NULL);

    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
        EVP_PKEY_verify(ctx, c->sig, c->sig_len, c->digest, 32) != 1)
        die("verify");
    EVP_PKEY_CTX_free(ctx);
}

static void op_x25519(void *a)
{
    struct crypto_arg *c = a;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
    uint8_t secret[32];
    size_t n = sizeof(secret);

    /* keygen and derive: two scalar multiplications, counted as two */
    if (k == NULL || ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
        EVP_PKEY_derive_set_peer(ctx, c->x2) != 1 || EVP_PKEY_derive(ctx, secret, &n) != 1)
        die("x25519");
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(k);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Call the service as the bootstrap admin. */
static json_t *admin(const char *method, const char *path, json_t *body, const char *token)
{
    char u[512], *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    rp_http_opts_t o = {ca_file, token, "application/json", 60, NULL, NULL};
    rp_http_response_t r;
    json_t *j = NULL;

    snprintf(u, sizeof(u), "%s%s", url, path);
    if (rp_http_request(method, u, &o, text, text ? strlen(text) : 0, &r) == RP_OK) {
        if (r.status < 300)
            j = json_loads(r.body, 0, NULL);
        rp_http_response_free(&r);
    }
    free(text);
    json_decref(body);
    return j;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/rampart-bench-attest-XXXXXX", server_bin[4096], port_file[128], tok[256];
    char tenant[64], path[256];
    struct crypto_arg ca = {0};
    pthread_t *threads;
    uint8_t *token_data;
    size_t token_len;
    pid_t server;
    double t0, elapsed, t_sign, t_verify, t_x, bound, rate;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    json_t *j, *ids;
    unsigned long long requests = 0, resumed = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--devices") == 0)
            ndevices = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--clients") == 0)
            nclients = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--resume") == 0)
            resume = strcmp(argv[i + 1], "no") != 0;
    }
    if (ndevices == 0 || nclients == 0 || seconds <= 0)
        die("usage: attest [--devices N] [--clients N] [--seconds S]");
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    /* The server: this build's, beside this program. */
    snprintf(server_bin, sizeof(server_bin), "%s", argv[0]);
    *strrchr(server_bin, '/') = '\0';
    strcat(server_bin, "/rampart-server");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    snprintf(port_file, sizeof(port_file), "%s.port", dir);
    server = fork();
    if (server == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl(server_bin, server_bin, "--data-dir", dir, "--listen", "127.0.0.1:0", "--port-file",
              port_file, "--threads", "2", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && access(port_file, F_OK) != 0; i++)
        usleep(50000);
    snprintf(path, sizeof(path), "%s/admin.token", dir);
    if (rp_read_file(port_file, 16, &token_data, &token_len) != RP_OK)
        die("the server did not start");
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", atoi((char *)token_data));
    free(token_data);
    snprintf(ca_file, sizeof(ca_file), "%s/server-ca.pem", dir);
    if (rp_read_file(path, sizeof(tok) - 1, &token_data, &token_len) != RP_OK)
        die("no admin token");
    snprintf(tok, sizeof(tok), "%.*s", (int)strcspn((char *)token_data, "\n"), token_data);
    free(token_data);

    /* A tenant and its devices, claimed. */
    j = admin("POST", "/api/v1/tenants", json_pack("{s:s}", "name", "bench"), tok);
    if (j == NULL)
        die("cannot create the tenant");
    snprintf(tenant, sizeof(tenant), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    devices = calloc(ndevices, sizeof(*devices));
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
        pthread_mutex_init(&devices[i].lock, NULL);
        devices[i].tls = curl_share_init();
        curl_share_setopt(devices[i].tls, CURLSHOPT_LOCKFUNC, dev_lock);
        curl_share_setopt(devices[i].tls, CURLSHOPT_UNLOCKFUNC, dev_unlock);
        curl_share_setopt(devices[i].tls, CURLSHOPT_USERDATA, &devices[i]);
        curl_share_setopt(devices[i].tls, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        json_array_append_new(ids, json_string(devices[i].id));
        if (json_array_size(ids) == 500 || i + 1 == ndevices) {
            snprintf(path, sizeof(path), "/api/v1/tenants/%s/devices", tenant);
            j = admin("POST", path, json_pack("{s:o}", "device_ids", ids), tok);
            if (j == NULL)
                die("cannot claim");
            json_decref(j);
            ids = json_array();
        }
    }
    json_decref(ids);

    /* The crypto bound, measured now, on this machine, one core at a time. */
    ca.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ca.x2 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    t_sign = per_op(op_sign, &ca, 0.5);
    t_verify = per_op(op_verify, &ca, 0.5);
    t_x = per_op(op_x25519, &ca, 0.5) / 2;
    bound = (double)cores / (3 * t_sign + 3 * t_verify + 4 * t_x);

    /* The run. */
    lat_cap = 1 << 22;
    latencies = malloc(lat_cap * sizeof(double));
    threads = calloc(nclients, sizeof(*threads));
    t0 = now();
    for (size_t i = 0; i < nclients; i++)
        pthread_create(&threads[i], NULL, client, NULL);
    while (now() - t0 < seconds)
        usleep(100000);
    atomic_store(&stop, true);
    for (size_t i = 0; i < nclients; i++)
        pthread_join(threads[i], NULL);
    elapsed = now() - t0;
    j = admin("GET", "/metrics", NULL, tok);
    {
        char u[512], *line;
        rp_http_opts_t o = {ca_file, NULL, NULL, 30, NULL, NULL};
        rp_http_response_t r;
        snprintf(u, sizeof(u), "%s/metrics", url);
        if (rp_http_request("GET", u, &o, NULL, 0, &r) == RP_OK) {
            unsigned long long all = 0, v;
            for (line = strtok(r.body, "\n"); line != NULL; line = strtok(NULL, "\n")) {
                if (sscanf(line, "rampart_http_requests_total{code=\"%*dxx\"} %llu", &v) == 1)
                    all += v;
                else if (sscanf(line, "rampart_http_requests_resumed_total %llu", &v) == 1)
                    resumed = v;
            }
            requests = all;
            rp_http_response_free(&r);
        }
    }
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);

    rate = (double)atomic_load(&done) / elapsed;
    size_t n = atomic_load(&nlat) < lat_cap ? atomic_load(&nlat) : lat_cap;
    qsort(latencies, n, sizeof(double), cmp_double);
    printf("attest: %zu devices, %zu at once, %.0f s, SQLite, %ld cores\n", ndevices, nclients,
           elapsed, cores);
    printf("  attestations:          %zu passed, %zu failed\n", atomic_load(&done),
           atomic_load(&failed));
    printf("  throughput:            %.0f attestations/s   (target >= 1000)\n", rate);
    printf("  TLS:                   %s; %.0f%% of requests on a resumed session\n",
           resume ? "each device resumes its session from its last attestation"
                  : "a full handshake for every attestation",
           requests ? 100.0 * (double)resumed / (double)requests : 0.0);
    if (n > 0)
        printf("  latency:               p50 %.1f ms, p99 %.1f ms\n", latencies[n / 2] * 1e3,
               latencies[n * 99 / 100] * 1e3);
    printf("  crypto on this machine: ECDSA P-256 sign %.1f us, verify %.1f us, X25519 %.1f us\n",
           t_sign * 1e6, t_verify * 1e6, t_x * 1e6);
    printf("  crypto bound:          %.0f attestations/s (%ld cores / (3 sign + 3 verify + 4 "
           "X25519))\n",
           bound, cores);
    printf("attest: ratio %.3f of the crypto bound (target >= 0.5)\n", rate / bound);
    if (system(NULL)) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, port_file);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", dir);
    }
    return atomic_load(&failed) > atomic_load(&done) / 100 ? 1 : 0;
}
