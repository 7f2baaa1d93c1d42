/*
 * The replicas' hold on their database (server/store/hold.h, the drivers' holds in db.h), on
 * SQLite (unit.hold) and on a real PostgreSQL (unit.hold_pg: tests/tools/pg): replicas of one
 * --blobs serve together, `blobs move` is refused beside any of them and they beside it, a
 * replica of the other --blobs is refused, a restore runs alone and is named to those it refuses,
 * a holder killed with SIGKILL leaves nothing held, and (PostgreSQL) a hold whose session the
 * server ended is taken again. And the commands' guard on
 * the database (rp_store_open_existing): no database where none is, and none made there.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/hold.h"
#include "store_target.h"

static struct rt_target t;

static int setup(void **state)
{
    rp_store_t *s;

    (void)state;
    if (rt_target_make(&t) != 0 || rt_store_open(&t, &s) != RP_OK)
        return -1;
    rp_store_close(s);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return rt_target_remove(&t);
}

static rp_hold_t *serving(rp_blobs_kind_t kind)
{
    rp_hold_t *h = NULL;
    char why[400];

    assert_int_equal(rp_hold_serving(t.target, kind, &h, why, sizeof(why)), RP_OK);
    assert_non_null(h);
    return h;
}

/* A hold refused with RP_ERR_EXISTS, its reason holding want. alone: blobs move's. */
static void refused(bool alone, rp_blobs_kind_t kind, const char *want)
{
    rp_hold_t *h = (rp_hold_t *)1;
    char why[400] = "";

    assert_int_equal(alone ? rp_hold_alone(t.target, &h, why, sizeof(why))
                           : rp_hold_serving(t.target, kind, &h, why, sizeof(why)),
                     RP_ERR_EXISTS);
    assert_null(h);
    if (strstr(why, want) == NULL)
        fail_msg("wanted \"%s\" in: %s", want, why);
}

static void replicas_and_move(void **state)
{
    rp_hold_t *a, *b, *m = NULL;
    char why[400];

    (void)state;
    a = serving(RP_BLOBS_DIR);
    b = serving(RP_BLOBS_DIR); /* replicas of one --blobs: side by side */
    refused(true, RP_BLOBS_DIR, "a rampart-server serves this database");
    rp_hold_release(a);
    refused(true, RP_BLOBS_DIR, "a rampart-server serves this database"); /* b still does */
    rp_hold_release(b);
    assert_int_equal(rp_hold_alone(t.target, &m, why, sizeof(why)), RP_OK);
    refused(false, RP_BLOBS_DIR, "`rampart-server blobs move` runs on this database");
    refused(false, RP_BLOBS_DATABASE, "`rampart-server blobs move` runs on this database");
    refused(true, RP_BLOBS_DIR, "another blobs move runs on it");
    rp_hold_keep(m); /* (nothing lost: nothing done) */
    rp_hold_release(m);
    rp_hold_release(serving(RP_BLOBS_DATABASE));
    rp_hold_keep(NULL);
    rp_hold_release(NULL);
}

static void other_blobs_refused(void **state)
{
    rp_hold_t *a, *b;

    (void)state;
    a = serving(RP_BLOBS_DIR);
    refused(false, RP_BLOBS_DATABASE,
            "serves with --blobs dir, and this one was started with "
            "--blobs database");
    b = serving(RP_BLOBS_DIR); /* (the refused one left nothing held) */
    rp_hold_release(a);
    refused(false, RP_BLOBS_DATABASE, "serves with --blobs dir");
    rp_hold_release(b);
    a = serving(RP_BLOBS_DATABASE); /* none of dir serves now */
    refused(false, RP_BLOBS_DIR,
            "serves with --blobs database, and this one was started with "
            "--blobs dir");
    rp_hold_release(a);
}

/* A restore's hold refused, its reason holding "serves this data directory". */
static void restore_refused(void)
{
    rp_hold_t *r = (rp_hold_t *)1;
    char why[400] = "";

    assert_int_equal(rp_hold_restore(t.target, &r, why, sizeof(why)), RP_ERR_EXISTS);
    assert_null(r);
    if (strstr(why, "a rampart-server serves this data directory") == NULL)
        fail_msg("wanted the servers named in: %s", why);
}

/* restore runs alone: refused beside a server, a move or another restore; a server and a move
 * refused beside it, naming it; the servers' locks as they were once it ends. */
static void restore_alone(void **state)
{
    rp_hold_t *a, *r = NULL;
    char why[400];

    (void)state;
    a = serving(RP_BLOBS_DATABASE);
    restore_refused();
    rp_hold_release(a);
    assert_int_equal(rp_hold_alone(t.target, &a, why, sizeof(why)), RP_OK);
    restore_refused();
    rp_hold_release(a);
    assert_int_equal(rp_hold_restore(t.target, &r, why, sizeof(why)), RP_OK);
    refused(false, RP_BLOBS_DIR, "`rampart-server restore` runs on this database");
    refused(false, RP_BLOBS_DATABASE, "`rampart-server restore` runs on this database");
    refused(true, RP_BLOBS_DIR, "`rampart-server restore` runs on this database");
    restore_refused();
    rp_hold_release(r);
    a = serving(RP_BLOBS_DIR);
    rp_hold_release(a);
    assert_int_equal(rp_hold_restore(t.target, &r, why, sizeof(why)), RP_OK);
    rp_hold_release(r);
}

