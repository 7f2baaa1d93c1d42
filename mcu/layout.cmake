# The memory map of the microcontroller build on QEMU's mps2-an505: the one owner of every
# address and size. mcu/CMakeLists.txt hands them to the C code (-D), to the linker scripts
# (--defsym) and to scripts/mcu-run (build-mcu/layout.env); docs/mcu.md draws them.
#
# "Flash" is the board's 16 MiB PSRAM at 0x80000000, which QEMU backs with a file
# (memory-backend-file, share=on): every write reaches the file, so it persists between runs like
# real flash. It is outside every MPC; the SAU alone decides who sees what of it.
set(RP_MCU_FLASH_BASE      0x80000000) # the flash file's byte 0
set(RP_MCU_FLASH_SIZE      0x01000000) # 16 MiB: the size of the file and of the PSRAM
set(RP_MCU_SLOT0_OFF       0x00000000) # primary slot: the image that boots (non-secure code)
set(RP_MCU_SLOT1_OFF       0x00100000) # secondary slot: an update (secure only)
set(RP_MCU_SLOT_SIZE       0x00100000) # 1 MiB each
set(RP_MCU_SECSTORE_OFF    0x00200000) # secure storage: the security counter (secure only)
set(RP_MCU_SECSTORE_SIZE   0x00001000)
# Upgrades (mcu/boot/swap.c): the erase unit the swap moves (a real part's flash page; the
# board's PSRAM has none, so the boot stage erases by writing 0xFF), the swap status (two
# sectors: the install log and the revert log) and the scratch sector, all secure. The last sector
# of the primary slot is its trailer, never part of an image: the app confirms a trial there.
set(RP_MCU_SECTOR_SIZE     0x00001000)
set(RP_MCU_STATUS_OFF      0x00201000)
set(RP_MCU_SCRATCH_OFF     0x00203000)
# The device secret (mcu/boot/attest.c): a sector of secure flash the factory writes once with 32
# random bytes (scripts/mcu-run does, when it creates a flash file); the attestation key is
# derived from it at boot. Secure only, like secure storage beside it.
set(RP_MCU_DEVSECRET_OFF   0x00204000)
# The image header area `rampart image sign` writes by default (lib: RP_SIGN_DEFAULT_HEADER_SIZE):
# the app's vector table follows it, so a plain `image sign` makes a bootable image.
set(RP_MCU_IMG_HDR_SIZE    0x200)
# The secure boot stage: code in SSRAM1's secure alias (MPC0, left all secure), data and stack in
# SSRAM2's secure alias (MPC1, all secure). QEMU starts the core in the secure state with
# VTOR_S at 0x10000000.
set(RP_MCU_BOOT_CODE_BASE  0x10000000)
set(RP_MCU_BOOT_CODE_SIZE  0x00040000)
# The boot stage's non-secure-callable veneers (CMSE: .gnu.sgstubs, the SG instructions the
# attestation service's entry points start with) at a fixed place at the end of its code, so that
# an app linked against the import library (boot-cmse.o) keeps working with a later boot stage.
set(RP_MCU_NSC_BASE        0x1003FE00)
set(RP_MCU_NSC_SIZE        0x00000200)
set(RP_MCU_BOOT_RAM_BASE   0x38000000)
set(RP_MCU_BOOT_RAM_SIZE   0x00040000)
# The non-secure app's RAM: SSRAM3 (MPC2), every block of it made non-secure by the boot stage.
set(RP_MCU_NS_RAM_BASE     0x28200000)
set(RP_MCU_NS_RAM_SIZE     0x00200000)
