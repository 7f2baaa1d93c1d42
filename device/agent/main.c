/*
 * rampart-agent: the device's side of attestation. It provisions the device identity in the root
 * of trust, makes evidence, attests with the security service and keeps a current certificate,
 * once or as a daemon. This file is its command line: the commands, their arguments, and the
 * one-shot commands themselves; the daemon (`run`) is daemon.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "agent.h"
#include "capability.h"
#include "confine.h"
#include "crashes.h"
#include "daemon.h"
#include "events.h"
#include "proto.h"
#include "report.h"
#include "reportq.h"
#include "slots.h"
#include "supervise.h"
#include "update.h"
#include "tls.h"
#include "rampart/apptree.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/image.h"
#include "rampart/log.h"
#include "rampart/manifest.h"

enum { OK = 0, FAIL = 1, USAGE = 2 };

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
    "      Attest now, then again well before the certificate expires (at two thirds of its\n"
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

struct args {
    const char *state_dir, *rot, *tcti, *server, *server_ca, *nonce, *out;
    const char *listen, *peer, *image_key, *component, *output, *update_root, *update_window;
    long renew_after, update_interval;
    int health_seconds;
    char **rest; /* positional arguments */
    int nrest;
};

static int usage_error(const char *msg)
{
    fprintf(stderr, "rampart-agent: %s\nTry 'rampart-agent --help'.\n", msg);
    return USAGE;
}

/* The device identity: through the monitor when it serves S, otherwise opened here as root
 * (rp_agent_attach owns the choice and says a refusal). root stays root: for the commands that
 * write root's files (provision, trust, capability) or none of the agent's (id, evidence). */
static int open_identity(const struct args *a, rp_agent_t *agent)
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
static int open_agent(const struct args *a, rp_agent_t *agent)
{
    if (open_identity(a, agent) != OK)
        return FAIL;
    if (rp_agent_become_agent_user(agent) != RP_OK) {
        rp_agent_close(agent);
        return FAIL;
    }
    return OK;
}

/* Whether this is single-process mode (the agent holds the root of trust and the slots). */
static bool direct(const rp_agent_t *agent)
{
    return agent->rot != NULL;
}

static int cmd_trust(const struct args *a);

static int cmd_provision(const struct args *a)
{
    rp_rot_config_t cfg = {0};
    rp_agent_t agent;
    bool created;
    rp_err_t err;

    if (a->rot == NULL)
        return usage_error("provision needs --rot soft|tpm2");
    if (rp_rot_kind_parse(a->rot, &cfg.kind) != RP_OK)
        return usage_error("--rot must be soft or tpm2");
    /* Once a monitor serves S, the identity is made: it is kept, and said. */
    if (rp_agent_monitor_serves(a->state_dir)) {
        if (open_identity(a, &agent) != OK)
            return FAIL;
        rp_log_info("kept the root of trust in %s (rampart-monitor serves it)", a->state_dir);
        printf("%s\n", agent.device_id);
        rp_agent_close(&agent);
        if (a->image_key != NULL)
            return cmd_trust(a);
        return OK;
    }
    if (geteuid() != 0) {
        rp_log_error("provision runs as root, before the monitor's first start (it makes the "
                     "device identity in %s); once provisioned, start rampart-monitor --state-dir "
                     "%s --agent-user USER",
                     a->state_dir, a->state_dir);
        return FAIL;
    }
    cfg.state_dir = a->state_dir;
    cfg.tcti = a->tcti;
    err = rp_rot_provision(&cfg, &created);
    if (err == RP_OK && a->tcti != NULL && cfg.kind == RP_ROT_TPM2)
        err = rp_agent_save_tcti(a->state_dir, a->tcti);
    if (err == RP_OK)
        err = rp_agent_dir_make(a->state_dir, 0, 0); /* the monitor hands it to --agent-user */
    if (err != RP_OK) {
        rp_log_error("cannot provision %s: %s", a->state_dir, rp_strerror(err));
        return FAIL;
    }
    if (open_identity(a, &agent) != OK)
        return FAIL;
    if (a->image_key != NULL && (err = rp_trust_image_key(a->state_dir, a->image_key)) != RP_OK) {
        rp_log_error("%s: cannot trust this image key: %s", a->image_key, rp_strerror(err));
        rp_agent_close(&agent);
        return FAIL;
    }
    rp_log_info("%s %s root of trust in %s", created ? "made a" : "kept the", a->rot, a->state_dir);
    printf("%s\n", agent.device_id);
    rp_agent_close(&agent);
    return OK;
}

static int cmd_id(const struct args *a)
{
    rp_agent_t agent;
    EVP_PKEY *key;
    int rc = FAIL;

    if (open_identity(a, &agent) != OK)
        return FAIL;
    printf("device id: %s\nroot of trust: %s\n", agent.device_id, rp_rot_kind_name(agent.kind));
    key = rp_agent_pubkey(&agent);
    if (key != NULL && PEM_write_PUBKEY(stdout, key) == 1)
        rc = OK;
    rp_agent_close(&agent);
    return rc;
}

