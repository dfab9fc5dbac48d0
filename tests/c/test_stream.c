/*
 * test_stream.c — the whole C path end to end (config, plan, worker thread, libcurl, parse,
 * assemble) against a real fake Datadog server started by tests/c/with_fake_datadog.py, which
 * exports DDSTREAM_BASE_URL (normal server, keys "test-api-key"/"test-app-key" required) and
 * DDSTREAM_SLOW_URL (the same with 2 s latency per query), DDSTREAM_LATENCY_URL (0.3 s),
 * DDSTREAM_WIDE_URL (answers naming 20,000 groups with empty point lists) and
 * DDSTREAM_TIMEOUT_URL (answers "Query timed out" to requests of more than 4 sub-queries).
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ddstream.h"

static int failures;
#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      failures++;                                                                                  \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);                     \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
    }                                                                                              \
  } while (0)

static const char *API_KEY = "test-api-key";
static const char *APP_KEY = "test-app-key";
/* 2026-11-01T00:00:00Z: a fixed, aligned day so counts are exact. */
static const int64_t DAY0 = INT64_C(1793491200);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void base_config(ddstream_config *cfg, const char *query) {
    ddstream_config_init(cfg);
    cfg->api_key = API_KEY;
    cfg->app_key = APP_KEY;
    cfg->base_url = getenv("DDSTREAM_BASE_URL");
    cfg->query = query;
    cfg->range_start = DAY0;
    cfg->range_end = DAY0 + 86400;
    cfg->granularity = 60;
    cfg->chunk_seconds = 14400;
    cfg->max_retries = 1;
}

typedef struct summary {
    size_t batches, rows, nan_avg;
    double sum_avg;
    int64_t first_ts, last_ts;
    int ordered;
    ddstream_status end_status;
} summary;

static summary drain(ddstream_stream *s) {
    summary r = {0, 0, 0, 0.0, -1, -1, 1, DDSTREAM_OK};
    ddstream_batch *b;
    ddstream_error err;
    ddstream_status st;
    int64_t prev = INT64_MIN;
    while ((st = ddstream_next(s, -1, &b, &err)) == DDSTREAM_OK) {
        r.batches++;
        for (size_t i = 0; i < b->length; i++) {
            int64_t ts = b->timestamps[i];
            if (!b->grouped) {
                if (prev != INT64_MIN && ts != prev + 60) r.ordered = 0;
                prev = ts;
            }
            if (r.first_ts < 0 || ts < r.first_ts) r.first_ts = ts;
            if (ts > r.last_ts) r.last_ts = ts;
            if (isnan(b->avg[i])) r.nan_avg++;
            else r.sum_avg += b->avg[i];
        }
        r.rows += b->length;
        ddstream_batch_free(b);
    }
    r.end_status = st;
    return r;
}

static void test_plan_counts(void) {
    ddstream_config cfg;
    base_config(&cfg, "avg:system.cpu.user{*}");
    cfg.range_end = DAY0 + 30 * 86400;
    size_t n = 0;
    cfg.chunk_seconds = 0;
    CHECK(ddstream_plan(&cfg, NULL, 0, &n, NULL) == DDSTREAM_OK, "plan");
    CHECK(n == 29, "30 days at 60 s with automatic chunks: %zu chunks, expected 29", n);
    cfg.chunk_seconds = 14400;
    CHECK(ddstream_plan(&cfg, NULL, 0, &n, NULL) == DDSTREAM_OK, "plan");
    CHECK(n == 180, "30 days in 14400 s chunks: %zu, expected 180", n);
    cfg.chunk_seconds = 10 * 86400; /* above the point cap: clamped to 1500 buckets */
    ddstream_chunk chunks[64];
    CHECK(ddstream_plan(&cfg, chunks, 64, &n, NULL) == DDSTREAM_OK, "plan");
    CHECK(n == 29 && chunks[0].end - chunks[0].start == 90000, "clamped plan: %zu chunks", n);
    /* unaligned range: first bucket is the boundary at or after range_start */
    cfg.range_start = DAY0 + 1;
    cfg.range_end = DAY0 + 3601;
    cfg.chunk_seconds = 0;
    CHECK(ddstream_plan(&cfg, chunks, 64, &n, NULL) == DDSTREAM_OK && n == 1, "plan");
    CHECK(chunks[0].start == DAY0 + 60 && chunks[0].end == DAY0 + 3660,
          "[%" PRId64 ", %" PRId64 ")", chunks[0].start - DAY0, chunks[0].end - DAY0);
}

