/*
 * What the device's downloads directory keeps (device/agent/update.c, rp_update_sweep_dir):
 * exactly what a check may resume, the partial image of each current target and its partial
 * delta; the partials of images no target names, a delta rebuild's temporary and any other file
 * go; a link goes without its target being touched; a directory stays; with no targets yet (the
 * agent's start), every image-shaped partial stays and the rest goes. And the temporaries of
 * rp_atomic_begin a cut left (lib/src/file.c, rp_atomic_sweep): those of the named file only; at
 * a start, those of each component's state (rp_components_sweep).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rampart/apptree.h"
#include "rampart/file.h"
#include "rampart/log.h"
#include "slots.h"
#include "update.h"

#define CURRENT "1111111111111111111111111111111111111111111111111111111111111111"
#define OLD "2222222222222222222222222222222222222222222222222222222222222222"

struct dir {
    char path[64], outside[96];
    int fd;
};

static void put(int dir, const char *name)
{
    int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "partial", 7), 7);
    close(fd);
}

static bool has(int dir, const char *name)
{
    struct stat sb;

    return fstatat(dir, name, &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

static int setup(void **state)
{
    struct dir *d = calloc(1, sizeof(*d));

    rp_log_init("test_update_sweep", RP_LOG_ERROR);
    if (d == NULL)
        return -1;
    snprintf(d->path, sizeof(d->path), "/tmp/rp-sweep.XXXXXX");
    if (mkdtemp(d->path) == NULL)
        return -1;
    snprintf(d->outside, sizeof(d->outside), "%s.outside", d->path);
    d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *state = d;
    return d->fd >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    struct dir *d = *state;
    rp_err_t err = rp_apptree_remove(d->path);

    close(d->fd);
    (void)unlink(d->outside);
    free(d);
    return err == RP_OK ? 0 : -1;
}

/* What a kill -9 and a later deployment leave, as found by review r15 (L7). */
static void leftovers(const struct dir *d)
{
    int fd = open(d->outside, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    close(fd);
    put(d->fd, CURRENT);
    put(d->fd, CURRENT ".delta");
    put(d->fd, OLD); /* an image no target names now */
    put(d->fd, OLD ".delta");
    put(d->fd, CURRENT ".tmpAb12Cd"); /* a delta's rebuild, cut before its rename */
    put(d->fd, CURRENT "0");          /* not an image ID */
    put(d->fd, "notes");
    assert_int_equal(symlinkat(d->outside, d->fd, "link"), 0);
    assert_int_equal(symlinkat("/nonexistent", d->fd, CURRENT "x"), 0);
    assert_int_equal(mkdirat(d->fd, "sub", 0700), 0);
}

static void test_targets_keep_their_partials_only(void **state)
{
    struct dir *d = *state;
    rp_md_targets_t *t = calloc(1, sizeof(*t));
    struct stat sb;
    int removed = -1;

    assert_non_null(t);
    leftovers(d);
    t->ntargets = 1;
    memcpy(t->targets[0].image, CURRENT, sizeof(CURRENT));
    assert_int_equal(rp_update_sweep_dir(d->fd, t, &removed), RP_OK);
    assert_int_equal(removed, 7);
    assert_true(has(d->fd, CURRENT));
    assert_true(has(d->fd, CURRENT ".delta"));
    assert_true(has(d->fd, "sub")); /* a directory: said, left */
    assert_false(has(d->fd, OLD));
    assert_false(has(d->fd, OLD ".delta"));
    assert_false(has(d->fd, CURRENT ".tmpAb12Cd"));
    assert_false(has(d->fd, CURRENT "0"));
    assert_false(has(d->fd, "notes"));
    assert_false(has(d->fd, "link"));
    assert_false(has(d->fd, CURRENT "x"));
    assert_int_equal(stat(d->outside, &sb), 0); /* the link went, never what it named */
    /* Again: nothing more to remove. */
    assert_int_equal(rp_update_sweep_dir(d->fd, t, &removed), RP_OK);
    assert_int_equal(removed, 0);
    /* Targets that name nothing of it: every partial goes. */
    t->ntargets = 0;
    assert_int_equal(rp_update_sweep_dir(d->fd, t, &removed), RP_OK);
    assert_int_equal(removed, 2);
    assert_false(has(d->fd, CURRENT));
    assert_true(has(d->fd, "sub"));
    free(t);
}

static void test_start_keeps_what_may_resume(void **state)
{
    struct dir *d = *state;
    int removed = -1;

    leftovers(d);
    assert_int_equal(rp_update_sweep_dir(d->fd, NULL, &removed), RP_OK);
    assert_int_equal(removed, 5);
    assert_true(has(d->fd, CURRENT));
    assert_true(has(d->fd, CURRENT ".delta"));
    assert_true(has(d->fd, OLD)); /* until the next targets say whether it is wanted */
    assert_true(has(d->fd, OLD ".delta"));
    assert_false(has(d->fd, CURRENT ".tmpAb12Cd"));
    assert_false(has(d->fd, CURRENT "0"));
    assert_false(has(d->fd, "notes"));
    assert_false(has(d->fd, "link"));
    assert_false(has(d->fd, CURRENT "x"));
}

/* Bounded: a directory of many entries is swept RP_SWEEP_MAX at a time. */
static void test_bounded(void **state)
{
    struct dir *d = *state;
    int removed = -1, total = 0;
    char name[32];

    for (int i = 0; i < RP_SWEEP_MAX + 10; i++) {
        snprintf(name, sizeof(name), "junk%d", i);
        put(d->fd, name);
    }
    assert_int_equal(rp_update_sweep_dir(d->fd, NULL, &removed), RP_OK);
    assert_true(removed > 0 && removed <= RP_SWEEP_MAX);
    total += removed;
    assert_int_equal(rp_update_sweep_dir(d->fd, NULL, &removed), RP_OK);
    total += removed;
    assert_int_equal(total, RP_SWEEP_MAX + 10);
}

/* A temporary rp_atomic_begin made and a cut left (no commit, no abort: a kill -9) goes; so does
 * a link with a temporary's name (never what it names); lookalikes, another file's temporaries
 * and the file itself stay. */
static void test_atomic_temporaries(void **state)
{
    struct dir *d = *state;
    rp_atomic_file_t f;
    char path[128];
    struct stat sb;
    int removed = -1;

    snprintf(path, sizeof(path), "%s/targets.json", d->path);
    assert_int_equal(rp_write_file_atomic(path, "{}", 2, 0600, 0), RP_OK);
    assert_int_equal(rp_atomic_begin(&f, path, 0600, 0), RP_OK);
    close(f.fd); /* the cut */
    assert_true(rp_atomic_is_temporary(strrchr(f.tmp, '/') + 1, "targets.json"));
    leftovers(d); /* for the outside file */
    assert_int_equal(symlinkat(d->outside, d->fd, "targets.json.tmpQ1w2E3"), 0);
    put(d->fd, "targets.json.tmp");        /* no random part */
    put(d->fd, "targets.json.tmpAB");      /* too short */
    put(d->fd, "targets.json.tmpAB-DEF");  /* not mkostemp's */
    put(d->fd, "targets.json.tmpABCDEFG"); /* too long */
    put(d->fd, "other.json.tmpABCDEF");    /* another file's */
    put(d->fd, "xtargets.json.tmpABCDEF");
    assert_false(rp_atomic_is_temporary("targets.json", "targets.json"));
    assert_int_equal(rp_atomic_sweep(d->fd, "targets.json", &removed), RP_OK);
    assert_int_equal(removed, 2);
    assert_false(has(d->fd, strrchr(f.tmp, '/') + 1));
    assert_false(has(d->fd, "targets.json.tmpQ1w2E3"));
    assert_int_equal(stat(d->outside, &sb), 0);
    assert_true(has(d->fd, "targets.json"));
    assert_true(has(d->fd, "targets.json.tmp"));
    assert_true(has(d->fd, "targets.json.tmpAB"));
    assert_true(has(d->fd, "targets.json.tmpAB-DEF"));
    assert_true(has(d->fd, "targets.json.tmpABCDEFG"));
    assert_true(has(d->fd, "other.json.tmpABCDEF"));
    assert_true(has(d->fd, "xtargets.json.tmpABCDEF"));
    assert_true(has(d->fd, CURRENT ".tmpAb12Cd")); /* the downloads' own sweep takes those */
}

/* At a start, what a cut left of each component's state goes (rp_components_sweep); a link in
 * S/components is not followed, and nothing but the state's temporaries is touched. */
static void test_components(void **state)
{
    struct dir *d = *state;
    int app, other;

    assert_int_equal(mkdirat(d->fd, "components", 0700), 0);
    assert_int_equal(mkdirat(d->fd, "components/app", 0700), 0);
    assert_int_equal(mkdirat(d->fd, "components/new", 0700), 0);
    assert_int_equal(mkdirat(d->fd, "elsewhere", 0700), 0);
    assert_int_equal(symlinkat("../elsewhere", d->fd, "components/linked"), 0);
    app = openat(d->fd, "components/app", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    other = openat(d->fd, "elsewhere", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(app >= 0 && other >= 0);
    for (int i = 0; i < 2; i++) {
        int in = i == 0 ? app : other;
        put(in, "state");
        put(in, "state.tmpAbC123");
        put(in, "a.img");
        put(in, "run.json.tmpAbC123");
    }
    put(d->fd, "components/new/state.tmpZz9Yy8"); /* its first state, cut */
    rp_components_sweep(d->path);
    assert_false(has(app, "state.tmpAbC123"));
    assert_true(has(app, "state"));
    assert_true(has(app, "a.img"));
    assert_true(has(app, "run.json.tmpAbC123"));
    assert_false(has(d->fd, "components/new/state.tmpZz9Yy8"));
    assert_true(has(other, "state.tmpAbC123")); /* through a link: no */
    close(app);
    close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_targets_keep_their_partials_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_keeps_what_may_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_temporaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_components, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
