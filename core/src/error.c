/*
 * The text of every rp_err_t. The table is indexed by the code, so its order is the enum's.
 */
#include "rampart/error.h"

static const char *const messages[RP_ERR_COUNT] = {
    [RP_OK] = "success",
    [RP_ERR_INVALID_ARG] = "invalid argument",
    [RP_ERR_IO] = "read or write failed",
    [RP_ERR_TRUNCATED] = "truncated",
    [RP_ERR_BAD_MAGIC] = "bad magic: not an MCUboot image",
    [RP_ERR_BAD_HEADER] = "malformed image header",
    [RP_ERR_BAD_TLV] = "malformed TLV area",
    [RP_ERR_FORBIDDEN_TLV] = "forbidden TLV in the unprotected area",
    [RP_ERR_NO_HASH] = "no SHA-256 TLV",
    [RP_ERR_HASH_MISMATCH] = "hash mismatch: the image was modified",
    [RP_ERR_NO_SIGNATURE] = "image is not signed",
    [RP_ERR_WRONG_KEY] = "not signed by a trusted key",
    [RP_ERR_BAD_SIGNATURE] = "bad signature",
    [RP_ERR_BAD_KEY] = "unusable key",
    [RP_ERR_UNSUPPORTED] = "not supported by this build",
    [RP_ERR_CRYPTO] = "crypto backend failure",
    [RP_ERR_BUFFER_TOO_SMALL] = "buffer too small",
    [RP_ERR_BAD_VERSION] = "malformed version",
    [RP_ERR_TOO_LARGE] = "too large",
    [RP_ERR_NO_MEMORY] = "out of memory",
    [RP_ERR_EXISTS] = "already exists",
    [RP_ERR_NOT_FOUND] = "not found",
    [RP_ERR_MALFORMED] = "malformed data",
    [RP_ERR_ROLLBACK] = "older than what is installed (rollback refused)",
    [RP_ERR_EXPIRED] = "expired",
    [RP_ERR_DENIED] = "not allowed",
    [RP_ERR_BUSY] = "busy: try again",
};

_Static_assert(sizeof(messages) / sizeof(messages[0]) == RP_ERR_COUNT,
               "every error code needs a message");

const char *rp_strerror(rp_err_t err)
{
    if ((unsigned)err >= RP_ERR_COUNT || messages[err] == 0)
        return "unknown error";
    return messages[err];
}
