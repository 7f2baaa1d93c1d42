/*
 * The settings the service gives the device for its group, as the agent learns, keeps and
 * applies them: the one owner of their form in the service's answer ("settings" of the status
 * report's answer, docs/api.md), of S/agent/settings.json, and of telling the monitor (SETTINGS,
 * type 19). Today one setting: crash capture (docs/failure-reporting.md), on unless the operator
 * turned it off for the device's group.
 */
#ifndef RAMPART_AGENT_SETTINGS_H
#define RAMPART_AGENT_SETTINGS_H

#include <stdbool.h>

#include <jansson.h>

#include "agent.h"

typedef struct rp_settings {
    bool crash_capture; /* crashes are captured, queued and sent */
} rp_settings_t;

/* What a device that never heard from the service does. */
#define RP_SETTINGS_DEFAULT ((rp_settings_t){.crash_capture = true})

/* The service's "settings" object into *out: {"crash_capture": true|false}; keys this version
 * does not know are ignored (a newer service). RP_ERR_MALFORMED (with *out untouched): not an
 * object, or crash_capture missing or not a boolean. */
rp_err_t rp_settings_parse(const json_t *o, rp_settings_t *out) RP_MUST_CHECK;

/* The settings kept in S/agent/settings.json; the defaults when there are none. A file that does
 * not parse reads as crash capture off (said): the operator may have said no. */
rp_settings_t rp_settings_load(const rp_agent_t *a);

/* Learn the service's "settings" object: kept (atomically) when they changed, and told to the
 * monitor each time when one serves S (it keeps its own copy: a monitor that missed one learns
 * it at the next report). RP_ERR_MALFORMED: the object is not settings (nothing changed). */
rp_err_t rp_settings_learn(const rp_agent_t *a, const json_t *o) RP_MUST_CHECK;

#endif /* RAMPART_AGENT_SETTINGS_H */
