/*
 * test_pointlist.c — the fast pointlist path gives exactly what the general (cJSON) path gives.
 *
 * dds_parse_query_response_fast must agree with dds_parse_query_response on every input:
 * the same status, the same message, the same series bit for bit (NaN where null). Compared on
 * every fixture, on synthetic answers with every number shape JSON allows, and on thousands of
 * deterministic byte mutations of those (where the fast path must step aside, not differ).
 */
#include <inttypes.h>
#include <stdint.h>

#include "check.h"
#include "parse.h"
#include "pointlist.h"

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;
static uint64_t next_rand(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static int same_double(double a, double b) {
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/* Set by agree(): whether the fast path took any pointlist of the last input. */
static int fast_path_used;

/* Compare both paths on body; returns 1 if they agree. what names the input in failures. */
static int agree(const char *body, size_t len, const char *what) {
    dds_response slow = {0}, fast = {0};
    char slow_msg[512] = "", fast_msg[512] = "";
    ddstream_status s1 = dds_parse_query_response(body, len, &slow, slow_msg, sizeof slow_msg);
    char *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, body, len);
    ddstream_status s2 = dds_parse_query_response_fast(copy, len, &fast, fast_msg, sizeof fast_msg);
    CHECK(len == 0 || memcmp(copy, body, len) == 0); /* the body is read, never written */
    free(copy);
    dds_fast_pointlists items;
    CHECK_INT(dds_fast_pointlists_scan(body, len, &items), 0);
    fast_path_used = items.count > 0;
    dds_fast_pointlists_free(&items);
    int ok = s1 == s2;
    if (ok && s1 != DDSTREAM_OK) ok = strcmp(slow_msg, fast_msg) == 0;
    if (ok && s1 == DDSTREAM_OK) {
        ok = slow.count == fast.count;
        for (size_t i = 0; ok && i < slow.count; i++) {
            const dds_series *a = &slow.series[i], *b = &fast.series[i];
            ok = a->query_index == b->query_index && a->interval == b->interval &&
                 a->length == b->length && strcmp(a->tags, b->tags) == 0;
            for (size_t j = 0; ok && j < a->length; j++)
                ok = a->ts_ms[j] == b->ts_ms[j] && same_double(a->values[j], b->values[j]);
        }
    }
    check_count++;
    if (!ok)
        CHECK_FAIL_("%s: general path %d \"%s\", fast path %d \"%s\"", what, (int)s1, slow_msg,
                    (int)s2, fast_msg);
    dds_response_free(&slow);
    dds_response_free(&fast);
    return ok;
}

/* A value in one of the many textual shapes Datadog (or a proxy) might write. */
static int write_value(char *out, size_t cap) {
    double v = (double)(int64_t)(next_rand() % 2000001) / 1000.0 - 1000.0;
    switch (next_rand() % 12) {
    case 0: return snprintf(out, cap, "null");
    case 1: return snprintf(out, cap, "%.17g", v);
    case 2: return snprintf(out, cap, "%.3f", v);
    case 3: return snprintf(out, cap, "%.6e", v);
    case 4: return snprintf(out, cap, "%.25f", v);         /* more digits than 19 */
    case 5: return snprintf(out, cap, "%.17g", v * 1e-30); /* beyond the exact powers of ten */
    case 6: return snprintf(out, cap, "%.17g", v * 1e300);
    case 7: return snprintf(out, cap, "0.000%d", (int)(next_rand() % 1000));
    case 8: return snprintf(out, cap, "-0");
    case 9: return snprintf(out, cap, "%" PRId64, (int64_t)(next_rand() >> 11));
    case 10: return snprintf(out, cap, "1E%d", (int)(next_rand() % 40) - 20);
    default: return snprintf(out, cap, "%.1f", v);
    }
}

/* A synthetic answer: several series, timestamps as ints or floats, values of every shape. */
static char *synthetic_body(size_t *len) {
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap);
    n += (size_t)snprintf(b + n, cap - n,
                          "{\"status\":\"ok\",\"res_type\":\"time_series\",\"series\":[");
    int series = 1 + (int)(next_rand() % 6);
    for (int s = 0; s < series; s++) {
        n += (size_t)snprintf(b + n, cap - n,
                              "%s{\"metric\":\"m\",\"query_index\":%d,\"tag_set\":[\"host:h%d\"],"
                              "\"interval\":60,\"pointlist\":[",
                              s ? "," : "", s % 4, s);
        int points = (int)(next_rand() % 300);
        for (int p = 0; p < points && n < cap - 256; p++) {
            int64_t ts = INT64_C(1700000000000) + (int64_t)p * 60000;
            n += (size_t)snprintf(b + n, cap - n, p ? ", [" : "[");
            n += (size_t)snprintf(b + n, cap - n,
                                  next_rand() % 2 ? "%" PRId64 ".0," : "%" PRId64 ",", ts);
            n += (size_t)write_value(b + n, cap - n);
            n += (size_t)snprintf(b + n, cap - n, "]");
        }
        n += (size_t)snprintf(b + n, cap - n, "],\"length\":%d}", points);
    }
    n += (size_t)snprintf(b + n, cap - n, "]}");
    *len = n;
    return b;
}

