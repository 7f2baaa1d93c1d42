/*
 * The device's report queue and its upload (reportq.h): S/agent/reports/ holds one file per
 * report, NNNNNNNNNNNNNNNNNNNN.json (its seq, 20 digits), and state.json, the queue's counters
 * (the next seq, the floor below which files are already gone, the drop count, the upload's
 * backoff). Every change is one atomic replacement of state.json first, then files written or
 * unlinked: a cut anywhere leaves state.json old or new, and files below its floor are garbage
 * whatever their number, so nothing is counted twice or half written.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "reportq.h"
#include "rampart/component.h"
#include "rampart/failpoint.h"
#include "rampart/file.h"
#include "rampart/http_client.h"
#include "rampart/log.h"
#include "rampart/text.h"

#define STATE_FILE "state.json"
#define STATE_MAX 4096
#define LOCK_FILE ".lock"
#define NAME_DIGITS 20
#define FILES_MAX 4096         /* entries looked at: far more than the queue ever holds */
#define SEQ_LIMIT (1ull << 53) /* the contract's bound: a JSON number stays exact */
#define INT_LIMIT ((json_int_t)SEQ_LIMIT) /* counts and times: any that can really occur */
#define BACKOFF_FIRST 5                   /* seconds */
#define BACKOFF_CAP 3600
#define RETRY_AFTER_CAP (24 * 3600) /* a service that asks for longer is heard as a day */
#define BODY_OVERHEAD 64            /* {"reports":[...],"dropped":N} around the reports */
#define UPLOAD_ROUNDS 512           /* requests one upload makes at most */

/* ---- the contract ---- */

static const char *const kind_names[RP_REPORT_KIND_END] = {
    [RP_REPORT_CRASH] = "crash",
    [RP_REPORT_EXIT] = "exit",
    [RP_REPORT_OOM] = "oom",
    [RP_REPORT_HEALTH] = "health",
    [RP_REPORT_RESTART_LOOP] = "restart_loop",
    [RP_REPORT_ATTESTATION_FAILED] = "attestation_failed",
    [RP_REPORT_IMAGE_REFUSED] = "image_refused",
    [RP_REPORT_METADATA_REFUSED] = "metadata_refused",
    [RP_REPORT_SANDBOX_DENIAL] = "sandbox_denial",
    [RP_REPORT_ROT_ERROR] = "rot_error",
    [RP_REPORT_CERT_EXPIRING] = "cert_expiring",
    [RP_REPORT_CLOCK_JUMP] = "clock_jump",
};

const char *rp_report_kind_name(rp_report_kind_t kind)
{
    if ((unsigned)kind < RP_REPORT_KIND_END && kind_names[kind] != NULL)
        return kind_names[kind];
    return "unknown";
}

static bool kind_known(const char *s)
{
    for (size_t i = 0; i < RP_REPORT_KIND_END; i++)
        if (kind_names[i] != NULL && strcmp(kind_names[i], s) == 0)
            return true;
    return false;
}

const char *rp_report_code_of(rp_err_t err)
{
    switch (err) {
    case RP_ERR_BAD_SIGNATURE:
    case RP_ERR_NO_SIGNATURE: return RP_REPORT_CODE_BAD_SIGNATURE;
    case RP_ERR_WRONG_KEY: return RP_REPORT_CODE_UNKNOWN_KEY;
    case RP_ERR_ROLLBACK: return RP_REPORT_CODE_ROLLBACK;
    case RP_ERR_EXPIRED: return RP_REPORT_CODE_EXPIRED;
    case RP_ERR_MALFORMED:
    case RP_ERR_BAD_MAGIC:
    case RP_ERR_BAD_HEADER:
    case RP_ERR_BAD_TLV:
    case RP_ERR_TRUNCATED:
    case RP_ERR_BAD_VERSION: return RP_REPORT_CODE_MALFORMED;
    case RP_ERR_TOO_LARGE: return RP_REPORT_CODE_TOO_LARGE;
    case RP_ERR_HASH_MISMATCH:
    case RP_ERR_NO_HASH: return RP_REPORT_CODE_HASH_MISMATCH;
    default: return RP_REPORT_CODE_REFUSED;
    }
}

const char *rp_report_code_of_detail(const char *detail)
{
    if (strstr(detail, "rollback") != NULL)
        return RP_REPORT_CODE_ROLLBACK;
    for (int e = 1; e < RP_ERR_COUNT; e++)
        if (strcmp(detail, rp_strerror((rp_err_t)e)) == 0)
            return rp_report_code_of((rp_err_t)e);
    return RP_REPORT_CODE_REFUSED;
}

bool rp_report_cert_expiring(int64_t not_before, int64_t not_after, int64_t now)
{
    return not_before > 0 && not_after > not_before &&
           (not_after - now) * 5 < not_after - not_before;
}

int64_t rp_report_clock_jump(int64_t wall_delta, int64_t mono_delta)
{
    int64_t d = wall_delta - mono_delta;

    return d > RP_REPORT_CLOCK_JUMP_S || d < -RP_REPORT_CLOCK_JUMP_S ? d : 0;
}

bool rp_report_code_valid(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_') || n >= 32)
            return false;
    return true;
}

/* A string of at most max bytes without a NUL inside. OUT: *s. */
static bool text_ok(const json_t *v, size_t max, const char **s)
{
    if (!json_is_string(v))
        return false;
    *s = json_string_value(v);
    return json_string_length(v) <= max && strlen(*s) == json_string_length(v);
}

