/*
 * The rule for a sentence meant for people (text.h): no control character; and well-formed UTF-8.
 */
#include "rampart/text.h"

size_t rp_text_control_at(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if ((p[0] > 0 && p[0] < 0x20) || p[0] == 0x7f)
        return 1;
    if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
        return 2;
    return 0;
}

bool rp_text_no_controls(const char *s)
{
    for (; *s != '\0'; s++)
        if (rp_text_control_at(s) != 0)
            return false;
    return true;
}

bool rp_text_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != 0) {
        int n = *p < 0x80                  ? 0
                : *p >= 0xC2 && *p <= 0xDF ? 1
                : *p >= 0xE0 && *p <= 0xEF ? 2
                : *p >= 0xF0 && *p <= 0xF4 ? 3
                                           : -1;
        unsigned char lo = 0x80, hi = 0xBF;

        if (n < 0)
            return false;
        if (*p == 0xE0) /* the second byte's range: no overlong form, no surrogate, <= U+10FFFF */
            lo = 0xA0;
        else if (*p == 0xED)
            hi = 0x9F;
        else if (*p == 0xF0)
            lo = 0x90;
        else if (*p == 0xF4)
            hi = 0x8F;
        p++;
        for (int i = 0; i < n; i++, p++) {
            if (*p < (i == 0 ? lo : 0x80) || *p > (i == 0 ? hi : 0xBF))
                return false;
        }
    }
    return true;
}
