/* The agent's relay runner and its hand-over of firmware to an MCU under the monitor
 * (mcu_runner.h). Not linked into rampart-monitor. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcu.h"
#include "mcu_runner.h"
#include "proto.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "update.h"

/* Firmware for a microcontroller: its slot is a few hundred KiB (docs/mcu.md, the memory map). */
#define RP_MCU_IMAGE_MAX (16 * 1024 * 1024)

/* One job (agent to runner) and its outcome (runner to agent): fixed-size packets, each checked
 * whole by its reader (a NUL in each string, a name that is a component's, an outcome). */
typedef struct job {
    char component[RP_COMPONENT_NAME_MAX + 1];
    char version[48];
    uint8_t nonce[RP_MON_MCU_NONCE_LEN]; /* the monitor's: the board's evidence is over it */
} job_t;

typedef struct done {
    uint8_t state; /* installed, refused, rolled_back or failed */
    char detail[RP_SLOT_DETAIL_MAX + 1];
    uint16_t evidence_len; /* the board's evidence (installed), at most RP_MCU_EVIDENCE_MAX */
    uint8_t evidence[RP_MCU_EVIDENCE_MAX];
} done_t;

_Static_assert(RP_MCU_EVIDENCE_MAX <= RP_MON_MCU_EVIDENCE_MAX, "the verdict carries the evidence");

/* The agent's end of the pair (-1: no runner) and the runner's process (0: none, or gone: never
 * signalled then); whether a stop came (no relay is begun from then on). */
static int runner_sock = -1;
static volatile sig_atomic_t runner_pid, runner_stopped;
static bool runner_lost; /* the runner died while the agent could not fork another */

void rp_mcu_runner_stop(void)
{
    pid_t pid = (pid_t)runner_pid;

    runner_stopped = 1;
    rp_mcu_stop(); /* a relay this process runs (single-process mode, or a command that forks) */
    if (pid > 0)
        (void)kill(pid, SIGTERM); /* the runner's: it finishes the relay, begins nothing */
}

/* The runner's SIGTERM and SIGINT: its agent's stop, sent on (rp_mcu_runner_stop), or the
 * terminal's, which its agent has too. */
static void runner_on_stop(int sig)
{
    (void)sig;
    rp_mcu_stop();
}

/* S/agent/mcu/NAME.img: the agent's copy of the image handed over. */
static rp_err_t copy_path(const char *state_dir, const char *name, char *out, size_t cap, bool mk)
{
    int n = snprintf(out, cap, "%s/agent/mcu", state_dir);

    if (n < 0 || (size_t)n >= cap || (mk && mkdir(out, 0700) != 0 && errno != EEXIST))
        return RP_ERR_IO;
    n = snprintf(out, cap, "%s/agent/mcu/%s.img", state_dir, name);
    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

static void runner_serve(int fd, const char *state_dir, pid_t agent)
{
    char path[PATH_MAX];
    rp_mcu_relay_t relay;
    rp_update_state_t state;
    uint8_t key[RP_PUBKEY_DER_MAX];
    size_t key_len;
    job_t job;
    static done_t done;
    struct sigaction sa;
    ssize_t n;

    /* It dies with the agent (a kill -9 too), so that a restarted agent's runner is the only one;
     * an agent gone before this took effect has made it an orphan already. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != agent)
        _exit(0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = runner_on_stop; /* not the agent's, inherited */
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        _exit(1);
    rp_agent_set_wait_hook(NULL); /* not the agent's main process: the service manager's watchdog
                                 * hears only that (its NotifyAccess=main) */
    for (;;) {
        n = recv(fd, &job, sizeof(job), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0); /* the agent is gone */
        memset(&done, 0, sizeof(done));
        done.state = RP_UPDATE_FAILED;
        if (n != (ssize_t)sizeof(job) ||
            memchr(job.component, '\0', sizeof(job.component)) == NULL ||
            memchr(job.version, '\0', sizeof(job.version)) == NULL ||
            !rp_component_name_valid(job.component, strlen(job.component)) ||
            copy_path(state_dir, job.component, path, sizeof(path), false) != RP_OK)
            snprintf(done.detail, sizeof(done.detail), "the MCU's relay runner was asked wrongly");
        else if (rp_mcu_relay_load(state_dir, job.component, &relay) != RP_OK)
            snprintf(done.detail, sizeof(done.detail),
                     "no relay to the MCU the agent can read (S/mcu/%s.json)", job.component);
        else if (rp_mcu_board_key(state_dir, job.component, key, &key_len) != RP_OK) {
            /* Not handed to the board: it would confirm what the monitor then cannot. */
            snprintf(done.detail, sizeof(done.detail),
                     "no attestation key of the board is pinned (S/mcu/%s.key), and the monitor "
                     "confirms nothing without the board's evidence: rampart-agent mcu attach "
                     "--attestation-key",
                     job.component);
            rp_mcu_relay_free(&relay);
        }
        else {
            size_t ev_len = 0;
            rp_mcu_install(&relay, path, job.version, job.nonce, sizeof(job.nonce), &state,
                           done.detail, sizeof(done.detail), done.evidence, &ev_len);
            done.state = (uint8_t)state;
            done.evidence_len = (uint16_t)ev_len;
            rp_mcu_relay_free(&relay);
        }
        if (send(fd, &done, sizeof(done), MSG_NOSIGNAL) != (ssize_t)sizeof(done))
            _exit(1);
    }
}

/* Whether S/mcu/ names a component attached (a NAME.json). */
static bool any_attached(const char *state_dir)
{
    char path[PATH_MAX];
    struct dirent *e;
    bool any = false;
    DIR *d;

    if (snprintf(path, sizeof(path), "%s/mcu", state_dir) >= (int)sizeof(path) ||
        (d = opendir(path)) == NULL)
        return false;
    while (!any && (e = readdir(d)) != NULL)
        any = strlen(e->d_name) > 5 && strcmp(e->d_name + strlen(e->d_name) - 5, ".json") == 0;
    closedir(d);
    return any;
}

void rp_mcu_runner_start(const char *state_dir)
{
    int sv[2];
    pid_t pid, agent = getpid();

    if (runner_sock >= 0 || !any_attached(state_dir))
        return;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        rp_log_error("cannot start the MCU's relay runner: %s", strerror(errno));
        return;
    }
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        runner_serve(sv[1], state_dir, agent);
    }
    close(sv[1]);
    if (pid < 0) {
        rp_log_error("cannot start the MCU's relay runner: %s", strerror(errno));
        close(sv[0]);
        return;
    }
    runner_sock = sv[0];
    runner_pid = (sig_atomic_t)pid;
    runner_lost = false;
}

