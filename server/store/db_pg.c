/*
 * The PostgreSQL driver of the SQL contract (db.h), through libpq: one connection per rp_db,
 * statements prepared once per connection (PQprepare, re-prepared after a reconnection), results
 * in text format, blobs bound in binary. It owns what differs from SQLite below the store's SQL:
 * the parameter forms and DDL's type names (db_pg_sql.c), error classes by SQLSTATE, the write lock
 * (an advisory lock held for the transaction), a failed statement that leaves its transaction
 * usable (SQLite's statement-level rollback), and a connection lost and made again.
 */
#include "store/db.h"
#include "store/db_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "rampart/log.h"

/*
 * The write lock every writer of one database takes, in every replica: begin() holds it for the
 * transaction, as SQLite's BEGIN IMMEDIATE holds the file's. Persisted in no file, but every
 * replica of one database must use the same number ("RAMPARTW" in ASCII).
 */
#define PG_WRITE_LOCK "5927103591684920407"
/* How long a writer waits for the lock (or any row lock) before RP_ERR_BUSY: SQLite's busy
 * timeout in store_sqlite.c. */
#define PG_LOCK_TIMEOUT "10s"

/* PostgreSQL's type OIDs (catalog/pg_type_d.h, fixed since 7.x) of the columns read specially. */
#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17

typedef struct pg_db {
    rp_db_t base;
    PGconn *conn;
    unsigned generation; /* bumped by each reconnection: statements prepared before are gone */
    unsigned next_name;  /* statement names, unique for the connection's life */
    bool in_txn;
    bool txn_lost; /* the connection was lost mid-transaction: RP_ERR_BUSY until rollback() */
    bool lost;     /* the last RP_ERR_BUSY was a lost connection (not a lost race) */
} pg_db_t;

typedef struct pg_stmt {
    rp_db_stmt_t base;
    pg_db_t *db;
    char *orig; /* the SQL as given: the parameter names point into it */
    rp_db_pg_sql_t q;
    char name[24];
    unsigned prepared_gen; /* the connection generation it was prepared on; 0: not yet */
    bool writes;   /* not a plain SELECT: runs in a savepoint of its own inside a transaction */
    char **values; /* nparams each: NULL for SQL NULL */
    int *lengths;
    int *formats;
    PGresult *res;
    int row, nrows;
    bool ran;
    int64_t changes;
    char **unescaped; /* per column of the current row: bytea decoded (NUL-terminated) */
    size_t *unescaped_len;
    int ncols;
} pg_stmt_t;

static pg_db_t *pg(rp_db_t *db)
{
    return (pg_db_t *)db;
}

static pg_stmt_t *pst(rp_db_stmt_t *st)
{
    return (pg_stmt_t *)st;
}

/* The server's notices (NOTICE: relation exists, skipping) go to the debug log, not stderr. */
static void pg_notice(void *arg, const char *message)
{
    (void)arg;
    rp_log_debug("database: %s", message);
}

/* What every connection runs first, again after each reconnection. */
static bool session_setup(pg_db_t *db)
{
    PGresult *r = PQexec(db->conn, "SET lock_timeout = '" PG_LOCK_TIMEOUT "'");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok)
        rp_log_error("database: %s", PQerrorMessage(db->conn));
    PQclear(r);
    return ok;
}

static bool sqlstate_is(const char *state, const char *prefix)
{
    return state != NULL && strncmp(state, prefix, strlen(prefix)) == 0;
}

/* The connection is gone (or going): the server's shutdown, a network error, a reset socket. */
static bool connection_lost(pg_db_t *db, const char *state)
{
    return PQstatus(db->conn) == CONNECTION_BAD || sqlstate_is(state, "08") ||
           sqlstate_is(state, "57P01") || sqlstate_is(state, "57P02") ||
           sqlstate_is(state, "57P03");
}

/*
 * The error class of a failed result (NULL: libpq returned none). Logged here except what the
 * caller expects to handle (a duplicate key), with the server's message: never the connection
 * string, which may hold a password.
 */
