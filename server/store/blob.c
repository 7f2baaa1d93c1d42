/*
 * The blob store's front (blob.h): which backend a --blobs value names, the one check of a blob's
 * name, the calls that reach a handle's backend, and what is written once over them (reading
 * exactly, hashing, copying out to a file).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "rampart/failpoint.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "store/blob.h"

#define NAMESPACE_MAX 16
#define LEAF_MAX 200

const char *const rp_blob_namespaces[] = {"uploads", "images", "deltas", NULL};

bool rp_blobs_kind_parse(const char *s, rp_blobs_kind_t *kind)
{
    if (s != NULL && strcmp(s, "dir") == 0)
        *kind = RP_BLOBS_DIR;
    else if (s != NULL && strcmp(s, "database") == 0)
        *kind = RP_BLOBS_DATABASE;
    else
        return false;
    return true;
}

const char *rp_blobs_kind_name(rp_blobs_kind_t kind)
{
    return kind == RP_BLOBS_DATABASE ? "database" : "dir";
}

rp_err_t rp_blobs_open(rp_blobs_kind_t kind, const char *data_dir, rp_store_t *store,
                       rp_blobs_t **out)
{
    *out = NULL;
    if (kind == RP_BLOBS_DATABASE)
        return store != NULL ? rp_blobs_open_db(store, out) : RP_ERR_INVALID_ARG;
    return data_dir != NULL ? rp_blobs_open_dir(data_dir, out) : RP_ERR_INVALID_ARG;
}

void rp_blobs_close(rp_blobs_t *b)
{
    if (b != NULL)
        b->ops->close(b);
}

/* "NAMESPACE/LEAF" (blob.h). The leaf never holds ".tmp", which the directory backend's files
 * being written carry (their leftovers are found by it). */
