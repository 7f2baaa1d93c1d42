/*
 * Paging of the operator's lists that are read whole (tokens, image keys, images, products,
 * device groups, deployments, a deployment's devices): the ?limit&after&prefix parameters, their
 * bounds, and the page cut from a list in ID order with "next_after". The devices list pages in
 * its store query instead (rp_store_device_page), with the same parameter names.
 */
#ifndef RP_SERVER_PAGING_H
#define RP_SERVER_PAGING_H

#include <stdbool.h>

#include <jansson.h>

#include "server.h"

#define RP_PAGE_MAX 1000
#define RP_PAGE_DEFAULT 100
#define RP_PAGE_KEY_MAX 128 /* bytes of ?after and ?prefix */

typedef struct {
    bool paged; /* any paging parameter given: answer a page, else the whole list as before */
    int limit;
    char after[RP_PAGE_KEY_MAX + 1];  /* "": from the first */
    char prefix[RP_PAGE_KEY_MAX + 1]; /* "": any */
} rp_page_t;

/* The query string (NULL or "": no parameters) into *p: only limit (1..RP_PAGE_MAX), after and
 * prefix (1..RP_PAGE_KEY_MAX bytes, no control characters), each at most once. False: refused. */
bool rp_page_parse(const char *query, rp_page_t *p) RP_MUST_CHECK;

/* The request's paging parameters into *p; false: a 400 was sent. */
bool rp_page_request(rp_req_t *r, rp_page_t *p) RP_MUST_CHECK;

/*
 * The page of list (an array of objects, each with a unique string id_key) that p asks for: the
 * rows in id_key order whose id_key is after p->after and whose filter_key starts with p->prefix,
 * at most p->limit. *next gets the last row's ID when the page is full (more may follow), else
 * JSON null. Returns a new array; list is not changed.
 */
json_t *rp_page_cut(json_t *list, const rp_page_t *p, const char *id_key, const char *filter_key,
                    json_t **next);

/* Reply {key: list} as ever when p is not paged, else {key: page, "next_after": ...}. Takes list.
 */
void rp_page_reply(rp_req_t *r, const char *key, json_t *list, const rp_page_t *p,
                   const char *id_key, const char *filter_key);

#endif
