/*
 * Fuzz target: a record from rampart-unpack read as the app supervisor takes it
 * (rp_reader_decode). The reader parses an app's bytes, so it may be the app's: every byte is
 * hostile. An accepted record re-encodes to exactly its bytes, and its texts are terminated,
 * bounded and free of control characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "rampart/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_reader_record_t r;
    uint8_t again[RP_READER_RECORD_LEN];
    /* A copy of exactly size bytes, so ASan sees any read past the record. */
    uint8_t *in = malloc(size ? size : 1);

    if (!in)
        return 0;
    memcpy(in, data, size);
    if (rp_reader_decode(in, size, &r) == RP_OK &&
        (rp_reader_encode(&r, again) != RP_OK || memcmp(again, in, sizeof(again)) != 0 ||
         strnlen(r.reason, sizeof(r.reason)) > RP_EVENT_REASON_MAX ||
         !rp_text_no_controls(r.reason) || !rp_text_utf8_valid(r.reason) ||
         strnlen(r.component, sizeof(r.component)) > RP_COMPONENT_NAME_MAX))
        abort();
    free(in);
    return 0;
}
