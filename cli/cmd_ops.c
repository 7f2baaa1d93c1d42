/*
 * The operator's commands against the security service: tenants, tokens, devices and the tenant
 * CA. They talk to the service's REST API over HTTPS; where to, as whom and trusting what come from
 * --server, --token-file and --ca-file, or RAMPART_SERVER, RAMPART_TOKEN_FILE and RAMPART_CA_FILE.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "ops.h"
#include "rampart/file.h"
#include "rampart/http_client.h"
#include "rampart/log.h"

const char cli_ops_usage[] =
    "Usage:\n"
    "  rampart tenant create NAME                      prints the tenant ID\n"
    "  rampart tenant list [--limit N]\n"
    "  rampart tenant policy --tenant T [--allow-debug yes|no] [--require-components yes|no]\n"
    "        [--require-register yes|no] [--allow-development yes|no]\n"
    "                                        how its devices' evidence is appraised: prints it,\n"
    "                                        or sets what is given (admin)\n"
    "  rampart token create --tenant T --role admin|contributor|reader\n"
    "        [--expires-in N[s|m|h|d] | --expires-at 2027-01-31T12:00:00Z]  prints the token once\n"
    "  rampart token list [--tenant T] [--limit N]   a tenant's tokens, or (no --tenant) the\n"
    "                                                 system's\n"
    "  rampart token revoke [--tenant T] TOKEN_ID|self\n"
    "  rampart device claim --tenant T DEVICE_ID...\n"
    "  rampart device list --tenant T [--limit N]\n"
    "  rampart device show --tenant T DEVICE_ID       last attestation, result, certificate,\n"
    "                                                 the apps it runs and its newest security\n"
    "                                                 events (its last status report)\n"
    "  rampart device attestations --tenant T DEVICE_ID\n"
    "  rampart device block|unblock --tenant T DEVICE_ID\n"
    "  rampart device capability create --tenant T --device D --kind development\n"
    "        [--expires-in N[s|m|h|d]] --out cap.json\n"
    "      a capability signed for that one device (admin; default 7 days, at most 90): with it\n"
    "      (rampart-agent capability apply) the device may sideload apps and be debugged\n"
    "  rampart ca download --tenant T --out CA.pem\n"
    "      the tenant's valid CAs (two while one succeeds the other): what brokers trust\n"
    "  rampart ca crl --tenant T --out CRL.pem      their CRLs, one per CA (PEM)\n"
    "\n"
    "Updates:\n"
    "  rampart image-key add --tenant T --key PUB.pem --name NAME   a key the tenant signs with\n"
    "  rampart image-key list --tenant T [--limit N]\n"
    "  rampart image upload --tenant T IMAGE [--component NAME]    prints the image ID\n"
    "  rampart image list --tenant T [--limit N]\n"
    "  rampart product create --tenant T NAME                        prints the product ID\n"
    "  rampart product list --tenant T [--limit N]\n"
    "  rampart device-group create --tenant T --product P NAME [--allow-unknown-images]\n"
    "      [--crash-capture on|off]  (on by default: its devices capture and send crashes)\n"
    "  rampart device-group list --tenant T --product P [--limit N]\n"
    "  rampart device-group show --tenant T --product P GROUP\n"
    "  rampart device-group set --tenant T --product P GROUP --crash-capture on|off   (admin;\n"
    "      its devices learn it at their next status report; off: they keep and send no crash)\n"
    "  rampart device assign --tenant T --product P --group G DEVICE_ID...\n"
    "  rampart deployment create --tenant T --product P --group G IMAGE_ID... [--rollout PCT]\n"
    "      [--ignore-counter-limits]  (admin: even past the security counters some devices\n"
    "      said they accept; they will refuse the image)\n"
    "  rampart deployment list --tenant T [--limit N]\n"
    "  rampart deployment show --tenant T DEPLOYMENT_ID            devices per update state\n"
    "  rampart deployment pause|resume|stop --tenant T DEPLOYMENT_ID   (contributor) paused or\n"
    "      stopped: offered only to the devices it reached; resume a paused one; stop is final\n"
    "  rampart update-root sign --tenant T --root-key ROOT.pem [--previous-root-key OLD.pem]\n"
    "        [--expires-days 365] [--out root.json]\n"
    "      sign the next root metadata (the tenant's image keys and the service's online key)\n"
    "      with the offline root key, upload it, and write it for provisioning devices\n"
    "  rampart update-root rotate-online-key --tenant T\n"
    "      a new online key for the service; used once the next root names it (prints it)\n"
    "  (products and groups are named by ID or by name)\n"
    "  A list is printed whole however long it is: past the 10,000 rows the service answers at\n"
    "  once, it is read 1000 at a time, in ID order (said on stderr). --limit N: its first N rows\n"
    "  in ID order, read a page at a time.\n"
    "\n"
    "Failure reports (docs/failure-reporting.md):\n"
    "  rampart failure list --tenant T [--offset N] [--limit N]   crash buckets, last seen first\n"
    "  rampart failure show --tenant T BUCKET   its signature, frames (named once the debug\n"
    "                                           file is uploaded), counts, samples\n"
    "  rampart event list --tenant T [--device D] [--kind K] [--offset N] [--limit N]\n"
    "      the devices' stored failure reports, newest first (the monitor's security events\n"
    "      of the status report are in `rampart device show`)\n"
    "  rampart symbols upload --tenant T FILE.debug   a debug file (objcopy --only-keep-debug),\n"
    "      kept by its build ID (contributor; at most 1 MiB); prints the build ID\n"
    "\n"
    "Options (or the environment variables in brackets):\n"
    "  --server URL        the service, e.g. https://127.0.0.1:8443  [RAMPART_SERVER]\n"
    "  --token-file FILE   a file holding the API token               [RAMPART_TOKEN_FILE]\n"
    "  --ca-file FILE      the service's CA certificate (server-ca.pem) [RAMPART_CA_FILE]\n"
    "  --output text|json|table|yaml  json or yaml for scripts (stable keys), table for people\n";

/* Call the API. OUT: *status and *body (the parsed JSON, or NULL when it was not JSON). */
int ops_api(struct ops *o, const char *method, const char *path, json_t *req, long *status,
            json_t **body, char **raw, size_t *raw_len)
{
    char url[2048], *text = NULL;
    rp_http_opts_t h = {o->ca_file,
                        o->token,
                        req != NULL ? "application/json" : NULL,
                        30,
                        NULL,
                        NULL,
                        o->progress != NULL ? cli_progress_http : NULL,
                        o->progress,
                        RP_HTTP_BUSY_WAIT};
    rp_http_response_t r;
    rp_err_t err;

    *body = NULL;
    snprintf(url, sizeof(url), "%s%s", o->server, path);
    if (req != NULL && (text = json_dumps(req, JSON_COMPACT)) == NULL)
        return CLI_FAIL;
    err = rp_http_request(method, url, &h, text, text != NULL ? strlen(text) : 0, &r);
    free(text);
    if (err != RP_OK) {
        rp_log_error("%s: %s", o->server, r.error);
        return CLI_FAIL;
    }
    *status = r.status;
    *body = json_loadb(r.body, r.len, 0, NULL);
    if (raw != NULL) {
        *raw = r.body;
        *raw_len = r.len;
    } else {
        rp_http_response_free(&r);
    }
    return CLI_OK;
}

