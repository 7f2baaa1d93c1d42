/*
 * bench/sim: simulated devices attesting against a real rampart-server over TLS, as bench-attest
 * and bench-fleet's storm drive them. Each attestation is the whole flow on a new connection:
 * evidence (a COSE_Sign1 EAT signed with the device's key) bound to that connection's TLS exporter
 * (rampart/attest_binding.h) in one request, or with the nonce flow (nonce_flow) a nonce first,
 * then the evidence for it; the verdict and a certificate.
 * A phase runs `inflight` attestations at once on `nloops` client threads (libevent's HTTP client
 * over OpenSSL, one shared client context); first contact walks over the devices in order (a full
 * TLS handshake each), a resumed phase draws only devices that attested already in this process,
 * each resuming the TLS session of its last attestation. Also what the benches measure around it:
 * the rampart-server they start, and the CPU of processes.
 */
#ifndef RP_BENCH_SIM_H
#define RP_BENCH_SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

struct sim_device {
    EVP_PKEY *key;
    char id[65];
    char *key_b64;        /* the public key, as the device sends it */
    SSL_SESSION *session; /* from its last attestation, resumed at the next */
    pthread_mutex_t lock;
};

/* The devices and the servers a phase runs against. */
struct sim_fleet {
    struct sim_device *devices;
    size_t ndevices, inflight, nloops;
    const int *ports; /* the replicas' ports; the attestations in flight are split between them */
    const pid_t *servers;
    size_t nservers;
    pid_t db_pid; /* PostgreSQL's postmaster (its CPU is counted), or 0 */
    bool nonce_flow; /* a nonce asked for first (two requests), not the evidence bound to its
                      * TLS connection (one request: the default, as the agent does) */
};

struct sim_result {
    double rate, p50, p99, server_cpu, client_cpu, db_cpu, resumed; /* CPU: seconds per pass */
    size_t passed, failed;
};

/* The devices' TLS client context, with ca_file (the service CA) the only anchor; once. */
void sim_init(const char *ca_file);
/* A device with a new P-256 key; its ID is the hash of the key, as the service computes it. */
void sim_device_new(struct sim_device *d);
void sim_device_free(struct sim_device *d);
/* One phase: attestations until `duration` seconds have passed or `max_attestations` have ended
 * (0: no bound), then the ones in flight finish. */
void sim_phase(const struct sim_fleet *f, bool resume, double duration, size_t max_attestations,
               struct sim_result *res);

/* rampart-server (server_bin) on 127.0.0.1 with data directory dir, the database (NULL: SQLite in
 * dir) and threads workers (NULL: one per core), no rate limit; waits until it listens. OUT: port.
 * Its stderr goes to /dev/null. */
pid_t sim_server_start(const char *server_bin, const char *dir, const char *database,
                       const char *threads, int *port);
/* SIGTERM, and wait for it to exit. */
void sim_server_stop(pid_t pid);
/* PostgreSQL's postmaster when the database is a socket directory holding its cluster as
 * tests/tools/pg makes it (host=DIR, DIR/data/postmaster.pid); 0 when unknown. */
pid_t sim_database_pid(const char *database);

double sim_now(void);
int sim_cmp_double(const void *a, const void *b);
/* CPU seconds (user + system) used so far: by a process, by it and its children, by this one. */
double sim_cpu_of(pid_t pid);
double sim_cpu_tree(pid_t pid);
double sim_cpu_self(void);
/* Bytes a process and its children have caused to be written to storage so far. */
double sim_written_tree(pid_t pid);

#endif
