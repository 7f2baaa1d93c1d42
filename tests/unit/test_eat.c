/*
 * Attestation evidence in the core, run once per crypto backend: a COSE_Sign1 EAT made by
 * third-party code (python3-cbor2 + python3-cryptography) verifies and decodes; every byte changed
 * and every truncation is refused; the claims decoder is strict about what it knows and skips what
 * it does not; the CBOR reader refuses what it must.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/cbor.h"
#include "rampart/eat.h"
#include "testutil.h"

#define EAT_DIR RP_VECTORS_DIR "/../eat"

static tu_buf_t token, key;

static int setup(void **state)
{
    (void)state;
    token = tu_load(EAT_DIR, "evidence.cbor");
    key = tu_load(EAT_DIR, "evidence-key.der");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_free(&token);
    tu_free(&key);
    return 0;
}

static void test_third_party_token_verifies(void **state)
{
    static const uint8_t aa[32] = {[0 ... 31] = 0xaa}, dd[32] = {[0 ... 31] = 0xdd},
                         ee[32] = {[0 ... 31] = 0xee};
    tu_buf_t id_hex = tu_load(EAT_DIR, "evidence-device-id.txt");
    uint8_t expect_id[RP_SHA256_LEN];
    rp_eat_claims_t c;

    (void)state;
    assert_int_equal(rp_sha256(key.data, key.len, expect_id), RP_OK);
    assert_int_equal(rp_eat_verify(token.data, token.len, key.data, key.len, &c), RP_OK);
    assert_int_equal(c.nonce_len, 32);
    for (int i = 0; i < 32; i++)
        assert_int_equal(c.nonce[i], i);
    assert_memory_equal(c.device_id, expect_id, RP_SHA256_LEN);
    assert_int_equal(c.debug, RP_EAT_DEBUG_DISABLED_SINCE_BOOT);
    assert_int_equal(c.boot_count, 5);
    assert_true(c.has_iat);
    assert_int_equal(c.iat, 1764000000);
    assert_true(c.has_register);
    assert_memory_equal(c.measurement_register, ee, 32);
    assert_int_equal(c.ncomponents, 2);
    assert_string_equal(c.components[0].name, "bootloader");
    assert_string_equal(c.components[0].version, "1.0.0+0");
    assert_memory_equal(c.components[0].digest, aa, 32);
    assert_false(c.components[0].has_security_counter);
    assert_string_equal(c.components[1].name, "app.sensor");
    assert_string_equal(c.components[1].version, "1.2.3+4");
    assert_memory_equal(c.components[1].signer, dd, 32);
    assert_true(c.components[1].has_security_counter);
    assert_int_equal(c.components[1].security_counter, 7);
    tu_free(&id_hex);
}

static void test_every_byte_change_refused(void **state)
{
    rp_eat_claims_t c;

    (void)state;
    for (size_t i = 0; i < token.len; i++) {
        for (int f = 0; f < 2; f++) {
            uint8_t flip = f == 0 ? 0x01 : 0x80;
            rp_err_t err;
            token.data[i] ^= flip;
            err = rp_eat_verify(token.data, token.len, key.data, key.len, &c);
            token.data[i] ^= flip;
            if (err == RP_OK)
                fail_msg("byte %zu ^ 0x%02x accepted", i, flip);
            assert_int_equal(c.nonce_len, 0); /* nothing released */
        }
    }
}

static void test_truncation_and_trailing_bytes_refused(void **state)
{
    uint8_t *copy = malloc(token.len + 1);
    rp_eat_claims_t c;

    (void)state;
    assert_non_null(copy);
    for (size_t len = 0; len < token.len; len++) {
        memcpy(copy, token.data, len);
        assert_int_not_equal(rp_eat_verify(copy, len, key.data, key.len, &c), RP_OK);
    }
    memcpy(copy, token.data, token.len);
    copy[token.len] = 0;
    assert_int_equal(rp_eat_verify(copy, token.len + 1, key.data, key.len, &c), RP_ERR_MALFORMED);
    /* Untagged COSE_Sign1 is the same message. */
    assert_int_equal(token.data[0], 0xd2);
    assert_int_equal(rp_eat_verify(token.data + 1, token.len - 1, key.data, key.len, &c), RP_OK);
    free(copy);
}

