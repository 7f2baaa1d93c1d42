/*
 * compartment-run: a test driver (not a product command) that runs one app in a compartment
 * (device/monitor/compartment.c) and prints what happened: the layers in force, "ready" when the
 * app says so, its exit, and the security events the run added. The manifest is read from
 * --manifest (rp_manifest_load: the real parser) or starts empty with the parser's defaults; the
 * other flags then add to it (--arg, --device, --tcp-port) or override it.
 *
 * With --net (implied when the manifest lists a connection or a server port), the network
 * policy (netpolicy.c) is the compartment's net_setup hook, as in the monitor: this driver is
 * then the monitor's network side too (rp_netpolicy_init in its own network namespace, which
 * the test chooses; the app's /etc/hosts in R), and records refused packets as events while the
 * app runs. It prints "net: APP_ADDRESS GATEWAY" once set up.
 *
 *   compartment-run --state-dir S --run-dir R --tree DIR [--manifest FILE] [--entry REL]
 *                   [--arg A]... [--log L] [--component NAME] [--version V] [--uid U] [--gid G]
 *                   [--storage-kb N] [--memory-kb N] [--pids N] [--cpu N] [--device /dev/X]...
 *                   [--tcp-port P]... [--net] [--net-slot N] [--timeout-ms N]
 *                   [--without LAYER]...
 *   compartment-run --cleanup --state-dir S --run-dir R
 *
 * Exit: 0 the app ran (whatever its status), 2 the compartment could not start, 3 timed out
 * (the app was stopped), 1 usage.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compartment.h"
#include "events.h"
#include "netpolicy.h"
#include "rampart/log.h"

static volatile sig_atomic_t stop_now;
static void on_term(int sig)
{
    (void)sig;
    stop_now = 1;
}

static rp_event_t events[RP_EVENTS_MAX];

/* The network side of the monitor, for one app. */
typedef struct net_side {
    rp_netpolicy_t np;
    rp_netpolicy_app_t app;
    const rp_manifest_t *m;
    const char *etc_dir;
    uint32_t slot;
} net_side_t;

static int net_setup(pid_t child, void *ctx)
{
    net_side_t *n = ctx;
    char a[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];

    if (rp_netpolicy_setup(&n->np, child, n->m, n->slot, n->etc_dir, &n->app) != RP_OK)
        return -1;
    inet_ntop(AF_INET, &n->app.app_addr, a, sizeof(a));
    inet_ntop(AF_INET, &n->app.host_addr, gw, sizeof(gw));
    printf("net: %s %s\n", n->app.linked ? a : "-", n->app.linked ? gw : "-");
    fflush(stdout);
    return 0;
}

