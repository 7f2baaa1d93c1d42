/*
 * Failure reports (docs/failure-reporting.md), the service's side:
 *
 *   devices    POST /api/v1/device/reports                 a batch of reports
 *   operators  GET  /api/v1/tenants/T/failures             crash buckets, newest first, paged
 *              GET  /api/v1/tenants/T/failures/B           one bucket: signature, frames
 *                                                           (symbolicated), counts, samples
 *              GET  /api/v1/tenants/T/reports              the stored reports (?device, ?kind)
 *              POST /api/v1/tenants/T/symbols              a debug file, by its build ID
 *
 * The one owner of a report's keys and bounds (the contract's tables), of a crash's bucket ID,
 * and of the per-device limit on batches. The tenant of everything a batch carries is the
 * calling device's, from its certificate: a report has no tenant nor device of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/keyvalq_struct.h>

#include "context.h"
#include "device_api.h"
#include "rampart/bytes.h"
#include "rampart/component.h"
#include "rampart/crypto.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/log.h"
#include "rampart/text.h"
#include "recorder.h"
#include "reports.h"
#include "req.h"
#include "routes.h"
#include "threat.h"
#include "images.h"
#include "store/blob.h"

/* Per device, per replica (each service process keeps its own buckets): a burst of batches
 * at once, then one a second. A device sending more is answered 429 with Retry-After. */
#define DEVICE_BURST 30.0
#define DEVICE_RATE 1.0
#define DEVICE_RETRY_AFTER 1
#define PAGE_DEFAULT 50
#define PAGE_MAX 500

/* The contract's kinds, in its order. */
static const char *const kinds[] = {
    "crash",
    "exit",
    "oom",
    "health",
    "restart_loop",
    "attestation_failed",
    "image_refused",
    "metadata_refused",
    "sandbox_denial",
    "rot_error",
    "cert_expiring",
    "clock_jump",
};

/* The metrics: what came in and what became of it. */
static atomic_ullong m_batches_ok, m_batches_malformed, m_batches_too_large, m_batches_limited;
static atomic_ullong m_stored, m_duplicates, m_refused, m_pruned, m_failed;
static atomic_ullong m_capture_off; /* crash reports refused: the device's group said no */
static atomic_ullong m_key_queued, m_key_dropped, m_key_builds; /* the keyer's (below) */

bool rp_report_kind_known(const char *kind)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kind, kinds[i]) == 0)
            return true;
    return false;
}

/* Printable ASCII only: what a module file name and a signal name may hold. */
static bool printable(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}

/* "0x" and 1 to 16 hex digits. */
static bool hex_u64(json_t *v, uint64_t *out)
{
    const char *s = rp_json_text(v, 18);
    uint64_t x = 0;
    size_t n;

    if (s == NULL || s[0] != '0' || s[1] != 'x')
        return false;
    n = strlen(s + 2);
    if (n == 0 || n > 16)
        return false;
    for (const char *p = s + 2; *p != '\0'; p++) {
        int d = (*p >= '0' && *p <= '9')   ? *p - '0'
                : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
                : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10
                                           : -1;
        if (d < 0)
            return false;
        x = x << 4 | (uint64_t)d;
    }
    *out = x;
    return true;
}

/* An integer in [lo, hi]. */
static bool int_in(json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return false;
    *out = json_integer_value(v);
    return true;
}

static const char *frame_parse(json_t *o, rp_report_frame_t *f)
{
    static const char *const keys[] = {"build_id", "module", "offset"};
    const char *id, *mod;
    size_t n;

    if (!rp_json_has_exactly(o, keys, 3))
        return "a frame is not {\"build_id\", \"module\", \"offset\"}";
    id = rp_json_text(json_object_get(o, "build_id"), 2 * RP_REPORT_BUILD_ID_MAX);
    n = id != NULL ? strlen(id) : 0;
    if (id == NULL || n % 2 != 0)
        return "a frame's \"build_id\" is not \"\" or lowercase hex of at most 40 bytes";
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return "a frame's \"build_id\" is not \"\" or lowercase hex of at most 40 bytes";
    mod = rp_json_text(json_object_get(o, "module"), RP_REPORT_MODULE_MAX);
    if (mod == NULL || !printable(mod) || strchr(mod, '/') != NULL)
        return "a frame's \"module\" is not a file name of at most 64 printable bytes";
    if (!hex_u64(json_object_get(o, "offset"), &f->offset))
        return "a frame's \"offset\" is not 0x and 1 to 16 hex digits";
    memcpy(f->build_id, id, n + 1);
    snprintf(f->module, sizeof(f->module), "%s", mod);
    return NULL;
}

static const char *crash_parse(json_t *o, rp_report_crash_t *c)
{
    static const char *const keys[] = {"signal",    "signal_name", "code",  "address",
                                       "uptime_ms", "frames",      "stderr"};
    const char *name, *err;
    json_t *frames = json_object_get(o, "frames"), *v;
    int64_t sig;
    size_t i;

    if (!rp_json_has_exactly(o, keys, 7))
        return "\"crash\" is not {\"signal\", \"signal_name\", \"code\", \"address\", "
               "\"uptime_ms\", \"frames\", \"stderr\"}";
    if (!int_in(json_object_get(o, "signal"), 1, 64, &sig))
        return "\"crash.signal\" is not 1 to 64";
    c->signal = (int)sig;
    name = rp_json_text(json_object_get(o, "signal_name"), RP_REPORT_SIGNAL_NAME_MAX);
    if (name == NULL || !printable(name))
        return "\"crash.signal_name\" is not at most 16 printable bytes";
    snprintf(c->signal_name, sizeof(c->signal_name), "%s", name);
    if (!int_in(json_object_get(o, "code"), INT32_MIN, INT32_MAX, &c->code))
        return "\"crash.code\" is not an integer (si_code)";
    if (!hex_u64(json_object_get(o, "address"), &c->address))
        return "\"crash.address\" is not 0x and 1 to 16 hex digits";
    if (!int_in(json_object_get(o, "uptime_ms"), 0, RP_REPORT_SEQ_LIMIT - 1, &c->uptime_ms))
        return "\"crash.uptime_ms\" is not >= 0";
    if (rp_json_text(json_object_get(o, "stderr"), RP_REPORT_STDERR_MAX) == NULL)
        return "\"crash.stderr\" is not a string of at most 4096 bytes";
    if (!json_is_array(frames) || json_array_size(frames) > RP_REPORT_FRAMES_MAX)
        return "\"crash.frames\" is not a list of at most 64";
    c->nframes = 0;
    json_array_foreach(frames, i, v)
    {
        if ((err = frame_parse(v, &c->frames[c->nframes])) != NULL)
            return err;
        c->nframes++;
    }
    return NULL;
}

/* One report into *r; NULL, or why it is refused. */
static const char *report_parse(json_t *o, rp_report_t *r)
{
    static const char *const keys[] = {"seq",     "at",     "kind", "component",
                                       "version", "reason", "code"};
    json_t *crash = json_object_get(o, "crash");
    const char *kind, *comp, *ver, *reason, *code;

    r->seq = -1; /* until read: a refusal before names no report (not seq 0, another's) */
    if (!json_is_object(o))
        return "a report is not an object";
    /* Its number first, so that a refusal can name it. */
    if (!int_in(json_object_get(o, "seq"), 0, RP_REPORT_SEQ_LIMIT - 1, &r->seq)) {
        r->seq = -1;
        return "\"seq\" is not an integer in [0, 2^53)";
    }
    if (!rp_json_has_exactly(o, keys, 7) && !(crash != NULL && json_object_size(o) == 8))
        return "a report has exactly \"seq\", \"at\", \"kind\", \"component\", \"version\", "
               "\"reason\", \"code\" (and \"crash\" for a crash)";
    for (size_t i = 0; i < 7; i++)
        if (json_object_get(o, keys[i]) == NULL)
            return "a report has exactly \"seq\", \"at\", \"kind\", \"component\", \"version\", "
                   "\"reason\", \"code\" (and \"crash\" for a crash)";
    if (!int_in(json_object_get(o, "at"), 0, RP_REPORT_SEQ_LIMIT - 1, &r->at))
        return "\"at\" is not unix seconds";
    kind = rp_json_text(json_object_get(o, "kind"), RP_REPORT_KIND_MAX);
    if (kind == NULL || !rp_word_valid(kind, RP_REPORT_KIND_MAX, false) ||
        !rp_report_kind_known(kind))
        return "\"kind\" is not one of the contract's kinds";
    snprintf(r->kind, sizeof(r->kind), "%s", kind);
    comp = rp_json_text(json_object_get(o, "component"), RP_COMPONENT_NAME_MAX);
    if (comp == NULL || (comp[0] != '\0' && !rp_component_name_valid(comp, strlen(comp))))
        return "\"component\" is not \"\" or a component name";
    snprintf(r->component, sizeof(r->component), "%s", comp);
    ver = rp_json_text(json_object_get(o, "version"), RP_REPORT_VERSION_MAX);
    if (ver == NULL || !printable(ver))
        return "\"version\" is not at most 47 printable bytes";
    snprintf(r->version, sizeof(r->version), "%s", ver);
    reason = rp_json_text(json_object_get(o, "reason"), RP_REPORT_REASON_MAX);
    if (reason == NULL || !rp_text_no_controls(reason)) /* rampart/text.h: the one rule */
        return "\"reason\" is not a string of at most 255 bytes without control characters";
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    code = rp_json_text(json_object_get(o, "code"), RP_REPORT_CODE_MAX);
    if (code == NULL || !rp_word_valid(code, RP_REPORT_CODE_MAX, true))
        return "\"code\" is not \"\" or [a-z_], at most 32";
    snprintf(r->code, sizeof(r->code), "%s", code);
    r->has_crash = strcmp(r->kind, "crash") == 0;
    if (r->has_crash != (crash != NULL))
        return "\"crash\" is there when, and only when, the kind is \"crash\"";
    if (r->has_crash) {
        const char *err = crash_parse(crash, &r->crash);
        if (err != NULL)
            return err;
        rp_report_bucket_id(r->component, &r->crash, r->bucket);
    }
    /* The validated object as compact JSON, its keys in the order received: encoded once, into
     * a buffer of the bound (sorting the keys and growing a string from 16 bytes took 8% of the
     * service under load). */
    char buf[RP_REPORT_BYTES];
    size_t n = json_dumpb(o, buf, sizeof(buf), JSON_COMPACT);
    if (n == 0)
        return "the report cannot be encoded again";
    if (n > RP_REPORT_BYTES)
        return "the report is larger than 16 KiB";
    r->json = malloc(n + 1);
    if (r->json == NULL)
        return "the report cannot be encoded again";
    memcpy(r->json, buf, n);
    r->json[n] = '\0';
    return NULL;
}