static int cmd_evidence(const struct args *a)
{
    uint8_t nonce[RP_EAT_NONCE_MAX], token[RP_EAT_MAX_SIZE];
    char device_id[RP_DEVICE_ID_SIZE] = "";
    size_t n, len;
    rp_atomic_file_t f;
    rp_agent_t agent;
    rp_err_t err;
    bool by_monitor;

    if (a->nonce == NULL || a->out == NULL)
        return usage_error("evidence needs --nonce HEX and --out FILE");
    n = strlen(a->nonce);
    if (n % 2 != 0 || n / 2 < RP_EAT_NONCE_MIN || n / 2 > RP_EAT_NONCE_MAX ||
        rp_hex_decode(a->nonce, n, nonce, n / 2) != RP_OK)
        return usage_error("--nonce must be 16 to 128 hex digits");
    if (open_identity(a, &agent) != OK)
        return FAIL;
    err = rp_agent_ask_evidence(&agent, nonce, n / 2, token, sizeof(token), &len);
    snprintf(device_id, sizeof(device_id), "%s", agent.device_id);
    by_monitor = !direct(&agent);
    rp_agent_close(&agent);
    if (err == RP_OK)
        err = rp_atomic_begin(&f, a->out, 0644, 0);
    if (err == RP_OK) {
        err = rp_atomic_write(&f, token, len);
        if (err == RP_OK)
            err = rp_atomic_commit(&f, 0);
        else
            rp_atomic_abort(&f);
    }
    if (err != RP_OK) {
        rp_log_error("cannot make evidence: %s", rp_strerror(err));
        return FAIL;
    }
    if (by_monitor)
        printf("%s: %zu bytes of evidence, made by rampart-monitor\n", a->out, len);
    else
        printf("%s: %zu bytes of evidence for device %s\n", a->out, len, device_id);
    return OK;
}

static void remember_service(const struct args *a, const rp_agent_t *agent);

static int cmd_attest(const struct args *a)
{
    rp_agent_result_t res;
    rp_agent_t agent;
    int rc;

    if (a->server == NULL || a->server_ca == NULL)
        return usage_error("attest needs --server URL and --server-ca FILE");
    if (open_agent(a, &agent) != OK)
        return FAIL;
    remember_service(a, &agent);
    rc = rp_daemon_attest(&agent, a->server, a->server_ca, &res) ? OK : FAIL;
    rp_agent_close(&agent);
    return rc;
}

/* "host:port" into its parts. */
static bool host_port(const char *s, char *host, size_t cap, int *port)
{
    const char *colon = s != NULL ? strrchr(s, ':') : NULL;
    char *end;
    long p;

    if (colon == NULL || (size_t)(colon - s) >= cap || colon == s)
        return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 0 || p > 65535)
        return false;
    *port = (int)p;
    return true;
}

static int cmd_peer(const struct args *a, const char *verb)
{
    char host[256] = "127.0.0.1";
    int port = 0;
    rp_agent_t agent;
    rp_err_t err;

    if (strcmp(verb, "serve") == 0) {
        if (a->listen != NULL && !host_port(a->listen, host, sizeof(host), &port))
            return usage_error("--listen wants HOST:PORT");
    } else if (strcmp(verb, "connect") == 0) {
        if (!host_port(a->peer, host, sizeof(host), &port))
            return usage_error("peer connect needs --peer HOST:PORT");
    } else {
        return usage_error("peer serve or peer connect");
    }
    if (open_agent(a, &agent) != OK)
        return FAIL;
    err = strcmp(verb, "serve") == 0 ? rp_agent_peer_serve(&agent, host, port)
                                     : rp_agent_peer_connect(&agent, host, port);
    rp_agent_close(&agent);
    return err == RP_OK ? OK : FAIL;
}

/* The daemon (daemon.c), with what the command line gives it. */
static int cmd_run(const struct args *a)
{
    rp_daemon_opts_t o = {.state_dir = a->state_dir,
                          .server = a->server,
                          .server_ca = a->server_ca,
                          .update_window = a->update_window,
                          .renew_after = a->renew_after,
                          .update_interval = a->update_interval,
                          .health_seconds = a->health_seconds};
    rp_agent_t agent;

    if (a->server == NULL || a->server_ca == NULL)
        return usage_error("run needs --server URL and --server-ca FILE");
    rp_daemon_signals();
    if (a->update_window != NULL && !rp_daemon_window_parse(a->update_window, &(int){0}, &(int){0}))
        return usage_error("--update-window is HH:MM-HH:MM (local time)");
    if (open_agent(a, &agent) != OK)
        return FAIL;
    remember_service(a, &agent);
    return rp_daemon_run(&agent, &o) ? OK : FAIL;
}

/* trust --update-root through the monitor: TRUST_ROOT, the root unpacked here into its binary
 * form (the monitor parses no JSON it has not verified), as a descriptor. */
static int trust_root_by_monitor(const struct args *a, rp_agent_t *agent)
{
    static rp_mon_reply_t r;
    static rp_md_signed_t doc;
    rp_mon_request_t q = {.type = RP_MON_TRUST_ROOT};
    uint8_t *data = NULL;
    char detail[256];
    size_t len;
    int fd = -1;
    rp_err_t err = rp_read_file(a->update_root, RP_MON_ROOT_MAX, &data, &len);

    if (err == RP_ERR_TOO_LARGE)
        snprintf(detail, sizeof(detail), "larger than %d bytes", RP_MON_ROOT_MAX);
    else if (err != RP_OK)
        snprintf(detail, sizeof(detail), "%s", rp_strerror(err));
    else if ((err = rp_md_unpack((const char *)data, len, &doc, detail, sizeof(detail))) == RP_OK &&
             (err = rp_update_signed_fd(&doc, &fd)) != RP_OK)
        snprintf(detail, sizeof(detail), "%s", rp_strerror(err));
    free(data);
    rp_md_signed_free(&doc);
    if (err != RP_OK) {
        rp_log_error("%s: root metadata refused: %s", a->update_root, detail);
        return FAIL;
    }
    err = rp_agent_monitor_call(agent, &q, fd, &r);
    close(fd);
    if (err != RP_OK)
        return FAIL;
    printf("trusting the update root in %s (version %llu, kept by rampart-monitor)\n",
           a->update_root, (unsigned long long)r.u.trust_root.version);
    return OK;
}

