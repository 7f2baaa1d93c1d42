/*
 * The recorder's group commit (server/device/recorder.c), against a real SQLite database: writes that
 * queue up while it is busy are stored together, in one transaction, and settled once (report
 * batches: threat detection counts the round's signals at once); a commit that fails answers every
 * write of its round with the error and keeps nothing of it (no device is told "stored" about
 * what the service could lose). The writes are report batches, through rp_store_reports_put, the
 * call reports.c's jobs make; the worker is a stand-in whose list of handed-back jobs the test
 * reads.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "rampart/log.h"
#include "context.h"
#include "recorder.h"
#include "store.h"

#define DEV "5555555555555555555555555555555555555555555555555555555555555555"

struct tjob {
    rp_record_job_t job; /* first */
    int64_t seq;
    bool gate;   /* holds the recorder inside its round until the test opens the gate */
    int settled; /* on the first job of a settle call: how many jobs it was given */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool entered, open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static char tenant_id[RP_ID_SIZE];
static int settle_calls;

static rp_err_t tjob_store(rp_record_job_t *job, rp_store_t *s)
{
    struct tjob *t = (struct tjob *)job;
    rp_report_put_t put = {.seq = t->seq,
                           .at = 1,
                           .kind = "exit",
                           .component = "",
                           .version = "",
                           .code = "",
                           .reason = "r",
                           .json = "{}"};
    bool stored;
    size_t ns, nd;
    int64_t pruned;

    if (t->gate) {
        pthread_mutex_lock(&gate.lock);
        gate.entered = true;
        pthread_cond_broadcast(&gate.cond);
        while (!gate.open)
            pthread_cond_wait(&gate.cond, &gate.lock);
        pthread_mutex_unlock(&gate.lock);
    }
    return rp_store_reports_put(s, tenant_id, DEV, 1, &put, 1, 0, &stored, &ns, &nd, &pruned);
}

static void tjob_settle(rp_record_job_t *jobs, rp_store_t *s)
{
    int n = 0;

    (void)s;
    for (rp_record_job_t *j = jobs; j != NULL; j = j->settle_next)
        n++;
    ((struct tjob *)jobs)->settled = n;
    settle_calls++; /* the recorder's thread only */
}

