/*
 * rampart-agent: the device's side of attestation. It provisions the device identity in the root
 * of trust, makes evidence, attests with the security service and keeps a current certificate,
 * once or as a daemon. This file is its command line: the usage, the options, the command table,
 * and what every command shares (commands.h); the commands are cmd_*.c, the daemon (`run`) is
 * daemon.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "commands.h"
#include "confine.h"
#include "mcu_runner.h"
#include "daemon.h"
#include "proto.h"
#include "rampart/file.h"
#include "rampart/log.h"

static const char usage[] =
    "Usage: rampart-agent COMMAND --state-dir S [options]\n"
    "\n"
    "  provision --state-dir S --rot soft|tpm2 [--tcti TCTI]\n"
    "      Make the device identity (kept if it exists) and print the device ID.\n"
    "      tpm2: the key is made inside the TPM; TCTI e.g. swtpm:host=127.0.0.1,port=2321\n"
    "  id --state-dir S\n"
    "      Print the device ID and its public key.\n"
    "  evidence --state-dir S --nonce HEX --out FILE\n"
    "      Write the evidence (COSE_Sign1 EAT) the device would send for NONCE.\n"
    "  attest --state-dir S --server URL --server-ca FILE\n"
    "      Attest once; on a pass, write S/device.crt and S/ca-chain.pem.\n"
    "  peer serve --state-dir S [--listen HOST:PORT]\n"
    "  peer connect --state-dir S --peer HOST:PORT\n"
    "      Mutual TLS between devices of one tenant: each proves itself with its certificate\n"
    "      and accepts only certificates from its own tenant CA; prints the peer's device ID.\n"
    "  run --state-dir S --server URL --server-ca FILE [--renew-after SECONDS]\n"
    "        [--update-interval SECONDS] [--update-window HH:MM-HH:MM] [--health-seconds N]\n"
    "        [--start-jitter SECONDS]\n"
    "      Attest within --start-jitter seconds of starting (a random second, default 30;\n"
    "      0: at once), then again well before the certificate expires (at two thirds of its\n"
    "      life, at most every 24 hours), retrying failures with backoff and jitter. With an\n"
    "      update root, check for updates at start and every interval (default 3600, +-10%),\n"
    "      or at once on SIGUSR1; install only inside the window (local time), if given.\n"
    "      Keep each app's confirmed version running, started as in its trial, restarted\n"
    "      with backoff when it exits (status shows it: starting, ready, running...).\n"
    "\n"
    "\n"
    "Updates (each component has two slots, A and B; see docs/updates.md):\n"
    "  trust --state-dir S --update-root root.json\n"
    "      The device's root of update trust (from `rampart update-root sign --out`): from\n"
    "      then on, its image keys are the root's, and newer roots must be signed by it.\n"
    "  trust --state-dir S --image-key PUB.pem\n"
    "      Without an update root: trust images signed with this key (for local installs).\n"
    "  check-now --state-dir S [--server URL --server-ca FILE]\n"
    "      Fetch the signed metadata and install what the device's deployment names: each\n"
    "      image downloaded (resuming), checked, installed, reported. The service is the one\n"
    "      the device last attested with unless given.\n"
    "  install --state-dir S --component NAME [--health-seconds N] IMAGE\n"
    "      Verify IMAGE, write it to the inactive slot, try it, and confirm it when healthy (an\n"
    "      app must stay up N seconds, default 3, or write \"ready\" to $RAMPART_READY_FD);\n"
    "      otherwise roll back. Refused: untrusted signer, older version, lower security\n"
    "      counter. Exit 0 when installed (or running already), 1 otherwise.\n"
    "  mcu attach --state-dir S --component NAME [--attestation-key SPKI-HEX] -- /ABSOLUTE/RELAY\n"
    "             [ARG...]\n"
    "      Component NAME is firmware for a microcontroller beside the device: an install\n"
    "      hands it to the MCU's boot stage through the relay (RELAY ARG... --slot1 IMAGE,\n"
    "      as scripts/mcu-run), which must swap it in and confirm it (docs/mcu.md). The board's\n"
    "      attestation key (\"boot: attestation key SPKI-HEX\"), pinned: under rampart-monitor an\n"
    "      install is confirmed only with the board's evidence, signed by it.\n"
    "  recover --state-dir S\n"
    "      What runs at start: roll back an update cut before it was confirmed, fall back to the\n"
    "      other slot if the active one does not verify. Exit 1 if a component has no\n"
    "      verified image.\n"
    "  capability apply --state-dir S FILE\n"
    "  capability remove|show --state-dir S [--output json]\n"
    "      A capability signed by the device's tenant for this device (rampart device\n"
    "      capability create), checked with its update root: development lets a managed\n"
    "      device install images locally and be debugged, until it expires or is removed.\n"
    "  app install --state-dir S [--component NAME] [--health-seconds N] IMAGE\n"
    "      Sideload an app: install it as its manifest's ComponentId (a single-file app image\n"
    "      has none: give --component), as install does. A managed device needs a development\n"
    "      capability in force; while it holds one, its apps may also ptrace their own\n"
    "      processes (a debugger: see docs/compartments.md, \"Development mode\").\n"
    "  app logs --state-dir S NAME\n"
    "      The end (64 KiB at most) of an app's stdout and stderr.\n"
    "  app list --state-dir S [--output json]\n"
    "      The apps rampart-monitor runs: version, state, restarts, pid, the limits in force.\n"
    "  app stop|start|restart --state-dir S NAME\n"
    "      Stop an app (it stays stopped, across restarts and new versions, until started),\n"
    "      start it again, or restart it at once.\n"
    "  app remove --state-dir S NAME\n"
    "      Remove an app: stopped, its files, storage and slots deleted. Only an app the\n"
    "      device's signed targets no longer name, or under a development capability.\n"
    "  crashes --state-dir S [--output json]\n"
    "      The crashes the monitor kept (signal, address, frames as module+offset and build ID,\n"
    "      unwound here), oldest first.\n"
    "  events --state-dir S [--output json]\n"
    "      The security events the monitor recorded (time, kind, app, reason), oldest first:\n"
    "      each refusal its compartments saw; the newest 1000 are kept, the drop counted.\n"
    "  report --state-dir S [--server URL --server-ca FILE]\n"
    "      Send the report queue now (crashes, the agent's own security events: see\n"
    "      docs/failure-reporting.md), batch after batch, and say what happened; a wait the\n"
    "      service asked for (Retry-After) or a backoff in force is kept. Exit 0 when the\n"
    "      queue is empty afterwards.\n"
    "  reports --state-dir S [--output json]\n"
    "      The report queue: each report (seq, time, kind, code, component, reason), the\n"
    "      drop count, the next upload's wait.\n"
    "  status --state-dir S [--output json]\n"
    "      Components: version, active slot, security counter, last update result; for\n"
    "      an app, what the daemon does with it (starting, ready, running, restarting...).\n"
    "\n"
    "  --tcti TCTI     the TPM to use (tpm2; default: the one given at provisioning)\n"
    "  --verbose       debug logging\n"
    "\n"
    "Exit status: 0 success, 1 failure or refusal, 2 usage error.\n";

int cmd_usage(const char *msg)
{
    fprintf(stderr, "rampart-agent: %s\nTry 'rampart-agent --help'.\n", msg);
    return USAGE;
}

/* The device identity: through the monitor when it serves S, otherwise opened here as root
 * (rp_agent_attach owns the choice and says a refusal). root stays root: for the commands that
 * write root's files (provision, trust, capability) or none of the agent's (id, evidence). */
