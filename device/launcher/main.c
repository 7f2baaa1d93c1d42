/*
 * rampart-launcher: builds an app's compartment from inside its namespaces, with no host
 * privilege (docs/compartments.md, "Enforcement"; launch.h is its protocol with the monitor).
 *
 * The monitor started it in C, the first process of the compartment's new user namespace U1
 * (which owns its mount, pid, ipc, uts and net namespaces), as the app's host uid, which U1 maps
 * to itself and nothing else (no root in U1), with capabilities in U1 alone (ambient). The
 * monitor already did what needs the host's privilege: U1's maps, the cgroups, the network, the
 * storage's mount (handed over detached). Here:
 *   a new cgroup namespace; the root built on a tmpfs attached at run_dir/root (binds, /etc with
 *     the names' files from NET, /proc, /dev, /tmp, /data moved in), pivot_root, the old root
 *     detached;
 *   the app's own user namespace U2, mapped here (the app's uid and gid as themselves, inside
 *     and in U1: the self-map any process may make), which owns no namespace;
 *   setresuid/gid; rlimits; securebits, capabilities dropped (bounding and ambient too);
 *     no_new_privs; the hosts keeper forked (keep_hosts); Landlock; seccomp (the listener passed
 *     to the monitor);
 *   the app forked (setsid, the contract's descriptors and environment, execve); this process
 *     stays as its init: traces it for a crash, forwards SIGTERM/SIGINT/SIGHUP, moves the app's
 *     stdout and stderr (a pipe) into its log (a file the monitor opened and handed over, which
 *     the app never holds: cut back, its writes bounded by a bucket, lograte.h), reads its ready
 *     pipe (its "ready" reported, its watchdog kept: launch.h), reaps, and when the app exits
 *     kills what is left, moves its last words, and reports its wait status before exiting.
 * Not dumpable from main's first line on, save map_self's three writes (below). Before it (the
 * kernel makes an exec with ambient capabilities and euid == uid dumpable: the dynamic loader and
 * the libraries' constructors run so) and during those writes, what keeps a process of the app's
 * uid out is ptrace's capability rule, not dumpability: this process holds every capability in U1
 * (then in U2), and U1 is owned by host root, so a host process of the app's uid holds neither a
 * superset of them nor CAP_SYS_PTRACE over U1 (the monitor must keep making U1 as root). After
 * the fork, the app, whatever it does in U2, reaches neither this process nor its channel to the
 * monitor.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/netlink.h>
#include <linux/securebits.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compartment.h"
#include "crash.h"
#include "filter.h"
#include "landlock_abi.h"
#include "launch.h"
#include "lograte.h"
#include "rampart/file.h"

#define PATH_ENV "PATH=/usr/local/bin:/usr/bin:/bin"

/* What the monitor handed over: the spec, and the descriptors of argv (launch.h). */
typedef struct launch_args {
    rp_launch_spec_t spec;
    int sync_fd, log_fd, null_fd, channel_fd, tree_fd, root_fd, net_fd, data_fd, bucket_fd;
    int etc_fd; /* a writable view of the new root's /etc (names_start), for the hosts keeper */
} launch_args_t;

/* ---------------------------------------------------------------- its root */

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

/* A new tmpfs, attached at run_dir/root (the monitor's directory, reached through root_fd alone).
 * OUT: *mnt, a descriptor of its root. */
static int root_tmpfs(int root_fd, int *mnt, char *why, size_t cap)
{
    int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);

    *mnt = -1;
    if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "size", "1m", 0) != 0 ||
        fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) != 0 ||
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0 ||
        (*mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)) < 0 ||
        move_mount(*mnt, "", root_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
        fail_errno(why, cap, "mount tmpfs on", "the run directory's root");
        if (*mnt >= 0)
            close(*mnt);
        *mnt = -1;
    }
    if (fs >= 0)
        close(fs);
    return *mnt >= 0 ? 0 : -1;
}

/* The app's name files (launch.h, NET): the first addresses the monitor sent, written into /etc
 * through a view of it (a clone of its mount, never attached anywhere) that stays writable when the
 * root is made read-only, kept for the hosts keeper (keep_hosts). No NET: no allowed names. */
