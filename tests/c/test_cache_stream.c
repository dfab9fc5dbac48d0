/*
 * test_cache_stream.c — the chunk cache through a whole stream, against the fake server whose
 * answers take 2 s (DDSTREAM_SLOW_URL, see with_fake_datadog.py): the first stream fetches and
 * stores every chunk; a second one over the same range reads them from the folder, far faster
 * than one answer of that server, and hands out the same batches; a stream with another API key
 * is answered by the server, not from the first key's entries. Under the sanitizers and valgrind this also covers the stream's own use of
 * the cache (open, the cached get-read, close) for leaks and bad accesses.
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

static summary run(const char *url, const char *api_key, const char *dir, double *seconds) {
    ddstream_config cfg;
    ddstream_config_init(&cfg);
    cfg.api_key = api_key;
    cfg.app_key = APP_KEY;
    cfg.base_url = url;
    cfg.query = "avg:system.cpu.user{*} by {host}";
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
        for (size_t i = 0; i < b->length; i++)
            if (!isnan(b->avg[i])) r.sum += b->avg[i] * (double)(b->timestamps[i] % 977);
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
    summary first = run(slow, API_KEY, dir, &first_s);
    CHECK_INT(first.end, DDSTREAM_END);
    CHECK_INT(first.batches, 3);
    CHECK(first.rows > 0 && first.series > 0);
    CHECK_MSG(first_s >= 1.9, "the first run took %.2f s: it cannot have waited for the server",
              first_s);
    int64_t entries = 0, bytes = 0;
    CHECK_INT(ddstream_cache_prune(dir, -1, &entries, &bytes, NULL), DDSTREAM_OK);
    CHECK_INT(entries, 3);

    summary second = run(slow, API_KEY, dir, &second_s);
    CHECK_INT(second.end, DDSTREAM_END);
    CHECK_MSG(second_s < 1.0, "the second run took %.2f s: not served from the cache", second_s);
    CHECK_INT(second.batches, first.batches);
    CHECK_INT(second.rows, first.rows);
    CHECK_INT(second.series, first.series);
    CHECK(second.sum == first.sum);
    CHECK(second.tags_hash == first.tags_hash);

    /* Another API key (one this server refuses): the same requests go to the server, which
     * says no, rather than being answered from the first key's entries. */
    summary other = run(slow, "test-api-key-2", dir, &other_s);
    CHECK_INT(other.end, DDSTREAM_E_AUTH);
    CHECK_INT(other.batches, 0);
    CHECK_INT(ddstream_cache_prune(dir, -1, &entries, &bytes, NULL), DDSTREAM_OK);
    CHECK_INT(entries, 3);

    CHECK_INT(ddstream_cache_prune(dir, 0, &entries, &bytes, NULL), DDSTREAM_OK);
    CHECK_INT(entries, 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
    return check_report("test_cache_stream");
}
