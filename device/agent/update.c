/* Signed updates, the device's side (see update.h and docs/updates.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "rampart/base64.h"
#include "rampart/delta.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/http_client.h"
#include "rampart/image.h"
#include "rampart/log.h"
#include "mcu_runner.h"
#include "update.h"
#include "mcu.h"
#include "reportq.h"

#define UPDATE_DIR "update" /* in S/agent */
#define TARGETS_NAME "targets.json"
#define TARGETS_FILE UPDATE_DIR "/" TARGETS_NAME
#define DOWNLOADS "downloads" /* in UPDATE_DIR: ID (an image), ID.delta */
#define DOWNLOADS_DIR UPDATE_DIR "/" DOWNLOADS
#define DELTA_SUFFIX ".delta"

/* ---- talking to the service ---- */

struct client {
    rp_agent_t *a;
    const char *server, *ca;
    char cert[PATH_MAX + 64];
};

/* The device's certificate and key on curl's TLS context: the key stays in the root of trust
 * (through the monitor: TLS 1.3, each CertificateVerify signed by it). */
static int client_cert(SSL_CTX *ctx, void *arg)
{
    struct client *c = arg;

    return rp_agent_ssl_ctx_use(c->a, ctx, c->cert);
}

static rp_err_t get(struct client *c, const char *path, rp_http_response_t *r, char *detail,
                    size_t cap)
{
    char url[2048];
    rp_http_opts_t h = {c->ca, NULL, NULL, 60, client_cert, c, NULL, NULL, RP_HTTP_BUSY_WAIT};

    snprintf(url, sizeof(url), "%s%s", c->server, path);
    if (rp_http_request("GET", url, &h, NULL, 0, r) != RP_OK) {
        snprintf(detail, cap, "%s: %s", c->server, r->error);
        return RP_ERR_IO;
    }
    if (r->status != 200) {
        snprintf(detail, cap, "%s%s: HTTP %ld: %.200s", c->server, path, r->status, r->body);
        rp_http_response_free(r);
        return RP_ERR_IO;
    }
    return RP_OK;
}

