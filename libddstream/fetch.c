/* fetch.c — libcurl transport: keep-alive, compression, timeouts, retries, rate-limit pacing.
 *
 * Transfers run through a multi handle even though there is one at a time: curl_multi_poll can be
 * woken by curl_multi_wakeup from another thread, so ddstream_cancel interrupts a slow transfer
 * at once instead of waiting for a progress callback. */
#include "fetch.h"

#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "parse.h"

#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS 30000
#define POLL_SLICE_MS 100
/* Abort a transfer that moves less than 1 byte/s for this long (a stalled or slow-loris server). */
#define LOW_SPEED_TIME_S 30L

struct dds_http {
    const dds_settings *s;
    dds_log *log;
    dds_cancel *cancel;
    CURL *easy;
    CURLM *multi;
    struct curl_slist *headers_query;    /* DD-API-KEY + DD-APPLICATION-KEY */
    struct curl_slist *headers_validate; /* DD-API-KEY only */
    char user_agent[96];
    uint64_t rng;
    /* Per response, from the headers. -1: not sent. */
    int64_t rl_remaining, rl_reset_s, rl_limit, rl_period, retry_after_s;
    /* Pacing: the window's budget is spent until this monotonic time. */
    int64_t paused_until_ms;
    /* Per transfer. */
    char *buf;
    size_t len, cap;
    int too_large;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init_once(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int dds_http_global_init(void) {
    pthread_once(&global_once, global_init_once);
    return global_rc == CURLE_OK ? 0 : -1;
}

void dds_body_free(dds_body *b) {
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
    dds_http *h = userdata;
    size_t n = size * nmemb;
    if ((int64_t)(h->len + n) > h->s->max_body_bytes) {
        h->too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (h->len + n + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 64 * 1024;
        while (cap < h->len + n + 1) cap *= 2;
        char *grown = realloc(h->buf, cap);
        if (!grown) return 0;
        h->buf = grown;
        h->cap = cap;
    }
    memcpy(h->buf + h->len, ptr, n);
    h->len += n;
    h->buf[h->len] = 0;
    return n;
}

/* Parse "name: value" header lines we care about; names match case-insensitively. */
static int header_is(const char *line, size_t n, const char *name, const char **value) {
    size_t k = strlen(name);
    if (n <= k || line[k] != ':') return 0;
    for (size_t i = 0; i < k; i++)
        if (tolower((unsigned char)line[i]) != name[i]) return 0;
    *value = line + k + 1;
    return 1;
}

static int64_t header_int(const char *v, const char *end) {
    while (v < end && isspace((unsigned char)*v)) v++;
    if (v >= end || !isdigit((unsigned char)*v)) return -1;
    int64_t x = 0;
    while (v < end && isdigit((unsigned char)*v) && x < INT64_C(100000000000000)) x = x * 10 + (*v++ - '0');
    return x;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata) {
    dds_http *h = userdata;
    size_t n = size * nmemb;
    const char *end = line + n, *v;
    if (header_is(line, n, "x-ratelimit-remaining", &v)) h->rl_remaining = header_int(v, end);
    else if (header_is(line, n, "x-ratelimit-reset", &v)) h->rl_reset_s = header_int(v, end);
    else if (header_is(line, n, "x-ratelimit-limit", &v)) h->rl_limit = header_int(v, end);
    else if (header_is(line, n, "x-ratelimit-period", &v)) h->rl_period = header_int(v, end);
    else if (header_is(line, n, "retry-after", &v)) h->retry_after_s = header_int(v, end);
    return n;
}

static void wake_multi(void *arg) { curl_multi_wakeup(arg); }

static struct curl_slist *key_headers(const dds_settings *s, int with_app_key) {
    char line[600];
    struct curl_slist *list = NULL, *next;
    snprintf(line, sizeof line, "DD-API-KEY: %s", s->api_key);
    next = curl_slist_append(list, line);
    if (!next) goto fail;
    list = next;
    if (with_app_key) {
        snprintf(line, sizeof line, "DD-APPLICATION-KEY: %s", s->app_key);
        next = curl_slist_append(list, line);
        if (!next) goto fail;
        list = next;
    }
    next = curl_slist_append(list, "Accept: application/json");
    if (!next) goto fail;
    list = next;
    memset(line, 0, sizeof line);
    return list;
fail:
    memset(line, 0, sizeof line);
    curl_slist_free_all(list);
    return NULL;
}

static void free_key_headers(struct curl_slist *list) {
    for (struct curl_slist *p = list; p; p = p->next) {
        volatile char *c = (volatile char *)p->data;
        while (*c) *c++ = 0;
    }
    curl_slist_free_all(list);
}

dds_http *dds_http_new(const dds_settings *s, dds_log *log, dds_cancel *cancel, ddstream_error *err) {
    if (dds_http_global_init() != 0) {
        dds_error_set(err, DDSTREAM_E_INTERNAL, "libcurl global initialisation failed");
        return NULL;
    }
    dds_http *h = calloc(1, sizeof *h);
    if (!h) {
        dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory creating the HTTP client");
        return NULL;
    }
    h->s = s;
    h->log = log;
    h->cancel = cancel;
    h->rng = (uint64_t)dds_now_ms() ^ ((uint64_t)(uintptr_t)h << 16) ^ UINT64_C(0x9e3779b97f4a7c15);
    h->easy = curl_easy_init();
    h->multi = curl_multi_init();
    h->headers_query = key_headers(s, 1);
    h->headers_validate = key_headers(s, 0);
    if (!h->easy || !h->multi || !h->headers_query || !h->headers_validate) {
        dds_http_free(h);
        dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory creating the HTTP client");
        return NULL;
    }
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    snprintf(h->user_agent, sizeof h->user_agent, "ddstream/%s libcurl/%s", ddstream_version(),
             vi && vi->version ? vi->version : "?");
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding libcurl can decode */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->request_timeout_ms);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* Never follow redirects: a Location elsewhere would receive the keys. */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_bundle) curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_bundle);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
    if (cancel) {
        pthread_mutex_lock(&cancel->mu);
        cancel->wake = wake_multi;
        cancel->wake_arg = h->multi;
        pthread_mutex_unlock(&cancel->mu);
    }
    return h;
}

