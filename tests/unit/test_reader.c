/*
 * The kernel's refusals read with no capability (reader.h, evreader.h): the record's checked
 * decoder (every rule refused on its own), the supervisor's mapping of Landlock refusals to apps
 * by domain, and a real `rampart-unpack read` fed audit records as the kernel sends them (a
 * netlink header, the text unterminated) over a datagram socket pair: its records reach the
 * supervisor, and a reader killed with SIGKILL is restarted and read from again.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
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

#include "evreader.h"
#include "unpack.h"
#include "reader.h"

static void roundtrip(const rp_reader_record_t *r)
{
    uint8_t bin[RP_READER_RECORD_LEN];
    rp_reader_record_t back;

    assert_int_equal(rp_reader_encode(r, bin), RP_OK);
    assert_int_equal(rp_reader_decode(bin, sizeof(bin), &back), RP_OK);
    assert_int_equal(back.kind, r->kind);
    assert_int_equal(back.number, r->number);
    assert_true(back.domain == r->domain);
    assert_int_equal(back.uid, r->uid);
    assert_string_equal(back.component, r->component);
    assert_string_equal(back.reason, r->reason);
}

static void decoder(void **state)
{
    rp_reader_record_t ok = {.kind = RP_READER_CONNECTION, .component = "sensor"}, bad;
    uint8_t bin[RP_READER_RECORD_LEN], b[RP_READER_RECORD_LEN + 1];
    (void)state;

    snprintf(ok.reason, sizeof(ok.reason), "10.0.0.9:80");
    roundtrip(&ok);
    roundtrip(&(rp_reader_record_t){.kind = RP_READER_LANDLOCK,
                                    .domain = 0xa1,
                                    .reason = "write to /etc/x refused by Landlock"});
    roundtrip(&(rp_reader_record_t){.kind = RP_READER_DOMAIN_NEW, .domain = 7, .number = 500});
    roundtrip(&(rp_reader_record_t){
        .kind = RP_READER_DOMAIN_NEW, .domain = 7, .number = 500, .uid = 0x7e000001u});
    roundtrip(&(rp_reader_record_t){.kind = RP_READER_DOMAIN_GONE, .domain = 7});
    roundtrip(&(rp_reader_record_t){.kind = RP_READER_LOST_NFLOG, .number = 3});
    /* the encoder holds the same rules */
    bad = ok;
    bad.reason[0] = '\0';
    assert_int_equal(rp_reader_encode(&bad, bin), RP_ERR_INVALID_ARG);
    bad = ok;
    bad.domain = 1;
    assert_int_equal(rp_reader_encode(&bad, bin), RP_ERR_INVALID_ARG);
    bad = ok;
    bad.uid = 1; /* a uid goes with DOMAIN_NEW only */
    assert_int_equal(rp_reader_encode(&bad, bin), RP_ERR_INVALID_ARG);

    assert_int_equal(rp_reader_encode(&ok, bin), RP_OK);
    /* each field broken on the wire */
    assert_int_equal(rp_reader_decode(bin, sizeof(bin) - 1, &bad), RP_ERR_MALFORMED);
    memcpy(b, bin, sizeof(bin));
    assert_int_equal(rp_reader_decode(b, sizeof(b), &bad), RP_ERR_MALFORMED); /* one too many */
#define BROKEN(off, val)                                                                           \
    do {                                                                                           \
        memcpy(b, bin, sizeof(bin));                                                               \
        b[off] = (uint8_t)(val);                                                                   \
        assert_int_equal(rp_reader_decode(b, sizeof(bin), &bad), RP_ERR_MALFORMED);                \
        assert_int_equal(bad.kind, 0);                                                             \
    } while (0)
    BROKEN(0, 0);                         /* no kind */
    BROKEN(0, RP_READER_KIND_END);        /* an unknown kind */
    BROKEN(0, RP_READER_LANDLOCK);        /* a component where none goes, no domain */
    BROKEN(1, 0);                         /* an empty reason (the text after: not zero) */
    BROKEN(1, RP_EVENT_REASON_MAX + 1);   /* a reason over its field */
    BROKEN(1, 3);                         /* a reason's length short of its text */
    BROKEN(1, 20);                        /* ... past it: a NUL inside */
    BROKEN(2, 0);                         /* an empty component */
    BROKEN(2, RP_COMPONENT_NAME_MAX + 1); /* over its field */
    BROKEN(3, 1);                         /* the reserved byte */
    BROKEN(4, 1);                         /* a number where none goes */
    BROKEN(8, 1);                         /* a domain where none goes */
    BROKEN(RP_READER_OFF_UID, 1);         /* a uid where none goes */
    BROKEN(RP_READER_OFF_UID + 3, 0x7e);
    BROKEN(RP_READER_OFF_COMPONENT, '/');      /* not a component name */
    BROKEN(RP_READER_OFF_COMPONENT + 31, 'x'); /* the padding */
    BROKEN(RP_READER_OFF_REASON + 2, '\n');    /* a control character */
    BROKEN(RP_READER_OFF_REASON + 2, 0x80);    /* not UTF-8 */
    BROKEN(RP_READER_OFF_REASON + 254, 'x');   /* the padding */
