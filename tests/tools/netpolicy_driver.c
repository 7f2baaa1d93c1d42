/*
 * Test driver of the network policy (tests/e2e/netpolicy.sh), one binary with a mode per role:
 *
 *   monitor --state-dir S --slot N --component C [--allow H[:P]]... [--tcp P]... [--udp P]...
 *           [--refresh-ms MS] [--rival-slot N] [--resolver PATH]
 *       the monitor's side: rp_netpolicy_init, then an "app" child in new user, network and mount
 *       namespaces (what the compartment will make) with S/etc mounted read-only on its /etc,
 *       rp_netpolicy_setup, then events and re-resolution (every MS, and on SIGUSR1) until
 *       SIGTERM, which tears everything down. S/etc is written as the app's launcher writes its
 *       /etc (rp_launch_etc_write, then rp_launch_hosts_write at each change) from the
 *       addresses the policy hands over. Writes S/app.pid and S/app.addr once set up.
 *       With --rival-slot, first tries a second app wanting the same server ports (S/rival).
 *       The names are resolved by rampart-unpack (rp_unpack_resolve, as the monitor does), or
 *       by the program at --resolver PATH in its place (a hostile one, in a test).
 *   serve tcp|udp ADDR PORT TEXT     answer every connection / datagram with TEXT (udp: and
 *                                    print "datagram from ADDR" for each)
 *   connect HOST PORT                exit 0 and print what the server said, 1 refused, 3 no name
 *   udp HOST PORT                    one datagram; 0 answered, 1 refused, 2 no answer in 3 s
 *   dns SERVER NAME                  one DNS query (libresolv's res_mkquery) to SERVER:53, as udp
 *   resolve NAME                     print NAME's IPv4 addresses; 3 when it does not resolve
 *
 * The manifest is built from the flags (the manifest parser is tested on its own).
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "events.h"
#include "evreader.h"
#include "netpolicy.h"
#include "rampart/log.h"
#include "unpack.h"

#define WAIT_MS 5000

static int usage(void)
{
    fprintf(stderr,
            "usage: netpolicy-driver monitor|serve|connect|udp|dns|resolve|events|audit ...\n");
    return 64;
}

static int lookup(const char *host, const char *port, int socktype, struct sockaddr_in *out)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = socktype};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "%s does not resolve: %s\n", host, gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, sizeof(*out));
    freeaddrinfo(res);
    return 0;
}

static int cmd_resolve(const char *name)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "%s does not resolve: %s\n", name, gai_strerror(rc));
        return 3;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, a, sizeof(a));
        printf("%s\n", a);
    }
    freeaddrinfo(res);
    return 0;
}

static int cmd_connect(const char *host, const char *port)
{
    struct sockaddr_in sa;
    if (lookup(host, port, SOCK_STREAM, &sa) != 0)
        return 3;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        fprintf(stderr, "connect: %s\n", strerror(errno));
        return 1;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof(err);
    if (poll(&p, 1, WAIT_MS) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
        err != 0) {
        fprintf(stderr, "connect: %s\n", err ? strerror(err) : "no answer");
        return 1;
    }
    char buf[256];
    size_t got = 0;
    for (;;) {
        p.events = POLLIN;
        if (poll(&p, 1, WAIT_MS) != 1)
            break;
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == sizeof(buf) - 1)
            break;
    }
    buf[got] = '\0';
    printf("%s", buf);
    close(fd);
    return got > 0 ? 0 : 1;
}

static int udp_exchange(const char *host, const char *port, const void *msg, size_t len)
{
    struct sockaddr_in sa;
    if (lookup(host, port, SOCK_DGRAM, &sa) != 0)
        return 3;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return 1;
    if (send(fd, msg, len, 0) < 0) {
        fprintf(stderr, "send: %s\n", strerror(errno));
        return 1;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 3000) != 1) {
        fprintf(stderr, "no answer\n");
        return 2;
    }
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    if (n < 0) {
        fprintf(stderr, "recv: %s\n", strerror(errno));
        return 1;
    }
    buf[n] = '\0';
    printf("answered %zd bytes\n", n);
    close(fd);
    return 0;
}

static int cmd_dns(const char *server, const char *name)
{
    unsigned char q[512];
    int n = res_mkquery(QUERY, name, C_IN, T_A, NULL, 0, NULL, q, sizeof(q));
    if (n < 0)
        return 1;
    return udp_exchange(server, "53", q, (size_t)n);
}

static int cmd_serve(const char *proto, const char *addr, const char *port, const char *text)
{
    bool tcp = strcmp(proto, "tcp") == 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return usage();
    int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || (tcp && listen(fd, 16) != 0)) {
        fprintf(stderr, "serve %s %s:%s: %s\n", proto, addr, port, strerror(errno));
        return 1;
    }
    for (;;) {
        if (tcp) {
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                continue;
            if (write(c, text, strlen(text)) < 0 || write(c, "\n", 1) < 0)
                fprintf(stderr, "serve: write: %s\n", strerror(errno));
            close(c);
        } else {
            char buf[512];
            struct sockaddr_in from;
            socklen_t fl = sizeof(from);
            if (recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) < 0)
                continue;
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &from.sin_addr, a, sizeof(a));
            printf("datagram from %s\n", a); /* what arrived, for the test to count */
            fflush(stdout);
            (void)sendto(fd, text, strlen(text), 0, (struct sockaddr *)&from, fl);
        }
    }
}

