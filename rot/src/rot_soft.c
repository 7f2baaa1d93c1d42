/*
 * The soft root of trust, for development only: the identity key is a PKCS#8 file (0600) and the
 * counters and measurement register are files in the state directory, replaced atomically with
 * fsync. Anyone who can read the directory can impersonate the device; it says so on every open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "rot_impl.h"

#define REGISTER_FILE "measurements" /* 64 hex digits: the soft measurement register */

static const char *const counter_files[RP_ROT_COUNTER_COUNT] = {
    [RP_ROT_COUNTER_BOOT] = "counter.boot",
};

static void warn_development_only(const char *dir)
{
    static bool warned; /* once per process is loud enough */

    if (warned)
        return;
    warned = true;
    rp_log_warn("%s: SOFT root of trust: the identity key is a plain file. For development only; "
                "use --rot tpm2 on real devices",
                dir);
}

static rp_err_t soft_create(const rp_rot_config_t *cfg)
{
    char path[PATH_MAX];
    EVP_PKEY *key = NULL;
    rp_err_t err = rp_rot_path(path, sizeof(path), cfg->state_dir, ROT_SOFT_KEY_FILE);

    if (err == RP_OK)
        err = rp_key_generate(RP_SIG_ECDSA_P256, &key);
    if (err == RP_OK)
        err = rp_key_save_private(key, path, false);
    EVP_PKEY_free(key);
    return err;
}

static rp_err_t soft_open(rp_rot_t *rot, const rp_rot_config_t *cfg)
{
    char path[PATH_MAX];
    bool is_private = false;
    rp_sig_alg_t alg;
    rp_err_t err = rp_rot_path(path, sizeof(path), cfg->state_dir, ROT_SOFT_KEY_FILE);

    /* The key is the device's identity: no one else may read it, nor swap it. */
    if (err == RP_OK)
        err = rp_file_check_private(path, true);
    if (err == RP_ERR_NOT_FOUND)
        rp_log_error("%s is missing: this state directory has no identity key (its identity is "
                     "lost unless a backup has it; provisioning again makes a new device)",
                     path);
    if (err != RP_OK)
        return err;
    err = rp_key_load(path, &rot->pkey, &is_private);
    if (err == RP_OK &&
        (!is_private || rp_key_alg(rot->pkey, &alg) != RP_OK || alg != RP_SIG_ECDSA_P256))
        err = RP_ERR_BAD_KEY;
    if (err != RP_OK)
        rp_log_error("%s is corrupt: not an ECDSA P-256 private key in PEM (%s): the device's "
                     "identity is lost unless a backup has it; provisioning again makes a new "
                     "device",
                     path, rp_strerror(err));
    if (err == RP_OK)
        warn_development_only(cfg->state_dir);
    return err;
}

/* What each file holds, and what to do when it is corrupt: for the message that says so. */
#define BOOT_COUNTER_HOLDS "the boot counter: one decimal number"
#define BOOT_COUNTER_FIX                                                                           \
    "restore it from a backup; it must never go down (the service sees the boot count)"
#define SECCNT_HOLDS "a component's security counter: one decimal number, at most 4294967295"
#define SECCNT_FIX                                                                                 \
    "restore it from a backup; a lower value would let older, vulnerable images install"
#define REGISTER_HOLDS "the measurement register: 64 hex digits"
#define REGISTER_FIX "the next boot starts a new register (restart the device)"

static rp_err_t corrupt(rp_rot_t *rot, const char *name, const char *why, const char *holds,
                        const char *fix)
{
    rp_log_error("%s/%s is corrupt (%s): it should hold %s. Fix: %s", rot->dir, name, why, holds,
                 fix);
    return RP_ERR_MALFORMED;
}

/* Read a small file of text; absent is RP_ERR_NOT_FOUND; too large, or holding a NUL, is
 * corrupt (said, with what it should hold and the fix). OUT: text, NUL-terminated. */
