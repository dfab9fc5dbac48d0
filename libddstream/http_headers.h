/* http_headers.h — reading an answer's header lines: a header's value by name, numbers, and the
 * rate-limit headers (x-ratelimit-*, Retry-After) that pace and time the retries.
 * Pure functions (dds_rl_headers_take reads the wall clock for a Retry-After date only).
 * Thread-safe. */
#ifndef DDSTREAM_HTTP_HEADERS_H
#define DDSTREAM_HTTP_HEADERS_H

#include <stddef.h>
#include <stdint.h>

/* What an answer's headers said about the rate limit, as sent. -1: not sent. */
typedef struct dds_rl_headers {
    int64_t remaining;     /* x-ratelimit-remaining */
    int64_t reset_s;       /* x-ratelimit-reset: seconds, or (rewritten by a proxy) an epoch */
    int64_t limit;         /* x-ratelimit-limit */
    int64_t period_s;      /* x-ratelimit-period */
    int64_t retry_after_s; /* Retry-After, as seconds from when it arrived */
} dds_rl_headers;

/* All -1: a new answer's headers begin. */
void dds_rl_headers_clear(dds_rl_headers *r);

/* The value of line ("Name: value\r\n", n bytes) when its name is name (lower case; names match
 * whatever their case), else NULL. The value runs to line + n. */
const char *dds_header_value(const char *line, size_t n, const char *name);

/* The decimal number starting v (after spaces and tabs), before end; -1 when there is none.
 * Absurdly long numbers read as 1e14 (no overflow). */
int64_t dds_header_number(const char *v, const char *end);

/* Retry-After: delay-seconds, or an HTTP date (RFC 9110) as seconds after now_epoch_s (0 if past);
 * -1 if neither. */
int64_t dds_retry_after_parse(const char *v, const char *end, int64_t now_epoch_s);

/* Record line in r if it is one of the rate-limit headers; returns whether it was. */
int dds_rl_headers_take(dds_rl_headers *r, const char *line, size_t n);

#endif
