/*
 * rampart-monitor: the device's privileged process. It holds the root of trust and the A/B slots,
 * and answers requests (proto.h) on a SOCK_SEQPACKET socket that only root and the agent's user
 * may use (checked again per connection with SO_PEERCRED). Start-up: one monitor per state
 * directory (a lock), recovery of cut installs, the socket, then its own seccomp allow-list
 * (sandbox.c) before the first request is read.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apps.h"
#include "capability.h"
#include "events.h"
#include "rampart/log.h"
#include "rampart/notify.h"
#include "sandbox.h"
#include "serve.h"
#include "slots.h"

#define CLIENTS_MAX 16
#define IDLE_SECONDS 60 /* a connection that says nothing for this long is closed */
/* Firmware handed to the agent for an MCU: its verdict's deadline (INSTALL's health_seconds when
 * given), and the install child's exit status when it answered handed. */
#define HANDED_SECONDS 300
#define HANDED_EXIT 3
/* At a stop, how long an install under way has to finish (a slot write under way, its answer)
 * before it is killed: far below a service manager's stop timeout (systemd's: 90 s). */
#define RP_MON_STOP_GRACE_SECONDS 5

static const char usage[] =
    "Usage: rampart-monitor --state-dir S [--socket PATH] [--agent-user USER]\n"
    "\n"
    "Serve the device's root of trust and A/B slots to root and USER on S/monitor.sock\n"
    "(or PATH); one monitor per state directory. SIGTERM stops it.\n"
    "\n"
    "  --help     this help\n"
    "  --version  the version\n";

struct client {
    int fd;
    time_t last;
    bool held;                /* not read: an install child answers it, or its request waits */
    bool waiting;             /* req is a request held until the install child exits */
    rp_mon_request_t pending; /* that request */
    int pending_fd;           /* and its descriptor (TRUST_ROOT's), or -1 */
};

static struct {
    rp_agent_t agent;
    uid_t agent_uid; /* (uid_t)-1: root only */
    gid_t agent_gid;
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct client clients[CLIENTS_MAX];
    uint8_t buf[RP_MON_PACKET_MAX];
    rp_mon_request_t req;
    rp_mon_reply_t reply;
    pid_t apps_pid; /* the app supervisor (apps.h) */
    int apps_fd;
    struct timespec apps_seen; /* the components' state it was last told */
    rp_apps_msg_t apps_msg;
    rp_apps_reply_t apps_reply;
    pid_t install_pid; /* the install child running (0: none) */
    struct client *install_client;
    rp_mon_request_t install_req; /* its request: answered here if the child dies first */
    rp_apps_trial_ctx_t trial; /* the install child's trial hook: its channel to the supervisor */
    rp_apps_chans_t chans;     /* each app's channel (apps.h): the broker answers them */
    int broker;                /* the monitor's end of the app broker's socket (gate.h); -1 */
    time_t broker_next, broker_started;
    int broker_backoff; /* seconds before the next start, after one stopped */
    /* Firmware handed to the agent, each component's: a trial left by its deadline is rolled
     * back (0: none). */
    struct {
        char component[RP_COMPONENT_NAME_MAX + 1];
        time_t until;
    } handed[RP_COMPONENTS_MAX];
} m;

/* STATUS: each trial handed to the agent, with its verdict's deadline (kept here, handed_set). */
static void handed_status(rp_mon_reply_t *p)
{
    for (size_t i = 0; i < p->u.status.n; i++)
        for (size_t j = 0; p->u.status.c[i].trial <= 1 && j < RP_COMPONENTS_MAX; j++)
            if (m.handed[j].until != 0 && strcmp(m.handed[j].component, p->u.status.c[i].name) == 0)
                p->u.status.c[i].trial_until = (int64_t)m.handed[j].until;
}

/* Tell the app supervisor what should run (after an install, a recovery, or a change of the
 * components' state by another command). */
static void apps_sync(void)
{
    if (m.install_pid > 0)
        return; /* the child uses the root of trust: the parent syncs once it is done */
    m.apps_seen = rp_apps_state_stamp(m.agent.state_dir);
    rp_apps_wanted(&m.agent, &m.apps_msg);
    if (rp_apps_call(m.apps_fd, &m.apps_msg, NULL, 0) != RP_OK)
        rp_log_error("the app supervisor did not take the apps to run");
    rp_apps_chans_sync(&m.chans, &m.apps_msg, m.apps_fd, m.broker);
}

/* The app broker (gate.h): started (again) once its backoff is over, and handed every app's
 * channel; while an install child holds the root of trust, it is the child that answers the gate,
 * and the broker is started again only once the child is done. */
static void broker_up(time_t now)
{
    if (m.broker >= 0 || m.install_pid > 0 || now < m.broker_next)
        return;
    if (rp_apps_broker(m.apps_fd, &m.broker) != RP_OK) {
        m.broker_next = now + m.broker_backoff;
        m.broker_backoff = m.broker_backoff * 2 > 30 ? 30 : m.broker_backoff * 2;
        return;
    }
    m.broker_started = now;
    rp_apps_chans_hand(&m.chans, m.broker);
}

