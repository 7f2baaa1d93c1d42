/*
 * An app's compartment (compartment.h), the monitor's side: the locks, the storage, the
 * namespaces' creation and their host-privileged setup (uid maps, cgroups, the network, the
 * storage's mount), and then its supervision (notifications answered and recorded, cgroup
 * counters read, the quota watched). What is built inside the namespaces is rampart-launcher's
 * (device/launcher/main.c), which holds no host privilege: launch.h is the protocol.
 *
 * How a start goes (docs/compartments.md, "Enforcement"):
 *   supervisor: device and app locks, the storage image (mke2fs on first start) attached to a
 *     loop device and mounted detached (fsmount: nothing of it in any namespace yet), the cgroups,
 *     the log file (opened and handed over, never read here) and pipes; clone(new user U1,
 *     mount, pid, ipc, uts, net namespaces) -> child C, pid 1 inside; every namespace is owned
 *     by U1
 *   supervisor: U1's maps (the app's host uid and gid as themselves, nothing else: no root), C
 *     into the cgroups, the net_setup hook (as host root, in C's network namespace), the names'
 *     addresses on NET, "go", then the spec (rp_launch_spec_t)
 *   C (the monitor's code, a few lines): opens its tree and run_dir/root as O_PATH descriptors,
 *     drops its supplementary groups, becomes the app's uid and gid (ambient capabilities in U1),
 *     and execs
 *     rampart-launcher from the descriptor opened at the monitor's start; from there it holds
 *     capabilities in U1 only (what any user gets with `unshare -Ur`)
 *   the launcher builds the root, makes the app's own user namespace U2 (owning nothing), fences
 *     itself and forks the app; it stays as its init, moves the app's stdout and stderr into
 *     its log (cut back, rate-bounded) and reports the app's exit (launch.h).
 * Its namespace dies with the init, which unmounts /data and lets the loop device go
 * (LO_FLAGS_AUTOCLEAR) once the monitor closes its descriptor of the mount.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/loop.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compartment.h"
#include "crash.h"
#include "events.h"
#include "launch.h"
#include "rampart/file.h"
#include "rampart/log.h"

#define CG_PREFIX "rampart."
/* cgroup v2: the leaf the monitor's processes move into (never CG_PREFIX...: the cleanup of
 * leftovers would take it, and kill what is in it). */
#define CG_LEAF "rampart-monitor"
#define SETUP_DEADLINE_MS 15000
#define PATH_ENV "PATH=/usr/local/bin:/usr/bin:/bin"
#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif

/* ---------------------------------------------------------------- small helpers */

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

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
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

/* The number after "key " in a flat-keyed cgroup file; 0 if absent. */
static uint64_t keyed_value(const char *text, const char *key)
{
    size_t klen = strlen(key);

    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
            return strtoull(p + klen + 1, NULL, 10);
    return 0;
}

/* An event recorded whatever the run's budget spent: one that comes at most once a run (the log's
 * quota, the summary of what the budget left out), so that an app cannot hide it. */
static void record_once(rp_compartment_t *c, rp_event_kind_t kind, const char *reason)
{
    if (rp_event_record(c->state_dir, kind, c->component, reason) != RP_OK)
        rp_log_error("%s: cannot record a %s event (%s) in %s/events", c->component,
                     rp_event_kind_name(kind), reason, c->state_dir);
}

