/*
 * The app supervisor's side of `rampart-unpack read` (evreader.h): the sockets that need privilege,
 * the reader's start and restart, its records checked and taken.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* setns */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evreader.h"
#include "rampart/log.h"
#include "unpack.h"

#ifndef AUDIT_NLGRP_READLOG
#define AUDIT_NLGRP_READLOG 1
#endif

/* ---------------------------------------------------------------- the audit socket */

/* A NETLINK_AUDIT request and its acknowledgement (or, for AUDIT_GET, its answer). The socket may
 * be asked again (the supervisor's lost counter, each tick): what an earlier request left (the
 * kernel sends AUDIT_GET's answer from a thread of its own, so it and the acknowledgement come in
 * either order) is read off first, and only answers with this request's number are taken. */
static int ask(int fd, uint16_t type, const void *body, size_t blen, struct audit_status *st)
{
    static uint32_t seq;
    struct {
        struct nlmsghdr h;
        struct audit_status s;
    } req;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    union {
        char buf[1024];
        struct nlmsghdr align;
    } u;

    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = (uint32_t)NLMSG_LENGTH(blen);
    req.h.nlmsg_type = type;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.h.nlmsg_seq = ++seq;
    if (blen > 0)
        memcpy(&req.s, body, blen);
    for (int k = 0; k < 4 && recv(fd, u.buf, sizeof(u.buf), MSG_DONTWAIT) >= 0; k++)
        ; /* (an earlier request's late answers) */
    if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -1;
    /* GET: an acknowledgement and the status (either order); SET: the acknowledgement. */
    for (int k = 0; k < 4; k++) {
        ssize_t n = recv(fd, u.buf, sizeof(u.buf), 0);
        if (n < (ssize_t)NLMSG_HDRLEN || u.align.nlmsg_len > (size_t)n)
            return -1;
        if (u.align.nlmsg_seq != req.h.nlmsg_seq)
            continue; /* an earlier request's, come late */
        if (u.align.nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *e = NLMSG_DATA(&u.align);
            if (u.align.nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                return -1;
            if (e->error != 0)
                return errno = -e->error, -1;
            if (st == NULL)
                return 0;
        } else if (u.align.nlmsg_type == AUDIT_GET && st != NULL) {
            /* (up to lost: every kernel with Landlock sends the whole struct) */
            if (u.align.nlmsg_len < NLMSG_LENGTH(offsetof(struct audit_status, backlog)))
                return -1;
            memset(st, 0, sizeof(*st));
            memcpy(st, NLMSG_DATA(&u.align),
                   u.align.nlmsg_len - NLMSG_HDRLEN < sizeof(*st) ? u.align.nlmsg_len - NLMSG_HDRLEN
                                                                  : sizeof(*st));
            return 0;
        }
    }
    return -1;
}

/* The kernel sends audit records only to sockets of the initial network namespace: a monitor
 * started in another one (a test's) makes its socket there and comes back. That namespace is
 * kthreadd's (pid 2: the kernel's threads never leave it; pid 1 may refuse even root a look at its
 * namespaces, as on this project's machine). One that cannot be found leaves the reader off,
 * never reading an empty group. */
static int audit_socket(char *why, size_t cap)
{
    struct stat own, init;
    char comm[32] = "";
    int back = -1, ns = -1, fd;
    FILE *f = fopen("/proc/2/comm", "re");

    if (f == NULL || fgets(comm, sizeof(comm), f) == NULL || strcmp(comm, "kthreadd\n") != 0 ||
        stat("/proc/self/ns/net", &own) != 0 || stat("/proc/2/ns/net", &init) != 0) {
        if (f != NULL)
            fclose(f);
        snprintf(why, cap, "the initial network namespace cannot be found (kthreadd's)");
        return -1;
    }
    fclose(f);
    if (own.st_ino != init.st_ino || own.st_dev != init.st_dev) {
        back = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        ns = open("/proc/2/ns/net", O_RDONLY | O_CLOEXEC);
        if (back < 0 || ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
            snprintf(why, cap, "cannot enter the initial network namespace: %s", strerror(errno));
            if (back >= 0)
                close(back);
            if (ns >= 0)
                close(ns);
            return -1;
        }
        close(ns);
    }
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
    if (fd < 0)
        snprintf(why, cap, "no audit socket: %s", strerror(errno));
    if (back >= 0) {
        if (setns(back, CLONE_NEWNET) != 0) {
            /* never left in the wrong namespace: the supervisor cannot go on there */
            rp_log_error("cannot return to the monitor's network namespace: %s", strerror(errno));
            _exit(1);
        }
        close(back);
    }
    return fd;
}

/* A request socket (a request binds it to a port of its own; the reader's binds to the group
 * alone) with the audit status read on it: the socket, or -1 with why. */
static int audit_status(struct audit_status *st, char *why, size_t cap)
{
    struct timeval tv = {.tv_sec = 2}; /* the kernel answers at once: this bounds a lost one */
    int fd = audit_socket(why, cap);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        ask(fd, AUDIT_GET, NULL, 0, st) != 0) {
        snprintf(why, cap, "the audit status cannot be read: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int audit_set(int fd, uint32_t enabled)
{
    struct audit_status on;
    memset(&on, 0, sizeof(on));
    on.mask = AUDIT_STATUS_ENABLED;
    on.enabled = enabled;
    return ask(fd, AUDIT_SET, &on, sizeof(on), NULL);
}

/* Audit on (Landlock writes nothing while it is off). Its request socket, kept for the lost
 * counter (*turned: whether it was off and this turned it on), or -1 with why. */
static int audit_on(bool *turned, char *why, size_t cap)
{
    struct audit_status st;
    int fd = audit_status(&st, why, cap);

    *turned = false;
    if (fd < 0)
        return -1;
    if (st.enabled == 0) { /* on, host-wide (docs/compartments.md) */
        if (audit_set(fd, 1) != 0) {
            snprintf(why, cap, "audit is off and cannot be turned on: %s", strerror(errno));
            close(fd);
            return -1;
        }
        *turned = true;
        rp_log_info("audit was off: turned on, so that Landlock reports apps' refusals");
    }
    return fd;
}

int rp_evreader_audit_enabled(void)
{
    struct audit_status st;
    char why[200];
    int fd = audit_status(&st, why, sizeof(why));

    if (fd < 0)
        return -1;
    close(fd);
    return (int)st.enabled;
}

rp_err_t rp_evreader_audit_switch(bool on, char *why, size_t cap)
{
    struct audit_status st;
    int fd = audit_status(&st, why, cap);

    if (fd < 0)
        return RP_ERR_IO;
    if (st.enabled == 2) {
        snprintf(why, cap, "audit is locked");
        close(fd);
        return RP_ERR_DENIED;
    }
    if (st.enabled != (on ? 1u : 0u) && audit_set(fd, on ? 1 : 0) != 0) {
        snprintf(why, cap, "%s", strerror(errno));
        close(fd);
        return RP_ERR_IO;
    }
    close(fd);
    return RP_OK;
}

/* The bound audit socket (and *req, the request socket, the supervisor's), or -1 with why. */
static int audit_open(bool *turned, int *req, char *why, size_t cap)
{
    struct sockaddr_nl group = {.nl_family = AF_NETLINK, .nl_groups = AUDIT_NLGRP_READLOG};
    int fd;

    *req = audit_on(turned, why, cap);
    if (*req < 0)
        return -1;
    fd = audit_socket(why, cap);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&group, sizeof(group)) != 0) {
        snprintf(why, cap, "the audit records cannot be read: %s", strerror(errno));
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        close(*req);
        *req = -1;
    }
    return fd;
}

/* ---------------------------------------------------------------- the reader */

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static bool limit(int res, rlim_t n)
{
    struct rlimit rl = {n, n};
    return setrlimit(res, &rl) == 0;
}

/* In the child: the pair on stdin, the sockets as 3 and 4 (absent: /dev/null, and argv says
 * "-"), limits, then the unpack user and the exec (rp_unpack_exec). Never returns. */
static void reader_child(const rp_evreader_t *r, int end)
{
    char *argv[] = {"rampart-unpack", "read", r->audit_fd >= 0 ? "audit" : "-",
                    r->nflog_fd >= 0 ? "nflog" : "-", NULL};
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int in = fcntl(end, F_DUPFD_CLOEXEC, 10);
    int audit = fcntl(r->audit_fd >= 0 ? r->audit_fd : null, F_DUPFD_CLOEXEC, 10);
    int nflog = fcntl(r->nflog_fd >= 0 ? r->nflog_fd : null, F_DUPFD_CLOEXEC, 10);

    if (null < 0 || in < 0 || audit < 0 || nflog < 0 || dup2(in, STDIN_FILENO) < 0 ||
        dup2(audit, 3) < 0 || dup2(nflog, 4) < 0 || !limit(RLIMIT_CORE, 0) ||
        !limit(RLIMIT_NOFILE, 16) || !limit(RLIMIT_FSIZE, 0))
        _exit(126);
    rp_unpack_exec(r->helper, argv, 5);
}

static void start(rp_evreader_t *r)
{
    int sv[2];
    pid_t pid;

    r->restart_ms = 0;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 || (pid = fork()) < 0) {
        rp_log_error("the event reader cannot start: %s", strerror(errno));
        r->restart_ms = now_ms() + r->backoff_ms;
        return;
    }
    if (pid == 0)
        reader_child(r, sv[1]);
    close(sv[1]);
    r->chan = sv[0];
    r->pid = pid;
    r->started_ms = now_ms();
}

