/*
 * The analysis driver of `make prove` (mcu/prove/run.sh): Frama-C's Eva runs from main() below
 * over the boot stage's verification path, the core's rp_image_verify() as mcu/boot/main.c's
 * rp_boot_check() calls it, then what the boot stage does with its verdict (rp_strerror() of a
 * refusal, rp_image_version_format() of an accepted image's version).
 *
 * The slot is arbitrary: every byte of it is unknown (Frama_C_make_unknown), so every image and
 * every non-image up to the slot's size is covered at once, and so is the size of the source
 * (any length from 0 to the slot's). Both ways the core reaches an image are analysed: the
 * memory-mapped slot the boot stage uses (io.mapped), and a read callback that writes arbitrary
 * bytes into the whole buffer it is given (Frama_C_make_unknown, whose contract checks that the
 * buffer is writable for that length) or fails: what a board whose flash is not memory-mapped
 * would use.
 * The one trusted key is any 91 bytes (the size of the boot stage's P-256 key); the crypto port
 * is replaced by the contracts of crypto_contracts.h.
 *
 * RP_MCU_SLOT_SIZE comes from mcu/layout.cmake (run.sh passes it), RP_PROVE_SCRATCH is the boot
 * stage's hashing buffer (RP_IMAGE_SCRATCH_MIN, mcu/boot/main.c) for the mapped slot; the read
 * callback is analysed with any scratch size from that up to a sector.
 */
#include <__fc_builtin.h>
#include <string.h>

#include "crypto_contracts.h"
#include "rampart/image.h"

#ifndef RP_MCU_SLOT_SIZE
#error "RP_MCU_SLOT_SIZE: mcu/prove/run.sh passes it from mcu/layout.cmake"
#endif
#define RP_PROVE_KEY_LEN 91
#define RP_PROVE_SCRATCH_MAX 4096

static uint8_t slot[RP_MCU_SLOT_SIZE];
static uint8_t key_spki[RP_PROVE_KEY_LEN];
static uint8_t scratch[RP_PROVE_SCRATCH_MAX];

/* The flash read callback: arbitrary bytes for any range inside the source, or a failure. */
static int flash_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    (void)ctx;
    (void)off;
    Frama_C_make_unknown(buf, len);
    return Frama_C_interval(0, 1);
}

/* What the boot stage does with a verdict (mcu/boot/main.c). */
static void use_verdict(rp_err_t err, const rp_image_info_t *info)
{
    char num[RP_IMAGE_VERSION_STR_MAX];
    const char *reason;

    if (err != RP_OK) {
        reason = rp_strerror(err);
        //@ assert reason_valid: \valid_read(reason);
        return;
    }
    if (rp_image_version_format(&info->layout.hdr.version, num, sizeof(num)) != RP_OK)
        return;
}

int main(void)
{
    rp_image_key_t key = {key_spki, sizeof(key_spki)};
    rp_image_info_t info;
    rp_image_io_t io;
    rp_err_t err;

    Frama_C_make_unknown((char *)key_spki, sizeof(key_spki));
    Frama_C_make_unknown((char *)slot, sizeof(slot));

    /* The boot stage's way: the slot memory-mapped, hashed in place, 64 bytes of scratch. */
    memset(&io, 0, sizeof(io));
    io.mapped = slot;
    io.size = Frama_C_unsigned_long_long_interval(0, RP_MCU_SLOT_SIZE);
    err = rp_image_verify(&io, &key, 1, scratch, RP_IMAGE_SCRATCH_MIN, &info);
    use_verdict(err, &info);

    /* Flash that is not memory-mapped: every byte through the read callback. */
    memset(&io, 0, sizeof(io));
    io.read = flash_read;
    io.ctx = &io;
    io.size = Frama_C_unsigned_long_long_interval(0, RP_MCU_SLOT_SIZE);
    err =
        rp_image_verify(&io, &key, 1, scratch,
                        Frama_C_size_t_interval(RP_IMAGE_SCRATCH_MIN, RP_PROVE_SCRATCH_MAX), &info);
    use_verdict(err, &info);
    return 0;
}
