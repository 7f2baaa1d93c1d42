/*
 * Secure storage: a sector of the flash that only the secure state can reach (the SAU leaves it
 * secure), holding the security counter as a record that must check out, so that a flipped or
 * half-written word reads as "refuse", never as a lower counter. Power-cut-safe updates (two
 * copies) come with upgrades.
 */
#include <string.h>

#include "boot.h"

#define SECSTORE ((volatile uint32_t *)(RP_MCU_FLASH_BASE + RP_MCU_SECSTORE_OFF))
#define SECSTORE_MAGIC 0x43535052u /* "RPSC" */
#define ERASED 0xFFFFFFFFu

rp_err_t rp_secstore_counter(uint32_t *counter)
{
    uint32_t magic = SECSTORE[0], value = SECSTORE[1], check = SECSTORE[2];

    *counter = 0;
    if (magic == ERASED && value == ERASED && check == ERASED)
        return RP_OK; /* never written: a new device */
    if (magic != SECSTORE_MAGIC || check != ~value)
        return RP_ERR_MALFORMED;
    *counter = value;
    return RP_OK;
}

rp_err_t rp_secstore_advance(uint32_t counter)
{
    uint32_t now;
    rp_err_t err = rp_secstore_counter(&now);

    if (err != RP_OK)
        return err;
    if (counter <= now && SECSTORE[0] == SECSTORE_MAGIC)
        return RP_OK;
    SECSTORE[1] = counter;
    SECSTORE[2] = ~counter;
    SECSTORE[0] = SECSTORE_MAGIC;
    err = rp_secstore_counter(&now);
    return err == RP_OK && now == counter ? RP_OK : RP_ERR_IO;
}
