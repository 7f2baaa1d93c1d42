/*
 * The app broker (broker.h): every app's channel, read and answered without privilege; the
 * chain and the signatures asked of the monitor over the gate (gate.h), at most one request per
 * channel at a time, the other channels served while it waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "appchan.h"
#include "broker.h"
#include "gate.h"
#include "rampart/log.h"

#define ASK_SECONDS 30 /* an answer not in by then: the app is told to try again */

typedef struct slot {
    bool used;       /* the monitor named this app (ADD) */
    uint64_t gen;    /* its channel's generation, as ADD gave it: in every message about it */
    rp_manifest_t m; /* the rules it gave, as the manifest appchan.c reads */
    rp_appchan_t c;  /* c.fd < 0: the app does not run (it has no channel) */
    rp_appchan_held_t held; /* the slot's closed channels whose descriptors are still unread */
    rp_gate_wait_t wait;    /* the request of c asked of the monitor (seq 0: none); c waits */
    /* Told the monitor as soon as its socket takes it (it may be full: an install): CLOSED of the
     * channel of generation closed_gen (0: none), and how many EVENTs of each kind were not sent
     * (lost[0] app_connection, lost[1] identity), from the channel of generation lost_gen on. */
    uint64_t closed_gen, lost_gen;
    unsigned lost[2];
} slot_t;

static struct {
    int mon;
    uint32_t seq; /* the last request's number */
    slot_t slots[RP_GATE_SLOTS];
    uint8_t buf[RP_GATE_ANSWER_MAX];
    rp_mon_reply_t answer;
} b;

static uint8_t slot_of(const rp_appchan_t *c)
{
    return (uint8_t)((const slot_t *)((const char *)c - offsetof(slot_t, c)) - b.slots);
}

/* ADD or DROP, as the monitor said (fd: ADD's channel end, or -1: the app does not run). A request
 * awaited for the slot's channel before is no longer (its answer, late, matches nothing). */
static void apply(const rp_gate_app_t *g, int fd)
{
    slot_t *s = &b.slots[g->slot];

    rp_appchan_close(&s->c);
    s->wait.seq = 0;
    if (g->gen != s->gen)
        s->closed_gen = 0; /* the monitor has given the slot another channel already */
    /* Refusals counted and not sent yet are the app's own: kept across a DROP, sent as of its
     * next channel when it is ADDed again (an upgrade; review r7: L7), said only when the slot
     * is another app's (flush sends none for a slot without an app: the monitor has no app to
     * record them for). */
    if (s->lost[0] + s->lost[1] > 0 && g->op == RP_GATE_ADD &&
        strcmp(g->component, s->m.component_id) != 0) {
        rp_log_warn("%s: %u refusals were not recorded (the monitor's socket was full)",
                    s->m.component_id, s->lost[0] + s->lost[1]);
        s->lost[0] = s->lost[1] = 0; /* (another app's slot now: not its events) */
    } else if (g->op == RP_GATE_ADD)
        s->lost_gen = g->gen;
    s->used = g->op == RP_GATE_ADD;
    s->gen = g->gen;
    if (!s->used) {
        if (fd >= 0)
            close(fd);
        return;
    }
    memset(&s->m, 0, sizeof(s->m));
    snprintf(s->m.component_id, sizeof(s->m.component_id), "%s", g->component);
    s->m.device_authentication = g->device_authentication;
    s->m.napp_connections = g->npeers;
    memcpy(s->m.app_connections, g->peers, sizeof(g->peers));
    if (fd >= 0 && rp_appchan_adopt(&s->c, &s->held, g->component, &s->m, fd) != RP_OK) {
        rp_log_error("%s: its channel cannot be taken", g->component);
        close(fd);
    }
}

static void refuse(rp_mon_reply_t *p, rp_err_t err, const char *why)
{
    p->status = (uint16_t)err;
    snprintf(p->message, sizeof(p->message), "%s", why);
}

/* Send r to the monitor: false while its socket does not take it (one that cannot be encoded is
 * said and dropped: there is nothing to send again). */
static bool tell(const rp_gate_req_t *r)
{
    uint8_t out[RP_GATE_REQ_LEN];

    if (rp_gate_req_encode(r, out, sizeof(out)) != RP_OK) {
        rp_log_error("a message for the monitor does not encode (slot %u): dropped", r->slot);
        return true;
    }
    return rp_mon_send(b.mon, out, sizeof(out), -1) == RP_OK;
}

/* What the monitor must still be told (CLOSED, the count of EVENTs not sent), sent in order while
 * its socket takes it. Whether something is left. */
