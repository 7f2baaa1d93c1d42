/*
 * The PostgreSQL driver's rewrites of SQLite's SQL (server/store/db_pg_sql.c): any bytes as SQL,
 * through the parameter rewrite and the DDL type mapping. Neither may read or write out of
 * bounds; what the first accepts names parameters within the SQL, what the second accepts is at
 * most 8 times as long.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/db_pg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *sql = malloc(size + 1);
    rp_db_pg_sql_t q;

    if (sql == NULL)
        return 0;
    memcpy(sql, data, size);
    sql[size] = '\0';
    if (rp_db_pg_rewrite(sql, &q) == RP_OK) {
        if (q.sql == NULL || q.nparams < 0 || q.nparams > RP_DB_PG_PARAMS_MAX)
            abort();
        for (int i = 0; i < q.nparams; i++)
            if (q.params[i].off + q.params[i].len > strlen(sql))
                abort();
        rp_db_pg_sql_free(&q);
    } else if (q.sql != NULL || q.params != NULL) {
        abort();
    }
    /* the same bytes as DDL: type names mapped, nothing else */
    char *ddl = NULL;
    if (rp_db_pg_ddl(sql, &ddl) == RP_OK) {
        if (ddl == NULL || strlen(ddl) > 8 * strlen(sql))
            abort();
        free(ddl);
    } else if (ddl != NULL) {
        abort();
    }
    free(sql);
    return 0;
}
