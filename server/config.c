/*
 * rampart-server's settings (config.h): the option table, the one check of each value, and the
 * config file, read with libinih.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "rampart/file.h"
#include "store/blob.h"

enum { SETTING = 1, RELOAD = 2 };

/* The one table: a row per option, in rp_config_id_t's order. short_opt 0: a long option only
 * (getopt_long returns 256 + its id). */
static const struct row {
    const char *name;
    int has_arg;
    char short_opt;
    unsigned flags;
} table[RP_CFG_COUNT] = {
    [RP_CFG_DATA_DIR] = {"data-dir",                    required_argument, 'd', SETTING         },
    [RP_CFG_LISTEN] = {"listen",                      required_argument, 'l', SETTING         },
    [RP_CFG_HOSTNAME] = {"hostname",                    required_argument, 'n', SETTING         },
    [RP_CFG_THREADS] = {"threads",                     required_argument, 't', SETTING         },
    [RP_CFG_PORT_FILE] = {"port-file",                   required_argument, 'p', SETTING         },
    [RP_CFG_MASTER_KEY] = {"master-key",                  required_argument, 'm', SETTING         },
    [RP_CFG_NONCE_LIFETIME] = {"nonce-lifetime",              required_argument, 'N', SETTING | RELOAD},
    [RP_CFG_RATE_LIMIT] = {"rate-limit",                  required_argument, 'R', SETTING | RELOAD},
    [RP_CFG_UNCLAIMED_RATE] = {"unclaimed-rate",              required_argument, 'U', SETTING | RELOAD},
    [RP_CFG_MAX_CONNECTIONS] = {"max-connections",             required_argument, 'C', SETTING         },
    [RP_CFG_PER_ADDRESS] = {"max-connections-per-address", required_argument, 'A', SETTING         },
    [RP_CFG_REQUEST_DEADLINE] = {"request-deadline",            required_argument, 'D', SETTING | RELOAD},
    [RP_CFG_IDLE_TIMEOUT] = {"idle-timeout",                required_argument, 0,   SETTING | RELOAD},
    [RP_CFG_VERBOSE] = {"verbose",                     no_argument,       'v', SETTING | RELOAD},
    [RP_CFG_DEBUGINFOD_URL] = {"debuginfod-url",              required_argument, 0,   SETTING         },
    [RP_CFG_CONSOLE_DIR] = {"console-dir",                 required_argument, 0,   SETTING         },
    [RP_CFG_WEBHOOK_ALLOW_PRIVATE] = {"webhook-allow-private",       no_argument,       0,   SETTING | RELOAD},
    [RP_CFG_LOGIN_RATE] = {"login-rate",                  required_argument, 0,   SETTING | RELOAD},
    [RP_CFG_AUTH_FAIL_RATE] = {"auth-fail-rate",              required_argument, 0,   SETTING | RELOAD},
    [RP_CFG_DATABASE] = {"database",                    required_argument, 0,   SETTING         },
    [RP_CFG_DATABASE_WAIT] = {"database-wait",               required_argument, 0,   SETTING         },
    [RP_CFG_BLOBS] = {"blobs",                       required_argument, 0,   SETTING         },
    [RP_CFG_UPLOAD_MAX_OPEN] = {"upload-max-open",             required_argument, 0,   SETTING | RELOAD},
    [RP_CFG_UPLOAD_MAX_BYTES] = {"upload-max-bytes",            required_argument, 0,   SETTING | RELOAD},
    [RP_CFG_REENROLL_PER_HOUR] = {"reenroll-per-hour",           required_argument, 0,   SETTING | RELOAD},
    [RP_CFG_MAX_DEVICES_PER_TENANT] = {"max-devices-per-tenant",      required_argument, 0,
                         SETTING | RELOAD                                                       },
    [RP_CFG_CONFIG] = {"config",                      required_argument, 'c', 0               },
    [RP_CFG_ROTATE] = {"rotate-admin-token",          no_argument,       0,   0               },
    [RP_CFG_ROUTES] = {"routes",                      no_argument,       0,   0               },
    [RP_CFG_HELP] = {"help",                        no_argument,       'h', 0               },
    [RP_CFG_VERSION] = {"version",                     no_argument,       'V', 0               },
    [RP_CFG_FROM] = {"from",                        required_argument, 0,   0               },
    [RP_CFG_TO] = {"to",                          required_argument, 0,   0               },
    [RP_CFG_FORCE] = {"force",                       no_argument,       0,   0               },
};

