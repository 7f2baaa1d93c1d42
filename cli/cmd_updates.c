/*
 * The operator's update commands: image signing keys, image uploads, products, device groups,
 * group membership and deployments.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"
#include "rampart/base64.h"
#include "rampart/file.h"
#include "rampart/http_client.h"
#include "rampart/key.h"
#include "rampart/metadata.h"
#include "rampart/log.h"
#include "rampart/update_state.h"

#include <openssl/pem.h>

#define UPLOAD_TRIES 5 /* attempts per chunk before an upload gives up (it can be run again) */

/* A request whose 2xx answer is printed as JSON or handed back; others are reported. */
static int call(struct ops *o, const char *method, const char *path, json_t *req, long want,
                json_t **out)
{
    json_t *body;
    long status;
    int rc = ops_api(o, method, path, req, &status, &body, NULL, NULL);

    *out = NULL;

    json_decref(req);
    if (rc != CLI_OK)
        return rc;
    if (status != want)
        return ops_refused(status, body);
    *out = body;
    return CLI_OK;
}

/* GET a list the service pages (ops_get_list: whole, whatever its length) into *out. */
static int call_list(struct ops *o, const char *path, const char *key, json_t **out)
{
    json_t *body;
    long status;

    int rc = ops_get_list(o, path, key, &status, &body);

    *out = NULL;
    if (rc != CLI_OK)
        return rc;
    if (status != 200)
        return ops_refused(status, body);
    *out = body;
    return CLI_OK;
}

/* Print body as JSON when asked to; returns whether it was. */
static bool printed_json(struct ops *o, json_t *body)
{
    if (o->output == CLI_OUTPUT_TEXT)
        return false;
    ops_print(o, body);
    return true;
}

/* POST something that is made: its ID printed (or the whole of it, as JSON). Takes req. */
static int create(struct ops *o, const char *path, json_t *req)
{
    json_t *body = NULL;

    if (call(o, "POST", path, req, 201, &body) != CLI_OK)
        return CLI_FAIL;
    if (!printed_json(o, body))
        printf("%s\n", ops_str(body, "id"));
    json_decref(body);
    return CLI_OK;
}

/* ---- image-key add|list ---- */

int ops_image_key_cmd(struct ops *o, const char *verb)
{
    char path[512];
    json_t *body = NULL, *k;
    size_t i;

    if (ops_need_tenant(o) != CLI_OK)
        return CLI_USAGE;
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/image-keys", o->tenant);
    if (strcmp(verb, "add") == 0) {
        uint8_t *pem;
        size_t len;
        json_t *req;
        if (o->key == NULL || o->name == NULL || o->nargs != 0)
            return cli_usage(NULL, "image-key add needs --tenant T --key PUB.pem --name NAME");
        if (rp_read_file(o->key, 64 * 1024, &pem, &len) != RP_OK) {
            rp_log_error("%s: cannot read the key", o->key);
            return CLI_FAIL;
        }
        req = json_pack("{s:s, s:s%}", "name", o->name, "public_key", (const char *)pem, len);
        free(pem);
        if (req == NULL) {
            rp_log_error("%s: not a PEM file", o->key);
            return CLI_FAIL;
        }
        return create(o, path, req);
    }
    if (strcmp(verb, "list") == 0) {
        if (call_list(o, path, "image_keys", &body) != CLI_OK)
            return CLI_FAIL;
        if (!printed_json(o, body)) {
            printf("%-28s %-11s %-20s %s\n", "ID", "TYPE", "CREATED", "NAME");
            json_array_foreach(json_object_get(body, "image_keys"), i, k)
                printf("%-28s %-11s %-20s %s\n", ops_str(k, "id"), ops_str(k, "type"),
                       ops_str(k, "created"), ops_str(k, "name"));
        }
        json_decref(body);
        return CLI_OK;
    }
    return cli_usage(NULL, "unknown image-key command '%s'", verb);
}

/* ---- image upload|list ---- */

