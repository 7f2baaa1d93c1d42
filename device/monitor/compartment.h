/*
 * An app's compartment: the one place that builds the sandbox an app runs in from its manifest,
 * watches it (refused system calls, OOM kills, pids refusals, storage full) and takes it down.
 * The monitor calls it; docs/compartments.md ("Enforcement") explains each layer.
 *
 * The app is started under the app contract (device/agent/app.h, docs/updates.md): no arguments
 * beyond its manifest's Cmdline, the RAMPART_* environment, stdin /dev/null, stdout and stderr
 * appended to its log, descriptor 3 its ready pipe, descriptor 4 its channel to the monitor when
 * it has one (RAMPART_MONITOR_FD=4; appchan.h). Inside, it sees:
 *   /app        its tree, read-only (EntryPoint is /app/ENTRY)
 *   /usr /lib /lib64 /bin /sbin  the device's base system, read-only (symlinks kept as symlinks)
 *   /etc        passwd, group (root and the app's user "app"), hosts, resolv.conf, nsswitch.conf
 *   /proc       its own (a pid namespace: its init and its processes only; hidepid)
 *   /dev        null zero full random urandom tty, and only its manifest's Devices
 *   /tmp        a small tmpfs; /data its mutable storage (working directory, HOME)
 * and nothing else of the device. A device is owned by one running compartment at a time.
 *
 * Threads: none inside. The caller drives the compartment: rp_compartment_poll() (or its own
 * loop on rp_compartment_fds()) answers seccomp notifications and checks the cgroups.
 */
#ifndef RAMPART_MONITOR_COMPARTMENT_H
#define RAMPART_MONITOR_COMPARTMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "app.h"
#include "events.h"
#include "launch.h"
#include "rampart/error.h"
#include "rampart/manifest.h"

#define RP_COMPARTMENT_TMP_KB 4096        /* /tmp */
#define RP_COMPARTMENT_NOFILE 256         /* RLIMIT_NOFILE, soft = hard */
#define RP_COMPARTMENT_EVENTS_PER_RUN 100 /* events one run may record; the rest are counted */
#define RP_COMPARTMENT_CHECK_MS 250       /* how often rp_compartment_poll checks the cgroups */

/* The layers. rp_compartment_t.layers holds those in force; .missing names why any is not. */
enum {
    RP_LAYER_USERNS = 1u << 0,  /* user namespace: the app's uid alone mapped */
    RP_LAYER_MOUNTNS = 1u << 1, /* required: mount namespace, pivot_root, read-only tree */
    RP_LAYER_PIDNS = 1u << 2,   /* required */
    RP_LAYER_IPCNS = 1u << 3,   /* required */
    RP_LAYER_UTSNS = 1u << 4,   /* required */
    RP_LAYER_NETNS = 1u << 5,   /* required (configured by the net_setup hook) */
    RP_LAYER_CGROUPNS = 1u << 6,
    RP_LAYER_NNP = 1u << 7,             /* required: no_new_privs */
    RP_LAYER_CAPS = 1u << 8,            /* required: every capability dropped, bounding set too */
    RP_LAYER_SECCOMP = 1u << 9,         /* required: the allow-list */
    RP_LAYER_SECCOMP_NOTIFY = 1u << 10, /* refusals reach the monitor (else: EPERM, no event) */
    RP_LAYER_LANDLOCK_FS = 1u << 11,
    RP_LAYER_LANDLOCK_NET = 1u << 12, /* TCP bind/connect ports (Landlock ABI 4) */
    RP_LAYER_CG_MEMORY = 1u << 13,
    RP_LAYER_CG_PIDS = 1u << 14,
    RP_LAYER_CG_CPU = 1u << 15,
    RP_LAYER_STORAGE = 1u << 16, /* /data: a loop-mounted ext4 of SizeKB */
    RP_LAYER_RLIMITS = 1u << 17,
    RP_LAYER_COUNT_ = 18,
};

