/*
 * What reads debug files, in rampart-symbolize (server/device/symbolize_main.c), never in the service:
 * libelf and libdwfl on an uploaded (untrusted) ELF file given as a descriptor. The service runs
 * it as a confined child (server/device/symbols.c) and parses its answer strictly.
 *
 * The protocol between them (one owner: this header):
 *   rampart-symbolize check    the debug file on descriptor 3; answers {"build_id": "HEX"}
 *   rampart-symbolize lookup   the same, and on stdin one offset a line (hex, 0x...), at most
 *                              RP_SYMBOLIZE_QUERIES_MAX; answers {"frames": [F, ...]}, one F per
 *                              offset in order: {} or {"function": S[, "file": S, "line": N]}
 * Anything else (a refused file, a failure) is {"error": "why"} and exit status 1.
 */
#ifndef RAMPART_SERVER_SYMBOLIZE_H
#define RAMPART_SERVER_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

#include "reports.h"
#include "rampart/error.h"

#define RP_SYMBOLIZE_QUERIES_MAX 256 /* offsets in one lookup */
/* An answer at most: 256 frames of two 255-byte strings, JSON-escaped (at most 6 bytes each). */
#define RP_SYMBOLIZE_ANSWER_MAX (RP_SYMBOLIZE_QUERIES_MAX * 2 * 256 * 6 + 4096)

/* The build ID (lowercase hex) of the ELF file on fd, which must have a symbol table or DWARF
 * line data and whose sections stay within RP_SYMBOLS_UNPACKED_MAX decompressed. fd is only
 * read. RP_ERR_INVALID_ARG when it is not such a file. */
rp_err_t rp_symbolize_build_id(int fd, char out[2 * RP_REPORT_BUILD_ID_MAX + 1]) RP_MUST_CHECK;

/* The file on fd opened with libdwfl offline (fd is taken over, closed by _close), after the
 * same checks as rp_symbolize_build_id; look up as often as needed; close. */
typedef struct rp_symbolize rp_symbolize_t;
rp_err_t rp_symbolize_open(int fd, rp_symbolize_t **out) RP_MUST_CHECK;
void rp_symbolize_lookup(rp_symbolize_t *h, const uint64_t *offsets, size_t n, rp_symbol_t *out);
void rp_symbolize_close(rp_symbolize_t *h);

#endif /* RAMPART_SERVER_SYMBOLIZE_H */
