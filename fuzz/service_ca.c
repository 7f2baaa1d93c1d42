/*
 * Fuzz target: the service CAs an attestation answer publishes (service_ca), as the agent checks
 * them before it keeps them and whenever it reads them back (rp_agent_service_ca_valid,
 * device/agent/client.c). Whatever is accepted must be within the bound and be accepted again
 * (the check is a function of the bytes alone).
 */
#include <stdint.h>
#include <stdlib.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rp_agent_service_ca_valid((const char *)data, size) &&
        (size > RP_AGENT_SERVICE_CA_MAX || !rp_agent_service_ca_valid((const char *)data, size)))
        abort();
    return 0;
}
