/*
 * The app manifest's parser and validator (manifest.h): the one owner of every key, its type,
 * its range and its default. Deny by default: a key it does not know, at any level, is refused;
 * so is a value of the wrong type, out of range, too long, or listed twice.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "rampart/manifest.h"

/* Why, formatted; always returns RP_ERR_MALFORMED so that a refusal is one line. */
__attribute__((format(printf, 3, 4))) static rp_err_t refuse(char *why, size_t cap, const char *fmt,
                                                             ...)
{
    va_list ap;

    if (why != NULL && cap > 0) {
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return RP_ERR_MALFORMED;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

/* An integer in [min, max]. */
static rp_err_t get_uint(const json_t *v, const char *key, uint32_t min, uint32_t max,
                         uint32_t *out, char *why, size_t cap)
{
    json_int_t n;

    if (!json_is_integer(v))
        return refuse(why, cap, "%s: must be an integer from %u to %u, not %s", key, min, max,
                      type_name(v));
    n = json_integer_value(v);
    if (n < (json_int_t)min)
        return refuse(why, cap, "%s: %lld is under the minimum of %u", key, (long long)n, min);
    if (n > (json_int_t)max)
        return refuse(why, cap, "%s: %lld is over the limit of %u", key, (long long)n, max);
    *out = (uint32_t)n;
    return RP_OK;
}

/* A string of at most max bytes with no NUL. OUT: *s, *len. */
static rp_err_t get_string(const json_t *v, const char *key, size_t max, const char **s,
                           size_t *len, char *why, size_t cap)
{
    if (!json_is_string(v))
        return refuse(why, cap, "%s: must be a string, not %s", key, type_name(v));
    *s = json_string_value(v);
    *len = json_string_length(v);
    if (strlen(*s) != *len) /* Jansson refuses \u0000 unless asked; never rely on it alone */
        return refuse(why, cap, "%s: contains a NUL character", key);
    if (*len > max)
        return refuse(why, cap, "%s: %zu bytes long, over the limit of %zu", key, *len, max);
    return RP_OK;
}

static bool has_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

/* An array of at most max entries. */
static rp_err_t get_array(const json_t *v, const char *key, size_t max, char *why, size_t cap)
{
    if (!json_is_array(v))
        return refuse(why, cap, "%s: must be an array, not %s", key, type_name(v));
    if (json_array_size(v) > max)
        return refuse(why, cap, "%s: %zu entries, over the limit of %zu", key, json_array_size(v),
                      max);
    return RP_OK;
}

/* An object holding exactly one key, `inner` (required). OUT: *value. */
static rp_err_t get_one_key_object(const json_t *v, const char *key, const char *inner,
                                   json_t **value, char *why, size_t cap)
{
    const char *k;
    json_t *x;

    if (!json_is_object(v))
        return refuse(why, cap, "%s: must be an object {\"%s\": ...}, not %s", key, inner,
                      type_name(v));
    json_object_foreach((json_t *)v, k, x)
    {
        if (strcmp(k, inner) != 0)
            return refuse(why, cap, "%s.%s: unknown key (%s takes only %s)", key, k, key, inner);
    }
    *value = json_object_get(v, inner);
    if (*value == NULL)
        return refuse(why, cap, "%s.%s: required", key, inner);
    return RP_OK;
}

/*
 * A relative path with no "..", no "." and no empty component, no leading or trailing "/", no
 * control character: what names a file inside an app's tree. The one rule for paths in a tree
 * (apptree.c calls it for every entry).
 */
bool rp_manifest_path_clean(const char *p, size_t len)
{
    size_t start = 0;

    if (p == NULL || len == 0 || p[0] == '/' || has_control(p, len) || memchr(p, '\0', len))
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/')
            continue;
        if (i == start || (i - start == 1 && p[start] == '.') ||
            (i - start == 2 && p[start] == '.' && p[start + 1] == '.'))
            return false; /* "//", a trailing "/", "." or ".." */
        start = i + 1;
    }
    return true;
}

static bool name_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* A device node's path: /dev/NAME, NAME a clean relative path. */
static bool device_path(const char *s, size_t len)
{
    return len > 5 && strncmp(s, "/dev/", 5) == 0 && rp_manifest_path_clean(s + 5, len - 5);
}

static rp_err_t parse_name(const json_t *v, rp_manifest_t *m, char *why, size_t cap)
{
    const char *s;
    size_t len;
    rp_err_t err = get_string(v, "Name", RP_MANIFEST_NAME_MAX, &s, &len, why, cap);

    if (err != RP_OK)
        return err;
    if (len == 0)
        return refuse(why, cap, "Name: empty");
    if (!name_printable(s, len))
        return refuse(why, cap, "Name: only printable ASCII characters are allowed");
    memcpy(m->name, s, len + 1);
    return RP_OK;
}

static rp_err_t parse_component(const json_t *v, const char *key, char *out, char *why, size_t cap)
{
    const char *s;
    size_t len;
    rp_err_t err = get_string(v, key, RP_COMPONENT_NAME_MAX, &s, &len, why, cap);

    if (err != RP_OK)
        return err;
    if (!rp_component_name_valid(s, len))
        return refuse(why, cap,
                      "%s: \"%s\" is not a component name (1 to %d of A-Z a-z 0-9 . _ -, not "
                      "starting with a dot)",
                      key, s, RP_COMPONENT_NAME_MAX);
    memcpy(out, s, len + 1);
    return RP_OK;
}

static rp_err_t parse_entry_point(const json_t *v, rp_manifest_t *m, char *why, size_t cap)
{
    const char *s;
    size_t len;
    rp_err_t err = get_string(v, "EntryPoint", RP_MANIFEST_PATH_MAX, &s, &len, why, cap);

    if (err != RP_OK)
        return err;
    if (!rp_manifest_path_clean(s, len))
        return refuse(why, cap,
                      "EntryPoint: \"%s\" is not a clean relative path inside the app (no "
                      "leading /, no . or .., no //, no trailing /, no control characters)",
                      s);
    memcpy(m->entry_point, s, len + 1);
    return RP_OK;
}

static rp_err_t parse_cmdline(const json_t *v, rp_manifest_t *m, char *why, size_t cap)
{
    char key[64];
    size_t i, len;
    const char *s;
    json_t *x;
    rp_err_t err = get_array(v, "Cmdline", RP_MANIFEST_ARGS_MAX, why, cap);

    if (err != RP_OK)
        return err;
    json_array_foreach(v, i, x)
    {
        snprintf(key, sizeof(key), "Cmdline[%zu]", i);
        err = get_string(x, key, RP_MANIFEST_ARG_MAX, &s, &len, why, cap);
        if (err != RP_OK)
            return err;
        memcpy(m->args[i], s, len + 1);
    }
    m->nargs = json_array_size(v);
    return RP_OK;
}

/* A port's text: 1..65535 in plain decimal (no sign, no leading zero). */
static bool port_text(const char *s, size_t len, uint16_t *port)
{
    uint32_t n = 0;

    if (len == 0 || len > 5 || s[0] == '0')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        n = n * 10 + (uint32_t)(s[i] - '0');
    }
    if (n > 65535)
        return false;
    *port = (uint16_t)n;
    return true;
}

