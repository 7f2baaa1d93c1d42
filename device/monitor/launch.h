/*
 * The app supervisor <-> rampart-launcher protocol (docs/compartments.md, "Enforcement"): the
 * monitor's side is compartment.c, the launcher's device/launcher/main.c. Both are built from this
 * tree together; nothing else speaks it.
 *
 * The monitor clones the compartment's first process C with new user (U1), mount, pid, ipc, uts
 * and net namespaces, maps U1 (the app's host uid and gid to themselves, nothing else: no root
 * in U1), puts C in its
 * cgroups, configures its network, then sends RP_LAUNCH_GO and the spec (one packet,
 * rp_launch_spec_t). C opens the directories the launcher needs (below), becomes the app's uid
 * (with capabilities in U1 alone, ambient) and
 * execs rampart-launcher from the descriptor the monitor opened at its start:
 *
 *   rampart-launcher SYNC LOG NULL CHANNEL TREE ROOT NET DATA BUCKET
 *
 * each a descriptor number (-1: none): the sync socket; the app's log file (read-write, its offset
 * at the end: the launcher alone writes it, draining the app's stdout/stderr pipe into it, cut
 * back and rate-bounded as compartment.h says), /dev/null and its channel to the monitor
 * (compartment.h); O_PATH descriptors of its tree and of run_dir/root (where the new root is
 * attached); NET, the socket of the app's names (below); the detached mount of its storage (the
 * monitor's, -1 without MutableStorage); BUCKET, the record of its log's bucket beside the log
 * (read-write: the launcher alone reads and writes it, lograte.h; -1: none, the log's mtime
 * stands for it).
 * The launcher answers on SYNC: RP_LAUNCH_SECCOMP (the listener, passed), then RP_LAUNCH_READY,
 * or RP_LAUNCH_ERROR; later RP_LAUNCH_APP_READY, RP_LAUNCH_CRASH (the capture in the same
 * packet: rp_launch_send_crash), RP_LAUNCH_WATCHDOG, RP_LAUNCH_LOG_DROPPED, and RP_LAUNCH_EXIT,
 * the last. RP_LAUNCH_LOG_DROPPED comes at most once a run, when the app's log first says it
 * dropped bytes the app wrote faster than its bound (compartment.h; value: how many, at most
 * INT_MAX).
 *
 * The app's ready pipe (its descriptor 3) is the init's: it reads it and keeps the contract's rule
 * (rp_app_poll_ready, app.h: "ready" as the first five bytes, then any write a heartbeat). It
 * sends RP_LAUNCH_APP_READY once, when the app said "ready", and keeps the manifest's
 * WatchdogSeconds itself: an app silent that long after "ready" or its last heartbeat is killed
 * with everything it left (RP_LAUNCH_WATCHDOG first, then its exit). Neither has a field. No
 * byte the app wrote reaches the monitor.
 *
 * NET (a SOCK_SEQPACKET socket; the monitor keeps the other end) carries the addresses of the
 * manifest's allowed names, checked by the monitor (rp_netaddrs_decode), as rp_launch_hosts_t
 * packets: one before "go", then one whenever the monitor's re-resolution changed them. The
 * launcher writes the app's /etc/hosts from them (rp_launch_etc_write, rp_launch_hosts_write): the
 * first before the app starts, the others from its hosts keeper, a child of the init that holds a
 * writable view of the root's /etc and nothing else (device/launcher/main.c). The keeper answers
 * each of its packets with one byte on NET: 0 written, else its errno (rp_compartment_hosts).
 */
#ifndef RAMPART_MONITOR_LAUNCH_H
#define RAMPART_MONITOR_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rampart/manifest.h"
#include "rampart/netaddrs.h"

enum {
    RP_LAUNCH_GO = 1,
    RP_LAUNCH_SECCOMP,
    RP_LAUNCH_READY,
    RP_LAUNCH_ERROR,
    RP_LAUNCH_EXIT,
    RP_LAUNCH_CRASH,
    RP_LAUNCH_APP_READY,
    RP_LAUNCH_WATCHDOG,
    RP_LAUNCH_LOG_DROPPED
};

