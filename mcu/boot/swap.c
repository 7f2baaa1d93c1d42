/*
 * Upgrades: a verified image in the secondary slot is installed into the primary slot by a swap
 * through a scratch sector, booted on trial, and kept only if it confirms itself (the trailer's
 * flag, rp_mcu_trailer.h); otherwise the next boot swaps the previous image back. Every step is
 * recorded in the swap status (two secure sectors: the install log and the revert log), so a
 * power cut at any word resumes where it stopped and ends with a verified image booting, old or
 * new. The security counter is raised only when the new image is confirmed.
 *
 * A swap of sector i takes three steps, each redone whole after a cut (its source is intact until
 * the next step begins):
 *   0: scratch <- slot1[i]   1: slot1[i] <- slot0[i]   2: slot0[i] <- scratch
 * and a step counts once its mark is written. A log is written in an erased sector only, one word
 * at a time, and a word is the unit a cut cannot tear: a log word holding anything but erased
 * flash or its own value cannot come from a power cut, so the status is corrupt and nothing boots.
 *
 * The install log: its header (sector count, check, and the magic written last), a mark per step,
 * TRIAL (the trailer erased: slot0 boots on trial), CONFIRMED (the counter raised). The revert log:
 * its magic (the decision to revert), a mark per step, REVERTED. When either finishes, slot1's
 * first sector is erased (so the image there is not installed again) and then both logs, the
 * install log first: its erased magic is "no upgrade under way".
 */
#include <string.h>

#include "boot.h"
#include "rp_mcu_trailer.h"
#include "semihost.h"

#define SECTOR RP_MCU_SECTOR_SIZE
#define LOG_INSTALL RP_MCU_STATUS_OFF
#define LOG_REVERT (RP_MCU_STATUS_OFF + SECTOR)
#define MAX_SECTORS (RP_MCU_SLOT_SIZE / SECTOR - 1) /* the last is the trailer */
enum { W_MAGIC = 0, W_SECTORS = 1, W_CHECK = 2, W_STEP0 = 8, W_TRIAL = 1016, W_DONE = 1017 };
#define INSTALL_MAGIC 0x57535052u /* "RPSW" */
#define REVERT_MAGIC 0x56525052u  /* "RPRV" */
#define MARK(i) (0x5A5A0000u | (uint32_t)(i))

_Static_assert(W_STEP0 + 3 * MAX_SECTORS <= W_TRIAL && W_DONE < SECTOR / 4, "log layout");

static uint32_t log_word(uint32_t log, uint32_t i)
{
    return *(const volatile uint32_t *)(RP_MCU_FLASH_BASE + log + 4 * i);
}

static void log_mark(uint32_t log, uint32_t i, uint32_t value)
{
    rp_flash_word(log + 4 * i, value);
}

static uint32_t check_of(uint32_t sectors)
{
    return ~(sectors * 0x9E3779B9u) ^ INSTALL_MAGIC;
}

/* A fixed log word: erased (false), its value (true), or neither (*bad). */
static bool log_flag(uint32_t log, uint32_t i, uint32_t value, bool *bad)
{
    uint32_t w = log_word(log, i);

    if (w != RP_FLASH_ERASED && w != value)
        *bad = true;
    return w == value;
}

/* The steps a log has done: its marks from the first, all the rest erased. */
static uint32_t log_steps(uint32_t log, uint32_t steps, bool *bad)
{
    uint32_t k = 0;

    while (k < steps && log_word(log, W_STEP0 + k) == MARK(k))
        k++;
    for (uint32_t i = k; i < steps; i++)
        if (log_word(log, W_STEP0 + i) != RP_FLASH_ERASED)
            *bad = true;
    return k;
}

static void copy_sector(uint32_t dst, uint32_t src)
{
    rp_flash_erase(dst, SECTOR);
    rp_flash_program(dst, (const volatile uint32_t *)(RP_MCU_FLASH_BASE + src), SECTOR);
}

/* Swap slot0's and slot1's first `sectors` sectors from step k on, marking each in log. */
static void swap_from(uint32_t log, uint32_t sectors, uint32_t k)
{
    for (; k < 3 * sectors; k++) {
        uint32_t i = k / 3 * SECTOR;

        if (k % 3 == 0)
            copy_sector(RP_MCU_SCRATCH_OFF, RP_MCU_SLOT1_OFF + i);
        else if (k % 3 == 1)
            copy_sector(RP_MCU_SLOT1_OFF + i, RP_MCU_SLOT0_OFF + i);
        else
            copy_sector(RP_MCU_SLOT0_OFF + i, RP_MCU_SCRATCH_OFF);
        log_mark(log, W_STEP0 + k, MARK(k));
    }
}

static void finish(void)
{
    rp_flash_erase(RP_MCU_SLOT1_OFF, SECTOR);
    rp_flash_erase(LOG_INSTALL, SECTOR); /* its magic first: from here on, no upgrade */
    rp_flash_erase(LOG_REVERT, SECTOR);
}

static void say(const char *a, const char *b)
{
    char line[160] = "boot: ";

    strcat(line, a);
    if (b != NULL)
        strcat(line, b);
    strcat(line, "\n");
    rp_sh_out(line);
}

/* Sectors an image in a slot occupies, by its header alone (0 when it has none). */
static uint32_t image_sectors(uint32_t slot_off)
{
    rp_image_io_t io = {.mapped = (const uint8_t *)(RP_MCU_FLASH_BASE + slot_off),
                        .size = RP_MCU_SLOT_SIZE};
    rp_image_layout_t layout;

    if (rp_image_layout(&io, &layout) != RP_OK)
        return 0;
    if (layout.total_size > (uint64_t)MAX_SECTORS * SECTOR)
        return MAX_SECTORS;
    return (uint32_t)((layout.total_size + SECTOR - 1) / SECTOR);
}

