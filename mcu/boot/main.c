/*
 * The secure boot stage: verifies the primary slot with the portable core (the same MCUboot
 * format and the same code as the server and the Linux device), refuses an image below the
 * security counter kept in secure storage, records what it measured, measures and starts the
 * secure attestation service (linked apart, mcu/attest/), gives the non-secure world its memory
 * and nothing else, and starts it. Before that, swap.c installs an upgrade from the
 * secondary slot (or resumes, confirms or reverts one) with the same checks (rp_boot_check). It
 * prints a banner, the measurement and one line of verdict ("boot: slot0 version V counter N:
 * booting" or "boot: refused: REASON"), which scripts/mcu-run and tests read.
 */
#include <string.h>

#include <mbedtls/memory_buffer_alloc.h>

#include "attest_image.h"
#include "boot.h"
#include "boot_key.h"
#include "semihost.h"

/* Mbed TLS's only memory: taken and given back within each verification call. */
static unsigned char mbedtls_pool[RP_MCU_MBEDTLS_POOL];
/* The hashing buffer; the slot is memory-mapped, so the core reads it in place. */
static uint8_t scratch[RP_IMAGE_SCRATCH_MIN];

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
    rp_boot_stack_report("\n");
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

/*
 * A bootable Armv8-M vector table: its stack in the app's RAM, its entry in its own payload once
 * it runs from the primary slot (an image in slot1 is linked for slot0 too).
 */
static bool vectors_sane(uint32_t slot_off, uint32_t payload_end)
{
    const volatile uint32_t *v =
        (const volatile uint32_t *)(RP_MCU_FLASH_BASE + slot_off + RP_MCU_IMG_HDR_SIZE);
    const uint32_t vt = RP_MCU_FLASH_BASE + RP_MCU_SLOT0_OFF + RP_MCU_IMG_HDR_SIZE;
    const uint32_t end = RP_MCU_FLASH_BASE + RP_MCU_SLOT0_OFF + payload_end;
    uint32_t sp = v[0], pc = v[1];

    return sp > RP_MCU_NS_RAM_BASE && sp <= RP_MCU_NS_RAM_BASE + RP_MCU_NS_RAM_SIZE &&
           (sp & 7u) == 0 && (pc & 1u) == 1 && (pc & ~1u) >= vt + 8 && (pc & ~1u) < end;
}

const char *rp_boot_check(uint32_t slot_off, rp_image_info_t *info)
{
    static const rp_image_key_t key = {rp_mcu_key_spki, sizeof(rp_mcu_key_spki)};
    static char reason[96];
    rp_image_io_t io = {.mapped = (const uint8_t *)(RP_MCU_FLASH_BASE + slot_off),
                        .size = RP_MCU_SLOT_SIZE};
    uint32_t stored;
    rp_err_t err;

    if (*(const volatile uint32_t *)(RP_MCU_FLASH_BASE + slot_off) == 0xFFFFFFFFu)
        return slot_off == RP_MCU_SLOT0_OFF ? "slot0 is empty (erased flash)"
                                            : "slot1 is empty (erased flash)";
    err = rp_image_verify(&io, &key, 1, scratch, sizeof(scratch), info);
    if (err != RP_OK)
        return rp_strerror(err);
    if (info->type != RP_IMAGE_TYPE_FIRMWARE)
        return "not a firmware image (--type firmware)";
    if (info->layout.hdr.hdr_size != RP_MCU_IMG_HDR_SIZE || info->layout.hdr.flags != 0)
        return "image header size or flags not what this board boots";
    if (info->layout.total_size > RP_MCU_SLOT_SIZE - RP_MCU_SECTOR_SIZE)
        return "the image reaches the slot's trailer (its last sector)";
    if (!info->has_security_counter)
        return "no security counter (--security-counter)";
    if (rp_secstore_counter(&stored) != RP_OK)
        return "secure storage is corrupt";
    if (info->security_counter < stored) {
        reason[0] = 0;
        strcat(reason, "rollback: security counter ");
        rp_sh_u32(reason, info->security_counter);
        strcat(reason, " is below the device's ");
        rp_sh_u32(reason, stored);
        return reason;
    }
    if (!vectors_sane(slot_off, (uint32_t)info->layout.payload_end))
        return "no bootable vector table after the header";
    return NULL;
}