/*
 * A DNS name in its text form: LDH labels of 1..63 characters, not starting or ending with '-',
 * at most 253 characters, no trailing dot, the last label not all digits (that would be an
 * address written oddly, such as 10.1 or 010.0.0.1). OUT: out, lower-cased.
 */
static bool dns_name(const char *s, size_t len, char *out)
{
    size_t label = 0;
    bool all_digits = true;

    if (len == 0 || len > RP_MANIFEST_HOST_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
                return false;
            if (i == len && all_digits)
                return false;
            label = 0;
            all_digits = true;
            if (i < len)
                out[i] = '.';
            continue;
        }
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
        if (!isdigit((unsigned char)s[i]))
            all_digits = false;
        out[i] = (char)tolower((unsigned char)s[i]);
        label++;
    }
    out[len] = '\0';
    return true;
}

/* An address literal of family af. OUT: out, its canonical text form. */
static bool ip_literal(int af, const char *s, size_t len, char *out, size_t cap, bool *unspecified)
{
    char text[INET6_ADDRSTRLEN];
    unsigned char addr[16];

    if (len >= sizeof(text))
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    if (inet_pton(af, text, addr) != 1 || inet_ntop(af, addr, out, (socklen_t)cap) == NULL)
        return false;
    *unspecified = true;
    for (size_t i = 0; i < (af == AF_INET ? 4u : 16u); i++)
        if (addr[i] != 0)
            *unspecified = false;
    return true;
}

