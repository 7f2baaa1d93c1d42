/*
 * Signing images in the MCUboot format, byte for byte as MCUboot's imgtool lays them out with
 * --pad-header: header area (the 32-byte header, then padding), payload, protected TLVs
 * (SEC_CNT, then Rampart's), unprotected TLVs (SHA256, KEYHASH or PUBKEY, signature). The payload
 * streams through a fixed buffer, so any size that the format allows signs in constant memory.
 */
#ifndef RAMPART_IMGSIGN_H
#define RAMPART_IMGSIGN_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "rampart/error.h"
#include "rampart/image.h"

#define RP_SIGN_DEFAULT_HEADER_SIZE 0x200
#define RP_SIGN_DEFAULT_PAD_BYTE 0xff /* the erased value of flash, as imgtool pads */

typedef struct rp_sign_opts {
    rp_image_version_t version;
    uint16_t hdr_size; /* size of the header area, at least RP_IMAGE_HEADER_SIZE */
    uint32_t load_addr;
    bool has_security_counter;
    uint32_t security_counter;
    rp_image_type_t type; /* RP_IMAGE_TYPE_NONE writes no type TLV: a plain MCUboot image */
    bool embed_pubkey;    /* a PUBKEY TLV (the whole key) instead of KEYHASH */
    uint8_t pad_byte;     /* fills the header area after the header */
    bool exclusive;       /* refuse an existing out_path (a tool's OUT without --force) */
} rp_sign_opts_t;

/* Defaults: version 0.0.0+0, header 0x200, no counter, no type, KEYHASH, pad 0xff, out_path
 * replaced. */
void rp_sign_opts_init(rp_sign_opts_t *opts);

/*
 * Sign exactly payload_len bytes read from in_fd (from its current position), writing the image
 * to out_fd. key is a private key of a supported type.
 */
rp_err_t rp_image_sign_fd(EVP_PKEY *key, const rp_sign_opts_t *opts, int in_fd,
                          uint64_t payload_len, int out_fd) RP_MUST_CHECK;

/*
 * Sign the file payload_path into out_path. The image is verified with the key's public half
 * before it replaces out_path (atomically); a failure leaves out_path as it was. out_path may not
 * be payload_path. A payload that changes while it is signed (it grows, shrinks or is rewritten)
 * is RP_ERR_BUSY: sign it again once it is complete. OUT: *info, what verification found (may be
 * NULL).
 */
rp_err_t rp_image_sign_file(EVP_PKEY *key, const rp_sign_opts_t *opts, const char *payload_path,
                            const char *out_path, rp_image_info_t *info) RP_MUST_CHECK;

/*
 * The warning for a security counter that a root of trust holding at most max cannot accept (a
 * TPM's max is RP_ROT_TPM2_SECCNT_MAX, in rot.h): the image signs and uploads, but such devices
 * refuse it. The one text of this warning, for `rampart image sign` and the service's uploads.
 * OUT: out. Returns whether there is a warning (none for an image without a counter).
 */
bool rp_image_seccnt_warning(bool has_security_counter, uint32_t security_counter, uint32_t max,
                             char *out, size_t cap);

#endif /* RAMPART_IMGSIGN_H */
