/*
 * Attestation evidence: the EAT claims map (encode, strict decode) and its COSE_Sign1 envelope
 * (assemble, verify) with ES256. The Sig_structure is hashed as it is encoded, so signing and
 * verifying need no buffer beyond the evidence itself.
 */
#include <string.h>

#include "rampart/cbor.h"
#include "rampart/eat.h"
#include "rampart/image.h"

#define COSE_SIGN1_TAG 18
#define COSE_HEADER_ALG 1
#define COSE_HEADER_CRIT 2
#define COSE_ALG_ES256 (-7)
/* The protected header Rampart writes: the map {1: -7}, as a byte string's content. */
static const uint8_t protected_es256[] = {0xa1, 0x01, 0x26};
#define MAX_HEADER_PARAMS 16

/* Known claims, for spotting repeats. */
enum {
    SEEN_IAT = 1 << 0,
    SEEN_NONCE = 1 << 1,
    SEEN_UEID = 1 << 2,
    SEEN_DBGSTAT = 1 << 3,
    SEEN_PROFILE = 1 << 4,
    SEEN_BOOTCOUNT = 1 << 5,
    SEEN_COMPONENTS = 1 << 6,
    SEEN_REGISTER = 1 << 7,
    SEEN_DEVELOPMENT = 1 << 8,
};
#define SEEN_REQUIRED (SEEN_NONCE | SEEN_UEID | SEEN_DBGSTAT | SEEN_PROFILE | SEEN_BOOTCOUNT)

/* strlen, but never past max (C11 has no strnlen). */
static size_t bounded_len(const char *s, size_t max)
{
    size_t n = 0;

    while (n < max && s[n] != '\0')
        n++;
    return n;
}

static bool version_valid(const char *s, size_t len)
{
    rp_image_version_t v;

    return len > 0 && len <= RP_EAT_VERSION_MAX && rp_image_version_parse(s, len, &v) == RP_OK;
}

static void put_component(rp_cbor_writer_t *w, const rp_eat_component_t *c)
{
    rp_cbor_put_map(w, c->has_security_counter ? 5 : 4);
    rp_cbor_put_uint(w, RP_EAT_COMP_NAME);
    rp_cbor_put_tstr(w, c->name, strlen(c->name));
    rp_cbor_put_uint(w, RP_EAT_COMP_VERSION);
    rp_cbor_put_tstr(w, c->version, strlen(c->version));
    rp_cbor_put_uint(w, RP_EAT_COMP_DIGEST);
    rp_cbor_put_bstr(w, c->digest, sizeof(c->digest));
    rp_cbor_put_uint(w, RP_EAT_COMP_SIGNER);
    rp_cbor_put_bstr(w, c->signer, sizeof(c->signer));
    if (c->has_security_counter) {
        rp_cbor_put_uint(w, RP_EAT_COMP_SECURITY_COUNTER);
        rp_cbor_put_uint(w, c->security_counter);
    }
}

