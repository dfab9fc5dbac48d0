/* admission.h — before an attempt is sent: the caller's request gate and the process-wide
 * rate-limit budget (ratelimit.h), the waits they ask for, and reporting each attempt's answer
 * back to both. One per dds_http; used by that client's thread, except dds_admission_throttled_ms
 * (any thread). */
#ifndef DDSTREAM_ADMISSION_H
#define DDSTREAM_ADMISSION_H

#include <stdatomic.h>
#include <stdint.h>

#include "cancel.h"
#include "config.h"
#include "ddstream.h"
#include "log.h"
#include "ratelimit.h"

typedef struct dds_admission {
    const dds_settings *s; /* borrowed, as are log and cancel */
    dds_log *log;
    dds_cancel *cancel;
    dds_budget *budget;      /* the budget of (base_url + endpoint, API key) */
    const char *endpoint;    /* the paced endpoint budget is for (a static string) */
    int64_t pacing_limit_ms; /* longest wait for a window before giving up; -1: no limit */
    int64_t ticket;          /* the budget's reservation for the attempt in flight... */
    int ticket_open;         /* ...until its answer (or its failure) is reported */
    int gate_open;           /* the gate let the attempt in flight through, not yet told its end */
    int32_t gate_attempt;
    /* Monotonic ms until which the client sleeps because the server, the budget or the gate said
     * to wait; 0 when it does not. Read by other threads (ddstream_rate_limit_wait_ms). */
    _Atomic int64_t throttled_until_ms;
} dds_admission;

/* What an answer said of the rate limit. status 0: no answer; the rest -1 when not said. */
typedef struct dds_rl_answer {
    long status;
    int64_t limit, remaining, period_s;
    int64_t reset_ms; /* from now, bounded (retry_policy.h) */
} dds_rl_answer;

/* Acquire the budget of s's query endpoint. Returns 0, or -1 when out of memory. */
int dds_admission_init(dds_admission *a, const dds_settings *s, dds_log *log, dds_cancel *cancel);
void dds_admission_destroy(dds_admission *a);

/* Whether a request for path_query ("/api/v1/query?...") goes through admission: only the query
 * endpoints (v1's, v2's timeseries and scalar) draw on a budget. */
int dds_admission_paces(const char *path_query);

/* The paced endpoint of path_query (a static string, compared by address), or NULL. */
const char *dds_admission_endpoint(const char *path_query);

/* Draw on endpoint's budget from the next attempt on (a client starts with v1's; a v2 stream's
 * clients switch once). Between attempts only. Returns 0, or -1 when out of memory (the current
 * budget is kept). */
int dds_admission_use_endpoint(dds_admission *a, const char *endpoint);

/* Wait for a spent window however long it lasts (a stream), not only max_retry_wait_ms. */
void dds_admission_wait_for_windows(dds_admission *a);

/*
 * Before attempt: ask the gate (if any) until it lets the attempt through, then the budget until
 * it grants a slot, sleeping (cancellably, visibly as throttled) as they say. DDSTREAM_OK with
 * *waited_ms the time spent waiting; otherwise the request is not to be sent and err says why
 * (cancelled, refused by the gate, or a wait beyond max_retry_wait_ms).
 */
ddstream_status dds_admission_enter(dds_admission *a, int32_t attempt, int64_t *waited_ms,
                                    ddstream_error *err);

/* Tell the gate how the attempt it let through ended; once per attempt, later calls do nothing. */
void dds_admission_report_gate(dds_admission *a, const dds_rl_answer *r);

/* Tell the budget what the answer said; once per attempt. fallback_reset_ms: the wait for a 429
 * that does not say how long (the retry's backoff), which every stream then waits out. */
void dds_admission_report_budget(dds_admission *a, const dds_rl_answer *r,
                                 int64_t fallback_reset_ms);

/* Sleep ms (cancellably) because a server, the budget or the gate said to wait, visibly to
 * dds_admission_throttled_ms. Returns nonzero if cancelled. */
int dds_admission_sleep(dds_admission *a, int64_t ms);

/* How many ms from now_ms the client still sleeps so; 0 when it does not. Any thread. */
int64_t dds_admission_throttled_ms(dds_admission *a, int64_t now_ms);

#endif