static rp_err_t classify(pg_db_t *db, PGresult *r, const char *what)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(db->conn);

    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(db->conn);
    db->lost = false;
    if (connection_lost(db, state)) {
        rp_log_warn("database: connection lost (%s): %s", what, msg);
        db->lost = true;
        if (db->in_txn)
            db->txn_lost = true;
        db->in_txn = false;
        return RP_ERR_BUSY;
    }
    if (sqlstate_is(state, "23")) /* unique, foreign key, not null, check */
        return RP_ERR_EXISTS;
    /* A data exception: a value the engine cannot hold (22021: text that is not UTF-8, which
     * SQLite would have kept), too long, out of range. The request's, not the service's fault: the
     * request layer refuses such text first (http.c), this is the second line. */
    if (sqlstate_is(state, "22")) {
        rp_log_warn("database: %s: %s", what, msg);
        return RP_ERR_INVALID_ARG;
    }
    /* serialisation, deadlock, lock timeout; a read-only transaction (25006: the database set
     * read-only, as managed services do when its storage fills), which /readyz reports too: 503,
     * for the client to retry at another replica or later (review r15ops M3) */
    if (sqlstate_is(state, "40001") || sqlstate_is(state, "40P01") || sqlstate_is(state, "55P03") ||
        sqlstate_is(state, "25006")) {
        rp_log_warn("database: %s: %s", what, msg);
        return RP_ERR_BUSY;
    }
    rp_log_error("database: %s: %s", what, msg);
    return RP_ERR_IO;
}

/*
 * Ready to send: a connection lost before is made again here (PQreset, with the parameters it
 * was opened with), on its next use, so a database restarted between two requests costs the
 * request nothing. A transaction the loss ended stays failed until the caller rolls it back.
 */
static rp_err_t ready(pg_db_t *db)
{
    if (db->txn_lost)
        return RP_ERR_BUSY;
    if (PQstatus(db->conn) == CONNECTION_OK)
        return RP_OK;
    if (db->in_txn) { /* never a new connection under a transaction the caller thinks open */
        db->in_txn = false;
        db->txn_lost = true;
        return RP_ERR_BUSY;
    }
    PQreset(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        rp_log_warn("database: cannot reconnect: %s", PQerrorMessage(db->conn));
        return RP_ERR_BUSY;
    }
    db->generation++;
    if (!session_setup(db))
        return RP_ERR_BUSY;
    rp_log_info("database: reconnected");
    return RP_OK;
}

/* Run SQL of our own (no parameters, no rows wanted). */
static rp_err_t run(pg_db_t *db, const char *sql, const char *what)
{
    PGresult *r = PQexec(db->conn, sql);
    ExecStatusType s = PQresultStatus(r);
    rp_err_t err = RP_OK;

    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        err = classify(db, r, what);
    PQclear(r);
    return err;
}

/* A new connection to target, with our parameters, or RP_ERR_BUSY when the server cannot be
 * reached now (down, starting): worth trying again; RP_ERR_IO when it answers but refuses. */
static rp_err_t pg_connect(const char *target, PGconn **out)
{
    /* Ours first: the target's own values (a connect_timeout in the URI) win over them. */
    /* (TCP: a dead peer is noticed in about a minute when idle, half a minute when sending) */
    static const char *const keys[] = {"connect_timeout",  "keepalives",
                                       "keepalives_idle",  "keepalives_interval",
                                       "keepalives_count", "tcp_user_timeout",
                                       "client_encoding",  "application_name",
                                       "dbname",           NULL};
    const char *values[] = {"10",   "1", "30", "10", "3", "30000", "UTF8", "rampart-server",
                            target, NULL};
    PGconn *conn;
    PGPing ping;

    *out = NULL;
    conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL)
        return RP_ERR_NO_MEMORY;
    if (PQstatus(conn) != CONNECTION_OK) {
        /* libpq's message names the host and user, and, for a target it cannot parse, quotes
         * the text, password and all: scrubbed (db.h), review r15ops M4. A server that cannot
         * be reached now may be later (starting, restarting): RP_ERR_BUSY, for the caller to wait
         * (main.c: --database-wait); one that answers but refuses us (a wrong password, no such
         * database) will not change by waiting. */
        char msg[1024];

        rp_db_scrub(target, PQerrorMessage(conn), msg, sizeof(msg));
        rp_log_error("database: cannot connect: %s", msg);
        PQfinish(conn);
        /* not answering, or answering that it is starting or shutting down */
        ping = PQpingParams(keys, values, 1);
        return ping == PQPING_NO_RESPONSE || ping == PQPING_REJECT ? RP_ERR_BUSY : RP_ERR_IO;
    }
    PQsetNoticeProcessor(conn, pg_notice, NULL);
    *out = conn;
    return RP_OK;
}

