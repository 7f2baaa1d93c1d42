/*
 * The operator API (/api/v1/tenants/...): tenants, tokens, devices, the tenant CA and its CRL,
 * and /metrics. Every request but the CRL's and the metrics' carries a bearer token; every object
 * is reached through its tenant, and another tenant's is answered as if it did not exist.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include "rampart/hex.h"
#include "rampart/log.h"
#include "server.h"

#define TOKEN_PREFIX "rpt_"
#define TOKEN_BYTES 32

rp_err_t rp_token_new(char *secret, size_t cap, uint8_t hash[RP_SHA256_LEN]);
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

/* The bearer token's record; on failure a 401 has been sent. */
static bool authenticate(rp_req_t *r, rp_token_t *tok)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    uint8_t hash[RP_SHA256_LEN];
    rp_err_t err;

    if (h == NULL || strncmp(h, "Bearer ", 7) != 0) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
        rp_reply_error(r, 401, "unauthorized", "a bearer token is required");
        return false;
    }
    h += 7;
    if (strlen(h) > 256 || rp_sha256(h, strlen(h), hash) != RP_OK) {
        rp_reply_error(r, 401, "unauthorized", "invalid token");
        return false;
    }
    err = rp_store_token_lookup(r->w->store, hash, tok);
    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 401, "unauthorized", "invalid token");
        return false;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot check the token");
        return false;
    }
    return true;
}

/* The tenant, if the token may act on it with the given role; otherwise an error was sent. */
static bool tenant_access(rp_req_t *r, const rp_token_t *tok, const char *tenant_id, rp_role_t need,
                          rp_tenant_t *tenant)
{
    rp_err_t err;

    /* Another tenant's objects do not exist, as far as this token can tell. */
    if (tok->role != RP_ROLE_SYSTEM && strcmp(tok->tenant_id, tenant_id) != 0) {
        rp_reply_error(r, 404, "not_found", "no such tenant");
        return false;
    }
    err = rp_store_tenant_get(r->w->store, tenant_id, tenant);
    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 404, "not_found", "no such tenant");
        return false;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the tenant");
        return false;
    }
    if (tok->role < need) {
        rp_reply_error(r, 403, "forbidden", "this needs the %s role (the token is %s)",
                       rp_role_name(need), rp_role_name(tok->role));
        return false;
    }
    return true;
}

static json_t *time_or_null(int64_t t)
{
    char iso[32];

    if (t == 0)
        return json_null();
    rp_iso_time(t, iso);
    return json_string(iso);
}

static json_t *tenant_json(const rp_tenant_t *t)
{
    return json_pack("{s:s, s:s, s:o}", "id", t->id, "name", t->name, "created",
                     time_or_null(t->created));
}

static void collect_tenant(void *ctx, const rp_tenant_t *t)
{
    json_array_append_new(ctx, tenant_json(t));
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > RP_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static void tenants(rp_req_t *r, const rp_token_t *tok)
{
    rp_tenant_t t;
    json_t *body, *list;
    const char *name;
    rp_err_t err;

    if (r->method == EVHTTP_REQ_GET) {
        list = json_array();
        if (tok->role == RP_ROLE_SYSTEM) {
            err = rp_store_tenant_list(r->w->store, collect_tenant, list);
        } else {
            err = rp_store_tenant_get(r->w->store, tok->tenant_id, &t);
            if (err == RP_OK)
                collect_tenant(list, &t);
        }
        if (err != RP_OK) {
            json_decref(list);
            rp_reply_error(r, 500, "internal", "cannot list tenants");
            return;
        }
        rp_reply_json(r, 200, json_pack("{s:o}", "tenants", list));
        return;
    }
    if (r->method != EVHTTP_REQ_POST) {
        rp_reply_error(r, 405, "method_not_allowed", "use GET or POST");
        return;
    }
    if (tok->role != RP_ROLE_SYSTEM) {
        rp_reply_error(r, 403, "forbidden", "only a system token creates tenants");
        return;
    }
    body = rp_req_json(r);
    if (body == NULL)
        return;
    name = json_string_value(json_object_get(body, "name"));
    if (name == NULL || !name_ok(name)) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid",
                       "\"name\" must be a string of 1 to %d printable "
                       "characters",
                       RP_NAME_MAX);
        return;
    }
    err = rp_store_tenant_create(r->w->store, name, &t);
    json_decref(body);
    if (err == RP_ERR_EXISTS) {
        rp_reply_error(r, 409, "conflict", "a tenant with that name exists");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot create the tenant");
        return;
    }
    rp_log_info("tenant %s (%s) created", t.id, t.name);
    rp_reply_json(r, 201, tenant_json(&t));
}