rp_err_t rp_report_batch_decode(const uint8_t *body, size_t len, rp_report_batch_t *out,
                                const char **why)
{
    json_t *doc, *reports, *dropped, *v;
    size_t known, i;

    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (len > RP_REPORTS_BATCH_BYTES) {
        *why = "the batch is larger than 256 KiB";
        return RP_ERR_TOO_LARGE;
    }
    /* A NUL in a string refuses its report (rp_json_text), not the whole batch. */
    doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        *why = "the body is not a JSON object";
        return RP_ERR_MALFORMED;
    }
    reports = json_object_get(doc, "reports");
    dropped = json_object_get(doc, "dropped");
    known = (reports != NULL) + (dropped != NULL);
    if (json_object_size(doc) != known || !json_is_array(reports))
        *why = "a batch is {\"reports\": [...], \"dropped\": N}, and nothing else";
    else if (dropped != NULL && !int_in(dropped, 0, INT64_MAX, &out->dropped))
        *why = "\"dropped\" is not a count";
    else if (json_array_size(reports) > RP_REPORTS_BATCH_MAX) {
        *why = "a batch holds at most 64 reports";
        json_decref(doc);
        return RP_ERR_TOO_LARGE;
    }
    if (*why != NULL) {
        json_decref(doc);
        return RP_ERR_MALFORMED;
    }
    out->reports = calloc(json_array_size(reports) + 1, sizeof(*out->reports));
    if (out->reports == NULL) {
        json_decref(doc);
        *why = "out of memory";
        return RP_ERR_NO_MEMORY;
    }
    json_array_foreach(reports, i, v)
    {
        rp_report_t *r = &out->reports[out->n++];
        r->refused = report_parse(v, r);
        if (r->refused != NULL && r->json != NULL) {
            free(r->json);
            r->json = NULL;
        }
    }
    json_decref(doc);
    return RP_OK;
}

void rp_report_batch_free(rp_report_batch_t *b)
{
    for (size_t i = 0; b->reports != NULL && i < b->n; i++)
        free(b->reports[i].json);
    free(b->reports);
    memset(b, 0, sizeof(*b));
}

/* A field into the hash, after its length (4 bytes, big-endian): no two field lists hash the
 * same bytes. */
static bool hash_field(rp_sha256_t *h, const void *p, size_t n)
{
    uint8_t l[4];

    rp_be_put(l, n, sizeof(l));
    return rp_sha256_update(h, l, sizeof(l)) == RP_OK && rp_sha256_update(h, p, n) == RP_OK;
}

void rp_report_bucket_id(const char *component, const rp_report_crash_t *c,
                         char out[RP_BUCKET_ID_LEN + 1])
{
    uint8_t d[RP_SHA256_LEN];
    char num[32];
    rp_sha256_t h;
    bool ok = rp_sha256_init(&h) == RP_OK;

    ok = ok && hash_field(&h, "rampart-bucket-1", 16);
    ok = ok && hash_field(&h, component, strlen(component));
    snprintf(num, sizeof(num), "%d", c->signal);
    ok = ok && hash_field(&h, num, strlen(num));
    for (size_t i = 0; i < c->nframes && i < RP_BUCKET_FRAMES; i++) {
        const rp_report_frame_t *f = &c->frames[i];
        /* A frame without a build ID is named by its module: "m:" keeps the two apart. */
        if (f->build_id[0] != '\0')
            ok = ok && hash_field(&h, f->build_id, strlen(f->build_id));
        else {
            char m[RP_REPORT_MODULE_MAX + 3];
            snprintf(m, sizeof(m), "m:%s", f->module);
            ok = ok && hash_field(&h, m, strlen(m));
        }
        snprintf(num, sizeof(num), "%llx", (unsigned long long)f->offset);
        ok = ok && hash_field(&h, num, strlen(num));
    }
    ok = ok && rp_sha256_final(&h, d) == RP_OK;
    if (!ok || rp_hex_encode(d, RP_BUCKET_ID_LEN / 2, out, RP_BUCKET_ID_LEN + 1) != RP_OK)
        memset(out, '0', RP_BUCKET_ID_LEN), out[RP_BUCKET_ID_LEN] = '\0'; /* cannot happen */
}

bool rp_report_symbolic_id(const char *component, int signal, const rp_symbolic_frame_t *f,
                           size_t n, char out[RP_BUCKET_ID_LEN + 1])
{
    uint8_t d[RP_SHA256_LEN];
    char num[32];
    rp_sha256_t h;
    bool ok;

    out[0] = '\0';
    if (n == 0 || n > RP_BUCKET_FRAMES)
        return false;
    /* Every top frame named to its line, or no symbolic key: a frame known only by its build ID
     * and offset would merge nothing across builds (it keeps the build-level key). */
    for (size_t i = 0; i < n; i++)
        if (f[i].module == NULL || f[i].function == NULL || f[i].function[0] == '\0' ||
            f[i].file == NULL || f[i].file[0] == '\0' || f[i].line <= 0)
            return false;
    ok = rp_sha256_init(&h) == RP_OK;
    /* Its own tag: no symbolic key is ever a build-level bucket's ID. */
    ok = ok && hash_field(&h, "rampart-symbolic-1", 18);
    ok = ok && hash_field(&h, component, strlen(component));
    snprintf(num, sizeof(num), "%d", signal);
    ok = ok && hash_field(&h, num, strlen(num));
    for (size_t i = 0; i < n; i++) {
        snprintf(num, sizeof(num), "%d", f[i].line);
        ok = ok && hash_field(&h, f[i].module, strlen(f[i].module)) &&
             hash_field(&h, f[i].function, strlen(f[i].function)) &&
             hash_field(&h, f[i].file, strlen(f[i].file)) && hash_field(&h, num, strlen(num));
    }
    ok = ok && rp_sha256_final(&h, d) == RP_OK &&
         rp_hex_encode(d, RP_BUCKET_ID_LEN / 2, out, RP_BUCKET_ID_LEN + 1) == RP_OK;
    if (!ok)
        out[0] = '\0';
    return ok;
}

void rp_reports_metrics(struct evbuffer *buf)
{
    evbuffer_add_printf(
        buf,
        "# HELP rampart_report_batches_total Failure report batches, by outcome.\n"
        "# TYPE rampart_report_batches_total counter\n"
        "rampart_report_batches_total{result=\"ok\"} %llu\n"
        "rampart_report_batches_total{result=\"malformed\"} %llu\n"
        "rampart_report_batches_total{result=\"too_large\"} %llu\n"
        "rampart_report_batches_total{result=\"rate_limited\"} %llu\n"
        "rampart_report_batches_total{result=\"failed\"} %llu\n"
        "# HELP rampart_reports_total Failure reports in accepted batches, by outcome.\n"
        "# TYPE rampart_reports_total counter\n"
        "rampart_reports_total{result=\"stored\"} %llu\n"
        "rampart_reports_total{result=\"duplicate\"} %llu\n"
        "rampart_reports_total{result=\"refused\"} %llu\n"
        "# HELP rampart_reports_pruned_total Stored reports dropped past each device's newest "
        "%d.\n# TYPE rampart_reports_pruned_total counter\n"
        "rampart_reports_pruned_total %llu\n"
        "# HELP rampart_symbols_files_opened_total Debug files opened to name frames (once per "
        "request and file).\n# TYPE rampart_symbols_files_opened_total counter\n"
        "rampart_symbols_files_opened_total %llu\n",
        (unsigned long long)atomic_load(&m_batches_ok),
        (unsigned long long)atomic_load(&m_batches_malformed),
        (unsigned long long)atomic_load(&m_batches_too_large),
        (unsigned long long)atomic_load(&m_batches_limited),
        (unsigned long long)atomic_load(&m_failed), (unsigned long long)atomic_load(&m_stored),
        (unsigned long long)atomic_load(&m_duplicates), (unsigned long long)atomic_load(&m_refused),
        RP_REPORTS_KEEP, (unsigned long long)atomic_load(&m_pruned), rp_symbols_opened());
    evbuffer_add_printf(buf,
                        "# HELP rampart_reports_crash_capture_off_total Crash reports refused "
                        "because the device's group has crash capture off (also in refused).\n"
                        "# TYPE rampart_reports_crash_capture_off_total counter\n"
                        "rampart_reports_crash_capture_off_total %llu\n",
                        (unsigned long long)atomic_load(&m_capture_off));
    evbuffer_add_printf(
        buf,
        "# HELP rampart_bucket_keyings_total Crash buckets handed to the keyer (symbolic keys, "
        "off the workers), by outcome (dropped: it was full; the next listing keys them), and "
        "debuginfod files whose buckets it keyed again (build).\n"
        "# TYPE rampart_bucket_keyings_total counter\n"
        "rampart_bucket_keyings_total{result=\"queued\"} %llu\n"
        "rampart_bucket_keyings_total{result=\"dropped\"} %llu\n"
        "rampart_bucket_keyings_total{result=\"build\"} %llu\n",
        (unsigned long long)atomic_load(&m_key_queued),
        (unsigned long long)atomic_load(&m_key_dropped),
        (unsigned long long)atomic_load(&m_key_builds));
    rp_symbols_metrics(buf);
    rp_symbols_debuginfod_metrics(buf);
}

