/*
 * The blob store in the data directory (blob.h, --blobs dir, the default): blob NS/LEAF is the
 * file DATA_DIR/NS/LEAF, the layout the service always had. A put is a temporary file beside it
 * (LEAF.tmpXXXXXX, rp_atomic_begin) that commit syncs and links to the name (never over a blob
 * there: link(2) fails on it, and the temporary is dropped), then syncs the directory: a kill at
 * any point leaves the old blob or the new one, and at worst a temporary that rp_blobs_sweep
 * removes. A rename is a link too, then the old name's unlink (a kill between them leaves both
 * names: the next rename finds its target there and drops the old). An append is a write at the
 * file's end under flock(), synced before it returns.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rampart/file.h"
#include "rampart/log.h"
#include "store/blob.h"

typedef struct dir_blobs {
    rp_blobs_t b;
    char root[PATH_MAX];
} dir_blobs_t;

typedef struct dir_writer {
    rp_blob_writer_t w;
    rp_atomic_file_t f;
} dir_writer_t;

typedef struct dir_reader {
    rp_blob_reader_t r;
    int fd;
} dir_reader_t;

/* The blob's path (its namespace's directory made 0700 when make_dir). */
static rp_err_t blob_path(dir_blobs_t *d, const char *name, bool make_dir, char *out, size_t cap)
{
    const char *slash = strchr(name, '/');
    int n = snprintf(out, cap, "%s/%.*s", d->root, (int)(slash - name), name);

    if (n < 0 || (size_t)n >= cap)
        return RP_ERR_INVALID_ARG;
    if (make_dir && mkdir(out, 0700) != 0 && errno != EEXIST)
        return RP_ERR_IO;
    n = snprintf(out, cap, "%s/%s", d->root, name);
    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

static rp_err_t sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd, n = slash != NULL ? snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path) : -1;
    rp_err_t err;

    if (n <= 0 || (size_t)n >= sizeof(dir))
        return RP_ERR_INVALID_ARG;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return RP_ERR_IO;
    err = fsync(fd) == 0 ? RP_OK : RP_ERR_IO;
    close(fd);
    return err;
}

static void dir_close(rp_blobs_t *b)
{
    free(b);
}

static rp_err_t dir_put_begin(rp_blobs_t *b, const char *name, rp_blob_writer_t **out)
{
    dir_writer_t *w = calloc(1, sizeof(*w));
    char path[PATH_MAX];
    rp_err_t err =
        w != NULL ? blob_path((dir_blobs_t *)b, name, true, path, sizeof(path)) : RP_ERR_NO_MEMORY;

    if (err == RP_OK)
        err = rp_atomic_begin(&w->f, path, 0600, 0);
    if (err != RP_OK) {
        free(w);
        return err;
    }
    w->w.b = b;
    *out = &w->w;
    return RP_OK;
}

static rp_err_t dir_put_write(rp_blob_writer_t *bw, const void *data, size_t len)
{
    return rp_atomic_write(&((dir_writer_t *)bw)->f, data, len);
}

static rp_err_t dir_put_commit(rp_blob_writer_t *bw)
{
    dir_writer_t *w = (dir_writer_t *)bw;
    rp_err_t err = rp_atomic_commit(&w->f, 1); /* (exclusive: a link, never over a blob) */

    if (err != RP_OK)
        rp_atomic_abort(&w->f);
    free(w);
    return err == RP_ERR_EXISTS ? RP_OK : err; /* the name keeps its blob */
}

static void dir_put_abort(rp_blob_writer_t *bw)
{
    dir_writer_t *w = (dir_writer_t *)bw;

    rp_atomic_abort(&w->f);
    free(w);
}

