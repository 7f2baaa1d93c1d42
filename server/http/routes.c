/*
 * The route table and the one place that checks it: which routes exist, with which method, who
 * may call each (public, a bearer token with a role, a device certificate), and the handler. A
 * reviewer reads who may do what here, and only here; handlers assume it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "api.h"
#include "attest.h"
#include "console.h"
#include "context.h"
#include "device_api.h"
#include "est.h"
#include "fleet.h"
#include "images.h"
#include "rampart/log.h"
#include "ready.h"
#include "reports.h"
#include "req.h"
#include "routes.h"
#include "status.h"
#include "threat.h"

#define GET EVHTTP_REQ_GET
#define POST EVHTTP_REQ_POST
#define PUT EVHTTP_REQ_PUT
#define DELETE EVHTTP_REQ_DELETE
#define PUBLIC RP_AUTH_PUBLIC, RP_ROLE_NONE
#define DEVICE RP_AUTH_DEVICE, RP_ROLE_NONE
#define READER RP_AUTH_TOKEN, RP_ROLE_READER
#define CONTRIBUTOR RP_AUTH_TOKEN, RP_ROLE_CONTRIBUTOR
#define ADMIN RP_AUTH_TOKEN, RP_ROLE_ADMIN
#define SYSTEM RP_AUTH_TOKEN, RP_ROLE_SYSTEM
#define SESSION RP_AUTH_SESSION, RP_ROLE_NONE
#define LIMITED RP_ROUTE_RATE_LIMITED
#define LOGIN_LIMITED RP_ROUTE_LOGIN_LIMITED
#define ESCALATES RP_ROUTE_ESCALATES
#define RECOVERY RP_ROUTE_RECOVERY
#define T "/api/v1/tenants/{tenant}"

/* clang-format off */
const rp_route_t rp_routes[] = {
    /* Liveness and metrics: for the machine that runs the service (docs/operations.md). */
    {GET,    "/healthz",                          PUBLIC, 0, rp_h_healthz, "liveness: 200 while the process serves"},
    {GET,    "/readyz",                           PUBLIC, 0, rp_ready_handle, "readiness: 200 while the data directory and database can be written"},
    {GET,    "/metrics",                          PUBLIC, 0, rp_h_metrics, "Prometheus metrics"},
    {GET,    "/api/v1/openapi.json",              PUBLIC, 0, rp_h_openapi, "this API described: OpenAPI 3.1 (docs/openapi.yaml)"},

    /* The web console (console.c): its files, and its session (a cookie opened with a token or
     * a one-time login link; every operator route below takes it instead of a bearer token). */
    {POST,   "/console/session",                  PUBLIC, LOGIN_LIMITED, rp_h_console_session_create, "open a console session with a token or a login link's code (sets the session cookie)"},
    {GET,    "/console/session",                  SESSION, 0, rp_h_console_session_get, "the console session: tenant, role, expiry, CSRF value"},
    {DELETE, "/console/session",                  SESSION, 0, rp_h_console_session_delete, "end the console session"},
    {GET,    "/console",                          PUBLIC, 0, rp_h_console_file, "the console's page"},
    {GET,    "/console/{file+}",                  PUBLIC, 0, rp_h_console_file, "the console's files (a page's own address: its page)"},

    /* Devices before they hold a certificate: attestation, limited per address. */
    {POST,   "/api/v1/attest/nonce",              PUBLIC, LIMITED, rp_attest_nonce, "a single-use attestation nonce for a device"},
    {POST,   "/api/v1/attest",                    PUBLIC, LIMITED, rp_attest, "attest: evidence in, a 24-hour device certificate out"},

    /* Relying parties. */
    {GET,    "/.well-known/est/{tenant}/cacerts", PUBLIC, 0, rp_h_est_cacerts, "EST: the tenant's CAs (certs-only PKCS#7)"},
    {GET,    T "/crl",                            PUBLIC, 0, rp_h_crl_get, "the tenant's CRL (DER: the signing CA's; ?format=pem: one per valid CA)"},

    /* Devices, by their certificate. RECOVERY: also for a device whose only bar is a proven
     * failed attestation, so that it can report why and update out of it (docs/protocol.md
     * "Verdicts"); never a route that grants trust (EST: a certificate). */
    {POST,   "/.well-known/est/{tenant}/simplereenroll", DEVICE, LIMITED, rp_h_est_simplereenroll, "EST: a new certificate for the same key, limited per address and per device"},
    {GET,    "/api/v1/device/roots",              DEVICE, RECOVERY, rp_h_device_roots, "root metadata newer than ?after=N"},
    {GET,    "/api/v1/device/targets",            DEVICE, RECOVERY, rp_h_device_targets, "signed targets: what the device should run"},
    {GET,    "/api/v1/device/images/{image}",     DEVICE, RECOVERY, rp_h_device_image, "an image the device's targets name (Range)"},
    {GET,    "/api/v1/device/deltas/{from}/{to}", DEVICE, RECOVERY, rp_h_device_delta, "a delta between two images (Range)"},
    {POST,   "/api/v1/device/updates",            DEVICE, RECOVERY, rp_h_device_report, "how an update went"},
    {POST,   "/api/v1/device/status",             DEVICE, RECOVERY, rp_h_device_status, "the device's status report: the apps that run, its new security events"},
    {POST,   "/api/v1/device/reports",            DEVICE, RECOVERY, rp_h_device_reports, "a batch of failure reports (crashes, exits, security events), limited per device"},

    /* Operators, by their token. */
    {GET,    "/api/v1/tenants",                   READER, 0, rp_h_tenants_list, "the tenants the token sees"},
    {POST,   "/api/v1/tenants",                   SYSTEM, 0, rp_h_tenant_create, "create a tenant"},
    {GET,    T,                                   READER, 0, rp_h_tenant_get, "a tenant"},
    {GET,    "/api/v1/tokens",                    SYSTEM, 0, rp_h_system_tokens_list, "the system tokens"},
    {DELETE, "/api/v1/tokens/{token}",            READER, ESCALATES, rp_h_system_token_revoke, "revoke a system token (system; any token may revoke itself: self)"},
    {GET,    "/api/v1/tokens/self",               READER, 0, rp_h_token_self, "the calling token itself"},
    {POST,   "/api/v1/console/links",             ADMIN, 0, rp_h_console_link_create, "a one-time console login link (10 minutes; {\"tenant\": ID}: as a new admin token of it)"},
    {GET,    "/api/v1/unproven-attestations",     SYSTEM, 0, rp_h_unproven_list, "sources of attestations that proved nothing about a device"},
    {GET,    T "/tokens",                         ADMIN, 0, rp_h_tokens_list, "the tenant's tokens"},
    {POST,   T "/tokens",                         ADMIN, 0, rp_h_token_create, "a new token (no more powerful than the caller's)"},
    {DELETE, T "/tokens/{token}",                 READER, ESCALATES, rp_h_token_revoke, "revoke a token (admin; any token may revoke itself: self)"},
    {GET,    T "/policy",                         READER, 0, rp_h_policy_get, "how the tenant's devices' evidence is appraised"},
    {PUT,    T "/policy",                         ADMIN, 0, rp_h_policy_set, "set the appraisal policy"},
    {GET,    T "/ca",                             READER, 0, rp_h_ca_get, "the tenant's valid CA certificates (PEM, the signing one first)"},
    {GET,    T "/devices",                        READER, 0, rp_h_devices_list, "the tenant's devices"},
    {POST,   T "/devices",                        CONTRIBUTOR, 0, rp_h_devices_claim, "claim devices"},
    {GET,    T "/fleet",                          READER, 0, rp_h_fleet, "the tenant's devices by state and the versions they run"},
    {GET,    T "/attestations/histogram",         READER, 0, rp_h_attest_histogram, "attestations passed and failed per step (?since=S&step=s, at most 1000 buckets)"},
    {GET,    T "/devices/{device}",               READER, 0, rp_h_device_get, "a device"},
    {GET,    T "/devices/{device}/attestations",  READER, 0, rp_h_device_attestations, "a device's last attestations"},
    {GET,    T "/devices/{device}/events",        READER, 0, rp_h_device_events, "a device's reported security events, newest first (?before=SEQ&limit=N)"},
    {GET,    T "/failures",                       READER, 0, rp_h_failures_list, "the tenant's crash buckets, last seen first (?offset=N&limit=N)"},
    {GET,    T "/failures/{bucket}",              READER, 0, rp_h_failure_get, "a crash bucket: signature, frames named once symbols are uploaded, counts, samples"},
    {GET,    T "/reports",                        READER, 0, rp_h_reports_list, "the devices' stored failure reports, newest first (?device=D&kind=K&offset=N&limit=N)"},
    {POST,   T "/symbols",                        CONTRIBUTOR, 0, rp_h_symbols_upload, "a debug file (raw ELF), kept by its build ID to name crash frames"},
    {POST,   T "/devices/{device}/block",         ADMIN, 0, rp_h_device_block, "block a device, revoking its certificates"},
    {POST,   T "/devices/{device}/unblock",       ADMIN, 0, rp_h_device_unblock, "unblock a device"},
    {POST,   T "/devices/{device}/capabilities",  ADMIN, 0, rp_h_device_capability_create, "a signed capability for one device (development mode)"},
    {POST,   T "/devices/{device}/release",       ADMIN, 0, rp_h_device_release, "release a quarantined device (recorded, with the token and reason)"},
    {GET,    T "/alerts",                         READER, 0, rp_h_alerts_list, "the tenant's threat alerts, newest first (?limit=N)"},
    {GET,    T "/threat",                         READER, 0, rp_h_threat_get, "the spike rule's settings (factor, baseline days, window, devices, floor)"},
    {PUT,    T "/threat",                         ADMIN, 0, rp_h_threat_set, "set the spike rule's settings"},
    {GET,    T "/webhook",                        READER, 0, rp_h_webhook_get, "where the tenant's alerts are POSTed"},
    {PUT,    T "/webhook",                        ADMIN, 0, rp_h_webhook_set, "set the webhook URL (a new secret is shown once)"},
    {DELETE, T "/webhook",                        ADMIN, 0, rp_h_webhook_delete, "remove the webhook"},
    {GET,    T "/quarantine/policy",              READER, 0, rp_h_quarantine_policy_get, "the automatic quarantine policy (off by default)"},
    {PUT,    T "/quarantine/policy",              ADMIN, 0, rp_h_quarantine_policy_set, "set the automatic quarantine policy"},
    {GET,    T "/quarantine/actions",             READER, 0, rp_h_quarantine_actions, "every quarantine and release, newest first, with who and why"},
    {GET,    T "/image-keys",                     READER, 0, rp_h_image_keys_list, "the tenant's image signing keys"},
    {POST,   T "/image-keys",                     ADMIN, 0, rp_h_image_key_add, "add an image signing key (public half)"},
    {POST,   T "/uploads",                        CONTRIBUTOR, 0, rp_h_upload_create, "start an image upload"},
    {GET,    T "/uploads/{upload}",               CONTRIBUTOR, 0, rp_h_upload_get, "how much of an upload the service has"},
    {PUT,    T "/uploads/{upload}",               CONTRIBUTOR, 0, rp_h_upload_put, "one chunk of an upload (?offset=K)"},
    {GET,    T "/images",                         READER, 0, rp_h_images_list, "the tenant's images"},
    {POST,   T "/images",                         CONTRIBUTOR, 0, rp_h_image_create, "an image from a finished upload, verified"},
    {GET,    T "/images/{image}",                 READER, 0, rp_h_image_get, "an image"},
    {GET,    T "/products",                       READER, 0, rp_h_products_list, "the tenant's products"},
    {POST,   T "/products",                       CONTRIBUTOR, 0, rp_h_product_create, "create a product and its default groups"},
    {GET,    T "/products/{product}",             READER, 0, rp_h_product_get, "a product with its groups"},
    {GET,    T "/products/{product}/groups",      READER, 0, rp_h_groups_list, "a product's device groups"},
    {POST,   T "/products/{product}/groups",      CONTRIBUTOR, ESCALATES, rp_h_group_create, "create a device group (admin if it allows unknown images)"},
    {GET,    T "/products/{product}/groups/{group}", READER, 0, rp_h_group_get, "a device group"},
    {PUT,    T "/products/{product}/groups/{group}/settings", ADMIN, 0, rp_h_group_settings_set, "set a device group's settings (crash capture on or off)"},
    {GET,    T "/products/{product}/groups/{group}/devices", READER, 0, rp_h_group_devices, "a group's devices"},
    {POST,   T "/products/{product}/groups/{group}/devices", CONTRIBUTOR, ESCALATES, rp_h_group_assign, "move devices into a group (admin if it allows unknown images)"},
    {GET,    T "/deployments",                    READER, 0, rp_h_deployments_list, "the tenant's deployments"},
    {POST,   T "/deployments",                    CONTRIBUTOR, ESCALATES, rp_h_deployment_create, "deploy images to a group (admin past devices' counter limits)"},
    {GET,    T "/deployments/{deployment}",       READER, 0, rp_h_deployment_get, "a deployment and its devices' states"},
    {POST,   T "/deployments/{deployment}/pause", CONTRIBUTOR, 0, rp_h_deployment_pause, "pause a deployment: devices it has not reached keep the one before"},
    {POST,   T "/deployments/{deployment}/resume", CONTRIBUTOR, 0, rp_h_deployment_resume, "resume a paused deployment (409 if stopped)"},
    {POST,   T "/deployments/{deployment}/stop",  CONTRIBUTOR, 0, rp_h_deployment_stop, "stop a deployment for good: devices it reached keep it"},
    {GET,    T "/update/online-key",              READER, 0, rp_h_online_key_get, "the service's online key for the tenant's targets"},
    {POST,   T "/update/online-key",              ADMIN, 0, rp_h_online_key_rotate, "a new online key"},
    {GET,    T "/update/roots",                   READER, 0, rp_h_roots_list, "the tenant's root metadata versions"},
    {POST,   T "/update/roots",                   ADMIN, 0, rp_h_root_add, "the next root metadata version"},
};
/* clang-format on */
const size_t rp_nroutes = sizeof(rp_routes) / sizeof(rp_routes[0]);

