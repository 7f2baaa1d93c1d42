/*
 * rampart-server: the security service. It prepares its data directory on first start
 * (database, TLS identity, master key, bootstrap admin token), then serves HTTPS with one worker
 * thread per core until SIGINT or SIGTERM. Its settings come from flags over a config file
 * (config.h); SIGHUP reloads both, and the TLS identity, without dropping a connection; the
 * service manager hears when it is ready, reloading or stopping, and its watchdog is fed while
 * every event loop turns (rampart/notify.h).
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/rand.h>

#include "api.h"
#include "config.h"
#include "console.h"
#include "context.h"
#include "db.h"
#include "hold.h"
#include "http.h"
#include "images.h"
#include "listen.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "rampart/notify.h"
#include "ready.h"
#include "restore.h"
#include "deltas.h"
#include "recorder.h"
#include "reports.h"
#include "routes.h"
#include "threat.h"

#define MAX_WORKERS 64

static const char usage[] =
    "Usage: rampart-server --data-dir DIR [--listen HOST:PORT] [options]\n"
    "       rampart-server --config FILE [options]\n"
    "       rampart-server blobs move --from dir|database --to dir|database [options]\n"
    "       rampart-server counters recount [options]\n"
    "       rampart-server nonces reset-watermark [options]\n"
    "       rampart-server service-ca next [--force] [options]\n"
    "       rampart-server service-ca promote [--force] [options]\n"
    "       rampart-server backup OUT [options]\n"
    "       rampart-server restore FILE [options]\n"
    "       rampart-server restored [options]\n"
    "\n"
    "The Rampart security service: attests devices, issues 24-hour device certificates from\n"
    "tenant CAs, and serves the operator API, over HTTPS.\n"
    "\n"
    "  --config FILE       settings from FILE: `key = value` lines, a key for every option\n"
    "                      below but the actions (--routes, --rotate-admin-token, blobs\n"
    "                      move's --from and --to), named as\n"
    "                      the option (data-dir = /var/lib/rampart; flags: verbose = true);\n"
    "                      flags given here override it. Without --config,\n"
    "                      " RP_CONFIG_DEFAULT " is read when it exists. SIGHUP reads it\n"
    "                      again, and the TLS identity (DIR/server.pem, DIR/server.key)\n"
    "  --data-dir DIR      where everything is kept; made and initialised on first start\n"
    "  --database TARGET   the database: a postgresql:// URI (shared by replicas; its\n"
    "                      password is never logged) or a SQLite file (default DIR/rampart.db);\n"
    "                      the files (master key, service CA) stay in DIR; a reload\n"
    "                      that changes it is refused\n"
    "  --database-wait S   at start, how long to wait for a database out of reach (down,\n"
    "                      starting), trying again with backoff; 0 fails at once (default 60)\n"
    "  --blobs dir|database  where uploads, images and deltas are kept: files in DIR (dir, the\n"
    "                      default) or the database (database: replicas sharing one\n"
    "                      PostgreSQL share them); a reload that changes it needs a restart\n"
    "  --max-devices-per-tenant N  devices a tenant may claim; a claim past it is 409\n"
    "                      device_limit (default 1000000; 0: no limit)\n"
    "  --upload-max-open N   uploads a tenant may have open at once (unfinished, or finished\n"
    "                      and not yet an image); one more is 429 (default 16)\n"
    "  --upload-max-bytes N  the sizes of a tenant's open uploads together, in bytes; an\n"
    "                      upload past it is 413 (default 1073741824, 1 GiB)\n"
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
    "  --login-rate N      failed console logins a second from one address, on average (bursts\n"
    "                      of 10; fractions allowed; a bucket of its own, apart from\n"
    "                      attestation's); 0 lifts the limit (default 0.1)\n"
    "  --auth-fail-rate N  wrong bearer tokens a second from one address, on average (bursts\n"
    "                      of 20; fractions allowed; a bucket of its own); past it the\n"
    "                      address's token requests are answered 429 unchecked; 0 lifts the\n"
    "                      limit (default 1)\n"
    "  --reenroll-per-hour N\n"
    "                      EST re-enrollments one device may make an hour (at each replica;\n"
    "                      bursts of N); more are answered 429; 0 lifts the limit (default 6)\n"
    "  --max-connections N\n"
    "                      connections open at once; more are refused after their ClientHello\n"
    "                      (default 10000, less if the file descriptor limit is lower)\n"
    "  --max-connections-per-address N\n"
    "                      connections open at once from one client address (an IPv6 /64);\n"
    "                      more are closed as soon as they are accepted; 0 lifts the cap\n"
    "                      (default 64)\n"
    "  --request-deadline S\n"
    "                      seconds a client has to send a whole request - TLS handshake,\n"
    "                      headers and body - from its connection or from the end of the\n"
    "                      previous answer; then the connection is closed (default 60)\n"
    "  --idle-timeout S    seconds a connection may send nothing while a request is awaited,\n"
    "                      or take nothing of an answer being sent; then it is closed\n"
    "                      (default 30; a reload applies to new connections)\n"
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
    "  --version           print the version, and exit\n"
    "  --rotate-admin-token  write a new system token to DIR/admin.token, revoke every other\n"
    "                      system token, and exit (the service may be running); refused\n"
    "                      where DIR holds no database or no system token to replace\n"
    "\n"
    "blobs move: move every blob (uploads, images, deltas) from one --blobs store to the\n"
    "other, for the --data-dir and --database given (or the config file's), with every\n"
    "replica stopped (refused while one serves the database; none starts while it runs);\n"
    "then start them with --blobs set to --to's. Safe to kill and run again; a second run\n"
    "moves nothing. A server refuses to start while the other store holds blobs its own\n"
    "does not, or while a replica started with the other --blobs serves.\n"
    "\n"
    "The commands (--rotate-admin-token, blobs move, counters recount, nonces\n"
    "reset-watermark) never make a database: where there is none, they exit 1.\n"
    "\n"
    "counters recount: count the fleet's, its versions' and deployments' counters again from\n"
    "their rows, for the --data-dir and --database given (or the config file's), in one\n"
    "transaction under the writers' lock (replicas may run); after a rolling upgrade to schema 21\n"
    "or 24 during which an older replica wrote device states, app lists or group moves, once the\n"
    "last older replica has stopped.\n"
    "\n"
    "nonces reset-watermark: lower the spent nonces' purge watermark to the database's clock,\n"
    "for the --data-dir and --database given (or the config file's), when a clock that ran\n"
    "ahead left it in the future (every nonce-flow attestation refused as nonce_replayed; the\n"
    "log says so); once every replica's clock is right (replicas may run). It raises the nonce\n"
    "epoch with it (to the database's clock at least): every nonce issued before is refused\n"
    "after it (nonce_unknown; devices ask again), so none whose spent record was purged passes\n"
    "twice; and it sets right an epoch out of range (the log says so: no nonce is issued)\n"
    "(docs/operations.md \"Clocks\").\n"
    "\n"
    "service-ca next: make the service CA's successor, DIR/server-ca-next.pem and .key (due\n"
    "when two thirds of the service CA's life have passed: the log and /readyz say so;\n"
    "refused before unless --force, since it would end that much early); copy both to\n"
    "every replica and reload them (SIGHUP). Devices take it at their next attestation; it\n"
    "signs the TLS certificate from the service CA's last 30 days on, once it is 30 days\n"
    "old (or in the old CA's last day) (docs/operations.md, \"The service CA's lifetime\").\n"
    "\n"
    "service-ca promote: make the successor the service CA (DIR/server-ca-next.pem and .key\n"
    "renamed over server-ca.pem and .key; the old certificate kept as server-ca-old.pem),\n"
    "after the old one's end (before it only with --force, and not before the successor has\n"
    "been published 30 days unless the old CA ends within a day); safe to kill and run again.\n"
    "Run it on every replica, then reload them (SIGHUP); then service-ca next works again.\n"
    "backup OUT: copy the SQLite database of the --data-dir and --database given (or the\n"
    "config file's) into the new file OUT, 0600, while the service runs or not (SQLite's\n"
    "online backup: one moment's snapshot); the copy records its time. An existing OUT is\n"
    "refused. PostgreSQL: pg_dump (docs/operations.md, \"Backing up\").\n"
    "\n"
    "restore FILE: make FILE (a backup, checked whole, of this schema or an older one) the\n"
    "SQLite database, with every server of DIR stopped (refused while one serves); the one\n"
    "replaced is kept as rampart.db.replaced-TIME. Then it runs `restored`'s step. The\n"
    "service refuses to start while a restore has not finished, and on a database older\n"
    "than the one DIR served last (a backup put back by hand: DIR/generation).\n"
    "\n"
    "restored: after a database was restored (pg_restore for PostgreSQL, or an interrupted\n"
    "restore): raise the nonce epoch, rotate the system token (DIR/admin.token), and say\n"
    "what a restore undid that it cannot redo (revocations, blocks since the backup's\n"
    "time), for you to redo (docs/operations.md, \"Backing up and restoring\").\n"
    "\n"
    "On first start it writes DIR/server-ca.pem (the certificate clients trust) and\n"
    "DIR/admin.token (a bootstrap system token, 0600). No other system token is ever made but\n"
    "by --rotate-admin-token (or at a start that finds none at all).\n";

static struct event_base *main_base;

/* The --blobs store that kind is not. */
static rp_blobs_kind_t other_blobs(rp_blobs_kind_t kind)
{
    return kind == RP_BLOBS_DIR ? RP_BLOBS_DATABASE : RP_BLOBS_DIR;
}