void rp_evreader_open(rp_evreader_t *r, bool audit, int nflog_fd, const char *helper)
{
    memset(r, 0, sizeof(*r));
    r->chan = -1;
    r->nflog_fd = nflog_fd;
    r->backoff_ms = 1000;
    r->audit_fd = -1;
    r->audit_req = -1;
    if (audit)
        r->audit_fd = audit_open(&r->audit_on_by_us, &r->audit_req, r->why, sizeof(r->why));
    else
        snprintf(r->why, sizeof(r->why), "not asked for");
    if (helper != NULL && strlen(helper) < sizeof(r->helper))
        strcpy(r->helper, helper);
    else if (rp_unpack_beside("rampart-unpack", r->helper, sizeof(r->helper)) != RP_OK) {
        rp_log_error("rampart-unpack cannot be found: no refusal of the kernel's is seen");
        return;
    }
    if (r->audit_fd >= 0 || r->nflog_fd >= 0)
        start(r);
}

int rp_evreader_fd(const rp_evreader_t *r)
{
    return r->chan;
}

/* The reader is gone (or said something outside the protocol): reap it, say so once, plan. */
static void gone(rp_evreader_t *r, const char *how)
{
    int st = 0;

    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    close(r->chan);
    r->chan = -1;
    r->pid = 0;
    r->deaths++;
    if (now_ms() - r->started_ms >= RP_EVREADER_STEADY_MS)
        r->backoff_ms = 1000;
    rp_log_warn("the event reader %s (status %d; %" PRIu64 " time(s) so far): restarted in %ld ms; "
                "refusals it had read and not sent are lost, the kernel keeps the rest until then",
                how, st, r->deaths, r->backoff_ms);
    r->restart_ms = now_ms() + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > RP_EVREADER_BACKOFF_MAX_MS ? RP_EVREADER_BACKOFF_MAX_MS
                                                                   : r->backoff_ms * 2;
}