/* PUT one chunk at off. OUT: *received (what the service has now). */
static int put_chunk(struct ops *o, const char *path, uint64_t off, const uint8_t *buf, size_t len,
                     cli_progress_t *bar, uint64_t *received)
{
    char url[2048];
    rp_http_opts_t h = {o->ca_file,        o->token, "application/octet-stream", 120, NULL, NULL,
                        cli_progress_http, bar,      RP_HTTP_BUSY_WAIT};
    rp_http_response_t r;
    json_t *body;
    json_int_t got;

    snprintf(url, sizeof(url), "%s%s?offset=%llu", o->server, path, (unsigned long long)off);
    if (rp_http_request("PUT", url, &h, buf, len, &r) != RP_OK) {
        rp_log_warn("%s: %s", o->server, r.error);
        return CLI_FAIL;
    }
    body = json_loadb(r.body, r.len, 0, NULL);
    rp_http_response_free(&r);
    got = json_integer_value(json_object_get(body, "received"));
    if ((r.status == 200 || r.status == 409) &&
        json_is_integer(json_object_get(body, "received")) && got >= 0) {
        *received = (uint64_t)got; /* 409: a gap; resume where the service's copy ends */
        json_decref(body);
        return CLI_OK;
    }
    if (r.status >= 500) { /* worth another try */
        rp_log_warn("the service failed (HTTP %ld): %s", r.status, ops_str(body, "message"));
        json_decref(body);
        return CLI_FAIL;
    }
    ops_refused(r.status, body);
    return CLI_USAGE; /* refused for good: no retry */
}

/* Upload a file in chunks, resuming after transient failures; OUT: upload ID in id. (ops.h) */
int ops_upload_file(struct ops *o, const char *file, const char *purpose, char *id, size_t idcap)
{
    char path[512];
    rp_file_image_t img;
    json_t *body;
    uint64_t size, sent = 0, chunk;
    uint8_t *buf;
    cli_progress_t bar;
    int tries = 0, rc = CLI_OK;

    if (rp_file_image_open(&img, file) != RP_OK) {
        rp_log_error("%s: cannot open: %s", file, strerror(errno));
        return CLI_FAIL;
    }
    size = img.io.size;
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/uploads", o->tenant);
    if (call(o, "POST", path, json_pack("{s:I, s:s}", "size", (json_int_t)size, "for", purpose),
             201, &body) != CLI_OK) {
        rp_file_image_close(&img);
        return CLI_FAIL;
    }
    snprintf(id, idcap, "%s", ops_str(body, "id"));
    chunk = (uint64_t)json_integer_value(json_object_get(body, "chunk_max"));
    json_decref(body);
    if (chunk == 0 || chunk > 16 * 1024 * 1024 || (buf = malloc(chunk)) == NULL) {
        rp_file_image_close(&img);
        rp_log_error("the service announced an unusable chunk size");
        return CLI_FAIL;
    }
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/uploads/%s", o->tenant, id);
    cli_progress_start(&bar, file, size, o->output);
    while (sent < size) {
        size_t n = size - sent < chunk ? (size_t)(size - sent) : (size_t)chunk;
        uint64_t received = sent;
        if (rp_pread_all(img.fd, buf, n, sent) != RP_OK) {
            rp_log_error("%s: cannot read", file);
            rc = CLI_FAIL;
            break;
        }
        bar.base = sent; /* the chunk's own bytes are counted from here */
        rc = put_chunk(o, path, sent, buf, n, &bar, &received);
        if (rc == CLI_USAGE) {
            rc = CLI_FAIL;
            break;
        }
        rc = CLI_OK;
        if (received > sent) {
            tries = 0;
            sent = received;
            cli_progress_update(&bar, sent);
            continue;
        }
        if (++tries >= UPLOAD_TRIES) {
            rp_log_error("%s: upload %s stopped at %llu of %llu bytes", file, id,
                         (unsigned long long)sent, (unsigned long long)size);
            rc = CLI_FAIL;
            break;
        }
        if (received < sent)
            sent = received; /* the service has less than was sent: go on from its copy */
        else
            sleep((unsigned)tries);
    }
    cli_progress_end(&bar, sent);
    free(buf);
    rp_file_image_close(&img);
    return rc;
}