static rp_err_t pg_open(const char *target, rp_db_t **out)
{
    pg_db_t *db;
    rp_err_t err;

    *out = NULL;
    if (target == NULL)
        return RP_ERR_INVALID_ARG;
    db = calloc(1, sizeof(*db));
    if (db == NULL)
        return RP_ERR_NO_MEMORY;
    db->base.drv = &rp_db_postgresql;
    db->generation = 1;
    err = pg_connect(target, &db->conn);
    if (err != RP_OK) {
        free(db);
        return err;
    }
    if (!session_setup(db)) {
        PQfinish(db->conn);
        free(db);
        return RP_ERR_IO;
    }
    *out = &db->base;
    return RP_OK;
}

static void pg_close(rp_db_t *d)
{
    pg_db_t *db = pg(d);

    if (db == NULL)
        return;
    PQfinish(db->conn);
    free(db);
}

/* SQL run as it is, but DDL with SQLite's type names in PostgreSQL's (rp_db_pg_ddl): a migration
 * is written once, for both engines. */
static rp_err_t pg_exec(rp_db_t *d, const char *sql)
{
    pg_db_t *db = pg(d);
    char *mapped = NULL;
    rp_err_t err = rp_db_pg_ddl(sql, &mapped);

    if (err != RP_OK) {
        rp_log_error("database: cannot run SQL: %s", rp_strerror(err));
        return err == RP_ERR_NO_MEMORY ? err : RP_ERR_IO;
    }
    err = ready(db);
    if (err == RP_OK)
        err = run(db, mapped, "exec");
    free(mapped);
    return err;
}

/* A statement that only reads needs no savepoint of its own: its failure is the caller's to roll
 * back, as it is an error it did not expect. */
static bool writes(const char *sql)
{
    while (*sql == ' ' || *sql == '\n' || *sql == '\t' || *sql == '(')
        sql++;
    return strncasecmp(sql, "SELECT", 6) != 0 && strncasecmp(sql, "VALUES", 6) != 0;
}

