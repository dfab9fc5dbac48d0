/*
 * test_parse_v2.c — v2 timeseries answers (parse_v2.c): the recorded shape, members in any
 * order, escapes, null and empty members, errors in a 200; wrong types and shapes named by their
 * JSON path; bodies cut short at every byte (always an error, never a crash) and mutated byte by
 * byte; a large answer read exactly.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "parse_v2.h"

/* A real answer of POST /api/v2/query/timeseries, as the official Python client's test suite
 * recorded it (tests/v2/cassettes/test_scenarios/
 * test_timeseries_cross_product_query_returns_ok_response.yaml): a formula "a" over
 * avg:datadog.estimated_usage.metrics.custom{*}, from 1711977601000 to 1711981201000 at 5000 ms. */
static const char RECORDED[] =
    "{\"data\":{\"id\":\"0\",\"type\":\"timeseries_response\",\"attributes\":{\"series\":[{"
    "\"group_tags\":[],\"query_index\":0,\"unit\":null}],\"times\":[1711977645000,1711977705000,"
    "1711980225000],\"values\":[[1,1,87]]}}}";

/* The shape shared/DATADOG.md records for grouped series with units and nulls. */
static const char GROUPED[] =
    "{\"data\":{\"id\":\"0\",\"type\":\"timeseries_response\",\"attributes\":{"
    "\"series\":[{\"group_tags\":[\"host:a\",\"env:prod\"],\"query_index\":1,\"unit\":[{"
    "\"family\":\"percentage\",\"scale_factor\":1.0,\"name\":\"percent\",\"short_name\":\"%\","
    "\"plural\":\"percent\",\"id\":17},null]},{\"group_tags\":[\"host:b\"],\"query_index\":0,"
    "\"unit\":null}],"
    "\"times\":[1700000000000,1700000060000.0,1700000180000],"
    "\"values\":[[0.5,null,-2.25e2],[null,null,1.7976931348623157e308]]}}}";

static ddstream_status parse(const char *body, dds_v2_response *r, char *msg, size_t cap) {
    return dds_parse_v2_timeseries(body, strlen(body), r, msg, cap);
}

static void test_recorded(void) {
    dds_v2_response r;
    char msg[512];
    CHECK(parse(RECORDED, &r, msg, sizeof msg) == DDSTREAM_OK);
    CHECK_INT(r.series_count, 1);
    CHECK_INT(r.series[0].query_index, 0);
    CHECK_STR(r.series[0].tags, "");
    CHECK_INT(r.time_count, 3);
    CHECK_INT(r.times_ms[0], INT64_C(1711977645000));
    CHECK_INT(r.times_ms[2], INT64_C(1711980225000));
    CHECK_DBL(r.values[0], 1);
    CHECK_DBL(r.values[2], 87);
    dds_v2_response_free(&r);
    CHECK(r.series == NULL && r.values == NULL);

    CHECK(parse(GROUPED, &r, msg, sizeof msg) == DDSTREAM_OK);
    CHECK_INT(r.series_count, 2);
    CHECK_STR(r.series[0].tags, "host:a,env:prod");
    CHECK_INT(r.series[0].query_index, 1);
    CHECK_STR(r.series[1].tags, "host:b");
    CHECK_INT(r.times_ms[1], INT64_C(1700000060000));
    CHECK_DBL(r.values[0], 0.5);
    CHECK_DBL(r.values[1], NAN);
    CHECK_DBL(r.values[2], -225);
    CHECK_DBL(r.values[3], NAN);
    CHECK_DBL(r.values[5], 1.7976931348623157e308);
    dds_v2_response_free(&r);
}