/* ---- POST /api/v1/device/reports ---- */

static rp_ratelimit_t *device_limit;
static pthread_once_t device_limit_once = PTHREAD_ONCE_INIT;

static void device_limit_init(void)
{
    if (rp_ratelimit_new(DEVICE_RATE, DEVICE_BURST, &device_limit) != RP_OK)
        device_limit = NULL; /* checked by the caller: no limit means no reports (fail closed) */
}

/* The top frames of a crash as the bucket's signature (JSON). */
static json_t *frames_json(const rp_report_crash_t *c, size_t max)
{
    json_t *a = json_array();
    char off[24];

    for (size_t i = 0; i < c->nframes && i < max; i++) {
        snprintf(off, sizeof(off), "0x%llx", (unsigned long long)c->frames[i].offset);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "build_id", c->frames[i].build_id,
                                           "module", c->frames[i].module, "offset", off));
    }
    return a;
}

/*
 * A batch between its check and its answer: decoded and checked on the worker, stored by the
 * recorder (recorder.h: group commit with whatever else queued up meanwhile, threat detection's
 * counts in the same transaction), answered on the worker once that is committed.
 */
struct report_job {
    rp_record_job_t job; /* first: the recorder hands this back */
    struct evhttp_request *req;
    char tenant_id[RP_ID_SIZE], device_id[RP_DEVICE_ID_SIZE];
    int64_t received, dropped;
    size_t nput, nstored, ndup, nrefused;
    int64_t pruned;
    bool device_failed; /* its last attestation had failed (a recovery route: rp_device_failed) */
    json_t *refused;
    rp_threat_news_t news; /* to tell once committed */
    rp_report_put_t puts[RP_REPORTS_BATCH_MAX];
    bool stored[RP_REPORTS_BATCH_MAX];
    struct report_text {
        char kind[RP_REPORT_KIND_MAX + 1], component[33], version[RP_REPORT_VERSION_MAX + 1],
            code[RP_REPORT_CODE_MAX + 1], reason[RP_REPORT_REASON_MAX + 1],
            bucket[RP_BUCKET_ID_LEN + 1];
        char *signature, *json; /* malloc'd */
    } text[RP_REPORTS_BATCH_MAX];
};

static void report_job_free(struct report_job *j)
{
    for (size_t i = 0; i < j->nput; i++) {
        free(j->text[i].signature);
        free(j->text[i].json);
    }
    json_decref(j->refused);
    rp_threat_news_free(&j->news);
    free(j);
}

/* On the recorder's thread, inside its round's transaction: the rows, buckets, counts and
 * samples. */
static rp_err_t report_job_store(rp_record_job_t *job, rp_store_t *s)
{
    struct report_job *j = (struct report_job *)job;
    /* Its crashes' bucket counts wait for the round's settle step: each bucket counted once. */
    rp_err_t err = rp_store_buckets_defer(s);

    if (err != RP_OK)
        return err;
    return rp_store_reports_put(s, j->tenant_id, j->device_id, j->received, j->puts, j->nput,
                                j->dropped, j->stored, &j->nstored, &j->ndup, &j->pruned);
}

/* By tenant, then place (stable: a device's signals keep their order, which quarantine counts
 * in): rp_threat_process_held takes each tenant's signals as one run. */
static int by_tenant(const void *a, const void *b, void *ctx)
{
    const rp_threat_signal_t *sig = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(sig[x].tenant_id, sig[y].tenant_id);

    return c != 0 ? c : (x < y ? -1 : x > y);
}

/* The same, after every batch of the round has stored: their crashes are counted in their
 * buckets, each bucket once (rp_store_buckets_flush), and threat detection counts all their
 * signals at once (each subject judged once per round, not once per batch), in the same
 * transaction; what it finds to tell rides with the first batch, told once committed. A failure
 * here loses no report (they stay stored, as rp_threat_observe promises). */
static void report_jobs_settle(rp_record_job_t *jobs, rp_store_t *s)
{
    struct report_job *first = (struct report_job *)jobs;
    rp_threat_signal_t *sig, *sorted;
    size_t n = 0, cap = 0, *idx;
    rp_err_t err;

    /* The buckets first (a failure loses counts, never a report: the rows are stored). */
    if (rp_store_buckets_flush(s) != RP_OK)
        rp_log_error("cannot count a round's crashes in their buckets (the reports stay stored)");
    for (rp_record_job_t *job = jobs; job != NULL; job = job->settle_next)
        cap += ((struct report_job *)job)->nstored;
    if (cap == 0)
        return;
    sig = calloc(cap, sizeof(*sig));
    sorted = calloc(cap, sizeof(*sorted));
    idx = calloc(cap, sizeof(*idx));
    if (sig == NULL || sorted == NULL || idx == NULL) {
        free(sig);
        free(sorted);
        free(idx);
        rp_log_error("threat detection: cannot count %zu signal(s) (they stay stored)", cap);
        return;
    }
    for (rp_record_job_t *job = jobs; job != NULL; job = job->settle_next) {
        struct report_job *j = (struct report_job *)job;
        for (size_t i = 0; i < j->nput && n < cap; i++)
            if (j->stored[i])
                sig[n++] = (rp_threat_signal_t){.tenant_id = j->tenant_id,
                                                .device_id = j->device_id,
                                                .kind = j->puts[i].kind,
                                                .bucket = j->puts[i].bucket,
                                                .reason = j->puts[i].reason,
                                                .at = j->puts[i].at,
                                                .device_failed = j->device_failed};
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    qsort_r(idx, n, sizeof(*idx), by_tenant, sig);
    for (size_t i = 0; i < n; i++)
        sorted[i] = sig[idx[i]];
    /* On failure, news holds the tenants whose part was kept (each tenant is a savepoint). */
    err = rp_threat_process_held(s, sorted, n, (int64_t)time(NULL), &first->news);
    if (err != RP_OK)
        rp_log_error("threat detection: cannot count %zu signal(s) (they stay stored)", n);
    free(sig);
    free(sorted);
    free(idx);
}

/* On the worker's loop, once the round that holds the batch is committed (or failed). */
static void report_job_done(rp_record_job_t *job)
{
    struct report_job *j = (struct report_job *)job;
    rp_req_t r = {.w = job->worker, .req = j->req};

    if (job->err != RP_OK) {
        atomic_fetch_add(&m_failed, 1);
        evhttp_add_header(evhttp_request_get_output_headers(j->req), "Retry-After", "10");
        rp_reply_error(&r, 503, "unavailable", "cannot store the reports now: retry later");
        report_job_free(j);
        return;
    }
    atomic_fetch_add(&m_batches_ok, 1);
    atomic_fetch_add(&m_stored, j->nstored);
    atomic_fetch_add(&m_duplicates, j->ndup);
    atomic_fetch_add(&m_refused, j->nrefused);
    atomic_fetch_add(&m_pruned, (unsigned long long)j->pruned);
    rp_threat_tell(job->worker, &j->news); /* committed: alerts and quarantines may go out */
    {
        /* Committed: its new buckets are keyed on the keyer's thread, never on this loop (a
         * debug file's child may take seconds); one it cannot take stays unkeyed. */
        const char *ids[RP_REPORTS_BATCH_MAX];
        size_t n = 0;
        for (size_t i = 0; i < j->nput; i++)
            if (j->stored[i] && j->puts[i].bucket != NULL)
                ids[n++] = j->puts[i].bucket;
        if (n > 0)
            (void)rp_reports_key_later(j->tenant_id, ids, n);
    }
    rp_reply_json(&r, 200,
                  json_pack("{s:I, s:I, s:O}", "stored", (json_int_t)j->nstored, "duplicates",
                            (json_int_t)j->ndup, "refused", j->refused));
    report_job_free(j);
}

/* The decoded batch's reports into the job (its text copied, its JSON taken). */
static rp_err_t report_job_fill(struct report_job *j, rp_report_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        rp_report_t *rep = &b->reports[i];
        struct report_text *t = &j->text[j->nput];
        if (rep->refused != NULL) {
            json_array_append_new(j->refused,
                                  json_pack("{s:o, s:s}", "seq",
                                            rep->seq >= 0 ? json_integer(rep->seq) : json_null(),
                                            "reason", rep->refused));
            j->nrefused++;
            continue;
        }
        snprintf(t->kind, sizeof(t->kind), "%s", rep->kind);
        snprintf(t->component, sizeof(t->component), "%s", rep->component);
        snprintf(t->version, sizeof(t->version), "%s", rep->version);
        snprintf(t->code, sizeof(t->code), "%s", rep->code);
        snprintf(t->reason, sizeof(t->reason), "%s", rep->reason);
        snprintf(t->bucket, sizeof(t->bucket), "%s", rep->bucket);
        t->json = rep->json;
        rep->json = NULL;
        if (rep->has_crash) {
            json_t *sig = json_pack("{s:s, s:i, s:s, s:o}", "component", rep->component, "signal",
                                    rep->crash.signal, "signal_name", rep->crash.signal_name,
                                    "frames", frames_json(&rep->crash, RP_BUCKET_FRAMES));
            t->signature = sig != NULL ? json_dumps(sig, JSON_COMPACT) : NULL;
            json_decref(sig);
        }
        j->puts[j->nput] = (rp_report_put_t){.seq = rep->seq,
                                             .at = rep->at,
                                             .kind = t->kind,
                                             .component = t->component,
                                             .version = t->version,
                                             .code = t->code,
                                             .reason = t->reason,
                                             .bucket = rep->has_crash ? t->bucket : NULL,
                                             .signal = rep->crash.signal,
                                             .signature = t->signature,
                                             .json = t->json,
                                             .device_failed = j->device_failed};
        j->nput++;
        if (rep->has_crash && t->signature == NULL)
            return RP_ERR_NO_MEMORY;
    }
    return RP_OK;
}

