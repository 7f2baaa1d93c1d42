/*
 * The schema of a PostgreSQL database (schema_pg.c): how a new one reaches the SQLite schema's
 * version RP_SCHEMA_PG_BASELINE in one step, the migrations after it being written once for both
 * engines.
 */
#ifndef RAMPART_STORE_SCHEMA_PG_H
#define RAMPART_STORE_SCHEMA_PG_H

#include "rampart/error.h"
#include "store/db.h"

/* The SQLite schema version (server/store_sqlite.c: migrations 1..18) the baseline equals. */
#define RP_SCHEMA_PG_BASELINE 18

/* The baseline's DDL: SQLite's tables, columns (in their order), keys and indexes at
 * RP_SCHEMA_PG_BASELINE, and rp_selects(), in PostgreSQL's types. */
extern const char rp_schema_pg_baseline[];

/*
 * Bring a PostgreSQL database with no schema to the baseline, recorded as version
 * RP_SCHEMA_PG_BASELINE in schema_version; a database at or past it is left as it is. Under the
 * write lock (begin()), the version read inside it: two replicas starting at once install it
 * once. Migrations after the baseline run as SQLite's do, each in a begin()/commit() that reads
 * the version again inside. OUT: *version, the schema version after.
 */
rp_err_t rp_schema_pg_install(rp_db_t *db, int *version) RP_MUST_CHECK;

#endif /* RAMPART_STORE_SCHEMA_PG_H */
