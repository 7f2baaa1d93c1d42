/*
 * The device agent: boot detection, measurement, evidence and attestation. Every file it writes is
 * replaced atomically, so a power cut leaves the previous certificate or the new one.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent.h"
#include "capability.h"
#include "slots.h"
#include "rampart/base64.h"
#include "rampart/component.h"
#include "rampart/evidence.h"
#include "rampart/key.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/http_client.h"
#include "rampart/image.h"
#include "rampart/log.h"
#include "rampart/remote_key.h"

#define BOOT_ID_FILE "/proc/sys/kernel/random/boot_id"
#define LOCKDOWN_FILE "/sys/kernel/security/lockdown"
#define TCTI_MAX 512
#define MEASURED_MAX (16 * 1024) /* 16 components take about 5 KiB */

static void (*wait_hook)(void);

void rp_agent_set_wait_hook(void (*tick)(void))
{
    wait_hook = tick;
}

void rp_agent_wait_tick(void)
{
    if (wait_hook != NULL)
        wait_hook();
}

static rp_err_t state_path(const rp_agent_t *a, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", a->state_dir, name);

    return n < 0 || (size_t)n >= cap ? RP_ERR_INVALID_ARG : RP_OK;
}

static rp_err_t write_state(const char *dir, const char *name, const void *data, size_t len,
                            mode_t mode)
{
    char path[PATH_MAX + 64];

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return RP_ERR_INVALID_ARG;
    return rp_write_file_atomic(path, data, len, mode, 0);
}

