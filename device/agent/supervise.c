/* The daemon's app supervisor (see supervise.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "rampart/file.h"
#include "rampart/log.h"
#include "supervise.h"

#define BACKOFF_MAX 60  /* seconds between restarts, at most */
#define STABLE_AFTER 60 /* a run this long resets the backoff */
#define EXITS_MAX (64 * 1024)
#define RUN_MAX 4096 /* run.json is a few hundred bytes */

static const char *const status_names[] = {
    [RP_APP_STOPPED] = "stopped", [RP_APP_STARTING] = "starting",     [RP_APP_READY] = "ready",
    [RP_APP_RUNNING] = "running", [RP_APP_RESTARTING] = "restarting",
};

const char *rp_app_status_name(rp_app_status_t st)
{
    return (unsigned)st < sizeof(status_names) / sizeof(status_names[0]) ? status_names[st] : NULL;
}

static rp_app_t *find(rp_supervisor_t *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->apps[i].name, name) == 0)
            return &s->apps[i];
    return NULL;
}

/* S/components/NAME/run.json: what the app is doing now (replaced atomically, on each change). */
static void record_status(rp_supervisor_t *s, rp_app_t *app, rp_app_status_t st)
{
    char path[PATH_MAX + 64], *text;
    json_t *j;

    app->status = st;
    if (snprintf(path, sizeof(path), "%s/components/%s/%s", s->a->state_dir, app->name,
                 RP_RUN_FILE) >= (int)sizeof(path))
        return;
    j = json_pack(
        "{s:i, s:s, s:s, s:s, s:o, s:o, s:I, s:i, s:o, s:o}", "format", RP_RUN_FORMAT, "component",
        app->name, "version", app->version, "status", rp_app_status_name(st), "slot",
        app->slot == 0 || app->slot == 1 ? json_sprintf("%c", "ab"[app->slot]) : json_null(), "pid",
        app->run.pid > 0 ? json_integer(app->run.pid) : json_null(), "since",
        (json_int_t)time(NULL), "restarts", app->restarts, "last_exit",
        app->last_exit[0] ? json_string(app->last_exit) : json_null(), "next_start",
        st == RP_APP_RESTARTING ? json_integer(app->next_start) : json_null());
    text = j != NULL ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (text == NULL || rp_write_file_atomic(path, text, strlen(text), 0600, 0) != RP_OK)
        rp_log_warn("%s: cannot record the app's status", path);
    free(text);
}

rp_err_t rp_app_status_load(const char *state_dir, const char *name, json_t **run)
{
    char path[PATH_MAX + 64];
    json_error_t jerr;
    uint8_t *data;
    size_t len;
    json_int_t pid;
    rp_err_t err;

    *run = NULL;
    if (snprintf(path, sizeof(path), "%s/components/%s/%s", state_dir, name, RP_RUN_FILE) >=
        (int)sizeof(path))
        return RP_ERR_INVALID_ARG;
    err = rp_read_file(path, RUN_MAX, &data, &len);
    if (err == RP_ERR_TOO_LARGE)
        rp_log_error("%s is corrupt: larger than %d bytes", path, RUN_MAX);
    if (err != RP_OK)
        return err == RP_ERR_TOO_LARGE ? RP_ERR_MALFORMED : err;
    *run = json_loadb((const char *)data, len, 0, &jerr);
    free(data);
    if (*run == NULL) {
        rp_log_error("%s is corrupt: not JSON (%s, line %d)", path, jerr.text, jerr.line);
        return RP_ERR_MALFORMED;
    }
    pid = json_integer_value(json_object_get(*run, "pid"));
    if (!json_is_object(*run) ||
        json_integer_value(json_object_get(*run, "format")) != RP_RUN_FORMAT ||
        !json_is_string(json_object_get(*run, "status")) || pid < 0 || pid > INT32_MAX) {
        rp_log_error("%s is corrupt: not the supervisor's record (format %d)", path, RP_RUN_FORMAT);
        json_decref(*run);
        *run = NULL;
        return RP_ERR_MALFORMED;
    }
    json_object_set_new(*run, "alive",
                        json_boolean(pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)));
    return RP_OK;
}

/* One line per exit in S/components/NAME/exits, started afresh past EXITS_MAX. */
static void record_exit(rp_supervisor_t *s, rp_app_t *app, int status)
{
    char path[PATH_MAX + 64], line[256];
    struct stat sb;
    int fd, n;

    if (WIFEXITED(status))
        snprintf(app->last_exit, sizeof(app->last_exit), "exited with status %d",
                 WEXITSTATUS(status));
    else
        snprintf(app->last_exit, sizeof(app->last_exit), "killed by signal %d", WTERMSIG(status));
    if (snprintf(path, sizeof(path), "%s/components/%s/exits", s->a->state_dir, app->name) >=
        (int)sizeof(path))
        return;
    n = snprintf(line, sizeof(line), "%lld %s %s\n", (long long)time(NULL), app->version,
                 app->last_exit);
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
    char detail[256];

    if (rp_app_start(s->a->state_dir, app->name, app->version, app->exe, &app->run, detail,
                     sizeof(detail)) != RP_OK) {
        rp_log_error("%s %s: %s", app->name, app->version, detail);
        app->next_start = time(NULL) + app->backoff;
        app->backoff = app->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : app->backoff * 2;
        record_status(s, app, RP_APP_RESTARTING);
        return;
    }
    app->started = time(NULL);
    rp_log_info("%s %s: started (pid %d)", app->name, app->version, (int)app->run.pid);
    record_status(s, app, RP_APP_STARTING);
}

