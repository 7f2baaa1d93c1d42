/*
 * Allowing system calls by name, and loading a filter (seccomp_allow.h).
 */
#include <string.h>
#include <sys/prctl.h>

#include "rampart/log.h"
#include "seccomp_allow.h"

int rp_seccomp_allow(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    return rc;
}

rp_err_t rp_seccomp_load(scmp_filter_ctx ctx, const char *who)
{
    int rc;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        rp_log_error("seccomp: %s: cannot set no_new_privs", who);
        seccomp_release(ctx);
        return RP_ERR_IO;
    }
    rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        rp_log_error("seccomp: %s: cannot install the filter: %s", who, strerror(-rc));
        return RP_ERR_IO;
    }
    return RP_OK;
}
