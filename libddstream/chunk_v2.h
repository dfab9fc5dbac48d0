/* chunk_v2.h — one chunk over Datadog's v2 timeseries endpoint: the request, the answer made
 * dense on the chunk's grid, and the split-and-refetch of an answer that is not on it. The seam
 * the stream's v2 transport uses (a batch is built from a dds_v2_chunk). */
#ifndef DDSTREAM_CHUNK_V2_H
#define DDSTREAM_CHUNK_V2_H

#include <stddef.h>
#include <stdint.h>

#include "batch_pool.h"
#include "chunk_cache.h"
#include "ddstream.h"
#include "fetch.h"
#include "parse_v2.h"
#include "v2_request.h"

typedef struct dds_v2_plan {
    const dds_v2_query *queries; /* checked with dds_v2_check */
    size_t query_count;
    const char *const *formulas; /* none: each query is its own formula */
    size_t formula_count;
    const int32_t *grouped; /* per formula (or query, without formulas): 1 when one series per
                               group is expected, 0 when exactly one series (dense even when the
                               answer has none) */
    int64_t granularity;    /* seconds */
    dds_chunk_cache *cache; /* NULL: none; else settled answers are read from and kept in it */
} dds_v2_plan;

/* What a stream learns across chunks. One per fetcher thread (no locking). */
typedef struct dds_v2_memory {
    /* A wider spacing a split showed to be the data's own (sparse data aligned to it), not a
     * coarsened interval: answers spaced so are taken as they are from then on. 0: none yet. */
    int64_t sparse_spacing_ms;
    size_t requests; /* requests asked for, splits included (cache hits too) */
} dds_v2_memory;

/* A chunk's answer, dense: series ordered by (formula, tags) with strcmp on tags. */
typedef struct dds_v2_chunk {
    int64_t start;  /* epoch s of the first bucket */
    int64_t step;   /* seconds */
    size_t buckets; /* (end - start) / step */
    size_t series_count;
    int32_t *formula; /* per series: its formula (query_index) */
    char **tags;      /* per series: group tags joined with ',', "" when ungrouped */
    double *values;   /* series_count x buckets, NaN where no value */
    /* Inside chunk_v2.c only: a chunk whose values are not placed yet (values NULL) keeps its
     * answer and the row of each of its series, so that the batch's column is written once,
     * straight from the answer (dds_fetch_chunk_v2), not through values and a copy. */
    dds_v2_response answer;
    size_t *dest;
} dds_v2_chunk;

/*
 * Fetch [start, end) (multiples of plan->granularity) through h. Times off the grid: the chunk
 * is split in halves and each asked again, down to one bucket (then DDSTREAM_E_PROTOCOL). Times
 * all on the grid but spaced wider and aligned to that spacing (DDS_GRID_WIDE) may be a
 * coarsened interval or sparse data: split once; halves spaced the same way prove it is the
 * data's own spacing (remembered in mem), halves spaced finer prove a coarsening (split on).
 * On success *out owns everything (dds_v2_chunk_free). err as dds_http_post_read, or
 * DDSTREAM_E_PROTOCOL for an answer of the wrong shape (several series for an ungrouped formula,
 * a query_index out of range).
 */
DDSTREAM_NODISCARD ddstream_status dds_v2_fetch_chunk(dds_http *h, const dds_v2_plan *plan,
                                                      int64_t start, int64_t end,
                                                      dds_v2_memory *mem, dds_v2_chunk *out,
                                                      ddstream_error *err);

void dds_v2_chunk_free(dds_v2_chunk *c);

/*
 * A stream's chunk over v2 (s->v2.enabled): dds_v2_fetch_chunk with the stream's queries and
 * formulas, then the batch: series x buckets rows ordered by (formula, tags, time), the value in
 * `value`, the formula's index in `query` (and `series_query`), avg/min/max/sum NaN, series and
 * their tags when s->grouped, interval the granularity. More rows than s->max_batch_rows is
 * DDSTREAM_E_PROTOCOL before the batch exists. mem is the fetcher's (see dds_v2_memory). pool
 * (may be NULL): the stream's, which the batch's block comes from and goes back to
 * (batch_pool.h).
 */
DDSTREAM_NODISCARD ddstream_status dds_fetch_chunk_v2(dds_http *http, dds_chunk_cache *cache,
                                                      const struct dds_settings *s, int64_t start,
                                                      int64_t end, dds_v2_memory *mem,
                                                      dds_batch_pool *pool, ddstream_batch **out,
                                                      ddstream_error *err);

#endif
