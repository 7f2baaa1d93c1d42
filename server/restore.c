/* Backing up and restoring the service's database (restore.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "db_sqlite.h"
#include "hold.h"
#include "rampart/failpoint.h"
#include "rampart/file.h"
#include "rampart/log.h"
#include "restore.h"
#include "store.h"

#define PENDING "restore.pending"
#define GENERATION "generation"

/* A file made in the data directory by a command run as root: given to the directory's owner, so
 * that the service, run as its own user, can read it (said when it cannot be). */
static void own_like_dir(const char *data_dir, const char *path)
{
    struct stat sb;

    if (geteuid() != 0 || stat(data_dir, &sb) != 0 || sb.st_uid == 0)
        return;
    if (chown(path, sb.st_uid, sb.st_gid) != 0)
        rp_log_warn("%s: cannot give it to the data directory's owner: %s", path, strerror(errno));
}

/* DIR/generation: the database generation the directory saw last (0 when there is none). */
static rp_err_t generation_read(const char *data_dir, int64_t *n)
{
    char path[PATH_MAX + 32], *end = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    long long v;
    rp_err_t err;

    *n = 0;
    snprintf(path, sizeof(path), "%s/" GENERATION, data_dir);
    err = rp_read_file(path, 64, &data, &len);
    if (err == RP_ERR_NOT_FOUND)
        return RP_OK;
    if (err != RP_OK) {
        rp_log_error("%s: %s", path, rp_strerror(err));
        return err;
    }
    errno = 0;
    v = strtoll((const char *)data, &end, 10);
    if (len == 0 || errno != 0 || v < 0 || v > (1LL << 62) || end == NULL ||
        (*end != '\n' && *end != '\0')) {
        rp_log_error("%s is damaged (not a number): remove it, and run `rampart-server restored` "
                     "if the database may be a backup put back",
                     path);
        free(data);
        return RP_ERR_MALFORMED;
    }
    free(data);
    *n = (int64_t)v;
    return RP_OK;
}

/*
 * The generation is two numbers in one (review r16 M3): the restore epoch, which only `restored`
 * raises, above GEN_COUNT_BITS; a count, raised by one at each start and revocation, below. Its
 * one order is theirs in turn: a database is older than the one a directory saw when its epoch is
 * lower, or the same with a lower count. So `restored`, run on any replica, puts the database
 * above every data directory's (a later epoch), and the other replicas start without it; a backup
 * put back by hand stays below (its epoch at most the directory's, and its count lower).
 */
#define GEN_COUNT_BITS 31 /* (2^31 starts and revocations; an epoch of seconds fits until 2106) */
#define GEN_EPOCH(g) ((g) >> GEN_COUNT_BITS)
#define GEN_COUNT(g) ((g) & (((int64_t)1 << GEN_COUNT_BITS) - 1))

/* OUT: *seen, *n: the generations of data_dir (DIR/generation) and of the database. */
static rp_err_t generation_pair(const char *data_dir, rp_store_t *store, int64_t *seen, int64_t *n)
{
    rp_err_t err = generation_read(data_dir, seen);

    *n = 0;
    return err == RP_OK ? rp_store_generation(store, n) : err;
}

/* Whether the database is older than the one data_dir saw last (DIR/generation): the one owner of
 * that check. RP_ERR_EXISTS (logged: what to do) when it is. OUT: as generation_pair's. */
static rp_err_t generation_check(const char *data_dir, rp_store_t *store, int64_t *seen, int64_t *n)
{
    rp_err_t err = generation_pair(data_dir, store, seen, n);

    if (err != RP_OK || *n >= *seen)
        return err;
    rp_log_error("the database is older than the one %s served last (generation %lld, not %lld): "
                 "a backup put back, or another database. Its revocations since are undone, and "
                 "its system token and nonce epoch are the backup's. Run `rampart-server restored "
                 "--data-dir %s` (with the same --database) first (docs/operations.md, \"Backing "
                 "up and restoring\")",
                 data_dir, (long long)*n, (long long)*seen, data_dir);
    return RP_ERR_EXISTS;
}