/* "0x" and 1 to 16 hex digits. */
static bool hex_address_ok(const char *s)
{
    size_t n;

    if (strncmp(s, "0x", 2) != 0)
        return false;
    for (n = 0; s[2 + n] != '\0'; n++)
        if (!isxdigit((unsigned char)s[2 + n]))
            return false;
    return n >= 1 && n <= 16;
}

static bool hex_ok(const char *s, size_t max)
{
    size_t n;

    for (n = 0; s[n] != '\0'; n++)
        if (!isxdigit((unsigned char)s[n]))
            return false;
    return n <= max;
}

static bool int_in(const json_t *v, json_int_t lo, json_int_t hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

#define BREACH(...)                                                                                \
    do {                                                                                           \
        snprintf(why, cap, __VA_ARGS__);                                                           \
        return RP_ERR_MALFORMED;                                                                   \
    } while (0)

static rp_err_t check_frame(const json_t *f, size_t i, char *why, size_t cap)
{
    const char *key, *s;
    json_t *v;

    if (!json_is_object(f))
        BREACH("crash.frames[%zu] is not an object", i);
    json_object_foreach((json_t *)f, key, v)
    {
        if (strcmp(key, "build_id") == 0) {
            if (!text_ok(v, 40, &s) || !hex_ok(s, 40))
                BREACH("crash.frames[%zu].build_id is not hex of at most 40 digits", i);
        } else if (strcmp(key, "module") == 0) {
            if (!text_ok(v, 64, &s))
                BREACH("crash.frames[%zu].module is not a string of at most 64 bytes", i);
        } else if (strcmp(key, "offset") == 0) {
            if (!text_ok(v, 18, &s) || !hex_address_ok(s))
                BREACH("crash.frames[%zu].offset is not 0x and at most 16 hex digits", i);
        } else {
            BREACH("crash.frames[%zu] has an unknown key \"%.32s\"", i, key);
        }
    }
    return RP_OK;
}

static rp_err_t check_crash(const json_t *c, char *why, size_t cap)
{
    const char *key, *s;
    json_t *v;
    rp_err_t err;

    if (!json_is_object(c))
        BREACH("crash is not an object");
    if (!int_in(json_object_get(c, "signal"), 1, 64))
        BREACH("crash.signal is not a signal number (1 to 64)");
    json_object_foreach((json_t *)c, key, v)
    {
        if (strcmp(key, "signal") == 0) {
            continue;
        } else if (strcmp(key, "signal_name") == 0) {
            if (!text_ok(v, 16, &s))
                BREACH("crash.signal_name is not a string of at most 16 bytes");
        } else if (strcmp(key, "code") == 0) {
            if (!json_is_integer(v))
                BREACH("crash.code is not an integer");
        } else if (strcmp(key, "address") == 0) {
            if (!text_ok(v, 18, &s) || !hex_address_ok(s))
                BREACH("crash.address is not 0x and at most 16 hex digits");
        } else if (strcmp(key, "uptime_ms") == 0) {
            if (!int_in(v, 0, INT_LIMIT))
                BREACH("crash.uptime_ms is not an integer >= 0");
        } else if (strcmp(key, "frames") == 0) {
            if (!json_is_array(v) || json_array_size(v) > 64)
                BREACH("crash.frames is not an array of at most 64 frames");
            for (size_t i = 0; i < json_array_size(v); i++)
                if ((err = check_frame(json_array_get(v, i), i, why, cap)) != RP_OK)
                    return err;
        } else if (strcmp(key, "stderr") == 0) {
            if (!text_ok(v, 4096, &s))
                BREACH("crash.stderr is not a string of at most 4096 bytes");
        } else {
            BREACH("crash has an unknown key \"%.32s\"", key);
        }
    }
    return RP_OK;
}

rp_err_t rp_report_check(const json_t *r, bool with_seq, char *why, size_t cap)
{
    const char *key, *s, *kind;
    json_t *v;
    char *text;
    size_t len;

    if (!json_is_object(r))
        BREACH("a report is a JSON object");
    if (with_seq && !int_in(json_object_get(r, "seq"), 0, (json_int_t)(SEQ_LIMIT - 1)))
        BREACH("seq is not an integer from 0 to 2^53 - 1");
    if (!int_in(json_object_get(r, "at"), 0, INT_LIMIT))
        BREACH("at is not a time (unix seconds)");
    if (!text_ok(json_object_get(r, "kind"), 32, &kind) || !kind_known(kind))
        BREACH("kind is not one of the report kinds");
    json_object_foreach((json_t *)r, key, v)
    {
        if (strcmp(key, "at") == 0 || strcmp(key, "kind") == 0) {
            continue;
        } else if (strcmp(key, "seq") == 0) {
            if (!with_seq)
                BREACH("seq is the queue's to give");
        } else if (strcmp(key, "component") == 0) {
            if (!text_ok(v, RP_COMPONENT_NAME_MAX, &s) ||
                (s[0] != '\0' && !rp_component_name_valid(s, strlen(s))))
                BREACH("component is not a component name");
        } else if (strcmp(key, "version") == 0) {
            if (!text_ok(v, RP_REPORT_VERSION_MAX, &s))
                BREACH("version is not a string of at most 47 bytes");
        } else if (strcmp(key, "reason") == 0) {
            if (!text_ok(v, 255, &s) || !rp_text_no_controls(s))
                BREACH("reason is not a string of at most 255 bytes without control "
                       "characters");
        } else if (strcmp(key, "code") == 0) {
            if (!text_ok(v, 32, &s) || !rp_report_code_valid(s))
                BREACH("code is not a reason code ([a-z_], at most 32)");
        } else if (strcmp(key, "crash") == 0) {
            rp_err_t err;
            if (strcmp(kind, "crash") != 0)
                BREACH("crash is for kind crash only");
            if ((err = check_crash(v, why, cap)) != RP_OK)
                return err;
        } else {
            BREACH("unknown key \"%.32s\"", key);
        }
    }
    if (strcmp(kind, "crash") == 0 && json_object_get(r, "crash") == NULL)
        BREACH("a crash report lacks its crash object");
    text = json_dumps(r, JSON_COMPACT);
    if (text == NULL)
        return RP_ERR_NO_MEMORY;
    len = strlen(text);
    free(text);
    if (len > RP_REPORT_MAX_BYTES)
        BREACH("%zu bytes as JSON: a report is at most %d", len, RP_REPORT_MAX_BYTES);
    return RP_OK;
}

#undef BREACH

/* ---- the queue's directory and state ---- */

/* A source's cursor (reportq.h): next, once report seq is on disk; prev, if the add of seq was
 * cut before its file was written. seq 0: nothing pending. */
typedef struct qcursor {
    bool known;
    uint64_t next, prev, seq;
} qcursor_t;

static const char *const source_names[RP_REPORTQ_SOURCES] = {
    [RP_REPORTQ_CRASHES] = "crashes",
    [RP_REPORTQ_EVENTS] = "events",
};

typedef struct qstate {
    uint64_t next_seq; /* the least the next report gets */
    uint64_t floor;    /* files below it are gone already (acknowledged or dropped) */
    uint64_t dropped, refused;
    int64_t retry_at;
    long backoff;
    qcursor_t cur[RP_REPORTQ_SOURCES];
} qstate_t;

typedef struct entry {
    uint64_t seq;
    size_t size;
} entry_t;

/* The queue, locked: S/agent/reports/ checked, its lock held. */
typedef struct queue {
    char dir[PATH_MAX];
    int lock;
    qstate_t st;
    entry_t *e; /* the live reports (seq >= floor), oldest first */
    size_t n, bytes;
    uint64_t top; /* one past the largest seq of any report file found, live or not */
} queue_t;

static uint64_t real_now_us(void);
static uint64_t (*clock_us)(void) = real_now_us;

void rp_reportq_set_clock(uint64_t (*now_us)(void))
{
    clock_us = now_us != NULL ? now_us : real_now_us;
}

static uint64_t real_now_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Uniform in [lo, hi). */
static long jitter(long lo, long hi)
{
    uint32_t r;

    if (hi <= lo || RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return lo;
    return lo + (long)(r % (uint32_t)(hi - lo));
}

/* S/agent/reports/: made (0700) when missing; refused when a link, not a directory, another
 * user's, or open to group or others, like the rest of S/agent/. */
static rp_err_t queue_dir(const rp_agent_t *a, char *dir, size_t cap)
{
    struct stat sb;
    rp_err_t err = rp_agent_file_for_write(a, RP_REPORTQ_DIR "/" LOCK_FILE, dir, cap);

    if (err != RP_OK)
        return err;
    *strrchr(dir, '/') = '\0';
    if (lstat(dir, &sb) != 0) {
        rp_log_error("%s: %s", dir, strerror(errno));
        return RP_ERR_IO;
    }
    if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 077) != 0) {
        rp_log_error("%s: refusing the report queue: %s. Fix: remove it (the agent makes it "
                     "again)",
                     dir,
                     S_ISLNK(sb.st_mode)      ? "a symlink"
                     : !S_ISDIR(sb.st_mode)   ? "not a directory"
                     : sb.st_uid != geteuid() ? "another user's"
                                              : "open to group or others");
        return RP_ERR_INVALID_ARG;
    }
    return RP_OK;
}

