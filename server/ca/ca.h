/*
 * Certificates the service makes: its own TLS identity (a service CA and a server certificate,
 * made on first start), a CA per tenant (ECDSA P-256, two years, its key stored encrypted under
 * the service's master key, rolled over to a successor before it ends), 24-hour device
 * certificates, and the tenant's CRLs; and the check of a client certificate against a tenant CA.
 */
#ifndef RAMPART_CA_H
#define RAMPART_CA_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "rampart/cert_time.h" /* rp_cert_time: the times of the certificates here */
#include "store.h"

#define RP_CA_LIFETIME (2 * 365 * 24 * 3600) /* a tenant CA: two years */
#define RP_DEVICE_CERT_LIFETIME                                                                    \
    (24 * 3600)              /* a device certificate: 24 hours (never past its CA)                 \
                              */
#define RP_CRL_LIFETIME 3600 /* a CRL's nextUpdate: an hour after it is made */
#define RP_MASTER_KEY_LEN 32
/* The rollover (docs/operations.md, "The tenant CA's lifetime"): a tenant's successor CA is made
 * when two thirds of its newest CA's life have passed (243 days before its end), published at once
 * (ca_chain, EST cacerts, GET .../ca, a CRL of its own), and signs device certificates from
 * RP_CA_PUBLISH_LEAD later on: every device has it in its ca_chain within a day, and operators
 * have a month to give it to brokers before a certificate they do not know of appears. The old CA
 * stays trusted and published until its end, by which its last certificate has ended. */
#define RP_CA_PUBLISH_LEAD (30 * 24 * 3600)
/* A tenant's CAs loaded at once: at most two are ever valid together (a successor is made when
 * a third of its predecessor's life is left, and makes its own when a third of its own is). */
#define RP_CA_LIVE 3
/* A CA whose start is more than this ahead of now was made while a clock ran ahead: it counts for
 * nothing until then (it neither signs nor is published, nor decides the rollover); a lesser
 * difference is the replicas' ordinary skew. As many again are read as may be live, so that such
 * ones never push a live one out of the list. */
#define RP_CA_START_SLACK 3600
/* A CA is valid from this long before it is made: every CA that counts (its start at most
 * RP_CA_START_SLACK ahead of now) has begun, and so can sign, whatever the clock that made it
 * (review r10 L1: a first CA made by a clock 5 to 65 minutes ahead counted, so none was made,
 * but could not sign yet). Its device certificates are still back-dated RP_DEVICE_CERT_BACKDATE
 * only. */
#define RP_CA_BACKDATE RP_CA_START_SLACK
#define RP_CA_LISTED (2 * RP_CA_LIVE)

/* A device certificate is valid from 5 minutes before its issue (until RP_DEVICE_CERT_LIFETIME
 * after it): a verifier (another replica, a broker) whose clock is behind the issuer's by less
 * takes a fresh one. */
#define RP_DEVICE_CERT_BACKDATE 300

/* The service's own TLS certificate is made again in its last 30 days (at start, and while it
 * runs: main.c). */
#define RP_SERVER_CERT_RENEW_BEFORE (30 * 24 * 3600)

/* A tenant's CAs in memory, those not ended when they were loaded, newest first, each with its
 * certificate and decrypted key; which of them signs device certificates (cert, key: one of
 * them, NULL when none can, and then nothing is signed); and what each device certificate it
 * issues repeats (made once, when loaded): the extensions, and the key made ready to sign with
 * SHA-256 (sign_ctx, initialised once: a certificate is signed with a copy of it, which saves
 * OpenSSL 3's fetch of the algorithms at each issuance). */
