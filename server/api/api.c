/*
 * The operator API (/api/v1/tenants/...): tenants, tokens, devices, the tenant CA and its CRL,
 * and /metrics. Every request but the CRL's and the metrics' carries a bearer token; every object
 * is reached through its tenant, and another tenant's is answered as if it did not exist.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include "api.h"
#include "deltas.h"
#include "context.h"
#include "names.h"
#include "openapi.h"
#include "paging.h"
#include "rampart/base64.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "recorder.h"
#include "reports.h"
#include "req.h"
#include "restore.h"
#include "routes.h"
#include "status.h"
#include "threat.h"

#define TOKEN_PREFIX "rpt_"
#define TOKEN_BYTES 32

rp_err_t rp_token_new(char *secret, size_t cap, uint8_t hash[RP_SHA256_LEN])
{
    uint8_t raw[TOKEN_BYTES];
    rp_err_t err;

    if (cap < sizeof(TOKEN_PREFIX) + 2 * TOKEN_BYTES)
        return RP_ERR_BUFFER_TOO_SMALL;
    if (RAND_priv_bytes(raw, sizeof(raw)) != 1)
        return RP_ERR_CRYPTO;
    strcpy(secret, TOKEN_PREFIX);
    err =
        rp_hex_encode(raw, sizeof(raw), secret + strlen(TOKEN_PREFIX), cap - strlen(TOKEN_PREFIX));
    rp_wipe(raw, sizeof(raw));
    if (err == RP_OK)
        err = rp_sha256(secret, strlen(secret), hash);
    return err;
}

static json_t *tenant_json(const rp_tenant_t *t)
{
    return json_pack("{s:s, s:s, s:o}", "id", t->id, "name", t->name, "created",
                     rp_iso_time_json(t->created));
}

static void collect_tenant(void *ctx, const rp_tenant_t *t)
{
    json_array_append_new(ctx, tenant_json(t));
}

/* GET /api/v1/tenants: every tenant for a system token, the token's own otherwise; pages. */
void rp_h_tenants_list(rp_req_t *r)
{
    json_t *list;
    rp_page_t pg;

    if (!rp_page_request(r, &pg))
        return;
    list = json_array();
    if (rp_store_tenant_list(r->w->store, r->tok.role == RP_ROLE_SYSTEM ? NULL : r->tok.tenant_id,
                             &pg, collect_tenant, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list tenants");
        return;
    }
    rp_page_reply(r, "tenants", list, &pg, "id");
}

void rp_h_tenant_create(rp_req_t *r)
{
    json_t *body = rp_req_json(r);
    const char *name, *why;
    rp_tenant_t t;
    rp_err_t err;

    if (body == NULL)
        return;
    name = rp_name_json(json_object_get(body, "name"), &why);
    if (name == NULL) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "\"name\" %s", why);
        return;
    }
    err = rp_store_tenant_create(r->w->store, name, &t);
    json_decref(body);
    if (err == RP_ERR_EXISTS) {
        rp_reply_error(r, 409, "conflict",
                       "a tenant with that name exists, or with one that looks the same (letter "
                       "case and look-alike characters do not make names differ)");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot create the tenant");
        return;
    }
    rp_log_info("tenant %s (%s) created", t.id, t.name);
    rp_reply_json(r, 201, tenant_json(&t));
}

void rp_h_tenant_get(rp_req_t *r)
{
    rp_reply_json(r, 200, tenant_json(&r->tenant));
}

static json_t *token_json(const rp_token_t *t)
{
    int64_t now = (int64_t)time(NULL);
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:s}", "id", t->id, "role",
                          rp_role_name(t->role), "created", rp_iso_time_json(t->created), "expires",
                          rp_iso_time_json(t->expires), "last_used", rp_iso_time_json(t->last_used),
                          "status", t->expires != 0 && t->expires <= now ? "expired" : "active");

    if (t->tenant_id[0] != '\0')
        json_object_set_new(o, "tenant", json_string(t->tenant_id));
    return o;
}

static void collect_token(void *ctx, const rp_token_t *t)
{
    json_array_append_new(ctx, token_json(t));
}

#define TOKEN_LIFETIME_MAX (10 * 366 * 24 * 3600ll) /* ten years */

/* A new token's expiry from the body: "expires_in" (seconds) or "expires_at" (ISO 8601 UTC), or
 * neither (never). OUT: *expires (0: never); false when invalid (400 sent). */
static bool token_expiry(rp_req_t *r, json_t *body, int64_t now, int64_t *expires)
{
    json_t *in = json_object_get(body, "expires_in"), *at = json_object_get(body, "expires_at");
    const char *text = json_string_value(at);
    struct tm tm;
    char *end;

    *expires = 0;
    if (in != NULL && at != NULL) {
        rp_reply_error(r, 400, "invalid", "give \"expires_in\" or \"expires_at\", not both");
        return false;
    }
    if (in != NULL) {
        if (!json_is_integer(in) || json_integer_value(in) < 1 ||
            json_integer_value(in) > TOKEN_LIFETIME_MAX) {
            rp_reply_error(r, 400, "invalid",
                           "\"expires_in\" must be 1 to %lld seconds (ten years)",
                           (long long)TOKEN_LIFETIME_MAX);
            return false;
        }
        *expires = now + (int64_t)json_integer_value(in);
        return true;
    }
    if (at == NULL)
        return true;
    memset(&tm, 0, sizeof(tm));
    end = text != NULL ? strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (end == NULL || *end != '\0') {
        rp_reply_error(r, 400, "invalid",
                       "\"expires_at\" must be an ISO 8601 UTC time, e.g. 2027-01-31T12:00:00Z");
        return false;
    }
    {
        /* strptime takes "02-30T23:59:60" and timegm makes it 3 March: a time that does not
         * exist is refused, not moved. */
        struct tm asked = tm, back;
        time_t t = timegm(&tm);
        if (gmtime_r(&t, &back) == NULL || back.tm_year != asked.tm_year ||
            back.tm_mon != asked.tm_mon || back.tm_mday != asked.tm_mday ||
            back.tm_hour != asked.tm_hour || back.tm_min != asked.tm_min ||
            back.tm_sec != asked.tm_sec) {
            rp_reply_error(r, 400, "invalid", "\"expires_at\" %s is not a time that exists", text);
            return false;
        }
        *expires = (int64_t)t;
    }
    if (*expires <= now || *expires - now > TOKEN_LIFETIME_MAX) {
        rp_reply_error(r, 400, "invalid", "\"expires_at\" must be in the next ten years");
        return false;
    }
    return true;
}

