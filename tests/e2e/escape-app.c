/*
 * The hostile app of the escape suite (tests/e2e/escape.sh) and of tests/e2e/compartment.sh,
 * built by the test: `escape-app CASE [ARG...]` tries one escape (or one allowed thing) and prints
 * "CASE: refused (why)" or "CASE: ok (...)"; an escape that works prints "CASE: ESCAPED (...)"
 * and exits 1, an allowed path that does not work prints "CASE: FAILED (...)" and exits 1. As an
 * app rampart-monitor supervises, `escape-app stay CASE...` (main) tries its case, then says it is
 * ready and stays up. docs/compartments.md ("The escape suite") lists the cases.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/landlock.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/rtnetlink.h>
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
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

#define NET_WAIT_MS 5000 /* a refused connection fails at once (ICMP); this bounds a lost one */

static int refused(const char *c, long rc)
{
    if (rc >= 0) {
        printf("%s: ESCAPED (returned %ld)\n", c, rc);
        return 1;
    }
    printf("%s: refused (%s)\n", c, strerror(errno));
    return 0;
}

static int failed(const char *c, const char *what)
{
    printf("%s: FAILED (%s: %s)\n", c, what, strerror(errno));
    return 1;
}

/* Every path must be absent: neither openable nor even there to stat. */
static int absent(const char *c, int n, char **paths)
{
    int escaped = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        int fd = open(paths[i], O_RDONLY);
        if (fd >= 0 || stat(paths[i], &st) == 0) {
            printf("%s: ESCAPED (%s is there)\n", c, paths[i]);
            escaped = 1;
        } else
            printf("%s: refused (%s: %s)\n", c, paths[i], strerror(errno));
    }
    return escaped;
}

/* The app's gateway (the monitor's end of its link) from its default route, "-" without one. */
static void gateway(char *out, size_t cap)
{
    char line[256], ifname[32];
    unsigned long dst, gw;
    FILE *f = fopen("/proc/self/net/route", "r");

    snprintf(out, cap, "-");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "%31s %lx %lx", ifname, &dst, &gw) == 3 && dst == 0 && gw != 0) {
            struct in_addr a = {.s_addr = (uint32_t)gw}; /* as the kernel keeps it */
            inet_ntop(AF_INET, &a, out, (socklen_t)cap);
            break;
        }
    if (f != NULL)
        fclose(f);
}

/* "net: ADDRESS GATEWAY": the app's own address on its link and its gateway ("-" for none), by
 * which the test reaches the app and the device behind its gateway. */
static void net_line(void)
{
    char addr[INET_ADDRSTRLEN] = "-", gw[INET_ADDRSTRLEN];
    struct ifaddrs *ifa, *i;

    if (getifaddrs(&ifa) == 0) {
        for (i = ifa; i != NULL; i = i->ifa_next)
            if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET &&
                strcmp(i->ifa_name, "lo") != 0)
                inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, addr,
                          sizeof(addr));
        freeifaddrs(ifa);
    }
    gateway(gw, sizeof(gw));
    printf("net: %s %s\n", addr, gw);
}

/* A TCP connection to host:port (a name resolves through the app's /etc/hosts only), with what
 * the server said in out. 0 connected; -1 refused or no answer (errno); -2 the name does not
 * resolve. */
