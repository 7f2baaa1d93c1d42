/*
 * What only the SQLite driver (db_sqlite.c) has: its connection's SQLite handle, for the tests
 * that look at SQLite itself (query plans, VM steps, commit hooks). The service never uses it.
 */
#ifndef RAMPART_STORE_DB_SQLITE_H
#define RAMPART_STORE_DB_SQLITE_H

#include "db.h"

struct sqlite3;
struct sqlite3_stmt;

/* The connection's handle; NULL when db is not a SQLite connection. */
struct sqlite3 *rp_db_sqlite_handle(rp_db_t *db);
/* A statement's; NULL when st is not a SQLite statement. */
struct sqlite3_stmt *rp_db_sqlite_stmt(rp_db_stmt_t *st);

#endif /* RAMPART_STORE_DB_SQLITE_H */
