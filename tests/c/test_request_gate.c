/*
 * test_request_gate.c — the request gate (ddstream_config.request_gate) end to end against the
 * fake Datadog servers of tests/c/with_fake_datadog.py: every query attempt asks the gate first
 * and tells it how it ended, exactly once; a wait the gate asks for is waited (and cancellable); a
 * refusal fails the chunk with DDSTREAM_E_RATE_LIMITED, and the next call asks again; the gate's
 * data is released once, after the last call, and not at all when ddstream_open fails. Several
 * fetcher threads call the gate at once, so under TSan this also checks the library adds no race.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "ddstream.h"

/* 2026-11-01T00:00:00Z. */
static const int64_t DAY0 = INT64_C(1793491200);

typedef struct gate {
    atomic_int before, answered, no_answer, released, in_gate, max_in_gate;
    atomic_int status_200, with_headers, bad_attempt;
    atomic_int waits_left;    /* BEFORE answers "wait 30 ms" this many times first */
    atomic_int refuse;        /* BEFORE answers "no" while this is nonzero */
    atomic_int after_release; /* a call after the release: a use after free in real code */
} gate;

static int64_t gate_fn(void *user, const ddstream_request_info *info) {
    gate *g = user;
    if (atomic_load(&g->released)) atomic_fetch_add(&g->after_release, 1);
    if (info->struct_size != sizeof *info || info->attempt < 0)
        atomic_fetch_add(&g->bad_attempt, 1);
    int inside = atomic_fetch_add(&g->in_gate, 1) + 1;
    int seen = atomic_load(&g->max_in_gate);
    while (inside > seen && !atomic_compare_exchange_weak(&g->max_in_gate, &seen, inside)) {
    }
    int64_t answer = 0;
    switch (info->phase) {
    case DDSTREAM_REQUEST_BEFORE:
        if (atomic_load(&g->refuse)) {
            answer = -1;
            break;
        }
        if (atomic_fetch_sub(&g->waits_left, 1) > 0) {
            answer = 30;
            break;
        }
        atomic_fetch_add(&g->before, 1);
        break;
    case DDSTREAM_REQUEST_ANSWERED:
        atomic_fetch_add(&g->answered, 1);
        if (info->http_status == 200) atomic_fetch_add(&g->status_200, 1);
        if (info->ratelimit_limit > 0 && info->ratelimit_remaining >= 0 &&
            info->ratelimit_reset_ms >= 0)
            atomic_fetch_add(&g->with_headers, 1);
        break;
    case DDSTREAM_REQUEST_NO_ANSWER: atomic_fetch_add(&g->no_answer, 1); break;
    default: atomic_fetch_add(&g->bad_attempt, 1);
    }
    /* Linger a little so that fetcher threads overlap inside the gate. */
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_fetch_sub(&g->in_gate, 1);
    return answer;
}

static void release_fn(void *user) {
    gate *g = user;
    atomic_fetch_add(&g->released, 1);
}

