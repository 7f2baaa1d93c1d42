/*
 * Setting up, loading and releasing a seccomp filter (rampart/seccomp.h): the steps every filter
 * of ours takes, and the calls a sanitizer build adds to those of our own processes.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rampart/log.h"
#include "rampart/seccomp.h"

void rp_seccomp_new(rp_seccomp_t *f, uint32_t def, bool ours, const char *const *names, size_t n)
{
    f->ours = ours;
    f->ctx = seccomp_init(def);
    f->rc = f->ctx == NULL ? -EINVAL : 0;
    if (f->rc == 0)
        f->rc = seccomp_attr_set(f->ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    rp_seccomp_add(f, SCMP_ACT_ALLOW, names, n);
}

void rp_seccomp_add(rp_seccomp_t *f, uint32_t action, const char *const *names, size_t n)
{
    for (size_t i = 0; f->rc == 0 && i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr != __NR_SCMP_ERROR)
            f->rc = seccomp_rule_add(f->ctx, action, nr, 0);
    }
}

void rp_seccomp_rule(rp_seccomp_t *f, uint32_t action, int nr, unsigned n, ...)
{
    struct scmp_arg_cmp cmp[6];
    va_list ap;

    if (f->rc != 0)
        return;
    if (n > sizeof(cmp) / sizeof(cmp[0])) {
        f->rc = -EINVAL;
        return;
    }
    va_start(ap, n);
    for (unsigned i = 0; i < n; i++)
        cmp[i] = va_arg(ap, struct scmp_arg_cmp);
    va_end(ap);
    f->rc = seccomp_rule_add_array(f->ctx, action, nr, n, cmp);
}

int rp_seccomp_load(rp_seccomp_t *f, const char *who, int *notify_fd)
{
#ifdef SANITIZER_BUILD
    /* LeakSanitizer at exit: its tracer (a process-like clone, ptrace, reading the threads and
     * /proc/self), its stop of the threads, and ASan's own report. */
    static const char *const sanitizer[] = {
        "ptrace",       "process_vm_readv", "clone",       "wait4",  "getdents",
        "getdents64",   "getppid",          "kill",        "tgkill", "sched_getaffinity",
        "rt_sigaction", "rt_sigprocmask",   "sigaltstack", "prctl",  "uname",
        "open",         "openat",           "readlink",    "ioctl",  "sched_yield",
        "nanosleep",    "clock_nanosleep",  "gettid",      "getpid", "futex",
        "madvise",      "mprotect"};
    if (f->ours)
        rp_seccomp_add(f, SCMP_ACT_ALLOW, RP_SECCOMP_NAMES(sanitizer));
#endif
    if (f->rc == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        f->rc = -errno;
    if (f->rc == 0)
        f->rc = seccomp_load(f->ctx);
    if (f->rc == 0 && notify_fd != NULL)
        *notify_fd = seccomp_notify_fd(f->ctx);
    if (f->ctx != NULL)
        seccomp_release(f->ctx);
    f->ctx = NULL;
    if (f->rc != 0 && who != NULL)
        rp_log_error("seccomp: %s: cannot install the filter: %s", who, strerror(-f->rc));
    return f->rc;
}

int rp_seccomp_selftest(void)
{
    syscall(SYS_setns, -1, 0);
    rp_log_error("seccomp: survived a forbidden system call: the filter is not working");
    return 1;
}
