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

#include "events.h"
#include "proto.h"
#include "rampart/update_state.h"

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
        if (t == 4 || t == RP_MON_EVIDENCE || t == RP_MON_INSTALL)
            continue;
        q.type = t;
        request_round_trip();
    }
    /* A transcript hash of either length, from either side. */
    q.type = RP_MON_SIGN_TLS13;
    q.u.sign_tls13.side = RP_TLS13_CLIENT;
    q.u.sign_tls13.hash_len = 32;
    memset(q.u.sign_tls13.hash, 0x5a, RP_TLS13_HASH_MAX);
    request_round_trip();
    assert_int_equal(q2.u.sign_tls13.side, RP_TLS13_CLIENT);
    assert_int_equal(q2.u.sign_tls13.hash_len, 32);
    assert_memory_equal(q2.u.sign_tls13.hash, q.u.sign_tls13.hash, 32);
    q.u.sign_tls13.side = RP_TLS13_SERVER;
    q.u.sign_tls13.hash_len = RP_TLS13_HASH_MAX;
    request_round_trip();
    assert_int_equal(q2.u.sign_tls13.side, RP_TLS13_SERVER);
    assert_int_equal(q2.u.sign_tls13.hash_len, RP_TLS13_HASH_MAX);
    assert_memory_equal(q2.u.sign_tls13.hash, q.u.sign_tls13.hash, RP_TLS13_HASH_MAX);
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
        memset(c->last_version, 'w', RP_MON_VERSION_MAX);
        c->last_at = 1800000000 + (int64_t)i;
        c->trial = (uint8_t)(i % 2 ? 0xff : 1);
        memset(c->trial_digest, (int)i, RP_SHA256_LEN);
        c->trial_until = 1800000300 + (int64_t)i;
    }
    reply_round_trip();
    assert_int_equal(r2.u.status.n, RP_MON_COMPONENTS_MAX);
    assert_string_equal(r2.u.status.c[15].last_detail, r.u.status.c[15].last_detail);
    assert_int_equal(r2.u.status.c[15].security_counter, 15000);
    /* What status shows under the monitor: the last update's version and time, a handed trial. */
    assert_string_equal(r2.u.status.c[15].last_version, r.u.status.c[15].last_version);
    assert_int_equal(r2.u.status.c[15].last_at, 1800000015);
    assert_int_equal(r2.u.status.c[14].trial, 1);
    assert_int_equal(r2.u.status.c[15].trial, 0xff);
    assert_memory_equal(r2.u.status.c[14].trial_digest, r.u.status.c[14].trial_digest,
                        RP_SHA256_LEN);
    assert_int_equal(r2.u.status.c[14].trial_until, 1800000314);

    memset(&r.u, 0, sizeof(r.u));
    r.type = RP_MON_ID;
    memset(r.u.id.device_id, 'a', 64);
    r.u.id.rot_kind = 2;
    r.u.id.spki_len = RP_PUBKEY_DER_MAX;
    reply_round_trip();
    assert_string_equal(r2.u.id.device_id, r.u.id.device_id);
    assert_int_equal(r2.u.id.spki_len, RP_PUBKEY_DER_MAX);

    memset(&r.u, 0, sizeof(r.u));
    r.type = RP_MON_SIGN_TLS13;
    r.u.sign_tls13.len = RP_ECDSA_P256_SIG_MAX;
    memset(r.u.sign_tls13.sig, 3, r.u.sign_tls13.len);
    reply_round_trip();
    assert_memory_equal(r2.u.sign_tls13.sig, r.u.sign_tls13.sig, RP_ECDSA_P256_SIG_MAX);

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

    /* The largest APP_LIST fits a packet; every field comes back. */
    memset(&r.u, 0, sizeof(r.u));
    r.type = RP_MON_APP_LIST;
    r.u.app_list.n = RP_MON_APPS_MAX;
    for (size_t i = 0; i < RP_MON_APPS_MAX; i++) {
        rp_mon_app_t *a = &r.u.app_list.a[i];
        memset(a->component, 'c', RP_COMPONENT_NAME_MAX);
        memset(a->version, 'v', RP_MON_VERSION_MAX);
        memset(a->missing, 'm', RP_MON_MISSING_MAX);
        a->state = (uint8_t)(i % RP_MON_APP_STATE_END);
        a->restarts = (uint32_t)i;
        a->pid = 4000000;
        a->memory_kb = 65536;
        a->pids = 32;
        a->cpu_percent = 50;
        a->storage_kb = 1024;
    }
    reply_round_trip();
    assert_int_equal(r2.u.app_list.n, RP_MON_APPS_MAX);
    assert_memory_equal(&r2.u.app_list.a[15], &r.u.app_list.a[15], sizeof(rp_mon_app_t));
    assert_string_equal(rp_mon_app_state_name(r2.u.app_list.a[4].state), "restarting");
    assert_string_equal(rp_mon_app_state_name(RP_MON_APP_STATE_END), "?");
    /* Refused: a state past the enum, more apps than the maximum, a component name that is not
     * one (each a decoder's refusal, found by patching the encoded bytes). */
    {
        size_t len = 0, state_at;
        r.u.app_list.n = 1;
        assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
        state_at = RP_MON_HEADER_LEN + 2 + 1 + 2 + RP_COMPONENT_NAME_MAX + 2 + RP_MON_VERSION_MAX;
        buf[state_at] = RP_MON_APP_STATE_END;
        assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
        buf[state_at] = 0;
        buf[RP_MON_HEADER_LEN + 2 + 1 + 2] = '/';
        assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
        buf[RP_MON_HEADER_LEN + 2 + 1 + 2] = 'c';
        assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_OK);
        buf[RP_MON_HEADER_LEN + 2] = RP_MON_APPS_MAX + 1;
        assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_TOO_LARGE);
        r.u.app_list.a[0].state = RP_MON_APP_STATE_END;
        assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
    }
    /* Its request has no body. */
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_APP_LIST;
    request_round_trip();
    assert_int_equal(rp_mon_request_body_max(RP_MON_APP_LIST), 0);
    /* TRUST_ROOT: no body (the root comes as a descriptor), the kept root's version back (all 64
     * bits); only it and INSTALL carry a descriptor. */
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_TRUST_ROOT;
    q.id = 7;
    request_round_trip();
    assert_int_equal(rp_mon_request_body_max(RP_MON_TRUST_ROOT), 0);
    assert_string_equal(rp_mon_type_name(RP_MON_TRUST_ROOT), "trust-root");
    memset(&r.u, 0, sizeof(r.u));
    r.type = RP_MON_TRUST_ROOT;
    r.u.trust_root.version = 0x0102030405060708ull;
    reply_round_trip();
    assert_true(r2.u.trust_root.version == 0x0102030405060708ull);
    assert_true(rp_mon_type_takes_fd(RP_MON_TRUST_ROOT) && rp_mon_type_takes_fd(RP_MON_INSTALL));
    assert_false(rp_mon_type_takes_fd(RP_MON_STATUS) || rp_mon_type_takes_fd(RP_MON_EVIDENCE));

    /* An error reply carries its reason, not the type's fields. */
    r.type = RP_MON_SIGN_TLS13;
    r.status = RP_ERR_IO;
    snprintf(r.message, sizeof(r.message), "the TPM is gone");
    reply_round_trip();
    assert_string_equal(r2.message, "the TPM is gone");
}

