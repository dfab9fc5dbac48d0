/* assemble.h — join the four rollups of one chunk into a dense, ordered ddstream_batch. */
#ifndef DDSTREAM_ASSEMBLE_H
#define DDSTREAM_ASSEMBLE_H

#include "ddstream.h"
#include "parse.h"
#include "request_pack.h"

/* query_index of each rollup in the request ddstream sends (see query_lang.h). */
enum { DDS_ROLLUP_AVG = 0, DDS_ROLLUP_MIN = 1, DDS_ROLLUP_MAX = 2, DDS_ROLLUP_SUM = 3 };

/*
 * The coarsest spacing in r that does not fit the granularity: returns 0 when every series has
 * interval <= granularity (or none) and every timestamp is a multiple of granularity seconds;
 * otherwise the offending interval in seconds (the series' interval, or granularity+1 when only
 * timestamps are off-grid). Datadog silently coarsens answers that would exceed 1500 points.
 */
int64_t dds_response_coarse_interval(const dds_response *r, int64_t granularity);

/*
 * Build the batch for chunk [chunk_start, chunk_end) (epoch s, multiples of granularity; anything
 * else is DDSTREAM_E_INTERNAL). Every bucket of the chunk gets a row (NaN where no rollup had a
 * value), per series. Points outside the chunk are dropped; a bucket given twice keeps its first
 * non-null value. A point off the granularity grid, or a query_index outside 0..3, is
 * DDSTREAM_E_PROTOCOL (never misplaced). Series with the same (query_index, tags) are merged, so a
 * response built with dds_response_append from a split chunk assembles like a single one.
 * Ungrouped (grouped == 0): one tag set at most per rollup (two different ones is
 * DDSTREAM_E_PROTOCOL: the query was grouped after all); zero series gives all-NaN rows.
 * Grouped: series keyed by tags, ordered by tags (strcmp), then time; zero series gives 0 rows.
 * interval is the answered interval when every series that gave one agrees, else granularity.
 * Fills chunk_start_ms/chunk_end_ms/grouped/interval/length and the columns; the caller sets
 * chunk_index, chunk_count, is_last. On error writes msg and leaves *out NULL.
 */
DDSTREAM_NODISCARD ddstream_status dds_assemble(const dds_response *r, int64_t chunk_start,
                                                int64_t chunk_end, int64_t granularity, int grouped,
                                                ddstream_batch **out, char *msg, size_t msg_cap);

/* What a stream's batches look like: which (query, statistic) each query_index of the answer
 * fills, which queries are grouped, and the batch's optional columns. */
typedef struct dds_shape {
    const dds_subq_ref *subs; /* query_index -> (query, stat); text unused */
    size_t sub_count;
    const int32_t *query_grouped; /* per query: nonzero when it has a "by {...}" */
    size_t query_count;
    int grouped;    /* the batch has series (required when query_count > 1) */
    int with_query; /* the batch has the query column (and series_query when grouped) */
    int with_value; /* the batch has the value column */
} dds_shape;

/*
 * dds_assemble_in for any stream: rows ordered by query, then series tags (strcmp), then time.
 * An ungrouped query gives exactly one dense series (tags "", all-NaN when it had no answer); a
 * grouped one a series per tag set (none when it had no answer). Each point goes to its
 * statistic's column (avg, min, max, sum or value); statistics a query did not ask for stay NaN.
 * query_index outside 0..sub_count-1 is DDSTREAM_E_PROTOCOL.
 */
DDSTREAM_NODISCARD ddstream_status dds_assemble_shaped(const dds_response *r,
                                                       const dds_shape *shape, int64_t chunk_start,
                                                       int64_t chunk_end, int64_t granularity,
                                                       size_t max_rows, void *block,
                                                       size_t block_cap, ddstream_batch **out,
                                                       char *msg, size_t msg_cap);

/* dds_assemble building the batch in block (block_cap bytes from dds_big_alloc, or NULL), which
 * it takes over in every case: see dds_batch_new_in. A batch of more than max_rows rows (series
 * x buckets) is DDSTREAM_E_PROTOCOL, refused before it is allocated; dds_assemble has no limit. */
DDSTREAM_NODISCARD ddstream_status dds_assemble_in(const dds_response *r, int64_t chunk_start,
                                                   int64_t chunk_end, int64_t granularity,
                                                   int grouped, size_t max_rows, void *block,
                                                   size_t block_cap, ddstream_batch **out,
                                                   char *msg, size_t msg_cap);

#endif
