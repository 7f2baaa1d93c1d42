/*
 * Base64 (RFC 4648, with padding) through OpenSSL's encoder, for the JSON and EST bodies that
 * carry binary.
 */
#ifndef RAMPART_BASE64_H
#define RAMPART_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"

/* OUT: *out, malloc'd and NUL-terminated. */
rp_err_t rp_base64_encode(const uint8_t *in, size_t len, char **out) RP_MUST_CHECK;
/* Whitespace and line breaks are allowed; anything else that is not base64 is malformed.
 * OUT: *out (malloc'd), *out_len. */
rp_err_t rp_base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len) RP_MUST_CHECK;

#endif /* RAMPART_BASE64_H */