void rp_h_device_reports(rp_req_t *r)
{
    struct report_job *j;
    rp_report_batch_t b;
    size_t len;
    const uint8_t *body;
    const char *why;
    bool capture = true;
    rp_err_t err;

    pthread_once(&device_limit_once, device_limit_init);
    if (!rp_device_rate_allowed(r, device_limit, DEVICE_RETRY_AFTER,
                                "this device sends batches faster than the service takes them: "
                                "retry after the Retry-After seconds")) {
        atomic_fetch_add(&m_batches_limited, 1);
        return;
    }
    body = rp_req_body_upto(r, RP_REPORTS_BATCH_BYTES, &len);
    if (body == NULL) {
        atomic_fetch_add(&m_batches_too_large, 1);
        return;
    }
    err = rp_report_batch_decode(body, len, &b, &why);
    if (err != RP_OK) {
        if (err == RP_ERR_TOO_LARGE)
            atomic_fetch_add(&m_batches_too_large, 1);
        else if (err == RP_ERR_MALFORMED)
            atomic_fetch_add(&m_batches_malformed, 1);
        rp_reply_error(r,
                       err == RP_ERR_TOO_LARGE   ? 413
                       : err == RP_ERR_MALFORMED ? 400
                                                 : 500,
                       err == RP_ERR_TOO_LARGE   ? "too_large"
                       : err == RP_ERR_MALFORMED ? "invalid"
                                                 : "internal",
                       "%s", why);
        return;
    }
    /* The operator's switch (the device's group): a device that has not heard it yet still sends
     * no stack the operator refused. */
    if (rp_store_device_crash_capture(r->w->store, r->device.id, &capture) != RP_OK) {
        rp_report_batch_free(&b);
        atomic_fetch_add(&m_failed, 1);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "10");
        rp_reply_error(r, 503, "unavailable", "cannot read the device's group now: retry later");
        return;
    }
    for (size_t i = 0; i < b.n && !capture; i++) {
        rp_report_t *rep = &b.reports[i];
        if (rep->refused == NULL && (rep->has_crash || strcmp(rep->kind, "crash") == 0)) {
            rep->refused = "crash capture is off for this device's group (the operator's "
                           "setting): crash reports are not taken";
            atomic_fetch_add(&m_capture_off, 1);
        }
    }
    j = calloc(1, sizeof(*j));
    if (j != NULL)
        j->device_failed = rp_device_failed(&r->device);
    if (j == NULL || (j->refused = json_array()) == NULL ||
        (err = report_job_fill(j, &b)) != RP_OK) {
        rp_report_batch_free(&b);
        if (j != NULL)
            report_job_free(j);
        atomic_fetch_add(&m_failed, 1);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "10");
        rp_reply_error(r, 503, "unavailable", "cannot store the reports now: retry later");
        return;
    }
    j->dropped = b.dropped;
    rp_report_batch_free(&b);
    j->req = r->req;
    snprintf(j->tenant_id, sizeof(j->tenant_id), "%s", r->device.tenant_id);
    snprintf(j->device_id, sizeof(j->device_id), "%s", r->device.id);
    j->received = (int64_t)time(NULL);
    j->job.worker = r->w;
    j->job.store = report_job_store;
    j->job.settle = report_jobs_settle;
    j->job.done = report_job_done;
    /* What it holds while it waits: the job, and the request's body that evhttp keeps. */
    j->job.bytes = sizeof(*j) + len;
    if (!rp_recorder_submit(r->w->srv->recorder, &j->job)) {
        report_job_free(j);
        atomic_fetch_add(&m_failed, 1);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "5");
        rp_reply_error(r, 503, "busy", "too many reports are waiting to be stored; retry");
    }
}

/* ---- operators ---- */

/* ?offset=N&limit=N and the names in extra (their values into vals, NULL when absent); false:
 * 400 sent. */
static bool page_query(rp_req_t *r, int64_t *offset, int64_t *limit, const char *const *extra,
                       char (*vals)[96], size_t nextra)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    struct evkeyvalq q;
    bool ok = true;

    *offset = 0;
    *limit = PAGE_DEFAULT;
    for (size_t i = 0; i < nextra; i++)
        vals[i][0] = '\0';
    if (query == NULL)
        return true;
    ok = evhttp_parse_query_str(query, &q) == 0;
    for (struct evkeyval *kv = ok ? q.tqh_first : NULL; kv != NULL; kv = kv->next.tqe_next) {
        char *end;
        long long v = strtoll(kv->value, &end, 10);
        bool num = kv->value[0] != '\0' && *end == '\0';
        bool matched = false;
        if (strcmp(kv->key, "offset") == 0)
            ok = ok && num && v >= 0 && v <= INT32_MAX && ((*offset = v), true);
        else if (strcmp(kv->key, "limit") == 0)
            ok = ok && num && v >= 1 && v <= PAGE_MAX && ((*limit = v), true);
        else {
            for (size_t i = 0; i < nextra; i++)
                if (strcmp(kv->key, extra[i]) == 0 && strlen(kv->value) > 0 &&
                    strlen(kv->value) < sizeof(vals[i])) {
                    snprintf(vals[i], sizeof(vals[i]), "%s", kv->value);
                    matched = true;
                }
            ok = ok && matched;
        }
    }
    evhttp_clear_headers(&q);
    if (!ok)
        rp_reply_error(r, 400, "invalid",
                       "this list takes ?offset=N (>= 0) and ?limit=N (1 to %d)%s", PAGE_MAX,
                       nextra > 0 ? ", and ?device=D and ?kind=K" : "");
    return ok;
}

static json_t *next_offset(json_t *list, int64_t offset, int64_t limit)
{
    return (int64_t)json_array_size(list) == limit ? json_integer(offset + limit) : json_null();
}

/* The debug files a request has opened, by build ID (h NULL: the tenant has none for it, or it
 * cannot be read): each is opened once per request, however many buckets and frames name it.
 * The tenant's, through the caller's store. */
#define SYMCACHE_MAX 32
typedef struct symcache {
    rp_store_t *store; /* the caller's connection: a worker's, or the keyer's */
    rp_blobs_t *blobs; /* on store: with --blobs database, where a file not here is (else NULL) */
    const char *data_dir;
    const char *tenant_id;
    size_t n;
    struct {
        char id[2 * RP_REPORT_BUILD_ID_MAX + 1];
        rp_symbols_t *h;
    } e[SYMCACHE_MAX];
} symcache_t;

/* With --blobs database a debug file is kept in the database too, so that every replica has it:
 * the request's blob store then, else NULL (--blobs dir: the data directory is the record). */
static rp_blobs_t *shared_symbols(rp_req_t *r)
{
    return r->w->srv->blobs == RP_BLOBS_DATABASE ? r->w->blobs : NULL;
}

static void symcache_free(symcache_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        rp_symbols_close(c->e[i].h);
    c->n = 0;
}

struct bucket_list {
    rp_req_t *r;
    json_t *list;
    symcache_t *syms;
};

static void collect_count(void *ctx, const char *dim, const char *value, int64_t count)
{
    json_t *o = json_object_get(ctx, dim);

    if (o != NULL)
        json_object_set_new(o, value, json_integer(count));
}

static void collect_first_sample(void *ctx, const rp_report_row_t *row)
{
    json_t **out = ctx;

    if (*out == NULL)
        *out = json_pack("{s:s, s:I, s:o, s:s, s:b}", "device", row->device_id, "seq",
                         (json_int_t)row->seq, "received", rp_iso_time_json(row->received),
                         "version", row->version, "device_failed", row->device_failed);
}

static void symbolicate(symcache_t *syms, json_t *frames, size_t *named);

static void collect_member(void *ctx, const rp_bucket_t *b)
{
    json_t *sig = json_loads(b->signature, 0, NULL), *ids = json_array();
    json_t *frames = json_object_get(sig, "frames");

    for (size_t i = 0; i < json_array_size(frames); i++)
        json_array_append(ids, json_object_get(json_array_get(frames, i), "build_id"));
    json_array_append_new(ctx, json_pack("{s:s, s:I, s:I, s:o, s:o, s:o}", "id", b->id, "count",
                                         (json_int_t)b->count, "device_failed",
                                         (json_int_t)b->device_failed, "first_seen",
                                         rp_iso_time_json(b->first_seen), "last_seen",
                                         rp_iso_time_json(b->last_seen), "build_ids", ids));
    json_decref(sig);
}

/* A bucket as the list and show give it (signature's fields, counts, times, the build-level
 * buckets it is made of); its frames named where the tenant uploaded their debug files. */
