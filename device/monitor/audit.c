/*
 * Landlock's audit records: the parser (hostile text, bounded; audit.h). It runs in `rampart-unpack
 * read` only, never with privilege (reader.h).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "rampart/hex.h"
#include "rampart/text.h"

/* ---------------------------------------------------------------- the parser */

#define VALUE_MAX 512 /* a value kept: longer ones are cut (a reason shows at most ~200 of it) */

typedef struct fields {
    char domain[24], blockers[128], status[16], pid[16], uid[16], path[VALUE_MAX], daddr[64],
        dest[8], saddr[64], src[8], opid[16];
} fields_t;

/* Keep v[0..n) in out (cap bytes), printable ASCII only: every other byte becomes '?'. Audit
 * writes an untrusted string (a path) that holds anything but printable ASCII (or '"', a space)
 * in hex, unquoted: such a value (literal false) is decoded first (as much of it as out can
 * show). A value cut ends in "...". */
static void keep(const char *v, size_t n, bool literal, char *out, size_t cap)
{
    uint8_t raw[VALUE_MAX];
    size_t m = n / 2 < cap ? n / 2 : cap, o = 0;
    const uint8_t *b = (const uint8_t *)v;

    if (!literal && n > 0 && n % 2 == 0 && m <= sizeof(raw) &&
        rp_hex_decode(v, 2 * m, raw, m) == RP_OK) {
        b = raw;
        n /= 2;
    }
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        out[o++] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '?';
    out[o] = '\0';
    if (o + 1 == cap && cap > 4 && n > o)
        memcpy(out + cap - 4, "...", 4);
}

static bool digits(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* The fields of "k=v k=\"v\" ...": the ones this reader uses, each bounded. */
static rp_err_t split(const char *t, size_t len, fields_t *f)
{
    static const struct {
        const char *key;
        size_t off, cap;
        bool untrusted; /* audit writes it in hex when it holds more than printable ASCII */
    } want[] = {
#define F(k, u) {#k, offsetof(fields_t, k), sizeof(((fields_t *)0)->k), u}
        F(domain, false), F(blockers, false), F(status, false), F(pid, false),
        F(uid, false),    F(path, true),      F(daddr, false),  F(dest, false),
        F(saddr, false),  F(src, false),      F(opid, false),
#undef F
    };
    size_t i = 0;

    memset(f, 0, sizeof(*f));
    while (i < len) {
        size_t k, v, vend;
        bool quoted = false;
        while (i < len && t[i] == ' ')
            i++;
        k = i;
        while (i < len && t[i] != '=' && t[i] != ' ')
            i++;
        if (i >= len || t[i] != '=')
            return i >= len && k == i ? RP_OK : RP_ERR_MALFORMED;
        size_t klen = i - k;
        i++; /* '=' */
        if (i < len && t[i] == '"') {
            quoted = true;
            v = ++i;
            while (i < len && t[i] != '"')
                i++;
            if (i >= len)
                return RP_ERR_MALFORMED;
            vend = i++;
        } else {
            v = i;
            while (i < len && t[i] != ' ')
                i++;
            vend = i;
        }
        for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++)
            if (strlen(want[w].key) == klen && memcmp(want[w].key, t + k, klen) == 0)
                keep(t + v, vend - v, quoted || !want[w].untrusted, (char *)f + want[w].off,
                     want[w].cap);
    }
    return RP_OK;
}

/* What a blocker refuses, for a person: the object (a path, a port) follows. */
static const struct {
    const char *blocker, *what;
} whats[] = {
    {"fs.execute",                 "execution of "                          },
    {"fs.write_file",              "write to "                              },
    {"fs.read_file",               "read of "                               },
    {"fs.read_dir",                "listing of "                            },
    {"fs.remove_dir",              "removing a directory in "               },
    {"fs.remove_file",             "removing a file in "                    },
    {"fs.make_char",               "making a character device in "          },
    {"fs.make_dir",                "making a directory in "                 },
    {"fs.make_reg",                "making a file in "                      },
    {"fs.make_sock",               "making a socket in "                    },
    {"fs.make_fifo",               "making a FIFO in "                      },
    {"fs.make_block",              "making a block device in "              },
    {"fs.make_sym",                "making a symbolic link in "             },
    {"fs.refer",                   "linking or renaming to or from "        },
    {"fs.truncate",                "truncation of "                         },
    {"fs.ioctl_dev",               "ioctl on "                              },
    {"fs.change_topology",         "mounting on "                           },
    {"net.bind_tcp",               "TCP bind to port "                      },
    {"net.connect_tcp",            "TCP connect to port "                   },
    {"scope.abstract_unix_socket", "connecting to the abstract Unix socket "},
    {"scope.signal",               "a signal to pid "                       },
};

static bool first_is(const char *blockers, size_t first, const char *b)
{
    return strlen(b) == first && memcmp(blockers, b, first) == 0;
}

