/*
 * Which driver (db.h) a database target names. The drivers this build has are listed here and
 * nowhere else.
 */
#include <string.h>
#include <strings.h>

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
