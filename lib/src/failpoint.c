/* Failpoints for power-loss tests (see failpoint.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rampart/failpoint.h"

static int state = -1; /* -1: not read yet; 0: off; 1: on */
static unsigned long target, reached;
static const char *trace, *from;

void rp_failpoint(const char *name)
{
    if (state < 0) {
        const char *n = getenv("RAMPART_FAILPOINT");
        trace = getenv("RAMPART_FAILPOINT_TRACE");
        from = getenv("RAMPART_FAILPOINT_FROM");
        target = n != NULL ? strtoul(n, NULL, 10) : 0;
        state = target > 0 || trace != NULL;
    }
    if (state == 0)
        return;
    if (from != NULL && strncmp(name, from, strlen(from)) != 0)
        return; /* not counted until the first failpoint named so */
    from = NULL;
    reached++;
    if (trace != NULL) {
        FILE *f = fopen(trace, "a");
        if (f != NULL) {
            fprintf(f, "%lu %s\n", reached, name);
            fclose(f);
        }
    }
    if (reached == target)
        _exit(RP_FAILPOINT_EXIT);
}
