/*
 * Landlock's audit records: the parser (hostile text, bounded) and the app supervisor's reader
 * (audit.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* setns */
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "rampart/text.h"

#ifndef AUDIT_NLGRP_READLOG
#define AUDIT_NLGRP_READLOG 1
#endif

/* ---------------------------------------------------------------- the parser */

#define VALUE_MAX 512 /* a value kept: longer ones are cut (a reason shows at most ~200 of it) */

typedef struct fields {
    char domain[24], blockers[128], status[16], pid[16], path[VALUE_MAX], daddr[64], dest[8],
        saddr[64], src[8], opid[16];
} fields_t;

/* Keep v[0..n) in out (cap bytes), printable ASCII only: every other byte becomes '?'. Audit
 * writes an untrusted string (a path) that holds anything but printable ASCII (or '"', a space)
 * in hex, unquoted: such a value (literal false) is decoded first (as much of it as out can
 * show). A value cut ends in "...". */
static void keep(const char *v, size_t n, bool literal, char *out, size_t cap)
{
    uint8_t raw[VALUE_MAX];
    size_t m = n / 2 < cap ? n / 2 : cap, o = 0;
    const uint8_t *b = (const uint8_t *)v;

    if (!literal && n > 0 && n % 2 == 0 && m <= sizeof(raw) &&
        rp_hex_decode(v, 2 * m, raw, m) == RP_OK) {
        b = raw;
        n /= 2;
    }
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        out[o++] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '?';
    out[o] = '\0';
    if (o + 1 == cap && cap > 4 && n > o)
        memcpy(out + cap - 4, "...", 4);
}

static bool digits(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* The fields of "k=v k=\"v\" ...": the ones this reader uses, each bounded. */
static rp_err_t split(const char *t, size_t len, fields_t *f)
{
    static const struct {
        const char *key;
        size_t off, cap;
        bool untrusted; /* audit writes it in hex when it holds more than printable ASCII */
    } want[] = {
#define F(k, u) {#k, offsetof(fields_t, k), sizeof(((fields_t *)0)->k), u}
        F(domain, false), F(blockers, false), F(status, false), F(pid, false), F(path, true),
        F(daddr, false),  F(dest, false),     F(saddr, false),  F(src, false), F(opid, false),
#undef F
    };
    size_t i = 0;

    memset(f, 0, sizeof(*f));
    while (i < len) {
        size_t k, v, vend;
        bool quoted = false;
        while (i < len && t[i] == ' ')
            i++;
        k = i;
        while (i < len && t[i] != '=' && t[i] != ' ')
            i++;
        if (i >= len || t[i] != '=')
            return i >= len && k == i ? RP_OK : RP_ERR_MALFORMED;
        size_t klen = i - k;
        i++; /* '=' */
        if (i < len && t[i] == '"') {
            quoted = true;
            v = ++i;
            while (i < len && t[i] != '"')
                i++;
            if (i >= len)
                return RP_ERR_MALFORMED;
            vend = i++;
        } else {
            v = i;
            while (i < len && t[i] != ' ')
                i++;
            vend = i;
        }
        for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++)
            if (strlen(want[w].key) == klen && memcmp(want[w].key, t + k, klen) == 0)
                keep(t + v, vend - v, quoted || !want[w].untrusted, (char *)f + want[w].off,
                     want[w].cap);
    }
    return RP_OK;
}

/* What a blocker refuses, for a person: the object (a path, a port) follows. */
static const struct {
    const char *blocker, *what;
} whats[] = {
    {"fs.execute",                 "execution of "                          },
    {"fs.write_file",              "write to "                              },
    {"fs.read_file",               "read of "                               },
    {"fs.read_dir",                "listing of "                            },
    {"fs.remove_dir",              "removing a directory in "               },
    {"fs.remove_file",             "removing a file in "                    },
    {"fs.make_char",               "making a character device in "          },
    {"fs.make_dir",                "making a directory in "                 },
    {"fs.make_reg",                "making a file in "                      },
    {"fs.make_sock",               "making a socket in "                    },
    {"fs.make_fifo",               "making a FIFO in "                      },
    {"fs.make_block",              "making a block device in "              },
    {"fs.make_sym",                "making a symbolic link in "             },
    {"fs.refer",                   "linking or renaming to or from "        },
    {"fs.truncate",                "truncation of "                         },
    {"fs.ioctl_dev",               "ioctl on "                              },
    {"fs.change_topology",         "mounting on "                           },
    {"net.bind_tcp",               "TCP bind to port "                      },
    {"net.connect_tcp",            "TCP connect to port "                   },
    {"scope.abstract_unix_socket", "connecting to the abstract Unix socket "},
    {"scope.signal",               "a signal to pid "                       },
};