static int names_start(launch_args_t *a, int mnt, char *why, size_t cap)
{
    static rp_launch_hosts_t h;
    ssize_t n = 0;

    a->etc_fd = open_tree(mnt, "etc", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (a->etc_fd < 0)
        return fail_errno(why, cap, "clone the mount of", "/etc");
    if (a->net_fd >= 0) {
        do
            n = recv(a->net_fd, &h, sizeof(h), MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof(h)) {
            snprintf(why, cap, "the monitor sent no addresses for the app's names");
            return -1;
        }
    }
    return rp_launch_etc_write(a->etc_fd, &a->spec.manifest, &h, why, cap);
}

static int build_root(launch_args_t *a, char *why, size_t cap)
{
    static const char *const base[] = {"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"};
    static const char *const nodes[] = {"/dev/null",   "/dev/zero",    "/dev/full",
                                        "/dev/random", "/dev/urandom", "/dev/tty"};
    const rp_launch_spec_t *s = &a->spec;
    const rp_manifest_t *m = &s->manifest;
    char root[64], tree[64], path[PATH_MAX], text[1024], opts[64];
    struct stat st;
    int mnt;

    /* Nothing this namespace mounts reaches the device's, and nothing of the device's later
     * mounts reaches it. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return fail_errno(why, cap, "make private", "/");
    /* The directories the monitor opened are reached through their descriptors (the state
     * directory's are root's, 0700: not this uid's), the new root through its mount's. */
    if (root_tmpfs(a->root_fd, &mnt, why, cap) != 0)
        return -1;
    snprintf(root, sizeof(root), "/proc/self/fd/%d", mnt);
    snprintf(tree, sizeof(tree), "/proc/self/fd/%d", a->tree_fd);
    static const char *const dirs[] = {"/app", "/etc", "/proc", "/dev", "/tmp", "/data", "/.old"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", root, dirs[i]);
        if (mkdir(path, 0755) != 0)
            return fail_errno(why, cap, "mkdir", path);
    }
    /* The app's tree and the device's base system, read-only. */
    rp_launch_pathf(path, sizeof(path), "%s/app", root);
    if (bind_ro(tree, path, 0, why, cap) != 0)
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
    /* A minimal /etc: only the app's user and root; the names, the network policy's. */
    snprintf(text, sizeof(text), "root:x:0:0:root:/:/usr/sbin/nologin\napp:x:%u:%u:%s:%s:/bin/sh\n",
             (unsigned)s->uid, (unsigned)s->gid, s->component, m->storage_kb ? "/data" : "/tmp");
    if (put_file(root, "/etc/passwd", text, why, cap) != 0)
        return -1;
    snprintf(text, sizeof(text), "root:x:0:\napp:x:%u:\n", (unsigned)s->gid);
    if (put_file(root, "/etc/group", text, why, cap) != 0 || names_start(a, mnt, why, cap) != 0)
        return -1;
    /* /proc: its own pid namespace; only processes of its own uid, only the pid directories
     * where the kernel can (subset=pid, Linux 5.8). */
    rp_launch_pathf(path, sizeof(path), "%s/proc", root);
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "hidepid=invisible,subset=pid") != 0 &&
        mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") != 0)
        return fail_errno(why, cap, "mount proc on", path);
    /* /dev: a few harmless nodes, and the manifest's devices (locked by the supervisor). */
    rp_launch_pathf(path, sizeof(path), "%s/dev", root);
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
    rp_launch_pathf(path, sizeof(path), "%s/dev", root);
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) !=
        0)
        return fail_errno(why, cap, "read-only remount of", path);
    /* /tmp: small, not executable. */
    rp_launch_pathf(path, sizeof(path), "%s/tmp", root);
    snprintf(opts, sizeof(opts), "size=%uk,mode=1777", (unsigned)RP_COMPARTMENT_TMP_KB);
    if (mount("rampart-tmp", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0)
        return fail_errno(why, cap, "mount tmpfs on", path);
    /* /data: its storage image, a file system of exactly its quota, mounted by the monitor. */
    if (m->storage_kb > 0) {
        rp_launch_pathf(path, sizeof(path), "%s/data", root);
        if (a->data_fd < 0 ||
            move_mount(a->data_fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) != 0)
            return fail_errno(why, cap, "mount the storage image on", path);
        close(a->data_fd);
    }
    /* Into it. The old root is detached: nothing of the device's tree stays reachable. */
    if (fchdir(mnt) != 0 || syscall(SYS_pivot_root, ".", ".old") != 0)
        return fail_errno(why, cap, "pivot_root into", root);
    close(mnt);
    close(a->root_fd);
    close(a->tree_fd);
    if (umount2("/.old", MNT_DETACH) != 0 || rmdir("/.old") != 0)
        return fail_errno(why, cap, "detach", "the old root");
    if (chdir("/") != 0 ||
        mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        return fail_errno(why, cap, "read-only remount of", "/");
    return 0;
}

/* ---------------------------------------------------------------- its fences */

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

/* The file rights a ruleset handles on a kernel of Landlock ABI abi (> 0): all it knows. */
static int landlock_apply(const rp_manifest_t *m, int *abi_out, unsigned *layers, char *missing,
                          size_t mcap)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    rp_landlock_ruleset_t attr = {0};
    uint64_t ro =
        LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
    uint64_t file_rw = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE;
    size_t size = sizeof(uint64_t);
    bool every_port = false;
    int rs;

    *abi_out = abi > 0 ? (int)abi : 0;
    if (abi <= 0) {
        rp_launch_note(missing, mcap,
                       "no Landlock (the kernel has none, or it is not enabled: lsm=landlock)");
        return 0;
    }
    attr.fs = rp_launcher_fs_handled(abi);
    if (abi >= 3)
        file_rw |= RP_LANDLOCK_FS_TRUNCATE;
    for (size_t i = 0; i < m->nconnections; i++)
        every_port = every_port || m->connections[i].port == 0;
    if (abi >= 4) {
        size = 2 * sizeof(uint64_t);
        attr.net = RP_LANDLOCK_NET_BIND_TCP | (every_port ? 0 : RP_LANDLOCK_NET_CONNECT_TCP);
        if (every_port)
            rp_launch_note(
                missing, mcap,
                "Landlock leaves TCP connect ports open (a connection allows every port; "
                "the network policy still holds)");
    } else
        rp_launch_note(missing, mcap,
                       "no Landlock TCP rules (the kernel's Landlock ABI is below 4)");
    if (abi >= 6) {
        size = sizeof(attr);
        attr.scoped = RP_LANDLOCK_SCOPE_ABSTRACT_UNIX | RP_LANDLOCK_SCOPE_SIGNAL;
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
    rules[n].path = "/tmp", rules[n++].access = attr.fs;
    if (m->storage_kb > 0)
        rules[n].path = "/data", rules[n++].access = attr.fs;
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
            .allowed_access = file_rw | (i >= 6 && abi >= 5 ? RP_LANDLOCK_FS_IOCTL_DEV : 0)};
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
            rp_landlock_port_t np = {.allowed_access = RP_LANDLOCK_NET_BIND_TCP,
                                     .port = m->tcp_ports[i]};
            if (syscall(SYS_landlock_add_rule, rs, RP_LANDLOCK_RULE_NET_PORT, &np, 0) != 0)
                return close(rs), -1;
        }
        for (size_t i = 0; i < m->nconnections && !every_port; i++) {
            rp_landlock_port_t np = {.allowed_access = RP_LANDLOCK_NET_CONNECT_TCP,
                                     .port = m->connections[i].port};
            if (syscall(SYS_landlock_add_rule, rs, RP_LANDLOCK_RULE_NET_PORT, &np, 0) != 0)
                return close(rs), -1;
        }
    }
    if (syscall(SYS_landlock_restrict_self, rs, abi >= 7 ? RP_LANDLOCK_LOG_APP : 0) != 0)
        return close(rs), -1;
    close(rs);
    *layers |= RP_LAYER_LANDLOCK_FS | (abi >= 4 ? RP_LAYER_LANDLOCK_NET : 0);
    return 0;
}

