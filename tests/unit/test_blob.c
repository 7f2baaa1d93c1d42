/*
 * The blob store's conformance suite (server/store/blob.h): every case runs against the data
 * directory (blob_dir.c) and the database (blob_db.c) on SQLite as unit.blob, and against the
 * database on a real PostgreSQL as unit.blob_pg (tests/tools/pg run; store_target.h): puts and
 * what a reader sees of them, a put aborted or killed with -9 leaving nothing visible (and the
 * sweep removing its leftovers), appends, ranges across chunk boundaries, names, and a 64 MiB blob
 * written and read back with bounded memory.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/blob.h"
#include "store_target.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

struct fx {
    struct rt_target t;
    rp_store_t *s;
    rp_blobs_t *b;
    rp_blobs_kind_t kind;
};

static int setup_kind(void **state, rp_blobs_kind_t kind)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL || rt_target_make(&f->t) != 0 || rt_store_open(&f->t, &f->s) != RP_OK)
        return -1;
    f->kind = kind;
    if (rp_blobs_open(kind, f->t.dir, f->s, &f->b) != RP_OK)
        return -1;
    *state = f;
    return 0;
}

static int setup_dir(void **state)
{
    return setup_kind(state, RP_BLOBS_DIR);
}

static int setup_db(void **state)
{
    return setup_kind(state, RP_BLOBS_DATABASE);
}

static int teardown(void **state)
{
    struct fx *f = *state;

    rp_blobs_close(f->b);
    rp_store_close(f->s);
    rt_target_remove(&f->t);
    free(f);
    return 0;
}

/* The directory backend does not depend on the database's engine: run once, on SQLite's pass. */
#define DIR_ONCE(f)                                                                                \
    do {                                                                                           \
        if ((f)->kind == RP_BLOBS_DIR && rt_pg_uri() != NULL)                                      \
            skip();                                                                                \
    } while (0)

/* Deterministic bytes: byte i of a blob with seed s. */
static uint8_t byte_at(uint32_t seed, uint64_t i)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;

    x ^= x >> 29;
    return (uint8_t)(x * 0xbf58476d1ce4e5b9ull >> 56);
}

static void fill(uint8_t *buf, size_t len, uint32_t seed, uint64_t off)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = byte_at(seed, off + i);
}

static void put(rp_blobs_t *b, const char *name, uint64_t size, uint32_t seed)
{
    static uint8_t buf[100000]; /* not a divisor of the chunk: writes straddle its rows */
    rp_blob_writer_t *w;

    assert_int_equal(rp_blob_put_begin(b, name, &w), RP_OK);
    for (uint64_t off = 0; off < size; off += sizeof(buf)) {
        size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
        fill(buf, n, seed, off);
        assert_int_equal(rp_blob_put_write(w, buf, n), RP_OK);
    }
    assert_int_equal(rp_blob_put_commit(w), RP_OK);
}

/* The blob holds size bytes of seed: read back in pieces of step bytes. */
static void check(rp_blobs_t *b, const char *name, uint64_t size, uint32_t seed, size_t step)
{
    uint8_t *got = malloc(step), *want = malloc(step);
    rp_blob_reader_t *r;
    uint64_t n = 0;

    assert_non_null(got);
    assert_non_null(want);
    assert_int_equal(rp_blob_open(b, name, &r, &n), RP_OK);
    assert_int_equal(n, size);
    for (uint64_t off = 0; off < size; off += step) {
        size_t len = size - off < step ? (size_t)(size - off) : step;
        assert_int_equal(rp_blob_read_all(r, off, got, len), RP_OK);
        fill(want, len, seed, off);
        assert_memory_equal(got, want, len);
    }
    rp_blob_close(r);
    free(got);
    free(want);
}

