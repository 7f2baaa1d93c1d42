/*
 * Fuzz target: a record of the app broker's store of kept ends as the next broker reads it back
 * (rp_store_rec_check, device/broker/store.h). The first byte is how many descriptors came with
 * it, the rest the bytes read. What is taken names a list that exists, its place within its
 * snapshot, one descriptor an end, each end holding 1 to 20, and no component or a valid name that
 * ends within its field. (Its ends' until_ms are not checked: any is bounded as it is taken back,
 * broker.c's store_restore.)
 */
#include <stdlib.h>
#include <string.h>

#include "rampart/component.h"
#include "store.h"

/* Whether each of r's ends holds 1 to RP_APPCHAN_FDS_APP_MAX. */
static int ends_counted(const rp_store_rec_t *r)
{
    for (unsigned e = 0; e < r->n && e < RP_APPCHAN_FDS_APP_MAX; e++)
        if (r->fds[e] == 0 || r->fds[e] > RP_APPCHAN_FDS_APP_MAX)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_store_rec_t r;

    if (size < 1)
        return 0;
    memset(&r, 0, sizeof(r));
    memcpy(&r, data + 1, size - 1 < sizeof(r) ? size - 1 : sizeof(r));
    if (rp_store_rec_check(&r, size - 1, data[0]) &&
        (r.list >= RP_STORE_LISTS || r.i >= r.m || r.m > RP_STORE_LISTS || r.n != data[0] ||
         r.n > RP_APPCHAN_FDS_APP_MAX || !ends_counted(&r) ||
         memchr(r.component, '\0', sizeof(r.component)) == NULL ||
         (r.component[0] != '\0' && !rp_component_name_valid(r.component, strlen(r.component)))))
        abort();
    return 0;
}
