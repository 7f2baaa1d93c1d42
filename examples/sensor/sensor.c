/*
 * sensor: a sample Rampart app that answers other apps (app B of `make demo`). It reads a
 * temperature (made up: a demo has no sensor) and answers every app that opens an app-to-app
 * channel to it with "temperature 21.5 C (reading N)". Which apps may: the ones both manifests
 * list (its app_manifest.json lists telemetry); the monitor refuses every other, and the refusal
 * is a security event.
 *
 *   sensor
 *
 * It says "ready" (the app contract) at once, then serves until it is stopped. Without a channel
 * to the monitor (RAMPART_MONITOR_FD) it says so and idles: nothing can reach it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app_client.h"

static rp_app_client_t client;

/* The app contract: "ready" on RAMPART_READY_FD, when there is one. */
static void say_ready(void)
{
    const char *fd = getenv("RAMPART_READY_FD");

    if (fd != NULL && write(atoi(fd), "ready", 5) != 5)
        fprintf(stderr, "sensor: cannot say ready: %s\n", strerror(errno));
}

int main(void)
{
    unsigned long readings = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (rp_app_client_open(&client) != RP_OK) {
        printf("sensor: no channel to the monitor (%s is not set): no app can reach me\n",
               RP_APP_CLIENT_ENV);
        say_ready();
        for (;;)
            pause();
    }
    say_ready();
    printf("sensor: ready for other apps\n");
    for (;;) {
        char who[RP_COMPONENT_NAME_MAX + 1], ask[128], answer[128];
        ssize_t n;
        int fd, len;
        rp_err_t err = rp_app_accept(&client, -1, who, &fd);

        if (err == RP_ERR_IO) {
            printf("sensor: the monitor closed my channel\n");
            break;
        }
        if (err != RP_OK)
            continue;
        n = read(fd, ask, sizeof(ask) - 1);
        if (n > 0) {
            ask[n] = '\0';
            readings++;
            len = snprintf(answer, sizeof(answer), "temperature 21.5 C (reading %lu)", readings);
            printf("sensor: %s asked \"%s\": %s\n", who, ask, answer);
            if (write(fd, answer, (size_t)len) != len)
                printf("sensor: %s left before the answer\n", who);
        }
        close(fd);
    }
    rp_app_client_close(&client);
    return 1;
}
