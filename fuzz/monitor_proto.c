/*
 * Fuzz target: the monitor protocol's decoders (device/monitor/proto.c), both directions, with the
 * round-trip property that a packet either decoder accepts encodes back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static uint8_t out[RP_MON_PACKET_MAX];
static rp_mon_request_t q;
static rp_mon_reply_t r;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;

    if (rp_mon_request_decode(data, size, &q) == RP_OK) {
        if (rp_mon_request_encode(&q, out, sizeof(out), &len) != RP_OK || len != size ||
            memcmp(out, data, size) != 0)
            abort();
    }
    if (rp_mon_reply_decode(data, size, &r) == RP_OK) {
        if (rp_mon_reply_encode(&r, out, sizeof(out), &len) != RP_OK || len != size ||
            memcmp(out, data, size) != 0)
            abort();
    }
    return 0;
}
