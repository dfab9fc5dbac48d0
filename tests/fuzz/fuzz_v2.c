/*
 * fuzz_v2.c — arbitrary bytes through what reads a v2 answer: the timeseries parser, the grid
 * check and the dense placement, and the scalar parser, each held to its header's contract:
 *   - dds_parse_v2_timeseries: OK, PROTOCOL, QUERY or NOMEM; on success every series has tags
 *     without U+0000 and a query_index >= 0, every time within DDS_TIME_LIMIT_MS, values finite
 *     or NaN, and json_check agrees the body is complete JSON; on failure a message and an empty
 *     response; the body untouched;
 *   - dds_v2_grid_check on a grid derived from the input: inside + outside = the times, and OFF
 *     exactly when a time inside is off the grid (computed naively);
 *   - dds_v2_densify: when the grid is OK and the times are distinct, every cell equal to a
 *     naive placement;
 *   - dds_parse_v2_scalar: the same status rules; on success values sized columns x groups.
 * Built with libFuzzer (tests/fuzz/meson.build) and replayed over tests/fuzz/v2_seeds by the
 * ordinary suite (replay.c).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "parse_v2.h"
#include "timestamp_limit.h"
#include "v2_grid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void violated(int line, const char *what) {
    fprintf(stderr, "fuzz_v2.c:%d: contract broken: %s\n", line, what);
    abort();
}

#define REQUIRE(cond)                                                                              \
  do {                                                                                             \
    if (!(cond)) violated(__LINE__, #cond);                                                        \
  } while (0)

static int status_allowed(ddstream_status st) {
    return st == DDSTREAM_OK || st == DDSTREAM_E_PROTOCOL || st == DDSTREAM_E_QUERY ||
           st == DDSTREAM_E_NOMEM;
}

static void check_grid(const dds_v2_response *r, uint64_t h) {
    static const int64_t steps[] = {1000, 60000, 300000, 3600000};
    int64_t step = steps[h % 4];
    int64_t start = r->time_count ? r->times_ms[0] - (int64_t)((h >> 8) % 4) * step : 0;
    size_t buckets = 1 + (size_t)((h >> 16) % 2000);
    if (start < -DDS_TIME_LIMIT_MS || start > DDS_TIME_LIMIT_MS) return;
    dds_grid_check c;
    dds_grid_verdict v = dds_v2_grid_check(r->times_ms, r->time_count, start, step, buckets, &c);
    REQUIRE(c.inside + c.outside == r->time_count);
    int off = 0, distinct = 1;
    int64_t end = start + (int64_t)buckets * step;
    for (size_t t = 0; t < r->time_count; t++) {
        int64_t ts = r->times_ms[t];
        if (ts >= start && ts < end && (ts - start) % step != 0) off = 1;
        for (size_t u = 0; u < t; u++)
            if (r->times_ms[u] == ts) distinct = 0;
    }
    REQUIRE((v == DDS_GRID_OFF) == off);
    if (off || r->series_count == 0 || r->series_count * buckets > 200000) return;
    double *out = malloc(r->series_count * buckets * sizeof *out);
    REQUIRE(out != NULL);
    char msg[200];
    ddstream_status st = dds_v2_densify(r, start, step, buckets, NULL, out, msg, sizeof msg);
    REQUIRE(st == (distinct ? DDSTREAM_OK : DDSTREAM_E_PROTOCOL) ||
            (st == DDSTREAM_OK && distinct));
    if (st == DDSTREAM_OK) {
        for (size_t s = 0; s < r->series_count; s++) {
            for (size_t b = 0; b < buckets; b++) {
                double want = NAN;
                for (size_t t = 0; t < r->time_count; t++)
                    if (r->times_ms[t] == start + (int64_t)b * step)
                        want = r->values[s * r->time_count + t];
                double got = out[s * buckets + b];
                REQUIRE((isnan(got) && isnan(want)) || got == want);
            }
        }
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ULL;
    char *body = calloc(1, size ? size : 1);
    REQUIRE(body != NULL);
    if (size) memcpy(body, data, size);
    char msg[300];
    dds_v2_response r;
    ddstream_status st = dds_parse_v2_timeseries(body, size, &r, msg, sizeof msg);
    REQUIRE(status_allowed(st));
    REQUIRE(size == 0 || memcmp(body, data, size) == 0);
    if (st == DDSTREAM_OK) {
        dds_json_check jc;
        REQUIRE(dds_json_check_body(body, size, &jc) == DDS_JSON_COMPLETE);
        for (size_t s = 0; s < r.series_count; s++) {
            REQUIRE(r.series[s].tags != NULL);
            REQUIRE(r.series[s].query_index >= 0);
        }
        for (size_t t = 0; t < r.time_count; t++)
            REQUIRE(r.times_ms[t] >= -DDS_TIME_LIMIT_MS && r.times_ms[t] <= DDS_TIME_LIMIT_MS);
        for (size_t k = 0; k < r.series_count * r.time_count; k++)
            REQUIRE(isnan(r.values[k]) || isfinite(r.values[k]));
        check_grid(&r, h);
        dds_v2_response_free(&r);
    } else {
        REQUIRE(msg[0] != 0);
        REQUIRE(r.series == NULL && r.times_ms == NULL && r.values == NULL);
    }
    dds_v2_scalar sc;
    st = dds_parse_v2_scalar(body, size, &sc, msg, sizeof msg);
    REQUIRE(status_allowed(st));
    if (st == DDSTREAM_OK) {
        REQUIRE(sc.column_count * sc.group_count == 0 || sc.values != NULL);
        for (size_t g = 0; g < sc.group_count; g++) REQUIRE(sc.groups[g] != NULL);
        dds_v2_scalar_free(&sc);
    } else {
        REQUIRE(msg[0] != 0);
        REQUIRE(sc.groups == NULL && sc.values == NULL && sc.names == NULL);
    }
    free(body);
    return 0;
}
