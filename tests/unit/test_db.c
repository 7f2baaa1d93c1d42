/*
 * The SQL driver contract (server/store/db.h) as the store relies on it, against the SQLite
 * driver on a real database file: values round trip, NULL reads as db.h says, named parameters,
 * reset forgets bindings, error classes (a constraint is RP_ERR_EXISTS, a lost race RP_ERR_BUSY),
 * transactions and savepoints, greatest/least as SQLite's scalar max/min; the store's side of it
 * (a statement whose binding failed is not run, RETURNING ids); and which driver a target names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libpq-fe.h>

#include "db.h"
#include "rampart/log.h"
#include "store.h"
#include "store_internal.h"

struct fx {
    char dir[64], path[96];
    const rp_db_driver_t *drv;
    rp_db_t *db;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    rp_log_init("test_db", RP_LOG_ERROR);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/rampart-db-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/test.db", f->dir);
    f->drv = rp_db_driver_for(f->path);
    if (f->drv != &rp_db_sqlite || f->drv->open(f->path, &f->db) != RP_OK)
        return -1;
    if (f->drv->exec(f->db, "CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT UNIQUE);"
                            "CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id),"
                            " i INTEGER, d REAL, t TEXT, b BLOB);") != RP_OK)
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    f->drv->close(f->db);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    free(f);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run sql with no parameters that returns no rows. */
static rp_err_t run(struct fx *f, const char *sql)
{
    rp_db_stmt_t *st = f->drv->prepare(f->db, sql);
    bool row = true;
    rp_err_t err;

    assert_non_null(st);
    err = f->drv->step(st, &row);
    f->drv->finalize(st);
    return err;
}

/* The one integer sql answers. */
static int64_t one_int(struct fx *f, const char *sql)
{
    rp_db_stmt_t *st = f->drv->prepare(f->db, sql);
    bool row = false;
    int64_t v;

    assert_non_null(st);
    assert_int_equal(f->drv->step(st, &row), RP_OK);
    assert_true(row);
    v = f->drv->column_int64(st, 0);
    f->drv->finalize(st);
    return v;
}

/* Every type round trips; NULL reads as 0, "" and an empty blob; a zero-length blob is one. */
static void values_round_trip(void **state)
{
    struct fx *f = *state;
    const rp_db_driver_t *d = f->drv;
    rp_db_stmt_t *st = d->prepare(f->db, "INSERT INTO c (id, i, d, t, b) VALUES (?, ?, ?, ?, ?)");
    const uint8_t blob[3] = {0, 0xff, 7};
    char text[8] = "hello";
    size_t len = 99;
    bool row = true;

    assert_non_null(st);
    assert_int_equal(d->bind_int64(st, 1, 1), RP_OK);
    assert_int_equal(d->bind_int64(st, 2, INT64_MIN), RP_OK);
    assert_int_equal(d->bind_double(st, 3, 0.25), RP_OK);
    assert_int_equal(d->bind_text(st, 4, text, 3), RP_OK); /* "hel" */
    assert_int_equal(d->bind_blob(st, 5, blob, sizeof(blob)), RP_OK);
    memset(text, 'x', sizeof(text)); /* copied: the caller's buffer may change */
    assert_int_equal(d->step(st, &row), RP_OK);
    assert_false(row);
    assert_int_equal(d->changes(st), 1);
    d->reset(st); /* bindings forgotten: all but the ID NULL */
    assert_int_equal(d->bind_int64(st, 1, 2), RP_OK);
    assert_int_equal(d->step(st, &row), RP_OK);
    d->reset(st);
    assert_int_equal(d->bind_int64(st, 1, 3), RP_OK);
    assert_int_equal(d->bind_blob(st, 5, "", 0), RP_OK);
    assert_int_equal(d->step(st, &row), RP_OK);
    d->finalize(st);

    st = d->prepare(f->db, "SELECT i, d, t, b, typeof(b) FROM c WHERE id = :id");
    assert_non_null(st);
    assert_int_equal(d->param_index(st, ":id"), 1);
    assert_int_equal(d->param_index(st, ":nope"), 0);
    assert_int_equal(d->bind_int64(st, d->param_index(st, ":id"), 1), RP_OK);
    assert_int_equal(d->step(st, &row), RP_OK);
    assert_true(row);
    assert_int_equal(d->column_int64(st, 0), INT64_MIN);
    assert_true(d->column_double(st, 1) == 0.25);
    assert_string_equal(d->column_text(st, 2), "hel");
    assert_memory_equal(d->column_blob(st, 3, &len), blob, sizeof(blob));
    assert_int_equal(len, sizeof(blob));
    assert_false(d->column_null(st, 3));
    assert_int_equal(d->step(st, &row), RP_OK);
    assert_false(row);
    d->reset(st);
    assert_int_equal(d->bind_int64(st, 1, 2), RP_OK);
    assert_int_equal(d->step(st, &row), RP_OK);
    assert_true(row);
    assert_true(d->column_null(st, 0));
    assert_int_equal(d->column_int64(st, 0), 0);
    assert_string_equal(d->column_text(st, 2), "");
    assert_non_null(d->column_blob(st, 3, &len));
    assert_int_equal(len, 0);
    d->reset(st);
    assert_int_equal(d->bind_int64(st, 1, 3), RP_OK);
    assert_int_equal(d->step(st, &row), RP_OK);
    assert_false(d->column_null(st, 3)); /* the pages' open upper bound: a blob, not NULL */
    assert_string_equal(d->column_text(st, 4), "blob");
    d->finalize(st);
}

