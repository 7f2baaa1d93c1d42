/*
 * The monitor protocol's encoders and decoders (the one owner of its layout: proto.h), and the
 * packet transport over SOCK_SEQPACKET with SCM_RIGHTS. Bounded and allocation-free.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "events.h"
#include "proto.h"
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

static void put_u16(wr_t *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

static void put_u32(wr_t *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
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

static uint16_t get_u16(rd_t *r)
{
    const uint8_t *p = get(r, 2);
    return p != NULL ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static uint32_t get_u32(rd_t *r)
{
    const uint8_t *p = get(r, 4);
    return p != NULL ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
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
    put_u32(w, (uint32_t)(v >> 32));
    put_u32(w, (uint32_t)v);
}

static uint64_t get_u64(rd_t *r)
{
    uint64_t hi = get_u32(r);
    return hi << 32 | get_u32(r);
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
    w->buf[12] = (uint8_t)(body >> 24);
    w->buf[13] = (uint8_t)(body >> 16);
    w->buf[14] = (uint8_t)(body >> 8);
    w->buf[15] = (uint8_t)body;
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

/* ---- the bodies: a layout per type and direction, read by the encoders and the decoders ---- */

enum {
    F_U8 = 1,
    F_U16,
    F_U32,
    F_U64,
    F_STR,   /* a string of at most max bytes */
    F_TEXT,  /* a string with no control character (get_text) */
    F_NAME,  /* a string that is a component's name (rp_component_name_valid) */
    F_BYTES, /* min to max bytes, their length a size_t at len_at; NONE: exactly max */
    F_LIST,  /* a u8 count (a size_t at len_at) of at most max elements laid out as `of` */
};
#define NONE UINT32_MAX
/* flags */
#define RANGE 1u /* an integer min to max, or the packet is malformed */
#define ENC 2u   /* and the encoder refuses one outside it (the caller's bug) */

typedef struct layout layout_t;
typedef struct field {
    uint8_t kind, flags;
    uint32_t at, len_at; /* offsetof the value, and of its length or count (NONE) */
    uint32_t min, max;
    const layout_t *of; /* F_LIST: its elements' layout */
} field_t;
struct layout {
    const field_t *f;
    size_t n, size; /* its fields; an element's size (F_LIST) */
    /* an element's rule beyond its fields' (base: the list's owner; k: its index), if any */
    bool (*ok)(const uint8_t *base, size_t k);
};

/* An EVENTS reply's events: oldest first, each after the one before, all before `next`; an app
 * that is a component, or none. */
static bool event_ok(const uint8_t *base, size_t k)
{
    const rp_mon_reply_t *p = (const rp_mon_reply_t *)(const void *)base;
    const rp_mon_event_t *e = &p->u.events.e[k];

    return e->seq < p->u.events.next && (k == 0 || e->seq > p->u.events.e[k - 1].seq) &&
           (e->app[0] == '\0' || rp_component_name_valid(e->app, strlen(e->app)));
}

/* clang-format off */
#define Q(m) offsetof(rp_mon_request_t, u.m)
#define P(m) offsetof(rp_mon_reply_t, u.m)
#define INT(k, at) {k, 0, at, NONE, 0, 0, NULL}
#define INT_IN(k, fl, at, lo, hi) {k, fl, at, NONE, lo, hi, NULL}
#define STR(k, at, max) {k, 0, at, NONE, 0, max, NULL}
#define BYTES(at, len_at, lo, hi) {F_BYTES, 0, at, len_at, lo, hi, NULL}
#define LIST(at, n_at, max, of) {F_LIST, 0, at, n_at, 0, max, of}
#define LAYOUT(f) {f, sizeof(f) / sizeof((f)[0]), 0, NULL}
#define ELEMENT(f, type, ok) {f, sizeof(f) / sizeof((f)[0]), sizeof(type), ok}

static const field_t q_hello[] = {INT(F_U16, Q(hello.min_version)),
                                  INT(F_U16, Q(hello.max_version))};
static const field_t q_sign[] = {
    INT_IN(F_U8, RANGE, Q(sign_tls13.side), RP_TLS13_CLIENT, RP_TLS13_SERVER),
    BYTES(Q(sign_tls13.hash), Q(sign_tls13.hash_len), 32, RP_TLS13_HASH_MAX)};
