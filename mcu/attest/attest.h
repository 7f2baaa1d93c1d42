/* The secure attestation service's parts (mcu/attest/): its key, set up when it starts. */
#ifndef RP_MCU_ATTEST_PARTITION_H
#define RP_MCU_ATTEST_PARTITION_H

/* Derive the device key from the device secret and print its public key ("boot: attestation key
 * SPKI-HEX"), or say the service is off without one (attest.c). */
void rp_attest_init(void);

#endif /* RP_MCU_ATTEST_PARTITION_H */
