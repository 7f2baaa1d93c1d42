/*
 * Attestation evidence: an Entity Attestation Token (RFC 9711) whose claims are a CBOR map,
 * signed as a COSE_Sign1 (RFC 9052) with ES256 by the device's identity key. The claims Rampart
 * uses, and their keys, are in docs/protocol.md ("Evidence"); the profile claim names them.
 *
 * Encoding and verification run in the portable core: no allocation, bounded sizes, strings in
 * caller-owned fixed buffers.
 */
#ifndef RAMPART_EAT_H
#define RAMPART_EAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/component.h"
#include "rampart/crypto.h"
#include "rampart/error.h"

/* Persisted and on-wire constants (never change): claim keys and limits. */
#define RP_EAT_PROFILE "tag:rampart.dev,2026:eat-v1"
#define RP_EAT_CLAIM_IAT 6               /* issued at: seconds since the epoch (CWT) */
#define RP_EAT_CLAIM_NONCE 10            /* eat_nonce */
#define RP_EAT_CLAIM_UEID 256            /* ueid: 0x01 then the 32-byte device ID */
#define RP_EAT_CLAIM_DBGSTAT 263         /* dbgstat */
#define RP_EAT_CLAIM_PROFILE 265         /* eat_profile */
#define RP_EAT_CLAIM_BOOTCOUNT 267       /* bootcount */
#define RP_EAT_CLAIM_COMPONENTS (-70001) /* private: what the device runs, measured */
#define RP_EAT_CLAIM_REGISTER (-70002)   /* private: the measurement register (PCR) */
#define RP_EAT_CLAIM_DEVELOPMENT (-70003) /* private: a development capability is in force: its
                                           * expiry (seconds since the epoch) */

/* Keys inside each component map. */
#define RP_EAT_COMP_NAME 1
#define RP_EAT_COMP_VERSION 2
#define RP_EAT_COMP_DIGEST 3
#define RP_EAT_COMP_SIGNER 4
#define RP_EAT_COMP_SECURITY_COUNTER 5

#define RP_EAT_UEID_TYPE_RAND 0x01
#define RP_EAT_NONCE_MIN 8
#define RP_EAT_NONCE_MAX 64
#define RP_EAT_MAX_COMPONENTS 16
#define RP_EAT_NAME_MAX RP_COMPONENT_NAME_MAX /* component names: rp_component_name_valid() */
#define RP_EAT_VERSION_MAX 24                 /* "255.255.65535+4294967295" */
/* The largest COSE_Sign1 evidence Rampart makes or accepts. */
#define RP_EAT_MAX_SIZE 8192

/* dbgstat values (RFC 9711 section 4.2.9). */
typedef enum rp_eat_debug {
    RP_EAT_DEBUG_ENABLED = 0,
    RP_EAT_DEBUG_DISABLED = 1,
    RP_EAT_DEBUG_DISABLED_SINCE_BOOT = 2,
    RP_EAT_DEBUG_DISABLED_PERMANENTLY = 3,
    RP_EAT_DEBUG_DISABLED_FULLY_PERMANENTLY = 4,
} rp_eat_debug_t;

/* One measured component: an image the device runs. */
typedef struct rp_eat_component {
    char name[RP_EAT_NAME_MAX + 1];
    char version[RP_EAT_VERSION_MAX + 1];
    uint8_t digest[RP_SHA256_LEN]; /* the image's SHA-256 (its SHA256 TLV) */
    uint8_t signer[RP_SHA256_LEN]; /* the hash of the key that signed it (KEYHASH) */
    bool has_security_counter;
    uint32_t security_counter;
} rp_eat_component_t;

typedef struct rp_eat_claims {
    uint8_t nonce[RP_EAT_NONCE_MAX];
    size_t nonce_len;
    uint8_t device_id[RP_SHA256_LEN]; /* the UEID without its type byte */
    rp_eat_debug_t debug;
    uint64_t boot_count;
    bool has_iat;
    int64_t iat;
    bool has_register;
    uint8_t measurement_register[RP_SHA256_LEN];
    bool development;            /* the device holds a development capability (docs/compartments.md) */
    int64_t development_expires; /* ...until then */
    size_t ncomponents;
    rp_eat_component_t components[RP_EAT_MAX_COMPONENTS];
} rp_eat_claims_t;

/* Encode the claims map. OUT: out[0..*len). */
rp_err_t rp_eat_encode_claims(const rp_eat_claims_t *c, uint8_t *out, size_t cap,
                              size_t *len) RP_MUST_CHECK;

/*
 * Decode a claims map. Every claim Rampart defines is checked for type and range; the profile,
 * nonce, UEID, dbgstat and bootcount are required; claims it does not know are skipped, as RFC
 * 8392 asks; a known claim appearing twice is malformed. OUT: *c.
 */
rp_err_t rp_eat_decode_claims(const uint8_t *in, size_t len, rp_eat_claims_t *c) RP_MUST_CHECK;

/* The SHA-256 of the COSE Sig_structure for payload under Rampart's protected header {1: -7}:
 * what the identity key signs. */
rp_err_t rp_cose_sign1_tbs_digest(const uint8_t *payload, size_t len,
                                  uint8_t digest[RP_SHA256_LEN]) RP_MUST_CHECK;

/* Assemble a tagged COSE_Sign1 from the payload and its ES256 signature (raw r || s). */
rp_err_t rp_cose_sign1_encode(const uint8_t *payload, size_t len,
                              const uint8_t sig[RP_ES256_SIG_LEN], uint8_t *out, size_t cap,
                              size_t *out_len) RP_MUST_CHECK;

/*
 * Verify a COSE_Sign1 (tagged or not) with an ES256 key: the protected header must name ES256
 * and nothing critical; the signature must verify over the Sig_structure. OUT: the payload,
 * pointing into msg; only set when the result is RP_OK.
 */
rp_err_t rp_cose_sign1_verify(const uint8_t *msg, size_t len, const uint8_t *spki, size_t spki_len,
                              const uint8_t **payload, size_t *payload_len) RP_MUST_CHECK;

/* Verify evidence and decode its claims. OUT: *claims, zeroed unless the result is RP_OK. */
rp_err_t rp_eat_verify(const uint8_t *msg, size_t len, const uint8_t *spki, size_t spki_len,
                       rp_eat_claims_t *claims) RP_MUST_CHECK;

#endif /* RAMPART_EAT_H */
