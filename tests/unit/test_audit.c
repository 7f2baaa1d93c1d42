/*
 * Landlock's audit records (audit.h): the parser of the records, hostile text (every reason
 * printable ASCII, bounded, cut visibly), and the reader's mapping of refusals to apps by domain,
 * fed records as the kernel sends them (a netlink header, the text unterminated) over a datagram
 * socket pair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/netlink.h>

#include "audit.h"
#include "rampart/text.h"

static rp_err_t parse(int type, const char *text, rp_audit_record_t *r)
{
    return rp_audit_parse(type, text, strlen(text), r);
}

static void refusals(void **state)
{
    rp_audit_record_t r;
    (void)state;

    assert_int_equal(parse(1423,
                           "audit(1795918558.835:110): domain=14a60905f blockers=fs.write_file "
                           "path=\"/etc/passwd\" dev=\"vda\" ino=3",
                           &r),
                     RP_OK);
    assert_int_equal(r.kind, RP_AUDIT_REFUSAL);
    assert_true(r.serial == 110);
    assert_true(r.domain == 0x14a60905fULL);
    assert_string_equal(r.reason, "write to /etc/passwd refused by Landlock");
    assert_int_equal(parse(1423,
                           "audit(1.2:3): domain=1 blockers=net.connect_tcp daddr=10.98.0.10 "
                           "dest=8081",
                           &r),
                     RP_OK);
    assert_string_equal(r.reason, "TCP connect to port 8081 (10.98.0.10) refused by Landlock");
    assert_int_equal(
        parse(1423, "audit(1.2:3): domain=1 blockers=net.bind_tcp saddr=0.0.0.0 src=9001", &r),
        RP_OK);
    assert_string_equal(r.reason, "TCP bind to port 9001 refused by Landlock");
    /* more than one blocker: all named; a path in hex (audit's untrusted string) decoded, its
     * space kept, its control characters and non-ASCII bytes shown as '?' */
    assert_int_equal(parse(1423,
                           "audit(1.2:3): domain=1 blockers=fs.make_reg,fs.refer "
                           "path=2F746D702F7320781B5B33316DC3A9 dev=\"vda\" ino=1",
                           &r),
                     RP_OK);
    assert_string_equal(
        r.reason, "making a file in /tmp/s x?[31m?? refused by Landlock (fs.make_reg,fs.refer)");
    /* a blocker this reader does not know: as the kernel names it */
    assert_int_equal(parse(1423, "audit(1.2:3): domain=1 blockers=fs.new_thing path=\"/x\"", &r),
                     RP_OK);
    assert_string_equal(r.reason, "fs.new_thing on /x refused by Landlock");
    assert_int_equal(
        parse(1423, "audit(1.2:3): domain=1 blockers=scope.signal opid=1 ocomm=\"x\"", &r), RP_OK);
    assert_string_equal(r.reason, "a signal to pid 1 refused by Landlock");
}

static void long_path(void **state)
{
    char text[2000], path[1001];
    rp_audit_record_t r;
    (void)state;

    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    snprintf(text, sizeof(text), "audit(1.2:3): domain=1 blockers=fs.read_file path=\"/%s\"", path);
    assert_int_equal(parse(1423, text, &r), RP_OK);
    assert_true(strlen(r.reason) <= RP_EVENT_REASON_MAX);
    assert_non_null(strstr(r.reason, "... refused by Landlock"));
    assert_true(rp_text_no_controls(r.reason));
    /* the same in hex (a space in it): decoded as far as it is shown, cut the same way */
    size_t n =
        (size_t)snprintf(text, sizeof(text), "audit(1.2:3): domain=1 blockers=fs.read_file path=");
    for (size_t i = 0; i < 800 && n + 2 < sizeof(text); i++, n += 2)
        memcpy(text + n, i == 3 ? "20" : "61", 2);
    assert_int_equal(rp_audit_parse(1423, text, n, &r), RP_OK);
    assert_true(strlen(r.reason) <= RP_EVENT_REASON_MAX);
    assert_int_equal(strncmp(r.reason, "read of aaa aaaa", 16), 0);
    assert_non_null(strstr(r.reason, "... refused by Landlock"));
}

