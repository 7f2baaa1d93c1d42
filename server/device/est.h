/* Enrollment over Secure Transport, RFC 7030 (est.c): its two routes. */
#ifndef RAMPART_SERVER_EST_H
#define RAMPART_SERVER_EST_H

typedef struct rp_req rp_req_t;

void rp_h_est_cacerts(rp_req_t *r);
void rp_h_est_simplereenroll(rp_req_t *r);

#endif /* RAMPART_SERVER_EST_H */
