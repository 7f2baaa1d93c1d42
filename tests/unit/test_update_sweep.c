/*
 * What the device's downloads directory keeps (device/agent/update.c, rp_update_sweep_dir):
 * exactly what a check may resume, the partial image of each current target and its partial
 * delta; the partials of images no target names, a delta rebuild's temporary and any other file
 * go; a link goes without its target being touched; a directory stays; with no targets yet (the
 * agent's start), every image-shaped partial stays and the rest goes.
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
#include "rampart/log.h"
#include "update.h"

#define CURRENT "1111111111111111111111111111111111111111111111111111111111111111"
#define OLD "2222222222222222222222222222222222222222222222222222222222222222"

struct dir {
    char path[64], outside[96];
    int fd;
};

static void put(const struct dir *d, const char *name)
{
    int fd = openat(d->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "partial", 7), 7);
    close(fd);
}

static bool has(const struct dir *d, const char *name)
{
    struct stat sb;

    return fstatat(d->fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0;
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
    put(d, CURRENT);
    put(d, CURRENT ".delta");
    put(d, OLD); /* an image no target names now */
    put(d, OLD ".delta");
    put(d, CURRENT ".tmpAb12Cd"); /* a delta's rebuild, cut before its rename */
    put(d, CURRENT "0");          /* not an image ID */
    put(d, "notes");
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
    assert_true(has(d, CURRENT));
    assert_true(has(d, CURRENT ".delta"));
    assert_true(has(d, "sub")); /* a directory: said, left */
    assert_false(has(d, OLD));
    assert_false(has(d, OLD ".delta"));
    assert_false(has(d, CURRENT ".tmpAb12Cd"));
    assert_false(has(d, CURRENT "0"));
    assert_false(has(d, "notes"));
    assert_false(has(d, "link"));
    assert_false(has(d, CURRENT "x"));
    assert_int_equal(stat(d->outside, &sb), 0); /* the link went, never what it named */
    /* Again: nothing more to remove. */
    assert_int_equal(rp_update_sweep_dir(d->fd, t, &removed), RP_OK);
    assert_int_equal(removed, 0);
    /* Targets that name nothing of it: every partial goes. */
    t->ntargets = 0;
    assert_int_equal(rp_update_sweep_dir(d->fd, t, &removed), RP_OK);
    assert_int_equal(removed, 2);
    assert_false(has(d, CURRENT));
    assert_true(has(d, "sub"));
    free(t);
}

static void test_start_keeps_what_may_resume(void **state)
{
    struct dir *d = *state;
    int removed = -1;

    leftovers(d);
    assert_int_equal(rp_update_sweep_dir(d->fd, NULL, &removed), RP_OK);
    assert_int_equal(removed, 5);
    assert_true(has(d, CURRENT));
    assert_true(has(d, CURRENT ".delta"));
    assert_true(has(d, OLD)); /* until the next targets say whether it is wanted */
    assert_true(has(d, OLD ".delta"));
    assert_false(has(d, CURRENT ".tmpAb12Cd"));
    assert_false(has(d, CURRENT "0"));
    assert_false(has(d, "notes"));
    assert_false(has(d, "link"));
    assert_false(has(d, CURRENT "x"));
}

/* Bounded: a directory of many entries is swept RP_UPDATE_SWEEP_MAX at a time. */
static void test_bounded(void **state)
{
    struct dir *d = *state;
    int removed = -1, total = 0;
    char name[32];

    for (int i = 0; i < RP_UPDATE_SWEEP_MAX + 10; i++) {
        snprintf(name, sizeof(name), "junk%d", i);
        put(d, name);
    }
    assert_int_equal(rp_update_sweep_dir(d->fd, NULL, &removed), RP_OK);
    assert_true(removed > 0 && removed <= RP_UPDATE_SWEEP_MAX);
    total += removed;
    assert_int_equal(rp_update_sweep_dir(d->fd, NULL, &removed), RP_OK);
    total += removed;
    assert_int_equal(total, RP_UPDATE_SWEEP_MAX + 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_targets_keep_their_partials_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_keeps_what_may_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
