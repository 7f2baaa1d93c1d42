/*
 * The main() a fuzz target gets outside the libFuzzer build: it runs the target once on each file
 * named, or on each file in each directory named (its seeds, fuzz/corpus/NAME), as libFuzzer does
 * when it is given files - LLVMFuzzerInitialize first if the target has one, then each input in a
 * heap copy of exactly its size, so that ASan sees any read past it. The tests (unit.fuzz_seeds.*)
 * run every target over its committed seeds this way, under gcc and under ASan. Exits nonzero on
 * an unreadable input, or when it ran none: a seed that crashes the target crashes it.
 */
#define _POSIX_C_SOURCE 200809L /* scandir, alphasort */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* A target may define it; a weak reference is null when it does not. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long size;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (data = malloc(size > 0 ? (size_t)size : 1)) == NULL ||
        fread(data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(data);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fclose(f);
    /* Named before it runs: a crash's report then follows the seed that caused it. */
    fprintf(stderr, "replay: %s (%ld bytes)\n", path, size);
    (void)LLVMFuzzerTestOneInput(data, (size_t)size);
    free(data);
    return 0;
}

/* A file, or every file below a directory (in name order: the same order each run). */
static int run_path(const char *path, unsigned *ran)
{
    struct dirent **names;
    struct stat st;
    int n, failed = 0;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (run_file(path) != 0)
            return -1;
        (*ran)++;
        return 0;
    }
    n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char sub[4096];

        if (!failed && strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
            if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name) >=
                    sizeof(sub) ||
                run_path(sub, ran) != 0)
                failed = 1;
        }
        free(names[i]);
    }
    free(names);
    return failed ? -1 : 0;
}

int main(int argc, char **argv)
{
    unsigned ran = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL)
        (void)LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        if (run_path(argv[i], &ran) != 0)
            return 1;
    if (ran == 0) {
        fprintf(stderr, "replay: no input in %s\n", argv[1]);
        return 1;
    }
    fprintf(stderr, "replay: %u inputs run\n", ran);
    return 0;
}
