/*
 * Fuzz target: the body of POST /api/v1/attest as the service parses it (JSON, base64, the
 * device's public key), and the evidence inside it as the verifier would check it. Any accepted
 * key must be a canonical P-256 SubjectPublicKeyInfo. Seeds: fuzz/corpus/attest_request.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/eat.h"
#include "attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rp_eat_claims_t claims;
    uint8_t spki[RP_PUBKEY_DER_MAX], point[RP_P256_POINT_LEN], *evidence = NULL;
    size_t evidence_len, spki_len;
    const char *error, *message;

    if (rp_attest_request_parse(data, size, &evidence, &evidence_len, spki, &spki_len, &error,
                                &message) != RP_OK) {
        if (evidence != NULL || error == NULL || message == NULL)
            abort(); /* a refusal always says why and leaks nothing */
        return 0;
    }
    if (evidence == NULL || evidence_len == 0 || evidence_len > RP_EAT_MAX_SIZE ||
        rp_pubkey_p256_point(spki, spki_len, point) != RP_OK)
        abort();
    if (rp_eat_verify(evidence, evidence_len, spki, spki_len, &claims) != RP_OK &&
        claims.nonce_len != 0)
        abort(); /* nothing is released on failure */
    free(evidence);
    return 0;
}
