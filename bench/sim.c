/*
 * bench/sim: the simulated devices of bench-attest and bench-fleet's storm (sim.h).
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
#include <openssl/x509v3.h>

#include "sim.h"
#include "rampart/attest_binding.h"
#include "rampart/base64.h"
#include "rampart/evidence.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/key.h"

/* One attestation in flight. */
struct slot {
    struct loop *loop;
    int port; /* the replica it talks to */
    struct sim_device *dev;
    struct evhttp_connection *conn;
    struct evhttp_request *bound; /* bound flow: the request waiting for its body, until the
                                   * handshake is done (on_handshake) */
    struct event *next;           /* starts the next attestation outside the HTTP callbacks */
    double t0;
};

/* A client thread: its event loop and its slots. */
struct loop {
    struct event_base *base;
    struct event *tick; /* checks whether to stop */
    struct slot *slots;
    size_t nslots;
    pthread_t thread;
};

static atomic_size_t pool;
static SSL_CTX *client_ctx;
static atomic_size_t next_device, next_daily, done, failed, resumed;
static atomic_bool stop;
static bool resume;
static int device_index = -1; /* SSL ex_data: the slot */
static double *latencies;
static atomic_size_t nlat;
static size_t lat_cap;
static const struct sim_fleet *fleet; /* the phase's */

double sim_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

int sim_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

double sim_cpu_of(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long utime, stime;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
        if (f != NULL)
            fclose(f);
        return 0;
    }
    fclose(f);
    p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double sim_cpu_self(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A quantity of a process and its children (nginx's workers, PostgreSQL's backends) so far: 0 for
 * none. */
static double tree(pid_t pid, double (*of)(pid_t))
{
    char path[96];
    double t;
    FILE *f;
    int child;

    if (pid <= 0)
        return 0;
    t = of(pid);
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        die("cannot read a process's children from /proc");
    while (fscanf(f, "%d", &child) == 1)
        t += of(child);
    fclose(f);
    return t;
}

double sim_cpu_tree(pid_t pid)
{
    return tree(pid, sim_cpu_of);
}

/* The bytes a process has caused to be written to storage so far (/proc/PID/io). */
static double written_of(pid_t pid)
{
    char path[64], line[128];
    unsigned long long n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
    f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "write_bytes: %llu", &n) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return (double)n;
}

double sim_written_tree(pid_t pid)
{
    return tree(pid, written_of);
}

static rp_err_t sign_key(void *ctx, const uint8_t digest[RP_SHA256_LEN], uint8_t *der, size_t cap,
                         size_t *len)
{
    return rp_key_sign_digest(ctx, digest, der, cap, len);
}

/* TLS 1.3 tickets arrive after the handshake: keep the newest for the device's next time. */
static int new_session(SSL *ssl, SSL_SESSION *session)
{
    struct slot *s = SSL_get_ex_data(ssl, device_index);

    if (s == NULL || s->dev == NULL)
        return 0;
    pthread_mutex_lock(&s->dev->lock);
    SSL_SESSION_free(s->dev->session);
    s->dev->session = session;
    pthread_mutex_unlock(&s->dev->lock);
    return 1; /* we keep the reference */
}

static void finish(struct slot *s, bool ok)
{
    SSL *ssl = s->conn != NULL
                   ? bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(s->conn))
                   : NULL;

    if (ok && ssl != NULL && SSL_session_reused(ssl))
        atomic_fetch_add(&resumed, 1);
    if (ok) {
        size_t i = atomic_fetch_add(&nlat, 1);
        if (i < lat_cap)
            latencies[i] = sim_now() - s->t0;
        atomic_fetch_add(&done, 1);
    } else {
        atomic_fetch_add(&failed, 1);
    }
    /* The connection cannot be freed inside its own callback: the next round does it. */
    event_active(s->next, EV_TIMEOUT, 0);
}

static json_t *response_json(struct evhttp_request *req)
{
    struct evbuffer *in;
    size_t len;

    if (req == NULL || evhttp_request_get_response_code(req) != 200)
        return NULL;
    in = evhttp_request_get_input_buffer(req);
    len = evbuffer_get_length(in);
    return json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
}

/* POST text (NULL: no body yet, added before evhttp writes the request) on the slot's
 * connection. OUT: the request, owned by evhttp, or NULL. */
static struct evhttp_request *post(struct slot *s, const char *path, const char *text,
                                   void (*cb)(struct evhttp_request *, void *))
{
    struct evhttp_request *req = evhttp_request_new(cb, s);
    struct evkeyvalq *h;

    if (req == NULL)
        return NULL;
    h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    evhttp_add_header(h, "Content-Type", "application/json");
    if (text != NULL)
        evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
    /* On failure evhttp_make_request frees the request itself. */
    return evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, path) == 0 ? req : NULL;
}

