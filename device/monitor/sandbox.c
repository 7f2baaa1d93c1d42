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
    "getsockopt", "setsockopt", "getsockname", "getpeername", "shutdown", "socketpair",
    /* signals, processes (an app's health check) */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "kill", "tgkill", "getpid",
    "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getpgrp",
    "setpgid", "setsid", "getresuid", "getresgid", "clone", "clone3", "fork", "vfork", "execve",
    "wait4", "waitid", "prctl", "close_range",
};
// clang-format on

/* LeakSanitizer stops the process with ptrace to look for leaks at exit: in a sanitizer build
 * (tests only) that much more is allowed, or every exit would be a kill. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_BUILD 1
#endif
#endif
#ifdef SANITIZER_BUILD
static const char *const allowed_sanitizer[] = {"ptrace", "process_vm_readv", "getdents"};
#endif

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
#ifdef SANITIZER_BUILD
    for (size_t i = 0; rc == 0 && i < sizeof(allowed_sanitizer) / sizeof(allowed_sanitizer[0]); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
                              seccomp_syscall_resolve_name(allowed_sanitizer[i]), 0);
#endif
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
    /* Not on the list (and harmless if it ran: an invalid descriptor): the filter must kill
     * here. */
    syscall(SYS_setns, -1, 0);
    fprintf(stderr, "rampart-monitor: survived a forbidden system call: the filter is not "
                    "working\n");
    return 1;
}