static void test_config_errors(void) {
    ddstream_config cfg;
    ddstream_error err;
    ddstream_stream *s = NULL;
    base_config(&cfg, "");
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_CONFIG && s == NULL, "empty query");
    CHECK(strstr(err.message, "query") != NULL, "message names the field: %s", err.message);
    base_config(&cfg, "avg:m{*}");
    cfg.range_end = cfg.range_start;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_CONFIG, "start >= end");
    CHECK(strstr(err.message, "range_start") != NULL, "%s", err.message);
    base_config(&cfg, "avg:m{*}");
    cfg.granularity = 0;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_CONFIG, "granularity 0");
    CHECK(strstr(err.message, "granularity") != NULL, "%s", err.message);
    base_config(&cfg, "avg:m{*}");
    cfg.base_url = NULL;
    cfg.site = "datadoghq.example";
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_CONFIG, "unknown site");
    CHECK(strstr(err.message, "site") != NULL, "%s", err.message);
    base_config(&cfg, "avg:m{*}");
    cfg.base_url = "http://198.51.100.7:8080";
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_CONFIG, "plain http to a remote host");
    base_config(&cfg, "avg:m{host:a");
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_CONFIG, "unclosed brace");
    CHECK(strstr(err.message,
                 "query: at character 13: expected '}' to close the scope opened "
                 "at character 6") == err.message,
          "%s", err.message);
    static const char *const two[] = {"avg:a{*}", "avg:b{*}"};
    base_config(&cfg, "avg:m{*}");
    cfg.queries = two;
    cfg.query_count = 2;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_CONFIG, "query and queries");
    CHECK(strstr(err.message, "query and queries are both set") != NULL, "%s", err.message);
    base_config(&cfg, "avg:m{*}");
    cfg.struct_size = 8;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_INVALID_ARGUMENT, "struct_size");
}

static void test_full_stream(int prefetch, summary *out) {
    ddstream_config cfg;
    base_config(&cfg, "avg:system.cpu.user{*}");
    cfg.enable_prefetch = prefetch;
    ddstream_stream *s = NULL;
    ddstream_error err;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (!s) return;
    CHECK(ddstream_chunk_count(s) == 6, "6 chunks of 4 h");
    CHECK(ddstream_has_next(s), "has_next at start");
    summary r = drain(s);
    CHECK(r.end_status == DDSTREAM_END, "ended with %s: %s", ddstream_status_str(r.end_status),
          ddstream_last_error(s));
    CHECK(r.batches == 6 && r.rows == 1440, "batches %zu rows %zu", r.batches, r.rows);
    CHECK(r.ordered, "timestamps contiguous, 60 s apart");
    CHECK(r.first_ts == DAY0 && r.last_ts == DAY0 + 86400 - 60, "first %" PRId64 " last %" PRId64,
          r.first_ts - DAY0, r.last_ts - DAY0);
    /* The fake's documented blackouts on this day (a "(t // 86400) % 7 == 3" day): 12:00-18:00
     * (360 buckets) and 05:00-05:10 (10 buckets) have no raw point, so no value. */
    CHECK(r.nan_avg == 370, "empty buckets: %zu, expected 370", r.nan_avg);
    CHECK(!ddstream_has_next(s) && ddstream_progress(s) == 1.0, "exhausted");
    ddstream_batch *b;
    CHECK(ddstream_next(s, -1, &b, &err) == DDSTREAM_END, "END is sticky");
    /* reset replays the same data */
    CHECK(ddstream_reset(s, &err) == DDSTREAM_OK, "reset");
    summary again = drain(s);
    CHECK(again.rows == r.rows && again.sum_avg == r.sum_avg, "reset replays identical data");
    /* seek to the last chunk */
    CHECK(ddstream_seek(s, 5, &err) == DDSTREAM_OK, "seek");
    summary tail = drain(s);
    CHECK(tail.batches == 1 && tail.first_ts == DAY0 + 5 * 14400, "seek to chunk 5");
    ddstream_close(s);
    *out = r;
}

