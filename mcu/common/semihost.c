/*
 * Arm semihosting calls: the operation in r0, a pointer to its arguments in r1, and BKPT 0xAB,
 * which the emulator traps.
 */
#include <string.h>

#include "rampart/hex.h"
#include "semihost.h"

#define SYS_WRITE0 0x04
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static uintptr_t sh_call(uintptr_t op, void *arg)
{
    register uintptr_t r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;

    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void rp_sh_out(const char *s)
{
    (void)sh_call(SYS_WRITE0, (void *)(uintptr_t)s);
}

bool rp_sh_cmdline(char *buf, size_t cap)
{
    uintptr_t args[2] = {(uintptr_t)buf, cap - 1};

    if (cap < 2 || sh_call(SYS_GET_CMDLINE, args) != 0)
        return false;
    buf[cap - 1] = 0;
    return true;
}

const char *rp_sh_arg(const char *cmdline, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = cmdline; *p != 0; p++)
        if ((p == cmdline || p[-1] == ' ') && strncmp(p, name, n) == 0 && p[n] == '=')
            return p + n + 1;
    return NULL;
}

void rp_sh_hex(char *out, const uint8_t *p, size_t len)
{
    (void)rp_hex_encode(p, len, out + strlen(out), 2 * len + 1);
}

char *rp_sh_u32(char *out, uint32_t v)
{
    char tmp[11];
    size_t n = 0;
    char *o = out + strlen(out);

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *o++ = tmp[--n];
    *o = 0;
    return out;
}

void rp_sh_exit(int status)
{
    uintptr_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)status};

    for (;;)
        (void)sh_call(SYS_EXIT_EXTENDED, args);
}
