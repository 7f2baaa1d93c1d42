/*
 * Fuzz target: the scan of an existing output for a private key (lib/src/key_check.c: its PEM
 * scan, a line at a time in bounded memory, and the DER decoders), on any bytes, as
 * rp_key_check_out reads a file: the bytes are written to a file of a private directory, checked
 * with --force, and the answer must be keep it (RP_ERR_EXISTS) or replace it (RP_OK), nothing
 * else. Seeds: fuzz/corpus/key_check.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rampart/file.h"
#include "rampart/key.h"

static char dir[] = "/tmp/fuzz-key_check.XXXXXX", path[PATH_MAX];

/* The file and its directory, gone at the end (what refusals say goes to stderr). */
static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_err_t err;
    int fd;

    if (path[0] == '\0') {
        if (mkdtemp(dir) == NULL)
            abort();
        snprintf(path, sizeof(path), "%s/out", dir);
        atexit(cleanup);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || rp_write_all(fd, data, size) != RP_OK || close(fd) != 0)
        abort();
    err = rp_key_check_out(path, true, false);
    if (err != RP_OK && err != RP_ERR_EXISTS)
        abort();
    return 0;
}
