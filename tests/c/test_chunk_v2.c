/*
 * test_chunk_v2.c — one chunk over v2 (chunk_v2.c) against the fake Datadog servers of
 * tests/c/with_fake_datadog.py: a grouped formula equal cell for cell to v1's answer to the same
 * expression; an ungrouped formula without data still one dense NaN series; an answer coarsened
 * over the point cap split and refetched (3 requests, identical to asking the halves); data
 * spaced wider than asked (a term's own 120 s rollup) told from a coarsening once and then
 * remembered; times off the grid split down to one bucket, then an error naming the chunk.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "check.h"
#include "chunk_v2.h"
#include "config.h"
#include "fetch.h"
#include "log.h"
#include "parse.h"

/* 2026-11-01T04:00:00Z, a multiple of 60, 90, 120 and 180 s; 05:00-05:10 is the fake's blackout. */
static const int64_t T0 = INT64_C(1793491200) + 4 * 3600;
enum { HOSTS = 3 };

static ddstream_status read_v1(void *arg, char *data, size_t len, ddstream_error *err) {
    char msg[300];
    ddstream_status st = dds_parse_query_response_fast(data, len, arg, msg, sizeof msg);
    if (st != DDSTREAM_OK) snprintf(err->message, sizeof err->message, "%s", msg);
    return st;
}

/* The v1 answer to expr over [start, end) at 60 s, placed on the chunk's rows by tags. */
static void check_against_v1(dds_http *h, const char *expr, const dds_v2_chunk *c) {
    char *esc = dds_http_escape(h, expr);
    char path[1024];
    snprintf(path, sizeof path, "/api/v1/query?from=%lld&to=%lld&query=%s", (long long)c->start,
             (long long)(c->start + (int64_t)c->buckets * 60 - 1), esc);
    free(esc);
    dds_response v1;
    memset(&v1, 0, sizeof v1);
    ddstream_error err;
    CHECK(dds_http_get_read(h, path, 1, read_v1, &v1, &err) == DDSTREAM_OK);
    CHECK_INT(v1.count, c->series_count);
    size_t compared = 0;
    for (size_t k = 0; k < v1.count; k++) {
        size_t row = c->series_count;
        for (size_t j = 0; j < c->series_count; j++)
            if (strcmp(c->tags[j], v1.series[k].tags) == 0) row = j;
        CHECK_MSG(row < c->series_count, "v1 series '%s' missing", v1.series[k].tags);
        if (row == c->series_count) continue;
        for (size_t p = 0; p < v1.series[k].length; p++) {
            int64_t b = (v1.series[k].ts_ms[p] / 1000 - c->start) / 60;
            CHECK_DBL(c->values[row * c->buckets + (size_t)b], v1.series[k].values[p]);
            compared++;
        }
    }
    CHECK_INT(compared, c->series_count * c->buckets);
    dds_response_free(&v1);
}

