/*
 * Landlock's refusals as security events (issue 10). Since Landlock ABI 7 the kernel reports a
 * refusal through the audit subsystem: a LANDLOCK_ACCESS record (type 1423: "domain=ID
 * blockers=fs.write_file path=... ", "blockers=net.connect_tcp daddr=A dest=P"), and with the
 * first refusal of a domain a LANDLOCK_DOMAIN record (1424: "domain=ID status=allocated ...
 * pid=P uid=U", P the process that restricted itself as the host numbers it, U its uid then: the
 * compartment's init, and the app's uid;
 * "status=deallocated" when the domain's last process is gone). The app's init restricts itself
 * with LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON and LOG_SAME_EXEC_OFF (compartment.c): the app's
 * refusals, after the init runs it, are logged; the init's own are not.
 *
 * The app supervisor binds a NETLINK_AUDIT socket to the read-only multicast group
 * (CAP_AUDIT_READ; audit switched on if it is off, CAP_AUDIT_CONTROL: evreader.c) and hands it to
 * `rampart-unpack read`, which parses the records here, with no capability, and sends each as a
 * checked record (reader.h); the supervisor maps each to its app by the domain (evreader.h).
 * Records are hostile text (paths are the app's): the parser is bounded, checked and fuzzed
 * (fuzz/audit_record.c), and a reason holds printable ASCII only (rp_text_no_controls checked
 * again by the reader's encoder and the supervisor's decoder).
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

typedef enum rp_audit_kind {
    RP_AUDIT_REFUSAL = 1, /* LANDLOCK_ACCESS: .domain, .reason */
    RP_AUDIT_DOMAIN_NEW,  /* LANDLOCK_DOMAIN status=allocated: .domain, .pid, .uid */
    RP_AUDIT_DOMAIN_GONE  /* LANDLOCK_DOMAIN status=deallocated: .domain */
} rp_audit_kind_t;

typedef struct rp_audit_record {
    rp_audit_kind_t kind;
    uint64_t serial; /* the audit event's number: the records of one refusal share it */
    uint64_t domain;
    pid_t pid;
    uint32_t uid; /* DOMAIN_NEW: its creator's uid as the host numbers it (the record's uid=) */
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

#endif /* RAMPART_MONITOR_AUDIT_H */
