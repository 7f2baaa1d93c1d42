/*
 * Hexadecimal encoding and strict decoding.
 */
#include "rampart/hex.h"

rp_err_t rp_hex_encode(const uint8_t *data, size_t len, char *out, size_t out_len)
{
    static const char digits[] = "0123456789abcdef";

    if ((data == NULL && len > 0) || out == NULL)
        return RP_ERR_INVALID_ARG;
    if (len > (SIZE_MAX - 1) / 2 || out_len < 2 * len + 1)
        return RP_ERR_BUFFER_TOO_SMALL;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0x0f];
    }
    out[2 * len] = '\0';
    return RP_OK;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

rp_err_t rp_hex_decode(const char *s, size_t s_len, uint8_t *out, size_t out_len)
{
    if (s == NULL || (out == NULL && out_len > 0))
        return RP_ERR_INVALID_ARG;
    if (out_len > SIZE_MAX / 2 || s_len != 2 * out_len)
        return RP_ERR_INVALID_ARG;
    for (size_t i = 0; i < out_len; i++) {
        int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return RP_ERR_INVALID_ARG;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return RP_OK;
}