static void domains(void **state)
{
    rp_audit_record_t r;
    (void)state;

    assert_int_equal(parse(1424,
                           "audit(1.2:109): domain=14a60905f status=allocated mode=enforcing "
                           "pid=14146 uid=0 exe=\"/x\" comm=\"ll\"",
                           &r),
                     RP_OK);
    assert_int_equal(r.kind, RP_AUDIT_DOMAIN_NEW);
    assert_int_equal(r.pid, 14146);
    assert_true(r.domain == 0x14a60905fULL);
    /* an even-length domain is a number, never decoded as hex text */
    assert_int_equal(
        parse(1424, "audit(1.2:111): domain=14a609064a status=deallocated denials=2", &r), RP_OK);
    assert_int_equal(r.kind, RP_AUDIT_DOMAIN_GONE);
    assert_true(r.domain == 0x14a609064aULL);
}

static void refused_records(void **state)
{
    static const struct {
        int type;
        const char *text;
    } bad[] = {
        {1423, ""                                                               },
        {1423, "audit(1.2:3)"                                                   },
        {1423, "audit(1.2:): domain=1 blockers=fs.read_file"                    },
        {1423, "audit(1.2:3): blockers=fs.read_file"                            },
        {1423, "audit(1.2:3): domain=xyz blockers=fs.read_file"                 },
        {1423, "audit(1.2:3): domain=1"                                         },
        {1423, "audit(1.2:3): domain=1 blockers=fs.read_file path=\"/x"         },
        {1423, "audit(1.2:3): domain=1 blockers"                                },
        {1424, "audit(1.2:3): domain=1 status=allocated pid=x"                  },
        {1424, "audit(1.2:3): domain=1 status=other"                            },
        {1423, "audit(1.2:99999999999999999999): domain=1 blockers=fs.read_file"},
    };
    rp_audit_record_t r;
    char big[RP_AUDIT_RECORD_MAX + 2];
    (void)state;

    assert_int_equal(parse(1300, "audit(1.2:3): arch=c000003e syscall=257", &r), RP_ERR_NOT_FOUND);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i].type, bad[i].text, &r), RP_ERR_MALFORMED);
    memset(big, 'a', sizeof(big));
    assert_int_equal(rp_audit_parse(1423, big, sizeof(big), &r), RP_ERR_TOO_LARGE);
}

/* ---- the reader's mapping */

static pid_t our_init = 500;
static char seen[8][RP_EVENT_REASON_MAX + 1];
static size_t nseen, ntotal;

static bool ours(pid_t init, void *ctx)
{
    (void)ctx;
    return init == our_init;
}

static void refused(pid_t init, const char *reason, void *ctx)
{
    (void)ctx;
    assert_int_equal(init, our_init);
    if (nseen < 8)
        snprintf(seen[nseen++], sizeof(seen[0]), "%s", reason);
    ntotal++;
}

/* Send records as the kernel does (a netlink header, the text unterminated): "TYPE TEXT". */
static void send_records(int fd, const char *const *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char buf[1024];
        struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf;
        const char *text = strchr(recs[i], ' ') + 1;
        size_t len = strlen(text);
        memset(buf, 0, sizeof(buf));
        h->nlmsg_len = (uint32_t)(NLMSG_HDRLEN + len);
        h->nlmsg_type = (uint16_t)atoi(recs[i]);
        memcpy(buf + NLMSG_HDRLEN, text, len);
        assert_int_equal(send(fd, buf, h->nlmsg_len, 0), (ssize_t)h->nlmsg_len);
    }
}

