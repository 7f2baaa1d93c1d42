/*
 * rampart-server's settings: the one table of its options, from which both the command line's
 * long options (getopt) and the config file's keys are made - a new flag is a new row, and has
 * its key at once. A value is checked in one place (rp_config_set) whichever way it comes. The
 * file is INI (`key = value`, an optional [server] section), parsed by libinih, bounded, every
 * refusal naming file:line and the reason.
 */
#ifndef RAMPART_SERVER_CONFIG_H
#define RAMPART_SERVER_CONFIG_H

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "rampart/error.h"

#define RP_CONFIG_DEFAULT "/etc/rampart/server.conf" /* read when it exists and no --config */
#define RP_CONFIG_MAX (64 * 1024)                    /* a config file's size at most */

typedef enum rp_config_id {
    RP_CFG_DATA_DIR,
    RP_CFG_LISTEN,
    RP_CFG_HOSTNAME,
    RP_CFG_THREADS,
    RP_CFG_PORT_FILE,
    RP_CFG_MASTER_KEY,
    RP_CFG_NONCE_LIFETIME,
    RP_CFG_RATE_LIMIT,
    RP_CFG_UNCLAIMED_RATE,
    RP_CFG_MAX_CONNECTIONS,
    RP_CFG_PER_ADDRESS,
    RP_CFG_REQUEST_DEADLINE,
    RP_CFG_IDLE_TIMEOUT,
    RP_CFG_VERBOSE,
    RP_CFG_DEBUGINFOD_URL,
    RP_CFG_CONSOLE_DIR,
    RP_CFG_WEBHOOK_ALLOW_PRIVATE,
    RP_CFG_LOGIN_RATE,
    RP_CFG_AUTH_FAIL_RATE,
    RP_CFG_DATABASE,
    RP_CFG_DATABASE_WAIT,
    RP_CFG_BLOBS,
    RP_CFG_UPLOAD_MAX_OPEN,
    RP_CFG_UPLOAD_MAX_BYTES,
    RP_CFG_REENROLL_PER_HOUR,
    RP_CFG_MAX_DEVICES_PER_TENANT,
    /* Actions, not settings: command line only. */
    RP_CFG_CONFIG,
    RP_CFG_ROTATE,
    RP_CFG_ROUTES,
    RP_CFG_HELP,
    RP_CFG_VERSION,
    RP_CFG_FROM,  /* blobs move's: the store to move from */
    RP_CFG_TO,    /* and to */
    RP_CFG_FORCE, /* service-ca next's: before it is due */
    RP_CFG_COUNT,
} rp_config_id_t;

/* Every setting, as the service uses it. Strings are empty when unset. */
typedef struct rp_config {
    char data_dir[PATH_MAX];
    char listen[300];
    char hostnames[1024];
    long threads; /* 0: one per core */
    char port_file[PATH_MAX];
    char master_key[PATH_MAX];
    int nonce_lifetime;
    double rate_limit, unclaimed_rate;
    double login_rate;     /* failed console logins a second per address (bursts of 10) */
    double auth_fail_rate; /* wrong bearer tokens a second per address (bursts of 20) */
    long max_connections, per_address, request_deadline;
    long idle_timeout; /* seconds a connection may send or take nothing */
    bool verbose;
    char debuginfod_url[1024];
    char console_dir[PATH_MAX]; /* "": ../share/rampart/console beside the program */
    bool webhook_allow_private;
    char database[1024];   /* "": the SQLite file rampart.db in data_dir */
    long database_wait;    /* seconds to wait at start for a database out of reach; 0: none */
    int blobs;             /* where blobs live (store/blob.h: rp_blobs_kind_t): 0, dir */
    long upload_max_open;  /* uploads a tenant may have open at once */
    long upload_max_bytes; /* the announced bytes of a tenant's open uploads, together */
    /* EST re-enrollments a device may make an hour (bursts of as many); 0: no limit */
    long reenroll_per_hour;
    long max_devices_per_tenant; /* devices a tenant may hold (claims past it refused); 0: none */
} rp_config_t;

/* The defaults (what --help says). */
void rp_config_defaults(rp_config_t *c);

/* The long options for getopt_long, from the table, ended by a zero row (RP_CFG_COUNT + 1), and
 * its short options string. */
void rp_config_getopt(struct option out[RP_CFG_COUNT + 1], char *shorts, size_t cap);
/* The option getopt_long returned (its val), or -1. */
int rp_config_from_getopt(int val);
/* An option's long name (the file's key). */
const char *rp_config_name(rp_config_id_t id);
/* Whether an option is a setting (has a key in the file), not an action. */
bool rp_config_is_setting(rp_config_id_t id);
/* Whether a running service can take a new value of it at SIGHUP (else it needs a restart). */
bool rp_config_reloadable(rp_config_id_t id);

/* Set one setting from its text (NULL for a flag with no argument on the command line). false,
 * with why (for "--name: why" or "file:line: name: why"), when the value is not valid. */
bool rp_config_set(rp_config_t *c, rp_config_id_t id, const char *value, char *why, size_t cap);

/* Whether setting id differs between a and b. */
bool rp_config_differs(const rp_config_t *a, const rp_config_t *b, rp_config_id_t id);

/* Setting id of src onto dst (a reload takes what it can). */
void rp_config_copy(rp_config_t *dst, const rp_config_t *src, rp_config_id_t id);

/*
 * A config file's text onto c (name is for messages). Refused, with "name:line: reason" in why:
 * more than RP_CONFIG_MAX bytes, a NUL byte, a line longer than libinih reads whole, a syntax
 * error, a section other than [server], an unknown key or an action's, a key twice, a bad value.
 * c may be partly set on failure: load into a copy.
 */
rp_err_t rp_config_parse(const char *text, size_t len, const char *name, rp_config_t *c, char *why,
                         size_t cap) RP_MUST_CHECK;
/* The same from a file; a file that cannot be read is RP_ERR_IO (RP_ERR_NOT_FOUND: none). */
rp_err_t rp_config_load(const char *path, rp_config_t *c, char *why, size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_SERVER_CONFIG_H */