/* The page size the CLI asks for: the server's largest (paging.h). */
#define OPS_PAGE 1000

/* RAMPART_PAGE_SIZE (1 to OPS_PAGE; for the tests, so that a list of a few rows spans pages): the
 * page size asked for, and every list read a page at a time; 0 when it is not set. */
static uint32_t test_page_size(void)
{
    const char *e = getenv("RAMPART_PAGE_SIZE");
    uint32_t n;

    return e != NULL && cli_parse_u32(e, OPS_PAGE, &n) && n >= 1 ? n : 0;
}

/* The most rows a list is read to, whatever its pages say: a backstop against a service (or a
 * proxy) whose cursor always moves on (ten times the devices issue 12 plans a tenant for). */
#define OPS_ROWS_MAX 10000000u

/* ops_get_all, stopping at max rows (0: every row). The pages must move on (review r17 L1): each
 * next_after after the last in ID order (byte order: docs/api.md "Paging the lists"), carried only
 * by a page with rows, and no more than OPS_ROWS_MAX rows in all; anything else is refused, so that
 * a service or proxy repeating a cursor neither hangs the CLI nor prints a row twice. */
static int get_pages(struct ops *o, const char *path, const char *key, uint32_t max, long *status,
                     json_t **body)
{
    char url[1024], after[160] = "";
    json_t *page = NULL, *all;
    uint32_t size = test_page_size() ? test_page_size() : OPS_PAGE;
    size_t got = 0;
    int rc;

    *body = NULL;
    for (;;) {
        const char *next;
        if (snprintf(url, sizeof(url), "%s%slimit=%u%s%s", path, strchr(path, '?') ? "&" : "?",
                     max != 0 && got < max && max - got < size ? (uint32_t)(max - got) : size,
                     after[0] ? "&after=" : "", after) >= (int)sizeof(url)) {
            json_decref(*body);
            *body = NULL;
            return CLI_FAIL;
        }
        rp_log_debug("a page: GET %s", url);
        rc = ops_api(o, "GET", url, NULL, status, &page, NULL, NULL);
        if (rc != CLI_OK || *status != 200) {
            json_decref(*body);
            *body = page;
            return rc;
        }
        all = json_object_get(page, key);
        if (!json_is_array(all)) {
            json_decref(page);
            json_decref(*body);
            *body = NULL;
            rp_log_error("the service's answer has no \"%s\" list", key);
            return CLI_FAIL;
        }
        next = json_string_value(json_object_get(page, "next_after"));
        /* (the cursor is an ID, sent as it came: anything else is refused, never sent) */
        if (next != NULL &&
            (strlen(next) >= sizeof(after) ||
             strspn(next, "0123456789abcdefghijklmnopqrstuvwxyz_") != strlen(next))) {
            json_decref(page);
            json_decref(*body);
            *body = NULL;
            rp_log_error("the service's next_after is not an ID");
            return CLI_FAIL;
        }
        if ((next != NULL && (json_array_size(all) == 0 || strcmp(next, after) <= 0)) ||
            got + json_array_size(all) > OPS_ROWS_MAX) {
            rp_log_error("the server's paging did not advance (next_after %s after %s, on a page "
                         "of %zu rows, %zu rows before it): the list is not complete",
                         next != NULL ? next : "none", after[0] ? after : "the start",
                         json_array_size(all), got);
            json_decref(page);
            json_decref(*body);
            *body = NULL;
            return CLI_FAIL;
        }
        if (next != NULL)
            snprintf(after, sizeof(after), "%s", next);
        json_object_del(page, "next_after");
        got += json_array_size(all);
        if (*body == NULL) {
            *body = page;
        } else {
            json_array_extend(json_object_get(*body, key), all);
            json_decref(page);
        }
        if (next == NULL || (max != 0 && got >= max))
            break;
    }
    /* (no more than max, even from a service that sent more than a page asked for) */
    for (all = json_object_get(*body, key); max != 0 && json_array_size(all) > max;)
        json_array_remove(all, json_array_size(all) - 1);
    return CLI_OK;
}

