/*
 * The bridge to an MCU's boot stage (device/monitor/mcu.c): the boot stage's lines read exactly
 * (a verdict, a trial, a confirmation, a revert, a refusal; anything else, or a line that is
 * almost one, ignored), a component's relay kept and read back (a corrupt one refused), and a
 * relay run: its output read whole or a line too long skipped, a program that cannot run, one
 * that runs past the timeout (stopped, with what it started), one that says nothing of a boot, and
 * none started under a seccomp filter (the monitor's has no exec).
 * The outcome of an install from what two boots say is checked against scripted relays here;
 * e2e.mcu_deploy runs it against the emulated board. The board's evidence: its line read whole or
 * not at all, and the monitor's check of it (rp_mcu_evidence_check) against the key pinned at
 * attach: evidence signed by the board over the nonce, measuring the image, passes; no key
 * pinned, none given, another key's, a changed byte, another nonce, another image or no firmware
 * measured is refused.
 */
#include <setjmp.h>
#include <signal.h>
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
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mcu.h"
#include "rampart/eat.h"
#include "rampart/file.h"
#include "rampart/hex.h"
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
    assert_int_equal(rp_mcu_relay_save(dir, "firmware", argv, 3, NULL, 0), RP_OK);
    assert_int_equal(rp_mcu_relay_load(dir, "firmware", &r), RP_OK);
    assert_int_equal(r.argc, 3);
    assert_string_equal(r.argv[0], "/bin/echo");
    assert_string_equal(r.argv[2], "board bin");
    assert_null(r.argv[3]);
    rp_mcu_relay_free(&r);

    assert_int_equal(rp_mcu_relay_save(dir, "firmware", rel, 1, NULL, 0), RP_ERR_INVALID_ARG);
    for (int i = 0; i <= RP_MCU_RELAY_ARGS_MAX; i++)
        many[i] = "/bin/true";
    assert_int_equal(rp_mcu_relay_save(dir, "firmware", many, RP_MCU_RELAY_ARGS_MAX + 1, NULL, 0),
                     RP_ERR_INVALID_ARG);
    assert_int_equal(rp_mcu_relay_save(dir, "../x", argv, 1, NULL, 0), RP_ERR_INVALID_ARG);
    assert_int_equal(rp_mcu_relay_save(dir, "firmware", argv, 0, NULL, 0), RP_ERR_INVALID_ARG);

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
    assert_int_equal(rp_mcu_relay_save(dir, name, argv, 2, NULL, 0), RP_OK);
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
    assert_int_equal(rp_mcu_boot(&r, NULL, NULL, 10, &b, detail, sizeof(detail)), RP_OK);
    assert_true(b.booted && b.has_stored);
    assert_int_equal(b.stored, 7);
    assert_string_equal(b.refused, "");
    rp_mcu_relay_free(&r);

    /* The image is handed as --slot1 IMAGE after the relay's own words. */
    scripted(&r, "args",
             "[ \"$1\" = --slot1 ] && [ \"$2\" = /the/image ] &&\n"
             "echo 'boot: slot1 refused: bad signature' && echo 'boot: refused: x'\n");
    assert_int_equal(rp_mcu_boot(&r, "/the/image", NULL, 10, &b, detail, sizeof(detail)), RP_OK);
    assert_string_equal(b.slot1_refused, "bad signature");
    rp_mcu_relay_free(&r);

    scripted(&r, "silent", "echo hello; exit 3\n");
    assert_int_equal(rp_mcu_boot(&r, NULL, NULL, 10, &b, detail, sizeof(detail)), RP_ERR_IO);
    assert_string_equal(detail, "the MCU's relay said nothing of a boot (exit status 3)");
    rp_mcu_relay_free(&r);

    /* Past the timeout: stopped, and what it started with it (it holds the pipe open). */
    scripted(&r, "slow", "echo 'boot: security counter 1'; sleep 30 & sleep 30\n");
    t0 = time(NULL);
    assert_int_equal(rp_mcu_boot(&r, NULL, NULL, 1, &b, detail, sizeof(detail)), RP_ERR_IO);
    assert_true(time(NULL) - t0 < 10);
    assert_string_equal(detail, "the MCU's relay ran past 1 s: stopped");
    rp_mcu_relay_free(&r);

    assert_int_equal(rp_mcu_relay_save(dir, "missing", argv, 1, NULL, 0), RP_OK);
    assert_int_equal(rp_mcu_relay_load(dir, "missing", &r), RP_OK);
    assert_int_equal(rp_mcu_boot(&r, NULL, NULL, 10, &b, detail, sizeof(detail)), RP_ERR_IO);
    assert_string_equal(detail, "cannot run the MCU's relay /nonexistent/relay");
    rp_mcu_relay_free(&r);
}