static rp_err_t stmt_prepare(pg_stmt_t *st)
{
    pg_db_t *db = st->db;
    PGresult *r;
    rp_err_t err = RP_OK;

    if (st->prepared_gen == db->generation)
        return RP_OK;
    /* Parameter types are the server's to infer from where each is used, as SQLite's are. */
    r = PQprepare(db->conn, st->name, st->q.sql, st->q.nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        err = classify(db, r, "prepare");
    else
        st->prepared_gen = db->generation;
    PQclear(r);
    return err;
}

static void stmt_forget_rows(pg_stmt_t *st)
{
    for (int c = 0; st->unescaped != NULL && c < st->ncols; c++)
        free(st->unescaped[c]);
    free(st->unescaped);
    free(st->unescaped_len);
    st->unescaped = NULL;
    st->unescaped_len = NULL;
    st->ncols = 0;
    PQclear(st->res);
    st->res = NULL;
    st->row = -1;
    st->nrows = 0;
    st->ran = false;
}

static void stmt_clear_bindings(pg_stmt_t *st)
{
    for (int i = 0; i < st->q.nparams; i++) {
        free(st->values[i]);
        st->values[i] = NULL;
        st->lengths[i] = 0;
        st->formats[i] = 0;
    }
}

static void pg_finalize(rp_db_stmt_t *s)
{
    pg_stmt_t *st = pst(s);
    char sql[64];
    PGresult *r;

    if (st == NULL)
        return;
    stmt_forget_rows(st);
    if (st->prepared_gen == st->db->generation && PQstatus(st->db->conn) == CONNECTION_OK &&
        !st->db->txn_lost) {
        snprintf(sql, sizeof(sql), "DEALLOCATE %s", st->name);
        r = PQexec(st->db->conn, sql);
        PQclear(r);
    }
    if (st->values != NULL)
        stmt_clear_bindings(st);
    free(st->values);
    free(st->lengths);
    free(st->formats);
    rp_db_pg_sql_free(&st->q);
    free(st->orig);
    free(st);
}

static rp_db_stmt_t *pg_prepare(rp_db_t *d, const char *sql)
{
    pg_db_t *db = pg(d);
    pg_stmt_t *st = calloc(1, sizeof(*st));
    rp_err_t err;

    if (st == NULL) {
        rp_log_error("database: out of memory for a statement");
        return NULL;
    }
    st->base.drv = &rp_db_postgresql;
    st->db = db;
    st->row = -1;
    err = rp_db_pg_rewrite(sql, &st->q);
    if (err != RP_OK) {
        rp_log_error("database: cannot prepare: %s in its parameters", rp_strerror(err));
        free(st);
        return NULL;
    }
    st->orig = strdup(sql);
    st->writes = writes(sql);
    if (st->q.nparams > 0) {
        st->values = calloc((size_t)st->q.nparams, sizeof(*st->values));
        st->lengths = calloc((size_t)st->q.nparams, sizeof(*st->lengths));
        st->formats = calloc((size_t)st->q.nparams, sizeof(*st->formats));
    }
    if (st->orig == NULL ||
        (st->q.nparams > 0 && (st->values == NULL || st->lengths == NULL || st->formats == NULL))) {
        rp_log_error("database: out of memory for a statement");
        pg_finalize(&st->base);
        return NULL;
    }
    snprintf(st->name, sizeof(st->name), "rp%u", ++db->next_name);
    /* Prepared now, so that bad SQL fails here as with SQLite; again after a reconnection. With
     * no connection now, at the first step (which answers RP_ERR_BUSY if there is none then). */
    err = ready(db);
    if (err == RP_OK)
        err = stmt_prepare(st);
    if (err != RP_OK && err != RP_ERR_BUSY) {
        pg_finalize(&st->base);
        return NULL;
    }
    return &st->base;
}

static void pg_reset(rp_db_stmt_t *s)
{
    pg_stmt_t *st = pst(s);

    stmt_forget_rows(st);
    stmt_clear_bindings(st);
    st->changes = 0;
}

static int pg_param_index(rp_db_stmt_t *s, const char *name)
{
    pg_stmt_t *st = pst(s);
    size_t n = name != NULL ? strlen(name) : 0;

    for (int i = 0; i < st->q.nparams; i++)
        if (st->q.params[i].len == n && n > 0 &&
            memcmp(st->orig + st->q.params[i].off, name, n) == 0)
            return i + 1;
    return 0;
}

/* Take over V (malloc'd, LEN bytes) as parameter I in FORMAT (0 text, 1 binary). */
static rp_err_t bind(pg_stmt_t *st, int i, char *v, size_t len, int format)
{
    if (i < 1 || i > st->q.nparams || len > INT_MAX) {
        free(v);
        return RP_ERR_INVALID_ARG;
    }
    if (v == NULL)
        return RP_ERR_NO_MEMORY;
    free(st->values[i - 1]);
    st->values[i - 1] = v;
    st->lengths[i - 1] = (int)len;
    st->formats[i - 1] = format;
    return RP_OK;
}

static rp_err_t bind_printf(pg_stmt_t *st, int i, const char *text)
{
    return bind(st, i, strdup(text), strlen(text), 0);
}

static rp_err_t pg_bind_int64(rp_db_stmt_t *s, int i, int64_t v)
{
    char text[32];

    snprintf(text, sizeof(text), "%" PRId64, v);
    return bind_printf(pst(s), i, text);
}

static rp_err_t pg_bind_double(rp_db_stmt_t *s, int i, double v)
{
    char text[40];

    if (isnan(v))
        snprintf(text, sizeof(text), "NaN");
    else if (isinf(v))
        snprintf(text, sizeof(text), "%sInfinity", v < 0 ? "-" : "");
    else
        snprintf(text, sizeof(text), "%.17g", v);
    return bind_printf(pst(s), i, text);
}

static rp_err_t pg_bind_text(rp_db_stmt_t *s, int i, const char *v, size_t len)
{
    char *copy;

    if (v == NULL)
        return RP_ERR_INVALID_ARG;
    if (memchr(v, '\0', len) != NULL)
        return RP_ERR_INVALID_ARG; /* PostgreSQL's text holds no NUL */
    copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, v, len);
        copy[len] = '\0';
    }
    return bind(pst(s), i, copy, len, 0);
}