#undef BROKEN
    /* a DOMAIN_NEW with a pid no kernel gives */
    assert_int_equal(
        rp_reader_encode(
            &(rp_reader_record_t){.kind = RP_READER_DOMAIN_NEW, .domain = 7, .number = 0x40000000u},
            bin),
        RP_ERR_INVALID_ARG);
}

static pid_t our_init = 500;
static uint32_t our_uid = 0x7e000000u; /* 2113929216: the app's */
static char seen[8][RP_EVENT_REASON_MAX + 1];
static size_t nseen, ntotal;

static rp_evreader_owner_t ours(pid_t init, uint32_t uid, const char **component, void *ctx)
{
    (void)ctx;
    if (init != our_init)
        return RP_EVREADER_NOT_OURS;
    *component = "ours";
    return uid == our_uid ? RP_EVREADER_OURS : RP_EVREADER_OTHER_UID;
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

static void net(rp_event_kind_t kind, const char *component, const char *reason, void *ctx)
{
    (void)kind, (void)component, (void)reason, (void)ctx;
    fail_msg("no packet was sent");
}

/* Take the reader's records until want refusals came (a dead reader restarted as it is due), at
 * most 20 s. */
static void pump(rp_evreader_t *r, const rp_evreader_hooks_t *hooks, size_t want)
{
    for (int i = 0; i < 400 && ntotal < want; i++) {
        struct pollfd p = {rp_evreader_fd(r), POLLIN, 0};
        if (p.fd < 0) {
            rp_evreader_tick(r, hooks);
            poll(NULL, 0, 50);
            continue;
        }
        if (poll(&p, 1, 50) > 0)
            rp_evreader_handle(r, hooks);
    }
}

/* Whether pid runs as the unpack user with no capability in any set. */
static bool no_capability(pid_t pid)
{
    char path[64], line[256], uid[64];
    int zero = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    snprintf(uid, sizeof(uid), "Uid:\t%u\t%u\t%u\t", RP_UNPACK_UID, RP_UNPACK_UID, RP_UNPACK_UID);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Uid:", 4) == 0 && strncmp(line, uid, strlen(uid)) != 0)
            zero = -100;
        if ((strncmp(line, "CapInh:", 7) == 0 || strncmp(line, "CapPrm:", 7) == 0 ||
             strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "CapAmb:", 7) == 0) &&
            strtoull(line + 7, NULL, 16) == 0)
            zero++;
        if (strncmp(line, "NoNewPrivs:", 11) == 0 && atoi(line + 11) == 1)
            zero++;
    }
    fclose(f);
    return zero == 5; /* four empty sets and no_new_privs (the bounding set is not asked) */
}

