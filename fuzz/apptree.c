/*
 * Fuzz target: an app tree's payload as the device's monitor extracts it (rp_apptree_extract,
 * into a fresh directory under a temporary one), and as the service and `rampart app check` read
 * it (rp_apptree_kind, rp_apptree_read_manifest, rp_apptree_check). Whatever is extracted must
 * stay inside its directory; whatever is refused must leave nothing behind.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rampart/apptree.h"
#include "rampart/file.h"

static char top[64];

/* Each input's directory is gone when it returns: the one under which they were goes at exit. */
static void remove_top(void)
{
    (void)rmdir(top);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long n;
    char dest[128], why[512];
    rp_apptree_kind_t kind;
    rp_manifest_t m;
    struct stat st;
    rp_err_t err;
    int fd;

    if (top[0] == '\0') {
        snprintf(top, sizeof(top), "/tmp/fuzz-apptree.XXXXXX");
        if (mkdtemp(top) == NULL || atexit(remove_top) != 0)
            abort();
    }
    fd = memfd_create("payload", MFD_CLOEXEC);
    if (fd < 0 || (size > 0 && rp_write_all(fd, data, size) != RP_OK))
        abort();
    if (rp_apptree_kind(fd, 0, size, &kind) != RP_OK)
        abort();
    err = rp_apptree_read_manifest(fd, 0, size, &m, why, sizeof(why));
    if (err == RP_OK && kind != RP_APPTREE_TREE)
        abort(); /* a payload whose manifest reads is a tree */
    snprintf(dest, sizeof(dest), "%s/t%lu", top, n++);
    err = rp_apptree_extract(fd, 0, size, dest, 1 << 20, 64, &m, why, sizeof(why));
    if (err != RP_OK) {
        if (why[0] == '\0' || lstat(dest, &st) == 0)
            abort(); /* a refusal says why, and leaves nothing */
    } else {
        if (kind != RP_APPTREE_TREE || rp_apptree_remove(dest) != RP_OK)
            abort();
    }
    /* The check-only walk (app check, image sign, upload) passes what extract made, and what
     * passes the check within larger limits is a tree. */
    {
        char checked[512];
        rp_err_t c = rp_apptree_check(fd, 0, size, &m, checked, sizeof(checked));
        if ((err == RP_OK && c != RP_OK) || (c == RP_OK && kind != RP_APPTREE_TREE))
            abort();
    }
    close(fd);
    return 0;
}
