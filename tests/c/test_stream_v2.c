/*
 * test_stream_v2.c — a stream over v2 (config.formulas) against the fake Datadog servers of
 * tests/c/with_fake_datadog.py: a formula over two named queries streamed over 30 days at 60 s,
 * every batch equal cell for cell to v1's answer to the same expression (another path through
 * both the library and the fake); the batch's shape (rows by formula, then tags, then time; the
 * formula's index in `query`; the value in `value`; avg..sum NaN); Arrow's query dictionary of
 * formulas; resuming from a token; the
 * config errors (formulas on v1, an unknown name pointing at it, statistics with v2, names
 * without queries).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "check.h"
#include "config.h"
#include "ddstream.h"
#include "fetch.h"
#include "log.h"
#include "parse.h"

/* 2026-11-01T00:00:00Z. */
static const int64_t DAY0 = INT64_C(1793491200);
enum { HOSTS = 3, BUCKETS = 1440 };
/* 30 days; 11 under valgrind (DDS_TEST_NO_TIMING, tests/c/meson.build), still enough for two
 * days compared with v1 (1 and 8) and a resume at chunk 10, at a third of valgrind's time. */
static int64_t days(void) { return getenv("DDS_TEST_NO_TIMING") != NULL ? 11 : 30; }

static const char *const QUERIES[] = {"avg:a{*} by {host}", "avg:b{*}"};
static const char *const NAMES[] = {"a", "b"};
static const char *const FORMULAS[] = {"a / b * 100", "b"};
/* The same two formulas as v1 expressions. */
static const char *const V1[] = {
    "avg:a{*} by {host}.rollup(avg,60) / avg:b{*}.rollup(avg,60) * 100", "avg:b{*}.rollup(avg,60)"};

static void base(ddstream_config *cfg) {
    ddstream_config_init(cfg);
    cfg->api_key = "test-api-key";
    cfg->app_key = "test-app-key";
    cfg->base_url = getenv("DDSTREAM_BASE_URL");
    cfg->queries = QUERIES;
    cfg->query_count = 2;
    cfg->query_names = NAMES;
    cfg->formulas = FORMULAS;
    cfg->formula_count = 2;
    cfg->range_start = DAY0;
    cfg->range_end = DAY0 + days() * 86400;
    cfg->granularity = 60;
    cfg->chunk_seconds = 86400;
    cfg->max_retries = 1;
}

static ddstream_status read_v1(void *arg, char *data, size_t len, ddstream_error *err) {
    char msg[300];
    ddstream_status st = dds_parse_query_response_fast(data, len, arg, msg, sizeof msg);
    if (st != DDSTREAM_OK) snprintf(err->message, sizeof err->message, "%s", msg);
    return st;
}

/* Every row of b against v1's answer for formula f's expression over the batch's chunk. */
static size_t compare_with_v1(dds_http *h, const ddstream_batch *b, int32_t f, size_t *filled) {
    int64_t start = b->chunk_start_ms / 1000, end = b->chunk_end_ms / 1000;
    char *esc = dds_http_escape(h, V1[f]);
    char path[1024];
    snprintf(path, sizeof path, "/api/v1/query?from=%lld&to=%lld&query=%s", (long long)start,
             (long long)(end - 1), esc);
    free(esc);
    dds_response v1;
    memset(&v1, 0, sizeof v1);
    ddstream_error err;
    CHECK(dds_http_get_read(h, path, 1, read_v1, &v1, &err) == DDSTREAM_OK);
    size_t compared = 0;
    for (size_t k = 0; k < v1.count; k++) {
        for (size_t p = 0; p < v1.series[k].length; p++) {
            int64_t t = v1.series[k].ts_ms[p] / 1000;
            /* the batch's row of (f, tags, t) */
            size_t found = b->length;
            for (size_t r = 0; r < b->length; r++) {
                if (b->query[r] != f || b->timestamps[r] != t) continue;
                const char *tags = b->series_tags[b->series[r]];
                if (strcmp(tags, v1.series[k].tags) == 0) found = r;
            }
            CHECK_MSG(found < b->length, "no row for formula %d, '%s', %lld", (int)f,
                      v1.series[k].tags, (long long)t);
            if (found == b->length) continue;
            CHECK_DBL(b->value[found], v1.series[k].values[p]);
            compared++;
            *filled += !isnan(v1.series[k].values[p]);
        }
    }
    dds_response_free(&v1);
    return compared;
}

/* A batch's content in one number: every cell, tag and timestamp, placed by its row. */
static double fingerprint(const ddstream_batch *b) {
    double f = (double)b->length + (double)b->series_count;
    for (size_t r = 0; r < b->length; r++) {
        double v = isnan(b->value[r]) ? -1.0 : b->value[r];
        f += (v + (double)(b->timestamps[r] % 100000) + b->query[r] + b->series[r]) *
             (double)(r % 97 + 1);
    }
    for (size_t j = 0; j < b->series_count; j++) f += (double)strlen(b->series_tags[j]) * 7.0;
    return f;
}

