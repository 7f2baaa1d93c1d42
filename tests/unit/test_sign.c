/*
 * The host library's tests: signing images as MCUboot's imgtool does (byte for byte where the
 * signature is deterministic), sign->verify round trips for both key types, refusing keys that
 * do not sign, constant-memory verification of a large image, and the file helpers.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rampart/evidence.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/image.h"
#include "rampart/imgsign.h"
#include "rampart/key.h"
#include "testutil.h"

static char tmpdir[] = "/tmp/rampart-test-sign-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp(const char *name)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];

    snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
    return p;
}

static EVP_PKEY *load_key(const char *name)
{
    char path[4096];
    EVP_PKEY *k = NULL;
    bool priv;

    snprintf(path, sizeof(path), "%s/%s", RP_VECTORS_DIR, name);
    assert_int_equal(rp_key_load(path, &k, &priv), RP_OK);
    return k;
}

/* Sign the vector payload with opts into a buffer. */
static tu_buf_t sign_payload(EVP_PKEY *key, const rp_sign_opts_t *so)
{
    char payload[4096];

    snprintf(payload, sizeof(payload), "%s/payload.bin", RP_VECTORS_DIR);
    assert_int_equal(rp_image_sign_file(key, so, payload, tmp("out.bin"), NULL), RP_OK);
    return tu_load(tmpdir, "out.bin");
}

static tu_buf_t spki_of(EVP_PKEY *key)
{
    tu_buf_t b = {malloc(RP_PUBKEY_DER_MAX), 0};

    assert_non_null(b.data);
    assert_int_equal(rp_key_spki(key, b.data, RP_PUBKEY_DER_MAX, &b.len), RP_OK);
    return b;
}

/* Ed25519 signatures are deterministic, so our image must equal imgtool's to the byte. */
static void test_ed25519_identical_to_imgtool(void **state)
{
    EVP_PKEY *key = load_key("ed25519-key.pem");
    tu_buf_t ours, theirs = tu_load(RP_VECTORS_DIR, "ed25519-v0.9.0.bin");
    rp_sign_opts_t so;

    (void)state;
    rp_sign_opts_init(&so);
    so.version = (rp_image_version_t){0, 9, 0, 0};
    ours = sign_payload(key, &so);
    assert_int_equal(ours.len, theirs.len);
    assert_memory_equal(ours.data, theirs.data, theirs.len);
    tu_free(&ours);
    tu_free(&theirs);
    EVP_PKEY_free(key);
}

/* ECDSA signatures are randomised: everything but the signature must equal imgtool's. */
static void check_ecdsa_layout(const char *vector, const rp_sign_opts_t *so)
{
    EVP_PKEY *key = load_key("ecdsa-p256-key.pem");
    tu_buf_t ours = sign_payload(key, so), theirs = tu_load(RP_VECTORS_DIR, vector);
    tu_buf_t pub = spki_of(key);
    tu_image_t a, b;
    int sa, sb;

    tu_split(ours.data, ours.len, &a);
    tu_split(theirs.data, theirs.len, &b);
    assert_int_equal(a.signed_len, b.signed_len);
    assert_memory_equal(a.signed_part, b.signed_part, a.signed_len);
    assert_int_equal(a.ntlvs, b.ntlvs);
    for (size_t i = 0; i < a.ntlvs; i++) {
        assert_int_equal(a.tlvs[i].type, b.tlvs[i].type);
        if (a.tlvs[i].type != RP_TLV_ECDSA_SIG) {
            assert_int_equal(a.tlvs[i].len, b.tlvs[i].len);
            assert_memory_equal(a.tlvs[i].value, b.tlvs[i].value, a.tlvs[i].len);
        }
    }
    sa = tu_find_tlv(&a, RP_TLV_ECDSA_SIG);
    sb = tu_find_tlv(&b, RP_TLV_ECDSA_SIG);
    assert_true(sa >= 0 && sb >= 0);
    /* Both verify with the same key. */
    assert_int_equal(tu_verify(ours.data, ours.len, &pub, 1, NULL), RP_OK);
    assert_int_equal(tu_verify(theirs.data, theirs.len, &pub, 1, NULL), RP_OK);
    tu_image_free(&a);
    tu_image_free(&b);
    tu_free(&ours);
    tu_free(&theirs);
    tu_free(&pub);
    EVP_PKEY_free(key);
}

