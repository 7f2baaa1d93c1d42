/*
 * A refused packet as the network policy's NFLOG group gives it (an app's bytes), read for its
 * event reason: `rampart-unpack read`'s, never the monitor's (reader.h).
 */
#ifndef RAMPART_MONITOR_PACKET_H
#define RAMPART_MONITOR_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"

/* The event reason of one logged packet (an IPv4 or IPv6 header and what follows), for kind 'c'
 * (connection: "10.0.0.9:80") or 'l' (listen: "udp 5683 from 10.0.0.5"). OUT: reason. */
rp_err_t rp_packet_reason(char kind, const uint8_t *pkt, size_t len, char *reason,
                          size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_MONITOR_PACKET_H */