static void mapping(void **state)
{
    static rp_audit_t au;
    rp_audit_hooks_t hooks = {ours, refused, NULL};
    static const char *const recs[] = {
        /* a domain's first refusal comes before its domain record: held, then ours */
        "1423 audit(1.2:10): domain=a1 blockers=fs.write_file path=\"/etc/x\"",
        "1424 audit(1.2:10): domain=a1 status=allocated mode=enforcing pid=500",
        "1300 audit(1.2:10): arch=c000003e syscall=257 pid=501",
        /* its next refusals: mapped by the domain alone */
        "1423 audit(1.2:11): domain=a1 blockers=net.bind_tcp src=9001",
        /* another process's domain: not ours, nothing */
        "1423 audit(1.2:12): domain=b2 blockers=fs.read_file path=\"/y\"",
        "1424 audit(1.2:12): domain=b2 status=allocated mode=enforcing pid=77",
        "1423 audit(1.2:13): domain=b2 blockers=fs.read_file path=\"/y\"",
        /* a malformed record in between changes nothing */
        "1423 audit(garbage",
        /* the domain gone: forgotten (a later refusal naming it is not mapped) */
        "1424 audit(1.2:14): domain=a1 status=deallocated denials=2",
        "1423 audit(1.2:15): domain=a1 blockers=fs.read_file path=\"/z\"",
        /* another event's records between a first refusal and its domain's record: mapped */
        "1423 audit(1.2:30): domain=d4 blockers=fs.read_file path=\"/v\"",
        "1423 audit(1.2:31): domain=e5 blockers=fs.read_file path=\"/u\"",
        "1424 audit(1.2:30): domain=d4 status=allocated mode=enforcing pid=500",
        "1424 audit(1.2:31): domain=e5 status=allocated mode=enforcing pid=78",
    };
    static const char *const flood[] = {
        "1424 audit(1.2:20): domain=c3 status=allocated mode=enforcing pid=500",
        "1423 audit(1.2:21): domain=c3 blockers=fs.read_file path=\"/w\"",
    };
    int sv[2];
    (void)state;

    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
    memset(&au, 0, sizeof(au));
    au.fd = sv[0];
    send_records(sv[1], recs, sizeof(recs) / sizeof(recs[0]));
    rp_audit_handle(&au, &hooks);
    assert_int_equal(ntotal, 3);
    assert_string_equal(seen[0], "write to /etc/x refused by Landlock");
    assert_string_equal(seen[1], "TCP bind to port 9001 refused by Landlock");
    assert_string_equal(seen[2], "read of /v refused by Landlock");
    /* at most RP_AUDIT_PER_WAKE records a call: the rest wait for the next */
    send_records(sv[1], flood, 1);
    for (int i = 0; i < RP_AUDIT_PER_WAKE + 2; i++)
        send_records(sv[1], flood + 1, 1);
    ntotal = 0;
    rp_audit_handle(&au, &hooks);
    assert_int_equal(ntotal, RP_AUDIT_PER_WAKE - 1); /* (the domain's record is one of them) */
    ntotal = 0;
    rp_audit_handle(&au, &hooks);
    assert_int_equal(ntotal, 3);
    close(sv[0]);
    close(sv[1]);
}

static void missing(void **state)
{
    static rp_audit_t au;
    char m[256] = "";
    (void)state;

    memset(&au, 0, sizeof(au));
    au.fd = 3;
    rp_audit_note_missing(&au, 7, m, sizeof(m));
    assert_string_equal(m, "");
    rp_audit_note_missing(&au, 0, m, sizeof(m));
    assert_string_equal(m, "");
    rp_audit_note_missing(&au, 6, m, sizeof(m));
    assert_string_equal(m, "Landlock refusals are not seen (the kernel's Landlock ABI is below 7)");
    m[0] = '\0';
    au.fd = -1;
    snprintf(au.why, sizeof(au.why),
             "audit is off and cannot be turned on: Operation not permitted");
    snprintf(m, sizeof(m), "no cgroup namespace");
    rp_audit_note_missing(&au, 7, m, sizeof(m));
    assert_string_equal(m, "no cgroup namespace; Landlock refusals are not seen (audit is off and "
                           "cannot be turned on: Operation not permitted)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refusals),        cmocka_unit_test(long_path), cmocka_unit_test(domains),
        cmocka_unit_test(refused_records), cmocka_unit_test(mapping),   cmocka_unit_test(missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
