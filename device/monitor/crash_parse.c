/*
 * The reader of a kept crash (crash.h's layout), for the unprivileged agent: bounded, every
 * field checked (fuzz/crash_record.c). The monitor never links it: it keeps the init's bytes
 * without reading them.
 */
#include <signal.h>
#include <string.h>

#include "crash.h"
#include "rampart/bytes.h"

typedef struct rd {
    const uint8_t *p;
    size_t len, off;
    rp_err_t err;
} rd_t;

static const uint8_t *take(rd_t *r, size_t n)
{
    if (r->err != RP_OK)
        return NULL;
    if (n > r->len - r->off) {
        r->err = RP_ERR_TRUNCATED;
        return NULL;
    }
    r->off += n;
    return r->p + r->off - n;
}
static uint64_t get_le(rd_t *r, size_t n)
{
    const uint8_t *b = take(r, n);
    return b != NULL ? rp_le_get(b, n) : 0;
}
/* OUT: out[0..*n), at most max. */
static void get_bytes(rd_t *r, uint8_t *out, size_t *n, size_t max)
{
    size_t k = (size_t)get_le(r, 2);
    const uint8_t *b;

    *n = 0;
    if (r->err == RP_OK && k > max) {
        r->err = RP_ERR_TOO_LARGE;
        return;
    }
    if ((b = take(r, k)) != NULL) {
        memcpy(out, b, k);
        *n = k;
    }
}
/* A string: no NUL, printable bytes only (it is shown and put in JSON). */
static void get_str(rd_t *r, char *out, size_t max)
{
    size_t n;

    get_bytes(r, (uint8_t *)out, &n, max);
    out[n] = '\0';
    for (size_t i = 0; r->err == RP_OK && i < n; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] == 0x7f)
            r->err = RP_ERR_MALFORMED;
}

rp_err_t rp_crash_parse(const uint8_t *buf, size_t len, rp_crash_t *c)
{
    rd_t r = {.p = buf, .len = len};
    const uint8_t *magic;
    size_t n;

    memset(c, 0, sizeof(*c));
    if (len > RP_CRASH_FILE_MAX)
        return RP_ERR_TOO_LARGE;
    magic = take(&r, 4);
    if (magic != NULL && memcmp(magic, "RPCR", 4) != 0)
        return RP_ERR_BAD_MAGIC;
    if (get_le(&r, 2) != 1 && r.err == RP_OK)
        return RP_ERR_BAD_VERSION;
    c->seq = get_le(&r, 8);
    c->at = (int64_t)get_le(&r, 8);
    c->uptime_ms = get_le(&r, 8);
    get_str(&r, c->component, RP_COMPONENT_NAME_MAX);
    get_str(&r, c->version, RP_CRASH_VERSION_MAX);
    get_bytes(&r, c->digest, &n, 32);
    if (r.err == RP_OK && n != 32)
        r.err = RP_ERR_MALFORMED;
    get_str(&r, c->tree, RP_CRASH_TREE_MAX);
    get_bytes(&r, c->log, &c->log_len, RP_CRASH_LOG_MAX);
    c->cap.arch = (uint16_t)get_le(&r, 2);
    c->cap.signo = (int32_t)get_le(&r, 4);
    c->cap.code = (int32_t)get_le(&r, 4);
    c->cap.addr = get_le(&r, 8);
    c->cap.tid = (uint32_t)get_le(&r, 4);
    get_bytes(&r, c->cap.regs, &c->cap.regs_len, RP_CRASH_REGS_MAX);
    c->cap.sp = get_le(&r, 8);
    get_bytes(&r, c->cap.stack, &c->cap.stack_len, RP_CRASH_STACK_MAX);
    c->cap.nmods = (size_t)get_le(&r, 2);
    if (r.err == RP_OK && c->cap.nmods > RP_CRASH_MODULES_MAX)
        r.err = RP_ERR_TOO_LARGE;
    for (size_t i = 0; r.err == RP_OK && i < c->cap.nmods; i++) {
        rp_crash_module_t *m = &c->cap.mods[i];
        m->start = get_le(&r, 8);
        m->end = get_le(&r, 8);
        m->offset = get_le(&r, 8);
        get_str(&r, m->path, RP_CRASH_PATH_MAX);
        if (r.err == RP_OK && (m->end <= m->start || m->path[0] != '/'))
            r.err = RP_ERR_MALFORMED;
    }
    if (r.err == RP_OK && (r.off != len || c->seq == 0 || c->cap.signo < 1 || c->cap.signo > 64 ||
                           !rp_component_name_valid(c->component, strlen(c->component)) ||
                           c->cap.stack_len > UINT64_MAX - c->cap.sp))
        r.err = RP_ERR_MALFORMED;
    return r.err;
}

const char *rp_crash_signal_name(int signo)
{
    switch (signo) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    default: return "SIG?";
    }
}
