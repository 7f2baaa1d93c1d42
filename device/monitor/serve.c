/*
 * What the monitor does for each request (proto.h): the root of trust's answers, and installs
 * from a descriptor. The one place a decoded request meets the privileged code.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capability.h"
#include "crash.h"
#include "events.h"
#include "mcu.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "serve.h"
#include "slots.h"
#include "update.h"

#define COPY_CHUNK (64 * 1024)

/* What INSTALL's gate knows of the image beyond its verification: the file's ID (its SHA-256,
 * hex) and size, as targets name it. */
struct gate {
    rp_agent_t *a;
    char id[2 * RP_SHA256_LEN + 1];
    uint64_t size;
};

static rp_trial_fn trial_fn;
static void *trial_ctx;

void rp_monitor_set_trial(rp_trial_fn fn, void *ctx)
{
    trial_fn = fn;
    trial_ctx = ctx;
}

static void refuse(rp_mon_reply_t *p, rp_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(rp_mon_reply_t *p, rp_err_t err, const char *fmt, ...)
{
    va_list ap;

    p->status = (uint16_t)(err != RP_OK ? err : RP_ERR_IO);
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof(p->message), fmt, ap);
    va_end(ap);
}

int rp_monitor_slots_lock(const char *state_dir, bool wait)
{
    char path[PATH_MAX];
    int fd, rc;

    if (snprintf(path, sizeof(path), "%s/update.lock", state_dir) >= (int)sizeof(path))
        return -1;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    while ((rc = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void do_status(rp_agent_t *a, rp_mon_reply_t *p)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1], path[PATH_MAX];
    rp_component_t c;
    rp_slot_image_t img;
    size_t n;
    rp_err_t err = rp_component_names(a->state_dir, names, RP_COMPONENTS_MAX, &n);

    for (size_t i = 0; err == RP_OK && i < n; i++) {
        rp_mon_component_t *m = &p->u.status.c[p->u.status.n];
        uint32_t floor = 0;
        err = rp_component_load(a->state_dir, names[i], &c);
        if (err != RP_OK)
            break;
        snprintf(m->name, sizeof(m->name), "%s", c.name);
        m->active = c.active >= 0 ? (uint8_t)c.active : 0xff;
        if (c.active >= 0 &&
            rp_slot_path(a->state_dir, c.name, c.active, path, sizeof(path)) == RP_OK &&
            rp_slot_check(a, &c, path, &img) == RP_OK && img.valid)
            snprintf(m->version, sizeof(m->version), "%s", img.version);
        if (c.seccnt_index < RP_ROT_SECCNT_COUNT)
            err = rp_rot_seccnt_read(a->rot, c.seccnt_index, &floor);
        m->security_counter = floor;
        m->last_result = (uint8_t)c.last_result;
        snprintf(m->last_detail, sizeof(m->last_detail), "%s", c.last_detail);
        snprintf(m->last_version, sizeof(m->last_version), "%s", c.last_version);
        m->last_at = c.last_at;
        m->trial = 0xff;
        if (c.trial >= 0 &&
            rp_slot_path(a->state_dir, c.name, c.trial, path, sizeof(path)) == RP_OK &&
            rp_slot_check(a, &c, path, &img) == RP_OK) {
            m->trial = (uint8_t)c.trial;
            memcpy(m->trial_digest, img.digest, RP_SHA256_LEN);
        }
        p->u.status.n++;
    }
    if (err != RP_OK)
        refuse(p, err, "cannot read the components: %s", rp_strerror(err));
}

/* Copy the client's image into a file only the monitor reaches: what is verified and installed is
 * then what the monitor holds, whatever the client does with its descriptor afterwards. */
static rp_err_t copy_in(int fd, const char *dir, char *path, size_t cap, struct gate *g)
{
    uint8_t *buf = malloc(COPY_CHUNK), id[RP_SHA256_LEN];
    uint64_t total = 0;
    struct stat st;
    rp_sha256_t sha;
    int out = -1;
    ssize_t n;
    rp_err_t err = rp_sha256_init(&sha);

    if (buf == NULL)
        err = RP_ERR_NO_MEMORY;
    /* A regular file only: a pipe or socket whose writer never finishes would hold the monitor. */
    if (err == RP_OK && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)))
        err = RP_ERR_INVALID_ARG;
    else if (err == RP_OK && (snprintf(path, cap, "%s/monitor-tmp", dir) >= (int)cap ||
                              (mkdir(path, 0700) != 0 && errno != EEXIST) ||
                              snprintf(path, cap, "%s/monitor-tmp/install.img", dir) >= (int)cap))
        err = RP_ERR_IO;
    if (err == RP_OK) {
        unlink(path);
        out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
            err = RP_ERR_IO;
    }
    /* From offset 0 whatever the client's offset: pread. */
    while (err == RP_OK && (n = pread(fd, buf, COPY_CHUNK, (off_t)total)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = RP_ERR_IO;
        else if ((total += (uint64_t)n) > RP_UPDATE_IMAGE_MAX)
            err = RP_ERR_TOO_LARGE;
        else if ((err = rp_write_all(out, buf, (size_t)n)) == RP_OK)
            err = rp_sha256_update(&sha, buf, (size_t)n);
    }
    if (out >= 0 && close(out) != 0 && err == RP_OK)
        err = RP_ERR_IO;
    /* The file's SHA-256 and size: what targets name an image by (its ID). */
    if (rp_sha256_final(&sha, id) != RP_OK && err == RP_OK)
        err = RP_ERR_IO;
    if (err == RP_OK)
        err = rp_hex_encode(id, sizeof(id), g->id, sizeof(g->id));
    g->size = total;
    free(buf);
    return err;
}

