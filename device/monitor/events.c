/*
 * The security event log (events.h): one file, S/events/log, of fixed-size slots.
 *
 * Format: a 512-byte header, then RP_EVENTS_MAX slots of 512 bytes. Event number seq (counted
 * from 0 over the log's life) lives in slot seq % RP_EVENTS_MAX, so the log holds the newest
 * RP_EVENTS_MAX events and how many were dropped follows from the numbers alone: nothing to keep
 * consistent between two places. Each slot carries its own magic, number and CRC-32, so a slot
 * torn by a crash mid-write fails its check and is skipped by the reader (and counted as dropped
 * if an event after it exists). The header only remembers the next number, as a hint; the writer
 * checks the slot it points at, so a header that lags its last record (a crash between the two
 * writes) never makes it overwrite that record.
 *
 * Writing: one pwrite of the whole slot, then fdatasync, then the header (not synced: a hint),
 * under an exclusive flock (the monitor is the only writer; the lock keeps a test or a second
 * monitor from interleaving). An event returned RP_OK is on disk. Callers bound how many events
 * one app can make (compartment.c), so the sync per event is not a lever for an app.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "rampart/file.h"

#define SLOT 512
#define HEADER_MAGIC "RPEH"
#define RECORD_MAGIC "RPEV"
#define FORMAT_VERSION 1u

/* Record layout (host byte order: the file never leaves the device). */
#define OFF_MAGIC 0
#define OFF_CRC 4 /* over bytes [8, SLOT) */
#define OFF_SEQ 8
#define OFF_AT 16
#define OFF_KIND 24
#define OFF_APP 28
#define OFF_REASON (OFF_APP + RP_COMPONENT_NAME_MAX + 1)
_Static_assert(OFF_REASON + RP_EVENT_REASON_MAX + 1 <= SLOT, "an event fits its slot");

static const char *const kind_names[] = {
    [RP_EVENT_SYSCALL] = "syscall",
    [RP_EVENT_CONNECTION] = "connection",
    [RP_EVENT_LISTEN] = "listen",
    [RP_EVENT_DEVICE] = "device",
    [RP_EVENT_QUOTA] = "quota",
    [RP_EVENT_OOM] = "oom",
    [RP_EVENT_PIDS] = "pids",
    [RP_EVENT_APP_CONNECTION] = "app_connection",
    [RP_EVENT_FILE] = "file",
    [RP_EVENT_IMAGE] = "image",
    [RP_EVENT_CAPABILITY] = "capability",
    [RP_EVENT_IDENTITY] = "identity",
    [RP_EVENT_EXIT] = "exit",
    [RP_EVENT_RESTART_LOOP] = "restart_loop",
    [RP_EVENT_HEALTH] = "health",
    [RP_EVENT_REMOVED] = "removed",
    [RP_EVENT_LANDLOCK] = "landlock",
};
_Static_assert(sizeof(kind_names) / sizeof(kind_names[0]) == RP_EVENT_KIND_END, "a name a kind");

const char *rp_event_kind_name(rp_event_kind_t kind)
{
    if ((unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) && kind_names[kind] != NULL)
        return kind_names[kind];
    return "unknown";
}

bool rp_event_loop_note(rp_event_loop_t *l, int64_t now)
{
    int64_t oldest;
    bool in;

    l->at[l->n % RP_EVENT_LOOP_EXITS] = now;
    l->n++;
    oldest = l->at[l->n % RP_EVENT_LOOP_EXITS]; /* the slot the next exit takes */
    in = l->n >= RP_EVENT_LOOP_EXITS && now - oldest <= RP_EVENT_LOOP_SECONDS;
    if (in && !l->in_loop) {
        l->in_loop = true;
        return true;
    }
    l->in_loop = in;
    return false;
}

