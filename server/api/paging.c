/*
 * Paging of the operator's lists (paging.h): the parameters' one parser and bounds, a prefix's
 * index range, and the answer with "next_after". The store reads each page in SQL, from `after`
 * on in its index, so a page costs the same at the first row and at the 100,000th.
 */
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "paging.h"

static bool key_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > RP_PAGE_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

bool rp_page_parse(const char *query, rp_page_t *p)
{
    struct evkeyvalq q;
    bool ok = true, seen_limit = false, seen_after = false, seen_prefix = false;

    memset(p, 0, sizeof(*p));
    p->limit = RP_PAGE_DEFAULT;
    p->no_upto = true;
    p->whole_max = RP_PAGE_WHOLE_MAX + 1; /* (one more: enough to tell it is too many) */
    if (query == NULL || query[0] == '\0')
        return true;
    if (evhttp_parse_query_str(query, &q) != 0)
        return false;
    for (struct evkeyval *kv = q.tqh_first; ok && kv != NULL; kv = kv->next.tqe_next) {
        p->paged = true;
        if (strcmp(kv->key, "limit") == 0 && !seen_limit) {
            char *end;
            long long v = strtoll(kv->value, &end, 10);

            seen_limit = true;
            ok = kv->value[0] >= '1' && kv->value[0] <= '9' && *end == '\0' && v >= 1 &&
                 v <= RP_PAGE_MAX;
            p->limit = ok ? (int)v : RP_PAGE_DEFAULT;
        } else if (strcmp(kv->key, "after") == 0 && !seen_after) {
            seen_after = true;
            ok = key_ok(kv->value);
            if (ok)
                memcpy(p->after, kv->value, strlen(kv->value) + 1);
        } else if (strcmp(kv->key, "prefix") == 0 && !seen_prefix) {
            seen_prefix = true;
            ok = key_ok(kv->value);
            if (ok)
                rp_page_set_prefix(p, kv->value);
        } else {
            ok = false; /* unknown or repeated */
        }
    }
    evhttp_clear_headers(&q);
    return ok;
}

bool rp_page_request(rp_req_t *r, rp_page_t *p)
{
    if (rp_page_parse(evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req)), p))
        return true;
    rp_reply_error(r, 400, "invalid",
                   "this list takes ?limit=N (1 to %d), ?after=ID and ?prefix=TEXT (1 to %d bytes)",
                   RP_PAGE_MAX, RP_PAGE_KEY_MAX);
    return false;
}

void rp_page_set_prefix(rp_page_t *p, const char *prefix)
{
    size_t n = strlen(prefix);

    if (n > RP_PAGE_KEY_MAX)
        n = RP_PAGE_KEY_MAX; /* (callers check first: rp_page_parse, the devices' own) */
    memcpy(p->prefix, prefix, n);
    p->prefix[n] = '\0';
    /* The successor: drop the trailing 0xff bytes (no byte follows them), then add one to the
     * last. "ab\xff" -> "ac": every string that starts with it is below, none at or above. */
    memcpy(p->upto, p->prefix, n + 1);
    while (n > 0 && (unsigned char)p->upto[n - 1] == 0xff)
        p->upto[--n] = '\0';
    p->no_upto = n == 0;
    if (n > 0)
        p->upto[n - 1] = (char)((unsigned char)p->upto[n - 1] + 1);
}

json_t *rp_page_next(json_t *page, const rp_page_t *p, const char *id_key)
{
    size_t n = json_array_size(page);
    json_t *row;
    const char *last;

    /* A full page may have more after it (the next page may be empty). */
    if (!p->paged || n == 0 || n < (size_t)p->limit)
        return json_null();
    row = json_array_get(page, n - 1);
    last = json_string_value(json_is_string(row) ? row : json_object_get(row, id_key));
    return last != NULL ? json_string(last) : json_null();
}

bool rp_page_whole_fits(rp_req_t *r, json_t *list, const rp_page_t *p, const char *what)
{
    if (p->paged || json_array_size(list) <= RP_PAGE_WHOLE_MAX)
        return true;
    rp_reply_error(r, 400, "paging_required",
                   "more than %d %s: ask for them a page at a time (?limit=%d, then "
                   "?after= the last one's ID with the same limit, until \"next_after\" is null)",
                   RP_PAGE_WHOLE_MAX, what, RP_PAGE_MAX);
    return false;
}

void rp_page_reply(rp_req_t *r, const char *key, json_t *page, const rp_page_t *p,
                   const char *id_key)
{
    if (!rp_page_whole_fits(r, page, p, key)) {
        json_decref(page);
        return;
    }
    if (!p->paged) {
        rp_reply_json(r, 200, json_pack("{s:o}", key, page));
        return;
    }
    rp_reply_json(r, 200,
                  json_pack("{s:o, s:o}", key, page, "next_after", rp_page_next(page, p, id_key)));
}