/* The database's generation raised and written to DIR/generation: after generation_check (refused
 * while the database is the older), its count by one; or, restoring (`restored`, which is the
 * acknowledgement), to a new restore epoch strictly above the database's and the directory's, and
 * at least the clock's seconds since 1970: above a directory that saw a restore this one did not,
 * even one acknowledged earlier the same day (review r17 M1; the clock only a floor), count 0. */
static rp_err_t generation_advance(const char *data_dir, rp_store_t *store, bool restoring)
{
    char path[PATH_MAX + 32], text[32];
    int64_t seen = 0, was = 0, got = 0, epoch, at_least;
    rp_err_t err;

    err = restoring ? generation_pair(data_dir, store, &seen, &was)
                    : generation_check(data_dir, store, &seen, &was);
    if (err == RP_ERR_EXISTS)
        return err; /* (said) */
    at_least = seen + 1;
    if (restoring) {
        epoch = GEN_EPOCH(seen > was ? seen : was) + 1;
        if (epoch < (int64_t)time(NULL))
            epoch = (int64_t)time(NULL);
        at_least = epoch << GEN_COUNT_BITS;
    }
    if (err == RP_OK)
        err = rp_store_generation_raise(store, at_least, &got);
    if (err == RP_OK) {
        snprintf(path, sizeof(path), "%s/" GENERATION, data_dir);
        snprintf(text, sizeof(text), "%lld\n", (long long)got);
        err = rp_write_file_atomic(path, text, strlen(text), 0600, 0);
        if (err == RP_OK)
            own_like_dir(data_dir, path);
    }
    if (err != RP_OK)
        rp_log_error("the database generation was not raised: %s", rp_strerror(err));
    return err;
}

void rp_restore_mark(const char *data_dir, rp_store_t *store)
{
    if (data_dir[0] != '\0')
        (void)generation_advance(data_dir, store, false); /* (logged) */
}

rp_err_t rp_restore_start(const char *data_dir, rp_store_t *store)
{
    return generation_advance(data_dir, store, false);
}

/* A time as the log writes times (UTC), or "an unknown time" for 0. */
static void utc(int64_t t, char *out, size_t cap)
{
    struct tm tm;

    if (t <= 0 || gmtime_r(&(time_t){(time_t)t}, &tm) == NULL ||
        strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "an unknown time");
}

/* The SQLite file of the --data-dir and --database given (out), or false (said, as what, unless
 * NULL) when the database is PostgreSQL's: pg_dump and pg_restore are its tools. */
static bool sqlite_file(const rp_server_t *srv, const char *what, char *out, size_t cap)
{
    if (srv->database[0] != '\0' && rp_db_driver_for(srv->database) != &rp_db_sqlite) {
        if (what != NULL)
            rp_log_error(
                "%s: the database is PostgreSQL's: use pg_dump, or pg_restore and then "
                "`rampart-server restored` (docs/operations.md, \"Backing up and restoring\"); "
                "nothing was done",
                what);
        return false;
    }
    if (srv->database[0] != '\0')
        snprintf(out, cap, "%s", srv->database);
    else
        snprintf(out, cap, "%s/rampart.db", srv->data_dir);
    return true;
}

int rp_backup_command(const rp_server_t *srv, const char *out)
{
    char db[PATH_MAX + 16], when[32];
    rp_atomic_file_t f;
    rp_store_t *store = NULL;
    int64_t now = (int64_t)time(NULL);
    rp_err_t err;

    if (!sqlite_file(srv, "backup", db, sizeof(db)))
        return 1;
    if (access(db, F_OK) != 0) { /* (a typo must not make one) */
        rp_log_error("backup: %s holds no Rampart database (%s: %s); nothing was done. Is "
                     "--data-dir the service's data directory?",
                     srv->data_dir, db, strerror(errno));
        return 1;
    }
    err = rp_atomic_begin(&f, out, 0600, 1);
    if (err == RP_ERR_EXISTS) {
        rp_log_error("backup: %s exists: name a new file (nothing was done)", out);
        return 1;
    }
    if (err == RP_OK)
        err = rp_db_sqlite_copy(db, f.tmp, now);
    if (err == RP_OK)
        err = rp_atomic_commit(&f, 1); /* fsync, link (refused if OUT appeared), fsync the dir */
    else
        rp_atomic_abort(&f);
    if (err != RP_OK) {
        rp_log_error("backup: %s not written: %s", out, rp_strerror(err));
        return 1;
    }
    /* The live database moves past the copy's generation: put back by hand, it is refused. */
    err = rp_server_store_open(srv, &store);
    if (err == RP_OK) /* (refused, and said, when the database is the older: review r16 H1) */
        err = generation_advance(srv->data_dir, store, false);
    if (err == RP_ERR_EXISTS)
        rp_log_warn("backup: %s is a copy of that older database; it still does not serve until "
                    "`rampart-server restored` has run",
                    out);
    else if (err != RP_OK)
        rp_log_warn("backup: the database's generation was not raised: a start will not know "
                    "the copy from it, if it is put back by hand (use rampart-server restore)");
    rp_store_close(store);
    utc(now, when, sizeof(when));
    rp_log_info("backup: %s written (0600), the database as it was at %s; keep it as secret as "
                "the database, and master.key apart from it (docs/operations.md, \"Backing up and "
                "restoring\")",
                out, when);
    return 0;
}

