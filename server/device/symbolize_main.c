/*
 * rampart-symbolize: reads one uploaded debug file for the service, confined (symbolize.h has
 * the protocol). The file is untrusted (a tenant uploads it) and libelf/libdw are large parsers,
 * so they run here, in a short-lived process the service starts per question: limits first
 * (CPU seconds, address space, no file written, no new descriptor), then a seccomp allow-list of
 * what reading a descriptor and answering on stdout needs (no open, no socket, no exec), then
 * the file. Whatever the file does to libdw, the worst is this process dying, which the service
 * takes as "not symbolicated".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <elfutils/debuginfod.h>
#include <jansson.h>
#include <libelf.h>

#include "rampart/seccomp.h"
#include "symbolize.h"

#ifdef SANITIZER_BUILD
#include <sanitizer/lsan_interface.h>
#endif

#define FILE_FD 3
#define CPU_SECONDS 10
/* The file mapped, its sections inflated, libdw's tables: well past what a bound file needs. */
#define AS_MAX (RP_SYMBOLS_MAX + 2ull * RP_SYMBOLS_UNPACKED_MAX + 1024ull * 1024 * 1024)

// clang-format off
static const char *const allowed[] = {
    "read", "pread64", "readv", "write", "writev", "lseek", "fstat", "newfstatat", "statx",
    "close", "brk", "mmap", "munmap", "mremap", "madvise", "mprotect", "futex", "getrandom",
    "rt_sigreturn", "exit", "exit_group", "clock_gettime", "fcntl", "getpid", "gettid",
    "sysinfo", /* qsort() sizes its buffer by it */ "tgkill", "rt_sigprocmask", /* abort() */
};
#ifndef SANITIZER_BUILD
/* Looking for other files (a debuglink, a path made absolute, a dlopen): told no, not killed. */
static const char *const refused[] = {"openat", "open", "readlink", "readlinkat", "getcwd",
                                      "stat", "lstat", "access", "faccessat", "faccessat2"};
#endif
// clang-format on

static int answer(json_t *o, int status)
{
    if (o == NULL || json_dumpf(o, stdout, JSON_COMPACT) != 0 || fflush(stdout) != 0)
        status = 2;
    json_decref(o);
    return status;
}

static int refuse(const char *why)
{
    return answer(json_pack("{s:s}", "error", why), 1);
}

static bool limit(int res, rlim_t n)
{
    struct rlimit rl = {n, n};
    return setrlimit(res, &rl) == 0;
}

static bool confine(void)
{
    rp_seccomp_t f;

    /* No descriptor past the file's: nothing new is opened, whatever the filter allows. */
    if (!limit(RLIMIT_CPU, CPU_SECONDS) || !limit(RLIMIT_FSIZE, 0) || !limit(RLIMIT_CORE, 0))
        return false;
#ifndef SANITIZER_BUILD /* ASan reserves terabytes of shadow, and opens files at exit */
    if (!limit(RLIMIT_AS, AS_MAX) || !limit(RLIMIT_NOFILE, FILE_FD + 1))
        return false;
#endif
    rp_seccomp_new(&f, SCMP_ACT_KILL_PROCESS, true, RP_SECCOMP_NAMES(allowed));
#ifndef SANITIZER_BUILD /* which reads /proc/self/maps at exit (rp_seccomp_load) */
    rp_seccomp_add(&f, SCMP_ACT_ERRNO(EACCES), RP_SECCOMP_NAMES(refused));
#endif
    return rp_seccomp_load(&f, "rampart-symbolize", NULL) == 0;
}

/* The offsets on stdin, one a line as 0x hex; false past RP_SYMBOLIZE_QUERIES_MAX or malformed. */
static bool read_offsets(uint64_t *offs, size_t *n)
{
    char line[64];

    *n = 0;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *end;
        if (*n == RP_SYMBOLIZE_QUERIES_MAX || strncmp(line, "0x", 2) != 0)
            return false;
        errno = 0;
        offs[*n] = strtoull(line + 2, &end, 16);
        if (errno != 0 || end == line + 2 || (*end != '\n' && *end != '\0'))
            return false;
        (*n)++;
    }
    return !ferror(stdin);
}

/* rampart-symbolize fetch HEX: libdebuginfod and libcurl only, no ELF read here (the service
 * checks what comes in a confined `check`). Bounded by the size the service gives
 * (DEBUGINFOD_MAXSIZE, also enforced here as it arrives, and as RLIMIT_FSIZE), by time
 * (DEBUGINFOD_TIMEOUT, DEBUGINFOD_MAXTIME, the service's deadline) and by CPU seconds. */
static long fetch_max;

static int fetch_progress(debuginfod_client *c, long got, long total)
{
    (void)c;
    return got > fetch_max || total > fetch_max; /* non-zero: stop */
}

