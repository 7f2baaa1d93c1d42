/*
 * Integers in byte strings: the one owner of byte order in Rampart's code. Little-endian: the
 * MCUboot image format (image.c, imgsign.c), the fixed records Rampart defines (the monitor's
 * gate, the kernel-refusal reader's record, a kept crash). Big-endian (network byte order): the
 * monitor's request protocol, update metadata's binary form, the inputs hashed or MACed (a
 * deployment's bucket, a report's fields, a binding, a nonce's expiry), what others define so
 * (a TPM's NV counter, a TCP/UDP port, an IPv4 address in IPv6, CBOR's heads, .zdebug's size).
 * Each takes n, at most 8: bytes past the eighth are neither written nor read.
 */
#ifndef RAMPART_BYTES_H
#define RAMPART_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* Store the low n (at most 8) bytes of v at at[0..n), least significant first. */
void rp_le_put(uint8_t *at, uint64_t v, size_t n);

/* The n (at most 8) bytes at at[0..n), least significant first. */
uint64_t rp_le_get(const uint8_t *at, size_t n);

/* Store the low n (at most 8) bytes of v at at[0..n), most significant first. */
void rp_be_put(uint8_t *at, uint64_t v, size_t n);

/* The n (at most 8) bytes at at[0..n), most significant first. */
uint64_t rp_be_get(const uint8_t *at, size_t n);

#endif /* RAMPART_BYTES_H */