/*
 * One AllowedConnections entry: "name", "name:port", "1.2.3.4", "1.2.3.4:port", "[fd00::1]",
 * "[fd00::1]:port".
 */
static rp_err_t parse_host(const char *key, const char *s, size_t len, rp_manifest_host_t *h,
                           char *why, size_t cap)
{
    const char *host = s, *colon;
    size_t host_len = len;
    bool unspecified = false;

    memset(h, 0, sizeof(*h));
    if (len == 0)
        return refuse(why, cap, "%s: empty", key);
    if (memchr(s, '*', len) != NULL)
        return refuse(why, cap, "%s: \"%s\": wildcards are not allowed: list each host", key, s);
    if (s[0] == '[') {
        const char *end = memchr(s, ']', len);
        if (end == NULL)
            return refuse(why, cap, "%s: \"%s\": no ] closes the IPv6 address", key, s);
        host = s + 1;
        host_len = (size_t)(end - host);
        if (end + 1 < s + len) {
            if (end[1] != ':' || !port_text(end + 2, (size_t)(s + len - end - 2), &h->port))
                return refuse(why, cap, "%s: \"%s\": after ] comes nothing or :PORT (1 to 65535)",
                              key, s);
        }
        if (!ip_literal(AF_INET6, host, host_len, h->host, sizeof(h->host), &unspecified))
            return refuse(why, cap, "%s: \"%s\": not an IPv6 address", key, s);
        h->is_ip = true;
    } else if ((colon = memchr(s, ':', len)) != NULL &&
               memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) != NULL) {
        /* Unbracketed, "fd00::1:443" is both an address and an address with a port. */
        return refuse(why, cap,
                      "%s: \"%s\": write an IPv6 address in brackets, [ADDRESS] or "
                      "[ADDRESS]:PORT",
                      key, s);
    } else {
        if (colon != NULL) {
            host_len = (size_t)(colon - s);
            if (!port_text(colon + 1, len - host_len - 1, &h->port))
                return refuse(why, cap, "%s: \"%s\": the port must be 1 to 65535", key, s);
        }
        if (ip_literal(AF_INET, s, host_len, h->host, sizeof(h->host), &unspecified)) {
            h->is_ip = true;
        } else if (!dns_name(s, host_len, h->host)) {
            return refuse(why, cap,
                          "%s: \"%s\": not a host name (labels of letters, digits and -, at "
                          "most 63 each and %d in all, the last not all digits), nor an IP "
                          "address",
                          key, s, RP_MANIFEST_HOST_MAX);
        }
    }
    if (unspecified)
        return refuse(why, cap, "%s: \"%s\": the unspecified address names no host", key, s);
    return RP_OK;
}

static rp_err_t parse_connections(const json_t *v, rp_manifest_t *m, char *why, size_t cap)
{
    char key[64];
    size_t i, len;
    const char *s;
    json_t *x;
    rp_err_t err = get_array(v, "AllowedConnections", RP_MANIFEST_CONNECTIONS_MAX, why, cap);

    if (err != RP_OK)
        return err;
    json_array_foreach(v, i, x)
    {
        rp_manifest_host_t *h = &m->connections[i];

        snprintf(key, sizeof(key), "AllowedConnections[%zu]", i);
        /* "[" + an IPv6 text form + "]:65535" fits in the bound of a DNS name. */
        err = get_string(x, key, RP_MANIFEST_HOST_MAX + 6, &s, &len, why, cap);
        if (err == RP_OK)
            err = parse_host(key, s, len, h, why, cap);
        if (err != RP_OK)
            return err;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->connections[j].host, h->host) == 0 && m->connections[j].port == h->port)
                return refuse(why, cap, "%s: \"%s\" is listed twice", key, s);
    }
    m->nconnections = json_array_size(v);
    return RP_OK;
}

