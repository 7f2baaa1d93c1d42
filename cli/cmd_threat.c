/*
 * The operator's commands for threat detection and quarantine (docs/failure-reporting.md):
 * alerts, the spike rule's settings, the webhook, the quarantine policy and its actions, and
 * releasing a quarantined device. Each is one call of the service's API (server/api/threat.c), with
 * --output json|table|yaml printing the service's answer as it is.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "ops.h"
#include "rampart/http_client.h"
#include "rampart/log.h"

const char cli_threat_usage[] =
    "Usage:\n"
    "  rampart alert list --tenant T [--limit N]\n"
    "      the tenant's alerts, newest first: what spiked (an event kind or a crash bucket),\n"
    "      whether it is open, the signals in the window, from how many devices, the baseline\n"
    "  rampart threat show --tenant T\n"
    "  rampart threat set --tenant T [--factor F] [--baseline-days B] [--window SECONDS]\n"
    "        [--min-devices N] [--floor X]                                          (admin)\n"
    "      the spike rule: a kind or bucket spikes when its signals in the last window are at\n"
    "      least F times its baseline (the mean per window over the last B days, never below X)\n"
    "      from at least N devices (defaults: 5, 7, 3600, 3, 1)\n"
    "  rampart webhook show --tenant T\n"
    "  rampart webhook set --tenant T --url URL [--rotate-secret]                    (admin)\n"
    "      alerts and quarantines are POSTed there as JSON, signed: X-Rampart-Signature:\n"
    "      sha256=HMAC-SHA256(secret, body). The secret is printed once, when the first URL is\n"
    "      set or with --rotate-secret; the service cannot show it again\n"
    "  rampart webhook delete --tenant T                                            (admin)\n"
    "  rampart quarantine policy show --tenant T\n"
    "  rampart quarantine policy set --tenant T --kinds K1,K2 --threshold N --window SECONDS\n"
    "      turn automatic quarantine on (admin): a device with N signals of the kinds within\n"
    "      the window is quarantined (no certificate, its certificates revoked, no updates)\n"
    "  rampart quarantine policy off --tenant T                                     (admin)\n"
    "  rampart quarantine actions --tenant T [--limit N]\n"
    "      every quarantine and release, newest first, with who and why\n"
    "  rampart device release --tenant T DEVICE_ID [--reason TEXT]                  (admin)\n"
    "      bring a quarantined device back: it may attest and get a certificate again\n"
    "\n"
    "Options: --server, --token-file, --ca-file (or RAMPART_SERVER, RAMPART_TOKEN_FILE,\n"
    "RAMPART_CA_FILE), --output text|json|table|yaml.\n";

struct topts {
    struct ops o;
    const char *limit, *factor, *baseline_days, *window, *min_devices, *floor;
    const char *url, *kinds, *threshold, *reason;
    bool rotate_secret;
};

/* Call and check: OUT *body on a 2xx (printed whole with --output json by the caller). */
static int call(struct topts *t, const char *method, const char *path, json_t *req, json_t **body)
{
    long status = 0;
    int rc = ops_api(&t->o, method, path, req, &status, body, NULL, NULL);

    json_decref(req);
    if (rc != CLI_OK)
        return rc;
    if (status < 200 || status > 299) {
        rc = ops_refused(status, *body);
        *body = NULL;
        return rc;
    }
    return CLI_OK;
}

/* A number option into req[key]; false when it is not a whole number in [lo, hi]. */
static bool set_int(json_t *req, const char *key, const char *text, long long lo, long long hi)
{
    char *end;
    long long v;

    if (text == NULL)
        return true;
    v = strtoll(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || v < lo || v > hi)
        return false;
    json_object_set_new(req, key, json_integer((json_int_t)v));
    return true;
}

static int alert_cmd(struct topts *t, const char *verb)
{
    char path[512];
    json_t *body, *a;
    size_t i;
    int rc;

    if (strcmp(verb, "list") != 0)
        return cli_usage(NULL, "unknown alert command '%s'", verb);
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/alerts%s%s", t->o.tenant,
             t->limit != NULL ? "?limit=" : "", t->limit != NULL ? t->limit : "");
    rc = call(t, "GET", path, NULL, &body);
    if (rc != CLI_OK)
        return rc;
    if (t->o.output != CLI_OUTPUT_TEXT) {
        ops_print(&t->o, body);
    } else {
        printf("%-6s %-7s %-30s %-20s %-20s %7s %7s %6s %9s\n", "ID", "STATE", "SUBJECT", "OPENED",
               "LAST", "SIGNALS", "DEVICES", "FAILED", "BASELINE");
        json_array_foreach(json_object_get(body, "alerts"), i, a)
        {
            printf("%-6lld %-7s %-30s %-20s %-20s %7lld %7lld %6lld %9.2f\n",
                   (long long)json_integer_value(json_object_get(a, "id")), ops_str(a, "state"),
                   ops_str(a, "subject"), ops_str(a, "opened_at"), ops_str(a, "last_at"),
                   (long long)json_integer_value(json_object_get(a, "count")),
                   (long long)json_integer_value(json_object_get(a, "devices")),
                   (long long)json_integer_value(json_object_get(a, "failed_devices")),
                   json_number_value(json_object_get(a, "baseline")));
        }
    }
    json_decref(body);
    return CLI_OK;
}

