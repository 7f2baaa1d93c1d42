/*
 * What the Mbed TLS port offers beyond the core's crypto API (rampart/crypto.h), for code that
 * runs on it: the microcontroller's attestation service writes its public key with it.
 */
#ifndef RP_CRYPTO_MBEDTLS_H
#define RP_CRYPTO_MBEDTLS_H

#include <stdint.h>

#include "rampart/crypto.h"

#define RP_MBEDTLS_P256_SPKI_LEN 91 /* a P-256 key's DER SubjectPublicKeyInfo */

/*
 * The DER SubjectPublicKeyInfo of an uncompressed P-256 point (0x04, x, y): the one form the
 * port's readers accept, so what they read back is exactly these bytes.
 */
rp_err_t rp_mbedtls_p256_spki(const uint8_t point[RP_P256_POINT_LEN],
                              uint8_t spki[RP_MBEDTLS_P256_SPKI_LEN]) RP_MUST_CHECK;

#endif
