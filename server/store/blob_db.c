/*
 * The blob store in the database (blob.h, --blobs database): written once in SQL both engines
 * run, through the store's connection (db.h), so that replicas sharing one database share every
 * blob. A blob is a row of `blobs` (its ID, its name, its size) and its bytes rows of
 * `blob_chunks` (the blob's ID, the byte offset a row starts at, its length, at most RP_BLOB_CHUNK
 * bytes of data), migration 19.
 *
 * A put makes its `blobs` row with no name, writes its chunks each in its own short transaction
 * as its buffer fills (never the whole blob in memory, nor one long transaction holding the
 * write lock), and commit names it in one transaction, unless the name holds a blob, which
 * keeps it (the put's rows are dropped instead: a reader of the blob there reads its chunks by
 * its ID, and deleting them would cut it): a kill before that leaves a nameless row that no
 * reader can reach and rp_blobs_sweep drops. An
 * append adds chunks at the blob's end and its new size in one transaction. A read selects the
 * chunks that overlap the range: by the key (blob, pos) from RP_BLOB_CHUNK before the range's
 * start, since no chunk is longer.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rampart/failpoint.h"
#include "rampart/log.h"
#include "store/blob.h"
#include "store_internal.h"

typedef struct db_blobs {
    rp_blobs_t b;
    rp_store_t *s;
} db_blobs_t;

typedef struct db_writer {
    rp_blob_writer_t w;
    char id[RP_ID_SIZE];
    char name[RP_BLOB_NAME_MAX + 1];
    uint64_t size; /* bytes in chunks written */
    size_t fill;   /* bytes in buf */
    uint8_t buf[RP_BLOB_CHUNK];
} db_writer_t;

typedef struct db_reader {
    rp_blob_reader_t r;
    char id[RP_ID_SIZE];
    uint64_t size;
} db_reader_t;

static const char SQL_BLOB_NEW[] =
    "INSERT INTO blobs (id, name, size, created) VALUES (:id, :name, 0, :now)";
static const char SQL_BLOB_BY_NAME[] = "SELECT id, size FROM blobs WHERE name = :name";
static const char SQL_BLOB_NAME[] = "UPDATE blobs SET name = :name, size = :size WHERE id = :id";
static const char SQL_BLOB_SIZE[] = "UPDATE blobs SET size = :size WHERE id = :id";
static const char SQL_BLOB_DROP_CHUNKS[] = "DELETE FROM blob_chunks WHERE blob_id = :id";
static const char SQL_BLOB_DROP[] = "DELETE FROM blobs WHERE id = :id";
static const char SQL_CHUNK_ADD[] = "INSERT INTO blob_chunks (blob_id, pos, len, data)"
                                    " VALUES (:id, :pos, :len, :data)";
/* (the index seeks from :lo; the rows that end before the range are left out before their data
 * is read) */
static const char SQL_CHUNKS_READ[] = "SELECT pos, data FROM blob_chunks WHERE blob_id = :id"
                                      " AND pos >= :lo AND pos < :end AND pos + len > :start"
                                      " ORDER BY pos";
/* (a page of names at a time, in the UNIQUE index's order: whatever the collation, the same for
 * "> :after" as for the ORDER BY; a namespace is a-z only, no pattern character) */
static const char SQL_BLOB_LIST[] = "SELECT name, size FROM blobs WHERE name LIKE :pattern"
                                    " AND name > :after ORDER BY name LIMIT 128";
static const char SQL_BLOB_ABANDONED[] =
    "SELECT id FROM blobs WHERE name IS NULL AND created < :before LIMIT 16";

static rp_store_t *store_of(rp_blobs_t *b)
{
    return ((db_blobs_t *)b)->s;
}

/* The blob a name holds: its ID and size; RP_ERR_NOT_FOUND. */
static rp_err_t by_name(rp_store_t *s, const char *name, char id[RP_ID_SIZE], uint64_t *size)
{
    sq_st_t *st = sq_stmt(s, SQL_BLOB_BY_NAME);
    rp_err_t err;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, db_param(st, ":name"), name);
    rc = db_step(st);
    if (rc == DB_ROW) {
        sq_text_col(st, 0, id, RP_ID_SIZE);
        *size = (uint64_t)db_column_int64(st, 1);
        err = RP_OK;
    } else {
        err = rc == DB_DONE ? RP_ERR_NOT_FOUND : sq_error(s, "blob");
    }
    db_reset(st);
    return err;
}

