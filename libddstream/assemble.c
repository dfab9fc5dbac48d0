/*
 * assemble.c — one chunk's parsed series to one dense batch.
 *
 * Datadog answers with one series per (rollup, group), in no promised order, with points only
 * where it chose to send them. The caller wants rows for every bucket of the chunk, the four
 * rollups side by side. The join sorts series by tag set (O(n log n) in the number of series)
 * and then writes each point straight into its row (O(1) per point): no per-point search.
 */
#include "assemble.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "query_lang.h"
#include "error.h"
#include "timestamp_limit.h"

/* Chunk bounds and granularity beyond DDS_TIME_LIMIT_S are not real (parse caps timestamps at
 * the same span); the cap also keeps every s -> ms product inside int64. */

static const char *tags_of(const dds_series *s) { return s->tags != NULL ? s->tags : ""; }

static const char *stat_name(int32_t stat) {
    static const char *const names[] = {"avg", "min", "max", "sum", "value"};
    return stat >= 0 && stat <= DDS_STAT_VALUE ? names[stat] : "?";
}

int64_t dds_response_coarse_interval(const dds_response *r, int64_t granularity) {
    if (r == NULL || granularity <= 0 || granularity > DDS_TIME_LIMIT_S) return 0;
    const int64_t grid_ms = granularity * 1000;
    int64_t worst = 0;
    int off_grid = 0;
    for (size_t i = 0; i < r->count; i++) {
        const dds_series *s = &r->series[i];
        if (s->interval > granularity && s->interval > worst) worst = s->interval;
        for (size_t j = 0; j < s->length && !off_grid; j++)
            if (s->ts_ms[j] % grid_ms != 0) off_grid = 1;
    }
    if (worst == 0 && off_grid) return granularity + 1;
    return worst;
}

typedef struct entry {
    int32_t query;    /* the stream's query the series belongs to */
    const char *tags; /* its key within the query: the tags, or "" for an ungrouped query */
    size_t index;     /* position in the response: the tie-break keeps the sort deterministic */
} entry;

static int entry_cmp(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->query != y->query) return (x->query > y->query) - (x->query < y->query);
    int c = strcmp(x->tags, y->tags);
    if (c != 0) return c;
    return (x->index > y->index) - (x->index < y->index);
}

static double *stat_column(const dds_batch_columns *c, int32_t stat) {
    switch (stat) {
    case DDS_STAT_AVG: return c->avg;
    case DDS_STAT_MIN: return c->min;
    case DDS_STAT_MAX: return c->max;
    case DDS_STAT_SUM: return c->sum;
    default: return c->value;
    }
}

/* Every point is checked before anything is allocated: a bad answer costs no batch. */
static ddstream_status check_series(const dds_response *r, const dds_shape *sh, int64_t granularity,
                                    char *msg, size_t cap) {
    const int64_t grid_ms = granularity * 1000;
    for (size_t i = 0; i < r->count; i++) {
        const dds_series *s = &r->series[i];
        if (s->query_index < 0 || (size_t)s->query_index >= sh->sub_count) {
            dds_set_msg(msg, cap,
                        "series[%zu]: query_index %d is not one of the %zu %s asked for "
                        "(0..%zu)",
                        i, (int)s->query_index, sh->sub_count,
                        sh->query_count == 1 ? "rollups" : "sub-queries", sh->sub_count - 1);
            return DDSTREAM_E_PROTOCOL;
        }
        if (sh->subs[s->query_index].stat == DDS_STAT_VALUE && !sh->with_value) {
            dds_set_msg(msg, cap, "internal: a value-only sub-query in a stream without values");
            return DDSTREAM_E_INTERNAL;
        }
        if (s->length > 0 && (s->ts_ms == NULL || s->values == NULL)) {
            dds_set_msg(msg, cap, "internal: series[%zu] has %zu points but no arrays", i,
                        s->length);
            return DDSTREAM_E_INTERNAL;
        }
        for (size_t j = 0; j < s->length; j++) {
            if (s->ts_ms[j] % grid_ms != 0) {
                dds_set_msg(
                    msg, cap,
                    "series[%zu].pointlist[%zu]: timestamp %lld ms is not on the %lld s grid "
                    "(the answer has another interval)",
                    i, j, (long long)s->ts_ms[j], (long long)granularity);
                return DDSTREAM_E_PROTOCOL;
            }
        }
    }
    return DDSTREAM_OK;
}

