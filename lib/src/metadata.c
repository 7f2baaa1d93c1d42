/* Signed update metadata envelopes (see metadata.h). */
#include <stdlib.h>
#include <string.h>

#include "rampart/base64.h"
#include "rampart/hex.h"
#include "rampart/key.h"
#include "rampart/metadata.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#define SIG_MAX 128

static rp_err_t keyid_of(const uint8_t *spki, size_t len, char hex[2 * RP_SHA256_LEN + 1])
{
    uint8_t h[RP_SHA256_LEN];
    rp_err_t err = rp_sha256(spki, len, h);

    return err == RP_OK ? rp_hex_encode(h, sizeof(h), hex, 2 * RP_SHA256_LEN + 1) : err;
}

rp_err_t rp_md_sign(const char *payload, size_t len, EVP_PKEY *const *keys, size_t nkeys,
                    char **envelope)
{
    uint8_t digest[RP_SHA256_LEN], sig[SIG_MAX], spki[RP_PUBKEY_DER_MAX];
    char keyid[2 * RP_SHA256_LEN + 1], *b64 = NULL;
    json_t *sigs = json_array(), *env = NULL;
    size_t sig_len, spki_len;
    rp_err_t err = sigs != NULL ? rp_sha256(payload, len, digest) : RP_ERR_NO_MEMORY;

    *envelope = NULL;
    for (size_t i = 0; err == RP_OK && i < nkeys; i++) {
        err = rp_key_spki(keys[i], spki, sizeof(spki), &spki_len);
        if (err == RP_OK)
            err = keyid_of(spki, spki_len, keyid);
        if (err == RP_OK)
            err = rp_key_sign_digest(keys[i], digest, sig, sizeof(sig), &sig_len);
        if (err == RP_OK)
            err = rp_base64_encode(sig, sig_len, &b64);
        if (err == RP_OK &&
            json_array_append_new(sigs, json_pack("{s:s, s:s}", "keyid", keyid, "sig", b64)) != 0)
            err = RP_ERR_NO_MEMORY;
        free(b64);
        b64 = NULL;
    }
    if (err == RP_OK)
        err = rp_base64_encode((const uint8_t *)payload, len, &b64);
    if (err == RP_OK) {
        env = json_pack("{s:s, s:O}", "signed", b64, "signatures", sigs);
        *envelope = env != NULL ? json_dumps(env, JSON_INDENT(2)) : NULL;
        if (*envelope == NULL)
            err = RP_ERR_NO_MEMORY;
    }
    free(b64);
    json_decref(env);
    json_decref(sigs);
    return err;
}

rp_err_t rp_md_open(const char *envelope, size_t len, const rp_md_role_t *role, json_t **payload)
{
    json_t *env, *sigs, *s;
    const char *signed_b64;
    uint8_t *bytes = NULL, *sig = NULL, digest[RP_SHA256_LEN];
    bool used[RP_MD_KEYS_MAX] = {false};
    size_t nbytes, sig_len, good = 0, i;
    rp_err_t err = RP_OK;

    *payload = NULL;
    if (len > RP_MD_MAX || role->nkeys > RP_MD_KEYS_MAX || role->threshold == 0)
        return len > RP_MD_MAX ? RP_ERR_TOO_LARGE : RP_ERR_INVALID_ARG;
    env = json_loadb(envelope, len, JSON_REJECT_DUPLICATES, NULL);
    signed_b64 = json_string_value(json_object_get(env, "signed"));
    sigs = json_object_get(env, "signatures");
    if (signed_b64 == NULL || !json_is_array(sigs) || json_array_size(sigs) > 2 * RP_MD_KEYS_MAX ||
        rp_base64_decode(signed_b64, strlen(signed_b64), &bytes, &nbytes) != RP_OK ||
        rp_sha256(bytes, nbytes, digest) != RP_OK) {
        json_decref(env);
        free(bytes);
        return RP_ERR_MALFORMED;
    }
    json_array_foreach(sigs, i, s)
    {
        const char *keyid = json_string_value(json_object_get(s, "keyid"));
        const char *sig_b64 = json_string_value(json_object_get(s, "sig"));
        if (keyid == NULL || sig_b64 == NULL)
            continue;
        for (size_t k = 0; k < role->nkeys; k++) {
            char want[2 * RP_SHA256_LEN + 1];
            rp_sig_alg_t alg;
            if (used[k] || keyid_of(role->spki[k], role->spki_len[k], want) != RP_OK ||
                strcmp(want, keyid) != 0 ||
                rp_pubkey_alg(role->spki[k], role->spki_len[k], &alg) != RP_OK ||
                rp_base64_decode(sig_b64, strlen(sig_b64), &sig, &sig_len) != RP_OK)
                continue;
            if (rp_sig_verify(alg, role->spki[k], role->spki_len[k], digest, sig, sig_len) ==
                RP_OK) {
                used[k] = true; /* each key counts once */
                good++;
            }
            free(sig);
            sig = NULL;
            break; /* this signature's keyid was this key's: no other key can match it */
        }
    }
    json_decref(env);
    if (good < role->threshold) {
        free(bytes);
        return RP_ERR_BAD_SIGNATURE;
    }
    *payload = json_loadb((const char *)bytes, nbytes, JSON_REJECT_DUPLICATES, NULL);
    free(bytes);
    if (!json_is_object(*payload)) {
        json_decref(*payload);
        *payload = NULL;
        err = RP_ERR_MALFORMED;
    }
    return err;
}

