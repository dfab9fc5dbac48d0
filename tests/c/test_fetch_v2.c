/*
 * test_fetch_v2.c — the transport's POST (dds_http_post_read) against the fake Datadog servers of
 * tests/c/with_fake_datadog.py, through real libcurl: a v2 timeseries request built by
 * v2_request.c, read by parse_v2.c and made dense by v2_grid.c, equal cell for cell to the same
 * expression fetched through v1 (GET) on the same client afterwards; a refused request (seconds
 * instead of ms: the recorded 400) reported with the server's message and no key in it; the
 * request gate asked once per POST and told how it ended; a POST in flight cancelled at once.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cancel.h"
#include "check.h"
#include "config.h"
#include "fetch.h"
#include "log.h"
#include "parse.h"
#include "parse_v2.h"
#include "scalar_v2.h"
#include "v2_grid.h"
#include "v2_request.h"

static const char *API_KEY = "test-api-key";
static const char *APP_KEY = "test-app-key";
/* 2026-11-01T04:00:00Z: two hours that hold the fake's daily 05:00-05:10 blackout. */
static const int64_t T0 = INT64_C(1793491200) + 4 * 3600;
enum { BUCKETS = 120, HOSTS = 3 };

typedef struct gate {
    atomic_int before, answered, no_answer;
} gate;

static int64_t gate_fn(void *user, const ddstream_request_info *info) {
    gate *g = user;
    if (info->phase == DDSTREAM_REQUEST_BEFORE) atomic_fetch_add(&g->before, 1);
    else if (info->phase == DDSTREAM_REQUEST_ANSWERED) atomic_fetch_add(&g->answered, 1);
    else atomic_fetch_add(&g->no_answer, 1);
    return 0;
}

typedef struct v2_read {
    dds_v2_response r;
    dds_grid_check check;
    double dense[HOSTS * BUCKETS];
    int densified;
} v2_read;

static ddstream_status read_v2(void *arg, char *data, size_t len, ddstream_error *err) {
    v2_read *v = arg;
    char msg[300];
    ddstream_status st = dds_parse_v2_timeseries(data, len, &v->r, msg, sizeof msg);
    if (st != DDSTREAM_OK) {
        snprintf(err->message, sizeof err->message, "%s", msg);
        err->status = st;
        return st;
    }
    dds_v2_grid_check(v->r.times_ms, v->r.time_count, T0 * 1000, 60000, BUCKETS, &v->check);
    if (v->r.series_count <= HOSTS) {
        st = dds_v2_densify(&v->r, T0 * 1000, 60000, BUCKETS, NULL, v->dense, msg, sizeof msg);
        v->densified = st == DDSTREAM_OK;
    }
    return st;
}

typedef struct scalar_read {
    dds_v2_scalar s;
} scalar_read;

static ddstream_status read_scalar(void *arg, char *data, size_t len, ddstream_error *err) {
    scalar_read *r = arg;
    dds_v2_scalar_free(&r->s);
    char msg[300];
    ddstream_status st = dds_parse_v2_scalar(data, len, &r->s, msg, sizeof msg);
    if (st != DDSTREAM_OK) snprintf(err->message, sizeof err->message, "%s", msg);
    return st;
}

static void *cancel_soon(void *arg) {
    dds_cancel *c = arg;
    struct timespec pause = {0, 150 * 1000 * 1000};
    nanosleep(&pause, NULL);
    dds_cancel_trigger(c);
    return NULL;
}

static ddstream_status read_v1(void *arg, char *data, size_t len, ddstream_error *err) {
    char msg[300];
    ddstream_status st = dds_parse_query_response_fast(data, len, arg, msg, sizeof msg);
    if (st != DDSTREAM_OK) snprintf(err->message, sizeof err->message, "%s", msg);
    return st;
}

