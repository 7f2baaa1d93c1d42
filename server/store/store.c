/*
 * The store's connection and its service identity records: one connection of a db.h driver per
 * rp_store_t (SQLite by default; the driver owns WAL, sync and the engine's SQL), prepared
 * statements cached per connection, the process's write lock and transactions that nest as
 * savepoints. Multi-step changes run in one transaction that holds the database's write lock, so
 * a crash leaves each either done or not. Tenants, tokens, devices, attestations, certificates,
 * CAs and appraisal policies live here; the schema's migrations in migrations.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "names.h"
#include "nonce.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "rampart/text.h"
#include "store_internal.h"

/*
 * Writers take turns in the process rather than in the database: SQLite's busy handler sleeps in
 * whole milliseconds, which would idle the workers; a mutex hands the write lock over at once.
 * (Other processes on the same database still meet the driver's wait.)
 */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

const char *rp_role_name(rp_role_t role)
{
    switch (role) {
    case RP_ROLE_READER: return "reader";
    case RP_ROLE_CONTRIBUTOR: return "contributor";
    case RP_ROLE_ADMIN: return "admin";
    case RP_ROLE_SYSTEM: return "system";
    default: return "none";
    }
}

rp_role_t rp_role_parse(const char *name)
{
    for (int r = RP_ROLE_READER; r <= RP_ROLE_SYSTEM; r++)
        if (name != NULL && strcmp(name, rp_role_name((rp_role_t)r)) == 0)
            return (rp_role_t)r;
    return RP_ROLE_NONE;
}

void rp_ca_record_free(rp_ca_record_t *ca)
{
    free(ca->cert_pem);
    if (ca->key_pem_enc != NULL) {
        rp_wipe(ca->key_pem_enc, strlen(ca->key_pem_enc));
        free(ca->key_pem_enc);
    }
    ca->cert_pem = ca->key_pem_enc = NULL;
}

rp_err_t sq_error(rp_store_t *s, const char *what)
{
    rp_err_t err = s->err;

    s->err = RP_OK;
    rp_log_error("database: %s failed", what);
    return err == RP_ERR_BUSY || err == RP_ERR_NO_MEMORY || err == RP_ERR_INVALID_ARG ? err
                                                                                      : RP_ERR_IO;
}

rp_err_t sq_exec(rp_store_t *s, const char *sql)
{
    rp_err_t err = s->db->drv->exec(s->db, sql);

    sq_note(s, err);
    return err;
}

rp_err_t rp_store_failure(const rp_store_t *s)
{
    return s != NULL ? s->noted : RP_OK;
}

void rp_store_failure_forget(rp_store_t *s)
{
    if (s != NULL)
        s->noted = RP_OK;
}

sq_st_t *sq_prepare(rp_store_t *s, const char *sql)
{
    sq_st_t *st = calloc(1, sizeof(*st));

    if (st == NULL) {
        rp_log_error("database: out of memory for a prepared statement");
        return NULL;
    }
    st->s = s;
    st->h = s->db->drv->prepare(s->db, sql);
    if (st->h == NULL) {
        free(st);
        return NULL;
    }
    return st;
}

void sq_finalize(sq_st_t *st)
{
    if (st == NULL)
        return;
    st->h->drv->finalize(st->h);
    free(st);
}

/*
 * A prepared statement for one of this file's SQL strings, kept for the connection's life. Every
 * function resets the statements it used before it returns: a statement left mid-result holds a
 * read transaction open (SQLite: whose stale snapshot would make this connection's next write
 * fail as a stale snapshot (BUSY_SNAPSHOT), and which stops WAL checkpoints).
 */
sq_st_t *sq_stmt(rp_store_t *s, const char *sql)
{
    sq_st_t *st;

    for (size_t i = 0; i < s->ncache; i++) {
        if (s->cache[i].sql == sql) {
            db_reset(s->cache[i].stmt);
            return s->cache[i].stmt;
        }
    }
    if (s->ncache == s->cache_cap) {
        size_t cap = s->cache_cap == 0 ? STMT_CACHE_INITIAL : 2 * s->cache_cap;
        struct sq_cached *grown = realloc(s->cache, cap * sizeof(*grown));
        if (grown == NULL) {
            rp_log_error("database: out of memory for a prepared statement");
            return NULL;
        }
        s->cache = grown;
        s->cache_cap = cap;
    }
    st = sq_prepare(s, sql);
    if (st == NULL)
        return NULL;
    s->cache[s->ncache].sql = sql;
    s->cache[s->ncache].stmt = st;
    s->ncache++;
    return st;
}

void sq_text_col(sq_st_t *st, int col, char *out, size_t cap)
{
    const char *t = db_column_text(st, col);

    snprintf(out, cap, "%s", t != NULL ? (const char *)t : "");
}

rp_err_t sq_random_id(char prefix, char *out, size_t cap)
{
    uint8_t b[12];
    char hex[2 * sizeof(b) + 1];

    if (RAND_bytes(b, sizeof(b)) != 1 || rp_hex_encode(b, sizeof(b), hex, sizeof(hex)) != RP_OK)
        return RP_ERR_CRYPTO;
    snprintf(out, cap, "%c_%s", prefix, hex);
    return RP_OK;
}

rp_err_t sq_name(const char *name, char canonical[RP_NAME_MAX + 1], rp_name_keys_t *keys)
{
    const char *why;

    if (name == NULL ||
        rp_name_check(name, strlen(name), canonical, RP_NAME_MAX + 1, &why) != RP_OK)
        return RP_ERR_INVALID_ARG;
    return rp_name_keys(canonical, keys);
}

/* The tables whose names have keys (the statements below are made from their names). */
static const struct {
    const char *what, *table;
} named_tables[] = {
    {"tenant",       "tenants"      },
    {"product",      "products"     },
    {"device group", "device_groups"},
    {"image key",    "image_keys"   },
};
static const char *const key_columns[2] = {"name_key", "name_key_written"};

/* Warnings of one kind per table at one open: a database made before the rule may hold many. */
#define NAME_WARNINGS_MAX 20

/* A row whose name lacks a key: the keys to set (NULL where it has one already). */
struct keyless {
    char id[RP_ID_SIZE];
    char *keys[2]; /* folded, as written */
};

static void keyless_free(struct keyless *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].keys[0]);
        free(rows[i].keys[1]);
    }
    free(rows);
}

/* Set the keys rows lack, in one transaction. A key another row holds already - look-alikes made
 * before names had keys, or before the keys were what they are - stays unset: both names stay,
 * and no new name may look like either. */
static rp_err_t keys_set(rp_store_t *s, size_t t, struct keyless *rows, size_t n, bool review)
{
    sq_st_t *st[2] = {NULL, NULL};
    unsigned clashes = 0;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    for (int k = 0; k < 2 && err == RP_OK; k++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "UPDATE %s SET %s = ? WHERE id = ? AND %s IS NULL",
                 named_tables[t].table, key_columns[k], key_columns[k]);
        if ((st[k] = sq_prepare(s, sql)) == NULL)
            err = RP_ERR_IO;
    }
    for (size_t i = 0; i < n && err == RP_OK; i++) {
        bool clash = false;
        for (int k = 0; k < 2 && err == RP_OK; k++) {
            if (rows[i].keys[k] == NULL)
                continue;
            db_bind_text(st[k], 1, rows[i].keys[k]);
            db_bind_text(st[k], 2, rows[i].id);
            /* each in a savepoint of its own: a clash undoes only it (PostgreSQL would abort
             * the whole transaction on a failed statement) */
            err = sq_begin(s);
            if (err == RP_OK)
                err = sq_end(s, sq_step_done(s, st[k], NULL));
            if (err == RP_ERR_EXISTS) {
                clash = true;
                err = RP_OK;
            }
        }
        if (clash && review && ++clashes <= NAME_WARNINGS_MAX)
            rp_log_warn("the %s %s has a name that looks like another's in its scope (both were "
                        "made before such names were refused): both stay, and no new name may "
                        "look like either",
                        named_tables[t].what, rows[i].id);
    }
    if (review && clashes > NAME_WARNINGS_MAX)
        rp_log_warn("... and %u more %ss whose names look like another's",
                    clashes - NAME_WARNINGS_MAX, named_tables[t].what);
    sq_finalize(st[0]);
    sq_finalize(st[1]);
    return sq_end(s, err);
}

/*
 * At open: keys for the names of rows that lack them (made before names had keys, or before the
 * keys were what they are now, or by another process at this moment: the update is a no-op then).
 * At the process's first open, also a warning for each name the rule would refuse now (made
 * before it): such names keep working - a tenant's CA holds the first 64 characters of its name
 * (ca.c) - but an operator should know of them.
 */
static rp_err_t name_keys_fill(rp_store_t *s)
{
    static atomic_bool reviewed;
    bool review = !atomic_exchange(&reviewed, true);
    rp_err_t err = RP_OK;

    for (size_t t = 0; t < sizeof(named_tables) / sizeof(named_tables[0]) && err == RP_OK; t++) {
        struct keyless *rows = NULL;
        size_t n = 0, cap = 0;
        unsigned refused = 0, keyless = 0;
        sq_st_t *st = NULL;
        int rc = DB_DONE;
        char sql[128];

        /* Read them all first: the updates change the index the query may walk. */
        snprintf(sql, sizeof(sql), "SELECT id, name, %s IS NULL, %s IS NULL FROM %s",
                 key_columns[0], key_columns[1], named_tables[t].table);
        if ((st = sq_prepare(s, sql)) == NULL)
            err = RP_ERR_IO;
        while (err == RP_OK && (rc = db_step(st)) == DB_ROW) {
            const char *id = db_column_null(st, 0) ? NULL : db_column_text(st, 0);
            const char *name = db_column_null(st, 1) ? NULL : db_column_text(st, 1);
            bool lacks[2] = {db_column_int(st, 2) != 0, db_column_int(st, 3) != 0};
            char canonical[RP_NAME_MAX + 1];
            const char *why;
            rp_name_keys_t keys;

            if (id == NULL)
                continue;
            if (review && (name == NULL || rp_name_check(name, strlen(name), canonical,
                                                         sizeof(canonical), &why) != RP_OK)) {
                if (++refused <= NAME_WARNINGS_MAX)
                    rp_log_warn("the %s %s has a name from before today's rule, which refuses "
                                "it now (a name %s): it keeps working; new names follow the rule",
                                named_tables[t].what, id, name == NULL ? "must not be empty" : why);
            }
            if (!lacks[0] && !lacks[1])
                continue;
            if (name == NULL || rp_name_keys(name, &keys) != RP_OK) {
                if (review && ++keyless <= NAME_WARNINGS_MAX)
                    rp_log_warn("the %s %s has a name no key can be made for: no look-alike of it "
                                "is refused",
                                named_tables[t].what, id);
                continue;
            }
            if (n == cap) {
                struct keyless *grown = realloc(rows, (cap = cap ? 2 * cap : 16) * sizeof(*rows));
                if (grown == NULL) {
                    err = RP_ERR_NO_MEMORY;
                    break;
                }
                rows = grown;
            }
            snprintf(rows[n].id, sizeof(rows[n].id), "%s", id);
            rows[n].keys[0] = lacks[0] ? strdup(keys.folded) : NULL;
            rows[n].keys[1] = lacks[1] ? strdup(keys.as_written) : NULL;
            n++;
            if ((lacks[0] && rows[n - 1].keys[0] == NULL) ||
                (lacks[1] && rows[n - 1].keys[1] == NULL))
                err = RP_ERR_NO_MEMORY;
        }
        if (err == RP_OK && rc != DB_DONE)
            err = sq_error(s, "name keys");
        sq_finalize(st);
        if (refused > NAME_WARNINGS_MAX)
            rp_log_warn("... and %u more %ss whose names today's rule refuses",
                        refused - NAME_WARNINGS_MAX, named_tables[t].what);
        if (err == RP_OK && n > 0)
            err = keys_set(s, t, rows, n, review);
        keyless_free(rows, n);
    }
    return err;
}

