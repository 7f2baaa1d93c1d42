/*
 * Output and exit through Arm semihosting (QEMU's -semihosting): the emulated board's console,
 * used by the boot stage and the sample app alike. Works from the secure and the non-secure state.
 */
#ifndef RP_MCU_SEMIHOST_H
#define RP_MCU_SEMIHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Write a NUL-terminated string to the board's console (scripts/mcu-run prints it). */
void rp_sh_out(const char *s);
/* Append the lowercase hex of len bytes to out (2 * len + 1 bytes free, NUL-terminated):
 * rp_hex_encode() at the string's end. */
void rp_sh_hex(char *out, const uint8_t *p, size_t len);
/* Append the decimal of v to out (at least 11 bytes), NUL-terminated; returns out. */
char *rp_sh_u32(char *out, uint32_t v);
/* The semihosting command line (scripts/mcu-run's "NAME=VALUE" arguments after the image name),
 * NUL-terminated in buf[0..cap); false when the emulator gives none. */
bool rp_sh_cmdline(char *buf, size_t cap);
/* The value of the word "name=VALUE" in cmdline (up to the next space or the end), or NULL. */
const char *rp_sh_arg(const char *cmdline, const char *name);
/* Stop the emulator with this exit status. */
__attribute__((noreturn)) void rp_sh_exit(int status);

#endif /* RP_MCU_SEMIHOST_H */