static rp_err_t pg_bind_blob(rp_db_stmt_t *s, int i, const void *v, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1); /* an empty blob is a value, not NULL */

    if (copy != NULL && len > 0)
        memcpy(copy, v, len);
    return bind(pst(s), i, copy, len, 1);
}

static rp_err_t pg_bind_null(rp_db_stmt_t *s, int i)
{
    pg_stmt_t *st = pst(s);

    if (i < 1 || i > st->q.nparams)
        return RP_ERR_INVALID_ARG;
    free(st->values[i - 1]);
    st->values[i - 1] = NULL;
    st->lengths[i - 1] = 0;
    st->formats[i - 1] = 0;
    return RP_OK;
}

/*
 * Run the statement. Inside a transaction a statement that writes runs in a savepoint of its
 * own, so that its failure (a duplicate key the caller handles) undoes only itself and leaves
 * the transaction usable, as in SQLite; without one, PostgreSQL would refuse every statement
 * after it until the rollback.
 */
static rp_err_t stmt_run(pg_stmt_t *st)
{
    pg_db_t *db = st->db;
    bool savepoint = db->in_txn && st->writes;
    ExecStatusType s;
    rp_err_t err = ready(db);

    if (err == RP_OK)
        err = stmt_prepare(st);
    if (err == RP_OK && savepoint)
        err = run(db, "SAVEPOINT rp_statement", "savepoint");
    if (err != RP_OK)
        return err;
    st->res = PQexecPrepared(db->conn, st->name, st->q.nparams, (const char *const *)st->values,
                             st->lengths, st->formats, 0);
    s = PQresultStatus(st->res);
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
        const char *n = PQcmdTuples(st->res);
        st->changes = n != NULL && n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
        st->nrows = PQntuples(st->res);
        st->ncols = PQnfields(st->res);
        if (savepoint)
            err = run(db, "RELEASE SAVEPOINT rp_statement", "savepoint");
    } else if (!st->writes && !db->in_txn &&
               sqlstate_is(PQresultErrorField(st->res, PG_DIAG_SQLSTATE), "22021")) {
        /* A read by text that is not UTF-8, outside a transaction (none is aborted): no row can
         * hold such text, so none is found, as SQLite finds none. */
        st->changes = 0;
        st->nrows = st->ncols = 0;
    } else {
        err = classify(db, st->res, "statement");
        if (savepoint && db->in_txn) {
            rp_err_t undo = run(db,
                                "ROLLBACK TO SAVEPOINT rp_statement;"
                                " RELEASE SAVEPOINT rp_statement",
                                "savepoint");
            if (undo != RP_OK && err == RP_ERR_EXISTS)
                err = undo;
        }
    }
    if (err == RP_OK && st->ncols > 0) {
        st->unescaped = calloc((size_t)st->ncols, sizeof(*st->unescaped));
        st->unescaped_len = calloc((size_t)st->ncols, sizeof(*st->unescaped_len));
        if (st->unescaped == NULL || st->unescaped_len == NULL)
            err = RP_ERR_NO_MEMORY;
    }
    if (err != RP_OK)
        stmt_forget_rows(st);
    return err;
}

static void forget_unescaped(pg_stmt_t *st)
{
    if (st->unescaped == NULL)
        return;
    for (int c = 0; c < st->ncols; c++) {
        free(st->unescaped[c]);
        st->unescaped[c] = NULL;
    }
}

static rp_err_t pg_step(rp_db_stmt_t *s, bool *row)
{
    pg_stmt_t *st = pst(s);

    *row = false;
    if (!st->ran) {
        pg_db_t *db = st->db;
        bool alone = !db->in_txn && !db->txn_lost;
        rp_err_t err = stmt_run(st);
        /* A read outside a transaction, on a connection found lost (a restarted server): once
         * more on a new one, since reading twice changes nothing. A write is the caller's to
         * retry: it may have been done before the connection went. */
        if (err == RP_ERR_BUSY && db->lost && alone && !st->writes)
            err = stmt_run(st);
        if (err != RP_OK)
            return err;
        st->ran = true;
        st->row = -1;
    }
    forget_unescaped(st);
    if (st->row < st->nrows)
        st->row++;
    *row = st->row < st->nrows;
    return RP_OK;
}

