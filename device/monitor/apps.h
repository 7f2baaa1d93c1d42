/*
 * The monitor's app supervisor: every app component's confirmed version runs in its compartment
 * (compartment.h), with the network its manifest allows (netpolicy.h), restarted when it exits,
 * replaced when a new version is confirmed, stopped when its component goes. docs/monitor.md
 * ("Apps") describes it for people.
 *
 * It runs as a process of its own, a child of rampart-monitor forked before the monitor enters its
 * seccomp filter: a filter is inherited by every descendant and the strictest verdict of all the
 * filters wins, so a compartment built under the monitor's filter would have its app killed by the
 * monitor's list where the app's own filter should refuse the call and record the event. The
 * monitor (which holds the root of trust and verifies the slots) tells it what to run; it never
 * touches the root of trust. Between the two: one SOCK_SEQPACKET socket pair, these fixed
 * structures (the same binary on both ends), every request answered in order:
 *   SET    the apps that should run (component, slot, version, digest, payload), the device's
 *          ID: no reply
 *   LIST   what runs: an APP_LIST reply's body (proto.h)
 *   TRIAL  an install's trial of a new version in its compartment: healthy or not, and why
 *          (asked by the monitor's install child on a socket of its own, given with CHANNEL;
 *          it carries the trial app's channel end, which the broker serves)
 *   APP_CHANNEL  the app's end of a channel (appchan.h) for the next start of want[0]'s
 *          component at want[0]'s digest: no reply
 *   CONTROL  an operator's stop, start or restart of want[0]'s component (action): status and
 *          detail. A stop is kept (S/apps/COMPONENT/stopped) until a start.
 *   REMOVE   want[0]'s component is being removed (APP_REMOVE): stop it, delete S/apps/COMPONENT
 *          (its tree, storage image, log, uid: the uid is free again): status and detail.
 *
 *   BROKER   (re)start the app broker (rampart-unpack broker, device/broker/broker.h): status,
 *          and the monitor's end of its socket with the reply.
 *
 * App channels: the monitor opens one channel per app that should run and hands the app's end to
 * the supervisor, which gives it to that app's next start and closes its own copy: from then on
 * only the app holds it. The other end goes to the app broker, which reads and answers it (asking
 * the monitor, over its gate, for what needs the root of trust); the monitor keeps a copy of it.
 * When the app exits, its channel hangs up at the monitor, which makes a new one for the next run.
 * An app is never started without its channel.
 *
 * Per app, S/apps/COMPONENT/ holds tree/ (the extracted image, read-only; tree.digest says of
 * which image), uid (its uid and gid, allocated once, never shared), storage.img, log (its
 * stdout and stderr through a pipe, bounded and rate-limited by its compartment's init, the
 * launcher: RP_COMPARTMENT_LOG_MAX); its compartment is built in S/run/apps/COMPONENT/.
 */
#ifndef RAMPART_MONITOR_APPS_H
#define RAMPART_MONITOR_APPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "appgate.h"
#include "proto.h"
#include "rampart/metadata.h"
#include "slots.h"
#include "unpack.h"

#define RP_APPS_UID_BASE 0x7e000000u /* app uids (= gids) are allocated from here up */
#define RP_APPS_UID_COUNT 65536u
#define RP_APPS_BACKOFF_MAX 60  /* seconds between restarts, at most */
#define RP_APPS_STABLE_AFTER 60 /* a run this long resets the backoff */

/* One app the monitor wants running (it verified the slot). */
typedef struct rp_apps_want {
    char component[RP_COMPONENT_NAME_MAX + 1];
    char version[RP_MON_VERSION_MAX + 1];
    int slot;
    uint8_t digest[RP_SHA256_LEN];
    uint64_t payload_off, payload_len;
} rp_apps_want_t;

/* CHANNEL carries a descriptor: a socket on which an install child asks for its TRIAL. */
typedef enum {
    RP_APPS_SET = 1,
    RP_APPS_LIST,
    RP_APPS_TRIAL,
    RP_APPS_CHANNEL,
    RP_APPS_APP_CHANNEL,
    RP_APPS_CONTROL,
    RP_APPS_MANIFEST, /* want[0]'s manifest, read by rampart-unpack (the monitor cannot exec) */
    RP_APPS_REMOVE,   /* want[0]'s component removed: stopped, S/apps/COMPONENT deleted (its tree,
                         storage, log, uid): status and detail */
    RP_APPS_METADATA, /* a metadata payload (the descriptor, md_len bytes) read by rampart-unpack as
                         md_kind: md, its binary form, or status and detail */
    RP_APPS_BROKER    /* (re)start the app broker: status, and the monitor's end of its socket
                         (gate.h) with the reply */
} rp_apps_kind_t;

