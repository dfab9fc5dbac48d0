/* validate.c — check credentials (and the query) against the server with the fewest requests:
 * /api/v1/validate for the API key, then one single-bucket query for the application key, which
 * no endpoint checks on its own (shared/DATADOG.md): through v1, or for a stream of formulas the
 * v2 request it will send. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "config.h"
#include "ddstream.h"
#include "error.h"
#include "fetch.h"
#include "log.h"
#include "parse.h"
#include "parse_v2.h"
#include "v2_request.h"

static ddstream_status check_api_key(dds_http *http, ddstream_error *err) {
    dds_body body;
    ddstream_status st = dds_http_get(http, "/api/v1/validate", 0, &body, err);
    if (st != DDSTREAM_OK) return st;
    int valid = 0;
    char msg[300];
    st = dds_parse_validate_response(body.data, body.len, &valid, msg, sizeof msg);
    dds_body_free(&body);
    if (st != DDSTREAM_OK) {
        dds_http_scrub(http, msg); /* the message may quote the body, and the body a key */
        return dds_error_set(err, st, "/api/v1/validate: %s", msg);
    }
    if (!valid) return dds_error_set(err, DDSTREAM_E_AUTH, "Datadog says the API key is not valid");
    return DDSTREAM_OK;
}

static ddstream_status check_app_key_and_query(dds_http *http, const dds_settings *s,
                                               ddstream_error *err) {
    /* The sub-queries of the first query (all of a single query's, as its chunks send them): one
     * request whatever the number of queries. */
    char *q = dds_pack_join(&s->pack, 0, s->queries[0].subquery_count);
    char *escaped = q ? dds_http_escape(http, q) : NULL;
    free(q);
    if (!escaped) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    /* One bucket at the start of the range: the cheapest query that exercises both keys. */
    int64_t g = s->granularity;
    int64_t from = ((s->range_start + g - 1) / g) * g;
    size_t cap = strlen(escaped) + 96;
    char *path = malloc(cap);
    if (!path) {
        free(escaped);
        return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    }
    snprintf(path, cap, "/api/v1/query?from=%" PRId64 "&to=%" PRId64 "&query=%s", from,
             from + g - 1, escaped);
    free(escaped);
    dds_body body;
    ddstream_status st = dds_http_get(http, path, 1, &body, err);
    free(path);
    if (st != DDSTREAM_OK) return st;
    dds_response r = {0};
    char msg[300];
    st = dds_parse_query_response(body.data, body.len, &r, msg, sizeof msg);
    dds_body_free(&body);
    dds_response_free(&r);
    if (st != DDSTREAM_OK) {
        dds_http_scrub(http, msg);
        return dds_error_set(err, st, "%s", msg);
    }
    return DDSTREAM_OK;
}

/* A v2 stream checks what it will send: its named queries and formulas, posted to the v2
 * endpoint over one bucket (a v1 query would pass where the v2 endpoint, its permission or a
 * formula the server refuses, would not). */
static ddstream_status check_app_key_and_v2(dds_http *http, const dds_settings *s,
                                            ddstream_error *err) {
    const dds_v2_settings *v = &s->v2;
    int64_t g = s->granularity;
    int64_t from = ((s->range_start + g - 1) / g) * g;
    char *body = NULL;
    size_t len = 0;
    ddstream_status st =
        dds_v2_body(DDS_V2_TIMESERIES, v->queries, v->query_count, (const char *const *)v->formulas,
                    v->formula_count, from * 1000, (from + g) * 1000, g * 1000, &body, &len);
    if (st != DDSTREAM_OK) return dds_error_set(err, st, "could not build the v2 request");
    dds_v2_response r;
    memset(&r, 0, sizeof r);
    st = dds_http_post_read(http, DDS_V2_TIMESERIES_PATH, body, len, dds_v2_read_timeseries, &r,
                            err);
    free(body);
    dds_v2_response_free(&r);
    if (st != DDSTREAM_OK && err) dds_http_scrub(http, err->message);
    return st;
}

/* The two checks with s's settings; cancel stops them (and is what a transfer's poll wakes on). */
static ddstream_status run_checks(const dds_settings *s, dds_cancel *cancel, ddstream_error *err) {
    dds_log log;
    dds_log_init(&log, s->log_level, s->log_fn, s->log_user, 0, s->api_key, s->app_key);
    if (s->log_to_queue && !s->log_fn) log.level = DDSTREAM_LOG_NONE; /* no stream to poll from */
    ddstream_status st;
    dds_http *http = dds_http_new(s, &log, cancel, err);
    if (!http) {
        st = err ? err->status : DDSTREAM_E_NOMEM;
    } else {
        st = check_api_key(http, err);
        if (st == DDSTREAM_OK)
            st = s->v2.enabled ? check_app_key_and_v2(http, s, err)
                               : check_app_key_and_query(http, s, err);
        dds_http_free(http);
    }
    if (st != DDSTREAM_OK && err) dds_redact_keys(err->message, s->api_key, s->app_key);
    dds_log_destroy(&log);
    return st;
}

