/*
 * scalar_v2.c — splitting a scalar over chunks only where it is exact. Why these: a sum, a
 * minimum, a maximum and a count over a range are the sum, min, max and sum of counts of the
 * same over any partition of it; the last value is the last chunk's that has one; an average is
 * the total sum over the total count (never an average of averages, which weights chunks
 * wrongly). A percentile, a norm or an area is not recoverable from per-chunk values of itself,
 * so the caller asks for them in one request and says so. The formulas are then evaluated on the
 * combined values of the queries, group by group, as Datadog matches them.
 */
#include "scalar_v2.h"

#include <math.h>
#include <string.h>

size_t dds_scalar_parts(const char *aggregator, const char *parts[2]) {
    static const char *const self[] = {"sum", "min", "max", "count", "last"};
    if (aggregator == NULL) return 0;
    for (size_t k = 0; k < sizeof self / sizeof self[0]; k++) {
        if (strcmp(aggregator, self[k]) == 0) {
            parts[0] = self[k];
            return 1;
        }
    }
    if (strcmp(aggregator, "avg") == 0) {
        parts[0] = "sum";
        parts[1] = "count";
        return 2;
    }
    return 0;
}

double dds_scalar_combine(const char *aggregator, const double *partials, size_t chunks) {
    double acc = NAN, count = 0;
    int is_sum = strcmp(aggregator, "sum") == 0, is_min = strcmp(aggregator, "min") == 0;
    int is_max = strcmp(aggregator, "max") == 0, is_count = strcmp(aggregator, "count") == 0;
    int is_last = strcmp(aggregator, "last") == 0, is_avg = strcmp(aggregator, "avg") == 0;
    for (size_t i = 0; i < chunks; i++) {
        double v = partials[i];
        if (isnan(v)) continue;
        if (is_avg) {
            double n = partials[chunks + i];
            if (isnan(n) || n <= 0) continue;
            acc = isnan(acc) ? v : acc + v;
            count += n;
        } else if (is_sum || is_count) {
            acc = isnan(acc) ? v : acc + v;
        } else if (is_min) {
            acc = isnan(acc) || v < acc ? v : acc;
        } else if (is_max) {
            acc = isnan(acc) || v > acc ? v : acc;
        } else if (is_last) {
            acc = v;
        }
    }
    if (is_count && isnan(acc)) return 0;
    if (is_avg) return count > 0 ? acc / count : NAN;
    return acc;
}

int dds_scalar_value_cmp(const void *pa, const void *pb) {
    const dds_scalar_value *a = pa, *b = pb;
    if (a->index != b->index) return a->index < b->index ? -1 : 1;
    return strcmp(a->tags, b->tags);
}

/* The first position whose (index, tags) is not below (q, tags). */
static size_t lower_bound(const dds_scalar_value *v, size_t n, int32_t q, const char *tags) {
    size_t a = 0, b = n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        int below = v[m].index < q || (v[m].index == q && strcmp(v[m].tags, tags) < 0);
        if (below) a = m + 1;
        else b = m;
    }
    return a;
}

void dds_scalar_span(const dds_scalar_value *v, size_t n, int32_t q, size_t *first, size_t *end) {
    *first = lower_bound(v, n, q, ""); /* "" sorts before every other tag set */
    *end = q == INT32_MAX ? n : lower_bound(v, n, q + 1, "");
}

double dds_scalar_lookup(const dds_scalar_value *v, size_t n, int32_t q, int grouped,
                         const char *tags) {
    size_t first, end;
    dds_scalar_span(v, n, q, &first, &end);
    if (!grouped) return first < end ? v[first].value : NAN;
    size_t at = lower_bound(v, n, q, tags);
    return at < end && strcmp(v[at].tags, tags) == 0 ? v[at].value : NAN;
}

int dds_scalar_groups_match(const dds_formula_op *ops, size_t nops, const int32_t *grouped,
                            const dds_scalar_value *v, size_t n, const char *tags) {
    for (size_t i = 0; i < nops; i++) {
        if (ops[i].code != DDS_FOP_REF || !grouped[ops[i].ref]) continue;
        size_t end, at = lower_bound(v, n, ops[i].ref, tags);
        dds_scalar_span(v, n, ops[i].ref, &(size_t){0}, &end);
        if (at >= end || strcmp(v[at].tags, tags) != 0) return 0;
    }
    return 1;
}

double dds_scalar_eval(const dds_formula_op *ops, size_t nops, const int32_t *grouped,
                       const dds_scalar_value *v, size_t n, const char *tags, double *stack) {
    size_t sp = 0;
    for (size_t i = 0; i < nops; i++) {
        const dds_formula_op *o = &ops[i];
        if (o->code == DDS_FOP_NUM) {
            stack[sp++] = o->num;
        } else if (o->code == DDS_FOP_REF) {
            stack[sp++] = dds_scalar_lookup(v, n, o->ref, grouped[o->ref], tags);
        } else if (o->code == DDS_FOP_NEG) {
            if (sp < 1) return NAN;
            stack[sp - 1] = -stack[sp - 1];
        } else {
            if (sp < 2) return NAN; /* not a program dds_formula_program writes */
            double r = stack[--sp], l = stack[sp - 1];
            stack[sp - 1] = o->code == DDS_FOP_ADD   ? l + r
                            : o->code == DDS_FOP_SUB ? l - r
                            : o->code == DDS_FOP_MUL ? l * r
                            : r == 0                 ? NAN /* as Datadog: no value */
                                                     : l / r;
        }
    }
    return sp == 1 && isfinite(stack[0]) ? stack[0] : NAN;
}
