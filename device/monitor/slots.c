/*
 * Components in A/B slots: install, health check, confirm or roll back, and recovery at start.
 * Every durable write goes through a failpoint (rampart/failpoint.h), so that a test can cut the
 * install at each step and check what recovery makes of it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "rampart/apptree.h"
#include "rampart/failpoint.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "app.h"
#include "binding.h"
#include "slots.h"
#include "update.h"

#define COPY_CHUNK (256 * 1024)
#define STATE_MAX (8 * 1024)

static const char slot_names[2] = {'a', 'b'};

static rp_err_t component_dir(const char *state_dir, const char *name, char *out, size_t cap)
{
    int n;

    if (name == NULL || !rp_component_name_valid(name, strlen(name)))
        return RP_ERR_INVALID_ARG;
    n = snprintf(out, cap, "%s/components/%s", state_dir, name);
    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

static rp_err_t component_file(const char *state_dir, const char *name, const char *file, char *out,
                               size_t cap)
{
    char dir[PATH_MAX];
    rp_err_t err = component_dir(state_dir, name, dir, sizeof(dir));
    int n;

    if (err != RP_OK)
        return err;
    n = snprintf(out, cap, "%s/%s", dir, file);
    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

rp_err_t rp_slot_path(const char *state_dir, const char *name, int slot, char *out, size_t cap)
{
    char file[8];

    if (slot != 0 && slot != 1)
        return RP_ERR_INVALID_ARG;
    snprintf(file, sizeof(file), "%c.img", slot_names[slot]);
    return component_file(state_dir, name, file, out, cap);
}

static int slot_parse(json_t *v)
{
    const char *s = json_string_value(v);

    if (s != NULL && strcmp(s, "a") == 0)
        return 0;
    if (s != NULL && strcmp(s, "b") == 0)
        return 1;
    return -1;
}

static json_t *slot_json(int slot)
{
    return slot == 0 || slot == 1 ? json_sprintf("%c", slot_names[slot]) : json_null();
}

/* A slot as the state names it: null (none) or "a" or "b". */
static bool slot_valid(json_t *v)
{
    return v == NULL || json_is_null(v) || slot_parse(v) >= 0;
}

rp_err_t rp_component_load(const char *state_dir, const char *name, rp_component_t *c)
{
    char path[PATH_MAX], why[160] = "";
    uint8_t *data;
    size_t len;
    json_t *j, *last;
    json_int_t idx;
    json_error_t jerr;
    const char *result = NULL;
    rp_err_t err = component_file(state_dir, name, "state", path, sizeof(path));

    memset(c, 0, sizeof(*c));
    if (err != RP_OK)
        return err;
    err = rp_read_file(path, STATE_MAX, &data, &len);
    if (err == RP_ERR_TOO_LARGE) {
        rp_log_error("%s is corrupt (larger than %d bytes): it should hold the component's slots "
                     "and security counter index (JSON). Fix: restore it from a backup",
                     path, STATE_MAX);
        return RP_ERR_MALFORMED;
    }
    if (err != RP_OK)
        return err;
    j = json_loadb((const char *)data, len, 0, &jerr);
    free(data);
    idx = json_integer_value(json_object_get(j, "security_counter_index"));
    last = json_object_get(j, "last_update");
    if (json_is_object(last))
        result = json_string_value(json_object_get(last, "result"));
    if (j == NULL)
        snprintf(why, sizeof(why), "not JSON: %.100s, line %d", jerr.text, jerr.line);
    else if (!json_is_object(j))
        snprintf(why, sizeof(why), "not a JSON object");
    else if (json_object_get(j, "format") != NULL &&
             json_integer_value(json_object_get(j, "format")) != 1)
        snprintf(why, sizeof(why), "format %lld, and this agent reads format 1",
                 (long long)json_integer_value(json_object_get(j, "format")));
    else if (!json_is_integer(json_object_get(j, "security_counter_index")) || idx < 0 ||
             idx >= RP_ROT_SECCNT_COUNT)
        snprintf(why, sizeof(why), "no security_counter_index from 0 to %d",
                 RP_ROT_SECCNT_COUNT - 1);
    else if (!slot_valid(json_object_get(j, "active")) || !slot_valid(json_object_get(j, "trial")))
        snprintf(why, sizeof(why), "\"active\" and \"trial\" must each be \"a\", \"b\" or null");
    else if (rp_update_state_parse(result != NULL ? result : "", &c->last_result) != RP_OK)
        snprintf(why, sizeof(why), "its last update's result \"%.32s\" is not an update state",
                 result);
    if (why[0] != '\0') {
        json_decref(j);
        rp_log_error("%s is corrupt (%s): it should hold the component's slots and security "
                     "counter index. Fix: restore it from a backup",
                     path, why);
        return RP_ERR_MALFORMED;
    }
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->active = slot_parse(json_object_get(j, "active"));
    c->trial = slot_parse(json_object_get(j, "trial"));
    c->seccnt_index = (unsigned)idx;
    if (json_is_object(last)) {
        const char *d = json_string_value(json_object_get(last, "detail"));
        const char *v = json_string_value(json_object_get(last, "version"));
        snprintf(c->last_detail, sizeof(c->last_detail), "%s", d != NULL ? d : "");
        snprintf(c->last_version, sizeof(c->last_version), "%s", v != NULL ? v : "");
        c->last_at = json_integer_value(json_object_get(last, "at"));
    }
    for (int slot = 0; slot < 2; slot++) {
        char key[2] = {slot_names[slot], '\0'};
        const char *d = json_string_value(json_object_get(json_object_get(j, "confirmed"), key));
        if (d != NULL && strlen(d) == 2 * RP_SHA256_LEN)
            snprintf(c->confirmed[slot], sizeof(c->confirmed[slot]), "%s", d);
    }
    snprintf(c->confirmed_version, sizeof(c->confirmed_version), "%s",
             json_string_value(json_object_get(j, "confirmed_version")) ?: "");
    /* Checked against the root of trust where the counter is used (binding.h), not here. */
    snprintf(c->binding, sizeof(c->binding), "%.64s",
             json_string_value(json_object_get(j, "counter_binding")) ?: "");
    if (c->trial >= 0) {
        const char *nonce = json_string_value(json_object_get(j, "trial_nonce"));
        if (nonce != NULL && strlen(nonce) == 2 * RP_SLOT_NONCE_LEN)
            memcpy(c->trial_nonce, nonce, sizeof(c->trial_nonce));
    }
    json_decref(j);
    return RP_OK;
}

