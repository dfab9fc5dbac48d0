/*
 * chunk_v2.c — one chunk over v2: request body (v2_request.c), POST (fetch.c, through the chunk
 * cache when the stream has one: chunk_cache.c), answer (parse_v2.c), the grid check and dense
 * values (v2_grid.c), and the split-and-refetch rule for answers not on the grid asked for (see
 * chunk_v2.h and v2_grid.c for why WIDE answers need a split to be told from sparse data). Halves
 * are merged by (formula, tags), so a group present in one half only gets NaN in the other: the
 * chunk is exactly what one answer on the grid would be.
 */
#include "chunk_v2.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "config.h"
#include "error.h"
#include "parse_v2.h"
#include "v2_grid.h"

void dds_v2_chunk_free(dds_v2_chunk *c) {
    if (c == NULL) return;
    for (size_t k = 0; k < c->series_count; k++) free(c->tags[k]);
    free(c->tags);
    free(c->formula);
    free(c->values);
    dds_v2_response_free(&c->answer);
    free(c->dest);
    memset(c, 0, sizeof *c);
}

/* A series of the chunk being built: its key and where its values come from. */
typedef struct entry {
    int32_t formula;
    const char *tags;
    size_t src; /* the answer's series, or (size_t)-1 for a series with no value */
} entry;

static int entry_cmp(const void *pa, const void *pb) {
    const entry *a = pa, *b = pb;
    if (a->formula != b->formula) return a->formula < b->formula ? -1 : 1;
    return strcmp(a->tags, b->tags);
}

static size_t formula_count(const dds_v2_plan *p) {
    return p->formula_count ? p->formula_count : p->query_count;
}

/* with_values: room for the values; without, they stay in the answer (dds_v2_chunk.answer). */
static ddstream_status alloc_chunk(dds_v2_chunk *c, size_t series, size_t buckets, int with_values,
                                   ddstream_error *err) {
    c->series_count = 0;
    c->formula = calloc(series ? series : 1, sizeof *c->formula);
    c->tags = calloc(series ? series : 1, sizeof *c->tags);
    if (with_values)
        c->values = malloc((series * buckets > 0 ? series * buckets : 1) * sizeof *c->values);
    if (!c->formula || !c->tags || (with_values && !c->values)) {
        dds_v2_chunk_free(c);
        return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory for a chunk of %zu series",
                             series);
    }
    return DDSTREAM_OK;
}

/* One answer on [start, start + buckets * step) as a dense chunk; with defer, its values are
 * left in the answer, which the chunk takes over (*r is emptied), for place_values. */
