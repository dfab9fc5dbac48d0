/* test_batch_pool.c — a stream's kept batch blocks: a freed batch's block serves the next batch
 * of about its size, the bounds on what is kept, and batches that outlive the pool's owner,
 * freed from other threads (run under ASan, whose leak check sees a pool never freed, and TSan). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_pool.h"
#include "bigalloc.h"
#include "check.h"

/* A pooled v2 batch of rows rows (one series, ungrouped), its value column written throughout. */
static ddstream_batch *pooled(dds_batch_pool *p, size_t rows) {
    ddstream_batch *b = dds_batch_new_value_only(p, NULL, 0, rows, 0, 0, 0);
    if (b != NULL) {
        double *v = dds_batch_columns_of(b).value;
        for (size_t r = 0; r < rows; r++) v[r] = (double)r;
    }
    return b;
}

static void test_freed_block_serves_the_next_batch(void) {
    dds_batch_pool *p = dds_batch_pool_new(DDS_BATCH_POOL_MAX_BYTES);
    CHECK(p != NULL);
    if (p == NULL) return;
    ddstream_batch *a = pooled(p, 1440);
    CHECK(a != NULL);
    const void *where = a;
    ddstream_batch_free(a);
    ddstream_batch *b = pooled(p, 1440); /* the same size: the same block */
    CHECK(b == where);
    ddstream_batch *c = pooled(p, 1440); /* b is alive: nothing kept, a block of its own */
    CHECK(c != NULL && c != b);
    if (b != NULL) {
        /* The reused block is a whole batch again: its header and columns set anew. */
        CHECK_INT(b->length, 1440);
        CHECK(b->value[1439] == 1439.0);
    }
    ddstream_batch_free(b);
    ddstream_batch_free(c);
    dds_batch_pool_close(p);
}

static void test_sizes_kept_blocks_serve(void) {
    dds_batch_pool *p = dds_batch_pool_new(DDS_BATCH_POOL_MAX_BYTES);
    CHECK(p != NULL);
    if (p == NULL) return;
    void *block = dds_big_alloc(100000);
    CHECK(block != NULL);
    size_t cap = 1;
    CHECK(dds_batch_pool_take(p, 100000, &cap) == NULL); /* nothing kept yet */
    CHECK_INT(cap, 0);
    dds_batch_pool_put(p, block, 100000);                /* drops the reference take made */
    CHECK(dds_batch_pool_take(p, 100001, &cap) == NULL); /* too small */
    dds_batch_pool_put(p, NULL, 0);
    CHECK(dds_batch_pool_take(p, 49999, &cap) == NULL); /* more than twice the need */
    dds_batch_pool_put(p, NULL, 0);
    void *again = dds_batch_pool_take(p, 50000, &cap);
    CHECK(again == block);
    CHECK_INT(cap, 100000);
    dds_batch_pool_put(p, again, cap);
    dds_batch_pool_close(p); /* frees the kept block (ASan's leak check) */
}

static void test_bounds(void) {
    /* max_bytes: a block that does not fit is freed, not kept. */
    dds_batch_pool *p = dds_batch_pool_new(150000);
    CHECK(p != NULL);
    if (p == NULL) return;
    size_t cap;
    (void)dds_batch_pool_take(p, 100000, &cap);
    (void)dds_batch_pool_take(p, 100000, &cap);
    dds_batch_pool_put(p, dds_big_alloc(100000), 100000);
    dds_batch_pool_put(p, dds_big_alloc(100000), 100000); /* 200000 > 150000: freed */
    void *one = dds_batch_pool_take(p, 100000, &cap);
    CHECK(one != NULL);
    void *two = dds_batch_pool_take(p, 100000, &cap);
    CHECK(two == NULL);
    dds_batch_pool_put(p, one, 100000);
    dds_batch_pool_put(p, two, 0);
    dds_batch_pool_close(p);

    /* DDS_BATCH_POOL_MAX_BLOCKS blocks at most, however small. */
    p = dds_batch_pool_new(DDS_BATCH_POOL_MAX_BYTES);
    CHECK(p != NULL);
    if (p == NULL) return;
    enum { N = DDS_BATCH_POOL_MAX_BLOCKS + 3 };
    for (int i = 0; i < N; i++) (void)dds_batch_pool_take(p, 4096, &cap);
    for (int i = 0; i < N; i++) dds_batch_pool_put(p, dds_big_alloc(4096), 4096);
    void *got[N];
    int kept = 0;
    for (int i = 0; i < N; i++) {
        got[i] = dds_batch_pool_take(p, 4096, &cap);
        kept += got[i] != NULL;
    }
    CHECK_INT(kept, DDS_BATCH_POOL_MAX_BLOCKS);
    for (int i = 0; i < N; i++) dds_batch_pool_put(p, got[i], 4096);
    dds_batch_pool_close(p);
}