void dds_http_free(dds_http *h) {
    if (!h) return;
    if (h->cancel) {
        pthread_mutex_lock(&h->cancel->mu);
        h->cancel->wake = NULL;
        h->cancel->wake_arg = NULL;
        pthread_mutex_unlock(&h->cancel->mu);
    }
    if (h->multi) curl_multi_cleanup(h->multi);
    if (h->easy) curl_easy_cleanup(h->easy);
    free_key_headers(h->headers_query);
    free_key_headers(h->headers_validate);
    free(h->buf);
    free(h);
}

char *dds_http_escape(dds_http *h, const char *value) {
    char *esc = curl_easy_escape(h->easy, value, 0);
    if (!esc) return NULL;
    char *copy = strdup(esc);
    curl_free(esc);
    return copy;
}

/* One transfer. Returns the libcurl result; *aborted set if cancelled midway. */
static CURLcode transfer(dds_http *h, const char *url, int send_app_key, long *http_status,
                         int *aborted) {
    h->len = 0;
    h->too_large = 0;
    h->rl_remaining = h->rl_reset_s = h->rl_limit = h->rl_period = h->retry_after_s = -1;
    *http_status = 0;
    *aborted = 0;
    curl_easy_setopt(h->easy, CURLOPT_URL, url);
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, send_app_key ? h->headers_query : h->headers_validate);
    if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK) return CURLE_FAILED_INIT;
    CURLcode result = CURLE_OK;
    int running = 1;
    while (running) {
        if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
        if (!running) break;
        if (h->cancel && dds_cancel_is_set(h->cancel)) {
            *aborted = 1;
            break;
        }
        if (curl_multi_poll(h->multi, NULL, 0, POLL_SLICE_MS, NULL) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
        if (h->cancel && dds_cancel_is_set(h->cancel)) {
            *aborted = 1;
            break;
        }
    }
    if (!*aborted) {
        int queued;
        CURLMsg *m;
        while ((m = curl_multi_info_read(h->multi, &queued)) != NULL)
            if (m->msg == CURLMSG_DONE) result = m->data.result;
    }
    curl_multi_remove_handle(h->multi, h->easy);
    if (!*aborted && result == CURLE_OK) curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, http_status);
    return result;
}