static ddstream_status to_chunk(const dds_v2_plan *plan, dds_v2_response *r, int64_t start,
                                size_t buckets, int defer, dds_v2_chunk *out, ddstream_error *err) {
    size_t nf = formula_count(plan);
    size_t *per = calloc(nf, sizeof *per);
    if (per == NULL) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    for (size_t s = 0; s < r->series_count; s++) {
        int32_t qi = r->series[s].query_index;
        if (qi < 0 || (size_t)qi >= nf) {
            free(per);
            return dds_error_set(err, DDSTREAM_E_PROTOCOL,
                                 "v2 answer: series %zu has query_index %d, but the request has "
                                 "%zu formulas",
                                 s, (int)qi, nf);
        }
        per[qi]++;
    }
    size_t extra = 0;
    for (size_t f = 0; f < nf; f++) {
        if (plan->grouped && plan->grouped[f]) continue;
        if (per[f] > 1) {
            size_t seen = per[f];
            free(per);
            return dds_error_set(err, DDSTREAM_E_PROTOCOL,
                                 "v2 answer: %zu series for formula %zu, which is not grouped "
                                 "(no 'by' in its queries)",
                                 seen, f);
        }
        extra += per[f] == 0;
    }
    size_t n = r->series_count + extra;
    entry *e = malloc((n ? n : 1) * sizeof *e);
    size_t *dest = malloc((r->series_count ? r->series_count : 1) * sizeof *dest);
    ddstream_status st = DDSTREAM_OK;
    if (e == NULL || dest == NULL) {
        st = dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
        goto done;
    }
    size_t k = 0;
    for (size_t s = 0; s < r->series_count; s++)
        e[k++] = (entry){r->series[s].query_index, r->series[s].tags, s};
    for (size_t f = 0; f < nf; f++)
        if (!(plan->grouped && plan->grouped[f]) && per[f] == 0)
            e[k++] = (entry){(int32_t)f, "", (size_t)-1};
    qsort(e, n, sizeof *e, entry_cmp);
    for (size_t j = 1; j < n; j++) {
        if (entry_cmp(&e[j - 1], &e[j]) == 0) {
            st = dds_error_set(err, DDSTREAM_E_PROTOCOL,
                               "v2 answer: formula %d has the group '%s' twice", (int)e[j].formula,
                               e[j].tags);
            goto done;
        }
    }
    if ((st = alloc_chunk(out, n, buckets, !defer, err)) != DDSTREAM_OK) goto done;
    out->start = start;
    out->step = plan->granularity;
    out->buckets = buckets;
    for (size_t j = 0; j < n; j++) {
        out->formula[j] = e[j].formula;
        out->tags[j] = strdup(e[j].tags);
        out->series_count = j + 1;
        if (out->tags[j] == NULL) {
            st = dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
            goto done;
        }
        if (e[j].src != (size_t)-1) dest[e[j].src] = j;
        else if (!defer)
            for (size_t b = 0; b < buckets; b++) out->values[j * buckets + b] = NAN;
    }
    if (defer) {
        out->answer = *r;
        memset(r, 0, sizeof *r);
        out->dest = dest;
        dest = NULL;
        goto done;
    }
    char msg[300];
    st = dds_v2_densify(r, start * 1000, plan->granularity * 1000, buckets, dest, out->values, msg,
                        sizeof msg);
    if (st != DDSTREAM_OK) dds_error_set(err, st, "v2 answer: %s", msg);
done:
    if (st != DDSTREAM_OK) dds_v2_chunk_free(out);
    free(per);
    free(e);
    free(dest);
    return st;
}

/* a = [start, mid), b = [mid, end), both sorted: out has the union of their series. */
static ddstream_status merge(const dds_v2_chunk *a, const dds_v2_chunk *b, dds_v2_chunk *out,
                             ddstream_error *err) {
    size_t nb = a->buckets + b->buckets;
    ddstream_status st = alloc_chunk(out, a->series_count + b->series_count, nb, 1, err);
    if (st != DDSTREAM_OK) return st;
    out->start = a->start;
    out->step = a->step;
    out->buckets = nb;
    size_t i = 0, j = 0, k = 0;
    while (i < a->series_count || j < b->series_count) {
        int c;
        if (i == a->series_count) c = 1;
        else if (j == b->series_count) c = -1;
        else {
            entry ea = {a->formula[i], a->tags[i], 0}, eb = {b->formula[j], b->tags[j], 0};
            c = entry_cmp(&ea, &eb);
        }
        double *row = out->values + k * nb;
        out->formula[k] = c <= 0 ? a->formula[i] : b->formula[j];
        out->tags[k] = strdup(c <= 0 ? a->tags[i] : b->tags[j]);
        out->series_count = k + 1;
        if (out->tags[k] == NULL) {
            dds_v2_chunk_free(out);
            return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
        }
        for (size_t t = 0; t < a->buckets; t++)
            row[t] = c <= 0 ? a->values[i * a->buckets + t] : NAN;
        for (size_t t = 0; t < b->buckets; t++)
            row[a->buckets + t] = c >= 0 ? b->values[j * b->buckets + t] : NAN;
        i += c <= 0;
        j += c >= 0;
        k++;
    }
    return DDSTREAM_OK;
}

static ddstream_status fetch_range(dds_http *h, const dds_v2_plan *plan, int64_t start, int64_t end,
                                   dds_v2_memory *mem, int64_t parent_wide_ms, int defer,
                                   dds_v2_chunk *out, ddstream_error *err);

static ddstream_status split(dds_http *h, const dds_v2_plan *plan, int64_t start, int64_t end,
                             dds_v2_memory *mem, int64_t wide_ms, dds_v2_chunk *out,
                             ddstream_error *err) {
    size_t buckets = (size_t)((end - start) / plan->granularity);
    int64_t mid = start + (int64_t)(buckets / 2) * plan->granularity;
    dds_v2_chunk a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    ddstream_status st = fetch_range(h, plan, start, mid, mem, wide_ms, 0, &a, err);
    if (st == DDSTREAM_OK) st = fetch_range(h, plan, mid, end, mem, wide_ms, 0, &b, err);
    if (st == DDSTREAM_OK) st = merge(&a, &b, out, err);
    dds_v2_chunk_free(&a);
    dds_v2_chunk_free(&b);
    return st;
}

