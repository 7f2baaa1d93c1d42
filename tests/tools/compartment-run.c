/*
 * compartment-run: a test driver (not a product command) that runs one app in a compartment
 * (device/monitor/compartment.c) and prints what happened: the layers in force, "ready" when the
 * app says so, its exit, and the security events the run added. The manifest is filled from
 * flags (the manifest parser is another helper's), with the parser's defaults for the rest.
 *
 *   compartment-run --state-dir S --run-dir R --tree DIR --entry REL [--arg A]... [--log L]
 *                   [--component NAME] [--version V] [--uid U] [--gid G]
 *                   [--storage-kb N] [--memory-kb N] [--pids N] [--cpu N] [--device /dev/X]...
 *                   [--tcp-port P]... [--timeout-ms N] [--without LAYER]...
 *   compartment-run --cleanup --state-dir S --run-dir R
 *
 * Exit: 0 the app ran (whatever its status), 2 the compartment could not start, 3 timed out
 * (the app was stopped), 1 usage.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compartment.h"
#include "events.h"
#include "rampart/log.h"

static volatile sig_atomic_t stop_now;
static void on_term(int sig)
{
    (void)sig;
    stop_now = 1;
}

static rp_event_t events[RP_EVENTS_MAX];

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
        {NULL,         0,                 NULL, 0  }
    };
    static rp_manifest_t m;
    rp_compartment_spec_t spec = {.component = "app",
                                  .version = "1.0.0",
                                  .uid = 1000,
                                  .gid = 1000,
                                  .manifest = &m,
                                  .channel_fd = -1};
    rp_compartment_t c;
    char why[512], layers[512], log_path[4096], image[4096];
    size_t before = 0, n;
    uint64_t dropped;
    long timeout_ms = 30000, waited = 0;
    bool cleanup = false, said_ready = false;
    int opt;

    rp_log_init("compartment-run", RP_LOG_INFO);
    memset(&m, 0, sizeof(m));
    m.memory_kb = RP_MANIFEST_MEMORY_KB_DEFAULT;
    m.pids = RP_MANIFEST_PIDS_DEFAULT;
    m.cpu_percent = RP_MANIFEST_CPU_PERCENT_DEFAULT;
    log_path[0] = '\0';
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
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
        case 'c': spec.component = optarg; break;
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
    snprintf(m.component_id, sizeof(m.component_id), "%s", spec.component);
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
        if (WIFEXITED(c.status))
            printf("exit: %d\n", WEXITSTATUS(c.status));
        else if (WIFSIGNALED(c.status))
            printf("signal: %d\n", WTERMSIG(c.status));
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