static void test_shapes_accepted(void) {
    dds_v2_response r;
    char msg[512];
    /* Members in another order (values before times and series), unknown members, whitespace. */
    const char *reordered =
        " \xEF\xBB\xBF{ \"meta\" : {\"x\":[1,{\"y\":true}]}, \"data\" : { \"attributes\" : {"
        "\"values\" : [ [ 3 , null ] ] , \"extra\":\"\\u00e9\", \"times\" : [ 60000 , 120000 ] ,"
        "\"series\" : [ { \"unit\":[null,null], \"query_index\" : 0 , \"group_tags\" : "
        "[ \"k:\\u00e9\\ud83d\\ude00\\\"\\\\\\/\" ] } ] } , \"type\":\"timeseries_response\" } }\n";
    /* (a BOM after a space is not a BOM: this one must fail) */
    CHECK(parse(reordered, &r, msg, sizeof msg) == DDSTREAM_E_PROTOCOL);
    CHECK(parse(reordered + 1, &r, msg, sizeof msg) == DDSTREAM_OK);
    CHECK_INT(r.series_count, 1);
    CHECK_STR(r.series[0].tags, "k:\xc3\xa9\xf0\x9f\x98\x80\"\\/");
    CHECK_INT(r.times_ms[1], 120000);
    CHECK_DBL(r.values[0], 3);
    CHECK_DBL(r.values[1], NAN);
    dds_v2_response_free(&r);

    /* No data: empty members, or none at all, and group_tags null. */
    CHECK(parse("{\"data\":{\"attributes\":{\"series\":[],\"times\":[],\"values\":[]}}}", &r, msg,
                sizeof msg) == DDSTREAM_OK);
    CHECK_INT(r.series_count, 0);
    CHECK_INT(r.time_count, 0);
    CHECK(r.values == NULL && r.series == NULL);
    dds_v2_response_free(&r);
    CHECK(parse("{\"data\":{\"type\":\"timeseries_response\",\"attributes\":{}}}", &r, msg,
                sizeof msg) == DDSTREAM_OK);
    CHECK_INT(r.series_count, 0);
    dds_v2_response_free(&r);
    CHECK(parse("{\"data\":{\"attributes\":{\"series\":[{\"group_tags\":null,\"query_index\":2}],"
                "\"times\":[],\"values\":[[]]}},\"errors\":\"\"}",
                &r, msg, sizeof msg) == DDSTREAM_OK);
    CHECK_INT(r.series_count, 1);
    CHECK_STR(r.series[0].tags, "");
    CHECK_INT(r.series[0].query_index, 2);
    dds_v2_response_free(&r);
}

typedef struct bad {
    const char *body;
    ddstream_status st;
    const char *says;
} bad;