/* A new restore epoch on the database of srv (generation_advance), after its nonce epoch raised
 * when v is not NULL (OUT: the watermark before, after; the nonce epoch before, after). Logged. */
static rp_err_t restore_epoch(const rp_server_t *srv, int64_t *v)
{
    rp_store_t *store = NULL;
    rp_err_t err = rp_server_store_open(srv, &store); /* (migrated, when the backup is older) */

    if (err == RP_OK && v != NULL)
        err = rp_store_nonces_restored(store, &v[0], &v[1], &v[2], &v[3]);
    if (err == RP_OK) /* (above every data directory's: replicas start again) */
        err = generation_advance(srv->data_dir, store, true);
    rp_store_close(store);
    if (err != RP_OK)
        rp_log_error("restored: the %s was not raised: %s (run `rampart-server restored` again)",
                     v != NULL ? "nonce epoch or the generation" : "generation", rp_strerror(err));
    return err;
}

/* The post-restore step on the database of srv (restore.h): a new nonce epoch, a new system
 * token, and what it cannot redo, said. taken_at: the backup's time (0: unknown). */
static int post_restore(const rp_server_t *srv, rp_rotate_fn rotate, int64_t taken_at)
{
    int64_t v[4] = {0, 0, 0, 0}; /* the watermark before, after; the nonce epoch before, after */
    char since[64];

    if (restore_epoch(srv, v) != RP_OK)
        return 1;
    rp_log_info("restored: nonce epoch %lld (was %lld): every nonce issued before is refused "
                "(devices ask for another)",
                (long long)v[3], (long long)v[2]);
    if (rotate(srv) != RP_OK) {
        rp_log_error("restored: the system token was not rotated (run `rampart-server restored` "
                     "again)");
        return 1;
    }
    /* The rotation's revocation counted: a last new epoch leaves the count at 0, which is how
     * acknowledged() knows that nothing has happened on the database since (review r17 H1). */
    if (restore_epoch(srv, NULL) != RP_OK)
        return 1;
    utc(taken_at, since, sizeof(since));
    if (taken_at <= 0)
        snprintf(since, sizeof(since), "the backup's time (not recorded in it)");
    rp_log_warn("restored: the database is the backup of %s. Every system token but the new one "
                "in %s/admin.token is revoked, and devices' targets versions heal at their next "
                "update check. NOT redone: what was made since %s, which the backup does not hold. "
                "Do it again now: revoke again the tenant tokens revoked since (`rampart token "
                "revoke`); block or quarantine again the devices blocked or quarantined since "
                "(`rampart device block`), which also revokes their certificates again; a "
                "certificate issued since is unknown to this database and stays valid until it "
                "ends (24 h at most) and in no CRL; tenants, devices, images, deployments and "
                "settings made or changed since are gone (docs/operations.md, \"Restoring a "
                "backup\")",
                since, srv->data_dir, since);
    return 0;
}

/* The marker that a restore has not finished, made (durably, before the database changes) or
 * removed (once the post-restore step is done). */