void rp_h_tokens_list(rp_req_t *r)
{
    json_t *list;
    rp_page_t pg;

    if (!rp_page_request(r, &pg))
        return;
    list = json_array();
    if (rp_store_token_list(r->w->store, r->tenant.id, &pg, collect_token, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list tokens");
        return;
    }
    rp_page_reply(r, "tokens", list, &pg, "id");
}

void rp_h_token_create(rp_req_t *r)
{
    const rp_tenant_t *tenant = &r->tenant;
    char secret[128];
    uint8_t hash[RP_SHA256_LEN];
    rp_token_t made;
    rp_role_t role;
    json_t *body, *out;
    int64_t expires;
    rp_err_t err;

    body = rp_req_json(r);
    if (body == NULL)
        return;
    role = rp_role_parse(json_string_value(json_object_get(body, "role")));
    if (role == RP_ROLE_NONE || role == RP_ROLE_SYSTEM) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "\"role\" must be admin, contributor or reader");
        return;
    }
    if (!token_expiry(r, body, (int64_t)time(NULL), &expires)) {
        json_decref(body);
        return;
    }
    json_decref(body);
    /* A token never makes one more powerful than itself. (The route asks for an admin, which no
     * new token outranks: this holds the rule should the route ever ask for less.) */
    if (!rp_route_require(r, role, "making a token of that role"))
        return;
    /* A login link's token (console.c) ends with the token that made the link: a token it made
     * would outlive both (review r15web M2). */
    if (r->tok.made_by[0] != '\0') {
        rp_reply_error(r, 403, "link_token",
                       "a login link's session makes no tokens (they would outlive the token "
                       "that made the link): make it with a token of your own");
        return;
    }
    err = rp_token_new(secret, sizeof(secret), hash);
    if (err == RP_OK)
        err = rp_store_token_add(r->w->store, tenant->id, role, hash, expires, NULL, &made);
    rp_wipe(hash, sizeof(hash));
    if (err != RP_OK) {
        rp_wipe(secret, sizeof(secret));
        rp_reply_error(r, 500, "internal", "cannot create the token");
        return;
    }
    out = token_json(&made);
    /* The only time the secret is shown: the service keeps just its hash. */
    json_object_set_new(out, "token", json_string(secret));
    rp_wipe(secret, sizeof(secret));
    rp_log_info("tenant %s: %s token %s created", tenant->id, rp_role_name(role), made.id);
    rp_reply_json(r, 201, out);
}

/*
 * Revoke a token named in a tenant's tokens (scope: that tenant) or in /api/v1/tokens (scope NULL:
 * the system tokens). A token may always revoke itself ("self" or its ID): the routes ask for any
 * role and escalate here to an admin of the tenant, or a system token, for any other token.
 */
static void token_revoke(rp_req_t *r, const char *scope)
{
    const rp_token_t *tok = &r->tok;
    const char *id = rp_req_param(r, "token"), *tenant_id = scope;
    bool self = strcmp(id, "self") == 0 || strcmp(id, tok->id) == 0;
    rp_err_t err;

    if (self) {
        id = tok->id;
        tenant_id = tok->tenant_id[0] != '\0' ? tok->tenant_id : NULL;
    } else if (!rp_route_require(r, scope != NULL ? RP_ROLE_ADMIN : RP_ROLE_SYSTEM,
                                 "revoking another token")) {
        return;
    }
    if (self && scope != NULL && strcmp(scope, tok->tenant_id) != 0)
        err = RP_ERR_NOT_FOUND; /* itself, but named in a tenant it is not of */
    else
        err = rp_store_token_revoke(r->w->store, tenant_id, id);
    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 404, "not_found", "no such token %s",
                       scope != NULL ? "in this tenant" : "among the system tokens");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot revoke the token");
        return;
    }
    rp_restore_mark(r->w->srv->data_dir, r->w->store);
    rp_log_info("%s%s token %s revoked by %s", tenant_id != NULL ? "tenant " : "system",
                tenant_id != NULL ? tenant_id : "", id, self ? "itself" : tok->id);
    rp_reply_json(r, 200, json_pack("{s:s, s:b}", "id", id, "revoked", 1));
}

void rp_h_token_revoke(rp_req_t *r)
{
    token_revoke(r, r->tenant.id);
}

void rp_h_system_token_revoke(rp_req_t *r)
{
    token_revoke(r, NULL);
}

void rp_h_system_tokens_list(rp_req_t *r)
{
    json_t *list;
    rp_page_t pg;

    if (!rp_page_request(r, &pg))
        return;
    list = json_array();
    if (rp_store_token_list(r->w->store, NULL, &pg, collect_token, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list tokens");
        return;
    }
    rp_page_reply(r, "tokens", list, &pg, "id");
}

/* Any token reads its own record. */
void rp_h_token_self(rp_req_t *r)
{
    rp_reply_json(r, 200, token_json(&r->tok));
}

static json_t *device_json(const rp_device_t *d)
{
    /* Blocked (by an operator) and quarantined (by the tenant's policy: threat.c) are refused
     * alike, and shown apart: each has its own time, and a quarantine its reason. */
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:o, s:o}", "device_id", d->id, "tenant", d->tenant_id, "status",
                  d->blocked               ? "blocked"
                  : d->quarantined_at != 0 ? "quarantined"
                                           : "active",
                  "claimed_at", rp_iso_time_json(d->claimed_at), "blocked_at",
                  rp_iso_time_json(d->blocked_at));

    json_object_set_new(o, "quarantine",
                        d->quarantined_at == 0
                            ? json_null()
                            : json_pack("{s:o, s:s}", "since", rp_iso_time_json(d->quarantined_at),
                                        "reason", d->quarantine_reason));

    json_object_set_new(
        o, "last_attestation",
        d->last_attested_at == 0
            ? json_null()
            : json_pack("{s:o, s:s, s:s}", "at", rp_iso_time_json(d->last_attested_at), "result",
                        d->last_passed ? "pass" : "fail", "reason", d->last_reason));
    json_object_set_new(o, "certificate",
                        d->cert_serial[0] == '\0'
                            ? json_null()
                            : json_pack("{s:s, s:o}", "serial", d->cert_serial, "not_after",
                                        rp_iso_time_json(d->cert_not_after)));
    return o;
}

