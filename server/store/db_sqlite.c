/*
 * The SQLite driver of the SQL contract (db.h): one connection to a database file, in WAL mode
 * with full sync and foreign keys, statements prepared once for the connection's life, SQLite's
 * result codes turned into db.h's error classes, and the SQL functions the store's statements
 * use that SQLite lacks (greatest, least) or that only C can answer (rp_selects). The only file
 * of the service that calls SQLite (unit.store_sqlite_confined checks it).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "db.h"
#include "db_sqlite.h"
#include "rampart/log.h"
#include "store.h"

struct sq_db {
    rp_db_t base;
    sqlite3 *h;
};

struct sq_st {
    rp_db_stmt_t base;
    sqlite3_stmt *h;
};

#define DB(d) ((struct sq_db *)(d))
#define ST(s) (((struct sq_st *)(s))->h)

sqlite3 *rp_db_sqlite_handle(rp_db_t *db)
{
    return db != NULL && db->drv == &rp_db_sqlite ? DB(db)->h : NULL;
}

sqlite3_stmt *rp_db_sqlite_stmt(rp_db_stmt_t *st)
{
    return st != NULL && st->drv == &rp_db_sqlite ? ST(st) : NULL;
}

long long rp_db_sqlite_pages(rp_db_t *db, int reset)
{
    sqlite3 *h = rp_db_sqlite_handle(db);
    int hit = 0, miss = 0, high;

    if (h == NULL || sqlite3_db_status(h, SQLITE_DBSTATUS_CACHE_HIT, &hit, &high, reset) != 0 ||
        sqlite3_db_status(h, SQLITE_DBSTATUS_CACHE_MISS, &miss, &high, reset) != 0)
        return 0;
    return (long long)hit + miss;
}

long long rp_db_sqlite_changes(rp_db_t *db)
{
    sqlite3 *h = rp_db_sqlite_handle(db);

    return h != NULL ? (long long)sqlite3_total_changes64(h) : 0;
}

long long rp_db_sqlite_vm_steps(rp_db_stmt_t *st)
{
    sqlite3_stmt *h = rp_db_sqlite_stmt(st);

    return h != NULL ? sqlite3_stmt_status(h, SQLITE_STMTSTATUS_VM_STEP, 0) : 0;
}

/* db.h's classes: a unique, primary-key or foreign-key violation; a lost race; the rest. */
static rp_err_t err_class(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: return RP_ERR_EXISTS;
    case SQLITE_BUSY: /* and SQLITE_BUSY_SNAPSHOT: a stale snapshot's write, to run again */
    case SQLITE_LOCKED: return RP_ERR_BUSY;
    case SQLITE_NOMEM: return RP_ERR_NO_MEMORY;
    default: return RP_ERR_IO;
    }
}

/* rp_selects(deployment ID, rollout, device ID) in SQL: rp_deployment_selects, the rule's one
 * owner, so that a deployment's counts and pages choose its devices where they are read. */
static void sql_selects(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    rp_deployment_t d;
    const unsigned char *id = sqlite3_value_text(argv[0]), *device = sqlite3_value_text(argv[2]);

    (void)argc;
    if (id == NULL || device == NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    d.rollout = sqlite3_value_int(argv[1]);
    /* (all or none: the rule answers without the ID, so it is not copied for every device) */
    if (d.rollout > 0 && d.rollout < 100)
        snprintf(d.id, sizeof(d.id), "%s", (const char *)id);
    else
        d.id[0] = '\0';
    sqlite3_result_int(ctx, rp_deployment_selects(&d, (const char *)device));
}

/* The order of two values as SQLite's scalar max() and min() compare them with the BINARY
 * collation: by storage class (numbers, then text, then blobs), then by value or bytes. */
static int value_cmp(sqlite3_value *a, sqlite3_value *b)
{
    int ta = sqlite3_value_type(a), tb = sqlite3_value_type(b);
    int ca = ta == SQLITE_INTEGER || ta == SQLITE_FLOAT ? 1 : ta == SQLITE_TEXT ? 2 : 3;
    int cb = tb == SQLITE_INTEGER || tb == SQLITE_FLOAT ? 1 : tb == SQLITE_TEXT ? 2 : 3;

    if (ca != cb)
        return ca < cb ? -1 : 1;
    if (ca == 1) {
        if (ta == SQLITE_INTEGER && tb == SQLITE_INTEGER) {
            sqlite3_int64 x = sqlite3_value_int64(a), y = sqlite3_value_int64(b);
            return x < y ? -1 : x > y;
        }
        double x = sqlite3_value_double(a), y = sqlite3_value_double(b);
        return x < y ? -1 : x > y;
    }
    const void *pa = ca == 2 ? (const void *)sqlite3_value_text(a) : sqlite3_value_blob(a);
    const void *pb = cb == 2 ? (const void *)sqlite3_value_text(b) : sqlite3_value_blob(b);
    int na = sqlite3_value_bytes(a), nb = sqlite3_value_bytes(b);
    int c = na == 0 || nb == 0 ? 0 : memcmp(pa, pb, (size_t)(na < nb ? na : nb));
    return c != 0 ? c : (na < nb ? -1 : na > nb);
}

/*
 * greatest(a, b, ...) and least(a, b, ...), the standard's names (PostgreSQL has them; SQLite
 * 3.40 does not), as SQLite's own scalar max() and min(): NULL when any argument is NULL. The
 * store never gives them a NULL, where PostgreSQL would ignore it instead.
 */
static void sql_extreme(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    int sign = *(const int *)sqlite3_user_data(ctx);
    int best = 0;

    for (int i = 0; i < argc; i++) {
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL) {
            sqlite3_result_null(ctx);
            return;
        }
        if (i > 0 && sign * value_cmp(argv[i], argv[best]) > 0)
            best = i;
    }
    sqlite3_result_value(ctx, argv[best]);
}

