/*
 * Fuzz target: a list's paging parameters as a request's query carries them (rp_page_parse,
 * server/api/paging.c), the prefix's index range the store's SQL reads the page by, and the
 * "next_after" answered after a page. Accepted values are within their bounds; every string that
 * starts with the prefix is at or above it and below its successor (upto); next_after is the last
 * ID of a full page and null otherwise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "paging.h"

static int cmp_bytes(const char *a, const char *b)
{
    return strcmp(a, b); /* strcmp compares as unsigned char: SQLite's and PostgreSQL's C order */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *ids[] = {"a", "aa", "ab", "b", "c", "d"};
    char query[4096];
    char longer[RP_PAGE_KEY_MAX + 8];
    rp_page_t p;
    json_t *page, *next;
    size_t n, rows;

    if (size >= sizeof(query))
        return 0;
    memcpy(query, data, size);
    query[size] = '\0';
    if (!rp_page_parse(query, &p))
        return 0;
    if (p.limit < 1 || p.limit > RP_PAGE_MAX || strlen(p.after) > RP_PAGE_KEY_MAX ||
        strlen(p.prefix) > RP_PAGE_KEY_MAX || strlen(p.upto) > RP_PAGE_KEY_MAX)
        abort();

    /* The prefix's range: the prefix itself and the prefix followed by the highest byte are in
     * [prefix, upto); upto is none only for "" or all 0xff bytes. */
    n = strlen(p.prefix);
    memcpy(longer, p.prefix, n);
    memset(longer + n, 0xff, 4);
    longer[n + 4] = '\0';
    if (cmp_bytes(longer, p.prefix) < 0)
        abort();
    if (!p.no_upto && (cmp_bytes(p.prefix, p.upto) >= 0 || cmp_bytes(longer, p.upto) >= 0))
        abort();
    if (p.no_upto && n > 0 && strspn(p.prefix, "\xff") != n)
        abort();

    /* next_after after a page of the first min(limit, 6) IDs. */
    rows = (size_t)p.limit < sizeof(ids) / sizeof(ids[0]) ? (size_t)p.limit
                                                          : sizeof(ids) / sizeof(ids[0]);
    page = json_array();
    if (page == NULL)
        abort();
    for (size_t i = 0; i < rows; i++)
        json_array_append_new(page, json_pack("{s:s}", "id", ids[i]));
    next = rp_page_next(page, &p, "id");
    if (next == NULL)
        abort();
    if (p.paged && rows == (size_t)p.limit) {
        if (!json_is_string(next) || strcmp(json_string_value(next), ids[rows - 1]) != 0)
            abort();
    } else if (!json_is_null(next)) {
        abort();
    }
    json_decref(next);
    json_decref(page);
    return 0;
}