static void blob_put_read_replace(void **state)
{
    struct fx *f = *state;
    uint64_t size = 0;

    DIR_ONCE(f);
    assert_int_equal(rp_blob_stat(f->b, "images/a1", &size), RP_ERR_NOT_FOUND);
    put(f->b, "images/a1", 600000, 1);
    assert_int_equal(rp_blob_stat(f->b, "images/a1", &size), RP_OK);
    assert_int_equal(size, 600000);
    check(f->b, "images/a1", 600000, 1, 65536);
    /* an empty blob is a blob */
    put(f->b, "deltas/empty.zst", 0, 2);
    assert_int_equal(rp_blob_stat(f->b, "deltas/empty.zst", &size), RP_OK);
    assert_int_equal(size, 0);
    /* a commit onto a name that holds a blob keeps that blob: the newcomer is dropped */
    put(f->b, "images/a1", 1000, 3);
    check(f->b, "images/a1", 600000, 1, 65536);
    /* rename: the blob under its new name, none under the old */
    put(f->b, "uploads/u_1", 300000, 4);
    assert_int_equal(rp_blob_rename(f->b, "uploads/u_1", "images/a2"), RP_OK);
    assert_int_equal(rp_blob_stat(f->b, "uploads/u_1", &size), RP_ERR_NOT_FOUND);
    check(f->b, "images/a2", 300000, 4, 300000);
    assert_int_equal(rp_blob_rename(f->b, "uploads/u_1", "images/a3"), RP_ERR_NOT_FOUND);
    /* ... and onto a name that holds a blob, which keeps it: the renamed one is dropped */
    put(f->b, "uploads/u_2", 5000, 5);
    assert_int_equal(rp_blob_rename(f->b, "uploads/u_2", "images/a1"), RP_OK);
    assert_int_equal(rp_blob_stat(f->b, "uploads/u_2", &size), RP_ERR_NOT_FOUND);
    check(f->b, "images/a1", 600000, 1, 65536);
    assert_int_equal(rp_blob_remove(f->b, "images/a2"), RP_OK);
    /* remove */
    assert_int_equal(rp_blob_remove(f->b, "images/a1"), RP_OK);
    assert_int_equal(rp_blob_stat(f->b, "images/a1", &size), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_blob_remove(f->b, "images/a1"), RP_ERR_NOT_FOUND);
}

/*
 * One tenant's download of an image in progress while another tenant uploads the same bytes
 * (the same content-addressed name): the upload is put and renamed onto the image's name, and
 * the download reads on to its end. (The database once replaced the name's blob, deleting the
 * chunks under the reader.)
 */
static void blob_reader_across_identical_put(void **state)
{
    struct fx *f = *state;
    const uint64_t size = 3 * RP_BLOB_CHUNK + 999;
    uint8_t *got = malloc(RP_BLOB_CHUNK), *want = malloc(RP_BLOB_CHUNK);
    rp_blob_reader_t *r;
    uint64_t n = 0;

    DIR_ONCE(f);
    assert_non_null(got);
    assert_non_null(want);
    put(f->b, "images/same", size, 7);
    assert_int_equal(rp_blob_open(f->b, "images/same", &r, &n), RP_OK);
    assert_int_equal(rp_blob_read_all(r, 0, got, RP_BLOB_CHUNK), RP_OK);
    /* the other tenant's upload of the same bytes, renamed onto the name; and a put of it */
    put(f->b, "uploads/u_other", size, 7);
    assert_int_equal(rp_blob_rename(f->b, "uploads/u_other", "images/same"), RP_OK);
    put(f->b, "images/same", size, 7);
    for (uint64_t off = RP_BLOB_CHUNK; off < size; off += RP_BLOB_CHUNK) {
        size_t len = size - off < RP_BLOB_CHUNK ? (size_t)(size - off) : RP_BLOB_CHUNK;
        assert_int_equal(rp_blob_read_all(r, off, got, len), RP_OK);
        fill(want, len, 7, off);
        assert_memory_equal(got, want, len);
    }
    rp_blob_close(r);
    check(f->b, "images/same", size, 7, RP_BLOB_CHUNK);
    free(got);
    free(want);
}

struct seen {
    char names[8][RP_BLOB_NAME_MAX + 1];
    uint64_t sizes[8];
    int n;
};

