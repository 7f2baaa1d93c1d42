/*
 * The `rampart` command table: every command word, its subcommands, the getopt table its parser
 * uses and its line of help. Dispatch, `rampart --help`, `rampart help`, the shell completion
 * scripts (`rampart completion bash|zsh`) and, through `--help`, the man page all come from it, so
 * none of them can name a command or a flag the others do not.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const struct option cli_main_options[] = {
    {"help",    no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"verbose", no_argument, NULL, 'v'},
    {NULL,      0,           NULL, 0  },
};

static const struct option help_options[] = {
    {"help", no_argument, NULL, 'h'},
    {NULL,   0,           NULL, 0  },
};

static const char completion_usage[] =
    "Usage:\n"
    "  rampart completion bash     a bash completion script, e.g. in ~/.bashrc:\n"
    "                                source <(rampart completion bash)\n"
    "                              or installed as /usr/share/bash-completion/completions/rampart\n"
    "  rampart completion zsh      a zsh completion script: saved as _rampart in a directory of\n"
    "                              $fpath, or in ~/.zshrc after compinit:\n"
    "                                source <(rampart completion zsh)\n"
    "  Both complete the commands, their subcommands and their options.\n";

static const char help_usage[] =
    "Usage:\n"
    "  rampart help                the list of commands (rampart --help)\n"
    "  rampart help COMMAND        that command's own help (rampart COMMAND --help)\n"
    "  rampart help --all          every command's own help, one after the other\n"
    "  rampart help --topics       a line per help text: the commands it covers (for scripts)\n";

static int cmd_completion(int argc, char **argv);
static int cmd_help(int argc, char **argv);

/*
 * One row per line of `rampart --help`. A command word may have several rows (its subcommands
 * parsed by different functions); the first row of a word is the one its unknown subcommands and
 * its --help go to.
 */
