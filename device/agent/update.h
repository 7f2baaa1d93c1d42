/*
 * The device's side of signed updates (docs/updates.md): it keeps the newest root metadata and
 * targets it accepted in S/update/, fetches newer ones from the service over mutual TLS, and
 * installs what its targets name, each image downloaded (resuming) into S/update/downloads/ and
 * checked against the metadata before rp_install() checks it against the root's image keys.
 */
#ifndef RAMPART_AGENT_UPDATE_H
#define RAMPART_AGENT_UPDATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "agent.h"
#include "rampart/metadata.h"
#include "slots.h"

#define RP_UPDATE_IMAGE_MAX (256ull * 1024 * 1024) /* the largest image a device downloads */

/* Take root as the device's first root of update trust: well formed and signed by its own root
 * keys (rp_md_root_accept). (Replaces no newer root.) */
rp_err_t rp_update_trust_root(const char *state_dir, const char *path) RP_MUST_CHECK;

/*
 * Take the root metadata doc (an envelope unpacked: rp_md_unpack, or the monitor's binary form)
 * as the device's root of update trust, kept in S/update/root.bin (its kept binary form,
 * rp_md_kept_encode; 0644: public). operator (root, provisioning the device): a first root, signed
 * by its own keys, replacing any kept root not newer. Otherwise (the agent, through the monitor's
 * TRUST_ROOT): only the next version of the kept root, signed by its keys (checked before parse
 * reads the payload) as well as its own; a device without a root refuses. parse reads the
 * payload (rp_md_parse in the agent; the monitor's asks rampart-unpack). detail says why on a
 * refusal. OUT: *version, the kept root's.
 */
rp_err_t rp_update_take_root(const char *state_dir, const rp_md_signed_t *doc, bool from_operator,
                             rp_md_parse_fn parse, void *ctx, uint64_t *version, char *detail,
                             size_t cap) RP_MUST_CHECK;

/* The root the device keeps (S/update/root.bin): accepted when it was kept, and still signed by
 * its own keys, whatever its age; never parsed again. RP_ERR_NOT_FOUND when the device has none;
 * a corrupt one is said, naming the file and the fix (a root an older version kept as
 * S/update/root.json is refused until it is taken again: RP_ERR_MALFORMED). OUT: *root. */
rp_err_t rp_update_root(const char *state_dir, rp_md_root_t *root) RP_MUST_CHECK;

/* A kept file at path, bounded. RP_ERR_NOT_FOUND when there is none; otherwise an error is said
 * (rp_update_kept_corrupt). OUT: *env (malloc'd, NUL-terminated), *len. */
rp_err_t rp_update_load_kept(const char *path, bool is_root, char **env, size_t *len) RP_MUST_CHECK;
/* Say that a kept document is corrupt: which file, why, and what to do. */
void rp_update_kept_corrupt(const char *path, bool is_root, const char *why);
/* A document kept in its kept binary form (rp_md_kept_decode) at path: read, or written
 * atomically with mode (doc: the document's binary form, n bytes, as parse gave it).
 * RP_ERR_NOT_FOUND when none is kept (detail: "none kept"). */
rp_err_t rp_update_kept_read(const char *path, rp_md_kind_t kind, rp_md_signed_t *s, void *doc,
                             char *detail, size_t cap) RP_MUST_CHECK;
rp_err_t rp_update_kept_write(const char *path, const rp_md_signed_t *s, const uint8_t *doc,
                              size_t n, mode_t mode) RP_MUST_CHECK;

/* How a copy of the targets is kept: the monitor's in the kept binary form
 * (rp_update_kept_targets, rp_update_keep_targets), the agent's own as the JSON envelope the
 * service signed (update.c); parse reads a new document's payload. */
typedef struct rp_update_copy {
    rp_err_t (*kept)(const char *path, const char *device_id, const rp_md_root_t *root,
                     bool expired_ok, rp_md_targets_t *out, char *detail, size_t cap);
    rp_err_t (*keep)(const char *path, const rp_md_signed_t *doc, const uint8_t *bin, size_t n);
    rp_md_parse_fn parse;
    void *ctx;
} rp_update_copy_t;

/*
 * Take the targets metadata doc (unpacked) as the device's newest and keep it at kept_path (as
 * copy keeps it): signed by root's online keys (checked before the payload is parsed), for
 * device_id, not older than the targets kept there (when root's online keys signed those: what a
 * replaced online key signed does not count), not expired (rp_md_targets_accept_with). The one
 * owner of those rules: the agent's update check (its copy, S/agent/update/targets.json) and the
 * monitor's TARGETS (its own, RP_UPDATE_TARGETS_FILE) both call it. A refusal changes nothing;
 * detail says why. OUT: *out.
 */
