/* test_parse.c — parse.c against real-shaped Datadog bodies and every way they can be wrong. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "error_body.h"
#include "parse.h"

/* Parse s from a buffer without a terminating NUL (the sanitizers catch any overread). */
static ddstream_status parse_text(const char *s, dds_response *r, char *msg, size_t cap) {
    size_t n = strlen(s);
    char *body = malloc(n > 0 ? n : 1);
    if (body == NULL) abort();
    memcpy(body, s, n);
    ddstream_status st = dds_parse_query_response(body, n, r, msg, cap);
    free(body);
    return st;
}

static ddstream_status parse_fixture(const char *name, dds_response *r, char *msg, size_t cap) {
    size_t n;
    char *body = read_fixture(name, &n);
    ddstream_status st = dds_parse_query_response(body, n, r, msg, cap);
    free(body);
    return st;
}

static void error_body_text(const char *s, char *out, size_t cap) {
    size_t n = strlen(s);
    char *body = malloc(n > 0 ? n : 1);
    if (body == NULL) abort();
    memcpy(body, s, n);
    dds_parse_error_body(body, n, out, cap);
    free(body);
}

static void error_body_fixture(const char *name, char *out, size_t cap) {
    size_t n;
    char *body = read_fixture(name, &n);
    dds_parse_error_body(body, n, out, cap);
    free(body);
}

static int response_is_empty(const dds_response *r) {
    return r->series == NULL && r->count == 0 && r->capacity == 0;
}

static void test_ok_ungrouped(void) {
    dds_response r;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_ok_ungrouped.json", &r, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(r.count, 4);
    static const double want[4][3] = {
        {12.5, NAN, 13.25}, {1.0, NAN, 2.0}, {40.0, NAN, 41.5}, {250.0, NAN, 265.0}};
    for (size_t i = 0; i < r.count && i < 4; i++) {
        const dds_series *s = &r.series[i];
        CHECK_INT(s->query_index, (int32_t)i);
        CHECK_STR(s->tags, "");
        CHECK_INT(s->interval, 60);
        CHECK_INT(s->length, 3);
        for (size_t j = 0; j < s->length && j < 3; j++) {
            CHECK_INT(s->ts_ms[j], 1681683300000LL + 60000LL * (int64_t)j);
            CHECK_DBL(s->values[j], want[i][j]);
        }
    }
    dds_response_free(&r);
    CHECK(response_is_empty(&r));
}

static void test_ok_grouped(void) {
    dds_response r;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_ok_grouped.json", &r, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(r.count, 7);
    if (r.count == 7) {
        CHECK_INT(r.series[0].query_index, 2);
        CHECK_STR(r.series[0].tags, "host:web-2");
        CHECK_DBL(r.series[0].values[2], NAN);
        CHECK_INT(r.series[0].ts_ms[1], 1681683360000LL);
        CHECK_STR(r.series[4].tags, "env:prod,host:db-1");
        CHECK_INT(r.series[4].length, 2);
        CHECK_DBL(r.series[4].values[1], 11.0);
    }
    dds_response_free(&r);
}

static void test_unknown_keys(void) {
    dds_response r;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_unknown_keys.json", &r, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(r.count, 1);
    if (r.count == 1) {
        CHECK_INT(r.series[0].interval, 0); /* null */
        CHECK_INT(r.series[0].length, 1);   /* "length": 99 is not believed */
        CHECK_DBL(r.series[0].values[0], 1.0);
    }
    dds_response_free(&r);
}

static void test_empty_series(void) {
    dds_response r;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_empty_series.json", &r, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(r.count, 0);
    dds_response_free(&r);

    CHECK_INT(parse_text("{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[]}]}", &r,
                         msg, sizeof msg),
              DDSTREAM_OK);
    CHECK_INT(r.count, 1);
    if (r.count == 1) {
        CHECK_INT(r.series[0].length, 0);
        CHECK(r.series[0].ts_ms == NULL && r.series[0].values == NULL);
    }
    dds_response_free(&r);
}

static void test_status_error(void) {
    dds_response r;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_status_error.json", &r, msg, sizeof msg), DDSTREAM_E_QUERY);
    /* The newline inside Datadog's message is collapsed: messages are one line. */
    CHECK_STR(msg,
              "Error parsing query: unable to parse avg:system.cpu.user{*: Rule 'scope_expr' "
              "didn't match at '*' (line 1, column 24).");
    CHECK(response_is_empty(&r));

    CHECK_INT(parse_text("{\"status\":\"error\"}", &r, msg, sizeof msg), DDSTREAM_E_QUERY);
    CHECK_STR(msg, "Datadog answered \"status\": \"error\" without a message");
    CHECK_INT(parse_text("{\"status\":\"error\",\"errors\":[\"a\",\"b\"]}", &r, msg, sizeof msg),
              DDSTREAM_E_QUERY);
    CHECK_STR(msg, "a; b");
}