/* A signed metadata document from a client's descriptor (a regular file), at most max bytes:
 * one byte more is read, so that a longer one is refused whole, never cut. OUT: *env (malloc'd;
 * free it, also on a refusal), *len. The refusal is said in p. */
static rp_err_t read_doc(int fd, size_t max, const char *what, char **env, size_t *len,
                         rp_mon_reply_t *p)
{
    struct stat st;
    ssize_t n;
    rp_err_t err = (*env = malloc(max + 1)) != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    *len = 0;
    if (err == RP_OK && (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)))
        err = RP_ERR_INVALID_ARG;
    while (err == RP_OK && *len <= max &&
           (n = pread(fd, *env + *len, max + 1 - *len, (off_t)*len)) != 0) {
        if (n < 0 && errno != EINTR)
            err = RP_ERR_IO;
        else if (n > 0)
            *len += (size_t)n;
    }
    if (err == RP_OK && *len > max)
        err = RP_ERR_TOO_LARGE;
    if (err == RP_ERR_INVALID_ARG)
        refuse(p, err, "%s needs the %s metadata as a descriptor of a regular file",
               rp_mon_type_name(p->type), what);
    else if (err == RP_ERR_TOO_LARGE)
        refuse(p, err, "the %s metadata is larger than %zu bytes", what, max);
    else if (err != RP_OK)
        refuse(p, err, "cannot read the %s metadata: %s", what, rp_strerror(err));
    return err;
}

static rp_err_t no_parser(void *ctx, rp_md_kind_t kind, const uint8_t *payload, size_t len,
                          void *out, uint8_t *bin, size_t *bin_len, char *detail, size_t cap)
{
    (void)ctx, (void)kind, (void)payload, (void)len, (void)out, (void)bin, (void)bin_len;
    snprintf(detail, cap, "the monitor has no parser for metadata");
    return RP_ERR_IO;
}

/* What reads a new document's payload: never this process (rp_monitor_set_parser). Unset, every
 * document is refused. */
static struct {
    rp_md_parse_fn fn;
    void *ctx;
} parser = {no_parser, NULL};

void rp_monitor_set_parser(rp_md_parse_fn fn, void *ctx)
{
    parser.fn = fn != NULL ? fn : no_parser;
    parser.ctx = ctx;
}

/* A signed document in its binary form (rp_md_signed_decode, fuzzed: fuzz/monitor_proto.c) from
 * the descriptor, at most max bytes: the agent unpacked its JSON, so that nothing here parses
 * JSON before its signatures hold. OUT: *doc (rp_md_signed_free). The refusal is said in p. */
static rp_err_t read_signed(int fd, size_t max, const char *what, rp_md_signed_t *doc,
                            rp_mon_reply_t *p)
{
    char *bin = NULL, detail[RP_MON_MESSAGE_MAX - 48];
    size_t len = 0;
    rp_err_t err = read_doc(fd, max, what, &bin, &len, p);

    if (err == RP_OK && (err = rp_md_signed_decode((const uint8_t *)bin, len, doc, detail,
                                                   sizeof(detail))) != RP_OK)
        refuse(p, err, "%s metadata refused: %s", what, detail);
    free(bin);
    return err;
}

