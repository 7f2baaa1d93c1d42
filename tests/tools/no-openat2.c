/*
 * Runs a program where openat2() answers ENOSYS, as on a kernel before Linux 5.6 or under a
 * system-call filter that does not know it (systemd-nspawn's): so that the tests see what the
 * server does without it. A test tool, not a product command.
 *   no-openat2 PROGRAM [ARG...]
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    scmp_filter_ctx ctx;

    if (argc < 2) {
        fprintf(stderr, "usage: no-openat2 PROGRAM [ARG...]\n");
        return 2;
    }
    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0) != 0 ||
        seccomp_load(ctx) != 0) {
        fprintf(stderr, "no-openat2: cannot load the filter\n");
        return 2;
    }
    seccomp_release(ctx);
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
