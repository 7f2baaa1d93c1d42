/*
 * The device's certificate in use: mutual TLS between devices of one tenant (device to device),
 * with the identity key wherever it lives (in the TPM, through the provider). Clouds and brokers
 * take the same certificate (tests/e2e/mqtt.sh shows mosquitto doing so).
 */
#ifndef RAMPART_AGENT_TLS_H
#define RAMPART_AGENT_TLS_H

#include "agent.h"

/* Accept one mutual-TLS connection on 127.0.0.1:port (0: any) from a device of the same
 * tenant, and print the peer's device ID. OUT: *bound_port is reported on stdout first. */
rp_err_t rp_agent_peer_serve(rp_agent_t *a, const char *host, int port) RP_MUST_CHECK;

/* Connect to a device at host:port over mutual TLS and print its device ID. */
rp_err_t rp_agent_peer_connect(rp_agent_t *a, const char *host, int port) RP_MUST_CHECK;

#endif /* RAMPART_AGENT_TLS_H */
