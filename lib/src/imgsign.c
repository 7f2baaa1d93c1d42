/*
 * The image signer: lays out and signs MCUboot images as imgtool does, streaming the payload.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rampart/bytes.h"
#include "rampart/crypto.h"
#include "rampart/file.h"
#include "rampart/imgsign.h"
#include "rampart/key.h"

#define CHUNK (64 * 1024)
/* Protected area: SEC_CNT (4+4) and the type (4+1), behind the info header. */
#define PROT_AREA_MAX 64
/* Unprotected area: SHA256 (4+32), PUBKEY (4+128), signature (4+72), behind the info header. */
#define UNPROT_AREA_MAX 256

void rp_sign_opts_init(rp_sign_opts_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->hdr_size = RP_SIGN_DEFAULT_HEADER_SIZE;
    opts->pad_byte = RP_SIGN_DEFAULT_PAD_BYTE;
}

/* Write buf to out_fd and feed it to the hash. */
static rp_err_t emit(int out_fd, rp_sha256_t *sha, const void *buf, size_t len)
{
    rp_err_t err = rp_write_all(out_fd, buf, len);

    if (err == RP_OK && sha != NULL)
        err = rp_sha256_update(sha, buf, len);
    return err;
}

static rp_err_t build_protected(const rp_sign_opts_t *o, uint8_t *buf, size_t *len)
{
    rp_tlv_writer_t w;
    uint8_t le[4];
    rp_err_t err = RP_OK;

    *len = 0;
    if (!o->has_security_counter && o->type == RP_IMAGE_TYPE_NONE)
        return RP_OK; /* no protected area at all, as imgtool does */
    rp_tlv_writer_init(&w, buf, PROT_AREA_MAX, RP_IMAGE_TLV_PROT_INFO_MAGIC);
    if (o->has_security_counter) {
        rp_le_put(le, o->security_counter, sizeof(le));
        err = rp_tlv_writer_add(&w, RP_TLV_SEC_CNT, le, sizeof(le));
    }
    if (err == RP_OK && o->type != RP_IMAGE_TYPE_NONE) {
        uint8_t t = (uint8_t)o->type;
        err = rp_tlv_writer_add(&w, RP_TLV_IMAGE_TYPE, &t, 1);
    }
    if (err == RP_OK)
        err = rp_tlv_writer_finish(&w, len);
    return err;
}

static rp_err_t build_unprotected(EVP_PKEY *key, const rp_sign_opts_t *o,
                                  const uint8_t digest[RP_SHA256_LEN], uint8_t *buf, size_t *len)
{
    uint8_t spki[RP_PUBKEY_DER_MAX], key_hash[RP_SHA256_LEN], sig[RP_ECDSA_P256_SIG_MAX];
    size_t spki_len, sig_len;
    rp_sig_alg_t alg;
    rp_tlv_writer_t w;
    rp_err_t err;

    err = rp_key_alg(key, &alg);
    if (err == RP_OK)
        err = rp_key_spki(key, spki, sizeof(spki), &spki_len);
    if (err == RP_OK)
        err = rp_sha256(spki, spki_len, key_hash);
    if (err == RP_OK)
        err = rp_key_sign_digest(key, digest, sig, sizeof(sig), &sig_len);
    if (err != RP_OK)
        return err;
    rp_tlv_writer_init(&w, buf, UNPROT_AREA_MAX, RP_IMAGE_TLV_INFO_MAGIC);
    err = rp_tlv_writer_add(&w, RP_TLV_SHA256, digest, RP_SHA256_LEN);
    if (err == RP_OK && o->embed_pubkey)
        err = rp_tlv_writer_add(&w, RP_TLV_PUBKEY, spki, spki_len);
    else if (err == RP_OK)
        err = rp_tlv_writer_add(&w, RP_TLV_KEYHASH, key_hash, sizeof(key_hash));
    if (err == RP_OK)
        err = rp_tlv_writer_add(&w, alg == RP_SIG_ECDSA_P256 ? RP_TLV_ECDSA_SIG : RP_TLV_ED25519,
                                sig, sig_len);
    if (err == RP_OK)
        err = rp_tlv_writer_finish(&w, len);
    return err;
}

/* Copy payload_len bytes from in_fd to out_fd through the hash, after the fill bytes already in
 * buf (CHUNK bytes: the header area). The file is written in whole CHUNKs at CHUNK-aligned offsets
 * (the last one short), not the header and then chunks 32 bytes off their boundaries: the page
 * cache then holds it in large folios, which the verifier's pread() copies out of faster (ext4,
 * Linux 6.18: ~10 GB/s against ~8; bench/image-verify's file ratio 0.93 -> 1.07). */
static rp_err_t stream_payload(int in_fd, uint64_t payload_len, int out_fd, rp_sha256_t *sha,
                               uint8_t *buf, size_t fill)
{
    rp_err_t err = RP_OK;

    while (payload_len > 0 && err == RP_OK) {
        size_t want = payload_len < CHUNK - fill ? (size_t)payload_len : CHUNK - fill;
        ssize_t n = read(in_fd, buf + fill, want);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = RP_ERR_IO;
        else if (n == 0)
            err = RP_ERR_TRUNCATED; /* the payload shrank under us */
        else {
            fill += (size_t)n;
            payload_len -= (uint64_t)n;
            if (fill == CHUNK) {
                err = emit(out_fd, sha, buf, fill);
                fill = 0;
            }
        }
    }
    if (err == RP_OK && fill > 0)
        err = emit(out_fd, sha, buf, fill);
    return err;
}