void rp_config_defaults(rp_config_t *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8443");
    c->nonce_lifetime = 60;
    c->rate_limit = 50;
    c->unclaimed_rate = 20;
    c->login_rate = 0.1;
    c->auth_fail_rate = 1;
    c->max_connections = 10000;
    c->per_address = 64;
    c->request_deadline = 60;
    c->database_wait = 60;
    c->idle_timeout = 30;
    c->upload_max_open = 16;
    c->upload_max_bytes = 1024L * 1024 * 1024;
    c->reenroll_per_hour = 6;
    c->max_devices_per_tenant = 1000000;
}

void rp_config_getopt(struct option out[RP_CFG_COUNT + 1], char *shorts, size_t cap)
{
    size_t n = 0;

    for (int i = 0; i < RP_CFG_COUNT; i++) {
        out[i] = (struct option){table[i].name, table[i].has_arg, NULL,
                                 table[i].short_opt ? table[i].short_opt : 256 + i};
        if (table[i].short_opt && n + 3 < cap) {
            shorts[n++] = table[i].short_opt;
            if (table[i].has_arg == required_argument)
                shorts[n++] = ':';
        }
    }
    out[RP_CFG_COUNT] = (struct option){NULL, 0, NULL, 0};
    shorts[n] = '\0';
}

int rp_config_from_getopt(int val)
{
    if (val >= 256 && val < 256 + RP_CFG_COUNT)
        return val - 256;
    for (int i = 0; i < RP_CFG_COUNT; i++)
        if (table[i].short_opt != 0 && table[i].short_opt == val)
            return i;
    return -1;
}

const char *rp_config_name(rp_config_id_t id)
{
    return table[id].name;
}

bool rp_config_is_setting(rp_config_id_t id)
{
    return (table[id].flags & SETTING) != 0;
}

bool rp_config_reloadable(rp_config_id_t id)
{
    return (table[id].flags & RELOAD) != 0;
}

/* A whole decimal integer from lo to hi. */
static bool integer(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* A rate: requests a second, 0 to 1000000, fractions allowed. */
static bool rate(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || !isfinite(v) || v < 0 || v > 1000000)
        return false;
    *out = v;
    return true;
}

/* A flag's value in the file; on the command line its presence (NULL) is true. */
static bool boolean(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};

    if (s == NULL) {
        *out = true;
        return true;
    }
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

static bool text(char *dst, size_t cap, const char *s, char *why, size_t wcap)
{
    if (s[0] == '\0') {
        snprintf(why, wcap, "must not be empty");
        return false;
    }
    if (strlen(s) >= cap) {
        snprintf(why, wcap, "is too long (at most %zu bytes)", cap - 1);
        return false;
    }
    memcpy(dst, s, strlen(s) + 1);
    return true;
}