static const field_t q_evidence[] = {
    BYTES(Q(evidence.nonce), Q(evidence.nonce_len), RP_EAT_NONCE_MIN, RP_EAT_NONCE_MAX)};
static const field_t q_install[] = {STR(F_NAME, Q(install.component), RP_COMPONENT_NAME_MAX),
                                    INT(F_U32, Q(install.health_seconds))};
/* APP_CONNECT's and APP_REMOVE's one name: every member of the union starts at its start */
static const field_t q_name[] = {STR(F_NAME, Q(app_connect.component), RP_COMPONENT_NAME_MAX)};
static const field_t q_events[] = {INT(F_U64, Q(events.from))};
static const field_t q_app_log[] = {STR(F_NAME, Q(app_log.component), RP_COMPONENT_NAME_MAX),
                                    INT(F_U64, Q(app_log.offset))};
static const field_t q_app_control[] = {
    STR(F_NAME, Q(app_control.component), RP_COMPONENT_NAME_MAX),
    INT_IN(F_U8, RANGE, Q(app_control.action), 1, RP_MON_APP_ACTION_END - 1)};
static const field_t q_crashes[] = {INT(F_U64, Q(crashes.from)),
                                    INT_IN(F_U32, RANGE, Q(crashes.offset), 0, RP_MON_CRASH_MAX)};
static const field_t q_settings[] = {INT_IN(F_U8, RANGE, Q(settings.crash_capture), 0, 1)};
static const field_t q_verdict[] = {
    STR(F_NAME, Q(mcu_verdict.component), RP_COMPONENT_NAME_MAX),
    BYTES(Q(mcu_verdict.digest), NONE, RP_SHA256_LEN, RP_SHA256_LEN),
    INT_IN(F_U8, RANGE, Q(mcu_verdict.state), RP_UPDATE_INSTALLED, RP_UPDATE_REFUSED),
    STR(F_TEXT, Q(mcu_verdict.detail), RP_MON_DETAIL_MAX),
    BYTES(Q(mcu_verdict.evidence), Q(mcu_verdict.evidence_len), 0, RP_MON_MCU_EVIDENCE_MAX)};

/* Each request type's body (none: no body). */
static const layout_t requests[RP_MON_TYPE_END] = {
    [RP_MON_HELLO] = LAYOUT(q_hello),         [RP_MON_SIGN_TLS13] = LAYOUT(q_sign),
    [RP_MON_APP_SIGN_TLS13] = LAYOUT(q_sign), [RP_MON_EVIDENCE] = LAYOUT(q_evidence),
    [RP_MON_INSTALL] = LAYOUT(q_install),     [RP_MON_APP_CONNECT] = LAYOUT(q_name),
    [RP_MON_APP_REMOVE] = LAYOUT(q_name),     [RP_MON_EVENTS] = LAYOUT(q_events),
    [RP_MON_APP_LOG] = LAYOUT(q_app_log),     [RP_MON_APP_CONTROL] = LAYOUT(q_app_control),
    [RP_MON_CRASHES] = LAYOUT(q_crashes),     [RP_MON_SETTINGS] = LAYOUT(q_settings),
    [RP_MON_MCU_VERDICT] = LAYOUT(q_verdict),
};

#define C(m) offsetof(rp_mon_component_t, m)
static const field_t p_component[] = {
    STR(F_STR, C(name), RP_COMPONENT_NAME_MAX), STR(F_STR, C(version), RP_MON_VERSION_MAX),
    INT(F_U8, C(active)), INT(F_U32, C(security_counter)), INT(F_U8, C(last_result)),
    STR(F_STR, C(last_detail), RP_MON_DETAIL_MAX), STR(F_STR, C(last_version), RP_MON_VERSION_MAX),
    INT(F_U64, C(last_at)), INT(F_U8, C(trial)),
    BYTES(C(trial_digest), NONE, RP_SHA256_LEN, RP_SHA256_LEN), INT(F_U64, C(trial_until))};
