/*
 * The microcontroller build's CBOR encoder (mcu/common/cbor_encode.c) is the same encoder as
 * libcbor's: byte for byte, result for result, over every function it has, the edge values of
 * every argument width, buffers of every size up to and past the head (one byte too small and
 * empty included) and a few hundred thousand random values; and it writes RFC 8949's own examples.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cbor_encode_diff.h"

#define RANDOM_VALUES 300000

static void check(size_t fn, uint64_t value, size_t size, unsigned char fill)
{
    char why[256];

    if (!cbor_diff_check(fn, value, size, fill, why, sizeof(why)))
        fail_msg("%s", why);
}

/* The head's length RFC 8949 3 gives an argument: 1, 2, 3, 5 or 9 bytes. */
static size_t head_len(uint64_t v)
{
    return v < 24 ? 1 : v <= UINT8_MAX ? 2 : v <= UINT16_MAX ? 3 : v <= UINT32_MAX ? 5 : 9;
}

static void edge_values(void **state)
{
    uint64_t values[16 + 3 * 64];
    size_t n = 0, sizes[] = {SIZE_MAX, SIZE_MAX - 1};

    (void)state;
    values[n++] = 0;
    values[n++] = 22;
    values[n++] = 23;
    values[n++] = 24;
    values[n++] = 25;
    values[n++] = 254;
    values[n++] = 255;
    values[n++] = 256;
    values[n++] = 65534;
    values[n++] = 65535;
    values[n++] = 65536;
    values[n++] = UINT32_MAX - 1;
    values[n++] = UINT32_MAX;
    values[n++] = (uint64_t)UINT32_MAX + 1;
    values[n++] = UINT64_MAX - 1;
    values[n++] = UINT64_MAX;
    for (unsigned k = 0; k < 64; k++) {
        values[n++] = ((uint64_t)1 << k) - 1;
        values[n++] = (uint64_t)1 << k;
        values[n++] = ((uint64_t)1 << k) + 1;
    }
    for (size_t fn = 0; fn < CBOR_DIFF_FUNCTIONS; fn++) {
        for (size_t i = 0; i < n; i++) {
            for (size_t size = 0; size <= CBOR_DIFF_HEAD_MAX + 2; size++) {
                check(fn, values[i], size, 0x00);
                check(fn, values[i], size, 0xa5);
            }
            for (size_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++)
                check(fn, values[i], sizes[j], 0xff);
        }
    }
}

/* The contract, on ours alone: exactly the head's bytes fit, one fewer does not, nor none. */
static void fits_exactly(void **state)
{
    static const uint64_t values[] = {
        0, 23, 24, 255, 256, 65535, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX};
    unsigned char buf[CBOR_DIFF_HEAD_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        size_t len = head_len(values[i]);

        assert_int_equal(mcu_cbor_encode_uint(values[i], buf, len), len);
        assert_int_equal(mcu_cbor_encode_uint(values[i], buf, len - 1), 0);
        assert_int_equal(mcu_cbor_encode_tag(values[i], buf, len), len);
        assert_int_equal(mcu_cbor_encode_tag(values[i], buf, len - 1), 0);
        assert_int_equal(mcu_cbor_encode_negint(values[i], buf, 0), 0);
        assert_int_equal(mcu_cbor_encode_map_start((size_t)values[i], NULL, 0), 0);
    }
}

/* splitmix64: a fixed seed, so that a failure repeats. */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void random_values(void **state)
{
    uint64_t seed = 0x5eed14c0b0e;

    (void)state;
    for (int i = 0; i < RANDOM_VALUES; i++) {
        uint64_t r = next(&seed), v = next(&seed);

        /* As many short values as long: a random width, then a random value of it. */
        v >>= r & 63;
        for (size_t fn = 0; fn < CBOR_DIFF_FUNCTIONS; fn++) {
            check(fn, v, (size_t)(r >> 8) % (CBOR_DIFF_HEAD_MAX + 2), (unsigned char)(r >> 16));
            check(fn, v, CBOR_DIFF_HEAD_MAX, (unsigned char)(r >> 24));
        }
    }
}