static int tcp_connect(const char *host, const char *port, char *out, size_t cap)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    struct pollfd p;
    int fd, err = 0, rc;
    socklen_t len = sizeof(err);
    ssize_t got;

    out[0] = '\0';
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        snprintf(out, cap, "%s", gai_strerror(rc));
        return -2;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0 || (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS)) {
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    p.fd = fd;
    p.events = POLLOUT;
    if (poll(&p, 1, NET_WAIT_MS) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
        err != 0) {
        errno = err ? err : ETIMEDOUT;
        close(fd);
        return -1;
    }
    p.events = POLLIN;
    got = poll(&p, 1, NET_WAIT_MS) == 1 ? read(fd, out, cap - 1) : -1;
    out[got > 0 ? got : 0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    close(fd);
    return 0;
}

static int listen_on(int type, uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        (type == SOCK_STREAM && listen(fd, 8) != 0)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/*
 * `serve TCP UNLISTED_TCP UDP UNLISTED_UDP [DEVICE]`: the app that stays up while the test acts
 * on it from outside. It uses its device and storage, listens on its listed ports and tries the
 * unlisted ones, says ready, then answers: each TCP connection on the listed port gets
 * "listener-ok"; a datagram on the listed UDP port reports whether anything arrived on the
 * unlisted one before it (the test sends that first), and is answered "udp-ok". Runs until
 * stopped.
 */
static int serve(int argc, char **argv)
{
    const char *c = "serve";
    int tcp, tcp_un, udp, udp_un, fd;
    char buf[512];

    if (argc < 6)
        return printf("%s: usage\n", c), 2;
    if (argc > 6) {
        fd = open(argv[6], O_RDWR);
        if (fd < 0 || write(fd, "x", 1) != 1)
            return failed(c, "its own device");
        close(fd);
        printf("device: ok (%s written)\n", argv[6]);
    }
    fd = open("/data/served", O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0 || write(fd, "x", 1) != 1)
        return failed(c, "its own storage");
    close(fd);
    printf("storage: ok\n");
    if ((tcp = listen_on(SOCK_STREAM, (uint16_t)atoi(argv[2]))) < 0)
        return failed(c, "listening on its listed TCP port");
    printf("listen: ok (tcp %s)\n", argv[2]);
    tcp_un = listen_on(SOCK_STREAM, (uint16_t)atoi(argv[3]));
    if (tcp_un < 0)
        printf("listen-tcp: refused (bind %s: %s)\n", argv[3], strerror(errno));
    else
        printf("listen-tcp: bound %s (the network policy must keep it unreachable)\n", argv[3]);
    if ((udp = listen_on(SOCK_DGRAM, (uint16_t)atoi(argv[4]))) < 0 ||
        (udp_un = listen_on(SOCK_DGRAM, (uint16_t)atoi(argv[5]))) < 0)
        return failed(c, "binding its UDP ports");
    if (write(3, "ready", 5) != 5)
        return failed(c, "ready");
    for (;;) {
        struct pollfd p[3] = {
            {.fd = tcp,    .events = POLLIN},
            {.fd = tcp_un, .events = POLLIN},
            {.fd = udp,    .events = POLLIN}
        };
        if (poll(p, 3, -1) < 0)
            continue;
        if (p[0].revents & POLLIN) {
            int cfd = accept(tcp, NULL, NULL);
            if (cfd >= 0) {
                if (write(cfd, "listener-ok\n", 12) != 12)
                    printf("%s: a reply failed\n", c);
                close(cfd);
            }
        }
        if (p[1].revents & POLLIN)
            printf("listen-tcp: ESCAPED (a connection arrived on an unlisted port)\n");
        if (p[2].revents & POLLIN) {
            struct sockaddr_in from;
            socklen_t fl = sizeof(from);
            ssize_t n = recvfrom(udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
            ssize_t m = recv(udp_un, buf, sizeof(buf), MSG_DONTWAIT);
            if (m >= 0)
                printf("listen-udp: ESCAPED (a datagram arrived on an unlisted port)\n");
            else
                printf("listen-udp: refused (nothing arrived on %s)\n", argv[5]);
            if (n >= 0)
                (void)sendto(udp, "udp-ok", 6, 0, (struct sockaddr *)&from, fl);
        }
    }
}

/* One DNS query (res_mkquery) to server:53; refused unless an answer comes back. */
static int dns(const char *c, const char *server, const char *name)
{
    unsigned char q[512];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
    struct pollfd p;
    int n = res_mkquery(QUERY, name, C_IN, T_A, NULL, 0, NULL, q, sizeof(q));
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    if (n < 0 || fd < 0 || inet_pton(AF_INET, server, &sa.sin_addr) != 1)
        return failed(c, "making the query");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || send(fd, q, (size_t)n, 0) < 0)
        return refused(c, -1);
    p.fd = fd;
    p.events = POLLIN;
    if (poll(&p, 1, NET_WAIT_MS) != 1) {
        errno = ETIMEDOUT;
        return refused(c, -1);
    }
    return refused(c, recv(fd, q, sizeof(q), 0)); /* the reject's ICMP: ECONNREFUSED-like */
}

/* A route change over rtnetlink in its own namespace: the kernel's answer (an ack with an
 * error) is the result. */
static int route_change(const char *c)
{
    struct {
        struct nlmsghdr nh;
        struct rtmsg rt;
    } req;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    char buf[4096];
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    ssize_t n;

    if (fd < 0)
        return refused(c, -1);
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    req.nh.nlmsg_type = RTM_DELROUTE; /* the default route: the app's way out */
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.nh.nlmsg_seq = 1;
    req.rt.rtm_family = AF_INET;
    req.rt.rtm_table = RT_TABLE_MAIN;
    req.rt.rtm_scope = RT_SCOPE_NOWHERE;
    if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return refused(c, -1);
    n = recv(fd, buf, sizeof(buf), 0);
    if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)))
        return failed(c, "no answer from rtnetlink");
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    struct nlmsgerr *e = NLMSG_DATA(h);
    if (h->nlmsg_type != NLMSG_ERROR || e->error == 0)
        return refused(c, 0);
    errno = -e->error;
    return refused(c, -1);
}

