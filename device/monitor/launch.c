/*
 * The app supervisor <-> rampart-launcher protocol's messages, and the small helpers both sides
 * use (launch.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* One packet of the iovecs, with pass_fd (-1: none). 0, or -1 (nothing sent: a SEQPACKET packet
 * goes whole or not at all). */
static int send_packet(int fd, struct iovec *iov, int niov, int pass_fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    size_t len = 0;

    for (int i = 0; i < niov; i++)
        len += iov[i].iov_len;
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
    return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

int rp_launch_send(int fd, const rp_launch_msg_t *m, int pass_fd)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof(*m)};
    return send_packet(fd, &iov, 1, pass_fd);
}

int rp_launch_send_crash(int fd, const uint8_t *capture, size_t len)
{
    rp_launch_msg_t m = {.type = RP_LAUNCH_CRASH, .value = (int)len};
    struct iovec iov[2] = {
        {.iov_base = &m,              .iov_len = sizeof(m)},
        {.iov_base = (void *)capture, .iov_len = len      }
    };
    if (len == 0 || len > INT_MAX)
        return -1;
    return send_packet(fd, iov, 2, -1);
}

int rp_launch_recv_report(int fd, rp_launch_msg_t *m, uint8_t *capture, size_t cap, size_t *len,
                          int *got_fd)
{
    struct iovec iov[2] = {
        {.iov_base = m,       .iov_len = sizeof(*m)},
        {.iov_base = capture, .iov_len = cap       }
    };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = iov,
                        .msg_iovlen = capture != NULL && cap > 0 ? 2 : 1,
                        .msg_control = u.buf,
                        .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    size_t extra;

    if (got_fd != NULL)
        *got_fd = -1;
    if (len != NULL)
        *len = 0;
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
    /* A packet of another size (a longer one arrives cut: MSG_TRUNC) is not a message; nor is a
     * crash's whose announced length is not the bytes after it, nor bytes after another type. */
    extra = n >= (ssize_t)sizeof(*m) ? (size_t)n - sizeof(*m) : 0;
    if (n < (ssize_t)sizeof(*m) || (mh.msg_flags & MSG_TRUNC) ||
        (m->type == RP_LAUNCH_CRASH ? m->value < 0 || (size_t)m->value != extra : extra != 0)) {
        if (got_fd != NULL && *got_fd >= 0) {
            close(*got_fd);
            *got_fd = -1;
        }
        return -1;
    }
    if (len != NULL)
        *len = extra;
    m->text[sizeof(m->text) - 1] = '\0';
    return 1;
}

int rp_launch_recv(int fd, rp_launch_msg_t *m, int *got_fd)
{
    return rp_launch_recv_report(fd, m, NULL, 0, NULL, got_fd);
}

/* text as dir/name, replaced whole: a new file renamed over the old one. 0, or -1 (why). */
static int put_whole(int dir, const char *name, const char *text, char *why, size_t cap)
{
    char tmp[64];
    size_t len = strlen(text);
    int fd;

    snprintf(tmp, sizeof(tmp), ".%s.new", name);
    fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || close(fd) != 0 ||
        renameat(dir, tmp, dir, name) != 0) {
        snprintf(why, cap, "cannot write /etc/%s: %s", name, strerror(errno));
        if (fd >= 0)
            (void)unlinkat(dir, tmp, 0);
        return -1;
    }
    return 0;
}

/* What names are valid is the manifest parser's rule; this is the hosts file's: a name written
 * into it must be one field, so it can never add a line or an entry of its own. */
static bool hosts_field_ok(const char *name)
{
    if (!name[0])
        return false;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '#')
            return false;
    return true;
}

int rp_launch_hosts_write(int dir, const rp_manifest_t *m, const rp_launch_hosts_t *h, char *why,
                          size_t cap)
{
    /* room for every address of every connection on a line of its own, the longest name's */
    static char text[128 + RP_MANIFEST_CONNECTIONS_MAX * RP_NETADDRS_PER_NAME *
                               (INET_ADDRSTRLEN + RP_MANIFEST_HOST_MAX + 2)];
    size_t len = (size_t)snprintf(text, sizeof(text),
                                  "# Written by the launcher: the only names this app resolves "
                                  "(docs/compartments.md).\n127.0.0.1 localhost\n");

    if (m->nconnections > RP_MANIFEST_CONNECTIONS_MAX) {
        snprintf(why, cap, "too many connections for a hosts file");
        return -1;
    }
    for (size_t i = 0; i < m->nconnections; i++) {
        const rp_netaddrs_t *one = &h->conn[i];
        if (m->connections[i].is_ip)
            continue;
        if (!hosts_field_ok(m->connections[i].host) || one->n > RP_NETADDRS_PER_NAME) {
            snprintf(why, cap,
                     "refusing a host name that would not be one field of a hosts file, "
                     "or too many addresses for it");
            return -1;
        }
        for (size_t j = 0; j < one->n; j++) {
            char a[INET_ADDRSTRLEN] = "";
            (void)inet_ntop(AF_INET, &one->addr[j], a, sizeof(a)); /* fits: cannot fail */
            len += (size_t)snprintf(text + len, sizeof(text) - len, "%s %s\n", a,
                                    m->connections[i].host);
        }
    }
    return put_whole(dir, "hosts", text, why, cap);
}

int rp_launch_etc_write(int dir, const rp_manifest_t *m, const rp_launch_hosts_t *h, char *why,
                        size_t cap)
{
    /* "hosts: files" only: glibc never asks a DNS server, so no other name resolves. */
    if (put_whole(dir, "nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n", why, cap) !=
            0 ||
        put_whole(dir, "resolv.conf",
                  "# No DNS server: this app's names come from /etc/hosts only.\n", why, cap) != 0)
        return -1;
    return rp_launch_hosts_write(dir, m, h, why, cap);
}
