/* follow.c — follow mode: the open-ended plan, the clock it reads, and when each chunk is due.
 *
 * One grid for the whole stream, history and new chunks alike (start + i * step, every chunk a
 * whole step): a chunk index then means the same thing whenever the stream is opened, which is
 * what lets a resume token made today resume tomorrow with no gap and no duplicate. The cost is
 * that the history is fetched in chunks of the follow step, not the point cap's largest. */
#include "follow.h"

#include <time.h>

#include "error.h"

/* A chunk is delivered only once it has ended: a full point-capped chunk (25 h at 60 s) would make
 * the first new data wait a day. 60 buckets is an hour at 60 s, a minute at 1 s. */
#define FOLLOW_DEFAULT_BUCKETS 60

int64_t dds_follow_now_ms(const dds_settings *s) {
    if (s->now_fn) return s->now_fn(s->now_data);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ddstream_status dds_follow_plan_make(const dds_settings *s, dds_plan *out, ddstream_error *err) {
    int64_t g = s->granularity;
    int64_t chunk_seconds = s->chunk_seconds;
    if (chunk_seconds == 0) chunk_seconds = FOLLOW_DEFAULT_BUCKETS * g;
    /* The grid of a one-bucket range gives the aligned start and the step, rounded and clamped as
     * any plan's; the end is then taken away. */
    ddstream_status rc =
        dds_plan_make(s->range_start, s->range_start + g, g, chunk_seconds, out, err);
    if (rc != DDSTREAM_OK) return rc;
    if (s->chunk_seconds == 0) out->clamped = out->rounded = 0; /* our default, not the user's */
    out->end = DDS_FOLLOW_END;
    out->count = SIZE_MAX;
    return DDSTREAM_OK;
}

/* The last index whose chunk start + step still fits in int64. */
static size_t last_representable(const dds_plan *p) {
    int64_t room = (DDS_FOLLOW_END - p->start) / p->step - 1;
    return room < 0 ? 0 : (uint64_t)room >= SIZE_MAX ? SIZE_MAX - 1 : (size_t)room;
}

ddstream_chunk dds_follow_chunk(const dds_plan *p, size_t i) {
    ddstream_chunk c;
    size_t last = last_representable(p);
    if (i > last) {
        c.start = p->start + (int64_t)last * p->step;
        c.end = DDS_FOLLOW_END;
        return c;
    }
    c.start = p->start + (int64_t)i * p->step;
    c.end = c.start + p->step;
    return c;
}

size_t dds_follow_count_ending_by(const dds_plan *p, int64_t end_s) {
    if (end_s < p->start + p->step) return 0;
    return (size_t)((end_s - p->start) / p->step);
}

size_t dds_follow_settled(const dds_plan *p, int64_t settle_s, int64_t now_ms) {
    /* floor division: a chunk ending at now - settle exactly has settled */
    int64_t now_s = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
    return dds_follow_count_ending_by(p, now_s - settle_s);
}

int64_t dds_follow_due_ms(const dds_plan *p, int64_t settle_s, size_t i) {
    ddstream_chunk c = dds_follow_chunk(p, i);
    if (c.end == DDS_FOLLOW_END) return INT64_MAX;
    return (c.end + settle_s) * 1000;
}

ddstream_status dds_follow_history(const dds_settings *s, dds_plan *out, ddstream_error *err) {
    ddstream_status rc = dds_follow_plan_make(s, out, err);
    if (rc != DDSTREAM_OK) return rc;
    size_t n = s->range_end != 0 ? dds_follow_count_ending_by(out, s->range_end)
                                 : dds_follow_settled(out, s->settle_s, dds_follow_now_ms(s));
    out->count = n;
    out->end = out->start + (int64_t)n * out->step;
    return DDSTREAM_OK;
}
