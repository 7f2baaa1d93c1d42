/*
 * An app's compartment (compartment.h): namespaces, the new root, storage, cgroups, capabilities,
 * rlimits, Landlock and the seccomp allow-list with user notification; the supervisor's side of
 * each (notifications answered and recorded, cgroup counters read, the quota watched).
 *
 * How a start goes (docs/compartments.md, "Enforcement"):
 *   supervisor: device and app locks, the storage image (mke2fs on first start), the cgroups,
 *     the log and pipes; clone(new mount, pid, ipc, uts, net namespaces) -> child C, pid 1 inside
 *   supervisor: C into the cgroups, the net_setup hook, then "go"
 *   C (still real root, in its own mount namespace): new cgroup namespace; the root built on a
 *     tmpfs in run_dir/root (binds, /proc, /dev, /tmp, /data on a loop device), pivot_root, the
 *     old root detached; then a new user namespace ("userns") that the supervisor maps (the app's
 *     uid and gid alone); setresuid/gid; rlimits; securebits, capabilities dropped (bounding and
 *     ambient too); no_new_privs; Landlock; seccomp (the listener fd passed to the supervisor)
 *   C forks the app (setsid, the contract's descriptors and environment, execve) and stays as its
 *     init: forwards SIGTERM/SIGINT/SIGHUP, reaps, and when the app exits kills what is left and
 *     reports the app's wait status to the supervisor before exiting (its namespace dies with it,
 *     which unmounts /data and lets the loop device go: LO_FLAGS_AUTOCLEAR).
 * The namespaces (mount, net...) are created by real root and owned by the initial user
 * namespace; the app's user namespace owns none of them, so whatever capability a process could
 * ever hold inside it gives no power over its mounts or its network.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/loop.h>
#include <linux/netlink.h>
#include <elf.h>
#include <linux/securebits.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compartment.h"
#include "crash.h"
#include "events.h"
#include "rampart/file.h"
#include "rampart/log.h"
#include "seccomp_allow.h"

#define CG_PREFIX "rampart."
/* cgroup v2: the leaf the monitor's processes move into (never CG_PREFIX...: the cleanup of
 * leftovers would take it, and kill what is in it). */
#define CG_LEAF "rampart-monitor"
#define SETUP_DEADLINE_MS 15000
#define PATH_ENV "PATH=/usr/local/bin:/usr/bin:/bin"

/* Landlock beyond the build host's header (Debian 12's covers ABI 2). */
#define RP_LL_FS_TRUNCATE (1ULL << 14)
#define RP_LL_FS_IOCTL_DEV (1ULL << 15)
#define RP_LL_NET_BIND_TCP (1ULL << 0)
#define RP_LL_NET_CONNECT_TCP (1ULL << 1)
#define RP_LL_RULE_NET_PORT 2
#define RP_LL_SCOPE_ABSTRACT_UNIX (1ULL << 0)
#define RP_LL_SCOPE_SIGNAL (1ULL << 1)
#define RP_LL_LOG_APP (1U << 0 | 1U << 1) /* ABI 7: the app's refusals logged, not the init's */
struct rp_ll_ruleset_attr {
    uint64_t handled_access_fs, handled_access_net, scoped;
};
struct rp_ll_net_port_attr {
    uint64_t allowed_access, port;
} __attribute__((packed));
#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif

/* The supervisor <-> child protocol, over a SOCK_SEQPACKET pair. */
enum { M_GO = 1, M_USERNS, M_MAPPED, M_SECCOMP, M_READY, M_ERROR, M_EXIT, M_CRASH };
typedef struct msg {
    int type;
    int value;      /* M_USERNS: 1 made; M_READY: layers; M_EXIT: the app's wait status;
                       M_CRASH: the length of the capture, the next packet */
    int value2;     /* M_READY: Landlock ABI */
    char text[480]; /* M_ERROR: why; M_READY: the layers missing */
} msg_t;

/* ---------------------------------------------------------------- small helpers */

/* snprintf for paths: a path that does not fit becomes "", so that whatever uses it fails
 * rather than acting on a shorter, different path. */
__attribute__((format(printf, 3, 4))) static int pathf(char *out, size_t cap, const char *f, ...)
{
    va_list ap;
    int n;

    va_start(ap, f);
    n = vsnprintf(out, cap, f, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* The cgroups of one state directory's compartments end in its tag, so that two monitors (or two
 * test runs) on one host never take or clean up each other's: FNV-1a of its real path. */
static uint32_t state_tag(const char *state_dir)
{
    char real[PATH_MAX];
    const char *p = realpath(state_dir, real) != NULL ? real : state_dir;
    uint32_t h = 2166136261u;

    for (; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    size_t len = strlen(text);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = write(fd, text, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

static int read_text(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = read(fd, out, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    out[n] = '\0';
    return 0;
}

/* The number after "key " in a flat-keyed cgroup file; 0 if absent. */
static uint64_t keyed_value(const char *text, const char *key)
{
    size_t klen = strlen(key);

    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
            return strtoull(p + klen + 1, NULL, 10);
    return 0;
}

static void note_missing(char *missing, size_t cap, const char *what)
{
    size_t len = strlen(missing);
    snprintf(missing + len, cap - len, "%s%s", len ? "; " : "", what);
}

static int send_msg(int fd, const msg_t *m, int pass_fd)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof(*m)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

    if (pass_fd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(*m) ? 0 : -1;
}

/* 1: a message (and *got_fd, or -1); 0: the peer is gone; -1: error. */
static int recv_msg(int fd, msg_t *m, int *got_fd)
{
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;

    if (got_fd != NULL)
        *got_fd = -1;
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return 0;
    if (n != (ssize_t)sizeof(*m))
        return -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && got_fd != NULL)
            memcpy(got_fd, CMSG_DATA(cm), sizeof(int));
    m->text[sizeof(m->text) - 1] = '\0';
    return 1;
}

static void record(rp_compartment_t *c, rp_event_kind_t kind, const char *reason)
{
    if (c->events >= RP_COMPARTMENT_EVENTS_PER_RUN) {
        c->events_suppressed++;
        return;
    }
    c->events++;
    if (rp_event_record(c->state_dir, kind, c->component, reason) != RP_OK)
        rp_log_error("%s: cannot record a %s event (%s) in %s/events", c->component,
                     rp_event_kind_name(kind), reason, c->state_dir);
}

void rp_compartment_event(rp_compartment_t *c, rp_event_kind_t kind, const char *reason)
{
    record(c, kind, reason);
}

static const char *const layer_names[RP_LAYER_COUNT_] = {
    "user-ns",      "mount-ns",     "pid-ns",  "ipc-ns",  "uts-ns",         "net-ns",
    "cgroup-ns",    "no-new-privs", "no-caps", "seccomp", "seccomp-notify", "landlock-fs",
    "landlock-net", "memory",       "pids",    "cpu",     "storage-quota",  "rlimits"};

void rp_compartment_layers_describe(unsigned mask, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < RP_LAYER_COUNT_; i++)
        if (mask & (1u << i)) {
            size_t len = strlen(out);
            snprintf(out + len, cap - len, "%s%s", len ? " " : "", layer_names[i]);
        }
}

unsigned rp_compartment_layer_parse(const char *word)
{
    for (int i = 0; i < RP_LAYER_COUNT_; i++)
        if (strcmp(word, layer_names[i]) == 0)
            return 1u << i;
    return 0;
}

#define TURNED_OFF " (turned off by the monitor's configuration)"

/* ---------------------------------------------------------------- cgroups */

/* Where this process sits in the hierarchy mounted at mnt: the path from /proc/self/cgroup of
 * the line naming controller (v1), or of the "0::" line (v2, controller NULL). */
static int own_cgroup(const char *controller, char *out, size_t cap)
{
    char buf[4096], *save = NULL;

    if (read_text("/proc/self/cgroup", buf, sizeof(buf)) != 0)
        return -1;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL)
            continue;
        *c2 = '\0';
        bool match = false;
        if (controller == NULL) /* "0::PATH": hierarchy 0, no controller list */
            match = c1 == line + 1 && line[0] == '0' && c1 + 1 == c2;
        else {
            char *list = c1 + 1, *s2 = NULL;
            for (char *t = strtok_r(list, ",", &s2); t; t = strtok_r(NULL, ",", &s2))
                match = match || strcmp(t, controller) == 0;
        }
        if (match) {
            snprintf(out, cap, "%s", strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1);
            return 0;
        }
    }
    return -1;
}

int rp_compartment_cg_parent(const char *own, char *out, size_t cap)
{
    size_t n = strlen(own), leaf = strlen("/" CG_LEAF);

    if (n >= leaf && strcmp(own + n - leaf, "/" CG_LEAF) == 0)
        n -= leaf;
    return pathf(out, cap, "%.*s", (int)n, own);
}

/* Whether word is one of the space-separated words of list ("cpu" is not "cpuset"). */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
            return true;
    return false;
}

/* The directory the apps' cgroups go in, of the hierarchy mounted at mnt for controller (NULL:
 * cgroup2): the monitor's own cgroup, or, in v2 once it moved into its leaf, the leaf's parent. */
static int cg_parent(const char *mnt, const char *controller, char *out, size_t cap)
{
    char own[512], base[512];

    if (own_cgroup(controller, own, sizeof(own)) != 0 ||
        rp_compartment_cg_parent(own, base, sizeof(base)) != 0)
        return -1;
    return pathf(out, cap, "%s%s", mnt, base);
}

