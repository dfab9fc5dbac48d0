/* batch_pool.h — a stream's blocks of freed batches, handed to its next batches.
 *
 * A batch's block is megabytes at most and written once from end to end; in a fresh block every
 * 4 KiB page is a page fault and a page cleared by the kernel, which was the largest cost after
 * reading numbers (docs/benchmarks.md). The allocator rarely gives a fetcher thread back the
 * block the reader freed: the reader frees it after that thread has allocated the next chunk's
 * memory, so its heap creeps upwards into fresh pages. So ddstream_batch_free hands a stream's
 * block back to the stream's pool, and the stream's next batch of about the same size takes it,
 * already faulted in.
 *
 * A batch may outlive its stream (ddstream_batch_free after ddstream_close, from any thread):
 * every batch made from the pool holds a reference to it, as does the stream until
 * dds_batch_pool_close; the last one frees it. Closing frees the kept blocks and keeps no more.
 * Kept memory is bounded (DDS_BATCH_POOL_MAX_BLOCKS blocks, max_bytes in all). In a child made
 * by fork() the pool (the parent's copy, whose lock another thread may have held) is never
 * touched: a block freed there is freed directly, and the pool is left, as the stream is. */
#ifndef DDSTREAM_BATCH_POOL_H
#define DDSTREAM_BATCH_POOL_H

#include <stddef.h>

/* At most this many blocks are kept: a stream's window plus the batch its reader holds. */
#define DDS_BATCH_POOL_MAX_BLOCKS 8
/* The streams' default bound on the bytes kept (an answer of 200 hosts' day is a 13 MB batch). */
#define DDS_BATCH_POOL_MAX_BYTES ((size_t)32 << 20)

typedef struct dds_batch_pool dds_batch_pool;

/* A pool keeping at most max_bytes of blocks; NULL when out of memory. */
dds_batch_pool *dds_batch_pool_new(size_t max_bytes);

/* For a batch about to be made from the pool: takes a reference for it (given back with
 * dds_batch_pool_put), and returns a kept block of at least need bytes and at most twice that,
 * the smallest such (its size in *cap), or NULL when none fits (*cap is 0). */
void *dds_batch_pool_take(dds_batch_pool *p, size_t need, size_t *cap);

/* A pooled batch's block (cap bytes, from dds_big_alloc; may be NULL when the batch could not be
 * made) is given back: kept while the pool is open and within its bounds, else freed. Drops the
 * batch's reference; the last reference frees the pool. Any thread. */
void dds_batch_pool_put(dds_batch_pool *p, void *block, size_t cap);

/* The owner's reference dropped (ddstream_close): the kept blocks are freed, no more are kept. */
void dds_batch_pool_close(dds_batch_pool *p);

#endif