static void broker_lost(time_t now)
{
    close(m.broker);
    m.broker = -1;
    if (now - m.broker_started >= 60)
        m.broker_backoff = 1; /* it ran a while: this is not a loop */
    m.broker_next = now + m.broker_backoff;
    rp_log_error("the app broker stopped: it starts again in %d s, and is handed every running "
                 "app's channel (a request it was answering is lost: its app's call fails or "
                 "times out)",
                 m.broker_backoff);
    m.broker_backoff = m.broker_backoff * 2 > 30 ? 30 : m.broker_backoff * 2;
}

/* One message from the broker, answered (not while an install child holds the root of trust). */
static void serve_broker(time_t now)
{
    rp_appgate_app_t *slots[RP_GATE_SLOTS];
    int closed = -1;

    rp_apps_chans_slots(&m.chans, slots);
    if (rp_appgate_serve(m.broker, &m.agent, slots, &closed) != RP_OK) {
        broker_lost(now);
        return;
    }
    if (closed >= 0 && closed < RP_COMPONENTS_MAX && m.chans.e[closed].used &&
        m.chans.e[closed].g.fd >= 0) {
        /* The broker closed it for what its app sent: the app sees it close too. */
        close(m.chans.e[closed].g.fd);
        m.chans.e[closed].g.fd = -1;
        rp_apps_chans_sync(&m.chans, NULL, m.apps_fd, m.broker);
    }
}

/* A channel whose app exited (hung up: polled with no events) is closed and made again at once, so
 * that the app is restarted at its backoff. The monitor reads nothing on it: the broker does. */
static void apps_hung_up(const struct pollfd *p, const uint64_t *gen)
{
    bool closed = false;

    /* Only the channel that was polled: one the broker closed (CLOSED, served in this same turn)
     * was made again already, often with the same number (review r7: M2). */
    for (int i = 0; i < RP_COMPONENTS_MAX; i++)
        if (p[i].fd >= 0 && (p[i].revents & (POLLHUP | POLLERR)) != 0 &&
            m.chans.e[i].g.fd == p[i].fd && m.chans.e[i].g.gen == gen[i]) {
            close(m.chans.e[i].g.fd);
            m.chans.e[i].g.fd = -1;
            closed = true;
        }
    if (closed)
        rp_apps_chans_sync(&m.chans, NULL, m.apps_fd, m.broker);
}

/* APP_LIST: the supervisor's answer, as the reply. */
static void apps_list(rp_mon_reply_t *p)
{
    rp_err_t err;

    memset(&m.apps_msg, 0, sizeof(m.apps_msg));
    m.apps_msg.kind = RP_APPS_LIST;
    err = rp_apps_call(m.apps_fd, &m.apps_msg, &m.apps_reply, 10 * 1000);
    if (err != RP_OK || m.apps_reply.n > RP_MON_APPS_MAX) {
        p->status = (uint16_t)(err != RP_OK ? err : RP_ERR_MALFORMED);
        snprintf(p->message, sizeof(p->message), "the app supervisor did not answer: %s",
                 rp_strerror(err));
        return;
    }
    p->u.app_list.n = m.apps_reply.n;
    memcpy(p->u.app_list.a, m.apps_reply.app, m.apps_reply.n * sizeof(rp_mon_app_t));
}

/* APP_CONTROL: the supervisor does it and says how it went. */
static void apps_control(rp_mon_reply_t *p)
{
    rp_err_t err;

    memset(&m.apps_msg, 0, sizeof(m.apps_msg));
    m.apps_msg.kind = RP_APPS_CONTROL;
    m.apps_msg.n = 1;
    m.apps_msg.action = m.req.u.app_control.action;
    snprintf(m.apps_msg.want[0].component, sizeof(m.apps_msg.want[0].component), "%s",
             m.req.u.app_control.component);
    err = rp_apps_call(m.apps_fd, &m.apps_msg, &m.apps_reply, 30 * 1000);
    if (err != RP_OK) {
        p->status = (uint16_t)err;
        snprintf(p->message, sizeof(p->message), "the app supervisor did not answer: %s",
                 rp_strerror(err));
    } else if (m.apps_reply.status != RP_OK) {
        p->status = (uint16_t)m.apps_reply.status;
        snprintf(p->message, sizeof(p->message), "%s", m.apps_reply.detail);
    }
}

/*
 * Remove an app: the tombstone first (from then on it runs nothing: a cut leaves the mark, and
 * the next start finishes), its compartment stopped and its channel closed, its files deleted by
 * the supervisor, then its slots. why: what the state and the event say (NULL: finishing a cut
 * removal at start, whose event was recorded when it began).
 */
static rp_err_t remove_app(const char *name, const char *why)
{
    rp_err_t err = rp_component_remove_begin(
        &m.agent, name, why != NULL ? why : "removed (finished at the monitor's start)");

    if (err == RP_OK && why != NULL &&
        rp_event_record(m.agent.state_dir, RP_EVENT_REMOVED, name, why) != RP_OK)
        rp_log_warn("%s: the removal could not be recorded as an event", name);
    if (err == RP_OK) {
        apps_sync(); /* no longer wanted: its channel closes */
        memset(&m.apps_msg, 0, sizeof(m.apps_msg));
        m.apps_msg.kind = RP_APPS_REMOVE;
        m.apps_msg.n = 1;
        snprintf(m.apps_msg.want[0].component, sizeof(m.apps_msg.want[0].component), "%s", name);
        err = rp_apps_call(m.apps_fd, &m.apps_msg, &m.apps_reply, 30 * 1000);
        if (err == RP_OK)
            err = (rp_err_t)m.apps_reply.status;
    }
    if (err == RP_OK)
        err = rp_component_remove_finish(&m.agent, name);
    if (err != RP_OK)
        rp_log_error("%s: its removal is not finished (%s): the next start finishes it", name,
                     rp_strerror(err));
    return err;
}

