/*
 * The app broker's socket to the monitor (gate.h): its fixed layouts, both ways.
 */
#include <string.h>
#include <time.h>

#include "gate.h"
#include "rampart/bytes.h"

/* The request's offsets. */
enum {
    RQ_VERSION = 0,
    RQ_OP = 1,
    RQ_SLOT = 2,
    RQ_SIDE = 3,
    RQ_HASH_LEN = 4,
    RQ_ZERO = 5, /* one byte, always zero */
    RQ_KIND = 6, /* u16 */
    RQ_SEQ = 8,  /* u32 */
    RQ_GEN = 12, /* u64 */
    RQ_HASH = 20,
    RQ_REASON = RQ_HASH + RP_TLS13_HASH_MAX,
};
_Static_assert(RQ_REASON + RP_EVENT_REASON_MAX + 1 == RP_GATE_REQ_LEN, "the layout is the length");

/* The ADD/DROP message's. */
enum {
    AP_VERSION = 0,
    AP_OP = 1,
    AP_SLOT = 2,
    AP_AUTH = 3,
    AP_NPEERS = 4,
    AP_ZERO = 5,
    AP_GEN = 6, /* u64 */
    AP_NAMES = 14
};
#define NAME_LEN (RP_COMPONENT_NAME_MAX + 1)
_Static_assert(AP_NAMES + (1 + RP_MANIFEST_APP_CONNECTIONS_MAX) * NAME_LEN == RP_GATE_APP_LEN,
               "the layout is the length");

/* The ANSWER head's (its first three as ADD's). */
enum { AN_ZERO = 3, AN_SEQ = 4 };
_Static_assert(AN_SEQ + 4 == RP_GATE_ANSWER_HEAD, "the layout is the length");

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

rp_err_t rp_gate_req_encode(const rp_gate_req_t *r, uint8_t *out, size_t cap)
{
    size_t reason = strnlen(r->reason, sizeof(r->reason));
    rp_gate_req_t check;

    if (cap < RP_GATE_REQ_LEN || r->hash_len > RP_TLS13_HASH_MAX || reason > RP_EVENT_REASON_MAX)
        return RP_ERR_INVALID_ARG;
    memset(out, 0, RP_GATE_REQ_LEN);
    out[RQ_VERSION] = RP_GATE_VERSION;
    out[RQ_OP] = r->op;
    out[RQ_SLOT] = r->slot;
    rp_le_put(out + RQ_SEQ, r->seq, 4);
    rp_le_put(out + RQ_GEN, r->gen, 8);
    if (r->op == RP_GATE_SIGN) {
        out[RQ_SIDE] = r->side;
        out[RQ_HASH_LEN] = r->hash_len;
        memcpy(out + RQ_HASH, r->hash, r->hash_len);
    }
    if (r->op == RP_GATE_EVENT) {
        rp_le_put(out + RQ_KIND, r->event_kind, 2);
        memcpy(out + RQ_REASON, r->reason, reason);
    }
    /* Only what the other side accepts leaves (one owner of the rules: the decoder). */
    return rp_gate_req_decode(out, RP_GATE_REQ_LEN, &check);
}