static void test_truncated(void) {
    dds_response r;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_truncated.json", &r, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "invalid JSON: the body ends early (truncated? 700 bytes)");
    CHECK(response_is_empty(&r));

    /* Every prefix of a good body is refused cleanly (and without leaks or overreads). */
    size_t n;
    char *body = read_fixture("query_ok_grouped.json", &n);
    int refused = 0;
    for (size_t k = 0; k < n; k++) {
        ddstream_status st = dds_parse_query_response(body, k, &r, msg, sizeof msg);
        refused += st == DDSTREAM_E_PROTOCOL;
        if (st == DDSTREAM_OK) dds_response_free(&r);
    }
    CHECK_INT(refused, (long long)n - 1); /* only the whole object without its final newline */
    free(body);
}

static void test_wrong_types_fixture(void) {
    dds_response r;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_wrong_types.json", &r, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "series[1].pointlist[2][0]: expected a number, got string");
    CHECK(response_is_empty(&r));
}

static void test_numbers(void) {
    dds_response r;
    char msg[512] = "";
    CHECK_INT(parse_fixture("query_huge_numbers.json", &r, msg, sizeof msg), DDSTREAM_OK);
    if (r.count == 1 && r.series[0].length == 7) {
        const dds_series *s = &r.series[0];
        CHECK_DBL(s->values[0], 1.7976931348623157e308);
        CHECK_DBL(s->values[1], -1.7976931348623157e308);
        CHECK(s->values[2] > 0 && s->values[2] < 1e-300);
        CHECK_DBL(s->values[3], 1.2345678901234568e29);
        CHECK_DBL(s->values[4], 0.0);
        CHECK_INT(s->ts_ms[5], 1000000000000000LL);
        CHECK_DBL(s->values[5], 0.0);
        CHECK_INT(s->ts_ms[6], -1000000000000000LL);
    } else {
        CHECK(!"query_huge_numbers.json: expected 1 series of 7 points");
    }
    dds_response_free(&r);

    CHECK_INT(parse_fixture("query_huge_timestamp.json", &r, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg,
              "series[0].pointlist[2][0]: timestamp 1.68168e+16 ms is out of range (at most "
              "1e15 from 1970)");
    CHECK_INT(parse_fixture("query_value_overflow.json", &r, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "series[0].pointlist[0][1]: number out of range for a double");
    CHECK_INT(parse_fixture("query_index_out_of_range.json", &r, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "series[0].query_index: expected an integer in 0..999999, got 1e+06");
    CHECK(response_is_empty(&r));
}

/* Bodies that must be refused, with the exact message (the path names the offending element). */
static void test_rejections(void) {
    static const struct {
        const char *body;
        ddstream_status status;
        const char *msg;
    } cases[] = {
        {"", DDSTREAM_E_PROTOCOL, "expected a JSON object, got an empty body"},
        {" \r\n\t ", DDSTREAM_E_PROTOCOL, "expected a JSON object, got an empty body"},
        {"[]", DDSTREAM_E_PROTOCOL, "expected a JSON object at the top level, got array"},
        {"null", DDSTREAM_E_PROTOCOL, "expected a JSON object, got text: null"},
        {"<html><title>502 Bad Gateway</title></html>", DDSTREAM_E_PROTOCOL,
         "expected a JSON object, got HTML: 502 Bad Gateway"},
        {"upstream connect error", DDSTREAM_E_PROTOCOL,
         "expected a JSON object, got text: upstream connect error"},
        {"{\"series\":[]} x", DDSTREAM_E_PROTOCOL,
         "invalid JSON: unexpected data after the value at byte 14 of 15"},
        {"{\"series\":[]}{}", DDSTREAM_E_PROTOCOL,
         "invalid JSON: unexpected data after the value at byte 13 of 15"},
        {"{\"series\":[1,,2]}", DDSTREAM_E_PROTOCOL,
         "invalid JSON at byte 13 of 17, near \",2]}\""},
        {"{\"series\":[NaN]}", DDSTREAM_E_PROTOCOL,
         "invalid JSON at byte 11 of 16, near \"NaN]}\""},
        {"{\"status\":\"ok\"}", DDSTREAM_E_PROTOCOL, "series: missing"},
        {"{\"errors\":[\"Forbidden\"]}", DDSTREAM_E_PROTOCOL,
         "series: missing (the body says: Forbidden)"},
        {"{\"status\":\"warn\",\"series\":[]}", DDSTREAM_E_PROTOCOL,
         "status: expected \"ok\" or \"error\", got \"warn\""},
        {"{\"status\":1,\"series\":[]}", DDSTREAM_E_PROTOCOL,
         "status: expected a string, got number"},
        {"{\"series\":null}", DDSTREAM_E_PROTOCOL, "series: expected an array, got null"},
        {"{\"series\":{}}", DDSTREAM_E_PROTOCOL, "series: expected an array, got object"},
        {"{\"series\":[[]]}", DDSTREAM_E_PROTOCOL, "series[0]: expected an object, got array"},
        {"{\"series\":[{\"tag_set\":[],\"pointlist\":[]}]}", DDSTREAM_E_PROTOCOL,
         "series[0].query_index: missing"},
        {"{\"series\":[{\"query_index\":\"0\",\"tag_set\":[],\"pointlist\":[]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].query_index: expected a number, got string"},
        {"{\"series\":[{\"query_index\":-1,\"tag_set\":[],\"pointlist\":[]}]}", DDSTREAM_E_PROTOCOL,
         "series[0].query_index: expected an integer in 0..999999, got -1"},
        {"{\"series\":[{\"query_index\":0.5,\"tag_set\":[],\"pointlist\":[]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].query_index: expected an integer in 0..999999, got 0.5"},
        {"{\"series\":[{\"query_index\":0,\"pointlist\":[]}]}", DDSTREAM_E_PROTOCOL,
         "series[0].tag_set: missing"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[\"ok\",\"b\xff\"],\"pointlist\":[]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].tag_set[1]: not valid UTF-8"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":\"host:a\",\"pointlist\":[]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].tag_set: expected an array of strings, got string"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[\"a\",7],\"pointlist\":[]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].tag_set[1]: expected a string, got number"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"interval\":\"60\",\"pointlist\":[]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].interval: expected a number or null, got string"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"interval\":-60,\"pointlist\":[]}]}",
         DDSTREAM_E_PROTOCOL,
         "series[0].interval: expected a whole number of seconds >= 0, got -60"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"interval\":1.5,\"pointlist\":[]}]}",
         DDSTREAM_E_PROTOCOL,
         "series[0].interval: expected a whole number of seconds >= 0, got 1.5"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[]}]}", DDSTREAM_E_PROTOCOL,
         "series[0].pointlist: missing"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":null}]}",
         DDSTREAM_E_PROTOCOL, "series[0].pointlist: expected an array, got null"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[1,2],{}]}]}",
         DDSTREAM_E_PROTOCOL,
         "series[0].pointlist[1]: expected an array [timestamp, value], got object"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[1,2,3]]}]}",
         DDSTREAM_E_PROTOCOL,
         "series[0].pointlist[0]: expected 2 elements [timestamp, value], got 3"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[1]]}]}",
         DDSTREAM_E_PROTOCOL,
         "series[0].pointlist[0]: expected 2 elements [timestamp, value], got 1"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[]]}]}",
         DDSTREAM_E_PROTOCOL,
         "series[0].pointlist[0]: expected 2 elements [timestamp, value], got 0"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[null,1]]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].pointlist[0][0]: expected a number, got null"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[1.5,1]]}]}",
         DDSTREAM_E_PROTOCOL,
         "series[0].pointlist[0][0]: timestamp 1.500 is not a whole number of ms"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[-1e16,1]]}]}",
         DDSTREAM_E_PROTOCOL,
         "series[0].pointlist[0][0]: timestamp -1e+16 ms is out of range (at most 1e15 from 1970)"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000,\"1\"]]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].pointlist[0][1]: expected a number or null, got string"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000,true]]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].pointlist[0][1]: expected a number or null, got boolean"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000,[1]]]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].pointlist[0][1]: expected a number or null, got array"},
        {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000,-1e999]]}]}",
         DDSTREAM_E_PROTOCOL, "series[0].pointlist[0][1]: number out of range for a double"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dds_response r;
        char msg[512] = "";
        ddstream_status st = parse_text(cases[i].body, &r, msg, sizeof msg);
        if (st != cases[i].status || strcmp(msg, cases[i].msg) != 0) {
            check_failures++;
            fprintf(stderr, "%s:%d: case %zu (%s): got %d \"%s\", expected %d \"%s\"\n", __FILE__,
                    __LINE__, i, cases[i].body, (int)st, msg, (int)cases[i].status, cases[i].msg);
        }
        check_count++;
        CHECK(response_is_empty(&r));
        if (st == DDSTREAM_OK) dds_response_free(&r);
    }
}

