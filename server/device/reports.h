/*
 * Failure reports (docs/failure-reporting.md): the one owner of a report batch's decoding and
 * bounds, of a crash's bucket ID, and of the routes that take reports in and show them. The
 * decoder is pure (JSON bytes in, a decoded batch or the reason out): the fuzz target and the
 * unit tests call it without a request.
 */
#ifndef RAMPART_SERVER_REPORTS_H
#define RAMPART_SERVER_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "rampart/error.h"

#define RP_REPORTS_BATCH_BYTES (256 * 1024) /* a batch's body at most */
#define RP_REPORTS_BATCH_MAX 64             /* reports in one batch */
#define RP_REPORT_BYTES 16384               /* one report, as compact JSON */
#define RP_REPORT_KIND_MAX 32
#define RP_REPORT_VERSION_MAX 47
#define RP_REPORT_REASON_MAX 255
#define RP_REPORT_CODE_MAX 32
#define RP_REPORT_FRAMES_MAX 64
#define RP_REPORT_BUILD_ID_MAX 40 /* bytes: 80 hex digits */
#define RP_REPORT_MODULE_MAX 64
#define RP_REPORT_SIGNAL_NAME_MAX 16
#define RP_REPORT_STDERR_MAX 4096
#define RP_REPORT_SEQ_LIMIT (INT64_C(1) << 53) /* seq and at are below it */
#define RP_BUCKET_FRAMES 3                     /* top frames in a bucket's key */
#define RP_BUCKET_ID_LEN 32                    /* hex digits: the first 16 bytes of a SHA-256 */

typedef struct rp_report_frame {
    char build_id[2 * RP_REPORT_BUILD_ID_MAX + 1]; /* lowercase hex, or "" */
    char module[RP_REPORT_MODULE_MAX + 1];
    uint64_t offset; /* in the module's own ELF address space */
} rp_report_frame_t;

typedef struct rp_report_crash {
    int signal;
    char signal_name[RP_REPORT_SIGNAL_NAME_MAX + 1];
    int64_t code;
    uint64_t address;
    int64_t uptime_ms;
    size_t nframes;
    rp_report_frame_t frames[RP_REPORT_FRAMES_MAX]; /* innermost first */
} rp_report_crash_t;

/* One decoded report. A refused one has refused set (and seq -1 when its seq was unreadable);
 * the rest of it is then not to be used. */
typedef struct rp_report {
    int64_t seq, at;
    char kind[RP_REPORT_KIND_MAX + 1];
    char component[33]; /* "" when about no component */
    char version[RP_REPORT_VERSION_MAX + 1];
    char code[RP_REPORT_CODE_MAX + 1];
    bool has_crash; /* kind "crash" */
    rp_report_crash_t crash;
    char bucket[RP_BUCKET_ID_LEN + 1]; /* a crash's bucket, set by the decoder */
    char *json; /* the report as compact JSON (keys in the order received), malloc'd */
    char reason[RP_REPORT_REASON_MAX + 1];
    const char *refused; /* why it was refused (a static string), or NULL */
} rp_report_t;

typedef struct rp_report_batch {
    size_t n;
    rp_report_t *reports; /* n of them, malloc'd */
    int64_t dropped;      /* the device queue's drops over its life */
} rp_report_batch_t;

/*
 * Decode a batch body: {"reports": [REPORT...] (at most RP_REPORTS_BATCH_MAX), "dropped": N
 * (optional)}. RP_OK: *out holds every report, each either decoded or refused with its reason
 * (the batch as a whole stands); free it with rp_report_batch_free. RP_ERR_MALFORMED: the
 * envelope is not a batch (400), RP_ERR_TOO_LARGE: more than len or report bounds allow (413);
 * *why says which. Pure.
 */
rp_err_t rp_report_batch_decode(const uint8_t *body, size_t len, rp_report_batch_t *out,
                                const char **why) RP_MUST_CHECK;
void rp_report_batch_free(rp_report_batch_t *b);

/*
 * A crash's bucket ID: SHA-256 over (component, signal, the top RP_BUCKET_FRAMES frames, each
 * as its build ID, or its module name when the device knew no build ID, and its offset), each
 * field length-prefixed, cut to RP_BUCKET_ID_LEN hex digits. The version is not in it: a rebuild
 * changes the build IDs already, and the same binary under a new version number is the same
 * crash.
 */
void rp_report_bucket_id(const char *component, const rp_report_crash_t *c,
                         char out[RP_BUCKET_ID_LEN + 1]);

/*
 * A crash's symbolic key, once debug files name its top frames: SHA-256 over (component, signal,
 * each of the n top frames — n at most RP_BUCKET_FRAMES, the frames of its bucket's signature — as
 * its module's file name, function, source file and line), under its own tag, cut like a bucket
 * ID. false (out "") unless every one of the n frames has a function, a file and a line. Build-
 * level buckets (of different builds, versions) with the same key are shown as one bucket.
 */
typedef struct rp_symbolic_frame {
    const char *module, *function, *file;
    int line;
} rp_symbolic_frame_t;
bool rp_report_symbolic_id(const char *component, int signal, const rp_symbolic_frame_t *f,
                           size_t n, char out[RP_BUCKET_ID_LEN + 1]);

/* Whether a kind is one the contract names. */
bool rp_report_kind_known(const char *kind);

/* The routes (routes.c's table names them). */
struct rp_req;
void rp_h_device_reports(struct rp_req *r); /* POST /api/v1/device/reports */
void rp_h_failures_list(struct rp_req *r);  /* GET  .../failures */
void rp_h_failure_get(struct rp_req *r);    /* GET  .../failures/{bucket} */
void rp_h_reports_list(struct rp_req *r);   /* GET  .../reports */
void rp_h_symbols_upload(struct rp_req *r); /* POST .../symbols */