static void test_grouped(void) {
    ddstream_config cfg;
    base_config(&cfg, "avg:system.cpu.user{*} by {host}");
    cfg.chunk_seconds = 0;
    ddstream_stream *s = NULL;
    ddstream_error err;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (!s) return;
    ddstream_batch *b;
    CHECK(ddstream_next(s, -1, &b, &err) == DDSTREAM_OK, "next: %s", err.message);
    CHECK(b->grouped && b->series_count == 3, "3 hosts, got %zu", b->series_count);
    CHECK(b->length == 3 * 1440, "rows %zu", b->length);
    for (size_t i = 0; i + 1 < b->length; i++) {
        int same = b->series[i] == b->series[i + 1];
        if (same && b->timestamps[i + 1] != b->timestamps[i] + 60) {
            CHECK(0, "row %zu not ordered by time within its series", i);
            break;
        }
    }
    for (size_t k = 0; k + 1 < b->series_count; k++)
        CHECK(strcmp(b->series_tags[k], b->series_tags[k + 1]) < 0, "series ordered by tags");
    CHECK(strncmp(b->series_tags[0], "host:", 5) == 0, "tags %s", b->series_tags[0]);
    ddstream_batch_free(b);
    ddstream_close(s);
}

static void test_errors(void) {
    ddstream_config cfg;
    ddstream_error err;
    ddstream_stream *s = NULL;
    ddstream_batch *b = NULL;
    base_config(&cfg, "avg:system.cpu.user{*");
    /* unbalanced braces never reach the network */
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_CONFIG, "unbalanced");
    /* A function the fake server does not implement: valid to the parser, refused with a 400 */
    base_config(&cfg, "robust_trend(avg:system.cpu.user{*})");
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (s) {
        CHECK(ddstream_next(s, -1, &b, &err) == DDSTREAM_E_QUERY, "bad query: %s", err.message);
        CHECK(err.http_status == 400 && err.chunk_start == DAY0, "http %d", (int)err.http_status);
        CHECK(strstr(err.message, "chunk 1 of 6") != NULL, "names the chunk: %s", err.message);
        CHECK(strcmp(ddstream_last_error(s), err.message) == 0, "last_error");
        /* the same chunk is tried again, never skipped */
        CHECK(ddstream_next(s, -1, &b, &err) == DDSTREAM_E_QUERY && err.chunk_start == DAY0,
              "retry");
        CHECK(ddstream_progress(s) == 0.0, "nothing delivered");
        ddstream_close(s);
    }
    base_config(&cfg, "avg:system.cpu.user{*}");
    cfg.api_key = "wrong-secret-api-key-0123456789";
    s = NULL;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open");
    if (s) {
        CHECK(ddstream_next(s, -1, &b, &err) == DDSTREAM_E_AUTH, "bad key: %s", err.message);
        CHECK(err.http_status == 403, "403");
        CHECK(strstr(err.message, "wrong-secret") == NULL, "key not in message");
        ddstream_close(s);
    }
    CHECK(ddstream_validate(&cfg, &err) == DDSTREAM_E_AUTH, "validate bad key: %s", err.message);
    base_config(&cfg, "avg:system.cpu.user{*}");
    CHECK(ddstream_validate(&cfg, &err) == DDSTREAM_OK, "validate good keys: %s", err.message);
    cfg.app_key = "wrong-app-key-0123456789";
    CHECK(ddstream_validate(&cfg, &err) == DDSTREAM_E_AUTH, "validate bad app key: %s",
          err.message);
}

/* ddstream_validate_start / _wait / _cancel / _free: the result as ddstream_validate gives it,
 * waits in slices while the (2 s) answer is on its way, and a cancel that ends the wait at once. */