/* The component a file is uploaded as when --component is not given: its name up to the first
 * dot ("app-1.2.0.img" is "app-1"; say --component to be exact). */
static void default_component(const char *file, char *out, size_t cap)
{
    const char *base = strrchr(file, '/');
    size_t n;

    base = base != NULL ? base + 1 : file;
    n = strcspn(base, ".");
    snprintf(out, cap, "%.*s", (int)(n > 0 ? n : strlen(base)), base);
}

int ops_image_cmd(struct ops *o, const char *verb)
{
    char path[512], upload[64], component[256];
    json_t *body = NULL, *m;
    size_t i;

    if (ops_need_tenant(o) != CLI_OK)
        return CLI_USAGE;
    if (strcmp(verb, "upload") == 0) {
        if (o->nargs != 1)
            return cli_usage(NULL, "image upload needs --tenant T IMAGE [--component NAME]");
        if (o->component != NULL)
            snprintf(component, sizeof(component), "%s", o->component);
        else
            default_component(o->args[0], component, sizeof(component));
        if (ops_upload_file(o, o->args[0], "image", upload, sizeof(upload)) != CLI_OK)
            return CLI_FAIL;
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/images", o->tenant);
        body = NULL;
        {
            long status;
            json_t *req = json_pack("{s:s, s:s}", "upload", upload, "component", component);
            int rc = ops_api(o, "POST", path, req, &status, &body, NULL, NULL);
            json_decref(req);
            if (rc != CLI_OK)
                return rc;
            if (status != 201 && status != 200) /* 200: the tenant had these bytes already */
                return ops_refused(status, body);
        }
        json_array_foreach(json_object_get(body, "warnings"), i, m)
            rp_log_warn("%s: %s", o->args[0], json_string_value(m) ?: "?");
        if (!printed_json(o, body))
            printf("%s\n", ops_str(body, "id"));
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "list") == 0) {
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/images", o->tenant);
        if (call_list(o, path, "images", &body) != CLI_OK)
            return CLI_FAIL;
        if (!printed_json(o, body)) {
            printf("%-64s %-16s %-14s %-8s %s\n", "ID", "COMPONENT", "VERSION", "TYPE", "SIZE");
            json_array_foreach(json_object_get(body, "images"), i, m)
                printf("%-64s %-16s %-14s %-8s %lld\n", ops_str(m, "id"), ops_str(m, "component"),
                       ops_str(m, "version"), ops_str(m, "type"),
                       (long long)json_integer_value(json_object_get(m, "size")));
        }
        json_decref(body);
        return CLI_OK;
    }
    return cli_usage(NULL, "unknown image command '%s'", verb);
}

/* ---- product create|list ---- */

int ops_product_cmd(struct ops *o, const char *verb)
{
    char path[512];
    json_t *body = NULL, *p;
    size_t i;

    if (ops_need_tenant(o) != CLI_OK)
        return CLI_USAGE;
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/products", o->tenant);
    if (strcmp(verb, "create") == 0) {
        if (o->nargs != 1)
            return cli_usage(NULL, "product create needs --tenant T NAME");
        return create(o, path, json_pack("{s:s}", "name", o->args[0]));
    }
    if (strcmp(verb, "list") == 0) {
        if (call_list(o, path, "products", &body) != CLI_OK)
            return CLI_FAIL;
        if (!printed_json(o, body)) {
            printf("%-28s %-20s %s\n", "ID", "CREATED", "NAME");
            json_array_foreach(json_object_get(body, "products"), i, p) printf(
                "%-28s %-20s %s\n", ops_str(p, "id"), ops_str(p, "created"), ops_str(p, "name"));
        }
        json_decref(body);
        return CLI_OK;
    }
    return cli_usage(NULL, "unknown product command '%s'", verb);
}