/* A SIGN_TLS13 request's bytes (client side, a 32-byte hash), to break one way at a time. */
static size_t sign_packet(void)
{
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_SIGN_TLS13;
    q.id = 9;
    q.u.sign_tls13.side = RP_TLS13_CLIENT;
    q.u.sign_tls13.hash_len = RP_SHA256_LEN;
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
    /* Longer than the type allows (a 48-byte hash is its largest), even when the header agrees. */
    q.u.sign_tls13.hash_len = RP_TLS13_HASH_MAX;
    len = enc_req();
    assert_int_equal(len - RP_MON_HEADER_LEN, rp_mon_request_body_max(RP_MON_SIGN_TLS13));
    buf[len] = 0;
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
    buf[5] = RP_MON_VERSION + 1;
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
    /* The retired SIGN (type 4, any digest): an unknown type, whatever its body. */
    {
        static const uint8_t sign4[] = {0x52, 0x50, 0x4d, 0x4e, 0,  RP_MON_VERSION,
                                        0,    4,    0,    0,    0,  9,
                                        0,    0,    0,    34,   0,  32,
                                        1,    2,    3,    4,    5,  6,
                                        7,    8,    9,    10,   11, 12,
                                        13,   14,   15,   16,   17, 18,
                                        19,   20,   21,   22,   23, 24,
                                        25,   26,   27,   28,   29, 30,
                                        31,   32};
        assert_int_equal(rp_mon_request_decode(sign4, sizeof(sign4), &q2), RP_ERR_UNSUPPORTED);
        assert_false(rp_mon_type_known(4));
        assert_string_equal(rp_mon_type_name(4), "?");
        assert_int_equal(rp_mon_request_body_max(4), 0);
        q.type = 4;
        assert_int_equal(rp_mon_request_encode(&q, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
    }
    /* A side that is neither client nor server. */
    len = sign_packet();
    buf[RP_MON_HEADER_LEN] = 0;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    buf[RP_MON_HEADER_LEN] = 3;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    /* A hash of 31 bytes (too short), 33 (neither SHA-256 nor SHA-384), 49 (over its maximum). */
    len = sign_packet();
    buf[RP_MON_HEADER_LEN + 2] = RP_SHA256_LEN - 1;
    set_body_len(len - RP_MON_HEADER_LEN - 1);
    assert_int_equal(rp_mon_request_decode(buf, len - 1, &q2), RP_ERR_MALFORMED);
    len = sign_packet();
    buf[RP_MON_HEADER_LEN + 2] = RP_SHA256_LEN + 1;
    buf[len] = 0;
    set_body_len(len - RP_MON_HEADER_LEN + 1);
    assert_int_equal(rp_mon_request_decode(buf, len + 1, &q2), RP_ERR_MALFORMED);
    q.u.sign_tls13.hash_len = RP_TLS13_HASH_MAX + 1;
    assert_int_equal(rp_mon_request_encode(&q, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
    len = sign_packet();
    buf[RP_MON_HEADER_LEN + 2] = RP_TLS13_HASH_MAX + 1;
    memset(buf + len, 0, RP_TLS13_HASH_MAX + 1 - RP_SHA256_LEN);
    set_body_len(1 + 2 + RP_TLS13_HASH_MAX + 1);
    assert_int_equal(
        rp_mon_request_decode(buf, RP_MON_HEADER_LEN + 1 + 2 + RP_TLS13_HASH_MAX + 1, &q2),
        RP_ERR_TOO_LARGE);
    /* No side at all: the body is the old SIGN's (a bare 32-byte digest). */
    len = sign_packet();
    memmove(buf + RP_MON_HEADER_LEN, buf + RP_MON_HEADER_LEN + 1, len - RP_MON_HEADER_LEN - 1);
    set_body_len(len - RP_MON_HEADER_LEN - 1);
    assert_int_equal(rp_mon_request_decode(buf, len - 1, &q2), RP_ERR_TOO_LARGE);

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

/* What SIGN_TLS13 signs: RFC 8446 4.4.3's content, built and taken apart by one owner. */
static void test_tls13_content(void **state)
{
    static const char client[] = "TLS 1.3, client CertificateVerify";
    uint8_t hash[RP_TLS13_HASH_MAX], c[RP_TLS13_CV_CONTENT_MAX + 1], h[RP_TLS13_HASH_MAX];
    size_t len = 0, hlen = 0;
    rp_tls13_side_t side = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(hash); i++)
        hash[i] = (uint8_t)i;
    assert_int_equal(rp_tls13_cv_content(RP_TLS13_CLIENT, hash, 32, c, sizeof(c), &len), RP_OK);
    assert_int_equal(len, 64 + 33 + 1 + 32);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(c[i], 0x20);
    assert_memory_equal(c + 64, client, 33);
    assert_int_equal(c[97], 0);
    assert_memory_equal(c + 98, hash, 32);
    assert_int_equal(rp_tls13_cv_parse(c, len, &side, h, &hlen), RP_OK);
    assert_int_equal(side, RP_TLS13_CLIENT);
    assert_int_equal(hlen, 32);
    assert_memory_equal(h, hash, 32);
    assert_int_equal(rp_tls13_cv_content(RP_TLS13_SERVER, hash, 48, c, sizeof(c), &len), RP_OK);
    assert_memory_equal(c + 64, "TLS 1.3, server CertificateVerify", 33);
    assert_int_equal(rp_tls13_cv_parse(c, len, &side, h, &hlen), RP_OK);
    assert_int_equal(side, RP_TLS13_SERVER);
    assert_int_equal(hlen, 48);
    /* Refused to build: another side, another hash length, too small a buffer. */
    assert_int_equal(rp_tls13_cv_content(0, hash, 32, c, sizeof(c), &len), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_tls13_cv_content(RP_TLS13_CLIENT, hash, 33, c, sizeof(c), &len),
                     RP_ERR_INVALID_ARG);
    assert_int_equal(rp_tls13_cv_content(RP_TLS13_CLIENT, hash, 32, c, 129, &len),
                     RP_ERR_BUFFER_TOO_SMALL);
    /* Refused to take apart: a bare digest, a byte changed in each part, one byte more or less. */
    assert_int_equal(rp_tls13_cv_parse(hash, 32, &side, h, &hlen), RP_ERR_MALFORMED);
    assert_int_equal(rp_tls13_cv_content(RP_TLS13_CLIENT, hash, 32, c, sizeof(c), &len), RP_OK);
    assert_int_equal(rp_tls13_cv_parse(c, len - 1, &side, h, &hlen), RP_ERR_MALFORMED);
    c[len] = 0;
    assert_int_equal(rp_tls13_cv_parse(c, len + 1, &side, h, &hlen), RP_ERR_MALFORMED);
    for (size_t at = 0; at < 98; at += 13) {
        c[at] ^= 1;
        assert_int_equal(rp_tls13_cv_parse(c, len, &side, h, &hlen), RP_ERR_MALFORMED);
        c[at] ^= 1;
    }
    c[97] = 1;
    assert_int_equal(rp_tls13_cv_parse(c, len, &side, h, &hlen), RP_ERR_MALFORMED);
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

/* The app channel's types (11-14): their fields, their refusals, and where each may be asked. */
static void test_app_types(void **state)
{
    size_t len;

    (void)state;
    /* One owner says which socket answers which type. */
    for (rp_mon_type_t t = RP_MON_HELLO; t <= RP_MON_SIGN_TLS13; t++)
        if (rp_mon_type_known(t))
            assert_int_equal(rp_mon_type_channel(t), RP_MON_CHANNEL_AGENT);
    assert_int_equal(rp_mon_type_channel(RP_MON_APP_IDENTITY), RP_MON_CHANNEL_APP);
    assert_int_equal(rp_mon_type_channel(RP_MON_APP_SIGN_TLS13), RP_MON_CHANNEL_APP);
    assert_int_equal(rp_mon_type_channel(RP_MON_APP_CONNECT), RP_MON_CHANNEL_APP);
    assert_int_equal(rp_mon_type_channel(RP_MON_APP_INCOMING), RP_MON_CHANNEL_NONE);
    assert_int_equal(rp_mon_type_channel(4), RP_MON_CHANNEL_NONE);
    assert_int_equal(rp_mon_type_channel(RP_MON_TYPE_END), RP_MON_CHANNEL_NONE);
    assert_string_equal(rp_mon_type_name(RP_MON_APP_CONNECT), "app-connect");

    memset(&q, 0, sizeof(q));
    q.id = 11;
    q.type = RP_MON_APP_IDENTITY;
    request_round_trip();
    q.type = RP_MON_APP_SIGN_TLS13;
    q.u.sign_tls13.side = RP_TLS13_CLIENT;
    q.u.sign_tls13.hash_len = RP_TLS13_HASH_MAX;
    memset(q.u.sign_tls13.hash, 0x33, RP_TLS13_HASH_MAX);
    request_round_trip();
    assert_int_equal(q2.u.sign_tls13.hash_len, RP_TLS13_HASH_MAX);
    assert_memory_equal(q2.u.sign_tls13.hash, q.u.sign_tls13.hash, RP_TLS13_HASH_MAX);
    /* APP_SIGN_TLS13 keeps SIGN_TLS13's rules: a side that is neither is refused. */
    len = enc_req();
    buf[RP_MON_HEADER_LEN] = 7;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_APP_CONNECT;
    memset(q.u.app_connect.component, 'p', RP_COMPONENT_NAME_MAX);
    request_round_trip();
    assert_string_equal(q2.u.app_connect.component, q.u.app_connect.component);
    snprintf(q.u.app_connect.component, sizeof(q.u.app_connect.component), "../peer");
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    q.u.app_connect.component[0] = '\0';
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);

    /* Replies: the chain at its maximum, a signature, the caller's name with a descriptor. */
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_APP_IDENTITY;
    r.u.app_identity.len = RP_MON_CHAIN_MAX;
    memset(r.u.app_identity.chain, 'M', RP_MON_CHAIN_MAX);
    reply_round_trip();
    assert_int_equal(r2.u.app_identity.len, RP_MON_CHAIN_MAX);
    assert_memory_equal(r2.u.app_identity.chain, r.u.app_identity.chain, RP_MON_CHAIN_MAX);
    r.u.app_identity.len = RP_MON_CHAIN_MAX + 1;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_APP_SIGN_TLS13;
    r.u.sign_tls13.len = 70;
    memset(r.u.sign_tls13.sig, 1, 70);
    reply_round_trip();
    assert_int_equal(r2.u.sign_tls13.len, 70);
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_APP_CONNECT;
    reply_round_trip();
    r.type = RP_MON_APP_INCOMING;
    snprintf(r.u.app_incoming.component, sizeof(r.u.app_incoming.component), "caller");
    reply_round_trip();
    assert_string_equal(r2.u.app_incoming.component, "caller");
    /* An incoming that names no app is refused. */
    snprintf(r.u.app_incoming.component, sizeof(r.u.app_incoming.component), "a/b");
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    /* An empty chain is no chain. */
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_APP_IDENTITY;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
}

/* APP_CONTROL: the agent's, a component and one of the three actions; anything else refused. */
static void test_app_control(void **state)
{
    size_t len;

    (void)state;
    assert_int_equal(rp_mon_type_channel(RP_MON_APP_CONTROL), RP_MON_CHANNEL_AGENT);
    assert_string_equal(rp_mon_type_name(RP_MON_APP_CONTROL), "app-control");
    assert_false(rp_mon_type_takes_fd(RP_MON_APP_CONTROL));
    memset(&q, 0, sizeof(q));
    q.id = 17;
    q.type = RP_MON_APP_CONTROL;
    memset(q.u.app_control.component, 'c', RP_COMPONENT_NAME_MAX);
    for (uint8_t action = RP_MON_APP_STOP; action < RP_MON_APP_ACTION_END; action++) {
        q.u.app_control.action = action;
        request_round_trip();
        assert_string_equal(q2.u.app_control.component, q.u.app_control.component);
        assert_int_equal(q2.u.app_control.action, action);
    }
    q.u.app_control.action = 0;
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    q.u.app_control.action = RP_MON_APP_ACTION_END;
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    q.u.app_control.action = RP_MON_APP_STOP;
    snprintf(q.u.app_control.component, sizeof(q.u.app_control.component), "../etc");
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    /* No body in its reply. */
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_APP_CONTROL;
    reply_round_trip();
}

/* 21 APP_REMOVE: the agent's, one component name (the one rule: no "/", no leading dot), no
 * descriptor; no field in its reply. */
static void test_app_remove(void **state)
{
    size_t len;

    (void)state;
    assert_int_equal(RP_MON_APP_REMOVE, 21);
    assert_int_equal(rp_mon_type_channel(RP_MON_APP_REMOVE), RP_MON_CHANNEL_AGENT);
    assert_string_equal(rp_mon_type_name(RP_MON_APP_REMOVE), "app-remove");
    assert_false(rp_mon_type_takes_fd(RP_MON_APP_REMOVE));
    assert_int_equal(rp_mon_request_body_max(RP_MON_APP_REMOVE), 2 + RP_COMPONENT_NAME_MAX);
    memset(&q, 0, sizeof(q));
    q.id = 21;
    q.type = RP_MON_APP_REMOVE;
    memset(q.u.app_remove.component, 'r', RP_COMPONENT_NAME_MAX);
    request_round_trip();
    assert_string_equal(q2.u.app_remove.component, q.u.app_remove.component);
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len - 1, &q2), RP_ERR_TRUNCATED);
    buf[len] = 0;
    set_body_len(2 + RP_COMPONENT_NAME_MAX + 1);
    assert_int_equal(rp_mon_request_decode(buf, len + 1, &q2), RP_ERR_TOO_LARGE);
    for (size_t i = 0; i < 3; i++) {
        static const char *const bad[] = {"../etc", ".hidden", ""};
        snprintf(q.u.app_remove.component, sizeof(q.u.app_remove.component), "%s", bad[i]);
        len = enc_req();
        assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    }
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_APP_REMOVE;
    reply_round_trip();
    r.status = RP_ERR_DENIED;
    snprintf(r.message, sizeof(r.message), "not removed: the targets still name it");
    reply_round_trip();
    assert_string_equal(r2.message, r.message);
}

/* 22 MCU_VERDICT: the agent's, a component, the digest handed over (exactly 32 bytes), an outcome
 * that ends an install (installed, refused, rolled_back, failed: nothing else), a detail; no
 * descriptor; INSTALL's answer back. */
static void test_mcu_verdict(void **state)
{
    static const uint8_t outcomes[] = {RP_UPDATE_INSTALLED, RP_UPDATE_REFUSED,
                                       RP_UPDATE_ROLLED_BACK, RP_UPDATE_FAILED};
    static const uint8_t bad[] = {RP_UPDATE_NONE,      RP_UPDATE_PENDING, RP_UPDATE_UNCHANGED,
                                  RP_UPDATE_FELL_BACK, RP_UPDATE_HANDED,  0xff};
    size_t len;

    (void)state;
    assert_int_equal(RP_MON_MCU_VERDICT, 22);
    assert_int_equal(rp_mon_type_channel(RP_MON_MCU_VERDICT), RP_MON_CHANNEL_AGENT);
    assert_string_equal(rp_mon_type_name(RP_MON_MCU_VERDICT), "mcu-verdict");
    assert_false(rp_mon_type_takes_fd(RP_MON_MCU_VERDICT));
    assert_int_equal(rp_mon_request_body_max(RP_MON_MCU_VERDICT),
                     2 + RP_COMPONENT_NAME_MAX + 2 + RP_SHA256_LEN + 1 + 2 + RP_MON_DETAIL_MAX + 2 +
                         RP_MON_MCU_EVIDENCE_MAX);
    memset(&q, 0, sizeof(q));
    q.id = 22;
    q.type = RP_MON_MCU_VERDICT;
    memset(q.u.mcu_verdict.component, 'f', RP_COMPONENT_NAME_MAX);
    for (size_t i = 0; i < RP_SHA256_LEN; i++)
        q.u.mcu_verdict.digest[i] = (uint8_t)(i * 7);
    memset(q.u.mcu_verdict.detail, 'd', RP_MON_DETAIL_MAX);
    /* The board's evidence: any length up to its bound (none for an outcome that needs none). */
    q.u.mcu_verdict.evidence_len = 0;
    q.u.mcu_verdict.state = RP_UPDATE_REFUSED;
    request_round_trip();
    assert_int_equal(q2.u.mcu_verdict.evidence_len, 0);
    for (size_t i = 0; i < RP_MON_MCU_EVIDENCE_MAX; i++)
        q.u.mcu_verdict.evidence[i] = (uint8_t)(i * 13);
    q.u.mcu_verdict.evidence_len = RP_MON_MCU_EVIDENCE_MAX;
    for (size_t i = 0; i < sizeof(outcomes); i++) {
        q.u.mcu_verdict.state = outcomes[i];
        request_round_trip();
        assert_string_equal(q2.u.mcu_verdict.component, q.u.mcu_verdict.component);
        assert_memory_equal(q2.u.mcu_verdict.digest, q.u.mcu_verdict.digest, RP_SHA256_LEN);
        assert_int_equal(q2.u.mcu_verdict.state, outcomes[i]);
        assert_string_equal(q2.u.mcu_verdict.detail, q.u.mcu_verdict.detail);
        assert_int_equal(q2.u.mcu_verdict.evidence_len, RP_MON_MCU_EVIDENCE_MAX);
        assert_memory_equal(q2.u.mcu_verdict.evidence, q.u.mcu_verdict.evidence,
                            RP_MON_MCU_EVIDENCE_MAX);
    }
    len = enc_req(); /* the longest: at the type's maximum */
    assert_int_equal(len - RP_MON_HEADER_LEN, rp_mon_request_body_max(RP_MON_MCU_VERDICT));
    assert_int_equal(rp_mon_request_decode(buf, len - 1, &q2), RP_ERR_TRUNCATED);
    buf[len] = 0;
    set_body_len(len + 1 - RP_MON_HEADER_LEN);
    assert_int_equal(rp_mon_request_decode(buf, len + 1, &q2), RP_ERR_TOO_LARGE);
    for (size_t i = 0; i < sizeof(bad); i++) {
        q.u.mcu_verdict.state = bad[i];
        len = enc_req();
        assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    }
    q.u.mcu_verdict.state = RP_UPDATE_INSTALLED;
    snprintf(q.u.mcu_verdict.component, sizeof(q.u.mcu_verdict.component), "../fw");
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    /* The detail is text for people, logged by root: a control character (a newline that would
     * forge a log line, an escape, DEL, a C1 in UTF-8) is refused; other UTF-8 is kept. */
    snprintf(q.u.mcu_verdict.component, sizeof(q.u.mcu_verdict.component), "fw");
    {
        static const char *const forged[] = {"ok\nrampart-monitor: firmware 9.9.9: installed",
                                             "\033[2J",
                                             "a\rb",
                                             "tab\there",
                                             "del\x7f",
                                             "c1 \xc2\x9b[2J"};
        for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
            snprintf(q.u.mcu_verdict.detail, sizeof(q.u.mcu_verdict.detail), "%s", forged[i]);
            len = enc_req();
            assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
        }
        snprintf(q.u.mcu_verdict.detail, sizeof(q.u.mcu_verdict.detail), "refus\xc3\xa9: key");
        request_round_trip();
        assert_string_equal(q2.u.mcu_verdict.detail, q.u.mcu_verdict.detail);
    }
    /* A digest of 31 bytes: the field's length says so, the rest shifts. */
    len = enc_req();
    assert_int_equal(buf[RP_MON_HEADER_LEN + 2 + 2], 0);
    assert_int_equal(buf[RP_MON_HEADER_LEN + 2 + 2 + 1], RP_SHA256_LEN);
    buf[RP_MON_HEADER_LEN + 2 + 2 + 1] = RP_SHA256_LEN - 1;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    buf[RP_MON_HEADER_LEN + 2 + 2 + 1] = RP_SHA256_LEN + 1;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_TOO_LARGE);
    /* Evidence whose length says more than its bound, or more than the packet holds. */
    q.u.mcu_verdict.evidence_len = 4;
    len = enc_req();
    assert_int_equal(buf[len - 4 - 2], 0);
    assert_int_equal(buf[len - 4 - 1], 4);
    buf[len - 4 - 2] = (RP_MON_MCU_EVIDENCE_MAX + 1) >> 8;
    buf[len - 4 - 1] = (RP_MON_MCU_EVIDENCE_MAX + 1) & 0xff;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_TOO_LARGE);
    buf[len - 4 - 2] = 0;
    buf[len - 4 - 1] = 5;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_TRUNCATED);

    memset(&r, 0, sizeof(r));
    r.type = RP_MON_MCU_VERDICT;
    r.u.install.state = RP_UPDATE_INSTALLED;
    snprintf(r.u.install.detail, sizeof(r.u.install.detail), "confirmed on the MCU");
    reply_round_trip();
    assert_int_equal(r2.u.install.state, RP_UPDATE_INSTALLED);
    assert_string_equal(r2.u.install.detail, r.u.install.detail);
}