json_t *rp_req_device_ids(rp_req_t *r, json_t **body)
{
    json_t *ids, *v;
    size_t i;

    if ((*body = rp_req_json(r)) == NULL)
        return NULL;
    ids = json_object_get(*body, "device_ids");
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > 1000) {
        json_decref(*body);
        rp_reply_error(r, 400, "invalid", "\"device_ids\" must be a list of 1 to 1000 device IDs");
        return NULL;
    }
    json_array_foreach(ids, i, v)
    {
        if (!rp_device_id_valid(json_string_value(v))) {
            json_decref(*body);
            rp_reply_error(r, 400, "invalid",
                           "device IDs are 64 lowercase hex digits (entry %zu is not)", i);
            return NULL;
        }
    }
    return ids;
}

void rp_h_devices_claim(rp_req_t *r)
{
    const rp_tenant_t *tenant = &r->tenant;
    json_t *body, *ids = rp_req_device_ids(r, &body), *v, *claimed, *refused;
    int64_t now = (int64_t)time(NULL), max = atomic_load(&r->w->srv->max_devices_per_tenant);
    rp_err_t err = RP_OK;
    size_t i;

    if (ids == NULL)
        return;
    claimed = json_array();
    refused = json_array();
    json_array_foreach(ids, i, v)
    {
        err = rp_store_device_claim_upto(r->w->store, tenant->id, json_string_value(v), now, max);
        if (err == RP_OK)
            json_array_append(claimed, v);
        else if (err == RP_ERR_EXISTS)
            json_array_append(refused, v);
        else
            break;
    }
    json_decref(body);
    if (err == RP_ERR_DENIED) { /* the rest are not claimed: those before are */
        rp_log_warn("tenant %s: a claim refused at its %lld devices (--max-devices-per-tenant)",
                    tenant->id, (long long)max);
        rp_reply_json(r, 409,
                      json_pack("{s:s, s:s, s:o, s:o}", "error", "device_limit", "message",
                                "the tenant holds as many devices as it may "
                                "(--max-devices-per-tenant): nothing past the devices in "
                                "\"claimed\" was claimed",
                                "claimed", claimed, "refused", refused));
        return;
    }
    if (err != RP_OK && err != RP_ERR_EXISTS) {
        json_decref(claimed);
        json_decref(refused);
        rp_reply_error(r, 500, "internal", "cannot claim devices");
        return;
    }
    if (json_array_size(refused) > 0) {
        json_t *out = json_pack("{s:s, s:s, s:o, s:o}", "error", "conflict", "message",
                                "some devices belong to another tenant", "claimed", claimed,
                                "refused", refused);
        rp_reply_json(r, 409, out);
        return;
    }
    rp_log_info("tenant %s: %zu device(s) claimed", tenant->id, json_array_size(claimed));
    json_decref(refused);
    rp_reply_json(r, 201, json_pack("{s:o}", "claimed", claimed));
}

struct attest_list {
    json_t *list;
};

static void collect_attestation(void *ctx, const rp_attestation_t *a)
{
    json_t *claims = json_loads(a->claims_json, 0, NULL);

    json_array_append_new(((struct attest_list *)ctx)->list,
                          json_pack("{s:I, s:o, s:s, s:s, s:o, s:o}", "id", (json_int_t)a->id, "at",
                                    rp_iso_time_json(a->at), "result", a->passed ? "pass" : "fail",
                                    "reason", a->reason, "certificate_serial",
                                    a->cert_serial[0] ? json_string(a->cert_serial) : json_null(),
                                    "claims", claims != NULL ? claims : json_null()));
}

/* A device state's name as the fleet's counts name it; RP_DEVICE_STATE_ANY: not one. */
static rp_device_state_t device_state_parse(const char *s)
{
    static const char *const names[] = {"",        "attested",    "cert_expiring", "failed",
                                        "blocked", "quarantined", "never_seen"};

    for (size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0)
            return (rp_device_state_t)i;
    return RP_DEVICE_STATE_ANY;
}

/* Whether s is 1 to RP_DEVICE_ID_LEN lowercase hex digits: the start of a device ID. */
static bool device_prefix_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > RP_DEVICE_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

struct device_page {
    json_t *list;
    char last[RP_DEVICE_ID_SIZE];
};

static void page_device(void *ctx, const rp_device_t *d)
{
    struct device_page *p = ctx;

    json_array_append_new(p->list, device_json(d));
    snprintf(p->last, sizeof(p->last), "%s", d->id);
}

/*
 * GET .../devices: every device (as before), or with any of ?limit=N, ?after=ID, ?state=S,
 * ?prefix=HEX a page of them in ID order, and "next_after" to ask for the next (null after the
 * last): what a console's list of 100,000 devices reads.
 */