typedef struct rp_ca {
    char tenant_id[RP_ID_SIZE];
    int n;
    X509 *certs[RP_CA_LIVE];
    EVP_PKEY *keys[RP_CA_LIVE];
    int generation[RP_CA_LIVE];
    int64_t not_before[RP_CA_LIVE], not_after[RP_CA_LIVE];
    int signer;    /* the index of the one that signs, -1: none */
    X509 *cert;    /* the signing CA (borrowed from certs), NULL: none */
    EVP_PKEY *key; /* its key (borrowed from keys) */
    int64_t cert_not_before, cert_not_after;
    EVP_MD_CTX *sign_ctx; /* only copied from after the CA is loaded */
    char *cert_pem;       /* every CA above, PEM, the signing one first: what to trust */
    X509_EXTENSION *device_exts[4];
    int64_t loaded;     /* when it was read from the store */
    int64_t changes_at; /* when the choice above changes (a rollover, a CA's end): read again */
} rp_ca_t;

void rp_ca_free(rp_ca_t *ca);

/*
 * Make the service's TLS identity in data_dir if it is not there: server-ca.pem (what clients
 * trust), server-ca.key, server.pem (the server certificate), server.key; the server certificate
 * names localhost, 127.0.0.1, ::1 and each of hostnames (comma-separated, may be NULL), lives 397
 * days (never past the service CA's end), and is made again when it has under 30 days left, does
 * not go with server.key, or the service CA did not sign it. Also the master key (master.key,
 * 0600) unless it exists.
 */
rp_err_t rp_service_identity_init(const char *data_dir, const char *hostnames) RP_MUST_CHECK;

/*
 * The service CA's rollover (docs/operations.md, "The service CA's lifetime"). The service CA
 * (RP_SERVICE_CA.pem/.key, ten years) signs the service's TLS certificate; devices and CLIs trust
 * it. Its successor (RP_SERVICE_CA_NEXT.pem/.key) is made by the operator
 * (`rampart-server service-ca next`, rp_service_ca_next) once, and copied to every replica: so
 * every replica has the same one; each publishes it from its next reload (SIGHUP) or start. It is
 * due, like a tenant CA's, when two thirds of the current one's life have passed
 * (rp_ca_rollover_due: 3 years 4 months before its end; the service warns from then on: the log,
 * /readyz; rampart_service_ca_expires_seconds); it is published at once (the attestation answer's
 * service_ca: devices keep it beside the CA they were given), and it signs the server certificate
 * from the current CA's last RP_SERVICE_CA_SWITCH_BEFORE on, once published RP_CA_PUBLISH_LEAD
 * (rp_service_ca_switch_at): the server certificate's renewal there (a certificate of the old CA
 * ends with it) is the switch. Devices have from the successor's making to then to attest once and
 * take it; they keep a service CA published to them until it ends unless an answer leaves it out
 * beside a newer one (the agent's kept bundle: rp_agent_service_ca_keep).
 * A CA whose two files do not make a pair is refused, never replaced (service_ca_pair). Once the
 * old CA has ended, `rampart-server service-ca promote` (rp_service_ca_promote) makes the
 * successor the service CA, after which `service-ca next` makes the next generation.
 */
#define RP_SERVICE_CA "server-ca"
#define RP_SERVICE_CA_NEXT "server-ca-next"
/* The certificate of the service CA a promotion replaced (rp_service_ca_promote). */
#define RP_SERVICE_CA_OLD "server-ca-old"
#define RP_SERVICE_CA_LIFETIME (10 * 365 * 24 * 3600)
#define RP_SERVICE_CA_SWITCH_BEFORE RP_SERVER_CERT_RENEW_BEFORE
/* The current CA's last day: a successor made later than RP_CA_PUBLISH_LEAD before it still
 * switches by then, before the old CA's last server certificate ends (the hourly check). */
#define RP_SERVICE_CA_LAST_DAY (24 * 3600)
/* When the successor, beginning at next_not_before, signs in place of the current CA ending at
 * cur_not_after: RP_SERVICE_CA_SWITCH_BEFORE before the current one's end, but never before it
 * has been published RP_CA_PUBLISH_LEAD (devices take it then), unless that is in the current
 * one's last day (review r13 M2: a successor made late is not switched to at once). */
int64_t rp_service_ca_switch_at(int64_t cur_not_after, int64_t next_not_before);
/* The end of the successor's lead in that rule: RP_CA_PUBLISH_LEAD after next_not_before, or the
 * current CA's last day if that comes first (what rp_service_ca_switch_at waits for beyond the
 * current CA's last RP_SERVICE_CA_SWITCH_BEFORE). */
