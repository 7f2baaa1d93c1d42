/*
 * An app channel's root hooks in one process (gate-local.h).
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gate-local.h"
#include "rampart/log.h"

rp_err_t rp_test_gate_open(rp_test_gate_t *g, rp_agent_t *agent)
{
    memset(g, 0, sizeof(*g));
    g->agent = agent;
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, g->fd) == 0 ? RP_OK : RP_ERR_IO;
}

void rp_test_gate_close(rp_test_gate_t *g)
{
    for (int i = 0; i < 2; i++)
        if (g->fd[i] >= 0)
            close(g->fd[i]);
    g->fd[0] = g->fd[1] = -1;
}

void rp_test_gate_add(rp_test_gate_t *g, size_t slot, const char *component, const rp_manifest_t *m)
{
    g->apps[slot] = (rp_appgate_app_t){.used = true, .m = m, .fd = -1};
    snprintf(g->apps[slot].component, sizeof(g->apps[slot].component), "%s", component);
    g->slots[slot] = &g->apps[slot];
    rp_appgate_reset(&g->apps[slot]);
}

rp_err_t rp_test_gate_ask(rp_test_gate_t *g, const rp_gate_req_t *r, rp_mon_reply_t *p, int *closed)
{
    static uint8_t in[RP_GATE_ANSWER_MAX];
    uint8_t out[RP_GATE_REQ_LEN];
    rp_gate_msg_t msg;
    size_t len = 0;
    int fd = -1;
    struct pollfd pf = {g->fd[0], POLLIN, 0};
    rp_err_t err = rp_gate_req_encode(r, out, sizeof(out));

    if (err == RP_OK)
        err = rp_mon_send(g->fd[0], out, sizeof(out), -1);
    if (err == RP_OK)
        err = rp_appgate_serve(g->fd[1], g->agent, g->slots, closed);
    if (err != RP_OK || (r->op != RP_GATE_IDENTITY && r->op != RP_GATE_SIGN))
        return err;
    if (poll(&pf, 1, 0) != 1)
        return RP_ERR_NOT_FOUND; /* not answered (served at once, above) */
    err = rp_mon_recv(g->fd[0], in, sizeof(in), &len, &fd);
    if (fd >= 0) {
        close(fd);
        err = RP_ERR_MALFORMED;
    }
    if (err == RP_OK)
        err = rp_gate_msg_decode(in, len, &msg);
    if (err == RP_OK && (msg.op != RP_GATE_ANSWER || msg.slot != r->slot || msg.seq != r->seq))
        err = RP_ERR_NOT_FOUND;
    return err == RP_OK ? rp_mon_reply_decode(msg.pkt, msg.pkt_len, p) : err;
}

static uint8_t slot_of(rp_test_gate_t *g, const rp_appchan_t *c)
{
    for (size_t i = 0; i < RP_GATE_SLOTS; i++)
        if (g->slots[i] != NULL && g->slots[i]->m == c->manifest)
            return (uint8_t)i;
    return RP_GATE_SLOTS; /* (refused by the encoder) */
}

/* Answered at once (the broker's waits for its answer, serving the other channels). */
static bool ask(void *ctx, rp_appchan_t *c, const rp_mon_request_t *q, rp_mon_reply_t *p)
{
    rp_test_gate_t *g = ctx;
    rp_gate_req_t r = {.slot = slot_of(g, c), .seq = ++g->seq};
    int closed;

    r.op = q->type == RP_MON_APP_IDENTITY ? RP_GATE_IDENTITY : RP_GATE_SIGN;
    if (r.op == RP_GATE_SIGN) {
        r.side = q->u.sign_tls13.side;
        r.hash_len = (uint8_t)q->u.sign_tls13.hash_len;
        memcpy(r.hash, q->u.sign_tls13.hash, r.hash_len);
    }
    r.gen = r.slot < RP_GATE_SLOTS ? g->apps[r.slot].gen : 0;
    if (rp_test_gate_ask(g, &r, p, &closed) != RP_OK) {
        p->status = RP_ERR_IO;
        snprintf(p->message, sizeof(p->message), "the gate failed");
    }
    p->id = q->id; /* (the gate carries the broker's number, not the app's) */
    return false;
}

static void record(void *ctx, rp_appchan_t *c, rp_event_kind_t kind, const char *reason)
{
    rp_test_gate_t *g = ctx;
    rp_gate_req_t r = {.op = RP_GATE_EVENT, .slot = slot_of(g, c), .event_kind = (uint16_t)kind};
    int closed;

    r.gen = r.slot < RP_GATE_SLOTS ? g->apps[r.slot].gen : 0;
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    if (rp_test_gate_ask(g, &r, NULL, &closed) != RP_OK)
        rp_log_error("%s: the event did not go through the gate: %s", c->component, reason);
}

rp_appchan_root_t rp_test_gate_root(rp_test_gate_t *g)
{
    return (rp_appchan_root_t){ask, record, g};
}
