/*
 * The core's CBOR writer and pull reader over libcbor's encoder and streaming decoder, neither of
 * which allocates. Every length in the input is checked against the bytes that remain.
 */
#include <string.h>

#include <cbor.h>

#include "rampart/cbor.h"

void rp_cbor_writer_init(rp_cbor_writer_t *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = buf != NULL ? cap : 0;
    w->len = 0;
    w->failed = false;
}

/* Account for n bytes that an encoder wrote (0 means it did not fit). */
static void advance(rp_cbor_writer_t *w, size_t n)
{
    if (n == 0)
        w->failed = true;
    else
        w->len += n;
}

static unsigned char *room(rp_cbor_writer_t *w)
{
    return w->failed ? NULL : w->buf + w->len;
}

static size_t left(const rp_cbor_writer_t *w)
{
    return w->failed ? 0 : w->cap - w->len;
}

void rp_cbor_put_uint(rp_cbor_writer_t *w, uint64_t v)
{
    if (!w->failed)
        advance(w, cbor_encode_uint(v, room(w), left(w)));
}

void rp_cbor_put_int(rp_cbor_writer_t *w, int64_t v)
{
    if (w->failed)
        return;
    if (v >= 0)
        advance(w, cbor_encode_uint((uint64_t)v, room(w), left(w)));
    else
        advance(w, cbor_encode_negint((uint64_t)(-1 - v), room(w), left(w)));
}

void rp_cbor_put_raw(rp_cbor_writer_t *w, const void *data, size_t len)
{
    if (w->failed)
        return;
    if (len > left(w) || (len > 0 && data == NULL)) {
        w->failed = true;
        return;
    }
    if (len > 0)
        memcpy(w->buf + w->len, data, len);
    w->len += len;
}

void rp_cbor_put_bstr_head(rp_cbor_writer_t *w, size_t len)
{
    if (!w->failed)
        advance(w, cbor_encode_bytestring_start(len, room(w), left(w)));
}

void rp_cbor_put_bstr(rp_cbor_writer_t *w, const void *data, size_t len)
{
    rp_cbor_put_bstr_head(w, len);
    rp_cbor_put_raw(w, data, len);
}

void rp_cbor_put_tstr(rp_cbor_writer_t *w, const char *s, size_t len)
{
    if (!w->failed)
        advance(w, cbor_encode_string_start(len, room(w), left(w)));
    rp_cbor_put_raw(w, s, len);
}

void rp_cbor_put_array(rp_cbor_writer_t *w, size_t n)
{
    if (!w->failed)
        advance(w, cbor_encode_array_start(n, room(w), left(w)));
}

void rp_cbor_put_map(rp_cbor_writer_t *w, size_t n)
{
    if (!w->failed)
        advance(w, cbor_encode_map_start(n, room(w), left(w)));
}

void rp_cbor_put_tag(rp_cbor_writer_t *w, uint64_t tag)
{
    if (!w->failed)
        advance(w, cbor_encode_tag(tag, room(w), left(w)));
}

rp_err_t rp_cbor_writer_finish(const rp_cbor_writer_t *w, size_t *len)
{
    if (w->failed)
        return RP_ERR_BUFFER_TOO_SMALL;
    *len = w->len;
    return RP_OK;
}

void rp_cbor_reader_init(rp_cbor_reader_t *r, const uint8_t *buf, size_t len)
{
    r->buf = buf;
    r->len = buf != NULL ? len : 0;
    r->off = 0;
}

bool rp_cbor_at_end(const rp_cbor_reader_t *r)
{
    return r->off == r->len;
}

/* What the streaming decoder's callbacks report about the one item decoded. */
struct decoded {
    rp_cbor_item_t *item;
    bool bad; /* an item we refuse: float, undefined, indefinite length */
};

#define ITEM(ctx) (((struct decoded *)(ctx))->item)

