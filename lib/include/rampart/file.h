/*
 * Files on Linux, done so that a crash or power cut at any moment leaves either the old content
 * or the new, never a mix: atomic replacement (write a temporary, fsync, rename, fsync the
 * directory), bounded reads, and an image source over pread() for the core's verifier.
 */
#ifndef RAMPART_FILE_H
#define RAMPART_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rampart/error.h"
#include "rampart/image.h"

/* The temporary rp_atomic_begin writes beside path: path's name, RP_ATOMIC_TMP_MARK, then
 * mkostemp's six characters (RP_ATOMIC_TMP_SUFFIX, its template); RP_ATOMIC_TMP_EXTRA is how many
 * bytes it adds to the name. rp_atomic_is_temporary reads the same. */
#define RP_ATOMIC_TMP_MARK ".tmp"
#define RP_ATOMIC_TMP_SUFFIX RP_ATOMIC_TMP_MARK "XXXXXX"
#define RP_ATOMIC_TMP_EXTRA ((int)sizeof(RP_ATOMIC_TMP_SUFFIX) - 1)

/* A file being written; it replaces path only on commit. */
typedef struct rp_atomic_file {
    int fd;
    char path[4096];
    char tmp[4096 + 16];
} rp_atomic_file_t;

/*
 * Start writing path with the given mode. With exclusive, an existing path is RP_ERR_EXISTS
 * (checked again at commit, so two writers cannot both win). OUT: *f.
 */
rp_err_t rp_atomic_begin(rp_atomic_file_t *f, const char *path, mode_t mode,
                         int exclusive) RP_MUST_CHECK;
/* Write all of buf. */
rp_err_t rp_atomic_write(rp_atomic_file_t *f, const void *buf, size_t len) RP_MUST_CHECK;
/*
 * fsync, rename over (or link to, when exclusive) path, fsync the directory. Closes f. An error
 * from the final directory fsync means path may hold the new content but it is not known to be
 * durable.
 */
rp_err_t rp_atomic_commit(rp_atomic_file_t *f, int exclusive) RP_MUST_CHECK;
/* Discard the temporary. Safe after a failed commit and on an already-closed f. */
void rp_atomic_abort(rp_atomic_file_t *f);

/* Entries of a directory one sweep looks at, at most (rp_dir_sweep). */
#define RP_SWEEP_MAX 1024

/*
 * Remove from the directory dir (a descriptor; it stays open) every entry that doomed(name, arg)
 * says goes: the entry itself, a link never followed; a directory is left. At most RP_SWEEP_MAX
 * entries are looked at (a later sweep goes on). The caller makes sure that no live writer owns
 * what goes (it holds the lock every writer there holds, or is the only writer). OUT: *removed
 * (may be NULL).
 */
rp_err_t rp_dir_sweep(int dir, bool (*doomed)(const char *name, void *arg), void *arg,
                      int *removed) RP_MUST_CHECK;
/* Whether name (a base name) is a temporary rp_atomic_begin makes for a file named of (a base
 * name): what a cut (kill -9, a power cut) between begin and commit leaves beside it. */
bool rp_atomic_is_temporary(const char *name, const char *of);
/* rp_dir_sweep of every temporary of the file named of (rp_atomic_is_temporary), on the same
 * terms. */
rp_err_t rp_atomic_sweep(int dir, const char *of, int *removed) RP_MUST_CHECK;

/* All of data as path's new content, atomically (rp_atomic_begin/write/commit). */
rp_err_t rp_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                              int exclusive) RP_MUST_CHECK;

/* rename(from, to), then fsync the directory holding to (both in one directory): once this
 * returns RP_OK the rename survives a power cut, and a later one in that directory cannot reach
 * the disk before it. */
rp_err_t rp_rename_durable(const char *from, const char *to) RP_MUST_CHECK;

/* DIR/NAME, made 0600 if need be, locked exclusively (flock, waited for; released when the
 * descriptor is closed or the process ends, however it ends): the descriptor to close, or -1
 * (said). Processes that share a directory take turns with it. */
int rp_lock_in(const char *dir, const char *name);

/* Whether a and b name the same existing file (same device and inode). */
bool rp_same_file(const char *a, const char *b);

/* Write all of buf to fd, retrying short writes and EINTR. */
rp_err_t rp_write_all(int fd, const void *buf, size_t len) RP_MUST_CHECK;
/* Read exactly len bytes at off; RP_ERR_TRUNCATED at end of file. */
rp_err_t rp_pread_all(int fd, void *buf, size_t len, uint64_t off) RP_MUST_CHECK;

/*
 * Read a whole regular file of at most max bytes. OUT: *data (malloc'd, NUL-terminated for
 * convenience, caller frees) and *len. A larger file is RP_ERR_TOO_LARGE.
 */
rp_err_t rp_read_file(const char *path, size_t max, uint8_t **data, size_t *len) RP_MUST_CHECK;
/*
 * The same from an open file descriptor (read from its offset to the end; not closed): a regular
 * file only (else RP_ERR_IO), whose bytes are copied now, so that the caller holds them whatever
 * happens to the file later.
 */
rp_err_t rp_read_fd(int fd, size_t max, uint8_t **data, size_t *len) RP_MUST_CHECK;

/*
 * Refuse a directory or file that holds secrets, or what a program trusts, when another user
 * could change it: owned by another user, or writable by group or others; a secret also when
 * group or others can read it. A refusal is logged with the path, the mode found and the fix
 * (chmod 700 DIR, chmod 600 FILE, chown). RP_ERR_NOT_FOUND when path does not exist;
 * RP_ERR_INVALID_ARG for a refusal.
 */
rp_err_t rp_file_check_private(const char *path, bool secret) RP_MUST_CHECK;

/*
 * An open image file and the core's view of it, read with pread() into the verifier's buffer.
 * (Not mmap(): how much a fresh mapping costs depends on how the file's pages were written, and a
 * file truncated under a mapping kills the reader with SIGBUS.) The file must not change while it
 * is verified. io.ctx points into the struct: do not copy it once open.
 */
typedef struct rp_file_image {
    int fd;
    rp_image_io_t io;
} rp_file_image_t;

/* The scratch size Rampart's programs verify files with: large enough that the copy out of the
 * page cache costs little next to SHA-256 (bench/image-verify measures it). */
#define RP_FILE_IMAGE_SCRATCH (256 * 1024)

/* The SHA-256 of everything fd holds, read with pread() (the offset is not moved), in hex. */
rp_err_t rp_fd_sha256_hex(int fd, char hex[2 * RP_SHA256_LEN + 1]) RP_MUST_CHECK;

/* Open path read-only as an image source. OUT: *img. */
rp_err_t rp_file_image_open(rp_file_image_t *img, const char *path) RP_MUST_CHECK;
void rp_file_image_close(rp_file_image_t *img);

#endif /* RAMPART_FILE_H */
