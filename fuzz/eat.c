/*
 * Fuzz target: attestation evidence as the server receives it — the COSE_Sign1 envelope, the
 * claims decoder, and the CBOR reader's skip — with the property that any claims the decoder
 * accepts encode again and decode to the same values. Seeds: fuzz/corpus/eat.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/cbor.h"
#include "rampart/eat.h"

static uint8_t key[RP_PUBKEY_DER_MAX];
static size_t key_len;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FILE *f = fopen(RP_VECTORS_DIR "/../eat/evidence-key.der", "rb");

    (void)argc;
    (void)argv;
    if (f == NULL)
        abort();
    key_len = fread(key, 1, sizeof(key), f);
    fclose(f);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rp_eat_claims_t c, back;
    static uint8_t buf[RP_EAT_MAX_SIZE];
    rp_cbor_reader_t r;
    size_t len;

    if (rp_eat_verify(data, size, key, key_len, &c) != RP_OK && c.nonce_len != 0)
        abort(); /* nothing is released on failure */
    rp_cbor_reader_init(&r, data, size);
    if (rp_cbor_skip(&r) == RP_OK && (r.off == 0 || r.off > size))
        abort(); /* a skipped item is at least one byte, and within the input */
    if (rp_eat_decode_claims(data, size, &c) == RP_OK) {
        if (rp_eat_encode_claims(&c, buf, sizeof(buf), &len) != RP_OK)
            abort();
        if (rp_eat_decode_claims(buf, len, &back) != RP_OK || memcmp(&c, &back, sizeof(c)) != 0)
            abort();
    }
    return 0;
}
