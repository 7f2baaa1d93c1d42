/*
 * Integers in byte strings, both byte orders (bytes.h).
 */
#include "rampart/bytes.h"

void rp_le_put(uint8_t *at, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n && i < 8; i++)
        at[i] = (uint8_t)(v >> (8 * i));
}

uint64_t rp_le_get(const uint8_t *at, size_t n)
{
    uint64_t v = 0;

    for (size_t i = n < 8 ? n : 8; i > 0; i--)
        v = v << 8 | at[i - 1];
    return v;
}

void rp_be_put(uint8_t *at, uint64_t v, size_t n)
{
    for (size_t i = n < 8 ? n : 8; i > 0; i--, v >>= 8)
        at[i - 1] = (uint8_t)v;
}

uint64_t rp_be_get(const uint8_t *at, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n && i < 8; i++)
        v = v << 8 | at[i];
    return v;
}