/* At start: finish the removals a cut left (their mark). */
static void finish_removals(void)
{
    char names[RP_COMPONENTS_MAX][RP_COMPONENT_NAME_MAX + 1];
    size_t n = 0;

    if (rp_component_names(m.agent.state_dir, names, RP_COMPONENTS_MAX, &n) != RP_OK)
        n = 0;
    for (size_t i = 0; i < n; i++)
        if (rp_component_removing(m.agent.state_dir, names[i]) &&
            remove_app(names[i], NULL) == RP_OK)
            rp_log_info("%s: a removal a cut left is finished", names[i]);
}

/* APP_REMOVE: an app (never firmware or a system image) the device's signed targets no longer
 * name, or a sideload the device allows; one that is not installed is not found. */
static void apps_remove(rp_mon_reply_t *p)
{
    const char *name = m.req.u.app_remove.component;
    char path[PATH_MAX], why[RP_MON_MESSAGE_MAX - 16] = "", event[RP_EVENT_REASON_MAX + 1];
    int lock = rp_monitor_slots_lock(m.agent.state_dir, false);
    rp_component_t c;
    rp_slot_image_t img;
    rp_err_t err = lock >= 0 ? rp_component_load(m.agent.state_dir, name, &c) : RP_ERR_EXISTS;

    if (err == RP_OK && c.active < 0 && !rp_component_removing(m.agent.state_dir, name))
        err = RP_ERR_NOT_FOUND; /* removed already, or never installed */
    if (err == RP_OK && c.active >= 0 &&
        rp_slot_path(m.agent.state_dir, name, c.active, path, sizeof(path)) == RP_OK &&
        rp_slot_check(&m.agent, &c, path, &img) == RP_OK && img.valid &&
        img.type != RP_IMAGE_TYPE_APP) {
        err = RP_ERR_DENIED;
        snprintf(why, sizeof(why), "%s is not an app: only apps are removed", name);
    }
    if (err == RP_OK && !rp_monitor_remove_allowed(&m.agent, name, why, sizeof(why)))
        err = RP_ERR_DENIED;
    if (err == RP_OK) {
        snprintf(event, sizeof(event), "%.47s removed: %.190s", c.confirmed_version, why);
        why[0] = '\0';
        err = remove_app(name, event);
        if (err != RP_OK)
            snprintf(why, sizeof(why),
                     "its removal is not finished (%s): the monitor's next start "
                     "finishes it",
                     rp_strerror(err));
    }
    if (lock >= 0)
        close(lock);
    if (err == RP_ERR_NOT_FOUND)
        snprintf(why, sizeof(why), "no app %s is installed on this device", name);
    else if (err == RP_ERR_EXISTS)
        snprintf(why, sizeof(why), "the slots are busy (an install is running): try again");
    else if (err != RP_OK && why[0] == '\0')
        snprintf(why, sizeof(why), "%s", rp_strerror(err));
    p->status = (uint16_t)err;
    if (err != RP_OK)
        snprintf(p->message, sizeof(p->message), "not removed: %s", why);
}

/* The lock that makes this the state directory's only monitor; held until exit. */
static int take_lock(const char *state_dir)
{
    char path[PATH_MAX], pid[32] = "";
    int fd;
    ssize_t n;

    if (snprintf(path, sizeof(path), "%s/monitor.lock", state_dir) >= (int)sizeof(path))
        return -1;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rp_log_error("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        rp_log_error("another rampart-monitor (pid %s) serves %s already: one monitor per state "
                     "directory",
                     pid[0] ? pid : "?", state_dir);
        close(fd);
        return -1;
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        rp_log_warn("%s: cannot record the pid", path);
    return fd;
}

