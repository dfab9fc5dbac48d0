/*
 * scalar_v2.c — splitting a scalar over chunks only where it is exact. Why these: a sum, a
 * minimum, a maximum and a count over a range are the sum, min, max and sum of counts of the
 * same over any partition of it; the last value is the last chunk's that has one; an average is
 * the total sum over the total count (never an average of averages, which weights chunks
 * wrongly). A percentile, a norm or an area is not recoverable from per-chunk values of itself,
 * so the caller asks for them in one request and says so.
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