/*
 * The check at start: blobs kept in the other --blobs store, which this one does not hold (a
 * restart with another --blobs), would make their images unreadable; the server refuses to
 * start, naming the command that moves them (RP_ERR_EXISTS).
 */
static rp_err_t blobs_check(const rp_server_t *srv, rp_store_t *store)
{
    rp_blobs_kind_t other = other_blobs(srv->blobs);
    rp_blobs_t *mine = NULL, *theirs = NULL;
    char first[RP_BLOB_NAME_MAX + 1];
    unsigned missing = 0;
    rp_err_t err = rp_blobs_open(srv->blobs, srv->data_dir, store, &mine); /* (not gated) */

    if (err == RP_OK)
        err = rp_blobs_open(other, srv->data_dir, store, &theirs);
    if (err == RP_OK)
        err = rp_blobs_missing(theirs, mine, &missing, first);
    if (err == RP_OK && missing > 0) {
        rp_log_error("%u blob(s) (%s among them) are kept with --blobs %s, not with --blobs %s as "
                     "this server is started: their images would be unreadable. Stop every "
                     "replica and move them: `rampart-server blobs move --from %s --to %s` with "
                     "the same --data-dir and --database (docs/operations.md, \"Moving blobs "
                     "between stores\"), or start with --blobs %s",
                     missing, first, rp_blobs_kind_name(other), rp_blobs_kind_name(srv->blobs),
                     rp_blobs_kind_name(other), rp_blobs_kind_name(srv->blobs),
                     rp_blobs_kind_name(other));
        err = RP_ERR_EXISTS;
    } else if (err != RP_OK) {
        rp_log_error("cannot check the blob stores: %s", rp_strerror(err));
    }
    rp_blobs_close(theirs);
    rp_blobs_close(mine);
    return err;
}

/*
 * The service's database for a command that works on it (--rotate-admin-token, blobs move,
 * counters recount, nonces reset-watermark) and must never make one: pointed at a directory or a
 * database that holds none (a typo, a parent directory, another host's disk mounted in the wrong
 * place), it refuses, having made nothing, rather than make and migrate a new one and report
 * success there (review r15ops L1). what names the command in what it logs.
 */
static rp_err_t existing_store(const rp_server_t *srv, const char *what, rp_store_t **store)
{
    char where[1200];
    rp_err_t err = rp_server_store_open_existing(srv, store);

    if (err == RP_OK)
        return RP_OK;
    rp_server_database_describe(srv, where, sizeof(where));
    if (err == RP_ERR_NOT_FOUND)
        rp_log_error("%s: no Rampart database at %s; nothing was done. Is %s?", what, where,
                     srv->database[0] != '\0' ? "--database the service's database"
                                              : "--data-dir the service's data directory");
    else
        rp_log_error("%s: the database (%s) cannot be opened (above); nothing was done", what,
                     where);
    return err;
}

/* rampart-server blobs move: from's blobs into to's store (rp_blobs_move). */
static int blobs_move(const rp_server_t *srv, rp_blobs_kind_t from, rp_blobs_kind_t to)
{
    char target[sizeof(srv->database) + PATH_MAX], why[400];
    rp_blobs_t *a = NULL, *b = NULL;
    rp_store_t *store = NULL;
    rp_hold_t *hold = NULL;
    unsigned moved = 0, had = 0;
    rp_err_t err;

    if (from == to) {
        rp_log_error("blobs move: --from and --to name the same store (%s)",
                     rp_blobs_kind_name(from));
        return 2;
    }
    if (existing_store(srv, "blobs move", &store) != RP_OK)
        return 1;
    /* No replica may serve meanwhile, nor start until it ends (hold.h: review r15ops M1). */
    rp_server_database_target(srv, target, sizeof(target));
    err = rp_hold_alone(target, &hold, why, sizeof(why));
    if (err != RP_OK) {
        if (err == RP_ERR_EXISTS)
            rp_log_error("blobs move: refused, nothing was moved: %s", why);
        else
            rp_log_error("blobs move: the replicas' hold on the database cannot be taken (%s); "
                         "nothing was moved",
                         rp_strerror(err));
        rp_store_close(store);
        return 1;
    }
    err = rp_blobs_open(from, srv->data_dir, store, &a);
    if (err == RP_OK)
        err = rp_blobs_open(to, srv->data_dir, store, &b);
    if (err == RP_OK)
        err = rp_blobs_move(a, b, &moved, &had);
    rp_blobs_close(a);
    rp_blobs_close(b);
    rp_store_close(store);
    rp_hold_release(hold);
    if (err != RP_OK) { /* (a fault that may pass: a move stopped part way is run again) */
        rp_log_error("blobs move: %u moved, then stopped: %s%s", moved, rp_strerror(err),
                     err == RP_ERR_IO || err == RP_ERR_BUSY ? " (run it again to go on)" : "");
        return 1;
    }
    rp_log_info("blobs move: %u blob(s) moved from %s to %s (%u there already); start the "
                "service with --blobs %s",
                moved, rp_blobs_kind_name(from), rp_blobs_kind_name(to), had,
                rp_blobs_kind_name(to));
    return 0;
}

/* A subcommand's work on the store of the --data-dir and --database given: fn(store, ctx), where
 * that database is already (existing_store). Logs a failure as "WHAT: ...". */
static rp_err_t store_command(const rp_server_t *srv, const char *what,
                              rp_err_t (*fn)(rp_store_t *, void *), void *ctx)
{
    rp_store_t *store = NULL;
    rp_err_t err = existing_store(srv, what, &store);

    if (err != RP_OK)
        return err;
    err = fn(store, ctx);
    rp_store_close(store);
    if (err != RP_OK)
        rp_log_error("%s: %s (nothing changed)", what, rp_strerror(err));
    return err;
}

static rp_err_t recount(rp_store_t *store, void *ctx)
{
    (void)ctx;
    return rp_store_counters_recount(store);
}