/*
 * TRUST_ROOT: the monitor owns the trust anchor (docs/monitor.md), whose image keys decide what
 * installs: were the agent to keep the root, a compromised agent would choose the image keys. So
 * the monitor reads the root from the descriptor (its binary form, at most RP_MON_ROOT_MAX bytes)
 * and keeps it only if rp_md_root_accept_with finds it signed by the kept root's keys (checked
 * before rampart-unpack reads its payload: parser), the next version and signed by its own; a
 * first root (none kept) only from root.
 */
static void do_trust_root(rp_agent_t *a, int fd, uid_t peer, rp_mon_reply_t *p)
{
    rp_md_signed_t *doc = calloc(1, sizeof(*doc));
    char detail[RP_MON_MESSAGE_MAX - 32];
    uint64_t version = 0;
    rp_err_t err =
        doc != NULL ? read_signed(fd, RP_MON_ROOT_MAX, "root", doc, p) : RP_ERR_NO_MEMORY;

    if (err == RP_OK &&
        (err = rp_update_take_root(a->state_dir, doc, peer == 0, parser.fn, parser.ctx, &version,
                                   detail, sizeof(detail))) != RP_OK)
        refuse(p, err, "root metadata refused: %s", detail);
    else if (err == RP_OK) {
        p->u.trust_root.version = version;
        rp_log_info("update root version %llu kept", (unsigned long long)version);
    } else if (doc == NULL)
        refuse(p, err, "%s", rp_strerror(err));
    rp_md_signed_free(doc);
    free(doc);
}

/* Whether an older version's copy of the targets (S/update/targets.json) is there, not migrated
 * (said when the monitor started). */
static bool before_kept(const char *state_dir)
{
    char path[PATH_MAX];
    struct stat st;
    int n = snprintf(path, sizeof(path), "%s/%s", state_dir, RP_UPDATE_TARGETS_BEFORE);

    return n <= 0 || (size_t)n >= sizeof(path) || lstat(path, &st) == 0;
}

