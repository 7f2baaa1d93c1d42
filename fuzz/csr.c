/*
 * Fuzz target: the body of an EST simplereenroll request as the service parses it (base64, then a
 * DER or PEM PKCS#10 request whose self-signature must verify with an ECDSA P-256 key), and the
 * raw bytes as a request too. Seeds: fuzz/corpus/csr.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "ca.h"
#include "rampart/base64.h"

static void parse(const uint8_t *data, size_t size)
{
    X509_REQ *csr = NULL;

    if (rp_csr_parse(data, size, &csr) == RP_OK) {
        if (csr == NULL || X509_REQ_get0_pubkey(csr) == NULL)
            abort(); /* accepted means a request with a key */
        X509_REQ_free(csr);
    } else if (csr != NULL) {
        abort(); /* a refusal hands back nothing */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *der = NULL;
    size_t der_len = 0;

    parse(data, size);
    if (rp_base64_decode((const char *)data, size, &der, &der_len) == RP_OK)
        parse(der, der_len);
    free(der);
    return 0;
}
