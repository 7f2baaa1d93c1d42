/*
 * The per-app network policy: an app reaches exactly the hosts and ports its manifest's
 * AllowedConnections lists, and is reachable only on its AllowedTcpServerPorts /
 * AllowedUdpServerPorts. The monitor calls it; docs/compartments.md ("Network") explains the
 * design. In short:
 *
 *  - each app runs in its own network namespace (made by the compartment). An app with nothing
 *    listed gets only loopback. Otherwise a veth pair links it to the monitor's namespace, with a
 *    /30 from a private range per app slot, a default route, and masquerade on the way out;
 *  - the filter lives in the MONITOR's namespace (table inet rampart), where nothing inside the
 *    app can reach it even with every capability of its own user namespace: per app, sets of
 *    allowed (address . port) and (address), filled from the allowed names' resolution (re-resolved
 *    by rp_netpolicy_refresh, each set replaced in one transaction): the names are resolved by
 *    the caller's resolver (the monitor's: rampart-unpack, a confined child, so that no DNS
 *    answer is parsed with privilege), its answer checked here (rp_netaddrs_decode);
 *  - the app gets no DNS server at all: its /etc (written by rampart-launcher, read-only to the
 *    app) has a hosts file of the allowed names' addresses, which the policy hands over
 *    (rp_netpolicy_app_t.hosts: launch.h), and "hosts: files", so no other name resolves and
 *    there is no DNS tunnel;
 *  - every refused packet is logged by nftables to an NFLOG group the monitor binds
 *    (rp_netpolicy_log_fd) and hands to `rampart-unpack read`, which reads the packets with no
 *    capability (reader.h): each becomes a security event (connection "10.0.0.9:80", listen
 *    "udp 5683 from 10.0.0.5").
 *
 * IPv4 only: the links carry no IPv6 (disabled on both ends), so an IPv6 AllowedConnections
 * entry is never reachable (fail closed; logged at setup).
 */
#ifndef RAMPART_MONITOR_NETPOLICY_H
#define RAMPART_MONITOR_NETPOLICY_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rampart/error.h"
#include "rampart/manifest.h"
#include "launch.h"
#include "rampart/netaddrs.h"

#define RP_NETPOLICY_TABLE "rampart"         /* table inet rampart, in the monitor's namespace */
#define RP_NETPOLICY_LOG_GROUP_DEFAULT 7100u /* NFLOG group of refused packets */
#define RP_NETPOLICY_SLOTS_MAX 16384u        /* /30s in a /16 */
#define RP_NETPOLICY_ADDRS_PER_NAME RP_NETADDRS_PER_NAME /* addresses kept per allowed name */
#define RP_NETPOLICY_ELEMS_MAX (RP_MANIFEST_CONNECTIONS_MAX * RP_NETPOLICY_ADDRS_PER_NAME)
#define RP_NETPOLICY_REFRESH_SECONDS 60 /* how often the monitor should re-resolve */
#define RP_NETPOLICY_LOG_RATE 20u       /* refused packets logged per second per app */

/* The resolver: names[0..n) (an app's allowed host names, 1 to RP_NETADDRS_NAMES_MAX) answered
 * in the addresses' binary form (netaddrs.h), out[0..*len), which the policy decodes and checks.
 * An error: no name resolved this time (why says why). The monitor's: rp_unpack_resolve. */
typedef rp_err_t (*rp_netpolicy_resolve_fn)(void *ctx, const char *component,
                                            const char *const *names, size_t n, uint8_t *out,
                                            size_t cap, size_t *len, char *why, size_t wcap);

/* The monitor-wide part: the table, the NFLOG socket. Caller-owned; rp_netpolicy_shutdown. */
typedef struct rp_netpolicy {
    rp_netpolicy_resolve_fn resolve;
    void *resolve_ctx;
    char state_dir[4096]; /* where events go (rp_event_record) */
    uint16_t log_group;
    struct in_addr base;      /* network order */
    struct nft_ctx *nft;      /* libnftables, in the monitor's namespace */
    struct nflog_handle *log; /* NFLOG, in the monitor's namespace */
    struct nflog_g_handle *log_group_handle;
    bool table_made;
} rp_netpolicy_t;

typedef struct rp_netpolicy_config {
    const char *state_dir;           /* required */
    uint16_t log_group;              /* 0: RP_NETPOLICY_LOG_GROUP_DEFAULT */
    const char *base;                /* NULL: RP_NETADDRS_APPS_NET; an IPv4 /16 network address */
    rp_netpolicy_resolve_fn resolve; /* NULL: no name ever resolves (IP entries only) */
    void *resolve_ctx;               /* its first argument */
} rp_netpolicy_config_t;

