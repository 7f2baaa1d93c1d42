/*
 * The update states' one name table (rampart/update_state.h): the names are wire and disk strings,
 * pinned here so that renaming one fails; every state round-trips; anything else is refused, near
 * misses included; what a device reports and the service counts is exactly the six states the API
 * documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/update_state.h"

static void names_are_pinned(void **state)
{
    static const char *const want[RP_UPDATE_STATE_COUNT] = {"",          "pending",   "downloading",
                                                            "installed", "failed",    "rolled_back",
                                                            "refused",   "unchanged", "fell_back"};

    (void)state;
    for (int i = 0; i < RP_UPDATE_STATE_COUNT; i++)
        assert_string_equal(rp_update_state_name((rp_update_state_t)i), want[i]);
    assert_null(rp_update_state_name((rp_update_state_t)RP_UPDATE_STATE_COUNT));
    assert_null(rp_update_state_name((rp_update_state_t)-1));
}

static void round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < RP_UPDATE_STATE_COUNT; i++) {
        rp_update_state_t got = (rp_update_state_t)-1;
        assert_int_equal(rp_update_state_parse(rp_update_state_name((rp_update_state_t)i), &got),
                         RP_OK);
        assert_int_equal(got, i);
    }
}

static void others_refused(void **state)
{
    static const char *const bad[] = {"Installed",  "installed ",  " installed",  "install",
                                      "installedx", "rolled-back", "ROLLED_BACK", "none",
                                      "pending\n",  "refused\t"};
    rp_update_state_t got = RP_UPDATE_INSTALLED;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rp_update_state_parse(bad[i], &got), RP_ERR_INVALID_ARG);
        assert_int_equal(got, RP_UPDATE_INSTALLED); /* untouched */
    }
    assert_int_equal(rp_update_state_parse(NULL, &got), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_update_state_parse("installed", NULL), RP_ERR_INVALID_ARG);
}

static void reported_states(void **state)
{
    char list[256] = "";

    (void)state;
    for (int i = 0; i < RP_UPDATE_STATE_COUNT; i++) {
        if (!rp_update_state_reported((rp_update_state_t)i))
            continue;
        strcat(list, rp_update_state_name((rp_update_state_t)i));
        strcat(list, " ");
    }
    assert_string_equal(list, "pending downloading installed failed rolled_back refused ");
    assert_false(rp_update_state_reported((rp_update_state_t)RP_UPDATE_STATE_COUNT));
    /* A device running the image already reports it installed; every other state as it is. */
    assert_int_equal(rp_update_state_to_report(RP_UPDATE_UNCHANGED), RP_UPDATE_INSTALLED);
    for (int i = 0; i < RP_UPDATE_STATE_COUNT; i++)
        if (i != RP_UPDATE_UNCHANGED)
            assert_int_equal(rp_update_state_to_report((rp_update_state_t)i), i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_are_pinned),
        cmocka_unit_test(round_trip),
        cmocka_unit_test(others_refused),
        cmocka_unit_test(reported_states),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
