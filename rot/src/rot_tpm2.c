/*
 * The TPM 2.0 root of trust. The identity key is an ECDSA P-256 key created inside the TPM under
 * the owner hierarchy's primary key by the tpm2-openssl provider; only its TPM-wrapped blob
 * ("TSS2 PRIVATE KEY") is stored, and every signature, CSR and TLS handshake runs inside the TPM
 * through the provider. Counters are TPM NV counters and measurements extend PCR 23, through
 * ESAPI directly.
 *
 * A TPM reached without a resource manager (swtpm's socket, /dev/tpm0) serves one connection at a
 * time, so the provider's connection is released before an ESAPI operation and made again when the
 * key is next needed. The EVP_PKEY from rp_rot_pkey() is therefore only valid until the next
 * counter or measurement call. A connection is its process's: a process that forks a child which
 * uses the TPM lets go of its own first (rp_rot_idle), since /dev/tpm0 admits one open connection
 * and a child's inherited copy would keep it open; a forked child never uses nor releases one it
 * inherits anyway (provider_drop_inherited), it makes its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "rampart/bytes.h"
#include "rampart/file.h"
#include "rampart/log.h"
#include "rot_impl.h"

/* Persisted TPM resources (never renumber): NV indices in the owner range, and the PCR. */
#define NV_COUNTER_BASE 0x01525000u /* + rp_rot_counter_t */
#define NV_SECCNT_BASE 0x01525100u  /* + the security counter's index */
#define MEASURE_PCR 23              /* "application support": not used by firmware or the OS */
#define KEY_FILE_MAX 8192
/* The transient objects' handles (TPM2_TRANSIENT_FIRST's macro shifts an int into its sign bit). */
#define TRANSIENT_FIRST 0x80000000u
#define TRANSIENT_LAST 0x80fffffeu
/* The objects loading the key takes at once: the provider's parent (the owner hierarchy's primary,
 * made again each time) and the key. */
#define KEY_LOAD_OBJECTS 2

struct tpm2 {
    char tcti[256]; /* empty: the TSS default (resource manager or device) */
    OSSL_PROVIDER *tpm2_provider;
    OSSL_PROVIDER *default_provider;
    pid_t owner; /* the process whose TPM connection the provider holds */
};

static void log_tss(const char *what, TSS2_RC rc)
{
    rp_log_error("TPM: %s: %s", what, Tss2_RC_Decode(rc));
}

/* Open a provider context in rot->libctx. */
static rp_err_t provider_load(rp_rot_t *rot)
{
    struct tpm2 *t = rot->impl;

    if (rot->libctx != NULL)
        return RP_OK;
    /* The provider reads its TCTI from the environment when it is loaded. */
    if (t->tcti[0] != '\0' && setenv("TPM2OPENSSL_TCTI", t->tcti, 1) != 0)
        return RP_ERR_NO_MEMORY;
    rot->libctx = OSSL_LIB_CTX_new();
    if (rot->libctx == NULL)
        return RP_ERR_NO_MEMORY;
    t->owner = getpid(); /* this process's from here, a failed load's half too (provider_release) */
    t->tpm2_provider = OSSL_PROVIDER_load(rot->libctx, "tpm2");
    t->default_provider = OSSL_PROVIDER_load(rot->libctx, "default");
    if (t->tpm2_provider == NULL || t->default_provider == NULL) {
        rp_log_error("TPM: cannot load the tpm2 OpenSSL provider (is tpm2-openssl installed, "
                     "and the TPM reachable%s%s?)",
                     t->tcti[0] ? " at " : "", t->tcti);
        ERR_clear_error();
        return RP_ERR_IO;
    }
    rot->propq = "?provider=tpm2";
    return RP_OK;
}

/*
 * A forked child whose parent did not let go of its provider first (rp_rot_idle, which the
 * monitor calls before its install child's fork) holds a copy of it: the parent's TPM connection
 * and the key the parent has loaded in the TPM. Releasing that copy would
 * flush the parent's key from the TPM (its next signature then fails) and, over a connection that
 * stays open (/dev/tpmrm0), write on the parent's connection, where a child killed mid-command
 * leaves a reply for the parent to read. The child drops its copy unused, without a word to the
 * TPM (what it holds is memory only, and ends with it), and makes its own connection when it
 * needs one.
 */