rp_err_t rp_gate_req_decode(const uint8_t *buf, size_t len, rp_gate_req_t *r)
{
    size_t n;

    memset(r, 0, sizeof(*r));
    if (len != RP_GATE_REQ_LEN || buf[RQ_VERSION] != RP_GATE_VERSION || buf[RQ_ZERO] != 0 ||
        buf[RQ_SLOT] >= RP_GATE_SLOTS)
        return RP_ERR_MALFORMED;
    r->op = buf[RQ_OP];
    r->slot = buf[RQ_SLOT];
    r->side = buf[RQ_SIDE];
    r->hash_len = buf[RQ_HASH_LEN];
    r->event_kind = (uint16_t)rp_le_get(buf + RQ_KIND, 2);
    r->seq = (uint32_t)rp_le_get(buf + RQ_SEQ, 4);
    r->gen = rp_le_get(buf + RQ_GEN, 8);
    /* Every message names a channel; only a request has a number. */
    if (r->gen == 0 || (r->seq != 0) != (r->op == RP_GATE_IDENTITY || r->op == RP_GATE_SIGN))
        return RP_ERR_MALFORMED;
    switch (r->op) {
    case RP_GATE_SIGN:
        if ((r->side != RP_TLS13_CLIENT && r->side != RP_TLS13_SERVER) ||
            !rp_tls13_hash_len_valid(r->hash_len) ||
            !all_zero(buf + RQ_HASH + r->hash_len, RP_TLS13_HASH_MAX - r->hash_len) ||
            !all_zero(buf + RQ_KIND, 2) || !all_zero(buf + RQ_REASON, RP_EVENT_REASON_MAX + 1))
            return RP_ERR_MALFORMED;
        memcpy(r->hash, buf + RQ_HASH, r->hash_len);
        return RP_OK;
    case RP_GATE_IDENTITY:
    case RP_GATE_CLOSED:
        if (!all_zero(buf + RQ_SIDE, 2) || !all_zero(buf + RQ_KIND, 2) ||
            !all_zero(buf + RQ_HASH, RP_TLS13_HASH_MAX + RP_EVENT_REASON_MAX + 1))
            return RP_ERR_MALFORMED;
        return RP_OK;
    case RP_GATE_EVENT:
        if ((r->event_kind != RP_EVENT_APP_CONNECTION && r->event_kind != RP_EVENT_IDENTITY) ||
            !all_zero(buf + RQ_SIDE, 2) || !all_zero(buf + RQ_HASH, RP_TLS13_HASH_MAX))
            return RP_ERR_MALFORMED;
        n = strnlen((const char *)buf + RQ_REASON, RP_EVENT_REASON_MAX + 1);
        if (n == 0 || n > RP_EVENT_REASON_MAX ||
            !all_zero(buf + RQ_REASON + n, RP_EVENT_REASON_MAX + 1 - n))
            return RP_ERR_MALFORMED;
        for (size_t i = 0; i < n; i++)
            if (buf[RQ_REASON + i] < 0x20 || buf[RQ_REASON + i] > 0x7e)
                return RP_ERR_MALFORMED;
        memcpy(r->reason, buf + RQ_REASON, n);
        return RP_OK;
    default: return RP_ERR_MALFORMED;
    }
}

static bool put_name(uint8_t *at, const char *name)
{
    size_t n = name != NULL ? strnlen(name, NAME_LEN) : 0;

    if (n == 0 || n >= NAME_LEN || !rp_component_name_valid(name, n))
        return false;
    memcpy(at, name, n);
    return true;
}

rp_err_t rp_gate_app_encode(uint8_t op, uint8_t slot, uint64_t gen, const char *component,
                            const rp_manifest_t *m, uint8_t *out, size_t cap)
{
    if (cap < RP_GATE_APP_LEN || (op != RP_GATE_ADD && op != RP_GATE_DROP) ||
        slot >= RP_GATE_SLOTS || (op == RP_GATE_ADD && m == NULL))
        return RP_ERR_INVALID_ARG;
    memset(out, 0, RP_GATE_APP_LEN);
    out[AP_VERSION] = RP_GATE_VERSION;
    out[AP_OP] = op;
    out[AP_SLOT] = slot;
    if (!put_name(out + AP_NAMES, component))
        return RP_ERR_INVALID_ARG;
    if (op == RP_GATE_DROP)
        return RP_OK;
    rp_le_put(out + AP_GEN, gen, 8);
    out[AP_AUTH] = m->device_authentication ? 1 : 0;
    if (m->napp_connections > RP_MANIFEST_APP_CONNECTIONS_MAX)
        return RP_ERR_INVALID_ARG;
    out[AP_NPEERS] = (uint8_t)m->napp_connections;
    for (size_t i = 0; i < m->napp_connections; i++)
        if (!put_name(out + AP_NAMES + (1 + i) * NAME_LEN, m->app_connections[i]))
            return RP_ERR_INVALID_ARG;
    return RP_OK;
}

/* A name field: a valid component name, NUL-padded. */
static bool get_name(const uint8_t *at, char *out)
{
    size_t n = strnlen((const char *)at, NAME_LEN);

    if (n == 0 || n >= NAME_LEN || !all_zero(at + n, NAME_LEN - n) ||
        !rp_component_name_valid((const char *)at, n))
        return false;
    memcpy(out, at, n);
    out[n] = '\0';
    return true;
}