static bool has_value(pg_stmt_t *st, int col)
{
    return st->res != NULL && st->row >= 0 && st->row < st->nrows && col >= 0 && col < st->ncols &&
           !PQgetisnull(st->res, st->row, col);
}

static bool pg_column_null(rp_db_stmt_t *s, int col)
{
    return !has_value(pst(s), col);
}

static int64_t pg_column_int64(rp_db_stmt_t *s, int col)
{
    pg_stmt_t *st = pst(s);
    const char *v;
    char *end;
    long long n;

    if (!has_value(st, col))
        return 0;
    v = PQgetvalue(st->res, st->row, col);
    if (PQftype(st->res, col) == PG_OID_BOOL)
        return v[0] == 't';
    errno = 0;
    n = strtoll(v, &end, 10);
    if (*end == '.' || *end == 'e' || *end == 'E' || errno == ERANGE) {
        /* numeric (a sum) or float: truncated as SQLite converts a REAL, clamped */
        double d = strtod(v, NULL);
        if (isnan(d))
            return 0;
        if (d >= 9223372036854775807.0)
            return INT64_MAX;
        if (d <= -9223372036854775808.0)
            return INT64_MIN;
        return (int64_t)d;
    }
    return (int64_t)n;
}

static double pg_column_double(rp_db_stmt_t *s, int col)
{
    pg_stmt_t *st = pst(s);

    if (!has_value(st, col))
        return 0;
    if (PQftype(st->res, col) == PG_OID_BOOL)
        return PQgetvalue(st->res, st->row, col)[0] == 't';
    return strtod(PQgetvalue(st->res, st->row, col), NULL);
}

/* A bytea column's value decoded (text-format results carry it as "\x..." hex). */
static const char *unescaped(pg_stmt_t *st, int col, size_t *len)
{
    unsigned char *raw;
    size_t n = 0;

    if (st->unescaped[col] != NULL) {
        *len = st->unescaped_len[col];
        return st->unescaped[col];
    }
    raw = PQunescapeBytea((const unsigned char *)PQgetvalue(st->res, st->row, col), &n);
    if (raw == NULL)
        return NULL;
    st->unescaped[col] = malloc(n + 1);
    if (st->unescaped[col] != NULL) {
        memcpy(st->unescaped[col], raw, n);
        st->unescaped[col][n] = '\0';
        st->unescaped_len[col] = n;
    }
    PQfreemem(raw);
    *len = n;
    return st->unescaped[col];
}

static const char *pg_column_text(rp_db_stmt_t *s, int col)
{
    pg_stmt_t *st = pst(s);
    size_t len;
    const char *v;

    if (!has_value(st, col))
        return "";
    if (PQftype(st->res, col) == PG_OID_BYTEA) {
        v = unescaped(st, col, &len);
        return v != NULL ? v : "";
    }
    if (PQftype(st->res, col) == PG_OID_BOOL) /* as SQLite, whose comparisons are 1 or 0 */
        return PQgetvalue(st->res, st->row, col)[0] == 't' ? "1" : "0";
    return PQgetvalue(st->res, st->row, col);
}

static const void *pg_column_blob(rp_db_stmt_t *s, int col, size_t *len)
{
    pg_stmt_t *st = pst(s);
    const char *v;

    *len = 0;
    if (!has_value(st, col))
        return "";
    if (PQftype(st->res, col) == PG_OID_BYTEA) {
        v = unescaped(st, col, len);
        if (v == NULL) {
            *len = 0;
            return "";
        }
        return v;
    }
    *len = (size_t)PQgetlength(st->res, st->row, col);
    return PQgetvalue(st->res, st->row, col);
}

static int64_t pg_changes(rp_db_stmt_t *s)
{
    return pst(s)->changes;
}

