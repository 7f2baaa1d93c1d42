/*
 * The per-app network policy (netpolicy.h): the links between the monitor's and each app's network
 * namespace (rtnetlink through libnl-route), the filter in the monitor's namespace (nftables
 * through libnftables), the app's name resolution (its /etc written from the addresses the
 * resolver hook answers, rampart-unpack in the monitor, checked here), and the refused packets
 * turned into security events (NFLOG through libnetfilter_log). docs/compartments.md ("Network")
 * says why it is built this way.
 */
#include "netpolicy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <linux/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "events.h"
#include "rampart/component.h"
#include "rampart/file.h"
#include "rampart/log.h"
#include "rampart/netaddrs.h"

#define SCRIPT_MAX (64 * 1024) /* the largest nft script: one app's rules and 256 elements */
#define APP_IFNAME "eth0"      /* the app's end of its link, inside its namespace */

/* ---- nft scripts: built from validated numbers and names only, never from outside text ---- */

typedef struct script {
    char *buf;
    size_t len;
    bool overflow;
} script_t;

__attribute__((format(printf, 2, 3))) static void sp(script_t *s, const char *fmt, ...)
{
    if (s->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->len, SCRIPT_MAX - s->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= SCRIPT_MAX - s->len) {
        s->overflow = true;
        return;
    }
    s->len += (size_t)n;
}

static rp_err_t script_open(script_t *s)
{
    s->buf = malloc(SCRIPT_MAX);
    s->len = 0;
    s->overflow = false;
    if (!s->buf)
        return RP_ERR_NO_MEMORY;
    s->buf[0] = '\0';
    return RP_OK;
}

/* Run a script as one transaction: all of it applies, or none. */
static rp_err_t script_run(rp_netpolicy_t *np, script_t *s, const char *what)
{
    rp_err_t err = RP_OK;
    if (s->overflow) {
        rp_log_error("netpolicy: %s: rules over %d bytes", what, SCRIPT_MAX);
        err = RP_ERR_TOO_LARGE;
    } else if (nft_run_cmd_from_buffer(np->nft, s->buf) != 0) {
        const char *e = nft_ctx_get_error_buffer(np->nft);
        rp_log_error("netpolicy: %s: nft refused: %s", what, e ? e : "(no message)");
        err = RP_ERR_IO;
    } else {
        (void)nft_ctx_get_error_buffer(np->nft); /* drop warnings with the buffer */
    }
    free(s->buf);
    s->buf = NULL;
    return err;
}

static rp_err_t run_one(rp_netpolicy_t *np, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static rp_err_t run_one(rp_netpolicy_t *np, const char *what, const char *fmt, ...)
{
    script_t s;
    rp_err_t err = script_open(&s);
    if (err != RP_OK)
        return err;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s.buf, SCRIPT_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= SCRIPT_MAX)
        s.overflow = true;
    return script_run(np, &s, what);
}

static void addr_text(struct in_addr a, char out[INET_ADDRSTRLEN])
{
    if (!inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN))
        snprintf(out, INET_ADDRSTRLEN, "0.0.0.0");
}

/* ---- the monitor-wide table ---- */

static rp_err_t write_proc(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    rp_err_t err = rp_write_all(fd, value, strlen(value));
    if (close(fd) != 0 && err == RP_OK)
        err = RP_ERR_IO;
    return err;
}

