/*
 * rampart-unpack: reads one app image's payload for the monitor's app supervisor, confined
 * (device/monitor/unpack.h has the protocol). The payload is a tar archive holding the app's tree
 * and its app_manifest.json; libarchive and the manifest's parser are large, so they run here, in
 * a short-lived process of their own, never in the privileged monitor. The supervisor starts it as
 * an unprivileged user of its own, with limits (CPU seconds, address space, file size) already
 * set; here the process shuts itself in further before it reads a byte: Landlock lets it touch
 * nothing but its staging directory (extract) or nothing at all (manifest), and a seccomp
 * allow-list holds it to reading its descriptor and writing the tree. Whatever the payload does to
 * libarchive, the worst is this process dying or lying about a tree only it could write, which
 * the supervisor takes as "the app does not start".
 *
 *   rampart-unpack manifest OFF LEN      stdin: the slot
 *   rampart-unpack extract OFF LEN       stdin: the slot; cwd: the staging directory (./tree)
 *   rampart-unpack metadata KIND LEN     stdin: a signed metadata payload (its first LEN bytes);
 *                                        KIND: root, targets or capability
 *   rampart-unpack metadata envelope LEN stdin: a JSON envelope an older version kept (its first
 *                                        LEN bytes), to be migrated (docs/monitor.md)
 *   rampart-unpack resolve NAME...       an app's allowed host names (1 to 32), resolved to IPv4
 *                                        with the device's resolver (the network policy's)
 *   rampart-unpack read audit|- nflog|-  long-lived: the kernel's refusals from the bound sockets
 *                                        on 3 (audit) and 4 (NFLOG), answered as records on
 *                                        stdin, a socket pair (device/monitor/reader.h, read.c)
 *   rampart-unpack broker                the app broker (device/broker/broker.h), long-lived: the
 *                                        apps' channels, its socket to the monitor at descriptor 3
 *
 * Answer on stdout: 'l' (a single-file image made before app trees: no manifest), or 't' and the
 * manifest in its binary form (rp_manifest_encode; the supervisor decodes it with
 * rp_manifest_decode, which holds every field to the parser's rules, so that the JSON is parsed
 * here only, never with privilege). metadata: 'd' and the document in its binary form
 * (rp_md_doc_encode; the monitor decodes it with rp_md_doc_decode, which holds every field to the
 * parser's rules: the monitor verified the payload's signatures, this process reads its JSON);
 * envelope: 's' and the envelope's signed binary form (rp_md_signed_encode; the monitor decodes it
 * with rp_md_signed_decode and verifies its signatures itself). resolve: 'a' and the names'
 * addresses in their binary form (rp_netaddrs_encode; the monitor decodes it with
 * rp_netaddrs_decode): here the DNS answers from the network are parsed, by glibc's resolver, in a
 * process that may read the resolver's files and libraries and talk to a DNS server, nothing
 * else. A refusal: exit status 1, the reason on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/landlock.h>
#include <linux/sockios.h>
#include <openssl/crypto.h>

#include "rampart/apptree.h"
#include "rampart/manifest.h"
#include "rampart/metadata.h"
#include "rampart/netaddrs.h"
#include "landlock_abi.h"
#include "broker.h"
#include "rampart/log.h"
#include "rampart/seccomp.h"
#include "read.h"
#include "unpack.h"

// clang-format off
static const char *const allowed[] = {
    "read", "pread64", "readv", "write", "writev", "lseek", "fstat", "newfstatat", "statx",
    "close", "brk", "mmap", "munmap", "mremap", "madvise", "mprotect", "futex", "getrandom",
    "rt_sigreturn", "exit", "exit_group", "clock_gettime", "fcntl", "getpid", "gettid",
    "tgkill", "rt_sigprocmask", /* abort() */
    /* writing the tree (extract; Landlock keeps it inside the staging directory) */
    "openat", "mkdirat", "symlinkat", "fchmod", "fchmodat", "fsync", "syncfs", "getdents64",
    "unlinkat", "dup", "readlinkat", "utimensat", "ftruncate", "mkdir", "rmdir", "unlink",
    "open", "stat", "lstat",
};
/* resolve: glibc's resolver (its files read under Landlock; its sockets below, by family) */
static const char *const resolver[] = {
    "connect", "sendto", "sendmmsg", "sendmsg", "recvfrom", "recvmsg", "poll", "ppoll",
    "setsockopt", "getsockopt", "getsockname", "getpeername", "bind", "ioctl", "uname",
};
/* read: the handed sockets received from, the records sent (read.c) */
static const char *const reader[] = {"recvfrom", "recvmsg", "sendto", "sendmsg", "poll", "ppoll"};
/* broker: the apps' channels and the monitor's socket, descriptors passed both ways */
static const char *const broker[] = {
    "recvmsg", "sendmsg", "socketpair", "poll", "ppoll", "shutdown",
};
// clang-format on