static int threat_cmd(struct topts *t, const char *verb)
{
    char path[512];
    json_t *req = NULL, *body;
    int rc;

    snprintf(path, sizeof(path), "/api/v1/tenants/%s/threat", t->o.tenant);
    if (strcmp(verb, "set") == 0) {
        req = json_object();
        if (!set_int(req, "factor", t->factor, 2, 1000) ||
            !set_int(req, "baseline_days", t->baseline_days, 1, 7) ||
            !set_int(req, "window", t->window, 10, 86400) ||
            !set_int(req, "min_devices", t->min_devices, 1, 100000) ||
            !set_int(req, "floor", t->floor, 1, 1000000)) {
            json_decref(req);
            return cli_usage(NULL, "--factor 2-1000, --baseline-days 1-7, --window 10-86400, "
                                   "--min-devices 1-100000, --floor 1-1000000");
        }
        if (json_object_size(req) == 0) {
            json_decref(req);
            return cli_usage(NULL, "threat set needs at least one setting");
        }
    } else if (strcmp(verb, "show") != 0) {
        return cli_usage(NULL, "unknown threat command '%s'", verb);
    }
    rc = call(t, req != NULL ? "PUT" : "GET", path, req, &body);
    if (rc != CLI_OK)
        return rc;
    if (t->o.output != CLI_OUTPUT_TEXT) {
        ops_print(&t->o, body);
    } else {
        printf("factor:          %lld\n",
               (long long)json_integer_value(json_object_get(body, "factor")));
        printf("baseline days:   %lld\n",
               (long long)json_integer_value(json_object_get(body, "baseline_days")));
        printf("window:          %llds\n",
               (long long)json_integer_value(json_object_get(body, "window")));
        printf("min devices:     %lld\n",
               (long long)json_integer_value(json_object_get(body, "min_devices")));
        printf("floor:           %lld\n",
               (long long)json_integer_value(json_object_get(body, "floor")));
        printf("set:             %s\n", json_is_string(json_object_get(body, "updated"))
                                            ? ops_str(body, "updated")
                                            : "never (the defaults)");
    }
    json_decref(body);
    return CLI_OK;
}

static int webhook_cmd(struct topts *t, const char *verb)
{
    char path[512];
    json_t *req = NULL, *body;
    const char *method = "GET";
    int rc;

    snprintf(path, sizeof(path), "/api/v1/tenants/%s/webhook", t->o.tenant);
    if (strcmp(verb, "set") == 0) {
        if (t->url == NULL)
            return cli_usage(NULL, "webhook set needs --url URL");
        method = "PUT";
        req = json_pack("{s:s}", "url", t->url);
        if (t->rotate_secret)
            json_object_set_new(req, "rotate_secret", json_true());
    } else if (strcmp(verb, "delete") == 0) {
        method = "DELETE";
    } else if (strcmp(verb, "show") != 0) {
        return cli_usage(NULL, "unknown webhook command '%s'", verb);
    }
    rc = call(t, method, path, req, &body);
    if (rc != CLI_OK)
        return rc;
    if (t->o.output != CLI_OUTPUT_TEXT) {
        ops_print(&t->o, body);
    } else if (strcmp(verb, "delete") == 0) {
        printf("webhook deleted\n");
    } else {
        printf("url:     %s\n", ops_str(body, "url"));
        printf("set:     %s\n", ops_str(body, "updated"));
        if (json_is_string(json_object_get(body, "secret")))
            printf("secret:  %s\n         (shown once: the receiver checks X-Rampart-Signature "
                   "with it)\n",
                   ops_str(body, "secret"));
        else if (strcmp(verb, "set") == 0)
            printf("secret:  unchanged (--rotate-secret makes a new one)\n");
        if (json_is_integer(json_object_get(body, "pending"))) {
            json_t *dl;
            size_t i;
            printf("waiting: %lld delivery(ies), %lld dropped when the outbox was full\n",
                   (long long)json_integer_value(json_object_get(body, "pending")),
                   (long long)json_integer_value(json_object_get(body, "dropped")));
            json_array_foreach(json_object_get(body, "deliveries"), i, dl)
            {
                printf("  %s  made %s, %lld tries, next %s\n", ops_str(dl, "id"),
                       ops_str(dl, "created"),
                       (long long)json_integer_value(json_object_get(dl, "attempts")),
                       ops_str(dl, "next_try"));
            }
        }
    }
    json_decref(body);
    return CLI_OK;
}