static int cmd_trust(const struct args *a)
{
    rp_agent_t agent;
    rp_err_t err;
    int rc;

    if (a->update_root == NULL && a->image_key == NULL)
        return usage_error("trust needs --update-root FILE or --image-key PUB.pem");
    if (rp_agent_monitor_serves(a->state_dir)) {
        if (a->update_root == NULL && geteuid() == 0)
            goto image_key; /* root's files: the monitor reads them at each install */
        if (a->update_root == NULL) {
            rp_log_error("image keys are given by root (trust --image-key, as root), or come with "
                         "an update root (trust --update-root)");
            return FAIL;
        }
        if (open_identity(a, &agent) != OK)
            return FAIL;
        rc = trust_root_by_monitor(a, &agent);
        rp_agent_close(&agent);
        return rc;
    }
    if (geteuid() != 0) {
        rp_log_error("no rampart-monitor serves %s: start it with rampart-monitor --state-dir %s "
                     "--agent-user USER",
                     a->state_dir, a->state_dir);
        return FAIL;
    }
    if (a->update_root != NULL) {
        err = rp_update_trust_root(a->state_dir, a->update_root);
        if (err != RP_OK) {
            rp_log_error("%s: not a root to trust: %s", a->update_root, rp_strerror(err));
            return FAIL;
        }
        printf("trusting the update root in %s\n", a->update_root);
        return OK;
    }
image_key:
    err = rp_trust_image_key(a->state_dir, a->image_key);
    if (err != RP_OK) {
        rp_log_error("%s: cannot trust this image key: %s", a->image_key, rp_strerror(err));
        return FAIL;
    }
    printf("trusting images signed with %s\n", a->image_key);
    return OK;
}

/*
 * A device with an update root is managed: it takes images through deployments. A local install
 * is sideloading, allowed only with a development capability in force (docs/compartments.md).
 * Without a root (a board on a bench, trusting image keys it was given) it is how images get on.
 */
static bool may_install_locally(const rp_agent_t *agent)
{
    char why[256] = "";
    bool allowed = false;

    if (rp_capability_sideload(agent->state_dir, agent->device_id, &allowed, why, sizeof(why)) !=
        RP_OK)
        return false; /* a corrupt root: said */
    if (allowed)
        return true;
    rp_log_error("this device is managed (it has an update root): it takes images through "
                 "deployments. Installing one locally needs a development capability for it "
                 "(rampart device capability create, then rampart-agent capability apply)%s%s",
                 why[0] != '\0' ? "; the one it holds does not count: " : "", why);
    return false;
}

static int cmd_capability(const struct args *a, const char *verb)
{
    rp_md_capability_t cap;
    rp_agent_t agent;
    char detail[300] = "";
    bool have = false;
    rp_err_t err;
    int rc = OK;

    if (strcmp(verb, "remove") == 0) {
        if (a->nrest != 0)
            return usage_error("capability remove takes no argument");
        if (rp_capability_remove(a->state_dir) != RP_OK) {
            rp_log_error("%s: cannot remove the capability", a->state_dir);
            return FAIL;
        }
        printf("no capability\n");
        return OK;
    }
    if (strcmp(verb, "apply") != 0 && strcmp(verb, "show") != 0)
        return usage_error("capability apply FILE, remove or show");
    if ((strcmp(verb, "apply") == 0) != (a->nrest == 1) || a->nrest > 1)
        return usage_error("capability apply takes one FILE; show takes none");
    if (open_identity(a, &agent) != OK)
        return FAIL;
    if (strcmp(verb, "apply") == 0) {
        err = rp_capability_apply(&agent, a->rest[0], &cap, detail, sizeof(detail));
        have = err == RP_OK;
        if (err != RP_OK) {
            rp_log_error("%s: refused: %s", a->rest[0], detail);
            rc = FAIL;
        }
    } else if (rp_capability_development(a->state_dir, agent.device_id, &have, &cap, detail,
                                         sizeof(detail)) != RP_OK) {
        rc = FAIL;
    }
    rp_agent_close(&agent);
    if (rc != OK)
        return rc;
    if (a->output != NULL && strcmp(a->output, "json") == 0) {
        json_t *j =
            have ? json_pack("{s:s, s:s, s:I, s:I}", "kind", rp_md_capability_kind_name(cap.kind),
                             "tenant", cap.tenant, "issued", (json_int_t)cap.issued, "expires",
                             (json_int_t)cap.expires)
                 : json_pack("{s:n, s:s}", "kind", "reason", detail);
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(j);
    } else if (have) {
        printf("%s capability from tenant %s, until %lld\n", rp_md_capability_kind_name(cap.kind),
               cap.tenant, (long long)cap.expires);
    } else {
        printf("no capability in force%s%s\n", detail[0] != '\0' ? ": " : "", detail);
    }
    return OK;
}

/* The one local install (install, app install): the gate, the slots' lock, recovery, then the
 * install itself (through the monitor when one serves S). */
static int install_image(const struct args *a, const char *component, const char *image)
{
    rp_install_opts_t opts = {.health_seconds = a->health_seconds};
    rp_install_result_t res;
    rp_agent_t agent;
    rp_err_t err;
    int lock;

    if (open_agent(a, &agent) != OK)
        return FAIL;
    if (!may_install_locally(&agent)) {
        rp_agent_close(&agent);
        return FAIL;
    }
    if ((lock = rp_agent_lock_slots(&agent)) < 0) {
        rp_agent_close(&agent);
        return FAIL;
    }
    err = rp_agent_recover(&agent, NULL);
    if (err == RP_OK)
        err = rp_agent_install(&agent, component, image, &opts, &res);
    close(lock);
    rp_agent_close(&agent);
    if (err != RP_OK) {
        rp_log_error("%s: install failed: %s", component, rp_strerror(err));
        return FAIL;
    }
    printf("%s: %s: %s\n", component, rp_update_state_name(res.state), res.detail);
    return res.state == RP_UPDATE_INSTALLED || res.state == RP_UPDATE_UNCHANGED ? OK : FAIL;
}

static int cmd_install(const struct args *a)
{
    if (a->component == NULL || a->nrest != 1)
        return usage_error("install needs --component NAME and one IMAGE");
    if (!rp_component_name_valid(a->component, strlen(a->component)))
        return usage_error("a component name is 1 to 32 of A-Z a-z 0-9 . _ - (no leading dot)");
    return install_image(a, a->component, a->rest[0]);
}

