/*
 * The portable core's image tests, run once per crypto backend: MCUboot's own imgtool vectors,
 * every single-byte change, every truncation, the forbidden-TLV rule, malformed structures, and
 * the version, header and TLV codecs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/crypto.h"
#include "rampart/image.h"
#include "testutil.h"

#ifdef RP_CRYPTO_MBEDTLS
#define HAVE_ED25519 0
#else
#define HAVE_ED25519 1
#endif

#define ECDSA_IMG "ecdsa-p256-v1.2.3+4-sc7.bin"
#define ED25519_IMG "ed25519-v0.9.0.bin"
#define FULLKEY_IMG "ecdsa-p256-fullkey-hdr400-v3.0.0+1.bin"

static tu_buf_t ecdsa_pub, ed25519_pub;

static int setup(void **state)
{
    (void)state;
    ecdsa_pub = tu_load(RP_VECTORS_DIR, "ecdsa-p256-pub.der");
    ed25519_pub = tu_load(RP_VECTORS_DIR, "ed25519-pub.der");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_free(&ecdsa_pub);
    tu_free(&ed25519_pub);
    return 0;
}

/* Verify a vector with a single key. */
static rp_err_t verify_vector(const char *name, const tu_buf_t *key, rp_image_info_t *info)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, name);
    rp_err_t err = tu_verify(img.data, img.len, key, 1, info);

    tu_free(&img);
    return err;
}

static void test_ecdsa_vector_verifies(void **state)
{
    rp_image_info_t info;

    (void)state;
    assert_int_equal(verify_vector(ECDSA_IMG, &ecdsa_pub, &info), RP_OK);
    assert_int_equal(info.layout.hdr.version.major, 1);
    assert_int_equal(info.layout.hdr.version.minor, 2);
    assert_int_equal(info.layout.hdr.version.revision, 3);
    assert_int_equal(info.layout.hdr.version.build, 4);
    assert_int_equal(info.layout.hdr.hdr_size, 0x200);
    assert_int_equal(info.layout.hdr.img_size, 4096);
    assert_true(info.has_security_counter);
    assert_int_equal(info.security_counter, 7);
    assert_int_equal(info.sig_alg, RP_SIG_ECDSA_P256);
    assert_int_equal(info.signer, 0);
    assert_int_equal(info.type, RP_IMAGE_TYPE_NONE);
    assert_int_equal(info.layout.total_size, 4771);
}

static void test_fullkey_vector_verifies(void **state)
{
    rp_image_info_t info;

    (void)state;
    assert_int_equal(verify_vector(FULLKEY_IMG, &ecdsa_pub, &info), RP_OK);
    assert_int_equal(info.layout.hdr.hdr_size, 0x400);
    assert_int_equal(info.layout.hdr.version.major, 3);
    assert_int_equal(info.layout.hdr.version.build, 1);
    assert_false(info.has_security_counter);
}

static void test_ed25519_vector(void **state)
{
    rp_image_info_t info;

    (void)state;
    if (!HAVE_ED25519) {
        /* The Mbed TLS backend says so rather than failing some other way. */
        assert_int_equal(verify_vector(ED25519_IMG, &ed25519_pub, &info), RP_ERR_UNSUPPORTED);
        return;
    }
    assert_int_equal(verify_vector(ED25519_IMG, &ed25519_pub, &info), RP_OK);
    assert_int_equal(info.sig_alg, RP_SIG_ED25519);
    assert_int_equal(info.layout.hdr.version.minor, 9);
    assert_false(info.has_security_counter);
}

static void test_vectors_refuse_the_other_key(void **state)
{
    rp_image_info_t info;

    (void)state;
    assert_int_equal(verify_vector(ECDSA_IMG, &ed25519_pub, &info), RP_ERR_WRONG_KEY);
    assert_int_equal(verify_vector(FULLKEY_IMG, &ed25519_pub, &info), RP_ERR_WRONG_KEY);
    assert_int_equal(verify_vector(ED25519_IMG, &ecdsa_pub, &info), RP_ERR_WRONG_KEY);
    /* Nothing is released on failure. */
    assert_int_equal(info.layout.total_size, 0);
    assert_int_equal(info.security_counter, 0);
}

static void test_digest_is_sha256_of_signed_region(void **state)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, ECDSA_IMG);
    uint8_t expect[RP_SHA256_LEN];
    rp_image_info_t info;

    (void)state;
    assert_int_equal(tu_verify(img.data, img.len, &ecdsa_pub, 1, &info), RP_OK);
    assert_int_equal(rp_sha256(img.data, (size_t)info.layout.prot_end, expect), RP_OK);
    assert_memory_equal(info.digest, expect, RP_SHA256_LEN);
    tu_free(&img);
}

static void test_any_trusted_key_may_sign(void **state)
{
    tu_buf_t keys[2] = {ed25519_pub, ecdsa_pub};
    tu_buf_t img = tu_load(RP_VECTORS_DIR, ECDSA_IMG);
    rp_image_info_t info;

    (void)state;
    assert_int_equal(tu_verify(img.data, img.len, keys, 2, &info), RP_OK);
    assert_int_equal(info.signer, 1);
    tu_free(&img);
}

/* Every single-byte change anywhere in the image is refused. */
static void mutate_every_byte(const char *name, const tu_buf_t *key)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, name);
    rp_image_info_t info;

    for (size_t i = 0; i < img.len; i++) {
        static const uint8_t flips[] = {0x01, 0x80, 0xff};
        for (size_t f = 0; f < sizeof(flips); f++) {
            rp_err_t err;
            img.data[i] ^= flips[f];
            err = tu_verify(img.data, img.len, key, 1, &info);
            img.data[i] ^= flips[f];
            if (err == RP_OK)
                fail_msg("%s: byte %zu ^ 0x%02x was accepted", name, i, flips[f]);
        }
    }
    assert_int_equal(tu_verify(img.data, img.len, key, 1, &info), RP_OK); /* restored */
    tu_free(&img);
}