/* The monitor's copy of the targets, S/update/targets.bin. */
static rp_err_t targets_path(const rp_agent_t *a, char *path, size_t cap)
{
    int n = snprintf(path, cap, "%s/%s", a->state_dir, RP_UPDATE_TARGETS_FILE);

    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

/*
 * TARGETS: the device's signed targets, which INSTALL then holds every image to (install_gate).
 * Their binary form (at most RP_MON_TARGETS_MAX bytes), checked with the root the monitor owns
 * before rampart-unpack reads the payload (parser), by the agent's own rules
 * (rp_update_take_targets: the online keys, this device, never older than the kept ones, not
 * expired), and kept in S/update/targets.bin (root's: trusted storage, the kept binary form, read
 * again at each INSTALL).
 */
static void do_targets(rp_agent_t *a, int fd, rp_mon_reply_t *p)
{
    const rp_update_copy_t copy = {rp_update_kept_targets, rp_update_keep_targets, parser.fn,
                                   parser.ctx};
    rp_md_root_t *root = calloc(1, sizeof(*root));
    rp_md_targets_t *t = calloc(1, sizeof(*t));
    rp_md_signed_t *doc = calloc(1, sizeof(*doc));
    char path[PATH_MAX], detail[RP_MON_MESSAGE_MAX - 32] = "out of memory";
    rp_err_t err = root != NULL && t != NULL && doc != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    if (err == RP_OK && read_signed(fd, RP_MON_TARGETS_MAX, "targets", doc, p) != RP_OK)
        goto out;
    if (err == RP_OK)
        err = targets_path(a, path, sizeof(path));
    if (err == RP_OK && (err = rp_update_root(a->state_dir, root)) == RP_ERR_NOT_FOUND)
        snprintf(detail, sizeof(detail), "the device has no update root to check them with");
    else if (err != RP_OK)
        snprintf(detail, sizeof(detail), "%s", rp_strerror(err));
    else if (before_kept(a->state_dir)) { /* not migrated: it would be taken as "none kept" */
        snprintf(detail, sizeof(detail),
                 "S/" RP_UPDATE_TARGETS_BEFORE ", kept by an older version, was refused and not "
                 "migrated (the monitor's log says why)");
        err = RP_ERR_MALFORMED;
    } else
        err =
            rp_update_take_targets(path, a->device_id, root, doc, &copy, t, detail, sizeof(detail));
    if (err != RP_OK) {
        refuse(p, err, "targets metadata refused: %s", detail);
    } else {
        p->u.targets.version = (uint64_t)t->version;
        rp_log_info("targets version %lld kept (%zu target(s))", (long long)t->version,
                    t->ntargets);
    }
out:
    rp_md_signed_free(doc);
    free(doc);
    free(root);
    free(t);
}

/*
 * INSTALL's gate, asked once the image verifies: the image must be one the targets the monitor
 * keeps name for this component (its file's SHA-256 and size, its version, digest and security
 * counter), the targets still in force; otherwise only a sideload the device allows
 * (rp_capability_sideload: no update root, or a development capability in force). A compromised
 * agent so cannot install an image its tenant signed that the service did not deploy to it.
 */
static bool install_gate(void *ctx, const char *component, const rp_slot_image_t *img, char *why,
                         size_t cap)
{
    struct gate *g = ctx;
    rp_md_root_t *root = calloc(1, sizeof(*root));
    rp_md_targets_t *t = calloc(1, sizeof(*t));
    char path[PATH_MAX], named[160] = "", dev[128] = "";
    bool allowed = false;
    rp_err_t err = root != NULL && t != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    if (err == RP_OK && (err = rp_update_root(g->a->state_dir, root)) == RP_OK &&
        (err = targets_path(g->a, path, sizeof(path))) == RP_OK)
        err = rp_update_kept_targets(path, g->a->device_id, root, false, t, named, sizeof(named));
    else
        snprintf(named, sizeof(named), "no usable update root: %s", rp_strerror(err));
    for (size_t i = 0; err == RP_OK && !allowed && i < t->ntargets; i++) {
        const rp_md_target_t *x = &t->targets[i];
        char v[RP_IMAGE_VERSION_STR_MAX] = "?";
        if (strcmp(x->component, component) != 0)
            continue;
        allowed =
            strcmp(x->image, g->id) == 0 && x->size == g->size && rp_update_target_matches(x, img);
        if (rp_image_version_format(&x->version, v, sizeof(v)) != RP_OK)
            v[0] = '\0';
        snprintf(named, sizeof(named), "version %lld names %s %s, image %.16s",
                 (long long)t->version, component, v, x->image);
    }
    if (err == RP_OK && !allowed && named[0] == '\0')
        snprintf(named, sizeof(named), "version %lld names no %s", (long long)t->version,
                 component);
    /* Otherwise a sideload, if the device allows one (the agent's own rule, one owner). */
    if (!allowed && err != RP_ERR_NO_MEMORY &&
        rp_capability_sideload(g->a->state_dir, g->a->device_id, &allowed, dev, sizeof(dev)) !=
            RP_OK)
        allowed = false;
    if (!allowed)
        snprintf(why, cap,
                 "not an image the device's signed targets name (%s), and no development "
                 "capability is in force%s%s",
                 named, dev[0] != '\0' ? ": " : "", dev);
    free(root);
    free(t);
    return allowed;
}

bool rp_monitor_remove_allowed(rp_agent_t *a, const char *component, char *why, size_t cap)
{
    rp_md_root_t *root = calloc(1, sizeof(*root));
    rp_md_targets_t *t = calloc(1, sizeof(*t));
    char path[PATH_MAX], named[160] = "", dev[128] = "";
    bool allowed = false;
    rp_err_t err = root != NULL && t != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    if (err == RP_OK && (err = rp_update_root(a->state_dir, root)) == RP_OK &&
        (err = targets_path(a, path, sizeof(path))) == RP_OK)
        err = rp_update_kept_targets(path, a->device_id, root, false, t, named, sizeof(named));
    else
        snprintf(named, sizeof(named), "no usable update root: %s", rp_strerror(err));
    if (err == RP_OK) {
        allowed = true;
        for (size_t i = 0; i < t->ntargets; i++)
            allowed = allowed && strcmp(t->targets[i].component, component) != 0;
        snprintf(named, sizeof(named), "version %lld %s %s", (long long)t->version,
                 allowed ? "does not name" : "names", component);
    } else if (named[0] == '\0')
        snprintf(named, sizeof(named), "none usable: %s", rp_strerror(err));
    if (!allowed && err != RP_ERR_NO_MEMORY &&
        rp_capability_sideload(a->state_dir, a->device_id, &allowed, dev, sizeof(dev)) != RP_OK)
        allowed = false;
    if (!allowed)
        snprintf(why, cap,
                 "the device's signed targets still name it or cannot be read (%s), and no "
                 "development capability is in force%s%s",
                 named, dev[0] != '\0' ? ": " : "", dev);
    else if (err == RP_OK && strstr(named, "does not name") != NULL)
        snprintf(why, cap, "the signed targets %s", named);
    else
        snprintf(why, cap, "a sideload the device allows (%s)",
                 err == RP_OK ? named : "no targets to check it against");
    free(root);
    free(t);
    return allowed;
}

rp_err_t rp_monitor_agent_dir(const char *state_dir, uid_t uid, gid_t gid)
{
    static const char *const readable[] = {"update/root.bin", "capability.bin"};
    char path[PATH_MAX];
    struct stat st;
    rp_err_t err;

    /* S and S/update: root's, not listable by others, but passable (0711), so that the agent's
     * user reaches S/agent/, the socket and the public documents below. */
    if (stat(state_dir, &st) != 0 || chmod(state_dir, (st.st_mode & 0755) | 0711) != 0)
        return RP_ERR_IO;
    if (snprintf(path, sizeof(path), "%s/update", state_dir) >= (int)sizeof(path))
        return RP_ERR_INVALID_ARG;
    if (mkdir(path, 0711) != 0 && errno != EEXIST)
        return RP_ERR_IO;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || chmod(path, (st.st_mode & 0755) | 0711))
        return RP_ERR_IO;
    for (size_t i = 0; i < sizeof(readable) / sizeof(readable[0]); i++)
        if (snprintf(path, sizeof(path), "%s/%s", state_dir, readable[i]) < (int)sizeof(path) &&
            lstat(path, &st) == 0 && S_ISREG(st.st_mode) && chmod(path, 0644) != 0)
            return RP_ERR_IO;
    err = rp_agent_dir_make(state_dir, uid, gid);
    if (err == RP_OK)
        rp_log_info("%s/agent: the agent's own directory, uid %u's", state_dir, (unsigned)uid);
    return err;
}