/*
 * The component an app image installs as: its manifest's ComponentId (an app tree), else the
 * --component given (a legacy single-file app has no manifest). Read unverified: the monitor
 * verifies the image when it installs it, and runs a tree only under its manifest's ComponentId.
 * OUT: out (RP_COMPONENT_NAME_MAX + 1 bytes). On a refusal, why says what.
 */
static rp_err_t app_image_component(const char *path, const char *given, char *out, char *why,
                                    size_t cap)
{
    rp_manifest_t *m = malloc(sizeof(*m));
    rp_image_identity_t id;
    rp_apptree_kind_t kind;
    rp_file_image_t img;
    rp_err_t err;

    if (m == NULL)
        return RP_ERR_NO_MEMORY;
    if ((err = rp_file_image_open(&img, path)) != RP_OK) {
        snprintf(why, cap, "cannot open it: %s", rp_strerror(err));
        free(m);
        return err;
    }
    err = rp_image_identity_read(&img.io, &id);
    if (err != RP_OK)
        snprintf(why, cap, "not a valid image: %s", rp_strerror(err));
    else if (id.type != RP_IMAGE_TYPE_APP) { /* the monitor runs only these as apps */
        err = RP_ERR_INVALID_ARG;
        snprintf(why, cap,
                 "an image of type %s, not an app (rampart-agent install --component NAME "
                 "installs it)",
                 rp_image_type_name(id.type) != NULL ? rp_image_type_name(id.type) : "none");
    } else if ((err = rp_apptree_kind(img.fd, id.layout.hdr.hdr_size, id.layout.hdr.img_size,
                                      &kind)) != RP_OK)
        snprintf(why, cap, "cannot read its payload: %s", rp_strerror(err));
    else if (kind == RP_APPTREE_LEGACY) {
        err = given != NULL ? RP_OK : RP_ERR_INVALID_ARG;
        if (given == NULL)
            snprintf(why, cap,
                     "a single-file app image has no manifest to name its component: give "
                     "--component NAME");
        else
            snprintf(out, RP_COMPONENT_NAME_MAX + 1, "%s", given);
    } else if ((err = rp_apptree_read_manifest(img.fd, id.layout.hdr.hdr_size,
                                               id.layout.hdr.img_size, m, why, cap)) == RP_OK) {
        if (given != NULL && strcmp(given, m->component_id) != 0) {
            err = RP_ERR_INVALID_ARG;
            snprintf(why, cap, "its manifest says ComponentId %s, not %s", m->component_id, given);
        } else
            snprintf(out, RP_COMPONENT_NAME_MAX + 1, "%s", m->component_id);
    }
    rp_file_image_close(&img);
    free(m);
    return err;
}

/* Sideloading an app: the component is the image's own (app_image_component). */
static int cmd_app_install(const struct args *a)
{
    char component[RP_COMPONENT_NAME_MAX + 1], why[512] = "";

    if (a->nrest != 1)
        return usage_error("app install needs one IMAGE");
    if (a->component != NULL && !rp_component_name_valid(a->component, strlen(a->component)))
        return usage_error("a component name is 1 to 32 of A-Z a-z 0-9 . _ - (no leading dot)");
    if (app_image_component(a->rest[0], a->component, component, why, sizeof(why)) != RP_OK) {
        rp_log_error("%s: refused: %s", a->rest[0], why);
        return FAIL;
    }
    return install_image(a, component, a->rest[0]);
}

static int cmd_recover(const struct args *a)
{
    rp_agent_t agent;
    int unbootable = 0, lock;
    rp_err_t err;

    if (open_agent(a, &agent) != OK)
        return FAIL;
    if ((lock = rp_agent_lock_slots(&agent)) < 0) {
        rp_agent_close(&agent);
        return FAIL;
    }
    err = rp_agent_recover(&agent, &unbootable);
    close(lock);
    rp_agent_close(&agent);
    if (err != RP_OK) {
        rp_log_error("recovery failed: %s", rp_strerror(err));
        return FAIL;
    }
    if (unbootable > 0) {
        rp_log_error("%d component(s) have no verified image", unbootable);
        return FAIL;
    }
    return OK;
}

/*
 * The components as the monitor's STATUS gives them, in the JSON form of `status`: what it does
 * not say (the trial slot, the running image's own security counter, the update's time) is null,
 * and the apps are the monitor's to list.
 */
static rp_err_t status_by_monitor(rp_agent_t *agent, json_t *list)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_STATUS};
    rp_err_t err = rp_agent_monitor_call(agent, &q, -1, &r);

    for (size_t i = 0; err == RP_OK && i < r.u.status.n; i++) {
        const rp_mon_component_t *c = &r.u.status.c[i];
        const char *result = rp_update_state_name((rp_update_state_t)c->last_result);
        json_array_append_new(
            list, json_pack("{s:s, s:o, s:o, s:b, s:n, s:n, s:I, s:{s:s, s:s, s:s, s:n}, s:n}",
                            "name", c->name, "version",
                            c->version[0] ? json_string(c->version) : json_null(), "active_slot",
                            c->active <= 1 ? json_sprintf("%c", "ab"[c->active]) : json_null(),
                            "verified", c->version[0] != '\0', "trial_slot", "security_counter",
                            "security_counter_floor", (json_int_t)c->security_counter,
                            "last_update", "result", result != NULL ? result : "?", "version", "",
                            "detail", c->last_detail, "at", "app"));
    }
    return err;
}

