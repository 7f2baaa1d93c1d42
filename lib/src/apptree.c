/*
 * App trees as image payloads (apptree.h): packing a directory into a reproducible ustar archive,
 * telling a tree from a legacy single-file payload, reading a tree's manifest, and extracting a
 * tree with care (never through a link, never replacing anything, bounded in entries and bytes).
 * libarchive reads and writes the archive; the rules of what an entry may be live here, once.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rampart/apptree.h"
#include "rampart/file.h"

#define IO_CHUNK (64 * 1024)

__attribute__((format(printf, 3, 4))) static rp_err_t refuse(char *why, size_t cap, const char *fmt,
                                                             ...)
{
    va_list ap;

    if (why != NULL && cap > 0) {
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return RP_ERR_MALFORMED;
}

/* ---- the rules for an entry, shared by pack and extract ---- */

/* A name inside the tree: a clean relative path of printable ASCII, not too long. */
static bool name_ok(const char *p)
{
    size_t len = strlen(p);

    if (len > RP_APPTREE_PATH_MAX || !rp_manifest_path_clean(p, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] > 0x7e)
            return false;
    return true;
}

/*
 * A link at path may point at target: relative, its ".." components first and no more of them
 * than path has directories above it, the rest a clean path. Each link resolving inside the tree
 * from a real directory, a chain of them does too: none can lead out.
 */
static bool link_ok(const char *path, const char *target)
{
    size_t depth = 0, ups = 0, len;

    if (target == NULL)
        return false;
    len = strlen(target);
    if (len == 0 || len > RP_APPTREE_LINK_MAX)
        return false;
    for (const char *p = path; *p != '\0'; p++)
        depth += *p == '/';
    while (strncmp(target, "..", 2) == 0 && (target[2] == '/' || target[2] == '\0')) {
        ups++;
        target += target[2] == '/' ? 3 : 2; /* past "../", or onto the NUL after ".." */
    }
    if (ups > depth)
        return false;
    if (*target == '\0')
        return ups > 0;
    for (const char *p = target; *p != '\0'; p++)
        if ((unsigned char)*p > 0x7e)
            return false;
    return rp_manifest_path_clean(target, strlen(target));
}

/* The EntryPoint's rule: a regular executable file of the tree (found: whether it is in it). */
static rp_err_t entry_point_ok(const char *entry, bool found, mode_t type, bool exec, char *why,
                               size_t cap)
{
    if (!found || type != S_IFREG || !exec)
        return refuse(why, cap, "EntryPoint %s: %s", entry,
                      !found            ? "not in the tree"
                      : type != S_IFREG ? "not a regular file"
                                        : "not executable");
    return RP_OK;
}

static const char *type_words(mode_t type)
{
    switch (type) {
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    default: return "not a file, directory or link";
    }
}

/*
 * Open the directory that holds path's last component, from root, one component at a time and
 * never following a link. OUT: *base, the last component. Returns the directory's fd or -1 with
 * why set.
 */
static int open_parent(int root, const char *path, const char **base, char *why, size_t cap)
{
    char comp[RP_APPTREE_PATH_MAX + 1];
    const char *p = path, *slash;
    int dfd = dup(root);

    while (dfd >= 0 && (slash = strchr(p, '/')) != NULL) {
        size_t n = (size_t)(slash - p);
        int next;

        memcpy(comp, p, n);
        comp[n] = '\0';
        next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            int e = errno;
            if (e == ENOENT)
                refuse(why, cap, "%s: its directory %.*s is not in the archive before it", path,
                       (int)(slash - path), path);
            else if (e == ELOOP || e == ENOTDIR)
                refuse(why, cap,
                       "%s: %.*s is a link or not a directory: nothing is written "
                       "through it",
                       path, (int)(slash - path), path);
            else
                refuse(why, cap, "%s: %s", path, strerror(e));
        }
        close(dfd);
        dfd = next;
        p = slash + 1;
    }
    if (dfd < 0 && errno == EMFILE)
        refuse(why, cap, "%s: out of file descriptors", path);
    *base = p;
    return dfd;
}

/* ---- reading a payload region through libarchive ---- */

struct region {
    int fd;
    const rp_image_io_t *io; /* when set, read through it instead of fd */
    uint64_t off, len, pos;
    bool io_error;
    uint8_t buf[IO_CHUNK];
};

static la_ssize_t region_read(struct archive *a, void *client, const void **buf)
{
    struct region *r = client;
    size_t n = r->len - r->pos < IO_CHUNK ? (size_t)(r->len - r->pos) : IO_CHUNK;
    ssize_t got;

    *buf = r->buf;
    if (n == 0)
        return 0;
    if (r->io != NULL)
        got = rp_image_io_read(r->io, r->off + r->pos, r->buf, n) == RP_OK ? (ssize_t)n : -1;
    else
        do
            got = pread(r->fd, r->buf, n, (off_t)(r->off + r->pos));
        while (got < 0 && errno == EINTR);
    if (got <= 0) {
        r->io_error = true;
        archive_set_error(a, EIO, "cannot read the payload");
        return -1;
    }
    r->pos += (uint64_t)got;
    return got;
}

