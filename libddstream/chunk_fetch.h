/* chunk_fetch.h — one chunk from request to batch: fetch, parse, split on coarsening, assemble. */
#ifndef DDSTREAM_CHUNK_FETCH_H
#define DDSTREAM_CHUNK_FETCH_H

#include "config.h"
#include "ddstream.h"
#include "fetch.h"
#include "log.h"

/*
 * Fetch [start, end) (epoch s, aligned to s->granularity) with every request of s->pack (the
 * stream's sub-queries, packed) and assemble one batch from all their answers. When Datadog
 * answers at a coarser interval than asked, the chunk is split in halves and each half asked
 * again, so granularities are never mixed; a single bucket answered coarsely is a
 * DDSTREAM_E_PROTOCOL error. A request answered "Query timed out" (or 504) is asked again as two
 * requests of half its sub-queries each; a single sub-query that times out, in two halves of time;
 * a single bucket that still times out fails. On error err names the chunk and the cause.
 */
DDSTREAM_NODISCARD ddstream_status dds_fetch_chunk(dds_http *http, const dds_settings *s,
                                                   dds_log *log, int64_t start, int64_t end,
                                                   ddstream_batch **out, ddstream_error *err);

#endif
