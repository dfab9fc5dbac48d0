/* fetch.h — HTTP GET (and POST, for v2) against the Datadog API with retries and rate-limit pacing.
 * The only module that drives libcurl (http_headers.c borrows curl_getdate, retry_policy.c the
 * CURLcode values). One dds_http per thread of use. */
#ifndef DDSTREAM_FETCH_H
#define DDSTREAM_FETCH_H

#include <stddef.h>

#include "cancel.h"
#include "config.h"
#include "ddstream.h"
#include "log.h"

typedef struct dds_http dds_http;

/* A 200 answer's body (NUL-terminated for convenience; len excludes the NUL). */
typedef struct dds_body {
    char *data;
    size_t len;
} dds_body;

/* Runs libcurl's global init once per process (thread-safe). Returns 0 on success. */
int dds_http_global_init(void);

/*
 * A client for s->base_url with a keep-alive connection. settings, log and cancel are borrowed
 * and must outlive the client. cancel's trigger interrupts a transfer in progress.
 */
dds_http *dds_http_new(const dds_settings *s, dds_log *log, dds_cancel *cancel,
                       ddstream_error *err);
void dds_http_free(dds_http *h);

/*
 * Waiting for a spent rate-limit window is bounded by max_retry_wait_ms by default (a one-off
 * call such as ddstream_validate should not sit out an hour-long window). A stream, which exists
 * to get through a bulk export, calls this to wait as long as the window says (cancellably).
 */
void dds_http_wait_for_windows(dds_http *h);

/*
 * How many ms from now_ms this client still sleeps because the server (429, Retry-After), the
 * shared rate-limit budget or the request gate said to wait; 0 when it does not. Any thread.
 */
int64_t dds_http_throttled_ms(dds_http *h, int64_t now_ms);

/* Scrub the keys from msg (in place; dds_redact: whole, and any piece of 8 characters or more).
 * For text that came from the server: a body may echo a key, and a message may cut it. */
void dds_http_scrub(const dds_http *h, char *msg);

/* URL-encode a query parameter value. malloc'd; NULL on allocation failure. */
char *dds_http_escape(dds_http *h, const char *value);

/*
 * GET <base_url><path_query>. Sends DD-API-KEY (and DD-APPLICATION-KEY if send_app_key), asks for
 * compressed answers, retries 408/429/5xx and transient network errors with exponential backoff
 * and jitter (429: as long as x-ratelimit-reset or Retry-After says; 408/5xx: as long as a
 * Retry-After says, in seconds or as an HTTP date), within max_retries and max_retry_wait_ms,
 * and waits for the window to reset before sending when x-ratelimit-remaining said 0. A wait a
 * header asks for is bounded by the window's period (x-ratelimit-period, up to an hour), or 60 s
 * when the answer does not say it; a longer one is cut and logged at INFO.
 * On DDSTREAM_OK *body holds the 200 answer (free with dds_body_free). Otherwise err says what
 * failed, with the HTTP status and the server's own message when there was one.
 */
DDSTREAM_NODISCARD ddstream_status dds_http_get(dds_http *h, const char *path_query,
                                                int send_app_key, dds_body *body,
                                                ddstream_error *err);

void dds_body_free(dds_body *b);

/*
 * After a dds_http_get_read that succeeded: the buffer that held the answer, when it is one of
 * megabytes the client would give back anyway. The caller takes it over (free() it; *cap is its
 * size) to build the chunk's batch in memory already paged in, rather than have the kernel clear
 * fresh pages for it (a third of the CPU time of a large answer). Its contents are garbage. NULL
 * (and *cap 0) when there is none.
 */
char *dds_http_take_spare(dds_http *h, size_t *cap);

/*
 * Reads a 200 answer where it lies: data[0..len) is the decoded body, NUL-terminated, writable,
 * valid during the call only (the client reuses its buffers for the next answer). Returns
 * DDSTREAM_OK, or the failure status with err set. A reader that fails must leave the body's
 * brackets and strings as it found them (see dds_http_get_read).
 */
typedef ddstream_status (*dds_body_reader)(void *arg, char *data, size_t len, ddstream_error *err);

/*
 * dds_http_get, with the 200 answer read by read(arg, ...) inside the retry loop instead of
 * handed over: no copy or allocation per answer, and the check for an answer cut short (JSON
 * ending with brackets still open, a retryable network error) costs nothing unless read fails
 * with DDSTREAM_E_PROTOCOL — a complete document is the common case, and read's own pass over it
 * proves it complete. read may run more than once (once per 200 attempt); when it fails on a cut
 * answer, its error is replaced by the cut-short one and the request is retried.
 */
DDSTREAM_NODISCARD ddstream_status dds_http_get_read(dds_http *h, const char *path_query,
                                                     int send_app_key, dds_body_reader read,
                                                     void *arg, ddstream_error *err);

/*
 * dds_http_get_read as a POST of body[0..len) (JSON: the v2 query endpoints) to path, with both
 * keys: the same retries, pacing (each paced endpoint has its own budget), request gate, cancel,
 * compression and key hygiene. body is not copied and must stay valid during the call. A request
 * the server refused is not sent again unless the answer is one the retry policy retries.
 */
DDSTREAM_NODISCARD ddstream_status dds_http_post_read(dds_http *h, const char *path,
                                                      const char *body, size_t len,
                                                      dds_body_reader read, void *arg,
                                                      ddstream_error *err);

#endif