/* Bind the socket: 0660, owned by the agent's user and group (root's when there is none). */
static int listen_on(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    mode_t old;
    int fd, probe, rc;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        rp_log_error("%s: a socket path must be shorter than %zu bytes", path,
                     sizeof(addr.sun_path));
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    /* A socket left by a monitor that died is replaced; one that answers is another's. */
    probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
        rp_log_error("%s: another monitor answers there already", path);
        close(probe);
        return -1;
    }
    if (probe >= 0)
        close(probe);
    if (unlink(path) != 0 && errno != ENOENT) {
        rp_log_error("%s: cannot remove the old socket: %s", path, strerror(errno));
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    old = umask(0177); /* 0600 from the start: never briefly open to others */
    rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old);
    if (rc == 0 && m.agent_uid != (uid_t)-1)
        rc = chown(path, m.agent_uid, m.agent_gid) == 0 && chmod(path, 0660) == 0 ? 0 : -1;
    if (rc == 0)
        rc = listen(fd, 16);
    if (rc != 0) {
        rp_log_error("%s: cannot listen: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void drop(struct client *c)
{
    close(c->fd);
    if (c->pending_fd >= 0)
        close(c->pending_fd);
    c->fd = c->pending_fd = -1;
    c->held = c->waiting = false;
}

/* An error reply to a request that could not be read, then the connection is closed. */
static void refuse_packet(struct client *c, rp_err_t err, const rp_mon_request_t *q)
{
    size_t len;

    memset(&m.reply, 0, sizeof(m.reply));
    /* The header's type when it is one this version answers (a retired number is not). */
    m.reply.type = rp_mon_type_known(q->type) ? q->type : RP_MON_HELLO;
    m.reply.id = q->id;
    m.reply.status = (uint16_t)err;
    snprintf(m.reply.message, sizeof(m.reply.message), "request refused: %s", rp_strerror(err));
    if (rp_mon_reply_encode(&m.reply, m.buf, sizeof(m.buf), &len) == RP_OK &&
        rp_mon_send(c->fd, m.buf, len, -1) != RP_OK)
        rp_log_debug("a refused client left before its reply");
    drop(c);
}

/* The uid of c's peer, which the monitor serves by (the first root of update trust only from root):
 * (uid_t)-1 when unknown, served as the agent, never as root. */
static uid_t peer_uid(const struct client *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
        return (uid_t)-1;
    return cred.uid;
}

static void dispatch(struct client *c, int fd);

static void serve_one(struct client *c)
{
    size_t len;
    int fd = -1;
    rp_err_t err = rp_mon_recv(c->fd, m.buf, sizeof(m.buf), &len, &fd);

    c->last = time(NULL);
    if (err == RP_ERR_NOT_FOUND || err == RP_ERR_IO) {
        drop(c); /* the client closed (or its socket broke) */
        return;
    }
    memset(&m.req, 0, sizeof(m.req));
    if (err == RP_OK)
        err = rp_mon_request_decode(m.buf, len, &m.req);
    else if (rp_mon_request_decode(m.buf, len < RP_MON_HEADER_LEN ? len : RP_MON_HEADER_LEN,
                                   &m.req) != RP_OK)
        rp_log_debug("refusing request %u", m.req.id); /* the header alone: for its id */
    if (err == RP_OK && fd >= 0 && !rp_mon_type_takes_fd(m.req.type))
        err = RP_ERR_MALFORMED; /* only an install or a root carries a descriptor */
    if (err != RP_OK) {
        rp_log_warn("a client's request was refused (%s), its connection closed", rp_strerror(err));
        if (fd >= 0)
            close(fd);
        refuse_packet(c, err, &m.req);
        return;
    }
    dispatch(c, fd);
}

/* Encode and send m.reply (and fd, when not -1) to c; a client that cannot take it is dropped. */
static void reply_to(struct client *c, int fd)
{
    size_t len;
    rp_err_t err = rp_mon_reply_encode(&m.reply, m.buf, sizeof(m.buf), &len);

    if (err == RP_OK)
        err = rp_mon_send(c->fd, m.buf, len, fd);
    if (err != RP_OK) {
        rp_log_warn("a %s reply could not be sent (%s): the client is dropped",
                    rp_mon_type_name(m.req.type), rp_strerror(err));
        drop(c);
    }
}

/*
 * An install runs in a child of the monitor: it takes the slots' lock, installs (its trial in the
 * app supervisor, over a channel of its own), answers the client and exits; the parent keeps
 * serving. The root of trust is one (a TPM connection is not to be shared): while the child runs,
 * the parent answers HELLO, APP_LIST, EVENTS and APP_LOG and holds every other request until the
 * child is done.
 */
static void install_in_child(struct client *c, int fd)
{
    int ch[2] = {-1, -1};
    pid_t pid;

    memset(&m.reply, 0, sizeof(m.reply));
    m.reply.type = m.req.type;
    m.reply.id = m.req.id;
    memset(&m.apps_msg, 0, sizeof(m.apps_msg));
    m.apps_msg.kind = RP_APPS_CHANNEL;
    rp_rot_idle(m.agent.rot); /* no TPM connection of the parent's in the child (below) */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch) != 0 ||
        rp_mon_send(m.apps_fd, (const uint8_t *)&m.apps_msg, sizeof(m.apps_msg), ch[0]) != RP_OK ||
        (pid = fork()) < 0) {
        if (ch[0] >= 0) {
            close(ch[0]);
            close(ch[1]);
        }
        m.reply.status = RP_ERR_IO;
        snprintf(m.reply.message, sizeof(m.reply.message), "cannot start the install");
        reply_to(c, -1);
        return;
    }
    if (pid == 0) {
        int slot;
        close(ch[0]);
        m.trial.fd = ch[1];
        rp_monitor_serve(&m.agent, &m.req, fd, peer_uid(c), &m.reply, &slot);
        reply_to(c, slot);
        rp_apps_chans_spent_put(&m.chans); /* what it spent of the apps' rates is the parent's */
        /* The parent let go of its TPM connection before the fork (rp_rot_idle: /dev/tpm0
         * admits one open connection, and a copy of the parent's here would keep the child's own
         * from opening; the parent holds every TPM request until the child is gone, and loads its
         * key again at the next). The child's TPM operations make connections of their own. What
         * the child loaded in the TPM itself (the identity key, for the gate's signatures) is
         * flushed: a TPM without a resource manager (swtpm, /dev/tpm0) would keep it after the
         * child, and a few installs would fill it. */
        rp_rot_close(m.agent.rot);
        _exit(!m.reply.status && m.reply.u.install.state == RP_UPDATE_HANDED ? HANDED_EXIT : 0);
    }
    close(ch[0]);
    close(ch[1]);
    m.install_pid = pid;
    m.install_client = c;
    m.install_req = m.req;
    c->held = true;
}

