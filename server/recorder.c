/*
 * The recorder: one thread that writes attestation records for every worker, with group commit.
 * Workers hand it a job and go on serving other connections; it takes whatever has queued up
 * meanwhile, records all of it in one transaction (one disk sync), and hands each job back to its
 * worker's event loop, which answers the device only then. So a device is never told about a
 * certificate the service could still lose, and the disk sync is paid once per batch, not once
 * per attestation, while no worker thread sits waiting for it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rampart/log.h"
#include "server.h"

#define PURGE_EVERY 60 /* seconds between purges of expired spent nonces */

struct rp_recorder {
    rp_store_t *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    rp_record_job_t *head, *tail; /* queued, in order */
    size_t queued;
    bool stop;
    rp_attestation_write_t batch[RP_RECORDER_BATCH_MAX];
    int64_t purged_at;
};

/* Write up to RP_RECORDER_BATCH_MAX jobs (a list of n) and hand each back to its worker. */
static void write_batch(rp_recorder_t *rec, rp_record_job_t *jobs, size_t n)
{
    int64_t now = (int64_t)time(NULL);
    rp_record_job_t *j = jobs, *next;
    size_t i = 0;
    rp_err_t err;

    for (j = jobs; j != NULL; j = j->next)
        rec->batch[i++] = j->write;
    err = rp_store_attestations_record(rec->store, rec->batch, n);
    i = 0;
    for (j = jobs; j != NULL; j = next) {
        next = j->next;
        j->write.as = rec->batch[i++].as; /* a->id, passed, reason are set in place */
        j->err = err;
        rp_worker_complete(j->worker, j);
    }
    /* A few minutes' margin, so that a clock stepping back a little cannot bring a purged nonce
     * back to life. */
    if (now - rec->purged_at >= PURGE_EVERY) {
        if (rp_store_nonces_purge(rec->store, now - 300) != RP_OK)
            rp_log_warn("cannot purge spent nonces (will retry)");
        rec->purged_at = now;
    }
}

static void *recorder_main(void *arg)
{
    rp_recorder_t *rec = arg;
    rp_record_job_t *jobs, *last;
    size_t n;

    pthread_mutex_lock(&rec->lock);
    for (;;) {
        while (rec->head == NULL && !rec->stop)
            pthread_cond_wait(&rec->wake, &rec->lock);
        if (rec->head == NULL)
            break; /* stopping, and everything submitted is written */
        /* Take up to a batch from the front of the queue. */
        jobs = last = rec->head;
        for (n = 1; n < RP_RECORDER_BATCH_MAX && last->next != NULL; n++)
            last = last->next;
        rec->head = last->next;
        if (rec->head == NULL)
            rec->tail = NULL;
        rec->queued -= n;
        last->next = NULL;
        pthread_mutex_unlock(&rec->lock);
        write_batch(rec, jobs, n);
        pthread_mutex_lock(&rec->lock);
    }
    pthread_mutex_unlock(&rec->lock);
    return NULL;
}

rp_err_t rp_recorder_start(const char *data_dir, rp_recorder_t **out)
{
    rp_recorder_t *rec = calloc(1, sizeof(*rec));
    rp_err_t err;

    *out = NULL;
    if (rec == NULL)
        return RP_ERR_NO_MEMORY;
    err = rp_store_open(data_dir, &rec->store);
    if (err != RP_OK) {
        free(rec);
        return err;
    }
    if (pthread_mutex_init(&rec->lock, NULL) != 0) {
        err = RP_ERR_NO_MEMORY;
    } else if (pthread_cond_init(&rec->wake, NULL) != 0) {
        pthread_mutex_destroy(&rec->lock);
        err = RP_ERR_NO_MEMORY;
    } else if (pthread_create(&rec->thread, NULL, recorder_main, rec) != 0) {
        pthread_cond_destroy(&rec->wake);
        pthread_mutex_destroy(&rec->lock);
        err = RP_ERR_NO_MEMORY;
    }
    if (err != RP_OK) {
        rp_store_close(rec->store);
        free(rec);
        return err;
    }
    *out = rec;
    return RP_OK;
}

bool rp_recorder_submit(rp_recorder_t *rec, rp_record_job_t *job)
{
    bool queued = false;

    job->next = NULL;
    pthread_mutex_lock(&rec->lock);
    if (rec->queued < RP_RECORDER_QUEUE_MAX) {
        if (rec->tail != NULL)
            rec->tail->next = job;
        else
            rec->head = job;
        rec->tail = job;
        rec->queued++;
        queued = true;
        pthread_cond_signal(&rec->wake);
    }
    pthread_mutex_unlock(&rec->lock);
    return queued;
}

void rp_recorder_stop(rp_recorder_t *rec)
{
    if (rec == NULL)
        return;
    pthread_mutex_lock(&rec->lock);
    rec->stop = true;
    pthread_cond_signal(&rec->wake);
    pthread_mutex_unlock(&rec->lock);
    pthread_join(rec->thread, NULL);
    pthread_mutex_destroy(&rec->lock);
    pthread_cond_destroy(&rec->wake);
    rp_store_close(rec->store);
    free(rec);
}
