/* batch_pool.c — a stream's kept batch blocks and their references (see batch_pool.h). */
#include "batch_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct kept {
    void *block;
    size_t cap;
} kept;

struct dds_batch_pool {
    pid_t owner_pid; /* see "fork()" in batch_pool.h */
    pthread_mutex_t mu;
    size_t refs; /* the owner's (until closed) and one per batch made from the pool */
    int open;
    size_t max_bytes, bytes;
    size_t count;
    kept blocks[DDS_BATCH_POOL_MAX_BLOCKS];
};

dds_batch_pool *dds_batch_pool_new(size_t max_bytes) {
    dds_batch_pool *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    p->owner_pid = getpid();
    p->refs = 1;
    p->open = 1;
    p->max_bytes = max_bytes;
    return p;
}

static void destroy(dds_batch_pool *p) {
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void *dds_batch_pool_take(dds_batch_pool *p, size_t need, size_t *cap) {
    *cap = 0;
    pthread_mutex_lock(&p->mu);
    p->refs++;
    size_t best = p->count;
    for (size_t i = 0; i < p->count; i++) {
        size_t c = p->blocks[i].cap;
        /* Not more than twice the need: a small batch does not pin a large block. */
        if (c >= need && c / 2 <= need && (best == p->count || c < p->blocks[best].cap)) best = i;
    }
    void *block = NULL;
    if (best < p->count) {
        block = p->blocks[best].block;
        *cap = p->blocks[best].cap;
        p->bytes -= *cap;
        p->blocks[best] = p->blocks[--p->count];
    }
    pthread_mutex_unlock(&p->mu);
    return block;
}

void dds_batch_pool_put(dds_batch_pool *p, void *block, size_t cap) {
    if (getpid() != p->owner_pid) {
        free(block); /* a fork()ed child: the pool is the parent's copy, left alone */
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (block != NULL && p->open && p->count < DDS_BATCH_POOL_MAX_BLOCKS &&
        cap <= p->max_bytes - p->bytes) {
        p->blocks[p->count++] = (kept){block, cap};
        p->bytes += cap;
        block = NULL;
    }
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    free(block);
    if (last) destroy(p);
}

void dds_batch_pool_close(dds_batch_pool *p) {
    if (p == NULL) return;
    kept drop[DDS_BATCH_POOL_MAX_BLOCKS];
    pthread_mutex_lock(&p->mu);
    size_t n = p->count;
    for (size_t i = 0; i < n; i++) drop[i] = p->blocks[i];
    p->count = 0;
    p->bytes = 0;
    p->open = 0;
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++) free(drop[i].block);
    if (last) destroy(p);
}