static void on_uint8(void *ctx, uint8_t v)
{
    ITEM(ctx)->type = RP_CBOR_UINT;
    ITEM(ctx)->u = v;
}
static void on_uint16(void *ctx, uint16_t v)
{
    ITEM(ctx)->type = RP_CBOR_UINT;
    ITEM(ctx)->u = v;
}
static void on_uint32(void *ctx, uint32_t v)
{
    ITEM(ctx)->type = RP_CBOR_UINT;
    ITEM(ctx)->u = v;
}
static void on_uint64(void *ctx, uint64_t v)
{
    ITEM(ctx)->type = RP_CBOR_UINT;
    ITEM(ctx)->u = v;
}
static void on_neg8(void *ctx, uint8_t v)
{
    ITEM(ctx)->type = RP_CBOR_NEGINT;
    ITEM(ctx)->u = v;
}
static void on_neg16(void *ctx, uint16_t v)
{
    ITEM(ctx)->type = RP_CBOR_NEGINT;
    ITEM(ctx)->u = v;
}
static void on_neg32(void *ctx, uint32_t v)
{
    ITEM(ctx)->type = RP_CBOR_NEGINT;
    ITEM(ctx)->u = v;
}
static void on_neg64(void *ctx, uint64_t v)
{
    ITEM(ctx)->type = RP_CBOR_NEGINT;
    ITEM(ctx)->u = v;
}

static void on_bstr(void *ctx, cbor_data data, size_t len)
{
    ITEM(ctx)->type = RP_CBOR_BSTR;
    ITEM(ctx)->data = data;
    ITEM(ctx)->len = len;
}

static void on_tstr(void *ctx, cbor_data data, size_t len)
{
    ITEM(ctx)->type = RP_CBOR_TSTR;
    ITEM(ctx)->data = data;
    ITEM(ctx)->len = len;
}

static void on_array(void *ctx, size_t n)
{
    ITEM(ctx)->type = RP_CBOR_ARRAY;
    ITEM(ctx)->u = n;
}
static void on_map(void *ctx, size_t n)
{
    ITEM(ctx)->type = RP_CBOR_MAP;
    ITEM(ctx)->u = n;
}
static void on_tag(void *ctx, uint64_t t)
{
    ITEM(ctx)->type = RP_CBOR_TAG;
    ITEM(ctx)->u = t;
}
static void on_bool(void *ctx, bool b)
{
    ITEM(ctx)->type = RP_CBOR_BOOL;
    ITEM(ctx)->b = b;
}
static void on_null(void *ctx)
{
    ITEM(ctx)->type = RP_CBOR_NULL;
}
static void on_refused(void *ctx)
{
    ((struct decoded *)ctx)->bad = true;
}
static void on_refused_float(void *ctx, float f)
{
    (void)f;
    on_refused(ctx);
}
static void on_refused_double(void *ctx, double d)
{
    (void)d;
    on_refused(ctx);
}

static const struct cbor_callbacks callbacks = {
    .uint8 = on_uint8,
    .uint16 = on_uint16,
    .uint32 = on_uint32,
    .uint64 = on_uint64,
    .negint8 = on_neg8,
    .negint16 = on_neg16,
    .negint32 = on_neg32,
    .negint64 = on_neg64,
    .byte_string = on_bstr,
    .byte_string_start = on_refused,
    .string = on_tstr,
    .string_start = on_refused,
    .array_start = on_array,
    .indef_array_start = on_refused,
    .map_start = on_map,
    .indef_map_start = on_refused,
    .tag = on_tag,
    .float2 = on_refused_float,
    .float4 = on_refused_float,
    .float8 = on_refused_double,
    .undefined = on_refused,
    .null = on_null,
    .boolean = on_bool,
    .indef_break = on_refused,
};

rp_err_t rp_cbor_next(rp_cbor_reader_t *r, rp_cbor_item_t *item)
{
    struct decoded d = {item, false};
    struct cbor_decoder_result res;

    if (r == NULL || item == NULL)
        return RP_ERR_INVALID_ARG;
    memset(item, 0, sizeof(*item));
    if (r->off >= r->len)
        return RP_ERR_MALFORMED;
    /* libcbor 0.8's streaming decoder refuses tags 6 to 20 in their one-byte form (0xc6-0xd4),
     * and 18 is COSE_Sign1's: that one initial byte is read here (RFC 8949 section 3.4). */
    if (r->buf[r->off] >= 0xc6 && r->buf[r->off] <= 0xd4) {
        item->type = RP_CBOR_TAG;
        item->u = r->buf[r->off] & 0x1f;
        r->off++;
        return RP_OK;
    }
    res = cbor_stream_decode(r->buf + r->off, r->len - r->off, &callbacks, &d);
    if (res.status != CBOR_DECODER_FINISHED || d.bad || item->type == 0 || res.read == 0 ||
        res.read > r->len - r->off)
        return RP_ERR_MALFORMED;
    r->off += res.read;
    return RP_OK;
}