static void test_every_byte_change_refused_ecdsa(void **state)
{
    (void)state;
    mutate_every_byte(ECDSA_IMG, &ecdsa_pub);
    mutate_every_byte(FULLKEY_IMG, &ecdsa_pub);
}

static void test_every_byte_change_refused_ed25519(void **state)
{
    (void)state;
    if (HAVE_ED25519)
        mutate_every_byte(ED25519_IMG, &ed25519_pub);
}

static void truncate_everywhere(const char *name, const tu_buf_t *key)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, name);

    for (size_t len = 0; len < img.len; len++) {
        /* A fresh copy of exactly len bytes, so a read past it would be an ASan report. */
        uint8_t *copy = malloc(len ? len : 1);
        rp_err_t err;

        assert_non_null(copy);
        memcpy(copy, img.data, len);
        err = tu_verify(copy, len, key, 1, NULL);
        free(copy);
        if (err != RP_ERR_TRUNCATED)
            fail_msg("%s truncated to %zu bytes: %s", name, len, rp_strerror(err));
    }
    tu_free(&img);
}

static void test_truncation_at_every_length(void **state)
{
    (void)state;
    truncate_everywhere(ECDSA_IMG, &ecdsa_pub);
    truncate_everywhere(FULLKEY_IMG, &ecdsa_pub);
    truncate_everywhere(ED25519_IMG, &ed25519_pub);
}

static void test_trailing_bytes_are_outside_the_image(void **state)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, ECDSA_IMG);
    uint8_t *slot = malloc(img.len + 1000);
    rp_image_info_t info;

    (void)state;
    assert_non_null(slot);
    memcpy(slot, img.data, img.len);
    memset(slot + img.len, 0xff, 1000); /* the rest of a flash slot */
    assert_int_equal(tu_verify(slot, img.len + 1000, &ecdsa_pub, 1, &info), RP_OK);
    assert_int_equal(info.layout.total_size, img.len);
    free(slot);
    tu_free(&img);
}

static void test_read_failure_is_io_error(void **state)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, ECDSA_IMG);
    rp_image_key_t key = {ecdsa_pub.data, ecdsa_pub.len};
    uint8_t scratch[256];
    rp_image_info_t info;
    tu_mem_io_t m;

    (void)state;
    tu_mem_io_init(&m, img.data, img.len);
    m.fail_reads = true;
    assert_int_equal(rp_image_verify(&m.io, &key, 1, scratch, sizeof(scratch), &info), RP_ERR_IO);
    tu_free(&img);
}

static void test_small_scratch_verifies(void **state)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, ECDSA_IMG);
    rp_image_key_t key = {ecdsa_pub.data, ecdsa_pub.len};
    uint8_t scratch[RP_IMAGE_SCRATCH_MIN];
    rp_image_info_t info;
    tu_mem_io_t m;

    (void)state;
    tu_mem_io_init(&m, img.data, img.len);
    assert_int_equal(rp_image_verify(&m.io, &key, 1, scratch, sizeof(scratch), &info), RP_OK);
    assert_int_equal(rp_image_verify(&m.io, &key, 1, scratch, sizeof(scratch) - 1, &info),
                     RP_ERR_INVALID_ARG);
    assert_int_equal(rp_image_verify(&m.io, &key, 0, scratch, sizeof(scratch), &info),
                     RP_ERR_INVALID_ARG);
    assert_int_equal(rp_image_verify(&m.io, NULL, 1, scratch, sizeof(scratch), &info),
                     RP_ERR_INVALID_ARG);
    tu_free(&img);
}

/* Append an unprotected TLV to a vector and verify the result. */
static rp_err_t with_extra_unprotected(const char *name, const tu_buf_t *key, uint16_t type,
                                       const uint8_t *value, uint16_t len)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, name), out;
    tu_image_t parts;
    rp_err_t err;

    tu_split(img.data, img.len, &parts);
    parts.tlvs[parts.ntlvs++] = (tu_tlv_t){type, len, value};
    out = tu_join(&parts);
    err = tu_verify(out.data, out.len, key, 1, NULL);
    tu_free(&out);
    tu_image_free(&parts);
    tu_free(&img);
    return err;
}

static void test_forbidden_unprotected_tlvs(void **state)
{
    static const uint8_t counter[4] = {0xff, 0xff, 0xff, 0x7f};
    static const uint8_t app = RP_IMAGE_TYPE_APP;
    static const uint8_t dep[12] = {0};

    (void)state;
    /* CVE-2024-32883: a security counter added after signing must not count. */
    assert_int_equal(with_extra_unprotected(ECDSA_IMG, &ecdsa_pub, RP_TLV_SEC_CNT, counter, 4),
                     RP_ERR_FORBIDDEN_TLV);
    assert_int_equal(with_extra_unprotected(FULLKEY_IMG, &ecdsa_pub, RP_TLV_SEC_CNT, counter, 4),
                     RP_ERR_FORBIDDEN_TLV);
    assert_int_equal(with_extra_unprotected(ED25519_IMG, &ed25519_pub, RP_TLV_SEC_CNT, counter, 4),
                     RP_ERR_FORBIDDEN_TLV);
    assert_int_equal(with_extra_unprotected(ECDSA_IMG, &ecdsa_pub, RP_TLV_DEPENDENCY, dep, 12),
                     RP_ERR_FORBIDDEN_TLV);
    assert_int_equal(with_extra_unprotected(ECDSA_IMG, &ecdsa_pub, RP_TLV_BOOT_RECORD, dep, 4),
                     RP_ERR_FORBIDDEN_TLV);
    assert_int_equal(with_extra_unprotected(ECDSA_IMG, &ecdsa_pub, RP_TLV_IMAGE_TYPE, &app, 1),
                     RP_ERR_FORBIDDEN_TLV);
    assert_int_equal(with_extra_unprotected(ECDSA_IMG, &ecdsa_pub, 0x7777, dep, 2),
                     RP_ERR_FORBIDDEN_TLV);
    /* What MCUboot allows there is harmless and ignored. */
    assert_int_equal(with_extra_unprotected(ECDSA_IMG, &ecdsa_pub, RP_TLV_ENC_KW, dep, 12), RP_OK);
    assert_int_equal(with_extra_unprotected(ECDSA_IMG, &ecdsa_pub, RP_TLV_SHA256, dep, 0),
                     RP_ERR_BAD_TLV);
    assert_int_equal(with_extra_unprotected(ECDSA_IMG, &ecdsa_pub, RP_TLV_SIG_PURE, &app, 1),
                     RP_ERR_UNSUPPORTED);
}

