/*
 * The app supervisor <-> rampart-launcher protocol's messages, and the small helpers both sides
 * use (launch.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "launch.h"

int rp_launch_pathf(char *out, size_t cap, const char *f, ...)
{
    va_list ap;
    int n;

    va_start(ap, f);
    n = vsnprintf(out, cap, f, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int rp_launch_read_text(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = read(fd, out, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    out[n] = '\0';
    return 0;
}

void rp_launch_note(char *missing, size_t cap, const char *what)
{
    size_t len = strlen(missing);
    snprintf(missing + len, cap - len, "%s%s", len ? "; " : "", what);
}

int rp_launch_send(int fd, const rp_launch_msg_t *m, int pass_fd)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof(*m)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

    if (pass_fd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(*m) ? 0 : -1;
}

int rp_launch_recv(int fd, rp_launch_msg_t *m, int *got_fd)
{
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;

    if (got_fd != NULL)
        *got_fd = -1;
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n == 0 ? 0 : -1;
    /* A descriptor no caller asked for is closed (one the peer sends with every message would
     * otherwise fill the table), and only one is taken. */
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
            cm->cmsg_len == CMSG_LEN(sizeof(int))) {
            int passed;
            memcpy(&passed, CMSG_DATA(cm), sizeof(int));
            if (got_fd != NULL && *got_fd < 0)
                *got_fd = passed;
            else
                close(passed);
        }
    /* A packet of another size (a longer one arrives cut: MSG_TRUNC) is not a message. */
    if (n != (ssize_t)sizeof(*m) || (mh.msg_flags & MSG_TRUNC)) {
        if (got_fd != NULL && *got_fd >= 0) {
            close(*got_fd);
            *got_fd = -1;
        }
        return -1;
    }
    m->text[sizeof(m->text) - 1] = '\0';
    return 1;
}