static void test_ecdsa_layout_identical_to_imgtool(void **state)
{
    rp_sign_opts_t so;

    (void)state;
    rp_sign_opts_init(&so);
    so.version = (rp_image_version_t){1, 2, 3, 4};
    so.has_security_counter = true;
    so.security_counter = 7;
    check_ecdsa_layout("ecdsa-p256-v1.2.3+4-sc7.bin", &so);

    rp_sign_opts_init(&so);
    so.version = (rp_image_version_t){3, 0, 0, 1};
    so.hdr_size = 0x400;
    so.embed_pubkey = true;
    check_ecdsa_layout("ecdsa-p256-fullkey-hdr400-v3.0.0+1.bin", &so);
}

/* The signer writes in 64 KiB pieces aligned to the file (the header area shares the first): an
 * empty payload, and payloads that end just before, at and after a piece's end and span several,
 * come out as the header area, the very payload bytes, then the TLVs, and verify. */
static void test_payload_across_write_pieces(void **state)
{
    static const size_t sizes[] = {0, 65536 - 0x80, 65536 - 0x80 + 1, 3 * 65536 + 100};
    EVP_PKEY *key = NULL;
    rp_image_info_t info;
    rp_sign_opts_t so;
    tu_buf_t pub;

    (void)state;
    assert_int_equal(rp_key_generate(RP_SIG_ED25519, &key), RP_OK);
    pub = spki_of(key);
    rp_sign_opts_init(&so);
    so.hdr_size = 0x80;
    so.pad_byte = 0xa5;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *payload = malloc(sizes[i] + 1);
        tu_buf_t img;

        assert_non_null(payload);
        for (size_t j = 0; j < sizes[i]; j++)
            payload[j] = (uint8_t)(j * 7 + j / 251);
        assert_int_equal(rp_write_file_atomic(tmp("pieces.bin"), payload, sizes[i], 0600, 0),
                         RP_OK);
        assert_int_equal(rp_image_sign_file(key, &so, tmp("pieces.bin"), tmp("pieces.img"), NULL),
                         RP_OK);
        img = tu_load(tmpdir, "pieces.img");
        assert_int_equal(tu_verify(img.data, img.len, &pub, 1, &info), RP_OK);
        assert_int_equal(info.layout.hdr.img_size, sizes[i]);
        for (size_t j = RP_IMAGE_HEADER_SIZE; j < 0x80; j++)
            assert_int_equal(img.data[j], 0xa5);
        assert_memory_equal(img.data + 0x80, payload, sizes[i]);
        tu_free(&img);
        free(payload);
    }
    tu_free(&pub);
    EVP_PKEY_free(key);
}