static uint64_t next_random(dds_http *h) {
    /* xorshift64*: per-client state, no global generator to share between threads */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * UINT64_C(2685821657736338717);
}

static int64_t backoff_ms(dds_http *h, int attempt) {
    int64_t d = BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && d < BACKOFF_CAP_MS; i++) d *= 2;
    if (d > BACKOFF_CAP_MS) d = BACKOFF_CAP_MS;
    /* "equal jitter": at least half the backoff, so retries stay spread but never hammer */
    return d / 2 + (int64_t)(next_random(h) % (uint64_t)(d / 2 + 1));
}

/* Seconds until the rate-limit window resets; x-ratelimit-reset is a duration, but accept an
 * epoch timestamp too (some proxies rewrite it). -1 when unknown. */
static int64_t reset_seconds(const dds_http *h) {
    int64_t v = h->rl_reset_s >= 0 ? h->rl_reset_s : h->retry_after_s;
    if (v < 0) return -1;
    if (v > INT64_C(1000000000)) {
        int64_t now = (int64_t)time(NULL);
        v = v > now ? v - now : 0;
    }
    return v;
}

static void remember_rate_limit(dds_http *h) {
    if (h->rl_remaining == 0) {
        int64_t reset = reset_seconds(h);
        if (reset < 0) reset = 1;
        h->paused_until_ms = dds_now_ms() + reset * 1000;
    } else {
        h->paused_until_ms = 0;
    }
}

typedef enum { OUTCOME_OK, OUTCOME_RETRY, OUTCOME_FAIL } outcome;

/* Classify one attempt. For RETRY sets *delay_ms; for FAIL fills err. */
static outcome classify(dds_http *h, CURLcode rc, long status, int attempt, int64_t *delay_ms,
                        ddstream_error *err) {
    char server_msg[320];
    if (rc != CURLE_OK) {
        if (rc == CURLE_WRITE_ERROR && h->too_large) {
            dds_error_set(err, DDSTREAM_E_PROTOCOL,
                          "the answer exceeded max_body_bytes (%lld bytes); raise it or use smaller chunks",
                          (long long)h->s->max_body_bytes);
            return OUTCOME_FAIL;
        }
        ddstream_status st = rc == CURLE_OPERATION_TIMEDOUT ? DDSTREAM_E_TIMEOUT : DDSTREAM_E_NETWORK;
        dds_error_set(err, st, "%s (libcurl error %d)", curl_easy_strerror(rc), (int)rc);
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
        case CURLE_BAD_CONTENT_ENCODING:
            *delay_ms = backoff_ms(h, attempt);
            return OUTCOME_RETRY;
        default:
            return OUTCOME_FAIL; /* TLS verification, bad URL, ...: retrying cannot help */
        }
    }
    if (status == 200) return OUTCOME_OK;
    dds_parse_error_body(h->buf ? h->buf : "", h->len, server_msg, sizeof server_msg);
    const char *sep = server_msg[0] ? ": " : "";
    ddstream_status st;
    const char *hint = "";
    switch (status) {
    case 400: case 404: case 422:
        st = DDSTREAM_E_QUERY;
        break;
    case 401: case 403:
        st = DDSTREAM_E_AUTH;
        hint = " (check the API key, the application key and the site)";
        break;
    case 429:
        st = DDSTREAM_E_RATE_LIMITED;
        break;
    case 408:
        st = DDSTREAM_E_TIMEOUT;
        break;
    default:
        st = DDSTREAM_E_SERVER;
        break;
    }
    dds_error_set(err, st, "HTTP %ld from Datadog%s%s%s", status, sep, server_msg, hint);
    if (err) err->http_status = (int32_t)status;
    if (status == 429) {
        int64_t reset = reset_seconds(h);
        *delay_ms = reset >= 0 ? reset * 1000 + 50 : backoff_ms(h, attempt);
        return OUTCOME_RETRY;
    }
    if (status == 408 || status >= 500) {
        *delay_ms = backoff_ms(h, attempt);
        return OUTCOME_RETRY;
    }
    return OUTCOME_FAIL;
}

