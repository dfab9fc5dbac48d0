/*
 * test_arrow.c — the Arrow export: the schema, one batch as a record batch (zero-copy buffers,
 * validity bitmaps from NaN, the series dictionary, release in any order and on any thread), and
 * the Arrow C stream end to end against the fake Datadog servers that tests/c/with_fake_datadog.py
 * starts (DDSTREAM_BASE_URL: keys "test-api-key"/"test-app-key"; DDSTREAM_SLOW_URL: 2 s per query).
 *
 * The checks read the Arrow structs by hand, as any consumer without an Arrow library would, so
 * they test the C data interface itself rather than nanoarrow's view of it. This program runs
 * under ASan+UBSan and valgrind memcheck too (tests/c/meson.build): every release path must free
 * exactly what it owns.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "arrow.h"
#include "batch.h"
#include "ddstream.h"

static const int64_t DAY0 = INT64_C(1793491200); /* 2026-11-01T00:00:00Z */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The value of key in Arrow's binary metadata (int32 count, then int32-length-prefixed key/value
 * pairs), copied into buf; NULL if absent. */
static const char *meta_get(const char *meta, const char *key, char *buf, size_t cap) {
    if (!meta) return NULL;
    int32_t n, len;
    const char *p = meta;
    memcpy(&n, p, 4);
    p += 4;
    for (int32_t i = 0; i < n; i++) {
        memcpy(&len, p, 4);
        p += 4;
        int match = (size_t)len == strlen(key) && memcmp(p, key, (size_t)len) == 0;
        p += len;
        memcpy(&len, p, 4);
        p += 4;
        if (match) {
            size_t m = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
            memcpy(buf, p, m);
            buf[m] = 0;
            return buf;
        }
        p += len;
    }
    return NULL;
}

static int bit(const void *bitmap, size_t i) {
    return bitmap == NULL || ((const uint8_t *)bitmap)[i >> 3] >> (i & 7) & 1;
}

/* ---------------------------------------------------------------- unit: schema and one batch */

static void test_schema(void) {
    struct ArrowSchema s;
    const char *keys[] = {"k1", "ddstream.query"};
    const char *values[] = {"v1", "avg:x{*} by {host}"};
    CHECK_INT(dds_arrow_schema(&s, 1, keys, values, 2), 0);
    CHECK(s.release != NULL);
    CHECK_STR(s.format, "+s");
    CHECK_INT(s.n_children, 6);
    const char *names[] = {"timestamp", "avg", "min", "max", "sum", "series"};
    const char *formats[] = {"tss:UTC", "g", "g", "g", "g", "i"};
    for (int i = 0; i < 6; i++) {
        CHECK_STR(s.children[i]->name, names[i]);
        CHECK_STR(s.children[i]->format, formats[i]);
    }
    CHECK_INT(s.children[0]->flags & ARROW_FLAG_NULLABLE, 0);
    CHECK_INT(s.children[1]->flags & ARROW_FLAG_NULLABLE, ARROW_FLAG_NULLABLE);
    CHECK(s.children[5]->dictionary != NULL);
    if (s.children[5]->dictionary) CHECK_STR(s.children[5]->dictionary->format, "u");
    char buf[128];
    CHECK_STR(meta_get(s.metadata, "k1", buf, sizeof buf), "v1");
    CHECK_STR(meta_get(s.metadata, "ddstream.query", buf, sizeof buf), "avg:x{*} by {host}");
    s.release(&s);
    CHECK(s.release == NULL);

    CHECK_INT(dds_arrow_schema(&s, 0, NULL, NULL, 0), 0);
    CHECK_INT(s.n_children, 5);
    CHECK(s.metadata == NULL);
    s.release(&s);
}