/* rampart-server counters recount (rp_store_counters_recount). */
static int counters_recount(const rp_server_t *srv)
{
    if (store_command(srv, "counters recount", recount, NULL) != RP_OK)
        return 1;
    rp_log_info("counters recount: the counters are counted again from the rows");
    return 0;
}

static rp_err_t reset_watermark(rp_store_t *store, void *ctx)
{
    int64_t *v = ctx;

    return rp_store_nonces_watermark_reset(store, &v[0], &v[1], &v[2], &v[3]);
}

/* rampart-server nonces reset-watermark (rp_store_nonces_watermark_reset). */
static int nonces_reset_watermark(const rp_server_t *srv)
{
    int64_t v[4] = {0, 0, 0, 0}; /* the watermark before, after; the nonce epoch before, after */

    if (store_command(srv, "nonces reset-watermark", reset_watermark, v) != RP_OK)
        return 1;
    if (v[0] != v[1])
        rp_log_info("nonces reset-watermark: the watermark was %llds ahead of the database's "
                    "clock (%lld), now %lld; nonce epoch %lld: every nonce issued before is "
                    "refused (nonce_unknown)",
                    (long long)(v[0] - v[1] + 1), (long long)v[0], (long long)v[1],
                    (long long)v[3]);
    else if (v[2] != v[3])
        rp_log_info("nonces reset-watermark: the watermark (%lld) is not ahead of the database's "
                    "clock; the nonce epoch, %lld, out of range, is now %lld: nonces are issued "
                    "again",
                    (long long)v[1], (long long)v[2], (long long)v[3]);
    else
        rp_log_info("nonces reset-watermark: the watermark (%lld) is not ahead of the database's "
                    "clock: nothing changed",
                    (long long)v[1]);
    return 0;
}

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
    rp_notify("STOPPING=1\nSTATUS=stopping");
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
    int lock = rp_lock_in(data_dir, "admin.token.lock"), dir, n = 0;

    /* every writer of admin.token holds it: what a cut one left goes (review r16 L2) */
    dir = lock >= 0 ? open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dir >= 0 && rp_atomic_sweep(dir, "admin.token", &n) != RP_OK)
        rp_log_warn("%s: temporaries of admin.token not removed", data_dir);
    if (dir >= 0)
        close(dir);
    return lock;
}

/* This server's hold on its database (hold.h: review r15ops M1, L3, H1), taken at start before
 * the database is opened and kept to the exit: refused, said why, while a blobs move or a restore
 * runs or a replica with the other --blobs serves. Out of reach (RP_ERR_BUSY): said by the wait. */
static rp_err_t serving_hold(const rp_server_t *srv, rp_hold_t **hold)
{
    char target[sizeof(srv->database) + PATH_MAX], why[400];
    rp_err_t err;

    rp_server_database_target(srv, target, sizeof(target));
    err = rp_hold_serving(target, srv->blobs, hold, why, sizeof(why));
    if (err == RP_ERR_EXISTS)
        rp_log_error("%s", why);
    else if (err != RP_OK && err != RP_ERR_BUSY)
        rp_log_error("the servers' hold on the database cannot be taken: %s", rp_strerror(err));
    return err;
}

/*
 * The database at start: this server's hold on it (serving_hold), then, held, the refusal of a
 * restore that did not finish (restore.h), then the database opened (and migrated). Waited for
 * while it cannot be reached (RP_ERR_BUSY: down, starting, restarting) for at most wait seconds:
 * tries 1, 2, 4... seconds apart (at most 10), each logged once with the database's description
 * (where: never its password). Nothing listens meanwhile, so a probe of /readyz finds the service
 * not ready; the service manager is told why (STATUS). *said: whether a failure was logged.
 */