static rp_err_t parse_ports(const json_t *v, const char *name, uint16_t *ports, size_t *n,
                            char *why, size_t cap)
{
    char key[64];
    uint32_t port;
    size_t i;
    json_t *x;
    rp_err_t err = get_array(v, name, RP_MANIFEST_PORTS_MAX, why, cap);

    if (err != RP_OK)
        return err;
    json_array_foreach(v, i, x)
    {
        snprintf(key, sizeof(key), "%s[%zu]", name, i);
        err = get_uint(x, key, 1, 65535, &port, why, cap);
        if (err != RP_OK)
            return err;
        for (size_t j = 0; j < i; j++)
            if (ports[j] == port)
                return refuse(why, cap, "%s: port %u is listed twice", key, port);
        ports[i] = (uint16_t)port;
    }
    *n = json_array_size(v);
    return RP_OK;
}

static rp_err_t parse_devices(const json_t *v, rp_manifest_t *m, char *why, size_t cap)
{
    char key[64];
    size_t i, len;
    const char *s;
    json_t *x;
    rp_err_t err = get_array(v, "Devices", RP_MANIFEST_DEVICES_MAX, why, cap);

    if (err != RP_OK)
        return err;
    json_array_foreach(v, i, x)
    {
        snprintf(key, sizeof(key), "Devices[%zu]", i);
        err = get_string(x, key, RP_MANIFEST_PATH_MAX, &s, &len, why, cap);
        if (err != RP_OK)
            return err;
        if (!device_path(s, len))
            return refuse(why, cap,
                          "%s: \"%s\" is not a device node's path (/dev/NAME: absolute, under "
                          "/dev/, no . or .., no //, no trailing /)",
                          key, s);
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->devices[j], s) == 0)
                return refuse(why, cap, "%s: \"%s\" is listed twice", key, s);
        memcpy(m->devices[i], s, len + 1);
    }
    m->ndevices = json_array_size(v);
    return RP_OK;
}

static rp_err_t parse_app_connections(const json_t *v, rp_manifest_t *m, char *why, size_t cap)
{
    char key[64];
    size_t i;
    json_t *x;
    rp_err_t err =
        get_array(v, "AllowedApplicationConnections", RP_MANIFEST_APP_CONNECTIONS_MAX, why, cap);

    if (err != RP_OK)
        return err;
    json_array_foreach(v, i, x)
    {
        snprintf(key, sizeof(key), "AllowedApplicationConnections[%zu]", i);
        err = parse_component(x, key, m->app_connections[i], why, cap);
        if (err != RP_OK)
            return err;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->app_connections[j], m->app_connections[i]) == 0)
                return refuse(why, cap, "%s: \"%s\" is listed twice", key, m->app_connections[i]);
    }
    m->napp_connections = json_array_size(v);
    return RP_OK;
}