/* One allowed destination as it is in the sets: port 0 is every port. */
typedef struct rp_netpolicy_elem {
    struct in_addr addr;
    uint16_t port;
} rp_netpolicy_elem_t;

/* One app's policy. Caller-owned; filled by rp_netpolicy_setup, undone by rp_netpolicy_teardown. */
typedef struct rp_netpolicy_app {
    char component[RP_COMPONENT_NAME_MAX + 1];
    uint32_t slot;
    bool linked;              /* has a link (false: loopback only) */
    bool link_made;           /* the link exists (teardown deletes it) */
    bool set_up;              /* its chains and sets are in the table */
    char ifname[IF_NAMESIZE]; /* the monitor's end of the link, "rpv<slot>" */
    struct in_addr host_addr; /* the monitor's end */
    struct in_addr app_addr;  /* the app's end ("eth0" inside) */
    rp_manifest_host_t conns[RP_MANIFEST_CONNECTIONS_MAX];
    size_t nconns;
    uint16_t tcp_ports[RP_MANIFEST_PORTS_MAX];
    size_t ntcp_ports;
    uint16_t udp_ports[RP_MANIFEST_PORTS_MAX];
    size_t nudp_ports;
    /* conns[i]'s addresses as last resolved (an IP entry: itself; IPv6: none), each checked
     * (rp_netaddrs_decode): the form the app's launcher writes its /etc/hosts from */
    rp_launch_hosts_t hosts;
    rp_netpolicy_elem_t elems[RP_NETPOLICY_ELEMS_MAX]; /* what the sets hold now, sorted */
    size_t nelems;
    bool stale; /* elems are not yet all in the sets (a refresh failed) */
} rp_netpolicy_app_t;

/*
 * Make the table (replacing a stale one a crashed monitor left), turn on IPv4 forwarding in the
 * monitor's namespace, and bind the NFLOG group. Fails closed: on error nothing is left behind.
 */
rp_err_t rp_netpolicy_init(rp_netpolicy_t *np, const rp_netpolicy_config_t *cfg) RP_MUST_CHECK;

/* Delete the table (every app's rules with it) and close the sockets. Safe on a zeroed np. */
void rp_netpolicy_shutdown(rp_netpolicy_t *np);

/*
 * The compartment's hook, called after the child is in its new network namespace and before it
 * execs the app: bring up loopback, and, when the manifest lists any connection or port, make the
 * link numbered by slot (the monitor gives each running app a distinct slot <
 * RP_NETPOLICY_SLOTS_MAX), resolve the allowed names and load the app's rules. On error
 * everything made is undone. OUT: *app (app->hosts: what the app's /etc/hosts is written from).
 */
rp_err_t rp_netpolicy_setup(rp_netpolicy_t *np, pid_t child, const rp_manifest_t *m, uint32_t slot,
                            rp_netpolicy_app_t *app) RP_MUST_CHECK;

/*
 * Re-resolve the app's allowed names now (the monitor calls it every
 * RP_NETPOLICY_REFRESH_SECONDS, and on demand). When the addresses changed, the sets are replaced
 * in one transaction, and *changed says so: the caller hands app->hosts to the app's launcher
 * (rp_compartment_hosts), which rewrites its /etc/hosts. A name that does not resolve this time
 * keeps its last addresses (a DNS outage does not cut the app off; a changed address replaces
 * them), and so does every name when the resolver fails or answers outside its form (a crash, its
 * deadline, garbage: logged, nothing new believed). At setup, such a name has no address at all.
 */
rp_err_t rp_netpolicy_refresh(rp_netpolicy_t *np, rp_netpolicy_app_t *app,
                              bool *changed) RP_MUST_CHECK;

/* Remove the app's rules, sets, port forwards and link. Safe to call twice, and after a failed
 * setup. */
void rp_netpolicy_teardown(rp_netpolicy_t *np, rp_netpolicy_app_t *app);

/* The bound NFLOG socket (its messages: "rp:c:COMPONENT" or "rp:l:COMPONENT" prefixes, the
 * packet's first 64 bytes), -1: none. The monitor reads nothing from it: `rampart-unpack read`
 * does. */
int rp_netpolicy_log_fd(const rp_netpolicy_t *np);

#endif /* RAMPART_MONITOR_NETPOLICY_H */
