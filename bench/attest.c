/*
 * bench/attest: a fleet of simulated devices attesting at once against a real rampart-server
 * (SQLite, one worker per core) over loopback. Each attestation is the whole flow: a new TLS
 * connection, evidence (a COSE_Sign1 EAT signed with the device's key) bound to that connection's
 * TLS exporter in one request (--flow bound, the default, as the agent does), or with --flow nonce
 * a nonce first and then evidence for it (two requests, the flow of relayed evidence and of older
 * agents); the verdict and a 24-hour certificate, stored with its record before the answer goes
 * out.
 *
 * Two phases, as a fleet lives them:
 *   first contact - every device's first attestation: a full TLS handshake each time;
 *   daily         - the attestations that follow: each device resumes the TLS session of its
 *                   last one (a ticket, PSK with a fresh X25519 exchange), so no certificate is
 *                   sent, parsed or verified in the handshake.
 *
 * For each it prints attestations/s, p50/p99 latency, CPU time per attestation (service and
 * simulated devices), and the ratio to the bound set by the ECDSA and X25519 operations the flow
 * needs - the service's and the devices' together, since both run here - measured in the same run
 * with OpenSSL:
 *   first contact: 3 signatures (TLS server, evidence, certificate), 3 verifications (evidence;
 *                  server certificate and handshake signature on the device), 4 X25519;
 *   daily:         2 signatures (evidence, certificate), 1 verification (evidence), 4 X25519.
 * A second reference, a TLS 1.3 handshake of both sides in memory with the same OpenSSL, shows how
 * much of the time the TLS library itself takes.
 *
 * The reference a user compares with (issue 12): nginx on the same machine, in the same run, doing
 * full TLS 1.3 handshakes with a P-256 certificate (the service's own server certificate), no
 * resumption (no tickets, no session cache), a 3-byte response, driven by `openssl s_time -new
 * -tls1_3 -www /`: as many s_time processes as attestations in flight (each one connection at a
 * time, a full handshake per connection, verifying nginx's certificate against the service CA as
 * the devices do). Service and nginx run in turn, interleaved: each round is first contact, nginx,
 * daily; --rounds rounds (3), and the ratios printed are the medians of the rounds' ratios.
 *
 * The database: SQLite in the data directory (the default), or --database TARGET (a PostgreSQL
 * URI) shared by --replicas N processes (1 or 2), each with its own data directory holding copies
 * of the first one's master key and service CA (what docs/operations.md says a new replica needs),
 * each on its own port; the attestations in flight are split evenly between them.
 *
 * The devices are bench/sim.c's (bench-fleet's storm drives them too): libevent's HTTP client over
 * OpenSSL with one shared client context, so that the load generator costs little beside the
 * service it measures.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sim.h"
#include "rampart/file.h"
#include "rampart/http_client.h"
#include "rampart/key.h"

static struct sim_device *devices;
static size_t ndevices = 5000, inflight = 32, nloops = 2;
static const char *server_threads = NULL; /* default: the server's own (one per core) */
static double seconds = 10;
#define MAX_REPLICAS 2
static int ports[MAX_REPLICAS];
static pid_t servers[MAX_REPLICAS], db_pid;
static size_t nreplicas = 1, rounds = 3;
static const char *database = NULL; /* NULL: SQLite in the first data directory */
/* The devices the next phase draws from: first contact walks over them all (next_device), daily
 * only over those that attested already (pool), so that each resumes a session it holds. */

static void die(const char *what)
{
    fprintf(stderr, "attest bench: %s\n", what);
    exit(1);
}

/* Seconds per operation of fn, run for about budget seconds. */
static double per_op(void (*fn)(void *), void *arg, double budget)
{
    double t0 = sim_now(), t;
    size_t n = 0;

    do {
        for (int i = 0; i < 16; i++)
            fn(arg);
        n += 16;
        t = sim_now();
    } while (t - t0 < budget);
    return (t - t0) / (double)n;
}

