/*
 * Lowercase hexadecimal, the form Rampart shows digests, key hashes and device IDs in.
 */
#ifndef RAMPART_HEX_H
#define RAMPART_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"

/* Encode len bytes as 2*len lowercase hex digits and a NUL; out_len must be at least 2*len+1. */
rp_err_t rp_hex_encode(const uint8_t *data, size_t len, char *out, size_t out_len);

/* Decode exactly 2*out_len hex digits (either case) from s of length s_len. */
rp_err_t rp_hex_decode(const char *s, size_t s_len, uint8_t *out, size_t out_len);

#endif /* RAMPART_HEX_H */