static void test_validate_in_slices(void) {
    ddstream_config cfg;
    ddstream_error err;
    ddstream_validation *v = NULL;
    base_config(&cfg, "avg:system.cpu.user{*}");
    CHECK(ddstream_validate_start(&cfg, &v, &err) == DDSTREAM_OK && v, "start: %s", err.message);
    ddstream_status st;
    while ((st = ddstream_validate_wait(v, 50, &err)) == DDSTREAM_TIMEOUT) {
    }
    CHECK(st == DDSTREAM_OK, "validate good keys in slices: %s", err.message);
    CHECK(ddstream_validate_wait(v, 0, &err) == DDSTREAM_OK, "the result stays");
    ddstream_validate_free(v);

    cfg.app_key = "wrong-app-key-0123456789";
    v = NULL;
    CHECK(ddstream_validate_start(&cfg, &v, &err) == DDSTREAM_OK, "start");
    CHECK(
        ddstream_validate_wait(v, -1, &err) == DDSTREAM_E_AUTH && !strstr(err.message, "wrong-app"),
        "bad app key: %s", err.message);
    ddstream_validate_free(v);

    base_config(&cfg, "");
    v = NULL;
    CHECK(ddstream_validate_start(&cfg, &v, &err) == DDSTREAM_E_CONFIG && v == NULL, "bad config");

    base_config(&cfg, "avg:system.cpu.user{*}");
    cfg.base_url = getenv("DDSTREAM_SLOW_URL");
    CHECK(ddstream_validate_start(&cfg, &v, &err) == DDSTREAM_OK, "start slow");
    double t0 = now_s();
    int slices = 0;
    while ((st = ddstream_validate_wait(v, 100, &err)) == DDSTREAM_TIMEOUT && ++slices < 5) {
    }
    CHECK(st == DDSTREAM_TIMEOUT && slices == 5, "the slow answer is still on its way: %s",
          ddstream_status_str(st));
    CHECK(now_s() - t0 < 1.0, "five 100 ms slices took %.3f s", now_s() - t0);
    t0 = now_s();
    ddstream_validate_cancel(v);
    st = ddstream_validate_wait(v, -1, &err);
    double took = now_s() - t0;
    CHECK(st == DDSTREAM_E_CANCELLED, "cancelled: %s", ddstream_status_str(st));
    CHECK(took < 0.2, "cancel ended the wait after %.3f s", took);
    ddstream_validate_free(v);
    /* free while the checks run: cancels and joins, promptly */
    CHECK(ddstream_validate_start(&cfg, &v, &err) == DDSTREAM_OK, "start slow again");
    t0 = now_s();
    ddstream_validate_free(v);
    CHECK(now_s() - t0 < 0.2, "free while running took %.3f s", now_s() - t0);
    ddstream_validate_free(NULL);
}

typedef struct canceller {
    ddstream_stream *s;
    double delay;
} canceller;

static void *cancel_later(void *arg) {
    canceller *c = arg;
    struct timespec ts = {0, (long)(c->delay * 1e9)};
    nanosleep(&ts, NULL);
    ddstream_cancel(c->s);
    return NULL;
}

static void test_cancel_and_close_while_busy(void) {
    const char *slow = getenv("DDSTREAM_SLOW_URL");
    CHECK(slow != NULL, "DDSTREAM_SLOW_URL is set by the runner");
    if (!slow) return;
    ddstream_config cfg;
    base_config(&cfg, "avg:system.cpu.user{*}");
    cfg.base_url = slow;
    ddstream_stream *s = NULL;
    ddstream_error err;
    ddstream_batch *b = NULL;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open");
    if (!s) return;
    /* a timed wait returns TIMEOUT while the slow request is in flight */
    CHECK(ddstream_next(s, 50, &b, &err) == DDSTREAM_TIMEOUT, "timeout slice");
    pthread_t t;
    canceller c = {s, 0.3};
    pthread_create(&t, NULL, cancel_later, &c);
    double t0 = now_s();
    ddstream_status st = ddstream_next(s, -1, &b, &err);
    double waited = now_s() - t0;
    pthread_join(t, NULL);
    CHECK(st == DDSTREAM_E_CANCELLED, "cancelled, got %s", ddstream_status_str(st));
    CHECK(waited < 0.3 + 0.2, "returned %.3f s after the start, cancel was at 0.3 s", waited);
    CHECK(ddstream_next(s, -1, &b, &err) == DDSTREAM_E_CANCELLED, "stays cancelled");
    /* seek clears the cancellation; then close while the worker is mid-request */
    CHECK(ddstream_reset(s, &err) == DDSTREAM_OK, "reset after cancel");
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    t0 = now_s();
    ddstream_close(s);
    CHECK(now_s() - t0 < 0.5, "close while busy took %.3f s", now_s() - t0);
}

