/*
 * The differential check of the microcontroller build's CBOR encoder (mcu/common/cbor_encode.c)
 * against Debian's libcbor, shared by unit.cbor_encode and fuzz-cbor_encode: the MCU file is
 * compiled into the host program under other names (mcu_cbor_encode_*, cbor_encode_mcu.c) beside
 * libcbor's own functions, and each of its functions is run with libcbor's on the same arguments.
 */
#ifndef RAMPART_CBOR_ENCODE_DIFF_H
#define RAMPART_CBOR_ENCODE_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* mcu/common/cbor_encode.c's functions, renamed (cbor_encode_mcu.c). */
size_t mcu_cbor_encode_uint(uint64_t value, unsigned char *buffer, size_t buffer_size);
size_t mcu_cbor_encode_negint(uint64_t value, unsigned char *buffer, size_t buffer_size);
size_t mcu_cbor_encode_bytestring_start(size_t length, unsigned char *buffer, size_t buffer_size);
size_t mcu_cbor_encode_string_start(size_t length, unsigned char *buffer, size_t buffer_size);
size_t mcu_cbor_encode_array_start(size_t length, unsigned char *buffer, size_t buffer_size);
size_t mcu_cbor_encode_map_start(size_t length, unsigned char *buffer, size_t buffer_size);
size_t mcu_cbor_encode_tag(uint64_t value, unsigned char *buffer, size_t buffer_size);

/* Every encoder function the MCU file has, by index, 0 to CBOR_DIFF_FUNCTIONS - 1. */
#define CBOR_DIFF_FUNCTIONS 7
const char *cbor_diff_name(size_t fn);

/* The longest head either may write (1 + 8 bytes); a size above it can hold any head. */
#define CBOR_DIFF_HEAD_MAX 9

/*
 * Runs function fn of both encoders on (value, a buffer of buffer_size bytes filled with fill)
 * and returns true when they agree: the same result, the same bytes in the buffer, and nothing
 * written at or past buffer_size (a buffer_size above CBOR_DIFF_HEAD_MAX is passed as it is, over
 * a buffer of CBOR_DIFF_HEAD_MAX + 8 bytes: neither may write more than a head). A buffer_size of 0
 * is also tried with a NULL buffer. On disagreement, why (why_len bytes) says how.
 */
bool cbor_diff_check(size_t fn, uint64_t value, size_t buffer_size, unsigned char fill, char *why,
                     size_t why_len);

#endif
