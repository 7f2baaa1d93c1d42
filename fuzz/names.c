/*
 * Fuzz target: the rule for operators' names (server/names.c) on any bytes. An accepted name's
 * canonical form must meet the rule itself, unchanged (NFC is stable), within its bounds, and
 * have a key; a refusal always says why and leaves no output. Seeds: fuzz/corpus/names.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[RP_NAME_MAX + 1], again[RP_NAME_MAX + 1], key[RP_NAME_KEY_MAX], key2[RP_NAME_KEY_MAX];
    const char *why = NULL;

    if (rp_name_check((const char *)data, size, out, sizeof(out), &why) != RP_OK) {
        if (why == NULL || out[0] != '\0')
            abort();
        /* A key is made for any valid UTF-8 (stored names made before the rule), or refused. */
        if (size < sizeof(again) && memchr(data, 0, size) == NULL) {
            memcpy(again, data, size);
            again[size] = '\0';
            (void)rp_name_key(again, key);
        }
        return 0;
    }
    if (why != NULL || out[0] == '\0' || strlen(out) > RP_NAME_MAX)
        abort();
    if (rp_name_check(out, strlen(out), again, sizeof(again), &why) != RP_OK ||
        strcmp(out, again) != 0)
        abort(); /* the canonical form is a fixed point */
    if (rp_name_key(out, key) != RP_OK || key[0] == '\0' || rp_name_key(again, key2) != RP_OK ||
        strcmp(key, key2) != 0)
        abort();
    return 0;
}
