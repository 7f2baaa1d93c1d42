/*
 * Signing keys on the host, through OpenSSL: generate, load and save PEM files, derive the DER
 * SubjectPublicKeyInfo the image format names keys by, and sign a digest. Private key files are
 * written 0600 and never logged; OpenSSL wipes key material when the EVP_PKEY is freed.
 */
#ifndef RAMPART_KEY_H
#define RAMPART_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "rampart/crypto.h"
#include "rampart/error.h"

/* A PEM key file is a few hundred bytes; anything much larger is not one. */
#define RP_KEY_FILE_MAX (64 * 1024)
/* The largest existing file rp_key_check_out reads through for a private key (over any image a
 * tool writes or the service takes); a larger one is not replaced. */
#define RP_KEY_SCAN_MAX (1ll << 30)
#define RP_KEY_SCAN_MAX_WORDS "1 GiB"

/* Parse "ecdsa-p256" or "ed25519". OUT: *alg. */
rp_err_t rp_key_type_parse(const char *name, rp_sig_alg_t *alg) RP_MUST_CHECK;
/* The command-line name of alg ("ecdsa-p256", "ed25519"). */
const char *rp_key_type_name(rp_sig_alg_t alg);

/* Generate a new private key. OUT: *key, caller frees with EVP_PKEY_free(). */
rp_err_t rp_key_generate(rp_sig_alg_t alg, EVP_PKEY **key) RP_MUST_CHECK;

/* A PEM pass phrase callback that gives none (OpenSSL's pem_password_cb): for every PEM read.
 * Keys are never encrypted with a pass phrase here, and neither a tool nor the agent, reading what
 * a service sent, may stop to ask a terminal for one (review r13 L2). */
int rp_pem_no_passphrase(char *buf, int size, int rwflag, void *u);

/*
 * Load a PEM private or public key of a supported type. OUT: *key (caller frees), *is_private.
 * Errors: RP_ERR_NOT_FOUND, RP_ERR_BAD_KEY (not a PEM key), RP_ERR_UNSUPPORTED (another type).
 */
rp_err_t rp_key_load(const char *path, EVP_PKEY **key, bool *is_private) RP_MUST_CHECK;
/* The same, with why a file is refused (an encrypted private key: not supported, decrypt it; a
 * P-256 key with explicit curve parameters, refused here: re-export it with the named curve;
 * another type; not a key file). OUT: why (always set; "" on success). */
rp_err_t rp_key_load_why(const char *path, EVP_PKEY **key, bool *is_private, char *why,
                         size_t cap) RP_MUST_CHECK;

/*
 * The rule for a file a tool writes (`key generate --out`, `key public --out`, `image sign ...
 * OUT`): refuse (logged, with the fix) a directory, a name too long for its temporary, an existing
 * file unless force (RP_ERR_EXISTS), and a file that reads as a private key (PEM anywhere in its
 * text, read a line at a time up to its first NUL byte in bounded memory, or DER, encrypted or not,
 * of any type), or that cannot be read through (over RP_KEY_SCAN_MAX, a PEM block that does not
 * read, is not ended or is over 1 MiB, unreadable), whatever force says (RP_ERR_EXISTS), unless
 * what is written is itself a private key and force is given (`key generate --force`). Then write
 * with exclusive = !force, so that a file appearing meanwhile is not replaced either.
 */
rp_err_t rp_key_check_out(const char *path, bool force, bool writes_private) RP_MUST_CHECK;

/* The key's algorithm; RP_ERR_UNSUPPORTED for any type images cannot use. */
rp_err_t rp_key_alg(EVP_PKEY *key, rp_sig_alg_t *alg) RP_MUST_CHECK;

/* Write the private key as PKCS#8 PEM, mode 0600; refuses to overwrite unless force. */
rp_err_t rp_key_save_private(EVP_PKEY *key, const char *path, bool force) RP_MUST_CHECK;
/* Write the public key as SubjectPublicKeyInfo PEM, mode 0644; replaces path unless exclusive
 * (a tool checks path with rp_key_check_out first). */
rp_err_t rp_key_save_public(EVP_PKEY *key, const char *path, bool exclusive) RP_MUST_CHECK;

/* The DER SubjectPublicKeyInfo. OUT: out[0..*len). */
rp_err_t rp_key_spki(EVP_PKEY *key, uint8_t *out, size_t cap, size_t *len) RP_MUST_CHECK;

/*
 * Sign a SHA-256 digest the way MCUboot expects: a DER ECDSA signature, or Ed25519 over the 32
 * digest bytes. OUT: sig[0..*sig_len).
 */
rp_err_t rp_key_sign_digest(EVP_PKEY *key, const uint8_t digest[RP_SHA256_LEN], uint8_t *sig,
                            size_t cap, size_t *sig_len) RP_MUST_CHECK;

#endif /* RAMPART_KEY_H */
