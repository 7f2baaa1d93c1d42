/*
 * The monitor's side of the app broker's gate (gate.h): what an app's channel needs of the root of
 * trust, asked by rampart-broker, which holds the channels (docs/compartments.md, "The app
 * broker"). The monitor answers by its own table of apps (the slot the broker names), never by
 * the broker's word for what an app may have: an app whose manifest has no DeviceAuthentication
 * gets no chain and no signature here, whatever the broker asks.
 */
#ifndef RAMPART_MONITOR_APPGATE_H
#define RAMPART_MONITOR_APPGATE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.h"
#include "gate.h"
#include "rampart/manifest.h"

/* One app as the monitor knows it for the broker (a slot of its table). */
typedef struct rp_appgate_app {
    bool used;
    char component[RP_COMPONENT_NAME_MAX + 1];
    const rp_manifest_t *m; /* its manifest, from its verified slot (the caller keeps it) */
    int fd;                 /* the broker's end of its channel, kept to hand a new broker; -1 */
    unsigned events, events_suppressed; /* refusals the broker reported, recorded or not */
    rp_gate_bucket_t sign;     /* its signing rate, kept here too (the broker's is not trusted) */
    rp_gate_bucket_t identity; /* and its certificate chain's (the files read per request) */
    /* Its channel's generation (gate.h: rp_gate_current), new at each rp_appgate_reset, and the
     * first this app had in this slot (0 until then: a slot given to another app starts from a
     * zeroed entry); messages of an earlier generation dropped, counted. */
    uint64_t gen, since;
    unsigned stale;
} rp_appgate_app_t;

/*
 * Serve one message from the broker on fd (apps: the table by slot, NULL where there is none):
 * IDENTITY and SIGN answered (ANSWER), EVENT recorded (at most RP_APPCHAN_EVENTS_MAX per channel),
 * CLOSED said in *closed (the slot; -1 else). A message that does not decode is dropped, said; one
 * of a slot's earlier channel (rp_gate_current) is dropped, said once per channel and counted.
 * The gate is non-blocking (rp_apps_broker), and never waited for: a request is read only while
 * the broker's socket has room for its answer; while it has none (the broker is slow to read its
 * answers), nothing is read (rp_appgate_events: poll for POLLOUT, and call this again at least once
 * a second), and once it has had none for rp_appgate_stall_seconds the broker is not reading, and
 * is taken as lost (rp_appgate_lost). RP_ERR_NOT_FOUND: the broker is gone, or lost (fd is the
 * caller's to close).
 */
rp_err_t rp_appgate_serve(int fd, rp_agent_t *a, rp_appgate_app_t *const apps[RP_GATE_SLOTS],
                          int *closed);
/* What to poll the gate for: POLLIN, or POLLOUT while rp_appgate_serve waits for room. */
short rp_appgate_events(void);
/* The bound on a gate without room, in seconds (a test sets it lower; review r7: L5). */
#define RP_APPGATE_STALL_SECONDS 5
extern unsigned rp_appgate_stall_seconds;

/* Tell the broker on fd (-1: none now) of e at slot: ADD, with its generation and e->fd when it
 * has one, or DROP. false: its socket did not take it, so its table would be wrong: the broker is
 * lost (rp_appgate_lost), and whoever reads the gate next sees it gone. */
bool rp_appgate_tell(int fd, uint8_t slot, const rp_appgate_app_t *e, bool add);

/* The broker on fd did not take what (a message), errno still the send's: the gate is shut both
 * ways (the socket, so also in the process that shares it: the monitor after an install child),
 * said. Its next read is the end: the monitor closes it, and starts another broker at its backoff
 * with every channel handed again (main.c, broker_lost; the supervisor kills the last one). */
void rp_appgate_lost(int fd, const char *what);

/* A channel's refusal counters and signing rate start again, with a new generation (a new
 * channel, or none: the last one's messages are no longer acted on). */
void rp_appgate_reset(rp_appgate_app_t *e);

/* e's signing and chain rates start again, its refusal counters do not: its channel is handed to a
 * new broker, whose own bucket starts full (rp_appchan_adopt), so that both agree. */
void rp_appgate_rate_reset(rp_appgate_app_t *e);

/*
 * The device certificate chain as the agent stored it, PEM, not parsed: S/agent/device.crt and
 * S/agent/ca-chain.pem, or S/device.crt and S/ca-chain.pem where S/agent/ has no certificate.
 * Opened without following links, regular files only, and refused unless it reads as PEM
 * certificates only (the agent's user writes S/agent/: this never hands an app another file).
 * RP_ERR_NOT_FOUND: no certificate yet; RP_ERR_TOO_LARGE: over cap. OUT: out[0..*len).
 */
rp_err_t rp_appchan_read_chain(const char *state_dir, uint8_t *out, size_t cap,
                               size_t *len) RP_MUST_CHECK;

#endif /* RAMPART_MONITOR_APPGATE_H */