static json_t *bucket_json(rp_req_t *r, symcache_t *syms, const rp_bucket_t *b)
{
    json_t *sig = json_loads(b->signature, 0, NULL);
    json_t *counts = json_pack("{s:{}, s:{}, s:{}}", "version", "group", "day");
    json_t *builds = json_array();
    json_t *o;

    if (rp_store_bucket_counts(r->w->store, r->tenant.id, b->id, collect_count, counts) != RP_OK ||
        rp_store_bucket_members(r->w->store, r->tenant.id, b->id, collect_member, builds) !=
            RP_OK) {
        json_decref(sig);
        json_decref(counts);
        json_decref(builds);
        return NULL;
    }
    o = json_pack("{s:s, s:s, s:s, s:i, s:O?, s:O?, s:I, s:I, s:o, s:o, s:o, s:o}", "id", b->id,
                  "key", b->symbolic ? "symbolic" : "build", "component", b->component, "signal",
                  b->signal, "signal_name", json_object_get(sig, "signal_name"), "frames",
                  json_object_get(sig, "frames"), "count", (json_int_t)b->count, "device_failed",
                  (json_int_t)b->device_failed, "first_seen", rp_iso_time_json(b->first_seen),
                  "last_seen", rp_iso_time_json(b->last_seen), "counts", counts, "builds", builds);
    json_decref(sig);
    if (o != NULL) {
        size_t named = 0;
        symbolicate(syms, json_object_get(o, "frames"), &named);
        json_object_set_new(o, "symbolicated", json_boolean(named > 0));
    }
    return o;
}

static void collect_bucket(void *ctx, const rp_bucket_t *b)
{
    struct bucket_list *l = ctx;
    json_t *o = bucket_json(l->r, l->syms, b), *sample = NULL;

    if (o == NULL)
        return;
    if (rp_store_bucket_samples(l->r->w->store, l->r->tenant.id, b->id, collect_first_sample,
                                &sample) == RP_OK)
        json_object_set_new(o, "sample", sample != NULL ? sample : json_null());
    else
        json_decref(sample);
    json_array_append_new(l->list, o);
}

/* ---- symbolic keys: buckets of different builds shown as one ---- */

#define KEY_PAGE 64 /* build-level buckets keyed in one transaction */

/* The build-level buckets to key, copied out of the store's rows. */
struct to_key {
    size_t n;
    struct {
        char id[RP_BUCKET_ID_LEN + 1];
        char component[33];
        int signal;
        char *signature;
    } b[KEY_PAGE];
};

static void collect_to_key(void *ctx, const rp_bucket_t *b)
{
    struct to_key *k = ctx;

    if (k->n >= KEY_PAGE)
        return;
    snprintf(k->b[k->n].id, sizeof(k->b[k->n].id), "%s", b->id);
    snprintf(k->b[k->n].component, sizeof(k->b[k->n].component), "%s", b->component);
    k->b[k->n].signal = b->signal;
    k->b[k->n].signature = strdup(b->signature);
    if (k->b[k->n].signature != NULL)
        k->n++;
}

/* A build-level bucket's symbolic key from its signature, with the tenant's debug files as they
 * are now ("" when its top frames do not all name a function and line). */
static void symbolic_of(symcache_t *syms, const char *component, int signal, const char *signature,
                        char key[RP_BUCKET_ID_LEN + 1])
{
    json_t *sig = json_loads(signature, 0, NULL);
    json_t *frames = json_deep_copy(json_object_get(sig, "frames"));
    rp_symbolic_frame_t f[RP_BUCKET_FRAMES];
    size_t n = json_array_size(frames), named = 0;

    key[0] = '\0';
    if (n > 0 && n <= RP_BUCKET_FRAMES) {
        symbolicate(syms, frames, &named);
        for (size_t i = 0; i < n; i++) {
            json_t *g = json_array_get(frames, i);
            f[i] = (rp_symbolic_frame_t){json_string_value(json_object_get(g, "module")),
                                         json_string_value(json_object_get(g, "function")),
                                         json_string_value(json_object_get(g, "file")),
                                         (int)json_integer_value(json_object_get(g, "line"))};
        }
        if (!rp_report_symbolic_id(component, signal, f, n, key))
            key[0] = '\0';
    }
    json_decref(frames);
    json_decref(sig);
}

/* Key the buckets of k in one transaction; frees their signatures. */
static rp_err_t key_buckets(symcache_t *syms, struct to_key *k)
{
    char key[RP_BUCKET_ID_LEN + 1];
    rp_err_t err = k->n > 0 ? rp_store_group_begin(syms->store) : RP_OK;
    bool group = k->n > 0 && err == RP_OK;

    for (size_t i = 0; i < k->n; i++) {
        if (err == RP_OK) {
            symbolic_of(syms, k->b[i].component, k->b[i].signal, k->b[i].signature, key);
            err = rp_store_bucket_symbolic_set(syms->store, syms->tenant_id, k->b[i].id, key);
        }
        free(k->b[i].signature);
    }
    if (group)
        err = rp_store_group_end(syms->store, err);
    k->n = 0;
    return err;
}

/*
 * (Re)compute the symbolic key of the tenant's build-level buckets that build_id and unkeyed
 * select (rp_store_buckets_to_key), KEY_PAGE to a transaction, at most max of them (0: all).
 * This and the ingestion's keying of new buckets are what keep every bucket's key what the
 * tenant's debug files say now: a new bucket is keyed after its batch is committed, and each
 * upload re-keys every bucket its build ID names after the upload is committed, so whichever
 * comes second sees the other.
 */
static rp_err_t rekey(symcache_t *syms, const char *build_id, bool unkeyed, size_t max)
{
    char after[RP_BUCKET_ID_LEN + 1] = "";
    size_t done = 0, got;
    struct to_key *k = calloc(1, sizeof(*k));
    rp_err_t err = k != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    while (err == RP_OK) {
        err = rp_store_buckets_to_key(syms->store, syms->tenant_id, NULL, build_id, unkeyed, after,
                                      KEY_PAGE, collect_to_key, k);
        got = k->n;
        if (got > 0)
            snprintf(after, sizeof(after), "%s", k->b[got - 1].id);
        if (err == RP_OK)
            err = key_buckets(syms, k);
        for (size_t i = 0; i < k->n; i++)
            free(k->b[i].signature);
        k->n = 0;
        done += got;
        if (got < KEY_PAGE || (max > 0 && done >= max))
            break;
    }
    free(k);
    return err;
}

/*
 * ---- the keyer: symbolic keys made off the workers' loops ----
 *
 * One thread with its own store connection keys what ingestion and debuginfod leave to key:
 * a committed batch's buckets (those never keyed: the new ones), and, when a debug file is
 * fetched from the debuginfod server, every bucket of every tenant whose top frames name its
 * build ID. Naming frames may start rampart-symbolize children (up to their deadline each), so
 * none of it runs on a worker's loop. Bounded: 768 buckets wait (each (tenant, bucket)
 * once, however many batches name it); past that a batch's buckets are dropped, counted, and
 * stay unkeyed (symbolic NULL), which the next listing keys (KEY_ON_READ). Fetched build IDs
 * wait in a queue of their own that drops nothing (a dropped one would leave its buckets keyed
 * "" for good): the fetcher, a background thread itself, waits for room.
 */
/* A hash table of the buckets waiting (dedup on the worker is O(1)), filled to 3/4 at most. */
#define KEYER_MAX 1024
#define KEYER_BUILDS 64

struct key_slot {
    bool used;
    char tenant_id[RP_ID_SIZE];
    char id[RP_BUCKET_ID_LEN + 1];
};
typedef char key_build_t[2 * RP_REPORT_BUILD_ID_MAX + 1];

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, idle, room;
    pthread_t thread;
    bool running, stopping, busy;
    rp_store_t *store;
    rp_blobs_t *blobs; /* on store, with --blobs database (symcache_t) */
    char data_dir[PATH_MAX];
    struct key_slot *table, *taken; /* KEYER_MAX each: waiting, and the round being keyed */
    size_t n;
    key_build_t builds[KEYER_BUILDS];
    size_t nbuilds;
} keyer = {.lock = PTHREAD_MUTEX_INITIALIZER,
           .wake = PTHREAD_COND_INITIALIZER,
           .idle = PTHREAD_COND_INITIALIZER,
           .room = PTHREAD_COND_INITIALIZER};

/* A bucket ID is hex of a SHA-256: its first digits are as good a hash as any. */
static size_t key_slot_of(const char *id)
{
    size_t h = 0;

    for (size_t i = 0; i < 8 && id[i] != '\0'; i++)
        h = h << 4 | (size_t)(id[i] <= '9' ? id[i] - '0' : (id[i] | 0x20) - 'a' + 10);
    return h % KEYER_MAX;
}