rp_err_t rp_image_sign_fd(EVP_PKEY *key, const rp_sign_opts_t *o, int in_fd, uint64_t payload_len,
                          int out_fd)
{
    uint8_t *buf;
    uint8_t prot[PROT_AREA_MAX], unprot[UNPROT_AREA_MAX], digest[RP_SHA256_LEN];
    size_t prot_len, unprot_len;
    rp_image_header_t hdr;
    rp_sha256_t sha;
    rp_sig_alg_t alg;
    rp_err_t err;

    if (key == NULL || o == NULL || o->hdr_size < RP_IMAGE_HEADER_SIZE)
        return RP_ERR_INVALID_ARG;
    if (payload_len > UINT32_MAX - o->hdr_size)
        return RP_ERR_TOO_LARGE;
    if (o->type > RP_IMAGE_TYPE_SYSTEM)
        return RP_ERR_INVALID_ARG;
    err = rp_key_alg(key, &alg); /* refuse an unusable key before any work */
    if (err != RP_OK)
        return err;
    err = build_protected(o, prot, &prot_len);
    if (err != RP_OK)
        return err;

    memset(&hdr, 0, sizeof(hdr));
    hdr.magic = RP_IMAGE_MAGIC;
    hdr.load_addr = o->load_addr;
    hdr.hdr_size = o->hdr_size;
    hdr.prot_tlv_size = (uint16_t)prot_len;
    hdr.img_size = (uint32_t)payload_len;
    hdr.version = o->version;
    _Static_assert(CHUNK >= UINT16_MAX, "the header area fits in one chunk");
    buf = malloc(CHUNK);
    if (buf == NULL)
        return RP_ERR_NO_MEMORY;
    memset(buf, o->pad_byte, o->hdr_size);
    rp_image_header_encode(&hdr, buf);

    err = rp_sha256_init(&sha);
    if (err == RP_OK)
        err = stream_payload(in_fd, payload_len, out_fd, &sha, buf, o->hdr_size);
    if (err == RP_OK)
        err = emit(out_fd, &sha, prot, prot_len);
    free(buf);
    if (err != RP_OK) {
        rp_wipe(&sha, sizeof(sha));
        return err;
    }
    err = rp_sha256_final(&sha, digest);
    if (err == RP_OK)
        err = build_unprotected(key, o, digest, unprot, &unprot_len);
    if (err == RP_OK)
        err = emit(out_fd, NULL, unprot, unprot_len);
    return err;
}

/* Verify what was written to the temporary before it takes the output's name. */
static rp_err_t verify_written(EVP_PKEY *key, const char *path, rp_image_info_t *info)
{
    uint8_t spki[RP_PUBKEY_DER_MAX];
    rp_image_key_t trusted = {spki, 0};
    rp_file_image_t img;
    uint8_t *scratch;
    rp_err_t err;

    err = rp_key_spki(key, spki, sizeof(spki), &trusted.spki_len);
    if (err != RP_OK)
        return err;
    scratch = malloc(RP_FILE_IMAGE_SCRATCH);
    if (scratch == NULL)
        return RP_ERR_NO_MEMORY;
    err = rp_file_image_open(&img, path);
    if (err == RP_OK) {
        err = rp_image_verify(&img.io, &trusted, 1, scratch, RP_FILE_IMAGE_SCRATCH, info);
        rp_file_image_close(&img);
    }
    free(scratch);
    return err;
}

/* Whether the payload is as it was when signing began: it ends where it did (read() at the end
 * gives nothing: a file still being written has grown) and its size and time are the same, as the
 * app-tree packer checks its files (apptree.c, write_entry). */
static bool payload_unchanged(int fd, const struct stat *before)
{
    struct stat now;
    uint8_t b;
    ssize_t n;

    do
        n = read(fd, &b, 1);
    while (n < 0 && errno == EINTR);
    return n == 0 && fstat(fd, &now) == 0 && now.st_size == before->st_size &&
           now.st_ino == before->st_ino && now.st_mtim.tv_sec == before->st_mtim.tv_sec &&
           now.st_mtim.tv_nsec == before->st_mtim.tv_nsec;
}

rp_err_t rp_image_sign_file(EVP_PKEY *key, const rp_sign_opts_t *opts, const char *payload_path,
                            const char *out_path, rp_image_info_t *info)
{
    rp_image_info_t scratch_info;
    rp_atomic_file_t out;
    struct stat st;
    rp_err_t err;
    int in_fd;

    if (opts == NULL || rp_same_file(payload_path, out_path))
        return RP_ERR_INVALID_ARG;
    in_fd = open(payload_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (in_fd < 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    if (fstat(in_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(in_fd);
        return RP_ERR_IO;
    }
    err = rp_atomic_begin(&out, out_path, 0644, opts->exclusive);
    if (err == RP_OK) {
        err = rp_image_sign_fd(key, opts, in_fd, (uint64_t)st.st_size, out.fd);
        if (err == RP_ERR_TRUNCATED || (err == RP_OK && !payload_unchanged(in_fd, &st)))
            err = RP_ERR_BUSY; /* shrank, or grew or was rewritten while it was read */
        if (err == RP_OK)
            err = verify_written(key, out.tmp, info != NULL ? info : &scratch_info);
        if (err == RP_OK)
            err = rp_atomic_commit(&out, opts->exclusive);
        else
            rp_atomic_abort(&out);
    }
    close(in_fd);
    return err;
}

bool rp_image_seccnt_warning(bool has_security_counter, uint32_t security_counter, uint32_t max,
                             char *out, size_t cap)
{
    if (!has_security_counter || security_counter <= max)
        return false;
    snprintf(out, cap,
             "security counter %lu is more than a TPM root of trust can hold (%lu): devices with a "
             "TPM will refuse this image",
             (unsigned long)security_counter, (unsigned long)max);
    return true;
}