int64_t rp_service_ca_lead_end(int64_t cur_not_after, int64_t next_not_before);
/* Which service CA signs the server certificate at now: 1, the successor (there is one, valid at
 * now, and now is past rp_service_ca_switch_at), else 0, the current one. */
int rp_service_ca_signer(int64_t cur_not_after, bool have_next, int64_t next_not_before,
                         int64_t next_not_after, int64_t now);
/* When the successor in data_dir takes over from the current CA at the server certificate's
 * renewal (rp_service_ca_switch_at), while that is after now; else 0 (no successor, or switched
 * already). So a certificate that ends with the current CA and is not renewed before then is
 * said to wait for the switch, not to lack a successor (review r14 L1). */
int64_t rp_service_ca_switch_pending(const char *data_dir, int64_t now);
/* What the service publishes to devices at now: *pem, the service CAs not ended (the current one,
 * the successor), PEM, malloc'd; and the newest one's times (*not_before, *not_after: the
 * warnings). Logged when the newest is due for its successor. */
rp_err_t rp_service_ca_published(const char *data_dir, int64_t now, char **pem, int64_t *not_before,
                                 int64_t *not_after) RP_MUST_CHECK;
/* `rampart-server service-ca next`: the successor made in data_dir (its key first, then its
 * certificate, each written atomically), valid for RP_SERVICE_CA_LIFETIME from now. RP_ERR_EXISTS
 * when there is one already or (unless force) its key alone (a cut run, or a copy done in part:
 * replaced only with force; review r14 L3), RP_ERR_BAD_KEY when the CA files there do not make
 * pairs, RP_ERR_DENIED when the current one is not due yet (rp_ca_rollover_due) and not force
 * (logged, each). */
rp_err_t rp_service_ca_next(const char *data_dir, int64_t now, bool force) RP_MUST_CHECK;
/* `rampart-server service-ca promote`: the successor made the service CA in data_dir (its files
 * renamed over the current ones; the current certificate kept as RP_SERVICE_CA_OLD.pem, published
 * while it lasts; its key gone), under server.lock, after a mark (RP_SERVICE_CA ".promoting"):
 * a cut at any point leaves the old pairs or the new, or a state that the next start, reload,
 * renewal or promote completes. Refused (logged) with RP_ERR_NOT_FOUND when there is no service
 * CA or no successor, RP_ERR_BAD_KEY when either pair is half or mismatched, RP_ERR_DENIED before
 * the current CA's end unless force, and with force before the successor's lead has passed
 * (rp_service_ca_lead_end). A promotion cut short is completed and RP_OK. */
rp_err_t rp_service_ca_promote(const char *data_dir, int64_t now, bool force) RP_MUST_CHECK;

/*
 * The running service's renewal (main.c: when the certificate in use nears its end, and at each
 * SIGHUP): server.pem made again from the service CA when it is the CA's and has under 30 days
 * left (and a new one would end later: not near the CA's end); any other (an operator's own, put
 * there for a reload; a file that cannot be read) is left as it is, and said when it nears its
 * end. *renewed: whether one was made.
 */
rp_err_t rp_service_cert_renew(const char *data_dir, const char *hostnames,
                               bool *renewed) RP_MUST_CHECK;

/*
 * DATA_DIR/server.lock, exclusive (flock: released when the process ends, however it ends): the
 * two functions above make server.key and server.pem under it (and rp_service_identity_init the
 * master key and the service CA: one made when processes start together; review r14 L2), and
 * whoever reads them into a TLS context holds it, so that processes sharing the data directory
 * renew the certificate once and none reads a new key beside the old certificate. The descriptor to
 * unlock, or -1 (logged).
 */
int rp_service_identity_lock(const char *data_dir);
void rp_service_identity_unlock(int fd);

/* Read the master key (64 hex digits) from path. */
rp_err_t rp_master_key_load(const char *path, uint8_t key[RP_MASTER_KEY_LEN]) RP_MUST_CHECK;