static void report(struct client *c, const char *deployment, rp_update_state_t state,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Tell the service how an update went (best effort: the device's own record is in its state). */
static void report(struct client *c, const char *deployment, rp_update_state_t state,
                   const char *fmt, ...)
{
    char url[2048], detail[256], *text;
    rp_http_opts_t h = {c->ca, NULL, "application/json", 30, client_cert, c,
                        NULL,  NULL, RP_HTTP_BUSY_WAIT};
    rp_http_response_t r;
    json_t *body;
    va_list ap;

    if (deployment[0] == '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    body = json_pack("{s:s, s:s, s:s}", "deployment", deployment, "state",
                     rp_update_state_name(rp_update_state_to_report(state)), "detail", detail);
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    snprintf(url, sizeof(url), "%s/api/v1/device/updates", c->server);
    if (text != NULL && rp_http_request("POST", url, &h, text, strlen(text), &r) == RP_OK) {
        if (r.status != 200)
            rp_log_warn("the service did not take the report (HTTP %ld)", r.status);
        rp_http_response_free(&r);
    } else {
        rp_log_warn("cannot report to the service: %s", text != NULL ? r.error : "no memory");
    }
    free(text);
}

/* ---- the check ---- */

static rp_err_t refuse(rp_update_summary_t *s, rp_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rp_err_t refuse(rp_update_summary_t *s, rp_err_t err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
    rp_log_error("update refused: %s", s->detail);
    return err;
}

/* Keep the next root: through the monitor, which owns the trust anchor and checks it again
 * (TRUST_ROOT, the document as a descriptor); otherwise here. */
static rp_err_t keep_next_root(rp_agent_t *a, const char *env, size_t len, rp_update_summary_t *s)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_TRUST_ROOT};
    rp_md_signed_t *doc = calloc(1, sizeof(*doc));
    char detail[256] = "cannot hand it over";
    uint64_t version;
    rp_err_t err =
        doc != NULL ? rp_md_unpack(env, len, doc, detail, sizeof(detail)) : RP_ERR_NO_MEMORY;
    int fd;

    if (err == RP_OK && a->rot != NULL) /* single-process mode: kept here, with the same check */
        err = rp_update_take_root(a->state_dir, doc, false, rp_md_parse, NULL, &version, detail,
                                  sizeof(detail));
    else if (err == RP_OK && (err = rp_update_signed_fd(doc, &fd)) == RP_OK) {
        err = rp_agent_monitor_call(a, &q, fd, &r);
        close(fd);
        if (err != RP_OK)
            snprintf(detail, sizeof(detail), "the monitor did not take the next root (see above)");
    }
    rp_md_signed_free(doc);
    free(doc);
    return err == RP_OK ? RP_OK : refuse(s, err, "%s", detail);
}

rp_err_t rp_update_trust_root(const char *state_dir, const char *path)
{
    rp_md_signed_t *doc = calloc(1, sizeof(*doc));
    uint8_t *data = NULL;
    char detail[256];
    uint64_t version;
    size_t len;
    rp_err_t err = doc != NULL ? rp_read_file(path, RP_MD_MAX, &data, &len) : RP_ERR_NO_MEMORY;

    if (err == RP_OK &&
        (err = rp_md_unpack((const char *)data, len, doc, detail, sizeof(detail))) == RP_OK)
        err = rp_update_take_root(state_dir, doc, true, rp_md_parse, NULL, &version, detail,
                                  sizeof(detail));
    if (err != RP_OK && data != NULL)
        rp_log_error("%s: %s", path, detail);
    rp_md_signed_free(doc);
    free(doc);
    free(data);
    return err;
}

/* The agent's own copy of the targets (S/agent/update/targets.json): the JSON envelope as the
 * service signed it, checked again with the kept root (rp_md_targets_accept). */
static rp_err_t agent_kept_targets(const char *path, const char *device_id,
                                   const rp_md_root_t *root, bool expired_ok, rp_md_targets_t *out,
                                   char *detail, size_t cap)
{
    rp_md_targets_trust_t trust = {root, device_id, 0, (int64_t)time(NULL), expired_ok};
    char *env = NULL;
    size_t len;
    rp_err_t err = rp_update_load_kept(path, false, &env, &len);

    if (err == RP_OK)
        err = rp_md_targets_accept(env, len, &trust, out, detail, cap);
    else
        snprintf(detail, cap, "%s", err == RP_ERR_NOT_FOUND ? "none kept" : rp_strerror(err));
    free(env);
    return err;
}

static rp_err_t agent_keep_targets(const char *path, const rp_md_signed_t *doc, const uint8_t *bin,
                                   size_t n)
{
    char *env = NULL;
    rp_err_t err = rp_md_pack(doc, &env);

    (void)bin;
    (void)n;
    if (err == RP_OK)
        err = rp_write_file_atomic(path, env, strlen(env), 0600, 0);
    free(env);
    return err;
}

static const rp_update_copy_t agent_copy = {agent_kept_targets, agent_keep_targets, rp_md_parse,
                                            NULL};

static rp_err_t unpack_here(void *ctx, const char *env, size_t len, rp_md_signed_t *s, char *detail,
                            size_t cap)
{
    (void)ctx;
    return rp_md_unpack(env, len, s, detail, cap);
}

const rp_update_migration_t rp_update_migrate_here = {unpack_here, NULL, rp_md_parse, NULL};

rp_err_t rp_update_signed_fd(const rp_md_signed_t *doc, int *fd)
{
    uint8_t *bin = NULL;
    size_t len;
    rp_err_t err = rp_md_signed_encode(doc, &bin, &len);

    *fd = err == RP_OK ? memfd_create("rampart-metadata", MFD_CLOEXEC) : -1;
    if (err == RP_OK && *fd < 0)
        err = RP_ERR_IO;
    if (err == RP_OK && rp_write_all(*fd, bin, len) != RP_OK) {
        close(*fd);
        *fd = -1;
        err = RP_ERR_IO;
    }
    free(bin);
    return err;
}

/* Newer roots, each signed by the keys of the one before and by its own (rp_md_root_accept).
 * OUT: *root, the current root. */
static rp_err_t update_roots(struct client *c, rp_md_root_t *root, rp_update_summary_t *s)
{
    char path[128];
    rp_http_response_t r;
    rp_md_root_t *accepted = calloc(1, sizeof(*accepted));
    json_t *list = NULL, *e;
    size_t i;
    rp_err_t err = accepted != NULL ? rp_update_root(c->a->state_dir, root) : RP_ERR_NO_MEMORY;

    if (err == RP_ERR_NOT_FOUND)
        err = refuse(s, RP_ERR_NOT_FOUND,
                     "the device has no update root (rampart-agent trust --update-root)");
    if (err == RP_OK) {
        snprintf(path, sizeof(path), "/api/v1/device/roots?after=%lld", (long long)root->version);
        err = get(c, path, &r, s->detail, sizeof(s->detail));
    }
    if (err == RP_OK) {
        list = json_loadb(r.body, r.len, 0, NULL);
        rp_http_response_free(&r);
    }
    json_array_foreach(json_object_get(list, "roots"), i, e)
    {
        /* A root a newer one follows may have expired: only the last must not have. */
        rp_md_root_trust_t trust = {root, NULL, 0, true};
        const char *next = json_string_value(e);
        if (err != RP_OK || next == NULL)
            break;
        err = rp_md_root_accept(next, strlen(next), &trust, accepted, s->detail, sizeof(s->detail));
        if (err != RP_OK) {
            rp_log_error("update refused: %s", s->detail);
            rp_reportq_event(c->a, RP_REPORT_METADATA_REFUSED, NULL, rp_report_code_of(err),
                             "root metadata: %s", s->detail);
            break;
        }
        err = keep_next_root(c->a, next, strlen(next), s);
        if (err == RP_OK && !rp_md_role_equal(&root->online, &accepted->online)) {
            /* A new online key: what the old one signed (a stolen key's version 2^62, say) no
             * longer holds the device back, as TUF forgets targets when their key rotates. */
            char kept[PATH_MAX];
            if (rp_agent_file(c->a, TARGETS_FILE, kept, sizeof(kept)) == RP_OK &&
                unlink(kept) != 0 && errno != ENOENT && errno != EACCES)
                err = RP_ERR_IO;
        }
        if (err == RP_OK) {
            rp_log_info("update root version %lld", (long long)accepted->version);
            *root = *accepted;
        }
    }
    json_decref(list);
    free(accepted);
    if (err == RP_OK && root->expires <= (int64_t)time(NULL)) {
        err = refuse(s, RP_ERR_EXPIRED,
                     "the update root has expired and the service has no newer one (freeze)");
        rp_reportq_event(c->a, RP_REPORT_METADATA_REFUSED, NULL, RP_REPORT_CODE_EXPIRED, "%s",
                         s->detail);
    }
    return err;
}

/* The targets, through the monitor (TARGETS, the document as a descriptor): it checks them with
 * the root it owns, keeps them, and installs only what they name. */
static rp_err_t hand_targets(rp_agent_t *a, const rp_md_signed_t *doc, rp_update_summary_t *s)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_TARGETS};
    rp_err_t err;
    int fd;

    memset(&r, 0, sizeof(r));
    err = rp_update_signed_fd(doc, &fd);
    if (err == RP_OK) {
        err = rp_agent_monitor_call(a, &q, fd, &r);
        close(fd);
    }
    if (err == RP_OK)
        return RP_OK;
    snprintf(s->detail, sizeof(s->detail), "the monitor did not take them: %s",
             r.status != RP_OK ? r.message : rp_strerror(err));
    return r.status != RP_OK ? (rp_err_t)r.status : err;
}

