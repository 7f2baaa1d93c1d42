/*
 * rampart-server's config file (server/config.c): every option `rampart-server --help` lists is a
 * key of the file, or an action refused as one (the list comes from the binary's --help, never
 * from a hand list here); values are checked as on the command line; every refusal names
 * file:line and why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "store/blob.h"

static rp_err_t parse(const char *text, rp_config_t *c, char *why, size_t cap)
{
    rp_config_defaults(c);
    return rp_config_parse(text, strlen(text), "f.conf", c, why, cap);
}

/* The refusal of text, which must start with want. */
static void refused(const char *text, const char *want)
{
    rp_config_t c;
    char why[512];

    assert_int_not_equal(parse(text, &c, why, sizeof(why)), RP_OK);
    if (strncmp(why, want, strlen(want)) != 0)
        fail_msg("for %s\nwanted: %s\ngot:    %s", text, want, why);
}

static void every_help_option_is_a_key(void **state)
{
    static const char *const actions[] = {
        "config", "help", "version", "routes", "rotate-admin-token", "from", "to", "force"};
    char cmd[4200], help[16384], name[64], text[128], want[128], why[512];
    size_t len;
    int settings = 0, seen = 0;
    rp_config_t c;
    FILE *p;

    (void)state;
    snprintf(cmd, sizeof(cmd), "'%s' --help", RP_SERVER_BIN);
    p = popen(cmd, "r");
    assert_non_null(p);
    len = fread(help, 1, sizeof(help) - 1, p);
    assert_int_equal(pclose(p), 0);
    help[len] = '\0';
    for (const char *s = help; (s = strstr(s, "--")) != NULL; s += 2) {
        size_t n = strspn(s + 2, "abcdefghijklmnopqrstuvwxyz-");
        bool action = false;

        if (n == 0 || n >= sizeof(name))
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)n, s + 2);
        seen++;
        for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
            action = action || strcmp(name, actions[i]) == 0;
        /* An empty value, which no option takes: known, and its value refused on line 2. */
        snprintf(text, sizeof(text), "# comment\n%s =\n", name);
        assert_int_not_equal(parse(text, &c, why, sizeof(why)), RP_OK);
        snprintf(want, sizeof(want), "f.conf:2: %s: %s", name,
                 action ? "is an action of the command line" : "");
        if (strncmp(why, want, strlen(want)) != 0 || strstr(why, "unknown key") != NULL ||
            (!action && strstr(why, "is an action") != NULL))
            fail_msg("--%s is in --help but %s", name, why);
        settings += !action;
    }
    /* (a --help that lost its options must not pass by listing none) */
    assert_true(seen > 20);
    assert_true(settings >= 15);
}

static void values_and_sections(void **state)
{
    rp_config_t c;
    char why[512];

    (void)state;
    assert_int_equal(parse("# settings\n"
                           "data-dir = /var/lib/rampart\n"
                           "[server]\n"
                           "listen = [::]:8443 ; inline comment\n"
                           "threads = 4\n"
                           "rate-limit = 0.5\n"
                           "verbose = yes\n"
                           "webhook-allow-private = off\n"
                           "database = postgresql:///rampart?host=/run/postgresql\n"
                           "blobs = database\n"
                           "idle-timeout = 5\n",
                           &c, why, sizeof(why)),
                     RP_OK);
    assert_string_equal(c.data_dir, "/var/lib/rampart");
    assert_string_equal(c.listen, "[::]:8443");
    assert_int_equal(c.threads, 4);
    assert_true(c.rate_limit == 0.5);
    assert_true(c.verbose);
    assert_false(c.webhook_allow_private);
    assert_string_equal(c.database, "postgresql:///rampart?host=/run/postgresql");
    assert_int_equal(c.idle_timeout, 5);
    /* a reload gives new connections the new idle timeout (http.c: make_bev) */
    assert_true(rp_config_reloadable(RP_CFG_IDLE_TIMEOUT));
    /* a running service never switches databases (main.c refuses the reload) */
    assert_false(rp_config_reloadable(RP_CFG_DATABASE));
    /* where blobs are kept: nor that (what is kept stays where it was) */
    assert_int_equal(c.blobs, RP_BLOBS_DATABASE);
    assert_false(rp_config_reloadable(RP_CFG_BLOBS));
    assert_int_equal(c.request_deadline, 60); /* not given: the default */
    assert_int_equal(parse("", &c, why, sizeof(why)), RP_OK);
    assert_int_equal(c.idle_timeout, 30);     /* not given: the default */
    assert_int_equal(c.reenroll_per_hour, 6); /* not given: the default */
    assert_string_equal(c.database, "");      /* not given: the SQLite file in data-dir */
    assert_int_equal(c.blobs, RP_BLOBS_DIR);  /* not given: files in data-dir */
    assert_int_equal(parse("blobs = dir\n", &c, why, sizeof(why)), RP_OK);
    assert_int_equal(c.blobs, RP_BLOBS_DIR);
    assert_int_equal(parse("reenroll-per-hour = 0\n", &c, why, sizeof(why)), RP_OK);
    assert_int_equal(c.reenroll_per_hour, 0); /* no limit */
    assert_true(rp_config_reloadable(RP_CFG_REENROLL_PER_HOUR));
    /* devices a tenant may hold: a million unless told, 0 none, a reload takes it */
    assert_int_equal(parse("", &c, why, sizeof(why)), RP_OK);
    assert_int_equal(c.max_devices_per_tenant, 1000000);
    assert_int_equal(parse("max-devices-per-tenant = 0\n", &c, why, sizeof(why)), RP_OK);
    assert_int_equal(c.max_devices_per_tenant, 0);
    assert_true(rp_config_reloadable(RP_CFG_MAX_DEVICES_PER_TENANT));
}