void rp_h_devices_list(rp_req_t *r)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    struct device_page page = {json_array(), ""};
    rp_page_t pg = {.limit = RP_PAGE_DEFAULT, .no_upto = true};
    rp_device_state_t state = RP_DEVICE_STATE_ANY;
    long long limit;
    struct evkeyvalq q;
    bool parsed = query != NULL && query[0] != '\0', paged = false, ok = true;
    rp_err_t err;

    if (parsed) {
        ok = evhttp_parse_query_str(query, &q) == 0;
        for (struct evkeyval *kv = ok ? q.tqh_first : NULL; kv != NULL; kv = kv->next.tqe_next) {
            char *end;
            paged = true;
            if (strcmp(kv->key, "limit") == 0) {
                limit = strtoll(kv->value, &end, 10);
                ok = ok && kv->value[0] >= '1' && kv->value[0] <= '9' && *end == '\0' &&
                     limit >= 1 && limit <= RP_PAGE_MAX;
                pg.limit = ok ? (int)limit : RP_PAGE_DEFAULT;
            } else if (strcmp(kv->key, "after") == 0) {
                ok = ok && rp_device_id_valid(kv->value);
                if (ok)
                    snprintf(pg.after, sizeof(pg.after), "%s", kv->value);
            } else if (strcmp(kv->key, "prefix") == 0) {
                ok = ok && device_prefix_ok(kv->value);
                if (ok)
                    rp_page_set_prefix(&pg, kv->value);
            } else if (strcmp(kv->key, "state") == 0) {
                state = device_state_parse(kv->value);
                ok = ok && state != RP_DEVICE_STATE_ANY;
            } else {
                ok = false;
            }
        }
    }
    if (!ok) {
        if (parsed)
            evhttp_clear_headers(&q);
        json_decref(page.list);
        rp_reply_error(r, 400, "invalid",
                       "the devices take ?limit=N (1 to %d), ?after=DEVICE_ID, ?prefix=HEX and "
                       "?state=attested|cert_expiring|failed|blocked|quarantined|never_seen",
                       RP_PAGE_MAX);
        return;
    }
    pg.paged = paged;
    if (parsed)
        evhttp_clear_headers(&q);
    /* Whole (no parameter): the same statement, in the same ID order, at most one more than a
     * whole list answers (paging.h). */
    pg.whole_max = RP_PAGE_WHOLE_MAX + 1;
    err = rp_store_device_page(r->w->store, r->tenant.id, &pg, state, (int64_t)time(NULL),
                               page_device, &page);
    if (err != RP_OK) {
        json_decref(page.list);
        rp_reply_error(r, 500, "internal", "cannot list devices");
        return;
    }
    if (!rp_page_whole_fits(r, page.list, &pg, "devices")) {
        json_decref(page.list);
        return;
    }
    if (!paged) {
        rp_reply_json(r, 200, json_pack("{s:o}", "devices", page.list));
        return;
    }
    /* A full page may have more after it. */
    rp_reply_json(r, 200,
                  json_pack("{s:o, s:o}", "devices", page.list, "next_after",
                            json_array_size(page.list) == (size_t)pg.limit ? json_string(page.last)
                                                                           : json_null()));
}

bool rp_tenant_device(rp_req_t *r, rp_device_t *d)
{
    const char *device_id = rp_req_param(r, "device");
    rp_err_t err = rp_device_id_valid(device_id) ? rp_store_device_get(r->w->store, device_id, d)
                                                 : RP_ERR_NOT_FOUND;

    if (err == RP_OK && strcmp(d->tenant_id, r->tenant.id) != 0)
        err = RP_ERR_NOT_FOUND; /* another tenant's device */
    if (err == RP_ERR_NOT_FOUND)
        rp_reply_error(r, 404, "not_found", "no such device in this tenant");
    else if (err != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot read the device");
    return err == RP_OK;
}

void rp_h_device_get(rp_req_t *r)
{
    rp_device_t d;
    json_t *o, *report;

    if (!rp_tenant_device(r, &d))
        return;
    report = rp_device_report_json(r, d.id); /* what it last said runs (status.c) */
    if (report == NULL) {
        rp_reply_error(r, 500, "internal", "cannot read the device's status report");
        return;
    }
    o = device_json(&d);
    json_object_set_new(o, "report", report);
    rp_reply_json(r, 200, o);
}

void rp_h_device_attestations(rp_req_t *r)
{
    struct attest_list al;
    rp_device_t d;

    if (!rp_tenant_device(r, &d))
        return;
    al.list = json_array();
    if (rp_store_attestation_list(r->w->store, r->tenant.id, d.id, 100, collect_attestation, &al) !=
        RP_OK) {
        json_decref(al.list);
        rp_reply_error(r, 500, "internal", "cannot list attestations");
        return;
    }
    rp_reply_json(r, 200, json_pack("{s:o}", "attestations", al.list));
}

static void block(rp_req_t *r, bool blocked)
{
    int64_t now = (int64_t)time(NULL);
    const char *action = blocked ? "block" : "unblock";
    rp_device_t d;
    rp_err_t err;

    if (!rp_tenant_device(r, &d))
        return;
    err = blocked ? rp_store_device_block(r->w->store, r->tenant.id, d.id, now)
                  : rp_store_device_unblock(r->w->store, r->tenant.id, d.id);
    if (err == RP_OK)
        err = rp_store_device_get(r->w->store, d.id, &d);
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot %s the device", action);
        return;
    }
    if (blocked)
        rp_restore_mark(r->w->srv->data_dir, r->w->store);
    rp_log_info("tenant %s: device %s %sed", r->tenant.id, d.id, action);
    rp_reply_json(r, 200, device_json(&d));
}

void rp_h_device_block(rp_req_t *r)
{
    block(r, true);
}

void rp_h_device_unblock(rp_req_t *r)
{
    block(r, false);
}

static json_t *policy_json(const rp_policy_t *p)
{
    return json_pack("{s:b, s:b, s:b, s:b, s:o}", "require_components", p->require_components,
                     "require_measurement_register", p->require_register, "allow_debug",
                     p->allow_debug, "allow_development", p->allow_development, "updated",
                     rp_iso_time_json(p->updated));
}

