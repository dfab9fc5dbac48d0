/*
 * test_json_check.c — json_check.c (cut short, malformed or complete; strings holding U+0000), and
 * what the parser makes of it: a syntactically broken body is a protocol error with the byte that
 * broke it, a body that stops early says so, and U+0000 in any string (tag, key, status, error
 * message) is refused with its JSON path, so no two different tag sets can read the same.
 */
#include "check.h"
#include "json_check.h"
#include "error_body.h"
#include "parse.h"

typedef struct shape_case {
    const char *body;
    dds_json_shape shape;
    size_t where; /* MALFORMED: the offending byte; TRUNCATED: brackets still open */
} shape_case;

static const shape_case shapes[] = {
    /* Syntactically broken, whatever the brackets count: protocol errors, never retried. */
    {"{\"series\":[}", DDS_JSON_MALFORMED, 11},
    {"{\"series\":[}]", DDS_JSON_MALFORMED, 11},
    {"{\"series\":]", DDS_JSON_MALFORMED, 10},
    {"[}", DDS_JSON_MALFORMED, 1},
    {"{]", DDS_JSON_MALFORMED, 1},
    {"{\"a\":1 2", DDS_JSON_MALFORMED, 7},
    {"{\"a\":[1,]}", DDS_JSON_MALFORMED, 8},
    {"{\"a\":[1,,2]}", DDS_JSON_MALFORMED, 8},
    {"{\"a\" 1}", DDS_JSON_MALFORMED, 5},
    {"{\"a\":1,}", DDS_JSON_MALFORMED, 7},
    {"{1:2}", DDS_JSON_MALFORMED, 1},
    {"{\"a\":trux}", DDS_JSON_MALFORMED, 8},
    {"{\"a\":nul}", DDS_JSON_MALFORMED, 8},
    {"{\"a\":NaN}", DDS_JSON_MALFORMED, 5},
    {"{\"a\":-}", DDS_JSON_MALFORMED, 6},
    {"{\"a\":1.}", DDS_JSON_MALFORMED, 7},
    {"{\"a\":1e}", DDS_JSON_MALFORMED, 7},
    {"{\"a\":01}", DDS_JSON_MALFORMED, 6},
    {"{\"a\":\"\\x\"}", DDS_JSON_MALFORMED, 7},
    {"{\"a\":\"\\u12g4\"}", DDS_JSON_MALFORMED, 10},
    {"{\"a\":1}}", DDS_JSON_MALFORMED, 7},
    {"{\"a\":1} x", DDS_JSON_MALFORMED, 8},
    {"{}{}", DDS_JSON_MALFORMED, 2},
    /* A correct beginning that stops: cut short, a network fault worth a retry. */
    {"{", DDS_JSON_TRUNCATED, 1},
    {"{\"series\":[", DDS_JSON_TRUNCATED, 2},
    {"{\"series\":[{\"pointlist\":[[1,2],[3", DDS_JSON_TRUNCATED, 5},
    {"{\"a\":\"abc", DDS_JSON_TRUNCATED, 1},
    {"{\"a\":\"ab\\", DDS_JSON_TRUNCATED, 1},
    {"{\"a\":\"\\u00", DDS_JSON_TRUNCATED, 1},
    {"{\"a\":tr", DDS_JSON_TRUNCATED, 1},
    {"{\"a\":-", DDS_JSON_TRUNCATED, 1},
    {"{\"a\":1.5e", DDS_JSON_TRUNCATED, 1},
    {"{\"a\":12", DDS_JSON_TRUNCATED, 1},
    {"{\"a\"", DDS_JSON_TRUNCATED, 1},
    {"{\"a\":1,", DDS_JSON_TRUNCATED, 1},
    {"\xEF\xBB\xBF  [[[", DDS_JSON_TRUNCATED, 3},
    /* Complete. */
    {"{}", DDS_JSON_COMPLETE, 0},
    {" [ ] \r\n", DDS_JSON_COMPLETE, 0},
    {"{\"a\":[1,-2.5e+3,0,true,false,null,\"x\\\"\\u00e9\",{}]}", DDS_JSON_COMPLETE, 0},
    {"{\"a\":\"tab\tinside\"}", DDS_JSON_COMPLETE, 0}, /* raw control characters: as cJSON */
    /* Not JSON at all: left to the parser to describe. */
    {"", DDS_JSON_NOT_JSON, 0},
    {"   ", DDS_JSON_NOT_JSON, 0},
    {"<html>", DDS_JSON_NOT_JSON, 0},
    {"null", DDS_JSON_NOT_JSON, 0},
    {"}", DDS_JSON_NOT_JSON, 0},
};

