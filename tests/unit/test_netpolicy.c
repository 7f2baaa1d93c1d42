/*
 * The network policy's event reasons (netpolicy.h: rp_packet_reason): what a refused packet
 * becomes in the security event log. Headers too short, neither IPv4 nor IPv6, or a header length
 * pointing past the packet are refused; fragments and truncated transport headers carry no port.
 * And the resolved addresses' binary form as the policy takes it from rampart-unpack
 * (rampart/netaddrs.h: rp_netaddrs_decode): bad counts, truncation, oversize, addresses no app may
 * reach, an address twice, all refused with nothing kept. And the app's hosts file as its launcher
 * writes it from those addresses (launch.h: rp_launch_hosts_write): localhost and each allowed name
 * with its addresses, nothing else; a name that would not be one field, or too many addresses,
 * refused with the file as it was.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "launch.h"
#include "packet.h"
#include "rampart/file.h"
#include "rampart/netaddrs.h"

/* An IPv4 header from 10.0.0.5 to 10.0.0.9 with proto, then a transport header to dport. */
static size_t packet(uint8_t *p, uint8_t proto, uint16_t dport)
{
    memset(p, 0, 28);
    p[0] = 0x45;
    p[9] = proto;
    memcpy(p + 12, (uint8_t[]){10, 0, 0, 5}, 4);
    memcpy(p + 16, (uint8_t[]){10, 0, 0, 9}, 4);
    p[20] = 0x30;
    p[21] = 0x39; /* source port 12345 */
    p[22] = (uint8_t)(dport >> 8);
    p[23] = (uint8_t)dport;
    return 28;
}

