/*
 * The device's root of update trust (update.h): the one kept in S/update/root.json, taking a new
 * one, and the image keys it names. The monitor links this (it owns the trust anchor); the update
 * check itself, which talks to the service, is update.c, the agent's alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "update.h"

#define ROOT_FILE "update/root.json"

static rp_err_t state_file(const char *state_dir, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", state_dir, name);

    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

static rp_err_t ensure_dir(const char *state_dir, const char *name)
{
    char path[PATH_MAX];
    rp_err_t err = state_file(state_dir, name, path, sizeof(path));

    /* 0711: passable, not listable: the unprivileged agent reads the root (0644) in it. */
    if (err == RP_OK && mkdir(path, 0711) != 0 && errno != EEXIST)
        err = RP_ERR_IO;
    return err;
}

/* Say that a kept envelope is corrupt: which file, why, and what to do. */
void rp_update_kept_corrupt(const char *path, bool is_root, const char *why)
{
    rp_log_error("%s is corrupt (%s): it should hold the signed %s metadata the device "
                 "accepted last. Fix: %s",
                 path, why, is_root ? "root" : "targets",
                 is_root ? "take the newest root again (rampart-agent trust --update-root FILE)"
                         : "remove it if you trust the service's current targets (the device "
                           "then cannot refuse targets older than the ones it had)");
}

/* A kept envelope (root or targets) at path. RP_ERR_NOT_FOUND when there is none. OUT: *env
 * (malloc'd, NUL-terminated), *len. */
rp_err_t rp_update_load_kept(const char *path, bool is_root, char **env, size_t *len)
{
    uint8_t *data;
    rp_err_t err = rp_read_file(path, RP_MD_MAX, &data, len);

    *env = NULL;
    if (err == RP_OK)
        *env = (char *)data;
    if (err != RP_OK && err != RP_ERR_NOT_FOUND)
        rp_update_kept_corrupt(path, is_root,
                               err == RP_ERR_TOO_LARGE ? "too large" : rp_strerror(err));
    return err;
}

/* The root: the monitor's (S/update/, root's), 0644 in a directory others may pass through, so
 * that the unprivileged agent reads the image keys and the chain's start (it is a public, signed
 * document). */
static rp_err_t keep_root(const char *state_dir, const char *text, size_t len)
{
    char path[PATH_MAX];
    rp_err_t err = ensure_dir(state_dir, "update");

    if (err == RP_OK)
        err = state_file(state_dir, ROOT_FILE, path, sizeof(path));
    return err == RP_OK ? rp_write_file_atomic(path, text, len, 0644, 0) : err;
}

/* The root the device keeps: accepted when it was kept, and still signed by its own keys (its
 * age does not matter here: whether it has expired is the check's to say). OUT: *root. */
rp_err_t rp_update_root(const char *state_dir, rp_md_root_t *root)
{
    rp_md_root_trust_t trust = {NULL, NULL, 0, true};
    char *env = NULL, detail[256], path[PATH_MAX];
    size_t len;
    rp_err_t err = state_file(state_dir, ROOT_FILE, path, sizeof(path));

    if (err == RP_OK)
        err = rp_update_load_kept(path, true, &env, &len);
    if (err == RP_OK) {
        err = rp_md_root_accept(env, len, &trust, root, detail, sizeof(detail));
        if (err != RP_OK)
            rp_update_kept_corrupt(path, true, detail);
    }
    free(env);
    return err;
}