static bool first_is(const char *blockers, size_t first, const char *b)
{
    return strlen(b) == first && memcmp(blockers, b, first) == 0;
}

/* "write to /etc/passwd refused by Landlock"; with more than one blocker, all of them after it
 * ("(fs.make_reg,fs.refer)"). The object is cut to 180 characters ("..."), so that the
 * sentence's end always fits. */
static void refusal_reason(const fields_t *f, char *out, size_t cap)
{
    size_t first = strcspn(f->blockers, ",");
    const char *what = NULL, *object = f->path;
    char obj[VALUE_MAX + 80];
    bool more = f->blockers[first] != '\0';
    int n;

    for (size_t i = 0; i < sizeof(whats) / sizeof(whats[0]) && what == NULL; i++)
        if (first_is(f->blockers, first, whats[i].blocker))
            what = whats[i].what;
    if (first_is(f->blockers, first, "net.connect_tcp")) {
        snprintf(obj, sizeof(obj), "%s%s%s%s", f->dest, f->daddr[0] ? " (" : "", f->daddr,
                 f->daddr[0] ? ")" : "");
        object = obj;
    } else if (first_is(f->blockers, first, "net.bind_tcp"))
        object = f->src;
    else if (first_is(f->blockers, first, "scope.signal"))
        object = f->opid;
    if (object[0] == '\0')
        object = "?";
    if (what == NULL) /* a blocker this reader does not know: named as the kernel names it */
        n = snprintf(out, cap, "%s on %.180s%s refused by Landlock", f->blockers, object,
                     strlen(object) > 180 ? "..." : "");
    else
        n = snprintf(out, cap, "%s%.180s%s refused by Landlock%s%s%s", what, object,
                     strlen(object) > 180 ? "..." : "", more ? " (" : "", more ? f->blockers : "",
                     more ? ")" : "");
    if (n < 0 || (size_t)n >= cap) /* cut: say so */
        memcpy(out + cap - 4, "...", 4);
}