static const int greater = 1, lesser = -1;

static void sq_close(rp_db_t *db)
{
    if (db == NULL)
        return;
    sqlite3_close(DB(db)->h);
    free(db);
}

/* sql run on h; a failure logged as "WHAT: message". */
static rp_err_t exec_on(sqlite3 *h, const char *what, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        rp_log_error("%s: %s", what, msg != NULL ? msg : sqlite3_errmsg(h));
        sqlite3_free(msg);
        return err_class(rc);
    }
    return RP_OK;
}

static rp_err_t sq_exec(rp_db_t *db, const char *sql)
{
    return exec_on(DB(db)->h, "database", sql);
}

static rp_err_t sq_open(const char *target, rp_db_t **out)
{
    static const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    struct sq_db *db = calloc(1, sizeof(*db));
    rp_err_t err;

    *out = NULL;
    if (db == NULL)
        return RP_ERR_NO_MEMORY;
    db->base.drv = &rp_db_sqlite;
    if (sqlite3_open_v2(target, &db->h,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rp_log_error("database %s: %s", target, db->h ? sqlite3_errmsg(db->h) : "cannot open");
        sq_close(&db->base);
        return RP_ERR_IO;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, 10000);
    if (sqlite3_create_function(db->h, "rp_selects", 3, flags, NULL, sql_selects, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_create_function(db->h, "greatest", -1, flags, (void *)&greater, sql_extreme, NULL,
                                NULL) != SQLITE_OK ||
        sqlite3_create_function(db->h, "least", -1, flags, (void *)&lesser, sql_extreme, NULL,
                                NULL) != SQLITE_OK) {
        rp_log_error("database %s: %s", target, sqlite3_errmsg(db->h));
        sq_close(&db->base);
        return RP_ERR_IO;
    }
    /* WAL: readers never wait for the writer. FULL: a commit is on disk before it returns. */
    /* (No mmap: the file grows with every commit, and SQLite would remap it on the next read,
     * which costs far more than the reads it saves.) */
    err = sq_exec(&db->base,
                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
    if (err != RP_OK) {
        sq_close(&db->base);
        return err;
    }
    *out = &db->base;
    return RP_OK;
}

/* Prepared once for the connection's life (the store caches them): PERSISTENT keeps them out of
 * SQLite's lookaside memory, meant for short-lived ones. */
static rp_db_stmt_t *sq_prepare(rp_db_t *db, const char *sql)
{
    struct sq_st *st = calloc(1, sizeof(*st));

    if (st == NULL) {
        rp_log_error("database: out of memory for a prepared statement");
        return NULL;
    }
    st->base.drv = &rp_db_sqlite;
    if (sqlite3_prepare_v3(DB(db)->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->h, NULL) !=
        SQLITE_OK) {
        rp_log_error("database: cannot prepare: %s", sqlite3_errmsg(DB(db)->h));
        sqlite3_finalize(st->h);
        free(st);
        return NULL;
    }
    return &st->base;
}

static void sq_finalize(rp_db_stmt_t *st)
{
    if (st == NULL)
        return;
    sqlite3_finalize(ST(st));
    free(st);
}

static void sq_reset(rp_db_stmt_t *st)
{
    sqlite3_reset(ST(st));
    sqlite3_clear_bindings(ST(st));
}

static int sq_param_index(rp_db_stmt_t *st, const char *name)
{
    return sqlite3_bind_parameter_index(ST(st), name);
}

static rp_err_t bound(rp_db_stmt_t *st, int rc)
{
    if (rc == SQLITE_OK)
        return RP_OK;
    rp_log_error("database: cannot bind: %s", sqlite3_errstr(rc));
    (void)st;
    return err_class(rc);
}

static rp_err_t too_long(void)
{
    rp_log_error("database: cannot bind a value of 2 GiB or more");
    return RP_ERR_INVALID_ARG;
}

static rp_err_t sq_bind_int64(rp_db_stmt_t *st, int i, int64_t v)
{
    return bound(st, sqlite3_bind_int64(ST(st), i, v));
}

static rp_err_t sq_bind_double(rp_db_stmt_t *st, int i, double v)
{
    return bound(st, sqlite3_bind_double(ST(st), i, v));
}

static rp_err_t sq_bind_text(rp_db_stmt_t *st, int i, const char *v, size_t len)
{
    if (len > INT32_MAX)
        return too_long();
    return bound(st, sqlite3_bind_text(ST(st), i, v, (int)len, SQLITE_TRANSIENT));
}

/* A zero-length blob is one (not NULL): the store's pages bind one as their open upper bound. */
static rp_err_t sq_bind_blob(rp_db_stmt_t *st, int i, const void *v, size_t len)
{
    if (len > INT32_MAX)
        return too_long();
    if (len == 0)
        return bound(st, sqlite3_bind_zeroblob(ST(st), i, 0));
    return bound(st, sqlite3_bind_blob(ST(st), i, v, (int)len, SQLITE_TRANSIENT));
}

static rp_err_t sq_bind_null(rp_db_stmt_t *st, int i)
{
    return bound(st, sqlite3_bind_null(ST(st), i));
}

static rp_err_t sq_step(rp_db_stmt_t *st, bool *row)
{
    int rc = sqlite3_step(ST(st));

    *row = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return RP_OK;
    /* (a constraint is the caller's to tell apart - a name taken, a nonce spent - not an error) */
    if ((rc & 0xff) != SQLITE_CONSTRAINT)
        rp_log_error("database: %s", sqlite3_errmsg(sqlite3_db_handle(ST(st))));
    return err_class(rc);
}

static bool sq_column_null(rp_db_stmt_t *st, int col)
{
    return sqlite3_column_type(ST(st), col) == SQLITE_NULL;
}

static int64_t sq_column_int64(rp_db_stmt_t *st, int col)
{
    return sqlite3_column_int64(ST(st), col);
}

static double sq_column_double(rp_db_stmt_t *st, int col)
{
    return sqlite3_column_double(ST(st), col);
}

static const char *sq_column_text(rp_db_stmt_t *st, int col)
{
    const unsigned char *t = sqlite3_column_text(ST(st), col);

    return t != NULL ? (const char *)t : "";
}

static const void *sq_column_blob(rp_db_stmt_t *st, int col, size_t *len)
{
    const void *b = sqlite3_column_blob(ST(st), col);
    int n = sqlite3_column_bytes(ST(st), col);

    *len = b != NULL && n > 0 ? (size_t)n : 0;
    return b != NULL ? b : "";
}

static int64_t sq_changes(rp_db_stmt_t *st)
{
    return sqlite3_changes64(sqlite3_db_handle(ST(st)));
}

static rp_err_t sq_begin(rp_db_t *db)
{
    return sq_exec(db, "BEGIN IMMEDIATE");
}

static rp_err_t sq_commit(rp_db_t *db)
{
    return sq_exec(db, "COMMIT");
}

static rp_err_t sq_rollback(rp_db_t *db)
{
    return sq_exec(db, "ROLLBACK");
}

/*
 * Holds (db.h): the bytes 0 to RP_DB_HOLD_LOCKS - 1 of one file beside the database,
 * TARGET-hold.lock, under open-file-description locks (F_OFD_SETLK): owned by the open file, not
 * by the process, so that two holds exclude each other in one process as in two, and ended by its
 * close, which the kernel does for a process however it dies. Apart from SQLite's own locks (on
 * the database file itself).
 */
struct sq_hold {
    rp_db_hold_t base;
    int fd;
};

static rp_err_t sq_hold_open(const char *target, rp_db_hold_t **out)
{
    char path[PATH_MAX];
    struct sq_hold *h;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s-hold.lock", target) >= (int)sizeof(path))
        return RP_ERR_INVALID_ARG;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return RP_ERR_NO_MEMORY;
    h->base.drv = &rp_db_sqlite;
    h->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (h->fd < 0) {
        rp_log_error("database: %s: %s", path, strerror(errno));
        free(h);
        return RP_ERR_IO;
    }
    /* Made by a command run as root (restore, blobs move) before any server made it: given to
     * the database file's owner, as SQLite gives its -wal and -shm, so that the service's user can
     * open it at its next start. */
    if (geteuid() == 0) {
        struct stat mine, db;
        if (fstat(h->fd, &mine) == 0 && stat(target, &db) == 0 &&
            (mine.st_uid != db.st_uid || mine.st_gid != db.st_gid) &&
            fchown(h->fd, db.st_uid, db.st_gid) != 0)
            rp_log_warn("database: %s: cannot give it to the database's owner: %s", path,
                        strerror(errno));
    }
    *out = &h->base;
    return RP_OK;
}

/* Byte n of the hold's file: F_RDLCK (shared), F_WRLCK (exclusive) or F_UNLCK; 0, or -1 (errno). */
static int hold_byte(struct sq_hold *h, int n, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = n, .l_len = 1};
    int rc;

    while ((rc = fcntl(h->fd, F_OFD_SETLK, &fl)) != 0 && errno == EINTR)
        ;
    return rc;
}

static rp_err_t sq_hold_take(rp_db_hold_t *hold, int n, bool exclusive)
{
    struct sq_hold *h = (struct sq_hold *)hold;

    if (n < 0 || n >= RP_DB_HOLD_LOCKS)
        return RP_ERR_INVALID_ARG;
    if (hold_byte(h, n, exclusive ? F_WRLCK : F_RDLCK) == 0)
        return RP_OK;
    if (errno == EAGAIN || errno == EACCES)
        return RP_ERR_EXISTS;
    rp_log_error("database: the hold's lock %d: %s", n, strerror(errno));
    return RP_ERR_IO;
}

static void sq_hold_drop(rp_db_hold_t *hold, int n)
{
    if (n >= 0 && n < RP_DB_HOLD_LOCKS)
        (void)hold_byte((struct sq_hold *)hold, n, F_UNLCK);
}

static bool sq_hold_lost(rp_db_hold_t *hold)
{
    (void)hold; /* (a lock on an open file ends only with it) */
    return false;
}

static void sq_hold_close(rp_db_hold_t *hold)
{
    struct sq_hold *h = (struct sq_hold *)hold;

    if (h == NULL)
        return;
    close(h->fd);
    free(h);
}

/* ---- whole files: backups and restores (db_sqlite.h) ---- */

/* Open path for the file operations below: read-only (an existing file only) or read-write (an
 * existing file too: the caller makes it). Logged on failure. */
static sqlite3 *file_open(const char *path, bool write)
{
    sqlite3 *h = NULL;

    if (sqlite3_open_v2(
            path, &h, (write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX,
            NULL) != SQLITE_OK) {
        rp_log_error("%s: %s", path, h != NULL ? sqlite3_errmsg(h) : "cannot open");
        sqlite3_close(h);
        return NULL;
    }
    sqlite3_extended_result_codes(h, 1);
    sqlite3_busy_timeout(h, 10000);
    return h;
}

/* The one integer sql's first row holds: RP_ERR_NOT_FOUND when there is no row or its table is
 * missing (said in why), RP_ERR_IO else. */
static rp_err_t file_int(sqlite3 *h, const char *sql, int64_t *v, char *why, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);

    if (rc != SQLITE_OK) {
        snprintf(why, cap, "%s", sqlite3_errmsg(h));
        return (rc & 0xff) == SQLITE_ERROR ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER)
        *v = sqlite3_column_int64(st, 0);
    else
        snprintf(why, cap, "%s",
                 rc == SQLITE_ROW || rc == SQLITE_DONE ? "no row" : sqlite3_errmsg(h));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW && why[0] == '\0'      ? RP_OK
           : rc == SQLITE_ROW || rc == SQLITE_DONE ? RP_ERR_NOT_FOUND
                                                   : RP_ERR_IO;
}

rp_err_t rp_db_sqlite_copy(const char *from, const char *to, int64_t taken_at)
{
    sqlite3 *src = file_open(from, false), *dst = src != NULL ? file_open(to, true) : NULL;
    sqlite3_backup *b = dst != NULL ? sqlite3_backup_init(dst, "main", src, "main") : NULL;
    rp_err_t err = b != NULL ? RP_OK : RP_ERR_IO;
    int rc;

    if (dst != NULL && b == NULL)
        rp_log_error("%s: %s", to, sqlite3_errmsg(dst));
    /* All pages in one step: a snapshot of one moment, whatever writers do meanwhile (WAL). */
    while (b != NULL && ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED))
        sqlite3_sleep(50);
    if (b != NULL && sqlite3_backup_finish(b) != SQLITE_OK) {
        rp_log_error("%s: %s", to, sqlite3_errmsg(dst));
        err = RP_ERR_IO;
    }
    /* A file of its own (no -wal beside it: it is renamed alone); the time it was taken, where the
     * schema keeps it (33). */
    if (err == RP_OK)
        err = exec_on(dst, to, "PRAGMA journal_mode=DELETE;");
    if (err == RP_OK && taken_at > 0) {
        sqlite3_stmt *st = NULL;
        /* (a database of an older schema has no such table: its time is not recorded) */
        if (sqlite3_prepare_v2(dst, "INSERT INTO backups_taken (at) VALUES (?)", -1, &st, NULL) ==
            SQLITE_OK) {
            if (sqlite3_bind_int64(st, 1, taken_at) != SQLITE_OK ||
                sqlite3_step(st) != SQLITE_DONE) {
                rp_log_error("%s: %s", to, sqlite3_errmsg(dst));
                err = RP_ERR_IO;
            }
        }
        sqlite3_finalize(st);
    }
    if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && err == RP_OK)
        err = RP_ERR_IO;
    sqlite3_close(src);
    return err;
}

