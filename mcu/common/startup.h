/*
 * What a bare-metal image's reset does before main(): .data copied from its load address,
 * .bss zeroed. Shared by the boot stage and the sample app; each has its own vector table.
 */
#ifndef RP_MCU_STARTUP_H
#define RP_MCU_STARTUP_H

void rp_startup_init_memory(void);

#endif /* RP_MCU_STARTUP_H */
