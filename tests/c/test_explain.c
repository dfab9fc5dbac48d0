/*
 * test_explain.c — ddstream_explain's JSON (read back with cJSON) and the config checks of
 * several queries: query XOR queries, one expression per item, the parser's errors prefixed with
 * the item, the statistics mask, the URI budget naming the query; a v2 stream's queries, formulas
 * and first request (its body as v2_request.c writes it). No network I/O, no keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ddstream.h"
#include "v2_request.h"
#include "vendor/cjson/cJSON.h"

static void base(ddstream_config *cfg) {
    ddstream_config_init(cfg);
    cfg->base_url = "http://127.0.0.1:9";
    cfg->range_start = 1700000000 - 1700000000 % 86400;
    cfg->range_end = cfg->range_start + 2 * 86400; /* two days at 60 s: 2 chunks of 1500 min */
    cfg->granularity = 60;
}

/* The explanation parsed, or NULL (with a failed check). */
static cJSON *explain(const ddstream_config *cfg) {
    size_t needed = 0;
    ddstream_error err;
    memset(&err, 0, sizeof err);
    CHECK_INT(ddstream_explain(cfg, NULL, 0, &needed, &err), DDSTREAM_E_INVALID_ARGUMENT);
    CHECK(needed > 2);
    char *buf = malloc(needed);
    size_t again = 0;
    CHECK_INT(ddstream_explain(cfg, buf, needed - 1, &again, &err), DDSTREAM_E_INVALID_ARGUMENT);
    CHECK_CONTAINS(err.message, "call again");
    CHECK_INT(ddstream_explain(cfg, buf, needed, &again, &err), DDSTREAM_OK);
    CHECK_INT(again, needed);
    CHECK_INT(strlen(buf) + 1, needed);
    cJSON *doc = cJSON_Parse(buf);
    CHECK_MSG(doc != NULL, "not JSON: %s", buf);
    free(buf);
    return doc;
}

static const char *str_at(const cJSON *arr, int i) {
    const cJSON *it = cJSON_GetArrayItem(arr, i);
    return cJSON_IsString(it) ? it->valuestring : "(not a string)";
}

static int int_of(const cJSON *obj, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(it) ? it->valueint : -1;
}

/* Twelve queries, three statistics each: 36 sub-queries, 2 requests of 35 + 1 a chunk. */
static void test_twelve_queries(void) {
    char texts[12][48];
    const char *queries[12];
    for (int i = 0; i < 12; i++) {
        snprintf(texts[i], sizeof texts[i], i % 2 ? "avg:m%d{*} by {host}" : "sum:m%d{env:a}", i);
        queries[i] = texts[i];
    }
    ddstream_config cfg;
    base(&cfg);
    cfg.queries = queries;
    cfg.query_count = 12;
    cfg.statistics = DDSTREAM_STAT_MIN | DDSTREAM_STAT_MAX | DDSTREAM_STAT_SUM;
    cJSON *doc = explain(&cfg);
    if (!doc) return;
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(doc, "queries");
    CHECK_INT(cJSON_GetArraySize(qs), 12);
    const cJSON *q1 = cJSON_GetArrayItem(qs, 1);
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(q1, "query")->valuestring, "avg:m1{*} by {host}");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(q1, "grouped")));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(qs, 0), "grouped")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(q1, "reason")));
    const cJSON *stats = cJSON_GetObjectItemCaseSensitive(q1, "statistics");
    CHECK_INT(cJSON_GetArraySize(stats), 3);
    CHECK_STR(str_at(stats, 0), "min");
    CHECK_STR(str_at(stats, 2), "sum");
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(q1, "subqueries");
    CHECK_INT(cJSON_GetArraySize(subs), 3);
    CHECK_STR(str_at(subs, 1), "avg:m1{*} by {host}.rollup(max,60)");
    CHECK_INT(int_of(doc, "requests_per_chunk"), 2);
    CHECK_INT(int_of(doc, "chunks"), 2);
    const cJSON *reqs = cJSON_GetObjectItemCaseSensitive(doc, "requests");
    CHECK_INT(cJSON_GetArraySize(reqs), 2);
    const cJSON *r0 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(reqs, 0), "subqueries");
    const cJSON *r1 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(reqs, 1), "subqueries");
    CHECK_INT(cJSON_GetArraySize(r0), 35);
    CHECK_INT(cJSON_GetArraySize(r1), 1);
    const cJSON *last = cJSON_GetArrayItem(r1, 0); /* query 11's sum */
    CHECK_INT(cJSON_GetArrayItem(last, 0)->valueint, 11);
    CHECK_STR(str_at(last, 1), "sum");
    const cJSON *first = cJSON_GetArrayItem(r0, 4); /* query 1's max */
    CHECK_INT(cJSON_GetArrayItem(first, 0)->valueint, 1);
    CHECK_STR(str_at(first, 1), "max");
    CHECK(int_of(cJSON_GetArrayItem(reqs, 0), "uri_bytes") > 35 * 30);
    CHECK(int_of(cJSON_GetArrayItem(reqs, 0), "uri_bytes") <= 7000);
    cJSON_Delete(doc);

    /* A URI budget that holds 10 such sub-queries: 4 requests. */
    cfg.max_request_uri_bytes = 50 + 10 * 60;
    doc = explain(&cfg);
    if (!doc) return;
    int total = 0;
    reqs = cJSON_GetObjectItemCaseSensitive(doc, "requests");
    for (int i = 0; i < cJSON_GetArraySize(reqs); i++) {
        const cJSON *r = cJSON_GetArrayItem(reqs, i);
        CHECK(int_of(r, "uri_bytes") <= 650);
        total += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "subqueries"));
    }
    CHECK_INT(total, 36);
    CHECK(int_of(doc, "requests_per_chunk") > 2);
    cJSON_Delete(doc);
}

