/* What devices report of what runs (status.c): the status report and the events it carries. */
#ifndef RAMPART_SERVER_STATUS_H
#define RAMPART_SERVER_STATUS_H

#include <jansson.h>

typedef struct rp_req rp_req_t;

void rp_h_device_status(rp_req_t *r);
void rp_h_device_events(rp_req_t *r);
/* The device's newest status report as GET .../devices/D shows it ("report"): null when it never
 * reported, NULL when it cannot be read. */
json_t *rp_device_report_json(rp_req_t *r, const char *device_id);

#endif /* RAMPART_SERVER_STATUS_H */
