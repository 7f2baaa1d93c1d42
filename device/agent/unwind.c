/*
 * Unwinding a kept crash with elfutils libdw (unwind.h). libdw does the unwinding (CFI, the
 * return address rules); this file reports the captured modules, serves the stack window and the
 * modules' bytes as the crashed process's memory, and hands over the captured registers.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <unistd.h>

#include <elfutils/libdwfl.h>

#include "rampart/hex.h"
#include "unwind.h"

typedef struct ctx {
    const char *state_dir;
    const rp_crash_t *c;
    rp_frame_t *frames;
    size_t n;
    Dwfl *dwfl;
} ctx_t;

/* Whether path is clean: absolute, no "." or ".." component, no "//". */
static bool clean_path(const char *p)
{
    if (p[0] != '/' || strstr(p, "//") != NULL)
        return false;
    for (const char *s = p; s != NULL; s = strchr(s + 1, '/')) {
        if (strncmp(s, "/./", 3) == 0 || strncmp(s, "/../", 4) == 0 || strcmp(s, "/.") == 0 ||
            strcmp(s, "/..") == 0)
            return false;
    }
    return true;
}

/* Whether S/apps/C/tree is still the image the crash ran (tree.digest: "HEX KIND"). */
static bool tree_is_the_crashed_one(const char *state_dir, const rp_crash_t *c)
{
    char path[4096], have[80] = "", want[65];
    FILE *f;

    if (snprintf(path, sizeof(path), "%s/apps/%s/tree.digest", state_dir, c->component) >=
            (int)sizeof(path) ||
        rp_hex_encode(c->digest, sizeof(c->digest), want, sizeof(want)) != RP_OK ||
        (f = fopen(path, "re")) == NULL)
        return false;
    if (fgets(have, sizeof(have), f) == NULL)
        have[0] = '\0';
    fclose(f);
    return strncmp(have, want, 64) == 0;
}

rp_err_t rp_unwind_host_path(const char *state_dir, const rp_crash_t *c, const char *path,
                             char *out, size_t cap)
{
    static const char *const base[] = {"/usr/", "/lib/", "/lib64/", "/lib32/", "/bin/", "/sbin/"};
    int n = -1;

    if (!clean_path(path))
        return RP_ERR_NOT_FOUND;
    if (strncmp(path, "/app/", 5) == 0) {
        if (strcmp(c->tree, "tree") != 0 || !tree_is_the_crashed_one(state_dir, c))
            return RP_ERR_NOT_FOUND; /* that image's tree is gone (a trial, a new version) */
        n = snprintf(out, cap, "%s/apps/%s/tree/%s", state_dir, c->component, path + 5);
    }
    for (size_t i = 0; n < 0 && i < sizeof(base) / sizeof(base[0]); i++)
        if (strncmp(path, base[i], strlen(base[i])) == 0)
            n = snprintf(out, cap, "%s", path);
    return n < 0 ? RP_ERR_NOT_FOUND : (size_t)n >= cap ? RP_ERR_TOO_LARGE : RP_OK;
}

/* Dwfl_Callbacks.find_elf: the module's file, found by the rule above. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
                    char **file_name, Elf **elfp)
{
    ctx_t *x = *userdata;
    char path[4096];
    int fd;

    (void)mod;
    (void)base;
    *elfp = NULL;
    if (rp_unwind_host_path(x->state_dir, x->c, name, path, sizeof(path)) != RP_OK ||
        (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return -1;
    *file_name = strdup(path);
    return fd;
}

/* No separate debug files on the device: the CFI libdw needs is in the modules themselves
 * (.eh_frame); names and lines are the service's (its uploaded debug files). */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                          const char *file_name, const char *debuglink_file,
                          GElf_Word debuglink_crc, char **debuginfo_file_name)
{
    (void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
    (void)debuglink_file, (void)debuglink_crc, (void)debuginfo_file_name;
    return -1;
}

static const Dwfl_Callbacks callbacks = {.find_elf = find_elf, .find_debuginfo = find_debuginfo};

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
    ctx_t *x = arg;
    (void)dwfl;
    if (*thread_argp != NULL)
        return 0;
    *thread_argp = arg;
    return (pid_t)x->c->cap.tid;
}

/* A word of the crashed process: from the stack window, or from a module's file where the
 * capture says it was mapped. Nothing else of its memory was taken. */
