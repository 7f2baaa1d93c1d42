/*
 * The secure attestation service, a secure partition linked apart from the boot stage
 * (mcu/attest/start.c starts it): the device key, and the one non-secure-callable entry point
 * (rp_attest_entry, reached through its CMSE veneer) that returns evidence over the caller's
 * nonce with what the boot stage measured (the boot record), in the format docs/protocol.md
 * describes: the portable core encodes the claims and the COSE_Sign1 (core/src/eat.c), this file
 * only signs, with Mbed TLS's deterministic ECDSA (RFC 6979: the board has no entropy source).
 *
 * The device key is derived at boot from the device secret, 32 random bytes the factory wrote once
 * into a sector of secure flash (RP_MCU_DEVSECRET_OFF; scripts/mcu-run does, when it creates a
 * flash file), as a real part derives its keys from a hardware unique key only secure code can
 * read. The private scalar exists only during a derivation or a signature and is wiped after
 * it; the public key and the device ID (its SPKI's SHA-256) stay in secure RAM. The non-secure
 * side can reach neither the sector nor this RAM: the SAU leaves both secure (mcu/boot/tz.c).
 */
#include <arm_cmse.h>
#include <string.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/hmac_drbg.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include "attest.h"
#include "crypto_mbedtls.h"
#include "rampart/eat.h"
#include "rp_mcu_attest.h"
#include "rp_mcu_handoff.h"
#include "semihost.h"

/* The device secret's sector: the magic, then the 32 secret bytes. */
#define SECRET_MAGIC 0x53445052u /* "RPDS" */
#define SECRET_LEN 32
#define SECRET_WORDS ((const volatile uint32_t *)(RP_MCU_FLASH_BASE + RP_MCU_DEVSECRET_OFF))
/* What the key derivation hashes with the secret: a new label is a new key. */
static const char key_label[] = "rampart mcu attestation key v1";
#define CLAIMS_MAX 512

_Static_assert(RP_MCU_NONCE_MIN == RP_EAT_NONCE_MIN && RP_MCU_NONCE_MAX == RP_EAT_NONCE_MAX,
               "rp_mcu_attest.h's nonce bounds are the EAT's");

static bool have_key;
static uint8_t spki[RP_MBEDTLS_P256_SPKI_LEN];
static uint8_t device_id[RP_SHA256_LEN];
static volatile bool busy;

/* Copies of what the non-secure caller handed over, and the work buffers: all secure RAM. */
static rp_eat_claims_t claims;
static uint8_t claims_buf[CLAIMS_MAX];
static uint8_t evidence[RP_MCU_ATTEST_MAX];

/* The secret, if the factory wrote one. OUT: secret[0..SECRET_LEN), which the caller wipes. */
static bool read_secret(uint8_t secret[SECRET_LEN])
{
    uint32_t any = 0, none = 0xFFFFFFFFu;

    if (SECRET_WORDS[0] != SECRET_MAGIC)
        return false;
    for (unsigned i = 0; i < SECRET_LEN / 4; i++) {
        uint32_t w = SECRET_WORDS[1 + i];
        memcpy(secret + 4 * i, &w, 4);
        any |= w;
        none &= w;
    }
    return any != 0 && none != 0xFFFFFFFFu; /* all zero or all erased: not a secret */
}

/*
 * The device key's private scalar: HMAC-SHA256(secret, label || i) for the first i that gives a
 * valid P-256 scalar (1 <= d < n; the first does but for a chance of 2^-32). OUT: *grp loaded,
 * *d; a blinding generator seeded from the secret for the scalar multiplications.
 */
static rp_err_t derive_key(mbedtls_ecp_group *grp, mbedtls_mpi *d, mbedtls_hmac_drbg_context *blind)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    uint8_t secret[SECRET_LEN], msg[sizeof(key_label)], dbytes[RP_SHA256_LEN];
    rp_err_t err = RP_ERR_CRYPTO;

    if (!read_secret(secret)) {
        mbedtls_platform_zeroize(secret, sizeof(secret));
        return RP_ERR_NOT_FOUND;
    }
    if (md == NULL || mbedtls_ecp_group_load(grp, MBEDTLS_ECP_DP_SECP256R1) != 0)
        goto out;
    memcpy(msg, key_label, sizeof(key_label) - 1);
    for (uint8_t i = 0; i < 8; i++) {
        msg[sizeof(key_label) - 1] = i;
        if (mbedtls_md_hmac(md, secret, sizeof(secret), msg, sizeof(msg), dbytes) != 0 ||
            mbedtls_mpi_read_binary(d, dbytes, sizeof(dbytes)) != 0)
            goto out;
        if (mbedtls_ecp_check_privkey(grp, d) == 0) {
            err = RP_OK;
            break;
        }
    }
    if (err == RP_OK && (mbedtls_hmac_drbg_seed_buf(blind, md, dbytes, sizeof(dbytes)) != 0 ||
                         mbedtls_hmac_drbg_update_ret(blind, (const uint8_t *)"blinding", 8) != 0))
        err = RP_ERR_CRYPTO;
