/*
 * Mbed TLS 2.28's configuration for the microcontroller build: exactly what the crypto port
 * (core/port/mbedtls/crypto_mbedtls.c) needs to verify images, and what the attestation service
 * (mcu/attest/attest.c) needs to derive its key and sign, and nothing else. No C library
 * heap and no OS: Mbed TLS's own allocator hands out a static pool (MEMORY_BUFFER_ALLOC_C) that
 * the boot stage gives it; every byte it takes during a call is given back before the call ends.
 */
#ifndef RP_MBEDTLS_CONFIG_H
#define RP_MBEDTLS_CONFIG_H

/* The system: no time, no file system, no entropy source; memory from a static pool. */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_PLATFORM_NO_STD_FUNCTIONS
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
/* No C library exit() or snprintf(): the allocator's corruption check stops the board, and the
 * one snprintf() user (OIDs as dotted text) is never called. mcu/common/mbedtls_platform.c. */
int rp_mbedtls_snprintf(char *s, __SIZE_TYPE__ n, const char *fmt, ...);
void rp_mbedtls_exit(int status);
#define MBEDTLS_PLATFORM_SNPRINTF_MACRO rp_mbedtls_snprintf
#define MBEDTLS_PLATFORM_EXIT_MACRO rp_mbedtls_exit

/* SHA-256 (and the message-digest layer HMAC and HMAC_DRBG use). */
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_MD_C

/* ECDSA P-256 verification. The port reads a key's DER SubjectPublicKeyInfo without the PK layer
 * (core/port/mbedtls/crypto_mbedtls.c), so PK, its parser and writer, and the OID tables are out.
 */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
/* Verification works on public values only, so it needs no blinding and no internal RNG; the
 * attestation service's multiplications by its secret scalar pass their own blinding generator
 * (an HMAC_DRBG seeded from the key, as deterministic ECDSA does). */
#define MBEDTLS_ECP_NO_INTERNAL_RNG
#define MBEDTLS_ECP_WINDOW_SIZE 2
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_ECDSA_C
/* The attestation service: deterministic ECDSA (RFC 6979: no entropy source on the board), and
 * HMAC-SHA256 to derive the device key from the device secret. */
#define MBEDTLS_ECDSA_DETERMINISTIC
#define MBEDTLS_HMAC_DRBG_C
/* ASN.1 parsing for the images' DER signatures; ECDSA requires the writer, which nothing calls
 * (--gc-sections drops it). */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C

#define MBEDTLS_MPI_MAX_SIZE 32
#define MBEDTLS_MPI_WINDOW_SIZE 1
/* The Cortex-M33 has no 64-by-32 divide: with this, bignum's one double-width division (a
 * quotient digit in mbedtls_mpi_div_mpi, for reductions modulo the group order) is done by Mbed
 * TLS's own short routine instead of pulling in libgcc's 64-bit division (__udivmoddi4, 746
 * bytes): 624 bytes less. It only runs for the few reductions modulo the group order that a
 * signature takes (P-256 reductions modulo p use the fast NIST reduction). */
#define MBEDTLS_NO_UDBL_DIVISION

#include "mbedtls/check_config.h"

#endif /* RP_MBEDTLS_CONFIG_H */
