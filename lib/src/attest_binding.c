/*
 * The TLS exporter that binds attestation evidence to its connection (attest_binding.h).
 */
#include <string.h>

#include <openssl/err.h>

#include "rampart/attest_binding.h"

rp_err_t rp_attest_binding(SSL *ssl, uint8_t out[RP_ATTEST_BINDING_LEN])
{
    memset(out, 0, RP_ATTEST_BINDING_LEN);
    if (ssl == NULL || !SSL_is_init_finished(ssl))
        return RP_ERR_INVALID_ARG;
    /* TLS 1.2's exporter is unique per connection only with the extended master secret, and
     * Rampart's devices speak 1.3: one version, one rule. */
    if (SSL_version(ssl) != TLS1_3_VERSION)
        return RP_ERR_UNSUPPORTED;
    if (SSL_export_keying_material(ssl, out, RP_ATTEST_BINDING_LEN, RP_ATTEST_BINDING_LABEL,
                                   strlen(RP_ATTEST_BINDING_LABEL), NULL, 0, 0) != 1) {
        ERR_clear_error();
        OPENSSL_cleanse(out, RP_ATTEST_BINDING_LEN);
        return RP_ERR_CRYPTO;
    }
    return RP_OK;
}
