/*
 * The device's root of update trust (update.h): the one kept in S/update/root.bin, taking a new
 * one, and the image keys it names. The monitor links this (it owns the trust anchor); the update
 * check itself, which talks to the service, is update.c, the agent's alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rampart/failpoint.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "capability.h"
#include "update.h"

#define ROOT_FILE RP_UPDATE_ROOT_FILE
#define ROOT_FILE_BEFORE "update/root.json" /* the JSON envelope kept before the binary form */

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

/* Say that a kept document is corrupt: which file, why, and what to do. */
void rp_update_kept_corrupt(const char *path, bool is_root, const char *why)
{
    rp_log_error("%s is corrupt (%s): it should hold the signed %s metadata the device "
                 "accepted last. Fix: %s",
                 path, why, is_root ? "root" : "targets",
                 is_root ? "take the newest root again (rampart-agent trust --update-root FILE)"
                         : "remove it if you trust the service's current targets (the device "
                           "then cannot refuse targets older than the ones it had)");
}

/* A kept file at path. RP_ERR_NOT_FOUND when there is none. OUT: *env (malloc'd,
 * NUL-terminated), *len. */
rp_err_t rp_update_load_kept(const char *path, bool is_root, char **env, size_t *len)
{
    uint8_t *data;
    rp_err_t err = rp_read_file(path, 8 + RP_MD_DOC_BIN_MAX + RP_MD_SIGNED_MAX, &data, len);

    *env = NULL;
    if (err == RP_OK)
        *env = (char *)data;
    if (err != RP_OK && err != RP_ERR_NOT_FOUND)
        rp_update_kept_corrupt(path, is_root,
                               err == RP_ERR_TOO_LARGE ? "too large" : rp_strerror(err));
    return err;
}

rp_err_t rp_update_kept_read(const char *path, rp_md_kind_t kind, rp_md_signed_t *s, void *doc,
                             char *detail, size_t cap)
{
    char *bin = NULL;
    size_t len = 0;
    rp_err_t err = rp_update_load_kept(path, kind == RP_MD_ROOT, &bin, &len);

    if (err == RP_OK)
        err = rp_md_kept_decode(kind, (const uint8_t *)bin, len, s, doc, detail, cap);
    else
        snprintf(detail, cap, "%s", err == RP_ERR_NOT_FOUND ? "none kept" : rp_strerror(err));
    free(bin);
    return err;
}

rp_err_t rp_update_kept_write(const char *path, const rp_md_signed_t *s, const uint8_t *doc,
                              size_t n, mode_t mode)
{
    uint8_t *bin = NULL;
    size_t len = 0;
    rp_err_t err = rp_md_kept_encode(doc, n, s, &bin, &len);

    if (err == RP_OK)
        err = rp_write_file_atomic(path, bin, len, mode, 0);
    free(bin);
    return err;
}

/* The root the device keeps: accepted when it was kept, and still signed by its own keys (its
 * age does not matter here: whether it has expired is the check's to say). OUT: *root. */
rp_err_t rp_update_root(const char *state_dir, rp_md_root_t *root)
{
    rp_md_root_trust_t trust = {NULL, NULL, 0, true};
    rp_md_signed_t *s = calloc(1, sizeof(*s));
    rp_md_root_t *kept = calloc(1, sizeof(*kept));
    char detail[256], path[PATH_MAX], before[PATH_MAX];
    struct stat st;
    rp_err_t err = s != NULL && kept != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    if (err == RP_OK)
        err = state_file(state_dir, ROOT_FILE, path, sizeof(path));
    if (err == RP_OK &&
        (err = rp_update_kept_read(path, RP_MD_ROOT, s, kept, detail, sizeof(detail))) == RP_OK) {
        err = rp_md_root_accept_with(s, &trust, rp_md_kept_parse, kept, root, NULL, NULL, detail,
                                     sizeof(detail));
        if (err != RP_OK)
            rp_update_kept_corrupt(path, true, detail);
    } else if (err == RP_ERR_NOT_FOUND &&
               state_file(state_dir, ROOT_FILE_BEFORE, before, sizeof(before)) == RP_OK &&
               lstat(before, &st) == 0) {
        /* A root kept before it was kept in its binary form: never "no root" (a managed device
         * would take any image its local keys allow), but refused until taken again. */
        rp_update_kept_corrupt(before, true,
                               "kept in the JSON form of an older version and not migrated: the "
                               "monitor migrates it at its start, and said why not");
        err = RP_ERR_MALFORMED;
    } else if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        rp_update_kept_corrupt(path, true, detail);
    }
    rp_md_signed_free(s);
    free(s);
    free(kept);
    return err;
}

