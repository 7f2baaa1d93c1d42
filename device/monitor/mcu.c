/* Firmware for a microcontroller beside the device: the bridge to its boot stage (mcu.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "rampart/component.h"
#include "rampart/eat.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "agent.h"
#include "mcu.h"

/* S/mcu/NAME.EXT: the relay (json) or the board's attestation key pinned at attach (key, DER). */
static rp_err_t mcu_path(const char *state_dir, const char *name, const char *ext, char *out,
                         size_t cap)
{
    int n;

    if (name == NULL || !rp_component_name_valid(name, strlen(name)))
        return RP_ERR_INVALID_ARG;
    n = snprintf(out, cap, "%s/mcu/%s.%s", state_dir, name, ext);
    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

static rp_err_t relay_path(const char *state_dir, const char *name, char *out, size_t cap)
{
    return mcu_path(state_dir, name, "json", out, cap);
}

/* The relay's words: 1 to RP_MCU_RELAY_ARGS_MAX strings, the first an absolute path, none
 * empty or longer than PATH_MAX. */
static bool relay_words_valid(json_t *a)
{
    size_t i;
    json_t *w;

    if (!json_is_array(a) || json_array_size(a) < 1 || json_array_size(a) > RP_MCU_RELAY_ARGS_MAX)
        return false;
    json_array_foreach(a, i, w)
    {
        const char *s = json_string_value(w);
        if (s == NULL || s[0] == '\0' || strlen(s) >= PATH_MAX ||
            strlen(s) != json_string_length(w))
            return false;
        if (i == 0 && s[0] != '/')
            return false;
    }
    return true;
}

/* The board's attestation key: a P-256 SubjectPublicKeyInfo (DER), the form the board prints. */
static bool board_key_valid(const uint8_t *key, size_t len)
{
    rp_sig_alg_t alg;

    return len > 0 && len <= RP_PUBKEY_DER_MAX && rp_pubkey_alg(key, len, &alg) == RP_OK &&
           alg == RP_SIG_ECDSA_P256;
}

rp_err_t rp_mcu_board_key(const char *state_dir, const char *name,
                          uint8_t key[RP_PUBKEY_DER_MAX], size_t *len)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    rp_err_t err = mcu_path(state_dir, name, "key", path, sizeof(path));

    *len = 0;
    if (err == RP_OK)
        err = rp_read_file(path, RP_PUBKEY_DER_MAX, &data, len);
    if (err == RP_OK && !board_key_valid(data, *len))
        err = RP_ERR_MALFORMED;
    if (err == RP_OK)
        memcpy(key, data, *len);
    else
        *len = 0;
    free(data);
    if (err == RP_ERR_MALFORMED || err == RP_ERR_TOO_LARGE) {
        rp_log_error("%s is corrupt: it should hold the board's attestation key (a P-256 "
                     "SubjectPublicKeyInfo, DER). Fix: rampart-agent mcu attach again",
                     path);
        err = RP_ERR_MALFORMED;
    }
    return err;
}

rp_err_t rp_mcu_attached(const char *state_dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    rp_err_t err = relay_path(state_dir, name, path, sizeof(path));

    if (err != RP_OK)
        return err;
    if (lstat(path, &st) == 0)
        return RP_OK;
    return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
}

rp_err_t rp_mcu_relay_load(const char *state_dir, const char *name, rp_mcu_relay_t *r)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len, total = 0, i;
    json_t *j, *words, *w;
    rp_err_t err = relay_path(state_dir, name, path, sizeof(path));

    memset(r, 0, sizeof(*r));
    if (err == RP_OK)
        err = rp_read_file(path, RP_MCU_RELAY_FILE_MAX, &data, &len);
    if (err != RP_OK)
        return err == RP_ERR_TOO_LARGE ? RP_ERR_MALFORMED : err;
    j = json_loadb((const char *)data, len, 0, NULL);
    free(data);
    words = json_object_get(j, "relay");
    if (!relay_words_valid(words)) {
        json_decref(j);
        rp_log_error("%s is corrupt: it should hold {\"relay\": [\"/ABSOLUTE/PROGRAM\", "
                     "\"ARG\"...]} (at most %d words). Fix: rampart-agent mcu attach again",
                     path, RP_MCU_RELAY_ARGS_MAX);
        return RP_ERR_MALFORMED;
    }
    json_array_foreach(words, i, w) total += json_string_length(w) + 1;
    r->storage = malloc(total);
    if (r->storage == NULL) {
        json_decref(j);
        return RP_ERR_NO_MEMORY;
    }
    total = 0;
    json_array_foreach(words, i, w)
    {
        r->argv[i] = r->storage + total;
        memcpy(r->argv[i], json_string_value(w), json_string_length(w) + 1);
        total += json_string_length(w) + 1;
    }
    r->argc = (int)json_array_size(words);
    json_decref(j);
    total = (size_t)snprintf(r->lock, sizeof(r->lock), "%s/agent/mcu/%s.lock", state_dir, name);
    if (total >= sizeof(r->lock)) {
        rp_mcu_relay_free(r);
        return RP_ERR_INVALID_ARG;
    }
    return RP_OK;
}