/* A small text file, trailing newlines removed; absent is RP_ERR_NOT_FOUND. */
static rp_err_t read_text(const char *path, size_t max, char **text)
{
    uint8_t *data;
    size_t len;
    rp_err_t err = rp_read_file(path, max, &data, &len);

    if (err != RP_OK)
        return err;
    if (strlen((const char *)data) != len) {
        free(data);
        return RP_ERR_MALFORMED; /* a NUL inside: not text */
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        data[--len] = '\0';
    *text = (char *)data;
    return RP_OK;
}

/* The unprivileged agent's view: S is root's and writable by no one else (the monitor's), and
 * S/agent/ is this user's and private. What is inside S is the monitor's to check. */
static rp_err_t check_state_dir_as_agent(const char *state_dir)
{
    char path[PATH_MAX + 16];
    struct stat sb;
    rp_err_t err;

    if (stat(state_dir, &sb) != 0)
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    if (sb.st_uid != 0 || (sb.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        rp_log_error("%s is owned by uid %u, mode %04o: a state directory served by the monitor is "
                     "root's and writable by no one else. Fix: chown root %s; chmod 711 %s",
                     state_dir, (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777), state_dir,
                     state_dir);
        return RP_ERR_INVALID_ARG;
    }
    if (snprintf(path, sizeof(path), "%s/" RP_AGENT_DIR, state_dir) >= (int)sizeof(path))
        return RP_ERR_INVALID_ARG;
    /* Missing, or out of reach (S not yet passable: no monitor made it so): said when the agent
     * needs it, with the fix. */
    if (lstat(path, &sb) != 0)
        return RP_OK;
    err = rp_file_check_private(path, false);
    return err;
}

rp_err_t rp_agent_check_state_dir(const char *state_dir)
{
    struct stat sb;

    if (geteuid() != 0 && stat(state_dir, &sb) == 0 && sb.st_uid != geteuid())
        return check_state_dir_as_agent(state_dir);
    return rp_agent_check_state_tree(state_dir);
}

rp_err_t rp_agent_check_state_tree(const char *state_dir)
{
    static const char *const subdirs[] = {"components", "image-keys", "update"};
    char path[PATH_MAX + 16];
    rp_err_t err;
    struct dirent *e;
    DIR *dir;

    err = rp_file_check_private(state_dir, false);

    for (size_t i = 0; err == RP_OK && i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        if (snprintf(path, sizeof(path), "%s/%s", state_dir, subdirs[i]) >= (int)sizeof(path))
            return RP_ERR_INVALID_ARG;
        err = rp_file_check_private(path, false);
        if (err == RP_ERR_NOT_FOUND)
            err = RP_OK;
    }
    /* Each component's directory too: it holds the slots and the program the daemon runs. */
    if (err != RP_OK ||
        snprintf(path, sizeof(path), "%s/components", state_dir) >= (int)sizeof(path))
        return err;
    if ((dir = opendir(path)) == NULL)
        return errno == ENOENT ? RP_OK : RP_ERR_IO;
    while (err == RP_OK && (e = readdir(dir)) != NULL) {
        char sub[PATH_MAX + 16];
        if (e->d_name[0] == '.' ||
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
            continue;
        err = rp_file_check_private(sub, false);
        if (err == RP_ERR_NOT_FOUND)
            err = RP_OK;
    }
    closedir(dir);
    return err;
}

rp_err_t rp_agent_save_tcti(const char *state_dir, const char *tcti)
{
    return write_state(state_dir, "tcti", tcti, strlen(tcti), 0600);
}

rp_err_t rp_agent_open(rp_agent_t *a, const char *state_dir, const char *tcti, bool tpm_sole_user)
{
    rp_rot_config_t cfg = {0};
    char path[PATH_MAX + 16], *saved = NULL;
    rp_err_t err;

    memset(a, 0, sizeof(*a));
    if (strlen(state_dir) >= sizeof(a->state_dir))
        return RP_ERR_INVALID_ARG;
    strcpy(a->state_dir, state_dir);
    if (tcti == NULL && state_path(a, "tcti", path, sizeof(path)) == RP_OK) {
        /* A corrupt one is not ignored: the default would be another TPM. */
        err = read_text(path, TCTI_MAX, &saved);
        if (err == RP_OK) {
            bool text = saved[0] != '\0';
            for (const unsigned char *p = (const unsigned char *)saved; text && *p != '\0'; p++)
                text = *p >= 0x20 && *p != 0x7f;
            if (!text)
                err = RP_ERR_MALFORMED; /* empty, or not one line of text */
        }
        if (err == RP_OK)
            tcti = saved;
        else if (err != RP_ERR_NOT_FOUND) {
            rp_log_error("%s is corrupt (%s): it should hold the TPM's TCTI given at "
                         "provisioning, one line. Fix: give --tcti TCTI, or write it back",
                         path,
                         err == RP_ERR_TOO_LARGE ? "larger than 512 bytes"
                                                 : "empty, or not one line of text");
            free(saved);
            return RP_ERR_MALFORMED;
        }
    }
    cfg.state_dir = state_dir;
    cfg.tcti = tcti;
    cfg.sole_user = tpm_sole_user;
    err = rp_rot_open(&cfg, &a->rot);
    free(saved);
    if (err == RP_OK)
        err = rp_rot_device_id(a->rot, a->device_id);
    if (err != RP_OK)
        rp_agent_close(a);
    return err;
}

void rp_agent_close(rp_agent_t *a)
{
    rp_rot_close(a->rot);
    a->rot = NULL;
    EVP_PKEY_free(a->pub);
    a->pub = NULL;
}

/* ---- the agent's own files ---- */

rp_err_t rp_agent_file(const rp_agent_t *a, const char *name, char *out, size_t cap)
{
    char old[PATH_MAX + 64];
    struct stat sb;
    int n = snprintf(out, cap, "%s/" RP_AGENT_DIR "/%s", a->state_dir, name);

    if (n < 0 || (size_t)n >= cap)
        return RP_ERR_INVALID_ARG;
    if (lstat(out, &sb) == 0)
        return RP_OK;
    /* A state directory from before S/agent/: read where the file was then. */
    if (snprintf(old, sizeof(old), "%s/%s", a->state_dir, name) < (int)sizeof(old) &&
        lstat(old, &sb) == 0 && strlen(old) < cap)
        strcpy(out, old);
    return RP_OK;
}

/* mkdir -m 0700 of each directory of path below S/agent/ (path's last part is the file). */
static rp_err_t make_parents(const char *state_dir, const char *path)
{
    size_t base = strlen(state_dir) + 1 + strlen(RP_AGENT_DIR);
    char dir[PATH_MAX + 64];

    if (strlen(path) >= sizeof(dir))
        return RP_ERR_INVALID_ARG;
    strcpy(dir, path);
    for (char *p = dir + base + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            rp_log_error("%s: cannot make it: %s", dir, strerror(errno));
            return RP_ERR_IO;
        }
        *p = '/';
    }
    return RP_OK;
}

rp_err_t rp_agent_file_for_write(const rp_agent_t *a, const char *name, char *out, size_t cap)
{
    char dir[PATH_MAX + 16];
    struct stat sb;
    int n = snprintf(out, cap, "%s/" RP_AGENT_DIR "/%s", a->state_dir, name);

    if (n < 0 || (size_t)n >= cap ||
        snprintf(dir, sizeof(dir), "%s/" RP_AGENT_DIR, a->state_dir) >= (int)sizeof(dir))
        return RP_ERR_INVALID_ARG;
    if (lstat(dir, &sb) != 0 && errno == ENOENT && geteuid() == 0 &&
        rp_agent_dir_make(a->state_dir, 0, 0) != RP_OK)
        return RP_ERR_IO;
    if (lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid()) {
        rp_log_error("%s: the agent's own directory is missing or not this user's. Fix: start "
                     "rampart-monitor --state-dir %s --agent-user USER (it makes it for USER)",
                     dir, a->state_dir);
        return RP_ERR_NOT_FOUND;
    }
    return make_parents(a->state_dir, out);
}

rp_err_t rp_agent_json_keep(const rp_agent_t *a, const char *name, json_t *j)
{
    char path[PATH_MAX + 64], *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    rp_err_t err =
        text != NULL ? rp_agent_file_for_write(a, name, path, sizeof(path)) : RP_ERR_NO_MEMORY;

    json_decref(j);
    if (err == RP_OK)
        err = rp_write_file_atomic(path, text, strlen(text), 0600, 0);
    free(text);
    return err;
}

/*
 * Hand over what S/agent holds with it: a device run in single-process mode (as root) before its
 * monitor's first start left the agent's files there as root's (targets.json, the certificate,
 * downloads), and the unprivileged agent must read and replace them. Each entry is opened without
 * following a link and changed through that descriptor, so what is checked is what is changed;
 * links are left as they are, and a regular file with another name elsewhere (a hard link) is not
 * touched. Depth and entries are bounded (the agent's tree is small and flat).
 */
#define HAND_OVER_DEPTH 8
#define HAND_OVER_ENTRIES 4096
static rp_err_t hand_over_tree(int dirfd, uid_t uid, gid_t gid, int depth, size_t *budget)
{
    struct dirent *e;
    rp_err_t err = RP_OK;
    int walk = dup(dirfd);
    DIR *d = walk >= 0 ? fdopendir(walk) : NULL;

    if (d == NULL) {
        if (walk >= 0)
            close(walk);
        return RP_ERR_IO;
    }
    while (err == RP_OK && (e = readdir(d)) != NULL) {
        struct stat st;
        int fd;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (*budget == 0 || depth >= HAND_OVER_DEPTH) {
            err = RP_ERR_TOO_LARGE;
            break;
        }
        (*budget)--;
        fd = openat(dirfd, e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0) {
            err = RP_ERR_IO;
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            err = sub >= 0 ? hand_over_tree(sub, uid, gid, depth + 1, budget) : RP_ERR_IO;
            if (sub >= 0)
                close(sub);
            if (err == RP_OK && fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0)
                err = RP_ERR_IO;
        } else if (S_ISREG(st.st_mode) && st.st_nlink == 1) {
            if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0)
                err = RP_ERR_IO;
        }
        if (err != RP_OK)
            rp_log_error("%s: cannot hand it over: %s", e->d_name, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
    return err;
}

rp_err_t rp_agent_dir_make(const char *state_dir, uid_t uid, gid_t gid)
{
    size_t budget = HAND_OVER_ENTRIES;
    char path[PATH_MAX + 16];
    struct stat sb;
    int fd;

    if (snprintf(path, sizeof(path), "%s/" RP_AGENT_DIR, state_dir) >= (int)sizeof(path))
        return RP_ERR_INVALID_ARG;
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        rp_log_error("%s: cannot make it: %s", path, strerror(errno));
        return RP_ERR_IO;
    }
    /* Opened without following a link: chown and chmod act on that directory, never on where a
     * planted symlink points. */
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        rp_log_error("%s is not a directory (a symlink?): refusing it. Fix: remove it", path);
        if (fd >= 0)
            close(fd);
        return RP_ERR_INVALID_ARG;
    }
    /* Its contents first: while the directory is still root's (0700), nothing else changes them. */
    if (uid != 0 && (sb.st_uid != uid || sb.st_gid != gid) &&
        hand_over_tree(fd, uid, gid, 0, &budget) != RP_OK) {
        rp_log_error("%s: cannot hand what it holds to uid %u (said above)", path, (unsigned)uid);
        close(fd);
        return RP_ERR_IO;
    }
    if ((sb.st_uid != uid || sb.st_gid != gid) && fchown(fd, uid, gid) != 0) {
        rp_log_error("%s: cannot hand it to uid %u: %s", path, (unsigned)uid, strerror(errno));
        close(fd);
        return RP_ERR_IO;
    }
    if (fchmod(fd, 0700) != 0) {
        close(fd);
        return RP_ERR_IO;
    }
    close(fd);
    return RP_OK;
}

EVP_PKEY *rp_agent_pubkey(const rp_agent_t *a)
{
    return a->rot != NULL ? rp_rot_pkey(a->rot) : a->pub;
}

/* One measured component, as the measured list keeps it: what the image says of itself (the
 * core reads it) and the digest of what is there. */
static rp_err_t read_component(const char *path, const char *name, rp_eat_component_t *c)
{
    uint8_t scratch[4096];
    rp_image_identity_t id;
    rp_file_image_t img;
    rp_err_t err;

    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    err = rp_file_image_open(&img, path);
    if (err != RP_OK)
        return err;
    err = rp_image_identity_read(&img.io, &id);
    if (err == RP_OK)
        err = rp_image_hash(&img.io, &id.layout, scratch, sizeof(scratch), c->digest);
    if (err == RP_OK)
        err = rp_image_version_format(&id.layout.hdr.version, c->version, sizeof(c->version));
    rp_file_image_close(&img);
    if (err != RP_OK)
        return err;
    c->has_security_counter = id.has_security_counter;
    c->security_counter = id.security_counter;
    if (id.has_signer)
        memcpy(c->signer, id.signer, RP_SHA256_LEN);
    return RP_OK;
}

/*
 * What was measured this boot, in the order measured: S/measured, JSON replaced atomically,
 *   {"format": 1, "boot": N, "components": [{"name", "version", "digest": hex, "signer": hex,
 *    "security_counter": n or null}, ...]}
 * Its list must stay the one the measurement register was extended with: losing it means the
 * evidence cannot explain the register until the next boot.
 */
#define MEASURED_FILE "measured"
#define MEASURED_FORMAT 1

struct measured {
    uint64_t boot;
    size_t n;
    rp_eat_component_t c[RP_EAT_MAX_COMPONENTS];
};

static rp_err_t bad(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Say why in why[cap]; RP_ERR_MALFORMED. */
static rp_err_t bad(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return RP_ERR_MALFORMED;
}

static bool hex32(const char *s, uint8_t out[32])
{
    return s != NULL && strlen(s) == 64 && rp_hex_decode(s, 64, out, 32) == RP_OK;
}

static rp_err_t measured_parse(const char *text, size_t len, struct measured *m, char *why,
                               size_t cap)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr), *list, *e;
    json_int_t format, boot;
    rp_err_t err = RP_OK;
    size_t i;

    if (!json_is_object(j)) {
        json_decref(j);
        return j == NULL ? bad(why, cap, "not JSON (%s, line %d)", jerr.text, jerr.line)
                         : bad(why, cap, "not a JSON object");
    }
    format = json_integer_value(json_object_get(j, "format"));
    boot = json_integer_value(json_object_get(j, "boot"));
    list = json_object_get(j, "components");
    if (!json_is_integer(json_object_get(j, "format")))
        err = bad(why, cap, "no \"format\"");
    else if (format != MEASURED_FORMAT)
        err = bad(why, cap, "format %lld, and this agent reads format %d (a newer agent's?)",
                  (long long)format, MEASURED_FORMAT);
    else if (!json_is_integer(json_object_get(j, "boot")) || boot < 0)
        err = bad(why, cap, "\"boot\" is not a count");
    else if (!json_is_array(list) || json_array_size(list) > RP_EAT_MAX_COMPONENTS)
        err = bad(why, cap, "\"components\" is not a list of at most %d", RP_EAT_MAX_COMPONENTS);
    m->boot = (uint64_t)boot;
    json_array_foreach(list, i, e)
    {
        rp_eat_component_t *c = &m->c[i];
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *version = json_string_value(json_object_get(e, "version"));
        json_t *cnt = json_object_get(e, "security_counter");

        if (err != RP_OK)
            break;
        if (name == NULL || !rp_component_name_valid(name, strlen(name)))
            err = bad(why, cap, "component %zu: no valid \"name\"", i + 1);
        else if (version == NULL || strlen(version) == 0 || strlen(version) > RP_EAT_VERSION_MAX)
            err = bad(why, cap, "component %zu (%s): no valid \"version\"", i + 1, name);
        else if (!hex32(json_string_value(json_object_get(e, "digest")), c->digest) ||
                 !hex32(json_string_value(json_object_get(e, "signer")), c->signer))
            err =
                bad(why, cap, "component %zu (%s): \"digest\" and \"signer\" must be 64 hex digits",
                    i + 1, name);
        else if (!json_is_null(cnt) && (!json_is_integer(cnt) || json_integer_value(cnt) < 0 ||
                                        json_integer_value(cnt) > UINT32_MAX))
            err = bad(why, cap, "component %zu (%s): \"security_counter\" is not null or 0 to %lu",
                      i + 1, name, (unsigned long)UINT32_MAX);
        if (err != RP_OK)
            break;
        snprintf(c->name, sizeof(c->name), "%s", name);
        snprintf(c->version, sizeof(c->version), "%s", version);
        c->has_security_counter = json_is_integer(cnt);
        c->security_counter = (uint32_t)json_integer_value(cnt);
        m->n++;
    }
    json_decref(j);
    return err;
}

