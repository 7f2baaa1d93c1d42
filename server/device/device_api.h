/*
 * Signed update metadata and what devices fetch and report over mutual TLS (device_api.c): the
 * tenant's online key and root metadata, a device's roots, targets, images and deltas, its update
 * reports, development-mode capabilities; and the check of a device's certificate the route table
 * makes for every device route.
 */
#ifndef RAMPART_SERVER_DEVICE_API_H
#define RAMPART_SERVER_DEVICE_API_H

#include <stdbool.h>

#include "store.h"

typedef struct rp_req rp_req_t;

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

/* Whether the device's last attestation failed (it is served then on recovery routes only). */
bool rp_device_failed(const rp_device_t *device);

/* The device a certificate belongs to, if it may be served (RP_AUTH_DEVICE; recovery: the route
 * is RP_ROUTE_RECOVERY); false: 401/403 sent. */
bool rp_device_auth(rp_req_t *r, rp_device_t *device, bool recovery);

#endif /* RAMPART_SERVER_DEVICE_API_H */
