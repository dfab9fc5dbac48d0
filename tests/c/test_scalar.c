/*
 * test_scalar.c — ddstream_scalar against the fake Datadog servers of
 * tests/c/with_fake_datadog.py, through real libcurl: a formula's program (query_lang.c); a
 * grouped formula over 20 days cut into 4 pieces equal, row for row, to one request over the
 * range (max and min: no float reordering); an unsplittable aggregator asked once with its
 * reason; a bad aggregator named; a run on the slow server cancelled at once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "ddstream.h"
#include "query_lang.h"

static const char *API_KEY = "test-api-key";
static const char *APP_KEY = "test-app-key";
static const int64_t T0 = INT64_C(1793491200); /* 2026-11-01T00:00:00Z */
static const int64_t DAY = 86400;

static void formula_programs(void) {
    const char *names[] = {"a", "b"};
    dds_formula_op *ops = NULL;
    size_t n = 0;
    char fn[64];
    CHECK(dds_formula_program("a / b * 100", names, 2, &ops, &n, fn, sizeof fn, NULL) ==
          DDSTREAM_OK);
    CHECK_INT(n, 5);
    if (n == 5) {
        CHECK(ops[0].code == DDS_FOP_REF && ops[0].ref == 0);
        CHECK(ops[1].code == DDS_FOP_REF && ops[1].ref == 1);
        CHECK(ops[2].code == DDS_FOP_DIV);
        CHECK(ops[3].code == DDS_FOP_NUM && ops[3].num == 100);
        CHECK(ops[4].code == DDS_FOP_MUL);
    }
    CHECK(fn[0] == 0);
    free(ops);
    CHECK(dds_formula_program("-(b - 1.5e1)", names, 2, &ops, &n, fn, sizeof fn, NULL) ==
          DDSTREAM_OK);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK(ops[0].code == DDS_FOP_REF && ops[0].ref == 1);
        CHECK(ops[1].code == DDS_FOP_NUM && ops[1].num == 15);
        CHECK(ops[2].code == DDS_FOP_SUB && ops[3].code == DDS_FOP_NEG);
    }
    free(ops);
    CHECK(dds_formula_program("a + per_second(b)", names, 2, &ops, &n, fn, sizeof fn, NULL) ==
          DDSTREAM_OK);
    CHECK(ops == NULL && n == 0);
    CHECK_MSG(strcmp(fn, "per_second") == 0, "function: '%s'", fn);
    dds_query_error qe;
    CHECK(dds_formula_program("a / c", names, 2, &ops, &n, fn, sizeof fn, &qe) ==
          DDSTREAM_E_CONFIG);
    CHECK(ops == NULL && strstr(qe.message, "unknown query name 'c'") != NULL);
}

static void config_for(ddstream_config *cfg, const char *base, const char *const *queries,
                       const char *const *names, size_t nq, const char *const *formulas,
                       size_t nf) {
    ddstream_config_init(cfg);
    cfg->api_key = API_KEY;
    cfg->app_key = APP_KEY;
    cfg->base_url = base;
    cfg->queries = queries;
    cfg->query_names = names;
    cfg->query_count = nq;
    cfg->formulas = formulas;
    cfg->formula_count = nf;
    cfg->range_start = T0;
    cfg->range_end = T0 + 20 * DAY;
    cfg->granularity = 3600;
    cfg->max_retries = 0;
}