/* What the process may touch (fence, confine). */
typedef enum { READ_ONLY, EXTRACT, RESOLVE, READER, BROKER } confinement_t;

static int refuse(const char *why)
{
    fprintf(stderr, "%s\n", why);
    return 1;
}

/* Landlock beneath one path: rights granted there. A path that is not there grants nothing. */
static bool grant(int rs, const char *path, uint64_t rights)
{
    struct landlock_path_beneath_attr pb = {.allowed_access = rights};
    bool ok;

    pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
    if (pb.parent_fd < 0)
        return errno == ENOENT;
    ok = syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) == 0;
    close(pb.parent_fd);
    return ok;
}

/* The resolver's files, read only: its configuration (each file, followed where it links: the
 * stub of systemd-resolved) and the libraries it may load (NSS modules); TCP only to port 53. */
static bool grant_resolver(int rs, long abi)
{
    static const char *const files[] = {"/etc/resolv.conf",
                                        "/etc/hosts",
                                        "/etc/nsswitch.conf",
                                        "/etc/host.conf",
                                        "/etc/gai.conf",
                                        "/etc/ld.so.cache",
                                        "/usr",
                                        "/lib",
                                        "/lib64"};
    bool ok = true;

    for (size_t i = 0; ok && i < sizeof(files) / sizeof(files[0]); i++)
        ok = grant(rs, files[i], LANDLOCK_ACCESS_FS_READ_FILE);
    if (ok && abi >= 4) {
        rp_landlock_port_t dns = {.allowed_access = RP_LANDLOCK_NET_CONNECT_TCP, .port = 53};
        ok = syscall(SYS_landlock_add_rule, rs, RP_LANDLOCK_RULE_NET_PORT, &dns, 0) == 0;
    }
    return ok;
}

/* Landlock: every file right handled; none granted, but beneath the staging directory when
 * extracting, and the resolver's files, read only, when resolving (with TCP to port 53 only,
 * where the kernel fences ports). Without Landlock (an old kernel) the user and the filter still
 * hold. */
static bool fence(confinement_t mode)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    rp_landlock_ruleset_t attr = {.fs = (1ULL << 13) - 1}; /* ABI 1 */
    int rs;
    bool ok = true;

#ifdef SANITIZER_BUILD /* LeakSanitizer reads /proc at exit: the test build keeps the rest */
    abi = 0;
#endif
    if (abi <= 0)
        return true;
    if (abi >= 2)
        attr.fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        attr.fs |= RP_LANDLOCK_FS_TRUNCATE;
    if (abi >= 4)
        attr.net = RP_LANDLOCK_NET_BIND_TCP | RP_LANDLOCK_NET_CONNECT_TCP;
    /* Before ABI 4 the kernel takes the file part only. */
    rs = (int)syscall(SYS_landlock_create_ruleset, &attr,
                      abi >= 4 ? 2 * sizeof(uint64_t) : sizeof(attr.fs), 0);
    if (rs < 0)
        return false;
    if (mode == EXTRACT)
        ok = grant(rs, ".", attr.fs);
    else if (mode == RESOLVE)
        ok = grant_resolver(rs, abi);
    ok = ok && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         syscall(SYS_landlock_restrict_self, rs, 0) == 0;
    close(rs);
    return ok;
}

/* socket(2) for the resolver: IPv4 and IPv6 only; a Unix socket (nscd, systemd-resolved's
 * varlink) or netlink is refused with an error glibc falls back from, anything else kills. */
static void allow_sockets(rp_seccomp_t *f)
{
    static const int fine[] = {AF_INET, AF_INET6}, no[] = {AF_UNIX, AF_NETLINK};

    for (size_t i = 0; i < 2; i++)
        rp_seccomp_rule(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                        SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fine[i], 0));
    for (size_t i = 0; i < 2; i++)
        rp_seccomp_rule(f, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                        SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)no[i], 0));
}

/* What the parsers' libraries read from disk at their first use, read before the fence shuts it
 * out (each of them would otherwise be refused by Landlock, seen in the kernel's log, and go on
 * worse): Jansson's hash seed (/dev/urandom: without it, time and pid, a seed a hostile document
 * could guess and collide its keys with) and OpenSSL's configuration (/etc/ssl/openssl.cnf, read
 * at its first digest: the same configuration the monitor's own OpenSSL reads). */
