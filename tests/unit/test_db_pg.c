/*
 * The PostgreSQL driver (server/store/db_pg.c) against a real PostgreSQL 15 that tests/tools/pg
 * starts for this binary ($RAMPART_TEST_PG, its URI; $RAMPART_TEST_PG_RESTART restarts it): the
 * contract of db.h (parameter forms, values at their limits, NULLs, changes, error classes,
 * transactions and savepoints, the write lock across connections, a server restarted under a
 * live connection), and the schema baseline (schema_pg.c): equal to SQLite's schema, installed
 * once by two replicas starting at once, and its rp_selects equal to rp_deployment_selects.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "rampart/log.h"
#include "store.h"
#include "store/db.h"
#include "store/db_pg.h"
#include "store/schema_pg.h"
#include "store_internal.h"

static const rp_db_driver_t *drv = &rp_db_postgresql;
static char uri[512];

static rp_db_t *connect_to(const char *target)
{
    rp_db_t *db = NULL;

    assert_int_equal(drv->open(target, &db), RP_OK);
    assert_non_null(db);
    return db;
}

static rp_db_t *connect_db(void)
{
    return connect_to(uri);
}

/* A schema of its own (NAME), made new, first in the search path of the URI put in OUT: cheaper
 * than a database (no checkpoint). */
static void fresh_schema(const char *name, char *out, size_t cap)
{
    rp_db_t *db = connect_db();
    char sql[128];

    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", name, name);
    assert_int_equal(drv->exec(db, sql), RP_OK);
    drv->close(db);
    assert_true((size_t)snprintf(out, cap, "%s%coptions=-csearch_path%%3D%s", uri,
                                 strchr(uri, '?') ? '&' : '?', name) < cap);
}

static rp_db_stmt_t *prep(rp_db_t *db, const char *sql)
{
    rp_db_stmt_t *st = drv->prepare(db, sql);

    assert_non_null(st);
    return st;
}

static bool step(rp_db_stmt_t *st)
{
    bool row = false;

    assert_int_equal(drv->step(st, &row), RP_OK);
    return row;
}

static int64_t query_int(rp_db_t *db, const char *sql)
{
    rp_db_stmt_t *st = prep(db, sql);
    int64_t v;

    assert_true(step(st));
    v = drv->column_int64(st, 0);
    drv->finalize(st);
    return v;
}

static int setup(void **state)
{
    const char *u = getenv("RAMPART_TEST_PG");

    (void)state;
    rp_log_init("test_db_pg", RP_LOG_WARN);
    if (u == NULL || getenv("RAMPART_TEST_PG_RESTART") == NULL) {
        fprintf(stderr, "run under tests/tools/pg run (RAMPART_TEST_PG unset)\n");
        return -1;
    }
    snprintf(uri, sizeof(uri), "%s", u);
    return 0;
}

/* What every connection is opened with: its name, a lock wait bounded (RP_ERR_BUSY, not a hang),
 * UTF-8; the target's own values win over them (a connect_timeout or name in the URI). */
static void test_session(void **state)
{
    rp_db_t *db = connect_db();
    char target[600];

    (void)state;
    assert_int_equal(query_int(db, "SELECT current_setting('application_name') ="
                                   " 'rampart-server' AND current_setting('lock_timeout') = '10s'"
                                   " AND current_setting('client_encoding') = 'UTF8'"),
                     1);
    drv->close(db);
    snprintf(target, sizeof(target), "%s&application_name=other", uri);
    db = connect_to(target);
    assert_int_equal(query_int(db, "SELECT current_setting('application_name') = 'other'"), 1);
    drv->close(db);
    /* a server that is not there: RP_ERR_BUSY at open (worth waiting for: --database-wait),
     * logged without the password */
    {
        char log[4096] = "", path[] = "/tmp/rampart-dbpg-log.XXXXXX";
        int fd = mkstemp(path), saved = dup(2);
        ssize_t n;
        assert_true(fd >= 0 && saved >= 0);
        fflush(stderr);
        assert_int_equal(dup2(fd, 2), 2);
        assert_int_equal(drv->open("postgresql://rampart:s3cret@/postgres?host=/nonexistent", &db),
                         RP_ERR_BUSY);
        fflush(stderr);
        assert_int_equal(dup2(saved, 2), 2);
        close(saved);
        n = pread(fd, log, sizeof(log) - 1, 0);
        close(fd);
        unlink(path);
        assert_true(n > 0);
        log[n] = '\0';
        assert_non_null(strstr(log, "cannot connect"));
        assert_null(strstr(log, "s3cret"));
    }
    /* a server that answers but refuses (no such database): waiting will not help, RP_ERR_IO */
    {
        char *q = strstr(uri, "?");
        assert_non_null(q);
        snprintf(target, sizeof(target), "postgresql:///no_such_database%s", q);
        assert_int_equal(drv->open(target, &db), RP_ERR_IO);
    }
}

