/*
 * The monitor protocol's encoders and decoders (the one owner of its layout: proto.h), and the
 * packet transport over SOCK_SEQPACKET with SCM_RIGHTS. Bounded and allocation-free.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "events.h"
#include "proto.h"
#include "rampart/bytes.h"
#include "rampart/text.h"

/* ---- fields ---- */

typedef struct wr {
    uint8_t *buf;
    size_t cap, len;
    rp_err_t err;
} wr_t;

typedef struct rd {
    const uint8_t *buf;
    size_t len, pos;
    rp_err_t err;
} rd_t;

static void put(wr_t *w, const void *p, size_t n)
{
    if (w->err != RP_OK)
        return;
    if (n > w->cap - w->len) {
        w->err = RP_ERR_BUFFER_TOO_SMALL;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_u8(wr_t *w, uint8_t v)
{
    put(w, &v, 1);
}

/* The protocol's integers: n bytes, big-endian. */
static void put_be(wr_t *w, uint64_t v, size_t n)
{
    uint8_t b[8];
    rp_be_put(b, v, n);
    put(w, b, n);
}

static void put_u16(wr_t *w, uint16_t v)
{
    put_be(w, v, 2);
}

static void put_u32(wr_t *w, uint32_t v)
{
    put_be(w, v, 4);
}

/* A byte string of at most max bytes: an encoder holding more is the caller's bug. */
static void put_bytes(wr_t *w, const void *p, size_t n, size_t max)
{
    if (n > max && w->err == RP_OK)
        w->err = RP_ERR_INVALID_ARG;
    put_u16(w, (uint16_t)n);
    put(w, p, n);
}

static void put_str(wr_t *w, const char *s, size_t max)
{
    put_bytes(w, s, strnlen(s, max + 1), max);
}

static const uint8_t *get(rd_t *r, size_t n)
{
    const uint8_t *p;

    if (r->err != RP_OK)
        return NULL;
    if (n > r->len - r->pos) {
        r->err = RP_ERR_TRUNCATED;
        return NULL;
    }
    p = r->buf + r->pos;
    r->pos += n;
    return p;
}

static uint8_t get_u8(rd_t *r)
{
    const uint8_t *p = get(r, 1);
    return p != NULL ? p[0] : 0;
}

static uint64_t get_be(rd_t *r, size_t n)
{
    const uint8_t *p = get(r, n);
    return p != NULL ? rp_be_get(p, n) : 0;
}

static uint16_t get_u16(rd_t *r)
{
    return (uint16_t)get_be(r, 2);
}

static uint32_t get_u32(rd_t *r)
{
    return (uint32_t)get_be(r, 4);
}

/* A byte string of min to max bytes, copied into out (cap >= max). */
static void get_bytes(rd_t *r, uint8_t *out, size_t *n, size_t min, size_t max)
{
    size_t len = get_u16(r);
    const uint8_t *p;

    if (r->err == RP_OK && len > max)
        r->err = RP_ERR_TOO_LARGE;
    else if (r->err == RP_OK && len < min)
        r->err = RP_ERR_MALFORMED;
    p = get(r, len);
    *n = 0;
    if (p != NULL) {
        memcpy(out, p, len);
        *n = len;
    }
}

/* A string of at most max bytes, no NUL in it; out holds max + 1. */
static void get_str(rd_t *r, char *out, size_t max)
{
    size_t n;

    get_bytes(r, (uint8_t *)out, &n, 0, max);
    out[n] = '\0';
    if (r->err == RP_OK && strlen(out) != n)
        r->err = RP_ERR_MALFORMED;
}

/* Text a client sends for people: a string (get_str) with no control character (rampart/text.h),
 * so that what the monitor logs or stores from it cannot forge a line or act on a terminal. */
static void get_text(rd_t *r, char *out, size_t max)
{
    get_str(r, out, max);
    if (r->err == RP_OK && !rp_text_no_controls(out))
        r->err = RP_ERR_MALFORMED;
}

/* ---- header ---- */

/* MCU_VERDICT: component str(32), digest bytes(32), state u8, detail str(255), evidence
 * bytes(0-2048). */
#define VERDICT_MAX                                                                                \
    (2 + RP_COMPONENT_NAME_MAX + 2 + RP_SHA256_LEN + 1 + 2 + RP_MON_DETAIL_MAX + 2 +               \
     RP_MON_MCU_EVIDENCE_MAX)

static const struct {
    const char *name;
    size_t body_max;          /* a request's */
    rp_mon_channel_t channel; /* where it is asked (0: the agent's socket) */
} types[RP_MON_TYPE_END] = {
    [RP_MON_HELLO] = {"hello",          4,                             RP_MON_CHANNEL_AGENT},
    [RP_MON_STATUS] = {"status",         0,                             RP_MON_CHANNEL_AGENT},
    [RP_MON_ID] = {"id",             0,                             RP_MON_CHANNEL_AGENT},
    [RP_MON_EVIDENCE] = {"evidence",       2 + RP_EAT_NONCE_MAX,          RP_MON_CHANNEL_AGENT},
    [RP_MON_INSTALL] = {"install",        2 + RP_COMPONENT_NAME_MAX + 4, RP_MON_CHANNEL_AGENT},
    [RP_MON_RECOVER] = {"recover",        0,                             RP_MON_CHANNEL_AGENT},
    [RP_MON_SIGN_TLS13] = {"sign-tls13",     1 + 2 + RP_TLS13_HASH_MAX,     RP_MON_CHANNEL_AGENT},
    [RP_MON_APP_LIST] = {"app-list",       0,                             RP_MON_CHANNEL_AGENT},
    [RP_MON_TRUST_ROOT] = {"trust-root",     0,                             RP_MON_CHANNEL_AGENT},
    [RP_MON_APP_IDENTITY] = {"app-identity",   0,                             RP_MON_CHANNEL_APP  },
    [RP_MON_APP_SIGN_TLS13] = {"app-sign-tls13", 1 + 2 + RP_TLS13_HASH_MAX,     RP_MON_CHANNEL_APP  },
    [RP_MON_APP_CONNECT] = {"app-connect",    2 + RP_COMPONENT_NAME_MAX,     RP_MON_CHANNEL_APP  },
    [RP_MON_APP_INCOMING] = {"app-incoming",   0,                             RP_MON_CHANNEL_NONE },
    [RP_MON_EVENTS] = {"events",         8,                             RP_MON_CHANNEL_AGENT},
    [RP_MON_APP_LOG] = {"app-log",        2 + RP_COMPONENT_NAME_MAX + 8, RP_MON_CHANNEL_AGENT},
    [RP_MON_APP_CONTROL] = {"app-control",    2 + RP_COMPONENT_NAME_MAX + 1, RP_MON_CHANNEL_AGENT},
    [RP_MON_CRASHES] = {"crashes",        8 + 4,                         RP_MON_CHANNEL_AGENT},
    [RP_MON_SETTINGS] = {"settings",       1,                             RP_MON_CHANNEL_AGENT},
    [RP_MON_TARGETS] = {"targets",        0,                             RP_MON_CHANNEL_AGENT},
    [RP_MON_APP_REMOVE] = {"app-remove",     2 + RP_COMPONENT_NAME_MAX,     RP_MON_CHANNEL_AGENT},
    [RP_MON_MCU_VERDICT] = {"mcu-verdict",    VERDICT_MAX,                   RP_MON_CHANNEL_AGENT},
};

_Static_assert(RP_MON_REASON_MAX == RP_EVENT_REASON_MAX, "EVENTS carries a whole reason");
/* The longest EVENTS and APP_LOG replies fit in a packet. */
_Static_assert(RP_MON_HEADER_LEN + 2 + 8 + 8 + 1 + 1 +
                       RP_MON_EVENTS_PER_REPLY *
                           (8 + 8 + 2 + 2 + RP_COMPONENT_NAME_MAX + 2 + RP_MON_REASON_MAX) <=
                   RP_MON_PACKET_MAX,
               "an EVENTS reply must fit in a packet");
_Static_assert(RP_MON_HEADER_LEN + 2 + 8 + 8 + 2 + RP_MON_LOG_CHUNK <= RP_MON_PACKET_MAX,
               "an APP_LOG reply must fit in a packet");
_Static_assert(RP_MON_HEADER_LEN + 2 + 8 + 8 + 4 + 4 + 2 + RP_MON_LOG_CHUNK <= RP_MON_PACKET_MAX,
               "a CRASHES reply must fit in a packet");

/* The longest APP_LIST reply fits in a packet (the transport's buffers are RP_MON_PACKET_MAX). */
_Static_assert(RP_MON_HEADER_LEN + 2 + 1 +
                       RP_MON_APPS_MAX * (2 + RP_COMPONENT_NAME_MAX + 2 + RP_MON_VERSION_MAX + 1 +
                                          6 * 4 + 2 + RP_MON_MISSING_MAX) <=
                   RP_MON_PACKET_MAX,
               "an APP_LIST reply must fit in a packet");
_Static_assert(RP_MON_HEADER_LEN + 2 + 1 +
                       RP_MON_COMPONENTS_MAX *
                           (2 + RP_COMPONENT_NAME_MAX + 2 * (2 + RP_MON_VERSION_MAX) + 1 + 4 + 1 +
                            2 + RP_MON_DETAIL_MAX + 8 + 1 + 2 + RP_SHA256_LEN + 8) <=
                   RP_MON_PACKET_MAX,
               "a STATUS reply must fit in a packet");
_Static_assert(RP_MON_HEADER_LEN + VERDICT_MAX <= RP_MON_PACKET_MAX,
               "an MCU_VERDICT request must fit in a packet");

static const char *const app_states[RP_MON_APP_STATE_END] = {
    [RP_MON_APP_STOPPED] = "stopped",       [RP_MON_APP_STARTING] = "starting",
    [RP_MON_APP_READY] = "ready",           [RP_MON_APP_RUNNING] = "running",
    [RP_MON_APP_RESTARTING] = "restarting",
};

const char *rp_mon_app_state_name(unsigned state)
{
    return state < RP_MON_APP_STATE_END ? app_states[state] : "?";
}

static bool type_known(unsigned t)
{
    return t > 0 && t < RP_MON_TYPE_END && types[t].name != NULL;
}

int rp_mon_type_known(unsigned type)
{
    return type_known(type);
}

int rp_mon_type_takes_fd(rp_mon_type_t type)
{
    return type == RP_MON_INSTALL || type == RP_MON_TRUST_ROOT || type == RP_MON_TARGETS;
}

static void put_u64(wr_t *w, uint64_t v)
{
    put_be(w, v, 8);
}

static uint64_t get_u64(rd_t *r)
{
    return get_be(r, 8);
}

size_t rp_mon_request_body_max(rp_mon_type_t type)
{
    return type_known(type) ? types[type].body_max : 0;
}

const char *rp_mon_type_name(rp_mon_type_t type)
{
    return type_known(type) ? types[type].name : "?";
}

rp_mon_channel_t rp_mon_type_channel(rp_mon_type_t type)
{
    return type_known(type) ? types[type].channel : RP_MON_CHANNEL_NONE;
}

static void put_header(wr_t *w, unsigned type, uint32_t id)
{
    put_u32(w, RP_MON_MAGIC);
    put_u16(w, RP_MON_VERSION);
    put_u16(w, (uint16_t)type);
    put_u32(w, id);
    put_u32(w, 0); /* the body's length: finish() fills it in */
}

static rp_err_t finish(wr_t *w, size_t *len)
{
    size_t body = w->len - RP_MON_HEADER_LEN;

    if (w->err != RP_OK)
        return w->err;
    rp_be_put(w->buf + 12, body, 4);
    *len = w->len;
    return RP_OK;
}

/* The header's checks, shared by both directions. OUT: *type (without RP_MON_REPLY), *id. */
static rp_err_t get_header(rd_t *r, bool reply, unsigned *type, uint32_t *id)
{
    uint32_t magic, body;
    uint16_t version, t;

    *type = 0;
    *id = 0;
    if (r->len < RP_MON_HEADER_LEN)
        return RP_ERR_TRUNCATED;
    if (r->len > RP_MON_PACKET_MAX)
        return RP_ERR_TOO_LARGE;
    magic = get_u32(r);
    version = get_u16(r);
    t = get_u16(r);
    *id = get_u32(r);
    body = get_u32(r);
    *type = t & ~RP_MON_REPLY;
    if (magic != RP_MON_MAGIC)
        return RP_ERR_BAD_MAGIC;
    if (version != RP_MON_VERSION)
        return RP_ERR_BAD_VERSION;
    if (!type_known(*type) || ((t & RP_MON_REPLY) != 0) != reply)
        return RP_ERR_UNSUPPORTED;
    if (body != r->len - RP_MON_HEADER_LEN)
        return body > r->len - RP_MON_HEADER_LEN ? RP_ERR_TRUNCATED : RP_ERR_MALFORMED;
    if (!reply && body > types[*type].body_max)
        return RP_ERR_TOO_LARGE;
    return RP_OK;
}

/* ---- requests ---- */

rp_err_t rp_mon_request_encode(const rp_mon_request_t *q, uint8_t *buf, size_t cap, size_t *len)
{
    wr_t w = {buf, cap, 0, RP_OK};

    if (!type_known(q->type))
        return RP_ERR_INVALID_ARG;
    put_header(&w, q->type, q->id);
    switch (q->type) {
    case RP_MON_HELLO:
        put_u16(&w, q->u.hello.min_version);
        put_u16(&w, q->u.hello.max_version);
        break;
    case RP_MON_SIGN_TLS13:
    case RP_MON_APP_SIGN_TLS13:
        put_u8(&w, q->u.sign_tls13.side);
        put_bytes(&w, q->u.sign_tls13.hash, q->u.sign_tls13.hash_len, RP_TLS13_HASH_MAX);
        break;
    case RP_MON_APP_CONNECT: put_str(&w, q->u.app_connect.component, RP_COMPONENT_NAME_MAX); break;
    case RP_MON_APP_REMOVE: put_str(&w, q->u.app_remove.component, RP_COMPONENT_NAME_MAX); break;
    case RP_MON_EVIDENCE:
        put_bytes(&w, q->u.evidence.nonce, q->u.evidence.nonce_len, RP_EAT_NONCE_MAX);
        break;
    case RP_MON_INSTALL:
        put_str(&w, q->u.install.component, RP_COMPONENT_NAME_MAX);
        put_u32(&w, q->u.install.health_seconds);
        break;
    case RP_MON_EVENTS: put_u64(&w, q->u.events.from); break;
    case RP_MON_APP_LOG:
        put_str(&w, q->u.app_log.component, RP_COMPONENT_NAME_MAX);
        put_u64(&w, q->u.app_log.offset);
        break;
    case RP_MON_APP_CONTROL:
        put_str(&w, q->u.app_control.component, RP_COMPONENT_NAME_MAX);
        put_u8(&w, q->u.app_control.action);
        break;
    case RP_MON_CRASHES:
        put_u64(&w, q->u.crashes.from);
        put_u32(&w, q->u.crashes.offset);
        break;
    case RP_MON_SETTINGS: put_u8(&w, q->u.settings.crash_capture); break;
    case RP_MON_MCU_VERDICT:
        put_str(&w, q->u.mcu_verdict.component, RP_COMPONENT_NAME_MAX);
        put_bytes(&w, q->u.mcu_verdict.digest, RP_SHA256_LEN, RP_SHA256_LEN);
        put_u8(&w, q->u.mcu_verdict.state);
        put_str(&w, q->u.mcu_verdict.detail, RP_MON_DETAIL_MAX);
        put_bytes(&w, q->u.mcu_verdict.evidence, q->u.mcu_verdict.evidence_len,
                  RP_MON_MCU_EVIDENCE_MAX);
        break;
    default: /* STATUS, ID, RECOVER, APP_LIST, TRUST_ROOT, TARGETS, APP_IDENTITY, APP_INCOMING:
              * no body */
        break;
    }
    return finish(&w, len);
}

rp_err_t rp_mon_request_decode(const uint8_t *buf, size_t len, rp_mon_request_t *q)
{
    rd_t r = {buf, len, 0, RP_OK};
    unsigned type;
    rp_err_t err;

    memset(q, 0, sizeof(*q));
    err = get_header(&r, false, &type, &q->id);
    q->type = (rp_mon_type_t)type;
    if (err != RP_OK)
        return err;
    switch (q->type) {
    case RP_MON_HELLO:
        q->u.hello.min_version = get_u16(&r);
        q->u.hello.max_version = get_u16(&r);
        break;
    case RP_MON_SIGN_TLS13:
    case RP_MON_APP_SIGN_TLS13:
        q->u.sign_tls13.side = get_u8(&r);
        get_bytes(&r, q->u.sign_tls13.hash, &q->u.sign_tls13.hash_len, 32, RP_TLS13_HASH_MAX);
        if (r.err == RP_OK &&
            ((q->u.sign_tls13.side != RP_TLS13_CLIENT && q->u.sign_tls13.side != RP_TLS13_SERVER) ||
             !rp_tls13_hash_len_valid(q->u.sign_tls13.hash_len)))
            r.err = RP_ERR_MALFORMED;
        break;
    case RP_MON_EVIDENCE:
        get_bytes(&r, q->u.evidence.nonce, &q->u.evidence.nonce_len, RP_EAT_NONCE_MIN,
                  RP_EAT_NONCE_MAX);
        break;
    case RP_MON_INSTALL:
        get_str(&r, q->u.install.component, RP_COMPONENT_NAME_MAX);
        q->u.install.health_seconds = get_u32(&r);
        if (r.err == RP_OK &&
            !rp_component_name_valid(q->u.install.component, strlen(q->u.install.component)))
            r.err = RP_ERR_MALFORMED;
        break;
    case RP_MON_APP_CONNECT:
        get_str(&r, q->u.app_connect.component, RP_COMPONENT_NAME_MAX);
        if (r.err == RP_OK && !rp_component_name_valid(q->u.app_connect.component,
                                                       strlen(q->u.app_connect.component)))
            r.err = RP_ERR_MALFORMED;
        break;
    case RP_MON_APP_REMOVE:
        get_str(&r, q->u.app_remove.component, RP_COMPONENT_NAME_MAX);
        if (r.err == RP_OK &&
            !rp_component_name_valid(q->u.app_remove.component, strlen(q->u.app_remove.component)))
            r.err = RP_ERR_MALFORMED;
        break;
    case RP_MON_EVENTS: q->u.events.from = get_u64(&r); break;
    case RP_MON_CRASHES:
        q->u.crashes.from = get_u64(&r);
        q->u.crashes.offset = get_u32(&r);
        if (r.err == RP_OK && q->u.crashes.offset > RP_MON_CRASH_MAX)
            r.err = RP_ERR_MALFORMED;
        break;
    case RP_MON_SETTINGS:
        q->u.settings.crash_capture = get_u8(&r);
        if (r.err == RP_OK && q->u.settings.crash_capture > 1)
            r.err = RP_ERR_MALFORMED;
        break;
    case RP_MON_APP_LOG:
        get_str(&r, q->u.app_log.component, RP_COMPONENT_NAME_MAX);
        q->u.app_log.offset = get_u64(&r);
        if (r.err == RP_OK &&
            !rp_component_name_valid(q->u.app_log.component, strlen(q->u.app_log.component)))
            r.err = RP_ERR_MALFORMED;
        break;
    case RP_MON_MCU_VERDICT:
        get_str(&r, q->u.mcu_verdict.component, RP_COMPONENT_NAME_MAX);
        get_bytes(&r, q->u.mcu_verdict.digest, &(size_t){0}, RP_SHA256_LEN, RP_SHA256_LEN);
        q->u.mcu_verdict.state = get_u8(&r);
        get_text(&r, q->u.mcu_verdict.detail, RP_MON_DETAIL_MAX);
        get_bytes(&r, q->u.mcu_verdict.evidence, &q->u.mcu_verdict.evidence_len, 0,
                  RP_MON_MCU_EVIDENCE_MAX);
        if (r.err == RP_OK && (!rp_component_name_valid(q->u.mcu_verdict.component,
                                                        strlen(q->u.mcu_verdict.component)) ||
                               !rp_mon_outcome(q->u.mcu_verdict.state)))
            r.err = RP_ERR_MALFORMED;
        break;
    case RP_MON_APP_CONTROL:
        get_str(&r, q->u.app_control.component, RP_COMPONENT_NAME_MAX);
        q->u.app_control.action = get_u8(&r);
        if (r.err == RP_OK &&
            (!rp_component_name_valid(q->u.app_control.component,
                                      strlen(q->u.app_control.component)) ||
             q->u.app_control.action == 0 || q->u.app_control.action >= RP_MON_APP_ACTION_END))
            r.err = RP_ERR_MALFORMED;
        break;
    default: break;
    }
    if (r.err == RP_OK && r.pos != r.len)
        r.err = RP_ERR_MALFORMED; /* bytes left over */
    return r.err;
}

/* ---- replies ---- */

rp_err_t rp_mon_reply_encode(const rp_mon_reply_t *p, uint8_t *buf, size_t cap, size_t *len)
{
    wr_t w = {buf, cap, 0, RP_OK};

    if (!type_known(p->type))
        return RP_ERR_INVALID_ARG;
    put_header(&w, p->type | RP_MON_REPLY, p->id);
    put_u16(&w, p->status);
    if (p->status != RP_OK) {
        put_str(&w, p->message, RP_MON_MESSAGE_MAX);
        return finish(&w, len);
    }
    switch (p->type) {
    case RP_MON_HELLO:
        put_u16(&w, p->u.hello.version);
        put_u32(&w, p->u.hello.packet_max);
        break;
    case RP_MON_STATUS:
        if (p->u.status.n > RP_MON_COMPONENTS_MAX)
            return RP_ERR_INVALID_ARG;
        put_u8(&w, (uint8_t)p->u.status.n);
        for (size_t i = 0; i < p->u.status.n; i++) {
            const rp_mon_component_t *c = &p->u.status.c[i];
            put_str(&w, c->name, RP_COMPONENT_NAME_MAX);
            put_str(&w, c->version, RP_MON_VERSION_MAX);
            put_u8(&w, c->active);
            put_u32(&w, c->security_counter);
            put_u8(&w, c->last_result);
            put_str(&w, c->last_detail, RP_MON_DETAIL_MAX);
            put_str(&w, c->last_version, RP_MON_VERSION_MAX);
            put_u64(&w, (uint64_t)c->last_at);
            put_u8(&w, c->trial);
            put_bytes(&w, c->trial_digest, RP_SHA256_LEN, RP_SHA256_LEN);
            put_u64(&w, (uint64_t)c->trial_until);
        }
        break;
    case RP_MON_ID:
        put_str(&w, p->u.id.device_id, 64);
        put_u8(&w, p->u.id.rot_kind);
        put_bytes(&w, p->u.id.spki, p->u.id.spki_len, RP_PUBKEY_DER_MAX);
        break;
    case RP_MON_SIGN_TLS13:
    case RP_MON_APP_SIGN_TLS13:
        put_bytes(&w, p->u.sign_tls13.sig, p->u.sign_tls13.len, RP_ECDSA_P256_SIG_MAX);
        break;
    case RP_MON_APP_IDENTITY:
        put_bytes(&w, p->u.app_identity.chain, p->u.app_identity.len, RP_MON_CHAIN_MAX);
        break;
    case RP_MON_APP_INCOMING:
        put_str(&w, p->u.app_incoming.component, RP_COMPONENT_NAME_MAX);
        break;
    case RP_MON_EVIDENCE:
        put_bytes(&w, p->u.evidence.eat, p->u.evidence.len, RP_EAT_MAX_SIZE);
        break;
    case RP_MON_INSTALL:
    case RP_MON_MCU_VERDICT:
        put_u8(&w, p->u.install.state);
        put_str(&w, p->u.install.detail, RP_MON_DETAIL_MAX);
        break;
    case RP_MON_RECOVER: put_u32(&w, p->u.recover.unbootable); break;
    case RP_MON_APP_LIST:
        if (p->u.app_list.n > RP_MON_APPS_MAX)
            return RP_ERR_INVALID_ARG;
        put_u8(&w, (uint8_t)p->u.app_list.n);
        for (size_t i = 0; i < p->u.app_list.n; i++) {
            const rp_mon_app_t *a = &p->u.app_list.a[i];
            if (a->state >= RP_MON_APP_STATE_END)
                return RP_ERR_INVALID_ARG;
            put_str(&w, a->component, RP_COMPONENT_NAME_MAX);
            put_str(&w, a->version, RP_MON_VERSION_MAX);
            put_u8(&w, a->state);
            put_u32(&w, a->restarts);
            put_u32(&w, a->pid);
            put_u32(&w, a->memory_kb);
            put_u32(&w, a->pids);
            put_u32(&w, a->cpu_percent);
            put_u32(&w, a->storage_kb);
            put_str(&w, a->missing, RP_MON_MISSING_MAX);
        }
        break;
    case RP_MON_TRUST_ROOT: put_u64(&w, p->u.trust_root.version); break;
    case RP_MON_TARGETS: put_u64(&w, p->u.targets.version); break;
    case RP_MON_EVENTS:
        if (p->u.events.n > RP_MON_EVENTS_PER_REPLY || p->u.events.more > 1)
            return RP_ERR_INVALID_ARG;
        put_u64(&w, p->u.events.next);
        put_u64(&w, p->u.events.dropped);
        put_u8(&w, p->u.events.more);
        put_u8(&w, (uint8_t)p->u.events.n);
        for (size_t i = 0; i < p->u.events.n; i++) {
            const rp_mon_event_t *e = &p->u.events.e[i];
            put_u64(&w, e->seq);
            put_u64(&w, (uint64_t)e->at);
            put_u16(&w, e->kind);
            put_str(&w, e->app, RP_COMPONENT_NAME_MAX);
            put_str(&w, e->reason, RP_MON_REASON_MAX);
        }
        break;
    case RP_MON_APP_LOG:
        put_u64(&w, p->u.app_log.size);
        put_u64(&w, p->u.app_log.offset);
        put_bytes(&w, p->u.app_log.data, p->u.app_log.len, RP_MON_LOG_CHUNK);
        break;
    case RP_MON_CRASHES:
        put_u64(&w, p->u.crashes.seq);
        put_u64(&w, p->u.crashes.dropped);
        put_u32(&w, p->u.crashes.size);
        put_u32(&w, p->u.crashes.offset);
        put_bytes(&w, p->u.crashes.data, p->u.crashes.len, RP_MON_LOG_CHUNK);
        break;
    case RP_MON_SETTINGS: put_u8(&w, p->u.settings.crash_capture); break;
    default: break;
    }
    return finish(&w, len);
}

rp_err_t rp_mon_reply_decode(const uint8_t *buf, size_t len, rp_mon_reply_t *p)
{
    rd_t r = {buf, len, 0, RP_OK};
    unsigned type;
    rp_err_t err;

    memset(p, 0, sizeof(*p));
    err = get_header(&r, true, &type, &p->id);
    p->type = (rp_mon_type_t)type;
    if (err != RP_OK)
        return err;
    p->status = get_u16(&r);
    if (r.err == RP_OK && p->status != RP_OK) {
        get_str(&r, p->message, RP_MON_MESSAGE_MAX);
        goto out;
    }
    switch (p->type) {
    case RP_MON_HELLO:
        p->u.hello.version = get_u16(&r);
        p->u.hello.packet_max = get_u32(&r);
        break;
    case RP_MON_STATUS:
        p->u.status.n = get_u8(&r);
        if (p->u.status.n > RP_MON_COMPONENTS_MAX && r.err == RP_OK)
            r.err = RP_ERR_TOO_LARGE;
        for (size_t i = 0; r.err == RP_OK && i < p->u.status.n; i++) {
            rp_mon_component_t *c = &p->u.status.c[i];
            get_str(&r, c->name, RP_COMPONENT_NAME_MAX);
            get_str(&r, c->version, RP_MON_VERSION_MAX);
            c->active = get_u8(&r);
            c->security_counter = get_u32(&r);
            c->last_result = get_u8(&r);
            get_str(&r, c->last_detail, RP_MON_DETAIL_MAX);
            get_str(&r, c->last_version, RP_MON_VERSION_MAX);
            c->last_at = (int64_t)get_u64(&r);
            c->trial = get_u8(&r);
            get_bytes(&r, c->trial_digest, &(size_t){0}, RP_SHA256_LEN, RP_SHA256_LEN);
            c->trial_until = (int64_t)get_u64(&r);
        }
        break;
    case RP_MON_ID:
        get_str(&r, p->u.id.device_id, 64);
        p->u.id.rot_kind = get_u8(&r);
        get_bytes(&r, p->u.id.spki, &p->u.id.spki_len, 1, RP_PUBKEY_DER_MAX);
        break;
    case RP_MON_SIGN_TLS13:
    case RP_MON_APP_SIGN_TLS13:
        get_bytes(&r, p->u.sign_tls13.sig, &p->u.sign_tls13.len, 1, RP_ECDSA_P256_SIG_MAX);
        break;
    case RP_MON_APP_IDENTITY:
        get_bytes(&r, p->u.app_identity.chain, &p->u.app_identity.len, 1, RP_MON_CHAIN_MAX);
        break;
    case RP_MON_APP_INCOMING:
        get_str(&r, p->u.app_incoming.component, RP_COMPONENT_NAME_MAX);
        if (r.err == RP_OK && !rp_component_name_valid(p->u.app_incoming.component,
                                                       strlen(p->u.app_incoming.component)))
            r.err = RP_ERR_MALFORMED;
        break;
    case RP_MON_EVIDENCE:
        get_bytes(&r, p->u.evidence.eat, &p->u.evidence.len, 1, RP_EAT_MAX_SIZE);
        break;
    case RP_MON_INSTALL:
    case RP_MON_MCU_VERDICT:
        p->u.install.state = get_u8(&r);
        get_str(&r, p->u.install.detail, RP_MON_DETAIL_MAX);
        break;
    case RP_MON_RECOVER: p->u.recover.unbootable = get_u32(&r); break;
    case RP_MON_APP_LIST:
        p->u.app_list.n = get_u8(&r);
        if (p->u.app_list.n > RP_MON_APPS_MAX && r.err == RP_OK)
            r.err = RP_ERR_TOO_LARGE;
        for (size_t i = 0; r.err == RP_OK && i < p->u.app_list.n; i++) {
            rp_mon_app_t *a = &p->u.app_list.a[i];
            get_str(&r, a->component, RP_COMPONENT_NAME_MAX);
            get_str(&r, a->version, RP_MON_VERSION_MAX);
            a->state = get_u8(&r);
            a->restarts = get_u32(&r);
            a->pid = get_u32(&r);
            a->memory_kb = get_u32(&r);
            a->pids = get_u32(&r);
            a->cpu_percent = get_u32(&r);
            a->storage_kb = get_u32(&r);
            get_str(&r, a->missing, RP_MON_MISSING_MAX);
            if (r.err == RP_OK && (a->state >= RP_MON_APP_STATE_END ||
                                   !rp_component_name_valid(a->component, strlen(a->component))))
                r.err = RP_ERR_MALFORMED;
        }
        break;
    case RP_MON_TRUST_ROOT: p->u.trust_root.version = get_u64(&r); break;
    case RP_MON_TARGETS: p->u.targets.version = get_u64(&r); break;
    case RP_MON_EVENTS:
        p->u.events.next = get_u64(&r);
        p->u.events.dropped = get_u64(&r);
        p->u.events.more = get_u8(&r);
        p->u.events.n = get_u8(&r);
        if (r.err == RP_OK && p->u.events.more > 1)
            r.err = RP_ERR_MALFORMED;
        if (r.err == RP_OK && p->u.events.n > RP_MON_EVENTS_PER_REPLY)
            r.err = RP_ERR_TOO_LARGE;
        for (size_t i = 0; r.err == RP_OK && i < p->u.events.n; i++) {
            rp_mon_event_t *e = &p->u.events.e[i];
            e->seq = get_u64(&r);
            e->at = (int64_t)get_u64(&r);
            e->kind = get_u16(&r);
            get_str(&r, e->app, RP_COMPONENT_NAME_MAX);
            get_str(&r, e->reason, RP_MON_REASON_MAX);
            /* Oldest first, each after the one before, all before `next`; a kind this version
             * names; an app that is a component, or none. */
            if (r.err == RP_OK &&
                (e->kind == 0 || e->kind >= RP_EVENT_KIND_END || e->seq >= p->u.events.next ||
                 (i > 0 && e->seq <= p->u.events.e[i - 1].seq) ||
                 (e->app[0] != '\0' && !rp_component_name_valid(e->app, strlen(e->app)))))
                r.err = RP_ERR_MALFORMED;
        }
        break;
    case RP_MON_APP_LOG:
        p->u.app_log.size = get_u64(&r);
        p->u.app_log.offset = get_u64(&r);
        get_bytes(&r, p->u.app_log.data, &p->u.app_log.len, 0, RP_MON_LOG_CHUNK);
        if (r.err == RP_OK && (p->u.app_log.offset > p->u.app_log.size ||
                               p->u.app_log.len > p->u.app_log.size - p->u.app_log.offset))
            r.err = RP_ERR_MALFORMED; /* bytes past the end it names */
        break;
    case RP_MON_CRASHES:
        p->u.crashes.seq = get_u64(&r);
        p->u.crashes.dropped = get_u64(&r);
        p->u.crashes.size = get_u32(&r);
        p->u.crashes.offset = get_u32(&r);
        get_bytes(&r, p->u.crashes.data, &p->u.crashes.len, 0, RP_MON_LOG_CHUNK);
        /* A file of its bound, bytes within it; no crash, no bytes. */
        if (r.err == RP_OK &&
            (p->u.crashes.size > RP_MON_CRASH_MAX || p->u.crashes.offset > p->u.crashes.size ||
             p->u.crashes.len > p->u.crashes.size - p->u.crashes.offset ||
             (p->u.crashes.seq == 0 && p->u.crashes.size != 0)))
            r.err = RP_ERR_MALFORMED;
        break;
    case RP_MON_SETTINGS:
        p->u.settings.crash_capture = get_u8(&r);
        if (r.err == RP_OK && p->u.settings.crash_capture > 1)
            r.err = RP_ERR_MALFORMED;
        break;
    default: break;
    }
out:
    if (r.err == RP_OK && r.pos != r.len)
        r.err = RP_ERR_MALFORMED;
    return r.err;
}

/* ---- transport ---- */

rp_err_t rp_mon_send(int sock, const uint8_t *buf, size_t len, int fd)
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = {(void *)buf, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;

    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        m.msg_control = ctl.space;
        m.msg_controllen = sizeof(ctl.space);
        CMSG_FIRSTHDR(&m)->cmsg_level = SOL_SOCKET;
        CMSG_FIRSTHDR(&m)->cmsg_type = SCM_RIGHTS;
        CMSG_FIRSTHDR(&m)->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(CMSG_FIRSTHDR(&m)), &fd, sizeof(int));
    }
    do
        n = sendmsg(sock, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? RP_OK : RP_ERR_IO;
}

rp_err_t rp_mon_recv(int sock, uint8_t *buf, size_t cap, size_t *len, int *fd)
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(4 * sizeof(int))]; /* room to see (and close) a few too many */
    } ctl;
    struct iovec iov = {buf, cap};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl.space,
                       .msg_controllen = sizeof(ctl.space)};
    rp_err_t err = RP_OK;
    ssize_t n;

    *fd = -1;
    *len = 0;
    do
        n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return RP_ERR_IO;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        size_t k;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*fd < 0 && err == RP_OK) {
                *fd = got;
            } else {
                close(got);
                err = RP_ERR_MALFORMED;
            }
        }
    }
    if ((m.msg_flags & MSG_CTRUNC) != 0)
        err = RP_ERR_MALFORMED;
    if (err == RP_OK && (m.msg_flags & MSG_TRUNC) != 0)
        err = RP_ERR_TOO_LARGE;
    if (err == RP_OK && n == 0 && *fd < 0)
        err = RP_ERR_NOT_FOUND; /* an orderly close (an empty packet reads the same) */
    if (err != RP_OK && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    *len = (size_t)n;
    return err;
}

