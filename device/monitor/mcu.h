/*
 * Firmware for a microcontroller beside the device (docs/mcu.md, "Deploying firmware"): the one
 * owner of the bridge between a component's install (slots.h) and the MCU's own secure boot
 * stage. A component attached to an MCU (`rampart-agent mcu attach`, kept in S/mcu/NAME.json)
 * is installed as any other (verified, written into its inactive slot, on trial), and its trial
 * is the MCU's: the relay command writes the image into the MCU's secondary slot and resets the
 * board, whose boot stage verifies it with its own key and counter and swaps it in on trial; a
 * second reset lets the boot stage confirm it (the app confirmed itself) and raise its security
 * counter, or revert it. What the boot stage says decides the install's outcome.
 *
 * The relay contract (scripts/mcu-run is one): RELAY [--slot1 IMAGE] [--nonce HEX] writes IMAGE,
 * when given, into the secondary slot, resets the board and prints the boot stage's lines
 * ("boot: ...") on standard output or standard error, ending when the board stopped or settled;
 * with --nonce, the firmware asks the board's attestation service for evidence over that nonce
 * and prints it ("app: evidence HEX": an EAT, docs/mcu.md).
 *
 * Under rampart-monitor the agent relays, and its word is not enough: the board's attestation key
 * is pinned when root attaches the component (S/mcu/NAME.json), and an install is confirmed only
 * with the board's evidence, over the monitor's nonce, that it runs the image
 * (rp_mcu_evidence_check).
 */
#ifndef RAMPART_MONITOR_MCU_H
#define RAMPART_MONITOR_MCU_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/crypto.h"
#include "rampart/error.h"
#include "rampart/update_state.h"
#include "slots.h"

#define RP_MCU_RELAY_ARGS_MAX 16   /* the relay's argv, its program first */
#define RP_MCU_RELAY_FILE_MAX 8192 /* S/mcu/NAME.json */
#define RP_MCU_LINE_MAX 256        /* a boot line longer than this is not one of the boot stage's */
#define RP_MCU_REASON_MAX 160
#define RP_MCU_EVIDENCE_MAX 2048   /* the board's evidence (an EAT), at most */
/* The firmware's evidence line: "app: evidence " and the evidence in hex. */
#define RP_MCU_EVIDENCE_PREFIX "app: evidence "
#define RP_MCU_OUTPUT_LINE_MAX (sizeof(RP_MCU_EVIDENCE_PREFIX) - 1 + 2 * RP_MCU_EVIDENCE_MAX)
/* The component the board's evidence measures: what its boot stage started. */
#define RP_MCU_EVIDENCE_COMPONENT "firmware"

/* A component's relay: argv[0] an absolute path, then its arguments. */
typedef struct rp_mcu_relay {
    char *argv[RP_MCU_RELAY_ARGS_MAX + 5]; /* room for --slot1 IMAGE --nonce HEX and the NULL */
    int argc;
    char *storage; /* what argv points into */
    /* The board's lock, S/agent/mcu/NAME.lock ("": none): rp_mcu_install holds it (flock) across
     * its two boots, and the relay inherits it, so that two relays never drive one board at once,
     * not even a relay that outlived its runner. */
    char lock[PATH_MAX];
} rp_mcu_relay_t;

/* What one boot of the board said (rp_mcu_boot_line over each line). */
typedef struct rp_mcu_boot {
    bool booted; /* "boot: slot0 version V counter N: booting" */
    char version[48];
    uint32_t counter; /* the booted image's security counter */
    bool has_stored;  /* "boot: [slot0 is on trial ...; ]security counter N" */
    uint32_t stored;  /* the counter in the MCU's secure storage */
    bool trial;       /* booted on trial: the counter waits for its confirmation */
    bool confirmed;   /* a trial confirmed by its image: the counter raised */
    bool reverted;    /* a trial that did not confirm itself: the previous image back */
    char refused[RP_MCU_REASON_MAX];       /* "boot: refused: R": nothing boots */
    char slot1_refused[RP_MCU_REASON_MAX]; /* "boot: slot1 refused: R" */
    char verdict[RP_MCU_LINE_MAX];         /* the verdict line, as the board said it */
    uint8_t evidence[RP_MCU_EVIDENCE_MAX]; /* "app: evidence HEX", decoded (the last one) */
    size_t evidence_len;                   /* 0: none */
} rp_mcu_boot_t;

/* Whether component name is attached to an MCU: RP_OK with *r (free with rp_mcu_relay_free),
 * RP_ERR_NOT_FOUND when it is not, RP_ERR_MALFORMED when its file is corrupt (said). */
rp_err_t rp_mcu_relay_load(const char *state_dir, const char *name,
                           rp_mcu_relay_t *r) RP_MUST_CHECK;
void rp_mcu_relay_free(rp_mcu_relay_t *r);
/* Whether component name is attached to an MCU, without reading its relay (the monitor, which
 * starts no relay, hands such an install to its agent): RP_OK when S/mcu/NAME.json is there,
 * RP_ERR_NOT_FOUND when it is not, another error when that cannot be told. */
rp_err_t rp_mcu_attached(const char *state_dir, const char *name) RP_MUST_CHECK;
/* Attach component name to the MCU the relay argv[0..argc) reaches (argv[0] absolute, at most
 * RP_MCU_RELAY_ARGS_MAX words), key[0..key_len) the board's attestation key (a P-256
 * SubjectPublicKeyInfo, DER; NULL: none, and under the monitor no install of it is confirmed);
 * kept atomically in S/mcu/NAME.json and S/mcu/NAME.key (S/mcu/ 0755, the files 0644: under the
 * monitor the agent's user runs the relay; root's: the agent cannot swap the key).
 * RP_ERR_BAD_KEY: not such a key. */