static int cmd_status(const struct args *a)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1], path[PATH_MAX];
    json_t *list = json_array();
    rp_agent_t agent;
    size_t n = 0;
    rp_err_t err;

    if (a->output != NULL && strcmp(a->output, "json") != 0 && strcmp(a->output, "text") != 0) {
        json_decref(list);
        return usage_error("--output must be text or json");
    }
    if (open_agent(a, &agent) != OK) {
        json_decref(list);
        return FAIL;
    }
    if (!direct(&agent))
        err = status_by_monitor(&agent, list);
    else
        err = rp_component_names(a->state_dir, names, RP_COMPONENTS_MAX, &n);
    for (size_t i = 0; err == RP_OK && i < n; i++) {
        rp_component_t c;
        rp_slot_image_t img = {0};
        uint32_t counter = 0;
        json_t *run;
        err = rp_component_load(a->state_dir, names[i], &c);
        if (err == RP_OK)
            err = rp_rot_seccnt_read(agent.rot, c.seccnt_index, &counter);
        if (err == RP_OK && c.active >= 0 &&
            rp_slot_path(a->state_dir, c.name, c.active, path, sizeof(path)) == RP_OK)
            err = rp_slot_check(&agent, &c, path, &img);
        if (err != RP_OK)
            break;
        if (rp_app_status_load(a->state_dir, c.name, &run) != RP_OK)
            run = json_null(); /* never run by the daemon (or its record is corrupt: said so) */
        /* security_counter: the running image's, null when it has none (or nothing verified
         * runs); security_counter_floor: the root of trust's, below which nothing installs. */
        json_array_append_new(
            list,
            json_pack(
                "{s:s, s:o, s:o, s:b, s:o, s:o, s:I, s:{s:s, s:s, s:s, s:I}, s:o}", "name", c.name,
                "version", img.valid ? json_string(img.version) : json_null(), "active_slot",
                c.active >= 0 ? json_sprintf("%c", "ab"[c.active]) : json_null(), "verified",
                img.valid, "trial_slot",
                c.trial >= 0 ? json_sprintf("%c", "ab"[c.trial]) : json_null(), "security_counter",
                img.valid && img.has_security_counter ? json_integer(img.security_counter)
                                                      : json_null(),
                "security_counter_floor", (json_int_t)counter, "last_update", "result",
                rp_update_state_name(c.last_result), "version", c.last_version, "detail",
                c.last_detail, "at", (json_int_t)c.last_at, "app", run));
    }
    rp_agent_close(&agent);
    if (err != RP_OK) {
        json_decref(list);
        rp_log_error("cannot read the components: %s", rp_strerror(err));
        return FAIL;
    }
    if (a->output != NULL && strcmp(a->output, "json") == 0) {
        json_t *out = json_pack("{s:o}", "components", list);
        json_dumpf(out, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(out);
        return OK;
    }
    printf("%-16s %-14s %-5s %-10s %-6s %s\n", "COMPONENT", "VERSION", "SLOT", "COUNTER", "FLOOR",
           "LAST UPDATE");
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *c = json_array_get(list, i), *l = json_object_get(c, "last_update");
        json_t *run = json_object_get(c, "app");
        const char *v = json_string_value(json_object_get(c, "version"));
        const char *slot = json_string_value(json_object_get(c, "active_slot"));
        json_t *cnt = json_object_get(c, "security_counter");
        char counter_text[16];
        if (json_is_integer(cnt))
            snprintf(counter_text, sizeof(counter_text), "%lld",
                     (long long)json_integer_value(cnt));
        else
            snprintf(counter_text, sizeof(counter_text), "none");
        printf("%-16s %-14s %-5s %-10s %-6lld %s %s%s%s\n",
               json_string_value(json_object_get(c, "name")), v != NULL ? v : "(none)",
               slot != NULL ? slot : "-", counter_text,
               (long long)json_integer_value(json_object_get(c, "security_counter_floor")),
               json_string_value(json_object_get(l, "result")),
               json_string_value(json_object_get(l, "version")),
               *json_string_value(json_object_get(l, "detail")) ? ": " : "",
               json_string_value(json_object_get(l, "detail")));
        if (json_is_object(run)) {
            json_int_t pid = json_integer_value(json_object_get(run, "pid"));
            const char *exit = json_string_value(json_object_get(run, "last_exit"));
            printf("%-16s app %s: %s", "", json_string_value(json_object_get(run, "version")) ?: "",
                   json_string_value(json_object_get(run, "status")));
            if (pid > 0)
                printf(", pid %lld%s", (long long)pid,
                       json_is_true(json_object_get(run, "alive")) ? "" : " (gone)");
            printf(", %lld restart(s)%s%s\n",
                   (long long)json_integer_value(json_object_get(run, "restarts")),
                   exit != NULL ? ", last " : "", exit != NULL ? exit : "");
        }
    }
    json_decref(list);
    return OK;
}

#define APP_LOG_TAIL (64 * 1024) /* what `app logs` shows of an app's log, at most: its end */

