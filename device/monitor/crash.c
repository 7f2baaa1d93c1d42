/*
 * The crash store (crash.h): the init's encoding of a capture, and S/crashes/, the bounded,
 * crash-safe store the app supervisor keeps and the monitor reads for CRASHES. Privileged: it
 * never parses what the init sent, only bounds its length.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crash.h"
#include "proto.h"
#include "rampart/bytes.h"
#include "rampart/file.h"
#include "rampart/log.h"

_Static_assert(RP_CRASH_FILE_MAX <= RP_MON_CRASH_MAX, "a kept crash travels in CRASHES");

typedef struct wr {
    uint8_t *p;
    size_t cap, len;
    int over;
} wr_t;

static void put(wr_t *w, const void *v, size_t n)
{
    if (w->over || n > w->cap - w->len) {
        w->over = 1;
        return;
    }
    memcpy(w->p + w->len, v, n);
    w->len += n;
}
static void put_le(wr_t *w, uint64_t v, size_t n)
{
    uint8_t b[8];
    rp_le_put(b, v, n);
    put(w, b, n);
}
static void put_bytes(wr_t *w, const void *v, size_t n, size_t max)
{
    if (n > max) {
        w->over = 1;
        return;
    }
    put_le(w, n, 2);
    put(w, v, n);
}
static void put_str(wr_t *w, const char *s, size_t max)
{
    put_bytes(w, s, strnlen(s, max + 1), max);
}

rp_err_t rp_crash_capture_encode(const rp_crash_capture_t *c, uint8_t *buf, size_t cap, size_t *len)
{
    wr_t w = {.p = buf, .cap = cap};

    if (c->nmods > RP_CRASH_MODULES_MAX)
        return RP_ERR_TOO_LARGE;
    put_le(&w, c->arch, 2);
    put_le(&w, (uint32_t)c->signo, 4);
    put_le(&w, (uint32_t)c->code, 4);
    put_le(&w, c->addr, 8);
    put_le(&w, c->tid, 4);
    put_bytes(&w, c->regs, c->regs_len, RP_CRASH_REGS_MAX);
    put_le(&w, c->sp, 8);
    put_bytes(&w, c->stack, c->stack_len, RP_CRASH_STACK_MAX);
    put_le(&w, c->nmods, 2);
    for (size_t i = 0; i < c->nmods; i++) {
        put_le(&w, c->mods[i].start, 8);
        put_le(&w, c->mods[i].end, 8);
        put_le(&w, c->mods[i].offset, 8);
        put_str(&w, c->mods[i].path, RP_CRASH_PATH_MAX);
    }
    *len = w.len;
    return w.over ? RP_ERR_TOO_LARGE : RP_OK;
}

static int crash_dir(const char *state_dir, const char *file, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/crashes%s%s", state_dir, file ? "/" : "", file ? file : "");
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* A kept crash's file name: 16 hex digits, its number. */
static int crash_number(const char *name, uint64_t *seq)
{
    char *end;
    if (strlen(name) != 16 || strspn(name, "0123456789abcdef") != 16)
        return 0;
    *seq = strtoull(name, &end, 16);
    return *end == '\0' && *seq > 0;
}

static uint64_t read_counter(const char *state_dir, const char *file)
{
    char path[4096], text[32] = "";
    FILE *f;

    if (crash_dir(state_dir, file, path, sizeof(path)) != 0 || (f = fopen(path, "re")) == NULL)
        return 0;
    if (fgets(text, sizeof(text), f) == NULL)
        text[0] = '\0';
    fclose(f);
    return strtoull(text, NULL, 10);
}

static rp_err_t write_counter(const char *state_dir, const char *file, uint64_t v)
{
    char path[4096], text[32];
    int n = snprintf(text, sizeof(text), "%" PRIu64 "\n", v);

    if (crash_dir(state_dir, file, path, sizeof(path)) != 0)
        return RP_ERR_INVALID_ARG;
    return rp_write_file_atomic(path, text, (size_t)n, 0600, 0);
}

