/*
 * Fuzz target: the monitor protocol's decoders (device/monitor/proto.c), both directions, and the
 * signed metadata TRUST_ROOT and TARGETS carry as a descriptor (its binary form,
 * rp_md_signed_decode), with the round-trip property that what a decoder accepts encodes back to
 * the same bytes; what decodes is then checked (rp_md_verify) against a role of one key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "rampart/metadata.h"

static uint8_t out[RP_MON_PACKET_MAX];
static rp_mon_request_t q;
static rp_mon_reply_t r;
static rp_md_signed_t s;
/* A P-256 public key (DER SPKI: the curve's generator), for a role to verify against. */
static const uint8_t spki[] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1,
    0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d,
    0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe,
    0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b,
    0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;

    if (rp_mon_request_decode(data, size, &q) == RP_OK) {
        if (rp_mon_request_encode(&q, out, sizeof(out), &len) != RP_OK || len != size ||
            memcmp(out, data, size) != 0)
            abort();
    }
    if (rp_md_signed_decode(data, size, &s, NULL, 0) == RP_OK) {
        uint8_t *bin = NULL;
        rp_md_role_t role = {.nkeys = 1, .threshold = 1, .spki_len = {sizeof(spki)}};
        memcpy(role.spki[0], spki, sizeof(spki));
        if (rp_md_signed_encode(&s, &bin, &len) != RP_OK || len != size ||
            memcmp(bin, data, size) != 0)
            abort();
        free(bin);
        /* The rule's bounds, on what decoded: the role is valid, so the answer is a verdict,
         * and a refusal says why. */
        char detail[256] = "";
        rp_err_t err = rp_md_verify(&s, &role, detail, sizeof(detail));
        if (err == RP_ERR_BAD_SIGNATURE ? detail[0] == '\0' : err != RP_OK && err != RP_ERR_CRYPTO)
            abort();
        rp_md_signed_free(&s);
    }
    if (rp_mon_reply_decode(data, size, &r) == RP_OK) {
        if (rp_mon_reply_encode(&r, out, sizeof(out), &len) != RP_OK || len != size ||
            memcmp(out, data, size) != 0)
            abort();
    }
    return 0;
}
