/*
 * Liveness (GET /healthz) and readiness (GET /readyz). Readiness: whether the service can do its
 * work now, which for a service that records every attestation means whether it can write.
 * /healthz says only that the process serves (liveness); a full disk or a read-only data
 * directory leaves it serving and answering 200 while every attestation fails. So /readyz writes:
 * a database transaction, and a small file in the data directory, each synced - the file because
 * SQLite can go on reusing the pages of its write-ahead log on a full disk, where a new block
 * cannot be had.
 *
 * The check writes to the disk, and anyone may ask for it: it runs at most once a second in a
 * process, and every request in between, or while it runs, gets the last answer - unless it has
 * run for longer than STALLED: a disk that hangs a write is no more ready than one that fails it.
 *
 * The service manager is told the same (main.c: READY=1 once the first check passes, which each
 * worker loop's heartbeat runs until then), and the heartbeats are what its watchdog hears: a
 * WATCHDOG=1 goes out only while every worker's loop turns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "context.h"
#include "rampart/log.h"
#include "ready.h"
#include "req.h"

#define PROBE_NAME "ready.probe"
#define PROBE_SIZE 4096 /* one block: a full file system cannot give it */
#define CHECK_EVERY 1.0 /* seconds */
#define STALLED 3.0     /* seconds a check may take before the service counts as not ready */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool checking, checked, ready;
static double checked_at, check_began;
static char reason[256];

static double now_monotonic(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Write, sync and remove DIR/ready.probe; false, with why, when any step fails. Replicas sharing
 * the directory may race on the name: a removal that finds it gone is no failure. */
static bool file_writable(const char *dir, char *why, size_t cap)
{
    static const uint8_t block[PROBE_SIZE];
    char path[PATH_MAX + 16];
    const char *step = "create";
    size_t done = 0;
    int fd, saved = 0;
    bool ok = false;

    snprintf(path, sizeof(path), "%s/" PROBE_NAME, dir);
    /* O_NONBLOCK: a FIFO left under the name must not hang the worker (it refuses at once). */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd >= 0) {
        struct stat sb;
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            close(fd);
            snprintf(why, cap, "%.200s is not a regular file: remove it", path);
            return false;
        }
        step = "write";
        while (done < sizeof(block)) {
            ssize_t n = write(fd, block + done, sizeof(block) - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                if (n == 0)
                    errno = ENOSPC;
                break;
            }
            done += (size_t)n;
        }
        if (done == sizeof(block)) {
            step = "sync";
            ok = fsync(fd) == 0;
        }
        saved = errno;
        if (close(fd) != 0 && ok) {
            ok = false;
            saved = errno;
            step = "close";
        }
        if (unlink(path) != 0 && errno != ENOENT && ok) {
            ok = false;
            saved = errno;
            step = "remove";
        }
        errno = saved;
    }
    if (fd < 0 && errno == ENXIO) /* a FIFO nobody reads */
        snprintf(why, cap, "%.200s is not a regular file: remove it", path);
    else if (!ok)
        snprintf(why, cap, "cannot %s a file in the data directory: %s", step, strerror(errno));
    return ok;
}

static bool check(rp_worker_t *w, char *why, size_t cap)
{
    rp_err_t err;

    if (!file_writable(w->srv->data_dir, why, cap))
        return false;
    err = rp_store_write_check(w->store);
    if (err == RP_ERR_BUSY) { /* its connection lost and not made again, or its lock held */
        snprintf(why, cap, "cannot write to the database: it is out of reach or busy");
        return false;
    }
    if (err == RP_ERR_DENIED) {
        snprintf(why, cap,
                 "cannot write to the database: it is read-only "
                 "(default_transaction_read_only, or a standby)");
        return false;
    }
    if (err != RP_OK) {
        snprintf(why, cap, "cannot write to the database: %s", rp_strerror(err));
        return false;
    }
    return true;
}

/* The check when it is due (on w's loop); else the last result. ok and why: the answer. */
static void check_if_due(rp_worker_t *w, bool *answer, char *why, size_t cap)
{
    double now = now_monotonic();
    bool ok, run = false;

    pthread_mutex_lock(&lock);
    if (!checking && (!checked || now - checked_at >= CHECK_EVERY)) {
        checking = run = true;
        check_began = now;
    }
    ok = ready;
    snprintf(why, cap, "%s", checked ? reason : "the first check is under way");
    if (checking && !run && now - check_began > STALLED) {
        ok = false;
        snprintf(why, cap, "the write check has not finished in %.0f seconds: the disk may hang",
                 now - check_began);
    }
    pthread_mutex_unlock(&lock);
    if (run) {
        ok = check(w, why, cap);
        pthread_mutex_lock(&lock);
        if (checked ? ok != ready : !ok) { /* a change, or trouble from the start */
            if (ok)
                rp_log_info("ready: the data directory can be written");
            else
                rp_log_warn("not ready: %s", why);
        }
        ready = ok;
        snprintf(reason, sizeof(reason), "%s", ok ? "" : why);
        checked = true;
        checked_at = now_monotonic();
        checking = false;
        pthread_mutex_unlock(&lock);
    }
    *answer = ok;
}

