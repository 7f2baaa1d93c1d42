/*
 * `rampart failure list|show`, `rampart event list`, `rampart symbols upload`: the operator's
 * view of the failure reports devices send (docs/failure-reporting.md) and the debug files that
 * name a crash's frames.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "rampart/file.h"
#include "rampart/http_client.h"
#include "rampart/log.h"

/* GET path; the 200 body in *out, others reported. */
static int get(struct ops *o, const char *path, json_t **out)
{
    long status;
    json_t *body;
    int rc = ops_api(o, "GET", path, NULL, &status, &body, NULL, NULL);

    *out = NULL;
    if (rc != CLI_OK)
        return rc;
    if (status != 200)
        return ops_refused(status, body);
    *out = body;
    return CLI_OK;
}

/* "&offset=N&limit=N" from --offset/--limit, appended to path. */
static void page_args(struct ops *o, char *path, size_t cap)
{
    size_t n = strlen(path);

    if (o->offset != NULL)
        n += (size_t)snprintf(path + n, n < cap ? cap - n : 0, "%soffset=%s",
                              strchr(path, '?') ? "&" : "?", o->offset);
    if (o->limit != NULL && n < cap)
        snprintf(path + n, cap - n, "%slimit=%s", strchr(path, '?') ? "&" : "?", o->limit);
}

/* A frame as one line: "function (file:line)" once named, else "module+offset [build ID]". */
static void print_frame(size_t i, json_t *f)
{
    const char *fn = json_string_value(json_object_get(f, "function"));

    printf("  #%-2zu %s+%s", i, ops_str(f, "module"), ops_str(f, "offset"));
    if (fn != NULL) {
        printf("  %s", fn);
        if (json_object_get(f, "line") != NULL)
            printf(" (%s:%lld)", ops_str(f, "file"),
                   (long long)json_integer_value(json_object_get(f, "line")));
    } else {
        printf("  [%s]", ops_str(f, "build_id"));
    }
    putchar('\n');
}

static void print_counts(const char *title, json_t *o)
{
    const char *k;
    json_t *v;

    printf("%-14s", title);
    if (json_object_size(o) == 0)
        printf(" -");
    json_object_foreach(o, k, v)
    {
        printf(" %s: %lld", k[0] ? k : "(none)", (long long)json_integer_value(v));
    }
    putchar('\n');
}

/* A crash sample's mark: sent while its device's last attestation had failed (docs/protocol.md
 * "Verdicts"), evidence from a possibly compromised device. */
static const char *failed_mark(json_t *sample)
{
    return json_is_true(json_object_get(sample, "device_failed")) ? ", from a failed device" : "";
}

static int failure_list(struct ops *o)
{
    char path[512];
    json_t *body, *b, *list;
    size_t i;

    snprintf(path, sizeof(path), "/api/v1/tenants/%s/failures", o->tenant);
    page_args(o, path, sizeof(path));
    if (get(o, path, &body) != CLI_OK)
        return CLI_FAIL;
    if (o->output != CLI_OUTPUT_TEXT) {
        ops_print(o, body);
        json_decref(body);
        return CLI_OK;
    }
    list = json_object_get(body, "buckets");
    printf("%-32s  %6s  %6s  %-12s %-9s  %-20s  %-20s  %s\n", "BUCKET", "COUNT", "FAILED",
           "COMPONENT", "SIGNAL", "FIRST SEEN", "LAST SEEN", "VERSIONS");
    json_array_foreach(list, i, b)
    {
        json_t *vers = json_object_get(json_object_get(b, "counts"), "version");
        const char *k;
        json_t *v;
        bool first = true;

        printf("%-32s  %6lld  %6lld  %-12s %-9s  %-20s  %-20s  ", ops_str(b, "id"),
               (long long)json_integer_value(json_object_get(b, "count")),
               (long long)json_integer_value(json_object_get(b, "device_failed")),
               ops_str(b, "component"), ops_str(b, "signal_name"), ops_str(b, "first_seen"),
               ops_str(b, "last_seen"));
        json_object_foreach(vers, k, v)
        {
            printf("%s%s (%lld)", first ? "" : ", ", k[0] ? k : "-",
                   (long long)json_integer_value(v));
            first = false;
        }
        putchar('\n');
        if (json_array_size(json_object_get(b, "frames")) > 0)
            print_frame(0, json_array_get(json_object_get(b, "frames"), 0));
        if (json_is_object(json_object_get(b, "sample")))
            printf(
                "  sample: device %s seq %lld%s\n", ops_str(json_object_get(b, "sample"), "device"),
                (long long)json_integer_value(json_object_get(json_object_get(b, "sample"), "seq")),
                failed_mark(json_object_get(b, "sample")));
    }
    if (json_is_integer(json_object_get(body, "next_offset")))
        printf("(more: --offset %lld)\n",
               (long long)json_integer_value(json_object_get(body, "next_offset")));
    json_decref(body);
    return CLI_OK;
}

