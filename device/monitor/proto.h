/*
 * The security monitor's request protocol: the one owner of its packet layout, shared by
 * rampart-monitor and its clients. docs/monitor.md describes it for people.
 *
 * One request or reply is one SOCK_SEQPACKET packet (the kernel keeps the boundaries, so a packet
 * is never split or merged): a fixed 16-byte header, then a body whose layout is fixed per type.
 *   header  magic u32 "RPMN" | version u16 | type u16 | id u32 | body length u32
 *   fields  integers are big-endian; a string or byte string is a u16 length then its bytes, with a
 *           per-field maximum (a string holds no NUL)
 * A reply has the request's type with RP_MON_REPLY set and the request's id; its body opens with
 * a u16 status (an rp_err_t: 0 is success), then on success the type's fields, otherwise a string
 * saying why. Descriptors (INSTALL's image, TRUST_ROOT's and TARGETS' metadata; INSTALL's handed
 * answer's trial slot) travel beside the packet as SCM_RIGHTS.
 *
 * Decoding is bounded and allocation-free: anything short, long, of another magic or version, of an
 * unknown type, with bytes left over, or with a field past its maximum is refused with its own
 * error code. New requests (app start/stop, the app-facing ones) are new types: the header stays.
 */
#ifndef RAMPART_MONITOR_PROTO_H
#define RAMPART_MONITOR_PROTO_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/component.h"
#include "rampart/crypto.h"
#include "rampart/eat.h"
#include "rampart/error.h"
#include "rampart/update_state.h"

#define RP_MON_MAGIC 0x52504d4eu /* "RPMN" */
#define RP_MON_VERSION 2
#define RP_MON_HEADER_LEN 16
#define RP_MON_REPLY 0x8000u
/* The largest packet either side sends: the largest reply (EVIDENCE) and its header. */
#define RP_MON_PACKET_MAX (RP_MON_HEADER_LEN + 2 + 2 + RP_EAT_MAX_SIZE)

#define RP_MON_MESSAGE_MAX 255 /* an error reply's reason */
#define RP_MON_VERSION_MAX 47  /* a component's version text */
#define RP_MON_DETAIL_MAX 255  /* an install's detail (rp_install_result_t) */
#define RP_MON_HEALTH_MAX 600  /* INSTALL's health_seconds, at most (more is this) */
#define RP_MON_COMPONENTS_MAX 16
#define RP_MON_APPS_MAX 16     /* APP_LIST: the apps one reply lists */
#define RP_MON_MISSING_MAX 255 /* APP_LIST: the layers not in force, and why */
/* MCU_VERDICT: the board's evidence (an EAT, COSE_Sign1) over the monitor's nonce, at most. */
#define RP_MON_MCU_EVIDENCE_MAX 2048
#define RP_MON_MCU_NONCE_LEN 32 /* the nonce INSTALL's handed answer gives (RP_EAT_NONCE_MAX) */

/* What an app is doing (APP_LIST). The names (rp_mon_app_state_name) are shown and scripted
 * against (`rampart-agent app list`): never renamed. */
typedef enum rp_mon_app_state {
    RP_MON_APP_STOPPED = 0,    /* "stopped" */
    RP_MON_APP_STARTING = 1,   /* "starting": started, not ready yet */
    RP_MON_APP_READY = 2,      /* "ready": it said so on its ready descriptor */
    RP_MON_APP_RUNNING = 3,    /* "running": up past its health window without saying so */
    RP_MON_APP_RESTARTING = 4, /* "restarting": exited (or failed to start); waiting its backoff */
    RP_MON_APP_STATE_END = 5,
} rp_mon_app_state_t;

/* One app as APP_LIST reports it: the limits its compartment has in force. */
typedef struct rp_mon_app {
    char component[RP_COMPONENT_NAME_MAX + 1];
    char version[RP_MON_VERSION_MAX + 1];
    uint8_t state; /* rp_mon_app_state_t */
    uint32_t restarts;
    uint32_t pid; /* its compartment's init, as the monitor sees it; 0: none */
    uint32_t memory_kb, pids, cpu_percent, storage_kb;
    char missing[RP_MON_MISSING_MAX + 1]; /* "" when every layer is in force */
} rp_mon_app_t;
/* APP_IDENTITY's answer: the device certificate and its CA chain, PEM, as the agent stored them.
 * No larger than the largest EVIDENCE, so it does not raise RP_MON_PACKET_MAX. */