rp_err_t rp_update_take_root(const char *state_dir, const rp_md_signed_t *doc, bool from_operator,
                             rp_md_parse_fn parse, void *ctx, uint64_t *version, char *detail,
                             size_t cap)
{
    char path[PATH_MAX];
    rp_md_root_trust_t trust = {NULL, NULL, (int64_t)time(NULL), true};
    rp_md_root_t *root = calloc(1, sizeof(*root)), *kept = calloc(1, sizeof(*kept));
    uint8_t *bin = malloc(RP_MD_DOC_BIN_MAX);
    size_t n = 0;
    rp_err_t err = root != NULL && kept != NULL && bin != NULL ? RP_OK : RP_ERR_NO_MEMORY,
             have = RP_ERR_NOT_FOUND;

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
    /* From root (the operator provisioning the device): a first root, signed by its own keys.
     * With a kept root, its keys verify the payload before parse reads it. */
    if (err == RP_OK)
        err = rp_md_root_accept_with(doc, &trust, parse, ctx, root, bin, &n, detail, cap);
    /* Never step back: a root the device has is kept if it is newer. */
    if (err == RP_OK && have == RP_OK && kept->version > root->version) {
        snprintf(detail, cap, "the device keeps root version %lld, newer than this one (%lld)",
                 (long long)kept->version, (long long)root->version);
        err = RP_ERR_ROLLBACK;
    }
    /* Kept in the binary form: what it says is never parsed again; 0644 in root's S/update/, the
     * agent reads it (trusted storage). */
    if (err == RP_OK && (err = ensure_dir(state_dir, "update")) == RP_OK &&
        (err = state_file(state_dir, ROOT_FILE, path, sizeof(path))) == RP_OK)
        err = rp_update_kept_write(path, doc, bin, n, 0644);
    /* What an older version kept goes: the binary form stands for it now. */
    if (err == RP_OK && state_file(state_dir, ROOT_FILE_BEFORE, path, sizeof(path)) == RP_OK &&
        unlink(path) != 0 && errno != ENOENT)
        rp_log_warn("%s: cannot remove it", path);
    if (err == RP_OK)
        *version = (uint64_t)root->version;
    else if (detail[0] == '\0')
        snprintf(detail, cap, "cannot keep it: %s", rp_strerror(err));
    free(bin);
    free(root);
    free(kept);
    return err;
}

rp_err_t rp_update_kept_targets(const char *kept_path, const char *device_id,
                                const rp_md_root_t *root, bool expired_ok, rp_md_targets_t *out,
                                char *detail, size_t cap)
{
    rp_md_targets_trust_t trust = {root, device_id, 0, (int64_t)time(NULL), expired_ok};
    rp_md_signed_t *s = calloc(1, sizeof(*s));
    rp_md_targets_t *kept = calloc(1, sizeof(*kept));
    rp_err_t err = s != NULL && kept != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    if (err == RP_OK &&
        (err = rp_update_kept_read(kept_path, RP_MD_TARGETS, s, kept, detail, cap)) == RP_OK)
        err = rp_md_targets_accept_with(s, &trust, rp_md_kept_parse, kept, out, NULL, NULL, detail,
                                        cap);
    rp_md_signed_free(s);
    free(s);
    free(kept);
    return err;
}

rp_err_t rp_update_keep_targets(const char *kept_path, const rp_md_signed_t *doc,
                                const uint8_t *bin, size_t n)
{
    return rp_update_kept_write(kept_path, doc, bin, n, 0600);
}