static void mapping(void **state)
{
    static rp_evreader_t r;
    rp_evreader_hooks_t hooks = {ours, refused, net, NULL};
    static const char *const recs[] = {
        /* a domain's first refusal comes before its domain record: held, then ours */
        "1423 audit(1.2:10): domain=a1 blockers=fs.write_file path=\"/etc/x\"",
        "1424 audit(1.2:10): domain=a1 status=allocated mode=enforcing pid=500 uid=2113929216",
        "1300 audit(1.2:10): arch=c000003e syscall=257 pid=501",
        /* its next refusals: mapped by the domain alone */
        "1423 audit(1.2:11): domain=a1 blockers=net.bind_tcp src=9001",
        /* another process's domain: not ours, nothing */
        "1423 audit(1.2:12): domain=b2 blockers=fs.read_file path=\"/y\"",
        "1424 audit(1.2:12): domain=b2 status=allocated mode=enforcing pid=77 uid=2113929216",
        "1423 audit(1.2:13): domain=b2 blockers=fs.read_file path=\"/y\"",
        /* a malformed record in between changes nothing */
        "1423 audit(garbage",
        /* the domain gone: forgotten (a later refusal naming it is not mapped) */
        "1424 audit(1.2:14): domain=a1 status=deallocated denials=2",
        "1423 audit(1.2:15): domain=a1 blockers=fs.read_file path=\"/z\"",
        /* a domain whose creator had our init's pid number (reused) but another uid: not ours,
         * neither its first refusal nor its next (a forged event, by pid reuse) */
        "1423 audit(1.2:40): domain=f6 blockers=fs.make_dir path=\"/forged\"",
        "1424 audit(1.2:40): domain=f6 status=allocated mode=enforcing pid=500 uid=4242",
        "1423 audit(1.2:41): domain=f6 blockers=fs.make_dir path=\"/forged\"",
        /* another event's records between a first refusal and its domain's record: mapped */
        "1423 audit(1.2:30): domain=d4 blockers=fs.read_file path=\"/v\"",
        "1423 audit(1.2:31): domain=e5 blockers=fs.read_file path=\"/u\"",
        "1424 audit(1.2:30): domain=d4 status=allocated mode=enforcing pid=500 uid=2113929216",
        "1424 audit(1.2:31): domain=e5 status=allocated mode=enforcing pid=78 uid=0",
    };
    static const char *const again[] = {
        "1424 audit(1.2:20): domain=c3 status=allocated mode=enforcing pid=500 uid=2113929216",
        "1423 audit(1.2:21): domain=c3 blockers=fs.read_file path=\"/w\"",
    };
    int sv[2];
    pid_t first;
    (void)state;

    /* the "audit socket": a datagram pair, handed to a real rampart-unpack read */
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
    memset(&r, 0, sizeof(r));
    r.audit_fd = sv[0];
    r.nflog_fd = -1;
    r.chan = -1;
    r.audit_req = -1; /* (no kernel counter to read) */
    r.backoff_ms = 1000;
    r.restart_ms = 1; /* due: tick starts it */
    snprintf(r.helper, sizeof(r.helper), "%s", RP_TEST_UNPACK);
    rp_evreader_tick(&r, &hooks);
    assert_true(r.pid > 0);
    first = r.pid;
    send_records(sv[1], recs, sizeof(recs) / sizeof(recs[0]));
    pump(&r, &hooks, 3);
    assert_int_equal(ntotal, 3);
    assert_string_equal(seen[0], "write to /etc/x refused by Landlock");
    assert_string_equal(seen[1], "TCP bind to port 9001 refused by Landlock");
    assert_string_equal(seen[2], "read of /v refused by Landlock");
    /* it reads with no capability at all, as the unpack user */
    assert_true(no_capability(first));
    /* killed: restarted after its backoff, and what the kernel queued meanwhile is read */
    assert_int_equal(kill(first, SIGKILL), 0);
    send_records(sv[1], again, 2);
    ntotal = 0;
    pump(&r, &hooks, 1);
    assert_int_equal(ntotal, 1);
    assert_string_equal(seen[3], "read of /w refused by Landlock");
    assert_true(r.pid > 0 && r.pid != first);
    assert_int_equal(r.deaths, 1);
    rp_evreader_close(&r); /* (closes sv[0]) */
    close(sv[1]);
}

/* Domains made by an init's pid number as another uid (a reused pid, or a flood of them): each
 * dropped, the warning said once for the lot (RP_EVREADER_SAY_MS), with the count. */
