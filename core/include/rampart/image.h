/*
 * The MCUboot image format: constants, header and TLV encoding, the structure walk, and streaming
 * verification against a set of trusted public keys. One format for MCU firmware, app packages
 * and system images; docs/image-format.md describes what is accepted and why.
 *
 * Everything here is freestanding: no allocation, no OS calls. The caller owns every struct and
 * supplies a read callback, so an image larger than RAM verifies in constant memory.
 */
#ifndef RAMPART_IMAGE_H
#define RAMPART_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/crypto.h"
#include "rampart/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Persisted format constants: these are MCUboot's values and must never change. */
#define RP_IMAGE_MAGIC 0x96f3b83dU
#define RP_IMAGE_HEADER_SIZE 32 /* the encoded struct; the header area may be larger */
#define RP_IMAGE_TLV_INFO_MAGIC 0x6907U
#define RP_IMAGE_TLV_PROT_INFO_MAGIC 0x6908U
#define RP_IMAGE_TLV_INFO_SIZE 4 /* magic u16, total size u16 (includes these 4 bytes) */
#define RP_IMAGE_TLV_HDR_SIZE 4  /* type u16, length u16 (excludes these 4 bytes) */

/* Header flags (ih_flags), MCUboot's values. */
#define RP_IMAGE_F_PIC 0x00000001U
#define RP_IMAGE_F_ENCRYPTED_AES128 0x00000004U
#define RP_IMAGE_F_ENCRYPTED_AES256 0x00000008U
#define RP_IMAGE_F_NON_BOOTABLE 0x00000010U
#define RP_IMAGE_F_RAM_LOAD 0x00000020U
#define RP_IMAGE_F_ROM_FIXED 0x00000100U
#define RP_IMAGE_F_COMPRESSED_LZMA1 0x00000200U
#define RP_IMAGE_F_COMPRESSED_LZMA2 0x00000400U
#define RP_IMAGE_F_COMPRESSED_ARM_THUMB 0x00000800U

/* TLV types, MCUboot's values. */
#define RP_TLV_KEYHASH 0x01
#define RP_TLV_PUBKEY 0x02
#define RP_TLV_SHA256 0x10
#define RP_TLV_SHA384 0x11
#define RP_TLV_SHA512 0x12
#define RP_TLV_RSA2048_PSS 0x20
#define RP_TLV_ECDSA224 0x21
#define RP_TLV_ECDSA_SIG 0x22
#define RP_TLV_RSA3072_PSS 0x23
#define RP_TLV_ED25519 0x24
#define RP_TLV_SIG_PURE 0x25
#define RP_TLV_ENC_RSA2048 0x30
#define RP_TLV_ENC_KW 0x31
#define RP_TLV_ENC_EC256 0x32
#define RP_TLV_ENC_X25519 0x33
#define RP_TLV_DEPENDENCY 0x40
#define RP_TLV_SEC_CNT 0x50
#define RP_TLV_BOOT_RECORD 0x60

/*
 * Rampart's own TLVs, in MCUboot's vendor range (0xXXa0-0xXXfe), upper byte 'R'. They are only
 * ever accepted in the protected area, so they are covered by the signature.
 */
#define RP_TLV_IMAGE_TYPE 0x52a0 /* 1 byte: enum rp_image_type */

typedef enum rp_image_type {
    RP_IMAGE_TYPE_NONE = 0, /* no type TLV: a plain MCUboot image */
    RP_IMAGE_TYPE_FIRMWARE = 1,
    RP_IMAGE_TYPE_APP = 2,
    RP_IMAGE_TYPE_SYSTEM = 3,
} rp_image_type_t;

/* The most signatures one image may carry; more is refused as malformed. */
#define RP_IMAGE_MAX_SIGNATURES 8
/* The smallest scratch buffer verification accepts; larger is faster (32 KiB or more is best). */
#define RP_IMAGE_SCRATCH_MIN 64

/* major.minor.revision+build, as MCUboot stores it. */
typedef struct rp_image_version {
    uint8_t major;
    uint8_t minor;
    uint16_t revision;
    uint32_t build;
} rp_image_version_t;

/* "255.255.65535+4294967295" and its NUL. */
#define RP_IMAGE_VERSION_STR_MAX 25

/* The decoded 32-byte header (little-endian on the wire, whatever the host). */
typedef struct rp_image_header {
    uint32_t magic;
    uint32_t load_addr;
    uint16_t hdr_size;      /* size of the header area, >= RP_IMAGE_HEADER_SIZE */
    uint16_t prot_tlv_size; /* size of the protected TLV area including its info, or 0 */
    uint32_t img_size;      /* payload size, excluding the header area */
    uint32_t flags;
    rp_image_version_t version;
} rp_image_header_t;