/* 19 SETTINGS: the device group's crash capture, one byte each way: 0 or 1, nothing else. */
static void test_settings_type(void **state)
{
    size_t len;

    (void)state;
    assert_int_equal(rp_mon_type_channel(RP_MON_SETTINGS), RP_MON_CHANNEL_AGENT);
    assert_string_equal(rp_mon_type_name(RP_MON_SETTINGS), "settings");
    assert_false(rp_mon_type_takes_fd(RP_MON_SETTINGS));
    assert_int_equal(rp_mon_request_body_max(RP_MON_SETTINGS), 1);
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_SETTINGS;
    for (uint8_t v = 0; v <= 1; v++) {
        q.u.settings.crash_capture = v;
        request_round_trip();
        assert_int_equal(q2.u.settings.crash_capture, v);
    }
    q.u.settings.crash_capture = 2; /* neither on nor off */
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    assert_int_equal(rp_mon_request_decode(buf, len - 1, &q2), RP_ERR_TRUNCATED);

    memset(&r, 0, sizeof(r));
    r.type = RP_MON_SETTINGS;
    r.u.settings.crash_capture = 1;
    reply_round_trip();
    assert_int_equal(r2.u.settings.crash_capture, 1);
    r.u.settings.crash_capture = 0xff;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
}