static rp_err_t store_open_waiting(const rp_server_t *srv, const char *where, long wait,
                                   rp_hold_t **hold, rp_store_t **store, bool *said)
{
    struct timespec start, now;
    long pause = 1, waited;
    rp_err_t err;

    *said = true;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int attempt = 1;; attempt++) {
        err = RP_OK;
        if (*hold == NULL && (err = serving_hold(srv, hold)) == RP_OK &&
            (err = rp_restore_check(srv)) != RP_OK)
            return err;
        if (err == RP_OK) {
            err = rp_server_store_open(srv, store);
            /* (said by the driver, the migrations or the wait; not so a path too long, no
             * memory) */
            *said = err == RP_ERR_IO || err == RP_ERR_BUSY || err == RP_ERR_UNSUPPORTED;
        }
        if (err != RP_ERR_BUSY)
            return err;
        *said = true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        waited = (long)(now.tv_sec - start.tv_sec);
        if (waited >= wait) {
            rp_log_error("database: %s out of reach%s", where,
                         wait > 0 ? " for --database-wait's time: giving up" : "");
            return err;
        }
        if (pause > wait - waited)
            pause = wait - waited;
        rp_log_warn("database: %s out of reach (attempt %d): trying again in %ld s, for at most "
                    "%ld s more",
                    where, attempt, pause, wait - waited);
        rp_notify("STATUS=waiting for the database (%s)", where);
        sleep((unsigned)pause);
        pause = pause < 5 ? pause * 2 : 10;
    }
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
static rp_err_t rotate_admin_token(const rp_server_t *srv)
{
    const char *data_dir = srv->data_dir;
    char path[PATH_MAX + 16], db[1200];
    uint8_t hash[RP_SHA256_LEN];
    rp_store_t *store = NULL;
    rp_atomic_file_t f;
    rp_token_t tok;
    long existing = 0;
    int revoked = 0, lock;
    rp_err_t err = existing_store(srv, "cannot rotate the system token", &store);

    if (err != RP_OK)
        return err;
    rp_server_database_describe(srv, db, sizeof(db));
    lock = admin_token_lock(data_dir);
    if (lock < 0) {
        rp_store_close(store);
        return RP_ERR_IO;
    }
    err = rp_store_token_list(store, NULL, NULL, count_token, &existing);
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
    if (err == RP_OK)
        rp_restore_mark(data_dir, store);
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

/* The command line's options, kept for a reload (flags override the file then too). */
struct cli {
    int n;
    struct {
        rp_config_id_t id;
        const char *value;
    } * v;
    const char *config; /* --config, or NULL */
};

/* The settings: defaults, then the config file (--config, or RP_CONFIG_DEFAULT if it exists, or
 * if had_default: the service started with it), then the flags. false with why when any is
 * refused. OUT: *c, *file (the file read, or ""). */
static bool settings(const struct cli *cli, bool had_default, rp_config_t *c, char *file,
                     size_t fcap, char *why, size_t cap)
{
    char reason[256];

    rp_config_defaults(c);
    file[0] = '\0';
    /* The default file the service started with, gone at a reload (deleted, renamed away, an
     * editor between its unlink and its write), is an error like a file that no longer parses:
     * falling back to the defaults would silently undo every setting it held (a rate limit, the
     * log level). To run without it, restart. */
    if (cli->config != NULL || had_default || access(RP_CONFIG_DEFAULT, F_OK) == 0) {
        snprintf(file, fcap, "%s", cli->config != NULL ? cli->config : RP_CONFIG_DEFAULT);
        if (rp_config_load(file, c, why, cap) != RP_OK) {
            if (cli->config == NULL && had_default && access(RP_CONFIG_DEFAULT, F_OK) != 0)
                snprintf(why + strlen(why), cap - strlen(why),
                         " (the service started with it: put it back, or restart the service to "
                         "run without it)");
            return false;
        }
    }
    for (int i = 0; i < cli->n; i++) {
        if (!rp_config_set(c, cli->v[i].id, cli->v[i].value, reason, sizeof(reason))) {
            char shown[1200];

            /* (a database target named as the log names it: never with its password) */
            if (cli->v[i].id == RP_CFG_DATABASE && cli->v[i].value != NULL &&
                cli->v[i].value[0] != '\0')
                rp_db_target_describe(cli->v[i].value, shown, sizeof(shown));
            else
                snprintf(shown, sizeof(shown), "%s",
                         cli->v[i].value != NULL ? cli->v[i].value : "");
            snprintf(why, cap, "--%s%s%s: %s", rp_config_name(cli->v[i].id),
                     cli->v[i].value != NULL ? " " : "", shown, reason);
            return false;
        }
    }
    return true;
}

/* A database password where other users read it (review r15ops M4): on the command line (every
 * local user reads /proc/PID/cmdline), or in a config file that others, or a group not the
 * service's own, may read. Warned at start; the password itself is never logged. */
static void password_exposure_warn(const struct cli *cli, const char *file, const rp_config_t *c)
{
    struct stat sb;
    bool on_cli = false;

    if (!rp_db_target_has_password(c->database))
        return;
    for (int i = 0; i < cli->n; i++)
        on_cli |= cli->v[i].id == RP_CFG_DATABASE;
    if (on_cli)
        rp_log_warn("--database holds a password, which every local user can read (ps, "
                    "/proc/PID/cmdline): put it in ~/.pgpass or a file PGPASSFILE names, or in "
                    "the config file (docs/operations.md, \"The config file\")");
    else if (file[0] != '\0' && stat(file, &sb) == 0 &&
             ((sb.st_mode & S_IROTH) != 0 ||
              ((sb.st_mode & S_IRGRP) != 0 && sb.st_gid != getegid())))
        rp_log_warn("%s holds the database password, and users other than the service's can read "
                    "it (mode %04o): chmod 0640 and chgrp it to the service's group (or chmod "
                    "0600), or put the password in ~/.pgpass or a file PGPASSFILE names",
                    file, (unsigned)(sb.st_mode & 07777));
}

/* What the main loop needs at a reload and at its heartbeat. */
static struct {
    struct cli cli;
    bool had_default; /* started with RP_CONFIG_DEFAULT (no --config): a reload needs it too */
    rp_config_t cfg;  /* the settings in force */
    rp_server_t *srv;
    rp_worker_t *workers;
    int started;
    bool notified_ready, stalled;
    long long stale_ms;    /* a worker whose loop has not turned for this long holds the watchdog */
    char serving[400];     /* STATUS= once ready */
    int64_t cert_check_at; /* wall clock: when the certificate in use is next looked at */
    int64_t cert_begins, cert_ends; /* its times (notBefore, notAfter) */
    char **service_cas_old;         /* the service CAs published before (service_ca_publish) */
    int service_cas_replaced;
    rp_hold_t *hold;     /* this replica's hold on its database (hold.h), kept at each heartbeat */
    bool blobs_moved;    /* found, as the hold was taken again, moved to the other --blobs store */
    unsigned hold_taken; /* rp_hold_stands's count when the blob stores were last checked */
} run;

/*
 * The hold kept at each heartbeat (hold.h): while it is lost, no blob is served (srv->hold_lost).
 * Taken again, the blob stores are checked as at start before blobs are served again: a blobs
 * move that ran meanwhile (review r16 M4) leaves this replica's blobs in the other store, and it
 * then serves none for its life (said: restarted with the other --blobs, it serves them).
 */
static void hold_kept(void)
{
    rp_store_t *store = NULL;
    unsigned taken = 0;
    bool stands;
    rp_err_t err;

    rp_hold_keep(run.hold);
    stands = rp_hold_stands(run.hold, &taken) && !run.blobs_moved;
    if (stands && taken != run.hold_taken) {
        err = rp_server_store_open_existing(run.srv, &store);
        if (err == RP_OK)
            err = blobs_check(run.srv, store); /* (said) */
        rp_store_close(store);
        run.blobs_moved = err == RP_ERR_EXISTS;
        stands = err == RP_OK; /* (else looked at again at the next beat) */
        if (stands)
            run.hold_taken = taken;
        if (run.blobs_moved)
            rp_log_error("this replica serves no blob until it is restarted (see above)");
    }
    atomic_store(&run.srv->blobs_moved, run.blobs_moved); /* (first: hold_lost tells it) */
    atomic_store(&run.srv->hold_lost, !stands);
}

#define LOGIN_BURST 10
#define AUTH_FAIL_BURST 20

/* A 429's Retry-After for a budget of rate a second: the time one token takes to come back. */
static int retry_of(double rate)
{
    return rate > 0 && rate < 1 ? (int)(1 / rate + 0.999) : 1;
}

static int unclaimed_retry_of(double unclaimed_rate)
{
    /* A 429 for unclaimed devices asks for the time one token takes to come back, at least
     * 10 s. */
    return unclaimed_rate > 0 && unclaimed_rate < 0.1 ? (int)(1 / unclaimed_rate + 0.999) : 10;
}

/* The settings a running service takes: every one rp_config_reloadable() says. */
static void apply_reloadable(rp_server_t *srv, const rp_config_t *c)
{
    rp_log_set_level(c->verbose ? RP_LOG_DEBUG : RP_LOG_INFO);
    atomic_store(&srv->nonce_lifetime, c->nonce_lifetime);
    rp_ratelimit_set(srv->ratelimit, c->rate_limit, burst_of(c->rate_limit));
    rp_ratelimit_set(srv->unclaimed, c->unclaimed_rate, burst_of(c->unclaimed_rate));
    atomic_store(&srv->unclaimed_retry, unclaimed_retry_of(c->unclaimed_rate));
    /* Failed logins: bursts of 10 whatever the rate (a person mistypes a few times), and a 429
     * asks for the time one token takes to come back. */
    rp_ratelimit_set(srv->login_limit, c->login_rate, LOGIN_BURST);
    atomic_store(&srv->login_retry, retry_of(c->login_rate));
    /* Wrong bearer tokens: bursts of 20 (a script with a stale token, a few operators behind one
     * NAT address), then a try per 1 / rate seconds. */
    rp_ratelimit_set(srv->auth_limit, c->auth_fail_rate, AUTH_FAIL_BURST);
    atomic_store(&srv->auth_retry, retry_of(c->auth_fail_rate));
    /* EST re-enrollments: per device, N an hour in bursts of N (a client renewing daily never
     * meets it); a 429 asks for the time one comes back. */
    rp_ratelimit_set(srv->reenroll_limit, (double)c->reenroll_per_hour / 3600,
                     (double)c->reenroll_per_hour);
    atomic_store(&srv->reenroll_retry, retry_of((double)c->reenroll_per_hour / 3600));
    atomic_store(&srv->reenroll_per_hour, c->reenroll_per_hour);
    atomic_store(&srv->request_deadline, (int)c->request_deadline);
    atomic_store(&srv->idle_timeout, (int)c->idle_timeout);
    atomic_store(&srv->webhook_allow_private, c->webhook_allow_private);
    atomic_store(&srv->upload_max_open, (unsigned)c->upload_max_open);
    atomic_store(&srv->upload_max_bytes, (unsigned long long)c->upload_max_bytes);
    atomic_store(&srv->max_devices_per_tenant, (long long)c->max_devices_per_tenant);
}

static unsigned long long monotonic_usec(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)t.tv_sec * 1000000ull + (unsigned long long)t.tv_nsec / 1000u;
}

#define CERT_RETRY 3600 /* seconds between tries while the certificate in use is not renewed */

/* The certificate in ctx, now in use: its end (the metrics, /readyz), and when the main loop looks
 * at it next: in CERT_RETRY seconds, or as its renewal margin begins if that is sooner (a clock
 * put back may make it one that begins ahead of it: review r13 L3); in CERT_RETRY seconds, said,
 * when it is in its margin already or begins ahead (not renewed: said each time), unless the
 * successor service CA renews it later (the switch: its day said; review r14 L1). */
