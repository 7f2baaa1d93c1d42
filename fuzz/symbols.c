/*
 * Fuzz target: a debug file as rampart-symbolize reads it for the service (server/device/symbolize_elf.c:
 * libelf reads its build ID, whether it names anything, and how large its sections are once
 * decompressed; then, when accepted, libdwfl offline names offsets), in-process here so that the
 * fuzzer sees it (the service itself runs it in the confined child). An accepted file has a build
 * ID of lowercase hex; nothing may crash or leak. libelf and libdw are not instrumented: this
 * finds crashes there more than it steers into them. Seeds: fuzz/corpus/symbols (small debug
 * files made with objcopy --only-keep-debug, one compressed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "symbolize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char id[2 * RP_REPORT_BUILD_ID_MAX + 1];
    uint64_t offs[4] = {0, 0x1000, 0x1139, UINT64_MAX};
    rp_symbol_t sym[4];
    rp_symbolize_t *h;
    size_t n;
    int fd = memfd_create("fuzz-symbols", MFD_CLOEXEC);

    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    if (rp_symbolize_build_id(fd, id) != RP_OK) {
        close(fd);
        return 0;
    }
    n = strlen(id);
    if (n == 0 || n % 2 != 0 || strspn(id, "0123456789abcdef") != n)
        abort();
    if (size >= 8)
        memcpy(&offs[0], data + size - 8, 8);
    if (rp_symbolize_open(fd, &h) != RP_OK) /* takes fd over */
        return 0;
    rp_symbolize_lookup(h, offs, 4, sym);
    for (size_t i = 0; i < 4; i++)
        if (strlen(sym[i].function) >= sizeof(sym[i].function) || sym[i].line < 0)
            abort();
    rp_symbolize_close(h);
    return 0;
}
