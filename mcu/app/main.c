/*
 * The sample non-secure app: says hello, blinks user LED 0 in the board's FPGA I/O block, and
 * stops the emulator; booted on trial after an upgrade, it confirms itself. It is signed and booted
 * like every firmware image (docs/mcu.md). Built again with RP_APP_PROBE as probe.bin, it tries to
 * read secure storage instead, which must fault.
 */
#include <stdint.h>

#include "an505.h"
#include "rp_mcu_trailer.h"
#include "semihost.h"
#include "startup.h"

extern uint32_t __stack_top[];
void rp_app_reset(void);

#define BLINKS 3

static void delay(void)
{
    for (volatile uint32_t i = 0; i < 100000; i++)
        ;
}

int main(void)
{
    rp_sh_out("app: hello from the non-secure world\n");
#ifdef RP_APP_PROBE
    /* The isolation probe (probe.bin, for tests): reading secure memory must fault, so the line
     * after the read is never printed. */
    rp_sh_out("app: reading secure memory\n");
    if (RP_REG(RP_APP_PROBE) != 0x12345678u)
        rp_sh_out("app: read secure memory\n");
    rp_sh_exit(0);
#endif
    for (int i = 0; i < BLINKS; i++) {
        FPGAIO_LED = 1;
        rp_sh_out((FPGAIO_LED & 1) ? "app: LED0 on\n" : "app: LED0 stuck off\n");
        delay();
        FPGAIO_LED = 0;
        rp_sh_out((FPGAIO_LED & 1) ? "app: LED0 stuck on\n" : "app: LED0 off\n");
        delay();
    }
    /* The self-test passed: keep this image if it boots on trial (docs/mcu.md, upgrades). Built
     * as noconfirm.bin (for tests) it never does, so the next boot reverts it. */
#ifndef RP_APP_NO_CONFIRM
    if (RP_REG(RP_MCU_TRAILER_ADDR) != RP_MCU_CONFIRMED) {
        RP_REG(RP_MCU_TRAILER_ADDR) = RP_MCU_CONFIRMED;
        rp_sh_out("app: confirmed this image\n");
    }
#endif
    rp_sh_out("app: done\n");
    rp_sh_exit(0);
}

__attribute__((noreturn)) void rp_app_reset(void)
{
    rp_startup_init_memory();
    main();
    rp_sh_exit(1);
}

__attribute__((noreturn)) static void app_fault(void)
{
    rp_sh_out("app: fault\n");
    rp_sh_exit(3);
}

__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)__stack_top, (uintptr_t)rp_app_reset, (uintptr_t)app_fault, /* NMI */
    (uintptr_t)app_fault,                                                  /* HardFault */
    (uintptr_t)app_fault,                                                  /* MemManage */
    (uintptr_t)app_fault,                                                  /* BusFault */
    (uintptr_t)app_fault,                                                  /* UsageFault */
};