static void *free_batches(void *arg) {
    ddstream_batch **bs = arg;
    for (int i = 0; i < 4; i++) ddstream_batch_free(bs[i]);
    return NULL;
}

static void test_batches_outlive_the_owner(void) {
    /* Closed with batches out: they stay valid, and the last one freed (from another thread)
     * frees the pool. */
    dds_batch_pool *p = dds_batch_pool_new(DDS_BATCH_POOL_MAX_BYTES);
    CHECK(p != NULL);
    if (p == NULL) return;
    ddstream_batch *bs[4];
    for (int i = 0; i < 4; i++) bs[i] = pooled(p, 5000 + (size_t)i);
    ddstream_batch *kept = pooled(p, 100);
    ddstream_batch_free(kept); /* kept by the pool: freed by the close */
    dds_batch_pool_close(p);
    for (int i = 0; i < 4; i++) CHECK(bs[i] != NULL && bs[i]->value[4999] == 4999.0);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, free_batches, bs), 0);
    pthread_join(t, NULL);
}

/* Fetchers and a reader at once: batches made on two threads, freed on a third, the owner
 * closing midway. */
typedef struct shared {
    dds_batch_pool *p;
    pthread_mutex_t mu;
    ddstream_batch *out[64];
    size_t made, freed, wrong; /* wrong: batches whose values were not theirs */
} shared;

static void *maker(void *arg) {
    shared *s = arg;
    for (;;) {
        ddstream_batch *b = pooled(s->p, 2000);
        pthread_mutex_lock(&s->mu);
        if (s->made == 64 || b == NULL) {
            pthread_mutex_unlock(&s->mu);
            ddstream_batch_free(b);
            return NULL;
        }
        s->out[s->made++] = b;
        pthread_mutex_unlock(&s->mu);
    }
}

static void *reader(void *arg) {
    shared *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        ddstream_batch *b = s->freed < s->made ? s->out[s->freed++] : NULL;
        int done = s->freed == 64;
        s->wrong += b != NULL && (b->length != 2000 || b->value[1999] != 1999.0);
        pthread_mutex_unlock(&s->mu);
        ddstream_batch_free(b);
        if (done) return NULL;
    }
}

static void test_threads(void) {
    shared s;
    memset(&s, 0, sizeof s);
    s.p = dds_batch_pool_new(DDS_BATCH_POOL_MAX_BYTES);
    CHECK(s.p != NULL);
    if (s.p == NULL) return;
    pthread_mutex_init(&s.mu, NULL);
    pthread_t m1, m2, r;
    int started = pthread_create(&m1, NULL, maker, &s) == 0;
    started += pthread_create(&m2, NULL, maker, &s) == 0;
    started += pthread_create(&r, NULL, reader, &s) == 0;
    CHECK_INT(started, 3);
    pthread_join(m1, NULL);
    pthread_join(m2, NULL);
    dds_batch_pool_close(s.p); /* the reader may still be freeing */
    pthread_join(r, NULL);
    CHECK_INT(s.freed, 64);
    CHECK_INT(s.wrong, 0);
    pthread_mutex_destroy(&s.mu);
}

int main(int argc, char **argv) {
    (void)argc;
    test_freed_block_serves_the_next_batch();
    test_sizes_kept_blocks_serve();
    test_bounds();
    test_batches_outlive_the_owner();
    test_threads();
    return check_report(argv[0]);
}
