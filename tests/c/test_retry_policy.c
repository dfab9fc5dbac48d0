/*
 * test_retry_policy.c — the retry policy alone (retry_policy.c), table-driven: what each kind of
 * attempt leads to (succeed, retry after how long, fail with which status and words), how long
 * the headers' waits are trusted, the backoff's bounds, and the retry budget. No server, no clock:
 * every input the policy depends on is in the table.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "check.h"
#include "retry_policy.h"

#define NOW_MS INT64_C(1700000000000) /* the wall clock of every case */
#define NO_RL                                                                                      \
  { -1, -1, -1, -1, -1 }

static dds_settings settings(void) {
    dds_settings s;
    memset(&s, 0, sizeof s);
    s.max_retries = 3;
    s.max_retry_wait_ms = 60000;
    s.retry_backoff_ms = 1000;
    s.max_body_bytes = 1000;
    return s;
}

typedef struct classify_case {
    const char *what;
    dds_attempt a;
    dds_outcome outcome;
    ddstream_status status;       /* err->status when not OK */
    int32_t http_status;          /* err->http_status when not OK */
    int64_t delay_min, delay_max; /* for RETRY */
    const char *says;             /* a piece of err->message when not OK */
    int throttle;                 /* dds_retry_is_throttle */
} classify_case;

/* Backoff of attempt 0 with base 1000 ms: 500 .. 1000 ms. */
#define B0 500, 1000