static int run_case(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : "";
    const char *arg2 = argc > 3 ? argv[3] : "";

    /* ---- the run's event budget spent on refusals, then a flood of its log: the log's quota
     * event is recorded all the same (review r9dev L1) */
    if (!strcmp(c, "logmask")) {
        static char flood[256 * 1024];
        memset(flood, 'f', sizeof(flood));
        for (int i = 0; i < 110; i++)
            (void)ptrace(PTRACE_ATTACH, 1, 0, 0);
        for (size_t off = 0; off < sizeof(flood);) {
            ssize_t n = write(1, flood + off, sizeof(flood) - off);
            if (n <= 0)
                return failed(c, "cannot write its log");
            off += (size_t)n;
        }
        return 0;
    }
    /* ---- system calls the filter refuses (each reaches the monitor: a "syscall" event) */
    if (!strcmp(c, "ptrace"))
        return refused(c, ptrace(PTRACE_ATTACH, 1, 0, 0));
    if (!strcmp(c, "mount"))
        return refused(c, mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(c, "fsopen")) /* the new mount API */
        return refused(c, syscall(SYS_fsopen, "tmpfs", 0));
    if (!strcmp(c, "unshare"))
        return refused(c, unshare(CLONE_NEWUSER | CLONE_NEWNS));
    if (!strcmp(c, "clone-newuser")) { /* a new user namespace through clone, not unshare */
        long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
        if (pid == 0)
            _exit(0);
        if (pid > 0)
            waitpid((pid_t)pid, NULL, 0);
        return refused(c, pid);
    }
    if (!strcmp(c, "setns")) {
        int fd = open("/proc/self/ns/net", O_RDONLY);
        return refused(c, setns(fd < 0 ? 0 : fd, 0));
    }
    if (!strcmp(c, "keyctl"))
        return refused(c, syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
    if (!strcmp(c, "add_key"))
        return refused(c, syscall(SYS_add_key, "user", "escape", "x", 1, -3));
    if (!strcmp(c, "bpf")) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        return refused(c, syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a)));
    }
    if (!strcmp(c, "perf_event_open")) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof(a));
        a.size = sizeof(a);
        a.type = PERF_TYPE_SOFTWARE;
        return refused(c, syscall(SYS_perf_event_open, &a, 0, -1, -1, 0));
    }
    if (!strcmp(c, "rlimit")) {
        struct rlimit r;
        getrlimit(RLIMIT_NOFILE, &r);
        r.rlim_max += 1000;
        r.rlim_cur = r.rlim_max;
        return refused(c, setrlimit(RLIMIT_NOFILE, &r));
    }
    if (!strcmp(c, "setuid")) {
        long rc = setuid(0);
        if (rc == 0 || getuid() == 0 || geteuid() == 0)
            return refused(c, 0);
        return refused(c, -1);
    }
    if (!strcmp(c, "module"))
        return refused(c, syscall(SYS_finit_module, 0, "", 0));
    if (!strcmp(c, "init_module"))
        return refused(c, syscall(SYS_init_module, "", 0, ""));
    if (!strcmp(c, "kexec_load"))
        return refused(c, syscall(SYS_kexec_load, 0, 0, NULL, 0));
    if (!strcmp(c, "settimeofday")) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        return refused(c, syscall(SYS_settimeofday, &tv, NULL));
    }
    if (!strcmp(c, "clock_settime")) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return refused(c, clock_settime(CLOCK_REALTIME, &ts));
    }
    if (!strcmp(c, "adjtimex")) {
        struct timex t;
        memset(&t, 0, sizeof(t));
        t.modes = ADJ_OFFSET | ADJ_OFFSET_SINGLESHOT;
        t.offset = 1000;
        return refused(c, adjtimex(&t));
    }
    if (!strcmp(c, "reboot"))
        return refused(c, reboot(RB_POWER_OFF));
    if (!strcmp(c, "swapon"))
        return refused(c, swapon("/data/swap", 0));
    if (!strcmp(c, "mknod"))
        return refused(c, mknod("/tmp/mem", S_IFCHR | 0600, makedev(1, 1)));
    if (!strcmp(c, "chroot"))
        return refused(c, chroot("/tmp"));
    if (!strcmp(c, "pivot_root"))
        return refused(c, syscall(SYS_pivot_root, "/tmp", "/tmp"));
    if (!strcmp(c, "sethostname"))
        return refused(c, sethostname("escaped", 7));
    if (!strcmp(c, "io_uring_setup")) {
        char params[120]; /* struct io_uring_params */
        memset(params, 0, sizeof(params));
        return refused(c, syscall(SYS_io_uring_setup, 1, params));
    }
    if (!strcmp(c, "userfaultfd"))
        return refused(c, syscall(SYS_userfaultfd, 0));
    if (!strcmp(c, "open_by_handle_at")) {
        struct {
            unsigned int bytes;
            int type;
            unsigned char h[64];
        } fh = {.bytes = 8, .type = 1};
        return refused(c, syscall(SYS_open_by_handle_at, AT_FDCWD, &fh, O_RDONLY));
    }
    if (!strcmp(c, "personality")) /* e.g. to turn address randomisation off */
        return refused(c, syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE));
    if (!strcmp(c, "process_vm_readv")) { /* read its init's memory */
        char local[16], remote[16];
        struct iovec l = {.iov_base = local, .iov_len = sizeof(local)};
        struct iovec r = {.iov_base = remote, .iov_len = sizeof(remote)};
        return refused(c, syscall(SYS_process_vm_readv, 1, &l, 1, &r, 1, 0));
    }