/* Rebuild a vector with its unprotected TLVs edited by fn. */
static rp_err_t edited(const char *name, const tu_buf_t *key, void (*fn)(tu_image_t *))
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, name), out;
    tu_image_t parts;
    rp_err_t err;

    tu_split(img.data, img.len, &parts);
    fn(&parts);
    out = tu_join(&parts);
    err = tu_verify(out.data, out.len, key, 1, NULL);
    tu_free(&out);
    tu_image_free(&parts);
    tu_free(&img);
    return err;
}

static void drop(tu_image_t *p, uint16_t type)
{
    int i = tu_find_tlv(p, type);

    assert_true(i >= 0);
    memmove(&p->tlvs[i], &p->tlvs[i + 1], (p->ntlvs - (size_t)i - 1) * sizeof(p->tlvs[0]));
    p->ntlvs--;
}

static void drop_hash(tu_image_t *p)
{
    drop(p, RP_TLV_SHA256);
}
static void drop_sig(tu_image_t *p)
{
    drop(p, RP_TLV_ECDSA_SIG);
}
static void drop_keyhash(tu_image_t *p)
{
    drop(p, RP_TLV_KEYHASH);
}

static void duplicate_hash(tu_image_t *p)
{
    p->tlvs[p->ntlvs++] = p->tlvs[tu_find_tlv(p, RP_TLV_SHA256)];
}

/* A second KEYHASH+signature pair by the same trusted key whose signature is corrupt. */
static uint8_t bad_sig[RP_ECDSA_P256_SIG_MAX];
static void add_bad_second_signature(tu_image_t *p)
{
    int k = tu_find_tlv(p, RP_TLV_KEYHASH), s = tu_find_tlv(p, RP_TLV_ECDSA_SIG);

    memcpy(bad_sig, p->tlvs[s].value, p->tlvs[s].len);
    bad_sig[p->tlvs[s].len - 1] ^= 1;
    p->tlvs[p->ntlvs++] = p->tlvs[k];
    p->tlvs[p->ntlvs++] = (tu_tlv_t){RP_TLV_ECDSA_SIG, p->tlvs[s].len, bad_sig};
}

/* A second pair by a key we do not trust: ignored, as MCUboot does. */
static const uint8_t other_keyhash[RP_SHA256_LEN] = {1, 2, 3};
static void add_untrusted_signature(tu_image_t *p)
{
    int s = tu_find_tlv(p, RP_TLV_ECDSA_SIG);

    p->tlvs[p->ntlvs++] = (tu_tlv_t){RP_TLV_KEYHASH, RP_SHA256_LEN, other_keyhash};
    p->tlvs[p->ntlvs++] = p->tlvs[s];
}

static void too_many_signatures(tu_image_t *p)
{
    int s = tu_find_tlv(p, RP_TLV_ECDSA_SIG);

    for (int i = 0; i < RP_IMAGE_MAX_SIGNATURES; i++)
        p->tlvs[p->ntlvs++] = p->tlvs[s];
}

static void test_unprotected_area_edits(void **state)
{
    (void)state;
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, drop_hash), RP_ERR_NO_HASH);
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, drop_sig), RP_ERR_NO_SIGNATURE);
    /* A signature that names no key is not by a trusted key. */
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, drop_keyhash), RP_ERR_WRONG_KEY);
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, duplicate_hash), RP_ERR_BAD_TLV);
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, add_bad_second_signature), RP_ERR_BAD_SIGNATURE);
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, add_untrusted_signature), RP_OK);
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, too_many_signatures), RP_ERR_BAD_TLV);
}

/* Patch a little-endian u16 / u32 in a copy of a vector and verify it. */
static rp_err_t patched(const char *name, const tu_buf_t *key, size_t off, uint32_t value,
                        int width)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, name);
    rp_err_t err;

    for (int i = 0; i < width; i++)
        img.data[off + (size_t)i] = (uint8_t)(value >> (8 * i));
    err = tu_verify(img.data, img.len, key, 1, NULL);
    tu_free(&img);
    return err;
}

static void test_malformed_headers(void **state)
{
    (void)state;
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 0, 0x96f3b83c, 4), RP_ERR_BAD_MAGIC);
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 8, 31, 2), RP_ERR_BAD_HEADER);
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 10, 2, 2), RP_ERR_BAD_HEADER);
    /* Header and protected-area sizes must agree. */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 10, 16, 2), RP_ERR_BAD_TLV);
    /* Protected area present but not declared in the header. */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 10, 0, 2), RP_ERR_BAD_TLV);
    /* Payload size pointing past the end, and wrapping 32 bits. */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 12, 0xffffffff, 4), RP_ERR_TRUNCATED);
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 12, 0xfffffe00, 4), RP_ERR_TRUNCATED);
    /* Encrypted and compressed images, and flags not yet defined, are refused outright. */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 16, RP_IMAGE_F_ENCRYPTED_AES128, 4),
                     RP_ERR_UNSUPPORTED);
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 16, RP_IMAGE_F_COMPRESSED_LZMA2, 4),
                     RP_ERR_UNSUPPORTED);
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 16, 0x80000000, 4), RP_ERR_UNSUPPORTED);
    /* Flags that do not change what the bytes mean are hashed like the rest. */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 16, RP_IMAGE_F_RAM_LOAD, 4),
                     RP_ERR_HASH_MISMATCH);
}

