/*
 * Little-endian integers in byte strings: the one owner of the byte order of the fixed records
 * Rampart defines (the monitor's gate, the kernel-refusal reader's record).
 */
#ifndef RAMPART_BYTES_H
#define RAMPART_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* Store the low n (at most 8) bytes of v at at[0..n), least significant first. */
void rp_le_put(uint8_t *at, uint64_t v, size_t n);

/* The n (at most 8) bytes at at[0..n), least significant first. */
uint64_t rp_le_get(const uint8_t *at, size_t n);

#endif /* RAMPART_BYTES_H */
