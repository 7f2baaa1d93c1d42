/*
 * An app's manifest: app_manifest.json at the root of an app image's tree, saying what the app is
 * and every capability it has. Deny by default: what the manifest does not list, the app cannot
 * do; a key this parser does not know is refused, not ignored (a misspelt capability must never
 * silently become "no limit"). The one owner of the manifest's fields, limits and defaults: the
 * CLI (`rampart app check`, `rampart image sign --type app`), the service (uploads) and the
 * device's monitor (compartments) all call it. docs/compartments.md documents every key.
 *
 *   {
 *     "SchemaVersion": 1,
 *     "Name": "sensor",                    display name (1..64 printable characters)
 *     "ComponentId": "sensor",             the component it deploys as (rp_component_name_valid)
 *     "EntryPoint": "bin/sensor",          relative path inside the tree (no "..", no leading /)
 *     "Cmdline": ["--verbose"],            its arguments after argv[0]
 *     "AllowedConnections": ["broker.example.com:8883", "10.0.0.7", "[fd00::1]:443"],
 *     "AllowedTcpServerPorts": [8080],
 *     "AllowedUdpServerPorts": [5683],
 *     "Devices": ["/dev/ttyS1"],           device nodes; one app owns each
 *     "MutableStorage": {"SizeKB": 1024},  persistent writable storage, at most this much
 *     "Memory": {"LimitKB": 65536},        default RP_MANIFEST_MEMORY_KB_DEFAULT
 *     "Pids": {"Max": 32},                 default RP_MANIFEST_PIDS_DEFAULT
 *     "CpuPercent": 50,                    of one CPU; default 100
 *     "AllowedApplicationConnections": ["logger"],  other apps' ComponentIds
 *     "DeviceAuthentication": true,        may use the device identity (through the monitor)
 *     "WatchdogSeconds": 30                must say it is alive this often once ready; default none
 *   }
 *
 * Only SchemaVersion, Name, ComponentId and EntryPoint are required.
 */
#ifndef RAMPART_MANIFEST_H
#define RAMPART_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/component.h"
#include "rampart/error.h"

#define RP_MANIFEST_FILE "app_manifest.json"
#define RP_MANIFEST_MAX_BYTES (64 * 1024) /* the file; larger is refused before parsing */
#define RP_MANIFEST_SCHEMA 1

#define RP_MANIFEST_NAME_MAX 64
#define RP_MANIFEST_PATH_MAX 255 /* EntryPoint, a device path */
#define RP_MANIFEST_ARGS_MAX 16
#define RP_MANIFEST_ARG_MAX 255
#define RP_MANIFEST_HOST_MAX 253 /* a DNS name's longest text form */
#define RP_MANIFEST_CONNECTIONS_MAX 32
#define RP_MANIFEST_PORTS_MAX 16
#define RP_MANIFEST_DEVICES_MAX 8
#define RP_MANIFEST_APP_CONNECTIONS_MAX 8

#define RP_MANIFEST_STORAGE_KB_MAX (1024u * 1024) /* 1 GiB */
#define RP_MANIFEST_MEMORY_KB_MIN 1024u
#define RP_MANIFEST_MEMORY_KB_MAX (4u * 1024 * 1024)
#define RP_MANIFEST_MEMORY_KB_DEFAULT (64u * 1024)
#define RP_MANIFEST_PIDS_MAX 4096u
#define RP_MANIFEST_PIDS_DEFAULT 32u
#define RP_MANIFEST_CPU_PERCENT_DEFAULT 100u /* 1..100, of one CPU */
#define RP_MANIFEST_WATCHDOG_SECONDS_MAX 3600u

/* One entry of AllowedConnections. */
typedef struct rp_manifest_host {
    char host[RP_MANIFEST_HOST_MAX + 1]; /* a DNS name (lower case) or an IP address's text form */
    bool is_ip;                          /* host is an address literal (v4 or v6) */
    uint16_t port;                       /* 0: every port */
} rp_manifest_host_t;