static void test_wrong_key_refused(void **state)
{
    tu_buf_t other = tu_load(RP_VECTORS_DIR, "ecdsa-p256-pub.der");
    tu_buf_t ed = tu_load(RP_VECTORS_DIR, "ed25519-pub.der");
    rp_eat_claims_t c;

    (void)state;
    assert_int_equal(rp_eat_verify(token.data, token.len, other.data, other.len, &c),
                     RP_ERR_BAD_SIGNATURE);
    assert_int_not_equal(rp_eat_verify(token.data, token.len, ed.data, ed.len, &c), RP_OK);
    tu_free(&other);
    tu_free(&ed);
}

static rp_eat_claims_t sample_claims(void)
{
    rp_eat_claims_t c;

    memset(&c, 0, sizeof(c));
    c.nonce_len = 16;
    memset(c.nonce, 0x11, 16);
    memset(c.device_id, 0x22, 32);
    c.debug = RP_EAT_DEBUG_DISABLED;
    c.boot_count = 1234567890123ULL;
    c.ncomponents = 1;
    strcpy(c.components[0].name, "system");
    strcpy(c.components[0].version, "255.255.65535+4294967295");
    memset(c.components[0].digest, 0x33, 32);
    memset(c.components[0].signer, 0x44, 32);
    c.components[0].has_security_counter = true;
    c.components[0].security_counter = UINT32_MAX;
    return c;
}