#ifdef SYS_iopl
    if (!strcmp(c, "iopl")) /* raw I/O ports */
        return refused(c, syscall(SYS_iopl, 3));
#endif
    if (!strcmp(c, "syslog")) { /* the kernel's log */
        char buf[256];
        return refused(c, syscall(SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof(buf)));
    }
    if (!strcmp(c, "acct"))
        return refused(c, acct("/tmp/acct"));
    /* ---- sockets outside the app's network namespace, or below IP */
    if (!strcmp(c, "raw-socket"))
        return refused(c, socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    if (!strcmp(c, "packet-socket"))
        return refused(c, socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)));
    if (!strcmp(c, "vsock")) { /* not namespaced: the hypervisor, past the network policy */
        /* The socket is the escape: nothing is sent (a test never reaches outside the machine;
         * by hand, a connect to VMADDR_CID_HOST reached the hypervisor). */
        int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
        if (fd >= 0) {
            printf("%s: ESCAPED (an AF_VSOCK socket, outside every network namespace)\n", c);
            return 1;
        }
        return refused(c, -1);
    }
    if (!strcmp(c, "uevent")) { /* the device's kernel events (hotplug) */
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1};
        int fd = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);
        if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            printf("%s: ESCAPED (listening to the device's kernel events)\n", c);
            return 1;
        }
        return refused(c, -1);
    }
    if (!strcmp(c, "route"))
        return route_change(c);
    /* ---- the network: only what the manifest lists */
    if (!strcmp(c, "connect") || !strcmp(c, "connect-refused")) {
        char said[256], gw[INET_ADDRSTRLEN];
        int rc;
        if (!strcmp(arg, "gateway")) { /* the device itself, behind the app's gateway */
            gateway(gw, sizeof(gw));
            arg = gw;
        }
        rc = tcp_connect(arg, arg2, said, sizeof(said));
        if (!strcmp(c, "connect")) { /* allowed */
            if (rc != 0) {
                printf("%s: FAILED (%s:%s: %s)\n", c, arg, arg2, rc == -2 ? said : strerror(errno));
                return 1;
            }
            printf("%s: ok (%s:%s said %s)\n", c, arg, arg2, said);
            return 0;
        }
        if (rc == 0) {
            printf("%s: ESCAPED (%s:%s said %s)\n", c, arg, arg2, said);
            return 1;
        }
        printf("%s: refused (%s:%s: %s)\n", c, arg, arg2, rc == -2 ? said : strerror(errno));
        return 0;
    }
    if (!strcmp(c, "dns"))
        return dns(c, arg, arg2);
    if (!strcmp(c, "serve"))
        return serve(argc, argv);
    if (!strcmp(c, "kill")) { /* a process of the device, by its pid outside */
        long pid = atol(arg);
        if (pid <= 100)
            return printf("%s: usage\n", c), 2;
        return refused(c, kill((pid_t)pid, SIGKILL));
    }
    /* ---- files: not there, read-only, or refused by Landlock */
    if (!strcmp(c, "write-tree")) {
        int fd = open("/app/planted", O_WRONLY | O_CREAT, 0644);
        if (fd < 0)
            fd = open(argv[0], O_WRONLY);
        return refused(c, fd);
    }
    if (!strcmp(c, "absent")) /* the device's paths: state dir, another app's storage, /dev/mem */
        return absent(c, argc - 2, argv + 2);
    if (!strcmp(c, "proc-mem")) { /* its own memory, to write past its read-only mappings: /proc
                                     * is mounted read-write, the file is its own (only Landlock's
                                     * read-only rule for /proc stops it) */
        return refused(c, open("/proc/self/mem", O_RDWR));
    }
    if (!strcmp(c, "landlock-nested")) { /* a Landlock domain of its own nested in its
                                            * compartment's, refused there (a child's read of
                                            * ARG), then a refusal of the compartment's domain:
                                            * only the second is logged (LOG_SUBDOMAINS_OFF) */
        struct landlock_ruleset_attr attr = {.handled_access_fs = LANDLOCK_ACCESS_FS_READ_FILE};
        int st = 0;
        pid_t pid = fork();
        if (pid == 0) {
            int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
            if (rs < 0 || syscall(SYS_landlock_restrict_self, rs, 0) != 0)
                _exit(2);
            _exit(open(argc > 2 ? argv[2] : "/app/data.txt", O_RDONLY) < 0 && errno == EACCES ? 0
                                                                                             : 1);
        }
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return printf("%s: FAILED (the nested domain's read: status %d)\n", c, st), 1;
        printf("%s: nested: refused\n", c);
        return refused(c, open("/proc/self/mem", O_RDWR));
    }
    if (!strcmp(c, "proc")) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        int others = 0;
        while (d && (e = readdir(d)) != NULL) {
            int pid = atoi(e->d_name);
            if (pid > 0 && pid != getpid()) {
                printf("%s: sees process %d\n", c, pid);
                others++;
            }
        }
        printf("%s: %s (%d other processes visible)\n", c, others ? "ESCAPED" : "refused", others);
        return others != 0;
    }
    /* ---- resources: held by the cgroups and the storage's size */
    if (!strcmp(c, "forkbomb")) {
        int n = 0;
        for (; n < 10000; n++) {
            pid_t p = fork();
            if (p == 0) {
                pause();
                _exit(0);
            }
            if (p < 0)
                break;
        }
        printf("%s: %s after %d processes (%s)\n", c, n < 10000 ? "refused" : "ESCAPED", n,
               strerror(errno));
        return n < 10000 ? 0 : 1;
    }
    if (!strcmp(c, "memory")) {
        for (size_t total = 0;; total += 1 << 20) {
            char *p = malloc(1 << 20);
            if (p == NULL) {
                printf("%s: refused (malloc failed at %zu MiB)\n", c, total >> 20);
                return 0;
            }
            memset(p, 1, 1 << 20);
        }
    }
    if (!strcmp(c, "quota")) {
        char buf[65536];
        long total = 0;
        int fd = open("/data/fill", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        memset(buf, 'q', sizeof(buf));
        for (;;) {
            ssize_t n = write(fd, buf, sizeof(buf));
            if (n <= 0)
                break;
            total += n;
        }
        int e = errno;
        fsync(fd);
        printf("%s: %s after %ld KB (%s)\n", c, e == ENOSPC ? "refused" : "ESCAPED", total / 1024,
               strerror(e));
        /* no need to stay: the monitor checks the storage again when the app has exited */
        return e == ENOSPC ? 0 : 1;
    }
    /* ---- allowed paths */
    if (!strcmp(c, "rlimit-lower")) { /* lowering its own limit */
        struct rlimit r;
        getrlimit(RLIMIT_NOFILE, &r);
        r.rlim_cur = r.rlim_max - 1;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0)
            return failed(c, "setrlimit");
        printf("%s: ok\n", c);
        return 0;
    }
    if (!strcmp(c, "allowed")) {
        /* the contract and the allowed paths: ready, /data, /tmp, the tree, a listed device */
        char buf[64];
        int fd = open("/data/kept", O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || write(fd, "x", 1) != 1)
            return printf("%s: FAILED /data (%s)\n", c, strerror(errno)), 1;
        close(fd);
        fd = open("/tmp/t", O_WRONLY | O_CREAT, 0600);
        if (fd < 0 || write(fd, "x", 1) != 1)
            return printf("%s: FAILED /tmp\n", c), 1;
        close(fd);
        fd = open("/app/data.txt", O_RDONLY);
        if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0)
            return printf("%s: FAILED reading the tree\n", c), 1;
        close(fd);
        if (arg[0]) {
            fd = open(arg, O_RDWR);
            if (fd < 0 || write(fd, "x", 1) != 1)
                return printf("%s: FAILED device %s (%s)\n", c, arg, strerror(errno)), 1;
            close(fd);
        }
        struct stat st;
        stat("/data/kept", &st);
        /* last: a trial ends when the app says it is ready (the monitor may stop it at once, so
         * what it prints comes first), and the storage is kept across runs */
        printf("%s: ok kept=%lld env=%s,%s,%s,%s,%s cwd=%s\n", c, (long long)st.st_size,
               getenv("RAMPART_COMPONENT"), getenv("RAMPART_VERSION"), getenv("RAMPART_READY_FD"),
               getenv("RAMPART_DATA_DIR"), getenv("HOME"), getcwd(buf, sizeof(buf)));
        if (write(3, "ready", 5) != 5)
            return printf("%s: FAILED ready\n", c), 1;
        return 0;
    }
    if (!strcmp(c, "wait")) { /* holds its device until stopped */
        if (write(3, "ready", 5) != 5)
            return printf("%s: FAILED ready\n", c), 1;
        pause();
        return 0;
    }
    printf("unknown case %s\n", c);
    return 2;
}

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