/* What the monitor gives to build a compartment. Every path is absolute. */
typedef struct rp_compartment_spec {
    const rp_manifest_t *manifest;
    const char *state_dir;     /* S: events go to S/events/, device ownership in S/run/devices/ */
    const char *tree_dir;      /* the app's extracted tree, mounted read-only at /app */
    const char *storage_image; /* its storage image (made on first start); NULL: no /data */
    const char *run_dir;       /* the monitor's, for this app: the new root is built in it */
    const char *log_path;      /* stdout and stderr: opened here, its descriptor handed to the
                                  launcher, which drains the app's pipe into it, bounded
                                  (RP_COMPARTMENT_LOG_MAX); the monitor reads none of it */
    const char *bucket_path;   /* its bucket's record, beside it (launch.h, BUCKET): opened
                                  here, read and written by the launcher alone; NULL: none */
    const char *component;
    const char *version;
    uid_t uid; /* the app runs as this uid and gid (on the device: one unused uid per app) */
    gid_t gid;
    /* The app's end of its channel to the monitor (rp_appchan_open), placed at descriptor 4 in
     * the app and announced as RAMPART_MONITOR_FD=4; -1: none (a zeroed spec must say -1: 0 to 2
     * are refused). The caller keeps it and closes its own copy once the start returns: inside,
     * only the app holds it (the compartment's init closes its copy), so the monitor sees the
     * channel close when the app is gone. */
    int channel_fd;
    /* Called once the child's namespaces exist and before it builds its root and execs: the
     * network policy configures the (empty) network namespace of pid child here, and fills
     * *hosts (zeroed) with its allowed names' addresses, which the launcher writes into the app's
     * /etc/hosts (launch.h, NET; later ones: rp_compartment_hosts).
     * Non-zero: the start fails. NULL: the namespace stays empty (loopback down). */
    int (*net_setup)(pid_t child, void *ctx, rp_launch_hosts_t *hosts);
    void *net_ctx;
    /* Optional layers the caller turns off (RP_LAYER_OPTIONAL bits; others are ignored): for
     * tests, and for a host known to break one. Each is then named in .missing exactly as on a
     * host without it. 0 in production. */
    unsigned without;
    /* Development mode (docs/compartments.md): the app's processes may ptrace one another (a
     * debugger it ships, or gdbserver from the base system). The caller decides it at each start,
     * from a development capability in force; false otherwise. Named in .missing when on. */
    bool debug;
    /* The operator turned crash capture off for the device's group (crash.h): the init does not
     * trace the app, as in development mode (without its ptrace). Named in .missing. */
    bool no_crash_capture;
} rp_compartment_spec_t;

#define RP_LAYER_OPTIONAL                                                                          \
    (RP_LAYER_USERNS | RP_LAYER_CGROUPNS | RP_LAYER_SECCOMP_NOTIFY | RP_LAYER_LANDLOCK_FS |        \
     RP_LAYER_LANDLOCK_NET | RP_LAYER_CG_MEMORY | RP_LAYER_CG_PIDS | RP_LAYER_CG_CPU)

#define RP_COMPARTMENT_CG_MAX 3

/* An app's stdout and stderr reach its log through a pipe its launcher (the compartment's init,
 * unprivileged) reads, never the file itself: the log is cut back to its newest
 * RP_COMPARTMENT_LOG_KEEP bytes whenever it passes RP_COMPARTMENT_LOG_MAX. What the app writes
 * goes into the file through a bucket (device/launcher/lograte.h, its one owner): at most
 * RP_COMPARTMENT_LOG_BURST bytes at once, refilled at RP_COMPARTMENT_LOG_RATE bytes a second,
 * carried across the app's runs; what comes faster is read and dropped (the app never waits on its
 * log), and the log says how much in one line when writing resumes. The flash this bounds, per app
 * and day (docs/compartments.md, "The app's log"): BURST + 86,400 RATE appended, plus a KEEP
 * rewrite for every MAX - KEEP appended. The launcher's own writes are held to
 * RP_COMPARTMENT_LOG_MAX + RP_COMPARTMENT_LOG_CHUNK by RLIMIT_FSIZE (device/launcher/main.c). */
#define RP_COMPARTMENT_LOG_MAX (1024 * 1024)
#define RP_COMPARTMENT_LOG_KEEP (64 * 1024)
#define RP_COMPARTMENT_LOG_RATE 4096          /* bytes a second, sustained */
#define RP_COMPARTMENT_LOG_BURST (128 * 1024) /* bytes at once: a start-up's chatter, whole */
#define RP_COMPARTMENT_LOG_CHUNK (64 * 1024)  /* one read of the pipe */
#define RP_COMPARTMENT_FDS 3                  /* rp_compartment_fds() */
#define RP_COMPARTMENT_REPORTS 16 /* the init's reports taken per poll (the rest wait) */

/* One running compartment. */
typedef struct rp_compartment {
    char component[RP_COMPONENT_NAME_MAX + 1];
    char version[48]; /* its image's (RP_MON_VERSION_MAX): an oom event names it, "VERSION: ..." */
    char state_dir[4096];
    pid_t pid;         /* its init (pid 1 inside), the host's child; 0: not running */
    int pidfd;         /* readable when the init exits; -1 if the kernel has no pidfd */
    int notify_fd;     /* seccomp notifications; -1 without SECCOMP_NOTIFY */
    int data_fd;       /* /data's root (O_PATH), for the quota check; -1 without storage */
    int sync_fd;       /* the setup channel; the init reports the app's ready, exit, crash on it */
    int hosts_fd;      /* the launcher's NET: its names' addresses (rp_compartment_hosts) */
    bool hosts_lost;   /* NET refused an update: its hosts keeper is gone or stopped (named) */
    bool hosts_failed; /* its hosts keeper answered that it could not write (named in missing) */
    bool sync_gone;    /* the init closed it (or died) */
    bool app_reported; /* the init reported the app's exit: app_status */
    int app_status;
    bool watchdog_missed; /* the init killed the app past its WatchdogSeconds */
    bool log_dropped;     /* its log dropped bytes this run (a quota event said so) */
    rp_app_run_t run;     /* run.started; run.ready as the init reported it (the ready pipe and
                             the watchdog are its: launch.h); run.pid and run.ready_fd unused */
    unsigned layers;
    char missing[512]; /* the layers not in force and why, for a person ("" if none) */
    int landlock_abi;
    /* cgroups: one directory per hierarchy used (v1: one per controller; v2: one) */
    char cg_dir[RP_COMPARTMENT_CG_MAX][512];
    int ncg;
    char cg_memory[512], cg_pids[512]; /* where the OOM and pids counters are read */
    bool cg_v2;
    uint64_t oom_seen, pids_seen;
    bool quota_hit;
    int device_locks[RP_MANIFEST_DEVICES_MAX];
    int ndevice_locks;
    unsigned events, events_suppressed;
    int status; /* the app's wait status once exited */
    bool exited;
    /* When the app died of a fatal signal: its init's capture (crash.h), bytes the monitor keeps
     * without reading them; NULL otherwise. Valid until rp_compartment_stop, which frees it. */
    uint8_t *crash;
    size_t crash_len;
    int64_t last_check_ms;
} rp_compartment_t;