/* INSTALL's external for a component attached to an MCU: the board's trial is run by the agent
 * (the monitor runs no program), so the install answers handed, on trial until MCU_VERDICT. */
static rp_err_t hand_over(rp_agent_t *a, const char *name, const char *slot_path,
                          const char *version, bool *healthy, rp_update_state_t *unhealthy,
                          char *detail, size_t cap)
{
    (void)a, (void)name, (void)slot_path, (void)version, (void)detail, (void)cap;
    *healthy = false;
    *unhealthy = RP_UPDATE_HANDED;
    return RP_OK;
}

static void do_install(rp_agent_t *a, const rp_mon_request_t *q, int fd, rp_mon_reply_t *p,
                       int *reply_fd)
{
    struct gate g = {.a = a};
    rp_install_opts_t opts = {.health_seconds =
                                  (int)(q->u.install.health_seconds > RP_MON_HEALTH_MAX
                                            ? RP_MON_HEALTH_MAX
                                            : q->u.install.health_seconds),
                              .trial = trial_fn,
                              .trial_ctx = trial_ctx,
                              .gate = install_gate,
                              .gate_ctx = &g};
    rp_install_result_t res;
    char path[PATH_MAX] = "";
    rp_err_t err;

    if (fd < 0) {
        refuse(p, RP_ERR_INVALID_ARG, "install needs the image as a descriptor (SCM_RIGHTS)");
        return;
    }
    /* Firmware for an MCU: verified and on trial here, its trial handed to the agent. */
    err = rp_mcu_attached(a->state_dir, q->u.install.component);
    if (err == RP_OK)
        opts.external = hand_over;
    else if (err != RP_ERR_NOT_FOUND) {
        refuse(p, err, "%s: cannot tell whether it is attached to an MCU: %s",
               q->u.install.component, rp_strerror(err));
        return;
    }
    err = copy_in(fd, a->state_dir, path, sizeof(path), &g);
    if (err == RP_ERR_INVALID_ARG) {
        refuse(p, err, "the image's descriptor must be a regular file opened for reading");
    } else if (err == RP_ERR_TOO_LARGE) {
        refuse(p, err, "the image is larger than %llu bytes",
               (unsigned long long)RP_UPDATE_IMAGE_MAX);
    } else if (err != RP_OK) {
        refuse(p, err, "cannot read the image from its descriptor: %s", rp_strerror(err));
    } else {
        err = rp_install(a, q->u.install.component, path, &opts, &res);
        if (err == RP_OK) {
            p->u.install.state = (uint8_t)res.state;
            snprintf(p->u.install.detail, sizeof(p->u.install.detail), "%s", res.detail);
        }
        /* Handed: the trial slot, read-only, beside the answer (never a path to swap). Should it
         * not open, the agent gets none, gives no verdict, and the deadline rolls it back. */
        if (err == RP_OK && res.state == RP_UPDATE_HANDED) {
            /* The detail: its digest and the nonce the board's evidence must be over, hex. */
            char slot[PATH_MAX], *d = p->u.install.detail;
            _Static_assert(RP_MON_MCU_NONCE_LEN == RP_SLOT_NONCE_LEN, "INSTALL hands the nonce");
            _Static_assert(2 * (RP_SHA256_LEN + RP_SLOT_NONCE_LEN) + 1 <= RP_MON_DETAIL_MAX,
                           "the handed detail fits");
            if (rp_hex_encode(res.digest, RP_SHA256_LEN, d, 2 * RP_SHA256_LEN + 1) == RP_OK &&
                (d[2 * RP_SHA256_LEN] = ' ',
                 rp_hex_encode(res.nonce, RP_SLOT_NONCE_LEN, d + 2 * RP_SHA256_LEN + 1,
                               2 * RP_SLOT_NONCE_LEN + 1) == RP_OK) &&
                rp_slot_path(a->state_dir, q->u.install.component, res.slot, slot, sizeof(slot)) ==
                    RP_OK)
                *reply_fd = open(slot, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        } else if (err != RP_OK) {
            refuse(p, err, "%s: the install failed: %s", q->u.install.component,
                   err == RP_ERR_BAD_SIGNATURE ? "its state's counter binding is tampered"
                                               : rp_strerror(err));
        }
    }
    unlink(path);
}

/* An "installed" verdict's proof: the board's own evidence, which the verdict carries (mcu.h). */
struct proof {
    const char *state_dir;
    const rp_mon_request_t *q;
};

static rp_err_t board_proof(void *ctx, const char *name, const uint8_t digest[RP_SHA256_LEN],
                            const uint8_t nonce[RP_SLOT_NONCE_LEN], char *why, size_t cap)
{
    const struct proof *pr = ctx;

    return rp_mcu_evidence_check(pr->state_dir, name, digest, nonce, RP_SLOT_NONCE_LEN,
                                 pr->q->u.mcu_verdict.evidence, pr->q->u.mcu_verdict.evidence_len,
                                 why, cap);
}

/* MCU_VERDICT: the agent's word on firmware INSTALL handed over ends the install, only for a
 * component attached to an MCU whose trial slot still holds that image; installed only with the
 * board's evidence of it (docs/mcu.md, trust). */
static void do_verdict(rp_agent_t *a, const rp_mon_request_t *q, rp_mon_reply_t *p)
{
    struct proof pr = {a->state_dir, q};
    rp_install_result_t res;
    rp_err_t err = rp_mcu_attached(a->state_dir, q->u.mcu_verdict.component);

    if (err == RP_OK)
        err = rp_install_end(a, q->u.mcu_verdict.component, q->u.mcu_verdict.digest,
                             (rp_update_state_t)q->u.mcu_verdict.state, q->u.mcu_verdict.detail,
                             board_proof, &pr, &res);
    if (err == RP_OK) {
        p->u.install.state = (uint8_t)res.state;
        snprintf(p->u.install.detail, sizeof(p->u.install.detail), "%s", res.detail);
    } else if (err == RP_ERR_DENIED)
        refuse(p, err, "%s: %s", q->u.mcu_verdict.component, res.detail);
    else
        refuse(p, err, "%s: %s", q->u.mcu_verdict.component,
               err == RP_ERR_NOT_FOUND ? "not the image on trial for an MCU" : rp_strerror(err));
}

/*
 * The identity key signs only what the monitor itself built: a TLS 1.3 CertificateVerify content
 * around the caller's transcript hash. A generic "sign this digest" would let any client (a
 * compromised agent, an app) have evidence (an EAT's Sig_structure) or a CSR for another key
 * signed: those never start with 64 spaces and a TLS 1.3 context string.
 */
rp_err_t rp_monitor_sign_tls13(rp_agent_t *a, const rp_mon_request_t *q, rp_mon_reply_t *p)
{
    uint8_t content[RP_TLS13_CV_CONTENT_MAX], digest[RP_SHA256_LEN];
    size_t len = 0;
    rp_err_t err;

    err = rp_tls13_cv_content((rp_tls13_side_t)q->u.sign_tls13.side, q->u.sign_tls13.hash,
                              q->u.sign_tls13.hash_len, content, sizeof(content), &len);
    if (err == RP_OK)
        err = rp_sha256(content, len, digest);
    if (err == RP_OK)
        err = rp_rot_sign(a->rot, digest, p->u.sign_tls13.sig, sizeof(p->u.sign_tls13.sig),
                          &p->u.sign_tls13.len);
    return err;
}

/* EVENTS: the log read by the monitor for the agent, whose user cannot read S/events/. */
static void do_events(rp_agent_t *a, const rp_mon_request_t *q, rp_mon_reply_t *p)
{
    rp_event_t ev[RP_MON_EVENTS_PER_REPLY];
    bool more = false;
    size_t n = 0;
    rp_err_t err = rp_events_read_from(a->state_dir, q->u.events.from, ev, RP_MON_EVENTS_PER_REPLY,
                                       &n, &p->u.events.next, &more, &p->u.events.dropped);

    if (err != RP_OK) {
        refuse(p, err, "cannot read the security events: %s", rp_strerror(err));
        return;
    }
    p->u.events.more = more ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        rp_mon_event_t *e = &p->u.events.e[p->u.events.n];
        /* A kind this version does not name (a record from a newer monitor) is not sent: the
         * client's decoder would refuse the whole reply. */
        if (ev[i].kind <= 0 || ev[i].kind >= RP_EVENT_KIND_END)
            continue;
        e->seq = ev[i].seq;
        e->at = ev[i].at;
        e->kind = (uint16_t)ev[i].kind;
        if (rp_component_name_valid(ev[i].app, strlen(ev[i].app)))
            memcpy(e->app, ev[i].app, sizeof(e->app));
        memcpy(e->reason, ev[i].reason, sizeof(e->reason));
        p->u.events.n++;
    }
}