static rp_err_t make_table(rp_netpolicy_t *np)
{
    char base[INET_ADDRSTRLEN];
    addr_text(np->base, base);
    script_t s;
    rp_err_t err = script_open(&s);
    if (err != RP_OK)
        return err;
    /* add+delete+add: a table a crashed monitor left is replaced, in the same transaction. */
    sp(&s, "add table inet " RP_NETPOLICY_TABLE "\n");
    sp(&s, "delete table inet " RP_NETPOLICY_TABLE "\n");
    sp(&s, "table inet " RP_NETPOLICY_TABLE " {\n");
    /* Each app's link name jumps to its own chains: an app's rules are added and removed
     * without touching another's, and no packet of an app reaches another app's chain. */
    sp(&s, " map out_apps { type ifname : verdict; }\n");
    sp(&s, " map in_apps { type ifname : verdict; }\n");
    sp(&s, " map dnat_ports { type inet_proto . inet_service : ipv4_addr; }\n");
    /* Only traffic from or to an app link is judged here; the device's own is left as it was. */
    sp(&s, " chain forward { type filter hook forward priority filter; policy accept;\n"
           "  ct state established,related accept\n"
           "  iifname vmap @out_apps\n"
           "  oifname vmap @in_apps\n }\n");
    /* An app talking to the monitor's namespace itself (its gateway, the device's addresses)
     * is a connection like any other: its out chain decides. */
    sp(&s, " chain input { type filter hook input priority filter; policy accept;\n"
           "  ct state established,related accept\n"
           "  iifname vmap @out_apps\n }\n");
    /* The device's own processes reach an app only on its listed ports. */
    sp(&s, " chain output { type filter hook output priority filter; policy accept;\n"
           "  ct state established,related accept\n"
           "  oifname vmap @in_apps\n }\n");
    /* A listed server port on the device's addresses is forwarded to its app. */
    sp(&s, " chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n"
           "  fib daddr type local dnat ip to meta l4proto . th dport map @dnat_ports\n }\n");
    sp(&s,
       " chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
       "  ip saddr %s/16 oifname != \"rpv*\" masquerade\n }\n",
       base);
    sp(&s, "}\n");
    return script_run(np, &s, "making the table");
}

rp_err_t rp_netpolicy_init(rp_netpolicy_t *np, const rp_netpolicy_config_t *cfg)
{
    if (!np || !cfg || !cfg->state_dir)
        return RP_ERR_INVALID_ARG;
    memset(np, 0, sizeof(*np));
    if (strlen(cfg->state_dir) >= sizeof(np->state_dir))
        return RP_ERR_TOO_LARGE;
    strcpy(np->state_dir, cfg->state_dir);
    np->log_group = cfg->log_group ? cfg->log_group : RP_NETPOLICY_LOG_GROUP_DEFAULT;
    np->resolve = cfg->resolve;
    np->resolve_ctx = cfg->resolve_ctx;
    np->base.s_addr = htonl(RP_NETADDRS_APPS_NET);
    if (cfg->base != NULL && (inet_pton(AF_INET, cfg->base, &np->base) != 1 ||
                              (ntohl(np->base.s_addr) & 0xffffu) != 0)) {
        rp_log_error("netpolicy: the app link range %s is not an IPv4 /16 network address",
                     cfg->base);
        return RP_ERR_INVALID_ARG;
    }

    rp_err_t err = write_proc("/proc/sys/net/ipv4/ip_forward", "1\n");
    if (err != RP_OK) {
        rp_log_error("netpolicy: cannot turn on IPv4 forwarding: %s", rp_strerror(err));
        return err;
    }

    np->nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!np->nft || nft_ctx_buffer_output(np->nft) != 0 || nft_ctx_buffer_error(np->nft) != 0) {
        rp_log_error("netpolicy: libnftables did not start");
        rp_netpolicy_shutdown(np);
        return RP_ERR_NO_MEMORY;
    }

    np->log = nflog_open();
    if (!np->log) {
        rp_log_error("netpolicy: cannot open NFLOG: %s", strerror(errno));
        rp_netpolicy_shutdown(np);
        return RP_ERR_IO;
    }
    np->log_group_handle = nflog_bind_group(np->log, np->log_group);
    if (!np->log_group_handle || nflog_set_mode(np->log_group_handle, NFULNL_COPY_PACKET, 64) < 0) {
        rp_log_error("netpolicy: cannot bind NFLOG group %u (another listener?): %s", np->log_group,
                     strerror(errno));
        rp_netpolicy_shutdown(np);
        return RP_ERR_IO;
    }
    int fd = nflog_fd(np->log);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        rp_netpolicy_shutdown(np);
        return RP_ERR_IO;
    }

    err = make_table(np);
    if (err != RP_OK) {
        rp_netpolicy_shutdown(np);
        return err;
    }
    np->table_made = true;
    return RP_OK;
}