static void state_load(const queue_t *q, qstate_t *st)
{
    char path[PATH_MAX + 32];
    uint8_t *data = NULL;
    size_t len;
    json_t *j = NULL;
    rp_err_t err;

    memset(st, 0, sizeof(*st));
    snprintf(path, sizeof(path), "%s/" STATE_FILE, q->dir);
    err = rp_read_file(path, STATE_MAX, &data, &len);
    if (err == RP_ERR_NOT_FOUND)
        return; /* a new queue */
    if (err == RP_OK)
        j = json_loadb((const char *)data, len, 0, NULL);
    free(data);
    if (!int_in(json_object_get(j, "next_seq"), 0, (json_int_t)SEQ_LIMIT) ||
        !int_in(json_object_get(j, "floor"), 0, (json_int_t)SEQ_LIMIT) ||
        !int_in(json_object_get(j, "dropped"), 0, INT_LIMIT) ||
        !int_in(json_object_get(j, "refused"), 0, INT_LIMIT) ||
        !int_in(json_object_get(j, "retry_at"), 0, INT_LIMIT) ||
        !int_in(json_object_get(j, "backoff"), 0, BACKOFF_CAP)) {
        /* The reports stay; the numbers go on above every file (and the clock), the counts
         * start again. Sending some reports again is harmless: the service keeps one of each. */
        rp_log_warn("%s is corrupt: the report queue's counters start again", path);
        json_decref(j);
        return;
    }
    st->next_seq = (uint64_t)json_integer_value(json_object_get(j, "next_seq"));
    st->floor = (uint64_t)json_integer_value(json_object_get(j, "floor"));
    st->dropped = (uint64_t)json_integer_value(json_object_get(j, "dropped"));
    st->refused = (uint64_t)json_integer_value(json_object_get(j, "refused"));
    st->retry_at = (int64_t)json_integer_value(json_object_get(j, "retry_at"));
    st->backoff = (long)json_integer_value(json_object_get(j, "backoff"));
    /* The cursors (none in an older agent's queue: each source then starts where it says). */
    for (int i = 0; i < RP_REPORTQ_SOURCES; i++) {
        json_t *c = json_object_get(json_object_get(j, "cursors"), source_names[i]);
        if (c == NULL)
            continue;
        if (!int_in(json_object_get(c, "next"), 0, INT_LIMIT) ||
            !int_in(json_object_get(c, "prev"), 0, INT_LIMIT) ||
            !int_in(json_object_get(c, "seq"), 0, (json_int_t)SEQ_LIMIT)) {
            rp_log_warn("%s: the %s cursor is corrupt: it starts again", path, source_names[i]);
            continue;
        }
        st->cur[i] = (qcursor_t){true, (uint64_t)json_integer_value(json_object_get(c, "next")),
                                 (uint64_t)json_integer_value(json_object_get(c, "prev")),
                                 (uint64_t)json_integer_value(json_object_get(c, "seq"))};
    }
    json_decref(j);
}