rp_err_t rp_update_take_targets(const char *kept_path, const char *device_id,
                                const rp_md_root_t *root, const rp_md_signed_t *doc,
                                const rp_update_copy_t *copy, rp_md_targets_t *out, char *detail,
                                size_t cap)
{
    rp_md_targets_trust_t trust = {root, device_id, 0, (int64_t)time(NULL), false};
    static uint8_t bin[RP_MD_DOC_BIN_MAX];
    size_t n = 0;
    char why[256];
    rp_err_t err = copy->kept(kept_path, device_id, root, true, out, why, sizeof(why));

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
    err = rp_md_targets_accept_with(doc, &trust, copy->parse, copy->ctx, out, bin, &n, detail, cap);
    /* Kept in a file only its owner writes (trusted storage). */
    if (err == RP_OK && (err = copy->keep(kept_path, doc, bin, n)) != RP_OK)
        snprintf(detail, cap, "cannot keep them in %s: %s", kept_path, rp_strerror(err));
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

rp_err_t rp_update_migrate_file(const rp_update_migration_t *how, const char *before,
                                const char *path, mode_t mode, rp_update_check_fn check, void *arg)
{
    rp_md_signed_t *s = calloc(1, sizeof(*s));
    uint8_t *data = NULL, *bin = malloc(RP_MD_DOC_BIN_MAX);
    char detail[256] = "";
    size_t len = 0, n = 0;
    struct stat st;
    rp_err_t err = s != NULL && bin != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    if (err == RP_OK && lstat(path, &st) == 0) {
        /* Kept already (a cut after the rename): what is left of the older form goes. */
        if (unlink(before) != 0 && errno != ENOENT)
            rp_log_warn("%s: cannot remove it: %s", before, strerror(errno));
        err = RP_ERR_EXISTS;
    }
    if (err == RP_OK && (err = rp_read_file(before, RP_MD_MAX, &data, &len)) != RP_OK &&
        err != RP_ERR_NOT_FOUND)
        snprintf(detail, sizeof(detail), "cannot read it: %s", rp_strerror(err));
    if (err == RP_OK)
        err = how->unpack(how->unpack_ctx, (const char *)data, len, s, detail, sizeof(detail));
    if (err == RP_OK)
        err = check(arg, s, bin, &n, detail, sizeof(detail));
    if (err == RP_OK)
        rp_failpoint("migrate write");
    if (err == RP_OK && (err = rp_update_kept_write(path, s, bin, n, mode)) != RP_OK)
        snprintf(detail, sizeof(detail), "cannot write %s: %s", path, rp_strerror(err));
    if (err == RP_OK) {
        rp_failpoint("migrate remove");
        if (unlink(before) != 0 && errno != ENOENT) /* path stands for it: it is never read */
            rp_log_warn("%s: cannot remove it: %s", before, strerror(errno));
        rp_log_info("%s, kept by an older version, migrated to %s", before, path);
    } else if (err != RP_ERR_EXISTS && err != RP_ERR_NOT_FOUND) {
        rp_log_error("%s, kept by an older version, is refused and not migrated: %s", before,
                     detail[0] != '\0' ? detail : rp_strerror(err));
    }
    rp_md_signed_free(s);
    free(s);
    free(bin);
    free(data);
    return err == RP_ERR_EXISTS || err == RP_ERR_NOT_FOUND ? RP_OK : err;
}

struct migrate_ctx {
    const rp_update_migration_t *how;
    const char *device_id;
    rp_md_root_t *root;
};

/* The root an older version kept: it was verified before it was kept, in root's S/update/, so it
 * is checked as a first root is: by its own root keys' threshold, whatever its age. */
static rp_err_t check_root(void *arg, const rp_md_signed_t *s, uint8_t *bin, size_t *n,
                           char *detail, size_t cap)
{
    const struct migrate_ctx *m = arg;
    rp_md_root_trust_t trust = {NULL, NULL, (int64_t)time(NULL), true};

    return rp_md_root_accept_with(s, &trust, m->how->parse, m->how->parse_ctx, m->root, bin, n,
                                  detail, cap);
}

/* The targets an older version kept: by the online keys of the root migrated, whatever their
 * age, for this device. */
static rp_err_t check_targets(void *arg, const rp_md_signed_t *s, uint8_t *bin, size_t *n,
                              char *detail, size_t cap)
{
    const struct migrate_ctx *m = arg;
    rp_md_targets_trust_t trust = {m->root, m->device_id, 0, (int64_t)time(NULL), true};
    rp_md_targets_t *t = calloc(1, sizeof(*t));
    rp_err_t err = t != NULL ? rp_md_targets_accept_with(s, &trust, m->how->parse,
                                                         m->how->parse_ctx, t, bin, n, detail, cap)
                             : RP_ERR_NO_MEMORY;

    free(t);
    return err;
}

/* dir, a real directory (never a symbolic link), made 0700 when missing and owned as *owner says
 * (NULL: as made; then *owner is filled from it). */
static rp_err_t agent_subdir(const char *dir, struct stat *owner, bool made_by_us)
{
    struct stat st;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return RP_ERR_IO;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return RP_ERR_INVALID_ARG;
    if (!made_by_us) {
        *owner = st;
        return RP_OK;
    }
    if ((st.st_uid != owner->st_uid || st.st_gid != owner->st_gid) &&
        lchown(dir, owner->st_uid, owner->st_gid) != 0)
        return RP_ERR_IO;
    return RP_OK;
}

/*
 * The agent's own copy of the targets, kept before the targets are migrated: a state directory
 * from before S/agent/ held it at S/update/targets.json, the very file the monitor's copy is
 * migrated from, and removed (docs/operations.md, "Upgrading devices"). Copied to
 * S/agent/update/targets.json when none is there, never over one (a newer copy wins), owned as
 * S/agent/ is (a new S/agent/ is the monitor's to hand to --agent-user after the migration), mode
 * 0600, synced before the older file can go. A cut before the copy's link leaves the older file
 * alone, copied at the next start; after it, the copy stands and is not made again. The agent runs
 * only after the monitor's migration (or is the one running it), so nothing changes S/agent/
 * meanwhile; a symbolic link where a directory should be is refused.
 */
static rp_err_t keep_agent_targets(const char *state_dir, const char *before)
{
    char dir[PATH_MAX], sub[PATH_MAX], to[PATH_MAX];
    struct stat owner, st;
    rp_atomic_file_t f;
    uint8_t *data = NULL;
    size_t len = 0;
    rp_err_t err;

    if (state_file(state_dir, RP_AGENT_DIR, dir, sizeof(dir)) != RP_OK ||
        state_file(state_dir, RP_AGENT_DIR "/update", sub, sizeof(sub)) != RP_OK ||
        state_file(state_dir, RP_AGENT_DIR "/" RP_UPDATE_TARGETS_BEFORE, to, sizeof(to)) != RP_OK)
        return RP_ERR_INVALID_ARG;
    if (lstat(to, &st) == 0 || lstat(before, &st) != 0)
        return RP_OK; /* the agent's copy is there, or there is nothing to copy */
    err = rp_read_file(before, RP_MD_MAX, &data, &len);
    if (err == RP_OK)
        err = agent_subdir(dir, &owner, false);
    if (err == RP_OK)
        err = agent_subdir(sub, &owner, true);
    if (err == RP_OK && owner.st_uid != geteuid() && geteuid() != 0)
        err = RP_ERR_INVALID_ARG; /* another user's directory: not this process's to write in */
    if (err == RP_OK && (err = rp_atomic_begin(&f, to, 0600, 1)) == RP_OK) {
        err = rp_atomic_write(&f, data, len);
        if (err == RP_OK && fchown(f.fd, owner.st_uid, owner.st_gid) != 0)
            err = RP_ERR_IO;
        if (err == RP_OK)
            err = rp_atomic_commit(&f, 1);
        else
            rp_atomic_abort(&f);
    }
    free(data);
    if (err == RP_OK)
        rp_log_info("%s: the agent's own copy, kept by a version before %s/, copied there", before,
                    dir);
    else if (err != RP_ERR_EXISTS)
        rp_log_error("%s: the agent's own copy cannot be kept in %s (%s): the targets are not "
                     "migrated",
                     before, to, rp_strerror(err));
    return err == RP_ERR_EXISTS ? RP_OK : err;
}

rp_err_t rp_update_migrate(const char *state_dir, const char *device_id,
                           const rp_update_migration_t *how)
{
    char before[PATH_MAX], path[PATH_MAX];
    struct migrate_ctx m = {how, device_id, calloc(1, sizeof(rp_md_root_t))};
    rp_err_t err = m.root != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    if (err == RP_OK &&
        (err = state_file(state_dir, ROOT_FILE_BEFORE, before, sizeof(before))) == RP_OK &&
        (err = state_file(state_dir, ROOT_FILE, path, sizeof(path))) == RP_OK)
        err = rp_update_migrate_file(how, before, path, 0644, check_root, &m);
    /* The targets: by the root kept now (migrated or not); without one, they wait. */
    if (err == RP_OK && (err = rp_update_root(state_dir, m.root)) == RP_ERR_NOT_FOUND)
        err = RP_OK;
    else if (err == RP_OK &&
             (err = state_file(state_dir, RP_UPDATE_TARGETS_BEFORE, before, sizeof(before))) ==
                 RP_OK &&
             (err = state_file(state_dir, RP_UPDATE_TARGETS_FILE, path, sizeof(path))) == RP_OK &&
             (err = keep_agent_targets(state_dir, before)) == RP_OK)
        err = rp_update_migrate_file(how, before, path, 0600, check_targets, &m);
    free(m.root);
    return err;
}

rp_err_t rp_update_migrate_all(const char *state_dir, const char *device_id,
                               const rp_update_migration_t *how)
{
    rp_err_t err = rp_update_migrate(state_dir, device_id, how);

    if (err == RP_OK) /* the capability is checked with the root migrated */
        err = rp_capability_migrate(state_dir, device_id, how);
    if (err != RP_OK)
        rp_log_warn("%s: what an older version kept is not all migrated (said above)", state_dir);
    return err;
}
