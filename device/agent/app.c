/* The app contract: starting, watching and stopping one run of an app (see app.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "rampart/log.h"

#define READY_WORD "ready"
#define READY_LEN 5
#define DRAIN_MAX (64 * 1024) /* read at most this much per poll: an app cannot hold the agent */
#define FD_FLOOR 10           /* the child's descriptors are moved above 0..3 before it maps them */
#define PATH_ENV "PATH=/usr/local/bin:/usr/bin:/bin"

static int64_t elapsed_ms(const struct timespec *from)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - from->tv_sec) * 1000 + (now.tv_nsec - from->tv_nsec) / 1000000;
}

/* fd moved to FD_FLOOR or above, close-on-exec (the old one closed). -1 on failure. */
static int above_stdio(int fd)
{
    int moved;

    if (fd < 0)
        return -1;
    moved = fcntl(fd, F_DUPFD_CLOEXEC, FD_FLOOR);
    close(fd);
    return moved;
}

static rp_err_t component_path(const char *state_dir, const char *name, const char *file, char *out,
                               size_t cap)
{
    int n = snprintf(out, cap, "%s/components/%s/%s", state_dir, name, file);

    return n > 0 && (size_t)n < cap ? RP_OK : RP_ERR_INVALID_ARG;
}

rp_err_t rp_app_start(const char *state_dir, const char *name, const char *version, const char *exe,
                      rp_app_run_t *run, char *detail, size_t cap)
{
    char log_path[PATH_MAX], data_rel[PATH_MAX], data[PATH_MAX];
    char env_component[64], env_version[64], env_ready[32], env_data[PATH_MAX + 32];
    char env_home[PATH_MAX + 16];
    char *envp[] = {env_component, env_version, env_ready, env_data, env_home, PATH_ENV, NULL};
    char exe_abs[PATH_MAX];
    char *argv[] = {exe_abs, NULL};
    int pipefd[2] = {-1, -1}, logfd = -1, nullfd = -1;
    pid_t pid;

    memset(run, 0, sizeof(*run));
    run->ready_fd = -1;
    if (component_path(state_dir, name, "app.log", log_path, sizeof(log_path)) != RP_OK ||
        component_path(state_dir, name, "data", data_rel, sizeof(data_rel)) != RP_OK) {
        snprintf(detail, cap, "cannot start: the component's path is too long");
        return RP_ERR_INVALID_ARG;
    }
    /* The state directory may be relative, and the app starts elsewhere. */
    if (realpath(exe, exe_abs) == NULL) {
        snprintf(detail, cap, "cannot start: %s: %s", exe, strerror(errno));
        return RP_ERR_IO;
    }
    /* Its working directory: its own, kept across versions. */
    if ((mkdir(data_rel, 0700) != 0 && errno != EEXIST) || realpath(data_rel, data) == NULL) {
        snprintf(detail, cap, "cannot start: %s: %s", data_rel, strerror(errno));
        return RP_ERR_IO;
    }
    snprintf(env_component, sizeof(env_component), "RAMPART_COMPONENT=%s", name);
    snprintf(env_version, sizeof(env_version), "RAMPART_VERSION=%s", version);
    snprintf(env_ready, sizeof(env_ready), "RAMPART_READY_FD=%d", RP_APP_READY_FD);
    snprintf(env_data, sizeof(env_data), "RAMPART_DATA_DIR=%s", data);
    snprintf(env_home, sizeof(env_home), "HOME=%s", data);

    logfd = above_stdio(open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    nullfd = above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (logfd < 0 || nullfd < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
        snprintf(detail, cap, "cannot start: %s: %s", logfd < 0 ? log_path : "a descriptor",
                 strerror(errno));
        goto fail;
    }
    pipefd[0] = above_stdio(pipefd[0]);
    pipefd[1] = above_stdio(pipefd[1]);
    if (pipefd[0] < 0 || pipefd[1] < 0 ||
        fcntl(pipefd[0], F_SETFL, fcntl(pipefd[0], F_GETFL) | O_NONBLOCK) != 0) {
        snprintf(detail, cap, "cannot start: the ready pipe: %s", strerror(errno));
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(detail, cap, "cannot start: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        /* The child: only what the contract says, whatever the agent had. */
        sigset_t none;
        setpgid(0, 0); /* its own group: stopping the run stops whatever it started */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL); /* an ignored SIGPIPE would otherwise be inherited */
        umask(077);
        if (chdir(data) != 0 || dup2(nullfd, STDIN_FILENO) < 0 || dup2(logfd, STDOUT_FILENO) < 0 ||
            dup2(logfd, STDERR_FILENO) < 0 || dup2(pipefd[1], RP_APP_READY_FD) < 0)
            _exit(126);
        /* Nothing of the agent's beyond the contract's descriptors: close_range (Linux 5.9), and
         * on an older kernel each one the process has. */
        if (close_range(RP_APP_READY_FD + 1, ~0U, 0) != 0) {
            long max = sysconf(_SC_OPEN_MAX);
            for (long fd = RP_APP_READY_FD + 1; fd < (max > 0 ? max : 65536); fd++)
                (void)close((int)fd);
        }
        execve(exe_abs, argv, envp);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with a stop that comes at once */
    close(pipefd[1]);
    close(logfd);
    close(nullfd);
    run->pid = pid;
    run->ready_fd = pipefd[0];
    clock_gettime(CLOCK_MONOTONIC, &run->started);
    return RP_OK;
fail:
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    return RP_ERR_IO;
}

static void close_pipe(rp_app_run_t *run)
{
    if (run->ready_fd >= 0)
        close(run->ready_fd);
    run->ready_fd = -1;
}

bool rp_app_poll_ready(rp_app_run_t *run)
{
    char buf[4096];
    size_t drained = 0;

    while (run->ready_fd >= 0 && drained < DRAIN_MAX) {
        ssize_t n = read(run->ready_fd, buf, sizeof(buf));
        if (n == 0) {
            close_pipe(run); /* every writer is gone: nothing more can come */
            break;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break; /* EAGAIN: nothing more for now */
        }
        drained += (size_t)n;
        for (ssize_t i = 0; i < n && !run->ready && !run->refused; i++) {
            run->said[run->nsaid++] = buf[i];
            if (memcmp(run->said, READY_WORD, run->nsaid) != 0)
                run->refused = true; /* it said something else first */
            else if (run->nsaid == READY_LEN)
                run->ready = true;
        }
        if (run->ready)
            clock_gettime(CLOCK_MONOTONIC, &run->heard); /* "ready", or a heartbeat after it */
    }
    return run->ready;
}

int64_t rp_app_uptime_ms(const rp_app_run_t *run)
{
    return elapsed_ms(&run->started);
}

int64_t rp_app_silent_ms(const rp_app_run_t *run)
{
    return run->ready ? elapsed_ms(&run->heard) : 0;
}

void rp_app_stop(rp_app_run_t *run)
{
    int status;

    if (run->pid > 0) {
        kill(-run->pid, SIGTERM);
        for (int i = 0; i < RP_APP_STOP_GRACE_MS / 100 && waitpid(run->pid, &status, WNOHANG) == 0;
             i++)
            usleep(100 * 1000);
        if (waitpid(run->pid, &status, WNOHANG) == 0) {
            kill(-run->pid, SIGKILL);
            waitpid(run->pid, &status, 0);
        }
    }
    rp_app_exited(run);
}

void rp_app_exited(rp_app_run_t *run)
{
    if (run->pid > 0)
        kill(-run->pid, SIGKILL); /* anything it left in its group */
    run->pid = 0;
    close_pipe(run);
}