static void refusals_name_file_and_line(void **state)
{
    char big[RP_CONFIG_MAX + 2], line[300];

    (void)state;
    refused("data-dir = /x\n\ncolour = blue\n", "f.conf:3: colour: unknown key");
    refused("threads = 0\n", "f.conf:1: threads: must be 1 to 64");
    refused("threads = 4x\n", "f.conf:1: threads: must be 1 to 64");
    refused("nonce-lifetime = 3601\n", "f.conf:1: nonce-lifetime: must be 1 to 3600 seconds");
    refused("idle-timeout = 0\n", "f.conf:1: idle-timeout: must be 1 to 3600 seconds");
    refused("idle-timeout = 3601\n", "f.conf:1: idle-timeout: must be 1 to 3600 seconds");
    refused("rate-limit = fast\n", "f.conf:1: rate-limit: must be 0 to 1000000");
    refused("rate-limit = nan\n", "f.conf:1: rate-limit: must be 0 to 1000000");
    refused("max-devices-per-tenant = -1\n",
            "f.conf:1: max-devices-per-tenant: must be 0 (no limit) to 1000000000");
    refused("reenroll-per-hour = 3601\n",
            "f.conf:1: reenroll-per-hour: must be 0 (no limit) to 3600");
    refused("reenroll-per-hour = 0.5\n",
            "f.conf:1: reenroll-per-hour: must be 0 (no limit) to 3600");
    refused("max-connections-per-address = -1\n", "f.conf:1: max-connections-per-address:");
    refused("verbose = maybe\n", "f.conf:1: verbose: must be true or false");
    refused("blobs = s3\n", "f.conf:1: blobs: must be dir or database");
    refused("blobs = Database\n", "f.conf:1: blobs: must be dir or database");
    refused("listen = a:1\n[server]\nlisten = b:2\n", "f.conf:3: listen: given twice");
    refused("listen = a:1\n  b:2\n", "f.conf:2: listen: given twice"); /* a continuation */
    refused("data-dir = /x\njust words\n", "f.conf:2: not `key = value`");
    refused("oops\nthreads = 0\n", "f.conf:1: not `key = value`"); /* the first one */
    refused("[tls]\nlisten = a:1\n", "f.conf:1: tls: unknown section");
    /* refused at its header, with no key under it too (review r15ops L6) */
    refused("threads = 2\n[server]\n[other]\n", "f.conf:3: other: unknown section");
    refused("threads = 2\n  [other] ; x\n", "f.conf:2: other: unknown section");
    refused("\xEF\xBB\xBF[other]\n", "f.conf:1: other: unknown section");
    refused("[]\nthreads = 2\n", "f.conf:1: unknown section");
    refused("[server ]\n", "f.conf:1: server : unknown section");
    refused("routes = true\n", "f.conf:1: routes: is an action");
    memset(line, 'a', sizeof(line));
    memcpy(line, "hostname = ", 11);
    line[sizeof(line) - 2] = '\n';
    line[sizeof(line) - 1] = '\0';
    refused(line, "f.conf:1: a line longer than");
    memset(big, '#', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    refused(big, "f.conf: larger than");
}

static void nul_byte(void **state)
{
    static const char text[] = "data-dir = /x\0hidden = 1\n";
    rp_config_t c;
    char why[512];

    (void)state;
    rp_config_defaults(&c);
    assert_int_equal(rp_config_parse(text, sizeof(text) - 1, "f.conf", &c, why, sizeof(why)),
                     RP_ERR_MALFORMED);
    assert_non_null(strstr(why, "NUL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_help_option_is_a_key),
        cmocka_unit_test(values_and_sections),
        cmocka_unit_test(refusals_name_file_and_line),
        cmocka_unit_test(nul_byte),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
