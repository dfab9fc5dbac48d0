/* query.h — the user's metric query: the shapes accepted, grouping, and the request sent per chunk. */
#ifndef DDSTREAM_QUERY_H
#define DDSTREAM_QUERY_H

#include <stdint.h>

/*
 * NULL if ddstream can send q, else why not, as a message starting with "query" (static text):
 * empty or blank, over 4000 characters, control characters, a rollup() of its own, unbalanced
 * {} or (), or a top-level ',' (several queries: ddstream appends .rollup() to the whole query and
 * joins four copies with commas, so either would change what the server sees).
 */
const char *dds_query_problem(const char *q);

/* Nonzero if the query has a top-level "by {" clause (grouped output). */
int dds_query_is_grouped(const char *query);

/*
 * "<q>.rollup(avg,g),<q>.rollup(min,g),<q>.rollup(max,g),<q>.rollup(sum,g)": one request per chunk
 * carries all four rollups; the answer tells them apart by query_index 0..3 (assemble.h).
 * Returns a malloc'd string or NULL on allocation failure.
 */
char *dds_rollup_query(const char *query, int64_t granularity);

#endif
