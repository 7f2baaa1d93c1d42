/*
 * The blob store contract: the service's large byte strings (uploads in progress, images,
 * deltas) behind a table of operations that each backend implements once, the way db.h puts the
 * SQL engines behind one table. blob_dir.c keeps them as files under the data directory (the
 * default, and the layout the service always had: DATA_DIR/uploads/ID, images/SHA256,
 * deltas/FROM-TO.zst); blob_db.c keeps them in the database, in rows of at most
 * RP_BLOB_CHUNK bytes written through db.h, so that replicas sharing one database share them.
 *
 * A blob is named "NAMESPACE/LEAF": NAMESPACE 1 to 16 of a-z, LEAF 1 to 200 of A-Z a-z 0-9 . _ -
 * not starting with a dot (rp_blob_name_valid). Images are content-addressed: their leaf is the
 * SHA-256 of their bytes (the image ID), so the same bytes are one blob, whichever tenant
 * uploaded them; a delta's name is its two images'.
 *
 * A committed name is never replaced: a put's commit or a rename onto a name that holds a blob
 * drops the newcomer's bytes and keeps the blob there (RP_OK: the name holds the bytes the
 * caller meant, since the names put or renamed onto are content-addressed; a debug file's,
 * which is not, is removed before it is put again). So one tenant's upload of bytes another
 * tenant has as an image never touches that image's blob, nor a download of it in progress (in
 * the database, a reader reads its blob's chunks by the blob's ID: replacing it would delete them
 * under the reader).
 *
 * Two ways in:
 *   - a put: begin, write any number of times, then commit or abort. Nothing of it is visible
 *     under its name before commit; a process killed mid-put leaves nothing visible (what it
 *     wrote is swept later, rp_blobs_sweep).
 *   - an append (uploads, which arrive in chunks over many requests, maybe at several replicas):
 *     the blob grows in place, visible as it grows; each append is durable when it returns.
 * Reading: open (its size), read any range into the caller's buffer, close. Nothing here holds a
 * whole blob in memory: a put buffers at most RP_BLOB_CHUNK bytes, a read what it is asked.
 *
 * A handle (rp_blobs_t) is used by one thread at a time; the database backend borrows that
 * thread's store connection (the store's transactions and the blob store's share it).
 */
#ifndef RAMPART_STORE_BLOB_H
#define RAMPART_STORE_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stdatomic.h>

#include "rampart/error.h"
#include "store.h"

#define RP_BLOB_CHUNK (256 * 1024) /* the database backend's row; a put's buffer */
#define RP_BLOB_NAME_MAX 217       /* "NAMESPACE/LEAF" at most, without its NUL */

typedef enum rp_blobs_kind {
    RP_BLOBS_DIR = 0,      /* --blobs dir: files under the data directory (the default) */
    RP_BLOBS_DATABASE = 1, /* --blobs database: rows in the service's database */
} rp_blobs_kind_t;

typedef struct rp_blobs rp_blobs_t;             /* one thread's handle on the store */
typedef struct rp_blob_writer rp_blob_writer_t; /* a put in progress */
typedef struct rp_blob_reader rp_blob_reader_t; /* a blob open for reading */
typedef struct rp_blob_ops rp_blob_ops_t;
/* A blob a listing found: RP_OK goes on, anything else stops it (and is what the listing
 * returns). The callback may remove the blob it is given. */
typedef rp_err_t (*rp_blob_name_fn)(void *ctx, const char *name, uint64_t size);

struct rp_blobs {
    const rp_blob_ops_t *ops;
    /* A serving replica's (rp_blobs_gate): true while its hold on the database is lost (hold.h),
     * when every call that reaches a blob (not a read of one open) answers RP_ERR_BUSY. NULL: none
     * (a command's handle). */
    const atomic_bool *held_lost;
};
struct rp_blob_writer {
    rp_blobs_t *b;
};
struct rp_blob_reader {
    rp_blobs_t *b;
};

