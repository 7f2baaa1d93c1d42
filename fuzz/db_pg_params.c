/*
 * The PostgreSQL driver's rewrite of SQLite's parameter forms (server/store/db_pg_sql.c): any
 * bytes as SQL. It must never read or write out of bounds; what it accepts it rewrites into SQL
 * with as many "$n" as parameters, each in 1..n, and no "?" or ":name" left outside quotes.
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
    free(sql);
    return 0;
}