rp_err_t rp_db_sqlite_inspect(const char *path, int64_t *schema, int64_t *taken_at, char *why,
                              size_t cap)
{
    sqlite3 *h = file_open(path, false);
    int64_t ok = 0;
    rp_err_t err = h != NULL ? RP_OK : RP_ERR_IO;

    why[0] = '\0';
    *schema = 0;
    *taken_at = 0;
    if (h == NULL)
        snprintf(why, cap, "cannot open it");
    if (err == RP_OK &&
        file_int(h, "SELECT max(version) FROM schema_version", schema, why, cap) != RP_OK) {
        err = RP_ERR_MALFORMED;
        snprintf(why + strlen(why), cap - strlen(why),
                 " (no schema version: not a Rampart database)");
    }
    if (err == RP_OK && file_int(h, "SELECT count(*) FROM tokens", &ok, why, cap) != RP_OK) {
        err = RP_ERR_MALFORMED;
        snprintf(why + strlen(why), cap - strlen(why), " (not a Rampart database)");
    }
    /* quick_check: every page read, the b-trees' order and structure checked */
    if (err == RP_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW ||
            strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
            snprintf(why, cap, "it is damaged: %s",
                     st != NULL && sqlite3_column_text(st, 0) != NULL
                         ? (const char *)sqlite3_column_text(st, 0)
                         : sqlite3_errmsg(h));
            err = RP_ERR_MALFORMED;
        }
        sqlite3_finalize(st);
    }
    if (err == RP_OK &&
        file_int(h, "SELECT max(at) FROM backups_taken", taken_at, why, cap) != RP_OK) {
        *taken_at = 0; /* (not taken by rampart-server backup, or before schema 33) */
        why[0] = '\0';
    }
    sqlite3_close(h);
    return err;
}

rp_err_t rp_db_sqlite_settle(const char *path)
{
    sqlite3 *h = file_open(path, true);
    rp_err_t err = h != NULL ? RP_OK : RP_ERR_IO;

    /* Everything the -wal holds written into the file; the last connection's close removes it. */
    if (err == RP_OK)
        err = exec_on(h, path, "PRAGMA wal_checkpoint(TRUNCATE);");
    if (h != NULL && sqlite3_close(h) != SQLITE_OK && err == RP_OK)
        err = RP_ERR_IO;
    return err;
}

const rp_db_driver_t rp_db_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .reset = sq_reset,
    .param_index = sq_param_index,
    .bind_int64 = sq_bind_int64,
    .bind_double = sq_bind_double,
    .bind_text = sq_bind_text,
    .bind_blob = sq_bind_blob,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .column_null = sq_column_null,
    .column_int64 = sq_column_int64,
    .column_double = sq_column_double,
    .column_text = sq_column_text,
    .column_blob = sq_column_blob,
    .changes = sq_changes,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .hold_open = sq_hold_open,
    .hold_take = sq_hold_take,
    .hold_drop = sq_hold_drop,
    .hold_lost = sq_hold_lost,
    .hold_close = sq_hold_close,
};
