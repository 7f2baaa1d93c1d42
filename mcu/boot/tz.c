/*
 * TrustZone-M set-up for the non-secure image, and the jump into it. Secure is the default: the
 * SAU attributes to the non-secure state only the primary slot (its code), its RAM and the
 * peripheral window; the MPC of SSRAM3 opens that RAM to it, the PPC one peripheral (the FPGA
 * I/O's LEDs). The boot stage's code, data, the secondary slot, secure storage and the device
 * secret stay secure; only the attestation service's veneers are non-secure callable.
 */
#include <arm_cmse.h>

#include "an505.h"
#include "boot.h"

typedef void __attribute__((cmse_nonsecure_call)) ns_entry_t(void);

volatile bool rp_ns_started;

static void sau_region(uint32_t n, uint32_t base, uint32_t size, uint32_t flags)
{
    SAU_RNR = n;
    SAU_RBAR = base & ~0x1Fu;
    SAU_RLAR = ((base + size - 1) & ~0x1Fu) | flags;
}

void rp_tz_configure(void)
{
    uint32_t base = MPC_SSRAM3_BASE;

    sau_region(0, RP_MCU_FLASH_BASE + RP_MCU_SLOT0_OFF, RP_MCU_SLOT_SIZE, SAU_RLAR_ENABLE);
    sau_region(1, RP_MCU_NS_RAM_BASE, RP_MCU_NS_RAM_SIZE, SAU_RLAR_ENABLE);
    /* non-secure peripherals; the PPCs gate each */
    sau_region(2, 0x40000000u, 0x10000000u, SAU_RLAR_ENABLE);
    /* The veneers alone are non-secure callable (the attestation service's entry): the SAU says
     * so for their window, and the IDAU must allow it for the code region (NSCCFG), since the
     * stricter of the two attributions wins; the rest of the code stays plain secure. */
    sau_region(3, RP_MCU_NSC_BASE, RP_MCU_NSC_SIZE, SAU_RLAR_ENABLE | SAU_RLAR_NSC);
    SECCTL_NSCCFG |= NSCCFG_CODENSC;
    SAU_CTRL = SAU_CTRL_ENABLE;

    for (uint32_t i = 0; i <= MPC_BLK_MAX(base); i++) {
        MPC_BLK_IDX(base) = i;
        MPC_BLK_LUT(base) = 0xFFFFFFFFu;
    }
    SECCTL_APBNSPPCEXP2 |= PPCEXP2_FPGAIO;
    __asm__ volatile("dsb\n isb" ::: "memory");
}

void rp_tz_jump_ns(uint32_t vt)
{
    const volatile uint32_t *vectors = (const volatile uint32_t *)vt;
    ns_entry_t *entry = cmse_nsfptr_create((ns_entry_t *)(uintptr_t)vectors[1]);

    SCB_NS_VTOR = vt;
    __asm__ volatile("msr msp_ns, %0" : : "r"(vectors[0]));
    __asm__ volatile("dsb\n isb" ::: "memory");
    rp_ns_started = true;
    entry();
    for (;;) /* the non-secure image never returns */
        __asm__ volatile("wfi");
}
