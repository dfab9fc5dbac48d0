/* fetch.c — the libcurl transfer: handles, key headers, keep-alive, compression, timeouts, the
 * body buffers and their recycling, reading the answer; and the small retry loop that ties it to
 * admission.c (request gate, shared budget), retry_policy.c (retry or not, how long to wait) and
 * http_headers.c (what the headers said).
 *
 * Transfers run through a multi handle even though a client has one at a time (a stream runs one
 * client per request in flight, see stream.c): curl_multi_poll can be woken by curl_multi_wakeup
 * from another thread, so ddstream_cancel interrupts a slow transfer at once instead of waiting
 * for a progress callback. */
#include "fetch.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admission.h"
#include "bigalloc.h"
#include "error.h"
#include "http_headers.h"
#include "inflate.h"
#include "json_check.h"
#include "error_body.h"
#include "parse.h"
#include "retry_policy.h"

#define POLL_SLICE_MS 100
/* A kept body buffer may exceed 4x the last answer by this much before it is given back. */
#define KEEP_SLACK (256 * 1024)

struct dds_http {
    const dds_settings *s;
    dds_log *log;
    dds_cancel *cancel;
    CURL *easy;
    CURLM *multi;
    struct curl_slist *headers_query;    /* DD-API-KEY + DD-APPLICATION-KEY */
    struct curl_slist *headers_validate; /* DD-API-KEY only */
    struct curl_slist *headers_post;     /* both keys and the JSON body's Content-Type */
    const char *post_body;               /* the request's JSON body (POST), NULL for GET */
    size_t post_len;
    char user_agent[96];
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's detail of the last failure */
    uint64_t rng;
    dds_rl_headers rl;       /* per response, from the headers */
    int64_t headers_at_ms;   /* when the headers arrived: the base of x-ratelimit-reset */
    dds_admission admission; /* the request gate and the shared budget */
    long header_status;      /* status line of the answer being received */
    /* Per transfer. The buffers stay from one transfer to the next (see keep_or_release):
     * a stream's answers are alike, so after the first one no body costs an allocation. */
    char *buf; /* the body as it arrived (compressed when encoding says so) */
    size_t len, cap;
    int too_large;
    dds_encoding encoding; /* Content-Encoding of the answer being received */
    char *dec;             /* the decoded body when it came compressed */
    size_t dec_cap;
    char *body; /* the body to read: buf, or dec */
    size_t body_len;
    dds_inflater *inflater;
    char *spare; /* the last answer's buffer of megabytes, for dds_http_take_spare */
    size_t spare_cap;
    dds_decode decode; /* of a 200 answer */
    /* Per request: who reads a 200 answer in place (dds_http_get_read), or NULL. */
    dds_body_reader reader;
    void *reader_arg;
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

/* Room for a body of n bytes (and the NUL) before it arrives, from its Content-Length: the body
 * is then written once, never moved. Within max_body_bytes only: on_write refuses the rest. */
static void reserve_body(dds_http *h, int64_t n) {
    if (n < 0 || n > h->s->max_body_bytes || (size_t)n + 1 <= h->cap || h->len > 0) return;
    free(h->buf); /* nothing in it yet: replaced, not copied */
    /* A quarter more: the next answer, a few bytes longer, then fits (as inflate.c's output). */
    int64_t more = n / 4 < h->s->max_body_bytes - n ? n / 4 : h->s->max_body_bytes - n;
    size_t want = (size_t)n + (size_t)more + 1;
    h->buf = dds_big_alloc(want);
    h->cap = h->buf ? want : 0;
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

static int64_t reset_ms(const dds_http *h);
static void note_distrusted_wait(dds_http *h);

/* What the answer (status 0: none) said of the rate limit, for the gate and the budget. */
static dds_rl_answer rl_answer(const dds_http *h, long status) {
    dds_rl_answer r = {status, h->rl.limit, h->rl.remaining, h->rl.period_s, reset_ms(h)};
    return r;
}

/* Tell the shared budget what the answer said, once per transfer (admission.h). */
static void settle_budget(dds_http *h, long status, int64_t fallback_reset_ms) {
    dds_rl_answer r = rl_answer(h, status);
    dds_admission_report_budget(&h->admission, &r, fallback_reset_ms);
}

/* Tell the request gate how the attempt it let through ended, once per attempt: status > 0
 * with the answer's rate-limit headers, 0 for no answer. */
static void settle_gate(dds_http *h, long status) {
    dds_rl_answer r = rl_answer(h, status);
    dds_admission_report_gate(&h->admission, &r);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata) {
    dds_http *h = userdata;
    size_t n = size * nmemb;
    const char *end = line + n, *v;
    /* A status line starts the headers of a new answer (after a 100 Continue, say). */
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        dds_rl_headers_clear(&h->rl);
        h->headers_at_ms = dds_now_ms();
        h->encoding = DDS_ENCODING_IDENTITY;
        const char *p = memchr(line, ' ', n);
        h->header_status = p ? (long)dds_header_number(p, end) : 0;
        return n;
    }
    if (n <= 2 && (line[0] == '\r' || line[0] == '\n')) {
        /* End of the headers: the other streams need not wait for the body to learn the budget
         * (unless this is a 429 without a reset, whose wait the retry logic decides). */
        note_distrusted_wait(h);
        if (h->header_status >= 200 && (h->header_status != 429 || reset_ms(h) >= 0))
            settle_budget(h, h->header_status, -1);
        if (h->header_status >= 200) settle_gate(h, h->header_status);
        return n;
    }
    if (dds_rl_headers_take(&h->rl, line, n)) return n;
    if ((v = dds_header_value(line, n, "content-encoding")))
        h->encoding = dds_encoding_parse(v, (size_t)(end - v));
    else if ((v = dds_header_value(line, n, "content-length")))
        reserve_body(h, dds_header_number(v, end));
    return n;
}

static void wake_multi(void *arg) { curl_multi_wakeup(arg); }

static struct curl_slist *key_headers(const dds_settings *s, int with_app_key, int json_body) {
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
    /* Asked for here rather than through CURLOPT_ACCEPT_ENCODING, so that libcurl hands the body
     * over compressed and inflate.c decodes it whole (see decode_body). */
    next = curl_slist_append(list, "Accept-Encoding: gzip");
    if (!next) goto fail;
    list = next;
    if (json_body) {
        next = curl_slist_append(list, "Content-Type: application/json");
        if (!next) goto fail;
        list = next;
        /* No "Expect: 100-continue" round trip before a body of more than 1 kB: the server
         * answers the request whole anyway, and a server that ignores Expect costs a second. */
        next = curl_slist_append(list, "Expect:");
        if (!next) goto fail;
        list = next;
    }
    dds_wipe(line, sizeof line);
    return list;
fail:
    dds_wipe(line, sizeof line);
    curl_slist_free_all(list);
    return NULL;
}

static void free_key_headers(struct curl_slist *list) {
    for (struct curl_slist *p = list; p; p = p->next) dds_wipe(p->data, strlen(p->data));
    curl_slist_free_all(list);
}

dds_http *dds_http_new(const dds_settings *s, dds_log *log, dds_cancel *cancel,
                       ddstream_error *err) {
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
    h->headers_query = key_headers(s, 1, 0);
    h->headers_validate = key_headers(s, 0, 0);
    h->headers_post = key_headers(s, 1, 1);
    h->inflater = dds_inflater_new();
    int admitted = dds_admission_init(&h->admission, s, log, cancel) == 0;
    if (!h->easy || !h->multi || !h->headers_query || !h->headers_validate || !h->headers_post ||
        !admitted || !h->inflater) {
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
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L); /* bodies stay as sent: decode_body */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->request_timeout_ms);
    /* A stalled or slow-loris server: abort below low_speed_limit bytes/s for low_speed_time_ms
     * (libcurl counts whole seconds: round up). request_timeout_ms bounds the rest. */
    if (s->low_speed_limit > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, (long)s->low_speed_limit);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((s->low_speed_time_ms + 999) / 1000));
    }
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
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
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
    dds_admission_destroy(&h->admission);
    free_key_headers(h->headers_query);
    free_key_headers(h->headers_validate);
    free_key_headers(h->headers_post);
    free(h->buf);
    free(h->dec);
    free(h->spare);
    dds_inflater_free(h->inflater);
    free(h);
}