/* "write to /etc/passwd refused by Landlock"; with more than one blocker, all of them after it
 * ("(fs.make_reg,fs.refer)"). The object is cut to 180 characters ("..."), so that the
 * sentence's end always fits. */
static void refusal_reason(const fields_t *f, char *out, size_t cap)
{
    size_t first = strcspn(f->blockers, ",");
    const char *what = NULL, *object = f->path;
    char obj[VALUE_MAX + 80];
    bool more = f->blockers[first] != '\0';
    int n;

    for (size_t i = 0; i < sizeof(whats) / sizeof(whats[0]) && what == NULL; i++)
        if (first_is(f->blockers, first, whats[i].blocker))
            what = whats[i].what;
    if (first_is(f->blockers, first, "net.connect_tcp")) {
        snprintf(obj, sizeof(obj), "%s%s%s%s", f->dest, f->daddr[0] ? " (" : "", f->daddr,
                 f->daddr[0] ? ")" : "");
        object = obj;
    } else if (first_is(f->blockers, first, "net.bind_tcp"))
        object = f->src;
    else if (first_is(f->blockers, first, "scope.signal"))
        object = f->opid;
    if (object[0] == '\0')
        object = "?";
    if (what == NULL) /* a blocker this reader does not know: named as the kernel names it */
        n = snprintf(out, cap, "%s on %.180s%s refused by Landlock", f->blockers, object,
                     strlen(object) > 180 ? "..." : "");
    else
        n = snprintf(out, cap, "%s%.180s%s refused by Landlock%s%s%s", what, object,
                     strlen(object) > 180 ? "..." : "", more ? " (" : "", more ? f->blockers : "",
                     more ? ")" : "");
    if (n < 0 || (size_t)n >= cap) /* cut: say so */
        memcpy(out + cap - 4, "...", 4);
}

rp_err_t rp_audit_parse(int type, const char *text, size_t len, rp_audit_record_t *out)
{
    static const char head[] = "audit(";
    fields_t f;
    size_t i = sizeof(head) - 1;
    uint64_t serial = 0;
    char *end;

    if (text == NULL || out == NULL)
        return RP_ERR_INVALID_ARG;
    if (type != RP_AUDIT_LANDLOCK_ACCESS && type != RP_AUDIT_LANDLOCK_DOMAIN)
        return RP_ERR_NOT_FOUND;
    if (len > RP_AUDIT_RECORD_MAX)
        return RP_ERR_TOO_LARGE;
    memset(out, 0, sizeof(*out));
    /* "audit(SECONDS.MILLIS:SERIAL): " */
    if (len < i || memcmp(text, head, i) != 0)
        return RP_ERR_MALFORMED;
    while (i < len && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.'))
        i++;
    if (i >= len || text[i++] != ':')
        return RP_ERR_MALFORMED;
    if (i >= len || text[i] < '0' || text[i] > '9')
        return RP_ERR_MALFORMED;
    for (size_t d = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++, d++) {
        if (d >= 19)
            return RP_ERR_MALFORMED;
        serial = serial * 10 + (uint64_t)(text[i] - '0');
    }
    if (len - i < 2 || text[i] != ')' || text[i + 1] != ':')
        return RP_ERR_MALFORMED;
    i += 2;
    if (split(text + i, len - i, &f) != RP_OK)
        return RP_ERR_MALFORMED;
    if (f.domain[0] == '\0' || strlen(f.domain) > 16)
        return RP_ERR_MALFORMED;
    if (strspn(f.domain, "0123456789abcdef") != strlen(f.domain))
        return RP_ERR_MALFORMED;
    out->domain = strtoull(f.domain, &end, 16);
    out->serial = serial;
    if (type == RP_AUDIT_LANDLOCK_DOMAIN) {
        if (strcmp(f.status, "deallocated") == 0) {
            out->kind = RP_AUDIT_DOMAIN_GONE;
            return RP_OK;
        }
        if (strcmp(f.status, "allocated") != 0 || !digits(f.pid, 9) || !digits(f.uid, 10))
            return RP_ERR_MALFORMED;
        unsigned long long uid = strtoull(f.uid, &end, 10);
        if (uid > UINT32_MAX)
            return RP_ERR_MALFORMED;
        out->kind = RP_AUDIT_DOMAIN_NEW;
        out->pid = (pid_t)strtol(f.pid, &end, 10);
        out->uid = (uint32_t)uid;
        return out->pid > 0 ? RP_OK : RP_ERR_MALFORMED;
    }
    if (f.blockers[0] == '\0')
        return RP_ERR_MALFORMED;
    out->kind = RP_AUDIT_REFUSAL;
    refusal_reason(&f, out->reason, sizeof(out->reason));
    /* (keep() let only printable ASCII through: the one rule checked all the same) */
    return rp_text_no_controls(out->reason) ? RP_OK : RP_ERR_MALFORMED;
}
