/*
 * The secure boot stage's parts: the security counter in secure storage, the boot record, the
 * TrustZone set-up and the jump to the non-secure image.
 */
#ifndef RP_MCU_BOOT_H
#define RP_MCU_BOOT_H

#include <stdbool.h>
#include <stdint.h>

#include "rampart/crypto.h"
#include "rampart/image.h"
#include "rp_mcu_handoff.h"

/* The stored security counter. RP_ERR_MALFORMED when secure storage holds neither a valid record
 * nor erased flash (fail closed: nothing boots). OUT: *counter (0 on a device never booted). */
rp_err_t rp_secstore_counter(uint32_t *counter) RP_MUST_CHECK;
/* Raise the stored counter to counter (never lowers it). */
rp_err_t rp_secstore_advance(uint32_t counter) RP_MUST_CHECK;

/* Flash (flash.c): erase a range (to 0xFFFFFFFF, from its start), program words, one word;
 * offsets from the flash's start, lengths in bytes (whole words). Each call is one flash
 * operation for the power-cut hook, which rp_flash_hook_init() arms in boot-cut.elf only. */
#define RP_FLASH_ERASED 0xFFFFFFFFu
void rp_flash_hook_init(void);
void rp_flash_erase(uint32_t off, uint32_t len);
void rp_flash_program(uint32_t off, const volatile uint32_t *src, uint32_t len);
void rp_flash_word(uint32_t off, uint32_t value);

/* Every check an image in a slot meets before it boots or is installed: the core's verification
 * with the trusted key, the board's rules and the security counter. NULL when it passes, else the
 * reason. OUT: *info. */
const char *rp_boot_check(uint32_t slot_off, rp_image_info_t *info);

/* Upgrades (swap.c): installs a verified slot1 image on trial, resumes an install or revert a
 * power cut stopped, confirms or reverts a trial. OUT: *trial, slot0 boots on trial (the counter
 * is not raised). RP_ERR_MALFORMED: the swap status is corrupt (nothing boots). */
rp_err_t rp_swap_boot(bool *trial) RP_MUST_CHECK;

/* The secure stack (the boot stage's RAM above its static data): its high-water mark. */
extern uint32_t __stack_top[], __bss_end[];
#define rp_boot_stack_report(after) rp_stack_report(__bss_end, __stack_top, after)

/* Make the non-secure image's slot, its RAM and its peripherals non-secure (SAU, MPC, PPC);
 * everything else stays secure. */
void rp_tz_configure(void);
/* Set just before the jump: from then on, a secure fault is the non-secure image's. */
extern volatile bool rp_ns_started;
/* Start the non-secure image whose vector table is at vt; does not return. */
__attribute__((noreturn)) void rp_tz_jump_ns(uint32_t vt);

#endif /* RP_MCU_BOOT_H */
