/*
 * The device agent's work, apart from its command line: the state directory, boot detection and
 * measurement of the components the device runs, evidence, and attestation with the service.
 *
 * State directory (persisted; names never change; docs/operations.md lists them all), root's (or,
 * on a single-process development device, this user's) and writable by no one else
 * (rp_agent_check_state_dir):
 *   rot, identity.* , counter.*   the root of trust (rot/)
 *   tcti                          the TPM's TCTI given at provisioning (tpm2)
 *   boot_id                       the kernel boot ID last seen: a change is a new boot
 *   measured                      what was measured this boot, in order (JSON, format 1: agent.c)
 *   components/NAME/              each component's slots and state (slots.h), an app's run
 *   mcu/NAME.json                 component NAME's relay to a microcontroller (mcu.h)
 *   monitor.sock                  rampart-monitor's socket, while it serves S
 *   agent/                        the agent's own files, its user's (0700; the monitor makes it
 *                                 for --agent-user): rp_agent_file() owns each path
 *     device.crt, ca-chain.pem    the current device certificate and its tenant's CAs (its issuer first)
 *     attestation.json            the last attestation's outcome
 *     service.json                the service it last attested with
 *     update/targets.json, update/downloads/   its update metadata and downloads
 *     report.json                 the status report's cursor: the next security event to send
 *     reports/                    the report queue (reportq.h): one file per report, state.json
 *     settings.json               the device group's settings the service gave (settings.h)
 */
#ifndef RAMPART_AGENT_H
#define RAMPART_AGENT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "proto.h"
#include "rampart/eat.h"
#include "rampart/rot.h"

typedef struct rp_agent {
    char state_dir[PATH_MAX];
    rp_rot_t *rot;     /* the root of trust, opened here (single-process mode); NULL through the
                        * monitor */
    char monitor[108]; /* the monitor's socket when it serves S; "" in single-process mode */
    EVP_PKEY *pub;     /* the identity's public key, as the monitor gave it */
    rp_rot_kind_t kind;
    char device_id[RP_DEVICE_ID_SIZE];
} rp_agent_t;

/* The directory of the agent's own files in S, and the one owner of their paths. */
#define RP_AGENT_DIR "agent"

/*
 * Called at least every RP_AGENT_WAIT_TURN_MS while the agent waits on something long: an MCU's
 * relay (the board's lock and each boot's output, rp_mcu_install; under rampart-monitor the relay
 * runner's answer, mcu_runner.c), the monitor's answer to a call (an INSTALL's comes after its
 * trial, up to its health window: client.c), and single-process mode's trial of an app
 * (supervise.c). `run` sets it to its watchdog ping (rp_notify_watchdog, the one owner:
 * rampart/notify.h) once its relay runner is started, so that a wait longer than its unit's
 * WatchdogSec is not taken for a hung daemon (review r13 M4: systemd would abort `run` and kill
 * the rest of the unit, an MCU's relay mid-flash). NULL (the default; the relay runner's, whose
 * pings the unit's NotifyAccess=main would refuse): nothing is called. It ends no wait and changes
 * nothing of what a stop does (rp_mcu_stop, rp_agent_monitor_stop).
 */
void rp_agent_set_wait_hook(void (*tick)(void));
void rp_agent_wait_tick(void); /* the hook's call: nothing when none is set */
#define RP_AGENT_WAIT_TURN_MS 1000

/* Where the agent's file NAME (device.crt, update/targets.json...) is read from: S/agent/NAME,
 * or S/NAME when only that exists (a state directory from before S/agent/). */
rp_err_t rp_agent_file(const rp_agent_t *a, const char *name, char *out, size_t cap) RP_MUST_CHECK;
/* Where it is written: S/agent/NAME, its directories made (0700) if need be. */
rp_err_t rp_agent_file_for_write(const rp_agent_t *a, const char *name, char *out,
                                 size_t cap) RP_MUST_CHECK;