/*
 * GET|PUT /api/v1/tenants/T/policy: how the tenant's devices' evidence is appraised. PUT takes
 * any of the three booleans (the others keep their value) and nothing else.
 */
void rp_h_policy_get(rp_req_t *r)
{
    rp_policy_t p;

    if (rp_store_policy_get(r->w->store, r->tenant.id, &p) != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot read the policy");
    else
        rp_reply_json(r, 200, policy_json(&p));
}

/* The body of a PUT of the policy, applied to the stored one (rp_store_settings_edit): what is
 * wrong with it into msg. */
struct policy_edit {
    json_t *body;
    char msg[200];
};

static rp_err_t policy_edit(void *ctx, rp_settings_t *v)
{
    static const struct {
        const char *key;
        size_t offset;
    } fields[] = {
        {"require_components",           offsetof(rp_policy_t, require_components)},
        {"require_measurement_register", offsetof(rp_policy_t, require_register)  },
        {"allow_debug",                  offsetof(rp_policy_t, allow_debug)       },
        {"allow_development",            offsetof(rp_policy_t, allow_development) },
    };
    struct policy_edit *e = ctx;
    json_t *val;
    const char *key;

    json_object_foreach(e->body, key, val)
    {
        size_t i;
        for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            if (strcmp(key, fields[i].key) == 0)
                break;
        if (i == sizeof(fields) / sizeof(fields[0])) {
            snprintf(e->msg, sizeof(e->msg),
                     "the policy takes require_components, require_measurement_register, "
                     "allow_debug and allow_development (\"%.64s\" is not one of them)",
                     key);
            return RP_ERR_INVALID_ARG;
        }
        if (!json_is_boolean(val)) {
            snprintf(e->msg, sizeof(e->msg), "\"%s\" is true or false", fields[i].key);
            return RP_ERR_INVALID_ARG;
        }
        *(bool *)((char *)&v->policy + fields[i].offset) = json_is_true(val);
    }
    return RP_OK;
}

void rp_h_policy_set(rp_req_t *r)
{
    struct policy_edit e = {.body = rp_req_json(r)};
    rp_settings_t v;
    const rp_policy_t *p = &v.policy;
    rp_err_t err;

    if (e.body == NULL)
        return;
    err =
        rp_store_settings_edit(r->w->store, r->tenant.id, RP_SETTINGS_POLICY, policy_edit, &e, &v);
    json_decref(e.body);
    if (err == RP_ERR_INVALID_ARG && e.msg[0] != '\0') {
        rp_reply_error(r, 400, "invalid", "%s", e.msg);
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot set the policy");
        return;
    }
    rp_log_info("tenant %s: appraisal policy set by token %s: components %s, register %s, debug "
                "%s, development mode %s",
                r->tenant.id, r->tok.id, p->require_components ? "required" : "optional",
                p->require_register ? "required" : "optional",
                p->allow_debug ? "allowed" : "refused",
                p->allow_development ? "allowed" : "refused");
    rp_reply_json(r, 200, policy_json(p));
}

void rp_h_ca_get(rp_req_t *r)
{
    const rp_ca_t *ca;

    if (rp_worker_ca(r->w, &r->tenant, &ca) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the tenant CA");
        return;
    }
    rp_reply_bytes(r, 200, "application/x-pem-file", ca->cert_pem, strlen(ca->cert_pem));
}

/*
 * The tenant's CRL, public (relying parties fetch it without a token), from the process's cache:
 * made again when a revocation changed the tenant's revocation count (read from the store at
 * each request, so a block shows at once, on every replica), or when half its life has passed.
 * A flood of requests costs one small read each, not a signature. Clients revalidate each time
 * (no-cache) and a matching If-None-Match gets 304.
 */
#define CRL_REFRESH (30 * 60) /* seconds before a cached CRL is made again: half its life */

static bool etag_matches(const char *header, const char *etag)
{
    size_t n = strlen(etag);

    while (header != NULL && *header != '\0') {
        while (*header == ' ' || *header == ',')
            header++;
        if (strncmp(header, "W/", 2) == 0)
            header += 2;
        if (*header == '*' || (strncmp(header, etag, n) == 0 &&
                               (header[n] == '\0' || header[n] == ',' || header[n] == ' ')))
            return true;
        header = strchr(header, ',');
    }
    return false;
}

/* The tenant's current CRL, copied out of the process's cache (made if need be): OUT *copy
 * (its der malloc'd). Called under srv->crl_lock, so that one worker makes it and the others
 * wait for it. */
static uint64_t tenant_hash(const char *id)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */

    for (; *id != '\0'; id++)
        h = (h ^ (uint8_t)*id) * 1099511628211ull;
    return h;
}

/* The tenant's slot in the cache (an empty one, named, if it has none); NULL when out of memory.
 * The table never holds more than 70% of its slots, so a probe ends at an empty one. */
static rp_crl_cached_t *crl_slot(rp_server_t *srv, const char *tenant_id)
{
    rp_crl_cached_t *c;
    size_t i;

    if ((srv->crls_used + 1) * 10 > srv->crls_cap * 7) {
        size_t cap = srv->crls_cap == 0 ? 64 : 2 * srv->crls_cap;
        rp_crl_cached_t *grown = calloc(cap, sizeof(*grown));
        if (grown == NULL)
            return NULL;
        for (size_t j = 0; j < srv->crls_cap; j++) {
            if (srv->crls[j].tenant_id[0] == '\0')
                continue;
            for (i = tenant_hash(srv->crls[j].tenant_id) & (cap - 1); grown[i].tenant_id[0];
                 i = (i + 1) & (cap - 1))
                ;
            grown[i] = srv->crls[j];
        }
        free(srv->crls);
        srv->crls = grown;
        srv->crls_cap = cap;
    }
    for (i = tenant_hash(tenant_id) & (srv->crls_cap - 1);; i = (i + 1) & (srv->crls_cap - 1)) {
        c = &srv->crls[i];
        if (c->tenant_id[0] == '\0') {
            snprintf(c->tenant_id, sizeof(c->tenant_id), "%s", tenant_id);
            srv->crls_used++;
            return c;
        }
        if (strcmp(c->tenant_id, tenant_id) == 0)
            return c;
    }
}

