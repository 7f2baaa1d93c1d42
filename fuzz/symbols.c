/*
 * Fuzz target: a debug file as `rampart symbols upload` sends it (rp_symbols_build_id,
 * server/symbols.c: libelf reads its build ID, whether it names anything, and how large its
 * sections are once decompressed), then, when accepted, what naming frames does with it
 * (rp_symbols_open/lookup, libdwfl offline), as the service does at each `rampart failure show`.
 * An accepted file has a build ID of lowercase hex; nothing may crash or leak. libelf and libdw
 * are not instrumented: this finds crashes there more than it steers into them. Seeds:
 * fuzz/corpus/symbols (small debug files made with objcopy --only-keep-debug, one compressed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reports.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    char id[2 * RP_REPORT_BUILD_ID_MAX + 1], path[64];
    uint64_t offs[4] = {0, 0x1000, 0x1139, UINT64_MAX};
    rp_symbol_t sym[4];
    rp_symbols_t *h;
    size_t n;

    if (rp_symbols_build_id(data, size, id) != RP_OK)
        return 0;
    n = strlen(id);
    if (n == 0 || n % 2 != 0 || strspn(id, "0123456789abcdef") != n)
        abort();
    /* The service reads the file it kept: the same bytes, through a path. */
    if (fd < 0 && (fd = memfd_create("fuzz-symbols", 0)) < 0)
        abort();
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (size >= 8)
        memcpy(&offs[0], data + size - 8, 8);
    if (rp_symbols_open(path, &h) != RP_OK)
        return 0;
    rp_symbols_lookup(h, offs, 4, sym);
    for (size_t i = 0; i < 4; i++)
        if (strlen(sym[i].function) >= sizeof(sym[i].function) || sym[i].line < 0)
            abort();
    rp_symbols_close(h);
    return 0;
}