/* Replace the component's state atomically (each step a failpoint, in rp_atomic_*). */
static rp_err_t component_save(const char *state_dir, const rp_component_t *c)
{
    char path[PATH_MAX], *text;
    json_t *j;
    rp_err_t err = component_file(state_dir, c->name, "state", path, sizeof(path));

    if (err != RP_OK)
        return err;
    j = json_pack("{s:i, s:s, s:o, s:o, s:{s:s, s:s, s:s, s:I}}", "format", 1, "name", c->name,
                  "active", slot_json(c->active), "trial", slot_json(c->trial), "last_update",
                  "result", rp_update_state_name(c->last_result), "detail", c->last_detail,
                  "version", c->last_version, "at", (json_int_t)c->last_at);
    if (j == NULL)
        return RP_ERR_NO_MEMORY;
    json_object_set_new(j, "security_counter_index", json_integer(c->seccnt_index));
    json_object_set_new(j, "confirmed",
                        json_pack("{s:o, s:o}", "a",
                                  c->confirmed[0][0] ? json_string(c->confirmed[0]) : json_null(),
                                  "b",
                                  c->confirmed[1][0] ? json_string(c->confirmed[1]) : json_null()));
    json_object_set_new(j, "confirmed_version", json_string(c->confirmed_version));
    if (c->binding[0] != '\0')
        json_object_set_new(j, "counter_binding", json_string(c->binding));
    if (c->trial >= 0 && c->trial_nonce[0] != '\0')
        json_object_set_new(j, "trial_nonce", json_string(c->trial_nonce));
    text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    if (text == NULL)
        return RP_ERR_NO_MEMORY;
    err = rp_write_file_atomic(path, text, strlen(text), 0600, 0);
    free(text);
    return err;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

rp_err_t rp_component_names(const char *state_dir, char names[][RP_COMPONENT_NAME_MAX + 1],
                            size_t max, size_t *n)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct dirent *e;
    DIR *d;

    *n = 0;
    if (snprintf(dir, sizeof(dir), "%s/components", state_dir) >= (int)sizeof(dir))
        return RP_ERR_INVALID_ARG;
    d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? RP_OK : RP_ERR_IO;
    while ((e = readdir(d)) != NULL && *n < max) {
        if (!rp_component_name_valid(e->d_name, strlen(e->d_name)) ||
            component_file(state_dir, e->d_name, "state", path, sizeof(path)) != RP_OK ||
            access(path, F_OK) != 0)
            continue;
        snprintf(names[(*n)++], RP_COMPONENT_NAME_MAX + 1, "%.*s", RP_COMPONENT_NAME_MAX,
                 e->d_name);
    }
    closedir(d);
    qsort(names, *n, sizeof(names[0]), compare_names);
    return RP_OK;
}

void rp_components_sweep(const char *state_dir)
{
    char dir[PATH_MAX];
    int top, looked = 0, removed = 0;
    struct dirent *e;
    DIR *d;

    if (snprintf(dir, sizeof(dir), "%s/components", state_dir) >= (int)sizeof(dir))
        return;
    top = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    d = top >= 0 ? fdopendir(top) : NULL;
    if (d == NULL) {
        if (top >= 0)
            close(top);
        return;
    }
    while ((e = readdir(d)) != NULL && looked++ < RP_SWEEP_MAX) {
        int sub, n = 0;
        if (!rp_component_name_valid(e->d_name, strlen(e->d_name)))
            continue;
        sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            continue; /* not a directory (nor a link to one) */
        if (rp_atomic_sweep(sub, "state", &n) != RP_OK)
            rp_log_warn("%s/%s: cannot remove what a cut left of its state", dir, e->d_name);
        removed += n;
        close(sub);
    }
    closedir(d);
    if (removed > 0)
        rp_log_info("%s: %d temporar%s of a component's state removed (left by a cut)", dir,
                    removed, removed == 1 ? "y" : "ies");
}

/* ---- trusted image keys ---- */

struct keyring {
    uint8_t spki[RP_IMAGE_KEYS_MAX][RP_PUBKEY_DER_MAX];
    rp_image_key_t keys[RP_IMAGE_KEYS_MAX];
    size_t n;
};

