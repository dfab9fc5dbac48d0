/* follow.h — follow mode: the open-ended plan, the clock it reads, and when each chunk is due. */
#ifndef DDSTREAM_FOLLOW_H
#define DDSTREAM_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ddstream.h"
#include "plan.h"

/* Default of config.settle_seconds (the same as the chunk cache's settle horizon). */
#define DDS_DEFAULT_SETTLE_S INT64_C(300)

/* A follow plan's end and count: no end. */
#define DDS_FOLLOW_END INT64_MAX

/* Now, in epoch milliseconds: settings' now_fn, or the system's real-time clock. */
int64_t dds_follow_now_ms(const dds_settings *s);

/* The open-ended plan of a follow stream (count SIZE_MAX, end DDS_FOLLOW_END). */
DDSTREAM_NODISCARD ddstream_status dds_follow_plan_make(const dds_settings *s, dds_plan *out,
                                                        ddstream_error *err);

/* Chunk i of an open-ended plan; past int64's reach, end is DDS_FOLLOW_END. */
ddstream_chunk dds_follow_chunk(const dds_plan *p, size_t i);

/* How many chunks from the first have ended by end_s (epoch seconds). */
size_t dds_follow_count_ending_by(const dds_plan *p, int64_t end_s);

/* How many chunks from the first have settled at now_ms. */
size_t dds_follow_settled(const dds_plan *p, int64_t settle_s, int64_t now_ms);

/* Epoch ms at which chunk i settles. */
int64_t dds_follow_due_ms(const dds_plan *p, int64_t settle_s, size_t i);

/* The historical part of a follow config, as ddstream_plan reports it: a finite plan on the same
 * grid, ending with the last chunk that ends by range_end (range_end 0: settled now). */
DDSTREAM_NODISCARD ddstream_status dds_follow_history(const dds_settings *s, dds_plan *out,
                                                      ddstream_error *err);

#endif
