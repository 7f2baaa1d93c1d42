/*
 * The storage backend contract below the store: one SQL connection, behind a table of operations
 * that each database engine implements once (db_sqlite.c: SQLite; db_pg.c: PostgreSQL through
 * libpq), the way rot.h puts the TPM and the soft root of trust behind one table. The store's
 * domain operations (store.h) are written once, in SQL both engines run, against this interface;
 * where the engines' SQL differs, the driver owns the difference (placeholders, error classes,
 * how a transaction takes the write lock, the type names of a migration).
 *
 * SQL given to prepare() uses SQLite's parameter forms, which the PostgreSQL driver rewrites:
 * ":name" (one index per distinct name, in order of first use) and "?" (the next index). Indexes
 * start at 1. One connection is used by one thread at a time.
 */
#ifndef RAMPART_STORE_DB_H
#define RAMPART_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"

typedef struct rp_db rp_db_t;           /* one connection: a driver's struct starts with rp_db */
typedef struct rp_db_stmt rp_db_stmt_t; /* one prepared statement of one connection */
typedef struct rp_db_driver rp_db_driver_t;
typedef struct rp_db_hold rp_db_hold_t; /* a holder's locks: a driver's struct starts with this */

struct rp_db {
    const rp_db_driver_t *drv;
};
struct rp_db_hold {
    const rp_db_driver_t *drv;
};

/* The locks a hold may take: 0 to RP_DB_HOLD_LOCKS - 1 (hold.c names them). */
#define RP_DB_HOLD_LOCKS 8
struct rp_db_stmt {
    const rp_db_driver_t *drv;
};

struct rp_db_driver {
    const char *name; /* "sqlite", "postgresql" */
    /*
     * Open a connection: target is a file path (SQLite) or a libpq connection URI/string
     * (PostgreSQL). Failure is logged with the engine's message, never with a password;
     * RP_ERR_BUSY when the server cannot be reached now (down, starting): worth trying again.
     */
    rp_err_t (*open)(const char *target, rp_db_t **out);
    void (*close)(rp_db_t *db);
    /* SQL with no parameters and no rows wanted; may hold several statements (migrations). */
    rp_err_t (*exec)(rp_db_t *db, const char *sql);
    /* Prepare (NULL on failure, logged). The store caches statements by its SQL's address. */
    rp_db_stmt_t *(*prepare)(rp_db_t *db, const char *sql);
    void (*finalize)(rp_db_stmt_t *st);
    /* Forget the last run's rows and every binding (unbound parameters are NULL). */
    void (*reset)(rp_db_stmt_t *st);
    /* The index of a named parameter (":after"), 0 when the statement has none of that name. */
    int (*param_index)(rp_db_stmt_t *st, const char *name);
    rp_err_t (*bind_int64)(rp_db_stmt_t *st, int i, int64_t v);
    rp_err_t (*bind_double)(rp_db_stmt_t *st, int i, double v);
    rp_err_t (*bind_text)(rp_db_stmt_t *st, int i, const char *v, size_t len); /* copied */
    rp_err_t (*bind_blob)(rp_db_stmt_t *st, int i, const void *v, size_t len); /* copied */
    rp_err_t (*bind_null)(rp_db_stmt_t *st, int i);
    /*
     * The next row: RP_OK with *row true (a row to read) or false (done). The first step runs the
     * statement. A unique, primary-key or foreign-key violation is RP_ERR_EXISTS; a lost
     * serialisation race or a connection lost mid-transaction is RP_ERR_BUSY (the caller may run
     * the whole transaction again); anything else RP_ERR_IO, logged.
     */
    rp_err_t (*step)(rp_db_stmt_t *st, bool *row);
    /* The current row's columns, from 0. NULL reads as 0, "" or an empty blob. The pointers stay
     * valid until the next step or reset. */
    bool (*column_null)(rp_db_stmt_t *st, int col);
    int64_t (*column_int64)(rp_db_stmt_t *st, int col);
    double (*column_double)(rp_db_stmt_t *st, int col);
    const char *(*column_text)(rp_db_stmt_t *st, int col);
    const void *(*column_blob)(rp_db_stmt_t *st, int col, size_t *len);
    /* Rows changed by the statement's last run. */
    int64_t (*changes)(rp_db_stmt_t *st);
    /*
     * Transactions. begin() takes the database's write lock for the whole transaction (SQLite:
     * BEGIN IMMEDIATE; PostgreSQL: BEGIN and a transaction-scoped advisory lock), so that two
     * writers, in one process or on two replicas, never interleave. Savepoints nest inside.
     */
    rp_err_t (*begin)(rp_db_t *db);
    rp_err_t (*commit)(rp_db_t *db);
    rp_err_t (*rollback)(rp_db_t *db);
    /*
     * Holds: locks on the database that last while their holder lives and end with it however it
     * ends (kill -9 included), seen by every process on every machine that uses the database
     * (hold.h: the serving replicas', `blobs move`'s and `restore`'s). Each on a resource of its
     * own, never a connection of the store's: SQLite, open-file-description locks on bytes of
     * TARGET-hold.lock beside the database file; PostgreSQL, session-level advisory locks on a
     * connection opened for them, whose server-side keepalives end the session of a holder whose
     * machine vanished in about a minute. Never waited for: taken or refused at once.
     */
    rp_err_t (*hold_open)(const char *target, rp_db_hold_t **out);
    /* Lock n, shared or exclusive, taken once per hold: RP_OK; RP_ERR_EXISTS when another hold
     * has it in a mode that excludes this one (a shared lock excludes an exclusive one). */
    rp_err_t (*hold_take)(rp_db_hold_t *h, int n, bool exclusive);
    void (*hold_drop)(rp_db_hold_t *h, int n);
    /* Whether the locks were lost with the resource (PostgreSQL: the session ended: a restart, a
     * terminated backend): close the hold and take them again in a new one. Looked at without a
     * round trip to the server: cheap enough for a heartbeat. */
    bool (*hold_lost)(rp_db_hold_t *h);
    void (*hold_close)(rp_db_hold_t *h); /* (every lock dropped) */
};

extern const rp_db_driver_t rp_db_sqlite;
extern const rp_db_driver_t rp_db_postgresql;

/* The driver a --database target names: "postgresql://" or "postgres://", or libpq's keyword
 * form ("host=... dbname=..."; one that starts with a keyword and '=') → PostgreSQL, anything
 * else a SQLite file. */
const rp_db_driver_t *rp_db_driver_for(const char *target);
/* A target for messages and logs, never with its password: "SQLite file PATH", or
 * "PostgreSQL database DB on HOST:PORT as USER" from libpq's own parse of it (what libpq does not
 * parse is "PostgreSQL (a target libpq cannot parse)": the text is not echoed). */
void rp_db_target_describe(const char *target, char *out, size_t cap);
/* Whether a PostgreSQL target holds a password (in the URI's userinfo, a query parameter or a
 * keyword), for the warnings that a password on the command line or in a file others read leaks. */
bool rp_db_target_has_password(const char *target);
/* msg (a libpq message about target, which may quote it) with the target's password made "***",
 * as the target holds it and as libpq decodes it, wherever it appears: for logs. */
void rp_db_scrub(const char *target, const char *msg, char *out, size_t cap);

#endif /* RAMPART_STORE_DB_H */