static rp_err_t keyring_load(const char *state_dir, struct keyring *kr)
{
    char dir[PATH_MAX], path[PATH_MAX + 256];
    rp_md_role_t *role = calloc(1, sizeof(*role));
    bool have_root = false;
    struct dirent *e;
    DIR *d;
    rp_err_t err;

    kr->n = 0;
    /* With an update root, its images role is what the device trusts, and only that. */
    err = role != NULL ? rp_update_image_keys(state_dir, role, &have_root) : RP_ERR_NO_MEMORY;
    if (err == RP_OK && have_root) {
        for (size_t i = 0; i < role->nkeys && kr->n < RP_IMAGE_KEYS_MAX; i++) {
            memcpy(kr->spki[kr->n], role->spki[i], role->spki_len[i]);
            kr->keys[kr->n] = (rp_image_key_t){kr->spki[kr->n], role->spki_len[i]};
            kr->n++;
        }
    }
    free(role);
    if (err != RP_OK || have_root)
        return err;
    snprintf(dir, sizeof(dir), "%s/image-keys", state_dir);
    d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? RP_OK : RP_ERR_IO;
    while ((e = readdir(d)) != NULL && kr->n < RP_IMAGE_KEYS_MAX) {
        size_t len = strlen(e->d_name), spki_len;
        EVP_PKEY *key = NULL;
        bool priv;
        if (len < 5 || strcmp(e->d_name + len - 4, ".pem") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (rp_key_load(path, &key, &priv) != RP_OK ||
            rp_key_spki(key, kr->spki[kr->n], RP_PUBKEY_DER_MAX, &spki_len) != RP_OK) {
            EVP_PKEY_free(key);
            rp_log_warn("%s: not a usable image key, ignored", path);
            continue;
        }
        EVP_PKEY_free(key);
        kr->keys[kr->n] = (rp_image_key_t){kr->spki[kr->n], spki_len};
        kr->n++;
    }
    closedir(d);
    return RP_OK;
}

rp_err_t rp_trust_image_key(const char *state_dir, const char *pem_path)
{
    char dir[PATH_MAX], path[PATH_MAX + 80], hex[2 * RP_SHA256_LEN + 1];
    uint8_t spki[RP_PUBKEY_DER_MAX], hash[RP_SHA256_LEN];
    EVP_PKEY *key = NULL;
    size_t len;
    bool priv;
    rp_err_t err = rp_key_load(pem_path, &key, &priv);

    if (err == RP_OK)
        err = rp_key_spki(key, spki, sizeof(spki), &len);
    if (err == RP_OK)
        err = rp_sha256(spki, len, hash);
    if (err == RP_OK)
        err = rp_hex_encode(hash, sizeof(hash), hex, sizeof(hex));
    snprintf(dir, sizeof(dir), "%s/image-keys", state_dir);
    if (err == RP_OK && mkdir(dir, 0700) != 0 && errno != EEXIST)
        err = RP_ERR_IO;
    if (err == RP_OK) {
        /* Named by the key's hash: adding a key twice is one file. Only the public half. */
        snprintf(path, sizeof(path), "%s/%.16s.pem", dir, hex);
        err = rp_key_save_public(key, path, false);
    }
    EVP_PKEY_free(key);
    return err;
}

/* ---- verification ---- */

rp_err_t rp_slot_check(rp_agent_t *a, const rp_component_t *c, const char *path,
                       rp_slot_image_t *img)
{
    struct keyring *kr = calloc(1, sizeof(*kr));
    uint8_t *scratch = malloc(RP_FILE_IMAGE_SCRATCH);
    rp_file_image_t f;
    rp_image_info_t info;
    uint32_t floor = 0;
    rp_err_t err;

    memset(img, 0, sizeof(*img));
    if (kr == NULL || scratch == NULL) {
        free(kr);
        free(scratch);
        return RP_ERR_NO_MEMORY;
    }
    err = keyring_load(a->state_dir, kr);
    if (err == RP_OK)
        /* A component not installed yet has no counter: no floor (index past the last). */
        err = c->seccnt_index < RP_ROT_SECCNT_COUNT
                  ? rp_rot_seccnt_read(a->rot, c->seccnt_index, &floor)
                  : RP_OK;
    if (err != RP_OK)
        goto out;
    if (kr->n == 0) {
        img->error = RP_ERR_WRONG_KEY; /* nothing can verify: the device trusts no image key */
        goto out;
    }
    img->error = rp_file_image_open(&f, path);
    if (img->error != RP_OK)
        goto out;
    img->error = rp_image_verify(&f.io, kr->keys, kr->n, scratch, RP_FILE_IMAGE_SCRATCH, &info);
    rp_file_image_close(&f);
    if (img->error != RP_OK)
        goto out;
    img->ver = info.layout.hdr.version;
    if (rp_image_version_format(&img->ver, img->version, sizeof(img->version)) != RP_OK)
        snprintf(img->version, sizeof(img->version), "?");
    img->has_security_counter = info.has_security_counter;
    img->security_counter = info.security_counter; /* 0 when none: below any floor but 0 */
    memcpy(img->digest, info.digest, RP_SHA256_LEN);
    img->type = info.type;
    img->payload_off = info.layout.hdr.hdr_size;
    img->payload_len = info.layout.hdr.img_size;
    if (img->security_counter < floor) {
        img->error = RP_ERR_ROLLBACK;
        goto out;
    }
    img->valid = true;
out:
    free(kr);
    free(scratch);
    return err;
}

/* ---- writing a slot ---- */

static rp_err_t sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (fd < 0)
        return RP_ERR_IO;
    rc = fsync(fd);
    close(fd);
    return rc == 0 ? RP_OK : RP_ERR_IO;
}

/* Copy src into the (inactive) slot file: written in place, since nothing runs from it until the
 * state names it; each chunk and the fsync are failpoints. */
static rp_err_t copy_to_slot(const char *src, const char *dst, const char *dir)
{
    uint8_t *buf = malloc(COPY_CHUNK);
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1;
    ssize_t n;
    rp_err_t err = RP_OK;

    if (buf == NULL || in < 0) {
        err = buf == NULL ? RP_ERR_NO_MEMORY : RP_ERR_IO;
        goto out;
    }
    rp_failpoint("slot open");
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        err = RP_ERR_IO;
        goto out;
    }
    while ((n = read(in, buf, COPY_CHUNK)) > 0) {
        rp_failpoint("slot write");
        err = rp_write_all(out, buf, (size_t)n);
        if (err != RP_OK)
            goto out;
    }
    if (n < 0) {
        err = RP_ERR_IO;
        goto out;
    }
    rp_failpoint("slot fsync");
    if (fsync(out) != 0) {
        err = RP_ERR_IO;
        goto out;
    }
    rp_failpoint("slot directory fsync");
    err = sync_dir(dir);
out:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && err == RP_OK)
        err = RP_ERR_IO;
    free(buf);
    return err;
}

