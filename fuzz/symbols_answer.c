/*
 * Fuzz target: what rampart-symbolize answers the service (rp_symbols_parse_lookup and
 * rp_symbols_parse_check, server/device/symbols.c). The child reads untrusted debug files, so its answer
 * is untrusted too: it is parsed strictly and bounded. The first byte picks how many frames were
 * asked; an accepted answer fills each frame within its bounds. Seeds: fuzz/corpus/symbols_answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reports.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_symbol_t sym[8];
    char id[2 * RP_REPORT_BUILD_ID_MAX + 1];
    size_t n;

    if (size < 1)
        return 0;
    n = data[0] % 9;
    if (rp_symbols_parse_lookup((const char *)data + 1, size - 1, n, sym) == RP_OK)
        for (size_t i = 0; i < n; i++)
            if (strnlen(sym[i].function, sizeof(sym[i].function)) == sizeof(sym[i].function) ||
                strnlen(sym[i].file, sizeof(sym[i].file)) == sizeof(sym[i].file) ||
                sym[i].line < 0 || (sym[i].line > 0 && sym[i].function[0] == '\0'))
                abort();
    if (rp_symbols_parse_check((const char *)data + 1, size - 1, id) == RP_OK &&
        (strlen(id) < 2 || strlen(id) % 2 != 0 || strspn(id, "0123456789abcdef") != strlen(id)))
        abort();
    return 0;
}
