/*
 * The app supervisor's side of rampart-unpack (unpack.h): start the confined child as its own
 * user, read its answer within a deadline, check the manifest it sends (its binary form: no JSON
 * is parsed here), and take its tree
 * over (root's, durable) before anything uses it.
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rampart/apptree.h"
#include "rampart/log.h"
#include "rampart/seccomp.h" /* SANITIZER_BUILD */
#include "unpack.h"

extern char **environ;

#define STAGE_SUFFIX ".unpack"

/* (The broker's budget, RP_BROKER_NOFILE, is asserted where it is spent: device/broker/broker.c.)
 */

static void exec_as(uid_t uid, const char *helper, char *const argv[], int keep)
    __attribute__((noreturn));

static bool limit(int res, rlim_t n)
{
    struct rlimit rl = {n, n};
    return setrlimit(res, &rl) == 0;
}

/* In the child, before exec: the slot on stdin, the answer and the reason on two pipes, limits,
 * the unpack user, no other descriptor (but sock at 3, unless -1: the broker's, which lives as
 * long as the monitor and so has no CPU limit, and has its own user and descriptor budget).
 * Never returns. */
static void child(const char *helper, char *const argv[], int slot_fd, int out, int err,
                  const char *cwd, int sock)
{
    if (slot_fd < 0)
        slot_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (dup2(slot_fd, STDIN_FILENO) < 0 || (out >= 0 && dup2(out, STDOUT_FILENO) < 0) ||
        (err >= 0 && dup2(err, STDERR_FILENO) < 0) || chdir(cwd) != 0 || !limit(RLIMIT_CORE, 0) ||
        (sock < 0 && !limit(RLIMIT_CPU, RP_UNPACK_SECONDS)) ||
        !limit(RLIMIT_FSIZE, RP_UNPACK_TREE_BYTES_MAX) || (sock >= 0 && dup2(sock, 3) != 3))
        _exit(126);
    if (!limit(RLIMIT_NOFILE, sock < 0 ? 64 : RP_BROKER_NOFILE)) {
        /* (above the monitor's hard limit, without CAP_SYS_RESOURCE: the budget the bounds rest
         * on is not there, so no broker) */
        dprintf(STDERR_FILENO,
                "rampart-monitor: RLIMIT_NOFILE %d cannot be set for a helper: the monitor's hard "
                "limit is lower (LimitNOFILE=)\n",
                sock < 0 ? 64 : RP_BROKER_NOFILE);
        _exit(126);
    }
#ifndef SANITIZER_BUILD /* ASan reserves terabytes of shadow */
    if (!limit(RLIMIT_AS, 2ull * 1024 * 1024 * 1024))
        _exit(126);
#endif
    exec_as(sock >= 0 ? RP_BROKER_UID : RP_UNPACK_UID, helper, argv, sock >= 0 ? 4 : 3);
}

void rp_unpack_exec(const char *helper, char *const argv[], int keep)
{
    exec_as(RP_UNPACK_UID, helper, argv, keep);
}

static void exec_as(uid_t uid, const char *helper, char *const argv[], int keep)
{
    if (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0)
        _exit(126);
    closefrom((unsigned)keep);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) /* (after the user: a change of it clears it) */
        _exit(126);
    /* None of the monitor's environment (LD_PRELOAD, NOTIFY_SOCKET...); a test build passes on
     * its sanitizers' settings only. */
    char *env[4] = {NULL};
#ifdef SANITIZER_BUILD
    size_t n = 0;
    for (char **e = environ; *e != NULL && n < 3; e++)
        if (strncmp(*e, "ASAN_OPTIONS=", 13) == 0 || strncmp(*e, "UBSAN_OPTIONS=", 14) == 0 ||
            strncmp(*e, "LSAN_OPTIONS=", 13) == 0)
            env[n++] = *e;
#endif
    execve(helper, argv, env);
    _exit(127);
}

