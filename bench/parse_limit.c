/*
 * parse_limit.c — the C side of the benchmark's physical-limit table: one answer body, timed
 * alone in three ways, each the best of REPEAT runs on a warm cache, in CPU seconds.
 *
 *   parse_limit BODY_JSON REPEAT
 *
 * - memchr: a plain scan of the body for every ']' (one per point and a few more): the floor of
 *   anything that reads every byte;
 * - ddstream: dds_parse_query_response_fast, the library's parse of a decompressed answer (the
 *   pointlist scanner, number_parse.c, cJSON on the envelope), into the arrays assemble.c reads;
 * - scan: dds_fast_pointlists_scan alone (the pointlists, without the envelope's cJSON tree).
 * Compiled by bench/limits.py from the library's own sources with the library's optimization, so
 * the figures are the shipped code's. Prints one JSON line: seconds, bytes and points.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse.h"
#include "pointlist.h"

/* CPU time of this thread: on a shared machine, wall time would time the other processes too
 * (bench/limits.py times the Python side the same way). */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long size = ftell(f);
    rewind(f);
    char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

/* Keeps a result alive, so the compiler cannot drop the work that made it. */
static volatile size_t sink;

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: parse_limit BODY_JSON REPEAT\n");
        return 2;
    }
    size_t len = 0;
    char *body = read_file(argv[1], &len);
    int repeat = atoi(argv[2]);
    if (body == NULL || repeat < 1) {
        fprintf(stderr, "parse_limit: cannot read %s\n", argv[1]);
        return 1;
    }
    double best_memchr = 1e300, best_parse = 1e300, best_scan = 1e300;
    size_t points = 0, brackets = 0;
    char msg[512];
    for (int r = 0; r < repeat; r++) {
        double t0 = now();
        size_t count = 0;
        const char *p = body, *end = body + len;
        while ((p = memchr(p, ']', (size_t)(end - p))) != NULL) {
            count++;
            p++;
        }
        double t1 = now();
        brackets = count;
        sink = count;
        if (t1 - t0 < best_memchr) best_memchr = t1 - t0;

        dds_response resp = {0};
        t0 = now();
        ddstream_status st = dds_parse_query_response_fast(body, len, &resp, msg, sizeof msg);
        t1 = now();
        if (st != DDSTREAM_OK) {
            fprintf(stderr, "parse_limit: the body does not parse: %s\n", msg);
            return 1;
        }
        points = 0;
        for (size_t k = 0; k < resp.count; k++) points += resp.series[k].length;
        dds_response_free(&resp);
        if (t1 - t0 < best_parse) best_parse = t1 - t0;

        dds_fast_pointlists pl;
        t0 = now();
        int sr = dds_fast_pointlists_scan(body, len, &pl);
        t1 = now();
        sink = pl.count;
        dds_fast_pointlists_free(&pl);
        if (sr != 0) return 1;
        if (t1 - t0 < best_scan) best_scan = t1 - t0;
    }
    printf(
        "{\"body_bytes\": %zu, \"points\": %zu, \"brackets\": %zu, \"memchr_s\": %.9f, "
        "\"ddstream_parse_s\": %.9f, \"pointlist_scan_s\": %.9f, \"repeat\": %d}\n",
        len, points, brackets, best_memchr, best_parse, best_scan, repeat);
    free(body);
    return 0;
}
