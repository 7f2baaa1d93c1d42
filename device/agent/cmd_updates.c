/*
 * rampart-agent's commands that change what the device runs (commands.h): install, app install,
 * recover, check-now (one update check: the daemon's step, daemon.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "capability.h"
#include "commands.h"
#include "confine.h"
#include "daemon.h"
#include "mcu.h"
#include "slots.h"
#include "supervise.h"
#include "update.h"
#include "rampart/apptree.h"
#include "rampart/component.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/image.h"
#include "rampart/log.h"
#include "rampart/manifest.h"

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

/* The one local install (install, app install): the gate, the slots' lock, recovery, then the
 * install itself (through the monitor when one serves S). */
static int install_image(const struct args *a, const char *component, const char *image)
{
    rp_install_result_t res;
    rp_agent_t agent;
    rp_install_opts_t opts = {
        .health_seconds = a->health_seconds, .trial = rp_supervise_trial, .trial_ctx = &agent};
    rp_err_t err;
    int lock;

    if (cmd_open_agent(a, &agent) != OK)
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

int cmd_install(const struct args *a)
{
    if (a->component == NULL || a->nrest != 1)
        return cmd_usage("install needs --component NAME and one IMAGE");
    if (!rp_component_name_valid(a->component, strlen(a->component)))
        return cmd_usage("a component name is 1 to 32 of A-Z a-z 0-9 . _ - (no leading dot)");
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
int cmd_app_install(const struct args *a)
{
    char component[RP_COMPONENT_NAME_MAX + 1], why[512] = "";

    if (a->nrest != 1)
        return cmd_usage("app install needs one IMAGE");
    if (a->component != NULL && !rp_component_name_valid(a->component, strlen(a->component)))
        return cmd_usage("a component name is 1 to 32 of A-Z a-z 0-9 . _ - (no leading dot)");
    if (app_image_component(a->rest[0], a->component, component, why, sizeof(why)) != RP_OK) {
        rp_log_error("%s: refused: %s", a->rest[0], why);
        return FAIL;
    }
    return install_image(a, component, a->rest[0]);
}

int cmd_recover(const struct args *a)
{
    rp_agent_t agent;
    int unbootable = 0, lock;
    rp_err_t err;

    if (cmd_open_agent(a, &agent) != OK)
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

int cmd_check_now(const struct args *a)
{
    char server[1024], ca[PATH_MAX];
    rp_update_summary_t sum;
    rp_agent_t agent;
    int rc;

    /* Under the monitor, its own allow-list as in `run`: the check parses the network's answers,
     * and the upload unwinds crashes with libdw, reading what an app's author made. */
    rc = cmd_open_online(a, &agent, server, sizeof(server), ca, sizeof(ca));
    if (rc != OK)
        return rc;
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

/* mcu attach: component NAME is firmware for the MCU the relay reaches (mcu.h), the board's
 * attestation key pinned; root's file, as image keys are, which the installer reads at each
 * install (this agent in single-process mode; the agent's relay runner and the monitor, which
 * checks the board's evidence with the key, under rampart-monitor: docs/mcu.md). */
int cmd_mcu_attach(const struct args *a)
{
    uint8_t key[RP_PUBKEY_DER_MAX];
    size_t klen = a->attestation_key != NULL ? strlen(a->attestation_key) : 0;
    rp_err_t err;

    if (a->component == NULL || a->nrest < 1)
        return cmd_usage("mcu attach needs --component NAME [--attestation-key SPKI-HEX] -- "
                         "/ABSOLUTE/RELAY [ARG...]");
    if (!rp_component_name_valid(a->component, strlen(a->component)))
        return cmd_usage("a component name is 1 to 32 of A-Z a-z 0-9 . _ - (no leading dot)");
    if (a->rest[0][0] != '/' || a->nrest > RP_MCU_RELAY_ARGS_MAX)
        return cmd_usage("the relay is an absolute path, with at most 15 arguments");
    if (a->attestation_key != NULL &&
        (klen == 0 || klen % 2 != 0 || klen / 2 > sizeof(key) ||
         rp_hex_decode(a->attestation_key, klen, key, klen / 2) != RP_OK))
        return cmd_usage("--attestation-key is the board's key in hex (DER SubjectPublicKeyInfo, "
                         "as its boot stage prints it: \"boot: attestation key HEX\")");
    if (geteuid() != 0) {
        rp_log_error("mcu attach runs as root: the installer runs the relay");
        return FAIL;
    }
    err = rp_mcu_relay_save(a->state_dir, a->component, a->rest, a->nrest,
                            a->attestation_key != NULL ? key : NULL, klen / 2);
    if (err != RP_OK) {
        rp_log_error("%s: cannot attach %s to the MCU: %s", a->state_dir, a->component,
                     err == RP_ERR_BAD_KEY ? "--attestation-key is not a P-256 public key (DER "
                                             "SubjectPublicKeyInfo)"
                                           : rp_strerror(err));
        return FAIL;
    }
    if (a->attestation_key == NULL)
        rp_log_warn("%s: no --attestation-key: under rampart-monitor no install of it is "
                    "confirmed (the board's evidence cannot be checked)",
                    a->component);
    printf("%s: firmware for the MCU the relay reaches:", a->component);
    for (int i = 0; i < a->nrest; i++)
        printf(" %s", a->rest[i]);
    printf("\n");
    return OK;
}