/* A 5-row batch: NaN in avg at rows 1 and 4, none in min, all NaN in sum; grouped: 2 series. */
static ddstream_batch *make_batch(int grouped) {
    const char *tags[] = {"host:a,env:prod", "host:b"};
    size_t tag_bytes = strlen(tags[0]) + 1 + strlen(tags[1]) + 1;
    ddstream_batch *b = dds_batch_new(5, grouped ? 2 : 0, grouped ? tag_bytes : 0, grouped);
    dds_batch_columns c = dds_batch_columns_of(b);
    for (int i = 0; i < 5; i++) {
        c.timestamps[i] = DAY0 + 60 * i;
        c.avg[i] = (i == 1 || i == 4) ? NAN : 1.5 * i;
        c.min[i] = i;
        c.max[i] = (i == 2) ? NAN : 10.0 + i;
        c.sum[i] = NAN;
        if (grouped) c.series[i] = i < 3 ? 0 : 1;
    }
    if (grouped) {
        dds_batch_set_tag(b, 0, tags[0]);
        dds_batch_set_tag(b, 1, tags[1]);
    }
    b->chunk_start_ms = DAY0 * 1000;
    b->chunk_end_ms = (DAY0 + 300) * 1000;
    return b;
}

static void check_batch_array(const struct ArrowArray *a, const ddstream_batch *b, int grouped) {
    CHECK_INT(a->length, 5);
    CHECK_INT(a->null_count, 0);
    CHECK_INT(a->n_children, grouped ? 6 : 5);
    /* zero-copy: the data buffers are the batch's own columns */
    CHECK(a->children[0]->buffers[1] == (const void *)b->timestamps);
    CHECK(a->children[1]->buffers[1] == (const void *)b->avg);
    CHECK(a->children[2]->buffers[1] == (const void *)b->min);
    CHECK(a->children[3]->buffers[1] == (const void *)b->max);
    CHECK(a->children[4]->buffers[1] == (const void *)b->sum);
    CHECK(a->children[0]->buffers[0] == NULL);
    CHECK_INT(a->children[0]->null_count, 0);
    /* validity from NaN: a bitmap only where there is a null */
    CHECK_INT(a->children[1]->null_count, 2);
    CHECK(a->children[2]->buffers[0] == NULL);
    CHECK_INT(a->children[2]->null_count, 0);
    CHECK_INT(a->children[3]->null_count, 1);
    CHECK_INT(a->children[4]->null_count, 5);
    for (size_t i = 0; i < 5; i++) {
        CHECK_INT(bit(a->children[1]->buffers[0], i), !(i == 1 || i == 4));
        CHECK_INT(bit(a->children[3]->buffers[0], i), i != 2);
        CHECK_INT(bit(a->children[4]->buffers[0], i), 0);
        CHECK_INT(((const int64_t *)a->children[0]->buffers[1])[i], DAY0 + 60 * (int64_t)i);
    }
    if (grouped) {
        const struct ArrowArray *s = a->children[5];
        CHECK(s->buffers[1] == (const void *)b->series);
        CHECK_INT(s->length, 5);
        CHECK(s->dictionary != NULL);
        const struct ArrowArray *d = s->dictionary;
        CHECK_INT(d->length, 2);
        const int32_t *off = d->buffers[1];
        const char *data = d->buffers[2];
        CHECK_INT(off[0], 0);
        CHECK_INT(off[1], (int)strlen("host:a,env:prod"));
        CHECK_INT(off[2] - off[1], (int)strlen("host:b"));
        CHECK(memcmp(data, "host:a,env:prodhost:b", (size_t)off[2]) == 0);
    }
}

static void test_export_batch(int grouped) {
    struct ArrowSchema schema;
    CHECK_INT(dds_arrow_schema(&schema, grouped, NULL, NULL, 0), 0);
    ddstream_batch *b = make_batch(grouped);
    struct ArrowArray a;
    char msg[256] = "";
    CHECK_INT(dds_arrow_export_batch(b, &schema, &a, msg, sizeof msg), 0);
    check_batch_array(&a, b, grouped);
    a.release(&a); /* frees the batch too: ASan/valgrind say if it is not, or twice */
    CHECK(a.release == NULL);
    schema.release(&schema);
}

