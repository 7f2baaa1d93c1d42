/*
 * A compromised app broker for e2e.monitor_gate_stall (review r5, finding 2): started by the
 * monitor in the broker's place (a wrapper rampart-unpack runs it for `broker`), it asks the
 * monitor IDENTITY for an empty slot on its gate (descriptor 3) as fast as the socket takes it and
 * reads no answer, until the monitor shuts the gate. Then it says so and waits to be killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gate.h"

int main(void)
{
    uint8_t out[RP_GATE_REQ_LEN];
    rp_gate_req_t r = {.op = RP_GATE_IDENTITY, .slot = RP_GATE_APPS - 1, .gen = 1};
    unsigned long sent = 0;
    ssize_t n;

    if (fcntl(3, F_SETFL, O_NONBLOCK) != 0)
        return 1;
    for (;;) {
        r.seq = (uint32_t)(sent % 0xffffffffu) + 1;
        if (rp_gate_req_encode(&r, out, sizeof(out)) != RP_OK)
            return 1;
        n = send(3, out, sizeof(out), MSG_NOSIGNAL);
        if (n == (ssize_t)sizeof(out))
            sent++;
        else if (n < 0 && errno == EAGAIN)
            usleep(1000); /* the monitor reads, one a turn: more as it does */
        else
            break;
    }
    fprintf(stderr, "gate-flood: %lu requests sent, none read; the gate was shut (%s)\n", sent,
            strerror(errno));
    for (;;)
        pause();
}
