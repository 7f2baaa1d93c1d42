/*
 * Base64 on OpenSSL's EVP encoder.
 */
#include <limits.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "rampart/base64.h"

rp_err_t rp_base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len)
{
    EVP_ENCODE_CTX *ctx;
    uint8_t *buf;
    int n = 0, m = 0;

    *out = NULL;
    if (len > INT_MAX)
        return RP_ERR_TOO_LARGE;
    buf = malloc(len / 4 * 3 + 4);
    ctx = EVP_ENCODE_CTX_new();
    if (buf == NULL || ctx == NULL) {
        free(buf);
        EVP_ENCODE_CTX_free(ctx);
        return RP_ERR_NO_MEMORY;
    }
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, buf, &n, (const unsigned char *)in, (int)len) < 0 ||
        EVP_DecodeFinal(ctx, buf + n, &m) != 1) {
        EVP_ENCODE_CTX_free(ctx);
        free(buf);
        return RP_ERR_MALFORMED;
    }
    EVP_ENCODE_CTX_free(ctx);
    *out = buf;
    *out_len = (size_t)(n + m);
    return RP_OK;
}

rp_err_t rp_base64_encode(const uint8_t *in, size_t len, char **out)
{
    size_t cap;
    int n;

    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return RP_ERR_TOO_LARGE;
    cap = (len + 2) / 3 * 4 + 1;
    *out = malloc(cap);
    if (*out == NULL)
        return RP_ERR_NO_MEMORY;
    n = EVP_EncodeBlock((unsigned char *)*out, in, (int)len);
    (*out)[n] = '\0';
    return RP_OK;
}
