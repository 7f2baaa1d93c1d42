/*
 * Signed update metadata (docs/updates.md): the one owner of its documents, their fields and
 * every rule a document must pass. The CLI builds roots, the service builds targets and checks
 * the roots operators post, the agent checks both: each through the typed structures and the
 * build and accept functions below, and nothing else reads or writes the JSON.
 *
 * Every document is a JSON payload, signed as the exact bytes it is, in an envelope
 *
 *   {"signed": BASE64(payload), "signatures": [{"keyid": HEX, "sig": BASE64}, ...]}
 *
 * keyid is the SHA-256 of the signer's DER SubjectPublicKeyInfo; sig is over SHA-256(payload),
 * as images are signed (DER ECDSA P-256, or Ed25519 over the digest). Verifying never
 * canonicalizes JSON: the signature covers the bytes, which are parsed only once it verifies
 * (a first root, with no root before it, is parsed first only to learn the keys that must have
 * signed it).
 *
 * The same envelope has a binary form (rp_md_signed_t on the wire), for the privileged monitor,
 * which parses no JSON it has not verified: the unprivileged agent unpacks the JSON
 * (rp_md_unpack) and hands over
 *
 *   magic u32 "RPSD" | form u16 (1) | payload: u32 length, bytes | u8 count of signatures |
 *   each: keyid (32 bytes) | u16 length, sig bytes
 *
 * (big-endian, every length bounded, nothing left over: rp_md_signed_decode). The monitor checks
 * the signatures over the payload's bytes (rp_md_verify, the one owner of the signature rule),
 * and only then parses the payload.
 */
#ifndef RAMPART_METADATA_H
#define RAMPART_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "rampart/component.h"
#include "rampart/crypto.h"
#include "rampart/error.h"
#include "rampart/image.h"

/* Bounds of every field: a document past any of them is refused, and never built. */
#define RP_MD_MAX (256 * 1024) /* an envelope */
#define RP_MD_KEYS_MAX 8       /* keys one role may have */
#define RP_MD_TARGETS_MAX 16   /* targets in one document: one per component */
#define RP_MD_ID_MAX 64        /* a tenant or deployment ID: [A-Za-z0-9._-] */
#define RP_MD_DEVICE_ID_LEN 64 /* a device ID: 64 lowercase hex digits */
#define RP_MD_HASH_HEX_LEN 64  /* a SHA-256 in lowercase hex */
#define RP_MD_SIG_MAX 128      /* one signature (DER ECDSA P-256 is at most 72, Ed25519 64) */
/* Signatures one envelope carries at most: a root rotating every key is signed by the old
 * root keys and the new ones. */
#define RP_MD_SIGS_MAX (2 * RP_MD_KEYS_MAX)
/* An MCUboot image's payload size is 32 bits and its header and TLV areas 16 bits each; no image
 * file (nor a delta of one) is larger than this. */
#define RP_MD_IMAGE_SIZE_MAX ((uint64_t)UINT32_MAX + 3 * (uint64_t)UINT16_MAX)

/* One signature of an envelope. */
typedef struct rp_md_sig {
    uint8_t keyid[RP_SHA256_LEN]; /* SHA-256 of the signer's DER SPKI */
    uint8_t sig[RP_MD_SIG_MAX];
    size_t len; /* 1 to RP_MD_SIG_MAX */
} rp_md_sig_t;

/* An envelope unpacked: the signed bytes and the signatures over them (not verified). */
typedef struct rp_md_signed {
    uint8_t *payload; /* malloc'd: rp_md_signed_free() */
    size_t len;       /* 1 to RP_MD_MAX */
    rp_md_sig_t sigs[RP_MD_SIGS_MAX];
    size_t nsigs; /* 0 to RP_MD_SIGS_MAX */
} rp_md_signed_t;

/* Free what s holds, and zero it. */
void rp_md_signed_free(rp_md_signed_t *s);

/* The keys a role trusts, and how many of them must sign. */
typedef struct rp_md_role {
    uint8_t spki[RP_MD_KEYS_MAX][RP_PUBKEY_DER_MAX];
    size_t spki_len[RP_MD_KEYS_MAX];
    size_t nkeys;     /* 1 to RP_MD_KEYS_MAX, each listed once, in its one canonical encoding */
    size_t threshold; /* 1 to nkeys */
} rp_md_role_t;

/* A root ("type": "rampart-root"): the keys of every role, signed by the root keys. */
typedef struct rp_md_root {
    char tenant[RP_MD_ID_MAX + 1];
    int64_t version;     /* 1, 2, ...: each signed by the keys of the one before and its own */
    int64_t expires;     /* Unix time; a device refuses to update past it with no newer root */
    rp_md_role_t root;   /* signs roots */
    rp_md_role_t online; /* the service's key: signs targets (threshold 1) */
    rp_md_role_t images; /* the operator's image keys: sign images (threshold 1) */
} rp_md_root_t;

