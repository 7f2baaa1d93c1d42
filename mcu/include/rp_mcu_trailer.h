/*
 * The primary slot's trailer: its last sector, never part of an image (the boot stage refuses an
 * image that reaches it). Its first word is the confirmation flag: an image booted on trial
 * (docs/mcu.md, upgrades) writes RP_MCU_CONFIRMED there to keep itself; anything else at the next
 * boot reverts to the previous image. The slot is the app's (non-secure), so it can write it.
 */
#ifndef RP_MCU_TRAILER_H
#define RP_MCU_TRAILER_H

#define RP_MCU_TRAILER_ADDR                                                                        \
    (RP_MCU_FLASH_BASE + RP_MCU_SLOT0_OFF + RP_MCU_SLOT_SIZE - RP_MCU_SECTOR_SIZE)
#define RP_MCU_CONFIRMED 0x4B4F5052u /* "RPOK" */

#endif /* RP_MCU_TRAILER_H */