rp_err_t rp_update_take_targets(const char *kept_path, const char *device_id,
                                const rp_md_root_t *root, const rp_md_signed_t *doc,
                                const rp_update_copy_t *copy, rp_md_targets_t *out, char *detail,
                                size_t cap) RP_MUST_CHECK;
/* The targets kept at kept_path in the kept binary form, checked again as rp_update_take_targets
 * took them (expired_ok: whatever their age). RP_ERR_NOT_FOUND when none are kept; detail says
 * why on a refusal. */
rp_err_t rp_update_kept_targets(const char *kept_path, const char *device_id,
                                const rp_md_root_t *root, bool expired_ok, rp_md_targets_t *out,
                                char *detail, size_t cap) RP_MUST_CHECK;
/* Keep the targets accepted from doc (bin: their binary form, n bytes, as parse gave it) at
 * kept_path in the kept binary form (0600). */
rp_err_t rp_update_keep_targets(const char *kept_path, const rp_md_signed_t *doc,
                                const uint8_t *bin, size_t n) RP_MUST_CHECK;
/*
 * Migrating what an older version kept as JSON envelopes (S/update/root.json, targets.json,
 * S/capability.json) to the kept binary form, once, by the monitor at its start, or by the agent
 * in single-process mode (docs/monitor.md, "Upgrading"). unpack reads an envelope into its signed
 * form (the monitor's asks rampart-unpack: no JSON is parsed with privilege); check verifies it as
 * the document it is (arg: its own) and gives its binary form (bin, RP_MD_DOC_BIN_MAX bytes; *n).
 * rp_update_migrate_file: with path (the binary form) already kept, a leftover before is removed;
 * otherwise before is read, checked, path written atomically (mode), and only then before removed:
 * a cut at any point leaves one of the two usable, and the next start finishes. RP_OK with nothing
 * to do; a refusal is logged naming before and left as it is (what reads path then refuses, never
 * "none kept").
 */
typedef rp_err_t (*rp_update_unpack_fn)(void *ctx, const char *env, size_t len, rp_md_signed_t *s,
                                        char *detail, size_t cap);
typedef rp_err_t (*rp_update_check_fn)(void *arg, const rp_md_signed_t *s, uint8_t *bin, size_t *n,
                                       char *detail, size_t cap);
typedef struct rp_update_migration {
    rp_update_unpack_fn unpack;
    void *unpack_ctx;
    rp_md_parse_fn parse;
    void *parse_ctx;
} rp_update_migration_t;
rp_err_t rp_update_migrate_file(const rp_update_migration_t *how, const char *before,
                                const char *path, mode_t mode, rp_update_check_fn check,
                                void *arg) RP_MUST_CHECK;
/* The root (by its own keys' threshold, whatever its age), then the monitor's targets (by the
 * root migrated, whatever their age). A state directory from before S/agent/ kept the agent's own
 * copy of the targets at S/update/targets.json, the file migrated: it is first copied to
 * S/agent/update/targets.json when none is there (owned as S/agent/ is; a copy that cannot be made
 * leaves the targets unmigrated). */
rp_err_t rp_update_migrate(const char *state_dir, const char *device_id,
                           const rp_update_migration_t *how) RP_MUST_CHECK;
/* Both migrations at the start of the one process that holds the root of trust: the root and
 * the targets (rp_update_migrate), then the capability (rp_capability_migrate), a refusal said
 * (naming the file, which stays refused: nothing for the caller to add). The monitor's how asks
 * rampart-unpack; in single-process mode (no privilege split: the agent is the one process) the
 * agent's is rp_update_migrate_here. */
rp_err_t rp_update_migrate_all(const char *state_dir, const char *device_id,
                               const rp_update_migration_t *how);
/* The envelope and the payload read in this process (rp_md_unpack, rp_md_parse). */
extern const rp_update_migration_t rp_update_migrate_here;
/* An older version's copy of the monitor's targets, S/update/targets.json: while it is there
 * (not migrated), the monitor takes no targets (it could not refuse older ones). */
#define RP_UPDATE_TARGETS_BEFORE "update/targets.json"