/* The list as agents before format 1 wrote it: "boot N", then per component a line
 * "DIGEST SIGNER COUNTER|- VERSION NAME". Read once, to convert it. */
static rp_err_t measured_parse_lines(char *text, struct measured *m, char *why, size_t cap)
{
    char *line, *save = NULL, tail;
    unsigned long long boot;

    line = strtok_r(text, "\n", &save);
    if (line == NULL || sscanf(line, "boot %llu%c", &boot, &tail) != 1)
        return bad(why, cap, "neither JSON nor the earlier line format (no \"boot N\" line)");
    m->boot = boot;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        rp_eat_component_t *c = &m->c[m->n];
        char digest[65], signer[65], cnt[16], version[32], name[64], *end;
        unsigned long v = 0;
        if (m->n == RP_EAT_MAX_COMPONENTS)
            return bad(why, cap, "more than %d components", RP_EAT_MAX_COMPONENTS);
        if (sscanf(line, "%64s %64s %15s %31s %63s %c", digest, signer, cnt, version, name,
                   &tail) != 5 ||
            !hex32(digest, c->digest) || !hex32(signer, c->signer) ||
            !rp_component_name_valid(name, strlen(name)) || strlen(version) > RP_EAT_VERSION_MAX)
            return bad(why, cap, "line %zu is not \"DIGEST SIGNER COUNTER VERSION NAME\"",
                       m->n + 2);
        if (strcmp(cnt, "-") != 0) {
            errno = 0;
            v = strtoul(cnt, &end, 10);
            if (errno != 0 || *end != '\0' || cnt[0] == '-' || v > UINT32_MAX)
                return bad(why, cap, "line %zu: the security counter is not a number", m->n + 2);
        }
        /* Both lengths were checked above: they fit, with their terminators. */
        memcpy(c->name, name, strlen(name) + 1);
        memcpy(c->version, version, strlen(version) + 1);
        c->has_security_counter = strcmp(cnt, "-") != 0;
        c->security_counter = (uint32_t)v;
        m->n++;
    }
    return RP_OK;
}

