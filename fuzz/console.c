/*
 * Fuzz target: what the console reads of a request before any session is looked up - the session
 * cookie in a Cookie header (rp_cookie_get, rp_console_secret_ok) and a file path's segments
 * (rp_console_path_ok). A value it returns is non-empty, fits, holds only cookie bytes; a path it
 * allows has no segment starting with '.' and no '/'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char header[RP_COOKIE_HEADER_MAX + 64], v[RP_SESSION_VALUE_LEN + 1], *segs[20], *save = NULL;
    const char *cs[20];
    int n = 0;
    rp_err_t err;

    if (size >= sizeof(header))
        return 0;
    memcpy(header, data, size);
    header[size] = '\0';
    err = rp_cookie_get(header, RP_SESSION_COOKIE, v, sizeof(v));
    if (err == RP_OK) {
        size_t len = strlen(v);
        if (len == 0 || len >= sizeof(v) || strpbrk(v, " \t;,\"\\") != NULL)
            abort();
        (void)rp_console_secret_ok(v, RP_SESSION_PREFIX);
    } else if (v[0] != '\0') {
        abort();
    }
    /* the same bytes as a path, split at '/' as the service splits one */
    for (char *s = strtok_r(header, "/", &save); s != NULL && n < 20;
         s = strtok_r(NULL, "/", &save))
        segs[n++] = s;
    for (int i = 0; i < n; i++)
        cs[i] = segs[i];
    if (rp_console_path_ok(cs, n))
        for (int i = 0; i < n; i++)
            if (cs[i][0] == '.' || strchr(cs[i], '\\') != NULL || cs[i][0] == '\0')
                abort();
    return 0;
}
