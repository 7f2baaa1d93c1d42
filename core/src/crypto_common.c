/*
 * The parts of the crypto port that do not depend on the backend: one-shot hashing, constant-time
 * comparison, wiping, and names.
 */
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