/* Run one of the statements above that take :id only. */
static rp_err_t by_id(rp_store_t *s, const char *sql, const char *id)
{
    sq_st_t *st = sq_stmt(s, sql);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, db_param(st, ":id"), id);
    return sq_step_done(s, st, NULL);
}

/* A blob's chunks, then its row (inside the caller's transaction, or each under the lock). */
static rp_err_t drop(rp_store_t *s, const char *id)
{
    rp_err_t err = by_id(s, SQL_BLOB_DROP_CHUNKS, id);

    return err == RP_OK ? by_id(s, SQL_BLOB_DROP, id) : err;
}

/* Give blob id the name, with its size (inside the caller's transaction): unless the name holds
 * another blob already, which keeps it, and id is dropped. */
static rp_err_t name_it(rp_store_t *s, const char *id, const char *name, uint64_t size)
{
    char there[RP_ID_SIZE];
    uint64_t n;
    sq_st_t *st;
    rp_err_t err = by_name(s, name, there, &n);

    if (err == RP_OK)
        return strcmp(there, id) == 0 ? RP_OK : drop(s, id);
    if (err != RP_ERR_NOT_FOUND)
        return err;
    if ((st = sq_stmt(s, SQL_BLOB_NAME)) == NULL)
        return RP_ERR_IO;
    db_bind_text(st, db_param(st, ":name"), name);
    db_bind_int64(st, db_param(st, ":size"), (int64_t)size);
    db_bind_text(st, db_param(st, ":id"), id);
    return sq_step_done(s, st, NULL);
}

static rp_err_t new_row(rp_store_t *s, const char *name, char id[RP_ID_SIZE])
{
    sq_st_t *st = sq_stmt(s, SQL_BLOB_NEW);
    rp_err_t err = st != NULL ? sq_random_id('b', id, RP_ID_SIZE) : RP_ERR_IO;

    if (err != RP_OK)
        return err;
    db_bind_text(st, db_param(st, ":id"), id);
    db_bind_text(st, db_param(st, ":name"), name); /* NULL: a put, nameless until commit */
    db_bind_int64(st, db_param(st, ":now"), (int64_t)time(NULL));
    return sq_step_done(s, st, NULL);
}

static rp_err_t add_chunk(rp_store_t *s, const char *id, uint64_t pos, const void *data, size_t len)
{
    sq_st_t *st = sq_stmt(s, SQL_CHUNK_ADD);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, db_param(st, ":id"), id);
    db_bind_int64(st, db_param(st, ":pos"), (int64_t)pos);
    db_bind_int64(st, db_param(st, ":len"), (int64_t)len);
    db_bind_blob(st, db_param(st, ":data"), data, len);
    return sq_step_done(s, st, NULL);
}

static void db_close(rp_blobs_t *b)
{
    free(b);
}

static rp_err_t db_put_begin(rp_blobs_t *b, const char *name, rp_blob_writer_t **out)
{
    db_writer_t *w = malloc(sizeof(*w));
    rp_err_t err = w != NULL ? new_row(store_of(b), NULL, w->id) : RP_ERR_NO_MEMORY;

    if (err != RP_OK) {
        free(w);
        return err;
    }
    w->w.b = b;
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->size = 0;
    w->fill = 0;
    *out = &w->w;
    return RP_OK;
}

static rp_err_t flush(db_writer_t *w)
{
    rp_err_t err = RP_OK;

    if (w->fill > 0)
        err = add_chunk(store_of(w->w.b), w->id, w->size, w->buf, w->fill);
    if (err == RP_OK) {
        w->size += w->fill;
        w->fill = 0;
    }
    return err;
}

static rp_err_t db_put_write(rp_blob_writer_t *bw, const void *data, size_t len)
{
    db_writer_t *w = (db_writer_t *)bw;
    const uint8_t *p = data;
    rp_err_t err = RP_OK;

    while (err == RP_OK && len > 0) {
        size_t n = RP_BLOB_CHUNK - w->fill < len ? RP_BLOB_CHUNK - w->fill : len;
        memcpy(w->buf + w->fill, p, n);
        w->fill += n;
        p += n;
        len -= n;
        if (w->fill == RP_BLOB_CHUNK)
            err = flush(w);
    }
    return err;
}

static void db_put_abort(rp_blob_writer_t *bw)
{
    db_writer_t *w = (db_writer_t *)bw;

    /* What is left (a failure here) stays nameless, for the sweep. */
    (void)drop(store_of(bw->b), w->id);
    free(w);
}

