/*
 * rampart-server: the security service. It prepares its data directory on first start
 * (database, TLS identity, master key, bootstrap admin token), then serves HTTPS with one worker
 * thread per core until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/thread.h>
#include <openssl/rand.h>

#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "listen.h"
#include "reports.h"
#include "server.h"
#include "threat.h"

SSL_CTX *rp_server_tls_context(const char *data_dir, const uint8_t master[RP_MASTER_KEY_LEN]);
void rp_server_tls_forget(void);
rp_err_t rp_worker_init(rp_worker_t *w, rp_server_t *srv, int listen_fd);
void rp_worker_free(rp_worker_t *w);
rp_err_t rp_token_new(char *secret, size_t cap, uint8_t hash[RP_SHA256_LEN]);

#define MAX_WORKERS 64

enum { OPT_ROTATE = 256, OPT_ROUTES, OPT_DINFOD, OPT_HOOKS }; /* options with no short form */
enum { OPT_CDIR = 320 };                                      /* --console-dir */

static const char usage[] =
    "Usage: rampart-server --data-dir DIR [--listen HOST:PORT] [options]\n"
    "\n"
    "The Rampart security service: attests devices, issues 24-hour device certificates from\n"
    "tenant CAs, and serves the operator API, over HTTPS.\n"
    "\n"
    "  --data-dir DIR      where everything is kept; made and initialised on first start\n"
    "  --listen HOST:PORT  address to serve on (default 127.0.0.1:8443; port 0 picks one)\n"
    "  --hostname NAMES    extra names for the server certificate (comma-separated)\n"
    "  --threads N         worker threads (default: one per core)\n"
    "  --port-file FILE    write the port served on to FILE once ready\n"
    "  --master-key FILE   the key that encrypts tenant CA keys (default DIR/master.key)\n"
    "  --nonce-lifetime S  seconds an attestation nonce stays usable (default 60)\n"
    "  --rate-limit N      attestation requests a second from one address, on average (bursts\n"
    "                      of 10 x N, at least 1; fractions allowed); 0 lifts the limit\n"
    "                      (default 50)\n"
    "  --unclaimed-rate N  attestations a second of devices no tenant has claimed, all of them\n"
    "                      together (bursts of 10 x N, at least 1; fractions allowed); 0 lifts\n"
    "                      the limit (default 20)\n"
    "  --max-connections N connections open at once; more are refused after their ClientHello\n"
    "                      (default 10000, less if the file descriptor limit is lower)\n"
    "  --max-connections-per-address N\n"
    "                      connections open at once from one client address (an IPv6 /64);\n"
    "                      more are closed as soon as they are accepted; 0 lifts the cap\n"
    "                      (default 64)\n"
    "  --request-deadline S\n"
    "                      seconds a client has to send a whole request - TLS handshake,\n"
    "                      headers and body - from its connection or from the end of the\n"
    "                      previous answer; then the connection is closed (default 60)\n"
    "  --debuginfod-url URL\n"
    "                      name crash frames whose build ID no tenant uploaded symbols for\n"
    "                      with debug files from this debuginfod server, fetched in the\n"
    "                      background and kept in DIR/debuginfod (default: off)\n"
    "  --webhook-allow-private\n"
    "                      let tenants' webhooks reach loopback, link-local and private\n"
    "                      addresses (refused by default: a webhook URL must not reach\n"
    "                      the service's own network); for tests and labs only\n"
    "  --console-dir DIR   the web console's files, served under /console/ (default:\n"
    "                      ../share/rampart/console beside this program's directory)\n"
    "  --routes            print every route (method, path, who may call it) as JSON lines,\n"
    "                      and exit\n"
    "  --verbose           debug logging\n"
    "  --rotate-admin-token  write a new system token to DIR/admin.token, revoke every other\n"
    "                      system token, and exit (the service may be running); refused\n"
    "                      where DIR holds no database or no system token to replace\n"
    "\n"
    "On first start it writes DIR/server-ca.pem (the certificate clients trust) and\n"
    "DIR/admin.token (a bootstrap system token, 0600). No other system token is ever made but\n"
    "by --rotate-admin-token (or at a start that finds none at all).\n";

static struct event_base *main_base;

/* Where the console's files are: --console-dir, or ../share/rampart/console from the program's
 * own directory (build/bin finds build/share, /usr/bin finds /usr/share). Resolved once, so that
 * each file served can be checked to lie inside it; missing, the console answers 404 and this
 * says so once. */