typedef struct rp_apps_msg {
    uint32_t kind; /* rp_apps_kind_t */
    uint32_t seq;  /* echoed in the reply */
    uint32_t n;    /* SET: want[0..n); TRIAL: want[0] */
    uint32_t health_seconds;
    uint32_t action; /* CONTROL: rp_mon_app_action_t */
    /* SET: the device's ID, for the supervisor's own check of a development capability at each
     * start (docs/compartments.md, "Development mode") */
    char device_id[RP_DEVICE_ID_SIZE];
    rp_apps_want_t want[RP_COMPONENTS_MAX];
    uint32_t md_kind, md_len; /* METADATA: rp_md_kind_t, the payload's length */
} rp_apps_msg_t;

typedef struct rp_apps_reply {
    uint32_t seq;
    uint32_t healthy; /* TRIAL */
    uint32_t status;  /* CONTROL, MANIFEST: rp_err_t */
    char detail[RP_SLOT_DETAIL_MAX + 1];
    uint32_t n; /* LIST: app[0..n) */
    rp_mon_app_t app[RP_MON_APPS_MAX];
    rp_manifest_t manifest; /* MANIFEST (status: rp_err_t, detail: why not) */
    uint32_t md_len;        /* METADATA: md[0..md_len), as rampart-unpack answered (unchecked) */
    uint8_t md[RP_UNPACK_ENVELOPE_MAX]; /* a document (RP_MD_DOC_BIN_MAX) or an envelope */
} rp_apps_reply_t;
_Static_assert(RP_UNPACK_ENVELOPE_MAX >= RP_MD_DOC_BIN_MAX, "a document's answer fits the reply");

/*
 * Fork the supervisor (call before rp_agent_open and the monitor's seccomp filter: the child holds
 * nothing of the root of trust). It cleans up what a monitor killed outright left, starts the
 * network policy, then serves the monitor on *fd until the monitor goes (or SIGTERM): then it
 * stops every app and leaves nothing behind. OUT: *fd, the monitor's end. The child's pid, or -1.
 */
pid_t rp_apps_spawn(const char *state_dir, int *fd);

/* The monitor's side: what should run now (every app component whose active, confirmed slot
 * verifies). OUT: *msg (a SET). */
void rp_apps_wanted(rp_agent_t *a, rp_apps_msg_t *msg);

/* The newest change to any component's state (a cheap stat of each): the monitor sends a SET again
 * when it moves (an install by another command). */
struct timespec rp_apps_state_stamp(const char *state_dir);

/* Send msg; for LIST and TRIAL wait for its reply for at most timeout_ms (replies to requests
 * given up on before are skipped). RP_ERR_IO: the supervisor is gone. OUT: *reply (may be NULL
 * for SET). */
rp_err_t rp_apps_call(int fd, rp_apps_msg_t *msg, rp_apps_reply_t *reply,
                      int timeout_ms) RP_MUST_CHECK;

/* Each app's channel, as the monitor knows it: one per app component that should run. The broker
 * (gate.h) reads it; the monitor keeps a copy of the broker's end, to see the app exit (a hang-up)
 * and to hand the channel to a new broker. */
typedef struct rp_apps_chan {
    bool used;
    rp_apps_want_t want; /* the version the channel is for (a new digest: a new channel) */
    rp_manifest_t m;     /* its manifest, read from the verified slot */
    rp_appgate_app_t g;  /* g.fd < 0: closed (its app exited): a new one is due */
} rp_apps_chan_t;

typedef struct rp_apps_chans {
    rp_apps_chan_t e[RP_COMPONENTS_MAX];
} rp_apps_chans_t;

/* After a SET (set; NULL: the last one still holds): close the channels of apps no longer wanted,
 * whose version changed or that an operator stopped, and open and hand over (APP_CHANNEL on fd)
 * one for each other wanted app that has none; the broker (on broker, -1: none now) is told each
 * change (gate.h: ADD, DROP). */
