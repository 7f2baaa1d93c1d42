/*
 * Unwinding a kept crash (device/monitor/crash.h) into frames an operator can read: the module's
 * build ID and the offset in its own ELF address space. Unprivileged (the agent), with elfutils
 * libdw: the monitor never parses an app's ELF or DWARF. A real unwinder, never a hand-written
 * one: this file only feeds libdw the captured registers, the stack window and the modules'
 * files.
 */
#ifndef RAMPART_AGENT_UNWIND_H
#define RAMPART_AGENT_UNWIND_H

#include <stddef.h>
#include <stdint.h>

#include "crash.h"
#include "rampart/error.h"

#define RP_UNWIND_FRAMES_MAX 64
#define RP_UNWIND_MODULE_MAX 64 /* a frame's module: its file name, at most */

typedef struct rp_frame {
    char build_id[41];                     /* hex; "" when the module has none or is unknown */
    char module[RP_UNWIND_MODULE_MAX + 1]; /* file name; "" when the pc is in no known module */
    uint64_t offset; /* pc less the module's load bias (for a caller: its return address less
                        one, inside the call); the pc itself when no module holds it */
} rp_frame_t;

/*
 * Unwind c's thread. A module's file is opened as the app saw it: /app/... is the app's tree in
 * the state directory (S/apps/COMPONENT/tree, only while it is the image the crash ran:
 * tree.digest), the base system (/usr, /lib, /lib64, /lib32, /bin, /sbin) is the device's own;
 * any other file (the app's /data, /tmp) is not opened. OUT: frames[0..*n), innermost first.
 */
rp_err_t rp_unwind(const char *state_dir, const rp_crash_t *c, rp_frame_t *frames,
                   size_t *n) RP_MUST_CHECK;

/* The host file for path as the app saw it (the rule above). OUT: out. RP_ERR_NOT_FOUND: none. */
rp_err_t rp_unwind_host_path(const char *state_dir, const rp_crash_t *c, const char *path,
                             char *out, size_t cap) RP_MUST_CHECK;

#endif /* RAMPART_AGENT_UNWIND_H */
