/* retry_policy.h — what to do after an attempt: succeed, retry after how long, or fail with
 * which status and message; and whether the retry budget allows one more.
 *
 * Pure functions: no I/O, no clock reads, no sleeping, no randomness of their own (the caller
 * passes the clocks and a random draw in). The retry loop (fetch.c) feeds them what the transfer
 * saw; tests/c/test_retry_policy.c tests them alone. Thread-safe. */
#ifndef DDSTREAM_RETRY_POLICY_H
#define DDSTREAM_RETRY_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ddstream.h"
#include "http_headers.h"

typedef enum { DDS_OUTCOME_OK, DDS_OUTCOME_RETRY, DDS_OUTCOME_FAIL } dds_outcome;

/* How decoding a 200 answer's Content-Encoding went. */
typedef enum { DDS_DECODED, DDS_DECODE_CORRUPT, DDS_DECODE_UNKNOWN, DDS_DECODE_NOMEM } dds_decode;

/* One attempt, as the transfer saw it. */
typedef struct dds_attempt {
    int attempt;             /* 0 for the first */
    int curl_code;           /* the transfer's CURLcode (CURLE_OK: an answer arrived whole) */
    const char *curl_detail; /* libcurl's words for a failure */
    long status;             /* HTTP status, 0 without one */
    dds_decode decode;       /* of a 200 answer */
    int too_large;           /* the body went past max_body_bytes */
    size_t received_len;     /* bytes received (compressed when it came so) */
    size_t body_len;         /* bytes of the decoded body */
    int cut_short;           /* a 200 whose JSON ends with open_brackets brackets still open */
    size_t open_brackets;
    const char *server_msg; /* the server's message from an error body, scrubbed; "" if none */
    dds_rl_headers rl;      /* the answer's rate-limit headers */
    int64_t headers_age_ms; /* how long ago the headers arrived */
    int64_t now_epoch_ms;   /* wall clock now (headers may carry epoch timestamps) */
    uint64_t random;        /* a fresh random draw, for the backoff's jitter */
} dds_attempt;

/* Exponential backoff from base_ms, capped at max(base_ms, 30 s), with "equal jitter" from
 * random: at least half the backoff, so retries stay spread but never hammer. */
int64_t dds_retry_backoff_ms(int64_t base_ms, int attempt, uint64_t random);

/* The longest wait a header is trusted for: its window's period when the answer says it and it
 * is one Datadog uses (an hour at most), else a minute. */
int64_t dds_retry_longest_wait_ms(int64_t period_s);

/* Whether an answer's x-ratelimit-period is one Datadog uses (so it bounds the header waits). */
int dds_retry_period_trusted(int64_t period_s);

/* A header's wait in ms from when it arrived, as sent (unbounded); -1 when absent (v < 0). v is
 * seconds, or an epoch timestamp in s or ms (proxies rewrite x-ratelimit-reset so). */
int64_t dds_retry_announced_wait_ms(int64_t v, int64_t now_epoch_ms);

/* Milliseconds from now until the window resets (x-ratelimit-reset, else Retry-After), bounded by
 * dds_retry_longest_wait_ms and counted from when the headers arrived; -1 when unknown. */
int64_t dds_retry_reset_ms(const dds_rl_headers *rl, int64_t now_epoch_ms, int64_t headers_age_ms);

/* The wait a 408 or 5xx asks for with Retry-After (bounded as above), or -1. */
int64_t dds_retry_server_asked_ms(long status, const dds_rl_headers *rl, int64_t now_epoch_ms,
                                  int64_t headers_age_ms);

/* Whether the wait before retrying a's answer is one the server asked for (a 429, a
 * Retry-After), which shows in ddstream_rate_limit_wait_ms, rather than a plain backoff. */
int dds_retry_is_throttle(const dds_attempt *a);

/*
 * Classify attempt a. OK: the answer is to be read. RETRY: *delay_ms is the wait before the next
 * attempt, and err (NULL allowed) says what went wrong should there be none. FAIL: err says why;
 * retrying cannot help. err->http_status is set for an HTTP answer other than 200.
 */
dds_outcome dds_retry_classify(const dds_settings *s, const dds_attempt *a, int64_t *delay_ms,
                               ddstream_error *err);

typedef enum {
    DDS_RETRY_GO,           /* retry after the delay */
    DDS_RETRY_OUT_OF_TRIES, /* max_retries reached */
    DDS_RETRY_OUT_OF_TIME   /* the delay would take the retries past max_retry_wait_ms */
} dds_retry_budget;

/* Whether attempt (0-based, just failed) may be followed by another after delay_ms, when
 * spent_ms went on retrying so far (from the first failure, rate-limit window waits excluded).
 * When not, says so after err's message (" (after 2 retries)"; err NULL allowed). */
dds_retry_budget dds_retry_budget_check(const dds_settings *s, int attempt, int64_t spent_ms,
                                        int64_t delay_ms, ddstream_error *err);

/* Whether an answer says the request was too heavy for Datadog: a 504, or any status whose
 * message says "Query timed out" (Datadog's answer to too many sub-queries in one request).
 * Such a request is not retried as it is (dds_retry_classify fails it): chunk_fetch.c splits it. */
int dds_retry_query_timed_out(long status, const char *message);

#endif