static int failure_show(struct ops *o)
{
    char path[512];
    json_t *body, *counts, *f, *s;
    size_t i;
    char *id;
    int rc;

    if (o->nargs != 1)
        return cli_usage("failure ", "failure show --tenant T BUCKET");
    if ((id = rp_http_escape(o->args[0])) == NULL)
        return CLI_FAIL;
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/failures/%s", o->tenant, id);
    free(id);
    rc = get(o, path, &body);
    if (rc != CLI_OK)
        return CLI_FAIL;
    if (o->output != CLI_OUTPUT_TEXT) {
        ops_print(o, body);
        json_decref(body);
        return CLI_OK;
    }
    counts = json_object_get(body, "counts");
    printf("bucket:        %s\n", ops_str(body, "id"));
    printf("component:     %s\n", ops_str(body, "component"));
    printf("signal:        %s (%lld)\n", ops_str(body, "signal_name"),
           (long long)json_integer_value(json_object_get(body, "signal")));
    printf("count:         %lld (%lld from failed devices)\n",
           (long long)json_integer_value(json_object_get(body, "count")),
           (long long)json_integer_value(json_object_get(body, "device_failed")));
    printf("first seen:    %s\n", ops_str(body, "first_seen"));
    printf("last seen:     %s\n", ops_str(body, "last_seen"));
    printf("symbolicated:  %s\n",
           json_is_true(json_object_get(body, "symbolicated")) ? "yes" : "no");
    print_counts("versions:", json_object_get(counts, "version"));
    print_counts("groups:", json_object_get(counts, "group"));
    print_counts("days:", json_object_get(counts, "day"));
    /* The build-level buckets shown as this one (one, unless their frames name the same
     * functions and lines across builds): each still resolves to this bucket. */
    printf("key:           %s\n",
           json_is_string(json_object_get(body, "key")) ? ops_str(body, "key") : "build");
    printf("builds:\n");
    json_array_foreach(json_object_get(body, "builds"), i, s)
    {
        json_t *ids = json_object_get(s, "build_ids");
        printf("  %s  %lld  last seen %s  build ID %s\n", ops_str(s, "id"),
               (long long)json_integer_value(json_object_get(s, "count")), ops_str(s, "last_seen"),
               json_string_value(json_array_get(ids, 0)) != NULL &&
                       json_string_value(json_array_get(ids, 0))[0] != '\0'
                   ? json_string_value(json_array_get(ids, 0))
                   : "-");
    }
    printf("signature (top frames):\n");
    json_array_foreach(json_object_get(body, "frames"), i, f) print_frame(i, f);
    printf("stack of the first sample:\n");
    json_array_foreach(json_object_get(body, "stack"), i, f) print_frame(i, f);
    printf("samples:\n");
    json_array_foreach(json_object_get(body, "samples"), i, s)
    {
        printf("  device %s seq %lld at %s, version %s%s\n", ops_str(s, "device"),
               (long long)json_integer_value(json_object_get(s, "seq")), ops_str(s, "at"),
               ops_str(s, "version"), failed_mark(s));
    }
    json_decref(body);
    return CLI_OK;
}