/* --limit N into *max (0 when not given); false: a usage error (said). */
static bool limit_arg(const struct ops *o, uint32_t *max)
{
    *max = 0;
    if (o->limit == NULL || (cli_parse_u32(o->limit, UINT32_MAX, max) && *max != 0))
        return true;
    cli_usage(NULL, "--limit is a number of rows, 1 or more");
    return false;
}

int ops_get_all(struct ops *o, const char *path, const char *key, long *status, json_t **body)
{
    uint32_t max;

    *body = NULL;
    if (!limit_arg(o, &max))
        return CLI_USAGE;
    return get_pages(o, path, key, max, status, body);
}

int ops_get_list(struct ops *o, const char *path, const char *key, long *status, json_t **body)
{
    const char *error;
    uint32_t max;

    *body = NULL;
    if (!limit_arg(o, &max))
        return CLI_USAGE;
    if (test_page_size() == 0 && max == 0) {
        if (ops_api(o, "GET", path, NULL, status, body, NULL, NULL) != CLI_OK)
            return CLI_FAIL;
        error = json_string_value(json_object_get(*body, "error"));
        if (*status != 400 || error == NULL || strcmp(error, "paging_required") != 0)
            return CLI_OK;
        json_decref(*body);
        *body = NULL;
        rp_log_warn("more than the service answers at once (10,000): listed %d at a time, in ID "
                    "order",
                    OPS_PAGE);
    }
    return get_pages(o, path, key, max, status, body);
}

/* Report a non-2xx answer: the service's own message when it gave one. */
int ops_refused(long status, json_t *body)
{
    const char *msg = json_string_value(json_object_get(body, "message"));

    rp_log_error("the service refused (HTTP %ld): %s", status, msg != NULL ? msg : "no reason");
    json_decref(body);
    return CLI_FAIL;
}

void ops_print(const struct ops *o, json_t *j)
{
    cli_output_print(o->output, j);
}

/*
 * Text the service keeps came from devices and apps (an event's reason may quote a path an app
 * chose): printed as it is, an escape sequence would act on the operator's terminal and a newline
 * forge a line. Each control character is shown as '?' (the object keeps the shown copy).
 */
const char *ops_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    char *copy;
    bool clean;

    if (s == NULL)
        return "-";
    clean = cli_text_clean(s);
    if (clean || (copy = strdup(s)) == NULL)
        return clean ? s : "-";
    cli_text_sanitize(copy);
    json_object_set_new(o, key, json_string(copy));
    free(copy);
    s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "-";
}

int ops_need_tenant(struct ops *o)
{
    if (o->tenant == NULL)
        return cli_usage(NULL, "this command needs --tenant T");
    return CLI_OK;
}

/* "yes" or "no" into a JSON boolean member of req; false when it is neither. */
static bool set_flag(json_t *req, const char *key, const char *value)
{
    if (value == NULL)
        return true;
    if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
        return false;
    json_object_set_new(req, key, json_boolean(strcmp(value, "yes") == 0));
    return true;
}