static bool flush(void)
{
    static const rp_event_kind_t kinds[2] = {RP_EVENT_APP_CONNECTION, RP_EVENT_IDENTITY};

    for (uint8_t i = 0; i < RP_GATE_SLOTS; i++) {
        slot_t *s = &b.slots[i];
        if (s->closed_gen != 0 &&
            !tell(&(rp_gate_req_t){.op = RP_GATE_CLOSED, .slot = i, .gen = s->closed_gen}))
            return true;
        s->closed_gen = 0;
        for (int k = 0; k < 2; k++) {
            rp_gate_req_t r = {
                .op = RP_GATE_EVENT, .slot = i, .gen = s->lost_gen, .event_kind = kinds[k]};
            if (s->lost[k] == 0 || !s->used)
                continue;
            snprintf(r.reason, sizeof(r.reason),
                     "%u more %s refusals not recorded: the monitor's socket was full", s->lost[k],
                     rp_event_kind_name(kinds[k]));
            if (!tell(&r))
                return true;
            s->lost[k] = 0;
        }
    }
    return false;
}

/* Tell the monitor slot's channel was closed while its app still runs (its copy closes too): for
 * what its app sent, or for a reply its app did not take. Never lost: kept until the monitor's
 * socket takes it (flush). */
static void closed(uint8_t slot)
{
    b.slots[slot].closed_gen = b.slots[slot].gen;
    (void)flush();
}

/* What serving slot's channel came to (rp_appchan_serve's or rp_appchan_answer's result). */
static void served(uint8_t slot, rp_err_t err)
{
    if (err != RP_OK && err != RP_ERR_NOT_FOUND)
        closed(slot);
}

/* ANSWER from the monitor: to its app when it is the answer its request awaits (rp_gate_answers:
 * the broker's own number, never the app's id); else late (given up on, or for a channel since
 * replaced), dropped. */
static void answered(const rp_gate_msg_t *msg)
{
    slot_t *s = &b.slots[msg->slot];

    if (rp_mon_reply_decode(msg->pkt, msg->pkt_len, &b.answer) != RP_OK ||
        !rp_gate_answers(&s->wait, msg->seq, &b.answer)) {
        rp_log_debug("an answer from the monitor not awaited (late): dropped");
        return;
    }
    b.answer.id = s->wait.id;
    s->wait.seq = 0;
    served(msg->slot, rp_appchan_answer(&s->c, &b.answer));
}

/* One message from the monitor, in b.buf[0..len) with fd; one that does not decode is said and
 * dropped. */
static void take(size_t len, int fd)
{
    rp_gate_msg_t msg;
    bool ok = rp_gate_msg_decode(b.buf, len, &msg) == RP_OK;

    if (ok && msg.op != RP_GATE_ANSWER) {
        apply(&msg.app, fd);
        return;
    }
    if (ok)
        answered(&msg);
    else
        rp_log_warn("a message from the monitor that does not decode: dropped");
    if (fd >= 0)
        close(fd);
}

/* The root hook: q sent to the monitor; its answer comes later (answered), or BUSY at the
 * deadline (expire). */
static bool ask(void *ctx, rp_appchan_t *c, const rp_mon_request_t *q, rp_mon_reply_t *p)
{
    slot_t *s = &b.slots[slot_of(c)];
    rp_gate_req_t r = {.slot = slot_of(c), .gen = s->gen};
    uint8_t out[RP_GATE_REQ_LEN];

    (void)ctx;
    b.seq = b.seq == UINT32_MAX ? 1 : b.seq + 1;
    r.seq = b.seq;
    r.op = q->type == RP_MON_APP_IDENTITY ? RP_GATE_IDENTITY : RP_GATE_SIGN;
    if (r.op == RP_GATE_SIGN) {
        r.side = q->u.sign_tls13.side;
        r.hash_len = (uint8_t)q->u.sign_tls13.hash_len;
        memcpy(r.hash, q->u.sign_tls13.hash, r.hash_len);
    }
    if (rp_gate_req_encode(&r, out, sizeof(out)) != RP_OK ||
        rp_mon_send(b.mon, out, sizeof(out), -1) != RP_OK) {
        refuse(p, RP_ERR_BUSY, "the monitor cannot be asked now: try again");
        return false;
    }
    s->wait = (rp_gate_wait_t){r.seq, q->id, q->type, rp_gate_now_ms() + ASK_SECONDS * 1000};
    return true;
}

/* Each request not answered by its deadline is answered BUSY. The time to the next deadline, in
 * ms (-1: none). */
