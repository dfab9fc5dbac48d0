/*
 * test_config_layout.c — the struct_size promise of ddstream_config: a program built against an
 * older ddstream passes its smaller struct and is served, with defaults for the fields it does not
 * know; a size no layout had is refused. The old layout is a real copy of ddstream 0.1.0's struct,
 * filled and passed with its own sizeof, as such a program would.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ddstream.h"

/* ddstream_config as ddstream 0.1.0 published it (include/ddstream.h at that release). */
typedef struct config_0_1_0 {
    size_t struct_size;
    const char *api_key;
    const char *app_key;
    const char *site;
    const char *base_url;
    const char *query;
    int64_t range_start;
    int64_t range_end;
    int64_t granularity;
    int64_t chunk_seconds;
    int32_t enable_prefetch;
    int32_t prefetch_chunks;
    int32_t log_level;
    int32_t log_to_queue;
    ddstream_log_fn log_fn;
    void *log_user;
    int32_t max_retries;
    int32_t allow_insecure_http;
    int64_t max_retry_wait_ms;
    int64_t connect_timeout_ms;
    int64_t request_timeout_ms;
    int64_t max_body_bytes;
    const char *ca_bundle;
    int64_t retry_backoff_ms;
    int64_t low_speed_limit;
    int64_t low_speed_time_ms;
    int64_t start_chunk;
    const char *resume_token;
    int32_t max_in_flight;
    ddstream_request_gate_fn request_gate;
    void *request_gate_data;
    void (*request_gate_release)(void *request_gate_data);
} config_0_1_0;

/* What a 0.1.0 program's ddstream_config_init gave it: the same defaults, its own size. The
 * library is asked for them through a current struct, so the two cannot drift apart. */
static config_0_1_0 old_config(int64_t range_end, int64_t granularity) {
    ddstream_config now;
    ddstream_config_init(&now);
    config_0_1_0 old;
    memcpy(&old, &now, sizeof old);
    old.struct_size = sizeof old;
    old.api_key = "0123456789abcdef0123456789abcdef";
    old.app_key = "0123456789abcdef0123456789abcdef01234567";
    old.base_url = "http://127.0.0.1:9";
    old.query = "avg:system.cpu.user{*} by {host}";
    old.range_start = 0;
    old.range_end = range_end;
    old.granularity = granularity;
    return old;
}

static size_t plan_count(const void *cfg, ddstream_status *st, ddstream_error *err) {
    size_t count = 0;
    *st = ddstream_plan((const ddstream_config *)cfg, NULL, 0, &count, err);
    return count;
}