static int tenant_policy_cmd(struct ops *o)
{
    char path[512];
    json_t *req, *body;
    long status;
    int rc;

    if (ops_need_tenant(o) != CLI_OK)
        return CLI_USAGE;
    if (o->nargs != 0)
        return cli_usage(NULL, "tenant policy takes no arguments");
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/policy", o->tenant);
    req = json_object();
    if (!set_flag(req, "allow_debug", o->allow_debug) ||
        !set_flag(req, "require_components", o->require_components) ||
        !set_flag(req, "require_measurement_register", o->require_register) ||
        !set_flag(req, "allow_development", o->allow_development)) {
        json_decref(req);
        return cli_usage(NULL, "--allow-debug, --require-components, --require-register and "
                               "--allow-development take yes or no");
    }
    if (json_object_size(req) > 0)
        rc = ops_api(o, "PUT", path, req, &status, &body, NULL, NULL);
    else
        rc = ops_api(o, "GET", path, NULL, &status, &body, NULL, NULL);
    json_decref(req);
    if (rc != CLI_OK)
        return rc;
    if (status != 200)
        return ops_refused(status, body);
    if (o->output != CLI_OUTPUT_TEXT) {
        ops_print(o, body);
    } else {
        printf("require components:           %s\n",
               json_is_true(json_object_get(body, "require_components")) ? "yes" : "no");
        printf("require measurement register: %s\n",
               json_is_true(json_object_get(body, "require_measurement_register")) ? "yes" : "no");
        printf("allow debug:                  %s\n",
               json_is_true(json_object_get(body, "allow_debug")) ? "yes" : "no");
        printf("allow development mode:       %s\n",
               json_is_true(json_object_get(body, "allow_development")) ? "yes" : "no");
        printf("set:                          %s\n",
               json_is_string(json_object_get(body, "updated")) ? ops_str(body, "updated")
                                                                : "never (the default)");
    }
    json_decref(body);
    return CLI_OK;
}

static int tenant_cmd(struct ops *o, const char *verb)
{
    json_t *body, *t;
    long status;
    size_t i;

    if (strcmp(verb, "create") == 0) {
        json_t *req;
        int rc;
        if (o->nargs != 1)
            return cli_usage(NULL, "tenant create needs exactly one NAME");
        req = json_pack("{s:s}", "name", o->args[0]);
        rc = ops_api(o, "POST", "/api/v1/tenants", req, &status, &body, NULL, NULL);
        json_decref(req);
        if (rc != CLI_OK)
            return rc;
        if (status != 201)
            return ops_refused(status, body);
        if (o->output != CLI_OUTPUT_TEXT)
            ops_print(o, body);
        else
            printf("%s\n", ops_str(body, "id"));
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "list") == 0) {
        int rc = ops_get_list(o, "/api/v1/tenants", "tenants", &status, &body);
        if (rc != CLI_OK)
            return rc;
        if (status != 200)
            return ops_refused(status, body);
        if (o->output != CLI_OUTPUT_TEXT) {
            ops_print(o, body);
        } else {
            printf("%-28s %-20s %s\n", "ID", "CREATED", "NAME");
            json_array_foreach(json_object_get(body, "tenants"), i, t) printf(
                "%-28s %-20s %s\n", ops_str(t, "id"), ops_str(t, "created"), ops_str(t, "name"));
        }
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "policy") == 0)
        return tenant_policy_cmd(o);
    return cli_usage(NULL, "unknown tenant command '%s'", verb);
}

/* "90", "90s", "15m", "12h", "30d": seconds, at most ten years. */
static bool parse_duration(const char *text, int64_t *seconds)
{
    static const struct {
        char unit;
        int64_t scale;
    } units[] = {
        {'s', 1    },
        {'m', 60   },
        {'h', 3600 },
        {'d', 86400}
    };
    char *end;
    long long n = strtoll(text, &end, 10);
    int64_t scale = 1;

    if (end == text || n < 1 || text[0] == '-' || text[0] == '+')
        return false;
    if (*end != '\0') {
        scale = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (end[0] == units[i].unit && end[1] == '\0')
                scale = units[i].scale;
    }
    if (scale == 0 || n > 10LL * 366 * 86400 / scale)
        return false;
    *seconds = (int64_t)n * scale;
    return true;
}

static void print_tokens(json_t *body)
{
    json_t *t;
    size_t i;

    printf("%-28s %-12s %-8s %-20s %-20s %s\n", "ID", "ROLE", "STATUS", "CREATED", "EXPIRES",
           "LAST USED");
    json_array_foreach(json_object_get(body, "tokens"), i, t)
    {
        printf("%-28s %-12s %-8s %-20s %-20s %s\n", ops_str(t, "id"), ops_str(t, "role"),
               ops_str(t, "status"), ops_str(t, "created"),
               json_is_string(json_object_get(t, "expires")) ? ops_str(t, "expires") : "never",
               json_is_string(json_object_get(t, "last_used")) ? ops_str(t, "last_used") : "never");
    }
}

