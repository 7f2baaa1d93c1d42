/*
 * The app broker's socket to the monitor (docs/compartments.md, "The app broker"): the one socket
 * pair between rampart-broker, which holds the apps' channels and answers what needs no secret,
 * and the monitor, which keeps what needs the root of trust. Every message is one SOCK_SEQPACKET
 * packet of a fixed layout (little-endian, explicit offsets, no struct copied whole):
 *
 *   broker -> monitor, always RP_GATE_REQ_LEN bytes (rp_gate_req_t), each naming slot's channel by
 *   the generation ADD gave it (gen):
 *     IDENTITY  slot's app asks for the device certificate chain (seq: the broker's number for
 *               this request, never the app's id)
 *     SIGN      slot's app asks for a TLS 1.3 signature (seq, side, hash[0..hash_len))
 *     EVENT     a refusal the broker made, to record as a security event (event_kind:
 *               RP_EVENT_APP_CONNECTION or RP_EVENT_IDENTITY; reason: printable text)
 *     CLOSED    the broker closed slot's channel (the app sent what does not decode)
 *   IDENTITY and SIGN are answered with an ANSWER; EVENT and CLOSED are not.
 *
 *   monitor -> broker:
 *     ADD, DROP  RP_GATE_APP_LEN bytes (rp_gate_app_t): slot's app, its component and the rules
 *                of its manifest the broker enforces (DeviceAuthentication,
 *                AllowedApplicationConnections); ADD carries the slot's generation and the
 *                broker's end of its channel
 *     ANSWER     RP_GATE_ANSWER_HEAD bytes (version, op, slot, 0, the request's seq) then the
 *                app's reply packet, encoded by the monitor (proto.h), which the broker relays
 *                with the app's id put back
 *
 * Slots name apps by the monitor's own table (RP_GATE_TRIAL: an install's trial app): the monitor
 * never takes the broker's word for which app asks what it may have, only for which slot. A slot
 * is given a new generation with each channel (appgate.c), so that a message the broker sent for
 * a slot's earlier channel, read late, does not act on its next one (rp_gate_current); the
 * broker matches an answer to its request by seq alone (rp_gate_answers).
 */
#ifndef RAMPART_MONITOR_GATE_H
#define RAMPART_MONITOR_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "proto.h"
#include "rampart/component.h"
#include "rampart/crypto.h"
#include "rampart/error.h"
#include "rampart/manifest.h"

#define RP_GATE_VERSION 2
#define RP_GATE_APPS 16            /* = RP_COMPONENTS_MAX (slots.h; asserted where both are seen) */
#define RP_GATE_TRIAL RP_GATE_APPS /* the slot of an install's trial app */
#define RP_GATE_SLOTS (RP_GATE_APPS + 1)

typedef enum {
    RP_GATE_IDENTITY = 1,
    RP_GATE_SIGN,
    RP_GATE_EVENT,
    RP_GATE_CLOSED,
    RP_GATE_ADD,
    RP_GATE_DROP,
    RP_GATE_ANSWER,
    RP_GATE_OP_END
} rp_gate_op_t;

typedef struct rp_gate_req {
    uint8_t op;   /* IDENTITY, SIGN, EVENT or CLOSED */
    uint8_t slot; /* < RP_GATE_SLOTS */
    uint32_t seq; /* IDENTITY, SIGN: the broker's number for the request (not 0); else 0 */
    uint64_t gen; /* the generation of slot's channel, as ADD gave it (not 0) */
    uint8_t side; /* SIGN: rp_tls13_side_t */
    uint8_t hash_len;
    uint8_t hash[RP_TLS13_HASH_MAX];
    uint16_t event_kind; /* EVENT */
    char reason[RP_EVENT_REASON_MAX + 1];
} rp_gate_req_t;

#define RP_GATE_REQ_LEN (20 + RP_TLS13_HASH_MAX + RP_EVENT_REASON_MAX + 1) /* 324 */

typedef struct rp_gate_app {
    uint8_t op; /* ADD or DROP */
    uint8_t slot;
    bool device_authentication;
    uint8_t npeers;
    uint64_t gen; /* ADD: the slot's generation (0: no channel yet); DROP: 0 */
    char component[RP_COMPONENT_NAME_MAX + 1];
    char peers[RP_MANIFEST_APP_CONNECTIONS_MAX][RP_COMPONENT_NAME_MAX + 1];
} rp_gate_app_t;

