/*
 * The service's routes: one table (routes.c) names every route's method, path, who may call it
 * and the handler, and one function checks it before any handler runs. A handler is reached only
 * with its method, its caller authenticated and allowed, and its tenant (if its path names one)
 * loaded: handlers decide nothing about authorisation but the two escalations the table flags
 * (rp_route_require).
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
                         * of the tenant holding the device, which is not blocked; on a path
                         * naming {tenant}, that tenant */
    RP_AUTH_SESSION,    /* the console's session cookie only (console.c): its own routes */
} rp_auth_t;

/* Route flags. */
#define RP_ROUTE_RATE_LIMITED 0x1u  /* limited per client address (--rate-limit) */
#define RP_ROUTE_LOGIN_LIMITED 0x4u /* failed logins limited per client address (--login-rate) */
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
 * false: 401 sent. (console.c: a session opened with a token.) */
bool rp_route_token_secret(rp_req_t *r, const char *secret);
/* Whether r->tok, as read from the store, has not expired (and its use noted); false: 401 sent. */
bool rp_route_token_current(rp_req_t *r);

/* The table as JSON text, one route per line (`rampart-server --routes`). */
void rp_routes_print(FILE *out);

/* ---- the handlers (each in the file of its resource) ---- */

/* http.c */
void rp_h_healthz(rp_req_t *r);
void rp_h_metrics(rp_req_t *r);
/* attest.c */
void rp_attest_nonce(rp_req_t *r);
void rp_attest(rp_req_t *r);
/* est.c */
void rp_h_est_cacerts(rp_req_t *r);
void rp_h_est_simplereenroll(rp_req_t *r);
/* api.c */
void rp_h_tenants_list(rp_req_t *r);
void rp_h_tenant_create(rp_req_t *r);
void rp_h_tenant_get(rp_req_t *r);
void rp_h_tokens_list(rp_req_t *r);
void rp_h_token_create(rp_req_t *r);
void rp_h_token_revoke(rp_req_t *r);
void rp_h_system_tokens_list(rp_req_t *r);
void rp_h_system_token_revoke(rp_req_t *r);
void rp_h_token_self(rp_req_t *r);
void rp_h_unproven_list(rp_req_t *r);
void rp_h_policy_get(rp_req_t *r);
void rp_h_policy_set(rp_req_t *r);
void rp_h_ca_get(rp_req_t *r);
void rp_h_crl_get(rp_req_t *r);
void rp_h_openapi(rp_req_t *r);
void rp_h_devices_list(rp_req_t *r);
void rp_h_devices_claim(rp_req_t *r);
void rp_h_device_get(rp_req_t *r);
void rp_h_device_attestations(rp_req_t *r);
void rp_h_device_block(rp_req_t *r);
void rp_h_device_unblock(rp_req_t *r);
/* updates.c */
void rp_h_image_keys_list(rp_req_t *r);
void rp_h_image_key_add(rp_req_t *r);
void rp_h_upload_create(rp_req_t *r);
void rp_h_upload_get(rp_req_t *r);
void rp_h_upload_put(rp_req_t *r);
void rp_h_images_list(rp_req_t *r);
void rp_h_image_create(rp_req_t *r);
void rp_h_image_get(rp_req_t *r);
void rp_h_products_list(rp_req_t *r);
void rp_h_product_create(rp_req_t *r);
void rp_h_product_get(rp_req_t *r);
void rp_h_groups_list(rp_req_t *r);
void rp_h_group_create(rp_req_t *r);
void rp_h_group_get(rp_req_t *r);
void rp_h_group_settings_set(rp_req_t *r);
void rp_h_group_devices(rp_req_t *r);
void rp_h_group_assign(rp_req_t *r);
void rp_h_deployments_list(rp_req_t *r);
void rp_h_deployment_create(rp_req_t *r);
void rp_h_deployment_get(rp_req_t *r);
void rp_h_deployment_pause(rp_req_t *r);
void rp_h_deployment_resume(rp_req_t *r);
void rp_h_deployment_stop(rp_req_t *r);
/* device_api.c */
void rp_h_online_key_get(rp_req_t *r);
void rp_h_online_key_rotate(rp_req_t *r);
void rp_h_roots_list(rp_req_t *r);
void rp_h_root_add(rp_req_t *r);
void rp_h_device_roots(rp_req_t *r);
void rp_h_device_targets(rp_req_t *r);
void rp_h_device_image(rp_req_t *r);
void rp_h_device_delta(rp_req_t *r);
void rp_h_device_report(rp_req_t *r);
void rp_h_device_capability_create(rp_req_t *r);
/* status.c: what devices report of what runs */
void rp_h_device_status(rp_req_t *r);
void rp_h_device_events(rp_req_t *r);
/* The device's newest status report as GET .../devices/D shows it ("report"): null when it never
 * reported, NULL when it cannot be read. */
json_t *rp_device_report_json(rp_req_t *r, const char *device_id);
/* threat.c: threat detection and quarantine */
void rp_h_alerts_list(rp_req_t *r);
void rp_h_threat_get(rp_req_t *r);
void rp_h_threat_set(rp_req_t *r);
void rp_h_webhook_get(rp_req_t *r);
void rp_h_webhook_set(rp_req_t *r);
void rp_h_webhook_delete(rp_req_t *r);
void rp_h_quarantine_policy_get(rp_req_t *r);
void rp_h_quarantine_policy_set(rp_req_t *r);
void rp_h_quarantine_actions(rp_req_t *r);
void rp_h_device_release(rp_req_t *r);
/* console.c: the web console */
void rp_h_console_file(rp_req_t *r);
void rp_h_console_session_create(rp_req_t *r);
void rp_h_console_session_get(rp_req_t *r);
void rp_h_console_session_delete(rp_req_t *r);
void rp_h_console_link_create(rp_req_t *r);
void rp_h_fleet(rp_req_t *r);
void rp_h_attest_histogram(rp_req_t *r);
/* The request's session cookie, current (its token's role and tenant into r->tok), and with
 * need_csrf its X-CSRF-Token header right; false: 401 or 403 sent. */
bool rp_console_session_auth(rp_req_t *r, bool need_csrf);
/* Whether the request carries a session cookie at all (well-formed or not). */
bool rp_console_has_cookie(rp_req_t *r);
/* api.c: the path's {device}, if the request's tenant holds it; false: 404 or 500 sent. */
bool rp_tenant_device(rp_req_t *r, rp_device_t *d);
/* device_api.c: the device a certificate belongs to, if it may be served (RP_AUTH_DEVICE);
 * false: 401/403 sent. */
bool rp_device_auth(rp_req_t *r, rp_device_t *device);

#endif /* RAMPART_ROUTES_H */