void rp_evreader_handle(rp_evreader_t *r, const rp_evreader_hooks_t *hooks)
{
    for (int k = 0; r->chan >= 0 && k < RP_EVREADER_PER_WAKE; k++) {
        uint8_t buf[RP_READER_RECORD_LEN + 1];
        rp_reader_record_t rec;
        ssize_t n = recv(r->chan, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            gone(r, "died");
            return;
        }
        if (rp_reader_decode(buf, (size_t)n, &rec) != RP_OK) {
            gone(r, "sent a malformed record and was stopped");
            return;
        }
        rp_evreader_take(r, &rec, hooks);
    }
}

/* Whether a repeated warning is due (at most once per RP_EVREADER_SAY_MS), *said_ms moved. */
static bool say_due(int64_t *said_ms)
{
    int64_t now = now_ms();

    if (*said_ms != 0 && now - *said_ms < RP_EVREADER_SAY_MS)
        return false;
    *said_ms = now;
    return true;
}

void rp_evreader_kernel_lost(rp_evreader_t *r, uint32_t lost, const rp_evreader_hooks_t *hooks)
{
    char reason[RP_EVENT_REASON_MAX + 1];

    if (r->kernel_lost_known) { /* (a u32 that may wrap: the difference is right modulo 2^32) */
        r->kernel_lost_new += (uint32_t)(lost - r->kernel_lost);
        r->kernel_lost_all += (uint32_t)(lost - r->kernel_lost);
    }
    r->kernel_lost = lost;
    r->kernel_lost_known = true;
    if (r->kernel_lost_new == 0 || !say_due(&r->kernel_lost_said_ms))
        return;
    rp_log_warn("%" PRIu64 " kernel audit records lost (the kernel's audit queue was full; %" PRIu64
                " since this supervisor started): apps' Landlock refusals among them make no "
                "event",
                r->kernel_lost_new, r->kernel_lost_all);
    snprintf(reason, sizeof(reason), "%" PRIu64 " kernel audit records lost", r->kernel_lost_new);
    if (hooks != NULL && hooks->net != NULL)
        hooks->net(RP_EVENT_LANDLOCK, "", reason, hooks->ctx);
    r->kernel_lost_new = 0;
}