static void provider_drop_inherited(rp_rot_t *rot)
{
    struct tpm2 *t = rot->impl;

    if (t == NULL || rot->libctx == NULL || t->owner == getpid())
        return;
    rot->pkey = NULL;
    rot->libctx = NULL;
    t->tpm2_provider = t->default_provider = NULL;
}

/* Drop the key and the provider, which closes the provider's TPM connection. */
static void provider_release(rp_rot_t *rot)
{
    struct tpm2 *t = rot->impl;

    provider_drop_inherited(rot);
    EVP_PKEY_free(rot->pkey);
    rot->pkey = NULL;
    if (t != NULL) {
        if (t->tpm2_provider != NULL)
            OSSL_PROVIDER_unload(t->tpm2_provider);
        if (t->default_provider != NULL)
            OSSL_PROVIDER_unload(t->default_provider);
        t->tpm2_provider = t->default_provider = NULL;
    }
    OSSL_LIB_CTX_free(rot->libctx);
    rot->libctx = NULL;
}

static bool no_room_for_key(rp_rot_t *rot, UINT32 *loaded);

static rp_err_t load_key(rp_rot_t *rot)
{
    char path[PATH_MAX];
    uint8_t *pem;
    size_t len;
    BIO *bio;
    rp_err_t err;

    provider_drop_inherited(rot);
    if (rot->pkey != NULL)
        return RP_OK;
    err = provider_load(rot);
    if (err != RP_OK)
        return err; /* provider_load() said why */
    err = rp_rot_path(path, sizeof(path), rot->dir, ROT_TPM2_KEY_FILE);
    if (err != RP_OK)
        return err;
    err = rp_read_file(path, KEY_FILE_MAX, &pem, &len);
    if (err == RP_ERR_TOO_LARGE)
        rp_log_error("%s is corrupt (larger than %d bytes): it should hold the identity key as a "
                     "TPM-wrapped blob (TSS2 PRIVATE KEY)",
                     path, KEY_FILE_MAX);
    else if (err != RP_OK)
        rp_log_error("%s cannot be read: %s", path, rp_strerror(err));
    if (err != RP_OK)
        return err == RP_ERR_TOO_LARGE ? RP_ERR_BAD_KEY : err;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio != NULL)
        rot->pkey = PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, rot->libctx, rot->propq);
    BIO_free(bio);
    free(pem); /* a TPM-wrapped blob: useless outside this TPM */
    if (rot->pkey == NULL) {
        char why[256];
        UINT32 loaded;
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof(why));
        ERR_clear_error();
        /* A full TPM and a bad key file fail alike in the provider: the TPM tells them apart. */
        if (no_room_for_key(rot, &loaded)) {
            rp_log_error("the TPM has no room to load the identity key: %lu object(s) are loaded "
                         "in it, which processes that died with them left there (a TPM without a "
                         "resource manager keeps them until it is reset). %s is not at fault: do "
                         "not provision again (a new identity). rampart-monitor flushes them as "
                         "it starts; stop any other program using the TPM, then start it",
                         (unsigned long)loaded, path);
            return RP_ERR_NO_MEMORY;
        }
        rp_log_error("%s: the TPM cannot load the identity key from it (corrupt, or wrapped by "
                     "another TPM): %s",
                     path, why);
        return RP_ERR_BAD_KEY;
    }
    return RP_OK;
}

static rp_err_t tpm2_ensure_key(rp_rot_t *rot)
{
    return load_key(rot);
}

static rp_err_t esys_open(rp_rot_t *rot, ESYS_CONTEXT **esys, TSS2_TCTI_CONTEXT **tcti)
{
    struct tpm2 *t = rot->impl;
    TSS2_RC rc;

    provider_release(rot); /* one connection at a time */
    *esys = NULL;
    rc = Tss2_TctiLdr_Initialize(t->tcti[0] ? t->tcti : NULL, tcti);
    if (rc != TSS2_RC_SUCCESS) {
        log_tss("cannot reach the TPM", rc);
        return RP_ERR_IO;
    }
    rc = Esys_Initialize(esys, *tcti, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        log_tss("cannot start a session with the TPM", rc);
        Tss2_TctiLdr_Finalize(tcti);
        return RP_ERR_IO;
    }
    return RP_OK;
}

static void esys_close(ESYS_CONTEXT **esys, TSS2_TCTI_CONTEXT **tcti)
{
    Esys_Finalize(esys);
    Tss2_TctiLdr_Finalize(tcti);
}

