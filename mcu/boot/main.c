/*
 * The secure boot stage: verifies the primary slot with the portable core (the same MCUboot
 * format and the same code as the server and the Linux device), refuses an image below the
 * security counter kept in secure storage, records what it measured, gives the non-secure world
 * its memory and nothing else, and starts it. It prints a banner, the measurement and one line of
 * verdict ("boot: slot0 version V counter N: booting" or "boot: refused: REASON"), which
 * scripts/mcu-run and tests read.
 */
#include <string.h>

#include <mbedtls/memory_buffer_alloc.h>

#include "boot.h"
#include "boot_key.h"
#include "semihost.h"

/* Mbed TLS's only memory: taken and given back within each verification call. */
static unsigned char mbedtls_pool[RP_MCU_MBEDTLS_POOL];
/* The hashing buffer; the slot is memory-mapped, so the core reads it in place. */
static uint8_t scratch[RP_IMAGE_SCRATCH_MIN];

rp_boot_record_t rp_boot_record;

static char line[160];

__attribute__((noreturn)) static void refuse(const char *reason, const char *detail)
{
    line[0] = 0;
    strcat(line, "boot: refused: ");
    strcat(line, reason);
    if (detail != NULL)
        strcat(line, detail);
    strcat(line, "\n");
    rp_sh_out(line);
    rp_sh_exit(1);
}

static void banner(const uint8_t key_hash[RP_SHA256_LEN])
{
    line[0] = 0;
    strcat(line, "boot: Rampart secure boot stage; trusts ");
    strcat(line, RP_MCU_KEY_IS_DEV ? "the DEVELOPMENT key mcu/keys/dev-p256 (not for production)"
                                   : "the key given at build");
    strcat(line, ", key hash ");
    rp_sh_hex(line, key_hash, 16);
    strcat(line, "\n");
    rp_sh_out(line);
}

/* A bootable Armv8-M vector table: its stack in the app's RAM, its entry in its own payload. */
static bool vectors_sane(uint32_t vt, uint32_t payload_end)
{
    const volatile uint32_t *v = (const volatile uint32_t *)vt;
    uint32_t sp = v[0], pc = v[1];

    return sp > RP_MCU_NS_RAM_BASE && sp <= RP_MCU_NS_RAM_BASE + RP_MCU_NS_RAM_SIZE &&
           (sp & 7u) == 0 && (pc & 1u) == 1 && (pc & ~1u) >= vt + 8 && (pc & ~1u) < payload_end;
}

int main(void)
{
    const uint32_t slot = RP_MCU_FLASH_BASE + RP_MCU_SLOT0_OFF;
    const rp_image_key_t key = {rp_mcu_key_spki, sizeof(rp_mcu_key_spki)};
    rp_image_io_t io = {.mapped = (const uint8_t *)slot, .size = RP_MCU_SLOT_SIZE};
    rp_image_info_t info;
    uint8_t key_hash[RP_SHA256_LEN];
    char num[RP_IMAGE_VERSION_STR_MAX];
    uint32_t stored, vt;
    rp_err_t err;

    mbedtls_memory_buffer_alloc_init(mbedtls_pool, sizeof(mbedtls_pool));
    if (rp_sha256(key.spki, key.spki_len, key_hash) != RP_OK)
        refuse("crypto backend failure", NULL);
    banner(key_hash);

    if (*(const volatile uint32_t *)slot == 0xFFFFFFFFu)
        refuse("slot0 is empty (erased flash)", NULL);
    err = rp_image_verify(&io, &key, 1, scratch, sizeof(scratch), &info);
    if (err != RP_OK)
        refuse(rp_strerror(err), NULL);
    if (info.type != RP_IMAGE_TYPE_FIRMWARE)
        refuse("not a firmware image (--type firmware)", NULL);
    if (info.layout.hdr.hdr_size != RP_MCU_IMG_HDR_SIZE || info.layout.hdr.flags != 0)
        refuse("image header size or flags not what this board boots", NULL);
    if (!info.has_security_counter)
        refuse("no security counter (--security-counter)", NULL);
    if (rp_secstore_counter(&stored) != RP_OK)
        refuse("secure storage is corrupt", NULL);
    if (info.security_counter < stored) {
        char detail[48] = "";
        rp_sh_u32(detail, info.security_counter);
        strcat(detail, " is below the device's ");
        rp_sh_u32(detail, stored);
        refuse("rollback: security counter ", detail);
    }
    vt = slot + RP_MCU_IMG_HDR_SIZE;
    if (!vectors_sane(vt, slot + (uint32_t)info.layout.payload_end))
        refuse("no bootable vector table after the header", NULL);

    rp_boot_record.slot = 0;
    rp_boot_record.version = info.layout.hdr.version;
    rp_boot_record.security_counter = info.security_counter;
    memcpy(rp_boot_record.digest, info.digest, RP_SHA256_LEN);
    memcpy(rp_boot_record.signer, key_hash, RP_SHA256_LEN);
    rp_boot_record.magic = RP_BOOT_RECORD_MAGIC;
    line[0] = 0;
    strcat(line, "boot: measured slot0 sha256 ");
    rp_sh_hex(line, info.digest, RP_SHA256_LEN);
    strcat(line, "\n");
    rp_sh_out(line);

    if (rp_secstore_advance(info.security_counter) != RP_OK)
        refuse("cannot write the security counter", NULL);

    if (rp_image_version_format(&info.layout.hdr.version, num, sizeof(num)) != RP_OK)
        refuse("malformed version", NULL);
    line[0] = 0;
    strcat(line, "boot: slot0 version ");
    strcat(line, num);
    strcat(line, " counter ");
    rp_sh_u32(line, info.security_counter);
    strcat(line, ": booting\n");
    rp_sh_out(line);

    rp_tz_configure();
    rp_tz_jump_ns(vt);
}
