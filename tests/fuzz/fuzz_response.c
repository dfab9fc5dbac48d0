/*
 * fuzz_response.c — arbitrary bytes through everything that reads a Datadog answer: the query
 * parser, the coarse-interval check, the assembler, the error-body reader and the validate parser.
 *
 * A crash is only half of what this looks for. Every call is held to the contract its header
 * states, checked here against independent reference computations, and a broken promise aborts
 * like a crash does:
 *   - dds_parse_error_body: NUL-terminated inside out_cap, at most 300 bytes, valid UTF-8, no
 *     control characters, whitespace collapsed (no leading, trailing or double spaces);
 *   - dds_parse_query_response: on success every field within its documented range, on failure a
 *     message and an empty response, never a byte past the message buffer;
 *   - dds_parse_query_response_fast (the fast path: pointlist.c reads the pointlists, cJSON
 *     parses a copy of the rest): the same status, message and response as the general parser,
 *     and the body untouched;
 *   - dds_json_check_body (what fetch.c retries as cut short): a prefix of the body is never
 *     malformed before the byte that made the body malformed, and a malformed body stays malformed
 *     at that byte however much follows it;
 *   - dds_response_coarse_interval: equal to its definition computed naively;
 *   - dds_assemble, grouped and ungrouped, over several granularities and chunk windows: the
 *     status the answer deserves; on success the exact grid, tag order and cell values that a
 *     naive per-point placement gives; the same batch for the answer split at a time boundary and
 *     rejoined with dds_response_append (what chunk_fetch.c does on a coarsened answer) and for
 *     the answer appended to a copy of itself (duplicates keep the first non-null value).
 *
 * Every choice (granularity, window, message buffer sizes) is derived from the input, so a saved
 * input replays exactly. Built two ways: with clang's libFuzzer (tests/fuzz/meson.build, driven by
 * scripts/fuzz.sh), and with the ordinary compiler together with replay.c, which runs saved inputs
 * in the normal test suite (tests/c/meson.build).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assemble.h"
#include "json_check.h"
#include "error_body.h"
#include "parse.h"
#include "timestamp_limit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bounds parse.c and assemble.c enforce: timestamp_limit.h (included above). */
/* Keeps a batch small whatever the input: rows = groups x buckets. */
#define MAX_ROWS 65536

static void violated(int line, const char *what) {
    fprintf(stderr, "fuzz_response.c:%d: contract broken: %s\n", line, what);
    abort();
}

#define REQUIRE(cond)                                                                              \
  do {                                                                                             \
    if (!(cond)) violated(__LINE__, #cond);                                                        \
  } while (0)

/* FNV-1a: a stable function of the input, the source of every choice below. */
static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if (a % b != 0 && a < 0) q--;
    return q;
}

/* Exactly size bytes, no NUL after them: ASan sees any read past the given length. */
static char *copy_exact(const uint8_t *data, size_t size) {
    char *p = malloc(size > 0 ? size : 1);
    if (p == NULL) abort();
    if (size > 0) memcpy(p, data, size);
    else p[0] = '\0'; /* never read (the length is 0), but keeps every byte defined */
    return p;
}

/* Length of the valid UTF-8 character at s, 0 if invalid (the same rules as RFC 3629). */
static size_t utf8_char(const unsigned char *s, size_t n) {
    if (s[0] < 0x80) return 1;
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) k = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        k = 3;
        lo = s[0] == 0xE0 ? 0xA0 : 0x80;
        hi = s[0] == 0xED ? 0x9F : 0xBF;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        k = 4;
        lo = s[0] == 0xF0 ? 0x90 : 0x80;
        hi = s[0] == 0xF4 ? 0x8F : 0xBF;
    } else return 0;
    if (n < k || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return k;
}

static int is_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char(p + i, n - i);
        if (k == 0) return 0;
        i += k;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Error bodies and validate answers.
 */

static void check_error_body(const char *body, size_t size, size_t cap) {
    char *out = malloc(cap > 0 ? cap : 1);
    if (out == NULL) abort();
    memset(out, 'x', cap > 0 ? cap : 1);
    dds_parse_error_body(body, size, out, cap);
    if (cap == 0) {
        REQUIRE(out[0] == 'x'); /* nothing written without room */
        free(out);
        return;
    }
    size_t n = strnlen(out, cap);
    REQUIRE(n < cap);
    REQUIRE(n <= 300);
    REQUIRE(is_utf8(out, n));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        REQUIRE(c >= 0x20 && c != 0x7F);
        REQUIRE(!(c == ' ' && (i == 0 || i + 1 == n || out[i + 1] == ' ')));
    }
    free(out);
}