/*
 * Build a compartment for spec and start its app in it. A host that lacks an optional layer gets
 * it named in c->missing (and logged as a warning), and the rest; a required layer missing fails
 * the start. A device of the manifest owned by another running compartment refuses the start
 * (and records a "device" event). OUT: *c; on failure, why says what, and nothing is left.
 */
rp_err_t rp_compartment_start(const rp_compartment_spec_t *spec, rp_compartment_t *c, char *why,
                              size_t cap) RP_MUST_CHECK;

/*
 * Open rampart-launcher (path; NULL: the one beside this process's executable), the program that
 * builds a compartment from inside its namespaces without host privilege (launch.h). Once: every
 * start execs this descriptor, never the path again. rp_compartment_start opens it if no one did;
 * the monitor does at its start. A file another user could change, or one in a directory another
 * user could write to, is refused.
 */
rp_err_t rp_compartment_launcher_open(const char *path, char *why, size_t cap) RP_MUST_CHECK;

/*
 * Drive it for up to timeout_ms: answer seccomp notifications (each refusal recorded), take the
 * init's reports (the app's ready, a crash, its watchdog), check the cgroup counters and the
 * storage. Returns true once the app has exited
 * (c->status: its wait status; the compartment is then stopped: call rp_compartment_stop anyway).
 */
bool rp_compartment_poll(rp_compartment_t *c, int timeout_ms);

/* For a caller with its own loop: poll these for input (-1 entries skipped), then call
 * rp_compartment_poll(c, 0). */
void rp_compartment_fds(const rp_compartment_t *c, int fds[RP_COMPARTMENT_FDS]);

/* Stop it (SIGTERM to the app, SIGKILL to all after RP_APP_STOP_GRACE_MS), record what the
 * counters saw last, remove its cgroups, release its devices. Leaves nothing; idempotent. */
void rp_compartment_stop(rp_compartment_t *c);

/* Hand the launcher of c's app its names' new addresses (the monitor's re-resolution changed
 * them): it rewrites the app's /etc/hosts (launch.h, NET). Does not wait. RP_OK, or RP_ERR_IO
 * (the launcher's hosts keeper is gone, has not read the last ones, or answered that it could not
 * write an earlier one: named in c->missing, once a run, for the caller to show). */
rp_err_t rp_compartment_hosts(rp_compartment_t *c, const rp_launch_hosts_t *h) RP_MUST_CHECK;

/* Record an event of c's app, within its run's RP_COMPARTMENT_EVENTS_PER_RUN (the rest counted,
 * as for the refusals the compartment sees itself): for the refusals its supervisor reads
 * elsewhere (Landlock's, audit.h). */
void rp_compartment_event(rp_compartment_t *c, rp_event_kind_t kind, const char *reason);

/*
 * After a monitor crashed: kill what is left in the cgroups of state_dir's compartments (named
 * rampart.COMPONENT.TAG, TAG a hash of state_dir's real path: another monitor's are not touched),
 * remove them, unmount what is left under run_dir (NULL: nothing) and detach loop devices backed
 * by a file under state_dir. Best effort; logs what it removed. Returns how many leftovers it
 * found. (The compartments themselves die with the monitor: their init has PR_SET_PDEATHSIG.)
 */
int rp_compartment_cleanup(const char *state_dir, const char *run_dir);

/* The layers in mask as words ("user-ns mount-ns ... seccomp landlock-fs"). */
void rp_compartment_layers_describe(unsigned mask, char *out, size_t cap);

/* The layer bit of one of those words; 0 if none. */
unsigned rp_compartment_layer_parse(const char *word);

/* cgroup v2: the cgroup the apps' cgroups go in, from the monitor's own path in the hierarchy
 * (own, as /proc/self/cgroup says it; "" the root): own itself, or its parent once the monitor
 * moved into its leaf child "rampart-monitor" (no process may stay in a cgroup whose controllers
 * are enabled for its children). OUT: out ("" the root). 0, or -1 when it does not fit. */
int rp_compartment_cg_parent(const char *own, char *out, size_t cap);

#endif /* RAMPART_MONITOR_COMPARTMENT_H */
