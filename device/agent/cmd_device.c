/*
 * rampart-agent's commands about the device's identity (commands.h): provision, id, evidence,
 * attest (one attestation: the daemon's step, daemon.c), trust (the update root), peer (mutual
 * TLS between devices), capability (development mode).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "agent.h"
#include "capability.h"
#include "commands.h"
#include "daemon.h"
#include "proto.h"
#include "tls.h"
#include "update.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"

int cmd_provision(const struct args *a)
{
    rp_rot_config_t cfg = {0};
    rp_agent_t agent;
    bool created;
    rp_err_t err;

    if (a->rot == NULL)
        return cmd_usage("provision needs --rot soft|tpm2");
    if (rp_rot_kind_parse(a->rot, &cfg.kind) != RP_OK)
        return cmd_usage("--rot must be soft or tpm2");
    /* Once a monitor serves S, the identity is made: it is kept, and said. */
    if (rp_agent_monitor_serves(a->state_dir)) {
        if (cmd_open_identity(a, &agent) != OK)
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
    if (cmd_open_identity(a, &agent) != OK)
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

int cmd_id(const struct args *a)
{
    rp_agent_t agent;
    EVP_PKEY *key;
    int rc = FAIL;

    if (cmd_open_identity(a, &agent) != OK)
        return FAIL;
    printf("device id: %s\nroot of trust: %s\n", agent.device_id, rp_rot_kind_name(agent.kind));
    key = rp_agent_pubkey(&agent);
    if (key != NULL && PEM_write_PUBKEY(stdout, key) == 1)
        rc = OK;
    rp_agent_close(&agent);
    return rc;
}

int cmd_evidence(const struct args *a)
{
    uint8_t nonce[RP_EAT_NONCE_MAX], token[RP_EAT_MAX_SIZE];
    char device_id[RP_DEVICE_ID_SIZE] = "";
    size_t n, len;
    rp_atomic_file_t f;
    rp_agent_t agent;
    rp_err_t err;
    bool by_monitor;

    if (a->nonce == NULL || a->out == NULL)
        return cmd_usage("evidence needs --nonce HEX and --out FILE");
    n = strlen(a->nonce);
    if (n % 2 != 0 || n / 2 < RP_EAT_NONCE_MIN || n / 2 > RP_EAT_NONCE_MAX ||
        rp_hex_decode(a->nonce, n, nonce, n / 2) != RP_OK)
        return cmd_usage("--nonce must be 16 to 128 hex digits");
    if (cmd_open_identity(a, &agent) != OK)
        return FAIL;
    err = rp_agent_ask_evidence(&agent, nonce, n / 2, token, sizeof(token), &len);
    snprintf(device_id, sizeof(device_id), "%s", agent.device_id);
    by_monitor = !cmd_direct(&agent);
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

int cmd_attest(const struct args *a)
{
    rp_agent_result_t res;
    rp_agent_t agent;
    int rc;

    if (a->server == NULL || a->server_ca == NULL)
        return cmd_usage("attest needs --server URL and --server-ca FILE");
    if (cmd_open_agent(a, &agent) != OK)
        return FAIL;
    cmd_remember_service(a, &agent);
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

int cmd_peer(const struct args *a, const char *verb)
{
    char host[256] = "127.0.0.1";
    int port = 0;
    rp_agent_t agent;
    rp_err_t err;

    if (strcmp(verb, "serve") == 0) {
        if (a->listen != NULL && !host_port(a->listen, host, sizeof(host), &port))
            return cmd_usage("--listen wants HOST:PORT");
    } else if (strcmp(verb, "connect") == 0) {
        if (!host_port(a->peer, host, sizeof(host), &port))
            return cmd_usage("peer connect needs --peer HOST:PORT");
    } else {
        return cmd_usage("peer serve or peer connect");
    }
    if (cmd_open_agent(a, &agent) != OK)
        return FAIL;
    err = strcmp(verb, "serve") == 0 ? rp_agent_peer_serve(&agent, host, port)
                                     : rp_agent_peer_connect(&agent, host, port);
    rp_agent_close(&agent);
    return err == RP_OK ? OK : FAIL;
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

int cmd_trust(const struct args *a)
{
    rp_agent_t agent;
    rp_err_t err;
    int rc;

    if (a->update_root == NULL && a->image_key == NULL)
        return cmd_usage("trust needs --update-root FILE or --image-key PUB.pem");
    if (rp_agent_monitor_serves(a->state_dir)) {
        if (a->update_root == NULL && geteuid() == 0)
            goto image_key; /* root's files: the monitor reads them at each install */
        if (a->update_root == NULL) {
            rp_log_error("image keys are given by root (trust --image-key, as root), or come with "
                         "an update root (trust --update-root)");
            return FAIL;
        }
        if (cmd_open_identity(a, &agent) != OK)
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

int cmd_capability(const struct args *a, const char *verb)
{
    rp_md_capability_t cap;
    rp_agent_t agent;
    char detail[300] = "";
    bool have = false;
    rp_err_t err;
    int rc = OK;

    if (strcmp(verb, "remove") == 0) {
        if (a->nrest != 0)
            return cmd_usage("capability remove takes no argument");
        if (rp_capability_remove(a->state_dir) != RP_OK) {
            rp_log_error("%s: cannot remove the capability", a->state_dir);
            return FAIL;
        }
        printf("no capability\n");
        return OK;
    }
    if (strcmp(verb, "apply") != 0 && strcmp(verb, "show") != 0)
        return cmd_usage("capability apply FILE, remove or show");
    if ((strcmp(verb, "apply") == 0) != (a->nrest == 1) || a->nrest > 1)
        return cmd_usage("capability apply takes one FILE; show takes none");
    if (cmd_open_identity(a, &agent) != OK)
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