/* The tenant's current CRL for its revocation count `version` (read before the lock), copied out
 * of the process's cache (made if need be): OUT *copy (its der malloc'd). Called under
 * srv->crl_lock, so that one worker makes it and the others wait for it. */
static rp_err_t crl_current(rp_req_t *r, int64_t version, rp_crl_cached_t *copy)
{
    int64_t now = (int64_t)time(NULL);
    rp_crl_cached_t *slot;
    const rp_ca_t *ca;
    rp_err_t err;

    if ((slot = crl_slot(r->w->srv, r->tenant.id)) == NULL)
        return RP_ERR_NO_MEMORY;
    err = rp_worker_ca(r->w, &r->tenant, &ca);
    if (err != RP_OK)
        return err;
    /* (A count read before another worker's newer CRL was made is older than the slot's: the
     * slot's CRL is current for it.) Made again too when the tenant's CAs changed: one added (a
     * rollover), ended, or begun to sign. */
    if (slot->der == NULL || slot->version < version || now < slot->made ||
        now - slot->made >= CRL_REFRESH || slot->ca_set != rp_ca_set_version(ca)) {
        uint8_t *der = NULL;
        char *pem = NULL;
        size_t len = 0, pem_len = 0;
        free(slot->der);
        slot->der = NULL;
        err = rp_ca_crls(r->w->store, ca, now, &der, &len, &pem, &pem_len);
        /* one allocation, the PEM after the DER */
        slot->der = err == RP_OK ? malloc(len + pem_len + 1) : NULL;
        if (err == RP_OK && slot->der == NULL)
            err = RP_ERR_NO_MEMORY;
        if (err == RP_OK) {
            memcpy(slot->der, der, len);
            slot->len = len;
            slot->pem = (char *)slot->der + len;
            memcpy(slot->pem, pem, pem_len + 1);
            slot->pem_len = pem_len;
        }
        free(der);
        free(pem);
        if (err != RP_OK)
            return err;
        slot->ca_set = rp_ca_set_version(ca);
        atomic_fetch_add(&r->w->srv->metrics.crl_builds, 1);
        slot->version = version;
        slot->made = now;
        slot->next_update = now + RP_CRL_LIFETIME;
        snprintf(slot->etag, sizeof(slot->etag), "\"%llx-%llx\"", (unsigned long long)version,
                 (unsigned long long)now);
    }
    *copy = *slot;
    copy->der = malloc(slot->len + slot->pem_len + 1);
    if (copy->der == NULL)
        return RP_ERR_NO_MEMORY;
    memcpy(copy->der, slot->der, slot->len + slot->pem_len + 1);
    copy->pem = (char *)copy->der + slot->len;
    return RP_OK;
}

static void http_date(int64_t t, char out[64])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, 64, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        out[0] = '\0';
}

void rp_h_crl_get(rp_req_t *r)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(r->req), "If-None-Match");
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    rp_crl_cached_t crl = {0}, *c = &crl;
    char etag[sizeof(crl.etag) + 24], date[64];
    struct evkeyvalq q;
    const char *format = NULL, *gen_text = NULL;
    uint8_t *one = NULL; /* ?generation: that CA's CRL alone */
    size_t one_len = 0;
    long long generation = -1;
    int64_t version;
    bool pem = false;
    rp_err_t err;

    /* ?format=pem|der (any case) and ?generation=N (a CA's own CRL); nothing else is taken,
     * rather than answered in a form the client did not ask for. */
    if (query != NULL) {
        bool ok = evhttp_parse_query_str(query, &q) == 0;
        char *end = NULL;
        for (struct evkeyval *kv = ok ? q.tqh_first : NULL; kv != NULL; kv = kv->next.tqe_next)
            if (strcmp(kv->key, "format") != 0 && strcmp(kv->key, "generation") != 0)
                ok = false;
        format = ok ? evhttp_find_header(&q, "format") : NULL;
        gen_text = ok ? evhttp_find_header(&q, "generation") : NULL;
        ok = ok &&
             (format == NULL || strcasecmp(format, "pem") == 0 || strcasecmp(format, "der") == 0);
        if (ok && gen_text != NULL) {
            errno = 0;
            generation =
                gen_text[0] >= '0' && gen_text[0] <= '9' ? strtoll(gen_text, &end, 10) : -1;
            ok = errno == 0 && end != NULL && *end == '\0' && generation >= 0 &&
                 generation <= INT_MAX;
        }
        pem = ok && format != NULL && strcasecmp(format, "pem") == 0;
        evhttp_clear_headers(&q);
        if (!ok) {
            rp_reply_error(r, 400, "invalid",
                           "the CRL takes ?format=pem or ?format=der and ?generation=N only");
            return;
        }
    }
    err = rp_store_crl_version(r->w->store, r->tenant.id, &version);
    if (err == RP_OK) {
        pthread_mutex_lock(&r->w->srv->crl_lock);
        err = crl_current(r, version, &crl);
        pthread_mutex_unlock(&r->w->srv->crl_lock);
    }
    if (err == RP_OK && generation >= 0) {
        const rp_ca_t *ca;
        err = rp_worker_ca(r->w, &r->tenant, &ca);
        if (err == RP_OK)
            err = rp_ca_crl_of(ca, c->pem, (int)generation, pem, &one, &one_len);
        if (err == RP_ERR_NOT_FOUND) {
            free(crl.der);
            rp_reply_error(r, 404, "not_found", "the tenant has no live CA of that generation");
            return;
        }
    }
    if (err != RP_OK) {
        free(crl.der);
        free(one);
        rp_reply_error(r, 500, "internal", "cannot make the CRL");
        return;
    }
    /* One tag per representation: the PEM and DER forms, and each CA's, are different bytes. */
    {
        char gen_tag[24] = "";
        if (generation >= 0)
            snprintf(gen_tag, sizeof(gen_tag), "-g%lld", generation);
        snprintf(etag, sizeof(etag), "%.*s%s%s\"", (int)strlen(c->etag) - 1, c->etag, gen_tag,
                 pem ? "-pem" : "");
    }
    evhttp_add_header(h, "ETag", etag);
    evhttp_add_header(h, "Cache-Control", "public, no-cache");
    http_date(c->made, date);
    evhttp_add_header(h, "Last-Modified", date);
    http_date(c->next_update, date);
    evhttp_add_header(h, "Expires", date);
    if (etag_matches(inm, etag)) {
        free(crl.der);
        free(one);
        rp_reply_bytes(r, 304, pem ? "application/x-pem-file" : "application/pkix-crl", "", 0);
        return;
    }
    if (one != NULL) {
        rp_reply_bytes(r, 200, pem ? "application/x-pem-file" : "application/pkix-crl", one,
                       one_len);
    } else if (pem) {
        rp_reply_bytes(r, 200, "application/x-pem-file", c->pem, c->pem_len);
    } else {
        rp_reply_bytes(r, 200, "application/pkix-crl", c->der, c->len);
    }
    free(crl.der);
    free(one);
}