/* TARGETS (20): the signed targets as a descriptor, no body; the kept version back. */
static void test_targets_type(void **state)
{
    size_t len;

    (void)state;
    assert_int_equal(RP_MON_TARGETS, 20);
    assert_int_equal(rp_mon_type_channel(RP_MON_TARGETS), RP_MON_CHANNEL_AGENT);
    assert_string_equal(rp_mon_type_name(RP_MON_TARGETS), "targets");
    assert_true(rp_mon_type_known(RP_MON_TARGETS));
    assert_false(rp_mon_type_known(RP_MON_TYPE_END));
    assert_true(rp_mon_type_takes_fd(RP_MON_TARGETS));
    assert_int_equal(rp_mon_request_body_max(RP_MON_TARGETS), 0);
    /* The document is bounded where the monitor reads it, not in a packet. */
    assert_true(RP_MON_TARGETS_MAX >= 16 * 1024 && RP_MON_TARGETS_MAX <= 64 * 1024);
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_TARGETS;
    q.id = 20;
    request_round_trip();
    assert_int_equal(q2.type, RP_MON_TARGETS);
    /* A body, even one byte, is more than the type takes: refused before any field is read. */
    len = enc_req();
    buf[len] = 0;
    buf[15] = 1; /* body length */
    assert_int_equal(rp_mon_request_decode(buf, len + 1, &q2), RP_ERR_TOO_LARGE);
    assert_int_equal(q2.id, 20);
    /* A header cut short. */
    assert_int_equal(rp_mon_request_decode(buf, RP_MON_HEADER_LEN - 1, &q2), RP_ERR_TRUNCATED);
    /* A request sent as a reply's type is not one. */
    len = enc_req();
    buf[6] |= 0x80;
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_UNSUPPORTED);

    /* Its reply: the kept version, all 64 bits; short and long replies refused. */
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_TARGETS;
    r.u.targets.version = 0x8070605040302010ull;
    reply_round_trip();
    assert_true(r2.u.targets.version == 0x8070605040302010ull);
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len - 1, &r2), RP_ERR_TRUNCATED);
    /* The refusal's reason travels instead of the version. */
    r.status = RP_ERR_ROLLBACK;
    snprintf(r.message, sizeof(r.message), "targets metadata refused: older than the device's");
    reply_round_trip();
    assert_int_equal(r2.status, RP_ERR_ROLLBACK);
    assert_string_equal(r2.message, "targets metadata refused: older than the device's");
}