/* The rewrite alone: names, repeats, "?", and what is not a parameter. */
static void test_rewrite(void **state)
{
    rp_db_pg_sql_t q;

    (void)state;
    assert_int_equal(rp_db_pg_rewrite("SELECT :a, ?, :b, :a, ?, x::text, ':c', \":d\", "
                                      "$$ :e ? $$, $t$ ? $t$, E'\\' :f', -- :g ?\n"
                                      "/* :h /* ? */ :i */ :j FROM t",
                                      &q),
                     RP_OK);
    assert_string_equal(q.sql, "SELECT $1, $2, $3, $1, $4, x::text, ':c', \":d\", "
                               "$$ :e ? $$, $t$ ? $t$, E'\\' :f', -- :g ?\n"
                               "/* :h /* ? */ :i */ $5 FROM t");
    assert_int_equal(q.nparams, 5);
    assert_int_equal(q.params[1].len, 0); /* "?" */
    assert_int_equal(q.params[4].len, 2); /* ":j" */
    rp_db_pg_sql_free(&q);
    /* "?NNN" as SQLite numbers it: NNN, and a "?" or a new name after it the next */
    assert_int_equal(rp_db_pg_rewrite("SELECT ?2, ?1, ?, :x, ?2, ?7", &q), RP_OK);
    assert_string_equal(q.sql, "SELECT $2, $1, $3, $4, $2, $7");
    assert_int_equal(q.nparams, 7);
    assert_int_equal(q.params[3].len, 2); /* ":x" is $4 */
    rp_db_pg_sql_free(&q);
    /* refused: unterminated, "?0", past PostgreSQL's limit, PostgreSQL's own "$1" */
    static const char *const bad[] = {"SELECT 'x",       "SELECT \"x",
                                      "SELECT /* x",     "SELECT ?0",
                                      "SELECT ?65536",   "SELECT ?99999999999999999999",
                                      "SELECT $1",       "SELECT $$ x",
                                      "SELECT /* /* */", "SELECT E'\\'"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(rp_db_pg_rewrite(bad[i], &q), RP_OK);
        assert_null(q.sql);
    }
}

/* DDL's type names: in column definitions and ADD COLUMN only; not in names, literals, comments,
 * casts, indexes or other statements; WITHOUT ROWID dropped; a COLLATE given kept. */
static void test_ddl(void **state)
{
    char *out = NULL;

    (void)state;
    assert_int_equal(
        rp_db_pg_ddl("ALTER TABLE t ADD COLUMN x INTEGER NOT NULL DEFAULT 0; ALTER TABLE t ADD"
                     " \"y\" TEXT; CREATE INDEX text ON t(text); SELECT CAST(a AS INTEGER) FROM t;"
                     " CREATE TABLE \"integer\" (text TEXT, \"blob\" BLOB, c REAL CHECK (c > 0),"
                     " d TEXT DEFAULT (lower('TEXT')) /* TEXT */, e TEXT COLLATE \"C\","
                     " PRIMARY KEY (text), FOREIGN KEY (c) REFERENCES x(y)) WITHOUT ROWID;"
                     " CREATE TABLE q (id INTEGER PRIMARY KEY, n INTEGER UNIQUE)",
                     &out),
        RP_OK);
    assert_string_equal(
        out, "ALTER TABLE t ADD COLUMN x BIGINT NOT NULL DEFAULT 0; ALTER TABLE t ADD \"y\" TEXT"
             " COLLATE \"C\"; CREATE INDEX text ON t(text); SELECT CAST(a AS INTEGER) FROM t;"
             " CREATE TABLE \"integer\" (text TEXT COLLATE \"C\", \"blob\" BYTEA, c DOUBLE"
             " PRECISION CHECK (c > 0), d TEXT COLLATE \"C\" DEFAULT (lower('TEXT')) /* TEXT */,"
             " e TEXT COLLATE \"C\", PRIMARY KEY (text), FOREIGN KEY (c) REFERENCES x(y)) ;"
             " CREATE TABLE q (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT"
             " UNIQUE)");
    free(out);
    /* the baseline, already in PostgreSQL's names, is left as it is */
    assert_int_equal(rp_db_pg_ddl(rp_schema_pg_baseline, &out), RP_OK);
    assert_string_equal(out, rp_schema_pg_baseline);
    free(out);
    assert_int_equal(rp_db_pg_ddl("CREATE TABLE t (a TEXT DEFAULT 'x", &out), RP_ERR_MALFORMED);
    assert_null(out);
}

static void test_placeholders(void **state)
{
    rp_db_t *db = connect_db();
    rp_db_stmt_t *st;

    (void)state;
    st = prep(db, "SELECT :a || ':b?' || ? || :a || '::' || (?)::int::text, 7::bigint,"
                  " :a = 'x' /* :c ? */ -- :d ?\n");
    assert_int_equal(drv->param_index(st, ":a"), 1);
    assert_int_equal(drv->param_index(st, ":b"), 0);
    assert_int_equal(drv->param_index(st, ":c"), 0);
    assert_int_equal(drv->param_index(st, ":d"), 0);
    assert_int_equal(drv->bind_text(st, 1, "x", 1), RP_OK);
    assert_int_equal(drv->bind_text(st, 2, "y", 1), RP_OK);
    assert_int_equal(drv->bind_int64(st, 3, 42), RP_OK);
    assert_int_equal(drv->bind_text(st, 4, "z", 1), RP_ERR_INVALID_ARG); /* no 4th */
    assert_int_equal(drv->bind_int64(st, 0, 1), RP_ERR_INVALID_ARG);
    assert_true(step(st));
    assert_string_equal(drv->column_text(st, 0), "x:b?yx::42");
    assert_int_equal(drv->column_int64(st, 1), 7);
    assert_int_equal(drv->column_int64(st, 2), 1); /* a boolean reads as 1 */
    assert_string_equal(drv->column_text(st, 2), "1");
    assert_false(step(st));
    /* reset forgets the bindings: unbound is NULL */
    drv->reset(st);
    assert_int_equal(drv->bind_text(st, 2, "y", 1), RP_OK);
    assert_true(step(st));
    assert_true(drv->column_null(st, 0));
    assert_string_equal(drv->column_text(st, 0), "");
    drv->finalize(st);
    /* bad SQL fails at prepare, as with SQLite */
    assert_null(drv->prepare(db, "SELEC 1"));
    assert_null(drv->prepare(db, "SELECT ?0"));
    drv->close(db);
}