static void expect_bytes(size_t got, const unsigned char *buf, const char *want_hex)
{
    char hex[2 * CBOR_DIFF_HEAD_MAX + 1] = "";

    for (size_t i = 0; i < got && i < CBOR_DIFF_HEAD_MAX; i++)
        snprintf(hex + 2 * i, sizeof(hex) - 2 * i, "%02x", buf[i]);
    assert_string_equal(hex, want_hex);
}

/* RFC 8949 appendix A's examples (the heads of its strings, arrays and maps): an oracle that is
 * not libcbor. */
static void rfc_examples(void **state)
{
    static const struct {
        size_t fn;
        uint64_t arg;
        const char *hex;
    } ex[] = {
        {0, 0,              "00"                },
        {0, 1,              "01"                },
        {0, 10,             "0a"                },
        {0, 23,             "17"                },
        {0, 24,             "1818"              },
        {0, 25,             "1819"              },
        {0, 100,            "1864"              },
        {0, 1000,           "1903e8"            },
        {0, 1000000,        "1a000f4240"        },
        {0, 1000000000000u, "1b000000e8d4a51000"},
        {0, UINT64_MAX,     "1bffffffffffffffff"},
        {1, UINT64_MAX,     "3bffffffffffffffff"}, /* -18446744073709551616 */
        {1, 0,              "20"                }, /* -1 */
        {1, 9,              "29"                }, /* -10 */
        {1, 99,             "3863"              }, /* -100 */
        {1, 999,            "3903e7"            }, /* -1000 */
        {2, 0,              "40"                }, /* h'' */
        {2, 4,              "44"                }, /* h'01020304' */
        {3, 0,              "60"                }, /* "" */
        {3, 4,              "64"                }, /* "IETF" */
        {4, 0,              "80"                }, /* [] */
        {4, 3,              "83"                }, /* [1, 2, 3] */
        {4, 25,             "9819"              }, /* [1, 2, ..., 25] */
        {5, 0,              "a0"                }, /* {} */
        {5, 2,              "a2"                }, /* {1: 2, 3: 4} */
        {6, 0,              "c0"                }, /* 0("2013-03-21T20:04:00Z") */
        {6, 1,              "c1"                }, /* 1(1363896240) */
        {6, 23,             "d7"                }, /* 23(h'01020304') */
        {6, 24,             "d818"              }, /* 24(h'6449455446') */
        {6, 32,             "d820"              }, /* 32("http://www.example.com") */
    };
    unsigned char buf[CBOR_DIFF_HEAD_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
        size_t got;

        switch (ex[i].fn) {
        case 0: got = mcu_cbor_encode_uint(ex[i].arg, buf, sizeof(buf)); break;
        case 1: got = mcu_cbor_encode_negint(ex[i].arg, buf, sizeof(buf)); break;
        case 2: got = mcu_cbor_encode_bytestring_start((size_t)ex[i].arg, buf, sizeof(buf)); break;
        case 3: got = mcu_cbor_encode_string_start((size_t)ex[i].arg, buf, sizeof(buf)); break;
        case 4: got = mcu_cbor_encode_array_start((size_t)ex[i].arg, buf, sizeof(buf)); break;
        case 5: got = mcu_cbor_encode_map_start((size_t)ex[i].arg, buf, sizeof(buf)); break;
        default: got = mcu_cbor_encode_tag(ex[i].arg, buf, sizeof(buf)); break;
        }
        assert_int_equal(got, strlen(ex[i].hex) / 2);
        expect_bytes(got, buf, ex[i].hex);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc_examples),
        cmocka_unit_test(fits_exactly),
        cmocka_unit_test(edge_values),
        cmocka_unit_test(random_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