rp_err_t rp_eat_encode_claims(const rp_eat_claims_t *c, uint8_t *out, size_t cap, size_t *len)
{
    uint8_t ueid[1 + RP_SHA256_LEN];
    rp_cbor_writer_t w;

    if (c == NULL || out == NULL || len == NULL)
        return RP_ERR_INVALID_ARG;
    if (c->nonce_len < RP_EAT_NONCE_MIN || c->nonce_len > RP_EAT_NONCE_MAX ||
        c->ncomponents > RP_EAT_MAX_COMPONENTS ||
        c->debug > RP_EAT_DEBUG_DISABLED_FULLY_PERMANENTLY)
        return RP_ERR_INVALID_ARG;
    for (size_t i = 0; i < c->ncomponents; i++)
        if (!rp_component_name_valid(
                c->components[i].name,
                bounded_len(c->components[i].name, sizeof(c->components[i].name))) ||
            !version_valid(c->components[i].version,
                           bounded_len(c->components[i].version, sizeof(c->components[i].version))))
            return RP_ERR_INVALID_ARG;

    ueid[0] = RP_EAT_UEID_TYPE_RAND;
    memcpy(ueid + 1, c->device_id, RP_SHA256_LEN);
    rp_cbor_writer_init(&w, out, cap);
    /* Keys in deterministic order (RFC 8949 section 4.2.1). */
    rp_cbor_put_map(&w, 6 + (c->has_iat ? 1 : 0) + (c->has_register ? 1 : 0) +
                            (c->development ? 1 : 0));
    if (c->has_iat) {
        rp_cbor_put_uint(&w, RP_EAT_CLAIM_IAT);
        rp_cbor_put_int(&w, c->iat);
    }
    rp_cbor_put_uint(&w, RP_EAT_CLAIM_NONCE);
    rp_cbor_put_bstr(&w, c->nonce, c->nonce_len);
    rp_cbor_put_uint(&w, RP_EAT_CLAIM_UEID);
    rp_cbor_put_bstr(&w, ueid, sizeof(ueid));
    rp_cbor_put_uint(&w, RP_EAT_CLAIM_DBGSTAT);
    rp_cbor_put_uint(&w, (uint64_t)c->debug);
    rp_cbor_put_uint(&w, RP_EAT_CLAIM_PROFILE);
    rp_cbor_put_tstr(&w, RP_EAT_PROFILE, sizeof(RP_EAT_PROFILE) - 1);
    rp_cbor_put_uint(&w, RP_EAT_CLAIM_BOOTCOUNT);
    rp_cbor_put_uint(&w, c->boot_count);
    rp_cbor_put_int(&w, RP_EAT_CLAIM_COMPONENTS);
    rp_cbor_put_array(&w, c->ncomponents);
    for (size_t i = 0; i < c->ncomponents; i++)
        put_component(&w, &c->components[i]);
    if (c->has_register) {
        rp_cbor_put_int(&w, RP_EAT_CLAIM_REGISTER);
        rp_cbor_put_bstr(&w, c->measurement_register, RP_SHA256_LEN);
    }
    if (c->development) {
        if (c->development_expires < 0)
            return RP_ERR_INVALID_ARG;
        rp_cbor_put_int(&w, RP_EAT_CLAIM_DEVELOPMENT);
        rp_cbor_put_uint(&w, (uint64_t)c->development_expires);
    }
    return rp_cbor_writer_finish(&w, len);
}

/* A byte string of exactly len bytes into out. */
static rp_err_t get_fixed_bstr(rp_cbor_reader_t *r, uint8_t *out, size_t len)
{
    const uint8_t *p;
    size_t n;
    rp_err_t err = rp_cbor_get_bstr(r, &p, &n);

    if (err != RP_OK)
        return err;
    if (n != len)
        return RP_ERR_MALFORMED;
    memcpy(out, p, len);
    return RP_OK;
}

static rp_err_t decode_component(rp_cbor_reader_t *r, rp_eat_component_t *c)
{
    unsigned seen = 0;
    const char *s;
    uint64_t n, v;
    int64_t key;
    size_t len;
    rp_err_t err = rp_cbor_get_map(r, &n);

    if (err != RP_OK)
        return err;
    if (n > 16)
        return RP_ERR_MALFORMED;
    for (uint64_t i = 0; i < n; i++) {
        err = rp_cbor_get_int(r, &key);
        if (err != RP_OK)
            return err;
        if (key >= RP_EAT_COMP_NAME && key <= RP_EAT_COMP_SECURITY_COUNTER) {
            if (seen & (1u << key))
                return RP_ERR_MALFORMED;
            seen |= 1u << key;
        }
        switch (key) {
        case RP_EAT_COMP_NAME:
        case RP_EAT_COMP_VERSION:
            err = rp_cbor_get_tstr(r, &s, &len);
            if (err != RP_OK)
                return err;
            if (key == RP_EAT_COMP_NAME ? !rp_component_name_valid(s, len) : !version_valid(s, len))
                return RP_ERR_MALFORMED;
            memcpy(key == RP_EAT_COMP_NAME ? c->name : c->version, s, len);
            (key == RP_EAT_COMP_NAME ? c->name : c->version)[len] = '\0';
            break;
        case RP_EAT_COMP_DIGEST: err = get_fixed_bstr(r, c->digest, RP_SHA256_LEN); break;
        case RP_EAT_COMP_SIGNER: err = get_fixed_bstr(r, c->signer, RP_SHA256_LEN); break;
        case RP_EAT_COMP_SECURITY_COUNTER:
            err = rp_cbor_get_uint(r, &v);
            if (err == RP_OK && v > UINT32_MAX)
                err = RP_ERR_MALFORMED;
            c->security_counter = (uint32_t)v;
            c->has_security_counter = true;
            break;
        default: err = rp_cbor_skip(r); break;
        }
        if (err != RP_OK)
            return err;
    }
    /* Name, version, digest and signer are required. */
    return (seen & 0x1e) == 0x1e ? RP_OK : RP_ERR_MALFORMED;
}