/* The kept numbers, ascending. OUT: seqs[0..*n) (at most max: the lowest). */
static int list_kept(const char *state_dir, uint64_t *seqs, size_t max, size_t *n, uint64_t *hi)
{
    char path[4096];
    DIR *d;
    struct dirent *e;

    *n = 0;
    *hi = 0;
    if (crash_dir(state_dir, NULL, path, sizeof(path)) != 0 || (d = opendir(path)) == NULL)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d)) != NULL) {
        uint64_t s;
        if (!crash_number(e->d_name, &s))
            continue;
        if (s > *hi)
            *hi = s;
        size_t i; /* insert, keeping the max lowest */
        if (*n < max)
            i = (*n)++;
        else if (s < seqs[max - 1])
            i = max - 1;
        else
            continue;
        while (i > 0 && seqs[i - 1] > s) {
            seqs[i] = seqs[i - 1];
            i--;
        }
        seqs[i] = s;
    }
    closedir(d);
    return 0;
}

rp_err_t rp_crash_store_put(const char *state_dir, const rp_crash_meta_t *m, const uint8_t *capture,
                            size_t capture_len, uint64_t *seq)
{
    static uint8_t buf[RP_CRASH_FILE_MAX];
    uint64_t kept[RP_CRASH_KEEP + 64], hi, next, dropped;
    size_t n, log_len = m->log_len;
    char path[4096], name[17];
    wr_t w = {.p = buf, .cap = sizeof(buf)};
    rp_err_t err;

    if (capture_len > RP_CRASH_CAPTURE_MAX)
        return RP_ERR_TOO_LARGE;
    if (!rp_crash_capture_on(state_dir))
        return RP_ERR_DENIED;
    if (crash_dir(state_dir, NULL, path, sizeof(path)) != 0 ||
        (mkdir(path, 0700) != 0 && errno != EEXIST) ||
        list_kept(state_dir, kept, sizeof(kept) / sizeof(kept[0]), &n, &hi) != 0)
        return RP_ERR_IO;
    /* The next number: past every kept one and the recorded counter (a store emptied by hand
     * never reuses a number). */
    next = read_counter(state_dir, "next");
    if (next <= hi)
        next = hi + 1;
    if (next == 0)
        next = 1;
    put(&w, "RPCR", 4);
    put_le(&w, 1, 2);
    put_le(&w, next, 8);
    put_le(&w, (uint64_t)m->at, 8);
    put_le(&w, m->uptime_ms, 8);
    put_str(&w, m->component, RP_COMPONENT_NAME_MAX);
    put_str(&w, m->version, RP_CRASH_VERSION_MAX);
    put_bytes(&w, m->digest, 32, 32);
    put_str(&w, m->tree, RP_CRASH_TREE_MAX);
    if (log_len > RP_CRASH_LOG_MAX)
        log_len = RP_CRASH_LOG_MAX; /* the newest bytes */
    put_bytes(&w, m->log + (m->log_len - log_len), log_len, RP_CRASH_LOG_MAX);
    put(&w, capture, capture_len);
    if (w.over)
        return RP_ERR_TOO_LARGE;
    snprintf(name, sizeof(name), "%016" PRIx64, next);
    if (crash_dir(state_dir, name, path, sizeof(path)) != 0)
        return RP_ERR_INVALID_ARG;
    if ((err = rp_write_file_atomic(path, buf, w.len, 0600, 1)) != RP_OK)
        return err;
    /* The switch turned off while this was written (by the monitor, another process): its pass
     * over the store may have run before the file was there, so the file goes here. */
    if (!rp_crash_capture_on(state_dir)) {
        (void)unlink(path);
        return RP_ERR_DENIED;
    }
    *seq = next;
    /* A cut here leaves one crash too many (removed at the next put) and the counter behind
     * (the kept numbers say more): nothing is lost or reused. */
    (void)write_counter(state_dir, "next", next + 1);
    dropped = read_counter(state_dir, "dropped");
    n = n < sizeof(kept) / sizeof(kept[0]) ? n : sizeof(kept) / sizeof(kept[0]);
    for (size_t i = 0; i + RP_CRASH_KEEP < n + 1; i++) {
        snprintf(name, sizeof(name), "%016" PRIx64, kept[i]);
        if (crash_dir(state_dir, name, path, sizeof(path)) == 0 && unlink(path) == 0)
            dropped++;
    }
    if (dropped != read_counter(state_dir, "dropped"))
        (void)write_counter(state_dir, "dropped", dropped);
    return RP_OK;
}