static void record(rp_compartment_t *c, rp_event_kind_t kind, const char *reason)
{
    if (c->events >= RP_COMPARTMENT_EVENTS_PER_RUN) {
        c->events_suppressed++;
        return;
    }
    c->events++;
    record_once(c, kind, reason);
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

/* ---------------------------------------------------------------- cgroups */

/* Where this process sits in the hierarchy mounted at mnt: the path from /proc/self/cgroup of
 * the line naming controller (v1), or of the "0::" line (v2, controller NULL). */
static int own_cgroup(const char *controller, char *out, size_t cap)
{
    char buf[4096], *save = NULL;

    if (rp_launch_read_text("/proc/self/cgroup", buf, sizeof(buf)) != 0)
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
    return rp_launch_pathf(out, cap, "%.*s", (int)n, own);
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
    return rp_launch_pathf(out, cap, "%s%s", mnt, base);
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
    int64_t deadline = now_ms() + 5000;

    while (rmdir(dir) != 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != EBUSY || now_ms() > deadline)
            return -1;
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        if (rp_launch_read_text(procs, buf, sizeof(buf)) == 0)
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
    if (done < 0 || rp_launch_pathf(leaf, sizeof(leaf), "%s/" CG_LEAF, dir) != 0 ||
        rp_launch_pathf(procs, sizeof(procs), "%s/cgroup.procs", dir) != 0 ||
        (mkdir(leaf, 0755) != 0 && errno != EEXIST) ||
        rp_launch_read_text(procs, buf, sizeof(buf)) != 0) {
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
            snprintf(note, sizeof(note), "no %s limit" RP_LAUNCH_TURNED_OFF, ctl[i]);
            rp_launch_note(c->missing, sizeof(c->missing), note);
            continue;
        }
        if (cgroup_mount(ctl[i], mnt, sizeof(mnt)) == 0 &&
            own_cgroup(ctl[i], own, sizeof(own)) == 0) {
            /* v1: this controller's own hierarchy */
            rp_launch_pathf(dir, sizeof(dir), "%s%s/" CG_PREFIX "%s.%08x", mnt, own, c->component,
                            state_tag(c->state_dir));
            if (cg_make(dir) == 0) {
                snprintf(c->cg_dir[c->ncg++], sizeof(c->cg_dir[0]), "%s", dir);
                if (i == 0) {
                    snprintf(text, sizeof(text), "%llu", (unsigned long long)m->memory_kb * 1024);
                    ok = cg_write(dir, "memory.limit_in_bytes", text) == 0;
                    (void)cg_write(dir, "memory.memsw.limit_in_bytes", text); /* no swap escape */
                    rp_launch_pathf(c->cg_memory, sizeof(c->cg_memory), "%s/memory.oom_control",
                                    dir);
                } else if (i == 1) {
                    snprintf(text, sizeof(text), "%u", m->pids);
                    ok = cg_write(dir, "pids.max", text) == 0;
                    rp_launch_pathf(c->cg_pids, sizeof(c->cg_pids), "%s/pids.events", dir);
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
                rp_launch_pathf(v2dir, sizeof(v2dir), "%s/" CG_PREFIX "%s.%08x", parent,
                                c->component, state_tag(c->state_dir));
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
            rp_launch_pathf(note, sizeof(note), "%s/cgroup.controllers", parent);
            (void)rp_launch_read_text(note, avail, sizeof(avail));
            avail[strcspn(avail, "\n")] = '\0';
            rp_launch_pathf(note, sizeof(note), "%s/cgroup.subtree_control", parent);
            (void)rp_launch_read_text(note, enabled, sizeof(enabled));
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
                (void)rp_launch_pathf(c->cg_memory, sizeof(c->cg_memory), "%s/memory.events",
                                      v2dir);
            } else if (i == 1) {
                snprintf(text, sizeof(text), "%u", m->pids);
                ok = cg_write(v2dir, "pids.max", text) == 0;
                (void)rp_launch_pathf(c->cg_pids, sizeof(c->cg_pids), "%s/pids.events", v2dir);
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
            rp_launch_note(c->missing, sizeof(c->missing), note);
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

/* The storage image on its loop device, mounted detached (fsmount: in no namespace until the
 * launcher attaches it at /data, which it could not mount itself: a block file system is not
 * mountable from a user namespace); its root the app's, 0700. Returns a descriptor of the mount,
 * or -1 (why says why). */
static int storage_mount(const rp_compartment_spec_t *s, char *why, size_t cap)
{
    char dev[64];
    int lfd = loop_attach(s->storage_image, dev, sizeof(dev)), fs = -1, mnt = -1, dir = -1;

    if (lfd < 0) {
        snprintf(why, cap, "attach a loop device to %.200s: %s", s->storage_image, strerror(errno));
        return -1;
    }
    fs = fsopen("ext4", FSOPEN_CLOEXEC);
    if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "source", dev, 0) != 0 ||
        fsconfig(fs, FSCONFIG_SET_STRING, "errors", "remount-ro", 0) != 0 ||
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0 ||
        (mnt = fsmount(fs, FSMOUNT_CLOEXEC,
                       MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)) < 0 ||
        (dir = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        fchown(dir, s->uid, s->gid) != 0 || fchmod(dir, 0700) != 0) {
        snprintf(why, cap, "mount the storage image %.200s: %s", s->storage_image, strerror(errno));
        if (mnt >= 0)
            close(mnt);
        mnt = -1;
    }
    if (dir >= 0)
        close(dir);
    if (fs >= 0)
        close(fs);
    close(lfd); /* the mount holds it now; when the mount goes, so does the loop device */
    return mnt;
}

/* ---------------------------------------------------------------- the child, until the launcher */

/* rampart-launcher, opened once (rp_compartment_launcher_open): started from this descriptor,
 * never by its path again. */
static int launcher_fd = -1;

/* The rule of the launcher's file and its directory: owned by root (or whoever runs this), and
 * writable by that owner alone. */
static bool owner_alone(const struct stat *st)
{
    return (st->st_uid == 0 || st->st_uid == geteuid()) && (st->st_mode & 022) == 0;
}

/* The directory path is in (".": none named) follows owner_alone: else someone else could have
 * put another file at path before it was opened. */
static bool dir_owner_alone(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    struct stat st;

    if (n >= sizeof(dir))
        return false;
    memcpy(dir, slash == NULL ? "." : path, n);
    dir[n] = '\0';
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && owner_alone(&st);
}

rp_err_t rp_compartment_launcher_open(const char *path, char *why, size_t cap)
{
    char self[PATH_MAX];
    struct stat st;
    int fd;

    if (launcher_fd >= 0)
        return RP_OK;
    if (path == NULL) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash = n > 0 ? memrchr(self, '/', (size_t)n) : NULL;
        if (slash == NULL || (size_t)(slash - self) + sizeof("/rampart-launcher") > sizeof(self)) {
            snprintf(why, cap, "cannot find rampart-launcher");
            return RP_ERR_NOT_FOUND;
        }
        memcpy(slash, "/rampart-launcher", sizeof("/rampart-launcher"));
        path = self;
    }
    fd = open(path, O_PATH | O_CLOEXEC);
    /* It builds the fences: a file anyone but its owner (root, or whoever runs this) could
     * change, or put there, would be someone else's sandbox. */
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !owner_alone(&st) ||
        !dir_owner_alone(path)) {
        snprintf(why, cap, "%.200s: %s", path,
                 fd < 0 ? strerror(errno)
                 : !S_ISREG(st.st_mode) || !owner_alone(&st)
                     ? "not a regular file of root's, writable by it alone"
                     : "its directory is not root's, writable by it alone");
        if (fd >= 0)
            close(fd);
        return fd < 0 ? RP_ERR_NOT_FOUND : RP_ERR_DENIED;
    }
    launcher_fd = fd;
    return RP_OK;
}

typedef struct child_args {
    const rp_compartment_spec_t *spec;
    int sync_fd, log_fd, null_fd, channel_fd, net_fd, data_fd, bucket_fd;
    char root[PATH_MAX];
} child_args_t;

static void child_fail(int sync_fd, const char *what)
{
    rp_launch_msg_t m = {.type = RP_LAUNCH_ERROR};
    snprintf(m.text, sizeof(m.text), "%s: %s", what, strerror(errno));
    (void)rp_launch_send(sync_fd, &m, -1);
    _exit(126);
}

/* C's capabilities in U1 (all of them, as U1's first process), made ambient: kept across the
 * launcher's exec although its uid is not 0 there. 0, or -1. */
static int caps_ambient(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];

    if (syscall(SYS_capget, &hdr, data) != 0)
        return -1;
    data[0].inheritable = data[0].permitted;
    data[1].inheritable = data[1].permitted;
    if (syscall(SYS_capset, &hdr, data) != 0)
        return -1;
    for (int c = 0; c <= 63; c++)
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0 && errno != EINVAL)
            return -1;
    return 0;
}