static rp_err_t see(void *ctx, const char *name, uint64_t size)
{
    struct seen *s = ctx;

    assert_true(s->n < 8);
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
    s->sizes[s->n++] = size;
    return RP_OK;
}

static bool saw(const struct seen *s, const char *name, uint64_t size)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return s->sizes[i] == size;
    return false;
}

static rp_err_t count(void *ctx, const char *name, uint64_t size)
{
    (void)name, (void)size;
    (*(unsigned *)ctx)++;
    return RP_OK;
}

/* A listing names each committed blob of a namespace, and nothing of a put not committed. */
static void blob_list(void **state)
{
    struct fx *f = *state;
    rp_blob_writer_t *w;
    struct seen s = {0};

    DIR_ONCE(f);
    assert_int_equal(rp_blobs_list(f->b, "images", see, &s), RP_OK);
    assert_int_equal(s.n, 0);
    put(f->b, "images/i1", 10, 1);
    put(f->b, "images/i2", 0, 2);
    put(f->b, "deltas/i1-i2.zst", 20, 3);
    assert_int_equal(rp_blob_append(f->b, "uploads/u_9", 0, "abc", 3), RP_OK);
    assert_int_equal(rp_blob_put_begin(f->b, "images/i3", &w), RP_OK);
    assert_int_equal(rp_blob_put_write(w, "xyz", 3), RP_OK);
    assert_int_equal(rp_blobs_list(f->b, "images", see, &s), RP_OK);
    assert_int_equal(s.n, 2);
    assert_true(saw(&s, "images/i1", 10));
    assert_true(saw(&s, "images/i2", 0));
    s.n = 0;
    assert_int_equal(rp_blobs_list(f->b, "uploads", see, &s), RP_OK);
    assert_int_equal(s.n, 1);
    assert_true(saw(&s, "uploads/u_9", 3));
    rp_blob_put_abort(w);
    /* more than a page of the database's listing, each once */
    for (int i = 0; i < 300; i++) {
        char name[32];
        snprintf(name, sizeof(name), "deltas/p%03d", i);
        put(f->b, name, 1, (uint32_t)i);
    }
    {
        unsigned n = 0;
        assert_int_equal(rp_blobs_list(f->b, "deltas", count, &n), RP_OK);
        assert_int_equal(n, 301);
    }
}

static int setup_both(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL || rt_target_make(&f->t) != 0 || rt_store_open(&f->t, &f->s) != RP_OK ||
        rp_blobs_open(RP_BLOBS_DIR, f->t.dir, f->s, &f->b) != RP_OK)
        return -1;
    f->kind = RP_BLOBS_DIR;
    *state = f;
    return 0;
}

/*
 * rampart-server blobs move, both ways: every blob moves, its bytes intact; the check at start
 * counts what the other store holds that this one does not; a move killed after a copy and
 * before its remove (the blob in both) finishes when run again, and a second run does nothing.
 */