/* A path segment: names may hold spaces ("Field Test"). */
static char *seg(const char *s)
{
    char *e = rp_http_escape(s);

    if (e == NULL) {
        rp_log_error("out of memory");
        exit(CLI_FAIL);
    }
    return e;
}

/* ---- device-group create|list|show|set ---- */

/* --crash-capture on|off into *on; false: a usage error (said). */
static bool crash_capture_arg(const char *v, bool *on)
{
    if (v != NULL && (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)) {
        *on = strcmp(v, "on") == 0;
        return true;
    }
    cli_usage(NULL, "--crash-capture is on or off");
    return false;
}

static void group_print(json_t *g)
{
    printf("id: %s\nname: %s\nunknown images: %s\ncrash capture: %s\ncreated: %s\n",
           ops_str(g, "id"), ops_str(g, "name"),
           json_is_true(json_object_get(g, "allow_unknown_images")) ? "allowed" : "refused",
           json_is_false(json_object_get(g, "crash_capture")) ? "off" : "on",
           ops_str(g, "created"));
}

int ops_group_cmd(struct ops *o, const char *verb)
{
    char path[1024], *p;
    json_t *body = NULL, *g, *req;
    size_t i;
    bool capture = true;

    if (ops_need_tenant(o) != CLI_OK)
        return CLI_USAGE;
    if (o->product == NULL)
        return cli_usage(NULL, "device-group %s needs --product P", verb);
    p = seg(o->product);
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/products/%s/groups", o->tenant, p);
    free(p);
    if (strcmp(verb, "create") == 0) {
        if (o->nargs != 1)
            return cli_usage(NULL, "device-group create needs --tenant T --product P NAME");
        if (o->crash_capture != NULL && !crash_capture_arg(o->crash_capture, &capture))
            return CLI_USAGE;
        req = json_pack("{s:s, s:b}", "name", o->args[0], "allow_unknown_images",
                        o->allow_unknown_images);
        if (req != NULL && o->crash_capture != NULL)
            json_object_set_new(req, "crash_capture", json_boolean(capture));
        return create(o, path, req);
    }
    if (strcmp(verb, "show") == 0 || strcmp(verb, "set") == 0) {
        bool set = strcmp(verb, "set") == 0;
        size_t n = strlen(path);
        if (o->nargs != 1 || (set && o->crash_capture == NULL))
            return cli_usage(NULL, "device-group %s needs --tenant T --product P GROUP%s", verb,
                             set ? " --crash-capture on|off" : "");
        if (set && !crash_capture_arg(o->crash_capture, &capture))
            return CLI_USAGE;
        p = seg(o->args[0]);
        snprintf(path + n, sizeof(path) - n, "/%s%s", p, set ? "/settings" : "");
        free(p);
        if (call(o, set ? "PUT" : "GET", path,
                 set ? json_pack("{s:b}", "crash_capture", capture) : NULL, 200, &body) != CLI_OK)
            return CLI_FAIL;
        if (!printed_json(o, body))
            group_print(body);
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "list") == 0) {
        if (call_list(o, path, "groups", &body) != CLI_OK)
            return CLI_FAIL;
        if (!printed_json(o, body)) {
            printf("%-28s %-8s %-14s %-13s %s\n", "ID", "DEVICES", "UNKNOWN IMAGES",
                   "CRASH CAPTURE", "NAME");
            json_array_foreach(json_object_get(body, "groups"), i, g) printf(
                "%-28s %-8lld %-14s %-13s %s\n", ops_str(g, "id"),
                (long long)json_integer_value(json_object_get(g, "devices")),
                json_is_true(json_object_get(g, "allow_unknown_images")) ? "allowed" : "refused",
                json_is_false(json_object_get(g, "crash_capture")) ? "off" : "on",
                ops_str(g, "name"));
        }
        json_decref(body);
        return CLI_OK;
    }
    return cli_usage(NULL, "unknown device-group command '%s'", verb);
}

/* ---- device assign ---- */