/* The agent's file NAME replaced atomically (0600) by j as compact JSON; takes j (NULL: no
 * memory). */
rp_err_t rp_agent_json_keep(const rp_agent_t *a, const char *name, json_t *j) RP_MUST_CHECK;
/* Make S/agent/ (0700) for uid, gid: the monitor for --agent-user, and provision as root. A
 * symlink or non-directory there is refused. Handed to a user other than root, what it holds goes
 * with it (what single-process mode left as root's), never through a link. */
rp_err_t rp_agent_dir_make(const char *state_dir, uid_t uid, gid_t gid) RP_MUST_CHECK;

/* Whether the state directory (and its components/, image-keys/, update/) is this user's and
 * not writable by group or others: a refusal is said with the path, the mode found and the fix.
 * RP_ERR_NOT_FOUND when it does not exist. Every command checks it first. */
rp_err_t rp_agent_check_state_dir(const char *state_dir) RP_MUST_CHECK;
/* The same as the state directory's owner: S, its components/ (and each component's directory),
 * image-keys/ and update/. What rp_agent_check_state_dir checks for root (the monitor's, which
 * runs as root alone), or for a user whose own S it is. */
rp_err_t rp_agent_check_state_tree(const char *state_dir) RP_MUST_CHECK;

/* Open a provisioned state directory. tcti may be NULL: the one saved at provisioning.
 * tpm_sole_user: the caller is the TPM's one user (rampart-monitor: rp_rot_config_t's
 * sole_user). */
rp_err_t rp_agent_open(rp_agent_t *a, const char *state_dir, const char *tcti,
                       bool tpm_sole_user) RP_MUST_CHECK;
void rp_agent_close(rp_agent_t *a);

/*
 * The mode choice, its one owner: when S/monitor.sock answers, everything privileged goes
 * through rampart-monitor; when it does not and this is root, the agent opens the root of trust
 * itself (single-process mode, for development: logged once); otherwise it refuses, saying how
 * to start the monitor (RP_ERR_NOT_FOUND). Close with rp_agent_close().
 */
rp_err_t rp_agent_attach(rp_agent_t *a, const char *state_dir, const char *tcti) RP_MUST_CHECK;
/* The same choice for the commands that only read what the monitor records (events, app logs):
 * a->monitor is set when S/monitor.sock answers (ask it: the agent's user cannot read root's
 * files); otherwise it is "" and the caller reads the files itself, as root (or a test's state
 * directory) does in single-process mode. No root of trust is opened. */
rp_err_t rp_agent_attach_records(rp_agent_t *a, const char *state_dir) RP_MUST_CHECK;
/* Through the monitor, root acts as the agent's user (S/agent/'s owner), so that every file it
 * leaves there is that user's: supplementary groups, gid and uid are set to it, for good. A no-op
 * in single-process mode or when not root. */
rp_err_t rp_agent_become_agent_user(const rp_agent_t *a) RP_MUST_CHECK;
/* Whether a monitor answers on S/monitor.sock. */
bool rp_agent_monitor_serves(const char *state_dir);
/* One request to the monitor (a->monitor). A refusal is said (logged) and is RP_ERR_IO; OUT: *r,
 * a successful reply. */
rp_err_t rp_agent_monitor_call(const rp_agent_t *a, rp_mon_request_t *q, int fd,
                               rp_mon_reply_t *r) RP_MUST_CHECK;
/* The same, taking the descriptor the reply carries (INSTALL's handed answer) into *reply_fd (-1
 * when none; close it). */
rp_err_t rp_agent_monitor_call_fd(const rp_agent_t *a, rp_mon_request_t *q, int fd,
                                  rp_mon_reply_t *r, int *reply_fd) RP_MUST_CHECK;
/* From a signal handler (async-signal-safe): the call to the monitor under way ends at once (its
 * socket is shut down), and every later one fails, said as a stop (`run` at SIGTERM). */