void rp_h_healthz(rp_req_t *r)
{
    if (atomic_load(&r->w->srv->ready))
        rp_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
    else
        rp_reply_error(r, 503, "starting", "the service is starting");
}

/* Whether the TLS certificate in use is within its renewal margin (main.c renews it as the margin
 * begins, so it was not renewed) and not waiting for the successor service CA to renew it (ca.h,
 * the service CA's rollover: review r14 L1), and why in words. */
static bool cert_ending(const rp_server_t *srv, char *why, size_t cap)
{
    int64_t now = (int64_t)time(NULL), left = atomic_load(&srv->server_cert_not_after) - now;

    if (left >= RP_SERVER_CERT_RENEW_BEFORE || atomic_load(&srv->server_cert_switch_at) > now)
        return false;
    snprintf(why, cap, "the TLS certificate %s %lld day(s)%s and was not renewed: see the log",
             left >= 0 ? "ends in" : "ended", (long long)((left >= 0 ? left : -left) / 86400),
             left >= 0 ? "" : " ago");
    return true;
}

/* Whether the newest service CA is due for its successor (ca.h, the service CA's rollover: no
 * successor was made), and why in words. */
static bool service_ca_ending(const rp_server_t *srv, char *why, size_t cap)
{
    int64_t now = (int64_t)time(NULL), not_before = atomic_load(&srv->service_ca_not_before),
            not_after = atomic_load(&srv->service_ca_not_after);

    if (not_after == 0 || !rp_ca_rollover_due(not_before, not_after, now))
        return false;
    snprintf(why, cap,
             "the service CA ends in %lld day(s) and has no successor: rampart-server service-ca "
             "next (docs/operations.md)",
             (long long)((not_after - now) / 86400));
    return true;
}

void rp_ready_handle(rp_req_t *r)
{
    char why[sizeof(reason)];
    bool ok;

    if (!atomic_load(&r->w->srv->ready)) {
        rp_reply_error(r, 503, "starting", "the service is starting");
        return;
    }
    /* Blobs moved away is final (until a restart): said first, whatever the write check says. */
    if (atomic_load(&r->w->srv->blobs_moved)) {
        rp_reply_error(r, 503, "not_ready",
                       "this replica's blobs were moved to the other store (rampart-server blobs "
                       "move): it serves no blob until it is restarted with the other --blobs");
        return;
    }
    check_if_due(r->w, &ok, why, sizeof(why));
    if (ok && atomic_load(&r->w->srv->hold_lost)) { /* (it serves no blob: hold.h) */
        snprintf(why, sizeof(why),
                 "this replica's hold on the database is lost, or its blobs "
                 "were moved meanwhile: it serves no blob (see the log)");
        ok = false;
    }
    if (ok && !cert_ending(r->w->srv, why, sizeof(why)) &&
        !service_ca_ending(r->w->srv, why, sizeof(why)))
        rp_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
    else if (ok) /* still ready: every replica would be taken out at once, before its end */
        rp_reply_json(r, 200, json_pack("{s:s, s:s}", "status", "ready", "warning", why));
    else
        rp_reply_error(r, 503, "not_ready", "%s", why);
}

void rp_ready_beat(rp_worker_t *w)
{
    struct timespec t;
    char why[sizeof(reason)];
    bool ok, known;

    clock_gettime(CLOCK_MONOTONIC, &t);
    atomic_store(&w->beat, (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000);
    pthread_mutex_lock(&lock);
    known = checked && ready;
    pthread_mutex_unlock(&lock);
    /* Until the first check passes (then /readyz's requests run it): READY=1 waits for it. */
    if (!known && atomic_load(&w->srv->ready))
        check_if_due(w, &ok, why, sizeof(why));
}

bool rp_ready_state(char *why, size_t cap)
{
    bool ok;

    pthread_mutex_lock(&lock);
    ok = checked && ready;
    snprintf(why, cap, "%s", checked ? reason : "the first check is under way");
    pthread_mutex_unlock(&lock);
    return ok;
}

bool rp_ready_loops_turn(const rp_worker_t *workers, int n, long long stale_ms)
{
    struct timespec t;
    long long now;

    clock_gettime(CLOCK_MONOTONIC, &t);
    now = (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
    for (int i = 0; i < n; i++) {
        long long beat = atomic_load(&workers[i].beat);
        if (beat == 0 || now - beat > stale_ms)
            return false;
    }
    return true;
}
