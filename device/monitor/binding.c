/*
 * The security counters' bindings to components (binding.h): the one owner of the MAC's input and
 * of the rule for states without one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "rampart/bytes.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "binding.h"

#define MARKER "counter-bindings"
static const char label[] = "rampart counter binding v1";

static rp_err_t binding_of(rp_rot_t *rot, const char *name, unsigned index,
                           uint8_t mac[RP_SHA256_LEN])
{
    uint8_t data[sizeof(label) + RP_COMPONENT_NAME_MAX + 1 + 4];
    size_t n = strlen(name), len = 0;

    if (n > RP_COMPONENT_NAME_MAX || index >= RP_ROT_SECCNT_COUNT)
        return RP_ERR_INVALID_ARG;
    memcpy(data, label, sizeof(label)); /* with its NUL: the name cannot run into it */
    len = sizeof(label);
    memcpy(data + len, name, n + 1);
    len += n + 1;
    rp_be_put(data + len, index, 4);
    len += 4;
    return rp_rot_mac(rot, data, len, mac);
}

static rp_err_t marker_path(const char *state_dir, char *path, size_t cap)
{
    return snprintf(path, cap, "%s/" MARKER, state_dir) < (int)cap ? RP_OK : RP_ERR_INVALID_ARG;
}

rp_err_t rp_binding_make(rp_rot_t *rot, rp_component_t *c)
{
    uint8_t mac[RP_SHA256_LEN];
    rp_err_t err = binding_of(rot, c->name, c->seccnt_index, mac);

    if (err == RP_OK)
        err = rp_hex_encode(mac, sizeof(mac), c->binding, sizeof(c->binding));
    return err;
}

bool rp_bindings_in_use(const char *state_dir)
{
    char path[PATH_MAX];

    /* Anything but "absent" counts as in use: fail closed. */
    return marker_path(state_dir, path, sizeof(path)) != RP_OK || access(path, F_OK) == 0 ||
           errno != ENOENT;
}

rp_err_t rp_bindings_mark(const char *state_dir)
{
    static const char note[] = "component counter bindings are in use: a state without one is "
                               "refused\n";
    char path[PATH_MAX];
    rp_err_t err = marker_path(state_dir, path, sizeof(path));

    return err == RP_OK ? rp_write_file_atomic(path, note, sizeof(note) - 1, 0600, 0) : err;
}

rp_err_t rp_binding_check(rp_rot_t *rot, const char *state_dir, const rp_component_t *c)
{
    uint8_t want[RP_SHA256_LEN], got[RP_SHA256_LEN];
    rp_err_t err;

    if (c->binding[0] == '\0') {
        rp_log_error("%s/components/%s/state has no counter_binding: TAMPERED (its security "
                     "counter index cannot be trusted). Refused: the component is not installed "
                     "to nor recovered. Fix: restore the state from a backup",
                     state_dir, c->name);
        return RP_ERR_BAD_SIGNATURE;
    }
    err = binding_of(rot, c->name, c->seccnt_index, want);
    if (err != RP_OK)
        return err;
    if (rp_hex_decode(c->binding, strlen(c->binding), got, sizeof(got)) != RP_OK ||
        CRYPTO_memcmp(want, got, sizeof(want)) != 0) {
        rp_log_error("%s/components/%s/state: its counter_binding does not match security "
                     "counter %u: TAMPERED. Refused: the component is not installed to nor "
                     "recovered. Fix: restore the state from a backup",
                     state_dir, c->name, c->seccnt_index);
        err = RP_ERR_BAD_SIGNATURE;
    }
    OPENSSL_cleanse(want, sizeof(want));
    return err;
}
