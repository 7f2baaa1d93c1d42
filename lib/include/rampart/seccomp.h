/*
 * The one way Rampart sets up a seccomp filter: the monitor's own (device/monitor/sandbox.c), the
 * agent's (device/agent/confine.c), rampart-unpack's, rampart-symbolize's, and a compartment's
 * (the app's, its init's and its hosts keeper's: device/launcher/filter.c). A filter is made with
 * its default action and its allow-list (rp_seccomp_new), takes what else its owner adds (more
 * names, rules on arguments), then is loaded and released (rp_seccomp_load). The first step that
 * fails is kept and every later one does nothing, so that the set-up is a list of steps with one
 * check at its end: a filter that cannot be built is never loaded (fail closed).
 */
#ifndef RAMPART_SECCOMP_H
#define RAMPART_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <seccomp.h>

#include "rampart/error.h"

/* SANITIZER_BUILD: an ASan build (tests only), whose LeakSanitizer stops the process with ptrace
 * at exit; a filter of our own processes allows that much more there (rp_seccomp_new, ours), or
 * every exit would be a kill. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_BUILD 1
#endif
#endif

/* A filter being set up. The caller owns it (on its stack); rp_seccomp_load ends it. */
typedef struct rp_seccomp {
    scmp_filter_ctx ctx; /* NULL once loaded or released */
    int rc;              /* the first failed step's negative errno, or 0 */
    bool ours;           /* a process of ours, built as the project is (SANITIZER_BUILD) */
} rp_seccomp_t;

/* A list of names and its length, for the calls below: RP_SECCOMP_NAMES(allowed). */
#define RP_SECCOMP_NAMES(a) (a), (sizeof(a) / sizeof((a)[0]))

/* Start f: default action def; a call of another architecture kills the process; each of
 * names[0..n) allowed. ours: a process of our own code (not an app's), to which a sanitizer
 * build adds the calls its sanitizer makes (at load, after the owner's rules). */
void rp_seccomp_new(rp_seccomp_t *f, uint32_t def, bool ours, const char *const *names, size_t n);

/* Each of names[0..n), with no condition, gets action. A name this libseccomp or this
 * architecture does not know (open and stat on arm64, say) is not there to allow or refuse. */
void rp_seccomp_add(rp_seccomp_t *f, uint32_t action, const char *const *names, size_t n);

/* System call nr gets action when the n (at most 6) argument comparisons that follow hold
 * (struct scmp_arg_cmp: SCMP_A0(...) and the like), as seccomp_rule_add. */
void rp_seccomp_rule(rp_seccomp_t *f, uint32_t action, int nr, unsigned n, ...);

/* End f: unless a step failed, set no_new_privs and load it; release it whatever happens. OUT:
 * *notify_fd (when notify_fd is not NULL and the load succeeds), the filter's listener (negative
 * when it has none). 0, or the first failure's negative errno, said on stderr with who (NULL: not
 * said; the caller says it its own way). */
int rp_seccomp_load(rp_seccomp_t *f, const char *who, int *notify_fd) RP_MUST_CHECK;

/* The check of a filter just entered (a program's --seccomp-selftest): a call none of ours allows
 * (setns, harmless if it ran: an invalid descriptor), which must kill the process. Returns only if
 * it did not: 1, said on stderr. */
int rp_seccomp_selftest(void);

#endif /* RAMPART_SECCOMP_H */
