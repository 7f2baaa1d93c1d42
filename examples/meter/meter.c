/*
 * meter: a sample Rampart app with a bug (`make demo`, failure reporting). It parses a meter
 * reading; version 1.0.0 forgets that its source may have nothing to say and writes through a
 * null pointer in parse_reading(): a SIGSEGV. The monitor captures the crash, the agent unwinds
 * it and reports it, and the service puts it in a bucket that names parse_reading() and its line
 * once the operator uploads the build's debug file.
 *
 *   meter
 *
 * It says "ready" (the app contract) first, then crashes a second later, in one run only: its
 * storage (/data/crashed) remembers, so that the demo sees exactly one crash; after that it
 * idles. The demo builds it with -g, keeps the debug file and ships the program stripped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CRASHED "/data/crashed"

struct reading {
    int watts;
};

/* The app contract: "ready" on RAMPART_READY_FD, when there is one. */
static void say_ready(void)
{
    const char *fd = getenv("RAMPART_READY_FD");

    if (fd != NULL && write(atoi(fd), "ready", 5) != 5)
        fprintf(stderr, "meter: cannot say ready: %s\n", strerror(errno));
}

/* The source of readings: nothing yet, which the bug below forgets. */
__attribute__((noinline)) static struct reading *next_reading(void)
{
    return NULL;
}

/* The bug: out is not checked. */
__attribute__((noinline)) void parse_reading(struct reading *out, const char *text)
{
    out->watts = atoi(text); /* meter: the demo's crash */
}

int main(void)
{
    FILE *mark;

    setvbuf(stdout, NULL, _IOLBF, 0);
    say_ready();
    if (access(CRASHED, F_OK) == 0) {
        printf("meter: crashed once already (%s): idling\n", CRASHED);
        for (;;)
            pause();
    }
    /* A second: an install's trial ends on "ready", so the crash is the installed version's. */
    sleep(1);
    mark = fopen(CRASHED, "w");
    if (mark == NULL || fclose(mark) != 0)
        return 4;
    sync();
    printf("meter: parsing the first reading\n");
    parse_reading(next_reading(), "1200");
    return 0;
}