out:
    mbedtls_platform_zeroize(secret, sizeof(secret));
    mbedtls_platform_zeroize(dbytes, sizeof(dbytes));
    return err;
}

/* The public key as a DER SubjectPublicKeyInfo (named curve, uncompressed point). */
static rp_err_t public_key(mbedtls_ecp_group *grp, const mbedtls_mpi *d,
                           mbedtls_hmac_drbg_context *blind)
{
    mbedtls_ecp_point q;
    uint8_t point[RP_P256_POINT_LEN] = {0x04}; /* uncompressed: 0x04, x, y */
    rp_err_t err = RP_ERR_CRYPTO;

    /* ecp_mul gives the point normalised (Z = 1; 0 only at infinity, which a valid d never
     * gives), so x and y are its coordinates as they are. */
    mbedtls_ecp_point_init(&q);
    if (mbedtls_ecp_mul(grp, &q, d, &grp->G, mbedtls_hmac_drbg_random, blind) != 0 ||
        mbedtls_mpi_cmp_int(&q.Z, 1) != 0 ||
        mbedtls_mpi_write_binary(&q.X, point + 1, RP_P256_POINT_LEN / 2) != 0 ||
        mbedtls_mpi_write_binary(&q.Y, point + 1 + RP_P256_POINT_LEN / 2, RP_P256_POINT_LEN / 2) !=
            0)
        goto out;
    err = rp_mbedtls_p256_spki(point, spki);
    if (err == RP_OK)
        err = rp_sha256(spki, sizeof(spki), device_id);
out:
    mbedtls_ecp_point_free(&q);
    return err;
}

void rp_attest_init(void)
{
    mbedtls_ecp_group grp;
    mbedtls_mpi d;
    mbedtls_hmac_drbg_context blind;
    char line[40 + 2 * RP_MBEDTLS_P256_SPKI_LEN];
    rp_err_t err;

    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    mbedtls_hmac_drbg_init(&blind);
    err = derive_key(&grp, &d, &blind);
    if (err == RP_OK)
        err = public_key(&grp, &d, &blind);
    mbedtls_hmac_drbg_free(&blind);
    mbedtls_mpi_free(&d); /* zeroizes */
    mbedtls_ecp_group_free(&grp);
    if (err == RP_ERR_NOT_FOUND) {
        rp_sh_out("boot: no device secret provisioned: the attestation service is off\n");
        return;
    }
    if (err != RP_OK) {
        rp_sh_out("boot: cannot derive the device key: the attestation service is off\n");
        return;
    }
    have_key = true;
    line[0] = 0;
    strcat(line, "boot: attestation key ");
    rp_sh_hex(line, spki, sizeof(spki));
    strcat(line, "\n");
    rp_sh_out(line);
}

/* ES256 over digest with the device key. OUT: sig, raw r || s. */
static rp_err_t sign(const uint8_t digest[RP_SHA256_LEN], uint8_t sig[RP_ES256_SIG_LEN])
{
    mbedtls_ecp_group grp;
    mbedtls_mpi d, r, s;
    mbedtls_hmac_drbg_context blind;
    rp_err_t err;

    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    mbedtls_hmac_drbg_init(&blind);
    err = derive_key(&grp, &d, &blind);
    /* Blinding inside from its own deterministic generator (f_rng_blind NULL). */
    if (err == RP_OK &&
        (mbedtls_ecdsa_sign_det_ext(&grp, &r, &s, &d, digest, RP_SHA256_LEN, MBEDTLS_MD_SHA256,
                                    NULL, NULL) != 0 ||
         mbedtls_mpi_write_binary(&r, sig, RP_ES256_SIG_LEN / 2) != 0 ||
         mbedtls_mpi_write_binary(&s, sig + RP_ES256_SIG_LEN / 2, RP_ES256_SIG_LEN / 2) != 0))
        err = RP_ERR_CRYPTO;
    mbedtls_hmac_drbg_free(&blind);
    mbedtls_mpi_free(&d);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    mbedtls_ecp_group_free(&grp);
    return err;
}

/*
 * The claims: the nonce, the device ID, and the one component the boot stage started (the
 * firmware in slot 0, as it measured it), with the measurement register over it, as the Linux
 * device's agent lists its components. No boot counter and no clock on this board: bootcount 0
 * and no iat. Debug is not locked on the emulated board: dbgstat 0 (enabled).
 */