/* Loaded last before the app's exec. OUT: *notify_fd, the listener (-1 when the kernel cannot
 * notify: refusals are then plain EPERM, unseen). */
static int seccomp_apply(bool may_notify, bool debug, int *notify_fd, char *why, size_t cap)
{
    rp_seccomp_t f;
    int rc = -1;

    *notify_fd = -1;
    if (may_notify && seccomp_api_get() >= 5) {
        rp_launcher_filter(&f, SCMP_ACT_NOTIFY, debug, RP_FILTER_APP);
        rc = rp_seccomp_load(&f, NULL, notify_fd);
        if (rc == 0 && *notify_fd < 0) {
            snprintf(why, cap, "the seccomp filter is loaded but its listener is lost");
            return -1; /* every refused call would hang: refuse to start */
        }
    }
    if (rc != 0) {
        rp_launcher_filter(&f, SCMP_ACT_ERRNO(EPERM), debug, RP_FILTER_APP);
        rc = rp_seccomp_load(&f, NULL, NULL);
    }
    if (rc != 0)
        snprintf(why, cap, "cannot load the seccomp filter: %s", strerror(-rc));
    return rc == 0 ? 0 : -1;
}

static volatile sig_atomic_t forward_sig;
static void on_signal(int sig)
{
    if (sig != SIGCHLD) /* SIGCHLD only wakes the init's wait */
        forward_sig = sig;
}

static void child_fail(int sync_fd, const char *why)
{
    rp_launch_msg_t m = {.type = RP_LAUNCH_ERROR};
    snprintf(m.text, sizeof(m.text), "%s", why);
    (void)rp_launch_send(sync_fd, &m, -1);
    _exit(126);
}

/* ---------------------------------------------------------------- the app's log (the init) */

/* The app's stdout and stderr: a pipe read here into the log file the monitor handed over
 * (compartment.h), always at once (the app never waits on its log): what the bucket (lograte.h)
 * lets through is written, the rest dropped and said in one line when writing resumes, the run's
 * first drop told to the monitor (RP_LAUNCH_LOG_DROPPED), the bucket carried from run to run in
 * its record beside the log (BUCKET, launch.h; log_start, log_end); the file cut back to its newest
 * RP_COMPARTMENT_LOG_KEEP bytes past RP_COMPARTMENT_LOG_MAX. This process's writes are held to
 * RLIMIT_FSIZE (set in main), so that even a launcher the app took over cannot grow the file much
 * past the bound. A write that fails loses those bytes, nothing else: the app's log is the app's.
 */
typedef struct app_log {
    int in;     /* the pipe's read end, non-blocking; -1 once every writer is gone */
    int out;    /* the log file: no O_APPEND (a cut writes at 0), its offset at the end */
    int record; /* the bucket's record (lograte.h), beside the log; -1: none */
    int sync_fd;
    rp_lograte_t bucket;
    bool mid_line; /* the log's last byte is not a newline */
    bool told;     /* the monitor was told of a drop (once a run) */
} app_log_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The log's newest RP_COMPARTMENT_LOG_KEEP bytes, once it passes RP_COMPARTMENT_LOG_MAX. Only this
 * process writes the file (the app has the pipe), so nothing is lost to a race here. */