static bool libraries_ready(void)
{
    json_object_seed(0);
    return OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) == 1;
}

static bool confine(confinement_t mode)
{
    rp_seccomp_t f;

    if ((mode == READ_ONLY || mode == EXTRACT) && !libraries_ready())
        return false;
    if (!fence(mode))
        return false;
    rp_seccomp_new(&f, SCMP_ACT_KILL_PROCESS, true, RP_SECCOMP_NAMES(allowed));
    if (mode == RESOLVE) {
        rp_seccomp_add(&f, SCMP_ACT_ALLOW, RP_SECCOMP_NAMES(resolver));
        allow_sockets(&f);
    }
    if (mode == READER)
        rp_seccomp_add(&f, SCMP_ACT_ALLOW, RP_SECCOMP_NAMES(reader));
    if (mode == BROKER) {
        rp_seccomp_add(&f, SCMP_ACT_ALLOW, RP_SECCOMP_NAMES(broker));
        /* SIOCOUTQ alone: what an app has not read (appchan.c) */
        rp_seccomp_rule(&f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                        SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)SIOCOUTQ, 0));
    }
    return rp_seccomp_load(&f, "rampart-unpack", NULL) == 0;
}

static bool number(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 10);
    return s[0] >= '0' && s[0] <= '9' && errno == 0 && *end == '\0';
}

static int answer(const rp_manifest_t *m)
{
    static uint8_t bin[RP_MANIFEST_BIN_LEN];

    rp_manifest_encode(m, bin);
    if (fputc('t', stdout) == EOF || fwrite(bin, 1, sizeof(bin), stdout) != sizeof(bin) ||
        fflush(stdout) != 0)
        return refuse("cannot write the manifest out");
    return 0;
}

/* metadata envelope: an older version's JSON envelope (len bytes), answered in its signed binary
 * form, at most RP_UNPACK_ENVELOPE_MAX bytes. */
static int unpack_envelope(const uint8_t *env, size_t len)
{
    static rp_md_signed_t s;
    char why[RP_UNPACK_WHY_MAX + 1] = "";
    uint8_t *bin = NULL;
    size_t n = 0;
    int rc = 0;

    if (rp_md_unpack((const char *)env, len, &s, why, sizeof(why)) != RP_OK)
        return refuse(why[0] != '\0' ? why : "the envelope is refused");
    if (rp_md_signed_encode(&s, &bin, &n) != RP_OK)
        rc = refuse("cannot encode the envelope");
    else if (n > RP_UNPACK_ENVELOPE_MAX)
        rc = refuse("the envelope is too large to migrate (its signed form exceeds 65536 bytes)");
    else if (fputc('s', stdout) == EOF || fwrite(bin, 1, n, stdout) != n || fflush(stdout) != 0)
        rc = refuse("cannot write the envelope out");
    free(bin);
    rp_md_signed_free(&s);
    return rc;
}

/* metadata: the payload (at most RP_MD_MAX bytes) read as kind, answered in its binary form. */
static int metadata(const char *kind_name, uint64_t len)
{
    static const char *const kinds[] = {NULL, "root", "targets", "capability"};
    static uint8_t payload[RP_MD_MAX], bin[RP_MD_DOC_BIN_MAX];
    static union {
        rp_md_root_t r;
        rp_md_targets_t t;
        rp_md_capability_t c;
    } doc;
    char why[RP_UNPACK_WHY_MAX + 1] = "";
    rp_md_kind_t kind = 0;
    size_t got = 0, n = 0;

    bool envelope = strcmp(kind_name, "envelope") == 0;

    for (int k = RP_MD_ROOT; k <= RP_MD_CAPABILITY; k++)
        if (strcmp(kind_name, kinds[k]) == 0)
            kind = (rp_md_kind_t)k;
    if ((kind == 0 && !envelope) || len == 0 || len > sizeof(payload))
        return refuse("usage: rampart-unpack metadata root|targets|capability|envelope LEN (1 to "
                      "262144)");
    while (got < len) {
        ssize_t r = pread(STDIN_FILENO, payload + got, len - got, (off_t)got);
        if (r <= 0 && !(r < 0 && errno == EINTR))
            return refuse("cannot read the payload");
        if (r > 0)
            got += (size_t)r;
    }
    if (envelope)
        return unpack_envelope(payload, len);
    if (rp_md_parse(NULL, kind, payload, len, &doc, bin, &n, why, sizeof(why)) != RP_OK)
        return refuse(why[0] != '\0' ? why : "the payload is refused");
    if (fputc('d', stdout) == EOF || fwrite(bin, 1, n, stdout) != n || fflush(stdout) != 0)
        return refuse("cannot write the document out");
    return 0;
}