/* The mount point of the v1 hierarchy holding controller, or of cgroup2 (controller NULL). */
static int cgroup_mount(const char *controller, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[1024];
    int rc = -1;

    if (f == NULL)
        return -1;
    while (rc != 0 && fgets(line, sizeof(line), f)) {
        char mnt[512], fstype[64], opts[512];
        char *sep = strstr(line, " - ");
        if (sep == NULL || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
            sscanf(sep + 3, "%63s %*s %511s", fstype, opts) != 2)
            continue;
        if (controller == NULL ? strcmp(fstype, "cgroup2") == 0 : strcmp(fstype, "cgroup") == 0) {
            if (controller != NULL) {
                bool has = false;
                char *s2 = NULL;
                for (char *t = strtok_r(opts, ",", &s2); t; t = strtok_r(NULL, ",", &s2))
                    has = has || strcmp(t, controller) == 0;
                if (!has)
                    continue;
            }
            snprintf(out, cap, "%s", mnt);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

/* Kill whatever is in dir and remove it, waiting (bounded) for the kernel to let it go. */
static int cgroup_remove(const char *dir)
{
    char procs[600], buf[4096];
    long deadline = now_ms() + 5000;

    while (rmdir(dir) != 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != EBUSY || now_ms() > deadline)
            return -1;
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        if (read_text(procs, buf, sizeof(buf)) == 0)
            for (char *p = buf; *p;) {
                long pid = strtol(p, &p, 10);
                if (pid > 0)
                    kill((pid_t)pid, SIGKILL);
                while (*p == '\n')
                    p++;
                if (pid <= 0)
                    break;
            }
        usleep(10 * 1000);
    }
    return 0;
}

static int cg_write(const char *dir, const char *file, const char *text)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return write_text(path, text);
}

/* Make dir (removing a leftover of the same name first). */
static int cg_make(const char *dir)
{
    if (mkdir(dir, 0755) == 0)
        return 0;
    if (errno != EEXIST || cgroup_remove(dir) != 0)
        return -1;
    return mkdir(dir, 0755);
}

/*
 * cgroup v2 allows no process in a cgroup whose children have controllers ("no internal
 * processes"): under systemd the monitor's service cgroup holds the monitor and its supervisor, so
 * enabling a controller there is EBUSY. Once per process, this process and its parent (the
 * supervisor and the monitor) move into dir/CG_LEAF; the controllers are then enabled in dir and
 * the apps' cgroups made beside the leaf. Any other process in dir is not the monitor's to move (a
 * login session's shell, say): refused, with why. The root cgroup is exempt: nothing moves. 0, or
 * -1 with why.
 */
static int cg_v2_leaf(const char *dir, bool root, char *why, size_t cap)
{
    static int done; /* 0 not yet, 1 moved, -1 failed */
    char leaf[600], procs[600], buf[4096];
    long other = 0;

    if (root || done > 0)
        return 0;
    if (done < 0 || pathf(leaf, sizeof(leaf), "%s/" CG_LEAF, dir) != 0 ||
        pathf(procs, sizeof(procs), "%s/cgroup.procs", dir) != 0 ||
        (mkdir(leaf, 0755) != 0 && errno != EEXIST) || read_text(procs, buf, sizeof(buf)) != 0) {
        snprintf(why, cap, "cgroup v2: cannot make the monitor's leaf cgroup %.160s/" CG_LEAF, dir);
        done = -1;
        return -1;
    }
    for (char *p = buf, *end; *p != '\0'; p = end) {
        char text[24];
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        while (*end == '\n')
            end++;
        if (pid != (long)getpid() && pid != (long)getppid()) {
            other = pid;
            continue;
        }
        snprintf(text, sizeof(text), "%ld", pid);
        if (cg_write(leaf, "cgroup.procs", text) != 0) {
            snprintf(why, cap, "cgroup v2: cannot move pid %ld into %.160s: %s", pid, leaf,
                     strerror(errno));
            done = -1;
            return -1;
        }
    }
    if (other != 0) {
        snprintf(why, cap,
                 "cgroup v2: %.160s holds other processes (pid %ld): the monitor needs a cgroup of "
                 "its own (systemd: Delegate=yes)",
                 dir, other);
        done = -1;
        return -1;
    }
    rp_log_info("cgroup v2: moved into %s, so that %s may delegate controllers", leaf, dir);
    done = 1;
    return 0;
}

static void cgroups_setup(rp_compartment_t *c, const rp_manifest_t *m, unsigned without)
{
    static const char *const ctl[3] = {"memory", "pids", "cpu"};
    static const unsigned bit[3] = {RP_LAYER_CG_MEMORY, RP_LAYER_CG_PIDS, RP_LAYER_CG_CPU};
    char mnt[512], own[512], dir[512], v2dir[512] = "", text[64], note[512], why[400];

    for (int i = 0; i < 3; i++) {
        bool ok = false;
        why[0] = '\0';
        if (without & bit[i]) {
            snprintf(note, sizeof(note), "no %s limit" TURNED_OFF, ctl[i]);
            note_missing(c->missing, sizeof(c->missing), note);
            continue;
        }
        if (cgroup_mount(ctl[i], mnt, sizeof(mnt)) == 0 &&
            own_cgroup(ctl[i], own, sizeof(own)) == 0) {
            /* v1: this controller's own hierarchy */
            pathf(dir, sizeof(dir), "%s%s/" CG_PREFIX "%s.%08x", mnt, own, c->component,
                  state_tag(c->state_dir));
            if (cg_make(dir) == 0) {
                snprintf(c->cg_dir[c->ncg++], sizeof(c->cg_dir[0]), "%s", dir);
                if (i == 0) {
                    snprintf(text, sizeof(text), "%llu", (unsigned long long)m->memory_kb * 1024);
                    ok = cg_write(dir, "memory.limit_in_bytes", text) == 0;
                    (void)cg_write(dir, "memory.memsw.limit_in_bytes", text); /* no swap escape */
                    pathf(c->cg_memory, sizeof(c->cg_memory), "%s/memory.oom_control", dir);
                } else if (i == 1) {
                    snprintf(text, sizeof(text), "%u", m->pids);
                    ok = cg_write(dir, "pids.max", text) == 0;
                    pathf(c->cg_pids, sizeof(c->cg_pids), "%s/pids.events", dir);
                } else {
                    snprintf(text, sizeof(text), "%u", m->cpu_percent * 1000);
                    ok = cg_write(dir, "cpu.cfs_period_us", "100000") == 0 &&
                         cg_write(dir, "cpu.cfs_quota_us", text) == 0;
                }
            }
        } else if (cgroup_mount(NULL, mnt, sizeof(mnt)) == 0 &&
                   own_cgroup(NULL, own, sizeof(own)) == 0) {
            /* v2: one directory for every controller, beside the monitor's leaf (cg_v2_leaf),
             * made whatever controllers its cgroup has; each limit needs its controller
             * delegated to the monitor's cgroup (cgroup.controllers) and enabled for its
             * children (cgroup.subtree_control). */
            char parent[512], avail[512] = "", enabled[512] = "";
            bool root =
                rp_compartment_cg_parent(own, parent, sizeof(parent)) == 0 && parent[0] == '\0';
            if (cg_parent(mnt, NULL, parent, sizeof(parent)) != 0 ||
                cg_v2_leaf(parent, root, why, sizeof(why)) != 0)
                goto missing;
            if (v2dir[0] == '\0') {
                pathf(v2dir, sizeof(v2dir), "%s/" CG_PREFIX "%s.%08x", parent, c->component,
                      state_tag(c->state_dir));
                if (cg_make(v2dir) == 0) {
                    snprintf(c->cg_dir[c->ncg++], sizeof(c->cg_dir[0]), "%s", v2dir);
                    c->cg_v2 = true;
                } else {
                    snprintf(why, sizeof(why), "cgroup v2: cannot make %.200s: %s", v2dir,
                             strerror(errno));
                    v2dir[0] = '\0';
                    goto missing;
                }
            }
            pathf(note, sizeof(note), "%s/cgroup.controllers", parent);
            (void)read_text(note, avail, sizeof(avail));
            avail[strcspn(avail, "\n")] = '\0';
            pathf(note, sizeof(note), "%s/cgroup.subtree_control", parent);
            (void)read_text(note, enabled, sizeof(enabled));
            snprintf(text, sizeof(text), "+%s", ctl[i]);
            if (!has_word(avail, ctl[i])) {
                snprintf(why, sizeof(why),
                         "cgroup v2: \"%s\" not delegated to %.160s: Delegate=yes", ctl[i],
                         parent[strlen(mnt)] != '\0' ? parent + strlen(mnt) : "/");
                goto missing;
            }
            if (!has_word(enabled, ctl[i]) &&
                cg_write(parent, "cgroup.subtree_control", text) != 0) {
                snprintf(why, sizeof(why), "cgroup v2: cannot enable \"%s\" in %.160s: %s", ctl[i],
                         parent, strerror(errno));
                goto missing;
            }
            if (i == 0) {
                snprintf(text, sizeof(text), "%llu", (unsigned long long)m->memory_kb * 1024);
                ok = cg_write(v2dir, "memory.max", text) == 0;
                (void)cg_write(v2dir, "memory.swap.max", "0");
                (void)pathf(c->cg_memory, sizeof(c->cg_memory), "%s/memory.events", v2dir);
            } else if (i == 1) {
                snprintf(text, sizeof(text), "%u", m->pids);
                ok = cg_write(v2dir, "pids.max", text) == 0;
                (void)pathf(c->cg_pids, sizeof(c->cg_pids), "%s/pids.events", v2dir);
            } else {
                snprintf(text, sizeof(text), "%u 100000", m->cpu_percent * 1000);
                ok = cg_write(v2dir, "cpu.max", text) == 0;
            }
        }
    missing:
        if (ok)
            c->layers |= bit[i];
        else {
            if (why[0] == '\0')
                snprintf(why, sizeof(why),
                         "cgroup controller \"%s\" not available to the monitor: neither a v1 "
                         "hierarchy nor cgroup2 mounted",
                         ctl[i]);
            snprintf(note, sizeof(note), "no %s limit (%s)", ctl[i], why);
            note_missing(c->missing, sizeof(c->missing), note);
        }
    }
}

static int cgroups_add(rp_compartment_t *c, pid_t pid)
{
    char text[32];
    snprintf(text, sizeof(text), "%d", (int)pid);
    for (int i = 0; i < c->ncg; i++)
        if (cg_write(c->cg_dir[i], "cgroup.procs", text) != 0)
            return -1;
    return 0;
}

static void cgroups_remove(rp_compartment_t *c)
{
    for (int i = 0; i < c->ncg; i++)
        if (cgroup_remove(c->cg_dir[i]) != 0)
            rp_log_error("%s: cannot remove cgroup %s: %s", c->component, c->cg_dir[i],
                         strerror(errno));
    c->ncg = 0;
}

/* ---------------------------------------------------------------- storage */

static int run_quiet(char *const argv[])
{
    int status;
    pid_t pid = fork();
    char *const envp[] = {PATH_ENV, NULL};

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
        }
        execve(argv[0], argv, envp);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The image exists (made now if it did not: written to a temporary name, then renamed). */
static rp_err_t storage_ensure(const rp_compartment_spec_t *s, char *why, size_t cap)
{
    char tmp[PATH_MAX], owner[64];
    const char *mke2fs =
        access("/usr/sbin/mke2fs", X_OK) == 0 ? "/usr/sbin/mke2fs" : "/sbin/mke2fs";
    struct stat st;
    int fd;

    if (lstat(s->storage_image, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            snprintf(why, cap, "%s: not a regular file", s->storage_image);
            return RP_ERR_INVALID_ARG;
        }
        return RP_OK; /* kept across runs and reboots (a changed SizeKB is not applied yet) */
    }
    snprintf(tmp, sizeof(tmp), "%s.new", s->storage_image);
    unlink(tmp);
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    /* Reserved now: a device whose disk fills later cannot make the app's writes fail below its
     * quota (they would otherwise be I/O errors inside ext4). */
    if (fd < 0 || posix_fallocate(fd, 0, (off_t)s->manifest->storage_kb * 1024) != 0) {
        snprintf(why, cap, "cannot make the storage image %s: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return RP_ERR_IO;
    }
    close(fd);
    snprintf(owner, sizeof(owner), "root_owner=%u:%u", (unsigned)s->uid, (unsigned)s->gid);
    char *argv[] = {(char *)mke2fs, "-q",  "-F", "-t",           "ext4", "-m", "0",
                    "-E",           owner, "-L", "rampart-data", tmp,    NULL};
    if (run_quiet(argv) != 0 || (fd = open(tmp, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(why, cap, "cannot make the storage image: %s failed on %s", mke2fs, tmp);
        unlink(tmp);
        return RP_ERR_IO;
    }
    (void)fsync(fd);
    close(fd);
    if (rename(tmp, s->storage_image) != 0) {
        snprintf(why, cap, "cannot make the storage image %s: %s", s->storage_image,
                 strerror(errno));
        unlink(tmp);
        return RP_ERR_IO;
    }
    return RP_OK;
}

/* Attach image to a free loop device that goes away by itself once unmounted. */
static int loop_attach(const char *image, char *dev, size_t cap)
{
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC), img, lfd = -1;

    if (ctl < 0)
        return -1;
    img = open(image, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    for (int tries = 0; img >= 0 && tries < 10 && lfd < 0; tries++) {
        long n = ioctl(ctl, LOOP_CTL_GET_FREE);
        struct loop_config cfg;
        if (n < 0)
            break;
        snprintf(dev, cap, "/dev/loop%ld", n);
        lfd = open(dev, O_RDWR | O_CLOEXEC);
        if (lfd < 0)
            continue;
        memset(&cfg, 0, sizeof(cfg));
        cfg.fd = (uint32_t)img;
        cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%s", image);
        if (ioctl(lfd, LOOP_CONFIGURE, &cfg) != 0) {
            close(lfd); /* taken meanwhile by someone else: another one */
            lfd = -1;
        }
    }
    if (img >= 0)
        close(img);
    close(ctl);
    return lfd;
}

/* ---------------------------------------------------------------- the child: its root */

typedef struct child_args {
    const rp_compartment_spec_t *spec;
    int sync_fd, log_fd, null_fd, ready_fd, channel_fd;
    char root[PATH_MAX];
} child_args_t;

static int fail_errno(char *why, size_t cap, const char *what, const char *path)
{
    snprintf(why, cap, "%s %.200s: %s", what, path, strerror(errno));
    return -1;
}

static int bind_ro(const char *src, const char *dst, unsigned long extra, char *why, size_t cap)
{
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
        return fail_errno(why, cap, "bind", src);
    if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra,
              NULL) != 0)
        return fail_errno(why, cap, "read-only remount of", dst);
    return 0;
}

static int put_file(const char *root, const char *rel, const char *text, char *why, size_t cap)
{
    char path[PATH_MAX];
    int fd;

    snprintf(path, sizeof(path), "%s%s", root, rel);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        if (fd >= 0)
            close(fd);
        return fail_errno(why, cap, "write", path);
    }
    close(fd);
    return 0;
}

/* An empty file at root+rel, for a bind mount of a single node. */
static int bind_node(const char *root, const char *src, const char *rel, char *why, size_t cap)
{
    char path[PATH_MAX];
    int fd;

    snprintf(path, sizeof(path), "%s%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        (void)mkdir(path, 0755);
        *p = '/';
    }
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return fail_errno(why, cap, "make", path);
    close(fd);
    if (mount(src, path, NULL, MS_BIND, NULL) != 0)
        return fail_errno(why, cap, "bind", src);
    return 0;
}

static int build_root(const child_args_t *a, char *why, size_t cap)
{
    static const char *const base[] = {"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"};
    static const char *const nodes[] = {"/dev/null",   "/dev/zero",    "/dev/full",
                                        "/dev/random", "/dev/urandom", "/dev/tty"};
    const rp_compartment_spec_t *s = a->spec;
    const rp_manifest_t *m = s->manifest;
    const char *root = a->root;
    char path[PATH_MAX], text[1024], opts[64];
    struct stat st;

    /* Nothing this namespace mounts reaches the device's, and nothing of the device's later
     * mounts reaches it. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return fail_errno(why, cap, "make private", "/");
    if (mount("rampart-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") != 0)
        return fail_errno(why, cap, "mount tmpfs on", root);
    static const char *const dirs[] = {"/app", "/etc", "/proc", "/dev", "/tmp", "/data", "/.old"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", root, dirs[i]);
        if (mkdir(path, 0755) != 0)
            return fail_errno(why, cap, "mkdir", path);
    }
    /* The app's tree and the device's base system, read-only. */
    pathf(path, sizeof(path), "%s/app", root);
    if (bind_ro(s->tree_dir, path, 0, why, cap) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        char target[PATH_MAX];
        ssize_t n;
        if (lstat(base[i], &st) != 0)
            continue;
        snprintf(path, sizeof(path), "%s%s", root, base[i]);
        if (S_ISLNK(st.st_mode)) { /* merged /usr: /bin -> usr/bin */
            n = readlink(base[i], target, sizeof(target) - 1);
            if (n < 0)
                return fail_errno(why, cap, "readlink", base[i]);
            target[n] = '\0';
            if (symlink(target, path) != 0)
                return fail_errno(why, cap, "symlink", path);
        } else if (S_ISDIR(st.st_mode)) {
            if (mkdir(path, 0755) != 0 || bind_ro(base[i], path, 0, why, cap) != 0)
                return why[0] ? -1 : fail_errno(why, cap, "mkdir", path);
        }
    }
    /* A minimal /etc: only the app's user and root, local names; hosts and resolv.conf from the
     * net policy when it wrote them. */
    snprintf(text, sizeof(text), "root:x:0:0:root:/:/usr/sbin/nologin\napp:x:%u:%u:%s:%s:/bin/sh\n",
             (unsigned)s->uid, (unsigned)s->gid, s->component, m->storage_kb ? "/data" : "/tmp");
    if (put_file(root, "/etc/passwd", text, why, cap) != 0)
        return -1;
    snprintf(text, sizeof(text), "root:x:0:\napp:x:%u:\n", (unsigned)s->gid);
    if (put_file(root, "/etc/group", text, why, cap) != 0 ||
        put_file(root, "/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n", why,
                 cap) != 0)
        return -1;
    /* The network policy's names (run_dir/etc/: hosts, resolv.conf) are seen through a bind of
     * that directory, not of each file: the monitor replaces a file there whole (a rename) when
     * it resolves the names again, and a bind of the file would keep showing the old one. */
    static const char *const netfiles[2][2] = {
        {"hosts",       "127.0.0.1 localhost\n::1 localhost\n"                                       },
        {"resolv.conf", "# no resolver: the device's monitor resolves the names an app may reach\n"
                        "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n"}
    };
    char netdir[PATH_MAX];
    bool have_net = false;
    snprintf(netdir, sizeof(netdir), "%s/etc", s->run_dir);
    if (lstat(netdir, &st) == 0 && S_ISDIR(st.st_mode)) {
        pathf(path, sizeof(path), "%s/etc/net", root);
        if (mkdir(path, 0755) != 0)
            return fail_errno(why, cap, "mkdir", path);
        if (bind_ro(netdir, path, MS_NOEXEC, why, cap) != 0)
            return -1;
        have_net = true;
    }
    for (int i = 0; i < 2; i++) {
        char from[PATH_MAX + 16], rel[64], link[64];
        snprintf(from, sizeof(from), "%s/%s", netdir, netfiles[i][0]);
        snprintf(rel, sizeof(rel), "/etc/%s", netfiles[i][0]);
        if (have_net && lstat(from, &st) == 0 && S_ISREG(st.st_mode)) {
            snprintf(link, sizeof(link), "net/%s", netfiles[i][0]);
            pathf(path, sizeof(path), "%s%s", root, rel);
            if (symlink(link, path) != 0)
                return fail_errno(why, cap, "symlink", path);
        } else if (put_file(root, rel, netfiles[i][1], why, cap) != 0) {
            return -1;
        }
    }
    /* /proc: its own pid namespace; only processes of its own uid, only the pid directories
     * where the kernel can (subset=pid, Linux 5.8). */
    pathf(path, sizeof(path), "%s/proc", root);
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "hidepid=invisible,subset=pid") != 0 &&
        mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") != 0)
        return fail_errno(why, cap, "mount proc on", path);
    /* /dev: a few harmless nodes, and the manifest's devices (locked by the supervisor). */
    pathf(path, sizeof(path), "%s/dev", root);
    if (mount("rampart-dev", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755") != 0)
        return fail_errno(why, cap, "mount tmpfs on", path);
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
        if (bind_node(root, nodes[i], nodes[i], why, cap) != 0)
            return -1;
    for (size_t i = 0; i < m->ndevices; i++)
        if (bind_node(root, m->devices[i], m->devices[i], why, cap) != 0)
            return -1;
    static const char *const links[][2] = {
        {"/proc/self/fd",   "/dev/fd"    },
        {"/proc/self/fd/0", "/dev/stdin" },
        {"/proc/self/fd/1", "/dev/stdout"},
        {"/proc/self/fd/2", "/dev/stderr"}
    };
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", root, links[i][1]);
        if (symlink(links[i][0], path) != 0)
            return fail_errno(why, cap, "symlink", path);
    }
    pathf(path, sizeof(path), "%s/dev", root);
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) !=
        0)
        return fail_errno(why, cap, "read-only remount of", path);
    /* /tmp: small, not executable. */
    pathf(path, sizeof(path), "%s/tmp", root);
    snprintf(opts, sizeof(opts), "size=%uk,mode=1777", (unsigned)RP_COMPARTMENT_TMP_KB);
    if (mount("rampart-tmp", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0)
        return fail_errno(why, cap, "mount tmpfs on", path);
    /* /data: its storage image, a file system of exactly its quota. */
    if (m->storage_kb > 0) {
        char dev[64];
        int lfd = loop_attach(s->storage_image, dev, sizeof(dev));
        pathf(path, sizeof(path), "%s/data", root);
        if (lfd < 0)
            return fail_errno(why, cap, "attach a loop device to", s->storage_image);
        if (mount(dev, path, "ext4", MS_NOSUID | MS_NODEV | MS_NOEXEC, "errors=remount-ro") != 0) {
            close(lfd);
            return fail_errno(why, cap, "mount the storage image on", path);
        }
        close(lfd); /* the mount holds it now; when the mount goes, so does the loop device */
        if (chown(path, s->uid, s->gid) != 0 || chmod(path, 0700) != 0)
            return fail_errno(why, cap, "chown", path);
    }
    /* Into it. The old root is detached: nothing of the device's tree stays reachable. */
    if (chdir(root) != 0 || syscall(SYS_pivot_root, ".", ".old") != 0)
        return fail_errno(why, cap, "pivot_root into", root);
    if (umount2("/.old", MNT_DETACH) != 0 || rmdir("/.old") != 0)
        return fail_errno(why, cap, "detach", "the old root");
    if (chdir("/") != 0 ||
        mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        return fail_errno(why, cap, "read-only remount of", "/");
    return 0;
}

/* ---------------------------------------------------------------- the child: its fences */

static void set_rlimits(void)
{
    static const struct {
        int res;
        rlim_t v;
    } lim[] = {
        {RLIMIT_NOFILE,     RP_COMPARTMENT_NOFILE},
        {RLIMIT_CORE,       0                    },
        {RLIMIT_MEMLOCK,    64 * 1024            },
        {RLIMIT_MSGQUEUE,   64 * 1024            },
        {RLIMIT_RTPRIO,     0                    },
        {RLIMIT_NICE,       0                    },
        {RLIMIT_SIGPENDING, 256                  }
    };
    struct rlimit r;

    /* Soft = hard: nothing left to raise. */
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        r.rlim_cur = r.rlim_max = lim[i].v;
        (void)setrlimit(lim[i].res, &r);
    }
}

