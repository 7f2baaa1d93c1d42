/*
 * Paging of the operator's lists (tokens, image keys, images, products, device groups, a group's
 * devices, deployments, a deployment's devices, the devices): the ?limit&after&prefix
 * parameters, their bounds, the prefix's index range (rp_page_t, store.h), and the answer with
 * "next_after". The store reads the page itself, in SQL (its list functions take the rp_page_t).
 */
#ifndef RP_SERVER_PAGING_H
#define RP_SERVER_PAGING_H

#include <stdbool.h>

#include <jansson.h>

#include "req.h"

#define RP_PAGE_MAX 1000
#define RP_PAGE_DEFAULT 100
/* A list asked for whole (no paging parameter) answers at most this many: past it, 400
 * paging_required (rp_page_whole_fits), having read one more, never the rest (review r15web M4:
 * a list of every device made bodies of megabytes, and a few at once stalled every tenant). */
#define RP_PAGE_WHOLE_MAX 10000

/* The query string (NULL or "": no parameters) into *p: only limit (1..RP_PAGE_MAX), after and
 * prefix (1..RP_PAGE_KEY_MAX bytes, no control characters), each at most once. False: refused. */
bool rp_page_parse(const char *query, rp_page_t *p) RP_MUST_CHECK;

/* The request's paging parameters into *p; false: a 400 was sent. */
bool rp_page_request(rp_req_t *r, rp_page_t *p) RP_MUST_CHECK;

/* p's prefix and its range: prefix (at most RP_PAGE_KEY_MAX bytes) and upto, its successor. */
void rp_page_set_prefix(rp_page_t *p, const char *prefix);

/* What "next_after" says after this page of p (an array of objects with a string id_key, or of
 * the IDs themselves): the
 * last row's ID when the page is full (more may follow), else JSON null. A new reference. */
json_t *rp_page_next(json_t *page, const rp_page_t *p, const char *id_key);

/* Whether a list (of what, its name) fits its answer: a page always does, a whole list up to
 * RP_PAGE_WHOLE_MAX; false: 400 paging_required was sent, naming the parameters to page with. */
bool rp_page_whole_fits(rp_req_t *r, json_t *list, const rp_page_t *p,
                        const char *what) RP_MUST_CHECK;

/* Reply {key: page} as ever when p is not paged (page is then the whole list, or 400 past
 * RP_PAGE_WHOLE_MAX: rp_page_whole_fits), else {key: page, "next_after": ...}. Takes page. */
void rp_page_reply(rp_req_t *r, const char *key, json_t *page, const rp_page_t *p,
                   const char *id_key);

#endif