void dds_http_scrub(const dds_http *h, char *msg) {
    dds_redact_keys(msg, h->s->api_key, h->s->app_key);
}

char *dds_http_escape(dds_http *h, const char *value) {
    char *esc = curl_easy_escape(h->easy, value, 0);
    if (!esc) return NULL;
    char *copy = strdup(esc);
    curl_free(esc);
    return copy;
}

/* The body to read (h->body) from the one received (h->buf): itself, or its decoded bytes in
 * h->dec. An answer other than a 200 that cannot be decoded gives an empty body (its status says
 * enough); a 200's failure is reported as a CURLcode for the retry policy, with h->decode saying
 * which. */
static CURLcode decode_body(dds_http *h, long status) {
    h->decode = DDS_DECODED;
    h->body = h->buf;
    h->body_len = h->len;
    if (h->encoding == DDS_ENCODING_IDENTITY || h->len == 0) { /* nothing to decode */
        if (h->buf) {
            h->buf[h->len] = 0; /* on_write's NUL, or the empty body's over the previous answer */
        } else {
            h->buf = malloc(64 * 1024); /* "" for the parser, and room for the next answer */
            if (!h->buf) goto nomem;
            h->cap = 64 * 1024;
            h->buf[0] = 0;
            h->body = h->buf;
        }
        return CURLE_OK;
    }
    dds_inflate_result r = DDS_INFLATE_CORRUPT;
    if (h->encoding != DDS_ENCODING_UNKNOWN)
        r = dds_inflate(h->inflater, h->encoding, (const unsigned char *)h->buf, h->len,
                        (size_t)h->s->max_body_bytes, &h->dec, &h->dec_cap, &h->body_len);
    if (r == DDS_INFLATE_OK) {
        h->body = h->dec;
        return CURLE_OK;
    }
    if (status != 200) {
        h->buf[0] = 0; /* not empty (an empty body decodes): there is a byte */
        h->body = h->buf;
        h->body_len = 0;
        return CURLE_OK;
    }
    switch (r) {
    case DDS_INFLATE_TOO_LARGE: h->too_large = 1; return CURLE_WRITE_ERROR;
    case DDS_INFLATE_NOMEM: goto nomem;
    default:
        h->decode = h->encoding == DDS_ENCODING_UNKNOWN ? DDS_DECODE_UNKNOWN : DDS_DECODE_CORRUPT;
        return CURLE_BAD_CONTENT_ENCODING;
    }
nomem:
    h->decode = DDS_DECODE_NOMEM;
    return CURLE_OUT_OF_MEMORY;
}