rp_err_t rp_unpack_beside(const char *name, char *out, size_t cap)
{
    ssize_t n = cap > 1 ? readlink("/proc/self/exe", out, cap - 1) : -1;
    char *slash = n > 0 ? memrchr(out, '/', (size_t)n) : NULL;

    if (slash == NULL || (size_t)(slash + 1 - out) + strlen(name) + 1 > cap)
        return RP_ERR_NOT_FOUND;
    memcpy(slash + 1, name, strlen(name) + 1);
    return RP_OK;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Read both pipes to their end, or until the deadline (seconds from now). */
static bool drain(int seconds, int out, char *obuf, size_t ocap, size_t *olen, int err, char *ebuf,
                  size_t ecap)
{
    int64_t deadline = now_ms() + seconds * 1000L;
    size_t elen = 0;
    struct pollfd p[2] = {
        {out, POLLIN, 0},
        {err, POLLIN, 0}
    };

    *olen = 0;
    while (p[0].fd >= 0 || p[1].fd >= 0) {
        long left = (long)(deadline - now_ms());
        if (left <= 0 || (poll(p, 2, (int)left) < 0 && errno != EINTR))
            return false;
        for (int i = 0; i < 2; i++) {
            char *buf = i == 0 ? obuf : ebuf;
            size_t *len = i == 0 ? olen : &elen, cap = i == 0 ? ocap : ecap - 1;
            char scratch[512];
            ssize_t n;
            if (p[i].fd < 0 || p[i].revents == 0)
                continue;
            /* Past the cap the rest is read and dropped: an answer too long is refused below. */
            n = *len < cap ? read(p[i].fd, buf + *len, cap - *len)
                           : read(p[i].fd, scratch, sizeof(scratch));
            if (n > 0 && *len < cap)
                *len += (size_t)n;
            else if (n > 0 && i == 0)
                *olen = ocap + 1;
            else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                p[i].fd = -1;
        }
    }
    ebuf[elen] = '\0';
    return true;
}

/* Start rampart-unpack (the one at path; NULL: beside this program) with argv (the slot, or a
 * payload, on its stdin, -1: none; cwd its directory), read its answer (at most acap bytes) within
 * seconds. A refusal: RP_ERR_MALFORMED, its reason in why; a failure (a crash, the deadline, a
 * signal): RP_ERR_IO, said. */
static rp_err_t spawn(const char *path, int seconds, char *const argv[], int in_fd, const char *cwd,
                      const char *label, char *answer, size_t acap, size_t *alen, char *why,
                      size_t cap)
{
    char helper[PATH_MAX], reason[RP_UNPACK_WHY_MAX + 1] = "";
    int out[2] = {-1, -1}, err[2] = {-1, -1}, status = -1;
    bool done;
    pid_t pid;

    *alen = 0;
    if (path != NULL && strlen(path) < sizeof(helper))
        strcpy(helper, path);
    else if (rp_unpack_beside("rampart-unpack", helper, sizeof(helper)) != RP_OK) {
        snprintf(why, cap, "cannot find rampart-unpack");
        return RP_ERR_IO;
    }
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0)
                close(out[i]);
            if (err[i] >= 0)
                close(err[i]);
        }
        snprintf(why, cap, "cannot start rampart-unpack: %s", strerror(errno));
        return RP_ERR_IO;
    }
    if (pid == 0)
        child(helper, argv, in_fd, out[1], err[1], cwd, -1);
    close(out[1]);
    close(err[1]);
    done = drain(seconds, out[0], answer, acap, alen, err[0], reason, sizeof(reason));
    if (!done)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(out[0]);
    close(err[0]);
    reason[strcspn(reason, "\n")] = '\0';
    if (!done || !WIFEXITED(status) || WEXITSTATUS(status) > 1) {
        snprintf(why, cap, "rampart-unpack %s", !done ? "did not answer in time" : "failed");
        rp_log_warn("%s: rampart-unpack %s: %s (status %d)%s%s", label, argv[1],
                    !done ? "killed at its deadline" : "failed", status, reason[0] ? ": " : "",
                    reason);
        return RP_ERR_IO;
    }
    if (WEXITSTATUS(status) == 1) {
        snprintf(why, cap, "%s", reason[0] != '\0' ? reason : "refused");
        return RP_ERR_MALFORMED;
    }
    return RP_OK;
}

