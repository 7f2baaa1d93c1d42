/*
 * The device's side of signed updates (docs/updates.md): it keeps the newest root metadata and
 * targets it accepted in S/update/, fetches newer ones from the service over mutual TLS, and
 * installs what its targets name, each image downloaded (resuming) into S/update/downloads/ and
 * checked against the metadata before rp_install() checks it against the root's image keys.
 */
#ifndef RAMPART_AGENT_UPDATE_H
#define RAMPART_AGENT_UPDATE_H

#include <stdbool.h>

#include "agent.h"
#include "rampart/metadata.h"
#include "slots.h"

#define RP_UPDATE_IMAGE_MAX (256ull * 1024 * 1024) /* the largest image a device downloads */

/* Take root as the device's first root of update trust: well formed and signed by its own root
 * keys (rp_md_root_accept). (Replaces no newer root.) */
rp_err_t rp_update_trust_root(const char *state_dir, const char *path) RP_MUST_CHECK;

/* The root the device keeps (S/update/root.json): accepted when it was kept, and still signed by
 * its own keys, whatever its age. RP_ERR_NOT_FOUND when the device has none; a corrupt one is
 * said, naming the file and the fix. OUT: *root. */
rp_err_t rp_update_root(const char *state_dir, rp_md_root_t *root) RP_MUST_CHECK;

/* The image keys of the device's root, if it has one. OUT: *role; *have_root. */
rp_err_t rp_update_image_keys(const char *state_dir, rp_md_role_t *role,
                              bool *have_root) RP_MUST_CHECK;

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
