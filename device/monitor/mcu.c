/* Firmware for a microcontroller beside the device: the bridge to its boot stage (mcu.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "rampart/component.h"
#include "rampart/file.h"
#include "rampart/log.h"
#include "mcu.h"

#define RELAY_TIMEOUT_S 120

static rp_err_t relay_path(const char *state_dir, const char *name, char *out, size_t cap)
{
    int n;

    if (name == NULL || !rp_component_name_valid(name, strlen(name)))
        return RP_ERR_INVALID_ARG;
    n = snprintf(out, cap, "%s/mcu/%s.json", state_dir, name);
    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
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
    return RP_OK;
}

void rp_mcu_relay_free(rp_mcu_relay_t *r)
{
    free(r->storage);
    memset(r, 0, sizeof(*r));
}

rp_err_t rp_mcu_relay_save(const char *state_dir, const char *name, char *const argv[], int argc)
{
    char path[PATH_MAX], dir[PATH_MAX], *text;
    json_t *words = json_array(), *j;
    rp_err_t err = relay_path(state_dir, name, path, sizeof(path));

    for (int i = 0; words != NULL && i < argc; i++)
        json_array_append_new(words, json_string(argv[i]));
    if (err == RP_OK && !relay_words_valid(words))
        err = RP_ERR_INVALID_ARG;
    if (snprintf(dir, sizeof(dir), "%s/mcu", state_dir) >= (int)sizeof(dir))
        err = RP_ERR_INVALID_ARG;
    /* Readable by all (no secret in it): under the monitor the agent's user runs the relay. */
    if (err == RP_OK && ((mkdir(dir, 0755) != 0 && errno != EEXIST) || chmod(dir, 0755) != 0))
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

void rp_mcu_boot_line(rp_mcu_boot_t *b, const char *line, size_t len)
{
    const char *s;
    size_t n;

    if (line == NULL || len >= RP_MCU_LINE_MAX)
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

rp_err_t rp_mcu_boot(const rp_mcu_relay_t *r, const char *image, int timeout_s, rp_mcu_boot_t *b,
                     char *detail, size_t cap)
{
    char *argv[RP_MCU_RELAY_ARGS_MAX + 3], line[RP_MCU_LINE_MAX + 1], buf[4096];
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
        if (poll(&pf, 1, (int)left) < 0 && errno != EINTR)
            break;
        if (pf.revents == 0)
            continue;
        n = read(p[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        /* Lines, each at most RP_MCU_LINE_MAX bytes: a longer one is skipped whole. */
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                if (!overlong)
                    rp_mcu_boot_line(b, line, used);
                used = 0;
                overlong = false;
            } else if (used < RP_MCU_LINE_MAX) {
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

void rp_mcu_install(const rp_mcu_relay_t *r, const char *path, const char *version,
                    rp_update_state_t *state, char *detail, size_t cap)
{
    rp_mcu_boot_t *b = calloc(1, sizeof(*b));
    char now[RP_MCU_LINE_MAX + 64];

    *state = RP_UPDATE_FAILED;
    if (b == NULL) {
        snprintf(detail, cap, "no memory");
        return;
    }
    /* Handed over: the boot stage verifies it with its own key and counter, and swaps it in on
     * trial or refuses it (the previous image boots). */
    if (rp_mcu_boot(r, path, RELAY_TIMEOUT_S, b, detail, cap) != RP_OK)
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
     * reverts). */
    if (rp_mcu_boot(r, NULL, RELAY_TIMEOUT_S, b, detail, cap) != RP_OK)
        goto out;
    runs(b, now, sizeof(now));
    if (b->reverted || (b->booted && strcmp(b->version, version) != 0)) {
        *state = RP_UPDATE_ROLLED_BACK;
        snprintf(detail, cap, "it did not confirm itself on the MCU: reverted; %s", now);
    } else if (b->booted && b->confirmed && !b->trial && b->has_stored) {
        *state = RP_UPDATE_INSTALLED;
        snprintf(detail, cap, "confirmed on the MCU, its security counter now %lu; %s",
                 (unsigned long)b->stored, now);
    } else {
        snprintf(detail, cap, "the MCU did not confirm it: %s", now);
    }
out:
    free(b);
}

rp_err_t rp_mcu_health(rp_agent_t *a, const char *name, const char *slot_path, const char *version,
                       bool *healthy, rp_update_state_t *unhealthy, char *detail, size_t cap)
{
    rp_mcu_relay_t relay;
    rp_err_t err = rp_mcu_relay_load(a->state_dir, name, &relay);

    if (err != RP_OK)
        return err;
    rp_mcu_install(&relay, slot_path, version, unhealthy, detail, cap);
    rp_mcu_relay_free(&relay);
    *healthy = *unhealthy == RP_UPDATE_INSTALLED;
    return RP_OK;
}