static void round_trip(rp_sig_alg_t alg)
{
    EVP_PKEY *key = NULL, *other = NULL;
    tu_buf_t img, pub, other_pub;
    rp_image_info_t info;
    rp_sign_opts_t so;

    assert_int_equal(rp_key_generate(alg, &key), RP_OK);
    assert_int_equal(rp_key_generate(alg, &other), RP_OK);
    pub = spki_of(key);
    other_pub = spki_of(other);
    rp_sign_opts_init(&so);
    so.version = (rp_image_version_t){2, 7, 1, 99};
    so.has_security_counter = true;
    so.security_counter = 42;
    so.type = RP_IMAGE_TYPE_APP;
    so.hdr_size = 0x80;
    img = sign_payload(key, &so);

    assert_int_equal(tu_verify(img.data, img.len, &pub, 1, &info), RP_OK);
    assert_int_equal(info.sig_alg, alg);
    assert_int_equal(info.security_counter, 42);
    assert_true(info.has_security_counter);
    assert_int_equal(info.type, RP_IMAGE_TYPE_APP);
    assert_int_equal(info.layout.hdr.hdr_size, 0x80);
    assert_int_equal(info.layout.hdr.version.revision, 1);
    assert_int_equal(info.layout.hdr.version.build, 99);
    assert_int_equal(info.layout.total_size, img.len);
    /* Another key of the same type is not trusted. */
    assert_int_equal(tu_verify(img.data, img.len, &other_pub, 1, NULL), RP_ERR_WRONG_KEY);
    /* Every single-byte change of what is signed is refused. */
    for (size_t i = 0; i < (size_t)info.layout.prot_end; i++) {
        img.data[i] ^= 0x20;
        if (tu_verify(img.data, img.len, &pub, 1, NULL) == RP_OK)
            fail_msg("%s: byte %zu changed and accepted", rp_sig_alg_name(alg), i);
        img.data[i] ^= 0x20;
    }
    tu_free(&img);
    tu_free(&pub);
    tu_free(&other_pub);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void test_round_trip_ecdsa(void **state)
{
    (void)state;
    round_trip(RP_SIG_ECDSA_P256);
}

static void test_round_trip_ed25519(void **state)
{
    (void)state;
    round_trip(RP_SIG_ED25519);
}

static void test_public_key_cannot_sign(void **state)
{
    char path[4096];
    EVP_PKEY *key = NULL;
    rp_sign_opts_t so;
    bool priv = true;
    uint8_t sig[RP_ECDSA_P256_SIG_MAX], d[RP_SHA256_LEN] = {0};
    size_t len;

    (void)state;
    snprintf(path, sizeof(path), "%s/ecdsa-p256-pub.pem", RP_VECTORS_DIR);
    assert_int_equal(rp_key_load(path, &key, &priv), RP_OK);
    assert_false(priv);
    rp_sign_opts_init(&so);
    assert_int_not_equal(rp_key_sign_digest(key, d, sig, sizeof(sig), &len), RP_OK);
    snprintf(path, sizeof(path), "%s/payload.bin", RP_VECTORS_DIR);
    assert_int_not_equal(rp_image_sign_file(key, &so, path, tmp("never.bin"), NULL), RP_OK);
    assert_int_not_equal(access(tmp("never.bin"), F_OK), 0); /* nothing half-written left */
    EVP_PKEY_free(key);
}

/* Only the files a test made itself are in the scratch directory (nothing half-written). */
static void assert_only_files(const char *const *names, size_t n)
{
    char cmd[512], out[1024] = "", want[1024] = "";
    FILE *p;
    size_t len;

    snprintf(cmd, sizeof(cmd), "ls -A '%s' | sort | tr '\\n' ' '", tmpdir);
    p = popen(cmd, "r");
    assert_non_null(p);
    len = fread(out, 1, sizeof(out) - 1, p);
    out[len] = '\0';
    pclose(p);
    for (size_t i = 0; i < n; i++) {
        strcat(want, names[i]);
        strcat(want, " ");
    }
    assert_string_equal(out, want);
}

static void test_failed_sign_leaves_nothing(void **state)
{
    static const char *const none[] = {"payload"};
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *key = NULL;
    rp_atomic_file_t f;
    rp_sign_opts_t so;
    char cmd[256];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'/* && head -c 1000 /dev/zero > '%s/payload'", tmpdir,
             tmpdir);
    assert_int_equal(system(cmd), 0);
    rp_sign_opts_init(&so);
    /* A key that cannot sign images fails after the output was started: nothing is left. */
    assert_int_equal(rp_image_sign_file(rsa, &so, tmp("payload"), tmp("out.bin"), NULL),
                     RP_ERR_UNSUPPORTED);
    assert_only_files(none, 1);
    /* The output may not be the payload. */
    assert_int_equal(rp_key_generate(RP_SIG_ED25519, &key), RP_OK);
    assert_int_equal(rp_image_sign_file(key, &so, tmp("payload"), tmp("payload"), NULL),
                     RP_ERR_INVALID_ARG);
    assert_only_files(none, 1);
    /* An aborted atomic write leaves nothing either. */
    assert_int_equal(rp_atomic_begin(&f, tmp("x"), 0600, 0), RP_OK);
    assert_int_equal(rp_atomic_write(&f, "secret", 6), RP_OK);
    rp_atomic_abort(&f);
    assert_only_files(none, 1);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(key);
}

static void test_unsupported_keys_are_refused(void **state)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    rp_sig_alg_t alg;

    (void)state;
    assert_non_null(rsa);
    assert_non_null(p384);
    assert_int_equal(rp_key_alg(rsa, &alg), RP_ERR_UNSUPPORTED);
    assert_int_equal(rp_key_alg(p384, &alg), RP_ERR_UNSUPPORTED);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
}

/* A generated image source: payload bytes are a function of their offset. */
struct gen_io {
    rp_image_io_t io;
    uint8_t head[0x200];
    uint64_t payload_len;
    uint8_t tail[512];
    size_t tail_len;
    size_t max_read;
    uint64_t flip_off; /* a byte of the image read back changed, or UINT64_MAX */
};

static uint8_t gen_byte(uint64_t off)
{
    uint64_t x = off * 0x9e3779b97f4a7c15ULL;

    return (uint8_t)(x >> 56);
}