static void log_cut(int out)
{
    static uint8_t tail[RP_COMPARTMENT_LOG_KEEP];
    struct stat st;

    if (fstat(out, &st) != 0 || st.st_size <= RP_COMPARTMENT_LOG_MAX)
        return;
    if (rp_pread_all(out, tail, sizeof(tail), (uint64_t)st.st_size - sizeof(tail)) == RP_OK &&
        pwrite(out, tail, sizeof(tail), 0) == (ssize_t)sizeof(tail))
        (void)!ftruncate(out, sizeof(tail));
    (void)lseek(out, 0, SEEK_END);
}

static void log_write(app_log_t *l, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    (void)!rp_write_all(l->out, p, n);
    l->mid_line = p[n - 1] != '\n';
    log_cut(l->out);
}

/* The line saying how much was dropped, once the bucket lets writing resume (last: the app and
 * all it left are gone, the line is due now if it fits); the monitor is told of the run's first. */
static void log_say_dropped(app_log_t *l, bool last)
{
    char line[RP_LOGRATE_LINE_MAX + 1];
    uint64_t dropped = l->bucket.dropped;
    size_t n = rp_lograte_line(&l->bucket, now_ms(), last, l->mid_line, line, sizeof(line));

    if (n == 0)
        return;
    log_write(l, (const uint8_t *)line, n);
    if (!l->told) {
        rp_launch_msg_t m = {.type = RP_LAUNCH_LOG_DROPPED,
                             .value = dropped > INT_MAX ? INT_MAX : (int)dropped};
        (void)rp_launch_send(l->sync_fd, &m, -1);
        l->told = true;
    }
}

/* Move what the app wrote into its log, through the bucket: at most RP_COMPARTMENT_LOG_MAX bytes
 * read a call (an app that writes without pause does not hold this loop; all: the app and
 * everything it left are gone, and the last drop is said). */
static void log_drain(app_log_t *l, bool all)
{
    static uint8_t buf[RP_COMPARTMENT_LOG_CHUNK];
    long moved = 0;

    log_say_dropped(l, false);
    while (l->in >= 0 && moved < RP_COMPARTMENT_LOG_MAX) {
        ssize_t n = read(l->in, buf, sizeof(buf));
        if (n == 0) {
            close(l->in); /* every writer is gone: nothing more can come */
            l->in = -1;
        }
        if (n <= 0)
            break; /* or nothing more now (EAGAIN) */
        moved += n;
        log_say_dropped(l, false);
        log_write(l, buf, rp_lograte_take(&l->bucket, now_ms(), (size_t)n));
    }
    if (all)
        log_say_dropped(l, true);
}