rp_err_t rp_audit_parse(int type, const char *text, size_t len, rp_audit_record_t *out)
{
    static const char head[] = "audit(";
    fields_t f;
    size_t i = sizeof(head) - 1;
    uint64_t serial = 0;
    char *end;

    if (text == NULL || out == NULL)
        return RP_ERR_INVALID_ARG;
    if (type != RP_AUDIT_LANDLOCK_ACCESS && type != RP_AUDIT_LANDLOCK_DOMAIN)
        return RP_ERR_NOT_FOUND;
    if (len > RP_AUDIT_RECORD_MAX)
        return RP_ERR_TOO_LARGE;
    memset(out, 0, sizeof(*out));
    /* "audit(SECONDS.MILLIS:SERIAL): " */
    if (len < i || memcmp(text, head, i) != 0)
        return RP_ERR_MALFORMED;
    while (i < len && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.'))
        i++;
    if (i >= len || text[i++] != ':')
        return RP_ERR_MALFORMED;
    if (i >= len || text[i] < '0' || text[i] > '9')
        return RP_ERR_MALFORMED;
    for (size_t d = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++, d++) {
        if (d >= 19)
            return RP_ERR_MALFORMED;
        serial = serial * 10 + (uint64_t)(text[i] - '0');
    }
    if (len - i < 2 || text[i] != ')' || text[i + 1] != ':')
        return RP_ERR_MALFORMED;
    i += 2;
    if (split(text + i, len - i, &f) != RP_OK)
        return RP_ERR_MALFORMED;
    if (f.domain[0] == '\0' || strlen(f.domain) > 16)
        return RP_ERR_MALFORMED;
    if (strspn(f.domain, "0123456789abcdef") != strlen(f.domain))
        return RP_ERR_MALFORMED;
    out->domain = strtoull(f.domain, &end, 16);
    out->serial = serial;
    if (type == RP_AUDIT_LANDLOCK_DOMAIN) {
        if (strcmp(f.status, "deallocated") == 0) {
            out->kind = RP_AUDIT_DOMAIN_GONE;
            return RP_OK;
        }
        if (strcmp(f.status, "allocated") != 0 || !digits(f.pid, 9))
            return RP_ERR_MALFORMED;
        out->kind = RP_AUDIT_DOMAIN_NEW;
        out->pid = (pid_t)strtol(f.pid, &end, 10);
        return out->pid > 0 ? RP_OK : RP_ERR_MALFORMED;
    }
    if (f.blockers[0] == '\0')
        return RP_ERR_MALFORMED;
    out->kind = RP_AUDIT_REFUSAL;
    refusal_reason(&f, out->reason, sizeof(out->reason));
    /* (keep() let only printable ASCII through: the one rule checked all the same) */
    return rp_text_no_controls(out->reason) ? RP_OK : RP_ERR_MALFORMED;
}

/* ---------------------------------------------------------------- the reader */

/* A NETLINK_AUDIT request and its acknowledgement (or, for AUDIT_GET, its answer). */
static int ask(int fd, uint16_t type, const void *body, size_t blen, struct audit_status *st)
{
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
    req.h.nlmsg_seq = 1;
    if (blen > 0)
        memcpy(&req.s, body, blen);
    if (sendto(fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -1;
    /* GET: an acknowledgement, then the status (either order); SET: the acknowledgement. */
    for (int k = 0; k < 2; k++) {
        ssize_t n = recv(fd, u.buf, sizeof(u.buf), 0);
        if (n < (ssize_t)NLMSG_HDRLEN || u.align.nlmsg_len > (size_t)n)
            return -1;
        if (u.align.nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *e = NLMSG_DATA(&u.align);
            if (u.align.nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                return -1;
            if (e->error != 0)
                return errno = -e->error, -1;
            if (st == NULL)
                return 0;
        } else if (u.align.nlmsg_type == AUDIT_GET && st != NULL) {
            if (u.align.nlmsg_len < NLMSG_LENGTH(offsetof(struct audit_status, backlog_limit)))
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

/* Audit on (Landlock writes nothing while it is off), on a socket of its own: a request binds
 * it to a port of its own, and the reader's binds to the group alone. 0, or -1 with why. */
static int audit_on(char *why, size_t cap)
{
    struct audit_status st, on;
    struct timeval tv = {.tv_sec = 2}; /* the kernel answers at once: this bounds a lost one */
    int fd = audit_socket(why, cap);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        ask(fd, AUDIT_GET, NULL, 0, &st) != 0) {
        snprintf(why, cap, "the audit status cannot be read: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (st.enabled == 0) { /* on, host-wide (docs/compartments.md) */
        memset(&on, 0, sizeof(on));
        on.mask = AUDIT_STATUS_ENABLED;
        on.enabled = 1;
        if (ask(fd, AUDIT_SET, &on, sizeof(on), NULL) != 0) {
            snprintf(why, cap, "audit is off and cannot be turned on: %s", strerror(errno));
            close(fd);
            return -1;
        }
        rp_log_info("audit was off: turned on, so that Landlock reports apps' refusals");
    }
    close(fd);
    return 0;
}

void rp_audit_open(rp_audit_t *au)
{
    struct sockaddr_nl group = {.nl_family = AF_NETLINK, .nl_groups = AUDIT_NLGRP_READLOG};
    int fd;

    memset(au, 0, sizeof(au[0]));
    au->fd = -1;
    if (audit_on(au->why, sizeof(au->why)) != 0)
        return;
    fd = audit_socket(au->why, sizeof(au->why));
    if (fd < 0)
        return;
    if (bind(fd, (struct sockaddr *)&group, sizeof(group)) != 0) {
        snprintf(au->why, sizeof(au->why), "the audit records cannot be read: %s", strerror(errno));
        close(fd);
        return;
    }
    au->fd = fd;
}

int rp_audit_fd(const rp_audit_t *au)
{
    return au->fd;
}

static pid_t domain_init(const rp_audit_t *au, uint64_t domain)
{
    for (size_t i = 0; i < RP_AUDIT_DOMAINS; i++)
        if (au->domains[i].init > 0 && au->domains[i].domain == domain)
            return au->domains[i].init;
    return 0;
}

static void take(rp_audit_t *au, const rp_audit_record_t *r, const rp_audit_hooks_t *hooks)
{
    pid_t init;

    switch (r->kind) {
    case RP_AUDIT_REFUSAL:
        init = domain_init(au, r->domain);
        if (init > 0)
            hooks->refused(init, r->reason, hooks->ctx);
        else { /* its domain's first refusal: the LANDLOCK_DOMAIN record follows */
            au->held[au->next_held] = *r;
            au->holding[au->next_held] = true;
            au->next_held = (au->next_held + 1) % RP_AUDIT_HELD;
        }
        break;
    case RP_AUDIT_DOMAIN_NEW:
        if (domain_init(au, r->domain) == 0 && hooks->ours(r->pid, hooks->ctx)) {
            au->domains[au->next].domain = r->domain;
            au->domains[au->next].init = r->pid;
            au->next = (au->next + 1) % RP_AUDIT_DOMAINS;
        }
        init = domain_init(au, r->domain);
        for (size_t i = 0; i < RP_AUDIT_HELD; i++)
            if (au->holding[i] && au->held[i].domain == r->domain) {
                au->holding[i] = false; /* (not ours: dropped) */
                if (init > 0)
                    hooks->refused(init, au->held[i].reason, hooks->ctx);
            }
        break;
    case RP_AUDIT_DOMAIN_GONE:
        for (size_t i = 0; i < RP_AUDIT_DOMAINS; i++)
            if (au->domains[i].domain == r->domain)
                au->domains[i].init = 0;
        break;
    }
}

void rp_audit_handle(rp_audit_t *au, const rp_audit_hooks_t *hooks)
{
    rp_audit_record_t r;

    for (int k = 0; au->fd >= 0 && k < RP_AUDIT_PER_WAKE; k++) {
        ssize_t n = recv(au->fd, au->buf, sizeof(au->buf), MSG_DONTWAIT | MSG_TRUNC);
        const struct nlmsghdr *h = (const struct nlmsghdr *)(void *)au->buf;
        if (n < 0) {
            if (errno == ENOBUFS) /* the kernel dropped records: our buffer was full */
                rp_log_warn("audit records were lost (too many at once): some Landlock refusals "
                            "make no event");
            else if (errno != EAGAIN && errno != EINTR)
                rp_log_warn("audit records cannot be read: %s", strerror(errno));
            if (errno != ENOBUFS)
                return;
            continue;
        }
        /* One record a datagram; one longer than any record is refused whole. */
        if ((size_t)n > sizeof(au->buf) || n < (ssize_t)NLMSG_HDRLEN || h->nlmsg_len > (size_t)n ||
            h->nlmsg_len < NLMSG_HDRLEN)
            continue;
        if (rp_audit_parse(h->nlmsg_type, (const char *)NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN,
                           &r) == RP_OK)
            take(au, &r, hooks);
    }
}

void rp_audit_note_missing(const rp_audit_t *au, int landlock_abi, char *missing, size_t cap)
{
    size_t len = strlen(missing);

    if (landlock_abi <= 0 || len + 1 >= cap)
        return;
    if (landlock_abi < 7)
        snprintf(missing + len, cap - len,
                 "%sLandlock refusals are not seen (the kernel's Landlock ABI is below 7)",
                 len ? "; " : "");
    else if (au->fd < 0)
        snprintf(missing + len, cap - len, "%sLandlock refusals are not seen (%s)", len ? "; " : "",
                 au->why);
}

void rp_audit_close(rp_audit_t *au)
{
    if (au->fd >= 0)
        close(au->fd);
    au->fd = -1;
}