void rp_agent_monitor_stop(void);
/* A call that a stop does not end: the verdict on a relay to an MCU that the stop let finish
 * (rp_mcu_hand_over, mcu_runner.h), which the monitor answers at once. */
rp_err_t rp_agent_monitor_call_past_stop(const rp_agent_t *a, rp_mon_request_t *q,
                                         rp_mon_reply_t *r) RP_MUST_CHECK;
/* The identity's public key (the root of trust's, or the monitor's answer). Owned by a. */
EVP_PKEY *rp_agent_pubkey(const rp_agent_t *a);
/* The largest security counter the device's root of trust holds. */
uint32_t rp_agent_seccnt_max(const rp_agent_t *a);
/* The device certificate (chain file cert) and the identity key on an SSL_CTX. Through the
 * monitor the key is a remote key that has it sign TLS 1.3 CertificateVerify messages only
 * (SIGN_TLS13), and the context is made TLS 1.3 only. 1 on success, 0 (said) on failure. */
int rp_agent_ssl_ctx_use(rp_agent_t *a, SSL_CTX *ctx, const char *cert);

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

/* Signed evidence for nonce, made here with the root of trust (the monitor's EVIDENCE).
 * OUT: out[0..*len). */
rp_err_t rp_agent_evidence(rp_agent_t *a, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                           size_t cap, size_t *len) RP_MUST_CHECK;

/* The evidence for nonce: the monitor's (EVIDENCE) when it serves the device, otherwise made
 * here (rp_agent_evidence). OUT: out[0..*len). */
rp_err_t rp_agent_ask_evidence(rp_agent_t *a, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                               size_t cap, size_t *len) RP_MUST_CHECK;

typedef struct rp_agent_result {
    bool passed;
    long http_status;  /* 0 when the service was not reached */
    long retry_after;  /* seconds the service asked to wait before trying again; 0: none */
    char reason[300];  /* the service's reason, or the transport error */
    int64_t not_after; /* of the new certificate */
    /* ...and its life from the service's answer, in seconds: the answer's expires_in, or from an
     * older service its notAfter - notBefore (issued unback-dated). The service's times, never
     * this device's wall clock: count it on the monotonic clock from the answer. */
    int64_t life; /* within [RP_AGENT_LIFE_MIN, RP_AGENT_LIFE_MAX] (rp_agent_plan_life) */
    char serial[48];
} rp_agent_result_t;

/* The certificate lives the agent plans its renewal on: a minute to a day and a half. A value out
 * of them (a service's bug, or one that would overflow the planning) is taken as the bound. */
#define RP_AGENT_LIFE_MIN 60
#define RP_AGENT_LIFE_MAX (36 * 3600)

/* The life to plan the renewal on: the answer's expires_in (`expires_in`, 0 or less: none) when
 * the certificate can have it (no longer than `cert_span`, its notAfter - notBefore; 0: unknown),
 * else `cert_span`; clamped to the bounds above (*clamped then true). */
int64_t rp_agent_plan_life(int64_t expires_in, int64_t cert_span, bool *clamped);

/* Seconds from an answer to the next attestation: two thirds of `life` clamped (at most a day),
 * before the daemon's jitter. */
long rp_agent_renew_wait(int64_t life);

/*
 * One attestation: evidence bound to its TLS connection in one request (or, once the service
 * refused that as channel_mismatch or nonce_unknown, a nonce and then evidence for it), the
 * verdict; on a pass, device.crt and ca-chain.pem are replaced atomically, and service-ca.pem
 * too when the answer has service_ca. given: the service CA file the device was given (the
 * connection trusts what rp_agent_service_ca makes of it). RP_OK when the service answered (res
 * says what); an error when it could not be reached or answered nonsense.
 */
rp_err_t rp_agent_attest(rp_agent_t *a, const char *server, const char *given,
                         rp_agent_result_t *res) RP_MUST_CHECK;