/* The methods routes use, in the order an Allow header lists them. */
static const struct {
    enum evhttp_cmd_type method;
    const char *name;
} methods[] = {
    {EVHTTP_REQ_GET,     "GET"    },
    {EVHTTP_REQ_HEAD,    "HEAD"   },
    {EVHTTP_REQ_POST,    "POST"   },
    {EVHTTP_REQ_PUT,     "PUT"    },
    {EVHTTP_REQ_DELETE,  "DELETE" },
    {EVHTTP_REQ_PATCH,   "PATCH"  },
    {EVHTTP_REQ_OPTIONS, "OPTIONS"},
    {EVHTTP_REQ_TRACE,   "TRACE"  },
    {EVHTTP_REQ_CONNECT, "CONNECT"},
};

static const char *method_name(enum evhttp_cmd_type m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i].method == m)
            return methods[i].name;
    return "?";
}

/* The pattern's next segment from *p: OUT its start and length; false at the end. */
static bool next_segment(const char **p, const char **seg, size_t *len)
{
    while (**p == '/')
        (*p)++;
    if (**p == '\0')
        return false;
    *seg = *p;
    while (**p != '\0' && **p != '/')
        (*p)++;
    *len = (size_t)(*p - *seg);
    return true;
}

static bool is_param(const char *seg, size_t len)
{
    return len >= 2 && seg[0] == '{' && seg[len - 1] == '}';
}

