/*
 * The states an update goes through, one enum and one name table shared by the service, the
 * device agent and the CLI. The names are wire and disk strings (a device's report, the service's
 * counts, a component's recorded result): they never change, and a new state goes at the end.
 */
#ifndef RAMPART_UPDATE_STATE_H
#define RAMPART_UPDATE_STATE_H

#include <stdbool.h>

#include "rampart/error.h"

typedef enum rp_update_state {
    RP_UPDATE_NONE = 0,    /* "": nothing happened yet (a component never updated) */
    RP_UPDATE_PENDING,     /* "pending": selected by a deployment, nothing reported yet */
    RP_UPDATE_DOWNLOADING, /* "downloading" */
    RP_UPDATE_INSTALLED,   /* "installed": confirmed healthy (or running already) */
    RP_UPDATE_FAILED,      /* "failed": the device could not do its part (download, I/O) */
    RP_UPDATE_ROLLED_BACK, /* "rolled_back": tried, unhealthy, the previous version runs */
    RP_UPDATE_REFUSED,     /* "refused": not signed, older, not what the metadata names... */
    RP_UPDATE_UNCHANGED,   /* "unchanged": the device runs this image already (device only) */
    RP_UPDATE_FELL_BACK,   /* "fell_back": the active slot stopped verifying (device only) */
    /* Not in the table (no name, never parsed, recorded or reported): rampart-monitor's INSTALL
     * answer for firmware of a component attached to an MCU, verified and on trial, handed to
     * its agent with the trial slot's descriptor; MCU_VERDICT ends it (docs/mcu.md). */
    RP_UPDATE_HANDED = 0x40,
} rp_update_state_t;

#define RP_UPDATE_STATE_COUNT 9

/* The state's name; NULL for a value outside the enum. */
const char *rp_update_state_name(rp_update_state_t state);

/* The state named s (exactly: case and spaces count). RP_ERR_INVALID_ARG for anything else. */
rp_err_t rp_update_state_parse(const char *s, rp_update_state_t *state) RP_MUST_CHECK;

/* Whether a device reports this state to the service, and so whether a deployment counts it:
 * pending, downloading, installed, failed, rolled_back, refused. */
bool rp_update_state_reported(rp_update_state_t state);

/* What the device tells the service for a local outcome: "unchanged" is "installed". */
rp_update_state_t rp_update_state_to_report(rp_update_state_t state);

#endif /* RAMPART_UPDATE_STATE_H */
