/*
 * test_v2_grid.c — v2 answers on the dense grid (v2_grid.c): missing buckets NaN, times outside
 * the chunk dropped, a time off the grid (certain coarsening) and a wider aligned spacing
 * (possible coarsening) told apart from sparse data such as the recorded answer, duplicates and
 * unordered times, the series placed on the rows asked for.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "parse_v2.h"
#include "v2_grid.h"

#define T0 INT64_C(1700000040000) /* a multiple of 60 000 and of 120 000 */

static void test_check(void) {
    dds_grid_check c;
    /* The recorded answer: asked at 5 s from 1711977601000 (first bucket 1711977605000), times at
     * :45 s of three minutes — sparse data of a metric reported each minute, on the grid, and not
     * aligned to a wider interval since the epoch: OK. */
    const int64_t rec[] = {INT64_C(1711977645000), INT64_C(1711977705000), INT64_C(1711980225000)};
    CHECK(dds_v2_grid_check(rec, 3, INT64_C(1711977605000), 5000, 719, &c) == DDS_GRID_OK);
    CHECK_INT(c.inside, 3);
    CHECK_INT(c.outside, 0);

    /* Every other bucket, aligned to 120 s since the epoch: what a coarsened interval looks like. */
    const int64_t wide[] = {T0, T0 + 120000, T0 + 360000};
    CHECK(dds_v2_grid_check(wide, 3, T0, 60000, 10, &c) == DDS_GRID_WIDE);
    CHECK_INT(c.spacing_ms, 120000);
    /* The same gaps shifted by one bucket are not aligned to 120 s: sparse data. */
    const int64_t shifted[] = {T0 + 60000, T0 + 180000, T0 + 420000};
    CHECK(dds_v2_grid_check(shifted, 3, T0, 60000, 10, &c) == DDS_GRID_OK);
    /* One time, or none: nothing to measure a spacing with. */
    CHECK(dds_v2_grid_check(wide, 1, T0, 60000, 10, &c) == DDS_GRID_OK);
    CHECK(dds_v2_grid_check(NULL, 0, T0, 60000, 10, &c) == DDS_GRID_OK);
    /* Off the grid: a time between two buckets. */
    const int64_t off[] = {T0, T0 + 90000};
    CHECK(dds_v2_grid_check(off, 2, T0, 60000, 10, &c) == DDS_GRID_OFF);
    CHECK_INT(c.example_ms, T0 + 90000);
    /* Outside the chunk (before, at its end, after): dropped, counted, never judged. */
    const int64_t outside[] = {T0 - 60000, T0, T0 + 600000, T0 + 30000000 + 7};
    CHECK(dds_v2_grid_check(outside, 4, T0, 60000, 10, &c) == DDS_GRID_OK);
    CHECK_INT(c.inside, 1);
    CHECK_INT(c.outside, 3);
    /* Negative epochs keep the floor alignment. */
    const int64_t neg[] = {-240000, -120000};
    CHECK(dds_v2_grid_check(neg, 2, -600000, 60000, 10, &c) == DDS_GRID_WIDE);
    CHECK_INT(c.spacing_ms, 120000);
}

static dds_v2_response make(size_t ns, size_t nt, const int64_t *times, const double *values) {
    dds_v2_response r;
    memset(&r, 0, sizeof r);
    r.series_count = ns;
    r.time_count = nt;
    r.series = calloc(ns ? ns : 1, sizeof *r.series);
    r.times_ms = malloc((nt ? nt : 1) * sizeof *r.times_ms);
    r.values = malloc((ns * nt > 0 ? ns * nt : 1) * sizeof *r.values);
    for (size_t s = 0; s < ns; s++) {
        r.series[s].tags = calloc(1, 1);
        r.series[s].query_index = (int32_t)s;
    }
    if (nt) memcpy(r.times_ms, times, nt * sizeof *times);
    if (ns * nt > 0) memcpy(r.values, values, ns * nt * sizeof *values);
    return r;
}