/* A key for one purpose, derived from the master key (HKDF-SHA256; purpose is the info): every
 * replica and every restart derives the same one, and no purpose's key reveals another's. */
rp_err_t rp_master_derive(const uint8_t master[RP_MASTER_KEY_LEN], const char *purpose,
                          uint8_t *out, size_t len) RP_MUST_CHECK;

/* A private key as PKCS#8 PEM encrypted (AES-256) under the master key, and back. */
rp_err_t rp_key_encrypt_pem(const uint8_t master[RP_MASTER_KEY_LEN], EVP_PKEY *key,
                            char **pem) RP_MUST_CHECK;
rp_err_t rp_key_decrypt_pem(const uint8_t master[RP_MASTER_KEY_LEN], const char *pem,
                            EVP_PKEY **key) RP_MUST_CHECK;

/*
 * Whether master is the database's master key, from the check value the database holds (a value
 * derived from the key, never the key; compared in constant time). A database without one (new,
 * or made before schema 34) gets this key's, once every tenant's CA has been read with it; of two
 * starts that write one at once the first wins. RP_ERR_BAD_KEY when master is not the key (or does
 * not read a tenant's CA): a replica started with another master key (or one made afresh because
 * master.key was not copied) would fail every certificate and issue nonces and tickets no other
 * replica accepts, so it must not start (review r15ops M2).
 */
rp_err_t rp_ca_master_check(rp_store_t *s, const uint8_t master[RP_MASTER_KEY_LEN]) RP_MUST_CHECK;
/* Before a missing master key (path) is made: RP_OK when the database has no master key yet (no
 * check value, no tenant CA); RP_ERR_NOT_FOUND (logged: "copy master.key from a replica") when it
 * has one, which a new key would not be. */
rp_err_t rp_ca_master_absent(rp_store_t *s, const char *path) RP_MUST_CHECK;

/*
 * The tenant's CAs at now: loaded from the store; the first created and stored if the tenant has
 * none yet, a successor if two thirds of the life of the newest that counts now
 * (rp_ca_rollover_basis) have passed (rp_ca_rollover_due), and a new one, valid now, when none
 * counts (all ended, or made while a clock ran ahead). The database decides each generation:
 * another replica creating it at the same moment wins, and its CA is used. OUT: *ca (rp_ca_free).
 */
rp_err_t rp_ca_get_or_create(rp_store_t *s, const uint8_t master[RP_MASTER_KEY_LEN],
                             const rp_tenant_t *tenant, int64_t now, rp_ca_t *ca) RP_MUST_CHECK;

/* The rollover of tenants not in use (the service's hourly sweep): up to RP_CA_SWEEP_MAX tenants
 * whose newest CA is due for its successor (or has ended) get it now, as their next use would
 * give it; OUT *rolled: the tenants looked at. So a dormant tenant keeps a CA with a third of its
 * life left, as one in use does, and rampart_tenant_ca_expires_seconds means what it says. */
#define RP_CA_SWEEP_EVERY 3600
#define RP_CA_SWEEP_MAX 64
rp_err_t rp_ca_roll_ending(rp_store_t *s, const uint8_t master[RP_MASTER_KEY_LEN], int64_t now,
                           int *rolled) RP_MUST_CHECK;

/* The rules of the rollover, on times alone (tested with any clock):
 * whether a CA valid from not_before to not_after needs its successor at now (two thirds of its
 * life have passed); */
bool rp_ca_rollover_due(int64_t not_before, int64_t not_after, int64_t now);
/* which of n CAs (newest first) signs at now: the newest valid one published RP_CA_PUBLISH_LEAD
 * ago, else the oldest valid one; -1 when none is valid (ended, or not yet begun); */
int rp_ca_signer(const int64_t *not_before, const int64_t *not_after, int n, int64_t now);
/* which of n CAs (newest first) the rollover is judged on: the newest not ended that has begun by
 * now + RP_CA_START_SLACK; -1 when none; */
int rp_ca_rollover_basis(const int64_t *not_before, const int64_t *not_after, int n, int64_t now);
/* and a device certificate's end: 24 hours after now, never past its CA's end. */
int64_t rp_ca_device_not_after(int64_t ca_not_after, int64_t now);

