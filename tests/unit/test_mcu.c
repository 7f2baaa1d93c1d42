/*
 * The bridge to an MCU's boot stage (device/monitor/mcu.c): the boot stage's lines read exactly
 * (a verdict, a trial, a confirmation, a revert, a refusal; anything else, or a line that is
 * almost one, ignored), a component's relay kept and read back (a corrupt one refused), and a
 * relay run: its output read whole or a line too long skipped, a program that cannot run, one
 * that runs past the timeout (stopped, with what it started), one that says nothing of a boot, and
 * none started under a seccomp filter (the monitor's has no exec).
 * The outcome of an install from what two boots say is checked against scripted relays here;
 * e2e.mcu_deploy runs it against the emulated board.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mcu.h"
#include "rampart/log.h"

static char dir[64];

static void line(rp_mcu_boot_t *b, const char *s)
{
    rp_mcu_boot_line(b, s, strlen(s));
}

static void boot_lines(void **state)
{
    rp_mcu_boot_t b;

    (void)state;
    memset(&b, 0, sizeof(b));
    line(&b, "boot: Rampart secure boot stage; trusts a development key");
    line(&b, "boot: slot0 is on trial (it must confirm itself); security counter 2");
    line(&b, "boot: slot0 version 2.0.0+0 counter 3: booting");
    /* The stack's high-water lines (after the verdict, and after an attestation) change nothing. */
    line(&b, "boot: stack high-water 2048 of 249592 bytes");
    line(&b, "boot: stack high-water 2352 of 249592 bytes, with the attestation service");
    assert_true(b.booted && b.trial && b.has_stored);
    assert_string_equal(b.version, "2.0.0+0");
    assert_int_equal(b.counter, 3);
    assert_int_equal(b.stored, 2);
    assert_string_equal(b.verdict, "boot: slot0 version 2.0.0+0 counter 3: booting");
    assert_false(b.confirmed || b.reverted);

    memset(&b, 0, sizeof(b));
    line(&b, "boot: slot0 confirmed by the image: the security counter is raised");
    line(&b, "boot: security counter 4294967295");
    line(&b, "boot: slot1 refused: not signed by a trusted key");
    line(&b, "boot: refused: slot0 is empty (erased flash)");
    line(&b, "boot: slot0 was not confirmed: reverting to the previous image");
    assert_true(b.confirmed && b.reverted && b.has_stored && !b.trial && !b.booted);
    assert_int_equal(b.stored, 4294967295u);
    assert_string_equal(b.slot1_refused, "not signed by a trusted key");
    assert_string_equal(b.refused, "slot0 is empty (erased flash)");

    /* Almost a line of the boot stage's: ignored. */
    memset(&b, 0, sizeof(b));
    line(&b, "boot: slot0 version 2.0.0+0 counter 3: booting ");
    line(&b, "boot: slot0 version 2.0.0-rc counter 3: booting");
    line(&b, "boot: slot0 version  counter 3: booting");
    line(&b, "boot: slot0 version 2.0.0+0 counter 4294967296: booting");
    line(&b, "boot: slot0 version 2.0.0+0 counter : booting");
    line(&b, "boot: slot0 version 2.0.0+0 counter 3x: booting");
    line(&b,
         "boot: slot0 version 111111111111111111111111111111111111111111111111 counter 3: booting");
    line(&b, "app: boot: slot0 version 2.0.0+0 counter 3: booting");
    line(&b, "boot: security counter -1");
    line(&b, "boot: security counter 99999999999");
    line(&b, "boot: slot0 confirmed by the image: the security counter is raised!");
    line(&b, "boot: slot1 refused: ");
    line(&b, "boot: refused: bad\tbyte");
    assert_false(b.booted || b.has_stored || b.confirmed);
    assert_string_equal(b.slot1_refused, "");
    assert_string_equal(b.refused, "");
    {
        char lng[RP_MCU_LINE_MAX + 8];
        memset(lng, 'x', sizeof(lng));
        memcpy(lng, "boot: refused: ", 15);
        rp_mcu_boot_line(&b, lng, sizeof(lng));
        rp_mcu_boot_line(&b, lng, RP_MCU_LINE_MAX - 1); /* a reason too long to keep */
        assert_string_equal(b.refused, "");
        rp_mcu_boot_line(&b, NULL, 0);
        rp_mcu_boot_line(&b, "boot: refused: x", 0);
        assert_string_equal(b.refused, "");
    }
}