/* app logs NAME: the end of the app's stdout and stderr (S/components/NAME/app.log). */
static int cmd_app_logs(const struct args *a)
{
    char path[PATH_MAX], buf[8192];
    struct stat st;
    off_t from;
    ssize_t got;
    int fd;

    if (a->nrest != 1)
        return usage_error("app logs needs one NAME");
    if (!rp_component_name_valid(a->rest[0], strlen(a->rest[0])))
        return usage_error("a component name is 1 to 32 of A-Z a-z 0-9 . _ - (no leading dot)");
    /* Through the monitor when it serves S: the logs are root's (APP_LOG). */
    {
        rp_agent_t agent;
        if (rp_agent_attach_records(&agent, a->state_dir) != RP_OK)
            return FAIL;
        if (agent.monitor[0] != '\0') {
            rp_err_t err = rp_report_app_log(&agent, a->rest[0], APP_LOG_TAIL, stdout);
            fflush(stdout);
            return err == RP_OK ? OK : FAIL; /* a refusal is said */
        }
    }
    /* The monitor's (S/apps/NAME/log: the app in its compartment) or, from an agent that ran it
     * itself, S/components/NAME/app.log: whichever was written last. */
    {
        char mon[PATH_MAX];
        struct stat ms, as;
        if (snprintf(path, sizeof(path), "%s/components/%s/app.log", a->state_dir, a->rest[0]) >=
                (int)sizeof(path) ||
            snprintf(mon, sizeof(mon), "%s/apps/%s/log", a->state_dir, a->rest[0]) >=
                (int)sizeof(mon))
            return usage_error("the state directory's path is too long");
        if (lstat(mon, &ms) == 0 &&
            (lstat(path, &as) != 0 || ms.st_mtim.tv_sec > as.st_mtim.tv_sec ||
             (ms.st_mtim.tv_sec == as.st_mtim.tv_sec && ms.st_mtim.tv_nsec >= as.st_mtim.tv_nsec)))
            memcpy(path, mon, sizeof(mon));
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        rp_log_error("%s: %s", path,
                     errno == ENOENT ? "no log: the app never ran on this device"
                                     : strerror(errno));
        return FAIL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rp_log_error("%s: not a regular file", path);
        close(fd);
        return FAIL;
    }
    from = st.st_size > APP_LOG_TAIL ? st.st_size - APP_LOG_TAIL : 0;
    if (from > 0)
        printf("[... %lld earlier bytes not shown]\n", (long long)from);
    fflush(stdout);
    if (lseek(fd, from, SEEK_SET) < 0) {
        close(fd);
        return FAIL;
    }
    /* Only what was there when it was opened: a chatty app cannot keep this going. */
    for (off_t left = st.st_size - from; left > 0; left -= got) {
        got = read(fd, buf, (size_t)left < sizeof(buf) ? (size_t)left : sizeof(buf));
        if (got <= 0 || fwrite(buf, 1, (size_t)got, stdout) != (size_t)got)
            break;
    }
    close(fd);
    return OK;
}

/* Ask the monitor serving state_dir about its apps (it alone knows: the apps are its processes);
 * a refusal, or no monitor, is said. */
static rp_err_t ask_apps_monitor(const char *state_dir, const rp_mon_request_t *q,
                                 rp_mon_reply_t *r)
{
    char sock[PATH_MAX];
    rp_err_t err;

    if (!rp_agent_monitor_serves(state_dir)) {
        rp_log_error("no rampart-monitor serves %s (nothing answers on %s/monitor.sock): the "
                     "monitor runs the apps; start it with `rampart-monitor --state-dir %s`",
                     state_dir, state_dir, state_dir);
        return RP_ERR_NOT_FOUND;
    }
    snprintf(sock, sizeof(sock), "%s/monitor.sock", state_dir);
    err = rp_mon_call(sock, q, -1, r);
    if (err != RP_OK) {
        rp_log_error("%s: the monitor did not answer: %s", sock, rp_strerror(err));
        return RP_ERR_IO;
    }
    if (r->status != RP_OK) {
        rp_log_error("the monitor refused: %s", r->message);
        return (rp_err_t)r->status;
    }
    return RP_OK;
}

/* app stop|start|restart NAME: an operator's word to the monitor; a stop is kept (across the
 * monitor's restarts and new versions) until a start. */
static int cmd_app_control(const struct args *a, rp_mon_app_action_t action)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_APP_CONTROL, .id = 1};

    if (a->nrest != 1)
        return usage_error("app stop, start and restart take one NAME");
    if (!rp_component_name_valid(a->rest[0], strlen(a->rest[0]))) {
        rp_log_error("%s: not a component name", a->rest[0]);
        return FAIL;
    }
    snprintf(q.u.app_control.component, sizeof(q.u.app_control.component), "%s", a->rest[0]);
    q.u.app_control.action = (uint8_t)action;
    if (ask_apps_monitor(a->state_dir, &q, &r) != RP_OK)
        return FAIL;
    printf("%s: %s\n", a->rest[0],
           action == RP_MON_APP_STOP    ? "stopped (until `app start`)"
           : action == RP_MON_APP_START ? "started"
                                        : "restarted");
    return OK;
}

/* app remove NAME: the monitor removes the app (its tree, storage, log, slots) if the device's
 * signed targets no longer name it or a development capability is in force. */
static int cmd_app_remove(const struct args *a)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_APP_REMOVE, .id = 1};

    if (a->nrest != 1)
        return usage_error("app remove takes one NAME");
    if (!rp_component_name_valid(a->rest[0], strlen(a->rest[0]))) {
        rp_log_error("%s: not a component name", a->rest[0]);
        return FAIL;
    }
    snprintf(q.u.app_remove.component, sizeof(q.u.app_remove.component), "%s", a->rest[0]);
    if (ask_apps_monitor(a->state_dir, &q, &r) != RP_OK)
        return FAIL;
    printf("%s: removed\n", a->rest[0]);
    return OK;
}