const cli_command_t cli_commands[] = {
    {"key",          "generate",                                              cli_key_generate_options, cli_key_usage,    cmd_key,
     "key generate --type ecdsa-p256|ed25519 --out KEY.pem",                                                                                                                                   "make a signing key"                     },
    {"key",          "public",                                                cli_key_public_options,   cli_key_usage,    cmd_key,
     "key public --key KEY.pem --out PUB.pem",                                                                                                                                                 "export its public key"                  },
    {"image",        "sign",                                                  cli_image_sign_options,   cli_image_usage,  cmd_image,
     "image sign --key KEY.pem --version X.Y.Z+B PAYLOAD OUT",                                                                                                                                 "sign a payload into an image"           },
    {"image",        "sign",                                                  cli_image_sign_options,   cli_image_usage,  cmd_image,
     "image sign --type app ... DIR OUT",                                                                                                                                                      "pack an app's tree and sign it"         },
    {"image",        "verify",                                                cli_image_verify_options, cli_image_usage,  cmd_image,
     "image verify --key PUB.pem IMAGE",                                                                                                                                                       "check an image's signature"             },
    {"image",        "show",                                                  cli_image_show_options,   cli_image_usage,  cmd_image,
     "image show IMAGE [--output FORMAT]",                                                                                                                                                     "print what an image holds"              },
    {"app",          "check",                                                 cli_app_check_options,    cli_app_usage,    cmd_app,
     "app check DIR|IMAGE [--output FORMAT]",                                                                                                                                                  "check an app's manifest offline"        },
    {"tenant",       "create list policy",                                    cli_ops_options,          cli_ops_usage,    cmd_ops,
     "tenant create|list|policy",                                                                                                                                                              "tenants of the service"                 },
    {"token",        "create list revoke",                                    cli_ops_options,          cli_ops_usage,    cmd_ops,
     "token create|list|revoke",                                                                                                                                                               "API tokens"                             },
    {"device",       "claim list show attestations block unblock capability", cli_ops_options,
     cli_ops_usage,                                                                                                       cmd_ops,        "device claim|list|show|attestations|block|unblock",
     "devices of a tenant"                                                                                                                                                                                                              },
    {"ca",           "download crl",                                          cli_ops_options,          cli_ops_usage,    cmd_ops,
     "ca download|crl --tenant T --out FILE",                                                                                                                                                  "the tenant's CAs and their CRLs"        },
    {"image-key",    "add list",                                              cli_ops_options,          cli_ops_usage,    cmd_ops,        "image-key add|list",
     "the keys a tenant signs images with"                                                                                                                                                                                              },
    {"image",        "upload list",                                           cli_ops_options,          cli_ops_usage,    cmd_ops,        "image upload|list",
     "the tenant's signed images on the service"                                                                                                                                                                                        },
    {"product",      "create list",                                           cli_ops_options,          cli_ops_usage,    cmd_ops,        "product create|list",
     "what a tenant makes"                                                                                                                                                                                                              },
    {"device-group", "create list show set",                                  cli_ops_options,          cli_ops_usage,    cmd_ops,
     "device-group create|list|show|set",                                                                                                                                                      "a product's groups of devices"          },
    {"device",       "assign",                                                cli_ops_options,          cli_ops_usage,    cmd_ops,        "device assign",
     "put devices in a group"                                                                                                                                                                                                           },
    {"deployment",   "create list show pause resume stop",                    cli_ops_options,          cli_ops_usage,    cmd_ops,
     "deployment create|list|show|pause|resume|stop",                                                                                                                                                        "which images a group runs"              },
    {"update-root",  "sign rotate-online-key",                                cli_ops_options,          cli_ops_usage,    cmd_ops,
     "update-root sign --tenant T --root-key ROOT.pem",                                                                                                                                        "the signed root of update trust"        },
    {"failure",      "list show",                                             cli_ops_options,          cli_ops_usage,    cmd_ops,        "failure list|show",
     "crash buckets of devices' failure reports"                                                                                                                                                                                        },
    {"event",        "list",                                                  cli_ops_options,          cli_ops_usage,    cmd_ops,        "event list",
     "devices' stored failure reports"                                                                                                                                                                                                  },
    {"symbols",      "upload",                                                cli_ops_options,          cli_ops_usage,    cmd_ops,        "symbols upload",
     "a debug file, to name crashes' frames"                                                                                                                                                                                            },
    {"alert",        "list",                                                  cli_threat_options,       cli_threat_usage, cmd_threat,     "alert list",
     "what spiked: event kinds or crash buckets"                                                                                                                                                                                        },
    {"threat",       "show set",                                              cli_threat_options,       cli_threat_usage, cmd_threat,     "threat show|set",
     "the spike rule"                                                                                                                                                                                                                   },
    {"quarantine",   "policy actions",                                        cli_threat_options,       cli_threat_usage, cmd_threat,
     "quarantine policy|actions",                                                                                                                                                              "automatic quarantine, and its record"   },
    {"webhook",      "show set delete",                                       cli_threat_options,       cli_threat_usage, cmd_threat,
     "webhook show|set|delete",                                                                                                                                                                "where alerts and quarantines are POSTed"},
    {"device",       "release",                                               cli_threat_options,       cli_threat_usage, cmd_threat,     "device release",
     "bring a quarantined device back"                                                                                                                                                                                                  },
    {"console",      "link",                                                  cli_console_options,      cli_console_usage, cmd_console,    "console link [--tenant T]",
     "a one-time web console login link"                                                                                                                                                                                                 },
    {"completion",   "bash zsh",                                              help_options,             completion_usage, cmd_completion,
     "completion bash|zsh",                                                                                                                                                                    "a shell completion script"              },
    {"help",         "",                                                      help_options,             help_usage,       cmd_help,       "help [COMMAND|--all]",
     "this help, or a command's own"                                                                                                                                                                                                    },
};
const size_t cli_commands_count = sizeof(cli_commands) / sizeof(cli_commands[0]);

/* Whether word is one of the space-separated words of list. */
static bool in_list(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; n > 0 && *p != '\0';) {
        size_t len = strcspn(p, " ");
        if (len == n && strncmp(p, word, n) == 0)
            return true;
        p += len;
        p += *p == ' ';
    }
    return false;
}

