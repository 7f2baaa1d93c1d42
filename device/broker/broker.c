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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "appchan.h"
#include "broker.h"
#include "gate.h"
#include "rampart/log.h"
#include "store.h"
#include "unpack.h" /* RP_BROKER_NOFILE */

#define ASK_SECONDS 30 /* an answer not in by then: the app is told to try again */

/* The store of kept ends: a datagram socket pair the supervisor makes anew for each broker (apps.c:
 * rp_apps_store_hand), its two ends the first packets on the broker's socket after the read end of
 * the one before, which the supervisor alone kept across the death. Every list of kept ends (each
 * slot's, each of the reserve's) is written into it, the ends as descriptors in the messages with
 * their counts, whenever the lists changed (after each message from the monitor, each packet
 * served, each turn): the new snapshot whole, then the one before read out and its copies closed.
 * A broker that dies leaves its last whole snapshot there, and the next one takes it back at its
 * start (store_restore): what the kept ends hold is counted across any number of deaths (all but
 * what was kept in the one step it died in), for RP_BROKER_RESTORED_MS at most (broker.h). */
#define STORE_LISTS RP_STORE_LISTS
#define STORE_MSGS_MAX (3 * STORE_LISTS) /* a snapshot, the one before, one written in part */

/* The broker's budget (docs/compartments.md, "The app broker"; the monitor sets it: unpack.c). In
 * flight: at most RP_APPCHAN_FDS_APP_MAX per app slot over all its channels (appchan.c), as many
 * per list of the reserve for removed apps' kept ends: (17 + 8) x 20 = 500, and the copies of the
 * kept ends in the store (at most 500 ends, each holding at least one), twice while a snapshot
 * replaces the one before: 1500 <= 2048, whatever number of brokers died before (they left their
 * ends in the store). Open: a channel and up to RP_APPCHAN_FDS_APP_MAX closed ones kept per slot,
 * the reserve's, a record's copies being read out of the store, the store, its socket, stdio and a
 * socket pair being made (17 x 21 + 8 x 20 + 20 + 10 = 567); at the start, what the store holds
 * (75 records of 20 at most, 1500 + 10). */
#define BROKER_IN_FLIGHT_MAX ((RP_GATE_SLOTS + RP_APPCHAN_ORPHAN_LISTS) * RP_APPCHAN_FDS_APP_MAX)
_Static_assert(3 * BROKER_IN_FLIGHT_MAX <= RP_BROKER_NOFILE,
               "the broker's budget covers every app's unread descriptors and the store");
_Static_assert((1 + RP_APPCHAN_FDS_APP_MAX) * RP_GATE_SLOTS +
                       (RP_APPCHAN_ORPHAN_LISTS + 1) * RP_APPCHAN_FDS_APP_MAX + 10 <=
                   RP_BROKER_NOFILE,
               "the broker's descriptor table holds every channel it keeps");
#define STORE_FDS_MAX (STORE_MSGS_MAX * RP_APPCHAN_FDS_APP_MAX)
_Static_assert(STORE_FDS_MAX + 10 <= RP_BROKER_NOFILE,
               "the broker's descriptor table holds what the store gives back");

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
    /* The kept ends of apps whose slot went to another component (appchan.h), one list checked at
     * each turn of the loop (and all at each move): still in the budget, no app's any more. */
    rp_appchan_held_t orphans[RP_APPCHAN_ORPHAN_LISTS];
    unsigned sweep;
    int store_w, store_r;    /* the store's ends (-1: none) */
    uint32_t epoch;          /* the last snapshot written */
    unsigned store_msgs;     /* its records, in the store */
    unsigned stored_changes; /* rp_appchan_held_changes() when it was written */
    uint8_t buf[RP_GATE_ANSWER_MAX];
    rp_mon_reply_t answer;
} b;

int64_t rp_broker_restored_ms = RP_BROKER_RESTORED_MS;

static uint8_t slot_of(const rp_appchan_t *c)
{
    return (uint8_t)((const slot_t *)((const char *)c - offsetof(slot_t, c)) - b.slots);
}

static rp_appchan_held_t *list_of(unsigned k)
{
    return k < RP_GATE_SLOTS ? &b.slots[k].held : &b.orphans[k - RP_GATE_SLOTS];
}

/* Send r with h's ends (r->n of them) into the store. */
static bool store_send(const rp_store_rec_t *r, const rp_appchan_held_t *h)
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * RP_APPCHAN_FDS_APP_MAX)];
    } ctl;
    struct iovec iov = {(void *)r, sizeof(*r)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    struct cmsghdr *c;

    if (r->n > 0) {
        m.msg_control = ctl.space;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * r->n);
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * r->n);
        for (unsigned i = 0; i < r->n; i++)
            memcpy(CMSG_DATA(c) + i * sizeof(int), &h->end[i].fd, sizeof(int));
    }
    return sendmsg(b.store_w, &m, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(*r);
}