static void test_shapes(void) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape_case *c = &shapes[i];
        dds_json_check check;
        dds_json_shape got = dds_json_check_body(c->body, strlen(c->body), &check);
        CHECK_MSG(got == c->shape, "'%s': shape %d, expected %d", c->body, (int)got, (int)c->shape);
        if (got == c->shape && got == DDS_JSON_MALFORMED)
            CHECK_MSG(check.where == c->where, "'%s': malformed at %zu, expected %zu", c->body,
                      check.where, c->where);
        if (got == c->shape && got == DDS_JSON_TRUNCATED)
            CHECK_MSG(check.open == c->where, "'%s': %zu open, expected %zu", c->body, check.open,
                      c->where);
        CHECK(!check.nul);
    }
}

/* What a parse makes of a body: a protocol error that is not "ends early" for a broken body. */
static void test_parse_messages(void) {
    char msg[256];
    dds_response r;
    const char *broken = "{\"series\":[}";
    CHECK_INT(dds_parse_query_response(broken, strlen(broken), &r, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "invalid JSON at byte 11 of 12, near \"}\"");
    const char *cut = "{\"series\":[{\"query_index\":0,\"tag_set\":[\"host:a";
    CHECK_INT(dds_parse_query_response(cut, strlen(cut), &r, msg, sizeof msg), DDSTREAM_E_PROTOCOL);
    CHECK_STR(msg, "invalid JSON: the body ends early (truncated? 46 bytes)");
}

typedef struct nul_case {
    const char *body;
    const char *path;
} nul_case;

#define SERIES(tags)                                                                               \
  "{\"series\":[{\"query_index\":0,\"tag_set\":" tags ",\"pointlist\":[[1000,1]]}]}"

static const nul_case nuls[] = {
    {SERIES("[\"host:a\\u0000x\"]"), "series[0].tag_set[0]"},
    {SERIES("[\"env:prod\",\"host:a\\u0000\"]"), "series[0].tag_set[1]"},
    {SERIES("[\"\\u0000\"]"), "series[0].tag_set[0]"},
    {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[]},"
     "{\"query_index\":0,\"tag_set\":[\"h\\u0000\"],\"pointlist\":[]}]}",
     "series[1].tag_set[0]"},
    {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[],\"scope\":\"host:a\\u0000b\"}"
     "]}",
     "series[0].scope"},
    {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[],\"expression\":\"x\\u0000\"}]"
     "}",
     "series[0].expression"},
    {"{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[],\"metric\":\"a.b\\u0000c\"}]"
     "}",
     "series[0].metric"},
    {"{\"series\":[],\"query\":\"avg:x{*}\\u0000\"}", "query"},
    {"{\"status\":\"ok\\u0000junk\",\"series\":[]}", "status"},
    {"{\"status\":\"error\",\"error\":\"bad\\u0000 query\"}", "error"},
    {"{\"series\":[{\"query_index\":0,\"tag_set\\u0000\":[\"a\"],\"tag_set\":[\"b\"],"
     "\"pointlist\":[]}]}",
     "series[0].<a key>"},
    {"{\"series\":[{\"query_index\":0,\"tag_set\":[\"x\\u0000\\u0000\"],\"pointlist\":[]}]}",
     "series[0].tag_set[0]"},
};

