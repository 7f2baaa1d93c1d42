/*
 * Reading app images without parsing them here: the app supervisor asks rampart-unpack
 * (device/unpack/main.c), a confined child running as its own unprivileged user, for an image's
 * manifest or its extracted tree, or for an update metadata document's fields (the monitor has
 * verified its signatures; the child reads its JSON). This header is the protocol between the two;
 * unpack.c is the supervisor's side. What comes back is checked as if it came from the image
 * itself: the manifest comes in its binary form, every field held to the parser's rules
 * (rp_manifest_decode, manifest.h), the tree is taken over by root before it is used, and anything
 * else (a crash, a deadline, a malformed answer) refuses the app.
 */
#ifndef RAMPART_MONITOR_UNPACK_H
#define RAMPART_MONITOR_UNPACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rampart/apptree.h"
#include "rampart/error.h"
#include "rampart/manifest.h"
#include "rampart/metadata.h"
#include "rampart/netaddrs.h"

#define RP_UNPACK_UID 0x7dffffffu /* the child's uid and gid: just below the apps' (apps.h) */
#define RP_BROKER_UID 0x7dfffffeu /* the app broker's, its own: the kernel counts per user */
#define RP_BROKER_NOFILE 2048     /* the broker's RLIMIT_NOFILE: its descriptors, and in flight */
#define RP_UNPACK_TREE "tree"     /* what extract makes in its staging directory */
#define RP_UNPACK_WHY_MAX 255     /* a refusal's reason, on the child's stderr */
#define RP_UNPACK_SECONDS 60      /* the child's deadline (and its CPU seconds) */
#define RP_UNPACK_RESOLVE_SECONDS 15 /* the deadline of a resolution (every name of an app) */
#define RP_UNPACK_ENVELOPE 0 /* rp_unpack_metadata's kind for an older version's JSON envelope */
#define RP_UNPACK_ENVELOPE_MAX (64 * 1024) /* its signed binary form, answered, at most */
#define RP_UNPACK_TREE_BYTES_MAX RP_APPTREE_BYTES_MAX /* an extracted tree, at most */

/* The manifest of the payload [off, off + len) of slot_fd. OUT: *m; *is_tree: false for a
 * single-file image (then *m is the empty manifest of component, rp_manifest_legacy). */
rp_err_t rp_unpack_manifest(int slot_fd, uint64_t off, uint64_t len, const char *component,
                            rp_manifest_t *m, bool *is_tree, char *why, size_t cap) RP_MUST_CHECK;

/* Extract the payload's tree as dest (made here: it must not exist; root's, read-only, durable).
 * A single-file image: *is_tree false, *m as above, and nothing is made. */
rp_err_t rp_unpack_extract(int slot_fd, uint64_t off, uint64_t len, const char *component,
                           const char *dest, rp_manifest_t *m, bool *is_tree, char *why,
                           size_t cap) RP_MUST_CHECK;

/* The metadata payload of payload_fd (its first len bytes, at most RP_MD_MAX), read as kind by
 * rampart-unpack: OUT: out[0..*n), its answer, the document's binary form NOT yet checked (the
 * monitor decodes it: rp_md_doc_decode). kind RP_UNPACK_ENVELOPE: payload_fd holds a JSON
 * envelope an older version kept, answered in its signed binary form, NOT yet checked (the monitor
 * decodes it, rp_md_signed_decode, and verifies its signatures). A refusal: RP_ERR_MALFORMED, why
 * says why. */
rp_err_t rp_unpack_metadata(int payload_fd, size_t len, int kind, uint8_t *out, size_t cap,
                            size_t *n, char *why, size_t wcap) RP_MUST_CHECK;

/* The IPv4 addresses of names[0..n) (1 to RP_NETADDRS_NAMES_MAX, an app's allowed host names),
 * resolved by rampart-unpack (the one at helper, a path; NULL: beside this program) within
 * RP_UNPACK_RESOLVE_SECONDS, so that no DNS answer is parsed with privilege. OUT: out[0..*len),
 * its answer, the addresses' binary form NOT yet checked (the network policy decodes it:
 * rp_netaddrs_decode). A failure (a crash, the deadline, an answer outside the protocol): an error,
 * why says what; component names the app in the log. The network policy's resolver
 * (rp_netpolicy_resolve_fn). */
rp_err_t rp_unpack_resolve(void *helper, const char *component, const char *const *names, size_t n,
                           uint8_t *out, size_t cap, size_t *len, char *why,
                           size_t wcap) RP_MUST_CHECK;

/* In a child about to run a confined helper (rampart-unpack): become the unpack
 * user (no groups, no capability), close every descriptor from keep on, die with the parent, and
 * exec helper with argv and an empty environment. Never returns (126: the user cannot be had;
 * 127: no exec). */
void rp_unpack_exec(const char *helper, char *const argv[], int keep) __attribute__((noreturn));

/* The path of the program name beside this one (the monitor's helpers live beside it). */
rp_err_t rp_unpack_beside(const char *name, char *out, size_t cap) RP_MUST_CHECK;

/* Remove a tree made by rp_unpack_extract (or a staging directory it left); RP_OK if absent. */
rp_err_t rp_unpack_remove(const char *path) RP_MUST_CHECK;

/* Start the app broker (`rampart-unpack broker`, device/broker/broker.h), confined as the unpack
 * children are but as its own user (RP_BROKER_UID: the descriptors it has sent and an app has not
 * read count against that user's RLIMIT_NOFILE, RP_BROKER_NOFILE, and no other process's use of
 * that user's budget is its), with sock (its end of its socket to the monitor) at its descriptor 3
 * and stderr the supervisor's. Its pid (the caller reaps it), or -1. */
pid_t rp_unpack_broker(int sock);

#endif /* RAMPART_MONITOR_UNPACK_H */
