/*
 * App trees as image payloads: an app is a directory with app_manifest.json at its root; its
 * image's payload is a reproducible ustar archive of that directory (libarchive), signed like any
 * other payload, so every existing check, upload and deployment applies unchanged. This module
 * owns the archive's shape on both sides: what `rampart image sign --type app DIR` packs, how a
 * payload is told apart from a single-file app made before manifests, how the device reads a
 * tree's manifest alone, how the service, `rampart app check` and `rampart image sign --type app
 * FILE` check a whole tree by the extractor's rules without writing it, and how the device's
 * monitor extracts a tree once the image's signature is checked.
 *
 * The shape (pack writes exactly this, extract accepts nothing else):
 *   - ustar entries, app_manifest.json first, then every other entry sorted by name (bytewise),
 *     each directory before what it holds;
 *   - names: clean relative paths (rp_manifest_path_clean) of printable ASCII, at most
 *     RP_APPTREE_PATH_MAX bytes;
 *   - only regular files, directories and symbolic links; a link's target is relative, its ".."
 *     components come first and do not climb above the tree, the rest is a clean path;
 *   - mtime 0, uid and gid 0, no user or group names, modes 0755 (directories, executables) or
 *     0644; no setuid, setgid or sticky bit, no hard link, no device node, FIFO or socket.
 * Extract and check refuse everything outside it that matters, but ignore an entry's mtime, uid,
 * gid and names (the extracted tree is root's and read-only whatever they say), a leading "./" on
 * names and a first entry that is the root itself ("./": what `tar cf F -C DIR .` writes), so a
 * tar made by other tools passes when its entries, order and EntryPoint do.
 */
#ifndef RAMPART_APPTREE_H
#define RAMPART_APPTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"
#include "rampart/image.h"
#include "rampart/manifest.h"

#define RP_APPTREE_ENTRIES_MAX 4096 /* what pack writes at most, the manifest included */
#define RP_APPTREE_PATH_MAX 255     /* a name inside the tree (ustar's prefix + name) */
#define RP_APPTREE_LINK_MAX 100     /* a symbolic link's target (ustar's linkname field) */
#define RP_APPTREE_BYTES_MAX (256ull * 1024 * 1024) /* an extracted tree's file bytes, at most */

typedef enum rp_apptree_kind {
    RP_APPTREE_LEGACY = 0, /* one file, the program itself: an app made before manifests */
    RP_APPTREE_TREE = 1,   /* a tar archive (a valid tree or not: the walk says which) */
} rp_apptree_kind_t;

/*
 * Pack the directory dir into out_fd as described above, refusing (with why) anything the shape
 * does not allow, a manifest that rp_manifest_parse() refuses, and an EntryPoint that is not a
 * regular executable file in the tree. The same directory gives the same bytes, whatever the
 * files' times, owners or the umask. OUT: *m (may be NULL), the manifest. On a refusal out_fd
 * may hold a partial archive: the caller discards it.
 */
rp_err_t rp_apptree_pack(const char *dir, int out_fd, rp_manifest_t *m, char *why,
                         size_t cap) RP_MUST_CHECK;

/*
 * Whether the payload at fd[off, off+len) is an app tree or a legacy single file: the one place
 * that decides. A tree is any payload libarchive's tar reader recognises, whatever its entries,
 * so that a tar that is not a valid tree is refused by the walk (with its reason) in sign, app
 * check, upload and on the device alike, never taken for a single file. RP_ERR_IO only when the
 * payload cannot be read. OUT: *kind.
 */
rp_err_t rp_apptree_kind(int fd, uint64_t off, uint64_t len, rp_apptree_kind_t *kind) RP_MUST_CHECK;

/*
 * Read and validate only the manifest of the tree at fd[off, off+len) (nothing is extracted).
 * OUT: *m.
 */
rp_err_t rp_apptree_read_manifest(int fd, uint64_t off, uint64_t len, rp_manifest_t *m, char *why,
                                  size_t cap) RP_MUST_CHECK;
/*
 * Check the whole tree at fd[off, off+len) by the rules rp_apptree_extract applies on the device
 * (the same walk: every entry, its place, the EntryPoint, at most RP_APPTREE_ENTRIES_MAX entries
 * and RP_APPTREE_BYTES_MAX bytes), writing nothing: what `rampart app check IMAGE`, `rampart image
 * sign --type app FILE` and the service's upload call, so that no device refuses what they pass.
 * A refusal is RP_ERR_MALFORMED with why; RP_ERR_IO when the payload cannot be read. OUT: *m.
 */
rp_err_t rp_apptree_check(int fd, uint64_t off, uint64_t len, rp_manifest_t *m, char *why,
                          size_t cap) RP_MUST_CHECK;
rp_err_t rp_apptree_check_io(const rp_image_io_t *io, uint64_t off, uint64_t len, rp_manifest_t *m,
                             char *why, size_t cap) RP_MUST_CHECK;
/* The same two over an image source (the service reads its blob store so: store/blob.h). */
rp_err_t rp_apptree_kind_io(const rp_image_io_t *io, uint64_t off, uint64_t len,
                            rp_apptree_kind_t *kind) RP_MUST_CHECK;
rp_err_t rp_apptree_read_manifest_io(const rp_image_io_t *io, uint64_t off, uint64_t len,
                                     rp_manifest_t *m, char *why, size_t cap) RP_MUST_CHECK;

/*
 * Extract the tree at fd[off, off+len) into dest_dir, which must not exist: it is made (0700
 * while being written), every entry created without following any link and without replacing
 * anything, files left read-only (0444, 0555 for executables), directories 0555 and the tree
 * synced. Refused, with why: anything outside the shape above, an entry listed twice, an entry
 * whose directory was not listed before it, more than max_entries entries, more than max_bytes
 * of file contents (a size is checked before its bytes are written), a manifest that
 * rp_manifest_parse() refuses, an EntryPoint that is not a regular executable file of the tree.
 * On a refusal nothing of dest_dir remains. Call it only on a payload whose signature was
 * checked. OUT: *m.
 */
rp_err_t rp_apptree_extract(int fd, uint64_t off, uint64_t len, const char *dest_dir,
                            uint64_t max_bytes, size_t max_entries, rp_manifest_t *m, char *why,
                            size_t cap) RP_MUST_CHECK;

/* Remove a tree made by rp_apptree_extract(), never following a link. RP_OK if it is gone. */
rp_err_t rp_apptree_remove(const char *dir) RP_MUST_CHECK;

#endif /* RAMPART_APPTREE_H */