bool rp_config_set(rp_config_t *c, rp_config_id_t id, const char *value, char *why, size_t cap)
{
    long v;

    if (table[id].has_arg == required_argument && value == NULL) {
        snprintf(why, cap, "needs a value");
        return false;
    }
    switch (id) {
    case RP_CFG_DATA_DIR: return text(c->data_dir, sizeof(c->data_dir), value, why, cap);
    case RP_CFG_LISTEN: return text(c->listen, sizeof(c->listen), value, why, cap);
    case RP_CFG_HOSTNAME: return text(c->hostnames, sizeof(c->hostnames), value, why, cap);
    case RP_CFG_PORT_FILE: return text(c->port_file, sizeof(c->port_file), value, why, cap);
    case RP_CFG_MASTER_KEY: return text(c->master_key, sizeof(c->master_key), value, why, cap);
    case RP_CFG_DEBUGINFOD_URL:
        return text(c->debuginfod_url, sizeof(c->debuginfod_url), value, why, cap);
    case RP_CFG_CONSOLE_DIR: return text(c->console_dir, sizeof(c->console_dir), value, why, cap);
    case RP_CFG_DATABASE: return text(c->database, sizeof(c->database), value, why, cap);
    case RP_CFG_BLOBS: {
        rp_blobs_kind_t kind;
        if (!rp_blobs_kind_parse(value, &kind))
            break;
        c->blobs = (int)kind;
        return true;
    }
    case RP_CFG_THREADS:
        if (!integer(value, 1, 64, &c->threads))
            break;
        return true;
    case RP_CFG_NONCE_LIFETIME:
        if (!integer(value, 1, 3600, &v))
            break;
        c->nonce_lifetime = (int)v;
        return true;
    case RP_CFG_RATE_LIMIT:
        if (!rate(value, &c->rate_limit))
            break;
        return true;
    case RP_CFG_UNCLAIMED_RATE:
        if (!rate(value, &c->unclaimed_rate))
            break;
        return true;
    case RP_CFG_LOGIN_RATE:
        if (!rate(value, &c->login_rate))
            break;
        return true;
    case RP_CFG_AUTH_FAIL_RATE:
        if (!rate(value, &c->auth_fail_rate))
            break;
        return true;
    case RP_CFG_MAX_CONNECTIONS:
        if (!integer(value, 1, 1000000, &c->max_connections))
            break;
        return true;
    case RP_CFG_PER_ADDRESS:
        if (!integer(value, 0, 1000000, &c->per_address))
            break;
        return true;
    case RP_CFG_REQUEST_DEADLINE:
        if (!integer(value, 1, 86400, &c->request_deadline))
            break;
        return true;
    case RP_CFG_REENROLL_PER_HOUR:
        if (!integer(value, 0, 3600, &c->reenroll_per_hour))
            break;
        return true;
    case RP_CFG_DATABASE_WAIT:
        if (!integer(value, 0, 86400, &c->database_wait))
            break;
        return true;
    case RP_CFG_UPLOAD_MAX_OPEN:
        if (!integer(value, 1, 100000, &c->upload_max_open))
            break;
        return true;
    case RP_CFG_MAX_DEVICES_PER_TENANT:
        if (!integer(value, 0, 1000000000, &c->max_devices_per_tenant))
            break;
        return true;
    case RP_CFG_UPLOAD_MAX_BYTES:
        if (!integer(value, 1024L * 1024, 1024L * 1024 * 1024 * 1024, &c->upload_max_bytes))
            break;
        return true;
    case RP_CFG_IDLE_TIMEOUT:
        if (!integer(value, 1, 3600, &c->idle_timeout))
            break;
        return true;
    case RP_CFG_VERBOSE:
        if (!boolean(value, &c->verbose))
            break;
        return true;
    case RP_CFG_WEBHOOK_ALLOW_PRIVATE:
        if (!boolean(value, &c->webhook_allow_private))
            break;
        return true;
    default: snprintf(why, cap, "is an action, not a setting"); return false;
    }
    /* The one statement of each setting's range (and --help's). */
    switch (id) {
    case RP_CFG_THREADS: snprintf(why, cap, "must be 1 to 64"); break;
    case RP_CFG_NONCE_LIFETIME:
    case RP_CFG_IDLE_TIMEOUT: snprintf(why, cap, "must be 1 to 3600 seconds"); break;
    case RP_CFG_RATE_LIMIT:
    case RP_CFG_UNCLAIMED_RATE:
    case RP_CFG_LOGIN_RATE:
    case RP_CFG_AUTH_FAIL_RATE:
        snprintf(why, cap, "must be 0 to 1000000 (fractions allowed)");
        break;
    case RP_CFG_MAX_CONNECTIONS: snprintf(why, cap, "must be 1 to 1000000"); break;
    case RP_CFG_PER_ADDRESS: snprintf(why, cap, "must be 0 (no cap) to 1000000"); break;
    case RP_CFG_REQUEST_DEADLINE: snprintf(why, cap, "must be 1 to 86400 seconds"); break;
    case RP_CFG_REENROLL_PER_HOUR: snprintf(why, cap, "must be 0 (no limit) to 3600"); break;
    case RP_CFG_DATABASE_WAIT: snprintf(why, cap, "must be 0 (no wait) to 86400 seconds"); break;
    case RP_CFG_BLOBS: snprintf(why, cap, "must be dir or database"); break;
    case RP_CFG_UPLOAD_MAX_OPEN: snprintf(why, cap, "must be 1 to 100000"); break;
    case RP_CFG_MAX_DEVICES_PER_TENANT:
        snprintf(why, cap, "must be 0 (no limit) to 1000000000");
        break;
    case RP_CFG_UPLOAD_MAX_BYTES:
        snprintf(why, cap, "must be 1048576 (1 MiB) to 1099511627776 (1 TiB) bytes");
        break;
    default: snprintf(why, cap, "must be true or false (yes/no, on/off, 1/0)"); break;
    }
    return false;
}