/* body run in a child (what it sets stays there), which must exit 0: body's answer. */
static void in_child(int (*body)(void))
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(body());
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static int under_seccomp(void)
{
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    char detail[256];
    rp_mcu_relay_t r;
    rp_mcu_boot_t b;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return 3;
    scripted(&r, "sec", "echo 'boot: slot0 version 1.0.0+0 counter 1: booting'\n");
    if (rp_mcu_boot(&r, NULL, NULL, 10, &b, detail, sizeof(detail)) != RP_ERR_IO || b.booted ||
        strstr(detail, "cannot run under a seccomp filter") == NULL)
        return 4;
    rp_mcu_relay_free(&r);
    return 0;
}

/* Under a seccomp filter (the monitor's has no exec) the relay is not started, and that is said. */
static void relay_under_seccomp(void **state)
{
    (void)state;
    in_child(under_seccomp);
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
    rp_mcu_install(&r, "/the/image", "2.0.0+0", NULL, 0, &st, detail, sizeof(detail), NULL, NULL);
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

static void on_stop(int sig)
{
    (void)sig;
    rp_mcu_stop();
}

static int stopped_mid_boot(void)
{
    char text[1024], detail[256], ran[300];
    struct sigaction sa = {.sa_handler = on_stop};
    rp_update_state_t st;
    rp_mcu_relay_t r;
    uint8_t *data = NULL;
    size_t len = 0;

    if (sigaction(SIGTERM, &sa, NULL) != 0)
        return 2;
    snprintf(ran, sizeof(ran), "%s/ran", dir);
    snprintf(text, sizeof(text),
             "echo >>'%s'\n"
             "if [ \"$1\" = --slot1 ]; then kill -TERM $PPID; printf '" TRIAL "'; else "
             "printf 'boot: slot0 confirmed by the image: the security counter is raised\\n"
             "boot: security counter 3\\nboot: slot0 version 2.0.0+0 counter 3: booting\\n'; "
             "fi\n",
             ran);
    scripted(&r, "stopped", text);
    rp_mcu_install(&r, "/the/image", "2.0.0+0", NULL, 0, &st, detail, sizeof(detail), NULL, NULL);
    if (st != RP_UPDATE_INSTALLED || strncmp(detail, "confirmed on the MCU", 20) != 0)
        return 3;
    /* After it: nothing begun (the relay not run a third time). */
    rp_mcu_install(&r, "/the/image", "2.0.0+0", NULL, 0, &st, detail, sizeof(detail), NULL, NULL);
    rp_mcu_relay_free(&r);
    if (st != RP_UPDATE_FAILED ||
        strcmp(detail, "stopped before the relay began: nothing handed over") != 0)
        return 4;
    if (rp_read_file(ran, 64, &data, &len) != RP_OK || len != 2)
        return 5;
    free(data);
    return 0;
}

/* A stop (rp_mcu_stop, review r12 M1) that comes while the board boots the image handed over:
 * that boot ends, the confirming boot runs, the outcome is the board's; after it nothing begins.
 * In a child: the stop is the process's for good. */
static void install_stopped(void **state)
{
    (void)state;
    in_child(stopped_mid_boot);
}

/* A P-256 key: its DER SPKI in spki[0..*len). */
static EVP_PKEY *new_key(uint8_t *spki, size_t *len)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    uint8_t *p = spki;
    int n;

    assert_non_null(k);
    n = i2d_PUBKEY(k, &p);
    assert_true(n > 0 && n <= RP_PUBKEY_DER_MAX);
    *len = (size_t)n;
    return k;
}