/* No way back to privilege through uid 0 or a file capability, and locked so. Set before the
 * uid changes: NO_SETUID_FIXUP keeps the capabilities that drop_capabilities() needs (without a
 * user namespace the change from root would clear them first). */
static int set_securebits(char *why, size_t cap)
{
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                                     SECBIT_NO_CAP_AMBIENT_RAISE |
                                     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) != 0)
        return fail_errno(why, cap, "set", "securebits");
    return 0;
}

static int drop_capabilities(char *why, size_t cap)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];

    for (int c = 0; c <= 63; c++)
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
            return fail_errno(why, cap, "drop", "the bounding set");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return fail_errno(why, cap, "clear", "the ambient set");
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) != 0)
        return fail_errno(why, cap, "drop", "capabilities");
    return 0;
}

static int landlock_apply(const rp_manifest_t *m, int *abi_out, unsigned *layers, char *missing,
                          size_t mcap)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    struct rp_ll_ruleset_attr attr = {0};
    uint64_t ro =
        LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
    uint64_t file_rw = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE;
    size_t size = sizeof(uint64_t);
    bool every_port = false;
    int rs;

    *abi_out = abi > 0 ? (int)abi : 0;
    if (abi <= 0) {
        note_missing(missing, mcap,
                     "no Landlock (the kernel has none, or it is not enabled: lsm=landlock)");
        return 0;
    }
    attr.handled_access_fs = (1ULL << 13) - 1; /* ABI 1 */
    if (abi >= 2)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3) {
        attr.handled_access_fs |= RP_LL_FS_TRUNCATE;
        file_rw |= RP_LL_FS_TRUNCATE;
    }
    if (abi >= 5)
        attr.handled_access_fs |= RP_LL_FS_IOCTL_DEV;
    for (size_t i = 0; i < m->nconnections; i++)
        every_port = every_port || m->connections[i].port == 0;
    if (abi >= 4) {
        size = 2 * sizeof(uint64_t);
        attr.handled_access_net = RP_LL_NET_BIND_TCP | (every_port ? 0 : RP_LL_NET_CONNECT_TCP);
        if (every_port)
            note_missing(missing, mcap,
                         "Landlock leaves TCP connect ports open (a connection allows every port; "
                         "the network policy still holds)");
    } else
        note_missing(missing, mcap, "no Landlock TCP rules (the kernel's Landlock ABI is below 4)");
    if (abi >= 6) {
        size = sizeof(attr);
        attr.scoped = RP_LL_SCOPE_ABSTRACT_UNIX | RP_LL_SCOPE_SIGNAL;
    }
    rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (rs < 0)
        return -1;
    struct {
        const char *path;
        uint64_t access;
    } rules[16];
    size_t n = 0;
    const char *const ro_dirs[] = {"/app", "/usr",  "/lib", "/lib64", "/lib32",
                                   "/bin", "/sbin", "/etc", "/proc"};
    rules[n].path = "/", rules[n++].access = LANDLOCK_ACCESS_FS_READ_DIR; /* ls / */
    for (size_t i = 0; i < sizeof(ro_dirs) / sizeof(ro_dirs[0]); i++) {
        struct stat st;
        if (lstat(ro_dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
            rules[n].path = ro_dirs[i], rules[n++].access = ro;
    }
    rules[n].path = "/tmp", rules[n++].access = attr.handled_access_fs;
    if (m->storage_kb > 0)
        rules[n].path = "/data", rules[n++].access = attr.handled_access_fs;
    /* (the device's nodes follow: same rights for the few harmless ones and the listed ones) */
    for (size_t i = 0; i < n; i++) {
        struct landlock_path_beneath_attr pb = {.allowed_access = rules[i].access};
        pb.parent_fd = open(rules[i].path, O_PATH | O_CLOEXEC | O_DIRECTORY);
        if (pb.parent_fd < 0 ||
            syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0) {
            close(rs);
            return -1;
        }
        close(pb.parent_fd);
    }
    const char *const nodes[] = {"/dev/null",   "/dev/zero",    "/dev/full",
                                 "/dev/random", "/dev/urandom", "/dev/tty"};
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]) + m->ndevices; i++) {
        const char *p = i < 6 ? nodes[i] : m->devices[i - 6];
        struct landlock_path_beneath_attr pb = {
            .allowed_access = file_rw | (i >= 6 && abi >= 5 ? RP_LL_FS_IOCTL_DEV : 0)};
        pb.parent_fd = open(p, O_PATH | O_CLOEXEC);
        if (pb.parent_fd < 0 ||
            syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0) {
            close(rs);
            return -1;
        }
        close(pb.parent_fd);
    }
    if (abi >= 4) {
        for (size_t i = 0; i < m->ntcp_ports; i++) {
            struct rp_ll_net_port_attr np = {.allowed_access = RP_LL_NET_BIND_TCP,
                                             .port = m->tcp_ports[i]};
            if (syscall(SYS_landlock_add_rule, rs, RP_LL_RULE_NET_PORT, &np, 0) != 0)
                return close(rs), -1;
        }
        for (size_t i = 0; i < m->nconnections && !every_port; i++) {
            struct rp_ll_net_port_attr np = {.allowed_access = RP_LL_NET_CONNECT_TCP,
                                             .port = m->connections[i].port};
            if (syscall(SYS_landlock_add_rule, rs, RP_LL_RULE_NET_PORT, &np, 0) != 0)
                return close(rs), -1;
        }
    }
    if (syscall(SYS_landlock_restrict_self, rs, abi >= 7 ? RP_LL_LOG_APP : 0) != 0)
        return close(rs), -1;
    close(rs);
    *layers |= RP_LAYER_LANDLOCK_FS | (abi >= 4 ? RP_LAYER_LANDLOCK_NET : 0);
    return 0;
}

