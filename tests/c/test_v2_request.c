/*
 * test_v2_request.c — a v2 request's parts: query names, named queries (one metric term each),
 * formulas over the names (query_lang.c's formula mode: unknown names, metric terms, syntax errors
 * pointing at the character), the cross-checks (duplicate names, unused queries, scalar
 * aggregators) and the JSON body (v2_request.c), compared byte for byte with the shape
 * shared/DATADOG.md records, escaping included.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "query_lang.h"
#include "v2_request.h"

static const char *const AB[] = {"a", "b"};

/* The 0-based offset the error points at is where `at` last occurs in text. */
static size_t last_at(const char *text, const char *at) {
    if (at[0] == 0) return strlen(text);
    const char *p = NULL;
    for (const char *q = strstr(text, at); q; q = strstr(q + 1, at)) p = q;
    return p ? (size_t)(p - text) : (size_t)-1;
}

typedef struct fcase {
    const char *text;
    const char *canonical; /* NULL: an error */
    unsigned used;         /* bit k: names[k] referred to */
    const char *at;
    const char *says;
} fcase;

static const fcase formulas[] = {
    {"a", "a", 1, 0, 0},
    {"a / b * 100", "a / b * 100", 3, 0, 0},
    {"(a+b)/2", "(a + b) / 2", 3, 0, 0},
    {"per_second(a)", "per_second(a)", 1, 0, 0},
    {"anomalies(a, 'basic', 2)", "anomalies(a, 'basic', 2)", 1, 0, 0},
    {"moving_rollup(a, 300, 'sum') / b", "moving_rollup(a, 300, 'sum') / b", 3, 0, 0},
    {"top(b, 10, 'mean', 'desc')", "top(b, 10, 'mean', 'desc')", 2, 0, 0},
    {"-b", "-b", 2, 0, 0},
    {"timeshift(a, -3600) - a", "timeshift(a, -3600) - a", 1, 0, 0},
    /* errors point at the character */
    {"a / c", NULL, 0, "c", "unknown query name 'c': the queries are named a, b"},
    {"a / avg:m{*}", NULL, 0, ":", "refers to its queries by name"},
    {"a.rollup(sum)", NULL, 0, ".", "refers to its queries by name"},
    {"a {x}", NULL, 0, "{", "refers to its queries by name"},
    {"a /", NULL, 0, "", "expected"},
    {"(a + b", NULL, 0, "", "expected ')'"},
    {"a b", NULL, 0, "b", "unexpected"},
    {"nosuch(a)", NULL, 0, "nosuch", "unknown function 'nosuch()'"},
    {"per_second(2)", NULL, 0, "2", "must be a metric query"},
    {"1 + 2", NULL, 0, "1", "refers to none of the named queries"},
    {"a, b", NULL, 0, ",", "one formula per item"},
    {"", NULL, 0, "", "empty"},
    {"a\x01", NULL, 0, "\x01", "control character"},
};

static void test_formulas(void) {
    for (size_t k = 0; k < sizeof formulas / sizeof formulas[0]; k++) {
        const fcase *c = &formulas[k];
        unsigned char used[2] = {0, 0};
        char *canon = NULL;
        dds_query_error e;
        ddstream_status st = dds_formula_compile(c->text, AB, 2, used, &canon, &e);
        if (c->canonical) {
            CHECK_MSG(st == DDSTREAM_OK, "formula '%s': %s", c->text, e.message);
            CHECK_STR(canon, c->canonical);
            CHECK_MSG((unsigned)(used[0] | (used[1] << 1)) == c->used, "formula '%s': used %u%u",
                      c->text, used[0], used[1]);
        } else {
            CHECK_MSG(st == DDSTREAM_E_CONFIG, "formula '%s' accepted", c->text);
            CHECK_MSG(canon == NULL, "formula '%s': canonical text on error", c->text);
            CHECK_MSG(e.offset == last_at(c->text, c->at), "formula '%s': offset %zu, expected %zu",
                      c->text, e.offset, last_at(c->text, c->at));
            CHECK_CONTAINS(e.message, c->says);
            CHECK_CONTAINS(e.message, "^"); /* the caret line */
        }
        free(canon);
    }
    /* A name that is a prefix of another is not confused with it. */
    static const char *const names[] = {"q", "q1"};
    unsigned char used[2] = {0, 0};
    dds_query_error e;
    CHECK(dds_formula_compile("q1 - q", names, 2, used, NULL, &e) == DDSTREAM_OK);
    CHECK(used[0] == 1 && used[1] == 1);
    CHECK(dds_formula_compile("a", NULL, 0, NULL, NULL, &e) == DDSTREAM_E_CONFIG);
    CHECK(dds_formula_compile(NULL, AB, 2, NULL, NULL, &e) == DDSTREAM_E_CONFIG);
}