static rp_err_t make_evidence(const uint8_t *nonce, size_t nonce_len, size_t *len)
{
    uint8_t chain[2 * RP_SHA256_LEN] = {0}, digest[RP_SHA256_LEN], sig[RP_ES256_SIG_LEN];
    rp_eat_component_t *fw = &claims.components[0];
    const rp_boot_record_t *rec = &RP_MCU_HANDOFF->record;
    size_t clen;
    rp_err_t err;

    if (rec->magic != RP_BOOT_RECORD_MAGIC)
        return RP_ERR_CRYPTO;
    memset(&claims, 0, sizeof(claims));
    memcpy(claims.nonce, nonce, nonce_len);
    claims.nonce_len = nonce_len;
    memcpy(claims.device_id, device_id, RP_SHA256_LEN);
    claims.debug = RP_EAT_DEBUG_ENABLED;
    claims.boot_count = 0;
    claims.ncomponents = 1;
    memcpy(fw->name, "firmware", sizeof("firmware"));
    err = rp_image_version_format(&rec->version, fw->version, sizeof(fw->version));
    if (err != RP_OK)
        return err;
    memcpy(fw->digest, rec->digest, RP_SHA256_LEN);
    memcpy(fw->signer, rec->signer, RP_SHA256_LEN);
    fw->has_security_counter = true;
    fw->security_counter = rec->security_counter;
    /* The register: SHA-256 chained over the components' digests from zero (docs/protocol.md). */
    memcpy(chain + RP_SHA256_LEN, fw->digest, RP_SHA256_LEN);
    claims.has_register = true;
    err = rp_sha256(chain, sizeof(chain), claims.measurement_register);
    if (err == RP_OK)
        err = rp_eat_encode_claims(&claims, claims_buf, sizeof(claims_buf), &clen);
    if (err == RP_OK)
        err = rp_cose_sign1_tbs_digest(claims_buf, clen, digest);
    if (err == RP_OK)
        err = sign(digest, sig);
    if (err == RP_OK)
        err = rp_cose_sign1_encode(claims_buf, clen, sig, evidence, sizeof(evidence), len);
    return err;
}

/* The CMSE flags for checking the caller's memory: non-secure, and unprivileged if it is. */
static int caller_flags(void)
{
    uint32_t control_ns, ipsr;

    __asm__ volatile("mrs %0, control_ns" : "=r"(control_ns));
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    return CMSE_NONSECURE | (ipsr == 0 && (control_ns & 1u) ? CMSE_MPU_UNPRIV : 0);
}

__attribute__((cmse_nonsecure_entry)) rp_err_t
rp_attest_entry(const uint8_t *nonce, size_t nonce_len, uint8_t *out, size_t *len)
{
    uint8_t n[RP_EAT_NONCE_MAX];
    const int flags = caller_flags();
    size_t cap, ev_len = 0;
    rp_err_t err;

    /* Every pointer must be the caller's own non-secure memory, whole, before it is touched. */
    if (len == NULL ||
        cmse_check_address_range(len, sizeof(*len), flags | CMSE_MPU_READWRITE) == NULL)
        return RP_ERR_DENIED;
    if (nonce_len < RP_EAT_NONCE_MIN || nonce_len > RP_EAT_NONCE_MAX)
        return RP_ERR_INVALID_ARG;
    if (nonce == NULL || cmse_check_address_range((void *)(uintptr_t)nonce, nonce_len,
                                                  flags | CMSE_MPU_READ) == NULL)
        return RP_ERR_DENIED;
    cap = *len; /* read once */
    if (cap > RP_MCU_ATTEST_MAX)
        cap = RP_MCU_ATTEST_MAX; /* never written past this, whatever the caller says */
    /* cap 0 asks only for the length (RP_ERR_BUFFER_TOO_SMALL, *len set): out is not touched */
    if (cap > 0 &&
        (out == NULL || cmse_check_address_range(out, cap, flags | CMSE_MPU_READWRITE) == NULL))
        return RP_ERR_DENIED;
    if (!have_key)
        return RP_ERR_NOT_FOUND;
    if (busy)
        return RP_ERR_BUSY;
    busy = true;
    memcpy(n, nonce, nonce_len); /* the copy is what is signed: the caller cannot change it */
    err = make_evidence(n, nonce_len, &ev_len);
    if (err == RP_OK && ev_len > cap)
        err = RP_ERR_BUFFER_TOO_SMALL;
    if (err == RP_OK)
        memcpy(out, evidence, ev_len);
    *len = err == RP_OK || err == RP_ERR_BUFFER_TOO_SMALL ? ev_len : 0;
    mbedtls_platform_zeroize(evidence, sizeof(evidence));
    rp_stack_report(RP_MCU_HANDOFF->stack_low, RP_MCU_HANDOFF->stack_top,
                    ", with the attestation service\n");
    busy = false;
    return err;
}