static void net_log(net_side_t *n)
{
    if (n->np.table_made && rp_netpolicy_handle_log(&n->np) != RP_OK)
        fprintf(stderr, "compartment-run: reading the refused packets failed\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir",  required_argument, NULL, 'S'},
        {"run-dir",    required_argument, NULL, 'R'},
        {"tree",       required_argument, NULL, 't'},
        {"entry",      required_argument, NULL, 'e'},
        {"arg",        required_argument, NULL, 'a'},
        {"log",        required_argument, NULL, 'l'},
        {"component",  required_argument, NULL, 'c'},
        {"version",    required_argument, NULL, 'v'},
        {"uid",        required_argument, NULL, 'u'},
        {"gid",        required_argument, NULL, 'g'},
        {"storage-kb", required_argument, NULL, 's'},
        {"memory-kb",  required_argument, NULL, 'm'},
        {"pids",       required_argument, NULL, 'p'},
        {"cpu",        required_argument, NULL, 'C'},
        {"device",     required_argument, NULL, 'd'},
        {"tcp-port",   required_argument, NULL, 'P'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {"cleanup",    no_argument,       NULL, 'X'},
        {"without",    required_argument, NULL, 'W'},
        {"manifest",   required_argument, NULL, 'M'},
        {"net",        no_argument,       NULL, 'N'},
        {"net-slot",   required_argument, NULL, 'n'},
        {NULL,         0,                 NULL, 0  }
    };
    static rp_manifest_t m;
    rp_compartment_spec_t spec = {
        .component = "app", .version = "1.0.0", .uid = 1000, .gid = 1000, .manifest = &m};
    rp_compartment_t c;
    char why[512], layers[512], log_path[4096], image[4096];
    size_t before = 0, n;
    uint64_t dropped;
    long timeout_ms = 30000, waited = 0;
    bool cleanup = false, said_ready = false, component_given = false, net = false;
    static net_side_t ns;
    int opt;

    rp_log_init("compartment-run", RP_LOG_INFO);
    memset(&m, 0, sizeof(m));
    m.memory_kb = RP_MANIFEST_MEMORY_KB_DEFAULT;
    m.pids = RP_MANIFEST_PIDS_DEFAULT;
    m.cpu_percent = RP_MANIFEST_CPU_PERCENT_DEFAULT;
    log_path[0] = '\0';
    ns.slot = 1;
    /* The manifest first, so that the flags apply on top of it whatever their order. */
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if (opt == 'M' && rp_manifest_load(optarg, &m, why, sizeof(why)) != RP_OK) {
            fprintf(stderr, "compartment-run: %s: %s\n", optarg, why);
            return 1;
        }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'M': break;
        case 'N': net = true; break;
        case 'n': ns.slot = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'S': spec.state_dir = optarg; break;
        case 'R': spec.run_dir = optarg; break;
        case 't': spec.tree_dir = optarg; break;
        case 'e': snprintf(m.entry_point, sizeof(m.entry_point), "%s", optarg); break;
        case 'a':
            if (m.nargs == RP_MANIFEST_ARGS_MAX)
                return 1;
            snprintf(m.args[m.nargs++], sizeof(m.args[0]), "%s", optarg);
            break;
        case 'l': snprintf(log_path, sizeof(log_path), "%s", optarg); break;
        case 'c':
            spec.component = optarg;
            component_given = true;
            break;
        case 'v': spec.version = optarg; break;
        case 'u': spec.uid = (uid_t)strtoul(optarg, NULL, 10); break;
        case 'g': spec.gid = (gid_t)strtoul(optarg, NULL, 10); break;
        case 's': m.storage_kb = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'm': m.memory_kb = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'p': m.pids = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'C': m.cpu_percent = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'd':
            if (m.ndevices == RP_MANIFEST_DEVICES_MAX)
                return 1;
            snprintf(m.devices[m.ndevices++], sizeof(m.devices[0]), "%s", optarg);
            break;
        case 'P':
            if (m.ntcp_ports == RP_MANIFEST_PORTS_MAX)
                return 1;
            m.tcp_ports[m.ntcp_ports++] = (uint16_t)strtoul(optarg, NULL, 10);
            break;
        case 'T': timeout_ms = strtol(optarg, NULL, 10); break;
        case 'X': cleanup = true; break;
        case 'W':
            spec.without |= rp_compartment_layer_parse(optarg);
            if (rp_compartment_layer_parse(optarg) == 0) {
                fprintf(stderr, "compartment-run: --without %s: no such layer\n", optarg);
                return 1;
            }
            break;
        default: return 1;
        }
    }
    if (spec.state_dir == NULL || spec.run_dir == NULL) {
        fprintf(stderr, "usage: see the comment at the top of tests/tools/compartment-run.c\n");
        return 1;
    }
    if (cleanup) {
        printf("leftovers: %d\n", rp_compartment_cleanup(spec.state_dir, spec.run_dir));
        return 0;
    }
    if (!component_given && m.component_id[0])
        spec.component = m.component_id;
    snprintf(m.component_id, sizeof(m.component_id), "%s", spec.component);
    if (m.name[0] == '\0')
        snprintf(m.name, sizeof(m.name), "%s", spec.component);
    if (log_path[0] == '\0')
        snprintf(log_path, sizeof(log_path), "%s/log", spec.run_dir);
    spec.log_path = log_path;
    if (m.storage_kb > 0) {
        snprintf(image, sizeof(image), "%s/storage.img", spec.run_dir);
        spec.storage_image = image;
    }
    if (rp_events_read(spec.state_dir, events, RP_EVENTS_MAX, &before, &dropped) != RP_OK)
        before = dropped = 0;
    before += dropped;

    net = net || m.nconnections > 0 || m.ntcp_ports > 0 || m.nudp_ports > 0;
    if (net) {
        rp_netpolicy_config_t cfg = {.state_dir = spec.state_dir};
        if (rp_netpolicy_init(&ns.np, &cfg) != RP_OK) {
            printf("start failed: the network policy could not start (nftables, NFLOG)\n");
            return 2;
        }
        ns.m = &m;
        ns.etc_dir = spec.run_dir; /* where the compartment takes /etc/hosts from */
        spec.net_setup = net_setup;
        spec.net_ctx = &ns;
    }

    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if (rp_compartment_start(&spec, &c, why, sizeof(why)) != RP_OK) {
        printf("start failed: %s\n", why);
        rp_compartment_stop(&c);
    } else {
        rp_compartment_layers_describe(c.layers, layers, sizeof(layers));
        printf("layers: %s\nlandlock-abi: %d\nmissing: %s\nstarted: %d\n", layers, c.landlock_abi,
               c.missing[0] ? c.missing : "none", (int)c.pid);
        for (int i = 0; i < c.ncg; i++)
            printf("cgroup: %s\n", c.cg_dir[i]);
        fflush(stdout);
        while (!stop_now && waited < timeout_ms && !rp_compartment_poll(&c, 100)) {
            waited += 100;
            net_log(&ns);
            if (c.run.ready && !said_ready) {
                said_ready = true;
                printf("ready\n");
                fflush(stdout);
            }
        }
        if (c.run.ready && !said_ready)
            printf("ready\n");
        if (!c.exited)
            printf("%s: stopping\n", stop_now ? "signal" : "timeout");
        rp_compartment_stop(&c);
        net_log(&ns); /* what the app's last packets left */
        if (WIFEXITED(c.status))
            printf("exit: %d\n", WEXITSTATUS(c.status));
        else if (WIFSIGNALED(c.status))
            printf("signal: %d\n", WTERMSIG(c.status));
    }
    if (net) {
        rp_netpolicy_teardown(&ns.np, &ns.app);
        rp_netpolicy_shutdown(&ns.np);
    }
    if (rp_events_read(spec.state_dir, events, RP_EVENTS_MAX, &n, &dropped) == RP_OK)
        for (size_t i = 0; i < n; i++)
            if (i + dropped >= before)
                printf("event: %s %s %s\n", rp_event_kind_name(events[i].kind), events[i].app,
                       events[i].reason);
    fflush(stdout);
    if (strncmp(why, "", 1) != 0 && c.pid == 0 && !c.exited)
        return 2;
    return stop_now || waited >= timeout_ms ? 3 : 0;
}
