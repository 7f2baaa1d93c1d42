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

/* For the benchmarks, which count what a piece of work costs SQLite without calling it: the pages
 * the connection asked of its page cache (hits and misses) since the last call with reset (and
 * reset them when reset), the rows it has changed since it opened, and the steps a statement's
 * virtual machine has taken. 0 when db or st is not SQLite's. */
long long rp_db_sqlite_pages(rp_db_t *db, int reset);
long long rp_db_sqlite_changes(rp_db_t *db);
long long rp_db_sqlite_vm_steps(rp_db_stmt_t *st);

#endif /* RAMPART_STORE_DB_SQLITE_H */