/* app list: what the monitor runs. A contract: docs/monitor.md ("Apps"). */
static int cmd_app_list(const struct args *a)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_APP_LIST, .id = 1};
    bool json = a->output != NULL && strcmp(a->output, "json") == 0;

    if (a->output != NULL && !json && strcmp(a->output, "text") != 0)
        return usage_error("--output must be text or json");
    if (a->nrest != 0)
        return usage_error("app list takes no NAME");
    if (ask_apps_monitor(a->state_dir, &q, &r) != RP_OK)
        return FAIL;
    if (json) {
        json_t *list = json_array();
        char *text;
        for (size_t i = 0; list != NULL && i < r.u.app_list.n; i++) {
            const rp_mon_app_t *p = &r.u.app_list.a[i];
            /* A limit not in force (its layer missing here, or no storage asked for) is null. */
#define LIMIT(v) ((v) > 0 ? json_integer(v) : json_null())
            json_array_append_new(
                list,
                json_pack("{s:s, s:s, s:s, s:I, s:o, s:{s:o, s:o, s:o, s:o}, s:s}", "component",
                          p->component, "version", p->version, "state",
                          rp_mon_app_state_name(p->state), "restarts", (json_int_t)p->restarts,
                          "pid", LIMIT(p->pid), "limits", "memory_kb", LIMIT(p->memory_kb), "pids",
                          LIMIT(p->pids), "cpu_percent", LIMIT(p->cpu_percent), "storage_kb",
                          LIMIT(p->storage_kb), "missing", p->missing));
#undef LIMIT
        }
        text = list != NULL ? json_dumps(list, JSON_INDENT(2)) : NULL;
        json_decref(list);
        if (text == NULL)
            return FAIL;
        puts(text);
        free(text);
        return OK;
    }
    if (r.u.app_list.n == 0)
        printf("no apps\n");
    for (size_t i = 0; i < r.u.app_list.n; i++) {
        const rp_mon_app_t *p = &r.u.app_list.a[i];
        printf("%s %s: %s, %u restart(s), pid %u; memory %u KiB, pids %u, cpu %u%%, storage %u "
               "KiB%s%s\n",
               p->component, p->version, rp_mon_app_state_name(p->state), (unsigned)p->restarts,
               (unsigned)p->pid, (unsigned)p->memory_kb, (unsigned)p->pids,
               (unsigned)p->cpu_percent, (unsigned)p->storage_kb,
               p->missing[0] ? "; not in force: " : "", p->missing);
    }
    return OK;
}

/* events: the security events the monitor recorded (device/monitor/events.h), oldest first:
 * through the monitor when it serves S (the agent's user cannot read S/events/), else the file. */