/* The apps old named and now does not (a deployment that dropped them, a move to another
 * group): the monitor removes them (APP_REMOVE, which checks that its own targets no longer name
 * them). Only these: an app the device never had targets for (a sideload) stays. */
static void remove_dropped(rp_agent_t *a, const rp_md_targets_t *old, const rp_md_targets_t *now)
{
    static rp_mon_reply_t r;

    for (size_t i = 0; i < old->ntargets; i++) {
        rp_mon_request_t q = {.type = RP_MON_APP_REMOVE};
        bool named = false;
        rp_err_t err;
        for (size_t j = 0; j < now->ntargets && !named; j++)
            named = strcmp(old->targets[i].component, now->targets[j].component) == 0;
        if (named)
            continue;
        snprintf(q.u.app_remove.component, sizeof(q.u.app_remove.component), "%s",
                 old->targets[i].component);
        memset(&r, 0, sizeof(r));
        err = rp_agent_monitor_call(a, &q, -1, &r);
        if (err == RP_OK)
            rp_log_info("%s: removed (the device's targets no longer name it)",
                        q.u.app_remove.component);
        else if (r.status != RP_ERR_NOT_FOUND)
            rp_log_warn("%s: the targets no longer name it, and it was not removed: %s",
                        q.u.app_remove.component, r.status != RP_OK ? r.message : rp_strerror(err));
    }
}

/* The targets: fetched, accepted and kept (rp_update_take_targets: the agent's copy, then the
 * monitor's when one serves the device). OUT: *targets. */