enum { KEPT_DAYS = 6 };

typedef struct kept_batches {
    ddstream_batch *b[KEPT_DAYS];
    double print[KEPT_DAYS];
    int same; /* batches still as they were after the stream's close */
} kept_batches;

static void *check_and_free(void *arg) {
    kept_batches *k = arg;
    for (int i = 0; i < KEPT_DAYS; i++) {
        k->same += k->b[i] != NULL && fingerprint(k->b[i]) == k->print[i];
        ddstream_batch_free(k->b[i]);
    }
    return NULL;
}

/* A stream's batches are made in the blocks of batches freed before (batch_pool.c): kept past
 * the stream's close and freed on another thread, they are intact; freed at once, every block
 * taken again holds exactly its new chunk. */
static void test_batch_blocks_reused(ddstream_config cfg) {
    cfg.range_end = cfg.range_start + KEPT_DAYS * 86400;
    ddstream_error err;
    ddstream_stream *stream = NULL;
    kept_batches k;
    memset(&k, 0, sizeof k);
    CHECK_MSG(ddstream_open(&cfg, &stream, &err) == DDSTREAM_OK, "%s", err.message);
    for (int i = 0; stream && i < KEPT_DAYS; i++) {
        CHECK_MSG(ddstream_next(stream, -1, &k.b[i], &err) == DDSTREAM_OK, "%s", err.message);
        if (k.b[i]) k.print[i] = fingerprint(k.b[i]);
    }
    ddstream_close(stream);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, check_and_free, &k), 0);
    pthread_join(t, NULL);
    CHECK_INT(k.same, KEPT_DAYS);

    CHECK_MSG(ddstream_open(&cfg, &stream, &err) == DDSTREAM_OK, "%s", err.message);
    int same = 0;
    for (int i = 0; stream && i < KEPT_DAYS; i++) {
        ddstream_batch *b = NULL;
        CHECK_MSG(ddstream_next(stream, -1, &b, &err) == DDSTREAM_OK, "%s", err.message);
        same += b != NULL && fingerprint(b) == k.print[i];
        ddstream_batch_free(b);
    }
    ddstream_close(stream);
    CHECK_INT(same, KEPT_DAYS);
}

