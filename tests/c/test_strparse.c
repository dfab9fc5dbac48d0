/*
 * test_strparse.c — the shared small scanners (strparse.c): JSON whitespace, case-insensitive
 * prefix and search within a bounded span, and bounded decimal numbers.
 */
#include <string.h>

#include "check.h"
#include "strparse.h"

typedef struct number_case {
    const char *text;
    uint64_t max;
    size_t used;    /* bytes read; 0: not a number */
    uint64_t value; /* when used > 0 */
    int over;
} number_case;

static const number_case numbers[] = {
    {"0", 100, 1, 0, 0},
    {"42", 100, 2, 42, 0},
    {" \t42 rest", 100, 4, 42, 0},
    {"100", 100, 3, 100, 0},
    {"101", 100, 3, 100, 1},
    {"99999999999999999999999", 1000, 23, 1000, 1},
    {"18446744073709551615", UINT64_MAX, 20, UINT64_MAX, 0},
    {"18446744073709551616", UINT64_MAX, 20, UINT64_MAX, 1},
    {"7", 5, 1, 5, 1},
    {"", 100, 0, 0, 0},
    {"   ", 100, 0, 0, 0},
    {"-1", 100, 0, 0, 0},
    {"+1", 100, 0, 0, 0},
    {"x1", 100, 0, 0, 0},
    {"\n1", 100, 0, 0, 0}, /* only spaces and tabs lead */
};

int main(void) {
    const char *ws = " \t\r\n{ ";
    CHECK_INT(dds_skip_json_ws(ws, strlen(ws), 0), 4);
    CHECK_INT(dds_skip_json_ws(ws, 3, 0), 3);    /* stops at n */
    CHECK_INT(dds_skip_json_ws("\v{", 2, 0), 0); /* \v is not JSON whitespace */
    CHECK_INT(dds_skip_json_ws(ws, strlen(ws), 5), 6);

    CHECK(dds_starts_with_ci("X-RateLimit-Reset: 3", 20, "x-ratelimit-reset"));
    CHECK(!dds_starts_with_ci("X-RateLimit-Rese", 16, "x-ratelimit-reset"));
    CHECK(!dds_starts_with_ci("Y-RateLimit-Reset", 17, "x-ratelimit-reset"));

    const char *page = "<!DOCTYPE x><HTML><title>Bad</TITLE>";
    size_t n = strlen(page);
    CHECK_INT(dds_find_ci(page, n, "<html"), 12);
    CHECK_INT(dds_find_ci(page, n, "</title"), 28);
    CHECK_INT(dds_find_ci(page, n, "<body"), n);
    CHECK_INT(dds_find_ci(page, 14, "<html"), 14); /* the span ends inside the match */
    CHECK_INT(dds_find_ci(page, n, ""), n);
    CHECK_INT(dds_find_ci("avg:x{*}.ROLLUP(sum)", 20, "rollup("), 9);

    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        const number_case *c = &numbers[i];
        uint64_t v = 12345;
        int over = -1;
        size_t used = dds_parse_uint(c->text, strlen(c->text), c->max, &v, &over);
        CHECK_MSG(used == c->used, "\"%s\": read %zu bytes, expected %zu", c->text, used, c->used);
        if (c->used == 0) {
            CHECK_MSG(v == 12345, "\"%s\": value changed without a number", c->text);
            continue;
        }
        CHECK_MSG(v == c->value, "\"%s\": %llu, expected %llu", c->text, (unsigned long long)v,
                  (unsigned long long)c->value);
        CHECK_INT(over, c->over);
    }
    /* The span bounds the number, not a NUL. */
    uint64_t v = 0;
    CHECK_INT(dds_parse_uint("12345", 3, 1000, &v, NULL), 3);
    CHECK(v == 123);
    return check_report("test_strparse");
}