/* Whether a request uses the root of trust (or the slots): held while an install child runs. */
static bool uses_rot(rp_mon_type_t t)
{
    return t != RP_MON_HELLO && t != RP_MON_APP_LIST && t != RP_MON_EVENTS && t != RP_MON_APP_LOG &&
           t != RP_MON_APP_CONTROL && t != RP_MON_CRASHES && t != RP_MON_SETTINGS;
}

/* Answer the decoded request m.req of c (fd: its descriptor, or -1; closed here). */
static void dispatch(struct client *c, int fd)
{
    rp_log_debug("request %s (id %u)", rp_mon_type_name(m.req.type), m.req.id);
    if (m.req.type == RP_MON_INSTALL && m.install_pid == 0) {
        install_in_child(c, fd);
        if (fd >= 0)
            close(fd);
        return;
    }
    /* A second INSTALL waits its turn like the rest: the first one's client may already have its
     * answer (the child replies, then exits) and send the next before the child is reaped. */
    if (m.install_pid > 0 && uses_rot(m.req.type)) {
        c->pending = m.req; /* answered when the install is done */
        c->pending_fd = fd;
        c->waiting = c->held = true;
        return;
    }
    memset(&m.reply, 0, sizeof(m.reply)); /* (rp_monitor_serve makes its own) */
    m.reply.type = m.req.type;
    m.reply.id = m.req.id;
    if (m.req.type == RP_MON_APP_LIST) {
        apps_list(&m.reply);
    } else if (m.req.type == RP_MON_APP_CONTROL) {
        apps_control(&m.reply);
        rp_apps_chans_sync(&m.chans, NULL, m.apps_fd, m.broker);
    } else if (m.req.type == RP_MON_APP_REMOVE) {
        apps_remove(&m.reply);
    } else {
        rp_monitor_serve(&m.agent, &m.req, fd, peer_uid(c), &m.reply, &(int){-1});
        if (m.req.type == RP_MON_STATUS && m.reply.status == RP_OK)
            handed_status(&m.reply);
    }
    if (fd >= 0)
        close(fd);
    if (m.req.type == RP_MON_RECOVER)
        apps_sync(); /* what runs may have changed */
    reply_to(c, -1);
}

/* Firmware for component handed to the agent (INSTALL's health_seconds: 0 is HANDED_SECONDS): its
 * verdict's deadline, the component's own (a new one replaces its earlier one: that INSTALL ended
 * the earlier trial). */
static void handed_set(const char *component, uint32_t secs, time_t now)
{
    size_t i, free_at = RP_COMPONENTS_MAX;

    for (i = 0; i < RP_COMPONENTS_MAX && strcmp(m.handed[i].component, component) != 0; i++)
        if (m.handed[i].until == 0 && free_at == RP_COMPONENTS_MAX)
            free_at = i;
    if (i == RP_COMPONENTS_MAX)
        i = free_at;
    if (i == RP_COMPONENTS_MAX) /* cannot be: one per component */
        return;
    snprintf(m.handed[i].component, sizeof(m.handed[i].component), "%s", component);
    m.handed[i].until = now + (secs == 0                  ? HANDED_SECONDS
                               : secs > RP_MON_HEALTH_MAX ? RP_MON_HEALTH_MAX
                                                          : secs);
}

/* No verdict on firmware handed to the agent by its component's deadline (the agent died, or
 * keeps silent): outside an install child only a handed trial can be on trial, and recovery rolls
 * that component's back (a verdict ended it already: nothing to do). */
static void handed_expire(time_t now)
{
    bool bootable;
    int lock;

    for (size_t i = 0; i < RP_COMPONENTS_MAX; i++) {
        if (m.handed[i].until == 0 || now < m.handed[i].until ||
            (lock = rp_monitor_slots_lock(m.agent.state_dir, false)) < 0)
            continue;
        if (rp_component_recover_cut(&m.agent, m.handed[i].component, &bootable,
                                     "no verdict from the agent on the firmware handed over for "
                                     "the MCU in time") != RP_OK)
            rp_log_error("%s: firmware handed over: its trial is rolled back at the next start",
                         m.handed[i].component);
        close(lock);
        m.handed[i].until = 0;
    }
}

/*
 * The install child died before it answered (killed, or a crash): its install is cut where it
 * was, as a power cut would cut it. Put the slots right now, as the next start would (an
 * unconfirmed version rolls back), rather than leave the component on trial and its app
 * stopped until then; and tell the client (stopping: that the monitor is, install_stop).
 */