static rp_err_t run(const char *mode, int slot_fd, uint64_t off, uint64_t len,
                    const char *component, const char *cwd, rp_manifest_t *m, bool *is_tree,
                    char *why, size_t cap)
{
    static char answer[1 + RP_MANIFEST_BIN_LEN + 1];
    char a_off[24], a_len[24];
    char *argv[] = {"rampart-unpack", (char *)mode, a_off, a_len, NULL};
    size_t alen = 0;
    rp_err_t err;

    snprintf(a_off, sizeof(a_off), "%" PRIu64, off);
    snprintf(a_len, sizeof(a_len), "%" PRIu64, len);
    err = spawn(NULL, RP_UNPACK_SECONDS, argv, slot_fd, cwd, component, answer, sizeof(answer) - 1,
                &alen, why, cap);
    if (err != RP_OK)
        return err;
    if (alen == 1 && answer[0] == 'l') {
        *is_tree = false;
        rp_manifest_legacy(m, component, "app");
        return RP_OK;
    }
    if (alen < 2 || alen > sizeof(answer) - 1 || answer[0] != 't') {
        snprintf(why, cap, "rampart-unpack answered outside its protocol");
        return RP_ERR_MALFORMED;
    }
    *is_tree = true;
    return rp_manifest_decode((const uint8_t *)answer + 1, alen - 1, m, why, cap);
}

rp_err_t rp_unpack_metadata(int payload_fd, size_t len, int kind, uint8_t *out, size_t cap,
                            size_t *n, char *why, size_t wcap)
{
    static char answer[1 + RP_UNPACK_ENVELOPE_MAX + 1];
    static const char *const kinds[] = {"envelope", "root", "targets", "capability"};
    char form = kind == RP_UNPACK_ENVELOPE ? 's' : 'd';
    char a_len[24];
    char *argv[] = {"rampart-unpack", "metadata", NULL, a_len, NULL};
    size_t alen = 0;
    rp_err_t err;

    *n = 0;
    why[0] = '\0';
    if (kind < RP_UNPACK_ENVELOPE || kind > RP_MD_CAPABILITY || len == 0 || len > RP_MD_MAX) {
        snprintf(why, wcap, "not a metadata document rampart-unpack reads");
        return RP_ERR_INVALID_ARG;
    }
    argv[2] = (char *)kinds[kind];
    snprintf(a_len, sizeof(a_len), "%zu", len);
    err = spawn(NULL, RP_UNPACK_SECONDS, argv, payload_fd, "/", kinds[kind], answer,
                sizeof(answer) - 1, &alen, why, wcap);
    if (err != RP_OK)
        return err;
    if (alen < 1 || alen > sizeof(answer) - 1 || answer[0] != form || alen - 1 > cap) {
        snprintf(why, wcap, "rampart-unpack answered outside its protocol");
        return RP_ERR_MALFORMED;
    }
    memcpy(out, answer + 1, alen - 1);
    *n = alen - 1;
    return RP_OK;
}

rp_err_t rp_unpack_resolve(void *helper, const char *component, const char *const *names, size_t n,
                           uint8_t *out, size_t cap, size_t *len, char *why, size_t wcap)
{
    static char answer[1 + RP_NETADDRS_BIN_MAX + 1];
    char *argv[3 + RP_NETADDRS_NAMES_MAX] = {"rampart-unpack", "resolve"};
    size_t alen = 0;
    rp_err_t err;

    *len = 0;
    why[0] = '\0';
    if (n == 0 || n > RP_NETADDRS_NAMES_MAX)
        return RP_ERR_INVALID_ARG;
    memcpy(argv + 2, names, n * sizeof(names[0]));
    err = spawn(helper, RP_UNPACK_RESOLVE_SECONDS, argv, -1, "/", component, answer,
                sizeof(answer) - 1, &alen, why, wcap);
    if (err != RP_OK)
        return err;
    if (alen < 1 || alen > sizeof(answer) - 1 || answer[0] != 'a' || alen - 1 > cap) {
        snprintf(why, wcap, "rampart-unpack answered outside its protocol");
        return RP_ERR_MALFORMED;
    }
    memcpy(out, answer + 1, alen - 1);
    *len = alen - 1;
    return RP_OK;
}

