/*
 * The monitor's side of the app broker's gate (appgate.h), and the device certificate chain it
 * hands apps.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "appchan.h" /* RP_APPCHAN_EVENTS_MAX */
#include "appgate.h"
#include "events.h"
#include "rampart/log.h"
#include "serve.h"
#include "slots.h"

_Static_assert(RP_GATE_APPS == RP_COMPONENTS_MAX, "a gate slot per component");

/* ---- the certificate chain ---- */

/* Whether text[0..len) is one or more PEM certificates and nothing else: marker lines, base64
 * lines, blank lines. Not a parse of the certificates (the app's TLS library does that): only a
 * fence, so that whatever the agent's user put in its directory, an app gets certificates. */
static bool pem_certificates_only(const uint8_t *text, size_t len)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
    size_t pos = 0, certs = 0;
    bool inside = false;

    while (pos < len) {
        size_t eol = pos, n;
        while (eol < len && text[eol] != '\n')
            eol++;
        n = eol > pos && text[eol - 1] == '\r' ? eol - pos - 1 : eol - pos;
        if (n == sizeof(begin) - 1 && memcmp(text + pos, begin, n) == 0) {
            if (inside)
                return false;
            inside = true;
        } else if (n == sizeof(end) - 1 && memcmp(text + pos, end, n) == 0) {
            if (!inside)
                return false;
            inside = false;
            certs++;
        } else {
            for (size_t i = pos; i < pos + n; i++) {
                uint8_t ch = text[i];
                bool b64 = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                           (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' || ch == '=';
                if (!b64 || !inside)
                    return false;
            }
        }
        pos = eol + 1;
    }
    return !inside && certs > 0;
}