void rp_apps_chans_sync(rp_apps_chans_t *t, const rp_apps_msg_t *set, int fd, int broker);

/* t's apps by the gate's slot (the trial's: NULL). OUT: out. */
void rp_apps_chans_slots(rp_apps_chans_t *t, rp_appgate_app_t *out[RP_GATE_SLOTS]);

/* Tell a new broker (on broker) of every app in t, with its channel when it has one; each app's
 * signing rate starts again, as the new broker's does. */
void rp_apps_chans_hand(rp_apps_chans_t *t, int broker);

/* The app broker's store of kept ends (device/broker/broker.c), handed to a new broker on sock:
 * store[0] (the read end of the store before, kept here across the death; -1: none) as 'R', then a
 * new datagram pair's two ends as 'S'. store[1] becomes the new pair's read end, the only end of it
 * kept here: a pair lives one broker, so what a broker did to its own (descriptors sent on the read
 * end, which nobody reads; an end shut down) goes with it, and the next broker works. The hand-over
 * is consumed only once taken (review r10 L5): at the next call, store[1] replaces store[0] if its
 * broker wrote into it (a broker writes its store at once at its start, what it took back
 * included); else (its start failed, or it died before) store[1] is closed and store[0] handed
 * again. Both -1 at first. */
rp_err_t rp_apps_store_hand(int sock, int store[2]);

/* What an install child spends of each app's rates and event count is the monitor's too (review
 * r5): the child puts its counts, as it ends, in a page both share, and the monitor, once it reaped
 * the child, takes them for every app whose channel is still the one the child saw (a new channel
 * starts again anyway). _take also makes the page (call it once before the first install). */
void rp_apps_chans_spent_put(const rp_apps_chans_t *t);
rp_err_t rp_apps_chans_spent_take(rp_apps_chans_t *t);

/* Ask the supervisor on fd to (re)start the app broker. OUT: *broker, the monitor's end of its
 * socket. */
rp_err_t rp_apps_broker(int fd, int *broker) RP_MUST_CHECK;

/* The manifest of want's verified image (its slot holds it): an app tree's, checked against the
 * component, or the empty one of a legacy single-file app. Asked of the app supervisor on fd (its
 * socket to the monitor, or an install child's channel), which has rampart-unpack read it. */
rp_err_t rp_apps_manifest(int fd, const rp_apps_want_t *w, rp_manifest_t *m, char *why,
                          size_t cap) RP_MUST_CHECK;

/*
 * The monitor's rp_md_parse_fn (ctx: the int descriptor of its socket to the supervisor): the
 * payload handed over in a memory file the monitor wrote, read by rampart-unpack as the
 * supervisor starts it, the answer decoded here (rp_md_doc_decode: every field held to its
 * rules) and, with bin, handed back as it came (what is kept). No JSON is parsed in the monitor
 * nor in the supervisor.
 */
rp_err_t rp_apps_md_parse(void *ctx, rp_md_kind_t kind, const uint8_t *payload, size_t len,
                          void *out, uint8_t *bin, size_t *bin_len, char *detail,
                          size_t cap) RP_MUST_CHECK;

/* The monitor's rp_update_unpack_fn (ctx as above): an older version's JSON envelope, read by
 * rampart-unpack (metadata envelope), its answer decoded here (rp_md_signed_decode); its
 * signatures are the caller's to verify. */
rp_err_t rp_apps_md_unpack(void *ctx, const char *env, size_t len, rp_md_signed_t *doc,
                           char *detail, size_t cap) RP_MUST_CHECK;

/* What the install child's trial hook needs: its channel to the supervisor (CHANNEL), the root
 * of trust, the apps' channels and the broker's socket (while it runs, the install child answers
 * the broker's gate: the trial app's requests and the others'). */
typedef struct rp_apps_trial_ctx {
    int fd;
    rp_agent_t *agent;
    rp_apps_chans_t *chans;
    const int *broker; /* the monitor's end of the broker's socket (-1: none now) */
} rp_apps_trial_ctx_t;

/* rp_install_opts_t's trial hook for the monitor's install child: ctx is an
 * rp_apps_trial_ctx_t. */
rp_err_t rp_apps_trial(void *ctx, const char *component, int slot, const rp_slot_image_t *img,
                       int seconds, bool *healthy, char *detail, size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_MONITOR_APPS_H */
