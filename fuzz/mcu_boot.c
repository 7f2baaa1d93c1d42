/*
 * Fuzz target: the boot stage's lines as the device reads them from an MCU's relay
 * (device/monitor/mcu.c, rp_mcu_boot_line), split at newlines as rp_mcu_boot splits them. What it
 * keeps must be what the line said: a verdict's version and the verdict line whole, reasons of
 * printable ASCII, all NUL-terminated within their fields, the firmware's evidence within its
 * bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    rp_mcu_boot_t b;
    size_t start = 0;

    memset(&b, 0, sizeof(b));
    for (size_t i = 0; i <= size; i++) {
        if (i < size && s[i] != '\n')
            continue;
        rp_mcu_boot_line(&b, s + start, i - start);
        start = i + 1;
    }
    if (memchr(b.version, '\0', sizeof(b.version)) == NULL ||
        memchr(b.verdict, '\0', sizeof(b.verdict)) == NULL ||
        memchr(b.refused, '\0', sizeof(b.refused)) == NULL ||
        memchr(b.slot1_refused, '\0', sizeof(b.slot1_refused)) == NULL)
        abort();
    if (b.booted && (b.version[0] == '\0' || strstr(b.verdict, b.version) == NULL ||
                     strncmp(b.verdict, "boot: slot0 version ", 20) != 0))
        abort();
    if (b.evidence_len > sizeof(b.evidence))
        abort();
    for (const char *r = b.refused; *r != '\0'; r++)
        if (*r < 0x20 || *r > 0x7e)
            abort();
    return 0;
}