rp_err_t rp_unpack_manifest(int slot_fd, uint64_t off, uint64_t len, const char *component,
                            rp_manifest_t *m, bool *is_tree, char *why, size_t cap)
{
    return run("manifest", slot_fd, off, len, component, "/", m, is_tree, why, cap);
}

/* Every entry root's: nothing the unpack user could change later stays its. A child that made
 * something a tree never holds (not a directory, a file or a link) has its tree refused. */
static int take(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)flag;
    (void)f;
    if (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode))
        return 1;
    return lchown(path, 0, 0) != 0 ? 1 : 0;
}

rp_err_t rp_unpack_remove(const char *path)
{
    char stage[PATH_MAX];

    if (snprintf(stage, sizeof(stage), "%s" STAGE_SUFFIX, path) >= (int)sizeof(stage))
        return RP_ERR_INVALID_ARG;
    return rp_apptree_remove(stage) == RP_OK && rp_apptree_remove(path) == RP_OK ? RP_OK
                                                                                 : RP_ERR_IO;
}

rp_err_t rp_unpack_extract(int slot_fd, uint64_t off, uint64_t len, const char *component,
                           const char *dest, rp_manifest_t *m, bool *is_tree, char *why, size_t cap)
{
    char stage[PATH_MAX], tree[PATH_MAX + sizeof(RP_UNPACK_TREE) + 1];
    rp_err_t err;
    int fd;

    why[0] = '\0';
    if (snprintf(stage, sizeof(stage), "%s" STAGE_SUFFIX, dest) >= (int)sizeof(stage) ||
        snprintf(tree, sizeof(tree), "%s/" RP_UNPACK_TREE, stage) >= (int)sizeof(tree))
        return RP_ERR_INVALID_ARG;
    /* The staging directory is the unpack user's, and the only place it may write. */
    if (rp_apptree_remove(stage) != RP_OK || mkdir(stage, 0700) != 0 ||
        chown(stage, RP_UNPACK_UID, RP_UNPACK_UID) != 0) {
        snprintf(why, cap, "cannot make its staging directory");
        return RP_ERR_IO;
    }
    err = run("extract", slot_fd, off, len, component, stage, m, is_tree, why, cap);
    if (err == RP_OK && *is_tree) {
        if (nftw(tree, take, 16, FTW_PHYS | FTW_DEPTH) != 0 ||
            (fd = open(tree, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            snprintf(why, cap, "cannot take its tree over");
            err = RP_ERR_IO;
        } else {
            if (syncfs(fd) != 0 || rename(tree, dest) != 0) {
                snprintf(why, cap, "cannot put its tree in place");
                err = RP_ERR_IO;
            }
            close(fd);
        }
    }
    if (rp_apptree_remove(stage) != RP_OK)
        rp_log_warn("%s: cannot remove", stage);
    if (err != RP_OK)
        memset(m, 0, sizeof(*m));
    return err;
}

pid_t rp_unpack_broker(int sock)
{
    static char *argv[] = {"rampart-unpack", "broker", NULL};
    char helper[PATH_MAX];
    pid_t pid;

    if (rp_unpack_beside("rampart-unpack", helper, sizeof(helper)) != RP_OK)
        return -1;
    pid = fork();
    if (pid == 0)
        child(helper, argv, -1, -1, -1, "/", sock);
    return pid;
}
