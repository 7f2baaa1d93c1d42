/*
 * bench/fleet: the store's operations that must stay fast at a fleet's size, on a fleet of
 * --devices N (1,000,000) claimed devices in one tenant, in SQLite (a file in a temporary
 * directory, the default) or in PostgreSQL (--database postgresql://...: an empty database).
 *
 * The fleet is bulk-loaded in one transaction with plain SQL, the documented path (claiming a
 * million devices through the API would time the claim): every device claimed, in one group, one
 * attestation each as its last (1 in 50 failed), one current 24-hour certificate each, and the
 * first --blocked B (1,000) blocked with their certificates revoked, and two apps reported by each
 * (its status report's app list: "app" in 10 versions, "system" in 4). The loaded attestations have
 * negative IDs (device i's is -i), so that those the bench records get the engine's own. Device IDs
 * are 64 hex digits: 8 spread by a multiplicative hash, then the device's number (so that they
 * arrive in no order).
 *
 * Then each operation is called through the store's API (server/store/store.h, as the service
 * calls it) on devices picked at random, repeated for about a second (at least 3 calls), and its
 * median time printed as a ratio to the reference measured in the same run: a primary-key lookup
 * of a row in a table of one row (the tenant). An operation that stays near the reference does
 * not grow with the fleet; one that is proportional to it shows as a ratio in the thousands.
 * Also the database's size per device, and what one read of the fleet's versions reads (pages and
 * rows: counts, which the machine's load does not move as it moves times), and what the count of
 * --reenroll-per-hour adds to an EST re-enrollment (its reads, and CPU time).
 *
 * Then the re-attestation storm (--storm S devices, 2,000; 0: none): S more devices of the tenant
 * hold real keys (bench/sim.c's simulated devices: a device's ID is its key's hash, all a claimed
 * device's row needs), claimed with plain SQL like the rest, 500 to a statement. A real
 * rampart-server is started on the database and the S devices attest at once, 64 in flight, each
 * once: first contact (a full TLS handshake each), then resumed (each resumes the session of its
 * first). The reference is the same storm measured in the same run on an empty fleet (the S
 * devices alone, before the bulk load); the storm is run again at N devices and printed as ratios
 * to it: attestations/s, p50 and p99, the service's CPU per attestation (and PostgreSQL's), the
 * bytes written to storage per attestation, and the database's bytes per device.
 *
 * Usage: bench-fleet [--devices N] [--blocked B] [--database TARGET] [--seconds S] [--storm S]
 */
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sim.h"
#include "rampart/log.h"
#include "db.h"
#include "db_sqlite.h"
#include "store.h"
#include "store_internal.h"

static size_t ndevices = 1000000, nblocked = 1000, loaded; /* loaded: devices 1 to it */
static size_t nstorm = 2000;                               /* the storm's devices, with real keys */
static double budget = 1.0;
static rp_store_t *s;
static rp_tenant_t tenant;
static rp_group_t group;
static rp_deployment_t deployment;
static uint64_t rng = 88172645463325252ull;
static int64_t clock_now;
static size_t sink; /* rows the callbacks saw, so that nothing is optimised away */

static char dir[64]; /* the temporary directory (the SQLite database, the storm's server), or "" */
static char bin[4096]; /* rampart-server, beside this program */
static double database_bytes(const char *target, bool pg);

static pid_t server; /* the storm's rampart-server while it runs, or 0 */

