/*
 * Fuzz target: the microcontroller build's CBOR encoder (mcu/common/cbor_encode.c) against
 * Debian's libcbor, as unit.cbor_encode does on chosen values: each 11-byte record of the input is
 * a function (byte 0), the buffer's fill byte (1), its size (2: below 250, that modulo 12, so
 * every size up to and past a head; above, SIZE_MAX and just below it) and the argument (3-10,
 * big-endian; a shorter last record gives a shorter, smaller argument). Any difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cbor_encode_diff.h"
#include "rampart/bytes.h"

#define RECORD 11

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];

    for (size_t off = 0; off + 3 <= size; off += RECORD) {
        const uint8_t *r = data + off;
        size_t fn = r[0] % CBOR_DIFF_FUNCTIONS, buffer_size;
        uint64_t value;

        buffer_size = r[2] < 250 ? r[2] % (CBOR_DIFF_HEAD_MAX + 3) : SIZE_MAX - (255u - r[2]);
        value = rp_be_get(r + 3, size - off < RECORD ? size - off - 3 : RECORD - 3);
        if (!cbor_diff_check(fn, value, buffer_size, r[1], why, sizeof(why))) {
            fprintf(stderr, "%s\n", why);
            abort();
        }
    }
    return 0;
}
