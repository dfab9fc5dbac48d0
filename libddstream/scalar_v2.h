/* scalar_v2.h — a scalar (one value per group) over a range cut into chunks: which aggregators
 * allow it exactly, what to ask of each chunk, and the chunks' partial values combined. Pure. */
#ifndef DDSTREAM_SCALAR_V2_H
#define DDSTREAM_SCALAR_V2_H

#include <stddef.h>
#include <stdint.h>

#include "query_lang.h"

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

/* One value of a scalar table: of query (or formula) `index` for the group `tags` ("" when
 * ungrouped). Arrays of them are sorted by dds_scalar_value_cmp: index, then strcmp on tags. */
typedef struct dds_scalar_value {
    int32_t index;
    char *tags;
    double value;
} dds_scalar_value;

int dds_scalar_value_cmp(const void *a, const void *b);

/* The values of index q in v[0..n) (sorted): [*first, *end). Binary search. */
void dds_scalar_span(const dds_scalar_value *v, size_t n, int32_t q, size_t *first, size_t *end);

/* Query q's value for the group tags: an ungrouped query's one value whatever the tags (it
 * applies to every group), a grouped one's for exactly these tags; NaN when there is none. */
double dds_scalar_lookup(const dds_scalar_value *v, size_t n, int32_t q, int grouped,
                         const char *tags);

/* Whether every grouped query the program refers to (grouped[ref] nonzero) has the group tags:
 * Datadog joins grouped operands on equal tag sets, and drops a group one of them lacks. */
int dds_scalar_groups_match(const dds_formula_op *ops, size_t nops, const int32_t *grouped,
                            const dds_scalar_value *v, size_t n, const char *tags);

/* The formula's program (dds_formula_program) on the group tags, its references read with
 * dds_scalar_lookup: NaN when an operand is NaN, on x / 0, or when the result is not finite.
 * stack has room for nops doubles. */
double dds_scalar_eval(const dds_formula_op *ops, size_t nops, const int32_t *grouped,
                       const dds_scalar_value *v, size_t n, const char *tags, double *stack);

#endif