static void check_validate(const char *body, size_t size) {
    int valid = -1;
    char msg[256];
    msg[0] = 'x';
    ddstream_status st = dds_parse_validate_response(body, size, &valid, msg, sizeof msg);
    if (st == DDSTREAM_OK) {
        REQUIRE(valid == 0 || valid == 1);
    } else {
        REQUIRE(st == DDSTREAM_E_PROTOCOL || st == DDSTREAM_E_NOMEM);
        REQUIRE(strnlen(msg, sizeof msg) < sizeof msg && msg[0] != '\0');
    }
}

/* ---------------------------------------------------------------------------------------------
 * Parsed answers.
 */

static void check_response(const dds_response *r) {
    REQUIRE(r->count <= r->capacity);
    REQUIRE(r->count == 0 || r->series != NULL);
    for (size_t i = 0; i < r->count; i++) {
        const dds_series *s = &r->series[i];
        REQUIRE(s->query_index >= 0 && s->query_index <= 999999);
        REQUIRE(s->tags != NULL && is_utf8(s->tags, strlen(s->tags)));
        REQUIRE(s->interval >= 0 && s->interval <= DDS_TIME_LIMIT_S);
        REQUIRE((s->length == 0) == (s->ts_ms == NULL));
        REQUIRE((s->length == 0) == (s->values == NULL));
        for (size_t j = 0; j < s->length; j++) {
            REQUIRE(s->ts_ms[j] >= -DDS_TIME_LIMIT_MS && s->ts_ms[j] <= DDS_TIME_LIMIT_MS);
            REQUIRE(!isinf(s->values[j]));
        }
    }
}

/*
 * A deep copy of r keeping only the points with lo_ms <= ts < hi_ms (every series kept, possibly
 * empty): one half of a chunk that chunk_fetch.c split at a bucket boundary.
 */
static dds_response copy_window(const dds_response *r, int64_t lo_ms, int64_t hi_ms) {
    dds_response c = {0};
    if (r->count == 0) return c;
    c.series = calloc(r->count, sizeof *c.series);
    if (c.series == NULL) abort();
    c.capacity = r->count;
    for (size_t i = 0; i < r->count; i++) {
        const dds_series *s = &r->series[i];
        dds_series *d = &c.series[i];
        c.count = i + 1;
        d->query_index = s->query_index;
        d->interval = s->interval;
        size_t taglen = strlen(s->tags) + 1;
        d->tags = malloc(taglen);
        if (d->tags == NULL) abort();
        memcpy(d->tags, s->tags, taglen);
        size_t n = 0;
        for (size_t j = 0; j < s->length; j++) n += s->ts_ms[j] >= lo_ms && s->ts_ms[j] < hi_ms;
        if (n == 0) continue;
        d->ts_ms = malloc(n * sizeof *d->ts_ms);
        d->values = malloc(n * sizeof *d->values);
        if (d->ts_ms == NULL || d->values == NULL) abort();
        size_t k = 0;
        for (size_t j = 0; j < s->length; j++) {
            if (s->ts_ms[j] >= lo_ms && s->ts_ms[j] < hi_ms) {
                d->ts_ms[k] = s->ts_ms[j];
                d->values[k] = s->values[j];
                k++;
            }
        }
        d->length = n;
    }
    return c;
}

