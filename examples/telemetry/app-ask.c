/*
 * app-ask: ask another app a question over an app-to-app channel (part of the telemetry sample
 * app). The channel to the monitor is the app's (RAMPART_MONITOR_FD, inherited from the app's
 * entry point); the monitor opens a socket to PEER only when both manifests list each other.
 *
 *   app-ask PEER TEXT    send TEXT to PEER, print its answer
 *
 * Exit: 0 answered; 2 refused by the monitor (its reason is printed); 3 PEER does not run; 1
 * anything else.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app_client.h"

static rp_app_client_t client;

int main(int argc, char **argv)
{
    char answer[256];
    ssize_t n;
    int fd, rc = 1;
    rp_err_t err;

    if (argc != 3) {
        fprintf(stderr, "usage: app-ask PEER TEXT\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (rp_app_client_open(&client) != RP_OK) {
        fprintf(stderr, "app-ask: no channel to the monitor (%s is not set)\n", RP_APP_CLIENT_ENV);
        return 1;
    }
    err = rp_app_connect(&client, argv[1], &fd);
    if (err != RP_OK) {
        fprintf(stderr, "app-ask: %s: %s (%s)\n", argv[1], client.message, rp_strerror(err));
        rp_app_client_close(&client);
        return err == RP_ERR_NOT_FOUND ? 3 : err == RP_ERR_DENIED ? 2 : 1;
    }
    if (write(fd, argv[2], strlen(argv[2])) == (ssize_t)strlen(argv[2]) &&
        shutdown(fd, SHUT_WR) == 0 && (n = read(fd, answer, sizeof(answer) - 1)) > 0) {
        answer[n] = '\0';
        printf("%s\n", answer);
        rc = 0;
    } else {
        fprintf(stderr, "app-ask: %s did not answer\n", argv[1]);
    }
    close(fd);
    rp_app_client_close(&client);
    return rc;
}
