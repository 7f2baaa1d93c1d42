/*
 * Removing an app tree (apptree.h): apart from the rest of apptree.c so that what removes trees
 * (the monitor's app supervisor) links no archive reader.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rampart/apptree.h"

static rp_err_t remove_at(int dfd, int level)
{
    rp_err_t err = RP_OK;
    struct dirent *d;
    DIR *dir;

    if (level > RP_APPTREE_PATH_MAX) {
        close(dfd);
        return RP_ERR_TOO_LARGE;
    }
    (void)fchmod(dfd, 0700); /* a read-only tree: its owner may empty it again */
    dir = fdopendir(dfd);
    if (dir == NULL) {
        close(dfd);
        return RP_ERR_IO;
    }
    while ((d = readdir(dir)) != NULL) {
        struct stat st;
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            err = RP_ERR_IO;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            int sub =
                openat(dirfd(dir), d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0 || remove_at(sub, level + 1) != RP_OK ||
                unlinkat(dirfd(dir), d->d_name, AT_REMOVEDIR) != 0)
                err = RP_ERR_IO;
        } else if (unlinkat(dirfd(dir), d->d_name, 0) != 0) {
            err = RP_ERR_IO;
        }
    }
    closedir(dir);
    return err;
}

rp_err_t rp_apptree_remove(const char *path)
{
    int dfd;
    rp_err_t err;

    if (path == NULL)
        return RP_ERR_INVALID_ARG;
    dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? RP_OK : RP_ERR_IO;
    err = remove_at(dfd, 0);
    /* unlinkat, not rmdir: the one call the monitor's filter allows for both (sandbox.c) */
    if (err == RP_OK && unlinkat(AT_FDCWD, path, AT_REMOVEDIR) != 0)
        err = RP_ERR_IO;
    return err;
}
