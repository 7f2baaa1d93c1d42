/*
 * What the secure boot stage hands the secure attestation service, two images linked apart: the
 * boot record (what the boot stage measured of the image it started) and where the secure stack
 * is, in secure RAM at a fixed place (RP_MCU_SHARED_BASE, mcu/layout.cmake), which the boot stage
 * writes before it starts the service and the service only reads; and the header at the start of
 * the service's code (RP_MCU_ATTEST_CODE_BASE), by which the boot stage, once it has measured
 * the service's image, starts it.
 */
#ifndef RP_MCU_HANDOFF_H
#define RP_MCU_HANDOFF_H

#include <stdint.h>

#include "rampart/crypto.h"
#include "rampart/image.h"

/* The boot record: the same facts an EAT's measurement carries. */
typedef struct rp_boot_record {
    uint32_t magic; /* RP_BOOT_RECORD_MAGIC once filled in */
    uint32_t slot;
    uint32_t trial; /* 1: booted on trial, not confirmed yet (the counter is not raised) */
    rp_image_version_t version;
    uint32_t security_counter;
    uint8_t digest[RP_SHA256_LEN]; /* SHA-256 of the signed region, as verified */
    uint8_t signer[RP_SHA256_LEN]; /* SHA-256 of the trusted key that signed it */
} rp_boot_record_t;

#define RP_BOOT_RECORD_MAGIC 0x52504252u /* "RBPR" */

typedef struct rp_mcu_handoff {
    rp_boot_record_t record;
    /* The secure stack, painted at reset (rp_stack_report): its lowest word and its top. */
    uint32_t *stack_low, *stack_top;
} rp_mcu_handoff_t;

/* Both images are built from this header by one build; the sizes are pinned all the same. */
_Static_assert(sizeof(rp_boot_record_t) == 88, "the boot record's layout");
_Static_assert(sizeof(rp_mcu_handoff_t) == 96, "the hand-off's layout");
_Static_assert(sizeof(rp_mcu_handoff_t) <= RP_MCU_SHARED_SIZE, "the hand-off fits its RAM");
#define RP_MCU_HANDOFF ((rp_mcu_handoff_t *)RP_MCU_SHARED_BASE)

/* The attestation service's header, the first words of its code. */
typedef struct rp_mcu_partition_header {
    uint32_t magic;      /* RP_MCU_PARTITION_MAGIC */
    void (*start)(void); /* its data set up, its key derived; returns to the boot stage */
} rp_mcu_partition_header_t;

#define RP_MCU_PARTITION_MAGIC 0x50415052u /* "RPAP" */
#define RP_MCU_PARTITION ((const rp_mcu_partition_header_t *)RP_MCU_ATTEST_CODE_BASE)
_Static_assert(sizeof(rp_mcu_partition_header_t) == 8, "the header's layout");

/* The stack's paint (mcu/boot/startup.c): four different bytes, so the paint stays a loop (the
 * compiler turns a fill of one repeated byte into a memset call, whose own frame it would
 * overwrite). */
#define RP_STACK_PAINT 0x5AC3E1F7u

/*
 * The stack's high-water mark since reset, on the console: "boot: stack high-water N of M bytes"
 * then after (its end of line included), N the deepest the stack [low, top) went (the words below
 * it still the paint), M its room.
 */
void rp_stack_report(const uint32_t *low, const uint32_t *top, const char *after);

#endif /* RP_MCU_HANDOFF_H */
