/* parse_v2.h — a 200 answer of POST /api/v2/query/timeseries to columnar C data. */
#ifndef DDSTREAM_PARSE_V2_H
#define DDSTREAM_PARSE_V2_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream.h"

typedef struct dds_v2_series {
    int32_t query_index; /* the formula's position (or the query's, without formulas) */
    char *tags;          /* group_tags joined with ',' in the order given; "" when ungrouped */
} dds_v2_series;

/* A parsed answer: owns everything. times are shared by all series (v2's columnar shape). */
typedef struct dds_v2_response {
    dds_v2_series *series;
    size_t series_count;
    int64_t *times_ms; /* time_count bucket starts, epoch ms, as given (order unchecked) */
    size_t time_count;
    double *values; /* series_count x time_count, series-major (values[s * time_count + t]);
                          NaN where the JSON had null. NULL when either count is 0 */
} dds_v2_response;

/*
 * Parse body[0..len) (need not be NUL-terminated; not modified) in one pass, without a tree:
 * data.attributes.series[] (group_tags, query_index; unit and other members skipped), times[]
 * (integers or whole floats, |t| <= DDS_TIME_LIMIT_MS) and values[][] (numbers or null, one row
 * per series, each as long as times). Members may come in any order; unknown ones are skipped.
 * Errors: DDSTREAM_E_PROTOCOL (malformed or cut-short JSON, wrong types or shapes: msg names the
 * JSON path), DDSTREAM_E_QUERY (a 200 carrying an "errors" member), DDSTREAM_E_NOMEM; *out is
 * then empty.
 */
DDSTREAM_NODISCARD ddstream_status dds_parse_v2_timeseries(const char *body, size_t len,
                                                           dds_v2_response *out, char *msg,
                                                           size_t msg_cap);

/* Free what a response owns and zero it. Safe on a zeroed response. */
void dds_v2_response_free(dds_v2_response *r);

/* A 200 answer of POST /api/v2/query/scalar: one value per group and formula. */
typedef struct dds_v2_scalar {
    size_t group_count;
    char **groups;       /* per group: its tags joined with ',' ("" for an ungrouped answer) */
    size_t column_count; /* number columns: one per formula (or query, without formulas) */
    char **names;        /* per column: its name as answered */
    double *values;      /* column_count x group_count, column-major by column: values[c *
                            group_count + g]; NaN where the JSON had null */
} dds_v2_scalar;

/*
 * Parse a scalar answer: data.attributes.columns[], each {name, type, values}: type "group"
 * (values: one array of tag strings per group; at most one such column; none: one group "")
 * or "number" (values: numbers or null, one per group); meta and unknown members skipped. The
 * shape follows Datadog's published schema (no recording checked it). Errors as
 * dds_parse_v2_timeseries; *out empty then.
 */
DDSTREAM_NODISCARD ddstream_status dds_parse_v2_scalar(const char *body, size_t len,
                                                       dds_v2_scalar *out, char *msg,
                                                       size_t msg_cap);
void dds_v2_scalar_free(dds_v2_scalar *s);

/*
 * The two parsers as the transport's body readers (fetch.h's dds_body_reader): arg is a
 * dds_v2_response (timeseries) or a dds_v2_scalar (scalar), zeroed or filled by an earlier call.
 * A reader may run once per 200 attempt, so an earlier parse is dropped first. A parse error
 * goes to err with the parser's message; the caller frees arg either way.
 */
DDSTREAM_NODISCARD ddstream_status dds_v2_read_timeseries(void *response, char *data, size_t len,
                                                          ddstream_error *err);
DDSTREAM_NODISCARD ddstream_status dds_v2_read_scalar(void *table, char *data, size_t len,
                                                      ddstream_error *err);

#endif