/* Issue a device certificate for a P-256 key (canonical DER SubjectPublicKeyInfo), CN = device
 * ID, valid from now - RP_DEVICE_CERT_BACKDATE (not before the signing CA began) for 24 h or
 * until the signing CA ends. RP_ERR_EXPIRED (logged, counted: rp_ca_signing_refused) when the
 * tenant has no CA valid at now: nothing is signed. OUT: *cert (caller frees), *record (what the
 * store keeps). */
rp_err_t rp_ca_issue_device_cert(const rp_ca_t *ca, const uint8_t *spki, size_t spki_len,
                                 const char *device_id, int64_t now, X509 **cert,
                                 rp_cert_record_t *record) RP_MUST_CHECK;
/* Certificates refused since the start because their tenant had no valid CA. */
uint64_t rp_ca_signing_refused(void);

/* What a tenant's CA set is, as a number that changes when a CA is added or ends, or another
 * one starts to sign: the same on every worker that loaded the same set (a cache of what was
 * made from it, such as the CRLs, is stale when it differs). */
int64_t rp_ca_set_version(const rp_ca_t *ca);

/* The live CA of the tenant's that issued cert (by name and key identifier; the signature is
 * for rp_cert_chains_to), or NULL. */
X509 *rp_ca_issuer_of(const rp_ca_t *ca, X509 *cert);

/* The tenant's CRLs, each listing the tenant's revoked certificates that have not yet expired
 * (serials are unique across its CAs): OUT *der, the signing CA's (DER), and *pem, one per live CA
 * (PEM, concatenated: what a broker that trusts them all loads). Both malloc'd. */
rp_err_t rp_ca_crls(rp_store_t *s, const rp_ca_t *ca, int64_t now, uint8_t **der, size_t *der_len,
                    char **pem, size_t *pem_len) RP_MUST_CHECK;

/* Out of pem (rp_ca_crls's, for ca), the CRL of the tenant's live CA of that generation alone:
 * OUT *out (malloc'd), DER or, want_pem, PEM (NUL-terminated). RP_ERR_NOT_FOUND: no live CA of that
 * generation. */
rp_err_t rp_ca_crl_of(const rp_ca_t *ca, const char *pem, int generation, bool want_pem,
                      uint8_t **out, size_t *out_len) RP_MUST_CHECK;

/* PEM of one certificate; OUT: malloc'd, NUL-terminated. */
rp_err_t rp_cert_pem(X509 *cert, char **pem) RP_MUST_CHECK;
/* PEM of n certificates (at most RP_CA_LIVE), one after another, in that order: a bundle to trust;
 * OUT: malloc'd, NUL-terminated. */
rp_err_t rp_certs_pem(X509 *const *certs, int n, char **pem) RP_MUST_CHECK;

/* Parse and verify a PEM or DER CSR: well formed, self-signature valid, an ECDSA P-256 key.
 * (EST re-enrollment; attestation carries the key itself.) */
rp_err_t rp_csr_parse(const uint8_t *data, size_t len, X509_REQ **csr) RP_MUST_CHECK;

/* Whether cert chains to ca and is valid now for client authentication. */
bool rp_cert_chains_to(X509 *cert, X509 *ca);
/* A device certificate that ended at most this long ago still opens a failed device's recovery
 * routes (docs/protocol.md "Verdicts"; review r10 M2): a week, a device offline over a weekend
 * and more. */
#define RP_RECOVERY_ENDED_MAX (7 * 24 * 3600)
/* Whether cert chains to ca, ca is valid at now, and cert has ended, at most ended_max seconds
 * before now (and had begun): rp_cert_chains_to but for cert's end. */
bool rp_cert_chains_to_ended(X509 *cert, X509 *ca, int64_t now, int64_t ended_max);
/* A certificate's serial, lowercase hex. */
void rp_cert_serial_hex(X509 *cert, char out[RP_SERIAL_SIZE]);

#endif /* RAMPART_CA_H */