#define RP_MON_CHAIN_MAX 8192
_Static_assert(RP_MON_CHAIN_MAX <= RP_EAT_MAX_SIZE, "APP_IDENTITY must fit RP_MON_PACKET_MAX");
/* EVENTS: the events one reply carries at most (the client asks again while `more`). */
#define RP_MON_EVENTS_PER_REPLY 16
#define RP_MON_REASON_MAX 255 /* an event's reason (RP_EVENT_REASON_MAX) */
/* One security event as EVENTS carries it (device/monitor/events.h's rp_event_t, by value). */
typedef struct rp_mon_event {
    uint64_t seq;                        /* its number in the device's log: the cursor */
    int64_t at;                          /* unix seconds */
    uint16_t kind;                       /* rp_event_kind_t: 1 to RP_EVENT_KIND_END - 1 */
    char app[RP_COMPONENT_NAME_MAX + 1]; /* "" or a component name */
    char reason[RP_MON_REASON_MAX + 1];
} rp_mon_event_t;
/* APP_LOG: the bytes of an app's log one reply carries at most. */
#define RP_MON_LOG_CHUNK 8000
_Static_assert(RP_MON_LOG_CHUNK + 32 <= RP_EAT_MAX_SIZE, "APP_LOG must fit RP_MON_PACKET_MAX");
/* CRASHES: a kept crash's file (device/monitor/crash.h) is at most this large; it travels in
 * pieces of RP_MON_LOG_CHUNK bytes. */
#define RP_MON_CRASH_MAX (128 * 1024)
/* The largest root metadata TRUST_ROOT reads from its descriptor (a root is about 2 KiB). */
#define RP_MON_ROOT_MAX (64 * 1024)
/* The largest targets metadata TARGETS reads from its descriptor: 16 targets, each with a delta,
 * are about 12 KiB in their envelope (every field is bounded: rampart/metadata.h). */
#define RP_MON_TARGETS_MAX (64 * 1024)

typedef enum rp_mon_type {
    RP_MON_HELLO = 1,  /* the versions each side speaks */
    RP_MON_STATUS = 2, /* the components */
    RP_MON_ID = 3,     /* device ID and public key */
    /* 4 was SIGN (any digest, signed with the identity key: a signing oracle for evidence and
     * CSRs). Retired, never reused: a packet of type 4 is an unknown type. */
    RP_MON_EVIDENCE = 5,   /* measure, then the signed EAT for a nonce */
    RP_MON_INSTALL = 6,    /* a component's image, from a descriptor */
    RP_MON_RECOVER = 7,    /* put right what a cut install left */
    RP_MON_SIGN_TLS13 = 8, /* a TLS 1.3 CertificateVerify, built by the monitor from (side, hash) */
    RP_MON_APP_LIST = 9,   /* the apps the monitor supervises (component, version, state, limits) */
    RP_MON_TRUST_ROOT =
        10, /* a root of update trust (metadata), from a descriptor: checked, kept */
    /* The app channel (appchan.h): asked by an app on its own channel, never on the agent's
     * socket; rp_mon_type_channel() is the rule. */
    RP_MON_APP_IDENTITY = 11,   /* the device certificate chain, PEM (DeviceAuthentication) */
    RP_MON_APP_SIGN_TLS13 = 12, /* SIGN_TLS13's body and answer (DeviceAuthentication) */
    RP_MON_APP_CONNECT = 13,    /* a socket to another app (both manifests allow it): the reply
                                   carries it as a descriptor */
    RP_MON_APP_INCOMING = 14,   /* monitor to app, unasked, in a reply's form (id 0): a peer's
                                   socket (descriptor) and the peer's component */
    /* What the monitor recorded, for the agent (it runs as a user that cannot read root's files):
     * the security events after a cursor, and the newest bytes of an app's log. */
    RP_MON_EVENTS = 15,      /* events numbered from `from` on, at most RP_MON_EVENTS_PER_REPLY */
    RP_MON_APP_LOG = 16,     /* at most RP_MON_LOG_CHUNK bytes of an app's log from an offset */
    RP_MON_APP_CONTROL = 17, /* stop, start or restart an app (an operator's word, kept) */
    RP_MON_CRASHES = 18,     /* a kept crash (`from` or after), RP_MON_LOG_CHUNK bytes at a time */
    RP_MON_SETTINGS = 19,    /* the settings the service gave the device (crash capture on or
                                off), kept by the monitor */
    RP_MON_TARGETS = 20,     /* the device's signed targets, from a descriptor: checked with the
                                monitor's update root, kept; INSTALL takes only what they name */
    RP_MON_APP_REMOVE = 21,  /* remove an app: stopped, its files, storage and slots gone
                                (the targets no longer name it, or a sideload) */
    RP_MON_MCU_VERDICT = 22, /* the MCU's verdict on firmware INSTALL handed to the agent
                                (answered handed, with the trial slot's descriptor): the
                                install ends with it (docs/mcu.md) */
    RP_MON_TYPE_END = 23     /* one past the last type: new types go before it */
} rp_mon_type_t;

