/*
 * scalar.c — ddstream_scalar: one value per group of each formula over a range, through
 * POST /api/v2/query/scalar. A long range is cut into pieces only where the answer stays exact:
 * every query's aggregator splits and every formula is arithmetic, evaluated here on the
 * combined values (scalar_v2.c: the parts, their combination, Datadog's group matching). Anything else is one request over the whole range,
 * and the table says why. A piece Datadog answers "Query timed out" is asked again in two halves
 * where that is exact, as v1's chunks are (chunk_fetch.c). With cache_dir, every request (piece,
 * half, or the one request over the range) goes through the chunk cache as a stream's chunks do:
 * settled ones are asked once, ever.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "chunk_cache.h"
#include "config.h"
#include "ddstream.h"
#include "error.h"
#include "fetch.h"
#include "log.h"
#include "parse_v2.h"
#include "query_lang.h"
#include "retry_policy.h"
#include "scalar_v2.h"
#include "v2_request.h"

/* chunk_seconds 0: a range up to this long is one request; a longer one is cut into pieces this
 * long (where exact). A month of data is what Datadog's own scalar widgets ask for at most by
 * default, and a long scalar is the kind of request that times out. */
#define DDS_SCALAR_DEFAULT_PIECE_S (INT64_C(30) * 86400)

/* Everything a scalar run needs, resolved from the config. */
typedef struct scalar_job {
    dds_settings s;
    const char **aggregators;  /* per query, owned strings (avg by default) */
    dds_formula_op **programs; /* per formula (set): NULL when it has a function */
    size_t *program_len;
    char *reason;           /* why not split (NULL: splittable) */
    int32_t *query_grouped; /* per query: it has "by {...}" */
} scalar_job;

/* One value of one part of one query over one piece, as answered. */
typedef struct record {
    int32_t query;
    int32_t part;
    size_t piece;
    char *tags;
    double value;
} record;

typedef struct records {
    record *r;
    size_t n, cap;
} records;

/* The table being built (index: the formula, or the query), sorted by dds_scalar_value_cmp. */
typedef dds_scalar_value row;

typedef struct rows {
    row *r;
    size_t n, cap;
} rows;

static void job_free(scalar_job *j) {
    size_t nq = j->s.v2.query_count, nf = j->s.v2.set_count;
    for (size_t k = 0; j->aggregators && k < nq; k++) free((char *)j->aggregators[k]);
    free(j->aggregators);
    for (size_t f = 0; j->programs && f < nf; f++) free(j->programs[f]);
    free(j->programs);
    free(j->program_len);
    free(j->query_grouped);
    free(j->reason);
    dds_settings_free(&j->s);
    memset(j, 0, sizeof *j);
}