int ops_device_assign(struct ops *o)
{
    char path[1024], *p, *g;
    json_t *ids = json_array(), *body, *d;
    size_t i;

    if (o->product == NULL || o->group == NULL || o->nargs == 0) {
        json_decref(ids);
        return cli_usage(NULL, "device assign needs --tenant T --product P --group G DEVICE_ID...");
    }
    for (int a = 0; a < o->nargs; a++)
        json_array_append_new(ids, json_string(o->args[a]));
    p = seg(o->product);
    g = seg(o->group);
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/products/%s/groups/%s/devices", o->tenant, p,
             g);
    free(p);
    free(g);
    if (call(o, "POST", path, json_pack("{s:o}", "device_ids", ids), 200, &body) != CLI_OK)
        return CLI_FAIL;
    if (!printed_json(o, body))
        json_array_foreach(json_object_get(body, "assigned"), i, d)
            printf("assigned %s\n", json_string_value(d));
    json_decref(body);
    return CLI_OK;
}

/* ---- deployment create|list|show ---- */

/* Every state a device can report has its count, 0 included (a service from before this rule
 * left out the states nothing was in): scripts rely on the keys. */
static void complete_states(json_t *d)
{
    json_t *states = json_object_get(d, "states");

    if (!json_is_object(states))
        return;
    for (int i = 0; i < RP_UPDATE_STATE_COUNT; i++) {
        const char *name = rp_update_state_name((rp_update_state_t)i);
        if (rp_update_state_reported((rp_update_state_t)i) && json_object_get(states, name) == NULL)
            json_object_set_new(states, name, json_integer(0));
    }
}

static void print_deployment(json_t *d)
{
    json_t *states = json_object_get(d, "states"), *progress = json_object_get(d, "progress"), *v,
           *m;
    const char *k;
    size_t i;

    printf("deployment:  %s\n", ops_str(d, "id"));
    printf("group:       %s / %s (%s)\n", ops_str(d, "product"), ops_str(d, "group_name"),
           ops_str(d, "group"));
    printf("created:     %s\n", ops_str(d, "created"));
    printf("status:      %s\n", ops_str(d, "status"));
    printf("rollout:     %lld%% (%lld of %lld devices in the group)\n",
           (long long)json_integer_value(json_object_get(d, "rollout")),
           (long long)json_integer_value(json_object_get(d, "devices_selected")),
           (long long)json_integer_value(json_object_get(d, "devices_in_group")));
    json_array_foreach(json_object_get(d, "images"), i, m)
        printf("image:       %s %s (%s)\n", ops_str(m, "component"), ops_str(m, "version"),
               ops_str(m, "id"));
    /* Every state, in their order, 0 when the service did not count it; then any state this
     * CLI does not know (a newer service). */
    for (int st = 0; st < RP_UPDATE_STATE_COUNT; st++) {
        const char *name = rp_update_state_name((rp_update_state_t)st);
        if (rp_update_state_reported((rp_update_state_t)st))
            printf("%-12s %lld\n", name,
                   (long long)json_integer_value(json_object_get(states, name)));
    }
    json_object_foreach(states, k, v)
    {
        rp_update_state_t known;
        if (rp_update_state_parse(k, &known) != RP_OK || !rp_update_state_reported(known))
            printf("%-12s %lld\n", k, (long long)json_integer_value(v));
    }
    /* Over the devices it targets now, as the states above; those that left it, apart. */
    if (json_is_object(progress)) {
        printf("reached:     %lld of %lld\n",
               (long long)json_integer_value(json_object_get(progress, "reached")),
               (long long)json_integer_value(json_object_get(progress, "selected")));
        printf("left:        %lld (moved out of the group after it reached them; not counted "
               "above)\n",
               (long long)json_integer_value(json_object_get(progress, "left")));
    }
}

