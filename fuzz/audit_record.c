/*
 * Fuzz target: a Landlock audit record as the kernel's audit multicast group gives it
 * (rp_audit_parse). Its paths are an app's, so every byte is hostile; the first byte picks the
 * type. An accepted refusal gives a reason that is terminated, within RP_EVENT_REASON_MAX, and
 * free of control characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "rampart/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_audit_record_t r;
    if (size < 1)
        return 0;
    int type = (data[0] & 1) ? RP_AUDIT_LANDLOCK_DOMAIN : RP_AUDIT_LANDLOCK_ACCESS;
    /* A copy of exactly size-1 bytes, unterminated, so ASan sees any read past the record. */
    char *text = malloc(size - 1 ? size - 1 : 1);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    if (rp_audit_parse(type, text, size - 1, &r) == RP_OK && r.kind == RP_AUDIT_REFUSAL &&
        (strnlen(r.reason, sizeof(r.reason)) > RP_EVENT_REASON_MAX ||
         !rp_text_no_controls(r.reason)))
        abort();
    free(text);
    return 0;
}