static void cert_in_use(rp_server_t *srv, SSL_CTX *ctx)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    int64_t end = cert != NULL ? rp_cert_time(X509_get0_notAfter(cert)) : 0,
            begin = cert != NULL ? rp_cert_time(X509_get0_notBefore(cert)) : 0,
            now = (int64_t)time(NULL), switch_at;
    bool ahead = begin > now + RP_CA_START_SLACK;
    char when[32], switch_day[32];
    struct tm tm;

    atomic_store(&srv->server_cert_not_after, end);
    atomic_store(&srv->server_cert_switch_at, 0);
    run.cert_begins = begin;
    run.cert_ends = end;
    run.cert_check_at = end - RP_SERVER_CERT_RENEW_BEFORE;
    if (run.cert_check_at > now && !ahead) {
        if (run.cert_check_at > now + CERT_RETRY)
            run.cert_check_at = now + CERT_RETRY;
        return;
    }
    run.cert_check_at = now + CERT_RETRY;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
             gmtime_r(&(time_t){(time_t)(ahead ? begin : end)}, &tm));
    switch_at = ahead ? 0 : rp_service_ca_switch_pending(srv->data_dir, now);
    if (switch_at > 0 && switch_at < end) {
        atomic_store(&srv->server_cert_switch_at, switch_at);
        strftime(switch_day, sizeof(switch_day), "%Y-%m-%dT%H:%M:%SZ",
                 gmtime_r(&(time_t){(time_t)switch_at}, &tm));
        rp_log_info("the TLS certificate in use (%s/server.pem) ends %s, with the service CA: it "
                    "switches to the successor service CA's on %s; looked at again in an hour",
                    srv->data_dir, when, switch_day);
    } else if (ahead)
        rp_log_warn("the TLS certificate in use (%s/server.pem) begins %s, ahead of the clock "
                    "(made while it ran ahead), and was not made again (above): clients refuse it "
                    "until then; tried again in an hour",
                    srv->data_dir, when);
    else
        rp_log_warn("the TLS certificate in use (%s/server.pem) ends %s, in %lld day(s), and was "
                    "not renewed (above): renew it or the service CA (docs/operations.md), or "
                    "every client refuses the service then; tried again in an hour",
                    srv->data_dir, when, (long long)((end - now) / 86400));
}

/* The TLS identity for new handshakes: the server certificate renewed first when it is due
 * (ca.c), then server.pem and server.key read into a new context under the data directory's
 * lock (processes sharing it renew it once). NULL when it cannot be used (logged). */
static SSL_CTX *tls_identity(rp_server_t *srv, const char *hostnames)
{
    bool renewed;
    int lock;
    SSL_CTX *ctx;

    if (rp_service_cert_renew(srv->data_dir, hostnames[0] ? hostnames : NULL, &renewed) != RP_OK)
        rp_log_error("the server certificate could not be renewed (above)");
    lock = rp_service_identity_lock(srv->data_dir);
    ctx = rp_server_tls_context(srv->data_dir, srv->master_key);
    rp_service_identity_unlock(lock);
    return ctx;
}

/* The service CAs published to devices (srv->service_ca_pem) read again from the data directory:
 * at start, and with each new TLS identity (a reload, a renewal), so that a successor copied in
 * is published at the next reload, without a restart. Unchanged, nothing is replaced; one replaced
 * is kept until the exit (a worker may be copying it into an answer). On failure (logged) the
 * ones published stay. */
static rp_err_t service_ca_publish(rp_server_t *srv)
{
    char *pem = NULL, *old, **grown;
    int64_t not_before, not_after;
    rp_err_t err =
        rp_service_ca_published(srv->data_dir, (int64_t)time(NULL), &pem, &not_before, &not_after);

    if (err != RP_OK) {
        rp_log_error("the service CAs in %s cannot be read (%s): those published stay",
                     srv->data_dir, rp_strerror(err));
        return err;
    }
    old = atomic_load(&srv->service_ca_pem);
    if (old != NULL && strcmp(old, pem) == 0) {
        free(pem);
        return RP_OK;
    }
    grown = old == NULL ? run.service_cas_old
                        : realloc(run.service_cas_old, ((size_t)run.service_cas_replaced + 1) *
                                                           sizeof(*run.service_cas_old));
    if (old != NULL && grown == NULL) {
        free(pem);
        return RP_ERR_NO_MEMORY;
    }
    run.service_cas_old = grown;
    if (old != NULL)
        run.service_cas_old[run.service_cas_replaced++] = old;
    atomic_store(&srv->service_ca_not_before, not_before);
    atomic_store(&srv->service_ca_not_after, not_after);
    atomic_store(&srv->service_ca_pem, pem);
    return RP_OK;
}

/* ctx for every new handshake: each worker takes it; connections already open keep theirs. */
static void tls_swap(SSL_CTX *ctx)
{
    for (int i = 0; i < run.started; i++)
        rp_worker_set_tls(&run.workers[i], ctx);
    SSL_CTX_free(run.srv->ssl_ctx);
    run.srv->ssl_ctx = ctx;
    cert_in_use(run.srv, ctx);
    (void)service_ca_publish(run.srv); /* (said when it fails) */
}

/* The certificate in use looked at (the heartbeat, below): when it has reached its renewal margin
 * or begins ahead of the clock, renewed, or taken from server.pem when another process sharing the
 * data directory renewed it first. */
static void cert_due(void)
{
    int64_t now = (int64_t)time(NULL);
    SSL_CTX *ctx;

    if (run.cert_begins > now + RP_CA_START_SLACK)
        rp_log_info("the TLS certificate in use begins ahead of the clock: making it again");
    else if (now >= run.cert_ends - RP_SERVER_CERT_RENEW_BEFORE)
        rp_log_info("the TLS certificate in use ends within %d days: renewing it",
                    RP_SERVER_CERT_RENEW_BEFORE / 86400);
    else { /* (the hourly look: nothing to do) */
        run.cert_check_at = now + CERT_RETRY;
        return;
    }
    ctx = tls_identity(run.srv, run.cfg.hostnames);
    if (ctx == NULL) {
        rp_log_error("the TLS identity in %s cannot be used (above): the one in use stays; "
                     "tried again in an hour",
                     run.srv->data_dir);
        run.cert_check_at = (int64_t)time(NULL) + CERT_RETRY;
        return;
    }
    tls_swap(ctx);
}

/*
 * SIGHUP: the config file and the TLS identity again (the server certificate renewed first when
 * it is within its renewal margin: tls_identity). All or nothing: a file that is refused, or
 * a certificate or key that cannot be used, changes nothing (the service goes on as it was, and
 * says why). Connections already open keep the TLS context they were made with; new handshakes
 * take the new one. What a running service cannot change is left as it is, with a warning.
 */
