/*
 * Checks evidence the way the service does, with the service's own code, for the tests of devices
 * that are not Linux (e2e.mcu_boot: the microcontroller's attestation service):
 *   eat-check SPKI_HEX NONCE_HEX EVIDENCE_HEX
 * The evidence must be a COSE_Sign1 EAT that verifies with the key (rp_eat_verify, as
 * server/device/attest.c calls it), name that key's device ID (rp_device_id_of_spki), carry the nonce,
 * and have a measurement register that is the chain of its components' digests. On success it
 * prints the device ID and one line per component ("component NAME VERSION DIGEST COUNTER", the
 * counter "-" when there is none), exit 0; otherwise "refused: WHY", exit 1 (2: usage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/eat.h"
#include "rampart/hex.h"
#include "rampart/rot.h"

static uint8_t evidence[RP_EAT_MAX_SIZE];

static int refuse(const char *why)
{
    printf("refused: %s\n", why);
    return 1;
}

/* Hex into out[0..cap). OUT: *len. */
static bool unhex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(s);

    if (n % 2 != 0 || n / 2 > cap || rp_hex_decode(s, n, out, n / 2) != RP_OK)
        return false;
    *len = n / 2;
    return true;
}

int main(int argc, char **argv)
{
    static rp_eat_claims_t c;
    uint8_t spki[256], nonce[RP_EAT_NONCE_MAX + 1], chain[2 * RP_SHA256_LEN];
    uint8_t reg[RP_SHA256_LEN] = {0}, id_bytes[RP_SHA256_LEN];
    char id[RP_DEVICE_ID_SIZE], hex[2 * RP_SHA256_LEN + 1];
    size_t spki_len, nonce_len, len;
    rp_err_t err;

    if (argc != 4 || !unhex(argv[1], spki, sizeof(spki), &spki_len) ||
        !unhex(argv[2], nonce, sizeof(nonce), &nonce_len) ||
        !unhex(argv[3], evidence, sizeof(evidence), &len)) {
        fprintf(stderr, "usage: eat-check SPKI_HEX NONCE_HEX EVIDENCE_HEX\n");
        return 2;
    }
    err = rp_eat_verify(evidence, len, spki, spki_len, &c);
    if (err != RP_OK)
        return refuse(rp_strerror(err));
    if (rp_device_id_of_spki(spki, spki_len, id) != RP_OK ||
        rp_hex_decode(id, strlen(id), id_bytes, sizeof(id_bytes)) != RP_OK)
        return refuse("not a device key");
    if (memcmp(c.device_id, id_bytes, RP_SHA256_LEN) != 0)
        return refuse("the UEID names another device");
    if (c.nonce_len != nonce_len || memcmp(c.nonce, nonce, nonce_len) != 0)
        return refuse("another nonce");
    if (!c.has_register)
        return refuse("no measurement register");
    for (size_t i = 0; i < c.ncomponents; i++) {
        memcpy(chain, reg, RP_SHA256_LEN);
        memcpy(chain + RP_SHA256_LEN, c.components[i].digest, RP_SHA256_LEN);
        if (rp_sha256(chain, sizeof(chain), reg) != RP_OK)
            return refuse("sha256 failed");
    }
    if (memcmp(reg, c.measurement_register, RP_SHA256_LEN) != 0)
        return refuse("the measurement register does not match the components");
    printf("device %s debug %d bootcount %llu\n", id, (int)c.debug,
           (unsigned long long)c.boot_count);
    for (size_t i = 0; i < c.ncomponents; i++) {
        const rp_eat_component_t *m = &c.components[i];
        if (rp_hex_encode(m->digest, RP_SHA256_LEN, hex, sizeof(hex)) != RP_OK)
            return refuse("hex failed");
        printf("component %s %s %s ", m->name, m->version, hex);
        if (m->has_security_counter)
            printf("%lu\n", (unsigned long)m->security_counter);
        else
            printf("-\n");
    }
    return 0;
}
