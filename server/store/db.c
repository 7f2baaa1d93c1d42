/*
 * Which driver (db.h) a database target names. The drivers this build has are listed here and
 * nowhere else.
 */
#include <string.h>
#include <strings.h>

#include "db.h"
#include "rampart/log.h"

static bool is_postgresql(const char *target)
{
    return strncasecmp(target, "postgresql://", 13) == 0 ||
           strncasecmp(target, "postgres://", 11) == 0;
}

const rp_db_driver_t *rp_db_driver_for(const char *target)
{
    if (target == NULL || target[0] == '\0')
        return NULL;
    if (is_postgresql(target)) {
        /* The PostgreSQL driver (db_pg.c) is not in this build yet: return &rp_db_postgresql
         * here once it is. */
        rp_log_error("database: this build has no PostgreSQL backend");
        return NULL;
    }
    return &rp_db_sqlite;
}