/* A delta the device may rebuild a target from, instead of downloading the whole image. */
typedef struct rp_md_delta {
    char from[RP_MD_HASH_HEX_LEN + 1];   /* the image ID it applies to ("from") */
    char sha256[RP_MD_HASH_HEX_LEN + 1]; /* the delta file's SHA-256 ("image") */
    uint64_t size;                       /* the delta file's size, 1 to RP_MD_IMAGE_SIZE_MAX */
} rp_md_delta_t;

/* One component the device should run. */
typedef struct rp_md_target {
    char component[RP_COMPONENT_NAME_MAX + 1];
    char image[RP_MD_HASH_HEX_LEN + 1]; /* the image's ID: the SHA-256 of its file */
    uint64_t size;                      /* of the file, 1 to RP_MD_IMAGE_SIZE_MAX */
    rp_image_version_t version;         /* "major.minor.revision+build" on the wire */
    bool has_security_counter;          /* false: the image has no SEC_CNT (JSON null: "none") */
    uint32_t security_counter;
    char image_hash[RP_MD_HASH_HEX_LEN + 1]; /* MCUboot's digest: what the device measures */
    bool has_delta;
    rp_md_delta_t delta;
} rp_md_target_t;

/* Targets ("type": "rampart-targets"): what one device should run, signed by the online key. */
typedef struct rp_md_targets {
    char tenant[RP_MD_ID_MAX + 1];
    char device[RP_MD_DEVICE_ID_LEN + 1];
    char deployment[RP_MD_ID_MAX + 1]; /* "" when no deployment reaches the device */
    int64_t version;                   /* the device's own targets version: never goes down */
    int64_t expires;                   /* Unix time: a device refuses them past it (freeze) */
    size_t ntargets;                   /* 0 to RP_MD_TARGETS_MAX, one per component */
    rp_md_target_t targets[RP_MD_TARGETS_MAX];
} rp_md_targets_t;

/* What a capability grants. Persisted names ("development"): never renamed. */
typedef enum rp_md_capability_kind {
    RP_MD_CAP_DEVELOPMENT = 1, /* sideload apps, attach a debugger (docs/compartments.md) */
} rp_md_capability_kind_t;

#define RP_MD_CAPABILITY_LIFETIME_MAX (90 * 24 * 3600) /* from issue to expiry, at most */

/* A capability ("type": "rampart-capability"): one device of the tenant may do something a
 * device in the field may not, until it expires. Signed by the online key, like targets. */
typedef struct rp_md_capability {
    char tenant[RP_MD_ID_MAX + 1];
    char device[RP_MD_DEVICE_ID_LEN + 1];
    rp_md_capability_kind_t kind;
    int64_t issued;  /* Unix time */
    int64_t expires; /* after issued, at most RP_MD_CAPABILITY_LIFETIME_MAX later */
} rp_md_capability_t;

/* "development", or NULL for an unknown kind; and back (RP_ERR_INVALID_ARG when unknown). */
const char *rp_md_capability_kind_name(rp_md_capability_kind_t kind);
rp_err_t rp_md_capability_kind_parse(const char *name, rp_md_capability_kind_t *kind) RP_MUST_CHECK;

/* ---- building: struct -> signed envelope ---- */

/*
 * Sign a root with each of keys (the new root keys and, after the first version, the previous
 * version's). A root that rp_md_root_accept() would refuse for its fields is not built:
 * RP_ERR_INVALID_ARG with detail saying why. OUT: *envelope (malloc'd JSON text).
 */
rp_err_t rp_md_root_sign(const rp_md_root_t *root, EVP_PKEY *const *keys, size_t nkeys,
                         char **envelope, char *detail, size_t cap) RP_MUST_CHECK;

/* Sign targets with the online key; as rp_md_root_sign(). OUT: *envelope (malloc'd). */
rp_err_t rp_md_targets_sign(const rp_md_targets_t *targets, EVP_PKEY *key, char **envelope,
                            char *detail, size_t cap) RP_MUST_CHECK;

/* Sign a capability with the online key; as rp_md_root_sign(). OUT: *envelope (malloc'd). */
rp_err_t rp_md_capability_sign(const rp_md_capability_t *capability, EVP_PKEY *key, char **envelope,
                               char *detail, size_t cap) RP_MUST_CHECK;

/* ---- accepting: envelope + trust -> struct ---- */

