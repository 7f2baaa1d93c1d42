/*
 * The one way Rampart's seccomp filters allow a list of system calls by name: the monitor's own
 * (sandbox.c), the agent's (device/agent/confine.c) and each app's (compartment.c). A name this
 * architecture lacks (open and stat on arm64, say) is simply not there to allow.
 */
#ifndef RAMPART_SECCOMP_ALLOW_H
#define RAMPART_SECCOMP_ALLOW_H

#include <stddef.h>

#include <seccomp.h>

#include "rampart/error.h"

/* SANITIZER_BUILD: an ASan build (tests only), whose LeakSanitizer stops the process with ptrace
 * at exit; a filter allows that much more there, or every exit would be a kill. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_BUILD 1
#endif
#endif

/* Allow each of names[0..n) in ctx, with no condition. 0, or libseccomp's negative errno. */
int rp_seccomp_allow(scmp_filter_ctx ctx, const char *const *names, size_t n);

/* Set no_new_privs, load ctx, and release it (whatever happens). RP_OK, or RP_ERR_IO (said,
 * with who: whose filter). */
rp_err_t rp_seccomp_load(scmp_filter_ctx ctx, const char *who) RP_MUST_CHECK;

#endif /* RAMPART_SECCOMP_ALLOW_H */
