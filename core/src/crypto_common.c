/*
 * The parts of the crypto port that do not depend on the backend: one-shot hashing, constant-time
 * comparison, wiping, names, and the TLS 1.3 CertificateVerify content.
 */
#include <string.h>

#include "rampart/crypto.h"

const char *rp_sig_alg_name(rp_sig_alg_t alg)
{
    switch (alg) {
    case RP_SIG_ECDSA_P256: return "ECDSA P-256";
    case RP_SIG_ED25519: return "Ed25519";
    case RP_SIG_ES256: return "ES256";
    default: return "none";
    }
}

rp_err_t rp_sha256(const void *data, size_t len, uint8_t out[RP_SHA256_LEN])
{
    rp_sha256_t ctx;
    rp_err_t err;

    if ((data == NULL && len > 0) || out == NULL)
        return RP_ERR_INVALID_ARG;
    err = rp_sha256_init(&ctx);
    if (err == RP_OK)
        err = rp_sha256_update(&ctx, data, len);
    if (err == RP_OK)
        return rp_sha256_final(&ctx, out);
    rp_wipe(&ctx, sizeof(ctx));
    return err;
}

int rp_ct_memcmp(const void *a, const void *b, size_t len)
{
    const volatile unsigned char *x = a;
    const volatile unsigned char *y = b;
    unsigned char diff = 0;

    for (size_t i = 0; i < len; i++)
        diff |= (unsigned char)(x[i] ^ y[i]);
    return diff != 0;
}

void rp_wipe(void *p, size_t len)
{
    volatile unsigned char *v = p;

    while (len-- > 0)
        *v++ = 0;
}

#define TLS13_PAD 64
static const char tls13_client[] = "TLS 1.3, client CertificateVerify";
static const char tls13_server[] = "TLS 1.3, server CertificateVerify";
#define TLS13_CONTEXT_LEN (sizeof(tls13_client) - 1) /* both are 33 bytes */

int rp_tls13_hash_len_valid(size_t n)
{
    return n == 32 || n == 48;
}

rp_err_t rp_tls13_cv_content(rp_tls13_side_t side, const uint8_t *hash, size_t hash_len,
                             uint8_t *out, size_t cap, size_t *len)
{
    const char *context = side == RP_TLS13_CLIENT   ? tls13_client
                          : side == RP_TLS13_SERVER ? tls13_server
                                                    : NULL;
    size_t n = TLS13_PAD + TLS13_CONTEXT_LEN + 1 + hash_len;

    if (context == NULL || hash == NULL || !rp_tls13_hash_len_valid(hash_len))
        return RP_ERR_INVALID_ARG;
    if (cap < n)
        return RP_ERR_BUFFER_TOO_SMALL;
    memset(out, 0x20, TLS13_PAD);
    memcpy(out + TLS13_PAD, context, TLS13_CONTEXT_LEN);
    out[TLS13_PAD + TLS13_CONTEXT_LEN] = 0;
    memcpy(out + TLS13_PAD + TLS13_CONTEXT_LEN + 1, hash, hash_len);
    *len = n;
    return RP_OK;
}

rp_err_t rp_tls13_cv_parse(const uint8_t *content, size_t len, rp_tls13_side_t *side,
                           uint8_t hash[RP_TLS13_HASH_MAX], size_t *hash_len)
{
    const size_t head = TLS13_PAD + TLS13_CONTEXT_LEN + 1;
    const uint8_t *context = content + TLS13_PAD;

    *hash_len = 0;
    if (content == NULL || len < head || !rp_tls13_hash_len_valid(len - head))
        return RP_ERR_MALFORMED;
    for (size_t i = 0; i < TLS13_PAD; i++)
        if (content[i] != 0x20)
            return RP_ERR_MALFORMED;
    if (memcmp(context, tls13_client, TLS13_CONTEXT_LEN) == 0)
        *side = RP_TLS13_CLIENT;
    else if (memcmp(context, tls13_server, TLS13_CONTEXT_LEN) == 0)
        *side = RP_TLS13_SERVER;
    else
        return RP_ERR_MALFORMED;
    if (content[head - 1] != 0)
        return RP_ERR_MALFORMED;
    memcpy(hash, content + head, len - head);
    *hash_len = len - head;
    return RP_OK;
}