/* "name", "name:port", "1.2.3.4", "1.2.3.4:port" as the manifest parser would leave them. */
static int add_allow(rp_manifest_t *m, const char *arg)
{
    if (m->nconnections == RP_MANIFEST_CONNECTIONS_MAX)
        return -1;
    rp_manifest_host_t *h = &m->connections[m->nconnections++];
    snprintf(h->host, sizeof(h->host), "%s", arg);
    char *colon = strrchr(h->host, ':');
    if (colon) {
        *colon = '\0';
        h->port = (uint16_t)atoi(colon + 1);
    }
    struct in_addr a;
    h->is_ip = inet_pton(AF_INET, h->host, &a) == 1;
    return 0;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        perror(path);
        exit(1);
    }
}

/*
 * --rival-slot: a second app, "rival", asks for the same server ports. Its setup must be refused,
 * and leave nothing of its own behind nor take anything of the first app's (the test then checks
 * that the first app's ports still work). Returns what happened, for S/rival.
 */
static const char *rival(rp_netpolicy_t *np, const rp_manifest_t *first, uint32_t slot)
{
    static rp_manifest_t m;
    static rp_netpolicy_app_t app;
    snprintf(m.component_id, sizeof(m.component_id), "rival");
    memcpy(m.tcp_ports, first->tcp_ports, sizeof(m.tcp_ports));
    m.ntcp_ports = first->ntcp_ports;
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0)
        return "error\n";
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(go[1]);
        if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
            _exit(1);
        while (read(go[0], &c, 1) > 0) {
        }
        _exit(0);
    }
    close(go[0]);
    /* Wait until the child is in its own namespace (its ns link differs from ours). */
    char mine[64], theirs[64], path[64];
    ssize_t a = readlink("/proc/self/ns/net", mine, sizeof(mine) - 1), b;
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)child);
    do {
        b = readlink(path, theirs, sizeof(theirs) - 1);
    } while (a > 0 && b == a && memcmp(mine, theirs, (size_t)a) == 0);
    rp_err_t err = rp_netpolicy_setup(np, child, &m, slot, &app);
    if (err == RP_OK)
        rp_netpolicy_teardown(np, &app);
    close(go[1]);
    waitpid(child, NULL, 0);
    return err == RP_OK ? "accepted\n" : "refused\n";
}

/* The monitor's re-resolution, and the launcher's rewrite of the hosts file when it changed. */
static void refresh(rp_netpolicy_t *np, rp_netpolicy_app_t *app, const rp_manifest_t *m, int etc_fd)
{
    char why[300];
    bool changed = false;
    if (rp_netpolicy_refresh(np, app, &changed) != RP_OK)
        fprintf(stderr, "refresh failed\n");
    if (changed && rp_launch_hosts_write(etc_fd, m, &app->hosts, why, sizeof(why)) != 0)
        fprintf(stderr, "hosts: %s\n", why);
}

