/* chunk_fetch.c — request, parse and assemble one chunk. */
#include "chunk_fetch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assemble.h"
#include "chunk_cache.h"
#include "error.h"
#include "parse.h"
#include "retry_policy.h"

/* Deep enough to split a 1500-bucket chunk down to single buckets. */
#define MAX_SPLIT_DEPTH 12

typedef struct read_target {
    dds_http *http;
    dds_response *out;
} read_target;

/* The body reader of dds_http_get_read: parse the answer where the client received it. */
static ddstream_status read_answer(void *arg, char *data, size_t len, ddstream_error *err) {
    read_target *t = arg;
    char msg[400];
    ddstream_status st = dds_parse_query_response_fast(data, len, t->out, msg, sizeof msg);
    if (st == DDSTREAM_OK) return st;
    dds_http_scrub(t->http, msg); /* the message may quote the body, and the body may quote a key */
    return dds_error_set(err, st, "%s", msg);
}

static ddstream_status fetch_response(dds_http *http, dds_chunk_cache *cache, const dds_settings *s,
                                      dds_log *log, const char *escaped_query, int64_t start,
                                      int64_t end, int depth, dds_response *out,
                                      ddstream_error *err) {
    size_t plen = strlen(escaped_query) + 96;
    char *path_query = malloc(plen);
    if (!path_query) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    /* Datadog's `to` is inclusive: ask for the last second of the chunk, not the next bucket. */
    snprintf(path_query, plen, "/api/v1/query?from=%" PRId64 "&to=%" PRId64 "&query=%s", start,
             end - 1, escaped_query);
    read_target target = {http, out};
    ddstream_status st =
        dds_cache_read(cache, http, path_query, NULL, 0, 1, end, read_answer, &target, err);
    free(path_query);
    if (st != DDSTREAM_OK) return st;

    int64_t g = s->granularity;
    int64_t coarse = dds_response_coarse_interval(out, g);
    if (coarse == 0) return DDSTREAM_OK;
    dds_response_free(out);
    int64_t buckets = (end - start) / g;
    if (buckets <= 1 || depth >= MAX_SPLIT_DEPTH)
        return dds_error_set(err, DDSTREAM_E_PROTOCOL,
                             "Datadog answered at a %" PRId64 " s interval where %" PRId64
                             " s was asked, even for a single bucket",
                             coarse, g);
    int64_t mid = start + (buckets / 2) * g;
    dds_logf(log, DDSTREAM_LOG_WARN,
             "Datadog answered [%" PRId64 ", %" PRId64 ") at %" PRId64 " s instead of %" PRId64
             " s: asking again in two halves",
             start, end, coarse, g);
    st = fetch_response(http, cache, s, log, escaped_query, start, mid, depth + 1, out, err);
    if (st != DDSTREAM_OK) return st;
    dds_response second = {0};
    st = fetch_response(http, cache, s, log, escaped_query, mid, end, depth + 1, &second, err);
    if (st == DDSTREAM_OK) {
        st = dds_response_append(out, &second);
        if (st != DDSTREAM_OK) dds_error_set(err, st, "out of memory joining split answers");
    }
    dds_response_free(&second);
    if (st != DDSTREAM_OK) dds_response_free(out);
    return st;
}

/* Whether a failed request said it was too heavy ("Query timed out", 504): worth asking again
 * in smaller pieces, where asking again as it was is not (retry_policy.c fails it at once). */
static int timed_out(const ddstream_error *err) {
    return dds_retry_query_timed_out(err->http_status, err->message);
}

/* The sub-queries [first, first + count) of the stream over [start, end), appended to *all with
 * their query_index made the stream's (the request's index + first). A request that timed out is
 * asked again in two halves of its sub-queries, and a single sub-query in two halves of time. */