static rp_err_t tpm2_create(const rp_rot_config_t *cfg)
{
    rp_rot_t tmp = {0};
    struct tpm2 t = {0};
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    rp_atomic_file_t f;
    char path[PATH_MAX];
    BIO *bio = NULL;
    char *data;
    long len;
    rp_err_t err;

    if (cfg->tcti != NULL &&
        snprintf(t.tcti, sizeof(t.tcti), "%s", cfg->tcti) >= (int)sizeof(t.tcti))
        return RP_ERR_INVALID_ARG;
    tmp.impl = &t;
    err = provider_load(&tmp);
    if (err == RP_OK) {
        ctx = EVP_PKEY_CTX_new_from_name(tmp.libctx, "EC", "provider=tpm2");
        if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
            EVP_PKEY_CTX_set_group_name(ctx, "P-256") != 1 || EVP_PKEY_generate(ctx, &key) != 1) {
            rp_log_error("TPM: cannot create the identity key: %s",
                         ERR_error_string(ERR_peek_last_error(), NULL));
            err = RP_ERR_CRYPTO;
        }
    }
    if (err == RP_OK) {
        bio = BIO_new(BIO_s_mem());
        if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
            err = RP_ERR_CRYPTO;
    }
    if (err == RP_OK) {
        len = BIO_get_mem_data(bio, &data);
        err = rp_rot_path(path, sizeof(path), cfg->state_dir, ROT_TPM2_KEY_FILE);
        if (err == RP_OK)
            err = rp_atomic_begin(&f, path, 0600, 1);
        if (err == RP_OK) {
            err = rp_atomic_write(&f, data, (size_t)len);
            if (err == RP_OK)
                err = rp_atomic_commit(&f, 1);
            else
                rp_atomic_abort(&f);
        }
    }
    BIO_free(bio);
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(ctx);
    provider_release(&tmp);
    ERR_clear_error();
    return err;
}

static rp_err_t tpm2_reclaim(rp_rot_t *rot);

static rp_err_t tpm2_open(rp_rot_t *rot, const rp_rot_config_t *cfg)
{
    struct tpm2 *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return RP_ERR_NO_MEMORY;
    rot->impl = t;
    if (cfg->tcti != NULL &&
        snprintf(t->tcti, sizeof(t->tcti), "%s", cfg->tcti) >= (int)sizeof(t->tcti))
        return RP_ERR_INVALID_ARG;
    /* The TSS logs every expected miss (an NV index not yet defined) as an error otherwise. */
    setenv("TSS2_LOG", "all+NONE", 0);
    /* The TPM's one user has loaded nothing yet: whatever is loaded, a process of an earlier run
     * left as it died (a monitor killed with its key loaded, its install child); unflushed, a TPM
     * without a resource manager soon has no room for the key. Flushing frees memory only, never
     * a secret or a counter, so a failure here is said and the load goes on: it fails on its own,
     * closed, if the TPM has no room. */
    if (cfg->sole_user && tpm2_reclaim(rot) != RP_OK)
        rp_log_error("TPM: what dead processes left loaded could not be flushed (said above)");
    return load_key(rot);
}

/* The ESYS handle of an 8-byte NV index of a type (counter or bits), defining it on first use. */
static rp_err_t nv_handle(ESYS_CONTEXT *esys, TPM2_HANDLE index, TPM2_NT type, bool define,
                          ESYS_TR *nv)
{
    TPM2B_NV_PUBLIC pub = {0};
    TPM2B_AUTH auth = {0};
    TSS2_RC rc;

    rc = Esys_TR_FromTPMPublic(esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, nv);
    if (rc == TSS2_RC_SUCCESS)
        return RP_OK;
    if (!define)
        return RP_ERR_NOT_FOUND;
    pub.nvPublic.nvIndex = index;
    pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
    pub.nvPublic.attributes = TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA |
                              ((TPMA_NV)type << TPMA_NV_TPM2_NT_SHIFT);
    pub.nvPublic.dataSize = 8;
    rc = Esys_NV_DefineSpace(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                             &auth, &pub, nv);
    if (rc != TSS2_RC_SUCCESS) {
        log_tss("cannot define the counter's NV index", rc);
        return RP_ERR_IO;
    }
    return RP_OK;
}

