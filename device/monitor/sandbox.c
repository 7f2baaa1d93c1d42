/*
 * The monitor's seccomp allow-list (sandbox.h). What it holds: the calls its own loop makes (poll,
 * sockets, the files of S), what the root of trust needs (the TSS reaching a TPM over a socket or
 * /dev/tpm*, dlopen of its TCTI and of OpenSSL's providers), and stopping and waiting for its app
 * supervisor. Nothing that builds a compartment, and no exec: apps start in the app supervisor
 * (apps.h), a process forked before this filter, because a filter is inherited by every
 * descendant and would override the apps' own.
 */
#include "rampart/seccomp.h"
#include "sandbox.h"

// clang-format off
static const char *const allowed[] = {
    /* memory, threads, time */
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "futex", "set_robust_list",
    "get_robust_list", "rseq", "set_tid_address", "arch_prctl", "prlimit64", "getrandom",
    "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "time", "sched_yield",
    "sched_getaffinity", "restart_syscall", "exit", "exit_group", "membarrier",
    /* files of the state directory */
    "read", "write", "pread64", "pwrite64", "readv", "writev", "open", "openat", "close", "lseek",
    "fstat", "newfstatat", "stat", "lstat", "statx", "statfs", "fstatfs", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat", "getdents64", "mkdir", "mkdirat", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "fsync", "fdatasync", "ftruncate", "fcntl", "flock", "dup",
    "dup2", "dup3", "pipe", "pipe2", "ioctl", "getcwd", "chdir", "fchmod", "fchmodat", "fchown",
    "umask", "copy_file_range", "sendfile", "uname", "sysinfo",
    "memfd_create", /* a metadata payload handed to the supervisor for rampart-unpack */
    /* sockets: clients, the TPM's TCTI, an install child's channel to the app supervisor */
    "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "socket", "socketpair", "connect", "accept4", "recvmsg", "sendmsg", "recvfrom", "sendto",
    "getsockopt", "setsockopt", "getsockname", "getpeername", "shutdown",
    /* signals, processes (the app supervisor: stopped with SIGTERM, waited for) */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "kill", "tgkill", "getpid",
    "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getpgrp",
    "setpgid", "setsid", "getresuid", "getresgid", "clone", "clone3", "fork", "vfork", "wait4",
    "waitid", "prctl", "close_range",
};
// clang-format on

rp_err_t rp_sandbox_enter(void)
{
    rp_seccomp_t f;

    rp_seccomp_new(&f, SCMP_ACT_KILL_PROCESS, true, RP_SECCOMP_NAMES(allowed));
    return rp_seccomp_load(&f, "the monitor", NULL) == 0 ? RP_OK : RP_ERR_IO;
}

int rp_sandbox_selftest(void)
{
    return rp_sandbox_enter() != RP_OK ? 2 : rp_seccomp_selftest();
}