/* "{name+}": the rest of the path, one segment or more. */
static bool is_rest(const char *seg, size_t len)
{
    return is_param(seg, len) && len >= 3 && seg[len - 2] == '+';
}

/* Whether the request's path segments fit the route's path. */
static bool path_matches(const rp_route_t *route, const rp_req_t *r)
{
    const char *p = route->path, *seg;
    size_t len;
    int i = 0;

    while (next_segment(&p, &seg, &len)) {
        if (i == r->nparts)
            return false;
        if (is_rest(seg, len))
            return true;
        if (!is_param(seg, len) && (strlen(r->parts[i]) != len || memcmp(seg, r->parts[i], len)))
            return false;
        i++;
    }
    return i == r->nparts;
}

const char *rp_req_param(const rp_req_t *r, const char *name)
{
    const char *p, *seg;
    size_t len, n = strlen(name);

    if (r->route == NULL)
        return NULL;
    p = r->route->path;
    for (int i = 0; next_segment(&p, &seg, &len) && i < r->nparts; i++)
        if (is_param(seg, len) && len == n + 2 && memcmp(seg + 1, name, n) == 0)
            return r->parts[i];
    return NULL;
}

/* Whether the method changes nothing (a session needs no CSRF value for it). */
static bool safe_method(const rp_req_t *r)
{
    return r->method == EVHTTP_REQ_GET || r->method == EVHTTP_REQ_HEAD;
}