/* What the monitor recorded, for the agent (15 EVENTS, 16 APP_LOG): fields, bounds, refusals. */
static void test_record_types(void **state)
{
    size_t len, at;

    (void)state;
    assert_int_equal(RP_MON_TYPE_END, 23);
    assert_int_equal(rp_mon_type_channel(RP_MON_EVENTS), RP_MON_CHANNEL_AGENT);
    assert_int_equal(rp_mon_type_channel(RP_MON_APP_LOG), RP_MON_CHANNEL_AGENT);
    assert_string_equal(rp_mon_type_name(RP_MON_EVENTS), "events");
    assert_string_equal(rp_mon_type_name(RP_MON_APP_LOG), "app-log");
    assert_false(rp_mon_type_takes_fd(RP_MON_EVENTS) || rp_mon_type_takes_fd(RP_MON_APP_LOG));

    /* Requests: a cursor of 64 bits; a component and an offset. */
    memset(&q, 0, sizeof(q));
    q.id = 15;
    q.type = RP_MON_EVENTS;
    q.u.events.from = 0x0102030405060708ull;
    request_round_trip();
    assert_true(q2.u.events.from == 0x0102030405060708ull);
    assert_int_equal(rp_mon_request_body_max(RP_MON_EVENTS), 8);
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len - 1, &q2), RP_ERR_TRUNCATED);
    buf[len] = 0;
    set_body_len(9);
    assert_int_equal(rp_mon_request_decode(buf, len + 1, &q2), RP_ERR_TOO_LARGE);
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_APP_LOG;
    memset(q.u.app_log.component, 'l', RP_COMPONENT_NAME_MAX);
    q.u.app_log.offset = UINT64_MAX;
    request_round_trip();
    assert_string_equal(q2.u.app_log.component, q.u.app_log.component);
    assert_true(q2.u.app_log.offset == UINT64_MAX);
    /* The component name's rule (rp_component_name_valid): no path, no leading dot, not empty. */
    snprintf(q.u.app_log.component, sizeof(q.u.app_log.component), "../../events");
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    snprintf(q.u.app_log.component, sizeof(q.u.app_log.component), ".hidden");
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    q.u.app_log.component[0] = '\0';
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);

    /* The largest EVENTS reply fits a packet, every field back. */
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_EVENTS;
    r.u.events.n = RP_MON_EVENTS_PER_REPLY;
    r.u.events.more = 1;
    r.u.events.dropped = 1234;
    for (size_t i = 0; i < RP_MON_EVENTS_PER_REPLY; i++) {
        rp_mon_event_t *e = &r.u.events.e[i];
        e->seq = 1000 + i * 3;
        e->at = -5 + (int64_t)i; /* signed: a clock before 1970 comes back as it was */
        e->kind = (uint16_t)(1 + i % (RP_EVENT_KIND_END - 1));
        memset(e->app, 'a', RP_COMPONENT_NAME_MAX);
        memset(e->reason, 'r', RP_MON_REASON_MAX);
    }
    r.u.events.next = r.u.events.e[RP_MON_EVENTS_PER_REPLY - 1].seq + 1;
    reply_round_trip();
    assert_int_equal(r2.u.events.n, RP_MON_EVENTS_PER_REPLY);
    assert_int_equal(r2.u.events.more, 1);
    assert_true(r2.u.events.dropped == 1234 && r2.u.events.next == r.u.events.next);
    assert_memory_equal(&r2.u.events.e[0], &r.u.events.e[0], sizeof(rp_mon_event_t));
    assert_memory_equal(&r2.u.events.e[15], &r.u.events.e[15], sizeof(rp_mon_event_t));
    /* An event about no app. */
    r.u.events.e[3].app[0] = '\0';
    reply_round_trip();
    assert_string_equal(r2.u.events.e[3].app, "");
    /* Refused by the decoder, each found by breaking one encoded byte: */
    r.u.events.n = 2;
    r.u.events.next = r.u.events.e[1].seq + 1;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_OK);
    at = RP_MON_HEADER_LEN + 2;               /* next */
    buf[at + 7] = (uint8_t)(buf[at + 7] - 2); /* next not past the last event */
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    buf[at + 7] = (uint8_t)(buf[at + 7] + 2);
    at += 16; /* more */
    buf[at] = 2;
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    buf[at] = 1;
    buf[at + 1] = RP_MON_EVENTS_PER_REPLY + 1; /* n */
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_TOO_LARGE);
    buf[at + 1] = 2;
    at += 2 + 16; /* the first event's kind */
    buf[at + 1] = 0;
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    buf[at + 1] = RP_EVENT_KIND_END;
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    buf[at + 1] = 1;
    buf[at + 2 + 2] = '/'; /* its app is not a component name */
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    buf[at + 2 + 2] = 'a';
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_OK);
    /* Out of order: the second event not after the first. */
    r.u.events.e[1].seq = r.u.events.e[0].seq;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    /* The encoder refuses more than a reply holds. */
    r.u.events.n = RP_MON_EVENTS_PER_REPLY + 1;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
    /* An empty page: nothing after the cursor. */
    memset(&r.u, 0, sizeof(r.u));
    r.u.events.next = 7;
    reply_round_trip();
    assert_int_equal(r2.u.events.n, 0);
    assert_true(r2.u.events.next == 7);

    /* The largest APP_LOG reply fits a packet. */
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_APP_LOG;
    r.u.app_log.size = 1u << 20;
    r.u.app_log.offset = r.u.app_log.size - RP_MON_LOG_CHUNK;
    r.u.app_log.len = RP_MON_LOG_CHUNK;
    memset(r.u.app_log.data, 'x', RP_MON_LOG_CHUNK);
    reply_round_trip();
    assert_int_equal(r2.u.app_log.len, RP_MON_LOG_CHUNK);
    assert_true(r2.u.app_log.offset == r.u.app_log.offset);
    assert_memory_equal(r2.u.app_log.data, r.u.app_log.data, RP_MON_LOG_CHUNK);
    /* No bytes: the size alone (an offset past the end). */
    r.u.app_log.offset = r.u.app_log.size;
    r.u.app_log.len = 0;
    reply_round_trip();
    assert_true(r2.u.app_log.size == 1u << 20);
    /* Refused: more bytes than a reply holds; bytes past the size it names. */
    r.u.app_log.len = RP_MON_LOG_CHUNK + 1;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
    r.u.app_log.len = 10;
    r.u.app_log.offset = r.u.app_log.size - 9;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    r.u.app_log.offset = r.u.app_log.size + 1;
    r.u.app_log.len = 0;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
}

