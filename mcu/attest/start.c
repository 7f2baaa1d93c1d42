/*
 * The secure attestation service's start: the header the boot stage finds at the start of its
 * code (rp_mcu_handoff.h) and the function it names, which the boot stage calls once, after it has
 * measured this image and before the non-secure image starts: this image's own data set up, its
 * Mbed TLS pool given, its key derived. It runs on the boot stage's secure stack, and so do the
 * calls through its veneers afterwards.
 */
#include <mbedtls/memory_buffer_alloc.h>

#include "attest.h"
#include "rp_mcu_handoff.h"
#include "startup.h"

/* Mbed TLS's only memory here (the boot stage has its own): taken and given back within each
 * derivation and signature. */
static unsigned char mbedtls_pool[RP_MCU_MBEDTLS_POOL];

static void start(void)
{
    rp_startup_init_memory();
    mbedtls_memory_buffer_alloc_init(mbedtls_pool, sizeof(mbedtls_pool));
    rp_attest_init();
}

#define HEADER __attribute__((section(".partition_header"), used))
HEADER static const rp_mcu_partition_header_t header = {RP_MCU_PARTITION_MAGIC, start};
