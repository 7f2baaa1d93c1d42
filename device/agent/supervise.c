/* The daemon's app supervisor (see supervise.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rampart/log.h"
#include "supervise.h"

#define BACKOFF_MAX 60  /* seconds between restarts, at most */
#define STABLE_AFTER 60 /* a run this long resets the backoff */
#define EXITS_MAX (64 * 1024)

static rp_app_t *find(rp_supervisor_t *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->apps[i].name, name) == 0)
            return &s->apps[i];
    return NULL;
}

/* One line per exit in S/components/NAME/exits, started afresh past EXITS_MAX. */
static void record_exit(rp_supervisor_t *s, const rp_app_t *app, int status)
{
    char path[PATH_MAX + 64], line[256];
    struct stat sb;
    int fd, n;

    if (snprintf(path, sizeof(path), "%s/components/%s/exits", s->a->state_dir, app->name) >=
        (int)sizeof(path))
        return;
    if (WIFEXITED(status))
        n = snprintf(line, sizeof(line), "%lld %s exited with status %d\n", (long long)time(NULL),
                     app->version, WEXITSTATUS(status));
    else
        n = snprintf(line, sizeof(line), "%lld %s killed by signal %d\n", (long long)time(NULL),
                     app->version, WTERMSIG(status));
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (fstat(fd, &sb) == 0 && sb.st_size > EXITS_MAX && ftruncate(fd, 0) != 0)
        rp_log_warn("%s: cannot trim", path);
    if (write(fd, line, (size_t)n) != n)
        rp_log_warn("%s: cannot record the exit", path);
    close(fd);
}

static void start(rp_supervisor_t *s, rp_app_t *app)
{
    pid_t pid;
    int logfd;

    pid = fork();
    if (pid < 0) {
        rp_log_error("%s: cannot start: %s", app->name, strerror(errno));
        app->next_start = time(NULL) + app->backoff;
        return;
    }
    if (pid == 0) {
        setpgid(0, 0); /* its own group, stopped as one */
        logfd = open(app->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (logfd >= 0) {
            dup2(logfd, STDOUT_FILENO);
            dup2(logfd, STDERR_FILENO);
        }
        setenv("RAMPART_COMPONENT", app->name, 1);
        unsetenv("RAMPART_READY_FD");
        execl(app->exe, app->exe, (char *)NULL);
        _exit(127);
    }
    (void)s;
    setpgid(pid, pid);
    app->pid = app->pgid = pid;
    app->started = time(NULL);
    rp_log_info("%s %s: started (pid %d)", app->name, app->version, (int)pid);
}

static void stop(rp_app_t *app)
{
    int status;

    if (app->pid <= 0) {
        if (app->pgid > 0)
            kill(-app->pgid, SIGKILL); /* what its last run left behind */
        app->pgid = 0;
        return;
    }
    kill(-app->pid, SIGTERM);
    for (int i = 0; i < 50 && waitpid(app->pid, &status, WNOHANG) == 0; i++)
        usleep(100 * 1000);
    if (waitpid(app->pid, &status, WNOHANG) == 0) {
        kill(-app->pid, SIGKILL);
        waitpid(app->pid, &status, 0);
    }
    kill(-app->pid, SIGKILL); /* anything it left in its group */
    app->pid = app->pgid = 0;
}

/* The newest modification time of the components' state files. */
static struct timespec newest_state(rp_supervisor_t *s)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1], path[PATH_MAX + 64];
    struct timespec newest = {0, 0};
    struct stat sb;
    size_t n = 0;

    if (rp_component_names(s->a->state_dir, names, RP_COMPONENTS_MAX, &n) != RP_OK)
        return newest;
    for (size_t i = 0; i < n; i++) {
        if (snprintf(path, sizeof(path), "%s/components/%.*s/state", s->a->state_dir,
                     RP_COMPONENT_NAME_MAX, names[i]) >= (int)sizeof(path))
            continue;
        if (stat(path, &sb) == 0 &&
            (sb.st_mtim.tv_sec > newest.tv_sec ||
             (sb.st_mtim.tv_sec == newest.tv_sec && sb.st_mtim.tv_nsec > newest.tv_nsec)))
            newest = sb.st_mtim;
    }
    return newest;
}

void rp_supervisor_sync(rp_supervisor_t *s)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1], path[PATH_MAX];
    bool present[RP_COMPONENTS_MAX] = {false};
    size_t n = 0;

    s->seen = newest_state(s);
    if (rp_component_names(s->a->state_dir, names, RP_COMPONENTS_MAX, &n) != RP_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        rp_component_t c;
        rp_slot_image_t img;
        rp_app_t *app;
        if (rp_component_load(s->a->state_dir, names[i], &c) != RP_OK || c.active < 0 ||
            c.trial >= 0 ||
            rp_slot_path(s->a->state_dir, c.name, c.active, path, sizeof(path)) != RP_OK ||
            rp_slot_check(s->a, &c, path, &img) != RP_OK || !img.valid ||
            img.type != RP_IMAGE_TYPE_APP)
            continue; /* not an app, or nothing verified to run */
        app = find(s, c.name);
        if (app != NULL && app->slot == c.active &&
            memcmp(app->digest, img.digest, RP_SHA256_LEN) == 0) {
            present[app - s->apps] = true;
            continue; /* runs (or will run) the confirmed version already */
        }
        if (app == NULL) {
            if (s->n == RP_COMPONENTS_MAX)
                continue;
            app = &s->apps[s->n++];
            memset(app, 0, sizeof(*app));
            snprintf(app->name, sizeof(app->name), "%s", c.name);
        }
        stop(app); /* a new version: the old one stops */
        present[app - s->apps] = true;
        if (rp_app_prepare(s->a->state_dir, c.name, c.active, &img, false, app->exe, app->log) !=
            RP_OK) {
            rp_log_error("%s: cannot prepare the app", c.name);
            continue;
        }
        app->slot = c.active;
        memcpy(app->digest, img.digest, RP_SHA256_LEN);
        snprintf(app->version, sizeof(app->version), "%s", img.version);
        app->backoff = 1;
        app->next_start = 0;
        start(s, app);
    }
    /* Apps no longer installed (or no longer verified) stop. */
    for (size_t i = 0; i < s->n; i++)
        if (!present[i])
            stop(&s->apps[i]);
}

void rp_supervisor_tick(rp_supervisor_t *s)
{
    time_t now = time(NULL);
    struct timespec state = newest_state(s);
    int status;
    pid_t pid;

    if (state.tv_sec != s->seen.tv_sec || state.tv_nsec != s->seen.tv_nsec)
        rp_supervisor_sync(s); /* another command installed or rolled back */

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < s->n; i++) {
            rp_app_t *app = &s->apps[i];
            if (app->pid != pid)
                continue;
            app->pid = 0;
            if (app->pgid > 0)
                kill(-app->pgid, SIGKILL); /* its leader is gone: so are the rest */
            app->pgid = 0;
            app->restarts++;
            record_exit(s, app, status);
            if (now - app->started >= STABLE_AFTER)
                app->backoff = 1;
            app->next_start = now + app->backoff;
            rp_log_warn("%s %s: exited (status %d); restarting in %d s", app->name, app->version,
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1, app->backoff);
            app->backoff = app->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : app->backoff * 2;
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        rp_app_t *app = &s->apps[i];
        if (app->pid == 0 && app->exe[0] != '\0' && app->next_start != 0 && now >= app->next_start)
            start(s, app);
    }
}

void rp_supervisor_stop(rp_supervisor_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        stop(&s->apps[i]);
}
