/*
 * The service's routes: one table (routes.c) names every route's method, path, who may call it
 * and the handler, and one function checks it before any handler runs. A handler is reached only
 * with its method, its caller authenticated and allowed, and its tenant (if its path names one)
 * loaded: handlers decide nothing about authorisation but the two escalations the table flags
 * (rp_route_require). The table is the one place that names handlers: each group's entry points
 * are in its own header (api.h, attest.h, images.h...), and the transport (http.c) only calls
 * rp_route_dispatch().
 */
#ifndef RAMPART_ROUTES_H
#define RAMPART_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <event2/http.h>
#include <jansson.h>

#include "store.h"

typedef struct rp_req rp_req_t;

/* Who may call a route. */
typedef enum rp_auth {
    RP_AUTH_PUBLIC = 0, /* anyone (relying parties, devices before they have a certificate) */
    RP_AUTH_TOKEN,      /* a bearer token with at least the route's role; on a path naming
                         * {tenant}, a token of that tenant (or a system token). Or instead,
                         * with no Authorization header, the console's session cookie: the
                         * session's token, and X-CSRF-Token on any method but GET and HEAD */
    RP_AUTH_DEVICE,     /* a device certificate (mutual TLS): current, not revoked, from the CA
                         * of the tenant holding the device, which is not blocked or quarantined
                         * and whose last attestation passed (but RP_ROUTE_RECOVERY); on a path
                         * naming {tenant}, that tenant */
    RP_AUTH_SESSION,    /* the console's session cookie only (console.c): its own routes */
} rp_auth_t;

/* Route flags. */
#define RP_ROUTE_RATE_LIMITED 0x1u  /* limited per client address (--rate-limit) */
#define RP_ROUTE_LOGIN_LIMITED 0x4u /* failed logins limited per client address (--login-rate) */
/* A device route that a device whose only bar is a proven failed attestation may still call,
 * with the certificate that failure revoked (rp_device_auth): its reports and status, its update
 * metadata and the images and deltas that names. Nothing that grants trust to anyone (a
 * certificate, an app's identity) may carry it: docs/protocol.md "Verdicts". */
#define RP_ROUTE_RECOVERY 0x8u
#define RP_ROUTE_ESCALATES                                                                         \
    0x2u /* the handler may ask for a higher role, depending on what the                           \
          * request does (rp_route_require); the summary says when */

typedef struct rp_route {
    enum evhttp_cmd_type method;
    /* Segments separated by '/'; "{name}" matches any one segment, which the handler reads with
     * rp_req_param(). "{tenant}" is the tenant the caller must be allowed to act on. A last
     * segment "{name+}" matches one or more segments (the handler reads r->parts). */
    const char *path;
    rp_auth_t auth;
    rp_role_t role; /* RP_AUTH_TOKEN: the least role (RP_ROLE_SYSTEM: system tokens only) */
    unsigned flags;
    void (*handler)(rp_req_t *r);
    const char *summary; /* one line, for `rampart-server --routes` and the docs */
} rp_route_t;

/* The table, and its length. */
extern const rp_route_t rp_routes[];
extern const size_t rp_nroutes;

/* Route one request: 404 when no route has its path, 405 with Allow when none has its method,
 * 401/403/404 when its caller may not; otherwise the route's handler answers. */
void rp_route_dispatch(rp_req_t *r);

/* A path parameter of the matched route ("{name}"), decoded; NULL if the route has none. */
const char *rp_req_param(const rp_req_t *r, const char *name);

/* For a route flagged RP_ROUTE_ESCALATES: whether the token has the role (why says for what);
 * false: 403 sent. */
bool rp_route_require(rp_req_t *r, rp_role_t role, const char *why);

/* A token's secret, as a bearer token is checked: into r->tok when it is a current token;
 * false: 401 (or 500) sent, and *unknown when no token has that secret (a wrong credential, the
 * one a caller's failure limit charges). (console.c: a session opened with a token.) */
bool rp_route_token_secret(rp_req_t *r, const char *secret, bool *unknown);
/* Whether r->tok, as read from the store, has not expired (and its use noted); false: 401 sent. */
bool rp_route_token_current(rp_req_t *r);

/* The table as JSON text, one route per line (`rampart-server --routes`). */
void rp_routes_print(FILE *out);

#endif /* RAMPART_ROUTES_H */
