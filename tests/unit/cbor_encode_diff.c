/*
 * The differential check of the MCU build's CBOR encoder against Debian's libcbor
 * (cbor_encode_diff.h): the table pairing each of its functions with libcbor's, and the check.
 */
#include <stdio.h>
#include <string.h>

#include <cbor.h>

#include "cbor_encode_diff.h"

/* The size_t functions, called through one uint64_t shape; values above SIZE_MAX are skipped. */
#define SIZED(f)                                                                                   \
    static size_t mcu_##f##_u64(uint64_t v, unsigned char *b, size_t n)                            \
    {                                                                                              \
        return mcu_cbor_encode_##f((size_t)v, b, n);                                               \
    }                                                                                              \
    static size_t lib_##f##_u64(uint64_t v, unsigned char *b, size_t n)                            \
    {                                                                                              \
        return cbor_encode_##f((size_t)v, b, n);                                                   \
    }
SIZED(bytestring_start)
SIZED(string_start)
SIZED(array_start)
SIZED(map_start)

typedef size_t (*encode_fn)(uint64_t, unsigned char *, size_t);

static const struct {
    const char *name;
    encode_fn mcu, lib;
    bool sized;
} pairs[CBOR_DIFF_FUNCTIONS] = {
    {"cbor_encode_uint",             mcu_cbor_encode_uint,     cbor_encode_uint,         false},
    {"cbor_encode_negint",           mcu_cbor_encode_negint,   cbor_encode_negint,       false},
    {"cbor_encode_bytestring_start", mcu_bytestring_start_u64, lib_bytestring_start_u64, true },
    {"cbor_encode_string_start",     mcu_string_start_u64,     lib_string_start_u64,     true },
    {"cbor_encode_array_start",      mcu_array_start_u64,      lib_array_start_u64,      true },
    {"cbor_encode_map_start",        mcu_map_start_u64,        lib_map_start_u64,        true },
    {"cbor_encode_tag",              mcu_cbor_encode_tag,      cbor_encode_tag,          false},
};

const char *cbor_diff_name(size_t fn)
{
    return fn < CBOR_DIFF_FUNCTIONS ? pairs[fn].name : NULL;
}

static void hex(const unsigned char *b, size_t n, char *out, size_t out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 3 <= out_len; i++, o += 2)
        snprintf(out + o, out_len - o, "%02x", b[i]);
    if (out_len > 0)
        out[o < out_len ? o : out_len - 1] = '\0';
}

bool cbor_diff_check(size_t fn, uint64_t value, size_t buffer_size, unsigned char fill, char *why,
                     size_t why_len)
{
    unsigned char ours[CBOR_DIFF_HEAD_MAX + 8], theirs[sizeof(ours)];
    size_t got, want, unwritten;
    char a[2 * sizeof(ours) + 1], b[sizeof(a)];

    if (fn >= CBOR_DIFF_FUNCTIONS) {
        snprintf(why, why_len, "no encoder function %zu", fn);
        return false;
    }
    if (pairs[fn].sized && value > SIZE_MAX)
        return true;
    memset(ours, fill, sizeof(ours));
    memset(theirs, fill, sizeof(theirs));
    got = pairs[fn].mcu(value, ours, buffer_size);
    want = pairs[fn].lib(value, theirs, buffer_size);
    if (got != want || memcmp(ours, theirs, sizeof(ours)) != 0) {
        hex(ours, sizeof(ours), a, sizeof(a));
        hex(theirs, sizeof(theirs), b, sizeof(b));
        snprintf(why, why_len, "%s(%llu, buffer_size %zu): ours %zu [%s], libcbor %zu [%s]",
                 pairs[fn].name, (unsigned long long)value, buffer_size, got, a, want, b);
        return false;
    }
    unwritten = buffer_size < sizeof(ours) ? buffer_size : sizeof(ours);
    for (size_t i = unwritten; i < sizeof(ours); i++) {
        if (ours[i] != fill) {
            hex(ours, sizeof(ours), a, sizeof(a));
            snprintf(why, why_len, "%s(%llu, buffer_size %zu) wrote byte %zu: [%s]", pairs[fn].name,
                     (unsigned long long)value, buffer_size, i, a);
            return false;
        }
    }
    if (got > buffer_size || got > CBOR_DIFF_HEAD_MAX) {
        snprintf(why, why_len, "%s(%llu, buffer_size %zu) says it wrote %zu bytes", pairs[fn].name,
                 (unsigned long long)value, buffer_size, got);
        return false;
    }
    if (buffer_size == 0) {
        got = pairs[fn].mcu(value, NULL, 0);
        want = pairs[fn].lib(value, NULL, 0);
        if (got != 0 || want != 0) {
            snprintf(why, why_len, "%s(%llu, NULL, 0): ours %zu, libcbor %zu", pairs[fn].name,
                     (unsigned long long)value, got, want);
            return false;
        }
    }
    return true;
}