static void console_init(rp_server_t *srv, const char *dir)
{
    char self[PATH_MAX], wanted[PATH_MAX + 32], *slash;
    ssize_t n;
    struct stat sb;

    srv->console_dir[0] = '\0';
    if (dir == NULL) {
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0) {
            rp_log_warn("console: cannot find this program's directory: use --console-dir");
            return;
        }
        self[n] = '\0';
        if ((slash = strrchr(self, '/')) != NULL)
            *slash = '\0';
        snprintf(wanted, sizeof(wanted), "%s/../share/rampart/console", self);
    } else {
        snprintf(wanted, sizeof(wanted), "%s", dir);
    }
    errno = 0;
    if (realpath(wanted, srv->console_dir) == NULL || stat(srv->console_dir, &sb) != 0 ||
        !S_ISDIR(sb.st_mode)) {
        rp_log_warn("console: no directory %s (%s): /console/ answers 404", wanted,
                    errno != 0 ? strerror(errno) : "not a directory");
        srv->console_dir[0] = '\0';
        return;
    }
    rp_log_info("console: serving %s under /console/", srv->console_dir);
}

static void on_signal(evutil_socket_t sig, short events, void *arg)
{
    (void)events;
    (void)arg;
    rp_log_info("signal %d: stopping", (int)sig);
    event_base_loopbreak(main_base);
}