/* The store's next record into *r, its descriptors into fds: 1; 0: none left; -1: one that is not
 * a whole record (its descriptors closed). */
static int store_recv(int from, rp_store_rec_t *r, int fds[RP_APPCHAN_FDS_APP_MAX])
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * (RP_APPCHAN_FDS_APP_MAX + 4))];
    } ctl;
    struct iovec iov = {r, sizeof(*r)};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space, .msg_controllen = sizeof(ctl)};
    ssize_t got = recvmsg(from, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    unsigned n = 0, extra = 0;

    if (got < 0)
        return 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
        for (size_t k = 0; c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                           k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
             k++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
            if (n < RP_APPCHAN_FDS_APP_MAX)
                fds[n++] = fd;
            else
                extra += close(fd) == 0;
        }
    if ((m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0 && extra == 0 &&
        rp_store_rec_check(r, (size_t)got, n))
        return 1;
    while (n > 0)
        close(fds[--n]);
    return -1;
}

/* The lists written into the store when they changed since (a new snapshot, then the one before
 * read out). A store that does not take them is said and given up: a broker that dies then loses
 * them, as before there was a store. */
static void store_write(void)
{
    static rp_store_rec_t r;
    unsigned m = 0, sent = 0;
    int fds[RP_APPCHAN_FDS_APP_MAX];

    if (b.store_w < 0 || rp_appchan_held_changes() == b.stored_changes)
        return;
    for (unsigned k = 0; k < STORE_LISTS; k++)
        m += list_of(k)->n > 0;
    b.epoch++;
    for (unsigned k = 0; k < STORE_LISTS; k++) {
        const rp_appchan_held_t *h = list_of(k);
        if (h->n == 0 && (m > 0 || k > 0)) /* (none at all: one empty record says so) */
            continue;
        memset(&r, 0, sizeof(r)); /* (its padding too: it is sent whole) */
        r.epoch = b.epoch;
        r.i = (uint8_t)sent;
        r.m = (uint8_t)(m > 0 ? m : 1);
        r.list = (uint8_t)k;
        r.n = (uint8_t)h->n;
        for (unsigned e = 0; e < h->n; e++) {
            r.fds[e] = (uint8_t)(h->end[e].fds < UINT8_MAX ? h->end[e].fds : UINT8_MAX);
            r.until_ms[e] = h->end[e].until_ms;
        }
        if (k < RP_GATE_SLOTS)
            snprintf(r.component, sizeof(r.component), "%s", b.slots[k].m.component_id);
        if (!store_send(&r, h)) {
            rp_log_error("the store of kept ends does not take them (%s): given up, a broker that "
                         "dies now loses them",
                         strerror(errno));
            close(b.store_w);
            close(b.store_r);
            b.store_w = b.store_r = -1;
            return;
        }
        sent++;
    }
    for (; b.store_msgs > 0; b.store_msgs--) { /* (the one before: the oldest records) */
        int got = store_recv(b.store_r, &r, fds);
        if (got == 0)
            break;
        for (unsigned e = 0; got > 0 && e < r.n; e++)
            close(fds[e]);
    }
    b.store_msgs = sent;
    b.stored_changes = rp_appchan_held_changes();
}

/* At the start: the last whole snapshot of the broker before, read from the store before (from,
 * closed here), back in the lists (each slot's with the component it was for, so that an ADD of
 * another one moves it to the reserve), its ends read since closed; the rest closed. Written at
 * once into this broker's store. Each end taken back is counted until the time the broker before
 * gave it, or rp_broker_restored_ms from now if that is sooner (or none): a broker taken over
 * cannot make the brokers after it count an end for longer, whatever it wrote (review r10 L2). */
static void store_restore(int from)
{
    static rp_store_rec_t recs[STORE_MSGS_MAX + 1];
    static int fds[STORE_MSGS_MAX + 1][RP_APPCHAN_FDS_APP_MAX];
    int64_t until = rp_gate_now_ms() + rp_broker_restored_ms;
    unsigned n = 0, held = 0, dropped = 0;
    uint32_t best = 0;
    bool found = false;
    int got;

    /* Shut for reading first: a send to it fails from now on (EPIPE), so what it holds, bounded by
     * its writers' send buffer, is all read out, although a broker taken over may have given its
     * write end to an app that keeps writing; none of it stays in flight while the supervisor
     * still holds this store (until this broker has written into its own: rp_apps_store_hand). */
    if (from >= 0)
        (void)shutdown(from, SHUT_RD);
    while (from >= 0 && (got = store_recv(from, &recs[n], fds[n])) != 0) {
        if (got > 0 && n < STORE_MSGS_MAX) {
            n++;
            continue;
        }
        for (unsigned e = 0; got > 0 && e < recs[n].n; e++)
            close(fds[n][e]);
        dropped++;
    }
    if (dropped > 0)
        rp_log_warn("the store of kept ends held %u records that are not one or past what it can "
                    "hold: dropped",
                    dropped);
    for (unsigned i = 0; i < n; i++) { /* the newest snapshot whose records are all there */
        unsigned have = 0;
        for (unsigned j = 0; j < n; j++)
            have += recs[j].epoch == recs[i].epoch;
        if (have == recs[i].m && (!found || (int32_t)(recs[i].epoch - best) > 0)) {
            best = recs[i].epoch;
            found = true;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        rp_appchan_held_t *h = list_of(recs[i].list);
        bool take = found && recs[i].epoch == best;
        if (take && recs[i].list < RP_GATE_SLOTS)
            snprintf(b.slots[recs[i].list].m.component_id,
                     sizeof(b.slots[recs[i].list].m.component_id), "%s", recs[i].component);
        for (unsigned e = 0; e < recs[i].n; e++) {
            int64_t t = recs[i].until_ms[e];
            if (take && h->n < RP_APPCHAN_FDS_APP_MAX)
                h->end[h->n++] = (rp_appchan_held_end_t){fds[i][e], recs[i].fds[e],
                                                         t > 0 && t < until ? t : until};
            else
                close(fds[i][e]);
        }
    }
    for (unsigned k = 0; k < STORE_LISTS; k++)
        held += rp_appchan_held_count(list_of(k));
    if (held > 0)
        rp_log_info("%u descriptors sent by the broker before are still unread on its kept ends: "
                    "counted again",
                    held);
    if (from >= 0)
        close(from);
    b.epoch = best;
    b.store_msgs = 0;
    b.stored_changes = rp_appchan_held_changes() - 1; /* (written at once) */
    store_write();
}

/* s going to component (an ADD): what the ends kept for another component's app hold is moved to
 * the reserve, so that it does not count against this one (an upgrade keeps its list: its app is
 * the same). Said once, as is a full reserve (the ends then stay, counted against this app). */
static void reassign(slot_t *s, const char *component)
{
    unsigned n = 0;

    if (strcmp(component, s->m.component_id) == 0)
        return;
    if (rp_appchan_held_orphan(&s->held, b.orphans, &n) != RP_OK)
        rp_log_warn("%s: %u descriptors the app %s was sent in this slot are still unread, and "
                    "the reserve for removed apps' is full: they count against %s until read",
                    component, rp_appchan_held_count(&s->held), s->m.component_id, component);
    else if (n > 0)
        rp_log_info("%s: %u descriptors the app %s was sent in this slot are still unread: moved "
                    "to the broker's reserve, closed once read",
                    component, n, s->m.component_id);
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
    reassign(s, g->component);
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
    int before = -1;

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
    for (size_t i = 0; i < RP_APPCHAN_ORPHAN_LISTS; i++)
        rp_appchan_held_init(&b.orphans[i]);
    /* The store before's read end ('R', none for the first broker), then this broker's store's two
     * ends ('S'), the first packets on mon (apps.c); without them (a test) there is none, and a
     * first packet that is not one is the monitor's. */
    b.store_w = b.store_r = -1;
    for (int before_done = 0;;) {
        size_t len = 0;
        int fd = -1;
        if (rp_mon_recv(mon, b.buf, sizeof(b.buf), &len, &fd) != RP_OK)
            break;
        if (len == 1 && fd >= 0 && b.buf[0] == 'R' && !before_done && b.store_r < 0) {
            before = fd;
            before_done = 1;
        } else if (len == 1 && fd >= 0 && b.buf[0] == 'S' && b.store_r < 0) {
            b.store_r = fd;
        } else if (len == 1 && fd >= 0 && b.buf[0] == 'S') {
            b.store_w = fd;
            break;
        } else {
            take(len, fd);
            break;
        }
    }
    if (b.store_w < 0 && b.store_r >= 0) {
        close(b.store_r);
        b.store_r = -1;
    }
    if (b.store_w < 0)
        rp_log_warn("no store of kept ends: a broker that dies loses them");
    store_restore(before);
    rp_log_info("serving the apps' channels");
    for (;;) {
        int timeout = expire();
        (void)rp_appchan_held_count(&b.orphans[b.sweep++ % RP_APPCHAN_ORPHAN_LISTS]);
        store_write();
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
            store_write();
        }
        for (size_t i = 0; i < RP_GATE_SLOTS; i++) {
            if (p[1 + i].fd < 0 || p[1 + i].revents == 0 || b.slots[i].c.fd != p[1 + i].fd)
                continue; /* (closed or replaced by the monitor's message just taken) */
            served((uint8_t)i, rp_appchan_serve(&b.slots[i].c, &root, &peers));
            store_write();
        }
    }
}