static rp_err_t counter_handle(ESYS_CONTEXT *esys, rp_rot_counter_t c, bool define, ESYS_TR *nv)
{
    return nv_handle(esys, NV_COUNTER_BASE + c, TPM2_NT_COUNTER, define, nv);
}

static rp_err_t read_counter(ESYS_CONTEXT *esys, ESYS_TR nv, uint64_t *value)
{
    TPM2B_MAX_NV_BUFFER *data = NULL;
    TSS2_RC rc;

    rc = Esys_NV_Read(esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0, &data);
    if (rc == TPM2_RC_NV_UNINITIALIZED) {
        *value = 0; /* defined, never incremented */
        return RP_OK;
    }
    if (rc != TSS2_RC_SUCCESS || data->size != 8) {
        Esys_Free(data);
        log_tss("cannot read a counter", rc);
        return RP_ERR_IO;
    }
    *value = rp_be_get(data->buffer, 8);
    Esys_Free(data);
    return RP_OK;
}

static rp_err_t tpm2_counter_read(rp_rot_t *rot, rp_rot_counter_t c, uint64_t *value)
{
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR nv;
    rp_err_t err = esys_open(rot, &esys, &tcti);

    if (err != RP_OK)
        return err;
    err = counter_handle(esys, c, false, &nv);
    if (err == RP_ERR_NOT_FOUND) {
        *value = 0;
        err = RP_OK;
    } else if (err == RP_OK) {
        err = read_counter(esys, nv, value);
    }
    esys_close(&esys, &tcti);
    return err;
}

static rp_err_t tpm2_counter_increment(rp_rot_t *rot, rp_rot_counter_t c, uint64_t *value)
{
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR nv;
    TSS2_RC rc;
    rp_err_t err = esys_open(rot, &esys, &tcti);

    if (err != RP_OK)
        return err;
    err = counter_handle(esys, c, true, &nv);
    if (err == RP_OK) {
        rc = Esys_NV_Increment(esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS) {
            log_tss("cannot increment a counter", rc);
            err = RP_ERR_IO;
        }
    }
    if (err == RP_OK)
        err = read_counter(esys, nv, value);
    esys_close(&esys, &tcti);
    return err;
}

/* A security counter is a thermometer in an NV bits index: value v sets bits 0 to v-1. Bits can
 * only be set, so the value the highest set bit gives can only grow. */
static rp_err_t tpm2_seccnt_read(rp_rot_t *rot, unsigned i, uint32_t *value)
{
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR nv;
    uint64_t bits = 0;
    rp_err_t err = esys_open(rot, &esys, &tcti);

    if (err != RP_OK)
        return err;
    err = nv_handle(esys, NV_SECCNT_BASE + i, TPM2_NT_BITS, false, &nv);
    if (err == RP_ERR_NOT_FOUND)
        err = RP_OK; /* never advanced */
    else if (err == RP_OK)
        err = read_counter(esys, nv, &bits);
    esys_close(&esys, &tcti);
    *value = 0;
    while (bits != 0) {
        (*value)++;
        bits >>= 1;
    }
    return err;
}

_Static_assert(RP_ROT_TPM2_SECCNT_MAX == 64,
               "a security counter is the 64 bits of an NV bits index");

static rp_err_t tpm2_seccnt_advance(rp_rot_t *rot, unsigned i, uint32_t value)
{
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR nv;
    TSS2_RC rc;
    rp_err_t err;

    if (value > RP_ROT_TPM2_SECCNT_MAX) {
        rp_log_error("security counter %lu: a TPM security counter holds at most %d",
                     (unsigned long)value, RP_ROT_TPM2_SECCNT_MAX);
        return RP_ERR_TOO_LARGE;
    }
    err = esys_open(rot, &esys, &tcti);
    if (err != RP_OK)
        return err;
    err = nv_handle(esys, NV_SECCNT_BASE + i, TPM2_NT_BITS, true, &nv);
    if (err == RP_OK) {
        uint64_t bits = value == RP_ROT_TPM2_SECCNT_MAX ? UINT64_MAX : ((uint64_t)1 << value) - 1;
        rc = Esys_NV_SetBits(esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, bits);
        if (rc != TSS2_RC_SUCCESS) {
            log_tss("cannot advance a security counter", rc);
            err = RP_ERR_IO;
        }
    }
    esys_close(&esys, &tcti);
    return err;
}