static int gen_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct gen_io *g = ctx;
    uint8_t *out = buf;

    if (len > g->max_read)
        g->max_read = len;
    for (size_t i = 0; i < len; i++, off++) {
        if (off < sizeof(g->head))
            out[i] = g->head[off];
        else if (off < sizeof(g->head) + g->payload_len)
            out[i] = gen_byte(off - sizeof(g->head));
        else if (off - sizeof(g->head) - g->payload_len < g->tail_len)
            out[i] = g->tail[off - sizeof(g->head) - g->payload_len];
        else
            return -1;
        if (off == g->flip_off)
            out[i] ^= 1;
    }
    return 0;
}

/* An image far larger than the verifier's buffer verifies through it, in constant memory. */
static void test_large_image_small_buffer(void **state)
{
    struct gen_io g;
    rp_image_header_t h = {
        RP_IMAGE_MAGIC, 0, 0x200, 0, 0, 0, {1, 0, 0, 0}
    };
    uint8_t digest[RP_SHA256_LEN], sig[RP_ECDSA_P256_SIG_MAX], hash[RP_SHA256_LEN];
    uint8_t buf[4096], scratch[1024];
    rp_image_key_t k;
    rp_image_info_t info;
    rp_tlv_writer_t w;
    rp_sha256_t sha;
    size_t sig_len;
    EVP_PKEY *key;
    tu_buf_t pub;

    (void)state;
    memset(&g, 0, sizeof(g));
    g.flip_off = UINT64_MAX;
    g.payload_len = 48ULL << 20;
    h.img_size = (uint32_t)g.payload_len;
    memset(g.head, 0xff, sizeof(g.head));
    rp_image_header_encode(&h, g.head);
    /* Hash it the slow, obvious way, independently of rp_image_hash(). */
    assert_int_equal(rp_sha256_init(&sha), RP_OK);
    assert_int_equal(rp_sha256_update(&sha, g.head, sizeof(g.head)), RP_OK);
    for (uint64_t off = 0; off < g.payload_len; off += sizeof(buf)) {
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = gen_byte(off + i);
        assert_int_equal(rp_sha256_update(&sha, buf, sizeof(buf)), RP_OK);
    }
    assert_int_equal(rp_sha256_final(&sha, digest), RP_OK);

    assert_int_equal(rp_key_generate(RP_SIG_ECDSA_P256, &key), RP_OK);
    pub = spki_of(key);
    assert_int_equal(rp_sha256(pub.data, pub.len, hash), RP_OK);
    assert_int_equal(rp_key_sign_digest(key, digest, sig, sizeof(sig), &sig_len), RP_OK);
    rp_tlv_writer_init(&w, g.tail, sizeof(g.tail), RP_IMAGE_TLV_INFO_MAGIC);
    assert_int_equal(rp_tlv_writer_add(&w, RP_TLV_SHA256, digest, sizeof(digest)), RP_OK);
    assert_int_equal(rp_tlv_writer_add(&w, RP_TLV_KEYHASH, hash, sizeof(hash)), RP_OK);
    assert_int_equal(rp_tlv_writer_add(&w, RP_TLV_ECDSA_SIG, sig, sig_len), RP_OK);
    assert_int_equal(rp_tlv_writer_finish(&w, &g.tail_len), RP_OK);
    g.io.read = gen_read;
    g.io.ctx = &g;
    g.io.mapped = NULL;
    g.io.size = sizeof(g.head) + g.payload_len + g.tail_len;

    k.spki = pub.data;
    k.spki_len = pub.len;
    assert_int_equal(rp_image_verify(&g.io, &k, 1, scratch, sizeof(scratch), &info), RP_OK);
    assert_memory_equal(info.digest, digest, sizeof(digest));
    assert_true(g.max_read <= sizeof(scratch));
    /* A bit flipped deep inside the payload is found. */
    g.flip_off = sizeof(g.head) + (30ULL << 20) + 7;
    assert_int_equal(rp_image_verify(&g.io, &k, 1, scratch, sizeof(scratch), &info),
                     RP_ERR_HASH_MISMATCH);
    tu_free(&pub);
    EVP_PKEY_free(key);
}

