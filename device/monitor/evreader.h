/*
 * The app supervisor's side of `rampart-unpack read` (reader.h has the record and why): open and
 * bind the sockets that need privilege (the audit multicast group: CAP_AUDIT_READ, and audit
 * switched on if it is off: CAP_AUDIT_CONTROL; the NFLOG group is bound by the network policy),
 * start the reader with them as the unpack user with no capability, restart it with a backoff when
 * it dies (said once a death in the log), and take its records: each decoded and checked
 * (rp_reader_decode), a network refusal recorded for its component, a Landlock refusal mapped to
 * its app by its domain.
 *
 * The domains' mapping is the supervisor's, not the reader's: a domain is an app's when its
 * LANDLOCK_DOMAIN record names the init of a compartment this supervisor runs, with the app's uid
 * as its creator's (pid numbers are
 * reused, a domain ID never is within a boot; an ACCESS record names only the domain), and only
 * the supervisor knows which pids are its compartments' inits at the moment a record comes: the
 * reader would have to be told, and a reader that lied could then move refusals between apps.
 * Kept here, what a compromised reader can do is forge or drop refusals naming a domain or a
 * component, which it could anyway.
 */
#ifndef RAMPART_MONITOR_EVREADER_H
#define RAMPART_MONITOR_EVREADER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"
#include "reader.h"

#define RP_EVREADER_PER_WAKE 64          /* records taken per rp_evreader_handle; the rest wait */
#define RP_EVREADER_DOMAINS 64           /* domains remembered (the oldest is forgotten) */
#define RP_EVREADER_HELD 4               /* first refusals awaiting their domain's record */
#define RP_EVREADER_BACKOFF_MAX_MS 30000 /* a dying reader restarts after 1 s, 2 s, ... this */
#define RP_EVREADER_STEADY_MS 60000      /* a reader that ran this long restarts after 1 s again */
#define RP_EVREADER_SAY_MS 60000         /* a repeated warning: at most this often, with a count */

/* What the supervisor says of a Landlock domain's creator (ours). */
typedef enum rp_evreader_owner {
    RP_EVREADER_NOT_OURS = 0, /* not a compartment's init */
    RP_EVREADER_OURS,         /* a compartment's init, as its app's uid */
    RP_EVREADER_OTHER_UID,    /* an init's pid number, as another uid: a reused pid (warned) */
} rp_evreader_owner_t;

/* The supervisor's side: whether pid is the init of a compartment it runs and uid (the domain's
 * creator's, as the host numbers it) that compartment's app's uid (ours: RP_EVREADER_OURS;
 * RP_EVREADER_OTHER_UID with *component set when the pid is an init's and the uid another's: a pid
 * is reused, and a domain made by another user's process whose pid an init took later is not the
 * app's; NULL: none is), a Landlock refusal of that compartment's app (refused: record it,
 * rate-limited per run), and a refused packet of a component or a nameless event (net, component
 * "": record it; rp_evreader_record_net does). */
typedef struct rp_evreader_hooks {
    rp_evreader_owner_t (*ours)(pid_t init, uint32_t uid, const char **component, void *ctx);
    void (*refused)(pid_t init, const char *reason, void *ctx);
    void (*net)(rp_event_kind_t kind, const char *component, const char *reason, void *ctx);
    void *ctx;
} rp_evreader_hooks_t;