static const classify_case cases[] = {
    {"200", {.status = 200, .rl = NO_RL}, DDS_OUTCOME_OK, DDSTREAM_OK, 0, 0, 0, NULL, 0},
    {"200 cut short",
     {.status = 200, .cut_short = 1, .open_brackets = 3, .body_len = 40, .rl = NO_RL},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_NETWORK,
     0,
     B0,
     "40 bytes of JSON end with 3 bracket(s)",
     0},
    {"301",
     {.status = 301, .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_SERVER,
     301,
     0,
     0,
     "redirects are not followed",
     0},
    {"400",
     {.status = 400, .server_msg = "bad query", .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_QUERY,
     400,
     0,
     0,
     "HTTP 400 from Datadog: bad query",
     0},
    {"404",
     {.status = 404, .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_QUERY,
     404,
     0,
     0,
     "HTTP 404 from Datadog",
     0},
    {"422", {.status = 422, .rl = NO_RL}, DDS_OUTCOME_FAIL, DDSTREAM_E_QUERY, 422, 0, 0, "422", 0},
    {"403",
     {.status = 403, .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_AUTH,
     403,
     0,
     0,
     "check the API key",
     0},
    {"401", {.status = 401, .rl = NO_RL}, DDS_OUTCOME_FAIL, DDSTREAM_E_AUTH, 401, 0, 0, "401", 0},
    {"429 with reset 5 s",
     {.status = 429, .rl = {0, 5, 100, 60, -1}},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_RATE_LIMITED,
     429,
     5050,
     5050,
     "HTTP 429",
     1},
    {"429 with reset, headers 2 s old",
     {.status = 429, .rl = {0, 5, 100, 60, -1}, .headers_age_ms = 2000},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_RATE_LIMITED,
     429,
     3050,
     3050,
     NULL,
     1},
    {"429 with Retry-After only",
     {.status = 429, .rl = {-1, -1, -1, -1, 7}},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_RATE_LIMITED,
     429,
     7050,
     7050,
     NULL,
     1},
    {"429 without a reset: backoff",
     {.status = 429, .rl = NO_RL},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_RATE_LIMITED,
     429,
     B0,
     NULL,
     1},
    {"429 reset of a day, no period: a minute",
     {.status = 429, .rl = {0, 86400, -1, -1, -1}},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_RATE_LIMITED,
     429,
     60050,
     60050,
     NULL,
     1},
    {"429 reset of a day, hour period: an hour",
     {.status = 429, .rl = {0, 86400, 10, 3600, -1}},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_RATE_LIMITED,
     429,
     3600050,
     3600050,
     NULL,
     1},
    {"429 reset of a day, 2 h period (distrusted): a minute",
     {.status = 429, .rl = {0, 86400, 10, 7200, -1}},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_RATE_LIMITED,
     429,
     60050,
     60050,
     NULL,
     1},
    {"429 reset as epoch s",
     {.status = 429, .rl = {0, 1700000010, -1, -1, -1}, .now_epoch_ms = NOW_MS},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_RATE_LIMITED,
     429,
     11050,
     11050,
     NULL,
     1},
    {"429 reset as epoch ms",
     {.status = 429, .rl = {0, INT64_C(1700000004000), -1, -1, -1}, .now_epoch_ms = NOW_MS},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_RATE_LIMITED,
     429,
     4050,
     4050,
     NULL,
     1},
    {"429 reset as a past epoch",
     {.status = 429, .rl = {0, 1600000000, -1, -1, -1}, .now_epoch_ms = NOW_MS},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_RATE_LIMITED,
     429,
     50,
     50,
     NULL,
     1},
    {"503: backoff",
     {.status = 503, .rl = NO_RL},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_SERVER,
     503,
     B0,
     "HTTP 503",
     0},
    {"503 with Retry-After 3",
     {.status = 503, .rl = {-1, -1, -1, -1, 3}},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_SERVER,
     503,
     3000,
     3000,
     NULL,
     1},
    {"503 with Retry-After 0: backoff",
     {.status = 503, .rl = {-1, -1, -1, -1, 0}},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_SERVER,
     503,
     B0,
     NULL,
     0},
    {"408 with Retry-After 2",
     {.status = 408, .rl = {-1, -1, -1, -1, 2}},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_TIMEOUT,
     408,
     2000,
     2000,
     "HTTP 408",
     1},
    {"500 with a day's Retry-After: a minute",
     {.status = 500, .rl = {-1, -1, -1, -1, 86400}},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_SERVER,
     500,
     60000,
     60000,
     NULL,
     1},
    {"418",
     {.status = 418, .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_SERVER,
     418,
     0,
     0,
     "HTTP 418",
     0},
    {"connection refused",
     {.curl_code = CURLE_COULDNT_CONNECT, .curl_detail = "refused", .rl = NO_RL},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_NETWORK,
     0,
     B0,
     "refused (libcurl error 7)",
     0},
    {"timeout",
     {.curl_code = CURLE_OPERATION_TIMEDOUT, .curl_detail = "slow", .rl = NO_RL},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_TIMEOUT,
     0,
     B0,
     "slow",
     0},
    {"reset mid-body",
     {.curl_code = CURLE_RECV_ERROR, .curl_detail = "reset", .rl = NO_RL},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_NETWORK,
     0,
     B0,
     "reset",
     0},
    {"bad URL",
     {.curl_code = CURLE_URL_MALFORMAT, .curl_detail = "bad", .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_NETWORK,
     0,
     0,
     0,
     "bad (libcurl error 3)",
     0},
    {"TLS verification",
     {.curl_code = CURLE_PEER_FAILED_VERIFICATION, .curl_detail = "cert", .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_NETWORK,
     0,
     0,
     0,
     "set ca_bundle",
     0},
    {"bad CA file",
     {.curl_code = CURLE_SSL_CACERT_BADFILE, .curl_detail = "nofile", .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_CONFIG,
     0,
     0,
     0,
     "ca_bundle (or $SSL_CERT_FILE when ca_bundle is unset) could not be used",
     0},
    {"too large",
     {.curl_code = CURLE_WRITE_ERROR, .too_large = 1, .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_PROTOCOL,
     0,
     0,
     0,
     "exceeded max_body_bytes (1000 bytes",
     0},
    {"corrupt gzip",
     {.curl_code = CURLE_BAD_CONTENT_ENCODING,
      .decode = DDS_DECODE_CORRUPT,
      .received_len = 77,
      .rl = NO_RL},
     DDS_OUTCOME_RETRY,
     DDSTREAM_E_NETWORK,
     0,
     B0,
     "77 bytes of compressed data are corrupt",
     0},
    {"unknown encoding",
     {.curl_code = CURLE_BAD_CONTENT_ENCODING, .decode = DDS_DECODE_UNKNOWN, .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_PROTOCOL,
     0,
     0,
     0,
     "did not ask for",
     0},
    {"no memory to decode",
     {.curl_code = CURLE_OUT_OF_MEMORY, .decode = DDS_DECODE_NOMEM, .received_len = 9, .rl = NO_RL},
     DDS_OUTCOME_FAIL,
     DDSTREAM_E_NOMEM,
     0,
     0,
     0,
     "decoding a 9-byte answer",
     0},
};

static void check_classify(void) {
    dds_settings s = settings();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const classify_case *c = &cases[i];
        dds_attempt a = c->a;
        if (!a.now_epoch_ms) a.now_epoch_ms = NOW_MS;
        for (uint64_t r = 0; r < 3; r++) { /* low, middle and high jitter */
            a.random = r == 0 ? 0 : r == 1 ? UINT64_C(250) : UINT64_MAX;
            ddstream_error err;
            memset(&err, 0, sizeof err);
            int64_t delay = -7;
            dds_outcome o = dds_retry_classify(&s, &a, &delay, &err);
            CHECK_MSG(o == c->outcome, "%s: outcome %d, expected %d", c->what, (int)o,
                      (int)c->outcome);
            CHECK_MSG(dds_retry_is_throttle(&a) == c->throttle, "%s: throttle", c->what);
            if (c->outcome == DDS_OUTCOME_OK) {
                CHECK_MSG(delay == -7, "%s: delay set on success", c->what);
                continue;
            }
            CHECK_MSG(err.status == c->status, "%s: status %d, expected %d", c->what,
                      (int)err.status, (int)c->status);
            CHECK_MSG(err.http_status == c->http_status, "%s: http_status %d", c->what,
                      (int)err.http_status);
            if (c->says) CHECK_CONTAINS(err.message, c->says);
            if (c->outcome == DDS_OUTCOME_RETRY)
                CHECK_MSG(delay >= c->delay_min && delay <= c->delay_max,
                          "%s: delay %lld not in [%lld, %lld]", c->what, (long long)delay,
                          (long long)c->delay_min, (long long)c->delay_max);
        }
        /* err may be NULL: the decision is the same. */
        int64_t delay = 0;
        CHECK_MSG(dds_retry_classify(&s, &a, &delay, NULL) == c->outcome, "%s: without err",
                  c->what);
    }
}

typedef struct backoff_case {
    int64_t base_ms;
    int attempt;
    int64_t min, max; /* over every random draw */
} backoff_case;

static const backoff_case backoffs[] = {
    {1000, 0, 500, 1000},
    {1000, 1, 1000, 2000},
    {1000, 2, 2000, 4000},
    {1000, 4, 8000, 16000},
    {1000, 5, 15000, 30000},  /* capped at 30 s */
    {1000, 60, 15000, 30000}, /* still capped, no overflow */
    {45000, 3, 22500, 45000}, /* a base above the cap is its own cap */
    {0, 5, 0, 0},
    {1, 0, 0, 1},
};

static void check_backoff(void) {
    const uint64_t draws[] = {0, 1, 2, 12345, UINT64_C(0x9e3779b97f4a7c15), UINT64_MAX};
    for (size_t i = 0; i < sizeof backoffs / sizeof backoffs[0]; i++) {
        const backoff_case *c = &backoffs[i];
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t k = 0; k < sizeof draws / sizeof draws[0]; k++) {
            int64_t d = dds_retry_backoff_ms(c->base_ms, c->attempt, draws[k]);
            CHECK_MSG(d >= c->min && d <= c->max, "backoff(%lld, %d): %lld not in [%lld, %lld]",
                      (long long)c->base_ms, c->attempt, (long long)d, (long long)c->min,
                      (long long)c->max);
            if (d < lo) lo = d;
            if (d > hi) hi = d;
        }
        CHECK_MSG(lo == c->min, "backoff(%lld, %d): the lowest draw gives %lld",
                  (long long)c->base_ms, c->attempt, (long long)lo);
    }
    /* The jitter comes from the draw: two draws, two delays. */
    CHECK(dds_retry_backoff_ms(1000, 2, 10) != dds_retry_backoff_ms(1000, 2, 1000));
}

static void check_header_waits(void) {
    dds_rl_headers none = NO_RL;
    CHECK_INT(dds_retry_reset_ms(&none, NOW_MS, 0), -1);
    CHECK_INT(dds_retry_announced_wait_ms(-1, NOW_MS), -1);
    CHECK_INT(dds_retry_announced_wait_ms(0, NOW_MS), 0);
    CHECK_INT(dds_retry_announced_wait_ms(1000000000, NOW_MS), INT64_C(1000000000000));
    CHECK_INT(dds_retry_announced_wait_ms(1700000001, NOW_MS), 2000); /* epoch s: +1 s rounding */
    CHECK_INT(dds_retry_announced_wait_ms(INT64_C(1700000000500), NOW_MS), 500);
    CHECK_INT(dds_retry_longest_wait_ms(-1), 60000);
    CHECK_INT(dds_retry_longest_wait_ms(10), 10000);
    CHECK_INT(dds_retry_longest_wait_ms(3600), 3600000);
    CHECK_INT(dds_retry_longest_wait_ms(3601), 60000);
    /* x-ratelimit-reset wins over Retry-After; a header older than its wait gives 0. */
    dds_rl_headers both = {0, 2, -1, -1, 9};
    CHECK_INT(dds_retry_reset_ms(&both, NOW_MS, 0), 2000);
    CHECK_INT(dds_retry_reset_ms(&both, NOW_MS, 5000), 0);
    /* Retry-After on a 429 is the reset; on a 5xx the server's ask; elsewhere nothing. */
    dds_rl_headers ra = {-1, -1, -1, -1, 4};
    CHECK_INT(dds_retry_server_asked_ms(503, &ra, NOW_MS, 0), 4000);
    CHECK_INT(dds_retry_server_asked_ms(408, &ra, NOW_MS, 1000), 3000);
    CHECK_INT(dds_retry_server_asked_ms(429, &ra, NOW_MS, 0), -1);
    CHECK_INT(dds_retry_server_asked_ms(404, &ra, NOW_MS, 0), -1);
}

typedef struct budget_case {
    int attempt;
    int64_t spent_ms, delay_ms;
    dds_retry_budget expected;
} budget_case;

static const budget_case budgets[] = {
    {0, 0, 1000, DDS_RETRY_GO},
    {2, 10000, 1000, DDS_RETRY_GO},
    {3, 0, 0, DDS_RETRY_OUT_OF_TRIES}, /* max_retries = 3 */
    {9, 0, 0, DDS_RETRY_OUT_OF_TRIES},
    {1, 59000, 1000, DDS_RETRY_GO}, /* exactly max_retry_wait_ms */
    {1, 59000, 1001, DDS_RETRY_OUT_OF_TIME},
    {0, 0, 60001, DDS_RETRY_OUT_OF_TIME},     /* one wait alone beyond the budget */
    {3, 59000, 5000, DDS_RETRY_OUT_OF_TRIES}, /* tries are counted first */
};

static void check_budget(void) {
    dds_settings s = settings();
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        const budget_case *c = &budgets[i];
        ddstream_error err;
        memset(&err, 0, sizeof err);
        snprintf(err.message, sizeof err.message, "HTTP 503");
        CHECK_MSG(
            dds_retry_budget_check(&s, c->attempt, c->spent_ms, c->delay_ms, &err) == c->expected,
            "budget case %zu", i);
        if (c->expected == DDS_RETRY_GO) CHECK_STR(err.message, "HTTP 503");
        if (c->expected == DDS_RETRY_OUT_OF_TRIES) CHECK_CONTAINS(err.message, " retries)");
        if (c->expected == DDS_RETRY_OUT_OF_TIME)
            CHECK_CONTAINS(err.message, "would exceed max_retry_wait_ms=60000)");
        CHECK(dds_retry_budget_check(&s, c->attempt, c->spent_ms, c->delay_ms, NULL) ==
              c->expected);
    }
    s.max_retries = 0; /* no retries at all: the message says nothing of retries */
    ddstream_error err;
    memset(&err, 0, sizeof err);
    CHECK(dds_retry_budget_check(&s, 0, 0, 0, &err) == DDS_RETRY_OUT_OF_TRIES);
    CHECK_STR(err.message, "");
}

int main(void) {
    check_classify();
    check_backoff();
    check_header_waits();
    check_budget();
    return check_report("test_retry_policy");
}
