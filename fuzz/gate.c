/*
 * Fuzz target: the app broker's gate (device/monitor/gate.h), both directions. The first byte
 * chooses: even, what the monitor takes from the broker (rp_gate_req_decode: the broker reads the
 * apps' packets, so every byte is hostile); odd, what the broker takes from the monitor
 * (rp_gate_msg_decode). What the monitor's decoder accepts encodes back to exactly the same bytes
 * (one layout, every unused byte zero) and names a channel (a generation; a number for a request
 * only); an accepted answer's packet lies within the input and has a number, and an ADD or DROP
 * encodes back to the same bytes too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rp_manifest_t m;
    rp_gate_req_t r;
    rp_gate_msg_t msg;
    uint8_t again[RP_GATE_APP_LEN > RP_GATE_REQ_LEN ? RP_GATE_APP_LEN : RP_GATE_REQ_LEN], *buf;

    if (size < 1)
        return 0;
    /* A copy of exactly size-1 bytes, so ASan sees any read past the message. */
    buf = malloc(size - 1 ? size - 1 : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, size - 1);
    if (data[0] % 2 == 0) {
        if (rp_gate_req_decode(buf, size - 1, &r) == RP_OK) {
            if (r.slot >= RP_GATE_SLOTS || r.hash_len > RP_TLS13_HASH_MAX || r.gen == 0 ||
                (r.seq != 0) != (r.op == RP_GATE_IDENTITY || r.op == RP_GATE_SIGN) ||
                rp_gate_req_encode(&r, again, sizeof(again)) != RP_OK ||
                memcmp(again, buf, RP_GATE_REQ_LEN) != 0)
                abort();
        }
    } else if (rp_gate_msg_decode(buf, size - 1, &msg) == RP_OK) {
        if (msg.slot >= RP_GATE_SLOTS || (msg.op == RP_GATE_ANSWER) != (msg.pkt != NULL) ||
            (msg.pkt != NULL && (msg.pkt < buf || msg.pkt + msg.pkt_len > buf + (size - 1) ||
                                 msg.pkt_len == 0 || msg.seq == 0)))
            abort();
        if (msg.op != RP_GATE_ANSWER) {
            /* The manifest the monitor would have sent it from. */
            memset(&m, 0, sizeof(m));
            m.device_authentication = msg.app.device_authentication;
            m.napp_connections = msg.app.npeers;
            memcpy(m.app_connections, msg.app.peers, sizeof(msg.app.peers));
            if (msg.app.npeers > RP_MANIFEST_APP_CONNECTIONS_MAX ||
                !rp_component_name_valid(msg.app.component, strlen(msg.app.component)) ||
                rp_gate_app_encode(msg.op, msg.slot, msg.app.gen, msg.app.component, &m, again,
                                   sizeof(again)) != RP_OK ||
                memcmp(again, buf, RP_GATE_APP_LEN) != 0)
                abort();
        }
    }
    free(buf);
    return 0;
}