static rp_err_t read_text(rp_rot_t *rot, const char *name, const char *holds, const char *fix,
                          char *text, size_t cap)
{
    char path[PATH_MAX], why[48];
    uint8_t *data;
    size_t len;
    rp_err_t err = rp_rot_path(path, sizeof(path), rot->dir, name);

    if (err == RP_OK)
        err = rp_read_file(path, cap - 1, &data, &len);
    if (err == RP_ERR_TOO_LARGE) {
        snprintf(why, sizeof(why), "larger than %zu bytes", cap - 1);
        return corrupt(rot, name, why, holds, fix);
    }
    if (err != RP_OK && err != RP_ERR_NOT_FOUND)
        rp_log_error("%s cannot be read: %s", path, rp_strerror(err));
    if (err != RP_OK)
        return err;
    memcpy(text, data, len);
    text[len] = '\0';
    free(data);
    if (strlen(text) != len)
        return corrupt(rot, name, "it holds a NUL byte", holds, fix);
    while (len > 0 && text[len - 1] == '\n')
        text[--len] = '\0';
    return RP_OK;
}

static rp_err_t write_text(rp_rot_t *rot, const char *name, const char *text)
{
    char path[PATH_MAX];
    rp_atomic_file_t f;
    rp_err_t err = rp_rot_path(path, sizeof(path), rot->dir, name);

    if (err == RP_OK)
        err = rp_atomic_begin(&f, path, 0600, 0);
    if (err != RP_OK)
        return err;
    err = rp_atomic_write(&f, text, strlen(text));
    if (err == RP_OK)
        err = rp_atomic_write(&f, "\n", 1);
    if (err == RP_OK)
        return rp_atomic_commit(&f, 0);
    rp_atomic_abort(&f);
    return err;
}

static rp_err_t soft_counter_read(rp_rot_t *rot, rp_rot_counter_t c, uint64_t *value)
{
    char text[32], *end;
    unsigned long long v;
    rp_err_t err =
        read_text(rot, counter_files[c], BOOT_COUNTER_HOLDS, BOOT_COUNTER_FIX, text, sizeof(text));

    if (err == RP_ERR_NOT_FOUND) {
        *value = 0;
        return RP_OK;
    }
    if (err != RP_OK)
        return err;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] < '0' || text[0] > '9')
        return corrupt(rot, counter_files[c], text[0] ? "not a number" : "empty",
                       BOOT_COUNTER_HOLDS, BOOT_COUNTER_FIX);
    *value = v;
    return RP_OK;
}

/* Security counters: seccnt.<i>, one decimal number, replaced atomically. */
static rp_err_t soft_seccnt_read(rp_rot_t *rot, unsigned i, uint32_t *value)
{
    char name[32], text[32], *end;
    unsigned long v;
    rp_err_t err;

    snprintf(name, sizeof(name), "seccnt.%u", i);
    err = read_text(rot, name, SECCNT_HOLDS, SECCNT_FIX, text, sizeof(text));
    if (err == RP_ERR_NOT_FOUND) {
        *value = 0;
        return RP_OK;
    }
    if (err != RP_OK)
        return err;
    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] < '0' || text[0] > '9' ||
        v > UINT32_MAX)
        return corrupt(rot, name, text[0] ? "not a number up to 4294967295" : "empty", SECCNT_HOLDS,
                       SECCNT_FIX);
    *value = (uint32_t)v;
    return RP_OK;
}

static rp_err_t soft_seccnt_advance(rp_rot_t *rot, unsigned i, uint32_t value)
{
    char name[32], text[32];

    snprintf(name, sizeof(name), "seccnt.%u", i);
    snprintf(text, sizeof(text), "%lu", (unsigned long)value);
    return write_text(rot, name, text);
}

static rp_err_t soft_counter_increment(rp_rot_t *rot, rp_rot_counter_t c, uint64_t *value)
{
    char text[32];
    uint64_t v;
    rp_err_t err = soft_counter_read(rot, c, &v);

    if (err != RP_OK)
        return err;
    if (v == UINT64_MAX)
        return RP_ERR_TOO_LARGE;
    v++;
    snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
    err = write_text(rot, counter_files[c], text);
    if (err != RP_OK)
        return err;
    /* A new boot starts a new measurement register, as a TPM reset clears its PCRs. */
    if (c == RP_ROT_COUNTER_BOOT) {
        char path[PATH_MAX];
        if (rp_rot_path(path, sizeof(path), rot->dir, REGISTER_FILE) == RP_OK &&
            unlink(path) != 0 && errno != ENOENT)
            return RP_ERR_IO;
    }
    *value = v;
    return RP_OK;
}

