/*
 * The store's record (store.h): checked as it is read back.
 */
#include <string.h>

#include "rampart/component.h"
#include "store.h"

_Static_assert(RP_STORE_LISTS <= UINT8_MAX && RP_APPCHAN_FDS_APP_MAX <= UINT8_MAX,
               "a record's fields are bytes");

bool rp_store_rec_check(rp_store_rec_t *r, size_t got, unsigned nfds)
{
    if (got != sizeof(*r) || r->n != nfds || r->n > RP_APPCHAN_FDS_APP_MAX ||
        r->list >= RP_STORE_LISTS || r->m == 0 || r->m > RP_STORE_LISTS || r->i >= r->m)
        return false;
    for (unsigned e = 0; e < r->n; e++) /* (a kept end holds at least one: appchan.c) */
        if (r->fds[e] == 0 || r->fds[e] > RP_APPCHAN_FDS_APP_MAX)
            return false;
    r->component[sizeof(r->component) - 1] = '\0';
    /* (it is compared and logged: a name, or none) */
    return r->component[0] == '\0' || rp_component_name_valid(r->component, strlen(r->component));
}
