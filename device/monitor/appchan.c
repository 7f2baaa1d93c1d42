/*
 * The monitor's side of an app's channel (appchan.h): who asks is the channel, what it may ask is
 * its manifest; the device identity's chain and signatures, and sockets between apps.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "appchan.h"
#include "events.h"
#include "proto.h"
#include "rampart/log.h"

/* One request at a time in the whole monitor: the buffers are shared. */
static struct {
    uint8_t buf[RP_MON_PACKET_MAX];
    rp_mon_request_t q;
    rp_mon_reply_t p;
} w;

/* Whether everything sent on fd (the monitor's end of a channel) was read by the other end
 * (SIOCOUTQ: what it sent that the other end has not read; it still answers once shut down). An
 * error reads as not. */
static bool all_read_fd(int fd)
{
    int queued = -1;

    return ioctl(fd, SIOCOUTQ, &queued) == 0 && queued == 0;
}

_Static_assert(RP_MANIFEST_APP_CONNECTIONS_MAX <= 32, "busy_said has a bit per peer");

static unsigned held_changes; /* ends kept, closed or moved, in all */

unsigned rp_appchan_held_changes(void)
{
    return held_changes;
}

void rp_appchan_held_init(rp_appchan_held_t *h)
{
    memset(h, 0, sizeof(*h));
}

unsigned rp_appchan_held_count(rp_appchan_held_t *h)
{
    int64_t now = rp_gate_now_ms();
    unsigned n = 0;

    for (unsigned i = 0; i < h->n;) {
        bool read = all_read_fd(h->end[i].fd);
        if (read || (h->end[i].until_ms != 0 && now >= h->end[i].until_ms)) {
            if (!read)
                rp_log_warn("an end kept by the broker before still holds %u unread descriptors "
                            "past its time: closed, no longer counted",
                            h->end[i].fds);
            close(h->end[i].fd);
            h->end[i] = h->end[--h->n];
            held_changes++;
            continue;
        }
        n += h->end[i++].fds;
    }
    return n;
}

void rp_appchan_held_close(rp_appchan_held_t *h)
{
    for (unsigned i = 0; i < h->n; i++)
        close(h->end[i].fd);
    h->n = 0;
}

rp_err_t rp_appchan_held_orphan(rp_appchan_held_t *h,
                                rp_appchan_held_t reserve[RP_APPCHAN_ORPHAN_LISTS], unsigned *moved)
{
    rp_appchan_held_t *free_list = NULL;

    *moved = rp_appchan_held_count(h);
    if (*moved == 0)
        return RP_OK;
    for (size_t i = 0; i < RP_APPCHAN_ORPHAN_LISTS; i++)
        if (rp_appchan_held_count(&reserve[i]) == 0 && free_list == NULL)
            free_list = &reserve[i];
    if (free_list == NULL)
        return RP_ERR_BUSY;
    *free_list = *h;
    rp_appchan_held_init(h);
    held_changes++;
    return RP_OK;
}

/* Descriptors sent on c since its app last had read everything on it (and none once it has). */
static unsigned live(rp_appchan_t *c)
{
    unsigned n = c->fds_replies;

    if (all_read_fd(c->fd)) {
        c->fds_replies = 0;
        memset(c->fds_from, 0, sizeof(c->fds_from));
        return 0;
    }
    for (size_t i = 0; i < RP_MANIFEST_APP_CONNECTIONS_MAX; i++)
        n += c->fds_from[i];
    return n;
}

/* Descriptors in flight to c's app, over all its channels (an upper bound). */
static unsigned in_flight(rp_appchan_t *c)
{
    return live(c) + (c->held != NULL ? rp_appchan_held_count(c->held) : 0);
}

/* Whether c's app hung up (closed its end, or exited): nothing more will come or go. */
static bool hung_up(const rp_appchan_t *c)
{
    struct pollfd pf = {.fd = c->fd, .events = 0};

    return poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLERR)) != 0;
}

