/* retry_policy.c — classify an attempt, time the retry, keep to the retry budget (see
 * retry_policy.h). curl/curl.h is included for the CURLcode values only. */
#include "retry_policy.h"

#include <curl/curl.h>

#include <string.h>

#include "error.h"
#include "strparse.h"

#define BACKOFF_CAP_MS 30000
/* The longest wait a server's x-ratelimit-reset or Retry-After is trusted for when the answer
 * does not say how long its window is (x-ratelimit-period): a minute, Datadog's usual window.
 * A longer one is a broken header or a proxy's; obeying it would park every stream of the
 * process, and a wait cut short costs at most one more 429, which says again how long to wait. */
#define UNKNOWN_PERIOD_LONGEST_WAIT_MS 60000
/* Datadog's longest rate-limit window (the query endpoint's hour): a longer x-ratelimit-period
 * is as broken as the reset it would excuse. */
#define LONGEST_PERIOD_S 3600
/* Added to a 429's reset: x-ratelimit-reset is whole seconds, and retrying early costs a 429. */
#define RESET_MARGIN_MS 50

int64_t dds_retry_backoff_ms(int64_t base_ms, int attempt, uint64_t random) {
    int64_t d = base_ms;
    int64_t cap = d > BACKOFF_CAP_MS ? d : BACKOFF_CAP_MS;
    for (int i = 0; i < attempt && d < cap; i++) d *= 2;
    if (d > cap) d = cap;
    return d / 2 + (int64_t)(random % (uint64_t)(d / 2 + 1));
}

int dds_retry_period_trusted(int64_t period_s) {
    return period_s > 0 && period_s <= LONGEST_PERIOD_S;
}

int64_t dds_retry_longest_wait_ms(int64_t period_s) {
    return dds_retry_period_trusted(period_s) ? period_s * 1000 : UNKNOWN_PERIOD_LONGEST_WAIT_MS;
}

int64_t dds_retry_announced_wait_ms(int64_t v, int64_t now_epoch_ms) {
    if (v < 0) return -1;
    if (v <= INT64_C(1000000000)) return v * 1000;
    /* epoch ms, or epoch s: whole seconds, so the window may end up to a second later */
    int64_t at = v > INT64_C(100000000000) ? v : v * 1000 + 1000;
    return at > now_epoch_ms ? at - now_epoch_ms : 0;
}

/* A header's wait from now, bounded, counted from when the headers arrived (not from the end of
 * a long body); -1 when absent. */
static int64_t bounded_wait_ms(int64_t v, int64_t period_s, int64_t now_epoch_ms,
                               int64_t headers_age_ms) {
    int64_t ms = dds_retry_announced_wait_ms(v, now_epoch_ms);
    if (ms < 0) return -1;
    int64_t longest = dds_retry_longest_wait_ms(period_s);
    if (ms > longest) ms = longest;
    if (headers_age_ms > 0) ms = ms > headers_age_ms ? ms - headers_age_ms : 0;
    return ms;
}

int64_t dds_retry_reset_ms(const dds_rl_headers *rl, int64_t now_epoch_ms, int64_t headers_age_ms) {
    return bounded_wait_ms(rl->reset_s >= 0 ? rl->reset_s : rl->retry_after_s, rl->period_s,
                           now_epoch_ms, headers_age_ms);
}

int64_t dds_retry_server_asked_ms(long status, const dds_rl_headers *rl, int64_t now_epoch_ms,
                                  int64_t headers_age_ms) {
    if (status != 408 && status < 500) return -1;
    return rl->retry_after_s > 0
               ? bounded_wait_ms(rl->retry_after_s, rl->period_s, now_epoch_ms, headers_age_ms)
               : -1;
}

int dds_retry_query_timed_out(long status, const char *message) {
    size_t n = message ? strlen(message) : 0;
    return status == 504 || (n > 0 && dds_find_ci(message, n, "query timed out") < n);
}

int dds_retry_is_throttle(const dds_attempt *a) {
    return a->status == 429 ||
           dds_retry_server_asked_ms(a->status, &a->rl, a->now_epoch_ms, a->headers_age_ms) > 0;
}

static int64_t backoff(const dds_settings *s, const dds_attempt *a) {
    return dds_retry_backoff_ms(s->retry_backoff_ms, a->attempt, a->random);
}