struct rp_blob_ops {
    const char *name; /* "dir", "database" */
    void (*close)(rp_blobs_t *b);
    /* A put of name (invisible until commit). OUT: *w. */
    rp_err_t (*put_begin)(rp_blobs_t *b, const char *name, rp_blob_writer_t **w);
    rp_err_t (*put_write)(rp_blob_writer_t *w, const void *data, size_t len);
    /* Durable, then visible under its name; a name that holds a blob keeps it, and what w wrote
     * is dropped (RP_OK). w is freed either way: on failure nothing of it is visible. */
    rp_err_t (*put_commit)(rp_blob_writer_t *w);
    void (*put_abort)(rp_blob_writer_t *w); /* w is freed; nothing of it stays visible */
    /*
     * Add len bytes at offset at, which must be the blob's size now (a missing blob is empty and
     * made): durable when it returns. RP_ERR_BUSY when the blob is not at bytes long (another
     * request appended first): read its size again.
     */
    rp_err_t (*append)(rp_blobs_t *b, const char *name, uint64_t at, const void *data, size_t len);
    /* RP_ERR_NOT_FOUND when there is none. OUT: *r, *size. */
    rp_err_t (*open)(rp_blobs_t *b, const char *name, rp_blob_reader_t **r, uint64_t *size);
    /* Up to len bytes at off into buf. OUT: *got (len, or less only at the blob's end). */
    rp_err_t (*read)(rp_blob_reader_t *r, uint64_t off, void *buf, size_t len, size_t *got);
    void (*close_reader)(rp_blob_reader_t *r);
    /* Whether name exists: RP_OK and its size, or RP_ERR_NOT_FOUND. */
    rp_err_t (*stat)(rp_blobs_t *b, const char *name, uint64_t *size);
    /* Give blob from the name to, durably; when to holds a blob already, it keeps it and from's
     * blob is dropped (RP_OK either way). RP_ERR_NOT_FOUND when from holds none. */
    rp_err_t (*rename)(rp_blobs_t *b, const char *from, const char *to);
    /* RP_ERR_NOT_FOUND when there was none. */
    rp_err_t (*remove)(rp_blobs_t *b, const char *name);
    /* Drop what puts begun before `before` (Unix seconds) left and never committed. OUT: *n. */
    rp_err_t (*sweep)(rp_blobs_t *b, int64_t before, unsigned *n);
    /* Every committed blob of namespace ns ("images"), to fn, each once (in no promised order);
     * a blob made while it lists may be left out. */
    rp_err_t (*list)(rp_blobs_t *b, const char *ns, rp_blob_name_fn fn, void *ctx);
};

extern const rp_blob_ops_t rp_blob_dir_ops;
extern const rp_blob_ops_t rp_blob_db_ops;

/* The backend a --blobs value names: "dir" or "database"; false for anything else. */
bool rp_blobs_kind_parse(const char *s, rp_blobs_kind_t *kind);
const char *rp_blobs_kind_name(rp_blobs_kind_t kind);

/* A handle on the files under data_dir (made 0700 where missing). */
rp_err_t rp_blobs_open_dir(const char *data_dir, rp_blobs_t **out) RP_MUST_CHECK;
/* A handle on the database of store, which it borrows: store must outlive it, and be used by
 * the same thread. */
rp_err_t rp_blobs_open_db(rp_store_t *store, rp_blobs_t **out) RP_MUST_CHECK;
/* The one a kind names: data_dir for RP_BLOBS_DIR, store for RP_BLOBS_DATABASE. */
rp_err_t rp_blobs_open(rp_blobs_kind_t kind, const char *data_dir, rp_store_t *store,
                       rp_blobs_t **out) RP_MUST_CHECK;
void rp_blobs_close(rp_blobs_t *b);

/* The service's blobs' names, decided here only (the directory backend's layout, as it always
 * was): an upload in progress "uploads/U", an image "images/ID" (ID: the SHA-256 of its bytes),
 * the delta between two images "deltas/FROM-TO.zst". */
void rp_blob_name_upload(const char *upload_id, char out[RP_BLOB_NAME_MAX + 1]);
void rp_blob_name_image(const char *image_id, char out[RP_BLOB_NAME_MAX + 1]);
void rp_blob_name_delta(const char *from, const char *to, char out[RP_BLOB_NAME_MAX + 1]);
/* A tenant's debug file of a build ID (server/device/reports.c), kept in the blob store with
 * --blobs database only: "symbols/TENANT-BUILDID". Not among rp_blob_namespaces: each replica
 * keeps a copy in its data directory, which is what --blobs dir keeps. */
