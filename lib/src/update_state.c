/* The update states' one name table (see update_state.h). */
#include <string.h>

#include "rampart/update_state.h"

/* Persisted and on the wire: never rename one. */
static const char *const names[RP_UPDATE_STATE_COUNT] = {
    [RP_UPDATE_NONE] = "",
    [RP_UPDATE_PENDING] = "pending",
    [RP_UPDATE_DOWNLOADING] = "downloading",
    [RP_UPDATE_INSTALLED] = "installed",
    [RP_UPDATE_FAILED] = "failed",
    [RP_UPDATE_ROLLED_BACK] = "rolled_back",
    [RP_UPDATE_REFUSED] = "refused",
    [RP_UPDATE_UNCHANGED] = "unchanged",
    [RP_UPDATE_FELL_BACK] = "fell_back",
};

_Static_assert(RP_UPDATE_FELL_BACK + 1 == RP_UPDATE_STATE_COUNT, "a state without a name");

const char *rp_update_state_name(rp_update_state_t state)
{
    return (unsigned)state < RP_UPDATE_STATE_COUNT ? names[state] : NULL;
}

rp_err_t rp_update_state_parse(const char *s, rp_update_state_t *state)
{
    if (s == NULL || state == NULL)
        return RP_ERR_INVALID_ARG;
    for (unsigned i = 0; i < RP_UPDATE_STATE_COUNT; i++) {
        if (strcmp(s, names[i]) == 0) {
            *state = (rp_update_state_t)i;
            return RP_OK;
        }
    }
    return RP_ERR_INVALID_ARG;
}

bool rp_update_state_reported(rp_update_state_t state)
{
    return state >= RP_UPDATE_PENDING && state <= RP_UPDATE_REFUSED;
}

rp_update_state_t rp_update_state_to_report(rp_update_state_t state)
{
    return state == RP_UPDATE_UNCHANGED ? RP_UPDATE_INSTALLED : state;
}