#define A(m) offsetof(rp_mon_app_t, m)
static const field_t p_app[] = {
    STR(F_NAME, A(component), RP_COMPONENT_NAME_MAX), STR(F_STR, A(version), RP_MON_VERSION_MAX),
    INT_IN(F_U8, RANGE | ENC, A(state), 0, RP_MON_APP_STATE_END - 1), INT(F_U32, A(restarts)),
    INT(F_U32, A(pid)), INT(F_U32, A(memory_kb)), INT(F_U32, A(pids)), INT(F_U32, A(cpu_percent)),
    INT(F_U32, A(storage_kb)), STR(F_STR, A(missing), RP_MON_MISSING_MAX)};
#define E(m) offsetof(rp_mon_event_t, m)
static const field_t p_event[] = {
    INT(F_U64, E(seq)), INT(F_U64, E(at)), INT_IN(F_U16, RANGE, E(kind), 1, RP_EVENT_KIND_END - 1),
    STR(F_STR, E(app), RP_COMPONENT_NAME_MAX), STR(F_STR, E(reason), RP_MON_REASON_MAX)};
static const layout_t component = ELEMENT(p_component, rp_mon_component_t, NULL);
static const layout_t app = ELEMENT(p_app, rp_mon_app_t, NULL);
static const layout_t event = ELEMENT(p_event, rp_mon_event_t, event_ok);

static const field_t p_hello[] = {INT(F_U16, P(hello.version)), INT(F_U32, P(hello.packet_max))};
static const field_t p_status[] = {
    LIST(P(status.c), P(status.n), RP_MON_COMPONENTS_MAX, &component)};
static const field_t p_id[] = {STR(F_STR, P(id.device_id), 64), INT(F_U8, P(id.rot_kind)),
                               BYTES(P(id.spki), P(id.spki_len), 1, RP_PUBKEY_DER_MAX)};
static const field_t p_sign[] = {
    BYTES(P(sign_tls13.sig), P(sign_tls13.len), 1, RP_ECDSA_P256_SIG_MAX)};
static const field_t p_identity[] = {
    BYTES(P(app_identity.chain), P(app_identity.len), 1, RP_MON_CHAIN_MAX)};
static const field_t p_incoming[] = {STR(F_NAME, P(app_incoming.component), RP_COMPONENT_NAME_MAX)};
static const field_t p_evidence[] = {BYTES(P(evidence.eat), P(evidence.len), 1, RP_EAT_MAX_SIZE)};
static const field_t p_install[] = {INT(F_U8, P(install.state)),
                                    STR(F_STR, P(install.detail), RP_MON_DETAIL_MAX)};
static const field_t p_recover[] = {INT(F_U32, P(recover.unbootable))};
static const field_t p_app_list[] = {LIST(P(app_list.a), P(app_list.n), RP_MON_APPS_MAX, &app)};
/* TRUST_ROOT's and TARGETS' version (at the union's start, as every member) */
static const field_t p_version[] = {INT(F_U64, P(trust_root.version))};
static const field_t p_events[] = {
    INT(F_U64, P(events.next)), INT(F_U64, P(events.dropped)),
    INT_IN(F_U8, RANGE | ENC, P(events.more), 0, 1),
    LIST(P(events.e), P(events.n), RP_MON_EVENTS_PER_REPLY, &event)};
static const field_t p_app_log[] = {INT(F_U64, P(app_log.size)), INT(F_U64, P(app_log.offset)),
                                    BYTES(P(app_log.data), P(app_log.len), 0, RP_MON_LOG_CHUNK)};
static const field_t p_crashes[] = {INT(F_U64, P(crashes.seq)), INT(F_U64, P(crashes.dropped)),
                                    INT(F_U32, P(crashes.size)), INT(F_U32, P(crashes.offset)),
                                    BYTES(P(crashes.data), P(crashes.len), 0, RP_MON_LOG_CHUNK)};
static const field_t p_settings[] = {INT_IN(F_U8, RANGE, P(settings.crash_capture), 0, 1)};

