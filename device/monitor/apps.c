/*
 * The monitor's app supervisor (apps.h): its process (the apps' compartments, their network,
 * restarts, watchdogs, trials) and the monitor's side of talking to it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "appchan.h" /* RP_APPCHAN_EVENTS_MAX */
#include "apps.h"
#include "evreader.h"
#include "capability.h"
#include "compartment.h"
#include "events.h"
#include "netpolicy.h"
#include "rampart/apptree.h" /* rp_apptree_remove only: the reading is rampart-unpack's */
#include "rampart/file.h"
#include "crash.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "unpack.h"

#define TRIAL_SLOT RP_COMPONENTS_MAX /* the network slot of the one trial at a time */
#define EXITS_MAX (64 * 1024)
#define RP_APPS_CHANNELS_MAX 4

typedef struct app {
    bool used;
    rp_apps_want_t want; /* what runs (or should) */
    rp_manifest_t m;
    rp_compartment_t c;
    uint32_t uid; /* its uid (and gid) of its last start */
    bool running; /* c holds a started compartment */
    bool held;    /* stopped for a trial of its component */
    rp_netpolicy_app_t net;
    bool net_on;
    uint32_t net_slot;
    rp_mon_app_state_t state;
    time_t started, next_start, next_refresh;
    int backoff;
    uint32_t restarts;
    unsigned layers; /* of its last start */
    char missing[RP_MON_MISSING_MAX + 1];
    int chan; /* the app's end of its channel for its next start (apps.h); -1: none yet */
    bool off; /* stopped by an operator (CONTROL): not started until started */
    rp_event_loop_t loop; /* its version's exits, for the restart-loop rule (events.h) */
} app_t;

