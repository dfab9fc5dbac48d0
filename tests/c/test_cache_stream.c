/*
 * test_cache_stream.c — the chunk cache through a whole stream, against the fake server whose
 * answers take 2 s (DDSTREAM_SLOW_URL, see with_fake_datadog.py): the first stream fetches and
 * stores every chunk; a second one over the same range reads them from the folder, far faster
 * than one answer of that server, and hands out the same batches; a stream with another API key
 * is answered by the server, not from the first key's entries. The same for a stream of formulas
 * (v2's POSTs): stored, read back without the server, and kept apart from the v1 stream's entries
 * over the same metric. Under the sanitizers and valgrind this also covers the stream's own use of
 * the cache (open, the cached read, close) for leaks and bad accesses.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ddstream.h"

static const char *API_KEY = "test-api-key";
static const char *APP_KEY = "test-app-key";
static const int64_t DAY0 = INT64_C(1793491200); /* 2026-11-01T00:00:00Z */

typedef struct summary {
    size_t batches, rows, series;
    double sum;
    uint64_t tags_hash;
    ddstream_status end;
} summary;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const V2_QUERIES[] = {"avg:system.cpu.user{*} by {host}",
                                         "avg:system.load.1{*}"};
static const char *const V2_NAMES[] = {"a", "b"};
static const char *const V2_FORMULAS[] = {"a / b * 100"};

/* v2: the formula a / b * 100 over the v1 query and another (its `value` summed). */
static summary run(const char *url, const char *api_key, const char *dir, int v2, double *seconds) {
    ddstream_config cfg;
    ddstream_config_init(&cfg);
    cfg.api_key = api_key;
    cfg.app_key = APP_KEY;
    cfg.base_url = url;
    if (v2) {
        cfg.queries = V2_QUERIES;
        cfg.query_count = 2;
        cfg.query_names = V2_NAMES;
        cfg.formulas = V2_FORMULAS;
        cfg.formula_count = 1;
    } else {
        cfg.query = V2_QUERIES[0];
    }
    cfg.range_start = DAY0;
    cfg.range_end = DAY0 + 3 * 3600;
    cfg.chunk_seconds = 3600;
    cfg.max_in_flight = 4;
    cfg.prefetch_chunks = 4;
    cfg.cache_dir = dir;
    summary r = {0, 0, 0, 0.0, 1469598103934665603u, DDSTREAM_OK};
    ddstream_stream *s = NULL;
    ddstream_error err;
    double t0 = now_s();
    if (ddstream_open(&cfg, &s, &err) != DDSTREAM_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        r.end = err.status;
        return r;
    }
    ddstream_batch *b;
    while ((r.end = ddstream_next(s, -1, &b, &err)) == DDSTREAM_OK) {
        r.batches++;
        r.rows += b->length;
        r.series += b->series_count;
        const double *v = v2 ? b->value : b->avg;
        for (size_t i = 0; i < b->length; i++)
            if (!isnan(v[i])) r.sum += v[i] * (double)(b->timestamps[i] % 977);
        for (size_t i = 0; i < b->series_count; i++)
            for (const char *p = b->series_tags[i]; *p; p++)
                r.tags_hash = (r.tags_hash ^ (uint8_t)*p) * 1099511628211u;
        ddstream_batch_free(b);
    }
    ddstream_close(s);
    *seconds = now_s() - t0;
    return r;
}

int main(void) {
    const char *slow = getenv("DDSTREAM_SLOW_URL");
    if (!slow) {
        fprintf(stderr, "run me through with_fake_datadog.py\n");
        return 1;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/ddstream-test-cache-stream-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    double first_s = 0, second_s = 0, other_s = 0;
    summary first = run(slow, API_KEY, dir, 0, &first_s);
    CHECK_INT(first.end, DDSTREAM_END);
    CHECK_INT(first.batches, 3);
    CHECK(first.rows > 0 && first.series > 0);
    CHECK_MSG(first_s >= 1.9, "the first run took %.2f s: it cannot have waited for the server",
              first_s);
    int64_t entries = 0, bytes = 0;
    CHECK_INT(ddstream_cache_prune(dir, -1, &entries, &bytes, NULL), DDSTREAM_OK);
    CHECK_INT(entries, 3);

    summary second = run(slow, API_KEY, dir, 0, &second_s);
    CHECK_INT(second.end, DDSTREAM_END);
    CHECK_MSG(second_s < 1.0, "the second run took %.2f s: not served from the cache", second_s);
    CHECK_INT(second.batches, first.batches);
    CHECK_INT(second.rows, first.rows);
    CHECK_INT(second.series, first.series);
    CHECK(second.sum == first.sum);
    CHECK(second.tags_hash == first.tags_hash);

    /* Another API key (one this server refuses): the same requests go to the server, which
     * says no, rather than being answered from the first key's entries. */
    summary other = run(slow, "test-api-key-2", dir, 0, &other_s);
    CHECK_INT(other.end, DDSTREAM_E_AUTH);
    CHECK_INT(other.batches, 0);
    CHECK_INT(ddstream_cache_prune(dir, -1, &entries, &bytes, NULL), DDSTREAM_OK);
    CHECK_INT(entries, 3);

    /* Formulas over the same metric: their POSTs are entries of their own (3 more), fetched
     * from the server the first time, read back without it the second. */
    double v2_first_s = 0, v2_second_s = 0;
    summary v2_first = run(slow, API_KEY, dir, 1, &v2_first_s);
    CHECK_INT(v2_first.end, DDSTREAM_END);
    CHECK_INT(v2_first.batches, 3);
    CHECK(v2_first.rows > 0 && v2_first.series > 0 && v2_first.sum > 0);
    CHECK_MSG(v2_first_s >= 1.9, "the first v2 run took %.2f s: answered from v1's entries?",
              v2_first_s);
    CHECK_INT(ddstream_cache_prune(dir, -1, &entries, &bytes, NULL), DDSTREAM_OK);
    CHECK_INT(entries, 6);
    summary v2_second = run(slow, API_KEY, dir, 1, &v2_second_s);
    CHECK_INT(v2_second.end, DDSTREAM_END);
    CHECK_MSG(v2_second_s < 1.0, "the second v2 run took %.2f s: not served from the cache",
              v2_second_s);
    CHECK_INT(v2_second.batches, v2_first.batches);
    CHECK_INT(v2_second.rows, v2_first.rows);
    CHECK_INT(v2_second.series, v2_first.series);
    CHECK(v2_second.sum == v2_first.sum);
    CHECK(v2_second.tags_hash == v2_first.tags_hash);

    CHECK_INT(ddstream_cache_prune(dir, 0, &entries, &bytes, NULL), DDSTREAM_OK);
    CHECK_INT(entries, 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
    return check_report("test_cache_stream");
}
