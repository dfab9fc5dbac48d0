/*
 * test_scalar.c — ddstream_scalar against the fake Datadog servers of
 * tests/c/with_fake_datadog.py, through real libcurl: a formula's program (query_lang.c); a
 * grouped formula over 20 days cut into 4 pieces equal, row for row, to one request over the
 * range (max and min: no float reordering); an unsplittable aggregator asked once with its
 * reason; a bad aggregator named; a run on the slow server cancelled at once; the chunk cache
 * (settled pieces read back without a request, the unsettled last one asked again, the one
 * request over the range cached, a folder that cannot be used refused).
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

/* now_fn: a fixed clock, epoch milliseconds in *now_data. */
static int64_t fixed_now(void *now_data) { return *(const int64_t *)now_data; }

static int64_t cache_entries(const char *dir) {
    int64_t entries = -1;
    CHECK_INT(ddstream_cache_prune(dir, -1, &entries, NULL, NULL), DDSTREAM_OK);
    return entries;
}

static int same_rows(const ddstream_scalar_table *a, const ddstream_scalar_table *b) {
    if (a->row_count != b->row_count || a->chunks != b->chunks) return 0;
    for (size_t i = 0; i < a->row_count; i++)
        if (a->formula[i] != b->formula[i] || strcmp(a->group_tags[i], b->group_tags[i]) != 0 ||
            !(a->value[i] == b->value[i] || (isnan(a->value[i]) && isnan(b->value[i]))))
            return 0;
    return 1;
}

/* Two runs of cfg: the second's requests and hits as expected, its rows the first's. */
static void run_twice(const ddstream_config *cfg, const char *const *aggs, size_t first_requests,
                      size_t first_hits, size_t second_requests, size_t second_hits,
                      const char *what) {
    ddstream_error err;
    ddstream_scalar_table *first = NULL, *second = NULL;
    CHECK_MSG(ddstream_scalar(cfg, aggs, &first, &err) == DDSTREAM_OK, "%s: %s", what, err.message);
    CHECK_MSG(ddstream_scalar(cfg, aggs, &second, &err) == DDSTREAM_OK, "%s: %s", what,
              err.message);
    if (first && second) {
        CHECK_MSG(first->requests == first_requests && first->cache_hits == first_hits,
                  "%s, first run: %zu requests, %zu hits", what, first->requests,
                  first->cache_hits);
        CHECK_MSG(second->requests == second_requests && second->cache_hits == second_hits,
                  "%s, second run: %zu requests, %zu hits", what, second->requests,
                  second->cache_hits);
        CHECK_MSG(same_rows(first, second), "%s: the second table differs", what);
        CHECK(first->row_count > 0 && first->struct_size == sizeof *first);
    }
    ddstream_scalar_free(first);
    ddstream_scalar_free(second);
}

static void cached(const char *base) {
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/ddstream-test-scalar-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    const char *queries[] = {"avg:v2c.used{*} by {host}.rollup(avg, 3600)",
                             "avg:v2c.total{*}.rollup(avg, 3600)"};
    const char *names[] = {"a", "b"};
    const char *formulas[] = {"a / b * 100"};
    const char *aggs[] = {"max", "avg"};
    ddstream_config cfg;
    config_for(&cfg, base, queries, names, 2, formulas, 1);
    cfg.chunk_seconds = 5 * DAY;
    cfg.cache_dir = dir;
    cfg.settle_seconds = 300;
    /* The clock 100 s after the range: the last piece has not settled, the three before have. */
    int64_t now_ms = (cfg.range_end + 100) * 1000;
    cfg.now_fn = fixed_now;
    cfg.now_data = &now_ms;
    run_twice(&cfg, aggs, 4, 0, 1, 3, "last piece unsettled");
    CHECK_INT(cache_entries(dir), 3);
    /* Once it has settled, it is stored too; then nothing is asked any more. */
    now_ms = (cfg.range_end + 300) * 1000;
    run_twice(&cfg, aggs, 1, 3, 0, 4, "every piece settled");
    CHECK_INT(cache_entries(dir), 4);

    /* One request over the range (an aggregator that does not split): cached when settled. */
    const char *l2[] = {"l2norm", "avg"};
    run_twice(&cfg, l2, 1, 0, 0, 1, "one request");
    CHECK_INT(cache_entries(dir), 5);

    /* A folder that cannot be used: the run's error, naming it, before any request. */
    char file[600];
    snprintf(file, sizeof file, "%s/not-a-folder", dir);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    cfg.cache_dir = file;
    ddstream_error err;
    ddstream_scalar_table *t = NULL;
    CHECK_INT(ddstream_scalar(&cfg, aggs, &t, &err), DDSTREAM_E_CONFIG);
    CHECK(t == NULL);
    CHECK_MSG(strstr(err.message, "cache_dir") && strstr(err.message, "not-a-folder"), "%s",
              err.message);

    CHECK_INT(ddstream_cache_prune(dir, 0, NULL, NULL, NULL), DDSTREAM_OK);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
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
    cached(base);
    cancelled_at_once(slow);
    return check_report(argv[0]);
}