static void test_malformed_tlv_areas(void **state)
{
    /* ECDSA vector: protected area at 0x1200 (12 bytes), unprotected at 0x120c. */
    (void)state;
    /* unprotected total smaller than its info header */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 0x120e, 3, 2), RP_ERR_BAD_TLV);
    /* unprotected total too large for the file */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 0x120e, 0x98, 2), RP_ERR_TRUNCATED);
    /* unprotected total cuts the last TLV short */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 0x120e, 0x96, 2), RP_ERR_BAD_TLV);
    /* the signature's length overruns its area by one byte */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 0x125a, 72, 2), RP_ERR_BAD_TLV);
    /* SEC_CNT of the wrong size */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 0x1206, 3, 2), RP_ERR_BAD_TLV);
    /* the protected info magic replaced by the unprotected one */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 0x1200, RP_IMAGE_TLV_INFO_MAGIC, 2),
                     RP_ERR_BAD_TLV);
    /* a KEYHASH of the wrong length */
    assert_int_equal(patched(ECDSA_IMG, &ecdsa_pub, 0x1236, 31, 2), RP_ERR_BAD_TLV);
}

static void test_leftover_bytes_in_an_area(void **state)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, ECDSA_IMG);
    uint8_t *big = calloc(1, img.len + 2);

    (void)state;
    assert_non_null(big);
    memcpy(big, img.data, img.len);
    big[0x120e] += 2; /* two bytes after the last TLV: not a TLV, not nothing */
    assert_int_equal(tu_verify(big, img.len + 2, &ecdsa_pub, 1, NULL), RP_ERR_BAD_TLV);
    free(big);
    tu_free(&img);
}

/* The ECDSA vector with its protected area replaced (its hash is then wrong, but the structure
 * checks come first). OUT: the image (tu_free). */
static tu_buf_t build_with_protected(const tu_tlv_t *tlvs, size_t n)
{
    tu_buf_t img = tu_load(RP_VECTORS_DIR, ECDSA_IMG), out;
    uint8_t area[256];
    size_t area_len, unprot_len = img.len - 0x120c;
    rp_tlv_writer_t w;

    rp_tlv_writer_init(&w, area, sizeof(area), RP_IMAGE_TLV_PROT_INFO_MAGIC);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rp_tlv_writer_add(&w, tlvs[i].type, tlvs[i].value, tlvs[i].len), RP_OK);
    assert_int_equal(rp_tlv_writer_finish(&w, &area_len), RP_OK);
    out.len = 0x1200 + area_len + unprot_len;
    out.data = malloc(out.len);
    assert_non_null(out.data);
    memcpy(out.data, img.data, 0x1200);
    out.data[10] = (uint8_t)area_len;
    out.data[11] = (uint8_t)(area_len >> 8);
    memcpy(out.data + 0x1200, area, area_len);
    memcpy(out.data + 0x1200 + area_len, img.data + 0x120c, unprot_len);
    tu_free(&img);
    return out;
}

static rp_err_t with_protected(const tu_tlv_t *tlvs, size_t n)
{
    tu_buf_t img = build_with_protected(tlvs, n);
    rp_err_t err = tu_verify(img.data, img.len, &ecdsa_pub, 1, NULL);

    tu_free(&img);
    return err;
}

static void test_protected_area_rules(void **state)
{
    static const uint8_t cnt[4] = {7, 0, 0, 0}, hash[RP_SHA256_LEN] = {0}, app = 2, bad = 9;
    const tu_tlv_t two_counters[] = {
        {RP_TLV_SEC_CNT, 4, cnt},
        {RP_TLV_SEC_CNT, 4, cnt}
    };
    const tu_tlv_t keyhash[] = {
        {RP_TLV_KEYHASH, RP_SHA256_LEN, hash}
    };
    const tu_tlv_t two_types[] = {
        {RP_TLV_IMAGE_TYPE, 1, &app},
        {RP_TLV_IMAGE_TYPE, 1, &app}
    };
    const tu_tlv_t bad_type[] = {
        {RP_TLV_IMAGE_TYPE, 1, &bad}
    };
    const tu_tlv_t same[] = {
        {RP_TLV_SEC_CNT, 4, cnt}
    };

    (void)state;
    /* Rebuilding the original area gives back a valid image: the helper is sound. */
    assert_int_equal(with_protected(same, 1), RP_OK);
    /* Two counters would leave the reader to pick one. */
    assert_int_equal(with_protected(two_counters, 2), RP_ERR_BAD_TLV);
    /* Signing TLVs are never meaningful inside what is signed. */
    assert_int_equal(with_protected(keyhash, 1), RP_ERR_BAD_TLV);
    assert_int_equal(with_protected(two_types, 2), RP_ERR_BAD_TLV);
    assert_int_equal(with_protected(bad_type, 1), RP_ERR_BAD_TLV);
    /* An empty protected area (just its info header) is well formed: the hash is what fails. */
    assert_int_equal(with_protected(NULL, 0), RP_ERR_HASH_MISMATCH);
}

/* ---- rp_image_identity_read: what an image says of itself ---- */

static rp_err_t identity_of(const uint8_t *data, size_t len, rp_image_identity_t *id)
{
    tu_mem_io_t m;

    tu_mem_io_init(&m, data, len);
    return rp_image_identity_read(&m.io, id);
}

/* Each imgtool vector: the identity says what verification says, and names the key it is
 * signed with (by KEYHASH, or by PUBKEY for the full-key vector). */
