/*
 * The sample non-secure app: says hello, blinks user LED 0 in the board's FPGA I/O block, asks
 * the secure attestation service for evidence over a nonce and prints it, and stops the emulator;
 * booted on trial after an upgrade, it confirms itself. It is signed and booted like every
 * firmware image (docs/mcu.md). Built again for tests: with RP_APP_PROBE (probe.bin,
 * probe-key.bin) it tries to read secure memory instead, which must fault; with
 * RP_APP_ATTEST_PROBE too (probe-key.bin), it first hands the attestation service memory that is
 * not its own and bad lengths, and prints each answer; with RP_APP_CALL_PROBE (probe-call.bin) it
 * calls the service's code directly, not through its veneer, which must fault.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "an505.h"
#include "rp_mcu_attest.h"
#include "rp_mcu_trailer.h"
#include "rampart/hex.h"
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

/* The nonce mcu-run passes ("nonce=HEX", RP_MCU_NONCE_MIN to _MAX bytes): true with it in
 * nonce[0..*len); with no nonce given, a fixed sample one (the demo's); false, said, for a nonce
 * given that is not one (nothing is then signed: evidence over another nonce than asked would
 * mislead whoever relays it). */
static bool nonce_of(uint8_t nonce[RP_MCU_NONCE_MAX], size_t *len)
{
    static const char sample[] = "rampart sample nonce";
    static char cmdline[160];
    const char *p = NULL;

    if (rp_sh_cmdline(cmdline, sizeof(cmdline)))
        p = rp_sh_arg(cmdline, "nonce");
    if (p == NULL) {
        rp_sh_out("app: no nonce given: a sample one\n");
        *len = sizeof(sample) - 1;
        memcpy(nonce, sample, *len);
        return true;
    }
    size_t digits = strcspn(p, " ");
    *len = digits / 2;
    if (digits % 2 != 0 || *len < RP_MCU_NONCE_MIN || *len > RP_MCU_NONCE_MAX ||
        rp_hex_decode(p, digits, nonce, *len) != RP_OK) {
        rp_sh_out("app: no evidence: the nonce given is not 8 to 64 bytes in hex\n");
        return false;
    }
    return true;
}

/* Evidence from the secure attestation service, printed as hex on one line. */
static void attest(void)
{
    static uint8_t evidence[RP_MCU_ATTEST_MAX];
    static char line[32 + 2 * RP_MCU_ATTEST_MAX];
    uint8_t nonce[RP_MCU_NONCE_MAX];
    size_t nonce_len, len;
    rp_err_t err;

    if (!nonce_of(nonce, &nonce_len))
        return;
    err = rp_attest(nonce, nonce_len, evidence, sizeof(evidence), &len);
    line[0] = 0;
    if (err != RP_OK) {
        strcat(line, "app: no evidence: error ");
        rp_sh_u32(line, (uint32_t)err);
    } else {
        strcat(line, "app: evidence ");
        rp_sh_hex(line, evidence, len);
    }
    strcat(line, "\n");
    rp_sh_out(line);
}

#ifdef RP_APP_ATTEST_PROBE
/* The service must refuse memory that is not the caller's, and bound every length (tests). */
static void attest_probe(void)
{
    static uint8_t out[RP_MCU_ATTEST_MAX];
    static const uint8_t nonce[16] = "0123456789abcdef";
    static size_t len;
    static char line[80];
    uint8_t *const secure_ram = (uint8_t *)RP_MCU_BOOT_RAM_BASE;
    uint8_t *const ns_ram_end = (uint8_t *)(RP_MCU_NS_RAM_BASE + RP_MCU_NS_RAM_SIZE);
    const uint8_t *const secret = (const uint8_t *)(RP_MCU_FLASH_BASE + RP_MCU_DEVSECRET_OFF);
    const size_t big = sizeof(out);
    const struct {
        const char *name;
        const uint8_t *nonce;
        size_t nonce_len;
        uint8_t *out;
        size_t cap;
        size_t *len;
    } c[] = {
        {"out-secure-ram",  nonce,  16,                   secure_ram,     big, &len                },
        {"out-past-ns-ram", nonce,  16,                   ns_ram_end - 8, 64,  &len                },
        {"nonce-secret",    secret, 16,                   out,            big, &len                },
        {"len-secure",      nonce,  16,                   out,            big, (size_t *)secure_ram},
        {"nonce-long",      nonce,  RP_MCU_NONCE_MAX + 1, out,            big, &len                },
        {"nonce-short",     nonce,  7,                    out,            big, &len                },
        {"out-small",       nonce,  16,                   out,            16,  &len                },
        {"ok",              nonce,  16,                   out,            big, &len                },
    };

    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        rp_err_t err;

        len = c[i].cap;
        err = rp_attest_entry(c[i].nonce, c[i].nonce_len, c[i].out, c[i].len);
        line[0] = 0;
        strcat(line, "app: attest ");
        strcat(line, c[i].name);
        strcat(line, ": error ");
        rp_sh_u32(line, (uint32_t)err);
        strcat(line, " len ");
        rp_sh_u32(line, c[i].len == &len ? (uint32_t)len : 0);
        strcat(line, "\n");
        rp_sh_out(line);
    }
}
#endif

int main(void)
{
    rp_sh_out("app: hello from the non-secure world\n");
#ifdef RP_APP_ATTEST_PROBE
    attest_probe();
#endif
#ifdef RP_APP_PROBE
    /* The isolation probe (probe.bin, for tests): reading secure memory must fault, so the line
     * after the read is never printed. */
    rp_sh_out("app: reading secure memory\n");
    if (RP_REG(RP_APP_PROBE) != 0x12345678u)
        rp_sh_out("app: read secure memory\n");
    rp_sh_exit(0);
#endif
#ifdef RP_APP_CALL_PROBE
    /* The entry probe (probe-call.bin, for tests): a call into the attestation service's code
     * anywhere but through its veneer must fault, so the line after it is never printed. */
    rp_sh_out("app: calling secure code\n");
    ((void (*)(void))(uintptr_t)((RP_APP_CALL_PROBE) | 1u))();
    rp_sh_out("app: called secure code\n");
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
    attest();
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
