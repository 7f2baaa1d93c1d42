/*
 * The daemon's supervisor: each app component's confirmed version runs as a plain process, is
 * restarted when it exits (with backoff: 1 s doubling to 60 s, reset after a minute up), and each
 * exit is recorded in S/components/NAME/exits. A new confirmed version replaces the running one.
 * (Compartments built from a manifest come with a later issue.)
 */
#ifndef RAMPART_AGENT_SUPERVISE_H
#define RAMPART_AGENT_SUPERVISE_H

#include <sys/types.h>
#include <time.h>

#include "slots.h"

typedef struct rp_app {
    char name[RP_COMPONENT_NAME_MAX + 1];
    char version[48];
    char exe[PATH_MAX], log[PATH_MAX];
    uint8_t digest[RP_SHA256_LEN];
    int slot;
    pid_t pid;  /* 0: not running */
    pid_t pgid; /* its process group, while anything of it may run */
    time_t started, next_start;
    int backoff, restarts;
} rp_app_t;

typedef struct rp_supervisor {
    rp_agent_t *a;
    rp_app_t apps[RP_COMPONENTS_MAX];
    size_t n;
    struct timespec seen; /* the newest component state it synced with */
} rp_supervisor_t;

/* Start what should run and is not; replace what runs an older version; stop what is gone. */
void rp_supervisor_sync(rp_supervisor_t *s);
/* Reap exits (recording them) and restart apps whose backoff has passed; sync again when a
 * component's state changed (an install by another command). Call often. */
void rp_supervisor_tick(rp_supervisor_t *s);
/* Stop every app. */
void rp_supervisor_stop(rp_supervisor_t *s);

#endif /* RAMPART_AGENT_SUPERVISE_H */
