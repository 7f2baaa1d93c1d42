/*
 * The seccomp filters of an app's compartment (device/launcher/main.c loads them; docs/
 * compartments.md, "Enforcement"): the app's, its init's (the app's list without fallocate, plus
 * the crash capture's calls: main.c) and its hosts keeper's, with the keeper's Landlock domain and
 * its loop. Apart from main.c so that a unit test (tests/unit/test_launcher_filter.c) loads each
 * and tries what it must refuse, and runs the keeper as it runs (review r7, L6).
 */
#include <errno.h>
#include <linux/landlock.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "filter.h"
#include "landlock_abi.h"
#include "rampart/seccomp.h"

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
    "inotify_add_watch", "inotify_rm_watch", "fadvise64", "splice", "tee", "vmsplice",
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
static void socket_rules(rp_seccomp_t *f)
{
    static const int ip[2] = {AF_INET, AF_INET6};
    static const int types[2] = {SOCK_STREAM, SOCK_DGRAM};

    rp_seccomp_rule(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            rp_seccomp_rule(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                            SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)ip[i], 0),
                            SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (scmp_datum_t)types[j]));
    rp_seccomp_rule(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK, 0),
                    SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE, 0));
    rp_seccomp_rule(f, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
}

void rp_launcher_filter(rp_seccomp_t *f, uint32_t def, bool debug, rp_filter_for_t who)
{
    static const char *const debug_calls[] = {"ptrace", "process_vm_readv", "process_vm_writev"};

    /* not "ours" (rampart/seccomp.h): a sanitizer build does not widen the app's list, nor the
     * init's, which is built on it */
    rp_seccomp_new(f, def, false, RP_SECCOMP_NAMES(allowed_calls));
    if (debug)
        rp_seccomp_add(f, SCMP_ACT_ALLOW, RP_SECCOMP_NAMES(debug_calls));
    /* fallocate: the app's, whose files are its storage's (a size of its own) or its /tmp (its
     * memory cgroup's); never the init's, which holds the log: FALLOC_FL_KEEP_SIZE allocates
     * blocks past RLIMIT_FSIZE (which bounds the size alone), so a launcher the app took over
     * could fill the state partition with it (review r6, M1). */
    if (who == RP_FILTER_APP)
        rp_seccomp_rule(f, SCMP_ACT_ALLOW, SCMP_SYS(fallocate), 0);
    socket_rules(f);
    /* clone without a namespace flag (fork, threads); clone3 says ENOSYS so libc falls back to
     * clone, whose flags a filter can see. */
    rp_seccomp_rule(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                    SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS, 0));
    rp_seccomp_rule(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* Reading a limit is free; setting one goes to the monitor, which refuses a raise (and lets
     * the kernel decide the rest). Without notification, the kernel alone decides. */
    if (def == SCMP_ACT_NOTIFY)
        rp_seccomp_rule(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A2(SCMP_CMP_EQ, 0, 0));
    else {
        rp_seccomp_rule(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 0);
        rp_seccomp_rule(f, SCMP_ACT_ALLOW, SCMP_SYS(setrlimit), 0);
    }
}

/* The hosts keeper's (main.c, keep_hosts): what it calls to wait for NET or its life pipe,
 * take a packet, replace /etc/hosts in its /etc descriptor (launch.c, put_whole) and say why it
 * could not on stderr, and to exit; the allocator's calls in case stdio wants memory. Anything
 * else is refused with EPERM, unseen: the keeper is ours, not the app's (review r6, L2). */
void rp_launcher_keeper_filter(rp_seccomp_t *f)
{
    static const char *const calls[] = {
        "poll",      "ppoll",  "recvfrom",     "recvmsg",         "openat",
        "write",     "writev", "close",        "renameat",        "renameat2",
        "unlinkat",  "fstat",  "newfstatat",   "lseek",           "mmap",
        "munmap",    "brk",    "rt_sigreturn", "restart_syscall", "exit",
        "exit_group"};

    rp_seccomp_new(f, SCMP_ACT_ERRNO(EPERM), true, RP_SECCOMP_NAMES(calls));
}