static int cmd_events(const struct args *a)
{
    static rp_event_t ev[RP_EVENTS_MAX];
    uint64_t dropped = 0, next;
    size_t n = 0;
    bool more;
    rp_agent_t agent;

    if (a->output != NULL && strcmp(a->output, "json") != 0 && strcmp(a->output, "text") != 0)
        return usage_error("--output must be text or json");
    if (rp_agent_attach_records(&agent, a->state_dir) != RP_OK ||
        rp_report_events(&agent, 0, ev, RP_EVENTS_MAX, &n, &next, &more, &dropped) != RP_OK) {
        rp_log_error("%s: cannot read the security events", a->state_dir);
        return FAIL;
    }
    if (a->output != NULL && strcmp(a->output, "json") == 0) {
        json_t *list = json_array(), *out;
        for (size_t i = 0; i < n; i++)
            json_array_append_new(list, rp_report_event_json(&ev[i]));
        out = json_pack("{s:o, s:I}", "events", list, "dropped", (json_int_t)dropped);
        json_dumpf(out, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(out);
        return OK;
    }
    for (size_t i = 0; i < n; i++)
        rp_report_event_print(&ev[i], stdout);
    if (dropped > 0)
        printf("(%llu older events dropped: the log keeps the newest %d)\n",
               (unsigned long long)dropped, RP_EVENTS_MAX);
    return OK;
}

/* crashes: the crashes the monitor kept, unwound here (crashes.h). */
static int cmd_crashes(const struct args *a)
{
    rp_agent_t agent;

    if (a->output != NULL && strcmp(a->output, "json") != 0 && strcmp(a->output, "text") != 0)
        return usage_error("--output must be text or json");
    if (rp_agent_attach_records(&agent, a->state_dir) != RP_OK) {
        rp_log_error("%s: cannot read the kept crashes", a->state_dir);
        return FAIL;
    }
    /* libdw reads what an app's author made (its ELF, its CFI): under the agent's own filter,
     * as in `run`, whenever the monitor serves S. */
    if (agent.monitor[0] != '\0' && rp_agent_confine() != RP_OK)
        return FAIL;
    return rp_crashes_list(&agent, a->output != NULL && strcmp(a->output, "json") == 0, stdout)
               ? FAIL
               : OK;
}

/* reports: what the report queue holds. */
static int cmd_reports(const struct args *a)
{
    rp_reportq_stat_t st;
    json_t *list = NULL, *r;
    uint64_t last;
    rp_agent_t agent;
    size_t i;

    if (a->output != NULL && strcmp(a->output, "json") != 0 && strcmp(a->output, "text") != 0)
        return usage_error("--output must be text or json");
    if (open_agent(a, &agent) != OK)
        return FAIL;
    if (rp_reportq_peek(&agent, RP_REPORTQ_MAX_REPORTS, SIZE_MAX, &list, &last) != RP_OK ||
        rp_reportq_stat(&agent, &st) != RP_OK) {
        rp_log_error("%s: cannot read the report queue", a->state_dir);
        json_decref(list);
        rp_agent_close(&agent);
        return FAIL;
    }
    rp_agent_close(&agent);
    if (a->output != NULL && strcmp(a->output, "json") == 0) {
        json_t *out =
            json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "reports", list, "bytes",
                      (json_int_t)st.bytes, "dropped", (json_int_t)st.dropped, "refused",
                      (json_int_t)st.refused, "next_seq", (json_int_t)st.next_seq, "retry_at",
                      (json_int_t)st.retry_at, "backoff", (json_int_t)st.backoff);
        json_dumpf(out, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(out);
        return OK;
    }
    json_array_foreach(list, i, r)
    {
        char when[32];
        time_t t = (time_t)json_integer_value(json_object_get(r, "at"));
        struct tm tm;
        const char *code = json_string_value(json_object_get(r, "code")),
                   *comp = json_string_value(json_object_get(r, "component"));
        if (gmtime_r(&t, &tm) == NULL ||
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
            snprintf(when, sizeof(when), "%lld", (long long)t);
        printf("%llu %s %-18s %-16s %-16s %s\n",
               (unsigned long long)json_integer_value(json_object_get(r, "seq")), when,
               json_string_value(json_object_get(r, "kind")),
               code != NULL && code[0] != '\0' ? code : "-",
               comp != NULL && comp[0] != '\0' ? comp : "-",
               json_string_value(json_object_get(r, "reason")) ?: "");
    }
    printf("%zu report(s) queued (%zu bytes); %llu dropped over the queue's life, %llu refused by "
           "the service\n",
           json_array_size(list), st.bytes, (unsigned long long)st.dropped,
           (unsigned long long)st.refused);
    if (st.retry_at > (int64_t)time(NULL))
        printf("next upload in %lld s at the earliest\n",
               (long long)(st.retry_at - (int64_t)time(NULL)));
    json_decref(list);
    return OK;
}

/* The service the device talks to: given, or the one it last attested with. */
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
        return usage_error("which service? --server URL --server-ca FILE (or attest first)");
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
static void remember_service(const struct args *a, const rp_agent_t *agent)
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

static int cmd_check_now(const struct args *a)
{
    char server[1024], ca[PATH_MAX];
    rp_update_summary_t sum;
    rp_agent_t agent;
    int rc;

    if (open_agent(a, &agent) != OK)
        return FAIL;
    rc = service_of(a, &agent, server, sizeof(server), ca, sizeof(ca));
    if (rc != OK) {
        rp_agent_close(&agent);
        return rc;
    }
    /* Under the monitor, its own allow-list as in `run`: the check parses the network's answers,
     * and the upload unwinds crashes with libdw, reading what an app's author made. */
    if (!direct(&agent) && rp_agent_confine() != RP_OK) {
        rp_agent_close(&agent);
        return FAIL;
    }
    memset(&sum, 0, sizeof(sum));
    rc = rp_daemon_update_check(&agent, server, ca, a->health_seconds, &sum) ? OK : FAIL;
    /* what runs now, and the events since the last report */
    rp_daemon_status_report(&agent, server, ca);
    rp_daemon_reports_upload(&agent, server, ca);
    rp_agent_close(&agent);
    if (rc != OK && sum.installed + sum.unchanged + sum.refused + sum.rolled_back + sum.failed == 0)
        return FAIL; /* the check itself stopped: said so */
    printf("update check: %d installed, %d up to date, %d refused, %d rolled back, %d failed\n",
           sum.installed, sum.unchanged, sum.refused, sum.rolled_back, sum.failed);
    return rc;
}

static int cmd_report(const struct args *a)
{
    char server[1024], ca[PATH_MAX];
    rp_reportq_upload_t up;
    rp_agent_t agent;
    rp_err_t err;
    int rc;

    if (open_agent(a, &agent) != OK)
        return FAIL;
    rc = service_of(a, &agent, server, sizeof(server), ca, sizeof(ca));
    if (rc != OK) {
        rp_agent_close(&agent);
        return rc;
    }
    if (!direct(&agent) && rp_agent_confine() != RP_OK) { /* as in check-now */
        rp_agent_close(&agent);
        return FAIL;
    }
    rp_crashes_report_new(&agent);
    rp_report_events_new(&agent);
    err = rp_reportq_upload(&agent, server, ca, &up);
    rp_agent_close(&agent);
    printf("reports: %zu sent in %zu batch(es) (%zu stored, %zu known already, %zu refused), "
           "%zu dropped, %zu left\n",
           up.sent, up.batches, up.stored, up.duplicates, up.refused, up.dropped, up.left);
    if (err != RP_OK) {
        if (up.waiting)
            printf("reports: not sent: %s\n", up.detail);
        else
            printf("reports: stopped: %s%s\n", up.detail,
                   up.retry_at > (int64_t)time(NULL) ? "; the next upload waits" : "");
        if (up.retry_at > (int64_t)time(NULL))
            printf("reports: next upload in %lld s at the earliest\n",
                   (long long)(up.retry_at - (int64_t)time(NULL)));
        return FAIL;
    }
    return OK;
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
        return usage_error("a command is needed");
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
    if (strcmp(cmd, "peer") == 0 || strcmp(cmd, "capability") == 0 || strcmp(cmd, "app") == 0) {
        if (argc < 3)
            return usage_error(strcmp(cmd, "peer") == 0         ? "peer serve or peer connect"
                               : strcmp(cmd, "capability") == 0 ? "capability apply, remove or show"
                                                                : "app logs NAME");
        verb = argv[2];
        optind = 3;
    }
    while ((c = getopt_long(argc, argv, "s:r:t:S:C:n:o:R:l:p:k:c:H:O:U:I:W:vhV", opts, NULL)) !=
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
        case 'H':
            a.health_seconds = (int)strtol(optarg, NULL, 10);
            if (a.health_seconds < 1 || a.health_seconds > 3600)
                return usage_error("--health-seconds is 1 to 3600");
            break;
        case 'O': a.output = optarg; break;
        case 'U': a.update_root = optarg; break;
        case 'I':
            a.update_interval = strtol(optarg, NULL, 10);
            if (a.update_interval < 1 || a.update_interval > 7 * 24 * 3600)
                return usage_error("--update-interval is 1 to 604800 seconds");
            break;
        case 'W': a.update_window = optarg; break;
        case 'v': rp_log_set_level(RP_LOG_DEBUG); break;
        case 'h': fputs(usage, stdout); return OK;
        default: return usage_error("bad option");
        }
    }
    a.rest = argv + optind;
    a.nrest = argc - optind;
    if (a.nrest != 0 && strcmp(cmd, "install") != 0 && strcmp(cmd, "capability") != 0 &&
        strcmp(cmd, "app") != 0)
        return usage_error("unexpected argument");
    if (a.state_dir == NULL)
        return usage_error("--state-dir is required");
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
        return usage_error(
            "app install IMAGE | app logs NAME | app list | app stop|start|restart|remove NAME");
    if (strcmp(cmd, "events") == 0)
        return cmd_events(&a);
    if (strcmp(cmd, "crashes") == 0)
        return cmd_crashes(&a);
    if (strcmp(cmd, "report") == 0)
        return cmd_report(&a);
    if (strcmp(cmd, "reports") == 0)
        return cmd_reports(&a);
    return usage_error("unknown command");
}