static rp_err_t parse_key(const char *k, const json_t *v, rp_manifest_t *m, char *why, size_t cap)
{
    json_t *inner;
    uint32_t n;
    rp_err_t err;

    if (strcmp(k, "SchemaVersion") == 0) {
        err = get_uint(v, k, 0, UINT32_MAX, &n, why, cap);
        if (err == RP_OK && n != RP_MANIFEST_SCHEMA)
            return refuse(why, cap, "SchemaVersion: %u is not supported (this is version %d)", n,
                          RP_MANIFEST_SCHEMA);
        return err;
    }
    if (strcmp(k, "Name") == 0)
        return parse_name(v, m, why, cap);
    if (strcmp(k, "ComponentId") == 0)
        return parse_component(v, k, m->component_id, why, cap);
    if (strcmp(k, "EntryPoint") == 0)
        return parse_entry_point(v, m, why, cap);
    if (strcmp(k, "Cmdline") == 0)
        return parse_cmdline(v, m, why, cap);
    if (strcmp(k, "AllowedConnections") == 0)
        return parse_connections(v, m, why, cap);
    if (strcmp(k, "AllowedTcpServerPorts") == 0)
        return parse_ports(v, k, m->tcp_ports, &m->ntcp_ports, why, cap);
    if (strcmp(k, "AllowedUdpServerPorts") == 0)
        return parse_ports(v, k, m->udp_ports, &m->nudp_ports, why, cap);
    if (strcmp(k, "Devices") == 0)
        return parse_devices(v, m, why, cap);
    if (strcmp(k, "MutableStorage") == 0) {
        err = get_one_key_object(v, k, "SizeKB", &inner, why, cap);
        return err != RP_OK ? err
                            : get_uint(inner, "MutableStorage.SizeKB", 1,
                                       RP_MANIFEST_STORAGE_KB_MAX, &m->storage_kb, why, cap);
    }
    if (strcmp(k, "Memory") == 0) {
        err = get_one_key_object(v, k, "LimitKB", &inner, why, cap);
        return err != RP_OK ? err
                            : get_uint(inner, "Memory.LimitKB", RP_MANIFEST_MEMORY_KB_MIN,
                                       RP_MANIFEST_MEMORY_KB_MAX, &m->memory_kb, why, cap);
    }
    if (strcmp(k, "Pids") == 0) {
        err = get_one_key_object(v, k, "Max", &inner, why, cap);
        return err != RP_OK
                   ? err
                   : get_uint(inner, "Pids.Max", 1, RP_MANIFEST_PIDS_MAX, &m->pids, why, cap);
    }
    if (strcmp(k, "CpuPercent") == 0)
        return get_uint(v, k, 1, 100, &m->cpu_percent, why, cap);
    if (strcmp(k, "AllowedApplicationConnections") == 0)
        return parse_app_connections(v, m, why, cap);
    if (strcmp(k, "DeviceAuthentication") == 0) {
        if (!json_is_boolean(v))
            return refuse(why, cap, "DeviceAuthentication: must be true or false, not %s",
                          type_name(v));
        m->device_authentication = json_is_true(v);
        return RP_OK;
    }
    if (strcmp(k, "WatchdogSeconds") == 0)
        return get_uint(v, k, 1, RP_MANIFEST_WATCHDOG_SECONDS_MAX, &m->watchdog_seconds, why, cap);
    return refuse(why, cap, "%s: unknown key (a misspelt capability is refused, not ignored)", k);
}

static void defaults(rp_manifest_t *m)
{
    memset(m, 0, sizeof(*m));
    m->memory_kb = RP_MANIFEST_MEMORY_KB_DEFAULT;
    m->pids = RP_MANIFEST_PIDS_DEFAULT;
    m->cpu_percent = RP_MANIFEST_CPU_PERCENT_DEFAULT;
}

rp_err_t rp_manifest_parse(const char *json, size_t len, rp_manifest_t *m, char *why, size_t cap)
{
    static const char *const required[] = {"SchemaVersion", "Name", "ComponentId", "EntryPoint"};
    json_error_t jerr;
    const char *k;
    json_t *root, *v;
    rp_err_t err = RP_OK;

    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (m == NULL)
        return RP_ERR_INVALID_ARG;
    defaults(m);
    if (json == NULL)
        return RP_ERR_INVALID_ARG;
    if (len > RP_MANIFEST_MAX_BYTES)
        return refuse(why, cap, "%s: %zu bytes, over the limit of %d", RP_MANIFEST_FILE, len,
                      RP_MANIFEST_MAX_BYTES);
    /* Duplicate keys are refused: two "Memory"s would leave which one counts to the parser. */
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return refuse(why, cap, "%s: not valid JSON: %s (line %d, column %d)", RP_MANIFEST_FILE,
                      jerr.text, jerr.line, jerr.column);
    if (!json_is_object(root)) {
        err = refuse(why, cap, "%s: must be a JSON object, not %s", RP_MANIFEST_FILE,
                     type_name(root));
        goto out;
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (json_object_get(root, required[i]) == NULL) {
            err = refuse(why, cap, "%s: required", required[i]);
            goto out;
        }
    }
    json_object_foreach(root, k, v)
    {
        err = parse_key(k, v, m, why, cap);
        if (err != RP_OK)
            goto out;
    }
    for (size_t i = 0; i < m->napp_connections; i++) {
        if (strcmp(m->app_connections[i], m->component_id) == 0) {
            err = refuse(why, cap, "AllowedApplicationConnections[%zu]: \"%s\" is this app itself",
                         i, m->component_id);
            goto out;
        }
    }
out:
    json_decref(root);
    if (err != RP_OK)
        defaults(m); /* nothing half-filled survives a refusal */
    return err;
}

