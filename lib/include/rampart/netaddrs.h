/*
 * The resolved addresses of an app's allowed names, in the small binary form rampart-unpack
 * answers (`rampart-unpack resolve NAME...`) and the monitor's network policy decodes. The names
 * are resolved in that confined child, never with privilege; what comes back is checked here,
 * every field, before the policy puts one address in a set or a hosts file.
 *
 * The form, for the N names asked, in their order, nothing before or after:
 *
 *   per name: count (1 byte, 0 to RP_NETADDRS_PER_NAME; 0: it does not resolve now),
 *             then count IPv4 addresses (4 bytes each, network order), each usable
 *             (rp_netaddrs_usable) and listed once
 */
#ifndef RAMPART_NETADDRS_H
#define RAMPART_NETADDRS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"

#define RP_NETADDRS_PER_NAME 8u   /* addresses kept per name */
#define RP_NETADDRS_NAMES_MAX 32u /* names per answer (RP_MANIFEST_CONNECTIONS_MAX) */
#define RP_NETADDRS_BIN_MAX (RP_NETADDRS_NAMES_MAX * (1 + 4 * RP_NETADDRS_PER_NAME))
/* The /16 the apps' links are numbered from (the monitor's network policy, netpolicy.h): the apps'
 * gateways and the apps themselves. Host order. */
#define RP_NETADDRS_APPS_NET 0x647f0000u /* 100.127.0.0/16 */

/* One name's addresses. */
typedef struct rp_netaddrs {
    struct in_addr addr[RP_NETADDRS_PER_NAME];
    uint8_t n;
} rp_netaddrs_t;

/* Whether a (network order) is an address a name may resolve to for an app: not "this network"
 * (0/8), not loopback (127/8), not link-local (169.254/16: the cloud metadata address), not the
 * apps' own range (RP_NETADDRS_APPS_NET: the gateways, that is the device, and the other apps),
 * not multicast, reserved or broadcast (224/4 and above). (The device's other addresses are the
 * monitor's to drop: they are known only where it runs. An IP literal in a signed manifest is
 * the tenant's choice and is not judged here.) */
bool rp_netaddrs_usable(struct in_addr a);

/* Add a to *one when it is usable, not there yet, and there is room. Returns whether it was. */
bool rp_netaddrs_add(rp_netaddrs_t *one, struct in_addr a);

/* The form of names[0..n) (n <= RP_NETADDRS_NAMES_MAX). OUT: out[0..*len), at most
 * RP_NETADDRS_BIN_MAX bytes. */
rp_err_t rp_netaddrs_encode(const rp_netaddrs_t *names, size_t n, uint8_t *out, size_t cap,
                            size_t *len) RP_MUST_CHECK;

/* The answer for n names read back, refused unless it is exactly their form: each count within
 * RP_NETADDRS_PER_NAME, each address usable and listed once in its name, no byte short or over.
 * Bounded, allocation-free, fuzzed (fuzz/netaddrs.c). OUT: out[0..n) (all empty on a refusal,
 * why saying what was wrong). */
rp_err_t rp_netaddrs_decode(const uint8_t *buf, size_t len, size_t n, rp_netaddrs_t *out, char *why,
                            size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_NETADDRS_H */
