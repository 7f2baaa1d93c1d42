/*
 * Fuzz target: the rule for operators' names (server/api/names.c) on any bytes. An accepted name's
 * canonical form must meet the rule itself, unchanged (NFC is stable), within its bounds, and
 * have its keys and be looked up as it is; a refusal always says why and leaves no output. Seeds:
 * fuzz/corpus/names.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rp_name_keys_t keys, keys2; /* (2 KiB each: off the stack) */
    char out[RP_NAME_MAX + 1], again[RP_NAME_MAX + 1], looked_up[RP_NAME_MAX + 1];
    const char *why = NULL;

    if (rp_name_check((const char *)data, size, out, sizeof(out), &why) != RP_OK) {
        if (why == NULL || out[0] != '\0')
            abort();
        /* A key is made for any valid UTF-8 (stored names made before the rule), or refused;
         * so is its lookup form. What is made is terminated within its bound. */
        if (size < sizeof(again) && memchr(data, 0, size) == NULL) {
            memcpy(again, data, size);
            again[size] = '\0';
            rp_err_t err = rp_name_keys(again, &keys);
            if (err == RP_OK ? memchr(keys.folded, '\0', sizeof(keys.folded)) == NULL ||
                                   memchr(keys.as_written, '\0', sizeof(keys.as_written)) == NULL
                             : err != RP_ERR_INVALID_ARG)
                abort();
            err = rp_name_lookup_form(again, looked_up, sizeof(looked_up));
            if (err == RP_OK ? memchr(looked_up, '\0', sizeof(looked_up)) == NULL
                             : err != RP_ERR_INVALID_ARG)
                abort();
        }
        return 0;
    }
    if (why != NULL || out[0] == '\0' || strlen(out) > RP_NAME_MAX)
        abort();
    if (rp_name_check(out, strlen(out), again, sizeof(again), &why) != RP_OK ||
        strcmp(out, again) != 0)
        abort(); /* the canonical form is a fixed point */
    if (rp_name_keys(out, &keys) != RP_OK || keys.folded[0] == '\0' || keys.as_written[0] == '\0' ||
        rp_name_keys(again, &keys2) != RP_OK || strcmp(keys.folded, keys2.folded) != 0 ||
        strcmp(keys.as_written, keys2.as_written) != 0)
        abort();
    /* An accepted name is looked up as it is kept. */
    if (rp_name_lookup_form(out, looked_up, sizeof(looked_up)) != RP_OK ||
        strcmp(out, looked_up) != 0)
        abort();
    return 0;
}