bool rp_blob_name_valid(const char *name)
{
    const char *slash, *leaf;
    size_t ns, n;

    if (name == NULL || (slash = strchr(name, '/')) == NULL)
        return false;
    ns = (size_t)(slash - name);
    leaf = slash + 1;
    n = strnlen(leaf, LEAF_MAX + 1);
    if (ns == 0 || ns > NAMESPACE_MAX || n == 0 || n > LEAF_MAX || leaf[0] == '.' ||
        strstr(leaf, ".tmp") != NULL)
        return false;
    for (size_t i = 0; i < ns; i++)
        if (name[i] < 'a' || name[i] > 'z')
            return false;
    for (size_t i = 0; i < n; i++) {
        char c = leaf[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

void rp_blob_name_upload(const char *upload_id, char out[RP_BLOB_NAME_MAX + 1])
{
    snprintf(out, RP_BLOB_NAME_MAX + 1, "uploads/%s", upload_id);
}

void rp_blob_name_image(const char *image_id, char out[RP_BLOB_NAME_MAX + 1])
{
    snprintf(out, RP_BLOB_NAME_MAX + 1, "images/%s", image_id);
}

void rp_blob_name_delta(const char *from, const char *to, char out[RP_BLOB_NAME_MAX + 1])
{
    snprintf(out, RP_BLOB_NAME_MAX + 1, "deltas/%s-%s.zst", from, to);
}

void rp_blob_name_symbols(const char *tenant_id, const char *build_id,
                          char out[RP_BLOB_NAME_MAX + 1])
{
    snprintf(out, RP_BLOB_NAME_MAX + 1, "symbols/%s-%s", tenant_id, build_id);
}

void rp_blobs_gate(rp_blobs_t *b, const atomic_bool *held_lost)
{
    b->held_lost = held_lost;
}

/* Whether b may reach its blobs: name valid (RP_ERR_INVALID_ARG), and its replica's hold standing
 * (RP_ERR_BUSY: a 503 with Retry-After; blob.h). */
static rp_err_t blob_may(const rp_blobs_t *b, const char *name)
{
    if (!rp_blob_name_valid(name))
        return RP_ERR_INVALID_ARG;
    if (b->held_lost != NULL && atomic_load(b->held_lost))
        return RP_ERR_BUSY;
    return RP_OK;
}

rp_err_t rp_blob_put_begin(rp_blobs_t *b, const char *name, rp_blob_writer_t **w)
{
    rp_err_t err = blob_may(b, name);

    *w = NULL;
    if (err != RP_OK)
        return err;
    return b->ops->put_begin(b, name, w);
}

rp_err_t rp_blob_put_write(rp_blob_writer_t *w, const void *data, size_t len)
{
    return len == 0 ? RP_OK : w->b->ops->put_write(w, data, len);
}

rp_err_t rp_blob_put_commit(rp_blob_writer_t *w)
{
    return w->b->ops->put_commit(w);
}

void rp_blob_put_abort(rp_blob_writer_t *w)
{
    if (w != NULL)
        w->b->ops->put_abort(w);
}

rp_err_t rp_blob_append(rp_blobs_t *b, const char *name, uint64_t at, const void *data, size_t len)
{
    rp_err_t err = blob_may(b, name);

    return err != RP_OK ? err : b->ops->append(b, name, at, data, len);
}

rp_err_t rp_blob_open(rp_blobs_t *b, const char *name, rp_blob_reader_t **r, uint64_t *size)
{
    rp_err_t err = blob_may(b, name);

    *r = NULL;
    return err != RP_OK ? err : b->ops->open(b, name, r, size);
}

rp_err_t rp_blob_read(rp_blob_reader_t *r, uint64_t off, void *buf, size_t len, size_t *got)
{
    *got = 0;
    return len == 0 ? RP_OK : r->b->ops->read(r, off, buf, len, got);
}

void rp_blob_close(rp_blob_reader_t *r)
{
    if (r != NULL)
        r->b->ops->close_reader(r);
}

rp_err_t rp_blob_stat(rp_blobs_t *b, const char *name, uint64_t *size)
{
    rp_err_t err = blob_may(b, name);

    return err != RP_OK ? err : b->ops->stat(b, name, size);
}

rp_err_t rp_blob_rename(rp_blobs_t *b, const char *from, const char *to)
{
    rp_err_t err = blob_may(b, from);

    if (err == RP_OK && !rp_blob_name_valid(to))
        err = RP_ERR_INVALID_ARG;
    return err != RP_OK ? err : b->ops->rename(b, from, to);
}

rp_err_t rp_blob_remove(rp_blobs_t *b, const char *name)
{
    rp_err_t err = blob_may(b, name);

    return err != RP_OK ? err : b->ops->remove(b, name);
}

rp_err_t rp_blobs_sweep(rp_blobs_t *b, int64_t before, unsigned *n)
{
    *n = 0;
    if (b->held_lost != NULL && atomic_load(b->held_lost))
        return RP_ERR_BUSY;
    return b->ops->sweep(b, before, n);
}

rp_err_t rp_blobs_list(rp_blobs_t *b, const char *ns, rp_blob_name_fn fn, void *ctx)
{
    return b->ops->list(b, ns, fn, ctx);
}

rp_err_t rp_blob_read_all(rp_blob_reader_t *r, uint64_t off, void *buf, size_t len)
{
    size_t got;
    rp_err_t err = rp_blob_read(r, off, buf, len, &got);

    if (err == RP_OK && got != len)
        err = RP_ERR_TRUNCATED;
    return err;
}

/* Each chunk of a blob, in order, to fn (which may fail the walk). */
static rp_err_t each_chunk(rp_blobs_t *b, const char *name,
                           rp_err_t (*fn)(void *ctx, const uint8_t *chunk, size_t len), void *ctx)
{
    uint8_t *buf = malloc(RP_BLOB_CHUNK);
    rp_blob_reader_t *r = NULL;
    uint64_t size = 0, off = 0;
    rp_err_t err = buf != NULL ? rp_blob_open(b, name, &r, &size) : RP_ERR_NO_MEMORY;

    while (err == RP_OK && off < size) {
        size_t want = size - off < RP_BLOB_CHUNK ? (size_t)(size - off) : RP_BLOB_CHUNK;
        err = rp_blob_read_all(r, off, buf, want);
        if (err == RP_OK)
            err = fn(ctx, buf, want);
        off += want;
    }
    rp_blob_close(r);
    free(buf);
    return err;
}

static rp_err_t hash_chunk(void *ctx, const uint8_t *chunk, size_t len)
{
    return EVP_DigestUpdate(ctx, chunk, len) == 1 ? RP_OK : RP_ERR_CRYPTO;
}

rp_err_t rp_blob_sha256_hex(rp_blobs_t *b, const char *name, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t digest[32];
    unsigned dlen = 0;
    rp_err_t err = md == NULL                                       ? RP_ERR_NO_MEMORY
                   : EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ? RP_ERR_CRYPTO
                                                                    : RP_OK;

    if (err == RP_OK)
        err = each_chunk(b, name, hash_chunk, md);
    if (err == RP_OK && (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != sizeof(digest)))
        err = RP_ERR_CRYPTO;
    if (err == RP_OK)
        err = rp_hex_encode(digest, sizeof(digest), hex, 65);
    EVP_MD_CTX_free(md);
    return err;
}

static rp_err_t write_chunk(void *ctx, const uint8_t *chunk, size_t len)
{
    return rp_atomic_write(ctx, chunk, len);
}

rp_err_t rp_blob_put_file(rp_blobs_t *b, const char *name, const char *path)
{
    uint8_t *buf = malloc(RP_BLOB_CHUNK);
    rp_blob_writer_t *w = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    rp_err_t err = buf == NULL ? RP_ERR_NO_MEMORY : fd < 0 ? RP_ERR_IO : RP_OK;

    if (err == RP_OK)
        err = rp_blob_put_begin(b, name, &w);
    while (err == RP_OK) {
        ssize_t n = read(fd, buf, RP_BLOB_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n == 0 ? rp_blob_put_commit(w) : RP_ERR_IO; /* (commit frees w) */
            w = n == 0 ? NULL : w;
            break;
        }
        err = rp_blob_put_write(w, buf, (size_t)n);
    }
    rp_blob_put_abort(w); /* (NULL: none, or committed) */
    if (fd >= 0)
        close(fd);
    free(buf);
    return err;
}

rp_err_t rp_blob_copy_to_file(rp_blobs_t *b, const char *name, const char *path, int mode)
{
    rp_atomic_file_t f = {.fd = -1};
    uint64_t size;
    rp_err_t err = rp_blob_stat(b, name, &size); /* (none: no file made) */

    if (err == RP_OK)
        err = rp_atomic_begin(&f, path, (mode_t)mode, 0);
    if (err == RP_OK)
        err = each_chunk(b, name, write_chunk, &f);
    if (err == RP_OK)
        err = rp_atomic_commit(&f, 0);
    if (err != RP_OK)
        rp_atomic_abort(&f); /* safe on one never begun, or whose commit failed */
    return err;
}

static rp_err_t put_chunk(void *ctx, const uint8_t *chunk, size_t len)
{
    return rp_blob_put_write(ctx, chunk, len);
}

struct move {
    rp_blobs_t *from, *to;
    unsigned moved, had;
};

/* One blob of a move: copied unless to has it (a move killed after the copy, before the
 * remove), then removed from from. */
static rp_err_t move_one(void *ctx, const char *name, uint64_t size)
{
    struct move *mv = ctx;
    rp_blob_writer_t *w = NULL;
    uint64_t there = 0;
    rp_err_t err = rp_blob_stat(mv->to, name, &there);

    if (err == RP_OK && there != size) {
        rp_log_error("%s: in both stores, with %llu and %llu bytes: left where it is", name,
                     (unsigned long long)size, (unsigned long long)there);
        return RP_ERR_EXISTS;
    }
    if (err == RP_OK) {
        mv->had++;
    } else if (err == RP_ERR_NOT_FOUND) {
        err = rp_blob_put_begin(mv->to, name, &w);
        if (err == RP_OK)
            err = each_chunk(mv->from, name, put_chunk, w);
        if (err == RP_OK)
            err = rp_blob_put_commit(w); /* (frees w) */
        else
            rp_blob_put_abort(w);
        if (err == RP_OK)
            mv->moved++;
    }
    rp_failpoint("blob move: copied, not yet removed");
    if (err == RP_OK && (err = rp_blob_remove(mv->from, name)) == RP_ERR_NOT_FOUND)
        err = RP_OK;
    if (err != RP_OK)
        rp_log_error("%s: cannot move it: %s", name, rp_strerror(err));
    return err;
}

rp_err_t rp_blobs_move(rp_blobs_t *from, rp_blobs_t *to, unsigned *moved, unsigned *had)
{
    struct move mv = {from, to, 0, 0};
    rp_err_t err = RP_OK;

    for (size_t i = 0; err == RP_OK && rp_blob_namespaces[i] != NULL; i++)
        err = rp_blobs_list(from, rp_blob_namespaces[i], move_one, &mv);
    *moved = mv.moved;
    *had = mv.had;
    return err;
}

struct missing {
    rp_blobs_t *b;
    unsigned n;
    char *first;
};

static rp_err_t count_missing(void *ctx, const char *name, uint64_t size)
{
    struct missing *m = ctx;
    uint64_t there;
    rp_err_t err = rp_blob_stat(m->b, name, &there);

    (void)size;
    if (err != RP_ERR_NOT_FOUND)
        return err;
    if (m->n++ == 0 && m->first != NULL)
        snprintf(m->first, RP_BLOB_NAME_MAX + 1, "%s", name);
    return RP_OK;
}

rp_err_t rp_blobs_missing(rp_blobs_t *other, rp_blobs_t *b, unsigned *missing,
                          char first[RP_BLOB_NAME_MAX + 1])
{
    struct missing m = {b, 0, first};
    rp_err_t err = RP_OK;

    if (first != NULL)
        first[0] = '\0';
    for (size_t i = 0; err == RP_OK && rp_blob_namespaces[i] != NULL; i++)
        err = rp_blobs_list(other, rp_blob_namespaces[i], count_missing, &m);
    *missing = m.n;
    return err;
}
