/*
 * Secure storage: a sector of the flash that only the secure state can reach (the SAU leaves it
 * secure), holding the security counter in two copies, so that a power cut while it is raised
 * leaves the old value or the new one, never a lower one and never an unreadable store.
 *
 * A copy is four words: magic, sequence, counter, check. It is written by erasing it (magic
 * first), then writing sequence, counter and check, and the magic last: a copy whose magic is
 * still erased is an unfinished write and is ignored; a copy with the magic but a wrong check
 * cannot come from a power cut, so it is corruption and refuses every image (fail closed). The
 * current value is the valid copy with the higher sequence; none valid is a new device (0). A
 * raise always writes the copy that does not hold the current value.
 */
#include <string.h>

#include "boot.h"

#define COPY(n)                                                                                    \
    ((volatile uint32_t *)(RP_MCU_FLASH_BASE + RP_MCU_SECSTORE_OFF +                               \
                           (n) * (RP_MCU_SECSTORE_SIZE / 2)))
#define MAGIC 0x43535052u /* "RPSC" */
#define ERASED 0xFFFFFFFFu
enum { W_MAGIC, W_SEQ, W_COUNTER, W_CHECK, W_COUNT };

static uint32_t check_of(uint32_t seq, uint32_t counter)
{
    return ~(counter ^ (seq * 0x9E3779B9u));
}

typedef enum { COPY_EMPTY, COPY_VALID, COPY_BAD } copy_state_t;

static copy_state_t copy_state(unsigned n)
{
    volatile uint32_t *c = COPY(n);

    if (c[W_MAGIC] == ERASED)
        return COPY_EMPTY;
    if (c[W_MAGIC] != MAGIC || c[W_CHECK] != check_of(c[W_SEQ], c[W_COUNTER]))
        return COPY_BAD;
    return COPY_VALID;
}

/* OUT: *counter, *seq and *current (the copy holding them, or -1 for none). */
static rp_err_t read_store(uint32_t *counter, uint32_t *seq, int *current)
{
    copy_state_t s0 = copy_state(0), s1 = copy_state(1);

    *counter = 0;
    *seq = 0;
    *current = -1;
    if (s0 == COPY_BAD || s1 == COPY_BAD)
        return RP_ERR_MALFORMED;
    for (unsigned n = 0; n < 2; n++) {
        if ((n == 0 ? s0 : s1) == COPY_VALID && (*current < 0 || COPY(n)[W_SEQ] > *seq)) {
            *current = (int)n;
            *seq = COPY(n)[W_SEQ];
            *counter = COPY(n)[W_COUNTER];
        }
    }
    return RP_OK;
}

rp_err_t rp_secstore_counter(uint32_t *counter)
{
    uint32_t seq;
    int current;

    return read_store(counter, &seq, &current);
}

rp_err_t rp_secstore_advance(uint32_t counter)
{
    uint32_t now, seq;
    int current;
    rp_err_t err = read_store(&now, &seq, &current);
    uint32_t off;

    if (err != RP_OK)
        return err;
    if (current >= 0 && counter <= now)
        return RP_OK;
    off = RP_MCU_SECSTORE_OFF + (current == 0 ? 1u : 0u) * (RP_MCU_SECSTORE_SIZE / 2);
    rp_flash_erase(off, W_COUNT * 4); /* the magic first, so a cut here leaves an ignored copy */
    rp_flash_word(off + 4 * W_SEQ, seq + 1);
    rp_flash_word(off + 4 * W_COUNTER, counter);
    rp_flash_word(off + 4 * W_CHECK, check_of(seq + 1, counter));
    rp_flash_word(off + 4 * W_MAGIC, MAGIC); /* the commit */
    err = read_store(&now, &seq, &current);
    return err == RP_OK && now == counter ? RP_OK : RP_ERR_IO;
}
