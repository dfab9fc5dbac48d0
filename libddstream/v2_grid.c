/*
 * v2_grid.c — v2's sparse times onto the dense grid every batch has (design-notes "Batches are
 * dense"), and the test for an answer that is not on the grid asked for.
 *
 * v2 answers have no interval field and omit empty buckets (shared/DATADOG.md), so a coarsened
 * interval cannot be read back; it can only be noticed:
 * - a time inside the chunk that is not start + k * step (OFF) is certain: the chunk is split and
 *   asked again, as v1 does with a coarsened interval;
 * - times all on the grid but every gap a multiple of a wider spacing the times are aligned to
 *   (WIDE) is what a coarsened interval looks like, and also what sparse data looks like (a
 *   metric reported every 2 minutes, asked at 60 s). This module only reports it, with the
 *   spacing; the chunk fetcher decides (split once: a coarsening forced by the point cap goes
 *   away when the chunk has half the buckets, sparse data does not).
 */
#include "v2_grid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static int64_t gcd64(int64_t a, int64_t b) {
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a < 0 ? -a : a;
}

/* Floor modulo: the epoch's grid holds for negative times too. */
static int64_t mod_floor(int64_t a, int64_t m) {
    int64_t r = a % m;
    return r < 0 ? r + m : r;
}

dds_grid_verdict dds_v2_grid_check(const int64_t *times, size_t n, int64_t start_ms,
                                   int64_t step_ms, size_t buckets, dds_grid_check *out) {
    dds_grid_check c;
    memset(&c, 0, sizeof c);
    c.verdict = DDS_GRID_OK;
    int64_t end = start_ms + (int64_t)buckets * step_ms;
    int64_t first = 0, g = 0;
    for (size_t k = 0; k < n; k++) {
        int64_t t = times[k];
        if (t < start_ms || t >= end) {
            c.outside++;
            continue;
        }
        if ((t - start_ms) % step_ms != 0) {
            if (c.verdict != DDS_GRID_OFF) {
                c.verdict = DDS_GRID_OFF;
                c.example_ms = t;
            }
            c.inside++;
            continue;
        }
        if (c.inside++ == 0) first = t;
        else g = gcd64(g, t - first);
    }
    if (c.verdict == DDS_GRID_OK && g > step_ms) {
        /* Datadog aligns buckets to multiples of the interval since the epoch: a wider interval
         * it chose would put every time on a multiple of it. */
        int aligned = 1;
        for (size_t k = 0; k < n && aligned; k++)
            if (times[k] >= start_ms && times[k] < end && mod_floor(times[k], g) != 0) aligned = 0;
        if (aligned) {
            c.verdict = DDS_GRID_WIDE;
            c.spacing_ms = g;
        }
    }
    if (out) *out = c;
    return c.verdict;
}

ddstream_status dds_v2_densify(const dds_v2_response *r, int64_t start_ms, int64_t step_ms,
                               size_t buckets, const size_t *dest_row, double *out, char *msg,
                               size_t cap) {
    if (step_ms <= 0) {
        dds_set_msg(msg, cap, "internal: the grid's step is %lld ms", (long long)step_ms);
        return DDSTREAM_E_INVALID_ARGUMENT;
    }
    int64_t end = start_ms + (int64_t)buckets * step_ms;
    /* Which bucket each time fills, once, shared by every series: the per-point work is then one
     * copy. A bucket seen twice is an error: every series would have two values for it. */
    for (size_t t = 0; t < r->time_count; t++) {
        int64_t ts = r->times_ms[t];
        if (ts < start_ms || ts >= end) continue;
        if ((ts - start_ms) % step_ms != 0) {
            dds_set_msg(msg, cap,
                        "time %lld ms of the answer is not on the %lld ms grid from %lld ms",
                        (long long)ts, (long long)step_ms, (long long)start_ms);
            return DDSTREAM_E_PROTOCOL;
        }
    }
    /* Datadog sends times in increasing order; only when they are not is a duplicate possible,
     * and only then is a bucket map needed to find it. */
    int increasing = 1;
    for (size_t t = 1; t < r->time_count && increasing; t++)
        if (r->times_ms[t] <= r->times_ms[t - 1]) increasing = 0;
    if (!increasing) {
        unsigned char *seen = calloc(buckets ? buckets : 1, 1);
        if (seen == NULL) {
            dds_set_msg(msg, cap, "out of memory while placing %zu times", r->time_count);
            return DDSTREAM_E_NOMEM;
        }
        for (size_t t = 0; t < r->time_count; t++) {
            int64_t ts = r->times_ms[t];
            if (ts < start_ms || ts >= end) continue;
            size_t k = (size_t)((ts - start_ms) / step_ms);
            if (seen[k]) {
                free(seen);
                dds_set_msg(msg, cap, "time %lld ms appears twice in the answer's times",
                            (long long)ts);
                return DDSTREAM_E_PROTOCOL;
            }
            seen[k] = 1;
        }
        free(seen);
    }
    /* The common answer has a time for every bucket, in order: each row is then one copy. */
    int full = r->time_count == buckets;
    for (size_t t = 0; t < r->time_count && full; t++)
        if (r->times_ms[t] != start_ms + (int64_t)t * step_ms) full = 0;
    if (full) {
        for (size_t s = 0; s < r->series_count && buckets > 0; s++)
            memcpy(out + (dest_row ? dest_row[s] : s) * buckets, r->values + s * r->time_count,
                   buckets * sizeof *out);
        return DDSTREAM_OK;
    }
    /* Otherwise each time's bucket is computed once for all series (a division per time, not per
     * value); a time off the range gets `buckets`, which no row has. */
    size_t *bucket_of = malloc((r->time_count ? r->time_count : 1) * sizeof *bucket_of);
    if (bucket_of == NULL) {
        dds_set_msg(msg, cap, "out of memory while placing %zu times", r->time_count);
        return DDSTREAM_E_NOMEM;
    }
    for (size_t t = 0; t < r->time_count; t++) {
        int64_t ts = r->times_ms[t];
        bucket_of[t] = ts < start_ms || ts >= end ? buckets : (size_t)((ts - start_ms) / step_ms);
    }
    for (size_t s = 0; s < r->series_count; s++) {
        double *row = out + (dest_row ? dest_row[s] : s) * buckets;
        const double *src = r->values + s * r->time_count;
        for (size_t k = 0; k < buckets; k++) row[k] = NAN;
        for (size_t t = 0; t < r->time_count; t++)
            if (bucket_of[t] < buckets) row[bucket_of[t]] = src[t];
    }
    free(bucket_of);
    return DDSTREAM_OK;
}
