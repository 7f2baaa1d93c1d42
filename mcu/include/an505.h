/*
 * The registers of QEMU's mps2-an505 (Arm's AN505: an SSE-200 subsystem with a Cortex-M33) that
 * the boot stage and the sample app touch. Peripherals have a non-secure address and a secure
 * alias 0x10000000 above it.
 */
#ifndef RP_MCU_AN505_H
#define RP_MCU_AN505_H

#include <stdint.h>

#define RP_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* The SAU (Armv8-M), in the secure System Control Space. */
#define SAU_CTRL RP_REG(0xE000EDD0u)
#define SAU_TYPE RP_REG(0xE000EDD4u)
#define SAU_RNR RP_REG(0xE000EDD8u)
#define SAU_RBAR RP_REG(0xE000EDDCu)
#define SAU_RLAR RP_REG(0xE000EDE0u)
#define SAU_CTRL_ENABLE 1u
#define SAU_RLAR_ENABLE 1u
#define SAU_RLAR_NSC 2u

/* The non-secure view of the SCB, from the secure state. */
#define SCB_NS_VTOR RP_REG(0xE002ED08u)
#define SCB_AIRCR RP_REG(0xE000ED0Cu)
#define SCB_SFSR RP_REG(0xE000EDE4u) /* SecureFault status */

/* The SSE-200 secure privilege control block (secure alias). */
#define SECCTL_BASE 0x50080000u
#define SECCTL_NSCCFG RP_REG(SECCTL_BASE + 0x14u)       /* IDAU: which secure regions may be NSC */
#define NSCCFG_CODENSC (1u << 0)                        /* the code region, 0x10000000-0x1FFFFFFF */
#define SECCTL_APBNSPPCEXP2 RP_REG(SECCTL_BASE + 0x88u) /* bit n: expansion APB port n is NS */
#define PPCEXP2_FPGAIO (1u << 2)

/* An SSE-200 memory protection controller (one per SSRAM): a lookup table, 1 bit per block. */
#define MPC_CTRL(base) RP_REG((base) + 0x000u)
#define MPC_BLK_MAX(base) RP_REG((base) + 0x010u)
#define MPC_BLK_CFG(base) RP_REG((base) + 0x014u)
#define MPC_BLK_IDX(base) RP_REG((base) + 0x018u)
#define MPC_BLK_LUT(base) RP_REG((base) + 0x01Cu)
#define MPC_SSRAM3_BASE 0x58009000u /* SSRAM3 at 0x28200000: the non-secure app's RAM */

/* The FPGA I/O block: LED0 register (bit n drives user LED n). Non-secure address. */
#define FPGAIO_NS_BASE 0x40302000u
#define FPGAIO_LED RP_REG(FPGAIO_NS_BASE + 0x000u)

#endif /* RP_MCU_AN505_H */