pid_t rp_mcu_runner_pid(void)
{
    return (pid_t)runner_pid;
}

bool rp_mcu_runner_lost(void)
{
    return runner_lost;
}

/* The descriptor's bytes (a regular file, from its offset: 0, as the monitor opened it) into
 * path, the agent's copy. */
static rp_err_t copy_out(int fd, const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    rp_err_t err = rp_read_fd(fd, RP_MCU_IMAGE_MAX, &data, &len);

    if (err == RP_OK)
        err = rp_write_file_atomic(path, data, len, 0600, 0);
    free(data);
    return err;
}

/* The runner's outcome of relaying the copy of name at version, the board's evidence over nonce
 * with it: *d (failed, saying so, when a stop came before the relay was asked for). A stop during
 * the relay does not end the wait: the runner, told of it, finishes the relay within its bound
 * (rp_mcu_stop) and answers. */
static void relay(const char *state_dir, const char *name, const char *version,
                  const uint8_t nonce[RP_MON_MCU_NONCE_LEN], done_t *d)
{
    job_t job;
    ssize_t n;
    bool confined = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0, again = !confined, said = false;

    memset(&job, 0, sizeof(job));
    memset(d, 0, sizeof(*d));
    d->state = RP_UPDATE_FAILED;
    snprintf(job.component, sizeof(job.component), "%s", name);
    snprintf(job.version, sizeof(job.version), "%s", version);
    memcpy(job.nonce, nonce, sizeof(job.nonce));
retry:
    if (runner_stopped) {
        snprintf(d->detail, sizeof(d->detail),
                 "the agent stopped before the relay began: nothing handed to the MCU");
        return;
    }
    if (runner_sock < 0 && !confined)
        rp_mcu_runner_start(state_dir); /* a command that does not confine itself (install) */
    if (runner_sock < 0 && runner_lost) {
        snprintf(d->detail, sizeof(d->detail),
                 "the MCU's relay runner died: the agent exits for its service manager to restart "
                 "it with a new one");
        return;
    }
    if (runner_sock < 0) {
        snprintf(d->detail, sizeof(d->detail),
                 "no relay runner: S/mcu/ attached nothing when the agent started (restart it)");
        return;
    }
    /* (A stop that comes from here on reaches the runner: it begins no relay, or finishes this
     * one, and answers.) */
    n = send(runner_sock, &job, sizeof(job), MSG_NOSIGNAL);
    if (n == (ssize_t)sizeof(job)) {
        for (;;) {
            struct pollfd pf = {runner_sock, POLLIN, 0};
            /* Turns of at most RP_AGENT_WAIT_TURN_MS: the runner's bounds end the wait, and each
             * turn tells the service manager that run waits, not hangs (rp_agent_set_wait_hook). */
            int ready = poll(&pf, 1, RP_AGENT_WAIT_TURN_MS), poll_errno = errno;
            rp_agent_wait_tick();
            if (ready > 0) {
                n = recv(runner_sock, d, sizeof(*d), MSG_DONTWAIT);
                if (n >= 0 || (errno != EINTR && errno != EAGAIN))
                    break;
            } else if (ready < 0 && poll_errno != EINTR) {
                n = -1;
                errno = poll_errno;
                break;
            }
            if (runner_stopped && !said) {
                rp_log_warn("stopping: the MCU's relay of %s is finished first (at most %d s: "
                            "docs/mcu.md)",
                            name, RP_MCU_RELAY_TIMEOUT_S);
                said = true;
            }
        }
        if (n == (ssize_t)sizeof(*d) && memchr(d->detail, '\0', sizeof(d->detail)) != NULL &&
            rp_mon_outcome(d->state) && d->evidence_len <= sizeof(d->evidence))
            return;
    }
    if (n == 0 || (n < 0 && (errno == EPIPE || errno == ECONNRESET))) {
        /* The runner is gone (killed, crashed): never asked again. A command that may fork starts
         * another and asks it once more; a confined one cannot (rp_mcu_runner_lost). */
        rp_log_error("the MCU's relay runner died");
        runner_pid = 0; /* (its number may be another's once it is reaped: never signalled) */
        close(runner_sock);
        runner_sock = -1;
        runner_lost = confined;
        memset(d, 0, sizeof(*d));
        d->state = RP_UPDATE_FAILED;
        if (again || confined) { /* once more with a new one; or say why there is none */
            again = false;
            goto retry;
        }
    }
    memset(d, 0, sizeof(*d));
    d->state = RP_UPDATE_FAILED;
    snprintf(d->detail, sizeof(d->detail), "the MCU's relay runner did not answer");
}

