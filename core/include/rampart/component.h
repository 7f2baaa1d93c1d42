/*
 * What a device names a component by (an app, the system image, firmware of an attached MCU):
 * the one rule for component names, which the service applies to uploads, the device to its
 * slots and metadata, and the evidence to its claims, so that the three always agree.
 *
 * Freestanding, like the rest of the core.
 */
#ifndef RAMPART_COMPONENT_H
#define RAMPART_COMPONENT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Persisted (slot directories, evidence, metadata): never lowered. */
#define RP_COMPONENT_NAME_MAX 32

/*
 * Whether name[0..len) is a component name: 1 to RP_COMPONENT_NAME_MAX of [A-Za-z0-9._-], not
 * starting with a dot (it names a directory on the device: never ".", ".." or hidden). A NUL
 * inside the len bytes is refused like any other character outside the set.
 */
bool rp_component_name_valid(const char *name, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* RAMPART_COMPONENT_H */