static void split_equals_whole(const char *base) {
    const char *queries[] = {"avg:v2c.used{*} by {host}.rollup(avg, 3600)",
                             "avg:v2c.total{*}.rollup(avg, 3600)"};
    const char *names[] = {"a", "b"};
    const char *formulas[] = {"a / b * 100", "b - 1"};
    const char *aggs[] = {"max", "min"};
    ddstream_config cfg;
    config_for(&cfg, base, queries, names, 2, formulas, 2);
    ddstream_error err;
    ddstream_scalar_table *split = NULL, *whole = NULL;
    cfg.chunk_seconds = 5 * DAY;
    CHECK(ddstream_scalar(&cfg, aggs, &split, &err) == DDSTREAM_OK);
    cfg.chunk_seconds = 20 * DAY;
    CHECK(ddstream_scalar(&cfg, aggs, &whole, &err) == DDSTREAM_OK);
    if (!split || !whole) {
        CHECK_MSG(0, "scalar failed: %s", err.message);
        ddstream_scalar_free(split);
        ddstream_scalar_free(whole);
        return;
    }
    CHECK_INT(split->chunks, 4);
    CHECK_INT(split->requests, 4);
    CHECK(split->split_reason == NULL);
    CHECK_INT(whole->chunks, 1);
    CHECK(whole->split_reason && strstr(whole->split_reason, "fits one request"));
    CHECK_INT(split->row_count, 4); /* three hosts, then the ungrouped formula */
    CHECK_INT(whole->row_count, split->row_count);
    CHECK_INT(split->formula_count, 2);
    CHECK(strcmp(split->formula_text[0], "a / b * 100") == 0);
    for (size_t i = 0; i < split->row_count && i < whole->row_count; i++) {
        CHECK_INT(split->formula[i], whole->formula[i]);
        CHECK(strcmp(split->group_tags[i], whole->group_tags[i]) == 0);
        CHECK_MSG(split->value[i] == whole->value[i] && isfinite(split->value[i]),
                  "row %zu: %.17g vs %.17g", i, split->value[i], whole->value[i]);
    }
    CHECK(strcmp(split->group_tags[0], "host:h00") == 0 && strcmp(split->group_tags[3], "") == 0);
    ddstream_scalar_free(split);
    ddstream_scalar_free(whole);
    ddstream_scalar_free(NULL);
}

static void unsplittable_and_bad(const char *base) {
    const char *queries[] = {"avg:v2c.used{*} by {host}.rollup(avg, 3600)"};
    const char *names[] = {"a"};
    ddstream_config cfg;
    config_for(&cfg, base, queries, names, 1, NULL, 0);
    cfg.chunk_seconds = 5 * DAY;
    ddstream_error err;
    ddstream_scalar_table *t = NULL;
    const char *l2[] = {"l2norm"};
    CHECK(ddstream_scalar(&cfg, l2, &t, &err) == DDSTREAM_OK);
    if (t) {
        CHECK_INT(t->chunks, 1);
        CHECK_INT(t->requests, 1);
        CHECK(t->split_reason &&
              strcmp(t->split_reason,
                     "queries[0] (a): the aggregator l2norm cannot be split exactly") == 0);
        CHECK_INT(t->row_count, 3);
        ddstream_scalar_free(t);
    }
    const char *bad[] = {"p95"};
    t = NULL;
    CHECK(ddstream_scalar(&cfg, bad, &t, &err) == DDSTREAM_E_CONFIG);
    CHECK(t == NULL);
    CHECK_MSG(strstr(err.message, "queries[0] (a): the scalar aggregator 'p95'") != NULL, "%s",
              err.message);
    CHECK(strstr(err.message, API_KEY) == NULL && strstr(err.message, APP_KEY) == NULL);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void cancelled_at_once(const char *slow) {
    const char *queries[] = {"avg:v2c.used{*}"};
    ddstream_config cfg;
    config_for(&cfg, slow, queries, NULL, 1, NULL, 0);
    cfg.chunk_seconds = DAY;
    ddstream_scalar_run *run = NULL;
    ddstream_error err;
    CHECK(ddstream_scalar_start(&cfg, NULL, &run, &err) == DDSTREAM_OK);
    if (!run) return;
    ddstream_scalar_table *t = NULL;
    CHECK(ddstream_scalar_wait(run, 300, &t, &err) == DDSTREAM_TIMEOUT); /* 2 s per answer */
    double before = now_s();
    ddstream_scalar_cancel(run);
    CHECK(ddstream_scalar_wait(run, -1, &t, &err) == DDSTREAM_E_CANCELLED);
    double waited = now_s() - before;
    CHECK_MSG(waited < 0.5, "cancel took %.3f s", waited);
    CHECK(t == NULL);
    ddstream_scalar_run_free(run);
    ddstream_scalar_run_free(NULL);
}

int main(int argc, char **argv) {
    (void)argc;
    const char *base = getenv("DDSTREAM_BASE_URL");
    const char *slow = getenv("DDSTREAM_SLOW_URL");
    formula_programs();
    if (!base || !slow) {
        fprintf(stderr, "run me through tests/c/with_fake_datadog.py\n");
        return 1;
    }
    split_equals_whole(base);
    unsplittable_and_bad(base);
    cancelled_at_once(slow);
    return check_report(argv[0]);
}
