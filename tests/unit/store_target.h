/*
 * The store's conformance suite's fixture: where a test's store lives. The store's tests (of
 * store.h's operations) run twice, as unit.X on SQLite (a file in a new directory) and as unit.X_pg
 * on PostgreSQL (tests/tools/pg run sets RAMPART_TEST_PG to a server's URI): there each test case
 * gets a new, empty database, a copy of one made at the schema's baseline once per process
 * (CREATE DATABASE ... TEMPLATE: a copy of its files, far quicker than installing the schema).
 * Tests of one engine's internals (SQLite's query plans, its VM steps, PRAGMAs) call
 * RT_SQLITE_ONLY() first.
 */
#ifndef RAMPART_TEST_STORE_TARGET_H
#define RAMPART_TEST_STORE_TARGET_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "store.h"

struct rt_target {
    char dir[64];      /* a new directory, for the test's files (and SQLite's database) */
    char db[48];       /* PostgreSQL: the database's name; "" on SQLite */
    char target[1024]; /* what rp_store_open_target opens */
};

static inline const char *rt_pg_uri(void)
{
    const char *uri = getenv("RAMPART_TEST_PG");

    return uri != NULL && uri[0] != '\0' ? uri : NULL;
}

#define RT_SQLITE_ONLY()                                                                           \
    do {                                                                                           \
        if (rt_pg_uri() != NULL)                                                                   \
            skip();                                                                                \
    } while (0)

/* The server's URI with another database's name (the path after the authority). */
static inline int rt_uri_with_db(const char *uri, const char *name, char *out, size_t cap)
{
    const char *p = strstr(uri, "://"), *q;

    if (p == NULL || (p = strchr(p + 3, '/')) == NULL)
        return -1;
    q = p + strcspn(p, "?");
    return snprintf(out, cap, "%.*s/%s%s", (int)(p - uri), uri, name, q) < (int)cap ? 0 : -1;
}

/* SQL on the server's maintenance database (CREATE/DROP DATABASE: never in a transaction). */
static inline int rt_pg_admin(const char *sql)
{
    rp_db_t *db;
    rp_err_t err = rp_db_postgresql.open(rt_pg_uri(), &db);

    if (err != RP_OK)
        return -1;
    err = db->drv->exec(db, sql);
    db->drv->close(db);
    return err == RP_OK ? 0 : -1;
}

/* A new place for a store: SQLite's file in t->dir, or a new PostgreSQL database. */
static inline int rt_target_make(struct rt_target *t)
{
    static char base[48];
    static unsigned made;
    char sql[160];

    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/rampart-store-XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    if (rt_pg_uri() == NULL) {
        snprintf(t->target, sizeof(t->target), "%s/rampart.db", t->dir);
        return 0;
    }
    if (base[0] == '\0') {
        /* the baseline, once: installed by the store itself, then only copied */
        char name[48], uri[1024];
        rp_store_t *s;

        snprintf(name, sizeof(name), "rt_base_%ld", (long)getpid());
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
        if (rt_pg_admin(sql) != 0 || rt_uri_with_db(rt_pg_uri(), name, uri, sizeof(uri)) != 0 ||
            rp_store_open_target(uri, &s) != RP_OK)
            return -1;
        rp_store_close(s);
        snprintf(base, sizeof(base), "%s", name);
    }
    snprintf(t->db, sizeof(t->db), "rt_%ld_%u", (long)getpid(), ++made);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE %s", t->db, base);
    if (rt_pg_admin(sql) != 0)
        return -1;
    return rt_uri_with_db(rt_pg_uri(), t->db, t->target, sizeof(t->target));
}

static inline rp_err_t rt_store_open(const struct rt_target *t, rp_store_t **out)
{
    return rp_store_open_target(t->target, out);
}

/* Remove what rt_target_make made (the stores on it closed). */
static inline int rt_target_remove(struct rt_target *t)
{
    char cmd[160];

    /* (a PostgreSQL database stays: dropping one costs more than its copy, and the server and
     * its files go when the test binary ends: tests/tools/pg run) */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif /* RAMPART_TEST_STORE_TARGET_H */