int cmd_open_identity(const struct args *a, rp_agent_t *agent)
{
    rp_err_t err = rp_agent_attach(agent, a->state_dir, a->tcti);

    if (err == RP_ERR_NOT_FOUND && !rp_agent_monitor_serves(a->state_dir) && geteuid() != 0)
        return FAIL; /* said: start the monitor */
    if (err != RP_OK) {
        rp_log_error("%s: cannot open the device identity: %s", a->state_dir, rp_strerror(err));
        return FAIL;
    }
    return OK;
}

/* The same for the agent's own work: through the monitor, root acts as the agent's user. */
int cmd_open_agent(const struct args *a, rp_agent_t *agent)
{
    if (cmd_open_identity(a, agent) != OK)
        return FAIL;
    if (rp_agent_become_agent_user(agent) != RP_OK) {
        rp_agent_close(agent);
        return FAIL;
    }
    return OK;
}

/* Whether this is single-process mode (the agent holds the root of trust and the slots). */
bool cmd_direct(const rp_agent_t *agent)
{
    return agent->rot != NULL;
}

int cmd_open_online(const struct args *a, rp_agent_t *agent, char *server, size_t scap, char *ca,
                    size_t ccap)
{
    int rc;

    if (cmd_open_agent(a, agent) != OK)
        return FAIL;
    rc = cmd_service_of(a, agent, server, scap, ca, ccap);
    if (rc == OK && !cmd_direct(agent))
        rp_mcu_runner_start(agent->state_dir); /* the relay to an MCU runs outside the filter */
    if (rc == OK && !cmd_direct(agent) && rp_agent_confine(rp_mcu_runner_pid()) != RP_OK)
        rc = FAIL;
    if (rc != OK)
        rp_agent_close(agent);
    return rc;
}

