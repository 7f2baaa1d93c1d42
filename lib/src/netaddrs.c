/*
 * The resolved addresses' binary form (netaddrs.h): the one owner of its fields, written by
 * rampart-unpack, read back by the monitor's network policy.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "rampart/manifest.h"
#include "rampart/netaddrs.h"

_Static_assert(RP_NETADDRS_NAMES_MAX == RP_MANIFEST_CONNECTIONS_MAX,
               "an answer holds every name a manifest may list");

bool rp_netaddrs_usable(struct in_addr a)
{
    uint32_t h = ntohl(a.s_addr);

    return (h >> 24) != 0 && (h >> 24) != 127 && h < 0xe0000000u && (h >> 16) != 0xa9feu &&
           (h >> 16) != (RP_NETADDRS_APPS_NET >> 16);
}

bool rp_netaddrs_add(rp_netaddrs_t *one, struct in_addr a)
{
    if (!rp_netaddrs_usable(a) || one->n >= RP_NETADDRS_PER_NAME)
        return false;
    for (size_t i = 0; i < one->n; i++)
        if (one->addr[i].s_addr == a.s_addr)
            return false;
    one->addr[one->n++] = a;
    return true;
}

rp_err_t rp_netaddrs_encode(const rp_netaddrs_t *names, size_t n, uint8_t *out, size_t cap,
                            size_t *len)
{
    size_t w = 0;

    *len = 0;
    if (n > RP_NETADDRS_NAMES_MAX)
        return RP_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        if (names[i].n > RP_NETADDRS_PER_NAME || cap - w < 1 + 4u * names[i].n)
            return RP_ERR_TOO_LARGE;
        out[w++] = names[i].n;
        for (size_t j = 0; j < names[i].n; j++, w += 4)
            memcpy(out + w, &names[i].addr[j].s_addr, 4);
    }
    *len = w;
    return RP_OK;
}

rp_err_t rp_netaddrs_decode(const uint8_t *buf, size_t len, size_t n, rp_netaddrs_t *out, char *why,
                            size_t cap)
{
    size_t r = 0, i = 0;
    const char *wrong = NULL;

    if (n > RP_NETADDRS_NAMES_MAX)
        return RP_ERR_INVALID_ARG;
    memset(out, 0, n * sizeof(*out));
    while (i < n && wrong == NULL) {
        uint8_t count = r < len ? buf[r] : 0;
        if (r++ >= len)
            wrong = "it ends before every name's count";
        else if (count > RP_NETADDRS_PER_NAME)
            wrong = "a name has more addresses than are kept";
        else if (len - r < 4u * count)
            wrong = "it ends inside a name's addresses";
        for (size_t j = 0; wrong == NULL && j < count; j++, r += 4) {
            struct in_addr a;
            memcpy(&a.s_addr, buf + r, 4);
            if (!rp_netaddrs_add(&out[i], a))
                wrong = rp_netaddrs_usable(a) ? "a name lists an address twice"
                                              : "a name has an address no app may reach";
        }
        if (wrong == NULL)
            i++;
    }
    if (wrong == NULL && r != len)
        wrong = "it has bytes past the last name";
    if (wrong == NULL)
        return RP_OK;
    memset(out, 0, n * sizeof(*out));
    if (why != NULL && cap > 0)
        snprintf(why, cap, "the resolved addresses are refused: %s (name %zu of %zu)", wrong,
                 i < n ? i + 1 : n, n);
    return RP_ERR_MALFORMED;
}
