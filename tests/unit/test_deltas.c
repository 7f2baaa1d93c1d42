/*
 * The delta makers (server/device/deltas.c): many requests for one delta at once, from many threads
 * and through two makers on one database (two replicas), make it once; it is kept in the blob store
 * with its SHA-256 and size in the database, and asked again it is not made again. Run with the
 * blobs in the data directory and in the database, on SQLite (unit.deltas) and on a real
 * PostgreSQL (unit.deltas_pg).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "context.h"
#include "deltas.h"
#include "store/blob.h"
#include "store_target.h"

#define IMAGE_SIZE (1024 * 1024)
#define ASKERS 8
#define ASKS 25

static const char from_id[] = "aaaa000000000000000000000000000000000000000000000000000000000001";
static const char to_id[] = "aaaa000000000000000000000000000000000000000000000000000000000002";

struct asker {
    rp_deltas_t *pool;
    pthread_barrier_t *start;
};

static void *ask(void *arg)
{
    struct asker *a = arg;

    pthread_barrier_wait(a->start);
    for (int i = 0; i < ASKS; i++)
        (void)rp_deltas_request(a->pool, from_id, to_id);
    return NULL;
}

static void put_image(rp_blobs_t *b, const char *id, const uint8_t *bytes)
{
    char name[RP_BLOB_NAME_MAX + 1];
    rp_blob_writer_t *w;

    snprintf(name, sizeof(name), "images/%s", id);
    assert_int_equal(rp_blob_put_begin(b, name, &w), RP_OK);
    assert_int_equal(rp_blob_put_write(w, bytes, IMAGE_SIZE), RP_OK);
    assert_int_equal(rp_blob_put_commit(w), RP_OK);
}

static void made_once(rp_blobs_kind_t kind)
{
    static rp_server_t srv; /* (large) */
    struct rt_target t;
    rp_store_t *s;
    rp_blobs_t *b;
    rp_deltas_t *pools[2];
    pthread_t threads[ASKERS];
    struct asker askers[ASKERS];
    pthread_barrier_t start;
    uint8_t *img = malloc(IMAGE_SIZE);
    char sha[65], hex[65], name[RP_BLOB_NAME_MAX + 1];
    uint64_t size = 0, blob_size = 0;

    assert_non_null(img);
    assert_int_equal(rt_target_make(&t), 0);
    memset(&srv, 0, sizeof(srv));
    snprintf(srv.data_dir, sizeof(srv.data_dir), "%s", t.dir);
    snprintf(srv.database, sizeof(srv.database), "%s", t.target);
    srv.blobs = kind;
    assert_int_equal(rp_server_store_open(&srv, &s), RP_OK);
    assert_int_equal(rp_server_blobs_open(&srv, s, &b), RP_OK);
    for (size_t i = 0; i < IMAGE_SIZE; i++)
        img[i] = (uint8_t)(i * 2654435761u >> 13);
    put_image(b, from_id, img);
    for (size_t i = 0; i < IMAGE_SIZE; i += 10000)
        img[i] ^= 0x5a; /* 1 byte in 10,000 changed */
    put_image(b, to_id, img);
    assert_int_equal(rp_store_delta_get(s, from_id, to_id, sha, &size), RP_ERR_NOT_FOUND);
    /* what a maker cut dead before its row left: other bytes under the name, which the delta
     * made replaces (its row says the hash of the bytes kept) */
    {
        rp_blob_writer_t *w;
        rp_blob_name_delta(from_id, to_id, name);
        assert_int_equal(rp_blob_put_begin(b, name, &w), RP_OK);
        assert_int_equal(rp_blob_put_write(w, "left over", 9), RP_OK);
        assert_int_equal(rp_blob_put_commit(w), RP_OK);
    }

    /* two makers on one database, as two replicas have; every asker at once */
    assert_int_equal(rp_deltas_start(&srv, &pools[0]), RP_OK);
    assert_int_equal(rp_deltas_start(&srv, &pools[1]), RP_OK);
    assert_int_equal(pthread_barrier_init(&start, NULL, ASKERS), 0);
    for (int i = 0; i < ASKERS; i++) {
        askers[i] = (struct asker){pools[i % 2], &start};
        assert_int_equal(pthread_create(&threads[i], NULL, ask, &askers[i]), 0);
    }
    for (int i = 0; i < ASKERS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    rp_deltas_drain(pools[0]);
    rp_deltas_drain(pools[1]);
    assert_int_equal(rp_deltas_made(pools[0]) + rp_deltas_made(pools[1]), 1);

    /* kept: the blob, its hash and size */
    assert_int_equal(rp_store_delta_get(s, from_id, to_id, sha, &size), RP_OK);
    rp_blob_name_delta(from_id, to_id, name);
    assert_int_equal(rp_blob_stat(b, name, &blob_size), RP_OK);
    assert_int_equal(blob_size, size);
    assert_true(size > 0 && size < IMAGE_SIZE / 20);
    assert_int_equal(rp_blob_sha256_hex(b, name, hex), RP_OK);
    assert_string_equal(hex, sha);

    /* asked again later: made already */
    assert_true(rp_deltas_request(pools[0], from_id, to_id));
    rp_deltas_drain(pools[0]);
    assert_int_equal(rp_deltas_made(pools[0]) + rp_deltas_made(pools[1]), 1);

    rp_deltas_stop(pools[0]);
    rp_deltas_stop(pools[1]);
    pthread_barrier_destroy(&start);
    rp_blobs_close(b);
    rp_store_close(s);
    rt_target_remove(&t);
    free(img);
}

static void deltas_made_once_dir(void **state)
{
    (void)state;
    if (rt_pg_uri() != NULL)
        skip(); /* the directory's case runs on SQLite's pass */
    made_once(RP_BLOBS_DIR);
}

static void deltas_made_once_database(void **state)
{
    (void)state;
    made_once(RP_BLOBS_DATABASE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deltas_made_once_dir),
        cmocka_unit_test(deltas_made_once_database),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