/* Each reply type's body on success (none: no body). */
static const layout_t replies[RP_MON_TYPE_END] = {
    [RP_MON_HELLO] = LAYOUT(p_hello),           [RP_MON_STATUS] = LAYOUT(p_status),
    [RP_MON_ID] = LAYOUT(p_id),                 [RP_MON_SIGN_TLS13] = LAYOUT(p_sign),
    [RP_MON_APP_SIGN_TLS13] = LAYOUT(p_sign),   [RP_MON_APP_IDENTITY] = LAYOUT(p_identity),
    [RP_MON_APP_INCOMING] = LAYOUT(p_incoming), [RP_MON_EVIDENCE] = LAYOUT(p_evidence),
    [RP_MON_INSTALL] = LAYOUT(p_install),       [RP_MON_MCU_VERDICT] = LAYOUT(p_install),
    [RP_MON_RECOVER] = LAYOUT(p_recover),       [RP_MON_APP_LIST] = LAYOUT(p_app_list),
    [RP_MON_TRUST_ROOT] = LAYOUT(p_version),    [RP_MON_TARGETS] = LAYOUT(p_version),
    [RP_MON_EVENTS] = LAYOUT(p_events),         [RP_MON_APP_LOG] = LAYOUT(p_app_log),
    [RP_MON_CRASHES] = LAYOUT(p_crashes),       [RP_MON_SETTINGS] = LAYOUT(p_settings),
};
/* clang-format on */

static uint64_t int_of(const uint8_t *at, unsigned kind)
{
    switch (kind) {
    case F_U8: return *at;
    case F_U16: return *(const uint16_t *)(const void *)at;
    case F_U32: return *(const uint32_t *)(const void *)at;
    default: return *(const uint64_t *)(const void *)at;
    }
}

/* A layout's fields from base, in order. */
static void put_layout(wr_t *w, const layout_t *l, const uint8_t *base)
{
    for (size_t i = 0; i < l->n && w->err == RP_OK; i++) {
        const field_t *f = &l->f[i];
        const uint8_t *at = base + f->at;
        size_t n = f->len_at != NONE ? *(const size_t *)(const void *)(base + f->len_at) : f->max;
        uint64_t v = f->kind <= F_U64 ? int_of(at, f->kind) : 0;
        if ((f->flags & ENC) && (v < f->min || v > f->max))
            w->err = RP_ERR_INVALID_ARG;
        switch (f->kind) {
        case F_U8: put_u8(w, (uint8_t)v); break;
        case F_U16: put_u16(w, (uint16_t)v); break;
        case F_U32: put_u32(w, (uint32_t)v); break;
        case F_U64: put_u64(w, v); break;
        case F_BYTES: put_bytes(w, at, n, f->max); break;
        case F_LIST:
            if (n > f->max && w->err == RP_OK)
                w->err = RP_ERR_INVALID_ARG;
            put_u8(w, (uint8_t)n);
            for (size_t k = 0; k < n && w->err == RP_OK; k++)
                put_layout(w, f->of, at + k * f->of->size);
            break;
        default: put_str(w, (const char *)at, f->max); break; /* F_STR, F_TEXT, F_NAME */
        }
    }
}

/* A layout's fields into base: each read, its bounds kept (a list: its count); then, in order,
 * each integer within its range, each name a component's, each list's count within its maximum
 * and its elements read (each then checked with its layout's rule, if any). */
static void get_layout(rd_t *r, const layout_t *l, uint8_t *base)
{
    for (size_t i = 0; i < l->n && r->err == RP_OK; i++) {
        const field_t *f = &l->f[i];
        uint8_t *at = base + f->at;
        size_t *n = f->len_at != NONE ? (size_t *)(void *)(base + f->len_at) : &(size_t){0};
        switch (f->kind) {
        case F_U8: *at = get_u8(r); break;
        case F_U16: *(uint16_t *)(void *)at = get_u16(r); break;
        case F_U32: *(uint32_t *)(void *)at = get_u32(r); break;
        case F_U64: *(uint64_t *)(void *)at = get_u64(r); break;
        case F_TEXT: get_text(r, (char *)at, f->max); break;
        case F_BYTES: get_bytes(r, at, n, f->len_at != NONE ? f->min : f->max, f->max); break;
        case F_LIST: *n = get_u8(r); break;
        default: get_str(r, (char *)at, f->max); break; /* F_STR, F_NAME */
        }
    }
    for (size_t i = 0; i < l->n && r->err == RP_OK; i++) {
        const field_t *f = &l->f[i];
        uint8_t *at = base + f->at;
        uint64_t v = f->kind <= F_U64 ? int_of(at, f->kind) : 0;
        if (((f->flags & RANGE) && (v < f->min || v > f->max)) ||
            (f->kind == F_NAME && !rp_component_name_valid((char *)at, strlen((char *)at))))
            r->err = RP_ERR_MALFORMED;
        if (f->kind != F_LIST || r->err != RP_OK)
            continue;
        size_t n = *(const size_t *)(const void *)(base + f->len_at);
        if (n > f->max)
            r->err = RP_ERR_TOO_LARGE;
        for (size_t k = 0; k < n && r->err == RP_OK; k++) {
            get_layout(r, f->of, at + k * f->of->size);
            if (r->err == RP_OK && f->of->ok != NULL && !f->of->ok(base, k))
                r->err = RP_ERR_MALFORMED;
        }
    }
}

