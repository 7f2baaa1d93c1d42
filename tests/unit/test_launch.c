/*
 * Unit test: the launcher's reports as the monitor takes them (rp_launch_recv, launch.c): one
 * message of the exact size, at most the one descriptor its caller asked for; a packet of another
 * size (a longer one arrives cut) is refused, and a descriptor nobody asked for is closed, so that
 * a launcher the app took over can neither pass off a crash capture's bytes as a message nor
 * fill the monitor's descriptor table. A crash's capture travels in its report's packet, so that
 * no other report is ever taken for it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "launch.h"

static int sv[2];

static int setup(void **state)
{
    (void)state;
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
}

static int teardown(void **state)
{
    (void)state;
    close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return 0;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* A packet of len bytes from sv[1], with pass_fd (-1: none). */
static void send_raw(const void *buf, size_t len, int pass_fd)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pass_fd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.b;
        mh.msg_controllen = sizeof(u.b);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    assert_int_equal(sendmsg(sv[1], &mh, 0), (ssize_t)len);
}

static void a_message_and_its_descriptor(void **state)
{
    rp_launch_msg_t m, got;
    int fd, before;
    (void)state;

    memset(&m, 'x', sizeof(m));
    m.type = RP_LAUNCH_SECCOMP;
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(rp_launch_send(sv[1], &m, fd), 0);
    close(fd);
    before = open_fds();
    assert_int_equal(rp_launch_recv(sv[0], &got, &fd), 1);
    assert_int_equal(got.type, RP_LAUNCH_SECCOMP);
    assert_int_equal(strlen(got.text), sizeof(got.text) - 1); /* ended here, whatever came */
    assert_true(fd >= 0);
    assert_int_equal(open_fds(), before + 1);
    close(fd);
}

static void a_descriptor_not_asked_for_is_closed(void **state)
{
    rp_launch_msg_t m = {.type = RP_LAUNCH_APP_READY}, got;
    int fd, before;
    (void)state;

    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    before = open_fds();
    for (int i = 0; i < 8; i++)
        assert_int_equal(rp_launch_send(sv[1], &m, fd), 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(rp_launch_recv(sv[0], &got, NULL), 1);
        assert_int_equal(got.type, RP_LAUNCH_APP_READY);
    }
    assert_int_equal(open_fds(), before);
    close(fd);
}

static void another_size_is_no_message(void **state)
{
    static uint8_t big[sizeof(rp_launch_msg_t) + 100];
    rp_launch_msg_t m = {.type = RP_LAUNCH_EXIT}, got;
    int fd, got_fd, before;
    (void)state;

    memset(big, 0, sizeof(big));
    big[0] = RP_LAUNCH_EXIT;
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    before = open_fds();
    send_raw(big, sizeof(big), fd);                 /* longer: arrives cut to a message's size */
    send_raw(big, sizeof(rp_launch_msg_t) - 1, -1); /* shorter */
    assert_int_equal(rp_launch_recv(sv[0], &got, &got_fd), -1);
    assert_int_equal(got_fd, -1);
    assert_int_equal(rp_launch_recv(sv[0], &got, NULL), -1);
    assert_int_equal(open_fds(), before);
    close(fd);
    /* The next message is taken as it should be; then the peer's end. */
    assert_int_equal(rp_launch_send(sv[1], &m, -1), 0);
    assert_int_equal(rp_launch_recv(sv[0], &got, NULL), 1);
    assert_int_equal(got.type, RP_LAUNCH_EXIT);
    close(sv[1]);
    sv[1] = -1;
    assert_int_equal(rp_launch_recv(sv[0], &got, NULL), 0);
}

/* A crash's report and its capture come in one packet, taken whole (review r6, L4). */
static void a_crash_and_its_capture_in_one_packet(void **state)
{
    static uint8_t capture[2000], got_capture[4000];
    rp_launch_msg_t got;
    size_t len = 1;
    (void)state;

    for (size_t i = 0; i < sizeof(capture); i++)
        capture[i] = (uint8_t)(i * 7);
    assert_int_equal(rp_launch_send_crash(sv[1], capture, sizeof(capture)), 0);
    assert_int_equal(
        rp_launch_recv_report(sv[0], &got, got_capture, sizeof(got_capture), &len, NULL), 1);
    assert_int_equal(got.type, RP_LAUNCH_CRASH);
    assert_int_equal(len, sizeof(capture));
    assert_memory_equal(got_capture, capture, sizeof(capture));
    /* rp_launch_recv, which takes no capture, refuses it */
    assert_int_equal(rp_launch_send_crash(sv[1], capture, sizeof(capture)), 0);
    assert_int_equal(rp_launch_recv(sv[0], &got, NULL), -1);
}

/* A capture that was not sent: the crash is reported without it, and the exit that follows is
 * the exit, never taken for a capture (review r6, L4). An announced length that is not the
 * packet's, or bytes after another type, is no message. */
static void a_lost_capture_keeps_the_exit(void **state)
{
    static uint8_t packet[sizeof(rp_launch_msg_t) + 100], got_capture[4000];
    rp_launch_msg_t lost = {.type = RP_LAUNCH_CRASH, .value = 0}, exited = {.type = RP_LAUNCH_EXIT},
                    got, *head = (rp_launch_msg_t *)(void *)packet;
    size_t len = 1;
    (void)state;

    head->type = RP_LAUNCH_CRASH;
    head->value = 99; /* one byte short */
    send_raw(packet, sizeof(packet), -1);
    head->type = RP_LAUNCH_EXIT;
    head->value = 100;
    send_raw(packet, sizeof(packet), -1);
    head->type = RP_LAUNCH_CRASH; /* the old form: the capture announced, in a later packet */
    send_raw(packet, sizeof(rp_launch_msg_t), -1);
    snprintf(lost.text, sizeof(lost.text), "its capture could not be sent");
    assert_int_equal(rp_launch_send(sv[1], &lost, -1), 0);
    exited.value = 11 << 8;
    assert_int_equal(rp_launch_send(sv[1], &exited, -1), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            rp_launch_recv_report(sv[0], &got, got_capture, sizeof(got_capture), &len, NULL), -1);
    assert_int_equal(
        rp_launch_recv_report(sv[0], &got, got_capture, sizeof(got_capture), &len, NULL), 1);
    assert_int_equal(got.type, RP_LAUNCH_CRASH);
    assert_int_equal(len, 0);
    assert_string_equal(got.text, "its capture could not be sent");
    assert_int_equal(
        rp_launch_recv_report(sv[0], &got, got_capture, sizeof(got_capture), &len, NULL), 1);
    assert_int_equal(got.type, RP_LAUNCH_EXIT);
    assert_int_equal(got.value, 11 << 8);
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_message_and_its_descriptor, setup, teardown),
        cmocka_unit_test_setup_teardown(a_descriptor_not_asked_for_is_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(another_size_is_no_message, setup, teardown),
        cmocka_unit_test_setup_teardown(a_crash_and_its_capture_in_one_packet, setup, teardown),
        cmocka_unit_test_setup_teardown(a_lost_capture_keeps_the_exit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