static rp_err_t update_targets(struct client *c, const rp_md_root_t *root, rp_md_targets_t *targets,
                               rp_update_summary_t *s)
{
    rp_http_response_t r;
    rp_md_signed_t *doc = NULL;
    rp_md_targets_t *old;
    char path[128], kept_path[PATH_MAX], why[128];
    rp_err_t err = rp_agent_file_for_write(c->a, TARGETS_FILE, kept_path, sizeof(kept_path));

    /* What the kept ones named (whatever their age): their version, and (with a monitor) what
     * the new ones drop, to remove it. */
    old = calloc(1, sizeof(*old));
    if (err == RP_OK && old != NULL &&
        agent_kept_targets(kept_path, c->a->device_id, root, true, old, why, sizeof(why)) != RP_OK)
        memset(old, 0, sizeof(*old));
    /* The device says what its root of trust accepts, so that the service refuses a deployment
     * it could never install, and the version it holds, so that it is never served less (a
     * service whose database went back: a backup restored). */
    snprintf(path, sizeof(path), "/api/v1/device/targets?security_counter_max=%lu",
             (unsigned long)rp_agent_seccnt_max(c->a));
    if (old != NULL && old->version > 0)
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "&targets_version=%lld",
                 (long long)old->version);
    if (get(c, path, &r, s->detail, sizeof(s->detail)) != RP_OK) {
        free(old);
        return RP_ERR_IO;
    }
    if (err != RP_OK)
        snprintf(s->detail, sizeof(s->detail), "cannot keep the targets: %s", rp_strerror(err));
    else if ((doc = calloc(1, sizeof(*doc))) == NULL)
        err = RP_ERR_NO_MEMORY;
    /* Unpacked here, unprivileged: the monitor takes the binary form and parses no JSON it has
     * not verified. */
    else if ((err = rp_md_unpack(r.body, r.len, doc, s->detail, sizeof(s->detail))) == RP_OK)
        err = rp_update_take_targets(kept_path, c->a->device_id, root, doc, &agent_copy, targets,
                                     s->detail, sizeof(s->detail));
    if (err == RP_OK && c->a->rot == NULL)
        err = hand_targets(c->a, doc, s);
    rp_md_signed_free(doc);
    free(doc);
    if (err == RP_OK && old != NULL && c->a->rot == NULL)
        remove_dropped(c->a, old, targets);
    free(old);
    if (err != RP_OK) {
        rp_log_error("update refused: %s", s->detail);
        rp_reportq_event(c->a, RP_REPORT_METADATA_REFUSED, NULL, rp_report_code_of(err),
                         "targets metadata: %s", s->detail);
    }
    rp_http_response_free(&r);
    return err;
}

/* The monitor's STATUS: its answer for name (RP_ERR_NOT_FOUND when it has no such component). */
static rp_err_t monitor_component(rp_agent_t *a, const char *name, rp_mon_component_t *out)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_STATUS};
    rp_err_t err = rp_agent_monitor_call(a, &q, -1, &r);

    for (size_t i = 0; err == RP_OK && i < r.u.status.n; i++)
        if (strcmp(r.u.status.c[i].name, name) == 0) {
            *out = r.u.status.c[i];
            return RP_OK;
        }
    return err == RP_OK ? RP_ERR_NOT_FOUND : err;
}

/* Whether the component runs this image already. Through the monitor (the slots are not the
 * agent's to read): whether it runs this version; an image of the same version that differs is
 * the monitor's install to refuse. */
static bool running(rp_agent_t *a, const char *name, const char *image_hash, const char *version)
{
    char path[PATH_MAX], hex[2 * RP_SHA256_LEN + 1];
    rp_component_t comp;
    rp_slot_image_t img;
    rp_mon_component_t mc;

    if (a->rot == NULL)
        return monitor_component(a, name, &mc) == RP_OK && strcmp(mc.version, version) == 0;
    return rp_component_load(a->state_dir, name, &comp) == RP_OK && comp.active >= 0 &&
           rp_slot_path(a->state_dir, name, comp.active, path, sizeof(path)) == RP_OK &&
           rp_slot_check(a, &comp, path, &img) == RP_OK && img.valid &&
           rp_hex_encode(img.digest, RP_SHA256_LEN, hex, sizeof(hex)) == RP_OK &&
           strcmp(hex, image_hash) == 0;
}

