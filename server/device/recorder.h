/*
 * The recorder thread (recorder.c): group commit of attestation records and of other writes
 * handlers hand it (a batch of failure reports), answered on the submitting worker's loop once
 * committed.
 */
#ifndef RAMPART_SERVER_RECORDER_H
#define RAMPART_SERVER_RECORDER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

#include "context.h"
#include "store.h"

/*
 * An attestation record on its way to the disk. The handler fills write (its pointers must stay
 * valid until done), sets worker and done, and submits it; done(job) then runs on the worker's
 * loop, once err (the transaction's result) and write.as say how it went. Handlers embed it in
 * their own state.
 */
struct rp_record_job {
    rp_attestation_write_t write;
    rp_err_t err;
    rp_worker_t *worker;
    void (*done)(rp_record_job_t *job);
    rp_record_job_t *next;
    /* Another write than an attestation's (a batch of failure reports: reports.c). When set, the
     * recorder calls it on its thread with its connection, inside the round's one transaction
     * and in a savepoint of its own (its failure undoes only its part), instead of recording
     * write; err is then what it returned, or the commit's failure. What it must tell once
     * committed (threat.h's news) it keeps in its own state, for done to tell when err is RP_OK. */
    rp_err_t (*store)(rp_record_job_t *job, rp_store_t *s);
    /* Optional, with store: once every job of the round has stored, settle is called once with
     * the round's jobs that share it and stored (a list through settle_next), in the same
     * transaction and a savepoint of its own, for what is cheaper done once for all (threat
     * detection's counts). Its failure is its own to log: their err stays RP_OK. */
    void (*settle)(rp_record_job_t *jobs, rp_store_t *s);
    rp_record_job_t *settle_next;
    size_t bytes; /* memory it holds while it waits, against RP_RECORDER_QUEUE_BYTES */
};

#define RP_RECORDER_QUEUE_MAX 20000 /* records waiting; beyond it, new attestations get 503 */
#define RP_RECORDER_BATCH_MAX 1024  /* records in one transaction */
#define RP_RECORDER_QUEUE_BYTES (64u * 1024 * 1024) /* jobs' bytes waiting; beyond, 503 */

rp_err_t rp_recorder_start(const rp_server_t *srv, rp_recorder_t **rec) RP_MUST_CHECK;
/* Queue a job; false (nothing queued) when RP_RECORDER_QUEUE_MAX are waiting already. */
bool rp_recorder_submit(rp_recorder_t *rec, rp_record_job_t *job);
/* Write everything submitted, hand it back to the workers, and stop. */
void rp_recorder_stop(rp_recorder_t *rec);
/* Rounds written (each one transaction, whatever it held) and jobs in them, for /metrics. */
void rp_recorder_counts(rp_recorder_t *rec, unsigned long long *rounds, unsigned long long *jobs);
void rp_recorder_metrics(rp_recorder_t *rec, struct evbuffer *buf);
/* Tests only: make the next n rounds' commits fail (rolled back, every job answered RP_ERR_IO). */
void rp_recorder_fail_commits(rp_recorder_t *rec, int n);

#endif /* RAMPART_SERVER_RECORDER_H */
