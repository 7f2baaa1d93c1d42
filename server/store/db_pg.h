/*
 * The PostgreSQL driver's parts that stand without a server (db_pg_sql.c): the rewrite of
 * SQLite's parameter forms into PostgreSQL's, which the driver's prepare() runs, and of SQLite's
 * type names in DDL, which its exec() runs; fuzz/db_pg_params.c fuzzes both.
 */
#ifndef RAMPART_STORE_DB_PG_H
#define RAMPART_STORE_DB_PG_H

#include <stddef.h>

#include "rampart/error.h"

#define RP_DB_PG_SQL_MAX (1u << 20) /* the longest SQL the rewrite takes */
#define RP_DB_PG_PARAMS_MAX 65535   /* PostgreSQL's own limit on a statement's parameters */

/* A statement's parameters after the rewrite: parameter n (from 1) is "$n" in sql; params[n - 1]
 * is the ":name" it came from (offset and length in the SQL given), or length 0 for a "?". */
typedef struct rp_db_pg_param {
    size_t off, len;
} rp_db_pg_param_t;

typedef struct rp_db_pg_sql {
    char *sql;                /* the SQL with "$n" placeholders (malloc'd) */
    rp_db_pg_param_t *params; /* nparams entries (malloc'd; NULL when none) */
    int nparams;
} rp_db_pg_sql_t;

/*
 * Rewrite SQL in SQLite's parameter forms into PostgreSQL's ("$n"), numbered as SQLite numbers
 * them: ":name" (a new name takes the index after the largest so far; a name used again, its
 * own), "?" (the index after the largest so far) and "?NNN" (index NNN, which the store's SQL
 * uses too). String literals (E'...' too), quoted identifiers, dollar-quoted strings, comments
 * and "::" casts are left as they are. Refused (RP_ERR_MALFORMED): an unterminated literal,
 * identifier or comment, "?0" or an index above RP_DB_PG_PARAMS_MAX, a "$n" of PostgreSQL's own;
 * (RP_ERR_TOO_LARGE) SQL longer than RP_DB_PG_SQL_MAX.
 * OUT: *out, freed with rp_db_pg_sql_free (also on failure: then empty).
 */
rp_err_t rp_db_pg_rewrite(const char *sql, rp_db_pg_sql_t *out) RP_MUST_CHECK;
void rp_db_pg_sql_free(rp_db_pg_sql_t *s);

/*
 * SQLite's DDL with its type names in the PostgreSQL baseline's (schema_pg.c), so that a
 * migration is written once for both: in CREATE TABLE's columns and ALTER TABLE's ADD [COLUMN],
 * INTEGER is BIGINT (INTEGER PRIMARY KEY, a rowid, an identity column), BLOB is BYTEA, REAL is
 * DOUBLE PRECISION, TEXT is TEXT COLLATE "C" (unless a COLLATE follows); WITHOUT ROWID is dropped.
 * Any other statement, and all within literals, identifiers and comments, is left as it is.
 * Refused as rp_db_pg_rewrite refuses. OUT: *out (malloc'd; NULL on failure).
 */
rp_err_t rp_db_pg_ddl(const char *sql, char **out) RP_MUST_CHECK;

#endif /* RAMPART_STORE_DB_PG_H */
