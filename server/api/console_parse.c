/*
 * The console's pure checks (console.h): which decoded path segments may name one of its files,
 * the Content-Type of each kind of file it serves, and the session cookie in a Cookie header.
 * Nothing here touches the file system or the network.
 */
#include <string.h>

#include "console.h"

#define SEGS_MAX 16
#define SEG_MAX 128

static bool seg_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > SEG_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool rp_console_path_ok(const char *const *segs, int n)
{
    size_t total = 0;

    if (segs == NULL || n < 1 || n > SEGS_MAX)
        return false;
    for (int i = 0; i < n; i++) {
        if (segs[i] == NULL || !seg_ok(segs[i]))
            return false;
        total += strlen(segs[i]) + 1;
    }
    return total <= RP_CONSOLE_PATH_MAX;
}

const char *rp_console_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html",  "text/html; charset=utf-8"      },
        {"js",    "text/javascript; charset=utf-8"},
        {"mjs",   "text/javascript; charset=utf-8"},
        {"css",   "text/css; charset=utf-8"       },
        {"svg",   "image/svg+xml"                 },
        {"png",   "image/png"                     },
        {"json",  "application/json"              },
        {"woff2", "font/woff2"                    },
        {"map",   "application/json"              },
    };
    const char *dot = name != NULL ? strrchr(name, '.') : NULL;

    if (dot == NULL || dot == name || strchr(dot, '/') != NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot + 1, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* RFC 6265, 4.1.1: cookie-octet, what a value may hold (no quotes: the service's values have
 * none, so a quoted one is not one of them). */
static bool cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
           (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

rp_err_t rp_cookie_get(const char *header, const char *name, char *out, size_t cap)
{
    size_t nlen = name != NULL ? strlen(name) : 0;
    const char *p = header;
    bool found = false;

    if (out == NULL || cap == 0 || nlen == 0)
        return RP_ERR_INVALID_ARG;
    out[0] = '\0';
    if (header == NULL)
        return RP_ERR_NOT_FOUND;
    if (strnlen(header, RP_COOKIE_HEADER_MAX + 1) > RP_COOKIE_HEADER_MAX)
        return RP_ERR_MALFORMED;
    while (*p != '\0') {
        const char *pair, *eq, *end;
        size_t vlen;

        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        pair = p;
        end = strchr(p, ';');
        if (end == NULL)
            end = p + strlen(p);
        p = end;
        eq = memchr(pair, '=', (size_t)(end - pair));
        if (eq == NULL || (size_t)(eq - pair) != nlen || memcmp(pair, name, nlen) != 0)
            continue; /* another cookie, or a bare word: not ours */
        while (end > eq + 1 && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (found)
            goto malformed;
        found = true;
        vlen = (size_t)(end - (eq + 1));
        if (vlen == 0 || vlen >= cap)
            goto malformed;
        for (size_t i = 0; i < vlen; i++)
            if (!cookie_octet((unsigned char)eq[1 + i]))
                goto malformed;
        memcpy(out, eq + 1, vlen);
        out[vlen] = '\0';
    }
    return found ? RP_OK : RP_ERR_NOT_FOUND;
malformed:
    out[0] = '\0';
    return RP_ERR_MALFORMED;
}

bool rp_console_secret_ok(const char *v, const char *prefix)
{
    size_t plen = strlen(prefix);

    if (v == NULL || strlen(v) != plen + 64 || strncmp(v, prefix, plen) != 0)
        return false;
    for (size_t i = plen; v[i] != '\0'; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
            return false;
    return true;
}