rp_err_t rp_gate_answer_encode(uint8_t slot, uint32_t seq, const rp_mon_reply_t *p, uint8_t *out,
                               size_t cap, size_t *len)
{
    rp_err_t err;

    if (cap < RP_GATE_ANSWER_HEAD || slot >= RP_GATE_SLOTS || seq == 0)
        return RP_ERR_INVALID_ARG;
    memset(out, 0, RP_GATE_ANSWER_HEAD);
    out[AP_VERSION] = RP_GATE_VERSION;
    out[AP_OP] = RP_GATE_ANSWER;
    out[AP_SLOT] = slot;
    rp_le_put(out + AN_SEQ, seq, 4);
    err = rp_mon_reply_encode(p, out + RP_GATE_ANSWER_HEAD, cap - RP_GATE_ANSWER_HEAD, len);
    *len += RP_GATE_ANSWER_HEAD;
    return err;
}

rp_err_t rp_gate_msg_decode(const uint8_t *buf, size_t len, rp_gate_msg_t *msg)
{
    rp_gate_app_t *app = &msg->app;

    memset(msg, 0, sizeof(*msg));
    if (len < RP_GATE_ANSWER_HEAD || buf[AP_VERSION] != RP_GATE_VERSION ||
        buf[AP_SLOT] >= RP_GATE_SLOTS)
        return RP_ERR_MALFORMED;
    msg->op = app->op = buf[AP_OP];
    msg->slot = app->slot = buf[AP_SLOT];
    if (msg->op == RP_GATE_ANSWER) {
        msg->seq = (uint32_t)rp_le_get(buf + AN_SEQ, 4);
        if (buf[AN_ZERO] != 0 || msg->seq == 0 || len <= RP_GATE_ANSWER_HEAD ||
            len > RP_GATE_ANSWER_MAX)
            return RP_ERR_MALFORMED;
        msg->pkt = buf + RP_GATE_ANSWER_HEAD;
        msg->pkt_len = len - RP_GATE_ANSWER_HEAD;
        return RP_OK;
    }
    if ((msg->op != RP_GATE_ADD && msg->op != RP_GATE_DROP) || len != RP_GATE_APP_LEN ||
        buf[AP_AUTH] > 1 || buf[AP_NPEERS] > RP_MANIFEST_APP_CONNECTIONS_MAX || buf[AP_ZERO] != 0 ||
        !get_name(buf + AP_NAMES, app->component))
        return RP_ERR_MALFORMED;
    app->device_authentication = buf[AP_AUTH] == 1;
    app->npeers = buf[AP_NPEERS];
    app->gen = rp_le_get(buf + AP_GEN, 8);
    if (app->op == RP_GATE_DROP &&
        (app->device_authentication || app->npeers != 0 || app->gen != 0))
        return RP_ERR_MALFORMED;
    for (size_t i = 0; i < RP_MANIFEST_APP_CONNECTIONS_MAX; i++) {
        const uint8_t *at = buf + AP_NAMES + (1 + i) * NAME_LEN;
        if (i < app->npeers ? !get_name(at, app->peers[i]) : !all_zero(at, NAME_LEN))
            return RP_ERR_MALFORMED;
    }
    return RP_OK;
}

bool rp_gate_current(const rp_gate_req_t *r, uint64_t since, uint64_t gen)
{
    return since != 0 && r->gen >= (r->op == RP_GATE_EVENT ? since : gen);
}

bool rp_gate_answers(const rp_gate_wait_t *w, uint32_t seq, const rp_mon_reply_t *p)
{
    return w->seq != 0 && seq == w->seq && p->type == w->type;
}

bool rp_gate_lists(const rp_gate_app_t *a, const char *component)
{
    for (size_t i = 0; i < a->npeers && i < RP_MANIFEST_APP_CONNECTIONS_MAX; i++)
        if (strcmp(a->peers[i], component) == 0)
            return true;
    return false;
}

int64_t rp_gate_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rp_gate_bucket_fill(rp_gate_bucket_t *b, uint32_t burst)
{
    b->tokens = (uint64_t)burst * RP_GATE_TOKEN;
    b->refilled_ms = rp_gate_now_ms();
}

bool rp_gate_bucket_take(rp_gate_bucket_t *b, uint32_t burst, uint32_t per_minute)
{
    int64_t now = rp_gate_now_ms(), elapsed = now - b->refilled_ms;
    uint64_t max = (uint64_t)burst * RP_GATE_TOKEN;

    if (b->tokens > max) /* the burst was lowered */
        b->tokens = max;
    if (elapsed > 0) {
        uint64_t add = (uint64_t)elapsed * per_minute;
        b->tokens = add > max - b->tokens ? max : b->tokens + add;
        b->refilled_ms = now;
    }
    if (b->tokens < RP_GATE_TOKEN)
        return false;
    b->tokens -= RP_GATE_TOKEN;
    return true;
}
