/*
 * Crash-safe file writing, bounded file reading, and pread()-backed image sources.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rampart/failpoint.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"

int rp_lock_in(const char *dir, const char *name)
{
    char path[4096 + 64];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rp_log_error("%s: %s", path, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            rp_log_error("cannot lock %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

bool rp_same_file(const char *a, const char *b)
{
    struct stat sa, sb;

    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

rp_err_t rp_file_check_private(const char *path, bool secret)
{
    struct stat sb;
    bool dir;
    mode_t perm;

    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return RP_ERR_NOT_FOUND;
        rp_log_error("%s: %s", path, strerror(errno));
        return RP_ERR_IO;
    }
    dir = S_ISDIR(sb.st_mode);
    perm = sb.st_mode & 07777;
    if (sb.st_uid != geteuid()) {
        rp_log_error("%s is owned by uid %u, not by this user (uid %u): its owner could change "
                     "it; refusing to use it. Fix: chown %u %s, or run as its owner",
                     path, (unsigned)sb.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
        return RP_ERR_INVALID_ARG;
    }
    if (perm & (S_IWGRP | S_IWOTH)) {
        rp_log_error("%s is mode %04o: group or others can write %s; refusing to use it. "
                     "Fix: chmod %s %s",
                     path, (unsigned)perm, dir ? "to it and replace what is kept in it" : "it",
                     dir ? "700" : "600", path);
        return RP_ERR_INVALID_ARG;
    }
    if (secret && (perm & (S_IRGRP | S_IROTH | S_IXGRP | S_IXOTH))) {
        rp_log_error("%s is mode %04o: group or others can read it, and it is a secret; refusing "
                     "to use it. Fix: chmod %s %s (and if anyone else may have read it, treat it "
                     "as leaked)",
                     path, (unsigned)perm, dir ? "700" : "600", path);
        return RP_ERR_INVALID_ARG;
    }
    return RP_OK;
}

rp_err_t rp_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return RP_ERR_IO; /* 0 would loop forever: a full device that says nothing */
        p += n;
        len -= (size_t)n;
    }
    return RP_OK;
}

rp_err_t rp_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return RP_ERR_IO;
        }
        if (n == 0)
            return RP_ERR_TRUNCATED;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return RP_OK;
}

/* fsync the directory holding path, so that a rename or link in it is durable. */
static rp_err_t sync_parent(const char *path)
{
    char copy[4096];
    int fd, rc;

    if (strlen(path) >= sizeof(copy))
        return RP_ERR_INVALID_ARG;
    strcpy(copy, path);
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return RP_ERR_IO;
    rc = fsync(fd);
    close(fd);
    return rc == 0 ? RP_OK : RP_ERR_IO;
}

rp_err_t rp_rename_durable(const char *from, const char *to)
{
    if (rename(from, to) != 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    return sync_parent(to);
}

/* A temporary's name: its file's, RP_ATOMIC_TMP_MARK, then mkostemp's six characters. */
#define TMP_SUFFIX RP_ATOMIC_TMP_MARK
#define TMP_RANDOM 6

bool rp_atomic_is_temporary(const char *name, const char *of)
{
    size_t n = strlen(of), s = strlen(TMP_SUFFIX);

    return strncmp(name, of, n) == 0 && strncmp(name + n, TMP_SUFFIX, s) == 0 &&
           strlen(name + n + s) == TMP_RANDOM &&
           strspn(name + n + s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") ==
               TMP_RANDOM;
}

rp_err_t rp_dir_sweep(int dir, bool (*doomed)(const char *name, void *arg), void *arg, int *removed)
{
    int fd = dup(dir), looked = 0, gone = 0;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    rp_err_t err = RP_OK;

    if (removed != NULL)
        *removed = 0;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return RP_ERR_IO;
    }
    rewinddir(d); /* the dup shares the offset: from the start */
    while ((e = readdir(d)) != NULL && looked++ < RP_SWEEP_MAX) {
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            !doomed(e->d_name, arg) || fstatat(dir, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            S_ISDIR(sb.st_mode))
            continue;
        if (unlinkat(dir, e->d_name, 0) == 0) /* a link itself, never what it names */
            gone++;
        else if (errno != ENOENT)
            err = RP_ERR_IO;
    }
    closedir(d);
    if (gone > 0 && fsync(dir) != 0)
        err = RP_ERR_IO;
    if (removed != NULL)
        *removed = gone;
    return err;
}

static bool temporary_of(const char *name, void *of)
{
    return rp_atomic_is_temporary(name, of);
}

rp_err_t rp_atomic_sweep(int dir, const char *of, int *removed)
{
    return rp_dir_sweep(dir, temporary_of, (void *)of, removed);
}

rp_err_t rp_atomic_begin(rp_atomic_file_t *f, const char *path, mode_t mode, int exclusive)
{
    int n;

    f->fd = -1;
    f->tmp[0] = '\0';
    if (path == NULL || strlen(path) >= sizeof(f->path))
        return RP_ERR_INVALID_ARG;
    strcpy(f->path, path);
    if (exclusive && access(path, F_OK) == 0)
        return RP_ERR_EXISTS;
    n = snprintf(f->tmp, sizeof(f->tmp), "%s" RP_ATOMIC_TMP_SUFFIX, path);
    if (n < 0 || (size_t)n >= sizeof(f->tmp))
        return RP_ERR_INVALID_ARG;
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0) {
        f->tmp[0] = '\0';
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    }
    if (fchmod(f->fd, mode) != 0) {
        rp_atomic_abort(f);
        return RP_ERR_IO;
    }
    return RP_OK;
}