/* ---- health ---- */

/* Write the app's payload out as an executable next to its slot. */
static rp_err_t extract_payload(const char *slot_path, const rp_slot_image_t *img, const char *exe)
{
    uint8_t *buf = malloc(COPY_CHUNK);
    int in = open(slot_path, O_RDONLY | O_CLOEXEC), out = -1;
    rp_err_t err = buf != NULL && in >= 0 ? RP_OK : RP_ERR_IO;

    if (err == RP_OK) {
        (void)unlink(exe);
        out = open(exe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
        if (out < 0)
            err = RP_ERR_IO;
    }
    for (uint64_t off = 0; err == RP_OK && off < img->payload_len;) {
        size_t n =
            img->payload_len - off < COPY_CHUNK ? (size_t)(img->payload_len - off) : COPY_CHUNK;
        err = rp_pread_all(in, buf, n, img->payload_off + off);
        if (err == RP_OK)
            err = rp_write_all(out, buf, n);
        off += n;
    }
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && err == RP_OK)
        err = RP_ERR_IO;
    free(buf);
    return err;
}

/* Whether the image in the slot is healthy: an app runs; other components verified already. */
rp_err_t rp_app_prepare(const char *state_dir, const char *name, int slot,
                        const rp_slot_image_t *img, bool trial, char exe[PATH_MAX])
{
    char slot_path[PATH_MAX], file[16];
    rp_err_t err;

    if (slot != 0 && slot != 1)
        return RP_ERR_INVALID_ARG;
    /* A trial has a file of its own: it never replaces what the supervisor restarts. */
    if (trial)
        snprintf(file, sizeof(file), "trial.run");
    else
        snprintf(file, sizeof(file), "%c.run", slot_names[slot]);
    err = rp_slot_path(state_dir, name, slot, slot_path, sizeof(slot_path));
    if (err == RP_OK)
        err = component_file(state_dir, name, file, exe, PATH_MAX);
    if (err == RP_OK)
        err = extract_payload(slot_path, img, exe);
    return err;
}

/* Whether the image in the slot is healthy. A component that runs elsewhere (opts->external: an
 * MCU): where it runs takes it and confirms it, and *unhealthy is its outcome otherwise (refused,
 * rolled back, failed), with *on_mcu set; an app runs; other components verified already. */
static rp_err_t health_check(rp_agent_t *a, const rp_component_t *c, int slot,
                             const rp_slot_image_t *img, const rp_install_opts_t *opts,
                             bool *healthy, rp_update_state_t *unhealthy, bool *on_mcu,
                             char *detail, size_t cap)
{
    char exe[PATH_MAX];
    rp_err_t err;

    *unhealthy = RP_UPDATE_ROLLED_BACK;
    *on_mcu = false;
    if (opts->external != NULL) {
        err = rp_slot_path(a->state_dir, c->name, slot, exe, sizeof(exe));
        if (err == RP_OK)
            err = opts->external(a, c->name, exe, img->version, healthy, unhealthy, detail, cap);
        if (err != RP_ERR_NOT_FOUND) {
            *on_mcu = true;
            if (err != RP_OK)
                *healthy = false;
            return err;
        }
    }
    if (img->type != RP_IMAGE_TYPE_APP) {
        snprintf(detail, cap, "verified");
        *healthy = true;
        return RP_OK;
    }
    if (opts->trial == NULL) { /* every caller says how: never an untried app */
        snprintf(detail, cap, "no way to try an app was given");
        return RP_ERR_INVALID_ARG;
    }
    return opts->trial(opts->trial_ctx, c->name, slot, img,
                       opts->health_seconds > 0 ? opts->health_seconds : RP_APP_HEALTH_SECONDS,
                       healthy, detail, cap);
}

/* ---- install ---- */

static void record(rp_component_t *c, rp_update_state_t result, const char *version,
                   const char *detail)
{
    c->last_result = result;
    snprintf(c->last_version, sizeof(c->last_version), "%s", version);
    snprintf(c->last_detail, sizeof(c->last_detail), "%s", detail);
    c->last_at = (int64_t)time(NULL);
}

