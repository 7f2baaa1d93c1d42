/*
 * The recorder: one thread that writes for every worker, with group commit: attestation records,
 * and batches of failure reports with their buckets and threat detection's counts (reports.c).
 * Workers hand it a job and go on serving other connections; it takes whatever has queued up
 * meanwhile, writes all of it in one transaction (one disk sync), and hands each job back to its
 * worker's event loop, which answers the device only then. So a device is never told about a
 * certificate or a report the service could still lose, and the disk sync is paid once per
 * round, not once per request, while no worker thread sits waiting for it. One connection does
 * all of it, so its page cache stays warm.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "context.h"
#include "http.h"
#include "rampart/log.h"
#include "recorder.h"

#define PURGE_EVERY 60 /* seconds between purges of expired spent nonces */
#define CLOCK_SLACK 60 /* seconds two clocks may differ before the log says so */
/* A round's jobs' bytes at most (a job larger still goes alone): a round holds the store's write
 * lock, which the workers' own writes wait for. */
#define SETTLE_KINDS 8 /* kinds of jobs with a settle step */
#define ROUND_BYTES (4u * 1024 * 1024)

struct rp_recorder {
    rp_store_t *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    rp_record_job_t *head, *tail; /* queued, in order */
    size_t queued, bytes;
    bool stop;
    atomic_ullong rounds, jobs;
    atomic_int fail_commits; /* tests: rounds whose commit is made to fail */
    rp_attestation_write_t batch[RP_RECORDER_BATCH_MAX];
    int64_t purged_at;
};

/*
 * Say so when this replica's clock and the database's differ by more than CLOCK_SLACK, and, loudly,
 * when the spent nonces' purge watermark stands ahead of the database's clock by more (the
 * database's clock stepped back, or a watermark raised by a clock ahead under a version before
 * review r9srv's fix): nonce-flow attestations are then refused until real time reaches it, and
 * only `rampart-server nonces reset-watermark` ends that sooner (docs/operations.md "Clocks").
 */
static void clock_check(rp_recorder_t *rec, int64_t now)
{
    int64_t db = 0, below = 0, ahead = 0;

    if (rp_store_clock(rec->store, &db) != RP_OK)
        return; /* the database's failures are told where they matter */
    if (now - db > CLOCK_SLACK || db - now > CLOCK_SLACK)
        rp_log_warn("this replica's clock is %+llds off the database's: keep the replicas' "
                    "clocks synchronised (NTP; docs/operations.md \"Clocks\")",
                    (long long)(now - db));
    if (rp_store_nonces_watermark(rec->store, &below, &ahead) == RP_OK && ahead > CLOCK_SLACK)
        rp_log_error("the spent nonces' purge watermark stands %llds ahead of the database's "
                     "clock (a clock that ran ahead and was put right): every attestation with a "
                     "nonce that expires before it is refused as nonce_replayed until then; once "
                     "every replica's clock is right, run `rampart-server nonces reset-watermark` "
                     "(docs/operations.md \"Clocks\")",
                     (long long)ahead);
}

/* A job of another kind than an attestation record, in a savepoint of its own. */
static rp_err_t store_job(rp_recorder_t *rec, rp_record_job_t *j)
{
    rp_err_t err = rp_store_group_begin(rec->store);

    if (err != RP_OK)
        return err;
    return rp_store_group_end(rec->store, j->store(j, rec->store));
}

/* Settle first's kind: every job of the round from first on that shares its settle and stored,
 * at once, in a savepoint. */
static void settle(rp_recorder_t *rec, rp_record_job_t *first)
{
    rp_record_job_t *last = first;

    for (rp_record_job_t *j = first->next; j != NULL; j = j->next)
        if (j->settle == first->settle && j->store != NULL && j->err == RP_OK) {
            last->settle_next = j;
            last = j;
        }
    last->settle_next = NULL;
    if (rp_store_group_begin(rec->store) != RP_OK) {
        rp_log_error("cannot settle a round's writes");
        return;
    }
    first->settle(first, rec->store);
    if (rp_store_group_end(rec->store, RP_OK) != RP_OK)
        rp_log_error("cannot keep what a round's writes settled");
}

/* Write a round (a list of n jobs) in one transaction and hand each back to its worker: only
 * once it is committed, or failed as a whole (then every job has the commit's error: nothing of
 * the round is stored, and nothing is acknowledged). */