static void on_certificate(struct evhttp_request *req, void *arg)
{
    struct slot *s = arg;
    json_t *j = response_json(req);

    finish(s, j != NULL && json_is_string(json_object_get(j, "certificate")));
    json_decref(j);
}

/* The attestation request's body for the device's evidence with nonce (its eat_nonce); NULL on
 * failure. */
static char *attest_body(const struct slot *s, const uint8_t *nonce, size_t nonce_len)
{
    uint8_t token[RP_EAT_MAX_SIZE];
    rp_eat_claims_t claims;
    char *b64 = NULL, *text = NULL;
    size_t len;
    json_t *j;

    if (nonce_len > sizeof(claims.nonce))
        return NULL;
    memset(&claims, 0, sizeof(claims));
    memcpy(claims.nonce, nonce, nonce_len);
    claims.nonce_len = nonce_len;
    claims.debug = RP_EAT_DEBUG_DISABLED;
    claims.boot_count = 1;
    claims.has_register = true; /* nothing measured: the register as it starts, all zeros */
    if (rp_hex_decode(s->dev->id, 64, claims.device_id, 32) == RP_OK &&
        rp_evidence_make(&claims, sign_key, s->dev->key, token, sizeof(token), &len) == RP_OK &&
        rp_base64_encode(token, len, &b64) == RP_OK) {
        j = json_pack("{s:s, s:s}", "evidence", b64, "public_key", s->dev->key_b64);
        text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    }
    free(b64);
    return text;
}

static void on_nonce(struct evhttp_request *req, void *arg)
{
    struct slot *s = arg;
    json_t *j = response_json(req);
    const char *hex = json_string_value(json_object_get(j, "nonce"));
    uint8_t nonce[32];
    char *text = NULL;
    bool ok;

    ok = hex != NULL && strlen(hex) == 64 && rp_hex_decode(hex, 64, nonce, 32) == RP_OK &&
         (text = attest_body(s, nonce, sizeof(nonce))) != NULL &&
         post(s, "/api/v1/attest", text, on_certificate) != NULL;
    free(text);
    json_decref(j);
    if (!ok)
        finish(s, false);
}

/*
 * The bound flow: the request went to evhttp with no body, and evhttp writes it once the
 * connection is up, which for TLS is once the handshake is done (its "connected" event). OpenSSL
 * says the handshake is done first, here: the body is made now, from this connection's binding.
 * Later calls (TLS 1.3 says "done" again after each post-handshake message) find it made. A
 * failure leaves the body empty: the service answers 400 and the attestation counts as failed.
 * A connection with no binding (not TLS 1.3: an OpenSSL configuration capped at 1.2) ends the
 * run: every round would fail so, and a bench does not fall back to another flow as the agent
 * does (that is `--flow nonce`).
 */
static void on_handshake(const SSL *ssl, int where, int ret)
{
    struct slot *s = SSL_get_ex_data(ssl, device_index);
    uint8_t binding[RP_ATTEST_BINDING_LEN];
    char *text;
    rp_err_t err;

    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE) || s == NULL || s->bound == NULL)
        return;
    err = rp_attest_binding((SSL *)ssl, binding);
    if (err == RP_ERR_UNSUPPORTED)
        die("the connection to the service has no binding (not TLS 1.3): the bound flow cannot "
            "run here (--flow nonce can)");
    if (err == RP_OK && (text = attest_body(s, binding, sizeof(binding))) != NULL) {
        evbuffer_add(evhttp_request_get_output_buffer(s->bound), text, strlen(text));
        free(text);
    }
    s->bound = NULL;
}

