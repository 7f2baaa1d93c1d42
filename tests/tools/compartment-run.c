/*
 * compartment-run: a test driver (not a product command) that runs apps in compartments
 * (device/monitor/compartment.c) and prints what happened: the layers in force, "ready" when the
 * app says so, its exit, and the security events the run added. The first app's manifest is read
 * from --manifest (rp_manifest_load: the real parser) or starts empty with the parser's defaults;
 * the other flags then add to it (--arg, --device, --tcp-port) or override it.
 *
 * With --net (implied when --manifest lists a connection or a server port; --connection alone
 * gives Landlock's TCP ports, not the policy), the
 * network policy (netpolicy.c) is the first app's net_setup hook, as in the monitor: this driver
 * is then the monitor's network side too (rp_netpolicy_init in its own network namespace, which
 * the test chooses; the app's /etc/hosts written by its launcher), and records refused packets as
 * events while the app runs. It prints "net: APP_ADDRESS GATEWAY" once set up. --refresh-ms N
 * resolves the allowed names again every N ms, as the monitor does every
 * RP_NETPOLICY_REFRESH_SECONDS.
 *
 * --landlock reads the kernel's Landlock refusals as the monitor does (evreader.c: audit
 * turned on if it is off, and off again at the end), but takes every domain made as an app's uid,
 * not only its compartment's (the domains an app nests in its own are not the monitor's): so a
 * test sees every refusal the kernel logs for the app. They are recorded as landlock events.
 *
 * The refusals the kernel reports (--net, --landlock) come through another process (the
 * reader) after the apps have exited: --wait-event "KIND APP REASON-START" (at most WAIT_EVENTS)
 * keeps taking them until that event is recorded (at most WAIT_EVENT_MS); without it, the driver
 * takes only what has come by then. A test that expects no event waits for one the app makes
 * after the one that must not come (the kernel reports them in order).
 *
 *   compartment-run --state-dir S --run-dir R --tree DIR [--manifest FILE] [--entry REL]
 *                   [--arg A]... [--log L] [--component NAME] [--version V] [--uid U] [--gid G]
 *                   [--storage-kb N] [--memory-kb N] [--pids N] [--cpu N] [--device /dev/X]...
 *                   [--tcp-port P]... [--net] [--net-slot N] [--refresh-ms N] [--timeout-ms N]
 *                   [--without LAYER]... [--landlock] [--wait-event TEXT]...
 *                   [--channel [--device-auth] [--app-connection NAME]...] [--loopback]
 *                   [--connection IP:PORT]...
 *                   [--app --component NAME --entry REL [app flags]...]
 *   compartment-run --cleanup --state-dir S --run-dir R
 *
 * --channel gives each app its channel to the monitor (device/monitor/appchan.c), served for the
 * run with the root of trust of S (a provisioned agent state directory: its certificate and key).
 * --loopback brings loopback up in each app's (otherwise empty) network namespace, so that a
 * test can start a server there (nsenter -t PID -n). --app starts a second app (at most
 * RUN_APPS): the flags after it are its own (tree, uid, gid, version default to the first's);
 * its lines are prefixed "app NAME " ("app NAME ready", "app NAME exit: 0"), and its run dir is
 * R/NAME. The run ends when every app has exited.
 *
 * Exit: 0 the apps ran (whatever their status), 2 a compartment could not start, 3 timed out
 * (the apps were stopped), 1 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "appchan.h"
#include "gate-local.h"
#include "compartment.h"
#include "events.h"
#include "netpolicy.h"
#include "rampart/log.h"
#include "evreader.h"
#include "unpack.h"

#define RUN_APPS 2
#define WAIT_EVENTS 4
#define WAIT_EVENT_MS 20000 /* generous: the wait ends as soon as the event is there */
#define LANDLOCK_DOMAINS 16 /* the apps' domains remembered (their creators' pids) */

static volatile sig_atomic_t stop_now;
static void on_term(int sig)
{
    (void)sig;
    stop_now = 1;
}

static rp_event_t events[RP_EVENTS_MAX];

