/*
 * The monitor's seccomp allow-list (sandbox.h). What it holds: the calls its own loop makes (poll,
 * sockets, the files of S), what the root of trust needs (the TSS reaching a TPM over a socket or
 * /dev/tpm*, dlopen of its TCTI and of OpenSSL's providers), and what an app's health check needs
 * to start and wait for a program (fork, exec: an app's trial runs under this filter too).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "rampart/log.h"
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
    /* sockets: clients, the TPM's TCTI */
    "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "socket", "connect", "accept4", "recvmsg", "sendmsg", "recvfrom", "sendto",
    "getsockopt", "setsockopt", "getsockname", "getpeername", "shutdown",
    /* signals, processes (an app's health check) */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "kill", "tgkill", "getpid",
    "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getpgrp",
    "setpgid", "setsid", "getresuid", "getresgid", "clone", "clone3", "fork", "vfork", "execve",
    "wait4", "waitid", "prctl", "close_range",
};
// clang-format on

rp_err_t rp_sandbox_enter(void)
{
    scmp_filter_ctx ctx;
    int rc = 0;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        rp_log_error("seccomp: cannot set no_new_privs");
        return RP_ERR_IO;
    }
    ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL)
        return RP_ERR_NO_MEMORY;
    for (size_t i = 0; rc == 0 && i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        /* A call this architecture lacks (open, stat on arm64) is simply not there to allow. */
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        rp_log_error("seccomp: cannot install the filter: %s", strerror(-rc));
        return RP_ERR_IO;
    }
    return RP_OK;
}

int rp_sandbox_selftest(void)
{
    if (rp_sandbox_enter() != RP_OK)
        return 2;
    /* Not on the list: the filter must kill here. */
    syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
    fprintf(stderr, "rampart-monitor: survived a forbidden system call: the filter is not "
                    "working\n");
    return 1;
}
