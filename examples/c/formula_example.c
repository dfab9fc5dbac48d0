/*
 * formula_example.c — a formula over named queries (Datadog's v2 endpoint) with libddstream:
 * streamed in chunks, then the same over the whole range as one value per group (scalar).
 *
 *   cc formula_example.c $(pkg-config --cflags --libs ddstream) -lm -o formula_example
 *   DD_API_KEY=... DD_APP_KEY=... ./formula_example 'a / b * 100' \
 *       'a=avg:system.mem.used{*} by {host}' 'b=avg:system.mem.total{*} by {host}'
 *
 * Arguments: the formula, then NAME=QUERY for each query it uses. The range is the last day at
 * 60 s (DDSTREAM_EXAMPLE_SECONDS changes its length). Keys come from DD_API_KEY / DD_APP_KEY,
 * DDSTREAM_BASE_URL points at a proxy or a fake server. Prints per series its rows and mean,
 * then the scalar table; exits 1 on error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ddstream.h"

#define MAX_QUERIES 8
#define MAX_SERIES  256

/* strdup is POSIX, not C11. */
static char *copy(const char *text) {
    size_t n = strlen(text) + 1;
    char *out = malloc(n);
    return out ? memcpy(out, text, n) : NULL;
}

static int fail(const ddstream_error *err) {
    fprintf(stderr, "error: %s: %s\n", ddstream_status_str(err->status), err->message);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc - 2 > MAX_QUERIES) {
        fprintf(stderr, "usage: %s FORMULA NAME=QUERY [NAME=QUERY ...] (at most %d)\n", argv[0],
                MAX_QUERIES);
        return 2;
    }
    const char *formulas[1] = {argv[1]};
    const char *names[MAX_QUERIES], *queries[MAX_QUERIES];
    char *pairs[MAX_QUERIES];
    size_t count = (size_t)(argc - 2);
    for (size_t k = 0; k < count; k++) {
        char *eq = strchr(argv[k + 2], '=');
        if (eq == NULL) {
            fprintf(stderr, "'%s' is not NAME=QUERY\n", argv[k + 2]);
            return 2;
        }
        pairs[k] = argv[k + 2];
        *eq = '\0';
        names[k] = pairs[k];
        queries[k] = eq + 1;
    }
    const char *seconds = getenv("DDSTREAM_EXAMPLE_SECONDS");

    ddstream_config cfg;
    ddstream_config_init(&cfg);
    cfg.queries = queries;
    cfg.query_names = names;
    cfg.query_count = count;
    cfg.formulas = formulas;
    cfg.formula_count = 1; /* formulas select Datadog's v2 endpoint */
    cfg.range_end = (int64_t)time(NULL) / 60 * 60;
    cfg.range_start = cfg.range_end - (seconds ? atoll(seconds) : 86400);
    cfg.granularity = 60;

    ddstream_error err;
    ddstream_stream *stream = NULL;
    if (ddstream_open(&cfg, &stream, &err) != DDSTREAM_OK) return fail(&err);
    /* Per series (a group of the formula), by its tags: rows, rows with a value, their sum. */
    char *tags[MAX_SERIES];
    size_t rows[MAX_SERIES], valued[MAX_SERIES], nseries = 0;
    double sums[MAX_SERIES];
    ddstream_batch *batch;
    ddstream_status st;
    while ((st = ddstream_next(stream, -1, &batch, &err)) == DDSTREAM_OK) {
        for (size_t i = 0; i < batch->length; i++) {
            const char *t = batch->series ? batch->series_tags[batch->series[i]] : "";
            size_t s = 0;
            while (s < nseries && strcmp(tags[s], t) != 0) s++;
            if (s == nseries) {
                if (nseries == MAX_SERIES || (tags[s] = copy(t)) == NULL) continue;
                rows[s] = valued[s] = 0;
                sums[s] = 0.0;
                nseries++;
            }
            rows[s]++;
            if (!isnan(batch->value[i])) { /* NaN: a bucket Datadog had no value for */
                valued[s]++;
                sums[s] += batch->value[i];
            }
        }
        ddstream_batch_free(batch);
    }
    size_t chunks = ddstream_chunk_count(stream);
    ddstream_close(stream);
    if (st != DDSTREAM_END) return fail(&err);
    printf("%s: %zu chunks\n", formulas[0], chunks);
    for (size_t s = 0; s < nseries; s++) {
        printf("series %-20s rows=%zu with_value=%zu mean=%.4f\n", tags[s][0] ? tags[s] : "(all)",
               rows[s], valued[s], valued[s] ? sums[s] / (double)valued[s] : NAN);
        free(tags[s]);
    }

    /* The same formula over the whole range, one value per group: each query averaged. */
    ddstream_scalar_table *table = NULL;
    if (ddstream_scalar(&cfg, NULL, &table, &err) != DDSTREAM_OK) return fail(&err);
    printf("scalar: %zu rows from %zu request(s)\n", table->row_count, table->requests);
    for (size_t r = 0; r < table->row_count; r++)
        printf("scalar %-20s %.4f\n", table->group_tags[r][0] ? table->group_tags[r] : "(all)",
               table->value[r]);
    ddstream_scalar_free(table);
    return 0;
}
