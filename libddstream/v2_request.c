/*
 * v2_request.c — the named queries and formulas of a v2 request, checked together with the query
 * language (query_lang.c), and the request's JSON body (shared/DATADOG.md, "Query timeseries data
 * (v2)"). The body is written directly rather than through a JSON tree: its shape is fixed and
 * small, and the only free text in it (names, queries, formulas) goes through one escaper.
 */
#include "v2_request.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "query_lang.h"
#include "strbuf.h"

int dds_v2_scalar_aggregator_known(const char *aggregator) {
    static const char *const known[] = {"avg",  "min",    "max",  "sum",        "last", "mean",
                                        "area", "l2norm", "norm", "percentile", "count"};
    if (aggregator == NULL) return 0;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (strcmp(aggregator, known[k]) == 0) return 1;
    return 0;
}

ddstream_status dds_v2_check(dds_v2_kind kind, const dds_v2_query *q, size_t nq,
                             const char *const *formulas, size_t nf, char *msg, size_t cap) {
    dds_query_error qe;
    if (nq == 0 || q == NULL) {
        dds_set_msg(msg, cap, "queries: a v2 request needs at least one named query");
        return DDSTREAM_E_CONFIG;
    }
    if (nf > 0 && formulas == NULL) {
        dds_set_msg(msg, cap, "formulas: %zu formulas announced but none given", nf);
        return DDSTREAM_E_CONFIG;
    }
    const char **names = malloc(nq * sizeof *names);
    unsigned char *used = calloc(nq, 1);
    ddstream_status st = DDSTREAM_OK;
    if (names == NULL || used == NULL) {
        dds_set_msg(msg, cap, "out of memory while checking the queries");
        st = DDSTREAM_E_NOMEM;
        goto done;
    }
    for (size_t k = 0; k < nq && st == DDSTREAM_OK; k++) {
        names[k] = q[k].name;
        if ((st = dds_query_name_check(q[k].name, &qe)) != DDSTREAM_OK) {
            dds_set_msg(msg, cap, "queries[%zu]: name: %s", k, qe.message);
            break;
        }
        for (size_t j = 0; j < k; j++) {
            if (strcmp(q[j].name, q[k].name) == 0) {
                dds_set_msg(msg, cap,
                            "queries[%zu]: the name '%s' is already the name of queries[%zu]", k,
                            q[k].name, j);
                st = DDSTREAM_E_CONFIG;
                break;
            }
        }
        if (st != DDSTREAM_OK) break;
        if ((st = dds_query_check_v2(q[k].query, &qe)) != DDSTREAM_OK) {
            dds_set_msg(msg, cap, "queries[%zu] (%s): %s", k, q[k].name, qe.message);
            break;
        }
        if (kind == DDS_V2_SCALAR && !dds_v2_scalar_aggregator_known(q[k].aggregator)) {
            dds_set_msg(msg, cap,
                        "queries[%zu] (%s): the scalar aggregator %s%s%s is not one of avg, min, "
                        "max, sum, last, mean, area, l2norm, norm, percentile, count",
                        k, q[k].name, q[k].aggregator ? "'" : "",
                        q[k].aggregator ? q[k].aggregator : "(missing)",
                        q[k].aggregator ? "'" : "");
            st = DDSTREAM_E_CONFIG;
            break;
        }
    }
    for (size_t f = 0; f < nf && st == DDSTREAM_OK; f++) {
        if ((st = dds_formula_compile(formulas[f], names, nq, used, NULL, &qe)) != DDSTREAM_OK)
            dds_set_msg(msg, cap, "formulas[%zu]: %s", f, qe.message);
    }
    for (size_t k = 0; k < nq && nf > 0 && st == DDSTREAM_OK; k++) {
        if (!used[k]) {
            dds_set_msg(msg, cap,
                        "queries[%zu] (%s) is used by no formula: refer to it in one or remove it",
                        k, q[k].name);
            st = DDSTREAM_E_CONFIG;
        }
    }
done:
    free(names);
    free(used);
    return st;
}

ddstream_status dds_v2_body(dds_v2_kind kind, const dds_v2_query *q, size_t nq,
                            const char *const *formulas, size_t nf, int64_t from_ms, int64_t to_ms,
                            int64_t interval_ms, char **out, size_t *len) {
    if (out) *out = NULL;
    if (len) *len = 0;
    if (out == NULL || len == NULL || q == NULL || nq == 0 || (nf > 0 && formulas == NULL) ||
        from_ms >= to_ms || (kind == DDS_V2_TIMESERIES && interval_ms <= 0))
        return DDSTREAM_E_INVALID_ARGUMENT;
    dds_strbuf b = DDS_STRBUF_INIT;
    dds_strbuf_puts(&b, "{\"data\":{\"type\":");
    dds_strbuf_puts(&b, kind == DDS_V2_SCALAR ? "\"scalar_request\"" : "\"timeseries_request\"");
    dds_strbuf_puts(&b, ",\"attributes\":{\"from\":");
    dds_strbuf_printf(&b, "%" PRId64, from_ms);
    dds_strbuf_puts(&b, ",\"to\":");
    dds_strbuf_printf(&b, "%" PRId64, to_ms);
    if (kind == DDS_V2_TIMESERIES) {
        dds_strbuf_puts(&b, ",\"interval\":");
        dds_strbuf_printf(&b, "%" PRId64, interval_ms);
    }
    dds_strbuf_puts(&b, ",\"queries\":[");
    for (size_t k = 0; k < nq; k++) {
        dds_strbuf_puts(&b, k ? ",{\"data_source\":\"metrics\",\"query\":"
                              : "{\"data_source\":\"metrics\",\"query\":");
        dds_strbuf_json_string(&b, q[k].query ? q[k].query : "");
        dds_strbuf_puts(&b, ",\"name\":");
        dds_strbuf_json_string(&b, q[k].name ? q[k].name : "");
        if (kind == DDS_V2_SCALAR) {
            dds_strbuf_puts(&b, ",\"aggregator\":");
            dds_strbuf_json_string(&b, q[k].aggregator ? q[k].aggregator : "avg");
        }
        dds_strbuf_puts(&b, "}");
    }
    dds_strbuf_puts(&b, "]");
    if (nf > 0) {
        dds_strbuf_puts(&b, ",\"formulas\":[");
        for (size_t f = 0; f < nf; f++) {
            dds_strbuf_puts(&b, f ? ",{\"formula\":" : "{\"formula\":");
            dds_strbuf_json_string(&b, formulas[f] ? formulas[f] : "");
            dds_strbuf_puts(&b, "}");
        }
        dds_strbuf_puts(&b, "]");
    }
    dds_strbuf_puts(&b, "}}}");
    size_t written = b.len;
    *out = dds_strbuf_take(&b);
    if (*out == NULL) return DDSTREAM_E_NOMEM;
    *len = written;
    return DDSTREAM_OK;
}