bool rp_reports_key_later(const char *tenant_id, const char *const *ids, size_t n)
{
    size_t added = 0, dropped = 0;

    pthread_mutex_lock(&keyer.lock);
    for (size_t i = 0; i < n; i++) {
        size_t at = key_slot_of(ids[i]);
        bool there = false;
        if (!keyer.running || keyer.stopping || keyer.n >= KEYER_MAX * 3 / 4) {
            dropped++;
            continue;
        }
        for (; keyer.table[at].used; at = (at + 1) % KEYER_MAX)
            if (strcmp(keyer.table[at].id, ids[i]) == 0 &&
                strcmp(keyer.table[at].tenant_id, tenant_id) == 0) {
                there = true;
                break;
            }
        if (there)
            continue;
        keyer.table[at].used = true;
        snprintf(keyer.table[at].tenant_id, sizeof(keyer.table[at].tenant_id), "%s", tenant_id);
        snprintf(keyer.table[at].id, sizeof(keyer.table[at].id), "%s", ids[i]);
        keyer.n++;
        added++;
    }
    if (added > 0)
        pthread_cond_signal(&keyer.wake);
    pthread_mutex_unlock(&keyer.lock);
    atomic_fetch_add(&m_key_queued, added);
    if (dropped > 0) {
        /* Said at the first drop and every 1000th after it: under a storm, no line per batch. */
        unsigned long long before = atomic_fetch_add(&m_key_dropped, dropped);
        if (before == 0 || before / 1000 != (before + dropped) / 1000)
            rp_log_warn("tenant %s: crash buckets not keyed now (the keyer is full or stopped; "
                        "%llu so far, rampart_bucket_keyings_total): the next listing keys them",
                        tenant_id, before + dropped);
    }
    return dropped == 0;
}

/* From the debuginfod fetcher's thread, once a fetched debug file is kept. */
static void key_build_later(const char *build_id)
{
    bool there = false;

    pthread_mutex_lock(&keyer.lock);
    while (keyer.running && !keyer.stopping && keyer.nbuilds >= KEYER_BUILDS)
        pthread_cond_wait(&keyer.room, &keyer.lock);
    for (size_t i = 0; i < keyer.nbuilds && !there; i++)
        there = strcmp(keyer.builds[i], build_id) == 0;
    if (keyer.running && !keyer.stopping && !there) {
        snprintf(keyer.builds[keyer.nbuilds++], sizeof(key_build_t), "%s", build_id);
        pthread_cond_signal(&keyer.wake);
    }
    pthread_mutex_unlock(&keyer.lock);
}

static int key_slot_by_tenant(const void *a, const void *b)
{
    return strcmp(((const struct key_slot *)a)->tenant_id, ((const struct key_slot *)b)->tenant_id);
}

/* The taken buckets that were never keyed, tenant by tenant, KEY_PAGE to a transaction. */
static void key_taken(struct key_slot *t, size_t n)
{
    struct to_key *k = calloc(1, sizeof(*k));

    if (k == NULL) {
        rp_log_warn("cannot key %zu crash bucket(s) now: the next listing will", n);
        return;
    }
    qsort(t, n, sizeof(*t), key_slot_by_tenant);
    for (size_t i = 0; i < n;) {
        symcache_t syms = {.store = keyer.store,
                           .blobs = keyer.blobs,
                           .data_dir = keyer.data_dir,
                           .tenant_id = t[i].tenant_id,
                           .n = 0};
        rp_err_t err = RP_OK;
        size_t j = i;
        for (; j < n && strcmp(t[j].tenant_id, t[i].tenant_id) == 0; j++) {
            if (err == RP_OK)
                err = rp_store_buckets_to_key(keyer.store, t[j].tenant_id, t[j].id, NULL, true, "",
                                              1, collect_to_key, k);
            if (err == RP_OK && k->n == KEY_PAGE)
                err = key_buckets(&syms, k);
        }
        if (err == RP_OK)
            err = key_buckets(&syms, k);
        for (size_t x = 0; x < k->n; x++)
            free(k->b[x].signature);
        k->n = 0;
        symcache_free(&syms);
        if (err != RP_OK)
            rp_log_warn("tenant %s: cannot key new crash buckets now (%s): the next listing will",
                        t[i].tenant_id, rp_strerror(err));
        i = j;
    }
    free(k);
}

struct tenants {
    size_t n, cap;
    char (*id)[RP_ID_SIZE];
};

static void collect_tenant(void *ctx, const char *tenant_id)
{
    struct tenants *t = ctx;

    if (t->n == t->cap) {
        size_t cap = t->cap > 0 ? 2 * t->cap : 16;
        void *p = realloc(t->id, cap * sizeof(*t->id));
        if (p == NULL)
            return;
        t->id = p;
        t->cap = cap;
    }
    snprintf(t->id[t->n++], RP_ID_SIZE, "%s", tenant_id);
}

/* A debug file of build_id came from the debuginfod server (one for every tenant): every
 * tenant's buckets it left without a key are keyed again. */
static void key_build(const char *build_id)
{
    struct tenants t = {0};
    rp_err_t err = rp_store_buckets_tenants_naming(keyer.store, build_id, collect_tenant, &t);

    for (size_t i = 0; err == RP_OK && i < t.n; i++) {
        symcache_t syms = {.store = keyer.store,
                           .blobs = keyer.blobs,
                           .data_dir = keyer.data_dir,
                           .tenant_id = t.id[i],
                           .n = 0};
        err = rekey(&syms, build_id, false, 0);
        symcache_free(&syms);
    }
    free(t.id);
    atomic_fetch_add(&m_key_builds, 1);
    if (err != RP_OK)
        rp_log_warn("cannot key the crash buckets of build ID %s (from debuginfod) now (%s)",
                    build_id, rp_strerror(err));
}

static void *keyer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&keyer.lock);
    for (;;) {
        key_build_t builds[KEYER_BUILDS];
        size_t n = 0, nb;
        while (!keyer.stopping && keyer.n == 0 && keyer.nbuilds == 0)
            pthread_cond_wait(&keyer.wake, &keyer.lock);
        if (keyer.stopping)
            break; /* what waits stays unkeyed: the next listing keys it */
        for (size_t i = 0; i < KEYER_MAX; i++)
            if (keyer.table[i].used)
                keyer.taken[n++] = keyer.table[i];
        memset(keyer.table, 0, KEYER_MAX * sizeof(*keyer.table));
        keyer.n = 0;
        nb = keyer.nbuilds;
        memcpy(builds, keyer.builds, nb * sizeof(builds[0]));
        keyer.nbuilds = 0;
        keyer.busy = true;
        pthread_cond_broadcast(&keyer.room);
        pthread_mutex_unlock(&keyer.lock);
        if (n > 0)
            key_taken(keyer.taken, n);
        for (size_t i = 0; i < nb; i++)
            key_build(builds[i]);
        pthread_mutex_lock(&keyer.lock);
        keyer.busy = false;
        pthread_cond_broadcast(&keyer.idle);
    }
    keyer.busy = false;
    pthread_cond_broadcast(&keyer.idle);
    pthread_mutex_unlock(&keyer.lock);
    return NULL;
}

rp_err_t rp_reports_keyer_start(const rp_server_t *srv)
{
    rp_err_t err;

    if (keyer.running)
        return RP_ERR_INVALID_ARG;
    if (snprintf(keyer.data_dir, sizeof(keyer.data_dir), "%s", srv->data_dir) >=
        (int)sizeof(keyer.data_dir))
        return RP_ERR_INVALID_ARG;
    keyer.stopping = false; /* before the thread: it may be started again after a stop */
    keyer.table = calloc(KEYER_MAX, sizeof(*keyer.table));
    keyer.taken = calloc(KEYER_MAX, sizeof(*keyer.taken));
    err = keyer.table != NULL && keyer.taken != NULL ? rp_server_store_open(srv, &keyer.store)
                                                     : RP_ERR_NO_MEMORY;
    keyer.blobs = NULL;
    if (err == RP_OK && srv->blobs == RP_BLOBS_DATABASE &&
        (err = rp_server_blobs_open(srv, keyer.store, &keyer.blobs)) != RP_OK)
        rp_store_close(keyer.store);
    if (err == RP_OK && pthread_create(&keyer.thread, NULL, keyer_main, NULL) != 0) {
        rp_blobs_close(keyer.blobs);
        rp_store_close(keyer.store);
        err = RP_ERR_NO_MEMORY;
    }
    if (err != RP_OK) {
        free(keyer.table);
        free(keyer.taken);
        keyer.table = keyer.taken = NULL;
        keyer.store = NULL;
        return err;
    }
    pthread_mutex_lock(&keyer.lock);
    keyer.n = keyer.nbuilds = 0;
    keyer.running = true;
    pthread_mutex_unlock(&keyer.lock);
    rp_symbols_debuginfod_on_fetch(key_build_later);
    return RP_OK;
}

bool rp_reports_keyer_idle(int timeout_ms)
{
    struct timespec until;
    bool idle;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&keyer.lock);
    while (keyer.running && (keyer.busy || keyer.n > 0 || keyer.nbuilds > 0))
        if (pthread_cond_timedwait(&keyer.idle, &keyer.lock, &until) != 0)
            break;
    idle = !keyer.busy && keyer.n == 0 && keyer.nbuilds == 0;
    pthread_mutex_unlock(&keyer.lock);
    return idle;
}

void rp_reports_keyer_stop(void)
{
    pthread_mutex_lock(&keyer.lock);
    if (!keyer.running) {
        pthread_mutex_unlock(&keyer.lock);
        return;
    }
    keyer.stopping = true;
    pthread_cond_broadcast(&keyer.wake);
    pthread_cond_broadcast(&keyer.room);
    pthread_mutex_unlock(&keyer.lock);
    pthread_join(keyer.thread, NULL);
    pthread_mutex_lock(&keyer.lock);
    keyer.running = false;
    keyer.n = keyer.nbuilds = 0;
    pthread_mutex_unlock(&keyer.lock);
    rp_blobs_close(keyer.blobs); /* (on the store's connection: closed first) */
    keyer.blobs = NULL;
    rp_store_close(keyer.store);
    keyer.store = NULL;
    free(keyer.table);
    free(keyer.taken);
    keyer.table = keyer.taken = NULL;
}