static rp_err_t measured_save(rp_agent_t *a, const struct measured *m)
{
    char digest[65], signer[65], *text;
    json_t *list = json_array(), *j;
    rp_err_t err;

    for (size_t i = 0; list != NULL && i < m->n; i++) {
        const rp_eat_component_t *c = &m->c[i];
        (void)rp_hex_encode(c->digest, 32, digest, sizeof(digest));
        (void)rp_hex_encode(c->signer, 32, signer, sizeof(signer));
        json_array_append_new(
            list,
            json_pack("{s:s, s:s, s:s, s:s, s:o}", "name", c->name, "version", c->version, "digest",
                      digest, "signer", signer, "security_counter",
                      c->has_security_counter ? json_integer(c->security_counter) : json_null()));
    }
    j = json_pack("{s:i, s:I, s:o}", "format", MEASURED_FORMAT, "boot", (json_int_t)m->boot,
                  "components", list);
    text = j != NULL ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (text == NULL)
        return RP_ERR_NO_MEMORY;
    err = write_state(a->state_dir, MEASURED_FILE, text, strlen(text), 0600);
    free(text);
    return err;
}

/* The list; an absent file is an empty list. A corrupt one is an error that says so: the caller
 * starts a new list. A list in the earlier line format is converted, once. */
static rp_err_t measured_load(rp_agent_t *a, struct measured *m)
{
    char path[PATH_MAX + 16], why[200];
    uint8_t *data;
    size_t len, skip = 0;
    rp_err_t err;

    memset(m, 0, sizeof(*m));
    err = state_path(a, MEASURED_FILE, path, sizeof(path));
    if (err == RP_OK)
        err = rp_read_file(path, MEASURED_MAX, &data, &len);
    if (err == RP_ERR_NOT_FOUND)
        return RP_OK;
    if (err == RP_ERR_TOO_LARGE)
        err = bad(why, sizeof(why), "larger than %d bytes", MEASURED_MAX);
    else if (err != RP_OK)
        snprintf(why, sizeof(why), "it cannot be read (%s)", rp_strerror(err));
    if (err == RP_OK) {
        while (skip < len && (data[skip] == ' ' || data[skip] == '\n' || data[skip] == '\t'))
            skip++;
        if (skip < len && data[skip] == '{') {
            err = measured_parse((const char *)data, len, m, why, sizeof(why));
        } else {
            err = measured_parse_lines((char *)data, m, why, sizeof(why));
            if (err == RP_OK) {
                err = measured_save(a, m);
                if (err == RP_OK)
                    rp_log_info("%s: converted to format %d (%zu component(s), boot %llu)", path,
                                MEASURED_FORMAT, m->n, (unsigned long long)m->boot);
                else
                    snprintf(why, sizeof(why), "cannot convert it: %s", rp_strerror(err));
            }
        }
        free(data);
    }
    if (err != RP_OK) {
        rp_log_error("%s: %s%s. What this boot measured is lost: measuring afresh; "
                     "attestation fails (measurements_inconsistent) until the device restarts",
                     path, err == RP_ERR_MALFORMED ? "corrupt: " : "", why);
        memset(m, 0, sizeof(*m));
    }
    return err;
}