/* ---- requests ---- */

rp_err_t rp_mon_request_encode(const rp_mon_request_t *q, uint8_t *buf, size_t cap, size_t *len)
{
    wr_t w = {buf, cap, 0, RP_OK};

    if (!type_known(q->type))
        return RP_ERR_INVALID_ARG;
    put_header(&w, q->type, q->id);
    put_layout(&w, &requests[q->type], (const uint8_t *)q);
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
    get_layout(&r, &requests[type], (uint8_t *)q);
    /* the hash's length is one of TLS 1.3's (32 or 48), not anything between */
    if (r.err == RP_OK && (type == RP_MON_SIGN_TLS13 || type == RP_MON_APP_SIGN_TLS13) &&
        !rp_tls13_hash_len_valid(q->u.sign_tls13.hash_len))
        r.err = RP_ERR_MALFORMED;
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
    if (p->status != RP_OK)
        put_str(&w, p->message, RP_MON_MESSAGE_MAX);
    else
        put_layout(&w, &replies[p->type], (const uint8_t *)p);
    return finish(&w, len);
}

/* What a reply's fields must say together (the client's side). */
static bool reply_consistent(const rp_mon_reply_t *p)
{
    switch (p->type) {
    case RP_MON_APP_LOG: /* no byte past the end it names */
        return p->u.app_log.offset <= p->u.app_log.size &&
               p->u.app_log.len <= p->u.app_log.size - p->u.app_log.offset;
    case RP_MON_CRASHES: /* a file of its bound, bytes within it; no crash, no bytes */
        return p->u.crashes.size <= RP_MON_CRASH_MAX && p->u.crashes.offset <= p->u.crashes.size &&
               p->u.crashes.len <= p->u.crashes.size - p->u.crashes.offset &&
               (p->u.crashes.seq != 0 || p->u.crashes.size == 0);
    default: return true;
    }
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
    if (r.err == RP_OK && p->status != RP_OK)
        get_str(&r, p->message, RP_MON_MESSAGE_MAX);
    else
        get_layout(&r, &replies[type], (uint8_t *)p);
    if (r.err == RP_OK && p->status == RP_OK && !reply_consistent(p))
        r.err = RP_ERR_MALFORMED;
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

rp_err_t rp_mon_call(const char *path, const rp_mon_request_t *q, int fd, rp_mon_reply_t *reply)
{
    return rp_mon_call_fd(path, q, fd, reply, NULL);
}

rp_err_t rp_mon_call_fd(const char *path, const rp_mon_request_t *q, int fd, rp_mon_reply_t *reply,
                        int *reply_fd)
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
    if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        err = errno == ENOENT || errno == ECONNREFUSED ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    if (err == RP_OK)
        err = rp_mon_send(sock, buf, len, fd);
    if (err == RP_OK)
        err = rp_mon_recv(sock, buf, sizeof(buf), &len, &got_fd);
    if (err == RP_OK && got_fd >= 0 && reply_fd == NULL) {
        close(got_fd); /* not asked for */
        got_fd = -1;
        err = RP_ERR_MALFORMED;
    }
    if (err == RP_OK)
        err = rp_mon_reply_decode(buf, len, reply);
    if (err == RP_OK && (reply->id != q->id || reply->type != q->type))
        err = RP_ERR_MALFORMED;
    close(sock);
    if (err == RP_OK && reply_fd != NULL)
        *reply_fd = got_fd;
    else if (got_fd >= 0)
        close(got_fd);
    return err;
}