/* A unique, primary-key or foreign-key violation is RP_ERR_EXISTS; other failures RP_ERR_IO. */
static void error_classes(void **state)
{
    struct fx *f = *state;

    assert_int_equal(run(f, "INSERT INTO p (id, name) VALUES (1, 'a')"), RP_OK);
    assert_int_equal(run(f, "INSERT INTO p (id, name) VALUES (1, 'b')"), RP_ERR_EXISTS);
    assert_int_equal(run(f, "INSERT INTO p (id, name) VALUES (2, 'a')"), RP_ERR_EXISTS);
    assert_int_equal(run(f, "INSERT INTO c (id, p) VALUES (1, 7)"), RP_ERR_EXISTS); /* no p 7 */
    assert_int_equal(run(f, "INSERT INTO c (id, p) VALUES (1, 1)"), RP_OK);
    assert_int_equal(run(f, "SELECT abs(-9223372036854775807 - 1)"), RP_ERR_IO); /* overflow */
    assert_int_equal(f->drv->exec(f->db, "INSERT INTO p (id, name) VALUES (1, 'c')"),
                     RP_ERR_EXISTS);
    assert_null(f->drv->prepare(f->db, "SELECT * FROM no_such_table"));
}

/*
 * A write in a transaction whose snapshot another connection's commit made stale fails as a
 * lost race, RP_ERR_BUSY, at once (SQLite's BUSY_SNAPSHOT: waiting would not help), and the
 * whole transaction, run again, passes.
 */
static void lost_race_is_busy(void **state)
{
    struct fx *f = *state;
    rp_db_t *other;

    assert_int_equal(f->drv->open(f->path, &other), RP_OK);
    assert_int_equal(f->drv->exec(f->db, "BEGIN"), RP_OK); /* a reader's snapshot */
    assert_int_equal(one_int(f, "SELECT count(*) FROM p"), 0);
    assert_int_equal(f->drv->exec(other, "INSERT INTO p (id, name) VALUES (5, 'x')"), RP_OK);
    assert_int_equal(run(f, "INSERT INTO p (id, name) VALUES (6, 'y')"), RP_ERR_BUSY);
    assert_int_equal(f->drv->rollback(f->db), RP_OK);
    assert_int_equal(f->drv->begin(f->db), RP_OK);
    assert_int_equal(run(f, "INSERT INTO p (id, name) VALUES (6, 'y')"), RP_OK);
    assert_int_equal(f->drv->commit(f->db), RP_OK);
    assert_int_equal(one_int(f, "SELECT count(*) FROM p"), 2);
    f->drv->close(other);
}

/* Rollback undoes; savepoints nest inside a transaction and undo only their part. */
static void transactions(void **state)
{
    struct fx *f = *state;

    assert_int_equal(f->drv->begin(f->db), RP_OK);
    assert_int_equal(run(f, "INSERT INTO p (id, name) VALUES (1, 'a')"), RP_OK);
    assert_int_equal(f->drv->rollback(f->db), RP_OK);
    assert_int_equal(one_int(f, "SELECT count(*) FROM p"), 0);
    assert_int_equal(f->drv->begin(f->db), RP_OK);
    assert_int_equal(run(f, "INSERT INTO p (id, name) VALUES (1, 'a')"), RP_OK);
    assert_int_equal(f->drv->exec(f->db, "SAVEPOINT sq_nested"), RP_OK);
    assert_int_equal(run(f, "INSERT INTO p (id, name) VALUES (2, 'b')"), RP_OK);
    assert_int_equal(f->drv->exec(f->db, "ROLLBACK TO sq_nested"), RP_OK);
    assert_int_equal(f->drv->exec(f->db, "RELEASE sq_nested"), RP_OK);
    assert_int_equal(f->drv->commit(f->db), RP_OK);
    assert_int_equal(one_int(f, "SELECT count(*) FROM p"), 1);
    assert_int_equal(one_int(f, "SELECT id FROM p"), 1);
}

