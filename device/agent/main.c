/*
 * rampart-agent: the device's side of attestation. It provisions the device identity in the root
 * of trust, makes evidence, attests with the security service and keeps a current certificate,
 * once or as a daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "agent.h"
#include "slots.h"
#include "tls.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"

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
    "      Attest now, then again well before the certificate expires (at two thirds of its\n"
    "      life, at most every 24 hours), retrying failures with backoff and jitter.\n"
    "\n"
    "\n"
    "Updates (each component has two slots, A and B; see docs/updates.md):\n"
    "  trust --state-dir S --image-key PUB.pem\n"
    "      Trust images signed with this key (also: provision --image-key PUB.pem).\n"
    "  install --state-dir S --component NAME [--health-seconds N] IMAGE\n"
    "      Verify IMAGE, write it to the inactive slot, try it, and confirm it when healthy (an\n"
    "      app must stay up N seconds, default 3, or write \"ready\" to $RAMPART_READY_FD);\n"
    "      otherwise roll back. Refused: untrusted signer, older version, lower security\n"
    "      counter. Exit 0 when installed (or running already), 1 otherwise.\n"
    "  recover --state-dir S\n"
    "      What runs at start: roll back an update cut before it was confirmed, fall back to the\n"
    "      other slot if the active one does not verify. Exit 1 if a component has no\n"
    "      verified image.\n"
    "  status --state-dir S [--output json]\n"
    "      Components: version, active slot, security counter, last update result.\n"
    "\n"
    "  --tcti TCTI     the TPM to use (tpm2; default: the one given at provisioning)\n"
    "  --verbose       debug logging\n"
    "\n"
    "Exit status: 0 success, 1 failure or refusal, 2 usage error.\n";

struct args {
    const char *state_dir, *rot, *tcti, *server, *server_ca, *nonce, *out;
    const char *listen, *peer, *image_key, *component, *output;
    long renew_after;
    int health_seconds;
    char **rest; /* positional arguments */
    int nrest;
};

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "rampart-agent: %s\nTry 'rampart-agent --help'.\n", msg);
    return USAGE;
}

static int open_agent(const struct args *a, rp_agent_t *agent)
{
    rp_err_t err = rp_agent_open(agent, a->state_dir, a->tcti);

    if (err != RP_OK) {
        rp_log_error("%s: cannot open the device identity: %s", a->state_dir, rp_strerror(err));
        return FAIL;
    }
    return OK;
}

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
    cfg.state_dir = a->state_dir;
    cfg.tcti = a->tcti;
    err = rp_rot_provision(&cfg, &created);
    if (err == RP_OK && a->tcti != NULL && cfg.kind == RP_ROT_TPM2)
        err = rp_agent_save_tcti(a->state_dir, a->tcti);
    if (err != RP_OK) {
        rp_log_error("cannot provision %s: %s", a->state_dir, rp_strerror(err));
        return FAIL;
    }
    if (open_agent(a, &agent) != OK)
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

    if (open_agent(a, &agent) != OK)
        return FAIL;
    printf("device id: %s\nroot of trust: %s\n", agent.device_id,
           rp_rot_kind_name(rp_rot_kind(agent.rot)));
    key = rp_rot_pkey(agent.rot);
    if (key != NULL && PEM_write_PUBKEY(stdout, key) == 1)
        rc = OK;
    rp_agent_close(&agent);
    return rc;
}

static int cmd_evidence(const struct args *a)
{
    uint8_t nonce[RP_EAT_NONCE_MAX], token[RP_EAT_MAX_SIZE];
    size_t n, len;
    rp_atomic_file_t f;
    rp_agent_t agent;
    rp_err_t err;

    if (a->nonce == NULL || a->out == NULL)
        return usage_error("evidence needs --nonce HEX and --out FILE");
    n = strlen(a->nonce);
    if (n % 2 != 0 || n / 2 < RP_EAT_NONCE_MIN || n / 2 > RP_EAT_NONCE_MAX ||
        rp_hex_decode(a->nonce, n, nonce, n / 2) != RP_OK)
        return usage_error("--nonce must be 16 to 128 hex digits");
    if (open_agent(a, &agent) != OK)
        return FAIL;
    err = rp_agent_evidence(&agent, nonce, n / 2, token, sizeof(token), &len);
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
    printf("%s: %zu bytes of evidence for device %s\n", a->out, len, agent.device_id);
    return OK;
}