static rp_err_t soft_read_register(rp_rot_t *rot, uint8_t reg[RP_SHA256_LEN])
{
    char text[2 * RP_SHA256_LEN + 2];
    rp_err_t err = read_text(rot, REGISTER_FILE, REGISTER_HOLDS, REGISTER_FIX, text, sizeof(text));

    if (err == RP_ERR_NOT_FOUND) {
        memset(reg, 0, RP_SHA256_LEN);
        return RP_OK;
    }
    if (err != RP_OK)
        return err;
    if (rp_hex_decode(text, strlen(text), reg, RP_SHA256_LEN) != RP_OK)
        return corrupt(rot, REGISTER_FILE, text[0] ? "not 64 hex digits" : "empty", REGISTER_HOLDS,
                       REGISTER_FIX);
    return RP_OK;
}

static rp_err_t soft_extend(rp_rot_t *rot, const uint8_t digest[RP_SHA256_LEN],
                            uint8_t reg[RP_SHA256_LEN])
{
    uint8_t both[2 * RP_SHA256_LEN];
    char text[2 * RP_SHA256_LEN + 1];
    rp_err_t err = soft_read_register(rot, both);

    if (err != RP_OK)
        return err;
    memcpy(both + RP_SHA256_LEN, digest, RP_SHA256_LEN);
    err = rp_sha256(both, sizeof(both), reg);
    if (err == RP_OK)
        err = rp_hex_encode(reg, RP_SHA256_LEN, text, sizeof(text));
    if (err == RP_OK)
        err = write_text(rot, REGISTER_FILE, text);
    return err;
}

/* The MAC key: 32 random bytes in hex, 0600, made on first use (so that a state directory
 * provisioned before MACs existed gets one too). */
#define MAC_KEY_FILE "mac.key"
#define MAC_KEY_HOLDS "the root of trust's MAC key (64 hex digits)"
#define MAC_KEY_FIX                                                                                \
    "restore it from a backup; without it, every component's counter binding is refused"

static rp_err_t soft_mac(rp_rot_t *rot, const uint8_t *data, size_t len, uint8_t mac[RP_SHA256_LEN])
{
    char text[2 * RP_SHA256_LEN + 2], path[PATH_MAX];
    uint8_t key[RP_SHA256_LEN];
    unsigned int mac_len = 0;
    rp_err_t err = read_text(rot, MAC_KEY_FILE, MAC_KEY_HOLDS, MAC_KEY_FIX, text, sizeof(text));

    if (err == RP_ERR_NOT_FOUND) {
        if (RAND_priv_bytes(key, sizeof(key)) != 1)
            return RP_ERR_CRYPTO;
        err = rp_hex_encode(key, sizeof(key), text, sizeof(text));
        if (err == RP_OK)
            err = write_text(rot, MAC_KEY_FILE, text);
        OPENSSL_cleanse(key, sizeof(key));
    }
    if (err == RP_OK)
        err = rp_rot_path(path, sizeof(path), rot->dir, MAC_KEY_FILE);
    if (err == RP_OK)
        err = rp_file_check_private(path, true);
    if (err == RP_OK && rp_hex_decode(text, strlen(text), key, sizeof(key)) != RP_OK)
        err = corrupt(rot, MAC_KEY_FILE, "not 64 hex digits", MAC_KEY_HOLDS, MAC_KEY_FIX);
    if (err == RP_OK && HMAC(EVP_sha256(), key, (int)sizeof(key), data, len, mac, &mac_len) == NULL)
        err = RP_ERR_CRYPTO;
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(text, sizeof(text));
    return err;
}

static rp_err_t soft_ensure_key(rp_rot_t *rot)
{
    return rot->pkey != NULL ? RP_OK : RP_ERR_BAD_KEY;
}

static void soft_close(rp_rot_t *rot)
{
    (void)rot;
}

const struct rot_ops rp_rot_soft_ops = {
    .create = soft_create,
    .open = soft_open,
    .counter_read = soft_counter_read,
    .counter_increment = soft_counter_increment,
    .seccnt_read = soft_seccnt_read,
    .seccnt_advance = soft_seccnt_advance,
    .extend = soft_extend,
    .read_register = soft_read_register,
    .ensure_key = soft_ensure_key,
    .mac = soft_mac,
    .close = soft_close,
};
