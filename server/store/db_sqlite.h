/*
 * What only the SQLite driver (db_sqlite.c) has: its connection's SQLite handle, for the tests
 * that look at SQLite itself (query plans, VM steps, commit hooks), and whole database files
 * (below).
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

/*
 * Whole database files, for rampart-server backup and restore (server/restore.c), which run with
 * no connection of their own open.
 *
 * rp_db_sqlite_copy: the database at from (which writers may be using) copied into to, an
 * existing empty file the caller made (its mode, its rename), with SQLite's online backup API (a
 * snapshot of one moment), in rollback-journal mode (nothing beside it: it can be renamed alone;
 * a server's open puts it back in WAL); when taken_at > 0, the time is recorded in it
 * (backups_taken, schema 33) for a restore to say.
 * rp_db_sqlite_inspect: that path is a whole Rampart database (a schema version, its tokens, and
 * SQLite's quick_check passes): RP_ERR_MALFORMED with why when not; OUT: *schema, *taken_at (the
 * latest backup time recorded in it, 0 for none).
 * rp_db_sqlite_settle: everything the database's -wal holds written into the file, the -wal
 * emptied and (at the close) removed: what a crash then leaves is the file alone.
 */
rp_err_t rp_db_sqlite_copy(const char *from, const char *to, int64_t taken_at) RP_MUST_CHECK;
rp_err_t rp_db_sqlite_inspect(const char *path, int64_t *schema, int64_t *taken_at, char *why,
                              size_t cap) RP_MUST_CHECK;
rp_err_t rp_db_sqlite_settle(const char *path) RP_MUST_CHECK;

#endif /* RAMPART_STORE_DB_SQLITE_H */
