/* The secure stack's high-water mark (rp_mcu_handoff.h): the boot stage's and the attestation
 * service's report, from the paint the boot stage's reset leaves. */
#include <string.h>

#include "rp_mcu_handoff.h"
#include "semihost.h"

void rp_stack_report(const uint32_t *low, const uint32_t *top, const char *after)
{
    const volatile uint32_t *p = low;
    char line[96];

    line[0] = 0;
    strcat(line, "boot: stack high-water ");
    while (p < top && *p == RP_STACK_PAINT)
        p++;
    rp_sh_u32(line, (uint32_t)((uintptr_t)top - (uintptr_t)p));
    strcat(line, " of ");
    rp_sh_u32(line, (uint32_t)((uintptr_t)top - (uintptr_t)low));
    strcat(line, " bytes");
    strcat(line, after);
    rp_sh_out(line);
}
