/*
 * What the commands of the `rampart` CLI share: exit codes, usage errors, option helpers.
 * The CLI uses only the public API of the core and of the host library.
 */
#ifndef RAMPART_CLI_H
#define RAMPART_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "rampart/key.h"

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

/* Output format for commands that print data (--output): text is each command's own; the
 * others are cli_output_print's (output.c). */
typedef enum { CLI_OUTPUT_TEXT, CLI_OUTPUT_JSON, CLI_OUTPUT_TABLE, CLI_OUTPUT_YAML } cli_output_t;
#define CLI_OUTPUT_NAMES "text|json|table|yaml"
bool cli_parse_output(const char *s, cli_output_t *out);
/* Print value as JSON (indented; also for TEXT, a command with no text form of its own), as an
 * aligned table (a list of objects: a column per key; an object: a row per key) or as YAML. */
int cli_output_print(cli_output_t format, json_t *value);

/* Text that came from devices and apps is printed with each control character shown as '?' (an
 * escape sequence would act on the operator's terminal, a newline forge a line): whether s has
 * none, and s with them replaced in place. */
bool cli_text_clean(const char *s);
void cli_text_sanitize(char *s);

/* A progress bar on stderr for an upload or a download, drawn only when stderr is a terminal and
 * the output is text (never beside JSON or YAML). */
typedef struct {
    const char *name;
    uint64_t total; /* bytes; 0: not known (yet) */
    uint64_t base;  /* what cli_progress_http adds to the transfer's own count (earlier chunks) */
    bool shown, finished, drawn_once;
    int last_percent;
    double last_drawn;
    uint64_t drawn_done; /* what the screen shows */
} cli_progress_t;
void cli_progress_start(cli_progress_t *p, const char *name, uint64_t total, cli_output_t format);
void cli_progress_update(cli_progress_t *p, uint64_t done);
/* The last state, and the line ended. */
void cli_progress_end(cli_progress_t *p, uint64_t done);
/* For rp_http_opts_t's progress (arg: the cli_progress_t). */
void cli_progress_http(void *arg, uint64_t done, uint64_t total);

/* Log why the key at path could not be used, with a hint for the usual mistakes. */
void cli_key_error(const char *path, int err);
/* Every command's key loader: rp_key_load_why, its reason logged; a private key must be the
 * user's own and unreadable to others (rp_file_check_private), else RP_ERR_DENIED (logged). */
rp_err_t cli_key_load(const char *path, EVP_PKEY **key, bool *is_private) RP_MUST_CHECK;

/*
 * The command table (commands.c): one row per line of `rampart --help`. Dispatch, help, the
 * completion scripts and the man page come from it.
 */
typedef struct {
    const char *group;                 /* the command word: "device" */
    const char *verbs;                 /* its subcommands on this row, space-separated */
    const struct option *options;      /* the getopt table of the parser they go to: their flags */
    const char *help;                  /* the word's own --help */
    int (*run)(int argc, char **argv); /* argv[0] is the command word */
    const char *synopsis, *summary;    /* its line in `rampart --help` */
} cli_command_t;
extern const cli_command_t cli_commands[];
extern const size_t cli_commands_count;
extern const struct option cli_main_options[];
/* rampart --help */
void cli_print_usage(FILE *f);
/* Run the command argv[0] (argv[1] its subcommand) names. */
int cli_dispatch(int argc, char **argv);

/* Each parser's getopt table and each command word's help (the cmd_*.c files). */
extern const struct option cli_key_generate_options[], cli_key_public_options[],
    cli_image_sign_options[], cli_image_verify_options[], cli_image_show_options[],
    cli_app_check_options[], cli_ops_options[], cli_threat_options[], cli_console_options[];
extern const char cli_key_usage[], cli_image_usage[], cli_app_usage[], cli_ops_usage[],
    cli_threat_usage[], cli_console_usage[];

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