rp_err_t rp_appchan_adopt(rp_appchan_t *c, rp_appchan_held_t *held, const char *component,
                          const rp_manifest_t *m, int fd)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (fd < 0 || held == NULL || component == NULL || m == NULL ||
        !rp_component_name_valid(component, strlen(component)))
        return RP_ERR_INVALID_ARG;
    /* The channel's end never waits for an app: a full channel is the app's problem, not
     * everyone's. */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        return RP_ERR_IO;
    c->fd = fd;
    c->held = held;
    snprintf(c->component, sizeof(c->component), "%s", component);
    c->manifest = m;
    c->sign = (rp_appchan_rate_t){.burst = RP_APPCHAN_SIGN_BURST,
                                  .per_minute = RP_APPCHAN_SIGN_PER_MINUTE};
    c->identity = (rp_appchan_rate_t){.burst = RP_APPCHAN_IDENTITY_BURST,
                                      .per_minute = RP_APPCHAN_IDENTITY_PER_MINUTE};
    rp_gate_bucket_fill(&c->sign.bucket, c->sign.burst);
    rp_gate_bucket_fill(&c->identity.bucket, c->identity.burst);
    c->log_tokens = RP_APPCHAN_LOG_BURST;
    c->log_refilled_ms = c->sign.bucket.refilled_ms;
    /* A channel handed over with unread packets (a new broker's): what they carry is not known,
     * so each count starts at its bound (what an earlier broker held it to), nothing more until the
     * app has read them. */
    if (!all_read_fd(fd)) {
        c->fds_replies = RP_APPCHAN_FDS_REPLIES_MAX;
        for (size_t i = 0; i < RP_MANIFEST_APP_CONNECTIONS_MAX; i++)
            c->fds_from[i] = RP_APPCHAN_FDS_PAIR_MAX;
    }
    return RP_OK;
}

rp_err_t rp_appchan_open(rp_appchan_t *c, rp_appchan_held_t *held, const char *component,
                         const rp_manifest_t *m, int *app_end)
{
    int sv[2];
    rp_err_t err;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    *app_end = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return RP_ERR_IO;
    err = rp_appchan_adopt(c, held, component, m, sv[0]);
    if (err != RP_OK) {
        close(sv[0]);
        close(sv[1]);
        return err;
    }
    *app_end = sv[1];
    return RP_OK;
}

int rp_appchan_fd(const rp_appchan_t *c)
{
    return c->fd;
}

void rp_appchan_close(rp_appchan_t *c)
{
    unsigned n;

    if (c->fd >= 0) {
        n = live(c);
        (void)shutdown(c->fd, SHUT_RDWR); /* (the app may still read what waits for it) */
        /* There is room: each kept end holds at least one, and they are counted in the app's
         * RP_APPCHAN_FDS_APP_MAX with this channel's. */
        if (n > 0 && c->held != NULL && c->held->n < RP_APPCHAN_FDS_APP_MAX) {
            c->held->end[c->held->n++] = (rp_appchan_held_end_t){c->fd, n, 0};
            held_changes++;
        } else
            close(c->fd);
    }
    c->fd = -1;
    if (c->events_suppressed > 0)
        rp_log_warn("%s: %u more refusals on its channel were not recorded as events", c->component,
                    c->events_suppressed);
    c->events_suppressed = 0;
    if (c->log_suppressed > 0)
        rp_log_warn("%s: %u more lines about its channel were not logged", c->component,
                    c->log_suppressed);
    c->log_suppressed = 0;
}

/* A log line about c's requests, at most RP_APPCHAN_LOG_BURST at once and
 * RP_APPCHAN_LOG_PER_MINUTE after: what an app makes the monitor say is bounded like what it makes
 * it record. The lines not logged are counted, and said with the next one that is. */