/* Whether the kernel booted since the agent last looked. */
static rp_err_t new_boot(rp_agent_t *a, bool *is_new, char **boot_id)
{
    char path[PATH_MAX + 16], *seen = NULL;
    rp_err_t err = read_text(BOOT_ID_FILE, 64, boot_id);

    if (err != RP_OK)
        return err;
    err = state_path(a, "boot_id", path, sizeof(path));
    if (err == RP_OK)
        err = read_text(path, 64, &seen);
    if (err == RP_OK && (strlen(seen) != 36 || strspn(seen, "0123456789abcdef-") != 36))
        err = RP_ERR_MALFORMED;
    if (err != RP_OK && err != RP_ERR_NOT_FOUND)
        rp_log_warn(
            "%s is corrupt (%s): it should hold the kernel's boot ID the agent last saw; "
            "counting this as a new boot (with a TPM, whose register a restart alone clears, "
            "attestation then fails as measurements_inconsistent until the device "
            "restarts)",
            path, err == RP_ERR_TOO_LARGE ? "larger than 64 bytes" : "not a boot ID");
    *is_new = err != RP_OK || strcmp(seen, *boot_id) != 0;
    free(seen);
    return RP_OK;
}

rp_err_t rp_agent_measure(rp_agent_t *a)
{
    struct measured *m = calloc(1, sizeof(*m));
    char dir[PATH_MAX + 16], path[PATH_MAX + 300], *names[RP_COMPONENTS_MAX], *boot_id = NULL;
    char cnames[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1];
    rp_component_t comp;
    size_t nnames = 0;
    bool is_new, changed = false;
    uint64_t boot;
    rp_err_t err;

    if (m == NULL)
        return RP_ERR_NO_MEMORY;
    err = new_boot(a, &is_new, &boot_id);
    if (err == RP_OK && is_new) {
        /* A new boot: count it, and forget the last boot's measurements (a TPM reset clears the
         * PCR; the soft register is cleared by the boot counter). */
        err = rp_rot_counter_increment(a->rot, RP_ROT_COUNTER_BOOT, &boot);
        if (err == RP_OK)
            err = write_state(a->state_dir, "boot_id", boot_id, strlen(boot_id), 0600);
        m->boot = boot;
        changed = true;
        rp_log_info("new boot: boot count %lu", (unsigned long)boot);
    } else if (err == RP_OK) {
        err = rp_rot_counter_read(a->rot, RP_ROT_COUNTER_BOOT, &boot);
        if (err == RP_OK && (measured_load(a, m) != RP_OK || m->boot != boot)) {
            memset(m, 0, sizeof(*m));
            m->boot = boot;
            changed = true;
        }
    }
    free(boot_id);

    /* The components, in name order (each its active slot), each measured once per boot. */
    if (err == RP_OK && state_path(a, "components", dir, sizeof(dir)) == RP_OK &&
        rp_component_names(a->state_dir, cnames, RP_COMPONENTS_MAX, &nnames) == RP_OK) {
        for (size_t i = 0; i < nnames; i++)
            names[i] = strdup(cnames[i]);
    }
    for (size_t i = 0; err == RP_OK && i < nnames; i++) {
        rp_eat_component_t c;
        bool seen = false;

        if (names[i] == NULL)
            continue;
        if (rp_component_load(a->state_dir, names[i], &comp) != RP_OK || comp.active < 0 ||
            rp_slot_path(a->state_dir, names[i], comp.active, path, sizeof(path)) != RP_OK)
            continue;
        if (read_component(path, names[i], &c) != RP_OK) {
            rp_log_warn("%s is not a valid image: not measured", path);
            continue;
        }
        for (size_t j = 0; j < m->n; j++)
            seen |= strcmp(m->c[j].name, c.name) == 0 &&
                    memcmp(m->c[j].digest, c.digest, RP_SHA256_LEN) == 0;
        if (seen)
            continue;
        if (m->n == RP_EAT_MAX_COMPONENTS) {
            rp_log_warn("more than %d components: %s not measured", RP_EAT_MAX_COMPONENTS, c.name);
            continue;
        }
        err = rp_rot_measure(a->rot, c.digest, NULL);
        if (err == RP_OK) {
            m->c[m->n++] = c;
            changed = true;
            rp_log_info("measured %s %s", c.name, c.version);
        }
    }
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    if (err == RP_OK && changed)
        err = measured_save(a, m);
    free(m);
    return err;
}