static rp_err_t state_save(const queue_t *q)
{
    char path[PATH_MAX + 32], *text;
    json_t *j =
        json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "format", 1, "next_seq",
                  (json_int_t)q->st.next_seq, "floor", (json_int_t)q->st.floor, "dropped",
                  (json_int_t)q->st.dropped, "refused", (json_int_t)q->st.refused, "retry_at",
                  (json_int_t)q->st.retry_at, "backoff", (json_int_t)q->st.backoff);
    json_t *cursors = json_object();
    rp_err_t err;

    for (int i = 0; i < RP_REPORTQ_SOURCES && cursors != NULL; i++)
        if (q->st.cur[i].known)
            json_object_set_new(cursors, source_names[i],
                                json_pack("{s:I, s:I, s:I}", "next", (json_int_t)q->st.cur[i].next,
                                          "prev", (json_int_t)q->st.cur[i].prev, "seq",
                                          (json_int_t)q->st.cur[i].seq));
    if (j != NULL && cursors != NULL && json_object_size(cursors) > 0)
        json_object_set(j, "cursors", cursors);
    json_decref(cursors);
    text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        return RP_ERR_NO_MEMORY;
    snprintf(path, sizeof(path), "%s/" STATE_FILE, q->dir);
    rp_failpoint("report queue state");
    err = rp_write_file_atomic(path, text, strlen(text), 0600, 0);
    free(text);
    if (err != RP_OK)
        rp_log_error("%s: cannot write it: %s", path, rp_strerror(err));
    return err;
}

/* A report file's name: its seq, or false for any other name. */
static bool report_name(const char *name, uint64_t *seq)
{
    uint64_t v = 0;

    for (int i = 0; i < NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (strcmp(name + NAME_DIGITS, ".json") != 0)
        return false;
    *seq = v;
    return true;
}

static void report_path(const queue_t *q, uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%020" PRIu64 ".json", q->dir, seq);
}

static int by_seq(const void *x, const void *y)
{
    const entry_t *a = x, *b = y;

    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The report files, oldest first; those below the floor and the temporaries a cut left are
 * removed (they count for nothing). */
static rp_err_t list_files(queue_t *q)
{
    DIR *d = opendir(q->dir);
    struct dirent *de;
    size_t cap = 0;

    q->n = q->bytes = 0;
    q->top = 0;
    if (d == NULL)
        return RP_ERR_IO;
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        uint64_t seq;
        if (strstr(de->d_name, ".tmp") != NULL) {
            (void)unlinkat(dirfd(d), de->d_name, 0); /* a write cut before its rename */
            continue;
        }
        if (!report_name(de->d_name, &seq) ||
            fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (!S_ISREG(sb.st_mode)) {
            rp_log_warn("%s/%s is not a regular file: ignored", q->dir, de->d_name);
            continue;
        }
        if (seq + 1 > q->top)
            q->top = seq + 1;
        if (seq < q->st.floor) {
            (void)unlinkat(dirfd(d), de->d_name, 0);
            continue;
        }
        if (q->n == FILES_MAX)
            continue;
        if (q->n == cap) {
            size_t ncap = cap == 0 ? 64 : cap * 2;
            entry_t *e = realloc(q->e, ncap * sizeof(*e));
            if (e == NULL) {
                closedir(d);
                return RP_ERR_NO_MEMORY;
            }
            q->e = e;
            cap = ncap;
        }
        q->e[q->n].seq = seq;
        q->e[q->n].size = (size_t)sb.st_size;
        q->bytes += (size_t)sb.st_size;
        q->n++;
    }
    closedir(d);
    if (q->n > 0)
        qsort(q->e, q->n, sizeof(q->e[0]), by_seq);
    return RP_OK;
}

static bool live(const queue_t *q, uint64_t seq)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->e[i].seq == seq)
            return true;
    return false;
}

