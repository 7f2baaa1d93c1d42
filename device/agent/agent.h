/*
 * The device agent's work, apart from its command line: the state directory, boot detection and
 * measurement of the components the device runs, evidence, and attestation with the service.
 *
 * State directory (persisted; names never change; docs/operations.md lists them all), this
 * user's and writable by no one else (rp_agent_check_state_dir):
 *   rot, identity.* , counter.*   the root of trust (rot/)
 *   tcti                          the TPM's TCTI given at provisioning (tpm2)
 *   boot_id                       the kernel boot ID last seen: a change is a new boot
 *   measured                      what was measured this boot, in order (JSON, format 1: agent.c)
 *   components/NAME/              each component's slots and state (slots.h), an app's run
 *   device.crt, ca-chain.pem      the current device certificate and its tenant CA
 *   attestation.json              the last attestation's outcome
 */
#ifndef RAMPART_AGENT_H
#define RAMPART_AGENT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "rampart/eat.h"
#include "rampart/rot.h"

typedef struct rp_agent {
    char state_dir[PATH_MAX];
    rp_rot_t *rot;
    char device_id[RP_DEVICE_ID_SIZE];
} rp_agent_t;

/* Whether the state directory (and its components/, image-keys/, update/) is this user's and
 * not writable by group or others: a refusal is said with the path, the mode found and the fix.
 * RP_ERR_NOT_FOUND when it does not exist. Every command checks it first. */
rp_err_t rp_agent_check_state_dir(const char *state_dir) RP_MUST_CHECK;

/* Open a provisioned state directory. tcti may be NULL: the one saved at provisioning. */
rp_err_t rp_agent_open(rp_agent_t *a, const char *state_dir, const char *tcti) RP_MUST_CHECK;
void rp_agent_close(rp_agent_t *a);

/* Save the TCTI for later commands (tpm2). */
rp_err_t rp_agent_save_tcti(const char *state_dir, const char *tcti) RP_MUST_CHECK;

/*
 * On the first call after the device booted: advance the boot counter and start a new measured
 * list. Then measure every component not yet measured this boot (extend the register, append to
 * the list). Cheap when nothing changed.
 */
rp_err_t rp_agent_measure(rp_agent_t *a) RP_MUST_CHECK;

/* The claims the device makes now for nonce. OUT: *c. */
rp_err_t rp_agent_claims(rp_agent_t *a, const uint8_t *nonce, size_t len,
                         rp_eat_claims_t *c) RP_MUST_CHECK;

/* Signed evidence for nonce. OUT: out[0..*len). */
rp_err_t rp_agent_evidence(rp_agent_t *a, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                           size_t cap, size_t *len) RP_MUST_CHECK;

typedef struct rp_agent_result {
    bool passed;
    long http_status;  /* 0 when the service was not reached */
    long retry_after;  /* seconds the service asked to wait before trying again; 0: none */
    char reason[300];  /* the service's reason, or the transport error */
    int64_t not_after; /* of the new certificate */
    char serial[48];
} rp_agent_result_t;

/*
 * One attestation: nonce, evidence, CSR, verdict; on a pass, device.crt and ca-chain.pem are
 * replaced atomically. RP_OK when the service answered (res says what); an error when it could
 * not be reached or answered nonsense.
 */
rp_err_t rp_agent_attest(rp_agent_t *a, const char *server, const char *ca_file,
                         rp_agent_result_t *res) RP_MUST_CHECK;

/* Whether S/device.crt is this device's certificate (its key the identity key) and
 * S/ca-chain.pem holds a certificate: RP_ERR_NOT_FOUND before the first attestation;
 * RP_ERR_MALFORMED, said naming the file and the fix, when either is corrupt. */
rp_err_t rp_agent_check_certificate(rp_agent_t *a) RP_MUST_CHECK;

/* When the current certificate expires (0 if there is none, or it is corrupt: said). */
int64_t rp_agent_cert_not_after(const rp_agent_t *a);

#endif /* RAMPART_AGENT_H */
