/* batch.h — allocation of ddstream_batch: one owner block per batch, freed by ddstream_batch_free. */
#ifndef DDSTREAM_BATCH_H
#define DDSTREAM_BATCH_H

#include "batch_pool.h"
#include "ddstream.h"

/* Alignment of every column start (Arrow recommends 64-byte aligned, 64-byte padded buffers). */
#define DDS_BATCH_ALIGN 64

/*
 * A batch with room for rows rows, series_count tag strings and tag_bytes bytes of tag text (the
 * sum of strlen(tag) + 1 over the tags to be set), all in one allocation, so ddstream_batch_free
 * is a single free. Every column start is DDS_BATCH_ALIGN-aligned and padded with zeros to a
 * multiple of it; columns are non-NULL even with 0 rows. series (the column) and series_tags are
 * allocated when grouped is nonzero and are NULL otherwise; tag slots start as "".
 * struct_size, length, series_count and grouped are set, everything else is 0 and the column
 * contents are uninitialised. Returns NULL on allocation failure or size overflow.
 */
ddstream_batch *dds_batch_new(size_t rows, size_t series_count, size_t tag_bytes, int grouped);

/*
 * The same in block (block_cap bytes, from dds_big_alloc, taken over in every case) when it is
 * large enough and DDS_BATCH_ALIGN-aligned, with the pages past the batch handed back to the
 * system; otherwise block is freed and a new one allocated. block may be NULL.
 */
ddstream_batch *dds_batch_new_in(void *block, size_t block_cap, size_t rows, size_t series_count,
                                 size_t tag_bytes, int grouped);

/* dds_batch_new_in with the columns of several queries: value (a double per row) when
 * with_value, query (an int32 per row) when with_query, and series_query (an int32 per series)
 * when both grouped and with_query. Their pointers stay NULL otherwise. */
ddstream_batch *dds_batch_new_shaped(void *block, size_t block_cap, size_t rows,
                                     size_t series_count, size_t tag_bytes, int grouped,
                                     int with_query, int with_value);

/* A v2 batch (one value per row): dds_batch_new_shaped with query and value, whose avg, min,
 * max and sum, NaN on every row, point to one shared column: a quarter of their memory to
 * fault in and write. Read-only, as every batch is to the caller, so the sharing is unseen.
 * With a pool (may be NULL), the block is one the pool kept when there is one of the size (block
 * is then freed), and ddstream_batch_free gives it back to the pool (batch_pool.h). */
ddstream_batch *dds_batch_new_value_only(dds_batch_pool *pool, void *block, size_t block_cap,
                                         size_t rows, size_t series_count, size_t tag_bytes,
                                         int grouped);

/* Writable views of a batch made by dds_batch_new (the public struct only has const views). */
typedef struct dds_batch_columns {
    int64_t *timestamps;
    double *avg, *min, *max, *sum;
    int32_t *series;    /* NULL when not grouped */
    char **series_tags; /* series_count slots; set with dds_batch_set_tag; NULL when not grouped */
    double *value;      /* NULL unless the batch has the value column */
    int32_t *query;     /* NULL unless the batch has the query column */
    int32_t *series_query; /* NULL unless the batch has both series and query */
} dds_batch_columns;

dds_batch_columns dds_batch_columns_of(ddstream_batch *b);

/*
 * Copy tags into slot i of the batch's series_tags, inside the batch's block. Returns 0, or -1
 * when i >= series_count or the tag_bytes reserved by dds_batch_new are used up (a caller bug).
 */
int dds_batch_set_tag(ddstream_batch *b, size_t i, const char *tags);

#endif