typedef struct rp_evreader {
    int audit_fd;       /* the bound audit socket, -1: off (why says why) */
    char why[200];      /* "" when the audit socket is had */
    int nflog_fd;       /* the network policy's (not ours to close), -1: none */
    int chan;           /* our end of the pair, -1: no reader running */
    pid_t pid;          /* the reader, 0: none */
    int64_t started_ms; /* when it was started */
    int64_t restart_ms; /* when to start it again (chan -1), 0: not due */
    long backoff_ms;    /* the next wait */
    uint64_t deaths;    /* how many times it died */
    uint64_t lost;      /* records the kernel dropped, as the reader counted them */
    /* The kernel's own count of the audit records it dropped (its queue past backlog_limit: they
     * never reach the reader's socket), read on a request socket of the supervisor's own each tick
     * (AUDIT_GET: CAP_AUDIT_CONTROL, kept by the supervisor, never the reader's). */
    int audit_req;               /* -1: not read (no audit, or it failed once: said) */
    bool kernel_lost_known;      /* kernel_lost holds a first reading */
    uint32_t kernel_lost;        /* the counter at the last reading */
    uint64_t kernel_lost_new;    /* grown since it was last said */
    uint64_t kernel_lost_all;    /* grown since the supervisor started */
    int64_t kernel_lost_said_ms; /* when it was last said (RP_EVREADER_SAY_MS) */
    uint64_t other_uid;        /* domains by an init's pid as another uid (RP_EVREADER_OTHER_UID) */
    uint64_t other_uid_new;    /* of which not yet said */
    int64_t other_uid_said_ms; /* when last said */
    char helper[4096];         /* `rampart-unpack read` */
    struct {
        uint64_t domain;
        pid_t init;
    } domains[RP_EVREADER_DOMAINS];
    size_t next; /* the slot the next domain takes */
    /* Refusals whose domain's record has not come yet (another event's records may come
     * between a refusal and its domain's record); the oldest gives way. */
    rp_reader_record_t held[RP_EVREADER_HELD];
    bool holding[RP_EVREADER_HELD];
    size_t next_held;
    bool audit_on_by_us; /* audit was off: rp_evreader_open turned it on (host-wide) */
} rp_evreader_t;

/* Open the audit socket when audit is true (r->why says why when it cannot be had: never fails
 * the caller) and start the reader with it and nflog_fd (the network policy's bound NFLOG socket,
 * or -1). helper: rampart-unpack's path; NULL: beside this program. */
void rp_evreader_open(rp_evreader_t *r, bool audit, int nflog_fd, const char *helper);

/* Audit's state, host-wide: enabled (0 off, 1 on, 2 locked on), or -1 when it cannot be read.
 * (The supervisor's and the tests'.) */
int rp_evreader_audit_enabled(void);

/* Audit switched on or off, host-wide (CAP_AUDIT_CONTROL): the supervisor turns it off again at
 * its stop when it turned it on (audit_on_by_us, or a killed supervisor's mark). An error: why. */
rp_err_t rp_evreader_audit_switch(bool on, char *why, size_t cap) RP_MUST_CHECK;

/* The net hook that records a refused packet in the event log of the state directory ctx. */
void rp_evreader_record_net(rp_event_kind_t kind, const char *component, const char *reason,
                            void *ctx);

/* Poll it for reading (-1: no reader running). */
int rp_evreader_fd(const rp_evreader_t *r);

/* Take what is waiting, at most RP_EVREADER_PER_WAKE records; a reader gone is reaped, said once
 * and its restart planned. */
void rp_evreader_handle(rp_evreader_t *r, const rp_evreader_hooks_t *hooks);

/* Take one record (rp_evreader_handle's, after decoding): the mapping of Landlock's domains. */
void rp_evreader_take(rp_evreader_t *r, const rp_reader_record_t *rec,
                      const rp_evreader_hooks_t *hooks);

/* Call at least once a second: restarts a dead reader when its backoff is over, and reads the
 * kernel's count of the audit records it dropped: when it grew, says so (a log line and one
 * nameless landlock event by hooks->net, at most once per RP_EVREADER_SAY_MS, with the number):
 * an app that floods the audit queue with refusals of its own domain can hide another's, and
 * this says that some were hidden. */
void rp_evreader_tick(rp_evreader_t *r, const rp_evreader_hooks_t *hooks);

/* One reading of the kernel's lost counter taken (rp_evreader_tick's, after AUDIT_GET): the first
 * is the base; growth is said as rp_evreader_tick says. */
void rp_evreader_kernel_lost(rp_evreader_t *r, uint32_t lost, const rp_evreader_hooks_t *hooks);

/* The line in an app's missing layers when its Landlock refusals are not seen (none when they
 * are, or when it has no Landlock at all: abi 0). */
void rp_evreader_note_missing(const rp_evreader_t *r, int landlock_abi, char *missing, size_t cap);

/* Stop the reader and close the audit socket. */
void rp_evreader_close(rp_evreader_t *r);

#endif /* RAMPART_MONITOR_EVREADER_H */