static void install_died(int status, bool stopping)
{
    int unbootable = 0, lock;
    rp_err_t err;

    /* What it had loaded in the TPM (its key, a MAC key mid-way) is freed first: a TPM without a
     * resource manager keeps it, and a few such deaths leave no room for any key. */
    if (rp_rot_reclaim(m.agent.rot) != RP_OK)
        rp_log_error("the TPM may still hold what the install child loaded (said above)");
    lock = rp_monitor_slots_lock(m.agent.state_dir, false);
    err = lock >= 0
              ? rp_components_recover_cut(&m.agent, &unbootable,
                                          "its install stopped before the update was confirmed")
              : RP_ERR_EXISTS;

    if (lock >= 0)
        close(lock);
    rp_log_error("the install child ended before it finished (status %d): %s", status,
                 err == RP_OK ? "the slots are put right"
                              : "the slots are put right at next start");
    if (m.install_client == NULL || m.install_client->fd < 0)
        return;
    memset(&m.reply, 0, sizeof(m.reply));
    m.req = m.install_req;
    m.reply.type = m.req.type;
    m.reply.id = m.req.id;
    m.reply.status = RP_ERR_IO;
    snprintf(m.reply.message, sizeof(m.reply.message),
             "the install stopped before it finished%s; %s",
             stopping ? " (the monitor is stopping: install again once it is back)" : "",
             err == RP_OK ? "the slots were put right (an unconfirmed version rolled back)"
                          : "the slots are put right at the monitor's next start");
    reply_to(m.install_client, -1);
}

/* The install child is done: its client is read again, the apps synced, held requests answered. */
static void install_done(void)
{
    m.install_pid = 0;
    if (m.install_client != NULL && m.install_client->fd >= 0)
        m.install_client->held = false;
    m.install_client = NULL;
    apps_sync(); /* a new version confirmed replaces the running one */
    for (int i = 0; i < CLIENTS_MAX; i++) {
        struct client *c = &m.clients[i];
        if (c->fd < 0 || !c->waiting)
            continue;
        int fd = c->pending_fd;
        c->waiting = c->held = false;
        c->pending_fd = -1;
        m.req = c->pending;
        dispatch(c, fd);
    }
}

/* Children that exited: the install child, or the app supervisor (then the monitor stops). */
static bool reap_children(void)
{
    int st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (pid == m.install_pid) {
            if (rp_apps_chans_spent_take(&m.chans) != RP_OK) /* (made at start: cannot fail) */
                rp_log_warn("the install child's spent rates were not taken back");
            if (WIFEXITED(st) && WEXITSTATUS(st) == HANDED_EXIT)
                handed_set(m.install_req.u.install.component,
                           m.install_req.u.install.health_seconds, time(NULL));
            else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                install_died(st, false);
            install_done();
        } else if (pid == m.apps_pid) {
            rp_log_error("the app supervisor stopped: stopping");
            m.apps_pid = 0;
            return false;
        }
    }
    return true;
}

/*
 * Stopping: an install under way has RP_MON_STOP_GRACE_SECONDS to finish, then it is killed (its
 * trial may last up to RP_MON_HEALTH_MAX) and its client told that the monitor is stopping. A
 * kill at any point is a power cut at that point, which the slots survive: e2e.update_install's
 * power-loss walk cuts an install at each of its write steps, and recovery at the next start
 * leaves the old version or the new one, each with its counter.
 */
static void install_stop(int sfd)
{
    struct pollfd p = {sfd, POLLIN, 0};
    struct signalfd_siginfo si;
    time_t end = time(NULL) + RP_MON_STOP_GRACE_SECONDS;
    int st = 0;
    pid_t got;

    while ((got = waitpid(m.install_pid, &st, WNOHANG)) == 0 && time(NULL) < end)
        if (poll(&p, 1, 1000) > 0 && read(sfd, &si, sizeof(si)) < 0)
            break; /* (SIGCHLD wakes it; what else came is read, to poll again) */
    if (got == 0) {
        rp_log_warn("stopping: the install under way is not done after %d s: it is killed",
                    RP_MON_STOP_GRACE_SECONDS);
        if (kill(m.install_pid, SIGKILL) == 0)
            while ((got = waitpid(m.install_pid, &st, 0)) < 0 && errno == EINTR)
                ;
    }
    if (got == m.install_pid &&
        (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != HANDED_EXIT)))
        install_died(st, true);
}

/* Accept a connection from root or the agent's user; anyone else is told so and dropped. */
static void accept_one(int lfd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    size_t i;

    if (fd < 0)
        return;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred) ||
        (cred.uid != 0 && (m.agent_uid == (uid_t)-1 || cred.uid != m.agent_uid))) {
        rp_log_warn("refused a connection from uid %ld (pid %ld): only root%s may use the "
                    "monitor",
                    len == sizeof(cred) ? (long)cred.uid : -1L,
                    len == sizeof(cred) ? (long)cred.pid : -1L,
                    m.agent_uid != (uid_t)-1 ? " and the agent's user" : "");
        close(fd);
        return;
    }
    for (i = 0; i < CLIENTS_MAX && m.clients[i].fd >= 0; i++)
        ;
    if (i == CLIENTS_MAX) {
        rp_log_warn("%d clients connected already: a new connection is refused", CLIENTS_MAX);
        close(fd);
        return;
    }
    m.clients[i] = (struct client){.fd = fd, .last = time(NULL), .pending_fd = -1};
}