static bool token_secret(rp_req_t *r, const char *h, bool *unknown);

/* The bearer token's record (or, without an Authorization header, the console session's
 * token); on failure a 401, 403 or 429 has been sent. */
static bool authenticate(rp_req_t *r)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    bool unknown;

    if (h == NULL && rp_console_has_cookie(r))
        return rp_console_session_auth(r, !safe_method(r));
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) { /* the scheme's case: RFC 7235 */
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
        rp_reply_error(r, 401, "unauthorized", "a bearer token is required");
        return false;
    }
    /* A token guessed at full speed: past its address's budget of wrong ones, not even looked
     * up (the answer would tell a right guess from a wrong one). */
    if (!rp_auth_allowed(r))
        return false;
    if (token_secret(r, h + 7, &unknown))
        return true;
    if (unknown)
        rp_auth_failed(r);
    return false;
}

bool rp_route_token_secret(rp_req_t *r, const char *h, bool *unknown)
{
    return token_secret(r, h, unknown);
}

/* The token whose secret is h into r->tok; false: 401 or 500 sent, and *unknown when no token
 * has that secret. */
static bool token_secret(rp_req_t *r, const char *h, bool *unknown)
{
    uint8_t hash[RP_SHA256_LEN];
    rp_err_t err;

    *unknown = true;
    if (strlen(h) > 256 || rp_sha256(h, strlen(h), hash) != RP_OK) {
        rp_reply_error(r, 401, "unauthorized", "invalid token");
        return false;
    }
    /* The secret is never compared: its SHA-256 is looked up. Timing can tell at most how much
     * of a hash matched, which gives no hold on a 256-bit secret. */
    err = rp_store_token_lookup(r->w->store, hash, &r->tok);
    rp_wipe(hash, sizeof(hash));
    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 401, "unauthorized", "invalid token");
        return false;
    }
    *unknown = false;
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot check the token");
        return false;
    }
    return rp_route_token_current(r);
}