/* Kernel lockdown is the debug status Linux can vouch for: none means a root user can read
 * and change kernel memory. */
static rp_eat_debug_t debug_status(void)
{
    char *text = NULL;
    rp_eat_debug_t d = RP_EAT_DEBUG_ENABLED;

    if (read_text(LOCKDOWN_FILE, 128, &text) == RP_OK &&
        (strstr(text, "[integrity]") != NULL || strstr(text, "[confidentiality]") != NULL))
        d = RP_EAT_DEBUG_DISABLED_SINCE_BOOT;
    free(text);
    return d;
}

rp_err_t rp_agent_claims(rp_agent_t *a, const uint8_t *nonce, size_t len, rp_eat_claims_t *c)
{
    struct measured *m;
    rp_md_capability_t cap;
    bool dev = false;
    rp_err_t err;

    memset(c, 0, sizeof(*c));
    if (len < RP_EAT_NONCE_MIN || len > RP_EAT_NONCE_MAX)
        return RP_ERR_INVALID_ARG;
    err = rp_agent_measure(a);
    if (err != RP_OK)
        return err;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return RP_ERR_NO_MEMORY;
    err = measured_load(a, m);
    memcpy(c->nonce, nonce, len);
    c->nonce_len = len;
    if (err == RP_OK)
        err = rp_hex_decode(a->device_id, RP_DEVICE_ID_LEN, c->device_id, RP_SHA256_LEN);
    c->debug = debug_status();
    /* A development capability lets a debugger in: the evidence says so, both ways. */
    if (err == RP_OK)
        err = rp_capability_development(a->state_dir, a->device_id, &dev, &cap, NULL, 0);
    if (err == RP_OK && dev) {
        c->debug = RP_EAT_DEBUG_ENABLED;
        c->development = true;
        c->development_expires = cap.expires;
    }
    c->boot_count = m->boot;
    c->has_iat = true;
    c->iat = (int64_t)time(NULL);
    c->ncomponents = m->n;
    memcpy(c->components, m->c, m->n * sizeof(m->c[0]));
    c->has_register = true;
    if (err == RP_OK)
        err = rp_rot_measurements(a->rot, c->measurement_register);
    free(m);
    return err;
}