void rp_netpolicy_shutdown(rp_netpolicy_t *np)
{
    if (!np)
        return;
    if (np->table_made && np->nft)
        (void)run_one(np, "deleting the table", "delete table inet " RP_NETPOLICY_TABLE "\n");
    np->table_made = false;
    if (np->log_group_handle)
        nflog_unbind_group(np->log_group_handle);
    np->log_group_handle = NULL;
    if (np->log)
        nflog_close(np->log);
    np->log = NULL;
    if (np->nft)
        nft_ctx_free(np->nft);
    np->nft = NULL;
}

/* ---- resolution ---- */

static int elem_cmp(const void *a, const void *b)
{
    const rp_netpolicy_elem_t *x = a, *y = b;
    uint32_t ax = ntohl(x->addr.s_addr), ay = ntohl(y->addr.s_addr);
    if (ax != ay)
        return ax < ay ? -1 : 1;
    return (int)x->port - (int)y->port;
}

/* The set elements the per-entry addresses make: sorted, without duplicates. OUT: elems. */
static size_t make_elems(const rp_netpolicy_app_t *app, rp_netpolicy_elem_t *elems)
{
    size_t n = 0;
    for (size_t i = 0; i < app->nconns; i++)
        for (size_t j = 0; j < app->hosts.conn[i].n; j++)
            elems[n++] = (rp_netpolicy_elem_t){app->hosts.conn[i].addr[j], app->conns[i].port};
    qsort(elems, n, sizeof(*elems), elem_cmp);
    size_t w = 0;
    for (size_t r = 0; r < n; r++)
        if (w == 0 || elem_cmp(&elems[w - 1], &elems[r]) != 0)
            elems[w++] = elems[r];
    return w;
}

/* Whether a resolved address is the device's own (an address of one of its interfaces now, as the
 * monitor's namespace has them: the resolver's view may differ) or in the apps' range: a name
 * resolved there would open the device's private services, or another app, to this one. */
static bool device_own(const rp_netpolicy_t *np, const struct ifaddrs *ifs, struct in_addr a)
{
    if ((ntohl(a.s_addr) >> 16) == (ntohl(np->base.s_addr) >> 16))
        return true;
    for (const struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next)
        if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET &&
            ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a.s_addr)
            return true;
    return false;
}

/* Drop from got[0..n) the device's own addresses (device_own), each said. Fails (nothing changed)
 * when the device's addresses cannot be read. */
static rp_err_t drop_own(const rp_netpolicy_t *np, const char *component, const char *const *names,
                         rp_netaddrs_t *got, size_t n)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return RP_ERR_IO;
    for (size_t k = 0; k < n; k++) {
        uint8_t w = 0;
        for (uint8_t j = 0; j < got[k].n; j++) {
            if (!device_own(np, ifs, got[k].addr[j])) {
                got[k].addr[w++] = got[k].addr[j];
                continue;
            }
            char a[INET_ADDRSTRLEN];
            addr_text(got[k].addr[j], a);
            rp_log_warn("netpolicy: %s: %s resolved to %s, the device's own: refused", component,
                        names[k], a);
        }
        got[k].n = w;
    }
    freeifaddrs(ifs);
    return RP_OK;
}

/* Re-resolve every name, through the resolver (rampart-unpack: no DNS answer is parsed here), its
 * answer checked (rp_netaddrs_decode), the device's own addresses dropped (drop_own). A name that
 * does not resolve now (or only to the device), or every name when the resolver fails or answers
 * outside its form, keeps its last addresses: none at setup. */