/* The system calls an app may make: what a C program, the dynamic linker, a shell and the common
 * tools use. Everything else is refused with EPERM and shown to the monitor. The refused ones
 * that matter (docs/compartments.md): ptrace, mount and the new mount API, unshare, setns, any
 * clone with a namespace flag, keyctl/add_key/request_key, bpf, perf_event_open, module loading,
 * the clock, reboot, kexec, swap, acct, io_uring, userfaultfd, process_vm_*, the set*id family,
 * mknod, chroot, pivot_root, sethostname, personality, quotactl, open_by_handle_at; and every
 * socket family but AF_UNIX, TCP and UDP over IPv4/IPv6 and rtnetlink (socket_rules()). */
/* clang-format off */
static const char *const allowed_calls[] = {
    "read", "write", "open", "openat", "openat2", "close", "close_range", "stat", "fstat", "lstat",
    "newfstatat", "statx", "statfs", "fstatfs", "poll", "ppoll", "select", "pselect6",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "lseek", "mmap", "mprotect", "munmap", "mremap", "madvise", "msync", "mincore", "mlock",
    "munlock", "mlock2", "brk", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack",
    "ioctl", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2", "pwritev2",
    "access", "faccessat", "faccessat2", "pipe", "pipe2", "sched_yield", "dup", "dup2", "dup3",
    "pause", "nanosleep", "clock_nanosleep", "getitimer", "setitimer", "alarm", "getpid", "gettid",
    "getppid", "getpgrp", "getpgid", "setpgid", "getsid", "setsid", "sendfile", "connect",
    "accept", "accept4", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "shutdown", "bind", "listen", "getsockname", "getpeername", "setsockopt",
    "getsockopt", "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
    "kill", "tgkill", "tkill", "uname", "fcntl", "flock", "fsync", "fdatasync", "truncate",
    "ftruncate", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "rename", "renameat",
    "renameat2", "mkdir", "mkdirat", "rmdir", "creat", "link", "linkat", "unlink", "unlinkat",
    "symlink", "symlinkat", "readlink", "readlinkat", "chmod", "fchmod", "fchmodat", "chown",
    "fchown", "lchown", "fchownat", "umask", "gettimeofday", "getrlimit", "getrusage", "sysinfo",
    "times", "getuid", "getgid", "geteuid", "getegid", "getresuid", "getresgid", "getgroups",
    "capget", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_getscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "getpriority",
    "setpriority", "arch_prctl", "set_tid_address", "set_robust_list", "get_robust_list", "futex",
    "futex_waitv", "rseq", "time", "clock_gettime", "clock_getres", "utime", "utimes", "utimensat",
    "futimesat", "getrandom", "memfd_create", "eventfd", "eventfd2", "signalfd", "signalfd4",
    "timerfd_create", "timerfd_settime", "timerfd_gettime", "timer_create", "timer_settime",
    "timer_gettime", "timer_getoverrun", "timer_delete", "inotify_init", "inotify_init1",
    "inotify_add_watch", "inotify_rm_watch", "fadvise64", "fallocate", "splice", "tee", "vmsplice",
    "copy_file_range", "sync", "syncfs", "sync_file_range", "readahead", "getxattr", "lgetxattr",
    "fgetxattr", "listxattr", "llistxattr", "flistxattr", "pidfd_open", "pidfd_send_signal",
    "restart_syscall", "membarrier", "prctl", "getcpu", "shmget", "shmat", "shmctl", "shmdt",
    "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open",
    "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr", "set_mempolicy",
    "get_mempolicy", "mbind", "landlock_create_ruleset", "landlock_add_rule",
    "landlock_restrict_self", "seccomp",
};
/* clang-format on */

#define NS_FLAGS                                                                                   \
    (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |     \
     CLONE_NEWCGROUP | 0x00000080 /* CLONE_NEWTIME */)

/* The sockets an app may make: AF_UNIX; TCP and UDP (any protocol of a stream or datagram
 * socket: ping sockets too) over IPv4 and IPv6, which its network namespace and the monitor's
 * filter judge; rtnetlink, for getaddrinfo and its own interfaces. Anything else is refused and
 * seen: raw and packet sockets (below the filter's view), AF_VSOCK (not namespaced: it reaches
 * the hypervisor past the network policy), other netlink families (NETLINK_KOBJECT_UEVENT
 * hears the whole device's kernel events from any namespace its user namespace owns), and the
 * rarer families' kernel code. An argument with bits above the 32 the kernel reads matches no
 * rule: refused, never allowed. */
static int socket_rules(scmp_filter_ctx ctx)
{
    static const int ip[2] = {AF_INET, AF_INET6};
    static const int types[2] = {SOCK_STREAM, SOCK_DGRAM};
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));

    for (int i = 0; rc == 0 && i < 2; i++)
        for (int j = 0; rc == 0 && j < 2; j++)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                                  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)ip[i], 0),
                                  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (scmp_datum_t)types[j]));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                              SCMP_A0(SCMP_CMP_EQ, AF_NETLINK, 0),
                              SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
                              SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
    return rc;
}

/* Build the filter: default action def (notify, or EPERM where the kernel cannot notify). debug
 * (development mode, rp_compartment_spec_t.debug) allows ptrace and process_vm_*: a debugger
 * reaches only what the app's pid namespace shows and the kernel's ptrace check lets through
 * (its own uid, its Landlock domain; the init is not dumpable). */
static scmp_filter_ctx seccomp_build(uint32_t def, bool debug)
{
    static const char *const debug_calls[] = {"ptrace", "process_vm_readv", "process_vm_writev"};
    scmp_filter_ctx ctx = seccomp_init(def);
    int rc;

    if (ctx == NULL)
        return NULL;
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc == 0)
        rc = rp_seccomp_allow(ctx, allowed_calls, sizeof(allowed_calls) / sizeof(allowed_calls[0]));
    if (rc == 0 && debug)
        rc = rp_seccomp_allow(ctx, debug_calls, sizeof(debug_calls) / sizeof(debug_calls[0]));
    if (rc == 0)
        rc = socket_rules(ctx);
    /* clone without a namespace flag (fork, threads); clone3 says ENOSYS so libc falls back to
     * clone, whose flags a filter can see. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* Reading a limit is free; setting one goes to the monitor, which refuses a raise (and lets
     * the kernel decide the rest). Without notification, the kernel alone decides. */
    if (rc == 0 && def == SCMP_ACT_NOTIFY)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
                              SCMP_A2(SCMP_CMP_EQ, 0, 0));
    else if (rc == 0) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 0);
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setrlimit), 0);
    }
    if (rc != 0) {
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}

/* Loaded last before the app's exec. OUT: *notify_fd, the listener (-1 when the kernel cannot
 * notify: refusals are then plain EPERM, unseen). */