static void say(rp_appchan_t *c, rp_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(rp_appchan_t *c, rp_log_level_t level, const char *fmt, ...)
{
    char line[512];
    int64_t now = rp_gate_now_ms(), per = 60000 / RP_APPCHAN_LOG_PER_MINUTE;
    va_list ap;

    if (now - c->log_refilled_ms >= per) {
        int64_t add = (now - c->log_refilled_ms) / per;
        c->log_tokens = add >= RP_APPCHAN_LOG_BURST - c->log_tokens ? RP_APPCHAN_LOG_BURST
                                                                    : c->log_tokens + (uint32_t)add;
        c->log_refilled_ms += add * per;
    }
    if (c->log_tokens == 0) {
        c->log_suppressed++;
        return;
    }
    c->log_tokens--;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (c->log_suppressed > 0)
        rp_log(level, "%s: %s (and %u more lines not logged)", c->component, line,
               c->log_suppressed);
    else
        rp_log(level, "%s: %s", c->component, line);
    c->log_suppressed = 0;
}

/* A security event, at most RP_APPCHAN_EVENTS_MAX per channel: a refused app asking in a loop
 * must not push everyone else's events out of the bounded log. */
static void record(rp_appchan_t *c, const rp_appchan_root_t *root, rp_event_kind_t kind,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void record(rp_appchan_t *c, const rp_appchan_root_t *root, rp_event_kind_t kind,
                   const char *fmt, ...)
{
    char reason[RP_EVENT_REASON_MAX + 1];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    say(c, RP_LOG_WARN, "%s", reason);
    if (c->events >= RP_APPCHAN_EVENTS_MAX) {
        c->events_suppressed++;
        return;
    }
    c->events++;
    root->record(root->ctx, c, kind, reason);
}

static void refuse(rp_mon_reply_t *p, rp_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(rp_mon_reply_t *p, rp_err_t err, const char *fmt, ...)
{
    va_list ap;

    p->status = (uint16_t)(err != RP_OK ? err : RP_ERR_IO);
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof(p->message), fmt, ap);
    va_end(ap);
}

/* ---- the requests ---- */

static bool may_use_identity(rp_appchan_t *c, const rp_appchan_root_t *root, rp_mon_reply_t *p)
{
    if (c->manifest->device_authentication)
        return true;
    refuse(p, RP_ERR_DENIED, "%s: the app's manifest has no DeviceAuthentication",
           rp_mon_type_name(w.q.type));
    record(c, root, RP_EVENT_IDENTITY, "%s refused: no DeviceAuthentication",
           rp_mon_type_name(w.q.type));
    return false;
}

/* Whether c may ask what w.q asks now, by its rate (what: "signing", "identity"); a refusal is
 * answered, and recorded once per burst of refusals. */
static bool within(rp_appchan_t *c, const rp_appchan_root_t *root, rp_mon_reply_t *p,
                   rp_appchan_rate_t *rate, const char *what)
{
    if (!rp_gate_bucket_take(&rate->bucket, rate->burst, rate->per_minute)) {
        rate->refused++;
        refuse(p, RP_ERR_DENIED, "over the %s rate (%u at once, %u a minute): try later", what,
               rate->burst, rate->per_minute);
        if (!rate->limited) /* once per burst of refusals */
            record(c, root, RP_EVENT_IDENTITY,
                   "%s refused: over the %s rate (%u at once, %u a minute)",
                   rp_mon_type_name(w.q.type), what, rate->burst, rate->per_minute);
        rate->limited = true;
        return false;
    }
    if (rate->limited)
        say(c, RP_LOG_INFO, "%s again (%llu refused by the rate so far)",
            rp_mon_type_name(w.q.type), (unsigned long long)rate->refused);
    rate->limited = false;
    return true;
}

/* APP_IDENTITY, APP_SIGN_TLS13: whether the root hook answers later (rp_appchan_answer). */
static bool do_identity(rp_appchan_t *c, const rp_appchan_root_t *root, rp_mon_reply_t *p)
{
    bool sign = w.q.type == RP_MON_APP_SIGN_TLS13;

    return may_use_identity(c, root, p) &&
           within(c, root, p, sign ? &c->sign : &c->identity, sign ? "signing" : "identity") &&
           root->ask(root->ctx, c, &w.q, p);
}

/* Where m lists component in its AllowedApplicationConnections; -1: it does not. */
static int lists(const rp_manifest_t *m, const char *component)
{
    for (size_t i = 0; i < m->napp_connections && i < RP_MANIFEST_APP_CONNECTIONS_MAX; i++)
        if (strcmp(m->app_connections[i], component) == 0)
            return (int)i;
    return -1;
}

/* Send an unasked APP_INCOMING to the peer, with its end (from: the caller's place in the peer's
 * list). */
static rp_err_t tell_peer(rp_appchan_t *peer, int from, const char *caller, int fd)
{
    rp_mon_reply_t in;
    uint8_t pkt[RP_MON_HEADER_LEN + 2 + 2 + RP_COMPONENT_NAME_MAX];
    size_t len;
    rp_err_t err;

    memset(&in, 0, sizeof(in));
    in.type = RP_MON_APP_INCOMING;
    snprintf(in.u.app_incoming.component, sizeof(in.u.app_incoming.component), "%s", caller);
    err = rp_mon_reply_encode(&in, pkt, sizeof(pkt), &len);
    if (err == RP_OK)
        err = rp_mon_send(peer->fd, pkt, len, fd);
    if (err == RP_OK)
        peer->fds_from[from]++;
    return err;
}

/* Whether the descriptors in flight let c (the caller) have a socket to peer (from: c's place in
 * peer's list, to: peer's in c's): c within its replies and its app's total, peer within what c
 * may give it and its app's total. A refusal is answered RP_ERR_BUSY and recorded (a full peer
 * once until a call to it goes through). */
static bool may_connect(rp_appchan_t *c, const rp_appchan_root_t *root, rp_appchan_t *peer,
                        int from, int to, rp_mon_reply_t *p)
{
    unsigned mine = in_flight(c), theirs = in_flight(peer);
    const char *name = peer->component;

    if (c->fds_replies >= RP_APPCHAN_FDS_REPLIES_MAX) {
        refuse(p, RP_ERR_BUSY,
               "this app has not read %u channels it was given: read its replies, then ask again",
               c->fds_replies);
        record(c, root, RP_EVENT_APP_CONNECTION,
               "%s -> %s refused: %s has not read %u channels it was given", c->component, name,
               c->component, c->fds_replies);
        return false;
    }
    if (mine >= RP_APPCHAN_FDS_APP_MAX) {
        refuse(p, RP_ERR_BUSY, "this app has not read %u sockets (some on channels since closed)",
               mine);
        record(c, root, RP_EVENT_APP_CONNECTION,
               "%s -> %s refused: %s has not read %u sockets (some on channels since closed)",
               c->component, name, c->component, mine);
        return false;
    }
    if (peer->fds_from[from] >= RP_APPCHAN_FDS_PAIR_MAX || theirs >= RP_APPCHAN_FDS_APP_MAX) {
        bool pair = peer->fds_from[from] >= RP_APPCHAN_FDS_PAIR_MAX;
        refuse(p, RP_ERR_BUSY, "%s has not taken %u sockets%s yet: try later", name,
               pair ? peer->fds_from[from] : theirs, pair ? " from this app" : "");
        if ((c->busy_said & (1u << to)) == 0)
            record(c, root, RP_EVENT_APP_CONNECTION,
                   "%s -> %s refused: %s has not taken %u sockets%s%s", c->component, name, name,
                   pair ? peer->fds_from[from] : theirs, pair ? " from " : "",
                   pair ? c->component : "");
        c->busy_said |= 1u << to;
        return false;
    }
    c->busy_said &= ~(1u << to);
    return true;
}

/* OUT: *give, the caller's end of a new socket pair (or -1). */
static void do_connect(rp_appchan_t *c, const rp_appchan_root_t *root,
                       const rp_appchan_peers_t *peers, rp_mon_reply_t *p, int *give)
{
    const char *name = w.q.u.app_connect.component;
    const rp_manifest_t *pm = NULL;
    rp_appchan_t *peer = NULL;
    int sv[2], from = -1, to = lists(c->manifest, name);
    rp_err_t err;

    if (peers != NULL && peers->find != NULL)
        peers->find(peers->ctx, name, &peer, &pm);
    if (pm != NULL)
        from = lists(pm, c->component);
    if (strcmp(name, c->component) == 0) {
        refuse(p, RP_ERR_DENIED, "an app does not connect to itself");
        record(c, root, RP_EVENT_APP_CONNECTION, "%s -> %s refused: itself", c->component, name);
    } else if (to < 0) {
        refuse(p, RP_ERR_DENIED, "%s is not in this app's AllowedApplicationConnections", name);
        record(c, root, RP_EVENT_APP_CONNECTION, "%s -> %s refused: %s's manifest does not list %s",
               c->component, name, c->component, name);
    } else if (pm == NULL) {
        refuse(p, RP_ERR_DENIED, "there is no app %s on this device", name);
        record(c, root, RP_EVENT_APP_CONNECTION, "%s -> %s refused: no such app", c->component,
               name);
    } else if (from < 0) {
        refuse(p, RP_ERR_DENIED, "%s does not list this app in its AllowedApplicationConnections",
               name);
        record(c, root, RP_EVENT_APP_CONNECTION, "%s -> %s refused: %s's manifest does not list %s",
               c->component, name, name, c->component);
    } else if (peer == NULL || peer->fd < 0) {
        refuse(p, RP_ERR_NOT_FOUND, "%s is not running", name);
        record(c, root, RP_EVENT_APP_CONNECTION, "%s -> %s refused: %s is not running",
               c->component, name, name);
    } else if (!may_connect(c, root, peer, from, to, p)) {
        return;
    } else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        refuse(p, RP_ERR_IO, "cannot make a socket pair: %s", strerror(errno));
    } else {
        err = tell_peer(peer, from, c->component, sv[1]);
        close(sv[1]);
        if (err != RP_OK) {
            close(sv[0]);
            refuse(p, RP_ERR_IO, "%s is not reading its channel", name);
            say(c, RP_LOG_WARN, "a channel to %s refused: its channel takes nothing (%s)", name,
                rp_strerror(err));
            return;
        }
        say(c, RP_LOG_INFO, "a channel to %s made", name);
        *give = sv[0];
    }
}

/* ---- one packet ---- */

static rp_err_t send_reply(rp_appchan_t *c, int fd)
{
    size_t len;
    rp_err_t err = rp_mon_reply_encode(&w.p, w.buf, sizeof(w.buf), &len);

    if (err == RP_OK)
        err = rp_mon_send(c->fd, w.buf, len, fd);
    return err;
}

/* Send w.p to c's app, with give (closed here; -1: none). One that cannot be sent closes the
 * channel: RP_ERR_NOT_FOUND. */
static rp_err_t reply(rp_appchan_t *c, int give)
{
    rp_err_t err = send_reply(c, give);

    if (give >= 0)
        close(give);
    if (err == RP_OK && give >= 0)
        c->fds_replies++;
    if (err != RP_OK) {
        bool gone = hung_up(c);
        if (!gone)
            rp_log_warn("%s: its %s reply could not be sent (%s): the channel is closed",
                        c->component, rp_mon_type_name(w.p.type), rp_strerror(err));
        rp_appchan_close(c);
        return gone ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    }
    return RP_OK;
}

rp_err_t rp_appchan_answer(rp_appchan_t *c, const rp_mon_reply_t *p)
{
    if (c->fd < 0)
        return RP_ERR_NOT_FOUND;
    w.p = *p;
    return reply(c, -1);
}

rp_err_t rp_appchan_serve(rp_appchan_t *c, const rp_appchan_root_t *root,
                          const rp_appchan_peers_t *peers)
{
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    size_t len = 0;
    int fd = -1, give = -1;
    rp_err_t err;

    if (c->fd < 0)
        return RP_ERR_NOT_FOUND;
    if (poll(&pf, 1, 0) <= 0)
        return RP_OK; /* nothing waiting: the monitor end never blocks */
    err = rp_mon_recv(c->fd, w.buf, sizeof(w.buf), &len, &fd);
    if ((err == RP_ERR_NOT_FOUND || err == RP_ERR_IO) && hung_up(c)) {
        rp_appchan_close(c); /* the app is gone */
        return RP_ERR_NOT_FOUND;
    }
    if (err == RP_ERR_NOT_FOUND)
        err = RP_ERR_MALFORMED; /* an empty packet, from an app still there */
    memset(&w.p, 0, sizeof(w.p));
    memset(&w.q, 0, sizeof(w.q)); /* (no id, no type: a packet with no header) */
    if (err == RP_OK)
        err = rp_mon_request_decode(w.buf, len, &w.q);
    else if (rp_mon_request_decode(w.buf, len < RP_MON_HEADER_LEN ? len : RP_MON_HEADER_LEN,
                                   &w.q) != RP_OK)
        rp_log_debug("%s: refusing request %u", c->component, w.q.id); /* the header: its id */
    if (fd >= 0) {
        close(fd);
        if (err == RP_OK)
            err = RP_ERR_MALFORMED; /* no app request carries a descriptor */
    }
    w.p.type = rp_mon_type_known(w.q.type) ? w.q.type : RP_MON_APP_IDENTITY;
    w.p.id = w.q.id;
    if (err != RP_OK) {
        refuse(&w.p, err, "request refused: %s; the channel is closed", rp_strerror(err));
        rp_log_warn("%s: a request on its channel was refused (%s): the channel is closed",
                    c->component, rp_strerror(err));
        (void)send_reply(c, -1);
        rp_appchan_close(c);
        return err;
    }
    switch (rp_mon_type_channel(w.q.type) == RP_MON_CHANNEL_APP ? w.q.type : 0) {
    case RP_MON_APP_IDENTITY:
    case RP_MON_APP_SIGN_TLS13:
        if (do_identity(c, root, &w.p))
            return RP_OK; /* answered later */
        break;
    case RP_MON_APP_CONNECT: do_connect(c, root, peers, &w.p, &give); break;
    default:
        refuse(&w.p, RP_ERR_UNSUPPORTED, "%s is not asked on an app's channel",
               rp_mon_type_name(w.q.type));
        say(c, RP_LOG_WARN, "refused %s on its channel", rp_mon_type_name(w.q.type));
        break;
    }
    return reply(c, give);
}