static rp_err_t pending_set(const char *data_dir, bool on)
{
    char path[PATH_MAX + 32];
    int fd;

    snprintf(path, sizeof(path), "%s/" PENDING, data_dir);
    if (on) {
        static const char text[] = "a restore has not finished: run `rampart-server restored`\n";
        return rp_write_file_atomic(path, text, sizeof(text) - 1, 0600, 0);
    }
    if (unlink(path) != 0 && errno != ENOENT)
        return RP_ERR_IO;
    fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return RP_ERR_IO;
    if (fsync(fd) != 0) {
        close(fd);
        return RP_ERR_IO;
    }
    close(fd);
    return RP_OK;
}

/* A restore cut after the database at db was set aside and before the copy took its place (review
 * r16 L1): true, said (what to do), when DIR/restore.pending is there and db is not. */
static bool cut_set_aside(const char *data_dir, const char *db, const char *what)
{
    char path[PATH_MAX + 32];

    snprintf(path, sizeof(path), "%s/" PENDING, data_dir);
    if (access(path, F_OK) != 0 || access(db, F_OK) == 0)
        return false;
    rp_log_error(
        "%s: a restore was cut after it set the database aside, before the backup took its "
        "place (%s is missing). Run `rampart-server restore FILE --data-dir %s` again "
        "with the backup; or, to go back, rename the database it replaced (%s.replaced-"
        "TIME, and its -wal if there is one) back to %s and run `rampart-server restored "
        "--data-dir %s`",
        what, db, data_dir, db, db, data_dir);
    return true;
}

rp_err_t rp_restore_check(const rp_server_t *srv)
{
    char path[PATH_MAX + 32], db[PATH_MAX + 16];

    snprintf(path, sizeof(path), "%s/" PENDING, srv->data_dir);
    if (access(path, F_OK) != 0)
        return RP_OK;
    if (sqlite_file(srv, NULL, db, sizeof(db)) && cut_set_aside(srv->data_dir, db, "start"))
        return RP_ERR_EXISTS;
    rp_log_error("%s: a restore of the database has not finished: its revocations since the "
                 "backup are undone and its system token and nonce epoch are the backup's. Run "
                 "`rampart-server restored --data-dir %s` (with the same --database) first "
                 "(docs/operations.md, \"Backing up and restoring\")",
                 path, srv->data_dir);
    return RP_ERR_EXISTS;
}

/* Move the database at db and its -wal out of the way, kept as db.replaced-STAMP (and -wal), and
 * its -shm removed: what a crash leaves then is no database, or the old one whole. */
static rp_err_t set_aside(const char *db, char *kept, size_t cap)
{
    char wal[PATH_MAX + 16], shm[PATH_MAX + 16], kept_wal[PATH_MAX + 64], stamp[32];
    struct tm tm;
    time_t now = time(NULL);

    kept[0] = '\0';
    if (access(db, F_OK) != 0)
        return errno == ENOENT ? RP_OK : RP_ERR_IO;
    /* everything in the file: no -wal is left for the new file to be read with */
    if (rp_db_sqlite_settle(db) != RP_OK)
        rp_log_warn("restore: %s could not be checkpointed: its -wal is kept beside it", db);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
    if (snprintf(kept, cap, "%s.replaced-%s", db, stamp) >= (int)cap ||
        snprintf(wal, sizeof(wal), "%s-wal", db) >= (int)sizeof(wal) ||
        snprintf(shm, sizeof(shm), "%s-shm", db) >= (int)sizeof(shm) ||
        snprintf(kept_wal, sizeof(kept_wal), "%s-wal", kept) >= (int)sizeof(kept_wal)) {
        rp_log_error("restore: %s: a name too long", db);
        return RP_ERR_INVALID_ARG;
    }
    if (rename(db, kept) != 0 || (rp_failpoint("restore set aside"), 0) ||
        (rename(wal, kept_wal) != 0 && errno != ENOENT) || (unlink(shm) != 0 && errno != ENOENT)) {
        rp_log_error("restore: cannot move %s aside: %s", db, strerror(errno));
        return RP_ERR_IO;
    }
    return RP_OK;
}

/* What a restore or a `restored` cut short (kill -9) left of its temporaries (review r16 L2): the
 * database's copy beside db, and restore.pending's and generation's in data_dir. Run by restore
 * under its hold, alone on the database: no server, hence no writer of them, runs (admin.token's
 * go under its own lock: main.c). */