bool rp_route_token_current(rp_req_t *r)
{
    int64_t now = (int64_t)time(NULL);

    if (r->tok.expires != 0 && r->tok.expires <= now) {
        char iso[32];
        rp_iso_time(r->tok.expires, iso);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate",
                          "Bearer error=\"invalid_token\"");
        rp_reply_error(r, 401, "token_expired", "the token %s expired at %s: use another one",
                       r->tok.id, iso);
        return false;
    }
    /* Its last use, to the minute: a write a minute per token, not one per request. */
    if (now - r->tok.last_used >= RP_TOKEN_USE_EVERY) {
        if (rp_store_token_used(r->w->store, r->tok.id, now) == RP_OK)
            r->tok.last_used = now;
        else
            rp_log_warn("cannot note the use of token %s", r->tok.id);
    }
    return true;
}

/* The path's tenant into r->tenant; false: 404 or 500 sent. */
static bool load_tenant(rp_req_t *r, const char *tenant_id)
{
    rp_err_t err = rp_store_tenant_get(r->w->store, tenant_id, &r->tenant);

    if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such tenant");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot read the tenant");
    return err == RP_OK;
}

static bool role_allows(rp_req_t *r, rp_role_t need)
{
    if (r->tok.role >= need)
        return true;
    if (need == RP_ROLE_SYSTEM)
        rp_reply_error(r, 403, "forbidden", "only a system token may do this (the token is %s)",
                       rp_role_name(r->tok.role));
    else
        rp_reply_error(r, 403, "forbidden", "this needs the %s role (the token is %s)",
                       rp_role_name(need), rp_role_name(r->tok.role));
    return false;
}

bool rp_route_require(rp_req_t *r, rp_role_t role, const char *why)
{
    if (r->tok.role >= role)
        return true;
    rp_reply_error(r, 403, "forbidden", "%s needs the %s role (the token is %s)", why,
                   rp_role_name(role), rp_role_name(r->tok.role));
    return false;
}