static rp_err_t pg_begin(rp_db_t *d)
{
    pg_db_t *db = pg(d);
    rp_err_t err;

    if (db->in_txn) {
        rp_log_error("database: begin inside a transaction");
        return RP_ERR_INVALID_ARG;
    }
    db->txn_lost = false;
    err = ready(db);
    if (err != RP_OK)
        return err;
    /* Both in one round trip: the lock is the transaction's, released by its end. */
    err = run(db, "BEGIN; SELECT pg_advisory_xact_lock(" PG_WRITE_LOCK ")", "begin");
    if (err == RP_OK) {
        db->in_txn = true;
    } else if (PQtransactionStatus(db->conn) != PQTRANS_IDLE &&
               PQstatus(db->conn) == CONNECTION_OK) {
        (void)run(db, "ROLLBACK", "rollback");
    }
    return err;
}

static rp_err_t pg_commit(rp_db_t *d)
{
    pg_db_t *db = pg(d);
    PGresult *r;
    rp_err_t err = RP_OK;

    if (db->txn_lost)
        return RP_ERR_BUSY;
    if (!db->in_txn) {
        rp_log_error("database: commit without a transaction");
        return RP_ERR_INVALID_ARG;
    }
    /* PostgreSQL answers COMMIT in a failed transaction by rolling it back, without an error. */
    if (PQtransactionStatus(db->conn) == PQTRANS_INERROR) {
        rp_log_error("database: commit of a transaction a statement failed in: rolled back");
        (void)run(db, "ROLLBACK", "rollback");
        db->in_txn = false;
        return RP_ERR_IO;
    }
    r = PQexec(db->conn, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        err = classify(db, r, "commit");
    else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
        err = RP_ERR_IO;
    PQclear(r);
    /* A commit whose answer was lost may or may not have happened: RP_ERR_BUSY, never RP_OK, so
     * that nothing is acknowledged that may be lost; the caller retries only what is idempotent
     * (a write keyed by what it records) or reads first what is there. */
    db->in_txn = false;
    if (err != RP_OK && PQstatus(db->conn) == CONNECTION_OK &&
        PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        (void)run(db, "ROLLBACK", "rollback");
    db->txn_lost = false;
    return err;
}

static rp_err_t pg_rollback(rp_db_t *d)
{
    pg_db_t *db = pg(d);
    rp_err_t err = RP_OK;

    /* After a lost connection there is nothing to roll back: the server did. */
    if (db->txn_lost) {
        db->txn_lost = false;
        return RP_OK;
    }
    if (!db->in_txn)
        return RP_OK;
    db->in_txn = false;
    if (PQstatus(db->conn) == CONNECTION_OK)
        err = run(db, "ROLLBACK", "rollback");
    return err == RP_ERR_BUSY ? RP_OK : err;
}

/*
 * Holds (db.h): session-level advisory locks, (PG_HOLD_CLASS, the lock's number), apart from the
 * write lock's (a single bigint key: another key space), on a connection of the hold's own. They
 * end with its session: when the holder's process dies (its socket closes), when the server
 * restarts or ends the backend, and when the holder's machine vanishes, which the server notices
 * by the keepalives set here (about a minute; the system's default is two hours).
 */
#define PG_HOLD_CLASS "1380470860" /* "RHPL" in ASCII */

typedef struct pg_hold {
    rp_db_hold_t base;
    PGconn *conn;
    char taken[RP_DB_HOLD_LOCKS]; /* 0, 's' (shared) or 'x' (exclusive) */
} pg_hold_t;

/* A one-value query of the hold's: its value in out ("t", "f"), or the error, logged. */
static rp_err_t hold_query(pg_hold_t *h, const char *sql, char *out, size_t cap)
{
    PGresult *r = PQexec(h->conn, sql);
    rp_err_t err = RP_OK;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1 || PQnfields(r) < 1) {
        rp_log_error("database: the hold: %s",
                     r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(h->conn));
        err = PQstatus(h->conn) == CONNECTION_OK ? RP_ERR_IO : RP_ERR_BUSY;
    } else {
        snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    return err;
}

static void pg_hold_close(rp_db_hold_t *hold)
{
    pg_hold_t *h = (pg_hold_t *)hold;

    if (h == NULL)
        return;
    /* The session's end frees its locks only once its backend has exited, after PQfinish
     * returns: a move or a restore tried at once after a replica's release could still find
     * them. So they are released first, and answered (failed: the session is gone, and them). */
    if (PQstatus(h->conn) == CONNECTION_OK)
        PQclear(PQexec(h->conn, "SELECT pg_advisory_unlock_all()"));
    PQfinish(h->conn); /* (the session ends: its locks with it, whatever happened above) */
    free(h);
}

static rp_err_t pg_hold_open(const char *target, rp_db_hold_t **out)
{
    pg_hold_t *h;
    char value[16];
    rp_err_t err;

    *out = NULL;
    if (target == NULL)
        return RP_ERR_INVALID_ARG;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return RP_ERR_NO_MEMORY;
    h->base.drv = &rp_db_postgresql;
    err = pg_connect(target, &h->conn);
    if (err != RP_OK) {
        free(h);
        return err;
    }
    /* The server ends this session, and the locks, about a minute after its peer went silent (a
     * machine powered off or cut off; on a Unix socket they do not apply); nor does it end it for
     * idling. Settings this server lacks are left out (idle_session_timeout: PostgreSQL 14). */
    err = hold_query(h,
                     "SELECT count(set_config(name, CASE name WHEN 'tcp_keepalives_idle' THEN '30' "
                     "WHEN 'tcp_keepalives_interval' THEN '10' WHEN 'tcp_keepalives_count' "
                     "THEN '3' ELSE '0' END, false)) FROM pg_settings WHERE name IN "
                     "('tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count', "
                     "'idle_session_timeout', 'idle_in_transaction_session_timeout')",
                     value, sizeof(value));
    if (err != RP_OK) {
        pg_hold_close(&h->base);
        return err;
    }
    *out = &h->base;
    return RP_OK;
}

static rp_err_t pg_hold_take(rp_db_hold_t *hold, int n, bool exclusive)
{
    pg_hold_t *h = (pg_hold_t *)hold;
    char sql[96], got[8];
    rp_err_t err;

    if (n < 0 || n >= RP_DB_HOLD_LOCKS || h->taken[n] != 0)
        return RP_ERR_INVALID_ARG;
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock%s(" PG_HOLD_CLASS ", %d)",
             exclusive ? "" : "_shared", n);
    err = hold_query(h, sql, got, sizeof(got));
    if (err != RP_OK)
        return err;
    if (strcmp(got, "t") != 0)
        return RP_ERR_EXISTS;
    h->taken[n] = exclusive ? 'x' : 's';
    return RP_OK;
}

static void pg_hold_drop(rp_db_hold_t *hold, int n)
{
    pg_hold_t *h = (pg_hold_t *)hold;
    char sql[96], got[8];

    if (n < 0 || n >= RP_DB_HOLD_LOCKS || h->taken[n] == 0)
        return;
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock%s(" PG_HOLD_CLASS ", %d)",
             h->taken[n] == 'x' ? "" : "_shared", n);
    h->taken[n] = 0;
    (void)hold_query(h, sql, got, sizeof(got)); /* (failed: the session is gone, and the lock) */
}