static rp_err_t finish(rp_agent_t *a, rp_component_t *c, rp_install_result_t *res,
                       rp_update_state_t state, const char *version, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Record the outcome in the component's state and in *res. */
static rp_err_t finish(rp_agent_t *a, rp_component_t *c, rp_install_result_t *res,
                       rp_update_state_t state, const char *version, const char *fmt, ...)
{
    char detail[sizeof(res->detail)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap); /* the arguments may point into res->detail */
    va_end(ap);
    memcpy(res->detail, detail, sizeof(detail));
    res->state = state;
    record(c, state, version, res->detail);
    rp_log_info("%s %s: %s: %s", c->name, version, rp_update_state_name(state), res->detail);
    return component_save(a->state_dir, c);
}

/*
 * A security counter index no other component holds. Tombstones (no slot, no removal under way)
 * do not count towards RP_COMPONENTS_MAX but hold their counter, so they and the live components
 * are bounded by the RP_ROT_SECCNT_COUNT counters together. None free: the oldest tombstone whose
 * counter is still 0 is forgotten and its counter taken (a raised floor is never handed on).
 */
static rp_err_t free_seccnt_index(rp_agent_t *a, unsigned *index)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1], path[PATH_MAX], dir[PATH_MAX];
    bool used[RP_ROT_SECCNT_COUNT] = {false};
    rp_component_t c;
    size_t n, live = 0, old = SIZE_MAX;
    unsigned old_index = 0;
    time_t old_at = 0;
    struct stat st;
    uint32_t floor;
    rp_err_t err = rp_component_names(a->state_dir, names, RP_COMPONENTS_MAX, &n);

    for (size_t i = 0; err == RP_OK && i < n; i++) {
        if (rp_component_load(a->state_dir, names[i], &c) != RP_OK) {
            live++; /* unreadable: never forgotten */
            continue;
        }
        used[c.seccnt_index] = true;
        if (c.active >= 0 || c.trial >= 0 || rp_component_removing(a->state_dir, c.name))
            live++;
        else if (rp_rot_seccnt_read(a->rot, c.seccnt_index, &floor) == RP_OK && floor == 0 &&
                 component_file(a->state_dir, c.name, "state", path, sizeof(path)) == RP_OK &&
                 stat(path, &st) == 0 && (old == SIZE_MAX || st.st_mtime < old_at))
            old = i, old_at = st.st_mtime, old_index = c.seccnt_index;
    }
    if (err != RP_OK || live >= RP_COMPONENTS_MAX)
        return err != RP_OK ? err : RP_ERR_TOO_LARGE;
    for (*index = 0; *index < RP_ROT_SECCNT_COUNT; (*index)++)
        if (!used[*index])
            return RP_OK;
    if (old == SIZE_MAX) {
        rp_log_warn("no security counter free: the removed components hold theirs, raised");
        return RP_ERR_TOO_LARGE;
    }
    /* Its state goes (durably) before the counter is handed on. */
    if (component_file(a->state_dir, names[old], "state", path, sizeof(path)) != RP_OK ||
        component_dir(a->state_dir, names[old], dir, sizeof(dir)) != RP_OK || unlink(path) != 0 ||
        sync_dir(dir) != RP_OK)
        return RP_ERR_IO;
    (void)unlinkat(AT_FDCWD, dir, AT_REMOVEDIR); /* without a state it is no component */
    rp_log_warn("%s: its tombstone forgotten (counter %u never raised), the counter reused",
                names[old], old_index);
    *index = old_index;
    return RP_OK;
}

static rp_err_t recover_one(rp_agent_t *a, rp_component_t *c, bool *bootable, const char *why);

/* A component's state; for one never installed, a directory and a state naming no slot yet. */
/* Before the first counter binding is written, bind every state made by an older version (once:
 * afterwards a state without a binding is refused as tampered). */
static rp_err_t bindings_ready(rp_agent_t *a)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1];
    rp_component_t c;
    size_t n;
    rp_err_t err;

    if (rp_bindings_in_use(a->state_dir))
        return RP_OK;
    err = rp_component_names(a->state_dir, names, RP_COMPONENTS_MAX, &n);
    for (size_t i = 0; err == RP_OK && i < n; i++) {
        err = rp_component_load(a->state_dir, names[i], &c);
        if (err != RP_OK || c.binding[0] != '\0')
            continue;
        rp_log_warn("%s: its state predates counter bindings: bound to security counter %u now",
                    c.name, c.seccnt_index);
        err = rp_binding_make(a->rot, &c);
        if (err == RP_OK)
            err = component_save(a->state_dir, &c);
    }
    return err == RP_OK ? rp_bindings_mark(a->state_dir) : err;
}

/* A component's state, its counter binding checked. */
static rp_err_t component_load_bound(rp_agent_t *a, const char *name, rp_component_t *c)
{
    rp_err_t err = bindings_ready(a);

    if (err == RP_OK)
        err = rp_component_load(a->state_dir, name, c);
    return err == RP_OK ? rp_binding_check(a->rot, a->state_dir, c) : err;
}

static rp_err_t component_open(rp_agent_t *a, const char *name, rp_component_t *c)
{
    const char *state_dir = a->state_dir;
    char dir[PATH_MAX], parent[PATH_MAX];
    rp_err_t err = component_dir(state_dir, name, dir, sizeof(dir));

    if (err == RP_OK)
        err = component_load_bound(a, name, c);
    if (err != RP_ERR_NOT_FOUND)
        return err;
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->active = c->trial = -1;
    err = free_seccnt_index(a, &c->seccnt_index);
    if (err == RP_OK)
        err = rp_binding_make(a->rot, c);
    if (snprintf(parent, sizeof(parent), "%s/components", state_dir) >= (int)sizeof(parent))
        err = RP_ERR_INVALID_ARG;
    if (err == RP_OK && ((mkdir(parent, 0700) != 0 && errno != EEXIST) ||
                         (mkdir(dir, 0700) != 0 && errno != EEXIST)))
        err = RP_ERR_IO;
    return err == RP_OK ? component_save(state_dir, c) : err;
}

/* ---- removal (slots.h) ---- */

bool rp_component_removing(const char *state_dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;

    return component_file(state_dir, name, "removing", path, sizeof(path)) == RP_OK &&
           lstat(path, &st) == 0;
}

/* The state of a removed component: nothing in a slot, nothing confirmed, the counter kept. */
static rp_err_t tombstone(rp_agent_t *a, rp_component_t *c, const char *why)
{
    if (c->active < 0 && c->trial < 0 && c->confirmed[0][0] == '\0' && c->confirmed[1][0] == '\0')
        return RP_OK;
    c->active = c->trial = -1;
    c->confirmed[0][0] = c->confirmed[1][0] = '\0';
    record(c, RP_UPDATE_NONE, c->confirmed_version, why);
    return component_save(a->state_dir, c);
}

rp_err_t rp_component_remove_begin(rp_agent_t *a, const char *name, const char *why)
{
    char path[PATH_MAX], dir[PATH_MAX];
    rp_component_t c;
    int fd = -1;
    rp_err_t err = component_load_bound(a, name, &c);

    if (err == RP_OK && (err = component_dir(a->state_dir, name, dir, sizeof(dir))) == RP_OK)
        err = component_file(a->state_dir, name, "removing", path, sizeof(path));
    if (err == RP_OK && ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0 ||
                         fsync(fd) != 0))
        err = RP_ERR_IO;
    if (fd >= 0)
        close(fd);
    if (err == RP_OK)
        err = sync_dir(dir);
    rp_failpoint("remove: marked");
    return err == RP_OK ? tombstone(a, &c, why) : err;
}