void rp_mcu_relay_free(rp_mcu_relay_t *r)
{
    free(r->storage);
    memset(r, 0, sizeof(*r));
}

rp_err_t rp_mcu_relay_save(const char *state_dir, const char *name, char *const argv[], int argc,
                           const uint8_t *key, size_t key_len)
{
    char path[PATH_MAX], dir[PATH_MAX], kpath[PATH_MAX], *text;
    json_t *words = json_array(), *j;
    rp_err_t err = relay_path(state_dir, name, path, sizeof(path));

    if (err == RP_OK)
        err = mcu_path(state_dir, name, "key", kpath, sizeof(kpath));
    if (err == RP_OK && key != NULL && !board_key_valid(key, key_len))
        err = RP_ERR_BAD_KEY;
    for (int i = 0; words != NULL && i < argc; i++)
        json_array_append_new(words, json_string(argv[i]));
    if (err == RP_OK && !relay_words_valid(words))
        err = RP_ERR_INVALID_ARG;
    if (snprintf(dir, sizeof(dir), "%s/mcu", state_dir) >= (int)sizeof(dir))
        err = RP_ERR_INVALID_ARG;
    /* Readable by all (no secret in it): under the monitor the agent's user runs the relay. */
    if (err == RP_OK && ((mkdir(dir, 0755) != 0 && errno != EEXIST) || chmod(dir, 0755) != 0))
        err = RP_ERR_IO;
    /* The key first (or none: a pin dropped), then the relay that makes the component attached. */
    if (err == RP_OK && key != NULL)
        err = rp_write_file_atomic(kpath, key, key_len, 0644, 0);
    else if (err == RP_OK && unlink(kpath) != 0 && errno != ENOENT)
        err = RP_ERR_IO;
    j = err == RP_OK ? json_pack("{s:O}", "relay", words) : NULL;
    json_decref(words);
    if (err != RP_OK)
        return err;
    text = j != NULL ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (text == NULL)
        return RP_ERR_NO_MEMORY;
    err = rp_write_file_atomic(path, text, strlen(text), 0644, 0);
    free(text);
    return err;
}

/* ---- what the boot stage says (docs/mcu.md: its lines) ---- */

static bool prefixed(const char *line, size_t len, const char *prefix, const char **rest,
                     size_t *rest_len)
{
    size_t n = strlen(prefix);

    if (len < n || memcmp(line, prefix, n) != 0)
        return false;
    *rest = line + n;
    *rest_len = len - n;
    return true;
}

