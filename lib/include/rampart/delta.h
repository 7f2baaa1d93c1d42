/*
 * Delta updates: a zstd "patch-from" delta (libzstd, the base image as the compression
 * dictionary's prefix) that rebuilds a target image from the image a device runs. The rebuilt
 * image is then checked exactly as a full download is; any failure falls back to the full image.
 */
#ifndef RAMPART_DELTA_H
#define RAMPART_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"

#define RP_DELTA_MAX_IMAGE (256ull * 1024 * 1024) /* larger images get no delta */

/* Make the delta from base (blen bytes) to target (tlen bytes), each at most RP_DELTA_MAX_IMAGE.
 * OUT: *out (malloc'd; the caller frees it), *out_len. */
rp_err_t rp_delta_make_buf(const uint8_t *base, size_t blen, const uint8_t *target, size_t tlen,
                           uint8_t **out, size_t *out_len) RP_MUST_CHECK;
/* Make the delta from base to target into out (written atomically). */
rp_err_t rp_delta_make(const char *base, const char *target, const char *out) RP_MUST_CHECK;

/* Rebuild into out (replaced) the image the delta makes from base: at most max bytes, or
 * RP_ERR_TOO_LARGE. RP_ERR_MALFORMED for a delta that does not decode against this base. */
rp_err_t rp_delta_apply(const char *base, const char *delta, const char *out,
                        uint64_t max) RP_MUST_CHECK;

#endif /* RAMPART_DELTA_H */
