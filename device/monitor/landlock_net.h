/*
 * Landlock's network rules (ABI 4) beyond the build host's header (Debian 12's covers ABI 2):
 * the ruleset with its network part, and a TCP port's rule. rampart-unpack's resolver fences its
 * TCP to the DNS port with them.
 */
#ifndef RAMPART_MONITOR_LANDLOCK_NET_H
#define RAMPART_MONITOR_LANDLOCK_NET_H

#include <stdint.h>

#define RP_LANDLOCK_NET_BIND_TCP (1ULL << 0)
#define RP_LANDLOCK_NET_CONNECT_TCP (1ULL << 1)
#define RP_LANDLOCK_RULE_NET_PORT 2

typedef struct rp_landlock_ruleset {
    uint64_t fs;  /* handled_access_fs */
    uint64_t net; /* handled_access_net (ABI 4) */
} rp_landlock_ruleset_t;

typedef struct rp_landlock_port {
    uint64_t allowed_access;
    uint64_t port;
} __attribute__((packed)) rp_landlock_port_t;

#endif /* RAMPART_MONITOR_LANDLOCK_NET_H */