static struct {
    char state_dir[PATH_MAX];
    char audit_mark[PATH_MAX]; /* S/run/audit-turned-on: audit was off before us */
    bool audit_ours;           /* we (or a killed supervisor before us) turned audit on */
    int fd;
    rp_netpolicy_t np;
    bool np_on;
    rp_evreader_t reader; /* the kernel's refusals, read by `rampart-unpack read` (evreader.h) */
    app_t apps[RP_COMPONENTS_MAX];
    app_t trial;
    bool trial_on;
    int trial_fd;                   /* where the trial's verdict goes */
    int chan[RP_APPS_CHANNELS_MAX]; /* install children's channels; -1: free */
    uint32_t trial_seq;
    int64_t trial_deadline_ms;
    int trial_seconds;
    char device_id[RP_DEVICE_ID_SIZE]; /* from the monitor's SET */
    rp_apps_reply_t reply;
    pid_t broker; /* the app broker (BROKER); -1: none */
    int store[2]; /* the read ends of the stores of kept ends (rp_apps_store_hand); -1: none */
} s;

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A path, or RP_ERR_INVALID_ARG when it does not fit. */
static rp_err_t pathf(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static rp_err_t pathf(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

/* S/apps/COMPONENT[/file] ("" file: the directory). */
static rp_err_t app_path(const char *name, const char *file, char *out, size_t cap)
{
    return pathf(out, cap, "%s/apps/%s%s%s", s.state_dir, name, file[0] ? "/" : "", file);
}

static rp_err_t run_path(const char *name, char *out, size_t cap)
{
    return pathf(out, cap, "%s/run/apps/%s", s.state_dir, name);
}

static rp_err_t mkdir_p(const char *path, mode_t mode)
{
    return mkdir(path, mode) == 0 || errno == EEXIST ? RP_OK : RP_ERR_IO;
}

static rp_err_t app_dirs(const char *name)
{
    char p[PATH_MAX];
    rp_err_t err = pathf(p, sizeof(p), "%s/apps", s.state_dir);

    /* S/apps and S/apps/C are passable, not listable (0711): the unprivileged agent opens an app's
     * tree (read-only, made from a signed image it downloaded itself) to unwind its crashes
     * (crash.h); every other file there is root's alone (0600). */
    if (err == RP_OK && (err = mkdir_p(p, 0711)) == RP_OK && chmod(p, 0711) != 0)
        err = RP_ERR_IO;
    if (err == RP_OK && (err = app_path(name, "", p, sizeof(p))) == RP_OK &&
        (err = mkdir_p(p, 0711)) == RP_OK && chmod(p, 0711) != 0)
        err = RP_ERR_IO;
    if (err == RP_OK && (err = pathf(p, sizeof(p), "%s/run", s.state_dir)) == RP_OK)
        err = mkdir_p(p, 0700);
    if (err == RP_OK && (err = pathf(p, sizeof(p), "%s/run/apps", s.state_dir)) == RP_OK)
        err = mkdir_p(p, 0700);
    if (err == RP_OK && (err = run_path(name, p, sizeof(p))) == RP_OK)
        err = mkdir_p(p, 0700);
    return err;
}

/* ---- uids: one per app, recorded in S/apps/C/uid, never shared ---- */

static bool read_uid(const char *name, uint32_t *uid)
{
    char path[PATH_MAX], text[32] = "", *end;
    unsigned long v;
    int fd;
    ssize_t n;

    if (app_path(name, "uid", path, sizeof(path)) != RP_OK ||
        (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return false;
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || (*end != '\n' && *end != '\0') || v < RP_APPS_UID_BASE ||
        v >= (unsigned long)RP_APPS_UID_BASE + RP_APPS_UID_COUNT)
        return false;
    *uid = (uint32_t)v;
    return true;
}

static rp_err_t app_uid(const char *name, uint32_t *uid)
{
    static uint8_t used[RP_APPS_UID_COUNT / 8];
    char path[PATH_MAX], text[32];
    DIR *d;
    struct dirent *e;

    if (read_uid(name, uid))
        return RP_OK;
    memset(used, 0, sizeof(used));
    d = pathf(path, sizeof(path), "%s/apps", s.state_dir) == RP_OK ? opendir(path) : NULL;
    while (d != NULL && (e = readdir(d)) != NULL) {
        uint32_t other;
        if (e->d_name[0] != '.' && rp_component_name_valid(e->d_name, strlen(e->d_name)) &&
            read_uid(e->d_name, &other)) {
            other -= RP_APPS_UID_BASE;
            used[other / 8] |= (uint8_t)(1u << (other % 8));
        }
    }
    if (d != NULL)
        closedir(d);
    for (uint32_t i = 0; i < RP_APPS_UID_COUNT; i++) {
        if (used[i / 8] & (1u << (i % 8)))
            continue;
        *uid = RP_APPS_UID_BASE + i;
        snprintf(text, sizeof(text), "%u\n", (unsigned)*uid);
        if (app_path(name, "uid", path, sizeof(path)) != RP_OK ||
            rp_write_file_atomic(path, text, strlen(text), 0600, 0) != RP_OK)
            return RP_ERR_IO;
        rp_log_info("%s: runs as uid and gid %u", name, (unsigned)*uid);
        return RP_OK;
    }
    return RP_ERR_TOO_LARGE;
}

/* ---- the tree ---- */

/* Write a legacy image's one file as DIR/app, the tree of an app with the empty manifest. */
static rp_err_t legacy_tree(int in, const rp_apps_want_t *w, const char *dir, rp_manifest_t *m)
{
    char path[PATH_MAX];
    uint8_t buf[64 * 1024];
    int out;
    rp_err_t err = RP_OK;

    if (mkdir(dir, 0700) != 0 || snprintf(path, sizeof(path), "%s/app", dir) >= (int)sizeof(path))
        return RP_ERR_IO;
    out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0555);
    if (out < 0)
        return RP_ERR_IO;
    for (uint64_t off = 0; err == RP_OK && off < w->payload_len;) {
        size_t n =
            w->payload_len - off < sizeof(buf) ? (size_t)(w->payload_len - off) : sizeof(buf);
        err = rp_pread_all(in, buf, n, w->payload_off + off);
        if (err == RP_OK)
            err = rp_write_all(out, buf, n);
        off += n;
    }
    if (err == RP_OK && (fsync(out) != 0 || fchmod(out, 0555) != 0))
        err = RP_ERR_IO;
    if (close(out) != 0 && err == RP_OK)
        err = RP_ERR_IO;
    if (err == RP_OK && chmod(dir, 0555) != 0)
        err = RP_ERR_IO;
    rp_manifest_legacy(m, w->component, "app");
    return err;
}

/* An image's manifest is its component's only when it names it (an image signed for one app and
 * installed as another runs as neither). */
static rp_err_t manifest_of(const rp_apps_want_t *w, rp_manifest_t *m, char *why, size_t cap);

static rp_err_t manifest_for(const rp_manifest_t *m, const rp_apps_want_t *w, char *why, size_t cap)
{
    if (strcmp(m->component_id, w->component) == 0)
        return RP_OK;
    snprintf(why, cap, "its manifest's ComponentId %s is not the component %s", m->component_id,
             w->component);
    return RP_ERR_MALFORMED;
}

/* Extract the image's payload into S/apps/C/NAME (made here; it must not exist) by the confined
 * rampart-unpack (unpack.h): no archive is read in this process. OUT: *m. */
static rp_err_t extract(const rp_apps_want_t *w, const char *dir, rp_manifest_t *m, char *kind_out,
                        char *why, size_t cap)
{
    char slot[PATH_MAX];
    bool is_tree = false;
    int fd;
    rp_err_t err;

    why[0] = '\0';
    if (rp_slot_path(s.state_dir, w->component, w->slot, slot, sizeof(slot)) != RP_OK ||
        (fd = open(slot, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(why, cap, "cannot open its slot");
        return RP_ERR_IO;
    }
    err = rp_unpack_extract(fd, w->payload_off, w->payload_len, w->component, dir, m, &is_tree, why,
                            cap);
    if (err == RP_OK && is_tree) {
        *kind_out = 't';
        err = manifest_for(m, w, why, cap);
    } else if (err == RP_OK) {
        *kind_out = 'l';
        err = legacy_tree(fd, w, dir, m);
        if (err != RP_OK)
            snprintf(why, cap, "cannot write its program out");
    }
    close(fd);
    if (err != RP_OK) {
        if (why[0] == '\0')
            snprintf(why, cap, "cannot read its payload");
        if (rp_unpack_remove(dir) != RP_OK)
            rp_log_warn("%s: cannot remove", dir);
    }
    return err;
}

/* The manifest kept beside a tree (S/apps/C/tree.manifest, root's): its binary form, decoded with
 * every rule checked again; the JSON in the tree is never parsed here. */
static rp_err_t manifest_kept(const char *path, rp_manifest_t *m)
{
    static uint8_t bin[RP_MANIFEST_BIN_LEN + 1];
    char why[128];
    ssize_t n = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd >= 0) {
        n = read(fd, bin, sizeof(bin));
        close(fd);
    }
    return n < 0 ? RP_ERR_NOT_FOUND : rp_manifest_decode(bin, (size_t)n, m, why, sizeof(why));
}

/*
 * S/apps/C/tree holds the image's tree: extracted once per version (tree.digest names the image
 * and the kind), swapped in whole, its manifest's binary form beside it (tree.manifest, written
 * before the marker: a marker names a tree and a manifest both in place). OUT: *m, its manifest
 * (the empty one for a legacy image).
 */
static rp_err_t tree_ensure(const rp_apps_want_t *w, rp_manifest_t *m, char *why, size_t cap)
{
    char tree[PATH_MAX], tmp[PATH_MAX], marker[PATH_MAX], mpath[PATH_MAX];
    char want[2 * RP_SHA256_LEN + 4], have[2 * RP_SHA256_LEN + 4] = "", kind = 'l';
    struct stat st;
    int fd;
    ssize_t n;
    rp_err_t err;

    if (app_path(w->component, "tree", tree, sizeof(tree)) != RP_OK ||
        app_path(w->component, "tree.new", tmp, sizeof(tmp)) != RP_OK ||
        app_path(w->component, "tree.digest", marker, sizeof(marker)) != RP_OK ||
        app_path(w->component, "tree.manifest", mpath, sizeof(mpath)) != RP_OK ||
        rp_hex_encode(w->digest, RP_SHA256_LEN, want, sizeof(want)) != RP_OK)
        return RP_ERR_INVALID_ARG;
    if ((fd = open(marker, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
        n = read(fd, have, sizeof(have) - 1);
        have[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    if (strlen(have) == 2 * RP_SHA256_LEN + 2 && strncmp(have, want, 2 * RP_SHA256_LEN) == 0 &&
        lstat(tree, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (have[2 * RP_SHA256_LEN + 1] == 'l') {
            rp_manifest_legacy(m, w->component, "app");
            return RP_OK;
        }
        if (manifest_kept(mpath, m) == RP_OK)
            return RP_OK;
        rp_log_info("%s: its kept manifest is missing or of another version: extracted again",
                    w->component);
    }
    /* Another image: extract it beside the old tree, then swap. The marker goes first, so that a
     * cut leaves no marker naming a tree it does not describe. */
    if ((unlink(marker) != 0 && errno != ENOENT) || rp_apptree_remove(tmp) != RP_OK) {
        snprintf(why, cap, "cannot clear the old tree");
        return RP_ERR_IO;
    }
    err = extract(w, tmp, m, &kind, why, cap);
    if (err != RP_OK)
        return err;
    if (lstat(tree, &st) == 0) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, tree, RENAME_EXCHANGE) != 0 ||
            rp_apptree_remove(tmp) != RP_OK)
            err = RP_ERR_IO;
    } else if (rename(tmp, tree) != 0) {
        err = RP_ERR_IO;
    }
    if (err == RP_OK && kind == 't') {
        static uint8_t bin[RP_MANIFEST_BIN_LEN];
        rp_manifest_encode(m, bin);
        err = rp_write_file_atomic(mpath, bin, sizeof(bin), 0600, 0);
    }
    memcpy(have, want, 2 * RP_SHA256_LEN);
    have[2 * RP_SHA256_LEN] = ' ';
    have[2 * RP_SHA256_LEN + 1] = kind;
    have[2 * RP_SHA256_LEN + 2] = '\0';
    if (err == RP_OK)
        err = rp_write_file_atomic(marker, have, strlen(have), 0644, 0); /* the agent's too */
    if (err != RP_OK)
        snprintf(why, cap, "cannot put its tree in place: %s", strerror(errno));
    else
        rp_log_info("%s %s: extracted its %s", w->component, w->version,
                    kind == 't' ? "tree" : "program (a legacy image: no capabilities)");
    return err;
}

/* ---- one compartment ---- */

static int net_setup(pid_t child, void *ctx, rp_launch_hosts_t *hosts)
{
    app_t *a = ctx;

    if (!s.np_on)
        return 0; /* its namespace stays empty: no network at all (said at start) */
    if (rp_netpolicy_setup(&s.np, child, &a->m, a->net_slot, &a->net) != RP_OK)
        return -1;
    *hosts = a->net.hosts;
    a->net_on = true;
    a->next_refresh = time(NULL) + RP_NETPOLICY_REFRESH_SECONDS;
    return 0;
}

static void net_down(app_t *a)
{
    if (a->net_on)
        rp_netpolicy_teardown(&s.np, &a->net);
    a->net_on = false;
}

static bool is_stopped(const char *name);

/* Whether the next start may be debugged: a development capability in force now (checked at each
 * start: it expires, it is removed). OUT: *cap when true. */
static bool development(rp_md_capability_t *cap)
{
    bool dev = false;

    return s.device_id[0] != '\0' &&
           rp_capability_development(s.state_dir, s.device_id, &dev, cap, NULL, 0) == RP_OK && dev;
}

static void drop_chan(app_t *a)
{
    if (a->chan >= 0)
        close(a->chan);
    a->chan = -1;
}

/* Start a's compartment from the tree in S/apps/C/TREE. */
static rp_err_t compartment_up(app_t *a, const char *tree_name, char *why, size_t cap)
{
    char tree[PATH_MAX], storage[PATH_MAX], log[PATH_MAX], bucket[PATH_MAX], run[PATH_MAX];
    uint32_t uid;
    rp_compartment_spec_t spec = {0};
    rp_md_capability_t dev;
    rp_err_t err;

    if (app_path(a->want.component, tree_name, tree, sizeof(tree)) != RP_OK ||
        app_path(a->want.component, "storage.img", storage, sizeof(storage)) != RP_OK ||
        app_path(a->want.component, "log", log, sizeof(log)) != RP_OK ||
        app_path(a->want.component, "log.bucket", bucket, sizeof(bucket)) != RP_OK ||
        run_path(a->want.component, run, sizeof(run)) != RP_OK) {
        snprintf(why, cap, "the state directory's path is too long");
        return RP_ERR_INVALID_ARG;
    }
    if ((err = app_uid(a->want.component, &uid)) != RP_OK) {
        snprintf(why, cap, "no uid left for it");
        return err;
    }
    if (!s.np_on && (a->m.nconnections > 0 || a->m.ntcp_ports > 0 || a->m.nudp_ports > 0)) {
        snprintf(why, cap,
                 "its manifest allows network access, and the network policy is not "
                 "working on this device (said at start)");
        return RP_ERR_UNSUPPORTED;
    }
    spec.manifest = &a->m;
    spec.state_dir = s.state_dir;
    spec.tree_dir = tree;
    spec.storage_image = a->m.storage_kb > 0 ? storage : NULL;
    spec.run_dir = run;
    spec.log_path = log;
    spec.bucket_path = bucket;
    spec.component = a->want.component;
    spec.version = a->want.version;
    spec.uid = (uid_t)uid;
    a->uid = uid;
    spec.gid = (gid_t)uid;
    spec.net_setup = net_setup;
    spec.net_ctx = a;
    spec.channel_fd = a->chan;
    spec.debug = development(&dev);
    spec.no_crash_capture = !rp_crash_capture_on(s.state_dir);
    err = rp_compartment_start(&spec, &a->c, why, cap);
    drop_chan(a); /* the app's alone now (or, failed, the monitor makes the next run another) */
    if (err != RP_OK) {
        rp_compartment_stop(&a->c);
        net_down(a);
        return err;
    }
    a->running = true;
    a->layers = a->c.layers;
    /* The relaxation is seen: each start with it is an event. */
    if (spec.debug) {
        char reason[RP_EVENT_REASON_MAX + 1];
        snprintf(reason, sizeof(reason),
                 "started with ptrace allowed among its processes: development capability from "
                 "tenant %s until %lld",
                 dev.tenant, (long long)dev.expires);
        if (rp_event_record(s.state_dir, RP_EVENT_CAPABILITY, a->want.component, reason) != RP_OK)
            rp_log_warn("%s: cannot record the development-mode event", a->want.component);
    }
    if (a->c.layers & RP_LAYER_LANDLOCK_FS) /* (without, "no Landlock" says it all) */
        rp_evreader_note_missing(&s.reader, a->c.landlock_abi, a->c.missing, sizeof(a->c.missing));
    snprintf(a->missing, sizeof(a->missing), "%.*s", RP_MON_MISSING_MAX, a->c.missing);
    return RP_OK;
}

static void compartment_down(app_t *a)
{
    if (a->running)
        rp_compartment_stop(&a->c);
    a->running = false;
    net_down(a);
}

/* ---- supervision ---- */

static void backoff(app_t *a, time_t now)
{
    a->next_start = now + a->backoff;
    a->backoff = a->backoff * 2 > RP_APPS_BACKOFF_MAX ? RP_APPS_BACKOFF_MAX : a->backoff * 2;
    a->state = RP_MON_APP_RESTARTING;
}

static void start(app_t *a)
{
    char why[512];
    time_t now = time(NULL);

    if (a->held)
        return;
    if (a->off) {
        a->state = RP_MON_APP_STOPPED;
        return;
    }
    if (a->chan < 0) {
        /* Its channel comes from the monitor (after the SET, or when its last run's closed):
         * started when it arrives, or at the next tick. */
        a->state = RP_MON_APP_RESTARTING;
        a->next_start = now;
        return;
    }
    if (app_dirs(a->want.component) != RP_OK) {
        rp_log_error("%s: cannot make its directories", a->want.component);
        backoff(a, now);
        return;
    }
    if (tree_ensure(&a->want, &a->m, why, sizeof(why)) != RP_OK ||
        compartment_up(a, "tree", why, sizeof(why)) != RP_OK) {
        rp_log_error("%s %s: cannot start: %s; trying again in %d s", a->want.component,
                     a->want.version, why, a->backoff);
        backoff(a, now);
        return;
    }
    a->started = now;
    a->state = RP_MON_APP_STARTING;
    rp_log_info("%s %s: started in its compartment (pid %d)%s%s", a->want.component,
                a->want.version, (int)a->c.pid, a->missing[0] ? "; not in force: " : "",
                a->missing);
}

static void stop(app_t *a)
{
    if (a->running)
        rp_log_info("%s %s: stopping", a->want.component, a->want.version);
    compartment_down(a);
    a->state = RP_MON_APP_STOPPED;
}

/* One line per exit in S/apps/C/exits, started afresh past EXITS_MAX. */
static void record_exit(app_t *a, const char *what)
{
    char path[PATH_MAX], line[256];
    struct stat st;
    int fd, n;

    if (app_path(a->want.component, "exits", path, sizeof(path)) != RP_OK)
        return;
    n = snprintf(line, sizeof(line), "%lld %s %s\n", (long long)time(NULL), a->want.version, what);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    if (fstat(fd, &st) == 0 && st.st_size > EXITS_MAX && ftruncate(fd, 0) != 0)
        rp_log_warn("%s: cannot trim", path);
    if (write(fd, line, (size_t)n) != n)
        rp_log_warn("%s: cannot record the exit", path);
    close(fd);
}

static void describe_exit(int status, char *out, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(out, cap, "killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* A crash its init captured, kept in S/crashes/ with what the supervisor knows (crash.h); the
 * compartment goes down here (its last words reach the log first). */
static void keep_crash(app_t *a, const char *tree)
{
    static uint8_t tail[RP_CRASH_LOG_MAX];
    uint8_t *capture = a->c.crash;
    size_t capture_len = a->c.crash_len, tail_len = 0;
    int64_t uptime = rp_app_uptime_ms(&a->c.run);
    char path[PATH_MAX];
    uint64_t seq;
    struct stat st;
    int fd;

    a->c.crash = NULL;
    compartment_down(a);
    if (capture == NULL)
        return;
    if (app_path(a->want.component, "log", path, sizeof(path)) == RP_OK &&
        (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            off_t from = st.st_size > RP_CRASH_LOG_MAX ? st.st_size - RP_CRASH_LOG_MAX : 0;
            ssize_t n = pread(fd, tail, (size_t)(st.st_size - from), from);
            tail_len = n > 0 ? (size_t)n : 0;
        }
        close(fd);
    }
    rp_crash_meta_t m = {.at = time(NULL),
                         .uptime_ms = uptime > 0 ? (uint64_t)uptime : 0,
                         .component = a->want.component,
                         .version = a->want.version,
                         .tree = tree,
                         .digest = a->want.digest,
                         .log = tail,
                         .log_len = tail_len};
    rp_err_t err = rp_crash_store_put(s.state_dir, &m, capture, capture_len, &seq);
    if (err == RP_OK)
        rp_log_warn("%s %s: crashed; kept as crash %llu", a->want.component, a->want.version,
                    (unsigned long long)seq);
    else if (err == RP_ERR_DENIED)
        rp_log_warn("%s %s: crashed; not kept (crash capture is off for the device's group)",
                    a->want.component, a->want.version);
    else
        rp_log_warn("%s %s: crashed; the capture cannot be kept", a->want.component,
                    a->want.version);
    free(capture);
}

/* An event about a's version: "VERSION: what" (events.h; the agent reports it). */
static void app_event(const app_t *a, rp_event_kind_t kind, const char *what)
{
    char reason[RP_EVENT_REASON_MAX + 1];

    snprintf(reason, sizeof(reason), "%s" RP_EVENT_VERSION_SEP "%s", a->want.version, what);
    if (rp_event_record(s.state_dir, kind, a->want.component, reason) != RP_OK)
        rp_log_warn("%s: cannot record its %s event", a->want.component, rp_event_kind_name(kind));
}

/* A run ended (what: how; its compartment is down): counted, recorded, restarted at its backoff.
 * event: the end is an exit event (not one reported otherwise). */
static void ended(app_t *a, const char *what, bool event)
{
    time_t now = time(NULL);

    a->restarts++;
    record_exit(a, what);
    if (event)
        app_event(a, RP_EVENT_EXIT, what);
    if (rp_event_loop_note(&a->loop, (int64_t)now)) {
        char loop[64];
        snprintf(loop, sizeof(loop), "%d exits within %d s", RP_EVENT_LOOP_EXITS,
                 RP_EVENT_LOOP_SECONDS);
        app_event(a, RP_EVENT_RESTART_LOOP, loop);
    }
    if (now - a->started >= RP_APPS_STABLE_AFTER)
        a->backoff = 1;
    rp_log_warn("%s %s: %s; restarting in %d s", a->want.component, a->want.version, what,
                a->backoff);
    backoff(a, now);
}

static void exited(app_t *a)
{
    char what[64];
    int st = a->c.status;
    /* A captured crash is reported from its capture, a kill by the OOM killer from its oom event
     * (the counters were read at the exit): only the other abnormal ends are exit events. */
    bool other =
        a->c.crash == NULL &&
        (WIFEXITED(st) ? WEXITSTATUS(st) != 0
                       : !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && a->c.oom_seen > 0));

    describe_exit(st, what, sizeof(what));
    keep_crash(a, "tree");
    compartment_down(a);
    ended(a, what, other);
}

/* Silent past its watchdog (manifest WatchdogSeconds, counted from "ready" and each write after
 * it on its ready descriptor): its compartment's init killed it at once (a hung app heeds no
 * SIGTERM) and said so (launch.h); a health event, and restarted as after an exit. */
static void missed_watchdog(app_t *a)
{
    char what[64];

    snprintf(what, sizeof(what), RP_EVENT_WATCHDOG " (%u s)", a->m.watchdog_seconds);
    app_event(a, RP_EVENT_HEALTH, what);
    compartment_down(a);
    ended(a, what, false);
}

static app_t *find(const char *name)
{
    for (size_t i = 0; i < RP_COMPONENTS_MAX; i++)
        if (s.apps[i].used && strcmp(s.apps[i].want.component, name) == 0)
            return &s.apps[i];
    return NULL;
}

static void apply_set(const rp_apps_msg_t *msg)
{
    bool keep[RP_COMPONENTS_MAX] = {false};

    snprintf(s.device_id, sizeof(s.device_id), "%.*s", (int)sizeof(msg->device_id) - 1,
             msg->device_id);

    for (size_t i = 0; i < msg->n && i < RP_COMPONENTS_MAX; i++) {
        const rp_apps_want_t *w = &msg->want[i];
        app_t *a = find(w->component);
        if (!rp_component_name_valid(w->component, strnlen(w->component, sizeof(w->component))))
            continue;
        if (a != NULL && memcmp(a->want.digest, w->digest, RP_SHA256_LEN) == 0) {
            keep[a - s.apps] = true;
            continue; /* runs (or will run) that image already */
        }
        if (a == NULL) {
            for (size_t j = 0; j < RP_COMPONENTS_MAX && a == NULL; j++)
                if (!s.apps[j].used)
                    a = &s.apps[j];
            if (a == NULL)
                continue;
            memset(a, 0, sizeof(*a));
            a->used = true;
            a->net_slot = (uint32_t)(a - s.apps);
            a->chan = -1;
            a->off = is_stopped(w->component);
        } else {
            stop(a);      /* a new version: the old one stops first */
            drop_chan(a); /* the old version's: the monitor sends the new one's */
        }
        keep[a - s.apps] = true;
        a->want = *w;
        a->want.component[RP_COMPONENT_NAME_MAX] = '\0';
        a->want.version[RP_MON_VERSION_MAX] = '\0';
        a->backoff = 1;
        a->restarts = 0;
        memset(&a->loop, 0, sizeof(a->loop)); /* a loop is one version's */
        a->missing[0] = '\0';
        a->layers = 0;
        start(a);
    }
    for (size_t i = 0; i < RP_COMPONENTS_MAX; i++)
        if (s.apps[i].used && !keep[i]) {
            stop(&s.apps[i]); /* its component is gone, or no longer verifies */
            drop_chan(&s.apps[i]);
            rp_log_info("%s: no longer installed: stopped", s.apps[i].want.component);
            s.apps[i].used = false;
        }
}

/* The limit of layer bit in force (0 when it is not). */
static uint32_t in_force(const app_t *a, unsigned layer, uint32_t v)
{
    return (a->layers & layer) != 0 ? v : 0;
}

static void list(rp_apps_reply_t *r)
{
    r->n = 0;
    for (size_t i = 0; i < RP_COMPONENTS_MAX && r->n < RP_MON_APPS_MAX; i++) {
        const app_t *a = &s.apps[i];
        rp_mon_app_t *o = &r->app[r->n];
        if (!a->used)
            continue;
        memset(o, 0, sizeof(*o));
        snprintf(o->component, sizeof(o->component), "%s", a->want.component);
        snprintf(o->version, sizeof(o->version), "%s", a->want.version);
        o->state = (uint8_t)a->state;
        o->restarts = a->restarts;
        o->pid = a->running && a->c.pid > 0 ? (uint32_t)a->c.pid : 0;
        o->memory_kb = in_force(a, RP_LAYER_CG_MEMORY, a->m.memory_kb);
        o->pids = in_force(a, RP_LAYER_CG_PIDS, a->m.pids);
        o->cpu_percent = in_force(a, RP_LAYER_CG_CPU, a->m.cpu_percent);
        o->storage_kb = in_force(a, RP_LAYER_STORAGE, a->m.storage_kb);
        snprintf(o->missing, sizeof(o->missing), "%s", a->missing);
        r->n++;
    }
}

/* ---- trials ---- */

static void trial_reply(bool healthy, const char *detail)
{
    rp_apps_reply_t *r = &s.reply;
    app_t *owner = find(s.trial.want.component);
    char dir[PATH_MAX];

    memset(r, 0, sizeof(*r));
    r->seq = s.trial_seq;
    r->healthy = healthy;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
    if (s.trial_fd >= 0 && send(s.trial_fd, r, sizeof(*r), MSG_NOSIGNAL) != (ssize_t)sizeof(*r))
        rp_log_warn("the monitor did not take a trial's verdict");
    compartment_down(&s.trial);
    drop_chan(&s.trial);
    if (app_path(s.trial.want.component, "trial-tree", dir, sizeof(dir)) == RP_OK &&
        rp_apptree_remove(dir) != RP_OK)
        rp_log_warn("%s: cannot remove", dir);
    s.trial_on = false;
    if (owner != NULL && owner->held) {
        /* It runs again unless the monitor's next word (after the install) replaces it. */
        owner->held = false;
        owner->state = RP_MON_APP_RESTARTING;
        owner->next_start = time(NULL) + 1;
    }
}

/* chan: the trial app's channel end (the install child serves it), or -1. */
static void trial_begin(const rp_apps_msg_t *msg, int from, int chan)
{
    char dir[PATH_MAX], why[512], kind;
    app_t *t = &s.trial, *owner;

    if (s.trial_on || msg->n != 1) {
        if (chan >= 0)
            close(chan);
        memset(&s.reply, 0, sizeof(s.reply));
        s.reply.seq = msg->seq;
        snprintf(s.reply.detail, sizeof(s.reply.detail), "another trial is running");
        (void)send(from, &s.reply, sizeof(s.reply), MSG_NOSIGNAL);
        return;
    }
    s.trial_fd = from;
    memset(t, 0, sizeof(*t));
    t->chan = chan;
    t->want = msg->want[0];
    t->want.component[RP_COMPONENT_NAME_MAX] = '\0';
    t->want.version[RP_MON_VERSION_MAX] = '\0';
    t->net_slot = TRIAL_SLOT;
    s.trial_on = true;
    s.trial_seq = msg->seq;
    s.trial_seconds = (int)msg->health_seconds;
    if (!rp_component_name_valid(t->want.component, strlen(t->want.component))) {
        trial_reply(false, "not a component name");
        return;
    }
    /* One compartment per component: the running version pauses during its successor's trial
     * (their storage and devices are one app's). */
    owner = find(t->want.component);
    if (owner != NULL && owner->running) {
        stop(owner);
        owner->held = true;
    } else if (owner != NULL) {
        owner->held = true;
    }
    if (app_dirs(t->want.component) != RP_OK ||
        app_path(t->want.component, "trial-tree", dir, sizeof(dir)) != RP_OK ||
        rp_apptree_remove(dir) != RP_OK) {
        trial_reply(false, "cannot make its directories");
        return;
    }
    if (extract(&t->want, dir, &t->m, &kind, why, sizeof(why)) != RP_OK) {
        char detail[RP_SLOT_DETAIL_MAX + 1];
        snprintf(detail, sizeof(detail), "its image's tree is refused: %.200s", why);
        if (rp_event_record(s.state_dir, RP_EVENT_IMAGE, t->want.component, detail) != RP_OK)
            rp_log_warn("cannot record the refused tree as an event");
        trial_reply(false, detail);
        return;
    }
    if (compartment_up(t, "trial-tree", why, sizeof(why)) != RP_OK) {
        char detail[RP_SLOT_DETAIL_MAX + 1];
        snprintf(detail, sizeof(detail), "cannot start in its compartment: %.200s", why);
        app_event(t, RP_EVENT_HEALTH, detail);
        trial_reply(false, detail);
        return;
    }
    s.trial_deadline_ms = now_ms() + (int64_t)s.trial_seconds * 1000;
    rp_log_info("%s %s: on trial in its compartment (pid %d)", t->want.component, t->want.version,
                (int)t->c.pid);
}

static void trial_check(void)
{
    char detail[128];

    if (!s.trial_on)
        return;
    if (rp_compartment_poll(&s.trial.c, 0)) {
        describe_exit(s.trial.c.status, detail, sizeof(detail));
        keep_crash(&s.trial, "trial-tree");
        strncat(detail, " at start", sizeof(detail) - strlen(detail) - 1);
        app_event(&s.trial, RP_EVENT_HEALTH, detail);
        trial_reply(false, detail);
    } else if (s.trial.c.run.ready) {
        trial_reply(true, "started and said it is ready");
    } else if (now_ms() >= s.trial_deadline_ms) {
        snprintf(detail, sizeof(detail), "stayed up for %d s", s.trial_seconds);
        trial_reply(true, detail);
    }
}

/* ---- an operator's word ---- */

/* S/apps/C/stopped: the mark of an operator's stop, kept across the monitor's restarts. */
static bool is_stopped(const char *name)
{
    char path[PATH_MAX];
    struct stat st;

    return app_path(name, "stopped", path, sizeof(path)) == RP_OK && lstat(path, &st) == 0;
}

static rp_err_t mark_stopped(const char *name, bool on)
{
    char path[PATH_MAX];
    int fd;

    if (app_path(name, "stopped", path, sizeof(path)) != RP_OK)
        return RP_ERR_INVALID_ARG;
    if (!on)
        return unlink(path) == 0 || errno == ENOENT ? RP_OK : RP_ERR_IO;
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fsync(fd) != 0) {
        if (fd >= 0)
            close(fd);
        return RP_ERR_IO;
    }
    close(fd);
    return RP_OK;
}

/* CONTROL: an operator's stop, start or restart. */
static void control(const rp_apps_msg_t *msg)
{
    rp_apps_reply_t *r = &s.reply;
    const char *name = msg->want[0].component;
    app_t *a = msg->n == 1 ? find(name) : NULL;
    bool stop_it = msg->action == RP_MON_APP_STOP;

    memset(r, 0, sizeof(*r));
    r->seq = msg->seq;
    if (a == NULL) {
        r->status = RP_ERR_NOT_FOUND;
        snprintf(r->detail, sizeof(r->detail), "no app %.32s is installed on this device", name);
    } else if (msg->action != RP_MON_APP_STOP && msg->action != RP_MON_APP_START &&
               msg->action != RP_MON_APP_RESTART) {
        r->status = RP_ERR_INVALID_ARG;
        snprintf(r->detail, sizeof(r->detail), "not an action");
    } else if (app_dirs(name) != RP_OK || mark_stopped(name, stop_it) != RP_OK) {
        r->status = RP_ERR_IO;
        snprintf(r->detail, sizeof(r->detail), "cannot %s the mark S/apps/%.32s/stopped",
                 stop_it ? "make" : "remove", name);
    } else {
        rp_log_info("%s: %s by an operator", name,
                    stop_it                             ? "stopped"
                    : msg->action == RP_MON_APP_RESTART ? "restarted"
                                                        : "started");
        if (stop_it || msg->action == RP_MON_APP_RESTART)
            stop(a);
        a->off = stop_it;
        a->backoff = 1;
        a->next_start = time(NULL);
        if (!stop_it && !a->running)
            start(a);
    }
    if (send(s.fd, r, sizeof(*r), MSG_NOSIGNAL) != (ssize_t)sizeof(*r))
        rp_log_warn("the monitor did not take an app control's answer");
}

/* REMOVE: the monitor marked the component removed (it runs nothing from now on). Its devices,
 * network rules and cgroups go with its compartment; then its files. Asked again after a cut. */
static void remove_app(const rp_apps_msg_t *msg)
{
    rp_apps_reply_t *r = &s.reply;
    const char *name = msg->want[0].component;
    app_t *a = msg->n == 1 ? find(name) : NULL;
    char dir[PATH_MAX];

    memset(r, 0, sizeof(*r));
    r->seq = msg->seq;
    if (a != NULL) {
        stop(a);
        drop_chan(a);
        a->used = false;
    }
    if (msg->n != 1 ||
        !rp_component_name_valid(name, strnlen(name, sizeof(msg->want[0].component))))
        r->status = RP_ERR_INVALID_ARG;
    else if (app_path(name, "", dir, sizeof(dir)) != RP_OK || rp_apptree_remove(dir) != RP_OK)
        r->status = RP_ERR_IO;
    if (r->status != RP_OK)
        snprintf(r->detail, sizeof(r->detail), "cannot delete S/apps/%.32s", name);
    else
        rp_log_info("%s: removed (its tree, storage and log deleted)", name);
    if (send(s.fd, r, sizeof(*r), MSG_NOSIGNAL) != (ssize_t)sizeof(*r))
        rp_log_warn("the monitor did not take an app removal's answer");
}

/* ---- the process ---- */

/* The app's end of a channel for w's component at w's digest: kept for its next start (which is
 * now, when it waits for nothing else). Anything else is closed: the monitor sends another. */
static void app_channel(const rp_apps_want_t *w, int fd)
{
    app_t *a = find(w->component);

    if (a == NULL || memcmp(a->want.digest, w->digest, RP_SHA256_LEN) != 0) {
        close(fd); /* for a version that no longer runs */
        return;
    }
    drop_chan(a);
    a->chan = fd;
    if (!a->running && !a->held && a->state == RP_MON_APP_RESTARTING && time(NULL) >= a->next_start)
        start(a);
}

/* MANIFEST, from the monitor or an install child: answered on the socket it came on. */
static void manifest_reply(const rp_apps_msg_t *msg, int to)
{
    rp_apps_reply_t *r = &s.reply;
    rp_err_t err;

    memset(r, 0, sizeof(*r));
    r->seq = msg->seq;
    err = manifest_of(&msg->want[0], &r->manifest, r->detail, sizeof(r->detail));
    r->status = (uint32_t)err;
    if (err != RP_OK)
        memset(&r->manifest, 0, sizeof(r->manifest));
    if (send(to, r, sizeof(*r), MSG_NOSIGNAL) != (ssize_t)sizeof(*r))
        rp_log_warn("the monitor did not take a manifest");
}

/* METADATA, from the monitor only: its payload (fd, closed here) read by rampart-unpack; the
 * answer goes back as it came, for the monitor to decode. */
static void metadata_reply(const rp_apps_msg_t *msg, int fd)
{
    rp_apps_reply_t *r = &s.reply;
    size_t n = 0;
    rp_err_t err;

    memset(r, 0, sizeof(*r));
    r->seq = msg->seq;
    err = rp_unpack_metadata(fd, msg->md_len, (int)msg->md_kind, r->md, sizeof(r->md), &n,
                             r->detail, sizeof(r->detail));
    close(fd);
    r->status = (uint32_t)err;
    r->md_len = err == RP_OK ? (uint32_t)n : 0;
    if (send(s.fd, r, sizeof(*r), MSG_NOSIGNAL) != (ssize_t)sizeof(*r))
        rp_log_warn("the monitor did not take a metadata document");
}

rp_err_t rp_apps_store_hand(int sock, int store[2])
{
    int st[2], queued = 0;

    if (store[1] >= 0 && ioctl(store[1], FIONREAD, &queued) == 0 && queued > 0) {
        if (store[0] >= 0)
            close(store[0]);
        store[0] = store[1]; /* (its broker took the one before: it wrote into its own) */
    } else if (store[1] >= 0) {
        close(store[1]);
    }
    store[1] = -1;
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, st) != 0)
        return RP_ERR_IO;
    if ((store[0] >= 0 && rp_mon_send(sock, (const uint8_t *)"R", 1, store[0]) != RP_OK) ||
        rp_mon_send(sock, (const uint8_t *)"S", 1, st[0]) != RP_OK ||
        rp_mon_send(sock, (const uint8_t *)"S", 1, st[1]) != RP_OK) {
        close(st[0]);
        close(st[1]);
        return RP_ERR_IO;
    }
    close(st[1]);
    store[1] = st[0];
    return RP_OK;
}

/* BROKER: the app broker (re)started, as the unpack user (the last one killed and reaped first),
 * its store of kept ends handed to it first on its socket (rp_apps_store_hand); the monitor's end
 * of that socket goes with the reply. */
static void broker_start(const rp_apps_msg_t *msg)
{
    int sv[2] = {-1, -1};

    memset(&s.reply, 0, sizeof(s.reply));
    s.reply.seq = msg->seq;
    if (s.broker > 0) {
        kill(s.broker, SIGKILL);
        while (waitpid(s.broker, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    s.broker = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        rp_apps_store_hand(sv[0], s.store) != RP_OK || (s.broker = rp_unpack_broker(sv[1])) < 0) {
        s.reply.status = RP_ERR_IO;
        snprintf(s.reply.detail, sizeof(s.reply.detail), "cannot start it: %s", strerror(errno));
    } else {
        rp_log_info("the app broker started (pid %d)", (int)s.broker);
    }
    if (sv[1] >= 0)
        close(sv[1]);
    if (rp_mon_send(s.fd, (const uint8_t *)&s.reply, sizeof(s.reply),
                    s.reply.status == RP_OK ? sv[0] : -1) != RP_OK)
        rp_log_warn("the monitor did not take the app broker's socket");
    if (sv[0] >= 0)
        close(sv[0]);
}

/* A request from the monitor (from: s.fd) or an install child (from: its channel); fd: the
 * descriptor that came with it, or -1. */
static void handle(const rp_apps_msg_t *msg, int from, int fd)
{
    if (msg->kind == RP_APPS_CHANNEL && from == s.fd && fd >= 0) {
        for (size_t i = 0; i < RP_APPS_CHANNELS_MAX; i++)
            if (s.chan[i] < 0) {
                s.chan[i] = fd;
                return;
            }
        rp_log_warn("too many install channels: one refused");
        close(fd);
        return;
    }
    if (msg->kind == RP_APPS_APP_CHANNEL && from == s.fd && fd >= 0 && msg->n == 1) {
        app_channel(&msg->want[0], fd);
        return;
    }
    if (msg->kind == RP_APPS_TRIAL && from != s.fd) {
        trial_begin(msg, from, fd);
        return;
    }
    if (msg->kind == RP_APPS_MANIFEST && fd < 0 && msg->n == 1) {
        manifest_reply(msg, from);
        return;
    }
    if (msg->kind == RP_APPS_METADATA && from == s.fd && fd >= 0) {
        metadata_reply(msg, fd);
        return;
    }
    if (fd >= 0)
        close(fd);
    if (from != s.fd) {
        rp_log_warn("an install channel may only ask for a trial");
        return;
    }
    switch (msg->kind) {
    case RP_APPS_SET: apply_set(msg); break;
    case RP_APPS_LIST:
        memset(&s.reply, 0, sizeof(s.reply));
        s.reply.seq = msg->seq;
        list(&s.reply);
        if (send(s.fd, &s.reply, sizeof(s.reply), MSG_NOSIGNAL) != (ssize_t)sizeof(s.reply))
            rp_log_warn("the monitor did not take the app list");
        break;
    case RP_APPS_CONTROL: control(msg); break;
    case RP_APPS_REMOVE: remove_app(msg); break;
    case RP_APPS_BROKER: broker_start(msg); break;
    default: rp_log_warn("an unknown request from the monitor (%u)", msg->kind); break;
    }
}

static void tick(void)
{
    time_t now = time(NULL);

    if (s.broker > 0 && waitpid(s.broker, NULL, WNOHANG) == s.broker)
        s.broker = -1; /* (the monitor sees it go, and asks for another) */
    for (size_t i = 0; i < RP_COMPONENTS_MAX; i++) {
        app_t *a = &s.apps[i];
        if (!a->used)
            continue;
        if (a->running) {
            if (a->net_on && now >= a->next_refresh) {
                bool changed = false;
                if (rp_netpolicy_refresh(&s.np, &a->net, &changed) != RP_OK)
                    rp_log_warn("%s: its allowed names could not all be resolved again",
                                a->want.component);
                if (changed && rp_compartment_hosts(&a->c, &a->net.hosts) != RP_OK) {
                    rp_log_warn("%s: its launcher did not take its names' new addresses: its "
                                "/etc/hosts keeps the old ones",
                                a->want.component);
                    /* its status shows it (compartment.h) */
                    snprintf(a->missing, sizeof(a->missing), "%.*s", RP_MON_MISSING_MAX,
                             a->c.missing);
                }
                a->next_refresh = now + RP_NETPOLICY_REFRESH_SECONDS;
            }
        } else if (a->state == RP_MON_APP_RESTARTING && now >= a->next_start) {
            start(a);
        }
    }
}

static void watch(app_t *a)
{
    if (!a->running)
        return;
    if (rp_compartment_poll(&a->c, 0)) {
        if (a->c.watchdog_missed && a->m.watchdog_seconds > 0)
            missed_watchdog(a);
        else
            exited(a);
    } else if (a->state == RP_MON_APP_STARTING && a->c.run.ready) {
        a->state = RP_MON_APP_READY;
        rp_log_info("%s %s: ready (pid %d)", a->want.component, a->want.version, (int)a->c.pid);
    } else if (a->state == RP_MON_APP_STARTING &&
               rp_app_uptime_ms(&a->c.run) >= RP_APP_HEALTH_SECONDS * 1000L) {
        a->state = RP_MON_APP_RUNNING;
    }
}

/* ---- Landlock's refusals (audit.h): a domain is an app's when its creator is the init of a
 * compartment running here, as the app's uid (a pid alone may be reused: evreader.h) */

static app_t *app_of_init(pid_t init)
{
    for (size_t i = 0; i <= RP_COMPONENTS_MAX; i++) {
        app_t *a = i < RP_COMPONENTS_MAX ? &s.apps[i] : &s.trial;
        if (a->running && a->c.pid == init)
            return a;
    }
    return NULL;
}

static rp_evreader_owner_t audit_ours(pid_t init, uint32_t uid, const char **component, void *ctx)
{
    const app_t *a = app_of_init(init);
    (void)ctx;
    if (a == NULL)
        return RP_EVREADER_NOT_OURS;
    *component = a->want.component; /* (another uid: evreader.c says it, rate-bounded) */
    return a->uid == uid ? RP_EVREADER_OURS : RP_EVREADER_OTHER_UID;
}

static void audit_refused(pid_t init, const char *reason, void *ctx)
{
    app_t *a = app_of_init(init);
    (void)ctx;
    if (a != NULL)
        rp_compartment_event(&a->c, RP_EVENT_LANDLOCK, reason);
}

/* One request from fd, handled. false: the other end is gone. */
static bool receive(int fd, rp_apps_msg_t *msg)
{
    size_t len;
    int got_fd = -1;
    rp_err_t err = rp_mon_recv(fd, (uint8_t *)msg, sizeof(*msg), &len, &got_fd);

    if (err == RP_ERR_NOT_FOUND || err == RP_ERR_IO)
        return false;
    if (err == RP_OK && len == sizeof(*msg))
        handle(msg, fd, got_fd);
    else {
        rp_log_warn("a bad request to the app supervisor (%zu bytes) ignored", len);
        if (got_fd >= 0)
            close(got_fd);
    }
    return true;
}

static int supervise(int sfd)
{
    static rp_apps_msg_t msg;
    const rp_evreader_hooks_t reader_hooks = {audit_ours, audit_refused, rp_evreader_record_net,
                                              s.state_dir};
    struct pollfd p[3 + RP_APPS_CHANNELS_MAX + RP_COMPARTMENT_FDS * (RP_COMPONENTS_MAX + 1)];
    int64_t next_tick = now_ms();
    char run[PATH_MAX];
    rp_netpolicy_config_t cfg = {.state_dir = s.state_dir, .resolve = rp_unpack_resolve};
    int found;

    for (size_t i = 0; i < RP_APPS_CHANNELS_MAX; i++)
        s.chan[i] = -1;
    for (size_t i = 0; i < RP_COMPONENTS_MAX; i++)
        s.apps[i].chan = -1;
    s.broker = s.store[0] = s.store[1] = -1;
    s.trial.chan = -1;
    s.trial_fd = -1;
    found = pathf(run, sizeof(run), "%s/run/apps", s.state_dir) == RP_OK
                ? rp_compartment_cleanup(s.state_dir, run)
                : 0;
    if (found > 0)
        rp_log_info("removed %d leftover(s) of apps a stopped monitor ran", found);
    /* Opened once, here: every compartment is built by this file (compartment.h). */
    if (rp_compartment_launcher_open(NULL, run, sizeof(run)) != RP_OK)
        rp_log_error("no app can start: rampart-launcher: %s", run);
    s.np_on = rp_netpolicy_init(&s.np, &cfg) == RP_OK;
    if (!s.np_on)
        rp_log_error("the network policy cannot start: apps run with no network, and an app "
                     "whose manifest allows any is not started");
    rp_evreader_open(&s.reader, true, s.np_on ? rp_netpolicy_log_fd(&s.np) : -1, NULL);
    if (s.reader.audit_fd < 0)
        rp_log_warn("Landlock refusals are not seen: %s", s.reader.why);
    /* Audit is turned off again at a clean stop when this supervisor (or one that stopped
     * without cleaning: its mark is left) turned it on. */
    if (pathf(run, sizeof(run), "%s/run", s.state_dir) != RP_OK || mkdir_p(run, 0700) != RP_OK ||
        pathf(s.audit_mark, sizeof(s.audit_mark), "%s/run/audit-turned-on", s.state_dir) != RP_OK)
        s.audit_mark[0] = '\0';
    else if (s.reader.audit_on_by_us &&
             rp_write_file_atomic(s.audit_mark, "1\n", 2, 0600, 0) != RP_OK)
        rp_log_warn("audit was turned on and its mark cannot be written: it stays on if this "
                    "monitor is killed");
    s.audit_ours = s.reader.audit_on_by_us || (s.audit_mark[0] && access(s.audit_mark, F_OK) == 0);
    for (;;) {
        size_t n = 3;
        long wait;
        p[0] = (struct pollfd){s.fd, POLLIN, 0};
        p[1] = (struct pollfd){sfd, POLLIN, 0};
        p[2] = (struct pollfd){rp_evreader_fd(&s.reader), POLLIN, 0};
        for (size_t i = 0; i < RP_APPS_CHANNELS_MAX; i++)
            p[n++] = (struct pollfd){s.chan[i], POLLIN, 0};
        for (size_t i = 0; i <= RP_COMPONENTS_MAX; i++) {
            app_t *a = i < RP_COMPONENTS_MAX ? &s.apps[i] : &s.trial;
            int fds[RP_COMPARTMENT_FDS];
            if (!a->running)
                continue;
            rp_compartment_fds(&a->c, fds);
            for (int k = 0; k < RP_COMPARTMENT_FDS; k++)
                p[n++] = (struct pollfd){fds[k], POLLIN, 0};
        }
        wait = (long)(next_tick - now_ms());
        if (s.trial_on && s.trial_deadline_ms - now_ms() < wait)
            wait = (long)(s.trial_deadline_ms - now_ms());
        if (poll(p, n, wait > 0 ? (int)wait : 0) < 0 && errno != EINTR) {
            rp_log_error("poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents != 0)
            break; /* SIGTERM */
        if (p[0].revents != 0 && !receive(s.fd, &msg))
            break; /* the monitor is gone */
        for (size_t i = 0; i < RP_APPS_CHANNELS_MAX; i++)
            if (s.chan[i] >= 0 && p[3 + i].revents != 0 && !receive(s.chan[i], &msg)) {
                if (s.trial_on && s.trial_fd == s.chan[i]) {
                    /* Its install child is gone (the monitor puts the slots right): the trial
                     * ends now, and the app it paused runs again. */
                    s.trial_fd = -1;
                    rp_log_warn("%s %s: its install stopped: the trial ends",
                                s.trial.want.component, s.trial.want.version);
                    trial_reply(false, "its install stopped");
                }
                close(s.chan[i]);
                s.chan[i] = -1;
            }
        /* (before watch(): a refusal is read while its app's init is not yet reaped) */
        if (p[2].revents != 0)
            rp_evreader_handle(&s.reader, &reader_hooks);
        for (size_t i = 0; i < RP_COMPONENTS_MAX; i++)
            if (s.apps[i].used)
                watch(&s.apps[i]);
        trial_check();
        if (now_ms() >= next_tick) {
            tick();
            rp_evreader_tick(&s.reader, &reader_hooks);
            next_tick = now_ms() + 1000;
        }
    }
    rp_log_info("app supervisor: stopping every app");
    if (s.trial_on)
        trial_reply(false, "the monitor is stopping");
    for (size_t i = 0; i < RP_COMPONENTS_MAX; i++)
        if (s.apps[i].used)
            stop(&s.apps[i]);
    if (s.broker > 0) {
        kill(s.broker, SIGKILL);
        while (waitpid(s.broker, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    rp_evreader_close(&s.reader); /* (first: the NFLOG socket's unbinding reads it) */
    if (s.audit_ours) {
        char why[200];
        if (rp_evreader_audit_switch(false, why, sizeof(why)) != RP_OK)
            rp_log_warn("audit, turned on for the apps, stays on: %s", why);
        else
            rp_log_info("audit turned off again (it was off before the apps' supervisor)");
        (void)unlink(s.audit_mark);
    }
    if (s.np_on)
        rp_netpolicy_shutdown(&s.np);
    return 0;
}

pid_t rp_apps_spawn(const char *state_dir, int *fd)
{
    int sv[2];
    pid_t parent = getpid(), pid;
    sigset_t sigs;
    int sfd;

    if (realpath(state_dir, s.state_dir) == NULL)
        return -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid > 0) {
        close(sv[1]);
        *fd = sv[0];
        return pid;
    }
    /* The supervisor: dies with the monitor (its compartments' inits die with it in turn). */
    close(sv[0]);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(1);
    /* Nothing of the monitor's but stdio and its end: the state lock stays the monitor's. */
    if (sv[1] != 3 && (dup2(sv[1], 3) != 3 || close(sv[1]) != 0))
        _exit(1);
    if (close_range(4, ~0U, 0) != 0)
        _exit(1);
    s.fd = 3;
    rp_log_init("rampart-monitor[apps]", RP_LOG_INFO);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0 || (sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) < 0)
        _exit(1);
    _exit(supervise(sfd));
}

/* ---- the monitor's side ---- */

static bool newer(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

struct timespec rp_apps_state_stamp(const char *state_dir)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1], path[PATH_MAX + 64];
    struct timespec newest = {0, 0};
    struct stat st;
    size_t n = 0;

    if (rp_component_names(state_dir, names, RP_COMPONENTS_MAX, &n) != RP_OK)
        return newest;
    for (size_t i = 0; i < n; i++)
        if (snprintf(path, sizeof(path), "%s/components/%s/state", state_dir, names[i]) <
                (int)sizeof(path) &&
            stat(path, &st) == 0 && newer(&st.st_mtim, &newest))
            newest = st.st_mtim;
    /* A component removed changes only the directory. */
    snprintf(path, sizeof(path), "%s/components", state_dir);
    if (stat(path, &st) == 0 && newer(&st.st_mtim, &newest))
        newest = st.st_mtim;
    return newest;
}

void rp_apps_wanted(rp_agent_t *a, rp_apps_msg_t *msg)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1], path[PATH_MAX];
    size_t n = 0;

    memset(msg, 0, sizeof(*msg));
    msg->kind = RP_APPS_SET;
    snprintf(msg->device_id, sizeof(msg->device_id), "%s", a->device_id);
    if (rp_component_names(a->state_dir, names, RP_COMPONENTS_MAX, &n) != RP_OK)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        rp_component_t c;
        rp_slot_image_t img;
        rp_apps_want_t *w = &msg->want[msg->n];
        if (rp_component_load(a->state_dir, names[i], &c) != RP_OK || c.active < 0 ||
            c.trial >= 0 ||
            rp_slot_path(a->state_dir, c.name, c.active, path, sizeof(path)) != RP_OK ||
            rp_slot_check(a, &c, path, &img) != RP_OK || !img.valid ||
            img.type != RP_IMAGE_TYPE_APP)
            continue; /* not an app, or nothing verified to run */
        snprintf(w->component, sizeof(w->component), "%s", c.name);
        snprintf(w->version, sizeof(w->version), "%s", img.version);
        w->slot = c.active;
        memcpy(w->digest, img.digest, RP_SHA256_LEN);
        w->payload_off = img.payload_off;
        w->payload_len = img.payload_len;
        msg->n++;
    }
}

/*
 * One message from the broker's gate on *broker, in an install child (slots: the apps by slot): as
 * the monitor's loop serves it, and CLOSED as it does too, by the socket: the channel is shut both
 * ways, so that its app sees it close and the monitor (which shares the socket) its hang-up, and
 * it makes the app's channel again as for an app that exited. A broker gone or lost
 * (rp_appgate_serve): *broker is -1, and the monitor, which reads the shut gate once the install
 * is done, starts another.
 */
static void serve_gate(int *broker, rp_appgate_app_t *const *slots, rp_agent_t *agent)
{
    int closed = -1;

    if (rp_appgate_serve(*broker, agent, slots, &closed) != RP_OK)
        *broker = -1;
    else if (closed >= 0 && slots[closed] != NULL && slots[closed]->fd >= 0 &&
             shutdown(slots[closed]->fd, SHUT_RDWR) != 0)
        rp_log_warn("%s: its channel cannot be shut: %s", slots[closed]->component,
                    strerror(errno));
}

/*
 * Send msg (with give, a descriptor, unless -1: closed here once sent); for LIST and TRIAL wait
 * for its reply (and the descriptor it carries into *got, unless got is NULL). While waiting,
 * serve the broker's gate on *broker (slots: the apps by slot) unless broker is NULL or -1.
 */
static rp_err_t call(int fd, rp_apps_msg_t *msg, int give, rp_apps_reply_t *reply, int timeout_ms,
                     int *got, int *broker, rp_appgate_app_t *const *slots, rp_agent_t *agent)
{
    static uint32_t seq;
    int64_t deadline = now_ms() + timeout_ms;
    rp_err_t err;

    msg->seq = ++seq;
    err = rp_mon_send(fd, (const uint8_t *)msg, sizeof(*msg), give);
    if (give >= 0)
        close(give); /* the receiver's now: the sender holds no copy that would keep it open */
    if (err != RP_OK)
        return RP_ERR_IO;
    if (msg->kind == RP_APPS_SET || msg->kind == RP_APPS_APP_CHANNEL)
        return RP_OK;
    for (;;) {
        struct pollfd p[2] = {
            {fd,                            POLLIN,              0},
            {broker != NULL ? *broker : -1, rp_appgate_events(), 0}
        };
        long left = (long)(deadline - now_ms());
        size_t len = 0;
        int rfd = -1;
        if (left <= 0)
            return RP_ERR_EXPIRED;
        if (poll(p, 2, (int)(left > 1000 && p[1].events == POLLOUT ? 1000 : left)) < 0 &&
            errno != EINTR)
            return RP_ERR_IO;
        if (p[1].fd >= 0 && (p[1].revents != 0 || p[1].events == POLLOUT))
            serve_gate(broker, slots, agent);
        if (p[0].revents == 0)
            continue;
        err = rp_mon_recv(fd, (uint8_t *)reply, sizeof(*reply), &len, &rfd);
        if (err == RP_ERR_NOT_FOUND || err == RP_ERR_IO)
            return RP_ERR_IO;
        if (err == RP_OK && len == sizeof(*reply) && reply->seq == msg->seq) {
            if (got != NULL)
                *got = rfd;
            else if (rfd >= 0)
                close(rfd);
            return RP_OK;
        }
        if (rfd >= 0)
            close(rfd);
        /* else: the answer to a request given up on before, or not one: skipped */
    }
}

rp_err_t rp_apps_call(int fd, rp_apps_msg_t *msg, rp_apps_reply_t *reply, int timeout_ms)
{
    return call(fd, msg, -1, reply, timeout_ms, NULL, NULL, NULL, NULL);
}

/* Ask the supervisor on fd for what rampart-unpack reads (MANIFEST, METADATA; give: a descriptor
 * handed over, or -1), within the child's deadline. The supervisor's refusal is said in why. */
static rp_err_t ask_unpack(int fd, rp_apps_msg_t *msg, int give, rp_apps_reply_t *reply, char *why,
                           size_t cap)
{
    rp_err_t err =
        call(fd, msg, give, reply, (RP_UNPACK_SECONDS + 30) * 1000, NULL, NULL, NULL, NULL);

    if (err != RP_OK) {
        snprintf(why, cap, "the app supervisor did not answer: %s", rp_strerror(err));
        return err;
    }
    if (reply->status != RP_OK) {
        snprintf(why, cap, "%s", reply->detail);
        return (rp_err_t)reply->status;
    }
    return RP_OK;
}

/* The supervisor's side of MANIFEST: the manifest of w's verified image, read by rampart-unpack. */
static rp_err_t manifest_of(const rp_apps_want_t *w, rp_manifest_t *m, char *why, size_t cap)
{
    char slot[PATH_MAX];
    bool is_tree = false;
    rp_err_t err;
    int fd;

    why[0] = '\0';
    if (rp_slot_path(s.state_dir, w->component, w->slot, slot, sizeof(slot)) != RP_OK ||
        (fd = open(slot, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        snprintf(why, cap, "cannot open its slot");
        return RP_ERR_IO;
    }
    err =
        rp_unpack_manifest(fd, w->payload_off, w->payload_len, w->component, m, &is_tree, why, cap);
    close(fd);
    if (err == RP_OK && is_tree)
        err = manifest_for(m, w, why, cap);
    if (err != RP_OK && why[0] == '\0')
        snprintf(why, cap, "cannot read its payload");
    return err;
}

rp_err_t rp_apps_manifest(int fd, const rp_apps_want_t *w, rp_manifest_t *m, char *why, size_t cap)
{
    static rp_apps_msg_t msg;
    static rp_apps_reply_t reply;
    rp_err_t err;

    memset(&msg, 0, sizeof(msg));
    msg.kind = RP_APPS_MANIFEST;
    msg.n = 1;
    msg.want[0] = *w;
    err = ask_unpack(fd, &msg, -1, &reply, why, cap);
    if (err == RP_OK)
        *m = reply.manifest;
    return err;
}

/* METADATA: payload (len bytes) handed over in a memory file this process wrote, read by
 * rampart-unpack as kind (rp_md_kind_t, or RP_UNPACK_ENVELOPE); reply: its unchecked answer. */
static rp_err_t ask_metadata(int fd, int kind, const uint8_t *payload, size_t len,
                             rp_apps_reply_t *reply, char *detail, size_t cap)
{
    static rp_apps_msg_t msg;
    int mfd = -1;
    rp_err_t err;

    if (payload == NULL || len == 0 || len > RP_MD_MAX)
        return RP_ERR_INVALID_ARG;
    /* The exact bytes the signatures were checked over, in a file only this process wrote. */
    if ((mfd = memfd_create("rampart-metadata", MFD_CLOEXEC)) < 0 ||
        rp_write_all(mfd, payload, len) != RP_OK) {
        snprintf(detail, cap, "cannot hand the payload over: %s", strerror(errno));
        if (mfd >= 0)
            close(mfd);
        return RP_ERR_IO;
    }
    memset(&msg, 0, sizeof(msg));
    msg.kind = RP_APPS_METADATA;
    msg.md_kind = (uint32_t)kind;
    msg.md_len = (uint32_t)len;
    err = ask_unpack(fd, &msg, mfd, reply, detail, cap);
    if (err == RP_OK && reply->md_len > sizeof(reply->md)) {
        snprintf(detail, cap, "rampart-unpack answered outside its protocol");
        return RP_ERR_MALFORMED;
    }
    return err;
}

rp_err_t rp_apps_md_parse(void *ctx, rp_md_kind_t kind, const uint8_t *payload, size_t len,
                          void *out, uint8_t *bin, size_t *bin_len, char *detail, size_t cap)
{
    static rp_apps_reply_t reply;
    rp_err_t err = ctx != NULL
                       ? ask_metadata(*(int *)ctx, (int)kind, payload, len, &reply, detail, cap)
                       : RP_ERR_INVALID_ARG;

    if (err != RP_OK)
        return err;
    if (reply.md_len > RP_MD_DOC_BIN_MAX) {
        snprintf(detail, cap, "rampart-unpack answered outside its protocol");
        return RP_ERR_MALFORMED;
    }
    err = rp_md_doc_decode(kind, reply.md, reply.md_len, out, detail, cap);
    if (err == RP_OK && bin != NULL) { /* what it decoded is what is kept */
        memcpy(bin, reply.md, reply.md_len);
        *bin_len = reply.md_len;
    }
    return err;
}

rp_err_t rp_apps_md_unpack(void *ctx, const char *env, size_t len, rp_md_signed_t *doc,
                           char *detail, size_t cap)
{
    static rp_apps_reply_t reply;
    rp_err_t err = ctx != NULL ? ask_metadata(*(int *)ctx, RP_UNPACK_ENVELOPE, (const uint8_t *)env,
                                              len, &reply, detail, cap)
                               : RP_ERR_INVALID_ARG;

    return err == RP_OK ? rp_md_signed_decode(reply.md, reply.md_len, doc, detail, cap) : err;
}

void rp_apps_chans_slots(rp_apps_chans_t *t, rp_appgate_app_t *out[RP_GATE_SLOTS])
{
    for (size_t i = 0; i < RP_GATE_SLOTS; i++)
        out[i] = i < RP_COMPONENTS_MAX && t->e[i].used ? &t->e[i].g : NULL;
}

void rp_apps_chans_hand(rp_apps_chans_t *t, int broker)
{
    for (size_t i = 0; i < RP_COMPONENTS_MAX; i++)
        if (t->e[i].used) {
            rp_appgate_rate_reset(&t->e[i].g); /* the new broker's bucket is full too */
            if (!rp_appgate_tell(broker, (uint8_t)i, &t->e[i].g, true))
                return; /* lost: the monitor reads the shut gate next, and starts another */
        }
}

struct spent {
    bool put; /* by the child, once all of e is written */
    struct {
        uint64_t gen; /* the channel it counted for (0: none) */
        rp_gate_bucket_t sign, identity;
        unsigned events, events_suppressed;
    } e[RP_COMPONENTS_MAX];
};
static struct spent *spent;

void rp_apps_chans_spent_put(const rp_apps_chans_t *t)
{
    if (spent == NULL)
        return;
    for (size_t i = 0; i < RP_COMPONENTS_MAX; i++) {
        const rp_appgate_app_t *g = &t->e[i].g;
        spent->e[i].gen = t->e[i].used ? g->gen : 0;
        spent->e[i].sign = g->sign;
        spent->e[i].identity = g->identity;
        spent->e[i].events = g->events;
        spent->e[i].events_suppressed = g->events_suppressed;
    }
    __atomic_store_n(&spent->put, true, __ATOMIC_RELEASE);
}

rp_err_t rp_apps_chans_spent_take(rp_apps_chans_t *t)
{
    if (spent == NULL) {
        void *p =
            mmap(NULL, sizeof(*spent), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return RP_ERR_NO_MEMORY;
        spent = p;
    }
    for (size_t i = 0; __atomic_load_n(&spent->put, __ATOMIC_ACQUIRE) && i < RP_COMPONENTS_MAX;
         i++) {
        rp_appgate_app_t *g = &t->e[i].g;
        if (!t->e[i].used || spent->e[i].gen == 0 || spent->e[i].gen != g->gen)
            continue;
        g->sign = spent->e[i].sign;
        g->identity = spent->e[i].identity;
        g->events = spent->e[i].events;
        g->events_suppressed = spent->e[i].events_suppressed;
    }
    spent->put = false;
    return RP_OK;
}

rp_err_t rp_apps_broker(int fd, int *broker)
{
    static rp_apps_msg_t msg;
    static rp_apps_reply_t reply;
    rp_err_t err;

    *broker = -1;
    memset(&msg, 0, sizeof(msg));
    msg.kind = RP_APPS_BROKER;
    err = call(fd, &msg, -1, &reply, 10 * 1000, broker, NULL, NULL, NULL);
    if (err == RP_OK && reply.status != RP_OK)
        err = (rp_err_t)reply.status;
    if (err == RP_OK && *broker < 0)
        err = RP_ERR_IO;
    if (err == RP_OK) {
        /* Never blocked on: a request is read only while there is room for its answer
         * (appgate.h). Room for two of the largest answers per slot, as far as the kernel allows
         * without force (net.core.wmem_max): less is said once (review r7: L5). */
        int room = RP_GATE_SLOTS * RP_GATE_ANSWER_MAX * 2, got = 0, fl = fcntl(*broker, F_GETFL);
        socklen_t n = sizeof(got);
        if (fl < 0 || fcntl(*broker, F_SETFL, fl | O_NONBLOCK) != 0) {
            close(*broker);
            *broker = -1;
            err = RP_ERR_IO;
        } else if (setsockopt(*broker, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room)) != 0 ||
                   getsockopt(*broker, SOL_SOCKET, SO_SNDBUF, &got, &n) != 0) {
            rp_log_warn("the app broker's gate keeps the default room: %s", strerror(errno));
        } else if (got < room * 2) { /* (the kernel doubles what it is asked) */
            rp_log_warn("the app broker's gate has %d bytes of room, not %d (net.core.wmem_max): "
                        "a broker slow to read its answers waits for it sooner",
                        got, room * 2);
        }
    }
    if (err != RP_OK)
        rp_log_error("the app broker cannot start: %s%s%s", rp_strerror(err),
                     reply.detail[0] ? ": " : "", reply.detail);
    return err;
}

/* Close e's channel (the monitor's copy; the broker closes its own as its app hangs up). */
static void chan_close(rp_apps_chan_t *e)
{
    if (e->g.fd >= 0)
        close(e->g.fd);
    e->g.fd = -1;
    rp_appgate_reset(&e->g);
}

/* Open e's channel: the app's end to the supervisor; the other, kept, goes to the broker. */
static void chan_open(rp_apps_chan_t *e, int fd)
{
    static rp_apps_msg_t msg;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        rp_log_error("%s: cannot open its channel: it waits to start", e->want.component);
        return;
    }
    e->g.fd = sv[0];
    rp_appgate_reset(&e->g);
    rp_log_info("%s: a new channel (generation %llu)", e->want.component,
                (unsigned long long)e->g.gen);
    memset(&msg, 0, sizeof(msg));
    msg.kind = RP_APPS_APP_CHANNEL;
    msg.n = 1;
    msg.want[0] = e->want;
    if (call(fd, &msg, sv[1], NULL, 0, NULL, NULL, NULL, NULL) != RP_OK) {
        rp_log_error("%s: the app supervisor did not take its channel", e->want.component);
        chan_close(e);
    }
}

void rp_apps_chans_sync(rp_apps_chans_t *t, const rp_apps_msg_t *set, int fd, int broker)
{
    bool keep[RP_COMPONENTS_MAX] = {false};
    char why[256];

    for (size_t i = 0; set != NULL && i < set->n && i < RP_COMPONENTS_MAX; i++) {
        const rp_apps_want_t *w = &set->want[i];
        rp_apps_chan_t *e = NULL, *free_e = NULL;
        for (size_t j = 0; j < RP_COMPONENTS_MAX; j++) {
            if (t->e[j].used && strcmp(t->e[j].want.component, w->component) == 0)
                e = &t->e[j];
            else if (!t->e[j].used && free_e == NULL && !keep[j])
                free_e = &t->e[j];
        }
        if (e != NULL && memcmp(e->want.digest, w->digest, RP_SHA256_LEN) == 0) {
            keep[e - t->e] = true;
            continue;
        }
        if (e != NULL) {
            chan_close(e); /* a new version: a new channel (its manifest may differ) */
            rp_appgate_tell(broker, (uint8_t)(e - t->e), &e->g, false);
            e->used = false;
        } else {
            e = free_e;
        }
        if (e == NULL)
            continue;
        memset(e, 0, sizeof(*e));
        e->g.fd = -1;
        e->want = *w;
        if (rp_apps_manifest(fd, w, &e->m, why, sizeof(why)) != RP_OK) {
            rp_log_error("%s %s: its manifest cannot be read for its channel: %s; it does not "
                         "start",
                         w->component, w->version, why);
            continue;
        }
        e->used = e->g.used = true;
        e->g.m = &e->m;
        snprintf(e->g.component, sizeof(e->g.component), "%s", w->component);
        keep[e - t->e] = true;
        rp_appgate_tell(broker, (uint8_t)(e - t->e), &e->g, true); /* known, not running yet */
    }
    for (size_t i = 0; i < RP_COMPONENTS_MAX; i++) {
        rp_apps_chan_t *e = &t->e[i];
        if (e->used && set != NULL && !keep[i]) {
            chan_close(e); /* no longer installed */
            rp_appgate_tell(broker, (uint8_t)i, &e->g, false);
            e->used = e->g.used = false;
        } else if (e->used && is_stopped(e->want.component)) {
            if (e->g.fd >= 0) {
                chan_close(e); /* stopped by an operator: it does not run, no one calls it */
                rp_appgate_tell(broker, (uint8_t)i, &e->g, true);
            }
        } else if (e->used && e->g.fd < 0) {
            chan_open(e, fd);
            if (e->g.fd >= 0)
                rp_appgate_tell(broker, (uint8_t)i, &e->g, true);
        }
    }
}

rp_err_t rp_apps_trial(void *ctx, const char *component, int slot, const rp_slot_image_t *img,
                       int seconds, bool *healthy, char *detail, size_t cap)
{
    static rp_apps_msg_t msg;
    static rp_apps_reply_t reply;
    static rp_manifest_t manifest;
    rp_apps_trial_ctx_t *x = ctx;
    rp_appgate_app_t trial = {.used = true, .m = &manifest, .fd = -1}, *slots[RP_GATE_SLOTS];
    char why[256];
    int sv[2], broker = *x->broker; /* the child's: one lost is seen by the monitor (a shut gate) */
    rp_err_t err;

    memset(&msg, 0, sizeof(msg));
    msg.kind = RP_APPS_TRIAL;
    msg.n = 1;
    msg.health_seconds = (uint32_t)seconds;
    snprintf(msg.want[0].component, sizeof(msg.want[0].component), "%s", component);
    snprintf(msg.want[0].version, sizeof(msg.want[0].version), "%s", img->version);
    msg.want[0].slot = slot;
    memcpy(msg.want[0].digest, img->digest, RP_SHA256_LEN);
    msg.want[0].payload_off = img->payload_off;
    msg.want[0].payload_len = img->payload_len;
    /* The trial app has its channel as it will when it runs; the broker reads it, and this child
     * answers the broker's gate (with the root of trust the monitor lent it) until the verdict. */
    if (rp_apps_manifest(x->fd, &msg.want[0], &manifest, why, sizeof(why)) != RP_OK) {
        *healthy = false;
        snprintf(detail, cap, "its manifest cannot be read: %s", why);
        return RP_OK;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        *healthy = false;
        snprintf(detail, cap, "cannot open its channel");
        return RP_OK;
    }
    trial.fd = sv[0];
    rp_appgate_reset(&trial);
    snprintf(trial.component, sizeof(trial.component), "%s", component);
    rp_apps_chans_slots(x->chans, slots);
    slots[RP_GATE_TRIAL] = &trial;
    if (!rp_appgate_tell(broker, RP_GATE_TRIAL, &trial, true))
        broker = -1; /* lost: the monitor sees the shut gate once this install is done */
    /* Its running version stops first (up to its grace), the tree is extracted, then it runs. */
    err = call(x->fd, &msg, sv[1], &reply, seconds * 1000 + RP_APP_STOP_GRACE_MS * 2 + 60 * 1000,
               NULL, &broker, slots, x->agent);
    /* What the broker sent before the verdict (the trial's refusals) is read before its DROP:
     * the monitor has no trial slot, and says what it reads for one after (appgate.c). Bounded:
     * the trial's events, and a request per app. */
    for (int i = 0; i < RP_APPCHAN_EVENTS_MAX + RP_GATE_SLOTS && broker >= 0; i++) {
        struct pollfd q = {broker, POLLIN, 0};
        if (poll(&q, 1, 0) <= 0)
            break;
        serve_gate(&broker, slots, x->agent);
    }
    rp_appgate_tell(broker, RP_GATE_TRIAL, &trial, false);
    close(sv[0]);
    rp_appgate_reset(&trial);
    *healthy = err == RP_OK && reply.healthy;
    if (err == RP_OK)
        snprintf(detail, cap, "%s", reply.detail);
    else
        snprintf(detail, cap, "the app supervisor did not answer: %s", rp_strerror(err));
    return RP_OK;
}