rp_err_t rp_agent_install(rp_agent_t *a, const char *name, const char *path,
                          const rp_install_opts_t *opts, rp_install_result_t *res)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_INSTALL};
    rp_err_t err;
    int fd, slot = -1;

    if (a->rot != NULL) {
        rp_install_opts_t mine = *opts;

        mine.external = rp_mcu_health;
        return rp_install(a, name, path, &mine, res);
    }
    /* A component attached to an MCU: the monitor verifies it, puts it on trial and answers
     * handed with the trial slot (the monitor tells by root's S/mcu/); the agent relays it. */
    if (strlen(name) >= sizeof(q.u.install.component))
        return RP_ERR_INVALID_ARG;
    strcpy(q.u.install.component, name);
    q.u.install.health_seconds = opts->health_seconds > 0 ? (uint32_t)opts->health_seconds : 0;
    /* For an MCU it is how long the monitor waits for the board's verdict: its default, the
     * relay's two boots, whatever an app's health window is. */
    if (rp_mcu_attached(a->state_dir, name) == RP_OK)
        q.u.install.health_seconds = 0;
    /* The monitor reads the image from this descriptor, never from a path the agent names. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        rp_log_error("%s: %s", path, strerror(errno));
        return RP_ERR_IO;
    }
    err = rp_agent_monitor_call_fd(a, &q, fd, &r, &slot);
    close(fd);
    if (err == RP_OK) {
        res->state = (rp_update_state_t)r.u.install.state;
        snprintf(res->detail, sizeof(res->detail), "%s", r.u.install.detail);
    }
    if (err == RP_OK && res->state == RP_UPDATE_HANDED && slot >= 0)
        return rp_mcu_hand_over(a, name, slot, res);
    if (slot >= 0)
        close(slot);
    if (err == RP_OK && res->state == RP_UPDATE_HANDED) {
        res->state = RP_UPDATE_FAILED; /* (never without its descriptor) */
        snprintf(res->detail, sizeof(res->detail), "handed over without the image");
    }
    return err;
}

rp_err_t rp_agent_recover(rp_agent_t *a, int *unbootable)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_RECOVER};
    rp_err_t err;

    if (a->rot != NULL)
        return rp_components_recover(a, unbootable);
    err = rp_agent_monitor_call(a, &q, -1, &r);
    if (err == RP_OK && unbootable != NULL)
        *unbootable = (int)r.u.recover.unbootable;
    return err;
}

/* What the image says of itself, unverified (the monitor verifies it when it installs): through
 * the monitor, the agent holds no keys' verdict, only the bytes the metadata named. */
rp_err_t rp_agent_image_identity(rp_agent_t *a, const char *name, const char *path,
                                 rp_slot_image_t *img)
{
    uint8_t scratch[4096];
    rp_image_identity_t id;
    rp_file_image_t f;
    rp_component_t none;
    rp_err_t err;

    if (a->rot != NULL) {
        err = rp_component_load(a->state_dir, name, &none);
        return err == RP_OK || err == RP_ERR_NOT_FOUND ? rp_slot_check(a, &none, path, img) : err;
    }
    memset(img, 0, sizeof(*img));
    if (rp_file_image_open(&f, path) != RP_OK)
        return RP_OK; /* not an image: the monitor's install says so */
    err = rp_image_identity_read(&f.io, &id);
    if (err == RP_OK)
        err = rp_image_hash(&f.io, &id.layout, scratch, sizeof(scratch), img->digest);
    if (err == RP_OK)
        err = rp_image_version_format(&id.layout.hdr.version, img->version, sizeof(img->version));
    rp_file_image_close(&f);
    if (err != RP_OK) {
        memset(img, 0, sizeof(*img));
        return RP_OK;
    }
    img->ver = id.layout.hdr.version;
    img->has_security_counter = id.has_security_counter;
    img->security_counter = id.security_counter;
    return RP_OK;
}

/* A target refused before it reached rp_install: recorded on the device and reported. */
static void refused_target(struct client *c, const char *deployment, const char *name,
                           const char *version, rp_update_summary_t *s, const char *code,
                           const char *detail)
{
    s->refused++;
    rp_log_error("%s %s: refused: %s", name, version, detail);
    rp_reportq_event(c->a, RP_REPORT_IMAGE_REFUSED, name, code, "%s %s: %s", name, version, detail);
    rp_component_t existing;

    /* Recorded on a component the device has; names the metadata made up make no state (each
     * would take a security counter). Through the monitor, only reported (the state is the
     * monitor's, and it records what reaches its install). */
    if (c->a->rot != NULL && rp_component_name_valid(name, strlen(name)) &&
        rp_component_load(c->a->state_dir, name, &existing) == RP_OK &&
        rp_component_note(c->a, name, RP_UPDATE_REFUSED, version, detail) != RP_OK)
        rp_log_warn("%s: cannot record the refusal", name);
    report(c, deployment, RP_UPDATE_REFUSED, "%s %s: %s", name, version, detail);
}

