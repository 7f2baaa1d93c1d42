/*
 * Unit test: the compartment's seccomp filters (device/launcher/filter.c), each loaded in a child
 * and tried. The init's refuses fallocate, so that it cannot allocate the log's blocks past
 * RLIMIT_FSIZE with FALLOC_FL_KEEP_SIZE (review r6, M1); the app's allows it (its own storage).
 * The init's allows what it calls to keep the app's log (its bucket's clock, its drop report).
 * The hosts keeper's lets it replace /etc/hosts (rp_launch_hosts_write) and refuses the rest
 * (a new user namespace, fallocate) (review r6, L2). The keeper itself, confined as it is (its
 * Landlock domain and filter), serves its updates on a socket: a stale .hosts.new truncated, one it
 * cannot open and a rename that fails each answered with the errno and said on stderr (the error
 * path: unlinkat, strerror, stdio), a packet of another size refused, and its end when the app's
 * pipe closes (review r7, L6).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "filter.h"
#include "launch.h"
#include "rampart/seccomp.h"

static char dir[64];
static int dir_fd = -1, file_fd = -1;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/rp-filter.XXXXXX");
    if (mkdtemp(dir) == NULL || (dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    file_fd = openat(dir_fd, "log", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    return file_fd >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    close(file_fd);
    (void)unlinkat(dir_fd, "log", 0);
    (void)unlinkat(dir_fd, "hosts", 0);
    (void)unlinkat(dir_fd, ".hosts.new", 0);
    close(dir_fd);
    return rmdir(dir);
}

/* fallocate(KEEP_SIZE) of 64 KiB on the file, in a child under the filter for who (-1: none).
 * The child's exit: 0 allowed, 1 EPERM, 2 anything else. */