/* One transfer. Returns the libcurl result; *aborted set if cancelled midway. */
static CURLcode transfer(dds_http *h, const char *url, int send_app_key, long *http_status,
                         int *aborted) {
    h->len = 0;
    h->too_large = 0;
    h->decode = DDS_DECODED;
    h->encoding = DDS_ENCODING_IDENTITY;
    h->body = h->buf;
    h->body_len = 0;
    h->errbuf[0] = 0;
    h->headers_at_ms = dds_now_ms();
    dds_rl_headers_clear(&h->rl);
    *http_status = 0;
    *aborted = 0;
    curl_easy_setopt(h->easy, CURLOPT_URL, url);
    if (h->post_body) {
        /* The body stays the caller's (not copied): it outlives the call. */
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, h->post_body);
        curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->post_len);
        curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers_post);
    } else {
        curl_easy_setopt(h->easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER,
                         send_app_key ? h->headers_query : h->headers_validate);
    }
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
    /* Also after a failure: a status that arrived before the body broke tells the budget that
     * the server counted the request. */
    if (!*aborted) curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, http_status);
    if (result == CURLE_OK && !*aborted) result = decode_body(h, *http_status);
    return result;
}

static uint64_t next_random(dds_http *h) {
    /* xorshift64*: per-client state, no global generator to share between threads */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * UINT64_C(2685821657736338717);
}

