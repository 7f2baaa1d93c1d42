/*
 * What the root-of-trust backends share with rot.c: the object, and the operations each backend
 * supplies. Private to rot/.
 */
#ifndef RAMPART_ROT_IMPL_H
#define RAMPART_ROT_IMPL_H

#include <limits.h>

#include "rampart/rot.h"

/* Files in the state directory (persisted: names never change). */
#define ROT_KIND_FILE "rot"               /* "soft" or "tpm2" */
#define ROT_SOFT_KEY_FILE "identity.pem"  /* soft: PKCS#8 private key, 0600 */
#define ROT_TPM2_KEY_FILE "identity.tss2" /* tpm2: TPM-wrapped key blob (TSS2 PRIVATE KEY) */

struct rot_ops {
    /* Create the key in cfg->state_dir. */
    rp_err_t (*create)(const rp_rot_config_t *cfg);
    /* Load the key into rot->pkey (and whatever else the backend keeps in rot->impl). */
    rp_err_t (*open)(rp_rot_t *rot, const rp_rot_config_t *cfg);
    rp_err_t (*counter_read)(rp_rot_t *rot, rp_rot_counter_t c, uint64_t *value);
    rp_err_t (*counter_increment)(rp_rot_t *rot, rp_rot_counter_t c, uint64_t *value);
    rp_err_t (*seccnt_read)(rp_rot_t *rot, unsigned i, uint32_t *value);
    rp_err_t (*seccnt_advance)(rp_rot_t *rot, unsigned i, uint32_t value);
    rp_err_t (*extend)(rp_rot_t *rot, const uint8_t digest[RP_SHA256_LEN],
                       uint8_t reg[RP_SHA256_LEN]);
    rp_err_t (*read_register)(rp_rot_t *rot, uint8_t reg[RP_SHA256_LEN]);
    /* Make sure rot->pkey is usable (a backend may have released it). */
    rp_err_t (*ensure_key)(rp_rot_t *rot);
    /* HMAC-SHA256 of data with a key that never leaves the root of trust. */
    rp_err_t (*mac)(rp_rot_t *rot, const uint8_t *data, size_t len, uint8_t mac[RP_SHA256_LEN]);
    /* Free what a dead process left loaded (NULL: nothing can be left). */
    rp_err_t (*reclaim)(rp_rot_t *rot);
    /* Let go of what is kept open between calls (NULL: nothing is). */
    void (*idle)(rp_rot_t *rot);
    void (*close)(rp_rot_t *rot);
};

struct rp_rot {
    const struct rot_ops *ops;
    rp_rot_kind_t kind;
    char dir[PATH_MAX];
    EVP_PKEY *pkey;
    OSSL_LIB_CTX *libctx; /* where pkey's operations run (NULL: OpenSSL's default) */
    const char *propq;
    uint8_t spki[RP_PUBKEY_DER_MAX]; /* cached at open: the ID needs no TPM round trip */
    size_t spki_len;
    void *impl;
};

extern const struct rot_ops rp_rot_soft_ops;
extern const struct rot_ops rp_rot_tpm2_ops;

/* path = dir/name; RP_ERR_INVALID_ARG when it does not fit. */
rp_err_t rp_rot_path(char *path, size_t cap, const char *dir, const char *name);

#endif /* RAMPART_ROT_IMPL_H */
