/*
 * The device's components and their A/B slots: what runs, installing a new image, and putting
 * things right after a crash or power cut.
 *
 * Each component (an app, the system image, firmware for an attached MCU) lives in
 * S/components/NAME/: two slots, a.img and b.img, and `state` (JSON, replaced atomically), which
 * says which slot is active, which one is on trial, and how the last update went. An install
 * writes the inactive slot, verifies it, switches to it on trial, checks that it is healthy, and
 * only then confirms it and raises the component's security counter in the root of trust. Any cut
 * before the confirmation leaves the old slot active: rp_components_recover() rolls an unconfirmed
 * trial back, as MCUboot reverts an unconfirmed swap.
 *
 * The image keys the device trusts are its update root's images role (update.h) once it has one,
 * and until then the PEM public keys in S/image-keys/.
 *
 * The state also carries counter_binding: which security counter is the component's is
 * authenticated by the root of trust (binding.h), checked before any install or recovery uses it.
 * (This file moved from device/agent/ to the monitor, which owns the slots; the agent still links
 * it until it asks the monitor instead.)
 */
#ifndef RAMPART_MONITOR_SLOTS_H
#define RAMPART_MONITOR_SLOTS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent.h"
#include "rampart/component.h"
#include "rampart/image.h"
#include "rampart/update_state.h"

#define RP_COMPONENTS_MAX 16
#define RP_IMAGE_KEYS_MAX 16
#define RP_SLOT_DETAIL_MAX 255

/* A component's persistent state. */
#define RP_SLOT_NONCE_LEN 32 /* a handed trial's nonce */

typedef struct rp_component {
    char name[RP_COMPONENT_NAME_MAX + 1];
    int active;                    /* 0 (a) or 1 (b); -1 before the first install */
    int trial;                     /* the slot being tried, -1 for none */
    unsigned seccnt_index;         /* its security counter in the root of trust */
    rp_update_state_t last_result; /* RP_UPDATE_NONE before any update */
    char last_detail[RP_SLOT_DETAIL_MAX + 1];
    char last_version[48]; /* of the image the last update was about */
    int64_t last_at;
    /* What was confirmed healthy: the digest of the image confirmed in each slot ("" when the
     * slot holds nothing confirmed: recovery never falls back to it), and the newest version
     * ever confirmed (no install goes below it, whatever the slots hold now). */
    char confirmed[2][2 * RP_SHA256_LEN + 1];
    char confirmed_version[48];
    char binding[2 * RP_SHA256_LEN + 1]; /* its counter index's MAC (binding.h); "" for none */
    /* A trial handed over (rp_install_result_t.nonce): the nonce its evidence must be over, hex
     * ("" for none; kept only while it is on trial). */
    char trial_nonce[2 * RP_SLOT_NONCE_LEN + 1];
} rp_component_t;

/* What verification found in a slot. */
typedef struct rp_slot_image {
    bool valid; /* verifies with a trusted key, and its security counter is at the floor or above */
    rp_err_t error;
    char version[48];
    rp_image_version_t ver;
    bool has_security_counter; /* false: the image has none ("none"; the floor sees it as 0) */
    uint32_t security_counter;
    uint8_t digest[RP_SHA256_LEN];
    rp_image_type_t type;
    uint64_t payload_off, payload_len;
} rp_slot_image_t;

/* How an app's trial runs: healthy or not, and why (detail). */
typedef rp_err_t (*rp_trial_fn)(void *ctx, const char *component, int slot,
                                const rp_slot_image_t *img, int seconds, bool *healthy,
                                char *detail, size_t cap);

/* Whether an image that verified may be installed as component (the monitor's: is it one the
 * device's signed targets name?); when not, why says so (it becomes the refusal's detail). */
typedef bool (*rp_install_gate_fn)(void *ctx, const char *component, const rp_slot_image_t *img,
                                   char *why, size_t cap);

/* Hand the verified image at slot_path to where the component runs and say how it went:
 * RP_ERR_NOT_FOUND when the component does not run elsewhere (the usual health check applies);
 * else *healthy, and *unhealthy the outcome when it is not (refused, rolled back, failed; or
 * RP_UPDATE_HANDED: it is left on trial, rp_install answers handed, rp_install_end ends it). */
typedef rp_err_t (*rp_external_fn)(rp_agent_t *a, const char *name, const char *slot_path,
                                   const char *version, bool *healthy, rp_update_state_t *unhealthy,
                                   char *detail, size_t cap);

typedef struct rp_install_opts {
    int health_seconds; /* how long a new app must stay up (it may say sooner that it is ready);
                         * 0: RP_APP_HEALTH_SECONDS */
    /* How an app's trial runs: the monitor's in its compartment (apps.h), the agent's as a plain
     * process (rp_supervise_trial). NULL: an app is refused (never installed untried). */
    rp_trial_fn trial;
    void *trial_ctx;
    /* The monitor's: asked once the image verifies, before anything is written. NULL: any. */
    rp_install_gate_fn gate;
    void *gate_ctx;
    /* A component that runs on another processor (an MCU beside the device) is handed over and
     * judged there: the single-process agent's rp_mcu_health (mcu.h); the monitor's says handed
     * (its agent relays it, serve.c). NULL: none. */
    rp_external_fn external;
} rp_install_opts_t;

typedef struct rp_install_result {
    rp_update_state_t state; /* installed, refused, rolled_back, failed, unchanged; handed */
    char detail[RP_SLOT_DETAIL_MAX + 1];
    /* Handed (an external that said RP_UPDATE_HANDED): the trial slot, its image's digest, and
     * the nonce (fresh, kept in the component's state) the evidence that ends it must be over. */
    int slot;
    uint8_t digest[RP_SHA256_LEN];
    uint8_t nonce[RP_SLOT_NONCE_LEN];
} rp_install_result_t;