static void print_policy(json_t *p)
{
    json_t *k;
    size_t i;

    printf("enabled:    %s\n", json_is_true(json_object_get(p, "enabled")) ? "yes" : "no");
    printf("kinds:      ");
    json_array_foreach(json_object_get(p, "kinds"), i, k)
        printf("%s%s", i ? "," : "", json_string_value(k));
    printf("%s\n", json_array_size(json_object_get(p, "kinds")) == 0 ? "-" : "");
    printf("threshold:  %lld signals\n",
           (long long)json_integer_value(json_object_get(p, "threshold")));
    printf("window:     %llds\n", (long long)json_integer_value(json_object_get(p, "window")));
    printf("set:        %s\n", json_is_string(json_object_get(p, "updated"))
                                   ? ops_str(p, "updated")
                                   : "never (off: the default)");
}

static int quarantine_cmd(struct topts *t, const char *verb)
{
    char path[512];
    json_t *req = NULL, *body, *a;
    const char *sub = t->o.nargs > 0 ? t->o.args[0] : "";
    size_t i;
    int rc;

    if (strcmp(verb, "actions") == 0) {
        snprintf(path, sizeof(path), "/api/v1/tenants/%s/quarantine/actions%s%s", t->o.tenant,
                 t->limit != NULL ? "?limit=" : "", t->limit != NULL ? t->limit : "");
        rc = call(t, "GET", path, NULL, &body);
        if (rc != CLI_OK)
            return rc;
        if (t->o.output != CLI_OUTPUT_TEXT) {
            ops_print(&t->o, body);
        } else {
            printf("%-20s %-10s %-64s %-30s %s\n", "AT", "ACTION", "DEVICE", "BY", "REASON");
            json_array_foreach(json_object_get(body, "actions"), i, a)
            {
                printf("%-20s %-10s %-64s %-30s %s\n", ops_str(a, "at"), ops_str(a, "action"),
                       ops_str(a, "device_id"), ops_str(a, "actor"), ops_str(a, "reason"));
            }
        }
        json_decref(body);
        return CLI_OK;
    }
    if (strcmp(verb, "policy") != 0 || t->o.nargs != 1)
        return cli_usage(NULL, "quarantine policy show|set|off, or quarantine actions");
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/quarantine/policy", t->o.tenant);
    if (strcmp(sub, "set") == 0) {
        json_t *kinds = json_array();
        char list[1024], *save = NULL;
        if (t->kinds == NULL || t->threshold == NULL || t->window == NULL) {
            json_decref(kinds);
            return cli_usage(NULL, "quarantine policy set needs --kinds K1,K2 --threshold N "
                                   "--window SECONDS");
        }
        snprintf(list, sizeof(list), "%s", t->kinds);
        for (char *k = strtok_r(list, ",", &save); k != NULL; k = strtok_r(NULL, ",", &save))
            json_array_append_new(kinds, json_string(k));
        req = json_pack("{s:b, s:o}", "enabled", 1, "kinds", kinds);
        if (!set_int(req, "threshold", t->threshold, 1, 10000) ||
            !set_int(req, "window", t->window, 1, 30 * 86400)) {
            json_decref(req);
            return cli_usage(NULL, "--threshold 1-10000, --window 1-2592000 seconds");
        }
    } else if (strcmp(sub, "off") == 0) {
        req = json_pack("{s:b}", "enabled", 0);
    } else if (strcmp(sub, "show") != 0) {
        return cli_usage(NULL, "unknown quarantine policy command '%s'", sub);
    }
    rc = call(t, req != NULL ? "PUT" : "GET", path, req, &body);
    if (rc != CLI_OK)
        return rc;
    if (t->o.output != CLI_OUTPUT_TEXT)
        ops_print(&t->o, body);
    else
        print_policy(body);
    json_decref(body);
    return CLI_OK;
}

