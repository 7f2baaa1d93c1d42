/*
 * The device's capabilities: checked with the device's update root and kept in S/capability.json.
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

#define CAPABILITY_FILE "capability.json"

static rp_err_t path_of(const char *state_dir, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", state_dir, CAPABILITY_FILE);

    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

/* Accept env as a capability of the device, by the root it keeps. */
static rp_err_t accept(const char *state_dir, const char *device_id, const char *env, size_t len,
                       rp_md_capability_t *out, char *detail, size_t cap)
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
        err = rp_md_capability_accept(env, len, &trust, out, detail, cap);
    free(root);
    return err;
}

rp_err_t rp_capability_apply(const rp_agent_t *a, const char *path, rp_md_capability_t *out,
                             char *detail, size_t cap)
{
    char kept[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    rp_err_t err = rp_read_file(path, RP_MD_MAX, &data, &len);

    if (err != RP_OK) {
        snprintf(detail, cap, "cannot read it: %s", rp_strerror(err));
        return err;
    }
    err = accept(a->state_dir, a->device_id, (const char *)data, len, out, detail, cap);
    if (err == RP_OK)
        err = path_of(a->state_dir, kept, sizeof(kept));
    if (err == RP_OK) {
        err = rp_write_file_atomic(kept, data, len, 0644,
                                   0); /* signed, not secret: the agent reads it */
        if (err != RP_OK)
            snprintf(detail, cap, "cannot keep it in %s: %s", kept, rp_strerror(err));
    }
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
    uint8_t *data = NULL;
    size_t len = 0;
    rp_md_capability_t c;
    rp_err_t err = path_of(state_dir, path, sizeof(path));

    *have = false;
    if (err == RP_OK)
        err = rp_read_file(path, RP_MD_MAX, &data, &len);
    if (err == RP_ERR_NOT_FOUND)
        return RP_OK;
    if (err != RP_OK) {
        snprintf(why, sizeof(why), "cannot read it: %s", rp_strerror(err));
    } else if (accept(state_dir, device_id, (const char *)data, len, &c, why, sizeof(why)) ==
               RP_OK) {
        *have = c.kind == RP_MD_CAP_DEVELOPMENT;
        if (*have && out != NULL)
            *out = c;
    }
    free(data);
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
