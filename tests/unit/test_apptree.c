/*
 * App trees (lib/src/apptree.c): packing is reproducible (the same directory gives the same
 * bytes whatever its times, modes' umask bits and the owner) and refuses what an app tree may not
 * hold; a payload is told apart from a legacy single file; the manifest is read alone at an
 * offset; extraction makes exactly the tree, read-only, and refuses hostile archives built here
 * with libarchive (absolute names, "..", links out and writes through links, device nodes,
 * setuid, 10^5 entries, a 2 GiB claim, duplicates, the manifest not first...), leaving nothing
 * behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "rampart/apptree.h"
#include "rampart/file.h"

#define MANIFEST                                                                                   \
    "{\"SchemaVersion\": 1, \"Name\": \"demo\", \"ComponentId\": \"demo\", \"EntryPoint\": "       \
    "\"bin/app\", \"Memory\": {\"LimitKB\": 2048}}"

static char base[64]; /* a fresh directory per test */

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/test_apptree.XXXXXX");
    return mkdtemp(base) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[256];

    (void)state;
    snprintf(cmd, sizeof(cmd), "chmod -R u+rwX %s 2>/dev/null; rm -rf %s", base, base);
    return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *rel, const char *text, mode_t mode)
{
    char path[512];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", base, rel);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(rp_write_all(fd, text, strlen(text)), RP_OK);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void mk(const char *rel, mode_t mode)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", base, rel);
    assert_int_equal(mkdir(path, mode), 0);
}

static void ln(const char *target, const char *rel)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", base, rel);
    assert_int_equal(symlink(target, path), 0);
}

/* A good app directory under base/src. */
static void make_app(void)
{
    mk("src", 0755);
    put("src/app_manifest.json", MANIFEST, 0644);
    mk("src/bin", 0755);
    put("src/bin/app", "#!/bin/sh\necho ready >&3\n", 0755);
    mk("src/lib", 0700);
    put("src/lib/data.txt", "data\n", 0600);
    put("src/lib/a-b", "sorted between lib/a and lib/b\n", 0644);
    ln("../bin/app", "src/lib/app-link");
    mk("src/empty", 0755);
}

static int temp_fd(void)
{
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/tmp.XXXXXX", base);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(unlink(path), 0);
    return fd;
}

static uint64_t fd_size(int fd)
{
    struct stat st;

    assert_int_equal(fstat(fd, &st), 0);
    return (uint64_t)st.st_size;
}

static int pack(const char *rel, char *why, size_t cap, rp_err_t *err)
{
    char dir[256];
    int fd = temp_fd();

    snprintf(dir, sizeof(dir), "%s/%s", base, rel);
    *err = rp_apptree_pack(dir, fd, NULL, why, cap);
    return fd;
}

static uint8_t *slurp(int fd, size_t *len)
{
    uint8_t *buf;

    *len = (size_t)fd_size(fd);
    buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(rp_pread_all(fd, buf, *len, 0), RP_OK);
    return buf;
}

