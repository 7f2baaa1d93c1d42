/*
 * Which security counter belongs to which component, authenticated by the root of trust: each
 * component's state carries counter_binding = HMAC(root of trust's MAC key, "rampart counter
 * binding v1" NUL name NUL index as u32 big-endian), in hex. Whoever can rewrite the state file
 * cannot move a component to another (lower) counter without the MAC key, which never leaves the
 * root of trust. Once any binding exists, S/counter-bindings says so, and a state without one is
 * refused as tampered (before it, states made by older versions are bound at first use).
 */
#ifndef RAMPART_MONITOR_BINDING_H
#define RAMPART_MONITOR_BINDING_H

#include "rampart/rot.h"
#include "slots.h"

/* Set c->binding for c's name and counter index. */
rp_err_t rp_binding_make(rp_rot_t *rot, rp_component_t *c) RP_MUST_CHECK;

/* Check c's binding: RP_OK when it matches; RP_ERR_BAD_SIGNATURE when it does not or is missing
 * (said loudly, with the file): the component is then not installed to nor recovered. */
rp_err_t rp_binding_check(rp_rot_t *rot, const char *state_dir,
                          const rp_component_t *c) RP_MUST_CHECK;

/* Whether bindings are in use in this state directory (S/counter-bindings); before, the states
 * made by older versions are bound once (slots.c), then this is marked. */
bool rp_bindings_in_use(const char *state_dir);
rp_err_t rp_bindings_mark(const char *state_dir) RP_MUST_CHECK;

#endif /* RAMPART_MONITOR_BINDING_H */
