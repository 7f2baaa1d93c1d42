/*
 * Landlock's ABI beyond the build host's header (Debian 12's <linux/landlock.h> covers ABI 2):
 * the file rights of ABI 3 and 5, the network rules of ABI 4, the scopes of ABI 6 and the logging
 * flags of ABI 7, with the ruleset's attribute as the kernel reads it. One place for both users:
 * the compartment's ruleset (rampart-launcher) and rampart-unpack's fence.
 */
#ifndef RAMPART_MONITOR_LANDLOCK_ABI_H
#define RAMPART_MONITOR_LANDLOCK_ABI_H

#include <stdint.h>

#define RP_LANDLOCK_FS_TRUNCATE (1ULL << 14)  /* ABI 3 */
#define RP_LANDLOCK_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#define RP_LANDLOCK_NET_BIND_TCP (1ULL << 0)  /* ABI 4 */
#define RP_LANDLOCK_NET_CONNECT_TCP (1ULL << 1)
#define RP_LANDLOCK_RULE_NET_PORT 2
#define RP_LANDLOCK_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define RP_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
/* ABI 7, landlock_restrict_self's flags (all three came with ABI 7, so the ABI gates them
 * together): LOG_SAME_EXEC_OFF | LOG_NEW_EXEC_ON, so that the refusals of the program exec'd after
 * it are logged (the app's), not those of the caller (the compartment's init); and
 * LOG_SUBDOMAINS_OFF, so that the domains the app nests in its own (its own sandboxes: not the
 * device's business) log nothing: an app cannot fill the kernel's audit queue from domains the
 * supervisor would drop anyway (review r4, finding 2). The app's own domain is still logged. */
#define RP_LANDLOCK_LOG_APP (1U << 0 | 1U << 1 | 1U << 2)

/* The ruleset's attribute; its size tells the kernel how much of it is read: the file part alone
 * before ABI 4, with the network part before ABI 6, whole from 6. */
typedef struct rp_landlock_ruleset {
    uint64_t fs;     /* handled_access_fs */
    uint64_t net;    /* handled_access_net (ABI 4) */
    uint64_t scoped; /* scoped (ABI 6) */
} rp_landlock_ruleset_t;

typedef struct rp_landlock_port {
    uint64_t allowed_access;
    uint64_t port;
} __attribute__((packed)) rp_landlock_port_t;

#endif /* RAMPART_MONITOR_LANDLOCK_ABI_H */