void rp_mon_call_stop(rp_mon_stop_t *s)
{
    int sock = s->sock;

    s->stopped = 1;
    if (sock >= 0)
        (void)shutdown(sock, SHUT_RDWR);
}

rp_err_t rp_mon_call(const char *path, const rp_mon_request_t *q, int fd, rp_mon_reply_t *reply)
{
    return rp_mon_call_fd(path, q, fd, reply, NULL, NULL);
}

/* Until sock has something to read (a reply, or the hang-up a stop's shutdown makes), tick called
 * at each second of the wait. */
static rp_err_t await_ticking(int sock, void (*tick)(void))
{
    struct pollfd p = {sock, POLLIN, 0};
    int n;

    while ((n = poll(&p, 1, 1000)) <= 0) {
        if (n < 0 && errno != EINTR)
            return RP_ERR_IO;
        tick();
    }
    return RP_OK;
}

rp_err_t rp_mon_call_fd(const char *path, const rp_mon_request_t *q, int fd, rp_mon_reply_t *reply,
                        int *reply_fd, rp_mon_stop_t *stop)
{
    static uint8_t buf[RP_MON_PACKET_MAX]; /* one call at a time per process */
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len;
    int sock, got_fd = -1;
    rp_err_t err;

    if (reply_fd != NULL)
        *reply_fd = -1;
    if (strlen(path) >= sizeof(addr.sun_path))
        return RP_ERR_INVALID_ARG;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    err = rp_mon_request_encode(q, buf, sizeof(buf), &len);
    if (err != RP_OK)
        return err;
    sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return RP_ERR_IO;
    if (stop != NULL)
        stop->sock = sock; /* before the stop is looked at (rp_mon_stop_t) */
    if (stop != NULL && stop->stopped)
        err = RP_ERR_IO;
    else if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        err = errno == ENOENT || errno == ECONNREFUSED ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    if (err == RP_OK)
        err = rp_mon_send(sock, buf, len, fd);
    if (err == RP_OK && stop != NULL && stop->tick != NULL)
        err = await_ticking(sock, stop->tick);
    if (err == RP_OK)
        err = rp_mon_recv(sock, buf, sizeof(buf), &len, &got_fd);
    if (stop != NULL)
        stop->sock = -1; /* before the close: a stop never shuts a reused number down */
    close(sock);
    if (stop != NULL && stop->stopped)
        err = RP_ERR_IO; /* whatever came or not: the stop ended the wait */
    if (err == RP_OK && got_fd >= 0 && reply_fd == NULL)
        err = RP_ERR_MALFORMED; /* a descriptor not asked for */
    if (err == RP_OK)
        err = rp_mon_reply_decode(buf, len, reply);
    if (err == RP_OK && (reply->id != q->id || reply->type != q->type))
        err = RP_ERR_MALFORMED;
    if (err == RP_OK && reply_fd != NULL)
        *reply_fd = got_fd;
    else if (got_fd >= 0)
        close(got_fd);
    return err;
}