rp_err_t rp_cbor_skip(rp_cbor_reader_t *r)
{
    /* Items still to skip at each open level; each item read consumes at least one byte, so a
     * claimed count larger than the bytes left is malformed at once. */
    uint64_t pending[RP_CBOR_MAX_DEPTH + 1];
    int depth = 0;
    rp_cbor_item_t it;
    rp_err_t err;

    pending[0] = 1;
    while (depth >= 0) {
        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        pending[depth]--;
        err = rp_cbor_next(r, &it);
        if (err != RP_OK)
            return err;
        if (it.type == RP_CBOR_ARRAY || it.type == RP_CBOR_MAP || it.type == RP_CBOR_TAG) {
            uint64_t n = it.type == RP_CBOR_TAG ? 1 : it.u;
            if (it.type == RP_CBOR_MAP && n > UINT64_MAX / 2)
                return RP_ERR_MALFORMED;
            if (it.type == RP_CBOR_MAP)
                n *= 2;
            if (n > r->len - r->off)
                return RP_ERR_MALFORMED;
            if (n == 0)
                continue;
            if (depth == RP_CBOR_MAX_DEPTH)
                return RP_ERR_MALFORMED;
            pending[++depth] = n;
        }
    }
    return RP_OK;
}

static rp_err_t get(rp_cbor_reader_t *r, rp_cbor_type_t type, rp_cbor_item_t *it)
{
    rp_err_t err = rp_cbor_next(r, it);

    if (err != RP_OK)
        return err;
    return it->type == type ? RP_OK : RP_ERR_MALFORMED;
}

rp_err_t rp_cbor_get_uint(rp_cbor_reader_t *r, uint64_t *v)
{
    rp_cbor_item_t it;
    rp_err_t err = get(r, RP_CBOR_UINT, &it);

    if (err == RP_OK)
        *v = it.u;
    return err;
}

rp_err_t rp_cbor_get_int(rp_cbor_reader_t *r, int64_t *v)
{
    rp_cbor_item_t it;
    rp_err_t err = rp_cbor_next(r, &it);

    if (err != RP_OK)
        return err;
    if (it.type != RP_CBOR_UINT && it.type != RP_CBOR_NEGINT)
        return RP_ERR_MALFORMED;
    if (it.u > INT64_MAX)
        return RP_ERR_MALFORMED;
    *v = it.type == RP_CBOR_UINT ? (int64_t)it.u : -1 - (int64_t)it.u;
    return RP_OK;
}

rp_err_t rp_cbor_get_bstr(rp_cbor_reader_t *r, const uint8_t **data, size_t *len)
{
    rp_cbor_item_t it;
    rp_err_t err = get(r, RP_CBOR_BSTR, &it);

    if (err == RP_OK) {
        *data = it.data;
        *len = it.len;
    }
    return err;
}

rp_err_t rp_cbor_get_tstr(rp_cbor_reader_t *r, const char **s, size_t *len)
{
    rp_cbor_item_t it;
    rp_err_t err = get(r, RP_CBOR_TSTR, &it);

    if (err == RP_OK) {
        *s = (const char *)it.data;
        *len = it.len;
    }
    return err;
}

rp_err_t rp_cbor_get_array(rp_cbor_reader_t *r, uint64_t *n)
{
    rp_cbor_item_t it;
    rp_err_t err = get(r, RP_CBOR_ARRAY, &it);

    if (err == RP_OK)
        *n = it.u;
    return err;
}

rp_err_t rp_cbor_get_map(rp_cbor_reader_t *r, uint64_t *n)
{
    rp_cbor_item_t it;
    rp_err_t err = get(r, RP_CBOR_MAP, &it);

    if (err == RP_OK)
        *n = it.u;
    return err;
}
