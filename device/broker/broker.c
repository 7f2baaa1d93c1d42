/*
 * The app broker (broker.h): every app's channel, read and answered without privilege; the
 * chain and the signatures asked of the monitor over the gate (gate.h), one request at a time.
 */
#include <errno.h>
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

#define QUEUE_MAX 64   /* the monitor's ADD and DROP that came while an answer was awaited */
#define ASK_SECONDS 30 /* an answer not in by then: the app is told to try again */

typedef struct slot {
    bool used;       /* the monitor named this app (ADD) */
    rp_manifest_t m; /* the rules it gave, as the manifest appchan.c reads */
    rp_appchan_t c;  /* c.fd < 0: the app does not run (it has no channel) */
} slot_t;

static struct {
    int mon;
    slot_t slots[RP_GATE_SLOTS];
    struct {
        uint8_t buf[RP_GATE_APP_LEN];
        size_t len;
        int fd;
    } queue[QUEUE_MAX];
    size_t nqueued;
    uint8_t buf[RP_GATE_ANSWER_MAX];
    rp_mon_reply_t answer;
} b;

static uint8_t slot_of(const rp_appchan_t *c)
{
    return (uint8_t)((const slot_t *)((const char *)c - offsetof(slot_t, c)) - b.slots);
}

/* ADD or DROP, as the monitor said (fd: ADD's channel end, or -1: the app does not run). */
static void apply(const rp_gate_app_t *g, int fd)
{
    slot_t *s = &b.slots[g->slot];

    rp_appchan_close(&s->c);
    s->used = g->op == RP_GATE_ADD;
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
    if (fd >= 0 && rp_appchan_adopt(&s->c, g->component, &s->m, fd) != RP_OK) {
        rp_log_error("%s: its channel cannot be taken", g->component);
        close(fd);
    }
}

/* One message from the monitor, in buf[0..len) with fd. ANSWER (one not awaited: late) is
 * dropped; a message that does not decode is said and dropped. */
static void take(const uint8_t *buf, size_t len, int fd)
{
    rp_gate_app_t g;
    uint8_t slot;
    const uint8_t *pkt;
    size_t n;

    if (rp_gate_msg_decode(buf, len, &g, &slot, &pkt, &n) != RP_OK || pkt != NULL) {
        if (pkt == NULL)
            rp_log_warn("a message from the monitor that does not decode: dropped");
        if (fd >= 0)
            close(fd);
        return;
    }
    apply(&g, fd);
}

static void refuse(rp_mon_reply_t *p, rp_err_t err, const char *why)
{
    p->status = (uint16_t)err;
    snprintf(p->message, sizeof(p->message), "%s", why);
}

/* The root hook: q asked of the monitor, its answer awaited (the monitor's other messages meanwhile
 * queued). */
static void ask(void *ctx, rp_appchan_t *c, const rp_mon_request_t *q, rp_mon_reply_t *p)
{
    rp_gate_req_t r = {.slot = slot_of(c), .id = q->id};
    uint8_t out[RP_GATE_REQ_LEN];
    int64_t deadline = rp_gate_now_ms() + ASK_SECONDS * 1000;

    (void)ctx;
    r.op = q->type == RP_MON_APP_IDENTITY ? RP_GATE_IDENTITY : RP_GATE_SIGN;
    if (r.op == RP_GATE_SIGN) {
        r.side = q->u.sign_tls13.side;
        r.hash_len = (uint8_t)q->u.sign_tls13.hash_len;
        memcpy(r.hash, q->u.sign_tls13.hash, r.hash_len);
    }
    if (rp_gate_req_encode(&r, out, sizeof(out)) != RP_OK ||
        rp_mon_send(b.mon, out, sizeof(out), -1) != RP_OK) {
        refuse(p, RP_ERR_IO, "the monitor cannot be asked");
        return;
    }
    for (;;) {
        struct pollfd pf = {b.mon, POLLIN, 0};
        int64_t left = deadline - rp_gate_now_ms();
        rp_gate_app_t g;
        uint8_t slot;
        const uint8_t *pkt;
        size_t len = 0, n;
        int fd = -1;
        rp_err_t err;

        if (left <= 0 || (poll(&pf, 1, (int)left) < 0 && errno != EINTR)) {
            refuse(p, RP_ERR_BUSY,
                   "the monitor did not answer in time (it may be installing): "
                   "try again");
            return;
        }
        if (pf.revents == 0)
            continue;
        err = rp_mon_recv(b.mon, b.buf, sizeof(b.buf), &len, &fd);
        if (err == RP_ERR_NOT_FOUND || err == RP_ERR_IO)
            exit(0); /* the monitor is gone: so is the broker (the apps' channels are its) */
        if (err != RP_OK || rp_gate_msg_decode(b.buf, len, &g, &slot, &pkt, &n) != RP_OK) {
            rp_log_warn("a message from the monitor that does not decode: dropped");
            if (fd >= 0)
                close(fd);
            continue;
        }
        if (pkt == NULL) { /* ADD or DROP: after this request */
            if (b.nqueued == QUEUE_MAX || len > sizeof(b.queue[0].buf)) {
                rp_log_error("too many messages from the monitor at once: one is lost");
                if (fd >= 0)
                    close(fd);
                continue;
            }
            memcpy(b.queue[b.nqueued].buf, b.buf, len);
            b.queue[b.nqueued].len = len;
            b.queue[b.nqueued++].fd = fd;
            continue;
        }
        if (fd >= 0)
            close(fd);
        /* This request's answer (an earlier one given up on is not). */
        if (slot == r.slot && rp_mon_reply_decode(pkt, n, &b.answer) == RP_OK &&
            b.answer.id == q->id && b.answer.type == q->type) {
            *p = b.answer;
            return;
        }
    }
}

