/*
 * Open connections counted per client address, for the per-address connection cap
 * (--max-connections-per-address): an exact count per address in a table shared by the workers
 * under one mutex. An IPv6 client is counted by its /64 (one subscriber's network: an attacker
 * with one has 2^64 addresses), an IPv4 one, or an IPv4-mapped IPv6 one, by its address. The
 * table is sized for every connection the service may hold, so it never runs out of room before
 * the connection limit does; should it, a connection is refused (fail closed). Pure: unit-tested.
 */
#ifndef RAMPART_PEERS_H
#define RAMPART_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rampart/error.h"

#define RP_PEER_KEY_LEN 16

typedef struct rp_peers rp_peers_t;

/* A table for up to max_open connections open at once. OUT: *peers. */
rp_err_t rp_peers_new(size_t max_open, rp_peers_t **peers) RP_MUST_CHECK;
void rp_peers_free(rp_peers_t *peers);

/* The key an address is counted under; false for an address family that has none (not IP). */
bool rp_peer_key(const struct sockaddr *sa, socklen_t len, uint8_t key[RP_PEER_KEY_LEN]);

/* Count one more connection from key if fewer than limit are open from it; false (nothing
 * counted) when limit are open already, or the table is full. */
bool rp_peers_take(rp_peers_t *peers, const uint8_t key[RP_PEER_KEY_LEN], unsigned limit);
/* One connection counted by rp_peers_take() has closed. */
void rp_peers_release(rp_peers_t *peers, const uint8_t key[RP_PEER_KEY_LEN]);
/* Connections open from key now (for tests). */
unsigned rp_peers_open(rp_peers_t *peers, const uint8_t key[RP_PEER_KEY_LEN]);

#endif /* RAMPART_PEERS_H */
