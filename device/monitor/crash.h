/*
 * A crash as the device keeps it: the one owner of its binary layout and of the crash store
 * (S/crashes/). docs/failure-reporting.md ("Crash capture on the device") explains it.
 *
 * Who does what:
 *   the compartment's init (compartment.c, unprivileged: the app's uid) captures the app's
 *     registers, a bounded window of its stack and its module list (paths and address ranges
 *     from /proc/PID/maps: no ELF is parsed) and encodes them (rp_crash_capture_encode);
 *   the app supervisor (apps.c, privileged) prepends what it knows (component, version, image
 *     digest, uptime, the log's last bytes) and keeps the file (rp_crash_store_put), never
 *     parsing the init's bytes beyond their length;
 *   the monitor hands the files to the agent (CRASHES, type 18: rp_crash_store_read);
 *   the agent (unprivileged) parses them (rp_crash_parse, crash_parse.c, fuzzed) and unwinds.
 *
 * A file: "RPCR" u16 version(1), then the supervisor's part, then the init's (every integer
 * little-endian; str(N) and bytes(N): a u16 length, then that many bytes, at most N):
 *   seq u64, at i64 (unix seconds), uptime_ms u64, component str(32), version str(47),
 *   digest bytes(32), tree str(16) ("tree" or "trial-tree"), log bytes(4096),
 *   capture: arch u16 (ELF e_machine), signo u32, code i32, addr u64, tid u32,
 *     regs bytes(512) (NT_PRSTATUS as the kernel gives it), sp u64, stack bytes(32768) (from sp),
 *     nmods u16 (<= 128), then per mapping of a file: start u64, end u64, offset u64,
 *     path str(255).
 */
#ifndef RAMPART_MONITOR_CRASH_H
#define RAMPART_MONITOR_CRASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/component.h"
#include "rampart/error.h"

#define RP_CRASH_STACK_MAX (32 * 1024) /* the stack window, from the stack pointer */
#define RP_CRASH_REGS_MAX 512          /* NT_PRSTATUS (x86-64: 216 bytes, aarch64: 272) */
#define RP_CRASH_MODULES_MAX 128       /* mappings of files kept from /proc/PID/maps */
#define RP_CRASH_PATH_MAX 255
#define RP_CRASH_LOG_MAX 4096 /* the last bytes of the app's log */
#define RP_CRASH_TREE_MAX 16
#define RP_CRASH_VERSION_MAX 47
#define RP_CRASH_KEEP 32 /* crashes kept in S/crashes/; older ones are dropped and counted */
/* The init's part, and a whole file, at most. */
#define RP_CRASH_CAPTURE_MAX                                                                       \
    (2 + 4 + 4 + 8 + 4 + 2 + RP_CRASH_REGS_MAX + 8 + 2 + RP_CRASH_STACK_MAX + 2 +                  \
     RP_CRASH_MODULES_MAX * (24 + 2 + RP_CRASH_PATH_MAX))
#define RP_CRASH_FILE_MAX                                                                          \
    (6 + 24 + 2 + RP_COMPONENT_NAME_MAX + 2 + RP_CRASH_VERSION_MAX + 2 + 32 + 2 +                  \
     RP_CRASH_TREE_MAX + 2 + RP_CRASH_LOG_MAX + RP_CRASH_CAPTURE_MAX)

typedef struct rp_crash_module {
    uint64_t start, end, offset;      /* as /proc/PID/maps says: the mapping and its file offset */
    char path[RP_CRASH_PATH_MAX + 1]; /* as the app saw it (/app/..., /usr/lib/...) */
} rp_crash_module_t;

typedef struct rp_crash_capture {
    uint16_t arch; /* EM_X86_64, EM_AARCH64 */
    int32_t signo, code;
    uint64_t addr; /* si_addr */
    uint32_t tid;  /* the thread that took the signal, in the app's pid namespace */
    uint8_t regs[RP_CRASH_REGS_MAX];
    size_t regs_len;
    uint64_t sp; /* where stack[] starts */
    uint8_t stack[RP_CRASH_STACK_MAX];
    size_t stack_len;
    rp_crash_module_t mods[RP_CRASH_MODULES_MAX];
    size_t nmods;
} rp_crash_capture_t;