/* dds_response_coarse_interval by its definition in assemble.h. */
static int64_t coarse_reference(const dds_response *r, int64_t g) {
    if (g <= 0 || g > DDS_TIME_LIMIT_S) return 0;
    int64_t worst = 0;
    int off = 0;
    for (size_t i = 0; i < r->count; i++) {
        const dds_series *s = &r->series[i];
        if (s->interval > g && s->interval > worst) worst = s->interval;
        for (size_t j = 0; j < s->length; j++) off |= s->ts_ms[j] % (g * 1000) != 0;
    }
    return worst != 0 ? worst : off ? g + 1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Assembly.
 */

static int same_double(double a, double b) {
    return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

/* The status dds_assemble owes this answer for a valid chunk (assemble.h, in its order). */
static ddstream_status assemble_reference_status(const dds_response *r, int64_t g, int grouped) {
    for (size_t i = 0; i < r->count; i++) {
        const dds_series *s = &r->series[i];
        if (s->query_index < 0 || s->query_index > 3) return DDSTREAM_E_PROTOCOL;
        for (size_t j = 0; j < s->length; j++)
            if (s->ts_ms[j] % (g * 1000) != 0) return DDSTREAM_E_PROTOCOL;
    }
    if (!grouped) {
        for (size_t i = 0; i < r->count; i++)
            for (size_t k = 0; k < i; k++)
                if (r->series[k].query_index == r->series[i].query_index &&
                    strcmp(r->series[k].tags, r->series[i].tags) != 0)
                    return DDSTREAM_E_PROTOCOL;
    }
    return DDSTREAM_OK;
}

static size_t find_tags(const ddstream_batch *b, const char *tags) {
    size_t lo = 0, hi = b->series_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(b->series_tags[mid], tags);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return SIZE_MAX;
}

/* A successful batch against a naive, point-by-point placement of the answer. */
static void check_batch(const dds_response *r, const ddstream_batch *b, int64_t start, int64_t end,
                        int64_t g, int grouped) {
    const size_t buckets = (size_t)((end - start) / g);
    REQUIRE(b->struct_size == sizeof(ddstream_batch));
    REQUIRE(b->chunk_start_ms == start * 1000 && b->chunk_end_ms == end * 1000);
    REQUIRE(b->grouped == (grouped != 0));
    REQUIRE(b->timestamps != NULL && b->avg != NULL && b->min != NULL && b->max != NULL &&
            b->sum != NULL);
    REQUIRE((uintptr_t)b->timestamps % 64 == 0 && (uintptr_t)b->avg % 64 == 0 &&
            (uintptr_t)b->min % 64 == 0 && (uintptr_t)b->max % 64 == 0 &&
            (uintptr_t)b->sum % 64 == 0);

    size_t groups = 1;
    if (grouped) {
        REQUIRE(b->series != NULL && b->series_tags != NULL);
        groups = b->series_count;
        for (size_t k = 1; k < groups; k++)
            REQUIRE(strcmp(b->series_tags[k - 1], b->series_tags[k]) < 0);
        unsigned char *used = calloc(groups > 0 ? groups : 1, 1);
        if (used == NULL) abort();
        for (size_t i = 0; i < r->count; i++) {
            size_t at = find_tags(b, r->series[i].tags);
            REQUIRE(at != SIZE_MAX);
            used[at] = 1;
        }
        for (size_t k = 0; k < groups; k++) REQUIRE(used[k]); /* no tag set that no series had */
        free(used);
    } else {
        REQUIRE(b->series == NULL && b->series_tags == NULL && b->series_count == 0);
    }
    REQUIRE(b->length == groups * buckets);

    for (size_t row = 0; row < b->length; row++) {
        REQUIRE(b->timestamps[row] == start + (int64_t)(row % buckets) * g);
        if (grouped) REQUIRE(b->series[row] == (int32_t)(row / buckets));
    }

    double *want = malloc((b->length > 0 ? b->length : 1) * 4 * sizeof *want);
    if (want == NULL) abort();
    for (size_t k = 0; k < b->length * 4; k++) want[k] = NAN;
    int64_t answered = 0;
    int agree = 1;
    for (size_t i = 0; i < r->count; i++) {
        const dds_series *s = &r->series[i];
        size_t gi = grouped ? find_tags(b, s->tags) : 0;
        for (size_t j = 0; j < s->length; j++) {
            int64_t t = s->ts_ms[j];
            if (t < start * 1000 || t >= end * 1000) continue;
            size_t row = gi * buckets + (size_t)((t - start * 1000) / (g * 1000));
            double *cell = &want[(size_t)s->query_index * b->length + row];
            if (isnan(*cell)) *cell = s->values[j];
        }
        if (s->interval > 0) {
            if (answered == 0) answered = s->interval;
            else if (answered != s->interval) agree = 0;
        }
    }
    const double *cols[4] = {b->avg, b->min, b->max, b->sum};
    for (size_t q = 0; q < 4; q++)
        for (size_t row = 0; row < b->length; row++)
            REQUIRE(same_double(cols[q][row], want[q * b->length + row]));
    free(want);
    REQUIRE(b->interval == (agree && answered > 0 ? answered : g));
}

static void check_same_batch(const ddstream_batch *a, const ddstream_batch *b) {
    REQUIRE(a->length == b->length && a->series_count == b->series_count);
    REQUIRE(a->interval == b->interval && a->grouped == b->grouped);
    REQUIRE(a->chunk_start_ms == b->chunk_start_ms && a->chunk_end_ms == b->chunk_end_ms);
    for (size_t k = 0; k < a->series_count; k++)
        REQUIRE(strcmp(a->series_tags[k], b->series_tags[k]) == 0);
    for (size_t row = 0; row < a->length; row++) {
        REQUIRE(a->timestamps[row] == b->timestamps[row]);
        REQUIRE(same_double(a->avg[row], b->avg[row]) && same_double(a->min[row], b->min[row]) &&
                same_double(a->max[row], b->max[row]) && same_double(a->sum[row], b->sum[row]));
        if (a->grouped) REQUIRE(a->series[row] == b->series[row]);
    }
}

/* One dds_assemble call held to its contract; returns the batch (or NULL) for comparisons. */
static ddstream_batch *assemble_checked(const dds_response *r, int64_t start, int64_t end,
                                        int64_t g, int grouped) {
    static ddstream_batch sentinel;
    ddstream_batch *b = &sentinel;
    char msg[400];
    msg[0] = '\0';
    ddstream_status st = dds_assemble(r, start, end, g, grouped, &b, msg, sizeof msg);
    ddstream_status want = assemble_reference_status(r, g, grouped);
    REQUIRE(st == want);
    if (st != DDSTREAM_OK) {
        REQUIRE(b == NULL);
        REQUIRE(msg[0] != '\0' && strnlen(msg, sizeof msg) < sizeof msg);
        return NULL;
    }
    REQUIRE(b != NULL && b != &sentinel);
    check_batch(r, b, start, end, g, grouped);
    return b;
}

/* A chunk [start, end) on the g grid, inside the library's bounds, of at most max_buckets. */
static void make_window(int64_t from_ms, int64_t g, size_t want_buckets, size_t max_buckets,
                        int64_t *start, int64_t *end) {
    int64_t s = floor_div(from_ms, g * 1000) * g;
    while (s < -DDS_TIME_LIMIT_S) s += g;
    while (s > DDS_TIME_LIMIT_S) s -= g;
    size_t n = want_buckets < max_buckets ? want_buckets : max_buckets;
    int64_t room = (DDS_TIME_LIMIT_S - s) / g;
    if ((int64_t)n > room) n = room > 0 ? (size_t)room : 0;
    *start = s;
    *end = s + (int64_t)n * g;
}

static void check_assembly(const dds_response *r, uint64_t h) {
    static const int64_t grids[] = {1, 10, 60, 120, 300, 3600, 86400, 999983};
    int64_t lo = INT64_MAX, hi = INT64_MIN, native = 0;
    for (size_t i = 0; i < r->count; i++) {
        const dds_series *s = &r->series[i];
        if (native == 0 && s->interval > 0) native = s->interval;
        for (size_t j = 0; j < s->length; j++) {
            lo = s->ts_ms[j] < lo ? s->ts_ms[j] : lo;
            hi = s->ts_ms[j] > hi ? s->ts_ms[j] : hi;
        }
    }
    if (lo > hi) lo = hi = (int64_t)(h % 2000000000u) * 1000; /* no points: any window */
    size_t max_buckets = MAX_ROWS / (r->count > 0 ? r->count : 1);
    if (max_buckets == 0) max_buckets = 1;

    const int64_t choices[2] = {native > 0 ? native : 60, grids[(h >> 8) % 8]};
    for (int gi = 0; gi < 2; gi++) {
        const int64_t g = choices[gi];
        REQUIRE(dds_response_coarse_interval(r, g) == coarse_reference(r, g));

        /* The window covering every point, and a window cut from inside or around it. */
        int64_t span = floor_div(hi, g * 1000) - floor_div(lo, g * 1000) + 1;
        int64_t start[2], end[2];
        make_window(lo, g, (size_t)span, max_buckets, &start[0], &end[0]);
        int64_t shift = (int64_t)((h >> (16 + gi * 8)) % 5) - 2; /* -2..2 buckets */
        make_window(lo + shift * g * 1000, g, (size_t)((h >> (24 + gi * 8)) % 4), max_buckets,
                    &start[1], &end[1]);

        for (int w = 0; w < 2; w++) {
            for (int grouped = 0; grouped <= 1; grouped++) {
                ddstream_batch *b = assemble_checked(r, start[w], end[w], g, grouped);
                if (w == 0 && gi == (int)(h & 1)) {
                    /* Split at a bucket boundary, rejoin: the same batch (chunk_fetch.c). */
                    int64_t buckets = (end[w] - start[w]) / g;
                    int64_t mid_ms =
                        (start[w] +
                         (buckets > 0 ? (int64_t)((h >> 40) % (uint64_t)buckets) : 0) * g) *
                        1000;
                    dds_response first = copy_window(r, INT64_MIN, mid_ms);
                    dds_response second = copy_window(r, mid_ms, INT64_MAX);
                    REQUIRE(dds_response_append(&first, &second) == DDSTREAM_OK);
                    REQUIRE(second.count == 0 && second.series == NULL);
                    REQUIRE(first.count == 2 * r->count);
                    ddstream_batch *j = assemble_checked(&first, start[w], end[w], g, grouped);
                    REQUIRE((b == NULL) == (j == NULL));
                    if (b != NULL) check_same_batch(b, j);
                    ddstream_batch_free(j);
                    dds_response_free(&first);

                    /* The answer twice over: the first copy's values win, nothing changes. */
                    dds_response twice = copy_window(r, INT64_MIN, INT64_MAX);
                    dds_response again = copy_window(r, INT64_MIN, INT64_MAX);
                    REQUIRE(dds_response_append(&twice, &again) == DDSTREAM_OK);
                    ddstream_batch *d = assemble_checked(&twice, start[w], end[w], g, grouped);
                    REQUIRE((b == NULL) == (d == NULL));
                    if (b != NULL) check_same_batch(b, d);
                    ddstream_batch_free(d);
                    dds_response_free(&twice);
                    dds_response_free(&again);
                }
                ddstream_batch_free(b);
            }
        }

        /* A chunk off the grid is the caller's bug: DDSTREAM_E_INTERNAL, nothing allocated. */
        if (g > 1) {
            ddstream_batch *b = NULL;
            char msg[400];
            REQUIRE(dds_assemble(r, start[0] + 1, end[0] + g, g, 1, &b, msg, sizeof msg) ==
                    DDSTREAM_E_INTERNAL);
            REQUIRE(b == NULL);
        }
    }
}

/* Two parses of the same body agree on everything. */
static void check_same_response(const dds_response *a, const dds_response *b) {
    REQUIRE(a->count == b->count);
    for (size_t i = 0; i < a->count; i++) {
        const dds_series *x = &a->series[i], *y = &b->series[i];
        REQUIRE(x->query_index == y->query_index && x->interval == y->interval);
        REQUIRE(strcmp(x->tags, y->tags) == 0);
        REQUIRE(x->length == y->length);
        for (size_t j = 0; j < x->length; j++) {
            REQUIRE(x->ts_ms[j] == y->ts_ms[j]);
            REQUIRE(same_double(x->values[j], y->values[j]));
        }
    }
}

/*
 * dds_parse_query_response_fast (the fast path chunk_fetch.c uses: pointlists read by
 * pointlist.c, the envelope without them parsed by cJSON) against the general parser: the same
 * status, the same message and the same response, whatever the bytes, and the body not written.
 */
static void check_fast(const char *body, size_t size, ddstream_status want,
                       const dds_response *general, const char *general_msg) {
    char *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL) abort();
    if (size > 0) memcpy(copy, body, size);
    dds_response r;
    char msg[512];
    msg[0] = '\0';
    ddstream_status st = dds_parse_query_response_fast(copy, size, &r, msg, sizeof msg);
    REQUIRE(size == 0 || memcmp(copy, body, size) == 0);
    free(copy);
    REQUIRE(st == want);
    if (st != DDSTREAM_OK) {
        REQUIRE(r.series == NULL && r.count == 0 && r.capacity == 0);
        if (strcmp(msg, general_msg) != 0)
            fprintf(stderr, "general parser: %s\nin-place parser: %s\n", general_msg, msg);
        REQUIRE(strcmp(msg, general_msg) == 0);
        return;
    }
    check_same_response(general, &r);
    dds_response_free(&r);
}

static void check_query(const char *body, size_t size, uint64_t h) {
    dds_response r;
    memset(&r, 0xA5, sizeof r); /* the parser must not rely on a zeroed output */
    char msg[512];
    msg[0] = '\0';
    ddstream_status st = dds_parse_query_response(body, size, &r, msg, sizeof msg);
    if (st != DDSTREAM_OK) {
        REQUIRE(st == DDSTREAM_E_PROTOCOL || st == DDSTREAM_E_QUERY || st == DDSTREAM_E_NOMEM);
        REQUIRE(r.series == NULL && r.count == 0 && r.capacity == 0);
        REQUIRE(msg[0] != '\0' && strnlen(msg, sizeof msg) < sizeof msg);
    } else {
        check_response(&r);
    }

    /* Small message buffers: the same answer, nothing written past them (exact allocations). */
    static const size_t caps[] = {0, 1, 7, 64};
    const size_t cap = caps[(h >> 4) % 4];
    char *small = malloc(cap > 0 ? cap : 1);
    if (small == NULL) abort();
    small[0] = 'x';
    dds_response again;
    REQUIRE(dds_parse_query_response(body, size, &again, small, cap) == st);
    if (cap == 0) REQUIRE(small[0] == 'x');
    else if (st != DDSTREAM_OK) REQUIRE(strnlen(small, cap) < cap);
    free(small);
    if (st == DDSTREAM_OK) {
        check_same_response(&r, &again); /* and the parser is deterministic */
        dds_response_free(&again);
    }

    check_fast(body, size, st, &r, msg);
    if (st == DDSTREAM_OK) {
        check_assembly(&r, h);
        dds_response_free(&r);
        REQUIRE(r.series == NULL && r.count == 0 && r.capacity == 0);
    }
}

/*
 * json_check (what fetch.c retries as cut short): cutting a body can only ever make it "cut
 * short", never "malformed" — a prefix of a complete document, or of a malformed one before the
 * bad byte, is TRUNCATED (or NOT_JSON while only whitespace is left); a malformed body stays
 * malformed at the same byte however much follows it. Two prefixes, chosen from the input.
 */
static void check_json_shape(const char *body, size_t size, uint64_t h) {
    dds_json_check whole, cut;
    dds_json_shape shape = dds_json_check_body(body, size, &whole);
    REQUIRE(shape <= DDS_JSON_NOT_JSON);
    if (shape == DDS_JSON_TRUNCATED) REQUIRE(whole.open > 0 || size > 0);
    if (shape == DDS_JSON_MALFORMED) REQUIRE(whole.where < size);
    if (whole.nul)
        REQUIRE(whole.nul_path[0] != '\0' && strlen(whole.nul_path) < sizeof whole.nul_path);
    if (shape == DDS_JSON_NOT_JSON || size == 0) return;
    size_t limit = shape == DDS_JSON_MALFORMED ? whole.where : size;
    for (int k = 0; k < 2; k++) {
        size_t n = (size_t)((h >> (k * 32)) % (size + 1));
        dds_json_shape part = dds_json_check_body(body, n, &cut);
        if (n <= limit && !(shape == DDS_JSON_COMPLETE && n == size)) {
            /* Before the bad byte, or short of the end: never malformed. Complete only once the
             * value has closed (then only whitespace, or the bad trailing data, follows). */
            REQUIRE(part == DDS_JSON_TRUNCATED || part == DDS_JSON_NOT_JSON ||
                    (shape != DDS_JSON_TRUNCATED && part == DDS_JSON_COMPLETE));
        } else if (shape == DDS_JSON_MALFORMED) {
            REQUIRE(part == DDS_JSON_MALFORMED && cut.where == whole.where);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint64_t h = hash_bytes(data, size);
    char *body = copy_exact(data, size);
    check_query(body, size, h);
    check_json_shape(body, size, h);
    static const size_t caps[] = {0, 1, 2, 3, 4, 5, 64, 301};
    check_error_body(body, size, 512);
    check_error_body(body, size, caps[h % 8]);
    check_validate(body, size);
    free(body);
    return 0;
}
