/*
 * The crypto port as Frama-C sees it in `make prove`: ACSL contracts in place of Mbed TLS, so
 * that Eva analyses the core's image parser and verifier (core/src/image.c, crypto_common.c) and
 * no cryptography. Each contract is what the port promises in core/include/rampart/crypto.h:
 * what it may read (its preconditions, which Eva checks at every call: an access out of bounds
 * in the core's calls to the crypto would be an alarm here), what it writes (assigns), and its
 * possible results (ensures): a digest is any 32 bytes, a verdict any of the port's codes.
 * crypto_mbedtls.c is not compiled into the analysis; these declarations stand for it.
 */
#ifndef RP_PROVE_CRYPTO_CONTRACTS_H
#define RP_PROVE_CRYPTO_CONTRACTS_H

#include "rampart/crypto.h"

/*@ requires \valid(ctx);
    assigns *ctx \from \nothing;
    assigns \result \from \nothing;
    ensures \initialized(ctx);
    ensures \result == RP_OK || \result == RP_ERR_CRYPTO;
 */
rp_err_t rp_sha256_init(rp_sha256_t *ctx);

/*@ requires \valid(ctx);
    requires \initialized(ctx);
    requires len == 0 || \valid_read((const uint8_t *)data + (0 .. len - 1));
    requires len == 0 || \initialized((const uint8_t *)data + (0 .. len - 1));
    assigns *ctx \from *ctx, ((const uint8_t *)data)[0 .. len - 1], len;
    assigns \result \from *ctx, len;
    ensures \initialized(ctx);
    ensures \result == RP_OK || \result == RP_ERR_CRYPTO;
 */
rp_err_t rp_sha256_update(rp_sha256_t *ctx, const void *data, size_t len);

/*@ requires \valid(ctx);
    requires \initialized(ctx);
    requires \valid(out + (0 .. RP_SHA256_LEN - 1));
    assigns *ctx \from \nothing;
    assigns out[0 .. RP_SHA256_LEN - 1] \from *ctx;
    assigns \result \from *ctx;
    ensures \initialized(out + (0 .. RP_SHA256_LEN - 1));
    ensures \result == RP_OK || \result == RP_ERR_CRYPTO;
 */
rp_err_t rp_sha256_final(rp_sha256_t *ctx, uint8_t out[RP_SHA256_LEN]);

/*@ requires spki_len > 0 && \valid_read(spki + (0 .. spki_len - 1));
    requires \initialized(spki + (0 .. spki_len - 1));
    requires \valid_read(digest + (0 .. RP_SHA256_LEN - 1));
    requires \initialized(digest + (0 .. RP_SHA256_LEN - 1));
    requires sig_len == 0 || \valid_read(sig + (0 .. sig_len - 1));
    requires sig_len == 0 || \initialized(sig + (0 .. sig_len - 1));
    assigns \result \from alg, spki[0 .. spki_len - 1], digest[0 .. RP_SHA256_LEN - 1],
                          sig[0 .. sig_len - 1];
    ensures sig_len == 0 ==> \result == RP_ERR_INVALID_ARG;
    ensures \result == RP_OK || \result == RP_ERR_BAD_SIGNATURE || \result == RP_ERR_BAD_KEY ||
            \result == RP_ERR_UNSUPPORTED || \result == RP_ERR_CRYPTO ||
            \result == RP_ERR_INVALID_ARG;
 */
rp_err_t rp_sig_verify(rp_sig_alg_t alg, const uint8_t *spki, size_t spki_len,
                       const uint8_t digest[RP_SHA256_LEN], const uint8_t *sig, size_t sig_len);

#endif /* RP_PROVE_CRYPTO_CONTRACTS_H */
