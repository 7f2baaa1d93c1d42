/*
 * The monitor's notifications to its service manager (lib/src/notify_socket.c, rampart/notify.h):
 * the datagrams a real Unix socket receives, by path and in the abstract namespace; nothing
 * without $NOTIFY_SOCKET; the watchdog's timeout only for this process, and its pings at half of
 * it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "rampart/notify.h"

/* A datagram socket bound at name (a path, or "@..." abstract), receiving with a timeout. */
static int listener(const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {5, 0};
    size_t n = strlen(name);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    assert_int_equal(
        bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
        0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    return fd;
}

static void received(int fd, const char *want)
{
    char buf[600];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void nothing_waiting(int fd)
{
    char buf[64];

    assert_true(recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0);
}

static void messages(void **state)
{
    char dir[] = "/tmp/rp-notify.XXXXXX", path[64], abstract[64];
    int fd, afd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    fd = listener(path);
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(rp_notify_send("READY=1"), 0); /* no manager: nothing, no error */
    setenv("NOTIFY_SOCKET", path, 1);
    rp_notify("READY=1\nSTATUS=serving %s", "S");
    received(fd, "READY=1\nSTATUS=serving S");
    snprintf(abstract, sizeof(abstract), "@rp-notify-test-%ld", (long)getpid());
    afd = listener(abstract);
    setenv("NOTIFY_SOCKET", abstract, 1);
    rp_notify("STOPPING=1");
    received(afd, "STOPPING=1");
    nothing_waiting(fd);
    setenv("NOTIFY_SOCKET", "relative/path", 1); /* not a socket address systemd gives */
    assert_int_equal(rp_notify_send("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    close(afd);
    unlink(path);
    rmdir(dir);
}

static void watchdog(void **state)
{
    char dir[] = "/tmp/rp-notify.XXXXXX", path[64], pid[32];
    int fd;

    (void)state;
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_int_equal(rp_notify_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "2000000", 1);
    assert_int_equal(rp_notify_watchdog_usec(), 2000000);
    setenv("WATCHDOG_PID", "1", 1); /* another process's */
    assert_int_equal(rp_notify_watchdog_usec(), 0);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(rp_notify_watchdog_usec(), 2000000);
    setenv("WATCHDOG_USEC", "2s", 1);
    assert_int_equal(rp_notify_watchdog_usec(), 0);
    /* Pings: the first at once, the next not before half the timeout (1 s). */
    setenv("WATCHDOG_USEC", "2000000", 1);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    fd = listener(path);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_true(rp_notify_watchdog());
    received(fd, "WATCHDOG=1");
    assert_false(rp_notify_watchdog());
    nothing_waiting(fd);
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(messages),
        cmocka_unit_test(watchdog),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
