/*
 * The device's capabilities (docs/compartments.md, "Development mode"): a document signed by the
 * device's tenant for this one device (rp_md_capability_t), checked with the online key its
 * update root names, kept in S/capability.bin until it expires or is removed. With a
 * development capability in force, a device that has an update root (a managed device: it takes
 * images through deployments only) may install images locally, and its evidence says so
 * (dbgstat enabled, the development claim), for its tenant's appraisal policy to decide.
 */
#ifndef RAMPART_AGENT_CAPABILITY_H
#define RAMPART_AGENT_CAPABILITY_H

#include <stdbool.h>

#include "agent.h"
#include "rampart/metadata.h"
#include "update.h"

/* Check the capability in path (for this device, signed as its root says, not expired) and keep
 * it, replacing any kept before. detail says why on a refusal. */
rp_err_t rp_capability_apply(const rp_agent_t *a, const char *path, rp_md_capability_t *out,
                             char *detail, size_t cap) RP_MUST_CHECK;

/* Remove the kept capability (RP_OK when there was none). */
rp_err_t rp_capability_remove(const char *state_dir) RP_MUST_CHECK;

/* Migrate the capability an older version kept (S/capability.json) to S/capability.bin, checked
 * as one applied now (rp_update_migrate_file; after rp_update_migrate: the root it is checked
 * with). A refused one stays where it is, and counts for nothing. */
rp_err_t rp_capability_migrate(const char *state_dir, const char *device_id,
                               const rp_update_migration_t *how) RP_MUST_CHECK;

/*
 * The development capability in force now: checked again on every call (it expires; the root
 * may have changed). OUT: *have; *out when *have. A kept capability that no longer holds is not
 * in force, and why is said once (detail, when not NULL).
 */
rp_err_t rp_capability_development(const char *state_dir, const char *device_id, bool *have,
                                   rp_md_capability_t *out, char *detail, size_t cap) RP_MUST_CHECK;

/*
 * Whether an image the device's targets do not name may be installed (a local install, a
 * sideload): on an unmanaged device (no update root: its image keys are root's S/image-keys/),
 * always; on a managed one, only while a development capability is in force. The one owner of
 * that rule: the agent asks before it installs locally, the monitor at each INSTALL. OUT:
 * *allowed; why (when not allowed).
 */
rp_err_t rp_capability_sideload(const char *state_dir, const char *device_id, bool *allowed,
                                char *why, size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_AGENT_CAPABILITY_H */