static void blob_move(void **state)
{
    struct fx *f = *state;
    rp_blobs_t *db = NULL;
    char first[RP_BLOB_NAME_MAX + 1];
    unsigned moved = 0, had = 0, missing = 0;
    uint64_t n;

    assert_int_equal(rp_blobs_open(RP_BLOBS_DATABASE, NULL, f->s, &db), RP_OK);
    put(f->b, "images/m1", 2 * RP_BLOB_CHUNK + 5, 1);
    put(f->b, "images/m2", 77, 2);
    put(f->b, "deltas/m1-m2.zst", 1000, 3);
    assert_int_equal(rp_blob_append(f->b, "uploads/u_m", 0, "abc", 3), RP_OK);
    assert_int_equal(rp_blobs_missing(f->b, db, &missing, first), RP_OK);
    assert_int_equal(missing, 4);
    assert_true(rp_blob_name_valid(first));
    /* killed after copying m2, before removing it from the directory */
    put(db, "images/m2", 77, 2);
    assert_int_equal(rp_blobs_move(f->b, db, &moved, &had), RP_OK);
    assert_int_equal(moved, 3);
    assert_int_equal(had, 1);
    assert_int_equal(rp_blobs_missing(f->b, db, &missing, NULL), RP_OK);
    assert_int_equal(missing, 0);
    assert_int_equal(rp_blob_stat(f->b, "images/m1", &n), RP_ERR_NOT_FOUND);
    check(db, "images/m1", 2 * RP_BLOB_CHUNK + 5, 1, 100000);
    check(db, "images/m2", 77, 2, 77);
    check(db, "deltas/m1-m2.zst", 1000, 3, 1000);
    {
        rp_blob_reader_t *r;
        char abc[3];
        assert_int_equal(rp_blob_open(db, "uploads/u_m", &r, &n), RP_OK);
        assert_int_equal(n, 3);
        assert_int_equal(rp_blob_read_all(r, 0, abc, 3), RP_OK);
        assert_memory_equal(abc, "abc", 3);
        rp_blob_close(r);
    }
    assert_int_equal(rp_blobs_move(f->b, db, &moved, &had), RP_OK);
    assert_int_equal(moved + had, 0);
    /* and back */
    assert_int_equal(rp_blobs_missing(db, f->b, &missing, NULL), RP_OK);
    assert_int_equal(missing, 4);
    assert_int_equal(rp_blobs_move(db, f->b, &moved, &had), RP_OK);
    assert_int_equal(moved, 4);
    check(f->b, "images/m1", 2 * RP_BLOB_CHUNK + 5, 1, 100000);
    assert_int_equal(rp_blob_stat(db, "images/m1", &n), RP_ERR_NOT_FOUND);
    rp_blobs_close(db);
}

static void blob_ranges(void **state)
{
    static const uint64_t at[] = {
        0, 1, RP_BLOB_CHUNK - 1, RP_BLOB_CHUNK, RP_BLOB_CHUNK + 1, 2 * RP_BLOB_CHUNK - 7, 700000};
    static const size_t len[] = {1, 2, 4096, RP_BLOB_CHUNK, RP_BLOB_CHUNK + 3, 600000};
    struct fx *f = *state;
    const uint64_t size = 3 * RP_BLOB_CHUNK + 12345;
    uint8_t *got, *want;
    rp_blob_reader_t *r;
    uint64_t n;
    size_t g;

    DIR_ONCE(f);
    got = malloc(700000);
    want = malloc(700000);
    assert_true(got != NULL && want != NULL);
    put(f->b, "images/r", size, 7);
    assert_int_equal(rp_blob_open(f->b, "images/r", &r, &n), RP_OK);
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        for (size_t k = 0; k < sizeof(len) / sizeof(len[0]); k++) {
            assert_int_equal(rp_blob_read(r, at[i], got, len[k], &g), RP_OK);
            assert_int_equal(g, at[i] + len[k] <= size ? len[k] : size - at[i]);
            fill(want, g, 7, at[i]);
            assert_memory_equal(got, want, g);
        }
    }
    /* the end: short, then nothing */
    assert_int_equal(rp_blob_read(r, size - 10, got, 100, &g), RP_OK);
    assert_int_equal(g, 10);
    assert_int_equal(rp_blob_read(r, size, got, 100, &g), RP_OK);
    assert_int_equal(g, 0);
    assert_int_equal(rp_blob_read(r, size + 5000, got, 100, &g), RP_OK);
    assert_int_equal(g, 0);
    assert_int_equal(rp_blob_read_all(r, size - 10, got, 100), RP_ERR_TRUNCATED);
    rp_blob_close(r);
    free(got);
    free(want);
}