int main(int argc, char **argv) {
    (void)argc;
    if (getenv("DDSTREAM_BASE_URL") == NULL) {
        fprintf(stderr, "run through with_fake_datadog.py\n");
        return 2;
    }
    const int64_t DAYS = days();
    ddstream_config cfg;
    base(&cfg);
    ddstream_error err;
    dds_settings s;
    CHECK(dds_settings_load(&cfg, &s, &err) == DDSTREAM_OK);
    dds_log log;
    dds_log_init(&log, DDSTREAM_LOG_ERROR, NULL, NULL, 1, s.api_key, s.app_key);
    dds_cancel cancel;
    CHECK(dds_cancel_init(&cancel) == 0);
    dds_http *h = dds_http_new(&s, &log, &cancel, &err);
    CHECK(h != NULL);

    ddstream_stream *stream = NULL;
    CHECK_MSG(ddstream_open(&cfg, &stream, &err) == DDSTREAM_OK, "%s", err.message);
    size_t batches = 0, compared = 0, filled = 0, rows = 0;
    char token[256] = "";
    for (;;) {
        ddstream_batch *b = NULL;
        ddstream_status st = ddstream_next(stream, -1, &b, &err);
        if (st == DDSTREAM_END) break;
        CHECK_MSG(st == DDSTREAM_OK, "%s", err.message);
        if (st != DDSTREAM_OK) break;
        batches++;
        rows += b->length;
        /* 3 series of formula 0 (by host), 1 of formula 1, each a full day of buckets */
        CHECK_INT(b->length, (HOSTS + 1) * BUCKETS);
        CHECK_INT(b->query_count, 2);
        CHECK(b->grouped && b->query && b->value && b->series && b->series_query);
        CHECK_INT(b->series_count, HOSTS + 1);
        CHECK_INT(b->interval, 60);
        CHECK_STR(b->series_tags[0], "host:h00");
        CHECK_STR(b->series_tags[HOSTS], "");
        CHECK_INT(b->series_query[HOSTS], 1);
        for (size_t r = 1; r < b->length; r++) {
            int ordered = b->query[r - 1] < b->query[r] ||
                          (b->query[r - 1] == b->query[r] &&
                           (b->series[r - 1] < b->series[r] ||
                            (b->series[r - 1] == b->series[r] &&
                             b->timestamps[r - 1] + 60 == b->timestamps[r])));
            CHECK_MSG(ordered, "row %zu out of order", r);
            if (!ordered) break;
        }
        for (size_t r = 0; r < b->length; r++)
            if (!isnan(b->avg[r]) || !isnan(b->sum[r])) {
                CHECK_MSG(0, "row %zu has statistics", r);
                break;
            }
        /* Exact against v1 on a few days (each comparison is two more requests). */
        if (batches % 7 == 1) {
            compared += compare_with_v1(h, b, 0, &filled);
            compared += compare_with_v1(h, b, 1, &filled);
        }
        if (batches == 10) CHECK(ddstream_resume_token(stream, token, sizeof token) == DDSTREAM_OK);
        ddstream_batch_free(b);
    }
    ddstream_close(stream);
    CHECK_INT(batches, DAYS);
    CHECK_INT(rows, (size_t)DAYS * (HOSTS + 1) * BUCKETS);
    /* days 1, 8, 15, 22, 29 (1 and 8 of 11) */
    CHECK_INT(compared, (size_t)((DAYS + 5) / 7) * (HOSTS + 1) * BUCKETS);
    CHECK(filled > compared / 2);

    /* Resume where the token says: chunk 10 next. */
    cfg.resume_token = token;
    CHECK_MSG(ddstream_open(&cfg, &stream, &err) == DDSTREAM_OK, "%s", err.message);
    ddstream_batch *b = NULL;
    CHECK(ddstream_next(stream, -1, &b, &err) == DDSTREAM_OK);
    CHECK_INT(b ? b->chunk_index : 0, 10);
    ddstream_batch_free(b);
    ddstream_close(stream);
    /* ...and only for the same formulas. */
    static const char *const OTHER[] = {"a * 2", "b"};
    cfg.formulas = OTHER;
    CHECK(ddstream_open(&cfg, &stream, &err) == DDSTREAM_E_CONFIG);
    cfg.formulas = FORMULAS;
    cfg.resume_token = NULL;

    /* Config errors. */
    cfg.api = DDSTREAM_API_V1;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "formulas need the v2 endpoint");
    cfg.api = DDSTREAM_API_AUTO;
    static const char *const BAD[] = {"a / c", "b"};
    cfg.formulas = BAD;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "formulas[0]: at character 5: unknown query name 'c'");
    cfg.formulas = FORMULAS;
    cfg.statistics = DDSTREAM_STAT_AVG;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "statistics do not apply to v2");
    cfg.statistics = 0;
    static const char *const FN[] = {"per_second(avg:a{*})", "avg:b{*}"};
    cfg.queries = FN;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "queries[0] (a): at character 1:");
    cfg.queries = QUERIES;
    CHECK(ddstream_config_validate(&cfg, &err) == DDSTREAM_OK);
    /* api v2 without formulas: each query its own series set, names by default. */
    cfg.formulas = NULL;
    cfg.formula_count = 0;
    cfg.query_names = NULL;
    cfg.api = DDSTREAM_API_V2;
    cfg.range_end = DAY0 + 86400;
    CHECK_MSG(ddstream_open(&cfg, &stream, &err) == DDSTREAM_OK, "%s", err.message);
    CHECK(ddstream_next(stream, -1, &b, &err) == DDSTREAM_OK);
    CHECK_INT(b ? b->series_count : 0, HOSTS + 1);
    ddstream_batch_free(b);
    ddstream_close(stream);

    /* Arrow: the query column's dictionary holds the formulas; value is a column. */
    cfg.formulas = FORMULAS;
    cfg.formula_count = 2;
    cfg.query_names = NAMES;
    cfg.api = DDSTREAM_API_AUTO;
    CHECK_MSG(ddstream_open(&cfg, &stream, &err) == DDSTREAM_OK, "%s", err.message);
    struct ArrowArrayStream as;
    CHECK(ddstream_stream_arrow(stream, &as, &err) == DDSTREAM_OK);
    struct ArrowSchema schema;
    CHECK_INT(as.get_schema(&as, &schema), 0);
    struct ArrowArray array;
    CHECK_INT(as.get_next(&as, &array), 0);
    int64_t query_col = -1, value_col = -1;
    for (int64_t k = 0; k < schema.n_children; k++) {
        if (strcmp(schema.children[k]->name, "query") == 0) query_col = k;
        if (strcmp(schema.children[k]->name, "value") == 0) value_col = k;
    }
    CHECK(query_col >= 0 && value_col >= 0);
    CHECK_INT(array.length, (HOSTS + 1) * BUCKETS);
    if (query_col >= 0 && array.children[query_col]->dictionary) {
        const struct ArrowArray *d = array.children[query_col]->dictionary;
        CHECK_INT(d->length, 2);
        const int32_t *off = d->buffers[1];
        const char *words = d->buffers[2];
        CHECK_INT(off[1], (int)strlen(FORMULAS[0]));
        CHECK(memcmp(words, "a / b * 100b", (size_t)off[2]) == 0);
    } else {
        CHECK_MSG(0, "no query dictionary");
    }
    array.release(&array);
    schema.release(&schema);
    as.release(&as); /* closes the stream */

    test_batch_blocks_reused(cfg);

    dds_http_free(h);
    dds_cancel_destroy(&cancel);
    dds_log_destroy(&log);
    dds_settings_free(&s);
    return check_report(argv[0]);
}