sq_engine_t sq_engine(const rp_store_t *s)
{
    return s->db->drv == &rp_db_postgresql ? SQ_PG : SQ_SQLITE;
}

/* The one value of a query written for each engine (forms); what names it in a failure. */
static rp_err_t engine_value(rp_store_t *s, const char *const forms[SQ_ENGINES], const char *what,
                             int64_t *out)
{
    sq_st_t *st = sq_stmt_of(s, forms);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    if (db_step(st) == DB_ROW) {
        *out = db_column_int64(st, 0);
        err = RP_OK;
    } else {
        err = sq_error(s, what);
    }
    db_reset(st);
    return err;
}

rp_err_t sq_db_now(rp_store_t *s, int64_t *now)
{
    static const char *const SQL_NOW[SQ_ENGINES] = {
        "SELECT CAST(strftime('%s', 'now') AS INTEGER)",
        "SELECT CAST(floor(extract(epoch FROM clock_timestamp())) AS BIGINT)",
    };

    return engine_value(s, SQL_NOW, "the database's clock", now);
}

bool sq_text_storable(const rp_store_t *s, const char *text)
{
    /* UTF-8 as PostgreSQL takes it: shortest forms, no surrogates, nothing above U+10FFFF */
    return sq_engine(s) != SQ_PG || rp_text_utf8_valid(text);
}

/* The greatest code point, U+10FFFF, repeated past the longest value a page's column holds
 * (RP_NAME_MAX bytes): UTF-8 keeps code points' order bytewise (COLLATE "C"), so every shorter
 * valid text is below it. */
#define PAGE_TOP_REPEAT (RP_NAME_MAX / 4 + 1)

/* Round bytes up to the least UTF-8 text at or above them, where that is a lead byte's first
 * continuations appended (a prefix cut inside a character; a byte carried into a lead byte).
 * False: no such text so near (a byte that is never UTF-8, 0xff). */
static bool round_up_utf8(const rp_store_t *s, char *buf, size_t cap)
{
    size_t n = strlen(buf), end = n + 3;

    while (!sq_text_storable(s, buf) && n < end && n + 1 < cap) {
        buf[n++] = '\x80';
        buf[n] = '\0';
    }
    return sq_text_storable(s, buf);
}

/*
 * A page's bounds on PostgreSQL, whose text is UTF-8 only (paging.c's bounds are bytes), each
 * rounded up to text: the same rows as bytes would bound. No upper bound: top. Bounds that
 * cannot be text (0xff), or a cursor that is not: no row, [top, top).
 */
static void bind_page_pg(sq_st_t *st, const rp_page_t *p, bool paged)
{
    char top[4 * PAGE_TOP_REPEAT + 1], lo[sizeof(top) + RP_PAGE_KEY_MAX + 4], hi[sizeof(lo)];

    for (int i = 0; i < PAGE_TOP_REPEAT; i++)
        memcpy(top + 4 * i, "\xF4\x8F\xBF\xBF", 4);
    top[4 * PAGE_TOP_REPEAT] = '\0';
    snprintf(lo, sizeof(lo), "%s", paged ? p->prefix : "");
    snprintf(hi, sizeof(hi), "%s", paged && !p->no_upto ? p->upto : top);
    if (!round_up_utf8(st->s, lo, sizeof(lo)) || !round_up_utf8(st->s, hi, sizeof(hi)) ||
        (paged && !sq_text_storable(st->s, p->after))) {
        snprintf(lo, sizeof(lo), "%s", top);
        snprintf(hi, sizeof(hi), "%s", top);
        db_bind_text(st, db_param(st, ":after"), top);
    }
    db_bind_text(st, db_param(st, ":lo"), lo);
    db_bind_text(st, db_param(st, ":hi"), hi);
}

void sq_bind_page(sq_st_t *st, const rp_page_t *p)
{
    bool paged = p != NULL && p->paged;

    db_bind_text(st, db_param(st, ":after"), paged ? p->after : "");
    if (sq_engine(st->s) == SQ_PG) {
        bind_page_pg(st, p, paged);
    } else {
        db_bind_text(st, db_param(st, ":lo"), paged ? p->prefix : "");
        /* No upper bound: a zero-length BLOB, above every TEXT value in SQLite's order (a BLOB
         * is never converted by a TEXT column's affinity), so the range stays one the index can
         * use. */
        if (paged && !p->no_upto)
            db_bind_text(st, db_param(st, ":hi"), p->upto);
        else
            db_bind_blob(st, db_param(st, ":hi"), "", 0);
    }
    /* every row (SQ_NO_LIMIT, which both engines take), or the most a whole list reads */
    db_bind_int64(st, db_param(st, ":limit"),
                  paged                           ? p->limit
                  : p != NULL && p->whole_max > 0 ? p->whole_max
                                                  : INT64_MAX);
}

/* Whether the database of s holds Rampart's schema (its schema_version table). */
static rp_err_t holds_schema(rp_store_t *s, bool *holds)
{
    static const char *const SQL_HAS_SCHEMA[SQ_ENGINES] = {
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
        "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0 ELSE 1 END",
    };
    int64_t n = 0;
    rp_err_t err = engine_value(s, SQL_HAS_SCHEMA, "the schema's presence", &n);

    *holds = n > 0;
    return err;
}

/* Open a store on a connection of drv's to target: its schema brought to the newest, its names'
 * keys made. existing: only where a Rampart database is already (RP_ERR_NOT_FOUND, and nothing
 * made, where none is: a SQLite file not there is not created). */
static rp_err_t store_open(const rp_db_driver_t *drv, const char *target, bool existing,
                           rp_store_t **out)
{
    bool holds = true;
    rp_store_t *s;
    rp_err_t err;

    *out = NULL;
    if (existing && drv == &rp_db_sqlite && access(target, F_OK) != 0)
        return errno == ENOENT || errno == ENOTDIR ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return RP_ERR_NO_MEMORY;
    err = drv->open(target, &s->db);
    if (err == RP_OK && existing && (err = holds_schema(s, &holds)) == RP_OK && !holds)
        err = RP_ERR_NOT_FOUND;
    if (err == RP_OK)
        err = sq_migrate(s);
    if (err == RP_OK)
        err = name_keys_fill(s);
    if (err != RP_OK) {
        rp_store_close(s);
        return err;
    }
    *out = s;
    return RP_OK;
}

rp_err_t rp_store_open(const char *data_dir, rp_store_t **out)
{
    char path[4096];

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/rampart.db", data_dir) >= (int)sizeof(path))
        return RP_ERR_INVALID_ARG;
    return store_open(&rp_db_sqlite, path, false, out);
}

static rp_err_t open_target(const char *target, bool existing, rp_store_t **out)
{
    const rp_db_driver_t *drv;

    *out = NULL;
    if (target == NULL || target[0] == '\0')
        return RP_ERR_INVALID_ARG;
    drv = rp_db_driver_for(target);
    if (drv == NULL)
        return RP_ERR_UNSUPPORTED;
    return store_open(drv, target, existing, out);
}

rp_err_t rp_store_open_target(const char *target, rp_store_t **out)
{
    return open_target(target, false, out);
}

rp_err_t rp_store_open_existing(const char *target, rp_store_t **out)
{
    return open_target(target, true, out);
}

rp_err_t rp_store_writer_tune(rp_store_t *s)
{
    if (s->db->drv != &rp_db_sqlite)
        return RP_OK; /* SQLite's page cache and checkpoints: other engines tune their own */
    /* The one connection that writes most (the recorder's): its pages stay in its cache, since
     * no other connection's commit invalidates them while it does nearly all the writing. */
    /* Its savepoints (one per job of a round) keep their journals in memory, not in a temporary
     * file written for each. Its checkpoints come every 8192 pages of log (32 MiB) rather than
     * 1000: a page rewritten by many rounds (a bucket's, a device's) is copied to the database
     * once, not once per 1000 pages; they run after its commit, on its thread. */
    return sq_exec(
        s, "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=8192;");
}

void rp_store_close(rp_store_t *s)
{
    if (s == NULL)
        return;
    sq_buckets_free(s);
    for (size_t i = 0; i < s->ncache; i++)
        sq_finalize(s->cache[i].stmt);
    free(s->cache);
    if (s->db != NULL)
        s->db->drv->close(s->db);
    free(s);
}

int rp_store_schema_version(rp_store_t *s)
{
    sq_st_t *st = sq_stmt(s, "SELECT max(version) FROM schema_version");

    int v = st != NULL && db_step(st) == DB_ROW ? db_column_int(st, 0) : -1;

    if (st != NULL)
        db_reset(st);
    return v;
}

/* A write's failure: a constraint (RP_ERR_EXISTS) is the caller's to tell apart, not logged. */
static rp_err_t write_error(rp_store_t *s, int rc)
{
    if (rc == DB_ERROR && s->err == RP_ERR_EXISTS) {
        s->err = RP_OK;
        return RP_ERR_EXISTS;
    }
    return sq_error(s, "write");
}

