/*
 * Fuzz target: a list's paging parameters as a request's query carries them (rp_page_parse,
 * server/api/paging.c), then the page they ask for cut from a small list. Accepted values are within
 * their bounds; a page has at most limit rows, all after the cursor, in ID order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "paging.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *ids[] = {"b", "a", "d", "c", "aa", "ab"};
    char query[4096];
    rp_page_t p;
    json_t *list, *page, *next;
    const char *prev = "";

    if (size >= sizeof(query))
        return 0;
    memcpy(query, data, size);
    query[size] = '\0';
    if (!rp_page_parse(query, &p))
        return 0;
    if (p.limit < 1 || p.limit > RP_PAGE_MAX || strlen(p.after) > RP_PAGE_KEY_MAX ||
        strlen(p.prefix) > RP_PAGE_KEY_MAX)
        abort();
    list = json_array();
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        json_array_append_new(list, json_pack("{s:s}", "id", ids[i]));
    page = rp_page_cut(list, &p, "id", "id", &next);
    if (page == NULL || json_array_size(page) > (size_t)p.limit)
        abort();
    for (size_t i = 0; i < json_array_size(page); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(page, i), "id"));
        if (strcmp(id, p.after) <= 0 || strcmp(id, prev) <= 0 ||
            strncmp(id, p.prefix, strlen(p.prefix)) != 0)
            abort();
        prev = id;
    }
    json_decref(next);
    json_decref(page);
    json_decref(list);
    return 0;
}