/* 8 chunks from url, max_in_flight requests at once. Returns the wall time. */
static double stream_in_flight(const char *url, const char *query, int32_t in_flight,
                               summary *out) {
    ddstream_config cfg;
    base_config(&cfg, query);
    cfg.base_url = url;
    cfg.range_end = DAY0 + 8 * 14400;
    cfg.max_in_flight = in_flight;
    ddstream_stream *s = NULL;
    ddstream_error err;
    double t0 = now_s();
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (!s) return 0.0;
    *out = drain(s);
    double took = now_s() - t0;
    CHECK(out->end_status == DDSTREAM_END, "in_flight %d ended with %s: %s", (int)in_flight,
          ddstream_status_str(out->end_status), ddstream_last_error(s));
    ddstream_close(s);
    return took;
}

static void test_in_flight(void) {
    const char *url = getenv("DDSTREAM_LATENCY_URL");
    CHECK(url != NULL, "DDSTREAM_LATENCY_URL is set by the runner");
    if (!url) return;
    ddstream_config cfg;
    base_config(&cfg, "avg:system.cpu.user{*}");
    ddstream_error err;
    CHECK(cfg.max_in_flight == 4, "default max_in_flight %d", (int)cfg.max_in_flight);
    cfg.max_in_flight = 0;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG &&
              strstr(err.message, "max_in_flight"),
          "max_in_flight 0: %s", err.message);
    cfg.max_in_flight = 33;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG &&
              strstr(err.message, "max_in_flight"),
          "max_in_flight 33: %s", err.message);

    /* One at a time, 8 answers cannot take less than 8 x 0.3 s = 2.4 s. Four at a time they
     * overlap: the first answer alone (a stream sends one request until one succeeds), then
     * rounds of four: about 3 x 0.3 s. Under 2 s proves requests overlapped. The data must be
     * that of one request at a time (read from the normal server: the same dataset, faster). */
    const char *queries[] = {"avg:system.cpu.user{*}", "avg:system.cpu.user{*} by {host}"};
    for (int q = 0; q < 2; q++) {
        summary one = {0}, four = {0};
        stream_in_flight(getenv("DDSTREAM_BASE_URL"), queries[q], 1, &one);
        double t4 = stream_in_flight(url, queries[q], 4, &four);
        CHECK(t4 < 2.0, "%s: four in flight took %.3f s, expected overlapping requests (~0.9 s)",
              queries[q], t4);
        CHECK(one.batches == 8 && four.batches == 8, "batches %zu / %zu", one.batches,
              four.batches);
        CHECK(one.rows == four.rows && one.sum_avg == four.sum_avg && one.nan_avg == four.nan_avg &&
                  one.first_ts == four.first_ts && one.last_ts == four.last_ts &&
                  one.ordered == four.ordered,
              "%s: same data one or four in flight (rows %zu / %zu)", queries[q], one.rows,
              four.rows);
    }

    /* Cancel, then close, while four requests are in flight: both prompt. */
    base_config(&cfg, "avg:system.cpu.user{*}");
    cfg.base_url = getenv("DDSTREAM_SLOW_URL");
    cfg.range_end = DAY0 + 8 * 14400;
    cfg.max_in_flight = 4;
    cfg.prefetch_chunks = 8;
    ddstream_stream *s = NULL;
    ddstream_batch *b = NULL;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open");
    if (!s) return;
    CHECK(ddstream_next(s, -1, &b, &err) == DDSTREAM_OK, "first chunk: %s", err.message); /* ~2 s */
    ddstream_batch_free(b);
    pthread_t t;
    canceller c = {s, 0.3};
    pthread_create(&t, NULL, cancel_later, &c);
    double t0 = now_s();
    ddstream_status st = ddstream_next(s, -1, &b, &err);
    double waited = now_s() - t0;
    pthread_join(t, NULL);
    CHECK(st == DDSTREAM_E_CANCELLED, "cancelled, got %s", ddstream_status_str(st));
    CHECK(waited < 0.3 + 0.2, "returned %.3f s after the start, cancel was at 0.3 s", waited);
    CHECK(ddstream_seek(s, 1, &err) == DDSTREAM_OK, "seek after cancel");
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL); /* four requests in flight again */
    t0 = now_s();
    ddstream_close(s);
    CHECK(now_s() - t0 < 0.2, "close with four in flight took %.3f s", now_s() - t0);
}