/* Free the last connection, then attest the next device on a new one. */
static void next_round(evutil_socket_t fd, short what, void *arg)
{
    struct slot *s = arg;
    struct bufferevent *bev;
    int one = 1;
    bool ok;
    SSL *ssl;

    (void)what;
    s->bound = NULL;
    if (s->conn != NULL) {
        /* close_notify first: OpenSSL forgets the session of a connection freed without it. */
        ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(s->conn));
        if (ssl != NULL)
            SSL_shutdown(ssl);
        evhttp_connection_free(s->conn);
    }
    s->conn = NULL;
    s->dev = NULL;
    if (atomic_load(&stop))
        return;
    if (resume) {
        s->dev = &fleet->devices[atomic_fetch_add(&next_daily, 1) % atomic_load(&pool)];
    } else {
        size_t k = atomic_fetch_add(&next_device, 1) % fleet->ndevices;
        s->dev = &fleet->devices[k];
        size_t p = atomic_load(&pool);
        while (k + 1 > p && !atomic_compare_exchange_weak(&pool, &p, k + 1))
            ;
    }
    s->t0 = sim_now();
    ssl = SSL_new(client_ctx);
    if (ssl == NULL || SSL_set_ex_data(ssl, device_index, s) != 1 ||
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1") != 1)
        die("SSL_new");
    if (resume) {
        pthread_mutex_lock(&s->dev->lock);
        if (s->dev->session != NULL && SSL_set_session(ssl, s->dev->session) != 1)
            die("SSL_set_session");
        pthread_mutex_unlock(&s->dev->lock);
    }
    bev = bufferevent_openssl_socket_new(s->loop->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        die("bufferevent");
    s->conn = evhttp_connection_base_bufferevent_new(s->loop->base, NULL, bev, "127.0.0.1",
                                                     (unsigned short)s->port);
    if (s->conn == NULL)
        die("connection");
    evhttp_connection_set_timeout(s->conn, 30);
    if (fleet->nonce_flow) {
        json_t *j = json_pack("{s:s}", "device_id", s->dev->id);
        char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        ok = text != NULL && post(s, "/api/v1/attest/nonce", text, on_nonce) != NULL;
        free(text);
        json_decref(j);
    } else {
        SSL_set_info_callback(ssl, on_handshake);
        s->bound = post(s, "/api/v1/attest", NULL, on_certificate);
        ok = s->bound != NULL;
    }
    if (!ok) {
        s->bound = NULL;
        finish(s, false);
        return;
    }
    /* The socket exists once the request has started connecting: no Nagle delays on it, as a
     * device's HTTP client does (the handshake's last flight and the request are separate
     * writes; waiting for the peer's delayed ACK between them costs 40 ms). */
    fd = bufferevent_getfd(bev);
    if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        die("TCP_NODELAY");
}

static void *run_loop(void *arg)
{
    struct loop *l = arg;

    for (size_t i = 0; i < l->nslots; i++)
        event_active(l->slots[i].next, EV_TIMEOUT, 0);
    event_base_dispatch(l->base);
    return NULL;
}

static void check_stop(evutil_socket_t fd, short what, void *arg)
{
    struct loop *l = arg;
    bool busy = false;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < l->nslots; i++)
        busy = busy || l->slots[i].dev != NULL;
    if (atomic_load(&stop) && !busy)
        event_base_loopbreak(l->base);
}