/* Load a component's state; RP_ERR_NOT_FOUND when it was never installed. */
rp_err_t rp_component_load(const char *state_dir, const char *name,
                           rp_component_t *c) RP_MUST_CHECK;
/* The installed components' names, sorted. OUT: names (each RP_COMPONENT_NAME_MAX + 1), *n. */
rp_err_t rp_component_names(const char *state_dir, char names[][RP_COMPONENT_NAME_MAX + 1],
                            size_t max, size_t *n) RP_MUST_CHECK;
/* The path of a component's slot image. */
rp_err_t rp_slot_path(const char *state_dir, const char *name, int slot, char *out,
                      size_t cap) RP_MUST_CHECK;

/* Verify a slot (or any image file) against the trusted keys and the component's security
 * counter floor. OUT: *img (valid says whether it passed; error why not). */
rp_err_t rp_slot_check(rp_agent_t *a, const rp_component_t *c, const char *path,
                       rp_slot_image_t *img) RP_MUST_CHECK;

/* Write an app's payload (from its verified slot image) out as an executable: for a trial
 * (trial.run) or for the supervisor (a.run, b.run); app.h starts it. OUT: exe. */
rp_err_t rp_app_prepare(const char *state_dir, const char *name, int slot,
                        const rp_slot_image_t *img, bool trial, char exe[PATH_MAX]) RP_MUST_CHECK;

/* Add a trusted image key (PEM public key) to S/image-keys/. */
rp_err_t rp_trust_image_key(const char *state_dir, const char *pem_path) RP_MUST_CHECK;

/*
 * Install the image at image_path as component name. OUT: *res says how it went; a refusal or a
 * rollback is RP_OK with res->state saying so, and is recorded in the component's state. An error
 * is returned only when the device could not do its part (I/O, the root of trust).
 */
rp_err_t rp_install(rp_agent_t *a, const char *name, const char *image_path,
                    const rp_install_opts_t *opts, rp_install_result_t *res) RP_MUST_CHECK;

/* Whether the trial of component name (its image's digest; the nonce handed with it) was
 * installed where it runs, by that place's own evidence: RP_OK, or why not (said in why). */
typedef rp_err_t (*rp_install_proof_fn)(void *ctx, const char *name,
                                        const uint8_t digest[RP_SHA256_LEN],
                                        const uint8_t nonce[RP_SLOT_NONCE_LEN], char *why,
                                        size_t cap);

/* End an install its external handed over (res->state RP_UPDATE_HANDED: the component left on
 * trial) with how it went elsewhere: state installed (the trial slot becomes active, the counter
 * rises to its image's) or refused, rolled_back or failed (the trial dropped), detail recorded.
 * digest: the handed image's, which the trial slot must still hold and verify. RP_ERR_NOT_FOUND
 * when no such trial is there. (A trial no verdict ends is rolled back by recovery.)
 * proof (not NULL): installed only when it holds; when it does not, the trial is rolled back
 * (as at a missed deadline), res->detail says why, and the result is RP_ERR_DENIED. */
rp_err_t rp_install_end(rp_agent_t *a, const char *name, const uint8_t *digest,
                        rp_update_state_t state, const char *detail, rp_install_proof_fn proof,
                        void *proof_ctx, rp_install_result_t *res) RP_MUST_CHECK;

/* Record an update's outcome that never reached rp_install (a download refused: too long, not
 * the image the metadata names) in the component's state, making the state if need be. */
rp_err_t rp_component_note(rp_agent_t *a, const char *name, rp_update_state_t result,
                           const char *version, const char *detail) RP_MUST_CHECK;

/* At a start (the monitor's, or the agent's run without one), holding the slots' lock, which
 * every writer of a component's state holds: the temporaries a cut left of each component's
 * state (rp_atomic_sweep) are removed, and said. */
void rp_components_sweep(const char *state_dir);
/*
 * At start, for every component: roll back a trial that was not confirmed (the device was cut
 * during an update), fall back to the other slot when the active one does not verify, and raise
 * the security counter to the active image's if a cut came between confirming and raising it.
 * OUT: *unbootable, the number of components left without a verified image (may be NULL).
 */
rp_err_t rp_components_recover(rp_agent_t *a, int *unbootable) RP_MUST_CHECK;
/* The same, saying why the install was cut in each rolled-back component's state (why: NULL is
 * "the device restarted before the update was confirmed"). */
rp_err_t rp_components_recover_cut(rp_agent_t *a, int *unbootable, const char *why) RP_MUST_CHECK;
/* The same for the component name alone (a tampered one: RP_ERR_BAD_SIGNATURE, nothing done). */
rp_err_t rp_component_recover_cut(rp_agent_t *a, const char *name, bool *bootable,
                                  const char *why) RP_MUST_CHECK;

/*
 * Removing an app component (the monitor's APP_REMOVE; docs/monitor.md). Its state stays, as a
 * tombstone: no slot, nothing confirmed, its security counter index and binding kept (the counter
 * cannot go down, and a reinstall of the same component takes it up again, at least at its
 * floor). begin marks the removal (S/components/NAME/removing, durable) and then writes the
 * tombstone: from there the component runs nothing. finish deletes its slot images and every
 * other file but the state, then the mark. A cut anywhere leaves the mark, and the monitor's next
 * start finishes (rp_component_removing); begin and finish may each be run again.
 */
rp_err_t rp_component_remove_begin(rp_agent_t *a, const char *name, const char *why) RP_MUST_CHECK;
rp_err_t rp_component_remove_finish(rp_agent_t *a, const char *name) RP_MUST_CHECK;
bool rp_component_removing(const char *state_dir, const char *name);

#endif /* RAMPART_MONITOR_SLOTS_H */