static json_t *token_json(const rp_token_t *t)
{
    return json_pack("{s:s, s:s, s:o}", "id", t->id, "role", rp_role_name(t->role), "created",
                     time_or_null(t->created));
}

static void collect_token(void *ctx, const rp_token_t *t)
{
    json_array_append_new(ctx, token_json(t));
}

static void tokens(rp_req_t *r, const rp_token_t *tok, const rp_tenant_t *tenant)
{
    char secret[128];
    uint8_t hash[RP_SHA256_LEN];
    rp_token_t made;
    rp_role_t role;
    json_t *body, *list, *out;
    rp_err_t err;

    if (r->method == EVHTTP_REQ_GET) {
        list = json_array();
        if (rp_store_token_list(r->w->store, tenant->id, collect_token, list) != RP_OK) {
            json_decref(list);
            rp_reply_error(r, 500, "internal", "cannot list tokens");
            return;
        }
        rp_reply_json(r, 200, json_pack("{s:o}", "tokens", list));
        return;
    }
    if (r->method != EVHTTP_REQ_POST) {
        rp_reply_error(r, 405, "method_not_allowed", "use GET or POST");
        return;
    }
    body = rp_req_json(r);
    if (body == NULL)
        return;
    role = rp_role_parse(json_string_value(json_object_get(body, "role")));
    json_decref(body);
    if (role == RP_ROLE_NONE || role == RP_ROLE_SYSTEM) {
        rp_reply_error(r, 400, "invalid", "\"role\" must be admin, contributor or reader");
        return;
    }
    if (role > tok->role) {
        rp_reply_error(r, 403, "forbidden", "a token cannot make one more powerful than itself");
        return;
    }
    err = rp_token_new(secret, sizeof(secret), hash);
    if (err == RP_OK)
        err = rp_store_token_create(r->w->store, tenant->id, role, hash, &made);
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

static json_t *device_json(const rp_device_t *d)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "device_id", d->id, "tenant", d->tenant_id,
                          "status", d->blocked ? "blocked" : "active", "claimed_at",
                          time_or_null(d->claimed_at), "blocked_at", time_or_null(d->blocked_at));

    json_object_set_new(o, "last_attestation",
                        d->last_attested_at == 0
                            ? json_null()
                            : json_pack("{s:o, s:s, s:s}", "at", time_or_null(d->last_attested_at),
                                        "result", d->last_passed ? "pass" : "fail", "reason",
                                        d->last_reason));
    json_object_set_new(o, "certificate",
                        d->cert_serial[0] == '\0'
                            ? json_null()
                            : json_pack("{s:s, s:o}", "serial", d->cert_serial, "not_after",
                                        time_or_null(d->cert_not_after)));
    return o;
}

static void collect_device(void *ctx, const rp_device_t *d)
{
    json_array_append_new(ctx, device_json(d));
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

static void claim_devices(rp_req_t *r, const rp_tenant_t *tenant)
{
    json_t *body, *ids = rp_req_device_ids(r, &body), *v, *claimed, *refused;
    int64_t now = (int64_t)time(NULL);
    rp_err_t err = RP_OK;
    size_t i;

    if (ids == NULL)
        return;
    claimed = json_array();
    refused = json_array();
    json_array_foreach(ids, i, v)
    {
        err = rp_store_device_claim(r->w->store, tenant->id, json_string_value(v), now);
        if (err == RP_OK)
            json_array_append(claimed, v);
        else if (err == RP_ERR_EXISTS)
            json_array_append(refused, v);
        else
            break;
    }
    json_decref(body);
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
                                    time_or_null(a->at), "result", a->passed ? "pass" : "fail",
                                    "reason", a->reason, "certificate_serial",
                                    a->cert_serial[0] ? json_string(a->cert_serial) : json_null(),
                                    "claims", claims != NULL ? claims : json_null()));
}

