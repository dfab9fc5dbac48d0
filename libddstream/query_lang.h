/* query_lang.h — the Datadog metric query language: parse the user's queries and rewrite each into
 * the sub-queries whose series give its statistics (docs/queries.md). */
#ifndef DDSTREAM_QUERY_LANG_H
#define DDSTREAM_QUERY_LANG_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream.h"

/* Statistics a sub-query's series fill. */
enum { DDS_STAT_AVG = 0, DDS_STAT_MIN = 1, DDS_STAT_MAX = 2, DDS_STAT_SUM = 3, DDS_STAT_VALUE = 4 };

typedef struct dds_query_options {
    int64_t granularity;                     /* seconds, > 0 */
    uint32_t statistics;                     /* mask of (1u << DDS_STAT_AVG..SUM); 0 = all four */
    const char *const *distribution_metrics; /* metric names the user says are distributions */
    size_t distribution_metric_count;
} dds_query_options;

typedef struct dds_subquery {
    char *text;   /* the sub-query exactly as sent (not URL-escaped), malloc'd */
    int32_t stat; /* DDS_STAT_* its series fill */
} dds_subquery;

typedef struct dds_compiled_query {
    char *source;       /* the user's expression, trimmed, malloc'd */
    int32_t grouped;    /* some metric term has "by {...}": one series per group */
    int32_t value_only; /* 1: one value per bucket only -> one sub-query with DDS_STAT_VALUE */
    const char *value_reason;   /* static text when value_only ("p99: is a percentile: one value per
                                 bucket"), else NULL */
    size_t subquery_count;      /* 1..4 */
    dds_subquery subqueries[4]; /* four-statistics queries: in AVG, MIN, MAX, SUM order, only the
                                   statistics in the mask */
} dds_compiled_query;

typedef struct dds_query_error {
    size_t offset;     /* 0-based byte offset in the text given, of the offending character */
    char message[400]; /* what is wrong + a caret excerpt, see below */
} dds_query_error;

/* Parse text, which may hold several comma-separated top-level queries (commas inside {} or () do
 * not split), and compile each one. On success *out is a malloc'd array of *count (>= 1) queries.
 * On a syntax or rule error returns DDSTREAM_E_CONFIG and fills *err; *out NULL, *count 0.
 * DDSTREAM_E_NOMEM on allocation failure. Thread-safe, pure (no I/O, no globals). */
DDSTREAM_NODISCARD ddstream_status dds_query_compile_all(const char *text,
                                                         const dds_query_options *opt,
                                                         dds_compiled_query **out, size_t *count,
                                                         dds_query_error *err);
void dds_compiled_queries_free(dds_compiled_query *q, size_t count);

#endif