/* The reports' counters for GET /metrics. */
void rp_reports_metrics(struct evbuffer *buf);

/*
 * The keyer: one thread with its own store connection that makes crash buckets' symbolic keys
 * off the workers' loops (naming frames may start rampart-symbolize children). start: after the
 * store is migrated (and before --debuginfod-url's fetches: a fetched debug file re-keys the
 * buckets naming its build ID, of every tenant); stop: after the workers. key_later: a committed
 * batch's buckets, those never keyed to be keyed; false when some were dropped (the keyer is
 * full or not running: they stay unkeyed, symbolic NULL, and the next listing keys them).
 * idle: waits up to timeout_ms for nothing to be waiting or keyed (tests).
 */
struct rp_server;
rp_err_t rp_reports_keyer_start(const struct rp_server *srv) RP_MUST_CHECK;
void rp_reports_keyer_stop(void);
bool rp_reports_key_later(const char *tenant_id, const char *const *ids, size_t n);
bool rp_reports_keyer_idle(int timeout_ms);

/* ---- symbols.c: debug files, read by a confined child (symbolize.h), never in the service ---- */

struct evbuffer;
/* A debug file at most: one request body up to RP_MAX_BODY_ANY, else a chunked upload. */
#define RP_SYMBOLS_MAX (256ull * 1024 * 1024)
/* Its sections at most once decompressed (SHF_COMPRESSED, .zdebug): libdw inflates them in
 * memory, in the child, each time it names frames; a few KiB of zlib can claim gigabytes. */
#define RP_SYMBOLS_UNPACKED_MAX (512ull * 1024 * 1024)

/* Where rampart-symbolize is (NULL: beside this program's binary) and how long a run may take
 * (milliseconds; 0: as before, 5000 at first). */
void rp_symbols_configure(const char *helper, int timeout_ms);

/* The GNU build ID of a debug file, as lowercase hex, as the child reads it (in memory, or on
 * fd: only read). RP_ERR_INVALID_ARG when it is not an ELF file, has no build ID, holds neither
 * DWARF line data nor a symbol table, or its sections would decompress to more than
 * RP_SYMBOLS_UNPACKED_MAX; RP_ERR_IO when the child failed (crashed, killed at its deadline,
 * answered outside the protocol: logged). */
rp_err_t rp_symbols_build_id(const uint8_t *data, size_t len,
                             char out[2 * RP_REPORT_BUILD_ID_MAX + 1]) RP_MUST_CHECK;
rp_err_t rp_symbols_build_id_fd(int fd, char out[2 * RP_REPORT_BUILD_ID_MAX + 1]) RP_MUST_CHECK;

/* What a debug file says of an address: its function ("" when none) and source line (file "",
 * line 0 when none). */
typedef struct rp_symbol {
    char function[256];
    char file[256];
    int line;
} rp_symbol_t;

/* Resolve n offsets (in the module's own ELF address space) with the debug file at path.
 * RP_ERR_IO when the file cannot be opened; frames the child cannot name stay empty. */
rp_err_t rp_symbols_resolve(const char *path, const uint64_t *offsets, size_t n,
                            rp_symbol_t *out) RP_MUST_CHECK;

/* The same in steps, so that a request opens each debug file once however many frames name it:
 * open (RP_ERR_IO when the file cannot be opened), look up as often as needed (offsets named
 * before come from the cache; the others from one child per RP_SYMBOLIZE_QUERIES_MAX), close. */
typedef struct rp_symbols rp_symbols_t;
rp_err_t rp_symbols_open(const char *path, rp_symbols_t **out) RP_MUST_CHECK;
void rp_symbols_lookup(rp_symbols_t *h, const uint64_t *offsets, size_t n, rp_symbol_t *out);
void rp_symbols_close(rp_symbols_t *h);
/* How many debug files have been opened (GET /metrics). */
unsigned long long rp_symbols_opened(void);
/* The child's runs and the cache's hits, for GET /metrics. */
void rp_symbols_metrics(struct evbuffer *buf);

/* Debug files from a debuginfod server (rampart-server --debuginfod-url; off without it), for
 * build IDs no tenant uploaded. start: fetched one at a time in the background by
 * `rampart-symbolize fetch` (libdebuginfod, bounded in size and time), checked by a confined
 * `check` (the same build ID), kept as DATA/debuginfod/ID.debug. path: true and its path when it
 * is there; else it is asked for (not again for a while after the server lacked it) and false:
 * a request never waits for the server. */
rp_err_t rp_symbols_debuginfod_start(const char *url, const char *data_dir) RP_MUST_CHECK;
bool rp_symbols_debuginfod_path(const char *build_id, char *path, size_t cap);
/* Called on the fetcher's thread with each build ID whose debug file was fetched and kept (the
 * keyer's; NULL: none). */
void rp_symbols_debuginfod_on_fetch(void (*fn)(const char *build_id));
void rp_symbols_debuginfod_metrics(struct evbuffer *buf);
/* Build IDs waiting for the fetcher (not counting the one it fetches). */
size_t rp_symbols_debuginfod_waiting(void);

/* The child's answers, parsed strictly (symbolize.h): a check's build ID; a lookup's n frames.
 * RP_ERR_MALFORMED for anything else (out zeroed). */
rp_err_t rp_symbols_parse_check(const char *buf, size_t len,
                                char out[2 * RP_REPORT_BUILD_ID_MAX + 1]) RP_MUST_CHECK;
rp_err_t rp_symbols_parse_lookup(const char *buf, size_t len, size_t n,
                                 rp_symbol_t *out) RP_MUST_CHECK;

#endif /* RAMPART_SERVER_REPORTS_H */