/* A cursor moved by an add that was cut before its report's file was written goes back (its
 * source hands that report again); done before anything can move the floor past that number.
 * A report below the floor, or still here, was queued: its cursor stands. */
static rp_err_t cursors_settle(queue_t *q)
{
    bool changed = false;

    for (int i = 0; i < RP_REPORTQ_SOURCES; i++) {
        qcursor_t *c = &q->st.cur[i];
        if (!c->known || c->seq == 0 || c->seq < q->st.floor || live(q, c->seq))
            continue;
        rp_log_warn("%s: report %" PRIu64 " was cut before it was written: the %s cursor goes "
                    "back",
                    q->dir, c->seq, source_names[i]);
        c->next = c->prev;
        c->seq = 0;
        changed = true;
    }
    return changed ? state_save(q) : RP_OK;
}

static void queue_close(queue_t *q)
{
    if (q->lock >= 0)
        close(q->lock); /* and the lock with it */
    q->lock = -1;
    free(q->e);
    q->e = NULL;
}

/* Open and lock the queue (one process at a time: the daemon, `report`, a crash's capture),
 * and read its state and files. */
static rp_err_t queue_open(const rp_agent_t *a, queue_t *q)
{
    char path[PATH_MAX + 32];
    rp_err_t err;

    memset(q, 0, sizeof(*q));
    q->lock = -1;
    err = queue_dir(a, q->dir, sizeof(q->dir));
    if (err != RP_OK)
        return err;
    snprintf(path, sizeof(path), "%s/" LOCK_FILE, q->dir);
    q->lock = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (q->lock < 0) {
        rp_log_error("%s: %s", path, strerror(errno));
        return RP_ERR_IO;
    }
    while (flock(q->lock, LOCK_EX) != 0)
        if (errno != EINTR) {
            queue_close(q);
            return RP_ERR_IO;
        }
    state_load(q, &q->st);
    err = list_files(q);
    if (err == RP_OK)
        err = cursors_settle(q);
    if (err != RP_OK)
        queue_close(q);
    return err;
}

/* Drop the k oldest live reports (counting them when count) or those through seq: the state
 * first (the floor past them), then the files. */
static rp_err_t forget_through(queue_t *q, uint64_t seq, bool count, size_t *removed)
{
    size_t k = 0;
    char path[PATH_MAX + 32];
    rp_err_t err;

    while (k < q->n && q->e[k].seq <= seq)
        k++;
    *removed = k;
    if (seq + 1 <= q->st.floor)
        return RP_OK;
    q->st.floor = seq + 1;
    if (q->st.next_seq < q->st.floor)
        q->st.next_seq = q->st.floor;
    if (count)
        q->st.dropped += k;
    err = state_save(q);
    if (err != RP_OK)
        return err;
    rp_failpoint("report queue forget");
    for (size_t i = 0; i < k; i++) {
        report_path(q, q->e[i].seq, path, sizeof(path));
        (void)unlink(path); /* one left by a cut is below the floor: removed next time */
        q->bytes -= q->e[i].size;
    }
    memmove(q->e, q->e + k, (q->n - k) * sizeof(q->e[0]));
    q->n -= k;
    return RP_OK;
}

/* ---- adding ---- */

rp_err_t rp_reportq_add(const rp_agent_t *a, json_t *report)
{
    return rp_reportq_add_from(a, report, RP_REPORTQ_SOURCES, 0);
}

rp_err_t rp_reportq_add_from(const rp_agent_t *a, json_t *report, rp_reportq_source_t src,
                             uint64_t id)
{
    char why[160], path[PATH_MAX + 32], *text = NULL;
    json_t *r;
    queue_t q;
    uint64_t seq, clock;
    size_t len, drop = 0, gone = 0, removed;
    rp_err_t err = rp_report_check(report, false, why, sizeof(why));

    if (err != RP_OK) {
        rp_log_error("report refused by the queue: %s", why);
        return err;
    }
    r = json_deep_copy(report);
    if (r == NULL)
        return RP_ERR_NO_MEMORY;
    err = queue_open(a, &q);
    if (err != RP_OK) {
        json_decref(r);
        return err;
    }
    /* Above every number given before: the counter, any file left, and the wall clock in
     * microseconds, which a queue made anew starts from (two fsyncs a report: the counter never
     * runs ahead of it). */
    seq = q.st.next_seq > q.top ? q.st.next_seq : q.top;
    clock = clock_us();
    if (clock > seq && clock < SEQ_LIMIT)
        seq = clock;
    if (seq >= SEQ_LIMIT) {
        rp_log_error("%s: the report numbers are used up", q.dir);
        err = RP_ERR_TOO_LARGE;
    }
    if (err == RP_OK && json_object_set_new(r, "seq", json_integer((json_int_t)seq)) != 0)
        err = RP_ERR_NO_MEMORY;
    if (err == RP_OK)
        err = rp_report_check(r, true, why, sizeof(why)); /* its size, with the seq */
    if (err == RP_OK && (text = json_dumps(r, JSON_COMPACT)) == NULL)
        err = RP_ERR_NO_MEMORY;
    if (err != RP_OK) {
        if (err == RP_ERR_MALFORMED)
            rp_log_error("report refused by the queue: %s", why);
        queue_close(&q);
        json_decref(r);
        return err;
    }
    len = strlen(text);
    /* Room: the oldest go, counted. */
    while (drop < q.n &&
           (q.n - drop + 1 > RP_REPORTQ_MAX_REPORTS || q.bytes - gone + len > RP_REPORTQ_MAX_BYTES))
        gone += q.e[drop++].size;
    /* The counter (and the drop, and the source's cursor) first: a cut after it loses a number,
     * never reuses one; the cursor goes back at the next open if the file is not there. */
    q.st.next_seq = seq + 1;
    if ((unsigned)src < RP_REPORTQ_SOURCES) {
        qcursor_t *c = &q.st.cur[src];
        *c = (qcursor_t){true, id + 1, c->known ? c->next : id, seq};
    }
    if (drop > 0) {
        rp_log_warn("report queue full: dropping the %zu oldest report(s)", drop);
        err = forget_through(&q, q.e[drop - 1].seq, true, &removed);
    } else {
        err = state_save(&q);
    }
    if (err == RP_OK) {
        report_path(&q, seq, path, sizeof(path));
        rp_failpoint("report queue write");
        err = rp_write_file_atomic(path, text, len, 0600, 0);
        if (err != RP_OK)
            rp_log_error("%s: cannot write it: %s", path, rp_strerror(err));
    }
    if (err == RP_OK)
        rp_log_info("queued report %" PRIu64 ": %s %s", seq,
                    json_string_value(json_object_get(r, "kind")),
                    json_string_value(json_object_get(r, "code")) ?: "");
    queue_close(&q);
    free(text);
    json_decref(r);
    return err;
}

