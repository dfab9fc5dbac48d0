/* plan.h — the range cut into chunks aligned to the granularity, computed, never materialised. */
#ifndef DDSTREAM_PLAN_H
#define DDSTREAM_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream.h"

typedef struct dds_plan {
    int64_t start; /* first bucket: ceil(range_start / g) * g */
    int64_t end;   /* end of the last bucket that starts before range_end */
    int64_t step;  /* seconds per chunk, a multiple of g, at most DDS_MAX_POINTS * g */
    size_t count;  /* number of chunks (0 when no bucket starts inside the range) */
    int clamped;   /* the user's chunk_seconds was above the point cap */
    int rounded;   /* the user's chunk_seconds was not a multiple of g */
} dds_plan;

/*
 * Plan [range_start, range_end) at granularity g with chunk_seconds (0: the largest the point cap
 * allows). Arguments must already be validated (start < end, g > 0, chunk_seconds >= 0).
 * Returns E_CONFIG if the plan would have more chunks than fit in size_t.
 */
DDSTREAM_NODISCARD ddstream_status dds_plan_make(int64_t range_start, int64_t range_end, int64_t g,
                                                 int64_t chunk_seconds, dds_plan *out,
                                                 ddstream_error *err);

/* Chunk i (i < count). */
ddstream_chunk dds_plan_chunk(const dds_plan *p, size_t i);

#endif
