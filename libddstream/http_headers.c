/* http_headers.c — reading an answer's header lines (see http_headers.h). */
#include "http_headers.h"

#include <ctype.h>
#include <curl/curl.h>
#include <string.h>
#include <time.h>

#include "strparse.h"

/* Far beyond any count, size or wait a header means; keeps the arithmetic on it exact. */
#define HEADER_NUMBER_MAX UINT64_C(100000000000000)

void dds_rl_headers_clear(dds_rl_headers *r) {
    r->remaining = r->reset_s = r->limit = r->period_s = r->retry_after_s = -1;
}

const char *dds_header_value(const char *line, size_t n, const char *name) {
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || !dds_starts_with_ci(line, n, name)) return NULL;
    return line + k + 1;
}

int64_t dds_header_number(const char *v, const char *end) {
    uint64_t x = 0;
    if (v >= end || dds_parse_uint(v, (size_t)(end - v), HEADER_NUMBER_MAX, &x, NULL) == 0)
        return -1;
    return (int64_t)x;
}

static int is_space(char c) { return isspace((unsigned char)c) != 0; }

int64_t dds_retry_after_parse(const char *v, const char *end, int64_t now_epoch_s) {
    while (v < end && is_space(*v)) v++;
    if (v < end && *v >= '0' && *v <= '9') return dds_header_number(v, end);
    char date[64];
    size_t n = (size_t)(end - v);
    while (n > 0 && is_space(v[n - 1])) n--;
    if (n == 0 || n >= sizeof date) return -1;
    memcpy(date, v, n);
    date[n] = 0;
    time_t at = curl_getdate(date, NULL);
    if (at < 0) return -1;
    return (int64_t)at > now_epoch_s ? (int64_t)at - now_epoch_s : 0;
}

int dds_rl_headers_take(dds_rl_headers *r, const char *line, size_t n) {
    const struct {
        const char *name;
        int64_t *field;
    } numbers[] = {
        {"x-ratelimit-remaining", &r->remaining},
        {"x-ratelimit-reset", &r->reset_s},
        {"x-ratelimit-limit", &r->limit},
        {"x-ratelimit-period", &r->period_s},
    };
    const char *end = line + n, *v;
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        if ((v = dds_header_value(line, n, numbers[i].name))) {
            *numbers[i].field = dds_header_number(v, end);
            return 1;
        }
    }
    if ((v = dds_header_value(line, n, "retry-after"))) {
        r->retry_after_s = dds_retry_after_parse(v, end, (int64_t)time(NULL));
        return 1;
    }
    return 0;
}