/* The row for argv[0] (and argv[1] when it is one of its subcommands), or NULL. */
static const cli_command_t *find(int argc, char **argv)
{
    const cli_command_t *first = NULL;

    for (size_t i = 0; i < cli_commands_count; i++) {
        const cli_command_t *c = &cli_commands[i];
        if (strcmp(c->group, argv[0]) != 0)
            continue;
        if (argc > 1 && in_list(c->verbs, argv[1]))
            return c;
        if (first == NULL)
            first = c;
    }
    return first;
}

void cli_print_usage(FILE *f)
{
    fputs("Usage: rampart [--verbose] COMMAND [ARGS...]\n"
          "\n"
          "Rampart: signed images, attested devices and renewable security for connected "
          "devices.\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < cli_commands_count; i++) {
        const cli_command_t *c = &cli_commands[i];
        if (strlen(c->synopsis) > 54)
            fprintf(f, "  %s\n  %-54s  %s\n", c->synopsis, "", c->summary);
        else
            fprintf(f, "  %-54s  %s\n", c->synopsis, c->summary);
    }
    fputs("  (the service commands take --server, --token-file, --ca-file; see `rampart device "
          "--help`;\n"
          "  those that print data take --output " CLI_OUTPUT_NAMES ")\n"
          "\n"
          "Options:\n"
          "  -h, --help       this help; `rampart COMMAND --help` for a command's own\n"
          "  -V, --version    print the version and the crypto backend\n"
          "  -v, --verbose    more detail on stderr\n"
          "\n"
          "Exit status: 0 success, 1 failure or refusal (reason on stderr), 2 usage error.\n",
          f);
}

int cli_dispatch(int argc, char **argv)
{
    const cli_command_t *c = find(argc, argv);

    if (c == NULL)
        return cli_usage(NULL, "unknown command '%s'", argv[0]);
    return c->run(argc, argv);
}

/* ---- help ---- */

/* The command words whose rows share help (the first row of each text), space-separated. */
static void words_with_help(const char *help, char *out, size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < cli_commands_count; i++) {
        bool seen = false;
        if (cli_commands[i].help != help)
            continue;
        for (size_t j = 0; j < i; j++)
            seen = seen || strcmp(cli_commands[j].group, cli_commands[i].group) == 0;
        if (!seen && n < cap)
            n +=
                (size_t)snprintf(out + n, cap - n, "%s%s", n > 0 ? " " : "", cli_commands[i].group);
    }
}

/* Whether row i is the first with its help text. */
static bool first_with_help(size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (cli_commands[j].help == cli_commands[i].help)
            return false;
    return true;
}

static int cmd_help(int argc, char **argv)
{
    char words[512];

    if (argc < 2) {
        cli_print_usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(help_usage, stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--all") == 0 || strcmp(argv[1], "--topics") == 0) {
        /* --topics: one line per help text, the command words it covers (scripts/man-pages) */
        for (size_t i = 0; i < cli_commands_count; i++) {
            if (!first_with_help(i))
                continue;
            words_with_help(cli_commands[i].help, words, sizeof(words));
            if (strcmp(argv[1], "--topics") == 0)
                printf("%s\n", words);
            else
                printf("%s== rampart %s ==\n%s", i > 0 ? "\n" : "", words, cli_commands[i].help);
        }
        return CLI_OK;
    }
    for (size_t i = 0; i < cli_commands_count; i++)
        if (strcmp(cli_commands[i].group, argv[1]) == 0) {
            fputs(cli_commands[i].help, stdout);
            return CLI_OK;
        }
    return cli_usage(NULL, "no command '%s'", argv[1]);
}

/* ---- completion ---- */

/* Each distinct command word once, in table order, as a space-separated list. */
static void command_words(char *out, size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < cli_commands_count; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || strcmp(cli_commands[j].group, cli_commands[i].group) == 0;
        if (!seen && n < cap)
            n +=
                (size_t)snprintf(out + n, cap - n, "%s%s", n > 0 ? " " : "", cli_commands[i].group);
    }
}