static void test_nul_in_strings(void) {
    for (size_t i = 0; i < sizeof nuls / sizeof nuls[0]; i++) {
        const nul_case *c = &nuls[i];
        char msg[256], expected[256];
        snprintf(expected, sizeof expected, "%s: a string holds U+0000 (NUL)", c->path);
        dds_response r;
        ddstream_status st =
            dds_parse_query_response(c->body, strlen(c->body), &r, msg, sizeof msg);
        CHECK_MSG(st == DDSTREAM_E_PROTOCOL, "'%s': status %d", c->body, (int)st);
        CHECK_MSG(strncmp(msg, expected, strlen(expected)) == 0,
                  "'%s': message '%s', expected '%s...'", c->body, msg, expected);
        st = dds_parse_query_response_fast(c->body, strlen(c->body), &r, msg, sizeof msg);
        CHECK_MSG(st == DDSTREAM_E_PROTOCOL, "fast '%s': status %d", c->body, (int)st);
        CHECK_MSG(strncmp(msg, expected, strlen(expected)) == 0, "fast '%s': message '%s'", c->body,
                  msg);
    }
    /* A raw 0 byte in a string: the same (cJSON takes raw bytes into its C strings). */
    static const char raw[] =
        "{\"series\":[{\"query_index\":0,\"tag_set\":[\"host:a\0b\"],\"pointlist\":[]}]}";
    char msg[256];
    dds_response r;
    CHECK_INT(dds_parse_query_response(raw, sizeof raw - 1, &r, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK_MSG(strstr(msg, "series[0].tag_set[0]: a string holds U+0000") == msg, "%s", msg);
    /* The validate answer too. */
    const char *v = "{\"valid\":true,\"note\\u0000\":1}";
    int valid = -1;
    CHECK_INT(dds_parse_validate_response(v, strlen(v), &valid, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK_MSG(strstr(msg, "<a key>: a string holds U+0000") != NULL, "%s", msg);
    /* Not U+0000: an escaped backslash before "u0000", and other escapes, are read as before. */
    const char *ok = SERIES("[\"a\\\\u0000\",\"b\\u0001\",\"c\\u0100\"]");
    CHECK_INT(dds_parse_query_response(ok, strlen(ok), &r, msg, sizeof msg), DDSTREAM_OK);
    CHECK_INT(r.count, 1);
    if (r.count == 1) CHECK_STR(r.series[0].tags, "a\\u0000,b\x01,c\xc4\x80");
    dds_response_free(&r);
}

/* Two tag sets that differ only after a U+0000 must never come out as one series. */
static void test_no_merge(void) {
    const char *body =
        "{\"series\":["
        "{\"query_index\":0,\"tag_set\":[\"host:a\\u0000x\"],\"pointlist\":[[1000,1]]},"
        "{\"query_index\":0,\"tag_set\":[\"host:a\\u0000y\"],\"pointlist\":[[1000,2]]}]}";
    char msg[256];
    dds_response r;
    CHECK_INT(dds_parse_query_response(body, strlen(body), &r, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK_INT(r.count, 0);
    CHECK_INT(dds_parse_query_response_fast(body, strlen(body), &r, msg, sizeof msg),
              DDSTREAM_E_PROTOCOL);
    CHECK_INT(r.count, 0);
}

/* An error body holding U+0000 is quoted as it is: nothing after the NUL is hidden. */
static void test_error_body_with_nul(void) {
    const char *body = "{\"errors\":[\"Forbidden\\u0000 because the key abc is wrong\"]}";
    char out[300];
    dds_parse_error_body(body, strlen(body), out, sizeof out);
    CHECK_MSG(strstr(out, "because the key abc is wrong") != NULL, "'%s'", out);
    const char *plain = "{\"errors\":[\"Forbidden\"]}";
    dds_parse_error_body(plain, strlen(plain), out, sizeof out);
    CHECK_STR(out, "Forbidden");
}

static void test_may_hold_nul(void) {
    CHECK(!dds_json_may_hold_nul("{\"a\":\"b\"}", 9));
    CHECK(dds_json_may_hold_nul("{\"a\":\"\\u0000\"}", 14));
    CHECK(dds_json_may_hold_nul("x\0y", 3));
    CHECK(!dds_json_may_hold_nul("\\u000", 5));
    CHECK(!dds_json_may_hold_nul("\\u0001", 6));
    CHECK(dds_json_may_hold_nul("\\\\u0000", 7)); /* a cheap test: the full check says no */
}

int main(void) {
    test_shapes();
    test_parse_messages();
    test_nul_in_strings();
    test_no_merge();
    test_error_body_with_nul();
    test_may_hold_nul();
    return check_report("test_json_check");
}