/* Whether blobs move's hold is taken now (and let go again). */
static bool alone_taken(void)
{
    rp_hold_t *m = NULL;
    char why[400];
    rp_err_t err = rp_hold_alone(t.target, &m, why, sizeof(why));

    assert_true(err == RP_OK || err == RP_ERR_EXISTS);
    rp_hold_release(m);
    return err == RP_OK;
}

static void killed_holder_holds_nothing(void **state)
{
    int ready[2];
    char byte;
    pid_t pid;
    int status;
    bool taken = false;

    (void)state;
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* a replica, killed below however far it got */
        rp_hold_t *h = NULL;
        char why[400];
        close(ready[0]);
        if (rp_hold_serving(t.target, RP_BLOBS_DIR, &h, why, sizeof(why)) != RP_OK ||
            write(ready[1], "r", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &byte, 1), 1);
    close(ready[0]);
    assert_false(alone_taken());
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    /* SQLite: at once; PostgreSQL: once its backend has read the end of the socket */
    for (int i = 0; i < 2000 && !(taken = alone_taken()); i++)
        usleep(10000);
    assert_true(taken);
}

/* The pid of the PostgreSQL backend holding the serving lock (0: none), on the connection db. */
static long long serving_backend(rp_db_t *db)
{
    rp_db_stmt_t *st = db->drv->prepare(
        db, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 1380470860 AND "
            "objid = 0 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = "
            "current_database()) ORDER BY pid LIMIT 1");
    long long pid = 0;
    bool row = false;

    assert_non_null(st);
    assert_int_equal(db->drv->step(st, &row), RP_OK);
    if (row)
        pid = (long long)db->drv->column_int64(st, 0);
    db->drv->finalize(st);
    return pid;
}

static void lost_hold_taken_again(void **state)
{
    rp_db_t *db = NULL;
    rp_hold_t *h;
    long long before, now = 0;
    char sql[128];

    (void)state;
    if (rt_pg_uri() == NULL)
        skip(); /* (a lock on a file ends only with the file) */
    assert_int_equal(rp_db_postgresql.open(t.target, &db), RP_OK);
    h = serving(RP_BLOBS_DIR);
    before = serving_backend(db);
    assert_true(before > 0);
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%lld)", before);
    assert_int_equal(db->drv->exec(db, sql), RP_OK);
    for (int i = 0; i < 2000; i++) {
        rp_hold_keep(h);
        now = serving_backend(db);
        if (now != 0 && now != before)
            break;
        usleep(10000);
    }
    assert_true(now != 0 && now != before);
    assert_false(alone_taken());
    rp_hold_release(h);
    assert_true(alone_taken());
    db->drv->close(db);
}

static void no_database_none_made(void **state)
{
    char target[1100], sql[128], name[48];
    rp_store_t *s = (rp_store_t *)1;

    (void)state;
    /* where the database is: opened */
    assert_int_equal(rp_store_open_existing(t.target, &s), RP_OK);
    assert_non_null(s);
    rp_store_close(s);
    if (rt_pg_uri() == NULL) {
        /* a directory without it, and one that is not there: none, and nothing made */
        snprintf(target, sizeof(target), "%s/other.db", t.dir);
        assert_int_equal(rp_store_open_existing(target, &s), RP_ERR_NOT_FOUND);
        assert_null(s);
        assert_int_not_equal(access(target, F_OK), 0);
        snprintf(target, sizeof(target), "%s/typo/rampart.db", t.dir);
        assert_int_equal(rp_store_open_existing(target, &s), RP_ERR_NOT_FOUND);
        snprintf(target, sizeof(target), "%s/typo", t.dir);
        assert_int_not_equal(access(target, F_OK), 0);
        return;
    }
    /* a PostgreSQL database without the schema: none, and none installed (asked twice) */
    snprintf(name, sizeof(name), "rt_empty_%ld", (long)getpid());
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    assert_int_equal(rt_pg_admin(sql), 0);
    assert_int_equal(rt_uri_with_db(rt_pg_uri(), name, target, sizeof(target)), 0);
    assert_int_equal(rp_store_open_existing(target, &s), RP_ERR_NOT_FOUND);
    assert_null(s);
    assert_int_equal(rp_store_open_existing(target, &s), RP_ERR_NOT_FOUND);
}

/* SQLite: a hold's file made by a command run as root is given to the database file's owner, so
 * that the service's user can open it at its next start (as SQLite gives its -wal and -shm). */
static void hold_file_owned_as_the_database(void **state)
{
    char path[1100];
    struct stat sb;
    rp_hold_t *h = NULL;
    char why[400];

    (void)state;
    if (rt_pg_uri() != NULL || geteuid() != 0)
        skip();
    snprintf(path, sizeof(path), "%s-hold.lock", t.target);
    (void)unlink(path);
    assert_int_equal(chown(t.target, 65534, 65534), 0);
    assert_int_equal(rp_hold_alone(t.target, &h, why, sizeof(why)), RP_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_uid, 65534);
    assert_int_equal(sb.st_gid, 65534);
    rp_hold_release(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(replicas_and_move, setup, teardown),
        cmocka_unit_test_setup_teardown(other_blobs_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(restore_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_holder_holds_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_hold_taken_again, setup, teardown),
        cmocka_unit_test_setup_teardown(no_database_none_made, setup, teardown),
        cmocka_unit_test_setup_teardown(hold_file_owned_as_the_database, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
