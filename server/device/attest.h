/*
 * Device attestation (attest.c): the nonce and attestation routes, and the parser of the
 * attestation request's body.
 */
#ifndef RAMPART_SERVER_ATTEST_H
#define RAMPART_SERVER_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct rp_req rp_req_t;

void rp_attest_nonce(rp_req_t *r); /* POST /api/v1/attest/nonce */
void rp_attest(rp_req_t *r);       /* POST /api/v1/attest */

/*
 * The attestation request's body: {"evidence": base64 COSE_Sign1, "public_key": base64 DER
 * SubjectPublicKeyInfo of a P-256 key in its canonical form}. OUT: *evidence (malloc'd), spki;
 * on failure *error (a code) and *message say why. Pure: the fuzz target calls it.
 */
rp_err_t rp_attest_request_parse(const uint8_t *body, size_t len, uint8_t **evidence,
                                 size_t *evidence_len, uint8_t spki[RP_PUBKEY_DER_MAX],
                                 size_t *spki_len, const char **error,
                                 const char **message) RP_MUST_CHECK;

#endif /* RAMPART_SERVER_ATTEST_H */