void rp_blob_name_symbols(const char *tenant_id, const char *build_id,
                          char out[RP_BLOB_NAME_MAX + 1]);

/* Whether name has the shape above (the backends refuse any other: RP_ERR_INVALID_ARG). */
bool rp_blob_name_valid(const char *name);

/* The operations, in the callers' words (each checks the name, then calls the backend's). */
/* b serves only while *held_lost is false (the replica's hold stands: hold.h, review r16 M4). */
void rp_blobs_gate(rp_blobs_t *b, const atomic_bool *held_lost);
rp_err_t rp_blob_put_begin(rp_blobs_t *b, const char *name, rp_blob_writer_t **w) RP_MUST_CHECK;
rp_err_t rp_blob_put_write(rp_blob_writer_t *w, const void *data, size_t len) RP_MUST_CHECK;
rp_err_t rp_blob_put_commit(rp_blob_writer_t *w) RP_MUST_CHECK;
void rp_blob_put_abort(rp_blob_writer_t *w);
rp_err_t rp_blob_append(rp_blobs_t *b, const char *name, uint64_t at, const void *data,
                        size_t len) RP_MUST_CHECK;
rp_err_t rp_blob_open(rp_blobs_t *b, const char *name, rp_blob_reader_t **r,
                      uint64_t *size) RP_MUST_CHECK;
rp_err_t rp_blob_read(rp_blob_reader_t *r, uint64_t off, void *buf, size_t len,
                      size_t *got) RP_MUST_CHECK;
void rp_blob_close(rp_blob_reader_t *r);
rp_err_t rp_blob_stat(rp_blobs_t *b, const char *name, uint64_t *size) RP_MUST_CHECK;
rp_err_t rp_blob_rename(rp_blobs_t *b, const char *from, const char *to) RP_MUST_CHECK;
rp_err_t rp_blob_remove(rp_blobs_t *b, const char *name) RP_MUST_CHECK;
rp_err_t rp_blobs_sweep(rp_blobs_t *b, int64_t before, unsigned *n) RP_MUST_CHECK;
rp_err_t rp_blobs_list(rp_blobs_t *b, const char *ns, rp_blob_name_fn fn, void *ctx) RP_MUST_CHECK;

/* The namespaces the service writes ("uploads", "images", "deltas"), NULL-terminated. */
extern const char *const rp_blob_namespaces[];

/*
 * Move every blob of from into to (rampart-server blobs move): each copied with a put (atomic:
 * a kill leaves it whole in to, or not there), then removed from from. A blob to has already is
 * not copied again, only removed from from: so a move killed at any point and run again ends
 * the job, and a move run twice does nothing the second time. OUT: *moved (copied), *had (in
 * both already). The service must not be running on either meanwhile (uploads append).
 */
rp_err_t rp_blobs_move(rp_blobs_t *from, rp_blobs_t *to, unsigned *moved,
                       unsigned *had) RP_MUST_CHECK;
/* How many committed blobs other holds that b does not (rampart-server's check at start, that
 * images kept with another --blobs are not silently unreadable). OUT: *missing, and the first
 * such name in first (may be NULL). */
rp_err_t rp_blobs_missing(rp_blobs_t *other, rp_blobs_t *b, unsigned *missing,
                          char first[RP_BLOB_NAME_MAX + 1]) RP_MUST_CHECK;

/* Read exactly len bytes at off (a blob that ends first: RP_ERR_TRUNCATED). */
rp_err_t rp_blob_read_all(rp_blob_reader_t *r, uint64_t off, void *buf, size_t len) RP_MUST_CHECK;
/* The SHA-256 of a blob's bytes, in hex, read a chunk at a time. */
rp_err_t rp_blob_sha256_hex(rp_blobs_t *b, const char *name, char hex[65]) RP_MUST_CHECK;
/* Put a local file's bytes into blob name (a put: see rp_blob_put_commit), a chunk at a time. */
rp_err_t rp_blob_put_file(rp_blobs_t *b, const char *name, const char *path) RP_MUST_CHECK;
/* Copy a blob into a local file, atomically (a temp file beside path, synced, renamed). */
rp_err_t rp_blob_copy_to_file(rp_blobs_t *b, const char *name, const char *path,
                              int mode) RP_MUST_CHECK;

#endif /* RAMPART_STORE_BLOB_H */
