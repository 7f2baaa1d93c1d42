/*
 * meter: a sample Rampart app with a bug (`make demo`, failure reporting). It parses a meter
 * reading; version 1.0.0 forgets that its source may have nothing to say and writes through a
 * null pointer in parse_reading(): a SIGSEGV. The monitor captures the crash, the agent unwinds
 * it and reports it, and the service puts it in a bucket that names parse_reading() and its line
 * once the operator uploads the build's debug file.
 *
 *   meter
 *
 * It says "ready" (the app contract) first, then crashes a second later, in one run only: the
 * installed version's first, its second start (the first is its install's trial, which the
 * monitor stops once it hears "ready"; both share its storage, where /data/starts counts them).
 * Any other start idles, so that the demo sees exactly one crash, whatever the machine's load.
 * The demo builds it with -g, keeps the debug file and ships the program stripped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STARTS "/data/starts"

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

/* This start's number, counted in the app's storage before it says "ready" (so that a trial,
 * stopped once ready, is always counted); 0 when the storage cannot say. */
static long count_start(void)
{
    long n = 0;
    FILE *f = fopen(STARTS, "r");

    if (f != NULL) {
        if (fscanf(f, "%ld", &n) != 1)
            n = 0;
        fclose(f);
    }
    f = fopen(STARTS, "w");
    if (f == NULL)
        return 0;
    if (fprintf(f, "%ld\n", n + 1) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return 0;
    }
    return fclose(f) == 0 ? n + 1 : 0;
}

int main(void)
{
    long start;

    setvbuf(stdout, NULL, _IOLBF, 0);
    start = count_start();
    say_ready();
    if (start != 2) {
        printf("meter: start %ld, not the installed version's first run: idling\n", start);
        for (;;)
            pause();
    }
    sleep(1);
    printf("meter: parsing the first reading\n");
    parse_reading(next_reading(), "1200");
    return 0;
}