bool rp_config_differs(const rp_config_t *a, const rp_config_t *b, rp_config_id_t id)
{
    switch (id) {
    case RP_CFG_DATA_DIR: return strcmp(a->data_dir, b->data_dir) != 0;
    case RP_CFG_LISTEN: return strcmp(a->listen, b->listen) != 0;
    case RP_CFG_HOSTNAME: return strcmp(a->hostnames, b->hostnames) != 0;
    case RP_CFG_THREADS: return a->threads != b->threads;
    case RP_CFG_PORT_FILE: return strcmp(a->port_file, b->port_file) != 0;
    case RP_CFG_MASTER_KEY: return strcmp(a->master_key, b->master_key) != 0;
    case RP_CFG_NONCE_LIFETIME: return a->nonce_lifetime != b->nonce_lifetime;
    case RP_CFG_RATE_LIMIT: return a->rate_limit != b->rate_limit;
    case RP_CFG_UNCLAIMED_RATE: return a->unclaimed_rate != b->unclaimed_rate;
    case RP_CFG_LOGIN_RATE: return a->login_rate != b->login_rate;
    case RP_CFG_AUTH_FAIL_RATE: return a->auth_fail_rate != b->auth_fail_rate;
    case RP_CFG_MAX_CONNECTIONS: return a->max_connections != b->max_connections;
    case RP_CFG_PER_ADDRESS: return a->per_address != b->per_address;
    case RP_CFG_REQUEST_DEADLINE: return a->request_deadline != b->request_deadline;
    case RP_CFG_IDLE_TIMEOUT: return a->idle_timeout != b->idle_timeout;
    case RP_CFG_VERBOSE: return a->verbose != b->verbose;
    case RP_CFG_DEBUGINFOD_URL: return strcmp(a->debuginfod_url, b->debuginfod_url) != 0;
    case RP_CFG_CONSOLE_DIR: return strcmp(a->console_dir, b->console_dir) != 0;
    case RP_CFG_WEBHOOK_ALLOW_PRIVATE: return a->webhook_allow_private != b->webhook_allow_private;
    case RP_CFG_DATABASE: return strcmp(a->database, b->database) != 0;
    case RP_CFG_DATABASE_WAIT: return a->database_wait != b->database_wait;
    case RP_CFG_BLOBS: return a->blobs != b->blobs;
    case RP_CFG_UPLOAD_MAX_OPEN: return a->upload_max_open != b->upload_max_open;
    case RP_CFG_UPLOAD_MAX_BYTES: return a->upload_max_bytes != b->upload_max_bytes;
    case RP_CFG_REENROLL_PER_HOUR: return a->reenroll_per_hour != b->reenroll_per_hour;
    case RP_CFG_MAX_DEVICES_PER_TENANT:
        return a->max_devices_per_tenant != b->max_devices_per_tenant;
    default: return false;
    }
}

