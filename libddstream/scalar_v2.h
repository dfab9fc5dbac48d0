/* scalar_v2.h — a scalar (one value per group) over a range cut into chunks: which aggregators
 * allow it exactly, what to ask of each chunk, and the chunks' partial values combined. Pure. */
#ifndef DDSTREAM_SCALAR_V2_H
#define DDSTREAM_SCALAR_V2_H

#include <stddef.h>

/*
 * The aggregators to ask of every chunk so that aggregator over the whole range is computed
 * exactly from them (up to float rounding of the combination): sum, min, max, count and last
 * ask themselves; avg asks sum and count. Returns how many (1 or 2, written to parts), or 0 when
 * aggregator cannot be split (percentile, l2norm, area, norm, unknown): one request over the
 * whole range then.
 */
size_t dds_scalar_parts(const char *aggregator, const char *parts[2]);

/*
 * One group's value over the range from its chunks' partials: partials[k * chunks + i] is part k
 * (dds_scalar_parts' order) of chunk i, NaN where the chunk had no value for the group. NaN when
 * no chunk had a value (count: 0). aggregator must be one dds_scalar_parts splits.
 */
double dds_scalar_combine(const char *aggregator, const double *partials, size_t chunks);

#endif
