/*
 * `rampart`: the operator's command-line tool. This file parses the options before the command
 * word and owns the shared helpers; commands.c is the command table and dispatches; each group
 * lives in its own cmd_*.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rampart/crypto.h"
#include "rampart/file.h"
#include "rampart/log.h"

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

rp_err_t cli_key_load(const char *path, EVP_PKEY **key, bool *is_private)
{
    char why[400];
    rp_err_t err = rp_key_load_why(path, key, is_private, why, sizeof(why));

    if (err != RP_OK) {
        if (why[0] != '\0')
            rp_log_error("%s: %s (%s)", path, rp_strerror(err), why);
        else
            cli_key_error(path, err);
        return err;
    }
    /* As ssh does with its keys: a private key others can read, or change, is refused (logged,
     * with the chmod that fixes it). */
    if (*is_private && rp_file_check_private(path, true) != RP_OK) {
        EVP_PKEY_free(*key);
        *key = NULL;
        return RP_ERR_DENIED;
    }
    return RP_OK;
}

int main(int argc, char **argv)
{
    int c;

    rp_log_init("rampart", RP_LOG_INFO);
    /* '+': stop at the first command word; the command parses the rest. */
    while ((c = getopt_long(argc, argv, "+hVv", cli_main_options, NULL)) != -1) {
        switch (c) {
        case 'h': cli_print_usage(stdout); return CLI_OK;
        case 'V':
            printf("rampart %s\ncrypto: %s\n", RP_VERSION, rp_crypto_backend());
            return CLI_OK;
        case 'v': rp_log_set_level(RP_LOG_DEBUG); break;
        default: return cli_usage(NULL, "unknown option");
        }
    }
    if (optind >= argc) {
        cli_print_usage(stderr);
        return CLI_USAGE;
    }
    argc -= optind;
    argv += optind;
    optind = 0; /* the command's getopt starts afresh */
    return cli_dispatch(argc, argv);
}
