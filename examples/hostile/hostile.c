/*
 * hostile: a sample of what a compromised app would try (`make demo`). Its manifest grants it one
 * host (the demo's broker) and asks for a channel to the sensor app, which does not list it. It
 * tries a handful of escapes, prints each outcome, and then idles: each must be refused, and the
 * device's security events (`rampart-agent events`) list the ones the kernel or the monitor sees.
 * tests/e2e/escape.sh is the full suite; these are the demo's.
 *
 *   hostile OTHER_HOST PORT PEER
 *
 * It tries once: /data/tried (its storage, kept across runs) remembers, so an install's trial
 * and the run that follows do not list each attempt twice. Exit: only if an escape succeeded (1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app_client.h"

#define TRIED "/data/tried"

static int escaped;

static void outcome(const char *what, long rc, const char *why)
{
    if (rc >= 0) {
        printf("hostile: %-44s ESCAPED\n", what);
        escaped = 1;
    } else {
        printf("hostile: %-44s refused: %s\n", what, why != NULL ? why : strerror(errno));
    }
}

static long connect_to(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    long rc;

    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return rc;
}

static void say_ready(void)
{
    const char *fd = getenv("RAMPART_READY_FD");

    if (fd != NULL && write(atoi(fd), "ready", 5) != 5)
        fprintf(stderr, "hostile: cannot say ready: %s\n", strerror(errno));
}

int main(int argc, char **argv)
{
    static rp_app_client_t client;
    char what[128];
    static char pem[8193];
    size_t len;
    int fd;
    rp_err_t err;

    if (argc != 4) {
        fprintf(stderr, "usage: hostile OTHER_HOST PORT PEER\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (access(TRIED, F_OK) == 0) {
        printf("hostile: tried everything already (%s)\n", TRIED);
        goto idle;
    }
    snprintf(what, sizeof(what), "reach another host, %s:%s", argv[1], argv[2]);
    outcome(what, connect_to(argv[1], atoi(argv[2])), NULL);
    outcome("read the device's memory, /dev/mem", open("/dev/mem", O_RDONLY | O_CLOEXEC), NULL);
    outcome("trace its init, ptrace(PTRACE_ATTACH, 1)", ptrace(PTRACE_ATTACH, 1, 0, 0), NULL);
    outcome("mount a file system", mount("none", "/tmp", "tmpfs", 0, NULL), NULL);
    if (rp_app_client_open(&client) == RP_OK) {
        snprintf(what, sizeof(what), "talk to the %s app", argv[3]);
        err = rp_app_connect(&client, argv[3], &fd);
        if (err == RP_OK)
            close(fd);
        outcome(what, err == RP_OK ? 0 : -1, client.message);
        err = rp_app_identity(&client, pem, sizeof(pem), &len);
        outcome("use the device identity", err == RP_OK ? 0 : -1, client.message);
        rp_app_client_close(&client);
    } else {
        printf("hostile: no channel to the monitor (%s is not set): nothing to ask it\n",
               RP_APP_CLIENT_ENV);
    }
    fd = open(TRIED, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
idle:
    say_ready();
    if (escaped)
        return 1;
    for (;;)
        pause();
}
