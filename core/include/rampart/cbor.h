/*
 * CBOR (RFC 8949) for the portable core, on libcbor's allocation-free parts: a writer into a
 * caller buffer, and a pull reader that yields one data item head at a time with strings pointing
 * into the input. Definite lengths only; floats, indefinite lengths and nesting deeper than
 * RP_CBOR_MAX_DEPTH are refused as malformed.
 */
#ifndef RAMPART_CBOR_H
#define RAMPART_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/crypto.h"
#include "rampart/error.h"

#define RP_CBOR_MAX_DEPTH 16

/* A writer that records overflow instead of writing past cap; finish() reports it once. */
typedef struct rp_cbor_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool failed;
} rp_cbor_writer_t;

void rp_cbor_writer_init(rp_cbor_writer_t *w, uint8_t *buf, size_t cap);
void rp_cbor_put_uint(rp_cbor_writer_t *w, uint64_t v);
void rp_cbor_put_int(rp_cbor_writer_t *w, int64_t v);
void rp_cbor_put_bstr(rp_cbor_writer_t *w, const void *data, size_t len);
/* Only the head of a byte string of len bytes; the caller supplies the content elsewhere. */
void rp_cbor_put_bstr_head(rp_cbor_writer_t *w, size_t len);
void rp_cbor_put_tstr(rp_cbor_writer_t *w, const char *s, size_t len);
void rp_cbor_put_array(rp_cbor_writer_t *w, size_t n);
void rp_cbor_put_map(rp_cbor_writer_t *w, size_t n);
void rp_cbor_put_tag(rp_cbor_writer_t *w, uint64_t tag);
/* Append raw bytes that are already CBOR. */
void rp_cbor_put_raw(rp_cbor_writer_t *w, const void *data, size_t len);
/* OUT: *len, the bytes written; RP_ERR_BUFFER_TOO_SMALL if anything did not fit. */
rp_err_t rp_cbor_writer_finish(const rp_cbor_writer_t *w, size_t *len) RP_MUST_CHECK;

typedef enum rp_cbor_type {
    RP_CBOR_UINT = 1,
    RP_CBOR_NEGINT, /* the value is -1 - u */
    RP_CBOR_BSTR,
    RP_CBOR_TSTR,
    RP_CBOR_ARRAY, /* u: number of items */
    RP_CBOR_MAP,   /* u: number of pairs */
    RP_CBOR_TAG,   /* u: the tag; the tagged item follows */
    RP_CBOR_BOOL,
    RP_CBOR_NULL,
} rp_cbor_type_t;

typedef struct rp_cbor_item {
    rp_cbor_type_t type;
    uint64_t u;
    bool b;
    const uint8_t *data; /* BSTR, TSTR: the content, inside the reader's buffer */
    size_t len;
} rp_cbor_item_t;

typedef struct rp_cbor_reader {
    const uint8_t *buf;
    size_t len;
    size_t off;
} rp_cbor_reader_t;

void rp_cbor_reader_init(rp_cbor_reader_t *r, const uint8_t *buf, size_t len);
/* Whether every byte has been read. */
bool rp_cbor_at_end(const rp_cbor_reader_t *r);

/* The next item head (a whole string, or the head of an array, map or tag). OUT: *item. */
rp_err_t rp_cbor_next(rp_cbor_reader_t *r, rp_cbor_item_t *item) RP_MUST_CHECK;
/* Skip one complete data item, however nested (up to RP_CBOR_MAX_DEPTH). */
rp_err_t rp_cbor_skip(rp_cbor_reader_t *r) RP_MUST_CHECK;

/* The next item, which must be of the given kind; RP_ERR_MALFORMED otherwise. */
rp_err_t rp_cbor_get_uint(rp_cbor_reader_t *r, uint64_t *v) RP_MUST_CHECK;
rp_err_t rp_cbor_get_int(rp_cbor_reader_t *r, int64_t *v) RP_MUST_CHECK;
rp_err_t rp_cbor_get_bstr(rp_cbor_reader_t *r, const uint8_t **data, size_t *len) RP_MUST_CHECK;
rp_err_t rp_cbor_get_tstr(rp_cbor_reader_t *r, const char **s, size_t *len) RP_MUST_CHECK;
rp_err_t rp_cbor_get_array(rp_cbor_reader_t *r, uint64_t *n) RP_MUST_CHECK;
rp_err_t rp_cbor_get_map(rp_cbor_reader_t *r, uint64_t *n) RP_MUST_CHECK;

#endif /* RAMPART_CBOR_H */