/* The root the device keeps, in S (root's, 0644: public): rp_update_root reads it. */
#define RP_UPDATE_ROOT_FILE "update/root.bin"
/* The monitor's copy of the targets, in S (root's). */
#define RP_UPDATE_TARGETS_FILE "update/targets.bin"
/* Whether img (verified: rp_slot_check) is the image target t names: its version, MCUboot digest
 * and security counter. (The file's SHA-256 and size are the caller's to compare: t->image,
 * t->size.) */
bool rp_update_target_matches(const rp_md_target_t *t, const rp_slot_image_t *img);

/* The image keys of the device's root, if it has one. OUT: *role; *have_root. */
rp_err_t rp_update_image_keys(const char *state_dir, rp_md_role_t *role,
                              bool *have_root) RP_MUST_CHECK;

/* Install the image at path as component name: through the monitor (INSTALL, the image as a
 * descriptor) when it serves the device, otherwise rp_install() here. Firmware for an MCU is
 * answered handed by the monitor and relayed here (rp_mcu_hand_over, mcu_runner.h). */
rp_err_t rp_agent_install(rp_agent_t *a, const char *name, const char *path,
                          const rp_install_opts_t *opts, rp_install_result_t *res) RP_MUST_CHECK;
/* Recovery (rp_components_recover): through the monitor (RECOVER), or here. */
rp_err_t rp_agent_recover(rp_agent_t *a, int *unbootable) RP_MUST_CHECK;
/* What the image at path says of itself: verified in single-process mode (rp_slot_check);
 * through the monitor, unverified (the version, counter and digest its header and TLVs give; all
 * zero when it is no image), since the monitor verifies what it installs. OUT: *img. */
rp_err_t rp_agent_image_identity(rp_agent_t *a, const char *name, const char *path,
                                 rp_slot_image_t *img) RP_MUST_CHECK;
/* A memory file holding doc in its binary form (rp_md_signed_encode), for TRUST_ROOT and
 * TARGETS: the monitor parses no JSON it has not verified. OUT: *fd (close it). */
rp_err_t rp_update_signed_fd(const rp_md_signed_t *doc, int *fd) RP_MUST_CHECK;

/*
 * What S/agent/update/downloads keeps is exactly what a check may resume: the partial image of
 * each of keep's targets (named by its image ID) and its partial delta (ID.delta). Every other
 * entry goes: the partials of images no target names any more, the temporaries a cut left (a
 * delta's rebuild, ID.tmpXXXXXX), anything else. keep NULL (the agent's start, before any
 * targets are taken): only what no check could resume goes, i.e. every name that is not an
 * image ID or ID.delta. On rp_dir_sweep's terms: links removed, never followed; a directory (the
 * agent makes none there) left; bounded.
 * The caller holds rp_agent_lock_slots: every writer of that directory (an update check) holds it
 * too, so no file a live operation owns is removed. dir: the directory, opened; it stays open.
 * OUT: *removed, how many entries went (may be NULL).
 */
rp_err_t rp_update_sweep_dir(int dir, const rp_md_targets_t *keep, int *removed) RP_MUST_CHECK;

/* rp_update_sweep_dir on this agent's S/agent/update/downloads, and rp_atomic_sweep of the kept
 * targets' temporaries in S/agent/update, each opened without following a link below S/agent;
 * none there is nothing to do. What it removes, and what it cannot, is logged (no
 * reason to stop a check). The caller holds rp_agent_lock_slots. */
void rp_update_sweep(const rp_agent_t *a, const rp_md_targets_t *keep);

typedef struct rp_update_summary {
    int installed, unchanged, refused, rolled_back, failed; /* components */
    char detail[512]; /* why the check itself stopped, if it did */
} rp_update_summary_t;

/*
 * One check: newer roots (each signed by the previous root's keys and its own), then the targets
 * (signed by the root's online keys, for this device, not older than the last ones, not expired:
 * rp_md_root_accept, rp_md_targets_accept),
 * then each target that is not what runs: downloaded (at most its size), checked against the
 * metadata (SHA-256, size, version, security counter, digest), installed, and reported. A
 * refusal of the metadata is RP_ERR_BAD_SIGNATURE, RP_ERR_ROLLBACK, RP_ERR_EXPIRED or
 * RP_ERR_MALFORMED with summary->detail saying why, and changes nothing.
 */
rp_err_t rp_update_check(rp_agent_t *a, const char *server, const char *server_ca,
                         const rp_install_opts_t *opts, rp_update_summary_t *summary) RP_MUST_CHECK;

#endif /* RAMPART_AGENT_UPDATE_H */