static void test_values(void **state)
{
    rp_db_t *db = connect_db();
    rp_db_stmt_t *ins, *sel;
    uint8_t blob[256];
    const char *utf8 = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80";
    const void *b;
    size_t len;
    bool row;

    (void)state;
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(255 - i); /* NULs and every byte */
    assert_int_equal(drv->exec(db, "DROP TABLE IF EXISTS t_values;"
                                   "CREATE TABLE t_values (k BIGINT PRIMARY KEY, i BIGINT,"
                                   " d DOUBLE PRECISION, t TEXT, b BYTEA)"),
                     RP_OK);
    ins = prep(db, "INSERT INTO t_values (k, i, d, t, b) VALUES (:k, :i, :d, :t, :b)");
    sel = prep(db, "SELECT i, d, t, b FROM t_values WHERE k = ?");
    /* 1: extremes and bytes; 2: the other extreme, empty text and blob; 3: NULLs */
    assert_int_equal(drv->bind_int64(ins, drv->param_index(ins, ":k"), 1), RP_OK);
    assert_int_equal(drv->bind_int64(ins, drv->param_index(ins, ":i"), INT64_MIN), RP_OK);
    assert_int_equal(drv->bind_double(ins, drv->param_index(ins, ":d"), -1.5e300), RP_OK);
    assert_int_equal(drv->bind_text(ins, drv->param_index(ins, ":t"), utf8, strlen(utf8)), RP_OK);
    assert_int_equal(drv->bind_blob(ins, drv->param_index(ins, ":b"), blob, sizeof(blob)), RP_OK);
    assert_false(step(ins));
    assert_int_equal(drv->changes(ins), 1);
    drv->reset(ins);
    assert_int_equal(drv->bind_int64(ins, 1, 2), RP_OK);
    assert_int_equal(drv->bind_int64(ins, 2, INT64_MAX), RP_OK);
    assert_int_equal(drv->bind_double(ins, 3, 0.1), RP_OK);
    assert_int_equal(drv->bind_text(ins, 4, "", 0), RP_OK);
    assert_int_equal(drv->bind_blob(ins, 5, "", 0), RP_OK);
    assert_false(step(ins));
    drv->reset(ins);
    assert_int_equal(drv->bind_int64(ins, 1, 3), RP_OK);
    assert_int_equal(drv->bind_null(ins, 2), RP_OK);
    assert_false(step(ins)); /* 3..5 unbound: NULL */
    /* text holds no NUL in PostgreSQL: refused at bind, not truncated */
    assert_int_equal(drv->bind_text(ins, 4, "a\0b", 3), RP_ERR_INVALID_ARG);
    /* nor text that is not UTF-8: the server's data exception (22021) is the value's fault,
     * RP_ERR_INVALID_ARG (a 400 for a request), not a failure of the service's; nothing kept */
    drv->reset(ins);
    assert_int_equal(drv->bind_int64(ins, 1, 4), RP_OK);
    assert_int_equal(drv->bind_text(ins, 4, "\xff\xfe", 2), RP_OK);
    assert_int_equal(drv->step(ins, &row), RP_ERR_INVALID_ARG);

    assert_int_equal(drv->bind_int64(sel, 1, 1), RP_OK);
    assert_true(step(sel));
    assert_true(drv->column_int64(sel, 0) == INT64_MIN);
    assert_true(drv->column_double(sel, 1) == -1.5e300);
    assert_string_equal(drv->column_text(sel, 2), utf8);
    b = drv->column_blob(sel, 3, &len);
    assert_int_equal(len, sizeof(blob));
    assert_memory_equal(b, blob, sizeof(blob));
    assert_false(drv->column_null(sel, 3));
    assert_true(drv->column_null(sel, 9)); /* no such column: NULL, not a crash */
    assert_false(step(sel));
    drv->reset(sel);
    assert_int_equal(drv->bind_int64(sel, 1, 2), RP_OK);
    assert_true(step(sel));
    assert_true(drv->column_int64(sel, 0) == INT64_MAX);
    assert_true(drv->column_double(sel, 1) == 0.1);
    assert_string_equal(drv->column_text(sel, 2), "");
    assert_false(drv->column_null(sel, 2));
    drv->column_blob(sel, 3, &len);
    assert_int_equal(len, 0);
    assert_false(drv->column_null(sel, 3)); /* empty, not NULL */
    drv->reset(sel);
    assert_int_equal(drv->bind_int64(sel, 1, 3), RP_OK);
    assert_true(step(sel));
    for (int c = 0; c < 4; c++)
        assert_true(drv->column_null(sel, c));
    assert_int_equal(drv->column_int64(sel, 0), 0);
    assert_true(drv->column_double(sel, 1) == 0);
    assert_string_equal(drv->column_text(sel, 2), "");
    drv->column_blob(sel, 3, &len);
    assert_int_equal(len, 0);
    drv->finalize(sel);

    /* changes(): rows updated, none deleted, and a sum (numeric) read as an integer */
    sel = prep(db, "UPDATE t_values SET i = 5 WHERE k >= ?");
    assert_int_equal(drv->bind_int64(sel, 1, 1), RP_OK);
    assert_false(step(sel));
    assert_int_equal(drv->changes(sel), 3);
    drv->finalize(sel);
    sel = prep(db, "DELETE FROM t_values WHERE k > 100");
    assert_false(step(sel));
    assert_int_equal(drv->changes(sel), 0);
    drv->finalize(sel);
    assert_int_equal(query_int(db, "SELECT sum(i) FROM t_values"), 15);
    drv->finalize(ins);
    drv->close(db);
}