static rp_err_t db_put_commit(rp_blob_writer_t *bw)
{
    db_writer_t *w = (db_writer_t *)bw;
    rp_store_t *s = store_of(bw->b);
    rp_err_t err = flush(w);

    rp_failpoint("blob db: written, not yet named");
    if (err == RP_OK)
        err = sq_begin(s);
    if (err == RP_OK)
        err = sq_end(s, name_it(s, w->id, w->name, w->size));
    if (err != RP_OK) {
        db_put_abort(bw);
        return err;
    }
    free(w);
    return RP_OK;
}

static rp_err_t db_append(rp_blobs_t *b, const char *name, uint64_t at, const void *data,
                          size_t len)
{
    rp_store_t *s = store_of(b);
    const uint8_t *p = data;
    char id[RP_ID_SIZE];
    uint64_t size = 0;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    err = by_name(s, name, id, &size);
    if (err == RP_ERR_NOT_FOUND && at == 0)
        err = new_row(s, name, id);
    else if (err == RP_ERR_NOT_FOUND || (err == RP_OK && size != at))
        err = RP_ERR_BUSY;
    for (size_t done = 0; err == RP_OK && done < len; done += RP_BLOB_CHUNK) {
        size_t n = len - done < RP_BLOB_CHUNK ? len - done : RP_BLOB_CHUNK;
        err = add_chunk(s, id, at + done, p + done, n);
    }
    if (err == RP_OK) {
        sq_st_t *st = sq_stmt(s, SQL_BLOB_SIZE);
        if (st == NULL) {
            err = RP_ERR_IO;
        } else {
            db_bind_int64(st, db_param(st, ":size"), (int64_t)(at + len));
            db_bind_text(st, db_param(st, ":id"), id);
            err = sq_step_done(s, st, NULL);
        }
    }
    return sq_end(s, err);
}

static rp_err_t db_open(rp_blobs_t *b, const char *name, rp_blob_reader_t **out, uint64_t *size)
{
    db_reader_t *r = calloc(1, sizeof(*r));
    rp_err_t err = r != NULL ? by_name(store_of(b), name, r->id, &r->size) : RP_ERR_NO_MEMORY;

    if (err != RP_OK) {
        free(r);
        return err;
    }
    r->r.b = b;
    *size = r->size;
    *out = &r->r;
    return RP_OK;
}

static rp_err_t db_read(rp_blob_reader_t *br, uint64_t off, void *buf, size_t len, size_t *got)
{
    db_reader_t *r = (db_reader_t *)br;
    rp_store_t *s = store_of(br->b);
    sq_st_t *st;
    uint64_t end, at = off;
    rp_err_t err = RP_OK;
    int rc = DB_DONE;

    if (off >= r->size)
        return RP_OK;
    end = r->size - off < len ? r->size : off + len;
    if ((st = sq_stmt(s, SQL_CHUNKS_READ)) == NULL)
        return RP_ERR_IO;
    db_bind_text(st, db_param(st, ":id"), r->id);
    db_bind_int64(st, db_param(st, ":lo"),
                  (int64_t)(off >= RP_BLOB_CHUNK ? off - RP_BLOB_CHUNK + 1 : 0));
    db_bind_int64(st, db_param(st, ":end"), (int64_t)end);
    db_bind_int64(st, db_param(st, ":start"), (int64_t)off);
    while (at < end && (rc = db_step(st)) == DB_ROW) {
        uint64_t pos = (uint64_t)db_column_int64(st, 0);
        size_t n;
        const uint8_t *data = st->h->drv->column_blob(st->h, 1, &n);
        if (pos + n <= at)
            continue; /* ends before the range */
        if (pos > at) {
            err = RP_ERR_IO; /* a hole: not a blob this store wrote */
            break;
        }
        n = (size_t)(pos + n - at < end - at ? pos + n - at : end - at);
        memcpy((uint8_t *)buf + (at - off), data + (at - pos), n);
        at += n;
    }
    if (err == RP_OK && at < end)
        err = at == off && rc == DB_ERROR ? sq_error(s, "blob chunks") : RP_ERR_IO;
    db_reset(st);
    *got = (size_t)(at - off);
    return err;
}

static void db_close_reader(rp_blob_reader_t *br)
{
    free(br);
}

static rp_err_t db_stat(rp_blobs_t *b, const char *name, uint64_t *size)
{
    char id[RP_ID_SIZE];

    return by_name(store_of(b), name, id, size);
}

