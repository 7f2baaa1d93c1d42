/* Memory initialisation at reset, from the symbols the linker scripts define. */
#include <stdint.h>
#include <string.h>

#include "startup.h"

extern uint32_t __data_start[], __data_end[], __data_load[], __bss_start[], __bss_end[];

void rp_startup_init_memory(void)
{
    memcpy(__data_start, __data_load, (size_t)((char *)__data_end - (char *)__data_start));
    memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
}