bool rp_crash_capture_on(const char *state_dir)
{
    char path[4096], text[8] = "";
    ssize_t n = -1;
    int fd;

    if (crash_dir(state_dir, "capture", path, sizeof(path)) != 0)
        return false;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return true;
    if (fd >= 0) {
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
    }
    if (n == 3 && memcmp(text, "on\n", 3) == 0)
        return true;
    if (!(n == 4 && memcmp(text, "off\n", 4) == 0))
        rp_log_warn("%s is unreadable or holds neither \"on\" nor \"off\": crash capture is off",
                    path);
    return false;
}

rp_err_t rp_crash_capture_set(const char *state_dir, bool on)
{
    uint64_t kept[RP_CRASH_KEEP + 64], hi;
    char path[4096], name[17];
    size_t n;
    rp_err_t err;

    if (crash_dir(state_dir, NULL, path, sizeof(path)) != 0)
        return RP_ERR_INVALID_ARG;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return RP_ERR_IO;
    if (crash_dir(state_dir, "capture", path, sizeof(path)) != 0)
        return RP_ERR_INVALID_ARG;
    if ((err = rp_write_file_atomic(path, on ? "on\n" : "off\n", on ? 3 : 4, 0600, 0)) != RP_OK)
        return err;
    if (on)
        return RP_OK;
    /* Every kept crash, however many (the listing holds a bounded number: again until none). */
    do {
        if (list_kept(state_dir, kept, sizeof(kept) / sizeof(kept[0]), &n, &hi) != 0)
            return RP_ERR_IO;
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof(name), "%016" PRIx64, kept[i]);
            if (crash_dir(state_dir, name, path, sizeof(path)) != 0 ||
                (unlink(path) != 0 && errno != ENOENT))
                return RP_ERR_IO;
        }
    } while (n == sizeof(kept) / sizeof(kept[0]));
    return RP_OK;
}

rp_err_t rp_crash_store_read(const char *state_dir, uint64_t from, uint32_t offset, uint8_t *buf,
                             size_t cap, size_t *len, uint64_t *seq, uint32_t *size,
                             uint64_t *dropped)
{
    uint64_t kept[RP_CRASH_KEEP + 64], hi, best = 0;
    size_t n;
    char path[4096], name[17];
    struct stat st;
    int fd;

    *len = 0;
    *seq = 0;
    *size = 0;
    *dropped = read_counter(state_dir, "dropped");
    if (list_kept(state_dir, kept, sizeof(kept) / sizeof(kept[0]), &n, &hi) != 0)
        return RP_ERR_IO;
    for (size_t i = 0; i < n && best == 0; i++)
        if (kept[i] >= from)
            best = kept[i];
    if (best == 0)
        return RP_OK;
    snprintf(name, sizeof(name), "%016" PRIx64, best);
    if (crash_dir(state_dir, name, path, sizeof(path)) != 0)
        return RP_ERR_IO;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO; /* dropped meanwhile: ask again */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > RP_CRASH_FILE_MAX) {
        close(fd);
        return RP_ERR_IO;
    }
    *seq = best;
    *size = (uint32_t)st.st_size;
    if (offset < *size) {
        size_t want = *size - offset < cap ? *size - offset : cap;
        ssize_t got = pread(fd, buf, want, offset);
        if (got < 0) {
            close(fd);
            return RP_ERR_IO;
        }
        *len = (size_t)got;
    }
    close(fd);
    return RP_OK;
}
