/* chunk_fetch.h — one chunk from request to batch: fetch, parse, split on coarsening, assemble. */
#ifndef DDSTREAM_CHUNK_FETCH_H
#define DDSTREAM_CHUNK_FETCH_H

#include "chunk_cache.h"
#include "config.h"
#include "ddstream.h"
#include "fetch.h"
#include "log.h"

/*
 * Fetch [start, end) (epoch s, aligned to s->granularity) with the four-rollup query rollup_query
 * and assemble its batch. When Datadog answers at a coarser interval than asked, the chunk is
 * split in halves and each half asked again, so granularities are never mixed; a single bucket
 * answered coarsely is a DDSTREAM_E_PROTOCOL error. On error err names the chunk and the cause.
 * Every request goes through cache (NULL: none), which answers settled requests it has stored.
 */
DDSTREAM_NODISCARD ddstream_status dds_fetch_chunk(dds_http *http, dds_chunk_cache *cache,
                                                   const dds_settings *s, dds_log *log,
                                                   const char *rollup_query, int64_t start,
                                                   int64_t end, ddstream_batch **out,
                                                   ddstream_error *err);

#endif
