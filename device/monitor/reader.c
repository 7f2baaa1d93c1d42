/*
 * The event readers' record (reader.h): its one encoder (`rampart-unpack read`'s) and its one
 * checked decoder (the app supervisor's).
 */
#include <string.h>

#include "reader.h"
#include "rampart/bytes.h"
#include "rampart/text.h"

/* What each kind carries. */
typedef struct uses {
    bool number, domain, component, reason;
} uses_t;

static bool kind_uses(uint32_t kind, uses_t *u)
{
    memset(u, 0, sizeof(*u));
    switch (kind) {
    case RP_READER_LANDLOCK: u->domain = u->reason = true; return true;
    case RP_READER_DOMAIN_NEW: u->domain = u->number = true; return true;
    case RP_READER_DOMAIN_GONE: u->domain = true; return true;
    case RP_READER_CONNECTION:
    case RP_READER_LISTEN: u->component = u->reason = true; return true;
    case RP_READER_LOST_AUDIT:
    case RP_READER_LOST_NFLOG: u->number = true; return true;
    default: return false;
    }
}

/* The rules of a record, one place: decode checks them on the wire, encode before it writes. */
static bool valid(const rp_reader_record_t *r)
{
    uses_t u;
    size_t clen = strnlen(r->component, sizeof(r->component));
    size_t rlen = strnlen(r->reason, sizeof(r->reason));

    if (!kind_uses((uint32_t)r->kind, &u) || clen > RP_COMPONENT_NAME_MAX ||
        rlen > RP_EVENT_REASON_MAX)
        return false;
    if (u.number != (r->number != 0) ||
        (r->kind == RP_READER_DOMAIN_NEW && r->number > 0x3fffffffu))
        return false;
    if (u.domain != (r->domain != 0) || (r->kind != RP_READER_DOMAIN_NEW && r->uid != 0))
        return false;
    if (u.component ? !rp_component_name_valid(r->component, clen) : clen != 0)
        return false;
    return u.reason ? rlen > 0 && rp_text_no_controls(r->reason) && rp_text_utf8_valid(r->reason)
                    : rlen == 0;
}

rp_err_t rp_reader_encode(const rp_reader_record_t *r, uint8_t out[RP_READER_RECORD_LEN])
{
    size_t clen, rlen;

    if (r == NULL || out == NULL || !valid(r))
        return RP_ERR_INVALID_ARG;
    clen = strlen(r->component);
    rlen = strlen(r->reason);
    memset(out, 0, RP_READER_RECORD_LEN);
    out[0] = (uint8_t)r->kind;
    out[1] = (uint8_t)rlen;
    out[2] = (uint8_t)clen;
    rp_le_put(out + 4, r->number, 4);
    rp_le_put(out + 8, r->domain, 8);
    rp_le_put(out + RP_READER_OFF_UID, r->uid, 4);
    memcpy(out + RP_READER_OFF_COMPONENT, r->component, clen);
    memcpy(out + RP_READER_OFF_REASON, r->reason, rlen);
    return RP_OK;
}

/* in[off, off + cap) holds n bytes of text and zeros after them, none inside them. */
static bool field(const uint8_t *in, size_t off, size_t cap, size_t n, char *out)
{
    if (n > cap || memchr(in + off, '\0', n) != NULL)
        return false;
    for (size_t i = n; i < cap; i++)
        if (in[off + i] != 0)
            return false;
    memcpy(out, in + off, n);
    out[n] = '\0';
    return true;
}

rp_err_t rp_reader_decode(const uint8_t *in, size_t len, rp_reader_record_t *r)
{
    if (in == NULL || r == NULL)
        return RP_ERR_INVALID_ARG;
    memset(r, 0, sizeof(*r));
    if (len != RP_READER_RECORD_LEN || in[3] != 0 ||
        !field(in, RP_READER_OFF_COMPONENT, RP_COMPONENT_NAME_MAX, in[2], r->component) ||
        !field(in, RP_READER_OFF_REASON, RP_EVENT_REASON_MAX, in[1], r->reason))
        return RP_ERR_MALFORMED;
    r->kind = (rp_reader_kind_t)in[0];
    r->number = (uint32_t)rp_le_get(in + 4, 4);
    r->domain = rp_le_get(in + 8, 8);
    r->uid = (uint32_t)rp_le_get(in + RP_READER_OFF_UID, 4);
    if (!valid(r)) {
        memset(r, 0, sizeof(*r));
        return RP_ERR_MALFORMED;
    }
    return RP_OK;
}