rp_err_t rp_component_remove_finish(rp_agent_t *a, const char *name)
{
    char dir[PATH_MAX];
    rp_component_t c;
    struct dirent *e;
    DIR *d;
    rp_err_t err = component_load_bound(a, name, &c);

    if (err == RP_OK)
        err = tombstone(a, &c, "removed (finished at the monitor's start)");
    if (err == RP_OK)
        err = component_dir(a->state_dir, name, dir, sizeof(dir));
    if (err != RP_OK)
        return err;
    d = opendir(dir);
    if (d == NULL)
        return RP_ERR_IO;
    while ((e = readdir(d)) != NULL) {
        char sub[PATH_MAX];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "state") == 0 || strcmp(e->d_name, "removing") == 0)
            continue;
        /* The slots, their extracted programs, a state's temporary file; a directory too: the
         * data directory an app had when the agent ran it without a monitor. */
        if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno != EISDIR ||
            snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub) ||
            rp_apptree_remove(sub) != RP_OK)
            err = RP_ERR_IO;
    }
    closedir(d);
    if (err == RP_OK)
        err = sync_dir(dir);
    rp_failpoint("remove: slots deleted");
    if (err == RP_OK) {
        char mark[PATH_MAX];
        err = component_file(a->state_dir, name, "removing", mark, sizeof(mark));
        if (err == RP_OK && unlink(mark) != 0 && errno != ENOENT)
            err = RP_ERR_IO;
        if (err == RP_OK)
            err = sync_dir(dir);
    }
    return err;
}

rp_err_t rp_component_note(rp_agent_t *a, const char *name, rp_update_state_t result,
                           const char *version, const char *detail)
{
    rp_component_t c;
    rp_err_t err = component_open(a, name, &c);

    if (err != RP_OK)
        return err;
    record(&c, result, version, detail);
    return component_save(a->state_dir, &c);
}

/* The end of a trial (res->detail says how it went): recorded; installed makes the trial slot
 * active, then raises the security counter to its image's. */
static rp_err_t conclude(rp_agent_t *a, rp_component_t *c, int target, const rp_slot_image_t *copy,
                         rp_update_state_t state, rp_install_result_t *res)
{
    rp_err_t err;

    c->trial = -1;
    if (state != RP_UPDATE_INSTALLED)
        return finish(a, c, res, state, copy->version, "%s", res->detail);
    c->active = target;
    if (rp_hex_encode(copy->digest, RP_SHA256_LEN, c->confirmed[target],
                      sizeof(c->confirmed[target])) != RP_OK)
        return RP_ERR_INVALID_ARG;
    snprintf(c->confirmed_version, sizeof(c->confirmed_version), "%s", copy->version);
    err = finish(a, c, res, RP_UPDATE_INSTALLED, copy->version, "%s", res->detail);
    if (err == RP_OK) {
        rp_failpoint("security counter");
        err = rp_rot_seccnt_advance(a->rot, c->seccnt_index, copy->security_counter);
    }
    return err;
}

