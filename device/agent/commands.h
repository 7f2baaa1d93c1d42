/*
 * What rampart-agent's commands share (main.c): exit codes, the parsed command line, opening the
 * device identity, the service to talk to; and each command, for main.c's table. The commands are
 * in cmd_device.c (identity, attestation, trust, peers, capabilities), cmd_updates.c (installs,
 * recovery, update checks) and cmd_status.c (what the device says of itself: status, apps,
 * events, crashes, reports); the daemon is daemon.c.
 */
#ifndef RAMPART_AGENT_COMMANDS_H
#define RAMPART_AGENT_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "agent.h"
#include "proto.h"

enum { OK = 0, FAIL = 1, USAGE = 2 }; /* exit codes */

/* The command line, parsed (main.c). */
struct args {
    const char *state_dir, *rot, *tcti, *server, *server_ca, *nonce, *out;
    const char *listen, *peer, *image_key, *component, *output, *update_root, *update_window;
    const char *start_jitter; /* run: --start-jitter, as given (NULL: the default) */
    const char *attestation_key; /* mcu attach: the board's key, hex DER SPKI (NULL: none) */
    long renew_after, update_interval;
    int health_seconds;
    char **rest; /* positional arguments */
    int nrest;
};

/* Print the usage error msg and a hint; returns USAGE. */
int cmd_usage(const char *msg);
/* The device identity: through the monitor when it serves S, otherwise opened here as root
 * (rp_agent_attach owns the choice and says a refusal). root stays root: for the commands that
 * write root's files (provision, trust, capability) or none of the agent's (id, evidence). */
int cmd_open_identity(const struct args *a, rp_agent_t *agent);
/* The same for the agent's own work: through the monitor, root acts as the agent's user. */
int cmd_open_agent(const struct args *a, rp_agent_t *agent);
/* Whether this is single-process mode (the agent holds the root of trust and the slots). */
bool cmd_direct(const rp_agent_t *agent);
/* The service the device talks to: given, or the one it last attested with (OK, or said). */
int cmd_service_of(const struct args *a, const rp_agent_t *agent, char *server, size_t scap,
                   char *ca, size_t ccap);
/* For the commands that talk to the service from the command line (check-now, report): the agent
 * opened (cmd_open_agent), its service found (cmd_service_of), and, under the monitor, confined
 * as in `run` (it parses the network's answers). OK with *agent open, or said and closed. */
int cmd_open_online(const struct args *a, rp_agent_t *agent, char *server, size_t scap, char *ca,
                    size_t ccap);
/* Remember the service for check-now (best effort). */
void cmd_remember_service(const struct args *a, const rp_agent_t *agent);

/* The commands: each returns the exit code. */
int cmd_provision(const struct args *a);
int cmd_id(const struct args *a);
int cmd_evidence(const struct args *a);
int cmd_attest(const struct args *a);
int cmd_run(const struct args *a);
int cmd_peer(const struct args *a, const char *verb);
int cmd_trust(const struct args *a);
int cmd_capability(const struct args *a, const char *verb);
int cmd_install(const struct args *a);
int cmd_app_install(const struct args *a);
int cmd_recover(const struct args *a);
int cmd_check_now(const struct args *a);
int cmd_mcu_attach(const struct args *a);
int cmd_status(const struct args *a);
int cmd_app_logs(const struct args *a);
int cmd_app_control(const struct args *a, rp_mon_app_action_t action);
int cmd_app_remove(const struct args *a);
int cmd_app_list(const struct args *a);
int cmd_events(const struct args *a);
int cmd_crashes(const struct args *a);
int cmd_reports(const struct args *a);
int cmd_report(const struct args *a);

#endif /* RAMPART_AGENT_COMMANDS_H */