/* resolve: each name's IPv4 addresses (those an app may reach, at most RP_NETADDRS_PER_NAME,
 * each once; a name that does not resolve: none), answered in their binary form. */
static int resolve(char **names, size_t n)
{
    static rp_netaddrs_t got[RP_NETADDRS_NAMES_MAX];
    static uint8_t bin[RP_NETADDRS_BIN_MAX];
    size_t len = 0;

    if (n == 0 || n > RP_NETADDRS_NAMES_MAX)
        return refuse("usage: rampart-unpack resolve NAME... (1 to 32 names)");
    for (size_t i = 0; i < n; i++) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
        int rc = getaddrinfo(names[i], NULL, &hints, &res);
        if (rc != 0) {
            fprintf(stderr, "%s does not resolve: %s\n", names[i], gai_strerror(rc));
            continue;
        }
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
            if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in))
                (void)rp_netaddrs_add(&got[i], ((const struct sockaddr_in *)ai->ai_addr)->sin_addr);
        freeaddrinfo(res);
    }
    if (rp_netaddrs_encode(got, n, bin, sizeof(bin), &len) != RP_OK)
        return refuse("cannot encode the addresses");
    if (fputc('a', stdout) == EOF || fwrite(bin, 1, len, stdout) != len || fflush(stdout) != 0)
        return refuse("cannot write the addresses out");
    return 0;
}

int main(int argc, char **argv)
{
    static rp_manifest_t m;
    char why[RP_UNPACK_WHY_MAX + 1] = "";
    rp_apptree_kind_t kind;
    uint64_t off, len;
    bool extract;
    rp_err_t err;

    /* The app broker (device/broker/broker.h): its socket to the monitor at descriptor 3, nothing
     * on disk (BROKER is fenced as READ_ONLY: no file right granted). */
    if (argc == 2 && strcmp(argv[1], "broker") == 0) {
        rp_log_init("rampart-broker", RP_LOG_INFO);
        return confine(BROKER) ? rp_broker_run(3) : refuse("cannot confine rampart-broker");
    }
    if (argc == 4 && strcmp(argv[1], "read") == 0)
        return confine(READER)
                   ? rp_read_run(strcmp(argv[2], "audit") == 0, strcmp(argv[3], "nflog") == 0)
                   : refuse("cannot confine rampart-unpack");
    if (argc >= 2 && strcmp(argv[1], "resolve") == 0)
        return confine(RESOLVE) ? resolve(argv + 2, (size_t)argc - 2)
                                : refuse("cannot confine rampart-unpack");
    if (argc == 4 && strcmp(argv[1], "metadata") == 0 && number(argv[3], &len))
        return confine(READ_ONLY) ? metadata(argv[2], len)
                                  : refuse("cannot confine rampart-unpack");
    if (argc != 4 || (strcmp(argv[1], "manifest") != 0 && strcmp(argv[1], "extract") != 0) ||
        !number(argv[2], &off) || !number(argv[3], &len))
        return refuse("usage: rampart-unpack manifest|extract OFF LEN (the slot on stdin), "
                      "metadata KIND LEN (the payload on stdin), resolve NAME..., or broker");
    extract = strcmp(argv[1], "extract") == 0;
    if (!confine(extract ? EXTRACT : READ_ONLY))
        return refuse("cannot confine rampart-unpack");
    err = rp_apptree_kind(STDIN_FILENO, off, len, &kind);
    if (err != RP_OK)
        return refuse("cannot read the payload");
    if (kind != RP_APPTREE_TREE)
        return fputc('l', stdout) == EOF || fflush(stdout) != 0 ? 2 : 0;
    if (extract)
        err = rp_apptree_extract(STDIN_FILENO, off, len, RP_UNPACK_TREE, RP_UNPACK_TREE_BYTES_MAX,
                                 RP_APPTREE_ENTRIES_MAX, &m, why, sizeof(why));
    else
        err = rp_apptree_read_manifest(STDIN_FILENO, off, len, &m, why, sizeof(why));
    if (err != RP_OK)
        return refuse(why[0] != '\0' ? why : "cannot read the payload");
    return answer(&m);
}
