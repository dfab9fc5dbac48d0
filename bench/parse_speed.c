/*
 * parse_speed.c — CPU per point of the two answer parsers on the same data: a v1 answer
 * (/api/v1/query: a pointlist of [ts, value] pairs per series, read by the pointlist fast path)
 * and a v2 answer (/api/v2/query/timeseries: one shared times array and a row of values per
 * series, parse_v2.c), then v2's dense placement on the grid (v2_grid.c). Values have 15-17
 * significant digits and some nulls, as real answers do.
 *
 *   parse_speed [SERIES [TIMES [ROUNDS]]]      (default 200 1440 20; best round reported)
 *
 * Built with the C tests (meson target bench_parse_speed, not by default).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse.h"
#include "parse_v2.h"
#include "v2_grid.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void reserve(buf *b, size_t n) {
    if (b->cap - b->len > n) return;
    b->cap = b->cap * 2 + n + 4096;
    b->p = realloc(b->p, b->cap);
    if (b->p == NULL) exit(1);
}

static void put(buf *b, const char *s) {
    size_t n = strlen(s);
    reserve(b, n);
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void put_int(buf *b, long long v) {
    reserve(b, 32);
    b->len += (size_t)snprintf(b->p + b->len, 32, "%lld", v);
}

static void put_dbl(buf *b, double v) {
    reserve(b, 32);
    b->len += (size_t)snprintf(b->p + b->len, 32, "%.16g", v);
}

int main(int argc, char **argv) {
    int series = argc > 1 ? atoi(argv[1]) : 200, times = argc > 2 ? atoi(argv[2]) : 1440;
    int rounds = argc > 3 ? atoi(argv[3]) : 20;
    const long long t0 = 1700000000000LL;
    buf v1 = {0}, v2 = {0};
    uint64_t x = 88172645463325252ULL;
    put(&v1, "{\"status\":\"ok\",\"res_type\":\"time_series\",\"series\":[");
    put(&v2,
        "{\"data\":{\"id\":\"0\",\"type\":\"timeseries_response\",\"attributes\":{\"series\":[");
    for (int s = 0; s < series; s++) {
        char head[160];
        snprintf(head, sizeof head,
                 "%s{\"metric\":\"m\",\"scope\":\"host:h%03d\",\"tag_set\":[\"host:h%03d\"],"
                 "\"query_index\":0,\"interval\":60,\"pointlist\":[",
                 s ? "," : "", s, s);
        put(&v1, head);
        for (int t = 0; t < times; t++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            put(&v1, t ? ",[" : "[");
            put_int(&v1, t0 + 60000LL * t);
            if (x % 10 == 0) put(&v1, ",null]");
            else {
                put(&v1, ",");
                put_dbl(&v1, (double)(x >> 11) / 9007199254740992.0 * 100);
                put(&v1, "]");
            }
        }
        put(&v1, "]}");
        snprintf(head, sizeof head,
                 "%s{\"group_tags\":[\"host:h%03d\"],\"query_index\":0,"
                 "\"unit\":null}",
                 s ? "," : "", s);
        put(&v2, head);
    }
    put(&v1, "]}");
    put(&v2, "],\"times\":[");
    for (int t = 0; t < times; t++) {
        put(&v2, t ? "," : "");
        put_int(&v2, t0 + 60000LL * t);
    }
    put(&v2, "],\"values\":[");
    x = 88172645463325252ULL;
    for (int s = 0; s < series; s++) {
        put(&v2, s ? ",[" : "[");
        for (int t = 0; t < times; t++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            put(&v2, t ? "," : "");
            if (x % 10 == 0) put(&v2, "null");
            else put_dbl(&v2, (double)(x >> 11) / 9007199254740992.0 * 100);
        }
        put(&v2, "]");
    }
    put(&v2, "]}}}");
    double points = (double)series * times, best1 = 1e9, best2 = 1e9, best3 = 1e9;
    double *dense = malloc(sizeof(double) * (size_t)series * (size_t)times);
    char msg[256];
    for (int r = 0; r < rounds; r++) {
        dds_response a;
        double c = now();
        if (dds_parse_query_response_fast(v1.p, v1.len, &a, msg, sizeof msg) != DDSTREAM_OK) {
            fprintf(stderr, "v1: %s\n", msg);
            return 1;
        }
        double d = now() - c;
        best1 = d < best1 ? d : best1;
        dds_response_free(&a);
        dds_v2_response b;
        c = now();
        if (dds_parse_v2_timeseries(v2.p, v2.len, &b, msg, sizeof msg) != DDSTREAM_OK) {
            fprintf(stderr, "v2: %s\n", msg);
            return 1;
        }
        d = now() - c;
        best2 = d < best2 ? d : best2;
        c = now();
        if (dds_v2_densify(&b, t0, 60000, (size_t)times, NULL, dense, msg, sizeof msg) !=
            DDSTREAM_OK)
            return 1;
        d = now() - c;
        best3 = d < best3 ? d : best3;
        dds_v2_response_free(&b);
    }
    printf(
        "{\"series\":%d,\"times\":%d,\"v1_bytes\":%zu,\"v2_bytes\":%zu,"
        "\"v1_parse_ns_per_point\":%.1f,\"v2_parse_ns_per_point\":%.1f,"
        "\"v2_dense_ns_per_point\":%.1f}\n",
        series, times, v1.len, v2.len, best1 / points * 1e9, best2 / points * 1e9,
        best3 / points * 1e9);
    free(v1.p);
    free(v2.p);
    free(dense);
    return 0;
}
