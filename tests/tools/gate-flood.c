/*
 * A compromised app broker for e2e.monitor_gate_stall (review r5, finding 2): started by the
 * monitor in the broker's place (a wrapper rampart-unpack runs it for `broker`), it asks the
 * monitor IDENTITY for an empty slot on its gate (descriptor 3) as fast as the socket takes it.
 * First as a broker that is only slow (review r7, L5): it reads no answer until the monitor has
 * stopped reading its requests (its own socket full, and still full after 200 tries a millisecond
 * apart: the monitor, which reads one a turn while it has room for the answer, has none), then
 * reads every answer, and says so: the monitor waited for it, and did not take it as lost. Then it
 * reads no answer any more, until the monitor shuts the gate; it says so and waits to be killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gate.h"

static uint8_t in[RP_GATE_ANSWER_MAX];

int main(void)
{
    uint8_t out[RP_GATE_REQ_LEN];
    rp_gate_req_t r = {.op = RP_GATE_IDENTITY, .slot = RP_GATE_APPS - 1, .gen = 1};
    unsigned long sent = 0, answered = 0, full = 0;
    bool slow = true;
    ssize_t n;

    if (fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_NONBLOCK) != 0)
        return 1;
    for (;;) {
        r.seq = (uint32_t)(sent % 0xffffffffu) + 1;
        if (rp_gate_req_encode(&r, out, sizeof(out)) != RP_OK)
            return 1;
        n = send(3, out, sizeof(out), MSG_NOSIGNAL);
        if (n == (ssize_t)sizeof(out)) {
            sent++;
            full = 0;
        } else if (n < 0 && errno == EAGAIN && slow && ++full < 200)
            usleep(1000);
        else if (n < 0 && errno == EAGAIN && slow) {
            /* Full: read every answer (a bound for a failure, not a wait). */
            while (answered < sent && poll(&(struct pollfd){3, POLLIN, 0}, 1, 30000) == 1 &&
                   recv(3, in, sizeof(in), 0) > 0)
                answered++;
            fprintf(stderr, "gate-flood: %lu of %lu requests answered after its socket was full\n",
                    answered, sent);
            if (answered < sent)
                break;
            slow = false;
        } else if (n < 0 && errno == EAGAIN)
            usleep(1000); /* the monitor reads, one a turn: more as it does */
        else
            break;
    }
    fprintf(stderr, "gate-flood: %lu requests sent, %lu read; the gate was shut (%s)\n", sent,
            answered, strerror(errno));
    for (;;)
        pause();
}