static void blob_abort_leaves_nothing(void **state)
{
    struct fx *f = *state;
    uint8_t buf[4096];
    rp_blob_writer_t *w;
    uint64_t size;
    unsigned n = 9;

    DIR_ONCE(f);
    fill(buf, sizeof(buf), 5, 0);
    /* a new name: nothing at all afterwards */
    assert_int_equal(rp_blob_put_begin(f->b, "images/x", &w), RP_OK);
    for (int i = 0; i < 100; i++)
        assert_int_equal(rp_blob_put_write(w, buf, sizeof(buf)), RP_OK);
    assert_int_equal(rp_blob_stat(f->b, "images/x", &size), RP_ERR_NOT_FOUND);
    rp_blob_put_abort(w);
    assert_int_equal(rp_blob_stat(f->b, "images/x", &size), RP_ERR_NOT_FOUND);
    /* an existing name: the old blob, untouched */
    put(f->b, "images/x", 5000, 6);
    assert_int_equal(rp_blob_put_begin(f->b, "images/x", &w), RP_OK);
    assert_int_equal(rp_blob_put_write(w, buf, sizeof(buf)), RP_OK);
    check(f->b, "images/x", 5000, 6, 5000); /* not visible before its commit */
    rp_blob_put_abort(w);
    check(f->b, "images/x", 5000, 6, 5000);
    /* an abort leaves nothing for the sweep either */
    assert_int_equal(rp_blobs_sweep(f->b, (int64_t)time(NULL) + 10, &n), RP_OK);
    assert_int_equal(n, 0);
}

/* A process killed with -9 in the middle of a put: nothing under the name, the old blob whole;
 * what it wrote is swept once old enough, and not before. */
static void blob_killed_mid_put(void **state)
{
    struct fx *f = *state;
    unsigned n = 9;
    uint64_t size;
    int status;
    pid_t pid;

    DIR_ONCE(f);
    put(f->b, "images/k", 70000, 8);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static uint8_t buf[RP_BLOB_CHUNK];
        rp_store_t *s = NULL;
        rp_blobs_t *b = NULL;
        rp_blob_writer_t *w;
        if (rt_store_open(&f->t, &s) != RP_OK || rp_blobs_open(f->kind, f->t.dir, s, &b) != RP_OK ||
            rp_blob_put_begin(b, "images/k", &w) != RP_OK)
            _exit(2);
        fill(buf, sizeof(buf), 9, 0);
        for (int i = 0; i < 3; i++) /* three chunks written (and committed rows, in a database) */
            if (rp_blob_put_write(w, buf, sizeof(buf)) != RP_OK)
                _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    check(f->b, "images/k", 70000, 8, 70000);
    assert_int_equal(rp_blobs_sweep(f->b, (int64_t)time(NULL) - 3600, &n), RP_OK);
    assert_int_equal(n, 0); /* younger than the cut: it could be a put still running */
    assert_int_equal(rp_blobs_sweep(f->b, (int64_t)time(NULL) + 10, &n), RP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rp_blobs_sweep(f->b, (int64_t)time(NULL) + 10, &n), RP_OK);
    assert_int_equal(n, 0);
    assert_int_equal(rp_blob_stat(f->b, "images/k", &size), RP_OK);
    assert_int_equal(size, 70000);
}

static void blob_append(void **state)
{
    static const size_t pieces[] = {100000, 300000, 1, RP_BLOB_CHUNK, 2 * RP_BLOB_CHUNK + 5, 77};
    struct fx *f = *state;
    uint8_t *buf;
    uint64_t at = 0, size = 0;

    DIR_ONCE(f);
    assert_non_null(buf = malloc(2 * RP_BLOB_CHUNK + 5));
    fill(buf, 10, 11, 0);
    /* a missing blob is empty: an append elsewhere than 0 lost a race */
    assert_int_equal(rp_blob_append(f->b, "uploads/u_a", 5, buf, 10), RP_ERR_BUSY);
    assert_int_equal(rp_blob_stat(f->b, "uploads/u_a", &size), RP_ERR_NOT_FOUND);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        fill(buf, pieces[i], 11, at);
        assert_int_equal(rp_blob_append(f->b, "uploads/u_a", at, buf, pieces[i]), RP_OK);
        at += pieces[i];
        assert_int_equal(rp_blob_stat(f->b, "uploads/u_a", &size), RP_OK);
        assert_int_equal(size, at); /* visible as it grows */
        /* again at the same place: another request was first */
        assert_int_equal(rp_blob_append(f->b, "uploads/u_a", at - 1, buf, 1), RP_ERR_BUSY);
    }
    check(f->b, "uploads/u_a", at, 11, 4093);
    check(f->b, "uploads/u_a", at, 11, RP_BLOB_CHUNK);
    /* what was appended becomes an image by its name, whole */
    assert_int_equal(rp_blob_rename(f->b, "uploads/u_a", "images/from_upload"), RP_OK);
    check(f->b, "images/from_upload", at, 11, 1000000);
    free(buf);
}