static rp_err_t read_pcr(ESYS_CONTEXT *esys, uint8_t reg[RP_SHA256_LEN])
{
    TPML_PCR_SELECTION sel = {0};
    TPML_PCR_SELECTION *sel_out = NULL;
    TPML_DIGEST *values = NULL;
    UINT32 update_counter;
    TSS2_RC rc;
    rp_err_t err = RP_OK;

    sel.count = 1;
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].pcrSelect[MEASURE_PCR / 8] = (BYTE)(1u << (MEASURE_PCR % 8));
    rc = Esys_PCR_Read(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &update_counter,
                       &sel_out, &values);
    if (rc != TSS2_RC_SUCCESS || values == NULL || values->count != 1 ||
        values->digests[0].size != RP_SHA256_LEN) {
        log_tss("cannot read the measurement PCR", rc);
        err = RP_ERR_IO;
    } else {
        memcpy(reg, values->digests[0].buffer, RP_SHA256_LEN);
    }
    Esys_Free(sel_out);
    Esys_Free(values);
    return err;
}

static rp_err_t tpm2_extend(rp_rot_t *rot, const uint8_t digest[RP_SHA256_LEN],
                            uint8_t reg[RP_SHA256_LEN])
{
    TPML_DIGEST_VALUES values = {0};
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    TSS2_RC rc;
    rp_err_t err = esys_open(rot, &esys, &tcti);

    if (err != RP_OK)
        return err;
    values.count = 1;
    values.digests[0].hashAlg = TPM2_ALG_SHA256;
    memcpy(values.digests[0].digest.sha256, digest, RP_SHA256_LEN);
    rc = Esys_PCR_Extend(esys, ESYS_TR_PCR0 + MEASURE_PCR, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                         ESYS_TR_NONE, &values);
    if (rc != TSS2_RC_SUCCESS) {
        log_tss("cannot extend the measurement PCR", rc);
        err = RP_ERR_IO;
    }
    if (err == RP_OK)
        err = read_pcr(esys, reg);
    esys_close(&esys, &tcti);
    return err;
}

static rp_err_t tpm2_read_register(rp_rot_t *rot, uint8_t reg[RP_SHA256_LEN])
{
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    rp_err_t err = esys_open(rot, &esys, &tcti);

    if (err != RP_OK)
        return err;
    err = read_pcr(esys, reg);
    esys_close(&esys, &tcti);
    return err;
}

/* The MAC key is a keyed-hash primary of the owner hierarchy: a primary is derived from the
 * hierarchy's seed and its template, so the same label gives the same key on every call, it never
 * leaves the TPM and nothing needs storing. Only who can reach the TPM (root) can use it. */
static const char mac_label[] = "rampart root of trust MAC v1";

static rp_err_t tpm2_mac(rp_rot_t *rot, const uint8_t *data, size_t len, uint8_t mac[RP_SHA256_LEN])
{
    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_PUBLIC tmpl = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcrs = {0};
    TPM2B_MAX_BUFFER buf = {0};
    TPM2B_DIGEST *out = NULL;
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR key = ESYS_TR_NONE;
    TSS2_RC rc;
    rp_err_t err;

    if (len > sizeof(buf.buffer))
        return RP_ERR_TOO_LARGE;
    err = esys_open(rot, &esys, &tcti);
    if (err != RP_OK)
        return err;
    tmpl.publicArea.type = TPM2_ALG_KEYEDHASH;
    tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
    tmpl.publicArea.objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                                       TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                       TPMA_OBJECT_USERWITHAUTH;
    tmpl.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_HMAC;
    tmpl.publicArea.parameters.keyedHashDetail.scheme.details.hmac.hashAlg = TPM2_ALG_SHA256;
    tmpl.publicArea.unique.keyedHash.size = sizeof(mac_label) - 1;
    memcpy(tmpl.publicArea.unique.keyedHash.buffer, mac_label, sizeof(mac_label) - 1);
    rc = Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                            &sens, &tmpl, &outside, &pcrs, &key, NULL, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        log_tss("cannot make the MAC key", rc);
        err = RP_ERR_IO;
    }
    if (err == RP_OK) {
        buf.size = (UINT16)len;
        memcpy(buf.buffer, data, len);
        rc = Esys_HMAC(esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &buf,
                       TPM2_ALG_SHA256, &out);
        if (rc != TSS2_RC_SUCCESS || out == NULL || out->size != RP_SHA256_LEN) {
            log_tss("cannot compute a MAC", rc);
            err = RP_ERR_IO;
        } else {
            memcpy(mac, out->buffer, RP_SHA256_LEN);
        }
    }
    Esys_Free(out);
    if (key != ESYS_TR_NONE)
        Esys_FlushContext(esys, key);
    esys_close(&esys, &tcti);
    return err;
}

