/*
 * An app's channel to the monitor: the side that reads the requests an app makes (proto.h types
 * 11-14) — the device certificate chain, TLS 1.3 signatures with the identity key, and sockets to
 * other apps. docs/compartments.md ("Device identity for apps", "App-to-app", "The app broker")
 * explains them. It runs in rampart-broker (device/broker/broker.c), unprivileged: what needs the
 * root of trust (the chain, a signature) it asks through its root hooks, which the broker sends
 * over its gate to the monitor (gate.h, appgate.h); it is not linked into the monitor.
 *
 * Each app the monitor starts gets one channel: a SOCK_SEQPACKET socketpair, its end at descriptor
 * 4 in the app (compartment.h: rp_compartment_spec_t.channel_fd). The monitor knows which app asks
 * by which channel the packet came in on, never by anything the packet says, and answers by that
 * app's manifest:
 *   APP_IDENTITY, APP_SIGN_TLS13  only with DeviceAuthentication; signatures at most
 *                                 RP_APPCHAN_SIGN_BURST at once, then RP_APPCHAN_SIGN_PER_MINUTE
 *                                 (and chains at RP_APPCHAN_IDENTITY_*)
 *   APP_CONNECT(peer)             only when both manifests list each other in
 *                                 AllowedApplicationConnections and the peer runs: a new socketpair
 *                                 (SOCK_STREAM), one end in the reply, the other to the peer as an
 *                                 unasked APP_INCOMING naming the caller; refused (RP_ERR_BUSY)
 *                                 past the bounds of descriptors in flight below
 * Every refusal is answered (RP_ERR_DENIED and why) and recorded as a security event ("identity",
 * "app_connection", through the root hooks: the monitor records it); an agent's request type on a
 * channel is refused (rp_mon_type_channel()). A packet that does not decode, an empty one, or one
 * that comes with a descriptor closes that channel alone; so does a reply the channel does not
 * take.
 *
 * Descriptors in flight (sent in a message, not yet read) count against the sending user's
 * RLIMIT_NOFILE in the kernel, for every channel at once, for as long as anyone holds the end they
 * wait in (a channel closed here may have been handed to another app). So each app is sent at most
 * RP_APPCHAN_FDS_APP_MAX descriptors it has not read, over all its channels, open and closed:
 * replies with a socket (its own APP_CONNECTs) at most RP_APPCHAN_FDS_REPLIES_MAX, sockets from one
 * caller (APP_INCOMING) at most RP_APPCHAN_FDS_PAIR_MAX, so that one caller cannot take a peer's
 * whole budget, and what a closed channel's end still holds (rp_appchan_held_t) counted until it is
 * read. SIOCOUTQ on the monitor's end says when the app has read everything on it.
 *
 * Single-threaded, like the monitor: the caller polls rp_appchan_fd() and calls
 * rp_appchan_serve() when it is readable (not while a request of the channel awaits its answer
 * from the root hooks: rp_appchan_answer()).
 */
#ifndef RAMPART_MONITOR_APPCHAN_H
#define RAMPART_MONITOR_APPCHAN_H

#include <stdbool.h>
#include <stdint.h>

#include "events.h"
#include "gate.h"
#include "proto.h"
#include "rampart/component.h"
#include "rampart/error.h"
#include "rampart/manifest.h"

#define RP_APPCHAN_SIGN_BURST 10      /* signatures an app may ask for at once */
#define RP_APPCHAN_SIGN_PER_MINUTE 60 /* and then, on average */
#define RP_APPCHAN_IDENTITY_BURST 10  /* certificate chains an app may ask for at once */
#define RP_APPCHAN_IDENTITY_PER_MINUTE 60
#define RP_APPCHAN_EVENTS_MAX 20     /* events one channel may record; the rest are counted */
#define RP_APPCHAN_LOG_BURST 20      /* log lines one channel may cause at once */
#define RP_APPCHAN_LOG_PER_MINUTE 10 /* and then, on average; the rest are counted */
#define RP_APPCHAN_FDS_REPLIES_MAX 4 /* replies with a socket an app has not read */
#define RP_APPCHAN_FDS_PAIR_MAX 2    /* sockets from one caller a peer has not taken */
/* Descriptors in flight to one app, over all its channels: its replies, and its callers' sockets
 * (a peer takes calls only from the apps its manifest lists). */
