/* The component-name rule (see component.h). */
#include "rampart/component.h"

bool rp_component_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > RP_COMPONENT_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}