static void on_reload(evutil_socket_t sig, short events, void *arg)
{
    rp_config_t next;
    char file[PATH_MAX], why[PATH_MAX + 256];
    SSL_CTX *ctx;
    int changed = 0;

    (void)sig, (void)events, (void)arg;
    rp_notify("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu", monotonic_usec());
    rp_log_info("SIGHUP: reloading the configuration and the TLS identity");
    if (!settings(&run.cli, run.had_default, &next, file, sizeof(file), why, sizeof(why))) {
        rp_log_error("reload refused, nothing changed: %s", why);
        rp_notify("READY=1\nSTATUS=%s (the last reload was refused: %.200s)", run.serving, why);
        return;
    }
    if (rp_config_differs(&run.cfg, &next, RP_CFG_DATABASE)) {
        /* Switching engines under running workers would split the acknowledged records between
         * two databases: the whole reload is refused, the running database kept. */
        char now[1200], asked[1200];
        static rp_server_t shown; /* (large: not on the stack) */

        rp_server_database_describe(run.srv, now, sizeof(now));
        memset(&shown, 0, sizeof(shown));
        memcpy(shown.data_dir, run.srv->data_dir, sizeof(shown.data_dir));
        memcpy(shown.database, next.database, sizeof(shown.database));
        rp_server_database_describe(&shown, asked, sizeof(asked));
        rp_log_error("reload refused, nothing changed: database changed (to %s); a running "
                     "service keeps its database (%s): restart it to use another",
                     asked, now);
        rp_notify("READY=1\nSTATUS=%s (the last reload was refused: database changed)",
                  run.serving);
        return;
    }
    ctx = tls_identity(run.srv, run.cfg.hostnames);
    if (ctx == NULL) {
        rp_log_error("reload refused, nothing changed: the TLS identity in %s (server.pem, "
                     "server.key) cannot be used (above); the one in use stays",
                     run.srv->data_dir);
        rp_notify("READY=1\nSTATUS=%s (the last reload was refused: TLS identity)", run.serving);
        return;
    }
    tls_swap(ctx);
    for (int id = 0; id < RP_CFG_COUNT; id++) {
        if (!rp_config_is_setting(id) || !rp_config_differs(&run.cfg, &next, id))
            continue;
        if (rp_config_reloadable(id)) {
            rp_config_copy(&run.cfg, &next, id);
            changed++;
        } else {
            rp_log_warn("reload: %s changed, which needs a restart: the running service keeps "
                        "the value it started with",
                        rp_config_name(id));
        }
    }
    apply_reloadable(run.srv, &run.cfg);
    rp_log_info("reloaded: %s%s%d setting(s) changed; new connections take the TLS identity "
                "read now",
                file[0] ? file : "no config file", file[0] ? ": " : ", ", changed);
    rp_notify("READY=1\nSTATUS=%s", run.serving);
}

/*
 * The main loop's heartbeat: READY=1 once every worker's loop turns and the write check passes
 * (ready.c); then WATCHDOG=1 at half the watchdog's timeout, only while every worker's loop turns
 * (this one's does, or this would not run).
 */
/* The first worker's loop sweeps abandoned uploads: as soon as it runs, then every
 * RP_UPLOADS_SWEEP_EVERY seconds (on its store connection: the loop's own thread). */
static void on_uploads_sweep(evutil_socket_t fd, short events, void *arg)
{
    rp_worker_t *w = arg;

    (void)fd, (void)events;
    rp_uploads_sweep(w->store, w->blobs);
}

/* Tenants not in use roll their CA over too (rp_ca_roll_ending), hourly on one loop. */
static void on_ca_sweep(evutil_socket_t fd, short events, void *arg)
{
    rp_worker_t *w = arg;
    int rolled = 0;

    (void)fd, (void)events;
    if (rp_ca_roll_ending(w->store, w->srv->master_key, (int64_t)time(NULL), &rolled) != RP_OK)
        rp_log_error("the tenant CAs' sweep failed (above): tried again in an hour");
}

static void on_heartbeat(evutil_socket_t fd, short events, void *arg)
{
    char why[256];
    bool turning = rp_ready_loops_turn(run.workers, run.started, run.stale_ms);
    int64_t now;

    (void)fd, (void)events, (void)arg;
    if (!run.notified_ready) {
        if (turning && rp_ready_state(why, sizeof(why))) {
            run.notified_ready = true;
            rp_notify("READY=1\nSTATUS=%s\nMAINPID=%ld", run.serving, (long)getpid());
        } else {
            rp_notify("STATUS=starting: %s", turning ? why : "the workers' loops are starting");
        }
    }
    if (turning)
        rp_notify_watchdog();
    else if (run.notified_ready && !run.stalled) /* said once a stall */
        rp_log_warn("a worker's event loop has not turned for %lld ms: the watchdog is not fed",
                    run.stale_ms);
    run.stalled = !turning;
    now = (int64_t)time(NULL); /* one look at the wall clock a beat */
    /* (a look set further ahead than CERT_RETRY: the clock was put back since, and the certificate
     * made before may begin ahead of it) */
    if (now >= run.cert_check_at || run.cert_check_at - now > CERT_RETRY)
        cert_due();
    hold_kept();
}

