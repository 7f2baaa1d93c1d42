/*
 * A small client of rampart-monitor for the tests: one request per run, its reply printed.
 *   monitor-call SOCK hello|status|id|recover
 *   monitor-call SOCK sign-tls13 client|server HASH_HEX
 *                                              prints the DER signature in hex
 *   monitor-call SOCK evidence NONCE_HEX OUT   writes the EAT to OUT
 *   monitor-call SOCK install NAME FILE [HEALTH_SECONDS]
 *                                              handed: the trial slot's descriptor is taken (and
 *                                              closed), "handed: DETAIL" printed
 *   monitor-call SOCK mcu-verdict NAME DIGEST_HEX STATE DETAIL [EVIDENCE_HEX]
 *                                              STATE by its name (installed, refused...), the
 *                                              board's evidence when given
 *   monitor-call SOCK targets FILE [HOW]       hands the targets metadata in FILE (a JSON envelope)
 *                                              to TARGETS in its binary form, as the agent does;
 *                                              HOW makes it what a compromised agent might send:
 *                                              json (FILE's bytes as they are), dup (its first
 *                                              signature twice), many (RP_MD_SIGS_MAX + 1
 *                                              signatures), bigsig (a signature of RP_MD_SIG_MAX +
 * 1 bytes), truncated (its last byte cut), other (a payload byte changed after signing)
 *   monitor-call SOCK raw HEX                  sends those bytes as one packet
 *   monitor-call SOCK junk N                   sends N bytes of 0xA5 as one packet
 * Exit: 0 the monitor said yes; 1 it said no ("error N: why"); 3 no answer (the connection was
 * refused or closed: "closed").
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/metadata.h"
#include "rampart/update_state.h"

static uint8_t buf[RP_MON_PACKET_MAX + 4096];

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

/* Send one raw packet; print the decoded reply's status, then whether the monitor closed. */
static int raw(const char *path, const uint8_t *p, size_t n)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    static rp_mon_reply_t r;
    size_t len;
    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0), fd, rc = 3;

    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        send(s, p, n, MSG_NOSIGNAL) != (ssize_t)n) {
        printf("closed\n");
        return 3;
    }
    if (rp_mon_recv(s, buf, sizeof(buf), &len, &fd) == RP_OK &&
        rp_mon_reply_decode(buf, len, &r) == RP_OK) {
        printf("error %u: %s\n", r.status, r.message);
        rc = r.status != 0 ? 1 : 0;
    }
    /* After a refusal the monitor closes the connection. */
    if (rp_mon_recv(s, buf, sizeof(buf), &len, &fd) == RP_ERR_NOT_FOUND)
        printf("closed\n");
    close(s);
    return rc;
}

/* The targets in path, unpacked and encoded as the agent does, then changed as how says (the
 * binary form's layout: rampart/metadata.h). OUT: a memory file's descriptor, or -1. Everything it
 * allocates is freed on every path: under LeakSanitizer a leak ends the program with status 1
 * before stdout is flushed, which a test would read as a refusal with no message. */
