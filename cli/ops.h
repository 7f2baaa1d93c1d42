/*
 * What the operator's commands share (cmd_ops.c: tenants, tokens, devices, CAs; cmd_updates.c:
 * image keys, uploads, products, groups, deployments): the parsed command line and the API call.
 */
#ifndef RAMPART_CLI_OPS_H
#define RAMPART_CLI_OPS_H

#include <stddef.h>

#include <jansson.h>

#include "cli.h"

struct ops {
    const char *server, *token_file, *ca_file, *tenant, *role, *out;
    const char *product, *group, *key, *name, *component, *rollout;
    const char *root_key, *prev_root_key, *expires_days;
    bool allow_unknown_images;
    bool ignore_counter_limits;          /* deploy past what devices said they accept (admin) */
    const char *expires_in, *expires_at; /* a new token's expiry */
    const char *allow_debug, *require_components, *require_register; /* "yes" or "no" */
    const char *allow_development;                                   /* "yes" or "no" */
    const char *device, *kind;  /* device capability create; event list */
    const char *offset, *limit; /* a page of a list (failure list, event list) */
    const char *crash_capture;  /* device-group create|set: "on" or "off" */
    cli_output_t output;
    cli_progress_t *progress; /* ops_api draws the answer's download here, when not NULL */
    char token[512];
    char **args;
    int nargs;
};

/* Call the API: a JSON request body (or NULL). OUT: *status and *body (the parsed JSON, or NULL
 * when it was not JSON); *raw and *raw_len (the body as it came; free()) unless raw is NULL. */
int ops_api(struct ops *o, const char *method, const char *path, json_t *req, long *status,
            json_t **body, char **raw, size_t *raw_len);
/* GET a list the service pages (docs/api.md, "Paging the lists") whole, a page at a time through
 * "next_after": *body is the first page's answer with every page's `key` rows and no next_after,
 * so the server never builds a 100,000-row answer. As ops_api otherwise (a non-200's body). */
int ops_get_all(struct ops *o, const char *path, const char *key, long *status, json_t **body);
/* GET one of the operator's lists (tenants, tokens, image keys, images, products, groups,
 * deployments) whole, in the service's own order, as one answer; past what the service answers at
 * once (400 paging_required, docs/api.md) a page at a time through ops_get_all, in ID order (said
 * on stderr). As ops_get_all otherwise. RAMPART_PAGE_SIZE=N (a test's): every list N at a time. */
int ops_get_list(struct ops *o, const char *path, const char *key, long *status, json_t **body);
/* Report a non-2xx answer, with the service's own message when it gave one; frees body. */
int ops_refused(long status, json_t *body);
/* The answer as --output says (json, table or yaml; JSON for a command with no text form). */
void ops_print(const struct ops *o, json_t *j);
/* A string member, or "-"; its control characters shown as "?" (it is printed). */
const char *ops_str(json_t *o, const char *key);
int ops_need_tenant(struct ops *o);
/* Check that --server, --token-file and --ca-file (or their variables) are given, and read the
 * token into o->token (the caller wipes it). */
int ops_token_load(struct ops *o);

int ops_image_key_cmd(struct ops *o, const char *verb);
int ops_image_cmd(struct ops *o, const char *verb); /* upload, list */
/* A file sent as a chunked upload (images, debug files), resumed after transient failures; OUT:
 * the upload's ID in id. */
int ops_upload_file(struct ops *o, const char *file, const char *purpose, char *id, size_t idcap);
int ops_product_cmd(struct ops *o, const char *verb);
int ops_group_cmd(struct ops *o, const char *verb);
int ops_device_assign(struct ops *o);
int ops_deployment_cmd(struct ops *o, const char *verb);
int ops_update_root_cmd(struct ops *o, const char *verb);
/* cmd_failures.c: failure list|show, event list, symbols upload */
int ops_failures_cmd(struct ops *o, const char *group, const char *verb);

#endif /* RAMPART_CLI_OPS_H */
