/*
 * The event readers' record (issue 10, docs/monitor.md "Getting to 3,000", step 6b): the kernel's
 * reports of refusals carry bytes an app chose (a Landlock audit record holds the app's paths, an
 * NFLOG message the refused packet's headers), so they are parsed by `rampart-unpack read`
 * (device/reader/main.c), a long-lived child of the app supervisor running as the unpack user with
 * no capability at all, no_new_privs, a seccomp allow-list and Landlock (nothing on disk). The
 * supervisor opens and binds the two sockets (the audit multicast group needs CAP_AUDIT_READ at
 * bind, NFLOG's group CAP_NET_ADMIN; reading a bound socket needs neither) and hands them over;
 * the reader answers each refusal as one fixed record on a SOCK_SEQPACKET pair, which the
 * supervisor decodes with every field checked (rp_reader_decode, fuzzed: fuzz/reader_record.c).
 *
 * A record, RP_READER_RECORD_LEN bytes, little-endian:
 *   [0]      kind (rp_reader_kind_t)
 *   [1]      the reason's length (0 to RP_EVENT_REASON_MAX)
 *   [2]      the component's length (0 to RP_COMPONENT_NAME_MAX)
 *   [3]      0
 *   [4..8)   number: the pid of DOMAIN_NEW, the count of LOST, else 0
 *   [8..16)  the Landlock domain of LANDLOCK, DOMAIN_NEW, DOMAIN_GONE (not 0), else 0
 *   [16..20) uid: the uid (as the host numbers it) of DOMAIN_NEW's creator (any, root's 0 too),
 *            else 0
 *   [20..52) the component of CONNECTION, LISTEN (rp_component_name_valid), zero padded
 *   [52..307) the reason of LANDLOCK, CONNECTION, LISTEN (not empty; UTF-8 with no control
 *            character: rp_text_utf8_valid, rp_text_no_controls; the reader writes ASCII only),
 *            zero padded
 * A field a kind does not use is zero; anything else is refused whole.
 */
#ifndef RAMPART_MONITOR_READER_H
#define RAMPART_MONITOR_READER_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "rampart/component.h"
#include "rampart/error.h"

typedef enum rp_reader_kind {
    RP_READER_LANDLOCK = 1, /* a Landlock refusal: domain, reason */
    RP_READER_DOMAIN_NEW,   /* a Landlock domain, the pid that made it and its uid: domain, number,
                               uid */
    RP_READER_DOMAIN_GONE,  /* a Landlock domain's last process is gone: domain */
    RP_READER_CONNECTION,   /* the network policy refused a connection: component, reason */
    RP_READER_LISTEN,       /* ... a packet to an unlisted port: component, reason */
    RP_READER_LOST_AUDIT,   /* the kernel dropped audit records (the socket overran): number */
    RP_READER_LOST_NFLOG,   /* ... refused packets' messages: number */
    RP_READER_KIND_END
} rp_reader_kind_t;

#define RP_READER_OFF_UID 16
#define RP_READER_OFF_COMPONENT 20
#define RP_READER_OFF_REASON (RP_READER_OFF_COMPONENT + RP_COMPONENT_NAME_MAX)
#define RP_READER_RECORD_LEN (RP_READER_OFF_REASON + RP_EVENT_REASON_MAX)

typedef struct rp_reader_record {
    rp_reader_kind_t kind;
    uint32_t number;
    uint64_t domain;
    uint32_t uid;
    char component[RP_COMPONENT_NAME_MAX + 1];
    char reason[RP_EVENT_REASON_MAX + 1];
} rp_reader_record_t;

/* The reader's side: r in its record form. RP_ERR_INVALID_ARG: r breaks a rule decode holds. */
rp_err_t rp_reader_encode(const rp_reader_record_t *r,
                          uint8_t out[RP_READER_RECORD_LEN]) RP_MUST_CHECK;

/* The supervisor's side: in[0..len) checked field by field. RP_ERR_MALFORMED: refused. */
rp_err_t rp_reader_decode(const uint8_t *in, size_t len, rp_reader_record_t *r) RP_MUST_CHECK;

#endif /* RAMPART_MONITOR_READER_H */
