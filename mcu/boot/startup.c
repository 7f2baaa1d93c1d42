/*
 * The secure boot stage's vector table and reset. A fault in the boot stage is reported and
 * stops the board: it never falls through to the non-secure image. The reset paints the stack
 * so that rp_stack_report() can tell how deep it went.
 */
#include <stdint.h>
#include <string.h>

#include "an505.h"
#include "boot.h"
#include "rampart/bytes.h"
#include "rp_mcu_handoff.h"
#include "semihost.h"
#include "startup.h"

int main(void);

__attribute__((noreturn)) void rp_boot_reset(void)
{
    volatile uint32_t *p = __bss_end;
    uintptr_t sp;

    /* The stack is everything between the static data and the top of secure RAM; paint what
     * lies below this frame, before anything else runs. */
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    while ((uintptr_t)p < sp)
        *p++ = RP_STACK_PAINT;
    rp_startup_init_memory();
    main();
    rp_sh_exit(1);
}

/*
 * Every fault the secure state takes. Before the jump it is the boot stage's own, and nothing
 * boots; after it, the non-secure image raised it (a SecureFault when it touched secure memory, or
 * a HardFault escalated from a bus error), and that is its end.
 */
__attribute__((noreturn)) static void fault(void)
{
    if (rp_ns_started) {
        /* SFSR says why: 0x08 (AUVIOL) is an access the SAU attributes to the secure state. */
        char line[64] = "boot: the non-secure image faulted: SFSR 0x";
        uint8_t sfsr[4];

        rp_be_put(sfsr, SCB_SFSR, sizeof(sfsr));
        rp_sh_hex(line, sfsr, sizeof(sfsr));
        strcat(line, "\n");
        rp_sh_out(line);
        rp_sh_exit(3);
    }
    rp_sh_out("boot: refused: fault in the boot stage\n");
    rp_sh_exit(1);
}

__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)__stack_top, (uintptr_t)rp_boot_reset, (uintptr_t)fault, /* NMI */
    (uintptr_t)fault,                                                   /* HardFault */
    (uintptr_t)fault,                                                   /* MemManage */
    (uintptr_t)fault,                                                   /* BusFault */
    (uintptr_t)fault,                                                   /* UsageFault */
    (uintptr_t)fault,                                                   /* SecureFault */
};