/* A consumer may move children out and release them after the parent, in any order. */
static void test_release_children_separately(void) {
    struct ArrowSchema schema;
    CHECK_INT(dds_arrow_schema(&schema, 1, NULL, NULL, 0), 0);
    ddstream_batch *b = make_batch(1);
    struct ArrowArray a, moved[2];
    CHECK_INT(dds_arrow_export_batch(b, &schema, &a, NULL, 0), 0);
    moved[0] = *a.children[1];
    a.children[1]->release = NULL;
    moved[1] = *a.children[5];
    a.children[5]->release = NULL;
    a.release(&a);
    /* the batch is still alive: the moved children point into it */
    CHECK(((const double *)moved[0].buffers[1])[2] == 3.0);
    CHECK(((const int32_t *)moved[1].buffers[1])[4] == 1);
    moved[1].release(&moved[1]);
    moved[0].release(&moved[0]);
    schema.release(&schema);
}

static void *release_array(void *arg) {
    struct ArrowArray *a = arg;
    a->release(a);
    return NULL;
}

static void test_release_on_other_threads(void) {
    struct ArrowSchema schema;
    CHECK_INT(dds_arrow_schema(&schema, 0, NULL, NULL, 0), 0);
    for (int round = 0; round < 20; round++) {
        ddstream_batch *b = make_batch(0);
        struct ArrowArray a, kids[5];
        CHECK_INT(dds_arrow_export_batch(b, &schema, &a, NULL, 0), 0);
        for (int i = 0; i < 5; i++) {
            kids[i] = *a.children[i];
            a.children[i]->release = NULL;
        }
        pthread_t t[6];
        for (int i = 0; i < 5; i++) pthread_create(&t[i], NULL, release_array, &kids[i]);
        pthread_create(&t[5], NULL, release_array, &a);
        for (int i = 0; i < 6; i++) pthread_join(t[i], NULL);
    }
    schema.release(&schema);
}

static void test_export_refused(void) {
    struct ArrowSchema grouped, flat;
    CHECK_INT(dds_arrow_schema(&grouped, 1, NULL, NULL, 0), 0);
    CHECK_INT(dds_arrow_schema(&flat, 0, NULL, NULL, 0), 0);
    struct ArrowArray a;
    a.release = NULL;
    char msg[256] = "";
    ddstream_batch *b = make_batch(0);
    CHECK_INT(dds_arrow_export_batch(b, &grouped, &a, msg, sizeof msg), EINVAL);
    CHECK_CONTAINS(msg, "not grouped");
    CHECK(a.release == NULL);
    /* the batch is still the caller's, untouched */
    CHECK_INT(b->timestamps[4], DAY0 + 240);
    ddstream_batch_free(b);

    b = make_batch(1);
    dds_batch_columns_of(b).series[3] = 2; /* past the 2 tags */
    CHECK_INT(dds_arrow_export_batch(b, &grouped, &a, msg, sizeof msg), EINVAL);
    CHECK(a.release == NULL);
    ddstream_batch_free(b);

    b = dds_batch_new(0, 0, 0, 0); /* an empty chunk is a valid empty batch */
    CHECK_INT(dds_arrow_export_batch(b, &flat, &a, msg, sizeof msg), 0);
    CHECK_INT(a.length, 0);
    CHECK(a.children[1]->buffers[1] != NULL);
    a.release(&a);
    grouped.release(&grouped);
    flat.release(&flat);
}

static void test_errno_mapping(void) {
    CHECK_INT(dds_arrow_errno(DDSTREAM_OK), 0);
    CHECK_INT(dds_arrow_errno(DDSTREAM_END), 0);
    CHECK_INT(dds_arrow_errno(DDSTREAM_E_AUTH), EACCES);
    CHECK_INT(dds_arrow_errno(DDSTREAM_E_QUERY), EINVAL);
    CHECK_INT(dds_arrow_errno(DDSTREAM_E_RATE_LIMITED), EBUSY);
    CHECK_INT(dds_arrow_errno(DDSTREAM_E_TIMEOUT), ETIMEDOUT);
    CHECK_INT(dds_arrow_errno(DDSTREAM_E_CANCELLED), ECANCELED);
    CHECK_INT(dds_arrow_errno(DDSTREAM_E_PROTOCOL), EPROTO);
    CHECK_INT(dds_arrow_errno(DDSTREAM_E_NOMEM), ENOMEM);
    CHECK_INT(dds_arrow_errno(DDSTREAM_E_SERVER), EIO);
    CHECK_INT(dds_arrow_errno(DDSTREAM_E_NETWORK), EIO);
}

