/*
 * v2_driver.c — ddstream's side of the v2 benchmark (bench/v2.py): one stream read with nothing
 * but libddstream, through v1 (one expression, four statistics) or v2 (named queries and a
 * formula), printing one JSON line: requests are counted by the server, this prints wall time,
 * CPU time, peak RSS, points (values delivered) and their sum.
 *
 *   v2_driver BASE_URL API(v1|v2) RANGE_START RANGE_END GRANULARITY CHUNK_SECONDS
 *             V1_EXPRESSION NAME=QUERY... FORMULA
 *
 * Keys from DD_API_KEY / DD_APP_KEY. v1 reads V1_EXPRESSION; v2 reads the NAME=QUERY pairs and
 * FORMULA. Built on demand (meson target bench_v2_driver).
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

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec / 1e6;
}

static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

int main(int argc, char **argv) {
    if (argc < 10) {
        fprintf(stderr, "usage: v2_driver BASE_URL v1|v2 START END G CHUNK V1_EXPR NAME=Q... F\n");
        return 2;
    }
    int v2 = strcmp(argv[2], "v2") == 0;
    size_t nq = (size_t)argc - 9;
    const char **names = calloc(nq, sizeof *names), **queries = calloc(nq, sizeof *queries);
    for (size_t k = 0; k < nq; k++) {
        char *eq = strchr(argv[8 + k], '=');
        if (!eq) return 2;
        *eq = 0;
        names[k] = argv[8 + k];
        queries[k] = eq + 1;
    }
    const char *formula = argv[argc - 1];
    ddstream_config cfg;
    ddstream_config_init(&cfg);
    cfg.base_url = argv[1];
    cfg.range_start = strtoll(argv[3], NULL, 10);
    cfg.range_end = strtoll(argv[4], NULL, 10);
    cfg.granularity = strtoll(argv[5], NULL, 10);
    cfg.chunk_seconds = strtoll(argv[6], NULL, 10);
    if (v2) {
        cfg.queries = queries;
        cfg.query_count = nq;
        cfg.query_names = names;
        cfg.formulas = &formula;
        cfg.formula_count = 1;
    } else {
        cfg.query = argv[7];
    }
    /* libcurl's one-time global set-up (OpenSSL's initialisation: about 2 ms) happens in the
     * first open: paid before the clock starts, as bench/c_driver.c does and as the Python
     * clients pay for their imports (the official client's TLS stack included). Without prefetch
     * nothing is fetched. */
    ddstream_config warm = cfg;
    warm.enable_prefetch = 0;
    ddstream_stream *warm_stream = NULL;
    if (ddstream_open(&warm, &warm_stream, NULL) == DDSTREAM_OK) ddstream_close(warm_stream);
    double w0 = wall(), c0 = cpu();
    ddstream_stream *stream = NULL;
    ddstream_error err;
    uint64_t points = 0, nonnull = 0;
    double sum = 0;
    ddstream_status st = ddstream_open(&cfg, &stream, &err);
    if (st == DDSTREAM_OK) {
        ddstream_batch *b = NULL;
        while ((st = ddstream_next(stream, -1, &b, &err)) == DDSTREAM_OK) {
            /* v1: the four statistics of each bucket; v2: the formula's one value. */
            const double *cols[4] = {b->avg, b->min, b->max, b->sum};
            if (v2) cols[0] = b->value;
            for (int c = 0; c < (v2 ? 1 : 4); c++) {
                for (size_t r = 0; r < b->length; r++) {
                    points++;
                    if (!isnan(cols[c][r])) {
                        nonnull++;
                        sum += cols[c][r];
                    }
                }
            }
            ddstream_batch_free(b);
        }
        ddstream_close(stream);
    }
    double w = wall() - w0, c = cpu() - c0;
    printf(
        "{\"client\": \"ddstream-c %s\", \"ok\": %s, \"error\": \"%s\", \"wall_s\": %.3f, "
        "\"cpu_s\": %.3f, \"peak_rss_kb\": %ld, \"points\": %" PRIu64 ", \"nonnull\": %" PRIu64
        ", \"sum\": %.6f}\n",
        v2 ? "v2" : "v1", st == DDSTREAM_END ? "true" : "false",
        st == DDSTREAM_END ? "" : err.message, w, c, peak_rss_kb(), points, nonnull, sum);
    free(names);
    free(queries);
    return st == DDSTREAM_END ? 0 : 1;
}
