/* zstd patch-from deltas (see delta.h). */
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "rampart/delta.h"
#include "rampart/file.h"

#define DELTA_LEVEL                                                                                \
    9 /* with long-distance matching: small deltas, fast enough to make on demand                  \
       */
#define WINDOW_LOG_MAX 29 /* 512 MiB: more than base and target together can need */

/* The window a delta needs: a match may reach back across the whole base and what of the
 * target came before it, so both together, rounded up to a power of two. */
static int window_log(size_t base, size_t target)
{
    size_t n = base + target;
    int log = 10;

    while (log < WINDOW_LOG_MAX && ((size_t)1 << log) < n)
        log++;
    return log;
}

rp_err_t rp_delta_make_buf(const uint8_t *b, size_t blen, const uint8_t *t, size_t tlen,
                           uint8_t **out, size_t *out_len)
{
    uint8_t *d = NULL;
    size_t cap = ZSTD_compressBound(tlen), dlen = 0;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    rp_err_t err = RP_OK;

    *out = NULL;
    *out_len = 0;
    if (blen > RP_DELTA_MAX_IMAGE || tlen > RP_DELTA_MAX_IMAGE)
        err = RP_ERR_TOO_LARGE;
    else if ((d = malloc(cap > 0 ? cap : 1)) == NULL || cctx == NULL)
        err = RP_ERR_NO_MEMORY;
    if (err == RP_OK) {
        int wlog = window_log(blen, tlen);
        if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, DELTA_LEVEL)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_enableLongDistanceMatching, 1)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, wlog)) ||
            /* the frame carries its content's checksum: a wrong base fails to decode */
            ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)) ||
            ZSTD_isError(ZSTD_CCtx_refPrefix(cctx, b, blen)))
            err = RP_ERR_UNSUPPORTED;
    }
    if (err == RP_OK) {
        dlen = ZSTD_compress2(cctx, d, cap, t, tlen);
        if (ZSTD_isError(dlen))
            err = RP_ERR_IO;
    }
    ZSTD_freeCCtx(cctx);
    if (err != RP_OK) {
        free(d);
        return err;
    }
    *out = d;
    *out_len = dlen;
    return RP_OK;
}

rp_err_t rp_delta_make(const char *base, const char *target, const char *out)
{
    uint8_t *b = NULL, *t = NULL, *d = NULL;
    size_t blen, tlen, dlen;
    rp_err_t err = rp_read_file(base, RP_DELTA_MAX_IMAGE, &b, &blen);

    if (err == RP_OK)
        err = rp_read_file(target, RP_DELTA_MAX_IMAGE, &t, &tlen);
    if (err == RP_OK)
        err = rp_delta_make_buf(b, blen, t, tlen, &d, &dlen);
    if (err == RP_OK)
        err = rp_write_file_atomic(out, d, dlen, 0600, 0);
    free(b);
    free(t);
    free(d);
    return err;
}

rp_err_t rp_delta_apply(const char *base, const char *delta, const char *out, uint64_t max)
{
    uint8_t *b = NULL, *d = NULL, *t = NULL;
    size_t blen, dlen, tlen = 0;
    ZSTD_DCtx *dctx = NULL;
    unsigned long long want;
    rp_err_t err;

    if (max > RP_DELTA_MAX_IMAGE)
        max = RP_DELTA_MAX_IMAGE;
    err = rp_read_file(base, RP_DELTA_MAX_IMAGE, &b, &blen);
    if (err == RP_OK)
        err = rp_read_file(delta, RP_DELTA_MAX_IMAGE, &d, &dlen);
    if (err != RP_OK)
        goto out;
    /* The frame says how large the image is: no more than max is ever made. */
    want = ZSTD_getFrameContentSize(d, dlen);
    if (want == ZSTD_CONTENTSIZE_ERROR || want == ZSTD_CONTENTSIZE_UNKNOWN) {
        err = RP_ERR_MALFORMED;
        goto out;
    }
    if (want > max) {
        err = RP_ERR_TOO_LARGE;
        goto out;
    }
    t = malloc(want > 0 ? (size_t)want : 1);
    dctx = ZSTD_createDCtx();
    if (t == NULL || dctx == NULL) {
        err = RP_ERR_NO_MEMORY;
        goto out;
    }
    if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, WINDOW_LOG_MAX)) ||
        ZSTD_isError(ZSTD_DCtx_refPrefix(dctx, b, blen))) {
        err = RP_ERR_UNSUPPORTED;
        goto out;
    }
    tlen = ZSTD_decompressDCtx(dctx, t, (size_t)want, d, dlen);
    if (ZSTD_isError(tlen) || tlen != want) {
        err = RP_ERR_MALFORMED;
        goto out;
    }
    err = rp_write_file_atomic(out, t, tlen, 0600, 0);
out:
    ZSTD_freeDCtx(dctx);
    free(b);
    free(d);
    free(t);
    return err;
}
