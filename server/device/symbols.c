/*
 * Symbolication for the service (reports.h, "symbols.c"): debug files are read by a confined
 * child, rampart-symbolize (symbolize.h has its protocol), never in this process. This file owns
 * running it (a descriptor, a deadline, a bounded answer), parsing its answer strictly, and the
 * cache of what it said, so that showing buckets does not start a child per request.
 *
 * A child that crashes, hangs (killed at the deadline) or answers anything but the protocol
 * leaves the frames unnamed, with a log line, and its file is not tried again for
 * FAILED_RETRY seconds; the service goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "context.h"
#include "rampart/log.h"
#include "rampart/text.h"
#include "reports.h"
#include "req.h"
#include "routes.h"
#include "symbolize.h"

#define TIMEOUT_MS_DEFAULT 5000 /* a child answers within this, or is killed */
#define FAILED_RETRY 300        /* seconds a file whose child failed is left unnamed */
#define CACHE_SLOTS 8192        /* offsets named, kept (about 4.5 MiB) */
#define CACHE_PROBE 8
#define FAILED_SLOTS 64
#define RUN_ENV_MAX 8 /* variables a child is given (it inherits none) */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char helper[PATH_MAX];
static int timeout_ms = TIMEOUT_MS_DEFAULT;

/* What names a debug file's contents: a re-upload is a new file (written aside, renamed). */
typedef struct file_key {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
} file_key_t;

static struct cached {
    bool used;
    file_key_t key;
    uint64_t offset;
    rp_symbol_t sym;
} cache[CACHE_SLOTS];

static struct failed {
    file_key_t key;
    time_t at; /* 0: free */
} failed[FAILED_SLOTS];

static atomic_ullong m_opened, m_runs_ok, m_runs_refused, m_runs_failed, m_cache_hits;

unsigned long long rp_symbols_opened(void)
{
    return atomic_load(&m_opened);
}

void rp_symbols_metrics(struct evbuffer *buf)
{
    evbuffer_add_printf(
        buf,
        "# HELP rampart_symbols_runs_total Runs of the confined debug-file reader "
        "(rampart-symbolize), by result (failed: crashed, killed at its deadline, or answered "
        "outside the protocol).\n# TYPE rampart_symbols_runs_total counter\n"
        "rampart_symbols_runs_total{result=\"ok\"} %llu\n"
        "rampart_symbols_runs_total{result=\"refused\"} %llu\n"
        "rampart_symbols_runs_total{result=\"failed\"} %llu\n"
        "# HELP rampart_symbols_cache_hits_total Frame offsets named from the cache.\n"
        "# TYPE rampart_symbols_cache_hits_total counter\n"
        "rampart_symbols_cache_hits_total %llu\n",
        atomic_load(&m_runs_ok), atomic_load(&m_runs_refused), atomic_load(&m_runs_failed),
        atomic_load(&m_cache_hits));
}

void rp_symbols_configure(const char *path, int timeout)
{
    pthread_mutex_lock(&lock);
    if (path != NULL)
        snprintf(helper, sizeof(helper), "%s", path);
    if (timeout > 0)
        timeout_ms = timeout;
    pthread_mutex_unlock(&lock);
}