static void mutate_and_compare(const char *body, size_t len, int rounds, const char *what) {
    char *m = malloc(len);
    static const char alphabet[] = "[]{},:\"-+.0123456789eEnul \\";
    for (int r = 0; r < rounds; r++) {
        memcpy(m, body, len);
        int edits = 1 + (int)(next_rand() % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(next_rand() % len);
            m[at] =
                next_rand() % 4 ? alphabet[next_rand() % (sizeof alphabet - 1)] : (char)next_rand();
        }
        size_t cut = next_rand() % 8 == 0 ? (size_t)(next_rand() % len) : len;
        if (!agree(m, cut, what)) break; /* one report per input is enough */
    }
    free(m);
}

/* Series of the given lengths with Datadog's number text (integer-ms timestamps, full-precision
 * values): the arrays are sized from the previous pointlist's length, so a longer one must grow
 * past it and a much shorter one give memory back, with every point still read. */
static char *lengths_body(const int *lengths, int series, size_t *len) {
    size_t cap = 64, n = 0;
    for (int s = 0; s < series; s++) cap += 128 + (size_t)lengths[s] * 48;
    char *b = malloc(cap);
    n += (size_t)snprintf(b + n, cap - n, "{\"status\":\"ok\",\"series\":[");
    for (int s = 0; s < series; s++) {
        n += (size_t)snprintf(b + n, cap - n,
                              "%s{\"query_index\":0,\"tag_set\":[\"host:h%d\"],\"interval\":60,"
                              "\"pointlist\":[",
                              s ? "," : "", s);
        for (int p = 0; p < lengths[s]; p++) {
            double v = (double)(next_rand() >> 11) / 9007199254740992.0 * 100.0;
            n += (size_t)snprintf(b + n, cap - n, "%s[%" PRId64 ",%.17g]", p ? "," : "",
                                  INT64_C(1700000000000) + (int64_t)p * 60000, v);
        }
        n += (size_t)snprintf(b + n, cap - n, "]}");
    }
    n += (size_t)snprintf(b + n, cap - n, "]}");
    *len = n;
    return b;
}

