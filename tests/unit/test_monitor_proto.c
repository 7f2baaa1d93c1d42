/*
 * The monitor protocol (device/monitor/proto.h): every request and reply round-trips, and the
 * decoder refuses each kind of bad packet with its own code; the transport carries one descriptor
 * and refuses oversize packets and extra descriptors.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto.h"

static uint8_t buf[RP_MON_PACKET_MAX + 64];
static rp_mon_request_t q, q2;
static rp_mon_reply_t r, r2;

static size_t enc_req(void)
{
    size_t len = 0;
    assert_int_equal(rp_mon_request_encode(&q, buf, sizeof(buf), &len), RP_OK);
    return len;
}

static void request_round_trip(void)
{
    size_t len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_OK);
    assert_int_equal(q2.type, q.type);
    assert_int_equal(q2.id, q.id);
    assert_true(len - RP_MON_HEADER_LEN <= rp_mon_request_body_max(q.type));
}

static void test_requests_round_trip(void **state)
{
    (void)state;
    memset(&q, 0, sizeof(q));
    q.id = 42;
    q.type = RP_MON_HELLO;
    q.u.hello.min_version = 1;
    q.u.hello.max_version = 3;
    request_round_trip();
    assert_int_equal(q2.u.hello.min_version, 1);
    assert_int_equal(q2.u.hello.max_version, 3);
    for (rp_mon_type_t t = RP_MON_STATUS; t <= RP_MON_RECOVER; t++) {
        if (t == RP_MON_SIGN || t == RP_MON_EVIDENCE || t == RP_MON_INSTALL)
            continue;
        q.type = t;
        request_round_trip();
    }
    q.type = RP_MON_SIGN;
    memset(q.u.sign.digest, 0x5a, RP_SHA256_LEN);
    request_round_trip();
    assert_memory_equal(q2.u.sign.digest, q.u.sign.digest, RP_SHA256_LEN);
    q.type = RP_MON_EVIDENCE;
    q.u.evidence.nonce_len = RP_EAT_NONCE_MAX;
    memset(q.u.evidence.nonce, 7, RP_EAT_NONCE_MAX);
    request_round_trip();
    assert_int_equal(q2.u.evidence.nonce_len, RP_EAT_NONCE_MAX);
    assert_memory_equal(q2.u.evidence.nonce, q.u.evidence.nonce, RP_EAT_NONCE_MAX);
    q.type = RP_MON_INSTALL;
    memset(q.u.install.component, 'x', RP_COMPONENT_NAME_MAX);
    q.u.install.component[RP_COMPONENT_NAME_MAX] = '\0';
    q.u.install.health_seconds = 0x01020304;
    request_round_trip();
    assert_string_equal(q2.u.install.component, q.u.install.component);
    assert_int_equal(q2.u.install.health_seconds, 0x01020304);
}

static void reply_round_trip(void)
{
    size_t len = 0;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_true(len <= RP_MON_PACKET_MAX);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_OK);
    assert_int_equal(r2.type, r.type);
    assert_int_equal(r2.id, r.id);
    assert_int_equal(r2.status, r.status);
    /* A reply is not a request, and a request is not a reply. */
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_UNSUPPORTED);
}