/* greatest and least, as the store's statements use them: SQLite's scalar max and min. */
static void greatest_least(void **state)
{
    struct fx *f = *state;

    assert_int_equal(one_int(f, "SELECT greatest(1, 3, 2)"), 3);
    assert_int_equal(one_int(f, "SELECT least(4, -5, 2)"), -5);
    assert_int_equal(one_int(f, "SELECT greatest(2.5, 2) = 2.5"), 1);
    assert_int_equal(one_int(f, "SELECT greatest('ab', 'b') = 'b'"), 1);
    assert_int_equal(one_int(f, "SELECT greatest('b', 'ba') = 'ba'"), 1);
    assert_int_equal(one_int(f, "SELECT least('', 'a') = ''"), 1);
    assert_int_equal(one_int(f, "SELECT greatest(9, 'a') = 'a'"), 1); /* text above numbers */
    assert_int_equal(one_int(f, "SELECT typeof(greatest('z', x'')) = 'blob'"), 1); /* above */
    assert_int_equal(one_int(f, "SELECT greatest(1, NULL) IS NULL"), 1);
    assert_int_equal(one_int(f, "SELECT least(NULL, 1) IS NULL"), 1);
}

/* The store's side: a statement whose binding failed is not run (nothing written, an error),
 * and an insert's RETURNING id is the new row's. */
static void store_bind_failure_not_run(void **state)
{
    struct fx *f = *state;
    rp_store_t *s;
    sq_st_t *st;
    int64_t id = 0;
    char dir[80];

    (void)f;
    snprintf(dir, sizeof(dir), "%s", f->dir);
    assert_int_equal(rp_store_open(dir, &s), RP_OK);
    assert_int_equal(sq_exec(s, "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"), RP_OK);
    st = sq_prepare(s, "INSERT INTO t (v) VALUES (?) RETURNING id");
    assert_non_null(st);
    db_bind_blob(st, 1, "x", (size_t)INT32_MAX + 1); /* refused by the driver */
    assert_int_not_equal(sq_step_id(s, st, &id), RP_OK);
    db_bind_blob(st, 1, "x", 1); /* reset by the failure: the statement is usable again */
    assert_int_equal(sq_step_id(s, st, &id), RP_OK);
    assert_int_equal(id, 1);
    db_bind_blob(st, 1, "y", 1);
    assert_int_equal(sq_step_id(s, st, &id), RP_OK);
    assert_int_equal(id, 2);
    sq_finalize(st);
    st = sq_prepare(s, "SELECT count(*) FROM t");
    assert_int_equal(db_step(st), DB_ROW);
    assert_int_equal(db_column_int64(st, 0), 2);
    sq_finalize(st);
    rp_store_close(s);
}

/* Which driver a target names: postgresql:// and postgres:// are PostgreSQL (which the store
 * refuses, with a clear error, until it runs there); anything else a SQLite file. */
static void driver_for_target(void **state)
{
    struct fx *f = *state;
    rp_store_t *s = (rp_store_t *)1;
    char path[128];

    assert_ptr_equal(rp_db_driver_for("/var/lib/rampart/rampart.db"), &rp_db_sqlite);
    assert_ptr_equal(rp_db_driver_for("rampart.db"), &rp_db_sqlite);
    assert_ptr_equal(rp_db_driver_for("postgresql://rampart@db/rampart"), &rp_db_postgresql);
    assert_ptr_equal(rp_db_driver_for("POSTGRES://db/rampart"), &rp_db_postgresql);
    assert_null(rp_db_driver_for(""));
    /* a PostgreSQL target opens on the PostgreSQL driver (unit.server_pg...): none here */
    assert_int_not_equal(
        rp_store_open_target("postgresql:///rampart?host=/nonexistent-rampart-test", &s), RP_OK);
    assert_null(s);
    assert_int_equal(rp_store_open_target("", &s), RP_ERR_INVALID_ARG);
    snprintf(path, sizeof(path), "%s/by-target.db", f->dir);
    assert_int_equal(rp_store_open_target(path, &s), RP_OK);
    assert_int_equal(rp_store_schema_version(s), rp_store_schema_newest);
    rp_store_close(s);
}