/* 18 CRASHES: a kept crash's file, piece by piece; bounds checked on decode. */
static void test_crashes_type(void **state)
{
    size_t len;

    (void)state;
    assert_int_equal(rp_mon_type_channel(RP_MON_CRASHES), RP_MON_CHANNEL_AGENT);
    assert_string_equal(rp_mon_type_name(RP_MON_CRASHES), "crashes");
    assert_false(rp_mon_type_takes_fd(RP_MON_CRASHES));
    assert_int_equal(rp_mon_request_body_max(RP_MON_CRASHES), 12);
    memset(&q, 0, sizeof(q));
    q.type = RP_MON_CRASHES;
    q.u.crashes.from = 0x0102030405060708ull;
    q.u.crashes.offset = RP_MON_CRASH_MAX;
    request_round_trip();
    assert_true(q2.u.crashes.from == q.u.crashes.from && q2.u.crashes.offset == RP_MON_CRASH_MAX);
    q.u.crashes.offset = RP_MON_CRASH_MAX + 1; /* past any file */
    len = enc_req();
    assert_int_equal(rp_mon_request_decode(buf, len, &q2), RP_ERR_MALFORMED);
    assert_int_equal(rp_mon_request_decode(buf, len - 1, &q2), RP_ERR_TRUNCATED);

    /* The largest reply fits a packet. */
    memset(&r, 0, sizeof(r));
    r.type = RP_MON_CRASHES;
    r.u.crashes.seq = 9;
    r.u.crashes.dropped = 3;
    r.u.crashes.size = RP_MON_CRASH_MAX;
    r.u.crashes.offset = RP_MON_CRASH_MAX - RP_MON_LOG_CHUNK;
    r.u.crashes.len = RP_MON_LOG_CHUNK;
    memset(r.u.crashes.data, 'c', RP_MON_LOG_CHUNK);
    reply_round_trip();
    assert_true(r2.u.crashes.seq == 9 && r2.u.crashes.dropped == 3);
    assert_int_equal(r2.u.crashes.len, RP_MON_LOG_CHUNK);
    assert_memory_equal(r2.u.crashes.data, r.u.crashes.data, RP_MON_LOG_CHUNK);
    /* None kept from there: no size, no bytes. */
    memset(&r.u, 0, sizeof(r.u));
    reply_round_trip();
    assert_true(r2.u.crashes.seq == 0 && r2.u.crashes.size == 0);
    /* Refused: a file past its bound, bytes past the size, a size with no crash. */
    r.u.crashes.seq = 1;
    r.u.crashes.size = RP_MON_CRASH_MAX + 1;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    r.u.crashes.size = 100;
    r.u.crashes.offset = 95;
    r.u.crashes.len = 6;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    r.u.crashes.offset = 101;
    r.u.crashes.len = 0;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    r.u.crashes.seq = 0;
    r.u.crashes.offset = 0;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_OK);
    assert_int_equal(rp_mon_reply_decode(buf, len, &r2), RP_ERR_MALFORMED);
    r.u.crashes.len = RP_MON_LOG_CHUNK + 1;
    assert_int_equal(rp_mon_reply_encode(&r, buf, sizeof(buf), &len), RP_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_control),
        cmocka_unit_test(test_app_remove),
        cmocka_unit_test(test_mcu_verdict),
        cmocka_unit_test(test_app_types),
        cmocka_unit_test(test_requests_round_trip),
        cmocka_unit_test(test_replies_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_tls13_content),
        cmocka_unit_test(test_transport),
        cmocka_unit_test(test_record_types),
        cmocka_unit_test(test_crashes_type),
        cmocka_unit_test(test_settings_type),
        cmocka_unit_test(test_targets_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