/* Whether the route's caller may call it; on false the answer has been sent. */
static bool allowed(rp_req_t *r)
{
    const rp_route_t *route = r->route;
    const char *tenant_id = rp_req_param(r, "tenant");

    switch (route->auth) {
    case RP_AUTH_PUBLIC: return tenant_id == NULL || load_tenant(r, tenant_id);
    case RP_AUTH_DEVICE:
        if (!rp_device_auth(r, &r->device, (route->flags & RP_ROUTE_RECOVERY) != 0))
            return false;
        if (tenant_id != NULL && strcmp(tenant_id, r->device.tenant_id) != 0) {
            rp_reply_error(r, 401, "unauthorized",
                           "the client certificate is not from this "
                           "tenant");
            return false;
        }
        return tenant_id == NULL || load_tenant(r, tenant_id);
    case RP_AUTH_SESSION: return rp_console_session_auth(r, !safe_method(r));
    case RP_AUTH_TOKEN:
        if (!authenticate(r))
            return false;
        if (tenant_id == NULL)
            return role_allows(r, route->role);
        /* Another tenant's objects do not exist, as far as this token can tell. */
        if (r->tok.role != RP_ROLE_SYSTEM && strcmp(r->tok.tenant_id, tenant_id) != 0) {
            rp_reply_error(r, 404, "not_found", "no such tenant");
            return false;
        }
        return load_tenant(r, tenant_id) && role_allows(r, route->role);
    }
    rp_reply_error(r, 500, "internal", "a route without a caller");
    return false;
}

void rp_route_dispatch(rp_req_t *r)
{
    /* HEAD is GET without the body (evhttp leaves it out). */
    enum evhttp_cmd_type want = r->method == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : r->method;
    unsigned allow = 0;
    bool known = false;

    r->route = NULL;
    for (size_t i = 0; i < rp_nroutes; i++) {
        if (!path_matches(&rp_routes[i], r))
            continue;
        known = true;
        allow |= (unsigned)rp_routes[i].method;
        if (rp_routes[i].method == want && r->route == NULL)
            r->route = &rp_routes[i];
    }
    if (!known) {
        rp_reply_error(r, 404, "not_found", "no such resource");
        return;
    }
    if (r->route == NULL) {
        char list[64] = "";
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
            unsigned m = (unsigned)methods[i].method;
            if ((allow & m) || (m == EVHTTP_REQ_HEAD && (allow & EVHTTP_REQ_GET)))
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                         list[0] ? ", " : "", methods[i].name);
        }
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", list);
        rp_reply_error(r, 405, "method_not_allowed", "%s is not allowed here: use %s",
                       method_name(r->method), list);
        return;
    }
    if ((r->route->flags & RP_ROUTE_RATE_LIMITED) && !rp_rate_allowed(r))
        return;
    /* (only looked at here: the handler charges a credential it found wrong, rp_login_failed) */
    if ((r->route->flags & RP_ROUTE_LOGIN_LIMITED) && !rp_login_allowed(r))
        return;
    if (allowed(r))
        r->route->handler(r);
}

static const char *auth_name(rp_auth_t a)
{
    switch (a) {
    case RP_AUTH_PUBLIC: return "public";
    case RP_AUTH_TOKEN: return "token";
    case RP_AUTH_DEVICE: return "device";
    case RP_AUTH_SESSION: return "session";
    }
    return "?";
}

void rp_routes_print(FILE *out)
{
    for (size_t i = 0; i < rp_nroutes; i++) {
        const rp_route_t *rt = &rp_routes[i];
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s?, s:b, s:b, s:b, s:b, s:b, s:s}", "method",
            method_name(rt->method), "path", rt->path, "auth", auth_name(rt->auth), "role",
            rt->auth == RP_AUTH_TOKEN ? rp_role_name(rt->role) : NULL, "rate_limited",
            (rt->flags & (RP_ROUTE_RATE_LIMITED | RP_ROUTE_LOGIN_LIMITED)) != 0, "login_limited",
            (rt->flags & RP_ROUTE_LOGIN_LIMITED) != 0, "escalates",
            (rt->flags & RP_ROUTE_ESCALATES) != 0, "recovery", (rt->flags & RP_ROUTE_RECOVERY) != 0,
            "session_cookie", rt->auth == RP_AUTH_TOKEN || rt->auth == RP_AUTH_SESSION, "summary",
            rt->summary);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

        if (text != NULL)
            fprintf(out, "%s\n", text);
        free(text);
        json_decref(o);
    }
}
