/*
 * Signed update metadata (docs/updates.md): a JSON payload, signed as the exact bytes it is, in
 * an envelope
 *
 *   {"signed": BASE64(payload), "signatures": [{"keyid": HEX, "sig": BASE64}, ...]}
 *
 * keyid is the SHA-256 of the signer's DER SubjectPublicKeyInfo; sig is over SHA-256(payload),
 * as images are signed (DER ECDSA P-256, or Ed25519 over the digest). Verifying never
 * canonicalizes JSON: the signature covers the bytes, which are parsed only once it verifies.
 */
#ifndef RAMPART_METADATA_H
#define RAMPART_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "rampart/crypto.h"
#include "rampart/error.h"

#define RP_MD_MAX (256 * 1024) /* an envelope */
#define RP_MD_KEYS_MAX 8       /* keys one role may have */

/* The keys a role trusts, and how many must sign. */
typedef struct rp_md_role {
    uint8_t spki[RP_MD_KEYS_MAX][RP_PUBKEY_DER_MAX];
    size_t spki_len[RP_MD_KEYS_MAX];
    size_t nkeys;
    size_t threshold;
} rp_md_role_t;

/* Sign payload (the exact bytes) with each key. OUT: *envelope (malloc'd JSON text). */
rp_err_t rp_md_sign(const char *payload, size_t len, EVP_PKEY *const *keys, size_t nkeys,
                    char **envelope) RP_MUST_CHECK;

/*
 * Open an envelope: at least role->threshold distinct keys of the role must have signed it
 * (signatures by other keys are ignored). OUT: *payload (the parsed JSON object; json_decref).
 * RP_ERR_MALFORMED for a bad envelope or payload, RP_ERR_BAD_SIGNATURE when too few signatures
 * verify.
 */
rp_err_t rp_md_open(const char *envelope, size_t len, const rp_md_role_t *role,
                    json_t **payload) RP_MUST_CHECK;

/* An envelope's payload, parsed but NOT verified: for metadata verified before it was kept, and
 * for reading which keys a new root says must sign it. RP_ERR_MALFORMED unless an object. */
rp_err_t rp_md_peek(const char *envelope, size_t len, json_t **payload) RP_MUST_CHECK;

/* A role from its JSON form {"threshold": N, "keys": [BASE64 SPKI...]}. */
rp_err_t rp_md_role_parse(json_t *j, rp_md_role_t *role) RP_MUST_CHECK;
/* The JSON form of keys (DER SPKIs) with a threshold. */
json_t *rp_md_role_json(const uint8_t *const *spki, const size_t *spki_len, size_t n,
                        size_t threshold);

#endif /* RAMPART_METADATA_H */