static la_int64_t region_skip(struct archive *a, void *client, la_int64_t request)
{
    struct region *r = client;
    uint64_t n = request < 0 ? 0 : (uint64_t)request;

    (void)a;
    if (n > r->len - r->pos)
        n = r->len - r->pos;
    r->pos += n;
    return (la_int64_t)n;
}

/* A reader of the tar formats only (no compression), over fd[off, off+len), or io's when io is
 * set. */
static struct archive *region_open(struct region *r, int fd, const rp_image_io_t *io, uint64_t off,
                                   uint64_t len)
{
    struct archive *a = archive_read_new();

    memset(r, 0, sizeof(*r) - sizeof(r->buf));
    r->fd = fd;
    r->io = io;
    r->off = off;
    r->len = len;
    if (a == NULL)
        return NULL;
    if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_open2(a, r, NULL, region_read, region_skip, NULL) != ARCHIVE_OK) {
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/*
 * The one rule for what a payload is: an app tree when libarchive's tar reader recognises it (its
 * bid, made when the reader opens), whatever its entries; else a legacy single file. A tar that
 * is not a valid tree is so a tree that the walk refuses, with its reason, everywhere (sign, app
 * check, upload, the device's extractor): never a single file that no device could run.
 */
static rp_err_t kind_of(int fd, const rp_image_io_t *io, uint64_t off, uint64_t len,
                        rp_apptree_kind_t *kind)
{
    struct region *r = malloc(sizeof(*r));
    struct archive *a;

    if (kind == NULL || r == NULL) {
        free(r);
        return kind == NULL ? RP_ERR_INVALID_ARG : RP_ERR_NO_MEMORY;
    }
    a = region_open(r, fd, io, off, len);
    *kind = a != NULL ? RP_APPTREE_TREE : RP_APPTREE_LEGACY;
    if (a != NULL)
        archive_read_free(a);
    if (r->io_error) {
        free(r);
        return RP_ERR_IO;
    }
    free(r);
    return RP_OK;
}

/*
 * An entry's name inside the tree, the one normalisation of both sides: one leading "./" (what
 * `tar cf F -C DIR .` writes) and a directory's trailing "/" are dropped. The tree's root itself
 * ("./" or ".") gives "": only the first entry may be it (first_manifest skips it); anywhere else
 * name_ok refuses it. OUT: name. RP_OK, or a refusal when the name is missing or too long.
 */
static rp_err_t entry_name(struct archive_entry *e, char name[RP_APPTREE_PATH_MAX + 2], char *why,
                           size_t cap)
{
    const char *raw = archive_entry_pathname(e);
    size_t len;

    if (raw == NULL)
        return refuse(why, cap, "an entry has no name");
    if (strncmp(raw, "./", 2) == 0)
        raw += 2;
    else if (strcmp(raw, ".") == 0)
        raw += 1;
    len = strlen(raw);
    if (len > RP_APPTREE_PATH_MAX + 1)
        return refuse(why, cap, "%.60s...: a name over %d bytes", raw, RP_APPTREE_PATH_MAX);
    memcpy(name, raw, len + 1);
    if (archive_entry_filetype(e) == AE_IFDIR && len > 1 && name[len - 1] == '/')
        name[len - 1] = '\0'; /* tar writes a directory as "dir/" */
    return RP_OK;
}

/* The current entry's data, at most max bytes, all of it. OUT: buf (malloc'd, NUL-ended). */
static rp_err_t read_entry_data(struct archive *a, struct archive_entry *e, size_t max, char **buf,
                                size_t *len, char *why, size_t cap)
{
    la_int64_t size = archive_entry_size(e);
    la_ssize_t got;

    *buf = NULL;
    if (!archive_entry_size_is_set(e) || size < 0 || (uint64_t)size > max)
        return refuse(why, cap, "%s: %lld bytes, over the limit of %zu", RP_MANIFEST_FILE,
                      (long long)size, max);
    *buf = malloc((size_t)size + 1);
    if (*buf == NULL)
        return RP_ERR_NO_MEMORY;
    *len = 0;
    while (*len < (size_t)size &&
           (got = archive_read_data(a, *buf + *len, (size_t)size - *len)) > 0)
        *len += (size_t)got;
    if (*len != (size_t)size) {
        free(*buf);
        *buf = NULL;
        return refuse(why, cap, "%s: the archive ends inside it (%s)", RP_MANIFEST_FILE,
                      archive_error_string(a) != NULL ? archive_error_string(a) : "truncated");
    }
    (*buf)[*len] = '\0';
    return RP_OK;
}

/* The first entry must be the manifest, a regular file: read and parse it. OUT: *text (may be
 * NULL: not kept), its bytes, malloc'd. */
static rp_err_t first_manifest(struct archive *a, rp_manifest_t *m, char **text, size_t *tlen,
                               char *why, size_t cap)
{
    struct archive_entry *e;
    char name[RP_APPTREE_PATH_MAX + 2];
    char *buf;
    size_t len = 0;
    int st = archive_read_next_header(a, &e);
    rp_err_t err;

    /* The tree's root ("./", as `tar cf F -C DIR .` writes it first): the extractor makes it. */
    if (st == ARCHIVE_OK && entry_name(e, name, NULL, 0) == RP_OK && name[0] == '\0' &&
        archive_entry_filetype(e) == AE_IFDIR && archive_entry_hardlink(e) == NULL)
        st = archive_read_next_header(a, &e);
    if (st != ARCHIVE_OK)
        return refuse(why, cap, "not an app tree: %s",
                      st == ARCHIVE_EOF                 ? "the archive is empty"
                      : archive_error_string(a) != NULL ? archive_error_string(a)
                                                        : "not a tar archive");
    err = entry_name(e, name, why, cap);
    if (err != RP_OK)
        return err;
    if (strcmp(name, RP_MANIFEST_FILE) != 0 || archive_entry_filetype(e) != AE_IFREG ||
        archive_entry_hardlink(e) != NULL)
        return refuse(why, cap, "not an app tree: its first entry is %s, not the file %s",
                      name[0] != '\0' ? name : "the root", RP_MANIFEST_FILE);
    err = read_entry_data(a, e, RP_MANIFEST_MAX_BYTES, &buf, &len, why, cap);
    if (err != RP_OK)
        return err;
    err = rp_manifest_parse(buf, len, m, why, cap);
    if (err == RP_OK && text != NULL) {
        *text = buf;
        *tlen = len;
    } else {
        free(buf);
    }
    return err;
}

rp_err_t rp_apptree_kind(int fd, uint64_t off, uint64_t len, rp_apptree_kind_t *kind)
{
    return kind_of(fd, NULL, off, len, kind);
}

rp_err_t rp_apptree_kind_io(const rp_image_io_t *io, uint64_t off, uint64_t len,
                            rp_apptree_kind_t *kind)
{
    return kind_of(-1, io, off, len, kind);
}

static rp_err_t walk(struct archive *a, const rp_manifest_t *m, const char *mtext, size_t mlen,
                     int root, uint64_t max_bytes, size_t max_entries, char *why, size_t cap);

/* The manifest of the tree at fd[off, off+len) (or io's), and with whole every entry after it by
 * the extractor's rules and limits (walk, writing nothing). */
static rp_err_t read_tree(int fd, const rp_image_io_t *io, uint64_t off, uint64_t len, bool whole,
                          rp_manifest_t *m, char *why, size_t cap)
{
    struct region *r = malloc(sizeof(*r));
    struct archive *a;
    char *mtext = NULL;
    size_t mlen = 0;
    rp_err_t err;

    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (r == NULL || m == NULL) {
        free(r);
        return m == NULL ? RP_ERR_INVALID_ARG : RP_ERR_NO_MEMORY;
    }
    a = region_open(r, fd, io, off, len);
    if (a == NULL)
        err = r->io_error ? RP_ERR_IO : refuse(why, cap, "not an app tree: not a tar archive");
    else
        err = first_manifest(a, m, whole ? &mtext : NULL, &mlen, why, cap);
    if (err == RP_OK && whole)
        err = walk(a, m, mtext, mlen, -1, RP_APPTREE_BYTES_MAX, RP_APPTREE_ENTRIES_MAX, why, cap);
    free(mtext);
    if (a != NULL)
        archive_read_free(a);
    if ((err != RP_OK || whole) && r->io_error) {
        refuse(why, cap, "cannot read the payload");
        err = RP_ERR_IO;
    }
    free(r);
    if (err != RP_OK && whole)
        memset(m, 0, sizeof(*m)); /* nothing of a refused tree's manifest is used */
    return err;
}

rp_err_t rp_apptree_read_manifest(int fd, uint64_t off, uint64_t len, rp_manifest_t *m, char *why,
                                  size_t cap)
{
    return read_tree(fd, NULL, off, len, false, m, why, cap);
}

rp_err_t rp_apptree_read_manifest_io(const rp_image_io_t *io, uint64_t off, uint64_t len,
                                     rp_manifest_t *m, char *why, size_t cap)
{
    return read_tree(-1, io, off, len, false, m, why, cap);
}

/* ---- extraction ---- */

/* Directories read-only once written, bottom up. */
static rp_err_t seal_dirs(int dfd, int level)
{
    rp_err_t err = RP_OK;
    struct dirent *d;
    DIR *dir = level > RP_APPTREE_PATH_MAX ? NULL : fdopendir(dfd);

    if (dir == NULL) {
        close(dfd);
        return RP_ERR_IO;
    }
    while ((d = readdir(dir)) != NULL) {
        struct stat st;
        int sub;
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0 ||
            fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            continue;
        sub = openat(dirfd(dir), d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || seal_dirs(sub, level + 1) != RP_OK)
            err = RP_ERR_IO;
    }
    if (fchmod(dirfd(dir), 0555) != 0)
        err = RP_ERR_IO;
    closedir(dir);
    return err;
}

/* Write the current entry's data to fd (or, when fd < 0, read it only): exactly its declared
 * size. */
static rp_err_t copy_data(struct archive *a, int fd, const char *name, int64_t size, char *why,
                          size_t cap)
{
    static __thread char buf[IO_CHUNK];
    int64_t total = 0;
    la_ssize_t got;

    while ((got = archive_read_data(a, buf, sizeof(buf))) > 0) {
        total += got;
        if (total > size)
            return refuse(why, cap, "%s: more data than its size says", name);
        if (fd >= 0 && rp_write_all(fd, buf, (size_t)got) != RP_OK)
            return refuse(why, cap, "%s: cannot write: %s", name, strerror(errno));
    }
    if (got < 0 || total != size)
        return refuse(why, cap, "%s: the archive ends inside it (%s)", name,
                      archive_error_string(a) != NULL ? archive_error_string(a) : "truncated");
    return RP_OK;
}

/* The rules for one entry after the manifest, but where it stands in the tree (walk's index
 * checks that). OUT: name, its clean name; *bytes_left less a file's size. */
static rp_err_t entry_rules(struct archive_entry *e, char name[RP_APPTREE_PATH_MAX + 2],
                            uint64_t *bytes_left, char *why, size_t cap)
{
    mode_t type = archive_entry_filetype(e), perm = archive_entry_mode(e);
    rp_err_t err = entry_name(e, name, why, cap);

    if (err != RP_OK)
        return err;
    if (!name_ok(name))
        return refuse(why, cap,
                      "%s: not a clean relative name (no leading /, no . or .., no //, printable "
                      "ASCII, at most %d bytes)",
                      archive_entry_pathname(e), RP_APPTREE_PATH_MAX);
    if (archive_entry_hardlink(e) != NULL)
        return refuse(why, cap, "%s: a hard link (not allowed in an app tree)", name);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
        return refuse(why, cap, "%s: %s (not allowed in an app tree)", name, type_words(type));
    if (perm & (S_ISUID | S_ISGID | S_ISVTX))
        return refuse(why, cap, "%s: setuid, setgid or sticky bit (not allowed in an app tree)",
                      name);
    if (type == AE_IFREG) {
        int64_t size = archive_entry_size(e);
        if (!archive_entry_size_is_set(e) || size < 0 || (uint64_t)size > *bytes_left)
            return refuse(why, cap, "%s: %lld bytes: the tree goes over its size limit", name,
                          (long long)size);
        if (archive_entry_sparse_count(e) > 0)
            return refuse(why, cap, "%s: a sparse file (not allowed in an app tree)", name);
        *bytes_left -= (uint64_t)size;
    }
    if (type == AE_IFLNK && !link_ok(name, archive_entry_symlink(e)))
        return refuse(why, cap,
                      "%s: a link to %s, which is absolute, leaves the tree or is not a clean "
                      "path",
                      name, archive_entry_symlink(e) != NULL ? archive_entry_symlink(e) : "?");
    return RP_OK;
}

/* One entry that passed the rules, made under root. */
static rp_err_t make_entry(struct archive *a, struct archive_entry *e, const char *name, int root,
                           char *why, size_t cap)
{
    mode_t type = archive_entry_filetype(e), perm = archive_entry_mode(e);
    rp_err_t err = RP_OK;
    const char *base;
    int dfd, fd;

    dfd = open_parent(root, name, &base, why, cap);
    if (dfd < 0)
        return RP_ERR_MALFORMED;
    if (type == AE_IFDIR) {
        if (mkdirat(dfd, base, 0700) != 0)
            err = errno == EEXIST ? refuse(why, cap, "%s: listed twice", name)
                                  : refuse(why, cap, "%s: %s", name, strerror(errno));
    } else if (type == AE_IFLNK) {
        if (symlinkat(archive_entry_symlink(e), dfd, base) != 0)
            err = errno == EEXIST ? refuse(why, cap, "%s: listed twice", name)
                                  : refuse(why, cap, "%s: %s", name, strerror(errno));
    } else {
        fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            err = errno == EEXIST ? refuse(why, cap, "%s: listed twice", name)
                                  : refuse(why, cap, "%s: %s", name, strerror(errno));
        } else {
            err = copy_data(a, fd, name, archive_entry_size(e), why, cap);
            if (err == RP_OK && fchmod(fd, (perm & 0111) ? 0555 : 0444) != 0)
                err = refuse(why, cap, "%s: %s", name, strerror(errno));
            close(fd);
        }
    }
    close(dfd);
    return err;
}