struct crypto_arg {
    EVP_PKEY *ec, *x2;
    uint8_t digest[32], sig[80];
    size_t sig_len;
    SSL_CTX *server, *server_resume, *client;
    SSL_SESSION *session;
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

/* A TLS 1.3 handshake between two in-memory endpoints with the service's certificate: a full
 * one, or one resuming c->session (and keeping the renewed ticket for the next). */
static void handshake(struct crypto_arg *c, bool again)
{
    SSL *cl = SSL_new(c->client), *sv = SSL_new(again ? c->server_resume : c->server);
    BIO *b1 = NULL, *b2 = NULL;
    uint8_t byte;
    int i;

    if (cl == NULL || sv == NULL || BIO_new_bio_pair(&b1, 0, &b2, 0) != 1)
        die("handshake setup");
    SSL_set_bio(cl, b1, b1);
    SSL_set_bio(sv, b2, b2);
    SSL_set_connect_state(cl);
    SSL_set_accept_state(sv);
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cl), "127.0.0.1") != 1 ||
        (again && c->session != NULL && SSL_set_session(cl, c->session) != 1))
        die("handshake setup");
    for (i = 0; i < 16 && !(SSL_is_init_finished(cl) && SSL_is_init_finished(sv)); i++) {
        SSL_do_handshake(cl);
        SSL_do_handshake(sv);
    }
    if (!SSL_is_init_finished(cl) || SSL_get_verify_result(cl) != X509_V_OK)
        die("the in-memory handshake failed");
    if (again) {
        (void)SSL_read(cl, &byte, 1); /* takes in the new ticket */
        if (c->session != NULL && !SSL_session_reused(cl))
            die("the in-memory handshake did not resume");
        SSL_SESSION_free(c->session);
        c->session = SSL_get1_session(cl);
    }
    SSL_shutdown(cl); /* else OpenSSL forgets the session */
    SSL_free(cl);
    SSL_free(sv);
}

static void op_handshake(void *a)
{
    handshake(a, false);
}

static void op_handshake_resumed(void *a)
{
    handshake(a, true);
}

static SSL_TICKET_RETURN renew_ticket(SSL *ssl, SSL_SESSION *session, const unsigned char *name,
                                      size_t name_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)ssl;
    (void)session;
    (void)name;
    (void)name_len;
    (void)arg;
    return status == SSL_TICKET_SUCCESS || status == SSL_TICKET_SUCCESS_RENEW
               ? SSL_TICKET_RETURN_USE_RENEW
               : SSL_TICKET_RETURN_IGNORE_RENEW;
}

static char url[256], ca_file[4200], data_dir[64];

