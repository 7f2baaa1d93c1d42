/*
 * Threat detection and automatic quarantine (threat.h). Not built yet: every caller already hands
 * its signals here, so the detection lands without touching the ingestion paths.
 */
#include "threat.h"

void rp_threat_observe(rp_worker_t *w, const rp_threat_signal_t *sig, size_t n)
{
    (void)w;
    (void)sig;
    (void)n;
}