static int token_cmd(struct ops *o, const char *verb)
{
    char path[512];
    json_t *body;
    long status;

    if (o->tenant != NULL)
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/tokens", o->tenant);
    else
        snprintf(path, sizeof(path), "/api/v1/tokens"); /* the system tokens */
    if (strcmp(verb, "create") == 0) {
        json_t *req;
        int64_t seconds = 0;
        int rc;
        if (o->tenant == NULL || o->role == NULL || o->nargs != 0)
            return cli_usage(NULL, "token create needs --tenant T --role R");
        if (o->expires_in != NULL && o->expires_at != NULL)
            return cli_usage(NULL, "give --expires-in or --expires-at, not both");
        if (o->expires_in != NULL && !parse_duration(o->expires_in, &seconds))
            return cli_usage(NULL, "--expires-in wants N, Ns, Nm, Nh or Nd (at most ten years)");
        req = json_pack("{s:s}", "role", o->role);
        if (o->expires_in != NULL)
            json_object_set_new(req, "expires_in", json_integer((json_int_t)seconds));
        if (o->expires_at != NULL)
            json_object_set_new(req, "expires_at", json_string(o->expires_at));
        rc = ops_api(o, "POST", path, req, &status, &body, NULL, NULL);
        json_decref(req);
        if (rc != CLI_OK)
            return rc;
        if (status != 201)
            return ops_refused(status, body);
        if (o->output != CLI_OUTPUT_TEXT)
            ops_print(o, body);
        else
            printf("%s\n", ops_str(body, "token"));
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "list") == 0) {
        if (o->nargs != 0)
            return cli_usage(NULL, "token list takes no arguments");
        int rc = ops_get_list(o, path, "tokens", &status, &body);
        if (rc != CLI_OK)
            return rc;
        if (status != 200)
            return ops_refused(status, body);
        if (o->output != CLI_OUTPUT_TEXT)
            ops_print(o, body);
        else
            print_tokens(body);
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "revoke") == 0) {
        char *id;
        int rc;
        if (o->nargs != 1)
            return cli_usage(NULL, "token revoke needs one TOKEN_ID (or self)");
        id = rp_http_escape(o->args[0]);
        if (id == NULL)
            return CLI_FAIL;
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", id);
        free(id);
        rc = ops_api(o, "DELETE", path, NULL, &status, &body, NULL, NULL);
        if (rc != CLI_OK)
            return rc;
        if (status != 200)
            return ops_refused(status, body);
        if (o->output != CLI_OUTPUT_TEXT)
            ops_print(o, body);
        else
            printf("revoked %s\n", ops_str(body, "id"));
        json_decref(body);
        return CLI_OK;
    }
    return cli_usage(NULL, "unknown token command '%s'", verb);
}

/* What the device last reported of what runs (POST /api/v1/device/status): its apps, its newest
 * security events and what was dropped. */
static void print_report(json_t *rep)
{
    json_t *dropped = json_object_get(rep, "events_dropped"), *v;
    size_t i;

    if (!json_is_object(rep)) {
        printf("status report:     never\n");
        return;
    }
    printf("status report:     %s\n", ops_str(rep, "reported_at"));
    if (json_array_size(json_object_get(rep, "apps")) == 0)
        printf("apps:              none reported\n");
    json_array_foreach(json_object_get(rep, "apps"), i, v)
    {
        printf("%s%s %s: %s, %lld restart(s)\n",
               i == 0 ? "apps:              " : "                   ", ops_str(v, "component"),
               ops_str(v, "version"), ops_str(v, "state"),
               (long long)json_integer_value(json_object_get(v, "restarts")));
    }
    printf("security events:   %lld kept, %lld dropped by the device, %lld by the service\n",
           (long long)json_integer_value(json_object_get(rep, "events_kept")),
           (long long)json_integer_value(json_object_get(dropped, "device")),
           (long long)json_integer_value(json_object_get(dropped, "service")));
    json_array_foreach(json_object_get(rep, "recent_events"), i, v)
    {
        const char *app = ops_str(v, "app");
        printf("  #%lld %s %-14s %-16s %s\n",
               (long long)json_integer_value(json_object_get(v, "seq")), ops_str(v, "at"),
               ops_str(v, "kind"), app[0] != '\0' ? app : "-", ops_str(v, "reason"));
    }
}

static void print_device(json_t *d)
{
    json_t *last = json_object_get(d, "last_attestation"),
           *cert = json_object_get(d, "certificate");
    json_t *quarantine = json_object_get(d, "quarantine");

    printf("device:            %s\n", ops_str(d, "device_id"));
    printf("tenant:            %s\n", ops_str(d, "tenant"));
    printf("status:            %s\n", ops_str(d, "status"));
    if (json_is_object(quarantine)) /* the policy's act: since when, and why */
        printf("quarantined:       since %s: %s\n", ops_str(quarantine, "since"),
               ops_str(quarantine, "reason"));
    printf("claimed:           %s\n", ops_str(d, "claimed_at"));
    if (json_is_object(last) && strcmp(ops_str(last, "result"), "pass") == 0)
        printf("last attestation:  %s, passed\n", ops_str(last, "at"));
    else if (json_is_object(last))
        printf("last attestation:  %s, failed: %s\n", ops_str(last, "at"), ops_str(last, "reason"));
    else
        printf("last attestation:  never\n");
    if (json_is_object(cert))
        printf("certificate:       %s, expires %s\n", ops_str(cert, "serial"),
               ops_str(cert, "not_after"));
    else
        printf("certificate:       none\n");
    print_report(json_object_get(d, "report"));
}