static ddstream_status job_load(const ddstream_config *cfg, const char *const *aggregators,
                                scalar_job *j, ddstream_error *err) {
    memset(j, 0, sizeof *j);
    ddstream_config c;
    ddstream_status st = dds_config_read(cfg, &c, err);
    if (st != DDSTREAM_OK) return st;
    if (c.follow)
        return dds_error_set(err, DDSTREAM_E_CONFIG,
                             "follow: a scalar is one value over a bounded range: leave follow 0");
    if (c.statistics != 0)
        return dds_error_set(err, DDSTREAM_E_CONFIG,
                             "statistics: a scalar has one value per group, reduced by its "
                             "aggregator: leave statistics 0");
    /* Always v2, each query its own column without formulas. */
    c.api = DDSTREAM_API_V2;
    c.struct_size = sizeof c;
    if ((st = dds_settings_load(&c, &j->s, err)) != DDSTREAM_OK) return st;
    dds_v2_settings *v = &j->s.v2;
    size_t nq = v->query_count, nf = v->set_count;
    j->aggregators = calloc(nq, sizeof *j->aggregators);
    j->programs = calloc(nf, sizeof *j->programs);
    j->program_len = calloc(nf, sizeof *j->program_len);
    j->query_grouped = calloc(nq, sizeof *j->query_grouped);
    if (!j->aggregators || !j->programs || !j->program_len || !j->query_grouped) goto nomem;
    for (size_t k = 0; k < nq; k++) j->query_grouped[k] = j->s.queries[k].grouped != 0;
    for (size_t k = 0; k < nq; k++) {
        const char *a = aggregators && aggregators[k] ? aggregators[k] : "avg";
        if ((j->aggregators[k] = strdup(a)) == NULL) goto nomem;
        v->queries[k].aggregator = j->aggregators[k];
    }
    char msg[600];
    st = dds_v2_check(DDS_V2_SCALAR, v->queries, nq, (const char *const *)v->formulas,
                      v->formula_count, msg, sizeof msg);
    if (st != DDSTREAM_OK) {
        dds_error_set(err, st, "%s", msg);
        job_free(j);
        return st;
    }
    char why[300] = "";
    for (size_t k = 0; k < nq && !why[0]; k++) {
        const char *parts[2];
        if (dds_scalar_parts(j->aggregators[k], parts) == 0)
            snprintf(why, sizeof why,
                     "queries[%zu] (%s): the aggregator %s cannot be split exactly", k,
                     v->queries[k].name, j->aggregators[k]);
    }
    const char **names = calloc(nq, sizeof *names);
    if (names == NULL) goto nomem;
    for (size_t k = 0; k < nq; k++) names[k] = v->queries[k].name;
    for (size_t f = 0; f < v->formula_count; f++) {
        char fn[96];
        dds_query_error qe;
        st = dds_formula_program(v->formulas[f], names, nq, &j->programs[f], &j->program_len[f], fn,
                                 sizeof fn, &qe);
        if (st != DDSTREAM_OK) {
            free(names);
            dds_error_set(err, st, "formulas[%zu]: %s", f, qe.message);
            job_free(j);
            return st;
        }
        if (j->programs[f] == NULL && !why[0])
            snprintf(why, sizeof why, "formulas[%zu] uses the function %s", f, fn);
    }
    free(names);
    if (why[0] && (j->reason = strdup(why)) == NULL) goto nomem;
    return DDSTREAM_OK;
nomem:
    job_free(j);
    return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory reading the scalar's options");
}

/* ---- answers */

/* Where a run's requests go, and what they cost: requests sent, answers read from the cache. */
typedef struct scalar_io {
    dds_http *h;
    dds_chunk_cache *cache; /* NULL: no cache_dir */
    size_t requests, cache_hits;
} scalar_io;

/* POST one scalar request over [from, to) seconds, or read its answer from the cache when it
 * has settled and is there (the key is the method, path and body: never a timeseries chunk's). */
static ddstream_status ask(scalar_io *io, const dds_v2_query *q, size_t nq,
                           const char *const *formulas, size_t nf, int64_t from, int64_t to,
                           dds_v2_scalar *out, ddstream_error *err) {
    char *body = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    ddstream_status st =
        dds_v2_body(DDS_V2_SCALAR, q, nq, formulas, nf, from * 1000, to * 1000, 0, &body, &len);
    if (st != DDSTREAM_OK)
        return dds_error_set(err, st, "could not build the scalar request for [%lld, %lld)",
                             (long long)from, (long long)to);
    int from_cache = 0;
    st = dds_cache_read_counted(io->cache, io->h, DDS_V2_SCALAR_PATH, body, len, 1, to,
                                dds_v2_read_scalar, out, &from_cache, err);
    if (from_cache) io->cache_hits++;
    else io->requests++;
    free(body);
    if (st != DDSTREAM_OK) dds_v2_scalar_free(out);
    return st;
}

static int timed_out(ddstream_status st, const ddstream_error *err) {
    return st != DDSTREAM_OK && st != DDSTREAM_E_CANCELLED && err &&
           dds_retry_query_timed_out(err->http_status, err->message);
}

static int push_record(records *rs, record r) {
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        record *n = realloc(rs->r, cap * sizeof *n);
        if (n == NULL) return -1;
        rs->r = n;
        rs->cap = cap;
    }
    rs->r[rs->n++] = r;
    return 0;
}

static int push_row(rows *rs, int32_t formula, const char *tags, double value) {
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        row *n = realloc(rs->r, cap * sizeof *n);
        if (n == NULL) return -1;
        rs->r = n;
        rs->cap = cap;
    }
    char *t = strdup(tags);
    if (t == NULL) return -1;
    rs->r[rs->n++] = (row){formula, t, value};
    return 0;
}