/* No upgrade under way: install slot1's image if it passes every check, else erase it. */
static rp_err_t start_install(bool *trial)
{
    rp_image_info_t info;
    const char *reason;
    uint32_t sectors, old;
    char num[RP_IMAGE_VERSION_STR_MAX];

    if (log_word(RP_MCU_SLOT1_OFF, 0) == RP_FLASH_ERASED)
        return RP_OK;
    reason = rp_boot_check(RP_MCU_SLOT1_OFF, &info);
    if (reason != NULL) {
        say("slot1 refused: ", reason);
        rp_flash_erase(RP_MCU_SLOT1_OFF, SECTOR);
        return RP_OK;
    }
    if (rp_image_version_format(&info.layout.hdr.version, num, sizeof(num)) != RP_OK)
        return RP_ERR_MALFORMED;
    say("slot1 verified: installing version ", num);
    sectors = (uint32_t)((info.layout.total_size + SECTOR - 1) / SECTOR);
    old = image_sectors(RP_MCU_SLOT0_OFF);
    if (old > sectors)
        sectors = old;
    rp_flash_erase(LOG_REVERT, SECTOR);
    rp_flash_erase(LOG_INSTALL, SECTOR);
    log_mark(LOG_INSTALL, W_SECTORS, sectors);
    log_mark(LOG_INSTALL, W_CHECK, check_of(sectors));
    log_mark(LOG_INSTALL, W_MAGIC, INSTALL_MAGIC); /* the commit: the install now resumes */
    swap_from(LOG_INSTALL, sectors, 0);
    rp_flash_erase(RP_MCU_TRAILER_ADDR - RP_MCU_FLASH_BASE, SECTOR);
    log_mark(LOG_INSTALL, W_TRIAL, MARK(W_TRIAL));
    *trial = true;
    return RP_OK;
}

rp_err_t rp_swap_boot(bool *trial)
{
    uint32_t magic = log_word(LOG_INSTALL, W_MAGIC), sectors, k;
    rp_image_info_t info;
    bool bad = false;

    *trial = false;
    if (magic == RP_FLASH_ERASED)
        return start_install(trial);
    sectors = log_word(LOG_INSTALL, W_SECTORS);
    if (magic != INSTALL_MAGIC || log_word(LOG_INSTALL, W_CHECK) != check_of(sectors) ||
        sectors == 0 || sectors > MAX_SECTORS)
        return RP_ERR_MALFORMED;

    /* The install: resume it where it stopped. */
    k = log_steps(LOG_INSTALL, 3 * sectors, &bad);
    if (!log_flag(LOG_INSTALL, W_TRIAL, MARK(W_TRIAL), &bad)) {
        if (bad || log_word(LOG_INSTALL, W_DONE) != RP_FLASH_ERASED)
            return RP_ERR_MALFORMED;
        say("resuming the install at step ", rp_sh_u32((char[12]){0}, k));
        swap_from(LOG_INSTALL, sectors, k);
        rp_flash_erase(RP_MCU_TRAILER_ADDR - RP_MCU_FLASH_BASE, SECTOR);
        log_mark(LOG_INSTALL, W_TRIAL, MARK(W_TRIAL));
        *trial = true;
        return RP_OK;
    }
    if (bad || k != 3 * sectors)
        return RP_ERR_MALFORMED;

    /* Confirmed: finish (the counter is already raised). */
    if (log_flag(LOG_INSTALL, W_DONE, MARK(W_DONE), &bad)) {
        if (bad || log_word(LOG_REVERT, W_MAGIC) != RP_FLASH_ERASED)
            return RP_ERR_MALFORMED;
        finish();
        return RP_OK;
    }
    if (bad)
        return RP_ERR_MALFORMED;

    magic = log_word(LOG_REVERT, W_MAGIC);
    if (magic == RP_FLASH_ERASED) {
        /* The trial booted before this boot: the image kept itself, or it goes. */
        if (*(const volatile uint32_t *)RP_MCU_TRAILER_ADDR == RP_MCU_CONFIRMED &&
            rp_boot_check(RP_MCU_SLOT0_OFF, &info) == NULL) {
            if (rp_secstore_advance(info.security_counter) != RP_OK)
                return RP_ERR_IO;
            log_mark(LOG_INSTALL, W_DONE, MARK(W_DONE));
            say("slot0 confirmed by the image: the security counter is raised", NULL);
            finish();
            return RP_OK;
        }
        say("slot0 was not confirmed: reverting to the previous image", NULL);
        log_mark(LOG_REVERT, W_MAGIC, REVERT_MAGIC);
    } else if (magic != REVERT_MAGIC) {
        return RP_ERR_MALFORMED;
    }

    /* The revert: the same swap again, resumed where it stopped. */
    k = log_steps(LOG_REVERT, 3 * sectors, &bad);
    if (!log_flag(LOG_REVERT, W_DONE, MARK(W_DONE), &bad)) {
        if (bad)
            return RP_ERR_MALFORMED;
        swap_from(LOG_REVERT, sectors, k);
        log_mark(LOG_REVERT, W_DONE, MARK(W_DONE));
    } else if (bad || k != 3 * sectors) {
        return RP_ERR_MALFORMED;
    }
    finish();
    return RP_OK;
}