static int device_cmd(struct ops *o, const char *verb)
{
    char path[512];
    json_t *body, *d;
    long status;
    size_t i;
    int rc;

    if (ops_need_tenant(o) != CLI_OK)
        return CLI_USAGE;
    if (strcmp(verb, "claim") == 0) {
        json_t *ids = json_array(), *req;
        if (o->nargs == 0) {
            json_decref(ids);
            return cli_usage(NULL, "device claim needs DEVICE_ID...");
        }
        for (int a = 0; a < o->nargs; a++)
            json_array_append_new(ids, json_string(o->args[a]));
        req = json_pack("{s:o}", "device_ids", ids);
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/devices", o->tenant);
        rc = ops_api(o, "POST", path, req, &status, &body, NULL, NULL);
        json_decref(req);
        if (rc != CLI_OK)
            return rc;
        if (status != 201)
            return ops_refused(status, body);
        if (o->output != CLI_OUTPUT_TEXT)
            ops_print(o, body);
        else
            json_array_foreach(json_object_get(body, "claimed"), i, d)
                printf("claimed %s\n", json_string_value(d));
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "list") == 0) {
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/devices", o->tenant);
        if ((rc = ops_get_all(o, path, "devices", &status, &body)) != CLI_OK)
            return rc;
        if (status != 200)
            return ops_refused(status, body);
        if (o->output != CLI_OUTPUT_TEXT) {
            ops_print(o, body);
        } else {
            printf("%-64s %-8s %-22s %s\n", "DEVICE", "STATUS", "LAST ATTESTATION", "RESULT");
            json_array_foreach(json_object_get(body, "devices"), i, d)
            {
                json_t *last = json_object_get(d, "last_attestation");
                printf("%-64s %-8s %-22s %s\n", ops_str(d, "device_id"), ops_str(d, "status"),
                       json_is_object(last) ? ops_str(last, "at") : "never",
                       json_is_object(last) ? ops_str(last, "reason") : "-");
            }
        }
        json_decref(body);
        return CLI_OK;
    }
    if (o->nargs != 1)
        return cli_usage(NULL, "device %s needs exactly one DEVICE_ID", verb);
    if (strcmp(verb, "show") == 0 || strcmp(verb, "attestations") == 0) {
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/devices/%s%s", o->tenant, o->args[0],
                 strcmp(verb, "show") == 0 ? "" : "/attestations");
        if (ops_api(o, "GET", path, NULL, &status, &body, NULL, NULL) != CLI_OK)
            return CLI_FAIL;
        if (status != 200)
            return ops_refused(status, body);
        if (o->output != CLI_OUTPUT_TEXT || strcmp(verb, "attestations") == 0)
            ops_print(o, body);
        else
            print_device(body);
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "block") == 0 || strcmp(verb, "unblock") == 0) {
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/devices/%s/%s", o->tenant, o->args[0],
                 verb);
        if (ops_api(o, "POST", path, NULL, &status, &body, NULL, NULL) != CLI_OK)
            return CLI_FAIL;
        if (status != 200)
            return ops_refused(status, body);
        if (o->output != CLI_OUTPUT_TEXT)
            ops_print(o, body);
        else
            printf("%s %sed\n", o->args[0], verb);
        json_decref(body);
        return CLI_OK;
    }
    return cli_usage(NULL, "unknown device command '%s'", verb);
}