#define RP_GATE_APP_LEN (14 + (1 + RP_MANIFEST_APP_CONNECTIONS_MAX) * (RP_COMPONENT_NAME_MAX + 1))
#define RP_GATE_ANSWER_HEAD 8
#define RP_GATE_ANSWER_MAX (RP_GATE_ANSWER_HEAD + RP_MON_PACKET_MAX)

/* What the broker takes from the monitor (rp_gate_msg_decode). */
typedef struct rp_gate_msg {
    uint8_t op; /* ADD, DROP or ANSWER */
    uint8_t slot;
    rp_gate_app_t app;  /* ADD, DROP */
    uint32_t seq;       /* ANSWER: the request's (not 0) */
    const uint8_t *pkt; /* ANSWER: the reply packet, pkt[0..pkt_len) within the message */
    size_t pkt_len;
} rp_gate_msg_t;

/* A request the broker awaits the answer to (seq 0: none): the app's id and type, to answer it. */
typedef struct rp_gate_wait {
    uint32_t seq, id;
    uint16_t type;
    int64_t deadline_ms; /* then answered RP_ERR_BUSY */
} rp_gate_wait_t;

/* Encode r (its fields as the decoder would accept them) into out[RP_GATE_REQ_LEN]. */
rp_err_t rp_gate_req_encode(const rp_gate_req_t *r, uint8_t *out, size_t cap) RP_MUST_CHECK;

/* The monitor's decoder of what the broker sends: exactly RP_GATE_REQ_LEN bytes, this version, a
 * known op, a slot in range, a generation, a seq for IDENTITY and SIGN only; SIGN: a side and a
 * hash length TLS 1.3 has; EVENT: one of the two kinds the broker records and a non-empty
 * printable reason; every unused byte zero. Fuzzed (fuzz/gate.c). */
rp_err_t rp_gate_req_decode(const uint8_t *buf, size_t len, rp_gate_req_t *r) RP_MUST_CHECK;

/* ADD (of generation gen) or DROP for a (from the monitor's manifest m; NULL for DROP).
 * OUT: out[RP_GATE_APP_LEN]. */
rp_err_t rp_gate_app_encode(uint8_t op, uint8_t slot, uint64_t gen, const char *component,
                            const rp_manifest_t *m, uint8_t *out, size_t cap) RP_MUST_CHECK;

/* ANSWER to the request seq for slot: p (its id is not read: the broker puts the app's back).
 * OUT: out[0..*len). */
rp_err_t rp_gate_answer_encode(uint8_t slot, uint32_t seq, const rp_mon_reply_t *p, uint8_t *out,
                               size_t cap, size_t *len) RP_MUST_CHECK;

/* The broker's decoder of the monitor's messages: ADD, DROP (msg->app) or ANSWER (msg->seq, the
 * packet). Names checked as component names. Fuzzed too. */
rp_err_t rp_gate_msg_decode(const uint8_t *buf, size_t len, rp_gate_msg_t *msg) RP_MUST_CHECK;

/* The monitor's check of a decoded r against its slot: acted on only when it is of the slot's
 * current channel (gen: its generation), or for EVENT, of any channel the slot's app had there
 * (since: the generation the slot was given to this app with; 0: none yet, nothing acted on).
 * Generations only grow, in the monitor and in an install child alike; a later one than the
 * table's is a channel the monitor gave after an install child copied its table (same app: a
 * slot is not given to another app while an install runs). */
bool rp_gate_current(const rp_gate_req_t *r, uint64_t since, uint64_t gen);

/* The broker's: whether ANSWER (its seq, and the reply p decoded from it) is the one w awaits. */
bool rp_gate_answers(const rp_gate_wait_t *w, uint32_t seq, const rp_mon_reply_t *p);

/* A signing rate, kept by the broker per channel (appchan.c) and again by the monitor per app
 * (appgate.c): a token bucket in 1/60000ths of a signature (one minute of milliseconds). */
#define RP_GATE_TOKEN 60000u
typedef struct rp_gate_bucket {
    uint64_t tokens;
    int64_t refilled_ms;
} rp_gate_bucket_t;

/* The monotonic clock in milliseconds (the buckets' and the bounds' time). */
int64_t rp_gate_now_ms(void);

/* A full bucket of burst signatures, now. */
void rp_gate_bucket_fill(rp_gate_bucket_t *b, uint32_t burst);

/* Take one signature from b (burst at once, per_minute after): whether it may sign now. */
bool rp_gate_bucket_take(rp_gate_bucket_t *b, uint32_t burst, uint32_t per_minute);

/* Whether a lists component among its peers (AllowedApplicationConnections). */
bool rp_gate_lists(const rp_gate_app_t *a, const char *component);

#endif /* RAMPART_MONITOR_GATE_H */