static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    ctx_t *x = arg;
    const rp_crash_capture_t *c = &x->c->cap;
    char path[4096];
    uint64_t word = 0;
    bool ok = false;

    (void)dwfl;
    if (addr >= c->sp && c->stack_len >= sizeof(word) &&
        addr - c->sp <= c->stack_len - sizeof(word)) {
        memcpy(&word, c->stack + (addr - c->sp), sizeof(word));
        *result = word;
        return true;
    }
    for (size_t i = 0; !ok && i < c->nmods; i++) {
        const rp_crash_module_t *m = &c->mods[i];
        int fd;
        if (addr < m->start || addr > m->end - sizeof(word) ||
            rp_unwind_host_path(x->state_dir, x->c, m->path, path, sizeof(path)) != RP_OK ||
            (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
            continue;
        ok = pread(fd, &word, sizeof(word), (off_t)(m->offset + (addr - m->start))) ==
             (ssize_t)sizeof(word);
        close(fd);
    }
    if (ok)
        *result = word;
    return ok;
}

/* The captured NT_PRSTATUS as DWARF registers. */
static bool set_initial_registers(Dwfl_Thread *thread, void *arg)
{
    ctx_t *x = arg;
    const rp_crash_capture_t *c = &x->c->cap;

#if defined(__x86_64__)
    struct user_regs_struct r;
    if (c->arch != EM_X86_64 || c->regs_len < sizeof(r))
        return false;
    memcpy(&r, c->regs, sizeof(r));
    /* DWARF numbering of x86-64 (the psABI): rax rdx rcx rbx rsi rdi rbp rsp r8-r15, rip. */
    Dwarf_Word dw[17] = {r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
                         r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip};
    dwfl_thread_state_register_pc(thread, r.rip);
    return dwfl_thread_state_registers(thread, 0, 17, dw);
#elif defined(__aarch64__)
    struct user_regs_struct r;
    Dwarf_Word dw[32];
    if (c->arch != EM_AARCH64 || c->regs_len < sizeof(r))
        return false;
    memcpy(&r, c->regs, sizeof(r));
    for (int i = 0; i < 31; i++)
        dw[i] = r.regs[i];
    dw[31] = r.sp;
    dwfl_thread_state_register_pc(thread, r.pc);
    return dwfl_thread_state_registers(thread, 0, 32, dw);
#else
    (void)c;
    return false;
#endif
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

static int on_frame(Dwfl_Frame *state, void *arg)
{
    ctx_t *x = arg;
    Dwarf_Addr pc, bias = 0;
    bool activation = false;
    rp_frame_t *f;
    Dwfl_Module *mod;

    if (x->n == RP_UNWIND_FRAMES_MAX || !dwfl_frame_pc(state, &pc, &activation))
        return DWARF_CB_ABORT;
    if (!activation && pc > 0)
        pc--; /* a return address: the call is the byte before */
    f = &x->frames[x->n++];
    memset(f, 0, sizeof(*f));
    f->offset = pc;
    mod = dwfl_addrmodule(x->dwfl, pc);
    if (mod != NULL) {
        const char *name = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        const unsigned char *id = NULL;
        GElf_Addr id_vaddr;
        int len;
        if (dwfl_module_getelf(mod, &bias) != NULL)
            f->offset = pc - bias;
        if (name != NULL) {
            const char *slash = strrchr(name, '/');
            snprintf(f->module, sizeof(f->module), "%s", slash ? slash + 1 : name);
        }
        len = dwfl_module_build_id(mod, &id, &id_vaddr);
        if (len > 0 && len <= 20 &&
            rp_hex_encode(id, (size_t)len, f->build_id, sizeof(f->build_id)) != RP_OK)
            f->build_id[0] = '\0';
    }
    return DWARF_CB_OK;
}

rp_err_t rp_unwind(const char *state_dir, const rp_crash_t *c, rp_frame_t *frames, size_t *n)
{
    ctx_t x = {.state_dir = state_dir, .c = c, .frames = frames};
    Dwfl *dwfl = dwfl_begin(&callbacks);
    size_t i = 0;

    *n = 0;
    if (dwfl == NULL)
        return RP_ERR_NO_MEMORY;
    x.dwfl = dwfl;
    dwfl_report_begin(dwfl);
    /* One module per file: from where its offset 0 is (its first mapping's start less its offset)
     * to its last mapping's end; the bias is libdw's to work out from the file. */
    while (i < c->cap.nmods) {
        const rp_crash_module_t *m = &c->cap.mods[i];
        uint64_t low = m->start - (m->offset < m->start ? m->offset : 0), high = m->end;
        size_t j = i + 1;
        while (j < c->cap.nmods && strcmp(c->cap.mods[j].path, m->path) == 0) {
            if (c->cap.mods[j].end > high)
                high = c->cap.mods[j].end;
            j++;
        }
        Dwfl_Module *mod = dwfl_report_module(dwfl, m->path, low, high);
        if (mod != NULL) {
            void **userdata;
            dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL);
            *userdata = &x;
        }
        i = j;
    }
    dwfl_report_end(dwfl, NULL, NULL);
    if (dwfl_attach_state(dwfl, NULL, (pid_t)c->cap.tid, &thread_callbacks, &x))
        (void)dwfl_getthread_frames(dwfl, (pid_t)c->cap.tid, on_frame, &x);
    /* An unwind that stops early (no CFI, a corrupt stack) keeps the frames it found. */
    dwfl_end(dwfl);
    *n = x.n;
    return RP_OK;
}
