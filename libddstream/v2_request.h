/* v2_request.h — a request to Datadog's v2 query endpoints (/api/v2/query/timeseries and
 * /api/v2/query/scalar): its named queries and formulas checked together, and its JSON body. */
#ifndef DDSTREAM_V2_REQUEST_H
#define DDSTREAM_V2_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "ddstream.h"

typedef enum { DDS_V2_TIMESERIES = 0, DDS_V2_SCALAR = 1 } dds_v2_kind;

/* The endpoints' paths: the requests, explain and the rate-limit families must agree. */
#define DDS_V2_TIMESERIES_PATH "/api/v2/query/timeseries"
#define DDS_V2_SCALAR_PATH     "/api/v2/query/scalar"

/* One named query of a v2 request. */
typedef struct dds_v2_query {
    const char *name;       /* a, b, query1 ... (dds_query_name_check) */
    const char *query;      /* one metric term with its modifiers (dds_query_check_v2) */
    const char *aggregator; /* scalar only: avg, min, max, sum, last, count, ...; NULL otherwise */
} dds_v2_query;

/* The scalar aggregators Datadog's spec lists (MetricsAggregator). */
int dds_v2_scalar_aggregator_known(const char *aggregator);

/*
 * Check a v2 request's queries and formulas together: every name valid and unique, every query
 * a single metric term, every formula parsed over those names, and — when there are formulas —
 * every query used by one (Datadog would compute it for nothing). nf == 0 is allowed: the answer
 * then has the queries' series. DDSTREAM_E_CONFIG with msg naming the item
 * ("queries[1] (b): at character 4: ...", "formulas[0]: ...") and pointing at the character;
 * DDSTREAM_E_NOMEM. Pure, thread-safe.
 */
DDSTREAM_NODISCARD ddstream_status dds_v2_check(dds_v2_kind kind, const dds_v2_query *q, size_t nq,
                                                const char *const *formulas, size_t nf, char *msg,
                                                size_t cap);

/*
 * The JSON body of one request over [from_ms, to_ms) (Datadog's `to` is exclusive) at
 * interval_ms (timeseries only; ignored for scalar). Texts are written as given (checked by
 * dds_v2_check first), escaped for JSON. *out is malloc'd and NUL-terminated, *len its length.
 * DDSTREAM_E_INVALID_ARGUMENT for from_ms >= to_ms, interval_ms <= 0 (timeseries), nq == 0;
 * DDSTREAM_E_NOMEM.
 */
DDSTREAM_NODISCARD ddstream_status dds_v2_body(dds_v2_kind kind, const dds_v2_query *q, size_t nq,
                                               const char *const *formulas, size_t nf,
                                               int64_t from_ms, int64_t to_ms, int64_t interval_ms,
                                               char **out, size_t *len);

/* The v2 part of a stream's settings, resolved from the config. */
typedef struct dds_v2_settings {
    int enabled;           /* the stream reads /api/v2/query/timeseries */
    dds_v2_query *queries; /* query_count named queries; every string owned */
    size_t query_count;
    char **formulas; /* formula_count formulas, owned; none: each query is its own formula */
    size_t formula_count;
    int32_t *grouped;    /* per series set (formula, or query without formulas): 1 when a
                             query it uses has "by {...}" */
    size_t set_count;    /* formula_count, or query_count without formulas */
    const char **labels; /* set_count texts naming the sets (formulas, or queries); borrowed
                             from the strings above */
} dds_v2_settings;

/*
 * Resolve the v2 options of a config: api (DDSTREAM_API_*), the queries (texts[0..nq), each one
 * expression, already compiled by the query language: query_grouped[k] says whether query k has
 * "by {...}"), their names (NULL: "q0", "q1", ...) and the formulas. api AUTO selects v2 when
 * there are formulas; V1 with formulas, and statistics other than 0 with v2, are config errors.
 * DDSTREAM_E_CONFIG with msg naming the field and pointing at the character (dds_v2_check);
 * DDSTREAM_E_NOMEM. out is zeroed first; on failure it is left empty.
 */
DDSTREAM_NODISCARD ddstream_status dds_v2_settings_load(int32_t api, const char *const *texts,
                                                        const int32_t *query_grouped, size_t nq,
                                                        const char *const *names,
                                                        const char *const *formulas, size_t nf,
                                                        uint32_t statistics, dds_v2_settings *out,
                                                        char *msg, size_t cap);
void dds_v2_settings_free(dds_v2_settings *v);

#endif