static uint32_t crc32(const uint8_t *p, size_t len)
{
    uint32_t c = 0xffffffffu;

    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static off_t slot_offset(uint64_t seq)
{
    return (off_t)SLOT * (off_t)(1 + seq % RP_EVENTS_MAX);
}

static int log_path(const char *state_dir, char *out, size_t cap, bool dir_only)
{
    int n = snprintf(out, cap, "%s/events%s", state_dir, dir_only ? "" : "/log");
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Whether slot holds a sound record; its number in *seq. */
static bool record_valid(const uint8_t slot[SLOT], uint64_t *seq)
{
    uint32_t crc;

    if (memcmp(slot + OFF_MAGIC, RECORD_MAGIC, 4) != 0)
        return false;
    memcpy(&crc, slot + OFF_CRC, 4);
    if (crc != crc32(slot + 8, SLOT - 8))
        return false;
    memcpy(seq, slot + OFF_SEQ, 8);
    return true;
}

static void record_decode(const uint8_t slot[SLOT], rp_event_t *ev)
{
    uint32_t kind;

    memset(ev, 0, sizeof(*ev));
    memcpy(&ev->at, slot + OFF_AT, 8);
    memcpy(&kind, slot + OFF_KIND, 4);
    ev->kind = (rp_event_kind_t)kind;
    memcpy(ev->app, slot + OFF_APP, RP_COMPONENT_NAME_MAX);
    memcpy(ev->reason, slot + OFF_REASON, RP_EVENT_REASON_MAX);
}

rp_err_t rp_event_record(const char *state_dir, rp_event_kind_t kind, const char *app,
                         const char *reason)
{
    char dir[PATH_MAX], path[PATH_MAX];
    uint8_t hdr[SLOT], rec[SLOT];
    uint64_t next = 0, seq;
    uint32_t crc, k = (uint32_t)kind, version = FORMAT_VERSION;
    int64_t at = (int64_t)time(NULL);
    rp_err_t err = RP_ERR_IO;
    struct stat st;
    int fd;

    if (state_dir == NULL || reason == NULL || log_path(state_dir, dir, sizeof(dir), true) != 0 ||
        log_path(state_dir, path, sizeof(path), false) != 0)
        return RP_ERR_INVALID_ARG;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return RP_ERR_IO;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return RP_ERR_IO;
    if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0)
        goto out;
    if (st.st_size >= SLOT && rp_pread_all(fd, hdr, SLOT, 0) == RP_OK &&
        memcmp(hdr, HEADER_MAGIC, 4) == 0)
        memcpy(&next, hdr + 8, 8);
    /* The header may lag the last record by one (a crash between the writes): never overwrite
     * a record the header has not counted yet. */
    for (int i = 0; i < 2; i++) {
        if (st.st_size >= slot_offset(next) + SLOT &&
            rp_pread_all(fd, rec, SLOT, (uint64_t)slot_offset(next)) == RP_OK &&
            record_valid(rec, &seq) && seq >= next)
            next = seq + 1;
    }

    memset(rec, 0, sizeof(rec));
    memcpy(rec + OFF_MAGIC, RECORD_MAGIC, 4);
    memcpy(rec + OFF_SEQ, &next, 8);
    memcpy(rec + OFF_AT, &at, 8);
    memcpy(rec + OFF_KIND, &k, 4);
    if (app != NULL)
        strncpy((char *)rec + OFF_APP, app, RP_COMPONENT_NAME_MAX);
    strncpy((char *)rec + OFF_REASON, reason, RP_EVENT_REASON_MAX);
    crc = crc32(rec + 8, SLOT - 8);
    memcpy(rec + OFF_CRC, &crc, 4);
    if (pwrite(fd, rec, SLOT, slot_offset(next)) != SLOT || fdatasync(fd) != 0)
        goto out;

    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr, HEADER_MAGIC, 4);
    memcpy(hdr + 4, &version, 4);
    next++;
    memcpy(hdr + 8, &next, 8);
    if (pwrite(fd, hdr, SLOT, 0) != SLOT)
        goto out; /* the record is safe; only the hint failed, and the next writer repairs it */
    err = RP_OK;
out:
    close(fd);
    return err;
}

/* The log's current numbers: seqs[i] is the number slot i holds, UINT64_MAX when it holds none
 * (or a stale survivor). OUT: *top, the newest number; *valid, how many are current; false when
 * the log has no event. */