void dds_v2_settings_free(dds_v2_settings *v) {
    if (v == NULL) return;
    for (size_t k = 0; v->queries && k < v->query_count; k++) {
        free((char *)v->queries[k].name);
        free((char *)v->queries[k].query);
    }
    free(v->queries);
    for (size_t k = 0; v->formulas && k < v->formula_count; k++) free(v->formulas[k]);
    free(v->formulas);
    free(v->grouped);
    free(v->labels);
    memset(v, 0, sizeof *v);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

ddstream_status dds_v2_settings_load(int32_t api, const char *const *texts,
                                     const int32_t *query_grouped, size_t nq,
                                     const char *const *names, const char *const *formulas,
                                     size_t nf, uint32_t statistics, dds_v2_settings *out,
                                     char *msg, size_t cap) {
    memset(out, 0, sizeof *out);
    if (api < DDSTREAM_API_AUTO || api > DDSTREAM_API_V2) {
        dds_set_msg(msg, cap, "api must be 0 (auto), 1 (v1) or 2 (v2), got %d", (int)api);
        return DDSTREAM_E_CONFIG;
    }
    if (formulas == NULL && nf > 0) {
        dds_set_msg(msg, cap, "formulas is NULL but formula_count is %zu", nf);
        return DDSTREAM_E_CONFIG;
    }
    if (nf > 0 && api == DDSTREAM_API_V1) {
        dds_set_msg(msg, cap, "formulas need the v2 endpoint: api is v1 (leave it 0, auto)");
        return DDSTREAM_E_CONFIG;
    }
    if (api != DDSTREAM_API_V2 && nf == 0) {
        if (names != NULL) {
            dds_set_msg(msg, cap, "query_names are for formulas (v2): set formulas or api v2");
            return DDSTREAM_E_CONFIG;
        }
        return DDSTREAM_OK; /* v1 */
    }
    if (statistics != 0) {
        dds_set_msg(msg, cap,
                    "statistics do not apply to v2 (formulas): each formula has one value per "
                    "bucket; leave statistics 0");
        return DDSTREAM_E_CONFIG;
    }
    ddstream_status st = DDSTREAM_E_NOMEM;
    out->queries = calloc(nq ? nq : 1, sizeof *out->queries);
    out->formulas = calloc(nf ? nf : 1, sizeof *out->formulas);
    out->set_count = nf ? nf : nq;
    out->grouped = calloc(out->set_count ? out->set_count : 1, sizeof *out->grouped);
    out->labels = calloc(out->set_count ? out->set_count : 1, sizeof *out->labels);
    unsigned char *used = calloc(nq ? nq : 1, 1);
    const char **name_list = calloc(nq ? nq : 1, sizeof *name_list);
    if (!out->queries || !out->formulas || !out->grouped || !out->labels || !used || !name_list)
        goto fail;
    for (size_t k = 0; k < nq; k++) {
        char fallback[24];
        snprintf(fallback, sizeof fallback, "q%zu", k);
        out->queries[k].name = strdup(names && names[k] ? names[k] : fallback);
        out->queries[k].query = dup_or_null(texts[k]);
        out->query_count = k + 1;
        if (!out->queries[k].name || !out->queries[k].query) goto fail;
        name_list[k] = out->queries[k].name;
    }
    for (size_t f = 0; f < nf; f++) {
        out->formulas[f] = dup_or_null(formulas[f]);
        out->formula_count = f + 1;
        if (formulas[f] && !out->formulas[f]) goto fail;
    }
    st = dds_v2_check(DDS_V2_TIMESERIES, out->queries, nq, (const char *const *)out->formulas, nf,
                      msg, cap);
    if (st != DDSTREAM_OK) goto fail;
    for (size_t k = 0; k < out->set_count; k++) {
        if (nf == 0) {
            out->grouped[k] = query_grouped[k] != 0;
            out->labels[k] = out->queries[k].query;
            continue;
        }
        memset(used, 0, nq);
        dds_query_error qe;
        st = dds_formula_compile(out->formulas[k], name_list, nq, used, NULL, &qe);
        if (st != DDSTREAM_OK) goto fail;
        for (size_t q = 0; q < nq; q++)
            if (used[q] && query_grouped[q]) out->grouped[k] = 1;
        out->labels[k] = out->formulas[k];
    }
    out->enabled = 1;
    free(used);
    free(name_list);
    return DDSTREAM_OK;
fail:
    if (st == DDSTREAM_E_NOMEM) dds_set_msg(msg, cap, "out of memory reading the v2 options");
    free(used);
    free(name_list);
    dds_v2_settings_free(out);
    return st;
}
