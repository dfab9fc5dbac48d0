/*
 * batch.c — the memory of a ddstream_batch.
 *
 * A batch is one aligned allocation laid out as
 *     [block header | timestamps | avg | min | max | sum | value | query | series |
 *      series_query | tag pointers | tag text]
 * (value, query and series_query only in batches of streams that have them; in a v2 batch,
 * whose rows have one value each, avg, min, max and sum are one all-NaN column)
 * so that freeing it is one free() whatever the caller's language does with it, and so that the
 * Arrow export can hand columns out as buffers without copying: every column starts on a
 * DDS_BATCH_ALIGN boundary and is zero-padded up to the next one.
 */
#include "batch.h"

#include "batch_pool.h"
#include "bigalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch_block {
    ddstream_batch pub; /* first member: a ddstream_batch * is the block's own address */
    char *tag_text;     /* tag_cap bytes; byte 0 is the "" every slot starts as */
    size_t tag_cap;
    size_t tag_used;
    dds_batch_pool *pool; /* where ddstream_batch_free gives the block back; NULL: free() */
    size_t block_cap;     /* the block's size, for the pool */
} batch_block;

static int add_size(size_t *acc, size_t n) {
    if (n > SIZE_MAX - *acc) return 0;
    *acc += n;
    return 1;
}

static int round_up(size_t *v) {
    size_t r = *v % DDS_BATCH_ALIGN;
    return r == 0 || add_size(v, DDS_BATCH_ALIGN - r);
}

/*
 * Reserve a column of n elements of elem bytes at *off. A 0-row column still gets one aligned
 * unit, so its pointer is non-NULL and points into the block (Arrow and numpy both accept it).
 */
static int reserve(size_t *off, size_t n, size_t elem, size_t *at, size_t *used) {
    if (n > SIZE_MAX / elem) return 0;
    size_t bytes = n * elem;
    *used = bytes;
    if (bytes == 0) bytes = DDS_BATCH_ALIGN;
    if (!round_up(&bytes)) return 0;
    *at = *off;
    return add_size(off, bytes);
}

ddstream_batch *dds_batch_new(size_t rows, size_t series_count, size_t tag_bytes, int grouped) {
    return dds_batch_new_in(NULL, 0, rows, series_count, tag_bytes, grouped);
}

ddstream_batch *dds_batch_new_in(void *block, size_t block_cap, size_t rows, size_t series_count,
                                 size_t tag_bytes, int grouped) {
    return dds_batch_new_shaped(block, block_cap, rows, series_count, tag_bytes, grouped, 0, 0);
}