static int service_of(const struct args *a, const rp_agent_t *agent, char *server, size_t scap,
                      char *ca, size_t ccap);

/* The service the device talks to: given, or the one it last attested with; and the service CAs
 * to trust for it (rp_agent_service_ca). */
int cmd_service_of(const struct args *a, const rp_agent_t *agent, char *server, size_t scap,
                   char *ca, size_t ccap)
{
    char given[PATH_MAX];
    int rc = service_of(a, agent, server, scap, given, sizeof(given));

    if (rc == OK)
        rp_agent_service_ca(agent, given, ca, ccap);
    return rc;
}

static int service_of(const struct args *a, const rp_agent_t *agent, char *server, size_t scap,
                      char *ca, size_t ccap)
{
    char path[PATH_MAX + 64];
    uint8_t *data;
    size_t len;
    json_t *j;
    rp_err_t err;

    if (a->server != NULL && a->server_ca != NULL) {
        snprintf(server, scap, "%s", a->server);
        snprintf(ca, ccap, "%s", a->server_ca);
        return OK;
    }
    err = rp_agent_file(agent, "service.json", path, sizeof(path));
    if (err == RP_OK)
        err = rp_read_file(path, 8192, &data, &len);
    if (err == RP_ERR_NOT_FOUND)
        return cmd_usage("which service? --server URL --server-ca FILE (or attest first)");
    if (err == RP_OK) {
        j = json_loadb((const char *)data, len, 0, NULL);
        free(data);
        snprintf(server, scap, "%s", json_string_value(json_object_get(j, "server")) ?: "");
        snprintf(ca, ccap, "%s", json_string_value(json_object_get(j, "server_ca")) ?: "");
        json_decref(j);
    }
    if (err != RP_OK || server[0] == '\0' || ca[0] == '\0') {
        rp_log_error("%s is corrupt (%s): it should name the service the device last attested "
                     "with (server, server_ca). Fix: give --server URL --server-ca FILE, or "
                     "attest again",
                     path,
                     err == RP_ERR_TOO_LARGE ? "larger than 8 KiB"
                     : err != RP_OK          ? rp_strerror(err)
                                             : "no server and server_ca in it");
        return FAIL;
    }
    return OK;
}

/* Remember the service for check-now (best effort). */
void cmd_remember_service(const struct args *a, const rp_agent_t *agent)
{
    char path[PATH_MAX + 64], ca[PATH_MAX], *text;
    json_t *j;

    if (a->server == NULL || a->server_ca == NULL || realpath(a->server_ca, ca) == NULL)
        return;
    j = json_pack("{s:s, s:s}", "server", a->server, "server_ca", ca);
    text = j != NULL ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (text != NULL &&
        (rp_agent_file_for_write(agent, "service.json", path, sizeof(path)) != RP_OK ||
         rp_write_file_atomic(path, text, strlen(text), 0600, 0) != RP_OK))
        rp_log_warn("%s: cannot remember the service", path);
    free(text);
}