/* A decimal counter (0 to 2^32-1, 1 to 10 digits) that is all of s. */
static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
    uint64_t v = 0;

    if (len < 1 || len > 10)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* A reason: printable ASCII, kept whole or not at all (it becomes a report's detail). */
static void take_reason(char out[RP_MCU_REASON_MAX], const char *s, size_t len)
{
    if (len == 0 || len >= RP_MCU_REASON_MAX)
        return;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return;
    memcpy(out, s, len);
    out[len] = '\0';
}

/* "V counter N: booting", V of digits, dots and a plus. */
static void take_verdict(rp_mcu_boot_t *b, const char *line, size_t len, const char *s, size_t n)
{
    static const char tail[] = ": booting", mid[] = " counter ";
    size_t vlen;
    const char *c;
    uint32_t counter;

    if (n < sizeof(tail) - 1 || memcmp(s + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0)
        return;
    n -= sizeof(tail) - 1;
    for (vlen = 0;
         vlen < n && ((s[vlen] >= '0' && s[vlen] <= '9') || s[vlen] == '.' || s[vlen] == '+');
         vlen++)
        ;
    c = s + vlen;
    if (vlen == 0 || vlen >= sizeof(b->version) || n - vlen < sizeof(mid) - 1 ||
        memcmp(c, mid, sizeof(mid) - 1) != 0 ||
        !parse_u32(c + sizeof(mid) - 1, n - vlen - (sizeof(mid) - 1), &counter))
        return;
    b->booted = true;
    memcpy(b->version, s, vlen);
    b->version[vlen] = '\0';
    b->counter = counter;
    memcpy(b->verdict, line, len); /* len < RP_MCU_LINE_MAX: the caller's bound */
    b->verdict[len] = '\0';
}

/* "app: evidence HEX": the evidence whole (1 to RP_MCU_EVIDENCE_MAX bytes), or none. */
static void take_evidence(rp_mcu_boot_t *b, const char *s, size_t n)
{
    b->evidence_len = 0;
    if (n == 0 || n % 2 != 0 || n / 2 > sizeof(b->evidence) ||
        rp_hex_decode(s, n, b->evidence, n / 2) != RP_OK)
        return;
    b->evidence_len = n / 2;
}

void rp_mcu_boot_line(rp_mcu_boot_t *b, const char *line, size_t len)
{
    const char *s;
    size_t n;

    if (line == NULL || len > RP_MCU_OUTPUT_LINE_MAX)
        return;
    if (prefixed(line, len, RP_MCU_EVIDENCE_PREFIX, &s, &n)) {
        take_evidence(b, s, n);
        return;
    }
    if (len >= RP_MCU_LINE_MAX)
        return;
    if (prefixed(line, len, "boot: slot0 version ", &s, &n))
        take_verdict(b, line, len, s, n);
    else if (prefixed(line, len, "boot: slot1 refused: ", &s, &n))
        take_reason(b->slot1_refused, s, n);
    else if (prefixed(line, len, "boot: refused: ", &s, &n))
        take_reason(b->refused, s, n);
    else if (prefixed(line, len,
                      "boot: slot0 is on trial (it must confirm itself); security "
                      "counter ",
                      &s, &n)) {
        b->has_stored = parse_u32(s, n, &b->stored);
        b->trial = b->has_stored;
    } else if (prefixed(line, len, "boot: security counter ", &s, &n))
        b->has_stored = parse_u32(s, n, &b->stored);
    else if (prefixed(line, len,
                      "boot: slot0 confirmed by the image: the security counter is "
                      "raised",
                      &s, &n))
        b->confirmed = n == 0;
    else if (prefixed(line, len, "boot: slot0 was not confirmed: reverting to the previous image",
                      &s, &n))
        b->reverted = n == 0;
}

/* ---- running the relay ---- */

static long ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

rp_err_t rp_mcu_boot(const rp_mcu_relay_t *r, const char *image, const char *nonce_hex,
                     int timeout_s, rp_mcu_boot_t *b, char *detail, size_t cap)
{
    char *argv[RP_MCU_RELAY_ARGS_MAX + 5], line[RP_MCU_OUTPUT_LINE_MAX + 1], buf[4096];
    size_t used = 0;
    bool overlong = false, timed_out = false;
    struct timespec t0;
    int p[2], status = 0, argc = r->argc;
    pid_t pid;

    memset(b, 0, sizeof(*b));
    if (argc < 1 || argc > RP_MCU_RELAY_ARGS_MAX) {
        snprintf(detail, cap, "no relay to the MCU");
        return RP_ERR_INVALID_ARG;
    }
    /* Under a seccomp filter (rampart-monitor's has no exec) the relay could not start. */
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0) {
        snprintf(detail, cap,
                 "the MCU's relay cannot run under a seccomp filter (under rampart-monitor the "
                 "agent's relay runner runs it)");
        return RP_ERR_IO;
    }
    memcpy(argv, r->argv, (size_t)argc * sizeof(argv[0]));
    if (image != NULL) {
        argv[argc++] = "--slot1";
        argv[argc++] = (char *)image;
    }
    if (nonce_hex != NULL) {
        argv[argc++] = "--nonce";
        argv[argc++] = (char *)nonce_hex;
    }
    argv[argc] = NULL;
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(detail, cap, "cannot run the MCU's relay: %s", strerror(errno));
        return RP_ERR_IO;
    }
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        /* Its own process group: a relay stopped at the timeout takes its emulator along. */
        if (setpgid(0, 0) != 0 || null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 ||
            dup2(p[1], 2) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        snprintf(detail, cap, "cannot run the MCU's relay: %s", strerror(errno));
        return RP_ERR_IO;
    }
    (void)setpgid(pid, pid);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long left = (long)timeout_s * 1000 - ms_since(&t0);
        struct pollfd pf = {p[0], POLLIN, 0};
        ssize_t n;
        if (left <= 0) {
            timed_out = true;
            break;
        }
        if (poll(&pf, 1, left < RP_AGENT_WAIT_TURN_MS ? (int)left : RP_AGENT_WAIT_TURN_MS) < 0 &&
            errno != EINTR)
            break;
        rp_agent_wait_tick(); /* a long boot is a wait, not a hung daemon */
        if (pf.revents == 0)
            continue;
        n = read(p[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        /* Lines, each at most RP_MCU_OUTPUT_LINE_MAX bytes: a longer one is skipped whole. */
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                if (!overlong)
                    rp_mcu_boot_line(b, line, used);
                used = 0;
                overlong = false;
            } else if (used < RP_MCU_OUTPUT_LINE_MAX) {
                line[used++] = buf[i];
            } else {
                overlong = true;
            }
        }
    }
    if (used > 0 && !overlong && !timed_out)
        rp_mcu_boot_line(b, line, used);
    close(p[0]);
    if (timed_out)
        (void)kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out) {
        snprintf(detail, cap, "the MCU's relay ran past %d s: stopped", timeout_s);
        return RP_ERR_IO;
    }
    if (!b->booted && b->refused[0] == '\0') {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            snprintf(detail, cap, "cannot run the MCU's relay %s", argv[0]);
        else
            snprintf(detail, cap, "the MCU's relay said nothing of a boot (exit status %d)",
                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return RP_ERR_IO;
    }
    return RP_OK;
}