/* POST a deployment; a refusal because some devices could never install it names each. */
static int deployment_create(struct ops *o, const char *path, json_t *req)
{
    json_t *body = NULL, *d;
    long status;
    size_t i;
    int rc = ops_api(o, "POST", path, req, &status, &body, NULL, NULL);

    json_decref(req);
    if (rc != CLI_OK)
        return rc;
    if (status == 409 && strcmp(ops_str(body, "error"), "counter_too_high") == 0) {
        rp_log_error("refused: %s", ops_str(body, "message"));
        json_array_foreach(json_object_get(body, "devices"), i, d) fprintf(
            stderr, "  device %s accepts security counters up to %lld\n", ops_str(d, "device_id"),
            (long long)json_integer_value(json_object_get(d, "security_counter_max")));
        fprintf(stderr,
                "Sign %s with a security counter they can hold, move those devices to another "
                "group, or (an admin) deploy it anyway with --ignore-counter-limits: they will "
                "refuse it.\n",
                ops_str(body, "component"));
        json_decref(body);
        return CLI_FAIL;
    }
    if (status != 201)
        return ops_refused(status, body);
    if (!printed_json(o, body))
        printf("%s\n", ops_str(body, "id"));
    json_decref(body);
    return CLI_OK;
}

int ops_deployment_cmd(struct ops *o, const char *verb)
{
    char path[512];
    json_t *body = NULL, *d;
    long status;
    size_t i;

    if (ops_need_tenant(o) != CLI_OK)
        return CLI_USAGE;
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/deployments", o->tenant);
    if (strcmp(verb, "create") == 0) {
        json_t *imgs = json_array(), *req;
        uint32_t rollout = 100;
        if (o->product == NULL || o->group == NULL || o->nargs == 0) {
            json_decref(imgs);
            return cli_usage(NULL, "deployment create needs --tenant T --product P --group G "
                                   "IMAGE_ID... [--rollout PCT]");
        }
        if (o->rollout != NULL && !cli_parse_u32(o->rollout, 100, &rollout)) {
            json_decref(imgs);
            return cli_usage(NULL, "--rollout is a percentage, 0 to 100");
        }
        for (int a = 0; a < o->nargs; a++)
            json_array_append_new(imgs, json_string(o->args[a]));
        req = json_pack("{s:s, s:s, s:o, s:i, s:b}", "product", o->product, "group", o->group,
                        "images", imgs, "rollout", (int)rollout, "ignore_counter_limits",
                        o->ignore_counter_limits);
        return deployment_create(o, path, req);
    }
    if (strcmp(verb, "list") == 0) {
        if (call_list(o, path, "deployments", &body) != CLI_OK)
            return CLI_FAIL;
        if (!printed_json(o, body)) {
            printf("%-28s %-28s %-8s %-8s %s\n", "ID", "GROUP", "ROLLOUT", "STATUS", "CREATED");
            json_array_foreach(json_object_get(body, "deployments"), i, d)
                printf("%-28s %-28s %-7lld%% %-8s %s\n", ops_str(d, "id"), ops_str(d, "group"),
                       (long long)json_integer_value(json_object_get(d, "rollout")),
                       ops_str(d, "status"), ops_str(d, "created"));
        }
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "show") == 0) {
        if (o->nargs != 1)
            return cli_usage(NULL, "deployment show needs --tenant T DEPLOYMENT_ID");
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/deployments/%s", o->tenant, o->args[0]);
        /* (its devices a page at a time: the counts are the whole deployment's on each page) */
        int rc = ops_get_all(o, path, "devices", &status, &body);
        if (rc != CLI_OK)
            return rc;
        if (status != 200)
            return ops_refused(status, body);
        complete_states(body);
        if (!printed_json(o, body))
            print_deployment(body);
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "pause") == 0 || strcmp(verb, "resume") == 0 || strcmp(verb, "stop") == 0) {
        if (o->nargs != 1)
            return cli_usage(NULL, "deployment %s needs --tenant T DEPLOYMENT_ID", verb);
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/deployments/%s/%s", o->tenant, o->args[0],
                 verb);
        if (call(o, "POST", path, NULL, 200, &body) != CLI_OK)
            return CLI_FAIL;
        if (!printed_json(o, body))
            printf("%s %s\n", ops_str(body, "id"), ops_str(body, "status"));
        json_decref(body);
        return CLI_OK;
    }
    return cli_usage(NULL, "unknown deployment command '%s'", verb);
}