/* Run a statement that returns no rows. OUT: *changes (may be NULL). */
rp_err_t sq_step_done(rp_store_t *s, sq_st_t *st, int *changes)
{
    rp_err_t err = RP_OK;
    int rc;

    if (!s->in_txn)
        pthread_mutex_lock(&write_lock);
    rc = db_step(st);
    if (rc != DB_DONE)
        err = write_error(s, rc);
    else if (changes != NULL)
        *changes = (int)st->h->drv->changes(st->h);
    db_reset(st);
    if (!s->in_txn)
        pthread_mutex_unlock(&write_lock);
    return err;
}

rp_err_t sq_step_id(rp_store_t *s, sq_st_t *st, int64_t *id)
{
    rp_err_t err = RP_OK;
    int rc;

    if (!s->in_txn)
        pthread_mutex_lock(&write_lock);
    rc = db_step(st);
    if (rc == DB_ROW) {
        *id = db_column_int64(st, 0);
        rc = db_step(st);
    } else if (rc == DB_DONE) {
        rc = DB_ERROR; /* no row: nothing inserted */
    }
    if (rc != DB_DONE)
        err = write_error(s, rc);
    db_reset(st);
    if (!s->in_txn)
        pthread_mutex_unlock(&write_lock);
    return err;
}

static const char SQL_TENANT_INSERT[] =
    "INSERT INTO tenants (id, name, created, name_key, name_key_written) VALUES (?, ?, ?, ?, ?)";
static const char SQL_TENANT_GET[] = "SELECT id, name, created FROM tenants WHERE id = ?";
#define TENANT_LIST                                                                                \
    "SELECT id, name, created FROM tenants WHERE (CAST(?1 AS TEXT) IS NULL OR id = ?1)"
static const char SQL_TENANT_LIST[] = TENANT_LIST " ORDER BY created, id LIMIT :limit";
static const char SQL_TENANT_PAGE[] = TENANT_LIST SQ_PAGE("id", "name");

rp_err_t rp_store_tenant_create(rp_store_t *s, const char *name, rp_tenant_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_TENANT_INSERT);
    rp_name_keys_t keys;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    memset(out, 0, sizeof(*out));
    err = sq_name(name, out->name, &keys);
    if (err == RP_OK)
        err = sq_random_id('t', out->id, sizeof(out->id));
    if (err != RP_OK)
        return err;
    out->created = (int64_t)time(NULL);
    db_bind_text(st, 1, out->id);
    db_bind_text(st, 2, out->name);
    db_bind_int64(st, 3, out->created);
    db_bind_text(st, 4, keys.folded);
    db_bind_text(st, 5, keys.as_written);
    return sq_step_done(s, st, NULL);
}

static void tenant_row(sq_st_t *st, rp_tenant_t *t)
{
    sq_text_col(st, 0, t->id, sizeof(t->id));
    sq_text_col(st, 1, t->name, sizeof(t->name));
    t->created = db_column_int64(st, 2);
}

rp_err_t rp_store_tenant_get(rp_store_t *s, const char *id, rp_tenant_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_TENANT_GET);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, id);
    rc = db_step(st);
    if (rc == DB_DONE)
        return RP_ERR_NOT_FOUND;
    if (rc != DB_ROW)
        return sq_error(s, "tenant");
    tenant_row(st, out);
    db_reset(st);
    return RP_OK;
}

rp_err_t rp_store_tenant_list(rp_store_t *s, const char *only, const rp_page_t *page,
                              rp_tenant_fn fn, void *ctx)
{
    bool paged = page != NULL && page->paged;
    sq_st_t *st = sq_stmt(s, paged ? SQL_TENANT_PAGE : SQL_TENANT_LIST);
    rp_tenant_t t;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    sq_bind_page(st, page); /* a page's, or the whole list's most rows */
    if (only != NULL)
        db_bind_text(st, 1, only);
    while ((rc = db_step(st)) == DB_ROW) {
        tenant_row(st, &t);
        fn(ctx, &t);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "tenants");
}

static const char SQL_TOKEN_INSERT[] =
    "INSERT INTO tokens (id, hash, tenant_id, role, created, expires, made_by)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)";
#define TOKEN_COLUMNS "SELECT id, tenant_id, role, created, expires, last_used, made_by FROM tokens"
static const char SQL_TOKEN_LOOKUP[] = TOKEN_COLUMNS " WHERE hash = ?";
static const char SQL_TOKEN_LIST[] =
    TOKEN_COLUMNS " WHERE tenant_id IS NOT DISTINCT FROM ? ORDER BY created, id LIMIT :limit";
static const char SQL_TOKEN_PAGE[] =
    TOKEN_COLUMNS " WHERE tenant_id IS NOT DISTINCT FROM ?" SQ_PAGE_ON("id");
/* The tokens the revoked one's login links made, and theirs, go with it: the foreign key's ON
 * DELETE CASCADE (migration 35), in the same statement. */
static const char SQL_TOKEN_REVOKE[] =
    "DELETE FROM tokens WHERE id = ? AND tenant_id IS NOT DISTINCT FROM ?";
static const char SQL_TOKEN_USED[] = "UPDATE tokens SET last_used = ? WHERE id = ?";
static const char SQL_TOKEN_SYSTEM_COUNT[] = "SELECT count(*) FROM tokens WHERE tenant_id IS NULL";
static const char SQL_TOKEN_REVOKE_SYSTEM[] =
    "DELETE FROM tokens WHERE tenant_id IS NULL AND id != ?";

rp_err_t rp_store_token_add(rp_store_t *s, const char *tenant_id, rp_role_t role,
                            const uint8_t hash[RP_SHA256_LEN], int64_t expires, const char *made_by,
                            rp_token_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_TOKEN_INSERT);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    memset(out, 0, sizeof(*out));
    err = sq_random_id('k', out->id, sizeof(out->id));
    if (err != RP_OK)
        return err;
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", tenant_id != NULL ? tenant_id : "");
    out->role = role;
    out->created = (int64_t)time(NULL);
    out->expires = expires;
    snprintf(out->made_by, sizeof(out->made_by), "%s", made_by != NULL ? made_by : "");
    db_bind_text(st, 1, out->id);
    db_bind_blob(st, 2, hash, RP_SHA256_LEN);
    if (tenant_id != NULL)
        db_bind_text(st, 3, tenant_id);
    else
        db_bind_null(st, 3);
    db_bind_int(st, 4, (int)role);
    db_bind_int64(st, 5, out->created);
    if (expires != 0)
        db_bind_int64(st, 6, expires);
    else
        db_bind_null(st, 6);
    db_bind_text(st, 7, made_by); /* NULL: made by no link */
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_token_revoke(rp_store_t *s, const char *tenant_id, const char *id)
{
    sq_st_t *st = sq_stmt(s, SQL_TOKEN_REVOKE);
    int changes = 0;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, id);
    if (tenant_id != NULL)
        db_bind_text(st, 2, tenant_id);
    else
        db_bind_null(st, 2);
    err = sq_step_done(s, st, &changes);
    return err == RP_OK && changes == 0 ? RP_ERR_NOT_FOUND : err;
}

rp_err_t rp_store_token_used(rp_store_t *s, const char *id, int64_t now)
{
    sq_st_t *st = sq_stmt(s, SQL_TOKEN_USED);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, now);
    db_bind_text(st, 2, id);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_system_token_first(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN],
                                     rp_token_t *out, bool *made)
{
    sq_st_t *st;
    int64_t n = -1;
    rp_err_t err = sq_begin(s);

    *made = false;
    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_TOKEN_SYSTEM_COUNT);
    if (st != NULL && db_step(st) == DB_ROW)
        n = db_column_int64(st, 0);
    if (st != NULL)
        db_reset(st);
    err = n < 0 ? sq_error(s, "system tokens") : RP_OK;
    if (err == RP_OK && n == 0) {
        err = rp_store_token_add(s, NULL, RP_ROLE_SYSTEM, hash, 0, NULL, out);
        *made = err == RP_OK;
    }
    err = sq_end(s, err);
    if (err != RP_OK)
        *made = false;
    return err;
}

rp_err_t rp_store_system_token_rotate(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN],
                                      rp_token_t *out, int *revoked)
{
    sq_st_t *st;
    rp_err_t err = sq_begin(s);

    *revoked = 0;
    if (err != RP_OK)
        return err;
    err = rp_store_token_add(s, NULL, RP_ROLE_SYSTEM, hash, 0, NULL, out);
    if (err == RP_OK) {
        st = sq_stmt(s, SQL_TOKEN_REVOKE_SYSTEM);
        err = st != NULL ? RP_OK : RP_ERR_IO;
    }
    if (err == RP_OK) {
        db_bind_text(st, 1, out->id);
        err = sq_step_done(s, st, revoked);
    }
    return sq_end(s, err);
}

void sq_token_row(sq_st_t *st, rp_token_t *t)
{
    memset(t, 0, sizeof(*t));
    sq_text_col(st, 0, t->id, sizeof(t->id));
    sq_text_col(st, 1, t->tenant_id, sizeof(t->tenant_id));
    t->role = (rp_role_t)db_column_int(st, 2);
    t->created = db_column_int64(st, 3);
    t->expires = db_column_int64(st, 4); /* NULL reads as 0: never */
    t->last_used = db_column_int64(st, 5);
    sq_text_col(st, 6, t->made_by, sizeof(t->made_by)); /* NULL reads as "" */
}

rp_err_t rp_store_token_lookup(rp_store_t *s, const uint8_t hash[RP_SHA256_LEN], rp_token_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_TOKEN_LOOKUP);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_blob(st, 1, hash, RP_SHA256_LEN);
    rc = db_step(st);
    if (rc == DB_DONE)
        return RP_ERR_NOT_FOUND;
    if (rc != DB_ROW)
        return sq_error(s, "token");
    sq_token_row(st, out);
    db_reset(st);
    return RP_OK;
}

rp_err_t rp_store_token_list(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                             rp_token_fn fn, void *ctx)
{
    bool paged = page != NULL && page->paged;
    sq_st_t *st = sq_stmt(s, paged ? SQL_TOKEN_PAGE : SQL_TOKEN_LIST);
    rp_token_t t;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    sq_bind_page(st, page); /* a page's, or the whole list's most rows */
    if (tenant_id != NULL)
        db_bind_text(st, 1, tenant_id);
    while ((rc = db_step(st)) == DB_ROW) {
        sq_token_row(st, &t);
        fn(ctx, &t);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "tokens");
}

static const char SQL_DEVICE_CLAIM[] =
    "INSERT INTO devices (id, tenant_id, claimed_at) VALUES (?, ?, ?)"
    " ON CONFLICT(id) DO NOTHING";
