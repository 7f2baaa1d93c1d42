/*
 * Fuzz target: the resolved addresses' binary form (rp_netaddrs_decode), as the monitor's network
 * policy takes it from rampart-unpack resolve (a child that parsed DNS answers from the network:
 * every byte is hostile). The first byte says how many names were asked (0 to 32 and beyond, to
 * see larger counts refused); the rest is the answer. Whatever is accepted keeps the form's rules
 * (counts in range, usable addresses, none twice) and encodes back to exactly the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/netaddrs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rp_netaddrs_t got[RP_NETADDRS_NAMES_MAX];
    static uint8_t again[RP_NETADDRS_BIN_MAX];
    char why[256] = "";
    size_t n, len = 0;
    uint8_t *buf;

    if (size < 1)
        return 0;
    n = data[0] % (RP_NETADDRS_NAMES_MAX + 4);
    /* A copy of exactly size-1 bytes, so ASan sees any read past the answer. */
    buf = malloc(size - 1 ? size - 1 : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, size - 1);
    if (rp_netaddrs_decode(buf, size - 1, n, got, why, sizeof(why)) == RP_OK) {
        if (n > RP_NETADDRS_NAMES_MAX)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (got[i].n > RP_NETADDRS_PER_NAME)
                abort();
            for (size_t j = 0; j < got[i].n; j++)
                if (!rp_netaddrs_usable(got[i].addr[j]))
                    abort();
        }
        if (rp_netaddrs_encode(got, n, again, sizeof(again), &len) != RP_OK || len != size - 1 ||
            memcmp(again, buf, len) != 0)
            abort();
    } else if (strnlen(why, sizeof(why)) >= sizeof(why) && n <= RP_NETADDRS_NAMES_MAX) {
        abort();
    }
    free(buf);
    return 0;
}
