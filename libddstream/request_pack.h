/* request_pack.h — the sub-queries of a stream's queries packed into the requests of one chunk. */
#ifndef DDSTREAM_REQUEST_PACK_H
#define DDSTREAM_REQUEST_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream.h"
#include "query_lang.h"

/* Default budgets: Datadog's own Cluster Agent packs up to 35 sub-queries into one
 * /api/v1/query call and keeps its URI under about 7,000 characters (shared/DATADOG.md). */
#define DDS_DEFAULT_MAX_SUBQUERIES 35
#define DDS_DEFAULT_MAX_URI_BYTES  7000

/* One sub-query of the stream, in stream order (query 0's statistics, then query 1's, ...). */
typedef struct dds_subq_ref {
    int32_t query;    /* index of its query */
    int32_t stat;     /* DDS_STAT_* its series fill */
    const char *text; /* borrowed from the compiled query */
} dds_subq_ref;

/* One request: the sub-queries [first, first + count) of the stream, joined with commas. */
typedef struct dds_request_span {
    size_t first;
    size_t count;
    size_t uri_bytes; /* the request's path and escaped query string (see dds_request_uri_bytes) */
} dds_request_span;

typedef struct dds_pack {
    dds_subq_ref *subs;
    size_t sub_count;
    dds_request_span *requests;
    size_t request_count;
} dds_pack;

/* Bytes of s once URL-escaped as the request sends it (libcurl's escaping: everything but
 * A-Z a-z 0-9 - . _ ~ becomes %XX). */
size_t dds_escaped_len(const char *s);

/* Bytes of "/api/v1/query?from=F&to=T&query=<escaped sub-queries joined by ','>" for
 * subs[first, first + count), with F and T as wide as max_epoch (the plan's last `to`): an upper
 * bound for every chunk of the plan. */
size_t dds_request_uri_bytes(const dds_subq_ref *subs, size_t first, size_t count,
                             int64_t max_epoch);

/*
 * Pack the sub-queries of qs[0..nq) greedily, in order, into requests of at most max_subqueries
 * sub-queries and max_uri_bytes URI bytes. Pure. DDSTREAM_OK with *out filled (free with
 * dds_pack_free); DDSTREAM_E_CONFIG when one sub-query alone is over max_uri_bytes (*bad_query
 * gets its query, *bad_bytes its URI size); DDSTREAM_E_NOMEM. *out is zeroed on failure.
 */
DDSTREAM_NODISCARD ddstream_status dds_pack_requests(const dds_compiled_query *qs, size_t nq,
                                                     int32_t max_subqueries, int64_t max_uri_bytes,
                                                     int64_t max_epoch, dds_pack *out,
                                                     size_t *bad_query, size_t *bad_bytes);
void dds_pack_free(dds_pack *p);

/* subs[first, first + count)'s texts joined with ',' (not escaped): malloc'd, NULL on failure. */
char *dds_pack_join(const dds_pack *p, size_t first, size_t count);

#endif