/* An ungrouped query has one tag set at most per sub-query: every series of it maps to its one
 * output series. seen has sub_count slots. */
static ddstream_status check_ungrouped(const dds_response *r, const dds_shape *sh,
                                       const char **seen, char *msg, size_t cap) {
    for (size_t i = 0; i < r->count; i++) {
        const dds_series *s = &r->series[i];
        const dds_subq_ref *ref = &sh->subs[s->query_index];
        if (sh->query_grouped[ref->query]) continue;
        const char *t = tags_of(s);
        const char **first = &seen[s->query_index];
        if (*first == NULL) {
            *first = t;
        } else if (strcmp(*first, t) != 0) {
            char which[32] = "";
            if (sh->query_count > 1) snprintf(which, sizeof which, " %d", (int)ref->query);
            dds_set_msg(msg, cap,
                        "the query%s is not grouped but Datadog returned several series for the "
                        "%s %s (tags \"%.100s\" and \"%.100s\")",
                        which, stat_name(ref->stat), sh->query_count == 1 ? "rollup" : "statistic",
                        *first, t);
            return DDSTREAM_E_PROTOCOL;
        }
    }
    return DDSTREAM_OK;
}

/*
 * Number the output series: queries in order; an ungrouped query gets exactly one (tags ""),
 * whether or not it answered; a grouped one one per distinct tag set of its series, in strcmp
 * order. sorted holds the response's series sorted by (query, key). group[i] receives the output
 * series of response series i, series_query (when not NULL) each series' query; *distinct and
 * *tag_bytes size the batch.
 */
static ddstream_status number_series(const dds_response *r, const dds_shape *sh,
                                     const entry *sorted, size_t *group, int32_t *series_query,
                                     size_t *distinct, size_t *tag_bytes, char *msg, size_t cap) {
    size_t n = 0, bytes = 0, k = 0;
    for (size_t q = 0; q < sh->query_count; q++) {
        if (!sh->query_grouped[q]) {
            if (series_query) series_query[n] = (int32_t)q;
            bytes += 1;
            for (; k < r->count && (size_t)sorted[k].query == q; k++) group[sorted[k].index] = n;
            n++;
            continue;
        }
        for (size_t first = k; k < r->count && (size_t)sorted[k].query == q; k++) {
            if (k == first || strcmp(sorted[k - 1].tags, sorted[k].tags) != 0) {
                if (series_query) series_query[n] = (int32_t)q;
                n++;
                bytes += strlen(sorted[k].tags) + 1; /* bounded by the response's own memory */
            }
            group[sorted[k].index] = n - 1;
        }
    }
    if (n > (size_t)INT32_MAX) {
        dds_set_msg(msg, cap, "Datadog returned %zu groups, more than a batch can index", n);
        return DDSTREAM_E_PROTOCOL;
    }
    *distinct = n;
    *tag_bytes = bytes;
    return DDSTREAM_OK;
}

static ddstream_status assemble_in(const dds_response *r, const dds_shape *sh, int64_t chunk_start,
                                   int64_t chunk_end, int64_t granularity, size_t max_rows,
                                   void **block, size_t block_cap, ddstream_batch **out, char *msg,
                                   size_t msg_cap);

/* The shape of a stream of one query sending its four rollups as query_index 0..3. */
static const dds_subq_ref legacy_subs[4] = {{0, DDS_STAT_AVG, NULL},
                                            {0, DDS_STAT_MIN, NULL},
                                            {0, DDS_STAT_MAX, NULL},
                                            {0, DDS_STAT_SUM, NULL}};

ddstream_status dds_assemble(const dds_response *r, int64_t chunk_start, int64_t chunk_end,
                             int64_t granularity, int grouped, ddstream_batch **out, char *msg,
                             size_t msg_cap) {
    return dds_assemble_in(r, chunk_start, chunk_end, granularity, grouped, SIZE_MAX, NULL, 0, out,
                           msg, msg_cap);
}