static int64_t wall_ms(void)
{
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    return (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
}

/* When the log was last written (its mtime, wall ms); -1: never (empty), or not known. */
static int64_t log_written_ms(int out)
{
    struct stat st;

    if (fstat(out, &st) != 0 || st.st_size == 0)
        return -1;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* The bucket the app's last run left (rp_lograte_start): its record, cleared before it is taken,
 * so that a run that does not end by itself (killed before log_end) leaves none; without one (the
 * first run, a killed one, a record that cannot be read or cleared), the log's mtime. */
static void log_bucket_start(app_log_t *l)
{
    uint8_t rec[RP_LOGRATE_RECORD_LEN + 1];
    ssize_t n = l->record >= 0 ? pread(l->record, rec, sizeof(rec), 0) : -1;

    if (n >= 0 && ftruncate(l->record, 0) != 0)
        n = -1;
    rp_lograte_start(&l->bucket, now_ms(), wall_ms(), log_written_ms(l->out), rec, n);
}

/* The bucket as this run leaves it, for the next (log_bucket_start): once the app and all it left
 * are gone and its last words are in. A write that fails leaves no record (cleared at the start):
 * the next run falls back on the mtime. */
static void log_end(app_log_t *l)
{
    uint8_t rec[RP_LOGRATE_RECORD_LEN];

    if (l->record < 0)
        return;
    rp_lograte_save(&l->bucket, now_ms(), wall_ms(), rec);
    (void)!pwrite(l->record, rec, sizeof(rec), 0);
}

/* The log as the app's earlier runs left it: the bucket they left, whether their last line was cut
 * off, and the file cut back if one left it past the bound. */
static void log_start(app_log_t *l)
{
    struct stat st;
    uint8_t last = '\n';

    log_bucket_start(l);
    if (fstat(l->out, &st) == 0 && st.st_size > 0)
        (void)!pread(l->out, &last, 1, st.st_size - 1);
    l->mid_line = last != '\n';
    log_cut(l->out);
}

/* The app's ready pipe, read here under the contract's rule (rp_app_poll_ready, app.h): the
 * monitor is told once, when the app said "ready" (RP_LAUNCH_APP_READY). After it each write is a
 * heartbeat, which an app whose manifest sets WatchdogSeconds must give at least that often: past
 * it, the monitor is told (RP_LAUNCH_WATCHDOG) and the app is killed with all it left, an exit
 * like any other (launch.h). */
typedef struct app_ready {
    rp_app_run_t run; /* its ready_fd, ready and heard alone */
    long watchdog_ms; /* 0: none */
    bool told, fired;
} app_ready_t;

/* The time left before the watchdog fires, in ms; -1: nothing to wait for. */
static long ready_take(app_ready_t *r, int sync_fd)
{
    rp_launch_msg_t m = {.type = RP_LAUNCH_APP_READY};
    int64_t left;

    if (!rp_app_poll_ready(&r->run) || r->fired)
        return -1;
    if (!r->told) {
        (void)rp_launch_send(sync_fd, &m, -1);
        r->told = true;
    }
    if (r->watchdog_ms == 0)
        return -1;
    if ((left = r->watchdog_ms - rp_app_silent_ms(&r->run)) > 0)
        return (long)left; /* (at most watchdog_ms) */
    m.type = RP_LAUNCH_WATCHDOG;
    (void)rp_launch_send(sync_fd, &m, -1);
    r->fired = true;
    kill(-1, SIGKILL); /* the app and whatever it left (not this process): a hung app heeds no
                          SIGTERM */
    return -1;
}

/* Until the next thing to do: a child's stop or exit (SIGCHLD), a signal to forward, the app's
 * output, its ready pipe, the watchdog's deadline (watchdog_left ms; -1: none), or the moment the
 * bucket lets the log say what it dropped. */
static void wait_any(const app_log_t *l, const app_ready_t *r, long watchdog_left,
                     const sigset_t *unblocked)
{
    struct pollfd p[2] = {
        {.fd = l->in,           .events = POLLIN},
        {.fd = r->run.ready_fd, .events = POLLIN},
    };
    long left = watchdog_left, resume = (long)rp_lograte_wait_ms(&l->bucket, now_ms());
    struct timespec ts;

    if (resume >= 0 && (left < 0 || resume < left))
        left = resume;
    ts.tv_sec = left > 0 ? left / 1000 : 0;
    ts.tv_nsec = left > 0 ? (left % 1000) * 1000000 : 0;
    (void)ppoll(p, 2, left >= 0 ? &ts : NULL, unblocked);
}

/* The hosts keeper: the one process that writes the app's /etc/hosts after it starts, when the
 * monitor's re-resolution changed its names' addresses (launch.h, NET). The init cannot (its
 * Landlock domain, the app's, writes nothing in /etc), so it forks this child first: the app's
 * uid with no capability and no_new_privs, outside the app's Landlock domain and seccomp filter,
 * holding NET, the writable view of /etc and nothing else (no channel, no log, no sync socket),
 * in a Landlock domain and a filter of its own (rp_launcher_keeper_confine, filter.c: it
 * can replace files in that /etc and little else).
 * The app cannot reach it: not dumpable, its memory U1's, and Landlock keeps the app's ptrace (and,
 * from ABI 6, its signals) inside its own domain; its only input is the monitor's. Nor can the
 * init signal it (the same scope), so it ends by itself: when the init closes the returned pipe
 * (the app has exited), or NET closes (the monitor is gone); the compartment's end kills it too.
 * Only an app with allowed names has one. Returns the pipe's end to close, or -1. */
static int keep_hosts(launch_args_t *a)
{
    const rp_manifest_t *m = &a->spec.manifest;
    bool names = false;
    int life[2] = {-1, -1};
    pid_t k = 1;

    for (size_t i = 0; i < m->nconnections; i++)
        names = names || !m->connections[i].is_ip;
    if (names && a->net_fd >= 0 && (pipe2(life, O_CLOEXEC) != 0 || (k = fork()) < 0))
        child_fail(a->sync_fd, "cannot start the hosts keeper");
    if (k == 0) {
        int *drop[] = {&a->sync_fd,    &a->log_fd, &a->bucket_fd,
                       &a->channel_fd, &life[1],   &a->null_fd};
        for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
            if (*drop[i] >= 0)
                close(*drop[i]);
        if (rp_launcher_keeper_confine(a->etc_fd, a->spec.without & RP_LAYER_LANDLOCK_FS) != 0) {
            fprintf(stderr, "rampart-launcher: %s: the hosts keeper cannot confine itself\n",
                    a->spec.component);
            _exit(126); /* the monitor sees NET closed (apps.c) */
        }
        rp_launcher_keeper_serve(a->net_fd, life[0], a->etc_fd, m, a->spec.component);
    }
    if (a->net_fd >= 0)
        close(a->net_fd);
    close(a->etc_fd);
    if (life[0] >= 0)
        close(life[0]);
    a->net_fd = a->etc_fd = -1;
    return life[1];
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
    if (rp_launch_read_text(path, text, sizeof(text)) != 0)
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
    /* regs is bytes (crash.h), not aligned for the kernel's struct: its sp copied out */
#if defined(__x86_64__)
    c.arch = EM_X86_64;
    memcpy(&c.sp, c.regs + offsetof(struct user_regs_struct, rsp), sizeof(c.sp));
#elif defined(__aarch64__)
    c.arch = EM_AARCH64;
    memcpy(&c.sp, c.regs + offsetof(struct user_regs_struct, sp), sizeof(c.sp));
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
        int room = 2 * RP_CRASH_CAPTURE_MAX;
        (void)setsockopt(sync_fd, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
        if (rp_launch_send_crash(sync_fd, out, len) == 0)
            return;
        /* Too big for the socket's buffer (SO_SNDBUF is capped at net.core.wmem_max), say: the
         * crash is still reported, as one whose capture is lost (review r6, L4). */
        rp_launch_msg_t m = {.type = RP_LAUNCH_CRASH, .value = 0};
        snprintf(m.text, sizeof(m.text), "its capture (%zu bytes) could not be sent: %s", len,
                 strerror(errno));
        (void)rp_launch_send(sync_fd, &m, -1);
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

/* The init's own filter: the app's list without fallocate (filter.c), plus ptrace and
 * process_vm_readv for the capture (docs/compartments.md, "Crash capture"). The app loads its own
 * filter, without them, between its fork and its exec. Refusals here are plain EPERM: the init is
 * ours, not the app's. */
static int init_seccomp(bool trace, char *why, size_t cap)
{
    static const char *const trace_calls[] = {"ptrace", "process_vm_readv"};
    rp_seccomp_t f;
    int rc;

    rp_launcher_filter(&f, SCMP_ACT_ERRNO(EPERM), false, RP_FILTER_INIT);
    if (trace)
        rp_seccomp_add(&f, SCMP_ACT_ALLOW, RP_SECCOMP_NAMES(trace_calls));
    rc = rp_seccomp_load(&f, NULL, NULL);
    if (rc != 0)
        snprintf(why, cap, "cannot load the init's seccomp filter: %s", strerror(-rc));
    return rc == 0 ? 0 : -1;
}

/* Map the user namespace just made (U2): the app's ids as themselves (this process's in U1),
 * nothing else. setgroups is denied first, as the kernel asks of a map made without privilege
 * over U1. The files are /proc/self's, which a process that is not dumpable does not own (U1 maps
 * no root to own them): dumpable for these three writes alone, already in U2 (no capability left
 * in U1), its pid seen only from the host's pid namespace. A host process of its uid sees it
 * there, and is kept out by ptrace's capability rule (every capability in U2, owned by U1, owned
 * by host root), not by dumpability. */
static int map_self(const rp_launch_spec_t *s)
{
    static const char *const files[3] = {"/proc/self/setgroups", "/proc/self/uid_map",
                                         "/proc/self/gid_map"};
    char text[3][32];

    snprintf(text[0], sizeof(text[0]), "deny");
    snprintf(text[1], sizeof(text[1]), "%u %u 1\n", (unsigned)s->uid, (unsigned)s->uid);
    snprintf(text[2], sizeof(text[2]), "%u %u 1\n", (unsigned)s->gid, (unsigned)s->gid);
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        int fd = open(files[i], O_WRONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? write(fd, text[i], strlen(text[i])) : -1;
        if (fd >= 0)
            close(fd);
        if (n != (ssize_t)strlen(text[i])) {
            (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
            return -1;
        }
    }
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : -1;
}

/* argv's descriptors (launch.h), then the spec, one packet. */
static void take_args(int argc, char **argv, launch_args_t *a)
{
    int *fds[RP_LAUNCH_ARGS] = {&a->sync_fd, &a->log_fd, &a->null_fd, &a->channel_fd, &a->tree_fd,
                                &a->root_fd, &a->net_fd, &a->data_fd, &a->bucket_fd};
    ssize_t n;

    if (argc != RP_LAUNCH_ARGS + 1) {
        fprintf(stderr, "rampart-launcher: started by rampart-monitor only (launch.h)\n");
        exit(2);
    }
    for (int i = 0; i < RP_LAUNCH_ARGS; i++) {
        char *end;
        long v = strtol(argv[i + 1], &end, 10);
        if (*end != '\0' || end == argv[i + 1] || v < -1 || v > INT_MAX ||
            (v >= 0 && fcntl((int)v, F_SETFD, FD_CLOEXEC) != 0)) {
            fprintf(stderr, "rampart-launcher: started by rampart-monitor only (launch.h)\n");
            exit(2);
        }
        *fds[i] = (int)v;
    }
    do
        n = recv(a->sync_fd, &a->spec, sizeof(a->spec), MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(a->spec))
        _exit(125); /* the supervisor gave up */
    a->spec.component[sizeof(a->spec.component) - 1] = '\0';
    a->spec.version[sizeof(a->spec.version) - 1] = '\0';
}

int main(int argc, char **argv)
{
    static launch_args_t args;
    launch_args_t *a = &args;
    const rp_launch_spec_t *s = &a->spec;
    const rp_manifest_t *m = &s->manifest;
    char why[480] = "", missing[480] = "";
    char env_component[64], env_version[96], env_ready[32], env_data[64], env_home[64],
        env_monitor[32];
    /* RAMPART_MONITOR_FD last: without a channel, its slot ends the list. */
    char *envp[] = {env_component, env_version, env_ready,   env_data,
                    env_home,      PATH_ENV,    env_monitor, NULL};
    char exe[RP_MANIFEST_PATH_MAX + 8];
    char *app_argv[RP_MANIFEST_ARGS_MAX + 2];
    unsigned layers =
        RP_LAYER_MOUNTNS | RP_LAYER_PIDNS | RP_LAYER_IPCNS | RP_LAYER_UTSNS | RP_LAYER_NETNS;
    int abi = 0, notify_fd = -1, status = 0, up[2], down[2], logp[2], readyp[2], keeper;
    app_log_t lg;
    app_ready_t rd;
    bool traced = false;
    char go = 0;
    rp_launch_msg_t msg;
    pid_t app;

    /* First: not dumpable, and it ends with the monitor (the exec cleared that: a process gaining
     * capabilities loses its parent-death signal). Until here (the loader, constructors) it was
     * dumpable: ptrace's capability rule kept a process of its uid out (the header says how). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return 126;
    take_args(argc, argv, a);
    if (s->without & RP_LAYER_CGROUPNS)
        rp_launch_note(missing, sizeof(missing), "no cgroup namespace" RP_LAUNCH_TURNED_OFF);
    else if (unshare(CLONE_NEWCGROUP) == 0)
        layers |= RP_LAYER_CGROUPNS;
    else
        rp_launch_note(missing, sizeof(missing), "no cgroup namespace");
    if (build_root(a, why, sizeof(why)) != 0)
        child_fail(a->sync_fd, why);
    if (sethostname(s->component, strlen(s->component)) != 0)
        child_fail(a->sync_fd, "sethostname failed");
    if (setgroups(0, NULL) != 0)
        child_fail(a->sync_fd, "setgroups failed");
    /* The app's own user namespace U2, which owns nothing: whatever the app could ever hold in
     * it, it has no capability over U1's mounts and network. Without it, the app stays in U1 (its
     * uid alike), with no capabilities. */
    if (s->without & RP_LAYER_USERNS)
        rp_launch_note(missing, sizeof(missing),
                       "no user namespace" RP_LAUNCH_TURNED_OFF
                       "; the app runs in its launcher's, as its uid, with no capabilities");
    else if (unshare(CLONE_NEWUSER) != 0)
        rp_launch_note(missing, sizeof(missing),
                       "no user namespace (the kernel refused one: user.max_user_namespaces?); "
                       "the app runs in its launcher's, as its uid, with no capabilities");
    else if (map_self(s) != 0)
        child_fail(a->sync_fd, "cannot map the app's user namespace");
    else
        layers |= RP_LAYER_USERNS;
    if (set_securebits(why, sizeof(why)) != 0)
        child_fail(a->sync_fd, why);
    if (setresgid(s->gid, s->gid, s->gid) != 0 || setresuid(s->uid, s->uid, s->uid) != 0)
        child_fail(a->sync_fd, "cannot switch to the app's uid and gid");
    /* A uid change clears the parent-death signal: set again (a supervisor already gone is seen
     * below, when the next message cannot be sent). */
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
    keeper = keep_hosts(a); /* before Landlock: the keeper stays outside the app's domain */
    if (s->without & RP_LAYER_LANDLOCK_FS)
        rp_launch_note(missing, sizeof(missing), "no Landlock" RP_LAUNCH_TURNED_OFF);
    else if (landlock_apply(m, &abi, &layers, missing, sizeof(missing)) != 0)
        child_fail(a->sync_fd, "cannot apply the Landlock rules");
    if (m->storage_kb > 0)
        layers |= RP_LAYER_STORAGE;
    /* The init is never dumpable (the app makes itself so before its exec): with ptrace allowed
     * (debug), the app's processes reach one another, never the init and its channel to the
     * supervisor (its memory is U1's: no capability the app could hold in U2 counts there). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        child_fail(a->sync_fd, "cannot make the compartment's init undumpable");
    if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0 || pipe2(logp, O_CLOEXEC) != 0 ||
        pipe2(readyp, O_CLOEXEC) != 0)
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
    app_argv[0] = exe;
    for (size_t i = 0; i < m->nargs; i++)
        app_argv[i + 1] = (char *)m->args[i];
    app_argv[m->nargs + 1] = NULL;
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
            rp_launch_note(missing, sizeof(missing),
                           "ptrace allowed among its processes (development capability)");
        else if (s->no_crash_capture)
            rp_launch_note(missing, sizeof(missing),
                           "no crash capture (turned off for the device's group)");
        else if (go != '1')
            rp_launch_note(missing, sizeof(missing),
                           "no crash capture (the kernel refused the init's ptrace)");
        layers |= RP_LAYER_SECCOMP;
        if (notify_fd >= 0) {
            layers |= RP_LAYER_SECCOMP_NOTIFY;
            memset(&msg, 0, sizeof(msg));
            msg.type = RP_LAUNCH_SECCOMP;
            if (rp_launch_send(a->sync_fd, &msg, notify_fd) != 0)
                _exit(125);
            close(notify_fd);
        } else
            rp_launch_note(missing, sizeof(missing),
                           s->without & RP_LAYER_SECCOMP_NOTIFY
                               ? "seccomp refusals are not seen" RP_LAUNCH_TURNED_OFF
                                 ": refused calls get EPERM and make no event"
                               : "seccomp refusals are not seen (the kernel has no "
                                 "SECCOMP_RET_USER_NOTIF): refused calls get EPERM and make no "
                                 "event");
        memset(&msg, 0, sizeof(msg));
        msg.type = RP_LAUNCH_READY;
        msg.value = (int)layers;
        msg.value2 = abi;
        snprintf(msg.text, sizeof(msg.text), "%s", missing);
        if (rp_launch_send(a->sync_fd, &msg, -1) != 0)
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
            dup2(logp[1], STDOUT_FILENO) < 0 || dup2(logp[1], STDERR_FILENO) < 0 ||
            dup2(readyp[1], RP_APP_READY_FD) < 0 ||
            (channel >= 0 && dup2(channel, RP_APP_MONITOR_FD) < 0))
            _exit(126);
        if (close_range(channel >= 0 ? RP_APP_MONITOR_FD + 1 : RP_APP_READY_FD + 1, ~0U, 0) != 0)
            _exit(126);
        execve(exe, app_argv, envp);
        dprintf(STDERR_FILENO, "rampart: cannot start %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    /* Its init: trace the app for a crash, forward a stop, move its output into its log, reap
     * everything, report the app's status. */
    close(up[1]);
    close(down[0]);
    close(logp[1]);
    close(readyp[1]);
    if (read(up[0], &go, 1) == 1 && !s->debug && !s->no_crash_capture)
        traced = ptrace(PTRACE_SEIZE, app, NULL,
                        (void *)(uintptr_t)(PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL)) == 0;
    {
        /* This process's own writes (its log's) held near the log's bound; the app, forked
         * already, keeps its own limit. A write past it fails (EFBIG) rather than kill. */
        struct rlimit fsize = {RP_COMPARTMENT_LOG_MAX + RP_COMPARTMENT_LOG_CHUNK,
                               RP_COMPARTMENT_LOG_MAX + RP_COMPARTMENT_LOG_CHUNK};
        if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR || setrlimit(RLIMIT_FSIZE, &fsize) != 0 ||
            fcntl(logp[0], F_SETFL, O_NONBLOCK) != 0 ||
            fcntl(readyp[0], F_SETFL, O_NONBLOCK) != 0) {
            kill(app, SIGKILL);
            child_fail(a->sync_fd, "cannot bound the app's log");
        }
    }
    if (init_seccomp(traced, why, sizeof(why)) != 0) {
        kill(app, SIGKILL);
        child_fail(a->sync_fd, why);
    }
    (void)!write(down[1], traced ? "1" : "0", 1);
    close(up[0]);
    close(down[1]);
    close(a->null_fd);
    if (a->channel_fd >= 0)
        close(a->channel_fd); /* the app's alone: its exit closes the channel */
    lg = (app_log_t){.in = logp[0], .out = a->log_fd, .sync_fd = a->sync_fd};
    lg.record = a->bucket_fd;
    log_start(&lg);
    memset(&rd, 0, sizeof(rd));
    rd.run.ready_fd = readyp[0];
    rd.watchdog_ms = (long)m->watchdog_seconds * 1000;
    struct sigaction sa = {.sa_handler = on_signal};
    sigset_t waking, unblocked;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&waking);
    /* A caller that waits for its signals with signalfd has them blocked, and the init inherited
     * that: open while it waits (ppoll), or a stop would never reach the app; the ones it acts on
     * blocked otherwise, so that none comes between a look and the wait. */
    sigemptyset(&unblocked);
    for (int i = 0; i < 4; i++) {
        static const int sigs[4] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
        sigaddset(&waking, sigs[i]);
        sigaction(sigs[i], &sa, NULL);
    }
    sigprocmask(SIG_SETMASK, &waking, NULL);
    for (bool done = false; !done;) {
        int st;
        pid_t w;
        if (forward_sig) {
            kill(-app, forward_sig);
            forward_sig = 0;
        }
        while (!done && (w = waitpid(-1, &st, __WALL | WNOHANG)) != 0) {
            if (w > 0 && WIFSTOPPED(st))
                on_stop(w, st, a->sync_fd);
            else if (w == app) {
                status = st;
                done = true;
            } else if (w < 0) {
                done = errno == ECHILD;
                break;
            }
        }
        log_drain(&lg, false);
        long watchdog_left = ready_take(&rd, a->sync_fd);
        if (!done)
            wait_any(&lg, &rd, watchdog_left, &unblocked);
    }
    if (keeper >= 0)
        close(keeper); /* the hosts keeper ends (the kill below cannot reach it) */
    kill(-1, SIGKILL); /* whatever the app left behind */
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    log_drain(&lg, true); /* its last words: no writer is left in the namespace */
    log_end(&lg);
    memset(&msg, 0, sizeof(msg));
    msg.type = RP_LAUNCH_EXIT;
    msg.value = status;
    (void)rp_launch_send(a->sync_fd, &msg, -1);
    _exit(0);
}