static void test_identity_of_vectors(void **state)
{
    static const struct {
        const char *name;
        const tu_buf_t *key;
        bool counter;
        uint32_t value;
    } vectors[] = {
        {ECDSA_IMG,   &ecdsa_pub,   true,  7},
        {FULLKEY_IMG, &ecdsa_pub,   false, 0},
        {ED25519_IMG, &ed25519_pub, false, 0},
    };
    uint8_t scratch[4096], digest[RP_SHA256_LEN], key_hash[RP_SHA256_LEN];

    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        tu_buf_t img = tu_load(RP_VECTORS_DIR, vectors[i].name);
        rp_image_identity_t id;
        rp_image_info_t info;
        tu_mem_io_t m;

        assert_int_equal(identity_of(img.data, img.len, &id), RP_OK);
        assert_int_equal(id.has_security_counter, vectors[i].counter);
        assert_int_equal(id.security_counter, vectors[i].value);
        assert_int_equal(id.type, RP_IMAGE_TYPE_NONE);
        assert_true(id.has_digest && id.has_signer);
        tu_mem_io_init(&m, img.data, img.len);
        assert_int_equal(rp_image_hash(&m.io, &id.layout, scratch, sizeof(scratch), digest), RP_OK);
        assert_memory_equal(id.digest, digest, RP_SHA256_LEN);
        assert_int_equal(rp_sha256(vectors[i].key->data, vectors[i].key->len, key_hash), RP_OK);
        assert_memory_equal(id.signer, key_hash, RP_SHA256_LEN);
        if (HAVE_ED25519 || vectors[i].key != &ed25519_pub) {
            assert_int_equal(tu_verify(img.data, img.len, vectors[i].key, 1, &info), RP_OK);
            assert_memory_equal(&id.layout, &info.layout, sizeof(info.layout));
            assert_int_equal(id.has_security_counter, info.has_security_counter);
            assert_int_equal(id.security_counter, info.security_counter);
            assert_int_equal(id.type, info.type);
            assert_memory_equal(id.digest, info.digest, RP_SHA256_LEN);
        }
        /* Cut anywhere, it is not an image; nothing is released. */
        for (size_t len = 0; len < img.len; len++) {
            assert_int_not_equal(identity_of(img.data, len, &id), RP_OK);
            assert_int_equal(id.layout.total_size, 0);
        }
        tu_free(&img);
    }
}

/* The protected area: the counter and the type are read from it, by verification's rules. */
static void test_identity_protected_facts(void **state)
{
    static const uint8_t cnt[4] = {0x40, 0, 0, 0}, big[4] = {0xff, 0xff, 0xff, 0xff};
    static const uint8_t app = RP_IMAGE_TYPE_APP, bad = 9, hash[RP_SHA256_LEN] = {0};
    const tu_tlv_t typed[] = {
        {RP_TLV_IMAGE_TYPE, 1, &app},
        {0x52b0,            3, cnt }, /* signed data the core does not interpret */
        {RP_TLV_SEC_CNT,    4, big }
    };
    const tu_tlv_t two_counters[] = {
        {RP_TLV_SEC_CNT, 4, cnt},
        {RP_TLV_SEC_CNT, 4, cnt}
    };
    const tu_tlv_t short_counter[] = {
        {RP_TLV_SEC_CNT, 3, cnt}
    };
    const tu_tlv_t bad_type[] = {
        {RP_TLV_IMAGE_TYPE, 1, &bad}
    };
    const tu_tlv_t signing_inside[] = {
        {RP_TLV_KEYHASH, RP_SHA256_LEN, hash}
    };
    const struct {
        const tu_tlv_t *tlvs;
        size_t n;
    } refused[] = {
        {two_counters,   2},
        {short_counter,  1},
        {bad_type,       1},
        {signing_inside, 1},
    };
    rp_image_identity_t id;
    tu_buf_t img;

    (void)state;
    img = build_with_protected(typed, 3);
    assert_int_equal(identity_of(img.data, img.len, &id), RP_OK);
    assert_int_equal(id.type, RP_IMAGE_TYPE_APP);
    assert_true(id.has_security_counter);
    assert_int_equal(id.security_counter, UINT32_MAX);
    tu_free(&img);
    /* No counter is "none", not 0. */
    img = build_with_protected(NULL, 0);
    assert_int_equal(identity_of(img.data, img.len, &id), RP_OK);
    assert_false(id.has_security_counter);
    assert_int_equal(id.type, RP_IMAGE_TYPE_NONE);
    tu_free(&img);
    /* What verification refuses as malformed, the identity refuses too. */
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        img = build_with_protected(refused[i].tlvs, refused[i].n);
        assert_int_equal(with_protected(refused[i].tlvs, refused[i].n), RP_ERR_BAD_TLV);
        assert_int_equal(identity_of(img.data, img.len, &id), RP_ERR_BAD_TLV);
        assert_false(id.has_security_counter);
        tu_free(&img);
    }
}