static int64_t count_rows(rp_db_t *db)
{
    return query_int(db, "SELECT count(*) FROM t_txn");
}

static rp_err_t insert_key(rp_db_t *db, int64_t k)
{
    rp_db_stmt_t *st = prep(db, "INSERT INTO t_txn (k) VALUES (?)");
    bool row;
    rp_err_t err;

    assert_int_equal(drv->bind_int64(st, 1, k), RP_OK);
    err = drv->step(st, &row);
    drv->finalize(st);
    return err;
}

static void test_transactions(void **state)
{
    rp_db_t *db = connect_db();

    (void)state;
    assert_int_equal(drv->exec(db, "DROP TABLE IF EXISTS t_txn;"
                                   "CREATE TABLE t_txn (k BIGINT PRIMARY KEY)"),
                     RP_OK);
    /* a duplicate key is RP_ERR_EXISTS, outside and inside a transaction; inside, it undoes
     * only itself (as in SQLite): the transaction goes on and commits */
    assert_int_equal(insert_key(db, 1), RP_OK);
    assert_int_equal(insert_key(db, 1), RP_ERR_EXISTS);
    assert_int_equal(drv->begin(db), RP_OK);
    assert_int_equal(insert_key(db, 2), RP_OK);
    assert_int_equal(insert_key(db, 1), RP_ERR_EXISTS);
    assert_int_equal(insert_key(db, 3), RP_OK);
    assert_int_equal(drv->commit(db), RP_OK);
    assert_int_equal(count_rows(db), 3);
    /* rollback keeps nothing */
    assert_int_equal(drv->begin(db), RP_OK);
    assert_int_equal(insert_key(db, 4), RP_OK);
    assert_int_equal(drv->begin(db), RP_ERR_INVALID_ARG); /* no nesting but savepoints */
    assert_int_equal(drv->rollback(db), RP_OK);
    assert_int_equal(count_rows(db), 3);
    /* savepoints nest inside */
    assert_int_equal(drv->begin(db), RP_OK);
    assert_int_equal(insert_key(db, 5), RP_OK);
    assert_int_equal(drv->exec(db, "SAVEPOINT job"), RP_OK);
    assert_int_equal(insert_key(db, 6), RP_OK);
    assert_int_equal(drv->exec(db, "ROLLBACK TO job"), RP_OK);
    assert_int_equal(drv->exec(db, "RELEASE job"), RP_OK);
    assert_int_equal(drv->exec(db, "SAVEPOINT job"), RP_OK);
    assert_int_equal(insert_key(db, 7), RP_OK);
    assert_int_equal(drv->exec(db, "RELEASE job"), RP_OK);
    assert_int_equal(drv->commit(db), RP_OK);
    assert_int_equal(query_int(db, "SELECT string_agg(k::text, ',' ORDER BY k) = '1,2,3,5,7'"
                                   " FROM t_txn"),
                     1);
    /* an unexpected failure in a transaction fails its commit: nothing of it is kept */
    assert_int_equal(drv->begin(db), RP_OK);
    assert_int_equal(insert_key(db, 8), RP_OK);
    assert_int_equal(drv->exec(db, "SELECT k FROM no_such_table"), RP_ERR_IO);
    assert_int_equal(drv->commit(db), RP_ERR_IO);
    assert_int_equal(count_rows(db), 5);
    assert_int_equal(drv->commit(db), RP_ERR_INVALID_ARG);
    drv->close(db);
}

struct waiter {
    rp_db_t *db;
    rp_err_t begun;
    int64_t seen; /* rows it saw once it held the lock */
};

static void *wait_for_lock(void *arg)
{
    struct waiter *w = arg;

    w->begun = drv->begin(w->db);
    if (w->begun == RP_OK) {
        w->seen = count_rows(w->db);
        w->begun = drv->commit(w->db);
    }
    return NULL;
}

/* begin() takes the write lock: a second connection's begin() waits for the first's commit, and
 * then sees what it wrote, as two replicas' writers take turns. */
static void test_write_lock(void **state)
{
    rp_db_t *a = connect_db(), *watch = connect_db();
    struct waiter w = {.db = connect_db(), .begun = RP_ERR_IO, .seen = -1};
    pthread_t t;
    struct timespec deadline, now;

    (void)state;
    assert_int_equal(drv->exec(a, "DROP TABLE IF EXISTS t_txn;"
                                  "CREATE TABLE t_txn (k BIGINT PRIMARY KEY)"),
                     RP_OK);
    assert_int_equal(drv->begin(a), RP_OK);
    assert_int_equal(insert_key(a, 1), RP_OK);
    assert_int_equal(pthread_create(&t, NULL, wait_for_lock, &w), 0);
    /* the state: the other backend waits on the advisory lock (bounded by a deadline) */
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 20;
    while (query_int(watch, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                            " AND NOT granted") != 1) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        assert_true(now.tv_sec < deadline.tv_sec);
        usleep(2000);
    }
    assert_int_equal(w.seen, -1);
    /* a writer that waits past its lock timeout loses the race (RP_ERR_BUSY) and leaves no
     * transaction behind: it begins again once the lock is free */
    assert_int_equal(drv->exec(watch, "SET lock_timeout = '50ms'"), RP_OK);
    assert_int_equal(drv->begin(watch), RP_ERR_BUSY);
    assert_int_equal(drv->commit(a), RP_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.begun, RP_OK);
    assert_int_equal(w.seen, 1);
    assert_int_equal(drv->begin(watch), RP_OK);
    assert_int_equal(insert_key(watch, 2), RP_OK);
    assert_int_equal(drv->commit(watch), RP_OK);
    assert_int_equal(count_rows(a), 2);
    drv->close(w.db);
    drv->close(watch);
    drv->close(a);
}