static int seccomp_apply(bool may_notify, bool debug, int *notify_fd, char *why, size_t cap)
{
    scmp_filter_ctx ctx;
    int rc = -1;

    *notify_fd = -1;
    if (may_notify && seccomp_api_get() >= 5 &&
        (ctx = seccomp_build(SCMP_ACT_NOTIFY, debug)) != NULL) {
        rc = seccomp_load(ctx);
        if (rc == 0)
            *notify_fd = seccomp_notify_fd(ctx);
        seccomp_release(ctx);
        if (rc == 0 && *notify_fd < 0) {
            snprintf(why, cap, "the seccomp filter is loaded but its listener is lost");
            return -1; /* every refused call would hang: refuse to start */
        }
    }
    if (rc != 0 && (ctx = seccomp_build(SCMP_ACT_ERRNO(EPERM), debug)) != NULL) {
        rc = seccomp_load(ctx);
        seccomp_release(ctx);
    }
    if (rc != 0)
        snprintf(why, cap, "cannot load the seccomp filter: %s", strerror(rc < 0 ? -rc : EINVAL));
    return rc == 0 ? 0 : -1;
}

static volatile sig_atomic_t forward_sig;
static void on_signal(int sig)
{
    forward_sig = sig;
}

static void child_fail(int sync_fd, const char *why)
{
    msg_t m = {.type = M_ERROR};
    snprintf(m.text, sizeof(m.text), "%s", why);
    (void)send_msg(sync_fd, &m, -1);
    _exit(126);
}

/* Close every descriptor above stderr but the five given (-1: none). */
static void close_all_but(int k0, int k1, int k2, int k3, int k4)
{
    int keep[5] = {k0, k1, k2, k3, k4};
    unsigned from = 3;

    for (int i = 0; i < 5; i++) /* sort: five elements */
        for (int j = i + 1; j < 5; j++)
            if (keep[j] < keep[i]) {
                int t = keep[i];
                keep[i] = keep[j];
                keep[j] = t;
            }
    for (int i = 0; i < 5; i++) {
        if (keep[i] < (int)from)
            continue;
        if ((unsigned)keep[i] > from)
            (void)close_range(from, (unsigned)keep[i] - 1, 0);
        from = (unsigned)keep[i] + 1;
    }
    (void)close_range(from, ~0U, 0);
}

/* ---------------------------------------------------------------- crash capture (the init) */

/* The init traces the app's main process (its threads too) to capture a crash: registers, a
 * bounded stack window, the module list from /proc (no ELF read here: crash.h). Every other stop
 * is passed on as the kernel would have it. */

static bool fatal_signal(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT ||
           sig == SIGTRAP || sig == SIGSYS;
}

/* Whether sig takes its default action in tid: not caught, not ignored (a fault the process
 * blocked or ignored was reset to the default by the kernel before the stop). A signal the app
 * handles (a runtime's own SIGSEGV handler) is not a crash. */
static bool default_action(pid_t tid, int sig)
{
    char path[64], text[4096];
    unsigned long long caught = ~0ULL, ignored = ~0ULL;
    char *p;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
    if (read_text(path, text, sizeof(text)) != 0)
        return false;
    if ((p = strstr(text, "\nSigIgn:")) != NULL)
        ignored = strtoull(p + 8, NULL, 16);
    if ((p = strstr(text, "\nSigCgt:")) != NULL)
        caught = strtoull(p + 8, NULL, 16);
    return !((caught | ignored) & (1ULL << (sig - 1)));
}

/* The mappings of files, and the end of the one holding sp. */
static void capture_maps(pid_t tid, rp_crash_capture_t *c, uint64_t *stack_end)
{
    static char text[256 * 1024];
    char path[64], *line, *save = NULL;
    size_t len = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)tid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return;
    while (len < sizeof(text) - 1 && (n = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    text[len] = '\0';
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        unsigned long long start, end, off, inode;
        int at = 0;
        if (sscanf(line, "%llx-%llx %*s %llx %*s %llu %n", &start, &end, &off, &inode, &at) != 4 ||
            at == 0)
            continue;
        if (c->sp >= start && c->sp < end)
            *stack_end = end;
        if (inode == 0 || line[at] != '/' || strlen(line + at) > RP_CRASH_PATH_MAX ||
            c->nmods == RP_CRASH_MODULES_MAX)
            continue; /* anonymous, a special one ([stack], [vdso]), too long, or too many */
        rp_crash_module_t *m = &c->mods[c->nmods++];
        m->start = start;
        m->end = end;
        m->offset = off;
        snprintf(m->path, sizeof(m->path), "%s", line + at);
    }
}

/* tid is in a signal-delivery-stop for a fatal signal: capture, and send it to the supervisor. */
static void capture(pid_t tid, int sync_fd)
{
    static rp_crash_capture_t c;
    static uint8_t out[RP_CRASH_CAPTURE_MAX];
    static bool done; /* one capture a run: the supervisor reads it once the init is gone */
    siginfo_t si;
    struct iovec iov = {.iov_base = c.regs, .iov_len = sizeof(c.regs)};
    uint64_t stack_end = 0;
    size_t len;

    if (done)
        return;
    done = true;
    memset(&c, 0, sizeof(c));
    if (ptrace(PTRACE_GETSIGINFO, tid, NULL, &si) != 0 ||
        ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) != 0)
        return;
    c.signo = si.si_signo;
    c.code = si.si_code;
    c.addr = (uint64_t)(uintptr_t)si.si_addr;
    c.tid = (uint32_t)tid;
    c.regs_len = iov.iov_len;
#if defined(__x86_64__)
    c.arch = EM_X86_64;
    c.sp = ((struct user_regs_struct *)c.regs)->rsp;
#elif defined(__aarch64__)
    c.arch = EM_AARCH64;
    c.sp = ((struct user_regs_struct *)c.regs)->sp;
#else
    return; /* an architecture the unwinder is not told about: the exit alone is recorded */
#endif
    capture_maps(tid, &c, &stack_end);
    if (stack_end > c.sp) {
        struct iovec local = {.iov_base = c.stack,
                              .iov_len = stack_end - c.sp < RP_CRASH_STACK_MAX
                                             ? (size_t)(stack_end - c.sp)
                                             : RP_CRASH_STACK_MAX};
        struct iovec remote = {.iov_base = (void *)(uintptr_t)c.sp, .iov_len = local.iov_len};
        ssize_t got = process_vm_readv(tid, &local, 1, &remote, 1, 0);
        c.stack_len = got > 0 ? (size_t)got : 0;
    }
    if (rp_crash_capture_encode(&c, out, sizeof(out), &len) == RP_OK) {
        msg_t m = {.type = M_CRASH, .value = (int)len};
        int room = 2 * RP_CRASH_CAPTURE_MAX;
        (void)setsockopt(sync_fd, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
        if (send_msg(sync_fd, &m, -1) == 0)
            (void)send(sync_fd, out, len, MSG_NOSIGNAL);
    }
}

/* One stop of a traced thread, passed on. */
static void on_stop(pid_t tid, int st, int sync_fd)
{
    int sig = WSTOPSIG(st), event = (unsigned)st >> 16;

    if (event == PTRACE_EVENT_STOP) {
        /* A group-stop stays a stop (LISTEN: the tracee stays stopped until SIGCONT); the
         * initial stop of a new thread just goes on. */
        if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
            (void)ptrace(PTRACE_LISTEN, tid, NULL, NULL);
        else
            (void)ptrace(PTRACE_CONT, tid, NULL, NULL);
        return;
    }
    if (event != 0) { /* PTRACE_EVENT_CLONE: the new thread is traced too */
        (void)ptrace(PTRACE_CONT, tid, NULL, NULL);
        return;
    }
    if (fatal_signal(sig) && default_action(tid, sig))
        capture(tid, sync_fd);
    (void)ptrace(PTRACE_CONT, tid, NULL, (void *)(uintptr_t)sig); /* delivered as it was */
}

/* The init's own filter: the app's list, plus ptrace and process_vm_readv for the capture
 * (docs/compartments.md, "Crash capture"). The app loads its own filter, without them, between
 * its fork and its exec. Refusals here are plain EPERM: the init is ours, not the app's. */
static int init_seccomp(bool trace, char *why, size_t cap)
{
    static const char *const trace_calls[] = {"ptrace", "process_vm_readv"};
    scmp_filter_ctx ctx = seccomp_build(SCMP_ACT_ERRNO(EPERM), false);
    int rc = ctx == NULL ? -EINVAL : 0;

    if (rc == 0 && trace)
        rc = rp_seccomp_allow(ctx, trace_calls, 2);
    if (rc == 0)
        rc = seccomp_load(ctx);
    if (ctx != NULL)
        seccomp_release(ctx);
    if (rc != 0)
        snprintf(why, cap, "cannot load the init's seccomp filter: %s",
                 strerror(rc < 0 ? -rc : EINVAL));
    return rc == 0 ? 0 : -1;
}

