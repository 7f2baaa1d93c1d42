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
# The device secret (mcu/attest/attest.c): a sector of secure flash the factory writes once with 32
# random bytes (scripts/mcu-run does, when it creates a flash file); the attestation key is
# derived from it at boot. Secure only, like secure storage beside it.
set(RP_MCU_DEVSECRET_OFF   0x00204000)
# The image header area `rampart image sign` writes by default (lib: RP_SIGN_DEFAULT_HEADER_SIZE):
# the app's vector table follows it, so a plain `image sign` makes a bootable image.
set(RP_MCU_IMG_HDR_SIZE    0x200)
# The secure boot stage: code in SSRAM1's secure alias (MPC0, left all secure), up to the
# attestation service's image, data and stack in SSRAM2's secure alias (MPC1, all secure). QEMU
# starts the core in the secure state with VTOR_S at 0x10000000.
set(RP_MCU_BOOT_CODE_BASE  0x10000000)
set(RP_MCU_BOOT_CODE_SIZE  0x0003FE00) # to NSC_BASE
# The secure attestation service is a partition of its own, linked apart from the boot stage (as
# TF-M's secure runtime is apart from its BL2): its image starts with its non-secure-callable
# veneers (CMSE: .gnu.sgstubs, the SG instructions its entry points start with) in the NSC window,
# at a fixed place so that an app linked against its import library (attest-cmse.o) keeps working
# with a later build, followed by its header and code. The boot stage measures the whole image
# (NSC_BASE up to its end) against the digest it was built with before it calls it.
set(RP_MCU_NSC_BASE        0x1003FE00)
set(RP_MCU_NSC_SIZE        0x00000200)
set(RP_MCU_ATTEST_CODE_BASE 0x10040000) # NSC_BASE + NSC_SIZE: its header, then its code
set(RP_MCU_ATTEST_CODE_SIZE 0x00020000)
# Secure RAM (SSRAM2's secure alias, all secure): the boot stage's data and stack, the hand-off
# between the two (the boot record, which the boot stage writes and the service reads), and the
# attestation service's own data. The service runs on the secure stack the boot stage leaves.
set(RP_MCU_BOOT_RAM_BASE   0x38000000)
set(RP_MCU_BOOT_RAM_SIZE   0x00030000)
set(RP_MCU_SHARED_BASE     0x38030000)
set(RP_MCU_SHARED_SIZE     0x00000100)
set(RP_MCU_ATTEST_RAM_BASE 0x38031000)
set(RP_MCU_ATTEST_RAM_SIZE 0x0000F000)
# The non-secure app's RAM: SSRAM3 (MPC2), every block of it made non-secure by the boot stage.
set(RP_MCU_NS_RAM_BASE     0x28200000)
set(RP_MCU_NS_RAM_SIZE     0x00200000)
