/*
 * `rampart console link`: a one-time login link to the web console (docs/operations.md), made by
 * the service (POST /api/v1/console/links, server/api/console.c). The link opens a browser session
 * once, within ten minutes; its code rides in the URL's fragment, which a browser never sends.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "ops.h"

const char cli_console_usage[] =
    "Usage:\n"
    "  rampart console link [--tenant T]                                  (admin or system)\n"
    "      print a one-time login link to the web console, usable once within 10 minutes.\n"
    "      Without --tenant it logs in as the calling token; with it, as a new admin token of\n"
    "      tenant T (made for the session, ending with it; `rampart token revoke` ends it).\n"
    "\n"
    "Options: --server, --token-file, --ca-file (or RAMPART_SERVER, RAMPART_TOKEN_FILE,\n"
    "RAMPART_CA_FILE), --output " CLI_OUTPUT_NAMES ".\n";

const struct option cli_console_options[] = {
    {"server",     required_argument, NULL, 's'},
    {"token-file", required_argument, NULL, 't'},
    {"ca-file",    required_argument, NULL, 'c'},
    {"tenant",     required_argument, NULL, 'T'},
    {"output",     required_argument, NULL, 'O'},
    {"help",       no_argument,       NULL, 'h'},
    {NULL,         0,                 NULL, 0  },
};

static int link_cmd(struct ops *o)
{
    json_t *req = json_object(), *body = NULL;
    long status = 0;
    int rc;

    if (o->tenant != NULL)
        json_object_set_new(req, "tenant", json_string(o->tenant));
    rc = ops_api(o, "POST", "/api/v1/console/links", req, &status, &body, NULL, NULL);
    json_decref(req);
    if (rc != CLI_OK)
        return rc;
    if (status < 200 || status > 299)
        return ops_refused(status, body);
    if (o->output == CLI_OUTPUT_TEXT)
        printf("%s\n", ops_str(body, "url"));
    else
        ops_print(o, body);
    json_decref(body);
    return CLI_OK;
}

int cmd_console(int argc, char **argv)
{
    struct ops o;
    int c, rc;

    memset(&o, 0, sizeof(o));
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cli_console_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    o.server = getenv("RAMPART_SERVER");
    o.token_file = getenv("RAMPART_TOKEN_FILE");
    o.ca_file = getenv("RAMPART_CA_FILE");
    optind = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "s:t:c:T:O:h", cli_console_options, NULL)) != -1) {
        switch (c) {
        case 's': o.server = optarg; break;
        case 't': o.token_file = optarg; break;
        case 'c': o.ca_file = optarg; break;
        case 'T': o.tenant = optarg; break;
        case 'O':
            if (!cli_parse_output(optarg, &o.output))
                return cli_usage(NULL, "--output must be " CLI_OUTPUT_NAMES);
            break;
        case 'h': fputs(cli_console_usage, stdout); return CLI_OK;
        default: return cli_usage("console ", "bad option");
        }
    }
    if (strcmp(argv[1], "link") != 0)
        return cli_usage("console ", "unknown console command '%s'", argv[1]);
    if (argc - 1 - optind != 0)
        return cli_usage("console ", "console link takes no arguments");
    rc = ops_token_load(&o);
    if (rc == CLI_OK)
        rc = link_cmd(&o);
    memset(o.token, 0, sizeof(o.token));
    return rc;
}