static void test_claims_round_trip(void **state)
{
    rp_eat_claims_t c = sample_claims(), back;
    uint8_t buf[RP_EAT_MAX_SIZE];
    size_t len;

    (void)state;
    c.has_iat = true;
    c.iat = -5;
    c.has_register = true;
    memset(c.measurement_register, 0x55, 32);
    c.development = true;
    c.development_expires = 1800000000;
    assert_int_equal(rp_eat_encode_claims(&c, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_eat_decode_claims(buf, len, &back), RP_OK);
    assert_memory_equal(&c, &back, sizeof(c));
    /* Every output size that is too small is refused, never overrun. */
    for (size_t cap = 0; cap < len; cap++)
        assert_int_equal(rp_eat_encode_claims(&c, buf, cap, &len), RP_ERR_BUFFER_TOO_SMALL);
    /* Bad input is refused before anything is written. */
    c.nonce_len = 7;
    assert_int_equal(rp_eat_encode_claims(&c, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
    c = sample_claims();
    strcpy(c.components[0].name, "bad name");
    assert_int_equal(rp_eat_encode_claims(&c, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
    c = sample_claims();
    strcpy(c.components[0].version, "1.x");
    assert_int_equal(rp_eat_encode_claims(&c, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
}

/* The one component-name rule: what the service accepts at upload, the device names its slots
 * by and the evidence carries. */
static void test_component_names(void **state)
{
    static const char *const good[] = {"a",       "app", "app.sensor",
                                       "A-Z_0.9", "x.",  "abcdefghijklmnopqrstuvwxyz012345"};
    static const char *const bad[] = {
        "",  ".",     "..",   ".hidden", "a/b",       "a b",
        "é", "app\n", "a\\b", "a:b",     "tab\there", "abcdefghijklmnopqrstuvwxyz0123456"};
    uint8_t buf[RP_EAT_MAX_SIZE];
    rp_eat_claims_t c, back;
    size_t len;

    (void)state;
    _Static_assert(RP_EAT_NAME_MAX == RP_COMPONENT_NAME_MAX, "the evidence carries every name");
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(rp_component_name_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(rp_component_name_valid(bad[i], strlen(bad[i])));
    /* The length given is the name: a NUL inside it, or a shorter length, is judged as given. */
    assert_false(rp_component_name_valid("app\0x", 5));
    assert_true(rp_component_name_valid("app/x", 3));
    assert_false(rp_component_name_valid(NULL, 3));
    /* Evidence holds to the same rule: a name with a leading dot is neither made nor read. */
    c = sample_claims();
    strcpy(c.components[0].name, ".hidden");
    assert_int_equal(rp_eat_encode_claims(&c, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
    strcpy(c.components[0].name, "Xhidden");
    assert_int_equal(rp_eat_encode_claims(&c, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_eat_decode_claims(buf, len, &back), RP_OK);
    for (size_t i = 0; i + 7 <= len; i++)
        if (memcmp(buf + i, "Xhidden", 7) == 0)
            buf[i] = '.';
    assert_int_equal(rp_eat_decode_claims(buf, len, &back), RP_ERR_MALFORMED);
}

/* Decode a claims map written by fn. */
static rp_err_t decode_written(void (*fn)(rp_cbor_writer_t *))
{
    uint8_t buf[1024];
    rp_cbor_writer_t w;
    rp_eat_claims_t c;
    size_t len;

    rp_cbor_writer_init(&w, buf, sizeof(buf));
    fn(&w);
    assert_int_equal(rp_cbor_writer_finish(&w, &len), RP_OK);
    return rp_eat_decode_claims(buf, len, &c);
}

static const uint8_t nonce[16], ueid[33] = {1};

static void required_with(rp_cbor_writer_t *w, int extra, const char *profile)
{
    rp_cbor_put_map(w, (size_t)(5 + extra));
    rp_cbor_put_uint(w, 10);
    rp_cbor_put_bstr(w, nonce, sizeof(nonce));
    rp_cbor_put_uint(w, 256);
    rp_cbor_put_bstr(w, ueid, sizeof(ueid));
    rp_cbor_put_uint(w, 263);
    rp_cbor_put_uint(w, 1);
    rp_cbor_put_uint(w, 265);
    rp_cbor_put_tstr(w, profile, strlen(profile));
    rp_cbor_put_uint(w, 267);
    rp_cbor_put_uint(w, 0);
}

static void required(rp_cbor_writer_t *w, int extra)
{
    required_with(w, extra, RP_EAT_PROFILE);
}

static void w_minimal(rp_cbor_writer_t *w)
{
    required(w, 0);
}
static void w_missing(rp_cbor_writer_t *w)
{
    required(w, 0);
    w->buf[0] = 0xa4; /* claim only four entries: the bootcount pair is then trailing junk */
}
static void w_duplicate(rp_cbor_writer_t *w)
{
    required(w, 1);
    rp_cbor_put_uint(w, 267);
    rp_cbor_put_uint(w, 1);
}
static void w_unknown(rp_cbor_writer_t *w)
{
    required(w, 3);
    rp_cbor_put_uint(w, 4242);
    rp_cbor_put_map(w, 1);
    rp_cbor_put_uint(w, 1);
    rp_cbor_put_array(w, 2);
    rp_cbor_put_bstr(w, "x", 1);
    rp_cbor_put_int(w, -3);
    rp_cbor_put_tstr(w, "text-key", 8);
    rp_cbor_put_uint(w, 5);
    rp_cbor_put_int(w, -99999999);
    rp_cbor_put_tag(w, 1);
    rp_cbor_put_uint(w, 0);
}
static void w_other_profile(rp_cbor_writer_t *w)
{
    required_with(w, 0, "tag:example.com,2026:other");
}
static void w_wrong_type(rp_cbor_writer_t *w)
{
    required(w, 1);
    rp_cbor_put_int(w, RP_EAT_CLAIM_REGISTER);
    rp_cbor_put_tstr(w, "not bytes", 9);
}
static void w_too_many_components(rp_cbor_writer_t *w)
{
    required(w, 1);
    rp_cbor_put_int(w, RP_EAT_CLAIM_COMPONENTS);
    rp_cbor_put_array(w, RP_EAT_MAX_COMPONENTS + 1);
}
static void w_development_twice(rp_cbor_writer_t *w)
{
    required(w, 2);
    rp_cbor_put_int(w, RP_EAT_CLAIM_DEVELOPMENT);
    rp_cbor_put_uint(w, 1);
    rp_cbor_put_int(w, RP_EAT_CLAIM_DEVELOPMENT);
    rp_cbor_put_uint(w, 2);
}
static void w_development_negative(rp_cbor_writer_t *w)
{
    required(w, 1);
    rp_cbor_put_int(w, RP_EAT_CLAIM_DEVELOPMENT);
    rp_cbor_put_int(w, -1);
}
static void w_bad_dbgstat(rp_cbor_writer_t *w)
{
    rp_cbor_put_map(w, 5);
    rp_cbor_put_uint(w, 263);
    rp_cbor_put_uint(w, 5);
}
static void w_float(rp_cbor_writer_t *w)
{
    static const uint8_t half[] = {0xf9, 0x3c, 0x00};
    required(w, 1);
    rp_cbor_put_uint(w, 77);
    rp_cbor_put_raw(w, half, sizeof(half));
}
static void w_indefinite(rp_cbor_writer_t *w)
{
    static const uint8_t indef[] = {0x9f, 0x01, 0xff};
    required(w, 1);
    rp_cbor_put_uint(w, 78);
    rp_cbor_put_raw(w, indef, sizeof(indef));
}
static void w_deep(rp_cbor_writer_t *w)
{
    required(w, 1);
    rp_cbor_put_uint(w, 79);
    for (int i = 0; i < 40; i++)
        rp_cbor_put_array(w, 1);
    rp_cbor_put_uint(w, 0);
}
static void w_huge_count(rp_cbor_writer_t *w)
{
    required(w, 1);
    rp_cbor_put_uint(w, 80);
    rp_cbor_put_map(w, (size_t)1 << 40);
}

static void test_claims_decoder_is_strict(void **state)
{
    (void)state;
    assert_int_equal(decode_written(w_minimal), RP_OK);
    assert_int_equal(decode_written(w_missing), RP_ERR_MALFORMED);
    assert_int_equal(decode_written(w_duplicate), RP_ERR_MALFORMED);
    assert_int_equal(decode_written(w_development_twice), RP_ERR_MALFORMED);
    assert_int_equal(decode_written(w_development_negative), RP_ERR_MALFORMED);
    assert_int_equal(decode_written(w_unknown), RP_OK);
    assert_int_equal(decode_written(w_other_profile), RP_ERR_UNSUPPORTED);
    assert_int_equal(decode_written(w_wrong_type), RP_ERR_MALFORMED);
    assert_int_equal(decode_written(w_too_many_components), RP_ERR_MALFORMED);
    assert_int_equal(decode_written(w_bad_dbgstat), RP_ERR_MALFORMED);
    assert_int_equal(decode_written(w_float), RP_ERR_MALFORMED);
    assert_int_equal(decode_written(w_indefinite), RP_ERR_MALFORMED);
    assert_int_equal(decode_written(w_deep), RP_ERR_MALFORMED);
    assert_int_equal(decode_written(w_huge_count), RP_ERR_MALFORMED);
}

/* A COSE_Sign1 around the third-party payload with its protected header replaced. */
static rp_err_t with_protected(const uint8_t *prot, size_t prot_len)
{
    const uint8_t *payload;
    size_t payload_len, len;
    uint8_t buf[RP_EAT_MAX_SIZE], sig[64] = {0};
    rp_cbor_reader_t r;
    rp_cbor_item_t it;
    rp_cbor_writer_t w;
    rp_eat_claims_t c;

    /* dig the payload out of the vector: tag, array, protected, unprotected, payload */
    rp_cbor_reader_init(&r, token.data, token.len);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rp_cbor_next(&r, &it), RP_OK);
    assert_int_equal(rp_cbor_get_bstr(&r, &payload, &payload_len), RP_OK);
    rp_cbor_writer_init(&w, buf, sizeof(buf));
    rp_cbor_put_tag(&w, 18);
    rp_cbor_put_array(&w, 4);
    rp_cbor_put_bstr(&w, prot, prot_len);
    rp_cbor_put_map(&w, 0);
    rp_cbor_put_bstr(&w, payload, payload_len);
    rp_cbor_put_bstr(&w, sig, sizeof(sig));
    assert_int_equal(rp_cbor_writer_finish(&w, &len), RP_OK);
    return rp_eat_verify(buf, len, key.data, key.len, &c);
}

static void test_cose_header_rules(void **state)
{
    static const uint8_t es256[] = {0xa1, 0x01, 0x26};
    static const uint8_t es384[] = {0xa1, 0x01, 0x38, 0x22};
    static const uint8_t crit[] = {0xa2, 0x01, 0x26, 0x02, 0x81, 0x01};
    static const uint8_t no_alg[] = {0xa1, 0x04, 0x41, 0x00};
    static const uint8_t two_algs[] = {0xa2, 0x01, 0x26, 0x01, 0x26};
    static const uint8_t kid[] = {0xa2, 0x01, 0x26, 0x04, 0x41, 0x07};

    (void)state;
    /* The signature is zeros: a well-formed header gets as far as the signature check. */
    assert_int_equal(with_protected(es256, sizeof(es256)), RP_ERR_BAD_SIGNATURE);
    assert_int_equal(with_protected(kid, sizeof(kid)), RP_ERR_BAD_SIGNATURE);
    assert_int_equal(with_protected(es384, sizeof(es384)), RP_ERR_UNSUPPORTED);
    assert_int_equal(with_protected(crit, sizeof(crit)), RP_ERR_UNSUPPORTED);
    assert_int_equal(with_protected(no_alg, sizeof(no_alg)), RP_ERR_MALFORMED);
    assert_int_equal(with_protected(two_algs, sizeof(two_algs)), RP_ERR_MALFORMED);
}

static void test_cbor_skip_bounds(void **state)
{
    /* An array claiming more items than there are bytes. */
    static const uint8_t big[] = {0x9b, 0, 0, 0, 1, 0, 0, 0, 0, 0x01};
    static const uint8_t ok[] = {0x82, 0xa1, 0x01, 0x82, 0x01, 0x02, 0xd8, 0x20, 0x61, 0x61};
    rp_cbor_reader_t r;

    (void)state;
    rp_cbor_reader_init(&r, big, sizeof(big));
    assert_int_equal(rp_cbor_skip(&r), RP_ERR_MALFORMED);
    rp_cbor_reader_init(&r, ok, sizeof(ok));
    assert_int_equal(rp_cbor_skip(&r), RP_OK);
    assert_true(rp_cbor_at_end(&r));
}

static void test_cbor_one_byte_tags(void **state)
{
    /* 6 to 20 in their one-byte form, which libcbor 0.8's decoder refuses on its own. */
    static const uint8_t tags[] = {0xc0, 0xc6, 0xd2, 0xd4, 0xd5, 0xd7};
    static const uint64_t want[] = {0, 6, 18, 20, 21, 23};
    rp_cbor_reader_t r;
    rp_cbor_item_t it;

    (void)state;
    rp_cbor_reader_init(&r, tags, sizeof(tags));
    for (size_t i = 0; i < sizeof(tags); i++) {
        assert_int_equal(rp_cbor_next(&r, &it), RP_OK);
        assert_int_equal(it.type, RP_CBOR_TAG);
        assert_int_equal(it.u, want[i]);
    }
    assert_true(rp_cbor_at_end(&r));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_third_party_token_verifies),
        cmocka_unit_test(test_every_byte_change_refused),
        cmocka_unit_test(test_truncation_and_trailing_bytes_refused),
        cmocka_unit_test(test_wrong_key_refused),
        cmocka_unit_test(test_claims_round_trip),
        cmocka_unit_test(test_component_names),
        cmocka_unit_test(test_claims_decoder_is_strict),
        cmocka_unit_test(test_cose_header_rules),
        cmocka_unit_test(test_cbor_skip_bounds),
        cmocka_unit_test(test_cbor_one_byte_tags),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