rp_err_t rp_manifest_load(const char *path, rp_manifest_t *m, char *why, size_t cap)
{
    char *buf = NULL;
    struct stat st;
    ssize_t got;
    size_t len = 0;
    rp_err_t err;
    int fd;

    if (m == NULL || path == NULL)
        return RP_ERR_INVALID_ARG;
    defaults(m);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        refuse(why, cap, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? RP_ERR_NOT_FOUND : RP_ERR_IO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return refuse(why, cap, "%s: not a regular file", path);
    }
    if (st.st_size > RP_MANIFEST_MAX_BYTES) {
        close(fd);
        refuse(why, cap, "%s: %lld bytes, over the limit of %d", path, (long long)st.st_size,
               RP_MANIFEST_MAX_BYTES);
        return RP_ERR_TOO_LARGE;
    }
    /* One byte more than the limit: a file that grew since fstat() is caught, not cut short. */
    buf = malloc(RP_MANIFEST_MAX_BYTES + 1);
    if (buf == NULL) {
        close(fd);
        return RP_ERR_NO_MEMORY;
    }
    while (len <= RP_MANIFEST_MAX_BYTES) {
        got = read(fd, buf + len, RP_MANIFEST_MAX_BYTES + 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    if (got < 0) {
        free(buf);
        refuse(why, cap, "%s: %s", path, strerror(errno));
        return RP_ERR_IO;
    }
    err = rp_manifest_parse(buf, len, m, why, cap);
    free(buf);
    return err;
}

void rp_manifest_legacy(rp_manifest_t *m, const char *component, const char *entry)
{
    defaults(m);
    m->legacy = true;
    snprintf(m->name, sizeof(m->name), "%s", component != NULL ? component : "");
    snprintf(m->component_id, sizeof(m->component_id), "%s", component != NULL ? component : "");
    snprintf(m->entry_point, sizeof(m->entry_point), "%s", entry != NULL ? entry : "");
}

json_t *rp_manifest_to_json(const rp_manifest_t *m)
{
    json_t *o = json_object(), *a;
    char hp[RP_MANIFEST_HOST_MAX + 16];

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "SchemaVersion", json_integer(RP_MANIFEST_SCHEMA));
    json_object_set_new(o, "Name", json_string(m->name));
    json_object_set_new(o, "ComponentId", json_string(m->component_id));
    json_object_set_new(o, "EntryPoint", json_string(m->entry_point));
    a = json_array();
    for (size_t i = 0; i < m->nargs; i++)
        json_array_append_new(a, json_string(m->args[i]));
    json_object_set_new(o, "Cmdline", a);
    a = json_array();
    for (size_t i = 0; i < m->nconnections; i++) {
        const rp_manifest_host_t *h = &m->connections[i];
        bool v6 = h->is_ip && strchr(h->host, ':') != NULL;
        if (v6 && h->port == 0)
            snprintf(hp, sizeof(hp), "[%s]", h->host);
        else if (h->port == 0)
            snprintf(hp, sizeof(hp), "%s", h->host);
        else
            snprintf(hp, sizeof(hp), v6 ? "[%s]:%u" : "%s:%u", h->host, (unsigned)h->port);
        json_array_append_new(a, json_string(hp));
    }
    json_object_set_new(o, "AllowedConnections", a);
    a = json_array();
    for (size_t i = 0; i < m->ntcp_ports; i++)
        json_array_append_new(a, json_integer(m->tcp_ports[i]));
    json_object_set_new(o, "AllowedTcpServerPorts", a);
    a = json_array();
    for (size_t i = 0; i < m->nudp_ports; i++)
        json_array_append_new(a, json_integer(m->udp_ports[i]));
    json_object_set_new(o, "AllowedUdpServerPorts", a);
    a = json_array();
    for (size_t i = 0; i < m->ndevices; i++)
        json_array_append_new(a, json_string(m->devices[i]));
    json_object_set_new(o, "Devices", a);
    if (m->storage_kb > 0)
        json_object_set_new(o, "MutableStorage",
                            json_pack("{s:I}", "SizeKB", (json_int_t)m->storage_kb));
    json_object_set_new(o, "Memory", json_pack("{s:I}", "LimitKB", (json_int_t)m->memory_kb));
    json_object_set_new(o, "Pids", json_pack("{s:I}", "Max", (json_int_t)m->pids));
    json_object_set_new(o, "CpuPercent", json_integer(m->cpu_percent));
    a = json_array();
    for (size_t i = 0; i < m->napp_connections; i++)
        json_array_append_new(a, json_string(m->app_connections[i]));
    json_object_set_new(o, "AllowedApplicationConnections", a);
    json_object_set_new(o, "DeviceAuthentication", json_boolean(m->device_authentication));
    if (m->watchdog_seconds > 0)
        json_object_set_new(o, "WatchdogSeconds", json_integer(m->watchdog_seconds));
    return o;
}

/* ---- the checked binary form (manifest.h) ---- */

#define BIN_MAGIC "RPMF"
#define BIN_HEAD 12u /* magic, then the form's version and the struct's size (u32 each) */
_Static_assert(RP_MANIFEST_BIN_LEN == BIN_HEAD + sizeof(rp_manifest_t), "the binary form's size");
_Static_assert(sizeof(bool) == 1, "a bool is one byte of the binary form");

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

/* A host as parse_host() leaves it: an address's canonical text form, or a lower-case DNS name. */
static bool host_canonical(const rp_manifest_host_t *h)
{
    char out[RP_MANIFEST_HOST_MAX + 1];
    size_t len = strlen(h->host);
    bool unspecified = true;

    if (h->is_ip)
        return ip_literal(strchr(h->host, ':') != NULL ? AF_INET6 : AF_INET, h->host, len, out,
                          sizeof(out), &unspecified) &&
               !unspecified && strcmp(out, h->host) == 0;
    return dns_name(h->host, len, out) && strcmp(out, h->host) == 0;
}

/* Valid UTF-8, as Jansson holds every string of a manifest it parses (its check, not another). */
static bool utf8(const char *s)
{
    json_t *v = json_string(s);

    json_decref(v);
    return v != NULL;
}

static bool ports_ok(const uint16_t *ports, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++)
            if (ports[i] == 0 || (j < i && ports[j] == ports[i]))
                return false;
    return true;
}

