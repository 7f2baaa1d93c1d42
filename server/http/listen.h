/*
 * Claiming the service's port at start. Each worker listens on its own socket on the shared port
 * (SO_REUSEPORT), which would also let an unrelated server - another data directory, another CA,
 * another database - join the port silently and take part of the traffic. So a port is shared
 * only by processes serving one data directory (replicas on one machine):
 *
 * - The first socket is bound and made to listen WITHOUT SO_REUSEPORT: that succeeds only when
 *   nothing listens on the port, and then the port is ours. Only then is SO_REUSEPORT turned on
 *   (before any other socket can join), so that our own workers, and replicas, can join.
 * - Every process serving the port holds DIR/listen-PORT.lock shared (flock) for as long as it
 *   serves, and lets it go before it stops listening.
 * - A process that finds the port taken joins it only if some process holds that lock; one that
 *   can take it exclusively knows that no process of its data directory serves the port: the
 *   port belongs to someone else, and it refuses to start.
 * - DIR/listen.lock, held exclusively while a process claims a port, makes the claims of one data
 *   directory's processes take turns; and a joiner checks again, once bound, that the process it
 *   joined still serves (else it starts over), so that no stranger can take the port in between.
 *
 * What remains: another program that sets SO_REUSEPORT itself under the same user ID can still
 * join a port the service holds (the kernel allows it); rampart-server processes cannot.
 */
#ifndef RAMPART_LISTEN_H
#define RAMPART_LISTEN_H

#include "rampart/error.h"

typedef struct rp_listen {
    int fd;       /* the first listening socket, for the first worker (-1: taken) */
    int port;     /* the port served (the one picked, for port 0) */
    int claim_fd; /* DIR/listen.lock while claiming (-1 once done) */
    int serve_fd; /* DIR/listen-PORT.lock, held shared while serving (-1: released) */
    int joined;   /* whether another process of this data directory served the port already */
    char host[256];
} rp_listen_t;

/*
 * Claim host:port for data_dir. OUT: *l. On failure, message says why (for the operator);
 * RP_ERR_EXISTS when the port is held by something other than this data directory's service.
 * The claim stays held until rp_listen_claimed().
 */
rp_err_t rp_listen_claim(const char *data_dir, const char *host, const char *port, rp_listen_t *l,
                         char *message, size_t cap) RP_MUST_CHECK;
/* Another listening socket on the claimed port, for another worker; -1 on failure (errno). */
int rp_listen_another(rp_listen_t *l);
/* Every worker listens: let other processes of the data directory claim. */
void rp_listen_claimed(rp_listen_t *l);
/* Stop serving: the lock goes first, then the caller closes the sockets. Idempotent. */
void rp_listen_release(rp_listen_t *l);

#endif /* RAMPART_LISTEN_H */
