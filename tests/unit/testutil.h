/*
 * Helpers shared by the unit tests: loading fixtures, an in-memory image source, and rebuilding
 * an image's TLV areas to craft malformed or hostile variants.
 */
#ifndef RAMPART_TESTUTIL_H
#define RAMPART_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/image.h"

/* A loaded file; abort()s on failure, since a missing fixture is a broken test. */
typedef struct tu_buf {
    uint8_t *data;
    size_t len;
} tu_buf_t;

tu_buf_t tu_load(const char *dir, const char *name);
void tu_free(tu_buf_t *b);

/* An image source over memory; size may be shorter than the buffer to simulate truncation. */
typedef struct tu_mem_io {
    rp_image_io_t io;
    const uint8_t *data;
    bool fail_reads; /* every read fails, as a broken flash would */
} tu_mem_io_t;

void tu_mem_io_init(tu_mem_io_t *m, const uint8_t *data, size_t size);

/* Verify buf with the given DER keys and a 4 KiB scratch buffer, once through read() and once
 * mapped, aborting if the two disagree, and once more through a source that counts fetches,
 * aborting if any byte is fetched twice. OUT: *info (may be NULL). */
rp_err_t tu_verify(const uint8_t *data, size_t len, const tu_buf_t *keys, size_t nkeys,
                   rp_image_info_t *info);

/* One TLV of a crafted area. */
typedef struct tu_tlv {
    uint16_t type;
    uint16_t len;
    const uint8_t *value;
} tu_tlv_t;

#define TU_MAX_TLVS 16

/* An image split into what is signed and the TLVs after it. */
typedef struct tu_image {
    uint8_t *signed_part; /* [0, prot_end) */
    size_t signed_len;
    tu_tlv_t tlvs[TU_MAX_TLVS]; /* the unprotected TLVs, pointing into the original */
    size_t ntlvs;
} tu_image_t;

/* Split a well-formed image. */
void tu_split(const uint8_t *data, size_t len, tu_image_t *img);
/* Join it again with its (possibly edited) unprotected TLVs. OUT: a malloc'd image. */
tu_buf_t tu_join(const tu_image_t *img);
void tu_image_free(tu_image_t *img);

/* Find the index of the first unprotected TLV of type, or -1. */
int tu_find_tlv(const tu_image_t *img, uint16_t type);

#endif /* RAMPART_TESTUTIL_H */