/* Wall-clock ms: headers may carry epoch timestamps. */
static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds from now until the rate-limit window resets, as the retry policy reads the
 * headers (bounded); -1 when unknown. */
static int64_t reset_ms(const dds_http *h) {
    return dds_retry_reset_ms(&h->rl, wall_ms(), dds_now_ms() - h->headers_at_ms);
}

/* At the end of an answer's headers: say so (INFO) when a wait they ask for is longer than
 * they can mean, and is cut to dds_retry_longest_wait_ms. */
static void note_distrusted_wait(dds_http *h) {
    const char *name = h->rl.reset_s >= 0 ? "x-ratelimit-reset" : "Retry-After";
    int64_t asked = dds_retry_announced_wait_ms(
        h->rl.reset_s >= 0 ? h->rl.reset_s : h->rl.retry_after_s, wall_ms());
    int64_t longest = dds_retry_longest_wait_ms(h->rl.period_s);
    if (asked <= longest) return;
    if (dds_retry_period_trusted(h->rl.period_s))
        dds_logf(h->log, DDSTREAM_LOG_INFO,
                 "HTTP %ld: %s asks to wait %lld s, longer than the rate-limit window's period "
                 "(x-ratelimit-period: %lld s): waiting %lld s at most",
                 h->header_status, name, (long long)(asked / 1000), (long long)h->rl.period_s,
                 (long long)(longest / 1000));
    else
        dds_logf(h->log, DDSTREAM_LOG_INFO,
                 "HTTP %ld: %s asks to wait %lld s, and the answer does not say how long its "
                 "window is (no x-ratelimit-period): waiting %lld s at most",
                 h->header_status, name, (long long)(asked / 1000), (long long)(longest / 1000));
}

/* Whether a JSON body is a correct beginning of a document that stops early: the answer was cut
 * short (a connection dropped by a proxy that still framed it, a body shorter than it says...).
 * Cutting is a transport fault worth a retry, unlike an answer that is wrong from start to end:
 * a body with a byte no JSON could have ("{\"series\":[}"), or one that does not start like
 * JSON (left to the parser to describe), is not cut short, however its brackets count. */
static int json_cut_short(const char *p, size_t n, size_t *open_brackets) {
    dds_json_check check;
    if (dds_json_check_body(p, n, &check) != DDS_JSON_TRUNCATED) return 0;
    *open_brackets = check.open;
    return 1;
}

void dds_http_wait_for_windows(dds_http *h) { dds_admission_wait_for_windows(&h->admission); }

int64_t dds_http_throttled_ms(dds_http *h, int64_t now_ms) {
    return h ? dds_admission_throttled_ms(&h->admission, now_ms) : 0;
}

/* Keep a buffer for the next answer, unless it is large (megabytes: the chunk's batch takes it
 * over, see dds_http_take_spare) or much larger than the answer just received. So a stream of
 * small answers allocates nothing after the first, while a large answer's memory goes to its
 * batch or back to the system, and is never pinned for the rest of the stream. */
static void keep_or_release(char **buf, size_t *cap, size_t used) {
    if (*cap >= DDS_BIG_ALLOC_MIN || *cap > 4 * used + KEEP_SLACK) {
        free(*buf);
        *buf = NULL;
        *cap = 0;
    }
}

/* A 200 answer's body moves to the caller (dds_http_get); the next transfer allocates anew. */
static void hand_over_body(dds_http *h, dds_body *body) {
    body->data = h->body;
    body->len = h->body_len;
    if (h->body == h->dec) {
        h->dec = NULL;
        h->dec_cap = 0;
    } else {
        h->buf = NULL;
        h->len = h->cap = 0;
    }
}

/* After a request: keep the buffers for the next answer or give them back (keep_or_release).
 * offer_spare: the answer was read in place and is done with; a buffer of megabytes, which
 * would be given back, is offered for the chunk's batch instead (dds_http_take_spare). */
