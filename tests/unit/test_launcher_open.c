/*
 * Unit test: the monitor's check of rampart-launcher before it opens it once
 * (rp_compartment_launcher_open, compartment.c): the file and its directory owned by root (or
 * whoever runs this) and writable by that owner alone. Refusals first: a success is kept for the
 * process's life.
 */
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

#include "compartment.h"

static char dir[64], file[128];

static void make(mode_t dmode, mode_t fmode)
{
    FILE *f;
    assert_int_equal(chmod(dir, dmode), 0);
    f = fopen(file, "w");
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(file, fmode), 0);
}

static void refused_then_opened(void **state)
{
    char why[512] = "";
    (void)state;

    snprintf(dir, sizeof(dir), "/tmp/rp-launcher.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/rampart-launcher", dir);
    /* its directory writable by others (as /tmp is): anyone could have put it there */
    make(0777, 0755);
    assert_int_equal(rp_compartment_launcher_open(file, why, sizeof(why)), RP_ERR_DENIED);
    assert_non_null(strstr(why, "its directory is not root's, writable by it alone"));
    make(01777, 0755);
    assert_int_equal(rp_compartment_launcher_open(file, why, sizeof(why)), RP_ERR_DENIED);
    /* ... by its group */
    make(0775, 0755);
    assert_int_equal(rp_compartment_launcher_open(file, why, sizeof(why)), RP_ERR_DENIED);
    assert_non_null(strstr(why, "its directory"));
    /* the file itself writable by others */
    make(0755, 0757);
    assert_int_equal(rp_compartment_launcher_open(file, why, sizeof(why)), RP_ERR_DENIED);
    assert_non_null(strstr(why, "not a regular file of root's, writable by it alone"));
    /* both as they should be */
    make(0755, 0755);
    assert_int_equal(rp_compartment_launcher_open(file, why, sizeof(why)), RP_OK);
    assert_int_equal(unlink(file), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_then_opened),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