static void other_uid_bounded(void **state)
{
    static rp_evreader_t r;
    rp_evreader_hooks_t hooks = {ours, refused, net, NULL};
    char path[] = "/tmp/rp-test-reader-XXXXXX", text[4096];
    int fd = mkstemp(path), saved = dup(STDERR_FILENO), lines = 0;
    ssize_t n;
    (void)state;

    assert_true(fd >= 0 && saved >= 0);
    memset(&r, 0, sizeof(r));
    r.audit_fd = r.nflog_fd = r.chan = r.audit_req = -1;
    ntotal = 0;
    fflush(stderr);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    for (uint64_t d = 1; d <= 50; d++) {
        rp_reader_record_t rec = {.kind = RP_READER_DOMAIN_NEW,
                                  .domain = 0xf000 + d,
                                  .number = (uint32_t)our_init,
                                  .uid = 4242};
        rp_evreader_take(&r, &rec, &hooks);
        rec.kind = RP_READER_LANDLOCK;
        snprintf(rec.reason, sizeof(rec.reason), "read of /forged refused by Landlock");
        rp_evreader_take(&r, &rec, &hooks); /* its refusal: not mapped, nothing recorded */
    }
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    n = pread(fd, text, sizeof(text) - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    text[n] = '\0';
    for (const char *p = text; (p = strstr(p, "not the app's (a reused pid")) != NULL; p++)
        lines++;
    assert_int_equal(lines, 1);
    assert_non_null(strstr(text, "ours: a Landlock domain made by pid 500"));
    assert_int_equal(r.other_uid, 50);
    assert_int_equal(r.other_uid_new, 49); /* said at the next warning */
    assert_int_equal(ntotal, 0);
}

static char said[4][RP_EVENT_REASON_MAX + 1];
static size_t nsaid;

static void nameless(rp_event_kind_t kind, const char *component, const char *reason, void *ctx)
{
    (void)ctx;
    assert_int_equal(kind, RP_EVENT_LANDLOCK);
    assert_string_equal(component, "");
    if (nsaid < 4)
        snprintf(said[nsaid], sizeof(said[0]), "%s", reason);
    nsaid++;
}

/* The kernel's lost counter: the first reading is the base, growth is said once a minute at most
 * with the number since last said, and the counter's wrap is growth. */
static void kernel_lost(void **state)
{
    static rp_evreader_t r;
    rp_evreader_hooks_t hooks = {ours, refused, nameless, NULL};
    (void)state;

    memset(&r, 0, sizeof(r));
    r.audit_req = -1;
    rp_evreader_kernel_lost(&r, 1000, &hooks); /* the base: lost before us, not said */
    rp_evreader_kernel_lost(&r, 1000, &hooks);
    assert_int_equal(nsaid, 0);
    rp_evreader_kernel_lost(&r, 1005, &hooks);
    assert_int_equal(nsaid, 1);
    assert_string_equal(said[0], "5 kernel audit records lost");
    rp_evreader_kernel_lost(&r, 1007, &hooks); /* within the minute: kept, not said */
    assert_int_equal(nsaid, 1);
    assert_int_equal(r.kernel_lost_new, 2);
    r.kernel_lost_said_ms -= RP_EVREADER_SAY_MS; /* a minute later */
    r.kernel_lost = 0xfffffffeu;                 /* (as if it had come near its wrap) */
    rp_evreader_kernel_lost(&r, 1, &hooks);
    assert_int_equal(nsaid, 2);
    assert_string_equal(said[1], "5 kernel audit records lost"); /* 2 kept, 3 across the wrap */
    assert_int_equal(r.kernel_lost_all, 10);
}

static void missing(void **state)
{
    static rp_evreader_t au;
    char m[256] = "";
    (void)state;

    memset(&au, 0, sizeof(au));
    au.audit_fd = 3;
    rp_evreader_note_missing(&au, 7, m, sizeof(m));
    assert_string_equal(m, "");
    rp_evreader_note_missing(&au, 0, m, sizeof(m));
    assert_string_equal(m, "");
    rp_evreader_note_missing(&au, 6, m, sizeof(m));
    assert_string_equal(m, "Landlock refusals are not seen (the kernel's Landlock ABI is below 7)");
    m[0] = '\0';
    au.audit_fd = -1;
    snprintf(au.why, sizeof(au.why),
             "audit is off and cannot be turned on: Operation not permitted");
    snprintf(m, sizeof(m), "no cgroup namespace");
    rp_evreader_note_missing(&au, 7, m, sizeof(m));
    assert_string_equal(m, "no cgroup namespace; Landlock refusals are not seen (audit is off and "
                           "cannot be turned on: Operation not permitted)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decoder),           cmocka_unit_test(mapping),
        cmocka_unit_test(other_uid_bounded), cmocka_unit_test(kernel_lost),
        cmocka_unit_test(missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
