/*
 * The device group's settings on the device (settings.h): parsed from the service's answer, kept
 * in S/agent/settings.json, told to the monitor.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/file.h"
#include "rampart/log.h"
#include "settings.h"

#define SETTINGS_FILE "settings.json"
#define SETTINGS_FILE_MAX 4096

rp_err_t rp_settings_parse(const json_t *o, rp_settings_t *out)
{
    const json_t *v = json_object_get(o, "crash_capture");

    if (!json_is_object(o) || !json_is_boolean(v))
        return RP_ERR_MALFORMED;
    out->crash_capture = json_is_true(v);
    return RP_OK;
}

rp_settings_t rp_settings_load(const rp_agent_t *a)
{
    rp_settings_t s = RP_SETTINGS_DEFAULT;
    char path[PATH_MAX + 64];
    uint8_t *data = NULL;
    size_t len;
    json_t *j;
    rp_err_t err;

    if (rp_agent_file(a, SETTINGS_FILE, path, sizeof(path)) != RP_OK)
        return s;
    err = rp_read_file(path, SETTINGS_FILE_MAX, &data, &len);
    if (err == RP_ERR_NOT_FOUND)
        return s;
    j = err == RP_OK ? json_loadb((const char *)data, len, 0, NULL) : NULL;
    free(data);
    if (rp_settings_parse(j, &s) != RP_OK) {
        rp_log_warn("%s is unreadable or corrupt: crash capture is off until the service says "
                    "again",
                    path);
        s.crash_capture = false;
    }
    json_decref(j);
    return s;
}

static rp_err_t keep(const rp_agent_t *a, const rp_settings_t *s)
{
    return rp_agent_json_keep(a, SETTINGS_FILE,
                              json_pack("{s:b}", "crash_capture", s->crash_capture));
}

rp_err_t rp_settings_learn(const rp_agent_t *a, const json_t *o)
{
    rp_settings_t now, was = rp_settings_load(a);
    rp_mon_request_t q = {.type = RP_MON_SETTINGS};
    static rp_mon_reply_t r;
    rp_err_t err;

    if (rp_settings_parse(o, &now) != RP_OK)
        return RP_ERR_MALFORMED;
    if (now.crash_capture != was.crash_capture) {
        if ((err = keep(a, &now)) != RP_OK)
            return err;
        rp_log_info("crash capture is now %s for this device (its group's setting)",
                    now.crash_capture ? "on" : "off");
    }
    if (a->monitor[0] == '\0')
        return RP_OK;
    q.u.settings.crash_capture = now.crash_capture ? 1 : 0;
    err = rp_agent_monitor_call(a, &q, -1, &r);
    if (err == RP_OK && r.u.settings.crash_capture != q.u.settings.crash_capture)
        err = RP_ERR_IO; /* the monitor could not keep it: said at the next report again */
    return err;
}
