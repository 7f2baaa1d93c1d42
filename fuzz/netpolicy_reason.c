/*
 * Fuzz target: a refused packet as the network policy logs it (rp_packet_reason). The packet
 * is an app's, so every byte is hostile; the first byte picks the kind. An accepted packet gives a
 * reason that is a terminated string inside its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char reason[256];
    if (size < 1)
        return 0;
    char kind = (data[0] & 1) ? 'l' : 'c';
    /* A copy of exactly size-1 bytes, so ASan sees any read past the packet. */
    uint8_t *pkt = malloc(size - 1 ? size - 1 : 1);
    if (!pkt)
        return 0;
    memcpy(pkt, data + 1, size - 1);
    size_t cap = 1 + data[0] % sizeof(reason);
    if (rp_packet_reason(kind, pkt, size - 1, reason, cap) == RP_OK &&
        strnlen(reason, cap) >= cap)
        abort();
    free(pkt);
    return 0;
}
