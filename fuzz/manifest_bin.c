/*
 * Fuzz target: a manifest's binary form (rp_manifest_decode), as the monitor's app supervisor
 * takes it from rampart-unpack and from the file it keeps beside an app's tree. Random bytes
 * never make the form's exact length, so an input is also read as edits of a valid form: pairs
 * of (u16 offset, byte) written over the full manifest's. Whatever is accepted must keep every
 * rule the JSON parser keeps: its JSON (rp_manifest_to_json) must parse, to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rampart/manifest.h"

static const char full[] =
    "{\"SchemaVersion\": 1, \"Name\": \"Sensor app\", \"ComponentId\": \"sensor\","
    " \"EntryPoint\": \"bin/sensor\", \"Cmdline\": [\"--verbose\"],"
    " \"AllowedConnections\": [\"broker.example.com:8883\", \"10.0.0.7\", \"[fd00::1]:443\"],"
    " \"AllowedTcpServerPorts\": [8080], \"AllowedUdpServerPorts\": [5683],"
    " \"Devices\": [\"/dev/ttyS1\"], \"MutableStorage\": {\"SizeKB\": 1024},"
    " \"AllowedApplicationConnections\": [\"logger\"], \"DeviceAuthentication\": true}";

static void check_accepted(const rp_manifest_t *m)
{
    static rp_manifest_t again;
    char why[512], *text;
    json_t *j = rp_manifest_to_json(m);

    text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text == NULL || rp_manifest_parse(text, strlen(text), &again, why, sizeof(why)) != RP_OK ||
        strcmp(again.name, m->name) != 0 || strcmp(again.entry_point, m->entry_point) != 0 ||
        again.nconnections != m->nconnections || again.ndevices != m->ndevices ||
        again.napp_connections != m->napp_connections || again.memory_kb != m->memory_kb)
        abort();
    for (size_t i = 0; i < m->nconnections; i++)
        if (strcmp(again.connections[i].host, m->connections[i].host) != 0)
            abort();
    free(text);
    json_decref(j);
}

static void one(const uint8_t *bin, size_t len)
{
    static rp_manifest_t m;
    char why[512] = "";

    if (rp_manifest_decode(bin, len, &m, why, sizeof(why)) == RP_OK)
        check_accepted(&m);
    else if (why[0] == '\0')
        abort(); /* every refusal says why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t base[RP_MANIFEST_BIN_LEN], edited[RP_MANIFEST_BIN_LEN];
    static bool ready;

    if (!ready) {
        static rp_manifest_t m;
        char why[512];
        if (rp_manifest_parse(full, strlen(full), &m, why, sizeof(why)) != RP_OK)
            abort();
        rp_manifest_encode(&m, base);
        ready = true;
    }
    one(data, size);
    memcpy(edited, base, sizeof(edited));
    for (size_t i = 0; i + 3 <= size; i += 3)
        edited[((size_t)data[i] << 8 | data[i + 1]) % sizeof(edited)] = data[i + 2];
    one(edited, sizeof(edited));
    return 0;
}