static void device(rp_req_t *r, const rp_token_t *tok, const rp_tenant_t *tenant,
                   const char *device_id, const char *action)
{
    rp_device_t d;
    int64_t now = (int64_t)time(NULL);
    rp_err_t err;

    if (!rp_device_id_valid(device_id)) {
        rp_reply_error(r, 404, "not_found", "no such device");
        return;
    }
    err = rp_store_device_get(r->w->store, device_id, &d);
    if (err == RP_OK && strcmp(d.tenant_id, tenant->id) != 0)
        err = RP_ERR_NOT_FOUND; /* another tenant's device */
    if (err == RP_ERR_NOT_FOUND) {
        rp_reply_error(r, 404, "not_found", "no such device in this tenant");
        return;
    }
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the device");
        return;
    }
    if (action == NULL) {
        if (r->method != EVHTTP_REQ_GET)
            rp_reply_error(r, 405, "method_not_allowed", "use GET");
        else
            rp_reply_json(r, 200, device_json(&d));
        return;
    }
    if (strcmp(action, "attestations") == 0) {
        struct attest_list al = {json_array()};
        if (rp_store_attestation_list(r->w->store, tenant->id, device_id, 100, collect_attestation,
                                      &al) != RP_OK) {
            json_decref(al.list);
            rp_reply_error(r, 500, "internal", "cannot list attestations");
            return;
        }
        rp_reply_json(r, 200, json_pack("{s:o}", "attestations", al.list));
        return;
    }
    if (strcmp(action, "block") != 0 && strcmp(action, "unblock") != 0) {
        rp_reply_error(r, 404, "not_found", "no such resource");
        return;
    }
    if (r->method != EVHTTP_REQ_POST) {
        rp_reply_error(r, 405, "method_not_allowed", "use POST");
        return;
    }
    if (tok->role < RP_ROLE_ADMIN) {
        rp_reply_error(r, 403, "forbidden", "this needs the admin role (the token is %s)",
                       rp_role_name(tok->role));
        return;
    }
    err = strcmp(action, "block") == 0
              ? rp_store_device_block(r->w->store, tenant->id, device_id, now)
              : rp_store_device_unblock(r->w->store, tenant->id, device_id);
    if (err == RP_OK)
        err = rp_store_device_get(r->w->store, device_id, &d);
    if (err != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot %s the device", action);
        return;
    }
    rp_log_info("tenant %s: device %s %sed", tenant->id, device_id, action);
    rp_reply_json(r, 200, device_json(&d));
}

static void ca_cert(rp_req_t *r, const rp_tenant_t *tenant)
{
    const rp_ca_t *ca;

    if (rp_worker_ca(r->w, tenant, &ca) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the tenant CA");
        return;
    }
    rp_reply_bytes(r, 200, "application/x-pem-file", ca->cert_pem, strlen(ca->cert_pem));
}

/* Public: relying parties (brokers, peers) fetch it without a token. */
static void crl(rp_req_t *r, const char *tenant_id)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    rp_tenant_t tenant;
    const rp_ca_t *ca;
    uint8_t *der;
    size_t len;

    if (rp_store_tenant_get(r->w->store, tenant_id, &tenant) != RP_OK) {
        rp_reply_error(r, 404, "not_found", "no such tenant");
        return;
    }
    if (rp_worker_ca(r->w, &tenant, &ca) != RP_OK ||
        rp_ca_crl(r->w->store, ca, (int64_t)time(NULL), &der, &len) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot make the CRL");
        return;
    }
    if (query != NULL && strcmp(query, "format=pem") == 0) {
        char *b64;
        if (rp_base64_encode(der, len, &b64) == RP_OK) {
            struct evbuffer *buf = evbuffer_new();
            size_t n = strlen(b64);
            evbuffer_add_printf(buf, "-----BEGIN X509 CRL-----\n");
            for (size_t i = 0; i < n; i += 64)
                evbuffer_add_printf(buf, "%.*s\n", (int)(n - i < 64 ? n - i : 64), b64 + i);
            evbuffer_add_printf(buf, "-----END X509 CRL-----\n");
            rp_reply_bytes(r, 200, "application/x-pem-file", evbuffer_pullup(buf, -1),
                           evbuffer_get_length(buf));
            evbuffer_free(buf);
            free(b64);
        } else {
            rp_reply_error(r, 500, "internal", "out of memory");
        }
    } else {
        rp_reply_bytes(r, 200, "application/pkix-crl", der, len);
    }
    free(der);
}