/*
 * Where the parts of an image lie, as found by rp_image_layout(). Offsets are from the start of
 * the image; the signed region is [0, prot_end).
 */
typedef struct rp_image_layout {
    rp_image_header_t hdr;
    uint64_t payload_end; /* hdr_size + img_size: the protected area (or unprotected) starts here */
    uint64_t prot_end;    /* end of the protected TLV area = start of the unprotected one */
    uint64_t total_size;  /* end of the unprotected TLV area: the whole image */
} rp_image_layout_t;

/*
 * The image source: size bytes (a flash slot may hold more than the image), reached one of two
 * ways. read() copies exactly len bytes from offset off into buf and returns 0, or returns
 * nonzero on failure: a microcontroller reads its flash so, through the caller's scratch buffer.
 * Or, when the whole source is readable in place (memory-mapped flash, RAM, an mmap()ed file),
 * mapped points at it and read may be NULL: hashing then reads the bytes where they are, with no
 * copy. mapped must stay valid and unchanged for the duration of each call.
 */
typedef struct rp_image_io {
    int (*read)(void *ctx, uint64_t off, void *buf, size_t len);
    void *ctx;
    const uint8_t *mapped;
    uint64_t size;
} rp_image_io_t;

/* A trusted public key, as DER SubjectPublicKeyInfo. The caller keeps it alive during the call. */
typedef struct rp_image_key {
    const uint8_t *spki;
    size_t spki_len;
} rp_image_key_t;

/* What verification learned about a valid image. Only filled in when verification passes. */
typedef struct rp_image_info {
    rp_image_layout_t layout;
    uint8_t digest[RP_SHA256_LEN]; /* SHA-256 over [0, prot_end) */
    bool has_security_counter;
    uint32_t security_counter;
    rp_image_type_t type;
    size_t signer; /* index into the trusted keys of the key that signed it */
    rp_sig_alg_t sig_alg;
} rp_image_info_t;

/* One TLV, as the iterator yields it; the value is read separately with io->read(). */
typedef struct rp_image_tlv {
    uint16_t type;
    uint16_t len;
    uint64_t value_off; /* offset of the value in the image */
    bool protected_area;
} rp_image_tlv_t;

typedef struct rp_image_tlv_iter {
    const rp_image_io_t *io;
    uint64_t off; /* next TLV header */
    uint64_t prot_end;
    uint64_t end;
} rp_image_tlv_iter_t;

/* Decode and check the 32-byte header (magic, sizes). OUT: *hdr. */
rp_err_t rp_image_header_decode(const uint8_t raw[RP_IMAGE_HEADER_SIZE],
                                rp_image_header_t *hdr) RP_MUST_CHECK;

/* Encode hdr into its 32 on-wire bytes (the pad word is written as zero). */
void rp_image_header_encode(const rp_image_header_t *hdr, uint8_t raw[RP_IMAGE_HEADER_SIZE]);

/*
 * Read the header and both TLV info headers and check that every size agrees and fits in io.
 * Each TLV inside the areas is checked by the iterator. OUT: *layout. This and the iterator are
 * for inspecting an image (`rampart image show`); rp_image_verify() does not rely on them.
 */
rp_err_t rp_image_layout(const rp_image_io_t *io, rp_image_layout_t *layout) RP_MUST_CHECK;

/* Read exactly len bytes at off from io, through read() or mapped; past io->size is
 * RP_ERR_TRUNCATED. */
rp_err_t rp_image_io_read(const rp_image_io_t *io, uint64_t off, void *buf,
                          size_t len) RP_MUST_CHECK;

/* Start iterating the TLVs of both areas, protected first. */
void rp_image_tlv_begin(rp_image_tlv_iter_t *it, const rp_image_io_t *io,
                        const rp_image_layout_t *layout);

/*
 * The next TLV. OUT: *tlv and *found (false at the end). A TLV that overruns its area, or an area
 * that does not end exactly at the end of its last TLV, is RP_ERR_BAD_TLV.
 */
rp_err_t rp_image_tlv_next(rp_image_tlv_iter_t *it, rp_image_tlv_t *tlv, bool *found) RP_MUST_CHECK;

/* Whether MCUboot allows a TLV of this type in the unprotected area (CVE-2024-32883). */
bool rp_image_tlv_allowed_unprotected(uint16_t type);

/* A name for a TLV type ("SHA256", "SEC_CNT", "RAMPART_TYPE"...), or NULL when unknown. */
const char *rp_image_tlv_name(uint16_t type);

/* SHA-256 over the signed region [0, prot_end), read in chunks of scratch_len. OUT: digest. */
rp_err_t rp_image_hash(const rp_image_io_t *io, const rp_image_layout_t *layout, uint8_t *scratch,
                       size_t scratch_len, uint8_t digest[RP_SHA256_LEN]) RP_MUST_CHECK;