static rp_err_t decode_components(rp_cbor_reader_t *r, rp_eat_claims_t *c)
{
    uint64_t n;
    rp_err_t err = rp_cbor_get_array(r, &n);

    if (err != RP_OK)
        return err;
    if (n > RP_EAT_MAX_COMPONENTS)
        return RP_ERR_MALFORMED;
    for (uint64_t i = 0; i < n; i++) {
        err = decode_component(r, &c->components[i]);
        if (err != RP_OK)
            return err;
    }
    c->ncomponents = (size_t)n;
    return RP_OK;
}

static rp_err_t decode_claim(rp_cbor_reader_t *r, int64_t key, rp_eat_claims_t *c)
{
    uint8_t ueid[1 + RP_SHA256_LEN];
    const uint8_t *p;
    const char *s;
    uint64_t v;
    size_t len;
    rp_err_t err;

    switch (key) {
    case RP_EAT_CLAIM_IAT: c->has_iat = true; return rp_cbor_get_int(r, &c->iat);
    case RP_EAT_CLAIM_NONCE:
        err = rp_cbor_get_bstr(r, &p, &len);
        if (err != RP_OK)
            return err;
        if (len < RP_EAT_NONCE_MIN || len > RP_EAT_NONCE_MAX)
            return RP_ERR_MALFORMED;
        memcpy(c->nonce, p, len);
        c->nonce_len = len;
        return RP_OK;
    case RP_EAT_CLAIM_UEID:
        err = get_fixed_bstr(r, ueid, sizeof(ueid));
        if (err != RP_OK)
            return err;
        if (ueid[0] != RP_EAT_UEID_TYPE_RAND)
            return RP_ERR_MALFORMED;
        memcpy(c->device_id, ueid + 1, RP_SHA256_LEN);
        return RP_OK;
    case RP_EAT_CLAIM_DBGSTAT:
        err = rp_cbor_get_uint(r, &v);
        if (err == RP_OK && v > RP_EAT_DEBUG_DISABLED_FULLY_PERMANENTLY)
            return RP_ERR_MALFORMED;
        c->debug = (rp_eat_debug_t)v;
        return err;
    case RP_EAT_CLAIM_PROFILE:
        err = rp_cbor_get_tstr(r, &s, &len);
        if (err != RP_OK)
            return err;
        if (len != sizeof(RP_EAT_PROFILE) - 1 || memcmp(s, RP_EAT_PROFILE, len) != 0)
            return RP_ERR_UNSUPPORTED; /* claims defined by another profile */
        return RP_OK;
    case RP_EAT_CLAIM_BOOTCOUNT: return rp_cbor_get_uint(r, &c->boot_count);
    case RP_EAT_CLAIM_COMPONENTS: return decode_components(r, c);
    case RP_EAT_CLAIM_REGISTER:
        c->has_register = true;
        return get_fixed_bstr(r, c->measurement_register, RP_SHA256_LEN);
    case RP_EAT_CLAIM_DEVELOPMENT:
        err = rp_cbor_get_uint(r, &v);
        if (err == RP_OK && v > (uint64_t)INT64_MAX)
            return RP_ERR_MALFORMED;
        c->development = true;
        c->development_expires = (int64_t)v;
        return err;
    default: return rp_cbor_skip(r);
    }
}

static unsigned seen_bit(int64_t key)
{
    switch (key) {
    case RP_EAT_CLAIM_IAT: return SEEN_IAT;
    case RP_EAT_CLAIM_NONCE: return SEEN_NONCE;
    case RP_EAT_CLAIM_UEID: return SEEN_UEID;
    case RP_EAT_CLAIM_DBGSTAT: return SEEN_DBGSTAT;
    case RP_EAT_CLAIM_PROFILE: return SEEN_PROFILE;
    case RP_EAT_CLAIM_BOOTCOUNT: return SEEN_BOOTCOUNT;
    case RP_EAT_CLAIM_COMPONENTS: return SEEN_COMPONENTS;
    case RP_EAT_CLAIM_REGISTER: return SEEN_REGISTER;
    case RP_EAT_CLAIM_DEVELOPMENT: return SEEN_DEVELOPMENT;
    default: return 0;
    }
}