/* ---------------------------------------------------------------- end to end over the C stream */

static void base_config(ddstream_config *cfg, const char *url, const char *query) {
    ddstream_config_init(cfg);
    cfg->api_key = "test-api-key";
    cfg->app_key = "test-app-key";
    cfg->base_url = url;
    cfg->query = query;
    cfg->range_start = DAY0;
    cfg->range_end = DAY0 + 86400;
    cfg->granularity = 60;
    cfg->chunk_seconds = 14400;
    cfg->max_retries = 0;
}

static ddstream_stream *open_stream(const ddstream_config *cfg) {
    ddstream_stream *s = NULL;
    ddstream_error err;
    ddstream_status st = ddstream_open(cfg, &s, &err);
    CHECK_INT(st, DDSTREAM_OK);
    if (st != DDSTREAM_OK) {
        fprintf(stderr, "ddstream_open: %s\n", err.message);
        exit(EXIT_FAILURE);
    }
    return s;
}

static int same_double(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* Every batch through the Arrow stream equals the batch of a plain stream over the same config:
 * timestamps, values (NaN exactly where the Arrow value is null), series tags. */
static void test_stream_matches_plain(const char *query) {
    ddstream_config cfg;
    base_config(&cfg, getenv("DDSTREAM_BASE_URL"), query);
    ddstream_stream *plain = open_stream(&cfg);
    ddstream_stream *s = open_stream(&cfg);
    struct ArrowArrayStream as;
    ddstream_error err;
    CHECK_INT(ddstream_stream_arrow(s, &as, &err), DDSTREAM_OK);

    struct ArrowSchema schema;
    CHECK_INT(as.get_schema(&as, &schema), 0);
    int grouped = strstr(query, " by ") != NULL;
    CHECK_INT(schema.n_children, grouped ? 6 : 5);
    char buf[256];
    CHECK_STR(meta_get(schema.metadata, "ddstream.query", buf, sizeof buf), query);
    CHECK_STR(meta_get(schema.metadata, "ddstream.chunk_count", buf, sizeof buf), "6");
    CHECK_STR(meta_get(schema.metadata, "ddstream.first_chunk", buf, sizeof buf), "0");
    CHECK_STR(meta_get(schema.metadata, "ddstream.chunk_seconds", buf, sizeof buf), "14400");
    CHECK_STR(meta_get(schema.metadata, "ddstream.grouped", buf, sizeof buf),
              grouped ? "true" : "false");
    schema.release(&schema);

    size_t batches = 0, rows = 0, nulls = 0;
    struct ArrowArray a;
    int rc;
    while ((rc = as.get_next(&as, &a)) == 0 && a.release != NULL) {
        ddstream_batch *b = NULL;
        CHECK_INT(ddstream_next(plain, -1, &b, &err), DDSTREAM_OK);
        if (!b) break;
        CHECK_INT(a.length, (int64_t)b->length);
        const double *cols[] = {b->avg, b->min, b->max, b->sum};
        for (size_t i = 0; i < b->length && (size_t)a.length == b->length; i++) {
            CHECK_INT(((const int64_t *)a.children[0]->buffers[1])[i], b->timestamps[i]);
            for (int c = 0; c < 4; c++) {
                const struct ArrowArray *col = a.children[1 + c];
                double v = ((const double *)col->buffers[1])[i];
                int valid = bit(col->buffers[0], i);
                CHECK_INT(valid, !isnan(cols[c][i]));
                if (valid) CHECK(same_double(v, cols[c][i]));
                else nulls++;
            }
            if (grouped) {
                const struct ArrowArray *sa = a.children[5];
                int32_t k = ((const int32_t *)sa->buffers[1])[i];
                const int32_t *off = sa->dictionary->buffers[1];
                const char *data = sa->dictionary->buffers[2];
                const char *want = b->series_tags[b->series[i]];
                CHECK((size_t)(off[k + 1] - off[k]) == strlen(want) &&
                      memcmp(data + off[k], want, strlen(want)) == 0);
            }
        }
        rows += (size_t)a.length;
        batches++;
        a.release(&a);
        ddstream_batch_free(b);
    }
    CHECK_INT(rc, 0);
    CHECK_INT(batches, 6);
    CHECK(rows >= 1440);
    CHECK(nulls > 0); /* the fake's daily blackout: the test would prove nothing without nulls */
    /* the end is sticky, per the spec */
    a.release = (void (*)(struct ArrowArray *))1;
    CHECK_INT(as.get_next(&as, &a), 0);
    CHECK(a.release == NULL);
    as.release(&as);
    CHECK(as.release == NULL);
    ddstream_close(plain);
}

/* Two handles on one source: batches are shared out, not duplicated; the last release closes. */
static void test_share(void) {
    ddstream_config cfg;
    base_config(&cfg, getenv("DDSTREAM_BASE_URL"), "avg:system.cpu.user{*}");
    ddstream_stream *s = open_stream(&cfg);
    struct ArrowArrayStream h1, h2;
    ddstream_error err;
    CHECK_INT(ddstream_stream_arrow(s, &h1, &err), DDSTREAM_OK);
    CHECK_INT(ddstream_stream_arrow_share(&h1, &h2, &err), DDSTREAM_OK);
    struct ArrowArray a;
    int64_t prev = 0;
    int n = 0;
    for (int i = 0; i < 6; i++) {
        struct ArrowArrayStream *h = (i % 2) ? &h2 : &h1;
        CHECK_INT(h->get_next(h, &a), 0);
        if (!a.release) break;
        int64_t first = ((const int64_t *)a.children[0]->buffers[1])[0];
        CHECK(first > prev);
        prev = first;
        n++;
        a.release(&a);
        if (i == 2) h1.release(&h1); /* h2 keeps the stream open */
        if (i == 2) CHECK_INT(ddstream_stream_arrow_share(&h2, &h1, &err), DDSTREAM_OK);
    }
    CHECK_INT(n, 6);
    CHECK_INT(h2.get_next(&h2, &a), 0);
    CHECK(a.release == NULL);
    h2.release(&h2);
    h1.release(&h1);
    /* a released handle is refused */
    CHECK_INT(ddstream_stream_arrow_share(&h1, &h2, &err), DDSTREAM_E_INVALID_ARGUMENT);
    CHECK_INT(ddstream_stream_arrow_next(&h1, 0, &a, &err), DDSTREAM_E_INVALID_ARGUMENT);
}

/* The timeout-and-status variant, and arguments refused without touching the stream. */
static void test_next_with_timeout(void) {
    const char *slow = getenv("DDSTREAM_SLOW_URL");
    CHECK(slow != NULL);
    ddstream_config cfg;
    base_config(&cfg, slow, "avg:system.cpu.user{*}");
    cfg.range_end = DAY0 + 14400; /* one chunk, answered after 2 s */
    ddstream_stream *s = open_stream(&cfg);
    struct ArrowArrayStream as;
    ddstream_error err;
    CHECK_INT(ddstream_stream_arrow(NULL, &as, &err), DDSTREAM_E_INVALID_ARGUMENT);
    CHECK_INT(ddstream_stream_arrow(s, &as, &err), DDSTREAM_OK);
    struct ArrowArray a;
    CHECK_INT(ddstream_stream_arrow_next(&as, 50, &a, &err), DDSTREAM_TIMEOUT);
    ddstream_status st;
    while ((st = ddstream_stream_arrow_next(&as, 100, &a, &err)) == DDSTREAM_TIMEOUT) {
    }
    CHECK_INT(st, DDSTREAM_OK);
    if (st == DDSTREAM_OK) {
        CHECK_INT(a.length, 240);
        a.release(&a);
    }
    CHECK_INT(ddstream_stream_arrow_next(&as, -1, &a, &err), DDSTREAM_END);
    CHECK(a.release == NULL);
    as.release(&as);
}

/* Releasing the Arrow stream early stops the stream at once, request in flight included. */
static void test_early_release_stops(void) {
    const char *slow = getenv("DDSTREAM_SLOW_URL");
    ddstream_config cfg;
    base_config(&cfg, slow, "avg:system.cpu.user{*}");
    cfg.prefetch_chunks = 2;
    ddstream_stream *s = open_stream(&cfg);
    struct ArrowArrayStream as;
    ddstream_error err;
    CHECK_INT(ddstream_stream_arrow(s, &as, &err), DDSTREAM_OK);
    struct ArrowArray a;
    CHECK_INT(as.get_next(&as, &a), 0); /* ~2 s: the first chunk */
    CHECK(a.release != NULL);
    /* the worker is now in the middle of the next 2-s request */
    double t0 = now_s();
    as.release(&as);
    double took = now_s() - t0;
    CHECK(took < 1.0);
    if (took >= 1.0) fprintf(stderr, "release took %.3f s\n", took);
    /* the batch outlives the stream */
    CHECK_INT(a.length, 240);
    CHECK(((const int64_t *)a.children[0]->buffers[1])[239] == DAY0 + 239 * 60);
    a.release(&a);
}

/* Errors reach the consumer through get_next's errno and get_last_error, with ddstream's text. */
static void test_errors(void) {
    ddstream_config cfg;
    base_config(&cfg, getenv("DDSTREAM_BASE_URL"), "avg:system.cpu.user{*}");
    cfg.app_key = "refused-app-key";
    ddstream_stream *plain = open_stream(&cfg);
    ddstream_stream *s = open_stream(&cfg);
    ddstream_batch *b = NULL;
    ddstream_error perr, err;
    CHECK_INT(ddstream_next(plain, -1, &b, &perr), DDSTREAM_E_AUTH);
    struct ArrowArrayStream as;
    CHECK_INT(ddstream_stream_arrow(s, &as, &err), DDSTREAM_OK);
    struct ArrowArray a;
    CHECK_INT(as.get_next(&as, &a), EACCES);
    const char *msg = as.get_last_error(&as);
    CHECK_STR(msg, perr.message);
    CHECK_CONTAINS(msg, "chunk 1 of 6");
    CHECK(strstr(msg, "refused-app-key") == NULL);
    CHECK_INT(ddstream_stream_arrow_next(&as, -1, &a, &err), DDSTREAM_E_AUTH); /* retried, same */
    CHECK_STR(err.message, perr.message);
    CHECK_INT(err.http_status, 403);
    CHECK_INT(err.chunk_start, DAY0);
    as.release(&as);
    ddstream_close(plain);
}

/* Cancelling the underlying stream (any thread) wakes a blocked get_next with ECANCELED. */
typedef struct canceller {
    ddstream_stream *s;
} canceller;

static void *cancel_soon(void *arg) {
    struct timespec d = {0, 200 * 1000 * 1000};
    nanosleep(&d, NULL);
    ddstream_cancel(((canceller *)arg)->s);
    return NULL;
}

static void test_cancel(void) {
    ddstream_config cfg;
    base_config(&cfg, getenv("DDSTREAM_SLOW_URL"), "avg:system.cpu.user{*}");
    ddstream_stream *s = open_stream(&cfg);
    struct ArrowArrayStream as;
    ddstream_error err;
    CHECK_INT(ddstream_stream_arrow(s, &as, &err), DDSTREAM_OK);
    canceller c = {s};
    pthread_t t;
    pthread_create(&t, NULL, cancel_soon, &c);
    struct ArrowArray a;
    CHECK_INT(as.get_next(&as, &a), ECANCELED);
    pthread_join(t, NULL);
    CHECK_CONTAINS(as.get_last_error(&as), "cancelled");
    as.release(&as);
}

int main(int argc, char **argv) {
    (void)argc;
    test_schema();
    test_export_batch(0);
    test_export_batch(1);
    test_release_children_separately();
    test_release_on_other_threads();
    test_export_refused();
    test_errno_mapping();
    if (!getenv("DDSTREAM_BASE_URL") || !getenv("DDSTREAM_SLOW_URL")) {
        fprintf(stderr, "%s: run me through tests/c/with_fake_datadog.py\n", argv[0]);
        return EXIT_FAILURE;
    }
    test_stream_matches_plain("avg:system.cpu.user{*}");
    test_stream_matches_plain("avg:system.cpu.user{*} by {host}");
    test_share();
    test_next_with_timeout();
    test_early_release_stops();
    test_errors();
    test_cancel();
    return check_report(argv[0]);
}
