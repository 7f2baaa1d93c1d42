/*
 * The network policy's event reasons (netpolicy.h: rp_netpolicy_reason): what a refused packet
 * becomes in the security event log. Headers too short, neither IPv4 nor IPv6, or a header length
 * pointing past the packet are refused; fragments and truncated transport headers carry no port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "netpolicy.h"

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
    assert_int_equal(rp_netpolicy_reason('c', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "10.0.0.9:80");
    assert_int_equal(rp_netpolicy_reason('l', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "tcp 80 from 10.0.0.5");
    n = packet(p, 17, 5683);
    assert_int_equal(rp_netpolicy_reason('c', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "udp 10.0.0.9:5683");
    assert_int_equal(rp_netpolicy_reason('l', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "udp 5683 from 10.0.0.5");
    n = packet(p, 1, 0);
    assert_int_equal(rp_netpolicy_reason('c', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "icmp 10.0.0.9");
    n = packet(p, 47, 0);
    assert_int_equal(rp_netpolicy_reason('c', p, n, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "proto 47 10.0.0.9");
}

static void no_port_without_a_transport_header(void **state)
{
    (void)state;
    uint8_t p[64];
    char r[256];
    size_t n = packet(p, 6, 80);
    assert_int_equal(rp_netpolicy_reason('c', p, 22, r, sizeof(r)), RP_OK); /* truncated */
    assert_string_equal(r, "proto 6 10.0.0.9");
    p[6] = 0x00;
    p[7] = 0x10; /* a later fragment: its bytes are not a TCP header */
    assert_int_equal(rp_netpolicy_reason('c', p, n, r, sizeof(r)), RP_OK);
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
    assert_int_equal(rp_netpolicy_reason('c', p, 44, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "[fd00::9]:443");
    assert_int_equal(rp_netpolicy_reason('l', p, 44, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "tcp 443 from [::5]");
    assert_int_equal(rp_netpolicy_reason('c', p, 40, r, sizeof(r)), RP_OK);
    assert_string_equal(r, "proto 6 [fd00::9]");
    assert_int_equal(rp_netpolicy_reason('c', p, 39, r, sizeof(r)), RP_ERR_MALFORMED);
}

static void refused(void **state)
{
    (void)state;
    uint8_t p[64];
    char r[256];
    size_t n = packet(p, 6, 80);
    assert_int_equal(rp_netpolicy_reason('c', p, 19, r, sizeof(r)), RP_ERR_MALFORMED);
    p[0] = 0x65; /* IPv6's version */
    assert_int_equal(rp_netpolicy_reason('c', p, n, r, sizeof(r)), RP_ERR_MALFORMED);
    p[0] = 0x44; /* header shorter than its minimum */
    assert_int_equal(rp_netpolicy_reason('c', p, n, r, sizeof(r)), RP_ERR_MALFORMED);
    p[0] = 0x4f; /* 60 bytes of header in a 28-byte packet */
    assert_int_equal(rp_netpolicy_reason('c', p, n, r, sizeof(r)), RP_ERR_MALFORMED);
    p[0] = 0x45;
    assert_int_equal(rp_netpolicy_reason('x', p, n, r, sizeof(r)), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_netpolicy_reason('c', p, n, r, 4), RP_ERR_BUFFER_TOO_SMALL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reasons),
        cmocka_unit_test(no_port_without_a_transport_header),
        cmocka_unit_test(ipv6),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