static void no_op(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

struct fixture {
    char dir[64];
    rp_store_t *s; /* the test's own connection, to see what is stored */
    rp_recorder_t *rec;
    rp_worker_t w;   /* a stand-in: the recorder hands jobs back to w.recorded_head */
    rp_server_t srv; /* only its database: the SQLite file in dir */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    rp_tenant_t t;

    rp_log_init("test_recorder", RP_LOG_ERROR);
    snprintf(f->dir, sizeof(f->dir), "/tmp/rampart-recorder-XXXXXX");
    if (f == NULL || mkdtemp(f->dir) == NULL || rp_store_open(f->dir, &f->s) != RP_OK ||
        rp_store_tenant_create(f->s, "acme", &t) != RP_OK ||
        rp_store_device_claim(f->s, t.id, DEV, 1) != RP_OK ||
        snprintf(f->srv.data_dir, sizeof(f->srv.data_dir), "%s", f->dir) < 0 ||
        rp_recorder_start(&f->srv, &f->rec) != RP_OK)
        return -1;
    snprintf(tenant_id, sizeof(tenant_id), "%s", t.id);
    f->w.base = event_base_new();
    f->w.recorded = event_new(f->w.base, -1, 0, no_op, NULL);
    if (f->w.base == NULL || f->w.recorded == NULL ||
        pthread_mutex_init(&f->w.recorded_lock, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    rp_recorder_stop(f->rec);
    rp_store_close(f->s);
    event_free(f->w.recorded);
    event_base_free(f->w.base);
    pthread_mutex_destroy(&f->w.recorded_lock);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    free(f);
    return system(cmd) == 0 ? 0 : -1;
}

static struct tjob *job(struct fixture *f, int64_t seq, bool gated)
{
    struct tjob *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    t->seq = seq;
    t->gate = gated;
    t->job.worker = &f->w;
    t->job.store = tjob_store;
    t->job.settle = tjob_settle;
    t->job.bytes = sizeof(*t);
    return t;
}

static void submit(struct fixture *f, struct tjob *t)
{
    assert_true(rp_recorder_submit(f->rec, &t->job));
}

/* Wait (bounded) until the recorder has handed n jobs back to the worker, and take them. */
static void wait_handed_back(struct fixture *f, int n)
{
    struct timespec pause = {0, 1000000};

    for (int i = 0; i < 30000; i++) {
        int k = 0;
        pthread_mutex_lock(&f->w.recorded_lock);
        for (rp_record_job_t *j = f->w.recorded_head; j != NULL; j = j->next)
            k++;
        if (k >= n)
            f->w.recorded_head = NULL;
        pthread_mutex_unlock(&f->w.recorded_lock);
        if (k >= n) {
            assert_int_equal(k, n);
            return;
        }
        nanosleep(&pause, NULL);
    }
    fail_msg("the recorder did not hand %d job(s) back", n);
}

static void wait_entered(void)
{
    pthread_mutex_lock(&gate.lock);
    while (!gate.entered)
        pthread_cond_wait(&gate.cond, &gate.lock);
    pthread_mutex_unlock(&gate.lock);
}

static void open_gate(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.open = true;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
}

static void close_gate(void)
{
    gate.entered = gate.open = false;
}

static void count_row(void *ctx, const rp_report_row_t *row)
{
    (void)row;
    (*(int *)ctx)++;
}

static int stored(struct fixture *f)
{
    int n = 0;

    assert_int_equal(rp_store_reports_list(f->s, tenant_id, DEV, NULL, 0, 100, count_row, &n),
                     RP_OK);
    return n;
}

/* Two batches that arrive while the recorder is busy are stored in one transaction (one commit,
 * one sync), settled in one call, and each handed back stored. */
static void batches_share_one_commit(void **state)
{
    struct fixture *f = *state;
    struct tjob *warm = job(f, 1, false), *g = job(f, 2, true), *a = job(f, 3, false),
                *b = job(f, 4, false);
    unsigned long long r0, j0, r1, j1, c0;

    /* The first round purges spent nonces first (a commit of its own): out of the way. */
    submit(f, warm);
    wait_handed_back(f, 1);
    assert_int_equal(warm->job.err, RP_OK);
    close_gate();
    rp_recorder_counts(f->rec, &r0, &j0);
    c0 = rp_store_commits();
    submit(f, g);
    wait_entered(); /* the recorder is inside g's round: a and b queue up behind it */
    submit(f, a);
    submit(f, b);
    open_gate();
    wait_handed_back(f, 3);
    rp_recorder_counts(f->rec, &r1, &j1);
    assert_int_equal(r1 - r0, 2); /* g's round, then a and b's */
    assert_int_equal(j1 - j0, 3);
    assert_int_equal(rp_store_commits() - c0, 2);
    assert_int_equal(a->settled, 2); /* a and b settled at once */
    assert_int_equal(g->settled, 1);
    assert_true(g->job.err == RP_OK && a->job.err == RP_OK && b->job.err == RP_OK);
    assert_int_equal(stored(f), 4);
    free(warm), free(g), free(a), free(b);
}

/* A round whose commit fails: every write in it is handed back with the error, and nothing of
 * it is stored (its settle step neither); the next round stores again. */
static void failed_commit_fails_the_round(void **state)
{
    struct fixture *f = *state;
    struct tjob *warm = job(f, 1, false), *g = job(f, 2, true), *a = job(f, 3, false),
                *b = job(f, 4, false), *c = job(f, 5, false);

    submit(f, warm);
    wait_handed_back(f, 1);
    close_gate();
    /* g's round and a and b's (queued behind it, together) both fail. */
    rp_recorder_fail_commits(f->rec, 2);
    submit(f, g);
    wait_entered();
    submit(f, a);
    submit(f, b);
    open_gate();
    wait_handed_back(f, 3);
    assert_int_equal(a->settled, 2);
    assert_true(g->job.err != RP_OK && a->job.err != RP_OK && b->job.err != RP_OK);
    assert_int_equal(stored(f), 1); /* warm's alone */
    submit(f, c);
    wait_handed_back(f, 1);
    assert_int_equal(c->job.err, RP_OK);
    assert_int_equal(stored(f), 2);
    free(warm), free(g), free(a), free(b), free(c);
}

/* The queue is bounded by what its jobs hold: one past RP_RECORDER_QUEUE_BYTES is refused (the
 * caller answers 503 with Retry-After), and taken again once the queue has drained. */
static void queue_bounded_by_bytes(void **state)
{
    struct fixture *f = *state;
    struct tjob *g = job(f, 1, true), *big = job(f, 2, false), *more = job(f, 3, false);

    close_gate();
    submit(f, g);
    wait_entered();
    big->job.bytes = RP_RECORDER_QUEUE_BYTES;
    submit(f, big);
    assert_false(rp_recorder_submit(f->rec, &more->job));
    open_gate();
    wait_handed_back(f, 2);
    submit(f, more);
    wait_handed_back(f, 1);
    assert_int_equal(stored(f), 3);
    free(g), free(big), free(more);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(batches_share_one_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_commit_fails_the_round, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_bounded_by_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