/* A transfer that ended without a whole answer (or with one it could not decode). */
static dds_outcome transfer_failed(const dds_settings *s, const dds_attempt *a, int64_t *delay_ms,
                                   ddstream_error *err) {
    CURLcode rc = (CURLcode)a->curl_code;
    const char *detail = a->curl_detail ? a->curl_detail : "";
    if (a->decode == DDS_DECODE_CORRUPT) {
        /* Damaged on the way (a proxy, a connection cut inside a framed body): worth a retry. */
        dds_error_set(err, DDSTREAM_E_NETWORK,
                      "the answer's %zu bytes of compressed data are corrupt or cut short",
                      a->received_len);
        *delay_ms = backoff(s, a);
        return DDS_OUTCOME_RETRY;
    }
    if (a->decode == DDS_DECODE_UNKNOWN) {
        dds_error_set(err, DDSTREAM_E_PROTOCOL,
                      "the answer came in a Content-Encoding ddstream did not ask for (it asks for "
                      "gzip)");
        return DDS_OUTCOME_FAIL;
    }
    if (a->decode == DDS_DECODE_NOMEM) {
        dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory decoding a %zu-byte answer",
                      a->received_len);
        return DDS_OUTCOME_FAIL;
    }
    if (rc == CURLE_WRITE_ERROR && a->too_large) {
        dds_error_set(err, DDSTREAM_E_PROTOCOL,
                      "the answer exceeded max_body_bytes (%lld bytes, counted decompressed); "
                      "raise it or use smaller chunks",
                      (long long)s->max_body_bytes);
        return DDS_OUTCOME_FAIL;
    }
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        dds_error_set(err, DDSTREAM_E_NETWORK,
                      "TLS certificate verification failed: %s (libcurl error %d); if the server "
                      "uses a private CA, set ca_bundle to its certificate",
                      detail, (int)rc);
        return DDS_OUTCOME_FAIL;
    case CURLE_SSL_CACERT_BADFILE:
        dds_error_set(err, DDSTREAM_E_CONFIG,
                      "ca_bundle (or $SSL_CERT_FILE when ca_bundle is unset) could not be used: %s "
                      "(libcurl error %d)",
                      detail, (int)rc);
        return DDS_OUTCOME_FAIL;
    default: break;
    }
    ddstream_status st = rc == CURLE_OPERATION_TIMEDOUT ? DDSTREAM_E_TIMEOUT : DDSTREAM_E_NETWORK;
    dds_error_set(err, st, "%s (libcurl error %d)", detail, (int)rc);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING: *delay_ms = backoff(s, a); return DDS_OUTCOME_RETRY;
    default: return DDS_OUTCOME_FAIL; /* bad URL, unsupported protocol, ...: retrying cannot help */
    }
}

/* An HTTP answer other than a 200 or a redirect: the status decides, whatever the body is (a 429
 * or 403 may well be an HTML page). */
static dds_outcome error_status(const dds_settings *s, const dds_attempt *a, int64_t *delay_ms,
                                ddstream_error *err) {
    long status = a->status;
    const char *server_msg = a->server_msg ? a->server_msg : "";
    const char *sep = server_msg[0] ? ": " : "";
    ddstream_status st;
    const char *hint = "";
    switch (status) {
    case 400:
    case 404:
    case 422: st = DDSTREAM_E_QUERY; break;
    case 401:
    case 403:
        st = DDSTREAM_E_AUTH;
        hint = " (check the API key, the application key and the site)";
        break;
    case 429: st = DDSTREAM_E_RATE_LIMITED; break;
    case 408: st = DDSTREAM_E_TIMEOUT; break;
    default: st = DDSTREAM_E_SERVER; break;
    }
    dds_error_set(err, st, "HTTP %ld from Datadog%s%s%s", status, sep, server_msg, hint);
    if (err) err->http_status = (int32_t)status;
    if (status == 429) {
        int64_t reset = dds_retry_reset_ms(&a->rl, a->now_epoch_ms, a->headers_age_ms);
        *delay_ms = reset >= 0 ? reset + RESET_MARGIN_MS : backoff(s, a);
        return DDS_OUTCOME_RETRY;
    }
    if (dds_retry_query_timed_out(status, server_msg)) {
        /* The same request would time out again: chunk_fetch.c asks again in smaller pieces. */
        return DDS_OUTCOME_FAIL;
    }
    if (status == 408 || status >= 500) {
        /* the server's Retry-After (bounded) when it sent one, else the backoff */
        int64_t asked =
            dds_retry_server_asked_ms(status, &a->rl, a->now_epoch_ms, a->headers_age_ms);
        *delay_ms = asked > 0 ? asked : backoff(s, a);
        return DDS_OUTCOME_RETRY;
    }
    return DDS_OUTCOME_FAIL;
}

dds_outcome dds_retry_classify(const dds_settings *s, const dds_attempt *a, int64_t *delay_ms,
                               ddstream_error *err) {
    if (a->curl_code != CURLE_OK) return transfer_failed(s, a, delay_ms, err);
    if (a->status == 200) {
        if (!a->cut_short) return DDS_OUTCOME_OK;
        dds_error_set(err, DDSTREAM_E_NETWORK,
                      "the answer was cut short: its %zu bytes of JSON end with %zu bracket(s) "
                      "still open",
                      a->body_len, a->open_brackets);
        *delay_ms = backoff(s, a);
        return DDS_OUTCOME_RETRY;
    }
    if (a->status >= 300 && a->status < 400) {
        dds_error_set(err, DDSTREAM_E_SERVER,
                      "HTTP %ld: the server redirects elsewhere; redirects are not followed "
                      "because the keys would go with them (set base_url to the final address)",
                      a->status);
        if (err) err->http_status = (int32_t)a->status;
        return DDS_OUTCOME_FAIL;
    }
    return error_status(s, a, delay_ms, err);
}

dds_retry_budget dds_retry_budget_check(const dds_settings *s, int attempt, int64_t spent_ms,
                                        int64_t delay_ms, ddstream_error *err) {
    if (attempt >= s->max_retries) {
        if (attempt > 0) dds_error_append(err, " (after %d retries)", attempt);
        return DDS_RETRY_OUT_OF_TRIES;
    }
    if (spent_ms + delay_ms > s->max_retry_wait_ms) {
        dds_error_append(err,
                         " (after %d retries; the next, in %lld ms, would exceed "
                         "max_retry_wait_ms=%lld)",
                         attempt, (long long)delay_ms, (long long)s->max_retry_wait_ms);
        return DDS_RETRY_OUT_OF_TIME;
    }
    return DDS_RETRY_GO;
}