/* What the walk has seen: every name, its type and whether it is executable (tsearch). */
struct seen {
    mode_t type;
    bool exec;
    char name[]; /* NUL-ended */
};

static int seen_cmp(const void *a, const void *b)
{
    return strcmp(((const struct seen *)a)->name, ((const struct seen *)b)->name);
}

/* Enter name in the index: refused when it was listed before, or when its directory was not
 * (or is not a directory: nothing is made through a link or a file). */
static rp_err_t place(void **index, const char *name, mode_t type, bool exec, char *why, size_t cap)
{
    const char *slash = strrchr(name, '/');
    size_t len = strlen(name);
    struct seen *x = malloc(sizeof(*x) + len + 1), **found;

    if (x == NULL)
        return RP_ERR_NO_MEMORY;
    if (slash != NULL) {
        memcpy(x->name, name, (size_t)(slash - name));
        x->name[slash - name] = '\0';
        found = tfind(x, index, seen_cmp);
        if (found == NULL || (*found)->type != AE_IFDIR) {
            free(x);
            return found == NULL
                       ? refuse(why, cap, "%s: its directory %.*s is not in the archive before it",
                                name, (int)(slash - name), name)
                       : refuse(why, cap,
                                "%s: %.*s is a link or not a directory: nothing is written "
                                "through it",
                                name, (int)(slash - name), name);
        }
    }
    memcpy(x->name, name, len + 1);
    x->type = type;
    x->exec = exec;
    found = tsearch(x, index, seen_cmp);
    if (found == NULL) {
        free(x);
        return RP_ERR_NO_MEMORY;
    }
    if (*found != x) {
        free(x);
        return refuse(why, cap, "%s: listed twice", name);
    }
    return RP_OK;
}

