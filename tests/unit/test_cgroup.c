/*
 * The cgroup v2 path rule of the compartment (rp_compartment_cg_parent, compartment.h): where the
 * apps' cgroups go once the monitor moved into its leaf. The layout itself, on a real cgroup2
 * hierarchy, is e2e.cgroup_v2's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "compartment.h"

static void cg_parent_paths(void **state)
{
    static const struct {
        const char *own, *parent;
    } cases[] = {
        {"",                                                      ""                                     },
        {"/rampart-monitor",                                      ""                                     },
        {"/system.slice/rampart-monitor.service",                 "/system.slice/rampart-monitor.service"},
        {"/system.slice/rampart-monitor.service/rampart-monitor",
         "/system.slice/rampart-monitor.service"                                                         },
        {"/a/not-rampart-monitor",                                "/a/not-rampart-monitor"               },
        {"/a/rampart-monitor/b",                                  "/a/rampart-monitor/b"                 },
        {"/a/rampart-monitor/rampart-monitor",                    "/a/rampart-monitor"                   },
    };
    char out[128], small[8];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(rp_compartment_cg_parent(cases[i].own, out, sizeof(out)), 0);
        assert_string_equal(out, cases[i].parent);
    }
    /* a path that does not fit is refused, never cut to another one */
    assert_int_equal(rp_compartment_cg_parent("/system.slice/x", small, sizeof(small)), -1);
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cg_parent_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
