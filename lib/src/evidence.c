/*
 * Evidence on a host: the core encodes, the key signs, OpenSSL converts the signature's encoding.
 */
#include <limits.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "rampart/evidence.h"

rp_err_t rp_ecdsa_der_to_raw(const uint8_t *der, size_t len, uint8_t raw[RP_ES256_SIG_LEN])
{
    const unsigned char *p = der;
    const BIGNUM *r, *s;
    ECDSA_SIG *sig;
    int ok;

    if (der == NULL || raw == NULL || len > LONG_MAX)
        return RP_ERR_INVALID_ARG;
    sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (sig == NULL || p != der + len) {
        ECDSA_SIG_free(sig);
        ERR_clear_error();
        return RP_ERR_MALFORMED;
    }
    ECDSA_SIG_get0(sig, &r, &s);
    ok = BN_bn2binpad(r, raw, RP_ES256_SIG_LEN / 2) == RP_ES256_SIG_LEN / 2 &&
         BN_bn2binpad(s, raw + RP_ES256_SIG_LEN / 2, RP_ES256_SIG_LEN / 2) == RP_ES256_SIG_LEN / 2;
    ECDSA_SIG_free(sig);
    return ok ? RP_OK : RP_ERR_MALFORMED;
}

rp_err_t rp_evidence_make(const rp_eat_claims_t *claims, rp_sign_digest_fn sign, void *ctx,
                          uint8_t *out, size_t cap, size_t *len)
{
    uint8_t payload[RP_EAT_MAX_SIZE], digest[RP_SHA256_LEN], der[RP_ECDSA_P256_SIG_MAX],
        raw[RP_ES256_SIG_LEN];
    size_t payload_len, der_len;
    rp_err_t err;

    if (claims == NULL || sign == NULL || out == NULL || len == NULL)
        return RP_ERR_INVALID_ARG;
    err = rp_eat_encode_claims(claims, payload, sizeof(payload), &payload_len);
    if (err == RP_OK)
        err = rp_cose_sign1_tbs_digest(payload, payload_len, digest);
    if (err == RP_OK)
        err = sign(ctx, digest, der, sizeof(der), &der_len);
    if (err == RP_OK)
        err = rp_ecdsa_der_to_raw(der, der_len, raw);
    if (err == RP_OK)
        err = rp_cose_sign1_encode(payload, payload_len, raw, out,
                                   cap < RP_EAT_MAX_SIZE ? cap : RP_EAT_MAX_SIZE, len);
    return err;
}