rp_err_t rp_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                              int exclusive)
{
    rp_atomic_file_t f;
    rp_err_t err = rp_atomic_begin(&f, path, mode, exclusive);

    if (err != RP_OK)
        return err;
    err = rp_atomic_write(&f, data, len);
    if (err == RP_OK)
        return rp_atomic_commit(&f, exclusive);
    rp_atomic_abort(&f);
    return err;
}

rp_err_t rp_atomic_write(rp_atomic_file_t *f, const void *buf, size_t len)
{
    if (f->fd < 0)
        return RP_ERR_INVALID_ARG;
    rp_failpoint("atomic write");
    return rp_write_all(f->fd, buf, len);
}

rp_err_t rp_atomic_commit(rp_atomic_file_t *f, int exclusive)
{
    int rc;

    if (f->fd < 0)
        return RP_ERR_INVALID_ARG;
    rp_failpoint("atomic fsync");
    rc = fsync(f->fd);
    if (close(f->fd) != 0)
        rc = -1;
    f->fd = -1;
    if (rc != 0) {
        rp_atomic_abort(f);
        return RP_ERR_IO;
    }
    if (exclusive) {
        /* link() fails if path appeared meanwhile: exclusive to the end. */
        if (link(f->tmp, f->path) != 0) {
            rp_err_t err = errno == EEXIST ? RP_ERR_EXISTS : RP_ERR_IO;
            rp_atomic_abort(f);
            return err;
        }
        if (unlink(f->tmp) != 0) {
            /* Two names for one file, and the temporary may hold a secret: say so. */
            f->tmp[0] = '\0';
            return RP_ERR_IO;
        }
    } else if (rp_failpoint("atomic rename"), rename(f->tmp, f->path) != 0) {
        rp_atomic_abort(f);
        return RP_ERR_IO;
    }
    f->tmp[0] = '\0';
    rp_failpoint("atomic directory fsync");
    return sync_parent(f->path);
}

void rp_atomic_abort(rp_atomic_file_t *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->tmp[0] != '\0') {
        unlink(f->tmp);
        f->tmp[0] = '\0';
    }
}

rp_err_t rp_read_fd(int fd, size_t max, uint8_t **data, size_t *len)
{
    struct stat st;
    uint8_t *buf = NULL, *grown;
    size_t used = 0, cap;
    rp_err_t err = RP_OK;

    *data = NULL;
    *len = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return RP_ERR_IO;
    if ((uint64_t)st.st_size > max)
        return RP_ERR_TOO_LARGE;
    /* The size is a hint (procfs says 0; a file may grow or shrink as it is read): read until the
     * end, never past max. */
    cap = (size_t)st.st_size + 2; /* room for one byte more (growth) and the NUL */
    buf = malloc(cap);
    if (buf == NULL)
        return RP_ERR_NO_MEMORY;
    for (;;) {
        ssize_t n;
        if (used + 1 >= cap) {
            cap = cap < 256 ? 256 : cap * 2;
            if (cap > max + 2)
                cap = max + 2;
            grown = realloc(buf, cap);
            if (grown == NULL) {
                err = RP_ERR_NO_MEMORY;
                break;
            }
            buf = grown;
        }
        n = read(fd, buf + used, cap - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = RP_ERR_IO;
            break;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max) {
            err = RP_ERR_TOO_LARGE;
            break;
        }
    }
    if (err != RP_OK) {
        memset(buf, 0, used); /* what was read may be a key */
        free(buf);
        return err;
    }
    buf[used] = '\0';
    *data = buf;
    *len = used;
    return RP_OK;
}

rp_err_t rp_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
    rp_err_t err;
    int fd;

    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not hang us */
    if (fd < 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    err = rp_read_fd(fd, max, data, len);
    close(fd);
    return err;
}

static int file_image_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    const rp_file_image_t *img = ctx;

    return rp_pread_all(img->fd, buf, len, off) == RP_OK ? 0 : -1;
}

rp_err_t rp_file_image_open(rp_file_image_t *img, const char *path)
{
    struct stat st;

    memset(img, 0, sizeof(*img));
    img->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not hang us */
    if (img->fd < 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    if (fstat(img->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rp_file_image_close(img);
        return RP_ERR_IO;
    }
    img->io.read = file_image_read;
    img->io.ctx = img;
    img->io.size = (uint64_t)st.st_size;
    return RP_OK;
}

void rp_file_image_close(rp_file_image_t *img)
{
    if (img->fd >= 0)
        close(img->fd);
    img->fd = -1;
}

rp_err_t rp_fd_sha256_hex(int fd, char hex[2 * RP_SHA256_LEN + 1])
{
    uint8_t *buf = malloc(RP_FILE_IMAGE_SCRATCH), digest[RP_SHA256_LEN];
    rp_sha256_t h;
    ssize_t n = 0;
    off_t off = 0;
    rp_err_t err = buf != NULL ? rp_sha256_init(&h) : RP_ERR_NO_MEMORY;

    while (err == RP_OK && (n = pread(fd, buf, RP_FILE_IMAGE_SCRATCH, off)) > 0) {
        err = rp_sha256_update(&h, buf, (size_t)n);
        off += n;
    }
    if (err == RP_OK && n < 0)
        err = RP_ERR_IO;
    if (err == RP_OK)
        err = rp_sha256_final(&h, digest);
    if (err == RP_OK)
        err = rp_hex_encode(digest, sizeof(digest), hex, 2 * RP_SHA256_LEN + 1);
    free(buf);
    return err;
}