/* What a command that wrote a file says: the text, or (--output) what it is as data. Takes j. */
static void said(const struct ops *o, json_t *j, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void said(const struct ops *o, json_t *j, const char *fmt, ...)
{
    va_list ap;

    if (o->output != CLI_OUTPUT_TEXT) {
        ops_print(o, j);
    } else {
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }
    json_decref(j);
}

/* Write raw[0..len) to path, replacing it atomically (never a file holding a private key:
 * rp_key_check_out, said). */
static int write_out(const char *path, const char *raw, size_t len, mode_t mode)
{
    rp_atomic_file_t f;
    rp_err_t err;

    if (rp_key_check_out(path, true, false) != RP_OK)
        return CLI_FAIL;
    err = rp_atomic_begin(&f, path, mode, 0);

    if (err == RP_OK) {
        err = rp_atomic_write(&f, raw, len);
        if (err == RP_OK)
            err = rp_atomic_commit(&f, 0);
        else
            rp_atomic_abort(&f);
    }
    if (err != RP_OK) {
        rp_log_error("%s: %s", path, rp_strerror(err));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* A call whose answer is a file the CLI writes (to name): drawn as a download. */
static int download(struct ops *o, const char *method, const char *path, json_t *req,
                    const char *name, long *status, json_t **body, char **raw, size_t *raw_len)
{
    cli_progress_t bar;
    int rc;

    cli_progress_start(&bar, name, 0, o->output);
    o->progress = &bar;
    rc = ops_api(o, method, path, req, status, body, raw, raw_len);
    o->progress = NULL;
    cli_progress_end(&bar, rc == CLI_OK ? *raw_len : 0);
    return rc;
}

/* rampart device capability create --tenant T --device D --kind development [--expires-in D]
 * --out cap.json */
static int capability_cmd(struct ops *o)
{
    char path[512], *raw = NULL;
    size_t len = 0;
    int64_t seconds = 0;
    json_t *req, *body;
    long status;
    int rc;

    if (o->nargs != 1 || strcmp(o->args[0], "create") != 0)
        return cli_usage(NULL, "device capability create --tenant T --device D --kind development "
                               "[--expires-in N[s|m|h|d]] --out cap.json");
    if (o->device == NULL || o->kind == NULL || o->out == NULL)
        return cli_usage(NULL, "device capability create needs --device, --kind and --out");
    if (o->expires_in != NULL && !parse_duration(o->expires_in, &seconds))
        return cli_usage(NULL, "--expires-in is a number with s, m, h or d (e.g. 8h, 7d)");
    req = json_pack("{s:s}", "kind", o->kind);
    if (o->expires_in != NULL)
        json_object_set_new(req, "expires_in", json_integer((json_int_t)seconds));
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/devices/%s/capabilities", o->tenant,
             o->device);
    rc = download(o, "POST", path, req, o->out, &status, &body, &raw, &len);
    json_decref(req);
    if (rc != CLI_OK)
        return rc;
    if (status != 201) {
        free(raw);
        return ops_refused(status, body);
    }
    json_decref(body);
    rc = write_out(o->out, raw, len, 0644);
    free(raw);
    if (rc == CLI_OK)
        said(o, json_pack("{s:s, s:s, s:s}", "file", o->out, "kind", o->kind, "device", o->device),
             "wrote %s: a %s capability for device %s\n", o->out, o->kind, o->device);
    return rc;
}

static int ca_cmd(struct ops *o, const char *verb)
{
    char path[512], *raw = NULL;
    size_t len = 0;
    json_t *body;
    long status;
    int rc;

    if (ops_need_tenant(o) != CLI_OK)
        return CLI_USAGE;
    if (o->out == NULL)
        return cli_usage(NULL, "ca %s needs --out FILE", verb);
    if (strcmp(verb, "download") == 0)
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/ca", o->tenant);
    else if (strcmp(verb, "crl") == 0)
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/crl?format=pem", o->tenant);
    else
        return cli_usage(NULL, "unknown ca command '%s'", verb);
    if (download(o, "GET", path, NULL, o->out, &status, &body, &raw, &len) != CLI_OK)
        return CLI_FAIL;
    if (status != 200) {
        free(raw);
        return ops_refused(status, body);
    }
    json_decref(body);
    rc = write_out(o->out, raw, len, 0644);
    free(raw);
    if (rc == CLI_OK)
        said(o, json_pack("{s:s}", "file", o->out), "wrote %s\n", o->out);
    return rc;
}

int ops_token_load(struct ops *o)
{
    uint8_t *token;
    size_t len;

    if (o->server == NULL || o->token_file == NULL || o->ca_file == NULL)
        return cli_usage(NULL, "the service needs --server, --token-file and --ca-file (or "
                               "RAMPART_SERVER, RAMPART_TOKEN_FILE, RAMPART_CA_FILE)");
    if (rp_read_file(o->token_file, sizeof(o->token) - 1, &token, &len) != RP_OK) {
        rp_log_error("%s: cannot read the token", o->token_file);
        return CLI_FAIL;
    }
    while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r' || token[len - 1] == ' '))
        len--;
    memcpy(o->token, token, len);
    o->token[len] = '\0';
    memset(token, 0, len);
    free(token);
    return CLI_OK;
}

/* Its getopt table; also the completion's and the help's (commands.c). */
const struct option cli_ops_options[] = {
    {"server",                required_argument, NULL, 's'},
    {"token-file",            required_argument, NULL, 't'},
    {"ca-file",               required_argument, NULL, 'c'},
    {"tenant",                required_argument, NULL, 'T'},
    {"role",                  required_argument, NULL, 'r'},
    {"out",                   required_argument, NULL, 'o'},
    {"output",                required_argument, NULL, 'O'},
    {"product",               required_argument, NULL, 'P'},
    {"group",                 required_argument, NULL, 'G'},
    {"key",                   required_argument, NULL, 'k'},
    {"name",                  required_argument, NULL, 'n'},
    {"component",             required_argument, NULL, 'C'},
    {"rollout",               required_argument, NULL, 'R'},
    {"allow-unknown-images",  no_argument,       NULL, 'U'},
    {"ignore-counter-limits", no_argument,       NULL, 'L'},
    {"root-key",              required_argument, NULL, 'K'},
    {"previous-root-key",     required_argument, NULL, 'J'},
    {"expires-days",          required_argument, NULL, 'E'},
    {"expires-in",            required_argument, NULL, 'I'},
    {"expires-at",            required_argument, NULL, 'X'},
    {"allow-debug",           required_argument, NULL, 'D'},
    {"require-components",    required_argument, NULL, 'M'},
    {"require-register",      required_argument, NULL, 'Y'},
    {"allow-development",     required_argument, NULL, 'V'},
    {"device",                required_argument, NULL, 'd'},
    {"kind",                  required_argument, NULL, 'N'},
    {"offset",                required_argument, NULL, 'F'},
    {"limit",                 required_argument, NULL, 'Z'},
    {"crash-capture",         required_argument, NULL, 'W'},
    {"help",                  no_argument,       NULL, 'h'},
    {NULL,                    0,                 NULL, 0  },
};

int cmd_ops(int argc, char **argv)
{
    struct ops o = {0};
    int c, rc;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cli_ops_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    o.server = getenv("RAMPART_SERVER");
    o.token_file = getenv("RAMPART_TOKEN_FILE");
    o.ca_file = getenv("RAMPART_CA_FILE");
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1,
                            "s:t:c:T:r:o:O:P:G:k:n:C:R:ULK:J:E:I:X:D:M:Y:V:d:N:F:Z:W:h",
                            cli_ops_options, NULL)) != -1) {
        switch (c) {
        case 's': o.server = optarg; break;
        case 't': o.token_file = optarg; break;
        case 'c': o.ca_file = optarg; break;
        case 'T': o.tenant = optarg; break;
        case 'r': o.role = optarg; break;
        case 'o': o.out = optarg; break;
        case 'O':
            if (!cli_parse_output(optarg, &o.output))
                return cli_usage(NULL, "--output must be " CLI_OUTPUT_NAMES);
            break;
        case 'P': o.product = optarg; break;
        case 'G': o.group = optarg; break;
        case 'k': o.key = optarg; break;
        case 'n': o.name = optarg; break;
        case 'C': o.component = optarg; break;
        case 'R': o.rollout = optarg; break;
        case 'U': o.allow_unknown_images = true; break;
        case 'L': o.ignore_counter_limits = true; break;
        case 'K': o.root_key = optarg; break;
        case 'J': o.prev_root_key = optarg; break;
        case 'E': o.expires_days = optarg; break;
        case 'I': o.expires_in = optarg; break;
        case 'X': o.expires_at = optarg; break;
        case 'D': o.allow_debug = optarg; break;
        case 'M': o.require_components = optarg; break;
        case 'Y': o.require_register = optarg; break;
        case 'V': o.allow_development = optarg; break;
        case 'd': o.device = optarg; break;
        case 'N': o.kind = optarg; break;
        case 'F': o.offset = optarg; break;
        case 'Z': o.limit = optarg; break;
        case 'W': o.crash_capture = optarg; break;
        case 'h': fputs(cli_ops_usage, stdout); return CLI_OK;
        default: return cli_usage(NULL, "bad option");
        }
    }
    o.args = argv + 1 + optind;
    o.nargs = argc - 1 - optind;
    rc = ops_token_load(&o);
    if (rc != CLI_OK)
        return rc;
    if (strcmp(argv[0], "tenant") == 0)
        rc = tenant_cmd(&o, argv[1]);
    else if (strcmp(argv[0], "token") == 0)
        rc = token_cmd(&o, argv[1]);
    else if (strcmp(argv[0], "device") == 0 && strcmp(argv[1], "capability") == 0)
        rc = ops_need_tenant(&o) == CLI_OK ? capability_cmd(&o) : CLI_USAGE;
    else if (strcmp(argv[0], "device") == 0 && strcmp(argv[1], "assign") == 0)
        rc = ops_need_tenant(&o) == CLI_OK ? ops_device_assign(&o) : CLI_USAGE;
    else if (strcmp(argv[0], "device") == 0)
        rc = device_cmd(&o, argv[1]);
    else if (strcmp(argv[0], "ca") == 0)
        rc = ca_cmd(&o, argv[1]);
    else if (strcmp(argv[0], "image-key") == 0)
        rc = ops_image_key_cmd(&o, argv[1]);
    else if (strcmp(argv[0], "image") == 0)
        rc = ops_image_cmd(&o, argv[1]);
    else if (strcmp(argv[0], "product") == 0)
        rc = ops_product_cmd(&o, argv[1]);
    else if (strcmp(argv[0], "device-group") == 0)
        rc = ops_group_cmd(&o, argv[1]);
    else if (strcmp(argv[0], "update-root") == 0)
        rc = ops_update_root_cmd(&o, argv[1]);
    else if (strcmp(argv[0], "failure") == 0 || strcmp(argv[0], "event") == 0 ||
             strcmp(argv[0], "symbols") == 0)
        rc = ops_failures_cmd(&o, argv[0], argv[1]);
    else
        rc = ops_deployment_cmd(&o, argv[1]);
    memset(o.token, 0, sizeof(o.token));
    return rc;
}