static const char SQL_DEVICE_OWNER[] = "SELECT tenant_id FROM devices WHERE id = ?";
static const char SQL_DEVICE_TOTAL[] =
    "SELECT n FROM device_counts WHERE tenant_id = ? AND state = 'total'";
/* A quarantined device is refused wherever a blocked one is (its reason is told apart where it is
 * shown: rp_store_device_quarantine). */
static const char SQL_DEVICE_STANDING[] =
    "SELECT tenant_id, CASE WHEN blocked <> 0 OR quarantined_at <> 0 THEN 1 ELSE 0 END FROM devices"
    " WHERE id = ?";
/* The device, its last attestation, and its newest unrevoked certificate. */
static const char SQL_DEVICE_GET[] = SQ_DEVICE_COLUMNS " WHERE d.id = ?";
static const char SQL_DEVICE_BLOCK[] =
    "UPDATE devices SET blocked = 1, blocked_at = ? WHERE id = ? AND tenant_id = ?";
static const char SQL_DEVICE_UNBLOCK[] =
    "UPDATE devices SET blocked = 0, blocked_at = 0 WHERE id = ? AND tenant_id = ?";
static const char SQL_CERT_REVOKE_DEVICE[] =
    "UPDATE certificates SET revoked_at = ?, revoked_for = ? WHERE device_id = ?"
    " AND revoked_at = 0";
/* A bar lifted: what the device's certificates were revoked for no longer holds (a certificate
 * revoked for a failure keeps its cause). Nothing is unrevoked: the CRL is the same. */
static const char SQL_CERT_BARS_LIFTED[] =
    "UPDATE certificates SET revoked_for = ? WHERE device_id = ? AND revoked_at <> 0"
    " AND revoked_for = ?";
/* cas.crl_number counts the tenant's revocations: a cached CRL older than the count is stale. */
static const char SQL_CRL_BUMP[] = "UPDATE cas SET crl_number = crl_number + 1 WHERE tenant_id = ?";
static const char SQL_CRL_VERSION[] = "SELECT crl_number FROM cas WHERE tenant_id = ?";

/* What a write of a device's state is given (sq_device_write's ctx). */
typedef struct device_op {
    const char *tenant_id, *device_id;
    int64_t now;
    int64_t max; /* claim_write: the tenant's devices at most (0: no limit) */
} device_op_t;

/* Who holds the device: RP_OK for its tenant, RP_ERR_EXISTS for another, RP_ERR_NOT_FOUND for none.
 */
static rp_err_t device_owner(rp_store_t *s, const device_op_t *op)
{
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_OWNER);
    char owner[RP_ID_SIZE];
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, op->device_id);
    rc = db_step(st);
    if (rc == DB_DONE)
        return RP_ERR_NOT_FOUND;
    if (rc != DB_ROW)
        return sq_error(s, "device owner");
    sq_text_col(st, 0, owner, sizeof(owner));
    db_reset(st);
    return strcmp(owner, op->tenant_id) == 0 ? RP_OK : RP_ERR_EXISTS;
}

/* Whether the tenant holds op->max devices or more already (its counter: no rows read). */
static rp_err_t device_total_reached(rp_store_t *s, const device_op_t *op, bool *reached)
{
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_TOTAL);
    int64_t n = 0;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, op->tenant_id);
    rc = db_step(st);
    if (rc == DB_ROW)
        n = db_column_int64(st, 0);
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return sq_error(s, "device count");
    *reached = n >= op->max;
    return RP_OK;
}

static rp_err_t claim_write(rp_store_t *s, void *ctx)
{
    const device_op_t *op = ctx;
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_CLAIM);
    bool full = false;
    int changes;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    if (op->max > 0 && (err = device_total_reached(s, op, &full)) != RP_OK)
        return err;
    if (full) { /* only one the tenant holds already may be claimed again */
        err = device_owner(s, op);
        return err == RP_ERR_NOT_FOUND ? RP_ERR_DENIED : err;
    }
    db_bind_text(st, 1, op->device_id);
    db_bind_text(st, 2, op->tenant_id);
    db_bind_int64(st, 3, op->now);
    err = sq_step_done(s, st, &changes);
    if (err != RP_OK || changes == 1)
        return err;
    /* Already claimed: by this tenant (fine) or another (refused). */
    err = device_owner(s, op);
    return err == RP_ERR_NOT_FOUND ? RP_ERR_IO : err; /* (it was there: cannot happen) */
}

rp_err_t rp_store_device_claim(rp_store_t *s, const char *tenant_id, const char *device_id,
                               int64_t now)
{
    return rp_store_device_claim_upto(s, tenant_id, device_id, now, 0);
}

rp_err_t rp_store_device_claim_upto(rp_store_t *s, const char *tenant_id, const char *device_id,
                                    int64_t now, int64_t max)
{
    device_op_t op = {tenant_id, device_id, now, max};

    return sq_device_write(s, device_id, claim_write, &op);
}

void sq_device_row(sq_st_t *st, rp_device_t *d)
{
    int n;

    memset(d, 0, sizeof(*d));
    sq_text_col(st, 0, d->id, sizeof(d->id));
    sq_text_col(st, 1, d->tenant_id, sizeof(d->tenant_id));
    d->blocked = db_column_int(st, 2) != 0;
    d->claimed_at = db_column_int64(st, 3);
    d->blocked_at = db_column_int64(st, 4);
    n = db_column_bytes(st, 5);
    if (n > 0 && (size_t)n <= sizeof(d->spki)) {
        memcpy(d->spki, db_column_blob(st, 5), (size_t)n);
        d->spki_len = (size_t)n;
    }
    d->last_attested_at = db_column_int64(st, 6);
    d->last_passed = db_column_int(st, 7) != 0;
    sq_text_col(st, 8, d->last_reason, sizeof(d->last_reason));
    sq_text_col(st, 9, d->cert_serial, sizeof(d->cert_serial));
    d->cert_not_after = db_column_int64(st, 10);
    d->quarantined_at = db_column_int64(st, 11);
    sq_text_col(st, 12, d->quarantine_reason, sizeof(d->quarantine_reason));
}

rp_err_t rp_store_device_standing(rp_store_t *s, const char *device_id, char tenant_id[RP_ID_SIZE],
                                  bool *blocked)
{
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_STANDING);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        sq_text_col(st, 0, tenant_id, RP_ID_SIZE);
        *blocked = db_column_int(st, 1) != 0;
    }
    db_reset(st);
    if (rc == DB_DONE)
        return RP_ERR_NOT_FOUND;
    return rc == DB_ROW ? RP_OK : sq_error(s, "device");
}

rp_err_t rp_store_device_get(rp_store_t *s, const char *device_id, rp_device_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_GET);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    rc = db_step(st);
    if (rc == DB_DONE)
        return RP_ERR_NOT_FOUND;
    if (rc != DB_ROW)
        return sq_error(s, "device");
    sq_device_row(st, out);
    db_reset(st);
    return RP_OK;
}

rp_err_t sq_begin(rp_store_t *s)
{
    rp_err_t err;

    if (s->depth > 0) {
        /* Inside a group (rp_store_group_begin): this connection holds the write lock already. */
        err = sq_exec(s, "SAVEPOINT sq_nested");
        if (err == RP_OK)
            s->depth++;
        return err;
    }
    pthread_mutex_lock(&write_lock);
    err = s->db->drv->begin(s->db);
    sq_note(s, err);
    if (err != RP_OK) {
        pthread_mutex_unlock(&write_lock);
        return err;
    }
    s->in_txn = true;
    s->depth = 1;
    return RP_OK;
}

static atomic_ullong commits;

unsigned long long rp_store_commits(void)
{
    return atomic_load(&commits);
}

rp_err_t sq_end(rp_store_t *s, rp_err_t err)
{
    if (s->depth > 1) {
        if (err == RP_OK)
            err = sq_exec(s, "RELEASE sq_nested");
        if (err != RP_OK) {
            (void)sq_exec(s, "ROLLBACK TO sq_nested");
            (void)sq_exec(s, "RELEASE sq_nested");
        }
        s->depth--;
        return err;
    }
    if (err == RP_OK) {
        err = s->db->drv->commit(s->db);
        sq_note(s, err);
        if (err == RP_OK)
            atomic_fetch_add(&commits, 1);
    }
    if (err != RP_OK)
        (void)s->db->drv->rollback(s->db);
    s->in_txn = false;
    s->depth = 0;
    pthread_mutex_unlock(&write_lock);
    return err;
}

rp_err_t rp_store_group_begin(rp_store_t *s)
{
    return sq_begin(s);
}

rp_err_t rp_store_group_end(rp_store_t *s, rp_err_t err)
{
    return sq_end(s, err);
}

rp_err_t sq_device_revoke(rp_store_t *s, const char *tenant_id, const char *device_id, int64_t now,
                          rp_revoked_for_t why)
{
    sq_st_t *st = sq_stmt(s, SQL_CERT_REVOKE_DEVICE);
    int revoked = 0;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, now);
    db_bind_int(st, 2, (int)why);
    db_bind_text(st, 3, device_id);
    err = sq_step_done(s, st, &revoked);
    if (err != RP_OK || revoked == 0)
        return err; /* nothing revoked: the CRL is the same */
    st = sq_stmt(s, SQL_CRL_BUMP);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    return sq_step_done(s, st, NULL);
}

rp_err_t sq_device_bars_lifted(rp_store_t *s, const char *device_id)
{
    sq_st_t *st = sq_stmt(s, SQL_CERT_BARS_LIFTED);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int(st, 1, RP_REVOKED_LIFTED);
    db_bind_text(st, 2, device_id);
    db_bind_int(st, 3, RP_REVOKED_OTHER);
    return sq_step_done(s, st, NULL);
}

static rp_err_t block_write(rp_store_t *s, void *ctx)
{
    const device_op_t *op = ctx;
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_BLOCK);
    int changes = 0;
    rp_err_t err = st != NULL ? RP_OK : RP_ERR_IO;

    if (err == RP_OK) {
        db_bind_int64(st, 1, op->now);
        db_bind_text(st, 2, op->device_id);
        db_bind_text(st, 3, op->tenant_id);
        err = sq_step_done(s, st, &changes);
    }
    if (err == RP_OK && changes == 0)
        err = RP_ERR_NOT_FOUND;
    if (err == RP_OK)
        err = sq_device_revoke(s, op->tenant_id, op->device_id, op->now, RP_REVOKED_OTHER);
    return err;
}