/* The unprotected area: the digest and the key; a counter or a type there counts for nothing. */
static void test_identity_unprotected_facts(void **state)
{
    static const uint8_t counter[4] = {0xff, 0xff, 0xff, 0x7f}, app = RP_IMAGE_TYPE_APP;
    static const uint8_t other_key[RP_SHA256_LEN] = {9};
    tu_buf_t img = tu_load(RP_VECTORS_DIR, ED25519_IMG), out;
    rp_image_identity_t id, plain;
    tu_image_t parts;
    int k;

    (void)state;
    assert_int_equal(identity_of(img.data, img.len, &plain), RP_OK);
    assert_false(plain.has_security_counter);
    /* A counter and a type added after signing (CVE-2024-32883): not the image's. */
    tu_split(img.data, img.len, &parts);
    parts.tlvs[parts.ntlvs++] = (tu_tlv_t){RP_TLV_SEC_CNT, 4, counter};
    parts.tlvs[parts.ntlvs++] = (tu_tlv_t){RP_TLV_IMAGE_TYPE, 1, &app};
    /* A second key TLV names the key of a second signature: the signer stays the first. */
    parts.tlvs[parts.ntlvs++] = (tu_tlv_t){RP_TLV_KEYHASH, RP_SHA256_LEN, other_key};
    out = tu_join(&parts);
    assert_int_equal(identity_of(out.data, out.len, &id), RP_OK);
    assert_false(id.has_security_counter);
    assert_int_equal(id.type, RP_IMAGE_TYPE_NONE);
    assert_memory_equal(id.signer, plain.signer, RP_SHA256_LEN);
    assert_memory_equal(id.digest, plain.digest, RP_SHA256_LEN);
    tu_free(&out);
    tu_image_free(&parts);
    /* Two digests, a digest or a key hash of the wrong length: malformed. */
    tu_split(img.data, img.len, &parts);
    parts.tlvs[parts.ntlvs++] = parts.tlvs[tu_find_tlv(&parts, RP_TLV_SHA256)];
    out = tu_join(&parts);
    assert_int_equal(identity_of(out.data, out.len, &id), RP_ERR_BAD_TLV);
    tu_free(&out);
    tu_image_free(&parts);
    tu_split(img.data, img.len, &parts);
    k = tu_find_tlv(&parts, RP_TLV_SHA256);
    parts.tlvs[k].len = RP_SHA256_LEN - 1;
    out = tu_join(&parts);
    assert_int_equal(identity_of(out.data, out.len, &id), RP_ERR_BAD_TLV);
    tu_free(&out);
    tu_image_free(&parts);
    tu_split(img.data, img.len, &parts);
    parts.tlvs[parts.ntlvs++] = (tu_tlv_t){RP_TLV_KEYHASH, RP_SHA256_LEN - 1, other_key};
    out = tu_join(&parts);
    assert_int_equal(identity_of(out.data, out.len, &id), RP_ERR_BAD_TLV);
    tu_free(&out);
    tu_image_free(&parts);
    /* Without a digest or a key TLV, the identity says so. */
    tu_split(img.data, img.len, &parts);
    drop(&parts, RP_TLV_SHA256);
    drop(&parts, RP_TLV_KEYHASH);
    out = tu_join(&parts);
    assert_int_equal(identity_of(out.data, out.len, &id), RP_OK);
    assert_false(id.has_digest);
    assert_false(id.has_signer);
    tu_free(&out);
    tu_image_free(&parts);
    assert_int_equal(rp_image_identity_read(NULL, &id), RP_ERR_INVALID_ARG);
    tu_free(&img);
}

/* A source that lies: different bytes for small reads (the header, TLV headers, counters) than
 * for the large ones the hash is fed from. */
struct lying_io {
    const uint8_t *data;
    size_t size;
    int second_fetch; /* lie on the second fetch of a byte instead of on small reads */
    uint8_t *seen;
};

static int lying_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct lying_io *l = ctx;
    uint8_t *out = buf;

    memcpy(buf, l->data + off, len);
    for (size_t i = 0; i < len; i++) {
        bool lie = l->second_fetch ? l->seen[off + i]++ > 0 : len < 64;
        if (lie)
            out[i] ^= 0x5a;
    }
    return 0;
}

static void test_a_lying_source_cannot_pass(void **state)
{
    static const char *const names[] = {ECDSA_IMG, FULLKEY_IMG};
    rp_image_key_t key = {ecdsa_pub.data, ecdsa_pub.len};
    uint8_t scratch[RP_IMAGE_SCRATCH_MIN];
    rp_image_info_t info;

    (void)state;
    for (size_t n = 0; n < 2; n++) {
        tu_buf_t img = tu_load(RP_VECTORS_DIR, names[n]);
        struct lying_io l = {img.data, img.len, 0, calloc(img.len, 1)};
        rp_image_io_t io = {lying_read, &l, NULL, img.len};

        assert_non_null(l.seen);
        /* Lying on small reads only: whatever it says, it must not pass. */
        assert_int_not_equal(rp_image_verify(&io, &key, 1, scratch, sizeof(scratch), &info), RP_OK);
        /* Lying on any second look: there is none, so the honest verdict stands. */
        l.second_fetch = 1;
        assert_int_equal(rp_image_verify(&io, &key, 1, scratch, sizeof(scratch), &info), RP_OK);
        free(l.seen);
        tu_free(&img);
    }
}

static const uint8_t junk_ed25519_sig[RP_ED25519_SIG_LEN] = {1};
static void add_trusted_ed25519_sig(tu_image_t *p)
{
    p->tlvs[p->ntlvs++] = p->tlvs[tu_find_tlv(p, RP_TLV_KEYHASH)];
    p->tlvs[p->ntlvs++] = (tu_tlv_t){RP_TLV_ED25519, RP_ED25519_SIG_LEN, junk_ed25519_sig};
}

static void untrusted_keyhash_between(tu_image_t *p)
{
    int s = tu_find_tlv(p, RP_TLV_ECDSA_SIG);
    tu_tlv_t sig = p->tlvs[s];

    p->tlvs[s] = (tu_tlv_t){RP_TLV_KEYHASH, RP_SHA256_LEN, other_keyhash};
    p->tlvs[p->ntlvs++] = sig;
}

static uint8_t padded[RP_ECDSA_P256_SIG_MAX];
static uint8_t pad_value;
static void pad_signature(tu_image_t *p)
{
    int s = tu_find_tlv(p, RP_TLV_ECDSA_SIG);

    memset(padded, pad_value, sizeof(padded));
    memcpy(padded, p->tlvs[s].value, p->tlvs[s].len);
    p->tlvs[s].value = padded;
    p->tlvs[s].len = sizeof(padded);
}

static void test_key_naming_rules(void **state)
{
    (void)state;
    /* A trusted key named, then a signature of the other type: that key's signature fails. */
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, add_trusted_ed25519_sig),
                     HAVE_ED25519 ? RP_ERR_BAD_SIGNATURE : RP_ERR_UNSUPPORTED);
    /* The last key TLV before a signature is the one it names. */
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, untrusted_keyhash_between), RP_ERR_WRONG_KEY);
}

