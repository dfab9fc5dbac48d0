/* admission.c — the request gate and the shared budget before each attempt (see admission.h). */
#include "admission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "v2_request.h"

/* The endpoints whose answers draw on a process-wide rate-limit budget (ratelimit.h), one budget
 * each: Datadog limits each endpoint apart (the scalar one is named query_scalar_public). Whether
 * v2's timeseries limit is separate from v1's is unconfirmed; separate budgets follow what each
 * endpoint's own headers say either way. The first is a client's budget until it asks another. */
static const char *const PACED_ENDPOINTS[] = {"/api/v1/query", DDS_V2_TIMESERIES_PATH,
                                              DDS_V2_SCALAR_PATH};
#define QUERY_ENDPOINT (PACED_ENDPOINTS[0])
/* Waits longer than this are logged (at INFO, once per wait). */
#define TELL_WAIT_MS 100

static dds_budget *acquire(const dds_settings *s, const char *endpoint) {
    size_t len = strlen(s->base_url) + strlen(endpoint) + 1;
    char *scope = malloc(len);
    if (!scope) return NULL;
    snprintf(scope, len, "%s%s", s->base_url, endpoint);
    dds_budget *b = dds_budget_acquire(scope, s->api_key);
    free(scope);
    return b;
}

int dds_admission_init(dds_admission *a, const dds_settings *s, dds_log *log, dds_cancel *cancel) {
    memset(a, 0, sizeof *a);
    a->s = s;
    a->log = log;
    a->cancel = cancel;
    a->pacing_limit_ms = s->max_retry_wait_ms;
    atomic_init(&a->throttled_until_ms, 0);
    a->endpoint = QUERY_ENDPOINT;
    a->budget = acquire(s, QUERY_ENDPOINT);
    return a->budget ? 0 : -1;
}

int dds_admission_use_endpoint(dds_admission *a, const char *endpoint) {
    if (endpoint == NULL || endpoint == a->endpoint) return 0;
    dds_budget *b = acquire(a->s, endpoint);
    if (b == NULL) return -1;
    dds_budget_release(a->budget);
    a->budget = b;
    a->endpoint = endpoint;
    return 0;
}

void dds_admission_destroy(dds_admission *a) {
    dds_budget_release(a->budget);
    a->budget = NULL;
}

const char *dds_admission_endpoint(const char *path_query) {
    for (size_t k = 0; k < sizeof PACED_ENDPOINTS / sizeof PACED_ENDPOINTS[0]; k++) {
        size_t n = strlen(PACED_ENDPOINTS[k]);
        if (strncmp(path_query, PACED_ENDPOINTS[k], n) == 0 &&
            (path_query[n] == '?' || path_query[n] == 0))
            return PACED_ENDPOINTS[k];
    }
    return NULL;
}

int dds_admission_paces(const char *path_query) {
    return dds_admission_endpoint(path_query) != NULL;
}

void dds_admission_wait_for_windows(dds_admission *a) { a->pacing_limit_ms = -1; }

int dds_admission_sleep(dds_admission *a, int64_t ms) {
    atomic_store(&a->throttled_until_ms, dds_now_ms() + ms);
    int cancelled = dds_cancel_sleep(a->cancel, ms);
    atomic_store(&a->throttled_until_ms, 0);
    return cancelled;
}

int64_t dds_admission_throttled_ms(dds_admission *a, int64_t now_ms) {
    int64_t until = atomic_load(&a->throttled_until_ms);
    return until > now_ms ? until - now_ms : 0;
}

/* Ask the caller's request gate (if any) until it lets attempt through. Returns the ms waited,
 * -1 if cancelled meanwhile, -2 if the gate's wait goes beyond pacing_limit_ms, -3 if the gate
 * refused. */
static int64_t wait_for_gate(dds_admission *a, int32_t attempt, int64_t *wait_out) {
    if (!a->s->request_gate) return 0;
    ddstream_request_info info = {
        .struct_size = sizeof info,
        .phase = DDSTREAM_REQUEST_BEFORE,
        .attempt = attempt,
        .ratelimit_limit = -1,
        .ratelimit_remaining = -1,
        .ratelimit_period_s = -1,
        .ratelimit_reset_ms = -1,
    };
    int64_t waited = 0;
    int told = 0;
    for (;;) {
        int64_t t = dds_now_ms();
        int64_t wait = a->s->request_gate(a->s->request_gate_data, &info);
        if (wait == 0) {
            a->gate_open = 1;
            a->gate_attempt = attempt;
            return waited;
        }
        if (wait < 0) return -3;
        *wait_out = wait;
        if (a->pacing_limit_ms >= 0 && waited + wait > a->pacing_limit_ms) return -2;
        if (!told && wait > TELL_WAIT_MS) {
            dds_logf(a->log, DDSTREAM_LOG_INFO, "request gate: waiting %lld ms", (long long)wait);
            told = 1;
        }
        if (dds_admission_sleep(a, wait)) return -1;
        waited += dds_now_ms() - t;
    }
}