/* GET /api/v1/openapi.json (public): the API's description, compiled in (openapi.h). It changes
 * only with the server, so clients keep it and revalidate (no-cache) with its ETag: 304. */
void rp_h_openapi(rp_req_t *r)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(r->req), "If-None-Match");

    evhttp_add_header(h, "ETag", rp_openapi_etag);
    evhttp_add_header(h, "Cache-Control", "public, no-cache");
    if (etag_matches(inm, rp_openapi_etag))
        rp_reply_bytes(r, 304, "application/json", "", 0);
    else
        rp_reply_bytes(r, 200, "application/json", rp_openapi_json, rp_openapi_json_len);
}

static void collect_unproven(void *ctx, const rp_unproven_source_t *u)
{
    json_array_append_new(ctx, json_pack("{s:s, s:I, s:o, s:o, s:s, s:s}", "address", u->address,
                                         "count", (json_int_t)u->count, "first_at",
                                         rp_iso_time_json(u->first_at), "last_at",
                                         rp_iso_time_json(u->last_at), "last_reason",
                                         u->last_reason, "last_device_id", u->last_device_id));
}

/* GET /api/v1/unproven-attestations (system): who sends evidence that proves nothing, newest
 * first. Not a tenant's: the devices they name need not be anyone's. */
void rp_h_unproven_list(rp_req_t *r)
{
    json_t *list = json_array();

    if (rp_store_unproven_list(r->w->store, 1000, collect_unproven, list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list unproven attestations");
        return;
    }
    rp_reply_json(r, 200, json_pack("{s:o}", "sources", list));
}

/* The tenant CAs (ca.c, the rollover): how long until the first tenant is left without a valid
 * CA (its newest CA ends; a rollover that works keeps this above a third of a CA's life, 243
 * days: alert well before it nears 0), and the certificates refused for want of one. */
#define RP_CA_METRIC_EVERY 300

static void tenant_ca_metrics(rp_worker_t *w, struct evbuffer *buf)
{
    rp_metrics_t *m = &w->srv->metrics;
    int64_t now = (int64_t)time(NULL), read = atomic_load(&m->ca_soonest_read);
    int64_t soonest = atomic_load(&m->ca_soonest);
    rp_err_t err = RP_OK;

    /* (Two workers reading at once both store the same figure.) */
    if (read == 0 || now < read || now - read >= RP_CA_METRIC_EVERY) {
        err = rp_store_ca_soonest_end(w->store, &soonest);
        if (err == RP_ERR_NOT_FOUND)
            soonest = 0;
        if (err == RP_OK || err == RP_ERR_NOT_FOUND) {
            atomic_store(&m->ca_soonest, soonest);
            atomic_store(&m->ca_soonest_read, now);
        }
    }
    if (err == RP_OK && soonest == 0)
        err = RP_ERR_NOT_FOUND;
    if (err == RP_OK)
        evbuffer_add_printf(buf,
                            "# HELP rampart_tenant_ca_expires_seconds Seconds until the soonest "
                            "end of a tenant's newest CA, over the tenants (negative: ended).\n"
                            "# TYPE rampart_tenant_ca_expires_seconds gauge\n"
                            "rampart_tenant_ca_expires_seconds %lld\n",
                            (long long)(soonest - (int64_t)time(NULL)));
    else if (err != RP_ERR_NOT_FOUND)
        rp_log_error("metrics: cannot read the tenant CAs' end: %s", rp_strerror(err));
    evbuffer_add_printf(buf,
                        "# HELP rampart_tenant_ca_signing_refused_total Device certificates "
                        "refused because their tenant had no valid CA.\n"
                        "# TYPE rampart_tenant_ca_signing_refused_total counter\n"
                        "rampart_tenant_ca_signing_refused_total %llu\n",
                        (unsigned long long)rp_ca_signing_refused());
}

void rp_h_metrics(rp_req_t *r)
{
    rp_metrics_t *m = &r->w->srv->metrics;
    struct evbuffer *buf = evbuffer_new();

    if (buf == NULL) {
        rp_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    evbuffer_add_printf(buf, "# HELP rampart_http_requests_total HTTP responses sent, by class.\n"
                             "# TYPE rampart_http_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        evbuffer_add_printf(buf, "rampart_http_requests_total{code=\"%dxx\"} %llu\n", c,
                            (unsigned long long)atomic_load(&m->requests[c]));
    evbuffer_add_printf(buf,
                        "# HELP rampart_http_requests_resumed_total Requests over a resumed "
                        "TLS session.\n# TYPE rampart_http_requests_resumed_total counter\n"
                        "rampart_http_requests_resumed_total %llu\n",
                        (unsigned long long)atomic_load(&m->requests_resumed));
    evbuffer_add_printf(buf, "# HELP rampart_attestations_total Attestations, by result and "
                             "reason.\n# TYPE rampart_attestations_total counter\n");
    for (int i = 0; i < RP_REASON_COUNT; i++)
        evbuffer_add_printf(buf, "rampart_attestations_total{result=\"%s\",reason=\"%s\"} %llu\n",
                            i == RP_REASON_PASS ? "pass" : "fail",
                            rp_attest_reason_code((rp_attest_reason_t)i),
                            (unsigned long long)atomic_load(&m->attestations[i]));
    evbuffer_add_printf(buf,
                        "# HELP rampart_certificates_issued_total Device certificates "
                        "issued.\n# TYPE rampart_certificates_issued_total counter\n"
                        "rampart_certificates_issued_total %llu\n",
                        (unsigned long long)atomic_load(&m->certificates_issued));
    evbuffer_add_printf(buf,
                        "# HELP rampart_nonces_issued_total Attestation nonces issued.\n"
                        "# TYPE rampart_nonces_issued_total counter\n"
                        "rampart_nonces_issued_total %llu\n",
                        (unsigned long long)atomic_load(&m->nonces_issued));
    evbuffer_add_printf(buf,
                        "# HELP rampart_image_bytes_sent_total Image bytes sent to devices.\n"
                        "# TYPE rampart_image_bytes_sent_total counter\n"
                        "rampart_image_bytes_sent_total %llu\n",
                        (unsigned long long)atomic_load(&m->image_bytes_sent));
    evbuffer_add_printf(buf,
                        "# HELP rampart_rate_limited_total Attestation requests (and console "
                        "logins: login; token requests past wrong tokens: token; EST "
                        "re-enrollments past their device's limit: reenroll) answered 429, "
                        "by the limit they hit.\n"
                        "# TYPE rampart_rate_limited_total counter\n"
                        "rampart_rate_limited_total{limit=\"address\"} %llu\n"
                        "rampart_rate_limited_total{limit=\"unclaimed\"} %llu\n"
                        "rampart_rate_limited_total{limit=\"login\"} %llu\n"
                        "rampart_rate_limited_total{limit=\"token\"} %llu\n"
                        "rampart_rate_limited_total{limit=\"reenroll\"} %llu\n",
                        (unsigned long long)atomic_load(&m->limited_address),
                        (unsigned long long)atomic_load(&m->limited_unclaimed),
                        (unsigned long long)atomic_load(&m->limited_login),
                        (unsigned long long)atomic_load(&m->limited_token),
                        (unsigned long long)atomic_load(&m->limited_reenroll));
    evbuffer_add_printf(buf,
                        "# HELP rampart_connections_open Connections open now.\n"
                        "# TYPE rampart_connections_open gauge\n"
                        "rampart_connections_open %d\n"
                        "# HELP rampart_connections_refused_total Connections refused at the "
                        "connection limit.\n# TYPE rampart_connections_refused_total counter\n"
                        "rampart_connections_refused_total %llu\n",
                        atomic_load(&r->w->srv->connections),
                        (unsigned long long)atomic_load(&m->connections_refused));
    evbuffer_add_printf(buf,
                        "# HELP rampart_crl_builds_total CRLs made and signed (the others "
                        "were served from the cache).\n# TYPE rampart_crl_builds_total counter\n"
                        "rampart_crl_builds_total %llu\n",
                        (unsigned long long)atomic_load(&m->crl_builds));
    evbuffer_add_printf(buf,
                        "# HELP rampart_attestations_unproven_total Failed attestations that "
                        "prove nothing about their device (bad signature, bad nonce, replay...): "
                        "counted per source address, not in the device's history.\n"
                        "# TYPE rampart_attestations_unproven_total counter\n"
                        "rampart_attestations_unproven_total %llu\n",
                        (unsigned long long)atomic_load(&m->attestations_unproven));
    evbuffer_add_printf(buf,
                        "# HELP rampart_connections_closed_total Connections the service closed "
                        "before they had a request answered, by reason.\n"
                        "# TYPE rampart_connections_closed_total counter\n"
                        "rampart_connections_closed_total{reason=\"per_address_cap\"} %llu\n"
                        "rampart_connections_closed_total{reason=\"request_deadline\"} %llu\n"
                        "rampart_connections_closed_total{reason=\"unread_input\"} %llu\n",
                        (unsigned long long)atomic_load(&m->connections_refused_address),
                        (unsigned long long)atomic_load(&m->connections_deadline),
                        (unsigned long long)atomic_load(&m->connections_unread));
    tenant_ca_metrics(r->w, buf);
    evbuffer_add_printf(
        buf,
        "# HELP rampart_server_certificate_expires_seconds Seconds until the "
        "TLS certificate the service serves ends (renewed in its last 30 days; "
        "negative once ended).\n"
        "# TYPE rampart_server_certificate_expires_seconds gauge\n"
        "rampart_server_certificate_expires_seconds %lld\n",
        (long long)(atomic_load(&r->w->srv->server_cert_not_after) - (int64_t)time(NULL)));
    if (atomic_load(&r->w->srv->service_ca_not_after) != 0)
        evbuffer_add_printf(
            buf,
            "# HELP rampart_service_ca_expires_seconds Seconds until the newest "
            "service CA (the successor, once made) ends; its successor is due "
            "below a third of its life (1216 days).\n"
            "# TYPE rampart_service_ca_expires_seconds gauge\n"
            "rampart_service_ca_expires_seconds %lld\n",
            (long long)(atomic_load(&r->w->srv->service_ca_not_after) - (int64_t)time(NULL)));
    rp_reports_metrics(buf);
    rp_recorder_metrics(r->w->srv->recorder, buf);
    rp_deltas_metrics(r->w->srv->deltas, buf);
    rp_threat_metrics(r->w, buf);
    rp_reply_bytes(r, 200, "text/plain; version=0.0.4", evbuffer_pullup(buf, -1),
                   evbuffer_get_length(buf));
    evbuffer_free(buf);
}