/* CRASHES: a piece of the kept crash numbered from or after (S/crashes/ is root's). The monitor
 * reads no field of it: the agent parses and unwinds it. */
static void do_crashes(rp_agent_t *a, const rp_mon_request_t *q, rp_mon_reply_t *p)
{
    rp_err_t err =
        rp_crash_store_read(a->state_dir, q->u.crashes.from, q->u.crashes.offset, p->u.crashes.data,
                            sizeof(p->u.crashes.data), &p->u.crashes.len, &p->u.crashes.seq,
                            &p->u.crashes.size, &p->u.crashes.dropped);

    if (err != RP_OK)
        refuse(p, err, "cannot read the kept crashes: %s", rp_strerror(err));
    else
        p->u.crashes.offset =
            q->u.crashes.offset < p->u.crashes.size ? q->u.crashes.offset : p->u.crashes.size;
}

/* SETTINGS: the device group's crash capture as the service said it (the agent relays it). The
 * switch is kept where the supervisor reads it at each start and each kept crash (crash.h);
 * turned off, the kept crashes go. The reply says what is in force. */
static void do_settings(rp_agent_t *a, const rp_mon_request_t *q, rp_mon_reply_t *p)
{
    bool on = q->u.settings.crash_capture != 0, was = rp_crash_capture_on(a->state_dir);
    rp_err_t err = RP_OK;

    /* Off is applied each time it is said (a crash kept in a race with the last time goes too). */
    if ((!on || !was) && (err = rp_crash_capture_set(a->state_dir, on)) != RP_OK) {
        refuse(p, err, "cannot apply the crash capture setting: %s", rp_strerror(err));
        return;
    }
    if (on != was)
        rp_log_info("crash capture turned %s for this device's group%s", on ? "on" : "off",
                    on ? "" : ": kept crashes deleted, apps started from now on not traced");
    p->u.settings.crash_capture = rp_crash_capture_on(a->state_dir) ? 1 : 0;
}