static void rows_free(rows *rs) {
    for (size_t i = 0; i < rs->n; i++) free(rs->r[i].tags);
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

static void records_free(records *rs) {
    for (size_t i = 0; i < rs->n; i++) free(rs->r[i].tags);
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

/* ---- one request with the user's formulas over the whole range */

static ddstream_status direct_rows(const scalar_job *j, const dds_v2_scalar *a, rows *out,
                                   ddstream_error *err) {
    const dds_v2_settings *v = &j->s.v2;
    if (a->column_count != v->set_count)
        return dds_error_set(err, DDSTREAM_E_PROTOCOL,
                             "scalar answer: %zu number columns for %zu %s", a->column_count,
                             v->set_count, v->formula_count ? "formulas" : "queries");
    for (size_t c = 0; c < a->column_count; c++) {
        size_t before = out->n;
        for (size_t g = 0; g < a->group_count; g++) {
            double x = a->values[c * a->group_count + g];
            if (!isnan(x) && push_row(out, (int32_t)c, a->groups[g], x) != 0)
                return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
        }
        if (out->n == before && !v->grouped[c] && push_row(out, (int32_t)c, "", NAN) != 0)
            return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    }
    return DDSTREAM_OK;
}

/* ---- the split: every query's parts per piece, combined, then the formulas */

/* Piece [from, to) of the parts request; a timeout halves it on the granularity's grid. */
static ddstream_status fetch_parts(scalar_io *io, const scalar_job *j, const dds_v2_query *pq,
                                   const int32_t *pq_query, const int32_t *pq_part, size_t npq,
                                   int64_t from, int64_t to, size_t *pieces, records *rs,
                                   ddstream_error *err) {
    dds_v2_scalar x;
    ddstream_status st = ask(io, pq, npq, NULL, 0, from, to, &x, err);
    if (timed_out(st, err)) {
        int64_t g = j->s.granularity;
        int64_t mid = from + (to - from) / 2;
        mid -= ((mid % g) + g) % g;
        if (mid <= from) mid = from + g;
        if (mid >= to)
            return dds_error_set(err, st,
                                 "scalar over [%lld, %lld) timed out, and it is one granularity "
                                 "(%lld s) long: it cannot be split further",
                                 (long long)from, (long long)to, (long long)g);
        st = fetch_parts(io, j, pq, pq_query, pq_part, npq, from, mid, pieces, rs, err);
        if (st == DDSTREAM_OK)
            st = fetch_parts(io, j, pq, pq_query, pq_part, npq, mid, to, pieces, rs, err);
        return st;
    }
    if (st != DDSTREAM_OK) return st;
    size_t piece = (*pieces)++;
    if (x.column_count != npq) {
        st = dds_error_set(err, DDSTREAM_E_PROTOCOL,
                           "scalar answer: %zu number columns for %zu "
                           "queries",
                           x.column_count, npq);
    }
    for (size_t c = 0; st == DDSTREAM_OK && c < npq; c++) {
        for (size_t g = 0; g < x.group_count; g++) {
            double val = x.values[c * x.group_count + g];
            if (isnan(val)) continue;
            record r = {pq_query[c], pq_part[c], piece, strdup(x.groups[g]), val};
            if (r.tags == NULL || push_record(rs, r) != 0) {
                free(r.tags);
                st = dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
                break;
            }
        }
    }
    dds_v2_scalar_free(&x);
    return st;
}

static int record_cmp(const void *pa, const void *pb) {
    const record *a = pa, *b = pb;
    if (a->query != b->query) return a->query < b->query ? -1 : 1;
    return strcmp(a->tags, b->tags);
}

/* The combined value of every (query, group): rows with formula = the query's index. */
static ddstream_status combine(const scalar_job *j, records *rs, size_t pieces, rows *out,
                               ddstream_error *err) {
    if (rs->n > 1) qsort(rs->r, rs->n, sizeof *rs->r, record_cmp);
    double *partials = malloc(2 * (pieces ? pieces : 1) * sizeof *partials);
    if (partials == NULL) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    for (size_t i = 0; i < rs->n;) {
        size_t e = i;
        while (e < rs->n && record_cmp(&rs->r[i], &rs->r[e]) == 0) e++;
        for (size_t k = 0; k < 2 * pieces; k++) partials[k] = NAN;
        for (size_t t = i; t < e; t++)
            partials[rs->r[t].part * pieces + rs->r[t].piece] = rs->r[t].value;
        const char *agg = j->aggregators[rs->r[i].query];
        if (push_row(out, rs->r[i].query, rs->r[i].tags,
                     dds_scalar_combine(agg, partials, pieces)) != 0) {
            free(partials);
            return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
        }
        i = e;
    }
    free(partials);
    return DDSTREAM_OK;
}

/* The user's formulas on the combined values; without formulas, the combined values themselves. */
static ddstream_status apply_formulas(const scalar_job *j, const rows *c, rows *out,
                                      ddstream_error *err) {
    const dds_v2_settings *v = &j->s.v2;
    if (v->formula_count == 0) {
        for (size_t q = 0; q < v->query_count; q++) {
            size_t a, b, before = out->n;
            dds_scalar_span(c->r, c->n, (int32_t)q, &a, &b);
            for (size_t i = a; i < b; i++)
                if (!isnan(c->r[i].value) && push_row(out, (int32_t)q, c->r[i].tags, c->r[i].value))
                    return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
            if (out->n == before && !v->grouped[q] && push_row(out, (int32_t)q, "", NAN))
                return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
        }
        return DDSTREAM_OK;
    }
    const int32_t *grouped = j->query_grouped;
    for (size_t f = 0; f < v->formula_count; f++) {
        const dds_formula_op *ops = j->programs[f];
        size_t n = j->program_len[f], before = out->n;
        double *stack = malloc((n ? n : 1) * sizeof *stack);
        if (stack == NULL) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
        /* The groups: those of its first grouped operand that every grouped operand has. */
        int32_t lead = -1;
        for (size_t i = 0; i < n && lead < 0; i++)
            if (ops[i].code == DDS_FOP_REF && grouped[ops[i].ref]) lead = ops[i].ref;
        ddstream_status st = DDSTREAM_OK;
        if (lead < 0) {
            double x = dds_scalar_eval(ops, n, grouped, c->r, c->n, "", stack);
            if (push_row(out, (int32_t)f, "", x)) st = DDSTREAM_E_NOMEM;
        } else {
            size_t a, b;
            dds_scalar_span(c->r, c->n, lead, &a, &b);
            for (size_t g = a; g < b && st == DDSTREAM_OK; g++) {
                const char *tags = c->r[g].tags;
                if (!dds_scalar_groups_match(ops, n, grouped, c->r, c->n, tags)) continue;
                double x = dds_scalar_eval(ops, n, grouped, c->r, c->n, tags, stack);
                if (!isnan(x) && push_row(out, (int32_t)f, tags, x)) st = DDSTREAM_E_NOMEM;
            }
            if (st == DDSTREAM_OK && out->n == before && !v->grouped[f] &&
                push_row(out, (int32_t)f, "", NAN))
                st = DDSTREAM_E_NOMEM;
        }
        free(stack);
        if (st != DDSTREAM_OK) return dds_error_set(err, st, "out of memory");
    }
    return DDSTREAM_OK;
}

/* Where the pieces' grid starts: range_start rounded down to the granularity, so that every
 * bound between two pieces is on the granularity's grid (a query's rollup, for exactness). */
static int64_t range_base(const dds_settings *s) {
    int64_t g = s->granularity, r = s->range_start % g;
    return s->range_start - (r < 0 ? r + g : r);
}

/* The parts request: for each query, one query per part (named p<query>_<part>). */
static ddstream_status run_split(scalar_io *io, const scalar_job *j, int64_t step, size_t *pieces,
                                 rows *out, ddstream_error *err) {
    const dds_v2_settings *v = &j->s.v2;
    size_t nq = v->query_count, npq = 0;
    dds_v2_query *pq = calloc(2 * nq, sizeof *pq);
    int32_t *pq_query = calloc(2 * nq, sizeof *pq_query),
            *pq_part = calloc(2 * nq, sizeof *pq_part);
    char(*names)[48] = calloc(2 * nq, sizeof *names);
    records rs = {0};
    rows combined = {0};
    ddstream_status st = DDSTREAM_OK;
    if (!pq || !pq_query || !pq_part || !names) {
        st = dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t q = 0; q < nq; q++) {
        const char *parts[2];
        size_t n = dds_scalar_parts(j->aggregators[q], parts);
        for (size_t k = 0; k < n; k++, npq++) {
            snprintf(names[npq], sizeof names[npq], "p%zu_%zu", q, k);
            pq[npq] = (dds_v2_query){names[npq], v->queries[q].query, parts[k]};
            pq_query[npq] = (int32_t)q;
            pq_part[npq] = (int32_t)k;
        }
    }
    int64_t from = j->s.range_start, end = j->s.range_end, base = range_base(&j->s);
    while (st == DDSTREAM_OK && from < end) {
        int64_t to = base + ((from - base) / step + 1) * step; /* on base's grid of step */
        if (to > end) to = end;
        st = fetch_parts(io, j, pq, pq_query, pq_part, npq, from, to, pieces, &rs, err);
        from = to;
    }
    if (st == DDSTREAM_OK) st = combine(j, &rs, *pieces, &combined, err);
    if (st == DDSTREAM_OK) st = apply_formulas(j, &combined, out, err);
done:
    rows_free(&combined);
    records_free(&rs);
    free(pq);
    free(pq_query);
    free(pq_part);
    free(names);
    return st;
}

/* ---- the run */

static int64_t piece_seconds(const dds_settings *s) {
    int64_t g = s->granularity,
            step = s->chunk_seconds ? s->chunk_seconds : DDS_SCALAR_DEFAULT_PIECE_S;
    return (step + g - 1) / g * g;
}

static ddstream_status build_table(scalar_job *j, rows *rs, size_t pieces, const scalar_io *io,
                                   const char *reason, ddstream_scalar_table **out,
                                   ddstream_error *err) {
    const dds_v2_settings *v = &j->s.v2;
    if (rs->n > 1) qsort(rs->r, rs->n, sizeof *rs->r, dds_scalar_value_cmp);
    ddstream_scalar_table *t = calloc(1, sizeof *t);
    if (t == NULL) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    size_t n = rs->n ? rs->n : 1, nf = v->set_count;
    int32_t *formula = calloc(n, sizeof *formula);
    char **tags = calloc(n, sizeof *tags);
    double *value = calloc(n, sizeof *value);
    char **texts = calloc(nf ? nf : 1, sizeof *texts);
    t->struct_size = sizeof *t;
    t->formula = formula;
    t->group_tags = (const char *const *)tags;
    t->value = value;
    t->formula_text = (const char *const *)texts;
    t->chunks = pieces;
    t->requests = io->requests;
    t->cache_hits = io->cache_hits;
    int ok = formula && tags && value && texts;
    if (ok && reason) ok = (t->split_reason = strdup(reason)) != NULL;
    for (size_t f = 0; ok && f < nf; f++) {
        ok = (texts[f] = strdup(v->labels[f])) != NULL;
        t->formula_count = f + 1;
    }
    for (size_t i = 0; ok && i < rs->n; i++) {
        formula[i] = rs->r[i].index;
        value[i] = rs->r[i].value;
        tags[i] = rs->r[i].tags; /* moved */
        rs->r[i].tags = NULL;
        t->row_count = i + 1;
    }
    if (!ok) {
        ddstream_scalar_free(t); /* the rows not moved yet stay the caller's (rows_free) */
        return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    }
    *out = t;
    return DDSTREAM_OK;
}

static ddstream_status run_job(scalar_job *j, dds_cancel *cancel, ddstream_scalar_table **out,
                               ddstream_error *err) {
    const dds_settings *s = &j->s;
    dds_log log;
    dds_log_init(&log, s->log_level, s->log_fn, s->log_user, 0, s->api_key, s->app_key);
    if (s->log_to_queue && !s->log_fn) log.level = DDSTREAM_LOG_NONE; /* nothing polls a queue */
    ddstream_status st;
    scalar_io io = {dds_http_new(s, &log, cancel, err), NULL, 0, 0};
    rows rs = {0};
    size_t pieces = 0;
    char reason[400] = "";
    if (!io.h) {
        st = err ? err->status : DDSTREAM_E_NOMEM;
        goto done;
    }
    /* Before any request: a cache_dir that cannot be used is the run's error, as for a stream. */
    if ((st = dds_chunk_cache_open(s, &log, &io.cache, err)) != DDSTREAM_OK) goto done;
    dds_http_wait_for_windows(io.h); /* several requests: sit out a spent window as a stream does */
    const dds_v2_settings *v = &s->v2;
    int64_t step = piece_seconds(s);
    int one_piece = s->range_end - range_base(s) <= step;
    if (j->reason || one_piece) {
        dds_v2_scalar x;
        st = ask(&io, v->queries, v->query_count, (const char *const *)v->formulas,
                 v->formula_count, s->range_start, s->range_end, &x, err);
        if (st == DDSTREAM_OK) {
            pieces = 1;
            st = direct_rows(j, &x, &rs, err);
            dds_v2_scalar_free(&x);
            if (j->reason) snprintf(reason, sizeof reason, "%s", j->reason);
            else
                snprintf(reason, sizeof reason,
                         "the range fits one request (pieces of %lld s: chunk_seconds, 0 for 30 "
                         "days)",
                         (long long)step);
            goto done;
        }
        if (!timed_out(st, err)) goto done;
        if (j->reason) {
            char was[sizeof err->message];
            snprintf(was, sizeof was, "%s", err->message);
            st = dds_error_set(err, st,
                               "%s; it cannot be asked in pieces of time: %s. Shorten "
                               "the range",
                               was, j->reason);
            goto done;
        }
        /* One piece that timed out: the halves below (fetch_parts halves it again if need be). */
        step = (s->range_end - range_base(s) + 1) / 2;
        step = step < s->granularity
                   ? s->granularity
                   : (step + s->granularity - 1) / s->granularity * s->granularity;
    }
    st = run_split(&io, j, step, &pieces, &rs, err);
done:
    if (st == DDSTREAM_OK)
        st = build_table(j, &rs, pieces, &io, reason[0] ? reason : NULL, out, err);
    rows_free(&rs);
    dds_chunk_cache_free(io.cache);
    dds_http_free(io.h);
    if (st != DDSTREAM_OK && err) dds_redact_keys(err->message, s->api_key, s->app_key);
    dds_log_destroy(&log);
    return st;
}

DDSTREAM_API void ddstream_scalar_free(ddstream_scalar_table *t) {
    if (t == NULL) return;
    for (size_t i = 0; t->group_tags && i < t->row_count; i++) free((char *)t->group_tags[i]);
    for (size_t f = 0; t->formula_text && f < t->formula_count; f++)
        free((char *)t->formula_text[f]);
    free((void *)t->formula);
    free((void *)t->group_tags);
    free((void *)t->value);
    free((void *)t->formula_text);
    free((char *)t->split_reason);
    free(t);
}

DDSTREAM_API ddstream_status ddstream_scalar(const ddstream_config *cfg,
                                             const char *const *aggregators,
                                             ddstream_scalar_table **out, ddstream_error *err) {
    if (!out) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    scalar_job j;
    ddstream_status st = job_load(cfg, aggregators, &j, err);
    if (st != DDSTREAM_OK) return st;
    dds_cancel never;
    if (dds_cancel_init(&never) != 0) {
        job_free(&j);
        return dds_error_set(err, DDSTREAM_E_INTERNAL, "could not create a lock");
    }
    st = run_job(&j, &never, out, err);
    dds_cancel_destroy(&never);
    job_free(&j);
    return st;
}

/* ---- ddstream_scalar_start: the same run on a thread of its own, waited for in slices and
 * cancellable (Ctrl-C in Python), as ddstream_validate_start. */
struct ddstream_scalar_run {
    pid_t owner_pid;
    scalar_job job;
    dds_cancel cancel;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t done_cv; /* CLOCK_MONOTONIC */
    int done, taken;
    ddstream_status status;
    ddstream_error error;
    ddstream_scalar_table *table;
};

static void *scalar_main(void *arg) {
    ddstream_scalar_run *r = arg;
    ddstream_error e;
    memset(&e, 0, sizeof e);
    ddstream_scalar_table *t = NULL;
    ddstream_status st = run_job(&r->job, &r->cancel, &t, &e);
    if (st == DDSTREAM_E_CANCELLED) dds_error_set(&e, st, "scalar cancelled");
    pthread_mutex_lock(&r->mu);
    r->status = st;
    r->error = e;
    r->table = t;
    r->done = 1;
    pthread_cond_broadcast(&r->done_cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static int init_sync(ddstream_scalar_run *r) {
    if (dds_cancel_init(&r->cancel) != 0) return -1;
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc == 0) {
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        rc = pthread_cond_init(&r->done_cv, &attr);
        pthread_condattr_destroy(&attr);
    }
    if (rc == 0 && pthread_mutex_init(&r->mu, NULL) != 0) {
        pthread_cond_destroy(&r->done_cv);
        rc = -1;
    }
    if (rc != 0) dds_cancel_destroy(&r->cancel);
    return rc == 0 ? 0 : -1;
}

DDSTREAM_API ddstream_status ddstream_scalar_start(const ddstream_config *cfg,
                                                   const char *const *aggregators,
                                                   ddstream_scalar_run **out, ddstream_error *err) {
    if (!out) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    ddstream_scalar_run *r = calloc(1, sizeof *r);
    if (!r) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory starting the scalar");
    r->owner_pid = getpid();
    ddstream_status st = job_load(cfg, aggregators, &r->job, err);
    if (st != DDSTREAM_OK) {
        free(r);
        return st;
    }
    if (init_sync(r) != 0) {
        job_free(&r->job);
        free(r);
        return dds_error_set(err, DDSTREAM_E_INTERNAL, "could not create the scalar's locks");
    }
    if (pthread_create(&r->thread, NULL, scalar_main, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->done_cv);
        dds_cancel_destroy(&r->cancel);
        job_free(&r->job);
        free(r);
        return dds_error_set(err, DDSTREAM_E_INTERNAL, "could not start the scalar's thread");
    }
    *out = r;
    return DDSTREAM_OK;
}

DDSTREAM_API ddstream_status ddstream_scalar_wait(ddstream_scalar_run *r, int64_t timeout_ms,
                                                  ddstream_scalar_table **out,
                                                  ddstream_error *err) {
    if (out) *out = NULL;
    if (!r || !out) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "run or out is NULL");
    if (getpid() != r->owner_pid)
        return dds_error_set(err, DDSTREAM_E_FORKED,
                             "the scalar was started in process %ld; it cannot be used after "
                             "fork(): start a new one in the child",
                             (long)r->owner_pid);
    struct timespec until = dds_deadline_after(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&r->mu);
    while (!r->done && timeout_ms != 0) {
        if (timeout_ms < 0) pthread_cond_wait(&r->done_cv, &r->mu);
        else if (pthread_cond_timedwait(&r->done_cv, &r->mu, &until) == ETIMEDOUT) break;
    }
    ddstream_status st = r->done ? r->status : DDSTREAM_TIMEOUT;
    if (r->done && st != DDSTREAM_OK && err) *err = r->error;
    if (r->done && st == DDSTREAM_OK) {
        if (r->taken) {
            st = dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT,
                               "the scalar's table was already handed over");
        } else {
            *out = r->table;
            r->table = NULL;
            r->taken = 1;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return st;
}

DDSTREAM_API void ddstream_scalar_cancel(ddstream_scalar_run *r) {
    if (!r || getpid() != r->owner_pid) return;
    dds_cancel_trigger(&r->cancel);
}

DDSTREAM_API void ddstream_scalar_run_free(ddstream_scalar_run *r) {
    if (!r) return;
    if (getpid() != r->owner_pid) return; /* a fork()ed child's copy: left alone */
    dds_cancel_trigger(&r->cancel);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->done_cv);
    dds_cancel_destroy(&r->cancel);
    ddstream_scalar_free(r->table);
    job_free(&r->job);
    free(r);
}
