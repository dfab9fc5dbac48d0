/* query.h — the request ddstream sends for one chunk: four rollups of the user's query at once. */
#ifndef DDSTREAM_QUERY_H
#define DDSTREAM_QUERY_H

#include <stdint.h>

/*
 * "<q>.rollup(avg,g),<q>.rollup(min,g),<q>.rollup(max,g),<q>.rollup(sum,g)": one request per chunk
 * carries all four rollups; the answer tells them apart by query_index 0..3 (assemble.h).
 * Returns a malloc'd string or NULL on allocation failure.
 */
char *dds_rollup_query(const char *query, int64_t granularity);

#endif