rp_err_t rp_store_device_block(rp_store_t *s, const char *tenant_id, const char *device_id,
                               int64_t now)
{
    device_op_t op = {tenant_id, device_id, now, 0};

    return sq_device_write(s, device_id, block_write, &op);
}

rp_err_t rp_store_crl_version(rp_store_t *s, const char *tenant_id, int64_t *version)
{
    sq_st_t *st = sq_stmt(s, SQL_CRL_VERSION);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    rc = db_step(st);
    *version = rc == DB_ROW ? db_column_int64(st, 0) : 0; /* no CA yet: nothing revoked */
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "CRL version");
}

static rp_err_t unblock_write(rp_store_t *s, void *ctx)
{
    const device_op_t *op = ctx;
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_UNBLOCK);
    int changes = 0;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, op->device_id);
    db_bind_text(st, 2, op->tenant_id);
    err = sq_step_done(s, st, &changes);
    return err == RP_OK && changes == 0 ? RP_ERR_NOT_FOUND : err;
}

rp_err_t rp_store_device_unblock(rp_store_t *s, const char *tenant_id, const char *device_id)
{
    device_op_t op = {tenant_id, device_id, 0, 0};

    return sq_device_write(s, device_id, unblock_write, &op);
}

/* (A nonce spent already is no error: PostgreSQL would abort the whole transaction on one.) */
static const char SQL_NONCE_SPEND[] =
    "INSERT INTO spent_nonces (nonce, expires) VALUES (?, ?) ON CONFLICT DO NOTHING";
/* The purge (review r9srv M1): the rows expired before the caller's `before` and the database's
 * clock less the margin, whichever is earlier, found by their largest expiry and deleted up to it
 * (a row inserted meanwhile below it goes too, and is covered). So no replica's clock, however far
 * ahead, deletes a row that is live on the database's clock, and the watermark is the largest
 * expiry actually deleted plus one, never the purger's clock. */
static const char SQL_NONCE_PURGE_MAX[] = "SELECT max(expires) FROM spent_nonces WHERE expires < ?";
static const char SQL_NONCE_PURGE[] = "DELETE FROM spent_nonces WHERE expires <= ?";
/* The purge watermark (migration 27): every nonce that expired below it may have been purged (it
 * is refused as spent). It only rises, but for rp_store_nonces_watermark_reset(). */
static const char SQL_NONCE_WATERMARK_RAISE[] =
    "UPDATE spent_nonces_purged SET below = greatest(below, ?)";
/* The reset (rp_store_nonces_watermark_reset): the watermark lowered and the nonce epoch set
 * (migration 30) in one statement, or neither. */
static const char SQL_NONCE_WATERMARK_LOWER[] =
    "UPDATE spent_nonces_purged SET below = least(below, ?1), epoch = ?2";
static const char SQL_NONCE_WATERMARK[] = "SELECT below FROM spent_nonces_purged";
static const char SQL_NONCE_EPOCH[] = "SELECT epoch FROM spent_nonces_purged";
/* What a nonce is checked against as it is spent: the watermark and the epoch, in one read. */
static const char SQL_NONCE_GUARD[] = "SELECT below, epoch FROM spent_nonces_purged";

/* One int64 (0 for none or NULL) of a one-row query with at most one parameter. */
static rp_err_t nonce_query(rp_store_t *s, const char *sql, const int64_t *arg, int64_t *value,
                            bool *null)
{
    sq_st_t *st = sq_stmt(s, sql);
    int rc;

    *value = 0;
    if (null != NULL)
        *null = true;
    if (st == NULL)
        return RP_ERR_IO;
    if (arg != NULL)
        db_bind_int64(st, 1, *arg);
    rc = db_step(st);
    if (rc == DB_ROW) {
        if (null != NULL)
            *null = db_column_null(st, 0);
        *value = db_column_int64(st, 0);
        rc = db_step(st);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "the spent nonces");
}

/* One statement with one parameter, in the caller's transaction. */
static rp_err_t nonce_exec(rp_store_t *s, const char *sql, int64_t arg)
{
    sq_st_t *st = sq_stmt(s, sql);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, arg);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_nonces_purge(rp_store_t *s, int64_t before, int64_t *watermark)
{
    int64_t db_now = 0, newest = 0;
    bool none = true;
    rp_err_t err = sq_begin(s);

    *watermark = 0;
    if (err != RP_OK)
        return err;
    err = sq_db_now(s, &db_now);
    if (err == RP_OK && db_now - RP_NONCE_PURGE_MARGIN < before)
        before = db_now - RP_NONCE_PURGE_MARGIN;
    if (err == RP_OK)
        err = nonce_query(s, SQL_NONCE_PURGE_MAX, &before, &newest, &none);
    if (err == RP_OK && !none && newest < INT64_MAX) {
        err = nonce_exec(s, SQL_NONCE_PURGE, newest);
        if (err == RP_OK)
            err = nonce_exec(s, SQL_NONCE_WATERMARK_RAISE, newest + 1);
    }
    if (err == RP_OK)
        err = nonce_query(s, SQL_NONCE_WATERMARK, NULL, watermark, NULL);
    return sq_end(s, err);
}

rp_err_t rp_store_nonces_watermark(rp_store_t *s, int64_t *below, int64_t *ahead)
{
    int64_t db_now = 0;
    rp_err_t err = sq_db_now(s, &db_now);

    *ahead = 0;
    if (err == RP_OK)
        err = nonce_query(s, SQL_NONCE_WATERMARK, NULL, below, NULL);
    if (err == RP_OK)
        *ahead = *below - db_now;
    return err;
}

/* The nonce epoch a reset sets, from the one before and the database's clock: one above it, and
 * never below the clock, so that it keeps rising across a restore of an older backup (which takes
 * the epoch back: the clock does not go back with it). One that cannot rise within a nonce's 4
 * bytes, beyond them or at their largest (only a restore or a hand edit makes one: the clock
 * reaches it in 2106), is put back at the clock (review r12 L2). OUT: *next; false when no epoch
 * fits a nonce and differs from the one before (a clock past 2106). */
static bool nonce_epoch_next(int64_t epoch, int64_t db_now, int64_t *next)
{
    bool rises = rp_nonce_epoch_fits(epoch) && rp_nonce_epoch_fits(epoch + 1);

    *next = rises && epoch + 1 > db_now ? epoch + 1 : db_now;
    return rp_nonce_epoch_fits(*next) && *next != epoch;
}

/* rp_store_nonces_watermark_reset, and with always, rp_store_nonces_restored: the epoch raised
 * whether or not the watermark is ahead. */