/* The daemon (daemon.c), with what the command line gives it. */
int cmd_run(const struct args *a)
{
    rp_daemon_opts_t o = {.state_dir = a->state_dir,
                          .server = a->server,
                          .server_ca = a->server_ca,
                          .update_window = a->update_window,
                          .renew_after = a->renew_after,
                          .update_interval = a->update_interval,
                          .health_seconds = a->health_seconds,
                          .start_jitter = RP_DAEMON_START_JITTER};
    rp_agent_t agent;
    char *end;

    if (a->server == NULL || a->server_ca == NULL)
        return cmd_usage("run needs --server URL and --server-ca FILE");
    if (a->start_jitter != NULL) {
        errno = 0;
        o.start_jitter = strtol(a->start_jitter, &end, 10);
        if (errno != 0 || end == a->start_jitter || *end != '\0' || o.start_jitter < 0 ||
            o.start_jitter > RP_DAEMON_START_JITTER_MAX)
            return cmd_usage("--start-jitter is 0 to 3600 seconds");
    }
    rp_daemon_signals();
    if (a->update_window != NULL && !rp_daemon_window_parse(a->update_window, &(int){0}, &(int){0}))
        return cmd_usage("--update-window is HH:MM-HH:MM (local time)");
    if (cmd_open_agent(a, &agent) != OK)
        return FAIL;
    cmd_remember_service(a, &agent);
    return rp_daemon_run(&agent, &o) ? OK : FAIL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir",       required_argument, NULL, 's'},
        {"rot",             required_argument, NULL, 'r'},
        {"tcti",            required_argument, NULL, 't'},
        {"server",          required_argument, NULL, 'S'},
        {"server-ca",       required_argument, NULL, 'C'},
        {"nonce",           required_argument, NULL, 'n'},
        {"out",             required_argument, NULL, 'o'},
        {"renew-after",     required_argument, NULL, 'R'},
        {"listen",          required_argument, NULL, 'l'},
        {"peer",            required_argument, NULL, 'p'},
        {"image-key",       required_argument, NULL, 'k'},
        {"component",       required_argument, NULL, 'c'},
        {"health-seconds",  required_argument, NULL, 'H'},
        {"output",          required_argument, NULL, 'O'},
        {"update-root",     required_argument, NULL, 'U'},
        {"update-interval", required_argument, NULL, 'I'},
        {"update-window",   required_argument, NULL, 'W'},
        {"start-jitter",    required_argument, NULL, 'J'},
        {"attestation-key", required_argument, NULL, 'K'},
        {"verbose",         no_argument,       NULL, 'v'},
        {"help",            no_argument,       NULL, 'h'},
        {"version",         no_argument,       NULL, 'V'},
        {NULL,              0,                 NULL, 0  },
    };
    struct args a = {0};
    const char *cmd, *verb = NULL;
    int c;

    rp_log_init("rampart-agent", RP_LOG_INFO);
    if (argc < 2)
        return cmd_usage("a command is needed");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        return OK;
    }
    if (strcmp(argv[1], "--seccomp-selftest") == 0)
        return rp_agent_confine_selftest();
    if (strcmp(argv[1], "--version") == 0) {
        printf("rampart-agent %s\n", RP_VERSION);
        return OK;
    }
    cmd = argv[1];
    optind = 2;
    if (strcmp(cmd, "peer") == 0 || strcmp(cmd, "capability") == 0 || strcmp(cmd, "app") == 0 ||
        strcmp(cmd, "mcu") == 0) {
        if (argc < 3)
            return cmd_usage(strcmp(cmd, "peer") == 0         ? "peer serve or peer connect"
                             : strcmp(cmd, "capability") == 0 ? "capability apply, remove or show"
                             : strcmp(cmd, "mcu") == 0        ? "mcu attach"
                                                              : "app logs NAME");
        verb = argv[2];
        optind = 3;
    }
    while ((c = getopt_long(argc, argv, "s:r:t:S:C:n:o:R:l:p:k:c:H:O:U:I:W:J:K:vhV", opts, NULL)) !=
           -1) {
        switch (c) {
        case 's': a.state_dir = optarg; break;
        case 'r': a.rot = optarg; break;
        case 't': a.tcti = optarg; break;
        case 'S': a.server = optarg; break;
        case 'C': a.server_ca = optarg; break;
        case 'n': a.nonce = optarg; break;
        case 'o': a.out = optarg; break;
        case 'R': a.renew_after = strtol(optarg, NULL, 10); break;
        case 'l': a.listen = optarg; break;
        case 'p': a.peer = optarg; break;
        case 'k': a.image_key = optarg; break;
        case 'c': a.component = optarg; break;
        case 'K': a.attestation_key = optarg; break;
        case 'H':
            a.health_seconds = (int)strtol(optarg, NULL, 10);
            if (a.health_seconds < 1 || a.health_seconds > 3600)
                return cmd_usage("--health-seconds is 1 to 3600");
            break;
        case 'O': a.output = optarg; break;
        case 'U': a.update_root = optarg; break;
        case 'I':
            a.update_interval = strtol(optarg, NULL, 10);
            if (a.update_interval < 1 || a.update_interval > 7 * 24 * 3600)
                return cmd_usage("--update-interval is 1 to 604800 seconds");
            break;
        case 'W': a.update_window = optarg; break;
        case 'J': a.start_jitter = optarg; break;
        case 'v': rp_log_set_level(RP_LOG_DEBUG); break;
        case 'h': fputs(usage, stdout); return OK;
        default: return cmd_usage("bad option");
        }
    }
    a.rest = argv + optind;
    a.nrest = argc - optind;
    if (a.nrest != 0 && strcmp(cmd, "install") != 0 && strcmp(cmd, "capability") != 0 &&
        strcmp(cmd, "app") != 0 && strcmp(cmd, "mcu") != 0)
        return cmd_usage("unexpected argument");
    if (a.state_dir == NULL)
        return cmd_usage("--state-dir is required");
    /* Whoever can write the state directory can be the device: refused, for every command. */
    switch (rp_agent_check_state_dir(a.state_dir)) {
    case RP_OK:
    case RP_ERR_NOT_FOUND: break; /* provision makes it (0700); the others say it is missing */
    default: return FAIL;
    }
    if (strcmp(cmd, "provision") == 0)
        return cmd_provision(&a);
    if (strcmp(cmd, "id") == 0)
        return cmd_id(&a);
    if (strcmp(cmd, "evidence") == 0)
        return cmd_evidence(&a);
    if (strcmp(cmd, "attest") == 0)
        return cmd_attest(&a);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(&a);
    if (strcmp(cmd, "peer") == 0)
        return cmd_peer(&a, verb);
    if (strcmp(cmd, "trust") == 0)
        return cmd_trust(&a);
    if (strcmp(cmd, "install") == 0)
        return cmd_install(&a);
    if (strcmp(cmd, "recover") == 0)
        return cmd_recover(&a);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(&a);
    if (strcmp(cmd, "check-now") == 0)
        return cmd_check_now(&a);
    if (strcmp(cmd, "capability") == 0)
        return cmd_capability(&a, verb);
    if (strcmp(cmd, "app") == 0 && strcmp(verb, "logs") == 0)
        return cmd_app_logs(&a);
    if (strcmp(cmd, "app") == 0 && strcmp(verb, "stop") == 0)
        return cmd_app_control(&a, RP_MON_APP_STOP);
    if (strcmp(cmd, "app") == 0 && strcmp(verb, "start") == 0)
        return cmd_app_control(&a, RP_MON_APP_START);
    if (strcmp(cmd, "app") == 0 && strcmp(verb, "restart") == 0)
        return cmd_app_control(&a, RP_MON_APP_RESTART);
    if (strcmp(cmd, "app") == 0 && strcmp(verb, "list") == 0)
        return cmd_app_list(&a);
    if (strcmp(cmd, "app") == 0 && strcmp(verb, "remove") == 0)
        return cmd_app_remove(&a);
    if (strcmp(cmd, "app") == 0 && strcmp(verb, "install") == 0)
        return cmd_app_install(&a);
    if (strcmp(cmd, "app") == 0)
        return cmd_usage(
            "app install IMAGE | app logs NAME | app list | app stop|start|restart|remove NAME");
    if (strcmp(cmd, "mcu") == 0 && strcmp(verb, "attach") == 0)
        return cmd_mcu_attach(&a);
    if (strcmp(cmd, "mcu") == 0)
        return cmd_usage(
            "mcu attach --component NAME [--attestation-key SPKI-HEX] -- /ABSOLUTE/RELAY [ARG...]");
    if (strcmp(cmd, "events") == 0)
        return cmd_events(&a);
    if (strcmp(cmd, "crashes") == 0)
        return cmd_crashes(&a);
    if (strcmp(cmd, "report") == 0)
        return cmd_report(&a);
    if (strcmp(cmd, "reports") == 0)
        return cmd_reports(&a);
    return cmd_usage("unknown command");
}