static void test_pack_reproducible(void **state)
{
    struct timespec times[2] = {{.tv_sec = 12345}, {.tv_sec = 67890}};
    char why[512], path[256];
    size_t len1, len2;
    uint8_t *a, *b;
    rp_manifest_t m;
    rp_err_t err;
    int fd1, fd2;

    (void)state;
    make_app();
    fd1 = temp_fd();
    snprintf(path, sizeof(path), "%s/src", base);
    assert_int_equal(rp_apptree_pack(path, fd1, &m, why, sizeof(why)), RP_OK);
    assert_string_equal(m.component_id, "demo");
    assert_int_equal(m.memory_kb, 2048);

    /* Other times, other permission bits (a different umask), the same content: same bytes. */
    snprintf(path, sizeof(path), "%s/src/bin/app", base);
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    assert_int_equal(chmod(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/src/lib/data.txt", base);
    assert_int_equal(chmod(path, 0664), 0);
    snprintf(path, sizeof(path), "%s/src/lib", base);
    assert_int_equal(chmod(path, 0775), 0);
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    fd2 = pack("src", why, sizeof(why), &err);
    assert_int_equal(err, RP_OK);
    a = slurp(fd1, &len1);
    b = slurp(fd2, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(a, b, len1);

    /* A changed byte of content is a different archive (the test can fail). */
    put("src/lib/data.txt", "Data\n", 0600);
    close(fd2);
    fd2 = pack("src", why, sizeof(why), &err);
    assert_int_equal(err, RP_OK);
    free(b);
    b = slurp(fd2, &len2);
    assert_int_equal(len1, len2);
    assert_memory_not_equal(a, b, len1);
    free(a);
    free(b);
    close(fd1);
    close(fd2);
}

/* What pack wrote, entry by entry, read back with libarchive. */
static void test_pack_shape(void **state)
{
    static const char *const order[] = {
        "app_manifest.json", "bin/",         "bin/app",     "empty/", "lib/",
        "lib/a-b",           "lib/app-link", "lib/data.txt"};
    struct archive_entry *e;
    struct archive *a;
    size_t len, i = 0;
    char why[512];
    uint8_t *buf;
    rp_err_t err;
    int fd;

    (void)state;
    make_app();
    fd = pack("src", why, sizeof(why), &err);
    assert_int_equal(err, RP_OK);
    buf = slurp(fd, &len);
    assert_int_equal(len % 512, 0);
    a = archive_read_new();
    assert_int_equal(archive_read_support_format_tar(a), ARCHIVE_OK);
    assert_int_equal(archive_read_open_memory(a, buf, len), ARCHIVE_OK);
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        assert_true(i < sizeof(order) / sizeof(order[0]));
        assert_string_equal(name, order[i]);
        assert_int_equal(archive_format(a), ARCHIVE_FORMAT_TAR_USTAR);
        assert_int_equal(archive_entry_mtime(e), 0);
        assert_int_equal(archive_entry_uid(e), 0);
        assert_int_equal(archive_entry_gid(e), 0);
        assert_true(archive_entry_uname(e) == NULL || archive_entry_uname(e)[0] == '\0');
        assert_true(archive_entry_gname(e) == NULL || archive_entry_gname(e)[0] == '\0');
        if (strcmp(name, "bin/app") == 0 || archive_entry_filetype(e) == AE_IFDIR)
            assert_int_equal(archive_entry_perm(e), 0755);
        else if (archive_entry_filetype(e) == AE_IFREG)
            assert_int_equal(archive_entry_perm(e), 0644);
        if (strcmp(name, "lib/app-link") == 0) {
            assert_int_equal(archive_entry_filetype(e), AE_IFLNK);
            assert_string_equal(archive_entry_symlink(e), "../bin/app");
        }
        i++;
    }
    assert_int_equal(i, sizeof(order) / sizeof(order[0]));
    archive_read_free(a);
    free(buf);
    close(fd);
}

/* Each case: a good app with one thing wrong, and the fragment of the refusal. */
static void test_pack_refusals(void **state)
{
    char why[512];
    rp_err_t err;
    int fd;

    (void)state;
#define REFUSED(fragment)                                                                          \
    do {                                                                                           \
        fd = pack("src", why, sizeof(why), &err);                                                  \
        close(fd);                                                                                 \
        if (err == RP_OK || strstr(why, fragment) == NULL)                                         \
            fail_msg("line %d: got %d \"%s\", wanted \"%s\"", __LINE__, err, why, fragment);       \
    } while (0)
#define RESET()                                                                                    \
    do {                                                                                           \
        assert_int_equal(teardown(NULL), 0);                                                       \
        assert_int_equal(setup(NULL), 0);                                                          \
        make_app();                                                                                \
    } while (0)

    make_app();
    {
        char path[512];
        snprintf(path, sizeof(path), "%s/src/fifo", base);
        assert_int_equal(mkfifo(path, 0644), 0);
        REFUSED("fifo: a FIFO (not allowed in an app tree)");
    }
    RESET();
    {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/src/sock", base);
        assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(s);
        REFUSED("sock: a socket");
    }
    RESET();
    {
        char a[256], b[256];
        snprintf(a, sizeof(a), "%s/src/lib/data.txt", base);
        snprintf(b, sizeof(b), "%s/src/lib/hard", base);
        assert_int_equal(link(a, b), 0);
        REFUSED("a hard link");
    }
    RESET();
    put("src/bin/suid", "x", 04755);
    REFUSED("bin/suid: setuid, setgid or sticky bit");
    RESET();
    put("src/bin/sgid", "x", 02755);
    REFUSED("bin/sgid: setuid, setgid or sticky bit");
    RESET();
    mk("src/tmp", 01777);
    {
        char path[512];
        snprintf(path, sizeof(path), "%s/src/tmp", base);
        assert_int_equal(chmod(path, 01777), 0);
    }
    REFUSED("tmp: setuid, setgid or sticky bit");
    RESET();
    ln("/etc/passwd", "src/lib/abs");
    REFUSED("lib/abs: a link to /etc/passwd, which is absolute");
    RESET();
    ln("../../outside", "src/lib/out");
    REFUSED("lib/out: a link to ../../outside");
    RESET();
    ln("../bin/../../x", "src/lib/out");
    REFUSED("leaves the tree");
    RESET();
    ln("..", "src/up");
    REFUSED("up: a link to ..");
    RESET();
    put("src/bad\nname", "x", 0644);
    REFUSED("not an allowed name");
    RESET();
    {
        /* Four directories of 60 bytes and a file of 20: 264 bytes, over RP_APPTREE_PATH_MAX. */
        char path[300] = "src";
        for (int i = 0; i < 4; i++) {
            size_t n = strlen(path);
            path[n] = '/';
            memset(path + n + 1, 'd', 60);
            path[n + 61] = '\0';
            mk(path, 0755);
        }
        strcat(path, "/ffffffffffffffffffff");
        put(path, "x", 0644);
        REFUSED("not an allowed name");
    }
    RESET();
    put("src/app_manifest.json", "{\"SchemaVersion\": 1}", 0644);
    REFUSED("Name: required");
    RESET();
    put("src/app_manifest.json",
        "{\"SchemaVersion\": 1, \"Name\": \"d\", \"ComponentId\": \"d\", \"EntryPoint\": "
        "\"bin/app\", \"MutableStorage\": {\"SizKB\": 1}}",
        0644);
    REFUSED("MutableStorage.SizKB: unknown key");
    RESET();
    {
        char path[512];
        snprintf(path, sizeof(path), "%s/src/app_manifest.json", base);
        assert_int_equal(unlink(path), 0);
        REFUSED("no app_manifest.json file at its root");
    }
    RESET();
    put("src/bin/app", "not executable", 0644);
    REFUSED("EntryPoint bin/app: not executable");
    RESET();
    {
        char path[512];
        snprintf(path, sizeof(path), "%s/src/bin/app", base);
        assert_int_equal(unlink(path), 0);
        REFUSED("EntryPoint bin/app: not in the tree");
        ln("../lib/data.txt", "src/bin/app");
        REFUSED("EntryPoint bin/app: not a regular file");
    }
    RESET();
    {
        char path[512];
        snprintf(path, sizeof(path), "%s/src/app_manifest.json", base);
        assert_int_equal(unlink(path), 0);
        ln("bin/app", "src/app_manifest.json");
        REFUSED("no app_manifest.json file at its root");
    }
#undef REFUSED
#undef RESET
}

static void test_kind_and_manifest(void **state)
{
    static const char elf[] = "\x7f"
                              "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
    rp_apptree_kind_t kind;
    char why[512], buf[4096];
    rp_manifest_t m;
    uint64_t len;
    rp_err_t err;
    int fd, junk;

    (void)state;
    make_app();
    fd = pack("src", why, sizeof(why), &err);
    assert_int_equal(err, RP_OK);
    len = fd_size(fd);
    assert_int_equal(rp_apptree_kind(fd, 0, len, &kind), RP_OK);
    assert_int_equal(kind, RP_APPTREE_TREE);
    assert_int_equal(rp_apptree_read_manifest(fd, 0, len, &m, why, sizeof(why)), RP_OK);
    assert_string_equal(m.entry_point, "bin/app");

    /* At an offset, as in an image (a header area before, TLVs after). */
    junk = temp_fd();
    memset(buf, 0xff, 512);
    assert_int_equal(rp_write_all(junk, buf, 512), RP_OK);
    {
        uint8_t *all;
        size_t n;
        all = slurp(fd, &n);
        assert_int_equal(rp_write_all(junk, all, n), RP_OK);
        assert_int_equal(rp_write_all(junk, "TLVs after", 10), RP_OK);
        free(all);
    }
    assert_int_equal(rp_apptree_kind(junk, 512, len, &kind), RP_OK);
    assert_int_equal(kind, RP_APPTREE_TREE);
    assert_int_equal(rp_apptree_read_manifest(junk, 512, len, &m, why, sizeof(why)), RP_OK);
    assert_string_equal(m.component_id, "demo");
    /* Read from the wrong place, it is not a tree. */
    assert_int_equal(rp_apptree_kind(junk, 0, len, &kind), RP_OK);
    assert_int_equal(kind, RP_APPTREE_LEGACY);
    close(junk);
    close(fd);

    /* Legacy payloads: a program, a script, nothing (a tar of any kind is a tree: below). */
    fd = temp_fd();
    assert_int_equal(rp_write_all(fd, elf, sizeof(elf)), RP_OK);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(rp_write_all(fd, buf, sizeof(buf)), RP_OK);
    assert_int_equal(rp_apptree_kind(fd, 0, fd_size(fd), &kind), RP_OK);
    assert_int_equal(kind, RP_APPTREE_LEGACY);
    assert_int_not_equal(rp_apptree_read_manifest(fd, 0, fd_size(fd), &m, why, sizeof(why)), RP_OK);
    assert_non_null(strstr(why, "not an app tree"));
    close(fd);
    fd = temp_fd();
    assert_int_equal(rp_write_all(fd, "#!/bin/sh\necho ready\n", 21), RP_OK);
    assert_int_equal(rp_apptree_kind(fd, 0, 21, &kind), RP_OK);
    assert_int_equal(kind, RP_APPTREE_LEGACY);
    assert_int_equal(rp_apptree_kind(fd, 0, 0, &kind), RP_OK);
    assert_int_equal(kind, RP_APPTREE_LEGACY);
    close(fd);
}

/* ---- hostile archives ---- */

struct spec {
    const char *name;
    mode_t type; /* AE_IF*; 0: a regular file */
    mode_t perm; /* 0: 0644 (0755 for directories) */
    const char *data;
    const char *link;     /* a symlink's target */
    const char *hardlink; /* a hard link's target */
};

static const struct spec good_entries[] = {
    {"bin",          AE_IFDIR, 0,    NULL,                   NULL,         NULL},
    {"bin/app",      0,        0755, "#!/bin/sh\necho ok\n", NULL,         NULL},
    {"lib",          AE_IFDIR, 0,    NULL,                   NULL,         NULL},
    {"lib/data.txt", 0,        0644, "data\n",               NULL,         NULL},
    {"lib/app",      AE_IFLNK, 0777, NULL,                   "../bin/app", NULL},
};

static void add_entry(struct archive *w, const struct spec *s)
{
    struct archive_entry *e = archive_entry_new();
    size_t len = s->data != NULL ? strlen(s->data) : 0;

    archive_entry_set_pathname(e, s->name);
    archive_entry_set_filetype(e, s->type != 0 ? s->type : AE_IFREG);
    archive_entry_set_perm(e, s->perm != 0 ? s->perm : s->type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_size(e, s->type == 0 ? (la_int64_t)len : 0);
    if (s->link != NULL)
        archive_entry_set_symlink(e, s->link);
    if (s->hardlink != NULL)
        archive_entry_set_hardlink(e, s->hardlink);
    if (s->type == AE_IFCHR)
        archive_entry_set_rdev(e, makedev(1, 1));
    assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
    if (len > 0)
        assert_int_equal(archive_write_data(w, s->data, len), (la_ssize_t)len);
    archive_entry_free(e);
}

/* A tar (pax, as other tools write them) of the manifest (unless !manifest_first), then the good
 * entries (unless !good), then extra[]. */
static int build(bool manifest_first, bool good, const struct spec *extra, size_t nextra)
{
    const struct spec manifest = {"app_manifest.json", 0, 0644, MANIFEST, NULL, NULL};
    struct archive *w = archive_write_new();
    int fd = temp_fd();

    assert_int_equal(archive_write_set_format_pax_restricted(w), ARCHIVE_OK);
    assert_int_equal(archive_write_open_fd(w, fd), ARCHIVE_OK);
    if (manifest_first)
        add_entry(w, &manifest);
    for (size_t i = 0; good && i < sizeof(good_entries) / sizeof(good_entries[0]); i++)
        add_entry(w, &good_entries[i]);
    for (size_t i = 0; i < nextra; i++)
        add_entry(w, &extra[i]);
    if (!manifest_first)
        add_entry(w, &manifest);
    assert_int_equal(archive_write_close(w), ARCHIVE_OK);
    archive_write_free(w);
    return fd;
}

static bool exists(const char *rel)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", base, rel);
    return lstat(path, &st) == 0;
}

static void expect_refused(int fd, uint64_t max_bytes, size_t max_entries, const char *fragment,
                           int line)
{
    char dest[256], why[512];
    rp_manifest_t m;
    rp_err_t err;

    char checked[512];

    snprintf(dest, sizeof(dest), "%s/tree", base);
    err =
        rp_apptree_extract(fd, 0, fd_size(fd), dest, max_bytes, max_entries, &m, why, sizeof(why));
    if (err == RP_OK || strstr(why, fragment) == NULL)
        fail_msg("line %d: got %d \"%s\", wanted \"%s\"", line, err, why, fragment);
    if (exists("tree"))
        fail_msg("line %d: the partial tree was left behind", line);
    assert_string_equal(m.component_id, "");
    /* The check that `app check`, `image sign --type app FILE` and the upload run is the same
     * walk: within the same limits it refuses the same tree for the same reason (review r15tool
     * M2), writing nothing. */
    if ((max_bytes == 1 << 20 && max_entries == 64) || max_entries == RP_APPTREE_ENTRIES_MAX) {
        err = rp_apptree_check(fd, 0, fd_size(fd), &m, checked, sizeof(checked));
        if (err != RP_ERR_MALFORMED || strcmp(checked, why) != 0)
            fail_msg("line %d: the check got %d \"%s\", the extractor \"%s\"", line, err, checked,
                     why);
        assert_string_equal(m.component_id, "");
    }
    close(fd);
}
#define REFUSED(fd, bytes, entries, fragment) expect_refused(fd, bytes, entries, fragment, __LINE__)

static void test_extract_good(void **state)
{
    char dest[256], why[512], path[300], buf[64];
    rp_manifest_t m;
    struct stat st;
    ssize_t n;
    int fd;

    (void)state;
    fd = build(true, true, NULL, 0);
    snprintf(dest, sizeof(dest), "%s/tree", base);
    assert_int_equal(
        rp_apptree_extract(fd, 0, fd_size(fd), dest, 1 << 20, 64, &m, why, sizeof(why)), RP_OK);
    assert_string_equal(m.component_id, "demo");
    memset(&m, 0, sizeof(m));
    assert_int_equal(rp_apptree_check(fd, 0, fd_size(fd), &m, why, sizeof(why)), RP_OK);
    assert_string_equal(m.component_id, "demo");
    assert_string_equal(why, "");
    snprintf(path, sizeof(path), "%s/bin/app", dest);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0555);
    snprintf(path, sizeof(path), "%s/lib/data.txt", dest);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    snprintf(path, sizeof(path), "%s/app_manifest.json", dest);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    assert_int_equal((size_t)st.st_size, strlen(MANIFEST));
    snprintf(path, sizeof(path), "%s/lib", dest);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    assert_int_equal(lstat(dest, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    snprintf(path, sizeof(path), "%s/lib/app", dest);
    n = readlink(path, buf, sizeof(buf));
    assert_int_equal(n, 10);
    assert_memory_equal(buf, "../bin/app", 10);
    /* A second extraction into the same place is refused, and leaves the first alone. */
    assert_int_equal(
        rp_apptree_extract(fd, 0, fd_size(fd), dest, 1 << 20, 64, &m, why, sizeof(why)),
        RP_ERR_EXISTS);
    assert_true(exists("tree/bin/app"));
    assert_int_equal(rp_apptree_remove(dest), RP_OK);
    assert_false(exists("tree"));
    close(fd);
}

static void test_extract_pack_round_trip(void **state)
{
    char dest[256], why[512], path[300];
    rp_manifest_t m;
    rp_err_t err;
    int fd, fd2;

    (void)state;
    make_app();
    fd = pack("src", why, sizeof(why), &err);
    assert_int_equal(err, RP_OK);
    snprintf(dest, sizeof(dest), "%s/tree", base);
    assert_int_equal(
        rp_apptree_extract(fd, 0, fd_size(fd), dest, 1 << 20, 64, &m, why, sizeof(why)), RP_OK);
    /* The extracted tree packs to the same bytes. */
    fd2 = pack("tree", why, sizeof(why), &err);
    assert_int_equal(err, RP_OK);
    {
        size_t l1, l2;
        uint8_t *a = slurp(fd, &l1), *b = slurp(fd2, &l2);
        assert_int_equal(l1, l2);
        assert_memory_equal(a, b, l1);
        free(a);
        free(b);
    }
    snprintf(path, sizeof(path), "%s/empty", dest);
    assert_true(exists("tree/empty"));
    assert_int_equal(rp_apptree_remove(dest), RP_OK);
    close(fd);
    close(fd2);
}

static void test_extract_hostile(void **state)
{
    (void)state;
    {
        const struct spec s[] = {
            {"/etc/rampart-test", 0, 0, "x", NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "/etc/rampart-test: not a clean relative");
    }
    {
        const struct spec s[] = {
            {"../escaped", 0, 0, "x", NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "../escaped: not a clean relative name");
        assert_false(exists("escaped"));
    }
    {
        const struct spec s[] = {
            {"lib/../../escaped", 0, 0, "x", NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "not a clean relative name");
    }
    {
        /* A link to /etc, then a file through it. */
        const struct spec s[] = {
            {"etc",        AE_IFLNK, 0777, NULL, "/etc", NULL},
            {"etc/passwd", 0,        0,    "x",  NULL,   NULL},
        };
        REFUSED(build(true, true, s, 2), 1 << 20, 64, "etc: a link to /etc, which is absolute");
    }
    {
        /* A link that stays inside, then a file through it: never written through a link. */
        const struct spec s[] = {
            {"inside",   AE_IFLNK, 0777, NULL, "lib", NULL},
            {"inside/x", 0,        0,    "x",  NULL,  NULL},
        };
        REFUSED(build(true, true, s, 2), 1 << 20, 64,
                "inside/x: inside is a link or not a directory: nothing is written through it");
    }
    {
        const struct spec s[] = {
            {"lib/out", AE_IFLNK, 0777, NULL, "../../tmp", NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "lib/out: a link to ../../tmp");
    }
    {
        const struct spec s[] = {
            {"lib/out", AE_IFLNK, 0777, NULL, "../lib/../..", NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "leaves the tree");
    }
    {
        const struct spec s[] = {
            {"mem", AE_IFCHR, 0600, NULL, NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "mem: a character device");
    }
    {
        const struct spec s[] = {
            {"disk", AE_IFBLK, 0600, NULL, NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "disk: a block device");
    }
    {
        const struct spec s[] = {
            {"pipe", AE_IFIFO, 0600, NULL, NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "pipe: a FIFO");
    }
    {
        const struct spec s[] = {
            {"bin/su", 0, 04755, "x", NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "bin/su: setuid, setgid or sticky bit");
    }
    {
        const struct spec s[] = {
            {"bin/sg", 0, 02755, "x", NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "bin/sg: setuid, setgid or sticky bit");
    }
    {
        const struct spec s[] = {
            {"tmp", AE_IFDIR, 01777, NULL, NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "tmp: setuid, setgid or sticky bit");
    }
    {
        const struct spec s[] = {
            {"lib/hard", 0, 0644, NULL, NULL, "lib/data.txt"}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "lib/hard: a hard link");
    }
    {
        const struct spec s[] = {
            {"lib/data.txt", 0, 0644, "again\n", NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "lib/data.txt: listed twice");
    }
    {
        const struct spec s[] = {
            {"lib", AE_IFDIR, 0755, NULL, NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "lib: listed twice");
    }
    {
        const struct spec s[] = {
            {"app_manifest.json", 0, 0644, MANIFEST, NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64, "app_manifest.json: listed twice");
    }
    {
        const struct spec s[] = {
            {"nodir/file", 0, 0644, "x", NULL, NULL}
        };
        REFUSED(build(true, true, s, 1), 1 << 20, 64,
                "nodir/file: its directory nodir is not in the archive before it");
    }
    /* The manifest not first. */
    REFUSED(build(false, true, NULL, 0), 1 << 20, 64,
            "not an app tree: its first entry is bin, not the file app_manifest.json");
    /* Over the size limit: the manifest and the good files are 89 + 19 + 5 bytes. */
    REFUSED(build(true, true, NULL, 0), 100, 64, "the tree goes over its size limit");
    /* Over the entry limit (the manifest and five). */
    REFUSED(build(true, true, NULL, 0), 1 << 20, 5, "more than 5 entries");
    /* The EntryPoint missing. */
    REFUSED(build(true, false, NULL, 0), 1 << 20, 64, "EntryPoint bin/app: not in the tree");
    {
        const struct spec s[] = {
            {"bin",     AE_IFDIR, 0,    NULL, NULL, NULL},
            {"bin/app", 0,        0644, "x",  NULL, NULL},
        };
        REFUSED(build(true, false, s, 2), 1 << 20, 64, "EntryPoint bin/app: not executable");
    }
    {
        const struct spec s[] = {
            {"bin",     AE_IFDIR, 0,    NULL, NULL, NULL},
            {"bin/x",   0,        0755, "x",  NULL, NULL},
            {"bin/app", AE_IFLNK, 0777, NULL, "x",  NULL},
        };
        REFUSED(build(true, false, s, 3), 1 << 20, 64, "EntryPoint bin/app: not a regular file");
    }
}

/* A tar of exactly these entries (pax, as other tools write them). */
static int build_only(const struct spec *s, size_t n)
{
    struct archive *w = archive_write_new();
    int fd = temp_fd();

    assert_int_equal(archive_write_set_format_pax_restricted(w), ARCHIVE_OK);
    assert_int_equal(archive_write_open_fd(w, fd), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++)
        add_entry(w, &s[i]);
    assert_int_equal(archive_write_close(w), ARCHIVE_OK);
    archive_write_free(w);
    return fd;
}

/*
 * A tar made the usual way (`tar cf F -C DIR .`: "./" first, every name "./..."), and any tar
 * that is not a valid tree: a tree to rp_apptree_kind, so the walk judges it everywhere, never
 * a legacy single file (review r16 M1).
 */
static void test_tar_is_tree(void **state)
{
    const struct spec dot = {"./", AE_IFDIR, 0, NULL, NULL, NULL},
                      man = {"./app_manifest.json", 0, 0644, MANIFEST, NULL, NULL},
                      bin = {"./bin/", AE_IFDIR, 0, NULL, NULL, NULL},
                      app = {"./bin/app", 0, 0755, "#!/bin/sh\necho ok\n", NULL, NULL};
    static const uint8_t zeros[1024];
    char dest[256], why[512];
    rp_apptree_kind_t kind;
    rp_manifest_t m;
    int fd;

    (void)state;
    {
        const struct spec s[] = {dot, man, bin, app};
        fd = build_only(s, 4);
        assert_int_equal(rp_apptree_kind(fd, 0, fd_size(fd), &kind), RP_OK);
        assert_int_equal(kind, RP_APPTREE_TREE);
        assert_int_equal(rp_apptree_check(fd, 0, fd_size(fd), &m, why, sizeof(why)), RP_OK);
        assert_string_equal(m.component_id, "demo");
        assert_int_equal(rp_apptree_read_manifest(fd, 0, fd_size(fd), &m, why, sizeof(why)), RP_OK);
        snprintf(dest, sizeof(dest), "%s/tree", base);
        assert_int_equal(
            rp_apptree_extract(fd, 0, fd_size(fd), dest, 1 << 20, 64, &m, why, sizeof(why)), RP_OK);
        assert_true(exists("tree/app_manifest.json") && exists("tree/bin/app"));
        assert_int_equal(rp_apptree_remove(dest), RP_OK);
        close(fd);
    }
    {
        const struct spec s[] = {
            dot, man, bin, app, {"./bin/evil", AE_IFLNK, 0777, NULL, "/etc/shadow", NULL}
        };
        REFUSED(build_only(s, 5), 1 << 20, 64, "bin/evil: a link to /etc/shadow");
    }
    {
        const struct spec s[] = {dot, bin, app};
        fd = build_only(s, 3);
        assert_int_equal(rp_apptree_kind(fd, 0, fd_size(fd), &kind), RP_OK);
        assert_int_equal(kind, RP_APPTREE_TREE);
        REFUSED(fd, 1 << 20, 64,
                "not an app tree: its first entry is bin, not the file app_manifest.json");
    }
    {
        const struct spec s[] = {man, dot, bin, app}; /* the root only first */
        REFUSED(build_only(s, 4), 1 << 20, 64, ": not a clean relative name");
    }
    {
        const struct spec s[] = {
            dot, man, {"././bin/", AE_IFDIR, 0, NULL, NULL, NULL}
        };
        REFUSED(build_only(s, 3), 1 << 20, 64, "././bin/: not a clean relative name");
    }
    {
        const struct spec s[] = {
            dot, man, bin, {"bin", AE_IFDIR, 0, NULL, NULL, NULL}
        };
        REFUSED(build_only(s, 4), 1 << 20, 64, "bin: listed twice"); /* one name, two spellings */
    }
    /* An empty tar (its end blocks alone) is a tree too, and refused as empty. */
    fd = temp_fd();
    assert_int_equal(rp_write_all(fd, zeros, sizeof(zeros)), RP_OK);
    assert_int_equal(rp_apptree_kind(fd, 0, fd_size(fd), &kind), RP_OK);
    assert_int_equal(kind, RP_APPTREE_TREE);
    REFUSED(fd, 1 << 20, 64, "not an app tree: the archive is empty");
}

/* 10^5 entries: refused at the limit, and every file made before it is removed. */
static void test_extract_many_entries(void **state)
{
    struct archive *w = archive_write_new();
    struct archive_entry *e;
    char name[32];
    int fd = temp_fd();

    (void)state;
    assert_int_equal(archive_write_set_format_ustar(w), ARCHIVE_OK);
    assert_int_equal(archive_write_open_fd(w, fd), ARCHIVE_OK);
    e = archive_entry_new();
    archive_entry_set_pathname(e, "app_manifest.json");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)strlen(MANIFEST));
    assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(w, MANIFEST, strlen(MANIFEST)),
                     (la_ssize_t)strlen(MANIFEST));
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof(name), "f%06d", i);
        archive_entry_clear(e);
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 0);
        assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
    }
    archive_entry_free(e);
    assert_int_equal(archive_write_close(w), ARCHIVE_OK);
    archive_write_free(w);
    REFUSED(fd, 1 << 20, RP_APPTREE_ENTRIES_MAX, "more than 4096 entries");
}

/* An entry claiming 2 GiB (its header says so; the bytes are not there): refused before any is
 * written. A header is 512 bytes: the size field is 12 octal digits at 124, the checksum 8 at
 * 148, the sum of the header's bytes with the checksum field read as spaces. */
static void test_extract_size_claim(void **state)
{
    const struct spec s[] = {
        {"big", 0, 0644, "x", NULL, NULL}
    };
    int fd = build(true, true, s, 1);
    uint8_t *buf, *h = NULL;
    unsigned sum = 0;
    size_t len;

    (void)state;
    buf = slurp(fd, &len);
    for (size_t off = 0; off + 512 <= len; off += 512)
        if (memcmp(buf + off, "big\0", 4) == 0)
            h = buf + off;
    assert_non_null(h);
    memcpy(h + 124, "20000000000", 12); /* 2^31 in octal, NUL-ended */
    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
    free(buf);
    REFUSED(fd, 64u << 20, 64, "big: 2147483648 bytes: the tree goes over its size limit");
}

/* A truncated archive: refused, nothing left. */
static void test_extract_truncated(void **state)
{
    const struct spec s[] = {
        {"lib/more", 0, 0644, "more data, cut short by the truncation", NULL, NULL}
    };
    int fd = build(true, true, s, 1);
    size_t len = (size_t)fd_size(fd);

    (void)state;
    /* Cut inside lib/more's data: its header promises bytes that are not there. */
    for (size_t cut = len; cut > 0; cut -= 512) {
        uint8_t hdr[512];
        assert_int_equal(rp_pread_all(fd, hdr, 512, cut - 512), RP_OK);
        if (memcmp(hdr, "lib/more", 9) == 0) {
            assert_int_equal(ftruncate(fd, (off_t)cut + 10), 0);
            break;
        }
    }
    REFUSED(fd, 1 << 20, 64, "lib/more: the archive ends inside it");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pack_reproducible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kind_and_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_pack_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar_is_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_many_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_size_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_truncated, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