static rp_err_t watermark_reset(rp_store_t *s, bool always, int64_t *was, int64_t *below,
                                int64_t *epoch_was, int64_t *epoch)
{
    int64_t db_now = 0;
    bool ahead, fits;
    sq_st_t *st;
    rp_err_t err = sq_begin(s);

    *was = *below = *epoch_was = *epoch = 0;
    if (err != RP_OK)
        return err;
    /* (Under the write lock: no spend, purge nor other reset between the reads and the update.) */
    err = sq_db_now(s, &db_now);
    if (err == RP_OK)
        err = nonce_query(s, SQL_NONCE_WATERMARK, NULL, was, NULL);
    if (err == RP_OK)
        err = nonce_query(s, SQL_NONCE_EPOCH, NULL, epoch_was, NULL);
    if (err != RP_OK)
        return sq_end(s, err);
    *below = *was;
    *epoch = *epoch_was;
    ahead = *was > db_now + 1;
    fits = rp_nonce_epoch_fits(*epoch_was);
    if (!ahead && fits && !always) /* nothing to do: run twice, the second changes nothing */
        return sq_end(s, RP_OK);
    if (!nonce_epoch_next(*epoch_was, db_now, epoch)) {
        rp_log_error("the nonce epoch cannot go past %lld (it is %lld, the database's clock %lld):"
                     " the purge watermark cannot be reset",
                     (long long)RP_NONCE_EPOCH_MAX, (long long)*epoch_was, (long long)db_now);
        *epoch = *epoch_was;
        return sq_end(s, RP_ERR_UNSUPPORTED);
    }
    if (*epoch <= *epoch_was || !fits)
        rp_log_warn("the nonce epoch was %lld, %s (a restore or a hand edit): it is now the "
                    "database's clock, %lld",
                    (long long)*epoch_was,
                    fits ? "at a nonce's largest" : "beyond a nonce's 4 bytes", (long long)*epoch);
    if ((st = sq_stmt(s, SQL_NONCE_WATERMARK_LOWER)) == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_int64(st, 1, db_now + 1);
    db_bind_int64(st, 2, *epoch);
    err = sq_step_done(s, st, NULL);
    if (err == RP_OK)
        err = nonce_query(s, SQL_NONCE_WATERMARK, NULL, below, NULL);
    return sq_end(s, err);
}

rp_err_t rp_store_nonces_watermark_reset(rp_store_t *s, int64_t *was, int64_t *below,
                                         int64_t *epoch_was, int64_t *epoch)
{
    return watermark_reset(s, false, was, below, epoch_was, epoch);
}

rp_err_t rp_store_nonces_restored(rp_store_t *s, int64_t *was, int64_t *below, int64_t *epoch_was,
                                  int64_t *epoch)
{
    return watermark_reset(s, true, was, below, epoch_was, epoch);
}

static const char SQL_GENERATION[] = "SELECT n FROM restore_generation";
static const char SQL_GENERATION_RAISE[] = "UPDATE restore_generation SET n = greatest(n + 1, ?)";

rp_err_t rp_store_generation(rp_store_t *s, int64_t *n)
{
    return nonce_query(s, SQL_GENERATION, NULL, n, NULL);
}

rp_err_t rp_store_generation_raise(rp_store_t *s, int64_t at_least, int64_t *n)
{
    rp_err_t err = sq_begin(s);

    *n = 0;
    if (err != RP_OK)
        return err;
    err = nonce_exec(s, SQL_GENERATION_RAISE, at_least);
    if (err == RP_OK)
        err = nonce_query(s, SQL_GENERATION, NULL, n, NULL);
    return sq_end(s, err);
}

rp_err_t rp_store_nonces_epoch(rp_store_t *s, int64_t *epoch)
{
    return nonce_query(s, SQL_NONCE_EPOCH, NULL, epoch, NULL);
}

static const char SQL_MASTER_CHECK_GET[] = "SELECT value FROM master_check WHERE id = 1";
static const char SQL_MASTER_CHECK_PUT[] =
    "INSERT INTO master_check (id, value) VALUES (1, ?) ON CONFLICT(id) DO NOTHING";

/* The stored check value, in the caller's transaction or none. */
static rp_err_t master_check_read(rp_store_t *s, uint8_t value[RP_MASTER_CHECK_LEN], bool *found)
{
    sq_st_t *st = sq_stmt(s, SQL_MASTER_CHECK_GET);
    rp_err_t err = RP_OK;
    int rc;

    *found = false;
    if (st == NULL)
        return RP_ERR_IO;
    rc = db_step(st);
    if (rc == DB_ROW) {
        const char *hex = db_column_text(st, 0);

        *found = true;
        if (rp_hex_decode(hex, strlen(hex), value, RP_MASTER_CHECK_LEN) != RP_OK) {
            rp_log_error("the database's master key check value is damaged (not %d hex bytes)",
                         RP_MASTER_CHECK_LEN);
            err = RP_ERR_MALFORMED;
        }
        rc = db_step(st);
    }
    db_reset(st);
    if (rc != DB_DONE)
        return sq_error(s, "the master key check");
    return err;
}

rp_err_t rp_store_master_check_get(rp_store_t *s, uint8_t value[RP_MASTER_CHECK_LEN], bool *found)
{
    return master_check_read(s, value, found);
}

rp_err_t rp_store_master_check_put(rp_store_t *s, const uint8_t value[RP_MASTER_CHECK_LEN],
                                   uint8_t stored[RP_MASTER_CHECK_LEN])
{
    char hex[2 * RP_MASTER_CHECK_LEN + 1];
    bool found = false;
    sq_st_t *st;
    rp_err_t err = rp_hex_encode(value, RP_MASTER_CHECK_LEN, hex, sizeof(hex));

    if (err != RP_OK)
        return err;
    if ((err = sq_begin(s)) != RP_OK)
        return err;
    if ((st = sq_stmt(s, SQL_MASTER_CHECK_PUT)) == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_text(st, 1, hex);
    err = sq_step_done(s, st, NULL);
    if (err == RP_OK)
        err = master_check_read(s, stored, &found);
    if (err == RP_OK && !found)
        err = RP_ERR_IO;
    return sq_end(s, err);
}

rp_err_t rp_store_clock(rp_store_t *s, int64_t *now)
{
    return sq_db_now(s, now);
}

/* Spend a nonce inside the verdict's transaction. OUT: *as, RP_RECORDED_AS_GIVEN when it is
 * spent now for the first time; RP_RECORDED_AS_STALE when it is of another nonce epoch than the
 * database's (issued before a watermark reset: it is not spent); RP_RECORDED_AS_REPLAY when it was
 * spent already or may have been (it expired before the purge watermark: its row may be gone). */
static rp_err_t spend_nonce(rp_store_t *s, const rp_attestation_write_t *w, rp_recorded_as_t *as)
{
    sq_st_t *st = sq_stmt(s, SQL_NONCE_GUARD);
    int64_t below = 0, epoch = 0;
    bool row = false;
    int spent = 0, rc;
    rp_err_t err;

    *as = RP_RECORDED_AS_REPLAY;
    if (st == NULL)
        return RP_ERR_IO;
    /* (Every write holds the store's write lock, on either engine: no purge nor reset comes
     * between this read and the insert, nor before the commit.) */
    rc = db_step(st);
    if (rc == DB_ROW) {
        row = true;
        below = db_column_int64(st, 0);
        epoch = db_column_int64(st, 1);
        rc = db_step(st);
    }
    db_reset(st);
    if (rc != DB_DONE)
        return sq_error(s, "the nonces' purge watermark");
    if (!row) /* (migration 27 wrote the row: without it, nothing is known) */
        return RP_OK;
    if (epoch != (int64_t)w->nonce_epoch) {
        *as = RP_RECORDED_AS_STALE;
        return RP_OK;
    }
    if ((st = sq_stmt(s, SQL_NONCE_SPEND)) == NULL)
        return RP_ERR_IO;
    db_bind_blob(st, 1, w->nonce, w->nonce_len);
    db_bind_int64(st, 2, w->nonce_expires);
    err = sq_step_done(s, st, &spent);
    if (err == RP_OK && spent != 0 && w->nonce_expires >= below)
        *as = RP_RECORDED_AS_GIVEN;
    return err;
}

static const char SQL_ATTEST_INSERT[] =
    "INSERT INTO attestations (device_id, tenant_id, at, passed, reason, claims, cert_serial)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id";
static const char SQL_DEVICE_ATTESTED[] =
    "UPDATE devices SET last_attestation = ?, last_passed = ?, spki = coalesce(spki, ?)"
    " WHERE id = ?";
static const char SQL_CERT_INSERT[] =
    "INSERT INTO certificates (serial, tenant_id, device_id, not_before, not_after, reissued)"
    " VALUES (?, ?, ?, ?, ?, ?)";
static const char SQL_ATTEST_LIST[] =
    "SELECT id, device_id, tenant_id, at, passed, reason, claims, cert_serial FROM attestations"
    " WHERE tenant_id = ? AND device_id = ? ORDER BY id DESC LIMIT ?";

/* reissued: recorded by an EST re-enrollment (rp_store_cert_reissue), which its limit counts. */
static rp_err_t insert_cert(rp_store_t *s, const rp_cert_record_t *c, bool reissued)
{
    sq_st_t *st = sq_stmt(s, SQL_CERT_INSERT);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, c->serial);
    db_bind_text(st, 2, c->tenant_id);
    db_bind_text(st, 3, c->device_id);
    db_bind_int64(st, 4, c->not_before);
    db_bind_int64(st, 5, c->not_after);
    db_bind_int(st, 6, reissued ? 1 : 0);
    return sq_step_done(s, st, NULL);
}

/* Make a verdict a refusal for `reason`, with no certificate. */
static void refuse_instead(rp_attestation_write_t *w, rp_recorded_as_t as, const char *reason)
{
    w->as = as;
    w->cert = NULL;
    w->a->passed = false;
    snprintf(w->a->reason, sizeof(w->a->reason), "%s", reason != NULL ? reason : "refused");
}

static const char SQL_UNPROVEN_UPSERT[] =
    "INSERT INTO unproven_sources (address, first_at, last_at, count, last_reason, last_device_id)"
    " VALUES (?1, ?2, ?2, 1, ?3, ?4) ON CONFLICT(address) DO UPDATE SET"
    " last_at = greatest(unproven_sources.last_at, excluded.last_at),"
    " count = unproven_sources.count + 1,"
    " last_reason = excluded.last_reason, last_device_id = excluded.last_device_id"
    " RETURNING count";
static const char SQL_UNPROVEN_TRIM[] =
    "DELETE FROM unproven_sources WHERE address IN (SELECT address FROM unproven_sources"
    " ORDER BY last_at DESC, address LIMIT " SQ_NO_LIMIT " OFFSET ?)";
static const char SQL_UNPROVEN_LIST[] =
    "SELECT address, first_at, last_at, count, last_reason, last_device_id FROM unproven_sources"
    " ORDER BY last_at DESC, address LIMIT ?";

/* An unproven failure inside the caller's transaction: its source's row. OUT: *grew when the
 * source is new (the caller then trims the table). */
static rp_err_t record_unproven(rp_store_t *s, const rp_attestation_write_t *w, bool *grew)
{
    sq_st_t *st = sq_stmt(s, SQL_UNPROVEN_UPSERT);
    int64_t count = 0;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, w->source != NULL ? w->source : "unknown");
    db_bind_int64(st, 2, w->a->at);
    db_bind_text(st, 3, w->a->reason);
    db_bind_text(st, 4, w->a->device_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        count = db_column_int64(st, 0);
        rc = db_step(st);
    }
    db_reset(st);
    if (rc != DB_DONE)
        return sq_error(s, "unproven attestation");
    if (count == 1)
        *grew = true;
    return RP_OK;
}

/* Keep RP_UNPROVEN_SOURCES_MAX sources, the most recently seen. */
static rp_err_t trim_unproven(rp_store_t *s)
{
    sq_st_t *st = sq_stmt(s, SQL_UNPROVEN_TRIM);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int(st, 1, RP_UNPROVEN_SOURCES_MAX);
    return sq_step_done(s, st, NULL);
}

/* One attestation inside the caller's transaction. */
static rp_err_t record_one(rp_store_t *s, rp_attestation_write_t *w, bool *grew)
{
    rp_attestation_t *a = w->a;
    char tenant_id[RP_ID_SIZE];
    sq_device_state_t before, after;
    bool blocked = false;
    sq_st_t *st;
    rp_err_t err = RP_OK;

    w->as = RP_RECORDED_AS_GIVEN;
    if (w->unproven) /* nothing else to do: it spends no nonce, issues nothing */
        return record_unproven(s, w, grew);
    /* A nonce spent already leaves this insert undone (nothing inserted: the transaction goes
     * on), and one that expired before the purge watermark may have been spent and purged: both
     * are refused as spent, whatever any replica's clock says; one of another nonce epoch was
     * issued before the watermark was last reset (or by a database restored since) and is refused
     * too. Whoever replays the device's evidence shows nothing new about the device: the replay is
     * counted for its source, not in the device's history. */
    if (w->nonce != NULL) {
        rp_recorded_as_t as = RP_RECORDED_AS_REPLAY;
        err = spend_nonce(s, w, &as);
        if (err != RP_OK)
            return err;
        if (as != RP_RECORDED_AS_GIVEN) {
            refuse_instead(w, as, as == RP_RECORDED_AS_STALE ? w->stale_reason : w->spent_reason);
            return record_unproven(s, w, grew);
        }
    }
    /* A pass stands only if the device is still the tenant's and not blocked now. */
    if (w->cert != NULL) {
        err = rp_store_device_standing(s, a->device_id, tenant_id, &blocked);
        if (err != RP_OK && err != RP_ERR_NOT_FOUND)
            return err;
        if (err == RP_ERR_NOT_FOUND || blocked || strcmp(tenant_id, a->tenant_id) != 0)
            refuse_instead(w, RP_RECORDED_AS_BLOCKED, w->blocked_reason);
    }
    if (w->cert != NULL) {
        err = insert_cert(s, w->cert, false);
        if (err != RP_OK)
            return err == RP_ERR_EXISTS ? RP_ERR_IO : err; /* a serial twice: not a replay */
    }
    st = sq_stmt(s, SQL_ATTEST_INSERT);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, a->device_id);
    if (a->tenant_id[0] != '\0')
        db_bind_text(st, 2, a->tenant_id);
    else
        db_bind_null(st, 2);
    db_bind_int64(st, 3, a->at);
    db_bind_int(st, 4, a->passed);
    db_bind_text(st, 5, a->reason);
    db_bind_text(st, 6, a->claims_json);
    if (w->cert != NULL)
        db_bind_text(st, 7, w->cert->serial);
    else
        db_bind_null(st, 7);
    err = sq_step_id(s, st, &a->id);
    if (err != RP_OK)
        return err == RP_ERR_EXISTS ? RP_ERR_IO : err;
    if (a->tenant_id[0] == '\0')
        return RP_OK;
    /* the fleet's counters move only when the verdict does (sq_device_counts_move): a pass
     * after a pass writes none */
    err = sq_device_state(s, a->device_id, &before);
    if (err != RP_OK)
        return err;
    after = before;
    after.seen = true;
    after.passed = a->passed ? 1 : 0;
    st = sq_stmt(s, SQL_DEVICE_ATTESTED);
    if (st == NULL)
        return RP_ERR_IO;
    /* the row's verdict is the attestation's, in its transaction: the failed filter's index
     * (migration 20) never disagrees with the record it points at */
    db_bind_int64(st, 1, a->id);
    db_bind_int(st, 2, a->passed ? 1 : 0);
    if (w->cert != NULL && w->spki != NULL && w->spki_len > 0)
        db_bind_blob(st, 3, w->spki, (int)w->spki_len);
    else
        db_bind_null(st, 3);
    db_bind_text(st, 4, a->device_id);
    err = sq_step_done(s, st, NULL);
    if (err == RP_OK)
        err = sq_device_counts_move(s, &before, &after);
    /* A proven failure: the device's certificates go with the verdict, in its transaction. */
    if (err == RP_OK && w->revokes && !a->passed)
        err = sq_device_revoke(s, before.tenant_id[0] != '\0' ? before.tenant_id : a->tenant_id,
                               a->device_id, a->at, RP_REVOKED_FAILED);
    return err == RP_ERR_EXISTS ? RP_ERR_IO : err;
}

