/*
 * swtpm for tests; see swtpm.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "swtpm.h"

/* Whether port is free to bind on loopback now (a connection lingering in TIME_WAIT on it is not:
 * swtpm, which does not set SO_REUSEADDR, could not bind it). */
static int bindable(int port)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A port that was free a moment ago (the kernel picks it), and so was the next one: swtpm takes
 * both. After a benchmark, thousands of ports linger in TIME_WAIT, so the next is often not. */
static int free_port(void)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        struct sockaddr_in a = {0};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &len) == 0)
            port = ntohs(a.sin_port);
        if (fd >= 0)
            close(fd);
        if (port <= 0)
            return -1;
        if (port < 65535 && bindable(port + 1))
            return port;
    }
    return -1;
}

/* Whether a socket listens on loopback port: read from the kernel's table, not by connecting
 * (swtpm serves one client at a time; a probe would be one). */
static int listening(int port)
{
    char line[256], want[32];
    FILE *f = fopen("/proc/net/tcp", "r");
    int found = 0;

    if (f == NULL)
        return 0;
    /* "sl local_address rem_address st ...": 127.0.0.1 is 0100007F, LISTEN is state 0A. */
    snprintf(want, sizeof(want), "0100007F:%04X 00000000:0000 0A", port);
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, want) != NULL;
    fclose(f);
    return found;
}

int tu_swtpm_start(tu_swtpm_t *t)
{
    char state[128], server[128], ctrl[128];

    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/rampart-swtpm-XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        t->port = free_port();
        if (t->port <= 0)
            return -1;
        snprintf(state, sizeof(state), "dir=%s", t->dir);
        /* The swtpm TCTI reaches the control channel at the next port. */
        snprintf(server, sizeof(server), "type=tcp,port=%d,bindaddr=127.0.0.1", t->port);
        snprintf(ctrl, sizeof(ctrl), "type=tcp,port=%d,bindaddr=127.0.0.1", t->port + 1);
        t->pid = fork();
        if (t->pid < 0)
            return -1;
        if (t->pid == 0) {
            execlp("swtpm", "swtpm", "socket", "--tpm2", "--tpmstate", state, "--server", server,
                   "--ctrl", ctrl, "--flags", "not-need-init,startup-clear", (char *)NULL);
            _exit(127);
        }
        /* Until both its ports listen; the bound (60 s) is for a loaded machine. */
        for (int i = 0; i < 6000; i++) {
            int status;
            if (waitpid(t->pid, &status, WNOHANG) == t->pid)
                break; /* it died: port taken? try another */
            if (listening(t->port) && listening(t->port + 1)) {
                snprintf(t->tcti, sizeof(t->tcti), "swtpm:host=127.0.0.1,port=%d", t->port);
                return 0;
            }
            usleep(10000);
        }
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
    }
    return -1;
}

void tu_swtpm_stop(tu_swtpm_t *t)
{
    char cmd[128];

    if (t->pid > 0) {
        kill(t->pid, SIGTERM);
        waitpid(t->pid, NULL, 0);
        t->pid = 0;
    }
    if (t->dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", t->dir);
    }
}
