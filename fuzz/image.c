/*
 * Fuzz target: the whole image path a device runs on untrusted bytes — layout, the TLV walk,
 * hashing, reading an image's identity (rp_image_identity_read) and verification against both
 * test keys — with reads bounded to the input so that any read past it is an ASan report. The
 * identity must say what verification says of every image that verifies. Seeds: MCUboot's
 * imgtool vectors (fuzz/corpus/image).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/image.h"

static uint8_t keys_der[2][RP_PUBKEY_DER_MAX];
static rp_image_key_t keys[2];

static void load_key(const char *name, int i)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", RP_VECTORS_DIR, name);
    f = fopen(path, "rb");
    if (f == NULL)
        abort();
    keys[i].spki_len = fread(keys_der[i], 1, sizeof(keys_der[i]), f);
    keys[i].spki = keys_der[i];
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    load_key("ecdsa-p256-pub.der", 0);
    load_key("ed25519-pub.der", 1);
    return 0;
}

struct mem {
    const uint8_t *data;
    size_t size;
    uint8_t *fetched; /* when set: count fetches, and abort on a second fetch of a byte */
};

static int mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    const struct mem *m = ctx;

    if (off > m->size || len > m->size - off)
        abort(); /* the core must never ask for bytes past io->size */
    memcpy(buf, m->data + off, len);
    if (m->fetched != NULL)
        for (size_t i = 0; i < len; i++)
            if (m->fetched[off + i]++ != 0)
                abort(); /* verification fetches every byte once */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mem m = {data, size, NULL};
    rp_image_io_t io = {mem_read, &m, NULL, size};
    uint8_t scratch[RP_IMAGE_SCRATCH_MIN + 13];
    uint8_t digest[RP_SHA256_LEN];
    rp_image_layout_t layout;
    rp_image_tlv_iter_t it;
    rp_image_tlv_t tlv;
    rp_image_info_t info;
    bool found;
    rp_err_t err;

    if (rp_image_layout(&io, &layout) == RP_OK) {
        if (layout.total_size > size || layout.prot_end > layout.total_size)
            abort();
        rp_image_tlv_begin(&it, &io, &layout);
        while (rp_image_tlv_next(&it, &tlv, &found) == RP_OK && found)
            if (tlv.value_off + tlv.len > layout.total_size)
                abort();
        if (rp_image_hash(&io, &layout, scratch, sizeof(scratch), digest) != RP_OK)
            abort();
    }
    m.fetched = calloc(size + 1, 1);
    if (m.fetched == NULL)
        abort();
    err = rp_image_verify(&io, keys, 2, scratch, sizeof(scratch), &info);
    free(m.fetched);
    m.fetched = NULL;
    {
        /* Reading in place must give the same verdict as reading through the callback. */
        rp_image_io_t mapped = {NULL, NULL, data, size};
        rp_image_info_t info2;
        if (rp_image_verify(&mapped, keys, 2, scratch, sizeof(scratch), &info2) != err ||
            memcmp(&info, &info2, sizeof(info)) != 0)
            abort();
    }
    /* Whatever the input, a pass must describe an image inside it, signed by a trusted key. */
    if (err == RP_OK && (info.layout.total_size > size || info.signer > 1))
        abort();
    if (err != RP_OK && info.layout.total_size != 0)
        abort(); /* nothing is released on failure */
    {
        /* The identity is read by the same rules: of a verified image, it says what verification
         * said; of anything else, it says nothing past the input, or fails with nothing. */
        rp_image_identity_t id;
        rp_err_t ierr = rp_image_identity_read(&io, &id);
        if (ierr == RP_OK && id.layout.total_size > size)
            abort();
        if (ierr != RP_OK && (id.layout.total_size != 0 || id.has_security_counter))
            abort();
        if (err == RP_OK &&
            (ierr != RP_OK || memcmp(&id.layout, &info.layout, sizeof(id.layout)) != 0 ||
             id.has_security_counter != info.has_security_counter ||
             id.security_counter != info.security_counter || id.type != info.type ||
             !id.has_digest || memcmp(id.digest, info.digest, RP_SHA256_LEN) != 0 ||
             !id.has_signer))
            abort();
    }
    return 0;
}