/* One query given as query: the four rollups in one request, as ddstream always sent them. */
static void test_one_query(void) {
    ddstream_config cfg;
    base(&cfg);
    cfg.query = "avg:system.cpu.user{*} by {host}";
    cJSON *doc = explain(&cfg);
    if (!doc) return;
    CHECK_INT(int_of(doc, "requests_per_chunk"), 1);
    const cJSON *q0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "queries"), 0);
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(q0, "subqueries");
    CHECK_INT(cJSON_GetArraySize(subs), 4);
    CHECK_STR(str_at(subs, 0), "avg:system.cpu.user{*} by {host}.rollup(avg,60)");
    CHECK_STR(str_at(subs, 3), "avg:system.cpu.user{*} by {host}.rollup(sum,60)");
    cJSON_Delete(doc);
    /* A value-only query: one sub-query, its reason said. */
    cfg.query = "p99:trace.http.request.duration{*}";
    doc = explain(&cfg);
    if (!doc) return;
    q0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "queries"), 0);
    const cJSON *stats = cJSON_GetObjectItemCaseSensitive(q0, "statistics");
    CHECK_INT(cJSON_GetArraySize(stats), 1);
    CHECK_STR(str_at(stats, 0), "value");
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(q0, "reason")));
    cJSON_Delete(doc);
}

/* The config checks through ddstream_explain, which needs no keys. */
static ddstream_status validate(const ddstream_config *cfg, ddstream_error *err) {
    memset(err, 0, sizeof *err);
    static char buf[65536];
    size_t needed = 0;
    return ddstream_explain(cfg, buf, sizeof buf, &needed, err);
}

static void test_config_errors(void) {
    ddstream_config cfg;
    ddstream_error err;
    base(&cfg);
    const char *items[] = {"avg:a{*}", "avg:b{host:x", "avg:c{*}"};
    cfg.queries = items;
    cfg.query_count = 3;
    CHECK_INT(validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message,
                   "queries[1]: at character 13: expected '}' to close the scope opened at "
                   "character 6");
    items[1] = "avg:b{*}, avg:c{*}";
    CHECK_INT(validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "queries[1] holds 2 queries");
    items[1] = "  ";
    CHECK_INT(validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "queries[1] is empty");
    items[1] = NULL;
    CHECK_INT(validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "queries[1] is empty");
    /* The URI budget names the query whose sub-query cannot fit alone. */
    items[1] = "avg:b{*}";
    cfg.max_request_uri_bytes = 80; /* the path (50 bytes) and one sub-query (38) do not fit */
    CHECK_INT(validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "queries[0]: one of its sub-queries alone makes a request URI of");
    cfg.max_request_uri_bytes = 0;
    CHECK_INT(validate(&cfg, &err), DDSTREAM_OK);
    /* Several queries in `query`: accepted, errors say "query". */
    base(&cfg);
    cfg.query = "avg:a{*}, avg:b{*";
    CHECK_INT(validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message,
                   "query: at character 18: expected '}' to close the scope opened at "
                   "character 16");
    cfg.query = NULL;
    CHECK_INT(validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "query is empty");
    /* Distribution metric names are checked. */
    const char *dists[] = {"trace.duration", ""};
    cfg.query = "avg:a{*}";
    cfg.distribution_metrics = dists;
    cfg.distribution_metric_count = 2;
    CHECK_INT(validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "distribution_metrics[1]");
    cfg.distribution_metric_count = 1;
    CHECK_INT(validate(&cfg, &err), DDSTREAM_OK);
}

static const char *member_str(const cJSON *obj, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : "(not a string)";
}

/* Named queries and formulas: the v2 description, its body byte for byte dds_v2_body's for the
 * first chunk, and no "api" member in a v1 explanation. */