/* The kernel's lost counter read on the supervisor's request socket (rp_evreader_tick). */
static void kernel_lost(rp_evreader_t *r, const rp_evreader_hooks_t *hooks)
{
    struct audit_status st;

    if (r->audit_req < 0)
        return;
    if (ask(r->audit_req, AUDIT_GET, NULL, 0, &st) != 0) {
        rp_log_warn("the kernel's count of lost audit records cannot be read (%s): records it "
                    "drops are not said",
                    strerror(errno));
        close(r->audit_req);
        r->audit_req = -1;
        return;
    }
    rp_evreader_kernel_lost(r, st.lost, hooks);
}

void rp_evreader_tick(rp_evreader_t *r, const rp_evreader_hooks_t *hooks)
{
    if (r->chan < 0 && r->restart_ms != 0 && now_ms() >= r->restart_ms) {
        start(r);
        if (r->chan >= 0 && r->deaths > 0)
            rp_log_info("the event reader runs again (pid %d)", (int)r->pid);
    }
    kernel_lost(r, hooks);
}

static pid_t domain_init(const rp_evreader_t *r, uint64_t domain)
{
    for (size_t i = 0; i < RP_EVREADER_DOMAINS; i++)
        if (r->domains[i].init > 0 && r->domains[i].domain == domain)
            return r->domains[i].init;
    return 0;
}

