/*
 * A hostile app for tests/e2e/compartment.sh, built by the test: `hostile CASE [ARG]` tries one
 * escape (or one allowed thing) and prints "CASE: refused (why)" or "CASE: ok (...)"; an escape
 * that works prints "CASE: ESCAPED" and exits 1. Each case runs in a compartment of its own.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int refused(const char *c, long rc)
{
    if (rc >= 0) {
        printf("%s: ESCAPED (returned %ld)\n", c, rc);
        return 1;
    }
    printf("%s: refused (%s)\n", c, strerror(errno));
    return 0;
}

static int absent(const char *c, const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    if (fd >= 0 || stat(path, &st) == 0) {
        printf("%s: ESCAPED (%s is there)\n", c, path);
        return 1;
    }
    printf("%s: refused (%s: %s)\n", c, path, strerror(errno));
    return 0;
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : "";

    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(c, "ptrace"))
        return refused(c, ptrace(PTRACE_ATTACH, 1, 0, 0));
    if (!strcmp(c, "mount"))
        return refused(c, mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(c, "unshare"))
        return refused(c, unshare(CLONE_NEWUSER | CLONE_NEWNS));
    if (!strcmp(c, "setns")) {
        int fd = open("/proc/self/ns/net", O_RDONLY);
        return refused(c, setns(fd < 0 ? 0 : fd, 0));
    }
    if (!strcmp(c, "keyctl"))
        return refused(c, syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
    if (!strcmp(c, "bpf")) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        return refused(c, syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a)));
    }
    if (!strcmp(c, "perf_event_open")) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof(a));
        a.size = sizeof(a);
        a.type = PERF_TYPE_SOFTWARE;
        return refused(c, syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
    }
    if (!strcmp(c, "rlimit")) {
        struct rlimit r;
        getrlimit(RLIMIT_NOFILE, &r);
        r.rlim_max += 1000;
        r.rlim_cur = r.rlim_max;
        return refused(c, setrlimit(RLIMIT_NOFILE, &r));
    }
    if (!strcmp(c, "rlimit-lower")) { /* allowed: lowering its own limit */
        struct rlimit r;
        getrlimit(RLIMIT_NOFILE, &r);
        r.rlim_cur = r.rlim_max - 1;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
            printf("%s: FAILED (%s)\n", c, strerror(errno));
            return 1;
        }
        printf("%s: ok\n", c);
        return 0;
    }
    if (!strcmp(c, "setuid")) {
        long rc = setuid(0);
        if (rc == 0 || getuid() == 0 || geteuid() == 0)
            return refused(c, 0);
        return refused(c, -1);
    }
    if (!strcmp(c, "module"))
        return refused(c, syscall(SYS_finit_module, 0, "", 0));
    if (!strcmp(c, "write-tree")) {
        int fd = open("/app/planted", O_WRONLY | O_CREAT, 0644);
        if (fd < 0)
            fd = open(argv[0], O_WRONLY);
        return refused(c, fd);
    }
    if (!strcmp(c, "absent")) /* the device's paths: state dir, another app's storage, /dev/mem */
        return absent(c, arg);
    if (!strcmp(c, "mknod"))
        return refused(c, mknod("/tmp/mem", S_IFCHR | 0600, makedev(1, 1)));
    if (!strcmp(c, "forkbomb")) {
        int n = 0;
        for (; n < 10000; n++) {
            pid_t p = fork();
            if (p == 0) {
                pause();
                _exit(0);
            }
            if (p < 0)
                break;
        }
        printf("%s: %s after %d processes (%s)\n", c, n < 10000 ? "refused" : "ESCAPED", n,
               strerror(errno));
        return n < 10000 ? 0 : 1;
    }
    if (!strcmp(c, "memory")) {
        for (size_t total = 0;; total += 1 << 20) {
            char *p = malloc(1 << 20);
            if (p == NULL) {
                printf("%s: refused (malloc failed at %zu MiB)\n", c, total >> 20);
                return 0;
            }
            memset(p, 1, 1 << 20);
        }
    }
    if (!strcmp(c, "quota")) {
        char buf[65536];
        long total = 0;
        int fd = open("/data/fill", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        memset(buf, 'q', sizeof(buf));
        for (;;) {
            ssize_t n = write(fd, buf, sizeof(buf));
            if (n <= 0)
                break;
            total += n;
        }
        int e = errno;
        fsync(fd);
        printf("%s: %s after %ld KB (%s)\n", c, e == ENOSPC ? "refused" : "ESCAPED", total / 1024,
               strerror(e));
        /* no need to stay: the monitor checks the storage again when the app has exited */
        return e == ENOSPC ? 0 : 1;
    }
    if (!strcmp(c, "proc")) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        int others = 0;
        while (d && (e = readdir(d)) != NULL) {
            int pid = atoi(e->d_name);
            if (pid > 0 && pid != getpid()) {
                printf("%s: sees process %d\n", c, pid);
                others++;
            }
        }
        printf("%s: %s (%d other processes visible)\n", c, others ? "ESCAPED" : "refused", others);
        return others != 0;
    }
    if (!strcmp(c, "settimeofday")) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        return refused(c, syscall(SYS_settimeofday, &tv, NULL));
    }
    if (!strcmp(c, "clock_settime")) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return refused(c, clock_settime(CLOCK_REALTIME, &ts));
    }
    if (!strcmp(c, "reboot"))
        return refused(c, reboot(RB_POWER_OFF));
    if (!strcmp(c, "chroot"))
        return refused(c, chroot("/tmp"));
    if (!strcmp(c, "allowed")) {
        /* the contract and the allowed paths: ready, /data, /tmp, the tree, a listed device */
        char buf[64];
        int fd;
        if (write(3, "ready", 5) != 5)
            return printf("%s: FAILED ready\n", c), 1;
        fd = open("/data/kept", O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || write(fd, "x", 1) != 1)
            return printf("%s: FAILED /data (%s)\n", c, strerror(errno)), 1;
        close(fd);
        fd = open("/tmp/t", O_WRONLY | O_CREAT, 0600);
        if (fd < 0 || write(fd, "x", 1) != 1)
            return printf("%s: FAILED /tmp\n", c), 1;
        close(fd);
        fd = open("/app/data.txt", O_RDONLY);
        if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0)
            return printf("%s: FAILED reading the tree\n", c), 1;
        close(fd);
        if (arg[0]) {
            fd = open(arg, O_RDWR);
            if (fd < 0 || write(fd, "x", 1) != 1)
                return printf("%s: FAILED device %s (%s)\n", c, arg, strerror(errno)), 1;
            close(fd);
        }
        struct stat st;
        stat("/data/kept", &st);
        printf("%s: ok kept=%lld env=%s,%s,%s,%s,%s cwd=%s\n", c, (long long)st.st_size,
               getenv("RAMPART_COMPONENT"), getenv("RAMPART_VERSION"), getenv("RAMPART_READY_FD"),
               getenv("RAMPART_DATA_DIR"), getenv("HOME"), getcwd(buf, sizeof(buf)));
        return 0;
    }
    if (!strcmp(c, "wait")) { /* holds its device until the file arg appears in /tmp... or TERM */
        write(3, "ready", 5);
        pause();
        return 0;
    }
    printf("unknown case %s\n", c);
    return 2;
}
