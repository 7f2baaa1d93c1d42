/*
 * Landlock's audit records (audit.h): the parser of the records, hostile text (every reason
 * printable ASCII, bounded, cut visibly); rampart-unpack read runs it. The supervisor's mapping of
 * refusals to apps is tests/unit/test_reader.c's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
    assert_int_equal(r.uid, 0);
    assert_int_equal(parse(1424,
                           "audit(1.2:110): domain=14a60905f status=allocated mode=enforcing "
                           "pid=7 uid=4294967295 exe=\"/x\"",
                           &r),
                     RP_OK);
    assert_true(r.uid == 4294967295u);
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
        {1424, "audit(1.2:3): domain=1 status=allocated pid=x uid=0"            },
        {1424, "audit(1.2:3): domain=1 status=allocated pid=5"                  },
        {1424, "audit(1.2:3): domain=1 status=allocated pid=5 uid=x"            },
        {1424, "audit(1.2:3): domain=1 status=allocated pid=5 uid=4294967296"   },
        {1424, "audit(1.2:3): domain=1 status=allocated pid=5 uid=-1"           },
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refusals),
        cmocka_unit_test(long_path),
        cmocka_unit_test(domains),
        cmocka_unit_test(refused_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