/* A target in a message: libpq's fields, never the password, wherever the target puts it. */
static void target_described_without_password(void **state)
{
    static const char *const with_password[] = {
        "postgresql://rampart:s3cret@db.example.com:5433/fleet",
        "postgresql://rampart@db.example.com:5433/fleet?password=s3cret",
        "postgres://rampart:s3cret@db.example.com:5433/fleet?sslmode=require",
    };
    char out[512];

    (void)state;
    for (size_t i = 0; i < sizeof(with_password) / sizeof(with_password[0]); i++) {
        rp_db_target_describe(with_password[i], out, sizeof(out));
        assert_string_equal(out, "PostgreSQL database fleet on db.example.com:5433 as rampart");
    }
    /* what libpq cannot parse is not echoed (it may hold a password too) */
    rp_db_target_describe("postgresql://rampart:s3cret@[::1/fleet", out, sizeof(out));
    assert_null(strstr(out, "s3cret"));
    rp_db_target_describe("postgresql:///postgres?host=/tmp/pg&user=rampart", out, sizeof(out));
    assert_string_equal(out, "PostgreSQL database postgres on /tmp/pg as rampart");
    rp_db_target_describe("/var/lib/rampart/rampart.db", out, sizeof(out));
    assert_string_equal(out, "SQLite file /var/lib/rampart/rampart.db");
}

/* libpq's keyword form is PostgreSQL, never a SQLite file named with the password (review r15ops
 * M4); a password anywhere in a target is seen (for the warnings), and scrubbed from libpq's own
 * messages, which quote what they cannot parse. */
static void target_keywords_and_password(void **state)
{
    static const struct {
        const char *target, *password;
    } cases[] = {
        {"postgresql://rampart:S3c%zzPw@127.0.0.1:1/rampart",                    "S3c%zzPw"    },
        {"postgresql://rampart:S3cretPw@[db.example/rampart",                    "S3cretPw"    },
        {"postgresql://rampart@db/rampart?password=S3cretPw&bogus=1",            "S3cretPw"    },
        {"host=127.0.0.1 user=rampart password=S3cretPw dbname=rampart bogus=1", "S3cretPw"    },
        {"host=db password = 'S3c ret\\'Pw' dbname=rampart bogus=1",             "S3c ret\\'Pw"},
    };
    char out[1024];

    (void)state;
    assert_ptr_equal(rp_db_driver_for("host=127.0.0.1 user=rampart password=x dbname=rampart"),
                     &rp_db_postgresql);
    assert_ptr_equal(rp_db_driver_for(" dbname = rampart"), &rp_db_postgresql);
    assert_ptr_equal(rp_db_driver_for("./a=b.db"), &rp_db_sqlite);
    assert_ptr_equal(rp_db_driver_for("/srv/x=y/rampart.db"), &rp_db_sqlite);
    rp_db_target_describe("host=db.example port=5433 user=rampart password=S3cretPw dbname=fleet",
                          out, sizeof(out));
    assert_string_equal(out, "PostgreSQL database fleet on db.example:5433 as rampart");
    assert_false(rp_db_target_has_password("postgresql://rampart@db/rampart"));
    assert_false(rp_db_target_has_password("host=db user=rampart dbname=rampart"));
    assert_false(rp_db_target_has_password("/var/lib/rampart/password=x.db"));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(cases[i].target, &err);
        char msg[900];

        assert_true(rp_db_target_has_password(cases[i].target));
        /* libpq's own message about it (each case is one it refuses), and the target itself */
        assert_null(opts);
        assert_non_null(err);
        snprintf(msg, sizeof(msg), "%s / %s", err, cases[i].target);
        PQfreemem(err);
        rp_db_scrub(cases[i].target, msg, out, sizeof(out));
        assert_null(strstr(out, cases[i].password));
        assert_null(strstr(out, "S3c"));
        assert_non_null(strstr(out, "***"));
    }
    /* a password libpq decodes (%41 is A) is scrubbed as written and as decoded */
    rp_db_scrub("postgresql://rampart:p%41ss@db/rampart", "x p%41ss y pAss z", out, sizeof(out));
    assert_string_equal(out, "x *** y *** z");
    rp_db_scrub("/var/lib/rampart/rampart.db", "as it is", out, sizeof(out));
    assert_string_equal(out, "as it is");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(values_round_trip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(error_classes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(lost_race_is_busy, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(transactions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(greatest_least, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(store_bind_failure_not_run, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(driver_for_target, fx_setup, fx_teardown),
        cmocka_unit_test(target_described_without_password),
        cmocka_unit_test(target_keywords_and_password),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