static void resolve_all(const rp_netpolicy_t *np, rp_netpolicy_app_t *app)
{
    const char *names[RP_MANIFEST_CONNECTIONS_MAX];
    size_t at[RP_MANIFEST_CONNECTIONS_MAX], n = 0, len = 0;
    static uint8_t bin[RP_NETADDRS_BIN_MAX];
    static rp_netaddrs_t got[RP_NETADDRS_NAMES_MAX];
    char why[256] = "no resolver";
    rp_err_t err = RP_ERR_UNSUPPORTED;

    for (size_t i = 0; i < app->nconns; i++) {
        if (!app->conns[i].is_ip) {
            at[n] = i;
            names[n++] = app->conns[i].host;
        } else /* IPv6: the links carry none */
            app->hosts.conn[i].n =
                inet_pton(AF_INET, app->conns[i].host, &app->hosts.conn[i].addr[0]) == 1;
    }
    if (n == 0)
        return;
    if (np->resolve != NULL)
        err = np->resolve(np->resolve_ctx, app->component, names, n, bin, sizeof(bin), &len, why,
                          sizeof(why));
    if (err == RP_OK)
        err = rp_netaddrs_decode(bin, len, n, got, why, sizeof(why));
    if (err == RP_OK && (err = drop_own(np, app->component, names, got, n)) != RP_OK)
        snprintf(why, sizeof(why), "the device's addresses are not known: %s", strerror(errno));
    if (err != RP_OK) {
        rp_log_warn("netpolicy: %s: its allowed names are not resolved (%s): no new address "
                    "allowed",
                    app->component, why);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = at[k];
        if (got[k].n == 0) {
            rp_log_warn("netpolicy: %s: %s does not resolve now", app->component, names[k]);
            continue;
        }
        app->hosts.conn[i] = got[k];
    }
}

/* ---- links ---- */

static int link_index(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *link = NULL;
    if (rtnl_link_get_kernel(sk, 0, name, &link) < 0)
        return -1;
    int idx = rtnl_link_get_ifindex(link);
    rtnl_link_put(link);
    return idx;
}

static int link_up(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *link = NULL;
    int rc = rtnl_link_get_kernel(sk, 0, name, &link);
    if (rc < 0)
        return rc;
    struct rtnl_link *change = rtnl_link_alloc();
    if (!change) {
        rtnl_link_put(link);
        return -NLE_NOMEM;
    }
    rtnl_link_set_flags(change, IFF_UP);
    rc = rtnl_link_change(sk, link, change, 0);
    rtnl_link_put(change);
    rtnl_link_put(link);
    return rc;
}

static int addr_add(struct nl_sock *sk, const char *ifname, struct in_addr a, int prefix)
{
    int idx = link_index(sk, ifname);
    if (idx < 0)
        return -NLE_OBJ_NOTFOUND;
    struct rtnl_addr *ra = rtnl_addr_alloc();
    struct nl_addr *local = nl_addr_build(AF_INET, &a, sizeof(a));
    int rc = -NLE_NOMEM;
    if (ra && local) {
        nl_addr_set_prefixlen(local, prefix);
        rtnl_addr_set_ifindex(ra, idx);
        rc = rtnl_addr_set_local(ra, local);
        if (rc == 0)
            rc = rtnl_addr_add(sk, ra, 0);
    }
    if (local)
        nl_addr_put(local);
    if (ra)
        rtnl_addr_put(ra);
    return rc;
}

