/*
 * The transport (http.c): HTTPS on libevent's evhttp, a worker per core with its own loop and
 * listener, the TLS identity and session tickets, the connections' limits. For main.c, which
 * starts and stops the workers, and the recorder, which hands written jobs back to a worker's
 * loop. Handlers never include this: what they see of the transport is req.h.
 */
#ifndef RAMPART_SERVER_HTTP_H
#define RAMPART_SERVER_HTTP_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "context.h"
#include "recorder.h"

/* A worker on listen_fd (its own loop, HTTP server and store connection); rp_worker_free undoes
 * it, also after a failure part-way. */
rp_err_t rp_worker_init(rp_worker_t *w, rp_server_t *srv, int listen_fd) RP_MUST_CHECK;
void rp_worker_free(rp_worker_t *w);
/* New connections of w take ctx from now on (a reference is taken; the old one is let go). */
void rp_worker_set_tls(rp_worker_t *w, SSL_CTX *ctx);
/* The service's TLS context from data_dir's identity, its session tickets keyed from master;
 * NULL on failure (logged). */
SSL_CTX *rp_server_tls_context(const char *data_dir, const uint8_t master[RP_MASTER_KEY_LEN]);
/* Wipe the session ticket keys derived so far (at exit). */
void rp_server_tls_forget(void);
/* From the recorder: queue a written job for its worker's loop (thread-safe). */
void rp_worker_complete(rp_worker_t *w, rp_record_job_t *job);

#endif /* RAMPART_SERVER_HTTP_H */