static rp_err_t db_rename(rp_blobs_t *b, const char *from, const char *to)
{
    rp_store_t *s = store_of(b);
    char id[RP_ID_SIZE];
    uint64_t size;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    err = by_name(s, from, id, &size);
    if (err == RP_OK)
        err = name_it(s, id, to, size);
    return sq_end(s, err);
}

static rp_err_t db_remove(rp_blobs_t *b, const char *name)
{
    rp_store_t *s = store_of(b);
    char id[RP_ID_SIZE];
    uint64_t size;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    err = by_name(s, name, id, &size);
    if (err == RP_OK)
        err = drop(s, id);
    return sq_end(s, err);
}

static rp_err_t db_sweep(rp_blobs_t *b, int64_t before, unsigned *n)
{
    rp_store_t *s = store_of(b);
    char ids[16][RP_ID_SIZE];
    rp_err_t err = RP_OK;
    int k;

    do {
        sq_st_t *st = sq_stmt(s, SQL_BLOB_ABANDONED);
        int rc = DB_DONE;
        if (st == NULL)
            return RP_ERR_IO;
        db_bind_int64(st, db_param(st, ":before"), before);
        for (k = 0; k < 16 && (rc = db_step(st)) == DB_ROW; k++)
            sq_text_col(st, 0, ids[k], RP_ID_SIZE);
        if (rc == DB_ERROR)
            err = sq_error(s, "abandoned blobs");
        db_reset(st);
        for (int i = 0; err == RP_OK && i < k; i++) {
            err = sq_begin(s);
            if (err == RP_OK)
                err = sq_end(s, drop(s, ids[i]));
            if (err == RP_OK)
                (*n)++;
        }
    } while (err == RP_OK && k == 16);
    return err;
}

/* A page of names at a time, the statement reset before fn sees them (fn may use the
 * connection: read the blob, remove it). */
static rp_err_t db_list(rp_blobs_t *b, const char *ns, rp_blob_name_fn fn, void *ctx)
{
    rp_store_t *s = store_of(b);
    enum { PAGE = 128 }; /* (SQL_BLOB_LIST's LIMIT) */
    char(*names)[RP_BLOB_NAME_MAX + 1] = malloc(PAGE * sizeof(*names));
    char after[RP_BLOB_NAME_MAX + 1], pattern[32];
    uint64_t sizes[PAGE];
    rp_err_t err = names == NULL ? RP_ERR_NO_MEMORY
                   : snprintf(pattern, sizeof(pattern), "%s/%%", ns) >= (int)sizeof(pattern)
                       ? RP_ERR_INVALID_ARG
                       : RP_OK;
    int k = PAGE;

    after[0] = '\0';
    while (err == RP_OK && k == PAGE) {
        sq_st_t *st = sq_stmt(s, SQL_BLOB_LIST);
        int rc = DB_DONE;
        if (st == NULL) {
            err = RP_ERR_IO;
            break;
        }
        db_bind_text(st, db_param(st, ":pattern"), pattern);
        db_bind_text(st, db_param(st, ":after"), after);
        for (k = 0; k < PAGE && (rc = db_step(st)) == DB_ROW; k++) {
            sq_text_col(st, 0, names[k], sizeof(names[k]));
            sizes[k] = (uint64_t)db_column_int64(st, 1);
        }
        if (rc == DB_ERROR)
            err = sq_error(s, "blob names");
        db_reset(st);
        for (int i = 0; err == RP_OK && i < k; i++)
            err = fn(ctx, names[i], sizes[i]);
        if (k > 0)
            memcpy(after, names[k - 1], sizeof(after));
    }
    free(names);
    return err;
}

const rp_blob_ops_t rp_blob_db_ops = {
    .name = "database",
    .close = db_close,
    .put_begin = db_put_begin,
    .put_write = db_put_write,
    .put_commit = db_put_commit,
    .put_abort = db_put_abort,
    .append = db_append,
    .open = db_open,
    .read = db_read,
    .close_reader = db_close_reader,
    .stat = db_stat,
    .rename = db_rename,
    .remove = db_remove,
    .sweep = db_sweep,
    .list = db_list,
};

rp_err_t rp_blobs_open_db(rp_store_t *store, rp_blobs_t **out)
{
    db_blobs_t *d = calloc(1, sizeof(*d));

    *out = NULL;
    if (d == NULL)
        return RP_ERR_NO_MEMORY;
    d->b.ops = &rp_blob_db_ops;
    d->s = store;
    *out = &d->b;
    return RP_OK;
}
