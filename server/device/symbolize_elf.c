/*
 * Debug files read with elfutils (symbolize.h), inside rampart-symbolize only: the build ID of an
 * uploaded file (libelf, libdwelf) and what it says of an offset, its function and source line
 * (libdwfl offline). Never a DWARF reader of our own, and never in the service's process.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <libelf.h>

#include "rampart/bytes.h"
#include "rampart/hex.h"
#include "symbolize.h"

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;
static bool elf_ok;

static void elf_init(void)
{
    elf_ok = elf_version(EV_CURRENT) != EV_NONE;
}

/* Whether the file has a symbol table or DWARF line data: something to name functions by. */
static bool has_symbols(Elf *elf)
{
    size_t shstrndx;
    Elf_Scn *scn = NULL;

    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return false;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        const char *name;
        if (gelf_getshdr(scn, &sh) == NULL)
            return false;
        if (sh.sh_type == SHT_NOBITS)
            continue;
        if (sh.sh_type == SHT_SYMTAB)
            return true;
        name = elf_strptr(elf, shstrndx, sh.sh_name);
        if (name != NULL && (strcmp(name, ".debug_line") == 0 || strcmp(name, ".debug_info") == 0))
            return true;
    }
    return false;
}

/*
 * Whether the sections stay within RP_SYMBOLS_UNPACKED_MAX once decompressed, as their headers
 * claim (libelf allocates what the header says before it inflates): SHF_COMPRESSED ones by their
 * Chdr, GNU .zdebug ones by their "ZLIB" header's size, the others by their size in the file.
 */
static bool unpacked_ok(Elf *elf)
{
    size_t shstrndx;
    uint64_t total = 0;
    Elf_Scn *scn = NULL;

    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return false;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        const char *name;
        uint64_t size;
        if (gelf_getshdr(scn, &sh) == NULL)
            return false;
        if (sh.sh_type == SHT_NOBITS)
            continue;
        name = elf_strptr(elf, shstrndx, sh.sh_name);
        size = sh.sh_size;
        if ((sh.sh_flags & SHF_COMPRESSED) != 0) {
            GElf_Chdr ch;
            if (gelf_getchdr(scn, &ch) == NULL)
                return false;
            size = ch.ch_size;
        } else if (name != NULL && strncmp(name, ".zdebug", 7) == 0) {
            Elf_Data *d = elf_rawdata(scn, NULL);
            const uint8_t *b = d != NULL ? d->d_buf : NULL;
            if (b == NULL || d->d_size < 12 || memcmp(b, "ZLIB", 4) != 0)
                return false;
            size = rp_be_get(b + 4, 8);
        }
        if (size > RP_SYMBOLS_UNPACKED_MAX - total)
            return false;
        total += size;
    }
    return true;
}

/* The checks of an accepted file on an open Elf: out its build ID. */
static rp_err_t check_elf(Elf *elf, char out[2 * RP_REPORT_BUILD_ID_MAX + 1])
{
    const void *id = NULL;
    ssize_t n;

    if (elf == NULL || elf_kind(elf) != ELF_K_ELF)
        return RP_ERR_INVALID_ARG;
    n = dwelf_elf_gnu_build_id(elf, &id);
    if (n > 0 && n <= RP_REPORT_BUILD_ID_MAX && has_symbols(elf) && unpacked_ok(elf) &&
        rp_hex_encode(id, (size_t)n, out, 2 * RP_REPORT_BUILD_ID_MAX + 1) == RP_OK)
        return RP_OK;
    return RP_ERR_INVALID_ARG;
}

rp_err_t rp_symbolize_build_id(int fd, char out[2 * RP_REPORT_BUILD_ID_MAX + 1])
{
    Elf *elf;
    rp_err_t err;

    out[0] = '\0';
    pthread_once(&elf_once, elf_init);
    if (!elf_ok)
        return RP_ERR_INVALID_ARG;
    elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    err = check_elf(elf, out);
    if (elf != NULL)
        elf_end(elf);
    if (err != RP_OK)
        out[0] = '\0';
    return err;
}

/* The debug file is the whole module: never look for another. */
static int no_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                        const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                        char **debuginfo_file_name)
{
    (void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
    (void)debuglink_file, (void)debuglink_crc, (void)debuginfo_file_name;
    return -1;
}

/* Nor any ELF file but the one given. */
static int no_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                  char **file_name, Elf **elfp)
{
    (void)mod, (void)userdata, (void)modname, (void)base, (void)file_name, (void)elfp;
    return -1;
}

static const Dwfl_Callbacks offline_callbacks = {
    .find_elf = no_elf,
    .find_debuginfo = no_debuginfo,
    .section_address = dwfl_offline_section_address,
};

struct rp_symbolize {
    Dwfl *dwfl;
    Dwfl_Module *mod;
    GElf_Addr bias;
};

rp_err_t rp_symbolize_open(int fd, rp_symbolize_t **out)
{
    char id[2 * RP_REPORT_BUILD_ID_MAX + 1];
    rp_symbolize_t *h;

    *out = NULL;
    if (rp_symbolize_build_id(fd, id) != RP_OK) {
        close(fd);
        return RP_ERR_INVALID_ARG;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL || (h->dwfl = dwfl_begin(&offline_callbacks)) == NULL) {
        free(h);
        close(fd);
        return RP_ERR_NO_MEMORY;
    }
    dwfl_report_begin(h->dwfl);
    h->mod = dwfl_report_offline(h->dwfl, "debug", "debug", fd); /* fd is libdwfl's now */
    if (h->mod == NULL)
        close(fd);
    if (h->mod == NULL || dwfl_report_end(h->dwfl, NULL, NULL) != 0 ||
        dwfl_module_getelf(h->mod, &h->bias) == NULL) {
        rp_symbolize_close(h);
        return RP_ERR_IO;
    }
    *out = h;
    return RP_OK;
}

void rp_symbolize_close(rp_symbolize_t *h)
{
    if (h == NULL)
        return;
    if (h->dwfl != NULL)
        dwfl_end(h->dwfl);
    free(h);
}

void rp_symbolize_lookup(rp_symbolize_t *h, const uint64_t *offsets, size_t n, rp_symbol_t *out)
{
    memset(out, 0, n * sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        GElf_Addr addr = offsets[i] + h->bias;
        GElf_Off off;
        GElf_Sym sym;
        const char *fn = dwfl_module_addrinfo(h->mod, addr, &off, &sym, NULL, NULL, NULL);
        Dwfl_Line *line = dwfl_module_getsrc(h->mod, addr);
        const char *src = NULL;
        int lineno = 0;

        if (fn != NULL)
            snprintf(out[i].function, sizeof(out[i].function), "%s", fn);
        if (line != NULL)
            src = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
        if (src != NULL && lineno > 0) {
            snprintf(out[i].file, sizeof(out[i].file), "%s", src);
            out[i].line = lineno;
        }
    }
}
