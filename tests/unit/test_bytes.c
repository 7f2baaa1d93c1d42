/*
 * The core's byte order (core/src/bytes.c), both ways: known bytes; every width from 0 to 8 over
 * the edge values and a pseudo-random run, put then got back, nothing written outside at[0..n);
 * the two orders mirror each other; little-endian is what this (little-endian) host stores; a
 * width above 8 writes and reads 8 bytes only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/bytes.h"

#define GUARD 0xa5

static const uint64_t edges[] = {
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x10000,
    0xffffff,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    0x100000000,
    0xffffffffff,
    0x0102030405060708,
    INT64_MAX,
    (uint64_t)INT64_MAX + 1,
    UINT64_MAX,
};

/* v's low n bytes, as the getters must give them back. */
static uint64_t low(uint64_t v, size_t n)
{
    return n >= 8 ? v : v & ((UINT64_C(1) << (8 * n)) - 1);
}

static void check_value(uint64_t v)
{
    for (size_t n = 0; n <= 8; n++) {
        uint8_t le[10], be[10];

        memset(le, GUARD, sizeof(le));
        memset(be, GUARD, sizeof(be));
        rp_le_put(le + 1, v, n);
        rp_be_put(be + 1, v, n);
        assert_int_equal(rp_le_get(le + 1, n), low(v, n));
        assert_int_equal(rp_be_get(be + 1, n), low(v, n));
        /* Nothing before at nor past at[n) is touched. */
        assert_int_equal(le[0], GUARD);
        assert_int_equal(be[0], GUARD);
        for (size_t i = n + 1; i < sizeof(le); i++) {
            assert_int_equal(le[i], GUARD);
            assert_int_equal(be[i], GUARD);
        }
        /* The two orders are mirror images. */
        for (size_t i = 0; i < n; i++)
            assert_int_equal(le[1 + i], be[n - i]);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* Little-endian is the host's own order here: the host's store is an independent check. */
        assert_memory_equal(le + 1, &v, n);
#endif
    }
}

static void test_known_bytes(void **state)
{
    static const uint8_t up[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t down[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    uint8_t b[8];

    (void)state;
    rp_le_put(b, 0x0102030405060708, 8);
    assert_memory_equal(b, down, 8);
    rp_be_put(b, 0x0102030405060708, 8);
    assert_memory_equal(b, up, 8);
    assert_int_equal(rp_le_get(up, 8), 0x0807060504030201);
    assert_int_equal(rp_be_get(up, 8), 0x0102030405060708);
    assert_int_equal(rp_le_get(up, 2), 0x0201);
    assert_int_equal(rp_be_get(up, 2), 0x0102);
    assert_int_equal(rp_le_get(up, 4), 0x04030201);
    assert_int_equal(rp_be_get(up, 4), 0x01020304);
    assert_int_equal(rp_be_get(up + 1, 3), 0x020304);
    rp_be_put(b, 0x0a0b0c0d, 4);
    assert_memory_equal(b, ((const uint8_t[]){0x0a, 0x0b, 0x0c, 0x0d}), 4);
    rp_le_put(b, 0x0a0b0c0d, 4);
    assert_memory_equal(b, ((const uint8_t[]){0x0d, 0x0c, 0x0b, 0x0a}), 4);
    /* The top bit survives: no sign extension anywhere. */
    memset(b, 0xff, sizeof(b));
    assert_int_equal(rp_le_get(b, 8), UINT64_MAX);
    assert_int_equal(rp_be_get(b, 8), UINT64_MAX);
    assert_int_equal(rp_be_get(b, 1), 0xff);
    assert_int_equal(rp_le_get(b, 4), 0xffffffff);
}

static void test_round_trips(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15;

    (void)state;
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        check_value(edges[i]);
    for (int i = 0; i < 1000; i++) { /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check_value(x);
    }
}

/* n = 0: nothing written, 0 read. n > 8: the first 8 bytes only. */
static void test_widths_outside(void **state)
{
    static const uint8_t bytes[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    uint8_t b[12];

    (void)state;
    assert_int_equal(rp_le_get(bytes, 0), 0);
    assert_int_equal(rp_be_get(bytes, 0), 0);
    assert_int_equal(rp_le_get(bytes, 12), rp_le_get(bytes, 8));
    assert_int_equal(rp_be_get(bytes, 12), rp_be_get(bytes, 8));
    memset(b, GUARD, sizeof(b));
    rp_le_put(b, UINT64_MAX, 0);
    rp_be_put(b, UINT64_MAX, 0);
    for (size_t i = 0; i < sizeof(b); i++)
        assert_int_equal(b[i], GUARD);
    rp_le_put(b, 0x0102030405060708, 12);
    assert_memory_equal(b, ((const uint8_t[]){8, 7, 6, 5, 4, 3, 2, 1}), 8);
    assert_int_equal(b[8], GUARD);
    memset(b, GUARD, sizeof(b));
    rp_be_put(b, 0x0102030405060708, 12);
    assert_memory_equal(b, ((const uint8_t[]){1, 2, 3, 4, 5, 6, 7, 8}), 8);
    assert_int_equal(b[8], GUARD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_bytes),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_widths_outside),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