/* Where a type may be asked: the one owner of "agent types on the agent's socket, app types on
 * an app's channel". The monitor refuses a request on the other one. */
typedef enum rp_mon_channel {
    RP_MON_CHANNEL_AGENT = 0, /* S/monitor.sock (root and the agent's user): a type's default */
    RP_MON_CHANNEL_APP = 1,   /* an app's channel (descriptor 4 in the app, appchan.h) */
    RP_MON_CHANNEL_NONE = 2,  /* nobody asks it (unknown, or APP_INCOMING: the monitor sends it) */
} rp_mon_channel_t;

/* APP_CONTROL's actions. A stopped app stays stopped (across the monitor's restarts and new
 * versions) until it is started. */
typedef enum rp_mon_app_action {
    RP_MON_APP_STOP = 1,
    RP_MON_APP_START = 2,
    RP_MON_APP_RESTART = 3, /* stop (if it runs), then start at once: no backoff */
    RP_MON_APP_ACTION_END = 4,
} rp_mon_app_action_t;

/* A byte string as decoded: points into the packet. */
typedef struct rp_mon_bytes {
    const uint8_t *data;
    size_t len;
} rp_mon_bytes_t;

typedef struct rp_mon_request {
    rp_mon_type_t type;
    uint32_t id;
    union {
        struct {
            uint16_t min_version, max_version;
        } hello;
        struct {
            uint8_t side; /* rp_tls13_side_t */
            uint8_t hash[RP_TLS13_HASH_MAX];
            size_t hash_len; /* rp_tls13_hash_len_valid(): 32 or 48 */
        } sign_tls13;
        struct {
            uint8_t nonce[RP_EAT_NONCE_MAX];
            size_t nonce_len; /* RP_EAT_NONCE_MIN to RP_EAT_NONCE_MAX */
        } evidence;
        struct {
            char component[RP_COMPONENT_NAME_MAX + 1]; /* rp_component_name_valid() */
            uint32_t health_seconds; /* 0: the default; more than RP_MON_HEALTH_MAX is it */
        } install;
        struct {
            char component[RP_COMPONENT_NAME_MAX + 1]; /* the peer; rp_component_name_valid() */
        } app_connect;
        struct {
            uint64_t from; /* the first event number wanted (0: from the oldest kept) */
        } events;
        struct {
            char component[RP_COMPONENT_NAME_MAX + 1]; /* rp_component_name_valid() */
            uint64_t offset; /* where to read from; past the end: no bytes, the size */
        } app_log;
        struct {
            char component[RP_COMPONENT_NAME_MAX + 1]; /* rp_component_name_valid() */
            uint8_t action;                            /* rp_mon_app_action_t */
        } app_control;
        struct {
            char component[RP_COMPONENT_NAME_MAX + 1]; /* rp_component_name_valid() */
        } app_remove;
        struct {
            uint64_t from;   /* the first crash number wanted (0: the oldest kept) */
            uint32_t offset; /* where to read its file from */
        } crashes;
        struct {
            uint8_t crash_capture; /* 1 on, 0 off (the device group's, as the service said) */
        } settings;
        struct {
            char component[RP_COMPONENT_NAME_MAX + 1]; /* rp_component_name_valid() */
            uint8_t digest[RP_SHA256_LEN]; /* of the image handed over (INSTALL's detail, hex) */
            uint8_t state; /* rp_update_state_t: installed, refused, rolled_back or failed */
            char detail[RP_MON_DETAIL_MAX + 1]; /* the agent's word, recorded */
            /* The board's evidence over the nonce INSTALL handed (installed needs it: the
             * monitor checks it with the board's key; any other outcome may leave it empty). */
            uint8_t evidence[RP_MON_MCU_EVIDENCE_MAX];
            size_t evidence_len;
        } mcu_verdict;
    } u;
} rp_mon_request_t;