/*
 * Rebuild the target image into path from a delta against the image the component runs, when the
 * metadata offers one for it: the delta is downloaded (at most its size, resuming), checked
 * against its SHA-256, and applied (at most the target's size). The result is checked afterwards
 * exactly as a full download is. Any failure: the caller fetches the full image.
 */
static rp_err_t try_delta(struct client *c, const char *name, const char *image, uint64_t size,
                          const rp_md_delta_t *delta, const char *path)
{
    const char *from = delta->from, *sha = delta->sha256;
    uint64_t dsize = delta->size;
    char slot[PATH_MAX], dpath[PATH_MAX], url[2048], error[256], got[2 * RP_SHA256_LEN + 1];
    rp_http_opts_t h = {c->ca, NULL, NULL, 600, client_cert, c, NULL, NULL, 0};
    rp_component_t comp;
    long status;
    int fd;
    rp_err_t err;

    /* A delta no smaller than the image saves nothing: the whole image. Through the monitor the
     * slots are not the agent's to read: the whole image. */
    if (dsize >= size || c->a->rot == NULL ||
        rp_component_load(c->a->state_dir, name, &comp) != RP_OK || comp.active < 0 ||
        rp_slot_path(c->a->state_dir, name, comp.active, slot, sizeof(slot)) != RP_OK)
        return RP_ERR_NOT_FOUND;
    /* The base must be exactly what the device runs. */
    fd = open(slot, O_RDONLY | O_CLOEXEC);
    err = fd >= 0 ? rp_fd_sha256_hex(fd, got) : RP_ERR_IO;
    if (fd >= 0)
        close(fd);
    if (err != RP_OK || strcmp(got, from) != 0)
        return RP_ERR_NOT_FOUND;
    if (snprintf(dpath, sizeof(dpath), "%s" DELTA_SUFFIX, path) >= (int)sizeof(dpath))
        return RP_ERR_INVALID_ARG;
    fd = open(dpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return RP_ERR_IO;
    snprintf(url, sizeof(url), "%s/api/v1/device/deltas/%s/%s", c->server, from, image);
    err = rp_http_download(url, &h, fd, dsize, &status, error, sizeof(error));
    if (err == RP_OK && status != 200 && status != 206)
        err = RP_ERR_IO;
    if (err == RP_OK)
        err = rp_fd_sha256_hex(fd, got);
    close(fd);
    if (err == RP_OK && strcmp(got, sha) != 0)
        err = RP_ERR_HASH_MISMATCH;
    if (err == RP_OK)
        err = rp_delta_apply(slot, dpath, path, size);
    (void)unlink(dpath);
    /* What it rebuilt must be the image itself: otherwise the whole image, now. */
    if (err == RP_OK) {
        struct stat sb;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        err = fd >= 0 && fstat(fd, &sb) == 0 ? rp_fd_sha256_hex(fd, got) : RP_ERR_IO;
        if (fd >= 0)
            close(fd);
        if (err == RP_OK && ((uint64_t)sb.st_size != size || strcmp(got, image) != 0))
            err = RP_ERR_HASH_MISMATCH;
    }
    if (err == RP_OK)
        rp_log_info("%s: rebuilt from a %llu-byte delta instead of %llu bytes", name,
                    (unsigned long long)dsize, (unsigned long long)size);
    else
        rp_log_warn("%s: the delta failed (%s): fetching the full image", name, rp_strerror(err));
    return err;
}

/* ---- what the downloads directory keeps (rp_update_sweep) ---- */

/* Whether name is one a check may resume: ID or ID.delta of one of keep's targets; keep NULL:
 * any image ID (64 lowercase hex) or ID.delta. */
static bool resumable(const char *name, const rp_md_targets_t *keep)
{
    size_t n = strspn(name, "0123456789abcdef");

    if (n != RP_MD_HASH_HEX_LEN || (name[n] != '\0' && strcmp(name + n, DELTA_SUFFIX) != 0))
        return false;
    for (size_t i = 0; keep != NULL && i < keep->ntargets; i++)
        if (strncmp(name, keep->targets[i].image, n) == 0)
            return true;
    return keep == NULL;
}

static bool not_resumable(const char *name, void *keep)
{
    return !resumable(name, keep);
}

rp_err_t rp_update_sweep_dir(int dir, const rp_md_targets_t *keep, int *removed)
{
    return rp_dir_sweep(dir, not_resumable, (void *)keep, removed);
}

void rp_update_sweep(const rp_agent_t *a, const rp_md_targets_t *keep)
{
    char path[PATH_MAX];
    int update, dir, removed = 0, temps = 0;
    rp_err_t err = RP_OK;

    /* S/agent/update then downloads, neither through a link (S/agent itself is checked by
     * rp_agent_file_for_write at each write). */
    if (rp_agent_file(a, UPDATE_DIR, path, sizeof(path)) != RP_OK)
        return;
    update = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    dir = update >= 0 ? openat(update, DOWNLOADS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                      : -1;
    if (dir < 0 && errno != ENOENT)
        rp_log_warn("%s/" DOWNLOADS ": cannot open it: %s", path, strerror(errno));
    /* The kept targets' temporary a cut left (their writer is an update check too). */
    if (update >= 0) {
        err = rp_atomic_sweep(update, TARGETS_NAME, &temps);
        close(update);
    }
    if (dir >= 0) {
        rp_err_t e = rp_update_sweep_dir(dir, keep, &removed);
        err = err != RP_OK ? err : e;
        close(dir);
    }
    if (removed + temps > 0)
        rp_log_info("%s: %d entr%s removed (%s)", path, removed + temps,
                    removed + temps == 1 ? "y" : "ies",
                    keep != NULL ? "what no current target resumes, temporaries"
                                 : "what nothing can resume, temporaries");
    if (err != RP_OK)
        rp_log_warn("%s: cannot remove all that no check resumes", path);
}

/* Progress on a terminal: "app 1.2.0: 3.1 of 16.0 MiB (19%)", at most ten times a second. */
struct bar {
    const char *name, *version;
    struct timespec last;
    bool finished;
};

static void show_progress(void *arg, uint64_t done, uint64_t total)
{
    struct bar *b = arg;
    struct timespec now;

    if (b->finished)
        return;
    b->finished = done >= total;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (done < total &&
        (now.tv_sec - b->last.tv_sec) * 1000 + (now.tv_nsec - b->last.tv_nsec) / 1000000 < 100)
        return;
    b->last = now;
    fprintf(stderr, "\r%s %s: %.1f of %.1f MiB (%3d%%)%s", b->name, b->version,
            (double)done / 1048576.0, (double)total / 1048576.0,
            total > 0 ? (int)(done * 100 / total) : 100, done >= total ? "\n" : "");
}

/* One target: download (resuming), check against the metadata, install, report. */
static rp_err_t apply_target(struct client *c, const char *deployment, const rp_md_target_t *t,
                             const rp_install_opts_t *opts, rp_update_summary_t *s)
{
    const char *name = t->component, *image = t->image, *hash = t->image_hash;
    uint64_t size = t->size;
    char version[RP_IMAGE_VERSION_STR_MAX];
    char path[PATH_MAX], url[2048], error[256], got[2 * RP_SHA256_LEN + 1];
    rp_http_opts_t h = {c->ca, NULL, NULL, 600, client_cert, c, NULL, NULL, 0};
    struct bar bar = {
        name, version, {0, 0},
          false
    };
    rp_install_result_t res;
    rp_slot_image_t img;
    struct stat sb;
    long status;
    int fd;
    rp_err_t err;

    /* The metadata's rules held (rp_md_targets_accept); this device's own limit: */
    if (rp_image_version_format(&t->version, version, sizeof(version)) != RP_OK)
        return RP_ERR_INVALID_ARG;
    if (size > RP_UPDATE_IMAGE_MAX) {
        refused_target(c, deployment, name, version, s, RP_REPORT_CODE_TOO_LARGE,
                       "larger than the 256 MiB this device takes");
        return RP_OK;
    }
    if (running(c->a, name, hash, version)) {
        s->unchanged++;
        report(c, deployment, RP_UPDATE_INSTALLED, "%s %s is running", name, version);
        return RP_OK;
    }
    report(c, deployment, RP_UPDATE_DOWNLOADING, "%s %s", name, version);
    if (snprintf(url, sizeof(url), DOWNLOADS_DIR "/%s", image) >= (int)sizeof(url))
        return RP_ERR_INVALID_ARG;
    err = rp_agent_file_for_write(c->a, url, path, sizeof(path));
    if (err != RP_OK)
        return err;
    if (t->has_delta) {
        err = try_delta(c, name, image, size, &t->delta, path);
        if (err != RP_OK && err != RP_ERR_NOT_FOUND)
            (void)unlink(path); /* whatever the delta left: the full image starts afresh */
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return RP_ERR_IO;
    snprintf(url, sizeof(url), "%s/api/v1/device/images/%s", c->server, image);
    if (isatty(STDERR_FILENO)) {
        h.progress = show_progress;
        h.progress_arg = &bar;
    }
    err = rp_http_download(url, &h, fd, size, &status, error, sizeof(error));
    if (err == RP_ERR_TOO_LARGE) { /* endless data: what came is dropped */
        close(fd);
        (void)unlink(path);
        refused_target(c, deployment, name, version, s, RP_REPORT_CODE_TOO_LARGE, error);
        return RP_OK;
    }
    if (err != RP_OK || (status != 200 && status != 206)) {
        close(fd);
        s->failed++;
        rp_log_error("%s: download failed: %s", name, err != RP_OK ? error : "HTTP error");
        report(c, deployment, RP_UPDATE_FAILED, "download: %s",
               err != RP_OK ? error : "HTTP error");
        return RP_OK; /* kept: the next check resumes it */
    }
    /* Mix-and-match: the bytes must be exactly the image the metadata names. */
    err = fstat(fd, &sb) == 0 ? rp_fd_sha256_hex(fd, got) : RP_ERR_IO;
    close(fd);
    if (err != RP_OK)
        return err;
    if ((uint64_t)sb.st_size != size || strcmp(got, image) != 0) {
        (void)unlink(path);
        refused_target(c, deployment, name, version, s, RP_REPORT_CODE_HASH_MISMATCH,
                       "the download is not the image the metadata names");
        return RP_OK;
    }
    /* What the image says of itself (its fields are read before the security counter floor is
     * applied: rp_install applies that). */
    err = rp_agent_image_identity(c->a, name, path, &img);
    if (err != RP_OK)
        return err;
    if (img.version[0] != '\0' && !rp_update_target_matches(t, &img)) {
        (void)unlink(path);
        refused_target(c, deployment, name, version, s, RP_REPORT_CODE_MISMATCH,
                       "the image's version, digest or security counter differ from the "
                       "metadata");
        return RP_OK;
    }
    err = rp_agent_install(c->a, name, path, opts, &res);
    (void)unlink(path);
    if (err != RP_OK)
        return err;
    switch (res.state) {
    case RP_UPDATE_INSTALLED: s->installed++; break;
    case RP_UPDATE_UNCHANGED: s->unchanged++; break;
    case RP_UPDATE_REFUSED:
        s->refused++;
        rp_reportq_event(c->a, RP_REPORT_IMAGE_REFUSED, name, rp_report_code_of_detail(res.detail),
                         "%s %s: %s", name, version, res.detail);
        break;
    case RP_UPDATE_ROLLED_BACK: s->rolled_back++; break;
    default: s->failed++; break;
    }
    printf("%s: %s: %s\n", name, rp_update_state_name(res.state), res.detail);
    report(c, deployment, res.state, "%s %s: %s", name, version, res.detail);
    return RP_OK;
}

rp_err_t rp_update_check(rp_agent_t *a, const char *server, const char *server_ca,
                         const rp_install_opts_t *opts, rp_update_summary_t *s)
{
    struct client c = {a, server, server_ca, ""};
    rp_md_root_t *root = calloc(1, sizeof(*root));
    rp_md_targets_t *targets = calloc(1, sizeof(*targets));
    rp_err_t err;

    memset(s, 0, sizeof(*s));
    if (rp_agent_file(a, "device.crt", c.cert, sizeof(c.cert)) != RP_OK || root == NULL ||
        targets == NULL) {
        err = RP_ERR_NO_MEMORY;
    } else {
        err = rp_agent_check_certificate(a);
        if (err == RP_ERR_NOT_FOUND)
            err = refuse(s, RP_ERR_NOT_FOUND, "no device certificate yet: attest first");
        else if (err != RP_OK)
            err = refuse(s, err,
                         "the device's certificate is not usable (see above): attest "
                         "again");
        else
            err = update_roots(&c, root, s);
    }
    if (err == RP_OK)
        err = update_targets(&c, root, targets, s);
    /* What the downloads keep is what these targets may resume: the rest goes (the caller holds
     * the slots' lock, as every writer there does). A failure is said, and is no reason to stop. */
    if (err == RP_OK)
        rp_update_sweep(a, targets);
    for (size_t i = 0; err == RP_OK && i < targets->ntargets; i++)
        err = apply_target(&c, targets->deployment, &targets->targets[i], opts, s);
    free(root);
    free(targets);
    return err;
}
