/*
 * Paging of the operator's lists that are read whole (paging.h): the parameters' one parser and
 * bounds, and the page cut from such a list. These lists are the ones an operator makes by hand
 * (tokens, keys, images, products, groups, deployments) or a deployment's devices, whose progress
 * counts need every row anyway: the page bounds the answer (and the console's work), not the read.
 */
#include <stdlib.h>
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
                memcpy(p->prefix, kv->value, strlen(kv->value) + 1);
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

static const char *row_str(json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));

    return s != NULL ? s : "";
}

struct keyed {
    const char *id;
    json_t *row;
};

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct keyed *)a)->id, ((const struct keyed *)b)->id);
}

json_t *rp_page_cut(json_t *list, const rp_page_t *p, const char *id_key, const char *filter_key,
                    json_t **next)
{
    size_t n = json_array_size(list), taken = 0, plen = strlen(p->prefix);
    struct keyed *rows = NULL;
    json_t *page = json_array();

    *next = json_null();
    if (n > 0 && (rows = malloc(n * sizeof(*rows))) == NULL) {
        json_decref(page);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(list, i);
        const char *id = row_str(row, id_key);

        if (strcmp(id, p->after) > 0 && strncmp(row_str(row, filter_key), p->prefix, plen) == 0)
            rows[taken++] = (struct keyed){id, row};
    }
    qsort(rows, taken, sizeof(*rows), by_id);
    for (size_t i = 0; i < taken && i < (size_t)p->limit; i++)
        json_array_append(page, rows[i].row);
    /* A full page may have more after it (as the devices' store page says). */
    if (json_array_size(page) == (size_t)p->limit)
        *next = json_string(rows[p->limit - 1].id);
    free(rows);
    return page;
}

void rp_page_reply(rp_req_t *r, const char *key, json_t *list, const rp_page_t *p,
                   const char *id_key, const char *filter_key)
{
    json_t *page, *next;

    if (!p->paged) {
        rp_reply_json(r, 200, json_pack("{s:o}", key, list));
        return;
    }
    page = rp_page_cut(list, p, id_key, filter_key, &next);
    json_decref(list);
    if (page == NULL) {
        rp_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    rp_reply_json(r, 200, json_pack("{s:o, s:o}", key, page, "next_after", next));
}