static void test_v2(void) {
    const char *texts[] = {"avg:m.used{*} by {host}", "sum:m.total{env:a}"};
    const char *names[] = {"used", "total"};
    const char *formulas[] = {"used / total * 100", "total"};
    ddstream_config cfg;
    base(&cfg);
    cfg.range_start += 90; /* not on the grid: the first chunk starts at the next bucket */
    cfg.queries = texts;
    cfg.query_names = names;
    cfg.query_count = 2;
    cfg.formulas = formulas;
    cfg.formula_count = 2;
    cfg.chunk_seconds = 3600;
    cJSON *doc = explain(&cfg);
    if (!doc) return;
    CHECK_STR(member_str(doc, "api"), "v2");
    const cJSON *qs = cJSON_GetObjectItemCaseSensitive(doc, "queries");
    CHECK_INT(cJSON_GetArraySize(qs), 2);
    CHECK_STR(member_str(cJSON_GetArrayItem(qs, 0), "name"), "used");
    CHECK_STR(member_str(cJSON_GetArrayItem(qs, 1), "query"), texts[1]);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(qs, 0), "grouped")));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(qs, 1), "grouped")));
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(doc, "formulas");
    CHECK_INT(cJSON_GetArraySize(fs), 2);
    CHECK_STR(str_at(fs, 0), formulas[0]);
    CHECK_INT(int_of(doc, "interval"), 60);
    CHECK_INT(int_of(doc, "requests_per_chunk"), 1);
    /* [start + 120, start + 2 days): 3600 s chunks from the first bucket, the last one short */
    CHECK_INT(int_of(doc, "chunks"), 48);
    const cJSON *reqs = cJSON_GetObjectItemCaseSensitive(doc, "requests");
    CHECK_INT(cJSON_GetArraySize(reqs), 1);
    const cJSON *r0 = cJSON_GetArrayItem(reqs, 0);
    CHECK_STR(member_str(r0, "method"), "POST");
    CHECK_STR(member_str(r0, "path"), "/api/v2/query/timeseries");
    const cJSON *chunk = cJSON_GetObjectItemCaseSensitive(r0, "chunk");
    int64_t first = cfg.range_start - 90 + 120, second = first + 3600;
    CHECK_INT((int64_t)cJSON_GetArrayItem(chunk, 0)->valuedouble, first);
    CHECK_INT((int64_t)cJSON_GetArrayItem(chunk, 1)->valuedouble, second);
    const dds_v2_query q[] = {{"used", texts[0], NULL}, {"total", texts[1], NULL}};
    char *body = NULL;
    size_t len = 0;
    CHECK_INT(dds_v2_body(DDS_V2_TIMESERIES, q, 2, formulas, 2, first * 1000, second * 1000, 60000,
                          &body, &len),
              DDSTREAM_OK);
    CHECK_STR(member_str(r0, "body"), body ? body : "(no body)");
    CHECK_INT(strlen(member_str(r0, "body")), len);
    free(body);
    cJSON_Delete(doc);

    /* api v2 without formulas: each query its own formula, none listed, none in the body. */
    cfg.formulas = NULL;
    cfg.formula_count = 0;
    cfg.api = DDSTREAM_API_V2;
    doc = explain(&cfg);
    if (!doc) return;
    CHECK_STR(member_str(doc, "api"), "v2");
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "formulas")), 0);
    r0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "requests"), 0);
    CHECK_INT(dds_v2_body(DDS_V2_TIMESERIES, q, 2, NULL, 0, first * 1000, second * 1000, 60000,
                          &body, &len),
              DDSTREAM_OK);
    CHECK_STR(member_str(r0, "body"), body ? body : "(no body)");
    free(body);
    cJSON_Delete(doc);

    /* The same queries over v1: its layout, no "api" member. */
    cfg.api = DDSTREAM_API_V1;
    cfg.query_names = NULL;
    doc = explain(&cfg);
    if (!doc) return;
    CHECK(cJSON_GetObjectItemCaseSensitive(doc, "api") == NULL);
    CHECK(cJSON_GetObjectItemCaseSensitive(
              cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "queries"), 0),
              "subqueries") != NULL);
    cJSON_Delete(doc);

    /* A formula's error is the config's, pointing at the character, before any output. */
    cfg.api = DDSTREAM_API_AUTO;
    cfg.query_names = names;
    const char *bad[] = {"used / nope"};
    cfg.formulas = bad;
    cfg.formula_count = 1;
    ddstream_error err;
    CHECK_INT(validate(&cfg, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "formulas[0]");
    CHECK_CONTAINS(err.message, "unknown query name 'nope'");
}

int main(void) {
    test_twelve_queries();
    test_one_query();
    test_config_errors();
    test_v2();
    return check_report("test_explain");
}