/* The root hook: a refusal, for the monitor to record. */
static void record(void *ctx, rp_appchan_t *c, rp_event_kind_t kind, const char *reason)
{
    rp_gate_req_t r = {.op = RP_GATE_EVENT, .slot = slot_of(c), .event_kind = (uint16_t)kind};
    uint8_t out[RP_GATE_REQ_LEN];

    (void)ctx;
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    for (char *ch = r.reason; *ch != '\0'; ch++)
        if (*ch < 0x20 || *ch > 0x7e)
            *ch = '?';
    if (rp_gate_req_encode(&r, out, sizeof(out)) != RP_OK ||
        rp_mon_send(b.mon, out, sizeof(out), -1) != RP_OK)
        rp_log_error("%s: the event could not be sent to the monitor: %s", c->component, reason);
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

/* Tell the monitor slot's channel was closed while its app still runs (its copy closes too): for
 * what its app sent, or for a reply its app did not take. */
static void closed(uint8_t slot)
{
    rp_gate_req_t r = {.op = RP_GATE_CLOSED, .slot = slot};
    uint8_t out[RP_GATE_REQ_LEN];

    if (rp_gate_req_encode(&r, out, sizeof(out)) != RP_OK ||
        rp_mon_send(b.mon, out, sizeof(out), -1) != RP_OK)
        rp_log_error("the monitor could not be told of a closed channel");
}

int rp_broker_run(int mon)
{
    static const rp_appchan_root_t root = {ask, record, NULL};
    static const rp_appchan_peers_t peers = {find, NULL};
    struct pollfd p[1 + RP_GATE_SLOTS];

    b.mon = mon;
    for (size_t i = 0; i < RP_GATE_SLOTS; i++)
        b.slots[i].c.fd = -1;
    rp_log_info("serving the apps' channels");
    for (;;) {
        for (size_t i = 0; i < b.nqueued; i++)
            take(b.queue[i].buf, b.queue[i].len, b.queue[i].fd);
        b.nqueued = 0;
        p[0] = (struct pollfd){mon, POLLIN, 0};
        for (size_t i = 0; i < RP_GATE_SLOTS; i++)
            p[1 + i] = (struct pollfd){b.slots[i].c.fd, POLLIN, 0};
        if (poll(p, 1 + RP_GATE_SLOTS, -1) < 0 && errno != EINTR) {
            rp_log_error("poll: %s", strerror(errno));
            return 1;
        }
        if (p[0].revents != 0) {
            size_t len = 0;
            int fd = -1;
            rp_err_t err = rp_mon_recv(mon, b.buf, sizeof(b.buf), &len, &fd);
            if (err == RP_ERR_NOT_FOUND || err == RP_ERR_IO)
                return 0; /* the monitor is gone */
            if (err == RP_OK)
                take(b.buf, len, fd);
            else if (fd >= 0)
                close(fd);
        }
        for (size_t i = 0; i < RP_GATE_SLOTS; i++) {
            rp_err_t err;
            if (p[1 + i].fd < 0 || p[1 + i].revents == 0 || b.slots[i].c.fd != p[1 + i].fd)
                continue; /* (closed or replaced while an answer was awaited) */
            err = rp_appchan_serve(&b.slots[i].c, &root, &peers);
            if (err != RP_OK && err != RP_ERR_NOT_FOUND)
                closed((uint8_t)i);
        }
    }
}