/* Whether der is the one encoding OpenSSL gives the key (an uncompressed point): one key, one
 * key ID, so that listing a key twice in two encodings cannot count it twice. */
static bool canonical_spki(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)len);
    unsigned char *out = NULL;
    int n = key != NULL && p == der + len ? i2d_PUBKEY(key, &out) : -1;
    bool ok = n > 0 && (size_t)n == len && memcmp(out, der, len) == 0;

    OPENSSL_free(out);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ok;
}

rp_err_t rp_md_role_parse(json_t *j, rp_md_role_t *role)
{
    json_t *keys = json_object_get(j, "keys"), *k;
    json_int_t threshold = json_integer_value(json_object_get(j, "threshold"));
    size_t i;

    memset(role, 0, sizeof(*role));
    if (!json_is_array(keys) || json_array_size(keys) == 0 ||
        json_array_size(keys) > RP_MD_KEYS_MAX || threshold < 1 ||
        (size_t)threshold > json_array_size(keys))
        return RP_ERR_MALFORMED;
    json_array_foreach(keys, i, k)
    {
        const char *b64 = json_string_value(k);
        uint8_t *der = NULL;
        size_t len;
        rp_sig_alg_t alg;
        if (b64 == NULL || rp_base64_decode(b64, strlen(b64), &der, &len) != RP_OK ||
            len > RP_PUBKEY_DER_MAX || rp_pubkey_alg(der, len, &alg) != RP_OK ||
            !canonical_spki(der, len)) {
            free(der);
            return RP_ERR_MALFORMED;
        }
        /* A key listed twice would let one signature count twice toward the threshold. */
        for (size_t seen = 0; seen < i; seen++) {
            if (role->spki_len[seen] == len && memcmp(role->spki[seen], der, len) == 0) {
                free(der);
                return RP_ERR_MALFORMED;
            }
        }
        memcpy(role->spki[i], der, len);
        role->spki_len[i] = len;
        free(der);
    }
    role->nkeys = json_array_size(keys);
    role->threshold = (size_t)threshold;
    return RP_OK;
}

json_t *rp_md_role_json(const uint8_t *const *spki, const size_t *spki_len, size_t n,
                        size_t threshold)
{
    json_t *keys = json_array();
    char *b64;

    for (size_t i = 0; keys != NULL && i < n; i++) {
        if (rp_base64_encode(spki[i], spki_len[i], &b64) != RP_OK) {
            json_decref(keys);
            return NULL;
        }
        json_array_append_new(keys, json_string(b64));
        free(b64);
    }
    return keys != NULL ? json_pack("{s:I, s:o}", "threshold", (json_int_t)threshold, "keys", keys)
                        : NULL;
}

rp_err_t rp_md_peek(const char *envelope, size_t len, json_t **payload)
{
    json_t *j = len <= RP_MD_MAX ? json_loadb(envelope, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    const char *b64 = json_string_value(json_object_get(j, "signed"));
    uint8_t *bytes = NULL;
    size_t n;

    *payload = NULL;
    if (b64 != NULL && rp_base64_decode(b64, strlen(b64), &bytes, &n) == RP_OK)
        *payload = json_loadb((const char *)bytes, n, JSON_REJECT_DUPLICATES, NULL);
    free(bytes);
    json_decref(j);
    if (!json_is_object(*payload)) {
        json_decref(*payload);
        *payload = NULL;
        return RP_ERR_MALFORMED;
    }
    return RP_OK;
}