/* A kept crash, as rp_crash_parse reads it. */
typedef struct rp_crash {
    uint64_t seq;
    int64_t at;
    uint64_t uptime_ms;
    char component[RP_COMPONENT_NAME_MAX + 1];
    char version[RP_CRASH_VERSION_MAX + 1];
    uint8_t digest[32];
    char tree[RP_CRASH_TREE_MAX + 1];
    uint8_t log[RP_CRASH_LOG_MAX];
    size_t log_len;
    rp_crash_capture_t cap;
} rp_crash_t;

/* The init's part. OUT: buf[0..*len); RP_ERR_TOO_LARGE past cap. */
rp_err_t rp_crash_capture_encode(const rp_crash_capture_t *c, uint8_t *buf, size_t cap,
                                 size_t *len) RP_MUST_CHECK;

/* What the supervisor adds to the init's bytes. */
typedef struct rp_crash_meta {
    int64_t at;
    uint64_t uptime_ms;
    const char *component, *version, *tree;
    const uint8_t *digest; /* 32 bytes */
    const uint8_t *log;    /* its last bytes (cut to RP_CRASH_LOG_MAX, the newest kept) */
    size_t log_len;
} rp_crash_meta_t;

/*
 * Keep one crash in S/crashes/: the file NUMBER (16 hex digits) written whole (a temporary,
 * fsync, rename, the directory fsync'd), then the oldest files past RP_CRASH_KEEP removed and
 * counted in S/crashes/dropped. RP_ERR_DENIED, with nothing kept, while capture is off
 * (rp_crash_capture_on). capture is the init's bytes, kept as they are (at most
 * RP_CRASH_CAPTURE_MAX; never parsed here). OUT: *seq, the crash's number.
 */
rp_err_t rp_crash_store_put(const char *state_dir, const rp_crash_meta_t *m, const uint8_t *capture,
                            size_t capture_len, uint64_t *seq) RP_MUST_CHECK;

/*
 * The operator's crash capture switch for the device's group (docs/failure-reporting.md), as the
 * agent last told the monitor (SETTINGS): S/crashes/capture holds "on\n" or "off\n". No file:
 * on. Anything else (unreadable, another content): off, said once per call; a switch the
 * operator may have turned off is never read as on.
 */
bool rp_crash_capture_on(const char *state_dir);

/*
 * Keep the switch (written atomically). Turned off, every kept crash is then deleted (the
 * operator said no: they are not sent later); the numbers are not reused and the deletions are
 * not counted as dropped. rp_crash_store_put keeps nothing while it is off.
 */
rp_err_t rp_crash_capture_set(const char *state_dir, bool on) RP_MUST_CHECK;

/*
 * For CRASHES: the kept crash with the lowest number >= from, up to cap bytes of its file from
 * offset. OUT: *seq (0: none from there), *size (its file's size), buf[0..*len), *next (the
 * `from` after it), *dropped. RP_OK with *seq 0 when there is none.
 */
rp_err_t rp_crash_store_read(const char *state_dir, uint64_t from, uint32_t offset, uint8_t *buf,
                             size_t cap, size_t *len, uint64_t *seq, uint32_t *size,
                             uint64_t *dropped) RP_MUST_CHECK;

/* A whole file (crash_parse.c; the agent's, never the monitor's). Bounded; every field checked:
 * RP_ERR_MALFORMED / RP_ERR_TRUNCATED / RP_ERR_TOO_LARGE with nothing else trusted. */
rp_err_t rp_crash_parse(const uint8_t *buf, size_t len, rp_crash_t *out) RP_MUST_CHECK;

/* "SIGSEGV"...; "SIG?" for one it does not name. */
const char *rp_crash_signal_name(int signo);

#endif /* RAMPART_MONITOR_CRASH_H */
