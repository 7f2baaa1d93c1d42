/* Claiming the service's port so that only one data directory's processes share it (listen.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"

#define CLAIM_TRIES 5 /* a joiner starts over when the process it joined has gone meanwhile */

/* A listening socket on host:port; with SO_REUSEPORT only when share. -1 on failure (errno). */
static int open_socket(const char *host, const char *port, int share, int *bound_port)
{
    struct addrinfo hints = {0}, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = -1, one = 1, saved, rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        errno = rc == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* SO_REUSEADDR: a restart may bind while the last run's connections are in TIME_WAIT; it
     * never lets two sockets listen on one port. */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (share && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        /* Inherited by accepted sockets: a TLS record must not wait for the peer's delayed ACK
         * (that stalls each request-response by 40 ms). */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        saved = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        errno = saved;
        return -1;
    }
    freeaddrinfo(res);
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static int open_lock(const char *data_dir, const char *name)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof(path), "%s/%s", data_dir, name) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

static int open_serve_lock(const char *data_dir, int port)
{
    char name[32];

    snprintf(name, sizeof(name), "listen-%d.lock", port);
    return open_lock(data_dir, name);
}

/* flock, retried when a signal interrupts it. */
static int lock(int fd, int op)
{
    int rc;

    while ((rc = flock(fd, op)) != 0 && errno == EINTR)
        ;
    return rc;
}

/* Whether a process other than this one holds fd's lock (shared: it serves the port). This
 * process's own hold is let go first: flock cannot convert a lock without dropping it. */
static int others_serve(int fd)
{
    if (lock(fd, LOCK_UN) != 0)
        return -1;
    if (lock(fd, LOCK_EX | LOCK_NB) == 0) {
        lock(fd, LOCK_UN);
        return 0;
    }
    return errno == EWOULDBLOCK ? 1 : -1;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

rp_err_t rp_listen_claim(const char *data_dir, const char *host, const char *port, rp_listen_t *l,
                         char *message, size_t cap)
{
    int bound = 0;

    memset(l, 0, sizeof(*l));
    l->fd = l->claim_fd = l->serve_fd = -1;
    snprintf(l->host, sizeof(l->host), "%s", host);
    l->claim_fd = open_lock(data_dir, "listen.lock");
    if (l->claim_fd < 0 || lock(l->claim_fd, LOCK_EX) != 0) {
        snprintf(message, cap, "cannot lock %s/listen.lock: %s", data_dir, strerror(errno));
        close_fd(&l->claim_fd);
        return RP_ERR_IO;
    }
    for (int tries = 0; tries < CLAIM_TRIES; tries++) {
        int serving;

        /* Nothing listens on the port: it is ours. */
        l->fd = open_socket(host, port, 0, &bound);
        if (l->fd >= 0) {
            int one = 1;
            l->port = bound;
            l->serve_fd = open_serve_lock(data_dir, bound);
            /* Shareable from now on, by our workers and our replicas (they check the lock). */
            if (l->serve_fd < 0 || lock(l->serve_fd, LOCK_SH) != 0 ||
                setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
                snprintf(message, cap, "cannot share port %d: %s", bound, strerror(errno));
                rp_listen_release(l);
                return RP_ERR_IO;
            }
            l->joined = 0;
            return RP_OK;
        }
        if (errno != EADDRINUSE) {
            snprintf(message, cap, "cannot listen on %s port %s: %s", host, port, strerror(errno));
            rp_listen_release(l);
            return RP_ERR_IO;
        }
        /* Taken: by a process of this data directory (it holds the lock), or by someone else. */
        l->serve_fd = open_serve_lock(data_dir, atoi(port));
        serving = l->serve_fd >= 0 ? others_serve(l->serve_fd) : -1;
        if (serving < 0) {
            snprintf(message, cap, "cannot lock %s/listen-%s.lock: %s", data_dir, port,
                     strerror(errno));
            rp_listen_release(l);
            return RP_ERR_IO;
        }
        if (serving == 0) {
            snprintf(message, cap,
                     "port %s on %s is in use by another program, or by a rampart-server with "
                     "another data directory; it would take part of this service's connections. "
                     "Choose another --listen port, or stop the other",
                     port, host);
            rp_listen_release(l);
            return RP_ERR_EXISTS;
        }
        if (lock(l->serve_fd, LOCK_SH) != 0 || (l->fd = open_socket(host, port, 1, &bound)) < 0) {
            snprintf(message, cap, "cannot join port %s on %s: %s", port, host, strerror(errno));
            rp_listen_release(l);
            return RP_ERR_IO;
        }
        /* Joined. Had the replica gone, and a stranger taken the port, before our bind, no
         * process of ours would hold the lock now: start over then. */
        serving = others_serve(l->serve_fd);
        if (serving == 1 && lock(l->serve_fd, LOCK_SH) == 0) {
            l->port = bound;
            l->joined = 1;
            return RP_OK;
        }
        close_fd(&l->fd);
        close_fd(&l->serve_fd);
    }
    snprintf(message, cap, "cannot claim port %s on %s: its holder keeps changing", port, host);
    rp_listen_release(l);
    return RP_ERR_IO;
}

int rp_listen_another(rp_listen_t *l)
{
    char port[16];
    int bound = 0;

    snprintf(port, sizeof(port), "%d", l->port);
    return open_socket(l->host, port, 1, &bound);
}

void rp_listen_claimed(rp_listen_t *l)
{
    close_fd(&l->claim_fd); /* closing lets the lock go */
}

void rp_listen_release(rp_listen_t *l)
{
    close_fd(&l->serve_fd);
    close_fd(&l->claim_fd);
    close_fd(&l->fd);
}