static void recycle_buffers(dds_http *h, int offer_spare) {
    free(h->spare);
    h->spare = NULL;
    h->spare_cap = 0;
    if (offer_spare) {
        if (h->dec_cap >= DDS_BIG_ALLOC_MIN) {
            h->spare = h->dec;
            h->spare_cap = h->dec_cap;
            h->dec = NULL;
            h->dec_cap = 0;
        } else if (h->cap >= DDS_BIG_ALLOC_MIN) {
            h->spare = h->buf;
            h->spare_cap = h->cap;
            h->buf = NULL;
            h->len = h->cap = 0;
        }
    }
    keep_or_release(&h->buf, &h->cap, h->len);
    keep_or_release(&h->dec, &h->dec_cap, h->encoding == DDS_ENCODING_IDENTITY ? 0 : h->body_len);
    h->body = NULL;
    h->body_len = 0;
}

/* What the retry policy needs to know of the attempt just made. server_msg (cap bytes) receives
 * the server's own message from an error answer, keys scrubbed. A 200 read by a reader is
 * checked for being cut short only if the reader fails (get): a complete document is the common
 * case, and the reader's own pass over it proves it complete. */
static dds_attempt attempt_report(dds_http *h, int attempt, CURLcode rc, long status,
                                  char *server_msg, size_t cap) {
    dds_attempt a = {
        .attempt = attempt,
        .curl_code = (int)rc,
        .curl_detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc),
        .status = status,
        .decode = h->decode,
        .too_large = h->too_large,
        .received_len = h->len,
        .body_len = h->body_len,
        .server_msg = server_msg,
        .rl = h->rl,
        .headers_age_ms = dds_now_ms() - h->headers_at_ms,
        .now_epoch_ms = wall_ms(),
        .random = next_random(h),
    };
    server_msg[0] = 0;
    if (rc != CURLE_OK) return a;
    if (status == 200) {
        a.cut_short = !h->reader && json_cut_short(h->body, h->body_len, &a.open_brackets);
    } else if (status < 300 || status >= 400) {
        dds_parse_error_body(h->body, h->body_len, server_msg, cap);
        dds_http_scrub(h, server_msg);
    }
    return a;
}

/* dds_http_get and dds_http_get_read: with h->reader set, a 200 is read in place, else handed
 * over in *body. The retry loop: admission (gate, budget), the transfer, the retry policy's
 * verdict, the wait. */
