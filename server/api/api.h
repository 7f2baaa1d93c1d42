/*
 * The operator API's core resources (api.c): tenants and tokens, devices (claim, list, block),
 * the appraisal policy, the tenant CA and CRL, the API's own description, the metrics. The
 * handlers are named in the route table (routes.c); the helpers below are for other handlers.
 */
#ifndef RAMPART_SERVER_API_H
#define RAMPART_SERVER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store.h"

typedef struct rp_req rp_req_t;

void rp_h_metrics(rp_req_t *r);
void rp_h_openapi(rp_req_t *r);
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
void rp_h_devices_list(rp_req_t *r);
void rp_h_devices_claim(rp_req_t *r);
void rp_h_device_get(rp_req_t *r);
void rp_h_device_attestations(rp_req_t *r);
void rp_h_device_block(rp_req_t *r);
void rp_h_device_unblock(rp_req_t *r);

/* The path's {device}, if the request's tenant holds it; false: 404 or 500 sent. */
bool rp_tenant_device(rp_req_t *r, rp_device_t *d);
/* The body's "device_ids": 1 to 1000 valid device IDs (borrowed from *body, which the caller
 * frees); on failure a 400 has been sent and NULL is returned. */
json_t *rp_req_device_ids(rp_req_t *r, json_t **body);
/* A new token's secret (cap bytes, for the caller to show once) and the SHA-256 stored of it. */
rp_err_t rp_token_new(char *secret, size_t cap, uint8_t hash[RP_SHA256_LEN]) RP_MUST_CHECK;

#endif /* RAMPART_SERVER_API_H */