rp_err_t rp_install(rp_agent_t *a, const char *name, const char *image_path,
                    const rp_install_opts_t *opts, rp_install_result_t *res)
{
    char dir[PATH_MAX], slot_path[PATH_MAX];
    rp_slot_image_t src, cur, copy;
    rp_component_t c;
    bool healthy = false, bootable, on_mcu = false;
    rp_update_state_t unhealthy = RP_UPDATE_ROLLED_BACK;
    int target;
    rp_err_t err;

    memset(res, 0, sizeof(*res));
    memset(&cur, 0, sizeof(cur));
    err = component_dir(a->state_dir, name, dir, sizeof(dir));
    if (err != RP_OK)
        return err;
    /* A component the device does not have yet gets state only for an image that verifies:
     * made-up names cannot use up the security counters. */
    err = rp_component_load(a->state_dir, name, &c);
    if (err == RP_ERR_NOT_FOUND) {
        memset(&c, 0, sizeof(c));
        snprintf(c.name, sizeof(c.name), "%s", name);
        c.seccnt_index = RP_ROT_SECCNT_COUNT; /* none yet: no floor */
        err = rp_slot_check(a, &c, image_path, &src);
        if (err != RP_OK)
            return err;
        if (!src.valid || (opts->gate != NULL && !opts->gate(opts->gate_ctx, name, &src,
                                                             res->detail, sizeof(res->detail)))) {
            res->state = RP_UPDATE_REFUSED; /* no state: another's name takes no counter */
            if (!src.valid)
                snprintf(res->detail, sizeof(res->detail), "%s", rp_strerror(src.error));
            rp_log_info("%s: refused: %s", name, res->detail);
            return RP_OK;
        }
    }
    if (err == RP_OK || err == RP_ERR_NOT_FOUND)
        err = component_open(a, name, &c); /* its counter binding checked */
    if (err == RP_OK && c.trial >= 0) {
        err = recover_one(a, &c, &bootable, NULL); /* a cut install before this one */
    }
    if (err != RP_OK)
        return err;

    /* The image itself first: signed by a trusted key, not below the security counter. */
    err = rp_slot_check(a, &c, image_path, &src);
    if (err != RP_OK)
        return err;
    if (!src.valid)
        return finish(a, &c, res, RP_UPDATE_REFUSED, src.version[0] ? src.version : "?", "%s",
                      src.error == RP_ERR_ROLLBACK
                          ? "its security counter is below the device's (rollback refused)"
                          : rp_strerror(src.error));
    if (opts->gate != NULL &&
        !opts->gate(opts->gate_ctx, name, &src, res->detail, sizeof(res->detail)))
        return finish(a, &c, res, RP_UPDATE_REFUSED, src.version, "%s", res->detail);
    if (src.security_counter > rp_rot_seccnt_max(a->rot))
        return finish(a, &c, res, RP_UPDATE_REFUSED, src.version,
                      "its security counter %lu is more than this device's root of trust can "
                      "hold (%lu)",
                      (unsigned long)src.security_counter,
                      (unsigned long)rp_rot_seccnt_max(a->rot));
    if (c.active >= 0) {
        err = rp_slot_path(a->state_dir, name, c.active, slot_path, sizeof(slot_path));
        if (err == RP_OK)
            err = rp_slot_check(a, &c, slot_path, &cur);
        if (err == RP_OK && !cur.valid) {
            /* The running slot stopped verifying (a bad sector, a key the root dropped): fall
             * back first, so that what is written next is never the only good slot. */
            err = recover_one(a, &c, &bootable, NULL);
            if (err == RP_OK)
                err = rp_slot_path(a->state_dir, name, c.active, slot_path, sizeof(slot_path));
            if (err == RP_OK)
                err = rp_slot_check(a, &c, slot_path, &cur);
        }
        if (err != RP_OK)
            return err;
        if (cur.valid && memcmp(cur.digest, src.digest, RP_SHA256_LEN) == 0) {
            res->state = RP_UPDATE_UNCHANGED;
            snprintf(res->detail, sizeof(res->detail), "%s is running already", src.version);
            return RP_OK;
        }
        if (cur.valid && rp_image_version_cmp(&src.ver, &cur.ver) < 0)
            return finish(a, &c, res, RP_UPDATE_REFUSED, src.version,
                          "version %s is older than the running %s (rollback refused)", src.version,
                          cur.version);
    }
    if (c.confirmed_version[0] != '\0') {
        rp_image_version_t newest;
        if (rp_image_version_parse(c.confirmed_version, strlen(c.confirmed_version), &newest) ==
                RP_OK &&
            rp_image_version_cmp(&src.ver, &newest) < 0)
            return finish(a, &c, res, RP_UPDATE_REFUSED, src.version,
                          "version %s is older than %s, confirmed before (rollback refused)",
                          src.version, c.confirmed_version);
    }

    /* Into the inactive slot, then check the copy: that is what will run. The slot stops
     * counting as confirmed before a byte of it changes. */
    target = c.active >= 0 ? 1 - c.active : 0;
    err = rp_slot_path(a->state_dir, name, target, slot_path, sizeof(slot_path));
    if (err == RP_OK && c.confirmed[target][0] != '\0') {
        c.confirmed[target][0] = '\0';
        err = component_save(a->state_dir, &c);
    }
    if (err == RP_OK)
        err = copy_to_slot(image_path, slot_path, dir);
    if (err == RP_OK)
        err = rp_slot_check(a, &c, slot_path, &copy);
    if (err != RP_OK)
        return err;
    if (!copy.valid || memcmp(copy.digest, src.digest, RP_SHA256_LEN) != 0)
        return finish(a, &c, res, RP_UPDATE_FAILED, src.version,
                      "the copy in slot %c does not verify: %s", slot_names[target],
                      rp_strerror(copy.error));

    /* On trial: a cut from here on rolls back to the active slot at the next start. */
    c.trial = target;
    c.trial_nonce[0] = '\0';
    err = component_save(a->state_dir, &c);
    if (err == RP_OK)
        err = health_check(a, &c, target, &copy, opts, &healthy, &unhealthy, &on_mcu, res->detail,
                           sizeof(res->detail));
    if (err != RP_OK)
        return err;
    if (!healthy && on_mcu && unhealthy == RP_UPDATE_HANDED) {
        /* Handed over (the monitor's): on trial until its verdict (rp_install_end), whose
         * evidence must be over a nonce fresh for this trial. */
        if (getrandom(res->nonce, sizeof(res->nonce), 0) != (ssize_t)sizeof(res->nonce) ||
            rp_hex_encode(res->nonce, sizeof(res->nonce), c.trial_nonce,
                          sizeof(c.trial_nonce)) != RP_OK)
            err = RP_ERR_CRYPTO;
        if (err == RP_OK)
            err = component_save(a->state_dir, &c);
        if (err != RP_OK)
            return err; /* on trial: recovery rolls it back */
        res->state = RP_UPDATE_HANDED;
        res->slot = target;
        memcpy(res->digest, copy.digest, RP_SHA256_LEN);
        return RP_OK;
    }
    if (!healthy && !on_mcu) { /* (an MCU's detail says what the MCU runs) */
        c.trial = -1;
        return finish(a, &c, res, RP_UPDATE_ROLLED_BACK, src.version, "%s; %s is still running",
                      res->detail, c.active >= 0 ? cur.version : "nothing");
    }
    return conclude(a, &c, target, &copy, healthy ? RP_UPDATE_INSTALLED : unhealthy, res);
}

rp_err_t rp_install_end(rp_agent_t *a, const char *name, const uint8_t *digest,
                        rp_update_state_t state, const char *detail, rp_install_proof_fn proof,
                        void *proof_ctx, rp_install_result_t *res)
{
    char path[PATH_MAX], why[RP_SLOT_DETAIL_MAX + 1] = "";
    uint8_t nonce[RP_SLOT_NONCE_LEN];
    rp_slot_image_t img;
    rp_component_t c;
    bool bootable;
    rp_err_t err = component_load_bound(a, name, &c);

    memset(res, 0, sizeof(*res));
    if (err == RP_OK && c.trial < 0)
        err = RP_ERR_NOT_FOUND;
    if (err == RP_OK)
        err = rp_slot_path(a->state_dir, name, c.trial, path, sizeof(path));
    if (err == RP_OK)
        err = rp_slot_check(a, &c, path, &img);
    if (err == RP_OK && (!img.valid || memcmp(img.digest, digest, RP_SHA256_LEN) != 0))
        err = RP_ERR_NOT_FOUND;
    if (err != RP_OK)
        return err;
    if (state == RP_UPDATE_INSTALLED && proof != NULL) {
        if (rp_hex_decode(c.trial_nonce, strlen(c.trial_nonce), nonce, sizeof(nonce)) != RP_OK)
            snprintf(why, sizeof(why), "no nonce was handed with this trial");
        else if (proof(proof_ctx, name, img.digest, nonce, why, sizeof(why)) == RP_OK)
            why[0] = '\0';
        else if (why[0] == '\0')
            snprintf(why, sizeof(why), "no evidence");
        if (why[0] != '\0') {
            /* Not confirmed on the agent's word: rolled back as a trial no verdict ended. */
            snprintf(res->detail, sizeof(res->detail), "installed, said without proof: %s", why);
            res->state = RP_UPDATE_ROLLED_BACK;
            err = recover_one(a, &c, &bootable, res->detail);
            return err == RP_OK ? RP_ERR_DENIED : err;
        }
    }
    snprintf(res->detail, sizeof(res->detail), "%s", detail);
    return conclude(a, &c, c.trial, &img, state, res);
}