static ddstream_status get(dds_http *h, const char *path_query, int send_app_key, dds_body *body,
                           ddstream_error *err) {
    if (body) {
        body->data = NULL;
        body->len = 0;
    }
    size_t blen = strlen(h->s->base_url), qlen = strlen(path_query);
    char *url = malloc(blen + qlen + 1);
    if (!url) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory building the URL");
    memcpy(url, h->s->base_url, blen);
    memcpy(url + blen, path_query, qlen + 1);
    const char *endpoint = dds_admission_endpoint(path_query);
    int paced = endpoint != NULL;
    if (paced && dds_admission_use_endpoint(&h->admission, endpoint) != 0) {
        free(url);
        return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory for the rate-limit budget");
    }
    int64_t first_failure_at = -1; /* the retry-time budget counts from the first failure */
    int64_t paced_ms = 0; /* ...minus the waits for the rate-limit window, which are not retries */
    ddstream_status result = DDSTREAM_E_INTERNAL;
    for (int attempt = 0;; attempt++) {
        if (paced) {
            int64_t waited = 0;
            result = dds_admission_enter(&h->admission, (int32_t)attempt, &waited, err);
            if (result != DDSTREAM_OK) break;
            if (first_failure_at >= 0) paced_ms += waited;
        }
        dds_logf(h->log, DDSTREAM_LOG_DEBUG, "%s %s%s (%zu-byte body)",
                 h->post_body ? "POST" : "GET", h->s->base_url, path_query,
                 h->post_body ? h->post_len : (size_t)0);
        long status;
        int aborted;
        int64_t t0 = dds_now_ms();
        h->header_status = 0;
        CURLcode rc = transfer(h, url, send_app_key, &status, &aborted);
        settle_gate(h, 0); /* no-op unless the headers never ended: no answer */
        if (aborted) {
            settle_budget(h, 0, -1);
            result = dds_error_set(err, DDSTREAM_E_CANCELLED, "cancelled");
            break;
        }
        dds_logf(h->log, DDSTREAM_LOG_DEBUG, "HTTP %ld, %zu bytes in %lld ms (remaining %lld)",
                 status, h->len, (long long)(dds_now_ms() - t0), (long long)h->rl.remaining);
        int64_t delay = 0;
        char server_msg[320];
        dds_attempt a = attempt_report(h, attempt, rc, status, server_msg, sizeof server_msg);
        dds_outcome o = dds_retry_classify(h->s, &a, &delay, err);
        settle_budget(h, status, delay); /* a 429 without a reset: everyone waits this out */
        if (o == DDS_OUTCOME_OK && h->reader) {
            result = h->reader(h->reader_arg, h->body, h->body_len, err);
            if (result != DDSTREAM_E_PROTOCOL ||
                !json_cut_short(h->body, h->body_len, &a.open_brackets))
                break;
            a.cut_short = 1;
            o = dds_retry_classify(h->s, &a, &delay, err);
        } else if (o == DDS_OUTCOME_OK) {
            hand_over_body(h, body);
            result = DDSTREAM_OK;
            break;
        }
        if (o == DDS_OUTCOME_FAIL) {
            result = err ? err->status : DDSTREAM_E_SERVER;
            break;
        }
        int64_t now = dds_now_ms();
        if (first_failure_at < 0) first_failure_at = now;
        int64_t spent = now - first_failure_at - paced_ms;
        if (dds_retry_budget_check(h->s, attempt, spent, delay, err) != DDS_RETRY_GO) {
            result = err ? err->status : DDSTREAM_E_SERVER;
            break;
        }
        dds_logf(h->log, DDSTREAM_LOG_WARN, "%s; retry %d of %d in %lld ms",
                 err ? err->message : "request failed", attempt + 1, (int)h->s->max_retries,
                 (long long)delay);
        /* A wait the server asked for (429, Retry-After) shows in ddstream_rate_limit_wait_ms;
         * a plain backoff does not. */
        if (dds_retry_is_throttle(&a) ? dds_admission_sleep(&h->admission, delay)
                                      : dds_cancel_sleep(h->cancel, delay)) {
            result = dds_error_set(err, DDSTREAM_E_CANCELLED, "cancelled");
            break;
        }
    }
    free(url);
    recycle_buffers(h, result == DDSTREAM_OK && h->reader);
    return result;
}

char *dds_http_take_spare(dds_http *h, size_t *cap) {
    char *spare = h->spare;
    *cap = h->spare_cap;
    h->spare = NULL;
    h->spare_cap = 0;
    return spare;
}

ddstream_status dds_http_get(dds_http *h, const char *path_query, int send_app_key, dds_body *body,
                             ddstream_error *err) {
    h->reader = NULL;
    return get(h, path_query, send_app_key, body, err);
}

ddstream_status dds_http_get_read(dds_http *h, const char *path_query, int send_app_key,
                                  dds_body_reader read, void *arg, ddstream_error *err) {
    h->reader = read;
    h->reader_arg = arg;
    ddstream_status st = get(h, path_query, send_app_key, NULL, err);
    h->reader = NULL;
    h->reader_arg = NULL;
    return st;
}

ddstream_status dds_http_post_read(dds_http *h, const char *path, const char *body, size_t len,
                                   dds_body_reader read, void *arg, ddstream_error *err) {
    if (body == NULL) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "no request body");
    h->reader = read;
    h->reader_arg = arg;
    h->post_body = body;
    h->post_len = len;
    ddstream_status st = get(h, path, 1, NULL, err);
    h->post_body = NULL;
    h->post_len = 0;
    h->reader = NULL;
    h->reader_arg = NULL;
    return st;
}