static int targets_fd(const char *path, const char *how)
{
    static rp_md_signed_t doc;
    uint8_t *data = NULL, *bin = NULL, *grown = NULL;
    const uint8_t *out = NULL;
    size_t len = 0, n = 0, entry, head;
    int fd = memfd_create("targets", 0), ok = 0;

    if (fd < 0 || rp_read_file(path, RP_MD_MAX, &data, &len) != RP_OK)
        goto done;
    if (strcmp(how, "json") == 0) {
        out = data;
        n = len;
    } else if (rp_md_unpack((const char *)data, len, &doc, NULL, 0) != RP_OK || doc.nsigs < 1) {
        goto done;
    } else {
        doc.nsigs = 1;
        if (strcmp(how, "dup") == 0)
            doc.sigs[doc.nsigs++] = doc.sigs[0];
        if (strcmp(how, "other") == 0)
            doc.payload[doc.len - 1] ^= 1;
        if (rp_md_signed_encode(&doc, &bin, &n) != RP_OK)
            goto done;
        out = bin;
        head = 4 + 2 + 4 + doc.len; /* where the count of signatures is */
        entry = n - head - 1;       /* one signature: keyid, length, bytes */
        if (strcmp(how, "truncated") == 0) {
            n--;
        } else if (strcmp(how, "many") == 0 || strcmp(how, "bigsig") == 0) {
            size_t copies = strcmp(how, "many") == 0 ? RP_MD_SIGS_MAX + 1 : 1;
            size_t extra = strcmp(how, "bigsig") == 0 ? RP_MD_SIG_MAX + 1 - doc.sigs[0].len : 0;
            grown = calloc(1, head + 1 + copies * entry + extra);
            if (grown == NULL)
                goto done;
            memcpy(grown, bin, head);
            grown[head] = (uint8_t)copies;
            for (size_t i = 0; i < copies; i++)
                memcpy(grown + head + 1 + i * entry, bin + head + 1, entry);
            if (extra > 0) { /* its length says RP_MD_SIG_MAX + 1, and as many bytes follow */
                grown[head + 1 + RP_SHA256_LEN] = (uint8_t)((RP_MD_SIG_MAX + 1) >> 8);
                grown[head + 1 + RP_SHA256_LEN + 1] = (uint8_t)(RP_MD_SIG_MAX + 1);
            }
            out = grown;
            n = head + 1 + copies * entry + extra;
        } else if (strcmp(how, "binary") != 0 && strcmp(how, "dup") != 0 &&
                   strcmp(how, "other") != 0) {
            goto done;
        }
    }
    ok = rp_write_all(fd, out, n) == RP_OK;
done:
    free(grown);
    free(bin);
    free(data);
    rp_md_signed_free(&doc);
    if (!ok && fd >= 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    static rp_mon_request_t q;
    static rp_mon_reply_t r;
    const char *sock = argc > 2 ? argv[1] : NULL, *cmd = argc > 2 ? argv[2] : "";
    int fd = -1, slot = -1;
    rp_err_t err;

    q.id = (uint32_t)getpid();
    if (strcmp(cmd, "hello") == 0) {
        q.type = RP_MON_HELLO;
        q.u.hello.min_version = q.u.hello.max_version = RP_MON_VERSION;
    } else if (strcmp(cmd, "status") == 0) {
        q.type = RP_MON_STATUS;
    } else if (strcmp(cmd, "id") == 0) {
        q.type = RP_MON_ID;
    } else if (strcmp(cmd, "recover") == 0) {
        q.type = RP_MON_RECOVER;
    } else if (strcmp(cmd, "sign-tls13") == 0 && argc == 5) {
        q.type = RP_MON_SIGN_TLS13;
        q.u.sign_tls13.side = strcmp(argv[3], "client") == 0   ? RP_TLS13_CLIENT
                              : strcmp(argv[3], "server") == 0 ? RP_TLS13_SERVER
                                                               : 0; /* the monitor refuses it */
        q.u.sign_tls13.hash_len = strlen(argv[4]) / 2;
        if (q.u.sign_tls13.hash_len > RP_TLS13_HASH_MAX ||
            rp_hex_decode(argv[4], strlen(argv[4]), q.u.sign_tls13.hash, q.u.sign_tls13.hash_len) !=
                RP_OK)
            return 2;
    } else if (strcmp(cmd, "evidence") == 0 && argc == 5) {
        q.type = RP_MON_EVIDENCE;
        q.u.evidence.nonce_len = strlen(argv[3]) / 2;
        if (q.u.evidence.nonce_len > RP_EAT_NONCE_MAX ||
            rp_hex_decode(argv[3], strlen(argv[3]), q.u.evidence.nonce, q.u.evidence.nonce_len) !=
                RP_OK)
            return 2;
    } else if (strcmp(cmd, "install") == 0 && (argc == 5 || argc == 6)) {
        q.type = RP_MON_INSTALL;
        snprintf(q.u.install.component, sizeof(q.u.install.component), "%s", argv[3]);
        q.u.install.health_seconds = argc == 6 ? (uint32_t)atoi(argv[5]) : 0;
        fd = open(argv[4], O_RDONLY);
        if (fd < 0)
            return 2;
    } else if (strcmp(cmd, "mcu-verdict") == 0 && (argc == 7 || argc == 8)) {
        rp_update_state_t st;
        size_t n = argc == 8 ? strlen(argv[7]) / 2 : 0;
        if (n > sizeof(q.u.mcu_verdict.evidence) ||
            (n > 0 && rp_hex_decode(argv[7], strlen(argv[7]), q.u.mcu_verdict.evidence, n) !=
                          RP_OK))
            return 2;
        q.u.mcu_verdict.evidence_len = n;
        q.type = RP_MON_MCU_VERDICT;
        snprintf(q.u.mcu_verdict.component, sizeof(q.u.mcu_verdict.component), "%s", argv[3]);
        if (strlen(argv[4]) != 2 * RP_SHA256_LEN ||
            rp_hex_decode(argv[4], strlen(argv[4]), q.u.mcu_verdict.digest, RP_SHA256_LEN) !=
                RP_OK ||
            rp_update_state_parse(argv[5], &st) != RP_OK)
            return 2;
        q.u.mcu_verdict.state = (uint8_t)st;
        snprintf(q.u.mcu_verdict.detail, sizeof(q.u.mcu_verdict.detail), "%s", argv[6]);
    } else if (strcmp(cmd, "targets") == 0 && (argc == 4 || argc == 5)) {
        q.type = RP_MON_TARGETS;
        fd = targets_fd(argv[3], argc == 5 ? argv[4] : "binary");
        if (fd < 0)
            return 2;
    } else if (strcmp(cmd, "raw") == 0 && argc == 4) {
        size_t n = strlen(argv[3]) / 2;
        if (n > sizeof(buf) || rp_hex_decode(argv[3], strlen(argv[3]), buf, n) != RP_OK)
            return 2;
        return raw(sock, buf, n);
    } else if (strcmp(cmd, "junk") == 0 && argc == 4) {
        size_t n = (size_t)atol(argv[3]);
        static uint8_t junk[256 * 1024];
        if (n > sizeof(junk))
            return 2;
        memset(junk, 0xa5, n);
        return raw(sock, junk, n);
    } else {
        fprintf(stderr, "usage: see tests/tools/monitor-call.c\n");
        return 2;
    }
    err = rp_mon_call_fd(sock, &q, fd, &r, &slot, NULL);
    if (slot >= 0)
        close(slot); /* INSTALL's handed trial slot: a dead agent relays nothing */
    if (err != RP_OK) {
        printf("closed (%s)\n", rp_strerror(err));
        return 3;
    }
    if (r.status != RP_OK) {
        printf("error %u: %s\n", r.status, r.message);
        return 1;
    }
    switch (q.type) {
    case RP_MON_HELLO:
        printf("version %u packet_max %u\n", r.u.hello.version, r.u.hello.packet_max);
        break;
    case RP_MON_STATUS:
        for (size_t i = 0; i < r.u.status.n; i++)
            printf("%s %s %c %u %s %s\n", r.u.status.c[i].name,
                   r.u.status.c[i].version[0] ? r.u.status.c[i].version : "-",
                   r.u.status.c[i].active == 0   ? 'a'
                   : r.u.status.c[i].active == 1 ? 'b'
                                                 : '-',
                   r.u.status.c[i].security_counter,
                   rp_update_state_name(r.u.status.c[i].last_result) ?: "?",
                   r.u.status.c[i].last_detail);
        break;
    case RP_MON_ID:
        printf("%s %u ", r.u.id.device_id, r.u.id.rot_kind);
        print_hex(r.u.id.spki, r.u.id.spki_len);
        break;
    case RP_MON_SIGN_TLS13: print_hex(r.u.sign_tls13.sig, r.u.sign_tls13.len); break;
    case RP_MON_EVIDENCE: {
        FILE *f = fopen(argv[4], "wb");
        if (f == NULL || fwrite(r.u.evidence.eat, 1, r.u.evidence.len, f) != r.u.evidence.len ||
            fclose(f) != 0)
            return 2;
        printf("%zu bytes\n", r.u.evidence.len);
        break;
    }
    case RP_MON_INSTALL:
    case RP_MON_MCU_VERDICT:
        printf("%s: %s\n",
               r.u.install.state == RP_UPDATE_HANDED ? "handed"
                                                     : rp_update_state_name(r.u.install.state) ?: "?",
               r.u.install.detail);
        break;
    case RP_MON_RECOVER: printf("unbootable %u\n", r.u.recover.unbootable); break;
    case RP_MON_TARGETS:
        printf("targets version %llu kept\n", (unsigned long long)r.u.targets.version);
        break;
    default: break;
    }
    return 0;
}
