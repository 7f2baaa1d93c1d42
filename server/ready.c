/*
 * Readiness (GET /readyz): whether the service can do its work now, which for a service that
 * records every attestation means whether it can write. /healthz says only that the process
 * serves (liveness); a full disk or a read-only data directory leaves it serving and answering
 * 200 while every attestation fails. So /readyz writes: a database transaction, and a small file
 * in the data directory, each synced - the file because SQLite can go on reusing the pages of its
 * write-ahead log on a full disk, where a new block cannot be had.
 *
 * The check writes to the disk, and anyone may ask for it: it runs at most once a second in a
 * process, and every request in between, or while it runs, gets the last answer - unless it has
 * run for longer than STALLED: a disk that hangs a write is no more ready than one that fails it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rampart/log.h"
#include "server.h"

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
    if (err != RP_OK) {
        snprintf(why, cap, "cannot write to the database: %s", rp_strerror(err));
        return false;
    }
    return true;
}

void rp_ready_handle(rp_req_t *r)
{
    char why[sizeof(reason)];
    double now = now_monotonic();
    bool ok, run = false;

    if (!atomic_load(&r->w->srv->ready)) {
        rp_reply_error(r, 503, "starting", "the service is starting");
        return;
    }
    pthread_mutex_lock(&lock);
    if (!checking && (!checked || now - checked_at >= CHECK_EVERY)) {
        checking = run = true;
        check_began = now;
    }
    ok = ready;
    snprintf(why, sizeof(why), "%s", checked ? reason : "the first check is under way");
    if (checking && !run && now - check_began > STALLED) {
        ok = false;
        snprintf(why, sizeof(why),
                 "the write check has not finished in %.0f seconds: the disk may hang",
                 now - check_began);
    }
    pthread_mutex_unlock(&lock);
    if (run) {
        ok = check(r->w, why, sizeof(why));
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
    if (ok)
        rp_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
    else
        rp_reply_error(r, 503, "not_ready", "%s", why);
}