static void relay_kept(void **state)
{
    char *argv[] = {"/bin/echo", "--flash", "board bin"}, *rel[] = {"echo"};
    char *many[RP_MCU_RELAY_ARGS_MAX + 1], path[128];
    rp_mcu_relay_t r;
    FILE *f;

    (void)state;
    assert_int_equal(rp_mcu_relay_load(dir, "firmware", &r), RP_ERR_NOT_FOUND);
    assert_int_equal(rp_mcu_relay_save(dir, "firmware", argv, 3), RP_OK);
    assert_int_equal(rp_mcu_relay_load(dir, "firmware", &r), RP_OK);
    assert_int_equal(r.argc, 3);
    assert_string_equal(r.argv[0], "/bin/echo");
    assert_string_equal(r.argv[2], "board bin");
    assert_null(r.argv[3]);
    rp_mcu_relay_free(&r);

    assert_int_equal(rp_mcu_relay_save(dir, "firmware", rel, 1), RP_ERR_INVALID_ARG);
    for (int i = 0; i <= RP_MCU_RELAY_ARGS_MAX; i++)
        many[i] = "/bin/true";
    assert_int_equal(rp_mcu_relay_save(dir, "firmware", many, RP_MCU_RELAY_ARGS_MAX + 1),
                     RP_ERR_INVALID_ARG);
    assert_int_equal(rp_mcu_relay_save(dir, "../x", argv, 1), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_mcu_relay_save(dir, "firmware", argv, 0), RP_ERR_INVALID_ARG);

    static const char *corrupt[] = {
        "not json",
        "{\"relay\": []}",
        "{\"relay\": [\"echo\"]}",
        "{\"relay\": [\"/bin/x\", 3]}",
        "{\"relay\": [\"/bin/x\", \"\"]}",
        "{\"relay\": \"/bin/x\"}",
        "[\"/bin/x\"]",
        "{\"relay\": [\"/bin/x\\u0000y\"]}",
    };
    snprintf(path, sizeof(path), "%s/mcu/firmware.json", dir);
    for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(corrupt[i], f);
        fclose(f);
        assert_int_equal(rp_mcu_relay_load(dir, "firmware", &r), RP_ERR_MALFORMED);
        assert_null(r.storage);
    }
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < RP_MCU_RELAY_FILE_MAX + 1; i++)
        fputc(' ', f);
    fclose(f);
    assert_int_equal(rp_mcu_relay_load(dir, "firmware", &r), RP_ERR_MALFORMED);
}

/* A relay: a shell script given as its text; argv is /bin/sh SCRIPT. */
static void scripted(rp_mcu_relay_t *r, const char *name, const char *text)
{
    static char paths[8][128];
    static int n;
    char *path = paths[n++ % 8];
    char *argv[2] = {"/bin/sh", path};
    FILE *f;

    snprintf(path, 128, "%s/%s.sh", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rp_mcu_relay_save(dir, name, argv, 2), RP_OK);
    assert_int_equal(rp_mcu_relay_load(dir, name, r), RP_OK);
}

static void relay_runs(void **state)
{
    char detail[256], *argv[] = {"/nonexistent/relay"};
    rp_mcu_relay_t r;
    rp_mcu_boot_t b;
    time_t t0;

    (void)state;
    /* Its standard output and error, a line too long skipped whole, a last line unterminated. */
    scripted(&r, "out",
             "echo 'boot: security counter 7' >&2\n"
             "head -c 5000 /dev/zero | tr '\\0' x; echo ' boot: refused: hidden'\n"
             "printf 'boot: slot0 version 1.0.0+0 counter 7: booting'\n");
    assert_int_equal(rp_mcu_boot(&r, NULL, 10, &b, detail, sizeof(detail)), RP_OK);
    assert_true(b.booted && b.has_stored);
    assert_int_equal(b.stored, 7);
    assert_string_equal(b.refused, "");
    rp_mcu_relay_free(&r);

    /* The image is handed as --slot1 IMAGE after the relay's own words. */
    scripted(&r, "args",
             "[ \"$1\" = --slot1 ] && [ \"$2\" = /the/image ] &&\n"
             "echo 'boot: slot1 refused: bad signature' && echo 'boot: refused: x'\n");
    assert_int_equal(rp_mcu_boot(&r, "/the/image", 10, &b, detail, sizeof(detail)), RP_OK);
    assert_string_equal(b.slot1_refused, "bad signature");
    rp_mcu_relay_free(&r);

    scripted(&r, "silent", "echo hello; exit 3\n");
    assert_int_equal(rp_mcu_boot(&r, NULL, 10, &b, detail, sizeof(detail)), RP_ERR_IO);
    assert_string_equal(detail, "the MCU's relay said nothing of a boot (exit status 3)");
    rp_mcu_relay_free(&r);

    /* Past the timeout: stopped, and what it started with it (it holds the pipe open). */
    scripted(&r, "slow", "echo 'boot: security counter 1'; sleep 30 & sleep 30\n");
    t0 = time(NULL);
    assert_int_equal(rp_mcu_boot(&r, NULL, 1, &b, detail, sizeof(detail)), RP_ERR_IO);
    assert_true(time(NULL) - t0 < 10);
    assert_string_equal(detail, "the MCU's relay ran past 1 s: stopped");
    rp_mcu_relay_free(&r);

    assert_int_equal(rp_mcu_relay_save(dir, "missing", argv, 1), RP_OK);
    assert_int_equal(rp_mcu_relay_load(dir, "missing", &r), RP_OK);
    assert_int_equal(rp_mcu_boot(&r, NULL, 10, &b, detail, sizeof(detail)), RP_ERR_IO);
    assert_string_equal(detail, "cannot run the MCU's relay /nonexistent/relay");
    rp_mcu_relay_free(&r);
}

