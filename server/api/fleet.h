/*
 * The fleet (fleet.c): products, device groups and their membership and settings, deployments.
 */
#ifndef RAMPART_SERVER_FLEET_H
#define RAMPART_SERVER_FLEET_H

typedef struct rp_req rp_req_t;

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

#endif /* RAMPART_SERVER_FLEET_H */