int main(int argc, char **argv) {
    (void)argc;
    /* Under valgrind (DDS_TEST_NO_TIMING, tests/c/meson.build) a tenth of the mutation rounds
     * and synthetic answers: the same paths, each checked for memory errors, in minutes less. */
    const int scale = getenv("DDS_TEST_NO_TIMING") != NULL ? 10 : 1;
    {
        static const int lengths[] = {1000, 3, 2000, 0, 700, 1, 5000, 5000};
        int series = (int)(sizeof lengths / sizeof lengths[0]);
        size_t len;
        char *body = lengths_body(lengths, series, &len);
        agree(body, len, "series of different lengths");
        CHECK(fast_path_used);
        dds_fast_pointlists items;
        CHECK_INT(dds_fast_pointlists_scan(body, len, &items), 0);
        CHECK_INT(items.count, series);
        for (size_t k = 0; k < items.count && k < (size_t)series; k++)
            CHECK_INT(items.items[k].length, lengths[k]);
        dds_fast_pointlists_free(&items);
        free(body);
    }
    {
        /* A large answer: its points go to one slab sized from the first long pointlist. Shorter
         * pointlists leave room unused (their values move down), a longer one outgrows its room
         * and moves to arrays of its own, and once the slab is spent the heap serves the rest. */
        enum { SERIES = 160 };
        int lengths[SERIES];
        for (int s = 0; s < SERIES; s++) lengths[s] = 1440;
        lengths[20] = 700;
        lengths[21] = 1;
        lengths[40] = 3000;
        lengths[150] = 100000;
        size_t len;
        char *body = lengths_body(lengths, SERIES, &len);
        agree(body, len, "a large answer");
        CHECK(fast_path_used);
        dds_fast_pointlists items;
        CHECK_INT(dds_fast_pointlists_scan(body, len, &items), 0);
        CHECK_INT(items.count, SERIES);
        CHECK(items.slab != NULL);
        int in_slab = 0, on_heap = 0;
        for (size_t k = 0; k < items.count && k < SERIES; k++) {
            CHECK_INT(items.items[k].length, lengths[k]);
            in_slab += items.items[k].in_slab;
            on_heap += !items.items[k].in_slab;
        }
        /* The first (the sample), the outgrown ones and those after the slab ran out. */
        CHECK(in_slab > 100);
        CHECK_INT(items.items[0].in_slab, 0);
        CHECK_INT(items.items[40].in_slab, 0);
        CHECK_INT(items.items[150].in_slab, 0);
        CHECK(items.items[20].in_slab && items.items[21].in_slab && items.items[23].in_slab);
        CHECK_INT(items.items[22].in_slab, 0); /* after a pointlist of one point: outgrown */
        CHECK(on_heap >= 3);
        dds_fast_pointlists_free(&items);
        /* The response owns the slab, and its series point into it. */
        dds_response r = {0};
        char msg[256];
        CHECK_INT(dds_parse_query_response_fast(body, len, &r, msg, sizeof msg), DDSTREAM_OK);
        CHECK_INT(r.block_count, 1);
        CHECK(r.count == SERIES && r.series[23].in_block && !r.series[150].in_block);
        dds_response more = {0};
        CHECK_INT(dds_parse_query_response_fast(body, len, &more, msg, sizeof msg), DDSTREAM_OK);
        CHECK_INT(dds_response_append(&r, &more), DDSTREAM_OK);
        CHECK_INT(r.block_count, 2);
        CHECK_INT(r.count, 2 * SERIES);
        CHECK(r.series[SERIES + 23].length == 1440 && r.series[SERIES + 23].in_block);
        dds_response_free(&r);
        free(body);
    }
    static const char *const fixtures[] = {
        "query_ok_ungrouped.json",    "query_ok_grouped.json",
        "query_unknown_keys.json",    "query_empty_series.json",
        "query_coarse_interval.json", "query_off_grid.json",
        "query_huge_numbers.json",    "query_index_unknown_rollup.json",
        "query_status_error.json",    "query_truncated.json",
        "query_wrong_types.json",     "query_index_out_of_range.json",
        "query_huge_timestamp.json",  "query_value_overflow.json",
        "error_strings.json",         "error_429.html",
    };
    for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
        size_t len;
        char *body = read_fixture(fixtures[f], &len);
        agree(body, len, fixtures[f]);
        if (strncmp(fixtures[f], "query_ok", 8) == 0) CHECK(fast_path_used);
        mutate_and_compare(body, len, 400 / scale, fixtures[f]);
        free(body);
    }
    for (int k = 0; k < 40 / scale; k++) {
        size_t len;
        char *body = synthetic_body(&len);
        agree(body, len, "synthetic answer");
        /* a clean answer with points is read by the fast path, or this test compares nothing */
        if (strstr(body, "\"pointlist\":[[") != NULL) CHECK(fast_path_used);
        mutate_and_compare(body, len, 50 / scale, "mutated synthetic answer");
        free(body);
    }
    /* Inputs where the fast path must step aside: duplicate or escaped keys, BOM, odd numbers. */
    static const char *const tricky[] = {
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[1,2]],\"pointlist\":[[3,4]]"
        "}]}",
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"point\\u006cist\":[[1,2]],\"pointlist\":["
        "[3,4]]}]}",
        "{\"series\":[],\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[1,2]]}]}",
        "\xEF\xBB\xBF{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000,1.5]]}]}",
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000,01]]}]}",
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000.5,1]]}]}",
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[6e4,1e999]]}]}",
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000,true]]}]}",
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000,1,2]]}]}",
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000,1]]}]} x",
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[60000,1]]}",
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[ ]}]}",
        "{\"series\":[{\"query_index\":0,\"tag_set\":[],\"pointlist\":[[1e15,-0.0],[1E3,  null "
        "]]}]}",
    };
    for (size_t t = 0; t < sizeof tricky / sizeof tricky[0]; t++)
        agree(tricky[t], strlen(tricky[t]), tricky[t]);
    return check_report(argv[0]);
}