rp_err_t rp_store_attestations_record(rp_store_t *s, rp_attestation_write_t *w, size_t n)
{
    rp_err_t err = sq_begin(s);
    bool grew = false;

    if (err != RP_OK)
        return err; /* begin() has let go of the write lock */
    for (size_t i = 0; i < n && err == RP_OK; i++)
        err = record_one(s, &w[i], &grew); /* a failure is the database's: none is recorded */
    if (err == RP_OK && grew)
        err = trim_unproven(s);
    return sq_end(s, err);
}

rp_err_t rp_store_unproven_list(rp_store_t *s, int limit, rp_unproven_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_UNPROVEN_LIST);
    rp_unproven_source_t u;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int(st, 1, limit);
    while ((rc = db_step(st)) == DB_ROW) {
        memset(&u, 0, sizeof(u));
        sq_text_col(st, 0, u.address, sizeof(u.address));
        u.first_at = db_column_int64(st, 1);
        u.last_at = db_column_int64(st, 2);
        u.count = db_column_int64(st, 3);
        sq_text_col(st, 4, u.last_reason, sizeof(u.last_reason));
        sq_text_col(st, 5, u.last_device_id, sizeof(u.last_device_id));
        fn(ctx, &u);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "unproven attestations");
}

rp_err_t rp_store_attestation_list(rp_store_t *s, const char *tenant_id, const char *device_id,
                                   int limit, rp_attestation_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_ATTEST_LIST);
    rp_attestation_t *a;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    a = malloc(sizeof(*a));
    if (a == NULL)
        return RP_ERR_NO_MEMORY;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, device_id);
    db_bind_int(st, 3, limit);
    while ((rc = db_step(st)) == DB_ROW) {
        memset(a, 0, sizeof(*a));
        a->id = db_column_int64(st, 0);
        sq_text_col(st, 1, a->device_id, sizeof(a->device_id));
        sq_text_col(st, 2, a->tenant_id, sizeof(a->tenant_id));
        a->at = db_column_int64(st, 3);
        a->passed = db_column_int(st, 4) != 0;
        sq_text_col(st, 5, a->reason, sizeof(a->reason));
        sq_text_col(st, 6, a->claims_json, sizeof(a->claims_json));
        sq_text_col(st, 7, a->cert_serial, sizeof(a->cert_serial));
        fn(ctx, a);
    }
    db_reset(st);
    free(a);
    return rc == DB_DONE ? RP_OK : sq_error(s, "attestations");
}

static const char SQL_CERT_GET[] =
    "SELECT serial, tenant_id, device_id, not_before, not_after, revoked_at, revoked_for"
    " FROM certificates WHERE serial = ?";
/* revoked_at is 0 or the time of the revocation: "> 0", not "!= 0", so that both engines read
 * the revoked ones as a range of certificates_revoked (tenant_id, revoked_at), not every one of
 * the tenant's certificates (bench/fleet: a CRL's time grew with the fleet, not the revocations).
 */
static const char SQL_REVOKED_LIST[] =
    "SELECT serial, tenant_id, device_id, not_before, not_after, revoked_at, revoked_for"
    " FROM certificates WHERE tenant_id = ? AND revoked_at > 0 AND not_after > ?"
    " ORDER BY revoked_at, serial";

static const char SQL_DEVICE_REISSUE[] =
    "SELECT d.tenant_id, CASE WHEN d.blocked <> 0 OR d.quarantined_at <> 0 THEN 1 ELSE 0 END,"
    " a.passed, a.at FROM devices d"
    " LEFT JOIN attestations a ON a.id = d.last_attestation WHERE d.id = ?";

/* Inside the caller's transaction: may the device get cert, renewing old_serial? */
static rp_err_t reissue_check(rp_store_t *s, const rp_cert_record_t *cert, const char *old_serial,
                              int64_t attested_since, rp_reissue_t *outcome)
{
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_REISSUE);
    char tenant_id[RP_ID_SIZE];
    bool blocked, passed;
    int64_t at;
    rp_cert_record_t old;
    rp_err_t err;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, cert->device_id);
    rc = db_step(st);
    if (rc != DB_ROW) {
        db_reset(st);
        if (rc != DB_DONE)
            return sq_error(s, "device");
        *outcome = RP_REISSUE_BLOCKED; /* no tenant holds it */
        return RP_OK;
    }
    sq_text_col(st, 0, tenant_id, sizeof(tenant_id));
    blocked = db_column_int(st, 1) != 0;
    passed = !db_column_null(st, 2) && db_column_int(st, 2) != 0;
    at = db_column_int64(st, 3);
    db_reset(st);
    if (blocked || strcmp(tenant_id, cert->tenant_id) != 0) {
        *outcome = RP_REISSUE_BLOCKED;
        return RP_OK;
    }
    err = rp_store_cert_get(s, old_serial, &old);
    if (err == RP_ERR_NOT_FOUND ||
        (err == RP_OK && (old.revoked_at != 0 || strcmp(old.device_id, cert->device_id) != 0 ||
                          strcmp(old.tenant_id, cert->tenant_id) != 0))) {
        *outcome = RP_REISSUE_NOT_CURRENT;
        return RP_OK;
    }
    if (err != RP_OK)
        return err;
    *outcome = passed && at >= attested_since ? RP_REISSUE_DONE : RP_REISSUE_ATTESTATION_REQUIRED;
    return RP_OK;
}

/* The device's re-enrollments recorded in the window before cert's: how many, and the oldest's
 * not_before. "not_after > ?2" is implied by "not_before > ?2" (a certificate ends after it
 * starts) and makes the device's certificates_device range those still valid, not every
 * certificate it was ever given. */
const char sq_sql_reissued_recent[] =
    "SELECT count(*), min(not_before) FROM certificates"
    " WHERE device_id = ?1 AND not_after > ?2 AND not_before > ?2 AND reissued <> 0";

/* Inside the caller's transaction, under the write lock (so two replicas racing for the last slot
 * take turns, and the second counts the first's): may the device have one more re-enrollment? */
static rp_err_t reissue_limit_check(rp_store_t *s, const rp_cert_record_t *cert, long per_hour,
                                    rp_reissue_t *outcome, int64_t *retry_after)
{
    sq_st_t *st;
    int64_t n, oldest;
    int rc;

    if (per_hour <= 0)
        return RP_OK;
    st = sq_stmt(s, sq_sql_reissued_recent);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, cert->device_id);
    db_bind_int64(st, 2, cert->not_before - RP_REISSUE_WINDOW);
    rc = db_step(st);
    if (rc != DB_ROW) {
        db_reset(st);
        return sq_error(s, "re-enrollments");
    }
    n = db_column_int64(st, 0);
    oldest = db_column_int64(st, 1);
    db_reset(st);
    if (n < per_hour)
        return RP_OK;
    /* The oldest of them leaves the window then (a replica's clock ahead may make it later). */
    *retry_after = oldest + RP_REISSUE_WINDOW - cert->not_before;
    if (*retry_after < 1)
        *retry_after = 1;
    if (*retry_after > RP_REISSUE_WINDOW)
        *retry_after = RP_REISSUE_WINDOW;
    *outcome = RP_REISSUE_LIMITED;
    return RP_OK;
}

rp_err_t rp_store_cert_reissue(rp_store_t *s, const rp_cert_record_t *cert, const char *old_serial,
                               int64_t attested_since, long per_hour, rp_reissue_t *outcome,
                               int64_t *retry_after)
{
    rp_err_t err = sq_begin(s);

    *outcome = RP_REISSUE_NOT_CURRENT;
    *retry_after = 0;
    if (err != RP_OK)
        return err;
    err = reissue_check(s, cert, old_serial, attested_since, outcome);
    if (err == RP_OK && *outcome == RP_REISSUE_DONE)
        err = reissue_limit_check(s, cert, per_hour, outcome, retry_after);
    if (err == RP_OK && *outcome == RP_REISSUE_DONE) {
        err = insert_cert(s, cert, true);
        if (err == RP_ERR_EXISTS)
            err = RP_ERR_IO; /* a serial twice: random serials never collide */
    }
    return sq_end(s, err);
}

static void cert_row(sq_st_t *st, rp_cert_record_t *c)
{
    memset(c, 0, sizeof(*c));
    sq_text_col(st, 0, c->serial, sizeof(c->serial));
    sq_text_col(st, 1, c->tenant_id, sizeof(c->tenant_id));
    sq_text_col(st, 2, c->device_id, sizeof(c->device_id));
    c->not_before = db_column_int64(st, 3);
    c->not_after = db_column_int64(st, 4);
    c->revoked_at = db_column_int64(st, 5);
    c->revoked_for = db_column_int(st, 6);
    if (c->revoked_for != RP_REVOKED_FAILED && c->revoked_for != RP_REVOKED_LIFTED)
        c->revoked_for = RP_REVOKED_OTHER; /* unknown (a newer replica's): fails closed */
}

