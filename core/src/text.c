/*
 * The rule for a sentence meant for people (text.h): no control character.
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