/*
 * Every entry of a tree after its manifest (read by first_manifest: mtext, mlen), by the rules of
 * apptree.h, the one walk of both: with root >= 0 each entry is also made under root (extract),
 * else nothing is written (check). Bounded by max_entries (the manifest included) and max_bytes
 * (its file included); then the EntryPoint must be a regular executable file of the tree.
 */
static rp_err_t walk(struct archive *a, const rp_manifest_t *m, const char *mtext, size_t mlen,
                     int root, uint64_t max_bytes, size_t max_entries, char *why, size_t cap)
{
    char name[RP_APPTREE_PATH_MAX + 2];
    struct archive_entry *e;
    const struct seen *const *ep;
    struct seen *key = NULL;
    void *index = NULL;
    size_t entries = 1;
    rp_err_t err;
    int st, mfd;

    if (max_entries == 0)
        return refuse(why, cap, "more than %zu entries", max_entries);
    /* The manifest's own file stands in the tree too, read-only, and counts against the size. */
    if (mlen > max_bytes)
        return refuse(why, cap, "%s: %zu bytes: the tree goes over its size limit",
                      RP_MANIFEST_FILE, mlen);
    max_bytes -= mlen;
    if (root >= 0) {
        mfd = openat(root, RP_MANIFEST_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                     0444);
        if (mfd < 0 || rp_write_all(mfd, mtext, mlen) != RP_OK) {
            if (mfd >= 0)
                close(mfd);
            return refuse(why, cap, "%s: cannot write it", RP_MANIFEST_FILE);
        }
        close(mfd);
    }
    err = place(&index, RP_MANIFEST_FILE, AE_IFREG, false, why, cap);
    while (err == RP_OK && (st = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (++entries > max_entries)
            err = refuse(why, cap, "more than %zu entries", max_entries);
        if (err == RP_OK)
            err = entry_rules(e, name, &max_bytes, why, cap);
        if (err == RP_OK)
            err = place(&index, name, archive_entry_filetype(e),
                        (archive_entry_mode(e) & 0111) != 0, why, cap);
        if (err == RP_OK && root >= 0)
            err = make_entry(a, e, name, root, why, cap);
        else if (err == RP_OK && archive_entry_filetype(e) == AE_IFREG)
            err = copy_data(a, -1, name, archive_entry_size(e), why, cap); /* read, as extract */
    }
    if (err == RP_OK && st != ARCHIVE_EOF)
        err = refuse(why, cap, "the archive is damaged: %s",
                     archive_error_string(a) != NULL ? archive_error_string(a) : "unreadable");
    if (err == RP_OK) {
        key = malloc(sizeof(*key) + strlen(m->entry_point) + 1);
        if (key == NULL)
            err = RP_ERR_NO_MEMORY;
    }
    if (err == RP_OK) {
        strcpy(key->name, m->entry_point);
        ep = tfind(key, &index, seen_cmp);
        err = entry_point_ok(m->entry_point, ep != NULL, ep != NULL ? (*ep)->type : 0,
                             ep != NULL && (*ep)->exec, why, cap);
    }
    free(key);
    tdestroy(index, free);
    return err;
}

rp_err_t rp_apptree_extract(int fd, uint64_t off, uint64_t len, const char *dest_dir,
                            uint64_t max_bytes, size_t max_entries, rp_manifest_t *m, char *why,
                            size_t cap)
{
    struct region *r;
    struct archive *a = NULL;
    size_t mlen = 0;
    char *mtext = NULL;
    rp_err_t err;
    int root;

    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (dest_dir == NULL || m == NULL)
        return RP_ERR_INVALID_ARG;
    if (mkdir(dest_dir, 0700) != 0) {
        refuse(why, cap, "%s: %s", dest_dir,
               errno == EEXIST ? "exists: a tree is extracted into a fresh directory"
                               : strerror(errno));
        return errno == EEXIST ? RP_ERR_EXISTS : RP_ERR_IO;
    }
    root = open(dest_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    r = malloc(sizeof(*r));
    if (root < 0 || r == NULL) {
        err = refuse(why, cap, "%s: cannot open it", dest_dir);
        goto out;
    }
    a = region_open(r, fd, NULL, off, len);
    if (a == NULL) {
        err = refuse(why, cap, "not an app tree: not a tar archive");
        goto out;
    }
    err = first_manifest(a, m, &mtext, &mlen, why, cap);
    if (err == RP_OK)
        err = walk(a, m, mtext, mlen, root, max_bytes, max_entries, why, cap);
out:
    free(mtext);
    if (a != NULL)
        archive_read_free(a);
    if (err == RP_OK && r->io_error)
        err = refuse(why, cap, "cannot read the payload");
    free(r);
    if (err == RP_OK) {
        if (seal_dirs(dup(root), 0) != RP_OK || syncfs(root) != 0)
            err = refuse(why, cap, "%s: cannot make the tree read-only and durable", dest_dir);
    }
    if (root >= 0)
        close(root);
    if (err != RP_OK) {
        if (rp_apptree_remove(dest_dir) != RP_OK && why != NULL && strlen(why) + 1 < cap)
            refuse(why + strlen(why), cap - strlen(why), " (and %s could not be removed)",
                   dest_dir);
        memset(m, 0, sizeof(*m)); /* nothing of a refused tree's manifest is used */
    }
    return err;
}

rp_err_t rp_apptree_check(int fd, uint64_t off, uint64_t len, rp_manifest_t *m, char *why,
                          size_t cap)
{
    return read_tree(fd, NULL, off, len, true, m, why, cap);
}

rp_err_t rp_apptree_check_io(const rp_image_io_t *io, uint64_t off, uint64_t len, rp_manifest_t *m,
                             char *why, size_t cap)
{
    return read_tree(-1, io, off, len, true, m, why, cap);
}

/* ---- packing ---- */

struct pentry {
    char path[RP_APPTREE_PATH_MAX + 1];
    char link[RP_APPTREE_LINK_MAX + 1];
    mode_t type; /* S_IFREG, S_IFDIR or S_IFLNK */
    bool exec;
    off_t size;
    ino_t ino;
    dev_t dev;
};

struct pack {
    struct pentry *v;
    size_t n, alloc;
    char *why;
    size_t cap;
};

static rp_err_t collect(struct pack *p, int dfd, const char *prefix, int level)
{
    rp_err_t err = RP_OK;
    struct dirent *d;
    DIR *dir;
    int own = dup(dfd);

    if (own < 0 || (dir = fdopendir(own)) == NULL) {
        if (own >= 0)
            close(own);
        return refuse(p->why, p->cap, "%s: cannot read the directory: %s", prefix[0] ? prefix : ".",
                      strerror(errno));
    }
    while (err == RP_OK && (errno = 0, d = readdir(dir)) != NULL) {
        struct pentry *x;
        struct stat st;
        int n;

        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        if (p->n == RP_APPTREE_ENTRIES_MAX) {
            err = refuse(p->why, p->cap, "more than %d entries", RP_APPTREE_ENTRIES_MAX);
            break;
        }
        if (p->n == p->alloc) {
            size_t alloc = p->alloc ? p->alloc * 2 : 64;
            struct pentry *v = realloc(p->v, alloc * sizeof(*v));
            if (v == NULL) {
                err = RP_ERR_NO_MEMORY;
                break;
            }
            p->v = v;
            p->alloc = alloc;
        }
        x = &p->v[p->n];
        memset(x, 0, sizeof(*x));
        n = snprintf(x->path, sizeof(x->path), "%s%s%s", prefix, prefix[0] ? "/" : "", d->d_name);
        if (n < 0 || (size_t)n >= sizeof(x->path) || !name_ok(x->path)) {
            err = refuse(p->why, p->cap,
                         "%s%s%s: not an allowed name (printable ASCII, at most %d bytes with its "
                         "directories)",
                         prefix, prefix[0] ? "/" : "", d->d_name, RP_APPTREE_PATH_MAX);
            break;
        }
        if (fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            err = refuse(p->why, p->cap, "%s: %s", x->path, strerror(errno));
            break;
        }
        x->type = st.st_mode & S_IFMT;
        x->exec = (st.st_mode & 0111) != 0;
        x->ino = st.st_ino;
        x->dev = st.st_dev;
        if (st.st_mode & (S_ISUID | S_ISGID | S_ISVTX)) {
            err = refuse(p->why, p->cap,
                         "%s: setuid, setgid or sticky bit (not allowed in an app tree)", x->path);
        } else if (x->type == S_IFREG) {
            x->size = st.st_size;
            if (st.st_nlink > 1)
                err = refuse(p->why, p->cap,
                             "%s: a hard link (%ju names for one file; not allowed in an app "
                             "tree: copy it)",
                             x->path, (uintmax_t)st.st_nlink);
        } else if (x->type == S_IFLNK) {
            ssize_t l = readlinkat(dirfd(dir), d->d_name, x->link, sizeof(x->link));
            if (l < 0 || (size_t)l >= sizeof(x->link)) {
                err = refuse(p->why, p->cap, "%s: a link whose target is over %d bytes", x->path,
                             RP_APPTREE_LINK_MAX);
            } else {
                x->link[l] = '\0';
                if (!link_ok(x->path, x->link))
                    err = refuse(p->why, p->cap,
                                 "%s: a link to %s, which is absolute, leaves the tree or is not "
                                 "a clean path",
                                 x->path, x->link);
            }
        } else if (x->type != S_IFDIR) {
            err = refuse(p->why, p->cap, "%s: %s (not allowed in an app tree)", x->path,
                         type_words(x->type));
        }
        if (err != RP_OK)
            break;
        p->n++;
        if (x->type == S_IFDIR) {
            char sub_prefix[RP_APPTREE_PATH_MAX + 1];
            int sub =
                openat(dirfd(dir), d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            memcpy(sub_prefix, x->path, sizeof(sub_prefix));
            if (sub < 0)
                err = refuse(p->why, p->cap, "%s: %s", sub_prefix, strerror(errno));
            else {
                err = collect(p, sub, sub_prefix, level + 1);
                close(sub);
            }
        }
    }
    if (err == RP_OK && errno != 0)
        err = refuse(p->why, p->cap, "%s: cannot read the directory", prefix[0] ? prefix : ".");
    closedir(dir);
    return err;
}

/* The manifest first, then bytewise order (a directory sorts before what it holds). */
static int pentry_cmp(const void *a, const void *b)
{
    const struct pentry *x = a, *y = b;
    bool mx = strcmp(x->path, RP_MANIFEST_FILE) == 0, my = strcmp(y->path, RP_MANIFEST_FILE) == 0;

    if (mx != my)
        return mx ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* Open a collected regular file again, without following a link, and check it is the same. */
static int reopen_file(int root, const struct pentry *x, char *why, size_t cap)
{
    const char *base;
    struct stat st;
    int dfd = open_parent(root, x->path, &base, why, cap), fd;

    if (dfd < 0)
        return -1;
    fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    close(dfd);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != x->ino ||
        st.st_dev != x->dev || st.st_size != x->size) {
        if (fd >= 0)
            close(fd);
        refuse(why, cap, "%s: changed while it was being packed", x->path);
        return -1;
    }
    return fd;
}

static rp_err_t write_entry(struct archive *w, int root, const struct pentry *x, char *why,
                            size_t cap)
{
    static __thread char buf[IO_CHUNK];
    struct archive_entry *e = archive_entry_new();
    rp_err_t err = RP_OK;
    off_t done = 0;
    int fd = -1;

    if (e == NULL)
        return RP_ERR_NO_MEMORY;
    archive_entry_set_pathname(e, x->path);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (x->type == S_IFDIR) {
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, 0755);
    } else if (x->type == S_IFLNK) {
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_perm(e, 0777);
        archive_entry_set_symlink(e, x->link);
    } else {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, x->exec ? 0755 : 0644);
        archive_entry_set_size(e, x->size);
        fd = reopen_file(root, x, why, cap);
        if (fd < 0)
            err = RP_ERR_MALFORMED;
    }
    if (err == RP_OK && archive_write_header(w, e) != ARCHIVE_OK)
        err = refuse(why, cap, "%s: cannot archive it: %s", x->path, archive_error_string(w));
    while (err == RP_OK && fd >= 0 && done < x->size) {
        size_t want = x->size - done < (off_t)sizeof(buf) ? (size_t)(x->size - done) : sizeof(buf);
        ssize_t got = read(fd, buf, want);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            err = refuse(why, cap, "%s: changed while it was being packed", x->path);
        else if (archive_write_data(w, buf, (size_t)got) != got)
            err = refuse(why, cap, "%s: cannot write the archive: %s", x->path,
                         archive_error_string(w));
        else
            done += got;
    }
    if (err == RP_OK && fd >= 0 && read(fd, buf, 1) != 0)
        err = refuse(why, cap, "%s: changed while it was being packed", x->path);
    if (fd >= 0)
        close(fd);
    archive_entry_free(e);
    return err;
}

rp_err_t rp_apptree_pack(const char *dir, int out_fd, rp_manifest_t *out_m, char *why, size_t cap)
{
    struct pack p = {.why = why, .cap = cap};
    struct archive *w = NULL;
    rp_manifest_t *m = malloc(sizeof(*m));
    struct pentry *entry = NULL;
    char *text = NULL;
    size_t tlen = 0;
    rp_err_t err;
    int root;

    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (m == NULL)
        return RP_ERR_NO_MEMORY;
    root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
        free(m);
        return refuse(why, cap, "%s: not a directory I can read: %s", dir, strerror(errno));
    }
    err = collect(&p, root, "", 0);
    if (err != RP_OK)
        goto out;
    qsort(p.v, p.n, sizeof(p.v[0]), pentry_cmp);
    if (p.n == 0 || strcmp(p.v[0].path, RP_MANIFEST_FILE) != 0 || p.v[0].type != S_IFREG) {
        err = refuse(why, cap, "%s: no %s file at its root", dir, RP_MANIFEST_FILE);
        goto out;
    }
    if (p.v[0].size > RP_MANIFEST_MAX_BYTES) {
        err = refuse(why, cap, "%s: %lld bytes, over the limit of %d", RP_MANIFEST_FILE,
                     (long long)p.v[0].size, RP_MANIFEST_MAX_BYTES);
        goto out;
    }
    {
        int fd = reopen_file(root, &p.v[0], why, cap);
        text = malloc((size_t)p.v[0].size + 1);
        if (fd < 0 || text == NULL || rp_pread_all(fd, text, (size_t)p.v[0].size, 0) != RP_OK) {
            if (fd >= 0)
                close(fd);
            err = refuse(why, cap, "%s: cannot read it", RP_MANIFEST_FILE);
            goto out;
        }
        close(fd);
        tlen = (size_t)p.v[0].size;
    }
    err = rp_manifest_parse(text, tlen, m, why, cap);
    if (err != RP_OK)
        goto out;
    for (size_t i = 0; i < p.n && entry == NULL; i++)
        if (strcmp(p.v[i].path, m->entry_point) == 0)
            entry = &p.v[i];
    err = entry_point_ok(m->entry_point, entry != NULL, entry != NULL ? entry->type : 0,
                         entry != NULL && entry->exec, why, cap);
    if (err != RP_OK)
        goto out;
    w = archive_write_new();
    if (w == NULL || archive_write_set_format_ustar(w) != ARCHIVE_OK ||
        archive_write_add_filter_none(w) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w, 1) != ARCHIVE_OK ||
        archive_write_open_fd(w, out_fd) != ARCHIVE_OK) {
        err = refuse(why, cap, "cannot start the archive: %s",
                     w != NULL && archive_error_string(w) ? archive_error_string(w) : "no memory");
        goto out;
    }
    for (size_t i = 0; i < p.n && err == RP_OK; i++)
        err = write_entry(w, root, &p.v[i], why, cap);
    if (err == RP_OK && archive_write_close(w) != ARCHIVE_OK)
        err = refuse(why, cap, "cannot finish the archive: %s", archive_error_string(w));
    if (err == RP_OK && out_m != NULL)
        *out_m = *m;
out:
    if (w != NULL)
        archive_write_free(w);
    close(root);
    free(text);
    free(p.v);
    free(m);
    return err;
}