static int release_cmd(struct topts *t)
{
    char path[512], *id;
    json_t *body;
    int rc;

    if (t->o.nargs != 1)
        return cli_usage(NULL, "device release needs exactly one DEVICE_ID");
    id = rp_http_escape(t->o.args[0]);
    if (id == NULL)
        return CLI_FAIL;
    snprintf(path, sizeof(path), "/api/v1/tenants/%s/devices/%s/release", t->o.tenant, id);
    free(id);
    rc = call(t, "POST", path, t->reason != NULL ? json_pack("{s:s}", "reason", t->reason) : NULL,
              &body);
    if (rc != CLI_OK)
        return rc;
    if (t->o.output != CLI_OUTPUT_TEXT)
        ops_print(&t->o, body);
    else
        printf("%s released\n", ops_str(body, "device_id"));
    json_decref(body);
    return CLI_OK;
}

/* Its getopt table; also the completion's and the help's (commands.c). */
const struct option cli_threat_options[] = {
    {"server",        required_argument, NULL, 's'},
    {"token-file",    required_argument, NULL, 't'},
    {"ca-file",       required_argument, NULL, 'c'},
    {"tenant",        required_argument, NULL, 'T'},
    {"output",        required_argument, NULL, 'O'},
    {"limit",         required_argument, NULL, 'l'},
    {"factor",        required_argument, NULL, 'f'},
    {"baseline-days", required_argument, NULL, 'b'},
    {"window",        required_argument, NULL, 'w'},
    {"min-devices",   required_argument, NULL, 'm'},
    {"floor",         required_argument, NULL, 'F'},
    {"url",           required_argument, NULL, 'u'},
    {"rotate-secret", no_argument,       NULL, 'R'},
    {"kinds",         required_argument, NULL, 'k'},
    {"threshold",     required_argument, NULL, 'n'},
    {"reason",        required_argument, NULL, 'r'},
    {"help",          no_argument,       NULL, 'h'},
    {NULL,            0,                 NULL, 0  },
};

int cmd_threat(int argc, char **argv)
{
    struct topts t;
    int c, rc;

    memset(&t, 0, sizeof(t));
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cli_threat_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    t.o.server = getenv("RAMPART_SERVER");
    t.o.token_file = getenv("RAMPART_TOKEN_FILE");
    t.o.ca_file = getenv("RAMPART_CA_FILE");
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "s:t:c:T:O:l:f:b:w:m:F:u:Rk:n:r:h",
                            cli_threat_options, NULL)) != -1) {
        switch (c) {
        case 's': t.o.server = optarg; break;
        case 't': t.o.token_file = optarg; break;
        case 'c': t.o.ca_file = optarg; break;
        case 'T': t.o.tenant = optarg; break;
        case 'O':
            if (!cli_parse_output(optarg, &t.o.output))
                return cli_usage(NULL, "--output must be " CLI_OUTPUT_NAMES);
            break;
        case 'l': t.limit = optarg; break;
        case 'f': t.factor = optarg; break;
        case 'b': t.baseline_days = optarg; break;
        case 'w': t.window = optarg; break;
        case 'm': t.min_devices = optarg; break;
        case 'F': t.floor = optarg; break;
        case 'u': t.url = optarg; break;
        case 'R': t.rotate_secret = true; break;
        case 'k': t.kinds = optarg; break;
        case 'n': t.threshold = optarg; break;
        case 'r': t.reason = optarg; break;
        case 'h': fputs(cli_threat_usage, stdout); return CLI_OK;
        default: return cli_usage(NULL, "bad option");
        }
    }
    t.o.args = argv + 1 + optind;
    t.o.nargs = argc - 1 - optind;
    if (ops_need_tenant(&t.o) != CLI_OK)
        return CLI_USAGE;
    if (t.limit != NULL) {
        uint32_t n;
        if (!cli_parse_u32(t.limit, 1000, &n) || n == 0)
            return cli_usage(NULL, "--limit is 1 to 1000");
    }
    rc = ops_token_load(&t.o);
    if (rc != CLI_OK)
        return rc;
    if (strcmp(argv[0], "alert") == 0)
        rc = t.o.nargs == 0 ? alert_cmd(&t, argv[1])
                            : cli_usage(NULL, "alert list takes no arguments");
    else if (strcmp(argv[0], "threat") == 0)
        rc =
            t.o.nargs == 0 ? threat_cmd(&t, argv[1]) : cli_usage(NULL, "threat takes no arguments");
    else if (strcmp(argv[0], "webhook") == 0)
        rc = t.o.nargs == 0 ? webhook_cmd(&t, argv[1])
                            : cli_usage(NULL, "webhook takes no arguments");
    else if (strcmp(argv[0], "quarantine") == 0)
        rc = quarantine_cmd(&t, argv[1]);
    else
        rc = release_cmd(&t);
    memset(t.o.token, 0, sizeof(t.o.token));
    return rc;
}