static rp_err_t sign_with_rot(void *ctx, const uint8_t digest[RP_SHA256_LEN], uint8_t *der,
                              size_t cap, size_t *len)
{
    return rp_rot_sign(ctx, digest, der, cap, len);
}

rp_err_t rp_agent_evidence(rp_agent_t *a, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                           size_t cap, size_t *len)
{
    rp_eat_claims_t *c;
    rp_err_t err;

    c = malloc(sizeof(*c));
    if (c == NULL)
        return RP_ERR_NO_MEMORY;
    err = rp_agent_claims(a, nonce, nonce_len, c);
    if (err == RP_OK)
        err = rp_evidence_make(c, sign_with_rot, a->rot, out, cap, len);
    free(c);
    return err;
}

#define CERT_FILE_MAX (64 * 1024)

/* The first PEM certificate in the state file name; NULL (and why) when there is none. */
X509 *rp_agent_read_cert(const rp_agent_t *a, const char *name, char *path, size_t cap, char *why,
                         size_t wcap)
{
    uint8_t *data;
    size_t len;
    X509 *cert = NULL;
    BIO *bio;
    rp_err_t err = rp_agent_file(a, name, path, cap);

    if (err == RP_OK)
        err = rp_read_file(path, CERT_FILE_MAX, &data, &len);
    if (err != RP_OK) {
        snprintf(why, wcap, "%s",
                 err == RP_ERR_TOO_LARGE ? "larger than 64 KiB" : rp_strerror(err));
        return NULL;
    }
    bio = BIO_new_mem_buf(data, (int)len);
    if (bio != NULL)
        cert = PEM_read_bio_X509(bio, NULL, rp_pem_no_passphrase, NULL);
    BIO_free(bio);
    free(data);
    ERR_clear_error();
    if (cert == NULL)
        snprintf(why, wcap, "no PEM certificate in it");
    return cert;
}

