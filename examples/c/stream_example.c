/*
 * stream_example.c — stream a metric from Datadog (or any server speaking its API) with libddstream.
 *
 *   cc stream_example.c $(pkg-config --cflags --libs ddstream) -o stream_example
 *   DD_API_KEY=... DD_APP_KEY=... ./stream_example 'avg:system.cpu.user{*}' 86400 60
 *
 * Arguments: query, seconds back from now (default one day), granularity (default 60). Keys come
 * from DD_API_KEY / DD_APP_KEY, the site from DD_SITE, and DDSTREAM_BASE_URL points at a proxy or
 * a fake server. Prints one line per batch and a summary; exits 1 on error.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ddstream.h"

int main(int argc, char **argv) {
    if (ddstream_version_int() != DDSTREAM_VERSION_INT) {
        fprintf(stderr, "libddstream %s does not match this header\n", ddstream_version());
        return 1;
    }
    const char *query = argc > 1 ? argv[1] : "avg:system.cpu.user{*}";
    long long back = argc > 2 ? atoll(argv[2]) : 86400;
    long long granularity = argc > 3 ? atoll(argv[3]) : 60;

    ddstream_config cfg;
    ddstream_config_init(&cfg);
    cfg.query = query;
    cfg.range_end = (int64_t)time(NULL);
    cfg.range_start = cfg.range_end - back;
    cfg.granularity = granularity;

    ddstream_error err;
    ddstream_stream *stream = NULL;
    if (ddstream_open(&cfg, &stream, &err) != DDSTREAM_OK) {
        fprintf(stderr, "error: %s: %s\n", ddstream_status_str(err.status), err.message);
        return 1;
    }
    size_t rows = 0, batches = 0, nulls = 0;
    double total = 0.0;
    ddstream_batch *batch;
    ddstream_status st;
    while ((st = ddstream_next(stream, -1, &batch, &err)) == DDSTREAM_OK) {
        for (size_t i = 0; i < batch->length; i++) {
            if (isnan(batch->avg[i])) nulls++;
            else total += batch->avg[i];
        }
        printf("chunk %zu/%zu [%" PRId64 ", %" PRId64 ") rows=%zu series=%zu progress=%.0f%%\n",
               batch->chunk_index + 1, batch->chunk_count, batch->chunk_start_ms / 1000,
               batch->chunk_end_ms / 1000, batch->length, batch->series_count,
               100.0 * ddstream_progress(stream));
        rows += batch->length;
        batches++;
        ddstream_batch_free(batch);
    }
    int failed = st != DDSTREAM_END;
    if (failed) fprintf(stderr, "error: %s: %s\n", ddstream_status_str(st), err.message);
    else
        printf("done: %zu batches, %zu rows, %zu without a value, mean avg %.6g\n", batches, rows,
               nulls, rows > nulls ? total / (double)(rows - nulls) : 0.0);
    ddstream_close(stream);
    return failed;
}