json_t *rp_report_new(rp_report_kind_t kind, int64_t at, const char *component, const char *version,
                      const char *code, const char *text)
{
    char reason[256];
    size_t n;

    snprintf(reason, sizeof(reason), "%s", text);
    /* Cut at 255 bytes, never inside a UTF-8 sequence. */
    n = strlen(reason);
    if (n == sizeof(reason) - 1)
        while (n > 0 && ((unsigned char)reason[n] & 0xc0) == 0x80)
            reason[--n] = '\0';
    /* The service refuses control characters in a reason (rampart/text.h): a message quoted from
     * elsewhere gets spaces instead. */
    for (char *p = reason; *p != '\0'; p++)
        for (size_t k = rp_text_control_at(p); k > 0; k--)
            p[k - 1] = ' ';
    if (code == NULL || !rp_report_code_valid(code))
        code = RP_REPORT_CODE_REFUSED;
    if (component == NULL || !rp_component_name_valid(component, strlen(component)))
        component = "";
    if (version == NULL || strlen(version) > RP_REPORT_VERSION_MAX)
        version = "";
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "at", (json_int_t)(at > 0 ? at : 0), "kind",
                     rp_report_kind_name(kind), "component", component, "version", version,
                     "reason", reason, "code", code);
}

void rp_reportq_event(const rp_agent_t *a, rp_report_kind_t kind, const char *component,
                      const char *code, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    json_t *r;
    rp_err_t err;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    r = rp_report_new(kind, (int64_t)time(NULL), component, NULL, code, reason);
    err = r != NULL ? rp_reportq_add(a, r) : RP_ERR_NO_MEMORY;
    json_decref(r);
    if (err != RP_OK)
        rp_log_warn("cannot queue the report (%s, %s): %s", rp_report_kind_name(kind),
                    code != NULL ? code : "", rp_strerror(err));
}

rp_err_t rp_reportq_cursor(const rp_agent_t *a, rp_reportq_source_t src, uint64_t *next,
                           bool *known)
{
    queue_t q;
    rp_err_t err;

    *next = 0;
    *known = false;
    if ((unsigned)src >= RP_REPORTQ_SOURCES)
        return RP_ERR_INVALID_ARG;
    if ((err = queue_open(a, &q)) != RP_OK)
        return err;
    *known = q.st.cur[src].known;
    *next = q.st.cur[src].next;
    queue_close(&q);
    return RP_OK;
}

rp_err_t rp_reportq_cursor_set(const rp_agent_t *a, rp_reportq_source_t src, uint64_t next)
{
    queue_t q;
    rp_err_t err;

    if ((unsigned)src >= RP_REPORTQ_SOURCES || next >= SEQ_LIMIT)
        return RP_ERR_INVALID_ARG;
    if ((err = queue_open(a, &q)) != RP_OK)
        return err;
    if (!q.st.cur[src].known || q.st.cur[src].next != next || q.st.cur[src].seq != 0) {
        q.st.cur[src] = (qcursor_t){true, next, next, 0};
        err = state_save(&q);
    }
    queue_close(&q);
    return err;
}

/* ---- reading ---- */

rp_err_t rp_reportq_stat(const rp_agent_t *a, rp_reportq_stat_t *st)
{
    queue_t q;
    rp_err_t err = queue_open(a, &q);

    memset(st, 0, sizeof(*st));
    if (err != RP_OK)
        return err;
    st->reports = q.n;
    st->bytes = q.bytes;
    if (q.n > 0) {
        st->first = q.e[0].seq;
        st->last = q.e[q.n - 1].seq;
    }
    st->next_seq = q.st.next_seq > q.top ? q.st.next_seq : q.top;
    st->dropped = q.st.dropped;
    st->refused = q.st.refused;
    st->retry_at = q.st.retry_at;
    st->backoff = q.st.backoff;
    queue_close(&q);
    return RP_OK;
}

/* One queued report, as written (checked again: what is on disk is outside input too). NULL
 * when it is unreadable or breaks the contract (said). */