rp_err_t rp_store_cert_get(rp_store_t *s, const char *serial, rp_cert_record_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_CERT_GET);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, serial);
    rc = db_step(st);
    if (rc == DB_DONE)
        return RP_ERR_NOT_FOUND;
    if (rc != DB_ROW)
        return sq_error(s, "certificate");
    cert_row(st, out);
    db_reset(st);
    return RP_OK;
}

rp_err_t rp_store_revoked_list(rp_store_t *s, const char *tenant_id, rp_cert_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_REVOKED_LIST);
    rp_cert_record_t c;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    /* An expired certificate need not stay on the CRL: it fails validation anyway. */
    db_bind_int64(st, 2, (int64_t)time(NULL));
    while ((rc = db_step(st)) == DB_ROW) {
        cert_row(st, &c);
        fn(ctx, &c);
    }
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, "revoked certificates");
}

static const char SQL_POLICY_GET[] =
    "SELECT require_components, require_register, allow_debug, updated, allow_development"
    " FROM tenant_policies WHERE tenant_id = ?";
static const char SQL_POLICY_SET[] =
    "INSERT INTO tenant_policies (tenant_id, require_components, require_register, allow_debug,"
    " updated, allow_development) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(tenant_id) DO UPDATE"
    " SET require_components = ?2, require_register = ?3, allow_debug = ?4, updated = ?5,"
    " allow_development = ?6";

rp_err_t rp_store_policy_get(rp_store_t *s, const char *tenant_id, rp_policy_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_POLICY_GET);
    int rc;

    *out = RP_POLICY_DEFAULT;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        out->require_components = db_column_int(st, 0) != 0;
        out->require_register = db_column_int(st, 1) != 0;
        out->allow_debug = db_column_int(st, 2) != 0;
        out->updated = db_column_int64(st, 3);
        out->allow_development = db_column_int(st, 4) != 0;
    }
    db_reset(st);
    return rc == DB_ROW || rc == DB_DONE ? RP_OK : sq_error(s, "policy");
}

rp_err_t rp_store_policy_set(rp_store_t *s, const char *tenant_id, rp_policy_t *p)
{
    sq_st_t *st = sq_stmt(s, SQL_POLICY_SET);

    if (st == NULL)
        return RP_ERR_IO;
    p->updated = (int64_t)time(NULL);
    db_bind_text(st, 1, tenant_id);
    db_bind_int(st, 2, p->require_components);
    db_bind_int(st, 3, p->require_register);
    db_bind_int(st, 4, p->allow_debug);
    db_bind_int64(st, 5, p->updated);
    db_bind_int(st, 6, p->allow_development);
    return sq_step_done(s, st, NULL);
}

static const char SQL_CA_INSERT[] =
    "INSERT INTO cas (tenant_id, cert_pem, key_pem, not_after) VALUES (?, ?, ?, ?)";
static const char SQL_CA_SUCCESSOR_INSERT[] =
    "INSERT INTO ca_successors (tenant_id, cert_pem, key_pem, not_after, generation)"
    " VALUES (?, ?, ?, ?, ?)";
static const char SQL_CA_GET[] = "SELECT cert_pem, key_pem, not_after FROM cas WHERE tenant_id = ?";
/* The first CA (generation 0) and its successors, newest first. */
static const char SQL_CA_LIST[] =
    "SELECT 0, cert_pem, key_pem, not_after FROM cas WHERE tenant_id = ?"
    " UNION ALL SELECT generation, cert_pem, key_pem, not_after FROM ca_successors"
    " WHERE tenant_id = ? ORDER BY 1 DESC LIMIT ?";
/* Per tenant, the end of its newest CA (the one that ends last); the soonest of those. */
static const char SQL_CA_SOONEST_END[] =
    "SELECT min(e) FROM (SELECT max(not_after) AS e FROM (SELECT tenant_id, not_after FROM cas"
    " UNION ALL SELECT tenant_id, not_after FROM ca_successors) AS a GROUP BY tenant_id) AS t";
/* The tenants whose newest CA ends by ?, the soonest first. */
static const char SQL_CA_ENDING[] =
    "SELECT tenant_id FROM (SELECT tenant_id, max(not_after) AS e FROM (SELECT tenant_id, not_after"
    " FROM cas UNION ALL SELECT tenant_id, not_after FROM ca_successors) AS a GROUP BY tenant_id)"
    " AS t WHERE e <= ? ORDER BY e, tenant_id LIMIT ?";
rp_err_t rp_store_ca_put(rp_store_t *s, const rp_ca_record_t *ca)
{
    sq_st_t *st = sq_stmt(s, ca->generation == 0 ? SQL_CA_INSERT : SQL_CA_SUCCESSOR_INSERT);

    if (ca->generation < 0)
        return RP_ERR_INVALID_ARG;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, ca->tenant_id);
    db_bind_text(st, 2, ca->cert_pem);
    db_bind_text(st, 3, ca->key_pem_enc);
    db_bind_int64(st, 4, ca->not_after);
    if (ca->generation != 0)
        db_bind_int(st, 5, ca->generation);
    return sq_step_done(s, st, NULL);
}

static char *dup_col(sq_st_t *st, int col)
{
    const char *t = db_column_text(st, col);

    return t != NULL ? strdup((const char *)t) : NULL;
}

rp_err_t rp_store_ca_get(rp_store_t *s, const char *tenant_id, rp_ca_record_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_CA_GET);
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    rc = db_step(st);
    if (rc == DB_DONE)
        return RP_ERR_NOT_FOUND;
    if (rc != DB_ROW)
        return sq_error(s, "tenant CA");
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", tenant_id);
    out->cert_pem = dup_col(st, 0);
    out->key_pem_enc = dup_col(st, 1);
    out->not_after = db_column_int64(st, 2);
    db_reset(st); /* do not keep a copy of the key inside SQLite's statement longer */
    if (out->cert_pem == NULL || out->key_pem_enc == NULL) {
        rp_ca_record_free(out);
        return RP_ERR_NO_MEMORY;
    }
    return RP_OK;
}

rp_err_t rp_store_ca_list(rp_store_t *s, const char *tenant_id, rp_ca_record_t *out, int max,
                          int *n)
{
    sq_st_t *st = sq_stmt(s, SQL_CA_LIST);
    rp_err_t err = RP_OK;
    int rc = DB_DONE;

    *n = 0;
    if (max <= 0)
        return RP_ERR_INVALID_ARG;
    memset(out, 0, (size_t)max * sizeof(*out));
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, tenant_id);
    db_bind_int(st, 3, max);
    while (err == RP_OK && *n < max && (rc = db_step(st)) == DB_ROW) {
        rp_ca_record_t *r = &out[(*n)++];
        snprintf(r->tenant_id, sizeof(r->tenant_id), "%s", tenant_id);
        r->generation = db_column_int(st, 0);
        r->cert_pem = dup_col(st, 1);
        r->key_pem_enc = dup_col(st, 2);
        r->not_after = db_column_int64(st, 3);
        if (r->cert_pem == NULL || r->key_pem_enc == NULL)
            err = RP_ERR_NO_MEMORY;
    }
    if (err == RP_OK && rc != DB_ROW && rc != DB_DONE)
        err = sq_error(s, "tenant CAs");
    db_reset(st); /* do not keep a copy of a key inside the statement longer */
    if (err != RP_OK) {
        for (int i = 0; i < *n; i++)
            rp_ca_record_free(&out[i]);
        *n = 0;
    }
    return err;
}

rp_err_t rp_store_ca_ending(rp_store_t *s, int64_t by, char (*ids)[RP_ID_SIZE], int max, int *n)
{
    sq_st_t *st = sq_stmt(s, SQL_CA_ENDING);
    rp_err_t err = RP_OK;
    int rc = DB_DONE;

    *n = 0;
    if (max <= 0)
        return RP_ERR_INVALID_ARG;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, by);
    db_bind_int(st, 2, max);
    while (*n < max && (rc = db_step(st)) == DB_ROW)
        if (!db_column_null(st, 0))
            snprintf(ids[(*n)++], RP_ID_SIZE, "%s", db_column_text(st, 0));
    if (rc != DB_ROW && rc != DB_DONE)
        err = sq_error(s, "tenant CAs ending");
    db_reset(st);
    return err;
}

rp_err_t rp_store_ca_soonest_end(rp_store_t *s, int64_t *soonest)
{
    sq_st_t *st = sq_stmt(s, SQL_CA_SOONEST_END);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    rc = db_step(st);
    if (rc != DB_ROW)
        return sq_error(s, "tenant CAs' end");
    if (db_column_null(st, 0)) {
        db_reset(st);
        return RP_ERR_NOT_FOUND;
    }
    *soonest = db_column_int64(st, 0);
    db_reset(st);
    return RP_OK;
}

/* A write that must reach the disk, per engine. SQLite: the database header's user_version is
 * what changes (nothing else uses it, and a write that changes nothing would not be written at
 * all). PostgreSQL: the transaction takes an ID, which a standby refuses, and its commit is a WAL
 * record flushed to disk; a primary with default_transaction_read_only on (which managed services
 * set when storage fills) gives an ID all the same, so the transaction's own read-only setting is
 * read with it (review r15ops M3). */
rp_err_t rp_store_write_check(rp_store_t *s)
{
    sq_st_t *st = NULL;
    char sql[64];
    int v = 0;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    st = sq_prepare(s, sq_engine(s) == SQ_PG ? "SELECT 0, current_setting('transaction_read_only'),"
                                               " pg_current_xact_id()"
                                             : "PRAGMA user_version");
    if (st == NULL)
        err = RP_ERR_IO;
    else if (db_step(st) != DB_ROW)
        err = sq_error(s, "readiness");
    else if (sq_engine(s) == SQ_PG && strcmp(db_column_text(st, 1), "off") != 0)
        err = RP_ERR_DENIED; /* read-only: every write would be refused */
    else
        v = db_column_int(st, 0);
    sq_finalize(st);
    if (err == RP_OK && sq_engine(s) == SQ_SQLITE) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v == INT32_MAX ? 0 : v + 1);
        err = sq_exec(s, sql);
    }
    return sq_end(s, err);
}