/* The subcommands of a command word, over all its rows. */
static void verbs_of(const char *group, char *out, size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < cli_commands_count; i++) {
        const char *p = cli_commands[i].verbs;
        if (strcmp(cli_commands[i].group, group) != 0)
            continue;
        while (*p != '\0') {
            size_t len = strcspn(p, " ");
            char word[64];
            snprintf(word, sizeof(word), "%.*s", (int)len, p);
            if (!in_list(out, word) && n < cap)
                n += (size_t)snprintf(out + n, cap - n, "%s%s", n > 0 ? " " : "", word);
            p += len;
            p += *p == ' ';
        }
    }
}

/* The flags of "group verb" (all its rows' options), or those that take a value. */
static void flags_of(const char *group, const char *verb, bool with_value_only, char *out,
                     size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < cli_commands_count; i++) {
        const cli_command_t *c = &cli_commands[i];
        if (strcmp(c->group, group) != 0 || !in_list(c->verbs, verb))
            continue;
        for (const struct option *o = c->options; o->name != NULL; o++) {
            char flag[64];
            if (with_value_only && o->has_arg == no_argument)
                continue;
            snprintf(flag, sizeof(flag), "--%s", o->name);
            if (!in_list(out, flag) && n < cap)
                n += (size_t)snprintf(out + n, cap - n, "%s%s", n > 0 ? " " : "", flag);
        }
    }
}

static void main_flags(char *out, size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    for (const struct option *o = cli_main_options; o->name != NULL && n < cap; o++)
        n += (size_t)snprintf(out + n, cap - n, "%s--%s", n > 0 ? " " : "", o->name);
}

/* Every (command word, subcommand) pair once, in table order: calls emit for each. */
static void each_pair(void (*emit)(const char *group, const char *verb))
{
    char groups[1024], verbs[1024], verb[64];

    command_words(groups, sizeof(groups));
    for (const char *g = groups; *g != '\0';) {
        size_t glen = strcspn(g, " ");
        char group[64];
        snprintf(group, sizeof(group), "%.*s", (int)glen, g);
        verbs_of(group, verbs, sizeof(verbs));
        for (const char *v = verbs; *v != '\0';) {
            size_t vlen = strcspn(v, " ");
            snprintf(verb, sizeof(verb), "%.*s", (int)vlen, v);
            emit(group, verb);
            v += vlen;
            v += *v == ' ';
        }
        g += glen;
        g += *g == ' ';
    }
}

static void each_group(void (*emit)(const char *group, const char *verbs))
{
    char groups[1024], verbs[1024];

    command_words(groups, sizeof(groups));
    for (const char *g = groups; *g != '\0';) {
        size_t glen = strcspn(g, " ");
        char group[64];
        snprintf(group, sizeof(group), "%.*s", (int)glen, g);
        verbs_of(group, verbs, sizeof(verbs));
        emit(group, verbs);
        g += glen;
        g += *g == ' ';
    }
}

static void bash_verbs(const char *group, const char *verbs)
{
    printf("        %s) words=\"%s --help\" ;;\n", group, verbs);
}

static void bash_flags(const char *group, const char *verb)
{
    char all[2048], valued[2048];

    flags_of(group, verb, false, all, sizeof(all));
    flags_of(group, verb, true, valued, sizeof(valued));
    printf("        \"%s %s\") flags=\"%s\"; valued=\"%s\" ;;\n", group, verb, all, valued);
}

