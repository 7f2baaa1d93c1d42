/*
 * A refused packet's event reason (packet.h). It runs in `rampart-unpack read` only, never with
 * privilege (reader.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>

#include "packet.h"
#include "rampart/bytes.h"

/* The reason's words, one place for both families. */
static rp_err_t reason_text(char kind, uint8_t proto, const char *src, const char *dst, bool ports,
                            unsigned dport, char *reason, size_t cap)
{
    int n;
    if (kind == 'c') {
        if (ports && proto == IPPROTO_TCP)
            n = snprintf(reason, cap, "%s:%u", dst, dport);
        else if (ports)
            n = snprintf(reason, cap, "udp %s:%u", dst, dport);
        else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
            n = snprintf(reason, cap, "icmp %s", dst);
        else
            n = snprintf(reason, cap, "proto %u %s", proto, dst);
    } else if (ports) {
        n = snprintf(reason, cap, "%s %u from %s", proto == IPPROTO_TCP ? "tcp" : "udp", dport,
                     src);
    } else {
        n = snprintf(reason, cap, "proto %u from %s", proto, src);
    }
    return n < 0 || (size_t)n >= cap ? RP_ERR_BUFFER_TOO_SMALL : RP_OK;
}

rp_err_t rp_packet_reason(char kind, const uint8_t *pkt, size_t len, char *reason, size_t cap)
{
    if (!pkt || !reason || cap == 0 || (kind != 'c' && kind != 'l'))
        return RP_ERR_INVALID_ARG;
    reason[0] = '\0';
    if (len < 1)
        return RP_ERR_MALFORMED;
    char s[INET6_ADDRSTRLEN + 2], d[INET6_ADDRSTRLEN + 2];
    uint8_t proto;
    size_t l4; /* where the transport header starts; 0: no ports to read */
    if ((pkt[0] >> 4) == 4) {
        size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
        if (len < 20 || ihl < 20 || ihl > len)
            return RP_ERR_MALFORMED;
        proto = pkt[9];
        if (!inet_ntop(AF_INET, pkt + 12, s, sizeof(s)) ||
            !inet_ntop(AF_INET, pkt + 16, d, sizeof(d)))
            return RP_ERR_MALFORMED;
        bool first_fragment = ((pkt[6] & 0x1f) | pkt[7]) == 0;
        l4 = first_fragment ? ihl : 0;
    } else if ((pkt[0] >> 4) == 6) {
        /* The links carry no IPv6; an app that turns it back on is refused and told here. */
        if (len < 40)
            return RP_ERR_MALFORMED;
        proto = pkt[6]; /* extension headers are not walked: their ports are not reported */
        char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
        if (!inet_ntop(AF_INET6, pkt + 8, a, sizeof(a)) ||
            !inet_ntop(AF_INET6, pkt + 24, b, sizeof(b)))
            return RP_ERR_MALFORMED;
        snprintf(s, sizeof(s), "[%s]", a);
        snprintf(d, sizeof(d), "[%s]", b);
        l4 = 40;
    } else {
        return RP_ERR_MALFORMED;
    }
    bool ports = (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && l4 != 0 && len >= l4 + 4;
    unsigned dport = ports ? (unsigned)rp_be_get(pkt + l4 + 2, 2) : 0;
    return reason_text(kind, proto, s, d, ports, dport, reason, cap);
}
