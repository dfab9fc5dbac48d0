/* v2_grid.h — a v2 answer's times checked against the grid asked for, and its values made
 * dense on it (v2 omits empty buckets and sends no interval). */
#ifndef DDSTREAM_V2_GRID_H
#define DDSTREAM_V2_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream.h"
#include "parse_v2.h"

typedef enum {
    DDS_GRID_OK = 0,   /* every time inside the chunk is a bucket of the grid */
    DDS_GRID_OFF = 1,  /* a time inside the chunk is not on the grid: coarsened or misaligned */
    DDS_GRID_WIDE = 2, /* all on the grid, but every gap is a multiple of a wider spacing that
                          the times are also aligned to: maybe a coarsened interval, maybe
                          sparse data (the caller decides: see v2_grid.c) */
} dds_grid_verdict;

typedef struct dds_grid_check {
    dds_grid_verdict verdict;
    int64_t spacing_ms; /* WIDE: the wider spacing (gcd of the gaps) */
    int64_t example_ms; /* OFF: the first time off the grid */
    size_t inside;      /* times inside [start, start + buckets * step) */
    size_t outside;     /* times outside it (dropped, as v1 drops points outside its chunk) */
} dds_grid_check;

/* Classify times[0..n) against the buckets start_ms + k * step_ms, k < buckets. Pure. */
dds_grid_verdict dds_v2_grid_check(const int64_t *times, size_t n, int64_t start_ms,
                                   int64_t step_ms, size_t buckets, dds_grid_check *out);

/*
 * The values of r dense on the grid: out[row(s) * buckets + k] is series s's value in bucket k,
 * NaN where the answer has none; row(s) = dest_row[s], or s when dest_row is NULL. out must hold
 * (largest row + 1) * buckets doubles; only the rows named are written, each of them fully.
 * Times outside the chunk are dropped. DDSTREAM_E_PROTOCOL (msg says which) when a time inside
 * the chunk is off the grid or appears twice; the caller checks DDS_GRID_OFF first to split.
 */
DDSTREAM_NODISCARD ddstream_status dds_v2_densify(const dds_v2_response *r, int64_t start_ms,
                                                  int64_t step_ms, size_t buckets,
                                                  const size_t *dest_row, double *out, char *msg,
                                                  size_t cap);

#endif