/* Call the service as the bootstrap admin. */
static json_t *admin(const char *method, const char *path, json_t *body, const char *token)
{
    char u[512], *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    rp_http_opts_t o = {ca_file, token, "application/json", 60, NULL, NULL, NULL, NULL, 0};
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

/* CPU seconds (user + system) a process has used so far. */

/* The CPU seconds every replica has used so far. */

/* ---- the reference: nginx doing full TLS 1.3 handshakes, driven by openssl s_time ---- */

static char nginx_dir[128];
static pid_t nginx_pid = -1;
static int nginx_port;

struct ref_result {
    double rate, server_cpu, client_cpu; /* handshakes/s; CPU seconds per handshake */
    size_t handshakes;
};

/* A free port on loopback (the kernel's pick; nginx takes it a moment later). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), p = 0;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        p = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    if (p == 0)
        die("no free port for nginx");
    return p;
}

static bool port_open(int p)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)p)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

/* nginx in the foreground (daemon off), its prefix and files in a directory of its own, the
 * service's certificate and key, as many workers as cores (the service has one per core). */
static void nginx_start(long cores)
{
    char conf[4096], path[256];
    FILE *f;

    snprintf(nginx_dir, sizeof(nginx_dir), "%s-nginx", data_dir);
    snprintf(path, sizeof(path), "%s/tmp", nginx_dir);
    if (mkdir(nginx_dir, 0755) != 0 || mkdir(path, 0755) != 0)
        die("cannot make nginx's directory");
    nginx_port = free_port();
    snprintf(conf, sizeof(conf),
             "daemon off;\n%s"
             "worker_processes %ld;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
             "events { worker_connections 4096; }\n"
             "http {\n  access_log off;\n"
             "  client_body_temp_path %s/tmp;\n  proxy_temp_path %s/tmp;\n"
             "  fastcgi_temp_path %s/tmp;\n  uwsgi_temp_path %s/tmp;\n  scgi_temp_path %s/tmp;\n"
             "  server {\n    listen 127.0.0.1:%d ssl;\n"
             "    ssl_certificate %s/server.pem;\n    ssl_certificate_key %s/server.key;\n"
             "    ssl_protocols TLSv1.3;\n    ssl_session_tickets off;\n"
             "    ssl_session_cache off;\n"
             "    location / { return 200 \"ok\\n\"; }\n  }\n}\n",
             geteuid() == 0 ? "user nobody nogroup;\n" : "", cores, nginx_dir, nginx_dir, nginx_dir,
             nginx_dir, nginx_dir, nginx_dir, nginx_dir, nginx_port, data_dir, data_dir);
    snprintf(path, sizeof(path), "%s/nginx.conf", nginx_dir);
    f = fopen(path, "w");
    if (f == NULL || fputs(conf, f) == EOF || fclose(f) != 0)
        die("cannot write nginx.conf");
    nginx_pid = fork();
    if (nginx_pid == 0) {
        char log[256];
        int out;

        snprintf(log, sizeof(log), "%s/nginx.out", nginx_dir);
        out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execlp("nginx", "nginx", "-p", nginx_dir, "-c", path, "-e", "stderr", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1200 && !port_open(nginx_port); i++) {
        if (waitpid(nginx_pid, NULL, WNOHANG) == nginx_pid)
            die("nginx did not start (scripts/install-deps installs it; its log is nginx.out)");
        usleep(50000);
    }
    if (!port_open(nginx_port))
        die("nginx did not start");
}

static void nginx_stop(void)
{
    char cmd[300];

    if (nginx_pid > 0) {
        kill(nginx_pid, SIGQUIT);
        waitpid(nginx_pid, NULL, 0);
        nginx_pid = -1;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", nginx_dir);
    if (nginx_dir[0] != '\0' && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", nginx_dir);
    nginx_dir[0] = '\0';
}

/* The CPU seconds a process and its children (nginx's workers, PostgreSQL's backends) have used
 * so far; 0 for none. */

static double nginx_cpu(void)
{
    return sim_cpu_tree(nginx_pid);
}

/* PostgreSQL's postmaster, when the database is a socket directory holding its cluster as
 * tests/tools/pg makes it (HOST/data/postmaster.pid): its CPU and its backends' is the service's
 * too. 0 when unknown. */

static double children_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* `inflight` s_time processes at once, each making full handshakes one after the other for
 * `duration` seconds (whole seconds: s_time's unit); the handshakes they report, over the time
 * from the first start to the last exit. */
static void nginx_phase(double duration, struct ref_result *r)
{
    pid_t *kids = calloc(inflight, sizeof(*kids));
    char connect[32], secs[16], out[256], line[512];
    double t0, n0, c0;
    size_t total = 0;

    if (kids == NULL)
        die("out of memory");
    snprintf(connect, sizeof(connect), "127.0.0.1:%d", nginx_port);
    snprintf(secs, sizeof(secs), "%d", duration < 1 ? 1 : (int)(duration + 0.5));
    n0 = nginx_cpu();
    c0 = children_cpu();
    t0 = sim_now();
    for (size_t i = 0; i < inflight; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            int fd, null = open("/dev/null", O_WRONLY);

            snprintf(out, sizeof(out), "%s/s_time.%zu", nginx_dir, i);
            fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || null < 0)
                _exit(127);
            dup2(fd, 1);
            dup2(null, 2);
            execlp("openssl", "openssl", "s_time", "-connect", connect, "-new", "-tls1_3", "-www",
                   "/", "-time", secs, "-CAfile", ca_file, "-verify", "2", (char *)NULL);
            _exit(127);
        }
        if (kids[i] < 0)
            die("fork");
    }
    for (size_t i = 0; i < inflight; i++) {
        int status;

        if (waitpid(kids[i], &status, 0) != kids[i] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            die("openssl s_time failed");
    }
    r->rate = sim_now() - t0; /* the elapsed time, for now */
    r->server_cpu = nginx_cpu() - n0;
    r->client_cpu = children_cpu() - c0;
    for (size_t i = 0; i < inflight; i++) {
        FILE *f;
        size_t n = 0;
        long real;

        snprintf(out, sizeof(out), "%s/s_time.%zu", nginx_dir, i);
        f = fopen(out, "r");
        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
            if (sscanf(line, "%zu connections in %ld real seconds", &n, &real) == 2)
                break;
        if (f != NULL)
            fclose(f);
        if (n == 0)
            die("openssl s_time reported no connection to nginx");
        total += n;
    }
    r->handshakes = total;
    r->rate = (double)total / r->rate;
    r->server_cpu /= (double)total;
    r->client_cpu /= (double)total;
    free(kids);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), sim_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Each round's figures, and the median over the rounds of one quantity of theirs. */
static struct sim_result *firsts, *dailies;
static struct ref_result *refs;

/* The quantities the summary takes the median of, over the rounds. */
enum quantity {
    Q_FIRST_RATIO,
    Q_DAILY_RATIO,
    Q_NGINX_RATE,
    Q_FIRST_CPU,
    Q_DAILY_CPU,
    Q_NGINX_CPU,
    Q_FIRST_CLIENT,
    Q_DAILY_CLIENT,
    Q_NGINX_CLIENT,
    Q_FIRST_DB,
    Q_DAILY_DB
};

static double quantity(size_t r, enum quantity q)
{
    switch (q) {
    case Q_FIRST_RATIO: return firsts[r].rate / refs[r].rate;
    case Q_DAILY_RATIO: return dailies[r].rate / refs[r].rate;
    case Q_NGINX_RATE: return refs[r].rate;
    case Q_FIRST_CPU: return firsts[r].server_cpu;
    case Q_DAILY_CPU: return dailies[r].server_cpu;
    case Q_NGINX_CPU: return refs[r].server_cpu;
    case Q_FIRST_CLIENT: return firsts[r].client_cpu;
    case Q_DAILY_CLIENT: return dailies[r].client_cpu;
    case Q_NGINX_CLIENT: return refs[r].client_cpu;
    case Q_FIRST_DB: return firsts[r].db_cpu;
    case Q_DAILY_DB: return dailies[r].db_cpu;
    }
    return 0;
}

static double median_of(double *v, enum quantity q)
{
    for (size_t r = 0; r < rounds; r++)
        v[r] = quantity(r, q);
    return median(v, rounds);
}

static void print_phase(const char *name, const struct sim_result *r, double bound,
                        double tls_bound)
{
    printf("  %s\n", name);
    printf("    attestations:        %zu passed, %zu failed; %.0f%% on a resumed TLS "
           "session\n",
           r->passed, r->failed, 100.0 * r->resumed);
    printf("    throughput:          %.0f attestations/s\n", r->rate);
    printf("    latency:             p50 %.1f ms, p99 %.1f ms\n", r->p50 * 1e3, r->p99 * 1e3);
    printf("    CPU per attestation: service %.0f us, simulated device %.0f us",
           r->server_cpu * 1e6, r->client_cpu * 1e6);
    if (db_pid > 0)
        printf(", PostgreSQL %.0f us", r->db_cpu * 1e6);
    printf("\n");
    printf("    crypto bound:        %.0f attestations/s; ratio %.3f\n", bound, r->rate / bound);
    printf("    with TLS's own cost: %.0f attestations/s; ratio %.3f\n", tls_bound,
           r->rate / tls_bound);
}

/* On any exit, die() included: no server or nginx left running, no directory left behind. */
static void stop_all(void)
{
    char cmd[512];

    nginx_stop();
    for (size_t i = 0; i < nreplicas; i++) {
        sim_server_stop(servers[i]);
        servers[i] = 0;
    }
    if (data_dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'.[0-9]*", data_dir, data_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", data_dir);
        data_dir[0] = '\0';
    }
}

/* Start replica i on the database: its own data directory (the first one's secrets copied into
 * it for the others), its own port. */
static void start_replica(size_t i, const char *server_bin)
{
    char dir[96];

    if (i == 0) {
        snprintf(dir, sizeof(dir), "%s", data_dir);
    } else {
        char cmd[512];

        snprintf(dir, sizeof(dir), "%s.%zu", data_dir, i);
        snprintf(cmd, sizeof(cmd),
                 "umask 077 && mkdir '%s' && cp -p '%s/master.key' '%s/server-ca.pem' "
                 "'%s/server-ca.key' '%s/'",
                 dir, data_dir, data_dir, data_dir, dir);
        if (system(cmd) != 0)
            die("cannot copy the secrets to the second replica");
    }
    servers[i] = sim_server_start(server_bin, dir, database, server_threads, &ports[i]);
}

int main(int argc, char **argv)
{
    char server_bin[4096], tok[256], tenant[64], path[4200];
    struct crypto_arg ca = {0};
    uint8_t *data;
    size_t data_len;
    double t_sign, t_verify, t_x, t_hs, t_hs_resumed, full_bound, daily_bound, tls_bound,
        tls_daily_bound;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct sim_result first, daily;
    json_t *j, *ids;
    size_t failures = 0, passes = 0;
    bool nonce_flow = false;
    const char *usage = "usage: bench-attest [--devices N] [--inflight N] [--seconds S] "
                        "[--rounds R] [--database TARGET] [--replicas 1|2] [--server-threads N] "
                        "[--client-threads N] [--flow bound|nonce]";

    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            die(usage);
        if (strcmp(argv[i], "--devices") == 0)
            ndevices = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--inflight") == 0)
            inflight = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--database") == 0)
            database = argv[i + 1];
        else if (strcmp(argv[i], "--replicas") == 0)
            nreplicas = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--server-threads") == 0)
            server_threads = argv[i + 1];
        else if (strcmp(argv[i], "--client-threads") == 0)
            nloops = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--flow") == 0 && strcmp(argv[i + 1], "bound") == 0)
            nonce_flow = false;
        else if (strcmp(argv[i], "--flow") == 0 && strcmp(argv[i + 1], "nonce") == 0)
            nonce_flow = true;
        else
            die(usage);
    }
    if (ndevices == 0 || inflight == 0 || seconds <= 0 || nloops == 0 || rounds == 0 ||
        nreplicas == 0 || nreplicas > MAX_REPLICAS)
        die(usage);
    if (nreplicas > 1 && database == NULL)
        die("--replicas 2 needs a shared --database (PostgreSQL)");
    if (inflight < nloops)
        nloops = inflight;
    signal(SIGPIPE, SIG_IGN);

    /* The servers: this build's, beside this program, one worker per core each. */
    snprintf(server_bin, sizeof(server_bin), "%s", argv[0]);
    *strrchr(server_bin, '/') = '\0';
    strcat(server_bin, "/rampart-server");
    snprintf(data_dir, sizeof(data_dir), "/tmp/rampart-bench-attest-XXXXXX");
    if (mkdtemp(data_dir) == NULL) {
        data_dir[0] = '\0';
        die("mkdtemp");
    }
    atexit(stop_all);
    for (size_t i = 0; i < nreplicas; i++)
        start_replica(i, server_bin);
    db_pid = sim_database_pid(database);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", ports[0]);
    snprintf(ca_file, sizeof(ca_file), "%s/server-ca.pem", data_dir);
    snprintf(path, sizeof(path), "%s/admin.token", data_dir);
    if (rp_read_file(path, sizeof(tok) - 1, &data, &data_len) != RP_OK)
        die("no admin token");
    snprintf(tok, sizeof(tok), "%.*s", (int)strcspn((char *)data, "\n"), data);
    free(data);
    /* The devices' TLS: one context, the service CA as the only anchor. */
    sim_init(ca_file);

    /* A tenant and its devices, claimed. */
    j = admin("POST", "/api/v1/tenants", json_pack("{s:s}", "name", "bench"), tok);
    if (j == NULL)
        die("cannot create the tenant");
    snprintf(tenant, sizeof(tenant), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    /* The simulated devices measure no components: their tenant's policy must say it allows
     * that (the default requires one). */
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/policy", tenant);
    j = admin("PUT", path, json_pack("{s:b}", "require_components", 0), tok);
    if (j == NULL)
        die("cannot set the tenant's policy");
    json_decref(j);
    devices = calloc(ndevices, sizeof(*devices));
    if (devices == NULL)
        die("out of memory");
    ids = json_array();
    for (size_t i = 0; i < ndevices; i++) {
        sim_device_new(&devices[i]);
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

    /* The references, measured now, on this machine, one core at a time. */
    ca.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ca.x2 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    ca.client = SSL_CTX_new(TLS_client_method());
    if (ca.ec == NULL || ca.x2 == NULL || ca.client == NULL ||
        SSL_CTX_load_verify_locations(ca.client, ca_file, NULL) != 1)
        die("reference setup");
    SSL_CTX_set_verify(ca.client, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ca.client, SSL_SESS_CACHE_OFF);
    for (int i = 0; i < 2; i++) {
        SSL_CTX *sv = SSL_CTX_new(TLS_server_method());
        char cert[4200], key[4200];

        snprintf(cert, sizeof(cert), "%s/server.pem", data_dir);
        snprintf(key, sizeof(key), "%s/server.key", data_dir);
        if (sv == NULL || SSL_CTX_use_certificate_chain_file(sv, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(sv, key, SSL_FILETYPE_PEM) != 1)
            die("reference setup");
        /* As the service: one ticket, renewed at each resumption. */
        SSL_CTX_set_session_cache_mode(sv, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(sv, i == 0 ? 0 : 1);
        if (i == 1 && SSL_CTX_set_session_ticket_cb(sv, NULL, renew_ticket, NULL) != 1)
            die("reference setup");
        *(i == 0 ? &ca.server : &ca.server_resume) = sv;
    }
    t_sign = per_op(op_sign, &ca, 0.5);
    t_verify = per_op(op_verify, &ca, 0.5);
    t_x = per_op(op_x25519, &ca, 0.5) / 2;
    t_hs = per_op(op_handshake, &ca, 0.5);
    t_hs_resumed = per_op(op_handshake_resumed, &ca, 0.5);
    full_bound = (double)cores / (3 * t_sign + 3 * t_verify + 4 * t_x);
    daily_bound = (double)cores / (2 * t_sign + 1 * t_verify + 4 * t_x);
    /* The handshake in memory has what the handshake needs (first contact: the TLS server's
     * signature, the device's two verifications, four X25519; resumed: four X25519) and
     * whatever else OpenSSL spends on it; the rest of the flow needs two signatures and one
     * verification. */
    tls_bound = (double)cores / (t_hs + 2 * t_sign + t_verify);
    tls_daily_bound = (double)cores / (t_hs_resumed + 2 * t_sign + t_verify);

    firsts = calloc(rounds, sizeof(*firsts));
    dailies = calloc(rounds, sizeof(*dailies));
    refs = calloc(rounds, sizeof(*refs));
    if (firsts == NULL || dailies == NULL || refs == NULL)
        die("out of memory");
    nginx_start(cores);
    printf("attest: %zu devices, %zu attestations in flight, %s, %zu replica%s, %ld cores, "
           "%zu rounds of %.0f s each, %s\n",
           ndevices, inflight,
           database == NULL                        ? "SQLite"
           : strncmp(database, "postgres", 8) == 0 ? "PostgreSQL"
                                                   : "SQLite",
           nreplicas, nreplicas > 1 ? "s" : "", cores, rounds, seconds,
           nonce_flow ? "the nonce flow (a nonce, then the evidence: two requests)"
                      : "evidence bound to its TLS connection (one request)");
    printf("  reference: nginx %s, TLS 1.3 full handshakes (P-256 certificate, no resumption, a "
           "3-byte response),\n             %zu `openssl s_time -new` at once\n",
           "(a worker per core)", inflight);
    fflush(stdout);
    /* Interleaved: first contact, nginx, daily; then again. First contact takes devices that
     * have not attested yet (as long as there are: at most `ndevices` over all rounds would keep
     * it so; past that they are full handshakes all the same, on devices the service knows). */
    for (size_t r = 0; r < rounds; r++) {
        struct sim_fleet fleet = {devices, ndevices,  inflight, nloops,    ports,
                                  servers, nreplicas, db_pid,   nonce_flow};

        sim_phase(&fleet, false, seconds, ndevices, &firsts[r]);
        nginx_phase(seconds, &refs[r]);
        sim_phase(&fleet, true, seconds, 0, &dailies[r]);
        printf("  round %zu: first contact %.0f/s, nginx %.0f handshakes/s, daily %.0f/s "
               "(%.0f%% resumed); CPU us per op: first %.0f, daily %.0f, nginx %.0f\n",
               r + 1, firsts[r].rate, refs[r].rate, dailies[r].rate, 100.0 * dailies[r].resumed,
               firsts[r].server_cpu * 1e6, dailies[r].server_cpu * 1e6, refs[r].server_cpu * 1e6);
        fflush(stdout);
        failures += firsts[r].failed + dailies[r].failed;
        passes += firsts[r].passed + dailies[r].passed;
    }
    stop_all();

    {
        double *v = calloc(rounds, sizeof(double)), rf, rd, nr, cf, cd, cn, ccf, ccd, ccn, df, dd;

        if (v == NULL)
            die("out of memory");
        rf = median_of(v, Q_FIRST_RATIO);
        rd = median_of(v, Q_DAILY_RATIO);
        nr = median_of(v, Q_NGINX_RATE);
        cf = median_of(v, Q_FIRST_CPU);
        cd = median_of(v, Q_DAILY_CPU);
        cn = median_of(v, Q_NGINX_CPU);
        ccf = median_of(v, Q_FIRST_CLIENT);
        ccd = median_of(v, Q_DAILY_CLIENT);
        ccn = median_of(v, Q_NGINX_CLIENT);
        df = median_of(v, Q_FIRST_DB);
        dd = median_of(v, Q_DAILY_DB);
        /* the round whose first contact is the median one, for the detailed figures */
        first = firsts[0];
        daily = dailies[0];
        for (size_t r = 0; r < rounds; r++) {
            if (firsts[r].rate / refs[r].rate == rf)
                first = firsts[r];
            if (dailies[r].rate / refs[r].rate == rd)
                daily = dailies[r];
        }
        printf("  references, one core: ECDSA P-256 sign %.1f us, verify %.1f us, X25519 %.1f us;\n"
               "                        a TLS 1.3 handshake in memory, both sides: full %.0f us, "
               "resumed %.0f us\n",
               t_sign * 1e6, t_verify * 1e6, t_x * 1e6, t_hs * 1e6, t_hs_resumed * 1e6);
        print_phase("first contact (a full TLS handshake each), the median round:", &first,
                    full_bound, tls_bound);
        print_phase("daily (each device resumes its TLS session), the median round:", &daily,
                    daily_bound, tls_daily_bound);
        printf("  nginx: %.0f handshakes/s (median); CPU per handshake: nginx %.0f us, s_time "
               "%.0f us\n",
               nr, cn * 1e6, ccn * 1e6);
        printf("  CPU per operation (median): service %.0f us first contact, %.0f us daily; "
               "nginx %.0f us a handshake\n",
               cf * 1e6, cd * 1e6, cn * 1e6);
        printf("  CPU of the clients (median): devices %.0f us first contact, %.0f us daily; "
               "s_time %.0f us\n",
               ccf * 1e6, ccd * 1e6, ccn * 1e6);
        if (db_pid > 0)
            printf("  CPU of PostgreSQL (median; part of the service's cost): %.0f us first "
                   "contact, %.0f us daily\n",
                   df * 1e6, dd * 1e6);
        printf("attest: first contact %.2f x nginx's handshakes/s (goal >= 1.0 on SQLite), daily "
               "%.2f x (goal >= 1.5); CPU per attestation %.2f x / %.2f x nginx's per "
               "handshake%s\n",
               rf, rd, (cf + df) / cn, (cd + dd) / cn,
               db_pid > 0 ? " (the service's and PostgreSQL's)" : "");
        free(v);
    }
    for (size_t i = 0; i < ndevices; i++) {
        sim_device_free(&devices[i]);
    }
    free(devices);
    free(firsts);
    free(dailies);
    free(refs);
    EVP_PKEY_free(ca.ec);
    EVP_PKEY_free(ca.x2);
    SSL_SESSION_free(ca.session);
    SSL_CTX_free(ca.server);
    SSL_CTX_free(ca.server_resume);
    SSL_CTX_free(ca.client);
    return failures > passes / 100 ? 1 : 0;
}