rp_err_t rp_eat_decode_claims(const uint8_t *in, size_t len, rp_eat_claims_t *c)
{
    rp_cbor_reader_t r;
    rp_cbor_item_t key;
    unsigned seen = 0, bit;
    uint64_t n;
    int64_t k;
    rp_err_t err;

    if (in == NULL || c == NULL)
        return RP_ERR_INVALID_ARG;
    memset(c, 0, sizeof(*c));
    rp_cbor_reader_init(&r, in, len);
    err = rp_cbor_get_map(&r, &n);
    if (err == RP_OK && n > 64)
        err = RP_ERR_MALFORMED;
    for (uint64_t i = 0; err == RP_OK && i < n; i++) {
        err = rp_cbor_next(&r, &key);
        if (err != RP_OK)
            break;
        if (key.type == RP_CBOR_TSTR) { /* a claim named by text: none of ours */
            err = rp_cbor_skip(&r);
            continue;
        }
        if ((key.type != RP_CBOR_UINT && key.type != RP_CBOR_NEGINT) || key.u > INT64_MAX) {
            err = RP_ERR_MALFORMED;
            break;
        }
        k = key.type == RP_CBOR_UINT ? (int64_t)key.u : -1 - (int64_t)key.u;
        bit = seen_bit(k);
        if (seen & bit) {
            err = RP_ERR_MALFORMED;
            break;
        }
        seen |= bit;
        err = decode_claim(&r, k, c);
    }
    if (err == RP_OK && !rp_cbor_at_end(&r))
        err = RP_ERR_MALFORMED;
    if (err == RP_OK && (seen & SEEN_REQUIRED) != SEEN_REQUIRED)
        err = RP_ERR_MALFORMED;
    if (err != RP_OK)
        memset(c, 0, sizeof(*c));
    return err;
}

/* SHA-256 of ["Signature1", protected, h'', payload], encoded as it is hashed. */
static rp_err_t tbs_digest(const uint8_t *prot, size_t prot_len, const uint8_t *payload, size_t len,
                           uint8_t digest[RP_SHA256_LEN])
{
    uint8_t head1[32], head2[16];
    rp_cbor_writer_t w1, w2;
    size_t n1, n2;
    rp_sha256_t sha;
    rp_err_t err;

    rp_cbor_writer_init(&w1, head1, sizeof(head1));
    rp_cbor_put_array(&w1, 4);
    rp_cbor_put_tstr(&w1, "Signature1", 10);
    rp_cbor_put_bstr_head(&w1, prot_len);
    rp_cbor_writer_init(&w2, head2, sizeof(head2));
    rp_cbor_put_bstr(&w2, NULL, 0); /* external_aad: empty */
    rp_cbor_put_bstr_head(&w2, len);
    err = rp_cbor_writer_finish(&w1, &n1);
    if (err == RP_OK)
        err = rp_cbor_writer_finish(&w2, &n2);
    if (err == RP_OK)
        err = rp_sha256_init(&sha);
    if (err != RP_OK)
        return err;
    err = rp_sha256_update(&sha, head1, n1);
    if (err == RP_OK)
        err = rp_sha256_update(&sha, prot, prot_len);
    if (err == RP_OK)
        err = rp_sha256_update(&sha, head2, n2);
    if (err == RP_OK)
        err = rp_sha256_update(&sha, payload, len);
    if (err != RP_OK) {
        rp_wipe(&sha, sizeof(sha));
        return err;
    }
    return rp_sha256_final(&sha, digest);
}

rp_err_t rp_cose_sign1_tbs_digest(const uint8_t *payload, size_t len, uint8_t digest[RP_SHA256_LEN])
{
    if ((payload == NULL && len > 0) || digest == NULL)
        return RP_ERR_INVALID_ARG;
    return tbs_digest(protected_es256, sizeof(protected_es256), payload, len, digest);
}

rp_err_t rp_cose_sign1_encode(const uint8_t *payload, size_t len,
                              const uint8_t sig[RP_ES256_SIG_LEN], uint8_t *out, size_t cap,
                              size_t *out_len)
{
    rp_cbor_writer_t w;

    if ((payload == NULL && len > 0) || sig == NULL || out == NULL || out_len == NULL)
        return RP_ERR_INVALID_ARG;
    rp_cbor_writer_init(&w, out, cap);
    rp_cbor_put_tag(&w, COSE_SIGN1_TAG);
    rp_cbor_put_array(&w, 4);
    rp_cbor_put_bstr(&w, protected_es256, sizeof(protected_es256));
    rp_cbor_put_map(&w, 0);
    rp_cbor_put_bstr(&w, payload, len);
    rp_cbor_put_bstr(&w, sig, RP_ES256_SIG_LEN);
    return rp_cbor_writer_finish(&w, out_len);
}

