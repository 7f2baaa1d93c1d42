/* The two C library functions Mbed TLS's platform layer asks for, on a board without them. */
#include <stddef.h>

#include "rp_mbedtls_config.h"
#include "semihost.h"

int rp_mbedtls_snprintf(char *s, size_t n, const char *fmt, ...)
{
    (void)fmt;
    if (n > 0)
        s[0] = 0;
    return -1;
}

void rp_mbedtls_exit(int status)
{
    rp_sh_out("boot: refused: Mbed TLS stopped the board (memory pool corrupt)\n");
    rp_sh_exit(status == 0 ? 1 : status);
}