static ddstream_status fetch_range(dds_http *h, const dds_v2_plan *plan, int64_t start, int64_t end,
                                   dds_v2_memory *mem, int64_t parent_wide_ms, int defer,
                                   dds_v2_chunk *out, ddstream_error *err) {
    int64_t g = plan->granularity;
    size_t buckets = (size_t)((end - start) / g);
    char *body = NULL;
    size_t len = 0;
    ddstream_status st =
        dds_v2_body(DDS_V2_TIMESERIES, plan->queries, plan->query_count, plan->formulas,
                    plan->formula_count, start * 1000, end * 1000, g * 1000, &body, &len);
    if (st != DDSTREAM_OK)
        return dds_error_set(err, st, "could not build the v2 request for [%lld, %lld)",
                             (long long)start, (long long)end);
    dds_v2_response a;
    memset(&a, 0, sizeof a);
    mem->requests++;
    st = dds_cache_read(plan->cache, h, DDS_V2_TIMESERIES_PATH, body, len, 1, end,
                        dds_v2_read_timeseries, &a, err);
    free(body);
    if (st != DDSTREAM_OK) {
        dds_v2_response_free(&a);
        return st;
    }
    dds_grid_check check;
    dds_grid_verdict v =
        dds_v2_grid_check(a.times_ms, a.time_count, start * 1000, g * 1000, buckets, &check);
    if (v == DDS_GRID_OFF) {
        dds_v2_response_free(&a);
        if (buckets <= 1)
            return dds_error_set(err, DDSTREAM_E_PROTOCOL,
                                 "v2 answer for the one bucket at %lld: time %lld ms is not on "
                                 "the %lld s grid",
                                 (long long)start, (long long)check.example_ms, (long long)g);
        return split(h, plan, start, end, mem, 0, out, err);
    }
    if (v == DDS_GRID_WIDE && check.spacing_ms != mem->sparse_spacing_ms) {
        if (parent_wide_ms != 0 && check.spacing_ms >= parent_wide_ms) {
            /* Half the buckets, the same spacing: not a cap on points but the data's own. */
            mem->sparse_spacing_ms = check.spacing_ms;
        } else {
            dds_v2_response_free(&a);
            return split(h, plan, start, end, mem, check.spacing_ms, out, err);
        }
    }
    st = to_chunk(plan, &a, start, buckets, defer, out, err);
    dds_v2_response_free(&a);
    return st;
}

/* dds_v2_fetch_chunk, with defer as to_chunk's when the chunk takes one answer (no split). */
static ddstream_status fetch_chunk(dds_http *h, const dds_v2_plan *plan, int64_t start, int64_t end,
                                   dds_v2_memory *mem, int defer, dds_v2_chunk *out,
                                   ddstream_error *err) {
    memset(out, 0, sizeof *out);
    if (plan == NULL || mem == NULL || plan->granularity <= 0 || end <= start ||
        start % plan->granularity != 0 || end % plan->granularity != 0)
        return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT,
                             "internal: a v2 chunk [%lld, %lld) off its grid", (long long)start,
                             (long long)end);
    ddstream_status st = fetch_range(h, plan, start, end, mem, 0, defer, out, err);
    if (st != DDSTREAM_OK && err) {
        err->chunk_start = start;
        err->chunk_end = end;
    }
    return st;
}

ddstream_status dds_v2_fetch_chunk(dds_http *h, const dds_v2_plan *plan, int64_t start, int64_t end,
                                   dds_v2_memory *mem, dds_v2_chunk *out, ddstream_error *err) {
    return fetch_chunk(h, plan, start, end, mem, 0, out, err);
}