static int child_main(child_args_t *a)
{
    const rp_compartment_spec_t *s = a->spec;
    const rp_manifest_t *m = s->manifest;
    char why[480] = "", missing[480] = "";
    char env_component[64], env_version[96], env_ready[32], env_data[64], env_home[64],
        env_monitor[32];
    /* RAMPART_MONITOR_FD last: without a channel, its slot ends the list. */
    char *envp[] = {env_component, env_version, env_ready,   env_data,
                    env_home,      PATH_ENV,    env_monitor, NULL};
    char exe[RP_MANIFEST_PATH_MAX + 8];
    char *argv[RP_MANIFEST_ARGS_MAX + 2];
    unsigned layers =
        RP_LAYER_MOUNTNS | RP_LAYER_PIDNS | RP_LAYER_IPCNS | RP_LAYER_UTSNS | RP_LAYER_NETNS;
    int abi = 0, notify_fd = -1, status = 0, up[2], down[2];
    bool traced = false;
    char go = 0;
    msg_t msg;
    pid_t app;

    /* Nothing of the monitor's (its socket, other compartments' descriptors) past this point. */
    close_all_but(a->sync_fd, a->log_fd, a->null_fd, a->ready_fd, a->channel_fd);
    if (recv_msg(a->sync_fd, &msg, NULL) != 1 || msg.type != M_GO)
        _exit(125); /* the supervisor gave up */
    if (s->without & RP_LAYER_CGROUPNS)
        note_missing(missing, sizeof(missing), "no cgroup namespace" TURNED_OFF);
    else if (unshare(CLONE_NEWCGROUP) == 0)
        layers |= RP_LAYER_CGROUPNS;
    else
        note_missing(missing, sizeof(missing), "no cgroup namespace");
    if (build_root(a, why, sizeof(why)) != 0)
        child_fail(a->sync_fd, why);
    if (sethostname(s->component, strlen(s->component)) != 0)
        child_fail(a->sync_fd, "sethostname failed");
    if (setgroups(0, NULL) != 0)
        child_fail(a->sync_fd, "setgroups failed");
    /* The app's own user namespace: the supervisor maps its uid and gid, nothing else. */
    memset(&msg, 0, sizeof(msg));
    msg.type = M_USERNS;
    msg.value = !(s->without & RP_LAYER_USERNS) && unshare(CLONE_NEWUSER) == 0;
    if (!msg.value)
        snprintf(msg.text, sizeof(msg.text), "%s",
                 s->without & RP_LAYER_USERNS ? "turned off" : strerror(errno));
    if (send_msg(a->sync_fd, &msg, -1) != 0)
        _exit(125);
    if (msg.value) {
        if (recv_msg(a->sync_fd, &msg, NULL) != 1 || msg.type != M_MAPPED)
            _exit(125);
        layers |= RP_LAYER_USERNS;
    } else
        note_missing(missing, sizeof(missing),
                     s->without & RP_LAYER_USERNS
                         ? "no user namespace" TURNED_OFF "; the app runs as its uid with no "
                           "capabilities"
                         : "no user namespace (the kernel refused one: user.max_user_namespaces?); "
                           "the app runs as its uid with no capabilities");
    if (set_securebits(why, sizeof(why)) != 0)
        child_fail(a->sync_fd, why);
    if (setresgid(s->gid, s->gid, s->gid) != 0 || setresuid(s->uid, s->uid, s->uid) != 0)
        child_fail(a->sync_fd, "cannot switch to the app's uid and gid");
    /* The uid change cleared the parent-death signal: set again (a supervisor already gone is
     * seen below, when the next message cannot be sent). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        child_fail(a->sync_fd, "cannot set the parent-death signal");
    set_rlimits();
    layers |= RP_LAYER_RLIMITS;
    if (drop_capabilities(why, sizeof(why)) != 0)
        child_fail(a->sync_fd, why);
    layers |= RP_LAYER_CAPS;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_fail(a->sync_fd, "no_new_privs refused");
    layers |= RP_LAYER_NNP;
    if (s->without & RP_LAYER_LANDLOCK_FS)
        note_missing(missing, sizeof(missing), "no Landlock" TURNED_OFF);
    else if (landlock_apply(m, &abi, &layers, missing, sizeof(missing)) != 0)
        child_fail(a->sync_fd, "cannot apply the Landlock rules");
    if (m->storage_kb > 0)
        layers |= RP_LAYER_STORAGE;
    /* The init is never dumpable (the app makes itself so before its exec): with ptrace allowed
     * (debug), the app's processes reach one another, never the init and its channel to the
     * supervisor (its memory is the host user namespace's: no capability of the app's counts). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        child_fail(a->sync_fd, "cannot make the compartment's init undumpable");
    if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0)
        child_fail(a->sync_fd, "pipe failed");

    /* The app, under the contract. */
    snprintf(env_component, sizeof(env_component), "RAMPART_COMPONENT=%s", s->component);
    snprintf(env_version, sizeof(env_version), "RAMPART_VERSION=%s", s->version);
    snprintf(env_ready, sizeof(env_ready), "RAMPART_READY_FD=%d", RP_APP_READY_FD);
    snprintf(env_data, sizeof(env_data), "RAMPART_DATA_DIR=%s", m->storage_kb ? "/data" : "/tmp");
    snprintf(env_home, sizeof(env_home), "HOME=%s", m->storage_kb ? "/data" : "/tmp");
    snprintf(env_monitor, sizeof(env_monitor), "RAMPART_MONITOR_FD=%d", RP_APP_MONITOR_FD);
    if (a->channel_fd < 0)
        envp[6] = NULL;
    snprintf(exe, sizeof(exe), "/app/%s", m->entry_point);
    argv[0] = exe;
    for (size_t i = 0; i < m->nargs; i++)
        argv[i + 1] = (char *)m->args[i];
    argv[m->nargs + 1] = NULL;
    app = fork();
    if (app < 0)
        child_fail(a->sync_fd, "fork failed");
    if (app == 0) {
        sigset_t none;
        int channel = -1;
        /* Traced by the init (crash capture) unless in development mode: dumpable for it, then
         * its word that it seized us (or could not), then the app's filter, which refuses
         * ptrace and process_vm_* to the app itself (the init's own filter allows them). */
        close(up[0]);
        close(down[1]);
        if (!s->debug && !s->no_crash_capture && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
            _exit(126);
        if (write(up[1], "x", 1) != 1 || read(down[0], &go, 1) != 1)
            _exit(125);
        close(up[1]);
        close(down[0]);
        if (seccomp_apply(!(s->without & RP_LAYER_SECCOMP_NOTIFY), s->debug, &notify_fd, why,
                          sizeof(why)) != 0)
            child_fail(a->sync_fd, why);
        if (s->debug)
            note_missing(missing, sizeof(missing),
                         "ptrace allowed among its processes (development capability)");
        else if (s->no_crash_capture)
            note_missing(missing, sizeof(missing),
                         "no crash capture (turned off for the device's group)");
        else if (go != '1')
            note_missing(missing, sizeof(missing),
                         "no crash capture (the kernel refused the init's ptrace)");
        layers |= RP_LAYER_SECCOMP;
        if (notify_fd >= 0) {
            layers |= RP_LAYER_SECCOMP_NOTIFY;
            memset(&msg, 0, sizeof(msg));
            msg.type = M_SECCOMP;
            if (send_msg(a->sync_fd, &msg, notify_fd) != 0)
                _exit(125);
            close(notify_fd);
        } else
            note_missing(missing, sizeof(missing),
                         s->without & RP_LAYER_SECCOMP_NOTIFY
                             ? "seccomp refusals are not seen" TURNED_OFF
                               ": refused calls get EPERM and make no event"
                             : "seccomp refusals are not seen (the kernel has no "
                               "SECCOMP_RET_USER_NOTIF): refused calls get EPERM and make no "
                               "event");
        memset(&msg, 0, sizeof(msg));
        msg.type = M_READY;
        msg.value = (int)layers;
        msg.value2 = abi;
        snprintf(msg.text, sizeof(msg.text), "%s", missing);
        if (send_msg(a->sync_fd, &msg, -1) != 0)
            _exit(125);
        setsid();
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
            signal(sig, SIG_DFL);
        umask(077);
        /* The channel first moved above the contract's numbers, so that no dup2 below lands on
         * it (it may be 3), and so that its own dup2 to 4 is a real one (clearing CLOEXEC). */
        if (a->channel_fd >= 0 &&
            (channel = fcntl(a->channel_fd, F_DUPFD_CLOEXEC, RP_APP_MONITOR_FD + 1)) < 0)
            _exit(126);
        if (chdir(m->storage_kb ? "/data" : "/tmp") != 0 || dup2(a->null_fd, STDIN_FILENO) < 0 ||
            dup2(a->log_fd, STDOUT_FILENO) < 0 || dup2(a->log_fd, STDERR_FILENO) < 0 ||
            dup2(a->ready_fd, RP_APP_READY_FD) < 0 ||
            (channel >= 0 && dup2(channel, RP_APP_MONITOR_FD) < 0))
            _exit(126);
        if (close_range(channel >= 0 ? RP_APP_MONITOR_FD + 1 : RP_APP_READY_FD + 1, ~0U, 0) != 0)
            _exit(126);
        execve(exe, argv, envp);
        dprintf(STDERR_FILENO, "rampart: cannot start %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    /* Its init: trace the app for a crash, forward a stop, reap everything, report the app's
     * status. */
    close(up[1]);
    close(down[0]);
    if (read(up[0], &go, 1) == 1 && !s->debug && !s->no_crash_capture)
        traced = ptrace(PTRACE_SEIZE, app, NULL,
                        (void *)(uintptr_t)(PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL)) == 0;
    if (init_seccomp(traced, why, sizeof(why)) != 0) {
        kill(app, SIGKILL);
        child_fail(a->sync_fd, why);
    }
    (void)!write(down[1], traced ? "1" : "0", 1);
    close(up[0]);
    close(down[1]);
    close(a->log_fd);
    close(a->null_fd);
    close(a->ready_fd);
    if (a->channel_fd >= 0)
        close(a->channel_fd); /* the app's alone: its exit closes the channel */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    {
        /* A caller that waits for its signals with signalfd has them blocked, and the init
         * inherited that: unblocked, or a stop would never reach the app. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
    for (;;) {
        int st;
        pid_t w = waitpid(-1, &st, __WALL);
        if (forward_sig) {
            kill(-app, forward_sig);
            forward_sig = 0;
        }
        if (w > 0 && WIFSTOPPED(st)) {
            on_stop(w, st, a->sync_fd);
            continue;
        }
        if (w == app) {
            status = st;
            break;
        }
        if (w < 0 && errno == ECHILD)
            break;
    }
    kill(-1, SIGKILL); /* whatever the app left behind */
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    memset(&msg, 0, sizeof(msg));
    msg.type = M_EXIT;
    msg.value = status;
    (void)send_msg(a->sync_fd, &msg, -1);
    _exit(0);
}

/* ---------------------------------------------------------------- the supervisor */

static void unlock_all(rp_compartment_t *c)
{
    for (int i = 0; i < c->ndevice_locks; i++)
        if (c->device_locks[i] >= 0)
            close(c->device_locks[i]);
    c->ndevice_locks = 0;
}

/* One owner per device (and one compartment per app): a lock held while it runs, released by
 * the kernel if the monitor dies. */
static rp_err_t take_lock(rp_compartment_t *c, const char *kind, const char *name, char *why,
                          size_t cap)
{
    char path[PATH_MAX], flat[RP_MANIFEST_PATH_MAX + 1];
    int fd;

    snprintf(flat, sizeof(flat), "%s", name);
    for (char *p = flat; *p; p++)
        if (*p == '/')
            *p = '_';
    pathf(path, sizeof(path), "%s/run", c->state_dir);
    (void)mkdir(path, 0700);
    pathf(path, sizeof(path), "%s/run/%s", c->state_dir, kind);
    (void)mkdir(path, 0700);
    pathf(path, sizeof(path), "%s/run/%s/%s.lock", c->state_dir, kind, flat);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(why, cap, "cannot lock %s: %s", path, strerror(errno));
        return RP_ERR_IO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return RP_ERR_EXISTS;
    }
    c->device_locks[c->ndevice_locks++] = fd;
    return RP_OK;
}

static rp_err_t check_spec(const rp_compartment_spec_t *s, char *why, size_t cap)
{
    const rp_manifest_t *m = s->manifest;
    struct stat st;

    if (m == NULL || s->state_dir == NULL || s->tree_dir == NULL || s->run_dir == NULL ||
        s->log_path == NULL || s->component == NULL || s->version == NULL ||
        !rp_component_name_valid(s->component, strlen(s->component))) {
        snprintf(why, cap, "compartment: an incomplete spec");
        return RP_ERR_INVALID_ARG;
    }
    if (s->uid == 0 || s->gid == 0) {
        snprintf(why, cap, "compartment: an app never runs as root (uid/gid 0)");
        return RP_ERR_INVALID_ARG;
    }
    if (m->entry_point[0] == '\0' || m->entry_point[0] == '/' || strstr(m->entry_point, "..")) {
        snprintf(why, cap, "compartment: EntryPoint must be a path inside the tree");
        return RP_ERR_INVALID_ARG;
    }
    if (m->storage_kb > 0 && s->storage_image == NULL) {
        snprintf(why, cap, "compartment: MutableStorage without a storage image path");
        return RP_ERR_INVALID_ARG;
    }
    if (s->channel_fd != -1 && (s->channel_fd <= STDERR_FILENO || fstat(s->channel_fd, &st) != 0 ||
                                !S_ISSOCK(st.st_mode))) {
        snprintf(why, cap, "compartment: channel_fd must be -1 (none) or a socket above stderr");
        return RP_ERR_INVALID_ARG;
    }
    if (m->ndevices > RP_MANIFEST_DEVICES_MAX || m->nargs > RP_MANIFEST_ARGS_MAX) {
        snprintf(why, cap, "compartment: too many devices or arguments");
        return RP_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < m->ndevices; i++) {
        const char *d = m->devices[i];
        if (strncmp(d, "/dev/", 5) != 0 || strstr(d, "..") || strstr(d, "//") ||
            lstat(d, &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
            snprintf(why, cap, "compartment: device %s: not a device node under /dev", d);
            return RP_ERR_INVALID_ARG;
        }
    }
    if (stat(s->tree_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, cap, "compartment: the tree %s is not a directory", s->tree_dir);
        return RP_ERR_INVALID_ARG;
    }
    return RP_OK;
}

static int write_map(pid_t pid, const char *file, unsigned id)
{
    char path[64], text[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    snprintf(text, sizeof(text), "%u %u 1\n", id, id);
    return write_text(path, text);
}

/* A refused prlimit64/setrlimit: does it try to raise a hard limit? (The kernel would refuse it
 * anyway: this only decides whether it is a security event.) The caller's memory is read after
 * the call was made: a racing thread can change it, which can only hide a raise from the log,
 * never let one through. */
static bool raises_hard_limit(const struct seccomp_notif *req)
{
    bool is_prlimit = req->data.nr == seccomp_syscall_resolve_name("prlimit64");
    uint64_t ptr = is_prlimit ? req->data.args[2] : req->data.args[1];
    int res = (int)(is_prlimit ? req->data.args[1] : req->data.args[0]);
    pid_t target =
        is_prlimit && req->data.args[0] != 0 ? (pid_t)req->data.args[0] : (pid_t)req->pid;
    struct {
        uint64_t cur, max;
    } want;
    struct rlimit have;
    char path[64];
    int fd;

    snprintf(path, sizeof(path), "/proc/%u/mem", req->pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = pread(fd, &want, sizeof(want), (off_t)ptr);
    close(fd);
    if (n != (ssize_t)sizeof(want) || prlimit(target, res, NULL, &have) != 0)
        return false;
    return want.max > have.rlim_max || want.cur > have.rlim_max;
}

static void handle_notification(rp_compartment_t *c)
{
    struct seccomp_notif *req = NULL;
    struct seccomp_notif_resp *resp = NULL;
    char reason[RP_EVENT_REASON_MAX + 1];

    if (seccomp_notify_alloc(&req, &resp) != 0)
        return;
    if (seccomp_notify_receive(c->notify_fd, req) != 0)
        goto out; /* the caller died meanwhile */
    int nr = req->data.nr;
    char *name = seccomp_syscall_resolve_num_arch(req->data.arch, nr);
    bool rlimit = name && (strcmp(name, "setrlimit") == 0 || strcmp(name, "prlimit64") == 0);
    resp->id = req->id;
    resp->val = 0;
    resp->flags = 0;
    resp->error = -EPERM;
    if (rlimit && !raises_hard_limit(req)) {
        resp->error = 0;
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE; /* lowering or keeping: the kernel's */
    } else if (seccomp_notify_id_valid(c->notify_fd, req->id) == 0) {
        snprintf(reason, sizeof(reason), "%s (%d)%s", name ? name : "?", nr,
                 rlimit ? ": raise a hard limit" : "");
        record(c, RP_EVENT_SYSCALL, reason);
    }
    (void)seccomp_notify_respond(c->notify_fd, resp);
    free(name);
out:
    seccomp_notify_free(req, resp);
}

/* The cgroup counters and the storage: an increase is an event. */
static void check_counters(rp_compartment_t *c)
{
    char text[1024], reason[RP_EVENT_REASON_MAX + 1];
    struct statfs sf;

    c->last_check_ms = now_ms();
    if (c->cg_memory[0] && read_text(c->cg_memory, text, sizeof(text)) == 0) {
        uint64_t n = keyed_value(text, "oom_kill");
        if (n > c->oom_seen) {
            snprintf(reason, sizeof(reason),
                     "%s" RP_EVENT_VERSION_SEP "killed at its memory limit (%llu process%s)",
                     c->version, (unsigned long long)(n - c->oom_seen),
                     n - c->oom_seen > 1 ? "es" : "");
            c->oom_seen = n;
            record(c, RP_EVENT_OOM, reason);
        }
    }
    if (c->cg_pids[0] && read_text(c->cg_pids, text, sizeof(text)) == 0) {
        uint64_t n = keyed_value(text, "max");
        if (n > c->pids_seen) {
            snprintf(reason, sizeof(reason), "refused %llu new process%s at its pids limit",
                     (unsigned long long)(n - c->pids_seen), n - c->pids_seen > 1 ? "es" : "");
            c->pids_seen = n;
            record(c, RP_EVENT_PIDS, reason);
        }
    }
    /* Full: ext4 refuses writes (ENOSPC) while it still counts some blocks free (its own
     * reservations, delayed allocation), so "full" is under 128 KB + 1% left; it counts again
     * once the app has freed twice that. */
    if (c->data_fd >= 0 && fstatfs(c->data_fd, &sf) == 0) {
        uint64_t size = (uint64_t)sf.f_blocks * (uint64_t)sf.f_bsize;
        uint64_t left = (uint64_t)sf.f_bavail * (uint64_t)sf.f_bsize;
        uint64_t near = 128 * 1024 + size / 100;
        bool full = left < near;
        if (full && !c->quota_hit) {
            snprintf(reason, sizeof(reason), "storage full (%llu KB left of %llu KB)",
                     (unsigned long long)left / 1024, (unsigned long long)size / 1024);
            record(c, RP_EVENT_QUOTA, reason);
        }
        if (!full && left < 2 * near)
            full = c->quota_hit; /* between the marks: unchanged */
        c->quota_hit = full;
    }
}

/* The init's capture, the packet after M_CRASH: kept as it came (bounded; the monitor does not
 * read it: crash.h), the first of a run only. */
static void take_crash(rp_compartment_t *c)
{
    uint8_t *buf = c->crash == NULL ? malloc(RP_CRASH_CAPTURE_MAX) : NULL;
    ssize_t n;

    if (buf == NULL)
        return;
    n = recv(c->sync_fd, buf, RP_CRASH_CAPTURE_MAX, MSG_DONTWAIT | MSG_TRUNC);
    if (n <= 0 || n > RP_CRASH_CAPTURE_MAX) {
        free(buf);
        return;
    }
    c->crash = buf;
    c->crash_len = (size_t)n;
}

static void reap(rp_compartment_t *c, int init_status)
{
    msg_t msg;
    struct pollfd p = {.fd = c->sync_fd, .events = POLLIN};

    c->status = init_status; /* unless the init reported the app's own */
    while (c->sync_fd >= 0 && poll(&p, 1, 0) == 1 && recv_msg(c->sync_fd, &msg, NULL) == 1) {
        if (msg.type == M_EXIT)
            c->status = msg.value;
        else if (msg.type == M_CRASH)
            take_crash(c);
    }
    c->exited = true;
    check_counters(c);
    c->run.pid =
        0; /* the init was never a group leader on the host: close the pipe, kill no group */
    rp_app_exited(&c->run);
}

/* The log's newest RP_COMPARTMENT_LOG_KEEP bytes, once it passes RP_COMPARTMENT_LOG_MAX. Only the
 * monitor writes the file (the app has the pipe), so nothing is lost to a race here. */
static void log_cut(rp_compartment_t *c)
{
    static uint8_t tail[RP_COMPARTMENT_LOG_KEEP];
    struct stat st;

    if (fstat(c->log_out, &st) != 0 || st.st_size <= RP_COMPARTMENT_LOG_MAX)
        return;
    if (rp_pread_all(c->log_out, tail, sizeof(tail), (uint64_t)st.st_size - sizeof(tail)) !=
            RP_OK ||
        pwrite(c->log_out, tail, sizeof(tail), 0) != (ssize_t)sizeof(tail) ||
        ftruncate(c->log_out, sizeof(tail)) != 0 || lseek(c->log_out, sizeof(tail), SEEK_SET) < 0)
        rp_log_warn("%s: its log cannot be cut back", c->component);
}

/* Move what the app wrote into its log: at most the second's budget (all = the app is gone: what
 * is left, up to RP_COMPARTMENT_LOG_MAX). */
static void log_drain(rp_compartment_t *c, bool all)
{
    static uint8_t buf[64 * 1024];
    long moved = 0, now = now_ms();

    if (c->log_in < 0)
        return;
    if (now - c->log_refill_ms >= 1000) {
        c->log_budget = RP_COMPARTMENT_LOG_RATE;
        c->log_refill_ms = now;
    }
    while (all ? moved < RP_COMPARTMENT_LOG_MAX : c->log_budget > 0) {
        size_t want = sizeof(buf);
        if (!all && (long)want > c->log_budget)
            want = (size_t)c->log_budget;
        ssize_t n = read(c->log_in, buf, want);
        if (n <= 0)
            break; /* nothing more now (EAGAIN), or every writer is gone */
        if (c->log_out >= 0 && rp_write_all(c->log_out, buf, (size_t)n) != RP_OK)
            rp_log_warn("%s: its log cannot be written", c->component);
        moved += n;
        if (!all)
            c->log_budget -= n;
        log_cut(c);
    }
}

bool rp_compartment_poll(rp_compartment_t *c, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;

    log_drain(c, false);
    while (c->pid > 0 && !c->exited) {
        struct pollfd p[4] = {
            {.fd = c->notify_fd,                       .events = POLLIN},
            {.fd = c->pidfd,                           .events = POLLIN},
            {.fd = c->run.ready_fd,                    .events = POLLIN},
            {.fd = c->log_budget > 0 ? c->log_in : -1, .events = POLLIN},
        };
        long left = deadline - now_ms(), wait;
        int st;

        if (left < 0)
            left = 0;
        wait = left < RP_COMPARTMENT_CHECK_MS ? left : RP_COMPARTMENT_CHECK_MS;
        if (c->pidfd < 0 && wait > 50)
            wait = 50; /* no pidfd: look at the child often */
        if (c->log_in >= 0 && c->log_budget <= 0 && wait > 100)
            wait = 100; /* its budget comes back within the second */
        if (poll(p, 4, (int)wait) > 0) {
            if (p[0].revents & POLLIN)
                handle_notification(c);
            if (p[2].revents)
                (void)rp_app_poll_ready(&c->run);
        }
        log_drain(c, false);
        if (now_ms() - c->last_check_ms >= RP_COMPARTMENT_CHECK_MS)
            check_counters(c);
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
            reap(c, st);
            break;
        }
        if (left == 0)
            break;
    }
    return c->exited;
}

void rp_compartment_fds(const rp_compartment_t *c, int fds[RP_COMPARTMENT_FDS])
{
    fds[0] = c->notify_fd;
    fds[1] = c->pidfd;
    fds[2] = c->run.ready_fd;
    fds[3] = c->log_budget > 0 ? c->log_in : -1;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void rp_compartment_stop(rp_compartment_t *c)
{
    char reason[RP_EVENT_REASON_MAX + 1];

    if (c->pid > 0 && !c->exited) {
        kill(c->pid, SIGTERM); /* its init forwards it to the app's group */
        (void)rp_compartment_poll(c, RP_APP_STOP_GRACE_MS);
        if (!c->exited) {
            int st;
            kill(c->pid, SIGKILL); /* the whole pid namespace goes with its init */
            while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
                ;
            reap(c, st);
        }
    }
    if (c->events_suppressed > 0) {
        snprintf(reason, sizeof(reason), "%u further refusals in this run not recorded",
                 c->events_suppressed);
        c->events = 0;
        c->events_suppressed = 0;
        record(c, RP_EVENT_SYSCALL, reason);
    }
    log_drain(c, true); /* its last words (the whole namespace is gone: no writer is left) */
    close_fd(&c->log_in);
    close_fd(&c->log_out);
    close_fd(&c->notify_fd);
    close_fd(&c->pidfd);
    close_fd(&c->data_fd);
    close_fd(&c->sync_fd);
    free(c->crash);
    c->crash = NULL;
    c->crash_len = 0;
    c->run.pid = 0;
    rp_app_exited(&c->run);
    cgroups_remove(c);
    unlock_all(c);
    c->pid = 0;
}

rp_err_t rp_compartment_start(const rp_compartment_spec_t *s, rp_compartment_t *c, char *why,
                              size_t cap)
{
    const rp_manifest_t *m;
    child_args_t a;
    int sv[2] = {-1, -1}, pipefd[2] = {-1, -1}, logpipe[2] = {-1, -1}, nullfd = -1, st;
    long deadline;
    msg_t msg;
    rp_err_t err;
    char reason[RP_EVENT_REASON_MAX + 1];

    memset(c, 0, sizeof(*c));
    c->pidfd = c->notify_fd = c->data_fd = c->sync_fd = c->run.ready_fd = -1;
    c->log_in = c->log_out = -1;
    why[0] = '\0';
    if ((err = check_spec(s, why, cap)) != RP_OK)
        return err;
    m = s->manifest;
    snprintf(c->component, sizeof(c->component), "%s", s->component);
    snprintf(c->version, sizeof(c->version), "%s", s->version);
    snprintf(c->state_dir, sizeof(c->state_dir), "%s", s->state_dir);
    c->layers = 0;

    if ((err = take_lock(c, "apps", s->component, why, cap)) != RP_OK) {
        if (err == RP_ERR_EXISTS)
            snprintf(why, cap, "%s is already running in a compartment", s->component);
        return err;
    }
    for (size_t i = 0; i < m->ndevices; i++)
        if ((err = take_lock(c, "devices", m->devices[i], why, cap)) != RP_OK) {
            if (err == RP_ERR_EXISTS) {
                snprintf(why, cap, "device %s is owned by another running app", m->devices[i]);
                snprintf(reason, sizeof(reason), "%.200s: owned by another running app", m->devices[i]);
                record(c, RP_EVENT_DEVICE, reason);
            }
            goto fail;
        }
    if (m->storage_kb > 0 && (err = storage_ensure(s, why, cap)) != RP_OK)
        goto fail;
    {
        char root[PATH_MAX];
        snprintf(root, sizeof(root), "%s/root", s->run_dir);
        if ((mkdir(root, 0755) != 0 && errno != EEXIST)) {
            snprintf(why, cap, "cannot make %s: %s", root, strerror(errno));
            err = RP_ERR_IO;
            goto fail;
        }
        memset(&a, 0, sizeof(a));
        snprintf(a.root, sizeof(a.root), "%s", root);
    }
    cgroups_setup(c, m, s->without & RP_LAYER_OPTIONAL);

    err = RP_ERR_IO;
    /* Read and written here alone: no O_APPEND (a cut writes at 0, and Linux's pwrite appends on
     * an O_APPEND file whatever the offset); writes go at the end, where the offset stays. */
    c->log_out = open(s->log_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (c->log_out >= 0 && lseek(c->log_out, 0, SEEK_END) < 0)
        close_fd(&c->log_out);
    nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (c->log_out < 0 || nullfd < 0 || pipe2(pipefd, O_CLOEXEC) != 0 ||
        pipe2(logpipe, O_CLOEXEC) != 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(why, cap, "cannot start: %s: %s", c->log_out < 0 ? s->log_path : "a descriptor",
                 strerror(errno));
        goto fail;
    }
    c->log_in = logpipe[0];
    logpipe[0] = -1;
    (void)fcntl(c->log_in, F_SETFL, fcntl(c->log_in, F_GETFL) | O_NONBLOCK);
    c->log_budget = RP_COMPARTMENT_LOG_RATE;
    c->log_refill_ms = now_ms();
    a.spec = s;
    a.sync_fd = sv[1];
    a.log_fd = logpipe[1];
    a.null_fd = nullfd;
    a.ready_fd = pipefd[1];
    a.channel_fd = s->channel_fd;
    pid_t pid = (pid_t)syscall(SYS_clone,
                               CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
                                   CLONE_NEWNET | SIGCHLD,
                               NULL, NULL, NULL, NULL);
    if (pid < 0) {
        snprintf(why, cap,
                 "cannot make the compartment's namespaces: %s (mount, pid, ipc, uts "
                 "and net namespaces are required)",
                 strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        close(sv[0]);
        close(pipefd[0]);
        close(c->log_in);
        /* The monitor's death (the thread that started it) ends the compartment: nothing runs
         * unsupervised. If it died already, the first recv below sees the socket closed. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        _exit(child_main(&a));
    }
    close(sv[1]);
    sv[1] = -1;
    close(pipefd[1]);
    pipefd[1] = -1;
    close_fd(&logpipe[1]);
    close_fd(&nullfd);
    c->pid = pid;
    c->sync_fd = sv[0];
    c->run.pid = pid;
    c->run.ready_fd = pipefd[0];
    pipefd[0] = -1;
    (void)fcntl(c->run.ready_fd, F_SETFL, fcntl(c->run.ready_fd, F_GETFL) | O_NONBLOCK);
    c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

    if (cgroups_add(c, pid) != 0) {
        snprintf(why, cap, "cannot put the compartment in its cgroups: %s", strerror(errno));
        goto fail;
    }
    if (s->net_setup != NULL && s->net_setup(pid, s->net_ctx) != 0) {
        snprintf(why, cap, "the network policy could not set up the compartment's network");
        goto fail;
    }
    memset(&msg, 0, sizeof(msg));
    msg.type = M_GO;
    if (send_msg(c->sync_fd, &msg, -1) != 0) {
        snprintf(why, cap, "the compartment's child died before it started");
        goto fail;
    }
    /* Its setup, with a deadline; notifications answered meanwhile. */
    deadline = now_ms() + SETUP_DEADLINE_MS;
    for (bool ready = false; !ready;) {
        struct pollfd p[2] = {
            {.fd = c->sync_fd,   .events = POLLIN},
            {.fd = c->notify_fd, .events = POLLIN}
        };
        long left = deadline - now_ms();
        int got_fd, r;
        if (left <= 0) {
            snprintf(why, cap, "the compartment did not finish its setup in %d ms",
                     SETUP_DEADLINE_MS);
            goto fail;
        }
        if (poll(p, 2, (int)left) <= 0)
            continue;
        if (p[1].revents & POLLIN)
            handle_notification(c);
        if (!(p[0].revents & (POLLIN | POLLHUP)))
            continue;
        r = recv_msg(c->sync_fd, &msg, &got_fd);
        if (r != 1) {
            snprintf(why, cap, "the compartment's setup died");
            goto fail;
        }
        switch (msg.type) {
        case M_USERNS:
            if (msg.value) {
                msg_t mapped = {.type = M_MAPPED};
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
                if (write_text(path, "deny") != 0 || write_map(pid, "uid_map", s->uid) != 0 ||
                    write_map(pid, "gid_map", s->gid) != 0 || send_msg(c->sync_fd, &mapped, -1)) {
                    snprintf(why, cap, "cannot map the app's user namespace: %s", strerror(errno));
                    goto fail;
                }
            }
            break;
        case M_SECCOMP: c->notify_fd = got_fd; break;
        case M_READY:
            c->layers |= (unsigned)msg.value;
            c->landlock_abi = msg.value2;
            if (msg.text[0])
                note_missing(c->missing, sizeof(c->missing), msg.text);
            ready = true;
            break;
        case M_ERROR: snprintf(why, cap, "the compartment's setup failed: %s", msg.text); goto fail;
        default:
            if (got_fd >= 0)
                close(got_fd);
            break;
        }
    }
    if (m->storage_kb > 0) {
        char path[128];
        snprintf(path, sizeof(path), "/proc/%d/root/data", (int)pid);
        c->data_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    clock_gettime(CLOCK_MONOTONIC, &c->run.started);
    c->last_check_ms = now_ms();
    if (c->missing[0])
        rp_log_warn("%s: compartment without some layers: %s", c->component, c->missing);
    return RP_OK;
fail:
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
            ;
        c->exited = true;
    }
    close_fd(&logpipe[1]);
    close_fd(&nullfd);
    close_fd(&pipefd[0]);
    close_fd(&pipefd[1]);
    close_fd(&sv[1]);
    c->events_suppressed = 0;
    rp_compartment_stop(c);
    return err == RP_OK ? RP_ERR_IO : err;
}

/* ---------------------------------------------------------------- after a crash */

static int cleanup_cgroups_in(const char *parent, uint32_t tag)
{
    DIR *d = opendir(parent);
    struct dirent *e;
    char dir[PATH_MAX];
    int found = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char suffix[16];
        size_t len = strlen(e->d_name);
        snprintf(suffix, sizeof(suffix), ".%08x", tag);
        if (e->d_type != DT_DIR || strncmp(e->d_name, CG_PREFIX, strlen(CG_PREFIX)) != 0 ||
            len < strlen(suffix) || strcmp(e->d_name + len - strlen(suffix), suffix) != 0)
            continue;
        snprintf(dir, sizeof(dir), "%s/%s", parent, e->d_name);
        found++;
        if (cgroup_remove(dir) == 0)
            rp_log_info("removed a leftover cgroup %s", dir);
        else
            rp_log_error("cannot remove the leftover cgroup %s: %s", dir, strerror(errno));
    }
    closedir(d);
    return found;
}

int rp_compartment_cleanup(const char *state_dir, const char *run_dir)
{
    static const char *const ctl[3] = {"memory", "pids", "cpu"};
    char mnt[512], own[512], parent[PATH_MAX], real_state[PATH_MAX], line[1024];
    int found = 0;
    uint32_t tag = state_tag(state_dir);

    for (int i = 0; i < 3; i++)
        if (cgroup_mount(ctl[i], mnt, sizeof(mnt)) == 0 &&
            own_cgroup(ctl[i], own, sizeof(own)) == 0) {
            snprintf(parent, sizeof(parent), "%s%s", mnt, own);
            found += cleanup_cgroups_in(parent, tag);
        }
    if (cgroup_mount(NULL, mnt, sizeof(mnt)) == 0 &&
        cg_parent(mnt, NULL, parent, sizeof(parent)) == 0)
        found += cleanup_cgroups_in(parent, tag); /* beside the monitor's leaf, if it moved */
    /* Mounts under run_dir in the monitor's own namespace (none in normal running: the
     * compartment's are in its own namespace). */
    if (run_dir != NULL) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        size_t rl = strlen(run_dir);
        char mp[PATH_MAX];
        while (f != NULL && fgets(line, sizeof(line), f))
            if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strncmp(mp, run_dir, rl) == 0 &&
                (mp[rl] == '/' || mp[rl] == '\0') && umount2(mp, MNT_DETACH) == 0) {
                rp_log_info("unmounted a leftover %s", mp);
                found++;
            }
        if (f != NULL)
            fclose(f);
    }
    /* Loop devices still backed by a storage image (a compartment whose processes outlived
     * the monitor: their cgroup was emptied above, so autoclear follows; this covers a device
     * attached but never mounted). */
    if (state_dir != NULL && realpath(state_dir, real_state) != NULL) {
        DIR *d = opendir("/sys/block");
        struct dirent *e;
        size_t sl = strlen(real_state);
        while (d != NULL && (e = readdir(d)) != NULL) {
            char path[PATH_MAX], back[PATH_MAX];
            if (strncmp(e->d_name, "loop", 4) != 0)
                continue;
            snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", e->d_name);
            if (read_text(path, back, sizeof(back)) != 0 || strncmp(back, real_state, sl) != 0 ||
                back[sl] != '/')
                continue;
            snprintf(path, sizeof(path), "/dev/%s", e->d_name);
            int fd = open(path, O_RDWR | O_CLOEXEC);
            if (fd >= 0) {
                if (ioctl(fd, LOOP_CLR_FD, 0) == 0)
                    rp_log_info("detached a leftover %s", path);
                close(fd);
            }
            found++;
        }
        if (d != NULL)
            closedir(d);
    }
    return found;
}