static rp_err_t dir_append(rp_blobs_t *b, const char *name, uint64_t at, const void *data,
                           size_t len)
{
    char path[PATH_MAX];
    struct stat sb;
    rp_err_t err = blob_path((dir_blobs_t *)b, name, true, path, sizeof(path));
    int fd = -1;

    if (err != RP_OK)
        return err;
    /* (only the first append makes the file: a missing blob is empty) */
    fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (at == 0 ? O_CREAT : 0), 0600);
    if (fd < 0)
        return errno == ENOENT ? RP_ERR_BUSY : RP_ERR_IO;
    /* Two requests for one blob (a client's retry racing its original) take turns. */
    if (flock(fd, LOCK_EX) != 0 || fstat(fd, &sb) != 0)
        err = RP_ERR_IO;
    else if ((uint64_t)sb.st_size != at)
        err = RP_ERR_BUSY;
    else if (lseek(fd, (off_t)at, SEEK_SET) < 0 || rp_write_all(fd, data, len) != RP_OK ||
             fdatasync(fd) != 0)
        err = RP_ERR_IO;
    /* A new file's name is durable only with its directory: the first append syncs it. */
    if (err == RP_OK && at == 0)
        err = sync_dir_of(path);
    close(fd);
    return err;
}

static rp_err_t dir_open(rp_blobs_t *b, const char *name, rp_blob_reader_t **out, uint64_t *size)
{
    char path[PATH_MAX];
    struct stat sb;
    dir_reader_t *r;
    int fd;
    rp_err_t err = blob_path((dir_blobs_t *)b, name, false, path, sizeof(path));

    if (err != RP_OK)
        return err;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (r = calloc(1, sizeof(*r))) == NULL) {
        close(fd);
        return RP_ERR_IO;
    }
    r->r.b = b;
    r->fd = fd;
    *size = (uint64_t)sb.st_size;
    *out = &r->r;
    return RP_OK;
}

