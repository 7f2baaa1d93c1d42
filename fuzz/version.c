/*
 * Fuzz target: the version string parser, with the round-trip property that anything it accepts
 * formats back to a string that parses to the same version.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_image_version_t v, back;
    char s[RP_IMAGE_VERSION_STR_MAX];

    if (rp_image_version_parse((const char *)data, size, &v) != RP_OK)
        return 0;
    if (rp_image_version_format(&v, s, sizeof(s)) != RP_OK)
        abort();
    if (rp_image_version_parse(s, strlen(s), &back) != RP_OK ||
        rp_image_version_cmp(&v, &back) != 0)
        abort();
    return 0;
}