/* The protected header must say ES256 and nothing we would have to understand. */
static rp_err_t check_protected(const uint8_t *prot, size_t len)
{
    rp_cbor_reader_t r;
    bool have_alg = false;
    uint64_t n;
    int64_t key, alg;
    rp_err_t err;

    rp_cbor_reader_init(&r, prot, len);
    err = rp_cbor_get_map(&r, &n);
    if (err == RP_OK && n > MAX_HEADER_PARAMS)
        err = RP_ERR_MALFORMED;
    for (uint64_t i = 0; err == RP_OK && i < n; i++) {
        err = rp_cbor_get_int(&r, &key);
        if (err != RP_OK)
            break;
        if (key == COSE_HEADER_ALG) {
            if (have_alg)
                return RP_ERR_MALFORMED;
            err = rp_cbor_get_int(&r, &alg);
            if (err == RP_OK && alg != COSE_ALG_ES256)
                return RP_ERR_UNSUPPORTED;
            have_alg = true;
        } else if (key == COSE_HEADER_CRIT) {
            return RP_ERR_UNSUPPORTED; /* critical parameters we cannot honour */
        } else {
            err = rp_cbor_skip(&r);
        }
    }
    if (err == RP_OK && (!rp_cbor_at_end(&r) || !have_alg))
        err = RP_ERR_MALFORMED;
    return err;
}

rp_err_t rp_cose_sign1_verify(const uint8_t *msg, size_t len, const uint8_t *spki, size_t spki_len,
                              const uint8_t **payload, size_t *payload_len)
{
    const uint8_t *prot, *body, *sig;
    size_t prot_len, body_len, sig_len;
    uint8_t digest[RP_SHA256_LEN];
    rp_cbor_reader_t r, saved;
    rp_cbor_item_t it;
    uint64_t n;
    rp_err_t err;

    if (msg == NULL || spki == NULL || payload == NULL || payload_len == NULL)
        return RP_ERR_INVALID_ARG;
    *payload = NULL;
    *payload_len = 0;
    if (len > RP_EAT_MAX_SIZE)
        return RP_ERR_TOO_LARGE;
    rp_cbor_reader_init(&r, msg, len);
    saved = r;
    err = rp_cbor_next(&r, &it);
    if (err != RP_OK)
        return err;
    if (it.type == RP_CBOR_TAG) {
        if (it.u != COSE_SIGN1_TAG)
            return RP_ERR_MALFORMED;
    } else {
        r = saved; /* untagged COSE_Sign1 is allowed */
    }
    err = rp_cbor_get_array(&r, &n);
    if (err == RP_OK && n != 4)
        err = RP_ERR_MALFORMED;
    if (err == RP_OK)
        err = rp_cbor_get_bstr(&r, &prot, &prot_len);
    if (err == RP_OK)
        err = check_protected(prot, prot_len);
    if (err == RP_OK) {
        saved = r;
        err = rp_cbor_get_map(&r, &n); /* unprotected: must be a map; nothing in it is used */
        r = saved;
    }
    if (err == RP_OK)
        err = rp_cbor_skip(&r);
    if (err == RP_OK)
        err = rp_cbor_get_bstr(&r, &body, &body_len); /* a detached (nil) payload is refused */
    if (err == RP_OK)
        err = rp_cbor_get_bstr(&r, &sig, &sig_len);
    if (err == RP_OK && (sig_len != RP_ES256_SIG_LEN || !rp_cbor_at_end(&r)))
        err = RP_ERR_MALFORMED;
    if (err == RP_OK)
        err = tbs_digest(prot, prot_len, body, body_len, digest);
    if (err != RP_OK)
        return err;
    err = rp_sig_verify(RP_SIG_ES256, spki, spki_len, digest, sig, sig_len);
    if (err == RP_ERR_UNSUPPORTED || err == RP_ERR_CRYPTO || err == RP_ERR_BAD_KEY)
        return err;
    if (err != RP_OK)
        return RP_ERR_BAD_SIGNATURE;
    *payload = body;
    *payload_len = body_len;
    return RP_OK;
}

rp_err_t rp_eat_verify(const uint8_t *msg, size_t len, const uint8_t *spki, size_t spki_len,
                       rp_eat_claims_t *claims)
{
    const uint8_t *payload;
    size_t payload_len;
    rp_err_t err;

    if (claims == NULL)
        return RP_ERR_INVALID_ARG;
    memset(claims, 0, sizeof(*claims));
    err = rp_cose_sign1_verify(msg, len, spki, spki_len, &payload, &payload_len);
    if (err != RP_OK)
        return err;
    return rp_eat_decode_claims(payload, payload_len, claims);
}
