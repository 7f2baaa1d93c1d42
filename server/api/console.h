/*
 * The web console's side of the service (console.c): its static files under /console/, the
 * sessions a pasted token or a one-time login link opens (an HttpOnly cookie and a CSRF value),
 * and the pure checks they rest on (console_parse.c: which file paths may be served, the session
 * cookie in a Cookie header), kept apart so that unit tests and fuzz targets call them alone.
 */
#ifndef RAMPART_CONSOLE_H
#define RAMPART_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "rampart/error.h"

/* __Host-: a browser keeps it only when set Secure, with Path=/ and no Domain, by this origin
 * itself; a sibling site (a.example setting a cookie for example) or a plain-HTTP page cannot
 * plant or overwrite a cookie of this name. */
#define RP_SESSION_COOKIE "__Host-rampart_session"
#define RP_SESSION_PREFIX "rps_"      /* a session cookie's value: prefix and 64 hex digits */
#define RP_SESSION_VALUE_LEN (4 + 64) /* without the NUL */
#define RP_SESSION_LIFETIME 28800     /* seconds a session lasts at most (8 hours) */
#define RP_CSRF_LEN 64                /* a session's CSRF value: 64 hex digits */
#define RP_LINK_PREFIX "rpl_"         /* a login link's code: prefix and 64 hex digits */
#define RP_LINK_CODE_LEN (4 + 64)
#define RP_LINK_LIFETIME 600      /* seconds a login link stays usable (10 minutes) */
#define RP_CONSOLE_PATH_MAX 512   /* a console file's path below its directory */
#define RP_COOKIE_HEADER_MAX 8192 /* a Cookie header read at most */

/* A console file served at most (it is read whole when asked for). */
#define RP_CONSOLE_FILE_MAX (32 * 1024 * 1024)

/*
 * Whether segs[0..n) (decoded path segments below /console/) name a file that may be served:
 * 1 to 16 segments, each 1 to 128 of [A-Za-z0-9._-] not starting with '.' (so no "..", ".",
 * hidden file, "/" or "\" hidden in a segment, NUL, or percent sign), RP_CONSOLE_PATH_MAX in all.
 * It says nothing of symbolic links: the caller opens it with openat2() beneath the console's
 * directory, through no symbolic link.
 * Pure: unit-tested.
 */
bool rp_console_path_ok(const char *const *segs, int n);

/* The Content-Type a console file is served with, by its name's extension (html, js, mjs, css,
 * svg, png, json, woff2, map); NULL: not a kind the console serves. */
const char *rp_console_type(const char *name);

/*
 * The value of the cookie `name` in a Cookie header (RFC 6265, 5.4: "a=b; c=d"), copied into out
 * (cap bytes, NUL included). RP_ERR_NOT_FOUND when it is not there; RP_ERR_MALFORMED when the
 * header is longer than RP_COOKIE_HEADER_MAX, the cookie is there twice (which of the two a
 * browser sent first is not a thing to guess: a sibling site may have planted one), or its value
 * is empty, does not fit, or holds a byte outside cookie-octet. Pure: unit-tested and fuzzed.
 */
rp_err_t rp_cookie_get(const char *header, const char *name, char *out, size_t cap);

/* Whether v is a session cookie's value as the service makes them (RP_SESSION_PREFIX and 64
 * lowercase hex digits); or, with the link prefix, a login link's code. */
bool rp_console_secret_ok(const char *v, const char *prefix);

/* ---- console.c: its routes, and the session check the route table makes ---- */
typedef struct rp_req rp_req_t;
void rp_h_console_file(rp_req_t *r);
void rp_h_console_session_create(rp_req_t *r);
void rp_h_console_session_get(rp_req_t *r);
void rp_h_console_session_delete(rp_req_t *r);
void rp_h_console_link_create(rp_req_t *r);
void rp_h_fleet(rp_req_t *r);
/* The fleet's "expiring" count is a matter of time, not of a write: a thread of its own counts
 * it again for each tenant whose count is older than RP_FLEET_SUMMARY_AGE seconds (every device
 * read: seconds at a million), and the fleet page shows it with the time it was counted. */
#define RP_FLEET_SUMMARY_AGE 600
struct rp_server;
rp_err_t rp_fleet_summaries_start(struct rp_server *srv) RP_MUST_CHECK;
void rp_fleet_summaries_stop(void);
void rp_h_attest_histogram(rp_req_t *r);
/* The request's session cookie, current (its token's role and tenant into r->tok), and with
 * need_csrf its X-CSRF-Token header right; false: 401 or 403 sent. */
bool rp_console_session_auth(rp_req_t *r, bool need_csrf);
/* Whether the request carries a session cookie at all (well-formed or not). */
bool rp_console_has_cookie(rp_req_t *r);

#endif /* RAMPART_CONSOLE_H */
