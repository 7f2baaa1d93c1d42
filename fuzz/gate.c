/*
 * Fuzz target: the app broker's gate (device/monitor/gate.h), both directions. The first byte
 * chooses: even, what the monitor takes from the broker (rp_gate_req_decode: the broker reads the
 * apps' packets, so every byte is hostile); odd, what the broker takes from the monitor
 * (rp_gate_msg_decode). What the monitor's decoder accepts encodes back to exactly the same bytes
 * (one layout, every unused byte zero); an accepted answer's packet lies within the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_gate_req_t r;
    rp_gate_app_t app;
    uint8_t again[RP_GATE_REQ_LEN], slot = 0, *buf;
    const uint8_t *pkt;
    size_t n = 0;

    if (size < 1)
        return 0;
    /* A copy of exactly size-1 bytes, so ASan sees any read past the message. */
    buf = malloc(size - 1 ? size - 1 : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, size - 1);
    if (data[0] % 2 == 0) {
        if (rp_gate_req_decode(buf, size - 1, &r) == RP_OK) {
            if (r.slot >= RP_GATE_SLOTS || r.hash_len > RP_TLS13_HASH_MAX ||
                rp_gate_req_encode(&r, again, sizeof(again)) != RP_OK ||
                memcmp(again, buf, RP_GATE_REQ_LEN) != 0)
                abort();
        }
    } else if (rp_gate_msg_decode(buf, size - 1, &app, &slot, &pkt, &n) == RP_OK) {
        if (slot >= RP_GATE_SLOTS ||
            (pkt != NULL && (pkt < buf || pkt + n > buf + (size - 1) || n == 0)) ||
            (pkt == NULL && (app.npeers > RP_MANIFEST_APP_CONNECTIONS_MAX ||
                             !rp_component_name_valid(app.component, strlen(app.component)))))
            abort();
    }
    free(buf);
    return 0;
}
