/*
 * Fuzz target: the record of an app's log bucket a run leaves for the next
 * (device/launcher/lograte.c, rp_lograte_restore), which the compartment's init reads from the
 * file beside the log. A record it takes gives a bucket no fuller than the burst, nothing dropped,
 * and saved again at once says the same level.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compartment.h"
#include "lograte.h"

#define NOW 1000000
#define WALL 1700000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_lograte_t b;
    uint8_t again[RP_LOGRATE_RECORD_LEN];
    int64_t written = size > 0 ? WALL - data[0] * 1000LL : -1;

    if (!rp_lograte_restore(&b, NOW, WALL, written, data, size))
        return 0;
    if (size != RP_LOGRATE_RECORD_LEN || b.dropped != 0 || b.at_ms != NOW ||
        b.milli > (uint64_t)RP_COMPARTMENT_LOG_BURST * 1000)
        abort();
    rp_lograte_save(&b, NOW, WALL, again);
    if (!rp_lograte_restore(&b, NOW, WALL, WALL, again, sizeof(again)) ||
        b.milli / 1000 * 1000 != b.milli ||
        rp_lograte_take(&b, NOW, 2 * RP_COMPARTMENT_LOG_BURST) >
            RP_COMPARTMENT_LOG_BURST - RP_LOGRATE_LINE_MAX)
        abort();
    return 0;
}
