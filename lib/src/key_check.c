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

/* The head kept of each line the PEM scan reads: enough for a BEGIN or END line (OpenSSL's PEM
 * reader takes lines of at most 255 bytes) */
#define SCAN_LINE 256
/* The largest PEM block the scan reads (a key or a certificate is a few KiB; a CRL may be more) */
#define SCAN_BLOCK (1024 * 1024)
#define SCAN_BLOCK_WORDS "1 MiB"

/* The PEM scan's state: the line being read (its head) and the block it is in, if any. */
struct pem_scan {
    char line[SCAN_LINE];
    size_t line_len;
    bool line_cut;    /* the line is longer than its head */
    uint8_t *block;   /* the block from its BEGIN line (room for SCAN_BLOCK bytes) */
    size_t block_len; /* 0 outside a block */
    bool block_over;  /* more than SCAN_BLOCK bytes: not kept, not read */
    bool malformed;   /* a block that does not read (or is over SCAN_BLOCK, or is not ended) */
    bool private_key, encrypted;
};

/* The block is whole (its END line read): OpenSSL's PEM reader reads it, and gives its labels. */
static void pem_block_done(struct pem_scan *sc)
{
    BIO *bio = sc->block_over ? NULL : BIO_new_mem_buf(sc->block, (int)sc->block_len);
    char *name, *header;
    unsigned char *data;
    long dlen;

    if (bio != NULL && PEM_read_bio(bio, &name, &header, &data, &dlen) == 1) {
        if (strstr(name, "PRIVATE KEY") != NULL)
            sc->private_key = true;
        if (strstr(name, "ENCRYPTED") != NULL || strstr(header, "ENCRYPTED") != NULL)
            sc->encrypted = true;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(data, (size_t)dlen);
    } else {
        sc->malformed = true;
    }
    BIO_free(bio);
    ERR_clear_error();
    OPENSSL_cleanse(sc->block, sc->block_len);
    sc->block_len = 0;
    sc->block_over = false;
}

/* bytes of the current line (the whole line when end, its '\n' included if it has one). */
static void pem_bytes(struct pem_scan *sc, const uint8_t *p, size_t n, bool end)
{
    size_t keep = n < SCAN_LINE - 1 - sc->line_len ? n : SCAN_LINE - 1 - sc->line_len;
    size_t len;

    memcpy(sc->line + sc->line_len, p, keep);
    sc->line_len += keep;
    sc->line_cut = sc->line_cut || keep < n;
    if (sc->block_len > 0 && !sc->block_over) {
        if (n > SCAN_BLOCK - sc->block_len) {
            sc->block_over = true;
        } else {
            memcpy(sc->block + sc->block_len, p, n);
            sc->block_len += n;
        }
    }
    if (!end)
        return;
    for (len = sc->line_len; len > 0 && strchr(" \t\r\n", sc->line[len - 1]) != NULL;)
        len--;
    if (!sc->line_cut && len > 16 && memcmp(sc->line, "-----BEGIN ", 11) == 0 &&
        memcmp(sc->line + len - 5, "-----", 5) == 0) {
        if (sc->block_len > 0) /* a block not ended before the next begins: it does not read */
            sc->malformed = true;
        OPENSSL_cleanse(sc->block, sc->block_len);
        memcpy(sc->block, sc->line, sc->line_len);
        sc->block_len = sc->line_len;
        sc->block_over = false;
    } else if (sc->block_len > 0 && sc->line_len >= 9 && memcmp(sc->line, "-----END ", 9) == 0) {
        pem_block_done(sc);
    }
    OPENSSL_cleanse(sc->line, sc->line_len);
    sc->line_len = 0;
    sc->line_cut = false;
}

/*
 * The PEM blocks of the file at fd from its start, read a buffer at a time, in memory bounded
 * whatever the file (review r17 L2): the head of each line (SCAN_LINE bytes) and the block it is
 * in (SCAN_BLOCK). A block runs from a "-----BEGIN ...-----" line to the next "-----END " line,
 * and OpenSSL's PEM reader reads it and gives its label (and the legacy Proc-Type header). Text
 * only: the first NUL byte ends what is read (a binary file's search stops there). A block that
 * does not read, is over SCAN_BLOCK, is not ended before another BEGIN line or the end: malformed.
 */
static rp_err_t pem_scan(int fd, bool *private_key, bool *encrypted, bool *malformed)
{
    struct pem_scan sc = {0};
    uint8_t buf[16384];
    const uint8_t *p, *nl, *nul;
    ssize_t got;
    size_t n;
    bool done = false;

    sc.block = malloc(SCAN_BLOCK);
    if (sc.block == NULL)
        return RP_ERR_NO_MEMORY;
    while (!done && (got = read(fd, buf, sizeof(buf))) != 0) {
        if (got < 0) {
            OPENSSL_clear_free(sc.block, SCAN_BLOCK);
            return RP_ERR_IO;
        }
        n = (size_t)got;
        nul = memchr(buf, '\0', n);
        if (nul != NULL) {
            n = (size_t)(nul - buf);
            done = true;
        }
        for (p = buf; p < buf + n; p = nl + 1) {
            nl = memchr(p, '\n', (size_t)(buf + n - p));
            if (nl == NULL) {
                pem_bytes(&sc, p, (size_t)(buf + n - p), false);
                break;
            }
            pem_bytes(&sc, p, (size_t)(nl + 1 - p), true);
        }
    }
    pem_bytes(&sc, buf, 0, true); /* a last line with no '\n' */
    if (sc.block_len > 0)         /* a block the end of the text left open */
        sc.malformed = true;
    OPENSSL_clear_free(sc.block, SCAN_BLOCK);
    *private_key = sc.private_key;
    *encrypted = sc.encrypted;
    *malformed = sc.malformed;
    return RP_OK;
}

/*
 * Whether the regular file at path holds a private key of any kind or type, as far as OpenSSL can
 * tell, and whether one is encrypted: a PEM block so labelled anywhere in the text (pem_scan:
 * PKCS#8 "ENCRYPTED PRIVATE KEY" or the legacy Proc-Type header are encrypted), or DER that
 * OpenSSL's decoders read as a private key (PKCS#8, a type's own form) from the file's first
 * RP_KEY_FILE_MAX bytes, or as an encrypted PKCS#8 key, the whole file. Up to max bytes are read,
 * in memory bounded whatever the file: a larger one is RP_ERR_TOO_LARGE (not looked at: the
 * caller decides); RP_ERR_MALFORMED when a PEM block does not read (or is over SCAN_BLOCK) and no
 * private key was seen; RP_ERR_IO when it cannot be read or is not a regular file.
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
    bool pem_private, pem_encrypted, malformed;
    rp_err_t err;
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
    ERR_clear_error();
    err = pem_scan(fd, &pem_private, &pem_encrypted, &malformed);
    close(fd);
    if (err != RP_OK)
        return err;
    *private_key = *private_key || pem_private;
    *encrypted = *encrypted || pem_encrypted;
    return malformed && !*private_key ? RP_ERR_MALFORMED : RP_OK;
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
                         scan == RP_ERR_TOO_LARGE ? "over " RP_KEY_SCAN_MAX_WORDS ", not read"
                         : scan == RP_ERR_MALFORMED
                             ? "a PEM block in it does not read, or is over " SCAN_BLOCK_WORDS
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