static void write_batch(rp_recorder_t *rec, rp_record_job_t *jobs, size_t n)
{
    int64_t now = (int64_t)time(NULL);
    rp_record_job_t *j = jobs, *next;
    size_t i = 0;
    rp_err_t err, aerr = RP_OK;
    void (*settled[SETTLE_KINDS])(rp_record_job_t *, rp_store_t *);
    size_t nsettled = 0;

    /* First, once a minute, in a transaction of its own (before the round, which is handed back
     * done), the spent nonces' purge, with a few minutes' margin so that a clock stepping back a
     * little cannot bring a purged nonce back to life. The purge raises the watermark below which
     * every replica refuses a nonce as spent, whatever its own clock, to the latest expiry it
     * deleted; the database's clock bounds what any replica deletes (rp_store_nonces_purge). */
    if (now - rec->purged_at >= PURGE_EVERY) {
        int64_t watermark = 0;
        if (rp_store_nonces_purge(rec->store, now - RP_NONCE_PURGE_MARGIN, &watermark) != RP_OK)
            rp_log_warn("cannot purge spent nonces (will retry)");
        else
            clock_check(rec, now);
        rec->purged_at = now;
    }
    err = rp_store_group_begin(rec->store);
    for (j = jobs; j != NULL; j = j->next)
        if (j->store == NULL)
            rec->batch[i++] = j->write;
    if (err == RP_OK && i > 0)
        aerr = rp_store_attestations_record(rec->store, rec->batch, i);
    for (j = jobs; j != NULL; j = j->next)
        if (j->store != NULL)
            j->err = err == RP_OK ? store_job(rec, j) : err;
    /* Each kind of job settled once (there are few kinds: the first SETTLE_KINDS). */
    for (j = jobs; err == RP_OK && j != NULL; j = j->next) {
        size_t k = 0;
        if (j->store == NULL || j->settle == NULL || j->err != RP_OK)
            continue;
        while (k < nsettled && settled[k] != j->settle)
            k++;
        if (k < nsettled || nsettled == SETTLE_KINDS)
            continue;
        settled[nsettled++] = j->settle;
        settle(rec, j);
    }
    if (err == RP_OK) {
        int fail = atomic_load(&rec->fail_commits);
        if (fail > 0)
            atomic_store(&rec->fail_commits, fail - 1);
        err = rp_store_group_end(rec->store, fail > 0 ? RP_ERR_IO : RP_OK);
    }
    if (err != RP_OK)
        rp_log_error("cannot commit %zu write(s): %s (none is acknowledged)", n, rp_strerror(err));
    atomic_fetch_add(&rec->rounds, 1);
    atomic_fetch_add(&rec->jobs, n);
    i = 0;
    for (j = jobs; j != NULL; j = next) {
        next = j->next;
        if (j->store == NULL) {
            j->write.as = rec->batch[i++].as; /* a->id, passed, reason are set in place */
            j->err = err != RP_OK ? err : aerr;
        } else if (err != RP_OK) {
            j->err = err;
        }
        rp_worker_complete(j->worker, j);
    }
}

static void *recorder_main(void *arg)
{
    rp_recorder_t *rec = arg;
    rp_record_job_t *jobs, *last;
    size_t n, bytes;

    pthread_mutex_lock(&rec->lock);
    for (;;) {
        while (rec->head == NULL && !rec->stop)
            pthread_cond_wait(&rec->wake, &rec->lock);
        if (rec->head == NULL)
            break; /* stopping, and everything submitted is written */
        /* Take up to a round from the front of the queue. */
        jobs = last = rec->head;
        bytes = last->bytes;
        for (n = 1; n < RP_RECORDER_BATCH_MAX && last->next != NULL &&
                    bytes + last->next->bytes <= ROUND_BYTES;
             n++) {
            last = last->next;
            bytes += last->bytes;
        }
        rec->head = last->next;
        if (rec->head == NULL)
            rec->tail = NULL;
        rec->queued -= n;
        rec->bytes -= bytes;
        last->next = NULL;
        pthread_mutex_unlock(&rec->lock);
        write_batch(rec, jobs, n);
        pthread_mutex_lock(&rec->lock);
    }
    pthread_mutex_unlock(&rec->lock);
    return NULL;
}

rp_err_t rp_recorder_start(const rp_server_t *srv, rp_recorder_t **out)
{
    rp_recorder_t *rec = calloc(1, sizeof(*rec));
    rp_err_t err;

    *out = NULL;
    if (rec == NULL)
        return RP_ERR_NO_MEMORY;
    err = rp_server_store_open(srv, &rec->store);
    if (err == RP_OK && (err = rp_store_writer_tune(rec->store)) != RP_OK)
        rp_store_close(rec->store);
    if (err != RP_OK) {
        free(rec);
        return err;
    }
    clock_check(rec, (int64_t)time(NULL));
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
    if (rec->queued < RP_RECORDER_QUEUE_MAX &&
        (job->bytes == 0 || rec->bytes + job->bytes <= RP_RECORDER_QUEUE_BYTES)) {
        if (rec->tail != NULL)
            rec->tail->next = job;
        else
            rec->head = job;
        rec->tail = job;
        rec->queued++;
        rec->bytes += job->bytes;
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

void rp_recorder_counts(rp_recorder_t *rec, unsigned long long *rounds, unsigned long long *jobs)
{
    *rounds = atomic_load(&rec->rounds);
    *jobs = atomic_load(&rec->jobs);
}

void rp_recorder_metrics(rp_recorder_t *rec, struct evbuffer *buf)
{
    unsigned long long rounds, jobs;

    rp_recorder_counts(rec, &rounds, &jobs);
    evbuffer_add_printf(buf,
                        "# HELP rampart_recorder_rounds_total Transactions of the recorder (group "
                        "commit: each holds every write that queued up meanwhile).\n"
                        "# TYPE rampart_recorder_rounds_total counter\n"
                        "rampart_recorder_rounds_total %llu\n"
                        "# HELP rampart_recorder_writes_total Writes (attestation records, report "
                        "batches) in the recorder's transactions.\n"
                        "# TYPE rampart_recorder_writes_total counter\n"
                        "rampart_recorder_writes_total %llu\n",
                        rounds, jobs);
}

void rp_recorder_fail_commits(rp_recorder_t *rec, int n)
{
    atomic_store(&rec->fail_commits, n);
}
