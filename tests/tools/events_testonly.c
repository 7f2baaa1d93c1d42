/*
 * TEST-ONLY stand-in for device/monitor/events.c (helper C's, not merged yet): the netpolicy tests
 * link this instead, so they can see which events the policy records. It appends one line per
 * event, "KIND<TAB>APP<TAB>REASON", to STATE_DIR/events.testonly. Never linked into a product;
 * delete it (and point the tests at the real log) once events.c lands.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "events.h"

const char *rp_event_kind_name(rp_event_kind_t kind)
{
    switch (kind) {
    case RP_EVENT_CONNECTION: return "connection";
    case RP_EVENT_LISTEN: return "listen";
    default: return "other";
    }
}

rp_err_t rp_event_record(const char *state_dir, rp_event_kind_t kind, const char *app,
                         const char *reason)
{
    char path[4096], line[512];
    if ((size_t)snprintf(path, sizeof(path), "%s/events.testonly", state_dir) >= sizeof(path))
        return RP_ERR_TOO_LARGE;
    int n = snprintf(line, sizeof(line), "%s\t%s\t%s\n", rp_event_kind_name(kind), app, reason);
    if (n < 0 || (size_t)n >= sizeof(line))
        return RP_ERR_TOO_LARGE;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return RP_ERR_IO;
    ssize_t w = write(fd, line, (size_t)n);
    close(fd);
    return w == n ? RP_OK : RP_ERR_IO;
}
