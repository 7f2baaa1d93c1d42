/*
 * The device's capabilities: checked with the device's update root and kept in S/capability.bin
 * (the kept binary form: the monitor reads it, and never parses its JSON).
 * The document's fields and rules are metadata.c's (rp_md_capability_accept); this file owns only
 * where it is kept and when it counts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capability.h"
#include "rampart/file.h"
#include "update.h"

#define CAPABILITY_FILE "capability.bin" /* its kept binary form (rp_md_kept_encode) */
#define CAPABILITY_FILE_BEFORE "capability.json" /* an older version's: its JSON envelope */

static rp_err_t path_of(const char *state_dir, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", state_dir, CAPABILITY_FILE);

    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

/* Accept s as a capability of the device, by the root it keeps; parse reads its payload. */
static rp_err_t accept(const char *state_dir, const char *device_id, const rp_md_signed_t *s,
                       rp_md_parse_fn parse, void *ctx, rp_md_capability_t *out, uint8_t *bin,
                       size_t *bin_len, char *detail, size_t cap)
{
    rp_md_root_t *root = calloc(1, sizeof(*root));
    rp_md_capability_trust_t trust = {root, device_id, (int64_t)time(NULL)};
    rp_err_t err = root != NULL ? rp_update_root(state_dir, root) : RP_ERR_NO_MEMORY;

    if (err == RP_ERR_NOT_FOUND)
        snprintf(detail, cap,
                 "the device has no update root to check it with "
                 "(rampart-agent trust --update-root FILE)");
    else if (err != RP_OK)
        snprintf(detail, cap, "the device's update root cannot be read: %s", rp_strerror(err));
    else
        err = rp_md_capability_accept_with(s, &trust, parse, ctx, out, bin, bin_len, detail, cap);
    free(root);
    return err;
}

rp_err_t rp_capability_apply(const rp_agent_t *a, const char *path, rp_md_capability_t *out,
                             char *detail, size_t cap)
{
    char kept[PATH_MAX];
    static uint8_t bin[RP_MD_DOC_BIN_MAX];
    uint8_t *data = NULL;
    size_t len = 0, n = 0;
    rp_md_signed_t *s = calloc(1, sizeof(*s));
    rp_err_t err = s != NULL ? rp_read_file(path, RP_MD_MAX, &data, &len) : RP_ERR_NO_MEMORY;

    if (err != RP_OK) {
        snprintf(detail, cap, "cannot read it: %s", rp_strerror(err));
        free(s);
        return err;
    }
    /* Read here, by the agent: what is kept is the binary form, which the monitor reads. */
    err = rp_md_unpack((const char *)data, len, s, detail, cap);
    if (err == RP_OK)
        err = accept(a->state_dir, a->device_id, s, rp_md_parse, NULL, out, bin, &n, detail, cap);
    if (err == RP_OK)
        err = path_of(a->state_dir, kept, sizeof(kept));
    if (err == RP_OK) {
        /* signed, not secret: the agent reads it */
        err = rp_update_kept_write(kept, s, bin, n, 0644);
        if (err != RP_OK)
            snprintf(detail, cap, "cannot keep it in %s: %s", kept, rp_strerror(err));
    }
    rp_md_signed_free(s);
    free(s);
    free(data);
    return err;
}

rp_err_t rp_capability_remove(const char *state_dir)
{
    char path[PATH_MAX];
    rp_err_t err = path_of(state_dir, path, sizeof(path));

    if (err == RP_OK && unlink(path) != 0 && errno != ENOENT)
        err = RP_ERR_IO;
    return err;
}

rp_err_t rp_capability_development(const char *state_dir, const char *device_id, bool *have,
                                   rp_md_capability_t *out, char *detail, size_t cap)
{
    char path[PATH_MAX], why[256] = "";
    rp_md_signed_t *s = calloc(1, sizeof(*s));
    rp_md_capability_t kept, c;
    rp_err_t err = s != NULL ? path_of(state_dir, path, sizeof(path)) : RP_ERR_NO_MEMORY;

    *have = false;
    if (err == RP_OK)
        err = rp_update_kept_read(path, RP_MD_CAPABILITY, s, &kept, why, sizeof(why));
    if (err == RP_ERR_NOT_FOUND) {
        free(s);
        return RP_OK;
    }
    if (err != RP_OK) {
        snprintf(why, sizeof(why), "cannot read it: %s", rp_strerror(err));
    } else if (accept(state_dir, device_id, s, rp_md_kept_parse, &kept, &c, NULL, NULL, why,
                      sizeof(why)) == RP_OK) {
        *have = c.kind == RP_MD_CAP_DEVELOPMENT;
        if (*have && out != NULL)
            *out = c;
    }
    rp_md_signed_free(s);
    free(s);
    if (detail != NULL && cap > 0)
        snprintf(detail, cap, "%s", why);
    return RP_OK;
}

rp_err_t rp_capability_sideload(const char *state_dir, const char *device_id, bool *allowed,
                                char *why, size_t cap)
{
    rp_md_role_t *role = malloc(sizeof(*role));
    bool have_root = false;
    rp_err_t err =
        role != NULL ? rp_update_image_keys(state_dir, role, &have_root) : RP_ERR_NO_MEMORY;

    free(role);
    *allowed = false;
    why[0] = '\0';
    if (err != RP_OK) /* a corrupt root: said */
        snprintf(why, cap, "the device's update root cannot be read: %s", rp_strerror(err));
    else if (!have_root)
        *allowed = true;
    else
        err = rp_capability_development(state_dir, device_id, allowed, NULL, why, cap);
    return err;
}

struct migrate_ctx {
    const char *state_dir, *device_id;
    const rp_update_migration_t *how;
};

/* A capability an older version kept: checked as one applied now (the root kept, this device,
 * not expired). */
static rp_err_t check_kept_before(void *arg, const rp_md_signed_t *s, uint8_t *bin, size_t *n,
                                  char *detail, size_t cap)
{
    const struct migrate_ctx *m = arg;
    rp_md_capability_t c;

    return accept(m->state_dir, m->device_id, s, m->how->parse, m->how->parse_ctx, &c, bin, n,
                  detail, cap);
}

rp_err_t rp_capability_migrate(const char *state_dir, const char *device_id,
                               const rp_update_migration_t *how)
{
    struct migrate_ctx m = {state_dir, device_id, how};
    char before[PATH_MAX], path[PATH_MAX];
    int k = snprintf(before, sizeof(before), "%s/%s", state_dir, CAPABILITY_FILE_BEFORE);
    rp_err_t err = k > 0 && (size_t)k < sizeof(before) ? path_of(state_dir, path, sizeof(path))
                                                       : RP_ERR_INVALID_ARG;

    return err == RP_OK ? rp_update_migrate_file(how, before, path, 0644, check_kept_before, &m)
                        : err;
}