static void *worker_main(void *arg)
{
    rp_worker_t *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

/* A new system token's secret in a temporary beside DIR/admin.token (0600), for the caller to
 * commit (rename over it) or abort. OUT: *f, hash. */
static rp_err_t new_admin_token(const char *path, rp_atomic_file_t *f, uint8_t hash[RP_SHA256_LEN])
{
    char secret[128];
    rp_err_t err = rp_token_new(secret, sizeof(secret), hash);

    if (err == RP_OK)
        err = rp_atomic_begin(f, path, 0600, 0);
    if (err == RP_OK) {
        strcat(secret, "\n");
        err = rp_atomic_write(f, secret, strlen(secret));
        if (err != RP_OK)
            rp_atomic_abort(f);
    }
    rp_wipe(secret, sizeof(secret));
    return err;
}

/*
 * DIR/admin.token is written by one process at a time: a rotation and another rotation, or the
 * bootstrap at a first start, each write the file and change the system tokens in two steps, and
 * interleaved they could leave in the file a token the other revoked. An exclusive lock on
 * DIR/admin.token.lock (flock: released when the process ends, however it ends) is held across
 * both steps. Returns the descriptor to close (which unlocks), or -1.
 */
static int admin_token_lock(const char *data_dir)
{
    char path[PATH_MAX + 16];
    int fd;

    snprintf(path, sizeof(path), "%s/admin.token.lock", data_dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rp_log_error("%s: %s", path, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            rp_log_error("cannot lock %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

/*
 * The bootstrap system token: made only when the database has no system token at all (first
 * start, or every one was revoked), and written to DIR/admin.token. Deleting the file makes no
 * second one: rotation is explicit (--rotate-admin-token). Two starts racing on one database make
 * one. (A crash between the database and the file leaves a token nobody has; the next start says
 * so, and --rotate-admin-token replaces it.)
 */
static rp_err_t bootstrap_token(rp_server_t *srv, rp_store_t *store)
{
    char path[PATH_MAX + 16];
    uint8_t hash[RP_SHA256_LEN];
    rp_atomic_file_t f;
    rp_token_t tok;
    bool made = false;
    int lock;
    rp_err_t err;

    snprintf(path, sizeof(path), "%s/admin.token", srv->data_dir);
    lock = admin_token_lock(srv->data_dir);
    if (lock < 0)
        return RP_ERR_IO;
    err = new_admin_token(path, &f, hash);
    if (err != RP_OK) {
        close(lock);
        return err;
    }
    err = rp_store_system_token_first(store, hash, &tok, &made);
    rp_wipe(hash, sizeof(hash));
    if (err == RP_OK && made) {
        err = rp_atomic_commit(&f, 0);
        if (err != RP_OK)
            rp_log_error("system token %s was made but %s could not be written: make another "
                         "with --rotate-admin-token",
                         tok.id, path);
    }
    if (err != RP_OK || !made)
        rp_atomic_abort(&f);
    close(lock);
    if (err != RP_OK)
        return err;
    if (!made) {
        if (access(path, F_OK) != 0)
            rp_log_info("%s is gone and no new system token is made: use the one you kept, or "
                        "make a new one with rampart-server --data-dir %s --rotate-admin-token",
                        path, srv->data_dir);
        return RP_OK;
    }
    rp_log_info("made the bootstrap system token %s in %s (0600): it can create tenants and "
                "tokens; keep it secret",
                tok.id, path);
    return RP_OK;
}

static void count_token(void *ctx, const rp_token_t *t)
{
    (void)t;
    (*(long *)ctx)++;
}

/*
 * --rotate-admin-token: a new system token in DIR/admin.token, then every other one revoked, in
 * one transaction. The file first: should the database step fail, the old tokens still work and
 * running it again finishes the job. Only where there is a token to replace: a directory without
 * a database is a typo (a rotation after a leak that "succeeded" there would leave the leaked
 * token working), and a database without system tokens gets one at the next start.
 */
static rp_err_t rotate_admin_token(const char *data_dir)
{
    char path[PATH_MAX + 16], db[PATH_MAX + 16];
    uint8_t hash[RP_SHA256_LEN];
    rp_store_t *store = NULL;
    rp_atomic_file_t f;
    rp_token_t tok;
    long existing = 0;
    int revoked = 0, lock;
    rp_err_t err;

    snprintf(db, sizeof(db), "%s/rampart.db", data_dir);
    if (access(db, F_OK) != 0) {
        rp_log_error("cannot rotate the system token: %s holds no Rampart database (%s: %s); "
                     "nothing was done. Is --data-dir the service's data directory?",
                     data_dir, db, strerror(errno));
        return RP_ERR_NOT_FOUND;
    }
    lock = admin_token_lock(data_dir);
    if (lock < 0)
        return RP_ERR_IO;
    err = rp_store_open(data_dir, &store);
    if (err == RP_OK)
        err = rp_store_token_list(store, NULL, count_token, &existing);
    if (err == RP_OK && existing == 0) {
        rp_log_error("cannot rotate the system token: the database in %s has no system token to "
                     "replace; nothing was done (the service makes one in %s/admin.token when it "
                     "starts and finds none)",
                     data_dir, data_dir);
        err = RP_ERR_NOT_FOUND;
    } else if (err != RP_OK) {
        rp_log_error("cannot rotate the system token: %s cannot be read: %s", db, rp_strerror(err));
    }
    if (err != RP_OK) {
        rp_store_close(store);
        close(lock);
        return err;
    }
    snprintf(path, sizeof(path), "%s/admin.token", data_dir);
    err = new_admin_token(path, &f, hash);
    if (err == RP_OK) {
        err = rp_atomic_commit(&f, 0);
        if (err != RP_OK)
            rp_atomic_abort(&f);
    }
    if (err == RP_OK)
        err = rp_store_system_token_rotate(store, hash, &tok, &revoked);
    rp_wipe(hash, sizeof(hash));
    rp_store_close(store);
    close(lock);
    if (err != RP_OK) {
        rp_log_error("cannot rotate the system token: %s (nothing was revoked; %s may hold a "
                     "token that does not work yet: run this again)",
                     rp_strerror(err), path);
        return err;
    }
    rp_log_info("new system token %s in %s; %d other system token(s) revoked", tok.id, path,
                revoked);
    return RP_OK;
}

static bool split_listen(const char *listen, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon;

    if (listen[0] == '[') { /* [::1]:8443 */
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            return false;
        snprintf(host, hcap, "%.*s", (int)(close - listen - 1), listen + 1);
        snprintf(port, pcap, "%s", close + 2);
        return true;
    }
    colon = strrchr(listen, ':');
    if (colon == NULL)
        return false;
    snprintf(host, hcap, "%.*s", (int)(colon - listen), listen);
    snprintf(port, pcap, "%s", colon + 1);
    return host[0] != '\0' && port[0] != '\0';
}

/* A rate limit's value: requests a second, 0 to 1000000, fractions allowed; -1 if it is not. */
static double parse_rate(const char *s)
{
    char *end;
    double v = strtod(s, &end);

    return end != s && *end == '\0' && v >= 0 && v <= 1000000 ? v : -1;
}

/* Bursts of ten seconds' worth, and at least one request. */
static double burst_of(double rate)
{
    return rate < 0.1 ? 1.0 : 10.0 * rate;
}

/*
 * The connection limit, within what the process may open: the soft file descriptor limit is
 * raised to the hard one, a reserve is kept for each worker (database, epoll, listener) and the
 * rest, and each connection may hold two (its socket, and an image file it is being sent).
 */
static int connection_limit(long wanted, long nthreads)
{
    struct rlimit rl;
    rlim_t reserve = 64 + 16 * (rlim_t)nthreads, fit;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return (int)wanted;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t cur = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = cur;
    }
    if (rl.rlim_cur == RLIM_INFINITY || 2 * (rlim_t)wanted + reserve <= rl.rlim_cur)
        return (int)wanted;
    fit = rl.rlim_cur > reserve + 2 ? (rl.rlim_cur - reserve) / 2 : 1;
    rp_log_warn("at most %llu connections: the file descriptor limit is %llu",
                (unsigned long long)fit, (unsigned long long)rl.rlim_cur);
    return (int)fit;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir",                    required_argument, NULL, 'd'       },
        {"listen",                      required_argument, NULL, 'l'       },
        {"hostname",                    required_argument, NULL, 'n'       },
        {"threads",                     required_argument, NULL, 't'       },
        {"port-file",                   required_argument, NULL, 'p'       },
        {"master-key",                  required_argument, NULL, 'm'       },
        {"nonce-lifetime",              required_argument, NULL, 'N'       },
        {"rate-limit",                  required_argument, NULL, 'R'       },
        {"unclaimed-rate",              required_argument, NULL, 'U'       },
        {"max-connections",             required_argument, NULL, 'C'       },
        {"max-connections-per-address", required_argument, NULL, 'A'       },
        {"request-deadline",            required_argument, NULL, 'D'       },
        {"verbose",                     no_argument,       NULL, 'v'       },
        {"rotate-admin-token",          no_argument,       NULL, OPT_ROTATE},
        {"routes",                      no_argument,       NULL, OPT_ROUTES},
        {"debuginfod-url",              required_argument, NULL, OPT_DINFOD},
        {"webhook-allow-private",       no_argument,       NULL, OPT_HOOKS },
        {"console-dir",                 required_argument, NULL, OPT_CDIR  },
        {"help",                        no_argument,       NULL, 'h'       },
        {"version",                     no_argument,       NULL, 'V'       },
        {NULL,                          0,                 NULL, 0         },
    };
    const char *data_dir = NULL, *listen = "127.0.0.1:8443", *hostnames = NULL;
    const char *debuginfod = NULL, *console_dir = NULL;
    const char *port_file = NULL, *master_path = NULL;
    long max_connections = 10000, per_address = 64, deadline = 60;
    double rate_limit = 50, unclaimed_rate = 20;
    char *end;
    static rp_server_t srv;
    static rp_worker_t workers[MAX_WORKERS];
    char host[256], port[16], path[PATH_MAX + 16], message[512];
    rp_listen_t claim = {.fd = -1, .claim_fd = -1, .serve_fd = -1};
    long nthreads = sysconf(_SC_NPROCESSORS_ONLN);
    struct event *sigint, *sigterm;
    rp_store_t *store = NULL;
    int c, fd, bound = 0, started = 0, status = 1;
    bool rotate = false;
    rp_err_t err;

    rp_log_init("rampart-server", RP_LOG_INFO);
    srv.nonce_lifetime = RP_NONCE_LIFETIME;
    pthread_mutex_init(&srv.crl_lock, NULL);
    /* A decoded batch of reports is about 700 KiB (room for 64 frames each), allocated and freed
     * per request: kept in the heap rather than mapped, and not trimmed away, so that it is not
     * faulted in afresh each time (a tenth of the decoder's time when it was). */
    if (mallopt(M_MMAP_THRESHOLD, 4 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, 32 << 20) != 1)
        rp_log_warn("malloc thresholds not set: batches may be faulted in each time");
    while ((c = getopt_long(argc, argv, "d:l:n:t:p:m:N:R:U:C:A:D:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data_dir = optarg; break;
        case 'l': listen = optarg; break;
        case 'n': hostnames = optarg; break;
        case 't': nthreads = strtol(optarg, NULL, 10); break;
        case 'p': port_file = optarg; break;
        case 'm': master_path = optarg; break;
        case 'N': srv.nonce_lifetime = (int)strtol(optarg, NULL, 10); break;
        case 'R': rate_limit = parse_rate(optarg); break;
        case 'U': unclaimed_rate = parse_rate(optarg); break;
        case 'C':
            max_connections = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0')
                max_connections = -1; /* refused below */
            break;
        case 'A':
            per_address = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0')
                per_address = -1;
            break;
        case 'D':
            deadline = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0')
                deadline = -1;
            break;
        case 'v': rp_log_set_level(RP_LOG_DEBUG); break;
        case OPT_ROTATE: rotate = true; break;
        case OPT_HOOKS: srv.webhook_allow_private = true; break;
        case 'h': fputs(usage, stdout); return 0;
        case 'V': printf("rampart-server %s\n", RP_VERSION); return 0;
        case OPT_ROUTES: rp_routes_print(stdout); return 0;
        case OPT_DINFOD: debuginfod = optarg; break;
        case OPT_CDIR: console_dir = optarg; break;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (data_dir == NULL || optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (srv.nonce_lifetime < 1 || srv.nonce_lifetime > 3600) {
        fprintf(stderr, "rampart-server: --nonce-lifetime must be 1 to 3600 seconds\n");
        return 2;
    }
    if (rate_limit < 0) {
        fprintf(stderr, "rampart-server: --rate-limit must be 0 to 1000000 (fractions allowed)\n");
        return 2;
    }
    if (unclaimed_rate < 0) {
        fprintf(stderr,
                "rampart-server: --unclaimed-rate must be 0 to 1000000 (fractions allowed)\n");
        return 2;
    }
    if (max_connections < 1 || max_connections > 1000000) {
        fprintf(stderr, "rampart-server: --max-connections must be 1 to 1000000\n");
        return 2;
    }
    if (per_address < 0 || per_address > 1000000) {
        fprintf(stderr,
                "rampart-server: --max-connections-per-address must be 0 (no cap) to 1000000\n");
        return 2;
    }
    if (deadline < 1 || deadline > 86400) {
        fprintf(stderr, "rampart-server: --request-deadline must be 1 to 86400 seconds\n");
        return 2;
    }
    if (nthreads < 1 || nthreads > MAX_WORKERS) {
        fprintf(stderr, "rampart-server: --threads must be 1 to %d\n", MAX_WORKERS);
        return 2;
    }
    if (!split_listen(listen, host, sizeof(host), port, sizeof(port))) {
        fprintf(stderr, "rampart-server: --listen wants HOST:PORT, not '%s'\n", listen);
        return 2;
    }
    if (strlen(data_dir) >= sizeof(srv.data_dir)) {
        fprintf(stderr, "rampart-server: --data-dir is too long\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    umask(077); /* the database holds token hashes and encrypted keys: owner only */
    strcpy(srv.data_dir, data_dir);
    if (rotate) /* (in a data directory that exists: a typo must not make one) */
        return rotate_admin_token(data_dir) == RP_OK ? 0 : 1;
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        rp_log_error("%s: %s", data_dir, strerror(errno));
        return 1;
    }
    if (evthread_use_pthreads() != 0) {
        rp_log_error("libevent has no thread support");
        return 1;
    }

    /* Prepare the data directory: identity, master key, database, bootstrap token. */
    err = rp_service_identity_init(data_dir, hostnames);
    if (err == RP_OK) {
        if (master_path == NULL) {
            snprintf(path, sizeof(path), "%s/master.key", data_dir);
            master_path = path;
        }
        err = rp_master_key_load(master_path, srv.master_key);
    }
    if (err == RP_OK)
        err = rp_store_open(data_dir, &store);
    if (err == RP_OK)
        err = bootstrap_token(&srv, store);
    rp_store_close(store);
    if (err != RP_OK) {
        rp_log_error("cannot prepare %s: %s", data_dir, rp_strerror(err));
        return 1;
    }
    console_init(&srv, console_dir);
    srv.ssl_ctx = rp_server_tls_context(data_dir, srv.master_key);
    if (srv.ssl_ctx == NULL)
        return 1;
    err = rp_master_derive(srv.master_key, "rampart attestation nonces", srv.nonce_key,
                           sizeof(srv.nonce_key));
    if (err == RP_OK)
        err = rp_recorder_start(data_dir, &srv.recorder);
    if (err == RP_OK)
        err = rp_reports_keyer_start(data_dir);
    if (err == RP_OK && debuginfod != NULL)
        err = rp_symbols_debuginfod_start(debuginfod, data_dir);
    if (err == RP_OK)
        err = rp_webhook_sender_start(&srv);
    if (err == RP_OK && srv.webhook_allow_private)
        rp_log_warn("--webhook-allow-private: webhooks may reach loopback, link-local and "
                    "private addresses (for tests and labs only)");
    if (err == RP_OK && rate_limit > 0)
        err = rp_ratelimit_new(rate_limit, burst_of(rate_limit), &srv.ratelimit);
    if (err == RP_OK && unclaimed_rate > 0)
        err = rp_ratelimit_new(unclaimed_rate, burst_of(unclaimed_rate), &srv.unclaimed);
    srv.max_connections = connection_limit(max_connections, nthreads);
    srv.max_per_address = (unsigned)per_address;
    srv.request_deadline = (int)deadline;
    /* Every connection the service may hold, and those over the limit being refused. */
    if (err == RP_OK && per_address > 0)
        err = rp_peers_new((size_t)srv.max_connections + 64 * (size_t)nthreads, &srv.peers);
    /* A 429 for unclaimed devices asks for the time one token takes to come back, at least 10 s. */
    snprintf(srv.unclaimed_retry, sizeof(srv.unclaimed_retry), "%ld",
             unclaimed_rate > 0 && unclaimed_rate < 0.1 ? (long)(1 / unclaimed_rate + 0.999) : 10L);
    if (err != RP_OK) {
        rp_log_error("cannot start: %s", rp_strerror(err));
        SSL_CTX_free(srv.ssl_ctx);
        return 1;
    }

    /* One listening socket per worker on the same port (SO_REUSEPORT), which no process of
     * another data directory may share (listen.h). */
    err = rp_listen_claim(data_dir, host, port, &claim, message, sizeof(message));
    if (err != RP_OK) {
        rp_log_error("%s", message);
        goto out;
    }
    bound = claim.port;
    for (long i = 0; i < nthreads; i++) {
        fd = i == 0 ? claim.fd : rp_listen_another(&claim);
        claim.fd = -1; /* the first worker's now */
        if (fd < 0) {
            rp_log_error("cannot listen on %s: %s", listen, strerror(errno));
            goto out;
        }
        err = rp_worker_init(&workers[i], &srv, fd);
        if (err != RP_OK) {
            rp_log_error("cannot start a worker: %s", rp_strerror(err));
            goto out;
        }
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
            goto out;
        started++;
    }
    rp_listen_claimed(&claim);

    main_base = event_base_new();
    sigint = evsignal_new(main_base, SIGINT, on_signal, NULL);
    sigterm = evsignal_new(main_base, SIGTERM, on_signal, NULL);
    if (main_base == NULL || sigint == NULL || sigterm == NULL || event_add(sigint, NULL) != 0 ||
        event_add(sigterm, NULL) != 0)
        goto out;
    atomic_store(&srv.ready, true);
    if (port_file != NULL) {
        rp_atomic_file_t f;
        char text[16];
        snprintf(text, sizeof(text), "%d\n", bound);
        if (rp_atomic_begin(&f, port_file, 0644, 0) != RP_OK ||
            rp_atomic_write(&f, text, strlen(text)) != RP_OK || rp_atomic_commit(&f, 0) != RP_OK)
            rp_log_error("cannot write %s", port_file);
    }
    rp_log_info(
        "serving https://%s%s%s:%d/ with %d workers (data: %s)%s", strchr(host, ':') ? "[" : "",
        host, strchr(host, ':') ? "]" : "", bound, started, data_dir,
        claim.joined ? ", beside the processes of the same data directory already there" : "");
    event_base_dispatch(main_base);
    event_free(sigint);
    event_free(sigterm);
    status = 0;
out:
    /* Before the sockets close: whoever finds the port held from now on must not take us for a
     * process still serving it. */
    rp_listen_release(&claim);
    for (int i = 0; i < started; i++) {
        event_base_loopbreak(workers[i].base);
        pthread_join(workers[i].thread, NULL);
    }
    /* After the workers (nothing more is submitted), before they are freed (they take back
     * what it wrote). */
    rp_recorder_stop(srv.recorder);
    rp_reports_keyer_stop(); /* after the recorder: its batches' answers queue keyings */
    rp_webhook_sender_stop();
    rp_ratelimit_free(srv.ratelimit);
    rp_ratelimit_free(srv.unclaimed);
    for (long i = 0; i < nthreads; i++)
        if (workers[i].srv != NULL) /* initialised, if only in part */
            rp_worker_free(&workers[i]);
    rp_peers_free(srv.peers); /* after the connections that count in it */
    if (main_base != NULL)
        event_base_free(main_base);
    SSL_CTX_free(srv.ssl_ctx);
    rp_server_tls_forget();
    for (size_t i = 0; i < srv.crls_cap; i++)
        free(srv.crls[i].der);
    free(srv.crls);
    rp_wipe(srv.master_key, sizeof(srv.master_key));
    rp_wipe(srv.nonce_key, sizeof(srv.nonce_key));
    return status;
}