/* On any exit, die() included: no server left running, no directory left behind. */
static void remove_dir(void)
{
    char cmd[128];

    sim_server_stop(server);
    server = 0;
    if (dir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static void die(const char *what)
{
    fprintf(stderr, "fleet bench: %s\n", what);
    exit(1);
}

static size_t pick(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return 1 + (size_t)(rng % loaded);
}

/* Device i's ID, as the bulk load made it (the SQL below computes the same). */
static void device_id(size_t i, char out[RP_DEVICE_ID_SIZE])
{
    snprintf(out, RP_DEVICE_ID_SIZE, "%08x%056zu", (unsigned)((uint64_t)i * 2654435761u), i);
}

#define USAGE                                                                                      \
    "usage: bench-fleet [--devices N] [--blocked B] [--database TARGET] [--seconds S] [--storm S]"

/* The bulk load, per engine: the same rows, devices %6$zu to %3$zu. %1$s the tenant, %2$s the
 * group, %4$zu B (the first B devices are blocked), %5$lld now. */
static const char LOAD_SQLITE[] =
    "PRAGMA cache_size = -262144;"
    "BEGIN;"
    "CREATE TEMP TABLE n(i INTEGER PRIMARY KEY);"
    "WITH RECURSIVE c(i) AS (SELECT %6$zu UNION ALL SELECT i + 1 FROM c WHERE i < %3$zu)"
    " INSERT INTO n SELECT i FROM c;"
    "CREATE TEMP TABLE ids AS SELECT i, printf('%%08x%%056d', (i * 2654435761) & 4294967295, i)"
    " AS id FROM n;"
    "INSERT INTO attestations (id, device_id, tenant_id, at, passed, reason, claims, cert_serial)"
    " SELECT -i, id, '%1$s', %5$lld - i %% 86400, i %% 50 != 0,"
    " CASE WHEN i %% 50 = 0 THEN 'bad_signature' ELSE '' END, '{}', printf('%%040x', i) FROM ids;"
    "INSERT INTO devices (id, tenant_id, claimed_at, blocked, blocked_at, last_attestation,"
    " last_passed) SELECT id, '%1$s', %5$lld - 2592000, i <= %4$zu, CASE WHEN i <= %4$zu THEN"
    " %5$lld ELSE 0 END, -i, i %% 50 != 0 FROM ids ORDER BY id;"
    "INSERT INTO certificates (serial, tenant_id, device_id, not_before, not_after, revoked_at)"
    " SELECT printf('%%040x', i), '%1$s', id, %5$lld - i %% 86400, %5$lld - i %% 86400 + 86400,"
    " CASE WHEN i <= %4$zu THEN %5$lld ELSE 0 END FROM ids;"
    "INSERT INTO group_members (device_id, group_id, assigned) SELECT id, '%2$s', %5$lld"
    " FROM ids ORDER BY id;"
    "INSERT INTO device_apps (device_id, component, version, state, restarts)"
    " SELECT id, 'app', '2.' || (i %% 10), 'running', 0 FROM ids UNION ALL"
    " SELECT id, 'system', '1.' || (i %% 4), 'running', 0 FROM ids ORDER BY 1, 2;"
    "DROP TABLE ids; DROP TABLE n;"
    "COMMIT;"
    "ANALYZE;";
static const char LOAD_PG[] =
    "BEGIN;"
    "CREATE TEMP TABLE ids AS SELECT i, lpad(to_hex((i * 2654435761) %% 4294967296), 8, '0')"
    " || lpad(i::text, 56, '0') AS id FROM generate_series(%6$zu, %3$zu) AS i;"
    "INSERT INTO attestations (id, device_id, tenant_id, at, passed, reason, claims, cert_serial)"
    " SELECT -i, id, '%1$s', %5$lld - i %% 86400, CASE WHEN i %% 50 = 0 THEN 0 ELSE 1 END,"
    " CASE WHEN i %% 50 = 0 THEN 'bad_signature' ELSE '' END, '{}', lpad(to_hex(i), 40, '0')"
    " FROM ids;"
    "INSERT INTO devices (id, tenant_id, claimed_at, blocked, blocked_at, last_attestation,"
    " last_passed) SELECT id, '%1$s', %5$lld - 2592000, CASE WHEN i <= %4$zu THEN 1 ELSE 0 END,"
    " CASE WHEN i <= %4$zu THEN %5$lld ELSE 0 END, -i, CASE WHEN i %% 50 = 0 THEN 0 ELSE 1 END"
    " FROM ids ORDER BY id;"
    "INSERT INTO certificates (serial, tenant_id, device_id, not_before, not_after, revoked_at)"
    " SELECT lpad(to_hex(i), 40, '0'), '%1$s', id, %5$lld - i %% 86400,"
    " %5$lld - i %% 86400 + 86400, CASE WHEN i <= %4$zu THEN %5$lld ELSE 0 END FROM ids;"
    "INSERT INTO group_members (device_id, group_id, assigned) SELECT id, '%2$s', %5$lld"
    " FROM ids ORDER BY id;"
    "INSERT INTO device_apps (device_id, component, version, state, restarts)"
    " SELECT id, 'app', '2.' || (i %% 10), 'running', 0 FROM ids UNION ALL"
    " SELECT id, 'system', '1.' || (i %% 4), 'running', 0 FROM ids ORDER BY 1, 2;"
    "DROP TABLE ids;"
    "COMMIT;"
    "ANALYZE;";
/* An image key and an image for the deployment (%1$s the tenant, %2$s the key's bytes). */
static const char IMAGE_SQL[] =
    "INSERT INTO image_keys (id, tenant_id, name, alg, spki, keyhash, created)"
    " VALUES ('i_bench', '%1$s', 'bench', 'ecdsa-p256', %2$s, 'bench', 0);"
    "INSERT INTO images (tenant_id, id, component, version, type, size, image_hash, key_id,"
    " uploaded) VALUES ('%1$s', '0000000000000000000000000000000000000000000000000000000000000001',"
    " 'system', '1.0.0', 'system', 1, 'bench', 'i_bench', 0);";

static void run_sql(const rp_db_driver_t *drv, rp_db_t *db, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void run_sql(const rp_db_driver_t *drv, rp_db_t *db, const char *fmt, ...)
{
    va_list ap;
    char *sql;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&sql, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("out of memory");
    if (drv->exec(db, sql) != RP_OK)
        die("the bulk load failed (the log says why)");
    free(sql);
}

/* ---- the operations ---- */

static void count_device(void *ctx, const rp_device_t *d)
{
    (void)ctx;
    (void)d;
    sink++;
}

static void count_cert(void *ctx, const rp_cert_record_t *c)
{
    (void)ctx;
    (void)c;
    sink++;
}

static void count_state(void *ctx, const char *state, int64_t n)
{
    (void)ctx;
    (void)state;
    sink += (size_t)n;
}

static void op_reference(void)
{
    rp_tenant_t t;

    if (rp_store_tenant_get(s, tenant.id, &t) != RP_OK)
        die("tenant_get");
}

static void op_device_get(void)
{
    char id[RP_DEVICE_ID_SIZE];
    rp_device_t d;

    device_id(pick(), id);
    if (rp_store_device_get(s, id, &d) != RP_OK)
        die("device_get");
}

static void op_device_standing(void)
{
    char id[RP_DEVICE_ID_SIZE], t[RP_ID_SIZE];
    bool blocked;

    device_id(pick(), id);
    if (rp_store_device_standing(s, id, t, &blocked) != RP_OK)
        die("device_standing");
}

static size_t next_serial;

/* One attestation recorded as the recorder does (a pass: the record, its certificate, the nonce
 * spent, the device's last attestation), committed alone: one disk sync. */
static void op_attestation_write(void)
{
    static rp_attestation_t a;
    rp_cert_record_t cert = {0};
    rp_attestation_write_t w = {0};
    uint8_t nonce[32];
    size_t i = pick();

    memset(&a, 0, sizeof(a));
    device_id(i, a.device_id);
    snprintf(a.tenant_id, sizeof(a.tenant_id), "%s", tenant.id);
    a.at = clock_now;
    a.passed = true;
    snprintf(a.claims_json, sizeof(a.claims_json), "{}");
    snprintf(cert.serial, sizeof(cert.serial), "f%039zx", ++next_serial);
    snprintf(a.cert_serial, sizeof(a.cert_serial), "%s", cert.serial);
    snprintf(cert.tenant_id, sizeof(cert.tenant_id), "%s", tenant.id);
    snprintf(cert.device_id, sizeof(cert.device_id), "%s", a.device_id);
    cert.not_before = clock_now;
    cert.not_after = clock_now + 86400;
    for (size_t k = 0; k < sizeof(nonce); k++)
        nonce[k] = (uint8_t)(pick() >> 3);
    w.a = &a;
    w.cert = &cert;
    w.nonce = nonce;
    w.nonce_len = sizeof(nonce);
    w.nonce_expires = clock_now + 60;
    w.spent_reason = "nonce_replayed";
    w.blocked_reason = "device_blocked";
    if (rp_store_attestations_record(s, &w, 1) != RP_OK)
        die("attestations_record");
}

/* What a device's update check reads: the deployment that selects it, and its targets' version. */
static void op_deployment_for_device(void)
{
    char id[RP_DEVICE_ID_SIZE];
    rp_deployment_t d;
    rp_group_t g;
    rp_err_t err;

    device_id(pick(), id);
    if (rp_store_device_group(s, id, &g) != RP_OK)
        die("device_group");
    err = rp_store_deployment_for_device(s, g.id, id, &d);
    if (err != RP_OK && err != RP_ERR_NOT_FOUND)
        die("deployment_for_device");
}

/* The version of the targets it is served (kept per device: a write, committed). */
static void op_targets_version(void)
{
    char id[RP_DEVICE_ID_SIZE];
    int64_t version;

    device_id(pick(), id);
    if (rp_store_device_targets_version(s, id, deployment.id, deployment.seq, 0, &version) != RP_OK)
        die("device_targets_version");
}

/* What a CRL is made from: the revocation count, then every revoked certificate. */
static void op_crl(void)
{
    int64_t version;

    if (rp_store_crl_version(s, tenant.id, &version) != RP_OK ||
        rp_store_revoked_list(s, tenant.id, count_cert, NULL) != RP_OK)
        die("revoked_list");
}

static void page_of(const char *after, rp_device_state_t state)
{
    rp_page_t p = {.paged = true, .limit = 100, .no_upto = true};

    snprintf(p.after, sizeof(p.after), "%s", after);
    if (rp_store_device_page(s, tenant.id, &p, state, clock_now, count_device, NULL) != RP_OK)
        die("device_page");
}

static void op_page_first(void)
{
    page_of("", RP_DEVICE_STATE_ANY);
}

static void op_page_random(void)
{
    char id[RP_DEVICE_ID_SIZE];

    device_id(pick(), id);
    page_of(id, RP_DEVICE_STATE_ANY);
}

static void op_page_blocked(void)
{
    page_of("", RP_DEVICE_STATE_BLOCKED);
}

static void op_page_failed(void)
{
    page_of("", RP_DEVICE_STATE_FAILED);
}

static void op_fleet_counts(void)
{
    rp_fleet_counts_t c;

    if (rp_store_fleet_counts(s, tenant.id, clock_now, &c) != RP_OK)
        die("fleet_counts");
    if (c.total != (int64_t)(loaded + nstorm))
        die("fleet_counts: not every device counted");
}

/* The background's count of the devices whose certificate is expiring (every device read). */
static void op_fleet_expiring(void)
{
    int64_t n;

    if (rp_store_fleet_expiring_count(s, tenant.id, clock_now, &n) != RP_OK)
        die("fleet_expiring_count");
}

static void op_deployment_progress(void)
{
    rp_deploy_progress_t p;

    if (rp_store_deployment_progress(s, &deployment, &p, count_state, NULL) != RP_OK)
        die("deployment_progress");
}

/* A status report of device i with its app list, recorded as the service records one (one
 * transaction, committed): the two apps it was loaded with (the usual report: nothing changed),
 * or with its "app" at version 9.x (an update installed). */
static void status_report(size_t i, bool changed)
{
    rp_device_app_t apps[2];
    char id[RP_DEVICE_ID_SIZE];
    size_t fresh;

    memset(apps, 0, sizeof(apps));
    device_id(i, id);
    snprintf(apps[0].component, sizeof(apps[0].component), "app");
    snprintf(apps[0].version, sizeof(apps[0].version), "%s.%zu", changed ? "9" : "2",
             changed ? (size_t)(rng % 10) : i % 10);
    snprintf(apps[1].component, sizeof(apps[1].component), "system");
    snprintf(apps[1].version, sizeof(apps[1].version), "1.%zu", i % 4);
    for (int k = 0; k < 2; k++)
        snprintf(apps[k].state, sizeof(apps[k].state), "running");
    if (rp_store_device_status_put(s, id, clock_now, apps, 2, NULL, 0, 0, &fresh) != RP_OK)
        die("device_status_put");
}

static void op_status_same(void)
{
    status_report(pick(), false);
}

static void op_status_changed(void)
{
    status_report(pick(), true);
}

/* What a status report writes and reads (SQLite: the rows it changes, the pages it asks of the
 * page cache), of device i not reported since the load: the same app list, then one changed,
 * then the same again. OUT: per report. */
static void report_reads(bool pg, size_t i, double changes[3], double pages[3])
{
    rp_db_t *db = pg ? NULL : s->db; /* rp_db_sqlite_*: 0 for PostgreSQL's */

    for (int k = 0; k < 3; k++) {
        long long before = rp_db_sqlite_changes(db);

        (void)rp_db_sqlite_pages(db, 1);
        status_report(i, k == 1);
        pages[k] = (double)rp_db_sqlite_pages(db, 0);
        changes[k] = (double)(rp_db_sqlite_changes(db) - before);
    }
}

#define VERSIONS_MAX 1000 /* the fleet page's (api/console.c) */

static void count_version(void *ctx, const char *product, const char *component,
                          const char *version, int64_t devices)
{
    (void)product;
    (void)component;
    (void)version;
    *(int64_t *)ctx += devices;
}

/* The versions the fleet page shows (its other half): each loaded device reports two apps. */
static void op_fleet_versions(void)
{
    int64_t n = 0;

    if (rp_store_fleet_versions(s, tenant.id, VERSIONS_MAX, count_version, &n) != RP_OK)
        die("fleet_versions");
    if (n != 2 * (int64_t)loaded)
        die("fleet_versions: not every device's apps counted");
    sink++;
}

typedef void (*bind_fn)(sq_st_t *st);

/* What one run of a store's statement (sql, its parameters bound by bind) reads, on the store's
 * own connection. SQLite: the pages asked of its page cache (hits and
 * misses: those read from the file or the kernel's cache) and the statement's virtual machine
 * steps; PostgreSQL: EXPLAIN (ANALYZE, BUFFERS): the shared buffers hit and read, and the rows
 * its scans returned. OUT: *pages, *rows (SQLite: VM steps). */
static void query_reads(bool pg, const char *sql_of, bind_fn bind, double *pages, double *rows)
{
    sq_st_t *st;
    int rc;

    *pages = *rows = 0;
    if (!pg) {
        if ((st = sq_prepare(s, sql_of)) == NULL)
            die("reads: prepare");
        bind(st);
        (void)rp_db_sqlite_pages(s->db, 1);
        while ((rc = db_step(st)) == DB_ROW)
            ;
        if (rc != DB_DONE)
            die("reads: step");
        *pages = (double)rp_db_sqlite_pages(s->db, 0);
        *rows = (double)rp_db_sqlite_vm_steps(st->h);
        sq_finalize(st);
    } else {
        char *sql = NULL;
        json_t *plan;
        json_error_t e;

        if (asprintf(&sql, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) %s", sql_of) < 0)
            die("out of memory");
        if ((st = sq_prepare(s, sql)) == NULL)
            die("reads: prepare");
        bind(st);
        if (db_step(st) != DB_ROW)
            die("reads: EXPLAIN");
        plan = json_loads((const char *)db_column_text(st, 0), 0, &e);
        sq_finalize(st);
        free(sql);
        if (plan == NULL)
            die("reads: EXPLAIN's JSON");
        {
            json_t *top = json_object_get(json_array_get(plan, 0), "Plan");
            json_t *stack[256];
            size_t n = 0;

            *pages = (double)json_integer_value(json_object_get(top, "Shared Hit Blocks")) +
                     (double)json_integer_value(json_object_get(top, "Shared Read Blocks"));
            if (top != NULL)
                stack[n++] = top;
            while (n > 0) { /* every scan's rows: its rows per loop times its loops */
                json_t *node = stack[--n], *kids = json_object_get(node, "Plans"), *kid;
                size_t k;
                if (json_object_get(node, "Relation Name") != NULL ||
                    json_object_get(node, "Index Name") != NULL)
                    *rows += json_number_value(json_object_get(node, "Actual Rows")) *
                             json_number_value(json_object_get(node, "Actual Loops"));
                json_array_foreach(kids, k, kid)
                {
                    if (n < sizeof(stack) / sizeof(stack[0]))
                        stack[n++] = kid;
                }
            }
        }
        json_decref(plan);
    }
}

/* The fleet's versions, as rp_store_fleet_versions reads them. */
static void bind_versions(sq_st_t *st)
{
    db_bind_text(st, 1, tenant.id);
    db_bind_int(st, 2, VERSIONS_MAX);
}

static void versions_reads(bool pg, double *pages, double *rows)
{
    query_reads(pg, sq_sql_fleet_versions, bind_versions, pages, rows);
}

/* What --reenroll-per-hour adds to an EST re-enrollment (store.c: the count of the device's
 * re-enrollments of the last hour in the transaction that records one): the count's reads, on a
 * device that has `reenroll_made` re-enrollments in the hour, and the CPU time (this process's:
 * SQLite's work is in it, PostgreSQL's is not) of the count alone and of a re-enrollment's record
 * with the limit off and on, over devices picked at random (each recorded once). */
enum { REENROLL_MADE = 6, REENROLL_CALLS = 400, REENROLL_COUNTS = 5000 };
static char reenroll_device[RP_DEVICE_ID_SIZE];

static void bind_reenroll(sq_st_t *st)
{
    db_bind_text(st, 1, reenroll_device);
    db_bind_int64(st, 2, clock_now - RP_REISSUE_WINDOW);
}

/* A device i that may re-enroll: not blocked, its last attestation passed; its certificate's
 * serial (the bulk load's). The fleet has one (reenroll_cost). */
static size_t reenroll_pick(char serial[RP_SERIAL_SIZE])
{
    size_t i;

    do
        i = pick();
    while (i <= nblocked || i % 50 == 0);
    snprintf(serial, RP_SERIAL_SIZE, "%040zx", i);
    return i;
}

static void reenroll_once(size_t i, const char *old, long per_hour)
{
    rp_cert_record_t c = {0};
    rp_reissue_t out;
    int64_t retry;

    snprintf(c.serial, sizeof(c.serial), "e%039zx", ++next_serial);
    snprintf(c.tenant_id, sizeof(c.tenant_id), "%s", tenant.id);
    device_id(i, c.device_id);
    c.not_before = clock_now;
    c.not_after = clock_now + 86400;
    if (rp_store_cert_reissue(s, &c, old, clock_now - 86400, per_hour, &out, &retry) != RP_OK ||
        out != RP_REISSUE_DONE)
        die("cert_reissue");
}

static double cpu_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void reenroll_cost(bool pg, double *pages, double *rows, double cpu[3])
{
    char old[RP_SERIAL_SIZE];
    size_t i;

    *pages = *rows = cpu[0] = cpu[1] = cpu[2] = 0;
    if (loaded < nblocked + 100)
        return; /* (nearly) every device is blocked: none to re-enroll */
    i = reenroll_pick(old);

    device_id(i, reenroll_device);
    for (int k = 0; k < REENROLL_MADE; k++)
        reenroll_once(i, old, 0);
    query_reads(pg, sq_sql_reissued_recent, bind_reenroll, pages, rows);
    { /* the count alone, on its own: what it adds to the transaction */
        sq_st_t *st = sq_prepare(s, sq_sql_reissued_recent);
        double t0 = cpu_now();

        if (st == NULL)
            die("reenroll count: prepare");
        for (int k = 0; k < REENROLL_COUNTS; k++) {
            bind_reenroll(st);
            if (db_step(st) != DB_ROW || db_column_int64(st, 0) != REENROLL_MADE)
                die("reenroll count");
            db_reset(st);
        }
        cpu[2] = (cpu_now() - t0) / REENROLL_COUNTS;
        sq_finalize(st);
    }
    for (int on = 0; on < 2; on++) {
        double t0 = cpu_now();

        for (int k = 0; k < REENROLL_CALLS; k++) {
            size_t j = reenroll_pick(old);
            reenroll_once(j, old, on ? 3600 : 0);
        }
        cpu[on] = (cpu_now() - t0) / REENROLL_CALLS;
    }
}

/* The median time of one call of op, in seconds: called for about `budget` seconds, at least 3
 * times, at most 10,000; an operation whose first call took longer than the budget (one that
 * reads the whole fleet) is timed by that call alone. */
static double median_time(void (*op)(void))
{
    static double t[10000];
    double start = sim_now(), first;
    size_t n = 0;

    op(); /* once to warm the statement cache */
    first = sim_now() - start;
    if (first > budget)
        return first;
    start = sim_now();
    while (n < 10000 && (n < 3 || sim_now() - start < budget)) {
        double t0 = sim_now();
        op();
        t[n++] = sim_now() - t0;
    }
    qsort(t, n, sizeof(double), sim_cmp_double);
    return t[n / 2];
}

/* The database's bytes: the SQLite file and its write-ahead log, or PostgreSQL's own count. */
static double database_bytes(const char *target, bool pg)
{
    if (pg) {
        const rp_db_driver_t *drv = rp_db_driver_for(target);
        rp_db_t *db;
        rp_db_stmt_t *st;
        bool row = false;
        double bytes = 0;

        if (drv->open(target, &db) != RP_OK)
            die("cannot open the database");
        st = drv->prepare(db, "SELECT pg_database_size(current_database())");
        if (st != NULL && drv->step(st, &row) == RP_OK && row)
            bytes = (double)drv->column_int64(st, 0);
        if (st != NULL)
            drv->finalize(st);
        drv->close(db);
        return bytes;
    } else {
        char wal[4200];
        struct stat a, b;

        snprintf(wal, sizeof(wal), "%s-wal", target);
        return (stat(target, &a) == 0 ? (double)a.st_size : 0) +
               (stat(wal, &b) == 0 ? (double)b.st_size : 0);
    }
}

/* ---- the re-attestation storm ---- */

#define STORM_INFLIGHT 64

static struct sim_device *storm_devices;

struct storm {
    struct sim_result first, resumed;
    double written[2];    /* bytes written to storage per attestation, by the phase */
    double bytes_per_dev; /* the database's, after the storm */
};

/* The storm's devices, claimed and put in the group, 500 to a statement; the tenant's policy allows
 * evidence without measured components (the simulated devices measure none). */
static void storm_devices_claim(const rp_db_driver_t *drv, rp_db_t *db, const char *group_id)
{
    enum { BATCH = 500 }; /* devices a statement: the drivers bound the SQL text they take */
    rp_policy_t p = RP_POLICY_DEFAULT;
    size_t cap = 64 + BATCH * 512, len = 0;
    char *sql = malloc(cap);

    storm_devices = calloc(nstorm, sizeof(*storm_devices));
    if (storm_devices == NULL || sql == NULL)
        die("out of memory");
    for (size_t i = 0; i < nstorm; i++) {
        sim_device_new(&storm_devices[i]);
        len += (size_t)snprintf(sql + len, cap - len,
                                "INSERT INTO devices (id, tenant_id, claimed_at) VALUES ('%s', "
                                "'%s', %lld); INSERT INTO group_members (device_id, group_id, "
                                "assigned) VALUES ('%s', '%s', %lld);",
                                storm_devices[i].id, tenant.id, (long long)clock_now,
                                storm_devices[i].id, group_id, (long long)clock_now);
        if (len >= cap - 16)
            die("the storm's claim does not fit");
        if ((i + 1) % BATCH == 0 || i + 1 == nstorm) {
            if (drv->exec(db, sql) != RP_OK)
                die("cannot claim the storm's devices");
            len = 0;
        }
    }
    free(sql);
    p.require_components = false;
    if (rp_store_policy_set(s, tenant.id, &p) != RP_OK)
        die("policy_set");
}

/* Before a storm, the database as a fleet's is in its steady state, not just after a bulk load:
 * SQLite's log copied into the file and emptied; PostgreSQL's tables vacuumed (so that no
 * autovacuum of the load runs during the storm, its CPU counted as PostgreSQL's) and its dirty
 * pages written (a checkpoint: not the load's pages flushed during the storm, counted as its
 * writes). */
static void settle(const rp_db_driver_t *drv, rp_db_t *db, bool pg)
{
    if (pg ? drv->exec(db, "VACUUM") != RP_OK || drv->exec(db, "CHECKPOINT") != RP_OK
           : drv->exec(db, "PRAGMA wal_checkpoint(TRUNCATE)") != RP_OK)
        die("cannot settle the database before the storm");
}

/* A rampart-server on the database, the storm's devices attesting at once: first contact, then
 * resumed; the server stopped. */
static void storm_run(const char *target, bool pg, struct storm *out)
{
    static bool inited;
    char data[96], ca[128];
    int port;
    pid_t db_pid = pg ? sim_database_pid(target) : 0;
    struct sim_fleet f = {storm_devices, nstorm, STORM_INFLIGHT, 2,    &port,
                          &server,       1,      db_pid,         false};
    struct sim_result *phase[2] = {&out->first, &out->resumed};

    snprintf(data, sizeof(data), "%s/server", dir);
    server = sim_server_start(bin, data, target, NULL, &port);
    if (!inited) {
        snprintf(ca, sizeof(ca), "%s/server-ca.pem", data);
        sim_init(ca);
        inited = true;
    }
    for (int i = 0; i < 2; i++) {
        double w0 = sim_written_tree(server) + sim_written_tree(db_pid);

        sim_phase(&f, i == 1, 3600, nstorm, phase[i]);
        out->written[i] = (sim_written_tree(server) + sim_written_tree(db_pid) - w0) /
                          (double)(phase[i]->passed ? phase[i]->passed : 1);
        if (phase[i]->failed > 0 || phase[i]->passed < nstorm)
            die("the storm: not every attestation passed");
    }
    sim_server_stop(server);
    server = 0;
    out->bytes_per_dev = database_bytes(target, pg) / (double)(loaded + nstorm);
}

static void storm_print(const char *what, const struct sim_result *ref, double wref,
                        const struct sim_result *r, double w, bool pg)
{
    printf("  %s (%.0f%% on a resumed TLS session)\n", what, 100.0 * r->resumed);
    printf("    %-42s %10.0f %10.0f %7.2f\n", "attestations/s", ref->rate, r->rate,
           r->rate / ref->rate);
    printf("    %-42s %10.1f %10.1f %7.2f\n", "p50 latency, ms", ref->p50 * 1e3, r->p50 * 1e3,
           r->p50 / ref->p50);
    printf("    %-42s %10.1f %10.1f %7.2f\n", "p99 latency, ms", ref->p99 * 1e3, r->p99 * 1e3,
           r->p99 / ref->p99);
    printf("    %-42s %10.0f %10.0f %7.2f\n", "the service's CPU per attestation, us",
           ref->server_cpu * 1e6, r->server_cpu * 1e6, r->server_cpu / ref->server_cpu);
    if (pg)
        printf("    %-42s %10.0f %10.0f %7.2f\n", "PostgreSQL's CPU per attestation, us",
               ref->db_cpu * 1e6, r->db_cpu * 1e6, ref->db_cpu > 0 ? r->db_cpu / ref->db_cpu : 0);
    printf("    %-42s %10.0f %10.0f %7.2f\n", "bytes written to storage per attestation", wref, w,
           wref > 0 ? w / wref : 0);
}

int main(int argc, char **argv)
{
    const char *target = NULL;
    char path[128], key_bytes[64];
    bool pg;
    const rp_db_driver_t *drv;
    rp_db_t *db = NULL;
    rp_product_t product;
    double t0, load, refs[2], times[2][24], vpages[2], vrows[2], rchanges[2][3], rpages[2][3];
    double epages[2], erows[2], ecpu[2][3];
    struct storm storms[2];
    struct {
        const char *name;
        void (*op)(void);
    } ops[] = {
        {"device lookup (rp_store_device_get)",               op_device_get           },
        {"device standing (what attestation reads)",          op_device_standing      },
        {"attestation record write (one, committed)",         op_attestation_write    },
        {"deployment target selection for a device",          op_deployment_for_device},
        {"its targets version (a write, committed)",          op_targets_version      },
        {"CRL input: revocation count, revoked certificates", op_crl                  },
        {"devices page of 100, first",                        op_page_first           },
        {"devices page of 100, after a random device",        op_page_random          },
        {"devices page of 100, blocked only",                 op_page_blocked         },
        {"devices page of 100, failed only",                  op_page_failed          },
        {"fleet status counts (its counters)",                op_fleet_counts         },
        {"deployment progress (its counters)",                op_deployment_progress  },
        {"fleet versions (the fleet page's other half)",      op_fleet_versions       },
        {"status report, the same apps (a write, committed)", op_status_same          },
        {"status report, a version changed (committed)",      op_status_changed       },
        {"expiring certificates (the background's count)",    op_fleet_expiring       },
    };

    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            die(USAGE);
        if (strcmp(argv[i], "--devices") == 0)
            ndevices = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--blocked") == 0)
            nblocked = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--database") == 0)
            target = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            budget = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--storm") == 0)
            nstorm = strtoul(argv[i + 1], NULL, 10);
        else
            die(USAGE);
    }
    if (ndevices == 0 || nblocked > ndevices || budget <= 0)
        die(USAGE);
    snprintf(dir, sizeof(dir), "/tmp/rampart-bench-fleet-XXXXXX");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    atexit(remove_dir);
    if (target == NULL) {
        snprintf(path, sizeof(path), "%s/rampart.db", dir);
        target = path;
    }
    snprintf(bin, sizeof(bin), "%s", argv[0]);
    *strrchr(bin, '/') = '\0';
    strcat(bin, "/rampart-server");
    signal(SIGPIPE, SIG_IGN);
    pg = strncmp(target, "postgres", 8) == 0;
    rp_log_init("bench-fleet", RP_LOG_WARN); /* not the schema's migrations, one by one */
    clock_now = (int64_t)time(NULL);

    /* The schema, a tenant, a product and its group, through the store. */
    if (rp_store_open_target(target, &s) != RP_OK)
        die("cannot open the store");
    if (rp_store_tenant_create(s, "bench", &tenant) != RP_OK ||
        rp_store_product_create(s, tenant.id, "Bench", &product) != RP_OK ||
        rp_store_group_find(s, &product, "Field Test", &group) != RP_OK)
        die("cannot set the store up (an empty database is needed)");

    /* An image key and an image (plain SQL: a deployment needs an image, whose upload this is
     * not about), and a deployment to the group selecting half of its devices. */
    drv = rp_db_driver_for(target);
    if (drv == NULL || drv->open(target, &db) != RP_OK)
        die("cannot open the database");
    snprintf(key_bytes, sizeof(key_bytes), "%s", pg ? "'\\x00'::bytea" : "X'00'");
    run_sql(drv, db, IMAGE_SQL, tenant.id, key_bytes);
    memset(&deployment, 0, sizeof(deployment));
    snprintf(deployment.tenant_id, sizeof(deployment.tenant_id), "%s", tenant.id);
    snprintf(deployment.group_id, sizeof(deployment.group_id), "%s", group.id);
    deployment.rollout = 50;
    deployment.status = RP_DEPLOY_ACTIVE;
    deployment.nimages = 1;
    snprintf(deployment.image_ids[0], sizeof(deployment.image_ids[0]), "%064d", 1);
    if (rp_store_deployment_create(s, &deployment) != RP_OK)
        die("deployment_create");
    if (nstorm > 0) {
        storm_devices_claim(drv, db, group.id);
        settle(drv, db, pg);
        storm_run(target, pg, &storms[0]);
    }

    /* Two fleets in one run: a hundredth of N, timed; then the rest loaded, timed again. What
     * grows with the fleet shows as growth near 100; what does not, near 1. */
    printf("fleet: %zu devices (%zu blocked), %s; each operation's median time, as a ratio to the "
           "reference,\n       at N/100 and at N devices, and its growth between them\n",
           ndevices, nblocked, pg ? "PostgreSQL" : "SQLite");
    for (int step = 0; step < 2; step++) {
        size_t from = loaded + 1, to = step == 0 ? (ndevices / 100 ? ndevices / 100 : 1) : ndevices;

        t0 = sim_now();
        /* In one transaction on a connection of its own. */
        run_sql(drv, db, pg ? LOAD_PG : LOAD_SQLITE, tenant.id, group.id, to,
                nblocked < to ? nblocked : to, (long long)clock_now, from);
        load = sim_now() - t0;
        loaded = to;
        /* the load wrote around the store: its counters (migrations.c: COUNTERS_SEED) counted from
         * the rows */
        t0 = sim_now();
        if (rp_store_counters_recount(s) != RP_OK)
            die("counters_recount");
        printf("  %zu devices: loaded %zu in %.1f s (%.0f devices/s), counters counted in %.1f s; "
               "%.0f bytes of database per device\n",
               loaded, to - from + 1, load, (double)(to - from + 1) / load, sim_now() - t0,
               database_bytes(target, pg) / (double)loaded);
        fflush(stdout);
        report_reads(pg, to, rchanges[step], rpages[step]);
        refs[step] = median_time(op_reference);
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
            times[step][i] = median_time(ops[i].op);
        versions_reads(pg, &vpages[step], &vrows[step]);
        reenroll_cost(pg, &epages[step], &erows[step], ecpu[step]);
    }
    if (nstorm > 0) {
        settle(drv, db, pg);
        storm_run(target, pg, &storms[1]);
    }
    drv->close(db);
    printf("  %-52s %9s %9s %9s %9s %7s\n", "", "us", "ratio", "us", "ratio", "growth");
    printf("  %-52s %9.1f %9s %9.1f %9s %7.1f  (reference)\n",
           "primary-key lookup in a 1-row table (tenant)", refs[0] * 1e6, "", refs[1] * 1e6, "",
           refs[1] / refs[0]);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        printf("  %-52s %9.1f %9.1f %9.1f %9.1f %7.1f\n", ops[i].name, times[0][i] * 1e6,
               times[0][i] / refs[0], times[1][i] * 1e6, times[1][i] / refs[1],
               (times[1][i] / refs[1]) / (times[0][i] / refs[0]));
    printf("  fleet versions, one read: %.0f and %.0f pages (%s), %.0f and %.0f %s\n", vpages[0],
           vpages[1], pg ? "shared buffers hit and read" : "asked of the page cache", vrows[0],
           vrows[1], pg ? "rows from its scans" : "VM steps");
    printf("  the re-enrollment limit's count, a device with %d in the hour: %.0f and %.0f pages "
           "(%s), %.0f and %.0f %s\n",
           REENROLL_MADE, epages[0], epages[1],
           pg ? "shared buffers hit and read" : "asked of the page cache", erows[0], erows[1],
           pg ? "rows from its scans" : "VM steps");
    printf("  a re-enrollment's record, this process's CPU: %.1f and %.1f us with the limit off, "
           "%.1f and %.1f us on; the count alone %.1f and %.1f us\n",
           ecpu[0][0] * 1e6, ecpu[1][0] * 1e6, ecpu[0][1] * 1e6, ecpu[1][1] * 1e6, ecpu[0][2] * 1e6,
           ecpu[1][2] * 1e6);
    if (!pg)
        for (int k = 0; k < 3; k++)
            printf("  a status report, %s: %.0f and %.0f rows changed, %.0f and %.0f pages asked\n",
                   k == 1   ? "a version changed"
                   : k == 0 ? "the same apps"
                            : "back (changed)",
                   rchanges[0][k], rchanges[1][k], rpages[0][k], rpages[1][k]);
    if (nstorm > 0) {
        struct storm *a = &storms[0], *b = &storms[1];

        printf("storm: %zu devices attest at once (%d in flight), first contact then resumed;\n"
               "       the same storm on an empty fleet (%zu devices), then at %zu devices\n",
               nstorm, STORM_INFLIGHT, nstorm, loaded + nstorm);
        printf("    %-42s %10s %10s %7s\n", "", "empty", "fleet", "ratio");
        storm_print("first contact", &a->first, a->written[0], &b->first, b->written[0], pg);
        storm_print("resumed", &a->resumed, a->written[1], &b->resumed, b->written[1], pg);
        /* (the empty fleet's is mostly the schema's and the log's fixed size: no ratio) */
        printf("    %-42s %10.0f %10.0f\n", "database bytes per device", a->bytes_per_dev,
               b->bytes_per_dev);
        printf("storm: at %zu devices, first contact %.2f x the empty fleet's attestations/s "
               "(p99 %.2f x, CPU %.2f x), resumed %.2f x (p99 %.2f x, CPU %.2f x); %.0f database "
               "bytes per device\n",
               loaded + nstorm, b->first.rate / a->first.rate, b->first.p99 / a->first.p99,
               b->first.server_cpu / a->first.server_cpu, b->resumed.rate / a->resumed.rate,
               b->resumed.p99 / a->resumed.p99, b->resumed.server_cpu / a->resumed.server_cpu,
               b->bytes_per_dev);
        for (size_t i = 0; i < nstorm; i++)
            sim_device_free(&storm_devices[i]);
        free(storm_devices);
    }
    rp_store_close(s);
    return sink == 0; /* the callbacks saw rows */
}