static int default_route(struct nl_sock *sk, const char *ifname, struct in_addr gw)
{
    int idx = link_index(sk, ifname);
    if (idx < 0)
        return -NLE_OBJ_NOTFOUND;
    struct in_addr any = {0};
    struct rtnl_route *r = rtnl_route_alloc();
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    struct nl_addr *dst = nl_addr_build(AF_INET, &any, sizeof(any));
    struct nl_addr *via = nl_addr_build(AF_INET, &gw, sizeof(gw));
    int rc = -NLE_NOMEM;
    if (r && nh && dst && via) {
        nl_addr_set_prefixlen(dst, 0);
        rtnl_route_set_family(r, AF_INET);
        rc = rtnl_route_set_dst(r, dst);
        rtnl_route_nh_set_ifindex(nh, idx);
        rtnl_route_nh_set_gateway(nh, via);
        rtnl_route_add_nexthop(r, nh); /* r owns nh now */
        nh = NULL;
        if (rc == 0)
            rc = rtnl_route_add(sk, r, NLM_F_EXCL);
    }
    if (nh)
        rtnl_route_nh_free(nh);
    if (dst)
        nl_addr_put(dst);
    if (via)
        nl_addr_put(via);
    if (r)
        rtnl_route_put(r);
    return rc;
}

static void link_delete(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *l = rtnl_link_alloc();
    if (!l)
        return;
    rtnl_link_set_name(l, name);
    (void)rtnl_link_delete(sk, l); /* gone already (its namespace died): nothing to do */
    rtnl_link_put(l);
}

static struct nl_sock *route_socket(void)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (sk && nl_connect(sk, NETLINK_ROUTE) < 0) {
        nl_socket_free(sk);
        sk = NULL;
    }
    return sk;
}

/* No IPv6 on a link: nothing to filter, and no router solicitations refused as events. */
static rp_err_t no_ipv6(const char *ifname)
{
    char path[128];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
    rp_err_t err = write_proc(path, "1\n");
    return err == RP_ERR_NOT_FOUND && access("/proc/sys/net/ipv6", F_OK) != 0 ? RP_OK : err;
}

/*
 * The app's side, done from inside its namespace: loopback up and, when linked, its end of the
 * link numbered and routed through the monitor. This thread enters the namespace and always
 * comes back; if it could not come back it must not go on in the app's namespace, so it aborts.
 */
static rp_err_t configure_app_side(const rp_netpolicy_app_t *app, pid_t child)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)child);
    int appns = open(path, O_RDONLY | O_CLOEXEC);
    if (appns < 0) {
        rp_log_error("netpolicy: %s: %s", path, strerror(errno));
        return RP_ERR_NOT_FOUND;
    }
    int selfns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (selfns < 0) {
        close(appns);
        return RP_ERR_IO;
    }
    if (setns(appns, CLONE_NEWNET) != 0) {
        rp_log_error("netpolicy: cannot enter the app's network namespace: %s", strerror(errno));
        close(appns);
        close(selfns);
        return RP_ERR_IO;
    }
    rp_err_t err = RP_OK;
    struct nl_sock *sk = route_socket();
    if (!sk) {
        err = RP_ERR_IO;
    } else {
        int rc = link_up(sk, "lo");
        if (rc == 0 && app->linked) {
            if (no_ipv6(APP_IFNAME) != RP_OK)
                rc = -NLE_FAILURE;
            if (rc == 0)
                rc = addr_add(sk, APP_IFNAME, app->app_addr, 30);
            if (rc == 0)
                rc = link_up(sk, APP_IFNAME);
            if (rc == 0)
                rc = default_route(sk, APP_IFNAME, app->host_addr);
        }
        if (rc < 0) {
            rp_log_error("netpolicy: %s: the app's side of its link: %s", app->component,
                         nl_geterror(rc));
            err = RP_ERR_IO;
        }
        nl_socket_free(sk);
    }
    if (setns(selfns, CLONE_NEWNET) != 0) {
        rp_log_error("netpolicy: cannot return to the monitor's network namespace: %s",
                     strerror(errno));
        abort();
    }
    close(appns);
    close(selfns);
    return err;
}