typedef struct rp_manifest {
    bool legacy; /* made by rp_manifest_legacy(): an image with no manifest, no capabilities */
    char name[RP_MANIFEST_NAME_MAX + 1];
    char component_id[RP_COMPONENT_NAME_MAX + 1];
    char entry_point[RP_MANIFEST_PATH_MAX + 1];
    char args[RP_MANIFEST_ARGS_MAX][RP_MANIFEST_ARG_MAX + 1];
    size_t nargs;
    rp_manifest_host_t connections[RP_MANIFEST_CONNECTIONS_MAX];
    size_t nconnections;
    uint16_t tcp_ports[RP_MANIFEST_PORTS_MAX];
    size_t ntcp_ports;
    uint16_t udp_ports[RP_MANIFEST_PORTS_MAX];
    size_t nudp_ports;
    char devices[RP_MANIFEST_DEVICES_MAX][RP_MANIFEST_PATH_MAX + 1];
    size_t ndevices;
    uint32_t storage_kb; /* 0: no mutable storage */
    uint32_t memory_kb;
    uint32_t pids;
    uint32_t cpu_percent;
    char app_connections[RP_MANIFEST_APP_CONNECTIONS_MAX][RP_COMPONENT_NAME_MAX + 1];
    size_t napp_connections;
    bool device_authentication;
    uint32_t watchdog_seconds; /* 0: no watchdog */
} rp_manifest_t;

/*
 * Parse and validate a manifest (at most RP_MANIFEST_MAX_BYTES). On any refusal, why says which
 * key and what is wrong with it, in words an app's author can act on ("Memory.LimitKB: 9000000 is
 * over the limit of 4194304"). OUT: *m, filled with the defaults for what is absent.
 */
rp_err_t rp_manifest_parse(const char *json, size_t len, rp_manifest_t *m, char *why,
                           size_t cap) RP_MUST_CHECK;

/* Read and parse a manifest file (refusing one over RP_MANIFEST_MAX_BYTES unread). */
rp_err_t rp_manifest_load(const char *path, rp_manifest_t *m, char *why, size_t cap) RP_MUST_CHECK;

/* The manifest of an app image made before manifests (one payload file, entry): no capabilities
 * at all, the default limits. */
void rp_manifest_legacy(rp_manifest_t *m, const char *component, const char *entry);

/* Whether p[0..len) is a clean relative path inside an app's tree: no leading "/", no "." or
 * ".." component, no "//", no trailing "/", no control character or NUL. The one rule for
 * EntryPoint and for every name in an app tree (apptree.h). */
bool rp_manifest_path_clean(const char *p, size_t len);

/*
 * The manifest's binary form: what rampart-unpack (which parses the JSON, unprivileged) hands the
 * monitor's app supervisor, and what the supervisor keeps beside an app's extracted tree, so that
 * no JSON is parsed with privilege. "RPMF", the form's version and the struct's size (u32 each,
 * the host's order), then rp_manifest_t as it is in memory: a form between two programs of one
 * build on one host, never stored anywhere a different build reads without checking the version.
 * Raise RP_MANIFEST_BIN_VERSION with any change to rp_manifest_t.
 */
#define RP_MANIFEST_BIN_VERSION 1u
#define RP_MANIFEST_BIN_LEN (12u + sizeof(rp_manifest_t))

/* out: m's binary form (m as rp_manifest_parse or rp_manifest_decode left it, padding and all). */
void rp_manifest_encode(const rp_manifest_t *m, uint8_t out[RP_MANIFEST_BIN_LEN]);

/* A binary form read back (exactly RP_MANIFEST_BIN_LEN bytes), refused unless every field keeps
 * every rule rp_manifest_parse() keeps (rp_manifest_check) and it is not the legacy manifest.
 * Bounded, allocation-free, fuzzed (fuzz/manifest_bin.c). OUT: *m (the defaults on a refusal). */
rp_err_t rp_manifest_decode(const uint8_t *buf, size_t len, rp_manifest_t *m, char *why,
                            size_t cap) RP_MUST_CHECK;

/* Whether m keeps every rule of a parsed manifest: strings terminated, lists within their
 * limits, each entry valid and listed once, the limits in range. */
rp_err_t rp_manifest_check(const rp_manifest_t *m, char *why, size_t cap) RP_MUST_CHECK;

/* The manifest as JSON with every key, the defaults in force written out (what `rampart app
 * check` prints; rp_manifest_parse() of it gives m back). NULL when out of memory. OUT: a new
 * reference. */
struct json_t;
struct json_t *rp_manifest_to_json(const rp_manifest_t *m);

#endif /* RAMPART_MANIFEST_H */