/* C, between the clone and the launcher's exec: as little of the monitor's code as can be. It is
 * in U1, still the host's uid 0 (the owner of the state directory's directories, which it opens
 * for the launcher in this mount namespace), then the app's uid and gid, its capabilities in U1
 * kept for the launcher. */
static int child_main(const child_args_t *a)
{
    char args[RP_LAUNCH_ARGS][16];
    char *argv[RP_LAUNCH_ARGS + 2] = {"rampart-launcher"}, *envp[] = {NULL};
    int fds[RP_LAUNCH_ARGS] = {a->sync_fd, a->log_fd, a->null_fd, a->channel_fd, -1,
                               -1,         a->net_fd, a->data_fd, a->bucket_fd};
    rp_launch_msg_t msg;

    if (rp_launch_recv(a->sync_fd, &msg, NULL) != 1 || msg.type != RP_LAUNCH_GO)
        _exit(125); /* the supervisor gave up */
    fds[4] = open(a->spec->tree_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    fds[5] = open(a->root, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fds[4] < 0 || fds[5] < 0)
        child_fail(a->sync_fd, "cannot open the app's tree or run directory");
    if (setgroups(0, NULL) != 0 || setresgid(a->spec->gid, a->spec->gid, a->spec->gid) != 0 ||
        setresuid(a->spec->uid, a->spec->uid, a->spec->uid) != 0 || caps_ambient() != 0)
        child_fail(a->sync_fd, "cannot become the app's uid in the compartment's user namespace");
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) /* the uid change cleared it */
        child_fail(a->sync_fd, "cannot set the parent-death signal");
    /* Nothing of the monitor's (its socket, other compartments' descriptors) past the exec. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        child_fail(a->sync_fd, "close_range");
    for (int i = 0; i < RP_LAUNCH_ARGS; i++) {
        if (fds[i] >= 0 && fcntl(fds[i], F_SETFD, 0) != 0)
            child_fail(a->sync_fd, "fcntl");
        snprintf(args[i], sizeof(args[i]), "%d", fds[i]);
        argv[i + 1] = args[i];
    }
    argv[RP_LAUNCH_ARGS + 1] = NULL;
    syscall(SYS_execveat, launcher_fd, "", argv, envp, AT_EMPTY_PATH);
    child_fail(a->sync_fd, "cannot start rampart-launcher");
    return 126;
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
    rp_launch_pathf(path, sizeof(path), "%s/run", c->state_dir);
    (void)mkdir(path, 0700);
    rp_launch_pathf(path, sizeof(path), "%s/run/%s", c->state_dir, kind);
    (void)mkdir(path, 0700);
    rp_launch_pathf(path, sizeof(path), "%s/run/%s/%s.lock", c->state_dir, kind, flat);
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

/* The launcher's spec, one packet after "go". 0, or -1. */
static int send_spec(int fd, const rp_compartment_spec_t *s)
{
    rp_launch_spec_t *l = calloc(1, sizeof(*l));
    int room = 2 * (int)sizeof(*l), rc;

    if (l == NULL)
        return -1;
    l->manifest = *s->manifest;
    snprintf(l->component, sizeof(l->component), "%s", s->component);
    snprintf(l->version, sizeof(l->version), "%s", s->version);
    l->uid = (uint32_t)s->uid;
    l->gid = (uint32_t)s->gid;
    l->without = s->without & RP_LAYER_OPTIONAL;
    l->debug = s->debug;
    l->no_crash_capture = s->no_crash_capture;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
    rc = send(fd, l, sizeof(*l), MSG_NOSIGNAL) == (ssize_t)sizeof(*l) ? 0 : -1;
    free(l);
    return rc;
}

/* U1's map of pid's file (uid_map, gid_map): the app's id as itself, and nothing else. */
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
    if (c->cg_memory[0] && rp_launch_read_text(c->cg_memory, text, sizeof(text)) == 0) {
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
    if (c->cg_pids[0] && rp_launch_read_text(c->cg_pids, text, sizeof(text)) == 0) {
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

/* What the init reported since (launch.h), at most max packets: the app said "ready" (the init
 * reads its ready pipe and keeps the rule, app.h, and its watchdog), a crash and its capture, the
 * watchdog's kill, its log's first drop (a quota event, once a run), the app's exit. Nothing the
 * app wrote is read here. */
static void take_reports(rp_compartment_t *c, int max)
{
    static uint8_t capture[RP_CRASH_CAPTURE_MAX];
    rp_launch_msg_t msg;
    struct pollfd p = {.fd = c->sync_fd, .events = POLLIN};
    size_t len;

    while (max-- > 0 && !c->sync_gone && poll(&p, 1, 0) == 1) {
        int r = rp_launch_recv_report(c->sync_fd, &msg, capture, sizeof(capture), &len, NULL);
        if (r == 0)
            c->sync_gone = true; /* the init is gone, or closed it: nothing more comes */
        else if (r == 1 && msg.type == RP_LAUNCH_APP_READY)
            c->run.ready = true;
        else if (r == 1 && msg.type == RP_LAUNCH_WATCHDOG)
            c->watchdog_missed = true;
        else if (r == 1 && msg.type == RP_LAUNCH_LOG_DROPPED && !c->log_dropped) {
            char reason[RP_EVENT_REASON_MAX + 1];
            snprintf(reason, sizeof(reason),
                     "its log dropped %d bytes: it wrote faster than %d bytes a second (%d at "
                     "once); the log says each drop",
                     msg.value, RP_COMPARTMENT_LOG_RATE, RP_COMPARTMENT_LOG_BURST);
            c->log_dropped = true;
            record_once(c, RP_EVENT_QUOTA, reason);
        } else if (r == 1 && msg.type == RP_LAUNCH_EXIT) {
            c->app_status = msg.value;
            c->app_reported = true;
        } else if (r == 1 && msg.type == RP_LAUNCH_CRASH && len == 0)
            rp_log_warn("%s: its app crashed, but %s", c->component, msg.text);
        else if (r == 1 && msg.type == RP_LAUNCH_CRASH && c->crash == NULL &&
                 (c->crash = malloc(len)) != NULL) {
            /* kept as it came (the monitor does not read it: crash.h), a run's first only */
            memcpy(c->crash, capture, len);
            c->crash_len = len;
        }
    }
}

static void reap(rp_compartment_t *c, int init_status)
{
    take_reports(c, INT_MAX); /* a dead init's are all queued already */
    c->status = c->app_reported ? c->app_status : init_status;
    c->exited = true;
    check_counters(c);
}

bool rp_compartment_poll(rp_compartment_t *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;

    while (c->pid > 0 && !c->exited) {
        struct pollfd p[3] = {
            {.fd = c->notify_fd,                   .events = POLLIN},
            {.fd = c->pidfd,                       .events = POLLIN},
            {.fd = c->sync_gone ? -1 : c->sync_fd, .events = POLLIN},
        };
        long left = (long)(deadline - now_ms()), wait;
        int st;

        if (left < 0)
            left = 0;
        wait = left < RP_COMPARTMENT_CHECK_MS ? left : RP_COMPARTMENT_CHECK_MS;
        if (c->pidfd < 0 && wait > 50)
            wait = 50; /* no pidfd: look at the child often */
        if (poll(p, 3, (int)wait) > 0) {
            if (p[0].revents & POLLIN)
                handle_notification(c);
            if (p[2].revents)
                take_reports(c, RP_COMPARTMENT_REPORTS);
        }
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
    fds[2] = c->sync_gone ? -1 : c->sync_fd;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

rp_err_t rp_compartment_hosts(rp_compartment_t *c, const rp_launch_hosts_t *h)
{
    int unread = -1;
    unsigned char status;
    char note[160];
    bool failed = false;

    /* The keeper's answers to the earlier updates: 0 written, else why not (its errno). */
    while (c->hosts_fd >= 0 && recv(c->hosts_fd, &status, 1, MSG_DONTWAIT) == 1) {
        failed = failed || status != 0;
        if (status != 0 && !c->hosts_failed) {
            c->hosts_failed = true;
            snprintf(note, sizeof(note),
                     "its /etc/hosts no longer follows its names' addresses (its hosts keeper "
                     "cannot write it: %s)",
                     strerror(status));
            rp_launch_note(c->missing, sizeof(c->missing), note);
        }
    }

    /* The previous update still unread (SIOCOUTQ: what the keeper has not taken) means a keeper
     * that no longer reads: one update is enough to say so (review r7: M1). */
    if (c->hosts_fd >= 0 && ioctl(c->hosts_fd, SIOCOUTQ, &unread) == 0 && unread == 0 &&
        send(c->hosts_fd, h, sizeof(*h), MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(*h))
        return failed ? RP_ERR_IO : RP_OK; /* (this one sent: it may be written) */
    /* The keeper is gone (killed: by the app below Landlock ABI 6, the OOM killer, a person), or
     * stopped (it did not take the previous update). Nothing replaces it in this run (the init
     * holds no writable /etc to give another one): the app's own status says so until its next
     * start (review r6, L3). */
    if (c->hosts_fd >= 0 && !c->hosts_lost) {
        c->hosts_lost = true;
        rp_launch_note(c->missing, sizeof(c->missing),
                       "its /etc/hosts no longer follows its names' addresses (its hosts keeper "
                       "is gone or stopped; it gets a new one when it starts again)");
    }
    return RP_ERR_IO;
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
        c->events_suppressed = 0;
        record_once(c, RP_EVENT_SYSCALL, reason);
    }
    close_fd(&c->notify_fd);
    close_fd(&c->pidfd);
    close_fd(&c->data_fd);
    close_fd(&c->sync_fd);
    close_fd(&c->hosts_fd);
    free(c->crash);
    c->crash = NULL;
    c->crash_len = 0;
    cgroups_remove(c);
    unlock_all(c);
    c->pid = 0;
}

rp_err_t rp_compartment_start(const rp_compartment_spec_t *s, rp_compartment_t *c, char *why,
                              size_t cap)
{
    const rp_manifest_t *m;
    child_args_t a;
    int sv[2] = {-1, -1}, hv[2] = {-1, -1}, logfd = -1, nullfd = -1, bucketfd = -1, st;
    rp_launch_hosts_t hosts = {0};
    int64_t deadline;
    rp_launch_msg_t msg;
    rp_err_t err;
    char reason[RP_EVENT_REASON_MAX + 1];

    memset(c, 0, sizeof(*c));
    c->pidfd = c->notify_fd = c->data_fd = c->sync_fd = c->hosts_fd = c->run.ready_fd = -1;
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
                snprintf(reason, sizeof(reason), "%.200s: owned by another running app",
                         m->devices[i]);
                record(c, RP_EVENT_DEVICE, reason);
            }
            goto fail;
        }
    if ((err = rp_compartment_launcher_open(NULL, why, cap)) != RP_OK)
        goto fail;
    if (m->storage_kb > 0 && (err = storage_ensure(s, why, cap)) != RP_OK)
        goto fail;
    if (m->storage_kb > 0 && (c->data_fd = storage_mount(s, why, cap)) < 0) {
        err = RP_ERR_IO;
        goto fail;
    }
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
    /* Its log, handed to the launcher, which alone writes it (launch.h): no O_APPEND (a cut writes
     * at 0, and Linux's pwrite appends on an O_APPEND file whatever the offset); writes go at the
     * end, where the offset stays. */
    logfd = open(s->log_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (logfd >= 0 && lseek(logfd, 0, SEEK_END) < 0)
        close_fd(&logfd);
    nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s->bucket_path != NULL) /* none (it cannot be opened): the launcher goes by the mtime */
        bucketfd = open(s->bucket_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (logfd < 0 || nullfd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, hv) != 0) {
        snprintf(why, cap, "cannot start: %s: %s", logfd < 0 ? s->log_path : "a descriptor",
                 strerror(errno));
        goto fail;
    }
    c->hosts_fd = hv[0];
    a.spec = s;
    a.sync_fd = sv[1];
    a.log_fd = logfd;
    a.bucket_fd = bucketfd;
    a.null_fd = nullfd;
    a.channel_fd = s->channel_fd;
    a.net_fd = hv[1];
    a.data_fd = c->data_fd;
    pid_t pid = (pid_t)syscall(SYS_clone,
                               CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
                                   CLONE_NEWUTS | CLONE_NEWNET | SIGCHLD,
                               NULL, NULL, NULL, NULL);
    if (pid < 0) {
        snprintf(why, cap,
                 "cannot make the compartment's namespaces: %s (user, mount, pid, ipc, uts "
                 "and net namespaces are required)",
                 strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        close(sv[0]);
        close(hv[0]);
        /* The monitor's death (the thread that started it) ends the compartment: nothing runs
         * unsupervised. If it died already, the first recv below sees the socket closed. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        _exit(child_main(&a));
    }
    close_fd(&sv[1]);
    close_fd(&hv[1]);
    close_fd(&logfd);
    close_fd(&bucketfd);
    close_fd(&nullfd);
    c->pid = pid;
    c->sync_fd = sv[0];
    c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

    /* U1: the app's uid and gid, nothing else is mapped (no root in it). setgroups stays allowed
     * there: C drops the monitor's supplementary groups; U1 maps no other gid. */
    if (write_map(pid, "uid_map", s->uid) != 0 || write_map(pid, "gid_map", s->gid) != 0) {
        snprintf(why, cap, "cannot map the compartment's user namespace: %s", strerror(errno));
        goto fail;
    }
    if (cgroups_add(c, pid) != 0) {
        snprintf(why, cap, "cannot put the compartment in its cgroups: %s", strerror(errno));
        goto fail;
    }
    if (s->net_setup != NULL && s->net_setup(pid, s->net_ctx, &hosts) != 0) {
        snprintf(why, cap, "the network policy could not set up the compartment's network");
        goto fail;
    }
    memset(&msg, 0, sizeof(msg));
    msg.type = RP_LAUNCH_GO;
    if (rp_compartment_hosts(c, &hosts) != RP_OK || rp_launch_send(c->sync_fd, &msg, -1) != 0 ||
        send_spec(c->sync_fd, s) != 0) {
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
        long left = (long)(deadline - now_ms());
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
        r = rp_launch_recv(c->sync_fd, &msg, &got_fd);
        if (r != 1) {
            snprintf(why, cap, "the compartment's setup died");
            goto fail;
        }
        switch (msg.type) {
        case RP_LAUNCH_SECCOMP: c->notify_fd = got_fd; break;
        case RP_LAUNCH_READY:
            c->layers |= (unsigned)msg.value;
            c->landlock_abi = msg.value2;
            if (msg.text[0])
                rp_launch_note(c->missing, sizeof(c->missing), msg.text);
            ready = true;
            break;
        case RP_LAUNCH_ERROR:
            snprintf(why, cap, "the compartment's setup failed: %s", msg.text);
            goto fail;
        default:
            if (got_fd >= 0)
                close(got_fd);
            break;
        }
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
    close_fd(&logfd);
    close_fd(&bucketfd);
    close_fd(&nullfd);
    close_fd(&sv[1]);
    close_fd(&hv[1]);
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
            if (rp_launch_read_text(path, back, sizeof(back)) != 0 ||
                strncmp(back, real_state, sl) != 0 || back[sl] != '/')
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
