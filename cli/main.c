/*
 * `rampart`: the operator's command-line tool. This file dispatches to the command groups and
 * owns the shared helpers; each group lives in its own cmd_*.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rampart/crypto.h"
#include "rampart/log.h"

static const char usage_text[] =
    "Usage: rampart [--verbose] COMMAND [ARGS...]\n"
    "\n"
    "Rampart: signed images, attested devices and renewable security for connected devices.\n"
    "\n"
    "Commands:\n"
    "  key generate --type ecdsa-p256|ed25519 --out KEY.pem   make a signing key\n"
    "  key public --key KEY.pem --out PUB.pem                 export its public key\n"
    "  image sign --key KEY.pem --version X.Y.Z+B PAYLOAD OUT sign a payload into an image\n"
    "  image verify --key PUB.pem IMAGE                       check an image's signature\n"
    "  image show IMAGE [--output json]                       print what an image holds\n"
    "  image sign --type app ... DIR OUT                      pack an app's tree and sign it\n"
    "  app check DIR|IMAGE [--output json]                    check an app's manifest offline\n"
    "  tenant create NAME | tenant list | tenant policy       tenants of the service\n"
    "  token create|list|revoke                               API tokens\n"
    "  device claim|list|show|attestations|block|unblock      devices of a tenant\n"
    "  ca download|crl --tenant T --out FILE                  the tenant CA and its CRL\n"
    "  image-key add|list, image upload|list                  the tenant's signed images\n"
    "  product, device-group, device assign, deployment       who runs which images\n"
    "  update-root sign --tenant T --root-key ROOT.pem        the signed root of update trust\n"
    "  failure list|show, event list, symbols upload          devices' failure reports\n"
    "  alert list, threat, quarantine, webhook, device release  threat detection and quarantine\n"
    "  console link [--tenant T]                             a one-time web console login link\n"
    "  (the service commands take --server, --token-file, --ca-file; see `rampart device "
    "--help`)\n"
    "\n"
    "Options:\n"
    "  -h, --help       this help; `rampart COMMAND --help` for a command's own\n"
    "  -V, --version    print the version and the crypto backend\n"
    "  -v, --verbose    more detail on stderr\n"
    "\n"
    "Exit status: 0 success, 1 failure or refusal (reason on stderr), 2 usage error.\n";

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fputs("rampart: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'rampart %s--help'.\n", cmd != NULL ? cmd : "");
    return CLI_USAGE;
}

bool cli_parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    unsigned long long v;
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    /* Decimal, or hexadecimal with 0x: never octal, so that 0100 means one hundred. */
    errno = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        v = strtoull(s + 2, &end, 16);
    else
        v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v > max || (end[-1] == 'x' || end[-1] == 'X'))
        return false;
    *out = (uint32_t)v;
    return true;
}

void cli_key_error(const char *path, int err)
{
    const char *hint = "";

    if (err == RP_ERR_UNSUPPORTED)
        hint = " (keys must be ecdsa-p256 or ed25519)";
    else if (err == RP_ERR_BAD_KEY)
        hint = " (not a PEM private or public key)";
    rp_log_error("%s: %s%s", path, rp_strerror((rp_err_t)err), hint);
}

bool cli_parse_output(const char *s, cli_output_t *out)
{
    if (strcmp(s, "text") == 0)
        *out = CLI_OUTPUT_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = CLI_OUTPUT_JSON;
    else
        return false;
    return true;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help",    no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"verbose", no_argument, NULL, 'v'},
        {NULL,      0,           NULL, 0  },
    };
    int c;

    rp_log_init("rampart", RP_LOG_INFO);
    /* '+': stop at the first command word; the command parses the rest. */
    while ((c = getopt_long(argc, argv, "+hVv", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage_text, stdout); return CLI_OK;
        case 'V':
            printf("rampart %s\ncrypto: %s\n", RP_VERSION, rp_crypto_backend());
            return CLI_OK;
        case 'v': rp_log_set_level(RP_LOG_DEBUG); break;
        default: return cli_usage(NULL, "unknown option");
        }
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return CLI_USAGE;
    }
    argc -= optind;
    argv += optind;
    optind = 0; /* the command's getopt starts afresh */
    if (strcmp(argv[0], "key") == 0)
        return cmd_key(argc, argv);
    if (strcmp(argv[0], "image") == 0)
        return cmd_image(argc, argv);
    if (strcmp(argv[0], "app") == 0)
        return cmd_app(argc, argv);
    if (strcmp(argv[0], "alert") == 0 || strcmp(argv[0], "threat") == 0 ||
        strcmp(argv[0], "quarantine") == 0 || strcmp(argv[0], "webhook") == 0 ||
        (strcmp(argv[0], "device") == 0 && argc > 1 && strcmp(argv[1], "release") == 0))
        return cmd_threat(argc, argv);
    if (strcmp(argv[0], "console") == 0)
        return cmd_console(argc, argv);
    if (strcmp(argv[0], "tenant") == 0 || strcmp(argv[0], "token") == 0 ||
        strcmp(argv[0], "device") == 0 || strcmp(argv[0], "ca") == 0 ||
        strcmp(argv[0], "image-key") == 0 || strcmp(argv[0], "product") == 0 ||
        strcmp(argv[0], "device-group") == 0 || strcmp(argv[0], "deployment") == 0 ||
        strcmp(argv[0], "update-root") == 0 || strcmp(argv[0], "failure") == 0 ||
        strcmp(argv[0], "event") == 0 || strcmp(argv[0], "symbols") == 0)
        return cmd_ops(argc, argv);
    if (strcmp(argv[0], "help") == 0) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    return cli_usage(NULL, "unknown command '%s'", argv[0]);
}