/*
 * Verify an image: structure, the forbidden-TLV rule, SHA-256, and signatures. The image is valid
 * when its SHA-256 TLV matches the computed digest, at least one signature is by a trusted key,
 * and every signature naming a trusted key verifies. Signatures by other keys are ignored, as in
 * MCUboot. Every byte is fetched from io once and every decision is made from that copy, so a
 * source that changes under the call can make it fail but not pass with other bytes. Images with
 * flags it does not implement (encryption, compression) are RP_ERR_UNSUPPORTED. scratch (at least
 * RP_IMAGE_SCRATCH_MIN bytes) is the hashing buffer.
 * OUT: *info, written only when the result is RP_OK (zeroed otherwise).
 */
rp_err_t rp_image_verify(const rp_image_io_t *io, const rp_image_key_t *keys, size_t nkeys,
                         uint8_t *scratch, size_t scratch_len, rp_image_info_t *info) RP_MUST_CHECK;

/*
 * What an image says of itself, read from its header and TLV areas: the one decoder of these
 * facts outside verification, for showing an image and for a device describing what it runs.
 * Nothing here is verified (rp_image_verify() is what makes these facts trustworthy, and fills
 * the same ones in rp_image_info_t); a fact counts only from the area it belongs to: the security
 * counter and the type from the protected area, the digest and the signer from the unprotected
 * one. Other TLVs, and TLVs outside their area (which verification refuses), are passed over.
 */
typedef struct rp_image_identity {
    rp_image_layout_t layout;  /* the version is layout.hdr.version */
    bool has_security_counter; /* false: the image has no SEC_CNT ("none", not 0) */
    uint32_t security_counter;
    rp_image_type_t type;          /* RP_IMAGE_TYPE_NONE without a type TLV */
    bool has_digest;               /* the SHA256 TLV: the digest the image claims */
    uint8_t digest[RP_SHA256_LEN]; /* compare it with rp_image_hash() before relying on it */
    bool has_signer;               /* a KEYHASH or PUBKEY TLV names the signing key */
    uint8_t signer[RP_SHA256_LEN]; /* the first one's key hash (SHA-256 of a PUBKEY's SPKI) */
} rp_image_identity_t;

/*
 * Read an image's identity. The TLVs it decodes are held to the rules verification holds them
 * to: one SEC_CNT of 4 bytes, one type TLV of 1 byte naming a known type, no signing TLV inside
 * the protected area, one SHA256 of 32 bytes, a KEYHASH of 32 bytes, a PUBKEY of 1 to
 * RP_PUBKEY_DER_MAX bytes; anything else is RP_ERR_BAD_TLV. OUT: *id (zeroed on failure).
 */
rp_err_t rp_image_identity_read(const rp_image_io_t *io, rp_image_identity_t *id) RP_MUST_CHECK;

/*
 * Parse "major[.minor[.revision]][+build]" (decimal, each part in range). OUT: *ver.
 * len is the string's length; no NUL is needed.
 */
rp_err_t rp_image_version_parse(const char *s, size_t len, rp_image_version_t *ver) RP_MUST_CHECK;

/* Format ver as "major.minor.revision+build" into out (RP_IMAGE_VERSION_STR_MAX is enough). */
rp_err_t rp_image_version_format(const rp_image_version_t *ver, char *out,
                                 size_t out_len) RP_MUST_CHECK;

/* <0, 0, >0 as a is older than, equal to, newer than b (build number included, as MCUboot does). */
int rp_image_version_cmp(const rp_image_version_t *a, const rp_image_version_t *b);

/* A name for an image type ("firmware", "app", "system"), or NULL for none/unknown. */
const char *rp_image_type_name(rp_image_type_t type);

/*
 * A writer of one TLV area into a caller buffer, used by signers. Adding past the capacity or past
 * the 16-bit area size fails and leaves the writer unusable (every later call fails too).
 */
typedef struct rp_tlv_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    uint16_t magic;
    bool failed;
} rp_tlv_writer_t;

void rp_tlv_writer_init(rp_tlv_writer_t *w, uint8_t *buf, size_t cap, uint16_t magic);
rp_err_t rp_tlv_writer_add(rp_tlv_writer_t *w, uint16_t type, const void *value,
                           size_t len) RP_MUST_CHECK;
/* Write the area's info header. OUT: *area_len, the bytes of buf that make up the area. */
rp_err_t rp_tlv_writer_finish(rp_tlv_writer_t *w, size_t *area_len) RP_MUST_CHECK;

#ifdef __cplusplus
}
#endif

#endif /* RAMPART_IMAGE_H */