static rp_err_t make_link(rp_netpolicy_app_t *app, pid_t child)
{
    struct nl_sock *sk = route_socket();
    if (!sk)
        return RP_ERR_IO;
    link_delete(sk, app->ifname); /* left by a crashed monitor */
    int rc = rtnl_link_veth_add(sk, app->ifname, APP_IFNAME, child);
    if (rc == 0) {
        app->link_made = true;
        if (no_ipv6(app->ifname) != RP_OK)
            rc = -NLE_FAILURE;
    }
    if (rc == 0)
        rc = addr_add(sk, app->ifname, app->host_addr, 30);
    if (rc == 0)
        rc = link_up(sk, app->ifname);
    nl_socket_free(sk);
    if (rc < 0) {
        rp_log_error("netpolicy: %s: its link %s: %s", app->component, app->ifname,
                     nl_geterror(rc));
        return RP_ERR_IO;
    }
    return RP_OK;
}

/* ---- the app's rules ---- */

static void script_elems(script_t *s, const rp_netpolicy_app_t *app)
{
    bool any_port = false, any_host = false;
    for (size_t i = 0; i < app->nelems; i++) {
        any_port = any_port || app->elems[i].port != 0;
        any_host = any_host || app->elems[i].port == 0;
    }
    for (int pass = 0; pass < 2; pass++) {
        bool ports = pass == 0;
        if (ports ? !any_port : !any_host)
            continue;
        sp(s, "add element inet " RP_NETPOLICY_TABLE " a%u_%s { ", app->slot,
           ports ? "port" : "host");
        const char *sep = "";
        for (size_t i = 0; i < app->nelems; i++) {
            if ((app->elems[i].port != 0) != ports)
                continue;
            char a[INET_ADDRSTRLEN];
            addr_text(app->elems[i].addr, a);
            if (ports)
                sp(s, "%s%s . %u", sep, a, app->elems[i].port);
            else
                sp(s, "%s%s", sep, a);
            sep = ", ";
        }
        sp(s, " }\n");
    }
}

static void script_ports(script_t *s, const char *proto, const uint16_t *ports, size_t n)
{
    if (n == 0)
        return;
    sp(s, "%s dport { ", proto);
    for (size_t i = 0; i < n; i++)
        sp(s, "%s%u", i ? ", " : "", ports[i]);
    sp(s, " } accept\n");
}

