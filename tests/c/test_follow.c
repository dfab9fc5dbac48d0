/*
 * test_follow.c — follow mode end to end against the fake Datadog of with_fake_datadog.py
 * (DDSTREAM_BASE_URL): a simulated hour on a clock the test advances (config.now_fn), each chunk
 * delivered once with the values a bounded stream gives, one request per chunk (counted by the
 * request gate, which sees every attempt), none before a chunk has settled; cancel and close
 * during the wait; restart from a resume token with no gap and no duplicate; the open-ended
 * counts, ddstream_plan's historical part and the config checks.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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

/* 2026-11-01T00:00:00Z, as in test_stream.c: in the fake's past, so it has every point. */
static const int64_t DAY0 = INT64_C(1793491200);
#define STEP    300 /* chunk_seconds: 5 buckets of 60 s */
#define SETTLE  120
#define MAX_REQ 512

/* The simulated clock and what the request gate saw: the clock at each request. */
typedef struct sim {
    atomic_llong now_ms;
    atomic_int requests;
    int64_t request_now_ms[MAX_REQ];
} sim;

static int64_t sim_now(void *data) { return atomic_load(&((sim *)data)->now_ms); }

static int64_t sim_gate(void *data, const ddstream_request_info *info) {
    sim *s = data;
    if (info->phase == DDSTREAM_REQUEST_BEFORE) {
        int n = atomic_fetch_add(&s->requests, 1);
        if (n < MAX_REQ) s->request_now_ms[n] = atomic_load(&s->now_ms);
    }
    return 0;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void follow_config(ddstream_config *cfg, sim *s) {
    ddstream_config_init(cfg);
    cfg->api_key = "test-api-key";
    cfg->app_key = "test-app-key";
    cfg->base_url = getenv("DDSTREAM_BASE_URL");
    cfg->query = "avg:system.cpu.user{*}";
    cfg->range_start = DAY0;
    cfg->range_end = 0;
    cfg->granularity = 60;
    cfg->chunk_seconds = STEP;
    cfg->follow = 1;
    cfg->settle_seconds = SETTLE;
    cfg->max_in_flight = 1; /* request k is chunk k: the gate's record lines up with the plan */
    cfg->max_retries = 1;
    if (s) {
        cfg->now_fn = sim_now;
        cfg->now_data = s;
        cfg->request_gate = sim_gate;
        cfg->request_gate_data = s;
    }
}

/* The reference: the same range as a bounded stream, its avg values in order. */
static size_t reference_avgs(int64_t end, double *out, size_t cap) {
    ddstream_config cfg;
    follow_config(&cfg, NULL);
    cfg.follow = 0;
    cfg.range_end = end;
    ddstream_stream *st = NULL;
    ddstream_error err;
    if (ddstream_open(&cfg, &st, &err) != DDSTREAM_OK) {
        CHECK(0, "reference open: %s", err.message);
        return 0;
    }
    size_t n = 0;
    ddstream_batch *b;
    while (ddstream_next(st, -1, &b, &err) == DDSTREAM_OK) {
        for (size_t i = 0; i < b->length && n < cap; i++) out[n++] = b->avg[i];
        ddstream_batch_free(b);
    }
    ddstream_close(st);
    return n;
}

static int same(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* One simulated hour in 60 s steps after 30 minutes of history. */
static void test_simulated_hour(void) {
    static sim s; /* large: keep it off the stack */
    memset(&s, 0, sizeof s);
    int64_t t0 = (DAY0 + 1800 + SETTLE) * 1000;
    atomic_store(&s.now_ms, t0);
    ddstream_config cfg;
    follow_config(&cfg, &s);

    size_t hist = 0;
    ddstream_error err;
    CHECK(ddstream_plan(&cfg, NULL, 0, &hist, &err) == DDSTREAM_OK, "plan: %s", err.message);
    CHECK(hist == 6, "history of 30 minutes in 5-minute chunks: %zu", hist);

    ddstream_stream *st = NULL;
    if (ddstream_open(&cfg, &st, &err) != DDSTREAM_OK) {
        CHECK(0, "open: %s", err.message);
        return;
    }
    CHECK(ddstream_chunk_count(st) == SIZE_MAX, "open-ended count: %zu", ddstream_chunk_count(st));
    CHECK(ddstream_has_next(st), "a follow stream always has a next chunk");

    static double got[4096];
    size_t rows = 0, delivered = 0;
    double worst_latency = 0.0;
    ddstream_batch *b = NULL;
    /* The history: six chunks at once. */
    for (size_t i = 0; i < hist; i++) {
        ddstream_status rc = ddstream_next(st, 5000, &b, &err);
        CHECK(rc == DDSTREAM_OK, "history chunk %zu: %s", i, ddstream_status_str(rc));
        if (rc != DDSTREAM_OK) break;
        CHECK(b->chunk_index == delivered, "chunk %zu, expected %zu", b->chunk_index, delivered);
        CHECK(b->chunk_count == SIZE_MAX && !b->is_last, "open-ended batch");
        for (size_t r = 0; r < b->length; r++) got[rows++] = b->avg[r];
        delivered++;
        ddstream_batch_free(b);
    }
    CHECK(ddstream_progress(st) == 1.0, "caught up: progress %f", ddstream_progress(st));
    CHECK(ddstream_next(st, 150, &b, &err) == DDSTREAM_TIMEOUT, "nothing settled yet");
    CHECK(atomic_load(&s.requests) == (int)hist, "one request per history chunk: %d",
          atomic_load(&s.requests));

    /* The hour: every 60 s step, a new chunk is due every fifth step. */
    for (int minute = 1; minute <= 60; minute++) {
        int64_t now = t0 + (int64_t)minute * 60000;
        atomic_store(&s.now_ms, now);
        double advanced = mono_s();
        ddstream_clock_changed(st);
        size_t due = (size_t)((now / 1000 - SETTLE - DAY0) / STEP);
        if (due > delivered) {
            ddstream_status rc = ddstream_next(st, 5000, &b, &err);
            CHECK(rc == DDSTREAM_OK, "minute %d: %s", minute, ddstream_status_str(rc));
            if (rc != DDSTREAM_OK) break;
            double latency = mono_s() - advanced;
            if (latency > worst_latency) worst_latency = latency;
            CHECK(b->chunk_index == delivered, "chunk %zu, expected %zu", b->chunk_index,
                  delivered);
            CHECK(b->chunk_start_ms == (DAY0 + (int64_t)delivered * STEP) * 1000,
                  "chunk start %" PRId64, b->chunk_start_ms);
            for (size_t r = 0; r < b->length; r++) got[rows++] = b->avg[r];
            delivered++;
            ddstream_batch_free(b);
        } else {
            CHECK(ddstream_next(st, 30, &b, &err) == DDSTREAM_TIMEOUT,
                  "minute %d: nothing new has settled", minute);
        }
        CHECK(atomic_load(&s.requests) == (int)delivered, "minute %d: %d requests for %zu chunks",
              minute, atomic_load(&s.requests), delivered);
    }
    CHECK(delivered == 18, "an hour after 30 minutes of history: %zu chunks", delivered);
    CHECK(worst_latency < 1.0, "settle to delivery took %.3f s", worst_latency);
    for (int i = 0; i < atomic_load(&s.requests) && i < MAX_REQ; i++) {
        int64_t due_ms = (DAY0 + (int64_t)(i + 1) * STEP + SETTLE) * 1000;
        CHECK(s.request_now_ms[i] >= due_ms, "request %d sent at %" PRId64 " before %" PRId64, i,
              s.request_now_ms[i], due_ms);
    }
    ddstream_close(st);

    static double want[4096];
    size_t n = reference_avgs(DAY0 + 18 * STEP, want, 4096);
    CHECK(n == rows && rows == 18 * 5, "rows: %zu followed, %zu bounded", rows, n);
    for (size_t i = 0; i < n && i < rows; i++)
        CHECK(same(got[i], want[i]), "row %zu: %f != %f", i, got[i], want[i]);
    printf("simulated hour: %zu chunks, %d requests, worst settle-to-delivery %.1f ms\n", delivered,
           atomic_load(&s.requests), worst_latency * 1000);
}

typedef struct waiter {
    ddstream_stream *st;
    ddstream_status rc;
    double returned;
} waiter;

static void *wait_next(void *arg) {
    waiter *w = arg;
    ddstream_batch *b = NULL;
    ddstream_error err;
    w->rc = ddstream_next(w->st, -1, &b, &err);
    w->returned = mono_s();
    ddstream_batch_free(b);
    return NULL;
}

/* The system clock and a long settle: the stream waits; cancel and close end it at once. */
static void test_cancel_and_close_during_wait(void) {
    ddstream_config cfg;
    follow_config(&cfg, NULL);
    cfg.range_start = (int64_t)time(NULL) - 3 * STEP; /* nothing settled for an hour */
    cfg.settle_seconds = 3600;
    ddstream_stream *st = NULL;
    ddstream_error err;
    if (ddstream_open(&cfg, &st, &err) != DDSTREAM_OK) {
        CHECK(0, "open: %s", err.message);
        return;
    }
    waiter w = {st, DDSTREAM_OK, 0.0};
    pthread_t t;
    pthread_create(&t, NULL, wait_next, &w);
    struct timespec pause = {0, 300 * 1000000L};
    nanosleep(&pause, NULL);
    double cancelled = mono_s();
    ddstream_cancel(st);
    pthread_join(t, NULL);
    CHECK(w.rc == DDSTREAM_E_CANCELLED, "cancelled wait: %s", ddstream_status_str(w.rc));
    CHECK(w.returned - cancelled < 0.2, "cancel took %.3f s", w.returned - cancelled);
    double closing = mono_s();
    ddstream_close(st);
    CHECK(mono_s() - closing < 0.2, "close took %.3f s", mono_s() - closing);

    /* Close with no caller waiting: the fetcher's clock wait ends at once. */
    if (ddstream_open(&cfg, &st, &err) != DDSTREAM_OK) {
        CHECK(0, "open: %s", err.message);
        return;
    }
    nanosleep(&pause, NULL);
    closing = mono_s();
    ddstream_close(st);
    CHECK(mono_s() - closing < 0.2, "close during the wait took %.3f s", mono_s() - closing);
}

/* Stop after N chunks, resume from the token later (with another range_end): the next chunk is
 * N, nothing missing, nothing twice. */
static void test_resume(void) {
    static sim s;
    memset(&s, 0, sizeof s);
    atomic_store(&s.now_ms, (DAY0 + 4 * STEP + SETTLE) * 1000);
    ddstream_config cfg;
    follow_config(&cfg, &s);
    ddstream_stream *st = NULL;
    ddstream_error err;
    if (ddstream_open(&cfg, &st, &err) != DDSTREAM_OK) {
        CHECK(0, "open: %s", err.message);
        return;
    }
    ddstream_batch *b = NULL;
    int64_t last_ts = 0;
    for (int i = 0; i < 3; i++) {
        CHECK(ddstream_next(st, 5000, &b, &err) == DDSTREAM_OK, "chunk %d", i);
        if (b) {
            last_ts = b->timestamps[b->length - 1];
            ddstream_batch_free(b);
            b = NULL;
        }
    }
    char token[64];
    CHECK(ddstream_resume_token(st, token, sizeof token) == DDSTREAM_OK, "token");
    ddstream_close(st);

    /* Later: the clock moved on; the restarted stream has a range_end and more settled. */
    atomic_store(&s.now_ms, (DAY0 + 8 * STEP + SETTLE) * 1000);
    atomic_store(&s.requests, 0);
    cfg.resume_token = token;
    cfg.range_end = DAY0 + 2 * STEP;
    if (ddstream_open(&cfg, &st, &err) != DDSTREAM_OK) {
        CHECK(0, "resume: %s", err.message);
        return;
    }
    for (size_t i = 3; i < 8; i++) {
        ddstream_status rc = ddstream_next(st, 5000, &b, &err);
        CHECK(rc == DDSTREAM_OK, "resumed chunk %zu: %s", i, ddstream_status_str(rc));
        if (rc != DDSTREAM_OK) break;
        CHECK(b->chunk_index == i, "resumed at %zu, expected %zu", b->chunk_index, i);
        CHECK(b->timestamps[0] == last_ts + 60, "first row %" PRId64 " after %" PRId64,
              b->timestamps[0], last_ts);
        last_ts = b->timestamps[b->length - 1];
        ddstream_batch_free(b);
    }
    CHECK(atomic_load(&s.requests) == 5, "no chunk fetched twice: %d requests",
          atomic_load(&s.requests));
    ddstream_close(st);

    /* A bounded stream refuses a follow stream's token. */
    ddstream_config bounded;
    follow_config(&bounded, NULL);
    bounded.follow = 0;
    bounded.range_end = DAY0 + 8 * STEP;
    bounded.resume_token = token;
    CHECK(ddstream_open(&bounded, &st, &err) == DDSTREAM_E_CONFIG, "token of another plan");
}

static void test_config(void) {
    ddstream_config cfg;
    ddstream_error err;
    follow_config(&cfg, NULL);
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_OK, "follow without an end: %s",
          err.message);
    cfg.settle_seconds = -1;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG &&
              strstr(err.message, "settle_seconds"),
          "negative settle: %s", err.message);
    follow_config(&cfg, NULL);
    cfg.follow = 0;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG, "no end without follow");
    /* ddstream_plan with range_end: the chunks ending by it, on the follow grid. */
    follow_config(&cfg, NULL);
    cfg.range_end = DAY0 + 7 * STEP + 10;
    ddstream_chunk chunks[8];
    size_t n = 0;
    CHECK(ddstream_plan(&cfg, chunks, 8, &n, &err) == DDSTREAM_OK && n == 7, "history: %zu", n);
    CHECK(chunks[6].start == DAY0 + 6 * STEP && chunks[6].end == DAY0 + 7 * STEP, "last chunk");
    /* max_chunks bounds the history at open. */
    follow_config(&cfg, NULL);
    cfg.max_chunks = 10;
    ddstream_stream *st = NULL;
    CHECK(ddstream_open(&cfg, &st, &err) == DDSTREAM_E_CONFIG && strstr(err.message, "max_chunks"),
          "history past max_chunks: %s", err.message);
}

int main(void) {
    if (!getenv("DDSTREAM_BASE_URL")) {
        fprintf(stderr, "DDSTREAM_BASE_URL is not set: run through with_fake_datadog.py\n");
        return 1;
    }
    test_config();
    test_simulated_hour();
    test_cancel_and_close_during_wait();
    test_resume();
    if (failures) fprintf(stderr, "test_follow: %d failure(s)\n", failures);
    else printf("test_follow: ok\n");
    return failures ? 1 : 0;
}
