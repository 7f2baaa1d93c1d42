/*
 * The microcontroller build's CBOR encoder (mcu/common/cbor_encode.c), compiled for the host under
 * the names cbor_encode_diff.h declares, so that it links beside Debian's libcbor. The file itself
 * is included unchanged: what is tested is what the MCU build compiles.
 */
#include "cbor_encode_diff.h"

#define cbor_encode_uint mcu_cbor_encode_uint
#define cbor_encode_negint mcu_cbor_encode_negint
#define cbor_encode_bytestring_start mcu_cbor_encode_bytestring_start
#define cbor_encode_string_start mcu_cbor_encode_string_start
#define cbor_encode_array_start mcu_cbor_encode_array_start
#define cbor_encode_map_start mcu_cbor_encode_map_start
#define cbor_encode_tag mcu_cbor_encode_tag

#include "../../mcu/common/cbor_encode.c"
