/*
 * Channel-bound attestation (docs/protocol.md, "The evidence's nonce"): the evidence's
 * eat_nonce is a TLS exporter (RFC 8446 section 7.5; the use RFC 9266 makes of it) of the very
 * connection that carries the evidence, so one request on one connection attests, with no nonce
 * asked for first and none remembered after. The device computes it on its side of the
 * connection, the service on its own; they agree only on that connection. This module owns the
 * exporter's label, its length and the rule that only a TLS 1.3 connection has one.
 */
#ifndef RAMPART_ATTEST_BINDING_H
#define RAMPART_ATTEST_BINDING_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "rampart/error.h"

/* Persisted and on-wire constants (never change). The length is what tells bound evidence from
 * evidence answering a service nonce (RP_NONCE_SIZE, 32 bytes): an eat_nonce of 48 bytes is a
 * binding and nothing else, so the service can never take one for the other. */
#define RP_ATTEST_BINDING_LABEL "EXPORTER-rampart-attestation"
#define RP_ATTEST_BINDING_LEN 48

/*
 * The binding of ssl, a connection whose handshake is done: its exporter for the label above,
 * with an empty context. TLS 1.3 only (every handshake, resumed ones too, derives a fresh
 * exporter from its own ECDHE secret and transcript); any other version is RP_ERR_UNSUPPORTED, a
 * handshake not finished RP_ERR_INVALID_ARG. OUT: out, all of it, or wiped on failure.
 */
rp_err_t rp_attest_binding(SSL *ssl, uint8_t out[RP_ATTEST_BINDING_LEN]) RP_MUST_CHECK;

#endif /* RAMPART_ATTEST_BINDING_H */
