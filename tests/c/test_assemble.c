/* test_assemble.c — joining rollups into dense batches, and the coarse-interval check. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assemble.h"
#include "batch.h"
#include "bigalloc.h"
#include "check.h"
#include "parse.h"

#define T0 1681683300LL /* a multiple of 60 s, as chunk bounds are */

static void *xmalloc(size_t n) {
    void *p = malloc(n > 0 ? n : 1);
    if (p == NULL) abort();
    return p;
}

/* Append a series built by hand (allocated the way parse.c does, so dds_response_free frees it). */
static void add_series(dds_response *r, int32_t q, const char *tags, int64_t interval, size_t n,
                       const int64_t *ts_ms, const double *values) {
    dds_series *grown = realloc(r->series, (r->count + 1) * sizeof *grown);
    if (grown == NULL) abort();
    r->series = grown;
    r->capacity = r->count + 1;
    dds_series *s = &r->series[r->count++];
    s->query_index = q;
    s->tags = strcpy(xmalloc(strlen(tags) + 1), tags);
    s->interval = interval;
    s->length = n;
    s->ts_ms = n > 0 ? memcpy(xmalloc(n * sizeof *ts_ms), ts_ms, n * sizeof *ts_ms) : NULL;
    s->values = n > 0 ? memcpy(xmalloc(n * sizeof *values), values, n * sizeof *values) : NULL;
    s->in_block = 0; /* arrays of its own: dds_response_free frees them */
}

static ddstream_status parse_fixture(const char *name, dds_response *r) {
    size_t n;
    char msg[512];
    char *body = read_fixture(name, &n);
    ddstream_status st = dds_parse_query_response(body, n, r, msg, sizeof msg);
    if (st != DDSTREAM_OK) fprintf(stderr, "%s: %s\n", name, msg);
    free(body);
    return st;
}

/* Columns must be 64-byte aligned and non-NULL whatever the row count. */
static void check_layout(const ddstream_batch *b) {
    CHECK_INT(b->struct_size, sizeof(ddstream_batch));
    const void *cols[] = {b->timestamps, b->avg, b->min, b->max, b->sum};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        CHECK(cols[i] != NULL);
        CHECK_INT((uintptr_t)cols[i] % 64, 0);
    }
    if (b->grouped) {
        CHECK(b->series != NULL);
        CHECK(b->series_tags != NULL);
        CHECK_INT((uintptr_t)b->series % 64, 0);
    } else {
        CHECK(b->series == NULL);
        CHECK(b->series_tags == NULL);
        CHECK_INT(b->series_count, 0);
    }
}

static void check_column(const double *col, const double *want, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++) {
        check_count++;
        if (!((isnan(col[i]) && isnan(want[i])) || col[i] == want[i])) {
            check_failures++;
            fprintf(stderr, "%s:%d: %s[%zu] is %.17g, expected %.17g\n", __FILE__, __LINE__, name,
                    i, col[i], want[i]);
        }
    }
}