static void test_padded_ecdsa_signature(void **state)
{
    (void)state;
    /* imgtool --pad-sig: zeros after the DER signature, up to 72 bytes. */
    pad_value = 0;
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, pad_signature), RP_OK);
    pad_value = 1;
    assert_int_equal(edited(ECDSA_IMG, &ecdsa_pub, pad_signature), RP_ERR_BAD_SIGNATURE);
}

static void test_version_parse(void **state)
{
    static const struct {
        const char *s;
        rp_err_t err;
        uint8_t major, minor;
        uint16_t rev;
        uint32_t build;
    } cases[] = {
        {"1.2.3+4",                  RP_OK,              1,   2,   3,     4          },
        {"1.2.3",                    RP_OK,              1,   2,   3,     0          },
        {"1.2",                      RP_OK,              1,   2,   0,     0          },
        {"7",                        RP_OK,              7,   0,   0,     0          },
        {"0.0.0+0",                  RP_OK,              0,   0,   0,     0          },
        {"255.255.65535+4294967295", RP_OK,              255, 255, 65535, 4294967295u},
        {"1+5",                      RP_OK,              1,   0,   0,     5          },
        {"256.0.0",                  RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"1.256",                    RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"1.2.65536",                RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"1.2.3+4294967296",         RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"1.2.3.4",                  RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"",                         RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"v1.2",                     RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"1.",                       RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"1..2",                     RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"1.2+",                     RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"1.2 ",                     RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"-1",                       RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"1.2.3+4+5",                RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
        {"99999999999999999999",     RP_ERR_BAD_VERSION, 0,   0,   0,     0          },
    };
    char out[RP_IMAGE_VERSION_STR_MAX];
    rp_image_version_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rp_err_t err = rp_image_version_parse(cases[i].s, strlen(cases[i].s), &v);
        if (err != cases[i].err)
            fail_msg("'%s': got %s", cases[i].s, rp_strerror(err));
        if (err != RP_OK)
            continue;
        assert_int_equal(v.major, cases[i].major);
        assert_int_equal(v.minor, cases[i].minor);
        assert_int_equal(v.revision, cases[i].rev);
        assert_int_equal(v.build, cases[i].build);
    }
    v = (rp_image_version_t){255, 255, 65535, 4294967295u};
    assert_int_equal(rp_image_version_format(&v, out, sizeof(out)), RP_OK);
    assert_string_equal(out, "255.255.65535+4294967295");
    assert_int_equal(rp_image_version_format(&v, out, sizeof(out) - 1), RP_ERR_BUFFER_TOO_SMALL);
    assert_string_equal(out, "");
    /* Only the first len bytes are read. */
    assert_int_equal(rp_image_version_parse("1.2.3+4junk", 7, &v), RP_OK);
    assert_int_equal(v.build, 4);
}

static void test_version_cmp(void **state)
{
    rp_image_version_t a = {1, 2, 3, 4}, b = {1, 2, 3, 5}, c = {1, 10, 0, 0};

    (void)state;
    assert_true(rp_image_version_cmp(&a, &b) < 0);
    assert_true(rp_image_version_cmp(&b, &a) > 0);
    assert_true(rp_image_version_cmp(&a, &a) == 0);
    assert_true(rp_image_version_cmp(&b, &c) < 0);
}

static void test_header_codec(void **state)
{
    rp_image_header_t h = {
        RP_IMAGE_MAGIC, 0x08001000, 0x200, 12, 4096, RP_IMAGE_F_RAM_LOAD, {1, 2, 3, 4}
    };
    rp_image_header_t back;
    uint8_t raw[RP_IMAGE_HEADER_SIZE];
    tu_buf_t img = tu_load(RP_VECTORS_DIR, ECDSA_IMG);

    (void)state;
    rp_image_header_encode(&h, raw);
    assert_int_equal(rp_image_header_decode(raw, &back), RP_OK);
    assert_memory_equal(&h, &back, sizeof(h));
    /* The same layout as imgtool's header, byte for byte (load address aside). */
    h.load_addr = 0;
    h.flags = 0;
    h.version.build = 4;
    rp_image_header_encode(&h, raw);
    assert_memory_equal(raw, img.data, RP_IMAGE_HEADER_SIZE);
    tu_free(&img);
}

static void test_tlv_writer_bounds(void **state)
{
    uint8_t buf[16], v[8] = {0};
    rp_tlv_writer_t w;
    size_t len;

    (void)state;
    rp_tlv_writer_init(&w, buf, sizeof(buf), RP_IMAGE_TLV_INFO_MAGIC);
    assert_int_equal(rp_tlv_writer_add(&w, RP_TLV_SEC_CNT, v, 4), RP_OK);
    assert_int_equal(rp_tlv_writer_add(&w, RP_TLV_SEC_CNT, v, 4), RP_ERR_BUFFER_TOO_SMALL);
    /* A failed writer stays failed. */
    assert_int_equal(rp_tlv_writer_add(&w, RP_TLV_SEC_CNT, v, 0), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_tlv_writer_finish(&w, &len), RP_ERR_INVALID_ARG);

    rp_tlv_writer_init(&w, buf, sizeof(buf), RP_IMAGE_TLV_PROT_INFO_MAGIC);
    assert_int_equal(rp_tlv_writer_add(&w, RP_TLV_SEC_CNT, v, 4), RP_OK);
    assert_int_equal(rp_tlv_writer_finish(&w, &len), RP_OK);
    assert_int_equal(len, 12);
    assert_int_equal(buf[0], 0x08);
    assert_int_equal(buf[1], 0x69);
    assert_int_equal(buf[2], 12);
}