/* The network side of the monitor, for the first app, and the reader of the kernel's refusals. */
typedef struct net_side {
    rp_netpolicy_t np;
    rp_evreader_t reader; /* the refused packets (and Landlock's), read by rampart-unpack read */
    const char *state_dir;
    bool landlock; /* --landlock */
    rp_netpolicy_app_t app;
    const rp_manifest_t *m;
    uint32_t slot;
} net_side_t;

static int net_setup(pid_t child, void *ctx, rp_launch_hosts_t *hosts)
{
    net_side_t *n = ctx;
    char a[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];

    if (rp_netpolicy_setup(&n->np, child, n->m, n->slot, &n->app) != RP_OK)
        return -1;
    *hosts = n->app.hosts;
    inet_ntop(AF_INET, &n->app.app_addr, a, sizeof(a));
    inet_ntop(AF_INET, &n->app.host_addr, gw, sizeof(gw));
    printf("net: %s %s\n", n->app.linked ? a : "-", n->app.linked ? gw : "-");
    fflush(stdout);
    return 0;
}

static struct app *app_of_uid(uint32_t uid);

/* --landlock: the domains made as an app's uid (their creators' pids) */
static struct {
    pid_t pid;
    struct app *a;
} domains[LANDLOCK_DOMAINS];
static size_t next_domain;

static rp_evreader_owner_t landlock_ours(pid_t pid, uint32_t uid, const char **component, void *ctx)
{
    struct app *a = app_of_uid(uid);
    (void)component, (void)ctx;
    if (a == NULL)
        return RP_EVREADER_NOT_OURS;
    domains[next_domain].pid = pid;
    domains[next_domain].a = a;
    next_domain = (next_domain + 1) % LANDLOCK_DOMAINS;
    return RP_EVREADER_OURS;
}

static void landlock_refused(pid_t pid, const char *reason, void *ctx);