/* What a root is checked against. */
typedef struct rp_md_root_trust {
    /* The root it must follow: the next version, of the same tenant, signed by the threshold of
     * current's root keys as well as of its own. NULL for a first root, trusted because the
     * operator provisioned it (or because it was verified before it was kept): then it must be
     * signed by its own root keys only. */
    const rp_md_root_t *current;
    const char *tenant; /* the tenant it must be for; NULL: any (current's, when current) */
    int64_t now;        /* refused when it has expired at now (freeze)... */
    bool expired_ok;    /* ...unless this is set: a device walking the chain passes roots a newer
                         * one replaced, and what was kept is read whatever its age */
} rp_md_root_trust_t;

/*
 * Accept a root: a well-formed envelope and payload (type, tenant, version >= 1, expiry, the
 * three roles, online and images with threshold 1), every field within its bounds, signed as
 * trust says, for trust's tenant, not expired. OUT: *out (zeroed on refusal); detail says why.
 * Refusals: RP_ERR_MALFORMED, RP_ERR_TOO_LARGE (envelope), RP_ERR_BAD_SIGNATURE,
 * RP_ERR_ROLLBACK (not the next version of current's tenant), RP_ERR_EXPIRED.
 */
rp_err_t rp_md_root_accept(const char *envelope, size_t len, const rp_md_root_trust_t *trust,
                           rp_md_root_t *out, char *detail, size_t cap) RP_MUST_CHECK;

/* rp_md_root_accept on an unpacked envelope (the monitor's binary form). With trust->current,
 * its root keys' signatures are checked before the payload is parsed. */
rp_err_t rp_md_root_accept_signed(const rp_md_signed_t *s, const rp_md_root_trust_t *trust,
                                  rp_md_root_t *out, char *detail, size_t cap) RP_MUST_CHECK;

/* What targets are checked against. */
typedef struct rp_md_targets_trust {
    const rp_md_root_t *root; /* its online keys must sign them; they are for its tenant */
    const char *device;       /* the device they must be for */
    int64_t min_version;      /* refused when older (rollback); 0 accepts any */
    int64_t now;              /* refused when expired at now (freeze)... */
    bool expired_ok;          /* ...unless set: reading targets accepted before */
} rp_md_targets_trust_t;

/*
 * Accept targets: signed by the root's online keys, a well-formed payload (type, tenant, device,
 * deployment, version, expiry, each target's component, image ID, size, version, security
 * counter or none, MCUboot digest and delta, one target per component), every field within its
 * bounds, of the root's tenant, for trust->device, not older than trust->min_version, not
 * expired. OUT: *out (zeroed on refusal); detail says why. Refusals: RP_ERR_BAD_SIGNATURE,
 * RP_ERR_MALFORMED, RP_ERR_TOO_LARGE, RP_ERR_ROLLBACK, RP_ERR_EXPIRED.
 */
rp_err_t rp_md_targets_accept(const char *envelope, size_t len, const rp_md_targets_trust_t *trust,
                              rp_md_targets_t *out, char *detail, size_t cap) RP_MUST_CHECK;

/* rp_md_targets_accept on an unpacked envelope (the monitor's binary form). */
rp_err_t rp_md_targets_accept_signed(const rp_md_signed_t *s, const rp_md_targets_trust_t *trust,
                                     rp_md_targets_t *out, char *detail, size_t cap) RP_MUST_CHECK;

/* What a capability is checked against. */
typedef struct rp_md_capability_trust {
    const rp_md_root_t *root; /* its online keys must sign it; it is for its tenant */
    const char *device;       /* the device it must be for */
    int64_t now;              /* refused when expired at now, or issued after it (+5 minutes) */
} rp_md_capability_trust_t;

/*
 * Accept a capability: signed by the root's online keys, well formed (type, tenant, device, kind,
 * issued, expires, within RP_MD_CAPABILITY_LIFETIME_MAX), for the root's tenant and
 * trust->device, not expired. OUT: *out (zeroed on refusal); detail says why. Refusals:
 * RP_ERR_BAD_SIGNATURE, RP_ERR_MALFORMED, RP_ERR_TOO_LARGE, RP_ERR_EXPIRED.
 */
rp_err_t rp_md_capability_accept(const char *envelope, size_t len,
                                 const rp_md_capability_trust_t *trust, rp_md_capability_t *out,
                                 char *detail, size_t cap) RP_MUST_CHECK;

/* ---- roles ---- */