uint64_t rp_launcher_fs_handled(long abi)
{
    uint64_t fs = (1ULL << 13) - 1; /* ABI 1 */
    if (abi >= 2)
        fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        fs |= RP_LANDLOCK_FS_TRUNCATE;
    if (abi >= 5)
        fs |= RP_LANDLOCK_FS_IOCTL_DEV;
    return fs;
}

/* The hosts keeper's own Landlock domain: in the file system, replacing files in its /etc
 * descriptor alone (launch.c, put_whole: create, write, truncate, rename over, remove); no TCP
 * (ABI 4); no signal or abstract socket outside it (ABI 6). Without Landlock (the kernel's, or
 * turned off), its filter and its uid alone hold it. 0, or -1. */
static int keeper_landlock(int etc_fd, bool off)
{
    long abi =
        off ? 0 : syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    rp_landlock_ruleset_t attr = {0};
    struct landlock_path_beneath_attr pb = {.allowed_access = LANDLOCK_ACCESS_FS_WRITE_FILE |
                                                              LANDLOCK_ACCESS_FS_MAKE_REG |
                                                              LANDLOCK_ACCESS_FS_REMOVE_FILE,
                                            .parent_fd = etc_fd};
    size_t size = sizeof(uint64_t);
    int rs, rc;

    if (abi <= 0)
        return 0; /* the app's missing layers say so */
    attr.fs = rp_launcher_fs_handled(abi);
    if (abi >= 3)
        pb.allowed_access |= RP_LANDLOCK_FS_TRUNCATE;
    if (abi >= 4) {
        size = 2 * sizeof(uint64_t);
        attr.net = RP_LANDLOCK_NET_BIND_TCP | RP_LANDLOCK_NET_CONNECT_TCP;
    }
    if (abi >= 6) {
        size = sizeof(attr);
        attr.scoped = RP_LANDLOCK_SCOPE_ABSTRACT_UNIX | RP_LANDLOCK_SCOPE_SIGNAL;
    }
    if ((rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0)) < 0)
        return -1;
    rc = (int)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    if (rc == 0)
        rc = (int)syscall(SYS_landlock_restrict_self, rs, 0);
    close(rs);
    return rc == 0 ? 0 : -1;
}

int rp_launcher_keeper_confine(int etc_fd, bool landlock_off)
{
    rp_seccomp_t f;

    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || keeper_landlock(etc_fd, landlock_off) != 0)
        return -1;
    rp_launcher_keeper_filter(&f);
    return rp_seccomp_load(&f, "the hosts keeper's", NULL) == 0 ? 0 : -1;
}

void rp_launcher_keeper_serve(int net_fd, int life_fd, int etc_fd, const rp_manifest_t *m,
                              const char *component)
{
    static rp_launch_hosts_t h;
    struct pollfd p[2] = {
        {.fd = net_fd,  .events = POLLIN},
        {.fd = life_fd, .events = POLLIN}
    };
    char why[300];
    ssize_t n;
    unsigned char status; /* the answer to each update: 0 written, else errno (review r7) */

    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            _exit(1);
        if (p[1].revents != 0)
            _exit(0); /* the app is gone */
        if (p[0].revents == 0)
            continue;
        n = recv(net_fd, &h, sizeof(h), MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            _exit(n == 0 ? 0 : 1); /* the monitor is gone */
        errno = EPROTO;
        if (n != (ssize_t)sizeof(h))
            snprintf(why, sizeof(why), "a packet of %zd bytes, not the addresses' form", n);
        else if (rp_launch_hosts_write(etc_fd, m, &h, why, sizeof(why)) == 0)
            errno = 0;
        status = errno > 0 && errno < 256 ? (unsigned char)errno : (errno == 0 ? 0 : EIO);
        if (status != 0)
            fprintf(stderr, "rampart-launcher: %s: its /etc/hosts is not rewritten: %s\n",
                    component, why);
        if (write(net_fd, &status, 1) != 1) /* read by the monitor before its next one */
            _exit(1);
    }
}