rp_err_t rp_update_take_root(const char *state_dir, const rp_md_signed_t *doc, bool from_operator,
                             uint64_t *version, char *detail, size_t cap)
{
    char *env = NULL;
    rp_md_root_trust_t trust = {NULL, NULL, (int64_t)time(NULL), true};
    rp_md_root_t *root = calloc(1, sizeof(*root)), *kept = calloc(1, sizeof(*kept));
    rp_err_t err = root != NULL && kept != NULL ? RP_OK : RP_ERR_NO_MEMORY, have = RP_ERR_NOT_FOUND;

    detail[0] = '\0';
    if (err == RP_OK)
        have = rp_update_root(state_dir, kept);
    if (err == RP_OK && !from_operator) {
        /* From the agent: only the next root, signed by the kept root's keys as well as its own
         * (a root a newer one follows may have expired: the chain passes through it). */
        if (have == RP_OK)
            trust.current = kept;
        else
            err = RP_ERR_INVALID_ARG;
        if (err != RP_OK)
            snprintf(detail, cap,
                     "the device has no usable update root: its first is given by root "
                     "(rampart-agent trust --update-root FILE, run as root)");
    }
    /* From root (the operator provisioning the device): a first root, signed by its own keys. */
    if (err == RP_OK)
        err = rp_md_root_accept_signed(doc, &trust, root, detail, cap);
    /* Never step back: a root the device has is kept if it is newer. */
    if (err == RP_OK && have == RP_OK && kept->version > root->version) {
        snprintf(detail, cap, "the device keeps root version %lld, newer than this one (%lld)",
                 (long long)kept->version, (long long)root->version);
        err = RP_ERR_ROLLBACK;
    }
    /* Kept as its JSON envelope: the agent reads it, and S/update/ is root's (trusted storage). */
    if (err == RP_OK)
        err = rp_md_pack(doc, &env);
    if (err == RP_OK)
        err = keep_root(state_dir, env, strlen(env));
    if (err == RP_OK)
        *version = (uint64_t)root->version;
    else if (detail[0] == '\0')
        snprintf(detail, cap, "cannot keep it: %s", rp_strerror(err));
    free(env);
    free(root);
    free(kept);
    return err;
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
        err = rp_update_take_root(state_dir, doc, true, &version, detail, sizeof(detail));
    if (err != RP_OK && data != NULL)
        rp_log_error("%s: %s", path, detail);
    rp_md_signed_free(doc);
    free(doc);
    free(data);
    return err;
}

rp_err_t rp_update_kept_targets(const char *kept_path, const char *device_id,
                                const rp_md_root_t *root, bool expired_ok, rp_md_targets_t *out,
                                char *detail, size_t cap)
{
    rp_md_targets_trust_t trust = {root, device_id, 0, (int64_t)time(NULL), expired_ok};
    char *env = NULL;
    size_t len;
    rp_err_t err = rp_update_load_kept(kept_path, false, &env, &len);

    if (err == RP_OK)
        err = rp_md_targets_accept(env, len, &trust, out, detail, cap);
    else
        snprintf(detail, cap, "%s", err == RP_ERR_NOT_FOUND ? "none kept" : rp_strerror(err));
    free(env);
    return err;
}

rp_err_t rp_update_take_targets(const char *kept_path, const char *device_id,
                                const rp_md_root_t *root, const rp_md_signed_t *doc,
                                rp_md_targets_t *out, char *detail, size_t cap)
{
    rp_md_targets_trust_t trust = {root, device_id, 0, (int64_t)time(NULL), false};
    char why[256], *env = NULL;
    rp_err_t err = rp_update_kept_targets(kept_path, device_id, root, true, out, why, sizeof(why));

    /* The version to stay above: that of the kept targets if root's online keys signed them,
     * whatever their age. A kept file that is not a targets document is corrupt: without it the
     * device could not refuse older targets, so nothing is taken. */
    if (err == RP_OK) {
        trust.min_version = out->version;
    } else if (err != RP_ERR_NOT_FOUND && err != RP_ERR_BAD_SIGNATURE) {
        rp_update_kept_corrupt(kept_path, false, why);
        snprintf(detail, cap, "%s is not usable: %s", kept_path, why);
        return err;
    }
    err = rp_md_targets_accept_signed(doc, &trust, out, detail, cap);
    /* Kept as their JSON envelope, in a file only its owner writes (trusted storage). */
    if (err == RP_OK &&
        ((err = rp_md_pack(doc, &env)) != RP_OK ||
         (err = rp_write_file_atomic(kept_path, env, strlen(env), 0600, 0)) != RP_OK))
        snprintf(detail, cap, "cannot keep them in %s: %s", kept_path, rp_strerror(err));
    free(env);
    return err;
}

bool rp_update_target_matches(const rp_md_target_t *t, const rp_slot_image_t *img)
{
    char hash[2 * RP_SHA256_LEN + 1];

    return rp_hex_encode(img->digest, RP_SHA256_LEN, hash, sizeof(hash)) == RP_OK &&
           strcmp(hash, t->image_hash) == 0 && rp_image_version_cmp(&img->ver, &t->version) == 0 &&
           img->has_security_counter == t->has_security_counter &&
           img->security_counter == t->security_counter;
}

rp_err_t rp_update_image_keys(const char *state_dir, rp_md_role_t *role, bool *have_root)
{
    rp_md_root_t *root = calloc(1, sizeof(*root));
    rp_err_t err = root != NULL ? rp_update_root(state_dir, root) : RP_ERR_NO_MEMORY;

    *have_root = err != RP_ERR_NOT_FOUND;
    if (err == RP_OK)
        *role = root->images;
    free(root);
    return err == RP_ERR_NOT_FOUND ? RP_OK : err;
}
