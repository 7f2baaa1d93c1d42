/*
 * Rampart's one error enum, shared by the portable core and every program built on it, and
 * rp_strerror() which names each code for a human.
 *
 * 0 is success. New codes go at the end; none is ever removed or renumbered, because the codes
 * travel in failure reports and logs and must mean the same thing on every version.
 */
#ifndef RAMPART_ERROR_H
#define RAMPART_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* On every function whose result decides something: ignoring it is a compile error. */
#if defined(__GNUC__) || defined(__clang__)
#define RP_MUST_CHECK __attribute__((warn_unused_result))
#else
#define RP_MUST_CHECK
#endif

typedef enum rp_err {
    RP_OK = 0,
    RP_ERR_INVALID_ARG = 1,       /* a caller broke the API contract */
    RP_ERR_IO = 2,                /* the read callback or the file system failed */
    RP_ERR_TRUNCATED = 3,         /* the data ends before its own sizes say it should */
    RP_ERR_BAD_MAGIC = 4,         /* not an image: the header magic is wrong */
    RP_ERR_BAD_HEADER = 5,        /* header fields are inconsistent */
    RP_ERR_BAD_TLV = 6,           /* a TLV area is malformed */
    RP_ERR_FORBIDDEN_TLV = 7,     /* a TLV that must be protected is in the unprotected area */
    RP_ERR_NO_HASH = 8,           /* the image carries no SHA-256 TLV */
    RP_ERR_HASH_MISMATCH = 9,     /* the image was changed after it was hashed */
    RP_ERR_NO_SIGNATURE = 10,     /* the image carries no signature */
    RP_ERR_WRONG_KEY = 11,        /* signed, but by none of the trusted keys */
    RP_ERR_BAD_SIGNATURE = 12,    /* a signature by a trusted key does not verify */
    RP_ERR_BAD_KEY = 13,          /* a key could not be parsed or has the wrong type */
    RP_ERR_UNSUPPORTED = 14,      /* algorithm or feature not available in this build */
    RP_ERR_CRYPTO = 15,           /* the crypto backend failed internally */
    RP_ERR_BUFFER_TOO_SMALL = 16, /* an output or scratch buffer is too small */
    RP_ERR_BAD_VERSION = 17,      /* a version string is malformed or out of range */
    RP_ERR_TOO_LARGE = 18,        /* a size exceeds its declared maximum */
    RP_ERR_NO_MEMORY = 19,        /* an allocation failed (never in the core) */
    RP_ERR_EXISTS = 20,           /* refusing to overwrite something that exists */
    RP_ERR_NOT_FOUND = 21,        /* a file or object does not exist */
    RP_ERR_MALFORMED = 22, /* CBOR, JSON, a CSR... that does not parse or has the wrong shape */
    RP_ERR_ROLLBACK = 23,  /* older than what is already there (version or security counter) */
    RP_ERR_EXPIRED = 24,   /* past its expiry time */
    RP_ERR_DENIED = 25,    /* well-formed, but not allowed to this caller (a manifest, a rate) */
    RP_ERR_BUSY = 26,      /* lost a race or a connection mid-way: the whole step may be retried */
} rp_err_t;

/* The number of codes; rp_strerror() of anything at or above this names it unknown. */
#define RP_ERR_COUNT 27

/* A short, constant, lowercase description of err; never NULL. */
const char *rp_strerror(rp_err_t err);

#ifdef __cplusplus
}
#endif

#endif /* RAMPART_ERROR_H */