/*
 * config.max_chunks: a plan is refused up front when it has more chunks (requests) than the limit,
 * by every entry point, with a message giving the count, the limit and what to change. 30 days
 * at 60 s in 1-minute chunks (43,200) passes the default; 100 years at 1 s in 1 s chunks (3.16e9)
 * does not. At the extremes of the accepted range (year 0 to 9999, granularity 1, chunk 1) the
 * arithmetic stays exact once the limit is raised.
 */
static void test_max_chunks(void) {
    ddstream_config cfg;
    ddstream_error err;
    ddstream_stream *s = NULL;
    size_t n = 0;
    base_config(&cfg, "avg:m{*}");
    cfg.range_end = DAY0 + 30 * 86400;
    cfg.chunk_seconds = 60;
    CHECK(ddstream_plan(&cfg, NULL, 0, &n, &err) == DDSTREAM_OK && n == 43200, "%zu: %s", n,
          err.message);
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_OK, "%s", err.message);
    cfg.max_chunks = 43200; /* at the limit */
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "at the limit: %s", err.message);
    CHECK(s && ddstream_chunk_count(s) == 43200, "count");
    ddstream_close(s);
    s = NULL;
    cfg.max_chunks = 43199; /* one past */
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_CONFIG && s == NULL, "one past the limit");
    CHECK(strstr(err.message, "43200 chunks") && strstr(err.message, "max_chunks (43199)") &&
              strstr(err.message, "chunk_seconds") && strstr(err.message, "granularity"),
          "count, limit and the fix: %s", err.message);
    CHECK(ddstream_plan(&cfg, NULL, 0, &n, &err) == DDSTREAM_E_CONFIG, "plan refuses too");
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG, "validate refuses too");
    CHECK(ddstream_validate(&cfg, &err) == DDSTREAM_E_CONFIG, "before any request");

    base_config(&cfg, "avg:m{*}");
    cfg.range_end = DAY0 + INT64_C(100) * 365 * 86400;
    cfg.granularity = 1;
    cfg.chunk_seconds = 1;
    CHECK(ddstream_plan(&cfg, NULL, 0, &n, &err) == DDSTREAM_E_CONFIG, "100 years of 1 s chunks");
    CHECK(strstr(err.message, "3153600000 chunks") && strstr(err.message, "max_chunks (1000000)"),
          "%s", err.message);
    cfg.max_chunks = -1;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG &&
              strstr(err.message, "max_chunks must be"),
          "negative: %s", err.message);

    /* The widest legal plan, with the limit lifted: computed, never stored. */
    base_config(&cfg, "avg:m{*}");
    cfg.range_start = 0;
    cfg.range_end = INT64_C(253402300799);
    cfg.granularity = 1;
    cfg.chunk_seconds = 1;
    cfg.max_chunks = INT64_MAX;
    cfg.enable_prefetch = 0;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "widest plan: %s", err.message);
    if (s) {
        ddstream_chunk c;
        size_t count = ddstream_chunk_count(s);
        CHECK(count == (size_t)INT64_C(253402300799), "count %zu", count);
        CHECK(ddstream_chunk_at(s, count - 1, &c) == DDSTREAM_OK &&
                  c.start == INT64_C(253402300798) && c.end == INT64_C(253402300799),
              "last chunk [%" PRId64 ", %" PRId64 ")", c.start, c.end);
        CHECK(ddstream_chunk_at(s, count, &c) == DDSTREAM_E_INVALID_ARGUMENT, "past the end");
        CHECK(ddstream_seek(s, count, &err) == DDSTREAM_OK && !ddstream_has_next(s), "seek to end");
        ddstream_close(s);
    }
    /* Largest granularity, chunk_seconds far beyond the cap: one chunk, clamped, no overflow. */
    cfg.granularity = 31536000;
    cfg.chunk_seconds = INT64_MAX;
    cfg.max_chunks = 0;
    CHECK(ddstream_plan(&cfg, NULL, 0, &n, &err) == DDSTREAM_OK && n == 6, "%zu: %s", n,
          err.message);
}

/*
 * config.max_batch_rows against DDSTREAM_WIDE_URL, whose answers name 20,000 groups with empty
 * point lists (~1.4 MB): a full 1500-bucket chunk would be 30 million rows, refused with the
 * default limit before the batch exists; a 10-bucket chunk is 200,000 rows, made at a limit of
 * exactly that and refused one row below it.
 */
