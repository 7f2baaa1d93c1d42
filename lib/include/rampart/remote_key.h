/*
 * A remote signing key: an OpenSSL EVP_PKEY (ECDSA P-256) whose private half lives elsewhere. The
 * process holds only the public key; every private-key operation OpenSSL asks of it (a TLS 1.3 or
 * 1.2 CertificateVerify, a ServerKeyExchange, a CSR or certificate signature) becomes one call of
 * a signing callback with a SHA-256 digest, and nothing else. That digest mode is for a signer in
 * the same process (the agent's own root of trust). Through the monitor, the unprivileged agent
 * and apps with DeviceAuthentication use the TLS 1.3 mode below (rp_remote_key_new_tls13): the
 * monitor signs no digest a client chooses, only a CertificateVerify it builds itself.
 *
 * Only what that needs is offered: the key is P-256, the digest SHA-256, the scheme ECDSA. A
 * request for any other digest, or to sign anything but a 32-byte digest, is refused with an
 * OpenSSL error saying so, and the callback is not called. The key cannot verify, export its
 * private part (it has none) or be generated; verify with the public key (the SPKI) instead.
 */
#ifndef RAMPART_REMOTE_KEY_H
#define RAMPART_REMOTE_KEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "rampart/crypto.h"
#include "rampart/error.h"

/*
 * Sign a SHA-256 digest with the remote private key. OUT: sig_der[0..*sig_len), a DER ECDSA
 * signature of at most cap bytes (RP_ECDSA_P256_SIG_MAX). RP_OK or the reason it did not sign.
 * Called from inside OpenSSL, on whatever thread runs the handshake or signature; the key checks
 * the result against its public key before handing it on, so a wrong signature fails the
 * operation at once, here, rather than at the peer.
 */
typedef rp_err_t (*rp_remote_sign_fn)(void *ctx, const uint8_t digest[RP_SHA256_LEN],
                                      uint8_t *sig_der, size_t cap, size_t *sig_len);

/*
 * A key for the public key spki_der[0..len) (a DER SubjectPublicKeyInfo of a P-256 key) that
 * signs through sign(ctx, ...). NULL, with the reason logged, when the SPKI is not a P-256 key.
 * The caller frees it with EVP_PKEY_free(); sign and ctx must stay valid until then (libssl holds
 * its own references: until every SSL_CTX and SSL given the key is freed too).
 * Use it as any key: SSL_CTX_use_PrivateKey(), X509_REQ_sign(req, key, EVP_sha256()),
 * EVP_DigestSignInit_ex(..., "SHA256", ...), EVP_PKEY_sign() of a 32-byte digest.
 */
EVP_PKEY *rp_remote_key_new(const uint8_t *spki_der, size_t len, rp_remote_sign_fn sign, void *ctx);

/*
 * The TLS 1.3 mode, for a signer that must never sign caller-chosen bytes (the monitor: the same
 * key signs evidence and CSRs). The callback gets the side and the transcript hash (32 or 48
 * bytes), not a digest; it builds the CertificateVerify content itself (rp_tls13_cv_content()),
 * and returns a DER ECDSA signature over SHA-256 of that content.
 */
typedef rp_err_t (*rp_remote_sign_tls13_fn)(void *ctx, rp_tls13_side_t side, const uint8_t *hash,
                                            size_t hash_len, uint8_t *sig_der, size_t cap,
                                            size_t *sig_len);

/*
 * A key like rp_remote_key_new()'s that signs only TLS 1.3 CertificateVerify messages: in the
 * digest-sign path (what libssl uses) it sees the whole signed content, checks that it is exactly
 * such a content (rp_tls13_cv_parse()) and hands (side, hash) to sign. Anything else is refused
 * with an OpenSSL error before the callback is called: a TLS 1.2 handshake (its signed content is
 * another), a CSR or certificate, a raw EVP_PKEY_sign() of a digest.
 */
EVP_PKEY *rp_remote_key_new_tls13(const uint8_t *spki_der, size_t len, rp_remote_sign_tls13_fn sign,
                                  void *ctx);

#endif /* RAMPART_REMOTE_KEY_H */