static void restore_sweep(const char *data_dir, const char *db)
{
    static const char *const names[] = {PENDING, GENERATION};
    char parent[PATH_MAX + 16], *slash;
    const char *base = db;
    int dir, n = 0;

    snprintf(parent, sizeof(parent), "%s", db);
    slash = strrchr(parent, '/');
    if (slash == NULL) {
        snprintf(parent, sizeof(parent), ".");
    } else {
        base = db + (slash - parent) + 1;
        slash[slash == parent ? 1 : 0] = '\0';
    }
    dir = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || rp_atomic_sweep(dir, base, &n) != RP_OK)
        rp_log_warn("restore: temporaries of %s not removed", db);
    if (dir >= 0)
        close(dir);
    dir = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; dir >= 0 && i < sizeof(names) / sizeof(names[0]); i++)
        if (rp_atomic_sweep(dir, names[i], &n) != RP_OK)
            rp_log_warn("restore: temporaries of %s/%s not removed", data_dir, names[i]);
    if (dir >= 0)
        close(dir);
}

int rp_restore_command(const rp_server_t *srv, const char *file, rp_rotate_fn rotate)
{
    char db[PATH_MAX + 16], kept[PATH_MAX + 64] = "", why[400], when[64];
    int64_t schema = 0, taken_at = 0;
    rp_atomic_file_t f;
    struct stat sb;
    rp_hold_t *alone = NULL;
    int status;
    rp_err_t err;

    if (!sqlite_file(srv, "restore", db, sizeof(db)))
        return 1;
    if (stat(srv->data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        rp_log_error("restore: %s is no directory; nothing was done", srv->data_dir);
        return 1;
    }
    if (stat(file, &sb) != 0 || !S_ISREG(sb.st_mode) || rp_same_file(file, db)) {
        rp_log_error("restore: %s is no file, or is the database itself; nothing was done", file);
        return 1;
    }
    /* No server may serve meanwhile, nor start until it ends (hold.h). */
    err = rp_hold_restore(db, &alone, why, sizeof(why));
    if (err != RP_OK) {
        if (err == RP_ERR_EXISTS)
            rp_log_error("restore: %s; nothing was done", why);
        else
            rp_log_error("restore: the servers' hold on the database cannot be taken (%s); "
                         "nothing was done",
                         rp_strerror(err));
        return 1;
    }
    restore_sweep(srv->data_dir, db);
    /* The copy, checked, beside the database (0600), before anything changes. */
    err = rp_atomic_begin(&f, db, 0600, 0);
    if (err == RP_OK && (err = rp_db_sqlite_copy(file, f.tmp, 0)) != RP_OK)
        snprintf(why, sizeof(why), "it cannot be read as a SQLite database");
    if (err == RP_OK &&
        (err = rp_db_sqlite_inspect(f.tmp, &schema, &taken_at, why, sizeof(why))) == RP_OK &&
        (schema < 1 || schema > rp_store_schema_newest)) {
        snprintf(why, sizeof(why),
                 "its schema version %lld is newer than this server's (%d): restore it with the "
                 "version that made it",
                 (long long)schema, rp_store_schema_newest);
        err = RP_ERR_UNSUPPORTED;
    }
    if (err != RP_OK) {
        rp_atomic_abort(&f);
        rp_hold_release(alone);
        rp_log_error("restore: %s refused: %s; nothing was changed", file, why);
        return 1;
    }
    own_like_dir(srv->data_dir, f.tmp);
    err = pending_set(srv->data_dir, true);
    if (err == RP_OK)
        err = set_aside(db, kept, sizeof(kept));
    if (err == RP_OK)
        err = rp_atomic_commit(&f, 0); /* fsync, rename over, fsync the directory */
    else
        rp_atomic_abort(&f);
    if (err != RP_OK) {
        rp_hold_release(alone);
        rp_log_error("restore: %s not put in place: %s (%s; the service refuses to start until "
                     "a restore finishes: run this again)",
                     file, rp_strerror(err),
                     kept[0] != '\0' ? "the database replaced is kept beside it" : "nothing moved");
        return 1;
    }
    utc(taken_at, when, sizeof(when));
    rp_log_info("restore: %s is the database now (schema %lld, taken %s)%s%s", file,
                (long long)schema, when, kept[0] != '\0' ? "; the one it replaced is " : "", kept);
    status = post_restore(srv, rotate, taken_at);
    if (status == 0 && pending_set(srv->data_dir, false) != RP_OK) {
        rp_log_error("restore: cannot remove %s/" PENDING ": remove it", srv->data_dir);
        status = 1;
    }
    rp_hold_release(alone);
    return status;
}

/* Whether `restored` has run on the database since data_dir saw it last (its restore epoch is the
 * later: run on another replica) and nothing has happened on it since (its count is still the 0
 * that `restored` left: no start, backup or revocation), with no restore of this directory
 * unfinished: then that restore is acknowledged already, nothing is redone, and DIR/generation is
 * brought up to the database's (review r16 M3). False (and nothing done) otherwise, or when it
 * cannot be told: a later epoch with a count is a dump taken after an earlier restore, put back,
 * whose post-restore step must run again (review r17 H1); a second rotation does no harm. */
static bool acknowledged(const rp_server_t *srv, rp_store_t *store)
{
    char path[PATH_MAX + 32];
    int64_t seen = 0, n = 0;

    snprintf(path, sizeof(path), "%s/" PENDING, srv->data_dir);
    if (access(path, F_OK) == 0 || generation_pair(srv->data_dir, store, &seen, &n) != RP_OK ||
        seen == 0 || GEN_EPOCH(n) <= GEN_EPOCH(seen))
        return false;
    if (GEN_COUNT(n) != 0) {
        rp_log_warn("restored: the database's restore epoch (%lld) is later than %s saw last, but "
                    "it has served since that `restored` (count %lld): it may be a backup taken "
                    "after an earlier restore. The whole post-restore step is done again",
                    (long long)GEN_EPOCH(n), srv->data_dir, (long long)GEN_COUNT(n));
        return false;
    }
    if (generation_advance(srv->data_dir, store, false) != RP_OK)
        return false;
    rp_log_info("restored: `rampart-server restored` has run on this database since %s saw it last "
                "(restore epoch %lld, not %lld: on another replica), which acknowledged that "
                "restore for every replica. Nothing was redone: the system token was not rotated "
                "again (the new one is in the admin.token of the data directory where it ran), the "
                "nonce epoch not raised again; %s/" GENERATION " is the database's now",
                srv->data_dir, (long long)GEN_EPOCH(n), (long long)GEN_EPOCH(seen), srv->data_dir);
    return true;
}

int rp_restored_command(const rp_server_t *srv, rp_rotate_fn rotate)
{
    rp_store_t *store = NULL;
    int64_t taken_at = 0, schema = 0;
    char db[PATH_MAX + 16], why[256];
    int status;

    if (access(srv->data_dir, F_OK) != 0) { /* (a typo must not make one) */
        rp_log_error("restored: %s: %s; nothing was done", srv->data_dir, strerror(errno));
        return 1;
    }
    /* The backup's time, which only a SQLite file records (rampart-server backup). */
    if (srv->database[0] == '\0' || rp_db_driver_for(srv->database) == &rp_db_sqlite) {
        (void)sqlite_file(srv, "restored", db, sizeof(db));
        if (cut_set_aside(srv->data_dir, db, "restored: nothing was done"))
            return 1;
        if (access(db, F_OK) != 0) {
            rp_log_error("restored: %s holds no Rampart database (%s); nothing was done",
                         srv->data_dir, db);
            return 1;
        }
        if (rp_db_sqlite_inspect(db, &schema, &taken_at, why, sizeof(why)) != RP_OK)
            taken_at = 0;
    }
    if (rp_server_store_open(srv, &store) != RP_OK)
        return 1; /* (said) */
    if (acknowledged(srv, store)) {
        rp_store_close(store);
        return 0;
    }
    rp_store_close(store);
    status = post_restore(srv, rotate, taken_at);
    if (status == 0 && pending_set(srv->data_dir, false) != RP_OK) {
        rp_log_error("restored: cannot remove %s/" PENDING ": remove it", srv->data_dir);
        status = 1;
    }
    return status;
}