static const bad bads[] = {
    {"{\"data\":{\"attributes\":{\"series\":[{\"query_index\":0}],\"times\":[1],\"values\":[]}}}",
     DDSTREAM_E_PROTOCOL, "data.attributes.values has 0 rows for 1 series"},
    {"{\"data\":{\"attributes\":{\"series\":[{\"query_index\":0}],\"times\":[1,2],"
     "\"values\":[[1]]}}}",
     DDSTREAM_E_PROTOCOL, "data.attributes.values[0] has 1 values for 2 times"},
    {"{\"data\":{\"attributes\":{\"series\":[{\"group_tags\":[]}],\"values\":[[]]}}}",
     DDSTREAM_E_PROTOCOL, "data.attributes.series[0] has no query_index"},
    {"{\"data\":{\"attributes\":{\"series\":[{\"query_index\":\"0\"}]}}}", DDSTREAM_E_PROTOCOL,
     "data.attributes.series[0].query_index is a string, expected a number"},
    {"{\"data\":{\"attributes\":{\"series\":[{\"query_index\":1.5}]}}}", DDSTREAM_E_PROTOCOL,
     "data.attributes.series[0].query_index is 1.5, expected a whole number"},
    {"{\"data\":{\"attributes\":{\"series\":[{\"query_index\":-1}]}}}", DDSTREAM_E_PROTOCOL,
     "query_index is negative"},
    {"{\"data\":{\"attributes\":{\"series\":[{\"query_index\":0,\"group_tags\":[1]}]}}}",
     DDSTREAM_E_PROTOCOL, "data.attributes.series[0].group_tags[0] is a number, expected a string"},
    {"{\"data\":{\"attributes\":{\"series\":[{\"query_index\":0,\"group_tags\":[\"a\\u0000b\"]}]"
     "}}}",
     DDSTREAM_E_PROTOCOL, "data.attributes.series[0].group_tags[0] holds U+0000"},
    {"{\"data\":{\"attributes\":{\"times\":[\"1\"]}}}", DDSTREAM_E_PROTOCOL,
     "data.attributes.times[0] is a string, expected a number"},
    {"{\"data\":{\"attributes\":{\"times\":[1e20]}}}", DDSTREAM_E_PROTOCOL,
     "data.attributes.times[0] is 1e20, expected a whole number"},
    {"{\"data\":{\"attributes\":{\"times\":[1],\"values\":[[\"1\"]],\"series\":[{\"query_index\":"
     "0}]}}}",
     DDSTREAM_E_PROTOCOL, "data.attributes.values[0][0] is a string, expected a number or null"},
    {"{\"data\":{\"attributes\":{\"times\":[1],\"values\":[[1e999]],\"series\":[{\"query_index\":"
     "0}]}}}",
     DDSTREAM_E_PROTOCOL, "data.attributes.values[0][0] is out of range"},
    /* Past the first values of a row (read on its fast path), the general reading names them. */
    {"{\"data\":{\"attributes\":{\"times\":[1,2,3],\"series\":[{\"query_index\":0}],"
     "\"values\":[[1,null,1e999]]}}}",
     DDSTREAM_E_PROTOCOL, "data.attributes.values[0][2] is out of range"},
    {"{\"data\":{\"attributes\":{\"times\":[1,2,3],\"series\":[{\"query_index\":0}],"
     "\"values\":[[1, 2,\"3\"]]}}}",
     DDSTREAM_E_PROTOCOL, "data.attributes.values[0][2] is a string, expected a number or null"},
    {"{\"data\":{\"attributes\":{\"times\":[1,2],\"series\":[{\"query_index\":0}],"
     "\"values\":[[1,nul]]}}}",
     DDSTREAM_E_PROTOCOL, "invalid JSON at byte"},
    {"{\"data\":{\"attributes\":{\"values\":{}}}}", DDSTREAM_E_PROTOCOL,
     "data.attributes.values is an object, expected an array"},
    {"{\"data\":{\"attributes\":{\"values\":[1]}}}", DDSTREAM_E_PROTOCOL,
     "data.attributes.values[0] is a number, expected an array"},
    {"{\"data\":{\"attributes\":{\"times\":[],\"times\":[]}}}", DDSTREAM_E_PROTOCOL,
     "data.attributes.times appears twice"},
    {"{\"data\":{\"attributes\":[]}}", DDSTREAM_E_PROTOCOL,
     "data.attributes is an array, expected an object"},
    {"{\"data\":null}", DDSTREAM_E_PROTOCOL, "no data.attributes"},
    {"{}", DDSTREAM_E_PROTOCOL, "no data.attributes"},
    {"[]", DDSTREAM_E_PROTOCOL, "expected a JSON object, got an array"},
    {"", DDSTREAM_E_PROTOCOL, "expected a JSON object, got an empty body"},
    {"<html><title>502 Bad Gateway</title></html>", DDSTREAM_E_PROTOCOL,
     "expected a JSON object, got HTML"},
    {"{\"data\":{\"attributes\":{\"times\":[1,]}}}", DDSTREAM_E_PROTOCOL, "invalid JSON at byte"},
    {"{\"data\":{\"attributes\":{\"values\":[[nan]]}}}", DDSTREAM_E_PROTOCOL,
     "invalid JSON at byte"},
    {"{\"data\":{}} x", DDSTREAM_E_PROTOCOL, "invalid JSON at byte"},
    {"{\"data\":{\"attributes\":{\"times\":[1", DDSTREAM_E_PROTOCOL, "ends early"},
    {"{\"data\":{\"attributes\":{}},\"errors\":[\"Query timed out\"]}", DDSTREAM_E_QUERY,
     "Query timed out"},
    {"{\"errors\":\"Something went wrong\"}", DDSTREAM_E_QUERY, "Something went wrong"},
};

static void test_errors(void) {
    for (size_t k = 0; k < sizeof bads / sizeof bads[0]; k++) {
        dds_v2_response r;
        char msg[512];
        ddstream_status st = parse(bads[k].body, &r, msg, sizeof msg);
        CHECK_MSG(st == bads[k].st, "body %zu: status %d, expected %d (%s)", k, (int)st,
                  (int)bads[k].st, msg);
        CHECK_MSG(strstr(msg, bads[k].says) != NULL, "body %zu: message \"%s\", expected \"%s\"", k,
                  msg, bads[k].says);
        CHECK(r.series == NULL && r.times_ms == NULL && r.values == NULL);
    }
}

/* Every prefix of a good answer is refused (none is a complete document with all its rows), and
 * every single-byte mutation is either accepted or refused cleanly (ASan/valgrind watch). */