static void test_densify(void) {
    char msg[256];
    /* Two series, buckets 0, 2 and 3 of 5 present; one time before the chunk, one after. */
    const int64_t times[] = {T0 - 60000, T0, T0 + 120000, T0 + 180000, T0 + 300000};
    const double values[] = {9, 1, 2, NAN, 9,  /* series 0 */
                             9, 5, 6, 7,   9}; /* series 1 */
    dds_v2_response r = make(2, 5, times, values);
    double out[3 * 5];
    for (size_t k = 0; k < 15; k++) out[k] = 42;
    const size_t rows[] = {2, 0}; /* series 0 -> row 2, series 1 -> row 0; row 1 untouched */
    CHECK(dds_v2_densify(&r, T0, 60000, 5, rows, out, msg, sizeof msg) == DDSTREAM_OK);
    const double want[] = {5, NAN, 6, 7, NAN, 42, 42, 42, 42, 42, 1, NAN, 2, NAN, NAN};
    for (size_t k = 0; k < 15; k++) CHECK_DBL(out[k], want[k]);

    /* Identity rows. */
    CHECK(dds_v2_densify(&r, T0, 60000, 5, NULL, out, msg, sizeof msg) == DDSTREAM_OK);
    CHECK_DBL(out[0], 1);
    CHECK_DBL(out[5], 5);
    dds_v2_response_free(&r);

    /* Unordered times are placed by value. */
    const int64_t unordered[] = {T0 + 240000, T0};
    const double uv[] = {4, 0};
    r = make(1, 2, unordered, uv);
    CHECK(dds_v2_densify(&r, T0, 60000, 5, NULL, out, msg, sizeof msg) == DDSTREAM_OK);
    CHECK_DBL(out[0], 0);
    CHECK_DBL(out[4], 4);
    dds_v2_response_free(&r);

    /* Duplicates, adjacent or not: an error naming the time. */
    const int64_t dup[] = {T0, T0 + 60000, T0};
    const double dv[] = {1, 2, 3};
    r = make(1, 3, dup, dv);
    CHECK(dds_v2_densify(&r, T0, 60000, 5, NULL, out, msg, sizeof msg) == DDSTREAM_E_PROTOCOL);
    CHECK_CONTAINS(msg, "appears twice");
    dds_v2_response_free(&r);
    const int64_t dup2[] = {T0 + 60000, T0 + 60000};
    r = make(1, 2, dup2, dv);
    CHECK(dds_v2_densify(&r, T0, 60000, 5, NULL, out, msg, sizeof msg) == DDSTREAM_E_PROTOCOL);
    dds_v2_response_free(&r);

    /* Off the grid: an error (the fetcher splits on DDS_GRID_OFF before getting here). */
    const int64_t off[] = {T0 + 30000};
    r = make(1, 1, off, dv);
    CHECK(dds_v2_densify(&r, T0, 60000, 5, NULL, out, msg, sizeof msg) == DDSTREAM_E_PROTOCOL);
    CHECK_CONTAINS(msg, "not on the 60000 ms grid");
    dds_v2_response_free(&r);

    /* Every bucket present, in order (one copy a row): placed by dest rows as any answer is;
     * as many times as buckets but one off by a bucket (a gap and a time past the chunk) is
     * not that case. */
    const int64_t all[] = {T0, T0 + 60000, T0 + 120000, T0 + 180000, T0 + 240000};
    const double av[] = {1, NAN, 3, 4, 5, 6, 7, 8, 9, 10};
    r = make(2, 5, all, av);
    for (size_t k = 0; k < 15; k++) out[k] = 42;
    CHECK(dds_v2_densify(&r, T0, 60000, 5, rows, out, msg, sizeof msg) == DDSTREAM_OK);
    const double want_all[] = {6, 7, 8, 9, 10, 42, 42, 42, 42, 42, 1, NAN, 3, 4, 5};
    for (size_t k = 0; k < 15; k++) CHECK_DBL(out[k], want_all[k]);
    dds_v2_response_free(&r);
    const int64_t shifted[] = {T0, T0 + 60000, T0 + 180000, T0 + 240000, T0 + 300000};
    r = make(1, 5, shifted, av);
    CHECK(dds_v2_densify(&r, T0, 60000, 5, NULL, out, msg, sizeof msg) == DDSTREAM_OK);
    const double want_shifted[] = {1, NAN, NAN, 3, 4};
    for (size_t k = 0; k < 5; k++) CHECK_DBL(out[k], want_shifted[k]);
    dds_v2_response_free(&r);

    /* No series: nothing written; no times: all NaN. */
    r = make(0, 0, NULL, NULL);
    CHECK(dds_v2_densify(&r, T0, 60000, 5, NULL, out, msg, sizeof msg) == DDSTREAM_OK);
    dds_v2_response_free(&r);
    r = make(1, 0, NULL, NULL);
    CHECK(dds_v2_densify(&r, T0, 60000, 5, NULL, out, msg, sizeof msg) == DDSTREAM_OK);
    for (size_t k = 0; k < 5; k++) CHECK_DBL(out[k], NAN);
    CHECK(dds_v2_densify(&r, T0, 0, 5, NULL, out, msg, sizeof msg) == DDSTREAM_E_INVALID_ARGUMENT);
    dds_v2_response_free(&r);
}

/* Against a reference: random sparse answers, every cell compared with a direct computation. */
static void test_random(void) {
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int round = 0; round < 200; round++) {
        size_t buckets = 1 + (size_t)(round * 7 % 50), ns = 1 + (size_t)(round % 4);
        int64_t step = 60000, start = T0 + step * (round % 13);
        int64_t *times = malloc((buckets + 4) * sizeof *times);
        size_t nt = 0;
        for (size_t b = 0; b < buckets + 4; b++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (x % 3 == 0) times[nt++] = start + ((int64_t)b - 2) * step; /* some outside */
        }
        double *vals = malloc((ns * nt + 1) * sizeof *vals);
        for (size_t k = 0; k < ns * nt; k++) vals[k] = (double)(k % 11) - 3;
        dds_v2_response r = make(ns, nt, times, vals);
        double *out = malloc(ns * buckets * sizeof *out);
        char msg[128];
        CHECK(dds_v2_densify(&r, start, step, buckets, NULL, out, msg, sizeof msg) == DDSTREAM_OK);
        for (size_t s = 0; s < ns; s++) {
            for (size_t b = 0; b < buckets; b++) {
                double expect = NAN;
                for (size_t t = 0; t < nt; t++)
                    if (times[t] == start + (int64_t)b * step) expect = vals[s * nt + t];
                CHECK_DBL(out[s * buckets + b], expect);
            }
        }
        dds_v2_response_free(&r);
        free(out);
        free(vals);
        free(times);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    test_check();
    test_densify();
    test_random();
    return check_report(argv[0]);
}