void rp_config_copy(rp_config_t *dst, const rp_config_t *src, rp_config_id_t id)
{
    switch (id) {
    case RP_CFG_DATA_DIR: memcpy(dst->data_dir, src->data_dir, sizeof(dst->data_dir)); break;
    case RP_CFG_LISTEN: memcpy(dst->listen, src->listen, sizeof(dst->listen)); break;
    case RP_CFG_HOSTNAME: memcpy(dst->hostnames, src->hostnames, sizeof(dst->hostnames)); break;
    case RP_CFG_THREADS: dst->threads = src->threads; break;
    case RP_CFG_PORT_FILE: memcpy(dst->port_file, src->port_file, sizeof(dst->port_file)); break;
    case RP_CFG_MASTER_KEY:
        memcpy(dst->master_key, src->master_key, sizeof(dst->master_key));
        break;
    case RP_CFG_NONCE_LIFETIME: dst->nonce_lifetime = src->nonce_lifetime; break;
    case RP_CFG_RATE_LIMIT: dst->rate_limit = src->rate_limit; break;
    case RP_CFG_UNCLAIMED_RATE: dst->unclaimed_rate = src->unclaimed_rate; break;
    case RP_CFG_LOGIN_RATE: dst->login_rate = src->login_rate; break;
    case RP_CFG_AUTH_FAIL_RATE: dst->auth_fail_rate = src->auth_fail_rate; break;
    case RP_CFG_MAX_CONNECTIONS: dst->max_connections = src->max_connections; break;
    case RP_CFG_PER_ADDRESS: dst->per_address = src->per_address; break;
    case RP_CFG_REQUEST_DEADLINE: dst->request_deadline = src->request_deadline; break;
    case RP_CFG_IDLE_TIMEOUT: dst->idle_timeout = src->idle_timeout; break;
    case RP_CFG_VERBOSE: dst->verbose = src->verbose; break;
    case RP_CFG_DEBUGINFOD_URL:
        memcpy(dst->debuginfod_url, src->debuginfod_url, sizeof(dst->debuginfod_url));
        break;
    case RP_CFG_CONSOLE_DIR:
        memcpy(dst->console_dir, src->console_dir, sizeof(dst->console_dir));
        break;
    case RP_CFG_WEBHOOK_ALLOW_PRIVATE:
        dst->webhook_allow_private = src->webhook_allow_private;
        break;
    case RP_CFG_DATABASE: memcpy(dst->database, src->database, sizeof(dst->database)); break;
    case RP_CFG_DATABASE_WAIT: dst->database_wait = src->database_wait; break;
    case RP_CFG_BLOBS: dst->blobs = src->blobs; break;
    case RP_CFG_UPLOAD_MAX_OPEN: dst->upload_max_open = src->upload_max_open; break;
    case RP_CFG_UPLOAD_MAX_BYTES: dst->upload_max_bytes = src->upload_max_bytes; break;
    case RP_CFG_REENROLL_PER_HOUR: dst->reenroll_per_hour = src->reenroll_per_hour; break;
    case RP_CFG_MAX_DEVICES_PER_TENANT:
        dst->max_devices_per_tenant = src->max_devices_per_tenant;
        break;
    default: break;
    }
}

/* What libinih reads from: the file's text, a line at a time, counted (its handler is not told
 * the line number in Debian's build). */
struct reader {
    const char *text, *name;
    size_t len, pos;
    int line;  /* the line last handed to libinih */
    int bad;   /* the first refused line (0: none yet) */
    char *why; /* "name:line: reason" of the first refusal */
    size_t cap;
    bool seen[RP_CFG_COUNT];
    rp_config_t *c;
};

/* The first refusal is the one reported: "name:line: what: reason". */
static void refuse(struct reader *r, const char *what, const char *reason)
{
    if (r->bad != 0)
        return;
    r->bad = r->line;
    snprintf(r->why, r->cap, "%s:%d: %s%s%s", r->name, r->line, what, what[0] ? ": " : "", reason);
}

/* The one section keys may be under (besides none: the top): [server]. A section of len bytes at
 * name other than that is refused (true). */
static bool section_refused(struct reader *r, const char *name, size_t len)
{
    char shown[64];

    if (len == 6 && memcmp(name, "server", 6) == 0)
        return false;
    snprintf(shown, sizeof(shown), "%.*s", (int)len, name);
    refuse(r, shown, "unknown section (keys go at the top, or under [server])");
    return true;
}

/*
 * A section header ("[NAME]", as libinih reads one: after a byte order mark on the first line and
 * leading blanks, up to the first ']') is refused at its own line when it is not [server]: libinih
 * tells the handler of a section only with a key under it, and an empty one is refused too.
 */