int main(int argc, char **argv)
{
    struct option opts[RP_CFG_COUNT + 1];
    char shorts[2 * RP_CFG_COUNT + 1], file[PATH_MAX], why[PATH_MAX + 256];
    static rp_server_t srv;
    static rp_worker_t workers[MAX_WORKERS];
    char host[256], port[16], path[PATH_MAX + 16], message[512];
    const char *master_path = "";
    rp_listen_t claim = {.fd = -1, .claim_fd = -1, .serve_fd = -1};
    long nthreads;
    uint64_t watchdog_usec;
    struct event *sigint, *sigterm, *sighup = NULL, *heartbeat = NULL, *sweep = NULL,
                                    *ca_sweep = NULL;
    rp_store_t *store = NULL;
    rp_config_t *cfg = &run.cfg;
    int c, fd, bound = 0, started = 0, status = 1, id;
    bool rotate = false, force = false;
    rp_blobs_kind_t move_from = RP_BLOBS_DIR, move_to = RP_BLOBS_DIR;
    int moving = 0; /* blobs move's options seen: 1 --from, 2 --to */
    bool move = false, recount = false, reset = false, ca_next = false, ca_promote = false;
    bool restored = false;
    bool said = false; /* the start's failure is logged with its reason already */
    const char *backup_out = NULL, *restore_from = NULL;
    rp_err_t err;

    rp_log_init("rampart-server", RP_LOG_INFO);
    pthread_mutex_init(&srv.crl_lock, NULL);
    /* A decoded batch of reports is about 700 KiB (room for 64 frames each), allocated and freed
     * per request: kept in the heap rather than mapped, and not trimmed away, so that it is not
     * faulted in afresh each time (a tenth of the decoder's time when it was). */
    if (mallopt(M_MMAP_THRESHOLD, 4 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, 32 << 20) != 1)
        rp_log_warn("malloc thresholds not set: batches may be faulted in each time");
    run.cli.v = calloc((size_t)argc + 1, sizeof(*run.cli.v));
    if (run.cli.v == NULL)
        return 1;
    rp_config_getopt(opts, shorts, sizeof(shorts));
    while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        switch (id = rp_config_from_getopt(c)) {
        case RP_CFG_HELP: fputs(usage, stdout); return 0;
        case RP_CFG_VERSION: printf("rampart-server %s\n", RP_VERSION); return 0;
        case RP_CFG_ROUTES: rp_routes_print(stdout); return 0;
        case RP_CFG_ROTATE: rotate = true; break;
        case RP_CFG_FORCE: force = true; break;
        case RP_CFG_CONFIG: run.cli.config = optarg; break;
        case RP_CFG_FROM:
        case RP_CFG_TO:
            if (!rp_blobs_kind_parse(optarg, id == RP_CFG_FROM ? &move_from : &move_to)) {
                fprintf(stderr, "rampart-server: --%s wants dir or database\n",
                        rp_config_name((rp_config_id_t)id));
                return 2;
            }
            moving |= id == RP_CFG_FROM ? 1 : 2;
            break;
        case -1: fputs(usage, stderr); return 2;
        default:
            run.cli.v[run.cli.n].id = (rp_config_id_t)id;
            run.cli.v[run.cli.n++].value = optarg; /* NULL for a flag */
        }
    }
    /* (getopt moves the words that are no options to the end) */
    move = argc - optind == 2 && strcmp(argv[optind], "blobs") == 0 &&
           strcmp(argv[optind + 1], "move") == 0;
    recount = argc - optind == 2 && strcmp(argv[optind], "counters") == 0 &&
              strcmp(argv[optind + 1], "recount") == 0;
    reset = argc - optind == 2 && strcmp(argv[optind], "nonces") == 0 &&
            strcmp(argv[optind + 1], "reset-watermark") == 0;
    ca_next = argc - optind == 2 && strcmp(argv[optind], "service-ca") == 0 &&
              strcmp(argv[optind + 1], "next") == 0;
    ca_promote = argc - optind == 2 && strcmp(argv[optind], "service-ca") == 0 &&
                 strcmp(argv[optind + 1], "promote") == 0;
    restored = argc - optind == 1 && strcmp(argv[optind], "restored") == 0;
    if (argc - optind == 2 && strcmp(argv[optind], "backup") == 0)
        backup_out = argv[optind + 1];
    if (argc - optind == 2 && strcmp(argv[optind], "restore") == 0)
        restore_from = argv[optind + 1];
    if ((optind != argc && !move && !recount && !reset && !ca_next && !ca_promote && !restored &&
         backup_out == NULL && restore_from == NULL) ||
        (move && moving != 3) || (!move && moving != 0) || (force && !ca_next && !ca_promote)) {
        fputs(move ? "rampart-server: blobs move wants --from and --to\n" : usage, stderr);
        return 2;
    }
    if (!settings(&run.cli, false, cfg, file, sizeof(file), why, sizeof(why))) {
        fprintf(stderr, "rampart-server: %s\n", why);
        return 2;
    }
    run.had_default = run.cli.config == NULL && file[0] != '\0';
    if (cfg->data_dir[0] == '\0') {
        fputs(usage, stderr);
        return 2;
    }
    if (!split_listen(cfg->listen, host, sizeof(host), port, sizeof(port))) {
        fprintf(stderr, "rampart-server: --listen wants HOST:PORT, not '%s'\n", cfg->listen);
        return 2;
    }
    nthreads = cfg->threads > 0 ? cfg->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > MAX_WORKERS)
        nthreads = MAX_WORKERS;
    if (cfg->verbose)
        rp_log_set_level(RP_LOG_DEBUG);
    if (file[0] != '\0')
        rp_log_debug("settings from %s", file);
    password_exposure_warn(&run.cli, file, cfg);
    signal(SIGPIPE, SIG_IGN);
    /* A reload asked for while the service starts is not its end (SIGHUP's default): ignored
     * until the main loop takes it over. */
    signal(SIGHUP, SIG_IGN);
    umask(077); /* the database holds token hashes and encrypted keys: owner only */
    strcpy(srv.data_dir, cfg->data_dir);
    memcpy(srv.database, cfg->database, sizeof(srv.database));
    srv.blobs = (rp_blobs_kind_t)cfg->blobs;
    if (rotate) /* (where the database is already: existing_store) */
        return rotate_admin_token(&srv) == RP_OK ? 0 : 1;
    if (move)
        return blobs_move(&srv, move_from, move_to);
    if (recount)
        return counters_recount(&srv);
    if (reset)
        return nonces_reset_watermark(&srv);
    if (ca_next)
        return rp_service_ca_next(cfg->data_dir, (int64_t)time(NULL), force) == RP_OK ? 0 : 1;
    if (ca_promote)
        return rp_service_ca_promote(cfg->data_dir, (int64_t)time(NULL), force) == RP_OK ? 0 : 1;
    if (backup_out != NULL)
        return rp_backup_command(&srv, backup_out);
    if (restore_from != NULL)
        return rp_restore_command(&srv, restore_from, rotate_admin_token);
    if (restored)
        return rp_restored_command(&srv, rotate_admin_token);
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        rp_log_error("%s: %s", cfg->data_dir, strerror(errno));
        return 1;
    }
    /* One that others may write is refused, as ssh does ~/.ssh: they could take its keys away,
     * or put their own server.key there (review r15ops L2). */
    if (rp_file_check_private(cfg->data_dir, false) != RP_OK)
        return 1;
    if (evthread_use_pthreads() != 0) {
        rp_log_error("libevent has no thread support");
        return 1;
    }
    rp_notify("STATUS=preparing %s", cfg->data_dir);

    /* Prepare the data directory: database, identity, master key, bootstrap token. The database
     * first: a missing master key is made only for a database that has none yet (review r15ops
     * M2: a replica not given master.key must not make its own). */
    master_path = cfg->master_key;
    if (master_path[0] == '\0') {
        snprintf(path, sizeof(path), "%s/master.key", cfg->data_dir);
        master_path = path;
    }
    {
        char where[1200];

        rp_server_database_describe(&srv, where, sizeof(where));
        rp_log_info("database: %s; blobs: %s", where, rp_blobs_kind_name(srv.blobs));
        err = store_open_waiting(&srv, where, cfg->database_wait, &run.hold, &store, &said);
    }
    if (err == RP_OK && cfg->master_key[0] == '\0' && access(master_path, F_OK) != 0)
        said = (err = rp_ca_master_absent(store, master_path)) != RP_OK;
    if (err == RP_OK)
        err = rp_service_identity_init(cfg->data_dir, cfg->hostnames[0] ? cfg->hostnames : NULL);
    if (err == RP_OK)
        err = service_ca_publish(&srv);
    if (err == RP_OK)
        err = rp_master_key_load(master_path, srv.master_key);
    if (err == RP_OK && (err = rp_ca_master_check(store, srv.master_key)) == RP_ERR_BAD_KEY) {
        rp_log_error("%s is not the master key this database's tenant CAs were made with (the "
                     "database holds another key's check value, or it cannot read the tenant CA "
                     "named above): every replica needs the same "
                     "one; copy master.key from a replica that serves this database "
                     "(docs/operations.md, \"Running several replicas\")",
                     master_path);
        said = true;
    }
    if (err == RP_OK)
        err = rp_restore_start(cfg->data_dir, store);
    if (err == RP_OK)
        err = bootstrap_token(&srv, store);
    if (err == RP_OK)
        said = (err = blobs_check(&srv, store)) != RP_OK;
    rp_store_close(store);
    if (err != RP_OK) { /* (a reason said above is not said again, as an error code's name) */
        if (said)
            rp_log_error("not started: the reason is above");
        else
            rp_log_error("cannot prepare %s: %s", cfg->data_dir, rp_strerror(err));
        rp_hold_release(run.hold);
        return 1;
    }
    console_init(&srv, cfg->console_dir[0] != '\0' ? cfg->console_dir : NULL);
    srv.ssl_ctx = tls_identity(&srv, cfg->hostnames);
    if (srv.ssl_ctx == NULL)
        return 1;
    cert_in_use(&srv, srv.ssl_ctx);
    err = rp_master_derive(srv.master_key, "rampart attestation nonces", srv.nonce_key,
                           sizeof(srv.nonce_key));
    if (err == RP_OK)
        err = rp_recorder_start(&srv, &srv.recorder);
    if (err == RP_OK)
        err = rp_deltas_start(&srv, &srv.deltas);
    if (err == RP_OK)
        err = rp_reports_keyer_start(&srv);
    if (err == RP_OK && cfg->debuginfod_url[0] != '\0')
        err = rp_symbols_debuginfod_start(cfg->debuginfod_url, cfg->data_dir);
    if (err == RP_OK)
        err = rp_webhook_sender_start(&srv);
    if (err == RP_OK)
        err = rp_fleet_summaries_start(&srv);
    if (err == RP_OK && cfg->webhook_allow_private)
        rp_log_warn("--webhook-allow-private: webhooks may reach loopback, link-local and "
                    "private addresses (for tests and labs only)");
    /* The limiters always exist (a rate of 0 lifts one): a reload may set any. */
    if (err == RP_OK)
        err = rp_ratelimit_new(1, 1, &srv.ratelimit);
    if (err == RP_OK)
        err = rp_ratelimit_new(1, 1, &srv.unclaimed);
    if (err == RP_OK)
        err = rp_ratelimit_new(1, 1, &srv.login_limit);
    if (err == RP_OK)
        err = rp_ratelimit_new(1, 1, &srv.auth_limit);
    if (err == RP_OK)
        err = rp_ratelimit_new(1, 1, &srv.reenroll_limit);
    if (err == RP_OK)
        apply_reloadable(&srv, cfg);
    srv.max_connections = connection_limit(cfg->max_connections, nthreads);
    srv.max_per_address = (unsigned)cfg->per_address;
    /* Every connection the service may hold, and those over the limit being refused. */
    if (err == RP_OK && cfg->per_address > 0)
        err = rp_peers_new((size_t)srv.max_connections + 64 * (size_t)nthreads, &srv.peers);
    if (err != RP_OK) {
        rp_log_error("cannot start: %s", rp_strerror(err));
        SSL_CTX_free(srv.ssl_ctx);
        return 1;
    }
    /* The loops' heartbeat: every second, or a quarter of the watchdog's timeout when that is
     * shorter; a loop silent for half the timeout (at least three beats) holds the watchdog. */
    watchdog_usec = rp_notify_watchdog_usec();
    srv.beat_ms = 1000;
    srv.on_beat = rp_ready_beat;
    if (watchdog_usec > 0 && watchdog_usec / 4000 < 1000)
        srv.beat_ms = watchdog_usec / 4000 > 10 ? (int)(watchdog_usec / 4000) : 10;
    run.stale_ms = watchdog_usec / 2000 > 3 * (uint64_t)srv.beat_ms
                       ? (long long)(watchdog_usec / 2000)
                       : 3LL * srv.beat_ms;

    /* One listening socket per worker on the same port (SO_REUSEPORT), which no process of
     * another data directory may share (listen.h). */
    err = rp_listen_claim(cfg->data_dir, host, port, &claim, message, sizeof(message));
    if (err != RP_OK) {
        rp_log_error("%s", message);
        goto out;
    }
    bound = claim.port;
    for (long i = 0; i < nthreads; i++) {
        fd = i == 0 ? claim.fd : rp_listen_another(&claim);
        claim.fd = -1; /* the first worker's now */
        if (fd < 0) {
            rp_log_error("cannot listen on %s: %s", cfg->listen, strerror(errno));
            goto out;
        }
        err = rp_worker_init(&workers[i], &srv, fd);
        if (err != RP_OK) {
            rp_log_error("cannot start a worker: %s", rp_strerror(err));
            goto out;
        }
        if (i == 0 && ((sweep = event_new(workers[0].base, -1, EV_PERSIST, on_uploads_sweep,
                                          &workers[0])) == NULL ||
                       event_add(sweep, &(struct timeval){RP_UPLOADS_SWEEP_EVERY, 0}) != 0)) {
            rp_log_error("cannot start the uploads' sweep");
            goto out;
        }
        if (i == 0 && ((ca_sweep = event_new(workers[0].base, -1, EV_PERSIST, on_ca_sweep,
                                             &workers[0])) == NULL ||
                       event_add(ca_sweep, &(struct timeval){RP_CA_SWEEP_EVERY, 0}) != 0)) {
            rp_log_error("cannot start the tenant CAs' sweep");
            goto out;
        }
        if (i == 0) /* (the CA sweep first an hour on: the requests roll over those in use) */
            event_active(sweep, EV_TIMEOUT, 0); /* once as soon as the loop runs */
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
            goto out;
        started++;
    }
    rp_listen_claimed(&claim);

    run.srv = &srv;
    run.workers = workers;
    run.started = started;
    main_base = event_base_new();
    sigint = evsignal_new(main_base, SIGINT, on_signal, NULL);
    sigterm = evsignal_new(main_base, SIGTERM, on_signal, NULL);
    sighup = evsignal_new(main_base, SIGHUP, on_reload, NULL);
    heartbeat = event_new(main_base, -1, EV_PERSIST, on_heartbeat, NULL);
    if (main_base == NULL || sigint == NULL || sigterm == NULL || sighup == NULL ||
        heartbeat == NULL || event_add(sigint, NULL) != 0 || event_add(sigterm, NULL) != 0 ||
        event_add(sighup, NULL) != 0 ||
        event_add(heartbeat, &(struct timeval){srv.beat_ms / 1000, srv.beat_ms % 1000 * 1000}) != 0)
        goto out;
    atomic_store(&srv.ready, true);
    if (cfg->port_file[0] != '\0') {
        rp_atomic_file_t f;
        char text[16];
        snprintf(text, sizeof(text), "%d\n", bound);
        if (rp_atomic_begin(&f, cfg->port_file, 0644, 0) != RP_OK ||
            rp_atomic_write(&f, text, strlen(text)) != RP_OK || rp_atomic_commit(&f, 0) != RP_OK)
            rp_log_error("cannot write %s", cfg->port_file);
    }
    snprintf(run.serving, sizeof(run.serving), "serving https://%s%s%s:%d/ with %d workers",
             strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", bound, started);
    rp_log_info("%s (data: %s)%s", run.serving, cfg->data_dir,
                claim.joined ? ", beside the processes of the same data directory already there"
                             : "");
    event_base_dispatch(main_base);
    event_free(sigint);
    event_free(sigterm);
    status = 0;
out:
    if (sighup != NULL)
        event_free(sighup);
    if (heartbeat != NULL)
        event_free(heartbeat);
    /* Before the sockets close: whoever finds the port held from now on must not take us for a
     * process still serving it. */
    rp_listen_release(&claim);
    for (int i = 0; i < started; i++) {
        event_base_loopbreak(workers[i].base);
        pthread_join(workers[i].thread, NULL);
    }
    if (sweep != NULL) /* its loop stopped, before its base is freed */
        event_free(sweep);
    if (ca_sweep != NULL)
        event_free(ca_sweep);
    /* After the workers (nothing more is submitted), before they are freed (they take back
     * what it wrote). */
    rp_recorder_stop(srv.recorder);
    rp_deltas_stop(srv.deltas);
    rp_reports_keyer_stop(); /* after the recorder: its batches' answers queue keyings */
    rp_webhook_sender_stop();
    rp_fleet_summaries_stop();
    rp_ratelimit_free(srv.ratelimit);
    rp_ratelimit_free(srv.unclaimed);
    rp_ratelimit_free(srv.login_limit);
    rp_ratelimit_free(srv.auth_limit);
    rp_ratelimit_free(srv.reenroll_limit);
    for (long i = 0; i < nthreads; i++)
        if (workers[i].srv != NULL) /* initialised, if only in part */
            rp_worker_free(&workers[i]);
    rp_peers_free(srv.peers); /* after the connections that count in it */
    if (main_base != NULL)
        event_base_free(main_base);
    SSL_CTX_free(srv.ssl_ctx);
    free(atomic_load(&srv.service_ca_pem));
    for (int i = 0; i < run.service_cas_replaced; i++)
        free(run.service_cas_old[i]);
    free(run.service_cas_old);
    rp_server_tls_forget();
    for (size_t i = 0; i < srv.crls_cap; i++)
        free(srv.crls[i].der);
    free(srv.crls);
    rp_wipe(srv.master_key, sizeof(srv.master_key));
    rp_wipe(srv.nonce_key, sizeof(srv.nonce_key));
    free(run.cli.v);
    rp_hold_release(run.hold); /* (last: the replica serves no more) */
    return status;
}