rp_err_t rp_mcu_relay_save(const char *state_dir, const char *name, char *const argv[], int argc,
                           const uint8_t *key, size_t key_len) RP_MUST_CHECK;

/* The board's attestation key pinned at attach (S/mcu/NAME.key): RP_OK with key[0..*len),
 * RP_ERR_NOT_FOUND when none is, RP_ERR_MALFORMED (said) when it is not a P-256 key. */
rp_err_t rp_mcu_board_key(const char *state_dir, const char *name,
                          uint8_t key[RP_PUBKEY_DER_MAX], size_t *len) RP_MUST_CHECK;

/* Whether evidence[0..len) proves that the board component name is attached to runs the image
 * whose digest is given, now: an EAT that verifies with the board's key pinned at attach
 * (rp_eat_verify), over nonce[0..nonce_len), whose firmware measurement
 * (RP_MCU_EVIDENCE_COMPONENT) is that digest. RP_OK, or RP_ERR_DENIED (or the error reading the
 * attachment) with why said. */
rp_err_t rp_mcu_evidence_check(const char *state_dir, const char *name,
                               const uint8_t digest[RP_SHA256_LEN], const uint8_t *nonce,
                               size_t nonce_len, const uint8_t *evidence, size_t len, char *why,
                               size_t cap) RP_MUST_CHECK;

/* One line of the board's output into *b (start from a zeroed *b); lines that are not the boot
 * stage's or the firmware's evidence are ignored. len bytes, no newline; any bytes. */
void rp_mcu_boot_line(rp_mcu_boot_t *b, const char *line, size_t len);

/* How long one run of the relay may take (rp_mcu_boot's timeout under rp_mcu_install), and a
 * wait for the board's lock: its process group is killed (SIGKILL) past it. */
#define RP_MCU_RELAY_TIMEOUT_S 120

/* One boot: the relay run (with --slot1 image when image is not NULL, --nonce nonce_hex when that
 * is not NULL), its output parsed into *b. RP_ERR_IO (said in detail) when it could not be run,
 * ran past timeout_s, or said nothing of a boot. */
rp_err_t rp_mcu_boot(const rp_mcu_relay_t *r, const char *image, const char *nonce_hex,
                     int timeout_s, rp_mcu_boot_t *b, char *detail, size_t cap) RP_MUST_CHECK;

/*
 * The MCU's trial of the verified image at path (version its version): handed over (a boot with
 * it in the secondary slot: the boot stage must swap it in on trial), then a boot that must
 * confirm it. OUT: *state, installed (the MCU runs it, confirmed, its counter raised), refused
 * (the boot stage refused it: its reason), rolled_back (it did not confirm itself: reverted) or
 * failed (no relay, no boot); detail says so with what the MCU runs and its verdict line.
 * nonce[0..nonce_len) (8 to RP_EAT_NONCE_MAX bytes; NULL: none): the confirming boot asks the
 * board for evidence over it, kept in evidence[0..*evidence_len) (capacity RP_MCU_EVIDENCE_MAX;
 * *evidence_len 0 when the board gave none). A stop (rp_mcu_stop) finishes it, begins nothing.
 */
void rp_mcu_install(const rp_mcu_relay_t *r, const char *path, const char *version,
                    const uint8_t *nonce, size_t nonce_len, rp_update_state_t *state,
                    char *detail, size_t cap, uint8_t *evidence, size_t *evidence_len);

/*
 * A stop of the agent (`run`'s SIGTERM or SIGINT, from its signal handler; async-signal-safe), and
 * what it does to the relay: the one place that says so, the same in both modes (single-process,
 * where `run` runs rp_mcu_install itself, and under rampart-monitor, where its relay runner does
 * and is told of the stop: device/agent/mcu_runner.h). A relay under way is finished, not cut,
 * within RP_MCU_RELAY_TIMEOUT_S of the stop, and nothing new is begun: a wait for the board's lock
 * ends (nothing handed over); a boot under way goes on to its end (at most its own 120 s, which
 * began before the stop); the confirming boot after it runs, with what is left of
 * RP_MCU_RELAY_TIMEOUT_S from the stop as its timeout (none left: not begun, and the board's next
 * power-up confirms or reverts the trial: docs/mcu.md "Upgrades"). So `run` waits for the relay's
 * outcome, gives it (under the monitor, the verdict), and exits; its unit's TimeoutStopSec
 * (150 s, dist/systemd/rampart-agent.service) is longer, so that systemd, which kills the rest of
 * the unit the moment `run` exits (KillMode=mixed), finds the relay ended.
 */
void rp_mcu_stop(void);

/* The single-process agent's rp_install_opts_t.external (slots.h): a component attached to an MCU
 * is installed there (rp_mcu_install); RP_ERR_NOT_FOUND when the component is not attached. Never
 * the monitor's: its seccomp filter starts no program (it hands the trial to its agent, whose
 * relay runner runs rp_mcu_install: device/agent/mcu_runner.h). */
rp_err_t rp_mcu_health(rp_agent_t *a, const char *name, const char *slot_path, const char *version,
                       bool *healthy, rp_update_state_t *unhealthy, char *detail,
                       size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_MONITOR_MCU_H */