/* Evidence over claims c signed by k (ES256: raw r || s). */
static size_t make_evidence(EVP_PKEY *k, const rp_eat_claims_t *c, uint8_t *out, size_t cap)
{
    uint8_t claims[RP_EAT_MAX_SIZE], digest[RP_SHA256_LEN], sig[RP_ES256_SIG_LEN], der[80];
    const uint8_t *p = der;
    size_t len, dlen = sizeof(der), n;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
    ECDSA_SIG *es;

    assert_int_equal(rp_eat_encode_claims(c, claims, sizeof(claims), &len), RP_OK);
    assert_int_equal(rp_cose_sign1_tbs_digest(claims, len, digest), RP_OK);
    assert_true(ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
                EVP_PKEY_sign(ctx, der, &dlen, digest, sizeof(digest)) == 1);
    EVP_PKEY_CTX_free(ctx);
    es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    assert_non_null(es);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32), 32);
    ECDSA_SIG_free(es);
    assert_int_equal(rp_cose_sign1_encode(claims, len, sig, out, cap, &n), RP_OK);
    return n;
}

static void evidence_checked(void **state)
{
    static uint8_t ev[RP_MCU_EVIDENCE_MAX];
    static rp_eat_claims_t c;
    static char line[RP_MCU_OUTPUT_LINE_MAX + 2];
    static rp_mcu_boot_t b;
    char *argv[] = {"/bin/true"}, why[256], path[160];
    uint8_t spki[RP_PUBKEY_DER_MAX], other_spki[RP_PUBKEY_DER_MAX], digest[32], nonce[32];
    uint8_t key[RP_PUBKEY_DER_MAX];
    size_t spki_len, other_len, n, key_len;
    EVP_PKEY *board = new_key(spki, &spki_len), *other = new_key(other_spki, &other_len);
    rp_mcu_relay_t r;
    FILE *f;

    (void)state;
    memset(digest, 0xd1, sizeof(digest));
    memset(nonce, 0x6e, sizeof(nonce));
    memset(&c, 0, sizeof(c));
    memcpy(c.nonce, nonce, sizeof(nonce));
    c.nonce_len = sizeof(nonce);
    memset(c.device_id, 0x1d, sizeof(c.device_id));
    c.ncomponents = 1;
    snprintf(c.components[0].name, sizeof(c.components[0].name), "firmware");
    snprintf(c.components[0].version, sizeof(c.components[0].version), "2.0.0+0");
    memcpy(c.components[0].digest, digest, sizeof(digest));
    n = make_evidence(board, &c, ev, sizeof(ev));

    /* No key pinned: nothing proves anything. */
    assert_int_equal(rp_mcu_relay_save(dir, "fwk", argv, 1, NULL, 0), RP_OK);
    assert_int_equal(rp_mcu_evidence_check(dir, "fwk", digest, nonce, 32, ev, n, why, sizeof(why)),
                     RP_ERR_DENIED);
    assert_non_null(strstr(why, "no attestation key is pinned"));
    /* Not a P-256 key: refused at attach; kept whole and read back. */
    assert_int_equal(rp_mcu_relay_save(dir, "fwk", argv, 1, spki, spki_len - 1), RP_ERR_BAD_KEY);
    assert_int_equal(rp_mcu_relay_save(dir, "fwk", argv, 1, spki, spki_len), RP_OK);
    assert_int_equal(rp_mcu_board_key(dir, "fwk", key, &key_len), RP_OK);
    assert_int_equal(key_len, spki_len);
    assert_memory_equal(key, spki, spki_len);
    assert_int_equal(rp_mcu_relay_load(dir, "fwk", &r), RP_OK);
    rp_mcu_relay_free(&r);

    assert_int_equal(rp_mcu_evidence_check(dir, "fwk", digest, nonce, 32, ev, n, why, sizeof(why)),
                     RP_OK);
    assert_int_equal(rp_mcu_evidence_check(dir, "fwk", digest, nonce, 32, ev, 0, why, sizeof(why)),
                     RP_ERR_DENIED);
    assert_non_null(strstr(why, "no evidence"));
    nonce[0] ^= 1; /* evidence over another nonce (an earlier trial's) */
    assert_int_equal(rp_mcu_evidence_check(dir, "fwk", digest, nonce, 32, ev, n, why, sizeof(why)),
                     RP_ERR_DENIED);
    assert_non_null(strstr(why, "not over the nonce"));
    nonce[0] ^= 1;
    digest[31] ^= 1; /* the board runs another image than the one on trial */
    assert_int_equal(rp_mcu_evidence_check(dir, "fwk", digest, nonce, 32, ev, n, why, sizeof(why)),
                     RP_ERR_DENIED);
    assert_non_null(strstr(why, "the board runs another image (its evidence says firmware 2.0.0+0)"));
    digest[31] ^= 1;
    ev[n - 1] ^= 1; /* a changed byte */
    assert_int_equal(rp_mcu_evidence_check(dir, "fwk", digest, nonce, 32, ev, n, why, sizeof(why)),
                     RP_ERR_DENIED);
    assert_non_null(strstr(why, "does not verify with its pinned key"));
    ev[n - 1] ^= 1;
    /* Signed by another key (an agent's own, for claims it made up). */
    n = make_evidence(other, &c, ev, sizeof(ev));
    assert_int_equal(rp_mcu_evidence_check(dir, "fwk", digest, nonce, 32, ev, n, why, sizeof(why)),
                     RP_ERR_DENIED);
    assert_non_null(strstr(why, "does not verify with its pinned key"));
    /* No firmware measured. */
    snprintf(c.components[0].name, sizeof(c.components[0].name), "app");
    n = make_evidence(board, &c, ev, sizeof(ev));
    assert_int_equal(rp_mcu_evidence_check(dir, "fwk", digest, nonce, 32, ev, n, why, sizeof(why)),
                     RP_ERR_DENIED);
    assert_non_null(strstr(why, "measures no firmware"));
    /* A corrupt pinned key: refused as corrupt, never taken as no key. */
    snprintf(path, sizeof(path), "%s/mcu/fwk.key", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fwrite(spki, 1, spki_len - 1, f);
    fclose(f);
    assert_int_equal(rp_mcu_board_key(dir, "fwk", key, &key_len), RP_ERR_MALFORMED);
    assert_int_equal(rp_mcu_evidence_check(dir, "fwk", digest, nonce, 32, ev, n, why, sizeof(why)),
                     RP_ERR_MALFORMED);
    assert_non_null(strstr(why, "cannot read the board's pinned key"));
    /* Attached again without a key: the pin is gone. */
    assert_int_equal(rp_mcu_relay_save(dir, "fwk", argv, 1, NULL, 0), RP_OK);
    assert_int_equal(rp_mcu_board_key(dir, "fwk", key, &key_len), RP_ERR_NOT_FOUND);

    /* The firmware's evidence line: decoded whole; odd, not hex, or past the bound: none. */
    memcpy(line, RP_MCU_EVIDENCE_PREFIX, strlen(RP_MCU_EVIDENCE_PREFIX));
    assert_int_equal(rp_hex_encode(ev, n, line + strlen(RP_MCU_EVIDENCE_PREFIX),
                                   sizeof(line) - strlen(RP_MCU_EVIDENCE_PREFIX)),
                     RP_OK);
    memset(&b, 0, sizeof(b));
    rp_mcu_boot_line(&b, line, strlen(line));
    assert_int_equal(b.evidence_len, n);
    assert_memory_equal(b.evidence, ev, n);
    rp_mcu_boot_line(&b, line, strlen(line) - 1);
    assert_int_equal(b.evidence_len, 0);
    rp_mcu_boot_line(&b, "app: evidence zz", 16);
    assert_int_equal(b.evidence_len, 0);
    memset(line + strlen(RP_MCU_EVIDENCE_PREFIX), 'a', sizeof(line) - strlen(RP_MCU_EVIDENCE_PREFIX));
    rp_mcu_boot_line(&b, line, RP_MCU_OUTPUT_LINE_MAX);
    assert_int_equal(b.evidence_len, RP_MCU_EVIDENCE_MAX);
    rp_mcu_boot_line(&b, line, RP_MCU_OUTPUT_LINE_MAX + 2);
    assert_int_equal(b.evidence_len, RP_MCU_EVIDENCE_MAX); /* too long: not a line of ours */
    EVP_PKEY_free(board);
    EVP_PKEY_free(other);
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
        cmocka_unit_test(install_outcomes), cmocka_unit_test(evidence_checked),
        cmocka_unit_test(install_stopped),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