typedef struct rp_mon_component {
    char name[RP_COMPONENT_NAME_MAX + 1];
    char version[RP_MON_VERSION_MAX + 1]; /* of the active slot; "" for none */
    uint8_t active;                       /* 0 (a), 1 (b), 0xff none */
    uint32_t security_counter;            /* the root of trust's floor for it */
    uint8_t last_result;                  /* rp_update_state_t */
    char last_detail[RP_MON_DETAIL_MAX + 1];
    char last_version[RP_MON_VERSION_MAX + 1]; /* of the image the last update was about */
    int64_t last_at;                           /* when it ended (seconds since the epoch; 0) */
    uint8_t trial;                             /* the slot on trial: 0 (a), 1 (b), 0xff none */
    uint8_t trial_digest[RP_SHA256_LEN];       /* its image's digest (on trial) */
    int64_t trial_until; /* handed to the agent: its verdict's deadline (seconds since the epoch);
                          * 0: not handed, or the deadline is not known (a restart rolls it back) */
} rp_mon_component_t;

typedef struct rp_mon_reply {
    rp_mon_type_t type; /* the request's, without RP_MON_REPLY */
    uint32_t id;
    uint16_t status;                      /* rp_err_t; RP_OK: the union holds the answer */
    char message[RP_MON_MESSAGE_MAX + 1]; /* why, when status is not RP_OK */
    union {
        struct {
            uint16_t version;
            uint32_t packet_max;
        } hello;
        struct {
            rp_mon_component_t c[RP_MON_COMPONENTS_MAX];
            size_t n;
        } status;
        struct {
            char device_id[64 + 1];
            uint8_t rot_kind; /* rp_rot_kind_t */
            uint8_t spki[RP_PUBKEY_DER_MAX];
            size_t spki_len;
        } id;
        struct {
            uint8_t sig[RP_ECDSA_P256_SIG_MAX];
            size_t len;
        } sign_tls13;
        struct {
            uint8_t eat[RP_EAT_MAX_SIZE];
            size_t len;
        } evidence;
        struct {
            uint8_t state; /* rp_update_state_t */
            char detail[RP_MON_DETAIL_MAX + 1];
        } install; /* and MCU_VERDICT's */
        struct {
            uint32_t unbootable;
        } recover;
        struct {
            rp_mon_app_t a[RP_MON_APPS_MAX];
            size_t n;
        } app_list;
        struct {
            uint64_t version; /* of the root the device keeps now */
        } trust_root;
        struct {
            uint64_t version; /* of the targets the monitor keeps now */
        } targets;
        struct {
            uint8_t chain[RP_MON_CHAIN_MAX]; /* PEM, not parsed by the monitor */
            size_t len;
        } app_identity;
        struct {
            char component[RP_COMPONENT_NAME_MAX + 1]; /* who is at the other end */
        } app_incoming;
        struct {
            uint64_t next;    /* the `from` to ask next */
            uint64_t dropped; /* events recorded but no longer in the log (rp_events_read) */
            uint8_t more;     /* 1: events from `next` on are kept: ask again */
            rp_mon_event_t e[RP_MON_EVENTS_PER_REPLY];
            size_t n;
        } events;
        struct {
            uint64_t size;   /* the log's size when it was read */
            uint64_t offset; /* where data starts */
            uint8_t data[RP_MON_LOG_CHUNK];
            size_t len;
        } app_log;
        struct {
            uint64_t seq;     /* the crash these bytes are of (the first kept >= from); 0: none */
            uint64_t dropped; /* crashes kept once but dropped since (the store was full) */
            uint32_t size;    /* its file's size (at most RP_MON_CRASH_MAX; 0 when seq is 0) */
            uint32_t offset;  /* where data starts */
            uint8_t data[RP_MON_LOG_CHUNK];
            size_t len;
        } crashes;
        struct {
            uint8_t crash_capture; /* what is in force now: 1 on, 0 off */
        } settings;
        /* APP_SIGN_TLS13: u.sign_tls13; APP_CONNECT: no field (the descriptor) */
    } u;
} rp_mon_reply_t;

/* The largest request body of each type (the decoder refuses more before reading a field);
 * 0 for a type this version does not know. */
size_t rp_mon_request_body_max(rp_mon_type_t type);
const char *rp_mon_type_name(rp_mon_type_t type); /* "?" for an unknown type */
/* "stopped", "starting", "ready", "running", "restarting"; "?" outside the enum. */
const char *rp_mon_app_state_name(unsigned state);
/* Whether this version knows type (a retired number, such as 4, is unknown). */
int rp_mon_type_known(unsigned type);
/* Where type may be asked (RP_MON_CHANNEL_NONE for an unknown type). */
rp_mon_channel_t rp_mon_type_channel(rp_mon_type_t type);
/* Whether a request of this type comes with a descriptor (INSTALL, TRUST_ROOT, TARGETS); no other
 * may. */