static int attest_once(rp_agent_t *agent, const struct args *a, rp_agent_result_t *res)
{
    char when[32];
    time_t t;
    rp_err_t err = rp_agent_attest(agent, a->server, a->server_ca, res);

    if (err != RP_OK) {
        rp_log_error("attestation failed: %s", res->reason[0] ? res->reason : rp_strerror(err));
        return FAIL;
    }
    if (!res->passed) {
        rp_log_error("attestation refused (HTTP %ld): %s", res->http_status, res->reason);
        return FAIL;
    }
    t = (time_t)res->not_after;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    printf("attested: device %s, certificate %s valid until %s (%s/device.crt)\n", agent->device_id,
           res->serial, when, a->state_dir);
    fflush(stdout);
    return OK;
}

static int cmd_attest(const struct args *a)
{
    rp_agent_result_t res;
    rp_agent_t agent;
    int rc;

    if (a->server == NULL || a->server_ca == NULL)
        return usage_error("attest needs --server URL and --server-ca FILE");
    if (open_agent(a, &agent) != OK)
        return FAIL;
    rc = attest_once(&agent, a, &res);
    rp_agent_close(&agent);
    return rc;
}

/* Uniform in [lo, hi): spreads a fleet's requests so they do not arrive together. */
static long jitter(long lo, long hi)
{
    uint32_t r;

    if (hi <= lo || RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return lo;
    return lo + (long)(r % (uint32_t)(hi - lo));
}

static void sleep_until_stopped(long seconds)
{
    for (long s = 0; s < seconds && !stopping; s++)
        sleep(1);
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

static int cmd_run(const struct args *a)
{
    struct sigaction sa = {0};
    long backoff = 5, wait;
    rp_agent_result_t res;
    rp_agent_t agent;

    if (a->server == NULL || a->server_ca == NULL)
        return usage_error("run needs --server URL and --server-ca FILE");
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (open_agent(a, &agent) != OK)
        return FAIL;
    rp_log_info("running for device %s", agent.device_id);
    /* First put right whatever a cut left: the evidence then measures what really runs. */
    {
        int unbootable = 0;
        rp_err_t err = rp_components_recover(&agent, &unbootable);
        if (err != RP_OK || unbootable > 0)
            rp_log_error("recovery: %s; %d component(s) without a verified image", rp_strerror(err),
                         unbootable);
    }
    while (!stopping) {
        if (attest_once(&agent, a, &res) == OK) {
            long life = (long)(res.not_after - (int64_t)time(NULL));
            /* Renew at two thirds of the certificate's life (at most a day), give or take 10%. */
            wait = a->renew_after > 0 ? a->renew_after : life * 2 / 3;
            if (wait > 24 * 3600)
                wait = 24 * 3600;
            if (wait < 1)
                wait = 1;
            wait = jitter(wait - wait / 10, wait + 1);
            backoff = 5;
        } else {
            /* Exponential backoff with full jitter, capped at an hour. */
            wait = jitter(1, backoff + 1);
            backoff = backoff < 1800 ? backoff * 2 : 3600;
        }
        rp_log_info("next attestation in %ld s", wait);
        sleep_until_stopped(wait);
    }
    rp_agent_close(&agent);
    rp_log_info("stopped");
    return OK;
}

static int cmd_trust(const struct args *a)
{
    rp_err_t err;

    if (a->image_key == NULL)
        return usage_error("trust needs --image-key PUB.pem");
    err = rp_trust_image_key(a->state_dir, a->image_key);
    if (err != RP_OK) {
        rp_log_error("%s: cannot trust this image key: %s", a->image_key, rp_strerror(err));
        return FAIL;
    }
    printf("trusting images signed with %s\n", a->image_key);
    return OK;
}

static int cmd_install(const struct args *a)
{
    rp_install_opts_t opts = {a->health_seconds};
    rp_install_result_t res;
    rp_agent_t agent;
    rp_err_t err;

    if (a->component == NULL || a->nrest != 1)
        return usage_error("install needs --component NAME and one IMAGE");
    if (!rp_component_name_ok(a->component))
        return usage_error("a component name is 1 to 32 of A-Z a-z 0-9 . _ - (no leading dot)");
    if (open_agent(a, &agent) != OK)
        return FAIL;
    err = rp_components_recover(&agent, NULL);
    if (err == RP_OK)
        err = rp_install(&agent, a->component, a->rest[0], &opts, &res);
    rp_agent_close(&agent);
    if (err != RP_OK) {
        rp_log_error("%s: install failed: %s", a->component, rp_strerror(err));
        return FAIL;
    }
    printf("%s: %s: %s\n", a->component, res.state, res.detail);
    return strcmp(res.state, "installed") == 0 || strcmp(res.state, "unchanged") == 0 ? OK : FAIL;
}

static int cmd_recover(const struct args *a)
{
    rp_agent_t agent;
    int unbootable = 0;
    rp_err_t err;

    if (open_agent(a, &agent) != OK)
        return FAIL;
    err = rp_components_recover(&agent, &unbootable);
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
    err = rp_component_names(a->state_dir, names, RP_COMPONENTS_MAX, &n);
    for (size_t i = 0; err == RP_OK && i < n; i++) {
        rp_component_t c;
        rp_slot_image_t img = {0};
        uint32_t counter = 0;
        err = rp_component_load(a->state_dir, names[i], &c);
        if (err == RP_OK)
            err = rp_rot_seccnt_read(agent.rot, c.seccnt_index, &counter);
        if (err == RP_OK && c.active >= 0 &&
            rp_slot_path(a->state_dir, c.name, c.active, path, sizeof(path)) == RP_OK)
            err = rp_slot_check(&agent, &c, path, &img);
        if (err != RP_OK)
            break;
        json_array_append_new(
            list,
            json_pack("{s:s, s:o, s:o, s:b, s:o, s:I, s:{s:s, s:s, s:s, s:I}}", "name", c.name,
                      "version", img.valid ? json_string(img.version) : json_null(), "active_slot",
                      c.active >= 0 ? json_sprintf("%c", "ab"[c.active]) : json_null(), "verified",
                      img.valid, "trial_slot",
                      c.trial >= 0 ? json_sprintf("%c", "ab"[c.trial]) : json_null(),
                      "security_counter", (json_int_t)counter, "last_update", "result",
                      c.last_result, "version", c.last_version, "detail", c.last_detail, "at",
                      (json_int_t)c.last_at));
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
    printf("%-16s %-14s %-5s %-8s %s\n", "COMPONENT", "VERSION", "SLOT", "COUNTER", "LAST UPDATE");
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *c = json_array_get(list, i), *l = json_object_get(c, "last_update");
        const char *v = json_string_value(json_object_get(c, "version"));
        const char *slot = json_string_value(json_object_get(c, "active_slot"));
        printf("%-16s %-14s %-5s %-8lld %s %s%s%s\n", json_string_value(json_object_get(c, "name")),
               v != NULL ? v : "(none)", slot != NULL ? slot : "-",
               (long long)json_integer_value(json_object_get(c, "security_counter")),
               json_string_value(json_object_get(l, "result")),
               json_string_value(json_object_get(l, "version")),
               *json_string_value(json_object_get(l, "detail")) ? ": " : "",
               json_string_value(json_object_get(l, "detail")));
    }
    json_decref(list);
    return OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir",      required_argument, NULL, 's'},
        {"rot",            required_argument, NULL, 'r'},
        {"tcti",           required_argument, NULL, 't'},
        {"server",         required_argument, NULL, 'S'},
        {"server-ca",      required_argument, NULL, 'C'},
        {"nonce",          required_argument, NULL, 'n'},
        {"out",            required_argument, NULL, 'o'},
        {"renew-after",    required_argument, NULL, 'R'},
        {"listen",         required_argument, NULL, 'l'},
        {"peer",           required_argument, NULL, 'p'},
        {"image-key",      required_argument, NULL, 'k'},
        {"component",      required_argument, NULL, 'c'},
        {"health-seconds", required_argument, NULL, 'H'},
        {"output",         required_argument, NULL, 'O'},
        {"verbose",        no_argument,       NULL, 'v'},
        {"help",           no_argument,       NULL, 'h'},
        {"version",        no_argument,       NULL, 'V'},
        {NULL,             0,                 NULL, 0  },
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
    if (strcmp(argv[1], "--version") == 0) {
        printf("rampart-agent %s\n", RP_VERSION);
        return OK;
    }
    cmd = argv[1];
    optind = 2;
    if (strcmp(cmd, "peer") == 0) {
        if (argc < 3)
            return usage_error("peer serve or peer connect");
        verb = argv[2];
        optind = 3;
    }
    while ((c = getopt_long(argc, argv, "s:r:t:S:C:n:o:R:l:p:k:c:H:O:vhV", opts, NULL)) != -1) {
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
        case 'v': rp_log_set_level(RP_LOG_DEBUG); break;
        case 'h': fputs(usage, stdout); return OK;
        default: return usage_error("bad option");
        }
    }
    a.rest = argv + optind;
    a.nrest = argc - optind;
    if (a.nrest != 0 && strcmp(cmd, "install") != 0)
        return usage_error("unexpected argument");
    if (a.state_dir == NULL)
        return usage_error("--state-dir is required");
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
    return usage_error("unknown command");
}