/* At most this many never-keyed buckets are keyed by a listing (those a failure or an upgrade
 * left unkeyed). */
#define KEY_ON_READ 256

/* GET .../failures[?offset=N][&limit=N]: the tenant's crash buckets, last seen newest first. */
void rp_h_failures_list(rp_req_t *r)
{
    symcache_t syms = {.store = r->w->store,
                       .blobs = shared_symbols(r),
                       .data_dir = r->w->srv->data_dir,
                       .tenant_id = r->tenant.id,
                       .n = 0};
    struct bucket_list l = {r, NULL, &syms};
    int64_t offset, limit;
    rp_err_t err;

    if (!page_query(r, &offset, &limit, NULL, NULL, 0))
        return;
    if (rekey(&syms, NULL, true, KEY_ON_READ) != RP_OK)
        rp_log_warn("tenant %s: cannot key crash buckets now", r->tenant.id);
    l.list = json_array();
    err = rp_store_buckets_list(r->w->store, r->tenant.id, offset, (int)limit, collect_bucket, &l);
    symcache_free(&syms);
    if (err != RP_OK) {
        json_decref(l.list);
        rp_reply_error(r, 500, "internal", "cannot list the crash buckets");
        return;
    }
    rp_reply_json(r, 200,
                  json_pack("{s:o, s:o}", "buckets", l.list, "next_offset",
                            next_offset(l.list, offset, limit)));
}

/* Where a tenant's debug files are kept (build_id NULL: their directory, else the file of a
 * build ID); false when the path does not fit. */
static bool symbols_path(const char *data_dir, const char *tenant_id, const char *build_id,
                         char *out, size_t cap)
{
    int n = build_id != NULL
                ? snprintf(out, cap, "%s/symbols/%s/%s.debug", data_dir, tenant_id, build_id)
                : snprintf(out, cap, "%s/symbols/%s", data_dir, tenant_id);
    return n > 0 && (size_t)n < cap;
}

static bool mkdir_ok(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST;
}

/* The tenant's directory of debug files in data_dir made, and the path of build ID id in it. */
static bool symbols_make_place(const char *data_dir, const char *tenant_id, const char *id,
                               char *path, size_t cap)
{
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof(dir), "%s/symbols", data_dir);

    return n > 0 && (size_t)n < sizeof(dir) && mkdir_ok(dir) &&
           symbols_path(data_dir, tenant_id, NULL, dir, sizeof(dir)) && mkdir_ok(dir) &&
           symbols_path(data_dir, tenant_id, id, path, cap);
}

/* A debug file the tenant uploaded through another replica: copied from the blob store into this
 * one's data directory (path, atomically), where it stays. */
static bool symbols_fetch(symcache_t *c, const char *id, const char *path)
{
    char name[RP_BLOB_NAME_MAX + 1], place[PATH_MAX];
    rp_err_t err;

    if (c->blobs == NULL ||
        !symbols_make_place(c->data_dir, c->tenant_id, id, place, sizeof(place)))
        return false;
    rp_blob_name_symbols(c->tenant_id, id, name);
    err = rp_blob_copy_to_file(c->blobs, name, path, 0600);
    if (err != RP_OK)
        rp_log_warn("%s: not in the blob store either (%s)", name, rp_strerror(err));
    return err == RP_OK;
}

/* The opened debug file of build ID id, or NULL (none, or unreadable); through the cache. OUT:
 * *uncached, a handle the caller closes (the cache is full). */
static rp_symbols_t *symbols_for(symcache_t *c, const char *id, rp_symbols_t **uncached)
{
    char path[PATH_MAX];
    int64_t uploaded;
    rp_symbols_t *h = NULL;

    *uncached = NULL;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].id, id) == 0)
            return c->e[i].h;
    if (rp_store_symbols_get(c->store, c->tenant_id, id, &uploaded) == RP_OK) {
        struct stat sb;
        bool here = symbols_path(c->data_dir, c->tenant_id, id, path, sizeof(path));
        /* (a file another replica took, or replaced since this one's copy was written) */
        if (here && c->blobs != NULL && (stat(path, &sb) != 0 || sb.st_mtime < uploaded))
            (void)symbols_fetch(c, id, path);
        if (!here || rp_symbols_open(path, &h) != RP_OK) {
            rp_log_warn("%s: cannot read the debug file", path);
            h = NULL;
        }
    } else if (rp_symbols_debuginfod_path(id, path, sizeof(path)) &&
               rp_symbols_open(path, &h) != RP_OK) { /* none uploaded: a debuginfod server's */
        h = NULL;
    }
    if (c->n < SYMCACHE_MAX) {
        snprintf(c->e[c->n].id, sizeof(c->e[c->n].id), "%s", id);
        c->e[c->n++].h = h;
    } else
        *uncached = h;
    return h;
}

/*
 * Add function, file and line to each frame of list (JSON frames, innermost first) whose build
 * ID the tenant uploaded a debug file for. A frame past the innermost holds a return address:
 * its line is looked up one byte before, in the call. OUT: *named, the frames named.
 */
static void symbolicate(symcache_t *syms, json_t *frames, size_t *named)
{
    size_t n = json_array_size(frames);

    *named = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(frames, i);
        const char *id = json_string_value(json_object_get(f, "build_id"));
        uint64_t offs[RP_REPORT_FRAMES_MAX];
        size_t idx[RP_REPORT_FRAMES_MAX], k = 0;
        rp_symbol_t sym[RP_REPORT_FRAMES_MAX];
        rp_symbols_t *h, *uncached;

        if (id == NULL || id[0] == '\0' || json_object_get(f, "function") != NULL ||
            json_object_get(f, "looked_up") != NULL)
            continue;
        /* Every frame of this build ID at once: the file is opened once. */
        for (size_t j = i; j < n && k < RP_REPORT_FRAMES_MAX; j++) {
            json_t *g = json_array_get(frames, j);
            const char *gid = json_string_value(json_object_get(g, "build_id"));
            uint64_t off;
            if (gid == NULL || strcmp(gid, id) != 0 || !hex_u64(json_object_get(g, "offset"), &off))
                continue;
            offs[k] = j > 0 && off > 0 ? off - 1 : off;
            idx[k++] = j;
            json_object_set_new(g, "looked_up", json_true());
        }
        if ((h = symbols_for(syms, id, &uncached)) == NULL)
            continue;
        rp_symbols_lookup(h, offs, k, sym);
        rp_symbols_close(uncached);
        for (size_t j = 0; j < k; j++) {
            json_t *g = json_array_get(frames, idx[j]);
            if (sym[j].function[0] == '\0')
                continue;
            json_object_set_new(g, "function", json_string(sym[j].function));
            if (sym[j].line > 0) {
                json_object_set_new(g, "file", json_string(sym[j].file));
                json_object_set_new(g, "line", json_integer(sym[j].line));
            }
            (*named)++;
        }
    }
    for (size_t i = 0; i < n; i++)
        json_object_del(json_array_get(frames, i), "looked_up");
}

static void collect_sample(void *ctx, const rp_report_row_t *row)
{
    json_array_append_new(
        ctx,
        json_pack("{s:s, s:I, s:o, s:o, s:s, s:s, s:o, s:b}", "device", row->device_id, "seq",
                  (json_int_t)row->seq, "at", rp_iso_time_json(row->at), "received",
                  rp_iso_time_json(row->received), "version", row->version, "bucket", row->bucket,
                  "report", json_loads(row->json, 0, NULL), "device_failed", row->device_failed));
}

struct bucket_one {
    struct bucket_list l;
    char id[RP_BUCKET_ID_LEN + 1]; /* as shown */
};

static void take_bucket(void *ctx, const rp_bucket_t *b)
{
    struct bucket_one *one = ctx;

    snprintf(one->id, sizeof(one->id), "%s", b->id);
    one->l.list = bucket_json(one->l.r, one->l.syms, b);
}

/* GET .../failures/B: one bucket (B its shown ID, or the ID of a build-level bucket shown in
 * it), its frames named where the debug files are uploaded. */
void rp_h_failure_get(rp_req_t *r)
{
    const char *id = rp_req_param(r, "bucket");
    symcache_t syms = {.store = r->w->store,
                       .blobs = shared_symbols(r),
                       .data_dir = r->w->srv->data_dir,
                       .tenant_id = r->tenant.id,
                       .n = 0};
    struct bucket_one one = {
        {r, NULL, &syms},
        ""
    };
    json_t *samples, *stack = NULL;
    size_t named_stack = 0;
    rp_err_t err;

    if (strlen(id) != RP_BUCKET_ID_LEN) {
        rp_reply_error(r, 404, "not_found", "no such bucket");
        return;
    }
    if (rekey(&syms, NULL, true, KEY_ON_READ) != RP_OK)
        rp_log_warn("tenant %s: cannot key crash buckets now", r->tenant.id);
    err = rp_store_bucket_get(r->w->store, r->tenant.id, id, take_bucket, &one);
    if (err == RP_ERR_NOT_FOUND) {
        symcache_free(&syms);
        rp_reply_error(r, 404, "not_found", "no such bucket");
        return;
    }
    samples = json_array();
    if (err != RP_OK || one.l.list == NULL ||
        rp_store_bucket_samples(r->w->store, r->tenant.id, one.id, collect_sample, samples) !=
            RP_OK) {
        symcache_free(&syms);
        json_decref(one.l.list);
        json_decref(samples);
        rp_reply_error(r, 500, "internal", "cannot read the bucket");
        return;
    }
    /* The first sample's whole stack, named the same way. */
    stack = json_deep_copy(json_object_get(
        json_object_get(json_object_get(json_array_get(samples, 0), "report"), "crash"), "frames"));
    if (stack != NULL)
        symbolicate(&syms, stack, &named_stack);
    symcache_free(&syms);
    json_object_set_new(one.l.list, "stack", stack != NULL ? stack : json_array());
    json_object_set_new(one.l.list, "samples", samples);
    rp_reply_json(r, 200, one.l.list);
}