static void test_replies_round_trip(void **state)
{
    (void)state;
    memset(&r, 0, sizeof(r));
    r.id = 7;
    r.type = RP_MON_HELLO;
    r.u.hello.version = 1;
    r.u.hello.packet_max = RP_MON_PACKET_MAX;
    reply_round_trip();
    assert_int_equal(r2.u.hello.packet_max, RP_MON_PACKET_MAX);

    /* The largest STATUS fits a packet. */
    r.type = RP_MON_STATUS;
    r.u.status.n = RP_MON_COMPONENTS_MAX;
    for (size_t i = 0; i < RP_MON_COMPONENTS_MAX; i++) {
        rp_mon_component_t *c = &r.u.status.c[i];
        memset(c->name, 'n', RP_COMPONENT_NAME_MAX);
        memset(c->version, 'v', RP_MON_VERSION_MAX);
        memset(c->last_detail, 'd', RP_MON_DETAIL_MAX);
        c->active = (uint8_t)(i % 2);
        c->security_counter = (uint32_t)i * 1000;
        c->last_result = 3;
    }
    reply_round_trip();
    assert_int_equal(r2.u.status.n, RP_MON_COMPONENTS_MAX);
    assert_string_equal(r2.u.status.c[15].last_detail, r.u.status.c[15].last_detail);
    assert_int_equal(r2.u.status.c[15].security_counter, 15000);

    memset(&r.u, 0, sizeof(r.u));
    r.type = RP_MON_ID;
    memset(r.u.id.device_id, 'a', 64);
    r.u.id.rot_kind = 2;
    r.u.id.spki_len = RP_PUBKEY_DER_MAX;
    reply_round_trip();
    assert_string_equal(r2.u.id.device_id, r.u.id.device_id);
    assert_int_equal(r2.u.id.spki_len, RP_PUBKEY_DER_MAX);

    memset(&r.u, 0, sizeof(r.u));
    r.type = RP_MON_SIGN;
    r.u.sign.len = RP_ECDSA_P256_SIG_MAX;
    memset(r.u.sign.sig, 3, r.u.sign.len);
    reply_round_trip();
    assert_memory_equal(r2.u.sign.sig, r.u.sign.sig, RP_ECDSA_P256_SIG_MAX);

    /* The largest EVIDENCE is what sizes the packet. */
    memset(&r.u, 0, sizeof(r.u));
    r.type = RP_MON_EVIDENCE;
    r.u.evidence.len = RP_EAT_MAX_SIZE;
    memset(r.u.evidence.eat, 9, RP_EAT_MAX_SIZE);
    reply_round_trip();
    assert_int_equal(r2.u.evidence.len, RP_EAT_MAX_SIZE);

    memset(&r.u, 0, sizeof(r.u));
    r.type = RP_MON_INSTALL;
    r.u.install.state = 6;
    snprintf(r.u.install.detail, sizeof(r.u.install.detail), "not signed by a trusted key");
    reply_round_trip();
    assert_string_equal(r2.u.install.detail, r.u.install.detail);

    memset(&r.u, 0, sizeof(r.u));
    r.type = RP_MON_RECOVER;
    r.u.recover.unbootable = 2;
    reply_round_trip();
    assert_int_equal(r2.u.recover.unbootable, 2);

    /* An error reply carries its reason, not the type's fields. */
    r.type = RP_MON_SIGN;
    r.status = RP_ERR_IO;
    snprintf(r.message, sizeof(r.message), "the TPM is gone");
    reply_round_trip();
    assert_string_equal(r2.message, "the TPM is gone");
}

/* A SIGN request's bytes, to break one way at a time. */
static size_t sign_packet(void)
{
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_SIGN;
    q.id = 9;
    return enc_req();
}

static void set_body_len(size_t len)
{
    buf[12] = (uint8_t)(len >> 24);
    buf[13] = (uint8_t)(len >> 16);
    buf[14] = (uint8_t)(len >> 8);
    buf[15] = (uint8_t)len;
}

