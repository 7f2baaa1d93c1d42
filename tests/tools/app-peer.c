/*
 * app-peer: a test app (not a product) for app-to-app channels, run in a compartment by
 * compartment-run --channel (tests/e2e/app-identity.sh). It uses the app client library over its
 * channel to the monitor (RAMPART_MONITOR_FD), as any app would.
 *
 *   app-peer call PEER TEXT    open a socket to PEER, send TEXT, print "answer: " and the reply
 *                              (exit 0); "refused: WHY" and exit 2 when the monitor refuses
 *   app-peer answer MS         wait up to MS for one socket from another app, read its text and
 *                              answer "got TEXT from CALLER" (exit 0); exit 3 when none came
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app_client.h"

static rp_app_client_t client;

static int call(const char *peer, const char *text)
{
    char reply[256];
    ssize_t n;
    int fd;
    rp_err_t err = rp_app_connect(&client, peer, &fd);

    if (err != RP_OK) {
        printf("refused: %s (%s)\n", client.message, rp_strerror(err));
        return 2;
    }
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
        (n = read(fd, reply, sizeof(reply) - 1)) <= 0) {
        printf("the socket to %s broke\n", peer);
        close(fd);
        return 1;
    }
    reply[n] = '\0';
    printf("answer: %s\n", reply);
    close(fd);
    return 0;
}

static int answer(int ms)
{
    char who[RP_COMPONENT_NAME_MAX + 1], text[128], reply[256];
    ssize_t n;
    int fd, len;
    rp_err_t err = rp_app_accept(&client, ms, who, &fd);

    if (err != RP_OK) {
        printf("no caller: %s\n", rp_strerror(err));
        return 3;
    }
    n = read(fd, text, sizeof(text) - 1);
    if (n <= 0) {
        close(fd);
        return 1;
    }
    text[n] = '\0';
    len = snprintf(reply, sizeof(reply), "got %s from %s", text, who);
    printf("%s\n", reply);
    n = write(fd, reply, (size_t)len);
    close(fd);
    return n == len ? 0 : 1;
}

int main(int argc, char **argv)
{
    int rc = 64;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (rp_app_client_open(&client) != RP_OK) {
        printf("no channel to the monitor\n");
        return 1;
    }
    if (argc == 4 && strcmp(argv[1], "call") == 0)
        rc = call(argv[2], argv[3]);
    else if (argc == 3 && strcmp(argv[1], "answer") == 0)
        rc = answer(atoi(argv[2]));
    else
        fprintf(stderr, "usage: app-peer call PEER TEXT | answer MS\n");
    rp_app_client_close(&client);
    return rc;
}
