/*
 * c_driver.c — the raw C path of the benchmark: a stream read with nothing but libddstream.
 *
 * Compiled by the harness against the header and the shared library the Python package uses, so
 * that "ddstream" (Python) and "ddstream-c" differ only by the Python binding. Speaks the same
 * protocol as bench/client.py: prints {"ready":...}, waits for a "go" line on stdin, streams, and
 * prints one {"result":...} line with the same figures and the same tally (points, non-null
 * values, their sum, the sum of timestamps), so the harness checks it delivered the same data.
 *
 *   c_driver BASE_URL QUERY RANGE_START RANGE_END GRANULARITY CHUNK_SECONDS LIGHT
 *
 * Keys come from DD_API_KEY / DD_APP_KEY. LIGHT=1 only counts rows (the per-batch overhead
 * figure); LIGHT=0 computes the full tally, as every benchmark client does.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ddstream.h"

static double seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

/* Peak RSS since exec, in kB (VmHWM). Not ru_maxrss: across the exec that started this program
 * the kernel carries over the high-water mark of the (much larger) process that forked it. */
static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    if (f) fclose(f);
    if (kb < 0) {
        struct rusage usage;
        getrusage(RUSAGE_SELF, &usage);
        kb = usage.ru_maxrss;
    }
    return kb;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s BASE_URL QUERY START END GRANULARITY CHUNK_SECONDS LIGHT\n",
                argv[0]);
        return 2;
    }
    if (ddstream_version_int() != DDSTREAM_VERSION_INT) {
        fprintf(stderr, "libddstream %s does not match this header\n", ddstream_version());
        return 2;
    }
    ddstream_config cfg;
    ddstream_config_init(&cfg);
    cfg.base_url = argv[1];
    cfg.query = argv[2];
    cfg.range_start = strtoll(argv[3], NULL, 10);
    cfg.range_end = strtoll(argv[4], NULL, 10);
    cfg.granularity = strtoll(argv[5], NULL, 10);
    cfg.chunk_seconds = strtoll(argv[6], NULL, 10);
    int light = atoi(argv[7]);

    /* libcurl's one-time global set-up happens in the first open: pay it before "ready", as the
     * Python clients pay for their imports. Without prefetch nothing is fetched. */
    ddstream_config warm = cfg;
    warm.enable_prefetch = 0;
    ddstream_stream *warm_stream = NULL;
    if (ddstream_open(&warm, &warm_stream, NULL) == DDSTREAM_OK) ddstream_close(warm_stream);

    long ready_rss_kb = peak_rss_kb();
    printf("{\"ready\": {\"rss_kb\": %ld}}\n", ready_rss_kb);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin) || strncmp(line, "go", 2) != 0) return 2;

    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    double thread0 = seconds(CLOCK_THREAD_CPUTIME_ID);
    double t0 = seconds(CLOCK_MONOTONIC);

    uint64_t batches = 0, points = 0, nonnull = 0;
    int64_t ts_sum = 0;
    double value_sum = 0.0;
    ddstream_error err;
    memset(&err, 0, sizeof err);
    ddstream_stream *stream = NULL;
    ddstream_status st = ddstream_open(&cfg, &stream, &err);
    if (st == DDSTREAM_OK) {
        ddstream_batch *b;
        while ((st = ddstream_next(stream, -1, &b, &err)) == DDSTREAM_OK) {
            batches++;
            points += 4 * (uint64_t)b->length;
            if (!light) {
                const double *cols[4] = {b->avg, b->min, b->max, b->sum};
                for (int c = 0; c < 4; c++) {
                    double s = 0.0;
                    for (size_t i = 0; i < b->length; i++) {
                        if (!isnan(cols[c][i])) {
                            s += cols[c][i];
                            ts_sum += b->timestamps[i];
                            nonnull++;
                        }
                    }
                    value_sum += s;
                }
            }
            ddstream_batch_free(b);
        }
        ddstream_close(stream);
    }
    double wall = seconds(CLOCK_MONOTONIC) - t0;
    double thread_cpu = seconds(CLOCK_THREAD_CPUTIME_ID) - thread0;
    getrusage(RUSAGE_SELF, &after);
    double user = tv(after.ru_utime) - tv(before.ru_utime);
    double sys = tv(after.ru_stime) - tv(before.ru_stime);
    int failed = st != DDSTREAM_END;
    if (failed) fprintf(stderr, "c_driver: %s: %s\n", ddstream_status_str(st), err.message);
    /* The error text is not JSON-escaped: say only that it failed (the message went to stderr). */
    printf(
        "{\"result\": {\"wall_s\": %.9f, \"cpu_user_s\": %.9f, \"cpu_sys_s\": %.9f, "
        "\"cpu_s\": %.9f, \"consumer_thread_cpu_s\": %.9f, \"ready_rss_kb\": %ld, "
        "\"peak_rss_kb\": %ld, "
        "\"error\": %s, \"batches\": %" PRIu64 ", \"points\": %" PRIu64 ", \"nonnull\": %" PRIu64
        ", \"value_sum\": %.17g, \"ts_sum\": %" PRId64 "}}\n",
        wall, user, sys, user + sys, thread_cpu, ready_rss_kb, peak_rss_kb(),
        failed ? "\"see stderr\"" : "null", batches, points, nonnull, value_sum, ts_sum);
    fflush(stdout);
    return failed;
}