static json_t *report_load(const queue_t *q, uint64_t seq)
{
    char path[PATH_MAX + 32], why[160];
    uint8_t *data = NULL;
    size_t len;
    json_t *r = NULL;
    int fd;

    report_path(q, seq, path, sizeof(path));
    /* Not through a link: only a regular file of the queue's own. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        struct stat sb;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size <= RP_REPORT_MAX_BYTES &&
            (data = malloc((size_t)sb.st_size + 1)) != NULL &&
            rp_pread_all(fd, data, (size_t)sb.st_size, 0) == RP_OK) {
            len = (size_t)sb.st_size;
            r = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, NULL);
        }
        close(fd);
    }
    free(data);
    if (r == NULL || rp_report_check(r, true, why, sizeof(why)) != RP_OK ||
        (uint64_t)json_integer_value(json_object_get(r, "seq")) != seq) {
        rp_log_warn("%s: a corrupt report (%s): dropped", path,
                    r == NULL ? "unreadable or not JSON" : why);
        json_decref(r);
        return NULL;
    }
    return r;
}

rp_err_t rp_reportq_peek(const rp_agent_t *a, size_t max_reports, size_t max_bytes,
                         json_t **reports, uint64_t *last)
{
    size_t body = BODY_OVERHEAD, corrupt = 0, removed;
    uint64_t corrupt_through = 0;
    queue_t q;
    rp_err_t err = queue_open(a, &q);

    *reports = NULL;
    *last = 0;
    if (err != RP_OK)
        return err;
    *reports = json_array();
    if (*reports == NULL) {
        queue_close(&q);
        return RP_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < q.n && json_array_size(*reports) < max_reports; i++) {
        json_t *r;
        /* At least one report, however large: the service's 413 then drops it. */
        if (json_array_size(*reports) > 0 && body + q.e[i].size + 1 > max_bytes)
            break;
        r = report_load(&q, q.e[i].seq);
        if (r == NULL) {
            /* Only at the head can the floor pass it without passing good reports. */
            if (json_array_size(*reports) == 0) {
                corrupt++;
                corrupt_through = q.e[i].seq;
            }
            continue;
        }
        json_array_append_new(*reports, r);
        body += q.e[i].size + 1;
        *last = q.e[i].seq;
    }
    if (corrupt > 0 && forget_through(&q, corrupt_through, true, &removed) != RP_OK)
        rp_log_warn("%s: cannot drop the corrupt report(s)", q.dir);
    queue_close(&q);
    return RP_OK;
}

rp_err_t rp_reportq_remove_through(const rp_agent_t *a, uint64_t seq, bool count_dropped,
                                   size_t *removed)
{
    queue_t q;
    rp_err_t err = queue_open(a, &q);

    *removed = 0;
    if (err != RP_OK)
        return err;
    if (seq >= SEQ_LIMIT)
        err = RP_ERR_INVALID_ARG;
    else
        err = forget_through(&q, seq, count_dropped, removed);
    queue_close(&q);
    return err;
}

/* ---- upload ---- */

/* Change the queue's upload state: after a success (backoff 0, no wait), or a wait: the
 * service's Retry-After (retry_after > 0), or the next exponential backoff with jitter. Also the
 * refused count. OUT: *retry_at. */
static rp_err_t upload_state(const rp_agent_t *a, bool success, long retry_after, size_t refused,
                             int64_t *retry_at)
{
    queue_t q;
    int64_t now = (int64_t)time(NULL);
    rp_err_t err = queue_open(a, &q);

    if (err != RP_OK)
        return err;
    q.st.refused += refused;
    if (success) {
        q.st.backoff = 0;
        q.st.retry_at = 0;
    } else if (retry_after > 0) {
        /* At least as long as asked; a little more, so a fleet told the same does not return
         * together. */
        if (retry_after > RETRY_AFTER_CAP)
            retry_after = RETRY_AFTER_CAP;
        q.st.retry_at = now + jitter(retry_after, retry_after + retry_after / 4 + 2);
    } else {
        /* Exponential, capped, with jitter over its upper half. */
        q.st.backoff = q.st.backoff <= 0                ? BACKOFF_FIRST
                       : q.st.backoff < BACKOFF_CAP / 2 ? q.st.backoff * 2
                                                        : BACKOFF_CAP;
        q.st.retry_at = now + jitter(q.st.backoff / 2, q.st.backoff + 1);
    }
    *retry_at = q.st.retry_at;
    err = state_save(&q);
    queue_close(&q);
    return err;
}

struct tls {
    rp_agent_t *a;
    char cert[PATH_MAX + 64];
};

/* The device's certificate and key on curl's TLS context (the key stays in the root of trust). */
static int client_cert(SSL_CTX *ctx, void *arg)
{
    struct tls *t = arg;

    return rp_agent_ssl_ctx_use(t->a, ctx, t->cert);
}

/* The service's answer to a stored batch: its counts (an answer without them still means every
 * report in the batch is handled: it was a 200). */