int main(void) {
    /* The old layout is smaller (0.1.0 had neither max_chunks nor max_batch_rows). */
    CHECK(sizeof(config_0_1_0) < sizeof(ddstream_config));
    CHECK_INT(sizeof(config_0_1_0), offsetof(ddstream_config, max_chunks));

    ddstream_error err;
    ddstream_status st;

    /* Served: the fields it set are read (one day of minutes is 1440 buckets: one chunk at the
     * 1500-point cap; ten days at 60 s, ten chunks). */
    config_0_1_0 old = old_config(86400, 60);
    CHECK_INT(ddstream_config_validate((const ddstream_config *)&old, &err), DDSTREAM_OK);
    CHECK_INT(plan_count(&old, &st, &err), 1);
    CHECK_INT(st, DDSTREAM_OK);
    old = old_config(864000, 60);
    CHECK_INT(plan_count(&old, &st, &err), 10);
    CHECK_INT(st, DDSTREAM_OK);
    /* A field it set is checked as it is for a current caller. */
    old.prefetch_chunks = 0;
    CHECK_INT(ddstream_config_validate((const ddstream_config *)&old, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "prefetch_chunks");

    /* The missing tail reads as the defaults: max_chunks 1000000 refuses a plan of 1,000,001
     * chunks of 1 s and accepts one of 1,000,000 (with garbage there instead, it would not). */
    old = old_config(1000000, 1);
    old.chunk_seconds = 1;
    CHECK_INT(plan_count(&old, &st, &err), 1000000);
    CHECK_INT(st, DDSTREAM_OK);
    old.range_end = 1000001;
    plan_count(&old, &st, &err);
    CHECK_INT(st, DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "max_chunks (1000000)");

    /* The old struct is read, never written past: a guard after it stays as it was. */
    struct {
        config_0_1_0 cfg;
        unsigned char guard[64];
    } framed;
    memset(&framed, 0xA5, sizeof framed);
    framed.cfg = old_config(86400, 60);
    CHECK_INT(ddstream_config_validate((const ddstream_config *)&framed.cfg, &err), DDSTREAM_OK);
    ddstream_stream *stream = NULL;
    CHECK_INT(ddstream_open((const ddstream_config *)&framed.cfg, &stream, &err), DDSTREAM_OK);
    CHECK_INT(ddstream_chunk_count(stream), 1);
    ddstream_close(stream);
    for (size_t i = 0; i < sizeof framed.guard; i++) CHECK(framed.guard[i] == 0xA5);

    /* Every layout in between (0.1.0 plus max_chunks) and the current one are served. */
    ddstream_config now;
    ddstream_config_init(&now);
    memcpy(&now, &old, sizeof old);
    now.struct_size = offsetof(ddstream_config, max_batch_rows);
    now.max_chunks = 5;
    now.range_end = 864000; /* ten chunks: more than this max_chunks */
    plan_count(&now, &st, &err);
    CHECK_INT(st, DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "max_chunks (5)");
    now.struct_size = sizeof now;
    plan_count(&now, &st, &err);
    CHECK_INT(st, DDSTREAM_E_CONFIG);

    /* The layouts of several queries (issue 14), one field appended at a time: each is served,
     * the fields before its end are read, and what lies past it is not (garbage there would be
     * refused). Layout k ends before field k. */
    const size_t multi_ends[] = {
        offsetof(ddstream_config, queries),
        offsetof(ddstream_config, query_count),
        offsetof(ddstream_config, statistics),
        offsetof(ddstream_config, distribution_metrics),
        offsetof(ddstream_config, distribution_metric_count),
        offsetof(ddstream_config, max_subqueries_per_request),
        offsetof(ddstream_config, max_request_uri_bytes),
        sizeof(ddstream_config),
    };
    static const char *const two[] = {"avg:a{*}", "avg:b{*} by {host}"};
    for (size_t k = 0; k < sizeof multi_ends / sizeof multi_ends[0]; k++) {
        ddstream_config_init(&now);
        memcpy(&now, &old, sizeof old);
        now.range_end = 86400;
        now.struct_size = multi_ends[k];
        /* the fields inside: valid; past the end: each refused if it were read */
        now.queries = k > 0 ? NULL : two; /* with query also set */
        now.query_count = k > 1 ? 0 : 7;
        now.statistics = k > 2 ? DDSTREAM_STAT_AVG : 0xF0;
        now.distribution_metrics = NULL;
        now.distribution_metric_count = k > 4 ? 0 : 3;
        now.max_subqueries_per_request = k > 5 ? 35 : -1;
        now.max_request_uri_bytes = k > 6 ? 7000 : -1;
        CHECK_INT(ddstream_config_validate(&now, &err), DDSTREAM_OK);
    }
    /* The current layout reads each of them. */
    now.queries = two;
    CHECK_INT(ddstream_config_validate(&now, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "query and queries are both set");
    now.query = NULL;
    CHECK_INT(ddstream_config_validate(&now, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "query_count must be between 1 and");
    now.query_count = 2;
    CHECK_INT(ddstream_config_validate(&now, &err), DDSTREAM_OK);
    now.statistics = 0x10;
    CHECK_INT(ddstream_config_validate(&now, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "statistics must be a mask");
    now.statistics = 0;
    now.distribution_metric_count = 2;
    CHECK_INT(ddstream_config_validate(&now, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "distribution_metrics is NULL but distribution_metric_count is 2");
    now.distribution_metric_count = 0;
    now.max_subqueries_per_request = -1;
    CHECK_INT(ddstream_config_validate(&now, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "max_subqueries_per_request");
    now.max_subqueries_per_request = 0;
    now.max_request_uri_bytes = -1;
    CHECK_INT(ddstream_config_validate(&now, &err), DDSTREAM_E_CONFIG);
    CHECK_CONTAINS(err.message, "max_request_uri_bytes");

    /* Refused with DDSTREAM_E_INVALID_ARGUMENT: larger than this library's, smaller than 0.1.0's,
     * ending inside a field, zero. Every entry point says so. */
    const size_t bad[] = {sizeof now + 8,
                          sizeof now + 1,
                          sizeof(config_0_1_0) - 8,
                          sizeof(config_0_1_0) + 4,
                          offsetof(ddstream_config, statistics) + 4,
                          8,
                          0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        now.struct_size = bad[i];
        CHECK_INT(ddstream_config_validate(&now, &err), DDSTREAM_E_INVALID_ARGUMENT);
        CHECK_CONTAINS(err.message, "config.struct_size");
        CHECK_INT(ddstream_validate(&now, &err), DDSTREAM_E_INVALID_ARGUMENT);
        plan_count(&now, &st, &err);
        CHECK_INT(st, DDSTREAM_E_INVALID_ARGUMENT);
        stream = NULL;
        CHECK_INT(ddstream_open(&now, &stream, &err), DDSTREAM_E_INVALID_ARGUMENT);
        CHECK(stream == NULL);
    }
    CHECK_INT(ddstream_config_validate(NULL, &err), DDSTREAM_E_INVALID_ARGUMENT);
    return check_report("test_config_layout");
}