/*
 * The service CAs the device trusts (docs/operations.md, "The service CA's lifetime"): the file it
 * was given (--server-ca, given) and those the service published in its last attestation answer
 * (service_ca: the current CA and its successor), which rp_agent_attest keeps in the agent's
 * service-ca.pem as the given file followed by them (rp_agent_service_ca_keep). OUT: out, that
 * file while it begins with the given file whole and a newline (a device given another file trusts
 * that one alone until it attests with it), else
 * given. So a device that attested once while the successor was published keeps connecting after
 * the service switches to it.
 */
void rp_agent_service_ca(const rp_agent_t *a, const char *given, char *out, size_t cap);
#define RP_AGENT_SERVICE_CA_MAX (64 * 1024) /* the given file, and what the service publishes */
#define RP_AGENT_SERVICE_CA_COUNT 4         /* service CAs published, and kept */
/* Keep what the service published (service_ca: refused unless rp_agent_service_ca_valid) in the
 * agent's service-ca.pem, in one atomic write (a crash leaves the old file or the new one): the
 * given file first, a newline, then what is published and those kept before (for this given
 * file) that it lacks, have not ended at now and are newer (a later notBefore) than the newest it
 * holds, at most RP_AGENT_SERVICE_CA_COUNT, the oldest kept (earliest notBefore) dropped first. So
 * an answer from a replica that lacks the successor does not erase it (review r13 M3), and one
 * that leaves a CA out beside a newer one withdraws it (review r14 M1). Best effort: a device that
 * cannot keep it goes on with what it has (said). */
void rp_agent_service_ca_keep(const rp_agent_t *a, const char *given, const char *published,
                              int64_t now);
/* Whether pem (len bytes, not NUL-terminated) is what the service publishes as service_ca: one to
 * four PEM certificates, at most RP_AGENT_SERVICE_CA_MAX bytes, every PEM block of it a
 * certificate that reads as one (no key, nothing curl would fail to load). Fuzzed
 * (fuzz/service_ca.c). */
bool rp_agent_service_ca_valid(const char *pem, size_t len);
/* The service CAs the agent trusts for the service (S/agent/service-ca.pem: the given file, then
 * those kept; `status`), at most RP_AGENT_SERVICE_CA_SHOWN, each {subject (RFC 2253), sha256
 * (hex), not_before, not_after (seconds)}: an empty array before the first attestation (or NULL:
 * no memory). */
#define RP_AGENT_SERVICE_CA_SHOWN 16
json_t *rp_agent_service_ca_list(const rp_agent_t *a);

/* Whether S/device.crt is this device's certificate (its key the identity key) and
 * S/ca-chain.pem holds a certificate: RP_ERR_NOT_FOUND before the first attestation;
 * RP_ERR_MALFORMED, said naming the file and the fix, when either is corrupt. */
rp_err_t rp_agent_check_certificate(rp_agent_t *a) RP_MUST_CHECK;

/* The first PEM certificate in the state file name (at most 64 KiB); NULL (and why) when there is
 * none. OUT: path, the file. */
X509 *rp_agent_read_cert(const rp_agent_t *a, const char *name, char *path, size_t cap, char *why,
                         size_t wcap);
/* When the current certificate expires (0 if there is none, or it is corrupt: said); client.c. */
int64_t rp_agent_cert_not_after(const rp_agent_t *a);
/* When it became valid (0 if there is none, or it is corrupt). */
int64_t rp_agent_cert_not_before(const rp_agent_t *a);

/* S/update.lock, held by whatever changes the slots (install, recover, an update check, the
 * daemon's checks), so that they take turns; through the monitor, which takes that lock itself for
 * each install, the agent's own S/agent/update.lock: its checks take turns over its downloads.
 * The descriptor (the caller closes it), or -1 (logged). */
int rp_agent_lock_slots(const rp_agent_t *agent);

#endif /* RAMPART_AGENT_H */
