/*
 * What a tool checks of the key files it reads and the files it writes (key.h): why a key file is
 * refused, in words that say how to fix it, and the rule for replacing an output. Apart from key.c,
 * which the device's monitor links: none of this is privileged code.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "rampart/file.h"
#include "rampart/key.h"
#include "rampart/log.h"

/*
 * Whether the regular file at path holds a private key of any kind or type, as far as OpenSSL can
 * tell, and whether one is encrypted: a PEM block so labelled anywhere in the file (OpenSSL's PEM
 * reader gives the labels: PKCS#8 "ENCRYPTED PRIVATE KEY" or the legacy Proc-Type header are
 * encrypted), or DER that OpenSSL's decoders read as a private key (PKCS#8, a type's own form) or
 * as an encrypted PKCS#8 key, the whole file. The file is read whole, streamed, up to max bytes:
 * a larger one is RP_ERR_TOO_LARGE (not looked at: the caller decides); RP_ERR_MALFORMED when a
 * PEM block does not read and no private key was seen; RP_ERR_IO when it cannot be read or is not
 * a regular file.
 */
static rp_err_t key_scan(const char *path, long long max, bool *private_key, bool *encrypted)
{
    uint8_t *head = NULL;
    const unsigned char *p;
    size_t n;
    struct stat st;
    EVP_PKEY *pk = NULL;
    OSSL_DECODER_CTX *dctx;
    X509_SIG *sig;
    FILE *fp;
    BIO *bio;
    char *name, *header;
    unsigned char *data;
    unsigned long last;
    long dlen;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

    *private_key = *encrypted = false;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return RP_ERR_IO;
    }
    if (st.st_size > max) {
        close(fd);
        return RP_ERR_TOO_LARGE;
    }
    /* DER: a key is far smaller than RP_KEY_FILE_MAX; its first bytes are enough. */
    n = st.st_size < RP_KEY_FILE_MAX ? (size_t)st.st_size : RP_KEY_FILE_MAX;
    head = malloc(n > 0 ? n : 1);
    if (head == NULL || rp_pread_all(fd, head, n, 0) != RP_OK) {
        free(head);
        close(fd);
        return head == NULL ? RP_ERR_NO_MEMORY : RP_ERR_IO;
    }
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pk, "DER", NULL, NULL, OSSL_KEYMGMT_SELECT_PRIVATE_KEY,
                                         NULL, NULL);
    p = head;
    if (dctx != NULL && n > 0 && OSSL_DECODER_from_data(dctx, &p, &(size_t){n}) == 1 && pk != NULL)
        *private_key = true;
    EVP_PKEY_free(pk);
    OSSL_DECODER_CTX_free(dctx);
    p = head;
    sig = n == (size_t)st.st_size ? d2i_X509_SIG(NULL, &p, (long)n) : NULL;
    if (sig != NULL && p == head + n)
        *private_key = *encrypted = true; /* EncryptedPrivateKeyInfo, the whole file */
    X509_SIG_free(sig);
    OPENSSL_cleanse(head, n);
    free(head);
    /* PEM: every block to the end (of a text file: the reader's lines end at a NUL byte, so
     * that the search for a block stops at one of a binary file). A block that does not read may
     * have taken the lines of the next (its end line is the next block's): what follows cannot
     * be told, RP_ERR_MALFORMED. */
    fp = fdopen(fd, "rb");
    bio = fp != NULL ? BIO_new_fp(fp, BIO_CLOSE) : NULL;
    if (bio == NULL) {
        if (fp != NULL)
            fclose(fp);
        else
            close(fd);
        ERR_clear_error();
        return RP_ERR_NO_MEMORY;
    }
    while (PEM_read_bio(bio, &name, &header, &data, &dlen) == 1) {
        if (strstr(name, "PRIVATE KEY") != NULL)
            *private_key = true;
        if (strstr(name, "ENCRYPTED") != NULL || strstr(header, "ENCRYPTED") != NULL)
            *encrypted = true;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(data, (size_t)dlen);
    }
    last = ERR_peek_last_error();
    if (!*private_key &&
        (ERR_GET_LIB(last) != ERR_LIB_PEM || ERR_GET_REASON(last) != PEM_R_NO_START_LINE)) {
        BIO_free(bio);
        ERR_clear_error();
        return RP_ERR_MALFORMED;
    }
    BIO_free(bio);
    ERR_clear_error();
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
    bool private_key, encrypted;
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
    if (err == RP_ERR_BAD_KEY &&
        key_scan(path, RP_KEY_FILE_MAX, &private_key, &encrypted) == RP_OK && encrypted)
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
    bool private_key = false, encrypted;
    rp_err_t scan;

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
    if (!writes_private && S_ISREG(st.st_mode)) {
        scan = key_scan(path, RP_KEY_SCAN_MAX, &private_key, &encrypted);
        if (scan == RP_OK && private_key) {
            rp_log_error("%s holds a private key: refusing to replace it, even with --force "
                         "(remove it yourself if it must go)",
                         path);
            return RP_ERR_EXISTS;
        }
        if (scan != RP_OK) { /* what cannot be looked through is not taken for safe */
            rp_log_error("%s: cannot tell whether it holds a private key (%s): refusing to replace "
                         "it, even with --force (remove it yourself if it must go)",
                         path,
                         scan == RP_ERR_TOO_LARGE   ? "over " RP_KEY_SCAN_MAX_WORDS ", not read"
                         : scan == RP_ERR_MALFORMED ? "a PEM block in it does not read"
                                                    : "it cannot be read");
            return RP_ERR_EXISTS;
        }
    }
    if (!force) {
        rp_log_error("%s already exists: refusing to replace it (use --force to replace it)", path);
        return RP_ERR_EXISTS;
    }
    return RP_OK;
}
