/*
 * explain.c — ddstream_explain: what a config's queries become (their sub-queries, grouping and
 * statistics) and the requests each chunk sends, as JSON, without any network I/O. For users
 * checking a rewrite or a request budget before spending a rate limit on it. A v2 stream (named
 * queries and formulas) is described by its queries, formulas and the one POST a chunk sends,
 * with the body built by the same dds_v2_body the stream uses for it.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "plan.h"
#include "strbuf.h"
#include "v2_request.h"

/* The path chunk_v2.c posts to; tests/python/test_explain_v2.py holds the two to the fake's log. */

static const char *stat_name(int32_t stat) {
    static const char *const names[] = {"avg", "min", "max", "sum", "value"};
    return stat >= 0 && stat <= DDS_STAT_VALUE ? names[stat] : "?";
}

static void write_explain(dds_strbuf *b, const dds_settings *s, size_t chunks) {
    dds_strbuf_puts(b, "{\"queries\":[");
    for (size_t q = 0; q < s->query_count; q++) {
        const dds_compiled_query *cq = &s->queries[q];
        dds_strbuf_puts(b, q ? ",{\"query\":" : "{\"query\":");
        dds_strbuf_json_string(b, cq->source);
        dds_strbuf_puts(b, cq->grouped ? ",\"grouped\":true,\"statistics\":["
                                       : ",\"grouped\":false,"
                                         "\"statistics\":[");
        for (size_t i = 0; i < cq->subquery_count; i++) {
            if (i) dds_strbuf_puts(b, ",");
            dds_strbuf_json_string(b, stat_name(cq->subqueries[i].stat));
        }
        dds_strbuf_puts(b, "],\"reason\":");
        if (cq->value_reason) dds_strbuf_json_string(b, cq->value_reason);
        else dds_strbuf_puts(b, "null");
        dds_strbuf_puts(b, ",\"subqueries\":[");
        for (size_t i = 0; i < cq->subquery_count; i++) {
            if (i) dds_strbuf_puts(b, ",");
            dds_strbuf_json_string(b, cq->subqueries[i].text);
        }
        dds_strbuf_puts(b, "]}");
    }
    dds_strbuf_printf(b, "],\"requests_per_chunk\":%zu,\"requests\":[", s->pack.request_count);
    for (size_t r = 0; r < s->pack.request_count; r++) {
        const dds_request_span *req = &s->pack.requests[r];
        dds_strbuf_puts(b, r ? ",{\"subqueries\":[" : "{\"subqueries\":[");
        for (size_t i = 0; i < req->count; i++) {
            const dds_subq_ref *ref = &s->pack.subs[req->first + i];
            dds_strbuf_printf(b, "%s[%d,", i ? "," : "", (int)ref->query);
            dds_strbuf_json_string(b, stat_name(ref->stat));
            dds_strbuf_puts(b, "]");
        }
        dds_strbuf_printf(b, "],\"uri_bytes\":%zu}", req->uri_bytes);
    }
    dds_strbuf_printf(b, "],\"chunks\":%zu}", chunks);
}

/* A v2 stream: api, named queries, formulas, interval and the first chunk's request (exact body).
 * v1's layout is left as it was (no "api" member): its consumers read it unchanged, and "api"
 * present says v2. */
static ddstream_status write_explain_v2(dds_strbuf *b, const dds_settings *s, const dds_plan *p,
                                        ddstream_error *err) {
    const dds_v2_settings *v = &s->v2;
    dds_strbuf_puts(b, "{\"api\":\"v2\",\"queries\":[");
    for (size_t q = 0; q < v->query_count; q++) {
        dds_strbuf_puts(b, q ? ",{\"name\":" : "{\"name\":");
        dds_strbuf_json_string(b, v->queries[q].name);
        dds_strbuf_puts(b, ",\"query\":");
        dds_strbuf_json_string(b, v->queries[q].query);
        /* query q of the v2 settings is compiled query q (config.c's load_v2) */
        int grouped = q < s->query_count && s->queries[q].grouped;
        dds_strbuf_puts(b, grouped ? ",\"grouped\":true}" : ",\"grouped\":false}");
    }
    dds_strbuf_puts(b, "],\"formulas\":[");
    for (size_t f = 0; f < v->formula_count; f++) {
        if (f) dds_strbuf_puts(b, ",");
        dds_strbuf_json_string(b, v->formulas[f]);
    }
    dds_strbuf_printf(b, "],\"interval\":%lld,\"requests_per_chunk\":1,\"requests\":[",
                      (long long)s->granularity);
    if (p->count > 0) {
        ddstream_chunk c = dds_plan_chunk(p, 0);
        char *body = NULL;
        size_t len = 0;
        ddstream_status st = dds_v2_body(
            DDS_V2_TIMESERIES, v->queries, v->query_count, (const char *const *)v->formulas,
            v->formula_count, c.start * 1000, c.end * 1000, s->granularity * 1000, &body, &len);
        if (st != DDSTREAM_OK)
            return dds_error_set(err, st, "could not build the v2 request of chunk 0 [%lld, %lld)",
                                 (long long)c.start, (long long)c.end);
        dds_strbuf_printf(b,
                          "{\"method\":\"POST\",\"path\":\"" DDS_V2_TIMESERIES_PATH
                          "\",\"chunk\":[%lld,%lld],\"body\":",
                          (long long)c.start, (long long)c.end);
        dds_strbuf_json_string(b, body);
        dds_strbuf_puts(b, "}");
        free(body);
    }
    dds_strbuf_printf(b, "],\"chunks\":%zu}", p->count);
    return DDSTREAM_OK;
}

DDSTREAM_API ddstream_status ddstream_explain(const ddstream_config *cfg, char *buf, size_t cap,
                                              size_t *needed, ddstream_error *err) {
    if (!needed) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "needed is NULL");
    if (cap > 0 && !buf)
        return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "buf is NULL but cap is %zu", cap);
    /* Nothing is sent: the keys are not needed (as for ddstream_plan). */
    ddstream_config keyless;
    ddstream_status st = dds_config_read(cfg, &keyless, err);
    if (st != DDSTREAM_OK) return st;
    if (!keyless.api_key || !*keyless.api_key) keyless.api_key = "explain-only";
    if (!keyless.app_key || !*keyless.app_key) keyless.app_key = "explain-only";
    dds_settings s;
    if ((st = dds_settings_load(&keyless, &s, err)) != DDSTREAM_OK) return st;
    dds_plan p;
    st = dds_plan_make(s.range_start, s.range_end, s.granularity, s.chunk_seconds, &p, err);
    if (st != DDSTREAM_OK) {
        dds_settings_free(&s);
        return st;
    }
    dds_strbuf b = DDS_STRBUF_INIT;
    if (s.v2.enabled) st = write_explain_v2(&b, &s, &p, err);
    else write_explain(&b, &s, p.count);
    dds_settings_free(&s);
    if (st != DDSTREAM_OK) {
        dds_strbuf_free(&b);
        return st;
    }
    if (b.nomem) {
        dds_strbuf_free(&b);
        return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory writing the explanation");
    }
    *needed = b.len + 1;
    if (cap < b.len + 1) {
        dds_strbuf_free(&b);
        return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT,
                             "the explanation needs %zu bytes, the buffer has %zu: call again with "
                             "a larger one",
                             *needed, cap);
    }
    memcpy(buf, b.p, b.len + 1);
    dds_strbuf_free(&b);
    return DDSTREAM_OK;
}