static rp_err_t load_rules(rp_netpolicy_t *np, rp_netpolicy_app_t *app)
{
    script_t s;
    rp_err_t err = script_open(&s);
    if (err != RP_OK)
        return err;
    const char *t = "inet " RP_NETPOLICY_TABLE;
    unsigned n = app->slot;
    char appaddr[INET_ADDRSTRLEN];
    addr_text(app->app_addr, appaddr);
    sp(&s, "add set %s a%u_port { type ipv4_addr . inet_service; }\n", t, n);
    sp(&s, "add set %s a%u_host { type ipv4_addr; }\n", t, n);
    sp(&s, "add chain %s a%u_out\nadd chain %s a%u_in\n", t, n, t, n);
    /* Only from the app's own address: an app that renumbers its end cannot pass for another. */
    sp(&s, "add rule %s a%u_out meta nfproto ipv4 ip saddr != %s drop\n", t, n, appaddr);
    sp(&s, "add rule %s a%u_out meta l4proto { tcp, udp } ip daddr . th dport @a%u_port accept\n",
       t, n, n);
    sp(&s, "add rule %s a%u_out ip daddr @a%u_host accept\n", t, n, n);
    /* Logged at a bounded rate (an app must not flood the event log), refused at any rate. */
    sp(&s,
       "add rule %s a%u_out limit rate %u/second burst %u packets log prefix \"rp:c:%s\" group "
       "%u\n",
       t, n, RP_NETPOLICY_LOG_RATE, 2 * RP_NETPOLICY_LOG_RATE, app->component, np->log_group);
    sp(&s, "add rule %s a%u_out reject with icmpx admin-prohibited\n", t, n);
    sp(&s, "add rule %s a%u_in ", t, n);
    if (app->ntcp_ports) {
        script_ports(&s, "tcp", app->tcp_ports, app->ntcp_ports);
        if (app->nudp_ports)
            sp(&s, "add rule %s a%u_in ", t, n);
    }
    if (app->nudp_ports)
        script_ports(&s, "udp", app->udp_ports, app->nudp_ports);
    if (!app->ntcp_ports && !app->nudp_ports)
        sp(&s, "counter\n");
    sp(&s,
       "add rule %s a%u_in limit rate %u/second burst %u packets log prefix \"rp:l:%s\" group "
       "%u\n",
       t, n, RP_NETPOLICY_LOG_RATE, 2 * RP_NETPOLICY_LOG_RATE, app->component, np->log_group);
    sp(&s, "add rule %s a%u_in reject with icmpx admin-prohibited\n", t, n);
    sp(&s, "add element %s out_apps { \"%s\" : jump a%u_out }\n", t, app->ifname, n);
    sp(&s, "add element %s in_apps { \"%s\" : jump a%u_in }\n", t, app->ifname, n);
    /* "create": a port another app already forwards is refused, not taken over. */
    for (size_t i = 0; i < app->ntcp_ports; i++)
        sp(&s, "create element %s dnat_ports { tcp . %u : %s }\n", t, app->tcp_ports[i], appaddr);
    for (size_t i = 0; i < app->nudp_ports; i++)
        sp(&s, "create element %s dnat_ports { udp . %u : %s }\n", t, app->udp_ports[i], appaddr);
    script_elems(&s, app);
    return script_run(np, &s, app->component);
}

static void unload_rules(rp_netpolicy_t *np, rp_netpolicy_app_t *app)
{
    const char *t = "inet " RP_NETPOLICY_TABLE;
    unsigned n = app->slot;
    /* One command at a time: what a failed setup never made must not keep the rest in place. */
    (void)run_one(np, app->component, "delete element %s out_apps { \"%s\" }\n", t, app->ifname);
    (void)run_one(np, app->component, "delete element %s in_apps { \"%s\" }\n", t, app->ifname);
    for (size_t i = 0; i < app->ntcp_ports; i++)
        (void)run_one(np, app->component, "delete element %s dnat_ports { tcp . %u }\n", t,
                      app->tcp_ports[i]);
    for (size_t i = 0; i < app->nudp_ports; i++)
        (void)run_one(np, app->component, "delete element %s dnat_ports { udp . %u }\n", t,
                      app->udp_ports[i]);
    for (int c = 0; c < 2; c++)
        (void)run_one(np, app->component, "flush chain %s a%u_%s\ndelete chain %s a%u_%s\n", t, n,
                      c ? "in" : "out", t, n, c ? "in" : "out");
    (void)run_one(np, app->component, "delete set %s a%u_port\n", t, n);
    (void)run_one(np, app->component, "delete set %s a%u_host\n", t, n);
}

/* ---- the public calls ---- */