static void restart_server(void)
{
    assert_int_equal(system(getenv("RAMPART_TEST_PG_RESTART")), 0);
}

/* The server restarted under live connections (one restart, three connections: the test's time):
 * a read reconnects and answers; a write is RP_ERR_BUSY (the caller may retry) and the next one
 * reconnects; a transaction the restart ended stays failed (never half-kept, never continued on
 * a new connection) until it is rolled back. */
static void test_restart(void **state)
{
    rp_db_t *db = connect_db(), *txn = connect_db(), *idle = connect_db();
    rp_db_stmt_t *st, *ins;
    bool row;

    (void)state;
    assert_int_equal(drv->exec(db, "DROP TABLE IF EXISTS t_txn;"
                                   "CREATE TABLE t_txn (k BIGINT PRIMARY KEY)"),
                     RP_OK);
    st = prep(db, "SELECT count(*) FROM t_txn WHERE k > ?");
    assert_int_equal(drv->bind_int64(st, 1, 0), RP_OK);
    assert_true(step(st));
    drv->reset(st);
    assert_int_equal(drv->begin(txn), RP_OK);
    assert_int_equal(insert_key(txn, 1), RP_OK);
    ins = prep(idle, "INSERT INTO t_txn (k) VALUES (?)");

    restart_server();
    /* idle: a read reconnects and answers (with a statement prepared before); a write is
     * RP_ERR_BUSY once (done or not: the caller's to know), then reconnects */
    assert_int_equal(drv->bind_int64(st, 1, 0), RP_OK);
    assert_true(step(st));
    assert_int_equal(drv->column_int64(st, 0), 0);
    drv->reset(st);
    assert_int_equal(drv->rollback(idle), RP_OK); /* nothing to roll back: no effect */
    assert_int_equal(drv->bind_int64(ins, 1, 10), RP_OK);
    assert_int_equal(drv->step(ins, &row), RP_ERR_BUSY);
    drv->reset(ins);
    assert_int_equal(drv->bind_int64(ins, 1, 10), RP_OK);
    assert_false(step(ins));
    assert_int_equal(drv->changes(ins), 1);
    drv->finalize(ins);
    /* mid-transaction */
    assert_int_equal(insert_key(txn, 2), RP_ERR_BUSY);
    assert_int_equal(insert_key(txn, 3), RP_ERR_BUSY); /* not autocommitted on a new connection */
    assert_int_equal(drv->commit(txn), RP_ERR_BUSY);
    assert_int_equal(drv->rollback(txn), RP_OK);
    assert_int_equal(drv->begin(txn), RP_OK);
    assert_int_equal(insert_key(txn, 4), RP_OK);
    assert_int_equal(drv->commit(txn), RP_OK);
    assert_int_equal(count_rows(db), 2);
    drv->finalize(st);
    drv->close(idle);
    drv->close(txn);
    drv->close(db);
}

struct installer {
    const char *target;
    rp_err_t err;
    int version;
};

static void *install(void *arg)
{
    struct installer *in = arg;
    rp_db_t *db = NULL;

    in->err = drv->open(in->target, &db);
    if (in->err == RP_OK)
        in->err = rp_schema_pg_install(db, &in->version);
    drv->close(db);
    return NULL;
}

/* The baseline, installed once for the binary (its DDL takes a second or two on a loaded
 * machine): by two replicas starting at once on a new database, which must install it once. */
static char baseline[1024];