#define RP_APPCHAN_FDS_APP_MAX                                                                     \
    (RP_APPCHAN_FDS_REPLIES_MAX + RP_APPCHAN_FDS_PAIR_MAX * RP_MANIFEST_APP_CONNECTIONS_MAX)

/* What an app still has in flight on channels closed here: each closed channel's end whose app had
 * not read the descriptors sent on it is kept (shut down: the app sees the hang-up; never polled)
 * with their count, until SIOCOUTQ on it is 0, and the count is the app's (rp_appchan_t.held).
 * Kept by the caller per app slot, across the slot's channels (its next app's too: what is in
 * flight is in flight). Each kept end holds at least one, so RP_APPCHAN_FDS_APP_MAX ends at most.
 */
typedef struct rp_appchan_held_end {
    int fd;
    unsigned fds; /* sent on it since it was last seen with nothing unread (at least 1) */
    /* Taken back from a broker before (its store: its word alone): closed at this time
     * (rp_gate_now_ms), whatever it still holds; 0: kept here, counted until read. */
    int64_t until_ms;
} rp_appchan_held_end_t;
typedef struct rp_appchan_held {
    rp_appchan_held_end_t end[RP_APPCHAN_FDS_APP_MAX];
    unsigned n;
} rp_appchan_held_t;

/* A rate of requests of one type on a channel: a token bucket (gate.h). burst and per_minute may
 * be changed after open (tests). */
typedef struct rp_appchan_rate {
    uint32_t burst, per_minute;
    rp_gate_bucket_t bucket;
    bool limited;     /* in a burst of refusals (its first was recorded) */
    uint64_t refused; /* refused by the rate, in all */
} rp_appchan_rate_t;

typedef struct rp_appchan {
    int fd; /* the monitor's end (non-blocking); -1 once closed */
    char component[RP_COMPONENT_NAME_MAX + 1];
    const rp_manifest_t *manifest; /* the app's: the caller keeps it valid while the channel is */
    rp_appchan_rate_t sign, identity; /* APP_SIGN_TLS13's, APP_IDENTITY's */
    unsigned events, events_suppressed;
    /* The monitor's log: an app asking in a loop must not flood it (and push the monitor's own
     * lines out of a rate-limited journal). A token bucket of lines, refilled per minute. */
    uint32_t log_tokens;
    int64_t log_refilled_ms;
    unsigned log_suppressed; /* lines not logged since the last one that was */
    /* Descriptors sent on it since it was last seen with nothing unread (an upper bound of those
     * in flight to its app on it): replies, and APP_INCOMINGs by the caller's place in its
     * manifest's AllowedApplicationConnections. */
    unsigned fds_replies, fds_from[RP_MANIFEST_APP_CONNECTIONS_MAX];
    uint32_t busy_said;      /* bit i: a refusal for its i-th peer's full budget recorded (until one
                              * goes through) */
    rp_appchan_held_t *held; /* its app's closed channels (the caller's, per app) */
} rp_appchan_t;

/* What the root of trust's holder does for a channel (the broker: its gate to the monitor). */
typedef struct rp_appchan_root {
    /* APP_IDENTITY or APP_SIGN_TLS13 of c's app (q), once DeviceAuthentication and the rate
     * were checked here: fill p's body, or its status and message; or return true, and answer it
     * later with rp_appchan_answer() (c is not served meanwhile). */
    bool (*ask)(void *ctx, rp_appchan_t *c, const rp_mon_request_t *q, rp_mon_reply_t *p);
    /* A refusal on c, to record as a security event of kind (at most RP_APPCHAN_EVENTS_MAX). */
    void (*record)(void *ctx, rp_appchan_t *c, rp_event_kind_t kind, const char *reason);
    void *ctx;
} rp_appchan_root_t;

/* How the channel finds another app: the broker's app table. For component, OUT: *chan, its
 * channel (NULL when it does not run or has none) and *manifest (NULL: no such app). */
typedef struct rp_appchan_peers {
    void (*find)(void *ctx, const char *component, rp_appchan_t **chan,
                 const rp_manifest_t **manifest);
    void *ctx;
} rp_appchan_peers_t;

