/*
 * Fuzz target: a report as the device's queue checks it (rp_report_check, device/agent/reportq.c),
 * before it is queued and again when a queued file is read back. Whatever is accepted must hold
 * the contract's size bound, and be accepted again after a round trip through its JSON text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "reportq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[160];
    json_t *r = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

    if (r == NULL)
        return 0;
    for (int with_seq = 0; with_seq < 2; with_seq++) {
        why[0] = '\0';
        if (rp_report_check(r, with_seq != 0, why, sizeof(why)) == RP_OK) {
            char *text = json_dumps(r, JSON_COMPACT);
            json_t *again = text != NULL ? json_loads(text, 0, NULL) : NULL;
            if (text == NULL || strlen(text) > RP_REPORT_MAX_BYTES || again == NULL ||
                rp_report_check(again, with_seq != 0, why, sizeof(why)) != RP_OK)
                abort();
            json_decref(again);
            free(text);
        } else if (why[0] == '\0') {
            abort(); /* every refusal says why */
        }
    }
    json_decref(r);
    return 0;
}
