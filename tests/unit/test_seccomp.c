/*
 * Unit test: the one set-up of our seccomp filters (lib/src/seccomp.c), each filter loaded in a
 * forked child and tried. A listed call is allowed and any other takes the default action (an
 * errno, or the process killed: the self-test's call); a name libseccomp does not know allows
 * nothing and breaks nothing; a rule on an argument holds to it; a list can be given another
 * action; a call of another architecture kills the whole process (not its thread alone) whatever
 * the default; and a step that fails is kept, so that nothing is loaded and the child goes on
 * unconfined, told so.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rampart/seccomp.h"

/* What every child needs: its own end (and, ours, what a sanitizer build needs at it). */
static const char *const base[] = {"exit_group", "exit", "close", "no_such_call"};

/* Run child in a forked process; its wait status. */
static int in_child(int (*child)(void))
{
    pid_t pid = fork();
    int st;

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child());
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void assert_exit(int st, int code)
{
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), code);
}

/* 0: getuid allowed, getgid and geteuid refused with EPERM; else the step that failed. */
static int allowed_and_refused(void)
{
    static const char *const more[] = {"getuid"};
    rp_seccomp_t f;

    rp_seccomp_new(&f, SCMP_ACT_ERRNO(EPERM), true, RP_SECCOMP_NAMES(base));
    rp_seccomp_add(&f, SCMP_ACT_ALLOW, RP_SECCOMP_NAMES(more));
    if (rp_seccomp_load(&f, "test", NULL) != 0 || f.ctx != NULL)
        return 10;
    if (syscall(SYS_getuid) != (long)getuid())
        return 1;
    if (syscall(SYS_getgid) != -1 || errno != EPERM)
        return 2;
    if (syscall(SYS_geteuid) != -1 || errno != EPERM)
        return 3;
    return 0;
}

static void a_listed_call_is_allowed_the_rest_refused(void **state)
{
    (void)state;
    assert_exit(in_child(allowed_and_refused), 0);
}

static int killed(void)
{
    rp_seccomp_t f;

    rp_seccomp_new(&f, SCMP_ACT_KILL_PROCESS, true, RP_SECCOMP_NAMES(base));
    if (rp_seccomp_load(&f, "test", NULL) != 0)
        return 10;
    return rp_seccomp_selftest(); /* 1: survived */
}

static void the_default_kill_holds(void **state)
{
    int st;

    (void)state;
    st = in_child(killed);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSYS);
}

/* socket(2) for AF_UNIX alone; getegid answered EACCES (a list given another action). */
static int rules(void)
{
    static const char *const told_no[] = {"getegid"};
    rp_seccomp_t f;
    int fd;

    rp_seccomp_new(&f, SCMP_ACT_ERRNO(EPERM), true, RP_SECCOMP_NAMES(base));
    rp_seccomp_rule(&f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
    rp_seccomp_add(&f, SCMP_ACT_ERRNO(EACCES), RP_SECCOMP_NAMES(told_no));
    if (rp_seccomp_load(&f, "test", NULL) != 0)
        return 10;
    if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) < 0)
        return 1;
    close(fd);
    if (socket(AF_INET, SOCK_DGRAM, 0) != -1 || errno != EPERM)
        return 2;
    if (syscall(SYS_getegid) != -1 || errno != EACCES)
        return 3;
    return 0;
}

static void a_rule_on_an_argument_holds(void **state)
{
    (void)state;
    assert_exit(in_child(rules), 0);
}

/* A step that fails (a comparison of an eighth argument, which libseccomp refuses; seven
 * comparisons, past the bound; a default action libseccomp does not know): every later step does
 * nothing, nothing is loaded, the failure is returned, the filter released. */
static int failed(void)
{
    static const char *const getpid_too[] = {"getpid"};
    rp_seccomp_t f;

    rp_seccomp_new(&f, SCMP_ACT_ERRNO(EPERM), true, RP_SECCOMP_NAMES(base));
    rp_seccomp_rule(&f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_CMP(7, SCMP_CMP_EQ, 1, 0));
    if (f.rc != -EINVAL)
        return 1;
    rp_seccomp_add(&f, SCMP_ACT_ALLOW, RP_SECCOMP_NAMES(getpid_too));
    if (f.rc != -EINVAL || rp_seccomp_load(&f, "test (a failure expected)", NULL) != -EINVAL ||
        f.ctx != NULL)
        return 2;
    rp_seccomp_new(&f, SCMP_ACT_ERRNO(EPERM), true, RP_SECCOMP_NAMES(base));
    rp_seccomp_rule(&f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 7, SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
    if (rp_seccomp_load(&f, NULL, NULL) != -EINVAL)
        return 3;
    rp_seccomp_new(&f, 0x12345678u, true, RP_SECCOMP_NAMES(base));
    if (f.ctx != NULL || rp_seccomp_load(&f, NULL, NULL) == 0)
        return 4;
    if (syscall(SYS_getpid) != getpid() || syscall(SYS_getuid) < 0)
        return 5; /* not confined */
    return 0;
}

static void a_failed_step_loads_nothing(void **state)
{
    (void)state;
    assert_exit(in_child(failed), 0);
}

#if defined(__x86_64__)
/* getpid through the i386 entry (int 0x80), whose calls are another architecture's. */
static long i386_getpid(void)
{
    long ret;

    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
    return ret;
}

static int unconfined_i386(void)
{
    return i386_getpid() == getpid() ? 0 : 1;
}

/* A thread confines itself and calls as i386: the whole process is killed, not that thread. */
static void *confined_thread(void *arg)
{
    rp_seccomp_t f;

    (void)arg;
    rp_seccomp_new(&f, SCMP_ACT_ERRNO(EPERM), true, RP_SECCOMP_NAMES(base));
    if (rp_seccomp_load(&f, "test", NULL) != 0)
        _exit(10);
    (void)i386_getpid();
    return NULL;
}

static int confined_i386(void)
{
    pthread_t t;

    if (pthread_create(&t, NULL, confined_thread, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 11;
    return 0; /* survived */
}

static void another_architecture_is_killed(void **state)
{
    int st;

    (void)state;
    st = in_child(unconfined_i386);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        skip(); /* a kernel without the i386 entry */
    st = in_child(confined_i386);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSYS);
}
#else
static void another_architecture_is_killed(void **state)
{
    (void)state;
    skip();
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_listed_call_is_allowed_the_rest_refused),
        cmocka_unit_test(the_default_kill_holds),
        cmocka_unit_test(a_rule_on_an_argument_holds),
        cmocka_unit_test(a_failed_step_loads_nothing),
        cmocka_unit_test(another_architecture_is_killed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