static int try_fallocate(int who)
{
    pid_t pid = fork();
    int st;

    assert_true(pid >= 0);
    if (pid == 0) {
        rp_seccomp_t f;
        if (who >= 0) {
            rp_launcher_filter(&f, SCMP_ACT_ERRNO(EPERM), false, (rp_filter_for_t)who);
            if (rp_seccomp_load(&f, "test", NULL) != 0)
                _exit(3);
        }
        if (fallocate(file_fd, FALLOC_FL_KEEP_SIZE, 0, 64 * 1024) == 0)
            _exit(0);
        _exit(errno == EPERM ? 1 : 2);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void the_init_cannot_fallocate(void **state)
{
    (void)state;
    if (try_fallocate(-1) != 0)
        skip(); /* a file system without fallocate: nothing to hold */
    assert_int_equal(try_fallocate(RP_FILTER_INIT), 1);
    assert_int_equal(try_fallocate(RP_FILTER_APP), 0);
}

/* What the init calls to keep the app's log (device/launcher/main.c: log_start, log_drain, log_cut,
 * wait_any, log_say_dropped), each under its filter: the file's size and mtime, its last byte, the
 * wall clock (the raw call: the vDSO makes none), a non-blocking read of the pipe, a write, a cut
 * back, a timed wait, and the report of a drop. The child's exit: 0, or the step that failed. */
static void the_init_keeps_the_log(void **state)
{
    pid_t pid;
    int st, p[2], sv[2];

    (void)state;
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(write(p[1], "line\n", 5), 5);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rp_seccomp_t f;
        struct stat fs;
        struct timespec ts = {0, 1000000};
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        rp_launch_msg_t m = {.type = RP_LAUNCH_LOG_DROPPED, .value = 1};
        char buf[16];
        rp_launcher_filter(&f, SCMP_ACT_ERRNO(EPERM), false, RP_FILTER_INIT);
        if (rp_seccomp_load(&f, "test", NULL) != 0)
            _exit(10);
        if (write(file_fd, "x\n", 2) != 2)
            _exit(1);
        if (fstat(file_fd, &fs) != 0 || fs.st_size != 2 || pread(file_fd, buf, 1, 1) != 1)
            _exit(2);
        if (syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts) != 0)
            _exit(3);
        if (read(p[0], buf, sizeof(buf)) != 5 || read(p[0], buf, sizeof(buf)) != -1 ||
            errno != EAGAIN)
            _exit(4);
        if (pwrite(file_fd, "y", 1, 0) != 1 || ftruncate(file_fd, 1) != 0 ||
            lseek(file_fd, 0, SEEK_END) != 1)
            _exit(5);
        if (ppoll(&pf, 1, &(struct timespec){0, 1000000}, NULL) != 0)
            _exit(6);
        if (rp_launch_send(sv[1], &m, -1) != 0)
            _exit(7);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

static void the_keeper_writes_hosts_and_little_else(void **state)
{
    rp_manifest_t m;
    rp_launch_hosts_t h;
    char text[256] = "";
    pid_t pid;
    int st, fd;
    ssize_t n;

    (void)state;
    memset(&m, 0, sizeof(m));
    memset(&h, 0, sizeof(h));
    m.nconnections = 1;
    snprintf(m.connections[0].host, sizeof(m.connections[0].host), "svc.test");
    h.conn[0].n = 1;
    h.conn[0].addr[0].s_addr = htonl(0x0a000009); /* 10.0.0.9 */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rp_seccomp_t f;
        char why[200];
        rp_launcher_keeper_filter(&f);
        if (rp_seccomp_load(&f, "test", NULL) != 0)
            _exit(3);
        if (rp_launch_hosts_write(dir_fd, &m, &h, why, sizeof(why)) != 0)
            _exit(4);
        if (unshare(CLONE_NEWUSER) == 0 || errno != EPERM)
            _exit(5);
        if (fallocate(file_fd, FALLOC_FL_KEEP_SIZE, 0, 4096) == 0 || errno != EPERM)
            _exit(6);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    fd = openat(dir_fd, "hosts", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    assert_true(n > 0);
    assert_non_null(strstr(text, "\n10.0.0.9 svc.test\n"));
}

/* The keeper's answer to the update sent on net (10.0.0.9 for svc.test), or to a packet of one
 * byte (short): its status byte (0, or an errno). */
static int keeper_update(int net, bool short_packet)
{
    rp_launch_hosts_t h;
    unsigned char status = 0xff;

    memset(&h, 0, sizeof(h));
    h.conn[0].n = 1;
    h.conn[0].addr[0].s_addr = htonl(0x0a000009);
    assert_int_equal(send(net, &h, short_packet ? 1 : sizeof(h), 0),
                     short_packet ? 1 : (ssize_t)sizeof(h));
    assert_int_equal(read(net, &status, 1), 1);
    return status;
}

/* The next line the keeper said on stderr (err), into line. */
static void keeper_said(FILE *err, char *line, size_t cap)
{
    assert_non_null(fgets(line, (int)cap, err));
    assert_non_null(strstr(line, "rampart-launcher: app: its /etc/hosts is not rewritten: "));
}

static void the_keeper_serves_and_says_why_not(void **state)
{
    static rp_manifest_t m;
    char text[512] = "", line[512];
    int net[2], life[2], err[2], fd, st;
    uid_t who = geteuid() == 0 ? 65534 : geteuid(); /* (root writes a read-only file) */
    FILE *said;
    pid_t pid;
    ssize_t n;

    (void)state;
    m.nconnections = 1;
    snprintf(m.connections[0].host, sizeof(m.connections[0].host), "svc.test");
    assert_int_equal(fchmod(dir_fd, 0777), 0); /* (the keeper's uid writes there) */
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, net), 0);
    assert_int_equal(pipe2(life, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* (as the launcher has it: no_new_privs, the app's uid) */
        if (dup2(err[1], 2) != 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            (geteuid() == 0 && setresuid(who, who, who) != 0))
            _exit(3);
        close(net[0]);
        close(life[1]);
        if (rp_launcher_keeper_confine(dir_fd, false) != 0)
            _exit(4);
        rp_launcher_keeper_serve(net[1], life[0], dir_fd, &m, "app");
    }
    close(net[1]);
    close(life[0]);
    close(err[1]);
    said = fdopen(err[0], "r");
    assert_non_null(said);
    /* A stale .hosts.new, longer than the new text (Landlock's truncate right). */
    fd = openat(dir_fd, ".hosts.new", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, 0666), 0);
    memset(text, 'x', sizeof(text) - 1);
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    assert_int_equal(keeper_update(net[0], false), 0);
    fd = openat(dir_fd, "hosts", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    memset(text, 0, sizeof(text));
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    assert_true(n > 0 && text[n - 1] == '\n' && strchr(text, 'x') == NULL);
    assert_non_null(strstr(text, "\n10.0.0.9 svc.test\n"));
    /* A .hosts.new it cannot open: refused, said, and it goes on. */
    fd = openat(dir_fd, ".hosts.new", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(keeper_update(net[0], false), EACCES);
    keeper_said(said, line, sizeof(line));
    assert_non_null(strstr(line, "cannot write /etc/hosts: Permission denied"));
    assert_int_equal(unlinkat(dir_fd, ".hosts.new", 0), 0);
    /* A rename that fails (a directory in the way: EACCES from Landlock, which lets the keeper
     * remove no directory, EISDIR without it): its new file removed. */
    assert_int_equal(unlinkat(dir_fd, "hosts", 0), 0);
    assert_int_equal(mkdirat(dir_fd, "hosts", 0755), 0);
    st = keeper_update(net[0], false);
    assert_true(st == EACCES || st == EISDIR);
    keeper_said(said, line, sizeof(line));
    assert_non_null(strstr(line, st == EACCES ? "cannot write /etc/hosts: Permission denied"
                                              : "cannot write /etc/hosts: Is a directory"));
    assert_int_equal(faccessat(dir_fd, ".hosts.new", F_OK, AT_EACCESS), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(unlinkat(dir_fd, "hosts", AT_REMOVEDIR), 0);
    /* Not the addresses' form. */
    assert_int_equal(keeper_update(net[0], true), EPROTO);
    keeper_said(said, line, sizeof(line));
    assert_non_null(strstr(line, "a packet of 1 bytes"));
    /* The app gone: it ends, by itself, and well. */
    close(life[1]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_null(fgets(line, sizeof(line), said)); /* nothing else said */
    fclose(said);
    close(net[0]);
    assert_int_equal(fchmod(dir_fd, 0700), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_init_cannot_fallocate),
        cmocka_unit_test(the_init_keeps_the_log),
        cmocka_unit_test(the_keeper_writes_hosts_and_little_else),
        cmocka_unit_test(the_keeper_serves_and_says_why_not),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