/* One case of a list, in a process of its own (what one case changes, e.g. its personality,
 * stays its own): its status, or 128 + the signal that ended it. */
static int run_one(char *prog, char *c)
{
    char *args[] = {prog, c, NULL};
    int st = 0;
    pid_t pid = fork();

    if (pid == 0)
        _exit(run_case(2, args));
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return printf("%s: FAILED (fork: %s)\n", c, strerror(errno)), 1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    /*
     * `escape-app stay CASE [ARG...]`: as an app the monitor supervises (tests/e2e/escape.sh). It
     * says "started" and "net: ADDRESS GATEWAY", tries CASE, says "result: STATUS", then that it is ready and
     * stays up until stopped: the install's trial ends at "ready" (so a refused attempt does not
     * fail the install), and the confirmed version, started again, tries once more without being
     * restarted over and over. CASE may be a list, "A,B,C" (cases without arguments): each is
     * tried in turn, in a process of its own, and says "result: A STATUS".
     */
    if (argc > 2 && strcmp(argv[1], "stay") == 0) {
        int rc;
        signal(SIGTERM, on_term);
        printf("started\n");
        net_line();
        argv[1] = argv[0]; /* the program, as write-tree expects it */
        if (strchr(argv[2], ',') != NULL) {
            for (char *save = NULL, *c = strtok_r(argv[2], ",", &save); c != NULL;
                 c = strtok_r(NULL, ",", &save))
                printf("result: %s %d\n", c, run_one(argv[0], c));
        } else {
            rc = run_case(argc - 1, argv + 1);
            printf("result: %d\n", rc);
        }
        if (write(3, "ready", 5) != 5)
            printf("stay: FAILED (ready: %s)\n", strerror(errno));
        for (;;)
            pause();
    }
    return run_case(argc, argv);
}