/* Whether role lists the key (DER SPKI). */
bool rp_md_role_has(const rp_md_role_t *role, const uint8_t *spki, size_t len);
/* Whether two roles list the same keys, in the same order, with the same threshold. */
bool rp_md_role_equal(const rp_md_role_t *a, const rp_md_role_t *b);
/* A role from its JSON form {"threshold": N, "keys": [BASE64 SPKI...]}, held to the rules of
 * rp_md_role_t. */
rp_err_t rp_md_role_parse(json_t *j, rp_md_role_t *role) RP_MUST_CHECK;
/* The JSON form of keys (DER SPKIs) with a threshold, as written (not checked: for tests that
 * build documents the accept functions must refuse). */
json_t *rp_md_role_json(const uint8_t *const *spki, const size_t *spki_len, size_t n,
                        size_t threshold);

/* ---- the envelope alone (the functions above use it; tests and fuzzing reach it here) ---- */

/* The binary form's largest encoding, and its first bytes ("RPSD"). */
#define RP_MD_SIGNED_MAX                                                                           \
    (4 + 2 + 4 + RP_MD_MAX + 1 + RP_MD_SIGS_MAX * (RP_SHA256_LEN + 2 + RP_MD_SIG_MAX))

/*
 * The JSON envelope's signatures and signed bytes, parsed but NOT verified. A signature entry
 * that could never verify (a keyid that is not 64 hex digits, a sig that is not base64 or is
 * longer than RP_MD_SIG_MAX) is left out, as no key would count it. RP_ERR_TOO_LARGE past
 * RP_MD_MAX; RP_ERR_MALFORMED otherwise (detail says why). OUT: *s (rp_md_signed_free).
 */
rp_err_t rp_md_unpack(const char *envelope, size_t len, rp_md_signed_t *s, char *detail,
                      size_t cap) RP_MUST_CHECK;
/* The JSON envelope of s. OUT: *envelope (malloc'd text). */
rp_err_t rp_md_pack(const rp_md_signed_t *s, char **envelope) RP_MUST_CHECK;

/* The binary form of s (the header's layout). OUT: *out (malloc'd), *len. */
rp_err_t rp_md_signed_encode(const rp_md_signed_t *s, uint8_t **out, size_t *len) RP_MUST_CHECK;
/*
 * The binary form back, held to every bound: RP_ERR_BAD_MAGIC (not this form), RP_ERR_TRUNCATED
 * (shorter than its lengths say), RP_ERR_TOO_LARGE (a payload, a signature or a count past its
 * maximum), RP_ERR_MALFORMED (an empty payload or signature, bytes left over); detail says
 * which. OUT: *s (rp_md_signed_free; zeroed on refusal).
 */
rp_err_t rp_md_signed_decode(const uint8_t *buf, size_t len, rp_md_signed_t *s, char *detail,
                             size_t cap) RP_MUST_CHECK;

/*
 * The signature rule, its one owner: at least role->threshold distinct keys of the role signed
 * s's payload (a signature by a key the role does not list is ignored). A key that signs twice,
 * or more than RP_MD_SIGS_MAX signatures, is refused outright. RP_ERR_BAD_SIGNATURE (detail
 * says why); RP_ERR_INVALID_ARG for a role outside its bounds.
 */
rp_err_t rp_md_verify(const rp_md_signed_t *s, const rp_md_role_t *role, char *detail,
                      size_t cap) RP_MUST_CHECK;

/* Sign payload (the exact bytes) with each key. OUT: *envelope (malloc'd JSON text). */
rp_err_t rp_md_sign(const char *payload, size_t len, EVP_PKEY *const *keys, size_t nkeys,
                    char **envelope) RP_MUST_CHECK;

/*
 * Open an envelope: rp_md_unpack, then rp_md_verify, then the payload is parsed. OUT: *payload
 * (the parsed JSON object; json_decref).
 * RP_ERR_MALFORMED for a bad envelope or payload, RP_ERR_BAD_SIGNATURE when too few signatures
 * verify.
 */
rp_err_t rp_md_open(const char *envelope, size_t len, const rp_md_role_t *role,
                    json_t **payload) RP_MUST_CHECK;

/* ---- parsing apart: the payload read by another process, the binary forms ---- */

/* The three documents, as the parsers and the binary forms name them. Persisted: never renumbered.
 */
typedef enum rp_md_kind {
    RP_MD_ROOT = 1,       /* rp_md_root_t */
    RP_MD_TARGETS = 2,    /* rp_md_targets_t */
    RP_MD_CAPABILITY = 3, /* rp_md_capability_t */
} rp_md_kind_t;