static rp_err_t dir_read(rp_blob_reader_t *br, uint64_t off, void *buf, size_t len, size_t *got)
{
    dir_reader_t *r = (dir_reader_t *)br;

    while (*got < len) {
        ssize_t n = pread(r->fd, (uint8_t *)buf + *got, len - *got, (off_t)(off + *got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return RP_ERR_IO;
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return RP_OK;
}

static void dir_close_reader(rp_blob_reader_t *br)
{
    dir_reader_t *r = (dir_reader_t *)br;

    close(r->fd);
    free(r);
}

static rp_err_t dir_stat(rp_blobs_t *b, const char *name, uint64_t *size)
{
    char path[PATH_MAX];
    struct stat sb;
    rp_err_t err = blob_path((dir_blobs_t *)b, name, false, path, sizeof(path));

    if (err != RP_OK)
        return err;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    if (!S_ISREG(sb.st_mode))
        return RP_ERR_IO;
    *size = (uint64_t)sb.st_size;
    return RP_OK;
}

static rp_err_t dir_rename(rp_blobs_t *b, const char *from, const char *to)
{
    char a[PATH_MAX], z[PATH_MAX];
    rp_err_t err = blob_path((dir_blobs_t *)b, from, false, a, sizeof(a));
    int fd;

    if (err == RP_OK)
        err = blob_path((dir_blobs_t *)b, to, true, z, sizeof(z));
    if (err != RP_OK)
        return err;
    /* the bytes durable before the name that makes them another blob */
    fd = open(a, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    err = fsync(fd) == 0 ? RP_OK : RP_ERR_IO;
    close(fd);
    /* (link(2) never replaces: a blob at z keeps its name, and a's is dropped) */
    if (err == RP_OK && link(a, z) != 0 && errno != EEXIST)
        err = errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    if (err == RP_OK)
        err = sync_dir_of(z);
    if (err == RP_OK && unlink(a) != 0 && errno != ENOENT)
        err = RP_ERR_IO;
    if (err == RP_OK && strcmp(strrchr(a, '/'), strrchr(z, '/')) != 0)
        err = sync_dir_of(a);
    return err;
}

static rp_err_t dir_remove(rp_blobs_t *b, const char *name)
{
    char path[PATH_MAX];
    rp_err_t err = blob_path((dir_blobs_t *)b, name, false, path, sizeof(path));

    if (err != RP_OK)
        return err;
    if (unlink(path) != 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    return RP_OK;
}

/* A put's temporary: "LEAF.tmp" and rp_atomic_begin's six characters. */
static bool is_temporary(const char *leaf)
{
    const char *t = strstr(leaf, ".tmp");

    return t != NULL && strlen(t) == 4 + 6;
}

static rp_err_t dir_sweep(rp_blobs_t *b, int64_t before, unsigned *n)
{
    dir_blobs_t *d = (dir_blobs_t *)b;

    for (size_t i = 0; rp_blob_namespaces[i] != NULL; i++) {
        char dir[PATH_MAX];
        struct dirent *e;
        struct stat sb;
        DIR *dh;
        int n0 = snprintf(dir, sizeof(dir), "%s/%s", d->root, rp_blob_namespaces[i]);

        if (n0 < 0 || (size_t)n0 >= sizeof(dir) || (dh = opendir(dir)) == NULL)
            continue;
        while ((e = readdir(dh)) != NULL) {
            if (!is_temporary(e->d_name) ||
                fstatat(dirfd(dh), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISREG(sb.st_mode) || sb.st_mtime >= before)
                continue;
            if (unlinkat(dirfd(dh), e->d_name, 0) == 0)
                (*n)++;
        }
        closedir(dh);
    }
    return RP_OK;
}

static rp_err_t dir_list(rp_blobs_t *b, const char *ns, rp_blob_name_fn fn, void *ctx)
{
    dir_blobs_t *d = (dir_blobs_t *)b;
    char dir[PATH_MAX], name[RP_BLOB_NAME_MAX + 1];
    struct dirent *e;
    struct stat sb;
    rp_err_t err = RP_OK;
    DIR *dh;
    int n = snprintf(dir, sizeof(dir), "%s/%s", d->root, ns);

    if (n < 0 || (size_t)n >= sizeof(dir))
        return RP_ERR_INVALID_ARG;
    if ((dh = opendir(dir)) == NULL)
        return errno == ENOENT ? RP_OK : RP_ERR_IO; /* (none made yet) */
    while (err == RP_OK && (errno = 0, e = readdir(dh)) != NULL) {
        n = snprintf(name, sizeof(name), "%s/%s", ns, e->d_name);
        /* (a put's temporary, or a file the service did not write, is no blob) */
        if (n < 0 || (size_t)n >= sizeof(name) || !rp_blob_name_valid(name) ||
            fstatat(dirfd(dh), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        err = fn(ctx, name, (uint64_t)sb.st_size);
    }
    if (err == RP_OK && errno != 0)
        err = RP_ERR_IO;
    closedir(dh);
    return err;
}

const rp_blob_ops_t rp_blob_dir_ops = {
    .name = "dir",
    .close = dir_close,
    .put_begin = dir_put_begin,
    .put_write = dir_put_write,
    .put_commit = dir_put_commit,
    .put_abort = dir_put_abort,
    .append = dir_append,
    .open = dir_open,
    .read = dir_read,
    .close_reader = dir_close_reader,
    .stat = dir_stat,
    .rename = dir_rename,
    .remove = dir_remove,
    .sweep = dir_sweep,
    .list = dir_list,
};

rp_err_t rp_blobs_open_dir(const char *data_dir, rp_blobs_t **out)
{
    dir_blobs_t *d;

    *out = NULL;
    if (data_dir == NULL || strlen(data_dir) >= sizeof(d->root))
        return RP_ERR_INVALID_ARG;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return RP_ERR_NO_MEMORY;
    d->b.ops = &rp_blob_dir_ops;
    snprintf(d->root, sizeof(d->root), "%s", data_dir);
    *out = &d->b;
    return RP_OK;
}