/* The reader's records, waiting up to wait_ms for the first (0: what is there). */
static bool net_log(net_side_t *n, int wait_ms)
{
    const rp_evreader_hooks_t hooks = {n->landlock ? landlock_ours : NULL,
                                       n->landlock ? landlock_refused : NULL,
                                       rp_evreader_record_net, (void *)n->state_dir};
    struct pollfd p = {rp_evreader_fd(&n->reader), POLLIN, 0};

    rp_evreader_tick(&n->reader, &hooks);
    if (p.fd < 0 || poll(&p, 1, wait_ms) <= 0)
        return false;
    rp_evreader_handle(&n->reader, &hooks);
    return true;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct app {
    rp_manifest_t m;
    rp_compartment_spec_t spec;
    rp_compartment_t c;
    rp_appchan_t chan;
    rp_appchan_held_t held; /* (static: an empty list) */
    char log_path[4096], image[4096], run_dir[4096];
    const char *prefix; /* "" for the first app, "app NAME " for the others */
    char prefix_buf[64];
    bool started, said_ready, done;
};

static struct app apps[RUN_APPS];
static int napps;

static struct app *app_of_uid(uint32_t uid)
{
    for (int i = 0; i < napps; i++)
        if (apps[i].spec.uid == uid)
            return &apps[i];
    return NULL;
}

static void landlock_refused(pid_t pid, const char *reason, void *ctx)
{
    for (size_t i = 0; i < LANDLOCK_DOMAINS; i++)
        if (domains[i].a != NULL && domains[i].pid == pid) {
            if (rp_event_record(ctx, RP_EVENT_LANDLOCK, domains[i].a->spec.component, reason) !=
                RP_OK)
                fprintf(stderr, "compartment-run: cannot record a landlock event\n");
            return;
        }
}

/* Whether every event wanted is in the log after its first `before`. */
static bool events_in(const char *state_dir, size_t before, char wanted[][256], int nwanted)
{
    size_t n;
    uint64_t dropped;
    int found = 0;

    if (rp_events_read(state_dir, events, RP_EVENTS_MAX, &n, &dropped) != RP_OK)
        return false;
    for (int w = 0; w < nwanted; w++)
        for (size_t i = 0; i < n; i++) {
            char line[600];
            snprintf(line, sizeof(line), "%s %s %s", rp_event_kind_name(events[i].kind),
                     events[i].app, events[i].reason);
            if (i + dropped >= before && strncmp(line, wanted[w], strlen(wanted[w])) == 0) {
                found++;
                break;
            }
        }
    return found == nwanted;
}

/* DST = the app's run directory / LEAF; false (said) when it does not fit. */
static bool path_in(char *dst, size_t cap, const struct app *a, const char *leaf)
{
    size_t dir = strlen(a->run_dir), n = strlen(leaf);

    if (dir + 1 + n >= cap) {
        fprintf(stderr, "compartment-run: %s/%s: the path is too long\n", a->run_dir, leaf);
        return false;
    }
    memcpy(dst, a->run_dir, dir);
    dst[dir] = '/';
    memcpy(dst + dir + 1, leaf, n + 1);
    return true;
}

/* The peers of an app's channel: the apps of this run. */
static void find_peer(void *ctx, const char *component, rp_appchan_t **chan,
                      const rp_manifest_t **m)
{
    (void)ctx;
    *chan = NULL;
    *m = NULL;
    for (int i = 0; i < napps; i++)
        if (strcmp(apps[i].spec.component, component) == 0) {
            *m = &apps[i].m;
            *chan = apps[i].started && !apps[i].done ? &apps[i].chan : NULL;
        }
}

/* --loopback: "lo" up in the child's network namespace (the compartment leaves it empty). */
static int loopback_up(pid_t child, void *ctx, rp_launch_hosts_t *hosts)
{
    char path[64];
    int st = 0;
    pid_t pid;

    (void)ctx;
    (void)hosts; /* no names */
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)child);
    pid = fork();
    if (pid == 0) {
        struct ifreq ifr = {0};
        int ns = open(path, O_RDONLY | O_CLOEXEC), sock;
        if (ns < 0 || setns(ns, CLONE_NEWNET) != 0)
            _exit(1);
        sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) != 0)
            _exit(1);
        ifr.ifr_flags |= IFF_UP;
        _exit(ioctl(sock, SIOCSIFFLAGS, &ifr) == 0 ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return 0;
}

static struct app *new_app(void)
{
    struct app *a = &apps[napps++];
    rp_manifest_t *m = &a->m;

