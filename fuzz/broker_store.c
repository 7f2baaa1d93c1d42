/*
 * Fuzz target: a record of the app broker's store of kept ends as the next broker reads it back
 * (rp_store_rec_check, device/broker/store.h). The first byte is how many descriptors came with
 * it, the rest the bytes read. What is taken names a list that exists, its place within its
 * snapshot, one descriptor an end, and no component or a valid name that ends within its field.
 */
#include <stdlib.h>
#include <string.h>

#include "rampart/component.h"
#include "store.h"

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
         r.n > RP_APPCHAN_FDS_APP_MAX || memchr(r.component, '\0', sizeof(r.component)) == NULL ||
         (r.component[0] != '\0' && !rp_component_name_valid(r.component, strlen(r.component)))))
        abort();
    return 0;
}