static void test_strerror_names_every_code(void **state)
{
    (void)state;
    for (int e = 0; e < RP_ERR_COUNT; e++) {
        assert_non_null(rp_strerror((rp_err_t)e));
        assert_string_not_equal(rp_strerror((rp_err_t)e), "unknown error");
        for (int f = 0; f < e; f++)
            assert_string_not_equal(rp_strerror((rp_err_t)e), rp_strerror((rp_err_t)f));
    }
    assert_string_equal(rp_strerror((rp_err_t)RP_ERR_COUNT), "unknown error");
    assert_string_equal(rp_strerror((rp_err_t)-1), "unknown error");
}

static void test_crypto_port(void **state)
{
    /* FIPS 180-2 "abc". */
    static const uint8_t abc[RP_SHA256_LEN] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                               0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                               0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                               0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    uint8_t d[RP_SHA256_LEN], junk[8] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
    rp_sig_alg_t alg;

    (void)state;
    assert_int_equal(rp_sha256("abc", 3, d), RP_OK);
    assert_memory_equal(d, abc, RP_SHA256_LEN);
    assert_int_equal(rp_pubkey_alg(ecdsa_pub.data, ecdsa_pub.len, &alg), RP_OK);
    assert_int_equal(alg, RP_SIG_ECDSA_P256);
    assert_int_equal(rp_pubkey_alg(ed25519_pub.data, ed25519_pub.len, &alg),
                     HAVE_ED25519 ? RP_OK : RP_ERR_UNSUPPORTED);
    assert_int_equal(rp_pubkey_alg(ecdsa_pub.data, ecdsa_pub.len - 1, &alg), RP_ERR_BAD_KEY);
    assert_int_equal(rp_pubkey_alg(junk, sizeof(junk), &alg), RP_ERR_BAD_KEY);
    /* A well-formed signature that is simply wrong, and a key of the other type. */
    assert_int_equal(
        rp_sig_verify(RP_SIG_ECDSA_P256, ecdsa_pub.data, ecdsa_pub.len, d, junk, sizeof(junk)),
        RP_ERR_BAD_SIGNATURE);
    assert_int_equal(
        rp_sig_verify(RP_SIG_ECDSA_P256, ed25519_pub.data, ed25519_pub.len, d, junk, sizeof(junk)),
        RP_ERR_BAD_KEY);
    assert_int_equal(rp_ct_memcmp(abc, abc, sizeof(abc)), 0);
    assert_int_not_equal(rp_ct_memcmp(abc, d + 1, 4), 0);
}

/* A P-256 key has one encoding (one device ID): its point uncompressed and on the curve. */
static void test_p256_key_one_encoding(void **state)
{
    uint8_t key[128], point[RP_P256_POINT_LEN], d[RP_SHA256_LEN] = {0};
    uint8_t junk[8] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
    size_t at;

    (void)state;
    assert_true(ecdsa_pub.len <= sizeof(key) && ecdsa_pub.len > RP_P256_POINT_LEN);
    at = ecdsa_pub.len - RP_P256_POINT_LEN;
    memcpy(key, ecdsa_pub.data, ecdsa_pub.len);
    assert_int_equal(rp_pubkey_p256_point(key, ecdsa_pub.len, point), RP_OK);
    assert_memory_equal(point, key + at, RP_P256_POINT_LEN);
    assert_int_equal(point[0], 0x04);
    /* The same key as a hybrid point (0x06 or 0x07 by y's parity): another encoding, refused. */
    key[at] = (uint8_t)(0x06 | (key[ecdsa_pub.len - 1] & 1));
    assert_int_equal(rp_pubkey_p256_point(key, ecdsa_pub.len, point), RP_ERR_BAD_KEY);
    /* A point off the curve is no key: refused as such, not as a wrong signature. */
    memcpy(key, ecdsa_pub.data, ecdsa_pub.len);
    key[ecdsa_pub.len - 1] ^= 1;
    assert_int_equal(rp_sig_verify(RP_SIG_ECDSA_P256, key, ecdsa_pub.len, d, junk, sizeof(junk)),
                     RP_ERR_BAD_KEY);
    /* And the key itself, again (the parsed parameters are reused across keys). */
    assert_int_equal(
        rp_sig_verify(RP_SIG_ECDSA_P256, ecdsa_pub.data, ecdsa_pub.len, d, junk, sizeof(junk)),
        RP_ERR_BAD_SIGNATURE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecdsa_vector_verifies),
        cmocka_unit_test(test_fullkey_vector_verifies),
        cmocka_unit_test(test_ed25519_vector),
        cmocka_unit_test(test_vectors_refuse_the_other_key),
        cmocka_unit_test(test_digest_is_sha256_of_signed_region),
        cmocka_unit_test(test_any_trusted_key_may_sign),
        cmocka_unit_test(test_every_byte_change_refused_ecdsa),
        cmocka_unit_test(test_every_byte_change_refused_ed25519),
        cmocka_unit_test(test_truncation_at_every_length),
        cmocka_unit_test(test_trailing_bytes_are_outside_the_image),
        cmocka_unit_test(test_read_failure_is_io_error),
        cmocka_unit_test(test_small_scratch_verifies),
        cmocka_unit_test(test_forbidden_unprotected_tlvs),
        cmocka_unit_test(test_unprotected_area_edits),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_malformed_tlv_areas),
        cmocka_unit_test(test_leftover_bytes_in_an_area),
        cmocka_unit_test(test_protected_area_rules),
        cmocka_unit_test(test_identity_of_vectors),
        cmocka_unit_test(test_identity_protected_facts),
        cmocka_unit_test(test_identity_unprotected_facts),
        cmocka_unit_test(test_a_lying_source_cannot_pass),
        cmocka_unit_test(test_key_naming_rules),
        cmocka_unit_test(test_padded_ecdsa_signature),
        cmocka_unit_test(test_version_parse),
        cmocka_unit_test(test_version_cmp),
        cmocka_unit_test(test_header_codec),
        cmocka_unit_test(test_tlv_writer_bounds),
        cmocka_unit_test(test_strerror_names_every_code),
        cmocka_unit_test(test_crypto_port),
        cmocka_unit_test(test_p256_key_one_encoding),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