static void print_bash(void)
{
    char groups[1024], top[256];

    command_words(groups, sizeof(groups));
    main_flags(top, sizeof(top));
    printf(
        "# bash completion for rampart: generated by `rampart completion bash` from its command\n"
        "# table. Load it with: source <(rampart completion bash)\n"
        "_rampart() {\n"
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
        "    local group= verb= words= flags= valued= i w\n"
        "    COMPREPLY=()\n"
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        "        w=${COMP_WORDS[i]}\n"
        "        case $w in -*) continue ;; esac\n"
        "        if [ -z \"$group\" ]; then group=$w; else verb=$w; break; fi\n"
        "    done\n"
        "    if [ \"$prev\" = --output ]; then\n"
        "        COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return 0\n"
        "    fi\n"
        "    if [ -z \"$group\" ]; then\n"
        "        COMPREPLY=($(compgen -W \"%s %s\" -- \"$cur\")); return 0\n"
        "    fi\n"
        "    if [ -z \"$verb\" ]; then\n"
        "        case $group in\n",
        "text json table yaml", groups, top);
    each_group(bash_verbs);
    printf("        esac\n"
           "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\")); return 0\n"
           "    fi\n"
           "    case \"$group $verb\" in\n");
    each_pair(bash_flags);
    printf("    esac\n"
           "    case \" $valued \" in\n"
           "        *\" $prev \"*) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "
           "\"$cur\")); return 0 ;;\n"
           "    esac\n"
           "    if [[ $cur == -* ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$flags --help\" -- \"$cur\"))\n"
           "    else\n"
           "        compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "    fi\n"
           "    return 0\n"
           "}\n"
           "complete -F _rampart rampart\n");
}

static void zsh_verbs(const char *group, const char *verbs)
{
    printf("        %s) compadd -- %s --help ;;\n", group, verbs);
}

static void zsh_flags(const char *group, const char *verb)
{
    char all[2048], valued[2048];

    flags_of(group, verb, false, all, sizeof(all));
    flags_of(group, verb, true, valued, sizeof(valued));
    printf("      \"%s %s\") flags=(%s); valued=(%s) ;;\n", group, verb, all, valued);
}

static void print_zsh(void)
{
    char groups[1024], top[256];

    command_words(groups, sizeof(groups));
    main_flags(top, sizeof(top));
    printf("#compdef rampart\n"
           "# zsh completion for rampart: generated by `rampart completion zsh` from its command\n"
           "# table. Save it as _rampart in a directory of $fpath, or after compinit:\n"
           "# source <(rampart completion zsh)\n"
           "_rampart() {\n"
           "  local group= verb= i w\n"
           "  local -a flags valued\n"
           "  for (( i = 2; i < CURRENT; i++ )); do\n"
           "    w=${words[i]}\n"
           "    [[ $w == -* ]] && continue\n"
           "    if [[ -z $group ]]; then group=$w; else verb=$w; break; fi\n"
           "  done\n"
           "  if [[ ${words[CURRENT-1]} == --output ]]; then\n"
           "    compadd -- %s; return\n"
           "  fi\n"
           "  if [[ -z $group ]]; then\n"
           "    compadd -- %s %s; return\n"
           "  fi\n"
           "  if [[ -z $verb ]]; then\n"
           "    case $group in\n",
           "text json table yaml", groups, top);
    each_group(zsh_verbs);
    printf("    esac\n"
           "    return\n"
           "  fi\n"
           "  case \"$group $verb\" in\n");
    each_pair(zsh_flags);
    printf("  esac\n"
           "  if (( ${valued[(Ie)${words[CURRENT-1]}]} )); then\n"
           "    _files; return\n"
           "  fi\n"
           "  if [[ ${words[CURRENT]} == -* ]]; then\n"
           "    compadd -- $flags --help\n"
           "  else\n"
           "    _files\n"
           "  fi\n"
           "}\n"
           "if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then\n"
           "  _rampart \"$@\"\n"
           "else\n"
           "  compdef _rampart rampart\n"
           "fi\n");
}

static int cmd_completion(int argc, char **argv)
{
    if (argc < 2) {
        fputs(completion_usage, stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(completion_usage, stdout);
        return CLI_OK;
    }
    if (argc > 2)
        return cli_usage("completion ", "completion takes one shell: bash or zsh");
    if (strcmp(argv[1], "bash") == 0)
        print_bash();
    else if (strcmp(argv[1], "zsh") == 0)
        print_zsh();
    else
        return cli_usage("completion ", "no completion for '%s': bash or zsh", argv[1]);
    return CLI_OK;
}