int main(int argc, char **argv) {
    (void)argc;
    if (getenv("DDSTREAM_BASE_URL") == NULL) {
        fprintf(stderr, "run through with_fake_datadog.py\n");
        return 2;
    }
    ddstream_config cfg;
    ddstream_config_init(&cfg);
    cfg.api_key = "test-api-key";
    cfg.app_key = "test-app-key";
    cfg.base_url = getenv("DDSTREAM_BASE_URL");
    cfg.query = "avg:a{*}";
    cfg.range_start = T0;
    cfg.range_end = T0 + 86400;
    cfg.granularity = 60;
    cfg.max_retries = 1;
    ddstream_error err;
    dds_settings s;
    CHECK(dds_settings_load(&cfg, &s, &err) == DDSTREAM_OK);
    dds_log log;
    dds_log_init(&log, DDSTREAM_LOG_ERROR, NULL, NULL, 1, s.api_key, s.app_key);
    dds_cancel cancel;
    CHECK(dds_cancel_init(&cancel) == 0);
    dds_http *h = dds_http_new(&s, &log, &cancel, &err);
    CHECK(h != NULL);

    /* A grouped formula over two queries, and an ungrouped one over a metric without data. */
    dds_v2_query q[3] = {
        {"a", "avg:a{*} by {host}", NULL}, {"b", "avg:b{*}", NULL}, {"n", "avg:nodata.x{*}", NULL}};
    const char *formulas[] = {"a / b * 100", "n * 2"};
    const int32_t grouped[] = {1, 0};
    dds_v2_plan plan = {q, 3, formulas, 2, grouped, 60, NULL};
    dds_v2_memory mem = {0, 0};
    dds_v2_chunk c;
    ddstream_status st = dds_v2_fetch_chunk(h, &plan, T0, T0 + 7200, &mem, &c, &err);
    CHECK_MSG(st == DDSTREAM_OK, "%s", err.message);
    CHECK_INT(mem.requests, 1);
    CHECK_INT(c.series_count, HOSTS + 1);
    CHECK_INT(c.buckets, 120);
    CHECK_STR(c.tags[0], "host:h00");
    CHECK_STR(c.tags[2], "host:h02");
    CHECK_INT(c.formula[HOSTS], 1);
    CHECK_STR(c.tags[HOSTS], "");
    for (size_t b = 0; b < c.buckets; b++) CHECK_DBL(c.values[HOSTS * c.buckets + b], NAN);
    dds_v2_chunk only_grouped = c;
    only_grouped.series_count = HOSTS; /* the v1 comparison covers the grouped formula */
    check_against_v1(h, "avg:a{*} by {host}.rollup(avg,60) / avg:b{*}.rollup(avg,60) * 100",
                     &only_grouped);
    dds_v2_chunk_free(&c);

    /* 2000 buckets: the fake coarsens to 120 s (over its 1500-point cap), silently. Split once,
     * each half on the grid: three requests, the same as asking the halves. */
    dds_v2_query one[1] = {{"a", "avg:a{*} by {host}", NULL}};
    const int32_t g1[] = {1};
    dds_v2_plan p1 = {one, 1, NULL, 0, g1, 60, NULL};
    mem = (dds_v2_memory){0, 0};
    st = dds_v2_fetch_chunk(h, &p1, T0, T0 + 2000 * 60, &mem, &c, &err);
    CHECK_MSG(st == DDSTREAM_OK, "%s", err.message);
    CHECK_INT(mem.requests, 3);
    CHECK_INT(mem.sparse_spacing_ms, 0);
    CHECK_INT(c.buckets, 2000);
    dds_v2_chunk h1, h2;
    dds_v2_memory m2 = {0, 0};
    CHECK(dds_v2_fetch_chunk(h, &p1, T0, T0 + 1000 * 60, &m2, &h1, &err) == DDSTREAM_OK);
    CHECK(dds_v2_fetch_chunk(h, &p1, T0 + 1000 * 60, T0 + 2000 * 60, &m2, &h2, &err) ==
          DDSTREAM_OK);
    CHECK_INT(m2.requests, 2);
    size_t odd_values = 0;
    for (size_t j = 0; j < c.series_count && j < h1.series_count; j++) {
        CHECK_STR(c.tags[j], h1.tags[j]);
        for (size_t b = 0; b < 1000; b++) {
            CHECK_DBL(c.values[j * 2000 + b], h1.values[j * 1000 + b]);
            CHECK_DBL(c.values[j * 2000 + 1000 + b], h2.values[j * 1000 + b]);
            odd_values += (b % 2 == 1) && !isnan(c.values[j * 2000 + b]);
        }
    }
    /* The 60 s buckets, not the 120 s ones: every odd bucket of the first 1000 has a value
     * except those of the blackouts (2026-11-01 is a Sunday: 05:00-05:10 holds 5 odd buckets,
     * 12:00-18:00 holds 180), for each of the 3 hosts. */
    CHECK_INT(odd_values, HOSTS * (500 - 5 - 180));
    check_against_v1(h, "avg:a{*} by {host}.rollup(avg,60)", &h1);
    dds_v2_chunk_free(&h1);
    dds_v2_chunk_free(&h2);
    dds_v2_chunk_free(&c);

    /* The term's own 120 s rollup: spaced wider than asked and aligned, like a coarsening. The
     * halves are spaced the same: it is the data's spacing, taken as it is and remembered. */
    dds_v2_query wide[1] = {{"a", "avg:a{*}.rollup(avg,120)", NULL}};
    const int32_t g0[] = {0};
    dds_v2_plan pw = {wide, 1, NULL, 0, g0, 60, NULL};
    mem = (dds_v2_memory){0, 0};
    st = dds_v2_fetch_chunk(h, &pw, T0, T0 + 7200, &mem, &c, &err);
    CHECK_MSG(st == DDSTREAM_OK, "%s", err.message);
    CHECK_INT(mem.requests, 3);
    CHECK_INT(mem.sparse_spacing_ms, 120000);
    CHECK_INT(c.series_count, 1);
    size_t even = 0, odd = 0;
    for (size_t b = 0; b < c.buckets; b++) {
        if (isnan(c.values[b])) continue;
        if (b % 2) odd++;
        else even++;
    }
    CHECK_INT(odd, 0);
    CHECK_INT(even, 60 - 5); /* the blackout holds five 120 s buckets */
    dds_v2_chunk_free(&c);
    st = dds_v2_fetch_chunk(h, &pw, T0 + 7200, T0 + 14400, &mem, &c, &err);
    CHECK(st == DDSTREAM_OK);
    CHECK_INT(mem.requests, 4); /* remembered: one request */
    dds_v2_chunk_free(&c);

    /* A 90 s rollup on a 60 s grid: times off it. Split down to one bucket, then an error. */
    dds_v2_query off[1] = {{"a", "avg:a{*}.rollup(avg,90)", NULL}};
    dds_v2_plan po = {off, 1, NULL, 0, g0, 60, NULL};
    mem = (dds_v2_memory){0, 0};
    st = dds_v2_fetch_chunk(h, &po, T0, T0 + 240, &mem, &c, &err);
    CHECK_INT(st, DDSTREAM_E_PROTOCOL);
    CHECK_CONTAINS(err.message, "is not on the 60 s grid");
    CHECK_INT(err.chunk_start, T0);
    CHECK_INT(err.chunk_end, T0 + 240);
    CHECK(mem.requests >= 3);
    CHECK(c.series_count == 0 && c.values == NULL);

    /* Bounds off the grid are refused before anything is sent. */
    mem = (dds_v2_memory){0, 0};
    CHECK(dds_v2_fetch_chunk(h, &po, T0 + 1, T0 + 240, &mem, &c, &err) ==
          DDSTREAM_E_INVALID_ARGUMENT);
    CHECK_INT(mem.requests, 0);

    dds_http_free(h);
    dds_cancel_destroy(&cancel);
    dds_log_destroy(&log);
    dds_settings_free(&s);
    return check_report(argv[0]);
}