DDSTREAM_API ddstream_status ddstream_validate(const ddstream_config *cfg, ddstream_error *err) {
    dds_settings s;
    ddstream_status st = dds_settings_load(cfg, &s, err);
    if (st != DDSTREAM_OK) return st;
    dds_cancel never;
    if (dds_cancel_init(&never) != 0) {
        dds_settings_free(&s);
        return dds_error_set(err, DDSTREAM_E_INTERNAL, "could not create a lock");
    }
    st = run_checks(&s, &never, err);
    dds_cancel_destroy(&never);
    dds_settings_free(&s);
    return st;
}

/* ---- ddstream_validate_start: the same checks on a thread of their own, so that a caller can
 * wait in slices (and handle Ctrl-C between them) and cancel them. */
struct ddstream_validation {
    pid_t owner_pid; /* as a stream's: a fork()ed child must not touch the rest */
    dds_settings s;
    dds_cancel cancel;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t done_cv; /* CLOCK_MONOTONIC */
    int done;               /* the checks have finished: status and error are final */
    ddstream_status status;
    ddstream_error error;
};

static void *validation_main(void *arg) {
    ddstream_validation *v = arg;
    ddstream_error e;
    memset(&e, 0, sizeof e);
    ddstream_status st = run_checks(&v->s, &v->cancel, &e);
    if (st == DDSTREAM_E_CANCELLED) dds_error_set(&e, st, "validation cancelled");
    pthread_mutex_lock(&v->mu);
    v->status = st;
    v->error = e;
    v->done = 1;
    pthread_cond_broadcast(&v->done_cv);
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

static int init_validation_sync(ddstream_validation *v) {
    if (dds_cancel_init(&v->cancel) != 0) return -1;
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc == 0) {
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        rc = pthread_cond_init(&v->done_cv, &attr);
        pthread_condattr_destroy(&attr);
    }
    if (rc == 0 && pthread_mutex_init(&v->mu, NULL) != 0) {
        pthread_cond_destroy(&v->done_cv);
        rc = -1;
    }
    if (rc != 0) dds_cancel_destroy(&v->cancel);
    return rc == 0 ? 0 : -1;
}

DDSTREAM_API ddstream_status ddstream_validate_start(const ddstream_config *cfg,
                                                     ddstream_validation **out,
                                                     ddstream_error *err) {
    if (!out) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    ddstream_validation *v = calloc(1, sizeof *v);
    if (!v) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory starting the validation");
    v->owner_pid = getpid();
    ddstream_status st = dds_settings_load(cfg, &v->s, err);
    if (st != DDSTREAM_OK) {
        free(v);
        return st;
    }
    if (init_validation_sync(v) != 0) {
        dds_settings_free(&v->s);
        free(v);
        return dds_error_set(err, DDSTREAM_E_INTERNAL, "could not create the validation's locks");
    }
    if (pthread_create(&v->thread, NULL, validation_main, v) != 0) {
        pthread_mutex_destroy(&v->mu);
        pthread_cond_destroy(&v->done_cv);
        dds_cancel_destroy(&v->cancel);
        dds_settings_free(&v->s);
        free(v);
        return dds_error_set(err, DDSTREAM_E_INTERNAL, "could not start the validation's thread");
    }
    *out = v;
    return DDSTREAM_OK;
}

static ddstream_status validation_forked(const ddstream_validation *v, ddstream_error *err) {
    return dds_error_set(err, DDSTREAM_E_FORKED,
                         "the validation was started in process %ld; it cannot be used after "
                         "fork(): start a new one in the child",
                         (long)v->owner_pid);
}

DDSTREAM_API ddstream_status ddstream_validate_wait(ddstream_validation *v, int64_t timeout_ms,
                                                    ddstream_error *err) {
    if (!v) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "validation is NULL");
    if (getpid() != v->owner_pid) return validation_forked(v, err);
    struct timespec until = dds_deadline_after(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&v->mu);
    while (!v->done && timeout_ms != 0) {
        if (timeout_ms < 0) pthread_cond_wait(&v->done_cv, &v->mu);
        else if (pthread_cond_timedwait(&v->done_cv, &v->mu, &until) == ETIMEDOUT) break;
    }
    ddstream_status st = v->done ? v->status : DDSTREAM_TIMEOUT;
    if (v->done && st != DDSTREAM_OK && err) *err = v->error;
    pthread_mutex_unlock(&v->mu);
    return st;
}

DDSTREAM_API void ddstream_validate_cancel(ddstream_validation *v) {
    if (!v || getpid() != v->owner_pid) return;
    dds_cancel_trigger(&v->cancel);
}

DDSTREAM_API void ddstream_validate_free(ddstream_validation *v) {
    if (!v) return;
    if (getpid() != v->owner_pid) return; /* a fork()ed child's copy: left alone, as a stream's */
    dds_cancel_trigger(&v->cancel);
    pthread_join(v->thread, NULL);
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->done_cv);
    dds_cancel_destroy(&v->cancel);
    dds_settings_free(&v->s);
    free(v);
}