/* APP_LOG: up to RP_MON_LOG_CHUNK bytes of S/apps/NAME/log (the name checked by the decoder)
 * from an offset; past the end, none and the size (the client's first question). */
static void do_app_log(rp_agent_t *a, const rp_mon_request_t *q, rp_mon_reply_t *p)
{
    char path[PATH_MAX];
    struct stat st;
    ssize_t got = 0;
    int fd;

    if (snprintf(path, sizeof(path), "%s/apps/%s/log", a->state_dir, q->u.app_log.component) >=
        (int)sizeof(path)) {
        refuse(p, RP_ERR_INVALID_ARG, "the state directory's path is too long");
        return;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            refuse(p, RP_ERR_NOT_FOUND, "%s: no log: the app never ran on this device",
                   q->u.app_log.component);
        else
            refuse(p, RP_ERR_IO, "%s: cannot open its log", q->u.app_log.component);
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        refuse(p, RP_ERR_IO, "%s: its log is not a regular file", q->u.app_log.component);
        close(fd);
        return;
    }
    p->u.app_log.size = (uint64_t)st.st_size;
    p->u.app_log.offset =
        q->u.app_log.offset < p->u.app_log.size ? q->u.app_log.offset : p->u.app_log.size;
    if (p->u.app_log.offset < p->u.app_log.size) {
        uint64_t want = p->u.app_log.size - p->u.app_log.offset;
        do
            got = pread(fd, p->u.app_log.data, want < RP_MON_LOG_CHUNK ? want : RP_MON_LOG_CHUNK,
                        (off_t)p->u.app_log.offset);
        while (got < 0 && errno == EINTR);
    }
    close(fd);
    if (got < 0)
        refuse(p, RP_ERR_IO, "%s: cannot read its log", q->u.app_log.component);
    else
        p->u.app_log.len = (size_t)got; /* the app may be cutting it back: never past size */
}