static void reasons(void **state)
{
    (void)state;
    uint8_t p[64];
    char r[256];
    size_t n = packet(p, 6, 80);
    assert_int_equal(rp_packet_reason('c', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "10.0.0.9:80");
    assert_int_equal(rp_packet_reason('l', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "tcp 80 from 10.0.0.5");
    n = packet(p, 17, 5683);
    assert_int_equal(rp_packet_reason('c', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "udp 10.0.0.9:5683");
    assert_int_equal(rp_packet_reason('l', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "udp 5683 from 10.0.0.5");
    n = packet(p, 1, 0);
    assert_int_equal(rp_packet_reason('c', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "icmp 10.0.0.9");
    n = packet(p, 47, 0);
    assert_int_equal(rp_packet_reason('c', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "proto 47 10.0.0.9");
}

static void no_port_without_a_transport_header(void **state)
{
    (void)state;
    uint8_t p[64];
    char r[256];
    size_t n = packet(p, 6, 80);
    assert_int_equal(rp_packet_reason('c', p, 22, r, sizeof(r)), RP_OK); /* truncated */
    assert_string_equal(r, "proto 6 10.0.0.9");
    p[6] = 0x00;
    p[7] = 0x10; /* a later fragment: its bytes are not a TCP header */
    assert_int_equal(rp_packet_reason('c', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "proto 6 10.0.0.9");
}

/* The links carry no IPv6, but an app that turns it back on is refused and named. */
static void ipv6(void **state)
{
    (void)state;
    uint8_t p[64] = {0x60};
    char r[256];
    p[6] = 6;
    p[23] = 5; /* from ::5 */
    p[24] = 0xfd;
    p[39] = 9; /* to fd00::9 */
    p[42] = 0x01;
    p[43] = 0xbb; /* port 443 */
    assert_int_equal(rp_packet_reason('c', p, 44, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "[fd00::9]:443");
    assert_int_equal(rp_packet_reason('l', p, 44, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "tcp 443 from [::5]");
    assert_int_equal(rp_packet_reason('c', p, 40, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "proto 6 [fd00::9]");
    assert_int_equal(rp_packet_reason('c', p, 39, r, sizeof(r)), RP_ERR_MALFORMED);
}

static void refused(void **state)
{
    (void)state;
    uint8_t p[64];
    char r[256];
    size_t n = packet(p, 6, 80);
    assert_int_equal(rp_packet_reason('c', p, 19, r, sizeof(r)), RP_ERR_MALFORMED);
    p[0] = 0x65; /* IPv6's version */
    assert_int_equal(rp_packet_reason('c', p, n, r, sizeof(r)), RP_ERR_MALFORMED);
    p[0] = 0x44; /* header shorter than its minimum */
    assert_int_equal(rp_packet_reason('c', p, n, r, sizeof(r)), RP_ERR_MALFORMED);
    p[0] = 0x4f; /* 60 bytes of header in a 28-byte packet */
    assert_int_equal(rp_packet_reason('c', p, n, r, sizeof(r)), RP_ERR_MALFORMED);
    p[0] = 0x45;
    assert_int_equal(rp_packet_reason('x', p, n, r, sizeof(r)), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_packet_reason('c', p, n, r, 4), RP_ERR_BUFFER_TOO_SMALL);
}

/* An answer of three names: 10.0.0.1 and 10.0.0.2; none; 192.0.2.7. */
static const uint8_t three[] = {2, 10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 192, 0, 2, 7};

static void addresses_read_back(void **state)
{
    (void)state;
    rp_netaddrs_t got[3], one[1];
    uint8_t again[RP_NETADDRS_BIN_MAX];
    char why[256];
    size_t len = 0;

    assert_int_equal(rp_netaddrs_decode(three, sizeof(three), 3, got, why, sizeof(why)), RP_OK);
    assert_int_equal(got[0].n, 2);
    assert_int_equal(got[1].n, 0);
    assert_int_equal(got[2].n, 1);
    static const uint8_t doc[4] = {192, 0, 2, 7}; /* TEST-NET-1 */
    assert_memory_equal(&got[2].addr[0].s_addr, doc, 4);
    assert_int_equal(rp_netaddrs_encode(got, 3, again, sizeof(again), &len), RP_OK);
    assert_int_equal(len, sizeof(three));
    assert_memory_equal(again, three, len);
    /* A full name (RP_NETADDRS_PER_NAME addresses) is kept whole. */
    uint8_t full[1 + 4 * RP_NETADDRS_PER_NAME] = {RP_NETADDRS_PER_NAME};
    for (uint8_t i = 0; i < RP_NETADDRS_PER_NAME; i++)
        memcpy(full + 1 + 4 * i, (uint8_t[]){10, 1, 0, (uint8_t)(i + 1)}, 4);
    assert_int_equal(rp_netaddrs_decode(full, sizeof(full), 1, one, why, sizeof(why)), RP_OK);
    assert_int_equal(one[0].n, RP_NETADDRS_PER_NAME);
    /* No names: only the empty answer. */
    assert_int_equal(rp_netaddrs_decode(three, 0, 0, one, why, sizeof(why)), RP_OK);
}

/* decode must refuse buf (for n names) and keep nothing of it; why names the fault. */
static void refused_as(const uint8_t *buf, size_t len, size_t n, const char *fault)
{
    rp_netaddrs_t got[RP_NETADDRS_NAMES_MAX];
    char why[256] = "";

    assert_int_equal(rp_netaddrs_decode(buf, len, n, got, why, sizeof(why)), RP_ERR_MALFORMED);
    assert_non_null(strstr(why, fault));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i].n, 0);
}

static void addresses_refused(void **state)
{
    (void)state;
    uint8_t b[2 + RP_NETADDRS_BIN_MAX];
    rp_netaddrs_t got[RP_NETADDRS_NAMES_MAX];
    char why[256];

    /* Bad counts: one more address than a name keeps; a count of 255. */
    memset(b, 0, sizeof(b));
    b[0] = RP_NETADDRS_PER_NAME + 1;
    refused_as(b, 1 + 4 * (RP_NETADDRS_PER_NAME + 1), 1, "more addresses than are kept");
    b[0] = 255;
    refused_as(b, sizeof(b), 1, "more addresses than are kept");
    /* Truncation: before a name's count, inside its addresses, at every length short. */
    for (size_t cut = 0; cut < sizeof(three); cut++)
        refused_as(three, cut, 3,
                   cut == 0 || cut == 9 || cut == 10 ? "ends before every name" : "ends inside");
    /* Over: a byte past the last name; more names' worth than were asked. */
    memcpy(b, three, sizeof(three));
    b[sizeof(three)] = 0;
    refused_as(b, sizeof(three) + 1, 3, "bytes past the last name");
    refused_as(three, sizeof(three), 2, "bytes past the last name");
    /* Oversized: more names than an answer holds is the caller's error. */
    memset(b, 0, sizeof(b));
    assert_int_equal(rp_netaddrs_decode(b, RP_NETADDRS_NAMES_MAX + 1, RP_NETADDRS_NAMES_MAX + 1,
                                        got, why, sizeof(why)),
                     RP_ERR_INVALID_ARG);
    /* Addresses no app may reach, and an address twice (the second name's: the first kept
     * nothing either). */
    static const uint8_t unusable[][4] = {
        {0,   0,   0,   0  },
        {0,   1,   2,   3  },
        {127, 0,   0,   1  },
        {169, 254, 169, 254}, /* link-local: the cloud metadata address */
        {169, 254, 0,   1  },
        {100, 127, 0,   21 }, /* the apps' range: a gateway (the device) */
        {100, 127, 255, 254},
        {224, 0,   0,   251},
        {240, 0,   0,   1  },
        {255, 255, 255, 255}
    };
    for (size_t i = 0; i < sizeof(unusable) / sizeof(unusable[0]); i++) {
        uint8_t one[5] = {1};
        memcpy(one + 1, unusable[i], 4);
        refused_as(one, sizeof(one), 1, "no app may reach");
    }
    static const uint8_t twice[] = {1, 10, 0, 0, 1, 2, 10, 0, 0, 3, 10, 0, 0, 3};
    refused_as(twice, sizeof(twice), 2, "twice (name 2 of 2)");
}

static void hosts_file(void **state)
{
    (void)state;
    static rp_manifest_t m;
    static rp_launch_hosts_t h;
    char dir[] = "/tmp/rp-hosts-XXXXXX", path[64], why[300];
    uint8_t *text = NULL;
    size_t len = 0;
    int fd;

    assert_non_null(mkdtemp(dir));
    fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    snprintf(path, sizeof(path), "%s/hosts", dir);
    m.nconnections = 3;
    snprintf(m.connections[0].host, sizeof(m.connections[0].host), "a.test");
    snprintf(m.connections[1].host, sizeof(m.connections[1].host), "10.0.0.9");
    m.connections[1].is_ip = true;
    snprintf(m.connections[2].host, sizeof(m.connections[2].host), "b.test");
    h.conn[0].n = 2;
    inet_pton(AF_INET, "10.0.0.1", &h.conn[0].addr[0]);
    inet_pton(AF_INET, "10.0.0.2", &h.conn[0].addr[1]);
    h.conn[1].n = 1; /* an IP entry's: not a name, not written */
    inet_pton(AF_INET, "10.0.0.9", &h.conn[1].addr[0]);
    assert_int_equal(rp_launch_etc_write(fd, &m, &h, why, sizeof(why)), 0);
    assert_int_equal(rp_read_file(path, 4096, &text, &len), RP_OK);
    static const char want[] = "# Written by the launcher: the only names this app resolves "
                               "(docs/compartments.md).\n127.0.0.1 localhost\n"
                               "10.0.0.1 a.test\n10.0.0.2 a.test\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(text, want, len);
    free(text);
    /* Refused, the file as it was: a name that would add a field or a line; too many addresses. */
    static const char *const bad[] = {"a.test 10.9.9.9", "a.test\n10.9.9.9", "a#b", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + 1; i++) {
        rp_launch_hosts_t more = h;
        rp_manifest_t other = m;
        if (i < sizeof(bad) / sizeof(bad[0]))
            snprintf(other.connections[2].host, sizeof(other.connections[2].host), "%s", bad[i]);
        else
            more.conn[2].n = RP_NETADDRS_PER_NAME + 1;
        assert_int_equal(rp_launch_hosts_write(fd, &other, &more, why, sizeof(why)), -1);
        assert_int_equal(rp_read_file(path, 4096, &text, &len), RP_OK);
        assert_int_equal(len, strlen(want));
        free(text);
    }
    static const char *const files[] = {"hosts", "nsswitch.conf", "resolv.conf"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        assert_int_equal(unlink(path), 0);
    }
    close(fd);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reasons),
        cmocka_unit_test(no_port_without_a_transport_header),
        cmocka_unit_test(ipv6),
        cmocka_unit_test(refused),
        cmocka_unit_test(addresses_read_back),
        cmocka_unit_test(addresses_refused),
        cmocka_unit_test(hosts_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