static void stop(rp_supervisor_t *s, rp_app_t *app)
{
    rp_app_stop(&app->run);
    app->next_start = 0;
    if (app->status != RP_APP_STOPPED)
        record_status(s, app, RP_APP_STOPPED);
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
        if (app != NULL && app->slot == c.active && app->status != RP_APP_STOPPED &&
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
        stop(s, app); /* a new version: the old one stops */
        present[app - s->apps] = true;
        if (rp_app_prepare(s->a->state_dir, c.name, c.active, &img, false, app->exe) != RP_OK) {
            rp_log_error("%s: cannot prepare the app", c.name);
            continue;
        }
        app->slot = c.active;
        memcpy(app->digest, img.digest, RP_SHA256_LEN);
        snprintf(app->version, sizeof(app->version), "%s", img.version);
        app->backoff = 1;
        app->restarts = 0;
        app->last_exit[0] = '\0';
        start(s, app);
    }
    /* Apps no longer installed (or no longer verified) stop. */
    for (size_t i = 0; i < s->n; i++)
        if (!present[i])
            stop(s, &s->apps[i]);
}

void rp_supervisor_tick(rp_supervisor_t *s)
{
    time_t now = time(NULL);
    struct timespec state = newest_state(s);
    long health_ms =
        (long)(s->health_seconds > 0 ? s->health_seconds : RP_APP_HEALTH_SECONDS) * 1000;
    int status;
    pid_t pid;

    if (state.tv_sec != s->seen.tv_sec || state.tv_nsec != s->seen.tv_nsec)
        rp_supervisor_sync(s); /* another command installed or rolled back */

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < s->n; i++) {
            rp_app_t *app = &s->apps[i];
            if (app->run.pid != pid)
                continue;
            rp_app_exited(&app->run); /* its leader is gone: so are the rest of its group */
            app->restarts++;
            record_exit(s, app, status);
            if (now - app->started >= STABLE_AFTER)
                app->backoff = 1;
            app->next_start = now + app->backoff;
            rp_log_warn("%s %s: %s; restarting in %d s", app->name, app->version, app->last_exit,
                        app->backoff);
            app->backoff = app->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : app->backoff * 2;
            record_status(s, app, RP_APP_RESTARTING);
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        rp_app_t *app = &s->apps[i];
        if (app->run.pid > 0) {
            /* Read what it says (the pipe never fills), and note when it is ready. */
            bool ready = rp_app_poll_ready(&app->run);
            if (app->status == RP_APP_STARTING && ready) {
                rp_log_info("%s %s: ready (pid %d)", app->name, app->version, (int)app->run.pid);
                record_status(s, app, RP_APP_READY);
            } else if (app->status == RP_APP_STARTING && rp_app_uptime_ms(&app->run) >= health_ms) {
                rp_log_info("%s %s: running (pid %d; up %ld s, never said it is ready)", app->name,
                            app->version, (int)app->run.pid, health_ms / 1000);
                record_status(s, app, RP_APP_RUNNING);
            }
        } else if (app->exe[0] != '\0' && app->status == RP_APP_RESTARTING &&
                   now >= app->next_start) {
            start(s, app);
        }
    }
}

void rp_supervisor_stop(rp_supervisor_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        stop(s, &s->apps[i]);
}

/* ---- an install's trial, as a plain process (rp_trial_fn; the monitor's runs in a compartment)
 * ---- */

/*
 * Start the app under the contract (app.h) and watch it: healthy when it says "ready" on its
 * ready descriptor, or is still running after seconds; unhealthy when it exits first. The trial
 * is then stopped (the supervisor runs the confirmed version). OUT: detail.
 */
static bool app_healthy(const char *state_dir, const char *name, const char *version,
                        const char *exe, int seconds, char *detail, size_t cap)
{
    rp_app_run_t run;
    bool healthy = false;
    int status;

    if (rp_app_start(state_dir, name, version, exe, &run, detail, cap) != RP_OK)
        return false;
    for (;;) {
        struct pollfd p = {run.ready_fd, POLLIN, 0};

        (void)poll(&p, 1, 50); /* a closed pipe (-1) is ignored: a 50 ms wait */
        rp_agent_wait_tick();  /* the health window may be long (--health-seconds) */
        if (rp_app_poll_ready(&run)) {
            snprintf(detail, cap, "started and said it is ready");
            healthy = true;
            break;
        }
        if (waitpid(run.pid, &status, WNOHANG) == run.pid) {
            if (WIFEXITED(status))
                snprintf(detail, cap, "exited with status %d at start", WEXITSTATUS(status));
            else
                snprintf(detail, cap, "killed by signal %d at start", WTERMSIG(status));
            rp_app_exited(&run); /* whatever it started dies with the rejected version */
            return false;
        }
        if (rp_app_uptime_ms(&run) >= (long)seconds * 1000) {
            snprintf(detail, cap, "stayed up for %d s", seconds);
            healthy = true;
            break;
        }
    }
    rp_app_stop(&run); /* the trial is over: its process group is stopped */
    return healthy;
}

rp_err_t rp_supervise_trial(void *ctx, const char *component, int slot, const rp_slot_image_t *img,
                            int seconds, bool *healthy, char *detail, size_t cap)
{
    const rp_agent_t *a = ctx;
    char exe[PATH_MAX];
    rp_err_t err = rp_app_prepare(a->state_dir, component, slot, img, true, exe);

    if (err != RP_OK)
        return err;
    *healthy = app_healthy(a->state_dir, component, img->version, exe, seconds, detail, cap);
    return RP_OK;
}