static bool scan(int fd, uint64_t seqs[RP_EVENTS_MAX], uint64_t *top, size_t *valid)
{
    uint8_t rec[SLOT];
    uint64_t seq;
    bool any = false;

    *top = 0;
    *valid = 0;
    for (uint64_t i = 0; i < RP_EVENTS_MAX; i++)
        seqs[i] = UINT64_MAX;
    /* First pass: the newest number, which decides which slots are current. */
    for (uint64_t i = 0; i < RP_EVENTS_MAX; i++) {
        if (rp_pread_all(fd, rec, SLOT, (uint64_t)SLOT * (1 + i)) != RP_OK)
            break; /* a short file: the log has not filled yet */
        if (record_valid(rec, &seq) && seq % RP_EVENTS_MAX == i) {
            seqs[i] = seq;
            if (!any || seq > *top)
                *top = seq;
            any = true;
        }
    }
    /* Current: within the last RP_EVENTS_MAX numbers (an older one is a stale survivor). */
    for (uint64_t i = 0; any && i < RP_EVENTS_MAX; i++) {
        if (seqs[i] != UINT64_MAX && seqs[i] + RP_EVENTS_MAX > *top)
            (*valid)++;
        else
            seqs[i] = UINT64_MAX;
    }
    return any;
}

/* The log, opened for reading under a shared lock: -1 with *err (RP_OK when there is none). */
static int open_log(const char *state_dir, rp_err_t *err)
{
    char path[PATH_MAX];
    int fd;

    *err = RP_OK;
    if (log_path(state_dir, path, sizeof(path), false) != 0) {
        *err = RP_ERR_INVALID_ARG;
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        *err = errno == ENOENT ? RP_OK : RP_ERR_IO;
        return -1;
    }
    if (flock(fd, LOCK_SH) != 0) {
        close(fd);
        *err = RP_ERR_IO;
        return -1;
    }
    return fd;
}

/* Event s into *ev, if its slot still holds it. */
static bool read_one(int fd, uint64_t s, rp_event_t *ev)
{
    uint8_t rec[SLOT];
    uint64_t seq;

    if (rp_pread_all(fd, rec, SLOT, (uint64_t)slot_offset(s)) != RP_OK ||
        !record_valid(rec, &seq) || seq != s)
        return false;
    record_decode(rec, ev);
    ev->seq = s;
    return true;
}

rp_err_t rp_events_read(const char *state_dir, rp_event_t *out, size_t max, size_t *n,
                        uint64_t *dropped)
{
    uint64_t seqs[RP_EVENTS_MAX]; /* 8 KB: on the stack, so readers on two threads are fine */
    uint64_t top;
    size_t valid, kept = 0, skip;
    rp_err_t err;
    int fd;

    *n = 0;
    *dropped = 0;
    fd = open_log(state_dir, &err);
    if (fd < 0)
        return err;
    if (!scan(fd, seqs, &top, &valid)) {
        close(fd);
        return RP_OK;
    }
    *dropped = top + 1 - valid;
    skip = valid > max ? valid - max : 0;
    /* Oldest first: walk the numbers from the oldest the log can hold. */
    for (uint64_t s = top + 1 > RP_EVENTS_MAX ? top + 1 - RP_EVENTS_MAX : 0; s <= top; s++) {
        if (seqs[s % RP_EVENTS_MAX] != s)
            continue;
        if (kept++ < skip)
            continue;
        if (read_one(fd, s, &out[*n]))
            (*n)++;
    }
    close(fd);
    return RP_OK;
}

rp_err_t rp_events_read_from(const char *state_dir, uint64_t from, rp_event_t *out, size_t max,
                             size_t *n, uint64_t *next, bool *more, uint64_t *dropped)
{
    uint64_t seqs[RP_EVENTS_MAX];
    uint64_t top, s;
    size_t valid;
    rp_err_t err;
    int fd;

    *n = 0;
    *next = from;
    *more = false;
    *dropped = 0;
    fd = open_log(state_dir, &err);
    if (fd < 0) {
        if (err == RP_OK)
            *next = 0; /* no log: nothing was ever recorded */
        return err;
    }
    if (!scan(fd, seqs, &top, &valid)) {
        close(fd);
        *next = 0;
        return RP_OK;
    }
    *dropped = top + 1 - valid;
    if (from > top + 1)
        from = *next = top + 1; /* a log made anew since the cursor was kept */
    s = top + 1 > RP_EVENTS_MAX && from < top + 1 - RP_EVENTS_MAX ? top + 1 - RP_EVENTS_MAX : from;
    for (; s <= top && *n < max; s++) {
        if (seqs[s % RP_EVENTS_MAX] == s && read_one(fd, s, &out[*n]))
            (*n)++;
        *next = s + 1;
    }
    for (; s <= top && !*more; s++)
        *more = seqs[s % RP_EVENTS_MAX] == s;
    close(fd);
    return RP_OK;
}