/*
 * What reads a payload (the exact signed bytes) into the struct of its kind, every field held to
 * its rules; its signatures, trust and place in the chain are the accept functions'. rp_md_parse
 * is Jansson's, in this process; the privileged monitor passes one that asks a confined child
 * (rampart-unpack metadata), whose answer is the binary form below. bin, when not NULL
 * (RP_MD_DOC_BIN_MAX bytes): the document's binary form too, *bin_len bytes: what is kept, so that
 * the monitor keeps the form it decoded and links no encoder. detail says why on a refusal.
 */
typedef rp_err_t (*rp_md_parse_fn)(void *ctx, rp_md_kind_t kind, const uint8_t *payload, size_t len,
                                   void *out, uint8_t *bin, size_t *bin_len, char *detail,
                                   size_t cap);
rp_err_t rp_md_parse(void *ctx, rp_md_kind_t kind, const uint8_t *payload, size_t len, void *out,
                     uint8_t *bin, size_t *bin_len, char *detail, size_t cap) RP_MUST_CHECK;

/* The accept functions above with the payload read by parse (ctx its own; bin and bin_len handed
 * to it). A root with trust->current: current's root keys verify it before parse is called, its
 * own once parse said which they are. Targets and a capability: the online keys verify them
 * before. */
rp_err_t rp_md_root_accept_with(const rp_md_signed_t *s, const rp_md_root_trust_t *trust,
                                rp_md_parse_fn parse, void *ctx, rp_md_root_t *out, uint8_t *bin,
                                size_t *bin_len, char *detail, size_t cap) RP_MUST_CHECK;
rp_err_t rp_md_targets_accept_with(const rp_md_signed_t *s, const rp_md_targets_trust_t *trust,
                                   rp_md_parse_fn parse, void *ctx, rp_md_targets_t *out,
                                   uint8_t *bin, size_t *bin_len, char *detail,
                                   size_t cap) RP_MUST_CHECK;
rp_err_t rp_md_capability_accept_with(const rp_md_signed_t *s,
                                      const rp_md_capability_trust_t *trust, rp_md_parse_fn parse,
                                      void *ctx, rp_md_capability_t *out, uint8_t *bin,
                                      size_t *bin_len, char *detail, size_t cap) RP_MUST_CHECK;

/*
 * A document's binary form, what rampart-unpack answers and what is kept (big-endian):
 *
 *   magic u32 "RPMD" | form u16 (1) | kind u8 | the fields in the struct's order: a string is
 *   u8 length and its bytes (no NUL), an integer its width, a bool u8 (0 or 1), a role u8
 *   threshold, u8 count and each key (u16 length, DER SPKI), a version u8 u8 u16 u32
 *
 * Decoding holds every field to the rules the JSON parser holds it to (the same checks, one
 * owner), a length to its field, nothing left over: RP_ERR_BAD_MAGIC, RP_ERR_TRUNCATED,
 * RP_ERR_MALFORMED (detail says which). OUT: *out, the struct of kind (zeroed on refusal).
 */
#define RP_MD_DOC_BIN_MAX (64 + sizeof(rp_md_root_t) + sizeof(rp_md_targets_t))
rp_err_t rp_md_doc_encode(rp_md_kind_t kind, const void *doc, uint8_t *out, size_t cap,
                          size_t *len) RP_MUST_CHECK;
rp_err_t rp_md_doc_decode(rp_md_kind_t kind, const uint8_t *buf, size_t len, void *out,
                          char *detail, size_t cap) RP_MUST_CHECK;

/*
 * What a device keeps of a document it accepted: its signed form (so that a later root's keys
 * verify it again) and what it said (so that it is never parsed again):
 *
 *   magic u32 "RPKP" | u32 length, the document's binary form | the signed binary form
 *
 * rp_md_kept_encode takes the document's binary form as parse gave it (doc, n bytes);
 * rp_md_kept_decode holds both parts to their decoders; rp_md_kept_parse is the rp_md_parse_fn
 * that answers the kept document (ctx: it, of the kind asked; bin must be NULL), for the accept
 * functions to check it again. OUT: *out (malloc'd), *len; *s (rp_md_signed_free), *doc.
 */
rp_err_t rp_md_kept_encode(const uint8_t *doc, size_t n, const rp_md_signed_t *s, uint8_t **out,
                           size_t *len) RP_MUST_CHECK;
rp_err_t rp_md_kept_decode(rp_md_kind_t kind, const uint8_t *buf, size_t len, rp_md_signed_t *s,
                           void *doc, char *detail, size_t cap) RP_MUST_CHECK;
rp_err_t rp_md_kept_parse(void *ctx, rp_md_kind_t kind, const uint8_t *payload, size_t len,
                          void *out, uint8_t *bin, size_t *bin_len, char *detail,
                          size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_METADATA_H */