void rp_monitor_serve(rp_agent_t *a, const rp_mon_request_t *q, int fd, uid_t peer,
                      rp_mon_reply_t *p, int *reply_fd)
{
    rp_err_t err = RP_OK;
    int unbootable = 0, lock;

    memset(p, 0, sizeof(*p));
    *reply_fd = -1;
    p->type = q->type;
    p->id = q->id;
    /* The agent's socket answers the agent's types only (proto.c owns which are which): an app's
     * requests are answered on its own channel (appchan.c), where the monitor knows the app. */
    if (rp_mon_type_channel(q->type) != RP_MON_CHANNEL_AGENT) {
        refuse(p, RP_ERR_UNSUPPORTED, "%s is asked on an app's channel, not on the agent's socket",
               rp_mon_type_name(q->type));
        return;
    }
    switch (q->type) {
    case RP_MON_HELLO:
        if (q->u.hello.min_version > RP_MON_VERSION || q->u.hello.max_version < RP_MON_VERSION)
            refuse(p, RP_ERR_BAD_VERSION, "this monitor speaks version %d only", RP_MON_VERSION);
        p->u.hello.version = RP_MON_VERSION;
        p->u.hello.packet_max = RP_MON_PACKET_MAX;
        break;
    case RP_MON_STATUS: do_status(a, p); break;
    case RP_MON_ID:
        snprintf(p->u.id.device_id, sizeof(p->u.id.device_id), "%s", a->device_id);
        p->u.id.rot_kind = (uint8_t)rp_rot_kind(a->rot);
        err = rp_rot_public_key(a->rot, p->u.id.spki, sizeof(p->u.id.spki), &p->u.id.spki_len);
        break;
    case RP_MON_SIGN_TLS13: err = rp_monitor_sign_tls13(a, q, p); break;
    case RP_MON_EVIDENCE:
        err = rp_agent_evidence(a, q->u.evidence.nonce, q->u.evidence.nonce_len, p->u.evidence.eat,
                                sizeof(p->u.evidence.eat), &p->u.evidence.len);
        break;
    case RP_MON_INSTALL:
    case RP_MON_RECOVER:
    case RP_MON_MCU_VERDICT:
        /* Taking turns with an agent that still changes the slots itself; never waiting for it
         * (the monitor would stop serving everyone else). */
        lock = rp_monitor_slots_lock(a->state_dir, false);
        if (lock < 0)
            refuse(p, RP_ERR_EXISTS, "the slots are busy (S/update.lock is held): try again");
        else if (q->type == RP_MON_INSTALL)
            do_install(a, q, fd, p, reply_fd);
        else if (q->type == RP_MON_MCU_VERDICT)
            do_verdict(a, q, p);
        else if ((err = rp_components_recover(a, &unbootable)) == RP_OK)
            p->u.recover.unbootable = (uint32_t)unbootable; /* the union: not for INSTALL */
        if (lock >= 0)
            close(lock);
        break;
    case RP_MON_TRUST_ROOT: do_trust_root(a, fd, peer, p); break;
    case RP_MON_TARGETS: do_targets(a, fd, p); break;
    case RP_MON_EVENTS: do_events(a, q, p); break;
    case RP_MON_APP_LOG: do_app_log(a, q, p); break;
    case RP_MON_CRASHES: do_crashes(a, q, p); break;
    case RP_MON_SETTINGS: do_settings(a, q, p); break;
    default: refuse(p, RP_ERR_UNSUPPORTED, "unknown request"); break;
    }
    if (err != RP_OK)
        refuse(p, err, "%s: %s", rp_mon_type_name(q->type), rp_strerror(err));
}
