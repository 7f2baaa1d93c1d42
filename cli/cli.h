/*
 * What the commands of the `rampart` CLI share: exit codes, usage errors, option helpers.
 * The CLI uses only the public API of the core and of the host library.
 */
#ifndef RAMPART_CLI_H
#define RAMPART_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Exit codes: a contract with scripts. */
enum {
    CLI_OK = 0,    /* done; for verify: the image is valid */
    CLI_FAIL = 1,  /* refused or failed, with the reason on stderr */
    CLI_USAGE = 2, /* the command line is wrong */
};

/* Print "rampart: <message>" and a hint to stderr; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse an unsigned number (decimal or 0x hex) no larger than max. */
bool cli_parse_u32(const char *s, uint32_t max, uint32_t *out);

/* Output format for commands that print data. */
typedef enum { CLI_OUTPUT_TEXT, CLI_OUTPUT_JSON } cli_output_t;
bool cli_parse_output(const char *s, cli_output_t *out);

/* Log why the key at path could not be used, with a hint for the usual mistakes. */
void cli_key_error(const char *path, int err);

int cmd_key(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_app(int argc, char **argv);
/* tenant, token, device, ca: the service's operator API. argv[0] is the group, argv[1] the verb. */
int cmd_ops(int argc, char **argv);
/* alert, threat, quarantine, webhook, device release: threat detection (cmd_threat.c). */
int cmd_threat(int argc, char **argv);
/* console link: a one-time login link to the web console (cmd_console.c). */
int cmd_console(int argc, char **argv);

#endif /* RAMPART_CLI_H */