static void base_config(ddstream_config *cfg, gate *g) {
    ddstream_config_init(cfg);
    cfg->api_key = "test-api-key";
    cfg->app_key = "test-app-key";
    cfg->base_url = getenv("DDSTREAM_BASE_URL");
    cfg->query = "avg:system.cpu.user{*}";
    cfg->range_start = DAY0;
    cfg->range_end = DAY0 + 86400;
    cfg->granularity = 60;
    cfg->chunk_seconds = 3600; /* 24 chunks */
    cfg->max_in_flight = 4;
    cfg->prefetch_chunks = 8;
    cfg->max_retries = 1;
    cfg->request_gate = gate_fn;
    cfg->request_gate_data = g;
    cfg->request_gate_release = release_fn;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every chunk asks once, is answered once, and the release comes once, at close. */
static void test_every_request_passes_the_gate(void) {
    gate g = {0};
    atomic_store(&g.waits_left, 3);
    ddstream_config cfg;
    base_config(&cfg, &g);
    ddstream_stream *s = NULL;
    ddstream_error err;
    double t0 = now_s();
    CHECK_MSG(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    size_t batches = 0;
    ddstream_batch *b;
    ddstream_status st;
    while ((st = ddstream_next(s, -1, &b, &err)) == DDSTREAM_OK) {
        batches++;
        ddstream_batch_free(b);
    }
    double took = now_s() - t0;
    CHECK_MSG(st == DDSTREAM_END, "end: %s", err.message);
    CHECK_MSG(batches == 24, "batches: %zu", batches);
    CHECK_MSG(atomic_load(&g.before) == 24, "let through: %d, expected one per chunk",
              atomic_load(&g.before));
    CHECK_MSG(atomic_load(&g.answered) == 24 && atomic_load(&g.status_200) == 24,
              "answered: %d (200: %d)", atomic_load(&g.answered), atomic_load(&g.status_200));
    CHECK_MSG(atomic_load(&g.with_headers) == 24, "answers with x-ratelimit-* values: %d",
              atomic_load(&g.with_headers));
    CHECK_MSG(atomic_load(&g.no_answer) == 0, "no answer: %d", atomic_load(&g.no_answer));
    CHECK_MSG(took >= 0.03, "the gate's waits were waited: %.3f s", took);
    CHECK_MSG(atomic_load(&g.max_in_gate) >= 2, "fetcher threads overlapped in the gate: %d",
              atomic_load(&g.max_in_gate));
    CHECK_MSG(atomic_load(&g.released) == 0, "released before close");
    ddstream_close(s);
    CHECK_MSG(atomic_load(&g.released) == 1, "released %d times at close",
              atomic_load(&g.released));
    CHECK_MSG(atomic_load(&g.after_release) == 0, "called after its release");
    CHECK_MSG(atomic_load(&g.bad_attempt) == 0, "malformed info");
}

/* A refusal fails the chunk (naming the gate); once the gate says yes, the same chunk comes. */
static void test_refusal_then_retry(void) {
    gate g = {0};
    atomic_store(&g.refuse, 1);
    ddstream_config cfg;
    base_config(&cfg, &g);
    ddstream_stream *s = NULL;
    ddstream_error err;
    CHECK_MSG(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    ddstream_batch *b = NULL;
    ddstream_status st = ddstream_next(s, -1, &b, &err);
    CHECK_MSG(st == DDSTREAM_E_RATE_LIMITED, "refused: %s (%s)", ddstream_status_str(st),
              err.message);
    CHECK_MSG(strstr(err.message, "request gate") != NULL, "message names the gate: %s",
              err.message);
    CHECK_MSG(err.chunk_start == DAY0, "error names the first chunk");
    atomic_store(&g.refuse, 0);
    st = ddstream_next(s, -1, &b, &err);
    CHECK_MSG(st == DDSTREAM_OK && b && b->chunk_start_ms == DAY0 * 1000,
              "the refused chunk comes next: %s", err.message);
    if (st == DDSTREAM_OK) ddstream_batch_free(b);
    ddstream_close(s);
    CHECK_MSG(atomic_load(&g.released) == 1, "released once");
    /* close cancels the prefetches in flight: those end with no answer */
    CHECK_MSG(atomic_load(&g.answered) + atomic_load(&g.no_answer) == atomic_load(&g.before) &&
                  atomic_load(&g.answered) >= 1,
              "every attempt let through is settled once: before %d answered %d no answer %d",
              atomic_load(&g.before), atomic_load(&g.answered), atomic_load(&g.no_answer));
}

/* A gate that keeps asking to wait is interrupted by ddstream_cancel from another thread. */
static void *cancel_later(void *arg) {
    struct timespec ts = {0, 150 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ddstream_cancel(arg);
    return NULL;
}

static void test_cancel_while_gated(void) {
    gate g = {0};
    atomic_store(&g.waits_left, 1000000); /* 30 ms waits for ever */
    ddstream_config cfg;
    base_config(&cfg, &g);
    ddstream_stream *s = NULL;
    ddstream_error err;
    CHECK_MSG(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, s);
    double t0 = now_s();
    ddstream_batch *b = NULL;
    ddstream_status st = ddstream_next(s, -1, &b, &err);
    double took = now_s() - t0;
    pthread_join(t, NULL);
    CHECK_MSG(st == DDSTREAM_E_CANCELLED, "cancelled: %s (%s)", ddstream_status_str(st),
              err.message);
    CHECK_MSG(took < 2.0, "cancel interrupted the gate's waits: %.3f s", took);
    ddstream_close(s);
    CHECK_MSG(atomic_load(&g.before) == 0 && atomic_load(&g.answered) == 0, "nothing was sent");
    CHECK_MSG(atomic_load(&g.released) == 1, "released once");
}

/* A network failure is settled as "no answer"; a failed open does not release. */
static void test_no_answer_and_failed_open(void) {
    gate g = {0};
    ddstream_config cfg;
    base_config(&cfg, &g);
    cfg.base_url = "http://127.0.0.1:9"; /* discard port: nothing listens, connection refused */
    cfg.max_retries = 1;
    cfg.retry_backoff_ms = 1;
    ddstream_stream *s = NULL;
    ddstream_error err;
    CHECK_MSG(ddstream_open(&cfg, &s, &err) == DDSTREAM_OK, "open: %s", err.message);
    ddstream_batch *b = NULL;
    ddstream_status st = ddstream_next(s, -1, &b, &err);
    CHECK_MSG(st == DDSTREAM_E_NETWORK, "connection refused: %s (%s)", ddstream_status_str(st),
              err.message);
    ddstream_close(s);
    CHECK_MSG(atomic_load(&g.before) >= 2 && atomic_load(&g.no_answer) == atomic_load(&g.before),
              "every attempt settled as no answer: before %d, no answer %d", atomic_load(&g.before),
              atomic_load(&g.no_answer));
    CHECK_MSG(atomic_load(&g.answered) == 0, "no answers");
    CHECK_MSG(atomic_load(&g.released) == 1, "released once");

    gate g2 = {0};
    base_config(&cfg, &g2);
    cfg.granularity = 0; /* invalid: open fails */
    s = NULL;
    CHECK_MSG(ddstream_open(&cfg, &s, &err) == DDSTREAM_E_CONFIG, "bad config refused");
    CHECK_MSG(s == NULL && atomic_load(&g2.released) == 0,
              "a failed open leaves the data to the caller");
}

/* ddstream_validate's one query asks the gate and reports to it; the gate is not released
 * (there is no stream: the caller keeps it). /api/v1/validate does not ask. */
static void test_validate_asks_the_gate(void) {
    gate g = {0};
    ddstream_config cfg;
    base_config(&cfg, &g);
    ddstream_error err;
    CHECK_MSG(ddstream_validate(&cfg, &err) == DDSTREAM_OK, "validate: %s", err.message);
    CHECK_MSG(atomic_load(&g.before) == 1 && atomic_load(&g.answered) == 1 &&
                  atomic_load(&g.status_200) == 1,
              "one query through the gate: before %d, answered %d", atomic_load(&g.before),
              atomic_load(&g.answered));
    CHECK_MSG(atomic_load(&g.released) == 0, "validate released the gate");

    atomic_store(&g.refuse, 1);
    ddstream_status st = ddstream_validate(&cfg, &err);
    CHECK_MSG(st == DDSTREAM_E_RATE_LIMITED && strstr(err.message, "request gate") != NULL,
              "a refused validation query: %s (%s)", ddstream_status_str(st), err.message);
}

int main(void) {
    if (!getenv("DDSTREAM_BASE_URL")) {
        fprintf(stderr, "run me through tests/c/with_fake_datadog.py\n");
        return 1;
    }
    test_every_request_passes_the_gate();
    test_refusal_then_retry();
    test_cancel_while_gated();
    test_no_answer_and_failed_open();
    test_validate_asks_the_gate();
    return check_report("test_request_gate");
}
