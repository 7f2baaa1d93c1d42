/*
 * Making attestation evidence on a host: encode the claims, have the identity key sign the COSE
 * Sig_structure's digest (a DER ECDSA signature from the root of trust or an OpenSSL key), and
 * wrap it as a COSE_Sign1 with the raw r || s that ES256 requires.
 */
#ifndef RAMPART_EVIDENCE_H
#define RAMPART_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "rampart/eat.h"

/* Sign a SHA-256 digest with ECDSA P-256; OUT: a DER signature in der[0..*len). */
typedef rp_err_t (*rp_sign_digest_fn)(void *ctx, const uint8_t digest[RP_SHA256_LEN], uint8_t *der,
                                      size_t cap, size_t *len);

/* A DER ECDSA P-256 signature as COSE's raw r || s (each left-padded to 32 bytes). */
rp_err_t rp_ecdsa_der_to_raw(const uint8_t *der, size_t len,
                             uint8_t raw[RP_ES256_SIG_LEN]) RP_MUST_CHECK;

/* Encode, sign and wrap. OUT: out[0..*len), at most RP_EAT_MAX_SIZE bytes. */
rp_err_t rp_evidence_make(const rp_eat_claims_t *claims, rp_sign_digest_fn sign, void *ctx,
                          uint8_t *out, size_t cap, size_t *len) RP_MUST_CHECK;

#endif /* RAMPART_EVIDENCE_H */