static void test_max_batch_rows(void) {
    ddstream_config cfg;
    ddstream_error err;
    ddstream_stream *s = NULL;
    ddstream_batch *b = NULL;
    base_config(&cfg, "avg:system.cpu.user{*} by {host}");
    cfg.base_url = getenv("DDSTREAM_WIDE_URL");
    cfg.range_end = DAY0 + 1500 * 60;
    cfg.chunk_seconds = 0;
    cfg.enable_prefetch = 0;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (s) {
        CHECK(ddstream_next(s, -1, &b, &err) == DDSTREAM_E_PROTOCOL && b == NULL, "30M rows: %s",
              err.message);
        CHECK(strstr(err.message, "chunk 1 of 1") && err.chunk_start == DAY0 &&
                  strstr(err.message, "20000 series x 1500 buckets = 30000000 rows") &&
                  strstr(err.message, "max_batch_rows (10000000)"),
              "names the chunk, series, rows and limit: %s", err.message);
        ddstream_close(s);
    }
    for (int past = 0; past < 2; past++) {
        s = NULL;
        b = NULL;
        cfg.range_end = DAY0 + 600;
        cfg.max_batch_rows = 200000 - past;
        CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
        if (!s) continue;
        ddstream_status st = ddstream_next(s, -1, &b, &err);
        if (!past) {
            CHECK(st == DDSTREAM_OK && b && b->length == 200000 && b->series_count == 20000,
                  "at the limit: %s", st == DDSTREAM_OK ? "" : err.message);
            CHECK(b && isnan(b->avg[0]) && isnan(b->sum[199999]), "no values, all rows");
        } else {
            CHECK(st == DDSTREAM_E_PROTOCOL && !b, "one row past the limit");
            CHECK(strstr(err.message, "= 200000 rows") && strstr(err.message, "(199999)"), "%s",
                  err.message);
        }
        ddstream_batch_free(b);
        ddstream_close(s);
    }
    cfg.max_batch_rows = -5;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG &&
              strstr(err.message, "max_batch_rows must be"),
          "negative: %s", err.message);
}

/* Each row of a stream of several queries: the same bucket and values as the query's own
 * single-query stream gives (the library's one-query path, long tested against the truth). */
static void compare_with_single(const ddstream_batch *multi, int32_t q, const char *query,
                                const char *base_url) {
    ddstream_config cfg;
    base_config(&cfg, query);
    cfg.base_url = base_url;
    cfg.range_start = multi->chunk_start_ms / 1000;
    cfg.range_end = multi->chunk_end_ms / 1000;
    ddstream_stream *s = NULL;
    ddstream_error err;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (!s) return;
    ddstream_batch *one = NULL;
    CHECK(ddstream_next(s, -1, &one, &err) == DDSTREAM_OK, "next: %s", err.message);
    if (one) {
        size_t k = 0; /* row k of the single-query batch */
        for (size_t i = 0; i < multi->length; i++) {
            if (multi->query[i] != q) continue;
            if (k >= one->length) {
                CHECK(0, "query %d has more rows than alone (%zu)", (int)q, one->length);
                break;
            }
            const char *tags = multi->series_tags[multi->series[i]];
            const char *alone = one->grouped ? one->series_tags[one->series[k]] : "";
            CHECK(strcmp(tags, alone) == 0, "row %zu: series %s, alone %s", i, tags, alone);
            CHECK(multi->timestamps[i] == one->timestamps[k], "row %zu: timestamp", i);
            const double *m[4] = {multi->avg, multi->min, multi->max, multi->sum};
            const double *o[4] = {one->avg, one->min, one->max, one->sum};
            for (int c = 0; c < 4; c++)
                CHECK((isnan(m[c][i]) && isnan(o[c][k])) || m[c][i] == o[c][k],
                      "row %zu column %d: %g vs %g alone", i, c, m[c][i], o[c][k]);
            k++;
        }
        CHECK(k == one->length, "query %d: %zu rows, %zu alone", (int)q, k, one->length);
        ddstream_batch_free(one);
    }
    ddstream_close(s);
}

