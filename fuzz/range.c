/*
 * Fuzz target: the Range header of an image download (rp_range_parse). The first 8 bytes are the
 * file's size, the rest the header. A range it accepts lies inside the file and is not empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t file = 0, start = 0, len = 0;
    char header[256];
    bool unsat;

    if (size < 8 || size - 8 >= sizeof(header))
        return 0;
    memcpy(&file, data, 8);
    memcpy(header, data + 8, size - 8);
    header[size - 8] = '\0';
    if (rp_range_parse(header, file, &start, &len, &unsat)) {
        if (len == 0 || start >= file || len > file - start || unsat)
            abort();
    }
    return 0;
}
