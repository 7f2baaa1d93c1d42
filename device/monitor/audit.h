/*
 * Landlock's refusals as security events (issue 10). Since Landlock ABI 7 the kernel reports a
 * refusal through the audit subsystem: a LANDLOCK_ACCESS record (type 1423: "domain=ID
 * blockers=fs.write_file path=... ", "blockers=net.connect_tcp daddr=A dest=P"), and with the
 * first refusal of a domain a LANDLOCK_DOMAIN record (1424: "domain=ID status=allocated ...
 * pid=P", P the process that restricted itself as the host numbers it: the compartment's init;
 * "status=deallocated" when the domain's last process is gone). The app's init restricts itself
 * with LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON and LOG_SAME_EXEC_OFF (compartment.c): the app's
 * refusals, after the init runs it, are logged; the init's own are not.
 *
 * The app supervisor reads them (rp_audit_open: a NETLINK_AUDIT socket bound to the read-only
 * multicast group, CAP_AUDIT_READ; audit switched on if it is off, CAP_AUDIT_CONTROL) and maps
 * each to its app by the domain: a domain is the app's when its LANDLOCK_DOMAIN record names the
 * init of a compartment it runs (pid numbers are reused, a domain ID never is within a boot; an
 * ACCESS record names only the domain). Records are hostile text (paths are the app's): the
 * parser is bounded, checked and fuzzed (fuzz/audit_record.c), and a reason holds printable ASCII
 * only (rp_text_no_controls checked again before it is recorded).
 */
#ifndef RAMPART_MONITOR_AUDIT_H
#define RAMPART_MONITOR_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "events.h"
#include "rampart/error.h"

#define RP_AUDIT_LANDLOCK_ACCESS 1423 /* AUDIT_LANDLOCK_ACCESS (linux/audit.h, 6.15) */
#define RP_AUDIT_LANDLOCK_DOMAIN 1424 /* AUDIT_LANDLOCK_DOMAIN */
#define RP_AUDIT_RECORD_MAX 8970      /* MAX_AUDIT_MESSAGE_LENGTH: a longer one is refused */
#define RP_AUDIT_PER_WAKE 64          /* records read per rp_audit_handle; the rest wait */
#define RP_AUDIT_DOMAINS 64           /* domains remembered (the oldest is forgotten) */
#define RP_AUDIT_HELD 4               /* first refusals awaiting their domain's record */

typedef enum rp_audit_kind {
    RP_AUDIT_REFUSAL = 1, /* LANDLOCK_ACCESS: .domain, .reason */
    RP_AUDIT_DOMAIN_NEW,  /* LANDLOCK_DOMAIN status=allocated: .domain, .pid */
    RP_AUDIT_DOMAIN_GONE  /* LANDLOCK_DOMAIN status=deallocated: .domain */
} rp_audit_kind_t;

typedef struct rp_audit_record {
    rp_audit_kind_t kind;
    uint64_t serial; /* the audit event's number: the records of one refusal share it */
    uint64_t domain;
    pid_t pid;
    char reason[RP_EVENT_REASON_MAX + 1]; /* "write to /etc/passwd refused by Landlock" */
} rp_audit_record_t;

/*
 * Parse one record: type, its text (text[0..len), not terminated; "audit(T:SERIAL): k=v ...").
 * RP_OK: *out filled; RP_ERR_NOT_FOUND: not a Landlock record (or one this reader does not use);
 * RP_ERR_MALFORMED: a Landlock record that does not parse; RP_ERR_TOO_LARGE: len is over
 * RP_AUDIT_RECORD_MAX.
 */
rp_err_t rp_audit_parse(int type, const char *text, size_t len,
                        rp_audit_record_t *out) RP_MUST_CHECK;

/* The supervisor's side: whether pid is the init of a compartment it runs (ours), and a refusal
 * of that compartment's app (refused: record it, rate-limited per run). */
typedef struct rp_audit_hooks {
    bool (*ours)(pid_t init, void *ctx);
    void (*refused)(pid_t init, const char *reason, void *ctx);
    void *ctx;
} rp_audit_hooks_t;

typedef struct rp_audit {
    int fd;        /* -1: off (why says why) */
    char why[200]; /* "" when on */
    struct {
        uint64_t domain;
        pid_t init;
    } domains[RP_AUDIT_DOMAINS];
    size_t next; /* the slot the next domain takes */
    /* Refusals whose domain's record has not come yet (another event's records may come
     * between a refusal and its domain's record); the oldest gives way. */
    rp_audit_record_t held[RP_AUDIT_HELD];
    bool holding[RP_AUDIT_HELD];
    size_t next_held;
    uint8_t buf[RP_AUDIT_RECORD_MAX + 64];
} rp_audit_t;

/* Open the reader. Never fails the caller: a reader that cannot be had is off, au->why saying
 * why (rp_audit_note_missing puts it in an app's missing layers). */
void rp_audit_open(rp_audit_t *au);
int rp_audit_fd(const rp_audit_t *au);

/* Read what is waiting, at most RP_AUDIT_PER_WAKE records, and hand each refusal of one of ours
 * to hooks->refused. */
void rp_audit_handle(rp_audit_t *au, const rp_audit_hooks_t *hooks);

/* The line in an app's missing layers when its Landlock refusals are not seen (none when they
 * are, or when it has no Landlock at all: abi 0). */
void rp_audit_note_missing(const rp_audit_t *au, int landlock_abi, char *missing, size_t cap);

void rp_audit_close(rp_audit_t *au);

#endif /* RAMPART_MONITOR_AUDIT_H */
