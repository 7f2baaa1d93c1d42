/*
 * The CBOR encoder of the microcontroller build: the seven functions of libcbor's
 * <cbor/encoding.h> that the core's writer (core/src/cbor.c) calls, with libcbor's signatures and
 * results (the number of bytes written; 0, and nothing written, when the head does not fit).
 * Written here from RFC 8949 section 3 because libcbor's source is not in the archive the build
 * may fetch from (mcu/CMakeLists.txt); host builds link Debian's libcbor instead, and
 * unit.cbor_encode and fuzz-cbor_encode hold this file to it byte for byte. Definite lengths
 * only: the core never writes anything else.
 */
#include <stddef.h>
#include <stdint.h>

#include <cbor/encoding.h>

#include "rampart/bytes.h"

/* RFC 8949 3.1: the major types. */
enum { MT_UINT = 0, MT_NEGINT = 1, MT_BSTR = 2, MT_TSTR = 3, MT_ARRAY = 4, MT_MAP = 5, MT_TAG = 6 };

/*
 * A data item's head (RFC 8949 3): the initial byte, the major type in its top three bits and the
 * additional information in its low five, then the argument's bytes, big-endian. An argument below
 * 24 is the additional information itself; above, 24 to 27 say it follows in 1, 2, 4 or 8 bytes,
 * and the shortest that holds it is used (the preferred serialization, 4.1), as libcbor does.
 */
static size_t put_head(unsigned major, uint64_t arg, unsigned char *buf, size_t size)
{
    size_t extra;
    unsigned info;

    if (arg < 24) {
        extra = 0;
        info = (unsigned)arg;
    } else if (arg <= UINT8_MAX) {
        extra = 1;
        info = 24;
    } else if (arg <= UINT16_MAX) {
        extra = 2;
        info = 25;
    } else if (arg <= UINT32_MAX) {
        extra = 4;
        info = 26;
    } else {
        extra = 8;
        info = 27;
    }
    if (size < 1 + extra)
        return 0;
    buf[0] = (unsigned char)(major << 5 | info);
    rp_be_put(buf + 1, arg, extra);
    return 1 + extra;
}

size_t cbor_encode_uint(uint64_t value, unsigned char *buffer, size_t buffer_size)
{
    return put_head(MT_UINT, value, buffer, buffer_size);
}

/* The argument of a negative integer is -1 - n: the caller passes it so (libcbor's contract). */
size_t cbor_encode_negint(uint64_t value, unsigned char *buffer, size_t buffer_size)
{
    return put_head(MT_NEGINT, value, buffer, buffer_size);
}

size_t cbor_encode_bytestring_start(size_t length, unsigned char *buffer, size_t buffer_size)
{
    return put_head(MT_BSTR, length, buffer, buffer_size);
}

size_t cbor_encode_string_start(size_t length, unsigned char *buffer, size_t buffer_size)
{
    return put_head(MT_TSTR, length, buffer, buffer_size);
}

size_t cbor_encode_array_start(size_t length, unsigned char *buffer, size_t buffer_size)
{
    return put_head(MT_ARRAY, length, buffer, buffer_size);
}

size_t cbor_encode_map_start(size_t length, unsigned char *buffer, size_t buffer_size)
{
    return put_head(MT_MAP, length, buffer, buffer_size);
}

size_t cbor_encode_tag(uint64_t value, unsigned char *buffer, size_t buffer_size)
{
    return put_head(MT_TAG, value, buffer, buffer_size);
}