static void collect_report(void *ctx, const rp_report_row_t *row)
{
    json_array_append_new(
        ctx, json_pack("{s:s, s:I, s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:s?, s:o, s:b}", "device",
                       row->device_id, "seq", (json_int_t)row->seq, "at", rp_iso_time_json(row->at),
                       "received", rp_iso_time_json(row->received), "kind", row->kind, "component",
                       row->component, "version", row->version, "code", row->code, "reason",
                       row->reason, "bucket", row->bucket[0] ? row->bucket : NULL, "report",
                       json_loads(row->json, 0, NULL), "device_failed", row->device_failed));
}

/* GET .../reports[?device=D][&kind=K][&offset=N][&limit=N]: the stored reports, newest first. */
void rp_h_reports_list(rp_req_t *r)
{
    static const char *const extra[] = {"device", "kind"};
    char vals[2][96];
    int64_t offset, limit;
    json_t *list;

    if (!page_query(r, &offset, &limit, extra, vals, 2))
        return;
    if (vals[1][0] != '\0' && !rp_report_kind_known(vals[1])) {
        rp_reply_error(r, 400, "invalid", "?kind= is not one of the report kinds");
        return;
    }
    list = json_array();
    if (rp_store_reports_list(r->w->store, r->tenant.id, vals[0][0] ? vals[0] : NULL,
                              vals[1][0] ? vals[1] : NULL, offset, (int)limit, collect_report,
                              list) != RP_OK) {
        json_decref(list);
        rp_reply_error(r, 500, "internal", "cannot list the reports");
        return;
    }
    if (vals[0][0] != '\0') {
        /* One device's: what the service and the device's queue dropped of it. */
        int64_t kept, pruned, dropped;
        rp_err_t err = rp_store_report_device_get(r->w->store, r->tenant.id, vals[0], &kept,
                                                  &pruned, &dropped);
        if (err != RP_OK && err != RP_ERR_NOT_FOUND) {
            json_decref(list);
            rp_reply_error(r, 500, "internal", "cannot read the device's counts");
            return;
        }
        rp_reply_json(r, 200,
                      json_pack("{s:o, s:o, s:{s:I, s:I, s:I}}", "reports", list, "next_offset",
                                next_offset(list, offset, limit), "device", "kept",
                                (json_int_t)kept, "pruned", (json_int_t)pruned, "dropped",
                                (json_int_t)dropped));
        return;
    }
    rp_reply_json(
        r, 200,
        json_pack("{s:o, s:o}", "reports", list, "next_offset", next_offset(list, offset, limit)));
}

/* Why a debug file is refused, by what the child said (RP_ERR_INVALID_ARG: not a debug file;
 * else its reader failed on it). */
static void symbols_refused(rp_req_t *r, rp_err_t err)
{
    if (err == RP_ERR_INVALID_ARG)
        rp_reply_error(r, 400, "invalid",
                       "not a debug file: an ELF file with a GNU build ID and a symbol table or "
                       "DWARF (objcopy --only-keep-debug), at most %llu bytes, its sections at "
                       "most %llu bytes decompressed",
                       (unsigned long long)RP_SYMBOLS_MAX,
                       (unsigned long long)RP_SYMBOLS_UNPACKED_MAX);
    else
        rp_reply_error(r, 400, "unreadable",
                       "the debug file could not be read: its confined reader failed on it "
                       "(crashed, ran out of time or memory)");
}

/* The tenant's directory of debug files made, and the path of build ID id in it. */
static bool symbols_place(rp_req_t *r, const char *id, char *path, size_t cap)
{
    return symbols_make_place(r->w->srv->data_dir, r->tenant.id, id, path, cap);
}

/* The debug file of build ID id, kept at path: into the blob store shared by the replicas (with
 * --blobs database), then its row. */
static void symbols_kept(rp_req_t *r, const char *id, const char *path, uint64_t len)
{
    char name[RP_BLOB_NAME_MAX + 1];
    rp_err_t put;

    rp_blob_name_symbols(r->tenant.id, id, name);
    /* (not content-addressed: a debug file replaced is removed first, since a name kept keeps
     * its bytes, blob.h; a replica fetching it meanwhile names no frame with it this once) */
    put = shared_symbols(r) != NULL ? rp_blob_remove(r->w->blobs, name) : RP_OK;
    if (put == RP_ERR_NOT_FOUND)
        put = RP_OK;
    if (put == RP_OK && shared_symbols(r) != NULL)
        put = rp_blob_put_file(r->w->blobs, name, path);
    if (put != RP_OK) {
        rp_reply_failure(r, put, "cannot keep the debug file: %s", rp_strerror(put));
        return;
    }
    /* The file first, then its row: a row always has its file. */
    if (rp_store_symbols_put(r->w->store, r->tenant.id, id, (int64_t)len, (int64_t)time(NULL)) !=
        RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot keep the debug file");
        return;
    }
    rp_log_info("tenant %s: debug file for build ID %s (%llu bytes)", r->tenant.id, id,
                (unsigned long long)len);
    /* Committed: every bucket its build ID names gets its symbolic key now (whatever number of
     * them: a device can make any number of buckets of one build). */
    {
        symcache_t syms = {.store = r->w->store,
                           .blobs = shared_symbols(r),
                           .data_dir = r->w->srv->data_dir,
                           .tenant_id = r->tenant.id,
                           .n = 0};
        rp_err_t err = rekey(&syms, id, false, 0);
        symcache_free(&syms);
        if (err != RP_OK)
            rp_log_warn("tenant %s: cannot key the crash buckets of build ID %s now (%s)",
                        r->tenant.id, id, rp_strerror(err));
    }
    rp_reply_json(r, 201, json_pack("{s:s, s:I}", "build_id", id, "size", (json_int_t)len));
}

/* POST .../symbols {"upload": U}: a debug file sent as a chunked upload (images.c), copied out of
 * the blob store beside its place, then moved into it once the child has read its build ID;
 * never held in memory. */
static void symbols_from_upload(rp_req_t *r)
{
    static const char *const keys[] = {"upload"};
    char id[2 * RP_REPORT_BUILD_ID_MAX + 1], from[PATH_MAX], path[PATH_MAX];
    json_t *body = rp_req_json(r);
    rp_upload_t u;
    rp_err_t err;
    int fd;

    if (body == NULL)
        return;
    if (!rp_json_has_exactly(body, keys, 1) ||
        rp_json_text(json_object_get(body, "upload"), RP_ID_SIZE - 1) == NULL) {
        json_decref(body);
        rp_reply_error(r, 400, "invalid", "the body is {\"upload\": U}, a finished upload's ID");
        return;
    }
    if (!rp_upload_finished(r, json_string_value(json_object_get(body, "upload")), &u)) {
        json_decref(body);
        return;
    }
    json_decref(body);
    if (u.size > RP_SYMBOLS_MAX) {
        rp_upload_forget(r, u.id);
        rp_reply_error(r, 413, "too_large", "a debug file is at most %llu bytes",
                       (unsigned long long)RP_SYMBOLS_MAX);
        return;
    }
    /* (a name no build ID has: the tenant's directory and "upload-U") */
    if (!symbols_place(r, "upload", path, sizeof(path)) ||
        snprintf(from, sizeof(from), "%.*s-%s", (int)(strlen(path) - 6), path, u.id) >=
            (int)sizeof(from) ||
        rp_upload_copy_out(r, &u, from) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot read the upload");
        return;
    }
    if ((fd = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        (void)unlink(from);
        rp_reply_error(r, 500, "internal", "cannot open the upload");
        return;
    }
    err = rp_symbols_build_id_fd(fd, id);
    close(fd);
    if (err != RP_OK) {
        (void)unlink(from);
        rp_upload_forget(r, u.id); /* all its bytes are there: refused for good */
        symbols_refused(r, err);
        return;
    }
    if (!symbols_place(r, id, path, sizeof(path)) || rename(from, path) != 0) {
        (void)unlink(from);
        rp_reply_error(r, 500, "internal", "cannot keep the debug file");
        return;
    }
    rp_upload_forget(r, u.id); /* its bytes are the debug file now */
    symbols_kept(r, id, path, u.size);
}

/* POST .../symbols: a debug file, kept by its build ID: the body itself (raw ELF, at most one
 * request body), or {"upload": U} (Content-Type: application/json) for one sent in chunks. */
void rp_h_symbols_upload(rp_req_t *r)
{
    const char *type = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
    char id[2 * RP_REPORT_BUILD_ID_MAX + 1], path[PATH_MAX];
    size_t len;
    const uint8_t *body;
    rp_err_t err;

    if (type != NULL && strncmp(type, "application/json", 16) == 0) {
        symbols_from_upload(r);
        return;
    }
    if ((body = rp_req_body_upto(r, RP_MAX_BODY_ANY, &len)) == NULL)
        return;
    if ((err = rp_symbols_build_id(body, len, id)) != RP_OK) {
        symbols_refused(r, err);
        return;
    }
    if (!symbols_place(r, id, path, sizeof(path)) ||
        rp_write_file_atomic(path, body, len, 0600, 0) != RP_OK) {
        rp_reply_error(r, 500, "internal", "cannot keep the debug file");
        return;
    }
    symbols_kept(r, id, path, len);
}