rp_err_t rp_manifest_check(const rp_manifest_t *m, char *why, size_t cap)
{
    if (!TERMINATED(m->name) || !TERMINATED(m->component_id) || !TERMINATED(m->entry_point) ||
        m->nargs > RP_MANIFEST_ARGS_MAX || m->nconnections > RP_MANIFEST_CONNECTIONS_MAX ||
        m->ntcp_ports > RP_MANIFEST_PORTS_MAX || m->nudp_ports > RP_MANIFEST_PORTS_MAX ||
        m->ndevices > RP_MANIFEST_DEVICES_MAX ||
        m->napp_connections > RP_MANIFEST_APP_CONNECTIONS_MAX)
        return refuse(why, cap, "manifest: a string not terminated or a list over its limit");
    if (m->name[0] == '\0' || !name_printable(m->name, strlen(m->name)) ||
        !rp_component_name_valid(m->component_id, strlen(m->component_id)) ||
        !rp_manifest_path_clean(m->entry_point, strlen(m->entry_point)) || !utf8(m->entry_point))
        return refuse(why, cap, "manifest: Name, ComponentId or EntryPoint breaks its rule");
    for (size_t i = 0; i < m->nargs; i++)
        if (!TERMINATED(m->args[i]) || !utf8(m->args[i]))
            return refuse(why, cap, "Cmdline[%zu]: not terminated, or not UTF-8", i);
    for (size_t i = 0; i < m->nconnections; i++) {
        const rp_manifest_host_t *h = &m->connections[i];
        if (!TERMINATED(h->host) || !host_canonical(h))
            return refuse(why, cap, "AllowedConnections[%zu]: not a host in its canonical form", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->connections[j].host, h->host) == 0 && m->connections[j].port == h->port)
                return refuse(why, cap, "AllowedConnections[%zu]: listed twice", i);
    }
    if (!ports_ok(m->tcp_ports, m->ntcp_ports) || !ports_ok(m->udp_ports, m->nudp_ports))
        return refuse(why, cap, "manifest: a server port is 0 or listed twice");
    for (size_t i = 0; i < m->ndevices; i++) {
        if (!TERMINATED(m->devices[i]) || !device_path(m->devices[i], strlen(m->devices[i])) ||
            !utf8(m->devices[i]))
            return refuse(why, cap, "Devices[%zu]: not a device node's path", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->devices[j], m->devices[i]) == 0)
                return refuse(why, cap, "Devices[%zu]: listed twice", i);
    }
    for (size_t i = 0; i < m->napp_connections; i++) {
        const char *c = m->app_connections[i];
        if (!TERMINATED(m->app_connections[i]) || !rp_component_name_valid(c, strlen(c)) ||
            strcmp(c, m->component_id) == 0)
            return refuse(why, cap, "AllowedApplicationConnections[%zu]: not another app", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->app_connections[j], c) == 0)
                return refuse(why, cap, "AllowedApplicationConnections[%zu]: listed twice", i);
    }
    if (m->storage_kb > RP_MANIFEST_STORAGE_KB_MAX || m->memory_kb < RP_MANIFEST_MEMORY_KB_MIN ||
        m->memory_kb > RP_MANIFEST_MEMORY_KB_MAX || m->pids == 0 ||
        m->pids > RP_MANIFEST_PIDS_MAX || m->cpu_percent == 0 || m->cpu_percent > 100 ||
        m->watchdog_seconds > RP_MANIFEST_WATCHDOG_SECONDS_MAX)
        return refuse(why, cap, "manifest: a limit out of its range");
    return RP_OK;
}