static void test_refusals(void **state)
{
    size_t len;

    (void)state;
    len = sign_packet();
    assert_int_equal(rp_mon_request_decode(buf, 0, &q2), RP_ERR_TRUNCATED);
    assert_int_equal(rp_mon_request_decode(buf, RP_MON_HEADER_LEN - 1, &q2), RP_ERR_TRUNCATED);
    /* The body shorter than the header says. */
    assert_int_equal(rp_mon_request_decode(buf, len - 1, &q2), RP_ERR_TRUNCATED);
    /* Longer than the header says: bytes left over. */
    assert_int_equal(rp_mon_request_decode(buf, len + 1, &q2), RP_ERR_MALFORMED);
    /* Longer than the type allows, even when the header agrees. */
    set_body_len(len - RP_MON_HEADER_LEN + 1);
    assert_int_equal(rp_mon_request_decode(buf, len + 1, &q2), RP_ERR_TOO_LARGE);
    set_body_len(len - RP_MON_HEADER_LEN);
    /* Longer than any packet. */
    assert_int_equal(rp_mon_request_decode(buf, RP_MON_PACKET_MAX + 1, &q2), RP_ERR_TOO_LARGE);
    /* Magic, version, type. */
    len = sign_packet();
    buf[0] ^= 1;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_BAD_MAGIC);
    len = sign_packet();
    buf[5] = 2;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_BAD_VERSION);
    assert_int_equal(q2.id, 9); /* the header's id, to answer with */
    len = sign_packet();
    buf[7] = RP_MON_TYPE_END;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_UNSUPPORTED);
    buf[7] = 0;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_UNSUPPORTED);
    len = sign_packet();
    buf[6] = 0x80; /* a reply's type */
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_UNSUPPORTED);
    /* A digest that is not 32 bytes. */
    len = sign_packet();
    buf[RP_MON_HEADER_LEN + 1] = RP_SHA256_LEN - 1;
    set_body_len(len - RP_MON_HEADER_LEN - 1);
    assert_int_equal(rp_mon_request_decode(buf, len - 1, &q2), RP_ERR_MALFORMED);

    /* A nonce too short, and one over its maximum. */
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_EVIDENCE;
    q.u.evidence.nonce_len = RP_EAT_NONCE_MIN - 1;
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    q.u.evidence.nonce_len = RP_EAT_NONCE_MAX + 1;
    assert_int_equal(rp_mon_request_encode(&q, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);

    /* A component's name: over its maximum, not a name, holding a NUL. */
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_INSTALL;
    snprintf(q.u.install.component, sizeof(q.u.install.component), "app");
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_OK);
    {
        /* name length 33, no room left for the u32: within the type's maximum, past the field's */
        uint8_t *b = buf + RP_MON_HEADER_LEN;
        b[0] = 0;
        b[1] = RP_COMPONENT_NAME_MAX + 1;
        memset(b + 2, 'x', RP_COMPONENT_NAME_MAX + 1);
        set_body_len(2 + RP_COMPONENT_NAME_MAX + 1);
        assert_int_equal(
            rp_mon_request_decode(buf, RP_MON_HEADER_LEN + 2 + RP_COMPONENT_NAME_MAX + 1, &q2),
            RP_ERR_TOO_LARGE);
    }
    snprintf(q.u.install.component, sizeof(q.u.install.component), "../x");
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    snprintf(q.u.install.component, sizeof(q.u.install.component), "abc");
    len = enc_req();
    buf[RP_MON_HEADER_LEN + 3] = '\0'; /* "a\0c" */
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    /* A body on a request that has none. */
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_STATUS;
    len = enc_req();
    buf[len] = 0;
    set_body_len(1);
    assert_int_equal(rp_mon_request_decode(buf, len + 1, &q2), RP_ERR_TOO_LARGE);
    /* A reply whose status count is past its maximum. */
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_STATUS;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    buf[len - 1] = RP_MON_COMPONENTS_MAX + 1;
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_TOO_LARGE);
}

static void test_transport(void **state)
{
    int sv[2], fd, p[2], p2[2];
    size_t len;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(pipe(p), 0);
    /* One packet, one descriptor: it arrives and works. */
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_STATUS;
    len = enc_req();
    assert_int_equal(rp_mon_send(sv[0], buf, len, p[1]), RP_OK);
    assert_int_equal(rp_mon_recv(sv[1], buf, sizeof(buf), &len, &fd), RP_OK);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    /* Larger than the receiver's buffer: refused, not cut short and parsed. */
    assert_int_equal(rp_mon_send(sv[0], buf, 100, -1), RP_OK);
    assert_int_equal(rp_mon_recv(sv[1], buf, 50, &len, &fd), RP_ERR_TOO_LARGE);
    assert_int_equal(fd, -1);
    /* Two descriptors: refused, and neither is kept. */
    {
        union {
            struct cmsghdr h;
            char space[CMSG_SPACE(2 * sizeof(int))];
        } ctl;
        struct iovec iov = {buf, 16};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = ctl.space,
                           .msg_controllen = sizeof(ctl.space)};
        int two[2];
        assert_int_equal(pipe(p2), 0);
        two[0] = p2[0];
        two[1] = p2[1];
        memset(&ctl, 0, sizeof(ctl));
        CMSG_FIRSTHDR(&m)->cmsg_level = SOL_SOCKET;
        CMSG_FIRSTHDR(&m)->cmsg_type = SCM_RIGHTS;
        CMSG_FIRSTHDR(&m)->cmsg_len = CMSG_LEN(sizeof(two));
        memcpy(CMSG_DATA(CMSG_FIRSTHDR(&m)), two, sizeof(two));
        assert_int_equal(sendmsg(sv[0], &m, 0), 16);
        close(p2[1]);
        assert_int_equal(rp_mon_recv(sv[1], buf, sizeof(buf), &len, &fd), RP_ERR_MALFORMED);
        assert_int_equal(fd, -1);
        /* The write end's copy the receiver got was closed: the read end sees EOF. */
        {
            char c;
            assert_int_equal(read(p2[0], &c, 1), 0);
        }
        close(p2[0]);
    }
    /* The peer gone: "not found". */
    close(sv[0]);
    assert_int_equal(rp_mon_recv(sv[1], buf, sizeof(buf), &len, &fd), RP_ERR_NOT_FOUND);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_round_trip),
        cmocka_unit_test(test_replies_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
