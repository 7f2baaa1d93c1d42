/*
 * bench-app-start: what a compartment costs an app at start. The same app (a shell script that
 * says "ready" on its ready descriptor at once) is started ROUNDS times in a compartment
 * (rp_compartment_start, then driven until it says ready) and ROUNDS times by a bare fork+exec
 * with the same ready pipe; each start is timed from the call to "ready". Prints the medians, the
 * compartment's overhead in milliseconds (goal: <= 20 ms) and the ratio of the two.
 * Needs root (namespaces, mounts, cgroups), as the monitor does.
 *
 *   bench-app-start [--rounds N]
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compartment.h"
#include "rampart/log.h"

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One bare start: fork, the ready pipe's write end as descriptor 3, exec; time to "ready". */
static double bare_start(const char *exe)
{
    char buf[16];
    int p[2];
    pid_t pid;
    double t0 = now_ms(), t = -1;
    size_t got = 0;

    if (pipe(p) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        if (dup2(p[1], 3) < 0)
            _exit(127);
        execl(exe, exe, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    while (pid > 0 && got < 5) {
        ssize_t n = read(p[0], buf + got, sizeof(buf) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got >= 5 && memcmp(buf, "ready", 5) == 0)
        t = now_ms() - t0;
    close(p[0]);
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return t;
}

/* One compartment start: from rp_compartment_start to the app's "ready". */
static double compartment_start(const rp_compartment_spec_t *spec)
{
    rp_compartment_t c;
    char why[512] = "";
    double t0 = now_ms(), t = -1;

    if (rp_compartment_start(spec, &c, why, sizeof(why)) != RP_OK) {
        fprintf(stderr, "bench-app-start: the compartment did not start: %s\n", why);
        rp_compartment_stop(&c);
        return -1;
    }
    while (!c.run.ready && !rp_compartment_poll(&c, 1) && now_ms() - t0 < 10000)
        ;
    if (c.run.ready)
        t = now_ms() - t0;
    rp_compartment_stop(&c);
    return t;
}

int main(int argc, char **argv)
{
    static rp_manifest_t m;
    char dir[] = "/tmp/rampart-bench-app-start.XXXXXX", tree[256], exe[300], state[256], run[256],
         log[300];
    rp_compartment_spec_t spec = {.manifest = &m,
                                  .component = "bench",
                                  .version = "1.0.0",
                                  .uid = 61299,
                                  .gid = 61299,
                                  .channel_fd = -1};
    int rounds = 20;
    double *a, *b, ma, mb;
    FILE *f;

    if (argc == 3 && strcmp(argv[1], "--rounds") == 0)
        rounds = atoi(argv[2]);
    if (rounds < 1 || rounds > 10000 || (argc != 1 && argc != 3)) {
        fprintf(stderr, "usage: bench-app-start [--rounds N]\n");
        return 2;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "bench-app-start: needs root (namespaces, mounts, cgroups): skipped\n");
        return 0;
    }
    rp_log_init("bench-app-start", RP_LOG_WARN);
    if (rp_compartment_launcher_open(RP_LAUNCHER_PATH, exe, sizeof(exe)) != RP_OK) {
        fprintf(stderr, "bench-app-start: rampart-launcher: %s\n", exe);
        return 1;
    }
    if (mkdtemp(dir) == NULL || chmod(dir, 0755) != 0)
        return 1;
    snprintf(tree, sizeof(tree), "%s/tree", dir);
    snprintf(exe, sizeof(exe), "%s/app.sh", tree);
    snprintf(state, sizeof(state), "%s/S", dir);
    snprintf(run, sizeof(run), "%s/run", dir);
    snprintf(log, sizeof(log), "%s/log", dir);
    if (mkdir(tree, 0755) != 0 || mkdir(state, 0700) != 0 || mkdir(run, 0700) != 0 ||
        (f = fopen(exe, "w")) == NULL)
        return 1;
    fputs("#!/bin/sh\necho ready >&3\nexec sleep 60\n", f);
    if (fclose(f) != 0 || chmod(exe, 0755) != 0)
        return 1;
    memset(&m, 0, sizeof(m));
    snprintf(m.name, sizeof(m.name), "bench");
    snprintf(m.component_id, sizeof(m.component_id), "bench");
    snprintf(m.entry_point, sizeof(m.entry_point), "app.sh");
    m.memory_kb = RP_MANIFEST_MEMORY_KB_DEFAULT;
    m.pids = RP_MANIFEST_PIDS_DEFAULT;
    m.cpu_percent = RP_MANIFEST_CPU_PERCENT_DEFAULT;
    spec.state_dir = state;
    spec.tree_dir = tree;
    spec.run_dir = run;
    spec.log_path = log;
    a = calloc((size_t)rounds, sizeof(*a));
    b = calloc((size_t)rounds, sizeof(*b));
    if (a == NULL || b == NULL)
        return 1;
    /* interleaved, so that a change of the machine's load falls on both alike */
    for (int i = 0; i < rounds; i++) {
        a[i] = compartment_start(&spec);
        b[i] = bare_start(exe);
        if (a[i] < 0 || b[i] < 0) {
            fprintf(stderr, "bench-app-start: round %d failed\n", i);
            return 1;
        }
    }
    ma = median(a, rounds);
    mb = median(b, rounds);
    printf("app start to ready (median of %d): compartment %.1f ms, bare fork+exec %.1f ms\n",
           rounds, ma, mb);
    printf("compartment overhead: %.1f ms (goal <= 20 ms); compartment / bare = %.2f\n", ma - mb,
           ma / mb);
    (void)rp_compartment_cleanup(state, run);
    free(a);
    free(b);
    if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "bench-app-start: %s is left\n", dir);
    return 0;
}