/* The transient objects the TPM holds (of this connection's space, behind a resource manager).
 * OUT: *cap, freed with Esys_Free. */
static rp_err_t list_transient(ESYS_CONTEXT *esys, TPMS_CAPABILITY_DATA **cap)
{
    TPMI_YES_NO more; /* (a TPM holds a handful of objects: all in one answer) */
    TSS2_RC rc;

    *cap = NULL;
    rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                            TRANSIENT_FIRST, TPM2_MAX_CAP_HANDLES, &more, cap);
    if (rc != TSS2_RC_SUCCESS || *cap == NULL || (*cap)->capability != TPM2_CAP_HANDLES) {
        log_tss("cannot list the TPM's loaded objects", rc);
        Esys_Free(*cap);
        *cap = NULL;
        return RP_ERR_IO;
    }
    return RP_OK;
}

/* Whether the TPM has no room left to load the key (nothing of this process's is loaded: the
 * provider's load failed). OUT: *loaded, the transient objects it holds. */
static bool no_room_for_key(rp_rot_t *rot, UINT32 *loaded)
{
    TPMS_CAPABILITY_DATA *cap = NULL, *props = NULL;
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    TPMI_YES_NO more;
    bool full = false;
    TSS2_RC rc;

    *loaded = 0;
    if (esys_open(rot, &esys, &tcti) != RP_OK)
        return false; /* (said there) */
    if (list_transient(esys, &cap) == RP_OK) {
        *loaded = cap->data.handles.count;
        rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                TPM2_CAP_TPM_PROPERTIES, TPM2_PT_HR_TRANSIENT_AVAIL, 1, &more,
                                &props);
        full = rc == TSS2_RC_SUCCESS && props != NULL &&
               props->capability == TPM2_CAP_TPM_PROPERTIES &&
               props->data.tpmProperties.count == 1 &&
               props->data.tpmProperties.tpmProperty[0].property == TPM2_PT_HR_TRANSIENT_AVAIL &&
               props->data.tpmProperties.tpmProperty[0].value < KEY_LOAD_OBJECTS;
    }
    Esys_Free(props);
    Esys_Free(cap);
    esys_close(&esys, &tcti);
    return full && *loaded > 0;
}

static rp_err_t tpm2_reclaim(rp_rot_t *rot)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR obj;
    TSS2_RC rc;
    rp_err_t err = esys_open(rot, &esys, &tcti); /* (flushes this process's own key first) */

    if (err != RP_OK)
        return err;
    err = list_transient(esys, &cap);
    for (UINT32 i = 0; err == RP_OK && i < cap->data.handles.count; i++) {
        TPM2_HANDLE h = cap->data.handles.handle[i];
        if (h < TRANSIENT_FIRST || h > TRANSIENT_LAST)
            continue;
        rc = Esys_TR_FromTPMPublic(esys, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &obj);
        if (rc == TSS2_RC_SUCCESS)
            rc = Esys_FlushContext(esys, obj);
        if (rc != TSS2_RC_SUCCESS) {
            log_tss("cannot flush an object a dead process left in the TPM", rc);
            err = RP_ERR_IO;
        }
    }
    Esys_Free(cap);
    esys_close(&esys, &tcti);
    return err;
}

static void tpm2_close(rp_rot_t *rot)
{
    provider_release(rot);
    free(rot->impl);
    rot->impl = NULL;
}

const struct rot_ops rp_rot_tpm2_ops = {
    .create = tpm2_create,
    .open = tpm2_open,
    .counter_read = tpm2_counter_read,
    .counter_increment = tpm2_counter_increment,
    .seccnt_read = tpm2_seccnt_read,
    .seccnt_advance = tpm2_seccnt_advance,
    .extend = tpm2_extend,
    .read_register = tpm2_read_register,
    .ensure_key = tpm2_ensure_key,
    .mac = tpm2_mac,
    .reclaim = tpm2_reclaim,
    .idle = provider_release,
    .close = tpm2_close,
};