/* ---- the MCU's trial ---- */

/* What the MCU runs now, for a detail: "the MCU runs V (its verdict line)". */
static void runs(const rp_mcu_boot_t *b, char *out, size_t cap)
{
    if (b->booted)
        snprintf(out, cap, "the MCU runs %s (%s)", b->version, b->verdict);
    else
        snprintf(out, cap, "the MCU boots nothing (boot: refused: %s)", b->refused);
}

/* A stop's second on the boot clock (CLOCK_MONOTONIC), + 1; 0: none came (rp_mcu_stop). */
static volatile sig_atomic_t stopped_at;

void rp_mcu_stop(void)
{
    struct timespec now;

    if (stopped_at == 0 && clock_gettime(CLOCK_MONOTONIC, &now) == 0)
        stopped_at = (sig_atomic_t)(now.tv_sec + 1);
}

/* The timeout of a boot begun now: RP_MCU_RELAY_TIMEOUT_S, or after a stop what is left of it
 * from the stop (0: none, nothing is begun). */
static int boot_budget(void)
{
    struct timespec now;
    long left;

    if (stopped_at == 0)
        return RP_MCU_RELAY_TIMEOUT_S;
    clock_gettime(CLOCK_MONOTONIC, &now);
    left = (long)stopped_at - 1 + RP_MCU_RELAY_TIMEOUT_S - (long)now.tv_sec;
    return left > 0 ? (int)left : 0;
}

/* The board's lock (r->lock), taken: its descriptor, inherited by the relay (no O_CLOEXEC), or -1
 * (detail said); INT_MAX when r names none. Another relay holding it is waited for, as long as
 * one relay may run. */