/* An empty list of held ends (before the slot's first channel). */
void rp_appchan_held_init(rp_appchan_held_t *h);

/* Descriptors still in flight on h's ends; an end whose app has read everything, or taken back
 * from a broker before and past its until_ms, is closed here and leaves the list. */
unsigned rp_appchan_held_count(rp_appchan_held_t *h);

/* How many times an end was kept, closed or moved, by any of the calls here: whoever writes the
 * lists down (the broker's store) writes them again when it changed. */
unsigned rp_appchan_held_changes(void);

/* Close every end h keeps (the slot is no one's; tests). */
void rp_appchan_held_close(rp_appchan_held_t *h);

/* The kept ends of an app whose slot goes to another component (review r7, L4): they count against
 * no app any more (the next one in the slot did not send them), but still against the broker's
 * budget until read, so they move whole to a broker-wide reserve of RP_APPCHAN_ORPHAN_LISTS lists
 * (at most RP_APPCHAN_ORPHAN_LISTS x RP_APPCHAN_FDS_APP_MAX descriptors), where they are still
 * closed once read (rp_appchan_held_count on each list). A full reserve takes nothing: the ends
 * stay on the slot, counted against its next app, so that the bound holds (closing an end releases
 * nothing in flight: what it holds waits in the app's end until every holder of that end reads it
 * or closes it). */
#define RP_APPCHAN_ORPHAN_LISTS 8

/* Move what h still holds to a free list of reserve (each list's read ends are closed first).
 * RP_OK: moved, OUT *moved its count (0: nothing held, nothing moved); RP_ERR_BUSY: the reserve is
 * full, h is as it was. */
rp_err_t rp_appchan_held_orphan(rp_appchan_held_t *h,
                                rp_appchan_held_t reserve[RP_APPCHAN_ORPHAN_LISTS],
                                unsigned *moved) RP_MUST_CHECK;

/*
 * A new channel for component's app (m: its manifest, kept by the caller; held: its app's closed
 * channels, kept by the caller too, per app). OUT: *c, and *app_end, the app's end (close-on-exec;
 * give it as rp_compartment_spec_t.channel_fd, then close it).
 */
rp_err_t rp_appchan_open(rp_appchan_t *c, rp_appchan_held_t *held, const char *component,
                         const rp_manifest_t *m, int *app_end) RP_MUST_CHECK;

/* The same with fd, the channel's end made elsewhere (the monitor's, handed to the broker):
 * taken (made non-blocking; closed by rp_appchan_close) on RP_OK only. */
rp_err_t rp_appchan_adopt(rp_appchan_t *c, rp_appchan_held_t *held, const char *component,
                          const rp_manifest_t *m, int fd) RP_MUST_CHECK;

/* The descriptor to poll for input; -1 once the channel is closed. */
int rp_appchan_fd(const rp_appchan_t *c);

/*
 * Answer one packet, if one is waiting (root: the hooks above; peers: NULL refuses every
 * APP_CONNECT).
 * RP_OK: answered (or nothing to read); RP_ERR_NOT_FOUND: the app closed its end (it hung up); any
 * other: the packet was refused as malformed (and said why), or its reply could not be sent while
 * the app is still there (RP_ERR_IO: its channel is full): the caller tells whoever must know that
 * the app lost its channel. On anything but RP_OK the channel is closed.
 */
rp_err_t rp_appchan_serve(rp_appchan_t *c, const rp_appchan_root_t *root,
                          const rp_appchan_peers_t *peers);

/* Send p, the answer to the request c's root hook took to answer later (its id and type: the
 * request's). RP_OK; RP_ERR_NOT_FOUND: it could not be sent, and the channel is closed. */
rp_err_t rp_appchan_answer(rp_appchan_t *c, const rp_mon_reply_t *p) RP_MUST_CHECK;

/* Close the monitor's end: shut down (the app sees its channel close at once, and so does any other
 * holder of this end: the monitor's copy hangs up), and kept in c->held while its app has not read
 * descriptors sent on it. Idempotent. */
void rp_appchan_close(rp_appchan_t *c);

#endif /* RAMPART_MONITOR_APPCHAN_H */
