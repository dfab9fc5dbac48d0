/*
 * test_http_headers.c — reading header lines alone (http_headers.c): names match whatever their
 * case, numbers are read bounded, Retry-After as seconds or an HTTP date, and the rate-limit set
 * records only its own headers.
 */
#include <string.h>

#include "check.h"
#include "http_headers.h"

#define DATE_EPOCH INT64_C(1445412480) /* Wed, 21 Oct 2015 07:28:00 GMT */

typedef struct take_case {
    const char *line;
    int taken;
    dds_rl_headers expected;
} take_case;

static const take_case takes[] = {
    {"x-ratelimit-remaining: 12\r\n", 1, {12, -1, -1, -1, -1}},
    {"X-RateLimit-Reset: 7\r\n", 1, {-1, 7, -1, -1, -1}},
    {"X-RATELIMIT-LIMIT:\t600\r\n", 1, {-1, -1, 600, -1, -1}},
    {"x-ratelimit-period: 3600\r\n", 1, {-1, -1, -1, 3600, -1}},
    {"Retry-After: 30\r\n", 1, {-1, -1, -1, -1, 30}},
    {"retry-after: soon\r\n", 1, {-1, -1, -1, -1, -1}},
    {"x-ratelimit-reset: -5\r\n", 1, {-1, -1, -1, -1, -1}},
    {"x-ratelimit-reset: 99999999999999999999999\r\n",
     1,
     {-1, INT64_C(100000000000000), -1, -1, -1}},
    {"x-ratelimit-name: query\r\n", 0, {-1, -1, -1, -1, -1}},
    {"x-ratelimit-resets: 3\r\n", 0, {-1, -1, -1, -1, -1}},
    {"x-ratelimit-reset 3\r\n", 0, {-1, -1, -1, -1, -1}},
    {"Content-Length: 42\r\n", 0, {-1, -1, -1, -1, -1}},
    {"\r\n", 0, {-1, -1, -1, -1, -1}},
};

static void check_take(void) {
    for (size_t i = 0; i < sizeof takes / sizeof takes[0]; i++) {
        const take_case *c = &takes[i];
        dds_rl_headers r;
        dds_rl_headers_clear(&r);
        int taken = dds_rl_headers_take(&r, c->line, strlen(c->line));
        CHECK_MSG(taken == c->taken, "\"%s\": taken %d", c->line, taken);
        CHECK_MSG(memcmp(&r, &c->expected, sizeof r) == 0,
                  "\"%s\": remaining %lld reset %lld limit %lld period %lld retry-after %lld",
                  c->line, (long long)r.remaining, (long long)r.reset_s, (long long)r.limit,
                  (long long)r.period_s, (long long)r.retry_after_s);
    }
}

static void check_values(void) {
    const char *line = "Content-Encoding: gzip\r\n";
    const char *v = dds_header_value(line, strlen(line), "content-encoding");
    CHECK(v == line + 17);
    CHECK(dds_header_value(line, strlen(line), "content-length") == NULL);
    CHECK(dds_header_value(line, 16, "content-encoding") == NULL); /* the span ends before ':' */
    const char *status = "HTTP/1.1 429 Too Many Requests\r\n";
    CHECK_INT(dds_header_number(status + 8, status + strlen(status)), 429);
    const char *none = " OK";
    CHECK_INT(dds_header_number(none, none + 3), -1);
    CHECK_INT(dds_header_number(none, none), -1);
}

typedef struct retry_after_case {
    const char *value;
    int64_t now;
    int64_t expected;
} retry_after_case;

static const retry_after_case retry_afters[] = {
    {" 120\r\n", DATE_EPOCH, 120},
    {"0", DATE_EPOCH, 0},
    {" Wed, 21 Oct 2015 07:28:00 GMT\r\n", DATE_EPOCH - 90, 90},
    {"Wed, 21 Oct 2015 07:28:00 GMT", DATE_EPOCH + 5, 0},     /* a date past: now */
    {"Wednesday, 21-Oct-15 07:28:00 GMT", DATE_EPOCH - 1, 1}, /* RFC 850 form */
    {"tomorrow", DATE_EPOCH, -1},
    {"", DATE_EPOCH, -1},
    {"   \r\n", DATE_EPOCH, -1},
    {"Wed, 21 Oct 2015 07:28:00 GMT and a great deal more text to be longer than a date", 0, -1},
};

static void check_retry_after(void) {
    for (size_t i = 0; i < sizeof retry_afters / sizeof retry_afters[0]; i++) {
        const retry_after_case *c = &retry_afters[i];
        int64_t got = dds_retry_after_parse(c->value, c->value + strlen(c->value), c->now);
        CHECK_MSG(got == c->expected, "Retry-After \"%s\": %lld, expected %lld", c->value,
                  (long long)got, (long long)c->expected);
    }
}

int main(void) {
    check_take();
    check_values();
    check_retry_after();
    return check_report("test_http_headers");
}