rp_err_t rp_netpolicy_setup(rp_netpolicy_t *np, pid_t child, const rp_manifest_t *m, uint32_t slot,
                            rp_netpolicy_app_t *app)
{
    if (!np || !np->table_made || !m || !app || child <= 0)
        return RP_ERR_INVALID_ARG;
    memset(app, 0, sizeof(*app));
    if (slot >= RP_NETPOLICY_SLOTS_MAX ||
        !rp_component_name_valid(m->component_id, strlen(m->component_id)) ||
        m->nconnections > RP_MANIFEST_CONNECTIONS_MAX || m->ntcp_ports > RP_MANIFEST_PORTS_MAX ||
        m->nudp_ports > RP_MANIFEST_PORTS_MAX)
        return RP_ERR_INVALID_ARG;
    snprintf(app->component, sizeof(app->component), "%s", m->component_id);
    app->slot = slot;
    snprintf(app->ifname, sizeof(app->ifname), "rpv%u", slot);
    uint32_t base = ntohl(np->base.s_addr) + slot * 4u;
    app->host_addr.s_addr = htonl(base + 1);
    app->app_addr.s_addr = htonl(base + 2);
    app->nconns = m->nconnections;
    memcpy(app->conns, m->connections, m->nconnections * sizeof(m->connections[0]));
    app->ntcp_ports = m->ntcp_ports;
    memcpy(app->tcp_ports, m->tcp_ports, m->ntcp_ports * sizeof(m->tcp_ports[0]));
    app->nudp_ports = m->nudp_ports;
    memcpy(app->udp_ports, m->udp_ports, m->nudp_ports * sizeof(m->udp_ports[0]));
    app->linked = app->nconns || app->ntcp_ports || app->nudp_ports;
    for (size_t i = 0; i < app->nconns; i++) {
        struct in6_addr a6;
        if (app->conns[i].is_ip && inet_pton(AF_INET6, app->conns[i].host, &a6) == 1)
            rp_log_warn("netpolicy: %s: %s is IPv6, which apps cannot reach: refused",
                        app->component, app->conns[i].host);
    }

    resolve_all(np, app);
    app->nelems = make_elems(app, app->elems);
    rp_err_t err = RP_OK;
    if (app->linked) {
        err = make_link(app, child);
        /* One transaction: on failure nothing of it is in the table, and teardown must not
         * delete anything (a port forward refused as taken is another app's). */
        if (err == RP_OK)
            err = load_rules(np, app);
        if (err == RP_OK)
            app->set_up = true;
    }
    if (err == RP_OK)
        err = configure_app_side(app, child);
    if (err != RP_OK)
        rp_netpolicy_teardown(np, app);
    return err;
}

rp_err_t rp_netpolicy_refresh(rp_netpolicy_t *np, rp_netpolicy_app_t *app, bool *changed)
{
    if (!np || !app || !changed || !np->table_made)
        return RP_ERR_INVALID_ARG;
    *changed = false;
    if (!app->set_up)
        return RP_OK;
    resolve_all(np, app);
    rp_netpolicy_elem_t now[RP_NETPOLICY_ELEMS_MAX];
    size_t n = make_elems(app, now);
    if (n == app->nelems && memcmp(now, app->elems, n * sizeof(now[0])) == 0 && !app->stale)
        return RP_OK;
    memcpy(app->elems, now, n * sizeof(now[0]));
    app->nelems = n;
    /* Until the sets hold these, the next refresh tries again. */
    app->stale = true;
    script_t s;
    rp_err_t err = script_open(&s);
    if (err != RP_OK)
        return err;
    /* Flush and refill in one transaction: no moment with an empty or half set. */
    sp(&s, "flush set inet " RP_NETPOLICY_TABLE " a%u_port\n", app->slot);
    sp(&s, "flush set inet " RP_NETPOLICY_TABLE " a%u_host\n", app->slot);
    script_elems(&s, app);
    err = script_run(np, &s, app->component);
    if (err == RP_OK) {
        app->stale = false;
        *changed = true;
        rp_log_info("netpolicy: %s: allowed addresses changed (%zu now)", app->component, n);
    }
    return err;
}

void rp_netpolicy_teardown(rp_netpolicy_t *np, rp_netpolicy_app_t *app)
{
    if (!np || !app)
        return;
    if (app->set_up && np->nft)
        unload_rules(np, app);
    app->set_up = false;
    if (app->link_made) {
        struct nl_sock *sk = route_socket();
        if (sk) {
            link_delete(sk, app->ifname);
            nl_socket_free(sk);
        }
    }
    app->link_made = false;
}

int rp_netpolicy_log_fd(const rp_netpolicy_t *np)
{
    return np && np->log ? nflog_fd(np->log) : -1;
}
