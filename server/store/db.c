/*
 * Which driver (db.h) a database target names. The drivers this build has are listed here and
 * nowhere else.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "db.h"

static bool is_uri(const char *target)
{
    return strncasecmp(target, "postgresql://", 13) == 0 ||
           strncasecmp(target, "postgres://", 11) == 0;
}

/* libpq's keyword form ("host=db user=rampart password=..."): it starts with a keyword (letters
 * and '_') and '=', which no SQLite path the docs show does (one may be written ./a=b.db). Taken
 * for a file, its text, password and all, was a file's name and a log line (review r15ops M4). */
static bool is_keywords(const char *target)
{
    const char *p = target + strspn(target, " \t");
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");

    return n > 0 && p[n + strspn(p + n, " \t")] == '=';
}

static bool is_postgresql(const char *target)
{
    return is_uri(target) || is_keywords(target);
}

const rp_db_driver_t *rp_db_driver_for(const char *target)
{
    if (target == NULL || target[0] == '\0')
        return NULL;
    if (is_postgresql(target))
        return &rp_db_postgresql;
    return &rp_db_sqlite;
}

void rp_db_target_describe(const char *target, char *out, size_t cap)
{
    const char *db = NULL, *host = NULL, *port = NULL, *user = NULL;
    PQconninfoOption *opts;
    char *err = NULL;

    if (target == NULL || target[0] == '\0') {
        snprintf(out, cap, "no database");
        return;
    }
    if (!is_postgresql(target)) {
        snprintf(out, cap, "SQLite file %s", target);
        return;
    }
    /* libpq's parse, not ours: the password may be in the URI's userinfo or a query parameter,
     * and only the fields named here are ever printed. */
    opts = PQconninfoParse(target, &err);
    PQfreemem(err);
    if (opts == NULL) {
        snprintf(out, cap, "PostgreSQL (a target libpq cannot parse)");
        return;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
        else if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    snprintf(out, cap, "PostgreSQL database %s on %s%s%s%s%s", db ? db : "(default)",
             host ? host : "(default host)", port ? ":" : "", port ? port : "", user ? " as " : "",
             user ? user : "");
    PQconninfoFree(opts);
}

/* The password's text as the target holds it (before libpq's decoding), one place at a time
 * from *from: the URI's userinfo after ':', or a "password" keyword's or query parameter's value.
 * OUT: *at, *len. false when there is no further one. */
static bool raw_password(const char *target, const char **from, const char **at, size_t *len)
{
    const char *p = *from;

    if (p == target && is_uri(target)) {
        const char *auth = strstr(target, "://") + 3;
        size_t end = strcspn(auth, "/?#");
        const char *atsign = NULL, *colon;

        for (size_t i = 0; i < end; i++)
            if (auth[i] == '@')
                atsign = auth + i;
        colon = atsign != NULL ? memchr(auth, ':', (size_t)(atsign - auth)) : NULL;
        *from = auth + end;
        if (colon != NULL && atsign > colon + 1) {
            *at = colon + 1;
            *len = (size_t)(atsign - *at);
            return true;
        }
        p = *from;
    }
    while ((p = strcasestr(p, "password")) != NULL) {
        const char *v = p + 8;

        v += strspn(v, " \t");
        p += 8;
        if (*v != '=')
            continue;
        v++;
        v += strspn(v, " \t");
        if (*v == '\'') {
            const char *q = v + 1;

            while (*q != '\0' && *q != '\'')
                q += q[0] == '\\' && q[1] != '\0' ? 2 : 1;
            *at = v + 1;
            *len = (size_t)(q - *at);
        } else {
            *at = v;
            *len = strcspn(v, " \t&#");
        }
        *from = *at + *len;
        if (*len > 0)
            return true;
        p = *from;
    }
    *from = target + strlen(target);
    return false;
}

/* libpq's own parse of the password (decoded), or NULL. Free with PQconninfoFree(*opts). */
static const char *parsed_password(const char *target, PQconninfoOption **opts)
{
    char *err = NULL;

    *opts = PQconninfoParse(target, &err);
    PQfreemem(err);
    for (PQconninfoOption *o = *opts; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
            return o->val;
    return NULL;
}

bool rp_db_target_has_password(const char *target)
{
    const char *from = target, *at;
    size_t len;
    PQconninfoOption *opts;
    bool has;

    if (target == NULL || !is_postgresql(target))
        return false;
    has = parsed_password(target, &opts) != NULL || raw_password(target, &from, &at, &len);
    PQconninfoFree(opts);
    return has;
}

/* Every occurrence of needle (len bytes) in out (NUL-terminated, in cap bytes) made "***"; a
 * needle shorter than that, where the text has no room left to grow, made "*"s of its length. */
static void blank(char *out, size_t cap, const char *needle, size_t len)
{
    char *p = out;

    if (len == 0)
        return;
    while ((p = memmem(p, strlen(p), needle, len)) != NULL) {
        size_t tail = strlen(p + len) + 1, put = 3;

        if (len < 3 && (size_t)(p - out) + 3 + tail > cap)
            put = len;
        memmove(p + put, p + len, tail);
        memset(p, '*', put);
        p += put;
    }
}

void rp_db_scrub(const char *target, const char *msg, char *out, size_t cap)
{
    const char *from = target, *at, *pw;
    size_t len;
    PQconninfoOption *opts = NULL;

    snprintf(out, cap, "%s", msg != NULL ? msg : "");
    if (target == NULL || !is_postgresql(target))
        return;
    while (raw_password(target, &from, &at, &len))
        blank(out, cap, at, len);
    if ((pw = parsed_password(target, &opts)) != NULL)
        blank(out, cap, pw, strlen(pw));
    PQconninfoFree(opts);
}