static bool pg_hold_lost(rp_db_hold_t *hold)
{
    pg_hold_t *h = (pg_hold_t *)hold;
    struct pollfd p = {.fd = PQsocket(h->conn), .events = POLLIN};
    int rc;

    if (PQstatus(h->conn) != CONNECTION_OK || p.fd < 0)
        return true;
    while ((rc = poll(&p, 1, 0)) < 0 && errno == EINTR)
        ;
    if (rc <= 0)
        return false; /* nothing came: the session stands */
    /* The server's word as it ends the session (a restart, a terminated backend: taken as a
     * notice), then its end; or an error of the socket (the keepalives gave up). */
    if (PQconsumeInput(h->conn) == 0)
        return true;
    return PQstatus(h->conn) != CONNECTION_OK;
}

const rp_db_driver_t rp_db_postgresql = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .reset = pg_reset,
    .param_index = pg_param_index,
    .bind_int64 = pg_bind_int64,
    .bind_double = pg_bind_double,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .column_null = pg_column_null,
    .column_int64 = pg_column_int64,
    .column_double = pg_column_double,
    .column_text = pg_column_text,
    .column_blob = pg_column_blob,
    .changes = pg_changes,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .hold_open = pg_hold_open,
    .hold_take = pg_hold_take,
    .hold_drop = pg_hold_drop,
    .hold_lost = pg_hold_lost,
    .hold_close = pg_hold_close,
};