rp_err_t rp_mcu_hand_over(rp_agent_t *a, const char *name, int slot_fd, rp_install_result_t *res)
{
    static rp_mon_reply_t r;
    static rp_mon_request_t q;
    static done_t d;
    char path[PATH_MAX];
    uint8_t digest[RP_SHA256_LEN], nonce[RP_MON_MCU_NONCE_LEN];
    rp_slot_image_t img;
    rp_err_t err = copy_path(a->state_dir, name, path, sizeof(path), true);
    /* INSTALL's detail: the image's digest and the monitor's nonce, in hex, a space between. */
    bool said = strlen(res->detail) == 2 * (RP_SHA256_LEN + RP_MON_MCU_NONCE_LEN) + 1 &&
                res->detail[2 * RP_SHA256_LEN] == ' ' &&
                rp_hex_decode(res->detail, 2 * RP_SHA256_LEN, digest, sizeof(digest)) == RP_OK &&
                rp_hex_decode(res->detail + 2 * RP_SHA256_LEN + 1, 2 * RP_MON_MCU_NONCE_LEN, nonce,
                              sizeof(nonce)) == RP_OK;

    memset(&img, 0, sizeof(img));
    memset(&q, 0, sizeof(q));
    memset(&d, 0, sizeof(d));
    d.state = RP_UPDATE_FAILED;
    q.type = RP_MON_MCU_VERDICT;
    if (err == RP_OK)
        err = copy_out(slot_fd, path);
    close(slot_fd);
    if (err == RP_OK)
        err = rp_agent_image_identity(a, name, path, &img);
    /* The copy must be the image the monitor verified: its digest (INSTALL's detail). */
    if (err == RP_OK) {
        if (!said || memcmp(img.digest, digest, RP_SHA256_LEN) != 0)
            snprintf(d.detail, sizeof(d.detail),
                     "the image handed over is not the one the monitor said (%.160s)", res->detail);
        else
            relay(a->state_dir, name, img.version, nonce, &d);
    } else
        snprintf(d.detail, sizeof(d.detail), "cannot copy the image handed over: %s",
                 rp_strerror(err));
    (void)unlink(path);
    /* The verdict, whatever it is: the monitor ends the trial now rather than at its deadline.
     * It names the image the monitor handed (its digest, as it said it), not the copy's, which a
     * bad copy lacks; installed carries the board's evidence, which the monitor checks. */
    snprintf(q.u.mcu_verdict.component, sizeof(q.u.mcu_verdict.component), "%s", name);
    memcpy(q.u.mcu_verdict.digest, said ? digest : img.digest, sizeof(q.u.mcu_verdict.digest));
    q.u.mcu_verdict.state = d.state;
    snprintf(q.u.mcu_verdict.detail, sizeof(q.u.mcu_verdict.detail), "%s", d.detail);
    memcpy(q.u.mcu_verdict.evidence, d.evidence, d.evidence_len);
    q.u.mcu_verdict.evidence_len = d.evidence_len;
    if (rp_agent_monitor_call_past_stop(a, &q, &r) == RP_OK) { /* (a stop waits for it too) */
        res->state = (rp_update_state_t)r.u.install.state;
        snprintf(res->detail, sizeof(res->detail), "%s", r.u.install.detail);
    } else {
        res->state = RP_UPDATE_FAILED;
        snprintf(res->detail, sizeof(res->detail),
                 "the monitor did not take the verdict (%.60s): %.150s", d.detail,
                 r.status != RP_OK ? r.message : "no answer");
    }
    return RP_OK;
}