rp_err_t rp_agent_check_certificate(rp_agent_t *a)
{
    char path[PATH_MAX + 16], why[64];
    X509 *cert = rp_agent_read_cert(a, "device.crt", path, sizeof(path), why, sizeof(why)), *ca;
    EVP_PKEY *key = cert != NULL ? X509_get0_pubkey(cert) : NULL;
    rp_err_t err = RP_OK;

    if (cert == NULL && access(path, F_OK) != 0)
        return RP_ERR_NOT_FOUND;
    if (cert != NULL && (key == NULL || EVP_PKEY_eq(key, rp_agent_pubkey(a)) != 1))
        snprintf(why, sizeof(why), "its key is not this device's identity key");
    if (cert == NULL || key == NULL || EVP_PKEY_eq(key, rp_agent_pubkey(a)) != 1) {
        rp_log_error("%s is corrupt (%s): it should hold this device's certificate. Fix: attest "
                     "again (rampart-agent attest, or run) to replace it",
                     path, why);
        err = RP_ERR_MALFORMED;
    }
    X509_free(cert);
    ERR_clear_error();
    if (err != RP_OK)
        return err;
    ca = rp_agent_read_cert(a, "ca-chain.pem", path, sizeof(path), why, sizeof(why));
    if (ca == NULL) {
        rp_log_error("%s is corrupt (%s): it should hold the tenant CA that issued device.crt. "
                     "Fix: attest again (rampart-agent attest, or run) to replace it",
                     path, why);
        return RP_ERR_MALFORMED;
    }
    X509_free(ca);
    return RP_OK;
}

/* S/update.lock, held by whatever changes the slots (install, recover, an update check, the
 * daemon's checks), so that they take turns. Through the monitor, which takes that lock itself
 * for each install, the agent's own S/agent/update.lock: its checks take turns over its
 * downloads. The descriptor, or -1. */
int rp_agent_lock_slots(const rp_agent_t *agent)
{
    char path[PATH_MAX + 64];
    int fd = -1;

    if (agent->rot != NULL) /* single-process mode */
        snprintf(path, sizeof(path), "%s/update.lock", agent->state_dir);
    else if (rp_agent_file_for_write(agent, "update.lock", path, sizeof(path)) != RP_OK)
        return -1;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        int rc;
        while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
            ; /* a signal (SIGUSR1: check now) is no reason to give up */
        if (rc != 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0)
        rp_log_error("cannot lock %s", path);
    return fd;
}