typedef struct rp_launch_msg {
    int type;
    int value;      /* READY: layers; EXIT: the app's wait status; LOG_DROPPED: bytes; CRASH: the
                     * capture's length (the bytes after this message in its packet; 0: lost, text
                     * says why) */
    int value2;     /* READY: Landlock ABI */
    char text[480]; /* ERROR: why; READY: the layers missing */
} rp_launch_msg_t;

/* What the launcher builds, from the monitor's rp_compartment_spec_t (paths are descriptors). */
typedef struct rp_launch_spec {
    rp_manifest_t manifest;
    char component[RP_COMPONENT_NAME_MAX + 1];
    char version[48];
    uint32_t uid, gid; /* shown inside the app's user namespace (U2); the host's too */
    unsigned without;  /* RP_LAYER_OPTIONAL bits turned off */
    bool debug, no_crash_capture;
} rp_launch_spec_t;

/* The addresses of the manifest's AllowedConnections, by index (an IP entry's are not read): the
 * names' part of the app's /etc/hosts, one NET packet. */
typedef struct rp_launch_hosts {
    rp_netaddrs_t conn[RP_MANIFEST_CONNECTIONS_MAX];
} rp_launch_hosts_t;

#define RP_LAUNCH_ARGS 9 /* the descriptors after argv[0] */
#define RP_LAUNCH_TURNED_OFF " (turned off by the monitor's configuration)"

/* One message, and a descriptor with it (pass_fd -1: none). 0, or -1. */
int rp_launch_send(int fd, const rp_launch_msg_t *m, int pass_fd);

/* 1: a message (and *got_fd, or -1; got_fd may be NULL); 0: the peer is gone; -1: error, or a
 * packet that is not one message (another size; an RP_LAUNCH_CRASH announcing a capture). */
int rp_launch_recv(int fd, rp_launch_msg_t *m, int *got_fd);

/* The init's crash report: RP_LAUNCH_CRASH (value: len) and the capture (crash.h), len > 0
 * bytes, in one packet, so that nothing else can be taken for the capture nor the capture for
 * another report. 0, or -1: nothing sent (then RP_LAUNCH_CRASH with value 0 and why in text says
 * the capture is lost). */
int rp_launch_send_crash(int fd, const uint8_t *capture, size_t len);

/* rp_launch_recv for the init's reports: an RP_LAUNCH_CRASH's capture into capture (cap bytes;
 * *len its length, 0 for any other message or a lost capture). A crash whose value is not the
 * length of the bytes after it, or bytes after another type, is refused (-1). */
int rp_launch_recv_report(int fd, rp_launch_msg_t *m, uint8_t *capture, size_t cap, size_t *len,
                          int *got_fd);

/* Append what to the "; "-separated list missing (truncated to cap). */
void rp_launch_note(char *missing, size_t cap, const char *what);

/* A small file's text (at most cap - 1 bytes), NUL-terminated. 0, or -1. */
int rp_launch_read_text(const char *path, char *out, size_t cap);

/* snprintf for paths: one that does not fit becomes "" (and -1), so that whatever uses it fails
 * rather than acting on a shorter, different path. */
int rp_launch_pathf(char *out, size_t cap, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

/* The app's name files in the directory dir (a descriptor): nsswitch.conf ("hosts: files" alone:
 * no DNS is ever asked), resolv.conf (no server) and hosts (rp_launch_hosts_write). 0, or -1
 * (why). */
int rp_launch_etc_write(int dir, const rp_manifest_t *m, const rp_launch_hosts_t *h, char *why,
                        size_t cap);

/* dir/hosts: localhost, and each allowed name (m's) with its addresses in h, nothing else,
 * replaced whole (a new file renamed over it: a lookup reads the old file or the new one). A name
 * that would not be one field of the file (a blank, '#', a control byte), or a count over
 * RP_NETADDRS_PER_NAME, is refused. 0, or -1 (why). */
int rp_launch_hosts_write(int dir, const rp_manifest_t *m, const rp_launch_hosts_t *h, char *why,
                          size_t cap);

#endif /* RAMPART_MONITOR_LAUNCH_H */
