/*
 * Output and exit through Arm semihosting (QEMU's -semihosting): the emulated board's console,
 * used by the boot stage and the sample app alike. Works from the secure and the non-secure state.
 */
#ifndef RP_MCU_SEMIHOST_H
#define RP_MCU_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* Write a NUL-terminated string to the board's console (scripts/mcu-run prints it). */
void rp_sh_out(const char *s);
/* Append the lowercase hex of len bytes to out (2 * len + 1 bytes, NUL-terminated). */
void rp_sh_hex(char *out, const uint8_t *p, size_t len);
/* Append the decimal of v to out (at least 11 bytes), NUL-terminated; returns out. */
char *rp_sh_u32(char *out, uint32_t v);
/* Stop the emulator with this exit status. */
__attribute__((noreturn)) void rp_sh_exit(int status);

#endif /* RP_MCU_SEMIHOST_H */