/* Twelve queries, every other one grouped by host: one stream, rows ordered by query then tags
 * then time, each query's rows equal to its own stream's. Then the same against a server that
 * answers "Query timed out" to more than 4 sub-queries a request: the same batches. */
static void test_several_queries(void) {
    char texts[12][64];
    const char *queries[12];
    for (int i = 0; i < 12; i++) {
        snprintf(texts[i], sizeof texts[i],
                 i % 2 ? "max:multi.q%02d{*} by {host}" : "avg:multi.q%02d{*}", i);
        queries[i] = texts[i];
    }
    ddstream_config cfg;
    base_config(&cfg, NULL);
    cfg.queries = queries;
    cfg.query_count = 12;
    cfg.range_end = DAY0 + 4 * 3600;
    ddstream_stream *s = NULL;
    ddstream_error err;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (!s) return;
    ddstream_batch *b = NULL;
    CHECK(ddstream_next(s, -1, &b, &err) == DDSTREAM_OK, "next: %s", err.message);
    ddstream_close(s);
    if (!b) return;
    CHECK(b->grouped && b->query && b->series_query && !b->value, "columns");
    CHECK(b->query_count == 12, "query_count %zu", b->query_count);
    CHECK(b->series_count == 6 + 6 * 3, "6 ungrouped + 6 x 3 hosts: %zu", b->series_count);
    CHECK(b->length == b->series_count * 240, "rows %zu", b->length);
    for (size_t i = 0; i + 1 < b->length; i++) {
        CHECK(b->query[i] <= b->query[i + 1], "row %zu: ordered by query", i);
        CHECK(b->query[i] == b->series_query[b->series[i]], "row %zu: query of its series", i);
    }
    for (size_t k = 0; k < b->series_count; k++) {
        int32_t q = b->series_query[k];
        CHECK(q % 2 ? strncmp(b->series_tags[k], "host:", 5) == 0 : b->series_tags[k][0] == 0,
              "series %zu of query %d: tags '%s'", k, (int)q, b->series_tags[k]);
        if (k + 1 < b->series_count && b->series_query[k + 1] == q)
            CHECK(strcmp(b->series_tags[k], b->series_tags[k + 1]) < 0, "tags ordered");
    }
    compare_with_single(b, 0, queries[0], cfg.base_url);
    compare_with_single(b, 7, queries[7], cfg.base_url);

    /* Query timed out above 4 sub-queries: 48 -> 35 + 13 -> ... -> 4 or fewer each; the same
     * values. */
    const char *timeout_url = getenv("DDSTREAM_TIMEOUT_URL");
    cfg.base_url = timeout_url;
    CHECK(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    if (s) {
        ddstream_batch *again = NULL;
        CHECK(ddstream_next(s, -1, &again, &err) == DDSTREAM_OK, "next: %s", err.message);
        if (again) {
            CHECK(again->length == b->length && again->series_count == b->series_count,
                  "split: %zu rows", again->length);
            size_t n = again->length < b->length ? again->length : b->length;
            CHECK(memcmp(again->query, b->query, n * sizeof(int32_t)) == 0, "split: query");
            CHECK(memcmp(again->series, b->series, n * sizeof(int32_t)) == 0, "split: series");
            CHECK(memcmp(again->avg, b->avg, n * sizeof(double)) == 0, "split: avg");
            CHECK(memcmp(again->sum, b->sum, n * sizeof(double)) == 0, "split: sum");
            ddstream_batch_free(again);
        }
        ddstream_close(s);
    }
    ddstream_batch_free(b);
}

int main(void) {
    if (!getenv("DDSTREAM_BASE_URL")) {
        fprintf(stderr, "run me through tests/c/with_fake_datadog.py\n");
        return 1;
    }
    summary with_prefetch = {0}, without = {0};
    test_plan_counts();
    test_config_errors();
    test_full_stream(1, &with_prefetch);
    test_full_stream(0, &without);
    CHECK(with_prefetch.rows == without.rows && with_prefetch.sum_avg == without.sum_avg,
          "prefetch on and off give the same data");
    test_grouped();
    test_errors();
    test_validate_in_slices();
    test_cancel_and_close_while_busy();
    test_in_flight();
    test_max_chunks();
    test_max_batch_rows();
    test_several_queries();
    if (failures) {
        fprintf(stderr, "test_stream: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_stream: all checks passed\n");
    return 0;
}