static int expire(void)
{
    int64_t now = rp_gate_now_ms(), next = -1;

    for (uint8_t i = 0; i < RP_GATE_SLOTS; i++) {
        slot_t *s = &b.slots[i];
        if (s->wait.seq == 0)
            continue;
        if (s->wait.deadline_ms > now) {
            next = next < 0 || s->wait.deadline_ms - now < next ? s->wait.deadline_ms - now : next;
            continue;
        }
        memset(&b.answer, 0, sizeof(b.answer));
        b.answer.type = s->wait.type;
        b.answer.id = s->wait.id;
        refuse(&b.answer, RP_ERR_BUSY,
               "the monitor did not answer in time (it may be installing): try again");
        s->wait.seq = 0;
        served(i, rp_appchan_answer(&s->c, &b.answer));
    }
    return next > INT_MAX ? INT_MAX : (int)next;
}

/* The root hook: a refusal, for the monitor to record; one its socket does not take now is counted,
 * and the count sent once it does (flush). */
static void record(void *ctx, rp_appchan_t *c, rp_event_kind_t kind, const char *reason)
{
    slot_t *s = &b.slots[slot_of(c)];
    rp_gate_req_t r = {
        .op = RP_GATE_EVENT, .slot = slot_of(c), .gen = s->gen, .event_kind = (uint16_t)kind};

    (void)ctx;
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    for (char *ch = r.reason; *ch != '\0'; ch++)
        if (*ch < 0x20 || *ch > 0x7e)
            *ch = '?';
    if ((s->lost[0] + s->lost[1] == 0 || !flush()) && tell(&r))
        return;
    if (s->lost[0] + s->lost[1] == 0) {
        rp_log_warn("%s: the monitor's socket is full: its refusals are counted, the count sent "
                    "when it takes them",
                    c->component);
        s->lost_gen = s->gen;
    }
    s->lost[kind == RP_EVENT_IDENTITY ? 1 : 0]++;
}

static void find(void *ctx, const char *component, rp_appchan_t **chan,
                 const rp_manifest_t **manifest)
{
    (void)ctx;
    *chan = NULL;
    *manifest = NULL;
    for (size_t i = 0; i < RP_GATE_APPS; i++) /* (never the trial: it calls, no one calls it) */
        if (b.slots[i].used && strcmp(b.slots[i].m.component_id, component) == 0) {
            *manifest = &b.slots[i].m;
            *chan = b.slots[i].c.fd >= 0 ? &b.slots[i].c : NULL;
            return;
        }
}

int rp_broker_run(int mon)
{
    static const rp_appchan_root_t root = {ask, record, NULL};
    static const rp_appchan_peers_t peers = {find, NULL};
    struct pollfd p[1 + RP_GATE_SLOTS];

    b.mon = mon;
    /* Never wait on the monitor: while it does not read (an install), a request or an event that
     * does not fit is refused or said, and the other channels are served. */
    if (fcntl(mon, F_SETFL, fcntl(mon, F_GETFL) | O_NONBLOCK) != 0) {
        rp_log_error("the monitor's socket: %s", strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < RP_GATE_SLOTS; i++) {
        b.slots[i].c.fd = -1;
        rp_appchan_held_init(&b.slots[i].held);
    }
    rp_log_info("serving the apps' channels");
    for (;;) {
        int timeout = expire();
        /* (what is left to tell: sent when the monitor's socket has room again) */
        p[0] = (struct pollfd){mon, (short)(POLLIN | (flush() ? POLLOUT : 0)), 0};
        for (size_t i = 0; i < RP_GATE_SLOTS; i++)
            p[1 + i] = (struct pollfd){b.slots[i].wait.seq != 0 ? -1 : b.slots[i].c.fd, POLLIN, 0};
        if (poll(p, 1 + RP_GATE_SLOTS, timeout) < 0 && errno != EINTR) {
            rp_log_error("poll: %s", strerror(errno));
            return 1;
        }
        /* (POLLOUT alone: flush() at the top) */
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            size_t len = 0;
            int fd = -1;
            rp_err_t err = rp_mon_recv(mon, b.buf, sizeof(b.buf), &len, &fd);
            if (err == RP_ERR_NOT_FOUND || err == RP_ERR_IO)
                return 0; /* the monitor is gone */
            if (err == RP_OK)
                take(len, fd);
            else if (fd >= 0)
                close(fd);
        }
        for (size_t i = 0; i < RP_GATE_SLOTS; i++) {
            if (p[1 + i].fd < 0 || p[1 + i].revents == 0 || b.slots[i].c.fd != p[1 + i].fd)
                continue; /* (closed or replaced by the monitor's message just taken) */
            served((uint8_t)i, rp_appchan_serve(&b.slots[i].c, &root, &peers));
        }
    }
}
