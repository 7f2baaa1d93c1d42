/*
 * Fuzz target: the reader of a kept crash (device/monitor/crash_parse.c), which the agent runs on
 * what the monitor hands it (CRASHES). A file it accepts keeps every field within its bound, and
 * its capture encodes back to the file's own bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"

static rp_crash_t c;
static uint8_t out[RP_CRASH_CAPTURE_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;

    if (rp_crash_parse(data, size, &c) != RP_OK)
        return 0;
    if (c.log_len > RP_CRASH_LOG_MAX || c.cap.stack_len > RP_CRASH_STACK_MAX ||
        c.cap.regs_len > RP_CRASH_REGS_MAX || c.cap.nmods > RP_CRASH_MODULES_MAX ||
        strlen(c.component) > RP_COMPONENT_NAME_MAX)
        abort();
    /* The init's part is the file's tail, byte for byte. */
    if (rp_crash_capture_encode(&c.cap, out, sizeof(out), &len) != RP_OK || len > size ||
        memcmp(out, data + size - len, len) != 0)
        abort();
    return 0;
}
