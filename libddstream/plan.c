/* plan.c — chunk planning. Datadog's `from` snaps up to the next bucket boundary and its `to` is
 * inclusive, so chunks are aligned to the granularity and each request asks for
 * [chunk.start, chunk.end - 1]: consecutive chunks then never share or skip a bucket. */
#include "plan.h"

#include <string.h>

#include "config.h"
#include "error.h"
#include "follow.h"

static int64_t ceil_to(int64_t v, int64_t g) {
    int64_t q = v / g;
    if (q * g < v) q++;
    return q * g;
}

ddstream_status dds_plan_make(int64_t range_start, int64_t range_end, int64_t g,
                              int64_t chunk_seconds, dds_plan *out, ddstream_error *err) {
    memset(out, 0, sizeof *out);
    int64_t cap = (int64_t)DDS_MAX_POINTS * g;
    int64_t step = chunk_seconds == 0 ? cap : (chunk_seconds / g) * g;
    if (chunk_seconds != 0 && step != chunk_seconds) out->rounded = 1;
    if (step < g) step = g;
    if (step > cap) {
        step = cap;
        out->clamped = 1;
    }
    out->step = step;
    out->start = ceil_to(range_start, g);
    out->end = ceil_to(range_end, g); /* the bucket holding range_end - 1 ends here */
    if (out->end <= out->start) {
        out->end = out->start;
        out->count = 0;
        return DDSTREAM_OK;
    }
    uint64_t n = (uint64_t)((out->end - out->start + step - 1) / step);
    if (n > (uint64_t)(SIZE_MAX / sizeof(ddstream_chunk)))
        return dds_error_set(
            err, DDSTREAM_E_CONFIG,
            "the range needs %llu chunks: use a larger granularity or chunk_seconds",
            (unsigned long long)n);
    out->count = (size_t)n;
    return DDSTREAM_OK;
}

ddstream_chunk dds_plan_chunk(const dds_plan *p, size_t i) {
    ddstream_chunk c;
    c.start = p->start + (int64_t)i * p->step;
    c.end = c.start + p->step;
    if (c.end > p->end) c.end = p->end;
    return c;
}

DDSTREAM_API ddstream_status ddstream_plan(const ddstream_config *cfg, ddstream_chunk *chunks,
                                           size_t capacity, size_t *count, ddstream_error *err) {
    if (!count) return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "count is NULL");
    if (capacity > 0 && !chunks)
        return dds_error_set(err, DDSTREAM_E_INVALID_ARGUMENT, "chunks is NULL but capacity is %zu",
                             capacity);
    /* The plan does not depend on the credentials, and nothing is sent: a caller that only
     * splits work (a client planning partitions for workers that hold the keys) needs none.
     * Missing keys get a stand-in; everything else is checked as ddstream_open checks it. */
    ddstream_config keyless;
    ddstream_status st = dds_config_read(cfg, &keyless, err);
    if (st != DDSTREAM_OK) return st;
    if (!keyless.api_key || !*keyless.api_key) keyless.api_key = "plan-only";
    if (!keyless.app_key || !*keyless.app_key) keyless.app_key = "plan-only";
    dds_settings s;
    if ((st = dds_settings_load(&keyless, &s, err)) != DDSTREAM_OK) return st;
    dds_plan p;
    st = s.follow
             ? dds_follow_history(&s, &p, err)
             : dds_plan_make(s.range_start, s.range_end, s.granularity, s.chunk_seconds, &p, err);
    dds_settings_free(&s);
    if (st != DDSTREAM_OK) return st;
    *count = p.count;
    for (size_t i = 0; i < p.count && i < capacity; i++) chunks[i] = dds_plan_chunk(&p, i);
    return DDSTREAM_OK;
}