int main(int argc, char **argv) {
    (void)argc;
    const char *base = getenv("DDSTREAM_BASE_URL");
    if (base == NULL) {
        fprintf(stderr, "run through with_fake_datadog.py\n");
        return 2;
    }
    gate g = {0};
    ddstream_config cfg;
    ddstream_config_init(&cfg);
    cfg.api_key = API_KEY;
    cfg.app_key = APP_KEY;
    cfg.base_url = base;
    cfg.query = "avg:a{*}";
    cfg.range_start = T0;
    cfg.range_end = T0 + BUCKETS * 60;
    cfg.granularity = 60;
    cfg.max_retries = 1;
    cfg.request_gate = gate_fn;
    cfg.request_gate_data = &g;
    ddstream_error err;
    dds_settings s;
    CHECK(dds_settings_load(&cfg, &s, &err) == DDSTREAM_OK);
    dds_log log;
    dds_log_init(&log, DDSTREAM_LOG_DEBUG, NULL, NULL, 1, s.api_key, s.app_key);
    dds_cancel cancel;
    CHECK(dds_cancel_init(&cancel) == 0);
    dds_http *h = dds_http_new(&s, &log, &cancel, &err);
    CHECK(h != NULL);

    /* A formula over two named queries, through POST. */
    dds_v2_query q[2] = {{"a", "avg:a{*} by {host}", NULL}, {"b", "avg:b{*}", NULL}};
    const char *formulas[] = {"a / b * 100"};
    char *body = NULL;
    size_t len = 0;
    CHECK(dds_v2_body(DDS_V2_TIMESERIES, q, 2, formulas, 1, T0 * 1000, (T0 + BUCKETS * 60) * 1000,
                      60000, &body, &len) == DDSTREAM_OK);
    v2_read v;
    memset(&v, 0, sizeof v);
    ddstream_status st =
        dds_http_post_read(h, "/api/v2/query/timeseries", body, len, read_v2, &v, &err);
    CHECK_MSG(st == DDSTREAM_OK, "POST: %s", err.message);
    CHECK_INT(v.r.series_count, HOSTS);
    CHECK_INT(v.r.time_count, BUCKETS - 10); /* the blackout's buckets are omitted */
    CHECK(v.check.verdict == DDS_GRID_OK);
    CHECK(v.densified);
    CHECK_INT(atomic_load(&g.before), 1);
    CHECK_INT(atomic_load(&g.answered), 1);

    /* The same expression through v1 on the same client (a GET after a POST): equal cells. */
    char *esc =
        dds_http_escape(h, "avg:a{*} by {host}.rollup(avg,60) / avg:b{*}.rollup(avg,60) * 100");
    char path[1024];
    snprintf(path, sizeof path, "/api/v1/query?from=%lld&to=%lld&query=%s", (long long)T0,
             (long long)(T0 + BUCKETS * 60 - 1), esc);
    free(esc);
    dds_response v1;
    memset(&v1, 0, sizeof v1);
    st = dds_http_get_read(h, path, 1, read_v1, &v1, &err);
    CHECK_MSG(st == DDSTREAM_OK, "GET: %s", err.message);
    CHECK_INT(v1.count, HOSTS);
    size_t compared = 0, with_value = 0;
    for (size_t k = 0; k < v1.count && k < HOSTS; k++) {
        size_t row = HOSTS;
        for (size_t j = 0; j < v.r.series_count; j++)
            if (strcmp(v.r.series[j].tags, v1.series[k].tags) == 0) row = j;
        CHECK_MSG(row < HOSTS, "v1 series %s not in the v2 answer", v1.series[k].tags);
        if (row >= HOSTS) continue;
        for (size_t p = 0; p < v1.series[k].length; p++) {
            int64_t b = (v1.series[k].ts_ms[p] / 1000 - T0) / 60;
            if (b < 0 || b >= BUCKETS) continue;
            CHECK_DBL(v.dense[row * BUCKETS + (size_t)b], v1.series[k].values[p]);
            compared++;
            with_value += !isnan(v1.series[k].values[p]);
        }
    }
    CHECK_INT(compared, HOSTS * BUCKETS);
    CHECK_INT(with_value, HOSTS * (BUCKETS - 10));
    dds_response_free(&v1);
    dds_v2_response_free(&v.r);
    free(body);

    /* Scalar: one value per host over two hours, and the same from two one-hour chunks combined
     * (scalar_v2.c) for each aggregator that splits. */
    static const char *const aggs[] = {"sum", "min", "max", "count", "last", "avg"};
    for (size_t a = 0; a < sizeof aggs / sizeof aggs[0]; a++) {
        const char *parts[2];
        size_t np = dds_scalar_parts(aggs[a], parts);
        CHECK(np > 0);
        double whole[HOSTS], partial[2 * 2 * HOSTS];
        for (int round = 0; round < 1 + 2 * (int)np; round++) {
            /* round 0: the whole range with aggs[a]; then chunk c of part k */
            int k = round ? (round - 1) / 2 : 0, c = round ? (round - 1) % 2 : 0;
            int64_t from = round ? T0 + c * 3600 : T0, to = round ? from + 3600 : T0 + 7200;
            dds_v2_query sq[1] = {{"a", "avg:a{*} by {host}", round ? parts[k] : aggs[a]}};
            CHECK(dds_v2_body(DDS_V2_SCALAR, sq, 1, NULL, 0, from * 1000, to * 1000, 0, &body,
                              &len) == DDSTREAM_OK);
            scalar_read sr;
            memset(&sr, 0, sizeof sr);
            st = dds_http_post_read(h, "/api/v2/query/scalar", body, len, read_scalar, &sr, &err);
            free(body);
            CHECK_MSG(st == DDSTREAM_OK, "scalar: %s", err.message);
            CHECK_INT(sr.s.group_count, HOSTS);
            CHECK_INT(sr.s.column_count, 1);
            for (size_t g = 0; g < sr.s.group_count && g < HOSTS; g++) {
                if (round == 0) whole[g] = sr.s.values[g];
                else partial[(size_t)k * 2 * HOSTS + g * 2 + (size_t)c] = sr.s.values[g];
            }
            dds_v2_scalar_free(&sr.s);
        }
        for (size_t g = 0; g < HOSTS; g++) {
            double per[4];
            for (size_t k = 0; k < np; k++)
                for (size_t c = 0; c < 2; c++) per[k * 2 + c] = partial[k * 2 * HOSTS + g * 2 + c];
            double got = dds_scalar_combine(aggs[a], per, 2);
            CHECK_MSG(fabs(got - whole[g]) <= 1e-12 * fabs(whole[g]),
                      "%s host %zu: %.17g, whole %.17g", aggs[a], g, got, whole[g]);
        }
    }

    /* Seconds where ms are due: Datadog's recorded 400, its message, no retry, no key. */
    CHECK(dds_v2_body(DDS_V2_TIMESERIES, q, 2, formulas, 1, T0, T0 + BUCKETS * 60, 60000, &body,
                      &len) == DDSTREAM_OK);
    memset(&v, 0, sizeof v);
    int before = atomic_load(&g.before);
    st = dds_http_post_read(h, "/api/v2/query/timeseries", body, len, read_v2, &v, &err);
    CHECK(st != DDSTREAM_OK);
    CHECK_INT(err.http_status, 400);
    CHECK_CONTAINS(err.message, "Queries before 2010 are invalid");
    CHECK(strstr(err.message, API_KEY) == NULL && strstr(err.message, APP_KEY) == NULL);
    CHECK_INT(atomic_load(&g.before), before + 1);
    dds_v2_response_free(&v.r);
    free(body);

    /* Cancel interrupts a POST in flight: the slow server answers after 2 s. */
    cfg.base_url = getenv("DDSTREAM_SLOW_URL");
    dds_settings slow;
    CHECK(dds_settings_load(&cfg, &slow, &err) == DDSTREAM_OK);
    dds_cancel slow_cancel;
    CHECK(dds_cancel_init(&slow_cancel) == 0);
    dds_http *hs = dds_http_new(&slow, &log, &slow_cancel, &err);
    CHECK(hs != NULL);
    CHECK(dds_v2_body(DDS_V2_TIMESERIES, q, 2, formulas, 1, T0 * 1000, (T0 + BUCKETS * 60) * 1000,
                      60000, &body, &len) == DDSTREAM_OK);
    pthread_t canceller;
    CHECK(pthread_create(&canceller, NULL, cancel_soon, &slow_cancel) == 0);
    memset(&v, 0, sizeof v);
    int64_t t0 = dds_now_ms();
    st = dds_http_post_read(hs, "/api/v2/query/timeseries", body, len, read_v2, &v, &err);
    int64_t took = dds_now_ms() - t0;
    pthread_join(canceller, NULL);
    CHECK_INT(st, DDSTREAM_E_CANCELLED);
    CHECK_MSG(took < 1500, "cancel took %lld ms", (long long)took);
    dds_v2_response_free(&v.r);
    free(body);
    dds_http_free(hs);
    dds_cancel_destroy(&slow_cancel);
    dds_settings_free(&slow);

    /* No line of the log holds a key. */
    int32_t level;
    char line[1024];
    int lines = 0, posts = 0;
    while (dds_log_pop(&log, &level, line, sizeof line)) {
        lines++;
        posts += strstr(line, "POST ") != NULL;
        CHECK(strstr(line, API_KEY) == NULL && strstr(line, APP_KEY) == NULL);
    }
    CHECK(lines > 0);
    CHECK(posts >= 2);

    dds_http_free(h);
    dds_cancel_destroy(&cancel);
    dds_log_destroy(&log);
    dds_settings_free(&s);
    return check_report(argv[0]);
}