static void blob_names(void **state)
{
    static const char *const bad[] = {"",
                                      "images",
                                      "/x",
                                      "images/",
                                      "Images/x",
                                      "images/.x",
                                      "images/a/b",
                                      "images/a b",
                                      "images/x.tmpABCDEF",
                                      "images/..",
                                      "a23456789012345678/x"};
    struct fx *f = *state;
    rp_blob_writer_t *w;
    uint64_t size;

    DIR_ONCE(f);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(rp_blob_name_valid(bad[i]));
        assert_int_equal(rp_blob_put_begin(f->b, bad[i], &w), RP_ERR_INVALID_ARG);
        assert_int_equal(rp_blob_stat(f->b, bad[i], &size), RP_ERR_INVALID_ARG);
    }
    assert_true(rp_blob_name_valid("deltas/0123abc-4567def.zst"));
    assert_true(rp_blob_name_valid("uploads/u_0123456789abcdef01234567"));
}

static void blob_hash_and_copy(void **state)
{
    struct fx *f = *state;
    char hex[65], path[128], cmd[256], out[80] = {0};
    FILE *p;

    DIR_ONCE(f);
    put(f->b, "images/h", 700001, 12);
    assert_int_equal(rp_blob_sha256_hex(f->b, "images/h", hex), RP_OK);
    snprintf(path, sizeof(path), "%s/copy", f->t.dir);
    assert_int_equal(rp_blob_copy_to_file(f->b, "images/h", path, 0600), RP_OK);
    snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
    assert_non_null(p = popen(cmd, "r"));
    assert_non_null(fgets(out, sizeof(out), p));
    pclose(p);
    assert_memory_equal(out, hex, 64);
}

/* A line of /proc/self/status ("VmHWM:", "VmRSS:") in KiB. */
static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, strlen(key)) == 0)
            v = strtol(line + strlen(key), NULL, 10);
    if (f != NULL)
        fclose(f);
    return v;
}

/* 64 MiB in and out, a piece at a time: the process's peak memory grows by far less. */
static void blob_64mib_bounded(void **state)
{
    struct fx *f = *state;
    const uint64_t size = 64ull * 1024 * 1024;
    FILE *reset;
    long before;

    DIR_ONCE(f);
    /* the peak starts again from what the process holds now (Linux 4.0: clear_refs 5) */
    assert_non_null(reset = fopen("/proc/self/clear_refs", "w"));
    assert_true(fputs("5", reset) >= 0);
    assert_int_equal(fclose(reset), 0);
    before = status_kib("VmRSS:");
    assert_true(before > 0);
    put(f->b, "images/big", size, 13);
    check(f->b, "images/big", size, 13, 1024 * 1024);
#ifndef UNDER_ASAN
    /* (ASan keeps freed memory in quarantine: its peak says nothing of the store's) */
    printf("peak memory grew by %ld KiB for a 64 MiB blob\n", status_kib("VmHWM:") - before);
    assert_true(status_kib("VmHWM:") - before < 24 * 1024);
#endif
}

#define BOTH(t)                                                                                    \
    cmocka_unit_test_setup_teardown(t, setup_dir, teardown),                                       \
        cmocka_unit_test_setup_teardown(t, setup_db, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(blob_put_read_replace),
        BOTH(blob_ranges),
        BOTH(blob_abort_leaves_nothing),
        BOTH(blob_killed_mid_put),
        BOTH(blob_append),
        BOTH(blob_names),
        BOTH(blob_hash_and_copy),
        BOTH(blob_64mib_bounded),
        BOTH(blob_reader_across_identical_put),
        BOTH(blob_list),
        cmocka_unit_test_setup_teardown(blob_move, setup_both, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
