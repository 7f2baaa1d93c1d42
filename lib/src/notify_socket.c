/* The service manager's notifications as a few lines of socket code (rampart/notify.h): the
 * privileged monitor's, which must stay small. The socket is made at the first message and kept,
 * so that once the monitor's seccomp filter is on only sendto is needed. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rampart/notify.h"

int rp_notify_send(const char *state)
{
    static int fd = -1;
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = path != NULL ? strlen(path) : 0;

    if (n == 0)
        return 0;
    if (n >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
        return -1;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* the abstract namespace */
    if (fd < 0)
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
        return -1;
    return 1;
}

uint64_t rp_notify_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    char *end;
    unsigned long long v;

    if (usec == NULL || (pid != NULL && strtol(pid, NULL, 10) != (long)getpid()))
        return 0;
    v = strtoull(usec, &end, 10);
    return end != usec && *end == '\0' ? (uint64_t)v : 0;
}
