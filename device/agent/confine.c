/*
 * The agent's seccomp allow-list (confine.h). It holds what `run` does through the monitor: its
 * loop and timers, HTTPS with libcurl and OpenSSL (sockets, name resolution by files and DNS,
 * libcurl's resolver thread), its own files in S/agent/, the monitor's socket (descriptors passed
 * with SCM_RIGHTS), memfd for the root it hands over, and SIGTERM to its MCU relay runner alone.
 * Not: execve, fork (a thread only), ptrace, mount, setuid and the like, module loading, bpf.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>

#include "confine.h"
#include "rampart/seccomp.h"
#include "rampart/log.h"

// clang-format off
static const char *const allowed[] = {
    /* memory, threads, time */
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "futex", "set_robust_list",
    "get_robust_list", "rseq", "set_tid_address", "arch_prctl", "prlimit64", "getrandom",
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "sched_yield", "sched_getaffinity", "restart_syscall", "exit", "exit_group", "membarrier",
    /* files: S/agent/, the CA file, name resolution's files, OpenSSL's configuration */
    "read", "write", "pread64", "pwrite64", "readv", "writev", "open", "openat", "close", "lseek",
    "fstat", "newfstatat", "stat", "lstat", "statx", "statfs", "fstatfs", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat", "getdents64", "mkdir", "mkdirat", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "fsync", "fdatasync", "ftruncate", "fcntl", "flock", "dup",
    "dup2", "dup3", "pipe", "pipe2", "ioctl", "getcwd", "fchmod", "umask", "uname", "sysinfo",
    "memfd_create", "eventfd2",
    /* sockets: the service, DNS, the monitor */
    "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "socket", "socketpair", "connect", "bind", "recvmsg", "sendmsg", "recvfrom",
    "sendto", "sendmmsg", "getsockopt", "setsockopt", "getsockname", "getpeername", "shutdown",
    /* signals (SIGTERM, SIGUSR1: check now), identity */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill", "getpid",
    "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "prctl",
};
// clang-format on

rp_err_t rp_agent_confine(pid_t runner)
{
    rp_seccomp_t f;

    rp_seccomp_new(&f, SCMP_ACT_KILL_PROCESS, true, RP_SECCOMP_NAMES(allowed));
    if (runner > 0) { /* the stop told to the MCU's relay runner (rp_mcu_runner_stop) */
        rp_seccomp_rule(&f, SCMP_ACT_ALLOW, SCMP_SYS(kill), 2,
                        SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)runner, 0),
                        SCMP_A1(SCMP_CMP_EQ, SIGTERM, 0));
    }
    /* A thread (libcurl's resolver), never a process: clone only with CLONE_THREAD. clone3's
     * flags sit behind a pointer the filter cannot read: ENOSYS, and libc falls back to clone. */
#ifndef SANITIZER_BUILD /* whose LeakSanitizer's tracer is a process (rp_seccomp_load) */
    rp_seccomp_rule(&f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
#endif
    rp_seccomp_rule(&f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rp_seccomp_load(&f, "the agent", NULL) != 0)
        return RP_ERR_IO;
    rp_log_debug("seccomp: the agent's allow-list is in force");
    return RP_OK;
}

int rp_agent_confine_selftest(void)
{
    return rp_agent_confine(0) != RP_OK ? 2 : rp_seccomp_selftest();
}