static const char *baseline_target(void)
{
    char target[1024];
    struct installer in[2];
    pthread_t t[2];
    rp_db_t *db;
    int version;

    if (baseline[0] != '\0')
        return baseline;
    fresh_schema("rp_baseline", target, sizeof(target));
    for (int i = 0; i < 2; i++) {
        in[i] = (struct installer){.target = target, .err = RP_ERR_IO, .version = -1};
        assert_int_equal(pthread_create(&t[i], NULL, install, &in[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(in[i].err, RP_OK);
        assert_int_equal(in[i].version, RP_SCHEMA_PG_BASELINE);
    }
    db = connect_to(target);
    assert_int_equal(query_int(db, "SELECT count(*) FROM schema_version"), 1);
    /* and again: nothing to do */
    assert_int_equal(rp_schema_pg_install(db, &version), RP_OK);
    assert_int_equal(version, RP_SCHEMA_PG_BASELINE);
    assert_int_equal(query_int(db, "SELECT count(*) FROM schema_version"), 1);
    drv->close(db);
    snprintf(baseline, sizeof(baseline), "%s", target);
    return baseline;
}

static void test_install_race(void **state)
{
    (void)state;
    baseline[0] = '\0';
    assert_non_null(baseline_target());
}

/* rp_selects in PostgreSQL is rp_deployment_selects: 2,000 (deployment, device) pairs, every
 * rollout from 0 to 100, in one query (the pairs as two lists). */
#define SELECT_PAIRS 2000
static void test_selects(void **state)
{
    char dep[RP_ID_SIZE], dev[RP_DEVICE_ID_SIZE];
    char *deps = calloc(SELECT_PAIRS, RP_ID_SIZE), *devs = calloc(SELECT_PAIRS, RP_DEVICE_ID_SIZE);
    char *want = malloc(SELECT_PAIRS * 101 + 1);
    size_t ndeps = 0, ndevs = 0, nwant = 0, selected = 0;
    rp_db_t *db;
    rp_db_stmt_t *st;
    int version;
    unsigned seed = 12345;

    (void)state;
    assert_non_null(deps);
    assert_non_null(devs);
    assert_non_null(want);
    for (int i = 0; i < SELECT_PAIRS; i++) {
        rp_deployment_t d;
        memset(&d, 0, sizeof(d));
        seed = seed * 1103515245u + 12345u;
        snprintf(dep, sizeof(dep), "d_%08x%08x%08x", seed, seed ^ 0x5a5a5a5au, (unsigned)i);
        snprintf(dev, sizeof(dev), "%08x%08x%048d", seed * 7u, (unsigned)i * 31u, i);
        snprintf(d.id, sizeof(d.id), "%s", dep);
        for (int r = 0; r <= 100; r++) {
            d.rollout = r;
            want[nwant] = rp_deployment_selects(&d, dev) ? '1' : '0';
            selected += want[nwant++] == '1';
        }
        ndeps += (size_t)sprintf(deps + ndeps, "%s%s", i ? "," : "", dep);
        ndevs += (size_t)sprintf(devs + ndevs, "%s%s", i ? "," : "", dev);
    }
    want[nwant] = '\0';
    /* about half of all selections (not all, nor none) */
    assert_true(selected > nwant / 3 && selected < nwant * 2 / 3);

    db = connect_to(baseline_target());
    assert_int_equal(rp_schema_pg_install(db, &version), RP_OK);
    assert_int_equal(version, RP_SCHEMA_PG_BASELINE);
    st = prep(db, "SELECT string_agg(CASE WHEN rp_selects(p.dep, r, p.dev) THEN '1' ELSE '0' END,"
                  " '' ORDER BY p.n, r) FROM unnest(string_to_array(:deps, ','),"
                  " string_to_array(:devs, ',')) WITH ORDINALITY AS p(dep, dev, n),"
                  " generate_series(0, 100) AS r");
    assert_int_equal(drv->bind_text(st, drv->param_index(st, ":deps"), deps, ndeps), RP_OK);
    assert_int_equal(drv->bind_text(st, drv->param_index(st, ":devs"), devs, ndevs), RP_OK);
    assert_true(step(st));
    assert_int_equal(strlen(drv->column_text(st, 0)), nwant);
    assert_string_equal(drv->column_text(st, 0), want);
    drv->finalize(st);
    /* NULL in, NULL out (as in SQLite) */
    assert_int_equal(query_int(db, "SELECT rp_selects(NULL, 50, 'x') IS NULL"), 1);
    drv->close(db);
    free(deps);
    free(devs);
    free(want);
}

/* A catalogue as sorted lines, one per table's columns, key, unique constraint, foreign key and
 * index, in one notation for both engines. */
struct lines {
    char **v;
    size_t n, cap;
};

static void add_line(struct lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_line(struct lines *l, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    assert_true(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    l->v[l->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *sqlite_type(const char *t)
{
    if (strcmp(t, "INTEGER") == 0)
        return "bigint";
    if (strcmp(t, "TEXT") == 0)
        return "text";
    if (strcmp(t, "BLOB") == 0)
        return "bytea";
    if (strcmp(t, "REAL") == 0)
        return "double precision";
    return t;
}

/* A column of an index: its name, or "<expr>" for an expression. */
static const char *index_col(const char *c)
{
    if (c == NULL || c[0] == '\0')
        return "<expr>";
    for (const char *p = c; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return "<expr>";
    return c;
}

/* A default as written: PostgreSQL's casts of literals ('x'::text) dropped. */
static void default_norm(const char *d, char *out, size_t cap)
{
    const char *cast = d != NULL ? strstr(d, "::") : NULL;

    if (d == NULL)
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.*s", cast != NULL ? (int)(cast - d) : (int)strlen(d), d);
}

static void sqlite_catalogue(const char *path, struct lines *out)
{
    sqlite3 *db;
    sqlite3_stmt *tables, *st;
    char sql[256], dflt[128];

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                                        " AND name NOT LIKE 'sqlite_%'",
                                        -1, &tables, NULL),
                     SQLITE_OK);
    while (sqlite3_step(tables) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(tables, 0);
        char cols[4096] = "", pk[512] = "";
        int npk = 0;

        /* columns in order, and the primary key in its own order */
        snprintf(sql, sizeof(sql),
                 "SELECT name, type, \"notnull\", dflt_value, pk FROM"
                 " pragma_table_info('%s') ORDER BY cid",
                 t);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            size_t n = strlen(cols);
            default_norm((const char *)sqlite3_column_text(st, 3), dflt, sizeof(dflt));
            snprintf(
                cols + n, sizeof(cols) - n, "%s%s %s%s %s", n ? ", " : "",
                sqlite3_column_text(st, 0), sqlite_type((const char *)sqlite3_column_text(st, 1)),
                sqlite3_column_int(st, 2) || sqlite3_column_int(st, 4) ? " not null" : "", dflt);
            if (sqlite3_column_int(st, 4) > npk)
                npk = sqlite3_column_int(st, 4);
        }
        sqlite3_finalize(st);
        add_line(out, "table %s (%s)", t, cols);
        for (int k = 1; k <= npk; k++) {
            snprintf(sql, sizeof(sql), "SELECT name FROM pragma_table_info('%s') WHERE pk = %d", t,
                     k);
            assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
            assert_int_equal(sqlite3_step(st), SQLITE_ROW);
            size_t n = strlen(pk);
            snprintf(pk + n, sizeof(pk) - n, "%s%s", n ? "," : "", sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
        }
        if (npk > 0)
            add_line(out, "primary key %s (%s)", t, pk);

        /* foreign keys, each with its columns in order */
        snprintf(sql, sizeof(sql),
                 "SELECT id, \"table\", group_concat(\"from\"),"
                 " group_concat(\"to\") FROM (SELECT * FROM"
                 " pragma_foreign_key_list('%s') ORDER BY id, seq) GROUP BY id",
                 t);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW)
            add_line(out, "foreign key %s (%s) -> %s (%s)", t, sqlite3_column_text(st, 2),
                     sqlite3_column_text(st, 1), sqlite3_column_text(st, 3));
        sqlite3_finalize(st);

        /* indexes: made by CREATE INDEX by name; UNIQUE constraints by their columns */
        snprintf(sql, sizeof(sql),
                 "SELECT name, \"unique\", origin, partial FROM"
                 " pragma_index_list('%s') WHERE origin <> 'pk'",
                 t);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            bool constraint = strcmp((const char *)sqlite3_column_text(st, 2), "u") == 0;
            char icols[512] = "";
            sqlite3_stmt *ci;
            snprintf(sql, sizeof(sql),
                     "SELECT name FROM pragma_index_xinfo('%s') WHERE key"
                     " ORDER BY seqno",
                     name);
            assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &ci, NULL), SQLITE_OK);
            while (sqlite3_step(ci) == SQLITE_ROW) {
                size_t n = strlen(icols);
                snprintf(icols + n, sizeof(icols) - n, "%s%s", n ? "," : "",
                         index_col((const char *)sqlite3_column_text(ci, 0)));
            }
            sqlite3_finalize(ci);
            if (constraint)
                add_line(out, "unique %s (%s)", t, icols);
            else
                add_line(out, "index %s on %s (%s)%s%s", name, t, icols,
                         sqlite3_column_int(st, 1) ? " unique" : "",
                         sqlite3_column_int(st, 3) ? " partial" : "");
        }
        sqlite3_finalize(st);
    }
    sqlite3_finalize(tables);
    sqlite3_close(db);
    qsort(out->v, out->n, sizeof(*out->v), cmp_str);
}

static void pg_catalogue(rp_db_t *db, struct lines *out)
{
    rp_db_stmt_t *st;
    char dflt[128];
    /* (current_schema(): the baseline's tables are in the connection's first schema) */
    static const char cols_sql[] =
        "SELECT c.table_name, string_agg(c.column_name || ' ' || c.data_type ||"
        " CASE WHEN c.is_nullable = 'NO' THEN ' not null' ELSE '' END || ' ' ||"
        " coalesce(c.column_default, '-'), '|' ORDER BY c.ordinal_position),"
        " bool_and(c.data_type <> 'text' OR c.collation_name = 'C')"
        " FROM information_schema.columns c WHERE c.table_schema = current_schema()"
        " GROUP BY c.table_name";
    static const char keys_sql[] =
        "SELECT k.contype, t.relname, f.relname,"
        " (SELECT string_agg(a.attname, ',' ORDER BY u.n) FROM unnest(k.conkey) WITH ORDINALITY"
        "  AS u(att, n) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.att),"
        " (SELECT string_agg(a.attname, ',' ORDER BY u.n) FROM unnest(k.confkey) WITH ORDINALITY"
        "  AS u(att, n) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.att)"
        " FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid"
        " LEFT JOIN pg_class f ON f.oid = k.confrelid"
        " WHERE t.relnamespace = current_schema()::regnamespace AND k.contype IN ('p', 'u', 'f')";
    static const char index_sql[] =
        "SELECT i.relname, t.relname, x.indisunique, x.indpred IS NOT NULL,"
        " (SELECT string_agg(pg_get_indexdef(x.indexrelid, k, true), '|' ORDER BY k)"
        "  FROM generate_series(1, x.indnkeyatts) AS k)"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class t ON t.oid = x.indrelid"
        " WHERE t.relnamespace = current_schema()::regnamespace"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)";

    st = prep(db, cols_sql);
    while (step(st)) {
        char cols[4096] = "", *list = strdup(drv->column_text(st, 1)), *save = NULL;
        assert_non_null(list);
        for (char *c = strtok_r(list, "|", &save); c != NULL; c = strtok_r(NULL, "|", &save)) {
            /* name type[ not null] default: the default's cast dropped; identity columns have
             * none, as SQLite's rowid keys have none */
            char *sp = strrchr(c, ' ');
            size_t n = strlen(cols);
            *sp = '\0';
            default_norm(strcmp(sp + 1, "-") == 0 ? NULL : sp + 1, dflt, sizeof(dflt));
            snprintf(cols + n, sizeof(cols) - n, "%s%s %s", n ? ", " : "", c, dflt);
        }
        free(list);
        add_line(out, "table %s (%s)", drv->column_text(st, 0), cols);
        assert_int_equal(drv->column_int64(st, 2), 1); /* every text column is COLLATE "C" */
    }
    drv->finalize(st);
    st = prep(db, keys_sql);
    while (step(st)) {
        const char *type = drv->column_text(st, 0), *t = drv->column_text(st, 1);
        if (strcmp(type, "p") == 0)
            add_line(out, "primary key %s (%s)", t, drv->column_text(st, 3));
        else if (strcmp(type, "u") == 0)
            add_line(out, "unique %s (%s)", t, drv->column_text(st, 3));
        else
            add_line(out, "foreign key %s (%s) -> %s (%s)", t, drv->column_text(st, 3),
                     drv->column_text(st, 2), drv->column_text(st, 4));
    }
    drv->finalize(st);
    st = prep(db, index_sql);
    while (step(st)) {
        char icols[512] = "", *list = strdup(drv->column_text(st, 4)), *save = NULL;
        assert_non_null(list);
        for (char *c = strtok_r(list, "|", &save); c != NULL; c = strtok_r(NULL, "|", &save)) {
            size_t n = strlen(icols);
            snprintf(icols + n, sizeof(icols) - n, "%s%s", n ? "," : "", index_col(c));
        }
        free(list);
        add_line(out, "index %s on %s (%s)%s%s", drv->column_text(st, 0), drv->column_text(st, 1),
                 icols, drv->column_int64(st, 2) ? " unique" : "",
                 drv->column_int64(st, 3) ? " partial" : "");
    }
    drv->finalize(st);
    qsort(out->v, out->n, sizeof(*out->v), cmp_str);
}

/* The PostgreSQL baseline and the migrations after it make SQLite's schema at its newest version:
 * same tables, columns in the
 * same order with the same types (mapped), nullability and defaults, keys, unique constraints,
 * foreign keys and indexes. */
static void test_schema_equals_sqlite(void **state)
{
    char dir[] = "/tmp/rampart-dbpg.XXXXXX", path[256];
    rp_store_t *s = NULL;
    struct lines lite = {0}, post = {0};
    rp_db_t *db;
    int version;
    size_t i, j;
    bool same;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(rp_store_open(dir, &s), RP_OK);
    assert_int_equal(rp_store_schema_version(s), rp_store_schema_newest);
    assert_true(rp_store_schema_newest >= RP_SCHEMA_PG_BASELINE);
    rp_store_close(s);
    snprintf(path, sizeof(path), "%s/rampart.db", dir);
    sqlite_catalogue(path, &lite);

    /* the baseline, then the migrations after it as the store runs them (in SQLite's DDL, mapped
     * by the driver) */
    db = connect_to(baseline_target());
    assert_int_equal(rp_schema_pg_install(db, &version), RP_OK);
    drv->close(db);
    assert_int_equal(rp_store_open_target(baseline_target(), &s), RP_OK);
    assert_int_equal(rp_store_schema_version(s), rp_store_schema_newest);
    rp_store_close(s);
    db = connect_to(baseline_target());
    pg_catalogue(db, &post);
    drv->close(db);

    /* SQLite's own CREATE TABLE statements, through the driver's exec() (its type mapping, the
     * one a migration written once for both takes), make the baseline's tables, keys and foreign
     * keys (their indexes aside: SQLite's are made apart, under names PostgreSQL's constraints
     * would take) */
    {
        sqlite3 *lite_db;
        sqlite3_stmt *ddl;
        char target[1024];
        struct lines mapped = {0};
        size_t k = 0;
        rp_db_t *m;

        fresh_schema("rp_mapped", target, sizeof(target));
        m = connect_to(target);
        assert_int_equal(sqlite3_open_v2(path, &lite_db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(lite_db,
                                            "SELECT sql FROM sqlite_master WHERE type = 'table'"
                                            " ORDER BY rowid",
                                            -1, &ddl, NULL),
                         SQLITE_OK);
        while (sqlite3_step(ddl) == SQLITE_ROW)
            assert_int_equal(drv->exec(m, (const char *)sqlite3_column_text(ddl, 0)), RP_OK);
        sqlite3_finalize(ddl);
        sqlite3_close(lite_db);
        pg_catalogue(m, &mapped);
        drv->close(m);
        for (i = 0; i < post.n; i++) {
            if (strncmp(post.v[i], "index ", 6) == 0)
                continue;
            assert_true(k < mapped.n);
            assert_string_equal(mapped.v[k], post.v[i]);
            k++;
        }
        assert_int_equal(k, mapped.n);
        for (i = 0; i < mapped.n; i++)
            free(mapped.v[i]);
        free(mapped.v);
    }

    /* every difference printed, then the verdict */
    same = lite.n == post.n;
    for (i = 0, j = 0; i < lite.n || j < post.n;) {
        int c = i == lite.n ? 1 : j == post.n ? -1 : strcmp(lite.v[i], post.v[j]);
        if (c == 0) {
            i++, j++;
            continue;
        }
        same = false;
        if (c < 0)
            fprintf(stderr, "only in SQLite:     %s\n", lite.v[i++]);
        else
            fprintf(stderr, "only in PostgreSQL: %s\n", post.v[j++]);
    }
    assert_true(lite.n > 100); /* it did read them: 47 tables and their keys and indexes */
    assert_true(same);
    for (i = 0; i < lite.n; i++)
        free(lite.v[i]);
    for (i = 0; i < post.n; i++)
        free(post.v[i]);
    free(lite.v);
    free(post.v);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_ddl),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_placeholders),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_write_lock),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_install_race),
        cmocka_unit_test(test_selects),
        cmocka_unit_test(test_schema_equals_sqlite),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