/* ---- update-root sign ---- */

/* A private key from a file, for signing metadata. */
static EVP_PKEY *signing_key(const char *path)
{
    EVP_PKEY *key = NULL;
    bool priv = false;
    if (cli_key_load(path, &key, &priv) != RP_OK)
        return NULL;
    if (!priv) {
        rp_log_error("%s: not a private key", path);
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

/* A role of one key, threshold 1. */
static bool key_role(EVP_PKEY *key, rp_md_role_t *role)
{
    memset(role, 0, sizeof(*role));
    role->nkeys = role->threshold = 1;
    return rp_key_spki(key, role->spki[0], sizeof(role->spki[0]), &role->spki_len[0]) == RP_OK;
}

/* The tenant's image keys (the service lists their SPKIs) as the images role. */
static bool images_role(json_t *body, rp_md_role_t *role)
{
    json_t *list = json_object_get(body, "image_keys"), *k;
    size_t i;

    memset(role, 0, sizeof(*role));
    if (json_array_size(list) == 0 || json_array_size(list) > RP_MD_KEYS_MAX) {
        rp_log_error("the tenant needs 1 to %d image keys (rampart image-key add)", RP_MD_KEYS_MAX);
        return false;
    }
    json_array_foreach(list, i, k)
    {
        const char *b64 = json_string_value(json_object_get(k, "spki"));
        uint8_t *der = NULL;
        size_t len = 0;
        if (b64 == NULL || rp_base64_decode(b64, strlen(b64), &der, &len) != RP_OK || len == 0 ||
            len > sizeof(role->spki[i])) {
            free(der);
            rp_log_error("the service listed an image key that is not a key");
            return false;
        }
        memcpy(role->spki[i], der, len);
        role->spki_len[i] = len;
        free(der);
    }
    role->nkeys = json_array_size(list);
    role->threshold = 1;
    return true;
}

int ops_update_root_cmd(struct ops *o, const char *verb)
{
    char path[512], *env = NULL, detail[256];
    EVP_PKEY *keys[2] = {NULL, NULL}, *online = NULL;
    json_t *body = NULL, *roots = NULL, *k;
    rp_md_root_t *root = NULL;
    uint32_t days = 365;
    json_int_t version = 1;
    long status;
    size_t i, nkeys = 1, raw_len;
    char *raw = NULL;
    int rc = CLI_FAIL;

    if (ops_need_tenant(o) != CLI_OK)
        return CLI_USAGE;
    if (strcmp(verb, "rotate-online-key") == 0) {
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/update/online-key", o->tenant);
        if (ops_api(o, "POST", path, NULL, &status, &body, &raw, &raw_len) != CLI_OK)
            return CLI_FAIL;
        if (status != 201) {
            free(raw);
            return ops_refused(status, body);
        }
        json_decref(body);
        if (o->output != CLI_OUTPUT_TEXT) {
            /* the answer is the key's PEM: as `key public --output` names it */
            json_t *j = json_pack("{s:s%}", "public_key", raw != NULL ? raw : "", raw_len);
            if (j == NULL) {
                rp_log_error("the service's answer is not a public key's PEM");
                free(raw);
                return CLI_FAIL;
            }
            ops_print(o, j);
            json_decref(j);
        } else {
            fwrite(raw, 1, raw_len, stdout); /* the service's answer (PEM), as it came */
        }
        free(raw);
        rp_log_info("a new online key: the service signs with it once a root names it (rampart "
                    "update-root sign)");
        return CLI_OK;
    }
    if (strcmp(verb, "sign") != 0)
        return cli_usage(NULL, "unknown update-root command '%s'", verb);
    if (o->root_key == NULL)
        return cli_usage(NULL, "update-root sign needs --tenant T --root-key ROOT.pem");
    if (o->expires_days != NULL && !cli_parse_u32(o->expires_days, 3650, &days))
        return cli_usage(NULL, "--expires-days is 1 to 3650");
    if (o->out != NULL && rp_key_check_out(o->out, true, false) != RP_OK)
        return CLI_FAIL; /* never over a private key (the root key's neighbours), before any work */
    if ((root = calloc(1, sizeof(*root))) == NULL)
        return CLI_FAIL;
    if ((keys[0] = signing_key(o->root_key)) == NULL)
        goto out;
    if (o->prev_root_key != NULL && (keys[nkeys++] = signing_key(o->prev_root_key)) == NULL)
        goto out;
    /* The next version; the service's online key; the tenant's image keys. */
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/update/roots", o->tenant);
    if (call(o, "GET", path, NULL, 200, &roots) != CLI_OK)
        goto out;
    json_array_foreach(json_object_get(roots, "roots"), i,
                       k) if (json_integer_value(json_object_get(k, "version")) >= version)
        version = json_integer_value(json_object_get(k, "version")) + 1;
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/update/online-key", o->tenant);
    if (ops_api(o, "GET", path, NULL, &status, &body, &raw, &raw_len) != CLI_OK)
        goto out;
    if (status != 200) {
        free(raw);
        raw = NULL;
        ops_refused(status, body);
        body = NULL;
        goto out;
    }
    json_decref(body);
    body = NULL;
    {
        BIO *bio = BIO_new_mem_buf(raw, (int)raw_len);
        online = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    }
    if (online == NULL) {
        rp_log_error("the service's online key is not a PEM public key");
        goto out;
    }
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/image-keys", o->tenant);
    o->limit = NULL; /* every key the tenant has: --limit is what a list prints */
    if (call_list(o, path, "image_keys", &body) != CLI_OK || !images_role(body, &root->images))
        goto out;
    if (!key_role(keys[0], &root->root) || !key_role(online, &root->online) ||
        strlen(o->tenant) >= sizeof(root->tenant)) {
        rp_log_error("cannot make the root metadata");
        goto out;
    }
    snprintf(root->tenant, sizeof(root->tenant), "%s", o->tenant);
    root->version = version;
    root->expires = (int64_t)time(NULL) + (int64_t)days * 86400;
    detail[0] = '\0';
    if (rp_md_root_sign(root, keys, nkeys, &env, detail, sizeof(detail)) != RP_OK) {
        rp_log_error("cannot sign the root metadata%s%s", detail[0] ? ": " : "", detail);
        goto out;
    }
    {
        char url[1024];
        rp_http_opts_t h = {o->ca_file, o->token, "application/json", 30, NULL, NULL,
                            NULL,       NULL,     RP_HTTP_BUSY_WAIT};
        rp_http_response_t r;
        json_t *answer;
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/update/roots", o->tenant);
        snprintf(url, sizeof(url), "%s%s", o->server, path);
        if (rp_http_request("POST", url, &h, env, strlen(env), &r) != RP_OK) {
            rp_log_error("%s: %s", o->server, r.error);
            goto out;
        }
        answer = json_loadb(r.body, r.len, 0, NULL);
        rp_http_response_free(&r);
        if (r.status != 201) {
            ops_refused(r.status, answer);
            goto out;
        }
        json_decref(answer);
    }
    if (o->out != NULL) {
        rp_err_t err = rp_write_file_atomic(o->out, env, strlen(env), 0644, 0);
        if (err != RP_OK) {
            rp_log_error("%s: %s", o->out, rp_strerror(err));
            goto out;
        }
    }
    if (o->output != CLI_OUTPUT_TEXT) {
        json_t *j = json_pack("{s:I, s:s?}", "version", (json_int_t)version, "file", o->out);
        ops_print(o, j);
        json_decref(j);
    } else {
        printf("root version %lld signed and uploaded%s%s\n", (long long)version,
               o->out != NULL ? "; written to " : "", o->out != NULL ? o->out : "");
    }
    rc = CLI_OK;
out:
    for (size_t n = 0; n < 2; n++)
        EVP_PKEY_free(keys[n]);
    EVP_PKEY_free(online);
    json_decref(body);
    json_decref(roots);
    free(raw);
    free(root);
    free(env);
    return rc;
}