void rp_api_handle(rp_req_t *r)
{
    rp_token_t tok;
    rp_tenant_t tenant;
    const char *tid;

    /* /api/v1/tenants[/T[/...]] */
    if (r->nparts < 3 || strcmp(r->parts[2], "tenants") != 0) {
        rp_reply_error(r, 404, "not_found", "no such resource");
        return;
    }
    if (r->nparts == 5 && strcmp(r->parts[4], "crl") == 0 && r->method == EVHTTP_REQ_GET) {
        crl(r, r->parts[3]);
        return;
    }
    if (!authenticate(r, &tok))
        return;
    if (r->nparts == 3) {
        tenants(r, &tok);
        return;
    }
    tid = r->parts[3];
    if (r->nparts == 4) {
        if (tenant_access(r, &tok, tid, RP_ROLE_READER, &tenant))
            rp_reply_json(r, 200, tenant_json(&tenant));
        return;
    }
    if (r->nparts == 5 && strcmp(r->parts[4], "tokens") == 0) {
        if (tenant_access(r, &tok, tid, RP_ROLE_ADMIN, &tenant))
            tokens(r, &tok, &tenant);
        return;
    }
    if (r->nparts == 5 && strcmp(r->parts[4], "ca") == 0) {
        if (tenant_access(r, &tok, tid, RP_ROLE_READER, &tenant))
            ca_cert(r, &tenant);
        return;
    }
    if (r->nparts == 5 && strcmp(r->parts[4], "devices") == 0) {
        if (r->method == EVHTTP_REQ_GET) {
            json_t *list = json_array();
            if (!tenant_access(r, &tok, tid, RP_ROLE_READER, &tenant)) {
                json_decref(list);
                return;
            }
            if (rp_store_device_list(r->w->store, tenant.id, collect_device, list) != RP_OK) {
                json_decref(list);
                rp_reply_error(r, 500, "internal", "cannot list devices");
                return;
            }
            rp_reply_json(r, 200, json_pack("{s:o}", "devices", list));
        } else if (r->method == EVHTTP_REQ_POST) {
            if (tenant_access(r, &tok, tid, RP_ROLE_CONTRIBUTOR, &tenant))
                claim_devices(r, &tenant);
        } else {
            rp_reply_error(r, 405, "method_not_allowed", "use GET or POST");
        }
        return;
    }
    if ((r->nparts == 6 || r->nparts == 7) && strcmp(r->parts[4], "devices") == 0) {
        if (tenant_access(r, &tok, tid, RP_ROLE_READER, &tenant))
            device(r, &tok, &tenant, r->parts[5], r->nparts == 7 ? r->parts[6] : NULL);
        return;
    }
    if (r->nparts >= 5 && tenant_access(r, &tok, tid, RP_ROLE_READER, &tenant)) {
        if (!rp_updates_handle(r, &tok, &tenant))
            rp_reply_error(r, 404, "not_found", "no such resource");
    }
}

void rp_metrics_handle(rp_req_t *r)
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
                        "# HELP rampart_rate_limited_total Attestation requests answered 429, by "
                        "the limit they hit.\n# TYPE rampart_rate_limited_total counter\n"
                        "rampart_rate_limited_total{limit=\"address\"} %llu\n"
                        "rampart_rate_limited_total{limit=\"unclaimed\"} %llu\n",
                        (unsigned long long)atomic_load(&m->limited_address),
                        (unsigned long long)atomic_load(&m->limited_unclaimed));
    evbuffer_add_printf(buf,
                        "# HELP rampart_connections_open Connections open now.\n"
                        "# TYPE rampart_connections_open gauge\n"
                        "rampart_connections_open %d\n"
                        "# HELP rampart_connections_refused_total Connections refused at the "
                        "connection limit.\n# TYPE rampart_connections_refused_total counter\n"
                        "rampart_connections_refused_total %llu\n",
                        atomic_load(&r->w->srv->connections),
                        (unsigned long long)atomic_load(&m->connections_refused));
    rp_conn_metrics(r->w->srv, buf);
    rp_reply_bytes(r, 200, "text/plain; version=0.0.4", evbuffer_pullup(buf, -1),
                   evbuffer_get_length(buf));
    evbuffer_free(buf);
}