/* stats_shared: avg, min, max and sum are one column (the caller fills it with NaN once). */
static ddstream_batch *new_batch(dds_batch_pool *pool, void *block, size_t block_cap, size_t rows,
                                 size_t series_count, size_t tag_bytes, int grouped, int with_query,
                                 int with_value, int stats_shared) {
    enum { TS, AVG, MIN, MAX, SUM, VALUE, QUERY, SERIES, SERIES_QUERY, TAGS, NCOL };
    size_t at[NCOL] = {0}, used[NCOL] = {0}, end[NCOL] = {0};
    int own = !stats_shared;
    int present[NCOL] = {
        1, 1, own, own, own, with_value, with_query, grouped, grouped && with_query, grouped};
    size_t count[NCOL] = {rows, rows, rows, rows,         rows,
                          rows, rows, rows, series_count, series_count};
    size_t elem[NCOL] = {sizeof(int64_t), sizeof(double), sizeof(double),  sizeof(double),
                         sizeof(double),  sizeof(double), sizeof(int32_t), sizeof(int32_t),
                         sizeof(int32_t), sizeof(char *)};
    size_t off = sizeof(batch_block);
    if (!round_up(&off)) return NULL;
    int ok = 1;
    for (int c = TS; c < NCOL && ok; c++) {
        if (!present[c]) continue;
        ok = reserve(&off, count[c], elem[c], &at[c], &used[c]);
        end[c] = off;
    }
    size_t text_at = off;
    size_t text_cap = 1; /* the shared "" */
    if (ok && grouped) ok = add_size(&text_cap, tag_bytes);
    ok = ok && add_size(&off, text_cap) && round_up(&off);
    if (!ok) {
        free(block);
        return NULL;
    }

    batch_block *blk;
    size_t kept_cap = 0;
    void *kept = pool ? dds_batch_pool_take(pool, off, &kept_cap) : NULL;
    if (kept != NULL) {
        free(block); /* a kept block's pages are already there: better than a spare's */
        blk = kept;
        block_cap = kept_cap;
    } else if (block != NULL && block_cap >= off && (uintptr_t)block % DDS_BATCH_ALIGN == 0) {
        blk = block;
        dds_big_trim(block, off, block_cap);
    } else {
        free(block);
        blk = dds_big_alloc(off); /* off is a multiple of DDS_BATCH_ALIGN (64) */
        block_cap = off;
    }
    if (blk == NULL) {
        if (pool) dds_batch_pool_put(pool, NULL, 0); /* the reference taken for this batch */
        return NULL;
    }
    char *base = (char *)blk;
    memset(blk, 0, sizeof *blk);
    blk->pool = pool;
    blk->block_cap = block_cap;
    /* Zero the padding after each column: Arrow consumers may read whole aligned words. */
    for (int c = 0; c < NCOL; c++)
        if (present[c]) memset(base + at[c] + used[c], 0, end[c] - at[c] - used[c]);

    ddstream_batch *b = &blk->pub;
    b->struct_size = sizeof(ddstream_batch);
    b->length = rows;
    b->timestamps = (const int64_t *)(void *)(base + at[TS]);
    b->avg = (const double *)(void *)(base + at[AVG]);
    b->min = (const double *)(void *)(base + at[own ? MIN : AVG]);
    b->max = (const double *)(void *)(base + at[own ? MAX : AVG]);
    b->sum = (const double *)(void *)(base + at[own ? SUM : AVG]);
    b->grouped = grouped ? 1 : 0;
    if (with_value) b->value = (const double *)(void *)(base + at[VALUE]);
    if (with_query) b->query = (const int32_t *)(void *)(base + at[QUERY]);
    if (grouped && with_query) b->series_query = (const int32_t *)(void *)(base + at[SERIES_QUERY]);
    blk->tag_text = base + text_at;
    blk->tag_text[0] = '\0';
    blk->tag_cap = text_cap;
    blk->tag_used = 1;
    if (grouped) {
        b->series = (const int32_t *)(void *)(base + at[SERIES]);
        char **slots = (char **)(void *)(base + at[TAGS]);
        for (size_t i = 0; i < series_count; i++) slots[i] = blk->tag_text;
        b->series_tags = (const char *const *)slots;
        b->series_count = series_count;
    }
    return b;
}

ddstream_batch *dds_batch_new_shaped(void *block, size_t block_cap, size_t rows,
                                     size_t series_count, size_t tag_bytes, int grouped,
                                     int with_query, int with_value) {
    return new_batch(NULL, block, block_cap, rows, series_count, tag_bytes, grouped, with_query,
                     with_value, 0);
}

ddstream_batch *dds_batch_new_value_only(dds_batch_pool *pool, void *block, size_t block_cap,
                                         size_t rows, size_t series_count, size_t tag_bytes,
                                         int grouped) {
    return new_batch(pool, block, block_cap, rows, series_count, tag_bytes, grouped, 1, 1, 1);
}

dds_batch_columns dds_batch_columns_of(ddstream_batch *b) {
    /* The builder owns the block: casting const away here is writing to our own allocation. */
    dds_batch_columns c;
    c.timestamps = (int64_t *)(uintptr_t)b->timestamps;
    c.avg = (double *)(uintptr_t)b->avg;
    c.min = (double *)(uintptr_t)b->min;
    c.max = (double *)(uintptr_t)b->max;
    c.sum = (double *)(uintptr_t)b->sum;
    c.series = (int32_t *)(uintptr_t)b->series;
    c.series_tags = (char **)(uintptr_t)b->series_tags;
    c.value = (double *)(uintptr_t)b->value;
    c.query = (int32_t *)(uintptr_t)b->query;
    c.series_query = (int32_t *)(uintptr_t)b->series_query;
    return c;
}

int dds_batch_set_tag(ddstream_batch *b, size_t i, const char *tags) {
    batch_block *blk = (batch_block *)b;
    if (b == NULL || tags == NULL || i >= b->series_count || b->series_tags == NULL) return -1;
    size_t n = strlen(tags) + 1;
    if (n > blk->tag_cap - blk->tag_used) return -1;
    char *dst = blk->tag_text + blk->tag_used;
    memcpy(dst, tags, n);
    blk->tag_used += n;
    dds_batch_columns_of(b).series_tags[i] = dst;
    return 0;
}

DDSTREAM_API void ddstream_batch_free(ddstream_batch *batch) {
    /* The whole batch is the one block new_batch allocated, or took from its stream's pool. */
    batch_block *blk = (batch_block *)batch;
    if (blk != NULL && blk->pool != NULL) dds_batch_pool_put(blk->pool, blk, blk->block_cap);
    else free(blk);
}