/* ---- recovery ---- */

static rp_err_t recover_one(rp_agent_t *a, rp_component_t *c, bool *bootable, const char *why)
{
    char path[PATH_MAX];
    rp_slot_image_t img, other;
    rp_err_t err;

    *bootable = c->active < 0; /* never installed: nothing to boot, nothing lost */
    if (c->trial >= 0) {
        char version[48] = "?";
        if (rp_slot_path(a->state_dir, c->name, c->trial, path, sizeof(path)) == RP_OK &&
            rp_slot_check(a, c, path, &img) == RP_OK && img.version[0] != '\0')
            snprintf(version, sizeof(version), "%s", img.version);
        c->trial = -1;
        if (why == NULL)
            why = "the device restarted before the update was confirmed";
        record(c, RP_UPDATE_ROLLED_BACK, version, why);
        rp_log_warn("%s %s: rolled back: %s", c->name, version, why);
        err = component_save(a->state_dir, c);
        if (err != RP_OK)
            return err;
    }
    if (c->active < 0)
        return RP_OK;
    err = rp_slot_path(a->state_dir, c->name, c->active, path, sizeof(path));
    if (err == RP_OK)
        err = rp_slot_check(a, c, path, &img);
    if (err != RP_OK)
        return err;
    if (!img.valid) {
        /* The active slot no longer verifies (a bad sector, tampering): the other one, if it
         * does. */
        rp_log_error("%s does not verify: %s", path, rp_strerror(img.error));
        err = rp_slot_path(a->state_dir, c->name, 1 - c->active, path, sizeof(path));
        if (err == RP_OK)
            err = rp_slot_check(a, c, path, &other);
        if (err != RP_OK)
            return err;
        if (other.valid) {
            char hex[2 * RP_SHA256_LEN + 1];
            if (rp_hex_encode(other.digest, RP_SHA256_LEN, hex, sizeof(hex)) != RP_OK ||
                strcmp(hex, c->confirmed[1 - c->active]) != 0) {
                rp_log_error("%s: the other slot holds %s, never confirmed: not falling back",
                             c->name, other.version);
                other.valid = false;
            }
        }
        if (!other.valid) {
            rp_log_error("%s: neither slot holds a verified, confirmed image. Fix: install one "
                         "(rampart-agent install, or check-now)",
                         c->name);
            return RP_OK;
        }
        rp_log_warn("%s: slot %c does not verify (%s): falling back to %s in slot %c", c->name,
                    slot_names[c->active], rp_strerror(img.error), other.version,
                    slot_names[1 - c->active]);
        c->active = 1 - c->active;
        record(c, RP_UPDATE_FELL_BACK, other.version, "the active slot did not verify");
        err = component_save(a->state_dir, c);
        if (err != RP_OK)
            return err;
        img = other;
    }
    *bootable = true;
    /* The active slot holds what was confirmed (only confirmation and a fall-back to a confirmed
     * image make a slot active): a state written before slots recorded it learns it now. */
    if (c->confirmed[c->active][0] == '\0' &&
        rp_hex_encode(img.digest, RP_SHA256_LEN, c->confirmed[c->active],
                      sizeof(c->confirmed[c->active])) == RP_OK) {
        if (c->confirmed_version[0] == '\0')
            snprintf(c->confirmed_version, sizeof(c->confirmed_version), "%s", img.version);
        err = component_save(a->state_dir, c);
        if (err != RP_OK)
            return err;
    }
    /* A cut between confirming and raising the counter: raise it now (it never goes down). */
    return rp_rot_seccnt_advance(a->rot, c->seccnt_index, img.security_counter);
}

rp_err_t rp_components_recover(rp_agent_t *a, int *unbootable)
{
    return rp_components_recover_cut(a, unbootable, NULL);
}

rp_err_t rp_component_recover_cut(rp_agent_t *a, const char *name, bool *bootable, const char *why)
{
    rp_component_t c;
    rp_err_t err = component_load_bound(a, name, &c);

    *bootable = false;
    return err == RP_OK ? recover_one(a, &c, bootable, why) : err;
}

rp_err_t rp_components_recover_cut(rp_agent_t *a, int *unbootable, const char *why)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1];
    size_t n;
    int bad = 0;
    rp_err_t err = rp_component_names(a->state_dir, names, RP_COMPONENTS_MAX, &n);

    for (size_t i = 0; err == RP_OK && i < n; i++) {
        bool bootable;
        err = rp_component_recover_cut(a, names[i], &bootable, why);
        if (err == RP_ERR_BAD_SIGNATURE) {
            /* Tampered (said): its counter is not touched, nor its slots; the others go on. */
            bad++;
            err = RP_OK;
            continue;
        }
        if (err == RP_OK && !bootable)
            bad++;
    }
    if (unbootable != NULL)
        *unbootable = bad;
    return err;
}
