/*
 * rampart-unpack read (read.h): the kernel's refusals, parsed here with no capability. The
 * supervisor bound both sockets (their capabilities are checked at bind, not at reading) and
 * handed them over; this process runs as the unpack user, confined as `metadata` is (Landlock:
 * nothing on disk; seccomp: the allow-list plus receiving and sending), and answers each refusal
 * as one record (device/monitor/reader.h). What a hostile packet or path can make of the parsers
 * here is this process lying about refusals or dying, which the supervisor restarts.
 */
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_log/libnetfilter_log.h>

#include "audit.h"
#include "packet.h"
#include "read.h"
#include "reader.h"

/* Send one record; false: the supervisor is gone (or the record breaks a rule: never sent). */
static bool send_record(const rp_reader_record_t *r)
{
    uint8_t rec[RP_READER_RECORD_LEN];

    if (rp_reader_encode(r, rec) != RP_OK)
        return true; /* (nothing the supervisor would take: dropped) */
    while (send(RP_READ_CHAN, rec, sizeof(rec), MSG_NOSIGNAL) < 0)
        if (errno != EINTR)
            return false;
    return true;
}

static bool lost(rp_reader_kind_t kind)
{
    rp_reader_record_t r = {.kind = kind, .number = 1};
    return send_record(&r);
}

/* One audit record (a datagram). */
static bool audit_one(const uint8_t *buf, ssize_t n)
{
    const struct nlmsghdr *h = (const struct nlmsghdr *)(const void *)buf;
    rp_audit_record_t a;
    rp_reader_record_t r;

    /* one record a datagram; one longer than any record is refused whole */
    if (n < (ssize_t)NLMSG_HDRLEN || (size_t)n > RP_AUDIT_RECORD_MAX + NLMSG_HDRLEN ||
        h->nlmsg_len > (size_t)n || h->nlmsg_len < NLMSG_HDRLEN ||
        rp_audit_parse(h->nlmsg_type, (const char *)NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN,
                       &a) != RP_OK)
        return true;
    memset(&r, 0, sizeof(r));
    r.domain = a.domain;
    if (a.kind == RP_AUDIT_REFUSAL) {
        r.kind = RP_READER_LANDLOCK;
        memcpy(r.reason, a.reason, sizeof(r.reason));
    } else if (a.kind == RP_AUDIT_DOMAIN_NEW) {
        r.kind = RP_READER_DOMAIN_NEW;
        r.number = (uint32_t)a.pid;
        r.uid = a.uid;
    } else
        r.kind = RP_READER_DOMAIN_GONE;
    return send_record(&r);
}

/* One NFLOG message: "rp:c:COMPONENT" or "rp:l:COMPONENT" (the network policy's prefix), the
 * packet's first bytes. Anything else is not ours: skipped. */
static bool nflog_one(const struct nlmsghdr *h)
{
    struct nlattr *attr[NFULA_MAX + 1] = {NULL};
    rp_reader_record_t r;
    const char *prefix;
    size_t plen;

    if (h->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET) ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nfgenmsg)) || nflog_nlmsg_parse(h, attr) < 0 ||
        attr[NFULA_PREFIX] == NULL || attr[NFULA_PAYLOAD] == NULL)
        return true;
    prefix = mnl_attr_get_payload(attr[NFULA_PREFIX]);
    plen = mnl_attr_get_payload_len(attr[NFULA_PREFIX]);
    if (plen < 6 || prefix[plen - 1] != '\0' || strnlen(prefix, plen) != plen - 1 ||
        strncmp(prefix, "rp:", 3) != 0 || (prefix[3] != 'c' && prefix[3] != 'l') ||
        prefix[4] != ':' || plen - 6 > RP_COMPONENT_NAME_MAX ||
        !rp_component_name_valid(prefix + 5, plen - 6))
        return true;
    memset(&r, 0, sizeof(r));
    r.kind = prefix[3] == 'c' ? RP_READER_CONNECTION : RP_READER_LISTEN;
    memcpy(r.component, prefix + 5, plen - 6);
    if (rp_packet_reason(prefix[3], mnl_attr_get_payload(attr[NFULA_PAYLOAD]),
                         mnl_attr_get_payload_len(attr[NFULA_PAYLOAD]), r.reason,
                         sizeof(r.reason)) != RP_OK)
        snprintf(r.reason, sizeof(r.reason), "unreadable packet");
    return send_record(&r);
}

/* What is waiting on fd, at most 64 datagrams. false: the supervisor is gone. */
static bool drain(int fd, bool audit)
{
    static uint8_t buf[65536];

    for (int k = 0; k < 64; k++) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | (audit ? MSG_TRUNC : 0));
        if (n < 0 && errno == ENOBUFS) { /* the kernel dropped some: our buffer was full */
            if (!lost(audit ? RP_READER_LOST_AUDIT : RP_READER_LOST_NFLOG))
                return false;
            continue;
        }
        if (n < 0) /* EAGAIN, EINTR: poll again; another error: the same next time */
            return true;
        if (audit) {
            if (!audit_one(buf, n))
                return false;
            continue;
        }
        int left = (int)n;
        for (const struct nlmsghdr *h = (const struct nlmsghdr *)(const void *)buf;
             mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left))
            if (!nflog_one(h))
                return false;
    }
    return true;
}

int rp_read_run(bool audit, bool nflog)
{
    struct pollfd p[3] = {
        {RP_READ_CHAN,               POLLIN, 0},
        {audit ? RP_READ_AUDIT : -1, POLLIN, 0},
        {nflog ? RP_READ_NFLOG : -1, POLLIN, 0},
    };

    for (;;) {
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 2;
        }
        if (p[0].revents != 0) /* the supervisor sends nothing: its end is gone */
            return 0;
        if ((p[1].revents | p[2].revents) & POLLNVAL) /* not a socket handed over */
            return 2;
        if (p[1].revents != 0 && !drain(RP_READ_AUDIT, true))
            return 0;
        if (p[2].revents != 0 && !drain(RP_READ_NFLOG, false))
            return 0;
    }
}