static int loop(int lfd, int sfd)
{
    struct pollfd p[CLIENTS_MAX + 4 + RP_COMPONENTS_MAX];
    struct pollfd *chan = p + CLIENTS_MAX + 4;
    uint64_t gen[RP_COMPONENTS_MAX]; /* each polled channel's generation */

    for (;;) {
        time_t now = time(NULL);
        struct timespec stamp = rp_apps_state_stamp(m.agent.state_dir);
        if (m.install_pid == 0 &&
            (stamp.tv_sec != m.apps_seen.tv_sec || stamp.tv_nsec != m.apps_seen.tv_nsec))
            apps_sync(); /* another command installed or rolled back */
        if (m.install_pid == 0)
            handed_expire(now); /* (while a child runs, its own trial may be on) */
        p[0] = (struct pollfd){lfd, POLLIN, 0};
        p[1] = (struct pollfd){sfd, POLLIN, 0};
        p[2] = (struct pollfd){m.apps_fd, POLLIN, 0};
        for (int i = 0; i < CLIENTS_MAX; i++) {
            if (m.clients[i].fd >= 0 && !m.clients[i].held &&
                now - m.clients[i].last > IDLE_SECONDS)
                drop(&m.clients[i]);
            p[i + 3] = (struct pollfd){m.clients[i].held ? -1 : m.clients[i].fd, POLLIN, 0};
        }
        broker_up(now);
        /* The broker's requests wait while an install child uses the root of trust (it answers
         * them), or while its gate has no room for an answer; of the channels only a hang-up is
         * seen. */
        p[CLIENTS_MAX + 3] =
            (struct pollfd){m.install_pid > 0 ? -1 : m.broker, rp_appgate_events(), 0};
        for (int i = 0; i < RP_COMPONENTS_MAX; i++) {
            chan[i] = (struct pollfd){!m.chans.e[i].used ? -1 : m.chans.e[i].g.fd, 0, 0};
            gen[i] = m.chans.e[i].g.gen;
        }
        if (poll(p, CLIENTS_MAX + 4 + RP_COMPONENTS_MAX, 1000) < 0) {
            if (errno == EINTR)
                continue;
            rp_log_error("poll: %s", strerror(errno));
            return 1;
        }
        rp_notify_watchdog(); /* the loop turns: at least once a second (poll's timeout) */
        if (p[1].revents != 0) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) && si.ssi_signo == SIGCHLD) {
                if (!reap_children())
                    return 1;
            } else {
                rp_log_info("stopping (signal)");
                rp_notify("STOPPING=1");
                return 0;
            }
        }
        if (p[2].revents != 0) {
            /* Only a late answer to a request given up on can be waiting; nothing (or an error)
             * means the supervisor is gone, and with it every app: the monitor stops too, for its
             * service manager to start both again. */
            ssize_t got = recv(m.apps_fd, &m.apps_reply, sizeof(m.apps_reply), MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                rp_log_error("the app supervisor stopped: stopping");
                return 1;
            }
        }
        for (int i = 0; i < CLIENTS_MAX; i++)
            if (m.clients[i].fd >= 0 && !m.clients[i].held && p[i + 3].revents != 0)
                serve_one(&m.clients[i]);
        if (p[CLIENTS_MAX + 3].fd >= 0 && m.broker >= 0 &&
            (p[CLIENTS_MAX + 3].revents != 0 || p[CLIENTS_MAX + 3].events == POLLOUT))
            serve_broker(now); /* (without room: each turn, to see how long it has had none) */
        apps_hung_up(chan, gen);
        if (p[0].revents & POLLIN)
            accept_one(lfd);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir",        required_argument, NULL, 's'},
        {"socket",           required_argument, NULL, 'k'},
        {"agent-user",       required_argument, NULL, 'u'},
        {"seccomp-selftest", no_argument,       NULL, 'T'},
        {"help",             no_argument,       NULL, 'h'},
        {"version",          no_argument,       NULL, 'V'},
        {NULL,               0,                 NULL, 0  }
    };
    const char *state_dir = NULL, *sock = NULL, *user = NULL;
    bool selftest = false;
    int o, lock_fd, lfd = -1, sfd = -1, rc = 1, unbootable = 0, slots_lock;
    sigset_t sigs;
    rp_err_t err;

    rp_log_init("rampart-monitor", RP_LOG_INFO);
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's': state_dir = optarg; break;
        case 'k': sock = optarg; break;
        case 'u': user = optarg; break;
        case 'T': selftest = true; break;
        case 'h': fputs(usage, stdout); return 0;
        case 'V': printf("rampart-monitor %s\n", RP_VERSION); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (state_dir == NULL || optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (selftest)
        return rp_sandbox_selftest();
    if (geteuid() != 0) {
        rp_log_error("rampart-monitor runs as root (it holds the root of trust and the slots)");
        return 1;
    }
    m.agent_uid = (uid_t)-1;
    if (user != NULL) {
        struct passwd *pw = getpwnam(user);
        if (pw == NULL) {
            rp_log_error("--agent-user %s: no such user", user);
            return 2;
        }
        /* The agent is the monitor's unprivileged client: as root it would be the monitor's
         * equal (root is served anyway), as an app's uid an app's. Refused, not run weakened. */
        if (pw->pw_uid == 0 ||
            (pw->pw_uid >= RP_APPS_UID_BASE && pw->pw_uid - RP_APPS_UID_BASE < RP_APPS_UID_COUNT)) {
            rp_log_error("--agent-user %s: uid %ld is %s: give an unprivileged user of its own "
                         "(or no --agent-user: root only)",
                         user, (long)pw->pw_uid, pw->pw_uid == 0 ? "root" : "an app's");
            return 2;
        }
        m.agent_uid = pw->pw_uid;
        m.agent_gid = pw->pw_gid;
    }
    if (snprintf(m.sock_path, sizeof(m.sock_path), "%s", sock != NULL ? sock : "") >=
            (int)sizeof(m.sock_path) ||
        (sock == NULL && snprintf(m.sock_path, sizeof(m.sock_path), "%s/monitor.sock", state_dir) >=
                             (int)sizeof(m.sock_path))) {
        rp_log_error("the socket path is too long (at most %zu bytes): give --socket PATH",
                     sizeof(m.sock_path) - 1);
        return 2;
    }
    for (int i = 0; i < CLIENTS_MAX; i++)
        m.clients[i].fd = m.clients[i].pending_fd = -1;
    err = rp_agent_check_state_tree(state_dir); /* (root's: the agent's view is not its) */
    if (err != RP_OK) {
        rp_log_error("%s: %s", state_dir,
                     err == RP_ERR_NOT_FOUND ? "no such state directory (provision it first)"
                                             : "refused (said above)");
        return 1;
    }
    lock_fd = take_lock(state_dir);
    if (lock_fd < 0)
        return 1;
    /* The app supervisor first: it must hold nothing of the root of trust, and its compartments
     * must not inherit the monitor's seccomp filter (apps.h says why). */
    m.apps_pid = rp_apps_spawn(state_dir, &m.apps_fd);
    if (m.apps_pid < 0) {
        rp_log_error("cannot start the app supervisor: %s", strerror(errno));
        return 1;
    }
    m.trial =
        (rp_apps_trial_ctx_t){.fd = -1, .agent = &m.agent, .chans = &m.chans, .broker = &m.broker};
    for (int i = 0; i < RP_COMPONENTS_MAX; i++)
        m.chans.e[i].g.fd = -1;
    m.broker = -1;
    m.broker_backoff = 1;
    if (rp_apps_chans_spent_take(&m.chans) != RP_OK) {
        rp_log_error("cannot map the page an install child hands its spent rates back on");
        return 1;
    }
    rp_monitor_set_trial(rp_apps_trial, &m.trial);
    rp_monitor_set_parser(rp_apps_md_parse, &m.apps_fd); /* metadata's JSON: rampart-unpack's */
    /* The TPM's one user: what an earlier run killed with objects loaded (kill -9, OOM, the
     * watchdog) left in a TPM without a resource manager is flushed before the key is loaded
     * (rot.h). None of that run's processes lives: each holds the lock take_lock took above. */
    err = rp_agent_open(&m.agent, state_dir, NULL, true);
    if (err != RP_OK) {
        rp_log_error("%s: cannot open the root of trust: %s", state_dir, rp_strerror(err));
        return 1;
    }
    /* What an older version kept as JSON: migrated once, read by rampart-unpack (docs/monitor.md,
     * "Upgrading"). A refusal is said, naming the file, and the file stays refused. */
    {
        const rp_update_migration_t how = {rp_apps_md_unpack, &m.apps_fd, rp_apps_md_parse,
                                           &m.apps_fd};
        (void)rp_update_migrate_all(state_dir, m.agent.device_id, &how); /* said there */
    }
    if (m.agent_uid != (uid_t)-1 &&
        rp_monitor_agent_dir(state_dir, m.agent_uid, m.agent_gid) != RP_OK) {
        rp_log_error("%s: cannot make the agent's directory for --agent-user %s (said above)",
                     state_dir, user);
        return 1;
    }
    /* Recovery takes the slots' lock as the agent's commands do (waiting: nothing is served
     * yet). */
    slots_lock = rp_monitor_slots_lock(state_dir, true);
    if (slots_lock >= 0)
        rp_components_sweep(state_dir); /* what a kill -9 left of a state's write */
    err = slots_lock >= 0 ? rp_components_recover(&m.agent, &unbootable) : RP_ERR_IO;
    if (slots_lock >= 0)
        close(slots_lock);
    if (err != RP_OK)
        rp_log_error("recovery failed: %s", rp_strerror(err));
    else if (unbootable > 0)
        rp_log_warn("%d component(s) hold no verified image (said above)", unbootable);
    if (err == RP_OK)
        finish_removals();
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGCHLD); /* the install child, the app supervisor */
    signal(SIGPIPE, SIG_IGN);
    if (err == RP_OK && sigprocmask(SIG_BLOCK, &sigs, NULL) == 0 &&
        (sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) >= 0 && (lfd = listen_on(m.sock_path)) >= 0 &&
        rp_sandbox_enter() == RP_OK) {
        rp_log_info("serving %s on %s (device %s)", state_dir, m.sock_path, m.agent.device_id);
        apps_sync();
        rp_notify("READY=1\nSTATUS=serving %s", state_dir);
        rc = loop(lfd, sfd);
    }
    /* An install under way finishes or is cut (install_stop); then every app stops, and the
     * supervisor leaves nothing behind. */
    if (m.install_pid > 0)
        install_stop(sfd);
    if (m.apps_pid > 0 && kill(m.apps_pid, SIGTERM) == 0) {
        int st;
        while (waitpid(m.apps_pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    for (int i = 0; i < CLIENTS_MAX; i++)
        if (m.clients[i].fd >= 0)
            drop(&m.clients[i]);
    if (lfd >= 0) {
        close(lfd);
        unlink(m.sock_path);
    }
    rp_agent_close(&m.agent);
    close(lock_fd);
    return rc;
}
