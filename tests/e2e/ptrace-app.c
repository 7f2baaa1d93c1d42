/*
 * An app for tests/e2e/dev-mode.sh: does its compartment let it debug its own processes? It
 * attaches to a child of its own with ptrace and reads the child's memory (what a debugger does),
 * then tries the compartment's init (pid 1 here), which stays out of reach in any mode. Each
 * result is one line of its log; then it says it is ready and waits to be stopped.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile long marker = 0x5241;

/* Attach to pid, read marker there, detach. 0 or the errno. */
static int debug_once(pid_t pid, long *seen)
{
    int st;

    if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) != 0)
        return errno;
    if (waitpid(pid, &st, __WALL) != pid || !WIFSTOPPED(st))
        return EIO;
    errno = 0;
    *seen = ptrace(PTRACE_PEEKDATA, pid, (void *)&marker, NULL);
    if (errno != 0)
        return errno;
    return ptrace(PTRACE_DETACH, pid, NULL, NULL) == 0 ? 0 : errno;
}

int main(void)
{
    const char *fd = getenv("RAMPART_READY_FD");
    long seen = 0;
    pid_t child = fork();
    int err;

    if (child < 0)
        return 1;
    if (child == 0) {
        for (;;)
            pause();
    }
    err = debug_once(child, &seen);
    if (err == 0)
        printf("ptrace child: ok, read %#lx\n", seen);
    else
        printf("ptrace child: refused: %s\n", strerror(err));
    err = debug_once(1, &seen);
    printf("ptrace init: %s\n", err == 0 ? "ok" : strerror(err));
    fflush(stdout);
    if (fd != NULL)
        dprintf(atoi(fd), "ready\n");
    for (;;)
        pause();
}