static int cmd_monitor(int argc, char **argv)
{
    static rp_manifest_t m;
    const char *state = NULL;
    unsigned slot = 0;
    long refresh_ms = -1;
    int rival_slot = -1;
    const char *resolver = RP_TEST_UNPACK;
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--state-dir") == 0)
            state = v;
        else if (strcmp(k, "--slot") == 0)
            slot = (unsigned)atoi(v);
        else if (strcmp(k, "--component") == 0)
            snprintf(m.component_id, sizeof(m.component_id), "%s", v);
        else if (strcmp(k, "--allow") == 0 && add_allow(&m, v) == 0)
            continue;
        else if (strcmp(k, "--tcp") == 0 && m.ntcp_ports < RP_MANIFEST_PORTS_MAX)
            m.tcp_ports[m.ntcp_ports++] = (uint16_t)atoi(v);
        else if (strcmp(k, "--udp") == 0 && m.nudp_ports < RP_MANIFEST_PORTS_MAX)
            m.udp_ports[m.nudp_ports++] = (uint16_t)atoi(v);
        else if (strcmp(k, "--refresh-ms") == 0)
            refresh_ms = atol(v);
        else if (strcmp(k, "--rival-slot") == 0)
            rival_slot = atoi(v);
        else if (strcmp(k, "--resolver") == 0)
            resolver = v;
        else
            return usage();
    }
    if (!state || !m.component_id[0])
        return usage();
    char etc[4200];
    snprintf(etc, sizeof(etc), "%s/etc", state);
    if (mkdir(etc, 0755) != 0 && errno != EEXIST)
        return 1;

    static rp_netpolicy_t np;
    rp_netpolicy_config_t cfg = {
        .state_dir = state, .resolve = rp_unpack_resolve, .resolve_ctx = (void *)resolver};
    if (rp_netpolicy_init(&np, &cfg) != RP_OK)
        return 1;
    /* the refused packets, read by rampart-unpack read as the monitor's */
    static rp_evreader_t reader;
    const rp_evreader_hooks_t hooks = {NULL, NULL, rp_evreader_record_net, (void *)state};
    rp_evreader_open(&reader, false, rp_netpolicy_log_fd(&np), RP_TEST_UNPACK);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);

    int ready[2], go[2];
    if (sfd < 0 || pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0)
        return 1;
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        /* The app: what the compartment will make, reduced to the network and /etc. */
        char c = 1;
        close(go[1]);
        close(ready[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* In a user namespace, a read-only remount must keep the flags the mount under it has. */
        struct statvfs sv;
        unsigned long locked = 0;
        if (statvfs(etc, &sv) == 0)
            locked = (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) |
                     (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
                     (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
        if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) != 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount(etc, "/etc", NULL, MS_BIND, NULL) != 0 ||
            mount(NULL, "/etc", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked, NULL) != 0) {
            perror("app namespaces");
            _exit(1);
        }
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        while (read(go[0], &c, 1) > 0) {
        }
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char c;
    if (read(ready[0], &c, 1) != 1) {
        fprintf(stderr, "the app child did not start\n");
        rp_netpolicy_shutdown(&np);
        return 1;
    }

    static rp_netpolicy_app_t app;
    char why[300];
    int etc_fd = open(etc, O_PATH | O_DIRECTORY | O_CLOEXEC);
    rp_err_t err = etc_fd < 0 ? RP_ERR_IO : rp_netpolicy_setup(&np, child, &m, slot, &app);
    int rc = 0;
    if (err == RP_OK && rp_launch_etc_write(etc_fd, &m, &app.hosts, why, sizeof(why)) != 0) {
        fprintf(stderr, "%s\n", why);
        err = RP_ERR_IO;
    }
    if (err != RP_OK) {
        fprintf(stderr, "setup: %s\n", rp_strerror(err));
        rc = 1;
        goto out;
    }
    /* Before app.pid, which tells the test that everything is in place. */
    if (rival_slot >= 0)
        write_text(state, "rival", rival(&np, &m, (uint32_t)rival_slot));
    char text[64], a[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &app.app_addr, a, sizeof(a));
    snprintf(text, sizeof(text), "%s\n", a);
    write_text(state, "app.addr", text);
    snprintf(text, sizeof(text), "%d\n", (int)child);
    write_text(state, "app.pid", text);

    for (;;) {
        struct pollfd p[2] = {
            {.fd = rp_evreader_fd(&reader), .events = POLLIN},
            {.fd = sfd,                     .events = POLLIN}
        };
        int n = poll(p, 2, refresh_ms > 0 ? (int)refresh_ms : -1);
        if (n < 0 && errno != EINTR)
            break;
        if (n == 0)
            refresh(&np, &app, &m, etc_fd);
        if (n > 0 && p[0].revents != 0)
            rp_evreader_handle(&reader, &hooks);
        if (n > 0 && (p[1].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) != sizeof(si))
                continue;
            if (si.ssi_signo != SIGUSR1)
                break;
            refresh(&np, &app, &m, etc_fd);
            write_text(state, "refreshed", "yes\n");
        }
    }
out:
    if (etc_fd >= 0)
        close(etc_fd);
    rp_evreader_close(&reader);
    rp_netpolicy_teardown(&np, &app);
    rp_netpolicy_shutdown(&np);
    close(go[1]);
    waitpid(child, NULL, 0);
    return rc;
}