void rp_evreader_take(rp_evreader_t *r, const rp_reader_record_t *rec,
                      const rp_evreader_hooks_t *hooks)
{
    pid_t init;
    const char *component = "?";
    rp_evreader_owner_t owner;

    switch (rec->kind) {
    case RP_READER_LANDLOCK:
        init = domain_init(r, rec->domain);
        if (init > 0)
            hooks->refused(init, rec->reason, hooks->ctx);
        else { /* its domain's first refusal: the LANDLOCK_DOMAIN record follows */
            r->held[r->next_held] = *rec;
            r->holding[r->next_held] = true;
            r->next_held = (r->next_held + 1) % RP_EVREADER_HELD;
        }
        break;
    case RP_READER_DOMAIN_NEW:
        owner = domain_init(r, rec->domain) == 0 && hooks->ours != NULL
                    ? hooks->ours((pid_t)rec->number, rec->uid, &component, hooks->ctx)
                    : RP_EVREADER_NOT_OURS;
        if (owner == RP_EVREADER_OURS) {
            r->domains[r->next].domain = rec->domain;
            r->domains[r->next].init = (pid_t)rec->number;
            r->next = (r->next + 1) % RP_EVREADER_DOMAINS;
        } else if (owner == RP_EVREADER_OTHER_UID) { /* said, at most once a minute */
            r->other_uid++;
            r->other_uid_new++;
            if (say_due(&r->other_uid_said_ms)) {
                rp_log_warn("%s: a Landlock domain made by pid %u, its init's number, as uid %u, "
                            "not the app's: not the app's (a reused pid; %" PRIu64
                            " such domain(s) since last said, %" PRIu64 " in all)",
                            component, (unsigned)rec->number, (unsigned)rec->uid, r->other_uid_new,
                            r->other_uid);
                r->other_uid_new = 0;
            }
        }
        init = domain_init(r, rec->domain);
        for (size_t i = 0; i < RP_EVREADER_HELD; i++)
            if (r->holding[i] && r->held[i].domain == rec->domain) {
                r->holding[i] = false; /* (not ours: dropped) */
                if (init > 0)
                    hooks->refused(init, r->held[i].reason, hooks->ctx);
            }
        break;
    case RP_READER_DOMAIN_GONE:
        for (size_t i = 0; i < RP_EVREADER_DOMAINS; i++)
            if (r->domains[i].domain == rec->domain)
                r->domains[i].init = 0;
        break;
    case RP_READER_CONNECTION:
    case RP_READER_LISTEN:
        hooks->net(rec->kind == RP_READER_CONNECTION ? RP_EVENT_CONNECTION : RP_EVENT_LISTEN,
                   rec->component, rec->reason, hooks->ctx);
        break;
    case RP_READER_LOST_AUDIT:
        r->lost += rec->number;
        rp_log_warn("audit records were lost (too many at once): %u Landlock refusal(s) or "
                    "domain record(s) make no event",
                    (unsigned)rec->number);
        break;
    case RP_READER_LOST_NFLOG:
        r->lost += rec->number;
        rp_log_warn("netpolicy: refused packets were not logged (the log socket overran)");
        hooks->net(RP_EVENT_CONNECTION, "", "refused packets not logged: log overrun", hooks->ctx);
        break;
    default: break;
    }
}

void rp_evreader_record_net(rp_event_kind_t kind, const char *component, const char *reason,
                            void *ctx)
{
    if (rp_event_record(ctx, kind, component, reason) != RP_OK)
        rp_log_error("netpolicy: cannot record an event (%s %s)", component, reason);
}

void rp_evreader_note_missing(const rp_evreader_t *r, int landlock_abi, char *missing, size_t cap)
{
    size_t len = strlen(missing);

    if (landlock_abi <= 0 || len + 1 >= cap)
        return;
    if (landlock_abi < 7)
        snprintf(missing + len, cap - len,
                 "%sLandlock refusals are not seen (the kernel's Landlock ABI is below 7)",
                 len ? "; " : "");
    else if (r->audit_fd < 0)
        snprintf(missing + len, cap - len, "%sLandlock refusals are not seen (%s)", len ? "; " : "",
                 r->why);
}

void rp_evreader_close(rp_evreader_t *r)
{
    int st;

    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    r->pid = 0;
    if (r->chan >= 0)
        close(r->chan);
    r->chan = -1;
    if (r->audit_fd >= 0)
        close(r->audit_fd);
    r->audit_fd = -1;
    if (r->audit_req >= 0)
        close(r->audit_req);
    r->audit_req = -1;
}
