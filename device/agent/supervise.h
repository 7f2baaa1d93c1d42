/*
 * The daemon's supervisor: each app component's confirmed version runs as a plain process,
 * started under the app contract (app.h, the same as an install's trial), restarted when it exits
 * (with backoff: 1 s doubling to 60 s, reset after a minute up), and each exit is recorded in
 * S/components/NAME/exits. A run is "starting" until it says "ready" on its ready descriptor
 * ("ready") or has stayed up for the health window without saying so ("running"); the supervisor
 * keeps what each app is doing in S/components/NAME/run.json (rampart-agent status shows it). A
 * new confirmed version replaces the running one. (Compartments built from a manifest come with
 * a later issue.)
 */
#ifndef RAMPART_AGENT_SUPERVISE_H
#define RAMPART_AGENT_SUPERVISE_H

#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "app.h"
#include "slots.h"

#define RP_RUN_FILE "run.json" /* in S/components/NAME/: what the supervisor last did with it */
#define RP_RUN_FORMAT 1

typedef enum rp_app_status {
    RP_APP_STOPPED = 0, /* "stopped" */
    RP_APP_STARTING,    /* "starting": started, not ready yet */
    RP_APP_READY,       /* "ready": said so */
    RP_APP_RUNNING,     /* "running": up past the health window without saying it is ready */
    RP_APP_RESTARTING,  /* "restarting": exited; started again after its backoff */
} rp_app_status_t;

/* The status's name in run.json; NULL outside the enum. */
const char *rp_app_status_name(rp_app_status_t s);

typedef struct rp_app {
    char name[RP_COMPONENT_NAME_MAX + 1];
    char version[48];
    char exe[PATH_MAX];
    uint8_t digest[RP_SHA256_LEN];
    int slot;
    rp_app_run_t run; /* run.pid 0: not running */
    rp_app_status_t status;
    time_t started, next_start;
    int backoff, restarts;
    char last_exit[64];
} rp_app_t;

typedef struct rp_supervisor {
    rp_agent_t *a;
    int health_seconds; /* 0: RP_APP_HEALTH_SECONDS */
    rp_app_t apps[RP_COMPONENTS_MAX];
    size_t n;
    struct timespec seen; /* the newest component state it synced with */
} rp_supervisor_t;

/* What S/components/NAME/run.json says (for status): RP_ERR_NOT_FOUND when the app never ran
 * under the daemon; RP_ERR_MALFORMED (and a message naming the file) when it is corrupt. Adds
 * "alive": whether its pid is a process now (a daemon killed outright leaves its last word).
 * OUT: *run (caller decrefs). */
rp_err_t rp_app_status_load(const char *state_dir, const char *name, json_t **run) RP_MUST_CHECK;

/* Start what should run and is not; replace what runs an older version; stop what is gone. */
void rp_supervisor_sync(rp_supervisor_t *s);
/* Reap exits (recording them), note apps that became ready, and restart apps whose backoff has
 * passed; sync again when a component's state changed (an install by another command). Call
 * often (the daemon: every second). */
void rp_supervisor_tick(rp_supervisor_t *s);
/* Stop every app. */
void rp_supervisor_stop(rp_supervisor_t *s);

/* An install's trial as a plain process under the app contract (rp_install_opts_t's trial, for
 * an install the agent makes itself: with no monitor). ctx: the rp_agent_t. Healthy when the app
 * says "ready" or stays up for seconds; the trial is stopped either way. OUT: *healthy, detail. */
rp_err_t rp_supervise_trial(void *ctx, const char *component, int slot, const rp_slot_image_t *img,
                            int seconds, bool *healthy, char *detail, size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_AGENT_SUPERVISE_H */