/* events STATE_DIR: the security events the monitor recorded, "KIND<TAB>APP<TAB>REASON" lines. */
static int cmd_events(const char *state_dir)
{
    static rp_event_t ev[RP_EVENTS_MAX];
    uint64_t dropped = 0;
    size_t n = 0;

    if (rp_events_read(state_dir, ev, RP_EVENTS_MAX, &n, &dropped) != RP_OK)
        return 1;
    for (size_t i = 0; i < n; i++)
        printf("%s\t%s\t%s\n", rp_event_kind_name(ev[i].kind), ev[i].app, ev[i].reason);
    return 0;
}

/* audit status|on|off: the host's audit state (0 off, 1 on, 2 locked), or switched. */
static int cmd_audit(const char *what)
{
    char why[200] = "";
    if (strcmp(what, "status") == 0) {
        int e = rp_evreader_audit_enabled();
        if (e < 0)
            return 1;
        printf("%d\n", e);
        return 0;
    }
    if (strcmp(what, "on") != 0 && strcmp(what, "off") != 0)
        return usage();
    if (rp_evreader_audit_switch(strcmp(what, "on") == 0, why, sizeof(why)) != RP_OK) {
        fprintf(stderr, "netpolicy-driver: audit %s: %s\n", what, why);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    rp_log_init("netpolicy-driver", RP_LOG_INFO);
    if (argc < 2)
        return usage();
    const char *mode = argv[1];
    if (strcmp(mode, "monitor") == 0)
        return cmd_monitor(argc - 2, argv + 2);
    if (strcmp(mode, "serve") == 0 && argc == 6)
        return cmd_serve(argv[2], argv[3], argv[4], argv[5]);
    if (strcmp(mode, "connect") == 0 && argc == 4)
        return cmd_connect(argv[2], argv[3]);
    if (strcmp(mode, "udp") == 0 && argc == 4)
        return udp_exchange(argv[2], argv[3], "ping", 4);
    if (strcmp(mode, "dns") == 0 && argc == 4)
        return cmd_dns(argv[2], argv[3]);
    if (strcmp(mode, "resolve") == 0 && argc == 3)
        return cmd_resolve(argv[2]);
    if (strcmp(mode, "events") == 0 && argc == 3)
        return cmd_events(argv[2]);
    if (strcmp(mode, "audit") == 0 && argc == 3)
        return cmd_audit(argv[2]);
    return usage();
}
