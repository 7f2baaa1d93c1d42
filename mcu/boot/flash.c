/*
 * The boot stage's one way to change flash: erase a range and program words, each a flash
 * operation. On this board the flash is PSRAM, so an erase writes 0xFFFFFFFF word by word, from the
 * start of the range: a power cut in the middle of one leaves a prefix erased, as on a real part a
 * cut erase leaves a sector partly erased. A word is the unit a power cut cannot tear.
 *
 * The power-cut hook (boot-cut.elf only, RP_MCU_CUT_HOOK; never in boot.elf): the semihosting
 * command line's "cut=K" stops the board, as a power cut would, at cut point K: K = 2n + 1 is just
 * before flash operation n (counted from 0 since reset), K = 2n + 2 half-way through it. The count
 * depends only on the code and the flash contents, so a cut point is the same in every run
 * (scripts/mcu-powercut walks them).
 */
#include "boot.h"
#include "semihost.h"

#ifdef RP_MCU_CUT_HOOK
static uint32_t cut_at;   /* 0: no cut */
static uint32_t op_count; /* flash operations begun since reset */

void rp_flash_hook_init(void)
{
    static char cmdline[128];
    const char *p;

    if (!rp_sh_cmdline(cmdline, sizeof(cmdline)) || (p = rp_sh_arg(cmdline, "cut")) == NULL)
        return;
    for (; *p >= '0' && *p <= '9' && cut_at < 100000000u; p++)
        cut_at = cut_at * 10 + (uint32_t)(*p - '0');
}

__attribute__((noreturn)) static void power_cut(void)
{
    char line[64] = "boot: power cut at cut point ";

    rp_sh_u32(line, cut_at);
    rp_sh_out(line);
    rp_sh_out("\n");
    rp_sh_exit(4);
}

/* Called before word i of an operation of n words (i == n: after its last). */
static void hook(uint32_t i, uint32_t n)
{
    if (cut_at == 0)
        return;
    if (i == 0 && cut_at == 2 * op_count + 1)
        power_cut();
    if (i == n / 2 && cut_at == 2 * op_count + 2)
        power_cut();
    if (i == n)
        op_count++;
}
#else
void rp_flash_hook_init(void) {}
#define hook(i, n) ((void)0)
#endif

static volatile uint32_t *word_at(uint32_t off)
{
    return (volatile uint32_t *)(RP_MCU_FLASH_BASE + off);
}

void rp_flash_erase(uint32_t off, uint32_t len)
{
    uint32_t n = len / 4;

    for (uint32_t i = 0; i < n; i++) {
        hook(i, n);
        word_at(off)[i] = RP_FLASH_ERASED;
    }
    hook(n, n);
    __asm__ volatile("dsb" ::: "memory");
}

void rp_flash_program(uint32_t off, const volatile uint32_t *src, uint32_t len)
{
    uint32_t n = len / 4;

    for (uint32_t i = 0; i < n; i++) {
        hook(i, n);
        word_at(off)[i] = src[i];
    }
    hook(n, n);
    __asm__ volatile("dsb" ::: "memory");
}

void rp_flash_word(uint32_t off, uint32_t value)
{
    rp_flash_program(off, &value, 4);
}