static void took(const rp_http_response_t *r, size_t n, rp_reportq_upload_t *out, size_t *refused)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL), *e;
    size_t i;

    *refused = 0;
    out->sent += n;
    if (!json_is_object(j)) {
        rp_log_warn("reports: the service's 200 carries no counts");
        json_decref(j);
        return;
    }
    if (int_in(json_object_get(j, "stored"), 0, (json_int_t)n))
        out->stored += (size_t)json_integer_value(json_object_get(j, "stored"));
    if (int_in(json_object_get(j, "duplicates"), 0, (json_int_t)n))
        out->duplicates += (size_t)json_integer_value(json_object_get(j, "duplicates"));
    json_array_foreach(json_object_get(j, "refused"), i, e)
    {
        const char *why = json_string_value(json_object_get(e, "reason"));
        if (i >= n)
            break;
        (*refused)++;
        rp_log_warn("reports: the service refused report %lld: %.200s",
                    (long long)json_integer_value(json_object_get(e, "seq")),
                    why != NULL ? why : "no reason given");
    }
    out->refused += *refused;
    json_decref(j);
}

rp_err_t rp_reportq_upload(rp_agent_t *a, const char *server, const char *server_ca,
                           rp_reportq_upload_t *out)
{
    static struct tls t;
    rp_http_opts_t h = {server_ca, NULL, "application/json", 30, client_cert, &t, NULL, NULL, 0};
    size_t max_reports = RP_REPORTQ_BATCH_REPORTS, removed, refused;
    rp_reportq_stat_t st;
    char url[2048];
    rp_err_t err;

    memset(out, 0, sizeof(*out));
    err = rp_reportq_stat(a, &st);
    if (err != RP_OK) {
        snprintf(out->detail, sizeof(out->detail), "cannot read the queue: %s", rp_strerror(err));
        return err;
    }
    out->left = st.reports;
    if (st.reports == 0)
        return RP_OK;
    /* A wait in force: nothing is sent. One far beyond what could have been asked (the clock
     * went back) holds no longer than the longest wait. */
    if (st.retry_at > (int64_t)time(NULL) &&
        st.retry_at - (int64_t)time(NULL) <= RETRY_AFTER_CAP + RETRY_AFTER_CAP / 4 + 2) {
        out->waiting = true;
        out->retry_at = st.retry_at;
        snprintf(out->detail, sizeof(out->detail), "waiting %lld s before the next upload",
                 (long long)(st.retry_at - (int64_t)time(NULL)));
        return RP_ERR_DENIED;
    }
    t.a = a;
    err = rp_agent_file(a, "device.crt", t.cert, sizeof(t.cert));
    if (err != RP_OK ||
        snprintf(url, sizeof(url), "%s/api/v1/device/reports", server) >= (int)sizeof(url)) {
        snprintf(out->detail, sizeof(out->detail), "no device certificate or a bad URL");
        return RP_ERR_INVALID_ARG;
    }
    for (int round = 0; round < UPLOAD_ROUNDS; round++) {
        json_t *reports, *body;
        rp_http_response_t r;
        uint64_t last;
        size_t n;
        char *text;

        err = rp_reportq_peek(a, max_reports, RP_REPORTQ_BATCH_BYTES, &reports, &last);
        if (err != RP_OK)
            break;
        n = json_array_size(reports);
        if (n == 0) {
            json_decref(reports);
            break; /* all sent */
        }
        err = rp_reportq_stat(a, &st);
        body = err == RP_OK
                   ? json_pack("{s:o, s:I}", "reports", reports, "dropped", (json_int_t)st.dropped)
                   : NULL;
        if (body == NULL) {
            json_decref(reports);
            err = err != RP_OK ? err : RP_ERR_NO_MEMORY;
            break;
        }
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (text == NULL) {
            err = RP_ERR_NO_MEMORY;
            break;
        }
        err = rp_http_request("POST", url, &h, text, strlen(text), &r);
        free(text);
        if (err != RP_OK) {
            snprintf(out->detail, sizeof(out->detail), "%.200s: %s", server, r.error);
            (void)upload_state(a, false, 0, 0, &out->retry_at);
            break;
        }
        out->http_status = r.status;
        if (r.status == 200) {
            took(&r, n, out, &refused);
            out->batches++;
            err = rp_reportq_remove_through(a, last, false, &removed);
            if (err == RP_OK)
                err = upload_state(a, true, 0, refused, &out->retry_at);
        } else if (r.status == 400) {
            rp_log_warn("reports: the service refused a batch of %zu as malformed: dropped", n);
            err = rp_reportq_remove_through(a, last, true, &removed);
            out->dropped += removed;
        } else if (r.status == 413 && n > 1) {
            max_reports = n / 2; /* smaller batches from here on */
        } else if (r.status == 413) {
            rp_log_warn("reports: the service finds report %llu too large: dropped",
                        (unsigned long long)last);
            err = rp_reportq_remove_through(a, last, true, &removed);
            out->dropped += removed;
        } else {
            /* 429 and 503 name their wait; any other answer backs off. */
            long ra = (r.status == 429 || r.status == 503) ? r.retry_after : 0;
            snprintf(out->detail, sizeof(out->detail), "the service answered HTTP %ld%s", r.status,
                     ra > 0 ? " with Retry-After" : "");
            (void)upload_state(a, false, ra, 0, &out->retry_at);
            err = RP_ERR_IO;
        }
        rp_http_response_free(&r);
        if (err != RP_OK)
            break;
    }
    if (rp_reportq_stat(a, &st) == RP_OK)
        out->left = st.reports;
    if (err == RP_OK && out->left > 0) {
        snprintf(out->detail, sizeof(out->detail), "%zu report(s) still queued", out->left);
        err = RP_ERR_IO;
    }
    if (err != RP_OK && out->detail[0] == '\0')
        snprintf(out->detail, sizeof(out->detail), "%s", rp_strerror(err));
    return err;
}