int rp_mon_type_takes_fd(rp_mon_type_t type);

/* Whether state (rp_update_state_t) ends an install: installed, failed, rolled_back or refused
 * (MCU_VERDICT's outcome, and the agent's relay runner's). */
_Static_assert(RP_UPDATE_FAILED == RP_UPDATE_INSTALLED + 1 &&
                   RP_UPDATE_ROLLED_BACK == RP_UPDATE_INSTALLED + 2 &&
                   RP_UPDATE_REFUSED == RP_UPDATE_INSTALLED + 3,
               "the four outcomes, in a row");
static inline int rp_mon_outcome(unsigned state)
{
    return state >= RP_UPDATE_INSTALLED && state <= RP_UPDATE_REFUSED;
}

/* Requests: the client encodes, the monitor decodes. OUT: buf[0..*len) / *r. */
rp_err_t rp_mon_request_encode(const rp_mon_request_t *r, uint8_t *buf, size_t cap,
                               size_t *len) RP_MUST_CHECK;
/* RP_ERR_TRUNCATED: shorter than its header or its fields; RP_ERR_TOO_LARGE: longer than its
 * type's maximum, or a field past its own; RP_ERR_BAD_MAGIC; RP_ERR_BAD_VERSION;
 * RP_ERR_UNSUPPORTED: an unknown type (or a reply); RP_ERR_MALFORMED: bytes left over, or a field
 * that breaks its rule. On any refusal r->id and r->type hold what the header said (0 when it was
 * short). */
rp_err_t rp_mon_request_decode(const uint8_t *buf, size_t len, rp_mon_request_t *r) RP_MUST_CHECK;

/* Replies: the monitor encodes, the client decodes (the same refusals). */
rp_err_t rp_mon_reply_encode(const rp_mon_reply_t *r, uint8_t *buf, size_t cap,
                             size_t *len) RP_MUST_CHECK;
rp_err_t rp_mon_reply_decode(const uint8_t *buf, size_t len, rp_mon_reply_t *r) RP_MUST_CHECK;

/* One packet on a SOCK_SEQPACKET socket, with at most one descriptor (fd < 0: none). */
rp_err_t rp_mon_send(int sock, const uint8_t *buf, size_t len, int fd) RP_MUST_CHECK;
/* OUT: buf[0..*len), *fd (-1 when none came; close it). A packet larger than cap is
 * RP_ERR_TOO_LARGE (and discarded); more than one descriptor, or a truncated control message, is
 * RP_ERR_MALFORMED (every descriptor that came is closed). RP_ERR_NOT_FOUND: the peer closed. */
rp_err_t rp_mon_recv(int sock, uint8_t *buf, size_t cap, size_t *len, int *fd) RP_MUST_CHECK;

/*
 * A stop for a client's calls, set from a signal handler (the agent's: an INSTALL's answer comes
 * only after its trial, up to its health window, and rp_mon_recv waits through EINTR).
 * rp_mon_call_stop marks it stopped and shuts the call under way's socket down, so that its wait
 * returns at once; a call's socket is published in it before the stop is looked at, so a stop at
 * any point ends the call (RP_ERR_IO), and a call begun after it does not connect.
 */
typedef struct {
    volatile sig_atomic_t sock; /* the call under way's socket, or -1 (its start: {.sock = -1}) */
    volatile sig_atomic_t stopped;
    void (*tick)(void); /* NULL, or called each second the reply is awaited (a daemon's watchdog) */
} rp_mon_stop_t;
/* Async-signal-safe. */
void rp_mon_call_stop(rp_mon_stop_t *s);

/* A client's whole call: connect to path, send r (and fd), read the reply. OUT: *reply. */
rp_err_t rp_mon_call(const char *path, const rp_mon_request_t *r, int fd,
                     rp_mon_reply_t *reply) RP_MUST_CHECK;
/* The same, taking the descriptor a reply may carry (INSTALL's, handed) into *reply_fd (-1 when
 * none came; close it; rp_mon_call refuses a reply that carries one), and ended by stop (NULL:
 * none) when it is stopped: RP_ERR_IO, whatever came. */
rp_err_t rp_mon_call_fd(const char *path, const rp_mon_request_t *r, int fd, rp_mon_reply_t *reply,
                        int *reply_fd, rp_mon_stop_t *stop) RP_MUST_CHECK;

#endif /* RAMPART_MONITOR_PROTO_H */
