/*
 * The secure attestation service's interface to the non-secure world (docs/mcu.md): one
 * non-secure-callable entry point in the secure attestation service (a secure partition beside
 * the boot stage), reached through its CMSE veneer (the import library build-mcu/attest-cmse.o),
 * which returns evidence (an EAT over the caller's nonce with the boot record's measurements, as a
 * COSE_Sign1 signed by the device key) in the format docs/protocol.md describes and the service
 * verifies.
 */
#ifndef RP_MCU_ATTEST_H
#define RP_MCU_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"

/* The nonce's bounds: rampart/eat.h's RP_EAT_NONCE_MIN and _MAX (attest.c checks they agree). */
#define RP_MCU_NONCE_MIN 8
#define RP_MCU_NONCE_MAX 64
/* The largest evidence the service makes; a buffer this size always fits. */
#define RP_MCU_ATTEST_MAX 1024

/*
 * The entry point (secure, non-secure callable). Every argument goes in a register, as CMSE
 * requires of an entry point, so the capacity travels in *len: in, the bytes out can take; out,
 * the evidence's length. The service checks that nonce[0..nonce_len), *len and out[0..cap) are
 * the caller's own non-secure memory. Called through rp_attest() below.
 */
__attribute__((long_call)) rp_err_t rp_attest_entry(const uint8_t *nonce, size_t nonce_len,
                                                    uint8_t *out, size_t *len);

/*
 * Evidence over nonce (RP_EAT_NONCE_MIN to _MAX bytes: 8 to 64) into out[0..cap). OUT: *len.
 * RP_ERR_INVALID_ARG for a nonce of another length, RP_ERR_DENIED for memory that is not the
 * caller's, RP_ERR_BUFFER_TOO_SMALL, RP_ERR_NOT_FOUND when the device has no secret provisioned
 * (so no key), RP_ERR_BUSY when called again while a call is in progress.
 */
static inline rp_err_t rp_attest(const uint8_t *nonce, size_t nonce_len, uint8_t *out, size_t cap,
                                 size_t *len)
{
    size_t n = cap;
    rp_err_t err;

    if (len == NULL)
        return RP_ERR_INVALID_ARG;
    err = rp_attest_entry(nonce, nonce_len, out, &n);
    *len = err == RP_OK ? n : 0;
    return err;
}

#endif /* RP_MCU_ATTEST_H */