static void test_private_key_file_is_0600_and_kept(void **state)
{
    EVP_PKEY *key = NULL, *back = NULL;
    struct stat st;
    bool priv = false;

    (void)state;
    assert_int_equal(rp_key_generate(RP_SIG_ED25519, &key), RP_OK);
    assert_int_equal(rp_key_save_private(key, tmp("k.pem"), false), RP_OK);
    assert_int_equal(stat(tmp("k.pem"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(rp_key_save_private(key, tmp("k.pem"), false), RP_ERR_EXISTS);
    assert_int_equal(rp_key_save_private(key, tmp("k.pem"), true), RP_OK);
    assert_int_equal(rp_key_load(tmp("k.pem"), &back, &priv), RP_OK);
    assert_true(priv);
    assert_int_equal(EVP_PKEY_eq(key, back), 1);
    EVP_PKEY_free(key);
    EVP_PKEY_free(back);
}

static void test_read_file_bounds(void **state)
{
    rp_atomic_file_t f;
    uint8_t *data;
    size_t len;
    int fd;

    (void)state;
    assert_int_equal(rp_atomic_begin(&f, tmp("ten"), 0644, 0), RP_OK);
    assert_int_equal(rp_atomic_write(&f, "0123456789", 10), RP_OK);
    assert_int_equal(rp_atomic_commit(&f, 0), RP_OK);
    assert_int_equal(rp_read_file(tmp("ten"), 10, &data, &len), RP_OK);
    assert_int_equal(len, 10);
    assert_memory_equal(data, "0123456789", 10);
    free(data);
    assert_int_equal(rp_read_file(tmp("ten"), 9, &data, &len), RP_ERR_TOO_LARGE);
    assert_null(data);
    assert_int_equal(rp_read_file(tmp("absent"), 9, &data, &len), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_read_file(tmpdir, 9, &data, &len), RP_ERR_IO);
    /* From a descriptor: its bytes, the descriptor left open; a directory or a FIFO is no file. */
    fd = open(tmp("ten"), O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(rp_read_fd(fd, 10, &data, &len), RP_OK);
    assert_int_equal(len, 10);
    assert_memory_equal(data, "0123456789", 10);
    free(data);
    assert_true(fcntl(fd, F_GETFD) >= 0); /* still open */
    close(fd);
    fd = open(tmp("ten"), O_RDONLY | O_CLOEXEC);
    assert_int_equal(rp_read_fd(fd, 9, &data, &len), RP_ERR_TOO_LARGE);
    assert_null(data);
    close(fd);
    fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_int_equal(rp_read_fd(fd, 9, &data, &len), RP_ERR_IO);
    close(fd);
    assert_int_equal(mkfifo(tmp("fifo"), 0600), 0);
    fd = open(tmp("fifo"), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    assert_int_equal(rp_read_fd(fd, 9, &data, &len), RP_ERR_IO);
    close(fd);
    unlink(tmp("fifo"));
}

static rp_err_t sign_with_key(void *ctx, const uint8_t digest[RP_SHA256_LEN], uint8_t *der,
                              size_t cap, size_t *len)
{
    return rp_key_sign_digest(ctx, digest, der, cap, len);
}

/* Our evidence, checked by third-party code (python3-cbor2 + python3-cryptography). */
static void test_evidence_checked_independently(void **state)
{
    uint8_t token[RP_EAT_MAX_SIZE];
    rp_eat_claims_t c, back;
    rp_atomic_file_t f;
    EVP_PKEY *key = NULL;
    tu_buf_t pub;
    char cmd[512];
    size_t len;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.nonce_len = 32;
    memset(c.nonce, 0x5a, 32);
    c.debug = RP_EAT_DEBUG_DISABLED;
    c.boot_count = 3;
    c.ncomponents = 1;
    strcpy(c.components[0].name, "app");
    strcpy(c.components[0].version, "1.1.0+0");
    assert_int_equal(rp_key_generate(RP_SIG_ECDSA_P256, &key), RP_OK);
    pub = spki_of(key);
    assert_int_equal(rp_sha256(pub.data, pub.len, c.device_id), RP_OK);
    assert_int_equal(rp_evidence_make(&c, sign_with_key, key, token, sizeof(token), &len), RP_OK);
    assert_int_equal(rp_eat_verify(token, len, pub.data, pub.len, &back), RP_OK);
    assert_memory_equal(&c, &back, sizeof(c));

    assert_int_equal(rp_atomic_begin(&f, tmp("token.cbor"), 0644, 0), RP_OK);
    assert_int_equal(rp_atomic_write(&f, token, len), RP_OK);
    assert_int_equal(rp_atomic_commit(&f, 0), RP_OK);
    assert_int_equal(rp_atomic_begin(&f, tmp("key.der"), 0644, 0), RP_OK);
    assert_int_equal(rp_atomic_write(&f, pub.data, pub.len), RP_OK);
    assert_int_equal(rp_atomic_commit(&f, 0), RP_OK);
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/tools/check-eat.py %s %s >/dev/null",
             RP_TESTS_DIR, tmp("token.cbor"), tmp("key.der"));
    assert_int_equal(system(cmd), 0);
    /* and the checker is not a rubber stamp: a flipped signature bit fails it */
    token[len - 1] ^= 1;
    assert_int_equal(rp_atomic_begin(&f, tmp("token.cbor"), 0644, 0), RP_OK);
    assert_int_equal(rp_atomic_write(&f, token, len), RP_OK);
    assert_int_equal(rp_atomic_commit(&f, 0), RP_OK);
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/tools/check-eat.py %s %s >/dev/null 2>&1",
             RP_TESTS_DIR, tmp("token.cbor"), tmp("key.der"));
    assert_int_not_equal(system(cmd), 0);
    tu_free(&pub);
    EVP_PKEY_free(key);
}

static void test_hex(void **state)
{
    uint8_t in[3] = {0x00, 0xab, 0xff}, out[3];
    char s[7];

    (void)state;
    assert_int_equal(rp_hex_encode(in, 3, s, sizeof(s)), RP_OK);
    assert_string_equal(s, "00abff");
    assert_int_equal(rp_hex_encode(in, 3, s, 6), RP_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(rp_hex_decode("00ABff", 6, out, 3), RP_OK);
    assert_memory_equal(in, out, 3);
    assert_int_equal(rp_hex_decode("00abf", 5, out, 3), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_hex_decode("00abfg", 6, out, 3), RP_ERR_INVALID_ARG);
}

/* review r15tool: an existing OUT is kept when exclusive (a tool's OUT without --force), and a
 * payload that does not end where its size said when signing began (it grew while it was read) is
 * refused, nothing left. A procfs file is such a payload every time: its size says 0, yet it holds
 * bytes. */
static void test_sign_out_and_changes(void **state)
{
    static const char *const only[] = {"out.img", "payload"};
    EVP_PKEY *key = NULL;
    rp_sign_opts_t so;
    tu_buf_t before, after;
    char cmd[256];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'/* && head -c 1000 /dev/zero > '%s/payload'", tmpdir,
             tmpdir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rp_key_generate(RP_SIG_ED25519, &key), RP_OK);
    rp_sign_opts_init(&so);
    assert_false(so.exclusive); /* the library's default: replace */
    assert_int_equal(rp_image_sign_file(key, &so, tmp("payload"), tmp("out.img"), NULL), RP_OK);
    before = tu_load(tmpdir, "out.img");
    so.exclusive = true;
    so.version.major = 2;
    assert_int_equal(rp_image_sign_file(key, &so, tmp("payload"), tmp("out.img"), NULL),
                     RP_ERR_EXISTS);
    after = tu_load(tmpdir, "out.img");
    assert_int_equal(after.len, before.len);
    assert_memory_equal(after.data, before.data, before.len);
    free(after.data);
    assert_only_files(only, 2);
    so.exclusive = false;
    assert_int_equal(rp_image_sign_file(key, &so, tmp("payload"), tmp("out.img"), NULL), RP_OK);
    after = tu_load(tmpdir, "out.img");
    assert_memory_not_equal(after.data, before.data, before.len); /* version 2 now */
    free(after.data);
    free(before.data);
    assert_int_equal(rp_image_sign_file(key, &so, "/proc/self/status", tmp("grown.img"), NULL),
                     RP_ERR_BUSY);
    assert_only_files(only, 2);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ed25519_identical_to_imgtool),
        cmocka_unit_test(test_ecdsa_layout_identical_to_imgtool),
        cmocka_unit_test(test_round_trip_ecdsa),
        cmocka_unit_test(test_round_trip_ed25519),
        cmocka_unit_test(test_public_key_cannot_sign),
        cmocka_unit_test(test_unsupported_keys_are_refused),
        cmocka_unit_test(test_failed_sign_leaves_nothing),
        cmocka_unit_test(test_large_image_small_buffer),
        cmocka_unit_test(test_payload_across_write_pieces),
        cmocka_unit_test(test_private_key_file_is_0600_and_kept),
        cmocka_unit_test(test_sign_out_and_changes),
        cmocka_unit_test(test_read_file_bounds),
        cmocka_unit_test(test_evidence_checked_independently),
        cmocka_unit_test(test_hex),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