static void check_header(struct reader *r, const char *line)
{
    const char *p = line, *end;

    if (r->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\v' || *p == '\f')
        p++;
    if (*p != '[' || (end = strchr(p + 1, ']')) == NULL)
        return; /* (no header, or one libinih refuses itself) */
    (void)section_refused(r, p + 1, (size_t)(end - p - 1));
}

static char *read_line(char *str, int num, void *stream)
{
    struct reader *r = stream;
    size_t n = 0;

    if (r->pos >= r->len || r->bad != 0)
        return NULL; /* the end, or stop at the first refusal */
    r->line++;
    while (r->pos < r->len && n + 1 < (size_t)num) {
        char ch = r->text[r->pos++];
        str[n++] = ch;
        if (ch == '\n')
            break;
    }
    str[n] = '\0';
    if (str[n - 1] != '\n' && r->pos < r->len) {
        /* libinih would read the rest as another line */
        char limit[48];
        snprintf(limit, sizeof(limit), "a line longer than %d bytes", num - 2);
        refuse(r, "", limit);
        return NULL;
    }
    check_header(r, str);
    return r->bad == 0 ? str : NULL;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct reader *r = user;
    char why[160];
    int id = -1;

    if (r->bad != 0)
        return 0;
    /* (check_header refused it first: this is the second line) */
    if (section[0] != '\0' && section_refused(r, section, strlen(section)))
        return 0;
    for (int i = 0; i < RP_CFG_COUNT && id < 0; i++)
        if (strcmp(name, table[i].name) == 0)
            id = i;
    if (id < 0) {
        refuse(r, name, "unknown key (the keys are rampart-server's long options)");
        return 0;
    }
    if (!rp_config_is_setting((rp_config_id_t)id)) {
        refuse(r, name, "is an action of the command line, not a setting");
        return 0;
    }
    if (r->seen[id]) {
        refuse(r, name, "given twice (or continued on an indented line)");
        return 0;
    }
    r->seen[id] = true;
    if (!rp_config_set(r->c, (rp_config_id_t)id, value, why, sizeof(why))) {
        refuse(r, name, why);
        return 0;
    }
    return 1;
}

rp_err_t rp_config_parse(const char *text, size_t len, const char *name, rp_config_t *c, char *why,
                         size_t cap)
{
    struct reader r = {.text = text, .name = name, .len = len, .why = why, .cap = cap, .c = c};
    int rc;

    why[0] = '\0';
    if (len > RP_CONFIG_MAX) {
        snprintf(why, cap, "%s: larger than %d bytes", name, RP_CONFIG_MAX);
        return RP_ERR_TOO_LARGE;
    }
    if (memchr(text, '\0', len) != NULL) {
        snprintf(why, cap, "%s: holds a NUL byte: not a text file", name);
        return RP_ERR_MALFORMED;
    }
    rc = ini_parse_stream(read_line, &r, on_key, &r);
    /* libinih returns its first error's line, ours or its own (a syntax error, which goes on):
     * ours is the reason only when it came first. */
    if (r.bad != 0 && (rc <= 0 || rc >= r.bad))
        return RP_ERR_MALFORMED;
    if (rc < 0) {
        snprintf(why, cap, "%s: cannot be parsed (out of memory)", name);
        return RP_ERR_NO_MEMORY;
    }
    if (rc > 0) {
        snprintf(why, cap, "%s:%d: not `key = value`, `[section]` or a comment", name, rc);
        return RP_ERR_MALFORMED;
    }
    return RP_OK;
}

rp_err_t rp_config_load(const char *path, rp_config_t *c, char *why, size_t cap)
{
    uint8_t *data = NULL;
    size_t len = 0;
    rp_err_t err = rp_read_file(path, RP_CONFIG_MAX, &data, &len);

    if (err != RP_OK) {
        snprintf(why, cap, "%s: %s", path,
                 err == RP_ERR_TOO_LARGE   ? "larger than 64 KiB"
                 : err == RP_ERR_NOT_FOUND ? "no such file"
                 : err == RP_ERR_IO        ? "cannot be read (not a regular file, or no access)"
                                           : rp_strerror(err));
        return err;
    }
    err = rp_config_parse((const char *)data, len, path, c, why, cap);
    free(data);
    return err;
}
