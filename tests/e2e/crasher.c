/*
 * The app of tests/e2e/crash.sh and failure-flow.sh: crashes in a known function, aborts,
 * crashes under a huge stack, exits with status 3 (exit3), dies at its memory limit (oom), or lives
 * while doing what makes a traced process stop (threads, a child, a handled SIGSEGV, a stop and a
 * continue); under a watchdog (manifest WatchdogSeconds), hangs (hang: says nothing after "ready")
 * or lives saying it is alive every 500 ms (heartbeat). Says it is ready first (the app contract).
 * With "once" after the mode, it does so in one run only, then lives quietly.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void ready(void)
{
    const char *fd = getenv("RAMPART_READY_FD");
    if (fd != NULL)
        dprintf(atoi(fd), "ready\n");
}

/* The known function: the test looks for it by name with eu-addr2line. */
__attribute__((noinline)) void rampart_test_crash_here(volatile int *p)
{
    *p = 42;
}

__attribute__((noinline)) static void deep(int n)
{
    volatile char big[1024 * 1024]; /* far more than the capture's window */
    memset((char *)big, n, sizeof(big));
    rampart_test_crash_here((volatile int *)0x10);
}

static volatile sig_atomic_t handled;
static void on_segv(int sig)
{
    (void)sig;
    handled = 1;
}
static void *thread_main(void *arg)
{
    return arg;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "segv";
    int once = argc > 2 && strcmp(argv[2], "once") == 0;

    /* "once": crash in one run only (a mark per mode in its storage, made just before),
     * then live; so that a test counts exactly one crash per device */
    char mark_path[64];
    snprintf(mark_path, sizeof(mark_path), "/data/crashed-%s", mode);
    if (once && access(mark_path, F_OK) == 0)
        mode = "quiet";

    ready();
    /* Long enough for an install's trial to end on its ready first (that run is stopped), so
     * that the crash is the installed version's. */
    sleep(1);
    if (once && strcmp(mode, "quiet") != 0) {
        FILE *mark = fopen(mark_path, "w");
        if (mark == NULL || fclose(mark) != 0)
            return 4;
        sync();
    }
    fprintf(stderr, "crash-app: %s now\n", mode);
    fflush(stderr);
    if (strcmp(mode, "segv") == 0)
        rampart_test_crash_here((volatile int *)0x10);
    else if (strcmp(mode, "abort") == 0)
        abort();
    else if (strcmp(mode, "bigstack") == 0)
        deep(1);
    else if (strcmp(mode, "exit3") == 0)
        return 3; /* an exit, no crash */
    else if (strcmp(mode, "oom") == 0) {
        for (;;) { /* until the OOM killer at its memory limit */
            char *p = malloc(1 << 20);
            if (p != NULL)
                memset(p, 1, 1 << 20);
        }
    } else if (strcmp(mode, "quiet") == 0 || strcmp(mode, "hang") == 0) {
        for (;;)
            pause();
    } else if (strcmp(mode, "heartbeat") == 0) {
        const char *fd = getenv("RAMPART_READY_FD");
        for (unsigned n = 1;; n++) {
            if (fd == NULL || dprintf(atoi(fd), "alive\n") < 0)
                return 5;
            if (n % 10 == 0) { /* the test waits for a number of periods lived */
                fprintf(stderr, "crash-app: %u heartbeats\n", n);
                fflush(stderr);
            }
            usleep(500 * 1000);
        }
    } else if (strcmp(mode, "live") == 0) {
        pthread_t t;
        pid_t child;
        signal(SIGSEGV, on_segv);
        raise(SIGSEGV); /* handled: not a crash */
        signal(SIGSEGV, SIG_DFL);
        if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0)
            return 3;
        if ((child = fork()) == 0)
            _exit(0);
        waitpid(child, NULL, 0);
        signal(SIGCONT, SIG_DFL);
        if (fork() == 0) { /* stopped and continued by another process */
            kill(getppid(), SIGSTOP);
            usleep(100000);
            kill(getppid(), SIGCONT);
            _exit(0);
        }
        while (wait(NULL) > 0 || errno == EINTR)
            ;
        printf("all-good handled=%d\n", (int)handled);
        fflush(stdout);
        for (;;)
            pause();
    }
    return 0;
}