static int board_lock(const rp_mcu_relay_t *r, char *detail, size_t cap)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(r->lock, '/');
    struct timespec t0, pause = {0, 100 * 1000 * 1000};
    int fd;

    if (r->lock[0] == '\0')
        return INT_MAX;
    if (slash != NULL && (size_t)(slash - r->lock) < sizeof(dir)) {
        memcpy(dir, r->lock, (size_t)(slash - r->lock));
        dir[slash - r->lock] = '\0';
        slash = strrchr(dir, '/');
        if (mkdir(dir, 0700) != 0 && errno == ENOENT && slash != NULL) { /* S/agent/ first */
            dir[slash - dir] = '\0';
            (void)mkdir(dir, 0700);
            dir[slash - dir] = '/';
            (void)mkdir(dir, 0700); /* S/agent/mcu/: the agent's */
        }
    }
    fd = open(r->lock, O_RDWR | O_CREAT | O_NOFOLLOW, 0600); /* NOLINT: the relay inherits it */
    if (fd < 0) {
        snprintf(detail, cap, "cannot open the MCU's lock %s: %s", r->lock, strerror(errno));
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (stopped_at != 0) { /* nothing handed over yet: a stop begins nothing (rp_mcu_stop) */
            snprintf(detail, cap, "stopped while another relay held %s: nothing handed over",
                     r->lock);
            close(fd);
            return -1;
        }
        if ((errno != EWOULDBLOCK && errno != EINTR) ||
            ms_since(&t0) > RP_MCU_RELAY_TIMEOUT_S * 1000L) {
            snprintf(detail, cap, "the MCU is busy: another relay holds %s (%s)", r->lock,
                     strerror(errno));
            close(fd);
            return -1;
        }
        rp_agent_wait_tick();
        nanosleep(&pause, NULL);
    }
    return fd;
}

void rp_mcu_install(const rp_mcu_relay_t *r, const char *path, const char *version,
                    const uint8_t *nonce, size_t nonce_len, rp_update_state_t *state,
                    char *detail, size_t cap, uint8_t *evidence, size_t *evidence_len)
{
    rp_mcu_boot_t *b = calloc(1, sizeof(*b));
    char now[RP_MCU_LINE_MAX + 64], nonce_hex[2 * RP_EAT_NONCE_MAX + 1];
    int lock, budget;

    *state = RP_UPDATE_FAILED;
    if (evidence_len != NULL)
        *evidence_len = 0;
    if (nonce != NULL && (nonce_len < RP_EAT_NONCE_MIN || nonce_len > RP_EAT_NONCE_MAX ||
                          rp_hex_encode(nonce, nonce_len, nonce_hex, sizeof(nonce_hex)) != RP_OK)) {
        free(b);
        snprintf(detail, cap, "the nonce for the MCU's evidence is not 8 to 64 bytes");
        return;
    }
    if (b == NULL) {
        snprintf(detail, cap, "no memory");
        return;
    }
    /* One relay per board across both boots: one that interleaved would see the other's. */
    lock = board_lock(r, detail, cap);
    if (lock < 0) {
        free(b);
        return;
    }
    if (stopped_at != 0) { /* a stop begins nothing (rp_mcu_stop) */
        snprintf(detail, cap, "stopped before the relay began: nothing handed over");
        goto out;
    }
    /* Handed over: the boot stage verifies it with its own key and counter, and swaps it in on
     * trial or refuses it (the previous image boots). */
    if (rp_mcu_boot(r, path, NULL, RP_MCU_RELAY_TIMEOUT_S, b, detail, cap) != RP_OK)
        goto out;
    runs(b, now, sizeof(now));
    if (b->slot1_refused[0] != '\0') {
        *state = RP_UPDATE_REFUSED;
        snprintf(detail, cap, "the MCU's boot stage refused it: %s; %s", b->slot1_refused, now);
        goto out;
    }
    if (!b->booted || strcmp(b->version, version) != 0 || !b->trial) {
        snprintf(detail, cap, "the MCU did not take it on trial: %s", now);
        goto out;
    }
    /* The next boot: the image confirmed itself (the boot stage raises the counter) or not (it
     * reverts); with a nonce, the board's evidence of what it runs then. After a stop, within
     * what is left of the stop's bound (rp_mcu_stop). */
    budget = boot_budget();
    if (budget == 0) {
        snprintf(detail, cap,
                 "stopped: the MCU took it on trial, and its next power-up confirms or reverts "
                 "it; %s",
                 now);
        goto out;
    }
    if (rp_mcu_boot(r, NULL, nonce != NULL ? nonce_hex : NULL, budget, b, detail, cap) != RP_OK)
        goto out;
    runs(b, now, sizeof(now));
    if (b->reverted || (b->booted && strcmp(b->version, version) != 0)) {
        *state = RP_UPDATE_ROLLED_BACK;
        snprintf(detail, cap, "it did not confirm itself on the MCU: reverted; %s", now);
    } else if (b->booted && b->confirmed && !b->trial && b->has_stored) {
        *state = RP_UPDATE_INSTALLED;
        snprintf(detail, cap, "confirmed on the MCU, its security counter now %lu; %s",
                 (unsigned long)b->stored, now);
        if (evidence != NULL && evidence_len != NULL && b->evidence_len > 0) {
            memcpy(evidence, b->evidence, b->evidence_len);
            *evidence_len = b->evidence_len;
        }
    } else {
        snprintf(detail, cap, "the MCU did not confirm it: %s", now);
    }
out:
    if (lock != INT_MAX)
        close(lock); /* a relay still running (stopped at its timeout: its group killed) held it */
    free(b);
}