/* Wait until the shared budget lets one more query out. Returns the ms waited, -1 if cancelled
 * meanwhile, -2 if the window ends further away than pacing_limit_ms allows. On success the
 * reservation is open. */
static int64_t wait_for_budget(dds_admission *a, int64_t *wait_out) {
    int64_t waited = 0;
    int told = 0;
    for (;;) {
        int64_t t = dds_now_ms();
        int64_t wait = dds_budget_reserve(a->budget, t, &a->ticket);
        if (wait == 0) {
            a->ticket_open = 1;
            return waited;
        }
        *wait_out = wait;
        if (a->pacing_limit_ms >= 0 && waited + wait > a->pacing_limit_ms) return -2;
        if (!told && wait > TELL_WAIT_MS) {
            dds_logf(a->log, DDSTREAM_LOG_INFO,
                     "rate-limit budget spent: waiting %lld ms for the window to reset",
                     (long long)wait);
            told = 1;
        }
        if (dds_admission_sleep(a, wait)) return -1;
        waited += dds_now_ms() - t;
    }
}

/* The error for a request that was never sent, from wait_for_gate's or wait_for_budget's code. */
static ddstream_status not_sent(const dds_admission *a, int64_t code, int from_gate, int64_t wait,
                                ddstream_error *err) {
    if (code == -1) return dds_error_set(err, DDSTREAM_E_CANCELLED, "cancelled");
    if (code == -3)
        return dds_error_set(err, DDSTREAM_E_RATE_LIMITED,
                             "the request was refused by the request gate");
    if (from_gate)
        return dds_error_set(err, DDSTREAM_E_RATE_LIMITED,
                             "the request gate asks to wait %lld ms, longer than "
                             "max_retry_wait_ms=%lld allows",
                             (long long)wait, (long long)a->pacing_limit_ms);
    return dds_error_set(err, DDSTREAM_E_RATE_LIMITED,
                         "the rate-limit window is spent and resets in %lld ms, later than "
                         "max_retry_wait_ms=%lld allows",
                         (long long)wait, (long long)a->pacing_limit_ms);
}

ddstream_status dds_admission_enter(dds_admission *a, int32_t attempt, int64_t *waited_ms,
                                    ddstream_error *err) {
    int64_t wait = 0;
    int64_t at_gate = wait_for_gate(a, attempt, &wait);
    if (at_gate < 0) return not_sent(a, at_gate, 1, wait, err);
    int64_t at_budget = wait_for_budget(a, &wait);
    if (at_budget < 0) {
        const dds_rl_answer none = {0, -1, -1, -1, -1};
        dds_admission_report_gate(a, &none); /* let through by the gate, but never sent */
        return not_sent(a, at_budget, 0, wait, err);
    }
    *waited_ms = at_gate + at_budget;
    return DDSTREAM_OK;
}

void dds_admission_report_gate(dds_admission *a, const dds_rl_answer *r) {
    if (!a->gate_open) return;
    a->gate_open = 0;
    int answered = r->status > 0;
    ddstream_request_info info = {
        .struct_size = sizeof info,
        .phase = answered ? DDSTREAM_REQUEST_ANSWERED : DDSTREAM_REQUEST_NO_ANSWER,
        .attempt = a->gate_attempt,
        .http_status = (int32_t)(answered ? r->status : 0),
        .ratelimit_limit = answered ? r->limit : -1,
        .ratelimit_remaining = answered ? r->remaining : -1,
        .ratelimit_period_s = answered ? r->period_s : -1,
        .ratelimit_reset_ms = answered ? r->reset_ms : -1,
    };
    a->s->request_gate(a->s->request_gate_data, &info);
}

void dds_admission_report_budget(dds_admission *a, const dds_rl_answer *r,
                                 int64_t fallback_reset_ms) {
    if (!a->ticket_open) return;
    a->ticket_open = 0;
    if (r->status == 0 && r->remaining < 0) {
        dds_budget_abandoned(a->budget, a->ticket);
        return;
    }
    int64_t reset = r->reset_ms;
    if (r->status == 429 && reset < 0) reset = fallback_reset_ms;
    dds_budget_answered(a->budget, a->ticket, dds_now_ms(), r->status, r->limit, r->remaining,
                        reset, r->period_s);
}