static ddstream_status fetch_part(dds_http *http, dds_chunk_cache *cache, const dds_settings *s,
                                  dds_log *log, size_t first, size_t count, int64_t start,
                                  int64_t end, int depth, dds_response *all, ddstream_error *err) {
    char *joined = dds_pack_join(&s->pack, first, count);
    char *escaped = joined ? dds_http_escape(http, joined) : NULL;
    free(joined);
    if (!escaped) return dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory escaping the query");
    dds_response resp = {0};
    ddstream_status st = fetch_response(http, cache, s, log, escaped, start, end, 0, &resp, err);
    free(escaped);
    if (st == DDSTREAM_OK) {
        for (size_t i = 0; i < resp.count; i++) {
            int64_t qi = resp.series[i].query_index;
            /* Out of the request's range stays out of the stream's (assemble names it); with a
             * single request it is reported as the server sent it. */
            if (qi >= (int64_t)count) qi += (int64_t)(s->pack.sub_count - count);
            if (qi >= 0) qi += (int64_t)first;
            resp.series[i].query_index = qi > INT32_MAX ? INT32_MAX : (int32_t)qi;
        }
        st = dds_response_append(all, &resp);
        if (st != DDSTREAM_OK) dds_error_set(err, st, "out of memory joining answers");
        dds_response_free(&resp);
        return st;
    }
    dds_response_free(&resp);
    if (!err || !timed_out(err)) return st;
    int64_t g = s->granularity, buckets = (end - start) / g;
    if (count > 1) {
        size_t half = count / 2;
        dds_logf(log, DDSTREAM_LOG_WARN,
                 "a request of %zu sub-queries over [%" PRId64 ", %" PRId64
                 ") timed out: asking again in two requests of %zu and %zu",
                 count, start, end, half, count - half);
        st = fetch_part(http, cache, s, log, first, half, start, end, depth, all, err);
        if (st == DDSTREAM_OK)
            st = fetch_part(http, cache, s, log, first + half, count - half, start, end, depth, all,
                            err);
        return st;
    }
    if (buckets <= 1 || depth >= MAX_SPLIT_DEPTH) {
        dds_error_append(err, " (even for one sub-query over %" PRId64 " s)", end - start);
        return st;
    }
    int64_t mid = start + (buckets / 2) * g;
    dds_logf(log, DDSTREAM_LOG_WARN,
             "sub-query %zu timed out over [%" PRId64 ", %" PRId64
             "): asking again in two halves of time",
             first, start, end);
    st = fetch_part(http, cache, s, log, first, 1, start, mid, depth + 1, all, err);
    if (st == DDSTREAM_OK)
        st = fetch_part(http, cache, s, log, first, 1, mid, end, depth + 1, all, err);
    return st;
}

ddstream_status dds_fetch_chunk(dds_http *http, dds_chunk_cache *cache, const dds_settings *s,
                                dds_log *log, int64_t start, int64_t end, ddstream_batch **out,
                                ddstream_error *err) {
    *out = NULL;
    dds_response resp = {0};
    ddstream_status st = DDSTREAM_OK;
    for (size_t k = 0; k < s->pack.request_count && st == DDSTREAM_OK; k++) {
        const dds_request_span *req = &s->pack.requests[k];
        st = fetch_part(http, cache, s, log, req->first, req->count, start, end, 0, &resp, err);
    }
    int32_t *query_grouped = NULL;
    if (st == DDSTREAM_OK) {
        query_grouped = malloc(s->query_count * sizeof *query_grouped);
        if (!query_grouped) st = dds_error_set(err, DDSTREAM_E_NOMEM, "out of memory");
    }
    if (st == DDSTREAM_OK) {
        for (size_t q = 0; q < s->query_count; q++) query_grouped[q] = s->queries[q].grouped;
        dds_shape shape = {s->pack.subs, s->pack.sub_count, query_grouped, s->query_count,
                           s->grouped,   s->with_query,     s->with_value};
        char msg[400];
        /* The answer's buffer, read and done with, holds the batch: no fresh pages to clear. */
        size_t spare_cap = 0;
        char *spare = dds_http_take_spare(http, &spare_cap);
        size_t max_rows =
            (uint64_t)s->max_batch_rows > SIZE_MAX ? SIZE_MAX : (size_t)s->max_batch_rows;
        st = dds_assemble_shaped(&resp, &shape, start, end, s->granularity, max_rows, spare,
                                 spare_cap, out, msg, sizeof msg);
        if (st != DDSTREAM_OK) dds_error_set(err, st, "%s", msg);
    }
    free(query_grouped);
    dds_response_free(&resp);
    return st;
}