/*
 * The attestation service holds the device key: it runs only as it was built with this boot
 * stage, its whole image (its veneers, header, code and data) measured against the digest the
 * build recorded (attest_image.h), before the boot stage calls it or opens its veneers.
 */
static const char *rp_attest_start(void)
{
    uint8_t digest[RP_SHA256_LEN];

    if (rp_sha256((const void *)RP_MCU_NSC_BASE, RP_MCU_ATTEST_IMAGE_LEN, digest) != RP_OK ||
        memcmp(digest, rp_mcu_attest_image_sha256, RP_SHA256_LEN) != 0 ||
        RP_MCU_PARTITION->magic != RP_MCU_PARTITION_MAGIC)
        return "the attestation service is not the one this boot stage was built with";
    line[0] = 0;
    strcat(line, "boot: measured the attestation service sha256 ");
    rp_sh_hex(line, digest, RP_SHA256_LEN);
    strcat(line, "\n");
    rp_sh_out(line);
    RP_MCU_HANDOFF->stack_low = __bss_end;
    RP_MCU_HANDOFF->stack_top = __stack_top;
    RP_MCU_PARTITION->start();
    return NULL;
}

int main(void)
{
    const uint32_t slot = RP_MCU_FLASH_BASE + RP_MCU_SLOT0_OFF;
    rp_boot_record_t *rec = &RP_MCU_HANDOFF->record; /* in the hand-off to the service */
    uint8_t key_hash[RP_SHA256_LEN];
    char num[RP_IMAGE_VERSION_STR_MAX];
    rp_image_info_t info;
    const char *reason;
    uint32_t stored;
    bool trial;
    rp_err_t err;

    rp_flash_hook_init();
    mbedtls_memory_buffer_alloc_init(mbedtls_pool, sizeof(mbedtls_pool));
    if (rp_sha256(rp_mcu_key_spki, sizeof(rp_mcu_key_spki), key_hash) != RP_OK)
        refuse("crypto backend failure", NULL);
    banner(key_hash);

    /* An upgrade first: install slot1's image, resume a cut one, confirm or revert a trial. */
    err = rp_swap_boot(&trial);
    if (err == RP_ERR_MALFORMED)
        refuse("the swap status is corrupt", NULL);
    if (err != RP_OK)
        refuse("cannot write the security counter", NULL);

    reason = rp_boot_check(RP_MCU_SLOT0_OFF, &info);
    if (reason != NULL)
        refuse(reason, NULL);

    rec->slot = 0;
    rec->trial = trial;
    rec->version = info.layout.hdr.version;
    rec->security_counter = info.security_counter;
    memcpy(rec->digest, info.digest, RP_SHA256_LEN);
    memcpy(rec->signer, key_hash, RP_SHA256_LEN);
    rec->magic = RP_BOOT_RECORD_MAGIC;
    line[0] = 0;
    strcat(line, "boot: measured slot0 sha256 ");
    rp_sh_hex(line, info.digest, RP_SHA256_LEN);
    strcat(line, "\n");
    rp_sh_out(line);

    /* An image on trial has not confirmed itself yet: the counter waits for it. */
    if (!trial && rp_secstore_advance(info.security_counter) != RP_OK)
        refuse("cannot write the security counter", NULL);
    if (rp_secstore_counter(&stored) != RP_OK)
        refuse("secure storage is corrupt", NULL);
    line[0] = 0;
    strcat(line, trial ? "boot: slot0 is on trial (it must confirm itself); security counter "
                       : "boot: security counter ");
    rp_sh_u32(line, stored);
    strcat(line, "\n");
    rp_sh_out(line);
    reason = rp_attest_start();
    if (reason != NULL)
        refuse(reason, NULL);

    if (rp_image_version_format(&info.layout.hdr.version, num, sizeof(num)) != RP_OK)
        refuse("malformed version", NULL);
    line[0] = 0;
    strcat(line, "boot: slot0 version ");
    strcat(line, num);
    strcat(line, " counter ");
    rp_sh_u32(line, info.security_counter);
    strcat(line, ": booting\n");
    rp_sh_out(line);
    rp_boot_stack_report("\n");

    rp_tz_configure();
    rp_tz_jump_ns(slot + RP_MCU_IMG_HDR_SIZE);
}