void rp_manifest_encode(const rp_manifest_t *m, uint8_t out[RP_MANIFEST_BIN_LEN])
{
    const uint32_t head[2] = {RP_MANIFEST_BIN_VERSION, (uint32_t)sizeof(*m)};

    memcpy(out, BIN_MAGIC, 4);
    memcpy(out + 4, head, sizeof(head));
    memcpy(out + BIN_HEAD, m, sizeof(*m));
}

rp_err_t rp_manifest_decode(const uint8_t *buf, size_t len, rp_manifest_t *m, char *why, size_t cap)
{
    const uint8_t *body;
    uint32_t head[2];
    rp_err_t err;

    defaults(m);
    if (len != RP_MANIFEST_BIN_LEN || memcmp(buf, BIN_MAGIC, 4) != 0)
        return refuse(why, cap, "not a manifest in its binary form (%zu bytes)", len);
    body = buf + BIN_HEAD;
    memcpy(head, buf + 4, sizeof(head));
    if (head[0] != RP_MANIFEST_BIN_VERSION || head[1] != sizeof(*m))
        return refuse(why, cap, "a manifest's binary form of another version (%u)", head[0]);
    /* A bool's byte other than 0 or 1 would be undefined once read as one; a tree's manifest is
     * never the legacy one (that is answered apart). */
    if (body[offsetof(rp_manifest_t, legacy)] != 0 ||
        body[offsetof(rp_manifest_t, device_authentication)] > 1)
        return refuse(why, cap, "a manifest's binary form with a bad flag");
    for (size_t i = 0; i < RP_MANIFEST_CONNECTIONS_MAX; i++)
        if (body[offsetof(rp_manifest_t, connections) + i * sizeof(rp_manifest_host_t) +
                 offsetof(rp_manifest_host_t, is_ip)] > 1)
            return refuse(why, cap, "a manifest's binary form with a bad flag");
    memcpy(m, body, sizeof(*m));
    err = rp_manifest_check(m, why, cap);
    if (err != RP_OK)
        defaults(m);
    return err;
}