ddstream_status dds_http_get(dds_http *h, const char *path_query, int send_app_key, dds_body *body,
                             ddstream_error *err) {
    body->data = NULL;
    body->len = 0;
    size_t ulen = strlen(h->s->base_url) + strlen(path_query) + 1;
    char *url = malloc(ulen);
    if (!url) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory building the URL");
    snprintf(url, ulen, "%s%s", h->s->base_url, path_query);
    int64_t waited_ms = 0;
    ddstream_status result = DDSTREAM_E_INTERNAL;
    for (int attempt = 0;; attempt++) {
        int64_t pause = h->paused_until_ms - dds_now_ms();
        if (pause > 0) {
            dds_logf(h->log, DDSTREAM_LOG_INFO,
                     "rate-limit budget spent: waiting %lld ms for the window to reset", (long long)pause);
            if (dds_cancel_sleep(h->cancel, pause)) {
                result = dds_error_set(err, DDSTREAM_E_CANCELLED, "cancelled");
                break;
            }
        }
        dds_logf(h->log, DDSTREAM_LOG_DEBUG, "GET %s%s", h->s->base_url, path_query);
        long status;
        int aborted;
        int64_t t0 = dds_now_ms();
        CURLcode rc = transfer(h, url, send_app_key, &status, &aborted);
        if (aborted) {
            result = dds_error_set(err, DDSTREAM_E_CANCELLED, "cancelled");
            break;
        }
        dds_logf(h->log, DDSTREAM_LOG_DEBUG, "HTTP %ld, %zu bytes in %lld ms (remaining %lld)", status,
                 h->len, (long long)(dds_now_ms() - t0), (long long)h->rl_remaining);
        remember_rate_limit(h);
        int64_t delay = 0;
        outcome o = classify(h, rc, status, attempt, &delay, err);
        if (o == OUTCOME_OK) {
            body->data = h->buf;
            body->len = h->len;
            h->buf = NULL; /* ownership moves to the caller; the next transfer allocates anew */
            h->len = h->cap = 0;
            if (!body->data) {
                body->data = calloc(1, 1);
                if (!body->data) {
                    result = dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
                    break;
                }
            }
            result = DDSTREAM_OK;
            break;
        }
        if (o == OUTCOME_FAIL) {
            result = err ? err->status : DDSTREAM_E_SERVER;
            break;
        }
        ddstream_status retry_status = err ? err->status : DDSTREAM_E_SERVER;
        if (attempt >= h->s->max_retries) {
            if (err && attempt > 0) {
                size_t n = strlen(err->message);
                snprintf(err->message + n, sizeof err->message - n, " (after %d retries)", attempt);
            }
            result = retry_status;
            break;
        }
        if (waited_ms + delay > h->s->max_retry_wait_ms) {
            if (err) {
                size_t n = strlen(err->message);
                snprintf(err->message + n, sizeof err->message - n,
                         " (next retry in %lld ms would exceed max_retry_wait_ms=%lld)",
                         (long long)delay, (long long)h->s->max_retry_wait_ms);
            }
            result = retry_status;
            break;
        }
        dds_logf(h->log, DDSTREAM_LOG_WARN, "%s; retry %d of %d in %lld ms",
                 err ? err->message : "request failed", attempt + 1, (int)h->s->max_retries,
                 (long long)delay);
        if (dds_cancel_sleep(h->cancel, delay)) {
            result = dds_error_set(err, DDSTREAM_E_CANCELLED, "cancelled");
            break;
        }
        waited_ms += delay;
    }
    free(url);
    return result;
}