rp_err_t rp_mcu_health(rp_agent_t *a, const char *name, const char *slot_path, const char *version,
                       bool *healthy, rp_update_state_t *unhealthy, char *detail, size_t cap)
{
    rp_mcu_relay_t relay;
    rp_err_t err = rp_mcu_relay_load(a->state_dir, name, &relay);

    if (err != RP_OK)
        return err;
    /* The relay (and what it runs) inherits this process's descriptors, the board's lock on
     * purpose; not a TPM connection (single-process mode: the agent holds the root of trust),
     * which /dev/tpm0 admits once and the TSS opens without close-on-exec (rp_rot_idle, rot.h). */
    rp_rot_idle(a->rot);
    rp_mcu_install(&relay, slot_path, version, NULL, 0, unhealthy, detail, cap, NULL, NULL);
    rp_mcu_relay_free(&relay);
    *healthy = *unhealthy == RP_UPDATE_INSTALLED;
    return RP_OK;
}

rp_err_t rp_mcu_evidence_check(const char *state_dir, const char *name,
                               const uint8_t digest[RP_SHA256_LEN], const uint8_t *nonce,
                               size_t nonce_len, const uint8_t *evidence, size_t len, char *why,
                               size_t cap)
{
    static rp_eat_claims_t c;
    const rp_eat_component_t *fw = NULL;
    uint8_t key[RP_PUBKEY_DER_MAX];
    size_t key_len;
    bool proven = false;
    rp_err_t err = rp_mcu_board_key(state_dir, name, key, &key_len);

    if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
        snprintf(why, cap, "cannot read the board's pinned key (S/mcu/%s.key): %s", name,
                 rp_strerror(err));
        return err;
    }
    if (err == RP_ERR_NOT_FOUND)
        snprintf(why, cap,
                 "no attestation key is pinned for the board (rampart-agent mcu attach "
                 "--attestation-key)");
    else if (len == 0)
        snprintf(why, cap, "no evidence from the board");
    else if ((err = rp_eat_verify(evidence, len, key, key_len, &c)) != RP_OK)
        snprintf(why, cap, "the board's evidence does not verify with its pinned key: %s",
                 rp_strerror(err));
    else if (c.nonce_len != nonce_len || rp_ct_memcmp(c.nonce, nonce, nonce_len) != 0)
        snprintf(why, cap, "the board's evidence is not over the nonce handed with the trial");
    else {
        for (size_t i = 0; i < c.ncomponents && fw == NULL; i++)
            if (strcmp(c.components[i].name, RP_MCU_EVIDENCE_COMPONENT) == 0)
                fw = &c.components[i];
        if (fw == NULL)
            snprintf(why, cap, "the board's evidence measures no %s", RP_MCU_EVIDENCE_COMPONENT);
        else if (memcmp(fw->digest, digest, RP_SHA256_LEN) != 0)
            snprintf(why, cap, "the board runs another image (its evidence says %s %s)",
                     RP_MCU_EVIDENCE_COMPONENT, fw->version);
        else
            proven = true;
    }
    if (proven && cap > 0)
        why[0] = '\0';
    memset(&c, 0, sizeof(c));
    return proven ? RP_OK : RP_ERR_DENIED;
}