void sim_init(const char *ca_file)
{
    client_ctx = SSL_CTX_new(TLS_client_method());
    device_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (client_ctx == NULL || device_index < 0 ||
        SSL_CTX_load_verify_locations(client_ctx, ca_file, NULL) != 1)
        die("client TLS context");
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(client_ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(client_ctx, new_session);
}

void sim_device_new(struct sim_device *d)
{
    uint8_t spki[RP_PUBKEY_DER_MAX], id[32];
    size_t len;

    memset(d, 0, sizeof(*d));
    if (rp_key_generate(RP_SIG_ECDSA_P256, &d->key) != RP_OK ||
        rp_key_spki(d->key, spki, sizeof(spki), &len) != RP_OK ||
        rp_base64_encode(spki, len, &d->key_b64) != RP_OK || rp_sha256(spki, len, id) != RP_OK ||
        rp_hex_encode(id, 32, d->id, sizeof(d->id)) != RP_OK)
        die("device key");
    pthread_mutex_init(&d->lock, NULL);
}

void sim_device_free(struct sim_device *d)
{
    EVP_PKEY_free(d->key);
    free(d->key_b64);
    SSL_SESSION_free(d->session);
    pthread_mutex_destroy(&d->lock);
}

pid_t sim_server_start(const char *server_bin, const char *dir, const char *database,
                       const char *threads, int *port)
{
    char port_file[4200];
    uint8_t *data;
    size_t data_len;
    pid_t pid;

    snprintf(port_file, sizeof(port_file), "%s.port", dir);
    pid = fork();
    if (pid == 0) {
        const char *argv[20];
        int n = 0, null = open("/dev/null", O_WRONLY);

        dup2(null, 2);
        argv[n++] = server_bin;
        argv[n++] = "--data-dir";
        argv[n++] = dir;
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1:0";
        argv[n++] = "--port-file";
        argv[n++] = port_file;
        argv[n++] = "--rate-limit";
        argv[n++] = "0";
        argv[n++] = "--max-connections-per-address";
        argv[n++] = "1000000";
        if (threads != NULL) {
            argv[n++] = "--threads";
            argv[n++] = threads;
        }
        if (database != NULL) {
            argv[n++] = "--database";
            argv[n++] = database;
        }
        argv[n] = NULL;
        execv(server_bin, (char *const *)argv);
        _exit(127);
    }
    if (pid < 0)
        die("fork");
    /* A bound for a loaded machine, not an expected time. */
    for (int k = 0; k < 1200 && access(port_file, F_OK) != 0; k++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            die("the server exited at start");
        usleep(50000);
    }
    if (rp_read_file(port_file, 16, &data, &data_len) != RP_OK)
        die("the server did not start");
    *port = atoi((char *)data);
    free(data);
    unlink(port_file);
    return pid;
}

void sim_server_stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

/* The CPU seconds every server has used so far. */
static double servers_cpu(void)
{
    double t = 0;

    for (size_t i = 0; i < fleet->nservers; i++)
        t += sim_cpu_of(fleet->servers[i]);
    return t;
}

/* Every loop drives its slots until the time is up. */
void sim_phase(const struct sim_fleet *f, bool with_resume, double duration,
               size_t max_attestations, struct sim_result *res)
{
    size_t nloops = f->nloops < f->inflight ? f->nloops : f->inflight, inflight = f->inflight;
    struct loop *loops;
    double t0, elapsed, s0, c0, d0;
    size_t n, g = 0;

    fleet = f;
    s0 = servers_cpu();
    c0 = sim_cpu_self();
    d0 = sim_cpu_tree(f->db_pid);
    loops = calloc(nloops, sizeof(*loops));
    if (latencies == NULL) {
        lat_cap = 1 << 22;
        latencies = malloc(lat_cap * sizeof(double));
    }
    if (loops == NULL || latencies == NULL)
        die("out of memory");
    resume = with_resume;
    atomic_store(&stop, false);
    atomic_store(&done, 0);
    atomic_store(&failed, 0);
    atomic_store(&nlat, 0);
    atomic_store(&resumed, 0);
    for (size_t i = 0; i < nloops; i++) {
        struct loop *l = &loops[i];
        static const struct timeval tick = {0, 50000};

        struct event_config *cfg = event_config_new();

        if (cfg == NULL || event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) != 0)
            die("event config");
        l->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        l->nslots = inflight / nloops + (i < inflight % nloops);
        l->slots = calloc(l->nslots, sizeof(*l->slots));
        if (l->base == NULL || l->slots == NULL)
            die("event loop");
        for (size_t k = 0; k < l->nslots; k++) {
            l->slots[k].loop = l;
            l->slots[k].port = f->ports[g++ % f->nservers];
            l->slots[k].next = event_new(l->base, -1, 0, next_round, &l->slots[k]);
        }
        l->tick = event_new(l->base, -1, EV_PERSIST, check_stop, l);
        if (l->tick == NULL || event_add(l->tick, &tick) != 0)
            die("event");
    }
    t0 = sim_now();
    for (size_t i = 0; i < nloops; i++)
        pthread_create(&loops[i].thread, NULL, run_loop, &loops[i]);
    while (sim_now() - t0 < duration &&
           (max_attestations == 0 || atomic_load(&done) + atomic_load(&failed) < max_attestations))
        usleep(20000);
    atomic_store(&stop, true);
    for (size_t i = 0; i < nloops; i++)
        pthread_join(loops[i].thread, NULL);
    elapsed = sim_now() - t0;

    res->passed = atomic_load(&done);
    res->failed = atomic_load(&failed);
    res->rate = (double)res->passed / elapsed;
    res->server_cpu = (servers_cpu() - s0) / (double)(res->passed ? res->passed : 1);
    res->client_cpu = (sim_cpu_self() - c0) / (double)(res->passed ? res->passed : 1);
    res->db_cpu = (sim_cpu_tree(f->db_pid) - d0) / (double)(res->passed ? res->passed : 1);
    res->resumed = res->passed ? (double)atomic_load(&resumed) / (double)res->passed : 0;
    n = atomic_load(&nlat) < lat_cap ? atomic_load(&nlat) : lat_cap;
    qsort(latencies, n, sizeof(double), sim_cmp_double);
    res->p50 = n ? latencies[n / 2] : 0;
    res->p99 = n ? latencies[n * 99 / 100] : 0;
    for (size_t i = 0; i < nloops; i++) {
        for (size_t k = 0; k < loops[i].nslots; k++) {
            if (loops[i].slots[k].conn != NULL)
                evhttp_connection_free(loops[i].slots[k].conn);
            event_free(loops[i].slots[k].next);
        }
        free(loops[i].slots);
        event_free(loops[i].tick);
        event_base_free(loops[i].base);
    }
    free(loops);
}

pid_t sim_database_pid(const char *database)
{
    const char *h = database != NULL ? strstr(database, "host=") : NULL;
    char path[512];
    FILE *f;
    int pid = 0;

    if (h == NULL)
        return 0;
    h += 5;
    snprintf(path, sizeof(path), "%.*s/data/postmaster.pid", (int)strcspn(h, "&"), h);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}