static void test_names_and_queries(void) {
    dds_query_error e;
    CHECK(dds_query_name_check("a", &e) == DDSTREAM_OK);
    CHECK(dds_query_name_check("query_1", &e) == DDSTREAM_OK);
    CHECK(dds_query_name_check("_x", &e) == DDSTREAM_OK);
    CHECK(dds_query_name_check("", &e) == DDSTREAM_E_CONFIG);
    CHECK(dds_query_name_check(NULL, &e) == DDSTREAM_E_CONFIG);
    CHECK(dds_query_name_check("1a", &e) == DDSTREAM_E_CONFIG);
    CHECK_INT(e.offset, 0);
    CHECK(dds_query_name_check("a-b", &e) == DDSTREAM_E_CONFIG);
    CHECK_INT(e.offset, 1);
    CHECK(dds_query_name_check("a.b", &e) == DDSTREAM_E_CONFIG);
    CHECK_INT(e.offset, 1);
    CHECK(dds_query_name_check("abs", &e) == DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(e.message, "function");
    char longname[DDS_QUERY_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK(dds_query_name_check(longname, &e) == DDSTREAM_E_CONFIG);
    CHECK_INT(e.offset, DDS_QUERY_NAME_MAX);

    CHECK(dds_query_check_v2("avg:system.cpu.user{*} by {host}", &e) == DDSTREAM_OK);
    CHECK(dds_query_check_v2("sum:requests{env:prod}.as_count().rollup(sum, 60)", &e) ==
          DDSTREAM_OK);
    CHECK(dds_query_check_v2("p99:trace.http.request.duration{*}", &e) == DDSTREAM_OK);
    const char *fn = "per_second(avg:m{*})";
    CHECK(dds_query_check_v2(fn, &e) == DDSTREAM_E_CONFIG);
    CHECK_INT(e.offset, 0);
    CHECK_CONTAINS(e.message, "formula");
    const char *arith = "avg:a{*} / avg:b{*}";
    CHECK(dds_query_check_v2(arith, &e) == DDSTREAM_E_CONFIG);
    CHECK_INT(e.offset, last_at(arith, "/"));
    const char *two = "avg:a{*}, avg:b{*}";
    CHECK(dds_query_check_v2(two, &e) == DDSTREAM_E_CONFIG);
    CHECK_INT(e.offset, last_at(two, ","));
    const char *bad = "avg:a{host:x";
    CHECK(dds_query_check_v2(bad, &e) == DDSTREAM_E_CONFIG);
    CHECK_INT(e.offset, strlen(bad));
}

static void test_check_all(void) {
    char msg[512];
    dds_v2_query q[3] = {{"a", "sum:errors{*} by {host}", NULL},
                         {"b", "sum:hits{*} by {host}", NULL},
                         {"c", "avg:m{*}", NULL}};
    const char *f_ok[] = {"a / b * 100", "c"};
    CHECK(dds_v2_check(DDS_V2_TIMESERIES, q, 3, f_ok, 2, msg, sizeof msg) == DDSTREAM_OK);
    /* No formulas: the queries are the answer; none is unused. */
    CHECK(dds_v2_check(DDS_V2_TIMESERIES, q, 3, NULL, 0, msg, sizeof msg) == DDSTREAM_OK);
    const char *f_unused[] = {"a / b * 100"};
    CHECK(dds_v2_check(DDS_V2_TIMESERIES, q, 3, f_unused, 1, msg, sizeof msg) == DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(msg, "queries[2] (c) is used by no formula");
    const char *f_unknown[] = {"a", "b + x"};
    CHECK(dds_v2_check(DDS_V2_TIMESERIES, q, 2, f_unknown, 2, msg, sizeof msg) ==
          DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(msg, "formulas[1]: at character 5: unknown query name 'x'");
    dds_v2_query dup[2] = {{"a", "avg:m{*}", NULL}, {"a", "avg:n{*}", NULL}};
    CHECK(dds_v2_check(DDS_V2_TIMESERIES, dup, 2, NULL, 0, msg, sizeof msg) == DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(msg, "queries[1]: the name 'a' is already the name of queries[0]");
    dds_v2_query fn[1] = {{"a", "abs(avg:m{*})", NULL}};
    CHECK(dds_v2_check(DDS_V2_TIMESERIES, fn, 1, NULL, 0, msg, sizeof msg) == DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(msg, "queries[0] (a): at character 1:");
    dds_v2_query badname[1] = {{"9", "avg:m{*}", NULL}};
    CHECK(dds_v2_check(DDS_V2_TIMESERIES, badname, 1, NULL, 0, msg, sizeof msg) ==
          DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(msg, "queries[0]: name:");
    dds_v2_query scal[1] = {{"a", "avg:m{*}", "median"}};
    CHECK(dds_v2_check(DDS_V2_SCALAR, scal, 1, NULL, 0, msg, sizeof msg) == DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(msg, "'median'");
    scal[0].aggregator = "sum";
    CHECK(dds_v2_check(DDS_V2_SCALAR, scal, 1, NULL, 0, msg, sizeof msg) == DDSTREAM_OK);
    CHECK(dds_v2_check(DDS_V2_TIMESERIES, NULL, 0, NULL, 0, msg, sizeof msg) == DDSTREAM_E_CONFIG);
}

static void test_body(void) {
    dds_v2_query q[2] = {{"a", "sum:errors{*} by {host}", NULL}, {"b", "sum:hits{*}", NULL}};
    const char *f[] = {"a / b * 100"};
    char *body = NULL;
    size_t len = 0;
    CHECK(dds_v2_body(DDS_V2_TIMESERIES, q, 2, f, 1, INT64_C(1700000000000), INT64_C(1700003600000),
                      60000, &body, &len) == DDSTREAM_OK);
    CHECK_STR(body,
              "{\"data\":{\"type\":\"timeseries_request\",\"attributes\":{"
              "\"from\":1700000000000,\"to\":1700003600000,\"interval\":60000,"
              "\"queries\":[{\"data_source\":\"metrics\",\"query\":\"sum:errors{*} by "
              "{host}\",\"name\":\"a\"},{\"data_source\":\"metrics\",\"query\":"
              "\"sum:hits{*}\",\"name\":\"b\"}],\"formulas\":[{\"formula\":\"a / b * "
              "100\"}]}}}");
    CHECK_INT(len, strlen(body));
    free(body);

    /* No formulas: no formulas member. Scalar: no interval, an aggregator per query. */
    dds_v2_query s[1] = {{"a", "avg:m{*}", "max"}};
    CHECK(dds_v2_body(DDS_V2_SCALAR, s, 1, NULL, 0, 1000, 2000, 0, &body, &len) == DDSTREAM_OK);
    CHECK_STR(body,
              "{\"data\":{\"type\":\"scalar_request\",\"attributes\":{\"from\":1000,\"to\":"
              "2000,\"queries\":[{\"data_source\":\"metrics\",\"query\":\"avg:m{*}\","
              "\"name\":\"a\",\"aggregator\":\"max\"}]}}}");
    free(body);

    /* Escaping: quotes, backslashes and control characters; UTF-8 as it is. */
    dds_v2_query e[1] = {{"a", "avg:m{env:\"x\\y\"}\t\xc3\xa9", NULL}};
    CHECK(dds_v2_body(DDS_V2_TIMESERIES, e, 1, NULL, 0, 0, 60000, 60000, &body, &len) ==
          DDSTREAM_OK);
    CHECK_CONTAINS(body, "\"query\":\"avg:m{env:\\\"x\\\\y\\\"}\\u0009\xc3\xa9\"");
    free(body);

    CHECK(dds_v2_body(DDS_V2_TIMESERIES, q, 2, NULL, 0, 5, 5, 60000, &body, &len) ==
          DDSTREAM_E_INVALID_ARGUMENT);
    CHECK(body == NULL);
    CHECK(dds_v2_body(DDS_V2_TIMESERIES, q, 2, NULL, 0, 0, 5, 0, &body, &len) ==
          DDSTREAM_E_INVALID_ARGUMENT);
    CHECK(dds_v2_body(DDS_V2_TIMESERIES, q, 0, NULL, 0, 0, 5, 1, &body, &len) ==
          DDSTREAM_E_INVALID_ARGUMENT);

    /* Many queries: the body grows past its first buffer. */
    enum { N = 500 };
    dds_v2_query *many = calloc(N, sizeof *many);
    char(*names)[8] = calloc(N, 8);
    CHECK(many != NULL && names != NULL);
    for (int k = 0; k < N; k++) {
        snprintf(names[k], 8, "q%d", k);
        many[k].name = names[k];
        many[k].query = "avg:system.cpu.user{*} by {host}";
    }
    CHECK(dds_v2_body(DDS_V2_TIMESERIES, many, N, NULL, 0, 0, 60000, 60000, &body, &len) ==
          DDSTREAM_OK);
    CHECK_CONTAINS(body, "\"name\":\"q499\"}]}}}");
    CHECK_INT(len, strlen(body));
    free(body);
    free(many);
    free(names);
}

int main(int argc, char **argv) {
    (void)argc;
    test_formulas();
    test_names_and_queries();
    test_check_all();
    test_body();
    return check_report(argv[0]);
}