ddstream_status dds_assemble_in(const dds_response *r, int64_t chunk_start, int64_t chunk_end,
                                int64_t granularity, int grouped, size_t max_rows, void *block,
                                size_t block_cap, ddstream_batch **out, char *msg, size_t msg_cap) {
    const int32_t query_grouped[1] = {grouped != 0};
    dds_shape sh = {legacy_subs, 4, query_grouped, 1, grouped != 0, 0, 0};
    return dds_assemble_shaped(r, &sh, chunk_start, chunk_end, granularity, max_rows, block,
                               block_cap, out, msg, msg_cap);
}

ddstream_status dds_assemble_shaped(const dds_response *r, const dds_shape *shape,
                                    int64_t chunk_start, int64_t chunk_end, int64_t granularity,
                                    size_t max_rows, void *block, size_t block_cap,
                                    ddstream_batch **out, char *msg, size_t msg_cap) {
    ddstream_status st = assemble_in(r, shape, chunk_start, chunk_end, granularity, max_rows,
                                     &block, block_cap, out, msg, msg_cap);
    free(block); /* NULL once the batch took it over */
    return st;
}

static ddstream_status assemble_in(const dds_response *r, const dds_shape *sh, int64_t chunk_start,
                                   int64_t chunk_end, int64_t granularity, size_t max_rows,
                                   void **block, size_t block_cap, ddstream_batch **out, char *msg,
                                   size_t msg_cap) {
    if (out == NULL || r == NULL || (r->count > 0 && r->series == NULL) || sh == NULL ||
        sh->sub_count == 0 || sh->query_count == 0 || (!sh->grouped && sh->query_count != 1)) {
        dds_set_msg(msg, msg_cap, "internal: dds_assemble called without a response or output");
        return DDSTREAM_E_INTERNAL;
    }
    *out = NULL;
    if (granularity <= 0 || granularity > DDS_TIME_LIMIT_S || chunk_start > chunk_end ||
        chunk_start < -DDS_TIME_LIMIT_S || chunk_end > DDS_TIME_LIMIT_S ||
        chunk_start % granularity != 0 || chunk_end % granularity != 0) {
        dds_set_msg(msg, msg_cap,
                    "internal: chunk [%lld, %lld) is not a whole number of %lld s buckets",
                    (long long)chunk_start, (long long)chunk_end, (long long)granularity);
        return DDSTREAM_E_INTERNAL;
    }
    ddstream_status st = check_series(r, sh, granularity, msg, msg_cap);
    if (st != DDSTREAM_OK) return st;

    size_t buckets = (size_t)((chunk_end - chunk_start) / granularity);
    size_t nseries = 1, tag_bytes = 0;
    entry *sorted = NULL;
    size_t *group = NULL;
    int32_t *series_query = NULL, *owned_series_query = NULL;
    const char **seen = calloc(sh->sub_count, sizeof *seen);
    if (r->count > 0) {
        sorted = malloc(r->count * sizeof *sorted);
        group = malloc(r->count * sizeof *group);
    }
    if (seen == NULL || (r->count > 0 && (sorted == NULL || group == NULL))) {
        dds_set_msg(msg, msg_cap, "out of memory joining %zu series", r->count);
        st = DDSTREAM_E_NOMEM;
        goto done;
    }
    st = check_ungrouped(r, sh, seen, msg, msg_cap);
    if (st != DDSTREAM_OK) goto done;
    if (sh->grouped) {
        for (size_t i = 0; i < r->count; i++) {
            int32_t q = sh->subs[r->series[i].query_index].query;
            sorted[i].query = q;
            sorted[i].tags = sh->query_grouped[q] ? tags_of(&r->series[i]) : "";
            sorted[i].index = i;
        }
        if (r->count > 1) qsort(sorted, r->count, sizeof *sorted, entry_cmp);
        /* Counted first with no series_query: the array is sized by the count. */
        st = number_series(r, sh, sorted, group, NULL, &nseries, &tag_bytes, msg, msg_cap);
        if (st != DDSTREAM_OK) goto done;
    } else {
        for (size_t i = 0; i < r->count; i++) group[i] = 0;
    }

    /* The rows are every bucket of every series, whether or not Datadog sent a point: a small
     * answer naming many series with empty point lists asks for a huge batch. Bounded here,
     * before the batch (the only allocation that grows with rows) exists. */
    if (nseries > 0 && (buckets > SIZE_MAX / nseries || nseries * buckets > max_rows)) {
        dds_set_msg(msg, msg_cap,
                    "the answer has %zu series x %zu buckets = %.0f rows, more than max_batch_rows "
                    "(%zu): use smaller chunks (chunk_seconds), a narrower query, or raise "
                    "max_batch_rows",
                    nseries, buckets, (double)nseries * (double)buckets, max_rows);
        st = DDSTREAM_E_PROTOCOL;
        goto done;
    }
    size_t rows = nseries * buckets;
    ddstream_batch *b =
        dds_batch_new_shaped(*block, block_cap, rows, sh->grouped ? nseries : 0, tag_bytes,
                             sh->grouped, sh->with_query, sh->with_value);
    *block = NULL; /* taken over */
    if (b == NULL) {
        dds_set_msg(msg, msg_cap, "out of memory for a batch of %zu rows", rows);
        st = DDSTREAM_E_NOMEM;
        goto done;
    }
    dds_batch_columns c = dds_batch_columns_of(b);
    if (sh->grouped) {
        series_query = c.series_query;
        if (series_query == NULL) {
            series_query = owned_series_query =
                malloc((nseries ? nseries : 1) * sizeof *series_query);
            if (series_query == NULL) {
                ddstream_batch_free(b);
                dds_set_msg(msg, msg_cap, "out of memory for a batch of %zu rows", rows);
                st = DDSTREAM_E_NOMEM;
                goto done;
            }
        }
        st = number_series(r, sh, sorted, group, series_query, &nseries, &tag_bytes, msg, msg_cap);
        if (st != DDSTREAM_OK) { /* cannot fail: the same walk as above */
            ddstream_batch_free(b);
            goto done;
        }
    }

    for (size_t g = 0; g < nseries; g++) {
        int32_t q = sh->grouped ? series_query[g] : 0;
        for (size_t k = 0; k < buckets; k++) {
            size_t row = g * buckets + k;
            c.timestamps[row] = chunk_start + (int64_t)k * granularity;
            c.avg[row] = c.min[row] = c.max[row] = c.sum[row] = NAN;
            if (c.value) c.value[row] = NAN;
            if (c.query) c.query[row] = q;
            if (sh->grouped) c.series[row] = (int32_t)g;
        }
    }
    if (sh->grouped) {
        for (size_t k = 0; k < r->count; k++) {
            const entry *e = &sorted[k];
            if (k == 0 || e->query != sorted[k - 1].query || strcmp(sorted[k - 1].tags, e->tags))
                dds_batch_set_tag(b, group[e->index], e->tags); /* sized above: cannot fail */
        }
    }

    /* Response order decides "first" for a bucket given twice; null never hides a later value. */
    const int64_t grid_ms = granularity * 1000;
    const int64_t start_ms = chunk_start * 1000, end_ms = chunk_end * 1000;
    int64_t answered = 0;
    int agree = 1;
    for (size_t i = 0; i < r->count; i++) {
        const dds_series *s = &r->series[i];
        size_t base = group[i] * buckets;
        double *col = stat_column(&c, sh->subs[s->query_index].stat);
        for (size_t j = 0; j < s->length; j++) {
            int64_t t = s->ts_ms[j];
            if (t < start_ms || t >= end_ms) continue;
            size_t row = base + (size_t)((t - start_ms) / grid_ms);
            if (isnan(col[row])) col[row] = s->values[j];
        }
        if (s->interval > 0) {
            if (answered == 0) answered = s->interval;
            else if (answered != s->interval) agree = 0;
        }
    }

    b->chunk_start_ms = start_ms;
    b->chunk_end_ms = end_ms;
    b->interval = agree && answered > 0 ? answered : granularity;
    b->query_count = sh->query_count;
    *out = b;
    st = DDSTREAM_OK;

done:
    free(owned_series_query);
    free(sorted);
    free(group);
    free(seen);
    return st;
}
