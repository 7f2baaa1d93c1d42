/*
 * What a tool checks of the key files it reads and the files it writes (key.h): why a key file is
 * refused, in words that say how to fix it, and the rule for replacing an output. Apart from key.c,
 * which the device's monitor links: none of this is privileged code.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "rampart/file.h"
#include "rampart/key.h"
#include "rampart/log.h"

/* Whether path's PEM blocks (OpenSSL's PEM reader gives their labels) include a private key of
 * any kind or type, and whether one is encrypted (PKCS#8 "ENCRYPTED PRIVATE KEY", or the legacy
 * Proc-Type header). */
static rp_err_t pem_private(const char *path, bool *private_pem, bool *encrypted)
{
    uint8_t *pem = NULL;
    size_t len;
    BIO *bio;
    char *name, *header;
    unsigned char *data;
    long dlen;
    rp_err_t err = rp_read_file(path, RP_KEY_FILE_MAX, &pem, &len);

    *private_pem = *encrypted = false;
    if (err != RP_OK)
        return err;
    bio = BIO_new_mem_buf(pem, (int)len);
    while (bio != NULL && PEM_read_bio(bio, &name, &header, &data, &dlen) == 1) {
        if (strstr(name, "PRIVATE KEY") != NULL)
            *private_pem = true;
        if (strstr(name, "ENCRYPTED") != NULL || strstr(header, "ENCRYPTED") != NULL)
            *encrypted = true;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(data, (size_t)dlen);
    }
    BIO_free(bio);
    ERR_clear_error();
    OPENSSL_cleanse(pem, len);
    free(pem);
    return RP_OK;
}

__attribute__((format(printf, 3, 4))) static void say(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* A P-256 key whose curve is spelt out (explicit parameters) rather than named: its
 * SubjectPublicKeyInfo is not the one images and devices name the key by. */
static bool explicit_curve(EVP_PKEY *k)
{
    char enc[32];
    size_t len;
    bool explicit = EVP_PKEY_is_a(k, "EC") &&
                    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc),
                                                   &len) == 1 &&
                    strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0;

    ERR_clear_error();
    return explicit;
}

rp_err_t rp_key_load_why(const char *path, EVP_PKEY **key, bool *is_private, char *why, size_t cap)
{
    bool private_pem, encrypted;
    rp_err_t err = rp_key_load(path, key, is_private);

    if (why == NULL || cap == 0)
        return RP_ERR_INVALID_ARG;
    why[0] = '\0';
    if (err == RP_OK && explicit_curve(*key)) {
        EVP_PKEY_free(*key);
        *key = NULL;
        say(why, cap,
            "a P-256 key with explicit curve parameters: re-export it with the named curve "
            "(openssl pkey -in %s -ec_param_enc named_curve -out NAMED.pem)",
            path);
        return RP_ERR_UNSUPPORTED;
    }
    if (err == RP_ERR_BAD_KEY && pem_private(path, &private_pem, &encrypted) == RP_OK && encrypted)
        say(why, cap,
            "an encrypted private key: encrypted keys are not supported; decrypt it to a file "
            "only you can read (umask 077; openssl pkey -in %s -out PLAIN.pem) and keep that "
            "offline",
            path);
    else if (err == RP_ERR_BAD_KEY)
        say(why, cap, "not a PEM private or public key");
    else if (err == RP_ERR_UNSUPPORTED)
        say(why, cap, "keys must be ecdsa-p256 or ed25519");
    else if (err == RP_ERR_IO)
        say(why, cap, "cannot read it as a key file (a directory, a FIFO or a device?)");
    return err;
}

rp_err_t rp_key_check_out(const char *path, bool force, bool writes_private)
{
    char copy[PATH_MAX];
    const char *base;
    struct stat st;
    bool private_pem = false, encrypted;

    if (strlen(path) >= sizeof(copy))
        return RP_ERR_INVALID_ARG;
    strcpy(copy, path);
    base = strrchr(copy, '/') != NULL ? strrchr(copy, '/') + 1 : copy;
    if (strlen(base) + RP_ATOMIC_TMP_EXTRA > NAME_MAX) {
        rp_log_error("%s: a name of %zu bytes is too long: its temporary adds %d, and a name "
                     "holds at most %d: give a name of at most %d bytes",
                     path, strlen(base), RP_ATOMIC_TMP_EXTRA, NAME_MAX,
                     NAME_MAX - RP_ATOMIC_TMP_EXTRA);
        return RP_ERR_INVALID_ARG;
    }
    if (lstat(path, &st) != 0)
        return RP_OK; /* nothing there (a missing directory is the write's to say) */
    if (S_ISDIR(st.st_mode)) {
        rp_log_error("%s is a directory: give the name of the file to write", path);
        return RP_ERR_INVALID_ARG;
    }
    if (!writes_private && S_ISREG(st.st_mode) &&
        pem_private(path, &private_pem, &encrypted) == RP_OK && private_pem) {
        rp_log_error("%s holds a private key: refusing to replace it, even with --force "
                     "(remove it yourself if it must go)",
                     path);
        return RP_ERR_EXISTS;
    }
    if (!force) {
        rp_log_error("%s already exists: refusing to replace it (use --force to replace it)", path);
        return RP_ERR_EXISTS;
    }
    return RP_OK;
}