static void test_cut_and_mutated(void) {
    const char *bodies[] = {RECORDED, GROUPED};
    for (size_t b = 0; b < 2; b++) {
        size_t n = strlen(bodies[b]);
        char *copy = malloc(n + 1);
        CHECK(copy != NULL);
        for (size_t cut = 0; cut < n; cut++) {
            memcpy(copy, bodies[b], cut);
            dds_v2_response r;
            char msg[256];
            ddstream_status st = dds_parse_v2_timeseries(copy, cut, &r, msg, sizeof msg);
            CHECK_MSG(st == DDSTREAM_E_PROTOCOL, "body %zu cut at %zu: status %d", b, cut, (int)st);
        }
        static const char subst[] = "\"[]{},:0-.enul\\ a";
        size_t accepted = 0;
        for (size_t i = 0; i < n; i++) {
            for (size_t s = 0; s < sizeof subst - 1; s++) {
                memcpy(copy, bodies[b], n);
                copy[i] = subst[s];
                dds_v2_response r;
                char msg[256];
                ddstream_status st = dds_parse_v2_timeseries(copy, n, &r, msg, sizeof msg);
                CHECK(st == DDSTREAM_OK || st == DDSTREAM_E_PROTOCOL || st == DDSTREAM_E_QUERY);
                if (st == DDSTREAM_OK) {
                    accepted++;
                    CHECK(r.series_count == 0 || r.series != NULL);
                    dds_v2_response_free(&r);
                } else {
                    CHECK(msg[0] != 0);
                }
            }
        }
        CHECK(accepted > 0);
        free(copy);
    }
}

/* 200 series x 1440 times with every number shape: read exactly (the expected doubles are the
 * C library's own reading of the same text). 20 series under valgrind (DDS_TEST_NO_TIMING): the
 * same shapes, a tenth of the time. */
static void test_large(void) {
    enum { T = 1440 };
    const int S = getenv("DDS_TEST_NO_TIMING") != NULL ? 20 : 200;
    size_t cap = (size_t)S * T * 24 + ((size_t)1 << 20);
    char *body = malloc(cap);
    double *want = malloc(sizeof(double) * S * T);
    CHECK(body != NULL && want != NULL);
    size_t n = 0;
    n += (size_t)snprintf(body + n, cap - n, "{\"data\":{\"attributes\":{\"series\":[");
    for (int s = 0; s < S; s++)
        n += (size_t)snprintf(body + n, cap - n,
                              "%s{\"group_tags\":[\"host:h%03d\"],"
                              "\"query_index\":%d,\"unit\":null}",
                              s ? "," : "", s, s % 3);
    n += (size_t)snprintf(body + n, cap - n, "],\"times\":[");
    for (int t = 0; t < T; t++)
        n += (size_t)snprintf(body + n, cap - n, "%s%lld", t ? "," : "",
                              1700000000000LL + 60000LL * t);
    n += (size_t)snprintf(body + n, cap - n, "],\"values\":[");
    uint64_t x = 88172645463325252ULL;
    for (int s = 0; s < S; s++) {
        n += (size_t)snprintf(body + n, cap - n, "%s[", s ? "," : "");
        for (int t = 0; t < T; t++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char num[40];
            switch (x % 5) {
            case 0: snprintf(num, sizeof num, "null"); break;
            case 1: snprintf(num, sizeof num, "%llu", (unsigned long long)(x >> 20)); break;
            case 2:
                snprintf(num, sizeof num, "%.17g", (double)(x >> 11) / 9007199254740992.0);
                break;
            case 3: snprintf(num, sizeof num, "-%.6f", (double)(x % 100000) / 7.0); break;
            default: snprintf(num, sizeof num, "%.3e", (double)(x % 1000000) * 1e-5); break;
            }
            want[s * T + t] = strcmp(num, "null") == 0 ? NAN : strtod(num, NULL);
            n += (size_t)snprintf(body + n, cap - n, "%s%s", t ? "," : "", num);
        }
        n += (size_t)snprintf(body + n, cap - n, "]");
    }
    n += (size_t)snprintf(body + n, cap - n, "]}}}");
    CHECK(n < cap);
    dds_v2_response r;
    char msg[256];
    CHECK(dds_parse_v2_timeseries(body, n, &r, msg, sizeof msg) == DDSTREAM_OK);
    CHECK_INT(r.series_count, S);
    CHECK_INT(r.time_count, T);
    size_t wrong = 0;
    for (size_t k = 0; k < (size_t)S * T; k++) {
        double a = r.values[k], e = want[k];
        if (!((isnan(a) && isnan(e)) || a == e)) wrong++;
    }
    CHECK_INT(wrong, 0);
    char last[16];
    snprintf(last, sizeof last, "host:h%03d", S - 1);
    CHECK_STR(r.series[S - 1].tags, last);
    CHECK_INT(r.series[S - 1].query_index, (S - 1) % 3);
    CHECK_INT(r.times_ms[T - 1], 1700000000000LL + 60000LL * (T - 1));
    dds_v2_response_free(&r);
    free(body);
    free(want);
}

int main(int argc, char **argv) {
    (void)argc;
    test_recorded();
    test_shapes_accepted();
    test_errors();
    test_cut_and_mutated();
    test_large();
    return check_report(argv[0]);
}