/* Under a seccomp filter (the monitor's has no exec) the relay is not started, and that is said. */
static void relay_under_seccomp(void **state)
{
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    int status;
    pid_t pid;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char detail[256];
        rp_mcu_relay_t r;
        rp_mcu_boot_t b;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            _exit(3);
        scripted(&r, "sec", "echo 'boot: slot0 version 1.0.0+0 counter 1: booting'\n");
        if (rp_mcu_boot(&r, NULL, 10, &b, detail, sizeof(detail)) != RP_ERR_IO || b.booted ||
            strstr(detail, "cannot run under a seccomp filter") == NULL)
            _exit(4);
        rp_mcu_relay_free(&r);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A board scripted by a state file: what it says when handed the image, then at the next boot. */
static void outcome(const char *handed, const char *next, rp_update_state_t want,
                    const char *want_detail)
{
    char text[1024], detail[256];
    rp_update_state_t st;
    rp_mcu_relay_t r;

    snprintf(text, sizeof(text),
             "if [ \"$1\" = --slot1 ]; then printf '%s'; else printf '%s'; fi\n", handed, next);
    scripted(&r, "board", text);
    rp_mcu_install(&r, "/the/image", "2.0.0+0", &st, detail, sizeof(detail));
    assert_string_equal(detail, want_detail);
    assert_int_equal(st, want);
    rp_mcu_relay_free(&r);
}

#define TRIAL                                                                                      \
    "boot: slot0 is on trial (it must confirm itself); security counter 2\\n"                      \
    "boot: slot0 version 2.0.0+0 counter 3: booting\\n"
#define V1 "boot: security counter 2\\nboot: slot0 version 1.0.0+0 counter 2: booting\\n"

static void install_outcomes(void **state)
{
    (void)state;
    outcome(TRIAL,
            "boot: slot0 confirmed by the image: the security counter is raised\\n"
            "boot: security counter 3\\nboot: slot0 version 2.0.0+0 counter 3: booting\\n",
            RP_UPDATE_INSTALLED,
            "confirmed on the MCU, its security counter now 3; the MCU runs 2.0.0+0 (boot: slot0 "
            "version 2.0.0+0 counter 3: booting)");
    outcome("boot: slot1 refused: not signed by a trusted key\\n" V1, "", RP_UPDATE_REFUSED,
            "the MCU's boot stage refused it: not signed by a trusted key; the MCU runs 1.0.0+0 "
            "(boot: slot0 version 1.0.0+0 counter 2: booting)");
    outcome(TRIAL, "boot: slot0 was not confirmed: reverting to the previous image\\n" V1,
            RP_UPDATE_ROLLED_BACK,
            "it did not confirm itself on the MCU: reverted; the MCU runs 1.0.0+0 (boot: slot0 "
            "version 1.0.0+0 counter 2: booting)");
    /* Booted the old image without a word of the new one; a trial that never confirms; a board
     * that boots nothing. */
    outcome(V1, "", RP_UPDATE_FAILED,
            "the MCU did not take it on trial: the MCU runs 1.0.0+0 (boot: slot0 version 1.0.0+0 "
            "counter 2: booting)");
    outcome(TRIAL, TRIAL, RP_UPDATE_FAILED,
            "the MCU did not confirm it: the MCU runs 2.0.0+0 (boot: slot0 version 2.0.0+0 "
            "counter 3: booting)");
    outcome(TRIAL, "boot: refused: the swap status is corrupt\\n", RP_UPDATE_FAILED,
            "the MCU did not confirm it: the MCU boots nothing (boot: refused: the swap status is "
            "corrupt)");
    outcome("", "", RP_UPDATE_FAILED, "the MCU's relay said nothing of a boot (exit status 0)");
}

static int setup(void **state)
{
    (void)state;
    rp_log_init("test_mcu", RP_LOG_ERROR);
    snprintf(dir, sizeof(dir), "/tmp/test_mcu.XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(boot_lines),       cmocka_unit_test(relay_kept),
        cmocka_unit_test(relay_runs),       cmocka_unit_test(relay_under_seccomp),
        cmocka_unit_test(install_outcomes),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