static void test_ungrouped(void) {
    dds_response r = {0};
    const int64_t T = T0 * 1000;
    /* Before the chunk, a null then a value for one bucket, a duplicate, at and after the end. */
    const int64_t avg_ts[] = {T - 60000,  T,          T + 60000,  T + 60000,
                              T + 120000, T + 120000, T + 300000, T + 360000};
    const double avg_v[] = {-1, 1.0, NAN, 5.0, 2.0, 9.0, -2, -3};
    add_series(&r, DDS_ROLLUP_AVG, "", 60, 8, avg_ts, avg_v);
    const int64_t sum_ts[] = {T + 180000, T}; /* out of order */
    const double sum_v[] = {20.0, 10.0};
    add_series(&r, DDS_ROLLUP_SUM, "", 60, 2, sum_ts, sum_v);
    const int64_t min_ts[] = {T + 240000};
    const double min_v[] = {7.0};
    add_series(&r, DDS_ROLLUP_MIN, "", 60, 1, min_ts, min_v);

    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(dds_assemble(&r, T0, T0 + 300, 60, 0, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b != NULL) {
        check_layout(b);
        CHECK_INT(b->length, 5);
        for (size_t i = 0; i < 5; i++) CHECK_INT(b->timestamps[i], T0 + 60 * (int64_t)i);
        const double avg[] = {1.0, 5.0, 2.0, NAN, NAN};
        const double min[] = {NAN, NAN, NAN, NAN, 7.0};
        const double max[] = {NAN, NAN, NAN, NAN, NAN};
        const double sum[] = {10.0, NAN, NAN, 20.0, NAN};
        check_column(b->avg, avg, 5, "avg");
        check_column(b->min, min, 5, "min");
        check_column(b->max, max, 5, "max");
        check_column(b->sum, sum, 5, "sum");
        CHECK_INT(b->chunk_start_ms, T0 * 1000);
        CHECK_INT(b->chunk_end_ms, (T0 + 300) * 1000);
        CHECK_INT(b->grouped, 0);
        CHECK_INT(b->interval, 60);
        CHECK_INT(b->chunk_index, 0);
        CHECK_INT(b->is_last, 0);
    }
    ddstream_batch_free(b);
    dds_response_free(&r);
}

static void test_ungrouped_zero_series(void) {
    dds_response r = {0};
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_empty_series.json", &r), DDSTREAM_OK);
    CHECK_INT(dds_assemble(&r, T0, T0 + 3600, 60, 0, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b != NULL) {
        check_layout(b);
        CHECK_INT(b->length, 60);
        CHECK_INT(b->timestamps[0], T0);
        CHECK_INT(b->timestamps[59], T0 + 3540);
        for (size_t i = 0; i < b->length; i++)
            CHECK(isnan(b->avg[i]) && isnan(b->min[i]) && isnan(b->max[i]) && isnan(b->sum[i]));
        CHECK_INT(b->interval, 60);
    }
    ddstream_batch_free(b);

    /* An empty chunk: zero rows, valid columns. */
    CHECK_INT(dds_assemble(&r, T0, T0, 60, 0, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b != NULL) {
        check_layout(b);
        CHECK_INT(b->length, 0);
    }
    ddstream_batch_free(b);
    dds_response_free(&r);
}

static void test_ungrouped_fixture(void) {
    dds_response r = {0};
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_ok_ungrouped.json", &r), DDSTREAM_OK);
    CHECK_INT(dds_response_coarse_interval(&r, 60), 0);
    CHECK_INT(dds_assemble(&r, T0, T0 + 180, 60, 0, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b != NULL) {
        CHECK_INT(b->length, 3);
        const double avg[] = {12.5, NAN, 13.25}, min[] = {1.0, NAN, 2.0};
        const double max[] = {40.0, NAN, 41.5}, sum[] = {250.0, NAN, 265.0};
        check_column(b->avg, avg, 3, "avg");
        check_column(b->min, min, 3, "min");
        check_column(b->max, max, 3, "max");
        check_column(b->sum, sum, 3, "sum");
    }
    ddstream_batch_free(b);
    dds_response_free(&r);
}

static void test_ungrouped_two_series(void) {
    dds_response r = {0};
    const int64_t ts[] = {T0 * 1000};
    const double v[] = {1.0};
    add_series(&r, DDS_ROLLUP_AVG, "", 60, 1, ts, v);
    add_series(&r, DDS_ROLLUP_MIN, "host:a", 60, 1, ts, v); /* other rollups may differ */
    add_series(&r, DDS_ROLLUP_MIN, "host:b", 60, 1, ts, v);
    ddstream_batch sentinel;
    ddstream_batch *b = &sentinel; /* must be reset to NULL on failure */
    char msg[512] = "";
    CHECK_INT(dds_assemble(&r, T0, T0 + 60, 60, 0, &b, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK(b == NULL);
    CHECK_STR(msg,
              "the query is not grouped but Datadog returned several series for the min "
              "rollup (tags \"host:a\" and \"host:b\")");
    dds_response_free(&r);
}

/* A chunk split in two and appended back assembles like one answer. */
static void test_split_chunk_merge(void) {
    dds_response first = {0}, second = {0};
    const int64_t T = T0 * 1000;
    const int64_t ts1[] = {T, T + 60000}, ts2[] = {T + 120000, T + 180000};
    const double v1[] = {1, 2}, v2[] = {3, 4};
    add_series(&first, DDS_ROLLUP_AVG, "", 60, 2, ts1, v1);
    add_series(&first, DDS_ROLLUP_SUM, "", 60, 2, ts1, v1);
    add_series(&second, DDS_ROLLUP_SUM, "", 60, 2, ts2, v2);
    add_series(&second, DDS_ROLLUP_AVG, "", 60, 2, ts2, v2);
    CHECK_INT(dds_response_append(&first, &second), DDSTREAM_OK);
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(dds_assemble(&first, T0, T0 + 240, 60, 0, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b != NULL) {
        const double want[] = {1, 2, 3, 4};
        check_column(b->avg, want, 4, "avg");
        check_column(b->sum, want, 4, "sum");
    }
    ddstream_batch_free(b);

    /* The same for grouped answers: (tags, rollup) seen twice is one series. */
    add_series(&first, DDS_ROLLUP_MAX, "host:a", 60, 2, ts2, v2);
    add_series(&first, DDS_ROLLUP_MAX, "host:a", 60, 2, ts1, v1);
    CHECK_INT(dds_assemble(&first, T0, T0 + 240, 60, 1, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b != NULL) {
        CHECK_INT(b->series_count, 2);
        CHECK_INT(b->length, 8);
        CHECK_STR(b->series_tags[0], "");
        CHECK_STR(b->series_tags[1], "host:a");
        const double want[] = {1, 2, 3, 4};
        check_column(b->max + 4, want, 4, "max[host:a]");
    }
    ddstream_batch_free(b);
    dds_response_free(&first);
    dds_response_free(&second);
}

static void test_grouped_fixture(void) {
    dds_response r = {0};
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_ok_grouped.json", &r), DDSTREAM_OK);
    CHECK_INT(dds_assemble(&r, T0, T0 + 180, 60, 1, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b == NULL) {
        fprintf(stderr, "assemble: %s\n", msg);
        dds_response_free(&r);
        return;
    }
    check_layout(b);
    CHECK_INT(b->grouped, 1);
    CHECK_INT(b->series_count, 3);
    CHECK_INT(b->length, 9);
    CHECK_STR(b->series_tags[0], "env:prod,host:db-1");
    CHECK_STR(b->series_tags[1], "host:web-1");
    CHECK_STR(b->series_tags[2], "host:web-2");
    const int32_t series[] = {0, 0, 0, 1, 1, 1, 2, 2, 2};
    for (size_t i = 0; i < 9; i++) {
        CHECK_INT(b->series[i], series[i]);
        CHECK_INT(b->timestamps[i], T0 + 60 * (int64_t)(i % 3));
    }
    const double avg[] = {NAN, NAN, NAN, 0.5, 0.625, 0.75, 2.0, 2.25, NAN};
    const double min[] = {NAN, NAN, NAN, 0.25, 0.5, 0.5, NAN, NAN, NAN};
    const double max[] = {NAN, NAN, NAN, 1.0, 1.25, 1.5, 2.5, 2.75, NAN};
    const double sum[] = {NAN, 10.0, 11.0, 30.0, 37.5, 45.0, NAN, NAN, NAN};
    check_column(b->avg, avg, 9, "avg");
    check_column(b->min, min, 9, "min");
    check_column(b->max, max, 9, "max");
    check_column(b->sum, sum, 9, "sum");
    CHECK_INT(b->interval, 60);
    ddstream_batch_free(b);

    /* The same answer assembled as ungrouped is refused: several tag sets per rollup. */
    CHECK_INT(dds_assemble(&r, T0, T0 + 180, 60, 0, &b, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_CONTAINS(msg, "the query is not grouped but Datadog returned several series for the avg");
    dds_response_free(&r);
}

static void test_grouped_zero_series(void) {
    dds_response r = {0};
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(dds_assemble(&r, T0, T0 + 600, 60, 1, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b != NULL) {
        check_layout(b);
        CHECK_INT(b->length, 0);
        CHECK_INT(b->series_count, 0);
        CHECK_INT(b->grouped, 1);
        CHECK_INT(b->chunk_start_ms, T0 * 1000);
    }
    ddstream_batch_free(b);
}

static void test_bad_query_index(void) {
    dds_response r = {0};
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_index_unknown_rollup.json", &r), DDSTREAM_OK);
    CHECK_INT(dds_assemble(&r, T0, T0 + 60, 60, 0, &b, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "series[1]: query_index 4 is not one of the 4 rollups asked for (0..3)");
    CHECK(b == NULL);
    dds_response_free(&r);
}

static void test_off_grid(void) {
    dds_response r = {0};
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_off_grid.json", &r), DDSTREAM_OK);
    CHECK_INT(dds_response_coarse_interval(&r, 60), 61);
    CHECK_INT(dds_response_coarse_interval(&r, 30), 60); /* interval 60 > 30 */
    CHECK_INT(dds_assemble(&r, T0, T0 + 120, 60, 0, &b, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg,
              "series[0].pointlist[1]: timestamp 1681683330000 ms is not on the 60 s grid "
              "(the answer has another interval)");
    CHECK(b == NULL);
    /* Off-grid is refused even outside the chunk: the whole answer is suspect. */
    CHECK_INT(dds_assemble(&r, T0 + 600, T0 + 660, 60, 0, &b, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK_INT(dds_assemble(&r, T0, T0 + 120, 30, 0, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b != NULL) {
        const double avg[] = {1.0, 2.0, 3.0, NAN};
        check_column(b->avg, avg, 4, "avg");
    }
    ddstream_batch_free(b);
    dds_response_free(&r);
}

static void test_coarse_interval(void) {
    dds_response r = {0};
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_coarse_interval.json", &r), DDSTREAM_OK);
    CHECK_INT(dds_response_coarse_interval(&r, 60), 120);
    CHECK_INT(dds_response_coarse_interval(&r, 120), 0);
    CHECK_INT(dds_response_coarse_interval(&r, 0), 0);
    CHECK_INT(dds_response_coarse_interval(NULL, 60), 0);
    /* At its own granularity the answer assembles, and says which interval it had. */
    CHECK_INT(dds_assemble(&r, T0 - 60, T0 + 300, 120, 0, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b != NULL) {
        CHECK_INT(b->length, 3);
        CHECK_INT(b->interval, 120);
        const double avg[] = {1.5, 2.5, 3.5}, min[] = {1.0, 2.0, 3.0};
        check_column(b->avg, avg, 3, "avg");
        check_column(b->min, min, 3, "min");
    }
    ddstream_batch_free(b);

    /* interval: the answered one when all agree, else the granularity. */
    dds_response m = {0};
    const int64_t ts[] = {T0 * 1000};
    const double v[] = {1};
    add_series(&m, 0, "", 30, 1, ts, v);
    add_series(&m, 1, "", 0, 1, ts, v); /* absent: does not vote */
    add_series(&m, 2, "", 30, 1, ts, v);
    CHECK_INT(dds_response_coarse_interval(&m, 60), 0);
    CHECK_INT(dds_assemble(&m, T0, T0 + 60, 60, 0, &b, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(b != NULL ? b->interval : -1, 30);
    ddstream_batch_free(b);
    add_series(&m, 3, "", 20, 1, ts, v);
    CHECK_INT(dds_assemble(&m, T0, T0 + 60, 60, 0, &b, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(b != NULL ? b->interval : -1, 60);
    ddstream_batch_free(b);
    dds_response_free(&m);
    dds_response_free(&r);
}

static void test_bad_chunks(void) {
    dds_response r = {0};
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(dds_assemble(&r, T0 + 1, T0 + 61, 60, 0, &b, msg, sizeof msg), DDSTREAM_E_INTERNAL);
    CHECK_STR(msg,
              "internal: chunk [1681683301, 1681683361) is not a whole number of 60 s buckets");
    CHECK_INT(dds_assemble(&r, T0, T0 + 30, 60, 0, &b, msg, sizeof msg), DDSTREAM_E_INTERNAL);
    CHECK_INT(dds_assemble(&r, T0 + 60, T0, 60, 0, &b, msg, sizeof msg), DDSTREAM_E_INTERNAL);
    CHECK_INT(dds_assemble(&r, T0, T0 + 60, 0, 0, &b, msg, sizeof msg), DDSTREAM_E_INTERNAL);
    CHECK_INT(dds_assemble(&r, T0, T0 + 60, -60, 0, &b, msg, sizeof msg), DDSTREAM_E_INTERNAL);
    CHECK_INT(dds_assemble(&r, 0, INT64_MAX - INT64_MAX % 60, 60, 0, &b, msg, sizeof msg),
              DDSTREAM_E_INTERNAL);
    CHECK_INT(dds_assemble(NULL, T0, T0 + 60, 60, 0, &b, msg, sizeof msg), DDSTREAM_E_INTERNAL);
    CHECK_INT(dds_assemble(&r, T0, T0 + 60, 60, 0, NULL, msg, sizeof msg), DDSTREAM_E_INTERNAL);
    CHECK_INT(dds_assemble(&r, T0, T0 + 60, 60, 0, &b, NULL, 0), DDSTREAM_OK); /* msg optional */
    ddstream_batch_free(b);
}

static void test_before_1970(void) {
    dds_response r = {0};
    const int64_t ts[] = {-120000, -300000, 0};
    const double v[] = {1.0, 2.0, 3.0};
    add_series(&r, DDS_ROLLUP_AVG, "", 60, 3, ts, v);
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(dds_assemble(&r, -300, 0, 60, 0, &b, msg, sizeof msg), DDSTREAM_OK);
    if (b != NULL) {
        const double avg[] = {2.0, NAN, NAN, 1.0, NAN};
        check_column(b->avg, avg, 5, "avg");
        CHECK_INT(b->timestamps[0], -300);
    }
    ddstream_batch_free(b);
    dds_response_free(&r);
}

/* ------------------------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double large_value(size_t host, int q, size_t k) {
    return (double)host * 1000.0 + q * 100.0 + (double)k * 0.5;
}

/*
 * The largest answer a chunk may bring: 200 groups x 4 rollups x 1500 points (DDS_TEST_LARGE_SERIES
 * scales the groups down for slow runs such as valgrind). Series are written in reverse order and
 * half with float timestamps; every 7th point is null. Linear work finishes in about a second;
 * anything quadratic would not finish in the bound below.
 */
static void test_large(void) {
    size_t hosts = 200, points = 1500;
    const char *env = getenv("DDS_TEST_LARGE_SERIES");
    if (env != NULL && atoi(env) > 0) hosts = (size_t)atoi(env);
    size_t cap = 256 + hosts * 4 * (160 + points * 40), len = 0;
    char *body = xmalloc(cap);
    len += (size_t)snprintf(body + len, cap - len, "{\"status\":\"ok\",\"series\":[");
    for (int q = 3; q >= 0; q--) {
        for (size_t h = hosts; h-- > 0;) {
            len += (size_t)snprintf(body + len, cap - len,
                                    "%s{\"metric\":\"m\",\"query_index\":%d,\"tag_set\":"
                                    "[\"host:h%03zu\"],\"interval\":60,\"aggr\":null,\"unit\":"
                                    "[null,null],\"pointlist\":[",
                                    (q == 3 && h == hosts - 1) ? "" : ",", q, h);
            for (size_t k = 0; k < points; k++) {
                long long ts = (T0 + 60 * (long long)k) * 1000;
                const char *sep = k > 0 ? "," : "";
                if (k % 7 == 3)
                    len += (size_t)snprintf(body + len, cap - len, "%s[%lld,null]", sep, ts);
                else if (h % 2)
                    len += (size_t)snprintf(body + len, cap - len, "%s[%lld.0,%.1f]", sep, ts,
                                            large_value(h, q, k));
                else
                    len += (size_t)snprintf(body + len, cap - len, "%s[%lld,%.1f]", sep, ts,
                                            large_value(h, q, k));
            }
            len += (size_t)snprintf(body + len, cap - len, "]}");
        }
    }
    len += (size_t)snprintf(body + len, cap - len, "]}");
    CHECK(len < cap);

    dds_response r;
    char msg[512] = "";
    double t0 = now_s();
    ddstream_status st = dds_parse_query_response(body, len, &r, msg, sizeof msg);
    double t1 = now_s();
    free(body);
    CHECK_INT(st, DDSTREAM_OK);
    if (st != DDSTREAM_OK) {
        fprintf(stderr, "large body: %s\n", msg);
        return;
    }
    CHECK_INT(r.count, hosts * 4);
    CHECK_INT(dds_response_coarse_interval(&r, 60), 0);
    ddstream_batch *b = NULL;
    double t2 = now_s();
    st = dds_assemble(&r, T0, T0 + 60 * (int64_t)points, 60, 1, &b, msg, sizeof msg);
    double t3 = now_s();
    CHECK_INT(st, DDSTREAM_OK);
    if (b != NULL) {
        CHECK_INT(b->length, hosts * points);
        CHECK_INT(b->series_count, hosts);
        int bad = 0;
        for (size_t h = 0; h < hosts; h++) {
            char want[32];
            snprintf(want, sizeof want, "host:h%03zu", h);
            bad += strcmp(b->series_tags[h], want) != 0;
            for (size_t k = 0; k < points; k++) {
                size_t row = h * points + k;
                const double *cols[4] = {b->avg, b->min, b->max, b->sum};
                bad += b->series[row] != (int32_t)h;
                bad += b->timestamps[row] != T0 + 60 * (int64_t)k;
                for (int q = 0; q < 4; q++) {
                    double v = cols[q][row];
                    bad += k % 7 == 3 ? !isnan(v) : v != large_value(h, q, k);
                }
            }
        }
        CHECK_INT(bad, 0);
    }
    printf("large answer: %zu series x %zu points: parse %.3f s, assemble %.3f s\n", hosts * 4,
           points, t1 - t0, t3 - t2);
    if (getenv("DDS_TEST_NO_TIMING") == NULL) CHECK(t1 - t0 + t3 - t2 < 30.0);
    ddstream_batch_free(b);
    dds_response_free(&r);
}

/*
 * max_rows bounds series x buckets, whatever the answer's size: groups named with empty point
 * lists still get a row per bucket. At the limit the batch is made; one row past it the chunk is
 * refused before any batch exists, and the block offered for the batch is freed (not leaked).
 */
static void test_row_limit(void) {
    enum { GROUPS = 300, BUCKETS = 60 };
    dds_response r = {0};
    const int64_t ts[] = {T0 * 1000 + 120000};
    const double v[] = {4.5};
    for (int g = 0; g < GROUPS; g++) {
        char tags[32];
        snprintf(tags, sizeof tags, "host:w%05d", g);
        add_series(&r, g % 4, tags, 60, g == 7 ? 1 : 0, ts, v);
    }
    const int64_t end = T0 + 60 * BUCKETS;
    const size_t rows = (size_t)GROUPS * BUCKETS;
    for (int with_block = 0; with_block < 2; with_block++) {
        size_t cap = 1 << 20;
        ddstream_batch *b = NULL;
        char msg[512] = "";
        CHECK_INT(dds_assemble_in(&r, T0, end, 60, 1, rows, with_block ? dds_big_alloc(cap) : NULL,
                                  with_block ? cap : 0, &b, msg, sizeof msg),
                  DDSTREAM_OK);
        CHECK(b != NULL);
        if (b != NULL) {
            CHECK_INT(b->length, rows);
            CHECK_INT(b->series_count, GROUPS);
            CHECK_DBL(b->avg[7 * BUCKETS + 2], NAN);
            CHECK_DBL(b->sum[7 * BUCKETS + 2], 4.5); /* group 7 sent its point as sum */
        }
        ddstream_batch_free(b);

        b = NULL;
        CHECK_INT(
            dds_assemble_in(&r, T0, end, 60, 1, rows - 1, with_block ? dds_big_alloc(cap) : NULL,
                            with_block ? cap : 0, &b, msg, sizeof msg),
            DDSTREAM_E_PROTOCOL);
        CHECK(b == NULL);
        CHECK_MSG(strstr(msg, "300 series x 60 buckets = 18000 rows") != NULL &&
                      strstr(msg, "max_batch_rows (17999)") != NULL,
                  "the message names series, buckets, rows and the limit: %s", msg);
    }
    /* A chunk of a single bucket is bounded the same way: rows are series x 1. */
    ddstream_batch *b = NULL;
    char msg[512] = "";
    CHECK_INT(dds_assemble_in(&r, T0, T0 + 60, 60, 1, GROUPS - 1, NULL, 0, &b, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK(b == NULL);
    dds_response_free(&r);

    /* Ungrouped: one series of buckets rows. */
    dds_response u = {0};
    add_series(&u, DDS_ROLLUP_AVG, "", 60, 1, ts, v);
    CHECK_INT(dds_assemble_in(&u, T0, end, 60, 0, BUCKETS, NULL, 0, &b, msg, sizeof msg),
              DDSTREAM_OK);
    CHECK(b != NULL && b->length == BUCKETS);
    ddstream_batch_free(b);
    b = NULL;
    CHECK_INT(dds_assemble_in(&u, T0, end, 60, 0, BUCKETS - 1, NULL, 0, &b, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK(b == NULL);
    dds_response_free(&u);
}

/*
 * Three queries in one stream: 0 ungrouped with avg and max (the mask), 1 grouped by host with
 * avg and max, 2 value-only; the answer comes in no order. Rows: query 0's one dense series,
 * then query 1's hosts in strcmp order, then query 2's one series; statistics outside the mask
 * and the value of four-statistics queries NaN; the avg/min/max/sum of value rows NaN.
 */
static void test_several_queries(void) {
    const dds_subq_ref subs[5] = {{0, DDS_STAT_AVG, NULL},
                                  {0, DDS_STAT_MAX, NULL},
                                  {1, DDS_STAT_AVG, NULL},
                                  {1, DDS_STAT_MAX, NULL},
                                  {2, DDS_STAT_VALUE, NULL}};
    const int32_t grouped[3] = {0, 1, 0};
    dds_shape sh = {subs, 5, grouped, 3, 1, 1, 1};
    int64_t ts[3] = {T0 * 1000, (T0 + 60) * 1000, (T0 + 120) * 1000};
    double v1[3] = {1, 2, 3}, v2[3] = {10, 20, 30}, v3[3] = {5, NAN, 7};
    dds_response r = {0};
    add_series(&r, 4, "", 60, 2, ts + 1, v3);       /* query 2's value, 2 buckets */
    add_series(&r, 3, "host:b", 60, 3, ts, v2);     /* query 1 max, host b */
    add_series(&r, 2, "host:b", 60, 3, ts, v1);     /* query 1 avg, host b */
    add_series(&r, 2, "host:a", 60, 1, ts + 2, v2); /* query 1 avg, host a, last bucket */
    add_series(&r, 1, "env:x", 60, 3, ts, v2);      /* query 0 max (ungrouped: tags "") */
    add_series(&r, 0, "env:x", 60, 3, ts, v1);      /* query 0 avg */
    ddstream_batch *b = NULL;
    char msg[256] = "";
    CHECK_INT(
        dds_assemble_shaped(&r, &sh, T0, T0 + 180, 60, SIZE_MAX, NULL, 0, &b, msg, sizeof msg),
        DDSTREAM_OK);
    if (b == NULL) {
        fprintf(stderr, "%s\n", msg);
        dds_response_free(&r);
        return;
    }
    check_layout(b);
    CHECK_INT(b->length, 4 * 3);
    CHECK_INT(b->series_count, 4);
    CHECK_INT(b->query_count, 3);
    CHECK(b->grouped);
    CHECK(b->query != NULL && b->series_query != NULL && b->value != NULL);
    CHECK_INT((uintptr_t)b->query % 64, 0);
    CHECK_INT((uintptr_t)b->value % 64, 0);
    const char *tags[4] = {"", "host:a", "host:b", ""};
    const int32_t query_of[4] = {0, 1, 1, 2};
    for (size_t g = 0; g < 4; g++) {
        CHECK_STR(b->series_tags[g], tags[g]);
        CHECK_INT(b->series_query[g], query_of[g]);
    }
    for (size_t row = 0; row < b->length; row++) {
        size_t g = row / 3, k = row % 3;
        CHECK_INT(b->timestamps[row], T0 + 60 * (int64_t)k);
        CHECK_INT(b->series[row], (int32_t)g);
        CHECK_INT(b->query[row], query_of[g]);
        CHECK(isnan(b->min[row]) && isnan(b->sum[row])); /* not in the mask */
    }
    /* query 0: avg 1,2,3; max 10,20,30; no value */
    for (size_t k = 0; k < 3; k++) {
        CHECK_DBL(b->avg[k], v1[k]);
        CHECK_DBL(b->max[k], v2[k]);
        CHECK(isnan(b->value[k]));
    }
    /* query 1, host:a: avg only in the last bucket, no max */
    CHECK(isnan(b->avg[3]) && isnan(b->avg[4]));
    CHECK_DBL(b->avg[5], 10);
    CHECK(isnan(b->max[3]) && isnan(b->max[5]));
    /* query 1, host:b */
    for (size_t k = 0; k < 3; k++) {
        CHECK_DBL(b->avg[6 + k], v1[k]);
        CHECK_DBL(b->max[6 + k], v2[k]);
    }
    /* query 2: value only, NaN elsewhere; the first bucket had no point */
    CHECK(isnan(b->value[9]));
    CHECK_DBL(b->value[10], 5);
    CHECK(isnan(b->value[11]));
    for (size_t row = 9; row < 12; row++) CHECK(isnan(b->avg[row]) && isnan(b->max[row]));
    ddstream_batch_free(b);

    /* A grouped query without an answer has no rows; an ungrouped one still has its series. */
    dds_response empty = {0};
    CHECK_INT(
        dds_assemble_shaped(&empty, &sh, T0, T0 + 180, 60, SIZE_MAX, NULL, 0, &b, msg, sizeof msg),
        DDSTREAM_OK);
    if (b) {
        CHECK_INT(b->series_count, 2);
        CHECK_INT(b->length, 6);
        CHECK_INT(b->series_query[0], 0);
        CHECK_INT(b->series_query[1], 2);
        for (size_t row = 0; row < 6; row++) CHECK(isnan(b->avg[row]) && isnan(b->value[row]));
        ddstream_batch_free(b);
    }

    /* Two tag sets for one statistic of an ungrouped query: refused, naming the query. */
    add_series(&r, 1, "env:y", 60, 1, ts, v1);
    CHECK_INT(
        dds_assemble_shaped(&r, &sh, T0, T0 + 180, 60, SIZE_MAX, NULL, 0, &b, msg, sizeof msg),
        DDSTREAM_E_PROTOCOL);
    CHECK_CONTAINS(msg,
                   "the query 0 is not grouped but Datadog returned several series for the "
                   "max statistic");
    /* A query_index past the sub-queries asked for. */
    dds_response bad = {0};
    add_series(&bad, 5, "", 60, 1, ts, v1);
    CHECK_INT(
        dds_assemble_shaped(&bad, &sh, T0, T0 + 180, 60, SIZE_MAX, NULL, 0, &b, msg, sizeof msg),
        DDSTREAM_E_PROTOCOL);
    CHECK_CONTAINS(msg, "query_index 5 is not one of the 5 sub-queries asked for (0..4)");
    dds_response_free(&bad);
    dds_response_free(&r);
}

/* One query given in a list (the query column, no series): the flat shape plus query 0 a row. */
static void test_one_listed_query(void) {
    const dds_subq_ref subs[1] = {{0, DDS_STAT_SUM, NULL}};
    const int32_t grouped[1] = {0};
    dds_shape sh = {subs, 1, grouped, 1, 0, 1, 0};
    int64_t ts[1] = {T0 * 1000};
    double v[1] = {4};
    dds_response r = {0};
    add_series(&r, 0, "", 60, 1, ts, v);
    ddstream_batch *b = NULL;
    char msg[256] = "";
    CHECK_INT(
        dds_assemble_shaped(&r, &sh, T0, T0 + 120, 60, SIZE_MAX, NULL, 0, &b, msg, sizeof msg),
        DDSTREAM_OK);
    if (b) {
        CHECK(!b->grouped && b->series == NULL && b->series_query == NULL && b->value == NULL);
        CHECK_INT(b->length, 2);
        CHECK_INT(b->query[0], 0);
        CHECK_INT(b->query[1], 0);
        CHECK_DBL(b->sum[0], 4);
        CHECK(isnan(b->avg[0]) && isnan(b->sum[1]));
        ddstream_batch_free(b);
    }
    dds_response_free(&r);
}

int main(int argc, char **argv) {
    (void)argc;
    test_ungrouped();
    test_ungrouped_zero_series();
    test_ungrouped_fixture();
    test_ungrouped_two_series();
    test_split_chunk_merge();
    test_grouped_fixture();
    test_grouped_zero_series();
    test_bad_query_index();
    test_several_queries();
    test_one_listed_query();
    test_off_grid();
    test_coarse_interval();
    test_bad_chunks();
    test_before_1970();
    test_large();
    test_row_limit();
    return check_report(argv[0]);
}
