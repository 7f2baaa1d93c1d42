/*
 * app-peer: a test app (not a product) for app-to-app channels, run in a compartment by
 * compartment-run --channel (tests/e2e/app-identity.sh). It uses the app client library over its
 * channel to the monitor (RAMPART_MONITOR_FD), as any app would.
 *
 *   app-peer call PEER TEXT    open a socket to PEER, send TEXT, print "answer: " and the reply
 *                              (exit 0); "refused: WHY" and exit 2 when the monitor refuses
 *   app-peer answer MS         wait up to MS for one socket from another app, read its text and
 *                              answer "got TEXT from CALLER" (exit 0); exit 3 when none came
 *   app-peer flood PEER N      a hostile app (review r4): N requests for a socket to PEER, each
 *                              read by the monitor's side before the next is sent, no reply read;
 *                              "flood: N read" (exit 0), or "flood: I read, then no more" when
 *                              one is not read within 5 s (exit 1)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

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

/* Whether everything sent on fd was read by the other end within 5 s (SIOCOUTQ). */
static bool read_by_peer(int fd)
{
    struct timespec ms = {0, 1000 * 1000};
    int queued = -1;

    for (int i = 0; i < 5000; i++) {
        if (ioctl(fd, SIOCOUTQ, &queued) != 0)
            return false;
        if (queued == 0)
            return true;
        nanosleep(&ms, NULL);
    }
    return false;
}

static int flood(const char *peer, int n)
{
    size_t len;

    for (int i = 0; i < n; i++) {
        memset(&client.q, 0, sizeof(client.q));
        client.q.type = RP_MON_APP_CONNECT;
        client.q.id = (uint32_t)(1000 + i);
        snprintf(client.q.u.app_connect.component, sizeof(client.q.u.app_connect.component), "%s",
                 peer);
        if (rp_mon_request_encode(&client.q, client.buf, sizeof(client.buf), &len) != RP_OK ||
            send(client.fd, client.buf, len, MSG_NOSIGNAL) != (ssize_t)len ||
            !read_by_peer(client.fd)) {
            printf("flood: %d read, then no more\n", i);
            return 1;
        }
    }
    printf("flood: %d read\n", n);
    return 0;
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
    else if (argc == 4 && strcmp(argv[1], "flood") == 0)
        rc = flood(argv[2], atoi(argv[3]));
    else
        fprintf(stderr, "usage: app-peer call PEER TEXT | answer MS | flood PEER N\n");
    rp_app_client_close(&client);
    return rc;
}