/* The helper's path: as configured, else beside this program's binary. */
static bool helper_path(char out[PATH_MAX], int *timeout)
{
    bool ok = true;

    pthread_mutex_lock(&lock);
    *timeout = timeout_ms;
    if (helper[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", helper, sizeof(helper) - 1);
        char *slash;
        helper[n > 0 ? n : 0] = '\0';
        slash = strrchr(helper, '/');
        if (slash == NULL ||
            (size_t)(slash - helper) + sizeof("/rampart-symbolize") > sizeof(helper))
            helper[0] = '\0';
        else
            memcpy(slash, "/rampart-symbolize", sizeof("/rampart-symbolize"));
    }
    ok = helper[0] != '\0';
    memcpy(out, helper, PATH_MAX);
    pthread_mutex_unlock(&lock);
    return ok;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Run rampart-symbolize MODE with the file fd as its descriptor 3 and in on its stdin. RP_OK:
 * it exited 0 or 1 (*status) within the deadline, its answer (at most RP_SYMBOLIZE_ANSWER_MAX
 * bytes, NUL-terminated) in *out for the caller to free. RP_ERR_IO otherwise (logged, with why).
 */
static rp_err_t run(const char *mode, const char *arg, int fd, char *const *env, const char *in,
                    size_t inlen, int wait_ms, char **out, size_t *outlen, int *status)
{
    char path[PATH_MAX], *argv[] = {"rampart-symbolize", (char *)mode, (char *)arg, NULL};
    char env_test[96], *envp[RUN_ENV_MAX + 2] = {NULL};
    const char *test = getenv("RAMPART_SYMBOLIZE_TEST");
    int inp[2] = {-1, -1}, outp[2] = {-1, -1}, filefd = -1, timeout, st = 0, rc;
    size_t nenv = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t sa;
    pid_t pid = -1;
    size_t len = 0, cap = 4096;
    char *buf = NULL;
    const char *why = NULL;
    int64_t deadline;

    *out = NULL;
    *outlen = 0;
    *status = -1;
    if (!helper_path(path, &timeout)) {
        rp_log_warn("symbols: cannot find rampart-symbolize");
        return RP_ERR_IO;
    }
    if (wait_ms > 0)
        timeout = wait_ms;
    for (; env != NULL && env[nenv] != NULL && nenv < RUN_ENV_MAX; nenv++)
        envp[nenv] = env[nenv];
    /* The helper is built with RP_SYMBOLIZE_TEST_HOOKS only in test builds; elsewhere ignored. */
    if (test != NULL && snprintf(env_test, sizeof(env_test), "RAMPART_SYMBOLIZE_TEST=%s", test) <
                            (int)sizeof(env_test))
        envp[nenv++] = env_test;
    /* Above 3, so that placing it at 3 clears its close-on-exec. */
    if (pipe2(inp, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0 ||
        (fd >= 0 && (filefd = fcntl(fd, F_DUPFD_CLOEXEC, 10)) < 0) || (buf = malloc(cap)) == NULL) {
        why = "cannot make its pipes";
        goto done;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        why = "cannot start it";
        goto done;
    }
    rc = posix_spawn_file_actions_adddup2(&fa, inp[0], 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (rc == 0 && filefd >= 0)
        rc = posix_spawn_file_actions_adddup2(&fa, filefd, 3);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    /* Signals as a new program expects them, whatever this thread blocks or ignores. */
    if (rc == 0 && (rc = posix_spawnattr_init(&sa)) == 0) {
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        rc = posix_spawnattr_setsigmask(&sa, &none);
        if (rc == 0)
            rc = posix_spawnattr_setsigdefault(&sa, &all);
        if (rc == 0)
            rc = posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (rc == 0)
            rc = posix_spawn(&pid, path, &fa, &sa, argv, envp);
        posix_spawnattr_destroy(&sa);
    }
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        pid = -1;
        why = "cannot start it";
        goto done;
    }
    close(inp[0]), inp[0] = -1;
    close(outp[1]), outp[1] = -1;
    if (filefd >= 0)
        close(filefd), filefd = -1;
    /* The queries fit the pipe's buffer (RP_SYMBOLIZE_QUERIES_MAX short lines); a child that
     * died early makes this fail, which its answer then shows. */
    if (inlen > 0 && write(inp[1], in, inlen) != (ssize_t)inlen)
        rp_log_debug("symbols: rampart-symbolize took no queries");
    close(inp[1]), inp[1] = -1;
    deadline = now_ms() + timeout;
    for (;;) {
        struct pollfd p = {outp[0], POLLIN, 0};
        int64_t left = deadline - now_ms();
        ssize_t n;
        if (left <= 0) {
            why = "killed at its deadline";
            break;
        }
        rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            continue; /* the deadline, next turn */
        if (len + 1 == cap) {
            char *more;
            if (cap > RP_SYMBOLIZE_ANSWER_MAX) {
                why = "answered more than the protocol's bound";
                break;
            }
            if ((more = realloc(buf, cap * 2)) == NULL) {
                why = "no memory for its answer";
                break;
            }
            buf = more, cap *= 2;
        }
        n = read(outp[0], buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
done:
    if (pid > 0) {
        if (why != NULL)
            kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    for (int i = 0; i < 2; i++) {
        if (inp[i] >= 0)
            close(inp[i]);
        if (outp[i] >= 0)
            close(outp[i]);
    }
    if (filefd >= 0)
        close(filefd);
    if (why == NULL && len > RP_SYMBOLIZE_ANSWER_MAX)
        why = "answered more than the protocol's bound";
    if (why == NULL && WIFSIGNALED(st))
        why = "killed by a signal (a crash, or a limit)";
    if (why == NULL && (!WIFEXITED(st) || WEXITSTATUS(st) > 1))
        why = "failed";
    if (why != NULL) {
        rp_log_warn("symbols: rampart-symbolize %s: %s%s%s", mode, why,
                    WIFSIGNALED(st) ? ", signal " : "",
                    WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "");
        free(buf);
        return RP_ERR_IO;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    *status = WEXITSTATUS(st);
    return RP_OK;
}

static json_t *load_answer(const char *buf, size_t len)
{
    if (buf == NULL || len > RP_SYMBOLIZE_ANSWER_MAX)
        return NULL;
    return json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
}

rp_err_t rp_symbols_parse_check(const char *buf, size_t len,
                                char out[2 * RP_REPORT_BUILD_ID_MAX + 1])
{
    static const char *const keys[] = {"build_id"};
    json_t *o = load_answer(buf, len);
    const char *id = o != NULL && rp_json_has_exactly(o, keys, 1)
                         ? rp_json_text(json_object_get(o, "build_id"), 2 * RP_REPORT_BUILD_ID_MAX)
                         : NULL;
    size_t n = id != NULL ? strlen(id) : 0;
    rp_err_t err = RP_ERR_MALFORMED;

    out[0] = '\0';
    if (n >= 2 && n % 2 == 0 && strspn(id, "0123456789abcdef") == n) {
        memcpy(out, id, n + 1);
        err = RP_OK;
    }
    json_decref(o);
    return err;
}

/* One frame of a lookup's answer: {} or {"function"[, "file", "line"]}. */
static bool parse_frame(json_t *f, rp_symbol_t *out)
{
    static const char *const named[] = {"function"}, *const lined[] = {"function", "file", "line"};
    const char *fn, *file;
    json_int_t line;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(f))
        return false;
    if (json_object_size(f) == 0)
        return true;
    if (!rp_json_has_exactly(f, named, 1) && !rp_json_has_exactly(f, lined, 3))
        return false;
    /* The names come from a contributor's debug file and reach an operator's terminal (`rampart
     * failure show`): no control character (an escape sequence), by the one rule of text.h. */
    fn = rp_json_text(json_object_get(f, "function"), sizeof(out->function) - 1);
    if (fn == NULL || fn[0] == '\0' || !rp_text_no_controls(fn))
        return false;
    memcpy(out->function, fn, strlen(fn) + 1);
    if (json_object_size(f) == 1)
        return true;
    file = rp_json_text(json_object_get(f, "file"), sizeof(out->file) - 1);
    line = json_integer_value(json_object_get(f, "line"));
    if (file == NULL || !rp_text_no_controls(file) ||
        !json_is_integer(json_object_get(f, "line")) || line < 1 || line > INT_MAX)
        return false;
    memcpy(out->file, file, strlen(file) + 1);
    out->line = (int)line;
    return true;
}

rp_err_t rp_symbols_parse_lookup(const char *buf, size_t len, size_t n, rp_symbol_t *out)
{
    static const char *const keys[] = {"frames"};
    json_t *o = load_answer(buf, len), *frames = json_object_get(o, "frames");
    rp_err_t err = RP_ERR_MALFORMED;

    memset(out, 0, n * sizeof(*out));
    if (o != NULL && rp_json_has_exactly(o, keys, 1) && json_is_array(frames) &&
        json_array_size(frames) == n) {
        err = RP_OK;
        for (size_t i = 0; i < n && err == RP_OK; i++)
            if (!parse_frame(json_array_get(frames, i), &out[i]))
                err = RP_ERR_MALFORMED;
    }
    if (err != RP_OK)
        memset(out, 0, n * sizeof(*out));
    json_decref(o);
    return err;
}

rp_err_t rp_symbols_build_id_fd(int fd, char out[2 * RP_REPORT_BUILD_ID_MAX + 1])
{
    char *ans;
    size_t len;
    int status;
    rp_err_t err;

    out[0] = '\0';
    if (run("check", NULL, fd, NULL, NULL, 0, 0, &ans, &len, &status) != RP_OK) {
        atomic_fetch_add(&m_runs_failed, 1);
        return RP_ERR_IO;
    }
    if (status == 1) {
        atomic_fetch_add(&m_runs_refused, 1);
        free(ans);
        return RP_ERR_INVALID_ARG;
    }
    err = rp_symbols_parse_check(ans, len, out);
    free(ans);
    if (err != RP_OK) {
        atomic_fetch_add(&m_runs_failed, 1);
        rp_log_warn("symbols: rampart-symbolize check: an answer outside the protocol");
        return RP_ERR_IO;
    }
    atomic_fetch_add(&m_runs_ok, 1);
    return RP_OK;
}

rp_err_t rp_symbols_build_id(const uint8_t *data, size_t len,
                             char out[2 * RP_REPORT_BUILD_ID_MAX + 1])
{
    int fd;
    rp_err_t err;

    out[0] = '\0';
    if (len == 0 || len > RP_SYMBOLS_MAX)
        return RP_ERR_INVALID_ARG;
    if ((fd = memfd_create("rampart-debug-file", MFD_CLOEXEC)) < 0)
        return RP_ERR_IO;
    err = write(fd, data, len) == (ssize_t)len ? rp_symbols_build_id_fd(fd, out) : RP_ERR_IO;
    close(fd);
    return err;
}

/* ---- the cache ---- */

static uint64_t slot_of(const file_key_t *k, uint64_t offset)
{
    uint64_t h = 1469598103934665603ull;
    uint64_t parts[] = {(uint64_t)k->dev, (uint64_t)k->ino, (uint64_t)k->size,
                        (uint64_t)k->mtime_ns, offset};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        h ^= parts[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h % CACHE_SLOTS;
}

static bool same_key(const file_key_t *a, const file_key_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

/* Under lock. */
static bool cache_get(const file_key_t *k, uint64_t offset, rp_symbol_t *out)
{
    uint64_t s = slot_of(k, offset);
    for (int i = 0; i < CACHE_PROBE; i++) {
        struct cached *c = &cache[(s + (uint64_t)i) % CACHE_SLOTS];
        if (c->used && c->offset == offset && same_key(&c->key, k)) {
            *out = c->sym;
            return true;
        }
    }
    return false;
}

/* Under lock: in a free slot near its own, else over the first. */
static void cache_put(const file_key_t *k, uint64_t offset, const rp_symbol_t *sym)
{
    uint64_t s = slot_of(k, offset);
    struct cached *c = &cache[s];
    for (int i = 0; i < CACHE_PROBE; i++)
        if (!cache[(s + (uint64_t)i) % CACHE_SLOTS].used) {
            c = &cache[(s + (uint64_t)i) % CACHE_SLOTS];
            break;
        }
    c->used = true;
    c->key = *k;
    c->offset = offset;
    c->sym = *sym;
}

/* Under lock: whether the file's child failed less than FAILED_RETRY seconds ago. */
static bool failed_recently(const file_key_t *k, time_t now)
{
    for (size_t i = 0; i < FAILED_SLOTS; i++)
        if (failed[i].at != 0 && same_key(&failed[i].key, k))
            return now - failed[i].at < FAILED_RETRY;
    return false;
}

static void failed_put(const file_key_t *k, time_t now)
{
    size_t oldest = 0;
    for (size_t i = 0; i < FAILED_SLOTS; i++) {
        if (failed[i].at != 0 && same_key(&failed[i].key, k)) {
            oldest = i;
            break;
        }
        if (failed[i].at < failed[oldest].at)
            oldest = i;
    }
    failed[oldest].key = *k;
    failed[oldest].at = now;
}

/* ---- handles ---- */

struct rp_symbols {
    int fd;
    file_key_t key;
};

rp_err_t rp_symbols_open(const char *path, rp_symbols_t **out)
{
    rp_symbols_t *h = calloc(1, sizeof(*h));
    struct stat sb;

    *out = NULL;
    if (h == NULL)
        return RP_ERR_NO_MEMORY;
    h->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (h->fd < 0 || fstat(h->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rp_symbols_close(h);
        return RP_ERR_IO;
    }
    atomic_fetch_add(&m_opened, 1);
    h->key = (file_key_t){sb.st_dev, sb.st_ino, sb.st_size,
                          (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec};
    *out = h;
    return RP_OK;
}

void rp_symbols_close(rp_symbols_t *h)
{
    if (h == NULL)
        return;
    if (h->fd >= 0)
        close(h->fd);
    free(h);
}

/* Ask a child for n offsets (at most RP_SYMBOLIZE_QUERIES_MAX); false when it failed. */
static bool ask(rp_symbols_t *h, const uint64_t *offs, size_t n, rp_symbol_t *out)
{
    char q[RP_SYMBOLIZE_QUERIES_MAX * 20], *ans;
    size_t qlen = 0, len;
    int status;
    rp_err_t err;

    for (size_t i = 0; i < n; i++)
        qlen += (size_t)snprintf(q + qlen, sizeof(q) - qlen, "0x%" PRIx64 "\n", offs[i]);
    if (run("lookup", NULL, h->fd, NULL, q, qlen, 0, &ans, &len, &status) != RP_OK) {
        atomic_fetch_add(&m_runs_failed, 1);
        return false;
    }
    err = status == 0 ? rp_symbols_parse_lookup(ans, len, n, out) : RP_ERR_INVALID_ARG;
    free(ans);
    if (err == RP_OK) {
        atomic_fetch_add(&m_runs_ok, 1);
        return true;
    }
    if (err == RP_ERR_INVALID_ARG) {
        atomic_fetch_add(&m_runs_refused, 1);
        rp_log_warn("symbols: rampart-symbolize refused a stored debug file");
    } else {
        atomic_fetch_add(&m_runs_failed, 1);
        rp_log_warn("symbols: rampart-symbolize lookup: an answer outside the protocol");
    }
    return false;
}

void rp_symbols_lookup(rp_symbols_t *h, const uint64_t *offsets, size_t n, rp_symbol_t *out)
{
    uint64_t miss[RP_SYMBOLIZE_QUERIES_MAX];
    size_t at[RP_SYMBOLIZE_QUERIES_MAX];
    rp_symbol_t got[RP_SYMBOLIZE_QUERIES_MAX];
    time_t now = time(NULL);

    memset(out, 0, n * sizeof(*out));
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        bool skip;
        pthread_mutex_lock(&lock);
        for (; i < n && k < RP_SYMBOLIZE_QUERIES_MAX; i++) {
            if (cache_get(&h->key, offsets[i], &out[i]))
                atomic_fetch_add(&m_cache_hits, 1);
            else
                miss[k] = offsets[i], at[k++] = i;
        }
        skip = failed_recently(&h->key, now);
        pthread_mutex_unlock(&lock);
        if (k == 0 || skip)
            continue;
        if (!ask(h, miss, k, got)) {
            pthread_mutex_lock(&lock);
            failed_put(&h->key, now);
            pthread_mutex_unlock(&lock);
            return;
        }
        pthread_mutex_lock(&lock);
        for (size_t j = 0; j < k; j++) {
            out[at[j]] = got[j];
            cache_put(&h->key, miss[j], &got[j]);
        }
        pthread_mutex_unlock(&lock);
    }
}

rp_err_t rp_symbols_resolve(const char *path, const uint64_t *offsets, size_t n, rp_symbol_t *out)
{
    rp_symbols_t *h;
    rp_err_t err;

    memset(out, 0, n * sizeof(*out));
    if ((err = rp_symbols_open(path, &h)) != RP_OK)
        return err;
    rp_symbols_lookup(h, offsets, n, out);
    rp_symbols_close(h);
    return RP_OK;
}

/* ---- debug files from a debuginfod server (--debuginfod-url) ---- */

#define DEBUGINFOD_QUEUE 64          /* build IDs waiting to be fetched; more are dropped */
#define DEBUGINFOD_REMEMBER 1024     /* build IDs tried lately */
#define DEBUGINFOD_MISSING_RETRY 600 /* seconds before asking again for one the server lacks */
#define DEBUGINFOD_FAILED_RETRY 60   /* ... for one whose fetch failed */
#define DEBUGINFOD_DEADLINE_MS 45000 /* a fetch, at most (its child is killed then) */

typedef char build_hex_t[2 * RP_REPORT_BUILD_ID_MAX + 1];

static struct {
    bool on;
    char url[512];
    char dir[PATH_MAX]; /* DATA/debuginfod: BUILD_ID.debug, and libdebuginfod's cache/ */
    pthread_t thread;
    pthread_cond_t wake;
    build_hex_t queue[DEBUGINFOD_QUEUE];
    size_t nqueue;
    build_hex_t fetching; /* the one being fetched ("" none): asked again meanwhile, not queued */
    struct {
        build_hex_t id;
        time_t at;
        int retry; /* seconds */
    } tried[DEBUGINFOD_REMEMBER];
    void (*on_fetch)(const char *id); /* told of each debug file kept */
} dfd = {.wake = PTHREAD_COND_INITIALIZER};

void rp_symbols_debuginfod_on_fetch(void (*fn)(const char *build_id))
{
    pthread_mutex_lock(&lock);
    dfd.on_fetch = fn;
    pthread_mutex_unlock(&lock);
}

static atomic_ullong m_fetch_ok, m_fetch_missing, m_fetch_failed, m_fetch_dropped;

static bool build_hex_valid(const char *id)
{
    size_t n = strlen(id);
    return n >= 2 && n <= 2 * RP_REPORT_BUILD_ID_MAX && n % 2 == 0 &&
           strspn(id, "0123456789abcdef") == n;
}

void rp_symbols_debuginfod_metrics(struct evbuffer *buf)
{
    evbuffer_add_printf(
        buf,
        "# HELP rampart_debuginfod_fetches_total Debug files asked of the debuginfod server "
        "(--debuginfod-url), by result (dropped: the queue was full).\n"
        "# TYPE rampart_debuginfod_fetches_total counter\n"
        "rampart_debuginfod_fetches_total{result=\"ok\"} %llu\n"
        "rampart_debuginfod_fetches_total{result=\"missing\"} %llu\n"
        "rampart_debuginfod_fetches_total{result=\"failed\"} %llu\n"
        "rampart_debuginfod_fetches_total{result=\"dropped\"} %llu\n",
        atomic_load(&m_fetch_ok), atomic_load(&m_fetch_missing), atomic_load(&m_fetch_failed),
        atomic_load(&m_fetch_dropped));
}

/* Under lock: remember that id was tried now, not to be asked again for retry seconds. */
static void tried_put(const char *id, time_t now, int retry)
{
    size_t oldest = 0;
    for (size_t i = 0; i < DEBUGINFOD_REMEMBER; i++) {
        if (strcmp(dfd.tried[i].id, id) == 0) {
            oldest = i;
            break;
        }
        if (dfd.tried[i].at < dfd.tried[oldest].at)
            oldest = i;
    }
    snprintf(dfd.tried[oldest].id, sizeof(dfd.tried[oldest].id), "%s", id);
    dfd.tried[oldest].at = now;
    dfd.tried[oldest].retry = retry;
}

static bool tried_lately(const char *id, time_t now)
{
    for (size_t i = 0; i < DEBUGINFOD_REMEMBER; i++)
        if (dfd.tried[i].at != 0 && strcmp(dfd.tried[i].id, id) == 0)
            return now - dfd.tried[i].at < dfd.tried[i].retry;
    return false;
}

/*
 * One fetch: the child asks the server (libdebuginfod into DIR/cache), then a confined check of
 * what came: a debug file of this very build ID (a server answering another file is refused),
 * moved to DIR/ID.debug. Returns the retry delay to remember (0: fetched).
 */
static int fetch_one(const char *id)
{
    static const char *const ok_keys[] = {"path"}, *const err_keys[] = {"error", "missing"};
    char env[5][PATH_MAX + 64], *envp[6], cdir[PATH_MAX], final[PATH_MAX], got[sizeof(build_hex_t)];
    char *ans = NULL;
    size_t len, n;
    int status, fd, retry = DEBUGINFOD_FAILED_RETRY;
    json_t *o = NULL;
    const char *path;

    if (snprintf(cdir, sizeof(cdir), "%s/cache", dfd.dir) >= (int)sizeof(cdir))
        return DEBUGINFOD_FAILED_RETRY;
    snprintf(env[0], sizeof(env[0]), "DEBUGINFOD_URLS=%s", dfd.url);
    snprintf(env[1], sizeof(env[1]), "DEBUGINFOD_CACHE_PATH=%s", cdir);
    snprintf(env[2], sizeof(env[2]), "DEBUGINFOD_MAXSIZE=%llu", (unsigned long long)RP_SYMBOLS_MAX);
    snprintf(env[3], sizeof(env[3]), "DEBUGINFOD_TIMEOUT=%d", 10);
    snprintf(env[4], sizeof(env[4]), "DEBUGINFOD_MAXTIME=%d", DEBUGINFOD_DEADLINE_MS / 1000 - 5);
    for (size_t i = 0; i < 5; i++)
        envp[i] = env[i];
    envp[5] = NULL;
    if (run("fetch", id, -1, envp, NULL, 0, DEBUGINFOD_DEADLINE_MS, &ans, &len, &status) != RP_OK)
        goto failed;
    o = load_answer(ans, len);
    if (status == 1 && o != NULL && rp_json_has_exactly(o, err_keys, 2) &&
        json_is_true(json_object_get(o, "missing"))) {
        atomic_fetch_add(&m_fetch_missing, 1);
        rp_log_info("debuginfod: %s has no debug file for build ID %s", dfd.url, id);
        retry = DEBUGINFOD_MISSING_RETRY;
        goto out;
    }
    path = status == 0 && o != NULL && rp_json_has_exactly(o, ok_keys, 1)
               ? rp_json_text(json_object_get(o, "path"), PATH_MAX - 1)
               : NULL;
    n = strlen(cdir);
    /* Only a file in the cache the child was given. */
    if (path == NULL || strncmp(path, cdir, n) != 0 || path[n] != '/' ||
        strstr(path, "/../") != NULL) {
        rp_log_warn("debuginfod: build ID %s: %s", id,
                    status == 1 ? json_string_value(json_object_get(o, "error"))
                                : "an answer outside the protocol");
        goto failed;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        goto failed;
    status = rp_symbols_build_id_fd(fd, got) == RP_OK && strcmp(got, id) == 0;
    close(fd);
    if (!status) {
        rp_log_warn("debuginfod: what %s sent for build ID %s is not its debug file", dfd.url, id);
        (void)unlink(path);
        goto failed;
    }
    if (snprintf(final, sizeof(final), "%s/%s.debug", dfd.dir, id) >= (int)sizeof(final) ||
        rename(path, final) != 0)
        goto failed;
    atomic_fetch_add(&m_fetch_ok, 1);
    rp_log_info("debuginfod: the debug file of build ID %s, from %s", id, dfd.url);
    retry = 0;
    goto out;
failed:
    atomic_fetch_add(&m_fetch_failed, 1);
out:
    json_decref(o);
    free(ans);
    return retry;
}

/* One fetch at a time, in the background: requests never wait for a debuginfod server. */
static void *fetcher(void *arg)
{
    (void)arg;
    for (;;) {
        build_hex_t id;
        int retry;
        void (*told)(const char *);
        pthread_mutex_lock(&lock);
        while (dfd.nqueue == 0)
            pthread_cond_wait(&dfd.wake, &lock);
        memcpy(id, dfd.queue[0], sizeof(id));
        memmove(dfd.queue[0], dfd.queue[1], (dfd.nqueue - 1) * sizeof(dfd.queue[0]));
        dfd.nqueue--;
        memcpy(dfd.fetching, id, sizeof(id));
        pthread_mutex_unlock(&lock);
        retry = fetch_one(id);
        pthread_mutex_lock(&lock);
        tried_put(id, time(NULL), retry);
        dfd.fetching[0] = '\0';
        told = retry == 0 ? dfd.on_fetch : NULL;
        pthread_mutex_unlock(&lock);
        /* Kept: the buckets it names were keyed without it (no file then); they are keyed again
         * (the keyer, on its thread; this one may wait for room there). */
        if (told != NULL)
            told(id);
    }
    return NULL;
}

rp_err_t rp_symbols_debuginfod_start(const char *url, const char *data_dir)
{
    char cdir[PATH_MAX];
    pthread_attr_t attr;
    int n;

    if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        strlen(url) >= sizeof(dfd.url) || strpbrk(url, " \t\r\n") != NULL) {
        rp_log_error("--debuginfod-url: one http:// or https:// URL");
        return RP_ERR_INVALID_ARG;
    }
    n = snprintf(dfd.dir, sizeof(dfd.dir), "%s/debuginfod", data_dir);
    if (n <= 0 || (size_t)n >= sizeof(dfd.dir) - 64 ||
        (mkdir(dfd.dir, 0700) != 0 && errno != EEXIST))
        return RP_ERR_IO;
    if (snprintf(cdir, sizeof(cdir), "%s/cache", dfd.dir) >= (int)sizeof(cdir) ||
        (mkdir(cdir, 0700) != 0 && errno != EEXIST))
        return RP_ERR_IO;
    snprintf(dfd.url, sizeof(dfd.url), "%s", url);
    if (pthread_attr_init(&attr) != 0)
        return RP_ERR_NO_MEMORY;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    n = pthread_create(&dfd.thread, &attr, fetcher, NULL);
    pthread_attr_destroy(&attr);
    if (n != 0)
        return RP_ERR_NO_MEMORY;
    dfd.on = true;
    return RP_OK;
}

size_t rp_symbols_debuginfod_waiting(void)
{
    size_t n;

    pthread_mutex_lock(&lock);
    n = dfd.nqueue;
    pthread_mutex_unlock(&lock);
    return n;
}

bool rp_symbols_debuginfod_path(const char *id, char *path, size_t cap)
{
    struct stat sb;
    time_t now = time(NULL);
    bool queued = false;
    int n;

    if (!dfd.on || id == NULL || !build_hex_valid(id))
        return false;
    n = snprintf(path, cap, "%s/%s.debug", dfd.dir, id);
    if (n > 0 && (size_t)n < cap && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode))
        return true;
    pthread_mutex_lock(&lock);
    queued = strcmp(dfd.fetching, id) == 0;
    for (size_t i = 0; i < dfd.nqueue && !queued; i++)
        queued = strcmp(dfd.queue[i], id) == 0;
    if (!queued && !tried_lately(id, now)) {
        if (dfd.nqueue < DEBUGINFOD_QUEUE) {
            snprintf(dfd.queue[dfd.nqueue++], sizeof(build_hex_t), "%s", id);
            pthread_cond_signal(&dfd.wake);
        } else
            atomic_fetch_add(&m_fetch_dropped, 1);
    }
    pthread_mutex_unlock(&lock);
    return false;
}