/* The chunk's values into out (series_count x buckets): copied, or placed from its answer. */
static ddstream_status place_values(const dds_v2_chunk *c, double *out, ddstream_error *err) {
    size_t rows = c->series_count * c->buckets;
    if (c->values != NULL) {
        if (rows > 0) memcpy(out, c->values, rows * sizeof *out);
        return DDSTREAM_OK;
    }
    /* Rows of formulas the answer has no series for (filled with NaN by to_chunk otherwise). */
    if (c->series_count > c->answer.series_count)
        for (size_t r = 0; r < rows; r++) out[r] = NAN;
    char msg[300];
    ddstream_status st = dds_v2_densify(&c->answer, c->start * 1000, c->step * 1000, c->buckets,
                                        c->dest, out, msg, sizeof msg);
    if (st != DDSTREAM_OK) return dds_error_set(err, st, "v2 answer: %s", msg);
    return DDSTREAM_OK;
}

ddstream_status dds_fetch_chunk_v2(dds_http *http, dds_chunk_cache *cache, const dds_settings *s,
                                   int64_t start, int64_t end, dds_v2_memory *mem,
                                   dds_batch_pool *pool, ddstream_batch **out,
                                   ddstream_error *err) {
    *out = NULL;
    const dds_v2_settings *v = &s->v2;
    dds_v2_plan plan = {v->queries,
                        v->query_count,
                        (const char *const *)v->formulas,
                        v->formula_count,
                        v->grouped,
                        s->granularity,
                        cache};
    dds_v2_chunk c;
    ddstream_status st = fetch_chunk(http, &plan, start, end, mem, 1, &c, err);
    if (st != DDSTREAM_OK) return st;
    size_t max_rows = (uint64_t)s->max_batch_rows > SIZE_MAX ? SIZE_MAX : (size_t)s->max_batch_rows;
    if (c.series_count > 0 &&
        (c.buckets > SIZE_MAX / c.series_count || c.series_count * c.buckets > max_rows)) {
        st = dds_error_set(err, DDSTREAM_E_PROTOCOL,
                           "the answer has %zu series x %zu buckets, more than max_batch_rows "
                           "(%zu): use smaller chunks (chunk_seconds), narrower queries, or raise "
                           "max_batch_rows",
                           c.series_count, c.buckets, max_rows);
        dds_v2_chunk_free(&c);
        return st;
    }
    size_t rows = c.series_count * c.buckets, tag_bytes = 0;
    int grouped = s->grouped;
    for (size_t j = 0; grouped && j < c.series_count; j++) tag_bytes += strlen(c.tags[j]) + 1;
    size_t spare_cap = 0;
    char *spare = dds_http_take_spare(http, &spare_cap);
    ddstream_batch *b = dds_batch_new_value_only(pool, spare, spare_cap, rows,
                                                 grouped ? c.series_count : 0, tag_bytes, grouped);
    if (b == NULL) {
        dds_v2_chunk_free(&c);
        return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory for a batch of %zu rows", rows);
    }
    dds_batch_columns col = dds_batch_columns_of(b);
    /* Column by column, each a straight run: the chunk's values are already in the batch's
     * order (series by series, then time), and every series has the same times. */
    if ((st = place_values(&c, col.value, err)) != DDSTREAM_OK) {
        if (err) {
            err->chunk_start = start;
            err->chunk_end = end;
        }
        ddstream_batch_free(b);
        dds_v2_chunk_free(&c);
        return st;
    }
    for (size_t r = 0; r < rows; r++) col.avg[r] = NAN; /* min, max and sum are this column */
    for (size_t k = 0; k < c.buckets && c.series_count > 0; k++)
        col.timestamps[k] = start + (int64_t)k * s->granularity;
    for (size_t j = 0; j < c.series_count; j++) {
        size_t r = j * c.buckets;
        if (j > 0) memcpy(col.timestamps + r, col.timestamps, c.buckets * sizeof *col.timestamps);
        for (size_t k = 0; k < c.buckets; k++) col.query[r + k] = c.formula[j];
        if (!grouped) continue;
        (void)dds_batch_set_tag(b, j, c.tags[j]); /* tag_bytes reserved above: cannot fail */
        col.series_query[j] = c.formula[j];
        for (size_t k = 0; k < c.buckets; k++) col.series[r + k] = (int32_t)j;
    }
    b->chunk_start_ms = start * 1000;
    b->chunk_end_ms = end * 1000;
    b->interval = s->granularity;
    b->query_count = v->set_count;
    dds_v2_chunk_free(&c);
    *out = b;
    return DDSTREAM_OK;
}
