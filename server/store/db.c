/*
 * Which driver (db.h) a database target names. The drivers this build has are listed here and
 * nowhere else.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "db.h"

static bool is_postgresql(const char *target)
{
    return strncasecmp(target, "postgresql://", 13) == 0 ||
           strncasecmp(target, "postgres://", 11) == 0;
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
