/* parse.h — turn Datadog response bodies into plain C data. No cJSON type appears here. */
#ifndef DDSTREAM_PARSE_H
#define DDSTREAM_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream.h"

/* One series of a v1 /api/v1/query answer. Every field was checked by the parser. */
typedef struct dds_series {
    int32_t query_index; /* position of its sub-query in the comma-joined query, 0..999999 */
    char *tags;          /* tag_set joined with ',' in the order Datadog gave; "" when ungrouped */
    int64_t interval;    /* seconds as answered; 0 when absent or null */
    size_t length;       /* points, as counted in pointlist (the "length" field is ignored) */
    int64_t *ts_ms;      /* bucket start, epoch ms, |ts| <= 1e15 (integer or whole float in JSON) */
    double *values;      /* finite, or NaN where the JSON value was null */
    int in_block;        /* ts_ms and values live in one of the response's blocks */
} dds_series;            /* ts_ms and values are NULL when length is 0 */

/* A parsed answer: owns its series and everything in them, and the blocks that hold the points
 * of several series at once (a large answer's, see pointlist.h). */
typedef struct dds_response {
    dds_series *series;
    size_t count;
    size_t capacity;
    void **blocks;
    size_t block_count;
} dds_response;

/*
 * Parse a 200 answer of GET /api/v1/query. body need not be NUL-terminated. On success fills *out
 * (free with dds_response_free). On failure returns DDSTREAM_E_PROTOCOL (malformed JSON, wrong
 * types, missing fields), DDSTREAM_E_QUERY ("status":"error" with an error string) or
 * DDSTREAM_E_NOMEM, writes a precise message naming the offending part to msg, and leaves *out empty.
 */
DDSTREAM_NODISCARD ddstream_status dds_parse_query_response(const char *body, size_t len,
                                                            dds_response *out, char *msg,
                                                            size_t msg_cap);

/*
 * The same result as dds_parse_query_response, faster: the pointlists are read straight into
 * arrays (pointlist.c), and cJSON builds a tree of the small envelope only (a copy of the body
 * with those pointlists as []). body is not modified.
 */
DDSTREAM_NODISCARD ddstream_status dds_parse_query_response_fast(const char *body, size_t len,
                                                                 dds_response *out, char *msg,
                                                                 size_t msg_cap);

/* Free what a response owns and zero it. Safe on a zeroed response. */
void dds_response_free(dds_response *r);

/*
 * Move every series of *from to the end of *into (from is left empty). For split chunks.
 * DDSTREAM_E_NOMEM leaves both untouched.
 */
DDSTREAM_NODISCARD ddstream_status dds_response_append(dds_response *into, dds_response *from);

/* Parse a 200 answer of GET /api/v1/validate: sets *valid from {"valid": bool}. */
DDSTREAM_NODISCARD ddstream_status dds_parse_validate_response(const char *body, size_t len,
                                                               int *valid, char *msg,
                                                               size_t msg_cap);

#endif