/* The second series fails after the first was fully built: nothing may leak (valgrind/ASan). */
static void test_failure_after_success_frees(void) {
    dds_response r;
    char msg[512];
    const char *body =
        "{\"series\":[{\"query_index\":0,\"tag_set\":[\"a\",\"b\"],"
        "\"pointlist\":[[0,1],[60000,2]]},"
        "{\"query_index\":1,\"tag_set\":[\"c\"],\"pointlist\":[[0,1],[60000,\"x\"]]}]}";
    CHECK_INT(parse_text(body, &r, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "series[1].pointlist[1][1]: expected a number or null, got string");
    CHECK(response_is_empty(&r));
}

static void test_lenient_shapes(void) {
    dds_response r;
    char msg[512] = "";
    /* No "status", a UTF-8 BOM, duplicate keys (the first wins), a \u escape in a tag, int and
     * float timestamps, exponents. */
    const char *body =
        "\xEF\xBB\xBF {\"series\":[{\"query_index\":2,\"query_index\":3,"
        "\"tag_set\":[\"host:a\",\"team:caf\\u00e9\"],\"interval\":60.0,"
        "\"pointlist\":[[60000,1],[120000.0,null],[1.8e5,-2.5e-3]]}]} \n";
    CHECK_INT(parse_text(body, &r, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(r.count, 1);
    if (r.count == 1) {
        CHECK_INT(r.series[0].query_index, 2);
        CHECK_STR(r.series[0].tags, "host:a,team:caf\xc3\xa9");
        CHECK_INT(r.series[0].interval, 60);
        CHECK_INT(r.series[0].length, 3);
        CHECK_INT(r.series[0].ts_ms[2], 180000);
        CHECK_DBL(r.series[0].values[1], NAN);
        CHECK_DBL(r.series[0].values[2], -0.0025);
    }
    dds_response_free(&r);
    dds_response_free(&r); /* freeing twice is harmless: free zeroes */
}

static void test_message_buffer(void) {
    dds_response r;
    char small[8];
    memset(small, 'x', sizeof small);
    CHECK_INT(parse_fixture("query_wrong_types.json", &r, small, sizeof small),
              DDSTREAM_E_PROTOCOL);
    CHECK_STR(small, "series[");
    CHECK_INT(parse_fixture("query_wrong_types.json", &r, NULL, 0), DDSTREAM_E_PROTOCOL);
    CHECK_INT(dds_parse_query_response(NULL, 0, &r, small, sizeof small), DDSTREAM_E_PROTOCOL);
    CHECK_INT(dds_parse_query_response("{}", 2, NULL, small, sizeof small), DDSTREAM_E_INTERNAL);
}

static void test_append(void) {
    dds_response a, b;
    char msg[512];
    CHECK_INT(parse_fixture("query_ok_ungrouped.json", &a, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(parse_fixture("query_ok_grouped.json", &b, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(dds_response_append(&a, &b), DDSTREAM_OK);
    CHECK_INT(a.count, 11);
    CHECK(a.capacity >= 11);
    CHECK(response_is_empty(&b));
    if (a.count == 11) {
        CHECK_STR(a.series[4].tags, "host:web-2");
        CHECK_INT(a.series[10].query_index, 3);
    }
    /* Appending nothing, and appending into an empty response. */
    CHECK_INT(dds_response_append(&a, &b), DDSTREAM_OK);
    CHECK_INT(a.count, 11);
    dds_response c = {0};
    CHECK_INT(dds_response_append(&c, &a), DDSTREAM_OK);
    CHECK_INT(c.count, 11);
    CHECK(response_is_empty(&a));
    for (int k = 0; k < 5; k++) { /* repeated growth */
        CHECK_INT(parse_fixture("query_ok_ungrouped.json", &b, msg, sizeof msg), DDSTREAM_OK);
        CHECK_INT(dds_response_append(&c, &b), DDSTREAM_OK);
    }
    CHECK_INT(c.count, 31);
    CHECK_INT(dds_response_append(&c, &c), DDSTREAM_E_INTERNAL);
    dds_response_free(&c);
    dds_response_free(&a);
    dds_response_free(&b);
}

static void test_error_bodies(void) {
    char out[512];
    error_body_fixture("error_strings.json", out, sizeof out);
    CHECK_STR(out, "API key required; Forbidden");
    error_body_fixture("error_objects.json", out, sizeof out);
    CHECK_STR(out, "Bad Request: Invalid query: unknown function 'rollupz'; Bad Request");
    error_body_fixture("error_429.html", out, sizeof out);
    CHECK_STR(out, "429 Too Many Requests");
    error_body_fixture("error_503_no_title.html", out, sizeof out);
    CHECK_STR(out,
              "Service Unavailable The server is temporarily unable to service your request "
              "& will retry <soon>.");
    error_body_fixture("query_status_error.json", out, sizeof out);
    CHECK_CONTAINS(out, "Error parsing query: unable to parse");

    static const struct {
        const char *body;
        const char *want;
    } cases[] = {
        {"", ""},
        {"   \n", ""},
        {"{\"error\":\"Rate limit exceeded\"}", "Rate limit exceeded"},
        {"{\"errors\":\"just one\"}", "just one"},
        {"{\"errors\":[{\"detail\":\"only detail\"}]}", "only detail"},
        {"{\"errors\":[{\"title\":\"Same\",\"detail\":\"Same\"}]}", "Same"},
        {"{\"errors\":[{\"message\":\"from message\"}]}", "from message"},
        {"{\"errors\":[null, 7, \"\", \"kept\", {}]}", "kept"},
        {"{\"errors\":[]}", "{\"errors\":[]}"},
        {"{\"error\":{\"title\":\"T\",\"detail\":\"D\"}}", "T: D"},
        {"[\"a\",\"b\"]", "a; b"},
        {"{\"valid\":false}", "{\"valid\":false}"},
        {"{\"errors\":[\"cut", "{\"errors\":[\"cut"},
        {"Forbidden\r\n", "Forbidden"},
        {"line one\n\tline\x01two\x7f", "line one line two"},
        {"bad \xff utf8 \xe2\x82", "bad ? utf8 ??"},
        {"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac"},
        {"\xed\xa0\x80 surrogate", "??? surrogate"},
        {"<html><head><title>  Access\n  Denied </title></head></html>", "Access Denied"},
        {"<html><title></title><body><p>fallback &#65;&#x42; &unknown; text</p></body></html>",
         "fallback AB &unknown; text"},
        {"<p>unclosed <b", "unclosed"},
        /* HTML without any visible text: the raw text beats saying nothing. */
        {"<!-- never closed", "<!-- never closed"},
        {"<script>var x = 1;", "<script>var x = 1;"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(out, 'x', sizeof out);
        error_body_text(cases[i].body, out, sizeof out);
        if (strcmp(out, cases[i].want) != 0) {
            check_failures++;
            fprintf(stderr, "%s:%d: error body case %zu: got \"%s\", expected \"%s\"\n", __FILE__,
                    __LINE__, i, out, cases[i].want);
        }
        check_count++;
    }
}

static void test_error_body_limits(void) {
    /* A long body is cut to at most 300 bytes, ending in "...", never inside a UTF-8 character. */
    char body[4000];
    size_t n = 0;
    while (n + 3 <= sizeof body) {
        memcpy(body + n, "\xc3\xa9 ", 3);
        n += 3;
    }
    char out[1024];
    dds_parse_error_body(body, n, out, sizeof out);
    size_t len = strlen(out);
    CHECK(len <= 300 && len >= 290);
    CHECK(len >= 3 && strcmp(out + len - 3, "...") == 0);
    CHECK(((unsigned char)out[len - 4] & 0xC0) != 0xC0); /* no dangling lead byte */

    /* Small buffers: truncated, terminated, never overrun (the sanitizers watch). */
    for (size_t cap = 1; cap < 12; cap++) {
        char *small = malloc(cap);
        if (small == NULL) abort();
        dds_parse_error_body("{\"errors\":[\"API key required\"]}", 31, small, cap);
        CHECK(strlen(small) < cap);
        if (cap >= 4) CHECK(strcmp(small + strlen(small) - 3, "...") == 0);
        free(small);
    }
    char one[1] = {'x'};
    dds_parse_error_body("text", 4, one, 1);
    CHECK_INT(one[0], '\0');
    dds_parse_error_body("text", 4, NULL, 0); /* no crash */
    dds_parse_error_body(NULL, 0, out, sizeof out);
    CHECK_STR(out, "");

    /* A huge error string from JSON is cut the same way. */
    size_t big = 100000;
    char *json = malloc(big);
    if (json == NULL) abort();
    memcpy(json, "{\"error\":\"", 10);
    memset(json + 10, 'a', big - 12);
    memcpy(json + big - 2, "\"}", 2);
    dds_parse_error_body(json, big, out, sizeof out);
    CHECK_INT(strlen(out), 300);
    dds_response r;
    char msg[512];
    memcpy(json, "{\"status\":\"error\",\"error\":\"", 27);
    CHECK_INT(dds_parse_query_response(json, big, &r, msg, sizeof msg), DDSTREAM_E_QUERY);
    CHECK_INT(strlen(msg), 300);
    free(json);
}

static void test_validate(void) {
    int valid = -1;
    char msg[512];
    size_t n;
    char *body = read_fixture("validate_ok.json", &n);
    CHECK_INT(dds_parse_validate_response(body, n, &valid, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(valid, 1);
    free(body);
    CHECK_INT(dds_parse_validate_response("{\"valid\":false}", 15, &valid, msg, sizeof msg),
              DDSTREAM_OK);
    CHECK_INT(valid, 0);
    CHECK_INT(dds_parse_validate_response("{\"valid\":\"yes\"}", 15, &valid, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "valid: expected true or false, got string");
    CHECK_INT(dds_parse_validate_response("{}", 2, &valid, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "valid: missing");
    CHECK_INT(dds_parse_validate_response("[true]", 6, &valid, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "expected a JSON object at the top level, got array");
    body = read_fixture("error_429.html", &n);
    CHECK_INT(dds_parse_validate_response(body, n, &valid, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "expected a JSON object, got HTML: 429 Too Many Requests");
    free(body);
}

/*
 * Deterministic mutations of every fixture: flipped, dropped and inserted bytes. Whatever the
 * bytes, the parser answers OK, PROTOCOL or QUERY with a terminated message, frees everything,
 * and stays inside the buffer (the sanitizers and valgrind check the last two).
 */
static void test_mutations(void) {
    static const char *const names[] = {"query_ok_ungrouped.json", "query_ok_grouped.json",
                                        "query_unknown_keys.json", "query_status_error.json",
                                        "query_huge_numbers.json", "error_objects.json",
                                        "error_503_no_title.html"};
    static const char alphabet[] = "{}[],:\"0123456789.-+eE nulltrue\\<>&;#x\x01\xff";
    uint32_t seed = 12345;
    int odd = 0;
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        size_t n;
        char *orig = read_fixture(names[f], &n);
        char *body = malloc(n + 8);
        if (body == NULL) abort();
        for (int round = 0; round < 1500; round++) {
            memcpy(body, orig, n);
            size_t len = n;
            int edits = 1 + round % 4;
            for (int e = 0; e < edits && len > 0; e++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % len;
                char c = alphabet[(seed >> 4) % (sizeof alphabet - 1)];
                switch (seed % 3) {
                case 0: body[at] = c; break;
                case 1:
                    memmove(body + at, body + at + 1, len - at - 1);
                    len--;
                    break;
                default:
                    if (len < n + 8) {
                        memmove(body + at + 1, body + at, len - at);
                        body[at] = c;
                        len++;
                    }
                }
            }
            dds_response r;
            char msg[128];
            memset(msg, 'x', sizeof msg);
            ddstream_status st = dds_parse_query_response(body, len, &r, msg, sizeof msg);
            if (st == DDSTREAM_OK) dds_response_free(&r);
            else odd += memchr(msg, '\0', sizeof msg) == NULL || !response_is_empty(&r);
            odd += st != DDSTREAM_OK && st != DDSTREAM_E_PROTOCOL && st != DDSTREAM_E_QUERY;
            char out[64];
            dds_parse_error_body(body, len, out, sizeof out);
            odd += strlen(out) >= sizeof out;
        }
        free(body);
        free(orig);
    }
    CHECK_INT(odd, 0);
}

int main(int argc, char **argv) {
    (void)argc;
    test_ok_ungrouped();
    test_ok_grouped();
    test_unknown_keys();
    test_empty_series();
    test_status_error();
    test_truncated();
    test_wrong_types_fixture();
    test_numbers();
    test_rejections();
    test_failure_after_success_frees();
    test_lenient_shapes();
    test_message_buffer();
    test_append();
    test_error_bodies();
    test_error_body_limits();
    test_validate();
    test_mutations();
    return check_report(argv[0]);
}