/* Append dir/name to out; RP_ERR_NOT_FOUND when it does not exist. */
static rp_err_t append_file(int dir, const char *name, uint8_t *out, size_t cap, size_t *len)
{
    struct stat st;
    ssize_t n;
    rp_err_t err = RP_OK;
    /* O_NONBLOCK: a FIFO put there opens without waiting (and is refused below). */
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

    if (fd < 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : errno == ELOOP ? RP_ERR_MALFORMED : RP_ERR_IO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
        err = RP_ERR_MALFORMED;
    else if ((uint64_t)st.st_size > cap - *len)
        err = RP_ERR_TOO_LARGE;
    while (err == RP_OK && (n = read(fd, out + *len, cap - *len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = RP_ERR_IO;
        else
            *len += (size_t)n;
        if (err == RP_OK && *len == cap)
            err = RP_ERR_TOO_LARGE; /* it grew while read */
    }
    close(fd);
    if (err == RP_OK && *len > 0 && out[*len - 1] != '\n') {
        if (*len == cap)
            err = RP_ERR_TOO_LARGE;
        else
            out[(*len)++] = '\n';
    }
    return err;
}

/* dir's (a descriptor) device.crt then ca-chain.pem. */
static rp_err_t read_pair(int dir, uint8_t *out, size_t cap, size_t *len)
{
    rp_err_t err;

    *len = 0;
    err = append_file(dir, "device.crt", out, cap, len);
    if (err == RP_OK)
        err = append_file(dir, "ca-chain.pem", out, cap, len);
    return err;
}

rp_err_t rp_appchan_read_chain(const char *state_dir, uint8_t *out, size_t cap, size_t *len)
{
    int sdir, adir;
    rp_err_t err = RP_ERR_NOT_FOUND;

    *len = 0;
    sdir = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sdir < 0)
        return RP_ERR_IO;
    /* S/agent/ is the agent's; S/ (before the agent moved there) is the monitor's own. */
    adir = openat(sdir, "agent", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (adir >= 0) {
        err = read_pair(adir, out, cap, len);
        close(adir);
    } else if (errno != ENOENT) {
        err = RP_ERR_MALFORMED; /* a link where S/agent/ should be */
    }
    if (err == RP_ERR_NOT_FOUND)
        err = read_pair(sdir, out, cap, len);
    close(sdir);
    if (err == RP_OK && !pem_certificates_only(out, *len))
        err = RP_ERR_MALFORMED;
    if (err != RP_OK)
        *len = 0;
    return err;
}

/* ---- the gate ---- */

static struct {
    uint8_t in[RP_GATE_REQ_LEN + 1]; /* one more: a longer packet is seen, not cut to fit */
    uint8_t out[RP_GATE_ANSWER_MAX];
    rp_mon_request_t q;
    rp_mon_reply_t p;
} g;

static void refuse(rp_err_t err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(rp_err_t err, const char *fmt, ...)
{
    va_list ap;

    g.p.status = (uint16_t)(err != RP_OK ? err : RP_ERR_IO);
    va_start(ap, fmt);
    vsnprintf(g.p.message, sizeof(g.p.message), fmt, ap);
    va_end(ap);
}

static void record(rp_appgate_app_t *e, const char *state_dir, rp_event_kind_t kind,
                   const char *reason)
{
    if (e->events >= RP_APPCHAN_EVENTS_MAX) {
        e->events_suppressed++;
        return;
    }
    e->events++;
    if (rp_event_record(state_dir, kind, e->component, reason) != RP_OK)
        rp_log_error("%s: the event could not be recorded: %s", e->component, reason);
}

static void identity(rp_agent_t *a)
{
    rp_err_t err = rp_appchan_read_chain(a->state_dir, g.p.u.app_identity.chain,
                                         sizeof(g.p.u.app_identity.chain), &g.p.u.app_identity.len);

    if (err == RP_ERR_NOT_FOUND)
        refuse(err, "the device has no certificate yet (it has not attested)");
    else if (err == RP_ERR_TOO_LARGE)
        refuse(err, "the device's certificate chain is larger than %d bytes", RP_MON_CHAIN_MAX);
    else if (err == RP_ERR_MALFORMED)
        refuse(err, "the device's certificate files are not PEM certificates");
    else if (err != RP_OK)
        refuse(err, "cannot read the device's certificate: %s", rp_strerror(err));
}

/* The broker holds the app to its rates first; past one here (b: the same bucket, so an app within
 * its rate never meets this one), it is not the broker this monitor runs: refused (in g.p), an
 * event. what: the rate's name. */
static bool within(rp_agent_t *a, rp_appgate_app_t *e, rp_gate_bucket_t *b, unsigned burst,
                   unsigned per_minute, const char *what)
{
    char reason[RP_EVENT_REASON_MAX + 1];

    if (rp_gate_bucket_take(b, burst, per_minute))
        return true;
    refuse(RP_ERR_DENIED, "over the %s rate (%u at once, %u a minute): try later", what, burst,
           per_minute);
    if (e->events < RP_APPCHAN_EVENTS_MAX) /* (bounded as its events are) */
        rp_log_warn("%s: the app broker asked over the app's %s rate", e->component, what);
    snprintf(reason, sizeof(reason), "%s refused: over the %s rate (asked by the broker)",
             rp_mon_type_name(g.p.type), what);
    record(e, a->state_dir, RP_EVENT_IDENTITY, reason);
    return false;
}

/* IDENTITY or SIGN r for e: the answer in g.p. */
static void answer(rp_agent_t *a, rp_appgate_app_t *e, const rp_gate_req_t *r)
{
    char reason[RP_EVENT_REASON_MAX + 1];
    rp_err_t err;

    memset(&g.p, 0, sizeof(g.p));
    g.p.type = r->op == RP_GATE_IDENTITY ? RP_MON_APP_IDENTITY : RP_MON_APP_SIGN_TLS13;
    if (e == NULL) {
        refuse(RP_ERR_NOT_FOUND, "no such app");
        return;
    }
    if (!e->m->device_authentication) {
        /* The broker refuses this itself: asked anyway, it is not the broker this monitor runs. */
        refuse(RP_ERR_DENIED, "%s: the app's manifest has no DeviceAuthentication",
               rp_mon_type_name(g.p.type));
        snprintf(reason, sizeof(reason),
                 "%s refused: no DeviceAuthentication (asked by the broker)",
                 rp_mon_type_name(g.p.type));
        if (e->events < RP_APPCHAN_EVENTS_MAX) /* (bounded as its events are) */
            rp_log_warn("%s: %s", e->component, reason);
        record(e, a->state_dir, RP_EVENT_IDENTITY, reason);
        return;
    }
    if (r->op == RP_GATE_IDENTITY) {
        /* (its rate kept here too: a broker not this monitor's would have it read the chain's
         * files without bound) */
        if (within(a, e, &e->identity, RP_APPCHAN_IDENTITY_BURST, RP_APPCHAN_IDENTITY_PER_MINUTE,
                   "certificate chain"))
            identity(a);
        return;
    }
    if (!within(a, e, &e->sign, RP_APPCHAN_SIGN_BURST, RP_APPCHAN_SIGN_PER_MINUTE, "signing"))
        return;
    g.q.type = RP_MON_APP_SIGN_TLS13;
    g.q.u.sign_tls13.side = r->side;
    g.q.u.sign_tls13.hash_len = r->hash_len;
    memcpy(g.q.u.sign_tls13.hash, r->hash, r->hash_len);
    err = rp_monitor_sign_tls13(a, &g.q, &g.p);
    if (err != RP_OK)
        refuse(err, "app-sign-tls13: %s", rp_strerror(err));
}

unsigned rp_appgate_stall_seconds = RP_APPGATE_STALL_SECONDS;
static int64_t full_since, seen; /* (rp_gate_now_ms + 1: 0 while the gate has room; looked at) */

short rp_appgate_events(void)
{
    return full_since != 0 ? POLLOUT : POLLIN;
}

/* Whether fd has room for an answer: a send succeeds while the socket's queue is below its room,
 * and poll says POLLOUT only below a quarter of it (review r7: L5). A gate with none past the bound
 * (counted from the first check that found none, in checks at most a second apart: one after a
 * longer gap, as in the monitor after an install child had the gate, counts anew) is taken as
 * lost: RP_ERR_NOT_FOUND. Hung up or failing: "room" (its read says what it is). */
static rp_err_t room(int fd)
{
    struct pollfd w = {fd, POLLOUT, 0};
    int64_t now = rp_gate_now_ms() + 1;
    char what[64];

    if (poll(&w, 1, 0) != 0)
        full_since = 0;
    else if (full_since == 0 || now - seen > 2000) /* (or not looked at: an install child's) */
        full_since = now;
    seen = now;
    if (full_since == 0 || now - full_since < (int64_t)rp_appgate_stall_seconds * 1000)
        return full_since == 0 ? RP_OK : RP_ERR_BUSY;
    snprintf(what, sizeof(what), "left its answers unread for %u s", rp_appgate_stall_seconds);
    errno = EAGAIN;
    rp_appgate_lost(fd, what);
    return RP_ERR_NOT_FOUND;
}

rp_err_t rp_appgate_serve(int fd, rp_agent_t *a, rp_appgate_app_t *const apps[RP_GATE_SLOTS],
                          int *closed)
{
    rp_gate_req_t r;
    rp_appgate_app_t *e;
    size_t len = 0, n = 0;
    int got = -1;
    rp_err_t err = room(fd);

    *closed = -1;
    if (err != RP_OK) /* (none: nothing read, the broker's requests wait in its socket) */
        return err == RP_ERR_BUSY ? RP_OK : err;
    err = rp_mon_recv(fd, g.in, sizeof(g.in), &len, &got);
    if (err == RP_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
        return RP_OK; /* (the gate is non-blocking: nothing there after all) */
    if (err == RP_ERR_NOT_FOUND || err == RP_ERR_IO)
        return RP_ERR_NOT_FOUND;
    if (got >= 0) {
        close(got);
        err = RP_ERR_MALFORMED; /* nothing the broker sends carries a descriptor */
    }
    if (err == RP_OK)
        err = rp_gate_req_decode(g.in, len, &r);
    if (err != RP_OK) {
        rp_log_warn("the app broker sent what does not decode (%s): dropped", rp_strerror(err));
        return RP_OK;
    }
    e = apps[r.slot] != NULL && apps[r.slot]->used ? apps[r.slot] : NULL;
    if (e != NULL && !rp_gate_current(&r, e->since, e->gen)) {
        /* For an earlier channel of the slot (read late): not this one's to act on. The broker's
         * CLOSED of this app's channel that the monitor made again already (it saw the hang-up
         * first: the broker shuts it) is expected, not said (review r7: L7). */
        if (r.op == RP_GATE_CLOSED && r.gen >= e->since)
            rp_log_debug("%s: CLOSED of a channel made again already", e->component);
        else if (e->stale++ == 0)
            rp_log_warn("%s: the app broker's message for an earlier channel of its slot was "
                        "dropped",
                        e->component);
        return RP_OK;
    }
    if (r.op == RP_GATE_EVENT) {
        if (e != NULL)
            record(e, a->state_dir, (rp_event_kind_t)r.event_kind, r.reason);
        else { /* (a trial's, read after its verdict: its install child reads what came before);
                * one warning a minute at most, with the count since (review r7: L2) */
            static time_t last;
            static unsigned long unsaid;
            time_t now = time(NULL);
            if (last != 0 && now - last < 60) {
                unsaid++;
                return RP_OK;
            }
            rp_log_warn("the app broker's event for slot %u, which has no app now, was not "
                        "recorded: %s (%lu more since the last such warning)",
                        r.slot, r.reason, unsaid);
            last = now;
            unsaid = 0;
        }
        return RP_OK;
    }
    if (r.op == RP_GATE_CLOSED) {
        *closed = e != NULL ? r.slot : -1;
        return RP_OK;
    }
    answer(a, e, &r);
    if (rp_gate_answer_encode(r.slot, r.seq, &g.p, g.out, sizeof(g.out), &n) != RP_OK) {
        rp_log_warn("%s: an answer to the app broker could not be encoded",
                    e != NULL ? e->component : "?");
        return RP_OK;
    }
    if (rp_mon_send(fd, g.out, n, -1) != RP_OK) {
        rp_appgate_lost(fd, "did not take an answer");
        return RP_ERR_NOT_FOUND;
    }
    return RP_OK;
}

void rp_appgate_lost(int fd, const char *what)
{
    int e = errno; /* the send's */

    full_since = 0; /* (the next broker's gate) */
    if (shutdown(fd, SHUT_RDWR) != 0)
        rp_log_error("the gate cannot be shut: %s", strerror(errno));
    if (e == EPIPE)
        return; /* shut already, or the broker is gone: its read says so */
    rp_log_error("the app broker %s (%s): it is not reading its gate, and is taken as lost", what,
                 e == EAGAIN || e == EWOULDBLOCK ? "its socket is full" : strerror(e));
}

bool rp_appgate_tell(int fd, uint8_t slot, const rp_appgate_app_t *e, bool add)
{
    uint8_t out[RP_GATE_APP_LEN];

    if (fd < 0)
        return true;
    if (rp_gate_app_encode(add ? RP_GATE_ADD : RP_GATE_DROP, slot, e->gen, e->component, e->m, out,
                           sizeof(out)) != RP_OK) {
        rp_log_warn("%s: the app broker's ADD or DROP could not be encoded", e->component);
        return true;
    }
    if (rp_mon_send(fd, out, sizeof(out), add ? e->fd : -1) != RP_OK) {
        /* Its table would be wrong from now on: the gate is shut, the broker taken as lost. */
        rp_appgate_lost(fd, add ? "did not take an ADD" : "did not take a DROP");
        return false;
    }
    return true;
}

void rp_appgate_reset(rp_appgate_app_t *e)
{
    /* The monotonic clock's nanoseconds, or one more than the last: only grows, also across the
     * install child's fork (a trial's slot never has an earlier trial's generation). */
    static uint64_t last;
    struct timespec ts;
    uint64_t now;

    if (e->events_suppressed > 0)
        rp_log_warn("%s: %u more refusals on its channel were not recorded as events", e->component,
                    e->events_suppressed);
    if (e->stale > 1)
        rp_log_warn("%s: %u messages of the app broker for earlier channels were dropped",
                    e->component, e->stale);
    e->events = e->events_suppressed = e->stale = 0;
    rp_appgate_rate_reset(e);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    last = e->gen = now > last ? now : last + 1;
    if (e->since == 0)
        e->since = e->gen;
}

void rp_appgate_rate_reset(rp_appgate_app_t *e)
{
    rp_gate_bucket_fill(&e->sign, RP_APPCHAN_SIGN_BURST);
    rp_gate_bucket_fill(&e->identity, RP_APPCHAN_IDENTITY_BURST);
}
