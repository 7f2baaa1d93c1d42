/*
 * The crashes the monitor kept (device/monitor/crash.h), as the agent reads, unwinds and shows
 * them: `rampart-agent crashes` and, in `run`, each new crash handed to the report queue as a
 * `crash` report (docs/failure-reporting.md). Unprivileged; linked into rampart-agent only.
 */
#ifndef RAMPART_AGENT_CRASHES_H
#define RAMPART_AGENT_CRASHES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "agent.h"
#include "crash.h"

/* The kept crash numbered from or after: through the monitor (CRASHES, piece by piece) when it
 * serves S, otherwise from S/crashes/. OUT: *c, *found (false: none from there), *dropped. */
rp_err_t rp_crashes_get(const rp_agent_t *a, uint64_t from, rp_crash_t *c, bool *found,
                        uint64_t *dropped) RP_MUST_CHECK;

/* The contract's `crash` object (docs/failure-reporting.md), unwound here. NULL: no memory. */
json_t *rp_crash_object(const char *state_dir, const rp_crash_t *c);

/* `rampart-agent crashes --state-dir S [--output json]`: 0 listed, 1 failed. */
int rp_crashes_list(const rp_agent_t *a, bool json, FILE *out);

/* Before each upload: each crash past the queue's crash cursor (reportq.h) becomes a `crash`
 * report, queued with the cursor moving past it in the same step (exactly once). */
void rp_crashes_report_new(const rp_agent_t *a);

#endif /* RAMPART_AGENT_CRASHES_H */