static int event_list(struct ops *o)
{
    char path[1024], *dev = NULL, *kind = NULL;
    json_t *body, *r;
    size_t i;
    int n;

    if (o->device != NULL && (dev = rp_http_escape(o->device)) == NULL)
        return CLI_FAIL;
    if (o->kind != NULL && (kind = rp_http_escape(o->kind)) == NULL) {
        free(dev);
        return CLI_FAIL;
    }
    n = snprintf(path, sizeof(path), "/api/v1/tenants/%s/reports%s%s%s%s%s", o->tenant,
                 dev || kind ? "?" : "", dev ? "device=" : "", dev ? dev : "",
                 dev && kind ? "&kind="
                 : kind      ? "kind="
                             : "",
                 kind ? kind : "");
    free(dev);
    free(kind);
    if (n < 0 || (size_t)n >= sizeof(path))
        return cli_usage("event ", "--device or --kind is too long");
    page_args(o, path, sizeof(path));
    if (get(o, path, &body) != CLI_OK)
        return CLI_FAIL;
    if (o->output != CLI_OUTPUT_TEXT) {
        ops_print(o, body);
        json_decref(body);
        return CLI_OK;
    }
    printf("%-20s  %-26s %8s  %-18s %-12s %s\n", "RECEIVED", "DEVICE", "SEQ", "KIND", "COMPONENT",
           "REASON");
    json_array_foreach(json_object_get(body, "reports"), i, r)
    {
        printf("%-20s  %-26s %8lld  %-18s %-12s %s%s%s\n", ops_str(r, "received"),
               ops_str(r, "device"), (long long)json_integer_value(json_object_get(r, "seq")),
               ops_str(r, "kind"),
               json_string_length(json_object_get(r, "component")) > 0 ? ops_str(r, "component")
                                                                       : "-",
               ops_str(r, "reason"), json_is_string(json_object_get(r, "bucket")) ? " bucket " : "",
               json_is_string(json_object_get(r, "bucket")) ? ops_str(r, "bucket") : "");
    }
    if (json_is_object(json_object_get(body, "device"))) {
        json_t *counts = json_object_get(body, "device");
        printf("device: %lld report(s) kept, %lld pruned by the service, %lld dropped by the "
               "device\n",
               (long long)json_integer_value(json_object_get(counts, "kept")),
               (long long)json_integer_value(json_object_get(counts, "pruned")),
               (long long)json_integer_value(json_object_get(counts, "dropped")));
    }
    if (json_is_integer(json_object_get(body, "next_offset")))
        printf("(more: --offset %lld)\n",
               (long long)json_integer_value(json_object_get(body, "next_offset")));
    json_decref(body);
    return CLI_OK;
}

/* A debug file, sent as a chunked upload (any size the service takes, resumed after transient
 * failures), then kept by the service as its build ID's: POST .../symbols {"upload": U}. */
static int symbols_upload(struct ops *o)
{
    char upload[64], path[512];
    long status;
    json_t *body = NULL, *req;
    int rc;

    if (o->nargs != 1)
        return cli_usage("symbols ", "symbols upload --tenant T FILE.debug");
    if (ops_upload_file(o, o->args[0], "symbols", upload, sizeof(upload)) != CLI_OK)
        return CLI_FAIL;
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/symbols", o->tenant);
    if ((req = json_pack("{s:s}", "upload", upload)) == NULL)
        return CLI_FAIL;
    rc = ops_api(o, "POST", path, req, &status, &body, NULL, NULL);
    json_decref(req);
    if (rc != CLI_OK) {
        json_decref(body);
        return rc;
    }
    if (status != 201)
        return ops_refused(status, body);
    if (o->output != CLI_OUTPUT_TEXT)
        ops_print(o, body);
    else
        printf("%s\n", ops_str(body, "build_id"));
    json_decref(body);
    return CLI_OK;
}

int ops_failures_cmd(struct ops *o, const char *group, const char *verb)
{
    if (ops_need_tenant(o) != CLI_OK)
        return CLI_USAGE;
    if (strcmp(group, "failure") == 0 && strcmp(verb, "list") == 0 && o->nargs == 0)
        return failure_list(o);
    if (strcmp(group, "failure") == 0 && strcmp(verb, "show") == 0)
        return failure_show(o);
    if (strcmp(group, "event") == 0 && strcmp(verb, "list") == 0 && o->nargs == 0)
        return event_list(o);
    if (strcmp(group, "symbols") == 0 && strcmp(verb, "upload") == 0)
        return symbols_upload(o);
    return cli_usage(NULL,
                     "unknown command '%s %s' (failure list|show, event list, symbols upload)",
                     group, verb);
}