static int fetch(const char *hex)
{
    const char *max = getenv(DEBUGINFOD_MAXSIZE_ENV_VAR);
    size_t n = strlen(hex);
    debuginfod_client *c;
    char *path = NULL;
    int fd, status;

    fetch_max = max != NULL ? strtol(max, NULL, 10) : 0;
    if (n < 2 || n > 2 * RP_REPORT_BUILD_ID_MAX || n % 2 != 0 ||
        strspn(hex, "0123456789abcdef") != n || fetch_max <= 0 ||
        (unsigned long long)fetch_max > RP_SYMBOLS_MAX)
        return refuse("fetch takes a build ID (lowercase hex) and DEBUGINFOD_MAXSIZE");
    if (!limit(RLIMIT_CPU, CPU_SECONDS) || !limit(RLIMIT_CORE, 0) ||
        !limit(RLIMIT_FSIZE, (rlim_t)fetch_max + 4096))
        return refuse("cannot limit rampart-symbolize");
#ifndef SANITIZER_BUILD
    if (!limit(RLIMIT_AS, AS_MAX))
        return refuse("cannot limit rampart-symbolize");
#endif
    if ((c = debuginfod_begin()) == NULL)
        return refuse("cannot start libdebuginfod");
    debuginfod_set_progressfn(c, fetch_progress);
#ifdef SANITIZER_BUILD
    __lsan_disable(); /* libdebuginfod's dprintf leaves glibc a stdio buffer: not a leak of ours */
#endif
    fd = debuginfod_find_debuginfo(c, (const unsigned char *)hex, 0, &path);
    debuginfod_end(c);
#ifdef SANITIZER_BUILD
    __lsan_enable();
#endif
    if (fd < 0) {
        free(path);
        return answer(json_pack("{s:s, s:b}", "error", strerror(-fd), "missing", fd == -ENOENT), 1);
    }
    close(fd);
    status = answer(json_pack("{s:s}", "path", path), 0);
    free(path);
    return status;
}

/* Test builds only: make this child misbehave as a hostile file could (server/device/symbols.c's tests:
 * a hang, a crash, an answer that is not the protocol's). */
static void test_hook(void)
{
#ifdef RP_SYMBOLIZE_TEST_HOOKS
    const char *t = getenv("RAMPART_SYMBOLIZE_TEST");
    if (t == NULL)
        return;
    if (strcmp(t, "hang") == 0)
        for (volatile unsigned long i = 0;; i++)
            ;
    if (strcmp(t, "crash") == 0)
        abort();
    if (strcmp(t, "garbage") == 0) {
        fputs("{\"frames\": [{\"function\": 7}]}", stdout);
        fflush(stdout);
        _exit(0);
    }
#endif
}

int main(int argc, char **argv)
{
    uint64_t offs[RP_SYMBOLIZE_QUERIES_MAX];
    rp_symbol_t sym[RP_SYMBOLIZE_QUERIES_MAX];
    char id[2 * RP_REPORT_BUILD_ID_MAX + 1];
    rp_symbolize_t *h;
    json_t *frames;
    size_t n = 0;
    bool lookup = argc == 2 && strcmp(argv[1], "lookup") == 0;

    if (argc == 3 && strcmp(argv[1], "fetch") == 0)
        return fetch(argv[2]);
    if (argc != 2 || (!lookup && strcmp(argv[1], "check") != 0)) {
        fprintf(stderr, "usage: rampart-symbolize check|lookup (the debug file on descriptor 3), "
                        "or fetch BUILD_ID (from DEBUGINFOD_URLS)\n");
        return 2;
    }
    (void)elf_version(EV_CURRENT); /* before the filter: nothing of it needs a file */
    if (!confine())
        return refuse("cannot confine rampart-symbolize");
    test_hook();
    if (lookup && !read_offsets(offs, &n))
        return refuse("the offsets are not one 0x hex number a line");
    if (!lookup)
        return rp_symbolize_build_id(FILE_FD, id) == RP_OK
                   ? answer(json_pack("{s:s}", "build_id", id), 0)
                   : refuse("not a debug file");
    if (rp_symbolize_open(FILE_FD, &h) != RP_OK)
        return refuse("not a debug file");
    rp_symbolize_lookup(h, offs, n, sym);
    rp_symbolize_close(h);
    frames = json_array();
    for (size_t i = 0; i < n; i++) {
        /* Names that are not UTF-8 (JSON cannot carry them) leave the frame unnamed. */
        json_t *fn = sym[i].function[0] != '\0' ? json_string(sym[i].function) : NULL;
        json_t *file = fn != NULL && sym[i].line > 0 ? json_string(sym[i].file) : NULL;
        json_t *f = fn == NULL     ? json_object()
                    : file == NULL ? json_pack("{s:o}", "function", fn)
                                   : json_pack("{s:o, s:o, s:i}", "function", fn, "file", file,
                                               "line", sym[i].line);
        if (f == NULL || json_array_append_new(frames, f) != 0)
            return refuse("cannot write the answer");
    }
    return answer(json_pack("{s:o}", "frames", frames), 0);
}