    memset(a, 0, sizeof(*a));
    m->memory_kb = RP_MANIFEST_MEMORY_KB_DEFAULT;
    m->pids = RP_MANIFEST_PIDS_DEFAULT;
    m->cpu_percent = RP_MANIFEST_CPU_PERCENT_DEFAULT;
    a->spec = (rp_compartment_spec_t){.component = "app",
                                      .version = "1.0.0",
                                      .uid = 1000,
                                      .gid = 1000,
                                      .manifest = m,
                                      .channel_fd = -1};
    a->chan.fd = -1;
    if (napps > 1) { /* the first app's, unless said otherwise */
        a->spec.tree_dir = apps[0].spec.tree_dir;
        a->spec.version = apps[0].spec.version;
        a->spec.uid = apps[0].spec.uid;
        a->spec.gid = apps[0].spec.gid;
    }
    return a;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir",      required_argument, NULL, 'S'},
        {"run-dir",        required_argument, NULL, 'R'},
        {"tree",           required_argument, NULL, 't'},
        {"entry",          required_argument, NULL, 'e'},
        {"arg",            required_argument, NULL, 'a'},
        {"log",            required_argument, NULL, 'l'},
        {"component",      required_argument, NULL, 'c'},
        {"version",        required_argument, NULL, 'v'},
        {"uid",            required_argument, NULL, 'u'},
        {"gid",            required_argument, NULL, 'g'},
        {"storage-kb",     required_argument, NULL, 's'},
        {"memory-kb",      required_argument, NULL, 'm'},
        {"pids",           required_argument, NULL, 'p'},
        {"cpu",            required_argument, NULL, 'C'},
        {"device",         required_argument, NULL, 'd'},
        {"tcp-port",       required_argument, NULL, 'P'},
        {"timeout-ms",     required_argument, NULL, 'T'},
        {"cleanup",        no_argument,       NULL, 'X'},
        {"without",        required_argument, NULL, 'W'},
        {"channel",        no_argument,       NULL, 'H'},
        {"device-auth",    no_argument,       NULL, 'D'},
        {"app-connection", required_argument, NULL, 'A'},
        {"loopback",       no_argument,       NULL, 'L'},
        {"connection",     required_argument, NULL, 'O'},
        {"app",            no_argument,       NULL, 'N'},
        {"manifest",       required_argument, NULL, 'M'},
        {"net",            no_argument,       NULL, 'n'},
        {"net-slot",       required_argument, NULL, 'Z'},
        {"refresh-ms",     required_argument, NULL, 'F'},
        {"landlock",       no_argument,       NULL, 'K'},
        {"wait-event",     required_argument, NULL, 'E'},
        {NULL,             0,                 NULL, 0  }
    };
    const char *state_dir = NULL, *run_dir = NULL;
    rp_appchan_peers_t peers = {find_peer, NULL};
    static rp_test_gate_t gate = {
        .fd = {-1, -1}
    };
    rp_appchan_root_t root = rp_test_gate_root(&gate);
    rp_agent_t agent;
    struct app *a;
    char why[512], layers[512];
    size_t before = 0, n;
    uint64_t dropped;
    long timeout_ms = 30000, deadline, refresh_ms = 0, next_refresh = 0;
    unsigned without = 0;
    bool cleanup = false, channel = false, loopback = false, agent_open = false, failed = false;
    bool net = false, reader = false;
    static char wanted[WAIT_EVENTS][256];
    int nwanted = 0;
    static net_side_t ns;
    int opt, left;

    rp_log_init("compartment-run", RP_LOG_INFO);
    a = new_app();
    ns.slot = 1;
    /* The first app's manifest first, so that the flags apply on top of it whatever their order. */
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1 && opt != 'N')
        if (opt == 'M') {
            if (rp_manifest_load(optarg, &a->m, why, sizeof(why)) != RP_OK) {
                fprintf(stderr, "compartment-run: %s: %s\n", optarg, why);
                return 1;
            }
            if (a->m.component_id[0]) /* its ComponentId, unless --component says otherwise */
                a->spec.component = a->m.component_id;
            /* A manifest's network is the policy's (--connection alone only opens Landlock). */
            net = net || a->m.nconnections > 0 || a->m.ntcp_ports > 0 || a->m.nudp_ports > 0;
        }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        rp_manifest_t *m = &a->m;
        switch (opt) {
        case 'M':
            if (napps > 1) {
                fprintf(stderr, "compartment-run: --manifest is the first app's only\n");
                return 1;
            }
            break;
        case 'n': net = true; break;
        case 'K': ns.landlock = true; break;
        case 'E':
            if (nwanted == WAIT_EVENTS)
                return 1;
            snprintf(wanted[nwanted++], sizeof(wanted[0]), "%s", optarg);
            break;
        case 'Z': ns.slot = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'F': refresh_ms = strtol(optarg, NULL, 10); break;
        case 'S': state_dir = optarg; break;
        case 'R': run_dir = optarg; break;
        case 't': a->spec.tree_dir = optarg; break;
        case 'e': snprintf(m->entry_point, sizeof(m->entry_point), "%s", optarg); break;
        case 'a':
            if (m->nargs == RP_MANIFEST_ARGS_MAX)
                return 1;
            snprintf(m->args[m->nargs++], sizeof(m->args[0]), "%s", optarg);
            break;
        case 'l': snprintf(a->log_path, sizeof(a->log_path), "%s", optarg); break;
        case 'c': a->spec.component = optarg; break;
        case 'v': a->spec.version = optarg; break;
        case 'u': a->spec.uid = (uid_t)strtoul(optarg, NULL, 10); break;
        case 'g': a->spec.gid = (gid_t)strtoul(optarg, NULL, 10); break;
        case 's': m->storage_kb = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'm': m->memory_kb = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'p': m->pids = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'C': m->cpu_percent = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'd':
            if (m->ndevices == RP_MANIFEST_DEVICES_MAX)
                return 1;
            snprintf(m->devices[m->ndevices++], sizeof(m->devices[0]), "%s", optarg);
            break;
        case 'P':
            if (m->ntcp_ports == RP_MANIFEST_PORTS_MAX)
                return 1;
            m->tcp_ports[m->ntcp_ports++] = (uint16_t)strtoul(optarg, NULL, 10);
            break;
        case 'T': timeout_ms = strtol(optarg, NULL, 10); break;
        case 'X': cleanup = true; break;
        case 'W':
            without |= rp_compartment_layer_parse(optarg);
            if (rp_compartment_layer_parse(optarg) == 0) {
                fprintf(stderr, "compartment-run: --without %s: no such layer\n", optarg);
                return 1;
            }
            break;
        case 'H': channel = true; break;
        case 'D': m->device_authentication = true; break;
        case 'A':
            if (m->napp_connections == RP_MANIFEST_APP_CONNECTIONS_MAX)
                return 1;
            snprintf(m->app_connections[m->napp_connections++], sizeof(m->app_connections[0]), "%s",
                     optarg);
            break;
        case 'L': loopback = true; break;
        case 'O': { /* an IP address and a port: AllowedConnections (Landlock's TCP ports) */
            rp_manifest_host_t *h = &m->connections[m->nconnections];
            const char *colon = strrchr(optarg, ':');
            if (m->nconnections == RP_MANIFEST_CONNECTIONS_MAX || colon == NULL ||
                (size_t)(colon - optarg) >= sizeof(h->host))
                return 1;
            snprintf(h->host, sizeof(h->host), "%.*s", (int)(colon - optarg), optarg);
            h->is_ip = true;
            h->port = (uint16_t)strtoul(colon + 1, NULL, 10);
            m->nconnections++;
            break;
        }
        case 'N':
            if (napps == RUN_APPS) {
                fprintf(stderr, "compartment-run: at most %d apps\n", RUN_APPS);
                return 1;
            }
            a = new_app();
            break;
        default: return 1;
        }
    }
    if (state_dir == NULL || run_dir == NULL) {
        fprintf(stderr, "usage: see the comment at the top of tests/tools/compartment-run.c\n");
        return 1;
    }
    if (cleanup) {
        printf("leftovers: %d\n", rp_compartment_cleanup(state_dir, run_dir));
        return 0;
    }
    {
        if (rp_compartment_launcher_open(RP_LAUNCHER_PATH, why, sizeof(why)) != RP_OK) {
            fprintf(stderr, "compartment-run: rampart-launcher: %s\n", why);
            return 1;
        }
    }
    if (channel) {
        rp_err_t err = rp_agent_open(&agent, state_dir, NULL, false);
        if (err != RP_OK) {
            fprintf(stderr, "compartment-run: --channel: %s: cannot open the root of trust: %s\n",
                    state_dir, rp_strerror(err));
            return 1;
        }
        agent_open = true;
        if (rp_test_gate_open(&gate, &agent) != RP_OK) {
            fprintf(stderr, "compartment-run: --channel: cannot open the gate\n");
            return 1;
        }
    }
    for (int i = 0; i < napps; i++) {
        a = &apps[i];
        a->spec.state_dir = state_dir;
        a->spec.without = without;
        if (loopback)
            a->spec.net_setup = loopback_up;
        if (a->spec.component != a->m.component_id)
            snprintf(a->m.component_id, sizeof(a->m.component_id), "%s", a->spec.component);
        if (a->m.name[0] == '\0')
            snprintf(a->m.name, sizeof(a->m.name), "%s", a->spec.component);
        if (i == 0) {
            snprintf(a->run_dir, sizeof(a->run_dir), "%s", run_dir);
            a->prefix = "";
        } else {
            snprintf(a->run_dir, sizeof(a->run_dir), "%s/%s", run_dir, a->spec.component);
            if (mkdir(a->run_dir, 0755) != 0 && errno != EEXIST)
                return 1;
            snprintf(a->prefix_buf, sizeof(a->prefix_buf), "app %s ", a->spec.component);
            a->prefix = a->prefix_buf;
        }
        a->spec.run_dir = a->run_dir;
        if (a->log_path[0] == '\0' && !path_in(a->log_path, sizeof(a->log_path), a, "log"))
            return 1;
        a->spec.log_path = a->log_path;
        if (a->m.storage_kb > 0) {
            if (!path_in(a->image, sizeof(a->image), a, "storage.img"))
                return 1;
            a->spec.storage_image = a->image;
        }
    }
    if (rp_events_read(state_dir, events, RP_EVENTS_MAX, &before, &dropped) != RP_OK)
        before = dropped = 0;
    before += dropped;

    a = &apps[0];
    if (net && !loopback) {
        rp_netpolicy_config_t cfg = {.state_dir = state_dir,
                                     .resolve = rp_unpack_resolve, /* as the monitor resolves */
                                     .resolve_ctx = (void *)RP_TEST_UNPACK};
        if (rp_netpolicy_init(&ns.np, &cfg) != RP_OK) {
            printf("start failed: the network policy could not start (nftables, NFLOG)\n");
            return 2;
        }
        ns.m = &a->m;
        a->spec.net_setup = net_setup;
        a->spec.net_ctx = &ns;
    } else {
        net = false;
    }
    ns.state_dir = state_dir;
    reader = net || ns.landlock;
    if (reader) {
        rp_evreader_open(&ns.reader, ns.landlock, net ? rp_netpolicy_log_fd(&ns.np) : -1,
                         RP_TEST_UNPACK);
        if (ns.landlock && ns.reader.audit_fd < 0) {
            printf("start failed: --landlock: %s\n", ns.reader.why);
            return 2;
        }
    }

    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    for (int i = 0; i < napps && !failed; i++) {
        int app_end = -1;
        rp_err_t err = RP_OK;
        a = &apps[i];
        if (channel) {
            err = rp_appchan_open(&a->chan, &a->held, a->spec.component, &a->m, &app_end);
            rp_test_gate_add(&gate, (size_t)i, a->spec.component, &a->m);
        }
        a->spec.channel_fd = app_end;
        if (err == RP_OK)
            err = rp_compartment_start(&a->spec, &a->c, why, sizeof(why));
        else
            snprintf(why, sizeof(why), "cannot open the app's channel: %s", rp_strerror(err));
        if (app_end >= 0)
            close(app_end); /* the app holds its own */
        if (err != RP_OK) {
            printf("%sstart failed: %s\n", a->prefix, why);
            rp_compartment_stop(&a->c);
            rp_appchan_close(&a->chan);
            failed = true;
            break;
        }
        a->started = true;
        rp_compartment_layers_describe(a->c.layers, layers, sizeof(layers));
        printf("%slayers: %s\n%slandlock-abi: %d\n%smissing: %s\n%sstarted: %d\n", a->prefix,
               layers, a->prefix, a->c.landlock_abi, a->prefix,
               a->c.missing[0] ? a->c.missing : "none", a->prefix, (int)a->c.pid);
        for (int k = 0; k < a->c.ncg; k++)
            printf("%scgroup: %s\n", a->prefix, a->c.cg_dir[k]);
        fflush(stdout);
    }
    /* Drive every compartment and channel until the apps have exited. */
    left = 0;
    for (int i = 0; i < napps; i++)
        left += apps[i].started;
    deadline = now_ms() + timeout_ms;
    while (!failed && left > 0 && !stop_now && now_ms() < deadline) {
        struct pollfd pf[RUN_APPS * (RP_COMPARTMENT_FDS + 1) + 1];
        int np = 0;
        for (int i = 0; i < napps; i++) {
            int fds[RP_COMPARTMENT_FDS];
            if (!apps[i].started || apps[i].done)
                continue;
            rp_compartment_fds(&apps[i].c, fds);
            for (int k = 0; k < RP_COMPARTMENT_FDS; k++)
                pf[np++] = (struct pollfd){.fd = fds[k], .events = POLLIN};
            pf[np++] = (struct pollfd){.fd = rp_appchan_fd(&apps[i].chan), .events = POLLIN};
        }
        if (reader)
            pf[np++] = (struct pollfd){.fd = rp_evreader_fd(&ns.reader), .events = POLLIN};
        (void)poll(pf, (nfds_t)np, 100);
        if (reader)
            (void)net_log(&ns, 0);
        if (net && refresh_ms > 0 && now_ms() >= next_refresh) {
            /* The monitor's periodic re-resolution, at the test's pace. */
            bool changed = false;
            if (next_refresh > 0 && rp_netpolicy_refresh(&ns.np, &ns.app, &changed) != RP_OK)
                fprintf(stderr, "compartment-run: a refresh failed\n");
            if (changed && rp_compartment_hosts(&apps[0].c, &ns.app.hosts) != RP_OK)
                fprintf(stderr,
                        "compartment-run: the launcher did not take the new addresses\n"
                        "missing: %s\n",
                        apps[0].c.missing);
            next_refresh = now_ms() + refresh_ms;
        }
        for (int i = 0; i < napps; i++) {
            a = &apps[i];
            if (!a->started || a->done)
                continue;
            if (rp_appchan_fd(&a->chan) >= 0 && rp_appchan_serve(&a->chan, &root, &peers) != RP_OK)
                printf("%schannel closed\n", a->prefix);
            if (rp_compartment_poll(&a->c, 0)) {
                a->done = true;
                left--;
            }
            if (a->c.run.ready && !a->said_ready) {
                a->said_ready = true;
                printf("%sready\n", a->prefix);
            }
            fflush(stdout);
        }
    }
    for (int i = 0; i < napps; i++) {
        a = &apps[i];
        if (!a->started)
            continue;
        if (!a->c.exited)
            printf("%s%s: stopping\n", a->prefix, stop_now ? "signal" : "timeout");
        if (a->c.crash != NULL)
            printf("%scrash captured: %zu bytes\n", a->prefix, a->c.crash_len);
        rp_compartment_stop(&a->c);
        rp_appchan_close(&a->chan);
        rp_appchan_held_close(&a->held);
        if (WIFEXITED(a->c.status))
            printf("%sexit: %d\n", a->prefix, WEXITSTATUS(a->c.status));
        else if (WIFSIGNALED(a->c.status))
            printf("%ssignal: %d\n", a->prefix, WTERMSIG(a->c.status));
    }
    if (reader) {
        /* what the apps left: the reader is another process, so its last records are taken
         * until the events waited for are there (bounded), or only what has come */
        long until = now_ms() + WAIT_EVENT_MS;
        while (net_log(&ns, 0))
            ;
        while (nwanted > 0 && !events_in(state_dir, before, wanted, nwanted) && now_ms() < until)
            (void)net_log(&ns, 100);
        if (nwanted > 0 && !events_in(state_dir, before, wanted, nwanted))
            printf("wait-event: not recorded in %d ms\n", WAIT_EVENT_MS);
        rp_evreader_close(&ns.reader);
        if (ns.reader.audit_on_by_us && rp_evreader_audit_switch(false, why, sizeof(why)) != RP_OK)
            fprintf(stderr, "compartment-run: audit, turned on, stays on: %s\n", why);
    }
    if (net) {
        rp_netpolicy_teardown(&ns.np, &ns.app);
        rp_netpolicy_shutdown(&ns.np);
    }
    if (rp_events_read(state_dir, events, RP_EVENTS_MAX, &n, &dropped) == RP_OK)
        for (size_t i = 0; i < n; i++)
            if (i + dropped >= before)
                printf("event: %s %s %s\n", rp_event_kind_name(events[i].kind), events[i].app,
                       events[i].reason);
    fflush(stdout);
    rp_test_gate_close(&gate);
    if (agent_open)
        rp_agent_close(&agent);
    if (failed)
        return 2;
    return stop_now || left > 0 ? 3 : 0;
}
