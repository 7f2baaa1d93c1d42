/*
 * Fuzz target: an app's manifest (rp_manifest_parse), as the CLI, the service's upload check and
 * the device's monitor read it from an app image. Whatever is accepted must hold every bound the
 * struct promises, and must come back unchanged through rp_manifest_to_json().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rampart/manifest.h"

static void check_accepted(const rp_manifest_t *m)
{
    rp_manifest_t again;
    char why[512], *text;
    json_t *j;

    if (!rp_component_name_valid(m->component_id, strlen(m->component_id)) ||
        !rp_manifest_path_clean(m->entry_point, strlen(m->entry_point)) ||
        m->nargs > RP_MANIFEST_ARGS_MAX || m->nconnections > RP_MANIFEST_CONNECTIONS_MAX ||
        m->ntcp_ports > RP_MANIFEST_PORTS_MAX || m->nudp_ports > RP_MANIFEST_PORTS_MAX ||
        m->ndevices > RP_MANIFEST_DEVICES_MAX ||
        m->napp_connections > RP_MANIFEST_APP_CONNECTIONS_MAX ||
        m->storage_kb > RP_MANIFEST_STORAGE_KB_MAX || m->memory_kb < RP_MANIFEST_MEMORY_KB_MIN ||
        m->memory_kb > RP_MANIFEST_MEMORY_KB_MAX || m->pids == 0 ||
        m->pids > RP_MANIFEST_PIDS_MAX || m->cpu_percent == 0 || m->cpu_percent > 100 ||
        m->watchdog_seconds > RP_MANIFEST_WATCHDOG_SECONDS_MAX || m->legacy)
        abort();
    for (size_t i = 0; i < m->ndevices; i++)
        if (strncmp(m->devices[i], "/dev/", 5) != 0 || strstr(m->devices[i], "..") != NULL)
            abort();
    for (size_t i = 0; i < m->ntcp_ports; i++)
        if (m->tcp_ports[i] == 0)
            abort();
    for (size_t i = 0; i < m->nconnections; i++)
        if (strchr(m->connections[i].host, '*') != NULL || m->connections[i].host[0] == '\0')
            abort();
    j = rp_manifest_to_json(m);
    text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text == NULL || rp_manifest_parse(text, strlen(text), &again, why, sizeof(why)) != RP_OK ||
        memcmp(m, &again, sizeof(again)) != 0)
        abort();
    free(text);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rp_manifest_t m;
    char why[512];

    if (rp_manifest_parse((const char *)data, size, &m, why, sizeof(why)) == RP_OK)
        check_accepted(&m);
    else if (why[0] == '\0')
        abort(); /* every refusal says why */
    return 0;
}
